"""The peers of burn-gumbel's benchmarks: eager PyTorch (torch.nn.functional.gumbel_softmax),
torch.compile of the same call, and a jitted JAX equivalent; and the categorical VAE's training
step in eager PyTorch. The shapes and modes are those of benches/gumbel_softmax.rs.

    python bench.py                               # CPU: every peer, BENCH_THREADS threads
    python bench.py --device cuda --peers eager   # an NVIDIA GPU (bench/gpu.sh)

bench/run.sh sets OMP_WAIT_POLICY=PASSIVE (without it PyTorch's idle threads spin and a loaded
machine slows it by orders of magnitude) and the thread count. On a GPU every timed call ends with
torch.cuda.synchronize(), as the Rust side synchronizes its device, so both measure execution; JAX
calls end with block_until_ready() for the same reason. BURN_GUMBEL_BENCH_LARGE=1 adds the shape
[1024, 50000] (205 MB per tensor, several times a GPU's L2 cache), as the Rust side does.

The JAX version is what a JAX user writes: softmax((x + jax.random.gumbel(key, x.shape)) / tau)
and, for hard samples, the one-hot of its argmax plus y - stop_gradient(y), jitted with its
gradient. It takes a fixed key (the draws change nothing to the work).

The Gumbel-Rao rows (gumbel-rao/forward_backward/..., 10 conditional draws) run the estimator as
its authors' reference code writes it (Paulus et al. 2021, arXiv:2010.04838): the one-hot of
argmax(x + g), exponential draws E of shape [K, ...], the conditional perturbations
D * (log Z - log E_i) + (1 - D) * (x - log(E + E_i p)), and the straight-through of the mean of
the K softmaxes; in PyTorch (eager and compiled) and in JAX. --only REGEX keeps the rows whose
name matches (and skips the VAE row unless it matches). Prints JSON:
{"torch": version, "jax": version, "device": name, "threads": n,
 "rows": [{"name": "soft/forward/1024x10", "peer": "eager", "median_s": ...}, ...]}
"""
import argparse
import json
import os
import re
import statistics
import sys
import time

import torch
import torch.nn.functional as F

SHAPES = [(1024, 10), (4096, 10), (32768, 10), (256, 1000), (64, 50000), (200, 20, 10)]
# Channels-first feature maps, categories along dim 1 (named ".../dim1"), as benches/gumbel_softmax.rs.
CHANNELS_FIRST = [(8, 512, 32, 32), (2, 8192, 16, 16), (100, 64, 7, 7)]
# Half-precision rows (named ".../f16", ".../bf16"), categories last.
HALF_SHAPES = [(256, 1000), (64, 50000)]
LARGE_SHAPE = (1024, 50000)
TAU = 1.0
PEERS = ("eager", "compile", "jax")
# Gumbel-Rao rows: (shape, category axis), as benches/gumbel_softmax.rs; 10 conditional draws.
GUMBEL_RAO_SHAPES = [((200, 20, 10), 2), ((256, 1000), 1), ((100, 64, 7, 7), 1)]
GUMBEL_RAO_SAMPLES = 10
# Rows to run (--only), as a compiled regex; None: every row.
ONLY = None


def wanted(name):
    """Whether --only keeps the row `name`."""
    return ONLY is None or ONLY.search(name) is not None


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


def cases():
    """(name, shape, dim, dtype name) of every row, as benches/gumbel_softmax.rs names them."""
    out = []
    shapes = [(shape, len(shape) - 1) for shape in SHAPES]
    shapes += [(shape, 1) for shape in CHANNELS_FIRST]
    if os.environ.get("BURN_GUMBEL_BENCH_LARGE"):
        shapes.append((LARGE_SHAPE, 1))
    for shape, dim in shapes:
        name = "x".join(map(str, shape)) + ("" if dim == len(shape) - 1 else f"/dim{dim}")
        out.append((name, shape, dim, "f32"))
    for dtype in ("f16", "bf16"):
        for shape in HALF_SHAPES:
            out.append(("x".join(map(str, shape)) + f"/{dtype}", shape, len(shape) - 1, dtype))
    return out


