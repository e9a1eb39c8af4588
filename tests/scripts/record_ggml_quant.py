#!/usr/bin/env python3
"""Records ggml's own numerics for every GGUF weight type Ingot reads, as test data.

For each type: random weight rows (random bytes with finite f16 scales), random activation rows,
and what ggml computes from them:
  - dequantized weights: ggml-base's to_float (dequantize_row_*), as llama.cpp runs it;
  - the activation rows quantized to the type's vec_dot_type (q8_0, q8_1 or q8_K) by ggml-cpu's
    from_float on this host (x86: the AVX path for q8_0/q8_1, quantize_row_q8_K_ref for q8_K);
  - the dot product of every weight row with every activation row by ggml's generic (scalar) dot
    product, ggml_vec_dot_*_generic of ggml-cpu/quants.c compiled with -ffp-contract=off: the C
    source's arithmetic with each float operation rounded. (llama.cpp's own native build lets clang
    fuse some of these into multiply-adds, so its generic functions differ in the last bits; the
    SIMD paths it runs on x86 sum in other orders again.)

The helper tests/scripts/ggml_quant_oracle.c is compiled against the llama.cpp snapshot
(its ggml-cpu/quants.c and built libggml-base/libggml-cpu); Ingot never links ggml. The output,
tests/data/ggml_quant_reference.json, is read by tests/ir/ggml_quant_test.cpp.

  tests/scripts/record_ggml_quant.py [--llama-cpp DIR] [-o FILE]
"""
import argparse
import json
import os
import random
import struct
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

# name: (ggml id, elements per block, bytes per block, offsets of f16 scale fields)
TYPES = {
    "f32": (0, 1, 4, []),
    "f16": (1, 1, 2, []),
    "bf16": (30, 1, 2, []),
    "q8_0": (8, 32, 34, [0]),
    "q4_0": (2, 32, 18, [0]),
    "q4_1": (3, 32, 20, [0, 2]),
    "q5_0": (6, 32, 22, [0]),
    "q5_1": (7, 32, 24, [0, 2]),
    "q2_k": (10, 256, 84, [80, 82]),
    "q3_k": (11, 256, 110, [108]),
    "q4_k": (12, 256, 144, [0, 2]),
    "q5_k": (13, 256, 176, [0, 2]),
    "q6_k": (14, 256, 210, [208]),
    "iq4_nl": (20, 32, 18, [0]),
    "iq4_xs": (23, 256, 136, [0]),
}
N = 512        # elements per row: two k-quant super-blocks, sixteen blocks of 32
ROWS = 2       # weight rows
ACTS = 3       # activation rows; the last has an all-zero first half (zero scales)


def f16_bits(v):
    return struct.unpack("<H", struct.pack("<e", v))[0]


def weight_rows(rng, name):
    gid, be, bb, scales = TYPES[name]
    if name == "f32":
        return b"".join(struct.pack("<f", rng.gauss(0, 1)) for _ in range(ROWS * N))
    if name == "f16":
        return b"".join(struct.pack("<e", rng.gauss(0, 1)) for _ in range(ROWS * N))
    if name == "bf16":
        return b"".join(struct.pack("<f", rng.gauss(0, 1))[2:] for _ in range(ROWS * N))
    out = bytearray()
    for _ in range(ROWS * N // be):
        block = bytearray(rng.getrandbits(8) for _ in range(bb))
        for off in scales:  # finite scales of either sign, 2^-12 .. 2^-2
            v = rng.choice([-1, 1]) * 2.0 ** rng.uniform(-12, -2)
            block[off:off + 2] = struct.pack("<H", f16_bits(v))
        out += block
    return bytes(out)


def activation_rows(rng):
    vals = []
    for a in range(ACTS):
        scale = [1.0, 37.5, 0.01][a % 3]
        row = [rng.gauss(0, scale) for _ in range(N)]
        if a == ACTS - 1:
            row[:N // 2] = [0.0] * (N // 2)
        # a few exact ties of the rounding (x * 127 / amax = k + 0.5) and repeated maxima
        row[N - 1] = -max(abs(v) for v in row)
        vals += row
    return struct.pack("<%df" % len(vals), *vals)


def build_oracle(llama, work):
    ggml = os.path.join(llama, "ggml")
    obj = os.path.join(work, "quants.o")
    exe = os.path.join(work, "oracle")
    common = ["clang-19", "-O1", "-ffp-contract=off", "-std=gnu11"]
    subprocess.run(common + ["-c", "-I" + ggml + "/include", "-I" + ggml + "/src", "-I" + ggml + "/src/ggml-cpu",
                             ggml + "/src/ggml-cpu/quants.c", "-o", obj], check=True)
    lib = os.path.join(llama, "build", "bin")
    subprocess.run(common + ["-I" + ggml + "/include", os.path.join(HERE, "ggml_quant_oracle.c"), obj,
                             "-L" + lib, "-lggml-base", "-lggml-cpu", "-Wl,-rpath," + lib, "-lm", "-o", exe], check=True)
    return exe


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--llama-cpp", default=os.path.expanduser("~/.cache/llama.cpp-34af94cd"))
    ap.add_argument("-o", default=os.path.join(REPO, "tests", "data", "ggml_quant_reference.json"))
    args = ap.parse_args()
    rng = random.Random(16)
    doc = {"about": "ggml's dequantization, activation quantization and generic dot products of random rows; "
                    "made by tests/scripts/record_ggml_quant.py from llama.cpp " + os.path.basename(args.llama_cpp),
           "n": N, "rows": ROWS, "acts": ACTS, "types": {}}
    with tempfile.TemporaryDirectory() as work:
        exe = build_oracle(args.llama_cpp, work)
        for name, (gid, be, bb, _) in TYPES.items():
            w = weight_rows(rng, name)
            x = activation_rows(rng)
            out = subprocess.run([exe, str(gid), str(N), str(ROWS), str(ACTS)], input=w + x,
                                 capture_output=True, check=True).stdout
            deq = out[:4 * N * ROWS]
            entry = {"ggml_type": gid, "weights": w.hex(), "dequantized": deq.hex()}
            rest = out[4 * N * ROWS:]
            if rest:
                act_bytes = len(rest) - 4 * ROWS * ACTS
                entry["activations"] = x.hex()
                entry["quantized_activations"] = rest[:act_bytes].hex()
                entry["dots"] = rest[act_bytes:].hex()
            doc["types"][name] = entry
    with open(args.o, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print("wrote", args.o, os.path.getsize(args.o), "bytes")


if __name__ == "__main__":
    main()
