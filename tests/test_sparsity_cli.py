#!/usr/bin/python3
"""End-to-end tests of `rectify sparsity` and `rectify activations` (issue 5).

  test_sparsity_cli.py RECTIFY SOURCE_ROOT

Builds small nets with integer weights (every sum exact in float32) and
images whose pixels are the network's inputs (scale 1, no mean or std), so
that a plain Python reference knows every zero exactly; then checks the
counts, spreads, per-channel APoZ and dead channels, zero-input MACs (by
brute force over every multiplication), near-zeros, classes, that shards
merged equal the whole run, that every output format parses, the folder walk
by content, the progress bar, and He initialisation's 50% zeros. The last
line is "N passed, N failed". Python 3 standard library only.
"""
import csv
import json
import math
import os
import pty
import random
import struct
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
import zlib

if len(sys.argv) != 3:
    print(__doc__, file=sys.stderr)
    sys.exit(2)

RECTIFY = os.path.abspath(sys.argv[1])
ROOT = os.path.abspath(sys.argv[2])
MNIST = os.path.join(ROOT, "models", "lenet5-mnist")
os.environ.setdefault("OMP_WAIT_POLICY", "passive")
TIMEOUT = 120

CHECKS = []


def check(fn):
    CHECKS.append(fn)
    return fn


class Failure(Exception):
    pass


def expect(condition, message):
    if not condition:
        raise Failure(message)


