/* W7 policy latency (bench/README.md): batch 1, an observation of 287 numbers, an
 * action chunk of 8 x 64; the denoiser of models/denoiser.h (hidden 256, 4 pre-LN
 * residual blocks, expansion 4, obs_size 287) captured into each sampler's loop with
 * the observation an input fed every call. Wall time per generated chunk for DDPM 100
 * steps, DDIM 10 steps (of T = 1000) and flow-matching Euler 20 steps. Parameters come
 * from the store's initializers (the output layer starts at zero, which changes no
 * arithmetic count): this measures latency, not policy quality. */
#include "bench/sampler.h"
#include "bench/workloads.h"
#include "models/denoiser.h"
#include "models/samplers.h"

#include <stdio.h>

enum { OBS = 287, HORIZON = 8, ACTION = 64 };

typedef struct {
    ed_node *obs;      /* in the outer graph */
    double time_scale; /* 1 for the integer timestep, 1000 for flow's t in [0, 1] */
} w7_ctx;

static ed_node *policy_net(ed_graph *body, ed_node *x, const ed_denoise_in *in, void *vctx)
{
    (void)body;
    const w7_ctx *c = vctx;
    const ed_denoiser_opts o = {
        .hidden = 256, .layers = 4, .expansion = 4, .time_scale = c->time_scale, .max_period = 10000, .obs_size = OBS};
    return ed_denoiser(x, in->t, ed_loop_capture(in->loop, c->obs), NULL, &o, "policy");
}

static int run_one(const bench_opts *o, const char *what, ed_graph *g, ed_sample_result r, const ed_tensor *obs)
{
    char name[96];
    snprintf(name, sizeof name, "w7 %s", what);
    bench_sampler b;
    int rc = bench_sampler_run(o, name, g, r, "actions", r.iterations, &(ed_feed){"obs", obs}, 1, &b);
    if (!rc) {
        /* The memory limit: the step's weight bytes at this process's streaming read rate
         * over a buffer of that size (measured now, beside the timing). */
        double bw = bench_read_bandwidth((size_t)b.step_weight_bytes);
        double step_us = 1e6 * b.s.median / b.iterations, limit_us = bw > 0 ? 1e6 * b.step_weight_bytes / bw : 0;
        printf("W7 %s backend=%s steps=%d body=%d nodes (%d after passes) kernels=%d compile=%.3fs per chunk "
               "median=%.3fms min=%.3fms max=%.3fms (%d repeats x %d chunks) per step=%.1fus\n",
               what, bench_backend_name(o->backend), b.iterations, b.body, b.body_after, b.cs.kernels, b.compile_s,
               1e3 * b.s.median, 1e3 * b.s.min, 1e3 * b.s.max, o->repeats, o->steps, step_us);
        printf("W7 %s weights per step=%.2fMB read bandwidth=%.1fGB/s memory limit per step=%.1fus share=%.0f%%\n",
               what, b.step_weight_bytes / 1e6, bw / 1e9, limit_us, step_us > 0 ? 100 * limit_us / step_us : 0.0);
        printf("RESULT workload=w7 sampler=%s backend=%s iterations=%d compile_s=%.4f median_ms=%.4f min_ms=%.4f "
               "max_ms=%.4f repeats=%d mflop=%.3f sgemm_gflops=%.2f roofline_ms=%.4f kernels=%d body_after=%d "
               "arena_bytes=%zu step_weight_mb=%.3f read_gbs=%.2f limit_us=%.2f limit_share=%.3f\n",
               what, bench_backend_name(o->backend), b.iterations, b.compile_s, 1e3 * b.s.median, 1e3 * b.s.min,
               1e3 * b.s.max, o->repeats, b.flops / 1e6, b.sgemm / 1e9, b.sgemm > 0 ? 1e3 * b.flops / b.sgemm : 0.0,
               b.cs.kernels, b.body_after, b.cs.arena_bytes, b.step_weight_bytes / 1e6, bw / 1e9, limit_us,
               step_us > 0 ? limit_us / step_us : 0.0);
    }
    bench_sampler_free(&b, g);
    return rc;
}

/* One W7 row: sampler 0 ddpm-100, 1 ddim-10, 2 fm-euler-20, with the dense weights in wdt. */
static int run_sampler(const bench_opts *o, int sampler, ed_dtype wdt, const ed_tensor *obs)
{
    static const char *const names[] = {"ddpm-100", "ddim-10", "fm-euler-20"};
    const ed_sample_spec spec = {.shape = ed_shape3(1, HORIZON, ACTION)};
    ed_graph *g = ed_graph_new(sampler == 0 ? "w7_ddpm" : sampler == 1 ? "w7_ddim" : "w7_fm");
    ed_graph_set_weight_dtype(g, wdt); /* 16-bit: params "...w.bf16" from their initializers */
    w7_ctx c = {ed_input(g, "obs", ED_F32, ed_shape2(1, OBS)), sampler == 2 ? 1000 : 1};
    ed_model model = {policy_net, &c, sampler == 2 ? ED_PRED_VELOCITY : ED_PRED_EPS};
    ed_sample_result r = sampler == 0   ? ed_sample_ddpm(g, &model, &spec, &(ed_ddpm_opts){.beta = {.steps = 100}})
                         : sampler == 1 ? ed_sample_ddim(g, &model, &spec, &(ed_ddim_opts){.steps = 10})
                                        : ed_sample_ode(g, &model, &spec,
                                                        &(ed_ode_opts){.process = {.kind = ED_PROC_FLOW},
                                                                       .method = ED_ODE_EULER,
                                                                       .steps = 20});
    char what[64];
    snprintf(what, sizeof what, "%s%s%s", names[sampler], wdt == ED_F32 ? "" : "-",
             wdt == ED_F32 ? "" : ed_dtype_name(wdt));
    return run_one(o, what, g, r, obs);
}

int bench_w7(const bench_opts *o)
{
    ed_tensor *obs = ed_tensor_new(ED_F32, ed_shape2(1, OBS));
    if (!obs) return 1;
    for (int i = 0; i < OBS; i++) ((float *)obs->data)[i] = (float)((i % 17) - 8) / 8.0f;
    int rc = 0;
    for (int s = 0; s < 3; s++) rc |= run_sampler(o, s, ED_F32, obs);
    /* 16-bit weights: the interpreter widens the same way, but at its speed one row is enough */
    for (int s = 0; s < (o->backend == ED_BACKEND_INTERP ? 1 : 2); s++) {
        rc |= run_sampler(o, s, ED_BF16, obs);
        rc |= run_sampler(o, s, ED_F16, obs);
    }
    ed_tensor_free(obs);
    return rc;
}
