#!/usr/bin/env bash
# Ingot and llama.cpp side by side, in one window, on the same GGUF files.
#
#   bench/compare-llama-cpp.sh [--quick] [BUILD_DIR] [WORK_DIR]
#
# For each shape (tinyllama-1.1b, s110m) and weight type (f16, q8_0, q4_0, q4_k) it synthesizes a
# GGUF with `ingotc synth` (the Llama-2 vocabulary from $INGOT_MODELS, so llama.cpp can load it),
# compiles it with `ingotc compile` and the options a user gets by default (plus $INGOT_COMPILE,
# e.g. "--target native"), then runs, ROUNDS times and alternating which goes first:
#   llama-bench -m GGUF -p 512 -n 64 -t THREADS -r 1      and
#   ingot bench BUNDLE  -p 512 -n 64 -t THREADS -r 1
# and a fresh process of each that reads "Hello world" and makes one token (llama-completion and
# ingot run), timed from start to exit. It prints medians and Ingot/llama.cpp ratios as a Markdown
# table with the host's CPU, Ingot's tier, llama.cpp's commit and the date, and keeps the raw JSON
# in WORK_DIR/raw/.
#
# llama.cpp is not built here: build it once per machine with ../shared/tools/build-llama-cpp.sh
# (CPU, native, pinned commit) and point LLAMA_BIN at the bin/ folder it prints (default: that
# script's default output). Ingot never links it.
#
# Environment: LLAMA_BIN, LLAMA_COMMIT (default: from LLAMA_BIN's path), SHAPES, TYPES, ROUNDS (3),
# THREADS (2), PP (512), TG (64), INGOT_COMPILE, INGOT_MODELS. --quick: s110m q4_0 only, 1 round.
# Needs ~6 GB in WORK_DIR (default /tmp/ingot-compare). Run it on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
QUICK=0
if [ "${1:-}" = "--quick" ]; then QUICK=1; shift; fi
if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0; fi
BUILD_DIR=${1:-build}
WORK=${2:-/tmp/ingot-compare}
LLAMA_BIN=${LLAMA_BIN:-$HOME/.cache/llama.cpp-34af94cd/build/bin}
MODELS=${INGOT_MODELS:-../shared/models}
SHAPES=${SHAPES:-"tinyllama-1.1b s110m"}
TYPES=${TYPES:-"f16 q8_0 q4_0 q4_k"}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-2}
PP=${PP:-512}
TG=${TG:-64}
if [ "$QUICK" = 1 ]; then SHAPES=s110m; TYPES=q4_0; ROUNDS=1; fi
VOCAB="$MODELS/vocab/ggml-vocab-llama-spm.gguf"

die() { echo "compare-llama-cpp: $*" >&2; exit 1; }
for tool in llama-bench llama-completion; do
  [ -x "$LLAMA_BIN/$tool" ] || die "$LLAMA_BIN/$tool not found: build llama.cpp with ../shared/tools/build-llama-cpp.sh and set LLAMA_BIN to the bin/ folder it prints"
done
[ -f "$VOCAB" ] || die "$VOCAB not found (set INGOT_MODELS)"
command -v python3 >/dev/null || die "python3 is needed to read the JSON results"
if [ -z "${LLAMA_COMMIT:-}" ]; then
  LLAMA_COMMIT=$(sed -nE 's|.*llama\.cpp-([0-9a-f]{7,40}).*|\1|p' <<<"$LLAMA_BIN")
  LLAMA_COMMIT=${LLAMA_COMMIT:-unknown}
fi

