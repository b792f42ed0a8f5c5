#!/bin/sh
# test_install.sh: builds tools/examples/classify.c against the INSTALLED
# library, as a user would, with pkg-config, and runs it.
#
#   test_install.sh BUILD_DIR SOURCE_DIR VERSION SANITIZE MESON CC...
#
# Installs BUILD_DIR into a temporary --destdir (no rebuild), points
# pkg-config at the rectify.pc found there (its prefix rewritten to the
# temporary tree), compiles classify.c from a copy outside the source tree
# with `pkg-config --cflags --libs rectify` (shared) and with --static, and
# classifies a sample. SANITIZE is meson's b_sanitize ("none" or e.g.
# "address,undefined"): an instrumented library needs an instrumented
# program. Prints one line per check and "N passed, N failed".
set -u
[ $# -ge 6 ] || { sed -n '2,13p' "$0" >&2; exit 2; }
build=$1 src=$2 version=$3 sanitize=$4 meson=$5
shift 5 # the rest is the C compiler command
tmp=$(mktemp -d "${TMPDIR:-/tmp}/rectify-install.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
dest=$tmp/dest
passed=0 failed=0

check() { # STATUS WHAT [LOG]: STATUS 0 passes
    if [ "$1" -eq 0 ]; then
        passed=$((passed + 1)); echo "ok    $2"
    else
        failed=$((failed + 1)); echo "FAIL  $2"
        [ -n "${3:-}" ] && [ -s "$3" ] && sed 's/^/      /' "$3"
    fi
    return 0
}
finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}

"$meson" install -C "$build" --destdir "$dest" --no-rebuild --quiet >"$tmp/install.log" 2>&1
check $? "meson install --destdir" "$tmp/install.log"

pc=$(find "$dest" -name rectify.pc -path '*/pkgconfig/*' | head -n 1)
[ -n "$pc" ]; check $? "rectify.pc is installed"
[ -n "$pc" ] || finish
prefix=$(sed -n 's/^prefix=//p' "$pc")
mkdir -p "$tmp/pc"
sed "s|^prefix=.*|prefix=$dest$prefix|" "$pc" >"$tmp/pc/rectify.pc"
export PKG_CONFIG_PATH="$tmp/pc"
libdir=$(pkg-config --variable=libdir rectify)
includedir=$(pkg-config --variable=includedir rectify)

for f in "$includedir/rectify.h" "$libdir/librectify.so" "$libdir/librectify.so.$version" "$libdir/librectify.a" \
         "$dest$prefix/bin/rectify"; do
    [ -e "$f" ]; check $? "installed: ${f#"$dest"}"
done
[ "$(pkg-config --modversion rectify)" = "$version" ]; check $? "pkg-config --modversion rectify is $version"

flags="-std=c11 -Wall -Wextra -pedantic"
[ "$sanitize" = none ] || flags="$flags -fsanitize=$sanitize"
cp "$src/tools/examples/classify.c" "$tmp/classify.c"
sample=$src/models/lenet5-mnist/samples/digit-7.png

# Shared: the program finds librectify.so in the temporary tree.
# shellcheck disable=SC2046,SC2086
"$@" $flags "$tmp/classify.c" $(pkg-config --cflags --libs rectify) -o "$tmp/classify" >"$tmp/cc.log" 2>&1
status=$?
[ $status -eq 0 ] && [ ! -s "$tmp/cc.log" ]
check $? "cc classify.c \$(pkg-config --cflags --libs rectify): no errors, no warnings" "$tmp/cc.log"
LD_LIBRARY_PATH="$libdir" ldd "$tmp/classify" 2>&1 | grep -q "librectify.so.* => $libdir/"
check $? "classify loads librectify.so from the install, not the build"
LD_LIBRARY_PATH="$libdir" "$tmp/classify" "$src/models/lenet5-mnist" "$sample" >"$tmp/run.log" 2>&1
status=$?
[ $status -eq 0 ] && grep -q "^$sample 7 " "$tmp/run.log"
check $? "the installed classify names digit-7.png a 7" "$tmp/run.log"

# Static, as README.md shows: librectify.a and what `pkg-config --static`
# says it needs.
# shellcheck disable=SC2046,SC2086
"$@" $flags "$tmp/classify.c" $(pkg-config --static --cflags --libs rectify | sed 's/-lrectify\b/-l:librectify.a/') \
    -o "$tmp/classify-static" >"$tmp/cc-static.log" 2>&1
check $? "cc classify.c \$(pkg-config --static --cflags --libs rectify), librectify.a" "$tmp/cc-static.log"
"$tmp/classify-static" "$src/models/lenet5-mnist" "$sample" >"$tmp/run-static.log" 2>&1
status=$?
[ $status -eq 0 ] && grep -q "^$sample 7 " "$tmp/run-static.log" && ! ldd "$tmp/classify-static" | grep -q librectify
check $? "the static classify names digit-7.png a 7, without librectify.so" "$tmp/run-static.log"

"$dest$prefix/bin/rectify" summary "$src/models/lenet5-mnist" >"$tmp/cli.log" 2>&1
check $? "the installed rectify CLI runs" "$tmp/cli.log"
finish
