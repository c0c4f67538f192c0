"""PyTorch side of burn-gumbel's benchmarks: torch.nn.functional.gumbel_softmax and the
categorical VAE's training step, with the shapes and modes of benches/gumbel_softmax.rs.

    python bench.py                 # CPU, BENCH_THREADS threads (bench/run.sh)
    python bench.py --device cuda   # an NVIDIA GPU (bench/gpu.sh)

bench/run.sh sets OMP_WAIT_POLICY=PASSIVE (without it PyTorch's idle threads spin and a loaded
machine slows it by orders of magnitude) and the thread count. On a GPU every timed call ends with
torch.cuda.synchronize(), as the Rust side synchronizes its device, so both measure execution.
BURN_GUMBEL_BENCH_LARGE=1 adds the shape [1024, 50000] (205 MB per tensor, several times a GPU's
L2 cache), as the Rust side does. Prints JSON:
{"torch": version, "device": name, "threads": n, "rows": [{"name": "soft/forward/1024x10",
"median_s": ...}, ...]}
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

SHAPES = [(1024, 10), (4096, 10), (32768, 10), (256, 1000), (64, 50000), (200, 20, 10)]
# Channels-first feature maps, categories along dim 1 (named ".../dim1"), as benches/gumbel_softmax.rs.
CHANNELS_FIRST = [(8, 512, 32, 32), (2, 8192, 16, 16)]
LARGE_SHAPE = (1024, 50000)
TAU = 1.0


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_time(fn, device, min_time=1.0, min_runs=10):
    """Median wall time of fn() in seconds, the device synchronized, after a few warm-up runs."""
    for _ in range(3):
        fn()
    sync(device)
    times = []
    start = time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def layer_rows(device):
    shapes = [(shape, len(shape) - 1) for shape in SHAPES]
    shapes += [(shape, 1) for shape in CHANNELS_FIRST]
    if os.environ.get("BURN_GUMBEL_BENCH_LARGE"):
        shapes.append((LARGE_SHAPE, 1))
    rows = []
    for shape, dim in shapes:
        name = "x".join(map(str, shape)) + ("" if dim == len(shape) - 1 else f"/dim{dim}")
        logits = torch.randn(shape, device=device)
        weights = torch.rand(shape, device=device)
        rows.append({"name": f"copy/{name}", "median_s": median_time(lambda: logits.clone(), device)})
        for op, hard in (("soft", False), ("hard", True)):
            fwd = lambda: F.gumbel_softmax(logits, tau=TAU, hard=hard, dim=dim)
            rows.append({"name": f"{op}/forward/{name}", "median_s": median_time(fwd, device)})

            def fwd_bwd():
                x = logits.detach().requires_grad_()
                y = F.gumbel_softmax(x, tau=TAU, hard=hard, dim=dim)
                (y * weights).sum().backward()
                return x.grad

            rows.append({"name": f"{op}/forward_backward/{name}", "median_s": median_time(fwd_bwd, device)})
    return rows


class CategoricalVae(torch.nn.Module):
    """The model of crates/categorical-vae: 784-512-256-(N*K), Gumbel-Softmax, (N*K)-256-512-784."""

    def __init__(self, n=20, k=10):
        super().__init__()
        self.n, self.k = n, k
        self.encoder = torch.nn.Sequential(
            torch.nn.Linear(784, 512), torch.nn.ReLU(),
            torch.nn.Linear(512, 256), torch.nn.ReLU(),
            torch.nn.Linear(256, n * k))
        self.decoder = torch.nn.Sequential(
            torch.nn.Linear(n * k, 256), torch.nn.ReLU(),
            torch.nn.Linear(256, 512), torch.nn.ReLU(),
            torch.nn.Linear(512, 784))

    def loss(self, x, tau):
        logits = self.encoder(x).view(-1, self.n, self.k)  # [batch, n_latent, n_categories]
        z = F.gumbel_softmax(logits, tau=tau, hard=False, dim=-1)
        pixel_logits = self.decoder(z.view(-1, self.n * self.k))
        recon = (F.softplus(pixel_logits) - pixel_logits * x).sum(1)
        log_q = F.log_softmax(logits, -1)
        kl = (log_q.exp() * (log_q + torch.log(torch.tensor(float(self.k))))).sum((1, 2))
        return (recon + kl).mean()


def vae_row(device, batch=100):
    torch.manual_seed(0)
    model = CategoricalVae().to(device)
    optim = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = (torch.rand(batch, 784, device=device) > 0.8).float()

    def step():
        optim.zero_grad()
        model.loss(x, 1.0).backward()
        optim.step()

    return {"name": "vae/train_step/100", "median_s": median_time(step, device, min_time=3.0)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    device = torch.device(parser.parse_args().device)
    threads = int(os.environ.get("BENCH_THREADS", "2"))
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    rows = layer_rows(device) + [vae_row(device)]
    json.dump({"torch": torch.__version__, "device": name, "threads": threads, "rows": rows},
              sys.stdout, indent=1)


if __name__ == "__main__":
    main()
