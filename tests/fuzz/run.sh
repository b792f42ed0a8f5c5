#!/usr/bin/env bash
# tests/fuzz/run.sh [SECONDS] [FUZZER...]: builds the libFuzzer harnesses
# (tests/fuzz/build.sh) and runs each for SECONDS (default 60), two at a
# time on a machine of two cores or more (FUZZ_JOBS overrides). Fuzzers:
# model_json, safetensors, image, graph (default: all four).
#
# Each first replays its crash reproducers (tests/fuzz/crashes/FUZZER/*,
# every crash found so far, fixed), then fuzzes from its seeds: the shipped
# models' model.json, lenet5-mnist's weights and samples, the bad-input
# corpus (tests/data/bad) and make_seeds.py's. The corpus it grows is kept
# in build-fuzz/corpus/FUZZER and reused by the next run. A crash, leak,
# timeout or out-of-memory fails the run; its input is saved as
# build-fuzz/artifacts/FUZZER-crash-* (copy it to tests/fuzz/crashes/FUZZER/
# once fixed). Prints each fuzzer's executions and coverage (libFuzzer's
# final stats), then "N passed, N failed" (one case per fuzzer and per
# reproducer).
#
#   FUZZ_BUILD=dir   build and work directory (default build-fuzz/)
#   FUZZ_JOBS=n      fuzzers run at once (default: 2 when nproc >= 2)
#   ASAN_OPTIONS     default quarantine_size_mb=16:malloc_context_size=10
#
# CI (tools/dev test) runs `run.sh 60`; for a longer hunt, e.g.
#   tests/fuzz/run.sh 3600          an hour each
#   tests/fuzz/run.sh 600 image     one fuzzer
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${FUZZ_BUILD:-$root/build-fuzz}
seconds=${1:-60}
shift || true
fuzzers=("$@")
[ ${#fuzzers[@]} -gt 0 ] || fuzzers=(model_json safetensors image graph)
jobs=${FUZZ_JOBS:-$(( $(nproc) >= 2 ? 2 : 1 ))}
# A small quarantine: freed blocks come back sooner, so that a run does not
# spend its time faulting in fresh pages (use-after-free is still caught
# within the last 16 MB freed).
export ASAN_OPTIONS=${ASAN_OPTIONS:-quarantine_size_mb=16:malloc_context_size=10}

"$root/tests/fuzz/build.sh" "$out" || { echo "0 passed, 1 failed"; exit 1; }
/usr/bin/python3 "$root/tests/fuzz/make_seeds.py" "$out/seeds" || { echo "0 passed, 1 failed"; exit 1; }
mkdir -p "$out/artifacts" "$out/logs"

# Seed folders of one fuzzer (libFuzzer reads folders: files are linked in).
seeds() {
    local name=$1 dir="$out/seeds/$1-files"
    rm -rf "$dir"
    mkdir -p "$dir"
    case $name in
        model_json)
            for f in "$root"/models/*/model.json "$root"/tests/data/bad/base/model.json \
                     "$root"/tests/data/bad/models/*/model.json; do
                [ -f "$f" ] && ln -sf "$f" "$dir/$(echo "${f#$root/}" | tr '/' '_')"
            done ;;
        safetensors)
            for f in "$root"/models/*/weights.safetensors "$root"/tests/data/bad/base/weights.safetensors \
                     "$root"/tests/data/bad/models/*/weights.safetensors; do
                [ -f "$f" ] && ln -sf "$f" "$dir/$(echo "${f#$root/}" | tr '/' '_')"
            done
            echo "$out/seeds/safetensors" ;;
        image)
            for f in "$root"/models/*/samples/* "$root"/tests/fuzz/seeds/image/* "$root"/tests/data/bad/images/*; do
                [ -f "$f" ] && [ "${f%.expect}" = "$f" ] && ln -sf "$f" "$dir/$(echo "${f#$root/}" | tr '/' '_')"
            done ;;
        graph)
            echo "$out/seeds/graph" ;;
    esac
    echo "$dir"
}

options() {
    case $1 in
        safetensors) echo "-max_len=300000" ;;   # lenet5-mnist's weights are 248 kB
        image) echo "-max_len=65536" ;;
        graph) echo "-max_len=256" ;;
        *) echo "-max_len=16384" ;;
    esac
}

results="$out/logs/results"
: > "$results"

# Replays the reproducers of every crash found so far: each must pass.
for name in "${fuzzers[@]}"; do
    for f in "$root/tests/fuzz/crashes/$name"/*; do
        [ -f "$f" ] || continue
        if "$out/fuzz_$name" "$f" > "$out/logs/replay.log" 2>&1; then
            echo "pass replay $name/$(basename "$f")" >> "$results"
        else
            echo "FAIL replay $name/$(basename "$f")" >> "$results"
            echo "==> tests/fuzz/crashes/$name/$(basename "$f") crashes again:" >&2
            grep -E "ERROR|SUMMARY|runtime error|broken promise" "$out/logs/replay.log" | head -5 >&2
        fi
    done
done

fuzz_one() {
    local name=$1 corpus="$out/corpus/$1" log="$out/logs/$1.log"
    mkdir -p "$corpus"
    mapfile -t dirs < <(seeds "$name")
    # shellcheck disable=SC2046
    "$out/fuzz_$name" "$corpus" "${dirs[@]}" -max_total_time="$seconds" -print_final_stats=1 \
        -timeout=60 -rss_limit_mb=3072 -artifact_prefix="$out/artifacts/$name-" $(options "$name") \
        > "$log" 2>&1
    local status=$?
    local execs cov ft corp speed total
    total=$(sed -n 's/.*(\([0-9]*\) inline 8-bit counters).*/\1/p' "$log" | head -1)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    corp=$(grep -o 'corp: [0-9]*/[0-9a-zA-Z]*' "$log" | tail -1 | cut -d' ' -f2)
    if [ $status -eq 0 ]; then
        printf 'pass fuzz %-12s %8s execs (%s/s)  coverage: %s of %s edges, %s features  corpus: %s\n' \
            "$name" "${execs:-?}" "${speed:-?}" "${cov:-?}" "${total:-?}" "${ft:-?}" "${corp:-?}" >> "$results"
    else
        printf 'FAIL fuzz %-12s %8s execs  coverage: %s edges, %s features  (exit %d, log %s)\n' \
            "$name" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$status" "$log" >> "$results"
        {
            echo "==> fuzz_$name found a problem:"
            grep -E "ERROR|SUMMARY|runtime error|broken promise|Test unit written" "$log" | head -8
        } >&2
    fi
}

echo "==> fuzzing ${fuzzers[*]} for ${seconds} s each, $jobs at a time" >&2
running=0
for name in "${fuzzers[@]}"; do
    fuzz_one "$name" &
    running=$((running + 1))
    if [ $running -ge "$jobs" ]; then
        wait -n
        running=$((running - 1))
    fi
done
wait

sed 's/^pass /  ok    /; s/^FAIL /  FAIL  /' "$results"
passed=$(grep -c '^pass ' "$results")
failed=$(grep -c '^FAIL ' "$results")
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
