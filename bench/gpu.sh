#!/usr/bin/env bash
# Runs burn-gumbel's wgpu benchmarks and PyTorch's CUDA ones on a machine with an NVIDIA GPU, and
# writes $OUT/gpu.json (bench/report.py turns bench/results/gpu-*.json into a section of
# docs/benchmarks.md). The machine needs no Rust: bench/gpu-prepare.sh builds the benchmarks here
# into .gpubin/benches.tar.xz and fetches the Vulkan loader into .gl/; carry both.
#
#   bench/gpu-prepare.sh                      # here
#   bash bench/gpu.sh                         # there, with .gpubin and .gl carried, OUT set
#   cp $OUT/gpu.json bench/results/gpu-<card>.json && python3 bench/report.py > docs/benchmarks.md
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-target/gpu-out}
mkdir -p "$OUT"
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
python3 -c 'import tarfile; tarfile.open(".gpubin/benches.tar.xz").extractall(".gpubin")'
# NVIDIA's Vulkan driver manifest, wherever this machine's image puts it.
icd=$(ls /usr/local/nvidia/share/vulkan/icd.d/*.json /usr/share/vulkan/icd.d/nvidia*.json \
  /etc/vulkan/icd.d/nvidia*.json /usr/local/nvidia/etc/vulkan/icd.d/*.json 2>/dev/null | head -1)
[ -n "$icd" ] && export VK_DRIVER_FILES=$icd
echo "Vulkan driver manifest: ${icd:-none found}"
export BURN_GUMBEL_BENCH_LARGE=1 BENCH_THREADS=16
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/smi.csv"
# The card's copy bandwidth through PyTorch: a ceiling to read the GB/s columns against.
python3 - <<'PY' > "$OUT/copy-gbs.txt"
import torch
x = torch.empty(1 << 30, dtype=torch.uint8, device="cuda")  # 1 GiB
for _ in range(3): y = x.clone()
start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
start.record()
for _ in range(20): y = x.clone()
end.record(); torch.cuda.synchronize()
s = start.elapsed_time(end) / 1e3 / 20
print(f"{2 * x.numel() / s / 1e9:.0f}")  # GB/s, read + write
PY
status=0
# The GPU kernel against the CPU one on this card: one key, the same hard samples (keyed::), and
# the fused paths against the tensor ops in law (fused::), fully masked rows and masked
# categories (numerics::, gumbel_max::).
.gpubin/gumbel keyed:: fused:: numerics:: gumbel_max:: 2>&1 | tee "$OUT/tests.log" | grep -E '^test |test result' || status=1
# One second of measurement per row (criterion's flags override the benchmarks' 2 s): ~90 rows
# fit a lent machine's 10-minute call with the tests and PyTorch's rows.
timing=(--warm-up-time 0.3 --measurement-time 1)
.gpubin/gumbel_softmax --bench "${timing[@]}" 'wgpu/' 2>&1 | tee "$OUT/burn-gumbel_softmax.log" | grep -E '^wgpu|time:' || status=1
.gpubin/vae_step --bench "${timing[@]}" 'wgpu/' 2>&1 | tee "$OUT/burn-vae_step.log" | grep -E '^wgpu|time:' || status=1
PYTHONUNBUFFERED=1 python3 bench/pytorch/bench.py --device cuda --peers eager > "$OUT/pytorch-cuda.json" || status=1
# The token sampler on wgpu (its logits read back to the host: no GPU kernel yet) and PyTorch's
# samplers on CUDA, raw: report.py does not read them yet, their table is written from these.
.gpubin/tokens --bench "${timing[@]}" 'wgpu/' 2>&1 | tee "$OUT/burn-tokens.log" | grep -E '^wgpu|time:' || status=1
PYTHONUNBUFFERED=1 python3 bench/pytorch/tokens.py --device cuda > "$OUT/pytorch-tokens-cuda.json" || status=1
echo "device-to-device copy of 1 GiB: $(cat "$OUT/copy-gbs.txt") GB/s (read + write)"
python3 bench/report.py gpu-json target/criterion "$OUT/pytorch-cuda.json" "$OUT/smi.csv" \
  "$OUT/copy-gbs.txt" > "$OUT/gpu.json" || status=1
exit $status
