"""Writes docs/benchmarks.md from criterion's results (target/criterion) and PyTorch's
(target/pytorch-bench.json): medians side by side, ratios, the machine, the versions, the date.
Each bench/results/gpu-*.json (written by bench/gpu.sh on a machine with a GPU) adds a section.

    python3 bench/report.py > docs/benchmarks.md
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
    theirs = {row["name"]: row["median_s"] for row in run["pytorch"]["rows"]}
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

    def gbs(name, seconds):
        if seconds is None or "/forward_backward/" in name:
            return "–"
        return f"{8 * elements(name.rsplit('/', 1)[1]) / seconds / 1e9:.0f}"

    names = sorted(ours, key=lambda n: (n.startswith("vae/"), n.startswith("copy/"),
                                        n.split("/")[0], n.split("/")[-2], elements(n.rsplit("/", 1)[1])
                                        if not n.startswith("vae/") else 0))
    for name in names:
        if name.startswith("vae/"):
            continue
        shape = name.rsplit("/", 1)[1]
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


def main():
    if sys.argv[1:2] == ["gpu-json"]:
        json.dump(gpu_json(*sys.argv[2:6]), sys.stdout, indent=1)
        return
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
        heading = {"wgpu": "wgpu on lavapipe (Mesa's software Vulkan, on this machine's CPU)"}
        out.append(f"\n## {heading.get(backend, backend)}\n")
        out.append("| benchmark | burn-gumbel | PyTorch CPU | ratio | / copy |")
        out.append("|---|---:|---:|---:|---:|")
        names = sorted(k[len(backend) + 1:] for k in ours if k.startswith(backend + "/"))
        for name in names:
            if name.startswith("copy/") or name.startswith("vae/"):
                continue
            shape = name.split("/", 2)[2]  # the shape, with /dim1 for channels-first rows
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
