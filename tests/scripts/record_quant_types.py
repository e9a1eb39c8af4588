#!/usr/bin/env python3
"""Records llama.cpp's greedy generations of stories260K quantized by llama-quantize to each type.

  tests/scripts/record_quant_types.py OUT_DIR [--llama-cpp DIR] [--models DIR] [--completion-build NAME] [--json FILE]

writes OUT_DIR/stories260K-TYPE.gguf for each llama-quantize type below (ffn_down, 172 columns,
is forced to f16 with --tensor-type: llama-quantize has no fallback for q4_1/q5_0/q5_1/iq4_nl
there; with dim 64 every k-quant and iq4_xs tensor falls back to another type, which the log's
"falling back" lines name and the JSON counts) and tests/data/quant_types_reference.json: per
type the file's sha256, the fallbacks, and llama-completion's greedy text (--temp 0) for each
prompt. quant_types_check.py compares `ingotc eval` (the reference evaluator, act_quant auto)
with it when INGOT_QUANT_DIR points at OUT_DIR; the files are not in the repository.
--completion-build names the build folder under --llama-cpp whose llama-completion generates (e.g. a
build without SIMD, docs/quantization.md); --json writes the recording elsewhere than tests/data.
"""
import argparse
import hashlib
import json
import os
import re
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
TYPES = ["Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "IQ4_NL", "IQ4_XS", "Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K",
         "F16", "BF16"]
PROMPTS = ["Once upon a time", "Lily and Tom"]
N = 40


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out_dir")
    ap.add_argument("--llama-cpp", default=os.path.expanduser("~/.cache/llama.cpp-34af94cd"))
    ap.add_argument("--models", default=os.path.join(REPO, "..", "shared", "models"))
    ap.add_argument("--completion-build", default="build")
    ap.add_argument("--json", default=os.path.join(REPO, "tests", "data", "quant_types_reference.json"))
    args = ap.parse_args()
    bin_dir = os.path.join(args.llama_cpp, "build", "bin")
    completion = os.path.join(args.llama_cpp, args.completion_build, "bin", "llama-completion")
    os.makedirs(args.out_dir, exist_ok=True)
    src = os.path.join(args.models, "stories260K.gguf")
    doc = {"about": "llama.cpp's greedy text (llama-completion --temp 0, -n %d) of stories260K.gguf quantized by "
                    "llama-quantize --tensor-type ffn_down=f16 to each type; made by tests/scripts/record_quant_types.py" % N,
           "n": N, "types": {}}
    for t in TYPES:
        path = os.path.join(args.out_dir, "stories260K-%s.gguf" % t.lower())
        log = subprocess.run([os.path.join(bin_dir, "llama-quantize"), "--tensor-type", "ffn_down=f16", src, path, t],
                             capture_output=True, text=True, check=True)
        fallbacks = {}
        for m in re.finditer(r"required for type\s+(\S+)\).*?-> falling back to\s+(\S+)", log.stdout + log.stderr):
            key = m.group(1) + "->" + m.group(2)
            fallbacks[key] = fallbacks.get(key, 0) + 1
        runs = []
        for p in PROMPTS:
            # llama-completion ends its text with a blank line; once in a few hundred runs (seen
            # 2026-12-05) the captured text lacked its last token and that line, so it is read again.
            for _ in range(3):
                out = subprocess.run([completion, "-m", path, "-p", p, "-n", str(N), "--temp", "0",
                                      "-no-cnv", "--no-warmup", "-t", "1"], capture_output=True, text=True, check=True).stdout
                if out.endswith("\n\n"):
                    break
            else:
                raise SystemExit("llama-completion's text for %s %r does not end with a blank line: %r" % (t, p, out))
            runs.append({"prompt": p, "text": out})
        sha = hashlib.sha256(open(path, "rb").read()).hexdigest()
        doc["types"][t.lower()] = {"sha256": sha, "fallbacks": fallbacks, "runs": runs}
        print(t, fallbacks)
    out = args.json
    with open(out, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print("wrote", out)


if __name__ == "__main__":
    main()
