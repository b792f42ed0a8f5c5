#!/usr/bin/python3
"""torch_bench.py: times a rectify model's graph in PyTorch, batch 1.

Builds the network of a rectify model.json (a chain of conv, relu, maxpool,
avgpool, flatten, dense, softmax) as a torch.nn.Module, loads the very
weights of a rectify safetensors file (written by `rectify init`), and times
one forward pass of batch 1 in each variant:

  eager          the module as it is, under torch.inference_mode()
  channels_last  module and input in torch.channels_last, inference_mode
  script         torch.jit.trace + torch.jit.freeze +
                 torch.jit.optimize_for_inference, under torch.no_grad()
  mkldnn         (only with --variants ...,mkldnn) torch.utils.mkldnn.to_mkldnn
                 on the module and an MKL-DNN input tensor

Each variant is prepared once, then timed at each --threads count in turn
(torch.set_num_threads): its first call at that count is timed on its own
(first_ms), then warm-up
calls (--warmup counts the first; script gets one more, for the profiling
executor), then timed calls (time.perf_counter, monotonic; and the process
CPU time of each call, median_cpu_ms) until at least
--repeats calls AND --min-seconds are done, or --max-repeats. The output of
each variant is compared with eager's (max |a - b| / max |b|).

The parameters are copied from the weights file (no random initialisation). Prints one JSON document on stdout: "load_ms",
"by_threads": {"T": {"variants": {name: {...}}, "best", "median_ms", ...}};
with --dump PREFIX writes eager's output
and logits (the input of a final softmax) as raw float32 to PREFIX.out.f32
and PREFIX.logits.f32, for bench/run.py to compare with the other engines.

Runs with Debian's python3-torch (/usr/bin/python3); needs numpy only
besides torch (the safetensors file is read by hand, in benchlib.py).
"""
import argparse
import json
import os
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import chain_layers, model_json_path, padding4 as _padding4, pair as _pair, \
    read_safetensors  # noqa: E402


class Pad(nn.Module):
    """Asymmetric zero (or -inf) padding in front of a conv or pool."""

    def __init__(self, top, left, bottom, right, value=0.0):
        super().__init__()
        self.p = (left, right, top, bottom)
        self.value = value

    def forward(self, x):
        return F.pad(x, self.p, value=self.value)


class Softmax1(nn.Module):
    def forward(self, x):
        return torch.softmax(x, dim=1)


class Flatten1(nn.Module):
    def forward(self, x):
        return torch.flatten(x, 1)


class Net(nn.Module):
    """The chain of layers; forward(x) returns the model's output; with
    self.stop_before_softmax set, the input of a final softmax instead."""

    def __init__(self, modules, final_softmax):
        super().__init__()
        self.body = nn.Sequential(*modules)
        self.final_softmax = final_softmax
        self.stop_before_softmax = False

    def forward(self, x):
        x = self.body(x)
        if self.final_softmax and not self.stop_before_softmax:
            x = torch.softmax(x, dim=1)
        return x


def skip_init(cls, *args):
    """The module without its random initialisation (138 M parameters of
    VGG-16 take seconds to draw): its parameters are replaced anyway."""
    return nn.utils.skip_init(cls, *args)


def set_params(m, weights, name, bias):
    """The module's parameters: copies of the loaded arrays in memory of
    torch's own (aligned as torch aligns its tensors)."""
    m.weight = nn.Parameter(torch.from_numpy(weights[name + ".weight"]).clone(), requires_grad=False)
    if bias:
        m.bias = nn.Parameter(torch.from_numpy(weights[name + ".bias"]).clone(), requires_grad=False)


