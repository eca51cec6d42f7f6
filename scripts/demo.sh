#!/bin/sh
# The main job. Until the models land: build a small MLP graph in C, print it, run
# it; then dump the committed example graph as text and DOT and run it from the CLI.
set -eu
BUILD=${1:-build}
OUT=out/demo
mkdir -p "$OUT"
echo "== examples/mlp_demo.c: build, print and run an MLP graph"
"$BUILD/mlp_demo" "$OUT"
echo
echo "== edifice dump examples/mlp.edir --format dot > $OUT/mlp.dot"
"$BUILD/edifice" dump examples/mlp.edir --format dot > "$OUT/mlp.dot"
echo "== edifice run examples/mlp.edir --input x=$OUT/x.npy --out $OUT --seed 42 --stats"
"$BUILD/edifice" run examples/mlp.edir --input "x=$OUT/x.npy" --out "$OUT" --seed 42 --stats
echo
echo "demo outputs are in $OUT/"
