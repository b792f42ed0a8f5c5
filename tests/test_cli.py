#!/usr/bin/python3
"""End-to-end tests of the `rectify` command-line tool.

  test_cli.py RECTIFY SOURCE_ROOT

Runs the real binary through subprocess (each call with a timeout) on the
shipped models and samples, and checks what it prints, writes and returns.
Each check is one function; a failing check prints one line "FAIL name:
details". The last line is "N passed, N failed"; the exit status is 1 when a
check failed or none ran. Python 3 standard library only.
"""
import array
import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time

if len(sys.argv) != 3:
    print(__doc__, file=sys.stderr)
    sys.exit(2)

RECTIFY = os.path.abspath(sys.argv[1])
ROOT = os.path.abspath(sys.argv[2])
TIMEOUT = 60  # seconds per call; every call here takes well under one

# libgomp's threads spin while they wait for work; when the cores are busy
# (meson runs the other suites at the same time) each of the many small
# parallel regions then costs a time slice, and a 10-image run takes over a
# second instead of 0.05 s. Results do not depend on it; the time does.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

MODELS = os.path.join(ROOT, "models")
MNIST = os.path.join(MODELS, "lenet5-mnist")
LENET_GRAPH = os.path.join(MODELS, "lenet5")
SAMPLES = [os.path.join(MNIST, "samples", "digit-%d.png" % d) for d in range(10)]
USAGE, RUNTIME = 2, 1

# The tensors `init` must write for models/lenet5 (models/FORMAT.md, worked
# example), in the graph's order.
LENET_TENSORS = [
    ("conv1.weight", [6, 1, 5, 5]), ("conv1.bias", [6]),
    ("conv2.weight", [16, 6, 5, 5]), ("conv2.bias", [16]),
    ("fc1.weight", [120, 400]), ("fc1.bias", [120]),
    ("fc2.weight", [84, 120]), ("fc2.bias", [84]),
    ("fc3.weight", [10, 84]), ("fc3.bias", [10]),
]


# ---- the harness -------------------------------------------------------------

CHECKS = []


def check(fn):
    CHECKS.append(fn)
    return fn


class Failure(Exception):
    pass


def expect(condition, message):
    if not condition:
        raise Failure(message)


class Result:
    def __init__(self, args, rc, out, err):
        self.args, self.rc, self.out, self.err = args, rc, out, err

    def describe(self):
        return "rectify %s -> exit %s, stdout %r, stderr %r" % (
            " ".join(self.args), self.rc, clip(self.out), clip(self.err))


def clip(text, limit=300):
    return text if len(text) <= limit else text[:limit] + "..."


_cache = {}


