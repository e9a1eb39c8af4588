#!/usr/bin/env bash
# libingot.so exports the C API and nothing else, has a versioned SONAME and links no compiler:
#   shared_library_check.sh BUILD/runtime/libingot.so VERSION
set -euo pipefail
lib=$1 version=$2
status=0
fail() { echo "FAIL: $*"; status=1; }

real=$(readlink -f "$lib")
[ "$(basename "$real")" = "libingot.so.$version" ] || fail "libingot.so resolves to $(basename "$real"), not libingot.so.$version"
soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "libingot.so.${version%%.*}" ] || fail "SONAME is '$soname', not libingot.so.${version%%.*}"

# Every defined dynamic symbol is ingot_* (in the version node INGOT_0, which nm lists too).
symbols=$(nm -D --defined-only "$lib" | awk '{print $3}')
others=$(grep -vE '^(ingot_[a-z0-9_]+@@INGOT_0|INGOT_0)$' <<<"$symbols" || true)
[ -z "$others" ] || fail "symbols other than the C API are exported:"$'\n'"$(head -20 <<<"$others")"
# The C API of ingot.h is all there.
for f in $(grep -oE '\bingot_[a-z_]+\(' "$(dirname "$0")/../../runtime/ingot.h" | tr -d '(' | sort -u); do
  grep -qE "^$f@@INGOT_0$" <<<"$symbols" || fail "$f is declared in ingot.h but not exported"
done
# No protobuf, abseil, OpenSSL or C++ (mangled) symbol leaks, defined or weak.
if nm -D --defined-only "$lib" | grep -E ' _Z|protobuf|absl|EVP_|SSL' ; then fail "C++ or library internals leak"; fi
# No compiler: neither in what it needs nor in what the loader finds.
if readelf -d "$lib" | grep -E 'NEEDED.*(LLVM|MLIR|clang)'; then fail "libingot.so needs LLVM/MLIR"; fi
if ldd "$lib" | grep -E 'LLVM|MLIR|clang'; then fail "libingot.so loads LLVM/MLIR"; fi
# Position-independent all through: no text relocations.
if readelf -d "$lib" | grep -q TEXTREL; then fail "libingot.so has text relocations"; fi
[ $status -eq 0 ] && echo "shared library: ok ($(wc -l <<<"$symbols") symbols, SONAME $soname)"
exit $status
