#!/usr/bin/env python3
"""Importing a 1.1B-parameter GGUF maps its weights instead of copying them.

Makes tinyllama-1.1b (q4_0, ~620 MB) with `ingotc synth`, then imports it and builds its graph with
`ingotc summary`, and checks: under 1 s, and peak resident memory far below the file size (the
weights stay in the page cache as mapped, untouched pages). Exits non-zero on failure.
"""
import os
import subprocess
import sys
import tempfile
import time

ingotc = sys.argv[1]
vocab = os.path.join(os.environ.get("INGOT_MODELS", sys.argv[2]), "vocab", "ggml-vocab-llama-spm.gguf")
if not os.path.exists(vocab):
    msg = f"vocabulary not found: {vocab}"
    if os.environ.get("CI") == "true":
        sys.exit("FAIL: " + msg)
    print("SKIP: " + msg)
    sys.exit(0)

with tempfile.TemporaryDirectory() as tmp:
    model = os.path.join(tmp, "tinyllama-1.1b-q4_0.gguf")
    subprocess.run([ingotc, "synth", "--shape", "tinyllama-1.1b", "--type", "q4_0", "--vocab", vocab, "-o", model],
                   check=True, stdout=subprocess.DEVNULL)
    size_mb = os.path.getsize(model) / 2**20
    start = time.monotonic()
    with open(os.path.join(tmp, "summary.txt"), "w+") as log:
        proc = subprocess.Popen([ingotc, "summary", model], stdout=log)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak RSS
        seconds = time.monotonic() - start
        log.seek(0)
        out = log.read()
    if status != 0:
        sys.exit("FAIL: ingotc summary failed:\n" + out)
    peak_mb = usage.ru_maxrss / 1024
    print(f"import of {size_mb:.0f} MB GGUF: {seconds:.3f} s, peak RSS {peak_mb:.0f} MB")
    ok = True
    if "MatMul x199" not in out:
        print("FAIL: the graph does not have the expected 199 MatMuls:\n" + out)
        ok = False
    if seconds >= 1.0:
        print("FAIL: import took 1 s or more")
        ok = False
    if peak_mb >= 100:
        print("FAIL: peak resident memory is 100 MB or more: weights were copied or touched")
        ok = False
    sys.exit(0 if ok else 1)
