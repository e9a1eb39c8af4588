#!/usr/bin/env python3
"""Records llama.cpp's token ids for each byte-level pre-tokenizer, all on GPT-2's vocabulary.

    tests/scripts/record_pre_tokenizer_reference.py [--llama-cpp DIR] [--models DIR]

llama.cpp's vocabulary files with test vectors exist for only some pre-tokenizers, and CI has
none of llama.cpp's own. The split a pre-tokenizer makes does not depend on the vocabulary, so
this script writes two vocabularies of ../shared/models with each pre-tokenizer name in
`tokenizer.ggml.pre` (temporary files): GPT-2's vocabulary file, and Qwen3's tokenizer.json as a
GGUF (its larger merges show more of the splits: on GPT-2's, several pre-tokenizers give the same
ids for every text). It runs llama-tokenize (--no-bos --no-parse-special --no-escape, the text
from a file) on every text below and writes the ids to tests/data/pre_tokenizer_reference.json.
PreTokenizer.AgainstLlamaCpp (tests/runtime/tokenizer_test.cpp) loads the same vocabularies,
sets each name and compares.
The texts: the 46 of ggml-vocab-gpt-2.gguf.inp and the EXTRA ones, which reach what those do not
(case runs for tekken, combining marks, digits in runs, slashes, non-ASCII whitespace).
"""
import argparse
import json
import os
import struct
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
COMMIT = "34af94cd"
NAMES = ["default", "gpt-2", "llama-bpe", "qwen2", "qwen35", "tekken", "deepseek-llm", "deepseek-coder", "falcon",
         "refact", "command-r"]
EXTRA = [
    "HTMLParser parses XMLHttpRequest; camelCaseWords and ALLCAPS, MiXeD",
    "\u00c9cole \u00e9t\u00e9 \u00c0BC \u00dcber \u00fcBER \u0130stanbul \u03a9mega \u0394\u03b5\u03bb\u03c4\u03b1",
    "re\u0301sume\u0301 e\u0301 \u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e",
    "path/to/file.txt // comment\n/usr/bin\r\n  a/b/",
    "12345 1,234,567 3.14159 \u00bd \u0663\u0664 x1y22z333",
    "tabs\tand\u00a0nbsp\u3000ideographic\u2003em  double  ",
    " !! ?? ... $5 <=> a`b `c ^_^ |x| ~y~",
    "I'VE you'RE they'll WE'D it's",
    "\u4f60\u597d\u4e16\u754c \uc548\ub155\ud558\uc138\uc694 \u3053\u3093\u306b\u3061\u306f \u0645\u0631\u062d\u0628\u0627",
    "emoji \U0001F680\U0001F44D\U0001F3FD and \u2603\ufe0f",
]


def read_gguf_without_tensors(path):
    """The bytes of a tensor-less GGUF as (header fields, list of raw key/value records)."""
    data = open(path, "rb").read()
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return v[0]

    def skip_string():
        nonlocal pos
        n = take("Q")
        pos += n
        return data[pos - n:pos]

    scalar = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}

    def skip_value(t):
        if t == 8:
            skip_string()
        elif t == 9:
            et, n = take("I"), take("Q")
            for _ in range(n):
                skip_value(et)
        else:
            take(scalar[t])

    assert data[:4] == b"GGUF", path
    pos = 4
    version, n_tensors, n_kv = take("I"), take("Q"), take("Q")
    assert n_tensors == 0, "a vocabulary file has no tensors"
    records = []
    for _ in range(n_kv):
        start = pos
        key = skip_string()
        skip_value(take("I"))
        records.append((key, data[start:pos]))
    return version, records, data[pos:]


def with_pre(path, name, out):
    version, records, rest = read_gguf_without_tensors(path)
    key = b"tokenizer.ggml.pre"
    value = name.encode()
    record = struct.pack("<Q", len(key)) + key + struct.pack("<IQ", 8, len(value)) + value
    kept = [r for k, r in records if k != key] + [record]
    with open(out, "wb") as f:
        f.write(b"GGUF" + struct.pack("<IQQ", version, 0, len(kept)) + b"".join(kept) + rest)


