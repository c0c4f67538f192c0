#!/usr/bin/env bash
# Runs burn-gumbel's benchmarks and PyTorch's on this machine, then writes docs/benchmarks.md.
#
#   bench/run.sh                          # flex against PyTorch CPU
#   BENCH_FEATURES=flex,ndarray,wgpu bench/run.sh
#
# PyTorch goes into bench/pytorch/.venv (pip install torch numpy: about 3 GB with its
# dependencies), so this is not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_WAIT_POLICY=PASSIVE BENCH_THREADS=${BENCH_THREADS:-2}
venv=bench/pytorch/.venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import torch' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q torch numpy
fi
cargo bench --no-default-features --features "${BENCH_FEATURES:-flex}" \
  --bench gumbel_softmax --bench vae_step
"$venv/bin/python" bench/pytorch/bench.py > target/pytorch-bench.json
python3 bench/report.py > docs/benchmarks.md
echo "wrote docs/benchmarks.md"
