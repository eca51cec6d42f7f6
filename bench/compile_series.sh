#!/bin/sh
# Compile time against the number of kernels: chains of tanh, each node its own kernel
# (`distinct`: pad by one then tanh, so no two nodes share a kernel) or all one shape
# (`same`: identical kernels, compiled once), without graph passes, at -O2. Each graph
# is compiled cold (an empty object cache) then warm (the entry just stored), one process
# each: `edifice run --stats`. Usage: [KINDS="distinct same"] bench/compile_series.sh BUILD_DIR [SIZES...]
set -eu
build=${1:?usage: compile_series.sh BUILD_DIR [SIZES...]}
shift
sizes=${*:-"126 250 500 1000"}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export EDIFICE_CACHE_DIR="$work/cache"
chain() { # KIND N: the graph on stdout
    awk -v kind="$1" -v n="$2" 'BEGIN {
        print "graph @chain {"; print "  %x = randn {stream=1} : f32[64]"; prev = "%x"; w = 64
        for (i = 0; i < n; i++) {
            if (kind == "distinct" && i % 2 == 0) { w++; printf "  %%p%d = pad %s {lo=[0], hi=[1], value=0} : f32[%d]\n", i, prev, w; prev = "%p" i; continue }
            printf "  %%t%d = tanh %s : f32[%d]\n", i, prev, w; prev = "%t" i
        }
        print "  out y = " prev; print "}" }'
}
echo "| chain | nodes | kernels | cold lower | cold optimize | cold codegen | cold total | warm total (lower + load) |"
echo "|---|---|---|---|---|---|---|---|"
for kind in ${KINDS:-distinct same}; do
    for n in $sizes; do
        chain "$kind" "$n" > "$work/g.edir"
        rm -rf "$work/cache"
        cold=$("$build/edifice" run "$work/g.edir" --out "$work/o" --passes '' --stats 2>&1 >/dev/null | head -1)
        warm=$("$build/edifice" run "$work/g.edir" --out "$work/o" --passes '' --stats 2>&1 >/dev/null | head -1)
        echo "$cold|$warm" | awk -F'|' -v kind="$kind" -v n="$n" '{
            split($1, c, /[ ,]+/); split($2, w, /[ ,]+/)
            printf "| %s | %d | %s | %.0f ms | %.0f ms | %.0f ms | %.2f s | %.0f ms (%s) |\n", kind, n, c[11],
                c[3], c[6], c[9], (c[3] + c[6] + c[9]) / 1e3, w[3] + w[6] + w[9], w[14] }'
    done
done
