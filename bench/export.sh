#!/bin/sh
# Start-up to the first chunk and per-chunk latency of a policy exported with `edifice
# export` (a C program linked with cc ... policy.o -lopenblas -lm) against `edifice sample`
# (checkpoint load and JIT compile in every process) and a PyTorch eager twin
# (bench/torch/policy_startup.py). The policy: `edifice train ddpm --data demo` (hidden
# 256, 4 blocks; observation 6, chunk 8 x 2, DDPM 100 steps), batch 1, one thread.
# usage: bench/export.sh BUILD_DIR [REPEATS]   (results to stdout; bench/RESULTS.md has them)
set -eu
B=$(cd "$1" && pwd)
R=${2:-5}
SRC=$(cd "$(dirname "$0")/.." && pwd)
W=$B/bench_export
mkdir -p "$W"
cd "$W"
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
[ -f policy.safetensors ] || "$B/edifice" train ddpm --data demo --steps 300 --out policy.safetensors >/dev/null 2>&1
"$B/edifice" data demo --n 1 --seed 3 --out d.npy >/dev/null
t0=$(date +%s%N)
"$B/edifice" export ddpm --ckpt policy.safetensors --out policy >/dev/null
echo "export: $(( ($(date +%s%N) - t0) / 1000000 )) ms to write policy.o ($(stat -c %s policy.o) bytes)"
cc -O2 -I. -o policy_demo "$SRC/examples/policy_demo.c" policy.o -lopenblas -lm
cc -O2 -I. -o export_latency "$SRC/bench/export_latency.c" policy.o -lopenblas -lm
OBS=$(/usr/bin/python3 -c "
import struct
b = open('d.obs.npy', 'rb').read(); n = struct.unpack('<H', b[8:10])[0]; d = b[10 + n:]
print(' '.join(float(x).hex() for x in struct.unpack('<%df' % (len(d) // 4), d)))")

# wall time of one process that draws one chunk, median of R
wall() {
    ts=""
    for _ in $(seq "$R"); do
        t0=$(date +%s%N)
        "$@" >/dev/null 2>&1
        ts="$ts $(( ($(date +%s%N) - t0) / 1000 ))"
    done
    echo $ts | tr ' ' '\n' | sort -n | awk '{a[NR]=$1} END {printf "median %.1f ms (min %.1f, max %.1f)", a[int((NR+1)/2)]/1000, a[1]/1000, a[NR]/1000}'
}
echo "start-up to first chunk (one process, one chunk):"
echo "  exported policy_demo:  $(wall ./policy_demo 7 $OBS)"
echo "  edifice sample --n 1:  $(wall "$B/edifice" sample ddpm --ckpt policy.safetensors --obs d.obs.npy --n 1 --batch 1 --seed 7 --out s.npy)"
if /usr/bin/python3 -c "import torch" 2>/dev/null; then
    echo "  pytorch eager twin:    $(wall /usr/bin/python3 "$SRC/bench/torch/policy_startup.py" 0)"
fi
echo "per chunk (in one process):"
for _ in $(seq "$R"); do ./export_latency 200; done
"$B/edifice" data demo --n 200 --seed 3 --out d200.npy >/dev/null
for _ in $(seq "$R"); do
    "$B/edifice" sample ddpm --ckpt policy.safetensors --obs d200.obs.npy --n 200 --batch 1 --seed 7 --out s200.npy 2>&1 |
        sed -n 's/.*samples of .* in \([0-9.]*\) s.*/edifice sample: 200 chunks in \1 s/p'
done
if /usr/bin/python3 -c "import torch" 2>/dev/null; then
    for _ in $(seq "$R"); do /usr/bin/python3 "$SRC/bench/torch/policy_startup.py" 50; done
fi
