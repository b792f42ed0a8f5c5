"""rectify_import: what tools/torch2rectify.py and tools/onnx2rectify.py share.

- ModelBuilder: collects layers (name, op, inputs, fields, weight tensors)
  and writes a model folder: model.json, weights.safetensors, labels.txt.
- write_safetensors / read_safetensors: the safetensors layout, written by
  hand (8-byte little-endian header length, JSON header padded with spaces to
  a multiple of 8, F32 data in header order, contiguous, no gaps).
- Preprocessing options (--color, --scale, --mean, --std, --resize, --crop)
  turned into model.json's input.preprocess.
- run_rectify: runs the C engine on a tensor through tests/tools/run_tensor
  (built by meson as build/tests/run_tensor) and reads back its outputs,
  every layer's output and the engine's zero counts.
- rel_diff: max |a - b| / max |b|, the figure every check reports.

Only the Python standard library and numpy are needed here.
"""

import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RUNNER = REPO_ROOT / "build" / "tests" / "run_tensor"
TOLERANCE = 1e-4
MAX_NAME = 128
MAX_INPUTS = 8
NAME_CHARS = re.compile(r"[^A-Za-z0-9_.:/-]")


class ConvertError(Exception):
    """A model that cannot be converted; the message says which node and why."""


def sanitize_name(name):
    """A valid rectify name: characters outside [A-Za-z0-9_.:/-] become '_',
    at most 128 bytes, never empty."""
    name = NAME_CHARS.sub("_", str(name)) or "layer"
    return name[:MAX_NAME]


class ModelBuilder:
    """Layers in execution order. Each layer is a dict with the JSON fields
    plus private keys (starting with '_'): its per-sample output shape, its
    tensors and where it came from."""

    def __init__(self, name, input_shape, input_name="input"):
        self.name = sanitize_name(name)[:MAX_NAME]
        self.input_shape = [int(d) for d in input_shape]
        self.input_name = sanitize_name(input_name)
        self.layers = []
        self.by_name = {}
        self.notes = []  # what was folded, dropped, or mapped specially

    # -- names ----------------------------------------------------------------
    def unique_name(self, base):
        base = sanitize_name(base)
        if base not in self.by_name and base != self.input_name:
            return base
        for k in range(1, 1 << 20):
            suffix = f":{k}"
            cand = base[:MAX_NAME - len(suffix)] + suffix
            if cand not in self.by_name and cand != self.input_name:
                return cand
        raise ConvertError(f"cannot make a unique name from {base!r}")

    # -- layers ---------------------------------------------------------------
    def add(self, base_name, op, inputs, shape, tensors=(), origin=None, **fields):
        """Appends a layer. inputs: names of layers or of the model input.
        tensors: (suffix, float32 array) pairs, e.g. ("weight", w).
        shape: the per-sample output shape. Returns the layer's name."""
        if not 1 <= len(inputs) <= MAX_INPUTS:
            raise ConvertError(f"layer {base_name!r}: {len(inputs)} inputs (1 to {MAX_INPUTS} allowed)")
        name = self.unique_name(base_name)
        layer = {"name": name, "op": op}
        layer.update({k: v for k, v in fields.items() if v is not None})
        layer["_inputs"] = list(inputs)
        layer["_shape"] = [int(d) for d in shape]
        layer["_tensors"] = [(s, np.ascontiguousarray(t, dtype=np.float32)) for s, t in tensors]
        layer["_origin"] = origin
        self.layers.append(layer)
        self.by_name[name] = layer
        return name

    def layer(self, name):
        return self.by_name[name]

    def shape_of(self, name):
        return self.input_shape if name == self.input_name else self.by_name[name]["_shape"]

    def params(self, layer):
        return sum(int(t.size) for _, t in layer["_tensors"])

    # -- writing --------------------------------------------------------------
    def model_json(self, outputs, preprocess=None, description=None):
        layers = []
        previous = self.input_name
        for layer in self.layers:
            out = {k: v for k, v in layer.items() if not k.startswith("_")}
            ins = layer["_inputs"]
            if ins != [previous]:
                # keep "name" and "op" first for readers
                out = {"name": out.pop("name"), "op": out.pop("op"), "inputs": ins, **out}
            layers.append(out)
            previous = layer["name"]
        inp = {"name": self.input_name, "shape": self.input_shape}
        if preprocess:
            inp["preprocess"] = preprocess
        model = {"format": "rectify", "version": 1, "name": self.name}
        if description:
            model["description"] = description
        model.update({"input": inp, "layers": layers, "outputs": list(outputs)})
        return model

    def tensors(self):
        out = []
        for layer in self.layers:
            for suffix, t in layer["_tensors"]:
                out.append((f"{layer['name']}.{suffix}", t))
        return out

    def write(self, outdir, outputs, preprocess=None, labels=None, description=None):
        outdir = Path(outdir)
        outdir.mkdir(parents=True, exist_ok=True)
        if len(set(outputs)) != len(outputs):
            raise ConvertError(f"the model returns the same tensor twice ({', '.join(outputs)})")
        for o in outputs:
            if o == self.input_name:
                raise ConvertError("the model returns its input unchanged: nothing to convert")
        model = self.model_json(outputs, preprocess, description)
        text = _compact_layers(model)  # one layer per line: readable and diff-friendly
        (outdir / "model.json").write_text(text, encoding="utf-8")
        write_safetensors(outdir / "weights.safetensors", self.tensors())
        if labels:
            shutil.copyfile(labels, outdir / "labels.txt")
        elif (outdir / "labels.txt").exists():
            (outdir / "labels.txt").unlink()  # a stale one would be read
        return model

    # -- report ---------------------------------------------------------------
    def summary(self, outputs):
        """The table printed after conversion."""
        rows = [("#", "layer", "op", "inputs", "output", "params")]
        total = 0
        for i, layer in enumerate(self.layers):
            p = self.params(layer)
            total += p
            ins = layer["_inputs"]
            ins_text = "" if i and ins == [self.layers[i - 1]["name"]] or (not i and ins == [self.input_name]) \
                else ", ".join(ins)
            rows.append((str(i), layer["name"], layer["op"], ins_text,
                         "x".join(str(d) for d in layer["_shape"]), f"{p:,}"))
        widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
        widths[3] = min(widths[3], 40)
        lines = []
        for r in rows:
            cells = [r[c][:widths[c]].ljust(widths[c]) if c != 5 else r[c].rjust(widths[c]) for c in range(6)]
            lines.append("  ".join(cells).rstrip())
        lines.append(f"{len(self.layers)} layers, {total:,} parameters; input "
                     f"{self.input_name} {'x'.join(map(str, self.input_shape))}; outputs: {', '.join(outputs)}")
        return "\n".join(lines)