def torch_rows(device, compiled):
    """Eager PyTorch's rows, or torch.compile's with `compiled`."""
    dtypes = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}
    peer = "compile" if compiled else "eager"
    rows = []
    for name, shape, dim, dtype in cases():
        logits = torch.randn(shape, device=device).to(dtypes[dtype])
        weights = torch.rand(shape, device=device).to(dtypes[dtype])
        if not compiled and wanted(f"copy/{name}"):
            rows.append({"name": f"copy/{name}", "peer": peer,
                         "median_s": median_time(lambda: logits.clone(), device)})
        for op, hard in (("soft", False), ("hard", True)):
            def sample(x, hard=hard, dim=dim):
                return F.gumbel_softmax(x, tau=TAU, hard=hard, dim=dim)

            def loss(x, sample=sample):
                return (sample(x) * weights).sum()

            if compiled:
                sample, loss = torch.compile(sample), torch.compile(loss)

            def fwd_bwd(loss=loss):
                x = logits.detach().requires_grad_()
                loss(x).backward()
                return x.grad

            for mode, fn in (("forward", lambda: sample(logits)), ("forward_backward", fwd_bwd)):
                if not wanted(f"{op}/{mode}/{name}"):
                    continue
                try:
                    median = median_time(fn, device)
                except Exception as e:  # a dtype the peer lacks on this device
                    print(f"{peer} {op}/{mode}/{name}: {type(e).__name__}: {e}".splitlines()[0],
                          file=sys.stderr)
                    continue
                rows.append({"name": f"{op}/{mode}/{name}", "peer": peer, "median_s": median})
    return rows


def jax_rows():
    """JAX's rows: jitted sample, and jitted gradient of the loss, on the CPU."""
    import jax
    import jax.numpy as jnp

    dtypes = {"f32": jnp.float32, "f16": jnp.float16, "bf16": jnp.bfloat16}
    cpu = torch.device("cpu")
    rows = []
    for name, shape, dim, dtype in cases():
        key = jax.random.key(0)
        logits = jax.random.normal(jax.random.key(1), shape, dtypes[dtype])
        weights = jax.random.uniform(jax.random.key(2), shape, dtypes[dtype])
        for op, hard in (("soft", False), ("hard", True)):
            def sample(key, x, hard=hard, dim=dim):
                y = jax.nn.softmax((x + jax.random.gumbel(key, x.shape, x.dtype)) / TAU, axis=dim)
                if not hard:
                    return y
                index = jnp.argmax(y, axis=dim, keepdims=True)
                positions = jax.lax.broadcasted_iota(jnp.int32, x.shape, dim)
                one_hot = (positions == index).astype(y.dtype)
                return one_hot - jax.lax.stop_gradient(y) + y

            def loss(x, key, sample=sample):
                return jnp.sum(sample(key, x) * weights)

            fwd = jax.jit(sample)
            grad = jax.jit(jax.grad(loss))
            timed = (("forward", lambda: fwd(key, logits).block_until_ready()),
                     ("forward_backward", lambda: grad(logits, key).block_until_ready()))
            for mode, fn in timed:
                if not wanted(f"{op}/{mode}/{name}"):
                    continue
                rows.append({"name": f"{op}/{mode}/{name}", "peer": "jax",
                             "median_s": median_time(fn, cpu)})
    return rows


def gumbel_rao_torch(x, tau, dim, k=GUMBEL_RAO_SAMPLES):
    """The Gumbel-Rao estimator in PyTorch, after the authors' reference code."""
    x = x.movedim(dim, -1)
    index = torch.argmax(x - torch.log(-torch.log(torch.rand_like(x))), -1)
    d = F.one_hot(index, x.shape[-1]).to(x.dtype)
    with torch.no_grad():
        e = -torch.log(torch.rand((k,) + tuple(x.shape), device=x.device, dtype=x.dtype))
        e_i = (d * e).sum(-1, keepdim=True)
        log_z = torch.logsumexp(x, -1, keepdim=True)
        p = torch.softmax(x, -1)
        adjusted = d * (log_z - torch.log(e_i)) + (1 - d) * (x - torch.log(e + e_i * p))
        noise = adjusted - x
    surrogate = torch.softmax((x + noise) / tau, -1).mean(0)
    return (d - surrogate.detach() + surrogate).movedim(-1, dim)


