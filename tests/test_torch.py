#!/usr/bin/python3
"""test_torch.py: proof that rectify runs imported models right.

Run by meson (`meson test torch`) as
    /usr/bin/python3 tests/test_torch.py --runner build/tests/run_tensor [--quick] [--only SUBSTRING]

With fixed seeds, each case converts a model, runs PyTorch (float32, eval
mode) and the C engine (float32, through run_tensor) on the same random
input, and checks:

  - the outputs: max |rectify - reference| / max |reference| <= 1e-4;
  - after every ReLU, the zeros: element by element, rectify's output is 0
    exactly where the reference's is, except where the pre-activation is
    within float rounding of 0, defined as
        |pre-activation| <= 1e-5 * max |pre-activation of that layer|
    (such elements are counted and reported as "near-zero"; a mismatch
    anywhere else fails). The engine's own zero count (its statistics) must
    equal the zeros of the output it wrote.

Cases:
  torchvision   alexnet, vgg11, vgg16, squeezenet1_1, resnet18 at 3x224x224,
                random weights, BatchNorm with random running statistics (so
                folding is tested), converted with tools/torch2rectify.py
  random        30 random small nets: depth, channels, kernels, strides,
                paddings (also 'same'), dilations, groups (also depthwise),
                BatchNorm, max/avg pools with ceil_mode, residual blocks
                (+, +=, torch.add, add_), fire modules (torch.cat), dense or
                pooled heads, softmax, and every spelling of ReLU / flatten
  onnx          torch.onnx.export of some of them (BatchNormalization kept
                or folded by the exporter), converted with
                tools/onnx2rectify.py, compared with the numpy reference of
                the ONNX graph and with PyTorch; hand-made graphs for
                auto_pad SAME_UPPER / SAME_LOWER / VALID, Gemm alpha/beta,
                MatMul + Add, opset 11 Softmax, checked against PyTorch
  cli           the two command lines end to end (preprocessing, labels,
                --state-dict .pth and .safetensors, exit status)
  unsupported   every construct the importers refuse gives an error naming
                the module / function / ONNX node and op type

Prints one line per case and closes with "N passed, N failed"; exit status
1 when anything failed. --quick (used for the sanitizer build) skips VGG-16,
AlexNet and the command-line cases, and runs 10 random nets.
"""

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / "tools"
sys.path.insert(0, str(TOOLS))

TOLERANCE = 1e-4
NEAR_ZERO = 1e-5
SEED = 20240601


def fail(msg):
    raise AssertionError(msg)


# -- checking one converted model -------------------------------------------

class Checked:
    """What one comparison found."""

    def __init__(self):
        self.rel = {}           # reference label -> worst output relative difference
        self.relu_layers = 0
        self.zeros_ref = 0
        self.zeros_rect = 0
        self.mismatches = 0     # all allowed (near-zero pre-activations)
        self.near = 0           # near-zero pre-activations seen
        self.worst_layer = (0.0, "")
        self.seconds = 0.0

    def line(self):
        rel = ", ".join(f"{v:.2g} vs {k}" for k, v in self.rel.items())
        return (f"rel {rel}; {self.relu_layers} relu layers, zeros {self.zeros_rect}/{self.zeros_ref} "
                f"(rectify/reference), {self.mismatches} differ, {self.near} near-zero pre-activations; "
                f"worst layer {self.worst_layer[1]} {self.worst_layer[0]:.2g}; rectify {self.seconds:.2f} s")


def compare(np, builder, origin, run, ref_values, ref_input, outputs_ref, label, checked):
    """ref_values: reference value of each origin (a name) as numpy arrays
    (batch first); origin: layer -> name. Compares outputs and every ReLU."""
    from rectify_import import rel_diff
    for i, (got, want) in enumerate(zip(run.outputs, outputs_ref)):
        d = rel_diff(got, want)
        checked.rel[label] = max(checked.rel.get(label, 0.0), d)
        if not d <= TOLERANCE:
            fail(f"output {i} differs from {label} by {d:.3g} (tolerance {TOLERANCE})")

    def ref_of(name):
        if name == builder.input_name:
            return ref_input
        o = origin.get(name)
        return None if o is None else ref_values[o]

    for layer in builder.layers:
        name = layer["name"]
        ref = ref_of(name)
        if ref is None:
            continue
        got = run.layer_output(name)
        ref = np.asarray(ref).reshape(got.shape)
        d = rel_diff(got, ref)
        if d > checked.worst_layer[0]:
            checked.worst_layer = (d, name)
        if layer["op"] != "relu":
            continue
        checked.relu_layers += 1
        pre = np.asarray(ref_of(layer["_inputs"][0]), dtype=np.float64).reshape(got.shape)
        rect_zero = got == 0
        ref_zero = ref == 0
        engine_zeros = run.zeros(name)
        if engine_zeros != int(rect_zero.sum()):
            fail(f"layer {name}: the engine counted {engine_zeros} zeros, its output has {int(rect_zero.sum())}")
        top = float(np.max(np.abs(pre))) if pre.size else 0.0
        near = np.abs(pre) <= NEAR_ZERO * top
        differ = rect_zero != ref_zero
        bad = differ & ~near
        checked.zeros_ref += int(ref_zero.sum())
        checked.zeros_rect += int(rect_zero.sum())
        checked.mismatches += int(differ.sum())
        checked.near += int(near.sum())
        if bad.any():
            idx = np.argwhere(bad)[0]
            fail(f"layer {name}: {int(bad.sum())} zeros differ where the pre-activation is not near zero, e.g. at "
                 f"{tuple(int(v) for v in idx)}: rectify {got[tuple(idx)]!r}, {label} {ref[tuple(idx)]!r}, "
                 f"pre-activation {pre[tuple(idx)]!r} (max {top:.3g})")


def check_torch(ctx, module, input_shape, name, batch=1, threads=0, seed=0):
    """Converts with torch2rectify, runs both, compares."""
    import numpy as np
    import torch
    import torch2rectify as t2r
    from rectify_import import run_rectify
    module.eval()
    conv = t2r.convert_module(module, input_shape, name, seed=seed)
    out = ctx.tmpdir / name
    conv.builder.write(out, conv.outputs)
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randn([batch] + list(input_shape), generator=g)
    rec = t2r.Recorder(conv.gm, keep=True)
    with torch.no_grad():
        rec.run(x)
        want = module(x)
    want = [w.numpy() for w in (want if isinstance(want, (tuple, list)) else [want])]
    values = {k: v.numpy() for k, v in rec.values.items()}
    checked = Checked()
    with run_rectify(ctx.runner, out, x.numpy(), layers=True, threads=threads, tmp_parent=ctx.tmpdir) as run:
        checked.seconds = run.report["seconds"]
        compare(np, conv.builder, conv.origin, run, values, x.numpy(), want, "torch", checked)
    shutil.rmtree(out, ignore_errors=True)
    return checked, conv


