"""The peers of burn-gumbel's token-sampler benchmarks (benches/tokens.rs): next-token sampling
from logits [batch, vocab] as PyTorch users write it.

- `multinomial` (eager): Hugging Face's logits warpers (temperature; top-k by `torch.topk`;
  top-p by a full sort, a cumulative sum and a scatter back; min-p against the largest
  probability), then `softmax` and `torch.multinomial(probs, 1)`.
- `race` (eager) and `race_compile` (`torch.compile` of the same function): the exponential race
  of vLLM's sampler, `argmax(probs / q)` with `q ~ Exp(1)`, after the same filters.

Modes, as the Rust side: `temperature` (T = 0.8), `top_k` (50), `top_p` (0.9), `mixed` (per-row
settings cycling through greedy, T = 0.8, top-k 50, top-p 0.9, min-p 0.05: per-row thresholds
from one sort, as vLLM batches them). Logits N(0, 2²), f32 and bf16 (computed in f32, as the
warpers do after `.float()`); every call ends with the ids on the host (`.tolist()`).

    python tokens.py            # BENCH_THREADS threads (bench/run.sh sets it)
    python tokens.py --device cuda

Prints JSON: {"torch": version, "device": name, "threads": n,
 "rows": [{"name": "tokens/top_p/64x128256", "peer": "race", "median_s": ...}, ...]}
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from bench import median_time  # noqa: E402

SHAPES = [(1, 32000), (1, 128256), (64, 128256), (256, 151936)]
MODES = ("temperature", "top_k", "top_p", "mixed")
T, K, P, MIN_P = 0.8, 50, 0.9, 0.05


def settings(mode, batch, device):
    """Per-row (temperature, top_k, top_p, min_p) as [batch, 1] tensors; temperature 0 is greedy,
    top_k = vocab, top_p = 1 and min_p = 0 keep every token."""
    t = torch.full((batch, 1), T, device=device)
    k = torch.full((batch, 1), 0, device=device, dtype=torch.long)
    p = torch.full((batch, 1), 1.0, device=device)
    m = torch.full((batch, 1), 0.0, device=device)
    if mode == "top_k":
        k[:] = K
    elif mode == "top_p":
        p[:] = P
    elif mode == "mixed":
        r = torch.arange(batch, device=device)
        t[r % 5 == 0] = 0.0
        k[r % 5 == 2] = K
        p[r % 5 == 3] = P
        m[r % 5 == 4] = MIN_P
    return t, k, p, m


def filtered(logits, t, k, p, m, mode):
    """logits / T with the filtered tokens at -inf (greedy rows: all but their argmax)."""
    x = logits.float()
    greedy = t == 0
    x = x / torch.where(greedy, torch.ones_like(t), t)
    if mode == "temperature":
        return x
    if mode == "top_k":
        kth = torch.topk(x, K, dim=-1).values[:, -1:]
        return x.masked_fill(x < kth, float("-inf"))
    # Per-row top-k and top-p from one descending sort, as vLLM batches them.
    sorted_x, order = torch.sort(x, dim=-1, descending=True)
    vocab = x.shape[-1]
    k_eff = torch.where(k > 0, k, torch.full_like(k, vocab))
    kth = sorted_x.gather(-1, k_eff - 1)
    sorted_x = sorted_x.masked_fill(sorted_x < kth, float("-inf"))
    probs = sorted_x.softmax(-1)
    before = probs.cumsum(-1) - probs  # the mass of the larger tokens
    sorted_x = sorted_x.masked_fill(before >= p, float("-inf"))
    x = torch.empty_like(x).scatter_(-1, order, sorted_x)
    probs = x.softmax(-1)
    x = x.masked_fill(probs < m * probs.amax(-1, keepdim=True), float("-inf"))
    if mode == "mixed":
        top = logits.float().argmax(-1, keepdim=True)
        x = torch.where(greedy, torch.full_like(x, float("-inf")).scatter(-1, top, 0.0), x)
    return x


def multinomial(logits, t, k, p, m, mode):
    return torch.multinomial(filtered(logits, t, k, p, m, mode).softmax(-1), 1)


def race(logits, t, k, p, m, mode):
    probs = filtered(logits, t, k, p, m, mode).softmax(-1)
    q = torch.empty_like(probs).exponential_()
    return probs.div(q).argmax(-1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    threads = int(os.environ.get("BENCH_THREADS", os.cpu_count()))
    torch.set_num_threads(threads)
    compiled = torch.compile(race, dynamic=False)
    rows = []
    for batch, vocab in SHAPES:
        for dtype, suffix in ((torch.float32, ""), (torch.bfloat16, "/bf16")):
            name = f"{batch}x{vocab}{suffix}"
            logits = (2.0 * torch.randn(batch, vocab, device=device)).to(dtype)
            rows.append({"name": f"copy/{name}", "peer": "multinomial",
                         "median_s": median_time(lambda: logits.clone(), device)})
            for mode in MODES:
                s = settings(mode, batch, device)
                for peer, fn in (("multinomial", multinomial), ("race", race),
                                 ("race_compile", compiled)):
                    call = lambda fn=fn, mode=mode: fn(logits, *s, mode).tolist()
                    try:
                        median = median_time(call, device, min_time=0.5, min_runs=5)
                    except Exception as e:
                        print(f"{peer} tokens/{mode}/{name}: {type(e).__name__}: {e}"
                              .splitlines()[0], file=sys.stderr)
                        continue
                    rows.append({"name": f"tokens/{mode}/{name}", "peer": peer,
                                 "median_s": median})
                    print(f"{peer} tokens/{mode}/{name}: {median * 1e3:.3f} ms", file=sys.stderr)
    json.dump({"torch": torch.__version__, "device": str(device), "threads": threads,
               "rows": rows}, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
