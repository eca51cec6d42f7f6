/* W4 sampling with the W1 network (bench/README.md): 10,000 2-D points through the
 * W1 MLP (x concat SiLU(Linear(32,128)(sinusoidal(t))), then 256-256-256-2 with SiLU)
 * as the denoiser of DDPM 1000 steps, DDIM 50 and flow-matching RK4 20 (velocity, t
 * scaled by 1000 as in models/denoiser.h). Parameters come from the store's
 * initializers: this measures speed, not sample quality. The time embedding is computed
 * once per model call for the scalar t and broadcast over the batch (PyTorch's side
 * does the same).
 *
 * The interpreter runs the network at a few GFLOP/s, so with --backend interp each
 * sampler is built with fewer iterations (DDPM T = 2, DDIM 2 steps, RK4 1 step) and the
 * figure reported is the time per iteration, with the full sampler's time extrapolated
 * from it (labelled `est`). */
#include "bench/sampler.h"
#include "bench/workloads.h"
#include "frontend/nn.h"
#include "models/samplers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { NPTS = 10000, TEMB = 32 };

/* ctx points at the time scale (1 for DDPM/DDIM's integer t, 1000 for flow's t). */
static ed_node *w1_net(ed_graph *body, ed_node *x, const ed_denoise_in *in, void *ctx)
{
    (void)body;
    double scale = *(const double *)ctx;
    ed_node *t = ed_reshape(in->t, ed_shape1(1));
    if (scale != 1) t = ed_mul_scalar(t, scale);
    ed_node *temb = ed_silu(ed_dense(ed_timestep_embedding(t, TEMB, 10000), "temb", 128, true));
    ed_node *h = ed_concat((ed_node *[]){x, ed_broadcast_to(temb, ed_shape2(NPTS, 128))}, 2, 1);
    const int64_t sizes[4] = {256, 256, 256, 2};
    return ed_mlp(h, "den", sizes, 4, ED_ACT_SILU, false);
}

/* full: the sampler's real iteration count (r.iterations may be fewer on the interpreter). */
static int run_one(const bench_opts *o, const char *what, int full, ed_graph *g, ed_sample_result r)
{
    char name[64];
    snprintf(name, sizeof name, "w4net %s", what);
    bench_sampler b;
    int rc = bench_sampler_run(o, name, g, r, "x", full, NULL, 0, &b);
    if (!rc) {
        double per_iter = b.s.median / b.iterations, est = per_iter * full;
        printf("W4net %s backend=%s iterations=%d of %d body=%d nodes (%d after passes) kernels=%d compile=%.3fs "
               "arena=%.1fMB call median=%.1fms min=%.1fms max=%.1fms (%d repeats x %d calls) per-iteration=%.2fms "
               "full sampler %s%.1fms\n",
               what, bench_backend_name(o->backend), b.iterations, full, b.body, b.body_after, b.cs.kernels,
               b.compile_s, b.cs.arena_bytes / 1e6, 1e3 * b.s.median, 1e3 * b.s.min, 1e3 * b.s.max, o->repeats,
               o->steps, 1e3 * per_iter, b.iterations == full ? "" : "est ", 1e3 * est);
        printf("RESULT workload=w4net sampler=%s backend=%s iterations=%d full_iterations=%d compile_s=%.4f "
               "median_ms=%.4f min_ms=%.4f max_ms=%.4f per_iter_ms=%.4f full_ms=%.4f estimated=%d repeats=%d "
               "mflop=%.3f sgemm_gflops=%.2f roofline_ms=%.4f arena_bytes=%zu kernels=%d body_after=%d\n",
               what, bench_backend_name(o->backend), b.iterations, full, b.compile_s, 1e3 * b.s.median, 1e3 * b.s.min,
               1e3 * b.s.max, 1e3 * per_iter, 1e3 * est, b.iterations != full, o->repeats, b.flops / 1e6, b.sgemm / 1e9,
               b.sgemm > 0 ? 1e3 * b.flops / b.sgemm : 0.0, b.cs.arena_bytes, b.cs.kernels, b.body_after);
    }
    bench_sampler_free(&b, g);
    return rc;
}

/* W4NET_ONLY=NAME runs one sampler (the three take ~4 minutes at one thread). */
static bool wanted(const char *name)
{
    const char *only = getenv("W4NET_ONLY");
    return !only || !*only || strcmp(only, name) == 0;
}

int bench_w4net(const bench_opts *o)
{
    static const double one = 1, thousand = 1000;
    const bool few = o->backend == ED_BACKEND_INTERP;
    const ed_sample_spec spec = {.shape = ed_shape2(NPTS, 2)};
    const ed_model eps_model = {w1_net, (void *)&one, ED_PRED_EPS};
    const ed_model flow_model = {w1_net, (void *)&thousand, ED_PRED_VELOCITY};
    int rc = 0;
    ed_graph *g;
    if (wanted("ddpm-1000")) {
        g = ed_graph_new("w4net_ddpm");
        rc |= run_one(o, "ddpm-1000", 1000, g,
                      ed_sample_ddpm(g, &eps_model, &spec, &(ed_ddpm_opts){.beta = {.steps = few ? 2 : 1000}}));
    }
    if (wanted("ddim-50")) {
        g = ed_graph_new("w4net_ddim");
        rc |= run_one(o, "ddim-50", 50, g,
                      ed_sample_ddim(g, &eps_model, &spec, &(ed_ddim_opts){.steps = few ? 2 : 50}));
    }
    if (wanted("fm-rk4-20")) {
        g = ed_graph_new("w4net_fm");
        rc |= run_one(
            o, "fm-rk4-20", 20, g,
            ed_sample_ode(
                g, &flow_model, &spec,
                &(ed_ode_opts){.process = {.kind = ED_PROC_FLOW}, .method = ED_ODE_RK4, .steps = few ? 1 : 20}));
    }
    return rc;
}