def gguf_string(text):
    b = text.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def write_vocab_gguf(path, tokens, types, merges, pre):
    """A tensor-less GGUF with a byte-level ("gpt2") vocabulary."""
    def kv_string(key, value):
        return gguf_string(key) + struct.pack("<I", 8) + gguf_string(value)

    def kv_strings(key, values):
        return gguf_string(key) + struct.pack("<IIQ", 9, 8, len(values)) + b"".join(gguf_string(v) for v in values)

    def kv_i32s(key, values):
        return gguf_string(key) + struct.pack("<IIQ", 9, 5, len(values)) + b"".join(struct.pack("<i", v) for v in values)

    kvs = [kv_string("general.architecture", "qwen2"), kv_string("tokenizer.ggml.model", "gpt2"),
           kv_string("tokenizer.ggml.pre", pre), kv_strings("tokenizer.ggml.tokens", tokens),
           kv_i32s("tokenizer.ggml.token_type", types), kv_strings("tokenizer.ggml.merges", merges)]
    with open(path, "wb") as f:
        f.write(b"GGUF" + struct.pack("<IQQ", 3, 0, len(kvs)) + b"".join(kvs))


def qwen3_vocabulary(models):
    """Qwen3's tokenizer.json as GGUF arrays: tokens by id, types (added special tokens are control
    tokens), merges as "a b"."""
    doc = json.load(open(os.path.join(models, "tokenizers", "qwen3", "tokenizer.json"), encoding="utf-8"))
    model = doc["model"]
    size = max(list(model["vocab"].values()) + [a["id"] for a in doc["added_tokens"]]) + 1
    tokens, types = [""] * size, [1] * size
    for text, i in model["vocab"].items():
        tokens[i] = text
    for a in doc["added_tokens"]:
        tokens[a["id"]] = a["content"]
        types[a["id"]] = 3 if a["special"] else 4
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    return tokens, types, merges


def texts_of(inp_path):
    parts = open(inp_path, encoding="utf-8").read().split("\n__ggml_vocab_test__\n")
    if parts and parts[-1] == "":
        parts.pop()
    return parts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--llama-cpp", default=os.path.expanduser("~/.cache/llama.cpp-%s" % COMMIT))
    ap.add_argument("--models", default=os.path.join(REPO, "..", "shared", "models"))
    args = ap.parse_args()
    tokenize = os.path.join(args.llama_cpp, "build", "bin", "llama-tokenize")
    gpt2 = os.path.join(args.models, "vocab", "ggml-vocab-gpt-2.gguf")
    texts = texts_of(gpt2 + ".inp") + EXTRA
    qwen3 = qwen3_vocabulary(args.models)
    doc = {"about": "llama-tokenize's ids (--no-bos --no-parse-special --no-escape) of each text on two "
                    "vocabularies (GPT-2's file; Qwen3's tokenizer.json written as a GGUF) with "
                    "tokenizer.ggml.pre set to each name; made by tests/scripts/record_pre_tokenizer_reference.py",
           "llama_cpp": COMMIT, "texts": texts,
           "vocabularies": {"gpt-2": {"source": "vocab/ggml-vocab-gpt-2.gguf", "ids": {}},
                            "qwen3": {"source": "tokenizers/qwen3", "ids": {}}}}
    with tempfile.TemporaryDirectory() as tmp:
        text_file = os.path.join(tmp, "text.txt")
        for vocab_name, entry in doc["vocabularies"].items():
            for name in NAMES:
                gguf = os.path.join(tmp, "vocab-%s-%s.gguf" % (vocab_name, name))
                if vocab_name == "gpt-2":
                    with_pre(gpt2, name, gguf)
                else:
                    write_vocab_gguf(gguf, *qwen3, name)
                rows = []
                for text in texts:
                    with open(text_file, "w", encoding="utf-8", newline="") as f:
                        f.write(text)
                    out = subprocess.run([tokenize, "-m", gguf, "-f", text_file, "--ids", "--no-bos", "--no-parse-special",
                                          "--no-escape", "--log-disable"], capture_output=True, text=True,
                                         check=True).stdout
                    rows.append(json.loads(out.strip().splitlines()[-1]))
                entry["ids"][name] = rows
                print(vocab_name, name, sum(len(r) for r in rows), "ids")
    out = os.path.join(REPO, "tests", "data", "pre_tokenizer_reference.json")
    with open(out, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=True, separators=(",", ":"))
        f.write("\n")
    print("wrote", out)


if __name__ == "__main__":
    main()
