"""mnist_common: what tools/train_mnist.py and tools/train_fashion.py share:
28x28 gray images as PNG files, a numpy forward pass of the shipped model
folders (the reference the C engine is checked against), file hashes and
the README sections the trainers write. Safetensors files are read and
written by rectify_import."""
import hashlib
import json
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from rectify_import import read_safetensors

try:
    from PIL import Image
except ImportError:  # pragma: no cover - fallback when python3-pil is absent
    Image = None


def log(msg):
    print(msg, flush=True)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + \
        struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)


def write_png_gray(path, img):
    img = np.ascontiguousarray(img, dtype=np.uint8)
    if Image is not None:
        Image.fromarray(img, mode="L").save(path, format="PNG")
        return
    h, w = img.shape
    raw = b"".join(b"\x00" + img[y].tobytes() for y in range(h))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)))
        f.write(png_chunk(b"IDAT", zlib.compress(raw, 9)))
        f.write(png_chunk(b"IEND", b""))


def read_png_gray(path):
    if Image is not None:
        with Image.open(path) as im:
            if im.mode != "L":
                raise ValueError(f"{path}: mode {im.mode}, expected L")
            return np.asarray(im, dtype=np.uint8).copy()
    blob = Path(path).read_bytes()
    pos, idat, w, h = 8, b"", 0, 0
    while pos < len(blob):
        (n,) = struct.unpack_from(">I", blob, pos)
        kind, data = blob[pos + 4:pos + 8], blob[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype = struct.unpack_from(">IIBB", data)
            if depth != 8 or ctype != 0:
                raise ValueError(f"{path}: not 8-bit grayscale")
        elif kind == b"IDAT":
            idat += data
        pos += 12 + n
    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(h, w + 1)
    if raw[:, 0].any():
        raise ValueError(f"{path}: PNG filters other than 0 are not supported without PIL")
    return raw[:, 1:].copy()


def numpy_forward(folder, images_u8, chunk=25):
    """Run the model folder on uint8 [N,28,28] images with numpy (float64 sums
    of the float32 inputs and weights); return the model output prob [N,10]."""
    spec = json.loads((Path(folder) / "model.json").read_text())
    weights = read_safetensors(Path(folder) / spec["weights"])
    pre = spec["input"]["preprocess"]
    outs = []
    for s in range(0, len(images_u8), chunk):
        x = (images_u8[s:s + chunk].astype(np.float32) * np.float32(pre["scale"])
             - np.float32(pre["mean"][0])) / np.float32(pre["std"][0])
        x = x[:, None].astype(np.float64)
        for layer in spec["layers"]:
            op, name = layer["op"], layer["name"]
            if op == "conv":
                w = weights[name + ".weight"].astype(np.float64)
                b = weights[name + ".bias"].astype(np.float64)
                p, k = layer.get("padding", 0), layer["kernel"]
                xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
                n, c, hh, ww = xp.shape
                oh, ow = hh - k + 1, ww - k + 1
                cols = np.empty((n, c, k, k, oh, ow))
                for i in range(k):
                    for j in range(k):
                        cols[:, :, i, j] = xp[:, :, i:i + oh, j:j + ow]
                x = np.einsum("ncijhw,ocij->nohw", cols, w, optimize=True) + b[None, :, None, None]
            elif op == "relu":
                x = np.maximum(x, 0)
            elif op == "maxpool":
                k = layer["kernel"]
                n, c, hh, ww = x.shape
                x = x[:, :, :hh // k * k, :ww // k * k].reshape(n, c, hh // k, k, ww // k, k).max(axis=(3, 5))
            elif op == "flatten":
                x = x.reshape(x.shape[0], -1)
            elif op == "dense":
                x = x @ weights[name + ".weight"].astype(np.float64).T + weights[name + ".bias"]
            elif op == "softmax":
                e = np.exp(x - x.max(axis=1, keepdims=True))
                x = e / e.sum(axis=1, keepdims=True)
            else:
                raise ValueError(f"unsupported op {op}")
        outs.append(x)
    return np.concatenate(outs)


def update_readme(path, section, begin, end):
    """Write section between the markers begin and end of the README at
    path (appended with them when they are not there yet)."""
    path = Path(path)
    text = path.read_text() if path.exists() else "# Shipped models\n"
    block = f"{begin}\n{section.rstrip()}\n{end}\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        tail = rest.split(end, 1)[1].lstrip("\n")
        text = head + block + ("\n" + tail if tail else "")
    else:
        text = text.rstrip("\n") + "\n\n" + block
    tmp = Path(str(path) + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
