#!/usr/bin/env bash
# Installs what the benchmark suite's PyTorch rows need (pnpm bench; benchmarks/README.md):
# Debian's python3-torch for /usr/bin/python3, and libopenblas0-pthread, which the alternatives
# system makes the libblas.so.3 that Debian's torch calls; without it torch's matmul falls back to
# the reference BLAS, about ten times slower, and the comparison would be unfair to PyTorch.
# The JavaScript peers (TensorFlow.js, jax-js) are dev dependencies of benchmarks/ and come with
# `pnpm install`. Idempotent: apt-get runs only when a package is missing. Off Debian, or where
# nothing can be installed, it says so and succeeds: the suite then reports PyTorch as not run.
set -euo pipefail

packages=(python3-torch libopenblas0-pthread)

if ! command -v dpkg >/dev/null 2>&1; then
  echo "setup-peers: no dpkg here; for the PyTorch rows install PyTorch for a python3 and point SCORCH_BENCH_PYTHON at it" >&2
  exit 0
fi

if ! bash "$(dirname "$0")/apt-install.sh" setup-peers "${packages[@]}"; then
  echo "setup-peers: could not install ${packages[*]}; pnpm bench will report PyTorch as not run" >&2
  exit 0
fi

# Debian's torch lives in /usr/lib/python3/dist-packages, which only Debian's own python3 reads
# (a pyenv or venv python3 earlier on PATH does not): the suite runs /usr/bin/python3.
if /usr/bin/python3 -c 'import torch' >/dev/null 2>&1; then
  echo "setup-peers: $(/usr/bin/python3 -c 'import torch; print("torch", torch.__version__)') for /usr/bin/python3, BLAS $(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null || echo unknown)"
else
  echo "setup-peers: /usr/bin/python3 cannot import torch after installing ${packages[*]}; pnpm bench will report PyTorch as not run" >&2
fi