def run(*args, stdin=subprocess.DEVNULL):
    p = subprocess.run([RECTIFY, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       stdin=stdin, timeout=TIMEOUT)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def ok(*args):
    rc, out, err = run(*args)
    expect(rc == 0, "rectify %s -> %d: %s" % (" ".join(map(str, args)), rc, err[-500:]))
    return out


def report(*args):
    return json.loads(ok("sparsity", *args, "--json"))


# ---- files --------------------------------------------------------------------

def write_png(path, pixels, width, height, channels=1):
    """pixels: a flat list of bytes, rows of width*channels."""
    raw = b"".join(b"\x00" + bytes(pixels[y * width * channels:(y + 1) * width * channels]) for y in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)
    color = {1: 0, 3: 2}[channels]
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, color, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def read_png(path):
    """(width, height, channels, rows) of an 8-bit gray/RGB PNG, unfiltered."""
    data = open(path, "rb").read()
    expect(data[:8] == b"\x89PNG\r\n\x1a\n", "%s: not a PNG" % path)
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        expect(zlib.crc32(kind + body) & 0xffffffff == struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])[0],
               "%s: bad CRC" % path)
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, color = ihdr[:4]
    expect(depth == 8 and color in (0, 2), "%s: depth %d color %d" % (path, depth, color))
    channels = 1 if color == 0 else 3
    raw, stride, rows, prev = zlib.decompress(idat), width * channels, [], [0] * (width * channels)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], list(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b, c = prev[i], prev[i - channels] if i >= channels else 0
            if kind == 1: line[i] = (line[i] + a) & 255
            elif kind == 2: line[i] = (line[i] + b) & 255
            elif kind == 3: line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(line)
        prev = line
    return width, height, channels, rows


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, shape, values in tensors:
        blob = struct.pack("<%df" % len(values), *values)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


# ---- a tiny net and its reference -----------------------------------------------
# input 1x8x8 (pixel bytes 0..3 as they are) -> conv 4x3x3 pad 1 -> relu ->
# maxpool 2 -> flatten (64) -> dense 5 -> relu -> dense 3 -> softmax.
# Channel 2 of the conv: zero weights, bias +1: never zero (APoZ 0).
# Channel 3: zero weights, bias -1: dead (APoZ 1).

H = W = 8
COUT, UNITS, CLASSES = 4, 5, 3


def tiny_weights(seed=7):
    r = random.Random(seed)
    cw = [float(r.randint(-1, 1)) for _ in range(COUT * 9)]
    cb = [float(r.randint(-1, 0)) for _ in range(COUT)]
    cw[18:27] = [0.0] * 9
    cb[2] = 1.0
    cw[27:36] = [0.0] * 9
    cb[3] = -1.0
    dw = [float(r.randint(-1, 1)) for _ in range(UNITS * 64)]
    db = [float(r.randint(-2, 2)) for _ in range(UNITS)]
    ow = [float(r.randint(-1, 1)) for _ in range(CLASSES * UNITS)]
    ob = [0.0] * CLASSES
    return cw, cb, dw, db, ow, ob


def make_tiny(folder, extra_layers=None):
    os.makedirs(folder, exist_ok=True)
    layers = [
        {"name": "conv", "op": "conv", "out_channels": COUT, "kernel": 3, "padding": 1},
        {"name": "relu", "op": "relu"},
        {"name": "pool", "op": "maxpool", "kernel": 2},
        {"name": "flat", "op": "flatten"},
        {"name": "fc", "op": "dense", "units": UNITS},
        {"name": "relu2", "op": "relu"},
        {"name": "out", "op": "dense", "units": CLASSES},
        {"name": "prob", "op": "softmax"},
    ]
    model = {"format": "rectify", "version": 1, "name": "tiny",
             "input": {"shape": [1, H, W], "preprocess": {"color": "gray"}},
             "labels": "labels.txt", "layers": layers, "outputs": ["prob"]}
    with open(os.path.join(folder, "model.json"), "w") as f:
        json.dump(model, f)
    with open(os.path.join(folder, "labels.txt"), "w") as f:
        f.write("a\nb\nc\n")
    cw, cb, dw, db, ow, ob = tiny_weights()
    write_safetensors(os.path.join(folder, "weights.safetensors"), [
        ("conv.weight", [COUT, 1, 3, 3], cw), ("conv.bias", [COUT], cb),
        ("fc.weight", [UNITS, 64], dw), ("fc.bias", [UNITS], db),
        ("out.weight", [CLASSES, UNITS], ow), ("out.bias", [CLASSES], ob)])
    return folder


def reference(pixels):
    """Every layer's output (flat lists) and the zero-input MACs of conv, fc
    and out, counted one multiplication at a time."""
    cw, cb, dw, db, ow, ob = tiny_weights()
    x = [float(p) for p in pixels]
    conv, conv_zero_macs = [], 0
    for c in range(COUT):
        for oy in range(H):
            for ox in range(W):
                s = cb[c]
                for ky in range(3):
                    for kx in range(3):
                        iy, ix = oy - 1 + ky, ox - 1 + kx
                        if 0 <= iy < H and 0 <= ix < W:
                            s += cw[c * 9 + ky * 3 + kx] * x[iy * W + ix]
                            conv_zero_macs += x[iy * W + ix] == 0
                conv.append(s)
    relu = [max(v, 0.0) for v in conv]
    pool = [max(relu[c * 64 + (2 * y + dy) * 8 + 2 * xx + dx] for dy in (0, 1) for dx in (0, 1))
            for c in range(COUT) for y in range(4) for xx in range(4)]
    fc = [db[u] + sum(dw[u * 64 + i] * pool[i] for i in range(64)) for u in range(UNITS)]
    relu2 = [max(v, 0.0) for v in fc]
    out = [ob[k] + sum(ow[k * UNITS + u] * relu2[u] for u in range(UNITS)) for k in range(CLASSES)]
    top = max(out)
    e = [math.exp(v - top) for v in out]
    prob = [v / sum(e) for v in e]
    macs = {"conv": conv_zero_macs, "fc": sum(v == 0 for v in pool) * UNITS,
            "out": sum(v == 0 for v in relu2) * CLASSES}
    outputs = {"conv": conv, "relu": relu, "pool": pool, "flat": pool, "fc": fc, "relu2": relu2, "out": out,
               "prob": prob}
    return outputs, macs


def tiny_images(folder, count, seed=3, classes=("a", "b", "c")):
    """count images in folder/<class>/, pixels 0..3 with many zeros."""
    r = random.Random(seed)
    images = []
    for i in range(count):
        pixels = [r.choice((0, 0, 0, 1, 2, 3)) for _ in range(H * W)]
        cls = classes[i % len(classes)]
        os.makedirs(os.path.join(folder, cls), exist_ok=True)
        path = os.path.join(folder, cls, "img%03d.png" % i)
        write_png(path, pixels, W, H)
        images.append((path, cls, pixels))
    return images


class Tiny:
    """One tiny model, its images and the reference report, shared."""
    _made = None

    @classmethod
    def get(cls):
        if cls._made is None:
            cls._made = cls()
        return cls._made

    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="rectify-sparsity-")
        self.model = make_tiny(os.path.join(self.tmp, "tiny"))
        self.data = os.path.join(self.tmp, "data")
        self.images = tiny_images(self.data, 12)
        self.refs = [reference(pixels) for _, _, pixels in self.images]


