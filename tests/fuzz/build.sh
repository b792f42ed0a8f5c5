#!/usr/bin/env bash
# tests/fuzz/build.sh [OUTDIR]: builds the libFuzzer harnesses of tests/fuzz/
# with clang (-fsanitize=fuzzer,address,undefined) into OUTDIR (default
# build-fuzz/): the engine's sources (the list in engine/meson.build; stb is
# compiled in engine/src/stb.c) are instrumented, cJSON is the system's.
# Objects are rebuilt when their source, any engine header or this script
# is newer.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$root/build-fuzz}
CC=${CC:-clang}
command -v "$CC" >/dev/null || { echo "build.sh: $CC not found (apt-get install clang libclang-rt-14-dev)" >&2; exit 1; }
mkdir -p "$out/obj"

common=(-std=c11 -g -O1 -fno-omit-frame-pointer -fopenmp -D_GNU_SOURCE
        -fsanitize=address,undefined -fno-sanitize-recover=all
        -I"$root/engine/include" -I"$root/engine/src"
        -DRX_NO_MULTIVERSION -DFUZZ_SOURCE_ROOT="\"$root\""
        -Wall -Wno-unused-function -Wno-pass-failed -Wno-unknown-warning-option)

mapfile -t sources < <(grep -o "'src/[^']*\.c'" "$root/engine/meson.build" | tr -d "'")
newest_header=$(find "$root/engine" -name '*.h' -printf '%T@\n' | sort -n | tail -1)

objects=()
stale=()
for s in "${sources[@]}"; do
    o="$out/obj/$(echo "$s" | tr '/' '_').o"
    objects+=("$o")
    src="$root/engine/$s"
    if [ ! -f "$o" ] || [ "$src" -nt "$o" ] || [ "$0" -nt "$o" ] || \
       [ "$(stat -c %Y "$o")" -lt "${newest_header%.*}" ]; then
        stale+=("$src|$o")
    fi
done
if [ ${#stale[@]} -gt 0 ]; then
    echo "build.sh: compiling ${#stale[@]} engine sources" >&2
    printf '%s\n' "${stale[@]}" | xargs -P "$(nproc)" -I{} sh -c '
        src=${1%%|*}; obj=${1#*|}; shift
        case $src in */stb.c) extra=-fno-sanitize=shift ;; *) extra= ;; esac # see engine/meson.build
        exec "$@" -fsanitize=fuzzer-no-link $extra -c "$src" -o "$obj"' _ {} "$CC" "${common[@]}"
fi

for harness in "$root"/tests/fuzz/fuzz_*.c; do
    name=$(basename "$harness" .c)
    exe="$out/$name"
    if [ ! -f "$exe" ] || [ "$harness" -nt "$exe" ] || [ "$root/tests/fuzz/fuzz.h" -nt "$exe" ] || \
       [ -n "$(find "$out/obj" -newer "$exe" -name '*.o' | head -1)" ]; then
        echo "build.sh: linking $name" >&2
        "$CC" "${common[@]}" -fsanitize=fuzzer "$harness" "${objects[@]}" -lcjson -lm -o "$exe"
    fi
done
echo "build.sh: harnesses in $out" >&2
