/* W5 realnvp_2d (bench/README.md): one training step of a RealNVP flow on 2-D data.
 * 8 affine coupling layers; layer i keeps coordinate i % 2 and maps the other one,
 * y = x exp(s) + t with s = tanh(S(kept)) and t = T(kept), S and T each an MLP
 * 1-128-128-1 with ReLU hidden layers. Exact NLL under a standard normal base:
 * mean over the batch of |z|^2 / 2 + log(2 pi) - sum of s. Batch 512 of the moons
 * set, Adam lr 1e-3. */
#include "bench/workloads.h"
#include "frontend/nn.h"
#include "models/train_step.h"
#include "models/toy_data.h"
#include "runtime/error.h"

#include <math.h>
#include <stdio.h>

enum { BATCH = 512, LAYERS = 8, HIDDEN = 128, NBATCHES = 16 };

static ed_graph *build_w5(void)
{
    ed_graph *g = ed_graph_new("w5_realnvp_2d");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(BATCH, 2));
    ed_node *c[2] = {ed_slice_axis(x, 1, 0, 1), ed_slice_axis(x, 1, 1, 2)};
    ed_node *logdet = NULL;
    int64_t sizes[3] = {HIDDEN, HIDDEN, 1};
    for (int i = 0; i < LAYERS; i++) {
        int keep = i % 2;
        char sname[16], tname[16];
        snprintf(sname, sizeof sname, "c%d.s", i);
        snprintf(tname, sizeof tname, "c%d.t", i);
        ed_node *s = ed_tanh(ed_mlp(c[keep], sname, sizes, 3, ED_ACT_RELU, false));
        ed_node *t = ed_mlp(c[keep], tname, sizes, 3, ED_ACT_RELU, false);
        c[1 - keep] = ed_add(ed_mul(c[1 - keep], ed_exp(s)), t);
        logdet = logdet ? ed_add(logdet, s) : s;
    }
    ed_node *z = ed_concat(c, 2, 1);
    ed_node *nll = ed_sub(
        ed_add_scalar(ed_mul_scalar(ed_sum(ed_square(z), 2u, true), 0.5), log(2 * 3.14159265358979323846)), logdet);
    ed_node *loss = ed_mean(nll, ED_ALL_AXES, false);
    ed_train_step(g, loss, &(ed_train_opts){.optim = {.kind = ED_OPT_ADAM, .lr = 1e-3}});
    return g;
}

int bench_w5_build(bench_workload *w)
{
    w->id = "w5";
    w->title = "W5 realnvp_2d";
    w->g = build_w5();
    w->input = "x";
    return bench_toy_batches(w, ED_TOY_MOONS, BATCH, NBATCHES);
}
