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
Prints, per file and engine, the median and worst NMSE against llama.cpp over the prompts and how
many top-1 ids agree, against llama.cpp as it runs by default and with --no-repack (on AVX2 hosts
llama.cpp repacks q4_k weights for its own GEMM kernels, whose numerics differ from its
non-repacked ones). LLAMA_CPP_DIR defaults to ~/.cache/llama.cpp-34af94cd (../shared/tools/build-llama-cpp.sh).
"""
import argparse
import glob
import json
import os
import struct
import shutil
import subprocess
import sys
import tempfile

DIMS = "dim=256,layers=4,heads=4,kv=2,ffn=768,ctx=256"
SEED = 17
PROMPTS = ["Once upon a time there was a little girl", "The cat sat on the mat and", "One day, a big dog",
           "Lily wanted to play with the ball", "Tom and his mom went to the park", "The sun was hot and the bird"]


def nmse(got, ref):
    den = sum(r * r for r in ref)
    return sum((g - r) ** 2 for g, r in zip(got, ref)) / den


def argmax(v):
    return max(range(len(v)), key=lambda i: v[i])


def llama_logits(exe, model, prompt, work, extra):
    out = tempfile.mkdtemp(dir=work)
    subprocess.run([exe, "-m", model, "-p", prompt, "--save-logits", "-ctk", "f32", "-ctv", "f32", "-fa", "off", "-t", "1"] + extra,
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
    try:
        f32 = os.path.join(work, "f32.gguf")
        subprocess.run([ingotc, "synth", "--dims", DIMS, "--vocab", os.path.join(models, "stories260K.gguf"), "--seed", str(SEED),
                        "-o", f32], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        engines = ("ggml", "q8", "bundle")
        rows = {"default": [], "--no-repack": []}
        for t in args.types.split(","):
            model = os.path.join(work, t + ".gguf")
            subprocess.run([os.path.join(bin_dir, "llama-quantize"), f32, model, t], check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            bundle = os.path.join(work, t + ".ingot")
            subprocess.run([ingotc, "compile", model, "-o", bundle, "--target", "x86-64-v3"], check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            errs = {mode: {k: [] for k in engines} for mode in rows}
            top1 = {mode: {k: 0 for k in engines} for mode in rows}
            for prompt in PROMPTS:
                got = {
                    "ggml": ingot_logits([ingotc, "eval", model, "-p", prompt, "-n", "1", "--json", "--act-quant", "ggml"]),
                    "q8": ingot_logits([ingotc, "eval", model, "-p", prompt, "-n", "1", "--json", "--act-quant", "q8"]),
                    "bundle": ingot_logits([ingot, "run", bundle, "-p", prompt, "-n", "0", "--temp", "0", "--json", "--logits"]),
                }
                for mode in rows:
                    want = llama_logits(debug, model, prompt, work, [] if mode == "default" else ["--no-repack"])
                    for k in engines:
                        errs[mode][k].append(nmse(got[k], want))
                        top1[mode][k] += argmax(got[k]) == argmax(want)
            n = len(PROMPTS)
            for mode in rows:
                cells = []
                for k in engines:
                    e = sorted(errs[mode][k])
                    cells.append(f"{e[n // 2]:.1e} / {e[-1]:.1e}, {top1[mode][k]}/{n}")
                rows[mode].append(f"| {t} | " + " | ".join(cells) + " |")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"synth {DIMS} seed {SEED}; {len(PROMPTS)} prompts; NMSE of the logits after each prompt against llama.cpp's: "
          "median / worst, and top-1 agreement")
    for mode, lines in rows.items():
        print(f"\nllama.cpp {mode}:\n")
        print("| file | ingotc eval --act-quant ggml | ingotc eval --act-quant q8 | bundle (q8 kernels) |")
        print("|---|---|---|---|")
        print("\n".join(lines))


if __name__ == "__main__":
    main()
