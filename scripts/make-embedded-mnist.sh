#!/usr/bin/env bash
# Rebuilds the embedded MNIST subset (crates/mnist-run/data/mnist-binarized-12k.bin) from
# the canonical IDX files: fetches and verifies them (scripts/fetch-mnist.sh), then keeps the
# first 10,000 training and 2,000 test images, binarized at pixel > 127 and bit-packed.
#
#   scripts/make-embedded-mnist.sh [MNIST_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-data/mnist}
scripts/fetch-mnist.sh "$dir"
cargo run --release --example prepare_mnist -- --mnist "$dir" \
  --out crates/mnist-run/data/mnist-binarized-12k.bin --train 10000 --test 2000
