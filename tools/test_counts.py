#!/usr/bin/python3
"""Counts test cases from meson's testlog.json: a Criterion suite counts its
own cases (from its 'Synthesis:' line), a script its own 'N passed, N failed'
line, any other test counts as one.

  test_counts.py TESTLOG LABEL     one line per build: "LABEL passed failed"
  test_counts.py --total FILE      sums those lines and prints the closing
                                   line "N passed, N failed"; exits 1 when
                                   anything failed or nothing ran.
"""
import json
import re
import sys

SYNTHESIS = re.compile(r"Synthesis: Tested: (\d+) \| Passing: (\d+) \| Failing: (\d+) \| Crashing: (\d+)")
PLAIN = re.compile(r"^(\d+) passed, (\d+) failed", re.M)


def count(testlog, label):
    passed = failed = 0
    with open(testlog) as f:
        for line in f:
            if not line.strip():
                continue
            t = json.loads(line)
            ok = t.get("result") in ("OK", "EXPECTEDFAIL", "SKIP")
            out = (t.get("stdout") or "") + (t.get("stderr") or "")
            m = SYNTHESIS.search(out)
            plain = PLAIN.findall(out)
            if plain:  # a script that counts its own cases (its last such line)
                p, fl = map(int, plain[-1])
                passed += p
                failed += fl + (1 if not ok and fl == 0 else 0)
            elif m:
                tested, passing, failing, crashing = map(int, m.groups())
                passed += passing
                failed += failing + crashing
                if not ok and failing + crashing == 0:
                    failed += 1  # the suite failed outside its cases (a sanitizer, a timeout)
            else:
                passed += ok
                failed += not ok
    print(f"{label} {passed} {failed}")


def total(path):
    passed = failed = 0
    with open(path) as f:
        for line in f:
            label, p, fl = line.rsplit(None, 2)
            passed += int(p)
            failed += int(fl)
            print(f"{label}: {p} passed, {fl} failed", file=sys.stderr)
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--total":
        sys.exit(total(sys.argv[2]))
    if len(sys.argv) == 3:
        count(sys.argv[1], sys.argv[2])
        sys.exit(0)
    print(__doc__, file=sys.stderr)
    sys.exit(2)