def apoz_quantile(values, q):
    v = sorted(values)
    pos = q * (len(v) - 1)
    below = int(math.floor(pos))
    return v[below] + (pos - below) * (v[below + 1] - v[below]) if below + 1 < len(v) else v[below]


# ---- the checks -------------------------------------------------------------------

LAYERS = ["conv", "relu", "pool", "flat", "fc", "relu2", "out", "prob"]
PLANES = {"conv": 64, "relu": 64, "pool": 16, "flat": 1, "fc": 1, "relu2": 1, "out": 1, "prob": 1}


@check
def exact_counts_spread_and_zero_macs_match_reference():
    t = Tiny.get()
    doc = report(t.model, t.data, "--eps", "0.5")
    expect(doc["images"] == 12 and doc["failed"] == [] and doc["not_images"] == 0, "header %r" % doc["images"])
    for l in doc["layers"]:
        name = l["name"]
        zeros = [sum(v == 0 for v in ref[0][name]) for ref in t.refs]
        per_image = len(t.refs[0][0][name])
        expect(l["zeros"] == sum(zeros), "%s: %d zeros, reference %d" % (name, l["zeros"], sum(zeros)))
        expect(l["elements"] == per_image * 12, "%s: elements %d" % (name, l["elements"]))
        expect(l["min_zeros"] == min(zeros) and l["max_zeros"] == max(zeros), "%s: min/max zeros" % name)
        fr = [z / per_image for z in zeros]
        mean = sum(fr) / len(fr)
        std = math.sqrt(sum((f - mean) ** 2 for f in fr) / len(fr))
        expect(abs(l["mean"] - mean) < 1e-12 and l["min"] == min(fr) and l["max"] == max(fr),
               "%s: mean/min/max %r %r %r vs %r" % (name, l["mean"], l["min"], l["max"], (mean, min(fr), max(fr))))
        expect(abs(l["std"] - std) < 1e-12, "%s: std %r, reference %r" % (name, l["std"], std))
        expect(int(l["zeros_sq"]) == sum(z * z for z in zeros), "%s: zeros_sq" % name)
        near = sum(sum(abs(v) <= 0.5 for v in ref[0][name]) for ref in t.refs)
        expect(l["near_zeros"] == near, "%s: near_zeros %d, reference %d" % (name, l["near_zeros"], near))
        want_macs = sum(ref[1].get(name, 0) for ref in t.refs)
        expect(l["zero_macs"] == want_macs, "%s: zero_macs %d, brute force %d" % (name, l["zero_macs"], want_macs))
    relu = [l for l in doc["layers"] if l["op"] == "relu"]
    expect(doc["relu_sparsity"] == sum(l["zeros"] for l in relu) / sum(l["elements"] for l in relu), "relu_sparsity")


@check
def apoz_and_dead_channels_on_constructed_channels():
    t = Tiny.get()
    doc = report(t.model, t.data, "--per-channel")
    for l in doc["layers"]:
        name, plane = l["name"], PLANES[l["name"]]
        ch = l["channels"]
        count = len(t.refs[0][0][name]) // plane
        want = [sum(sum(v == 0 for v in ref[0][name][c * plane:(c + 1) * plane]) for ref in t.refs)
                for c in range(count)]
        expect(ch["count"] == count and ch["zeros"] == want, "%s: channel zeros %r, reference %r" %
               (name, ch["zeros"], want))
        apoz = [z / (plane * 12) for z in want]
        expect(ch["apoz"] == apoz, "%s: apoz %r vs %r" % (name, ch["apoz"], apoz))
        dead = sum(z == plane * 12 for z in want)
        expect(ch["dead"] == dead, "%s: dead %d, reference %d" % (name, ch["dead"], dead))
        for key, q in (("apoz_min", 0), ("apoz_p25", .25), ("apoz_median", .5), ("apoz_p75", .75), ("apoz_max", 1)):
            expect(abs(ch[key] - apoz_quantile(apoz, q)) < 1e-15, "%s: %s %r" % (name, key, ch[key]))
    relu = next(l for l in doc["layers"] if l["name"] == "relu")["channels"]
    expect(relu["apoz"][3] == 1.0 and relu["apoz"][2] == 0.0 and relu["dead"] >= 1,
           "relu: constructed channels: apoz %r dead %d" % (relu["apoz"], relu["dead"]))


