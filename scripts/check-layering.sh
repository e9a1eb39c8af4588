#!/usr/bin/env bash
# Checks that dependencies point one way (DEVELOPERS.md):
#   ir <- frontend, passes <- codegen <- tools;  runtime <- tools.
# frontend also uses runtime's tokenizer, the one piece compiler and runtime share.
# and that only codegen/ includes LLVM or MLIR headers. Exits non-zero on any violation.
set -euo pipefail
cd "$(dirname "$0")/.."

declare -A allowed=(
  [ir]="ir"
  [frontend]="ir frontend runtime"
  [passes]="ir passes"
  [codegen]="ir passes codegen"
  [runtime]="runtime"
  [tools]="ir frontend passes codegen runtime tools"
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
[ $status -eq 0 ] && echo "layering: ok"
exit $status
