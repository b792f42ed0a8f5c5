#!/usr/bin/python3
"""Train a small VGG-style net on Fashion-MNIST and write the rectify model folder.

Data: Debian's package dataset-fashion-mnist (Zalando SE, MIT/Expat licence),
which installs the four IDX files of the original distribution, gzipped, in
/usr/share/datasets/fashion-mnist/ (`apt-get install dataset-fashion-mnist`).
The script reads them with gzip and numpy, checks the IDX headers, the counts
(60,000 training and 10,000 test images, 28x28 uint8) and the SHA-256 of the
decompressed data.

Split: the official one. Training on the 60,000 training images; the 10,000
test images are never trained on, the last epoch is shipped (no early
stopping, no model selection on the test split). "Test index" below is the
position of an image in t10k-images-idx3-ubyte (0..9999).

Network (layer names = PyTorch attribute names = tensor names):
  conv1 32@3x3 pad 1, relu1, conv2 32@3x3 pad 1, relu2, pool1 max 2,
  conv3 64@3x3 pad 1, relu3, conv4 64@3x3 pad 1, relu4, pool2 max 2,
  flat, fc1 dense 256, relu5, [dropout: training only], fc2 dense 10, prob softmax.
Dropout before fc2 while training only. With --batchnorm (off by default: it
makes a step about 3x slower with Debian's CPU build of PyTorch) each conv is
followed by a BatchNorm2d while training (bn1..bn4); the batch norms are then
folded into the convs' weights and biases before export, so the exported
graph has none, and the export is checked against the unfolded PyTorch model.

Preprocessing exactly as the C engine applies it from model.json:
    x = (byte * (1/255) - 0.2860) / 0.3530
(the mean and standard deviation of the 60,000 training images, rounded).

Output folder (--out, default models/fashion-vgg): model.json,
weights.safetensors, labels.txt, samples/<class>-<name>.png (for each class the
first test image, by test index, that the trained model classifies correctly).
Also writes the fashion-vgg section of models/README.md, including a table
of per-layer ReLU sparsity of the trained weights against He-initialised ones
(measured with build/tools/rectify init + sparsity, when the CLI is built).

Only /usr/bin/python3 with Debian's python3-torch and python3-numpy are
needed; python3-pil is used for PNG files when present (a small built-in PNG
writer/reader is used otherwise).
"""

import argparse
import gzip
import hashlib
import json
import os
import signal
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# On a machine shared with other work, OpenMP threads that spin while they
# wait for each other take the CPU from the thread that has work: a passive
# wait makes a training step about twice as fast there (no effect on results).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from mnist_common import log, numpy_forward, read_png_gray, sha256_file, update_readme, write_png_gray  # noqa: E402
from rectify_import import read_safetensors, write_safetensors  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "models" / "fashion-vgg"
DEFAULT_DATA = Path("/usr/share/datasets/fashion-mnist")
DEFAULT_README = REPO_ROOT / "models" / "README.md"
DEFAULT_RUN_TENSOR = REPO_ROOT / "build" / "tests" / "run_tensor"
DEFAULT_RECTIFY = REPO_ROOT / "build" / "tools" / "rectify"
DEBIAN_PACKAGE = "dataset-fashion-mnist"
COPYRIGHT_FILE = Path("/usr/share/doc/dataset-fashion-mnist/copyright")

