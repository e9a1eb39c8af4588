#!/usr/bin/env python3
"""Reads the tensors of a GGUF file (version 2 or 3) without numpy: name -> (ggml type id, shape,
raw bytes). Used by the recording scripts to hash what llama-quantize wrote; not a general GGUF
library (no validation beyond what reading needs)."""
import hashlib
import struct
import sys

# ggml type id -> (name, block elements, block bytes), for the types this project reads.
TYPES = {0: ("f32", 1, 4), 1: ("f16", 1, 2), 2: ("q4_0", 32, 18), 3: ("q4_1", 32, 20),
         6: ("q5_0", 32, 22), 7: ("q5_1", 32, 24), 8: ("q8_0", 32, 34), 10: ("q2_k", 256, 84),
         11: ("q3_k", 256, 110), 12: ("q4_k", 256, 144), 13: ("q5_k", 256, 176),
         14: ("q6_k", 256, 210), 20: ("iq4_nl", 32, 18), 23: ("iq4_xs", 256, 136),
         30: ("bf16", 1, 2)}

_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}


class _Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, fmt):
        v = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return v[0] if len(v) == 1 else v

    def string(self):
        n = self.take("Q")
        s = self.data[self.pos:self.pos + n].decode("utf-8", "replace")
        self.pos += n
        return s

    def value(self, t):
        if t in _SCALARS:
            return self.take(_SCALARS[t])
        if t == 8:
            return self.string()
        if t == 9:
            et, n = self.take("I"), self.take("Q")
            return [self.value(et) for _ in range(n)]
        raise ValueError("unknown GGUF value type %d" % t)


def read(path):
    """Returns (metadata dict, {name: (type_id, shape, bytes)})."""
    with open(path, "rb") as f:
        data = f.read()
    r = _Reader(data)
    if r.take("I") != 0x46554747:
        raise ValueError(path + ": not a GGUF file")
    r.take("I")  # version
    n_tensors, n_kv = r.take("Q"), r.take("Q")
    meta = {}
    for _ in range(n_kv):
        key = r.string()
        meta[key] = r.value(r.take("I"))
    infos = []
    for _ in range(n_tensors):
        name = r.string()
        dims = [r.take("Q") for _ in range(r.take("I"))]
        infos.append((name, dims, r.take("I"), r.take("Q")))
    align = meta.get("general.alignment", 32)
    base = (r.pos + align - 1) // align * align
    tensors = {}
    for name, dims, t, off in infos:
        _, be, bb = TYPES[t]
        n = 1
        for d in dims:
            n *= d
        size = n // be * bb
        tensors[name] = (t, dims, data[base + off:base + off + size])
    return meta, tensors


if __name__ == "__main__":
    _, ts = read(sys.argv[1])
    for name, (t, dims, b) in ts.items():
        print(name, TYPES[t][0], dims, hashlib.sha256(b).hexdigest()[:16])