def _compact_layers(model):
    """JSON with one line per layer."""
    head = {k: v for k, v in model.items() if k not in ("layers", "outputs")}
    parts = ["{"]
    for k, v in head.items():
        parts.append(f" {json.dumps(k)}: {json.dumps(v)},")
    parts.append(' "layers": [')
    for i, layer in enumerate(model["layers"]):
        parts.append("  " + json.dumps(layer) + ("," if i + 1 < len(model["layers"]) else ""))
    parts.append(" ],")
    parts.append(f' "outputs": {json.dumps(model["outputs"])}')
    parts.append("}")
    return "\n".join(parts) + "\n"


# -- safetensors --------------------------------------------------------------

def write_safetensors(path, tensors, metadata=None):
    """tensors: list of (name, array), written as F32 in this order;
    metadata: an optional {key: value} "__metadata__" (values as strings)."""
    header, offset, arrays = {}, 0, []
    for name, arr in tensors:
        a = np.ascontiguousarray(arr, dtype="<f4")
        header[name] = {"dtype": "F32", "shape": [int(d) for d in a.shape],
                        "data_offsets": [offset, offset + a.nbytes]}
        arrays.append(a)
        offset += a.nbytes
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)
    tmp = Path(str(path) + ".tmp")
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for a in arrays:
            f.write(a.reshape(-1).view(np.uint8).data)
    os.replace(tmp, path)


_DTYPES = {"F32": "<f4", "F16": "<f2", "F64": "<f8", "I64": "<i8", "I32": "<i4", "U8": "u1",
           "I8": "i1", "I16": "<i2", "BOOL": "?"}


def read_safetensors(path, metadata=False):
    """{name: numpy array}, and with metadata=True also the file's
    "__metadata__" ({} when it has none). BF16 is widened to float32."""
    blob = Path(path).read_bytes()
    if len(blob) < 8:
        raise ConvertError(f"{path}: too short for a safetensors file")
    (n,) = struct.unpack_from("<Q", blob, 0)
    if 8 + n > len(blob):
        raise ConvertError(f"{path}: header length {n} is past the end of the file")
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    data = blob[8 + n:]
    out = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        raw = data[b:e]
        if info["dtype"] == "BF16":
            arr = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        elif info["dtype"] in _DTYPES:
            arr = np.frombuffer(raw, dtype=_DTYPES[info["dtype"]])
        else:
            raise ConvertError(f"{path}: tensor {name!r} has unsupported dtype {info['dtype']}")
        out[name] = arr.reshape(info["shape"]).copy()
    return (out, meta) if metadata else out


# -- preprocessing options ----------------------------------------------------

def add_preprocess_args(ap):
    g = ap.add_argument_group("preprocessing (written into model.json's input.preprocess)")
    g.add_argument("--color", choices=["gray", "rgb", "bgr"], help="color the image is converted to")
    g.add_argument("--scale", type=float, help="each pixel byte is multiplied by this (e.g. 0.00392156862745098 = 1/255)")
    g.add_argument("--mean", type=float, nargs="+", metavar="M", help="per-channel mean (1 or C values)")
    g.add_argument("--std", type=float, nargs="+", metavar="S", help="per-channel std (1 or C values)")
    g.add_argument("--resize", type=int, nargs=2, metavar=("H", "W"), help="resize every image to H x W")
    g.add_argument("--crop", type=int, nargs=2, metavar=("H", "W"), help="center crop after resize")
    g.add_argument("--labels", type=Path, metavar="FILE", help="class names, one per line: copied to labels.txt")