@check
def classes_and_accuracy_from_folders():
    t = Tiny.get()
    doc = report(t.model, t.data, "--labels-from-dirs")
    labels = ["a", "b", "c"]
    by_class = {}
    for (path, cls, _), (outs, _) in zip(t.images, t.refs):
        c = by_class.setdefault(cls, {"images": 0, "correct": 0, "relu": 0})
        c["images"] += 1
        c["correct"] += labels[outs["prob"].index(max(outs["prob"]))] == cls
        c["relu"] += sum(v == 0 for v in outs["relu"])
    expect([c["name"] for c in doc["classes"]] == sorted(by_class), "classes %r" % doc["classes"])
    for c in doc["classes"]:
        want = by_class[c["name"]]
        expect(c["images"] == want["images"] and c["correct"] == want["correct"], "%s: %r vs %r" % (c["name"], c, want))
        expect(c["zeros"][1] == want["relu"], "%s: relu zeros %d vs %d" % (c["name"], c["zeros"][1], want["relu"]))
    total = sum(c["correct"] for c in by_class.values())
    expect(doc["accuracy"] == total / 12, "accuracy %r, reference %r" % (doc["accuracy"], total / 12))


@check
def shards_merged_equal_the_whole_run():
    t = Tiny.get()
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "data")
        tiny_images(data, 17, seed=9)
        with open(os.path.join(data, "a", "broken.png"), "wb") as f:
            f.write(b"\x89PNG\r\n\x1a\n" + b"garbage")
        opts = ["--per-channel", "--labels-from-dirs", "--eps", "0.25"]
        rc, out, err = run("sparsity", t.model, data, *opts, "--json")
        expect(rc == 1 and "broken.png" in err, "whole run: rc %d, stderr %r" % (rc, err))
        whole = json.loads(out)
        expect(whole["images"] == 17 and whole["failed_count"] == 1, "whole: %r" % whole["images"])
        for n in (1, 3, 5):
            parts = []
            for i in range(1, n + 1):
                rc, out, _ = run("sparsity", t.model, data, *opts, "--shard", "%d/%d" % (i, n), "--json")
                path = os.path.join(tmp, "part-%d-%d.json" % (n, i))
                with open(path, "w") as f:
                    f.write(out)
                parts.append(path)
            shard_images = [json.load(open(p))["images"] for p in parts]
            expect(sum(shard_images) == 17, "%d shards: images %r" % (n, shard_images))
            for order in (parts, parts[::-1]):
                rc, out, err = run("sparsity", "--merge", *order, "--json")
                expect(rc == 1, "merge of %d shards: rc %d %s" % (n, rc, err))
                merged = json.loads(out)
                expect(merged == whole, "%d shards merged differ from the whole run: %s" % (n, diff(merged, whole)))
        # the human report of the merge is the whole run's too
        rc, a, _ = run("sparsity", t.model, data, *opts)
        rc, b, _ = run("sparsity", "--merge", *parts)
        expect(a == b, "human reports differ")
        # an incomplete set: a warning, still a report
        rc, out, err = run("sparsity", "--merge", parts[0], parts[1], "--json")
        expect("2 of 5 shards" in err and json.loads(out)["images"] == sum(shard_images[:2]), err)
        rc, out, err = run("sparsity", "--merge", parts[0], parts[0])
        expect(rc == 1 and "twice" in err, "the same shard twice: %d %s" % (rc, err))


def diff(a, b, path=""):
    if type(a) != type(b):
        return "%s: %r vs %r" % (path, a, b)
    if isinstance(a, dict):
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                return diff(a.get(k), b.get(k), path + "." + k)
    if isinstance(a, list):
        if len(a) != len(b):
            return "%s: length %d vs %d" % (path, len(a), len(b))
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                return diff(x, y, "%s[%d]" % (path, i))
    return "%s: %r vs %r" % (path, a, b)


