#!/usr/bin/python3
"""torch2rectify: a PyTorch model into a rectify model folder.

  torch2rectify.py (--torchvision NAME | --module FILE:CLASS) [--state-dict FILE]
                   --input-shape C H W OUTDIR
                   [--color gray|rgb|bgr] [--scale S] [--mean M ...] [--std S ...]
                   [--resize H W] [--crop H W] [--labels FILE]
                   [--name NAME] [--seed N] [--no-verify] [--runner PATH] [--tolerance T]

The model (a torchvision builder with random weights unless --state-dict is
given, or CLASS() from FILE) is put in eval mode and traced with torch.fx,
then every node of the graph becomes a rectify layer:

  Conv2d                       conv (zero padding; padding='same'/'valid' too)
  BatchNorm2d after a conv     folded into that conv's weight and bias
  Linear                       dense (its input must be [N, features])
  ReLU, F.relu, torch.relu, x.relu(), inplace or not      relu
  MaxPool2d, F.max_pool2d      maxpool      AvgPool2d, F.avg_pool2d   avgpool
  AdaptiveAvgPool2d            global_avgpool for a 1x1 output; nothing when
                               the input already has the output size; avgpool
                               when the input size is a multiple of it
  Flatten, torch.flatten, x.view(x.size(0), -1), reshape, squeeze to
  [N, features]                flatten (nothing when already flat)
  Dropout (any), Identity      dropped (identity at inference)
  Softmax over the channels / features                    softmax
  torch.cat on the channel axis                           concat
  a + b, torch.add, x.add(y), +=  (same shapes)           add

Anything else is an error naming the module (or function) and the fx node.
Layer names: the module's qualified name ("features.0", "layer1.0.conv1";
a module called twice gets ":1", ":2" ... on later calls), the fx node name
for functions ("add", "flatten"). Weights keep PyTorch's names
("features.0.weight").

Writes OUTDIR/model.json, OUTDIR/weights.safetensors and, with --labels,
OUTDIR/labels.txt; prints the layers, the parameters, and what was folded or
dropped. Then verifies: runs the PyTorch model (eval mode) and the C engine
(build/tests/run_tensor, or --runner) on the same random input (seeded by
--seed) and prints the largest relative difference max|a-b|/max|b|; above
--tolerance (1e-4) that is an error. Exit status: 0 done, 1 error, 2 usage.
"""

import argparse
import importlib.util
import operator
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rectify_import import (ConvertError, ModelBuilder, add_common_args, add_preprocess_args,  # noqa: E402
                            find_runner, preprocess_from_args, read_safetensors, rel_diff, run_rectify)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.fx as fx  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

# -- what is supported --------------------------------------------------------

RELU_FUNCS = {F.relu: False, torch.relu: False, F.relu_: True, torch.relu_: True}
ADD_FUNCS = {operator.add: False, torch.add: False, operator.iadd: True}
CAT_FUNCS = {torch.cat, torch.concat}
RESHAPE_FUNCS = {torch.flatten, torch.reshape, torch.squeeze}
SOFTMAX_FUNCS = {F.softmax, torch.softmax}
DROPOUT_FUNCS = {F.dropout, F.dropout2d, F.alpha_dropout, torch.dropout}
POOL_FUNCS = {F.max_pool2d: "max", torch.max_pool2d: "max", F.avg_pool2d: "avg",
              F.adaptive_avg_pool2d: "adaptive"}
TENSOR_FUNCS = set(RELU_FUNCS) | set(ADD_FUNCS) | CAT_FUNCS | RESHAPE_FUNCS | SOFTMAX_FUNCS | DROPOUT_FUNCS | \
    set(POOL_FUNCS)
# Functions allowed on shapes and numbers only (x.size(0) * 2, x.shape[1]).
SHAPE_FUNCS = {operator.getitem, getattr, operator.mul, operator.floordiv, operator.truediv, operator.sub,
               operator.add, operator.neg, int, len}

RELU_METHODS = {"relu": False, "relu_": True}
ADD_METHODS = {"add": False, "add_": True}
RESHAPE_METHODS = {"flatten", "view", "reshape", "squeeze"}
ALIAS_METHODS = {"contiguous"}
TENSOR_METHODS = set(RELU_METHODS) | set(ADD_METHODS) | RESHAPE_METHODS | ALIAS_METHODS | {"softmax"}
SHAPE_METHODS = {"size", "dim", "numel"}

