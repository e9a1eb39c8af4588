#!/usr/bin/env python3
"""Bundles of stories260K quantized by llama-quantize to the weight types whose kernels no
`ingotc synth` model exercises (q5_0, q4_1, q5_1, iq4_nl, bf16), against the reference evaluator.

For each type: llama-quantize (ffn_down, 172 columns, kept f16: llama-quantize has no fallback
for these 32-element types), `ingotc inspect` shows the type, `ingotc compile` with the default
act-quant (q8 for the block types) and with off (bf16: with q8 too), then `ingotc check --tolerance 0`
on every tier this CPU runs where the mode is exact (q8), and `ingot run --temp 0` ids equal to
`ingotc eval --act-quant MODE` ids in every mode.

usage: quant_kernels_check.py INGOTC INGOT MODELS_DIR
llama-quantize: $INGOT_LLAMA_QUANTIZE, else ~/.cache/llama.cpp-34af94cd/build/bin/llama-quantize;
skips without it (and without the models, unless CI=true).
"""
import json
import os
import subprocess
import sys
import tempfile

PROMPT = "Once upon a time"
N = 24
# llama-quantize type, the ingot type it writes, act-quant modes compiled (the first the default).
TYPES = [("Q5_0", "q5_0", ["auto", "off"]), ("Q4_1", "q4_1", ["auto", "off"]), ("Q5_1", "q5_1", ["auto", "off"]),
         ("IQ4_NL", "iq4_nl", ["auto", "off"]), ("BF16", "bf16", ["auto", "q8"])]


def run(cmd, with_stderr=False):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"FAIL: {' '.join(cmd)} (exit {p.returncode}):\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    return p.stdout + p.stderr if with_stderr else p.stdout


def main():
    ingotc, ingot, models = sys.argv[1], sys.argv[2], os.environ.get("INGOT_MODELS", sys.argv[3])
    model = os.path.join(models, "stories260K.gguf")
    if not os.path.exists(model):
        if os.environ.get("CI") == "true":
            sys.exit(f"FAIL: {model} missing under CI")
        print(f"SKIP: {model} not found")
        return
    quantize = os.environ.get("INGOT_LLAMA_QUANTIZE",
                              os.path.expanduser("~/.cache/llama.cpp-34af94cd/build/bin/llama-quantize"))
    if not os.path.exists(quantize):
        print(f"SKIP: no llama-quantize at {quantize} (set INGOT_LLAMA_QUANTIZE)")
        return
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        for qtype, itype, modes in TYPES:
            gguf = os.path.join(tmp, f"s-{qtype}.gguf")
            extra = [] if qtype == "BF16" else ["--tensor-type", "ffn_down=f16"]
            run([quantize, "--allow-requantize"] + extra + [model, gguf, qtype])
            types = [line.split()[1] for line in run([ingotc, "inspect", gguf]).splitlines()
                     if line.strip().startswith(("blk.", "token_embd"))]
            if types.count(itype) < 8:
                failures.append(f"{qtype}: llama-quantize wrote {sorted(set(types))}, not {itype} weights")
                continue
            for mode in modes:
                bundle = os.path.join(tmp, f"b-{qtype}-{mode}.ingot")
                log = run([ingotc, "compile", gguf, "-o", bundle, "--act-quant", mode], with_stderr=True)
                exact = mode == "q8" or (mode == "auto" and qtype != "BF16")
                if exact and "activations q8" not in log:
                    failures.append(f"{qtype} {mode}: the bundle's activations are not q8:\n{log}")
                if exact:
                    out = run([ingotc, "check", bundle, gguf, "-p", PROMPT, "-n", "12", "--tolerance", "0"])
                    if "tolerance 0 NMSE per step: ok" not in out:
                        failures.append(f"{qtype} {mode}: check at tolerance 0:\n{out[-2000:]}")
                got = json.loads(run([ingot, "run", bundle, "-p", PROMPT, "-n", str(N), "--temp", "0", "--json",
                                      "--no-eos-stop"]))["ids"]
                eval_mode = "q8" if exact else "off"
                want = json.loads(run([ingotc, "eval", gguf, "-p", PROMPT, "-n", str(N), "--act-quant", eval_mode,
                                       "--json"]))["ids"]
                if got != want:
                    failures.append(f"{qtype} {mode}: bundle ids {got} != evaluator ids {want}")
                else:
                    print(f"{qtype} act-quant {mode}: {len(got)} greedy ids equal the evaluator's"
                          + (", every tier at NMSE 0" if exact else ""))
    if failures:
        sys.exit("FAIL:\n" + "\n".join(failures))


if __name__ == "__main__":
    main()
