#!/usr/bin/env bash
# Installs what Dawn (the `webgpu` npm package) needs to find a WebGPU adapter on a Linux machine
# without a GPU: EGL and Mesa's llvmpipe driver, which Dawn's OpenGL backend uses in WebGPU
# compatibility mode. Idempotent: packages already present are left alone, and apt-get runs only
# when something is missing. Works as root, or through sudo otherwise.
set -euo pipefail

packages=(libegl1 libegl-mesa0 libgl1-mesa-dri)

if [[ "$(uname -s)" != Linux ]]; then
  echo "setup-webgpu: nothing to do on $(uname -s) (Dawn uses Metal/D3D12 there)"
  exit 0
fi
if ! command -v dpkg >/dev/null 2>&1; then
  echo "setup-webgpu: no dpkg on this system; install EGL and Mesa's llvmpipe (${packages[*]}) with your package manager" >&2
  exit 1
fi

bash "$(dirname "$0")/apt-install.sh" setup-webgpu "${packages[@]}"