MODULES = (nn.Conv2d, nn.BatchNorm2d, nn.Linear, nn.ReLU, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d,
           nn.Flatten, nn.modules.dropout._DropoutNd, nn.Identity, nn.Softmax, nn.Softmax2d)


def describe_target(node, gm=None):
    if node.op == "call_module":
        mod = gm.get_submodule(node.target) if gm is not None else None
        cls = type(mod)
        kind = f"nn.{cls.__name__}" if cls.__module__.startswith("torch.nn") else f"{cls.__module__}.{cls.__name__}"
        return f"module {node.target!r} ({kind})"
    if node.op == "call_function":
        t = node.target
        mod = getattr(t, "__module__", None) or ""
        name = getattr(t, "__name__", repr(t))
        if mod in ("_operator", "operator"):
            mod = "operator"
        elif mod.startswith("torch.nn") or "_nn" in mod:
            mod = "torch.nn.functional"
        elif mod.startswith("torch") or not mod:
            mod = "torch"
        return f"function {mod}.{name}"
    if node.op == "call_method":
        return f"method Tensor.{node.target}()"
    return f"{node.op} {node.target!r}"


def where(node, gm):
    return f"{describe_target(node, gm)} at fx node {node.name!r}"


def pair(v, what):
    if isinstance(v, int):
        return (v, v)
    v = tuple(v)
    if len(v) == 1:
        return (v[0], v[0])
    if len(v) != 2:
        raise ConvertError(f"{what}: expected an int or a pair, got {v!r}")
    return (int(v[0]), int(v[1]))


def compact(h, w):
    return h if h == w else [h, w]


def bind(node, names, defaults):
    """node.args and node.kwargs by parameter name (names[0] the input)."""
    vals = dict(defaults)
    for n, a in zip(names, node.args):
        vals[n] = a
    for k, v in node.kwargs.items():
        vals[k] = v
    return vals


# -- tracing and recording ----------------------------------------------------

class Recorder(fx.Interpreter):
    """Runs a traced module and records each node's output shape (None for
    values that are not tensors) and, with keep=True, a copy of each tensor
    taken right after the node ran (so an in-place ReLU later does not change
    the recorded pre-activation)."""

    def __init__(self, gm, keep=False):
        super().__init__(gm)
        self.gm = gm
        self.shapes = {}
        self.values = {} if keep else None

    def run_node(self, n):
        try:
            r = super().run_node(n)
        except ConvertError:
            raise
        except Exception as e:  # a shape error in the user's model, most likely
            raise ConvertError(f"running the traced model failed at {where(n, self.gm)}: {e}") from None
        if isinstance(r, torch.Tensor):
            self.shapes[n.name] = tuple(r.shape)
            if self.values is not None:
                self.values[n.name] = r.detach().clone()
        else:
            self.shapes[n.name] = None
        return r


def trace(module):
    try:
        return fx.symbolic_trace(module)
    except Exception as e:
        raise ConvertError(f"torch.fx could not trace {type(module).__name__}: {e}") from None


def record(gm, x, keep=False):
    rec = Recorder(gm, keep)
    with torch.no_grad():
        rec.run(x)
    return rec


# -- conversion ---------------------------------------------------------------

class Conversion:
    """The result: builder (the layers), outputs (layer names), origin
    (layer name -> the fx node whose value the layer computes), the traced
    GraphModule, and notes (what was folded or dropped)."""

    def __init__(self, builder, outputs, origin, gm):
        self.builder = builder
        self.outputs = outputs
        self.origin = origin
        self.gm = gm
        self.notes = builder.notes


