#!/usr/bin/env bash
# `make bench`: build, run every C workload (JIT at 1 and 2 threads; the interpreter for
# W1, W4, W7 and the loop only, it is slow) and the PyTorch versions (eager and TorchScript, 1
# and 2 threads), then write bench/RESULTS.md with bench/report.py. Raw output of every
# command goes to $BUILD/bench-out/. PyTorch missing is reported, not a failure.
#
# Usage: bench/run.sh [BUILD_DIR]   (default build; BENCH_QUICK=1 for a smoke run;
#        BENCH_ONLY="w8 ..." runs only those training workloads and replaces only their
#        sections of bench/RESULTS.md, each saying so: a new workload without a full run;
#        BENCH_ONLY=export the exported-policy section alone)
set -u
cd "$(dirname "$0")/.."
BUILD=${1:-build}
OUT=$BUILD/bench-out
PY=/usr/bin/python3
REPEATS=5
[ "${BENCH_QUICK:-0}" = 1 ] && REPEATS=1

if [ ! -x "$PY" ]; then
    echo "bench: $PY not found; it is needed to write bench/RESULTS.md (apt-get install python3)" >&2
    exit 1
fi

cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$BUILD.configure.log" 2>&1 \
    || { cat "$BUILD.configure.log"; exit 1; }
cmake --build "$BUILD" -j2 --target bench edifice_cli || exit 1

rm -rf "$OUT"
mkdir -p "$OUT"
start=$(date +%s)
uptime >"$OUT/load-before.txt"
{
    git rev-parse --short HEAD 2>/dev/null || echo unknown
    [ -z "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] || echo "plus uncommitted changes"
} | paste -sd' ' >"$OUT/commit.txt"

# run NAME THREADS COMMAND...: one command with OpenBLAS and OpenMP at THREADS, its
# exact command line, output and exit status kept in $OUT/NAME.txt. OpenMP threads wait
# passively: PyTorch's libgomp team spinning against OpenBLAS's own pthreads on two
# cores made its 2-thread steps 3-20x slower in trial runs (edifice uses no OpenMP).
run() {
    local name=$1 threads=$2
    shift 2
    local f="$OUT/$name.txt"
    local env="OPENBLAS_NUM_THREADS=$threads OMP_NUM_THREADS=$threads OMP_WAIT_POLICY=PASSIVE"
    echo "CMD $env$(printf ' %q' "$@")" >"$f"
    echo "LOAD $(cut -d' ' -f1 /proc/loadavg)" >>"$f"
    echo "bench: $name:$(printf ' %q' "$@")" >&2
    env $env "$@" >>"$f" 2>&1
    echo "EXIT $?" >>"$f"
}

# Steps per timed repeat, per workload (the same for both sides).
steps_for() {
    case $1 in
    w1) echo 10 ;; w2) echo 20 ;; w3 | w3d) echo 3 ;; w5) echo 10 ;; w8) echo 3 ;; w9_unet) echo 2 ;; w10_dcgan) echo 3 ;;
    *) echo 3 ;;
    esac
}

B=$BUILD/bench
have_torch=0
if "$PY" -c "import torch" >/dev/null 2>&1; then
    have_torch=1
else
    echo "bench: PyTorch is not installed for $PY (apt-get install python3-torch python3-numpy);" \
        "the C tables are written without the PyTorch side" >&2
    "$PY" -c "import torch" >"$OUT/torch-missing.txt" 2>&1
fi

# Each workload's edifice and PyTorch runs back to back, so a change in the machine's
# load (other builds) hits both sides of a ratio alike.
for w in ${BENCH_ONLY:-w1 w2 w3 w3d w5 w8 w9_unet w10_dcgan}; do
    [ "$w" = export ] && continue
    s=$(steps_for $w)
    for t in 1 2; do
        run "c-$w-jit-t$t" $t "$B" $w --backend jit --threads $t --repeats $REPEATS --steps $s
        # The same step without the graph passes, right after, for the passes table.
        [ $t = 1 ] && run "c-$w-jit-nopasses" 1 "$B" $w --backend jit --passes '' --threads 1 --repeats $REPEATS --steps $s
        [ $have_torch = 1 ] || continue
        for m in eager script; do
            run "torch-$w-$m-t$t" $t "$PY" bench/torch/run.py $w --mode $m --threads $t --repeats $REPEATS --steps $s
        done
    done
