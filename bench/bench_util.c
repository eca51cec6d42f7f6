/* Timing helpers for the benchmark driver. */
#include "bench/bench.h"
#include "runtime/pool.h"
#include "runtime/tensor.h"

#include <cblas.h>
#include <stdlib.h>
#include <immintrin.h>
#include <time.h>

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Process CPU seconds: on a shared machine the figure that waiting for a core leaves alone. */
double bench_cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

bool bench_time(const bench_opts *o, bool (*fn)(void *ud), void *ud, bench_stat *out)
{
    double t[100];
    int r = o->repeats < 1 ? 1 : o->repeats > 100 ? 100 : o->repeats;
    if (!o->no_warmup && !fn(ud)) return false; /* warm-up: first-touch pages, lazy symbol binding */
    for (int i = 0; i < r; i++) {
        double s = bench_now();
        for (int k = 0; k < o->steps; k++)
            if (!fn(ud)) return false;
        t[i] = (bench_now() - s) / o->steps;
    }
    qsort(t, (size_t)r, sizeof t[0], cmp_double);
    *out = (bench_stat){t[r / 2], t[0], t[r - 1]};
    return true;
}

const char *bench_backend_name(ed_backend b) { return b == ED_BACKEND_INTERP ? "interp" : "jit"; }

/* Peak single-precision FMA throughput of one core, measured: 12 independent vector
 * accumulators (enough to cover FMA latency x pipes) updated in a register-only loop.
 * The widest vectors the CPU runs are used (AVX-512 where present, else AVX2+FMA). */

/* Written out twice, once per vector width: the target attribute is per function. */
__attribute__((target("avx512f"))) static float fma_loop_512(long iters)
{
    __m512 acc[12], m = _mm512_set1_ps(0.999999f), a = _mm512_set1_ps(1e-7f);
    for (int k = 0; k < 12; k++) acc[k] = _mm512_set1_ps((float)k);
    for (long it = 0; it < iters; it++)
#pragma GCC unroll 12 /* keeps acc[] in registers */
        for (int k = 0; k < 12; k++) acc[k] = _mm512_fmadd_ps(acc[k], m, a);
    float sink = 0;
    for (int k = 0; k < 12; k++) sink += _mm512_reduce_add_ps(acc[k]);
    return sink;
}

__attribute__((target("avx2,fma"))) static float fma_loop_256(long iters)
{
    __m256 acc[12], m = _mm256_set1_ps(0.999999f), a = _mm256_set1_ps(1e-7f);
    for (int k = 0; k < 12; k++) acc[k] = _mm256_set1_ps((float)k);
    for (long it = 0; it < iters; it++)
#pragma GCC unroll 12 /* keeps acc[] in registers */
        for (int k = 0; k < 12; k++) acc[k] = _mm256_fmadd_ps(acc[k], m, a);
    float sink = 0;
    for (int k = 0; k < 12; k++) sink += _mm256_cvtss_f32(acc[k]);
    return sink;
}

double bench_peak_flops(void)
{
    __builtin_cpu_init();
    bool wide = __builtin_cpu_supports("avx512f");
    int lanes = wide ? 16 : 8;
    long iters = 20000000;
    double best = 0;
    for (int r = 0; r < 5; r++) {
        double s = bench_now();
        volatile float sink = wide ? fma_loop_512(iters) : fma_loop_256(iters);
        (void)sink;
        double rate = 12.0 * lanes * 2 * iters / (bench_now() - s);
        if (rate > best) best = rate;
    }
    return best;
}

typedef struct {
    int n;
    float *a, *b, *c;
} sgemm_probe;

static bool probe_step(void *ud)
{
    sgemm_probe *p = ud;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, p->n, p->n, p->n, 1.0f, p->a, p->n, p->b, p->n, 0.0f, p->c,
                p->n);
    return true;
}

/* The rate at the program's thread count: OpenBLAS's own threads for the probe, since
 * ed_set_threads leaves OpenBLAS at one thread while the pool splits the sgemms (a
 * 2-thread roofline from a 1-thread probe overstated the share ~2x). */
double bench_sgemm_flops(int n)
{
    int blas_threads = openblas_get_num_threads();
    openblas_set_num_threads(ed_pool_threads());
    size_t nn = (size_t)n * (size_t)n;
    sgemm_probe p = {n, malloc(nn * sizeof(float)), malloc(nn * sizeof(float)), malloc(nn * sizeof(float))};
    double rate = 0;
    if (p.a && p.b && p.c) {
        for (size_t i = 0; i < nn; i++) {
            p.a[i] = 0.5f + 1e-3f * (float)(i % 89);
            p.b[i] = -0.25f + 1e-3f * (float)(i % 97);
        }
        double flops = 2.0 * n * (double)n * n;
        /* about 20 ms of work per repeat at ~100 GFLOP/s */
        int steps = (int)(2e9 / flops) + 1;
        bench_opts o = {.repeats = 5, .steps = steps};
        bench_stat s;
        if (bench_time(&o, probe_step, &p, &s)) rate = flops / s.median;
    }
    free(p.a);
    free(p.b);
    free(p.c);
    openblas_set_num_threads(blas_threads);
    return rate;
}

typedef struct {
    const uint64_t *buf;
    size_t words;
    uint64_t sink;
} stream_probe;

/* 32-byte loads or-ed into four registers: the loads, not the arithmetic, bound it (the
 * widest loads this host has, as the GEMV kernels use). */
__attribute__((target("avx2"))) static bool stream_step(void *ud)
{
    stream_probe *p = ud;
    __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
    const __m256i *v = (const __m256i *)p->buf;
    for (size_t i = 0; i + 4 <= p->words / 4; i += 4) {
        s0 = _mm256_or_si256(s0, _mm256_load_si256(v + i));
        s1 = _mm256_or_si256(s1, _mm256_load_si256(v + i + 1));
        s2 = _mm256_or_si256(s2, _mm256_load_si256(v + i + 2));
        s3 = _mm256_or_si256(s3, _mm256_load_si256(v + i + 3));
    }
    __m256i s = _mm256_or_si256(_mm256_or_si256(s0, s1), _mm256_or_si256(s2, s3));
    p->sink += (uint64_t)_mm256_extract_epi64(s, 0);
    return true;
}

double bench_read_bandwidth(size_t bytes)
{
    stream_probe p = {.words = bytes / 8};
    uint64_t *buf = ed_aligned_alloc(p.words * 8 + 64);
    double rate = 0;
    if (buf) {
        for (size_t i = 0; i < p.words; i++) buf[i] = i * 0x9E3779B97F4A7C15ull;
        p.buf = buf;
        bench_opts o = {.repeats = 7, .steps = 20};
        bench_stat s;
        if (bench_time(&o, stream_step, &p, &s)) rate = (double)(p.words * 8) / s.median;
    }
    ed_aligned_free(buf);
    return rate;
}
