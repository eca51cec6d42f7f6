/* DiT blocks (see dit_blocks.h): compositions of frontend.h's ops and nn.h's blocks. */
#include "frontend/dit_blocks.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* The param "<scope>.<leaf>" (or "<leaf>" at top level). */
static ed_node *block_param(ed_graph *g, const char *leaf, ed_dtype dt, ed_shape s, ed_init init)
{
    return ed_scoped_leaf(g, ED_OP_PARAM, leaf, dt, s, init);
}

/* ---- images as tokens ---------------------------------------------------------------- */

ed_node *ed_patchify(ed_node *x, int64_t patch)
{
    if (!x || ed_graph_error(x->graph)) return NULL;
    if (x->shape.rank != 4 || patch < 1 || x->shape.dim[2] % patch || x->shape.dim[3] % patch)
        return ed_nn_fail(x->graph, "patchify", "x must be [B, C, H, W] with H and W multiples of the patch %lld",
                          (long long)patch);
    int64_t b = x->shape.dim[0], c = x->shape.dim[1], gh = x->shape.dim[2] / patch, gw = x->shape.dim[3] / patch;
    ed_shape s6 = {.rank = 6, .dim = {b, c, gh, patch, gw, patch}};
    static const int perm[6] = {0, 2, 4, 1, 3, 5}; /* [B, gh, gw, C, p, p] */
    return ed_reshape(ed_transpose(ed_reshape(x, s6), perm), ed_shape3(b, gh * gw, c * patch * patch));
}

ed_node *ed_unpatchify(ed_node *tokens, int64_t patch, int64_t channels, int64_t height, int64_t width)
{
    if (!tokens || ed_graph_error(tokens->graph)) return NULL;
    if (patch < 1 || channels < 1 || height % patch || width % patch || height < 1 || width < 1 ||
        tokens->shape.rank != 3 || tokens->shape.dim[1] != (height / patch) * (width / patch) ||
        tokens->shape.dim[2] != channels * patch * patch)
        return ed_nn_fail(tokens->graph, "unpatchify", "tokens must be [B, %lld, %lld] for the image and patch",
                          patch > 0 ? (long long)((height / patch) * (width / patch)) : 0,
                          (long long)(channels * patch * patch));
    int64_t b = tokens->shape.dim[0], gh = height / patch, gw = width / patch;
    ed_shape s6 = {.rank = 6, .dim = {b, gh, gw, channels, patch, patch}};
    static const int perm[6] = {0, 3, 1, 4, 2, 5}; /* [B, C, gh, p, gw, p] */
    return ed_reshape(ed_transpose(ed_reshape(tokens, s6), perm), ed_shape4(b, channels, height, width));
}

/* ---- embeddings ------------------------------------------------------------------------ */

/* sin(pos w_i) for i < half, then cos(pos w_i), w_i = 10000^(-i / half): 2 half values. */
static void sincos_features(double *out, double pos, int64_t half)
{
    for (int64_t i = 0; i < half; i++) {
        double w = pow(10000.0, -(double)i / (double)half);
        out[i] = sin(pos * w);
        out[half + i] = cos(pos * w);
    }
}

/* The const [n, dim] of features from row k's positions: sin-cos of pos[a] in the a-th of
 * `axes` equal column blocks (dim a multiple of 2 axes). */
static ed_node *sincos_table(ed_graph *g, ed_dtype dt, int64_t n, int64_t dim, int axes, int64_t grid_w)
{
    double *v = malloc((size_t)(n * dim) * sizeof *v);
    if (!v) return ed_graph_fail(g, "pos_embed: out of memory");
    int64_t block = dim / axes;
    for (int64_t k = 0; k < n; k++) {
        double pos[2] = {(double)(k / grid_w), (double)(k % grid_w)}; /* row, column */
        for (int a = 0; a < axes; a++)
            sincos_features(v + k * dim + a * block, axes == 1 ? (double)k : pos[a], block / 2);
    }
    ed_node *e = ed_const(g, dt, ed_shape2(n, dim), v, n * dim);
    free(v);
    return e;
}

