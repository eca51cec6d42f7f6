/* W3 dit_small (bench/README.md): one DDPM training step of a small DiT on the 8x8
 * digits (1 channel, pixels scaled to [-1, 1]). Patch 2: the image becomes 16 tokens of
 * 4 pixels; tokens are embedded by Linear(4, 128) plus a learned position embedding.
 * Conditioning c = MLP(sinusoidal(t, 128)) = Linear(128,128), SiLU, Linear(128,128).
 * 4 blocks, each adaLN-zero: Linear(128, 6*128) of SiLU(c), zero-initialized, gives
 * shift/scale/gate for attention and MLP; h += gate_a * attn(LN(h) (1 + scale_a) +
 * shift_a); h += gate_m * MLP(LN(h) (1 + scale_m) + shift_m); LN without affine (eps
 * 1e-6), 4-head self-attention with q/k/v/o projections, MLP 128-512-128 with GELU
 * (tanh approximation, as DiT). Final layer: adaLN (Linear(128, 2*128) of SiLU(c),
 * zero-initialized) and a zero-initialized Linear(128, 4) to patch pixels. Epsilon
 * MSE in patch space (unpatchifying is a permutation, so the loss is the same), T=1000
 * linear betas. Batch 64, AdamW lr 1e-4, weight decay 0.01.
 * W3d dit_default is the same step at the dit model's default size (models/dit.h): width
 * 256, 6 blocks, 4 heads, MLP ratio 4. */
#include "bench/workloads.h"
#include "frontend/dit_blocks.h"
#include "models/train_step.h"
#include "runtime/error.h"

#include <stdio.h>

enum { BATCH = 64, PATCH_PIX = 4, HEADS = 4, T = 1000, NBATCHES = 22 };

/* The DiT blocks of frontend/dit_blocks.h; the names (b<j>, final, pos, patch, temb)
 * stay those of the workload's first version. */
static ed_graph *build_w3(const char *name, int64_t width, int blocks)
{
    ed_graph *g = ed_graph_new(name);
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape4(bench_local_batch(BATCH), 1, 8, 8));
    ed_node *x0 = ed_patchify(ed_add_scalar(ed_mul_scalar(x, 2.0), -1.0), 2);
    ed_node *t, *eps;
    ed_node *xt = bench_ddpm_noised(x0, T, &t, &eps);
    ed_node *pos = ed_pos_embed_2d(g, ED_F32, 4, 4, width, true, "pos");
    ed_node *h = ed_add(ed_dense(xt, "patch", width, true), pos);
    ed_node *sc = ed_silu(ed_dit_time_embedding(t, width, width, "temb"));
    for (int j = 0; j < blocks && h; j++) {
        char name[16];
        snprintf(name, sizeof name, "b%d", j);
        h = ed_dit_block(h, sc, HEADS, 4 * width, name);
    }
    ed_node *out = ed_dit_final_layer(h, sc, PATCH_PIX, "final");
    ed_node *loss = ed_mean(ed_square(ed_sub(out, eps)), ED_ALL_AXES, false);
    ed_train_step(g, loss,
                  &(ed_train_opts){.optim = {.kind = ED_OPT_ADAMW, .lr = 1e-4, .weight_decay = 0.01},
                                   .allreduce_bucket = bench_allreduce_bucket()});
    return g;
}

static int build(bench_workload *w, const char *id, const char *title, const char *graph, int64_t width, int blocks)
{
    w->id = id;
    w->title = title;
    w->g = build_w3(graph, width, blocks);
    w->input = "x";
    ed_tensor *all = bench_digits_load((int64_t)BATCH * NBATCHES);
    if (!all) return -1;
    /* on several ranks, batches of each rank's share (the same rows on every rank: a
       timing workload, not a training run) */
    int64_t local = bench_local_batch(BATCH);
    w->batches = bench_split_batches(all, local, NBATCHES, ed_shape4(local, 1, 8, 8));
    ed_tensor_free(all);
    if (!w->batches) return -1;
    w->nbatches = NBATCHES;
    return 0;
}

int bench_w3_build(bench_workload *w) { return build(w, "w3", "W3 dit_small", "w3_dit_small", 128, 4); }

int bench_w3d_build(bench_workload *w) { return build(w, "w3d", "W3d dit_default", "w3d_dit_default", 256, 6); }
