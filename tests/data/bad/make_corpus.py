#!/usr/bin/python3
"""make_corpus.py: writes the bad-input corpus that tests/test_bad.c walks.

    /usr/bin/python3 tests/data/bad/make_corpus.py

Standard library only (PIL is used, when installed, for the one JPEG; a
hand-written baseline JPEG is used otherwise). Rewrites, from scratch:

  base/                  a small valid model (the control: it must load)
  models/<case>/         model.json [weights.safetensors] [labels.txt] expect
  images/<name>          an image file (or nothing, or a folder)
  images/<name>.expect   for rectify_image_load against models/lenet5-mnist

Every `expect` file has two lines: the status name (rectify_status_name)
and a substring the error message must contain.

The base model: input "x" [1, 4, 4] -> conv c1 (2 filters, 3x3) [2, 2, 2]
-> relu r -> flatten f [8] -> dense fc (3 units) -> softmax prob [3].
Tensors: c1.weight [2,1,3,3], c1.bias [2], fc.weight [3,8], fc.bias [3].
"""
import copy
import io
import json
import os
import shutil
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))

BASE = {
    "format": "rectify",
    "version": 1,
    "name": "base",
    "input": {"name": "x", "shape": [1, 4, 4]},
    "layers": [
        {"name": "c1", "op": "conv", "out_channels": 2, "kernel": 3},
        {"name": "r", "op": "relu"},
        {"name": "f", "op": "flatten"},
        {"name": "fc", "op": "dense", "units": 3},
        {"name": "prob", "op": "softmax"},
    ],
}

TENSORS = [("c1.weight", [2, 1, 3, 3]), ("c1.bias", [2]), ("fc.weight", [3, 8]), ("fc.bias", [3])]