MODEL_NAME = "fashion-vgg"
IDX_FILES = {  # key: (file, IDX magic, count)
    "train_images": ("train-images-idx3-ubyte.gz", 2051, 60000),
    "train_labels": ("train-labels-idx1-ubyte.gz", 2049, 60000),
    "test_images": ("t10k-images-idx3-ubyte.gz", 2051, 10000),
    "test_labels": ("t10k-labels-idx1-ubyte.gz", 2049, 10000),
}
# SHA-256 of the decompressed IDX files (the .gz bytes may differ between
# package versions, the data must not).
IDX_SHA256 = {
    "train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
SLUGS = ["tshirt-top", "trouser", "pullover", "dress", "coat",
         "sandal", "shirt", "sneaker", "bag", "ankle-boot"]
SCALE = 0.00392156862745098  # 1/255
MEAN = 0.2860
STD = 0.3530
CONVS = [("conv1", 1, 32), ("conv2", 32, 32), ("conv3", 32, 64), ("conv4", 64, 64)]
# Tensors the graph needs, in graph order, with their shapes.
TENSORS = [
    ("conv1.weight", (32, 1, 3, 3)), ("conv1.bias", (32,)),
    ("conv2.weight", (32, 32, 3, 3)), ("conv2.bias", (32,)),
    ("conv3.weight", (64, 32, 3, 3)), ("conv3.bias", (64,)),
    ("conv4.weight", (64, 64, 3, 3)), ("conv4.bias", (64,)),
    ("fc1.weight", (256, 3136)), ("fc1.bias", (256,)),
    ("fc2.weight", (10, 256)), ("fc2.bias", (10,)),
]
RELUS = ["relu1", "relu2", "relu3", "relu4", "relu5"]
README_BEGIN = "<!-- fashion-vgg:begin -->"
README_END = "<!-- fashion-vgg:end -->"




class Interrupted(Exception):
    pass


def _on_sigterm(signum, frame):  # turn SIGTERM into a clean stop, as Ctrl-C
    raise Interrupted(f"signal {signum}")


# --------------------------------------------------------------------------
# Data




def read_idx(path, magic, count):
    """Read a gzipped IDX file; return (uint8 array, SHA-256 of the decompressed bytes)."""
    if not path.exists():
        sys.exit(f"error: {path} not found; install Debian's package {DEBIAN_PACKAGE} "
                 f"(apt-get install {DEBIAN_PACKAGE}) or give --data")
    with gzip.open(path, "rb") as f:
        blob = f.read()
    (m,) = struct.unpack_from(">I", blob, 0)
    if m != magic:
        sys.exit(f"error: {path}: IDX magic {m:#x}, expected {magic:#x}")
    ndim = m & 0xff
    dims = struct.unpack_from(f">{ndim}I", blob, 4)
    off = 4 + 4 * ndim
    if dims[0] != count or (ndim == 3 and dims[1:] != (28, 28)):
        sys.exit(f"error: {path}: shape {dims}, expected {count}" + ("x28x28" if ndim == 3 else ""))
    if len(blob) != off + int(np.prod(dims)):
        sys.exit(f"error: {path}: {len(blob) - off} data bytes, expected {int(np.prod(dims))}")
    arr = np.frombuffer(blob, dtype=np.uint8, offset=off).reshape(dims).copy()
    return arr, hashlib.sha256(blob).hexdigest()


def load_dataset(folder):
    """Return (x_train, y_train, x_test, y_test, {file: sha256})."""
    out, digests = {}, {}
    for key, (fname, magic, count) in IDX_FILES.items():
        arr, digest = read_idx(Path(folder) / fname, magic, count)
        expected = IDX_SHA256.get(fname)
        if expected and digest != expected:
            sys.exit(f"error: {folder}/{fname}: decompressed SHA-256 {digest}, expected {expected}")
        out[key], digests[fname] = arr, digest
    for key in ("train_labels", "test_labels"):
        if out[key].max() > 9:
            sys.exit(f"error: {key} holds a label {out[key].max()} > 9")
        out[key] = out[key].astype(np.int64)
    return out["train_images"], out["train_labels"], out["test_images"], out["test_labels"], digests


def normalise(u8):
    """uint8 [N,28,28] tensor -> float32 [N,1,28,28], exactly as model.json says."""
    x = u8.to(torch.float32) * torch.tensor(SCALE, dtype=torch.float32)
    return ((x - torch.tensor(MEAN, dtype=torch.float32)) / torch.tensor(STD, dtype=torch.float32)).unsqueeze(1)


def augment(u8, shift, flip, gen):
    """Random horizontal flip and random shift by up to `shift` pixels (zero fill)."""
    n = u8.shape[0]
    if flip:
        mask = torch.rand(n, generator=gen) < 0.5
        u8 = torch.where(mask[:, None, None], u8.flip(2), u8)
    if shift > 0:
        p = shift
        padded = F.pad(u8, (p, p, p, p))
        dy = torch.randint(0, 2 * p + 1, (n,), generator=gen)
        dx = torch.randint(0, 2 * p + 1, (n,), generator=gen)
        ar = torch.arange(28)
        rows = (dy[:, None] + ar)[:, :, None]
        cols = (dx[:, None] + ar)[:, None, :]
        u8 = padded[torch.arange(n)[:, None, None], rows, cols]
    return u8


# --------------------------------------------------------------------------
# Model


class FashionVGG(nn.Module):
    """The exported graph plus, for training, BatchNorm after each conv and dropout.

    fc1 is computed as a 7x7 convolution over the 64x7x7 feature map with
    fc1.weight viewed as [256, 64, 7, 7]: the same sums as Linear on the
    flattened map (flatten order channel, row, column), but run by oneDNN
    instead of the BLAS that Debian's torch is linked with (netlib's reference
    BLAS unless an optimised one is installed, and several times slower)."""

    def __init__(self, dropout=0.4, batchnorm=False):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 32, 3, padding=1)
        self.conv3 = nn.Conv2d(32, 64, 3, padding=1)
        self.conv4 = nn.Conv2d(64, 64, 3, padding=1)
        self.batchnorm = batchnorm
        if batchnorm:
            self.bn1 = nn.BatchNorm2d(32)
            self.bn2 = nn.BatchNorm2d(32)
            self.bn3 = nn.BatchNorm2d(64)
            self.bn4 = nn.BatchNorm2d(64)
        self.fc1 = nn.Linear(64 * 7 * 7, 256)
        self.drop = nn.Dropout(dropout)
        self.fc2 = nn.Linear(256, 10)
        for m in (self.conv1, self.conv2, self.conv3, self.conv4, self.fc1, self.fc2):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            nn.init.zeros_(m.bias)

    def _cbr(self, i, x):
        x = getattr(self, f"conv{i}")(x)
        if self.batchnorm:
            x = getattr(self, f"bn{i}")(x)
        return F.relu(x, inplace=True)

    def forward(self, x):  # returns logits; "prob" is softmax(logits)
        x = self._cbr(1, x)
        x = F.max_pool2d(self._cbr(2, x), 2, 2)
        x = self._cbr(3, x)
        x = F.max_pool2d(self._cbr(4, x), 2, 2)
        x = F.conv2d(x, self.fc1.weight.view(256, 64, 7, 7), self.fc1.bias).flatten(1)
        x = self.drop(F.relu(x))
        return self.fc2(x)


