#!/usr/bin/python3
"""test_cli_hardening.py RECTIFY SOURCE_ROOT: the CLI against hostile input
and failures (issue 6). Prints "N passed, N failed".

- Weights holding NaN or infinity: a copy of models/lenet5-mnist with one
  NaN in fc1.weight. run, sparsity, activations and bench refuse it (exit 1,
  the message naming the tensor and --allow-nonfinite) and run it with
  --allow-nonfinite; summary and init (graph only) never read the weights.
- Nothing partial: every output file (safetensors of init, SVG, CSV and PNG
  of sparsity, PNG of activations) is written under a temporary name and
  renamed. A write that fails (the target is a folder) leaves no temporary
  file; init killed (SIGKILL) in the middle of a 128 MB file leaves nothing
  under the target's name."""
import json
import os
import signal
import time
import shutil
import struct
import subprocess
import sys
import tempfile

rectify, root = sys.argv[1], sys.argv[2]
lenet = os.path.join(root, "models", "lenet5-mnist")
sample = os.path.join(lenet, "samples", "digit-3.png")
passed = failed = 0


def check(ok, what, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print("ok   " + what)
    else:
        failed += 1
        print("FAIL " + what + (": " + detail if detail else ""))


def run(*args):
    return subprocess.run([rectify] + [str(a) for a in args], capture_output=True, text=True, timeout=120)


with tempfile.TemporaryDirectory() as tmp:
    model = os.path.join(tmp, "nan-model")
    shutil.copytree(lenet, model)
    path = os.path.join(model, "weights.safetensors")
    with open(path, "r+b") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        begin = header["fc1.weight"]["data_offsets"][0]
        f.seek(8 + n + begin + 4 * 5)
        f.write(struct.pack("<f", float("nan")))

    for command in (["run", model, sample], ["sparsity", model, sample],
                    ["activations", model, sample, "--layer", "conv1", "-o", os.path.join(tmp, "a.png")],
                    ["bench", model, "--runs", 1, "--seconds", 0]):
        r = run(*command)
        check(r.returncode == 1 and 'tensor "fc1.weight" holds 1 NaN' in r.stderr and "--allow-nonfinite" in r.stderr,
              command[0] + " refuses NaN weights", "exit %d, stderr %r" % (r.returncode, r.stderr))
        r = run(*command, "--allow-nonfinite")
        check(r.returncode == 0, command[0] + " --allow-nonfinite runs them",
              "exit %d, stderr %r" % (r.returncode, r.stderr))
    r = run("run", model, sample, "--allow-nonfinite", "--json")
    doc = json.loads(r.stdout) if r.returncode == 0 else {}
    check(r.returncode == 0 and "images" in doc, "run --allow-nonfinite --json gives a document", r.stderr)
    r = run("summary", model)
    check(r.returncode == 0, "summary (graph only) does not read the weights", r.stderr)
    r = run("summary", model, "--allow-nonfinite")
    check(r.returncode == 2, "summary has no --allow-nonfinite", "exit %d" % r.returncode)
    r = run("run", "--help")
    check("--allow-nonfinite" in r.stdout, "run --help lists --allow-nonfinite")


def leftovers(folder):
    return [f for f in os.listdir(folder) if ".tmp" in f]


with tempfile.TemporaryDirectory() as tmp:
    # Targets that cannot be renamed over (folders): the write fails at the
    # end, and the temporary file goes.
    for name, command in (
            ("init", ["init", lenet, "-o", "TARGET"]),
            ("sparsity --svg", ["sparsity", lenet, sample, "--svg", "TARGET"]),
            ("sparsity --csv", ["sparsity", lenet, sample, "--csv", "TARGET"]),
            ("activations -o", ["activations", lenet, sample, "--layer", "conv1", "-o", "TARGET"])):
        target = os.path.join(tmp, "target-" + name.replace(" ", "_"))
        os.mkdir(target)
        r = run(*[target if a == "TARGET" else a for a in command])
        check(r.returncode == 1 and os.path.isdir(target) and not leftovers(tmp),
              name + ": a failed write leaves no temporary file",
              "exit %d, left %r, stderr %r" % (r.returncode, leftovers(tmp), r.stderr))

    # init of a 32M-parameter graph, killed once its temporary file exists.
    big = os.path.join(tmp, "big")
    os.mkdir(big)
    with open(os.path.join(big, "model.json"), "w") as f:
        json.dump({"format": "rectify", "version": 1, "name": "big", "input": {"shape": [1, 64, 64]},
                   "layers": [{"name": "f", "op": "flatten"}, {"name": "fc", "op": "dense", "units": 8192}]}, f)
    out = os.path.join(tmp, "out")
    os.mkdir(out)
    target = os.path.join(out, "big.safetensors")
    p = subprocess.Popen([rectify, "init", big, "-o", target], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and not leftovers(out) and p.poll() is None:
        time.sleep(0.002)
    finished_first = p.poll() is not None
    p.send_signal(signal.SIGKILL)
    p.wait()
    if finished_first:
        check(os.path.getsize(target) > 128 << 20, "init finished before it could be killed: a whole file")
    else:
        check(not os.path.exists(target) and len(leftovers(out)) == 1,
              "init killed mid-write leaves nothing under the target's name",
              "target exists: %s, files %r" % (os.path.exists(target), os.listdir(out)))
    r = run("init", big, "-o", target)
    check(r.returncode == 0 and os.path.getsize(target) > 128 << 20, "init, not interrupted, writes the file",
          r.stderr)

print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