def build_net(model_json, weights):
    """Returns (net, input_shape, layer_modules {name: module})."""
    with open(model_json) as f:
        spec = json.load(f)
    shape = list(spec["input"]["shape"])  # [C, H, W], batch left out
    layers = chain_layers(spec)
    mods, named = [], {}
    cur = shape  # [C, H, W] or [N]
    for i, L in enumerate(layers):
        op = L["op"]
        name = L["name"]
        if op == "conv":
            C, H, W = cur
            k = _pair(L["kernel"], None)
            s = _pair(L.get("stride"), 1)
            d = _pair(L.get("dilation"), 1)
            t, l, b, r = _padding4(L.get("padding"))
            g = int(L.get("groups", 1))
            bias = bool(L.get("bias", True))
            if t == b and l == r:
                conv = skip_init(nn.Conv2d, C, L["out_channels"], k, s, (t, l), d, g, bias)
            else:
                mods.append(Pad(t, l, b, r))
                conv = skip_init(nn.Conv2d, C, L["out_channels"], k, s, 0, d, g, bias)
            set_params(conv, weights, name, bias)
            mods.append(conv)
            named[name] = conv
            OH = (H + t + b - d[0] * (k[0] - 1) - 1) // s[0] + 1
            OW = (W + l + r - d[1] * (k[1] - 1) - 1) // s[1] + 1
            cur = [L["out_channels"], OH, OW]
        elif op in ("maxpool", "avgpool"):
            C, H, W = cur
            k = _pair(L["kernel"], None)
            s = _pair(L.get("stride"), k)
            t, l, b, r = _padding4(L.get("padding"))
            ceil = bool(L.get("ceil_mode", False))
            if op == "maxpool":
                d = _pair(L.get("dilation"), 1)
                if t == b and l == r:
                    m = nn.MaxPool2d(k, s, (t, l), d, ceil_mode=ceil)
                else:
                    raise ValueError(f"layer {name}: asymmetric pool padding not supported here")
            else:
                if t == b and l == r:
                    m = nn.AvgPool2d(k, s, (t, l), ceil_mode=ceil,
                                     count_include_pad=bool(L.get("count_include_pad", True)))
                else:
                    raise ValueError(f"layer {name}: asymmetric pool padding not supported here")
            mods.append(m)
            named[name] = m
            # output size: let torch tell
            with torch.no_grad():
                cur = list(m(torch.zeros([1] + cur)).shape[1:])
        elif op == "global_avgpool":
            m = nn.AdaptiveAvgPool2d(1)
            mods.append(m)
            mods.append(Flatten1())
            named[name] = m
            cur = [cur[0]]
        elif op == "relu":
            m = nn.ReLU(inplace=False)
            mods.append(m)
            named[name] = m
        elif op == "flatten":
            m = Flatten1()
            mods.append(m)
            named[name] = m
            n = 1
            for v in cur:
                n *= v
            cur = [n]
        elif op == "dense":
            if len(cur) != 1:
                raise ValueError(f"layer {name}: dense needs a flat input")
            bias = bool(L.get("bias", True))
            m = skip_init(nn.Linear, cur[0], L["units"], bias)
            set_params(m, weights, name, bias)
            mods.append(m)
            named[name] = m
            cur = [L["units"]]
        elif op == "softmax":
            if i != len(layers) - 1:
                mods.append(Softmax1())
            named[name] = None
        else:
            raise ValueError(f"layer {name}: op {op} not supported by torch_bench")
    final_softmax = layers[-1]["op"] == "softmax"
    net = Net(mods, final_softmax).eval()
    return net, shape, named


# ---- timing ----

def time_calls(fn, warmup, repeats, min_seconds, max_repeats):
    t0 = time.perf_counter()
    out = fn()
    first = time.perf_counter() - t0
    for _ in range(max(0, warmup - 1)):
        out = fn()
    times, cpu = [], []
    start = time.perf_counter()
    while len(times) < max_repeats and (len(times) < repeats or time.perf_counter() - start < min_seconds):
        a, ca = time.perf_counter(), time.process_time()
        out = fn()
        times.append(time.perf_counter() - a)
        cpu.append(time.process_time() - ca)
    return first, times, cpu, out


def rel_diff(a, b):
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        return None
    scale = np.max(np.abs(b))
    if scale == 0:
        scale = 1.0
    return float(np.max(np.abs(a - b)) / scale)


def cpu_capability():
    for line in torch.__config__.show().splitlines():
        if "CPU capability usage" in line:
            return line.split(":", 1)[1].strip()
    return None