def preprocess_from_args(args, shape):
    """model.json's input.preprocess from the options, checked against the
    input shape [C, H, W]; None when no option was given."""
    c, h, w = shape
    pre = {}
    if args.color:
        if (args.color == "gray") != (c == 1) or (args.color != "gray" and c != 3):
            raise ConvertError(f"--color {args.color} does not give the {c} channels of the input")
        pre["color"] = args.color
    if args.resize:
        pre["resize"] = list(args.resize)
    if args.crop:
        pre["crop"] = list(args.crop)
    if args.scale is not None:
        pre["scale"] = args.scale
    for key in ("mean", "std"):
        v = getattr(args, key)
        if v is None:
            continue
        if len(v) not in (1, c):
            raise ConvertError(f"--{key} needs 1 or {c} values, got {len(v)}")
        if key == "std" and any(not s > 0 for s in v):
            raise ConvertError("--std values must be > 0")
        pre[key] = v
    if not pre:
        return None
    if c not in (1, 3):
        raise ConvertError(f"preprocessing options need an input of 1 or 3 channels, not {c}")
    final = args.crop or args.resize
    if args.crop and args.resize and (args.crop[0] > args.resize[0] or args.crop[1] > args.resize[1]):
        raise ConvertError("--crop is larger than --resize")
    if final and (final[0] != h or final[1] != w):
        raise ConvertError(f"--{'crop' if args.crop else 'resize'} gives {final[0]}x{final[1]} images, "
                           f"the input shape is {h}x{w}")
    return pre


# -- running the engine -------------------------------------------------------

def find_runner(path=None):
    runner = Path(path) if path else DEFAULT_RUNNER
    if not runner.is_file() or not os.access(runner, os.X_OK):
        raise ConvertError(f"{runner}: no run_tensor program to verify with (build the project with "
                           f"`meson setup build && ninja -C build`, pass --runner PATH, or use --no-verify)")
    return runner


class RectifyRun:
    """The result of one engine run: outputs (arrays with the batch first),
    the report (per layer: name, op, shape, zeros, ...), and, when asked
    for, each layer's output (loaded on demand)."""

    def __init__(self, tmpdir, report):
        self.dir = Path(tmpdir)
        self.report = report
        self.layers = report["layers"]
        self.index = {l["name"]: i for i, l in enumerate(self.layers)}
        batch = report["batch"]
        self.outputs = []
        for o, layer in enumerate(report["outputs"]):
            shape = [batch] + self.layers[layer]["shape"]
            self.outputs.append(np.fromfile(self.dir / f"output-{o}.f32", dtype="<f4").reshape(shape))
        self.batch = batch

    def layer_output(self, name):
        layer = self.layers[self.index[name]]
        if "file" not in layer:
            raise ValueError("run without layers=True")
        return np.fromfile(self.dir / layer["file"], dtype="<f4").reshape([self.batch] + layer["shape"])

    def zeros(self, name):
        return self.layers[self.index[name]]["zeros"]

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def run_rectify(runner, model_dir, x, layers=False, threads=0, timeout=1800, tmp_parent=None):
    """Runs model_dir on x (float32, [batch, C, H, W]); returns a RectifyRun
    (close it, or use it in a with block, to remove its files, which go in a
    new folder under tmp_parent, by default the system's)."""
    tmp = tempfile.mkdtemp(prefix="rectify-run-", dir=tmp_parent)
    try:
        inp = Path(tmp) / "input.f32"
        np.ascontiguousarray(x, dtype="<f4").tofile(inp)
        cmd = [str(runner), str(model_dir), str(inp), tmp]
        if threads:
            cmd += ["--threads", str(threads)]
        if layers:
            cmd.append("--layers")
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0:
            raise ConvertError(f"the engine failed on the converted model: {p.stderr.strip() or p.stdout.strip()}")
        report = json.loads((Path(tmp) / "report.json").read_text())
        return RectifyRun(tmp, report)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def rel_diff(a, b):
    """max |a - b| / max |b| (b is the reference); inf when shapes differ or
    anything is not finite."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        return float("inf")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return float("inf")
    top = float(np.max(np.abs(b))) if b.size else 0.0
    diff = float(np.max(np.abs(a - b))) if a.size else 0.0
    return diff / (top if top > 1e-30 else 1.0)


def add_common_args(ap):
    ap.add_argument("--name", help="the model's name in model.json (default: from the source)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random verification input (and of random weights)")
    ap.add_argument("--no-verify", action="store_true", help="do not run the engine to compare outputs")
    ap.add_argument("--runner", type=Path, help=f"the run_tensor program (default {DEFAULT_RUNNER})")
    ap.add_argument("--tolerance", type=float, default=TOLERANCE,
                    help="largest relative difference max|a-b|/max|b| accepted by the verification")
