/* The benchmark driver's shared pieces: a clock, repeat-and-median timing, the
 * options every workload takes, and the workload table. */
#ifndef ED_BENCH_H
#define ED_BENCH_H

#include "backend/backend.h"

#include <stdbool.h>

typedef struct {
    ed_backend backend;
    int threads;         /* OpenBLAS threads */
    int repeats;         /* timed repeats (>= 5 for a reported median) */
    int steps;           /* calls per timed repeat */
    ed_opt_level opt;    /* JIT optimization level (-O0..-O3; default O2) */
    const char *passes;  /* graph pass pipeline; NULL for the default, "" for none */
    ed_arena_mode arena; /* --arena: the JIT's memory plan (default: in place) */
    bool no_warmup;      /* --no-warmup: time from the first call (calls of a minute) */
    const char *dump_ir; /* --dump-ir FILE: the training step's graph after the passes,
                          * whose node ids name the JIT's kernels (k<id>_<op>) in a profile */
} bench_opts;

/* Median, min and max of one figure over the repeats, in seconds. */
typedef struct {
    double median, min, max;
} bench_stat;

double bench_now(void);
double bench_cpu_now(void);
/* Time fn(ud) `steps` times per repeat after one warm-up call (none with no_warmup);
 * per-call seconds. fn returns false to stop with its error already printed. */
bool bench_time(const bench_opts *o, bool (*fn)(void *ud), void *ud, bench_stat *out);
const char *bench_backend_name(ed_backend b);
/* Measured peak f32 FLOP/s of one core (register-only FMA loop, widest vectors). */
double bench_peak_flops(void);

/* Measured cblas_sgemm rate at n^3 with OpenBLAS's current thread count, in FLOP/s
 * (median of 5 repeats after a warm-up): the rate a workload's roofline time uses. */
double bench_sgemm_flops(int n);
/* Streaming read rate of one core over a buffer of `bytes` (summed 8 bytes at a time,
 * median of 7 repeats of 20 passes after a warm-up), in bytes/s: the memory limit a
 * batch-1 sampler step meets when it reads that many weight bytes. */
double bench_read_bandwidth(size_t bytes);

/* A training workload of bench/workloads.h (w1, w2, w3, w5): compile, time steps,
 * report compile time, step time, FLOPs per step and the roofline share. */
int bench_train(const bench_opts *o, const char *id);
int bench_w4(const bench_opts *o);
/* W4 with the W1 network as the denoiser (bench/w4net.c). */
int bench_w4net(const bench_opts *o);
int bench_w6(const bench_opts *o);
/* W7 policy latency (bench/w7.c). */
int bench_w7(const bench_opts *o);
/* The GEMV kernel against sgemm at 1, 2, 4, 8 rows (bench/gemv.c). */
int bench_gemv(const bench_opts *o);
int bench_loop(const bench_opts *o);
/* ns per normal of ed_rng_normal, f32 and f64. */
int bench_rng(const bench_opts *o);

#endif
