#!/usr/bin/python3
"""Runs the embedding examples (tools/examples) on the shipped LeNet-5.

  test_examples.py CLASSIFY THREADS MODEL_DIR

classify must name every sample digit (samples/digit-K.png is a K) with a
probability in (0.5, 1]; threads must agree with its serial run on every
thread and exit 0; both must fail cleanly on a missing model. Prints one
line per check and the closing line "N passed, N failed".
"""
import glob
import os
import re
import subprocess
import sys

passed = failed = 0


def check(ok, what, detail=""):
    global passed, failed
    print(("ok    " if ok else "FAIL  ") + what + ("" if ok or not detail else "\n" + detail))
    passed += bool(ok)
    failed += not ok


def run(*args):
    return subprocess.run(list(args), capture_output=True, text=True, timeout=60)


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    classify, threads, model = sys.argv[1:]
    samples = sorted(glob.glob(os.path.join(model, "samples", "digit-*.png")))
    check(len(samples) == 10, f"{len(samples)} samples in {model}")

    r = run(classify, model, *samples)
    check(r.returncode == 0, "classify exits 0", r.stderr)
    lines = r.stdout.splitlines()
    check(len(lines) == len(samples), f"classify prints one line per image ({len(lines)})", r.stdout)
    for path, line in zip(samples, lines):
        digit = re.search(r"digit-(\d)\.png$", path).group(1)
        parts = line.split()
        ok = len(parts) == 3 and parts[0] == path and parts[1] == digit and 0.5 < float(parts[2]) <= 1.0
        check(ok, f"classify: {os.path.basename(path)} is a {digit}", line)

    r = run(threads, model, *samples, "-t", "4", "-r", "3")
    check(r.returncode == 0, "threads exits 0", r.stdout + r.stderr)
    lines = r.stdout.splitlines()
    serial = lines[:len(samples)]
    check([l.split()[1] for l in serial if len(l.split()) == 3] == [re.search(r"digit-(\d)", p).group(1) for p in samples],
          "threads: the serial run names every digit", r.stdout)
    per_thread = [l for l in lines if l.startswith("thread ")]
    check(len(per_thread) == 4 and all(l.endswith("30 runs, 0 differ from the serial run") for l in per_thread),
          "threads: 4 threads x 30 runs, none differ", r.stdout)
    check(lines[-1:] == ["OK: 4 threads x 30 runs equal the serial run"], "threads: closing line OK", r.stdout)

    for program in (classify, threads):
        name = os.path.basename(program)
        r = run(program, os.path.join(model, "no-such-folder"), samples[0])
        check(r.returncode == 1 and "no-such-folder" in r.stderr and not r.stdout,
              f"{name}: a missing model is an error naming it", r.stdout + r.stderr)
        r = run(program)
        check(r.returncode == 2 and "usage" in r.stderr, f"{name}: no arguments prints the usage", r.stderr)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