ed_node *ed_pos_embed_2d(ed_graph *g, ed_dtype dt, int64_t grid_h, int64_t grid_w, int64_t dim, bool learned,
                         const char *name)
{
    if (!g || ed_graph_error(g)) return NULL;
    int64_t n = grid_h * grid_w;
    if (grid_h < 1 || grid_w < 1 || dim < 4 || dim % 4 || n * dim > (1 << 24))
        return ed_nn_fail(g, "pos_embed_2d", "a grid of %lld tokens and a width %lld that is a multiple of 4",
                          (long long)n, (long long)dim);
    if (learned) return block_param(g, name, dt, ed_shape2(n, dim), (ed_init){ED_INIT_NORMAL, 0.02});
    return sincos_table(g, dt, n, dim, 2, grid_w);
}

ed_node *ed_pos_embed_1d(ed_graph *g, ed_dtype dt, int64_t n, int64_t dim, bool learned, const char *name)
{
    if (!g || ed_graph_error(g)) return NULL;
    if (n < 1 || dim < 2 || dim % 2 || n * dim > (1 << 24))
        return ed_nn_fail(g, "pos_embed_1d", "%lld tokens and an even width %lld", (long long)n, (long long)dim);
    if (learned) return block_param(g, name, dt, ed_shape2(n, dim), (ed_init){ED_INIT_NORMAL, 0.02});
    return sincos_table(g, dt, n, dim, 1, 1);
}

ed_node *ed_label_embedding(ed_node *labels, int64_t classes, int64_t dim, ed_dtype dt, const char *name)
{
    if (!labels || ed_graph_error(labels->graph)) return NULL;
    ed_graph *g = labels->graph;
    if (labels->dtype != ED_I32 || labels->shape.rank != 1 || classes < 1 || dim < 1 || !ed_dtype_is_float(dt))
        return ed_nn_fail(g, "label_embedding", "labels must be i32 [B] and classes %lld, dim %lld >= 1",
                          (long long)classes, (long long)dim);
    ed_scope_push(g, name);
    ed_node *table = block_param(g, "table", dt, ed_shape2(classes + 1, dim), (ed_init){ED_INIT_NORMAL, 0.02});
    ed_scope_pop(g);
    return ed_gather(table, labels, 0);
}

ed_node *ed_label_dropout(ed_node *labels, int64_t classes, double p)
{
    if (!labels || ed_graph_error(labels->graph)) return NULL;
    ed_graph *g = labels->graph;
    if (labels->dtype != ED_I32 || !(p >= 0 && p <= 1))
        return ed_nn_fail(g, "label_dropout", "labels must be i32 and p in [0, 1], got %g", p);
    if (p == 0) return labels;
    /* labels + drop (classes - labels): the null class where drop is 1 */
    ed_node *drop = ed_cast(ed_bernoulli(g, ED_F32, labels->shape, p), ED_I32);
    return ed_add(labels, ed_mul(drop, ed_sub(ed_scalar(g, ED_I32, (double)classes), labels)));
}

ed_node *ed_dit_time_embedding(ed_node *t, int64_t freq_dim, int64_t dim, const char *name)
{
    if (!t || ed_graph_error(t->graph)) return NULL;
    ed_graph *g = t->graph;
    ed_scope_push(g, name);
    ed_node *e = ed_dense(ed_silu(ed_dense(ed_timestep_embedding(t, freq_dim, 10000), "0", dim, true)), "1", dim, true);
    ed_scope_pop(g);
    return e;
}

/* ---- the transformer ---------------------------------------------------------------------- */

