/* VQ-VAE's prior: a small causal transformer over the G positions of the code grid,
 * its NLL (step "prior"), ancestral sampling unrolled in the graph, and the codebook's
 * perplexity. */
#include "models/vqvae.h"
#include "frontend/nn.h"
#include "models/metrics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static ed_node *prior_param(ed_graph *g, const char *leaf, ed_shape s)
{
    char name[256];
    snprintf(name, sizeof name, "%s.%s", ed_scope(g), leaf);
    return ed_param(g, name, ED_F32, s, (ed_init){ED_INIT_NORMAL, 0.02});
}

/* h + attn(LN(h)), then h + MLP(LN(h)): one pre-LayerNorm block. */
static ed_node *block(ed_node *h, int64_t i, const ed_vqvae_opts *o)
{
    ed_graph *g = h->graph;
    char name[32];
    snprintf(name, sizeof name, "block%lld", (long long)i);
    ed_scope_push(g, name);
    ed_node *u = ed_layer_norm(h, "ln1", 1e-5, true);
    h = ed_add(h, ed_self_attention(u, "attn", (int)o->prior_heads, true));
    u = ed_layer_norm(h, "ln2", 1e-5, true);
    u = ed_dense(ed_gelu(ed_dense(u, "fc1", 4 * o->prior_width, true), false), "fc2", o->prior_width, true);
    h = ed_add(h, u);
    ed_scope_pop(g);
    return h;
}

ed_node *ed_vqvae_prior_logits(ed_node *tokens, const ed_vqvae_opts *o)
{
    if (!tokens || ed_graph_error(tokens->graph)) return NULL;
    ed_graph *g = tokens->graph;
    int64_t k = o->num_embeddings, w = o->prior_width;
    if (tokens->dtype != ED_I32 || tokens->shape.rank != 2 || tokens->shape.dim[1] < 1 ||
        tokens->shape.dim[1] > o->codes) {
        char t[96];
        ed_node_type_str(tokens, t, sizeof t);
        return ed_graph_fail(g, "vqvae prior: tokens are %s, need i32[B, T] with 1 <= T <= %lld", t,
                             (long long)o->codes);
    }
    if (k < 1 || w < 1 || o->prior_layers < 0 || o->prior_heads < 1 || w % o->prior_heads)
        return ed_graph_fail(g,
                             "vqvae prior: num_embeddings >= 1, prior_width >= 1, prior_layers >= 0 and "
                             "prior_heads dividing prior_width needed (got %lld, %lld, %lld, %lld)",
                             (long long)k, (long long)w, (long long)o->prior_layers, (long long)o->prior_heads);
    int64_t t = tokens->shape.dim[1];
    ed_scope_push(g, "vq");
    ed_scope_push(g, "prior");
    /* Row k of the token table is the start token. */
    ed_node *h = ed_gather(prior_param(g, "tok", ed_shape2(k + 1, w)), tokens, 0);
    ed_node *pos = ed_slice_axis(prior_param(g, "pos", ed_shape2(o->codes, w)), 0, 0, t);
    h = ed_add(h, ed_reshape(pos, ed_shape3(1, t, w)));
    for (int64_t i = 0; i < o->prior_layers && h; i++) h = block(h, i, o);
    ed_node *logits = ed_dense(ed_layer_norm(h, "ln", 1e-5, true), "out", k, true);
    ed_scope_pop(g);
    ed_scope_pop(g);
    return logits;
}

/* [B, 1] start tokens before the codes idx[:, :T]. */
static ed_node *shifted(ed_node *idx, int64_t t, const ed_vqvae_opts *o)
{
    ed_node *start = ed_fill(idx->graph, ED_I32, ed_shape2(idx->shape.dim[0], 1), (double)o->num_embeddings);
    if (t == 0) return start;
    ed_node *parts[2] = {start, ed_slice_axis(idx, 1, 0, t)};
    return ed_concat(parts, 2, 1);
}

