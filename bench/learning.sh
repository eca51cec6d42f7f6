#!/usr/bin/env bash
# The learning table of bench/RESULTS.md: `edifice train vae|realnvp|vqvae|cgan --data digits`
# and `edifice train gan|wgan_gp --data 8gaussians` at the CLI's defaults, then `edifice eval`
# (the test digits; 8gaussians' modes), for 3 seeds, beside their PyTorch twins
# (bench/torch/learning.py, bench/torch/gan.py: same architecture, init, data, loss and
# budget; the cgan twin's samples are judged by edifice's classifier, `bench judge`). Raw
# output goes to $BUILD/learning-out/; bench/learning_report.py writes the "## Learning"
# section into bench/RESULTS.md in place (bench/run.sh keeps it when it rewrites the rest).
#
# Usage: bench/learning.sh [BUILD_DIR]   (default build; the CLI is BUILD_DIR/edifice or
#        BUILD_DIR/tools/edifice; SEEDS="0 1 2" by default; STEPS: every model's budget,
#        by default each model's own, `edifice models MODEL`; MODELS: a subset, by
#        default all six; KEEP=1 adds to the raw output of an earlier run instead of
#        starting afresh, so the models can run apart)
set -u
cd "$(dirname "$0")/.."
BUILD=${1:-build}
PY=/usr/bin/python3
SEEDS=${SEEDS:-"0 1 2"}
STEPS=${STEPS:-}
MODELS=${MODELS:-"vae realnvp vqvae gan wgan_gp cgan"}
KEEP=${KEEP:-0}
OUT=$BUILD/learning-out

CLI=
for c in "$BUILD/edifice" "$BUILD/tools/edifice"; do
    [ -x "$c" ] && [ ! -d "$c" ] && { CLI=$c; break; }
done
[ -n "$CLI" ] || { echo "learning: no edifice CLI in $BUILD (build it first)" >&2; exit 1; }
"$PY" -c "import torch, numpy" 2>/dev/null \
    || { echo "learning: PyTorch is not installed for $PY (apt-get install python3-torch python3-numpy)" >&2; exit 1; }

[ "$KEEP" = 1 ] || rm -rf "$OUT"
mkdir -p "$OUT"
[ -f "$OUT/load-before.txt" ] || uptime >"$OUT/load-before.txt"
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

# The iterations of a run of MODEL: STEPS, else the model's own default.
steps_of() {
    [ -n "$STEPS" ] && { echo "$STEPS"; return; }
    local n
    n=$("$CLI" models "$1" | sed -n 's/.*trains \([0-9]*\) iterations without --steps.*/\1/p')
    echo "${n:-1000}"
}

fail=0
for model in $MODELS; do
    n=$(steps_of "$model")
    case $model in gan | wgan_gp) data=8gaussians ;; *) data=digits ;; esac
    for s in $SEEDS; do
        ck="$OUT/$model-s$s.safetensors"
        f="$OUT/c-$model-s$s.txt"
        t="$OUT/torch-$model-s$s.txt"
        rm -f "$f" "$t"
        log "$f" "$CLI" train "$model" --data $data --seed "$s" --steps "$n" --out "$ck"
        log "$f" "$CLI" eval "$model" --ckpt "$ck" --seed "$s"
        case $model in
        gan | wgan_gp) log "$t" "$PY" bench/torch/gan.py "$model" --seed "$s" --steps "$n" --threads 1 ;;
        cgan)
            log "$t" "$PY" bench/torch/gan.py cgan --seed "$s" --steps "$n" --threads 1 --samples "$OUT/torch-cgan-s$s.npy"
            log "$t" "$BUILD/bench" judge digits "$OUT/torch-cgan-s$s.npy" "$OUT/torch-cgan-s$s-labels.npy" "$s"
            ;;
        *) log "$t" "$PY" bench/torch/learning.py "$model" --seed "$s" --steps "$n" --threads 1 ;;
        esac
    done
done
uptime >"$OUT/load-after.txt"
grep -l "^EXIT [1-9]" "$OUT"/*.txt >&2 && fail=1

cmd="bench/learning.sh $BUILD"
[ "$SEEDS" = "0 1 2" ] || cmd="SEEDS=\"$SEEDS\" $cmd"
[ -z "$STEPS" ] || cmd="STEPS=$STEPS $cmd"
[ "$MODELS" = "vae realnvp vqvae gan wgan_gp cgan" ] || cmd="MODELS=\"$MODELS\" $cmd"
[ "$KEEP" = 1 ] && cmd="$cmd (the last of several runs with KEEP=1)"
"$PY" bench/learning_report.py "$OUT" "$cmd" bench/RESULTS.md || exit 1
echo "learning: wrote the Learning section of bench/RESULTS.md" >&2
exit $fail
