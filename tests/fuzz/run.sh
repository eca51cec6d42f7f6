#!/bin/sh
# Run one libFuzzer target of an EDIFICE_FUZZ build (tests/fuzz/README.md):
#   tests/fuzz/run.sh BUILD TARGET [libFuzzer flags, e.g. -runs=10000000]
# Without flags it fuzzes for $EDIFICE_FUZZ_SECONDS seconds (default 20): the ctest.
# New inputs go to BUILD/fuzz-corpus/TARGET (the seed corpus in the tree is read, never
# written); a crash is written to BUILD/fuzz-crashes/TARGET-* and fails the run.
set -eu
build=$1
target=$2
shift 2
[ $# -gt 0 ] || set -- "-max_total_time=${EDIFICE_FUZZ_SECONDS:-20}"
src=$(cd "$(dirname "$0")" && pwd)
work=$build/fuzz-corpus/$target
mkdir -p "$work" "$build/fuzz-crashes"
dict=
[ -f "$src/$target.dict" ] && dict=-dict=$src/$target.dict
# shellcheck disable=SC2086
exec "$build/fuzz_$target" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$build/fuzz-crashes/$target-" $dict "$@" "$work" "$src/corpus/$target"
