#!/usr/bin/env bash
# One-time, idempotent set-up on a fresh machine (Node 20 + npm; pnpm not required):
# installs pnpm 10 when it is missing, the workspace's dependencies, and, where the project's
# WebGPU tests need them, the Debian packages of Mesa's software adapter.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v pnpm >/dev/null 2>&1 || ! pnpm --version 2>/dev/null | grep -q '^10\.'; then
  echo "setup: installing pnpm 10 with npm" >&2
  npm install -g pnpm@10 >/dev/null
fi

if [ -x scripts/setup-webgpu.sh ] || [ -f scripts/setup-webgpu.sh ]; then
  bash scripts/setup-webgpu.sh
fi

# CI=true makes pnpm refuse to touch a lockfile; the committed one is used as is.
pnpm install --frozen-lockfile --reporter=append-only 2>&1 | grep -v '^Progress' || true
test -d node_modules/.pnpm || { echo "setup: pnpm install failed" >&2; exit 1; }
