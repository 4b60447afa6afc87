#!/usr/bin/env bash
# Installs Debian packages with apt-get, as root or through sudo: the one place the set-up
# scripts (setup-webgpu.sh, setup-browser.sh, setup-peers.sh) get system packages from.
# Idempotent: only the packages dpkg does not list as installed are installed, and apt-get runs
# only when there is one.
# Usage: scripts/apt-install.sh WHO PACKAGE...   (WHO prefixes the messages)
set -euo pipefail
who=${1:?usage: apt-install.sh WHO PACKAGE...}
shift
missing=()
for p in "$@"; do
  if ! command -v dpkg >/dev/null 2>&1 || ! dpkg -s "$p" 2>/dev/null | grep -q '^Status: install ok installed'; then
    missing+=("$p")
  fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "$who: $* already installed"
  exit 0
fi
set -- "${missing[@]}"
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
