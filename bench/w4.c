/* W4 sampling (bench/README.md), analytic-denoiser variant: 10,000 2-D points from
 * N((1, -2), diag(0.25, 4)) with the optimal epsilon predictor built from graph ops, so
 * the figure is the sampler loop itself (the W1-network variant needs params captured
 * into the loop body and comes with the models issue). One call is the whole sampler:
 * DDPM 1000 steps, DDIM 50 steps, flow-matching RK4 20 steps. */
#include "bench/bench.h"
#include "models/samplers.h"

#include <math.h>
#include <stdio.h>

enum { NPTS = 10000 };

/* eps = sigma (x - alpha m) / (alpha^2 s^2 + sigma^2); flow: v = x0 - eps. */
static ed_node *gauss_model(ed_graph *body, ed_node *x, const ed_denoise_in *in, void *ctx)
{
    bool flow = ctx != NULL;
    ed_node *m = ed_const(body, ED_F32, ed_shape1(2), (double[]){1, -2}, 2);
    ed_node *s2 = ed_const(body, ED_F32, ed_shape1(2), (double[]){0.25, 4}, 2);
    ed_node *V = ed_add(ed_mul(ed_square(in->alpha), s2), ed_square(in->sigma));
    ed_node *r = ed_div(ed_sub(x, ed_mul(in->alpha, m)), V);
    ed_node *eps = ed_mul(in->sigma, r);
    if (!flow) return eps;
    ed_node *x0 = ed_add(m, ed_mul(ed_mul(in->alpha, s2), r));
    return ed_sub(x0, eps);
}

typedef struct {
    ed_program *p;
} w4_call;

static bool w4_step(void *ud)
{
    w4_call *c = ud;
    if (ed_run(c->p, NULL, 0) == ED_OK) return true;
    fprintf(stderr, "bench w4: %s\n", ed_last_error());
    return false;
}

static int run_one(const bench_opts *o, const char *what, ed_graph *g, ed_sample_result r)
{
    if (!r.samples) {
        fprintf(stderr, "bench w4 %s: %s\n", what, ed_graph_error(g));
        ed_graph_free(g);
        return 1;
    }
    ed_output(g, "x", r.samples);
    ed_store *st = ed_store_new(0);
    double t0 = bench_now();
    ed_program *p = ed_compile(g, st, &(ed_compile_opts){.backend = o->backend});
    double compile_s = bench_now() - t0;
    int rc = 1;
    bench_stat s;
    w4_call call = {p};
    if (!p) fprintf(stderr, "bench w4 %s: %s\n", what, ed_last_error());
    else if (bench_time(o, w4_step, &call, &s)) {
        const float *x = ed_program_output(p, "x")->data;
        double mean1 = 0;
        for (int i = 0; i < NPTS; i++) mean1 += x[2 * i + 1] / NPTS;
        printf("W4 %s backend=%s nodes=%d body=%d iterations=%d compile=%.3fs call median=%.1fms min=%.1fms max=%.1fms "
               "(%d repeats x %d calls) per-iteration=%.1fus mean[1]=%.3f\n",
               what, bench_backend_name(o->backend), g->nnodes, r.loop->attr.body->nnodes, r.iterations, compile_s,
               1e3 * s.median, 1e3 * s.min, 1e3 * s.max, o->repeats, o->steps, 1e6 * s.median / r.iterations, mean1);
        printf("RESULT workload=w4 sampler=%s backend=%s iterations=%d body_nodes=%d compile_s=%.4f median_ms=%.4f "
               "min_ms=%.4f max_ms=%.4f mean1=%.4f\n",
               what, bench_backend_name(o->backend), r.iterations, r.loop->attr.body->nnodes, compile_s, 1e3 * s.median,
               1e3 * s.min, 1e3 * s.max, mean1);
        rc = 0;
    }
    ed_program_free(p);
    ed_store_free(st);
    ed_graph_free(g);
    return rc;
}

int bench_w4(const bench_opts *o)
{
    const ed_sample_spec spec = {.shape = ed_shape2(NPTS, 2)};
    int rc = 0;
    ed_graph *g = ed_graph_new("w4_ddpm");
    rc |= run_one(o, "ddpm-1000", g, ed_sample_ddpm(g, &(ed_model){gauss_model, NULL, ED_PRED_EPS}, &spec, NULL));
    g = ed_graph_new("w4_ddim");
    rc |= run_one(o, "ddim-50", g, ed_sample_ddim(g, &(ed_model){gauss_model, NULL, ED_PRED_EPS}, &spec, NULL));
    g = ed_graph_new("w4_fm");
    rc |= run_one(o, "fm-rk4-20", g,
                  ed_sample_ode(g, &(ed_model){gauss_model, (void *)1, ED_PRED_VELOCITY}, &spec,
                                &(ed_ode_opts){.process = {.kind = ED_PROC_FLOW}, .method = ED_ODE_RK4, .steps = 20}));
    return rc;
}
