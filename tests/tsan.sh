#!/usr/bin/env bash
# tests/tsan.sh [OUTDIR]: the concurrency test (tests/test_concurrency.c:
# one model, 8 threads with a session each, bit-exact against serial runs)
# built with ThreadSanitizer and run. The engine's sources (the list in
# engine/meson.build) and the test are compiled by clang with
# -fsanitize=thread into OUTDIR (default build-tsan/).
#
# OpenMP: GCC's libgomp is not built with TSan, which would then see its
# barriers as races; clang's libomp is used instead, with its Archer tool
# (libarcher.so, which tells TSan about OpenMP's synchronisation), so each
# session keeps 2 OpenMP threads inside the 8 concurrent ones. Without
# Archer the sessions run on 1 OpenMP thread (no parallel regions), and the
# 8 pthreads still share the model.
#
# Runs it twice (RECTIFY_ISA=generic, then avx2: see below); prints the
# test's lines and one "N passed, N failed" for both runs; exits non-zero on
# a data race or any failure.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/build-tsan}
CC=${CC:-clang}
command -v "$CC" >/dev/null || { echo "tsan.sh: $CC not found"; echo "0 passed, 1 failed"; exit 1; }
mkdir -p "$out/obj"

flags=(-std=c11 -g -O1 -fno-omit-frame-pointer -fopenmp -D_GNU_SOURCE -fsanitize=thread
       -DRX_NO_MULTIVERSION -I"$root/engine/include" -I"$root/engine/src"
       -Wno-unknown-warning-option -Wno-pass-failed)

mapfile -t sources < <(grep -o "'src/[^']*\.c'" "$root/engine/meson.build" | tr -d "'")
newest_header=$(find "$root/engine" -name '*.h' -printf '%T@\n' | sort -n | tail -1)
objects=() stale=()
for s in "${sources[@]}"; do
    o="$out/obj/$(echo "$s" | tr '/' '_').o"
    objects+=("$o")
    if [ ! -f "$o" ] || [ "$root/engine/$s" -nt "$o" ] || [ "$0" -nt "$o" ] ||
       [ "$(stat -c %Y "$o")" -lt "${newest_header%.*}" ]; then
        stale+=("$root/engine/$s|$o")
    fi
done
if [ ${#stale[@]} -gt 0 ]; then
    echo "tsan.sh: compiling ${#stale[@]} engine sources" >&2
    if ! printf '%s\n' "${stale[@]}" | xargs -P "$(nproc)" -I{} sh -c '
            src=${1%%|*}; obj=${1#*|}; shift
            exec "$@" -c "$src" -o "$obj"' _ {} "$CC" "${flags[@]}"; then
        echo "0 passed, 1 failed"; exit 1
    fi
fi
if ! "$CC" "${flags[@]}" -DTEST_SOURCE_ROOT="\"$root\"" "$root/tests/test_concurrency.c" "$root/tests/support.c" \
        "$root/tests/reference.c" "${objects[@]}" \
        -lcjson -lm -lpthread -o "$out/test_concurrency"; then
    echo "0 passed, 1 failed"; exit 1
fi

archer=$("$CC" -print-file-name=libarcher.so)
[ -f "$archer" ] || archer=$(ls /usr/lib/llvm-*/lib/libarcher.so 2>/dev/null | tail -1)
if [ -n "$archer" ] && [ -f "$archer" ]; then
    export OMP_TOOL_LIBRARIES=$archer
    per_session=2
    echo "tsan.sh: libomp with Archer ($archer): 8 sessions x 2 OpenMP threads" >&2
else
    per_session=1
    echo "tsan.sh: no Archer: 8 sessions x 1 OpenMP thread" >&2
fi
# The portable kernels (RECTIFY_ISA=generic): TSan does not see the
# AVX-512 kernels' vector loads and stores, so a race on what they read or
# write (a Winograd block's V and M, shared by threads) would go unseen.
# Then once more with RECTIFY_ISA=avx2, for the paths only the vector
# kernels take: a wide convolution's fused ReLU, in plain C here (no
# multiversioning), with its per-thread counters (its micro-kernels'
# vector accesses unseen, as above).
# ignore_noninstrumented_modules=0: the engine's memcpy calls (into libc)
# are checked too; tests/tsan.supp keeps libomp's own accesses out. (Archer
# prints a warning asking for 1: that is expected.)
passed=0 failed=0 status=0
for isa in generic avx2; do
    echo "tsan.sh: RECTIFY_ISA=$isa" >&2
    log=$(TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 ignore_noninstrumented_modules=0 suppressions=$root/tests/tsan.supp ${TSAN_OPTIONS:-}" \
        ARCHER_OPTIONS="${ARCHER_OPTIONS:-}" RECTIFY_ISA=$isa \
        "$out/test_concurrency" --threads-per-session "$per_session" --rounds 1 2>&1)
    st=$?
    printf '%s\n' "$log" | grep -vE '^[0-9]+ passed, [0-9]+ failed$'
    line=$(printf '%s\n' "$log" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -1)
    if [ -n "$line" ]; then
        passed=$((passed + ${line%% passed*}))
        f=${line#*, }; failed=$((failed + ${f%% failed}))
    fi
    if [ "$st" -ne 0 ] || [ -z "$line" ]; then
        echo "tsan.sh: RECTIFY_ISA=$isa: exit status $st (a report above is a data race)" >&2
        [ -z "$line" ] && failed=$((failed + 1))
        status=1
    fi
done
echo "$passed passed, $failed failed"
exit "$status"