def rectify(*args, cwd=None, stdout=None):
    """Runs the tool; results of identical calls are shared (the tool is
    deterministic and the checks only read them)."""
    args = tuple(str(a) for a in args)
    key = (args, cwd)
    if stdout is None and key in _cache:
        return _cache[key]
    try:
        p = subprocess.run([RECTIFY, *args], cwd=cwd, timeout=TIMEOUT,
                           stdout=stdout if stdout is not None else subprocess.PIPE,
                           stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise Failure("rectify %s: no answer within %d s" % (" ".join(args), TIMEOUT))
    out = p.stdout.decode("utf-8", "replace") if p.stdout is not None else ""
    result = Result(args, p.returncode, out, p.stderr.decode("utf-8", "replace"))
    if stdout is None:
        _cache[key] = result
    return result


def succeeds(*args, cwd=None):
    """A call that must exit 0 with nothing on stderr."""
    r = rectify(*args, cwd=cwd)
    expect(r.rc == 0 and r.err == "", "expected success: " + r.describe())
    return r


def parse_json(r):
    """stdout must be exactly one JSON document."""
    try:
        return json.loads(r.out)
    except ValueError as e:
        raise Failure("stdout is not one JSON document (%s): %s" % (e, r.describe()))


def json_of(*args, cwd=None):
    return parse_json(succeeds(*args, "--json", cwd=cwd))


def fails(expected_rc, *args, cwd=None, names=None):
    """A call that must fail with `expected_rc`, nothing on stdout, and a
    message on stderr starting with "rectify:" (naming `names` if given)."""
    r = rectify(*args, cwd=cwd)
    expect(r.rc == expected_rc, "expected exit %d: %s" % (expected_rc, r.describe()))
    expect(r.out == "", "expected nothing on stdout: " + r.describe())
    expect(r.err.startswith("rectify:"), "stderr should start with 'rectify:': " + r.describe())
    if names is not None:
        expect(names in r.err, "stderr should name %r: %s" % (names, r.describe()))
    return r


def product(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def load_json_file(path):
    with open(path) as f:
        return json.load(f)


def layer_inputs(model_json):
    """Each layer's first input by name (the previous layer by default)."""
    inputs, previous = {}, model_json["input"].get("name", "input")
    for layer in model_json["layers"]:
        inputs[layer["name"]] = layer.get("inputs", [previous])[0]
        previous = layer["name"]
    return inputs


def float32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def read_safetensors(path):
    """(header without __metadata__, metadata, {name: array('f')})."""
    with open(path, "rb") as f:
        blob = f.read()
    expect(len(blob) >= 8, "%s: shorter than 8 bytes" % path)
    (n,) = struct.unpack("<Q", blob[:8])
    expect(8 + n <= len(blob), "%s: header length %d past the end" % (path, n))
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    metadata = header.pop("__metadata__", {})
    data = blob[8 + n:]
    tensors, spans = {}, []
    for name, entry in header.items():
        expect(sorted(entry) == ["data_offsets", "dtype", "shape"],
               "%s: tensor %s has keys %s" % (path, name, sorted(entry)))
        expect(entry["dtype"] == "F32", "%s: tensor %s is %s" % (path, name, entry["dtype"]))
        begin, end = entry["data_offsets"]
        expect(end - begin == 4 * product(entry["shape"]),
               "%s: tensor %s: %d bytes for shape %s" % (path, name, end - begin, entry["shape"]))
        values = array.array("f")
        values.frombytes(data[begin:end])
        if sys.byteorder != "little":
            values.byteswap()
        tensors[name] = values
        spans.append((begin, end))
    spans.sort()
    position = 0
    for begin, end in spans:  # contiguous, no overlap, covering the data area
        expect(begin == position, "%s: gap or overlap at byte %d" % (path, position))
        position = end
    expect(position == len(data), "%s: data area %d bytes, tensors cover %d"
           % (path, len(data), position))
    return header, metadata, tensors


def listing(folder):
    return sorted(os.listdir(folder))


def temp_model(source=LENET_GRAPH):
    """A temporary folder holding a copy of `source`/model.json."""
    folder = tempfile.TemporaryDirectory(prefix="rectify-cli-")
    with open(os.path.join(source, "model.json"), "rb") as f:
        text = f.read()
    with open(os.path.join(folder.name, "model.json"), "wb") as f:
        f.write(text)
    return folder


def readme_options():
    """{command: options} from README.md's command-line block, plus the
    options every command takes ("Every command takes `--help`, ...")."""
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    section = text.split("## The command line", 1)[1]
    block = section.split("```", 2)[1]
    commands = {}
    for line in block.splitlines():
        m = re.match(r"\s*rectify (\w+) (.*)", line)
        if m:
            commands[m.group(1)] = set(re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", m.group(2)))
    common = re.search(r"Every command takes(.*?)\.", section, re.S)
    expect(common is not None and commands, "README.md: command-line section not understood")
    shared = set(re.findall(r"`(--[a-z]+)", common.group(1)))
    expect(shared, "README.md: no common options found")
    return commands, shared


# ---- run --------------------------------------------------------------------

def run_all(*extra):
    return json_of("run", MNIST, *SAMPLES, *extra)


def top_of(doc):
    return [image["top"] for image in doc["images"]]


@check
def run_json_is_one_document():
    doc = run_all()
    expect(doc.get("model") == "lenet5-mnist", "model %r" % doc.get("model"))
    expect([i["path"] for i in doc["images"]] == SAMPLES,
           "images: %s" % [i.get("path") for i in doc["images"]])
    expect(doc.get("failed") == [], "failed: %r" % doc.get("failed"))


@check
def run_top1_is_the_digit():
    for path, top in zip(SAMPLES, top_of(run_all())):
        digit = int(os.path.basename(path)[len("digit-")])
        expect(top[0]["index"] == digit and top[0]["label"] == str(digit),
               "%s: top-1 %r" % (os.path.basename(path), top[0]))


@check
def run_probabilities_in_unit_interval():
    for path, top in zip(SAMPLES, top_of(run_all("--top", 10))):
        probs = [t["probability"] for t in top]
        expect(all(0.0 <= p <= 1.0 for p in probs), "%s: %s" % (path, probs))
        expect(abs(sum(probs) - 1.0) < 1e-4, "%s: all 10 sum to %r" % (path, sum(probs)))


@check
def run_top_list_sorted():
    for path, top in zip(SAMPLES, top_of(run_all("--top", 10))):
        probs = [t["probability"] for t in top]
        expect(probs == sorted(probs, reverse=True), "%s: not sorted: %s" % (path, probs))
        expect(sorted(t["index"] for t in top) == list(range(10)),
               "%s: indices %s" % (path, [t["index"] for t in top]))
        expect(all(t["label"] == str(t["index"]) for t in top), "%s: labels %s" % (path, top))


@check
def run_default_top_is_5():
    expect(all(len(top) == 5 for top in top_of(run_all())),
           "lengths %s" % [len(t) for t in top_of(run_all())])


@check
def run_top_k_respected():
    full = top_of(run_all("--top", 10))
    for k in (1, 3, 7, 10):
        tops = top_of(run_all("--top", k))
        expect(all(len(t) == k for t in tops), "--top %d: lengths %s" % (k, [len(t) for t in tops]))
        expect(all(t == f[:k] for t, f in zip(tops, full)), "--top %d is not a prefix of --top 10" % k)


@check
def run_top_capped_at_output_size():
    full = top_of(run_all("--top", 10))
    for k in (11, 1000, 2147483647):
        tops = top_of(run_all("--top", k))
        expect(tops == full, "--top %d: lengths %s" % (k, [len(t) for t in tops]))


@check
def run_top_inline_value_and_last_wins():
    expect(top_of(run_all("--top=3")) == top_of(run_all("--top", 3)), "--top=3 differs from --top 3")
    expect(top_of(run_all("--top", 8, "--top", 2)) == top_of(run_all("--top", 2)),
           "the last --top should win")


@check
def run_threads_do_not_change_results():
    one = run_all("--threads", 1, "--top", 10, "--sparsity")
    two = run_all("--threads", 2, "--top", 10, "--sparsity")
    for a, b in zip(one["images"], two["images"]):
        expect([t["index"] for t in a["top"]] == [t["index"] for t in b["top"]],
               "%s: ranking differs with 1 and 2 threads" % a["path"])
        for x, y in zip(a["top"], b["top"]):
            expect(abs(x["probability"] - y["probability"]) <= 1e-6,
                   "%s: %r vs %r" % (a["path"], x, y))
        expect(a["sparsity"] == b["sparsity"], "%s: sparsity differs with 1 and 2 threads" % a["path"])


@check
def run_human_output():
    r = succeeds("run", MNIST, SAMPLES[3], SAMPLES[7], "--top", 2)
    expect(SAMPLES[3] in r.out and SAMPLES[7] in r.out, "paths missing: " + r.describe())
    expect("probability" in r.out, "no probability column: " + r.describe())
    expect(not r.out.lstrip().startswith("{"), "JSON without --json: " + r.describe())


@check
def run_without_sparsity_has_no_sparsity():
    expect(all("sparsity" not in i for i in run_all()["images"]), "sparsity without --sparsity")


# ---- run --sparsity -----------------------------------------------------------

def mnist_layers():
    return load_json_file(os.path.join(MNIST, "model.json"))["layers"]


@check
def run_sparsity_per_image_layers():
    names = [l["name"] for l in mnist_layers()]
    for image in run_all("--sparsity")["images"]:
        layers = image.get("sparsity")
        expect(isinstance(layers, list), "%s: no sparsity list" % image["path"])
        expect([l["name"] for l in layers] == names,
               "%s: layers %s" % (image["path"], [l["name"] for l in layers]))
        for l in layers:
            expect(l["elements"] == product(l["shape"]), "%s: %r" % (image["path"], l))
            expect(0 <= l["zeros"] <= l["elements"], "%s: %r" % (image["path"], l))
            expect(l["sparsity"] == l["zeros"] / l["elements"], "%s: %r" % (image["path"], l))


@check
def run_sparsity_matches_sparsity_per_image():
    for image in run_all("--sparsity")["images"]:
        single = json_of("sparsity", MNIST, image["path"])
        expect(single["images"] == 1, "sparsity of %s: images %r" % (image["path"], single["images"]))
        theirs = {l["name"]: l["zeros"] for l in single["layers"]}
        relus = 0
        for l in image["sparsity"]:
            if l["op"] == "relu":
                relus += 1
                expect(l["zeros"] == theirs[l["name"]], "%s: %s: run says %d zeros, sparsity %d"
                       % (image["path"], l["name"], l["zeros"], theirs[l["name"]]))
            expect(l["zeros"] == theirs[l["name"]], "%s: %s (%s): run %d zeros, sparsity %d"
                   % (image["path"], l["name"], l["op"], l["zeros"], theirs[l["name"]]))
        expect(relus == 4, "%d relu layers, expected 4" % relus)


@check
def run_sparsity_sums_to_sparsity_totals():
    images = run_all("--sparsity")["images"]
    total = json_of("sparsity", MNIST, *SAMPLES)
    for i, layer in enumerate(total["layers"]):
        zeros = sum(image["sparsity"][i]["zeros"] for image in images)
        elements = sum(image["sparsity"][i]["elements"] for image in images)
        expect((zeros, elements) == (layer["zeros"], layer["elements"]),
               "%s: images sum to %d/%d, sparsity says %d/%d"
               % (layer["name"], zeros, elements, layer["zeros"], layer["elements"]))


@check
def run_sparsity_does_not_change_top():
    expect(top_of(run_all("--sparsity")) == top_of(run_all()), "--sparsity changes the top lists")


# ---- sparsity -------------------------------------------------------------------

def sparsity_all(*extra):
    return json_of("sparsity", MNIST, *SAMPLES, *extra)


@check
def sparsity_json_document():
    doc = sparsity_all()
    expect(doc["model"] == "lenet5-mnist" and doc["images"] == 10 and doc["failed"] == [],
           "model/images/failed: %r %r %r" % (doc["model"], doc["images"], doc["failed"]))
    expect([l["name"] for l in doc["layers"]] == [l["name"] for l in mnist_layers()],
           "layer names %s" % [l["name"] for l in doc["layers"]])
    expect([l["op"] for l in doc["layers"]] == [l["op"] for l in mnist_layers()],
           "layer ops %s" % [l["op"] for l in doc["layers"]])


@check
def sparsity_elements_are_per_image_times_images():
    doc = sparsity_all()
    for l in doc["layers"]:
        expect(l["elements"] == product(l["shape"]) * doc["images"],
               "%s: %d elements, shape %s x %d images" % (l["name"], l["elements"], l["shape"], doc["images"]))
        expect(0 <= l["zeros"] <= l["elements"], "%r" % l)
        expect(l["sparsity"] == l["zeros"] / l["elements"], "%s: sparsity %r" % (l["name"], l["sparsity"]))


@check
def sparsity_min_mean_max():
    for l in sparsity_all()["layers"]:
        expect(0.0 <= l["min"] <= l["mean"] <= l["max"] <= 1.0,
               "%s: min %r mean %r max %r" % (l["name"], l["min"], l["mean"], l["max"]))


@check
def sparsity_spread_matches_per_image_runs():
    per_image = [image["sparsity"] for image in run_all("--sparsity")["images"]]
    for i, l in enumerate(sparsity_all()["layers"]):
        values = [layers[i]["zeros"] / layers[i]["elements"] for layers in per_image]
        expect(l["min"] == min(values) and l["max"] == max(values),
               "%s: min %r max %r, per image %s" % (l["name"], l["min"], l["max"], values))
        expect(abs(l["mean"] - sum(values) / len(values)) <= 1e-12,
               "%s: mean %r, per image %r" % (l["name"], l["mean"], sum(values) / len(values)))


@check
def sparsity_relu_and_total_fractions():
    doc = sparsity_all()
    relu = [l for l in doc["layers"] if l["op"] == "relu"]
    expect(len(relu) == 4, "%d relu layers" % len(relu))
    want = sum(l["zeros"] for l in relu) / sum(l["elements"] for l in relu)
    expect(abs(doc["relu_sparsity"] - want) <= 1e-15,
           "relu_sparsity %r, layers give %r" % (doc["relu_sparsity"], want))
    want = sum(l["zeros"] for l in doc["layers"]) / sum(l["elements"] for l in doc["layers"])
    expect(abs(doc["total_sparsity"] - want) <= 1e-15,
           "total_sparsity %r, layers give %r" % (doc["total_sparsity"], want))


@check
def sparsity_relu_at_least_its_input():
    model = load_json_file(os.path.join(MNIST, "model.json"))
    inputs = layer_inputs(model)
    doc = sparsity_all()
    by_name = {l["name"]: l for l in doc["layers"]}
    for l in doc["layers"]:
        source = by_name.get(inputs[l["name"]])
        if source is None:
            continue
        if l["op"] == "relu":
            # relu zeroes every zero it is given, and more
            expect(l["zeros"] >= source["zeros"] and l["zeros"] > 0,
                   "%s: %d zeros < %d of %s" % (l["name"], l["zeros"], source["zeros"], source["name"]))
        if l["op"] == "flatten":  # a copy: the same zeros
            expect(l["zeros"] == source["zeros"],
                   "%s: %d zeros, its input %s %d" % (l["name"], l["zeros"], source["name"], source["zeros"]))


@check
def sparsity_threads_identical():
    one, two, default = sparsity_all("--threads", 1), sparsity_all("--threads", 2), sparsity_all()
    expect(one == two, "--threads 1 and --threads 2 differ")
    expect(one == default, "--threads 1 and the default differ")


@check
def sparsity_human_output():
    r = succeeds("sparsity", MNIST, *SAMPLES[:3])
    expect("ReLU outputs:" in r.out and "All layers:" in r.out and "relu2" in r.out,
           "summary lines missing: " + r.describe())


# ---- summary --------------------------------------------------------------------

EXPECTED_COSTS = load_json_file(os.path.join(ROOT, "tests", "data", "expected_costs.json"))


def make_summary_check(name):
    def summary_check():
        folder = os.path.join(MODELS, name)
        doc = json_of("summary", folder)
        want = EXPECTED_COSTS[name]
        expect((doc["params"], doc["macs"]) == (want["params"], want["macs"]),
               "params %r macs %r, expected %r %r" % (doc["params"], doc["macs"], want["params"], want["macs"]))
        layers = load_json_file(os.path.join(folder, "model.json"))["layers"]
        expect(len(doc["layers"]) == len(layers),
               "%d layers, model.json has %d" % (len(doc["layers"]), len(layers)))
        expect([l["name"] for l in doc["layers"]] == [l["name"] for l in layers], "layer names differ")
        expect(doc["activation_bytes_planned"] < doc["activation_bytes_unplanned"],
               "planned %r not below unplanned %r"
               % (doc["activation_bytes_planned"], doc["activation_bytes_unplanned"]))
        expect(sum(l["params"] for l in doc["layers"]) == doc["params"], "layer params do not sum up")
        expect(sum(l["macs"] for l in doc["layers"]) == doc["macs"], "layer MACs do not sum up")
        expect(doc["weight_bytes"] == 4 * doc["params"], "weight_bytes %r" % doc["weight_bytes"])
    summary_check.__name__ = "summary_costs_" + name
    return summary_check


for _name in ("alexnet", "vgg11", "vgg16", "lenet5"):
    check(make_summary_check(_name))


@check
def summary_lenet5_layers_as_format_md():
    # models/FORMAT.md, worked example: output shape, params, MACs per layer
    want = [([6, 28, 28], 156, 117600), ([6, 28, 28], 0, 0), ([6, 14, 14], 0, 0),
            ([16, 10, 10], 2416, 240000), ([16, 10, 10], 0, 0), ([16, 5, 5], 0, 0),
            ([400], 0, 0), ([120], 48120, 48000), ([120], 0, 0), ([84], 10164, 10080),
            ([84], 0, 0), ([10], 850, 840), ([10], 0, 0)]
    doc = json_of("summary", LENET_GRAPH)
    got = [(l["shape"], l["params"], l["macs"]) for l in doc["layers"]]
    expect(got == want, "layers %s" % got)
    expect(doc["input_shape"] == [1, 28, 28], "input_shape %r" % doc["input_shape"])
    expect([l["in_place"] for l in doc["layers"] if l["op"] == "relu"] == [True] * 4,
           "relus should run in place")


@check
def summary_human_output():
    r = succeeds("summary", LENET_GRAPH)
    expect("Params:" in r.out and "conv1" in r.out and "MACs" in r.out, r.describe())


@check
def summary_needs_no_weights_but_works_with_them():
    a = json_of("summary", MNIST)
    b = json_of("summary", LENET_GRAPH)
    expect((a["params"], a["macs"]) == (b["params"], b["macs"]),
           "lenet5-mnist and lenet5 differ: %r %r" % ((a["params"], a["macs"]), (b["params"], b["macs"])))


# ---- init -----------------------------------------------------------------------

def init_file(folder, name, *extra):
    path = os.path.join(folder, name)
    r = succeeds("init", folder, "-o", path, *extra)
    expect(os.path.isfile(path), "no file written: " + r.describe())
    with open(path, "rb") as f:
        return path, f.read()


@check
def init_writes_a_file():
    with temp_model() as folder:
        path, _ = init_file(folder, "w.safetensors", "--seed", 1)
        r = rectify("init", folder, "-o", path, "--seed", 1)
        expect(path in r.out, "human output should name the file: " + r.describe())
        expect(listing(folder) == ["model.json", "w.safetensors"], "folder holds %s" % listing(folder))


@check
def init_same_seed_same_bytes():
    with temp_model() as folder:
        _, a = init_file(folder, "a.safetensors", "--seed", 42)
        _, b = init_file(folder, "b.safetensors", "--seed", 42)
        expect(a == b, "two files with seed 42 differ")
        _, c = init_file(folder, "a.safetensors", "--seed", 42)  # replaces a.safetensors
        expect(a == c, "rewriting the file with seed 42 changed it")
        _, d = init_file(folder, "d.safetensors", "--seed", 42, "--threads", 1)
        expect(a == d, "--threads 1 changed the file")
        expect(listing(folder) == ["a.safetensors", "b.safetensors", "d.safetensors", "model.json"],
               "folder holds %s" % listing(folder))


@check
def init_other_seed_differs():
    with temp_model() as folder:
        _, a = init_file(folder, "a.safetensors", "--seed", 42)
        _, b = init_file(folder, "b.safetensors", "--seed", 43)
        _, c = init_file(folder, "c.safetensors")  # default seed 0
        _, z = init_file(folder, "z.safetensors", "--seed", 0)
        expect(len(a) == len(b) and a != b, "seeds 42 and 43 give the same file")
        expect(c == z, "the default seed should be 0")
        expect(c != a, "seeds 0 and 42 give the same file")


@check
def init_safetensors_layout():
    with temp_model() as folder:
        path, blob = init_file(folder, "w.safetensors", "--seed", 7, "--bias", 0.25)
        header, metadata, tensors = read_safetensors(path)
        expect([(k, v["shape"]) for k, v in header.items()] == LENET_TENSORS,
               "tensors %s" % [(k, v["shape"]) for k, v in header.items()])
        (n,) = struct.unpack("<Q", blob[:8])
        expect(n % 8 == 0, "header length %d not a multiple of 8" % n)
        expect(metadata.get("seed") == "7" and float(metadata.get("bias", "nan")) == 0.25,
               "metadata %r" % metadata)
        for name, values in tensors.items():
            expect(all(math.isfinite(v) for v in values), "%s: not finite" % name)


@check
def init_weight_statistics():
    with temp_model() as folder:
        path, _ = init_file(folder, "w.safetensors", "--seed", 12345)
        header, _, tensors = read_safetensors(path)
        checked = 0
        for name, values in tensors.items():
            if name.endswith(".bias") or len(values) < 1000:
                continue
            fan_in = product(header[name]["shape"][1:])
            want = math.sqrt(2.0 / fan_in)
            mean = sum(values) / len(values)
            std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
            expect(abs(std - want) <= 0.1 * want, "%s: std %.5f, He wants %.5f" % (name, std, want))
            expect(abs(mean) <= 0.1 * want, "%s: mean %.5f, std %.5f" % (name, mean, want))
            checked += 1
        expect(checked == 3, "%d weight tensors of >= 1000 elements, expected 3" % checked)


@check
def init_biases_equal_bias_option():
    with temp_model() as folder:
        for bias in ("0.1", "-0.5", "0", "1e-3"):
            path, _ = init_file(folder, "w.safetensors", "--bias", bias)
            _, metadata, tensors = read_safetensors(path)
            want = float32(float(bias))
            for name, values in tensors.items():
                if name.endswith(".bias"):
                    expect(all(v == want for v in values),
                           "--bias %s: %s holds %s" % (bias, name, sorted(set(values))[:5]))
                else:
                    expect(len(set(values)) > 1, "--bias %s: %s is constant" % (bias, name))
        expect(listing(folder) == ["model.json", "w.safetensors"], "folder holds %s" % listing(folder))


@check
def init_json_output():
    with temp_model() as folder:
        path = os.path.join(folder, "w.safetensors")
        doc = json_of("init", folder, "-o", path, "--seed", 18446744073709551615, "--bias", 0.5)
        header, _, _ = read_safetensors(path)
        expect(doc["path"] == path and doc["seed"] == "18446744073709551615" and doc["bias"] == 0.5,
               "path/seed/bias %r %r %r" % (doc["path"], doc["seed"], doc["bias"]))
        expect(doc["params"] == EXPECTED_COSTS["lenet5"]["params"], "params %r" % doc["params"])
        expect(doc["tensor_count"] == len(LENET_TENSORS) == len(doc["tensors"]),
               "tensor_count %r" % doc["tensor_count"])
        expect(doc["bytes"] == os.path.getsize(path), "bytes %r, file %d" % (doc["bytes"], os.path.getsize(path)))
        for entry, (name, shape) in zip(doc["tensors"], LENET_TENSORS):
            expect(entry["name"] == name and entry["shape"] == shape and entry["elements"] == product(shape),
                   "tensor entry %r" % entry)
            if name.endswith(".bias"):
                expect(entry.get("value") == 0.5, "%r" % entry)
            else:
                want = math.sqrt(2.0 / product(shape[1:]))
                expect(abs(entry.get("std", -1) - want) <= 1e-12, "%r: std should be %r" % (entry, want))


@check
def init_then_run_with_weights():
    with temp_model() as folder:
        path, _ = init_file(folder, "w.safetensors", "--seed", 3, "--bias", 0.01)
        doc = json_of("run", folder, SAMPLES[4], "--weights", path, "--top", 10, "--sparsity")
        top = doc["images"][0]["top"]
        probs = [t["probability"] for t in top]
        expect(len(top) == 10 and all(0.0 <= p <= 1.0 for p in probs) and abs(sum(probs) - 1) < 1e-4,
               "top %r" % top)
        expect(all("label" in t and t["label"] is None for t in top), "a model without labels: %r" % top[0])
        relus = [l for l in doc["images"][0]["sparsity"] if l["op"] == "relu"]
        expect(len(relus) == 4, "sparsity %r" % doc["images"][0]["sparsity"])
        # relative to the working directory, like any path
        again = json_of("run", ".", SAMPLES[4], "--weights", "w.safetensors", "--top", 10, "--sparsity",
                        cwd=folder)
        expect(again["images"][0]["top"] == top, "relative --weights gives other results")


@check
def init_then_sparsity_with_weights():
    with temp_model() as folder:
        path, _ = init_file(folder, "w.safetensors", "--seed", 3)
        doc = json_of("sparsity", folder, *SAMPLES[:4], "--weights", path)
        expect(doc["images"] == 4 and doc["relu_sparsity"] is not None, "doc %r" % clip(str(doc)))
        r = rectify("sparsity", folder, SAMPLES[0])  # model.json's own weights file is missing
        expect(r.rc == RUNTIME and r.out == "" and "weights.safetensors" in r.err,
               "without --weights: " + r.describe())


@check
def run_without_softmax_shows_values():
    with tempfile.TemporaryDirectory(prefix="rectify-cli-") as folder:
        model = load_json_file(os.path.join(LENET_GRAPH, "model.json"))
        model["layers"] = [l for l in model["layers"] if l["op"] != "softmax"]
        model["outputs"] = ["fc3"]
        with open(os.path.join(folder, "model.json"), "w") as f:
            json.dump(model, f)
        path, _ = init_file(folder, "weights.safetensors", "--seed", 11)
        doc = json_of("run", folder, SAMPLES[0], "--top", 10)
        top = doc["images"][0]["top"]
        expect(len(top) == 10 and all("value" in t and "probability" not in t for t in top),
               "top %r" % top)
        values = [t["value"] for t in top]
        expect(values == sorted(values, reverse=True), "not sorted: %s" % values)
        r = succeeds("run", folder, SAMPLES[0])
        expect("value" in r.out and "probability" not in r.out, r.describe())


@check
def init_into_missing_directory_fails_cleanly():
    with temp_model() as folder:
        target = os.path.join(folder, "no-such-dir", "w.safetensors")
        fails(RUNTIME, "init", folder, "-o", target, names=target)
        fails(RUNTIME, "init", folder, "-o", target, "--json", names=target)
        expect(listing(folder) == ["model.json"], "folder holds %s" % listing(folder))


@check
def init_onto_a_directory_leaves_no_temp_file():
    with temp_model() as folder:
        os.mkdir(os.path.join(folder, "out"))
        r = rectify("init", folder, "-o", os.path.join(folder, "out"))
        expect(r.rc == RUNTIME and r.out == "" and r.err.startswith("rectify:"), r.describe())
        expect(listing(folder) == ["model.json", "out"] and listing(os.path.join(folder, "out")) == [],
               "left behind: %s" % listing(folder))


@check
def init_usage_errors():
    with temp_model() as folder:
        out = os.path.join(folder, "w.safetensors")
        fails(USAGE, "init", folder, names="-o")                      # no output
        fails(USAGE, "init", folder, "-o", "")
        for seed in ("x", "-1", "1.5", "", " 1", "18446744073709551616", "0x10"):
            fails(USAGE, "init", folder, "-o", out, "--seed", seed, names="--seed")
        for bias in ("x", "nan", "inf", "", "1e999", "0.5x"):
            fails(USAGE, "init", folder, "-o", out, "--bias", bias, names="--bias")
        fails(USAGE, "init", folder, "extra", "-o", out)
        expect(listing(folder) == ["model.json"], "folder holds %s" % listing(folder))


@check
def init_graph_of_trained_model():
    # init reads the graph only; the weights of lenet5-mnist are not needed
    with tempfile.TemporaryDirectory(prefix="rectify-cli-") as folder:
        a = os.path.join(folder, "a.safetensors")
        b = os.path.join(folder, "b.safetensors")
        succeeds("init", MNIST, "-o", a, "--seed", 5)
        with temp_model() as graph:
            succeeds("init", graph, "-o", b, "--seed", 5)
        with open(a, "rb") as fa, open(b, "rb") as fb:
            expect(fa.read() == fb.read(), "lenet5-mnist and lenet5 graphs give different files")


# ---- bench ------------------------------------------------------------------------
# Times vary from run to run and the machine is shared: these checks hold the
# figures to each other and to `summary` and `run`, never to a time limit.

BENCH_KEYS = {
    "model", "version", "weights", "batch", "threads", "input", "image", "load_ms", "session_ms",
    "first_run_ms", "warmup", "runs", "min_runs", "min_seconds", "timed_ms", "median_ms", "min_ms",
    "max_ms", "mean_ms", "median_cpu_ms", "samples_per_s", "macs", "gflops", "peak_rss_bytes",
    "rss_bytes", "peak_rss_end_bytes", "weights_file_bytes", "weight_bytes", "model_bytes", "session_bytes",
    "activation_bytes_planned", "layers", "layer_sum_ms",
}
BENCH_LAYER_KEYS = {"index", "name", "op", "fused_into", "macs", "median_ms", "min_ms", "share", "gflops",
                    "zeros", "elements", "sparsity"}
DIGIT3 = SAMPLES[3]


def bench(*extra):
    """A quick benchmark of lenet5-mnist: 5 runs, no time budget."""
    return json_of("bench", MNIST, "--runs", 5, "--seconds", 0, *extra)


def close(a, b, tolerance=1e-9):
    return abs(a - b) <= tolerance * max(abs(a), abs(b), 1e-300)


def is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


@check
def bench_json_document():
    # the call of the brief: default budget (>= 1 s), at least 5 runs
    doc = json_of("bench", MNIST, "--runs", 5)
    expect(set(doc) == BENCH_KEYS, "keys: missing %s, extra %s"
           % (sorted(BENCH_KEYS - set(doc)), sorted(set(doc) - BENCH_KEYS)))
    expect(doc["model"] == "lenet5-mnist" and doc["batch"] == 1 and doc["input"] == "random"
           and doc["image"] is None and doc["warmup"] == 1, "header: %s" % clip(json.dumps(doc)))
    expect(doc["weights"] == os.path.join(MNIST, "weights.safetensors"), "weights %r" % doc["weights"])
    for key in ("batch", "threads", "warmup", "runs", "min_runs", "macs", "peak_rss_bytes", "rss_bytes",
                "peak_rss_end_bytes", "weights_file_bytes", "weight_bytes", "model_bytes", "session_bytes",
                "activation_bytes_planned"):
        expect(is_int(doc[key]), "%s is not an integer: %r" % (key, doc[key]))
    expect(doc["runs"] >= 5 and doc["min_runs"] == 5 and doc["min_seconds"] == 1,
           "runs %r min_runs %r min_seconds %r" % (doc["runs"], doc["min_runs"], doc["min_seconds"]))
    # the loop stops only once both are done (or at its cap of 100000 runs)
    expect(doc["timed_ms"] >= 1000 or doc["runs"] == 100000,
           "%d runs in %r ms: stopped before --seconds 1" % (doc["runs"], doc["timed_ms"]))
    expect(doc["threads"] >= 1, "threads %r" % doc["threads"])
    expect(all(set(l) == BENCH_LAYER_KEYS for l in doc["layers"]),
           "layer keys %s" % [sorted(l) for l in doc["layers"] if set(l) != BENCH_LAYER_KEYS][:1])


@check
def vector_kernels():
    """Whether the engine runs AVX-512 or AVX2+FMA kernels here (kernels/select.c)."""
    if os.environ.get("RECTIFY_ISA") == "generic":
        return False
    try:
        flags = set(re.findall(r"^flags\s*:(.*)$", open("/proc/cpuinfo").read(), re.M)[0].split())
    except (OSError, IndexError):
        return False
    return "avx512f" in flags or {"avx2", "fma"} <= flags


def bench_layers_match_summary():
    doc, summary = bench(), json_of("summary", MNIST)
    expect(len(doc["layers"]) == len(summary["layers"]),
           "%d layers, summary has %d" % (len(doc["layers"]), len(summary["layers"])))
    for i, (mine, theirs) in enumerate(zip(doc["layers"], summary["layers"])):
        expect(mine["index"] == i and (mine["name"], mine["op"], mine["macs"])
               == (theirs["name"], theirs["op"], theirs["macs"]), "layer %d: %r vs %r" % (i, mine, theirs))
    # LeNet-5's ReLUs after its two convolutions run in them (with vector
    # kernels: the portable ones have no wide path) or else in the 2x2 max
    # pools after them, the others on their own
    fused = {l["name"]: l["fused_into"] for l in doc["layers"] if l["fused_into"] is not None}
    expect(fused == ({"relu1": "conv1", "relu2": "conv2"} if vector_kernels()
                     else {"relu1": "pool1", "relu2": "pool2"}) and all(
        doc["layers"][i]["median_ms"] == 0 for i, l in enumerate(doc["layers"]) if l["fused_into"]),
        "fused layers %r" % fused)
    expect(sum(l["macs"] for l in doc["layers"]) == summary["macs"] == doc["macs"],
           "MACs: layers sum to %d, total %d, summary %d"
           % (sum(l["macs"] for l in doc["layers"]), doc["macs"], summary["macs"]))
    expect(doc["weight_bytes"] == summary["weight_bytes"]
           and doc["activation_bytes_planned"] == summary["activation_bytes_planned"],
           "memory differs from summary's: %r %r" % (doc["weight_bytes"], doc["activation_bytes_planned"]))


@check
def bench_times_consistent():
    for doc in (bench(), bench("--batch", 3, "--threads", 1)):
        expect(doc["first_run_ms"] > 0 and doc["load_ms"] > 0 and doc["session_ms"] >= 0,
               "first %r load %r session %r" % (doc["first_run_ms"], doc["load_ms"], doc["session_ms"]))
        expect(0 < doc["min_ms"] <= doc["median_ms"] <= doc["max_ms"], "min %r median %r max %r"
               % (doc["min_ms"], doc["median_ms"], doc["max_ms"]))
        expect(doc["min_ms"] <= doc["mean_ms"] <= doc["max_ms"], "mean %r" % doc["mean_ms"])
        expect(doc["runs"] == 5 and doc["timed_ms"] >= 5 * doc["min_ms"],
               "%r runs in %r ms, each at least %r" % (doc["runs"], doc["timed_ms"], doc["min_ms"]))
        expect(doc["median_cpu_ms"] >= 0, "median_cpu_ms %r" % doc["median_cpu_ms"])
        batch = doc["batch"]
        expect(close(doc["gflops"], 2 * doc["macs"] * batch / (doc["median_ms"] / 1e3) / 1e9),
               "gflops %r for %d MACs x %d in %r ms" % (doc["gflops"], doc["macs"], batch, doc["median_ms"]))
        expect(close(doc["samples_per_s"], batch / (doc["median_ms"] / 1e3)),
               "samples_per_s %r" % doc["samples_per_s"])
        layer_sum = 0.0
        for l in doc["layers"]:
            expect(0 <= l["min_ms"] <= l["median_ms"], "%s: min %r median %r" % (l["name"], l["min_ms"], l["median_ms"]))
            expect(close(l["share"], l["median_ms"] / doc["median_ms"]), "%s: share %r" % (l["name"], l["share"]))
            if l["macs"] == 0 or l["median_ms"] == 0:
                expect(l["gflops"] is None, "%s: gflops %r without MACs" % (l["name"], l["gflops"]))
            else:
                expect(close(l["gflops"], 2 * l["macs"] * batch / (l["median_ms"] / 1e3) / 1e9),
                       "%s: gflops %r" % (l["name"], l["gflops"]))
            layer_sum += l["median_ms"]
        expect(close(doc["layer_sum_ms"], layer_sum, 1e-9), "layer_sum_ms %r, layers sum to %r"
               % (doc["layer_sum_ms"], layer_sum))


@check
def bench_memory_figures():
    doc = bench()
    if os.path.exists("/proc/self/status"):
        # VmHWM is a high-water mark: it never goes down
        expect(doc["peak_rss_end_bytes"] >= doc["peak_rss_bytes"] >= doc["rss_bytes"] > 0,
               "peak RSS at the end %r, before the timed runs %r, RSS %r"
               % (doc["peak_rss_end_bytes"], doc["peak_rss_bytes"], doc["rss_bytes"]))
    else:
        expect(doc["peak_rss_bytes"] is None and doc["rss_bytes"] is None
               and doc["peak_rss_end_bytes"] is None, "RSS without /proc")
    size = os.path.getsize(os.path.join(MNIST, "weights.safetensors"))
    expect(doc["weights_file_bytes"] == size, "weights_file_bytes %r, the file has %d"
           % (doc["weights_file_bytes"], size))
    expect(0 < doc["weight_bytes"] < size and doc["model_bytes"] >= doc["weight_bytes"],
           "weight_bytes %r model_bytes %r" % (doc["weight_bytes"], doc["model_bytes"]))
    expect(doc["session_bytes"] >= doc["activation_bytes_planned"] > 0,
           "session_bytes %r activations %r" % (doc["session_bytes"], doc["activation_bytes_planned"]))


@check
def bench_sparsity_per_layer():
    doc = bench("--batch", 2)
    relus = 0
    for l, shape in zip(doc["layers"], [l["shape"] for l in json_of("summary", MNIST)["layers"]]):
        expect(l["elements"] == 2 * product(shape), "%s: %d elements, shape %s x 2" % (l["name"], l["elements"], shape))
        expect(0 <= l["zeros"] <= l["elements"] and 0.0 <= l["sparsity"] <= 1.0
               and l["sparsity"] == l["zeros"] / l["elements"], "%s: %r" % (l["name"], l))
        if l["op"] == "relu":
            relus += 1
            # random input centred on 0: a ReLU zeroes some but not all
            expect(0.0 < l["sparsity"] < 1.0, "%s: sparsity %r" % (l["name"], l["sparsity"]))
    expect(relus == 4, "%d relu layers" % relus)


@check
def bench_input_is_fixed():
    zeros = [l["zeros"] for l in bench()["layers"]]
    expect(zeros == [l["zeros"] for l in bench("--threads", 1, "--runs", 1)["layers"]],
           "the random input differs between calls or thread counts")


@check
def bench_image_sparsity_matches_run():
    theirs = run_all("--sparsity")["images"][3]["sparsity"]
    for batch in (1, 3):
        doc = bench("--image", DIGIT3, "--batch", batch)
        expect(doc["input"] == "image" and doc["image"] == DIGIT3, "input %r image %r" % (doc["input"], doc["image"]))
        for mine, run in zip(doc["layers"], theirs):
            expect((mine["name"], mine["zeros"], mine["elements"])
                   == (run["name"], batch * run["zeros"], batch * run["elements"]),
                   "batch %d: %s: bench %d/%d zeros, run %d/%d" % (batch, mine["name"], mine["zeros"],
                   mine["elements"], run["zeros"], run["elements"]))
            expect(close(mine["sparsity"], run["sparsity"], 1e-15),
                   "%s: sparsity %r, run %r" % (mine["name"], mine["sparsity"], run["sparsity"]))


@check
def bench_human_output():
    r = succeeds("bench", MNIST, "--runs", 2, "--seconds", 0)
    for text in ("Model: lenet5-mnist", "Load:", "First run:", "Steady state:", "Throughput:",
                 "GFLOP/s", "Peak RSS:", "Weights file:", "weights.safetensors"):
        expect(text in r.out, "%r missing: %s" % (text, r.describe()))
    expect("relu1" not in r.out, "per-layer table without --per-layer: " + r.describe())
    r = succeeds("bench", MNIST, "--runs", 2, "--seconds", 0, "--per-layer")
    for l in mnist_layers():
        expect(re.search(r"^%s\s+%s\s" % (re.escape(l["name"]), l["op"]), r.out, re.M),
               "no row for %s: %s" % (l["name"], r.describe()))
    expect("sum of layers" in r.out, "no sum row: " + r.describe())


@check
def bench_graph_only_with_init_weights():
    with temp_model() as folder:
        fails(RUNTIME, "bench", folder, names="rectify init")
        fails(RUNTIME, "bench", folder, "--json", names="rectify init")
        path, _ = init_file(folder, "w.safetensors", "--seed", 3)
        doc = json_of("bench", folder, "--weights", path, "--runs", 1, "--seconds", 0)
        expect(doc["weights"] == path and doc["weights_file_bytes"] == os.path.getsize(path),
               "weights %r, %r bytes" % (doc["weights"], doc["weights_file_bytes"]))
        expect(listing(folder) == ["model.json", "w.safetensors"], "folder holds %s" % listing(folder))


@check
def bench_usage_errors():
    for value in ("0", "-1", "x", "1.5", "", "100001"):
        fails(USAGE, "bench", MNIST, "--runs", value, names="--runs")
    for value in ("abc", "-1", "nan", "inf", "", "1s", "86401"):
        fails(USAGE, "bench", MNIST, "--seconds", value, names="--seconds")
    for value in ("0", "-1", "x", "4097"):
        fails(USAGE, "bench", MNIST, "--batch", value, names="--batch")
    for value in ("-1", "x"):
        fails(USAGE, "bench", MNIST, "--warmup", value, names="--warmup")
    fails(USAGE, "bench", MNIST, "--image", "", names="--image")
    fails(USAGE, "bench", MNIST, "--weights", "", names="--weights")
    fails(USAGE, "bench", MNIST, "--per-layer=1", names="--per-layer")
    fails(USAGE, "bench", MNIST, "--top", 3, names="--top")
    fails(USAGE, "bench", MNIST, LENET_GRAPH, names=LENET_GRAPH)
    fails(USAGE, "bench")
    # a usage error is found before the model is loaded
    fails(USAGE, "bench", os.path.join(ROOT, "no-such-model"), "--runs", 0, names="--runs")


@check
def bench_runtime_errors():
    missing = os.path.join(ROOT, "no-such-image.png")
    fails(RUNTIME, "bench", MNIST, "--image", missing, names=missing)
    fails(RUNTIME, "bench", MNIST, "--image", os.path.join(MNIST, "model.json"), "--json", names="model.json")
    missing = os.path.join(ROOT, "no-such-weights.safetensors")
    fails(RUNTIME, "bench", MNIST, "--weights", missing, names=missing)


# ---- errors -----------------------------------------------------------------------

@check
def error_unknown_command():
    fails(USAGE, "frobnicate", names="frobnicate")
    fails(USAGE, "frobnicate", "--json")
    fails(USAGE, "RUN", MNIST, SAMPLES[0])


@check
def error_unknown_option():
    fails(USAGE, "run", MNIST, SAMPLES[0], "--frob", names="--frob")
    fails(USAGE, "run", "--frob", MNIST, SAMPLES[0], names="--frob")
    fails(USAGE, "sparsity", MNIST, SAMPLES[0], "--top", 3, names="--top")
    fails(USAGE, "summary", MNIST, "--sparsity", names="--sparsity")
    fails(USAGE, "summary", MNIST, "-x", names="-x")
    fails(USAGE, "init", LENET_GRAPH, "-o", "/nonexistent/x", "--weights", "w")
    fails(USAGE, "--frob", names="--frob")


@check
def error_missing_argument():
    fails(USAGE, "run", MNIST)
    fails(USAGE, "run")
    fails(USAGE, "sparsity", MNIST)
    fails(USAGE, "summary")
    fails(USAGE, "init")
    fails(USAGE, "run", MNIST, SAMPLES[0], "--top", names="--top")
    fails(USAGE, "run", MNIST, SAMPLES[0], "--threads", names="--threads")
    fails(USAGE, "run", MNIST, SAMPLES[0], "--weights", names="--weights")
    fails(USAGE, "init", LENET_GRAPH, "-o", names="-o")


@check
def error_extra_argument():
    fails(USAGE, "summary", MNIST, LENET_GRAPH, names=LENET_GRAPH)
    fails(USAGE, "help", "run", "sparsity")


@check
def error_bad_top():
    for value in ("x", "1.5", "", "3x", " 3", "0", "-1", "99999999999999999999", "2147483648"):
        fails(USAGE, "run", MNIST, SAMPLES[0], "--top", value, names="--top")
    fails(USAGE, "run", MNIST, SAMPLES[0], "--top=", names="--top")


@check
def error_bad_threads():
    for command in (("run", MNIST, SAMPLES[0]), ("sparsity", MNIST, SAMPLES[0]), ("summary", MNIST),
                    ("init", LENET_GRAPH, "-o", "/nonexistent/x"), ("bench", MNIST)):
        for value in ("0", "x", "-2", "1.5", "", "4097", "2x"):
            fails(USAGE, *command, "--threads", value, names="--threads")


@check
def error_flag_given_a_value():
    fails(USAGE, "run", MNIST, SAMPLES[0], "--json=1", names="--json")
    fails(USAGE, "run", MNIST, SAMPLES[0], "--sparsity=yes", names="--sparsity")


@check
def error_no_command():
    r = rectify()
    expect(r.rc == USAGE and r.out == "" and "Usage:" in r.err, r.describe())


@check
def error_help_of_unknown_command():
    fails(USAGE, "help", "frobnicate", names="frobnicate")


@check
def error_missing_model_folder():
    with tempfile.TemporaryDirectory(prefix="rectify-cli-") as folder:
        missing = os.path.join(folder, "no-such-model")
        for args in (("run", missing, SAMPLES[0]), ("sparsity", missing, SAMPLES[0]),
                     ("summary", missing), ("init", missing, "-o", os.path.join(folder, "w")),
                     ("bench", missing)):
            fails(RUNTIME, *args, names=missing)
            fails(RUNTIME, *args, "--json", names=missing)
        expect(listing(folder) == [], "left behind: %s" % listing(folder))


@check
def error_missing_model_json_in_folder():
    with tempfile.TemporaryDirectory(prefix="rectify-cli-") as folder:
        fails(RUNTIME, "summary", folder, names="model.json")
        fails(RUNTIME, "run", folder, SAMPLES[0], names="model.json")


@check
def error_broken_model_json():
    with tempfile.TemporaryDirectory(prefix="rectify-cli-") as folder:
        path = os.path.join(folder, "model.json")
        with open(path, "w") as f:
            f.write('{"format": "rectify", "version": 1,\n')
        for args in (("run", folder, SAMPLES[0]), ("sparsity", folder, SAMPLES[0]),
                     ("summary", folder), ("summary", path), ("init", folder, "-o", folder + "/w")):
            fails(RUNTIME, *args, names=path)
            fails(RUNTIME, *args, "--json", names=path)
        expect(listing(folder) == ["model.json"], "left behind: %s" % listing(folder))


@check
def error_invalid_model_json():
    with temp_model() as folder:
        path = os.path.join(folder, "model.json")
        model = load_json_file(path)
        model["layers"][0]["units"] = 120  # FORMAT.md: unknown field in layer conv1
        with open(path, "w") as f:
            json.dump(model, f)
        r = fails(RUNTIME, "summary", folder, names="units")
        expect("conv1" in r.err, "the error should name the layer: " + r.describe())


@check
def error_missing_image():
    missing = os.path.join(ROOT, "no-such-image.png")
    fails(RUNTIME, "run", MNIST, missing, names=missing)
    fails(RUNTIME, "sparsity", MNIST, missing, names=missing)


@check
def error_non_image_file():
    with tempfile.TemporaryDirectory(prefix="rectify-cli-") as folder:
        text = os.path.join(folder, "not-an-image.png")
        with open(text, "w") as f:
            f.write("hello, not a PNG\n")
        empty = os.path.join(folder, "empty.jpg")
        open(empty, "w").close()
        for path in (text, empty, os.path.join(MNIST, "model.json"), folder):
            fails(RUNTIME, "run", MNIST, path, names=path)
            fails(RUNTIME, "sparsity", MNIST, path, names=path)


@check
def error_missing_weights_file():
    missing = os.path.join(ROOT, "no-such-weights.safetensors")
    fails(RUNTIME, "run", MNIST, SAMPLES[0], "--weights", missing, names=missing)
    fails(RUNTIME, "sparsity", MNIST, SAMPLES[0], "--weights", missing, names=missing)
    fails(RUNTIME, "run", LENET_GRAPH, SAMPLES[0], names="weights.safetensors")


@check
def error_wrong_weights_file():
    # a weights file of another graph: the engine names the tensor at fault
    with tempfile.TemporaryDirectory(prefix="rectify-cli-") as folder:
        model = load_json_file(os.path.join(LENET_GRAPH, "model.json"))
        model["layers"][7]["units"] = 100  # fc1
        model["layers"][9]["units"] = 84
        with open(os.path.join(folder, "model.json"), "w") as f:
            json.dump(model, f)
        fails(RUNTIME, "run", folder, SAMPLES[0], "--weights", os.path.join(MNIST, "weights.safetensors"),
              names="fc1")


@check
def error_partial_run_json():
    missing = os.path.join(ROOT, "no-such-image.png")
    r = rectify("run", MNIST, SAMPLES[1], missing, SAMPLES[2], "--json", "--top", 1)
    expect(r.rc == RUNTIME, "expected exit 1: " + r.describe())
    doc = parse_json(r)
    expect([i["path"] for i in doc["images"]] == [SAMPLES[1], SAMPLES[2]],
           "images %s" % [i["path"] for i in doc["images"]])
    expect([i["top"][0]["index"] for i in doc["images"]] == [1, 2], "top-1 %s" % doc["images"])
    expect(len(doc["failed"]) == 1 and doc["failed"][0]["path"] == missing
           and missing in doc["failed"][0]["error"], "failed %r" % doc["failed"])
    expect(r.err.startswith("rectify:") and missing in r.err, "stderr: " + r.describe())


@check
def error_partial_run_human():
    missing = os.path.join(ROOT, "no-such-image.png")
    r = rectify("run", MNIST, SAMPLES[1], missing, SAMPLES[2])
    expect(r.rc == RUNTIME and SAMPLES[1] in r.out and SAMPLES[2] in r.out and missing not in r.out,
           "expected the two good images on stdout: " + r.describe())
    expect(r.err.startswith("rectify:") and missing in r.err, "stderr: " + r.describe())


@check
def error_partial_sparsity_json():
    missing = os.path.join(ROOT, "no-such-image.png")
    r = rectify("sparsity", MNIST, SAMPLES[1], missing, SAMPLES[2], "--json")
    expect(r.rc == RUNTIME, "expected exit 1: " + r.describe())
    doc = parse_json(r)
    good = json_of("sparsity", MNIST, SAMPLES[1], SAMPLES[2])
    expect(doc["images"] == 2 and [f["path"] for f in doc["failed"]] == [missing],
           "images %r failed %r" % (doc["images"], doc["failed"]))
    expect(doc["layers"] == good["layers"], "the good images' statistics differ")


@check
def error_all_images_fail():
    missing = os.path.join(ROOT, "no-such-image.png")
    r = rectify("sparsity", MNIST, missing, "--json")
    expect(r.rc == RUNTIME, "expected exit 1: " + r.describe())
    doc = parse_json(r)
    expect(doc["images"] == 0 and doc["relu_sparsity"] is None and doc["total_sparsity"] is None,
           "doc %s" % clip(json.dumps(doc)))
    r = rectify("run", MNIST, missing, "--json")
    expect(r.rc == RUNTIME, "expected exit 1: " + r.describe())
    doc = parse_json(r)
    expect(doc["images"] == [] and len(doc["failed"]) == 1, "doc %s" % clip(json.dumps(doc)))


@check
def error_stdout_unwritable():
    if not os.path.exists("/dev/full"):
        return
    for args in (("run", MNIST, SAMPLES[0]), ("summary", MNIST, "--json"), ("--help",)):
        with open("/dev/full", "w") as full:
            r = rectify(*args, stdout=full)
        expect(r.rc != 0 and "rectify:" in r.err, "a write error passed for success: " + r.describe())


# ---- help ----------------------------------------------------------------------------

def help_check(command):
    def check_help():
        commands, shared = readme_options()
        expect(command in commands, "README.md does not list %s" % command)
        r = succeeds(command, "--help")
        expect(r.out.startswith("Usage: rectify %s" % command), "usage line: " + r.describe())
        for option in sorted(commands[command] | shared):
            expect(re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(option), r.out),
                   "%s --help does not mention %s" % (command, option))
        expect(succeeds(command, "-h").out == r.out, "-h differs from --help")
        expect(succeeds("help", command).out == r.out, "'rectify help %s' differs" % command)
        # --help wins over missing arguments and other options
        expect(succeeds(command, MNIST, "--json", "--help").out == r.out, "--help after arguments differs")
    check_help.__name__ = "help_" + command
    return check_help


for _command in ("run", "sparsity", "summary", "init", "bench"):
    check(help_check(_command))


@check
def help_main():
    commands, shared = readme_options()
    r = succeeds("--help")
    expect("Usage: rectify" in r.out, r.describe())
    for command in list(commands) + ["help"]:
        expect(re.search(r"^\s+%s\s" % command, r.out, re.M), "--help does not list %s" % command)
    for option in sorted(shared) + ["--version"]:
        expect(option in r.out, "--help does not mention %s" % option)
    expect(succeeds("-h").out == r.out, "-h differs from --help")
    expect(succeeds("help").out == r.out, "'rectify help' differs from --help")


@check
def help_version():
    r = succeeds("--version")
    expect(re.match(r"rectify \d+\.\d+\.\d+", r.out), "version: " + r.describe())
    with open(os.path.join(ROOT, "meson.build")) as f:
        m = re.search(r"version\s*:\s*'([^']+)'", f.read())
    expect(m is None or r.out.split()[1] == m.group(1),
           "version %r, meson.build says %r" % (r.out.strip(), m.group(1) if m else None))


# ---- MODEL as model.json ------------------------------------------------------------

@check
def model_json_path_run():
    a = run_all("--top", 10, "--sparsity")
    b = json_of("run", os.path.join(MNIST, "model.json"), *SAMPLES, "--top", 10, "--sparsity")
    expect(a == b, "run: folder and model.json give different output")


@check
def model_json_path_sparsity():
    a = sparsity_all()
    b = json_of("sparsity", os.path.join(MNIST, "model.json"), *SAMPLES)
    expect(a == b, "sparsity: folder and model.json give different output")


@check
def model_json_path_summary():
    for name in ("lenet5", "lenet5-mnist", "alexnet"):
        folder = os.path.join(MODELS, name)
        expect(json_of("summary", folder) == json_of("summary", os.path.join(folder, "model.json")),
               "summary of %s: folder and model.json differ" % name)


@check
def model_json_path_init():
    with temp_model() as folder:
        _, a = init_file(folder, "a.safetensors", "--seed", 9)
        path = os.path.join(folder, "b.safetensors")
        succeeds("init", os.path.join(folder, "model.json"), "-o", path, "--seed", 9)
        with open(path, "rb") as f:
            expect(f.read() == a, "init: folder and model.json give different files")


@check
def model_json_path_relative():
    rel = os.path.relpath(os.path.join(MNIST, "model.json"), ROOT)
    a = json_of("run", rel, *[os.path.relpath(s, ROOT) for s in SAMPLES[:2]], cwd=ROOT)
    b = json_of("run", os.path.relpath(MNIST, ROOT), *[os.path.relpath(s, ROOT) for s in SAMPLES[:2]], cwd=ROOT)
    expect(a == b and len(a["images"]) == 2, "relative model.json path and folder differ")


# ---- pack -------------------------------------------------------------------------

@check
def pack_then_run_matches():
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "mnist.rxpack")
        doc = json_of("pack", MNIST, "-o", path)
        expect(doc["verified"] is True and doc["bytes"] == os.path.getsize(path) and doc["output"] == path,
               "pack --json: %r" % doc)
        expect(listing(tmp) == ["mnist.rxpack"], "folder holds %s" % listing(tmp))
        with open(path, "rb") as f:
            expect(f.read(8) == b"RXPACK\r\n", "not a packed file")
        plain = json_of("run", MNIST, *SAMPLES, "--sparsity")
        packed = json_of("run", MNIST, "--weights", path, *SAMPLES, "--sparsity")
        expect(plain["images"] == packed["images"], "run differs with the packed weights")
        r = succeeds("pack", MNIST, "-o", path)
        for text in ("Packed", "Load, packed:", "bit for bit", "--weights " + path):
            expect(text in r.out, "%r missing: %s" % (text, r.describe()))


@check
def pack_errors():
    fails(USAGE, "pack", MNIST, names="-o FILE")
    fails(USAGE, "pack", names="MODEL")
    fails(RUNTIME, "pack", MNIST, "-o", "/nonexistent-dir/x.rxpack", names="/nonexistent-dir/x.rxpack")
    with temp_model() as folder:  # graph only: nothing to pack
        fails(RUNTIME, "pack", folder, "-o", os.path.join(folder, "x.rxpack"), names="weights.safetensors")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "mnist.rxpack")
        succeeds("pack", MNIST, "-o", path)
        fails(RUNTIME, "run", os.path.join(MODELS, "fashion-vgg"), "--weights", path, SAMPLES[0],
              names="packed for a model of")
        with open(path, "r+b") as f:
            f.truncate(os.path.getsize(path) - 4096)
        fails(RUNTIME, "run", MNIST, "--weights", path, SAMPLES[0], names="cut or grown")
        # never over the weights it packs
        folder = os.path.join(tmp, "mnist")
        shutil.copytree(MNIST, folder)
        source = os.path.join(folder, "weights.safetensors")
        with open(source, "rb") as f:
            before = f.read()
        fails(RUNTIME, "pack", folder, "-o", source, names="loaded from")
        with open(source, "rb") as f:
            expect(f.read() == before, "pack changed the weights it packed")


# ---- main ---------------------------------------------------------------------------

def main():
    start = time.monotonic()
    passed = failed = 0
    if not os.access(RECTIFY, os.X_OK):
        print("FAIL setup: %s is not an executable" % RECTIFY)
        print("0 passed, 1 failed")
        return 1
    for fn in CHECKS:
        try:
            fn()
            passed += 1
        except Failure as e:
            failed += 1
            print("FAIL %s: %s" % (fn.__name__, " ".join(str(e).split())))
        except Exception as e:  # a bug in the check or output of the wrong shape
            failed += 1
            print("FAIL %s: %s: %s" % (fn.__name__, type(e).__name__, " ".join(str(e).split())))
        sys.stdout.flush()
    print("cli checks took %.2f s" % (time.monotonic() - start))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
