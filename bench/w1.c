/* W1 ddpm_mlp_2d (bench/README.md): one DDPM training step of the epsilon-prediction
 * MLP on 2-D data, batch 512, Adam. Reports compile time, the step time (median and
 * spread), and the matmul FLOPs per step. */
#include "bench/bench.h"
#include "frontend/nn.h"
#include "passes/train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

enum { BATCH = 512, T = 1000, TEMB = 32 };

/* The W1 training-step graph. */
static ed_graph *build_w1(void)
{
    ed_graph *g = ed_graph_new("w1_ddpm_mlp_2d");
    ed_node *x0 = ed_input(g, "x0", ED_F32, ed_shape2(BATCH, 2));
    double abar[T], s1[T], s2[T], prod = 1;
    for (int i = 0; i < T; i++) {
        double beta = 1e-4 + (0.02 - 1e-4) * i / (T - 1);
        prod *= 1 - beta;
        abar[i] = prod;
        s1[i] = sqrt(abar[i]);
        s2[i] = sqrt(1 - abar[i]);
    }
    ed_node *t = ed_randint(g, ed_shape1(BATCH), 0, T);
    ed_node *eps = ed_randn(g, ED_F32, ed_shape2(BATCH, 2));
    ed_node *a = ed_reshape(ed_gather(ed_const(g, ED_F32, ed_shape1(T), s1, T), t, 0), ed_shape2(BATCH, 1));
    ed_node *b = ed_reshape(ed_gather(ed_const(g, ED_F32, ed_shape1(T), s2, T), t, 0), ed_shape2(BATCH, 1));
    ed_node *xt = ed_add(ed_mul(a, x0), ed_mul(b, eps));
    ed_node *temb = ed_silu(ed_dense(ed_timestep_embedding(ed_cast(t, ED_F32), TEMB, 10000), "temb", 128, true));
    ed_node *h = ed_concat((ed_node *[]){xt, temb}, 2, 1);
    int64_t sizes[4] = {256, 256, 256, 2};
    ed_node *pred = ed_mlp(h, "den", sizes, 4, ED_ACT_SILU, false);
    ed_node *loss = ed_mean(ed_square(ed_sub(pred, eps)), ED_ALL_AXES, false);
    ed_train_step(g, loss, &(ed_train_opts){.optim = {.kind = ED_OPT_ADAM, .lr = 1e-3}});
    return g;
}

/* 2mnk over every matmul node (per batch element): the FLOPs that dominate a step. */
static double matmul_flops(const ed_graph *g)
{
    double f = 0;
    for (int i = 0; i < g->nnodes; i++) {
        const ed_node *n = g->nodes[i];
        if (n->op != ED_OP_MATMUL) continue;
        const ed_shape a = n->in[0]->shape;
        double k = (double)a.dim[a.rank - (n->attr.ta ? 2 : 1)];
        f += 2.0 * k * (double)ed_shape_numel(n->shape);
    }
    return f;
}

typedef struct {
    ed_program *p;
    ed_feed feed;
} w1_call;

static bool w1_step(void *ud)
{
    w1_call *c = ud;
    if (ed_run(c->p, &c->feed, 1) == ED_OK) return true;
    fprintf(stderr, "bench w1: %s\n", ed_last_error());
    return false;
}

int bench_w1(const bench_opts *o)
{
    ed_graph *g = build_w1();
    if (ed_graph_error(g)) {
        fprintf(stderr, "bench w1: %s\n", ed_graph_error(g));
        ed_graph_free(g);
        return 1;
    }
    float *xs = malloc(sizeof(float) * BATCH * 2);
    for (int i = 0; i < BATCH; i++) { /* two blobs, deterministic */
        double u = (i * 0.618033988749895) - floor(i * 0.618033988749895);
        xs[2 * i] = (float)((i % 2 ? 1.0 : -1.0) + 0.1 * cos(6.283 * u));
        xs[2 * i + 1] = (float)(0.1 * sin(6.283 * u));
    }
    ed_tensor *x0 = ed_tensor_wrap(ED_F32, ed_shape2(BATCH, 2), xs);
    ed_store *st = ed_store_new(0);
    double t0 = bench_now();
    ed_pass_stats ps[16];
    ed_pass_opts po = {.stats = ps, .stats_cap = 16};
    ed_program *p = ed_compile(g, st, &(ed_compile_opts){.backend = o->backend, .opt_level = o->opt, .passes = o->passes,
                                                         .arena = o->arena, .pass_opts = &po});
    int nodes_after = po.nstats ? ps[po.nstats - 1].nodes_after : g->nnodes;
    double compile_s = bench_now() - t0;
    int rc = 1;
    bench_stat s;
    w1_call call = {p, {"x0", x0}};
    if (!p) fprintf(stderr, "bench w1: %s\n", ed_last_error());
    else if (bench_time(o, w1_step, &call, &s)) {
        double flops = matmul_flops(g);
        printf("W1 ddpm_mlp_2d backend=%s threads=%d nodes=%d->%d compile=%.3fs step median=%.3fms min=%.3fms "
               "max=%.3fms (%d repeats x %d steps) steps/s=%.1f matmul=%.1f MFLOP/step (%.2f GFLOP/s) loss=%.4f\n",
               bench_backend_name(o->backend), o->threads, g->nnodes, nodes_after, compile_s, 1e3 * s.median, 1e3 * s.min,
               1e3 * s.max, o->repeats, o->steps, 1.0 / s.median, flops / 1e6, flops / s.median / 1e9,
               ed_tensor_get(ed_program_output(p, "loss"), 0));
        ed_compile_stats cs = ed_program_compile_stats(p);
        printf("W1 compile split: lower=%.1fms optimize=%.1fms codegen=%.1fms kernels=%d arena=%zu bytes\n",
               cs.lower_ms, cs.optimize_ms, cs.codegen_ms, cs.kernels, cs.arena_bytes);
        printf("W1 memory: arena=%lld buffers=%lld (%d) peak=%lld bytes, %d in place (passes %s)\n",
               (long long)cs.memory.arena_bytes, (long long)cs.memory.buffer_bytes, cs.memory.buffers,
               (long long)cs.memory.peak_bytes, cs.memory.inplace, o->passes ? o->passes : ED_DEFAULT_PIPELINE);
        rc = 0;
    }
    ed_program_free(p);
    ed_store_free(st);
    ed_tensor_free(x0);
    free(xs);
    ed_graph_free(g);
    return rc;
}
