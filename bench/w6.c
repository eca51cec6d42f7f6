/* W6 kernels (bench/README.md): sgemm at 64, 256 and 1024 cubed through a compiled
 * graph against cblas_sgemm called directly and against the machine's peak, and a
 * large elementwise kernel against memcpy.
 *
 * Peak: one core's FMA throughput measured by bench_peak_flops (the clock under a
 * hypervisor is not what /proc/cpuinfo says), times the threads used. */
#include "bench/bench.h"
#include "frontend/frontend.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    ed_program *p;
    ed_feed feeds[2];
    int nfeeds;
} graph_call;

static bool run_graph(void *ud)
{
    graph_call *c = ud;
    if (ed_run(c->p, c->feeds, c->nfeeds) == ED_OK) return true;
    fprintf(stderr, "bench w6: %s\n", ed_last_error());
    return false;
}

typedef struct {
    int n;
    const float *a, *b;
    float *c;
} gemm_call;

static bool run_cblas(void *ud)
{
    gemm_call *c = ud;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, c->n, c->n, c->n, 1.0f, c->a, c->n, c->b, c->n, 0.0f, c->c,
                c->n);
    return true;
}

typedef struct {
    size_t bytes;
    void *dst;
    const void *src;
} copy_call;

static bool run_memcpy(void *ud)
{
    copy_call *c = ud;
    memcpy(c->dst, c->src, c->bytes);
    return true;
}

static ed_tensor *filled(ed_shape s, float v)
{
    ed_tensor *t = ed_tensor_new(ED_F32, s);
    float *d = t->data;
    for (int64_t i = 0; i < ed_tensor_numel(t); i++) d[i] = v + 1e-3f * (float)(i % 97);
    return t;
}

static int gemm(const bench_opts *o, int n, double peak)
{
    ed_graph *g = ed_graph_new("sgemm");
    ed_shape s = ed_shape2(n, n);
    ed_output(g, "c", ed_matmul(ed_input(g, "a", ED_F32, s), ed_input(g, "b", ED_F32, s)));
    ed_tensor *a = filled(s, 0.5f), *b = filled(s, -0.25f), *c = ed_tensor_new(ED_F32, s);
    graph_call gc = {ed_compile(g, NULL, &(ed_compile_opts){.backend = o->backend}), {{"a", a}, {"b", b}}, 2};
    gemm_call dc = {n, a->data, b->data, c->data};
    bench_stat sg, sd;
    int rc = 1;
    if (!gc.p) fprintf(stderr, "bench w6: %s\n", ed_last_error());
    else if (bench_time(o, run_graph, &gc, &sg) && bench_time(o, run_cblas, &dc, &sd)) {
        double flops = 2.0 * n * (double)n * n;
        printf("W6 sgemm %4d^3 threads=%d: %s %7.2f GFLOP/s (median %.3f ms, %.3f..%.3f) | cblas direct %7.2f GFLOP/s "
               "(median %.3f ms) | %s/direct %.3f | peak %.1f GFLOP/s, direct at %.0f%%\n",
               n, o->threads, bench_backend_name(o->backend), flops / sg.median / 1e9, 1e3 * sg.median, 1e3 * sg.min,
               1e3 * sg.max, flops / sd.median / 1e9, 1e3 * sd.median, bench_backend_name(o->backend),
               sd.median / sg.median, peak / 1e9, peak > 0 ? 100 * flops / sd.median / peak : 0);
        printf("RESULT workload=w6 kind=sgemm n=%d backend=%s threads=%d gflops=%.2f median_ms=%.4f min_ms=%.4f "
               "max_ms=%.4f direct_gflops=%.2f peak_gflops=%.2f\n",
               n, bench_backend_name(o->backend), o->threads, flops / sg.median / 1e9, 1e3 * sg.median, 1e3 * sg.min,
               1e3 * sg.max, flops / sd.median / 1e9, peak / 1e9);
        rc = 0;
    }
    ed_program_free(gc.p);
    ed_tensor_free(a);
    ed_tensor_free(b);
    ed_tensor_free(c);
    ed_graph_free(g);
    return rc;
}

/* y = max(x * 1.5 + 0.25, 0): one read and one write stream per element. */
static int stream(const bench_opts *o)
{
    enum { N = 1 << 25 }; /* 128 MiB per f32 tensor: far past the caches */
    ed_graph *g = ed_graph_new("stream");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape1(N));
    ed_output(g, "y", ed_relu(ed_add(ed_mul(x, ed_scalar(g, ED_F32, 1.5)), ed_scalar(g, ED_F32, 0.25))));
    ed_tensor *xt = filled(ed_shape1(N), -0.1f), *yt = ed_tensor_new(ED_F32, ed_shape1(N));
    graph_call gc = {ed_compile(g, NULL, &(ed_compile_opts){.backend = o->backend}), {{"x", xt}}, 1};
    copy_call cc = {(size_t)N * 4, yt->data, xt->data};
    bench_stat sg, sm;
    int rc = 1;
    if (!gc.p) fprintf(stderr, "bench w6: %s\n", ed_last_error());
    else if (bench_time(o, run_graph, &gc, &sg) && bench_time(o, run_memcpy, &cc, &sm)) {
        /* Unfused, the graph is three kernels (mul, add, relu), each reading and writing N
         * floats; the program's own kernel count stays right once fusion merges them. */
        int kernels = ed_program_compile_stats(gc.p).kernels;
        double moved = 2.0 * 4 * N;
        printf("W6 elementwise 3 ops x %d f32: %s median %.2f ms (%.2f..%.2f), %.2f GB/s over %d kernels | memcpy "
               "median %.2f ms, %.2f GB/s | %s/memcpy bandwidth %.3f\n",
               N, bench_backend_name(o->backend), 1e3 * sg.median, 1e3 * sg.min, 1e3 * sg.max,
               kernels * moved / sg.median / 1e9, kernels, 1e3 * sm.median, moved / sm.median / 1e9,
               bench_backend_name(o->backend), (kernels * moved / sg.median) / (moved / sm.median));
        printf("RESULT workload=w6 kind=stream backend=%s threads=%d median_ms=%.4f min_ms=%.4f max_ms=%.4f gbs=%.2f "
               "memcpy_gbs=%.2f\n",
               bench_backend_name(o->backend), o->threads, 1e3 * sg.median, 1e3 * sg.min, 1e3 * sg.max,
               kernels * moved / sg.median / 1e9, moved / sm.median / 1e9);
        rc = 0;
    }
    ed_program_free(gc.p);
    ed_tensor_free(xt);
    ed_tensor_free(yt);
    ed_graph_free(g);
    return rc;
}

int bench_w6(const bench_opts *o)
{
    double peak = bench_peak_flops() * o->threads;
    static const int sizes[] = {64, 256, 1024};
    for (int i = 0; i < 3; i++)
        if (gemm(o, sizes[i], peak)) return 1;
    return stream(o);
}