def elements(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def safetensors(tensors=None, header=None, data=None, raw_header=None, length=None, pad=True):
    """A safetensors file. tensors: [(name, shape)] as F32, laid out one after
    another; header: a dict to use instead of the generated one; data: the
    data area instead of the generated one; raw_header: header bytes as is;
    length: the 8-byte header length to write instead of the true one."""
    if tensors is None:
        tensors = TENSORS
    gen = header_of(tensors)
    values = tensor_data(tensors)
    if raw_header is not None:
        text = raw_header
    else:
        text = json.dumps(gen if header is None else header, separators=(",", ":")).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    if data is None:
        data = values
    return struct.pack("<Q", len(text) if length is None else length) + text + data


def header_of(tensors=TENSORS):
    """The safetensors header of F32 tensors laid out one after another."""
    offset, h = 0, {}
    for name, shape in tensors:
        n = 4 * elements(shape)
        h[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    return h


def tensor_data(tensors=TENSORS):
    values = b""
    for i, (name, shape) in enumerate(tensors):
        n = elements(shape)
        values += struct.pack("<%df" % n, *[(i + 1) * 0.01 * (k % 7 - 3) for k in range(n)])
    return values


def model(edit=None, **top):
    """The base model.json as a dict, with top-level fields replaced (None
    deletes) and then `edit(m)` applied."""
    m = copy.deepcopy(BASE)
    for k, v in top.items():
        if v is None:
            m.pop(k, None)
        else:
            m[k] = v
    if edit:
        edit(m)
    return m


def layer(m, name):
    return next(l for l in m["layers"] if l["name"] == name)


def set_field(layer_name, **fields):
    """An edit: sets (or, with None, deletes) fields of one layer."""
    def edit(m):
        l = layer(m, layer_name)
        for k, v in fields.items():
            if v is None:
                l.pop(k, None)
            else:
                l[k] = v
    return edit


def set_input(**fields):
    def edit(m):
        for k, v in fields.items():
            if v is None:
                m["input"].pop(k, None)
            else:
                m["input"][k] = v
    return edit


def set_pre(**fields):
    def edit(m):
        pre = m["input"].setdefault("preprocess", {})
        pre.update(fields)
    return edit


def both(*edits):
    def edit(m):
        for e in edits:
            e(m)
    return edit


CASES = []


def case(name, status, substring, json_obj=None, text=None, weights=None, labels=None, extra=None):
    """text: raw model.json bytes (else json_obj, else the base model);
    weights: bytes of weights.safetensors (None: no file, True: the base's);
    extra: {relative path: bytes or None for a folder}."""
    assert "\n" not in substring and status in ("io", "parse", "invalid", "limit", "nomem", "argument")
    assert name not in [c[0] for c in CASES], name
    CASES.append((name, status, substring, json_obj, text, weights, labels, extra))


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def dumps(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


# ---------------------------------------------------------------- broken JSON
GOOD = dumps(BASE)
case("json-empty", "parse", "invalid JSON at line 1", text=b"")
case("json-truncated", "parse", "invalid JSON at line 1", text=GOOD[: len(GOOD) // 2])
case("json-trailing-garbage", "parse", "unexpected text after the JSON value", text=GOOD + b"\n}x")
case("json-two-objects", "parse", "unexpected text after the JSON value", text=GOOD + b" {}")
case("json-nul-byte", "parse", "NUL byte", text=GOOD[:20] + b"\0" + GOOD[20:])
case("json-nul-after-object", "parse", "NUL byte", text=GOOD + b"\0")
case("json-single-quotes", "parse", "invalid JSON at line 1", text=GOOD.replace(b'"format"', b"'format'"))
case("json-comment", "parse", "invalid JSON at line 2", text=b"{\n// a comment\n" + GOOD[1:])
case("json-trailing-comma", "parse", "invalid JSON", text=GOOD[:-1] + b",}")
case("json-error-line-column", "parse", "line 3, column 14", text=b'{\n  "format": "rectify",\n  "version": ,\n}')
case("not-an-object-array", "invalid", "must be an object", text=b"[1, 2, 3]")
case("not-an-object-string", "invalid", "must be an object", text=b'"rectify"')
case("duplicate-key-top", "parse", 'duplicate key "name"', text=GOOD[:-1] + b',"name":"again"}')
case("duplicate-key-in-layer", "parse", 'duplicate key "kernel" in layers[0] ("c1")',
     text=GOOD.replace(b'"kernel":3', b'"kernel":3,"kernel":5'))
case("duplicate-key-in-input", "parse", 'duplicate key "shape"',
     text=GOOD.replace(b'"shape":[1,4,4]', b'"shape":[1,4,4],"shape":[1,5,5]'))
# Deeper than cJSON's own limit (1000): still valid JSON, so still the
# nesting limit, not "invalid JSON".
case("nesting-2000-deep", "limit", "more than the limit of 32",
     text=GOOD[:-1] + b',"description":' + b"[" * 2000 + b"]" * 2000 + b"}")
case("nesting-too-deep", "limit", "JSON nested 41 deep, more than the limit of 32",
     text=GOOD[:-1] + b',"description":' + b"[" * 40 + b"]" * 40 + b"}")

# ---------------------------------------------------------------- wrong types
case("type-format-number", "invalid", 'field "format" must be a string', model(format=1))
case("type-version-string", "invalid", 'field "version" must be an integer', model(version="1"))
case("type-version-fraction", "invalid", 'field "version" must be an integer', model(version=1.5))
case("type-version-bool", "invalid", 'field "version" must be an integer', model(version=True))
case("type-name-number", "invalid", 'field "name" must be a string', model(name=5))
case("type-description-array", "invalid", 'field "description" must be a string', model(description=["a"]))
case("type-weights-number", "invalid", 'field "weights" must be a string', model(weights=7))
case("type-labels-bool", "invalid", 'field "labels" must be a string', model(labels=False))
case("type-input-array", "invalid", '"input" must be an object', model(input=[1, 4, 4]))
case("type-input-name-number", "invalid", 'input: field "name" must be a string', model(set_input(name=3)))
case("type-shape-string", "invalid", 'shape" must be an integer or an array of 3 integers', model(set_input(shape="1,4,4")))
case("type-shape-element-fraction", "invalid", 'shape"[2] must be an integer', model(set_input(shape=[1, 4, 4.5])))
case("type-shape-scalar", "invalid", "input.shape must be [C, H, W]", model(set_input(shape=4)))
case("type-preprocess-array", "invalid", '"input.preprocess" must be an object', model(set_input(preprocess=[])))
case("type-scale-string", "invalid", "scale", model(set_pre(scale="1/255")))
case("type-mean-number", "invalid", "input.preprocess.mean must be an array", model(set_pre(mean=0.5)))
case("type-std-element-string", "invalid", "input.preprocess.std[0] must be a positive number",
     model(set_pre(std=["1"])))
case("type-layers-object", "invalid", 'field "layers" must be an array', model(layers={"c1": {}}))
case("type-layer-number", "invalid", "layer #0: must be an object", model(layers=[5]))
# The message must not name the layer before it ("c1") as the one at fault.
case("type-second-layer-string", "invalid", "model.json: layer #1",
     model(layers=[BASE["layers"][0], "relu"]))
case("type-layer-name-number", "invalid", 'layer #0: field "name" must be a string', model(set_field("c1", name=1)))
case("type-op-array", "invalid", 'layer "c1" (#0): field "op" must be a string', model(set_field("c1", op=["conv"])))
case("type-out-channels-string", "invalid", 'layer "c1" (#0): field "out_channels" must be an integer',
     model(set_field("c1", out_channels="2")))
case("type-out-channels-fraction", "invalid", 'layer "c1" (#0): field "out_channels" must be an integer',
     model(set_field("c1", out_channels=2.5)))
case("type-kernel-string", "invalid", 'layer "c1" (#0): field "kernel" must be an integer or an array of 2',
     model(set_field("c1", kernel="3")))
case("type-kernel-three-values", "invalid", 'layer "c1" (#0): field "kernel" has 3 values',
     model(set_field("c1", kernel=[3, 3, 3])))
case("type-kernel-element-bool", "invalid", 'layer "c1" (#0): field "kernel"[1] must be an integer',
     model(set_field("c1", kernel=[3, True])))
case("type-padding-three-values", "invalid", 'layer "c1" (#0): field "padding" has 3 values; it takes 2 or 4',
     model(set_field("c1", padding=[1, 1, 1])))
case("type-groups-bool", "invalid", 'layer "c1" (#0): field "groups" must be an integer',
     model(set_field("c1", groups=True)))
case("type-bias-integer", "invalid", 'layer "c1" (#0): field "bias" must be true or false',
     model(set_field("c1", bias=1)))
case("type-units-null", "invalid", 'layer "fc" (#3): field "units" must be an integer',
     text=GOOD.replace(b'"units":3', b'"units":null'))
case("type-ceil-mode-string", "invalid", 'layer "p" (#1): field "ceil_mode" must be true or false',
     model(lambda m: m["layers"].insert(1, {"name": "p", "op": "maxpool", "kernel": 1, "ceil_mode": "yes"})))
case("type-inputs-string", "invalid", 'layer "r" (#1): field "inputs" must be an array of names',
     model(set_field("r", inputs="c1")))
case("type-inputs-element-number", "invalid", 'layer "r" (#1): inputs[0] must be a name',
     model(set_field("r", inputs=[0])))
case("type-outputs-string", "invalid", '"outputs" must be a non-empty array of layer names', model(outputs="prob"))
case("type-outputs-element-number", "invalid", "outputs[0] must name a layer", model(outputs=[4]))

# ---------------------------------------------------------------- missing fields
case("missing-format", "invalid", 'field "format" is missing', model(format=None))
case("missing-version", "invalid", 'field "version" is missing', model(version=None))
case("missing-name", "invalid", 'field "name" is missing', model(name=None))
case("missing-input", "invalid", 'field "input" is missing', model(input=None))
case("missing-input-shape", "invalid", 'shape" is missing', model(set_input(shape=None)))
case("missing-layers", "invalid", 'field "layers" is missing', model(layers=None))
case("empty-layers", "invalid", '"layers" is empty', model(layers=[]))
case("missing-op", "invalid", 'layer "c1" (#0): field "op" is missing', model(set_field("c1", op=None)))
case("missing-layer-name", "invalid", 'layer #1: field "name" is missing', model(set_field("r", name=None)))
case("missing-kernel", "invalid", 'layer "c1" (#0): field "kernel" is missing', model(set_field("c1", kernel=None)))
case("missing-pool-kernel", "invalid", 'layer "p" (#1): field "kernel" is missing',
     model(lambda m: m["layers"].insert(1, {"name": "p", "op": "avgpool"})))
case("missing-out-channels", "invalid", 'layer "c1" (#0): field "out_channels" is missing',
     model(set_field("c1", out_channels=None)))
case("missing-units", "invalid", 'layer "fc" (#3): field "units" is missing', model(set_field("fc", units=None)))

# ---------------------------------------------------------------- unknown fields, keys, values
case("unknown-field-top", "invalid", 'unknown field "author" in the model', model(author="me"))
case("unknown-field-input", "invalid", 'unknown field "dtype" in "input"', model(set_input(dtype="F32")))
case("unknown-field-preprocess", "invalid", 'unknown field "normalize" in "input.preprocess"',
     model(set_pre(normalize=True)))
case("unknown-field-layer", "invalid", 'layer "c1" (#0): unknown field "units" in a conv layer',
     model(set_field("c1", units=3)))
case("unknown-field-relu", "invalid", 'layer "r" (#1): unknown field "inplace" in a relu layer',
     model(set_field("r", inplace=True)))
case("unknown-field-avgpool-dilation", "invalid", 'layer "p" (#1): unknown field "dilation" in a avgpool layer',
     model(lambda m: m["layers"].insert(1, {"name": "p", "op": "avgpool", "kernel": 1, "dilation": 1})))
case("case-sensitive-Layers", "invalid", 'unknown field "Layers" in the model',
     model(lambda m: m.__setitem__("Layers", m.pop("layers"))))
case("case-sensitive-op-value", "invalid", 'unknown op "Conv"', model(set_field("c1", op="Conv")))
case("case-sensitive-Kernel", "invalid", 'layer "c1" (#0): unknown field "Kernel" in a conv layer',
     model(set_field("c1", kernel=None, Kernel=3)))
case("wrong-format", "invalid", '"format" is "onnx", not "rectify"', model(format="onnx"))
case("wrong-format-case", "invalid", '"format" is "Rectify", not "rectify"', model(format="Rectify"))
case("wrong-version-2", "invalid", "format version 2 is not supported", model(version=2))
case("wrong-version-0", "invalid", "version 0 is not supported", model(version=0))
case("unknown-op", "invalid", 'layer "c1" (#0): unknown op "conv3d" (known: conv, maxpool',
     model(set_field("c1", op="conv3d")))
case("unknown-color", "invalid", 'input.preprocess.color "yuv": use gray, rgb or bgr', model(set_pre(color="yuv")))

# ---------------------------------------------------------------- names
case("name-with-space", "invalid", 'layer #0: name "conv 1" has characters outside',
     model(set_field("c1", name="conv 1")))
case("name-non-ascii", "invalid", "has characters outside", model(set_field("c1", name="c\u00e91")))
case("name-too-long", "invalid", 'layer #0: field "name" must be 1 to 128 bytes long',
     model(set_field("c1", name="n" * 129)))
case("name-empty", "invalid", 'layer #1: field "name" must be 1 to 128 bytes long', model(set_field("r", name="")))
case("model-name-too-long", "invalid", 'field "name" must be 1 to 128 bytes long', model(name="m" * 129))
case("model-name-empty", "invalid", 'field "name" must be 1 to 128 bytes long', model(name=""))
case("input-name-characters", "invalid", 'input.name "in put" has characters outside',
     model(set_input(name="in put")))
case("input-name-too-long", "invalid", 'input: field "name" must be 1 to 128 bytes', model(set_input(name="i" * 129)))
case("duplicate-layer-names", "invalid", 'two layers are named "r" (#1 and #2)', model(set_field("f", name="r")))
case("layer-named-like-input", "invalid", 'a layer has the input\'s name "x"', model(set_field("r", name="x")))
# The JSON string "c1\u0000x" holds a NUL: cJSON cuts it at "c1"; the name
# must be rejected, not silently shortened (the weights here fit "c1").
case("name-escaped-nul", "parse", "escaped NUL character",
     text=GOOD.replace(b'"name":"c1"', b'"name":"c1\\u0000x"'), weights=safetensors())

# ---------------------------------------------------------------- graph
case("inputs-name-nothing", "invalid", 'layer "r" (#1): inputs[0] names "nope", which is neither',
     model(set_field("r", inputs=["nope"])))
case("inputs-empty", "invalid", 'layer "r" (#1): relu takes 1 to 1 inputs, it has 0', model(set_field("r", inputs=[])))
case("inputs-two-on-relu", "invalid", 'layer "r" (#1): relu takes 1 to 1 inputs, it has 2',
     model(set_field("r", inputs=["c1", "x"])))
case("inputs-too-many", "limit", 'layer "r" (#1): 9 inputs, more than the limit of 8',
     model(set_field("r", inputs=["c1"] * 9)))
case("inputs-self", "invalid", 'layer "r" (#1): the layer names itself as an input', model(set_field("r", inputs=["r"])))
case("cycle-two-layers", "invalid", "the layers form a cycle",
     model(both(set_field("r", inputs=["f"]), set_field("f", inputs=["r"]))))
case("cycle-three-layers", "invalid", "the layers form a cycle",
     model(both(set_field("c1", inputs=["f"]), set_field("r", inputs=["c1"]), set_field("f", inputs=["r"]))))
# A layer downstream of a cycle is listed first: the message must name a
# layer ON the cycle ("loop1" or "loop2"), not "head".
case("cycle-named-layer-is-on-it", "invalid", 'layer "loop',
     model(layers=[{"name": "head", "op": "relu", "inputs": ["loop1"]},
                   {"name": "loop1", "op": "relu", "inputs": ["loop2"]},
                   {"name": "loop2", "op": "relu", "inputs": ["loop1"]}]))
case("conv-groups-not-dividing", "invalid", 'layer "c2" (#1): groups 3 must divide the input channels (2)',
     model(lambda m: m["layers"].insert(1, {"name": "c2", "op": "conv", "out_channels": 3, "kernel": 1,
                                           "groups": 3})))
case("conv-groups-not-dividing-out", "invalid", 'layer "c2" (#1): groups 2 must divide',
     model(lambda m: m["layers"].insert(1, {"name": "c2", "op": "conv", "out_channels": 3, "kernel": 1,
                                           "groups": 2})))
case("conv-kernel-larger-than-input", "invalid", 'layer "c1" (#0): kernel 5x5 (dilation 1x1) is larger than the padded input 4x4',
     model(set_field("c1", kernel=5)))
case("conv-dilated-kernel-too-large", "invalid", 'layer "c1" (#0): kernel 3x3 (dilation 2x2) is larger',
     model(set_field("c1", dilation=2)))
case("pool-kernel-larger-than-input", "invalid", 'layer "p" (#1): kernel 3x3 is larger than the padded input 2x2',
     model(lambda m: m["layers"].insert(1, {"name": "p", "op": "maxpool", "kernel": 3})))
case("pool-padding-over-half", "invalid", 'layer "p" (#1): padding must be at most half the kernel',
     model(lambda m: m["layers"].insert(1, {"name": "p", "op": "maxpool", "kernel": 2, "padding": 2})))
case("conv-on-flat-input", "invalid", 'layer "c2" (#3): conv needs a CxHxW input, got rank 1',
     model(lambda m: m["layers"].insert(3, {"name": "c2", "op": "conv", "out_channels": 1, "kernel": 1})))
case("dense-on-unflattened-input", "invalid", 'layer "fc" (#2): dense needs a flat input (add a flatten layer), got rank 3',
     model(lambda m: m["layers"].remove(layer(m, "f"))))
case("outputs-name-nothing", "invalid", 'outputs[0] must name a layer ("nope" is none)', model(outputs=["nope"]))
case("outputs-name-the-input", "invalid", 'outputs[0] must name a layer ("x" is none)', model(outputs=["x"]))
case("outputs-named-twice", "invalid", 'outputs names "fc" twice', model(outputs=["fc", "prob", "fc"]))
case("outputs-empty", "invalid", '"outputs" must be a non-empty array of layer names', model(outputs=[]))

# ---------------------------------------------------------------- dimensions and limits
case("shape-zero-dimension", "invalid", 'shape"[1] is 0, outside 1..1048576', model(set_input(shape=[1, 0, 4])))
case("shape-negative-dimension", "invalid", 'shape"[0] is -1, outside 1..1048576', model(set_input(shape=[-1, 4, 4])))
case("shape-two-values", "invalid", 'shape" has 2 values; it takes 3', model(set_input(shape=[4, 4])))
case("out-channels-zero", "invalid", 'layer "c1" (#0): field "out_channels" is 0, outside 1..1048576',
     model(set_field("c1", out_channels=0)))
case("units-zero", "invalid", 'layer "fc" (#3): field "units" is 0, outside 1..1048576', model(set_field("fc", units=0)))
case("stride-zero", "invalid", 'layer "c1" (#0): field "stride"[1] is 0, outside 1..1048576',
     model(set_field("c1", stride=[1, 0])))
case("padding-negative", "invalid", 'layer "c1" (#0): field "padding" is -1, outside 0..1048576',
     model(set_field("c1", padding=-1)))
case("shape-dimension-over-limit", "limit", 'shape"[2] is 1048577, outside 1..1048576',
     model(set_input(shape=[1, 4, 1048577])))
case("kernel-over-limit", "limit", 'layer "c1" (#0): field "kernel" is 1048577, outside 1..1048576',
     model(set_field("c1", kernel=1048577)))
case("units-over-limit", "limit", 'layer "fc" (#3): field "units" is 2000000, outside 1..1048576',
     model(set_field("fc", units=2000000)))
# 1e20 is an integral JSON number far over the limit: LIMIT naming the field,
# not "must be an integer".
case("units-huge-integer", "limit", 'layer "fc" (#3): field "units"',
     text=GOOD.replace(b'"units":3', b'"units":1e20'))
case("shape-elements-overflow", "limit", "input.shape has more than 2147483648 elements",
     model(set_input(shape=[1048576, 1048576, 1048576])))
case("shape-elements-over-limit", "limit", "input.shape has more than 2147483648 elements",
     model(set_input(shape=[2, 1048576, 1025])))
case("layer-output-over-limit", "limit", 'layer "c1" (#0): output has more than 2147483648 elements',
     model(both(set_input(shape=[1, 1024, 1024]), set_field("c1", out_channels=4096, kernel=1))))
case("layer-output-dimension-over-limit", "limit", 'layer "c1" (#0): output dimension 2097156 is over the limit',
     model(both(set_input(shape=[1, 1, 4]), set_field("c1", kernel=1, padding=[0, 1048576]))))
case("tensor-over-limit", "limit", 'tensor "fc.weight" has more than 2147483648 elements',
     model(both(set_input(shape=[1, 1024, 1024]), set_field("c1", out_channels=1, kernel=1),
                set_field("fc", units=4096))))
case("layers-over-limit", "limit", "4097 layers, more than the limit of 4096",
     model(layers=[0] * 4097))

# ---------------------------------------------------------------- preprocess
case("preprocess-rgb-on-gray", "invalid", 'input.preprocess.color "rgb" does not give the 1 channels',
     model(set_pre(color="rgb")))
case("preprocess-gray-on-rgb", "invalid", 'input.preprocess.color "gray" does not give the 3 channels',
     model(both(set_input(shape=[3, 4, 4]), set_pre(color="gray"))))
case("preprocess-on-two-channels", "invalid", "input.preprocess",
     model(both(set_input(shape=[2, 4, 4]), set_pre(scale=1))))
case("preprocess-crop-larger-than-resize", "invalid", "input.preprocess.crop is larger than its resize",
     model(set_pre(resize=[4, 4], crop=[5, 5])))
case("preprocess-resize-not-shape", "invalid", "input.preprocess gives 8x8 images, input.shape wants 4x4",
     model(set_pre(resize=[8, 8])))
case("preprocess-resize-over-limit", "limit", 'field "resize"[0] is 16385',
     model(set_pre(resize=[16385, 4])))
# 16384 x 8192 = 128 Mi pixels, over the 64 Mi of RECTIFY_MAX_IMAGE_PIXELS
# (each side within 16384). A relu alone needs no weights: the file is empty.
case("preprocess-resize-pixels-over-limit", "limit", "resize",
     model(set_input(shape=[1, 16384, 8192], preprocess={"resize": [16384, 8192]}),
           layers=[{"name": "r", "op": "relu"}]), weights=safetensors([]))
# 1e-50 > 0, but it is 0 as a float32: images would be divided by zero.
case("preprocess-std-underflow", "invalid", "input.preprocess.std[0]",
     text=GOOD.replace(b'"shape":[1,4,4]', b'"shape":[1,4,4],"preprocess":{"std":[1e-50]}'), weights=safetensors())
case("preprocess-std-zero", "invalid", "input.preprocess.std[0] must be a positive number", model(set_pre(std=[0])))
case("preprocess-std-negative", "invalid", "input.preprocess.std[0] must be a positive number", model(set_pre(std=[-1])))
case("preprocess-mean-wrong-count", "invalid", "input.preprocess.mean must be an array of 1 or 3 numbers",
     model(both(set_input(shape=[3, 4, 4]), set_pre(mean=[0.1, 0.2]))))
case("preprocess-scale-huge", "invalid", "scale", text=GOOD.replace(b'"shape":[1,4,4]', b'"shape":[1,4,4],"preprocess":{"scale":1e999}'))

# ---------------------------------------------------------------- labels
case("labels-count-mismatch", "invalid", '2 labels, but output "prob" has 3 channels',
     model(), weights=safetensors(), labels=b"cat\ndog\n")
# The labels must match the channels of the first output, also when it is
# rank 3 or when there are several outputs (FORMAT.md, labels.txt).
case("labels-count-rank3-output", "invalid", "3 labels",
     model(outputs=["c1"]), weights=safetensors(), labels=b"a\nb\nc\n")
case("labels-count-two-outputs", "invalid", '2 labels, but output "prob"',
     model(outputs=["prob", "c1"]), weights=safetensors(), labels=b"a\nb\n")
case("labels-named-but-missing", "io", "nolabels.txt: cannot open", model(labels="nolabels.txt"), weights=safetensors())

# ---------------------------------------------------------------- weights
W = model()
case("weights-missing-file", "io", "weights.safetensors: cannot open", W)
case("weights-named-file-missing", "io", "other.safetensors: cannot open", model(weights="other.safetensors"))
case("weights-is-a-folder", "io", "weights.safetensors: not a regular file", W,
     extra={"weights.safetensors/.keep": b""})
case("weights-empty-file", "parse", "0 bytes: too short for a safetensors file", W, weights=b"")
case("weights-shorter-than-8", "parse", "5 bytes: too short for a safetensors file", W, weights=b"\x10\0\0\0\0")
case("weights-header-past-end", "parse", "header of 4096 bytes does not fit in the file's",
     W, weights=safetensors(length=4096))
case("weights-header-huge", "limit", "header of 18446744073709551615 bytes, more than the limit",
     W, weights=safetensors(length=2**64 - 1))
case("weights-header-over-limit", "limit", "header of 104857601 bytes, more than the limit",
     W, weights=safetensors(length=100 * 2**20 + 1))
case("weights-header-not-json", "parse", "weights.safetensors: invalid JSON", W,
     weights=safetensors(raw_header=b"not json"))
case("weights-header-not-object", "parse", "the header is not a JSON object", W,
     weights=safetensors(raw_header=b"[1,2,3]"))
case("weights-header-nul", "parse", "NUL byte", W, weights=safetensors(raw_header=b'{"a":\0}'))
case("weights-header-too-deep", "limit", "weights.safetensors: JSON nested", W,
     weights=safetensors(raw_header=b'{"__metadata__":' + b"[" * 40 + b"]" * 40 + b"}"))
case("weights-missing-tensor", "invalid", 'tensor "fc.bias" is missing (layer "fc" needs it)', W,
     weights=safetensors(TENSORS[:3]))
case("weights-missing-conv-bias", "invalid", 'tensor "c1.bias" is missing (layer "c1" needs it)', W,
     weights=safetensors([TENSORS[0]] + TENSORS[2:]))
case("weights-extra-tensor", "invalid", 'tensor "bn1.running_mean" is used by no layer', W,
     weights=safetensors(TENSORS + [("bn1.running_mean", [2])]))
case("weights-bias-false-but-present", "invalid", 'tensor "c1.bias" is used by no layer',
     model(set_field("c1", bias=False)), weights=safetensors())
case("weights-wrong-shape", "invalid", 'tensor "fc.weight" has shape [3, 9], layer "fc" needs [3, 8]', W,
     weights=safetensors([TENSORS[0], TENSORS[1], ("fc.weight", [3, 9]), TENSORS[3]]))
case("weights-shape-not-squeezed", "invalid", 'tensor "fc.weight" has shape [3, 8, 1, 1], layer "fc" needs [3, 8]', W,
     weights=safetensors([TENSORS[0], TENSORS[1], ("fc.weight", [3, 8, 1, 1]), TENSORS[3]]))


def edited_header(fn):
    h = header_of()
    fn(h)
    return h


DATA = tensor_data()  # the 188 bytes of the base tensors
case("weights-dtype-i64", "invalid", 'tensor "fc.bias": dtype "I64" is not supported', W,
     weights=safetensors(header=edited_header(lambda h: h["fc.bias"].update(dtype="I64"))))
case("weights-dtype-not-string", "invalid", 'tensor "fc.bias": "dtype" must be a string', W,
     weights=safetensors(header=edited_header(lambda h: h["fc.bias"].update(dtype=32))))
case("weights-shape-not-array", "invalid", 'tensor "fc.bias": "shape" must be an array', W,
     weights=safetensors(header=edited_header(lambda h: h["fc.bias"].update(shape=3))))
case("weights-shape-negative", "invalid", 'tensor "fc.bias": shape[0] must be an integer in 0..1048576', W,
     weights=safetensors(header=edited_header(lambda h: h["fc.bias"].update(shape=[-3]))))
case("weights-rank-6", "invalid", 'tensor "fc.bias": rank over 4', W,
     weights=safetensors(header=edited_header(lambda h: h["fc.bias"].update(shape=[3, 1, 1, 1, 1, 1]))))
case("weights-rank-5", "invalid", 'tensor "fc.bias" has shape [3, 1, 1, 1, 1], layer "fc" needs [3]', W,
     weights=safetensors(header=edited_header(lambda h: h["fc.bias"].update(shape=[3, 1, 1, 1, 1]))))
case("weights-unknown-key", "invalid", 'unknown field "offsets" in tensor "fc.bias"', W,
     weights=safetensors(header=edited_header(lambda h: h["fc.bias"].update(offsets=[0, 1]))))
case("weights-offsets-outside-data", "invalid", 'tensor "fc.bias": data_offsets [176, 200] are not inside the 188 bytes', W,
     weights=safetensors(header=edited_header(lambda h: h["fc.bias"].update(data_offsets=[176, 200]))))
case("weights-offsets-huge", "invalid", "are not inside the 188 bytes of data", W,
     weights=safetensors(header=edited_header(lambda h: h["fc.bias"].update(data_offsets=[1e300, 1e301]))))
case("weights-offsets-reversed", "invalid", 'tensor "fc.bias": data_offsets [188, 176] are not inside', W,
     weights=safetensors(header=edited_header(lambda h: h["fc.bias"].update(data_offsets=[188, 176]))))
case("weights-offsets-not-pair", "invalid", 'tensor "fc.bias": "data_offsets" must be [begin, end]', W,
     weights=safetensors(header=edited_header(lambda h: h["fc.bias"].update(data_offsets=[176]))))
case("weights-offsets-strings", "invalid", 'tensor "fc.bias": "data_offsets" must be [begin, end]', W,
     weights=safetensors(header=edited_header(lambda h: h["fc.bias"].update(data_offsets=["176", "188"]))))
case("weights-offsets-span-mismatch", "invalid", 'tensor "fc.bias": data_offsets span 8 bytes, its shape and dtype need 12', W,
     weights=safetensors(header=edited_header(lambda h: h["fc.bias"].update(data_offsets=[176, 184])),
                         data=DATA[:184]))
case("weights-f16-span-mismatch", "invalid", 'tensor "fc.bias": data_offsets span 12 bytes, its shape and dtype need 6', W,
     weights=safetensors(header=edited_header(lambda h: h["fc.bias"].update(dtype="F16"))))
case("weights-overlapping-tensors", "invalid", 'tensors "fc.weight" and "fc.bias" overlap', W,
     weights=safetensors(header=edited_header(lambda h: h["fc.bias"].update(data_offsets=[172, 184])),
                         data=DATA[:184]))
case("weights-gap-between-tensors", "invalid", "bytes 80..84 of the data belong to no tensor", W,
     weights=safetensors(header=edited_header(lambda h: (h["fc.weight"].update(data_offsets=[84, 180]),
                                                         h["fc.bias"].update(data_offsets=[180, 192]))),
                         data=DATA[:80] + b"\0\0\0\0" + DATA[80:]))
case("weights-trailing-bytes", "invalid", "4 bytes after the last tensor belong to no tensor", W,
     weights=safetensors(data=DATA + b"\0\0\0\0"))
case("weights-data-truncated", "invalid", "are not inside the 180 bytes", W, weights=safetensors(data=DATA[:180]))
HDR = json.dumps(header_of(), separators=(",", ":")).encode()
case("weights-duplicate-tensor-names", "parse", 'duplicate key "fc.bias"', W,
     weights=safetensors(raw_header=HDR[:-1] + b',"fc.bias":{"dtype":"F32","shape":[3],"data_offsets":[176,188]}}'))
case("weights-metadata-not-strings", "invalid", '__metadata__ value "epochs" must be a string', W,
     weights=safetensors(header=edited_header(lambda h: h.update(__metadata__={"epochs": 3}))))
case("weights-entry-not-object", "invalid", 'tensor "fc.bias" must be an object', W,
     weights=safetensors(header=edited_header(lambda h: h.update({"fc.bias": [176, 188]}))))

# ---------------------------------------------------------------- images


def png_chunk(kind, data, crc=None):
    c = zlib.crc32(kind + data) & 0xFFFFFFFF if crc is None else crc
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", c)


def png(width, height, pixels=None, color_type=0, idat=None, ihdr_crc=None, idat_crc=None):
    """A gray 8-bit PNG; pixels: bytes of width*height (default a gradient)."""
    sig = b"\x89PNG\r\n\x1a\n"
    ihdr = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    if idat is None:
        if pixels is None:
            pixels = bytes((x * 9 + y * 5) & 255 for y in range(height) for x in range(width))
        rows = b"".join(b"\0" + pixels[y * width:(y + 1) * width] for y in range(height))
        idat = zlib.compress(rows, 9)
    out = sig + png_chunk(b"IHDR", ihdr, ihdr_crc)
    if idat != b"":
        out += png_chunk(b"IDAT", idat, idat_crc)
    return out + png_chunk(b"IEND", b"")


def png_header_only(width, height):
    sig = b"\x89PNG\r\n\x1a\n"
    return sig + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))


def jpeg_28():
    """A valid 28x28 gray baseline JPEG."""
    try:
        from PIL import Image
    except ImportError:
        return None
    img = Image.new("L", (28, 28))
    img.putdata([(x * 9 + y * 5) & 255 for y in range(28) for x in range(28)])
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def jpeg_sof_only(width, height):
    """SOI, one quantisation table, SOF0 (gray) with the given size: the
    header a decoder reads for the size, and nothing after it."""
    soi = b"\xff\xd8"
    dqt = b"\xff\xdb" + struct.pack(">H", 67) + b"\x00" + bytes([1] * 64)
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return soi + dqt + sof


IMAGES = []


def image(name, status, substring, data):
    """data: bytes, None (no file), or "dir" (a folder)."""
    IMAGES.append((name, status, substring, data))


VALID = png(28, 28)
# Corrupt the deflate data in the middle of IDAT but keep its CRC right.
_idat = bytearray(zlib.compress(b"".join(b"\0" + bytes(28) for _ in range(28)), 9))
for _k in range(2, len(_idat) - 4):
    _idat[_k] ^= 0xA5
image("missing.png", "io", "missing.png: cannot open", None)
image("empty.png", "parse", "not a PNG or JPEG image", b"")
image("text.png", "parse", "not a PNG or JPEG image", b"this is not an image\n")
image("truncated.png", "parse", "chunk IDAT runs past the end", VALID[: len(VALID) // 2])
image("truncated-after-ihdr.png", "parse", "truncated PNG", png_header_only(28, 28))
image("bad-idat-data.png", "parse", "cannot decode", png(28, 28, idat=bytes(_idat)))
image("bad-idat-crc.png", "parse", "CRC", png(28, 28, idat_crc=0x12345678))
image("bad-signature.png", "parse", "not a PNG or JPEG image", b"\x89PNX" + VALID[4:])
image("zero-width.png", "parse", "0x28 pixels has no pixels", png_header_only(0, 28) + png_chunk(b"IEND", b""))
image("huge-100000x100000.png", "limit", "100000x100000", png_header_only(100000, 100000))
image("huge-pixels-10000x10000.png", "limit", "10000x10000 pixels is over the limits", png_header_only(10000, 10000))
image("huge-side-20000x2.png", "limit", "20000x2", png_header_only(20000, 2))
image("wrong-size-30x30.png", "invalid", "the model wants 28x28", png(30, 30))
image("rgb-wrong-size-29x28.png", "invalid", "image is 29x28 (width x height), the model wants 28x28",
      png(29, 28, color_type=2, idat=zlib.compress(b"".join(b"\0" + bytes(29 * 3) for _ in range(28)))))
JPEG = jpeg_28()
if JPEG is None:  # no PIL: a header that claims 28x28, then no scan at all
    JPEG = jpeg_sof_only(28, 28) + b"\xff\xd9"
image("truncated.jpg", "parse", "cannot decode", JPEG[: len(JPEG) // 2])
image("header-only.jpg", "parse", "cannot decode", jpeg_sof_only(28, 28))
image("huge-60000x60000.jpg", "limit", "60000x60000", jpeg_sof_only(60000, 60000))
image("gif.gif", "parse", "not a PNG or JPEG image",
      b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
      b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")
image("bmp.bmp", "parse", "not a PNG or JPEG image",
      b"BM" + struct.pack("<IHHI", 58, 0, 0, 54) + struct.pack("<IiiHHIIiiII", 40, 1, 1, 1, 24, 0, 4, 2835, 2835, 0, 0)
      + b"\x00\x00\xff\x00")
image("gif-named.png", "parse", "not a PNG or JPEG image", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;")
image("directory.png", "io", "directory.png: not a regular file", "dir")

# Weights holding NaN or infinity (issue 6): refused unless the caller sets
# allow_nonfinite; the message names the first such tensor and the counts.
def _with_values(at_values):
    data = bytearray(DATA)
    for at, value in at_values:
        data[4 * at:4 * at + 4] = struct.pack("<f", value)
    return bytes(data)


case("weights-nan", "invalid", 'tensor "c1.weight" holds 1 NaN and 0 infinite values (of 18); set allow_nonfinite', W,
     weights=safetensors(data=_with_values([(3, float("nan"))])))
case("weights-inf-in-two-tensors", "invalid",
     'tensor "c1.bias" holds 0 NaN and 2 infinite values (of 2), and 1 more tensor holds some', W,
     weights=safetensors(data=_with_values([(18, float("inf")), (19, float("-inf")), (30, float("nan"))])))

# Inputs the fuzzers crashed on (tests/fuzz/crashes/, issue 6), fixed: each
# must now fail cleanly. The bytes live in tests/fuzz/crashes/ only.
FUZZ_CRASHES = os.path.join(HERE, "..", "..", "fuzz", "crashes")
for crash, status, substring in [
        # stb_image 2.27 wrote past its Huffman table (a DHT of > 256 codes)
        ("image/jpeg-dht-over-256-codes", "parse", "damaged JPEG image"),
        # stb_image asserted in stbi__jpeg_huff_decode (codes not matching their table)
        ("image/jpeg-huffman-code-assert", "parse", "cannot decode the JPEG data"),
        # stb_image shifted by 32 (its bit count negative after a marker in the data)
        ("image/jpeg-shift-by-32", "parse", "cannot decode the JPEG data"),
        # stb_image decoded a scan with Huffman tables no DHT defined (uninitialised
        # memory, symbol ids out of bounds): one read past values[], one a SEGV.
        # stb.c zeroes stb's memory; the first now fails, the second decodes (24x20).
        ("image/jpeg-huffman-negative-index", "parse", "cannot decode the JPEG data"),
        ("image/jpeg-undefined-huffman-table", "invalid", "image is 24x20 (width x height), the model wants 28x28"),
]:
    with open(os.path.join(FUZZ_CRASHES, crash), "rb") as f:
        image("fuzz-%s.jpg" % os.path.basename(crash), status, substring, f.read())


def main():
    for sub in ("models", "images", "base"):
        shutil.rmtree(os.path.join(HERE, sub), ignore_errors=True)
    write(os.path.join(HERE, "base", "model.json"), json.dumps(BASE, indent=1) + "\n")
    write(os.path.join(HERE, "base", "weights.safetensors"), safetensors())
    write(os.path.join(HERE, "base", "labels.txt"), "a\nb\nc\n")
    for name, status, substring, obj, text, weights, labels, extra in CASES:
        d = os.path.join(HERE, "models", name)
        os.makedirs(d)
        write(os.path.join(d, "model.json"), text if text is not None else dumps(obj if obj is not None else BASE))
        if weights is not None:
            write(os.path.join(d, "weights.safetensors"), safetensors() if weights is True else weights)
        if labels is not None:
            write(os.path.join(d, "labels.txt"), labels)
        for rel, data in (extra or {}).items():
            write(os.path.join(d, rel), data)
        write(os.path.join(d, "expect"), "%s\n%s\n" % (status, substring))
    d = os.path.join(HERE, "images")
    os.makedirs(d)
    for name, status, substring, data in IMAGES:
        if data == "dir":
            write(os.path.join(d, name, ".keep"), b"")
        elif data is not None:
            write(os.path.join(d, name), data)
        write(os.path.join(d, name + ".expect"), "%s\n%s\n" % (status, substring))
    print("%d model cases, %d image cases" % (len(CASES), len(IMAGES)))


if __name__ == "__main__":
    main()
