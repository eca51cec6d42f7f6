#!/bin/sh
# Install the build into a fresh prefix and use it from outside the tree, both ways: a
# CMake project (find_package(edifice), edifice::edifice) and plain cc with pkg-config.
# Each builds examples/mlp_demo.c and must print exactly what the in-tree mlp_demo
# prints. Also: every installed header compiles on its own, the installed package
# names no path of the source or build tree, and the installed CLI runs a graph.
# Usage: check_install.sh BUILD_DIR SOURCE_DIR CC LIBDIR IN_TREE_MLP_DEMO [FLAGS]
# (FLAGS: what a program linking this build's libedifice.a needs, e.g. -fsanitize=...)
set -eu
build=$1 src=$2 cc=$3 libdir=$4 tree_demo=$5 flags=${6:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
log=$tmp/log
fail() {
    [ -s "$log" ] && cat "$log" >&2
    echo "check_install: $*" >&2
    exit 1
}

cmake --install "$build" --prefix "$prefix" >"$log" 2>&1 || fail "cmake --install failed"
for f in "include/edifice/frontend/frontend.h" "include/edifice/ir/ops.def" "$libdir/libedifice.a" \
         "bin/edifice" "$libdir/cmake/edifice/edificeConfig.cmake" "$libdir/pkgconfig/edifice.pc"; do
    [ -f "$prefix/$f" ] || fail "not installed: $f"
done
[ ! -e "$prefix/include/edifice/interp/kernels.h" ] || fail "a private header was installed"
if grep -rlF -e "$src" -e "$build" "$prefix/$libdir/cmake" "$prefix/$libdir/pkgconfig" >"$log"; then
    fail "the installed package refers to the source or build tree (files above)"
fi

# Each public header compiles alone against the installed headers only, so none
# includes a header that is not installed: one translation unit per header
# (include_<path>.c), checked in one compiler run.
mkdir "$tmp/headers"
for h in $(cd "$prefix/include/edifice" && find . -name '*.h' | sort); do
    h=${h#./}
    printf '#include "%s"\n' "$h" >"$tmp/headers/include_$(echo "$h" | tr / _).c"
done
"$cc" -std=c17 -Wall -Wextra -Werror -fsyntax-only -I"$prefix/include/edifice" "$tmp/headers"/*.c \
    >"$log" 2>&1 || fail "an installed header does not compile on its own (include_<path>.c above)"

# Out of tree: only the consumer and the example, copied, and the install prefix.
mkdir "$tmp/consumer"
cp "$src/tests/install/cmake_consumer/CMakeLists.txt" "$src/examples/mlp_demo.c" "$tmp/consumer/"

cmake -S "$tmp/consumer" -B "$tmp/consumer/build" -DCMAKE_PREFIX_PATH="$prefix" \
      -DCMAKE_C_COMPILER="$cc" -DCMAKE_C_FLAGS="$flags" >"$log" 2>&1 ||
    fail "find_package(edifice): configuring the consumer failed"
cmake --build "$tmp/consumer/build" >"$log" 2>&1 || fail "building mlp_demo against edifice::edifice failed"

PKG_CONFIG_PATH=$prefix/$libdir/pkgconfig
export PKG_CONFIG_PATH
pc=$(pkg-config --cflags --libs edifice 2>"$log") || fail "pkg-config edifice failed"
case "$pc" in *"-I$prefix/"*) ;; *) fail "pkg-config --cflags does not point into $prefix: $pc" ;; esac
# shellcheck disable=SC2086 # flags and pc are lists of flags
"$cc" -std=c17 $flags -o "$tmp/mlp_demo_pc" "$tmp/consumer/mlp_demo.c" $pc >"$log" 2>&1 ||
    fail "building mlp_demo with pkg-config failed: $cc $flags mlp_demo.c $pc"

for way in tree cmake pc; do
    case $way in
        tree) bin=$tree_demo ;;
        cmake) bin=$tmp/consumer/build/mlp_demo ;;
        pc) bin=$tmp/mlp_demo_pc ;;
    esac
    mkdir "$tmp/out_$way"
    "$bin" "$tmp/out_$way" >"$tmp/$way.txt" 2>"$log" || fail "mlp_demo ($way) failed"
done
grep -q '^mean = ' "$tmp/tree.txt" || fail "mlp_demo printed no mean: $(cat "$tmp/tree.txt")"
for way in cmake pc; do
    cmp -s "$tmp/tree.txt" "$tmp/$way.txt" || {
        diff "$tmp/tree.txt" "$tmp/$way.txt" >&2 || true
        fail "mlp_demo built with $way prints something else than the in-tree one"
    }
done

# The installed CLI runs the graph mlp_demo wrote.
"$prefix/bin/edifice" run "$tmp/out_pc/mlp.edir" --input x="$tmp/out_pc/x.npy" --out "$tmp/cli" \
    >"$log" 2>&1 || fail "the installed edifice CLI failed to run mlp.edir"
[ -s "$tmp/cli/y.npy" ] || fail "the installed edifice CLI wrote no y.npy"
echo "check_install: installed, built and ran mlp_demo via find_package and pkg-config"