def export_onnx(module, input_shape, path, keep_bn, opset=13, dynamic_batch=False):
    import torch
    x = torch.randn([1] + list(input_shape))
    kwargs = {"training": torch.onnx.TrainingMode.PRESERVE, "do_constant_folding": False} if keep_bn else {}
    if dynamic_batch:  # x.view(x.size(0), -1) then becomes Shape, Gather, Unsqueeze, Concat, Reshape
        kwargs["dynamic_axes"] = {"image": {0: "batch"}, "out": {0: "batch"}}
    torch.onnx.export(module.eval(), x, str(path), opset_version=opset, input_names=["image"],
                      output_names=["out"], **kwargs)


def check_onnx_file(ctx, path, name, torch_module=None, seed=0, threads=0):
    """Converts with onnx2rectify, compares with the numpy reference (and
    PyTorch when given)."""
    import numpy as np
    import onnx2rectify as o2r
    from rectify_import import run_rectify
    graph = o2r.load(path)
    conv = o2r.convert_graph(graph, name, seed=seed)
    out = ctx.tmpdir / name
    conv.builder.write(out, conv.outputs)
    rng = np.random.default_rng(seed + 1)
    x = rng.standard_normal([1] + graph.shape).astype(np.float32)
    want, values = o2r.reference_outputs(graph, x)
    checked = Checked()
    with run_rectify(ctx.runner, out, x, layers=True, threads=threads, tmp_parent=ctx.tmpdir) as run:
        checked.seconds = run.report["seconds"]
        compare(np, conv.builder, conv.origin, run, values, x, want, "numpy-onnx", checked)
        if torch_module is not None:
            import torch
            with torch.no_grad():
                t = torch_module.eval()(torch.from_numpy(x))
            t = [v.numpy() for v in (t if isinstance(t, (tuple, list)) else [t])]
            compare(np, conv.builder, {}, run, {}, x, t, "torch", checked)
    shutil.rmtree(out, ignore_errors=True)
    return checked, conv


def randomize_bn(module, seed):
    import torch
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.2)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.2)


# -- random nets ----------------------------------------------------------------

