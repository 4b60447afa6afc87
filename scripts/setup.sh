#!/usr/bin/env bash
# One-time, idempotent set-up on a fresh machine (Node 20 + npm; pnpm not required):
# installs pnpm 10 when it is missing, the workspace's dependencies, and the Debian packages
# the WebGPU tests (Mesa's llvmpipe for Dawn), the browser test (Chromium) and the benchmark
# suite's PyTorch rows (python3-torch with OpenBLAS) need.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v pnpm >/dev/null 2>&1 || ! pnpm --version 2>/dev/null | grep -q '^10\.'; then
  echo "setup: installing pnpm 10 with npm" >&2
  npm install -g pnpm@10 >/dev/null
fi

# System packages: Mesa's software adapter for Dawn (WebGPU tests in Node), Debian's Chromium
# for the browser playground's end-to-end test, and PyTorch for pnpm bench's comparison rows.
# Each script is a no-op when done.
bash scripts/setup-webgpu.sh
bash scripts/setup-browser.sh
bash scripts/setup-peers.sh

# The committed lockfile is used as is (CI=true would refuse to change it anyway).
pnpm install --frozen-lockfile --reporter=append-only