def gumbel_rao_jax(key, x, tau, dim, k=GUMBEL_RAO_SAMPLES):
    """The Gumbel-Rao estimator in JAX, as gumbel_rao_torch."""
    import jax
    import jax.numpy as jnp

    x = jnp.moveaxis(x, dim, -1)
    k1, k2 = jax.random.split(key)
    index = jnp.argmax(x + jax.random.gumbel(k1, x.shape, x.dtype), -1)
    d = jax.nn.one_hot(index, x.shape[-1], dtype=x.dtype)
    xs = jax.lax.stop_gradient(x)
    e = jax.random.exponential(k2, (k,) + x.shape, x.dtype)
    e_i = (d * e).sum(-1, keepdims=True)
    log_z = jax.nn.logsumexp(xs, -1, keepdims=True)
    p = jax.nn.softmax(xs, -1)
    adjusted = d * (log_z - jnp.log(e_i)) + (1 - d) * (xs - jnp.log(e + e_i * p))
    surrogate = jax.nn.softmax((x + (adjusted - xs)) / tau, -1).mean(0)
    return jnp.moveaxis(d - jax.lax.stop_gradient(surrogate) + surrogate, -1, dim)


def gumbel_rao_rows(device, peer):
    """Gumbel-Rao forward + backward rows of one peer."""
    rows = []
    for shape, dim in GUMBEL_RAO_SHAPES:
        name = "gumbel-rao/forward_backward/" + "x".join(map(str, shape))
        name += "" if dim == len(shape) - 1 else f"/dim{dim}"
        if not wanted(name):
            continue
        if peer == "jax":
            import jax
            import jax.numpy as jnp

            key = jax.random.key(0)
            logits = jax.random.normal(jax.random.key(1), shape, jnp.float32)
            weights = jax.random.uniform(jax.random.key(2), shape, jnp.float32)
            grad = jax.jit(jax.grad(
                lambda x, key, dim=dim: jnp.sum(gumbel_rao_jax(key, x, TAU, dim) * weights)))
            fn = lambda grad=grad, logits=logits: grad(logits, key).block_until_ready()
            device_for_sync = torch.device("cpu")
        else:
            logits = torch.randn(shape, device=device)
            weights = torch.rand(shape, device=device)

            def loss(x, dim=dim, weights=weights):
                return (gumbel_rao_torch(x, TAU, dim) * weights).sum()

            if peer == "compile":
                loss = torch.compile(loss)

            def fn(loss=loss, logits=logits):
                x = logits.detach().requires_grad_()
                loss(x).backward()
                return x.grad

            device_for_sync = device
        rows.append({"name": name, "peer": peer, "median_s": median_time(fn, device_for_sync)})
    return rows


def layer_rows(device, peers):
    rows = []
    if "eager" in peers:
        rows += torch_rows(device, compiled=False)
    if "compile" in peers:
        import torch._dynamo
        # One compiled function per row and mode: more than the default cache of 8.
        torch._dynamo.config.cache_size_limit = 256
        rows += torch_rows(device, compiled=True)
    if "jax" in peers:
        rows += jax_rows()
    for peer in peers:
        rows += gumbel_rao_rows(device, peer)
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

    return {"name": "vae/train_step/100", "peer": "eager",
            "median_s": median_time(step, device, min_time=3.0)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--peers", default=",".join(PEERS),
                        help="comma-separated, of eager, compile, jax (JAX on the CPU only)")
    parser.add_argument("--only", help="run only the rows whose name matches this regex")
    args = parser.parse_args()
    global ONLY
    ONLY = re.compile(args.only) if args.only else None
    device = torch.device(args.device)
    peers = args.peers.split(",")
    threads = int(os.environ.get("BENCH_THREADS", "2"))
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    rows = layer_rows(device, peers)
    if wanted("vae/train_step/100"):
        rows.append(vae_row(device))
    versions = {"torch": torch.__version__}
    if "jax" in peers:
        import jax
        versions["jax"] = jax.__version__
    json.dump({**versions, "device": name, "threads": threads, "rows": rows}, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
