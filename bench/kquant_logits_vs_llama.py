#!/usr/bin/env python3
"""How far Ingot's logits are from llama.cpp's on k-quant files (issue 16: Q4_K_M and friends).

  bench/kquant_logits_vs_llama.py BUILD_DIR [LLAMA_CPP_DIR] [--types Q4_K_M,Q6_K,...]

Writes a random-weight LLaMA with `ingotc synth` (dim 256 and ffn 768, so that llama-quantize
keeps its k-quant types; stories260K's vocabulary), quantizes it with llama-quantize to each type,
and compares the logits after each prompt:
  - llama.cpp: `llama-debug --save-logits` (f32 KV cache, flash attention off, one thread; built
    in LLAMA_CPP_DIR if missing, as tests/scripts/record_arch_reference.py does);
  - `ingotc eval --act-quant ggml`: ggml's activation formats and generic dot products, bit for bit;
  - `ingotc eval --act-quant q8` and the compiled bundle (`ingot run --logits`): the kernels' spec.
Prints, per file and engine, the worst NMSE against llama.cpp over the prompts and how many top-1
ids agree. LLAMA_CPP_DIR defaults to ~/.cache/llama.cpp-34af94cd (../shared/tools/build-llama-cpp.sh).
"""
import argparse
import glob
import json
import os
import struct
import subprocess
import sys
import tempfile

DIMS = "dim=256,layers=4,heads=4,kv=2,ffn=768,ctx=256"
SEED = 17
PROMPTS = ["Once upon a time there was a little girl", "The cat sat on the mat and", "One day, a big dog"]


def nmse(got, ref):
    den = sum(r * r for r in ref)
    return sum((g - r) ** 2 for g, r in zip(got, ref)) / den


def argmax(v):
    return max(range(len(v)), key=lambda i: v[i])


def llama_logits(exe, model, prompt, work):
    out = tempfile.mkdtemp(dir=work)
    subprocess.run([exe, "-m", model, "-p", prompt, "--save-logits", "-ctk", "f32", "-ctv", "f32", "-fa", "off", "-t", "1"],
                   cwd=out, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    raw = open(glob.glob(os.path.join(out, "data", "llamacpp-*[!s].bin"))[0], "rb").read()
    return list(struct.unpack("<%df" % (len(raw) // 4), raw))


def ingot_logits(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)}: exit {p.returncode}: {p.stderr[-400:]}")
    return json.loads(p.stdout)["logits_after_prompt"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("build")
    ap.add_argument("llama_dir", nargs="?", default=os.path.expanduser("~/.cache/llama.cpp-34af94cd"))
    ap.add_argument("--types", default="Q8_0,Q4_0,Q6_K,Q5_K_M,Q4_K_M,Q3_K_M,Q2_K")
    args = ap.parse_args()
    ingotc = os.path.join(args.build, "tools", "ingotc")
    ingot = os.path.join(args.build, "tools", "ingot")
    models = os.environ.get("INGOT_MODELS", "../shared/models")
    bin_dir = os.path.join(args.llama_dir, "build", "bin")
    debug = os.path.join(bin_dir, "llama-debug")
    if not os.path.exists(debug):
        build = os.path.join(args.llama_dir, "build")
        subprocess.run(["cmake", "-S", args.llama_dir, "-B", build, "-DLLAMA_BUILD_EXAMPLES=ON"], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["cmake", "--build", build, "--target", "llama-debug", "-j", str(os.cpu_count())], check=True,
                       stdout=subprocess.DEVNULL)
    work = tempfile.mkdtemp(prefix="kquant_logits_")
    f32 = os.path.join(work, "f32.gguf")
    subprocess.run([ingotc, "synth", "--dims", DIMS, "--vocab", os.path.join(models, "stories260K.gguf"), "--seed", str(SEED),
                    "-o", f32], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print(f"synth {DIMS} seed {SEED}; {len(PROMPTS)} prompts; worst NMSE against llama.cpp, top-1 agreement\n")
    print("| file | ingotc eval --act-quant ggml | ingotc eval --act-quant q8 | bundle (q8 kernels) |")
    print("|---|---|---|---|")
    for t in args.types.split(","):
        model = os.path.join(work, t + ".gguf")
        subprocess.run([os.path.join(bin_dir, "llama-quantize"), f32, model, t], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        bundle = os.path.join(work, t + ".ingot")
        subprocess.run([ingotc, "compile", model, "-o", bundle, "--target", "x86-64-v3"], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        worst = {"ggml": 0.0, "q8": 0.0, "bundle": 0.0}
        top1 = {k: 0 for k in worst}
        for prompt in PROMPTS:
            want = llama_logits(debug, model, prompt, work)
            got = {
                "ggml": ingot_logits([ingotc, "eval", model, "-p", prompt, "-n", "1", "--json", "--act-quant", "ggml"]),
                "q8": ingot_logits([ingotc, "eval", model, "-p", prompt, "-n", "1", "--json", "--act-quant", "q8"]),
                "bundle": ingot_logits([ingot, "run", bundle, "-p", prompt, "-n", "0", "--temp", "0", "--json", "--logits"]),
            }
            for k, v in got.items():
                worst[k] = max(worst[k], nmse(v, want))
                top1[k] += argmax(v) == argmax(want)
        n = len(PROMPTS)
        print(f"| {t} | " + " | ".join(f"{worst[k]:.2e}, {top1[k]}/{n}" for k in ("ggml", "q8", "bundle")) + " |", flush=True)


if __name__ == "__main__":
    main()
