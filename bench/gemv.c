/* GEMV crossover: the W7 denoiser's matmul chain (4 x [rows,256]x[256,1024] then
 * [rows,1024]x[1024,256], 8 MB of f32 weights held as params) compiled with the GEMV
 * kernel and with sgemm (EDIFICE_GEMV_ROWS 64 and 0), for 1, 2, 4 and 8 rows, beside
 * this process's streaming read rate over 8 MB: where the GEMV stops paying. */
#include "bench/bench.h"
#include "frontend/frontend.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct {
    ed_program *p;
    ed_feed feed;
} chain_call;

static bool run_chain(void *ud)
{
    chain_call *c = ud;
    if (ed_run(c->p, &c->feed, 1) == ED_OK) return true;
    fprintf(stderr, "bench gemv: %s\n", ed_last_error());
    return false;
}

/* Seconds per call of the chain at `rows`, with the GEMV crossover set to `gemv_rows`. */
static double time_chain(const bench_opts *o, int64_t rows, const char *gemv_rows, double *weight_bytes)
{
    setenv("EDIFICE_GEMV_ROWS", gemv_rows, 1);
    ed_graph *g = ed_graph_new("gemv_chain");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(rows, 256)), *h = x;
    for (int i = 0; i < 4; i++) {
        char n1[16], n2[16];
        snprintf(n1, sizeof n1, "w%d.fc1", i);
        snprintf(n2, sizeof n2, "w%d.fc2", i);
        ed_init init = {ED_INIT_NORMAL, 0.02};
        h = ed_matmul(ed_matmul(h, ed_param(g, n1, ED_F32, ed_shape2(256, 1024), init)),
                      ed_param(g, n2, ED_F32, ed_shape2(1024, 256), init));
    }
    ed_output(g, "y", h);
    *weight_bytes = 8.0 * 256 * 1024 * 4;
    ed_store *st = ed_store_new(1);
    ed_tensor *xt = ed_tensor_new(ED_F32, ed_shape2(rows, 256));
    for (int64_t i = 0; i < rows * 256; i++) ((float *)xt->data)[i] = 0.01f * (float)(i % 13);
    chain_call c = {ed_compile(g, st, &(ed_compile_opts){.backend = ED_BACKEND_JIT}), {"x", xt}};
    bench_stat s = {0};
    bool ok = c.p && bench_time(o, run_chain, &c, &s);
    if (!c.p) fprintf(stderr, "bench gemv: %s\n", ed_last_error());
    ed_program_free(c.p);
    ed_tensor_free(xt);
    ed_store_free(st);
    ed_graph_free(g);
    unsetenv("EDIFICE_GEMV_ROWS");
    return ok ? s.median : -1;
}

int bench_gemv(const bench_opts *o)
{
    static const int64_t rows[] = {1, 2, 4, 8};
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        double bytes, gemv = time_chain(o, rows[r], "64", &bytes), sgemm = time_chain(o, rows[r], "0", &bytes);
        double bw = bench_read_bandwidth((size_t)bytes);
        if (gemv < 0 || sgemm < 0) return 1;
        printf(
            "GEMV rows=%lld gemv=%.1fus sgemm=%.1fus sgemm/gemv=%.2f read limit=%.1fus (%.1fGB/s) gemv share=%.0f%%\n",
            (long long)rows[r], 1e6 * gemv, 1e6 * sgemm, sgemm / gemv, 1e6 * bytes / bw, bw / 1e9,
            100 * bytes / bw / gemv);
        printf("RESULT workload=gemv rows=%lld gemv_us=%.2f sgemm_us=%.2f limit_us=%.2f read_gbs=%.2f\n",
               (long long)rows[r], 1e6 * gemv, 1e6 * sgemm, 1e6 * bytes / bw, bw / 1e9);
    }
    return 0;
}