class Converter:
    def __init__(self, module, input_shape, name, batch=2, seed=0):
        self.module = module.eval()
        self.input_shape = [int(d) for d in input_shape]
        self.name = name
        self.gm = trace(self.module)
        self.gm.eval()
        self.batch = batch
        self.seed = seed

    def check_supported(self):
        """Before running anything: every module and function must be one we
        map (or, for functions, one that works on shapes only)."""
        placeholders = [n for n in self.gm.graph.nodes if n.op == "placeholder"]
        if len(placeholders) != 1:
            raise ConvertError(f"the model's forward takes {len(placeholders)} inputs "
                               f"({', '.join(n.name for n in placeholders)}); rectify models take one image tensor")
        # modules first: "nn.LSTM" says more than the unsqueeze before it
        for n in self.gm.graph.nodes:
            if n.op == "call_module":
                mod = self.gm.get_submodule(n.target)
                if not isinstance(mod, MODULES) or type(mod) in (nn.LazyConv2d, nn.LazyLinear, nn.LazyBatchNorm2d):
                    raise ConvertError(f"unsupported: {where(n, self.gm)}")
                if isinstance(mod, nn.MaxPool2d) and mod.return_indices:
                    raise ConvertError(f"unsupported: {where(n, self.gm)} with return_indices=True")
        for n in self.gm.graph.nodes:
            if n.op == "call_function":
                if n.target not in TENSOR_FUNCS and n.target not in SHAPE_FUNCS:
                    raise ConvertError(f"unsupported: {where(n, self.gm)}")
            elif n.op == "call_method":
                if n.target not in TENSOR_METHODS and n.target not in SHAPE_METHODS:
                    raise ConvertError(f"unsupported: {where(n, self.gm)}")
            elif n.op == "get_attr":
                raise ConvertError(f"unsupported: parameter or buffer {n.target!r} used directly in forward "
                                   f"(fx node {n.name!r}); only the supported modules may hold weights")

    def convert(self):
        self.check_supported()
        c, h, w = self.input_shape
        g = torch.Generator().manual_seed(self.seed)
        x = torch.randn((self.batch, c, h, w), generator=g)
        rec = record(self.gm, x)
        self.shapes = rec.shapes
        b = ModelBuilder(self.name, self.input_shape, "input")
        self.b = b
        self.value = {}     # fx node -> rectify tensor (layer name or the input's name)
        self.foldable = {}  # fx node -> conv layer whose output it is, while it may absorb a BatchNorm
        self.origin = {}    # layer -> fx node name
        self.calls = {}     # module qualname -> times called
        outputs = None
        for n in self.gm.graph.nodes:
            if n.op == "placeholder":
                self.value[n] = b.input_name
            elif n.op == "output":
                outputs = self.outputs(n)
            elif self.shapes.get(n.name) is None:
                if n.op == "call_module" or n.target in TENSOR_FUNCS and n.target not in SHAPE_FUNCS or \
                        n.op == "call_method" and n.target in TENSOR_METHODS:
                    raise ConvertError(f"unsupported: {where(n, self.gm)} does not return a tensor")
                continue  # arithmetic on shapes: used by reshapes, which we check by their result
            elif n.op == "call_module":
                self.module_node(n, self.gm.get_submodule(n.target))
            elif n.op == "call_function":
                self.function_node(n)
            elif n.op == "call_method":
                self.method_node(n)
        return Conversion(b, outputs, self.origin, self.gm)

    # -- helpers --------------------------------------------------------------
    def shape(self, node):
        s = self.shapes.get(node.name) if isinstance(node, fx.Node) else None
        if s is None:
            raise ConvertError(f"fx node {getattr(node, 'name', node)!r} is not a tensor")
        return s

    def tensor_arg(self, n, a):
        if not isinstance(a, fx.Node) or self.shapes.get(a.name) is None:
            raise ConvertError(f"unsupported: {where(n, self.gm)} with a constant operand {a!r} "
                               f"(only tensors computed by the graph can be combined)")
        s = self.shapes[a.name]
        if len(s) not in (2, 4):
            raise ConvertError(f"unsupported: {where(n, self.gm)} reads a tensor of rank {len(s)} {list(s)}; "
                               f"rectify tensors are [N, C, H, W] or [N, features]")
        return self.value[a]

    def layer_name(self, n):
        if n.op == "call_module":
            k = self.calls.get(n.target, 0)
            self.calls[n.target] = k + 1
            return n.target if k == 0 else f"{n.target}:{k}"
        return n.name

    def emit(self, n, op, inputs, tensors=(), mutates=None, **fields):
        out = self.shape(n)
        if len(out) not in (2, 4):
            raise ConvertError(f"unsupported: {where(n, self.gm)} gives a tensor of rank {len(out)} {list(out)}")
        name = self.b.add(self.layer_name(n), op, inputs, out[1:], tensors, origin=n.name, **fields)
        self.value[n] = name
        self.origin[name] = n.name
        if mutates is not None:  # an in-place op: later readers of its argument see the result
            self.value[mutates] = name
        return name

    def alias(self, n, src, note=None):
        self.value[n] = self.value[src]
        if src in self.foldable and len(n.users) == 1:
            self.foldable[n] = self.foldable[src]
        if note:
            self.b.notes.append(note)

    def need_rank4(self, n, a):
        s = self.shape(a)
        if len(s) != 4:
            raise ConvertError(f"unsupported: {where(n, self.gm)} needs an [N, C, H, W] input, got {list(s)}")
        return s

    # -- modules --------------------------------------------------------------
    def module_node(self, n, mod):
        a = n.args[0] if n.args else None
        if len(n.args) != 1 or n.kwargs or not isinstance(a, fx.Node):
            raise ConvertError(f"unsupported: {where(n, self.gm)} called with {len(n.args)} arguments")
        src = self.tensor_arg(n, a)
        if isinstance(mod, nn.Conv2d):
            self.conv(n, mod, a, src)
        elif isinstance(mod, nn.BatchNorm2d):
            self.batchnorm(n, mod, a)
        elif isinstance(mod, nn.Linear):
            s = self.shape(a)
            if len(s) != 2:
                raise ConvertError(f"unsupported: {where(n, self.gm)} on a tensor of shape {list(s)}; "
                                   f"rectify's dense takes [N, features]: flatten first")
            tensors = [("weight", mod.weight.detach().numpy())]
            if mod.bias is not None:
                tensors.append(("bias", mod.bias.detach().numpy()))
            self.emit(n, "dense", [src], tensors, units=mod.out_features, bias=None if mod.bias is not None else False)
        elif isinstance(mod, nn.ReLU):
            self.emit(n, "relu", [src], mutates=a if mod.inplace else None)
        elif isinstance(mod, nn.MaxPool2d):
            if mod.return_indices:
                raise ConvertError(f"unsupported: {where(n, self.gm)} with return_indices=True")
            self.need_rank4(n, a)
            self.maxpool(n, src, mod.kernel_size, mod.stride, mod.padding, mod.dilation, mod.ceil_mode)
        elif isinstance(mod, nn.AvgPool2d):
            self.need_rank4(n, a)
            self.avgpool(n, src, mod.kernel_size, mod.stride, mod.padding, mod.ceil_mode, mod.count_include_pad,
                         mod.divisor_override)
        elif isinstance(mod, nn.AdaptiveAvgPool2d):
            self.adaptive(n, a, src, mod.output_size)
        elif isinstance(mod, nn.Flatten):
            self.reshape(n, a, src)
        elif isinstance(mod, (nn.modules.dropout._DropoutNd, nn.Identity)):
            self.alias(n, a, f"dropped {type(mod).__name__} {n.target!r} (identity at inference)")
        elif isinstance(mod, nn.Softmax2d):
            self.softmax(n, a, src, -3)
        elif isinstance(mod, nn.Softmax):
            self.softmax(n, a, src, mod.dim)
        else:  # check_supported lets nothing else through
            raise ConvertError(f"unsupported: {where(n, self.gm)}")

    def conv(self, n, mod, a, src):
        self.need_rank4(n, a)
        if mod.padding_mode != "zeros":
            raise ConvertError(f"unsupported: {where(n, self.gm)} with padding_mode={mod.padding_mode!r} "
                               f"(only zero padding)")
        kh, kw = mod.kernel_size
        dh, dw = mod.dilation
        if isinstance(mod.padding, str):
            if mod.padding == "valid":
                pad = [0, 0, 0, 0]
            else:  # 'same': PyTorch puts the odd pixel at the bottom/right
                th, tw = dh * (kh - 1), dw * (kw - 1)
                pad = [th // 2, tw // 2, th - th // 2, tw - tw // 2]
        else:
            ph, pw = mod.padding
            pad = [ph, pw, ph, pw]
        if pad[0] == pad[2] and pad[1] == pad[3]:
            padding = compact(pad[0], pad[1])
        else:
            padding = pad
        tensors = [("weight", mod.weight.detach().numpy())]
        if mod.bias is not None:
            tensors.append(("bias", mod.bias.detach().numpy()))
        sh, sw = mod.stride
        name = self.emit(n, "conv", [src], tensors,
                         out_channels=mod.out_channels, kernel=compact(kh, kw),
                         stride=None if (sh, sw) == (1, 1) else compact(sh, sw),
                         padding=None if padding == 0 else padding,
                         dilation=None if (dh, dw) == (1, 1) else compact(dh, dw),
                         groups=None if mod.groups == 1 else mod.groups,
                         bias=None if mod.bias is not None else False)
        if len(n.users) == 1:
            self.foldable[n] = name

    def batchnorm(self, n, mod, a):
        conv = self.foldable.get(a)
        if conv is None:
            raise ConvertError(f"unsupported: {where(n, self.gm)}: a BatchNorm2d is only supported right after a "
                               f"Conv2d whose output nothing else reads (it is folded into that conv)")
        if mod.running_mean is None or mod.running_var is None:
            raise ConvertError(f"unsupported: {where(n, self.gm)} without running statistics "
                               f"(track_running_stats=False): it normalises by batch statistics")
        layer = self.b.layer(conv)
        mean = mod.running_mean.detach().double().numpy()
        var = mod.running_var.detach().double().numpy()
        gamma = mod.weight.detach().double().numpy() if mod.weight is not None else np.ones_like(mean)
        beta = mod.bias.detach().double().numpy() if mod.bias is not None else np.zeros_like(mean)
        scale = gamma / np.sqrt(var + mod.eps)
        tensors = dict(layer["_tensors"])
        w = tensors["weight"].astype(np.float64)
        bias = tensors["bias"].astype(np.float64) if "bias" in tensors else np.zeros(w.shape[0])
        w = w * scale[:, None, None, None]
        bias = (bias - mean) * scale + beta
        layer["_tensors"] = [("weight", w.astype(np.float32)), ("bias", bias.astype(np.float32))]
        layer.pop("bias", None)  # it has one now
        layer["_origin"] = n.name
        self.origin[conv] = n.name
        self.value[n] = conv
        del self.foldable[a]
        if len(n.users) == 1:
            self.foldable[n] = conv
        self.b.notes.append(f"folded BatchNorm2d {n.target!r} into conv {conv!r}")

    def maxpool(self, n, src, kernel, stride, padding, dilation, ceil_mode):
        kh, kw = pair(kernel, n.name)
        sh, sw = pair(stride, n.name) if stride not in (None, [], ()) else (kh, kw)
        ph, pw = pair(padding, n.name)
        dh, dw = pair(dilation, n.name)
        self.emit(n, "maxpool", [src], kernel=compact(kh, kw),
                  stride=None if (sh, sw) == (kh, kw) else compact(sh, sw),
                  padding=None if (ph, pw) == (0, 0) else compact(ph, pw),
                  dilation=None if (dh, dw) == (1, 1) else compact(dh, dw),
                  ceil_mode=True if ceil_mode else None)

    def avgpool(self, n, src, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override):
        if divisor_override is not None:
            raise ConvertError(f"unsupported: {where(n, self.gm)} with divisor_override={divisor_override}")
        kh, kw = pair(kernel, n.name)
        sh, sw = pair(stride, n.name) if stride not in (None, [], ()) else (kh, kw)
        ph, pw = pair(padding, n.name)
        self.emit(n, "avgpool", [src], kernel=compact(kh, kw),
                  stride=None if (sh, sw) == (kh, kw) else compact(sh, sw),
                  padding=None if (ph, pw) == (0, 0) else compact(ph, pw),
                  ceil_mode=True if ceil_mode else None,
                  count_include_pad=None if count_include_pad else False)

    def adaptive(self, n, a, src, output_size):
        _, _, h, w = self.need_rank4(n, a)
        if isinstance(output_size, int):
            oh = ow = output_size
        else:
            oh, ow = tuple(output_size)
        oh = h if oh is None else oh
        ow = w if ow is None else ow
        what = f"AdaptiveAvgPool2d {n.target!r}" if n.op == "call_module" else f"adaptive_avg_pool2d {n.name!r}"
        if (oh, ow) == (1, 1):
            self.emit(n, "global_avgpool", [src])
            self.b.notes.append(f"{what}: output 1x1, mapped to global_avgpool")
        elif (oh, ow) == (h, w):
            self.alias(n, a, f"{what}: input already {h}x{w}, the output size: identity, dropped")
        elif h % oh == 0 and w % ow == 0:
            kh, kw = h // oh, w // ow
            self.emit(n, "avgpool", [src], kernel=compact(kh, kw))
            self.b.notes.append(f"{what}: {h}x{w} to {oh}x{ow} is an avgpool of kernel and stride {kh}x{kw}")
        else:
            raise ConvertError(f"unsupported: {where(n, self.gm)}: output {oh}x{ow} from an input of {h}x{w}; "
                               f"only a 1x1 output, the input's own size, or a size that divides the input's "
                               f"can be mapped (choose --input-shape so that it does)")

    def reshape(self, n, a, src):
        s_in, s_out = self.shape(a), self.shape(n)
        flat = int(np.prod(s_in[1:]))
        if tuple(s_out) == tuple(s_in):
            self.alias(n, a)
            return
        if len(s_out) != 2 or s_out[0] != s_in[0] or s_out[1] != flat:
            raise ConvertError(f"unsupported: {where(n, self.gm)} reshapes {list(s_in)} to {list(s_out)} "
                               f"(with a batch of {self.batch}); only flattening to [batch, features] is supported")
        if len(s_in) == 2:
            self.alias(n, a)
            return
        if len(s_in) != 4:
            raise ConvertError(f"unsupported: {where(n, self.gm)} on a tensor of rank {len(s_in)} {list(s_in)}")
        self.emit(n, "flatten", [src])

    def softmax(self, n, a, src, dim):
        s = self.shape(a)
        if dim is None:  # PyTorch's legacy choice
            dim = 0 if len(s) in (0, 1, 3) else 1
        if dim < 0:
            dim += len(s)
        if dim != 1:
            raise ConvertError(f"unsupported: {where(n, self.gm)} over dim {dim} of {list(s)}; rectify's softmax "
                               f"runs over the channels (dim 1)")
        self.emit(n, "softmax", [src])

    # -- functions and methods -------------------------------------------------
    def function_node(self, n):
        t = n.target
        if t in RELU_FUNCS:
            v = bind(n, ["input", "inplace"], {"inplace": RELU_FUNCS[t]})
            src = self.tensor_arg(n, v["input"])
            self.emit(n, "relu", [src], mutates=v["input"] if v["inplace"] else None)
        elif t in ADD_FUNCS:
            v = bind(n, ["input", "other", "alpha"], {"alpha": 1})
            self.add(n, v["input"], v["other"], v["alpha"], ADD_FUNCS[t])
        elif t in CAT_FUNCS:
            v = bind(n, ["tensors", "dim"], {"dim": 0})
            self.cat(n, list(v["tensors"]), v["dim"])
        elif t in RESHAPE_FUNCS:
            src = self.tensor_arg(n, n.args[0])
            self.reshape(n, n.args[0], src)
        elif t in SOFTMAX_FUNCS:
            v = bind(n, ["input", "dim"], {"dim": None})
            self.softmax(n, v["input"], self.tensor_arg(n, v["input"]), v["dim"])
        elif t in DROPOUT_FUNCS:
            names = ["input", "p", "train"] if t is torch.dropout else ["input", "p", "training", "inplace"]
            v = bind(n, names, {"p": 0.5, "training": True, "train": True})
            training = v.get("training", v.get("train"))
            if training is not False:
                raise ConvertError(f"unsupported: {where(n, self.gm)} with training={training!r}: it drops "
                                   f"values even in eval mode (pass training=self.training)")
            self.tensor_arg(n, v["input"])
            self.alias(n, v["input"], f"dropped dropout {n.name!r} (identity at inference)")
        elif t in POOL_FUNCS:
            kind = POOL_FUNCS[t]
            if kind == "max":
                v = bind(n, ["input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"],
                         {"stride": None, "padding": 0, "dilation": 1, "ceil_mode": False, "return_indices": False})
                if v["return_indices"]:
                    raise ConvertError(f"unsupported: {where(n, self.gm)} with return_indices=True")
                src = self.tensor_arg(n, v["input"])
                self.need_rank4(n, v["input"])
                self.maxpool(n, src, v["kernel_size"], v["stride"], v["padding"], v["dilation"], v["ceil_mode"])
            elif kind == "avg":
                v = bind(n, ["input", "kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
                             "divisor_override"],
                         {"stride": None, "padding": 0, "ceil_mode": False, "count_include_pad": True,
                          "divisor_override": None})
                src = self.tensor_arg(n, v["input"])
                self.need_rank4(n, v["input"])
                self.avgpool(n, src, v["kernel_size"], v["stride"], v["padding"], v["ceil_mode"],
                             v["count_include_pad"], v["divisor_override"])
            else:
                v = bind(n, ["input", "output_size"], {})
                self.adaptive(n, v["input"], self.tensor_arg(n, v["input"]), v["output_size"])
        else:  # shape arithmetic that produced a tensor, e.g. x * 2
            raise ConvertError(f"unsupported: {where(n, self.gm)} on tensors")

    def method_node(self, n):
        t = n.target
        if t in RELU_METHODS:
            src = self.tensor_arg(n, n.args[0])
            self.emit(n, "relu", [src], mutates=n.args[0] if RELU_METHODS[t] else None)
        elif t in ADD_METHODS:
            v = bind(n, ["self", "other", "alpha"], {"alpha": 1})
            self.add(n, v["self"], v["other"], v["alpha"], ADD_METHODS[t])
        elif t in RESHAPE_METHODS:
            self.reshape(n, n.args[0], self.tensor_arg(n, n.args[0]))
        elif t in ALIAS_METHODS:
            self.tensor_arg(n, n.args[0])
            self.alias(n, n.args[0])
        elif t == "softmax":
            v = bind(n, ["self", "dim"], {"dim": None})
            self.softmax(n, v["self"], self.tensor_arg(n, v["self"]), v["dim"])
        else:
            raise ConvertError(f"unsupported: {where(n, self.gm)} on tensors")

    def add(self, n, x, y, alpha, inplace):
        if alpha != 1:
            raise ConvertError(f"unsupported: {where(n, self.gm)} with alpha={alpha}")
        a, b = self.tensor_arg(n, x), self.tensor_arg(n, y)
        sx, sy = self.shape(x), self.shape(y)
        if sx != sy:
            raise ConvertError(f"unsupported: {where(n, self.gm)} adds tensors of shapes {list(sx)} and {list(sy)}; "
                               f"rectify's add needs equal shapes (no broadcasting)")
        self.emit(n, "add", [a, b], mutates=x if inplace else None)

    def cat(self, n, tensors, dim):
        if not tensors:
            raise ConvertError(f"unsupported: {where(n, self.gm)} of nothing")
        srcs = [self.tensor_arg(n, t) for t in tensors]
        rank = len(self.shape(tensors[0]))
        if dim < 0:
            dim += rank
        if dim != 1:
            raise ConvertError(f"unsupported: {where(n, self.gm)} along dim {dim} of rank-{rank} tensors; "
                               f"rectify concatenates channels (dim 1)")
        if len(srcs) == 1:
            self.alias(n, tensors[0])
            return
        # more than 8: a chain of concats, 8 at a time
        channels = [self.shape(t)[1] for t in tensors]
        rest = list(self.shape(tensors[0])[2:])
        while len(srcs) > 8:
            name = self.b.add(f"{n.name}.part", "concat", srcs[:8], [sum(channels[:8])] + rest, origin=None)
            srcs = [name] + srcs[8:]
            channels = [sum(channels[:8])] + channels[8:]
        self.emit(n, "concat", srcs)

    def outputs(self, n):
        out = n.args[0]
        items = list(out) if isinstance(out, (tuple, list)) else [out]
        names = []
        for it in items:
            if not isinstance(it, fx.Node) or self.shapes.get(it.name) is None:
                raise ConvertError(f"unsupported: the model returns {it!r}, not a tensor "
                                   f"(return a tensor or a tuple of tensors)")
            names.append(self.value[it])
        return names


# -- loading a model ----------------------------------------------------------

def load_module(args):
    torch.manual_seed(args.seed)
    if args.torchvision:
        import torchvision
        names = torchvision.models.list_models() if hasattr(torchvision.models, "list_models") else None
        if names is not None and args.torchvision not in names:
            raise ConvertError(f"--torchvision {args.torchvision!r}: no such torchvision model "
                               f"(known: {', '.join(sorted(names))})")
        if hasattr(torchvision.models, "get_model"):
            model = torchvision.models.get_model(args.torchvision, weights=None)
        else:
            model = getattr(torchvision.models, args.torchvision)(weights=None)
        default_name = args.torchvision
    else:
        spec = args.module
        if ":" not in spec:
            raise ConvertError(f"--module {spec!r}: expected FILE:CLASS")
        path, cls = spec.rsplit(":", 1)
        if not Path(path).is_file():
            raise ConvertError(f"--module: {path}: no such file")
        sys.path.insert(0, str(Path(path).resolve().parent))
        mspec = importlib.util.spec_from_file_location(Path(path).stem, path)
        mod = importlib.util.module_from_spec(mspec)
        mspec.loader.exec_module(mod)
        if not hasattr(mod, cls):
            raise ConvertError(f"--module: {path} has no {cls!r}")
        model = getattr(mod, cls)()
        default_name = cls
    if not isinstance(model, nn.Module):
        raise ConvertError(f"{default_name} is not a torch.nn.Module")
    if args.state_dict:
        model.load_state_dict(load_state_dict(args.state_dict), strict=True)
    return model.eval(), default_name


def load_state_dict(path):
    path = Path(path)
    if not path.is_file():
        raise ConvertError(f"--state-dict: {path}: no such file")
    if path.suffix == ".safetensors":
        return {k: torch.from_numpy(v) for k, v in read_safetensors(path).items()}
    obj = torch.load(path, map_location="cpu")
    if isinstance(obj, nn.Module):
        return obj.state_dict()
    if isinstance(obj, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            if key in obj and isinstance(obj[key], dict):
                return obj[key]
        return obj
    raise ConvertError(f"--state-dict: {path} holds a {type(obj).__name__}, not a state_dict")


def verify(module, outdir, outputs, runner, input_shape, seed, tolerance, batch=1):
    """Runs PyTorch and the engine on one seeded random input; returns the
    relative differences per output. Raises ConvertError above tolerance."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn([batch] + list(input_shape), generator=g)
    with torch.no_grad():
        want = module(x)
    want = list(want) if isinstance(want, (tuple, list)) else [want]
    with run_rectify(runner, outdir, x.numpy()) as run:
        diffs = [rel_diff(got, w.numpy()) for got, w in zip(run.outputs, want)]
        seconds = run.report["seconds"]
    for name, d, w in zip(outputs, diffs, want):
        print(f"verify: output {name!r} ({w.numel()} values): max relative difference {d:.3g} "
              f"(PyTorch vs rectify, random {'x'.join(map(str, input_shape))} input, seed {seed})")
    print(f"verify: rectify ran in {seconds * 1000:.1f} ms")
    bad = [(o, d) for o, d in zip(outputs, diffs) if not d <= tolerance]
    if bad:
        raise ConvertError("verification failed: " + ", ".join(f"output {o!r} differs by {d:.3g}" for o, d in bad)
                           + f" (tolerance {tolerance:g})")
    return diffs


def convert_module(module, input_shape, name, seed=0):
    return Converter(module, input_shape, name, seed=seed).convert()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 2)[2])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--torchvision", metavar="NAME", help="a torchvision model builder, e.g. vgg16, resnet18")
    src.add_argument("--module", metavar="FILE:CLASS", help="a Python file and the nn.Module class in it "
                                                            "(constructed without arguments)")
    ap.add_argument("--state-dict", metavar="FILE", help="weights: a .pt/.pth state_dict or a .safetensors file")
    ap.add_argument("--input-shape", type=int, nargs=3, metavar=("C", "H", "W"), required=True)
    ap.add_argument("outdir", type=Path, metavar="OUTDIR")
    add_preprocess_args(ap)
    add_common_args(ap)
    args = ap.parse_args(argv)
    try:
        t0 = time.time()
        if any(d < 1 for d in args.input_shape):
            raise ConvertError("--input-shape values must be positive")
        pre = preprocess_from_args(args, args.input_shape)
        runner = None if args.no_verify else find_runner(args.runner)
        module, default_name = load_module(args)
        conv = convert_module(module, args.input_shape, args.name or default_name, args.seed)
        conv.builder.write(args.outdir, conv.outputs, pre, args.labels)
        print(conv.builder.summary(conv.outputs))
        for note in conv.notes:
            print(f"note: {note}")
        print(f"wrote {args.outdir}/model.json, {args.outdir}/weights.safetensors"
              + (f", {args.outdir}/labels.txt" if args.labels else "") + f" in {time.time() - t0:.1f} s")
        if not args.no_verify:
            verify(module, args.outdir, conv.outputs, runner, args.input_shape, args.seed, args.tolerance)
    except ConvertError as e:
        print(f"torch2rectify: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