done
# An exported policy against `edifice sample` and PyTorch (bench/export.sh; BENCH_ONLY=export
# runs it alone).
case " ${BENCH_ONLY:-export} " in
*" export "*) run "export-policy" 1 bash bench/export.sh "$BUILD" $REPEATS ;;
esac
if [ -n "${BENCH_ONLY:-}" ]; then
    uptime >"$OUT/load-after.txt"
    echo "$(($(date +%s) - start))" >"$OUT/elapsed.txt"
    "$PY" bench/report.py "$OUT" "$BUILD" --splice bench/RESULTS.md || exit 1
    echo "bench: replaced the sections of $BENCH_ONLY in bench/RESULTS.md" >&2
    ! grep -l "^EXIT [1-9]" "$OUT"/c-*.txt >&2
    exit
fi
for t in 1 2; do
    run "c-w6-t$t" $t "$B" w6 --threads $t --repeats $REPEATS --steps 3
    [ $have_torch = 1 ] && run "torch-w6-t$t" $t "$PY" bench/torch/run.py w6 --threads $t --repeats $REPEATS --steps 3
done
run "c-w4-jit" 1 "$B" w4 --backend jit --threads 1 --repeats $REPEATS --steps 1
[ $have_torch = 1 ] && run "torch-w4-t1" 1 "$PY" bench/torch/run.py w4 --threads 1 --repeats $REPEATS --steps 1
run "c-w4-interp" 1 "$B" w4 --backend interp --threads 1 --repeats $REPEATS --steps 1
# W4 with the W1 network: a DDPM call is a minute (JIT) to minutes (PyTorch), so one
# call each without a warm-up; the interpreter samples fewer iterations (bench/w4net.c).
# The JIT also at 2 threads, for the "Both cores" table (PyTorch's would add minutes).
run "c-w4net-jit" 1 "$B" w4net --backend jit --threads 1 --repeats 1 --steps 1 --no-warmup
run "c-w4net-jit-t2" 2 "$B" w4net --backend jit --threads 2 --repeats 1 --steps 1 --no-warmup
[ $have_torch = 1 ] && run "torch-w4net-t1" 1 "$PY" bench/torch/run.py w4net --threads 1 --repeats 1 --steps 1 --no-warmup
run "c-w4net-interp" 1 "$B" w4net --backend interp --threads 1 --repeats 1 --steps 1 --no-warmup
run "c-w7-jit" 1 "$B" w7 --backend jit --threads 1 --repeats $REPEATS --steps 5
run "c-w7-jit-nopasses" 1 "$B" w7 --backend jit --passes '' --threads 1 --repeats $REPEATS --steps 5
[ $have_torch = 1 ] && run "torch-w7-t1" 1 "$PY" bench/torch/run.py w7 --threads 1 --repeats $REPEATS --steps 5
run "c-w7-interp" 1 "$B" w7 --backend interp --threads 1 --repeats 3 --steps 1
for t in 1 2; do
    run "c-w1-interp-t$t" $t "$B" w1 --backend interp --threads $t --repeats $REPEATS --steps 2
done
for o in 0 1 3; do
    run "c-w1-jit-O$o" 1 "$B" w1 -O$o --threads 1 --repeats $REPEATS --steps 10
done
run "c-loop-jit" 1 "$B" loop --backend jit --steps 1 --repeats $REPEATS
run "compile-series" 1 sh bench/compile_series.sh "$BUILD"
run "c-loop-interp" 1 "$B" loop --backend interp --steps 1 --repeats $REPEATS

uptime >"$OUT/load-after.txt"
echo "$(($(date +%s) - start))" >"$OUT/elapsed.txt"
# The Learning section is bench/learning.sh's (minutes of training) and the Data parallel one
# bench/mpi.sh's (an EDIFICE_MPI build): kept as they were.
[ -f bench/RESULTS.md ] && awk '/^## /{on = /^## (Learning|Data parallel)/} on' bench/RESULTS.md >"$OUT/learning-section.md"
"$PY" bench/report.py "$OUT" "$BUILD" >bench/RESULTS.md.tmp \
    && { [ ! -s "$OUT/learning-section.md" ] || { printf '\n'; cat "$OUT/learning-section.md"; } >>bench/RESULTS.md.tmp; } \
    && mv bench/RESULTS.md.tmp bench/RESULTS.md \
    || { echo "bench: writing bench/RESULTS.md failed" >&2; exit 1; }
echo "bench: wrote bench/RESULTS.md ($(cat "$OUT/elapsed.txt") s of runs)" >&2
# A workload that failed is in the tables as failed; make the command fail too.
! grep -l "^EXIT [1-9]" "$OUT"/c-*.txt >&2