def define_modules():
    """The building blocks of random nets (defined once torch is imported)."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class Act(nn.Module):
        KINDS = ["module", "inplace", "F", "F_inplace", "torch", "method"]

        def __init__(self, kind):
            super().__init__()
            self.kind = kind
            if kind in ("module", "inplace"):
                self.relu = nn.ReLU(inplace=kind == "inplace")

        def forward(self, x):
            if self.kind in ("module", "inplace"):
                return self.relu(x)
            if self.kind == "F":
                return F.relu(x)
            if self.kind == "F_inplace":
                return F.relu(x, inplace=True)
            if self.kind == "torch":
                return torch.relu(x)
            return x.relu()

    class ConvBlock(nn.Module):
        def __init__(self, cin, cout, k, s, p, d, groups, bias, bn, act):
            super().__init__()
            self.conv = nn.Conv2d(cin, cout, k, s, p, d, groups, bias)
            self.bn = nn.BatchNorm2d(cout) if bn else None
            self.act = Act(act) if act else None

        def forward(self, x):
            x = self.conv(x)
            if self.bn is not None:
                x = self.bn(x)
            if self.act is not None:
                x = self.act(x)
            return x

    class Pool(nn.Module):
        def __init__(self, kind, functional, k, s, p, d, ceil_mode, include_pad):
            super().__init__()
            self.kind, self.functional = kind, functional
            self.args = (k, s, p, d, ceil_mode, include_pad)
            if not functional:
                self.pool = nn.MaxPool2d(k, s, p, d, ceil_mode=ceil_mode) if kind == "max" else \
                    nn.AvgPool2d(k, s, p, ceil_mode=ceil_mode, count_include_pad=include_pad)

        def forward(self, x):
            k, s, p, d, ceil_mode, include_pad = self.args
            if not self.functional:
                return self.pool(x)
            if self.kind == "max":
                return F.max_pool2d(x, k, s, p, d, ceil_mode=ceil_mode)
            return F.avg_pool2d(x, k, s, p, ceil_mode=ceil_mode, count_include_pad=include_pad)

    class Residual(nn.Module):
        def __init__(self, cin, cout, stride, add_kind, act):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.down = None
            if stride != 1 or cin != cout:
                self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
            self.add_kind = add_kind
            self.act = Act(act)

        def forward(self, x):
            identity = x if self.down is None else self.down(x)
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            if self.add_kind == "plus":
                out = out + identity
            elif self.add_kind == "iadd":
                out += identity
            elif self.add_kind == "torch":
                out = torch.add(out, identity)
            elif self.add_kind == "method":
                out = out.add(identity)
            else:
                out.add_(identity)
            return self.act(out)

    class Fire(nn.Module):
        def __init__(self, cin, squeeze, e1, e3, three_way):
            super().__init__()
            self.squeeze = nn.Conv2d(cin, squeeze, 1)
            self.squeeze_act = nn.ReLU(inplace=True)
            self.e1 = nn.Conv2d(squeeze, e1, 1)
            self.e3 = nn.Conv2d(squeeze, e3, 3, padding=1)
            self.e5 = nn.Conv2d(squeeze, e1, 5, padding=2) if three_way else None

        def forward(self, x):
            x = self.squeeze_act(self.squeeze(x))
            parts = [F.relu(self.e1(x)), torch.relu(self.e3(x))]
            if self.e5 is not None:
                parts.append(self.e5(x).relu())
            return torch.cat(parts, 1)

    class Flat(nn.Module):
        KINDS = ["module", "torch", "view", "reshape", "method"]

        def __init__(self, kind):
            super().__init__()
            self.kind = kind
            self.flat = nn.Flatten() if kind == "module" else None

        def forward(self, x):
            if self.kind == "module":
                return self.flat(x)
            if self.kind == "torch":
                return torch.flatten(x, 1)
            if self.kind == "view":
                return x.view(x.size(0), -1)
            if self.kind == "reshape":
                return x.reshape(x.shape[0], -1)
            return x.flatten(1)

    class Soft(nn.Module):
        KINDS = ["module", "F", "torch", "method"]

        def __init__(self, kind):
            super().__init__()
            self.kind = kind
            self.soft = nn.Softmax(dim=1) if kind == "module" else None

        def forward(self, x):
            if self.kind == "module":
                return self.soft(x)
            if self.kind == "F":
                return F.softmax(x, dim=1)
            if self.kind == "torch":
                return torch.softmax(x, 1)
            return x.softmax(1)

    class Net(nn.Module):
        def __init__(self, body, head):
            super().__init__()
            self.body = nn.ModuleList(body)
            self.head = nn.Sequential(*head)

        def forward(self, x):
            for b in self.body:
                x = b(x)
            return self.head(x)

    return dict(Act=Act, ConvBlock=ConvBlock, Pool=Pool, Residual=Residual, Fire=Fire, Flat=Flat, Soft=Soft, Net=Net)


class Redraw(Exception):
    pass


def random_net(M, seed, onnx_friendly=False):
    """A random small net and its input shape, reproducible from seed."""
    import torch
    import torch.nn as nn
    rng = random.Random(seed)
    for _ in range(200):
        torch.manual_seed(rng.randrange(1 << 30))
        c = rng.choice([1, 3, 4])
        h, w = rng.randint(10, 40), rng.randint(10, 40)
        x = torch.randn(1, c, h, w)
        body, desc = [], []
        depth = rng.randint(1, 6)
        tries = 0
        while len(body) < depth and tries < 60:
            tries += 1
            cin = x.shape[1]
            kind = rng.choices(["conv", "pool", "residual", "fire", "dw"], [5, 3, 1, 1, 1])[0]
            if kind == "conv":
                groups = 1
                cout = rng.randint(1, 16)
                if cin > 1 and rng.random() < 0.3:
                    groups = rng.choice([g for g in range(2, cin + 1) if cin % g == 0])
                    cout = groups * rng.randint(1, 3)
                k = (rng.randint(1, 5), rng.randint(1, 5))
                if rng.random() < 0.1:
                    s, p = 1, "same"
                else:
                    s = (rng.randint(1, 3), rng.randint(1, 3))
                    p = (rng.randint(0, 3), rng.randint(0, 3))
                d = (rng.randint(1, 3), rng.randint(1, 3)) if rng.random() < 0.3 else 1
                block = M["ConvBlock"](cin, cout, k, s, p, d, groups, rng.random() < 0.8, rng.random() < 0.4,
                                       rng.choice(M["Act"].KINDS) if rng.random() < 0.85 else None)
                text = f"conv{k}/s{s}/p{p}/d{d}/g{groups}->{cout}"
            elif kind == "dw":
                block = M["ConvBlock"](cin, cin, 3, rng.randint(1, 2), 1, 1, cin, True, rng.random() < 0.5,
                                       rng.choice(M["Act"].KINDS))
                text = f"dw{cin}"
            elif kind == "pool":
                pk = rng.choice(["max", "avg"])
                k = (rng.randint(1, 4), rng.randint(1, 4))
                s = (rng.randint(1, 3), rng.randint(1, 3)) if rng.random() < 0.7 else None
                p = (rng.randint(0, k[0] // 2), rng.randint(0, k[1] // 2))
                d = (rng.randint(1, 2), rng.randint(1, 2)) if pk == "max" and rng.random() < 0.3 else 1
                ceil_mode = rng.random() < 0.4 and not onnx_friendly
                block = M["Pool"](pk, rng.random() < 0.4, k, s, p, d, ceil_mode, rng.random() < 0.5)
                text = f"{pk}pool{k}/s{s}/p{p}/d{d}{'/ceil' if ceil_mode else ''}"
            elif kind == "residual":
                cout = rng.choice([cin, rng.randint(2, 12)])
                block = M["Residual"](cin, cout, rng.choice([1, 1, 2]),
                                      rng.choice(["plus", "iadd", "torch", "method", "add_"]),
                                      rng.choice(M["Act"].KINDS))
                text = f"residual->{cout}"
            else:
                block = M["Fire"](cin, rng.randint(1, 6), rng.randint(1, 8), rng.randint(1, 8), rng.random() < 0.3)
                text = "fire"
            try:
                with torch.no_grad():
                    y = block.eval()(x)
            except RuntimeError:
                continue
            if min(y.shape[2:]) < 1:
                continue
            body.append(block)
            desc.append(text)
            x = y
        if not body:
            continue
        # the head
        head = []
        hk = rng.choice(["dense", "gap", "conv", "adaptive"])
        ch, hh, ww = x.shape[1], x.shape[2], x.shape[3]
        classes = rng.randint(2, 12)
        if hk == "dense" and ch * hh * ww <= 4096:
            units = rng.randint(4, 32)
            head = [M["Flat"](rng.choice(M["Flat"].KINDS)), nn.Linear(ch * hh * ww, units, bias=rng.random() < 0.8),
                    M["Act"](rng.choice(M["Act"].KINDS)), nn.Dropout(0.5), nn.Linear(units, classes)]
        elif hk == "conv":
            head = [nn.Conv2d(ch, classes, 1), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1),
                    M["Flat"](rng.choice(M["Flat"].KINDS))]
        elif hk == "adaptive" and (hh % 2 == 0 or ww % 2 == 0):
            oh = hh // 2 if hh % 2 == 0 else hh
            ow = ww // 2 if ww % 2 == 0 else ww
            head = [nn.AdaptiveAvgPool2d((oh, ow)), M["Flat"](rng.choice(M["Flat"].KINDS)),
                    nn.Linear(ch * oh * ow, classes)]
        else:
            hk = "gap"
            head = [nn.AdaptiveAvgPool2d(1), M["Flat"](rng.choice(M["Flat"].KINDS)), nn.Dropout(0.2),
                    nn.Linear(ch, classes)]
        if rng.random() < 0.4:
            head.append(M["Soft"](rng.choice(M["Soft"].KINDS)))
            hk += "+softmax"
        net = M["Net"](body, head).eval()
        randomize_bn(net, rng.randrange(1 << 30))
        with torch.no_grad():
            y = net(torch.randn(2, c, h, w))
        if not torch.isfinite(y).all():
            continue
        return net, [c, h, w], f"{c}x{h}x{w}: " + " ".join(desc) + f" | {hk}"
    raise RuntimeError(f"no valid random net for seed {seed}")


# -- hand-made ONNX graphs ----------------------------------------------------------

def handmade_onnx(path, kind, seed):
    """A small ONNX graph written with onnx.helper, and a PyTorch function
    computing what it means (written from the ONNX specification, not from
    the converter), for what torch.onnx.export never writes."""
    import numpy as np
    import onnx
    import torch
    import torch.nn.functional as F
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(seed)
    inits, nodes = [], []

    def const(name, arr):
        inits.append(numpy_helper.from_array(np.asarray(arr, dtype=np.float32), name))
        return name

    def same_pads(size, k, s, d, upper):
        pads = []
        for i in range(2):
            out = -(-size[i] // s[i])
            total = max(0, (out - 1) * s[i] + d[i] * (k[i] - 1) + 1 - size[i])
            small = total // 2
            pads.append((small, total - small) if upper else (total - small, small))
        return pads  # [(top, bottom), (left, right)]

    shape = [3, 13, 10]
    opset = 13
    if kind in ("same_upper", "same_lower", "valid"):
        auto = {"same_upper": "SAME_UPPER", "same_lower": "SAME_LOWER", "valid": "VALID"}[kind]
        w1 = rng.standard_normal((6, 3, 4, 3)).astype(np.float32) * 0.3
        b1 = rng.standard_normal(6).astype(np.float32) * 0.1
        nodes.append(helper.make_node("Conv", ["x", const("w1", w1), const("b1", b1)], ["c1"], name="conv/same",
                                      auto_pad=auto, strides=[2, 1], dilations=[1, 2], kernel_shape=[4, 3]))
        nodes.append(helper.make_node("Relu", ["c1"], ["r1"], name="relu1"))
        nodes.append(helper.make_node("MaxPool", ["r1"], ["p1"], name="pool:max", auto_pad=auto,
                                      kernel_shape=[3, 2], strides=[2, 2]))
        nodes.append(helper.make_node("AveragePool", ["p1"], ["p2"], name="pool:avg", auto_pad=auto,
                                      kernel_shape=[2, 3], strides=[1, 2], count_include_pad=0))
        nodes.append(helper.make_node("GlobalAveragePool", ["p2"], ["g"], name="gap"))
        nodes.append(helper.make_node("Flatten", ["g"], ["y"], name="flat", axis=1))

        def reference(x):
            if auto == "VALID":
                pc = pm = pa = ((0, 0), (0, 0))
            h, w = x.shape[2:]
            if auto != "VALID":
                pc = same_pads((h, w), (4, 3), (2, 1), (1, 2), auto == "SAME_UPPER")
            y = F.conv2d(F.pad(x, (pc[1][0], pc[1][1], pc[0][0], pc[0][1])), torch.from_numpy(w1),
                         torch.from_numpy(b1), stride=(2, 1), dilation=(1, 2))
            y = torch.relu(y)
            if auto != "VALID":
                pm = same_pads(y.shape[2:], (3, 2), (2, 2), (1, 1), auto == "SAME_UPPER")
            y = F.max_pool2d(F.pad(y, (pm[1][0], pm[1][1], pm[0][0], pm[0][1]), value=-float("inf")), (3, 2), (2, 2))
            if auto != "VALID":
                pa = same_pads(y.shape[2:], (2, 3), (1, 2), (1, 1), auto == "SAME_UPPER")
            # count_include_pad=0: divide by the cells inside the input
            ones = torch.ones_like(y[:, :1])
            pad = (pa[1][0], pa[1][1], pa[0][0], pa[0][1])
            s = F.avg_pool2d(F.pad(y, pad), (2, 3), (1, 2), divisor_override=1)
            n = F.avg_pool2d(F.pad(ones, pad), (2, 3), (1, 2), divisor_override=1)
            y = s / n
            return y.mean(dim=(2, 3))
    elif kind == "gemm":
        shape = [2, 5, 4]
        wa = rng.standard_normal((40, 7)).astype(np.float32)  # transB = 0: B is [in, units]
        c = rng.standard_normal((1, 7)).astype(np.float32)
        wm = rng.standard_normal((7, 5)).astype(np.float32)
        bm = rng.standard_normal(5).astype(np.float32)
        nodes.append(helper.make_node("Flatten", ["x"], ["f"], name="flatten"))
        nodes.append(helper.make_node("Gemm", ["f", const("B", wa), const("C", c)], ["g"], name="gemm",
                                      alpha=0.5, beta=2.0, transB=0))
        nodes.append(helper.make_node("Relu", ["g"], ["r"], name="relu"))
        nodes.append(helper.make_node("MatMul", ["r", const("W", wm)], ["m"], name="matmul"))
        nodes.append(helper.make_node("Add", ["m", const("bias", bm)], ["a"], name="bias_add"))
        nodes.append(helper.make_node("Identity", ["a"], ["i"], name="identity"))
        nodes.append(helper.make_node("Dropout", ["i"], ["d"], name="dropout"))
        nodes.append(helper.make_node("Softmax", ["d"], ["y"], name="softmax", axis=1))
        opset = 11

        def reference(x):
            f = x.reshape(x.shape[0], -1)
            g = 0.5 * (f @ torch.from_numpy(wa)) + 2.0 * torch.from_numpy(c)
            m = torch.relu(g) @ torch.from_numpy(wm) + torch.from_numpy(bm)
            return torch.softmax(m, 1)
    elif kind == "branches":
        # Concat of two branches, an element-wise Add, a conv bias given as an Add of [1, C, 1, 1],
        # a Pad before a Conv, a node name with a space
        shape = [4, 9, 9]
        wa = rng.standard_normal((3, 4, 1, 1)).astype(np.float32)
        wb = rng.standard_normal((5, 4, 3, 3)).astype(np.float32) * 0.3
        bb = rng.standard_normal((1, 5, 1, 1)).astype(np.float32)
        wc = rng.standard_normal((8, 4, 2, 3)).astype(np.float32) * 0.3
        nodes.append(helper.make_node("Conv", ["x", const("wa", wa)], ["a"], name="a"))
        nodes.append(helper.make_node("Conv", ["x", const("wb", wb)], ["b0"], name="b", pads=[1, 0, 1, 2]))
        nodes.append(helper.make_node("Add", [const("bb", bb), "b0"], ["b"], name="b_bias"))
        nodes.append(helper.make_node("Relu", ["b"], ["br"], name="b relu"))  # a space: sanitised
        nodes.append(helper.make_node("Concat", ["a", "br"], ["cat"], name="cat", axis=1))
        inits.append(numpy_helper.from_array(np.array([0, 0, 1, 0, 0, 0, 0, 2], dtype=np.int64), "pads"))
        nodes.append(helper.make_node("Pad", ["x", "pads"], ["xp"], name="pad", mode="constant"))
        nodes.append(helper.make_node("Conv", ["xp", const("wc", wc)], ["c"], name="c"))
        nodes.append(helper.make_node("Add", ["cat", "c"], ["s"], name="sum"))
        nodes.append(helper.make_node("Relu", ["s"], ["y"], name="out"))

        def reference(x):
            a = F.conv2d(x, torch.from_numpy(wa))
            b = F.conv2d(F.pad(x, (0, 2, 1, 1)), torch.from_numpy(wb)) + torch.from_numpy(bb)
            cat = torch.cat([a, torch.relu(b)], 1)
            return torch.relu(cat + F.conv2d(F.pad(x, (0, 2, 1, 0)), torch.from_numpy(wc)))
    else:
        raise ValueError(kind)
    graph = helper.make_graph(nodes, kind, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1] + shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.save(model, str(path))
    return shape, reference


def bad_onnx(path, kind):
    """Hand-made ONNX graphs the converter must refuse."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    inits, nodes = [], []
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 6, 6])]

    def const(name, arr, dtype=np.float32):
        inits.append(numpy_helper.from_array(np.asarray(arr, dtype=dtype), name))
        return name

    if kind == "tanh":
        nodes.append(helper.make_node("Tanh", ["x"], ["y"], name="squash"))
    elif kind == "pool_pads":
        nodes.append(helper.make_node("MaxPool", ["x"], ["y"], name="bigpad", kernel_shape=[2, 2], pads=[2, 0, 0, 0]))
    elif kind == "broadcast_add":
        nodes.append(helper.make_node("GlobalAveragePool", ["x"], ["g"], name="gap"))
        nodes.append(helper.make_node("Add", ["x", "g"], ["y"], name="bcast"))
    elif kind == "transA":
        nodes.append(helper.make_node("Flatten", ["x"], ["f"], name="flat"))
        nodes.append(helper.make_node("Gemm", ["f", const("B", np.ones((72, 3)))], ["y"], name="gemmA", transA=1))
    elif kind == "softmax_axis":
        nodes.append(helper.make_node("Softmax", ["x"], ["y"], name="soft", axis=2))
    elif kind == "bn_alone":
        nodes.append(helper.make_node("Relu", ["x"], ["r"], name="relu"))
        nodes.append(helper.make_node("BatchNormalization", ["r", const("s", [1, 1]), const("b", [0, 0]),
                                                             const("m", [0, 0]), const("v", [1, 1])], ["y"],
                                      name="lonely_bn"))
    elif kind == "ceil_mismatch":
        inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 5, 5])]
        nodes.append(helper.make_node("MaxPool", ["x"], ["y"], name="ceilpool", kernel_shape=[2, 2], strides=[2, 2],
                                      pads=[1, 1, 1, 1], ceil_mode=1))
    elif kind == "two_inputs":
        inputs.append(helper.make_tensor_value_info("x2", TensorProto.FLOAT, [1, 2, 6, 6]))
        nodes.append(helper.make_node("Add", ["x", "x2"], ["y"], name="sum"))
    elif kind == "custom_domain":
        nodes.append(helper.make_node("Gizmo", ["x"], ["y"], name="gizmo", domain="com.example"))
    elif kind == "slice":
        nodes.append(helper.make_node("Slice", ["x", const("s", [0], np.int64), const("e", [1], np.int64),
                                                const("a", [1], np.int64)], ["y"], name="first_channel"))
    elif kind == "conv3d":
        inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 6, 6])]
        nodes.append(helper.make_node("Conv", ["x", const("w", np.ones((3, 2, 1, 1, 1)))], ["y"], name="c3d"))
    else:
        raise ValueError(kind)
    graph = helper.make_graph(nodes, kind, inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              inits)
    opsets = [helper.make_opsetid("", 13)] + ([helper.make_opsetid("com.example", 1)] if kind == "custom_domain"
                                              else [])
    onnx.save(helper.make_model(graph, opset_imports=opsets), str(path))


