#!/usr/bin/env bash
# Installs Debian's Chromium, which the playground's end-to-end test (tests/playground.e2e.test.ts)
# drives through playwright-core: headless, with WebGPU over SwiftShader, so the page's WGSL
# kernels run on a machine without a GPU. Playwright's own browser download is not used: this
# machine reaches only package registries, and Debian's build ships SwiftShader's Vulkan driver.
# Idempotent: apt-get runs only when /usr/bin/chromium is missing. Works as root, or via sudo.
set -euo pipefail

chromium_binary=/usr/bin/chromium

if [[ -x "$chromium_binary" ]]; then
  echo "setup-browser: $chromium_binary already installed"
  exit 0
fi
if [[ "$(uname -s)" != Linux ]] || ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-browser: no apt-get here; install Chromium with your package manager so that $chromium_binary exists" >&2
  exit 1
fi

if [[ "$(id -u)" -eq 0 ]]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  echo "setup-browser: $chromium_binary is missing, and this is not root with no sudo to install it" >&2
  exit 1
fi

echo "setup-browser: installing chromium"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -q
"${as_root[@]}" apt-get install -y -q --no-install-recommends chromium
test -x "$chromium_binary" || { echo "setup-browser: apt-get finished but $chromium_binary is still missing" >&2; exit 1; }
