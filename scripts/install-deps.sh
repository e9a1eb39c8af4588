#!/usr/bin/env bash
# Installs every Debian 12 package Ingot needs. Idempotent: does nothing when all are present.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache clang-19 lld-19 llvm-19-dev llvm-19-tools
  libmlir-19-dev mlir-19-tools protobuf-compiler libprotobuf-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev libzstd-dev libclang-rt-19-dev libssl-dev
  python3-jinja2 pkg-config python3-dev python3-pybind11 python3-numpy
  libgraphviz-dev chromium nodejs libcpp-httplib-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# npm (the viewer's browser test: tests/browser) comes with NodeSource's nodejs package; Debian's
# nodejs needs Debian's npm package, which conflicts with NodeSource's: ask for it only when there
# is no npm at all.
if ! command -v npm >/dev/null 2>&1; then
  missing+=(npm)
fi

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install-deps: done"
