#!/usr/bin/env bash
# The viewer's browser test (ctest viewer_browser): `ingotc viz` pages of stories260K (5 layers) and
# of a tinyllama-1.1b-shaped q4_0 model (22 layers, random weights from `ingotc synth`), each driven
# in headless Chromium by tests/browser/viewer_test.mjs (puppeteer-core against /usr/bin/chromium).
#
# A third page is a stories260K bundle's with its `ingot bench --profile`.
#
# usage: run_viewer_test.sh INGOTC INGOT MODELS_DIR WORK_DIR
#   WORK_DIR gets node_modules (`npm ci` from tests/browser/package-lock.json, redone only when the
#   lock file changes) and artifacts/ (the pages and the screenshots).
# Needs chromium, node and npm (scripts/install-deps.sh installs chromium and nodejs; npm ci needs
# the npm registry once). When one is missing: under CI=true the test fails saying what is missing;
# otherwise it is skipped (exit 77, ctest's SKIP_RETURN_CODE) with the same message.
set -euo pipefail
INGOTC=$1 INGOT=$2 MODELS=${INGOT_MODELS:-$3} WORK=$4
HERE=$(cd "$(dirname "$0")" && pwd)
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}

missing() {
  if [ "${CI:-}" = "true" ]; then
    echo "FAIL: $1 (CI=true: the browser test must run; scripts/install-deps.sh installs chromium and nodejs)" >&2
    exit 1
  fi
  echo "SKIP: $1 (the viewer's browser test needs it; scripts/install-deps.sh installs chromium and nodejs)"
  exit 77
}
[ -x "$CHROMIUM" ] || missing "no Chromium at $CHROMIUM"
command -v node >/dev/null || missing "node is not installed"
command -v npm >/dev/null || missing "npm is not installed"
[ -f "$MODELS/stories260K.gguf" ] || missing "no $MODELS/stories260K.gguf (INGOT_MODELS)"

mkdir -p "$WORK/artifacts"
# puppeteer-core, pinned by the lock file, installed once per lock file.
lock_sum=$(sha256sum "$HERE/package-lock.json" | cut -d' ' -f1)
if [ ! -f "$WORK/node/.lock-sha256" ] || [ "$(cat "$WORK/node/.lock-sha256")" != "$lock_sum" ]; then
  rm -rf "$WORK/node"
  mkdir -p "$WORK/node"
  cp "$HERE/package.json" "$HERE/package-lock.json" "$WORK/node/"
  if ! (cd "$WORK/node" && npm ci --no-audit --no-fund --loglevel=error); then
    rm -rf "$WORK/node"
    missing "npm ci of tests/browser/package-lock.json failed (no access to the npm registry?)"
  fi
  echo "$lock_sum" > "$WORK/node/.lock-sha256"
fi
cp "$HERE/viewer_test.mjs" "$WORK/node/viewer_test.mjs"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
"$INGOTC" viz "$MODELS/stories260K.gguf" -o "$WORK/artifacts/viewer-stories260K.html"
node "$WORK/node/viewer_test.mjs" "$WORK/artifacts/viewer-stories260K.html" 5 f32 "$WORK/artifacts/viewer-stories260K" || status=1

"$INGOTC" synth --shape tinyllama-1.1b --type q4_0 -o "$tmp/tinyllama.gguf" >/dev/null
"$INGOTC" viz "$tmp/tinyllama.gguf" -o "$WORK/artifacts/viewer-tinyllama.html"
rm -f "$tmp/tinyllama.gguf"
node "$WORK/node/viewer_test.mjs" "$WORK/artifacts/viewer-tinyllama.html" 22 q4_0 "$WORK/artifacts/viewer-tinyllama" || status=1
# A bundle's page with its profile.
"$INGOTC" compile "$MODELS/stories260K.gguf" --target native -o "$tmp/stories.ingot" >/dev/null 2>&1
"$INGOT" bench "$tmp/stories.ingot" --profile "$tmp/profile.json" -p 16 -n 4 -t 1 >/dev/null
"$INGOTC" viz "$tmp/stories.ingot" --profile "$tmp/profile.json" -o "$WORK/artifacts/viewer-stories260K-bundle.html"
node "$WORK/node/viewer_test.mjs" "$WORK/artifacts/viewer-stories260K-bundle.html" 5 f32 "$WORK/artifacts/viewer-stories260K-bundle" bundle || status=1
echo "artifacts: $WORK/artifacts"
exit $status
