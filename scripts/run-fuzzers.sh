#!/usr/bin/env bash
# Runs every built fuzzer for a bounded time. Seeds: the text tests for the IR parser, and
# tests/fuzz/corpus/<name>/ plus any files a fuzzer's seed list names (model files when present);
# fuzz_engine_load and fuzz_session write their own seed (from the base bundle) into their corpus.
set -euo pipefail
build_dir=$1
seconds=${2:-60}
cd "$(dirname "$0")/.."
models=${INGOT_MODELS:-../shared/models}
# Build only the fuzzers (one per tests/fuzz/fuzz_*.cpp), not the whole tree again.
targets=$(ls tests/fuzz/fuzz_*.cpp | xargs -n1 basename | sed 's/\.cpp$//')
# And ingotc, for the base bundle of fuzz_engine_load and fuzz_session.
cmake --build "$build_dir" -j "$(nproc)" --target $targets ingotc
status=0
# fuzz_engine_load and fuzz_session start from a real, valid bundle (INGOT_FUZZ_BUNDLE): stories260K
# for one tier every x86-64 CI host runs (AVX2), with a small context and batch (small arena, KV
# cache and session files).
base_bundle="$build_dir/fuzz-base.ingot"
if [ -f "$models/stories260K.gguf" ]; then
  t0=$(date +%s)
  "$build_dir/tools/ingotc" compile "$models/stories260K.gguf" -o "$base_bundle" --target x86-64-v3 \
    --max-context 16 --max-batch 4 > "$build_dir/fuzz-base.log" 2>&1 || { cat "$build_dir/fuzz-base.log"; exit 1; }
  echo "fuzz: base bundle $base_bundle compiled in $(( $(date +%s) - t0 )) s"
  export INGOT_FUZZ_BUNDLE="$base_bundle"
else
  unset INGOT_FUZZ_BUNDLE
fi
# As many fuzzers at once as there are cores (each is one process); their results are printed
# in name order when all have ended.
jobs_max=$(nproc)
names=()
for exe in "$build_dir"/tests/fuzz_*; do
  [ -x "$exe" ] || continue
  name=$(basename "$exe")
  case "$name" in
    fuzz_engine_load|fuzz_session) if [ -z "${INGOT_FUZZ_BUNDLE:-}" ]; then
        echo "fuzz: $name FAILED: it needs $models/stories260K.gguf for its base bundle (set INGOT_MODELS)"; status=1; continue
      fi ;;
  esac
  corpus="$build_dir/corpus/$name"
  mkdir -p "$corpus"
  [ -d "tests/fuzz/corpus/$name" ] && cp -r "tests/fuzz/corpus/$name/." "$corpus/"
  case "$name" in
    fuzz_ir_text) cp tests/lit/ir/*.ir "$corpus/" ;;
    fuzz_chat_template) cp tests/data/chat_templates/*.jinja "$corpus/" ;;
    fuzz_gguf|fuzz_import_gguf) for f in "$models"/vocab/*.gguf "$models"/*.gguf; do [ -f "$f" ] && [ "$(stat -c %s "$f")" -lt 2000000 ] && cp "$f" "$corpus/"; done || true ;;
    fuzz_kernel_object) # up to 40 small shared objects of this system: real ELF tables to mutate
      n=0; for f in /usr/lib/x86_64-linux-gnu/*.so*; do
        [ -f "$f" ] && [ "$(stat -L -c %s "$f")" -lt 40000 ] && cp -L "$f" "$corpus/" && n=$((n + 1)); [ $n -ge 40 ] && break
      done; true ;;
    fuzz_safetensors) for f in model.safetensors tokenizer.json tokenizer.model config.json generation_config.json; do
        [ -f "$models/stories260K-hf/$f" ] && cp "$models/stories260K-hf/$f" "$corpus/"; done; true ;;
  esac
  while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do wait -n || true; done
  echo "fuzz: $name for ${seconds}s"
  names+=("$name")
  # Inputs up to 64 KiB: big model seeds are cut, which still exercises every section header.
  ( if "$exe" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=4096 -print_final_stats=1 "$corpus" \
        > "$build_dir/$name.log" 2>&1; then echo 0; else echo 1; fi > "$build_dir/$name.status" ) &
done
wait
for name in "${names[@]}"; do
  if [ "$(cat "$build_dir/$name.status")" != 0 ]; then
    echo "fuzz: $name FAILED"; tail -40 "$build_dir/$name.log"; status=1
  else
    echo "fuzz: $name: $(grep -E "stat::number_of_executed_units" "$build_dir/$name.log" || echo "no stats")"
  fi
done
exit $status
