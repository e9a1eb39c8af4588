#!/usr/bin/env python3
"""Importing a 1.1B-parameter GGUF maps its weights instead of copying them.

Makes tinyllama-1.1b (q4_0, ~620 MB) with `ingotc synth`, then imports it and builds its graph with
`ingotc summary`, and checks: under 1 s, and peak resident memory far below the file size (the
weights stay in the page cache as mapped, untouched pages). Exits non-zero on failure.
"""
import os
import re
import subprocess
import sys
import tempfile
import time

ingotc = sys.argv[1]
vocab = os.path.join(os.environ.get("INGOT_MODELS", sys.argv[2]), "vocab", "ggml-vocab-llama-spm.gguf")
# Sanitizer builds carry shadow memory: CMake passes a larger bound for them.
rss_limit_mb = float(sys.argv[3]) if len(sys.argv) > 3 else 100.0
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
    def run(stage):
        start = time.monotonic()
        with open(os.path.join(tmp, "summary.txt"), "w+") as log:
            proc = subprocess.Popen([ingotc, "summary", model, "--stage", stage], stdout=log)
            _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak RSS
            seconds = time.monotonic() - start
            log.seek(0)
            out = log.read()
        if status != 0:
            sys.exit("FAIL: ingotc summary failed:\n" + out)
        return seconds, usage.ru_maxrss / 1024, out

    ok = True
    # Import alone: under 1 s. Import plus the default pipeline: under 2 s. Both map the weights:
    # the memory the process allocates (anonymous) stays far below the file size. Mapped pages the
    # passes touch (the kernel maps whole page-cache folios) are file-backed and reported apart.
    # q4_0 weights get 8-bit activations by default: one WeightMatMul per projection (7 per layer,
    # and the output), on the stored weights.
    for stage, limit_s, must_have in (("imported", 1.0, "WeightMatMul x155"), ("optimized", 2.0, "FusedMatMul x89")):
        seconds, peak_mb, out = run(stage)
        match = re.search(r"memory: anon (\d+) MB, file-backed (\d+) MB", out)
        if not match:
            sys.exit("FAIL: no memory line in the summary:\n" + out)
        anon_mb, file_mb = int(match.group(1)), int(match.group(2))
        print(f"{stage}: {size_mb:.0f} MB GGUF in {seconds:.3f} s, peak RSS {peak_mb:.0f} MB "
              f"(at exit: anon {anon_mb} MB, file-backed {file_mb} MB)")
        peak_mb = anon_mb
        if must_have not in out:
            print(f"FAIL: expected {must_have} in the {stage} graph:\n" + out)
            ok = False
        if seconds >= limit_s:
            print(f"FAIL: {stage} took {limit_s} s or more")
            ok = False
        if peak_mb >= rss_limit_mb:
            print(f"FAIL: anonymous memory is {rss_limit_mb} MB or more: weights were copied")
            ok = False
    sys.exit(0 if ok else 1)
