#!/usr/bin/env bash
# Builds and runs the codegen microbenchmark (decode bandwidth, prefill throughput, layer compile
# time). Usage: bench/run-codegen-bench.sh [BUILD_DIR] [--quick] [--cpu NAME]
# Run it on an otherwise idle machine: two-thread figures are meaningless while something else
# (a build) occupies the second core.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build}
shift || true
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=clang-19 -DCMAKE_CXX_COMPILER=clang++-19
fi
cmake --build "$BUILD_DIR" --target codegen_bench
echo "# $(date -u +%F) $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load: $(cut -d' ' -f1-3 /proc/loadavg)"
"$BUILD_DIR/bench/codegen_bench" "$@"
