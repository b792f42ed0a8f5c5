#!/usr/bin/python3
"""Checks that the shared library exports exactly the public API.

  test_symbols.py LIBRECTIFY_SO RECTIFY_H

The functions declared RECTIFY_API in rectify.h (comments stripped, every
declaration parsed) must be exactly the dynamic symbols librectify.so
defines (nm -D --defined-only): each declared function is exported as a
function, and nothing else is exported (no rx_* internals, no stb, no
compiler-made resolvers). Prints one line per check and the closing line
"N passed, N failed".
"""
import re
import subprocess
import sys

DECLARATION = re.compile(r"\bRECTIFY_API\b([^;{]*?)\b(\w+)\s*\(", re.S)
# What a toolchain may add to any shared library; not part of anyone's API.
TOOLCHAIN = {"_init", "_fini", "_edata", "_end", "__bss_start"}


def declared(header):
    text = open(header).read()
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    # Leave out the macro's own definition lines.
    text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    return {m.group(2) for m in DECLARATION.finditer(text)}


def exported(library):
    out = subprocess.run(["nm", "-D", "--defined-only", library], check=True, capture_output=True,
                         text=True).stdout
    symbols = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3:
            symbols[parts[2].split("@")[0]] = parts[1]
    return symbols


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    library, header = sys.argv[1:]
    api = declared(header)
    symbols = exported(library)
    passed = failed = 0

    def check(ok, what):
        nonlocal passed, failed
        print(("ok    " if ok else "FAIL  ") + what)
        passed += ok
        failed += not ok

    check(len(api) >= 30, f"rectify.h declares {len(api)} RECTIFY_API functions")
    check(all(name.startswith("rectify_") for name in api),
          "every declared function is prefixed rectify_: "
          + (", ".join(sorted(n for n in api if not n.startswith("rectify_"))) or "yes"))
    for name in sorted(api):
        kind = symbols.get(name)
        check(kind == "T", f"{name} is exported as a function" + ("" if kind == "T" else f" (nm: {kind})"))
    extra = sorted(n for n in symbols if n not in api and n not in TOOLCHAIN)
    check(not extra, "nothing else is exported" + (": " + ", ".join(extra) if extra else ""))
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
