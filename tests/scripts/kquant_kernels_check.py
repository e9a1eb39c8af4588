#!/usr/bin/env python3
"""q2_k, q3_k, q5_k and iq4_xs GGUFs written by llama-quantize, compiled and run end to end.

stories260K cannot hold these types (its rows are 64 or 172 wide, so llama-quantize falls back to
q4_0, q5_0, q5_1, q8_0 or f16 for every tensor of a k-quant or iq4_xs file), so a random-weight
llama with rows of 256 and 768 (`ingotc synth`, f32) is quantized instead, to Q5_K_S, Q5_K_M,
Q3_K_M, Q2_K and IQ4_XS. For each file: `ingotc inspect` must list the expected block type,
`ingotc compile` (act-quant auto) must pick 8-bit activations, `ingotc check --tolerance 0` must
find every step of the x86-64-v3, avx512 and amx kernels (those this CPU runs; the codegen tests
cover every tier) at NMSE 0 against the reference evaluator, and `ingot run --temp 0` must give
the ids of `ingotc eval --act-quant q8` (a 121-token prompt, so prefill takes whole register
tiles and remainders).

usage: kquant_kernels_check.py INGOTC INGOT

llama-quantize: $LLAMA_QUANTIZE, else ~/.cache/llama.cpp-34af94cd/build/bin/llama-quantize;
without it the test prints SKIP (also under CI=true: the binary is not part of the checkout).
"""
import json
import os
import re
import subprocess
import sys
import tempfile

TYPES = [("Q5_K_S", "q5_k"), ("Q5_K_M", "q5_k"), ("Q3_K_M", "q3_k"), ("Q2_K", "q2_k"), ("IQ4_XS", "iq4_xs")]
PROMPT = ("Once upon a time there was a little girl named Lily who loved to play outside in the park with her big "
          "red ball and her friends")
STEPS = "8"


def run(args, what):
    out = subprocess.run(args, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"FAIL: {what} (exit {out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return out


def main():
    ingotc, ingot = sys.argv[1], sys.argv[2]
    quantize = os.environ.get("LLAMA_QUANTIZE") or os.path.expanduser("~/.cache/llama.cpp-34af94cd/build/bin/llama-quantize")
    if not os.access(quantize, os.X_OK):
        print(f"SKIP: llama-quantize not found at {quantize} (set LLAMA_QUANTIZE)")
        return
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        base = os.path.join(tmp, "base.gguf")
        run([ingotc, "synth", "--dims", "vocab=512,dim=256,layers=2,heads=4,kv=2,ffn=768,ctx=256", "--type", "f32",
             "--seed", "5", "-o", base], "synth")
        for ltype, want in TYPES:
            gguf = os.path.join(tmp, ltype + ".gguf")
            run([quantize, base, gguf, ltype], f"llama-quantize {ltype}")
            types = re.findall(r"^\s+\S+\s+(\S+)\s+\[", run([ingotc, "inspect", gguf], "inspect").stdout, re.M)
            if want not in types:
                sys.exit(f"FAIL: {ltype}: no {want} tensor in {gguf}: {sorted(set(types))}")
            bundle = os.path.join(tmp, ltype + ".ingot")
            comp = run([ingotc, "compile", gguf, "--target", "x86-64-v3,avx512,amx", "-o", bundle], f"compile {ltype}")
            if "activations q8" not in comp.stdout + comp.stderr:
                sys.exit(f"FAIL: {ltype}: act-quant auto did not pick q8:\n{comp.stdout}{comp.stderr}")
            chk = subprocess.run([ingotc, "check", bundle, gguf, "-p", PROMPT, "-n", STEPS, "--tolerance", "0"],
                                 capture_output=True, text=True)
            # Several of the three tiers run on an AVX-512 host (a "tiers checked" line); an AVX2
            # host runs x86-64-v3 alone.
            several = "avx512_vnni" in open("/proc/cpuinfo").read()
            if chk.returncode != 0 or (several and "tiers checked" not in chk.stdout) or not chk.stdout.rstrip().endswith("ok"):
                print(f"FAIL: {ltype}: check (exit {chk.returncode}):\n{chk.stdout[-3000:]}\n{chk.stderr[-2000:]}")
                failures += 1
                continue
            got = json.loads(run([ingot, "run", bundle, "-p", PROMPT, "-n", STEPS, "--temp", "0", "--json", "--no-eos-stop"],
                                 "ingot run").stdout)["ids"]
            want_ids = json.loads(run([ingotc, "eval", gguf, "-p", PROMPT, "-n", STEPS, "--act-quant", "q8", "--json"],
                                      "ingotc eval").stdout)["ids"]
            if got != want_ids:
                print(f"FAIL: {ltype}: ingot run {got} != ingotc eval {want_ids}")
                failures += 1
                continue
            print(f"ok: {ltype} ({', '.join(sorted(set(types) - {'f32'}))}): every tier NMSE 0, ids {got}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
