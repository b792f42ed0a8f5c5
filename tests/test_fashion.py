#!/usr/bin/python3
"""The shipped fashion-vgg model, run by the C engine over PNG files.

  test_fashion.py RECTIFY RUN_TENSOR SOURCE_ROOT [--count N]

Exports the first N (default 1,000) Fashion-MNIST test images as PNG files
with tools/train_fashion.py --no-train --export-test (which also checks the
shipped folder: a numpy forward pass from model.json + weights.safetensors and
RUN_TENSOR against PyTorch, relative difference <= 1e-4), then checks that
`rectify sparsity --labels-from-dirs` over those PNGs (stb_image,
preprocessing, network: the whole path) finds exactly the number of correct
answers PyTorch found over the same PNG bytes, and that `rectify run`
classifies every shipped sample correctly.

Needs Debian's python3-torch, python3-numpy and dataset-fashion-mnist; exits
77 (skipped) when one is missing. Prints one line per check and the closing
line "N passed, N failed".
"""
import glob
import json
import os
import subprocess
import sys
import tempfile

passed = failed = 0


def check(ok, what, detail=""):
    global passed, failed
    print(("ok    " if ok else "FAIL  ") + what + ("" if ok or not detail else "\n" + detail))
    passed += bool(ok)
    failed += not ok


def run(*args, timeout=120):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout)


def main():
    args = sys.argv[1:]
    count = 1000
    if "--count" in args:
        i = args.index("--count")
        count = int(args[i + 1])
        del args[i:i + 2]
    if len(args) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    rectify, run_tensor, root = args
    model = os.path.join(root, "models", "fashion-vgg")
    script = os.path.join(root, "tools", "train_fashion.py")
    if run("/usr/bin/python3", "-c", "import torch, numpy").returncode != 0:
        print("skipped: /usr/bin/python3 cannot import torch and numpy")
        return 77
    if not os.path.exists("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"):
        print("skipped: Debian's dataset-fashion-mnist is not installed")
        return 77

    with tempfile.TemporaryDirectory(prefix="test_fashion.") as tmp:
        test_dir = os.path.join(tmp, "test")
        r = run("/usr/bin/python3", script, "--no-train", "--out", model, "--run-tensor", run_tensor,
                "--check-images", "20", "--export-test", test_dir, "--export-count", count)
        check(r.returncode == 0, "train_fashion.py --no-train checks the shipped folder and exports "
              f"{count} test PNGs", r.stdout + r.stderr)
        check("check: C engine" in r.stdout and "check: numpy forward" in r.stdout,
              "the numpy and C engine comparisons ran", r.stdout)
        if r.returncode != 0:
            print("%d passed, %d failed" % (passed, failed))
            return 1
        with open(os.path.join(test_dir, "pytorch-accuracy.json")) as f:
            ref = json.load(f)
        pngs = glob.glob(os.path.join(test_dir, "*", "*.png"))
        check(ref["count"] == count == len(pngs), f"{len(pngs)} PNGs, {ref['count']} in pytorch-accuracy.json")

        # One thread: the images are small, and OpenMP threads that spin while
        # they wait can make a 2-thread run many times slower on a busy machine.
        r = run(rectify, "sparsity", model, test_dir, "--labels-from-dirs", "--json", "--threads", "1")
        check(r.returncode == 0, "rectify sparsity --labels-from-dirs exits 0", r.stderr)
        if r.returncode == 0:
            rep = json.loads(r.stdout)
            correct = sum(c["correct"] for c in rep["classes"])
            check(rep["images"] == count and rep["failed_count"] == 0,
                  f"rectify read all {count} images ({rep['images']}, {rep['failed_count']} failed)")
            check(correct == ref["correct"],
                  f"C engine accuracy over the PNGs {correct}/{count} = PyTorch's "
                  f"{ref['correct']}/{count} ({ref['correct'] / count * 100:.1f}%)")
            check(abs(rep["accuracy"] - ref["accuracy"]) < 1e-12, "the reported accuracy agrees",
                  f"{rep['accuracy']} vs {ref['accuracy']}")
            relus = [l for l in rep["layers"] if l["op"] == "relu"]
            check([l["name"] for l in relus] == ["relu1", "relu2", "relu3", "relu4", "relu5"],
                  "five ReLU layers reported")

        with open(os.path.join(model, "labels.txt")) as f:
            labels = f.read().splitlines()
        samples = sorted(glob.glob(os.path.join(model, "samples", "*.png")))
        check(len(samples) == 10 == len(labels), f"{len(samples)} samples, {len(labels)} labels")
        r = run(rectify, "run", model, *samples, "--json", "--threads", "1")
        check(r.returncode == 0, "rectify run on the samples exits 0", r.stderr)
        if r.returncode == 0:
            results = json.loads(r.stdout)["images"]
            check(len(results) == len(samples), f"rectify run reports {len(results)} images")
            for path, res in zip(samples, results):
                k = int(os.path.basename(path).split("-")[0])
                top = res["top"][0]
                check(top["label"] == labels[k], f"rectify run: {os.path.basename(path)} is a "
                      f"{labels[k]} (got {top['label']}, p={top['probability']:.4f})")

    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
