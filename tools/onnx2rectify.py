#!/usr/bin/python3
"""onnx2rectify: an ONNX model into a rectify model folder.

  onnx2rectify.py MODEL.onnx OUTDIR
                  [--color gray|rgb|bgr] [--scale S] [--mean M ...] [--std S ...]
                  [--resize H W] [--crop H W] [--labels FILE]
                  [--input-shape C H W] [--name NAME] [--seed N]
                  [--no-verify] [--runner PATH] [--tolerance T]

The graph takes one image tensor [N, C, H, W] (--input-shape gives C, H, W
when the file leaves them symbolic). Its nodes become rectify layers:

  Conv (2-D; pads, or auto_pad SAME_UPPER / SAME_LOWER / VALID)   conv
  BatchNormalization after a Conv     folded into that conv's weight and bias
  Relu                                relu
  MaxPool, AveragePool (pads or auto_pad; ceil_mode; count_include_pad)
                                      maxpool, avgpool
  GlobalAveragePool                   global_avgpool
  Gemm (alpha, beta, transB; B and C constant)                    dense
  MatMul by a constant, and an Add of a constant after it         dense (bias)
  Flatten (axis 1), Reshape to [N, features]                      flatten
  Softmax over the channels / features                            softmax
  Concat on axis 1                    concat
  Add of two computed tensors of one shape                        add
  Add of a constant after a Conv / Gemm / MatMul                  its bias
  Dropout, Identity                   dropped

Values computed from constants only (initializers, Constant nodes, and the
Shape of a tensor, e.g. the Shape/Gather/Concat chain torch.onnx.export
writes for x.view(x.size(0), -1)) are evaluated here, with numpy. Any other
op is an error naming the node and its op type.

Layer names are the ONNX node names where they are valid rectify names
([A-Za-z0-9_.:/-], at most 128 bytes; other characters become '_'), else
the node's first output name.

Writes OUTDIR/model.json, OUTDIR/weights.safetensors (and labels.txt), prints
the layers, parameters and what was folded or dropped, then verifies: runs a
numpy reference of the ONNX graph (float64, written here for exactly these
ops) and the C engine (build/tests/run_tensor, or --runner) on the same
random input and prints the largest relative difference max|a-b|/max|b|;
above --tolerance (1e-4) that is an error. Exit status: 0 done, 1 error,
2 usage.
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rectify_import import (ConvertError, ModelBuilder, add_common_args, add_preprocess_args,  # noqa: E402
                            find_runner, preprocess_from_args, rel_diff, run_rectify)

import numpy as np  # noqa: E402
import onnx  # noqa: E402
from onnx import numpy_helper  # noqa: E402

# Ops that may compute the image's tensors (mapped to layers).
LAYER_OPS = {"Pad", "Conv", "Relu", "MaxPool", "AveragePool", "GlobalAveragePool", "Gemm", "MatMul", "Add", "Flatten",
             "Reshape", "Softmax", "Dropout", "Identity", "BatchNormalization", "Concat"}


# -- attributes ---------------------------------------------------------------

def attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def text(v):
    return v.decode() if isinstance(v, bytes) else v


# -- the numpy reference ------------------------------------------------------

def _windows(x, kh, kw, sh, sw, dh, dw, oh, ow):
    """x [N, C, H, W] (already padded) -> [N, C, oh, ow, kh, kw] views."""
    n, c, h, w = x.shape
    s = x.strides
    return np.lib.stride_tricks.as_strided(
        x, shape=(n, c, oh, ow, kh, kw),
        strides=(s[0], s[1], s[2] * sh, s[3] * sw, s[2] * dh, s[3] * dw), writeable=False)


def pool_geometry(a, spatial, default_stride_kernel=False):
    """kernel, strides, pads [t, l, b, r], dilations, ceil_mode, auto_pad of
    a Conv or pool node, with auto_pad resolved against the input size."""
    k = list(a["kernel_shape"])
    s = list(a.get("strides", k if default_stride_kernel else [1, 1]))
    d = list(a.get("dilations", [1, 1]))
    auto = text(a.get("auto_pad", "NOTSET"))
    if auto in ("NOTSET", ""):
        p = list(a.get("pads", [0, 0, 0, 0]))
    elif auto == "VALID":
        p = [0, 0, 0, 0]
    elif auto in ("SAME_UPPER", "SAME_LOWER"):
        p = [0, 0, 0, 0]
        for i in range(2):
            out = -(-spatial[i] // s[i])
            total = max(0, (out - 1) * s[i] + d[i] * (k[i] - 1) + 1 - spatial[i])
            small, big = total // 2, total - total // 2
            p[i], p[i + 2] = (small, big) if auto == "SAME_UPPER" else (big, small)
    else:
        raise ConvertError(f"auto_pad {auto!r} is not supported")
    return k, s, p, d, int(a.get("ceil_mode", 0)), auto


def out_size(n, k, s, p0, p1, d, ceil_mode, torch_rule):
    span = d * (k - 1) + 1
    room = n + p0 + p1 - span
    if room < 0:
        return 0
    out = (room + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and torch_rule and (out - 1) * s >= n + p0:
        out -= 1  # PyTorch: the last window may not start in the end padding
    return out


def ref_conv(x, w, b, a):
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    a = dict(a)
    a.setdefault("kernel_shape", [kh, kw])
    k, s, p, d, _, _ = pool_geometry(a, (h, wd))
    groups = int(a.get("group", 1))
    oh = out_size(h, kh, s[0], p[0], p[2], d[0], 0, False)
    ow = out_size(wd, kw, s[1], p[1], p[3], d[1], 0, False)
    xp = np.pad(x, ((0, 0), (0, 0), (p[0], p[2]), (p[1], p[3])))
    y = np.empty((n, o, oh, ow))
    og = o // groups
    for g in range(groups):
        win = _windows(np.ascontiguousarray(xp[:, g * cg:(g + 1) * cg]), kh, kw, s[0], s[1], d[0], d[1], oh, ow)
        cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(n, oh, ow, cg * kh * kw)
        y[:, g * og:(g + 1) * og] = (cols @ w[g * og:(g + 1) * og].reshape(og, -1).T).transpose(0, 3, 1, 2)
    if b is not None:
        y += b.reshape(1, -1, 1, 1)
    return y


def ref_pool(x, a, kind):
    n, c, h, wd = x.shape
    k, s, p, d, ceil_mode, _ = pool_geometry(a, (h, wd))
    if kind == "avg":
        d = [1, 1]
    # ONNX's output size (no PyTorch end rule): the engine's must equal it
    oh = out_size(h, k[0], s[0], p[0], p[2], d[0], ceil_mode, False)
    ow = out_size(wd, k[1], s[1], p[1], p[3], d[1], ceil_mode, False)
    # room for ceil_mode windows that run past the end padding
    eh = max(0, (oh - 1) * s[0] + d[0] * (k[0] - 1) + 1 - (h + p[0] + p[2]))
    ew = max(0, (ow - 1) * s[1] + d[1] * (k[1] - 1) + 1 - (wd + p[1] + p[3]))
    widths = ((0, 0), (0, 0), (p[0], p[2] + eh), (p[1], p[3] + ew))
    if kind == "max":
        xp = np.pad(x, widths, constant_values=-np.inf)
        return _windows(xp, k[0], k[1], s[0], s[1], d[0], d[1], oh, ow).max(axis=(4, 5))
    xp = np.pad(x, widths)
    total = _windows(xp, k[0], k[1], s[0], s[1], 1, 1, oh, ow).sum(axis=(4, 5))
    # divisor: cells inside the padded input (count_include_pad) or inside
    # the input itself; cells of a ceil_mode window past the padding never
    # count (PyTorch's rule, which rectify follows)
    inside = np.zeros((1, 1, h + p[0] + p[2] + eh, wd + p[1] + p[3] + ew))
    if int(a.get("count_include_pad", 0)):
        inside[..., :h + p[0] + p[2], :wd + p[1] + p[3]] = 1
    else:
        inside[..., p[0]:p[0] + h, p[1]:p[1] + wd] = 1
    count = _windows(inside, k[0], k[1], s[0], s[1], 1, 1, oh, ow).sum(axis=(4, 5))
    return total / np.maximum(count, 1)


def ref_softmax(x, axis, opset):
    if opset < 13:  # coerced to 2-D at axis
        shape = x.shape
        axis = axis % x.ndim
        x2 = x.reshape(int(np.prod(shape[:axis])), -1)
        e = np.exp(x2 - x2.max(axis=1, keepdims=True))
        return (e / e.sum(axis=1, keepdims=True)).reshape(shape)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def ref_reshape(x, shape, allowzero=0):
    shape = [int(v) for v in shape]
    out = []
    for i, v in enumerate(shape):
        out.append(x.shape[i] if v == 0 and not allowzero else v)
    return x.reshape(out)


def _axes(node, a, inputs, values, opset, index=1):
    if "axes" in a:
        return list(a["axes"])
    if len(node.input) > index and node.input[index]:
        return [int(v) for v in values[node.input[index]]]
    return None


def evaluate(node, values, opset):
    """Outputs of one node (a list) from the values of its inputs."""
    a = attrs(node)
    op = node.op_type
    ins = [values[i] if i else None for i in node.input]
    x = ins[0] if ins else None
    if op == "Conv":
        return [ref_conv(x, ins[1], ins[2] if len(ins) > 2 else None, a)]
    if op == "Relu":
        return [np.maximum(x, 0)]
    if op == "Pad":
        mode = text(a.get("mode", "constant"))
        pads = [int(v) for v in (a["pads"] if "pads" in a else ins[1])]
        value = a.get("value", 0.0) if "pads" in a else (float(ins[2]) if len(ins) > 2 and ins[2] is not None
                                                         else 0.0)
        r = x.ndim
        if mode != "constant" or min(pads) < 0:
            raise ConvertError(f"node {node.name!r} (op Pad): mode {mode} with pads {pads} is not supported")
        return [np.pad(x, [(pads[i], pads[i + r]) for i in range(r)], constant_values=value)]
    if op == "MaxPool":
        return [ref_pool(x, a, "max"), None]
    if op == "AveragePool":
        return [ref_pool(x, a, "avg")]
    if op == "GlobalAveragePool":
        return [x.mean(axis=(2, 3), keepdims=True)]
    if op == "Gemm":
        A = x.T if a.get("transA", 0) else x
        B = ins[1].T if a.get("transB", 0) else ins[1]
        y = a.get("alpha", 1.0) * (A @ B)
        if len(ins) > 2 and ins[2] is not None:
            y = y + a.get("beta", 1.0) * ins[2]
        return [y]
    if op == "MatMul":
        return [x @ ins[1]]
    if op in ("Add", "Sub", "Mul", "Div"):
        f = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}[op]
        if op == "Div" and np.issubdtype(np.asarray(x).dtype, np.integer):
            return [np.floor_divide(x, ins[1])]
        return [f(x, ins[1])]
    if op == "Flatten":
        axis = a.get("axis", 1) % max(x.ndim, 1) if x.ndim else 0
        return [x.reshape(int(np.prod(x.shape[:axis])), -1)]
    if op == "Reshape":
        shape = ins[1] if len(ins) > 1 else a["shape"]
        return [ref_reshape(x, shape, a.get("allowzero", 0))]
    if op == "Softmax":
        return [ref_softmax(x, a.get("axis", 1 if opset < 13 else -1), opset)]
    if op == "Dropout":
        return [x, np.ones(x.shape, dtype=bool)]
    if op == "Identity":
        return [x]
    if op == "BatchNormalization":
        scale, bias, mean, var = ins[1:5]
        sh = (1, -1) + (1,) * (x.ndim - 2)
        y = (x - mean.reshape(sh)) / np.sqrt(var.reshape(sh) + a.get("epsilon", 1e-5)) * scale.reshape(sh) + \
            bias.reshape(sh)
        return [y]
    if op == "Concat":
        return [np.concatenate(ins, axis=a["axis"])]
    if op == "Constant":
        for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
            if key in a:
                v = a[key]
                return [numpy_helper.to_array(v) if key == "value" else np.array(v)]
        raise ConvertError(f"Constant node {node.name!r}: unsupported value attribute")
    if op == "Shape":
        shape = np.array(x.shape, dtype=np.int64)
        start, end = a.get("start", 0), a.get("end", None)
        return [shape[start:end]]
    if op == "Gather":
        return [np.take(x, ins[1], axis=a.get("axis", 0))]
    if op == "Unsqueeze":
        axes = _axes(node, a, ins, values, opset)
        y = x
        for ax in sorted(v % (x.ndim + len(axes)) for v in axes):
            y = np.expand_dims(y, ax)
        return [y]
    if op == "Squeeze":
        axes = _axes(node, a, ins, values, opset)
        return [np.squeeze(x, axis=tuple(axes)) if axes is not None else np.squeeze(x)]
    if op == "Cast":
        return [x.astype(onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[a["to"]])]
    if op == "Slice":
        if "starts" in a:
            starts, ends, axes, steps = a["starts"], a["ends"], a.get("axes"), None
        else:
            starts, ends = ins[1], ins[2]
            axes = ins[3] if len(ins) > 3 and ins[3] is not None else None
            steps = ins[4] if len(ins) > 4 and ins[4] is not None else None
        axes = list(range(len(starts))) if axes is None else list(axes)
        steps = [1] * len(starts) if steps is None else list(steps)
        sl = [slice(None)] * x.ndim
        for st, en, ax, sp in zip(starts, ends, axes, steps):
            sl[int(ax)] = slice(int(st), int(en), int(sp))
        return [x[tuple(sl)]]
    raise ConvertError(f"node {node.name!r} (op {op}): not supported")


CONST_OPS = {"Constant", "Shape", "Gather", "Unsqueeze", "Squeeze", "Cast", "Slice", "Concat", "Reshape", "Flatten",
             "Identity", "Add", "Sub", "Mul", "Div"}


class Graph:
    """An ONNX model, its constants, and a numpy interpreter for it."""

    def __init__(self, model, input_shape=None):
        self.model = model
        g = model.graph
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
        self.consts = {}
        for t in g.initializer:
            v = numpy_helper.to_array(t)
            self.consts[t.name] = v.astype(np.float64) if v.dtype.kind == "f" else v
        inputs = [i for i in g.input if i.name not in self.consts]
        if len(inputs) != 1:
            raise ConvertError(f"the graph has {len(inputs)} inputs ({', '.join(i.name for i in inputs)}); "
                               f"rectify models take one image tensor")
        self.input = inputs[0]
        dims = [d.dim_value if d.HasField("dim_value") else None
                for d in self.input.type.tensor_type.shape.dim]
        if len(dims) != 4:
            raise ConvertError(f"input {self.input.name!r} has rank {len(dims)}; rectify models take [N, C, H, W]")
        if input_shape:
            for have, want in zip(dims[1:], input_shape):
                if have is not None and have != want:
                    raise ConvertError(f"--input-shape {' '.join(map(str, input_shape))} does not match the "
                                       f"model's input {dims}")
            self.shape = list(input_shape)
        else:
            if any(d is None for d in dims[1:]):
                raise ConvertError(f"input {self.input.name!r} has symbolic sizes {dims}: give --input-shape C H W")
            self.shape = dims[1:]
        # a symbolic batch runs with 2 when converting, to tell the batch from the features
        self.fixed_batch = dims[0]
        self.batch = dims[0] if dims[0] else 2
        self.nodes = list(g.node)
        self.check_order()
        self.classify()

    def check_order(self):
        known = set(self.consts) | {self.input.name, ""}
        for n in self.nodes:
            for i in n.input:
                if i not in known:
                    raise ConvertError(f"node {n.name!r} (op {n.op_type}) reads {i!r}, which no earlier node "
                                       f"computes (the graph is not sorted, or has a subgraph)")
            known.update(n.output)

    def classify(self):
        """Which values are constant (computable without the image), and are
        all other nodes of ops we map?"""
        self.const = set(self.consts) | {""}
        for n in self.nodes:
            if n.domain not in ("", "ai.onnx"):
                raise ConvertError(f"unsupported: node {n.name!r} of op {n.domain}.{n.op_type} (custom domain)")
            if n.op_type == "Shape" or all(i in self.const for i in n.input):
                if n.op_type not in CONST_OPS and n.op_type not in LAYER_OPS:
                    raise ConvertError(f"unsupported: node {n.name!r} of op type {n.op_type} (on constants)")
                self.const.update(n.output)
            elif n.op_type not in LAYER_OPS:
                raise ConvertError(f"unsupported: node {n.name!r} of op type {n.op_type}")
            else:
                self.precheck(n)

    def precheck(self, n):
        """What the attributes alone rule out, before anything runs."""
        a = attrs(n)
        where = f"node {n.name!r} (op {n.op_type})"
        if n.op_type == "Gemm" and a.get("transA", 0):
            raise ConvertError(f"unsupported: {where} with transA=1")
        if n.op_type in ("Conv", "MaxPool", "AveragePool") and "kernel_shape" in a and len(a["kernel_shape"]) != 2:
            raise ConvertError(f"unsupported: {where} with a {len(a['kernel_shape'])}-D kernel; only 2-D")
        if n.op_type == "BatchNormalization" and a.get("training_mode", 0):
            raise ConvertError(f"unsupported: {where} in training mode")

    def run(self, x):
        """Every value of the graph for input x (float64), as a dict."""
        values = dict(self.consts)
        values[self.input.name] = np.asarray(x, dtype=np.float64)
        values[""] = None
        for n in self.nodes:
            try:
                outs = evaluate(n, values, self.opset)
            except ConvertError:
                raise
            except Exception as e:
                raise ConvertError(f"evaluating node {n.name!r} (op {n.op_type}) failed: {e}") from None
            for name, v in zip(n.output, outs):
                if name:
                    values[name] = v
        return values


class Conversion:
    def __init__(self, builder, outputs, origin, graph):
        self.builder = builder
        self.outputs = outputs
        self.origin = origin  # layer -> ONNX value name
        self.graph = graph
        self.notes = builder.notes


class Converter:
    def __init__(self, graph, name, seed=0):
        self.g = graph
        self.name = name
        self.seed = seed

    def convert(self):
        g = self.g
        rng = np.random.default_rng(self.seed)
        x = rng.standard_normal([g.batch] + g.shape).astype(np.float32)
        self.vals = g.run(x)
        b = ModelBuilder(self.name, g.shape, g.input.name)
        self.b = b
        self.value = {g.input.name: b.input_name}  # ONNX value -> rectify tensor
        self.origin = {}
        self.users = {}
        for n in g.nodes:
            for i in n.input:
                self.users.setdefault(i, []).append(n)
        self.graph_outputs = {o.name for o in g.model.graph.output}
        self.foldable = {}  # ONNX value -> layer that may absorb a bias or BatchNormalization
        self.pending_pad = {}  # Pad output -> (its input, [top, left, bottom, right]) for the Conv after it
        for n in g.nodes:
            if n.output[0] in g.const:
                continue
            self.node(n)
        outputs = []
        for o in g.model.graph.output:
            if o.name in g.const:
                raise ConvertError(f"output {o.name!r} is a constant, not computed from the input")
            outputs.append(self.value[o.name])
        return Conversion(b, outputs, self.origin, g)

    # -- helpers --------------------------------------------------------------
    def where(self, n):
        return f"node {n.name!r} (op {n.op_type})"

    def shape(self, name):
        return self.vals[name].shape

    def tensor(self, n, name):
        if name in self.g.const:
            raise ConvertError(f"unsupported: {self.where(n)} reads the constant {name!r} where a computed "
                               f"tensor is needed")
        s = self.shape(name)
        if len(s) not in (2, 4):
            raise ConvertError(f"unsupported: {self.where(n)} reads {name!r} of rank {len(s)} {list(s)}; rectify "
                               f"tensors are [N, C, H, W] or [N, features]")
        return self.value[name]

    def const(self, n, name, what):
        if name not in self.g.const:
            raise ConvertError(f"unsupported: {self.where(n)}: its {what} ({name!r}) must be a constant")
        return np.asarray(self.vals[name], dtype=np.float64)

    def single_user(self, name):
        return len(self.users.get(name, [])) == 1 and name not in self.graph_outputs

    def emit(self, n, op, inputs, tensors=(), **fields):
        out = n.output[0]
        s = self.shape(out)
        if len(s) not in (2, 4):
            raise ConvertError(f"unsupported: {self.where(n)} gives a tensor of rank {len(s)} {list(s)}")
        base = n.name if n.name else out
        name = self.b.add(base, op, inputs, s[1:], tensors, origin=out, **fields)
        self.value[out] = name
        self.origin[name] = out
        return name

    def alias(self, n, src, note=None):
        self.value[n.output[0]] = self.value[src]
        if note:
            self.b.notes.append(note)

    def used(self, name):
        return bool(name) and (name in self.users or name in self.graph_outputs)

    # -- nodes ----------------------------------------------------------------
    def node(self, n):
        op = n.op_type
        a = attrs(n)
        getattr(self, "op_" + op)(n, a)

    def op_Pad(self, n, a):
        """Zero padding of H and W in front of a Conv, or of an AveragePool
        without pads of its own, becomes that layer's padding
        (torch.onnx.export writes AvgPool2d(padding=p, count_include_pad=True)
        as Pad + AveragePool)."""
        x = n.input[0]
        self.tensor(n, x)
        s = self.shape(x)
        pads = [int(v) for v in (a["pads"] if "pads" in a else self.const(n, n.input[1], "pads"))]
        value = a.get("value", 0.0) if "pads" in a else (
            float(self.const(n, n.input[2], "value")) if len(n.input) > 2 and n.input[2] else 0.0)
        users = self.users.get(n.output[0], [])
        ok = (len(s) == 4 and text(a.get("mode", "constant")) == "constant" and value == 0.0 and min(pads) >= 0
              and pads[0] == pads[1] == pads[4] == pads[5] == 0 and self.single_user(n.output[0])
              and users[0].input[0] == n.output[0])
        if ok and users[0].op_type == "AveragePool":
            ua = attrs(users[0])
            ok = (text(ua.get("auto_pad", "NOTSET")) in ("NOTSET", "") and not any(ua.get("pads", [0]))
                  and not (ua.get("ceil_mode", 0) and ua.get("count_include_pad", 0)))
        elif ok:
            ok = users[0].op_type == "Conv"
        if not ok:
            raise ConvertError(f"unsupported: {self.where(n)}: only zero padding of the height and width that "
                               f"feeds one Conv or AveragePool is supported (it becomes that layer's padding)")
        self.pending_pad[n.output[0]] = (x, [pads[2], pads[3], pads[6], pads[7]])
        self.b.notes.append(f"{self.where(n)}: padding {[pads[2], pads[3], pads[6], pads[7]]} folded into "
                            f"{users[0].name!r}")

    def op_Conv(self, n, a):
        x = n.input[0]
        extra = [0, 0, 0, 0]
        if x in self.pending_pad:
            x, extra = self.pending_pad.pop(x)
        src = self.tensor(n, x)
        s = list(self.shape(x))
        s[2] += extra[0] + extra[2]
        s[3] += extra[1] + extra[3]
        if len(s) != 4:
            raise ConvertError(f"unsupported: {self.where(n)} on {list(s)}: only 2-D convolution")
        w = self.const(n, n.input[1], "weight")
        if w.ndim != 4:
            raise ConvertError(f"unsupported: {self.where(n)} with a weight of rank {w.ndim}: only 2-D convolution")
        bias = self.const(n, n.input[2], "bias") if len(n.input) > 2 and n.input[2] else None
        a = dict(a)
        a.setdefault("kernel_shape", list(w.shape[2:]))
        k, st, p, d, _, auto = pool_geometry(a, s[2:])
        p = [p[i] + extra[i] for i in range(4)]
        if list(k) != list(w.shape[2:]):
            raise ConvertError(f"{self.where(n)}: kernel_shape {k} differs from the weight's {list(w.shape[2:])}")
        groups = int(a.get("group", 1))
        tensors = [("weight", w)] + ([("bias", bias)] if bias is not None else [])
        name = self.emit(n, "conv", [src], tensors, out_channels=int(w.shape[0]), kernel=_compact(k),
                         stride=None if st == [1, 1] else _compact(st), padding=_padding(p),
                         dilation=None if d == [1, 1] else _compact(d), groups=None if groups == 1 else groups,
                         bias=None if bias is not None else False)
        if auto not in ("NOTSET", ""):
            self.b.notes.append(f"{self.where(n)}: auto_pad {auto} is padding {p} (top, left, bottom, right)")
        if self.single_user(n.output[0]):
            self.foldable[n.output[0]] = (name, "conv")

    def op_BatchNormalization(self, n, a):
        x = n.input[0]
        if x not in self.foldable or self.foldable[x][1] != "conv":
            raise ConvertError(f"unsupported: {self.where(n)}: BatchNormalization is only supported right after a "
                               f"Conv whose output nothing else reads (it is folded into the conv)")
        if a.get("training_mode", 0) or any(self.used(o) for o in n.output[1:]):
            raise ConvertError(f"unsupported: {self.where(n)} in training mode")
        scale = self.const(n, n.input[1], "scale")
        beta = self.const(n, n.input[2], "B")
        mean = self.const(n, n.input[3], "mean")
        var = self.const(n, n.input[4], "var")
        conv, _ = self.foldable.pop(x)
        layer = self.b.layer(conv)
        t = dict(layer["_tensors"])
        w = t["weight"].astype(np.float64)
        bias = t["bias"].astype(np.float64) if "bias" in t else np.zeros(w.shape[0])
        f = scale / np.sqrt(var + a.get("epsilon", 1e-5))
        layer["_tensors"] = [("weight", (w * f[:, None, None, None]).astype(np.float32)),
                             ("bias", ((bias - mean) * f + beta).astype(np.float32))]
        layer.pop("bias", None)
        layer["_origin"] = n.output[0]
        self.origin[conv] = n.output[0]
        self.value[n.output[0]] = conv
        if self.single_user(n.output[0]):
            self.foldable[n.output[0]] = (conv, "conv")
        self.b.notes.append(f"folded BatchNormalization {n.name!r} into conv {conv!r}")

    def op_Relu(self, n, a):
        self.emit(n, "relu", [self.tensor(n, n.input[0])])

    def _pool(self, n, a, kind):
        x = n.input[0]
        extra = None
        if x in self.pending_pad:  # Pad + AveragePool: the padded zeros count
            x, extra = self.pending_pad.pop(x)
            a = dict(a, count_include_pad=1)
        src = self.tensor(n, x)
        s = list(self.shape(x))
        if extra:
            s[2] += extra[0] + extra[2]
            s[3] += extra[1] + extra[3]
        if len(s) != 4:
            raise ConvertError(f"unsupported: {self.where(n)} on {list(s)}: only 2-D pooling")
        if any(self.used(o) for o in n.output[1:]):
            raise ConvertError(f"unsupported: {self.where(n)} with its Indices output used")
        k, st, p, d, ceil_mode, auto = pool_geometry(a, s[2:])
        if extra:
            p = list(extra)
            s[2] -= extra[0] + extra[2]
            s[3] -= extra[1] + extra[3]
        if kind == "avgpool" and d != [1, 1]:
            raise ConvertError(f"unsupported: {self.where(n)} with dilations {d}")
        if 2 * p[0] > k[0] or 2 * p[2] > k[0] or 2 * p[1] > k[1] or 2 * p[3] > k[1]:
            raise ConvertError(f"unsupported: {self.where(n)}: pads {p} (top, left, bottom, right) are more than "
                               f"half the kernel {k}; rectify (like PyTorch) allows at most half")
        for i in range(2):  # ONNX's and PyTorch's ceil_mode sizes can differ
            onnx_n = out_size(s[2 + i], k[i], st[i], p[i], p[i + 2], d[i], ceil_mode, False)
            torch_n = out_size(s[2 + i], k[i], st[i], p[i], p[i + 2], d[i], ceil_mode, True)
            if onnx_n != torch_n:
                raise ConvertError(f"unsupported: {self.where(n)}: with ceil_mode its output has {onnx_n} "
                                   f"{'rows' if i == 0 else 'columns'} in ONNX but {torch_n} in rectify (whose "
                                   f"last window may not start in the padding, as in PyTorch)")
        fields = dict(kernel=_compact(k), stride=None if st == k else _compact(st), padding=_padding(p),
                      ceil_mode=True if ceil_mode else None)
        if kind == "maxpool":
            fields["dilation"] = None if d == [1, 1] else _compact(d)
        else:
            fields["count_include_pad"] = True if a.get("count_include_pad", 0) else False
        self.emit(n, kind, [src], **fields)
        if auto not in ("NOTSET", ""):
            self.b.notes.append(f"{self.where(n)}: auto_pad {auto} is padding {p} (top, left, bottom, right)")

    def op_MaxPool(self, n, a):
        if int(a.get("storage_order", 0)) and any(self.used(o) for o in n.output[1:]):
            raise ConvertError(f"unsupported: {self.where(n)} with storage_order")
        self._pool(n, a, "maxpool")

    def op_AveragePool(self, n, a):
        self._pool(n, a, "avgpool")

    def op_GlobalAveragePool(self, n, a):
        x = n.input[0]
        src = self.tensor(n, x)
        if len(self.shape(x)) != 4:
            raise ConvertError(f"unsupported: {self.where(n)} on {list(self.shape(x))}")
        self.emit(n, "global_avgpool", [src])

    def _dense(self, n, x, weight, bias):
        src = self.tensor(n, x)
        s = self.shape(x)
        if len(s) != 2:
            raise ConvertError(f"unsupported: {self.where(n)} on {list(s)}: the input must be [N, features] "
                               f"(Flatten first)")
        tensors = [("weight", weight)] + ([("bias", bias)] if bias is not None else [])
        name = self.emit(n, "dense", [src], tensors, units=int(weight.shape[0]),
                         bias=None if bias is not None else False)
        if self.single_user(n.output[0]):
            self.foldable[n.output[0]] = (name, "dense")
        return name

    def op_Gemm(self, n, a):
        if a.get("transA", 0):
            raise ConvertError(f"unsupported: {self.where(n)} with transA=1")
        B = self.const(n, n.input[1], "B")
        w = B if a.get("transB", 0) else B.T
        w = a.get("alpha", 1.0) * w
        bias = None
        if len(n.input) > 2 and n.input[2]:
            C = self.const(n, n.input[2], "C")
            units = w.shape[0]
            if C.size not in (1, units) or (C.ndim == 2 and C.shape[0] != 1):
                raise ConvertError(f"unsupported: {self.where(n)} with C of shape {list(C.shape)} (a bias of "
                                   f"{units} values or a scalar is needed)")
            bias = a.get("beta", 1.0) * np.broadcast_to(C.reshape(-1), (units,))
        self._dense(n, n.input[0], w, bias)

    def op_MatMul(self, n, a):
        B = self.const(n, n.input[1], "second operand")
        if B.ndim != 2:
            raise ConvertError(f"unsupported: {self.where(n)} with a constant of shape {list(B.shape)}")
        self._dense(n, n.input[0], B.T, None)
        self.b.notes.append(f"{self.where(n)}: MatMul by a constant is a dense layer")

    def op_Add(self, n, a):
        x, y = n.input
        cx, cy = x in self.g.const, y in self.g.const
        if not cx and not cy:
            sx, sy = self.shape(x), self.shape(y)
            if sx != sy:
                raise ConvertError(f"unsupported: {self.where(n)} adds tensors of shapes {list(sx)} and {list(sy)}; "
                                   f"rectify's add needs equal shapes (no broadcasting)")
            self.emit(n, "add", [self.tensor(n, x), self.tensor(n, y)])
            return
        t, c = (y, x) if cx else (x, y)
        self.tensor(n, t)
        if t not in self.foldable:
            raise ConvertError(f"unsupported: {self.where(n)}: adding a constant is only supported as the bias of "
                               f"a Conv, Gemm or MatMul whose output nothing else reads")
        layer_name, kind = self.foldable.pop(t)
        layer = self.b.layer(layer_name)
        cv = np.asarray(self.vals[c], dtype=np.float64)
        units = layer["_shape"][0]
        ok = cv.size in (1, units)
        if ok and cv.size == units and units > 1:  # must lie along the channel / feature axis
            rank = len(self.shape(t))
            want = [units] + [1] * (rank - 2) if kind == "conv" else [units]
            squeezed = list(cv.shape)
            while squeezed and squeezed[0] == 1 and len(squeezed) > len(want):
                squeezed.pop(0)
            ok = squeezed == want
        if not ok:
            raise ConvertError(f"unsupported: {self.where(n)}: a constant of shape {list(cv.shape)} is not a bias "
                               f"of the {units} {'channels' if kind == 'conv' else 'features'} of {layer_name!r}")
        tens = dict(layer["_tensors"])
        bias = tens.get("bias", np.zeros(units)).astype(np.float64) + np.broadcast_to(cv.reshape(-1), (units,))
        layer["_tensors"] = [("weight", tens["weight"]), ("bias", bias.astype(np.float32))]
        layer.pop("bias", None)
        layer["_origin"] = n.output[0]
        self.origin[layer_name] = n.output[0]
        self.value[n.output[0]] = layer_name
        if self.single_user(n.output[0]):
            self.foldable[n.output[0]] = (layer_name, kind)
        self.b.notes.append(f"folded Add {n.name!r} of a constant into the bias of {layer_name!r}")

    def _flatten(self, n):
        x = n.input[0]
        src = self.tensor(n, x)
        si, so = self.shape(x), self.shape(n.output[0])
        if tuple(si) == tuple(so) or (len(si) == 2 and len(so) == 2 and si == so):
            self.alias(n, x)
            return
        if len(so) != 2 or so[0] != si[0] or so[1] != int(np.prod(si[1:])):
            raise ConvertError(f"unsupported: {self.where(n)} reshapes {list(si)} to {list(so)}; only "
                               f"flattening to [N, features] is supported")
        if len(si) == 2:
            self.alias(n, x)
            return
        self.emit(n, "flatten", [src])

    def op_Flatten(self, n, a):
        self._flatten(n)

    def op_Reshape(self, n, a):
        self._flatten(n)

    def op_Softmax(self, n, a):
        x = n.input[0]
        src = self.tensor(n, x)
        s = self.shape(x)
        axis = a.get("axis", 1 if self.g.opset < 13 else -1)
        axis = axis % len(s)
        ok = axis == 1 and (self.g.opset >= 13 or len(s) == 2 or s[2] * s[3] == 1)
        if not ok:
            raise ConvertError(f"unsupported: {self.where(n)} with axis {a.get('axis')} on {list(s)} (opset "
                               f"{self.g.opset}); rectify's softmax runs over the channels / features")
        self.emit(n, "softmax", [src])

    def op_Dropout(self, n, a):
        if any(self.used(o) for o in n.output[1:]):
            raise ConvertError(f"unsupported: {self.where(n)} with its mask output used")
        if len(n.input) > 2 and n.input[2]:
            if n.input[2] not in self.g.const or bool(np.asarray(self.vals[n.input[2]])):
                raise ConvertError(f"unsupported: {self.where(n)} in training mode")
        self.tensor(n, n.input[0])
        self.alias(n, n.input[0], f"dropped Dropout {n.name!r} (identity at inference)")

    def op_Identity(self, n, a):
        self.tensor(n, n.input[0])
        self.alias(n, n.input[0])

    def op_Concat(self, n, a):
        srcs = [self.tensor(n, i) for i in n.input]
        rank = len(self.shape(n.input[0]))
        axis = a["axis"] % rank
        if axis != 1:
            raise ConvertError(f"unsupported: {self.where(n)} on axis {a['axis']} of rank-{rank} tensors; rectify "
                               f"concatenates channels (axis 1)")
        if len(srcs) == 1:
            self.alias(n, n.input[0])
            return
        channels = [self.shape(i)[1] for i in n.input]
        rest = list(self.shape(n.input[0])[2:])
        while len(srcs) > 8:
            part = self.b.add(f"{n.name or n.output[0]}.part", "concat", srcs[:8], [sum(channels[:8])] + rest)
            srcs = [part] + srcs[8:]
            channels = [sum(channels[:8])] + channels[8:]
        self.emit(n, "concat", srcs)


def _compact(v):
    return int(v[0]) if v[0] == v[1] else [int(v[0]), int(v[1])]


def _padding(p):
    if p == [0, 0, 0, 0]:
        return None
    if p[0] == p[2] and p[1] == p[3]:
        return _compact([p[0], p[1]])
    return [int(v) for v in p]


def load(path, input_shape=None):
    path = Path(path)
    if not path.is_file():
        raise ConvertError(f"{path}: no such file")
    try:
        model = onnx.load(str(path))
    except Exception as e:
        raise ConvertError(f"{path}: not an ONNX model: {e}") from None
    return Graph(model, input_shape)


def convert_graph(graph, name, seed=0):
    return Converter(graph, name, seed).convert()


def reference_outputs(graph, x):
    values = graph.run(x)
    return [values[o.name] for o in graph.model.graph.output], values


def verify(conv, outdir, runner, seed, tolerance):
    g = conv.graph
    rng = np.random.default_rng(seed + 1)
    batch = g.fixed_batch or 1
    x = rng.standard_normal([batch] + g.shape).astype(np.float32)
    want, _ = reference_outputs(g, x)
    with run_rectify(runner, outdir, x) as run:
        diffs = [rel_diff(got, w) for got, w in zip(run.outputs, want)]
        seconds = run.report["seconds"]
    for name, d, w in zip(conv.outputs, diffs, want):
        print(f"verify: output {name!r} ({w.size} values): max relative difference {d:.3g} (numpy reference of "
              f"the ONNX graph vs rectify, random {'x'.join(map(str, g.shape))} input, seed {seed})")
    print(f"verify: rectify ran in {seconds * 1000:.1f} ms")
    bad = [(o, d) for o, d in zip(conv.outputs, diffs) if not d <= tolerance]
    if bad:
        raise ConvertError("verification failed: " + ", ".join(f"output {o!r} differs by {d:.3g}" for o, d in bad)
                           + f" (tolerance {tolerance:g})")
    return diffs


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 2)[2])
    ap.add_argument("model", type=Path, metavar="MODEL.onnx")
    ap.add_argument("outdir", type=Path, metavar="OUTDIR")
    ap.add_argument("--input-shape", type=int, nargs=3, metavar=("C", "H", "W"),
                    help="the input's C H W when the ONNX file leaves them symbolic")
    add_preprocess_args(ap)
    add_common_args(ap)
    args = ap.parse_args(argv)
    try:
        t0 = time.time()
        runner = None if args.no_verify else find_runner(args.runner)
        g = load(args.model, args.input_shape)
        pre = preprocess_from_args(args, g.shape)
        conv = convert_graph(g, args.name or args.model.stem, args.seed)
        conv.builder.write(args.outdir, conv.outputs, pre, args.labels)
        print(conv.builder.summary(conv.outputs))
        for note in conv.notes:
            print(f"note: {note}")
        print(f"wrote {args.outdir}/model.json, {args.outdir}/weights.safetensors"
              + (f", {args.outdir}/labels.txt" if args.labels else "") + f" in {time.time() - t0:.1f} s")
        if not args.no_verify:
            verify(conv, args.outdir, runner, args.seed, args.tolerance)
    except ConvertError as e:
        print(f"onnx2rectify: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