def folded_state(model):
    """The exported tensors: {name: float32 numpy}, batch norms folded into the convs."""
    sd = {k: v.detach().to(torch.float64) for k, v in model.state_dict().items()}
    out = {}
    for name, _, _ in CONVS:
        w, b = sd[f"{name}.weight"], sd[f"{name}.bias"]
        if model.batchnorm:
            bn = "bn" + name[-1]
            eps = getattr(model, bn).eps
            s = sd[f"{bn}.weight"] / torch.sqrt(sd[f"{bn}.running_var"] + eps)
            w = w * s[:, None, None, None]
            b = (b - sd[f"{bn}.running_mean"]) * s + sd[f"{bn}.bias"]
        out[f"{name}.weight"], out[f"{name}.bias"] = w, b
    for name in ("fc1", "fc2"):
        out[f"{name}.weight"], out[f"{name}.bias"] = sd[f"{name}.weight"], sd[f"{name}.bias"]
    return {k: v.to(torch.float32).numpy() for k, v in out.items()}


def model_json(test_accuracy, batchnorm=False):
    return {
        "format": "rectify",
        "version": 1,
        "name": MODEL_NAME,
        "description": ("Small VGG-style Fashion-MNIST classifier (28x28 gray, white item on black). "
                        "Trained by tools/train_fashion.py on the 60,000 training images of Debian's "
                        "dataset-fashion-mnist (Zalando SE, MIT); "
                        f"{test_accuracy * 100:.2f}% accuracy on the 10,000 test images."
                        + (" Batch norms folded into the convs." if batchnorm else "")),
        "input": {
            "name": "image",
            "shape": [1, 28, 28],
            "preprocess": {"color": "gray", "scale": SCALE, "mean": [MEAN], "std": [STD]},
        },
        "weights": "weights.safetensors",
        "labels": "labels.txt",
        "layers": [
            {"name": "conv1", "op": "conv", "out_channels": 32, "kernel": 3, "padding": 1},
            {"name": "relu1", "op": "relu"},
            {"name": "conv2", "op": "conv", "out_channels": 32, "kernel": 3, "padding": 1},
            {"name": "relu2", "op": "relu"},
            {"name": "pool1", "op": "maxpool", "kernel": 2, "stride": 2},
            {"name": "conv3", "op": "conv", "out_channels": 64, "kernel": 3, "padding": 1},
            {"name": "relu3", "op": "relu"},
            {"name": "conv4", "op": "conv", "out_channels": 64, "kernel": 3, "padding": 1},
            {"name": "relu4", "op": "relu"},
            {"name": "pool2", "op": "maxpool", "kernel": 2, "stride": 2},
            {"name": "flat", "op": "flatten"},
            {"name": "fc1", "op": "dense", "units": 256},
            {"name": "relu5", "op": "relu"},
            {"name": "fc2", "op": "dense", "units": 10},
            {"name": "prob", "op": "softmax"},
        ],
        "outputs": ["prob"],
    }


# --------------------------------------------------------------------------
# safetensors (as in tools/train_mnist.py)






# --------------------------------------------------------------------------
# PNG (8-bit grayscale, as in tools/train_mnist.py)








# --------------------------------------------------------------------------
# Independent numpy forward pass from model.json + weights.safetensors




def rel_diff(a, b):
    """max |a - b| / max |b|: the tolerance measure of the importers' checks."""
    return float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max()
                 / np.abs(np.asarray(b, np.float64)).max())


def run_c_engine(run_tensor, folder, images_u8):
    """Run the C engine (tests/tools/run_tensor) on the images; return prob [N,10]."""
    x = normalise(torch.from_numpy(images_u8)).numpy().astype("<f4")
    with tempfile.TemporaryDirectory(prefix="train_fashion.") as tmp:
        inp = Path(tmp) / "input.f32"
        inp.write_bytes(x.tobytes())
        res = subprocess.run([str(run_tensor), str(folder), str(inp), tmp],
                             capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"{run_tensor} failed: {res.stderr.strip()}")
        out = np.fromfile(Path(tmp) / "output-0.f32", dtype="<f4")
    return out.reshape(len(images_u8), 10)


# --------------------------------------------------------------------------
# Training


@torch.no_grad()
def predict(model, u8, batch=500):
    """uint8 numpy [N,28,28] -> (pred int64 [N], prob float32 [N,10])."""
    model.eval()
    logits = torch.cat([
        model(normalise(torch.from_numpy(u8[i:i + batch])).contiguous(memory_format=torch.channels_last))
        for i in range(0, len(u8), batch)])
    prob = torch.softmax(logits, dim=1)
    return prob.argmax(1).numpy(), prob.numpy()