@check
def every_output_format_parses():
    t = Tiny.get()
    with tempfile.TemporaryDirectory() as tmp:
        csv_path, svg, png = (os.path.join(tmp, n) for n in ("r.csv", "r.svg", "png"))
        opts = ["--per-channel", "--labels-from-dirs", "--eps", "0.5", "--csv", csv_path, "--svg", svg, "--png", png]
        doc = json.loads(ok("sparsity", t.model, t.data, *opts, "--json"))
        human = ok("sparsity", t.model, t.data, *opts)
        expect("ReLU outputs:" in human and "dead" in human and "Accuracy:" in human, "human report:\n" + human)
        rows = list(csv.DictReader(open(csv_path, newline="")))
        expect([r["layer"] for r in rows] == LAYERS, "csv layers %r" % [r["layer"] for r in rows])
        for r, l in zip(rows, doc["layers"]):
            expect(int(r["zeros"]) == l["zeros"] and float(r["std"]) == l["std"] and
                   int(r["zero_macs"]) == l["zero_macs"] and int(r["near_zeros"]) == l["near_zeros"],
                   "csv row %r vs json %r" % (r, l))
        rows = list(csv.DictReader(open(os.path.join(tmp, "r-channels.csv"), newline="")))
        expect(len(rows) == sum(l["channels"]["count"] for l in doc["layers"]), "channel rows %d" % len(rows))
        relu = [r for r in rows if r["layer"] == "relu"]
        expect([int(r["zeros"]) for r in relu] == doc["layers"][1]["channels"]["zeros"] and relu[3]["dead"] == "1",
               "relu channel rows %r" % relu)
        rows = list(csv.DictReader(open(os.path.join(tmp, "r-classes.csv"), newline="")))
        expect(len(rows) == 3 * len(LAYERS), "class rows %d" % len(rows))
        root = ET.parse(svg).getroot()
        expect(root.tag == "{http://www.w3.org/2000/svg}svg", "svg root %r" % root.tag)
        texts = [e.text for e in root.iter("{http://www.w3.org/2000/svg}text")]
        expect(all(name in texts for name in LAYERS), "layer names in the SVG: %r" % texts)
        files = sorted(os.listdir(png))
        expect(files == ["01-relu.png", "05-relu2.png"], "heatmaps %r" % files)
        for f in files:
            w, h, c, _ = read_png(os.path.join(png, f))
            expect(w >= 100 and h >= 100 and c == 3, "%s: %dx%dx%d" % (f, w, h, c))
        expect(not [f for f in os.listdir(tmp) if ".tmp." in f], "temporary files left: %r" % os.listdir(tmp))


@check
def merge_writes_pictures_and_csv_too():
    t = Tiny.get()
    with tempfile.TemporaryDirectory() as tmp:
        part = os.path.join(tmp, "p.json")
        with open(part, "w") as f:
            f.write(ok("sparsity", t.model, t.data, "--per-channel", "--json"))
        ok("sparsity", "--merge", part, "--svg", os.path.join(tmp, "m.svg"), "--png", os.path.join(tmp, "png"),
           "--csv", os.path.join(tmp, "m.csv"))
        ET.parse(os.path.join(tmp, "m.svg"))
        expect(len(os.listdir(os.path.join(tmp, "png"))) == 2, "heatmaps from a merge")


@check
def failed_outputs_leave_no_file():
    t = Tiny.get()
    with tempfile.TemporaryDirectory() as tmp:
        target = os.path.join(tmp, "missing-dir", "chart.svg")
        rc, out, err = run("sparsity", t.model, t.data, "--svg", target)
        expect(rc == 1 and "chart.svg" in err and not os.path.exists(os.path.dirname(target)), err)
        rc, out, err = run("activations", t.model, t.images[0][0], "--layer", "relu", "-o", target)
        expect(rc == 1 and not os.path.exists(os.path.dirname(target)), err)


