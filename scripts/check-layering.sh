#!/usr/bin/env bash
# Checks that dependencies point one way (docs/architecture.md):
#   base <- everything; ir <- frontend, passes <- codegen <- tools;  runtime <- tools.
# frontend also uses runtime's tokenizer, the one piece compiler and runtime share; codegen uses
# runtime's bundle format, manifest schema and SHA-256 to write bundles. Also checks that only
# codegen/ includes LLVM or MLIR headers, and that the `ingot` runtime executable (if built, in
# $INGOT_BUILD_DIR or build/) links no compiler library and no LLVM. Exits non-zero on any violation.
set -euo pipefail
cd "$(dirname "$0")/.."

declare -A allowed=(
  [base]="base"
  [ir]="base ir"
  [frontend]="base ir frontend runtime"
  [passes]="base ir passes"
  [codegen]="base ir passes codegen runtime"
  [runtime]="base runtime"
  [tools]="base ir frontend passes codegen runtime tools"
)

status=0
for layer in "${!allowed[@]}"; do
  [ -d "$layer" ] || continue
  while IFS= read -r line; do
    file=${line%%:*}
    inc=$(sed -E 's/.*#include "([^/"]+)\/.*/\1/' <<<"$line")
    if ! grep -qw "$inc" <<<"${allowed[$layer]}"; then
      echo "layering: $file includes $inc/, but $layer/ may only use: ${allowed[$layer]}"
      status=1
    fi
  done < <(grep -rnE '^#include "[a-z_]+/' "$layer" --include='*.h' --include='*.cpp' || true)
  if [ "$layer" != codegen ]; then
    if grep -rnE '^#include <(llvm|mlir)/' "$layer" --include='*.h' --include='*.cpp'; then
      echo "layering: only codegen/ may include LLVM or MLIR headers"
      status=1
    fi
  fi
done
# codegen's headers are included by tools: they must not expose LLVM or MLIR either.
if grep -nE '^#include <(llvm|mlir)/' codegen/*.h 2>/dev/null; then
  echo "layering: codegen headers must not include LLVM or MLIR headers"
  status=1
fi
# The runtime's sources may include only runtime/ (checked above); its command line must not link
# the compiler: look at the link command CMake generated for `ingot`, and at ldd.
build_dir=${INGOT_BUILD_DIR:-build}
link_file=$build_dir/build.ninja
if [ -f "$link_file" ] && grep -q 'tools/ingot:' "$link_file" 2>/dev/null; then
  if awk '/^build tools\/ingot:/{p=1} p&&/^$/{exit} p' "$link_file" | grep -E 'libingot_(ir|frontend|passes|codegen)\.a|libLLVM|libMLIR|libgvc|libcgraph'; then
    echo "layering: the ingot runtime executable links a compiler library, LLVM or Graphviz"
    status=1
  fi
fi
if [ -x "$build_dir/tools/ingot" ] && command -v ldd >/dev/null; then
  if ldd "$build_dir/tools/ingot" | grep -E 'LLVM|MLIR|clang|libgvc|libcgraph'; then
    echo "layering: the ingot runtime executable is dynamically linked against LLVM or Graphviz"
    status=1
  fi
fi
# Graphviz lays out `ingotc viz`'s pages: a tools-only dependency.
if grep -rnE '^#include <graphviz/' base ir frontend passes codegen runtime 2>/dev/null; then
  echo "layering: only tools/ may include Graphviz headers"
  status=1
fi
[ $status -eq 0 ] && echo "layering: ok"
exit $status
