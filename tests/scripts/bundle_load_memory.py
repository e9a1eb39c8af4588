#!/usr/bin/env python3
"""Issue 7's load acceptance on a tinyllama-1.1b q4_0 bundle made from an `ingotc synth` GGUF:
loading takes under 50 ms with a warm page cache, and resident memory stays within the weights
(at most every page of the bundle) plus arena plus KV cache plus 20 MB.

usage: bundle_load_memory.py INGOTC INGOT [sanitize]   (under sanitizers only the load is checked,
and its limit is 5x: ASan slows parsing and inflates resident memory)
"""
import json
import os
import re
import subprocess
import sys
import tempfile

ingotc, ingot = sys.argv[1], sys.argv[2]
sanitize = len(sys.argv) > 3 and sys.argv[3] == "sanitize"
UNITS = {"B": 1 / 2**20, "KiB": 1 / 1024, "MiB": 1.0, "GiB": 1024.0}


def mib(text):
    value, unit = text.split()
    return float(value) * UNITS[unit]


with tempfile.TemporaryDirectory() as tmp:
    gguf, bundle = os.path.join(tmp, "t.gguf"), os.path.join(tmp, "t.ingot")
    subprocess.run([ingotc, "synth", "--shape", "tinyllama-1.1b", "--type", "q4_0", "-o", gguf], check=True, capture_output=True)
    subprocess.run([ingotc, "compile", gguf, "-o", bundle, "--act-quant", "q8"], check=True, capture_output=True)
    os.remove(gguf)
    info = subprocess.run([ingot, "info", bundle], check=True, capture_output=True, text=True).stdout
    arena = mib(re.search(r"memory plan: arena ([\d.]+ \w+)", info).group(1))
    kv = mib(re.search(r"state: ([\d.]+ \w+) for a context", info).group(1))
    # Three loads (the file was just written: its pages are cached), then a short prompt and decode.
    out = json.loads(subprocess.run([ingot, "bench", bundle, "-p", "16", "-n", "4", "-t", "1", "-r", "3", "--json"],
                                    check=True, capture_output=True, text=True).stdout)
    load_ms = out["load_ms"]["mean"]
    peak = out["peak_rss_mib"]
    bundle_mib = os.path.getsize(bundle) / 2**20
    limit_ms = 250 if sanitize else 50
    bound = bundle_mib + arena + kv + 20 * 1e6 / 2**20
    print(f"load {load_ms:.1f} ms (limit {limit_ms}); peak resident {peak:.1f} MiB; bound {bound:.1f} MiB "
          f"(bundle {bundle_mib:.1f} + arena {arena:.1f} + KV {kv:.1f} + 20 MB)")
    failed = load_ms >= limit_ms or (not sanitize and peak > bound)
    sys.exit(1 if failed else 0)