@check
def folders_walked_by_content_in_sorted_order():
    t = Tiny.get()
    with tempfile.TemporaryDirectory() as tmp:
        d = os.path.join(tmp, "walk")
        os.makedirs(os.path.join(d, "x", "y"))
        pixels = [0] * 64
        write_png(os.path.join(d, "x", "y", "deep.txt"), pixels, 8, 8)       # a PNG named .txt: an image
        write_png(os.path.join(d, "b.png"), pixels, 8, 8)
        with open(os.path.join(d, "notes.png"), "w") as f:                     # text named .png: not one
            f.write("not an image")
        with open(os.path.join(d, "x", "photo.jpg"), "wb") as f:               # JPEG magic, broken body
            f.write(b"\xff\xd8\xff\xe0broken")
        rc, out, err = run("sparsity", t.model, d, "--json")
        doc = json.loads(out)
        expect(doc["images"] == 2 and doc["not_images"] == 1, "images %d not_images %d" %
               (doc["images"], doc["not_images"]))
        expect([f["path"] for f in doc["failed"]] == [os.path.join(d, "x", "photo.jpg")] and rc == 1,
               "failed %r rc %d" % (doc["failed"], rc))
        expect(doc["failed"][0]["error"] != "", "a failure without its reason")
        # a file named on the command line is run whatever it holds, and reported
        rc, out, err = run("sparsity", t.model, os.path.join(d, "notes.png"), os.path.join(d, "b.png"), "--json")
        doc = json.loads(out)
        expect(rc == 1 and doc["images"] == 1 and doc["failed"][0]["path"].endswith("notes.png"), "named file")
        rc, out, err = run("sparsity", t.model, os.path.join(d, "x", "y"), "--shard", "2/2", "--json")
        expect(rc == 0 and json.loads(out)["images"] == 1, "shard 2/2 of one image: %d %s" % (rc, out[:200]))
        rc, out, err = run("sparsity", t.model, os.path.join(d, "x", "y"), "--shard", "1/2", "--json")
        expect(rc == 0 and json.loads(out)["images"] == 0, "shard 1/2 of one image")
        for bad in ("0/2", "3/2", "1", "a/b", "1/0"):
            rc, _, err = run("sparsity", t.model, d, "--shard", bad)
            expect(rc == 2 and "--shard" in err, "--shard %s: rc %d" % (bad, rc))


@check
def progress_bar_only_on_a_terminal():
    t = Tiny.get()
    rc, out, err = run("sparsity", t.model, t.data)
    expect("\r" not in err and err == "", "stderr not a terminal, yet: %r" % err)
    master, slave = pty.openpty()
    p = subprocess.Popen([RECTIFY, "sparsity", t.model, t.data], stdout=subprocess.PIPE, stderr=slave,
                         stdin=subprocess.DEVNULL, env=dict(os.environ, TERM="xterm"))
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    p.communicate(timeout=TIMEOUT)
    os.close(master)
    text = seen.decode("utf-8", "replace")
    expect("12/12 images" in text and "/s" in text and "left" in text, "no progress bar on a terminal: %r" % text)