if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=clang-19 -DCMAKE_CXX_COMPILER=clang++-19 >&2
fi
cmake --build "$BUILD_DIR" --target ingotc ingot >/dev/null
INGOTC="$BUILD_DIR/tools/ingotc"
INGOT="$BUILD_DIR/tools/ingot"
mkdir -p "$WORK/raw"
rm -f "$WORK"/raw/*.json

# Models and bundles (made once; bundles again whenever the compiler or its options change).
for shape in $SHAPES; do
  for type in $TYPES; do
    gguf="$WORK/$shape-$type.gguf"
    [ -f "$gguf" ] || "$INGOTC" synth --shape "$shape" --type "$type" --vocab "$VOCAB" -o "$gguf" >/dev/null 2>&1 ||
      die "ingotc synth $shape $type failed"
    # shellcheck disable=SC2086
    "$INGOTC" compile "$gguf" -o "$WORK/$shape-$type.ingot" ${INGOT_COMPILE:-} >"$WORK/compile.log" 2>&1 ||
      { cat "$WORK/compile.log" >&2; die "ingotc compile $gguf failed"; }
  done
done
first_bundle=$(ls "$WORK"/*.ingot | head -1)
# The kernel set this host runs (a bundle may hold several: "this host: runs tier amx (...)").
TIER=$("$INGOT" info "$first_bundle" | sed -nE 's/^this host: runs tier ([^ ]+).*/\1/p' | head -1)
# The activations of a quantized bundle (q4_0 when there is one, else any type but f16/f32).
quantized_bundle=$(ls "$WORK"/*-q4_0.ingot 2>/dev/null | head -1 || true)  # none when TYPES has no q4_0
[ -n "$quantized_bundle" ] || quantized_bundle=$(ls "$WORK"/*.ingot | grep -v -e '-f16\.ingot$' -e '-f32\.ingot$' | head -1 || true)
ACT=$("$INGOT" info "${quantized_bundle:-$first_bundle}" | sed -nE 's/.*activations ([a-z0-9]+),.*/\1/p')

ms_now() { date +%s%N; }
# A fresh process that reads "Hello world" and makes one token, timed from start to exit.
fresh_ingot() {
  local t0 t1
  t0=$(ms_now)
  "$INGOT" run "$1" -p "Hello world" -n 1 --temp 0 --json --threads "$THREADS" >"$2"
  t1=$(ms_now)
  python3 - "$2" $(( (t1 - t0) / 1000 )) <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
t = j["timings"]
json.dump({"wall_ms": int(sys.argv[2]) / 1000, "load_ms": t["load_ms"], "ttft_ms": t["time_to_first_token_ms"],
           "prompt_tokens": len(j["prompt_ids"])}, open(sys.argv[1], "w"))
EOF
}
fresh_llama() {
  local t0 t1
  t0=$(ms_now)
  "$LLAMA_BIN/llama-completion" -m "$1" -p "Hello world" -n 1 --temp 0 -t "$THREADS" -no-cnv </dev/null >"$2.log" 2>&1 ||
    { tail -20 "$2.log" >&2; die "llama-completion $1 failed"; }
  t1=$(ms_now)
  python3 - "$2" $(( (t1 - t0) / 1000 )) <<'EOF'
import json, re, sys
log = open(sys.argv[1] + ".log").read()
def ms(name):
    m = re.search(name + r" time =\s*([\d.]+) ms", log)
    return float(m.group(1)) if m else None
tok = re.search(r"prompt eval time =\s*[\d.]+ ms /\s*(\d+) tokens", log)
load, prompt = ms("load"), ms("prompt eval")
json.dump({"wall_ms": int(sys.argv[2]) / 1000, "load_ms": load, "ttft_ms": load + prompt if load and prompt else None,
           "prompt_tokens": int(tok.group(1)) if tok else None}, open(sys.argv[1], "w"))
EOF
}

echo "compare-llama-cpp: $ROUNDS round(s), $THREADS threads, pp$PP tg$TG; shapes: $SHAPES; types: $TYPES" >&2
for round in $(seq 1 "$ROUNDS"); do
  for shape in $SHAPES; do
    for type in $TYPES; do
      name="$shape-$type"
      echo "compare-llama-cpp: round $round/$ROUNDS $name" >&2
      run_llama() {
        "$LLAMA_BIN/llama-bench" -m "$WORK/$name.gguf" -p "$PP" -n "$TG" -t "$THREADS" -r 1 -o json \
          >"$WORK/raw/$name.llama.$round.json" 2>"$WORK/raw/llama-bench.log" ||
          { tail -20 "$WORK/raw/llama-bench.log" >&2; die "llama-bench $name failed"; }
        fresh_llama "$WORK/$name.gguf" "$WORK/raw/$name.llama-fresh.$round.json"
      }
      run_ingot() {
        "$INGOT" bench "$WORK/$name.ingot" -p "$PP" -n "$TG" -t "$THREADS" -r 1 --json --no-fresh-process \
          >"$WORK/raw/$name.ingot.$round.json" || die "ingot bench $name failed"
        fresh_ingot "$WORK/$name.ingot" "$WORK/raw/$name.ingot-fresh.$round.json"
      }
      # Alternate which engine goes first, so that neither always finds the other's leftovers.
      if [ $((round % 2)) = 1 ]; then run_llama; run_ingot; else run_ingot; run_llama; fi
    done
  done
done

CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)
LLVM_CPU=$("$INGOTC" --version | sed -nE 's/^host target: .*, cpu (.*)/\1/p')
python3 - "$WORK/raw" "$ROUNDS" "$PP" "$TG" "$THREADS" "$CPU" "$LLVM_CPU" "$TIER" "$ACT" "$LLAMA_COMMIT" \
  "$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!docs' ':!*.md' 2>/dev/null || echo '+changes')" "${INGOT_COMPILE:-}" \
  "$SHAPES" "$TYPES" <<'EOF' | tee "$WORK/compare.md"
