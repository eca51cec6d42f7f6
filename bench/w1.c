/* W1 ddpm_mlp_2d (bench/README.md): one DDPM training step of the epsilon-prediction
 * MLP on 2-D data, batch 512, Adam. The data is one fixed batch of two blobs. */
#include "bench/workloads.h"
#include "frontend/nn.h"
#include "models/train_step.h"
#include "runtime/error.h"

#include <math.h>
#include <stdlib.h>

enum { BATCH = 512, T = 1000, TEMB = 32 };

/* The W1 training-step graph. */
static ed_graph *build_w1(void)
{
    ed_graph *g = ed_graph_new("w1_ddpm_mlp_2d");
    ed_node *x0 = ed_input(g, "x0", ED_F32, ed_shape2(bench_local_batch(BATCH), 2));
    ed_node *t, *eps;
    ed_node *xt = bench_ddpm_noised(x0, T, &t, &eps);
    ed_node *temb = ed_silu(ed_dense(ed_timestep_embedding(ed_cast(t, ED_F32), TEMB, 10000), "temb", 128, true));
    ed_node *h = ed_concat((ed_node *[]){xt, temb}, 2, 1);
    int64_t sizes[4] = {256, 256, 256, 2};
    ed_node *pred = ed_mlp(h, "den", sizes, 4, ED_ACT_SILU, false);
    ed_node *loss = ed_mean(ed_square(ed_sub(pred, eps)), ED_ALL_AXES, false);
    ed_train_step(
        g, loss,
        &(ed_train_opts){.optim = {.kind = ED_OPT_ADAM, .lr = 1e-3}, .allreduce_bucket = bench_allreduce_bucket()});
    return g;
}

int bench_w1_build(bench_workload *w)
{
    w->id = "w1";
    w->title = "W1 ddpm_mlp_2d";
    w->g = build_w1();
    w->input = "x0";
    w->batches = calloc(1, sizeof *w->batches);
    if (!w->batches) return ed_fail("out of memory");
    w->nbatches = 1;
    int64_t local = bench_local_batch(BATCH);
    w->batches[0] = ed_tensor_new(ED_F32, ed_shape2(local, 2));
    float *xs = w->batches[0]->data;
    for (int i = 0; i < local; i++) { /* two blobs, deterministic (each rank its first rows) */
        double u = (i * 0.618033988749895) - floor(i * 0.618033988749895);
        xs[2 * i] = (float)((i % 2 ? 1.0 : -1.0) + 0.1 * cos(6.283 * u));
        xs[2 * i + 1] = (float)(0.1 * sin(6.283 * u));
    }
    return 0;
}
