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
 * linear betas. Batch 64, AdamW lr 1e-4, weight decay 0.01. */
#include "bench/workloads.h"
#include "frontend/nn.h"
#include "models/train_step.h"
#include "runtime/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    BATCH = 64,
    TOKENS = 16,
    PATCH_PIX = 4,
    WIDTH = 128,
    BLOCKS = 4,
    HEADS = 4,
    MLP = 4 * WIDTH,
    T = 1000,
    NBATCHES = 22
};

/* x [N, in] @ W + b with W and b zero-initialized (adaLN-zero and the final layer). */
static ed_node *zero_dense(ed_node *x, const char *name, int64_t units)
{
    if (!x) return NULL;
    ed_graph *g = x->graph;
    char wn[96], bn[96];
    const char *sc = ed_scope(g);
    snprintf(wn, sizeof wn, "%s%s%s.w", sc, *sc ? "." : "", name);
    snprintf(bn, sizeof bn, "%s%s%s.b", sc, *sc ? "." : "", name);
    ed_node *w = ed_param(g, wn, ED_F32, ed_shape2(x->shape.dim[1], units), (ed_init){ED_INIT_ZEROS, 0});
    ed_node *b = ed_param(g, bn, ED_F32, ed_shape1(units), (ed_init){ED_INIT_ZEROS, 0});
    return ed_add(ed_matmul(x, w), b);
}

/* Chunk k of WIDTH columns of mod [B, n*WIDTH], as [B, 1, WIDTH] to broadcast over tokens. */
static ed_node *chunk(ed_node *mod, int k)
{
    return ed_reshape(ed_slice_axis(mod, 1, (int64_t)k * WIDTH, (int64_t)(k + 1) * WIDTH), ed_shape3(BATCH, 1, WIDTH));
}

/* LN(h) (1 + scale) + shift */
static ed_node *modulate(ed_node *h, ed_node *shift, ed_node *scale)
{
    ed_node *n = ed_layer_norm(h, "ln", 1e-6, false);
    return ed_add(ed_mul(n, ed_add_scalar(scale, 1.0)), shift);
}

/* A per-token dense on [B, TOKENS, in]: flattened to one [B*TOKENS, in] matmul. */
static ed_node *token_dense(ed_node *h, const char *name, int64_t units)
{
    if (!h) return NULL;
    ed_node *flat = ed_reshape(h, ed_shape2(BATCH * TOKENS, h->shape.dim[2]));
    return ed_reshape(ed_dense(flat, name, units, true), ed_shape3(BATCH, TOKENS, units));
}

static ed_node *block(ed_node *h, ed_node *sc, int j)
{
    ed_graph *g = h->graph;
    char name[16];
    snprintf(name, sizeof name, "b%d", j);
    ed_scope_push(g, name);
    ed_node *mod = zero_dense(sc, "ada", 6 * WIDTH);
    ed_node *a = ed_self_attention(modulate(h, chunk(mod, 0), chunk(mod, 1)), "attn", HEADS, false);
    h = ed_add(h, ed_mul(chunk(mod, 2), a));
    ed_node *m = token_dense(modulate(h, chunk(mod, 3), chunk(mod, 4)), "fc1", MLP);
    m = token_dense(ed_gelu(m, true), "fc2", WIDTH);
    h = ed_add(h, ed_mul(chunk(mod, 5), m));
    ed_scope_pop(g);
    return h;
}

/* [B, 1, 8, 8] -> [B, 16, 4]: token (pr, pc) holds pixels (2pr + dy, 2pc + dx). */
static ed_node *patchify(ed_node *x)
{
    static const int perm[5] = {0, 1, 3, 2, 4};
    int64_t d5[5] = {BATCH, 4, 2, 4, 2};
    ed_shape s5 = {.rank = 5};
    memcpy(s5.dim, d5, sizeof d5);
    return ed_reshape(ed_transpose(ed_reshape(x, s5), perm), ed_shape3(BATCH, TOKENS, PATCH_PIX));
}

static ed_graph *build_w3(void)
{
    ed_graph *g = ed_graph_new("w3_dit_small");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape4(BATCH, 1, 8, 8));
    ed_node *x0 = patchify(ed_add_scalar(ed_mul_scalar(x, 2.0), -1.0));
    ed_node *t, *eps;
    ed_node *xt = bench_ddpm_noised(x0, T, &t, &eps);
    ed_node *pos = ed_param(g, "pos", ED_F32, ed_shape2(TOKENS, WIDTH), (ed_init){ED_INIT_NORMAL, 0.02});
    ed_node *h = ed_add(token_dense(xt, "patch", WIDTH), pos);
    ed_node *c = ed_dense(ed_silu(ed_dense(ed_timestep_embedding(t, WIDTH, 10000), "temb.0", WIDTH, true)), "temb.1",
                          WIDTH, true);
    ed_node *sc = ed_silu(c);
    for (int j = 0; j < BLOCKS && h; j++) h = block(h, sc, j);
    ed_scope_push(g, "final");
    ed_node *mod = zero_dense(sc, "ada", 2 * WIDTH);
    ed_node *hf = ed_reshape(modulate(h, chunk(mod, 0), chunk(mod, 1)), ed_shape2(BATCH * TOKENS, WIDTH));
    ed_node *out = ed_reshape(zero_dense(hf, "linear", PATCH_PIX), ed_shape3(BATCH, TOKENS, PATCH_PIX));
    ed_scope_pop(g);
    ed_node *loss = ed_mean(ed_square(ed_sub(out, eps)), ED_ALL_AXES, false);
    ed_train_step(g, loss, &(ed_train_opts){.optim = {.kind = ED_OPT_ADAMW, .lr = 1e-4, .weight_decay = 0.01}});
    return g;
}

int bench_w3_build(bench_workload *w)
{
    w->id = "w3";
    w->title = "W3 dit_small";
    w->g = build_w3();
    w->input = "x";
    ed_tensor *all = bench_digits_load((int64_t)BATCH * NBATCHES);
    if (!all) return -1;
    w->batches = bench_split_batches(all, BATCH, NBATCHES, ed_shape4(BATCH, 1, 8, 8));
    ed_tensor_free(all);
    if (!w->batches) return -1;
    w->nbatches = NBATCHES;
    return 0;
}
