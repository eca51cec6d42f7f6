#!/bin/sh
# Where a workload's step time goes, by shared object and by symbol, JIT kernels named
# (EDIFICE_PERF=1: LLVM's perf listener writes a jitdump that `perf inject --jit` reads;
# kernels are k<node id>_<op>, the ids of `build/bench W --dump-ir FILE`). The compile is
# left out: one run fills a private object cache, then perf starts DELAY ms into a second
# run (past its warm compile). Usage:
#   bench/profile.sh BUILD_DIR WORKLOAD [DELAY_MS [bench args...]]
# e.g. bench/profile.sh build w1 1500 --threads 1 --repeats 20 --steps 20
set -eu
build=${1:?usage: profile.sh BUILD_DIR WORKLOAD [DELAY_MS [bench args...]]}
w=${2:?usage: profile.sh BUILD_DIR WORKLOAD [DELAY_MS [bench args...]]}
delay=${3:-4000}
shift 2
[ $# -gt 0 ] && shift
command -v perf >/dev/null || { echo "profile.sh: perf not found (apt-get install linux-perf)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export EDIFICE_CACHE_DIR="$work/cache" JITDUMPDIR="$work" EDIFICE_PERF=1
"$build/bench" "$w" --repeats 1 --steps 1 "$@" --dump-ir "$work/ir.txt" >/dev/null
perf record -q -k 1 -F 1999 -D "$delay" -o "$work/perf.data" "$build/bench" "$w" "$@" | grep -v '^RESULT'
perf inject --jit -i "$work/perf.data" -o "$work/perf.jit.data" 2>/dev/null
echo "# by shared object (jitted-*: the JIT's kernels)"
perf report -i "$work/perf.jit.data" --no-children --sort dso -g none 2>/dev/null |
    awk '/^ +[0-9.]+%/ {d = $2; if (d ~ /^jitted-/) d = "JIT kernels"; s[d] += $1} END {for (k in s) if (s[k] >= 0.2) printf "%6.2f%%  %s\n", s[k], k}' |
    sort -rn
echo "# top symbols"
perf report -i "$work/perf.jit.data" --no-children --sort sym -g none 2>/dev/null |
    awk '/^ +[0-9.]+%/ {print}' | head -"${PROFILE_TOP:-25}"
[ -z "${PROFILE_IR:-}" ] || cp "$work/ir.txt" "$PROFILE_IR"