def make_optimizer(args, model):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (decay if name.endswith(".weight") and not name.startswith("bn") else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": args.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    if args.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=args.lr)
    return torch.optim.SGD(groups, lr=args.lr, momentum=0.9, nesterov=True)


def train(args, x_train, y_train, x_test, y_test):
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    model = FashionVGG(dropout=args.dropout, batchnorm=args.batchnorm)
    model = model.to(memory_format=torch.channels_last)
    opt = make_optimizer(args, model)
    steps_per_epoch = (len(x_train) + args.batch - 1) // args.batch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, epochs=args.epochs,
                                                steps_per_epoch=steps_per_epoch, pct_start=0.25)
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
    t_start = time.time()
    history = []
    for epoch in range(1, args.epochs + 1):
        t0 = time.time()
        model.train()
        order = torch.randperm(len(xt), generator=gen)
        total_loss, correct, seen = 0.0, 0, 0
        for step, s in enumerate(range(0, len(xt), args.batch)):
            idx = order[s:s + args.batch]
            xb = augment(xt[idx], args.shift, not args.no_flip, gen)
            logits = model(normalise(xb).contiguous(memory_format=torch.channels_last))
            loss = F.cross_entropy(logits, yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total_loss += loss.item() * len(idx)
            correct += (logits.argmax(1) == yt[idx]).sum().item()
            seen += len(idx)
            if args.progress and step % args.progress == 0 and step:
                el = time.time() - t0
                log(f"  epoch {epoch} step {step}/{steps_per_epoch}  loss {total_loss / seen:.4f}  "
                    f"{el:.0f}s, epoch ETA {el / (step + 1) * steps_per_epoch - el:.0f}s")
        line = (f"epoch {epoch:2d}/{args.epochs}  lr {sched.get_last_lr()[0]:.4f}  "
                f"loss {total_loss / seen:.4f}  train acc {correct / seen * 100:6.2f}%")
        test_acc = None
        if args.eval_each_epoch:
            pred, _ = predict(model, x_test)
            test_acc = float((pred == y_test).mean())
            line += f"  test acc {test_acc * 100:6.2f}%"
        el = time.time() - t_start
        line += f"  ({time.time() - t0:.0f}s; total {el:.0f}s"
        if epoch < args.epochs:
            line += f", ETA {el / epoch * (args.epochs - epoch):.0f}s"
        log(line + ")")
        history.append({"epoch": epoch, "loss": total_loss / seen, "train_acc": correct / seen,
                        "test_acc": test_acc, "seconds": time.time() - t0})
    return model.eval(), history


def load_model_from_folder(folder):
    """The shipped (folded) weights as a FashionVGG without batch norm."""
    weights, meta = read_safetensors(Path(folder) / "weights.safetensors", metadata=True)
    model = FashionVGG(batchnorm=False)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
    return model.to(memory_format=torch.channels_last).eval(), meta


# --------------------------------------------------------------------------
# Test export, sparsity, README


def export_test(model, folder, x_test, y_test, count):
    """Write the first `count` test images as DIR/<class>/<index>.png and
    DIR/pytorch-accuracy.json (PyTorch accuracy over the PNG bytes)."""
    folder = Path(folder)
    n = len(x_test) if count is None else min(count, len(x_test))
    for d in range(10):
        (folder / str(d)).mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(n):
        rel = f"{y_test[i]}/{i:04d}.png"
        write_png_gray(folder / rel, x_test[i])
        files.append(rel)
    back = np.stack([read_png_gray(folder / rel) for rel in files])
    if not np.array_equal(back, x_test[:n]):
        sys.exit("error: exported PNG pixels differ from the dataset bytes")
    pred, _ = predict(model, back)
    truth = y_test[:n]
    correct = int((pred == truth).sum())
    summary = {
        "model": MODEL_NAME,
        "note": ("Fashion-MNIST test split (t10k), the first %d images by test index; files "
                 "<class index>/<test index>.png; accuracy = PyTorch top-1 accuracy of the "
                 "exported (batch-norm-folded) weights over these exact PNG images" % n),
        "count": n,
        "correct": correct,
        "accuracy": correct / n,
        "images": [{"file": f, "label": int(t), "pred": int(p)}
                   for f, t, p in zip(files, truth, pred)],
    }
    with open(folder / "pytorch-accuracy.json", "w") as f:
        json.dump(summary, f, indent=1)
        f.write("\n")
    log(f"exported {n} test PNGs to {folder}; PyTorch accuracy over them "
        f"{correct}/{n} = {correct / n * 100:.2f}%")
    return summary


def sparsity_table(rectify, folder, n_images, x_test, y_test, init_seed):
    """ReLU sparsity over the first n_images test images, trained vs He-init
    weights, measured by `rectify sparsity`. Returns (rows, info) or None."""
    if not Path(rectify).exists():
        log(f"note: {rectify} not found; no sparsity table")
        return None
    with tempfile.TemporaryDirectory(prefix="train_fashion.") as tmp:
        tmp = Path(tmp)
        export_quiet(tmp / "test", x_test, y_test, n_images)
        he = tmp / "he.safetensors"
        subprocess.run([str(rectify), "init", str(folder), "-o", str(he), "--seed", str(init_seed)],
                       check=True, capture_output=True)
        reports = {}
        for kind, extra in (("trained", []), ("he", ["--weights", str(he)])):
            res = subprocess.run([str(rectify), "sparsity", str(folder), str(tmp / "test"),
                                  "--labels-from-dirs", "--json", "--threads", "1"] + extra,
                                 capture_output=True, text=True)
            if res.returncode != 0:
                raise RuntimeError(f"rectify sparsity failed: {res.stderr.strip()}")
            reports[kind] = json.loads(res.stdout)
    rows = []
    for lt, lh in zip(reports["trained"]["layers"], reports["he"]["layers"]):
        if lt["op"] == "relu":
            rows.append((lt["name"], lt["shape"], lt["sparsity"], lh["sparsity"],
                         lt["min"], lt["max"]))
    info = {k: {"relu_sparsity": r["relu_sparsity"], "accuracy": r.get("accuracy"),
                "zero_mac_fraction": r["zero_mac_fraction"], "images": r["images"]}
            for k, r in reports.items()}
    return rows, info


def export_quiet(folder, x_test, y_test, n):
    for d in range(10):
        (folder / str(d)).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        write_png_gray(folder / str(y_test[i]) / f"{i:04d}.png", x_test[i])




def fmt_pct(x):
    return f"{x * 100:.1f}%"


def readme_section(meta, n_params, samples, weights_sha, sparsity, checks):
    m = meta
    acc = int(m["test_correct"]) / 10000
    rows = "\n".join(
        f"| `samples/{fname}` | {d} {CLASSES[d]} | {idx} | {CLASSES[pred]} | {prob:.6f} |"
        for d, fname, idx, pred, prob in samples)
    epochs_line = m.get("epoch_seconds", "")
    defaults_text = (f" (all settings at their defaults: `--seed {m['seed']} --epochs {m['epochs']}`, "
                     f"see `--help`)"
                     if m["command"].strip() == "/usr/bin/python3 tools/train_fashion.py" else "")
    total = m.get("total_seconds", "?")
    total_text = f"; the whole script, checks and sparsity table included, {total} s" if total != "?" else ""
    opt_text = ("AdamW (decoupled weight decay)" if m.get("optimizer") == "adamw"
                else "SGD with Nesterov momentum 0.9")
    batchnorm = str(m.get("batchnorm")) == "True"
    bn_text = " or batch-norm parameters" if batchnorm else ""
    folded_text = f" (the exported, folded weights: {m['folded_correct']}/10000)" if batchnorm else ""
    if batchnorm:
        train_only = (f"For training only: a BatchNorm2d after each conv (folded into the conv's "
                      f"weight and bias at export: `w*g/sqrt(v+eps)`, `(b-mu)*g/sqrt(v+eps)+beta`), "
                      f"and dropout {m['dropout']} between relu5 and fc2; neither is in `model.json`.")
    else:
        train_only = (f"For training only: dropout {m['dropout']} between relu5 and fc2 (not in "
                      f"`model.json`). No batch norm (the script's `--batchnorm` adds one after each "
                      f"conv and folds it at export, but batch norm makes a step about 3x slower "
                      f"with this CPU build of PyTorch).")
    text = f"""## fashion-vgg

A small VGG-style Fashion-MNIST classifier, deeper than lenet5-mnist (4 convs, 5
ReLUs), trained so that the sparsity report shows how a trained net's
activations differ from those of He-initialised weights. Input `image` 1x28x28
gray (white item on black), output `prob` (softmax over the 10 classes, names
in `labels.txt`: {", ".join(CLASSES)}).

- **Data:** Fashion-MNIST (Han Xiao, Kashif Rasul, Roland Vollgraf; Zalando
  SE 2017, <https://github.com/zalandoresearch/fashion-mnist>) as installed by
  Debian's package `dataset-fashion-mnist` ({m["package_version"]}): the four
  gzipped IDX files in `/usr/share/datasets/fashion-mnist/`. Licence: MIT
  (Expat), "Copyright: 2017, Zalando SE" in
  `/usr/share/doc/dataset-fashion-mnist/copyright`. The script checks the IDX
  headers, the counts and the SHA-256 of the decompressed files; the data is
  not part of the repository (`apt-get install dataset-fashion-mnist`).
- **Split:** the official one: trained on the 60,000 images of
  `train-images-idx3-ubyte`, tested on the 10,000 of `t10k-images-idx3-ubyte`
  ("test index" = position in that file). The test split is never trained on;
  the last epoch is shipped (no early stopping, no choice of weights on the
  test split).
- **Architecture** (layer names = PyTorch attribute names = tensor names):
  conv1 32@3x3 pad 1, relu1, conv2 32@3x3 pad 1, relu2, pool1 max 2x2,
  conv3 64@3x3 pad 1, relu3, conv4 64@3x3 pad 1, relu4, pool2 max 2x2, flat,
  fc1 dense 256, relu5, fc2 dense 10, prob softmax; {n_params:,} parameters,
  {m["macs"]} MACs per image. {train_only}
- **Training:** PyTorch {m["torch"]} on the CPU (2 threads, deterministic
  algorithms), seed {m["seed"]}, {m["epochs"]} epochs, batch {m["batch"]}, {opt_text},
  one-cycle learning rate (max {m["lr"]}, 25% warm-up, cosine), weight decay
  {m["weight_decay"]} on the conv and dense weights (not on biases{bn_text}),
  He-normal initialisation (biases 0), augmentation: {m["augmentation"]}.
  Preprocessing exactly as in `model.json`: `(byte/255 - {MEAN:.4f}) / {STD:.4f}` (the mean
  and standard deviation of the 60,000 training images, rounded: {m["train_mean"]},
  {m["train_std"]}).
- **Command:** `{m["command"]}`{defaults_text}.
  Training took **{float(m["train_seconds"]) / 60:.1f} minutes** wall
  ({m["train_seconds"]} s; per epoch {epochs_line} s) on this 2-core machine
  while it was shared with other work{total_text}. The number of epochs was
  set by that time budget (about 25 minutes), not by looking at test accuracy.
  Training is deterministic (fixed seed, 2 threads, `torch.use_deterministic_algorithms`):
  two runs of `--train-subset 6000 --epochs 1` gave bit-identical weights on
  this machine (the full run was made once). Ctrl-C or SIGTERM during training
  stops it and writes nothing.
  `--export-test DIR [--export-count N]` also writes the first N (default all)
  test images as `DIR/<class index>/<test index>.png` plus
  `DIR/pytorch-accuracy.json`; `--no-train --export-test DIR` does that with the
  shipped weights.
- **Test accuracy (PyTorch, 10,000 test images):** {m["test_correct"]}/10000 =
  **{acc * 100:.2f}%**{folded_text}.
- **Checks** (made by the script after writing the folder): {checks}
- `weights.safetensors` SHA-256: `{weights_sha}` (12 F32 tensors, {n_params:,} parameters).
"""
    if sparsity:
        rows_s, info = sparsity
        srows = "\n".join(
            f"| {name} | {'x'.join(map(str, shape))} | {fmt_pct(t)} | {fmt_pct(h)} | "
            f"{fmt_pct(tmin)} .. {fmt_pct(tmax)} |"
            for name, shape, t, h, tmin, tmax in rows_s)
        tr, he = info["trained"], info["he"]
        big = max(rows_s, key=lambda r: abs(r[2] - r[3]))
        change_text = (f"Training moved the share of zeros over all ReLUs from "
                       f"{fmt_pct(he['relu_sparsity'])} (He) to {fmt_pct(tr['relu_sparsity'])}; the "
                       f"largest change is at {big[0]} ({fmt_pct(big[3])} -> {fmt_pct(big[2])}). "
                       f"With He weights every ReLU sits near half zeros; trained, the layers differ.")
        text += f"""
**ReLU sparsity** (share of zeros in each ReLU's output) over the
{tr["images"]:,} test images as PNG files, measured by the C engine:
`rectify sparsity models/fashion-vgg DIR --labels-from-dirs` for the trained
weights, and the same with `--weights he.safetensors` made by
`rectify init models/fashion-vgg -o he.safetensors --seed {m["init_seed"]}` (He-normal,
biases 0) for the same architecture untrained:

| ReLU | shape | trained | He-initialised | trained, per image min .. max |
|------|-------|---------|----------------|-------------------------------|
{srows}
| **all ReLUs** | | **{fmt_pct(tr["relu_sparsity"])}** | **{fmt_pct(he["relu_sparsity"])}** | |

{change_text}
Multiply-accumulates that meet a zero input: {fmt_pct(tr["zero_mac_fraction"])} trained,
{fmt_pct(he["zero_mac_fraction"])} He-initialised. The C engine's accuracy over the same
PNGs: {tr["accuracy"] * 100:.2f}% (PyTorch's: {m.get("png_accuracy", "?")}).
"""
    text += f"""
Samples (`samples/`): for each class the first test image (lowest test index)
that the model classifies correctly; pixel bytes exactly as in the data.
PyTorch outputs:

| file | class | test index | predicted | probability |
|------|-------|------------|-----------|-------------|
{rows}
"""
    return text


def package_version():
    try:
        res = subprocess.run(["dpkg-query", "-W", "-f=${Version}", DEBIAN_PACKAGE],
                             capture_output=True, text=True)
        return res.stdout.strip() or "unknown version"
    except OSError:
        return "unknown version"


def choose_samples(pred, prob, y_test):
    samples = []  # (class, file name, test index, pred, prob)
    for d in range(10):
        hits = np.nonzero((y_test == d) & (pred == d))[0]
        if len(hits) == 0:
            sys.exit(f"error: no test image of class {d} ({CLASSES[d]}) is classified correctly")
        j = int(hits[0])
        samples.append((d, f"{d}-{SLUGS[d]}.png", j, int(pred[j]), float(prob[j, d])))
    return samples


def verify(out, reference_model, x_test, y_test, samples, run_tensor, n_check):
    """Check the written folder against the PyTorch model (numpy forward from
    model.json + safetensors, and the C engine when built). Returns a summary."""
    spec = json.loads((out / "model.json").read_text())
    assert spec["format"] == "rectify" and spec["version"] == 1 and spec["outputs"] == ["prob"]
    assert spec["input"]["shape"] == [1, 28, 28] and spec["name"] == MODEL_NAME
    labels = (out / "labels.txt").read_text().splitlines()
    assert labels == CLASSES, labels
    back = np.stack([read_png_gray(out / "samples" / f) for _, f, _, _, _ in samples])
    if not np.array_equal(back, np.stack([x_test[s[2]] for s in samples])):
        sys.exit("error: sample PNG pixels differ from the dataset bytes")
    imgs = np.concatenate([back, x_test[:n_check]])
    t_pred, t_prob = predict(reference_model, imgs)
    np_prob = numpy_forward(out, imgs)
    d_np = rel_diff(np_prob, t_prob)
    if d_np > 1e-4 or not np.array_equal(np_prob.argmax(1), t_pred):
        sys.exit(f"error: numpy forward from model.json differs from PyTorch (rel {d_np:.2e})")
    if not np.array_equal(t_pred[:10], np.arange(10)):
        sys.exit("error: a sample is not classified correctly")
    msg = (f"a float64 numpy forward pass from `model.json` + `weights.safetensors` "
           f"matches the PyTorch model{' (batch norms unfolded)' if reference_model.batchnorm else ''} on the 10 samples and the first {n_check} "
           f"test images (max relative difference of `prob` {d_np:.1e})")
    log(f"check: numpy forward vs PyTorch on {len(imgs)} images: max rel diff {d_np:.2e}")
    if run_tensor and Path(run_tensor).exists():
        c_prob = run_c_engine(run_tensor, out, imgs)
        d_c = rel_diff(c_prob, t_prob)
        same = int((c_prob.argmax(1) == t_pred).sum())
        log(f"check: C engine ({run_tensor}) vs PyTorch on {len(imgs)} images: "
            f"max rel diff {d_c:.2e}, same class {same}/{len(imgs)}")
        if d_c > 1e-4:
            sys.exit(f"error: the C engine differs from PyTorch (rel {d_c:.2e} > 1e-4)")
        msg += (f"; so does the C engine (`build/tests/run_tensor`) on the same "
                f"{len(imgs)} inputs (max relative difference {d_c:.1e}, same class on all {same})")
    else:
        log(f"note: {run_tensor} not found; the C engine was not compared")
    return msg + "."


def main():
    t_script = time.time()
    ap = argparse.ArgumentParser(
        description="Train a small VGG-style net on Fashion-MNIST (Debian's dataset-fashion-mnist) "
                    "and write the rectify model folder (model.json, weights.safetensors, "
                    "labels.txt, samples/).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="model folder to write")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of the gzipped IDX files")
    ap.add_argument("--epochs", type=int, default=6, help="training epochs")
    ap.add_argument("--seed", type=int, default=0, help="seed for initialisation, shuffling, augmentation, dropout")
    ap.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (one-cycle)")
    ap.add_argument("--batch", type=int, default=128, help="batch size")
    ap.add_argument("--weight-decay", type=float, default=0.05,
                    help="weight decay of conv and dense weights (AdamW: decoupled, times the learning rate)")
    ap.add_argument("--dropout", type=float, default=0.4, help="dropout before fc2 (training only)")
    ap.add_argument("--shift", type=int, default=1, help="max random shift in pixels (0 = none)")
    ap.add_argument("--no-flip", action="store_true", help="no random horizontal flips")
    ap.add_argument("--batchnorm", action="store_true",
                    help="train with a BatchNorm2d after each conv (folded at export; about 3x "
                         "slower per step on this CPU build of PyTorch)")
    ap.add_argument("--optimizer", choices=["sgd", "adamw"], default="adamw",
                    help="SGD with Nesterov momentum 0.9, or AdamW")
    ap.add_argument("--train-subset", type=int, default=0,
                    help="train on the first N training images only (quick checks; 0 = all)")
    ap.add_argument("--eval-each-epoch", action="store_true",
                    help="print the test accuracy after every epoch (costs time; never used to choose)")
    ap.add_argument("--progress", type=int, default=100, help="print progress every N steps (0 = off)")
    ap.add_argument("--min-accuracy", type=float, default=0.90,
                    help="fail (exit 1, nothing written) if the test accuracy is lower")
    ap.add_argument("--check-images", type=int, default=100,
                    help="test images (besides the samples) for the numpy and C engine checks")
    ap.add_argument("--run-tensor", type=Path, default=DEFAULT_RUN_TENSOR,
                    help="the C engine runner (tests/tools/run_tensor); skipped if missing")
    ap.add_argument("--rectify", type=Path, default=DEFAULT_RECTIFY,
                    help="the rectify CLI, for the sparsity table; skipped if missing")
    ap.add_argument("--sparsity-images", type=int, default=10000,
                    help="test images for the README's sparsity table")
    ap.add_argument("--init-seed", type=int, default=0, help="seed of rectify init for the He baseline")
    ap.add_argument("--export-test", type=Path, metavar="DIR",
                    help="also write test images as DIR/<class index>/<test index>.png and "
                         "DIR/pytorch-accuracy.json")
    ap.add_argument("--export-count", type=int, default=None,
                    help="with --export-test: only the first N test images (default all 10,000)")
    ap.add_argument("--no-train", action="store_true",
                    help="do not train: load --out/weights.safetensors, check it, and "
                         "(with --export-test) export; touches the README only with --readme")
    ap.add_argument("--readme", type=Path, default=None,
                    help="README to write the fashion-vgg section into (default: models/README.md "
                         "when training into the default folder)")
    ap.add_argument("--no-readme", action="store_true", help="do not touch any README")
    args = ap.parse_args()

    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    signal.signal(signal.SIGTERM, _on_sigterm)

    x_train, y_train, x_test, y_test, digests = load_dataset(args.data)
    train_mean = float(x_train.mean() / 255.0)
    train_std = float((x_train / 255.0).std())
    log(f"data: {args.data}: train {len(x_train)}, test {len(x_test)} "
        f"(test per class: {np.bincount(y_test, minlength=10).tolist()}); "
        f"training mean {train_mean:.4f} std {train_std:.4f}")
    if abs(train_mean - MEAN) > 5e-4 or abs(train_std - STD) > 5e-4:
        sys.exit(f"error: training mean/std {train_mean:.4f}/{train_std:.4f} differ from "
                 f"{MEAN}/{STD} used in model.json")
    out = args.out

    if args.no_train:
        model, meta = load_model_from_folder(out)
        if "sample_indices" in meta and not args.readme:
            # Quick path (for tests): the samples recorded at training time, no full test pass.
            idx = [int(i) for i in meta["sample_indices"].split(",")]
            pred, prob = predict(model, x_test[idx])
            samples = [(d, f"{d}-{SLUGS[d]}.png", j, int(pred[d]), float(prob[d, d]))
                       for d, j in enumerate(idx)]
        else:
            pred, prob = predict(model, x_test)
            n_correct = int((pred == y_test).sum())
            log(f"loaded {out}; test accuracy {n_correct}/10000 = {n_correct / 100:.2f}%")
            samples = choose_samples(pred, prob, y_test)
        checks = verify(out, model, x_test, y_test, samples, args.run_tensor, args.check_images)
        png_acc = None
        if args.export_test:
            s = export_test(model, args.export_test, x_test, y_test, args.export_count)
            png_acc = s["accuracy"]
        if args.readme and not args.no_readme:
            write_readme(args, out, meta, samples, checks, x_test, y_test, model, png_acc)
        return

    if args.train_subset:
        x_train, y_train = x_train[:args.train_subset], y_train[:args.train_subset]
        log(f"training on the first {len(x_train)} training images only")
    t0 = time.time()
    try:
        model, history = train(args, x_train, y_train, x_test, y_test)
    except (KeyboardInterrupt, Interrupted) as e:
        log(f"interrupted ({e or 'Ctrl-C'}) after {time.time() - t0:.0f}s; nothing written")
        sys.exit(130)
    train_seconds = time.time() - t0
    log(f"training took {train_seconds:.0f}s ({train_seconds / 60:.1f} min)")
    pred, prob = predict(model, x_test)
    n_correct = int((pred == y_test).sum())
    acc = n_correct / len(y_test)
    log(f"final test accuracy: {n_correct}/{len(y_test)} = {acc * 100:.2f}%")
    if acc < args.min_accuracy:
        sys.exit(f"error: test accuracy {acc * 100:.2f}% < {args.min_accuracy * 100:.2f}%; nothing written")

    folded = folded_state(model)
    (out / "samples").mkdir(parents=True, exist_ok=True)
    tensors = []
    for name, shape in TENSORS:
        if tuple(folded[name].shape) != shape:
            sys.exit(f"error: {name} has shape {folded[name].shape}, expected {shape}")
        tensors.append((name, folded[name]))
    fmodel = FashionVGG(batchnorm=False)
    fmodel.load_state_dict({k: torch.from_numpy(v) for k, v in folded.items()})
    fmodel = fmodel.to(memory_format=torch.channels_last).eval()
    f_pred, _ = predict(fmodel, x_test)
    folded_correct = int((f_pred == y_test).sum())
    log(f"folded export: test accuracy {folded_correct}/10000, "
        f"{int((f_pred != pred).sum())} predictions differ from the unfolded model")

    cmd = "/usr/bin/python3 tools/train_fashion.py" + "".join(
        f" {a}" for a in sys.argv[1:])
    macs = 28 * 28 * 32 * 9 + 28 * 28 * 32 * 32 * 9 + 14 * 14 * 64 * 32 * 9 + 14 * 14 * 64 * 64 * 9 \
        + 3136 * 256 + 256 * 10
    aug = []
    if not args.no_flip:
        aug.append("random horizontal flips")
    if args.shift:
        aug.append(f"random shifts of up to {args.shift} pixel{'s' if args.shift > 1 else ''} (zero fill)")
    meta = {
        "format": "pt", "model": MODEL_NAME, "torch": torch.__version__,
        "package_version": package_version(), "seed": args.seed, "epochs": args.epochs,
        "batch": args.batch, "lr": args.lr, "weight_decay": args.weight_decay,
        "dropout": args.dropout, "augmentation": " and ".join(aug) or "none",
        "batchnorm": args.batchnorm, "optimizer": args.optimizer, "train_subset": args.train_subset,
        "train_mean": f"{train_mean:.4f}", "train_std": f"{train_std:.4f}",
        "train_seconds": f"{train_seconds:.0f}",
        "epoch_seconds": ", ".join(f"{h['seconds']:.0f}" for h in history),
        "test_correct": n_correct, "folded_correct": folded_correct, "macs": f"{macs:,}",
        "command": cmd, "init_seed": args.init_seed,
    }
    samples = choose_samples(pred, prob, y_test)
    meta["sample_indices"] = ",".join(str(j) for _, _, j, _, _ in samples)
    write_safetensors(out / "weights.safetensors", tensors, meta)
    with open(out / "model.json", "w") as f:
        json.dump(model_json(acc, args.batchnorm), f, indent=2)
        f.write("\n")
    (out / "labels.txt").write_text("".join(f"{c}\n" for c in CLASSES))
    for old in (out / "samples").glob("*.png"):
        old.unlink()
    for d, fname, j, _, _ in samples:
        write_png_gray(out / "samples" / fname, x_test[j])

    weights = read_safetensors(out / "weights.safetensors")
    if sorted(weights) != sorted(n for n, _ in TENSORS) or \
            any(weights[n].shape != s or not np.array_equal(weights[n], folded[n]) for n, s in TENSORS):
        sys.exit("error: weights.safetensors does not read back identically")
    checks = verify(out, model, x_test, y_test, samples, args.run_tensor, args.check_images)
    for d, fname, idx, p, pr in samples:
        log(f"  samples/{fname:18s} (test index {idx:4d})  -> {CLASSES[p]}  p={pr:.6f}")

    png_acc = None
    if args.export_test:
        png_acc = export_test(fmodel, args.export_test, x_test, y_test, args.export_count)["accuracy"]
    readme = None if args.no_readme else args.readme
    if readme is None and not args.no_readme and out.resolve() == DEFAULT_OUT.resolve():
        readme = DEFAULT_README
    meta["total_seconds"] = f"{time.time() - t_script:.0f}"
    if readme is not None:
        write_readme(args, out, meta, samples, checks, x_test, y_test, fmodel, png_acc, readme)
    log(f"wrote {out}/model.json, weights.safetensors, labels.txt, samples/ "
        f"(script {time.time() - t_script:.0f}s)")


def write_readme(args, out, meta, samples, checks, x_test, y_test, model, png_acc, readme=None):
    readme = readme or args.readme
    meta = dict(meta)
    sp = sparsity_table(args.rectify, out, args.sparsity_images, x_test, y_test,
                        int(meta.get("init_seed", args.init_seed)))
    if sp:
        n = sp[1]["trained"]["images"]
        pred, _ = predict(model, x_test[:n])
        meta["png_accuracy"] = f"{(pred == y_test[:n]).mean() * 100:.2f}%"
        for name, shape, t, h, _, _ in sp[0]:
            log(f"  sparsity {name:6s} trained {t * 100:5.1f}%  He-init {h * 100:5.1f}%")
    meta.setdefault("total_seconds", "?")
    n_params = sum(int(np.prod(s)) for _, s in TENSORS)
    section = readme_section(meta, n_params, samples, sha256_file(out / "weights.safetensors"), sp, checks)
    update_readme(readme, section, README_BEGIN, README_END)
    log(f"wrote the fashion-vgg section of {readme}")


if __name__ == "__main__":
    main()
