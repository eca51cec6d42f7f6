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
#include "bench/bench.h"
#include "bench/workloads.h"
#include "frontend/nn.h"
#include "models/samplers.h"

#include <stdio.h>

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

static bool call_once(void *ud)
{
    if (ed_run(ud, NULL, 0) == ED_OK) return true;
    fprintf(stderr, "bench w4net: %s\n", ed_last_error());
    return false;
}

/* full: the sampler's real iteration count (r.iterations may be fewer on the interpreter). */
static int run_one(const bench_opts *o, const char *what, int full, ed_graph *g, ed_sample_result r)
{
    if (!r.samples) {
        fprintf(stderr, "bench w4net %s: %s\n", what, ed_graph_error(g));
        ed_graph_free(g);
        return 1;
    }
    ed_output(g, "x", r.samples);
    ed_store *st = ed_store_new(0);
    /* Matmul work of one full sampler call (the interpreter's graph has fewer trips),
     * before the passes, and the roofline at this process's sgemm rate (JIT runs). */
    double flops = bench_matmul_flops(g) / r.iterations * full;
    double sgemm = o->backend == ED_BACKEND_INTERP ? 0 : bench_sgemm_flops(256);
    double t0 = bench_now();
    ed_program *p = ed_compile(g, st, &(ed_compile_opts){.backend = o->backend, .seed = 1, .passes = o->passes});
    double compile_s = bench_now() - t0;
    int rc = 1;
    bench_stat s;
    if (!p) fprintf(stderr, "bench w4net %s: %s\n", what, ed_last_error());
    else if (bench_time(o, call_once, p, &s)) {
        double per_iter = s.median / r.iterations, est = per_iter * full;
        ed_compile_stats cs = ed_program_compile_stats(p);
        printf("W4net %s backend=%s iterations=%d of %d body=%d nodes (%d after passes) kernels=%d compile=%.3fs arena=%.1fMB call median=%.1fms "
               "min=%.1fms max=%.1fms (%d repeats x %d calls) per-iteration=%.2fms full sampler %s%.1fms\n",
               what, bench_backend_name(o->backend), r.iterations, full, r.loop->attr.body->nnodes, bench_body_nodes_after_passes(g), cs.kernels, compile_s,
               cs.arena_bytes / 1e6, 1e3 * s.median, 1e3 * s.min, 1e3 * s.max, o->repeats, o->steps, 1e3 * per_iter,
               r.iterations == full ? "" : "est ", 1e3 * est);
        printf("RESULT workload=w4net sampler=%s backend=%s iterations=%d full_iterations=%d compile_s=%.4f "
               "median_ms=%.4f min_ms=%.4f max_ms=%.4f per_iter_ms=%.4f full_ms=%.4f estimated=%d repeats=%d "
               "mflop=%.3f sgemm_gflops=%.2f roofline_ms=%.4f\n",
               what, bench_backend_name(o->backend), r.iterations, full, compile_s, 1e3 * s.median, 1e3 * s.min,
               1e3 * s.max, 1e3 * per_iter, 1e3 * est, r.iterations != full, o->repeats, flops / 1e6, sgemm / 1e9,
               sgemm > 0 ? 1e3 * flops / sgemm : 0.0);
        rc = 0;
    }
    ed_program_free(p);
    ed_store_free(st);
    ed_graph_free(g);
    return rc;
}

int bench_w4net(const bench_opts *o)
{
    static const double one = 1, thousand = 1000;
    const bool few = o->backend == ED_BACKEND_INTERP;
    const ed_sample_spec spec = {.shape = ed_shape2(NPTS, 2)};
    const ed_model eps_model = {w1_net, (void *)&one, ED_PRED_EPS};
    const ed_model flow_model = {w1_net, (void *)&thousand, ED_PRED_VELOCITY};
    int rc = 0;
    ed_graph *g = ed_graph_new("w4net_ddpm");
    rc |= run_one(o, "ddpm-1000", 1000, g,
                  ed_sample_ddpm(g, &eps_model, &spec, &(ed_ddpm_opts){.beta = {.steps = few ? 2 : 1000}}));
    g = ed_graph_new("w4net_ddim");
    rc |= run_one(o, "ddim-50", 50, g, ed_sample_ddim(g, &eps_model, &spec, &(ed_ddim_opts){.steps = few ? 2 : 50}));
    g = ed_graph_new("w4net_fm");
    rc |= run_one(o, "fm-rk4-20", 20, g,
                  ed_sample_ode(g, &flow_model, &spec,
                                &(ed_ode_opts){.process = {.kind = ED_PROC_FLOW}, .method = ED_ODE_RK4,
                                               .steps = few ? 1 : 20}));
    return rc;
}
