#!/usr/bin/env python3
"""`ingotc eval --json` against ../shared/models/reference.json, through the command line.

eval runs the optimized graph (the default pipeline) unless --stage imported; both are checked,
and the optimized logits must stay within 1e-4 of the imported graph's.

stories260K.gguf and stories260K-hf/: every greedy id of all three prompts, and logits_after_prompt
within 1e-4. stories260K-q8_0.gguf (--act-quant q8): every id. llama-2-tiny-random.gguf: "Hello".
stories260K-q4_0.gguf (--act-quant q8): prints how many ids match (the gtest checks the bound).
stories260K.gguf quantized by ingotc (--quant q8_0 --act-quant q8): every id of the q8_0 runs.
"""
import json
import os
import subprocess
import sys

from reference_check import compare_run, load_reference

ingotc = sys.argv[1]
models = os.environ.get("INGOT_MODELS", sys.argv[2])
ref = load_reference(models)

cases = [  # (path, reference key, extra args, must match exactly, check logits)
    ("stories260K.gguf", "stories260K.gguf", [], True, True),
    ("stories260K-hf", "stories260K.gguf", [], True, True),
    ("stories260K-q8_0.gguf", "stories260K-q8_0.gguf", ["--act-quant", "q8"], True, False),
    ("llama-2-tiny-random.gguf", "llama-2-tiny-random.gguf", ["--act-quant", "q8"], True, False),
    ("stories260K-q4_0.gguf", "stories260K-q4_0.gguf", ["--act-quant", "q8"], False, False),
    # Our quantizer on the f32 file gives llama.cpp's blocks, so the q8_0 run must match exactly.
    ("stories260K.gguf", "stories260K-q8_0.gguf", ["--quant", "q8_0", "--act-quant", "q8"], True, False),
]
failures = 0
for path, key, extra, exact, check_logits in cases:
    matched = total = 0
    for run in ref[key]["runs"]:
      for stage in ("optimized", "imported"):
        n = len(run["greedy_ids"])
        cmd = [ingotc, "eval", os.path.join(models, path), "-p", run["prompt"], "-n", str(n), "--json", "--stage", stage] + extra
        out = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
        if stage == "optimized":
            optimized_logits = out["logits_after_prompt"]
        else:
            err = max(abs(a - b) for a, b in zip(optimized_logits, out["logits_after_prompt"]))
            if err >= 1e-4:
                print(f"FAIL {path} {run['prompt']!r}: optimized logits differ from the imported graph's by {err:.2e}")
                failures += 1
        same, problems = compare_run(f"{path} ({stage})", out, run, exact)
        for p in problems:
            print(p)
        failures += len(problems)
        matched += same
        total += n
        if check_logits:
            err = max(abs(a - b) for a, b in zip(out["logits_after_prompt"], run["logits_after_prompt"]))
            if len(out["logits_after_prompt"]) != len(run["logits_after_prompt"]) or err >= 1e-4:
                print(f"FAIL {path} {run['prompt']!r}: logits differ by {err:.2e}")
                failures += 1
    print(f"{path}: {matched}/{total} greedy ids match llama.cpp (optimized and imported graphs together)")
sys.exit(1 if failures else 0)
