#!/usr/bin/env bash
# Prepares a GPU benchmark run (bench/gpu.sh) on this machine: builds the wgpu benchmarks, and the
# integration tests that compare the GPU kernel with the CPU one, in release mode into
# .gpubin/benches.tar.xz and downloads the Vulkan loader's Debian package into
# .gl/, the two folders the run carries to a machine that has a GPU but no registry (both are
# git-ignored through .git/info/exclude). The build is the one `BENCH_FEATURES=flex,ndarray,wgpu bench/run.sh`
# makes; bench/gpu.sh runs only its wgpu benchmarks.
set -euo pipefail
cd "$(dirname "$0")/.."
for dir in .gl .gpubin; do
  grep -qx "/$dir/" .git/info/exclude || echo "/$dir/" >> .git/info/exclude
done
mkdir -p .gpubin .gl
cargo bench --no-run --no-default-features --features flex,ndarray,wgpu \
  --bench gumbel_softmax --bench vae_step --bench tokens --test gumbel --message-format=json \
  | python3 -c '
import json, shutil, sys
for line in sys.stdin:
    msg = json.loads(line)
    if msg.get("reason") == "compiler-artifact" and msg.get("executable") \
            and msg["target"]["kind"] in (["bench"], ["test"]):
        shutil.copy(msg["executable"], ".gpubin/" + msg["target"]["name"])
        print("built", msg["target"]["name"])'
strip .gpubin/gumbel_softmax .gpubin/vae_step .gpubin/tokens .gpubin/gumbel
# The binaries are ~200 MB; what travels is limited to 64 MiB, so they go compressed.
tar -C .gpubin -cJf .gpubin/benches.tar.xz gumbel_softmax vae_step tokens gumbel
rm .gpubin/gumbel_softmax .gpubin/vae_step .gpubin/tokens .gpubin/gumbel
# The Vulkan loader, and glvnd's libraries, without which NVIDIA's Vulkan driver is not found
# ("no adapter found", seen 2026-12-04).
if ! ls .gl/libvulkan1_*.deb .gl/libglvnd0_*.deb > /dev/null 2>&1; then
  lists=$(mktemp -d); mkdir -p "$lists/partial"
  o="-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=$lists"
  apt-get $o update > /dev/null
  (cd .gl && apt-get $o download libvulkan1 libglvnd0 libegl1 libgl1 libglx0)
fi
du -sh .gpubin .gl
