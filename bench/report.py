"""Writes docs/benchmarks.md from criterion's results (target/criterion) and PyTorch's
(target/pytorch-bench.json): medians side by side, ratios, the machine, the versions, the date."""
import datetime
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


def main():
    ours = criterion_medians()
    with open("target/pytorch-bench.json") as f:
        torch = json.load(f)
    theirs = {row["name"]: row["median_s"] for row in torch["rows"]}
    backends = sorted({k.split("/")[0] for k in ours}, key=["flex", "ndarray", "wgpu"].index)
    cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"],
                         capture_output=True, text=True).stdout.strip()
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    out = []
    out.append("# Benchmarks\n")
    out.append(f"Produced by `bench/run.sh` on {datetime.date.today().isoformat()}: "
               f"{cpu or platform.processor()}, {os.cpu_count()} cores, {platform.system()} "
               f"{platform.release()}; {rustc}, Burn 0.22.1; PyTorch {torch['torch']} with "
               f"{torch['threads']} threads and `OMP_WAIT_POLICY=PASSIVE`.\n")
    out.append("Medians. `ratio` is burn-gumbel / PyTorch (below 1: burn-gumbel is faster); "
               "`/ copy` is the time over that of copying a tensor of the same size on the same "
               "device (the memory floor). Forward + backward uses the loss `Σ y · w`.\n")
    for backend in backends:
        out.append(f"\n## {backend}\n")
        out.append("| benchmark | burn-gumbel | PyTorch CPU | ratio | / copy |")
        out.append("|---|---:|---:|---:|---:|")
        names = sorted(k[len(backend) + 1:] for k in ours if k.startswith(backend + "/"))
        for name in names:
            if name.startswith("copy/") or name.startswith("vae/"):
                continue
            shape = name.rsplit("/", 1)[1]
            ours_s = ours[f"{backend}/{name}"]
            copy_s = ours.get(f"{backend}/copy/{shape}")
            out.append(f"| {name} | {fmt(ours_s)} | {fmt(theirs.get(name))} | "
                       f"{ratio(ours_s, theirs.get(name))} | {ratio(ours_s, copy_s)} |")
        for name in names:
            if name.startswith("copy/"):
                out.append(f"| {name} (memory floor) | {fmt(ours[f'{backend}/{name}'])} | "
                           f"{fmt(theirs.get(name))} | {ratio(ours[f'{backend}/{name}'], theirs.get(name))} | 1.00 |")
        vae = ours.get(f"{backend}/vae/train_step/100")
        if vae is not None:
            t = theirs.get("vae/train_step/100")
            out.append(f"| VAE training step, batch 100 | {fmt(vae)} ({1 / vae:.1f} steps/s) | "
                       f"{fmt(t)} ({1 / t:.1f} steps/s) | {ratio(vae, t)} | – |")
    analysis = os.path.join(os.path.dirname(__file__), "analysis.md")
    if os.path.exists(analysis):
        with open(analysis) as f:
            out.append(f.read())
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
