#!/usr/bin/env python3
"""Bundles against ../shared/models/reference.json, through the command lines.

`ingotc compile MODEL -o B.ingot` then `ingot run B.ingot --temp 0 --json -n 100` for each prompt:
stories260K.gguf, stories260K-hf and stories260K-q8_0.gguf (8-bit activations, the default for
quantized weights) must reproduce every greedy id with the default target (portable: every CPU
tier) and options; stories260K-q4_0.gguf prints how many of the 300 match.
Also: `ingot run` with 1 and 2 threads gives the same ids; `ingot verify` passes; on the portable
q8_0 bundle every tier this host runs gives the same ids (`--tier`), and `ingotc check --tolerance
0` checks each of them against the reference. Cases that do not test tiers compile one
(`--target x86-64-v3`) to keep the test short.
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

V3 = ["--target", "x86-64-v3"]
cases = [  # (path, reference key, compile args, exact)
    # The default target (portable: every tier) and options, as a user gets them: the runtime runs
    # the best tier this host runs.
    ("stories260K.gguf", "stories260K.gguf", [], True),
    # x86-64-v3 alone, which every AVX2 CPU runs: the same ids.
    ("stories260K.gguf", "stories260K.gguf", V3, True),
    ("stories260K-hf", "stories260K.gguf", V3, True),
    # Quantized weights get 8-bit activations by default. Exact: the kernels compute the reference
    # evaluator's f32 numerics bit for bit (ir/float_spec.h), on every tier.
    ("stories260K-q8_0.gguf", "stories260K-q8_0.gguf", [], True),
    # The best tier this host runs, alone (x86-64-v4 or better on AVX-512 hosts).
    ("stories260K-q8_0.gguf", "stories260K-q8_0.gguf", ["--target", "native"], True),
    # Logits for every token of a call (ingot perplexity scores whole chunks), 64 tokens a call.
    ("stories260K-q8_0.gguf", "stories260K-q8_0.gguf", ["--all-logits", "--max-batch", "64"] + V3, True),
    # Without AVX2: the integer dots in generic vector IR (SSE4.2 here), still exact.
    ("stories260K-q8_0.gguf", "stories260K-q8_0.gguf", ["--act-quant", "q8", "--target", "x86-64-v2"], True),
    # The opt-out: f32 activations, not llama.cpp's numerics (prints how many ids match).
    ("stories260K-q8_0.gguf", "stories260K-q8_0.gguf", ["--act-quant", "off"] + V3, False),
    ("stories260K-q4_0.gguf", "stories260K-q4_0.gguf", V3, False),
]
TIERS = ("x86-64-v2", "x86-64-v3", "x86-64-v4", "avx512", "amx")


def kernel_sets(info):
    """The tiers `ingot info` lists, whether this host runs each, and the chosen one."""
    sets, chosen = [], None
    for line in info.splitlines():
        words = line.split()
        if line.startswith("  ") and words and words[0] in TIERS and "section" in line:
            sets.append((words[0], "runs here" in line))
            if line.endswith("<- chosen"):
                chosen = words[0]
    return sets, chosen
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
        # The kernel sets: the --target given (native: one of the tiers), else every tier; the
        # runtime chooses the most demanding one this host runs.
        sets, chosen = kernel_sets(info)
        target = extra[extra.index("--target") + 1] if "--target" in extra else "portable"
        want_sets = list(TIERS) if target == "portable" else None if target == "native" else [target]
        if (want_sets and [t for t, _ in sets] != want_sets) or (not want_sets and len(sets) != 1):
            print(f"FAIL {path} {' '.join(extra)}: kernel sets {sets}, expected {want_sets or 'one'}:\n{info}")
            failures += 1
        runnable = [t for t, runs in sets if runs]
        if not runnable or chosen != runnable[-1]:
            print(f"FAIL {path} {' '.join(extra)}: the chosen tier is {chosen}, expected the last of {runnable}")
            failures += 1
        # Every kernel against the reference evaluator, step by step (prompt, then 16 greedy calls).
        # With 8-bit activations every kernel computes the reference's f32 numerics exactly: zero
        # tolerance, on every tier of the bundle this host runs.
        tolerance = ["--tolerance", "0"] if act_q8 else []
        chk = subprocess.run([ingotc, "check", bundle, os.path.join(models, path), "-n", "16"] + tolerance,
                             capture_output=True, text=True)
        if chk.returncode != 0:
            print(f"FAIL {path} {' '.join(extra)}: ingotc check exits {chk.returncode}\n{chk.stdout[-3000:]}{chk.stderr}")
            failures += 1
        elif act_q8 and len(runnable) > 1 and f"{len(runnable)} tiers checked" not in chk.stdout:
            print(f"FAIL {path} {' '.join(extra)}: ingotc check --tolerance 0 did not check the {len(runnable)} tiers\n{chk.stdout[-3000:]}")
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
            # run --json names the tier that ran: the one the runtime chose.
            if out.get("tier") != chosen:
                print(f"FAIL {path} {' '.join(extra)}: run --json says tier {out.get('tier')!r}, expected {chosen}")
                failures += 1
            # Every other tier this host runs, forced, gives the same ids (portable q8_0: exact everywhere).
            if key == "stories260K-q8_0.gguf" and not extra:
                for tier in runnable:
                    cmd = [ingot, "run", bundle, "-p", run["prompt"], "-n", str(n), "--temp", "0", "--json",
                           "--no-eos-stop", "--tier", tier]
                    forced = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
                    if forced["tier"] != tier or forced["ids"] != out["ids"]:
                        print(f"FAIL {path} --tier {tier}: tier {forced['tier']}, ids differ: {forced['ids'] != out['ids']}")
                        failures += 1
        print(f"{path}: {matched}/{total} greedy ids match llama.cpp through ingot run")

    # Perplexity from whole chunks (all-logits bundle) equals the token-by-token one: with 8-bit
    # activations every kernel rounds alike for any number of tokens per call.
    text = os.path.join(tmp, "story.txt")
    with open(text, "w") as f:
        f.write(" ".join(r["text"] for r in ref["stories260K.gguf"]["runs"]) * 2)
    ppl = {}
    for extra in ([], ["--all-logits", "--max-batch", "64"] + V3):
        bundle = os.path.join(tmp, "stories260K-q8_0.gguf" + "-".join(extra) + ".ingot")
        out = subprocess.run([ingot, "perplexity", bundle, "-f", text, "--ctx", "128"], check=True, capture_output=True,
                             text=True).stdout
        ppl[" ".join(extra)] = out.strip().splitlines()[-1].split()[1]  # the final line: "perplexity X +/- E over ..."
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