/* dense(silu_c, k * width) with weight and bias starting at zero: the modulation. */
static ed_node *modulation(ed_node *silu_c, int k, int64_t width)
{
    ed_graph *g = silu_c->graph;
    ed_dtype dt = silu_c->dtype;
    ed_node *w = block_param(g, "ada.w", dt, ed_shape2(silu_c->shape.dim[1], k * width), (ed_init){ED_INIT_ZEROS, 0});
    ed_node *b = block_param(g, "ada.b", dt, ed_shape1(k * width), (ed_init){ED_INIT_ZEROS, 0});
    return ed_add(ed_matmul(silu_c, w), b);
}

/* Chunk k of mod [B, n * width] as [B, 1, width], to broadcast over the tokens. */
static ed_node *chunk(ed_node *mod, int k, int64_t width)
{
    int64_t b = mod->shape.dim[0];
    return ed_reshape(ed_slice_axis(mod, 1, k * width, (k + 1) * width), ed_shape3(b, 1, width));
}

/* LN(h) (1 + scale) + shift */
static ed_node *modulate(ed_node *h, ed_node *shift, ed_node *scale)
{
    ed_node *n = ed_layer_norm(h, "ln", 1e-6, false);
    return ed_add(ed_mul(n, ed_add_scalar(scale, 1.0)), shift);
}

/* h [B, N, D] and c [B, E] of one float dtype with one batch; false with the error. */
static bool check_tokens(const char *what, ed_node *h, ed_node *c)
{
    if (!h || !c || ed_graph_error(h->graph)) return false;
    if (h->shape.rank != 3 || c->shape.rank != 2 || c->shape.dim[0] != h->shape.dim[0] || c->dtype != h->dtype ||
        !ed_dtype_is_float(h->dtype)) {
        ed_nn_fail(h->graph, what, "h must be float [B, N, D] and c [B, E] of its dtype (B = %lld, c's B = %lld)",
                   h->shape.rank ? (long long)h->shape.dim[0] : 0, c->shape.rank ? (long long)c->shape.dim[0] : 0);
        return false;
    }
    return true;
}

ed_node *ed_dit_block(ed_node *h, ed_node *silu_c, int heads, int64_t mlp_hidden, const char *name)
{
    if (!check_tokens("dit_block", h, silu_c)) return NULL;
    ed_graph *g = h->graph;
    int64_t d = h->shape.dim[2];
    ed_scope_push(g, name);
    ed_node *mod = modulation(silu_c, 6, d);
    ed_node *a = ed_self_attention(modulate(h, chunk(mod, 0, d), chunk(mod, 1, d)), "attn", heads, false);
    h = ed_add(h, ed_mul(chunk(mod, 2, d), a));
    ed_node *m = ed_dense(modulate(h, chunk(mod, 3, d), chunk(mod, 4, d)), "fc1", mlp_hidden, true);
    m = ed_dense(ed_gelu(m, true), "fc2", d, true);
    h = ed_add(h, ed_mul(chunk(mod, 5, d), m));
    ed_scope_pop(g);
    return h;
}

ed_node *ed_dit_final_layer(ed_node *h, ed_node *silu_c, int64_t out_dim, const char *name)
{
    if (!check_tokens("dit_final_layer", h, silu_c)) return NULL;
    ed_graph *g = h->graph;
    int64_t b = h->shape.dim[0], n = h->shape.dim[1], d = h->shape.dim[2];
    ed_scope_push(g, name);
    ed_node *mod = modulation(silu_c, 2, d);
    ed_node *x = ed_reshape(modulate(h, chunk(mod, 0, d), chunk(mod, 1, d)), ed_shape2(b * n, d));
    ed_node *w = block_param(g, "linear.w", h->dtype, ed_shape2(d, out_dim), (ed_init){ED_INIT_ZEROS, 0});
    ed_node *bias = block_param(g, "linear.b", h->dtype, ed_shape1(out_dim), (ed_init){ED_INIT_ZEROS, 0});
    ed_node *out = ed_reshape(ed_add(ed_matmul(x, w), bias), ed_shape3(b, n, out_dim));
    ed_scope_pop(g);
    return out;
}