ed_node *ed_vqvae_prior_nll_indices(ed_node *idx, const ed_vqvae_opts *o)
{
    if (!idx || ed_graph_error(idx->graph)) return NULL;
    if (idx->dtype != ED_I32 || idx->shape.rank != 2 || idx->shape.dim[1] != o->codes) {
        char t[96];
        ed_node_type_str(idx, t, sizeof t);
        return ed_graph_fail(idx->graph, "vqvae prior: codes are %s, need i32[B, %lld]", t, (long long)o->codes);
    }
    ed_node *logp = ed_log_softmax(ed_vqvae_prior_logits(shifted(idx, o->codes - 1, o), o), -1);
    ed_node *picked = ed_mul(ed_one_hot(idx, o->num_embeddings, ED_F32), logp);
    return ed_neg(ed_sum(picked, (1u << 1) | (1u << 2), false));
}

ed_node *ed_vqvae_prior_nll(ed_graph *g, ed_node *x, const ed_vqvae_opts *o)
{
    if (!x || ed_graph_error(g)) return NULL;
    return ed_vqvae_prior_nll_indices(ed_vqvae_encode_indices(x, o), o);
}

ed_node *ed_vqvae_prior_loss(ed_graph *g, ed_node *x, const ed_vqvae_opts *o)
{
    return ed_mean(ed_vqvae_prior_nll(g, x, o), ED_ALL_AXES, false);
}

/* One categorical draw per row of logits [n, K] by Gumbel-max: i32 [n, 1]. */
static ed_node *draw(ed_graph *g, ed_node *logits)
{
    if (!logits) return NULL;
    /* U is clamped away from 0 and 1, where -log(-log U) is infinite. */
    ed_node *u = ed_clamp(ed_rand(g, ED_F32, logits->shape, 0, 1), 1e-7, 1 - 1e-7);
    ed_node *gumbel = ed_neg(ed_log(ed_neg(ed_log(u))));
    ed_node *z = ed_add(logits, gumbel);
    return ed_argmax(z, ed_axis_bit(z, 1), true);
}

ed_node *ed_vqvae_sample_indices(ed_graph *g, int64_t n, const ed_vqvae_opts *o)
{
    if (ed_graph_error(g)) return NULL;
    if (n < 1 || o->codes < 1)
        return ed_graph_fail(g, "vqvae sample: n = %lld and codes = %lld must be >= 1", (long long)n,
                             (long long)o->codes);
    /* Unrolled: pass i runs the transformer on the start token and the i codes drawn so
     * far and draws code i from its last position. (A loop would compile the
     * transformer once, but the JIT does not keep a loop body's consts across calls
     * when other buffers reuse the loop's arena slot.) */
    int64_t k = o->num_embeddings;
    ed_node *tokens = ed_fill(g, ED_I32, ed_shape2(n, 1), (double)k);
    for (int64_t i = 0; i < o->codes && tokens; i++) {
        ed_node *logits = ed_vqvae_prior_logits(tokens, o);
        ed_node *last = ed_reshape(ed_slice_axis(logits, 1, i, i + 1), ed_shape2(n, k));
        ed_node *parts[2] = {tokens, draw(g, last)};
        tokens = ed_concat(parts, 2, 1);
    }
    return tokens ? ed_slice_axis(tokens, 1, 1, o->codes + 1) : NULL;
}

ed_node *ed_vqvae_sample(ed_graph *g, int64_t n, const ed_vqvae_opts *o)
{
    return ed_vqvae_decode_indices(ed_vqvae_sample_indices(g, n, o), o);
}

double ed_vqvae_perplexity(const int32_t *idx, int64_t n, int64_t k, int64_t *used)
{
    if (used) *used = 0;
    if (!idx || n < 1 || k < 1) {
        ed_fail("vqvae perplexity: needs n >= 1 indices and k >= 1 codes (got n = %lld, k = %lld)", (long long)n,
                (long long)k);
        return NAN;
    }
    double *count = calloc((size_t)k, sizeof *count);
    if (!count) {
        ed_fail("vqvae perplexity: out of memory for %lld counts", (long long)k);
        return NAN;
    }
    for (int64_t i = 0; i < n; i++) {
        if (idx[i] < 0 || idx[i] >= k) {
            ed_fail("vqvae perplexity: index %lld is %d, outside [0, %lld)", (long long)i, idx[i], (long long)k);
            free(count);
            return NAN;
        }
        count[idx[i]]++;
    }
    double ppl = ed_histogram_perplexity(count, k, used);
    free(count);
    return ppl;
}