# -- the cases ------------------------------------------------------------------------

class Context:
    def __init__(self, runner, tmpdir, quick):
        self.runner = runner
        self.tmpdir = Path(tmpdir)
        self.quick = quick
        self.passed = 0
        self.failed = 0
        self.failures = []

    def case(self, name, fn, *args):
        t0 = time.time()
        try:
            info = fn(*args)
        except Exception as e:  # an AssertionError, a ConvertError, or a crash: all failures
            self.failed += 1
            self.failures.append(name)
            detail = str(e) if isinstance(e, AssertionError) else traceback.format_exc()
            print(f"FAIL {name} ({time.time() - t0:.1f} s): {detail}", flush=True)
            return False
        self.passed += 1
        print(f"ok   {name} ({time.time() - t0:.1f} s){': ' + info if info else ''}", flush=True)
        return True


def case_torchvision(ctx, name, shape):
    import torch
    import torchvision
    torch.manual_seed(SEED)
    model = torchvision.models.get_model(name, weights=None).eval()
    randomize_bn(model, SEED + 1)
    checked, conv = check_torch(ctx, model, shape, name, seed=SEED)
    folded = sum(1 for n in conv.notes if n.startswith("folded"))
    return f"{len(conv.builder.layers)} layers, {folded} BatchNorm folded; {checked.line()}"