@check
def activations_grid_has_zeros_black_and_only_zeros():
    t = Tiny.get()
    with tempfile.TemporaryDirectory() as tmp:
        path, pixels = t.images[0][0], t.images[0][2]
        outs = reference(pixels)[0]
        grid = os.path.join(tmp, "g.png")
        doc = json.loads(ok("activations", t.model, path, "--layer", "relu", "-o", grid, "--json"))
        zeros = sum(v == 0 for v in outs["relu"])
        expect(doc["zeros"] == zeros and doc["maps"] == COUT, "activations %r, reference zeros %d" % (doc, zeros))
        w, h, c, rows = read_png(grid)
        black = sum(1 for row in rows for i in range(0, len(row), 3) if row[i:i + 3] == [0, 0, 0])
        zoom = min(16, 768 // (2 * W))  # 2 maps a row, magnified to about 768 pixels
        expect(black == zeros * zoom * zoom, "%d black pixels, want %d zeros x %d^2" % (black, zeros, zoom))
        rc, _, err = run("activations", t.model, path, "--layer", "nope", "-o", grid)
        expect(rc == 1 and "nope" in err, err)


@check
def new_activations_exact_zeros_against_near_zeros():
    with tempfile.TemporaryDirectory() as tmp:
        folder = os.path.join(tmp, "acts")
        os.makedirs(folder)
        model = {"format": "rectify", "version": 1, "name": "acts", "input": {"shape": [1, 4, 4]},
                 "layers": [{"name": "lrelu", "op": "leaky_relu", "slope": 0.001, "inputs": ["input"]},
                            {"name": "tanh", "op": "tanh", "inputs": ["input"]},
                            {"name": "sig", "op": "sigmoid", "inputs": ["input"]},
                            {"name": "relu", "op": "relu", "inputs": ["input"]}],
                 "outputs": ["lrelu", "tanh", "sig", "relu"]}
        with open(os.path.join(folder, "model.json"), "w") as f:
            json.dump(model, f)
        write_safetensors(os.path.join(folder, "weights.safetensors"), [])
        img = os.path.join(tmp, "i.png")
        write_png(img, [0, 0, 0, 0] + [3] * 12, 4, 4)   # 4 zeros, 12 threes (no preprocess: 0 and 3)
        doc = report(folder, img, "--eps", "0.01")
        by = {l["name"]: l for l in doc["layers"]}
        expect(by["relu"]["zeros"] == 4 and by["tanh"]["zeros"] == 4 and by["lrelu"]["zeros"] == 4,
               "exact zeros %r" % {k: v["zeros"] for k, v in by.items()})
        expect(by["sig"]["zeros"] == 0 and by["sig"]["near_zeros"] == 0, "sigmoid %r" % by["sig"])
        expect(by["tanh"]["near_zeros"] == 4, "tanh near %r" % by["tanh"])


@check
def he_init_gives_half_zeros_after_each_relu():
    """He (or Xavier) weights and zero biases: each ReLU's input is symmetric
    about 0, so about half its outputs are zero; a positive bias lowers that."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = os.path.join(tmp, "net")
        os.makedirs(folder)
        layers = [{"name": "c1", "op": "conv", "out_channels": 16, "kernel": 3, "padding": 1},
                  {"name": "r1", "op": "relu"},
                  {"name": "c2", "op": "conv", "out_channels": 16, "kernel": 3, "padding": 1},
                  {"name": "r2", "op": "relu"}, {"name": "p", "op": "maxpool", "kernel": 2},
                  {"name": "f", "op": "flatten"}, {"name": "d1", "op": "dense", "units": 256},
                  {"name": "r3", "op": "relu"}, {"name": "d2", "op": "dense", "units": 256},
                  {"name": "r4", "op": "relu"}]
        model = {"format": "rectify", "version": 1, "name": "he",
                 "input": {"shape": [3, 16, 16], "preprocess": {"color": "rgb", "scale": 1 / 255,
                                                                "mean": [0.5] * 3, "std": [0.29] * 3}},
                 "layers": layers}
        with open(os.path.join(folder, "model.json"), "w") as f:
            json.dump(model, f)
        r = random.Random(5)
        data = os.path.join(tmp, "noise")
        os.makedirs(data)
        for i in range(6):
            write_png(os.path.join(data, "n%d.png" % i), [r.randrange(256) for _ in range(16 * 16 * 3)], 16, 16, 3)
        sparsity = {}
        for init, bias in (("he", 0), ("xavier", 0), ("he", 0.5)):
            w = os.path.join(tmp, "w-%s-%s.safetensors" % (init, bias))
            ok("init", folder, "-o", w, "--init", init, "--bias", bias, "--seed", 3)
            doc = report(folder, data, "--weights", w)
            sparsity[init, bias] = [l["mean"] for l in doc["layers"] if l["op"] == "relu"]
            if bias == 0:
                expect(all(0.4 <= s <= 0.6 for s in sparsity[init, bias]),
                       "%s, bias 0: ReLU sparsity %r, want about 0.5" % (init, sparsity[init, bias]))
        expect(all(b < min(a, 0.47) for a, b in zip(sparsity["he", 0], sparsity["he", 0.5])),
               "bias 0.5 should make fewer zeros: %r then %r" % (sparsity["he", 0], sparsity["he", 0.5]))
        doc = json.loads(ok("init", folder, "-o", os.path.join(tmp, "x.safetensors"), "--init", "xavier", "--json"))
        d1 = next(t for t in doc["tensors"] if t["name"] == "d1.weight")
        expect(doc["init"] == "xavier" and abs(d1["std"] - math.sqrt(2 / (1024 + 256))) < 1e-15, "xavier std %r" % d1)
        rc, _, err = run("init", folder, "-o", os.path.join(tmp, "y"), "--init", "lecun")
        expect(rc == 2 and "--init" in err, "bad --init: %d %s" % (rc, err))


@check
def usage_errors():
    t = Tiny.get()
    for args, name in ((("--eps", "-1"), "--eps"), (("--png", "/tmp/x"), "--per-channel"),
                       (("--merge", "--per-channel"), "--merge")):
        rc, out, err = run("sparsity", t.model, t.data, *args)
        expect(rc == 2 and name in err and out == "", "%r: rc %d %s" % (args, rc, err))
    rc, _, err = run("sparsity", "--merge", os.path.join(t.model, "model.json"))
    expect(rc == 1 and "not a `rectify sparsity --json` report" in err, "merge of a model.json: %s" % err)


def main():
    passed = failed = 0
    for fn in CHECKS:
        try:
            fn()
            passed += 1
        except Failure as e:
            failed += 1
            print("FAIL %s: %s" % (fn.__name__, e))
        except Exception as e:  # a crash in a check is a failure of that check
            failed += 1
            print("FAIL %s: %s: %s" % (fn.__name__, type(e).__name__, e))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
