#!/usr/bin/env bash
# Op kinds are named in code as Op::X (ir/op_list.h), never by a string: a typo in "Add" compiles,
# a typo in Op::Add does not. This finds a string literal that is exactly an op's name ("Add") in
# code outside the places that deal in names: ir/op_list.h and ir/ops.cpp (the table), the text
# format (ir/text.cpp) and the importers (frontend/). Comment lines are skipped; messages hold
# names inside longer strings, which are not matched.
#   check-op-names.sh [FILE_OR_DIR...]   (default: ir passes codegen runtime tools)
# Exits 1 and lists each literal found.
set -euo pipefail
cd "$(dirname "$0")/.."
names=$(grep -o 'X([A-Za-z]*)' ir/op_list.h | sed 's/^X(//; s/)$//' | grep -vx name | paste -sd'|')
[ -n "$names" ] || { echo "check-op-names: no op names found in ir/op_list.h"; exit 2; }
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(ir passes codegen runtime tools)
found=$(grep -rnE "\"($names)\"" "${targets[@]}" --include='*.cpp' --include='*.h' \
          | grep -vE '^(ir/op_list\.h|ir/ops\.cpp|ir/text\.cpp|frontend/)' \
          | grep -vE '^[^:]+:[0-9]+:[[:space:]]*//' || true)
if [ -n "$found" ]; then
  echo "check-op-names: op names as string literals (write Op::Name; see ir/op_list.h):"
  echo "$found"
  exit 1
fi
echo "check-op-names: ok"
