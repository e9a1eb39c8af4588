#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_safetensors (tests/fuzz/corpus/fuzz_safetensors/).

That fuzzer hands the same bytes to the safetensors reader, the checkpoint index reader, the
config.json and generation_config.json readers and both tokenizer readers. Started from nothing,
or from stories260K's files only, it rarely builds a byte-level BPE tokenizer.json deep enough to
reach pre-tokenizer recognition, added tokens or merges. The seeds here are small, valid inputs of
each kind Ingot reads:

  tokenizer-llama3.json, tokenizer-qwen3.json, tokenizer-gemma3.json
      the real Hugging Face tokenizers in $INGOT_MODELS/tokenizers/ cut down to a few hundred
      tokens: every section but the vocabulary and merges verbatim; the vocabulary is the byte
      alphabet (or the first ids, for Gemma) plus the tokens the first merges build from it,
      renumbered; a few added tokens after them;
  tokenizer-smollm2.json, tokenizer-wordpiece.json, tokenizer-unigram.json
      the Llama 3 seed with SmolLM2's pre-tokenizer (Digits, then ByteLevel), and two models Ingot
      refuses by name (their error paths);
  config-ARCH.json   the config.json that `ingotc synth --format hf` writes for each architecture;
  config-gemma3-v5.json, config-gemma3-multimodal.json
      Gemma 3's with RoPE per layer type (transformers v5), and wrapped as
      Gemma3ForConditionalGeneration's text_config;
  generation_config.json, model.safetensors.index.json, small.safetensors
      a generation config, a sharded checkpoint's index, and a whole safetensors file of a tiny
      llama model (`ingotc synth --dims`), small enough for the fuzzer's 64 KiB inputs.

Usage: tests/fuzz/make_hf_seeds.py INGOTC MODELS_DIR OUT_DIR
Each tokenizer seed is checked with `ingotc tokenize` (accepted or refused as intended).
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile


