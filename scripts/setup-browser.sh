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
bash "$(dirname "$0")/apt-install.sh" setup-browser chromium
test -x "$chromium_binary" || { echo "setup-browser: apt-get finished but $chromium_binary is still missing" >&2; exit 1; }
