#!/usr/bin/env bash
# The learning table of bench/RESULTS.md: `edifice train vae|realnvp|vqvae|cgan --data digits`
# and `edifice train gan|wgan_gp --data 8gaussians` (bench/torch/gan.py the twins) at the
# CLI's defaults, then `edifice eval` on the test digits, for 3 seeds, beside their PyTorch
# twins (bench/torch/learning.py: same architecture, init, data, loss and budget); dit on
# the digits at test_quality's budget (DIT_STEPS, DIT_OPTS), its samples unguided and at
# guidance 2; latent_diffusion at test_quality's budget (a VAE of latent 8 for STEPS in a
# file of its own, the latent denoiser for 2 x STEPS); score_sde (VP and VE) on moons at the CLI's defaults (8000 steps of the small
# network on 2-D data; the twins with the same); consistency (consistency training) on moons at the
# CLI's defaults, sampled in one step and in two (bench/torch/consistency.py the twin). The twins' samples are
# judged by BUILD/score_samples, edifice eval's own classifier and metrics. Raw output
# goes to $BUILD/learning-out/; bench/learning_report.py writes the "## Learning" section
# into bench/RESULTS.md in place (bench/run.sh keeps it when it rewrites the rest).
#
# Usage: bench/learning.sh [BUILD_DIR]   (default build; the CLI is BUILD_DIR/edifice or
#        BUILD_DIR/tools/edifice; SEEDS="0 1 2", STEPS (vae, realnvp, vqvae, the
#        GANs: each model's own, `edifice models MODEL`) and MODELS="vae realnvp vqvae gan
#        wgan_gp cgan latent_diffusion dit score_sde_vp score_sde_ve consistency" by default; a run of some MODELS keeps the other
#        rows of the table as they were)
set -u
cd "$(dirname "$0")/.."
BUILD=${1:-build}
PY=/usr/bin/python3
SEEDS=${SEEDS:-"0 1 2"}
STEPS=${STEPS:-}
ALL="vae realnvp vqvae gan wgan_gp cgan latent_diffusion dit score_sde_vp score_sde_ve consistency"
MODELS=${MODELS:-$ALL}
# dit's budget: tests/test_quality.c's test_dit_digits (the CLI's default run is ~15 min).
DIT_STEPS=${DIT_STEPS:-1000}
DIT_OPTS=${DIT_OPTS:-"--hidden 128 --depth 2 --patch 4 --batch 128"}
OUT=${LEARNING_OUT:-$BUILD/learning-out}
# score_sde's default run on 2-D data (models/score_sde.c): the twin's budget and network.
SDE_STEPS=8000 SDE_HIDDEN=64 SDE_LAYERS=2

CLI=
for c in "$BUILD/edifice" "$BUILD/tools/edifice"; do
    [ -x "$c" ] && [ ! -d "$c" ] && { CLI=$c; break; }
done
[ -n "$CLI" ] || { echo "learning: no edifice CLI in $BUILD (build it first)" >&2; exit 1; }
SCORER=$BUILD/score_samples
[ -x "$SCORER" ] || { echo "learning: no $SCORER (cmake --build $BUILD --target score_samples)" >&2; exit 1; }
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

# eval_as SUFFIX COMMAND...: the command's figure lines renamed NAME_SUFFIX (two evals of
# one checkpoint in one file), sliced W1 as swd and swd_floor (with the suffix too).
eval_as() {
    local suffix=$1
    shift
    "$@" | awk -v sfx="$suffix" '
        /^sliced Wasserstein-1/ {
            print; print "swd" sfx " " $3; print "swd_floor" sfx " " $4; print "swd_ratio" sfx " " $3 / $4; next }
        /^ *(label_accuracy|frechet_distance) / { print $1 sfx " " $2; next }
        { print }'
    return "${PIPESTATUS[0]}"
}

# steps_of MODEL: STEPS if given, else the model's own default (`edifice models MODEL`).
steps_of() {
    [ -n "$STEPS" ] && { echo "$STEPS"; return; }
    local n
    n=$("$CLI" models "$1" | sed -n 's/.*trains \([0-9]*\) iterations without --steps.*/\1/p')
    echo "${n:-1000}"
}