def byte_alphabet():
    """GPT-2's byte-to-character map (the ByteLevel pre-tokenizer's alphabet), in byte order."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for _, c in sorted(zip(bs, cs))]


def merge_pair(m):
    return tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m)


def shrink_bpe(j, base, max_merges):
    """vocab = base tokens, then the results of the first merges whose parts are known."""
    model = j["model"]
    vocab = {t: i for i, t in enumerate(base)}
    merges = []
    for m in model["merges"]:
        a, b = merge_pair(m)
        if a in vocab and b in vocab and a + b in model["vocab"]:
            merges.append(m)
            vocab.setdefault(a + b, len(vocab))
            if len(merges) >= max_merges:
                break
    model["vocab"] = vocab
    model["merges"] = merges
    return vocab


def byte_level_seed(path, max_merges=300):
    j = json.load(open(path, encoding="utf-8"))
    vocab = shrink_bpe(j, byte_alphabet(), max_merges)
    # Added tokens are not in the model's vocabulary: their ids follow it.
    added = j["added_tokens"][:3]
    for n, t in enumerate(added):
        t["id"] = len(vocab) + n
    j["added_tokens"] = added
    return j


def gemma_seed(path, first_ids=600, max_merges=300):
    j = json.load(open(path, encoding="utf-8"))
    model = j["model"]
    by_id = sorted(model["vocab"].items(), key=lambda kv: kv[1])
    base = [t for t, i in by_id if i < first_ids]
    vocab = shrink_bpe(j, base, max_merges)
    j["added_tokens"] = [t for t in j["added_tokens"] if t["content"] in vocab and t["id"] < first_ids]
    for t in j["added_tokens"]:
        t["id"] = vocab[t["content"]]
    # TemplateProcessing names its special tokens' ids: keep them consistent.
    for name, st in (j.get("post_processor") or {}).get("special_tokens", {}).items():
        st["ids"] = [vocab[name]] if name in vocab else st["ids"]
    return j


def write_json(obj, path):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, separators=(",", ":"))


def check_tokenizer(ingotc, path, accepted):
    with tempfile.TemporaryDirectory() as d:
        shutil.copy(path, os.path.join(d, "tokenizer.json"))
        write_json({}, os.path.join(d, "tokenizer_config.json"))
        r = subprocess.run([ingotc, "tokenize", d, "Hello world, 123 <|im_start|> x"], capture_output=True, text=True, errors="replace")
        if (r.returncode == 0) != accepted:
            sys.exit(f"{path}: expected {'accepted' if accepted else 'refused'}, ingotc said: {r.stdout}{r.stderr}")


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    ingotc, models, out = sys.argv[1:]
    os.makedirs(out, exist_ok=True)
    tok = os.path.join(models, "tokenizers")

    seeds = {}  # file name -> (json, accepted)
    llama3 = byte_level_seed(os.path.join(tok, "llama3", "tokenizer.json"))
    seeds["tokenizer-llama3.json"] = (llama3, True)
    seeds["tokenizer-qwen3.json"] = (byte_level_seed(os.path.join(tok, "qwen3", "tokenizer.json")), True)
    seeds["tokenizer-gemma3.json"] = (gemma_seed(os.path.join(tok, "gemma3", "tokenizer.json")), True)
    smollm2 = json.loads(json.dumps(llama3))
    smollm2["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": True},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]}
    seeds["tokenizer-smollm2.json"] = (smollm2, True)
    wordpiece = {"version": "1.0", "added_tokens": [], "normalizer": {"type": "BertNormalizer", "lowercase": True},
                 "pre_tokenizer": {"type": "BertPreTokenizer"}, "decoder": {"type": "WordPiece", "prefix": "##"},
                 "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                           "max_input_chars_per_word": 100, "vocab": {"[UNK]": 0, "hello": 1, "##lo": 2}}}
    seeds["tokenizer-wordpiece.json"] = (wordpiece, False)
    unigram = {"version": "1.0", "added_tokens": [], "normalizer": None, "pre_tokenizer": {"type": "Metaspace"},
               "model": {"type": "Unigram", "unk_id": 0, "vocab": [["<unk>", 0.0], ["\u2581hello", -1.5], ["o", -3.0]]}}
    seeds["tokenizer-unigram.json"] = (unigram, False)
    for name, (obj, accepted) in seeds.items():
        path = os.path.join(out, name)
        write_json(obj, path)
        check_tokenizer(ingotc, path, accepted)

    with tempfile.TemporaryDirectory() as d:
        hf = os.path.join(models, "stories260K-hf")
        for arch in ["llama", "llama3", "qwen2", "qwen3", "gemma2", "gemma3", "phi3"]:
            sub = os.path.join(d, arch)
            subprocess.run([ingotc, "synth", "--shape", "tiny", "--arch", arch, "--format", "hf", "--tokenizer-from", hf,
                            "-o", sub], check=True, capture_output=True)
            shutil.copy(os.path.join(sub, "config.json"), os.path.join(out, f"config-{arch}.json"))
        # Gemma 3 as transformers v5 writes it (RoPE per layer type) and as the 4B and larger
        # checkpoints ship (Gemma3ForConditionalGeneration: the language model in text_config).
        with open(os.path.join(out, "config-gemma3.json")) as f:
            g3 = json.load(f)
        v5 = {k: v for k, v in g3.items() if k not in ("rope_theta", "rope_local_base_freq", "rope_scaling")}
        v5["rope_parameters"] = {"full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1000000.0},
                                 "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}}
        write_json(v5, os.path.join(out, "config-gemma3-v5.json"))
        text = {k: v for k, v in g3.items() if k not in ("architectures", "bos_token_id", "eos_token_id", "torch_dtype")}
        write_json({"architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3", "bos_token_id": 2,
                    "eos_token_id": [1, 106], "torch_dtype": "bfloat16", "text_config": text,
                    "vision_config": {"model_type": "siglip_vision_model"}}, os.path.join(out, "config-gemma3-multimodal.json"))
        small = os.path.join(d, "small")
        subprocess.run([ingotc, "synth", "--dims", "vocab=512,dim=8,layers=1,heads=2,kv=1,ffn=16,ctx=32", "--format", "hf",
                        "--tokenizer-from", hf, "-o", small], check=True, capture_output=True)
        shutil.copy(os.path.join(small, "model.safetensors"), os.path.join(out, "small.safetensors"))
        with open(os.path.join(small, "model.safetensors"), "rb") as f:
            header_len = int.from_bytes(f.read(8), "little")
            names = sorted(json.loads(f.read(header_len)).keys() - {"__metadata__"})
    write_json({"metadata": {"total_size": 1024},
                "weight_map": {n: f"model-0000{1 + i % 2}-of-00002.safetensors" for i, n in enumerate(names)}},
               os.path.join(out, "model.safetensors.index.json"))
    write_json({"bos_token_id": 1, "eos_token_id": [2, 3], "do_sample": True, "temperature": 0.6, "top_p": 0.9,
                "top_k": 40, "repetition_penalty": 1.1}, os.path.join(out, "generation_config.json"))
    total = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
    print(f"make_hf_seeds: {len(os.listdir(out))} seeds, {total} bytes in {out}")


if __name__ == "__main__":
    main()
