#!/usr/bin/env python3
"""Records llama.cpp's logits for a small random model of each architecture `ingotc synth --arch`
writes, as tests/data/arch_reference.json (checked by tests/scripts/arch_reference_check.py).

    record_arch_reference.py INGOTC LLAMA_CPP_DIR [OUT.json]

INGOTC: the ingotc binary. LLAMA_CPP_DIR: a llama.cpp tree built by ../shared/tools/build-llama-cpp.sh
(~/.cache/llama.cpp-34af94cd); this script adds its `llama-debug` example (--save-logits) if missing.
Models: `ingotc synth --arch A --dims DIMS --vocab $INGOT_MODELS/stories260K.gguf --seed 7`
(deterministic, so the check regenerates the same bytes). Each prompt is run at every prefix of
its words whose tokens are a prefix of the whole prompt's tokens, so several positions are
recorded; llama.cpp runs with an f32 KV cache, flash attention off, one thread. Logits are
stored exactly, as base64 of little-endian f32.
"""
import base64
import glob
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

ARCHS = ["llama", "llama3", "smollm2", "qwen2", "qwen3", "phi3", "gemma2", "gemma3"]
# The vocabulary each architecture's model carries (default: stories260K's SentencePiece one);
# SmolLM2's is GPT-2-style BPE, here llama.cpp's refact test vocabulary with the smollm pre-tokenizer.
VOCABS = {"smollm2": "vocab/ggml-vocab-refact.gguf"}
KEEP_LOGITS = 4096
# Also each architecture with f16 weights ("ARCH@f16"), the full prompts only (the bound
# for f16 is NMSE 1e-6; the weights are the f32 model's rounded to f16).
F16_ARCHS = ["llama", "llama3", "qwen2", "qwen3", "phi3", "gemma2", "gemma3"]
DIMS = "dim=64,layers=2,heads=4,kv=2,ffn=96,ctx=256"
SEED = 7
PROMPTS = ["Once upon a time there was a little girl", "The cat sat on the mat and"]


def llama_debug(llama_dir):
    exe = os.path.join(llama_dir, "build", "bin", "llama-debug")
    if not os.path.exists(exe):
        build = os.path.join(llama_dir, "build")
        subprocess.run(["cmake", "-S", llama_dir, "-B", build, "-DLLAMA_BUILD_EXAMPLES=ON"], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["cmake", "--build", build, "--target", "llama-debug", "-j", str(os.cpu_count())], check=True)
    return exe


def run_llama(exe, model, prompt, work):
    out = tempfile.mkdtemp(dir=work)
    subprocess.run([exe, "-m", model, "-p", prompt, "--save-logits", "-ctk", "f32", "-ctv", "f32", "-fa", "off", "-t", "1"],
                   cwd=out, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    data = os.path.join(out, "data")
    logits = open(glob.glob(os.path.join(data, "llamacpp-*[!s].bin"))[0], "rb").read()
    tokens = open(glob.glob(os.path.join(data, "llamacpp-*-tokens.bin"))[0], "rb").read()
    ids = list(struct.unpack("<%di" % (len(tokens) // 4), tokens))
    return ids, logits


def main():
    ingotc, llama_dir = sys.argv[1], sys.argv[2]
    out_path = sys.argv[3] if len(sys.argv) > 3 else os.path.join(os.path.dirname(__file__), "..", "data", "arch_reference.json")
    models = os.environ.get("INGOT_MODELS", "../shared/models")
    vocab = os.path.join(models, "stories260K.gguf")
    exe = llama_debug(llama_dir)
    commit = subprocess.run(["git", "-C", llama_dir, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip() or "34af94cd"
    work = tempfile.mkdtemp(prefix="arch_ref_")
    result = {"about": __doc__.strip().splitlines()[0], "llama_cpp": commit, "dims": DIMS, "seed": SEED,
              "vocab": "stories260K.gguf", "vocabs": VOCABS, "llama_cpp_options": "-ctk f32 -ctv f32 -fa off -t 1", "archs": {}}
    try:
        for key in ARCHS + [a + "@f16" for a in F16_ARCHS]:
            arch, _, wtype = key.partition("@")
            model = os.path.join(work, key + ".gguf")
            arch_vocab = os.path.join(models, VOCABS[arch]) if arch in VOCABS else vocab
            subprocess.run([ingotc, "synth", "--arch", arch, "--dims", DIMS, "--vocab", arch_vocab, "--seed", str(SEED),
                            "--type", wtype or "f32", "-o", model],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            runs = []
            for prompt in PROMPTS:
                full_ids, _ = run_llama(exe, model, prompt, work)
                words = prompt.split(" ")
                for n in range(1, len(words) + 1):
                    if wtype and n != len(words):
                        continue
                    text = " ".join(words[:n])
                    ids, logits = run_llama(exe, model, text, work)
                    if ids != full_ids[:len(ids)]:
                        continue  # this prefix tokenizes differently: not a position of the prompt
                    if len(logits) // 4 > KEEP_LOGITS:
                        # A large vocabulary (SmolLM2's 49152): the full prompts only, the first
                        # KEEP_LOGITS logits and the top-1 id, so that the file stays small.
                        if n != len(words):
                            continue
                        values = struct.unpack("<%df" % (len(logits) // 4), logits)
                        top = max(range(len(values)), key=lambda i: values[i])
                        runs.append({"prompt": text, "ids": ids, "argmax": top,
                                     "logits_f32_b64": base64.b64encode(logits[:4 * KEEP_LOGITS]).decode()})
                        continue
                    runs.append({"prompt": text, "ids": ids, "logits_f32_b64": base64.b64encode(logits).decode()})
            result["archs"][key] = runs
            print(f"{key}: {len(runs)} positions", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    with open(out_path, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    print(f"wrote {out_path}", file=sys.stderr)


if __name__ == "__main__":
    main()
