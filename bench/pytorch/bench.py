"""PyTorch side of burn-gumbel's benchmarks: torch.nn.functional.gumbel_softmax and the
categorical VAE's training step, on CPU, with the shapes and modes of benches/gumbel_softmax.rs.

Run by bench/run.sh, which sets OMP_WAIT_POLICY=PASSIVE (without it PyTorch's idle threads spin and
a loaded machine slows it by orders of magnitude) and the thread count. Prints JSON:
{"torch": version, "threads": n, "rows": [{"name": "soft/forward/1024x10", "median_s": ...}, ...]}
"""
import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

SHAPES = [(1024, 10), (4096, 10), (32768, 10), (256, 1000), (64, 50000), (200, 20, 10)]
TAU = 1.0


def median_time(fn, min_time=1.0, min_runs=10):
    """Median wall time of fn() in seconds, after a warm-up of a few runs."""
    for _ in range(3):
        fn()
    times = []
    start = time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def layer_rows():
    rows = []
    for shape in SHAPES:
        name = "x".join(map(str, shape))
        logits = torch.randn(shape)
        weights = torch.rand(shape)
        rows.append({"name": f"copy/{name}", "median_s": median_time(lambda: logits.clone())})
        for op, hard in (("soft", False), ("hard", True)):
            fwd = lambda: F.gumbel_softmax(logits, tau=TAU, hard=hard, dim=-1)
            rows.append({"name": f"{op}/forward/{name}", "median_s": median_time(fwd)})

            def fwd_bwd():
                x = logits.detach().requires_grad_()
                y = F.gumbel_softmax(x, tau=TAU, hard=hard, dim=-1)
                (y * weights).sum().backward()
                return x.grad

            rows.append({"name": f"{op}/forward_backward/{name}", "median_s": median_time(fwd_bwd)})
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


def vae_row(batch=100):
    torch.manual_seed(0)
    model = CategoricalVae()
    optim = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = (torch.rand(batch, 784) > 0.8).float()

    def step():
        optim.zero_grad()
        model.loss(x, 1.0).backward()
        optim.step()

    return {"name": "vae/train_step/100", "median_s": median_time(step, min_time=3.0)}


def main():
    threads = int(os.environ.get("BENCH_THREADS", "2"))
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    rows = layer_rows() + [vae_row()]
    json.dump({"torch": torch.__version__, "threads": threads, "rows": rows}, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
