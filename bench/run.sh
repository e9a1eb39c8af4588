#!/usr/bin/env bash
# End-to-end benchmark: synthesize tinyllama-1.1b- and s110m-shaped GGUFs (f16, q8_0, q4_0) with
# `ingotc synth`, compile each to a bundle and run `ingot bench -p 128,512 -n 64 -t 1,2`.
# Usage: bench/run.sh [BUILD_DIR] [WORK_DIR] [extra ingotc compile options, e.g. --act-quant q8]
# Environment: SHAPES="tinyllama-1.1b s110m", TYPES="q4_0 q8_0 f16", REPS=3.
# Needs ~6 GB in WORK_DIR (default /tmp/ingot-bench). Run on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build}
WORK=${2:-/tmp/ingot-bench}
shift 2 || shift $# || true
SHAPES=${SHAPES:-"tinyllama-1.1b s110m"}
TYPES=${TYPES:-"q4_0 q8_0 f16"}
REPS=${REPS:-3}
mkdir -p "$WORK"
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=clang-19 -DCMAKE_CXX_COMPILER=clang++-19
fi
cmake --build "$BUILD_DIR" --target ingotc ingot >/dev/null
echo "# $(date -u +%F) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# compile options: ${*:-(none)}"
for shape in $SHAPES; do
  for type in $TYPES; do
    gguf="$WORK/$shape-$type.gguf"
    bundle="$WORK/$shape-$type.ingot"
    [ -f "$gguf" ] || "$BUILD_DIR/tools/ingotc" synth --shape "$shape" --type "$type" -o "$gguf" >/dev/null
    "$BUILD_DIR/tools/ingotc" compile "$gguf" -o "$bundle" "$@" >/dev/null 2>"$WORK/compile.log" || { cat "$WORK/compile.log"; exit 1; }
    echo "## $shape $type"
    "$BUILD_DIR/tools/ingot" bench "$bundle" -p 128,512 -n 64 -t 1,2 -r "$REPS"
  done
done
