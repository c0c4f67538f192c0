#!/usr/bin/env python3
"""Writes tests/data/token-filters.json: rows of logits, token-sampler settings, and the tokens
that PyTorch's reference filtering keeps (Hugging Face's logits warpers, as
`transformers.generation.logits_process` writes them: TemperatureLogitsWarper, TopKLogitsWarper,
TopPLogitsWarper, MinPLogitsWarper, in that order), for `tests/gumbel/tokens.rs` to compare with
`token_logprobs`.

    bench/pytorch/.venv/bin/python scripts/golden-token-filters.py

A row is kept only if the warpers keep the same tokens in float32 and in float64: a row whose
boundary is within rounding of a threshold would test the rounding, not the filters. Seeded:
the same file on every run of the same PyTorch.
"""
import json
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
NEG_INF = float("-inf")


def warp(scores, temperature, top_k, top_p, min_p):
    """The warpers of Hugging Face's generation, in its order, on [1, vocab] scores."""
    scores = scores / temperature
    if top_k > 0:
        k = min(top_k, scores.size(-1))
        remove = scores < torch.topk(scores, k)[0][..., -1, None]
        scores = scores.masked_fill(remove, NEG_INF)
    if top_p < 1.0:
        sorted_logits, sorted_indices = torch.sort(scores, descending=False)
        cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        sorted_remove = cumulative <= (1 - top_p)
        sorted_remove[..., -1:] = 0
        remove = sorted_remove.scatter(1, sorted_indices, sorted_remove)
        scores = scores.masked_fill(remove, NEG_INF)
    if min_p > 0.0:
        probs = torch.softmax(scores, dim=-1)
        remove = probs < min_p * probs.amax(dim=-1, keepdim=True)
        sorted_indices = torch.argsort(scores, descending=True, dim=-1)
        sorted_remove = torch.gather(remove, dim=-1, index=sorted_indices)
        sorted_remove[..., :1] = False
        remove = sorted_remove.scatter(1, sorted_indices, sorted_remove)
        scores = scores.masked_fill(remove, NEG_INF)
    return scores


def main():
    generator = torch.Generator().manual_seed(2026)
    settings = [
        (1.0, 0, 1.0, 0.0),
        (0.7, 5, 1.0, 0.0),
        (1.0, 0, 0.9, 0.0),
        (1.3, 0, 0.5, 0.0),
        (1.0, 0, 1.0, 0.1),
        (0.8, 40, 0.95, 0.0),
        (1.0, 20, 0.8, 0.05),
        (2.0, 0, 0.7, 0.2),
        (0.5, 10, 0.99, 0.01),
    ]
    rows = []
    while len(rows) < 60:
        t, k, p, m = settings[len(rows) % len(settings)]
        logits = torch.randn(1, 64, generator=generator) * 2.0
        logits[0, torch.randint(0, 64, (3,), generator=generator)] = NEG_INF
        kept32 = torch.isfinite(warp(logits.float(), t, k, p, m))[0]
        kept64 = torch.isfinite(warp(logits.double(), t, k, p, m))[0]
        if not torch.equal(kept32, kept64):
            continue
        rows.append({
            "logits": [x if x != NEG_INF else "-inf" for x in logits[0].tolist()],
            "temperature": t, "top_k": k, "top_p": p, "min_p": m,
            "kept": [i for i, keep in enumerate(kept32.tolist()) if keep],
        })
    out = {"torch": torch.__version__, "rows": rows}
    path = ROOT / "tests" / "data" / "token-filters.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path.relative_to(ROOT)}: {len(rows)} rows")


if __name__ == "__main__":
    main()
