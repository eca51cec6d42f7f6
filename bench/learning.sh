#!/usr/bin/env bash
# The learning table of bench/RESULTS.md: `edifice train vae|realnvp|vqvae --data digits` at the
# CLI's defaults, then `edifice eval` on the test digits, and latent_diffusion at
# test_quality's budget (a VAE of latent 8 for STEPS, the latent denoiser for 2 x STEPS),
# for 3 seeds, beside their PyTorch twins (bench/torch/learning.py: same architecture,
# init, data, loss and budget). Raw output goes to $BUILD/learning-out/;
# bench/learning_report.py writes the "## Learning" section into bench/RESULTS.md in place
# (bench/run.sh keeps it when it rewrites the rest).
#
# Usage: bench/learning.sh [BUILD_DIR]   (default build; the CLI is BUILD_DIR/edifice or
#        BUILD_DIR/tools/edifice; SEEDS="0 1 2" and STEPS=1000 by default; MODELS="vae
#        realnvp vqvae latent_diffusion" by default: a subset reruns those models only,
#        keeping the other models' raw output for the table)
set -u
cd "$(dirname "$0")/.."
BUILD=${1:-build}
PY=/usr/bin/python3
SEEDS=${SEEDS:-"0 1 2"}
STEPS=${STEPS:-1000}
ALL="vae realnvp vqvae latent_diffusion"
MODELS=${MODELS:-$ALL}
OUT=$BUILD/learning-out

CLI=
for c in "$BUILD/edifice" "$BUILD/tools/edifice"; do
    [ -x "$c" ] && [ ! -d "$c" ] && { CLI=$c; break; }
done
[ -n "$CLI" ] || { echo "learning: no edifice CLI in $BUILD (build it first)" >&2; exit 1; }
"$PY" -c "import torch, numpy" 2>/dev/null \
    || { echo "learning: PyTorch is not installed for $PY (apt-get install python3-torch python3-numpy)" >&2; exit 1; }

if [ "$MODELS" = "$ALL" ]; then
    rm -rf "$OUT"
else
    for model in $MODELS; do rm -f "$OUT"/c-"$model"-s*.txt "$OUT"/torch-"$model"-s*.txt; done
fi
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
for model in $MODELS; do
    [ "$model" = latent_diffusion ] && continue
    for s in $SEEDS; do
        ck="$OUT/$model-s$s.safetensors"
        f="$OUT/c-$model-s$s.txt"
        log "$f" "$CLI" train "$model" --data digits --seed "$s" --steps "$STEPS" --out "$ck"
        log "$f" "$CLI" eval "$model" --ckpt "$ck" --seed "$s"
        log "$OUT/torch-$model-s$s.txt" "$PY" bench/torch/learning.py "$model" --seed "$s" --steps "$STEPS" --threads 1
    done
done
# latent_diffusion: the VAE's run in a file of its own (the table reads one `trained` line
# per file); the PyTorch twin judges its samples with the classifier edifice's eval cached.
case " $MODELS " in *" latent_diffusion "*)
    for s in $SEEDS; do
        vae="$OUT/ldvae-s$s.safetensors"
        ck="$OUT/latent_diffusion-s$s.safetensors"
        f="$OUT/c-latent_diffusion-s$s.txt"
        log "$OUT/ldvae-s$s.txt" "$CLI" train vae --data digits --seed "$s" --steps "$STEPS" --latent 8 \
            --encoder 128 --decoder 128 --out "$vae"
        log "$f" "$CLI" train latent_diffusion --data digits --seed "$s" --steps $((2 * STEPS)) --vae "$vae" \
            --hidden 128 --layers 2 --out "$ck"
        log "$f" env EDIFICE_CACHE="$OUT/cache" "$CLI" eval latent_diffusion --ckpt "$ck" --seed "$s"
        clf=$(ls "$OUT"/cache/classifier-digits-*.safetensors 2>/dev/null | head -n 1)
        log "$OUT/torch-latent_diffusion-s$s.txt" "$PY" bench/torch/learning.py latent_diffusion --seed "$s" \
            --steps $((2 * STEPS)) --vae-steps "$STEPS" --classifier "$clf" --threads 1
    done
    ;;
esac
uptime >"$OUT/load-after.txt"
grep -l "^EXIT [1-9]" "$OUT"/*.txt >&2 && fail=1

cmd="bench/learning.sh $BUILD"
[ "$SEEDS" = "0 1 2" ] || cmd="SEEDS=\"$SEEDS\" $cmd"
[ "$STEPS" = 1000 ] || cmd="STEPS=$STEPS $cmd"
[ "$MODELS" = "$ALL" ] || cmd="MODELS=\"$MODELS\" $cmd"
"$PY" bench/learning_report.py "$OUT" "$cmd" bench/RESULTS.md || exit 1
echo "learning: wrote the Learning section of bench/RESULTS.md" >&2
exit $fail