fail=0
for model in $MODELS; do
    for s in $SEEDS; do
        ck="$OUT/$model-s$s.safetensors"
        f="$OUT/c-$model-s$s.txt"
        t="$OUT/torch-$model-s$s.txt"
        case $model in
        dit)
            # shellcheck disable=SC2086
            log "$f" "$CLI" train dit --data digits --seed "$s" --steps "$DIT_STEPS" $DIT_OPTS --out "$ck"
            log "$f" eval_as _unguided "$CLI" eval dit --ckpt "$ck" --seed "$s"
            log "$f" eval_as _guided "$CLI" eval dit --ckpt "$ck" --seed "$s" --guidance 2
            # shellcheck disable=SC2086
            log "$t" "$PY" bench/torch/learning.py dit --seed "$s" --steps "$DIT_STEPS" $DIT_OPTS --threads 1 \
                --guidance 2 --samples "$OUT" --scorer "$SCORER"
            ;;
        latent_diffusion)
            # the VAE's run in a file of its own (the table reads one `trained` line per file)
            n=$(steps_of vae)
            vae="$OUT/ldvae-s$s.safetensors"
            log "$OUT/ldvae-s$s.txt" "$CLI" train vae --data digits --seed "$s" --steps "$n" --latent 8 \
                --encoder 128 --decoder 128 --out "$vae"
            log "$f" "$CLI" train latent_diffusion --data digits --seed "$s" --steps $((2 * n)) --vae "$vae" \
                --hidden 128 --layers 2 --out "$ck"
            log "$f" "$CLI" eval latent_diffusion --ckpt "$ck" --seed "$s"
            log "$t" "$PY" bench/torch/learning.py latent_diffusion --seed "$s" --steps $((2 * n)) \
                --vae-steps "$n" --threads 1 --samples "$OUT" --scorer "$SCORER"
            ;;
        score_sde_vp | score_sde_ve)
            log "$f" "$CLI" train score_sde --sde "${model#score_sde_}" --data moons --seed "$s" --out "$ck"
            log "$f" eval_as "" "$CLI" eval score_sde --ckpt "$ck" --seed "$s"
            log "$t" "$PY" bench/torch/learning.py "$model" --seed "$s" --steps "$SDE_STEPS" --threads 1 \
                --hidden "$SDE_HIDDEN" --layers "$SDE_LAYERS" --samples "$OUT" --scorer "$SCORER"
            ;;
        consistency)
            log "$f" "$CLI" train consistency --data moons --seed "$s" --out "$ck"
            log "$f" eval_as "" "$CLI" eval consistency --ckpt "$ck" --seed "$s"
            log "$f" eval_as _two "$CLI" eval consistency --ckpt "$ck" --seed "$s" --steps 2
            log "$t" "$PY" bench/torch/consistency.py --seed "$s" --steps "$(steps_of consistency)" --threads 1 \
                --samples "$OUT" --scorer "$SCORER"
            ;;
        gan | wgan_gp)
            n=$(steps_of "$model")
            log "$f" "$CLI" train "$model" --data 8gaussians --seed "$s" --steps "$n" --out "$ck"
            log "$f" "$CLI" eval "$model" --ckpt "$ck" --seed "$s"
            log "$t" "$PY" bench/torch/gan.py "$model" --seed "$s" --steps "$n" --threads 1
            ;;
        cgan)
            n=$(steps_of cgan)
            log "$f" "$CLI" train cgan --data digits --seed "$s" --steps "$n" --out "$ck"
            log "$f" "$CLI" eval cgan --ckpt "$ck" --seed "$s"
            log "$t" "$PY" bench/torch/gan.py cgan --seed "$s" --steps "$n" --threads 1 --samples "$OUT/torch-cgan-s$s.npy"
            log "$t" "$SCORER" cgan digits "$s" "$OUT/torch-cgan-s$s.npy" "$OUT/torch-cgan-s$s-labels.npy"
            ;;
        *)
            log "$f" "$CLI" train "$model" --data digits --seed "$s" --steps "$(steps_of "$model")" --out "$ck"
            log "$f" "$CLI" eval "$model" --ckpt "$ck" --seed "$s"
            log "$t" "$PY" bench/torch/learning.py "$model" --seed "$s" --steps "$(steps_of "$model")" --threads 1
            ;;
        esac
    done
done
uptime >"$OUT/load-after.txt"
grep -l "^EXIT [1-9]" "$OUT"/*.txt >&2 && fail=1

cmd="bench/learning.sh $BUILD"
[ "$SEEDS" = "0 1 2" ] || cmd="SEEDS=\"$SEEDS\" $cmd"
[ "$MODELS" = "$ALL" ] || cmd="MODELS=\"$MODELS\" $cmd"
[ -z "$STEPS" ] || cmd="STEPS=$STEPS $cmd"
"$PY" bench/learning_report.py "$OUT" "$cmd" bench/RESULTS.md || exit 1
echo "learning: wrote the Learning section of bench/RESULTS.md" >&2
exit $fail