def case_random(ctx, M, i):
    net, shape, desc = random_net(M, SEED + 100 + i)
    checked, conv = check_torch(ctx, net, shape, f"random{i}", batch=1 + i % 2, threads=1 + i % 2, seed=SEED + i)
    return f"{desc}; {len(conv.builder.layers)} layers; {checked.line()}"


def case_onnx_torch(ctx, M, i, keep_bn):
    net, shape, desc = random_net(M, SEED + 500 + i, onnx_friendly=True)
    path = ctx.tmpdir / f"onnx{i}.onnx"
    export_onnx(net, shape, path, keep_bn, dynamic_batch=i % 3 == 1)
    import onnx
    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    bn = ops.count("BatchNormalization")
    desc += f"; ONNX ops {' '.join(sorted(set(ops)))}"
    checked, conv = check_onnx_file(ctx, path, f"onnx{i}", torch_module=net, seed=SEED + i)
    return f"{desc}; {bn} BatchNormalization nodes in the file; {len(conv.builder.layers)} layers; {checked.line()}"


def case_onnx_model(ctx, name, shape, keep_bn):
    import torch
    import torchvision
    torch.manual_seed(SEED)
    model = torchvision.models.get_model(name, weights=None).eval()
    randomize_bn(model, SEED + 2)
    path = ctx.tmpdir / f"{name}.onnx"
    export_onnx(model, shape, path, keep_bn)
    checked, conv = check_onnx_file(ctx, path, f"{name}-onnx", torch_module=model, seed=SEED)
    return f"{len(conv.builder.layers)} layers; {checked.line()}"


def case_handmade(ctx, kind):
    import numpy as np
    import torch
    import onnx2rectify as o2r
    from rectify_import import rel_diff, run_rectify
    path = ctx.tmpdir / f"hand-{kind}.onnx"
    shape, reference = handmade_onnx(path, kind, SEED)
    checked, conv = check_onnx_file(ctx, path, f"hand-{kind}", seed=SEED)
    # and against PyTorch (written from the ONNX specification)
    graph = o2r.load(path)
    out = ctx.tmpdir / f"hand-{kind}-t"
    conv.builder.write(out, conv.outputs)
    x = np.random.default_rng(7).standard_normal([1] + shape).astype(np.float32)
    with torch.no_grad():
        want = reference(torch.from_numpy(x)).numpy()
    with run_rectify(ctx.runner, out, x, tmp_parent=ctx.tmpdir) as run:
        d = rel_diff(run.outputs[0], want)
    ref_d = rel_diff(o2r.reference_outputs(graph, x)[0][0], want)
    shutil.rmtree(out, ignore_errors=True)
    if not d <= TOLERANCE or not ref_d <= TOLERANCE:
        fail(f"rectify differs from PyTorch by {d:.3g}, the numpy reference by {ref_d:.3g}")
    names = [l["name"] for l in conv.builder.layers]
    return f"layers {names}; rel {d:.2g} vs torch (numpy reference {ref_d:.2g}); {checked.line()}"


