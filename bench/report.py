"""Writes docs/benchmarks.md from criterion's results (target/criterion-system: glibc's malloc;
target/criterion: mimalloc) and the peers' (target/pytorch-bench.json: eager PyTorch,
torch.compile, JAX; target/pytorch-tokens.json: the token sampler's PyTorch peers): medians side
by side, ratios, the machine, the versions, the date. A backend (or the token sampler) this run
did not measure keeps its section from the previous docs/benchmarks.md, marked as such.
Each bench/results/gpu-*.json (written by bench/gpu.sh on a machine with a GPU) adds a section.

    python3 bench/report.py > target/benchmarks.md && mv target/benchmarks.md docs/benchmarks.md
    python3 bench/report.py gpu-json CRITERION_DIR PYTORCH_JSON NVIDIA_SMI_CSV COPY_GBS > gpu.json
"""
import datetime
import glob
import json
import os
import platform
import subprocess
import sys


def criterion_medians(root="target/criterion"):
    """{full_id: median seconds} for every benchmark criterion has run."""
    medians = {}
    for dirpath, _, files in os.walk(root):
        if os.path.basename(dirpath) != "new" or "benchmark.json" not in files:
            continue
        with open(os.path.join(dirpath, "benchmark.json")) as f:
            full_id = json.load(f)["full_id"]
        with open(os.path.join(dirpath, "estimates.json")) as f:
            medians[full_id] = json.load(f)["median"]["point_estimate"] * 1e-9
    return medians


