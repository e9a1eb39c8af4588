#!/usr/bin/env python3
"""`ingotc eval` (reference evaluator, act_quant auto) on stories260K quantized by llama-quantize to
each type, against llama.cpp's greedy text in tests/data/quant_types_reference.json.

  quant_types_check.py INGOTC [REFERENCE.json]

Runs only when INGOT_QUANT_DIR names the folder record_quant_types.py wrote the files into (they
are generated, not in the repository); otherwise prints SKIP. A file whose sha256 differs from the
recorded one is a failure (a different llama-quantize would give other weights).
"""
import hashlib
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ingotc = sys.argv[1]
qdir = os.environ.get("INGOT_QUANT_DIR")
if not qdir:
    print("SKIP: set INGOT_QUANT_DIR to the folder tests/scripts/record_quant_types.py wrote")
    sys.exit(0)
ref_path = sys.argv[2] if len(sys.argv) > 2 else os.path.join(HERE, "..", "data", "quant_types_reference.json")
ref = json.load(open(ref_path))
failures = 0
for t, entry in ref["types"].items():
    path = os.path.join(qdir, "stories260K-%s.gguf" % t)
    if hashlib.sha256(open(path, "rb").read()).hexdigest() != entry["sha256"]:
        print(f"FAIL {t}: {path} is not the recorded file")
        failures += 1
        continue
    same = 0
    for run in entry["runs"]:
        out = json.loads(subprocess.run([ingotc, "eval", path, "-p", run["prompt"], "-n", str(ref["n"]), "--json"],
                                        check=True, capture_output=True, text=True).stdout)
        # Whitespace-insensitive: llama-completion echoes the prompt, eval prints the continuation.
        got = "".join((run["prompt"] + out["text"]).split())
        want = "".join(run["text"].split())
        if got == want:
            same += 1
        else:
            k = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
            print(f"FAIL {t} {run['prompt']!r}: differs at character {k}: {got[k:k+30]!r} != {want[k:k+30]!r}")
            failures += 1
    print(f"{t}: {same}/{len(entry['runs'])} generations equal llama.cpp's")
sys.exit(1 if failures else 0)
