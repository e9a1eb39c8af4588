#!/usr/bin/env bash
# llama.cpp's vocabulary test files (models/ggml-vocab-*.gguf with their .inp/.out vectors) at the
# pinned commit, from a llama.cpp snapshot's git directory into OUT_DIR, for the tokenizer test
# Vocab.LlamaCppVocabularyFiles (INGOT_LLAMA_VOCAB=OUT_DIR). Snapshots lack some large files
# (llama-bpe, qwen2, command-r, ...): those are left out, with a note.
#
#   scripts/llama-vocab-files.sh SNAPSHOT_GIT_DIR OUT_DIR
#
# SNAPSHOT_GIT_DIR: what the search tool's `fetch` of github:unslothai/llama.cpp returns (the same
# as ../shared/tools/build-llama-cpp.sh takes).
set -euo pipefail
SRC=${1:?usage: llama-vocab-files.sh SNAPSHOT_GIT_DIR OUT_DIR}
OUT=${2:?usage: llama-vocab-files.sh SNAPSHOT_GIT_DIR OUT_DIR}
COMMIT=34af94cd9ab277632e27caeec2d41de2fd091b31
mkdir -p "$OUT"
written=0
for f in $(git --git-dir="$SRC" ls-tree --name-only "$COMMIT" models/ | grep '^models/ggml-vocab-.*\.gguf\(\.inp\|\.out\)\?$'); do
  if git --git-dir="$SRC" cat-file -e "$COMMIT:$f" 2>/dev/null; then
    git --git-dir="$SRC" show "$COMMIT:$f" > "$OUT/$(basename "$f").tmp" && mv "$OUT/$(basename "$f").tmp" "$OUT/$(basename "$f")"
    written=$((written + 1))
  else
    echo "note: $f is not in this snapshot" >&2
  fi
done
echo "$written files in $OUT"