def vm_hwm_bytes():
    """Peak resident memory of this process (all variants), from VmHWM."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def blas_library():
    """The BLAS shared object this process has mapped (Debian: alternatives)."""
    libs = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                p = line.split()[-1] if len(line.split()) >= 6 else ""
                base = os.path.basename(p)
                if "blas" in base or "dnnl" in base or "mkl" in base:
                    libs.add(os.path.realpath(p))
    except OSError:
        pass
    return sorted(libs)


def prepare(variant, net, x):
    """(call, context) for one variant; call() returns a dense tensor."""
    if variant == "eager":
        return (lambda: net(x)), torch.inference_mode
    if variant == "channels_last":
        m = net.to(memory_format=torch.channels_last)  # in place: undone after
        xin = x.contiguous(memory_format=torch.channels_last)
        return (lambda: m(xin)), torch.inference_mode
    if variant == "script":
        with torch.no_grad():
            base = Net(list(net.body), net.final_softmax).eval()
            traced = torch.jit.trace(base, x)
            frozen = torch.jit.freeze(traced.eval())
            m = torch.jit.optimize_for_inference(frozen)
        return (lambda: m(x)), torch.no_grad
    if variant == "mkldnn":
        from torch.utils import mkldnn as mkldnn_utils
        base = Net(list(net.body), net.final_softmax).eval()
        m = mkldnn_utils.to_mkldnn(base)
        xin = x.to_mkldnn()

        def call():
            y = m(xin)
            return y.to_dense() if y.is_mkldnn else y
        return call, torch.no_grad
    raise ValueError(f"unknown variant {variant}")


def summarise(variants):
    """best variant's numbers at one thread count."""
    out = {"variants": variants}
    ok = {k: v for k, v in variants.items() if "median_ms" in v}
    if ok:
        best = min(ok, key=lambda k: ok[k]["median_ms"])
        out["best"] = best
        for key in ("median_ms", "min_ms", "max_ms", "first_ms", "runs", "median_cpu_ms"):
            out[key] = ok[best][key]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", help="model.json (or its folder)")
    ap.add_argument("--weights", required=True, help="safetensors file")
    ap.add_argument("--threads", default="1",
                    help="comma-separated thread counts, each timed in turn (default 1)")
    ap.add_argument("--input", help="raw float32 input (C*H*W floats); default uniform [-1,1) seed 0")
    ap.add_argument("--variants", default="eager,channels_last,script")
    ap.add_argument("--warmup", type=int, default=2,
                    help="calls before timing, the first included (script: one more)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--min-seconds", type=float, default=0.0)
    ap.add_argument("--max-repeats", type=int, default=1000)
    ap.add_argument("--dump", help="write eager's output and logits to PREFIX.out.f32 / .logits.f32")
    ap.add_argument("--pin-one", type=int, metavar="CPU",
                    help="time the one-thread runs on CPU only (as `taskset -c CPU` does for the others)")
    args = ap.parse_args()
    threads = [int(t) for t in args.threads.split(",")]

    model_json = model_json_path(args.model)
    torch.set_num_threads(threads[0])
    torch.manual_seed(0)

    t0 = time.perf_counter()
    weights = read_safetensors(args.weights)
    net, shape, _ = build_net(model_json, weights)
    del weights
    load_ms = (time.perf_counter() - t0) * 1e3

    n_in = shape[0] * shape[1] * shape[2]
    if args.input:
        x_np = np.fromfile(args.input, dtype=np.float32, count=n_in)
        if x_np.size != n_in:
            sys.exit(f"torch_bench: {args.input}: expected {n_in} floats")
    else:
        x_np = np.random.default_rng(0).uniform(-1, 1, n_in).astype(np.float32)
    x = torch.from_numpy(x_np.reshape([1] + shape)).contiguous()

    result = {
        "engine": "torch",
        "torch_version": torch.__version__,
        "threads": threads,
        "mkldnn_enabled": bool(torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled),
        "cpu_capability": cpu_capability(),
        "load_ms": load_ms,
    }

    with torch.inference_mode():
        ref = net(x).numpy().copy()
        if args.dump:
            ref.astype(np.float32).tofile(args.dump + ".out.f32")
            if net.final_softmax:
                net.stop_before_softmax = True
                net(x).numpy().astype(np.float32).tofile(args.dump + ".logits.f32")
                net.stop_before_softmax = False
            result["dump"] = args.dump
            result["dump_logits"] = net.final_softmax

    all_cpus = os.sched_getaffinity(0)
    # variant by variant (each prepared once), every thread count in turn
    per_t = {T: {} for T in threads}
    prepare_ms = {}
    for variant in [v for v in args.variants.split(",") if v]:
        try:
            t0 = time.perf_counter()
            call, ctx = prepare(variant, net, x)
            prepare_ms[variant] = (time.perf_counter() - t0) * 1e3
        except Exception as e:  # a variant that fails is reported, not fatal
            for T in threads:
                per_t[T][variant] = {"error": f"{type(e).__name__}: {e}"}
            net = net.to(memory_format=torch.contiguous_format)
            continue
        # TorchScript's profiling executor optimises the graph on its second
        # call: give script one warm-up call more
        warmup = args.warmup + (1 if variant == "script" else 0)
        for T in threads:
            torch.set_num_threads(T)
            if args.pin_one is not None:
                os.sched_setaffinity(0, {args.pin_one} if T == 1 else all_cpus)
            try:
                with ctx():
                    first, times, cpu, out = time_calls(call, warmup, args.repeats,
                                                        args.min_seconds, args.max_repeats)
                    out_np = out.contiguous().numpy()
                ms = sorted(t * 1e3 for t in times)
                per_t[T][variant] = {
                    "prepare_ms": prepare_ms[variant],
                    "first_ms": first * 1e3,
                    "runs": len(times),
                    "median_ms": statistics.median(ms),
                    "min_ms": ms[0],
                    "max_ms": ms[-1],
                    "mean_ms": sum(ms) / len(ms),
                    "median_cpu_ms": statistics.median(cpu) * 1e3,
                    "max_rel_diff_vs_eager": rel_diff(out_np, ref),
                }
            except Exception as e:
                per_t[T][variant] = {"error": f"{type(e).__name__}: {e}"}
        del call
        # channels_last converted the shared module in place: put it back
        net = net.to(memory_format=torch.contiguous_format)

    if args.pin_one is not None:
        os.sched_setaffinity(0, all_cpus)
        result["pinned_one_thread_to_cpu"] = args.pin_one
    result["by_threads"] = {str(T): summarise(per_t[T]) for T in threads}
    result["blas_libraries"] = blas_library()
    result["peak_rss_bytes"] = vm_hwm_bytes()
    json.dump(result, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
