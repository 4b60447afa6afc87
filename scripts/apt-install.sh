#!/usr/bin/env bash
# Installs Debian packages with apt-get, as root or through sudo: the one place the set-up
# scripts (setup-webgpu.sh, setup-browser.sh, setup-peers.sh) get system packages from.
# Usage: scripts/apt-install.sh WHO PACKAGE...   (WHO prefixes the messages)
set -euo pipefail
who=${1:?usage: apt-install.sh WHO PACKAGE...}
shift
if ! command -v apt-get >/dev/null 2>&1; then
  echo "$who: no apt-get here; install $* with your package manager" >&2
  exit 1
fi
if [[ "$(id -u)" -eq 0 ]]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  echo "$who: $* missing, and this is not root with no sudo to install them" >&2
  exit 1
fi
echo "$who: installing $*"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -q
"${as_root[@]}" apt-get install -y -q --no-install-recommends "$@"