def fmt(seconds):
    if seconds is None:
        return "–"
    for unit, scale in (("s", 1), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def ratio(a, b):
    return f"{a / b:.2f}" if a is not None and b else "–"


def elements(shape):
    n = 1
    for d in shape.split("/")[0].split("x"):
        n *= int(d)
    return n


def gpu_json(criterion_dir, pytorch_json, smi_csv, copy_gbs):
    """One file holding a GPU run: the card, its copy bandwidth (GB/s, read + write, 1 GiB through
    PyTorch), burn-gumbel's medians and PyTorch's."""
    with open(pytorch_json) as f:
        torch = json.load(f)
    with open(smi_csv) as f:
        name, driver, memory = [x.strip() for x in f.readline().split(",")]
    with open(copy_gbs) as f:
        bandwidth = float(f.read())
    return {"date": datetime.date.today().isoformat(), "card": name, "driver": driver,
            "memory": memory, "copy_gbs": bandwidth, "burn": criterion_medians(criterion_dir),
            "pytorch": torch}


def gpu_section(path):
    """The Markdown section of one GPU run: wgpu against PyTorch CUDA, and bandwidth."""
    with open(path) as f:
        run = json.load(f)
    ours = {k[len("wgpu/"):]: v for k, v in run["burn"].items() if k.startswith("wgpu/")}
    theirs = {row["name"]: row["median_s"] for row in run["pytorch"]["rows"]
              if row.get("peer", "eager") == "eager"}
    out = [f"\n## wgpu on {run['card']}\n",
           f"Produced by `bench/gpu.sh` on {run['date']}: {run['card']} ({run['memory']}, driver "
           f"{run['driver']}), Burn's wgpu backend on Vulkan against PyTorch "
           f"{run['pytorch']['torch']} on CUDA, both synchronizing the device inside the timed "
           "region. `GB/s` counts the fewest bytes a forward pass must move (read the logits, "
           "write the sample: 8 bytes per element) over its time; the copy rows count a read and "
           "a write the same way. The card copies 1 GiB at "
           f"{run['copy_gbs']:.0f} GB/s (read + write, through PyTorch): the ceiling of those "
           "columns.\n",
           "| benchmark | burn-gumbel | PyTorch CUDA | ratio | / copy | GB/s (burn-gumbel) "
           "| GB/s (PyTorch) |",
           "|---|---:|---:|---:|---:|---:|---:|"]

    def shape_of(name):
        """`8x512x32x32/dim1` of `soft/forward/8x512x32x32/dim1`, `64x50000` of `copy/64x50000`."""
        parts = name.split("/")
        return "/".join(parts[1:] if parts[0] == "copy" else parts[2:])

    def gbs(name, seconds):
        if seconds is None or "/forward_backward/" in name:
            return "–"
        return f"{8 * elements(shape_of(name)) / seconds / 1e9:.0f}"

    names = sorted((n for n in ours if not n.startswith("vae/")),
                   key=lambda n: (n.startswith("copy/"), n.split("/")[0],
                                  "/".join(n.split("/")[1:2]) if not n.startswith("copy/") else "",
                                  "/dim1" in n, elements(shape_of(n)), shape_of(n)))
    for name in names:
        shape = shape_of(name)
        copy_s = ours.get(f"copy/{shape}")
        label = f"{name} (memory floor)" if name.startswith("copy/") else name
        out.append(f"| {label} | {fmt(ours[name])} | {fmt(theirs.get(name))} | "
                   f"{ratio(ours[name], theirs.get(name))} | {ratio(ours[name], copy_s)} | "
                   f"{gbs(name, ours[name])} | {gbs(name, theirs.get(name))} |")
    vae, t = ours.get("vae/train_step/100"), theirs.get("vae/train_step/100")
    if vae is not None:
        out.append(f"| VAE training step, batch 100 | {fmt(vae)} ({1 / vae:.1f} steps/s) | "
                   f"{fmt(t)} ({1 / t:.1f} steps/s) | {ratio(vae, t)} | – | – | – |")
    return out


PEERS = (("eager", "PyTorch"), ("compile", "torch.compile"), ("jax", "JAX"))
HEADINGS = {"flex": "## flex", "ndarray": "## ndarray",
            "wgpu": "## wgpu on lavapipe (Mesa's software Vulkan, on this machine's CPU)",
            "tokens": "## Token sampling on flex"}
# The token sampler's shapes (benches/tokens.rs): their rows go into the token section only.
TOKEN_SHAPES = ("1x32000", "1x128256", "64x128256", "256x151936")
TOKEN_PEERS = (("multinomial", "PyTorch multinomial"), ("race", "PyTorch race"),
               ("race_compile", "race, torch.compile"))


def is_token_row(name):
    """Whether a row (without its backend) belongs to the token section."""
    return name.startswith("tokens/") or name.split("/", 1)[-1].split("/")[0] in TOKEN_SHAPES


def token_section(system, mimalloc, peers_run):
    """The token sampler's table on flex: burn-gumbel against PyTorch's samplers and Burn's own
    `Tensor::categorical` (temperature only), with the goals' ratios."""
    peers = {peer: {row["name"]: row["median_s"] for row in peers_run["rows"]
                    if row["peer"] == peer} for peer, _ in TOKEN_PEERS}
    out = [HEADINGS["tokens"], "",
           f"Measured {datetime.date.today().isoformat()} by `bench/run.sh` (or "
           "`BENCH_ONLY=tokens bench/run.sh`), on the machine of the line at the top of the page. "
           f"`sample_tokens` (logits to ids read back on the host) against PyTorch "
           f"{peers_run['torch']}: `multinomial` is Hugging Face's warpers then "
           "`torch.multinomial`, `race` the exponential race `argmax(probs / q)` after the same "
           "filters (eager, and under `torch.compile`); Burn's `Tensor::categorical` on "
           "`softmax(logits / T)` (no key, no filters) beside the temperature rows. Logits "
           "`N(0, 2²)`, T = 0.8, top-k 50, top-p 0.9; `mixed` cycles greedy, temperature, top-k, "
           "top-p and min-p 0.05 over the rows. `vs best peer` is burn-gumbel (glibc) over the "
           "fastest peer; `/ copy` over a copy of the logits (the memory floor). Goals: "
           "temperature ≤ 0.5× the best peer and ≤ 2× a copy; top-p ≤ 1.0× the best peer.", "",
           "| benchmark | burn-gumbel (glibc) | burn-gumbel (mimalloc) | "
           + " | ".join(label for _, label in TOKEN_PEERS)
           + " | Burn `categorical` | vs best peer | / copy |",
           "|---|" + "---:|" * (len(TOKEN_PEERS) + 5)]
    for shape in TOKEN_SHAPES:
        for suffix in ("", "/bf16"):
            name = shape + suffix
            copy = system.get(f"flex/copy/{name}")
            if copy is None and f"flex/tokens/temperature/{name}" not in system:
                continue
            out.append(f"| copy/{name} (memory floor) | {fmt(copy)} | "
                       f"{fmt(mimalloc.get(f'flex/copy/{name}'))} | "
                       f"{fmt(peers['multinomial'].get(f'copy/{name}'))} (PyTorch clone) | – | – | – "
                       "| – | 1.00 |")
            for mode in ("temperature", "top_k", "top_p", "mixed"):
                row = f"tokens/{mode}/{name}"
                ours = system.get(f"flex/{row}")
                theirs = [peers[peer].get(row) for peer, _ in TOKEN_PEERS]
                burn = system.get(f"flex/tokens/burn_categorical/{name}") if mode == "temperature" else None
                present = [t for t in theirs + [burn] if t is not None]
                out.append(f"| {row} | {fmt(ours)} | {fmt(mimalloc.get(f'flex/{row}'))} | "
                           + " | ".join(fmt(t) for t in theirs)
                           + f" | {fmt(burn)} | {ratio(ours, min(present) if present else None)} | "
                           f"{ratio(ours, copy)} |")
    return out


def row_order(name):
    """Rows by kind (categories last, channels-first, f16, bf16), size, then op and mode."""
    op, rest = name.split("/", 1)
    mode, shape = rest.split("/", 1) if op != "copy" else ("", rest)
    kind = next((i for i, k in enumerate(("/dim1", "/f16", "/bf16"), 1) if shape.endswith(k)), 0)
    return (kind, elements(shape), shape, op != "copy", op, mode)


def previous_sections(path):
    """{backend: lines} of the sections of an earlier docs/benchmarks.md, each with a line saying
    it was carried over (once), and the date of that run."""
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        text = f.read()
    date = next((line.split(" on ", 1)[1].split(":")[0] for line in text.splitlines()
                 if line.startswith("Produced by `bench/run.sh` on ")), "an earlier date")
    sections = {}
    for backend, heading in HEADINGS.items():
        lines = text.splitlines()
        if heading not in lines:
            continue
        start = lines.index(heading)
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")),
                   len(lines))
        body = lines[start + 1:end]
        if not any(line.startswith("Carried over") for line in body):
            body = ["", f"Carried over from the run of {date}: this run did not measure "
                    f"{backend}. Its ratios are against eager PyTorch alone, with the benchmarks' "
                    "allocator (mimalloc)."] + body
        sections[backend] = [heading] + body
    return sections