def expect_error(fn, needles):
    from rectify_import import ConvertError
    try:
        fn()
    except ConvertError as e:
        msg = str(e)
        missing = [n for n in needles if n not in msg]
        if missing:
            fail(f"the error {msg!r} does not mention {missing}")
        return msg
    fail("no error")


def torch_unsupported_cases():
    """(name, module factory, input shape, words the error must contain)."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    def seq(*mods):
        return lambda: nn.Sequential(*mods)

    class Gelu(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.act = nn.GELU()

        def forward(self, x):
            return self.act(self.conv(x))

    class Lstm(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.LSTM(8, 4)

        def forward(self, x):
            return self.rnn(x.flatten(1).unsqueeze(0))[0]

    class Conv3d(nn.Module):
        def __init__(self):
            super().__init__()
            self.c3 = nn.Conv3d(1, 2, 1)

        def forward(self, x):
            return self.c3(x.unsqueeze(1))

    class Fn(nn.Module):
        def __init__(self, f):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 1)
            self.f = f

        def forward(self, x):
            return self.f(self.conv(x))

    class Param(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(1, 3, 1, 1))

        def forward(self, x):
            return x * self.scale

    class TwoInputs(nn.Module):
        def forward(self, x, y):
            return x + y

    class Control(nn.Module):
        def forward(self, x):
            if x.sum() > 0:
                return x
            return -x

    class CatDim2(nn.Module):
        def forward(self, x):
            return torch.cat([x, x], 2)

    class Broadcast(nn.Module):
        def forward(self, x):
            return x + F.adaptive_avg_pool2d(x, 1)

    class Scalar(nn.Module):
        def forward(self, x):
            return torch.relu(x) + 1

    class FixedBatch(nn.Module):
        def forward(self, x):
            return x.view(1, -1)

    class Dropout(nn.Module):
        def forward(self, x):
            return F.dropout(x, 0.5)

    class BnAlone(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 1)
            self.bn = nn.BatchNorm2d(3)

        def forward(self, x):
            return self.bn(torch.relu(self.conv(x)))

    class BnShared(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 1)
            self.bn = nn.BatchNorm2d(3)

        def forward(self, x):
            y = self.conv(x)
            return self.bn(y) + y

    s = [3, 8, 8]
    return [
        ("gelu module", Gelu, s, ["'act'", "nn.GELU", "fx node 'act'"]),
        ("tanh module", seq(nn.Conv2d(3, 3, 1), nn.Tanh()), s, ["'1'", "nn.Tanh", "fx node"]),
        ("lstm", Lstm, s, ["'rnn'", "nn.LSTM", "fx node 'rnn'"]),
        ("conv3d", Conv3d, s, ["'c3'", "nn.Conv3d"]),
        ("conv transpose", seq(nn.ConvTranspose2d(3, 3, 2)), s, ["'0'", "nn.ConvTranspose2d"]),
        ("upsample", seq(nn.Upsample(scale_factor=2)), s, ["nn.Upsample"]),
        ("leaky relu", seq(nn.LeakyReLU()), s, ["nn.LeakyReLU"]),
        ("batchnorm1d", seq(nn.Flatten(), nn.BatchNorm1d(192)), s, ["nn.BatchNorm1d"]),
        ("F.gelu", lambda: Fn(F.gelu), s, ["torch.nn.functional.gelu", "fx node 'gelu'"]),
        ("torch.tanh", lambda: Fn(torch.tanh), s, ["torch.tanh", "fx node 'tanh'"]),
        ("torch.sigmoid", lambda: Fn(torch.sigmoid), s, ["torch.sigmoid", "fx node"]),
        ("tensor times 2", lambda: Fn(lambda x: x * 2), s, ["operator.mul", "fx node 'mul'"]),
        ("parameter in forward", Param, s, ["'scale'", "used directly", "fx node"]),
        ("two inputs", TwoInputs, s, ["2 inputs"]),
        ("control flow", Control, s, ["could not trace", "Control"]),
        ("cat on dim 2", CatDim2, s, ["torch.cat", "dim 2", "fx node 'cat'"]),
        ("broadcast add", Broadcast, s, ["no broadcasting", "fx node 'add'"]),
        ("add a constant", Scalar, s, ["constant operand", "fx node 'add'"]),
        ("view(1, -1)", FixedBatch, s, ["reshapes", "fx node 'view'"]),
        ("F.dropout training", Dropout, s, ["training=True", "fx node 'dropout'"]),
        ("softmax dim 2", seq(nn.Softmax(dim=2)), s, ["dim 2", "nn.Softmax"]),
        ("linear on 4-D", seq(nn.Linear(8, 4)), s, ["nn.Linear", "flatten first"]),
        ("adaptive 3x3 of 8x8", seq(nn.AdaptiveAvgPool2d(3)), s, ["nn.AdaptiveAvgPool2d", "3x3", "8x8"]),
        ("adaptive max pool", seq(nn.AdaptiveMaxPool2d(1)), s, ["nn.AdaptiveMaxPool2d"]),
        ("maxpool return_indices", seq(nn.MaxPool2d(2, return_indices=True)), s, ["return_indices"]),
        ("avgpool divisor_override", seq(nn.AvgPool2d(2, divisor_override=3)), s, ["divisor_override"]),
        ("reflect padding", seq(nn.Conv2d(3, 3, 3, padding=1, padding_mode="reflect")), s, ["padding_mode"]),
        ("batchnorm after relu", BnAlone, s, ["'bn'", "nn.BatchNorm2d", "right after a Conv2d"]),
        ("batchnorm of a shared conv", BnShared, s, ["'bn'", "nn.BatchNorm2d"]),
        ("batchnorm without running stats", seq(nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3, track_running_stats=False)),
         s, ["track_running_stats"]),
    ]


def case_torch_unsupported(ctx, factory, shape, needles):
    import torch2rectify as t2r
    msg = expect_error(lambda: t2r.convert_module(factory(), shape, "bad"), needles)
    return msg


def case_onnx_unsupported(ctx, kind, needles):
    import onnx2rectify as o2r
    path = ctx.tmpdir / f"bad-{kind}.onnx"
    bad_onnx(path, kind)
    return expect_error(lambda: o2r.convert_graph(o2r.load(path), "bad"), needles)


def case_onnx_tanh_from_torch(ctx):
    import torch.nn as nn
    import onnx2rectify as o2r
    path = ctx.tmpdir / "tanh.onnx"
    export_onnx(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Tanh()), [3, 8, 8], path, False)
    return expect_error(lambda: o2r.convert_graph(o2r.load(path), "bad"), ["/1/Tanh", "op type Tanh"])


def run_cli(args, expect_status):
    p = subprocess.run([sys.executable] + [str(a) for a in args], capture_output=True, text=True, timeout=900)
    if p.returncode != expect_status:
        fail(f"{' '.join(map(str, args[:2]))}: exit status {p.returncode}, want {expect_status}\n"
             f"stdout: {p.stdout[-2000:]}\nstderr: {p.stderr[-2000:]}")
    return p


def case_cli_torch(ctx):
    """--module FILE:CLASS with --state-dict (.pth, then .safetensors),
    preprocessing and labels; the verification runs."""
    import torch
    from rectify_import import write_safetensors
    d = ctx.tmpdir / "cli-torch"
    d.mkdir()
    (d / "net.py").write_text(
        "import torch.nn as nn, torch.nn.functional as F\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)\n"
        "        self.bn1 = nn.BatchNorm2d(6)\n"
        "        self.conv2 = nn.Conv2d(6, 16, 5)\n"
        "        self.fc1 = nn.Linear(400, 10)\n"
        "    def forward(self, x):\n"
        "        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)\n"
        "        x = F.max_pool2d(F.relu(self.conv2(x)), 2)\n"
        "        return F.softmax(self.fc1(x.view(x.size(0), -1)), dim=1)\n")
    sys.path.insert(0, str(d))
    import importlib
    net_mod = importlib.import_module("net")
    torch.manual_seed(3)
    net = net_mod.Net()
    randomize_bn(net, 4)
    torch.save(net.state_dict(), d / "weights.pth")
    write_safetensors(d / "weights.safetensors", [(k, v.numpy()) for k, v in net.state_dict().items()
                                                  if v.dtype == torch.float32])
    (d / "labels.txt").write_text("".join(f"digit {i}\n" for i in range(10)))
    outputs = []
    for sd in ("weights.pth", "weights.safetensors"):
        out = d / f"out-{sd}"
        p = run_cli([TOOLS / "torch2rectify.py", "--module", f"{d}/net.py:Net", "--state-dict", d / sd,
                     "--input-shape", 1, 28, 28, out, "--color", "gray", "--resize", 28, 28, "--scale",
                     0.00392156862745098, "--mean", 0.1307, "--std", 0.3081, "--labels", d / "labels.txt",
                     "--runner", ctx.runner], 0)
        if "verify:" not in p.stdout or "folded BatchNorm2d 'bn1' into conv 'conv1'" not in p.stdout:
            fail(f"unexpected output:\n{p.stdout}")
        model = json.loads((out / "model.json").read_text())
        pre = model["input"]["preprocess"]
        if pre != {"color": "gray", "resize": [28, 28], "scale": 0.00392156862745098, "mean": [0.1307],
                   "std": [0.3081]}:
            fail(f"preprocess written as {pre}")
        if (out / "labels.txt").read_text() != (d / "labels.txt").read_text():
            fail("labels.txt not copied")
        outputs.append((out / "weights.safetensors").read_bytes())
    if outputs[0] != outputs[1]:
        fail("the .pth and .safetensors state dicts gave different weights")
    line = [l for l in p.stdout.splitlines() if "max relative difference" in l][0]
    return line


def case_cli_torchvision(ctx):
    out = ctx.tmpdir / "cli-squeezenet"
    labels = ctx.tmpdir / "imagenet-labels.txt"
    labels.write_text("".join(f"class {i}\n" for i in range(1000)))
    p = run_cli([TOOLS / "torch2rectify.py", "--torchvision", "squeezenet1_1", "--input-shape", 3, 96, 96, out,
                 "--color", "rgb", "--resize", 110, 110, "--crop", 96, 96, "--scale", 0.00392156862745098,
                 "--mean", 0.485, 0.456, 0.406, "--std", 0.229, 0.224, 0.225, "--labels", labels,
                 "--runner", ctx.runner, "--seed", 5], 0)
    for want in ("dropped Dropout 'classifier.0'", "mapped to global_avgpool", "verify:", "1,235,496 parameters"):
        if want not in p.stdout:
            fail(f"output lacks {want!r}:\n{p.stdout}")
    shutil.rmtree(out, ignore_errors=True)
    return [l for l in p.stdout.splitlines() if "max relative difference" in l][0]


def case_cli_errors(ctx):
    import torch.nn as nn
    d = ctx.tmpdir / "cli-errors"
    d.mkdir()
    (d / "gelu.py").write_text("import torch.nn as nn\nclass Net(nn.Module):\n"
                               "    def __init__(self):\n        super().__init__()\n"
                               "        self.features = nn.Sequential(nn.Conv2d(3, 4, 3), nn.GELU())\n"
                               "    def forward(self, x):\n        return self.features(x)\n")
    p = run_cli([TOOLS / "torch2rectify.py", "--module", f"{d}/gelu.py:Net", "--input-shape", 3, 16, 16, d / "o1",
                 "--runner", ctx.runner], 1)
    if "module 'features.1' (nn.GELU) at fx node 'features_1'" not in p.stderr:
        fail(f"stderr: {p.stderr}")
    msgs = [p.stderr.strip()]
    path = d / "tanh.onnx"
    export_onnx(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Tanh()), [3, 8, 8], path, False)
    p = run_cli([TOOLS / "onnx2rectify.py", path, d / "o2", "--runner", ctx.runner], 1)
    if "op type Tanh" not in p.stderr:
        fail(f"stderr: {p.stderr}")
    msgs.append(p.stderr.strip())
    p = run_cli([TOOLS / "torch2rectify.py", "--module", f"{d}/gelu.py:Net", "--input-shape", 3, 8, 8, d / "o4",
                 "--color", "gray", "--no-verify"], 1)
    if "--color gray" not in p.stderr:
        fail(f"stderr: {p.stderr}")
    msgs.append(p.stderr.strip())
    run_cli([TOOLS / "torch2rectify.py", "--input-shape", 3, 8, 8, d / "o5"], 2)  # no model: usage
    # a verification that fails is an error (a tolerance no run can meet)
    lenet = d / "small.py"
    lenet.write_text("import torch.nn as nn\nclass Net(nn.Module):\n    def __init__(self):\n"
                     "        super().__init__()\n        self.fc = nn.Linear(48, 10)\n"
                     "    def forward(self, x):\n        return self.fc(x.flatten(1))\n")
    p = run_cli([TOOLS / "torch2rectify.py", "--module", f"{lenet}:Net", "--input-shape", 3, 4, 4, d / "o6",
                 "--runner", ctx.runner, "--tolerance", "-1"], 1)
    if "verification failed" not in p.stderr:
        fail(f"stderr: {p.stderr}")
    msgs.append(p.stderr.strip())
    return " | ".join(msgs)


def case_cli_onnx(ctx, M):
    net, shape, desc = random_net(M, SEED + 900, onnx_friendly=True)
    path = ctx.tmpdir / "cli.onnx"
    export_onnx(net, shape, path, True)
    out = ctx.tmpdir / "cli-onnx"
    pre = ["--color", "rgb", "--scale", 0.5, "--mean", 1, "--std", 2] if shape[0] == 3 else []
    p = run_cli([TOOLS / "onnx2rectify.py", path, out, "--runner", ctx.runner, "--name", "cli-model"] + pre, 0)
    model = json.loads((out / "model.json").read_text())
    if model["name"] != "cli-model" or model["input"]["name"] != "image":
        fail(f"name {model['name']}, input {model['input']['name']}")
    if pre and model["input"]["preprocess"] != {"color": "rgb", "scale": 0.5, "mean": [1.0], "std": [2.0]}:
        fail(f"preprocess {model['input']['preprocess']}")
    return [l for l in p.stdout.splitlines() if "max relative difference" in l][0]


def case_safetensors_layout(ctx):
    """The writer's layout: header length, padding, offsets sorted,
    contiguous, covering the data."""
    import struct
    import numpy as np
    from rectify_import import read_safetensors, write_safetensors
    path = ctx.tmpdir / "layout.safetensors"
    tensors = [("b.weight", np.arange(6, dtype=np.float32).reshape(2, 3)), ("a.bias", np.ones(1, np.float32)),
               ("c", np.zeros((0,), np.float32))]
    write_safetensors(path, tensors)
    blob = path.read_bytes()
    (n,) = struct.unpack_from("<Q", blob)
    if n % 8 or blob[8 + n - 1:8 + n] not in (b" ", b"}"):
        fail(f"header length {n}")
    header = json.loads(blob[8:8 + n])
    spans = sorted(v["data_offsets"] for v in header.values())
    end = 0
    for b, e in spans:
        if b != end:
            fail(f"gap or overlap at {b}")
        end = e
    if 8 + n + end != len(blob):
        fail("data area not covered exactly")
    back = read_safetensors(path)
    for name, t in tensors:
        if not np.array_equal(back[name], t):
            fail(f"{name} read back differently")
    return f"header {n} bytes, {len(header)} tensors, {end} data bytes"


def main():
    ap = argparse.ArgumentParser(description="rectify against PyTorch")
    ap.add_argument("--runner", type=Path, default=ROOT / "build" / "tests" / "run_tensor")
    ap.add_argument("--quick", action="store_true", help="fewer and smaller models (sanitizer builds)")
    ap.add_argument("--only", help="run only the cases whose name contains this")
    ap.add_argument("--random", type=int, default=30, help="how many random nets")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args()
    t_start = time.time()
    try:
        import numpy  # noqa: F401
        import onnx  # noqa: F401
        import torch
        import torchvision  # noqa: F401
    except ImportError as e:  # the packages are part of what the proof needs
        print(f"FAIL setup: {e} (install python3-torch python3-torchvision python3-onnx python3-numpy)")
        print("0 passed, 1 failed")
        return 1
    import warnings
    warnings.filterwarnings("ignore")
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    if not (args.runner.is_file() and os.access(args.runner, os.X_OK)):
        print(f"FAIL setup: {args.runner}: no run_tensor program")
        print("0 passed, 1 failed")
        return 1
    tmp = tempfile.mkdtemp(prefix="rectify-test-torch-")
    # a timeout (SIGTERM from meson) still removes the temporary folder
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))
    try:
        return run_cases(args, tmp, t_start)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"kept {tmp}")


def run_cases(args, tmp, t_start):
    ctx = Context(args.runner.resolve(), tmp, args.quick)
    M = define_modules()
    cases = []
    full = [("alexnet", [3, 224, 224]), ("vgg11", [3, 224, 224]), ("vgg16", [3, 224, 224]),
            ("squeezenet1_1", [3, 224, 224]), ("resnet18", [3, 224, 224])]
    quick = [("vgg11", [3, 224, 224]), ("squeezenet1_1", [3, 224, 224]), ("resnet18", [3, 224, 224])]
    for name, shape in (quick if args.quick else full):
        cases.append((f"torchvision {name} {'x'.join(map(str, shape))}", case_torchvision, ctx, name, shape))
    n_random = min(args.random, 10) if args.quick else args.random
    for i in range(n_random):
        cases.append((f"random net {i}", case_random, ctx, M, i))
    for i in range(6):
        cases.append((f"onnx random net {i}{' (BatchNormalization kept)' if i % 2 == 0 else ''}"
                      f"{' (dynamic batch)' if i % 3 == 1 else ''}", case_onnx_torch, ctx, M, i, i % 2 == 0))
    cases.append(("onnx resnet18 3x64x64 (BatchNormalization kept)", case_onnx_model, ctx, "resnet18", [3, 64, 64],
                  True))
    cases.append(("onnx squeezenet1_1 3x96x96", case_onnx_model, ctx, "squeezenet1_1", [3, 96, 96], False))
    for kind in ("same_upper", "same_lower", "valid", "gemm", "branches"):
        cases.append((f"onnx hand-made {kind}", case_handmade, ctx, kind))
    cases.append(("safetensors layout", case_safetensors_layout, ctx))
    if not args.quick:  # the command lines are Python only: the sanitizer build has nothing to add
        cases.append(("cli torch2rectify --module --state-dict", case_cli_torch, ctx))
        cases.append(("cli torch2rectify --torchvision squeezenet1_1", case_cli_torchvision, ctx))
        cases.append(("cli onnx2rectify", case_cli_onnx, ctx, M))
        cases.append(("cli errors and exit status", case_cli_errors, ctx))
    for name, factory, shape, needles in torch_unsupported_cases():
        cases.append((f"unsupported torch: {name}", case_torch_unsupported, ctx, factory, shape, needles))
    onnx_bad = [("tanh", ["'squash'", "op type Tanh"]),
                ("pool_pads", ["'bigpad'", "MaxPool", "half the kernel"]),
                ("broadcast_add", ["'bcast'", "no broadcasting"]),
                ("transA", ["'gemmA'", "transA"]),
                ("softmax_axis", ["'soft'", "axis 2"]),
                ("bn_alone", ["'lonely_bn'", "BatchNormalization"]),
                ("ceil_mismatch", ["'ceilpool'", "ceil_mode"]),
                ("two_inputs", ["2 inputs"]),
                ("custom_domain", ["'gizmo'", "com.example.Gizmo"]),
                ("slice", ["'first_channel'", "op type Slice"]),
                ("conv3d", ["rank 5"])]
    for kind, needles in onnx_bad:
        cases.append((f"unsupported onnx: {kind}", case_onnx_unsupported, ctx, kind, needles))
    cases.append(("unsupported onnx: Tanh exported by torch", case_onnx_tanh_from_torch, ctx))
    for name, fn, *fargs in cases:
        if args.only and args.only not in name:
            continue
        ctx.case(name, fn, *fargs)
    print(f"total time {time.time() - t_start:.1f} s")
    if ctx.failures:
        print("failed: " + "; ".join(ctx.failures))
    print(f"{ctx.passed} passed, {ctx.failed} failed")
    return 1 if ctx.failed or not ctx.passed else 0


if __name__ == "__main__":
    sys.exit(main())
