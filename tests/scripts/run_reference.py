#!/usr/bin/env python3
"""Bundles against ../shared/models/reference.json, through the command lines.

`ingotc compile MODEL -o B.ingot` then `ingot run B.ingot --temp 0 --json -n 100` for each prompt:
stories260K.gguf, stories260K-hf and stories260K-q8_0.gguf (8-bit activations, the default for
quantized weights) must reproduce every greedy id with the default target and options;
stories260K-q4_0.gguf prints how many of the 300 match.
Also: `ingot run` with 1 and 2 threads gives the same ids; `ingot verify` passes.
"""
import json
import os
import subprocess
import sys
import tempfile

from reference_check import compare_run, load_reference

ingotc, ingot = sys.argv[1], sys.argv[2]
models = os.environ.get("INGOT_MODELS", sys.argv[3])
ref = load_reference(models)

cases = [  # (path, reference key, compile args, exact)
    # The default target (x86-64-v3) and options, as a user gets them.
    ("stories260K.gguf", "stories260K.gguf", [], True),
    # The best tier this host runs (x86-64-v4 on AVX-512 hosts): the same ids.
    ("stories260K.gguf", "stories260K.gguf", ["--target", "native"], True),
    ("stories260K-hf", "stories260K.gguf", [], True),
    # Quantized weights get 8-bit activations by default. Exact: the kernels compute the reference
    # evaluator's f32 numerics bit for bit (ir/float_spec.h).
    ("stories260K-q8_0.gguf", "stories260K-q8_0.gguf", [], True),
    ("stories260K-q8_0.gguf", "stories260K-q8_0.gguf", ["--target", "native"], True),
    # Logits for every token of a call (ingot perplexity scores whole chunks), 64 tokens a call.
    ("stories260K-q8_0.gguf", "stories260K-q8_0.gguf", ["--all-logits", "--max-batch", "64"], True),
    # Without AVX2: the integer dots in generic vector IR (SSE4.2 here), still exact.
    ("stories260K-q8_0.gguf", "stories260K-q8_0.gguf", ["--act-quant", "q8", "--target", "x86-64-v2"], True),
    # The opt-out: f32 activations, not llama.cpp's numerics (prints how many ids match).
    ("stories260K-q8_0.gguf", "stories260K-q8_0.gguf", ["--act-quant", "off"], False),
    ("stories260K-q4_0.gguf", "stories260K-q4_0.gguf", [], False),
]
failures = 0
with tempfile.TemporaryDirectory() as tmp:
    for path, key, extra, exact in cases:
        bundle = os.path.join(tmp, key + "-".join(extra) + ".ingot")
        subprocess.run([ingotc, "compile", os.path.join(models, path), "-o", bundle] + extra,
                       check=True, capture_output=True, text=True)
        subprocess.run([ingot, "verify", bundle], check=True, capture_output=True, text=True)
        info = subprocess.run([ingot, "info", bundle], check=True, capture_output=True, text=True).stdout
        act_q8 = "activations q8" in info
        want_q8 = "-q" in path and "off" not in extra
        if act_q8 != want_q8:
            print(f"FAIL {path} {' '.join(extra)}: activations {'q8' if act_q8 else 'f32'}, expected the other")
            failures += 1
        tier = "x86-64-v2" if "x86-64-v2" in extra else None if "native" in extra else "x86-64-v3"
        if tier and f"tier {tier}" not in info:
            print(f"FAIL {path} {' '.join(extra)}: the bundle is not for {tier}:\n{info}")
            failures += 1
        # Every kernel against the reference evaluator, step by step (prompt, then 16 greedy calls).
        # With 8-bit activations every kernel computes the reference's f32 numerics exactly: zero tolerance.
        tolerance = ["--tolerance", "0"] if act_q8 else []
        chk = subprocess.run([ingotc, "check", bundle, os.path.join(models, path), "-n", "16"] + tolerance,
                             capture_output=True, text=True)
        if chk.returncode != 0:
            print(f"FAIL {path} {' '.join(extra)}: ingotc check exits {chk.returncode}\n{chk.stdout[-3000:]}{chk.stderr}")
            failures += 1
        if key == "stories260K-q8_0.gguf":
            # The check can fail: the q8_0 bundle against the q4_0 model's weights.
            bad = subprocess.run([ingotc, "check", bundle, os.path.join(models, "stories260K-q4_0.gguf"), "-n", "1"],
                                 capture_output=True, text=True)
            if bad.returncode != 3 or "EXCEEDED" not in bad.stdout:
                print(f"FAIL ingotc check of the q8_0 bundle against the q4_0 model exits {bad.returncode}, not 3")
                failures += 1
        matched = total = 0
        for run in ref[key]["runs"]:
            n = len(run["greedy_ids"])
            outs = []
            for threads in ("1", "2"):
                cmd = [ingot, "run", bundle, "-p", run["prompt"], "-n", str(n), "--temp", "0", "--json",
                       "--threads", threads, "--no-eos-stop"]
                outs.append(json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout))
            out = outs[0]
            if outs[1]["ids"] != out["ids"]:
                print(f"FAIL {path} {run['prompt']!r}: 2 threads give other ids than 1")
                failures += 1
            same, problems = compare_run(path + " " + " ".join(extra), out, run, exact)
            for p in problems:
                print(p)
            failures += len(problems)
            matched += same
            total += n
            for k in ("load_ms", "prefill_ms", "decode_ms", "prefill_tok_s", "decode_tok_s"):
                if k not in out["timings"]:
                    print(f"FAIL {path}: timings lack {k}")
                    failures += 1
            # run --json names the tier that ran: the --target given (native: one of the tiers), else x86-64-v3.
            want = extra[extra.index("--target") + 1] if "--target" in extra else "x86-64-v3"
            tiers = ("x86-64-v2", "x86-64-v3", "x86-64-v4", "avx512", "amx")
            if out.get("tier") not in tiers or (want != "native" and out.get("tier") != want):
                print(f"FAIL {path} {' '.join(extra)}: run --json says tier {out.get('tier')!r}, expected {want}")
                failures += 1
        print(f"{path}: {matched}/{total} greedy ids match llama.cpp through ingot run")

    # Perplexity from whole chunks (all-logits bundle) equals the token-by-token one: with 8-bit
    # activations every kernel rounds alike for any number of tokens per call.
    text = os.path.join(tmp, "story.txt")
    with open(text, "w") as f:
        f.write(" ".join(r["text"] for r in ref["stories260K.gguf"]["runs"]) * 2)
    ppl = {}
    for extra in ([], ["--all-logits", "--max-batch", "64"]):
        bundle = os.path.join(tmp, "stories260K-q8_0.gguf" + "-".join(extra) + ".ingot")
        out = subprocess.run([ingot, "perplexity", bundle, "-f", text, "--ctx", "128"], check=True, capture_output=True,
                             text=True).stdout
        ppl[" ".join(extra)] = out.split()[1]
    values = list(ppl.values())
    if values[0] != values[1]:
        print(f"FAIL perplexity differs between per-token and all-logits bundles: {ppl}")
        failures += 1
    else:
        print(f"stories260K-q8_0 perplexity {values[0]}, the same per token and from whole chunks")

    # q4_k weights with 8-bit activations (no real q4_k file here: a synthesized model whose widths
    # are whole 256-element super-blocks): every kernel must equal the reference exactly.
    synth = os.path.join(tmp, "k4.gguf")
    subprocess.run([ingotc, "synth", "--dims", "vocab=512,dim=256,layers=2,heads=4,kv=2,ffn=768,ctx=256", "--type", "q4_k",
                    "-o", synth], check=True, capture_output=True, text=True)
    k4 = os.path.join(tmp, "k4.ingot")
    subprocess.run([ingotc, "compile", synth, "-o", k4], check=True, capture_output=True, text=True)
    chk = subprocess.run([ingotc, "check", k4, synth, "-n", "16", "--tolerance", "0", "--threads", "2"],
                         capture_output=True, text=True)
    if chk.returncode != 0:
        print(f"FAIL synthesized q4_k model: ingotc check exits {chk.returncode}\n{chk.stdout[-3000:]}{chk.stderr}")
        failures += 1
    else:
        print("synthesized q4_k model, 8-bit activations: every kernel call equals the reference")
sys.exit(1 if failures else 0)
