#!/usr/bin/env bash
# Runs burn-gumbel's benchmarks and its peers' (eager PyTorch, torch.compile, jitted JAX) on this
# machine, then writes docs/benchmarks.md.
#
#   bench/run.sh                          # flex against the peers on the CPU
#   BENCH_FEATURES=flex,ndarray,wgpu bench/run.sh
#   BENCH_ONLY=tokens bench/run.sh        # the token sampler's rows alone (about 10 minutes)
#
# burn-gumbel runs twice: with the system allocator (glibc's malloc, what users' programs have;
# target/criterion-system) and with mimalloc (target/criterion). The peers go into
# bench/pytorch/.venv (pip install torch numpy jax[cpu]: about 3 GB with their dependencies), so
# this is not part of CI. About 40 minutes on 2 cores for flex.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_WAIT_POLICY=PASSIVE BENCH_THREADS=${BENCH_THREADS:-2}
venv=bench/pytorch/.venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import torch, jax' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q torch numpy "jax[cpu]"
fi
features=${BENCH_FEATURES:-flex}
case "${BENCH_ONLY:-}" in
  tokens) benches=(--bench tokens) ;;
  "") benches=(--bench gumbel_softmax --bench vae_step --bench tokens) ;;
  *) echo "BENCH_ONLY must be tokens or unset" >&2; exit 2 ;;
esac
# A run of the token rows alone starts from empty criterion folders, so that the report carries
# the other sections over from the previous docs/benchmarks.md instead of reading stale results.
if [ "${BENCH_ONLY:-}" = tokens ]; then rm -rf target/criterion-system target/criterion; fi
CRITERION_HOME=target/criterion-system cargo bench --no-default-features \
  --features "$features,system-allocator" "${benches[@]}"
CRITERION_HOME=target/criterion cargo bench --no-default-features --features "$features" \
  "${benches[@]}"
if [ -z "${BENCH_ONLY:-}" ]; then
  "$venv/bin/python" bench/pytorch/bench.py > target/pytorch-bench.json
fi
"$venv/bin/python" bench/pytorch/tokens.py > target/pytorch-tokens.json
# Through a file of its own: report.py reads the previous docs/benchmarks.md.
python3 bench/report.py > target/benchmarks.md
mv target/benchmarks.md docs/benchmarks.md
echo "wrote docs/benchmarks.md"
