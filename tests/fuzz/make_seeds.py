#!/usr/bin/python3
"""make_seeds.py OUTDIR: writes the seed inputs of the fuzzers that are not
plain files of the repository (run.sh adds those: the shipped models'
model.json, lenet5-mnist's weights and samples, the bad-input corpus):

  OUTDIR/safetensors/  weights for fuzz_safetensors' tiny graph: F32, F16,
                       BF16, with __metadata__, unaligned data, tensors in
                       another order
  OUTDIR/graph/        byte strings for fuzz_graph: one small graph per
                       operator, and random ones (a fixed PRNG seed)
"""
import json
import os
import random
import struct
import sys

TINY = [("c1.weight", [4, 2, 3, 3]), ("c1.bias", [4]), ("c2.weight", [2, 4, 1, 1]),
        ("fc.weight", [3, 18]), ("fc.bias", [3])]


def elements(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def safetensors(dtype="F32", metadata=False, pad_to=8, order=None, rng=None):
    tensors = [TINY[i] for i in (order or range(len(TINY)))]
    width = 4 if dtype == "F32" else 2
    header, data, offset = {}, b"", 0
    if metadata:
        header["__metadata__"] = {"format": "pt"}
    for name, shape in tensors:
        n = elements(shape)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n * width]}
        offset += n * width
        for _ in range(n):
            v = rng.uniform(-0.5, 0.5)
            f32 = struct.pack("<f", v)
            if dtype == "F32":
                data += f32
            elif dtype == "BF16":
                data += f32[2:]
            else:
                data += struct.pack("<e", v)
    text = json.dumps(header, separators=(",", ":")).encode()
    if pad_to:
        text += b" " * ((-len(text)) % pad_to)
    return struct.pack("<Q", len(text)) + text + data


def main():
    out = sys.argv[1]
    rng = random.Random(6)
    os.makedirs(os.path.join(out, "safetensors"), exist_ok=True)
    os.makedirs(os.path.join(out, "graph"), exist_ok=True)
    variants = {
        "f32": safetensors(rng=rng),
        "f16": safetensors("F16", rng=rng),
        "bf16": safetensors("BF16", rng=rng),
        "metadata": safetensors(metadata=True, rng=rng),
        "unaligned": safetensors(pad_to=0, rng=rng),
        "reordered": safetensors(order=[4, 2, 0, 3, 1], rng=rng),
    }
    for name, data in variants.items():
        with open(os.path.join(out, "safetensors", name), "wb") as f:
            f.write(data)
    # fuzz_graph: flags, seed, pattern, C, H, W, layers, then per layer
    # op, input choice and the op's bytes (see fuzz_graph.c).
    for op in range(13):
        body = bytes([0, 7, 2, 1, 9, 9, 2, op, 0, 0x22, 0x09, 0x00, 0x11, 5, 0, 0, 0, 0])
        with open(os.path.join(out, "graph", "op-%02d" % op), "wb") as f:
            f.write(body)
    for i in range(24):
        with open(os.path.join(out, "graph", "random-%02d" % i), "wb") as f:
            f.write(bytes(rng.randrange(256) for _ in range(rng.randrange(8, 64))))


if __name__ == "__main__":
    main()
