"""benchlib.py: pieces shared by bench/run.py and bench/torch_bench.py.

- read_safetensors: a rectify weights file as numpy arrays (by hand: Debian
  has no python3-safetensors);
- chain_layers: a model.json's layers, checked to form a chain;
- darknet_cfg / write_darknet_weights: the same network and the same weights
  for Darknet (Debian's libdarknet, 2018 layout: version 0.2, each conv's
  biases then weights [n, c/groups, k, k], each connected layer's biases then
  weights [outputs, inputs]: PyTorch's layouts, so nothing is transposed).

Needs numpy only.
"""
import json
import os
import struct

import numpy as np

def read_safetensors(path):
    """Returns {name: float32 numpy array}: views into one buffer holding the
    whole file (F32 tensors at 4-byte aligned offsets are not copied)."""
    buf = np.fromfile(path, dtype=np.uint8)
    (n,) = struct.unpack("<Q", buf[:8].tobytes())
    header = json.loads(buf[8:8 + n].tobytes().decode("utf-8"))
    base = 8 + n
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        b, e = meta["data_offsets"]
        dt = meta["dtype"]
        raw = buf[base + b:base + e]
        if dt == "F32":
            arr = raw.view(np.float32) if (base + b) % 4 == 0 else raw.copy().view(np.float32)
        elif dt == "F16":
            arr = raw.copy().view(np.float16).astype(np.float32)
        elif dt == "BF16":
            arr = (raw.copy().view(np.uint16).astype(np.uint32) << 16).view(np.float32)
        else:
            raise ValueError(f"{path}: tensor {name}: dtype {dt} not supported")
        out[name] = arr.reshape(meta["shape"])
    return out


def model_json_path(path):
    return os.path.join(path, "model.json") if os.path.isdir(path) else path


def load_spec(path):
    with open(model_json_path(path)) as f:
        return json.load(f)


def chain_layers(spec):
    """The layers of a model.json that is a chain whose one output is the last
    layer; raises ValueError otherwise."""
    layers = spec["layers"]
    prev = spec["input"].get("name", "input")
    for L in layers:
        if L.get("inputs", [prev]) != [prev]:
            raise ValueError(f"layer {L['name']}: only chains of layers are supported")
        prev = L["name"]
    outputs = spec.get("outputs", [layers[-1]["name"]])
    if outputs != [layers[-1]["name"]]:
        raise ValueError("only one output, the last layer, is supported")
    return layers


def pair(v, default):
    if v is None:
        v = default
    if isinstance(v, int):
        return (v, v)
    return (int(v[0]), int(v[1]))


def padding4(v):
    """rectify padding: int, [ph, pw] or [top, left, bottom, right]."""
    if v is None:
        return (0, 0, 0, 0)
    if isinstance(v, int):
        return (v, v, v, v)
    if len(v) == 2:
        return (int(v[0]), int(v[1]), int(v[0]), int(v[1]))
    return tuple(int(x) for x in v)


# ---- Darknet ----

def _square(name, what, p):
    if p[0] != p[1]:
        raise ValueError(f"layer {name}: darknet needs a square {what}, got {list(p)}")
    return p[0]


def darknet_cfg(spec):
    """The text of a darknet .cfg for a chain model.json, and the list of
    (kind, layer name) whose weights the .weights file holds, in order.
    Each ReLU is fused into the conv or dense before it (darknet's
    activation=relu); raises ValueError for what darknet cannot express."""
    layers = chain_layers(spec)
    C, H, W = spec["input"]["shape"]
    out = ["[net]", "batch=1", "subdivisions=1",
           f"width={W}", f"height={H}", f"channels={C}", ""]
    order = []
    i = 0
    while i < len(layers):
        L = layers[i]
        op, name = L["op"], L["name"]
        nxt = layers[i + 1]["op"] if i + 1 < len(layers) else None
        act = "relu" if nxt == "relu" else "linear"
        if op == "conv":
            k = _square(name, "kernel", pair(L["kernel"], None))
            s = _square(name, "stride", pair(L.get("stride"), 1))
            if pair(L.get("dilation"), 1) != (1, 1):
                raise ValueError(f"layer {name}: darknet has no dilated convolution")
            t, l, b, r = padding4(L.get("padding"))
            if not (t == l == b == r):
                raise ValueError(f"layer {name}: darknet needs equal padding on all sides")
            if not L.get("bias", True):
                raise ValueError(f"layer {name}: darknet convs always have a bias")
            out += [f"# {name}", "[convolutional]", "batch_normalize=0",
                    f"filters={L['out_channels']}", f"size={k}", f"stride={s}",
                    f"padding={t}", f"groups={int(L.get('groups', 1))}", f"activation={act}", ""]
            order.append(("conv", name))
            i += 2 if act == "relu" else 1
        elif op == "maxpool":
            k = _square(name, "kernel", pair(L["kernel"], None))
            s = _square(name, "stride", pair(L.get("stride"), L["kernel"]))
            t, l, b, r = padding4(L.get("padding"))
            if not (t == l == b == r) or L.get("ceil_mode") or pair(L.get("dilation"), 1) != (1, 1):
                raise ValueError(f"layer {name}: darknet's maxpool has equal padding, no ceil_mode, no dilation")
            # darknet: out = (w + padding - size) / stride + 1, window offset -padding/2
            out += [f"# {name}", "[maxpool]", f"size={k}", f"stride={s}", f"padding={2 * t}", ""]
            i += 1
        elif op == "flatten":
            i += 1  # a connected layer reads its input flat, in C, H, W order
        elif op == "dense":
            if not L.get("bias", True):
                raise ValueError(f"layer {name}: darknet's connected layers always have a bias")
            out += [f"# {name}", "[connected]", f"output={L['units']}", f"activation={act}", ""]
            order.append(("dense", name))
            i += 2 if act == "relu" else 1
        elif op == "softmax":
            if i != len(layers) - 1:
                raise ValueError(f"layer {name}: only a final softmax is supported for darknet")
            out += [f"# {name}", "[softmax]", "groups=1", ""]
            i += 1
        elif op == "relu":
            raise ValueError(f"layer {name}: a relu that follows no conv or dense")
        else:
            raise ValueError(f"layer {name}: op {op} not supported for darknet")
    return "\n".join(out), order


def write_darknet_weights(order, weights, path):
    """Writes darknet's .weights: major 0, minor 2, revision 0, seen (8 bytes),
    then per layer its biases and weights."""
    with open(path, "wb") as f:
        f.write(struct.pack("<iiiQ", 0, 2, 0, 0))
        for _, name in order:
            f.write(np.ascontiguousarray(weights[name + ".bias"], dtype="<f4").tobytes())
            f.write(np.ascontiguousarray(weights[name + ".weight"], dtype="<f4").tobytes())
