#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages needed to build glrnn, its programs and its tests:
# libcpp-httplib-dev for glrnn-server, nodejs and npm for its test with the openai client,
# json-schema-test-suite and python3-jsonschema for the structured-output tests, libhiredis-dev for
# glrnn-server's shared cache tier, redis-server and haproxy for its replica tests.
#   scripts/install-deps.sh [--clang|--arm]  (--clang: also clang-14 and its sanitizer runtimes, for
#                                             scripts/clang_build.sh and scripts/fuzz.sh; --arm: the
#                                             aarch64 cross compiler and qemu-user, for scripts/arm.sh)
# Does nothing (and needs no network) when they are all installed already.
set -euo pipefail

packages=(cmake g++ make libeigen3-dev nlohmann-json3-dev libcli11-dev catch2 libcpp-httplib-dev
          json-schema-test-suite python3-jsonschema libhiredis-dev redis-server haproxy)
case "${1:-}" in
  --clang) packages+=(clang-14 libclang-rt-14-dev) ;;
  --arm) packages+=(g++-aarch64-linux-gnu qemu-user) ;;
  "") ;;
  *) echo "install-deps: unknown option $1" >&2; exit 1 ;;
esac

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  if [[ "$status" != "install ok installed" ]]; then
    missing+=("$p")
  fi
done
# Node.js counts as installed when its commands are there, whichever package brought them (a
# NodeSource nodejs bundles npm and conflicts with Debian's npm package).
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all build packages are installed (${packages[*]}, node and npm)"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-deps: apt-get not found; install these packages by hand: ${missing[*]}" >&2
  exit 1
fi

as_root=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
  else
    echo "install-deps: not root and sudo not found; run as root or install: ${missing[*]}" >&2
    exit 1
  fi
fi

echo "install-deps: installing ${missing[*]}"
# ${as_root[@]+...}: an empty array is "unbound" under set -u in bash before 4.4.
${as_root[@]+"${as_root[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get update -q
${as_root[@]+"${as_root[@]}"} env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -q --no-install-recommends "${missing[@]}"