import json, statistics, sys, datetime
raw, rounds, pp, tg, threads, cpu, llvm_cpu, tier, act, llama_commit, ingot_commit, extra, shapes, types = sys.argv[1:]
rounds = int(rounds)
def load(path):
    with open(path) as f:
        return json.load(f)
def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else float("nan")
print(f"Host: {cpu} (LLVM: {llvm_cpu}), {threads} threads. Date: {datetime.date.today().isoformat()}.")
print(f"Ingot {ingot_commit}: bundles compiled with `ingotc compile` defaults{(' plus ' + extra) if extra else ''} "
      f"(tier {tier}; quantized weights with {act} activations). llama.cpp {llama_commit}, native CPU build. "
      f"Median of {rounds} interleaved round(s); tokens/s.")
print()
print(f"| model | llama.cpp pp{pp} | Ingot pp{pp} | ratio | llama.cpp tg{tg} | Ingot tg{tg} | ratio |")
print("|---|---:|---:|---:|---:|---:|---:|")
fresh_rows = []
for shape in shapes.split():
    for t in types.split():
        name = f"{shape}-{t}"
        lp, lg, ip, ig = [], [], [], []
        lf, inf = [], []
        for r in range(1, rounds + 1):
            for row in load(f"{raw}/{name}.llama.{r}.json"):
                (lp if row["n_prompt"] else lg).append(row["avg_ts"])
            for row in load(f"{raw}/{name}.ingot.{r}.json")["results"]:
                (ip if row["test"].startswith("pp") else ig).append(row["tok_s"])
            lf.append(load(f"{raw}/{name}.llama-fresh.{r}.json"))
            inf.append(load(f"{raw}/{name}.ingot-fresh.{r}.json"))
        mlp, mip, mlg, mig = median(lp), median(ip), median(lg), median(ig)
        print(f"| {shape} {t} | {mlp:.1f} | {mip:.1f} | {mip / mlp:.2f} | {mlg:.1f} | {mig:.1f} | {mig / mlg:.2f} |")
        fresh_rows.append((f"{shape} {t}", lf, inf))
print()
print('Fresh process, "Hello world" (BOS + 2 tokens), one new token; milliseconds (median). '
      "Wall: start to exit, timed outside. Load and first token: as each engine reports them "
      "(llama.cpp: load time + prompt eval time; Ingot: from process start to the first token).")
print()
print("| model | llama.cpp wall | Ingot wall | llama.cpp load | Ingot load | llama.cpp first token | Ingot first token |")
print("|---|---:|---:|---:|---:|---:|---:|")
for name, lf, inf in fresh_rows:
    g = lambda rows, k: median([row[k] for row in rows])
    print(f"| {name} | {g(lf, 'wall_ms'):.0f} | {g(inf, 'wall_ms'):.0f} | {g(lf, 'load_ms'):.0f} | {g(inf, 'load_ms'):.0f} "
          f"| {g(lf, 'ttft_ms'):.0f} | {g(inf, 'ttft_ms'):.0f} |")
EOF
