#!/bin/sh
# Data-parallel figures (bench/README.md, "Data parallel"): W1 and W3 on 1 process with 1
# and 2 threads and on 2 ranks of 1 thread each, then `edifice train ddpm --data moons` on
# 1 process and on 2 ranks (steps/s and rank 0's share in allreduce). Needs an EDIFICE_MPI
# build. Prints the raw lines; the section of bench/RESULTS.md is written from them.
# Usage: bench/mpi.sh BUILD_DIR [STEPS]
set -eu
BUILD=${1:?usage: bench/mpi.sh BUILD_DIR [STEPS]}
STEPS=${2:-400}
# Open MPI refuses root unless both say yes (CI and this machine run as root).
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_WAIT_POLICY=PASSIVE
MPIRUN="mpirun -np 2 --oversubscribe -x OPENBLAS_NUM_THREADS=1"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
for w in w1 w3; do
    echo "== $w: 1 process, 1 thread";  "$BUILD/bench" $w --threads 1 | grep RESULT
    echo "== $w: 1 process, 2 threads"; "$BUILD/bench" $w --threads 2 | grep RESULT
    echo "== $w: 2 ranks, 1 thread each"; $MPIRUN "$BUILD/bench" $w --threads 1 | grep RESULT
done
RUN="train ddpm --data moons --steps $STEPS --seed 1"
echo "== ddpm moons: 1 process, 1 thread"
OPENBLAS_NUM_THREADS=1 "$BUILD/edifice" $RUN --out "$TMP/one.safetensors" 2>&1 | grep trained
echo "== ddpm moons: 1 process, 2 threads"
OPENBLAS_NUM_THREADS=2 "$BUILD/edifice" $RUN --out "$TMP/one2.safetensors" 2>&1 | grep trained
echo "== ddpm moons: 2 ranks, 1 thread each"
$MPIRUN "$BUILD/edifice" $RUN --out "$TMP/two.safetensors" 2>&1 | grep -E "trained|collectives"
