#!/usr/bin/env bash
# The learning table of bench/RESULTS.md: `edifice train vae|realnvp|vqvae --data digits` at the
# CLI's defaults, then `edifice eval` on the test digits, for 3 seeds, beside their PyTorch
# twins (bench/torch/learning.py: same architecture, init, data, loss and budget). Raw output
# goes to $BUILD/learning-out/; bench/learning_report.py writes the "## Learning" section
# into bench/RESULTS.md in place (bench/run.sh keeps it when it rewrites the rest).
#
# Usage: bench/learning.sh [BUILD_DIR]   (default build; the CLI is BUILD_DIR/edifice or
#        BUILD_DIR/tools/edifice; SEEDS="0 1 2" and STEPS=1000 by default)
set -u
cd "$(dirname "$0")/.."
BUILD=${1:-build}
PY=/usr/bin/python3
SEEDS=${SEEDS:-"0 1 2"}
STEPS=${STEPS:-1000}
OUT=$BUILD/learning-out

CLI=
for c in "$BUILD/edifice" "$BUILD/tools/edifice"; do
    [ -x "$c" ] && [ ! -d "$c" ] && { CLI=$c; break; }
done
[ -n "$CLI" ] || { echo "learning: no edifice CLI in $BUILD (build it first)" >&2; exit 1; }
"$PY" -c "import torch, numpy" 2>/dev/null \
    || { echo "learning: PyTorch is not installed for $PY (apt-get install python3-torch python3-numpy)" >&2; exit 1; }

rm -rf "$OUT"
mkdir -p "$OUT"
uptime >"$OUT/load-before.txt"
# The same thread settings as bench/run.sh: one OpenBLAS thread on both sides, passive OpenMP.
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE

# log FILE COMMAND...: the command line, its output and exit status in FILE.
log() {
    local f=$1
    shift
    echo "CMD$(printf ' %q' "$@")" >>"$f"
    echo "learning:$(printf ' %q' "$@")" >&2
    "$@" >>"$f" 2>&1
    echo "EXIT $?" >>"$f"
}

fail=0
for model in vae realnvp vqvae; do
    for s in $SEEDS; do
        ck="$OUT/$model-s$s.safetensors"
        f="$OUT/c-$model-s$s.txt"
        log "$f" "$CLI" train "$model" --data digits --seed "$s" --steps "$STEPS" --out "$ck"
        log "$f" "$CLI" eval "$model" --ckpt "$ck" --seed "$s"
        log "$OUT/torch-$model-s$s.txt" "$PY" bench/torch/learning.py "$model" --seed "$s" --steps "$STEPS" --threads 1
    done
done
uptime >"$OUT/load-after.txt"
grep -l "^EXIT [1-9]" "$OUT"/*.txt >&2 && fail=1

cmd="bench/learning.sh $BUILD"
[ "$SEEDS" = "0 1 2" ] || cmd="SEEDS=\"$SEEDS\" $cmd"
[ "$STEPS" = 1000 ] || cmd="STEPS=$STEPS $cmd"
"$PY" bench/learning_report.py "$OUT" "$cmd" bench/RESULTS.md || exit 1
echo "learning: wrote the Learning section of bench/RESULTS.md" >&2
exit $fail
