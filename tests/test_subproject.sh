#!/bin/sh
# test_subproject.sh: rectify as a meson subproject, as README.md shows it.
#
#   test_subproject.sh SOURCE_DIR MESON
#
# Makes a temporary project whose subprojects/rectify is this source tree
# (a symbolic link), whose meson.build says
#   dependency('rectify', fallback : 'rectify', default_options : ['tests=false'])
# and builds tools/examples/classify.c with it as `camera` (forcing the
# fallback, so that an installed rectify cannot stand in), then classifies a
# sample. Only that program and the library it needs are built. Prints one
# line per check and "N passed, N failed".
set -u
[ $# -eq 2 ] || { sed -n '2,12p' "$0" >&2; exit 2; }
src=$1 meson=$2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/rectify-subproject.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
passed=0 failed=0
check() { # STATUS WHAT [LOG]
    if [ "$1" -eq 0 ]; then
        passed=$((passed + 1)); echo "ok    $2"
    else
        failed=$((failed + 1)); echo "FAIL  $2"
        [ -n "${3:-}" ] && [ -s "$3" ] && tail -n 30 "$3" | sed 's/^/      /'
    fi
    return 0
}

mkdir -p "$tmp/camera/subprojects"
ln -s "$(cd "$src" && pwd)" "$tmp/camera/subprojects/rectify"
cp "$src/tools/examples/classify.c" "$tmp/camera/"
cat >"$tmp/camera/meson.build" <<'MESON'
project('camera', 'c', default_options : ['c_std=c11', 'warning_level=3'])
rectify = dependency('rectify', fallback : 'rectify', default_options : ['tests=false'])
executable('camera', 'classify.c', dependencies : rectify)
MESON
"$meson" setup "$tmp/build" "$tmp/camera" --force-fallback-for=rectify --wrap-mode=nodownload \
    >"$tmp/setup.log" 2>&1
check $? "meson setup: dependency('rectify') from the subproject" "$tmp/setup.log"
"$meson" compile -C "$tmp/build" camera >"$tmp/build.log" 2>&1
check $? "classify builds against the subproject" "$tmp/build.log"
sample=$src/models/lenet5-mnist/samples/digit-3.png
"$tmp/build/camera" "$src/models/lenet5-mnist" "$sample" >"$tmp/run.log" 2>&1
status=$?
[ $status -eq 0 ] && grep -q "^$sample 3 " "$tmp/run.log"
check $? "it names digit-3.png a 3" "$tmp/run.log"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