def main():
    if sys.argv[1:2] == ["gpu-json"]:
        json.dump(gpu_json(*sys.argv[2:6]), sys.stdout, indent=1)
        return
    mimalloc = criterion_medians("target/criterion")
    system = criterion_medians("target/criterion-system")
    if os.path.exists("target/pytorch-bench.json"):
        with open("target/pytorch-bench.json") as f:
            peers_run = json.load(f)
    else:  # a run of the token rows alone (BENCH_ONLY=tokens)
        with open("target/pytorch-tokens.json") as f:
            peers_run = dict(json.load(f), rows=[])
    peers = {peer: {row["name"]: row["median_s"] for row in peers_run["rows"]
                    if row.get("peer", "eager") == peer} for peer, _ in PEERS}
    measured = {k.split("/")[0] for k in list(system) + list(mimalloc)
                if not is_token_row(k.split("/", 1)[1])}
    tokens_run = None
    if os.path.exists("target/pytorch-tokens.json") and any(
            k.startswith("flex/tokens/") for k in system):
        with open("target/pytorch-tokens.json") as f:
            tokens_run = json.load(f)
    backends = [b for b in HEADINGS if b in measured]
    cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"],
                         capture_output=True, text=True).stdout.strip()
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    out = []
    out.append("# Benchmarks\n")
    out.append(f"Produced by `bench/run.sh` on {datetime.date.today().isoformat()}: "
               f"{cpu or platform.processor()}, {os.cpu_count()} cores, {platform.system()} "
               f"{platform.release()}; {rustc}, Burn 0.22.1; PyTorch {peers_run['torch']} "
               f"(eager and torch.compile) and JAX {peers_run.get('jax', '–')} (jitted), "
               f"{peers_run['threads']} threads, `OMP_WAIT_POLICY=PASSIVE`.\n")
    out.append("Medians. burn-gumbel is measured twice: with the system allocator (glibc's malloc, "
               "what a user's program has: `--features system-allocator`) and with mimalloc; "
               "**the ratios use the system allocator's numbers**. `vs PyTorch` is burn-gumbel / "
               "eager PyTorch, `vs best peer` burn-gumbel / the fastest of eager PyTorch, "
               "torch.compile and JAX (below 1: burn-gumbel is faster); `/ copy` is the time over "
               "that of copying a tensor of the same size on the same device (the memory floor). "
               "Forward + backward uses the loss `Σ y · w`. Rows named `/dim1` sample along axis 1 "
               "of a `[batch, codes, height, width]` map; `/f16` and `/bf16` take half-precision "
               "logits (and weights).\n")
    for backend in backends:
        out.append(f"\n{HEADINGS[backend]}\n")
        out.append("| benchmark | burn-gumbel (glibc) | burn-gumbel (mimalloc) | PyTorch | "
                   "torch.compile | JAX | vs PyTorch | vs best peer | / copy |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        prefix = backend + "/"
        names = {k[len(prefix):] for k in list(system) + list(mimalloc) if k.startswith(prefix)}
        rows = sorted((n for n in names if not n.startswith("vae/") and not is_token_row(n)),
                      key=row_order)
        for name in rows:
            ours = system.get(prefix + name)
            theirs = [peers[peer].get(name) for peer, _ in PEERS]
            present = [t for t in theirs if t is not None]
            best = min(present) if present else None
            if name.startswith("copy/"):
                label, vs_best, per_copy = f"{name} (memory floor)", "–", "1.00"
            else:
                shape = name.split("/", 2)[2]
                label, vs_best = name, ratio(ours, best)
                per_copy = ratio(ours, system.get(f"{prefix}copy/{shape}"))
            out.append(f"| {label} | {fmt(ours)} | {fmt(mimalloc.get(prefix + name))} | "
                       + " | ".join(fmt(t) for t in theirs)
                       + f" | {ratio(ours, theirs[0])} | {vs_best} | {per_copy} |")
        vae = system.get(f"{prefix}vae/train_step/100")
        vae_mi = mimalloc.get(f"{prefix}vae/train_step/100")
        t = peers["eager"].get("vae/train_step/100")
        if vae is not None or vae_mi is not None:
            steps = lambda s: f"{fmt(s)} ({1 / s:.1f} steps/s)" if s else "–"
            out.append(f"| VAE training step, batch 100 | {steps(vae)} | {steps(vae_mi)} | "
                       f"{steps(t)} | – | – | {ratio(vae, t)} | – | – |")
    if tokens_run is not None:
        out.append("")
        out.extend(token_section(system, mimalloc, tokens_run))
        backends.append("tokens")
    for backend, lines in previous_sections("docs/benchmarks.md").items():
        if backend not in backends:
            out.append("")
            out.extend(lines)
    here = os.path.dirname(__file__)
    for path in sorted(glob.glob(os.path.join(here, "results", "gpu-*.json"))):
        out.extend(gpu_section(path))
    analysis = os.path.join(here, "analysis.md")
    if os.path.exists(analysis):
        with open(analysis) as f:
            out.append(f.read())
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
