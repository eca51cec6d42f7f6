/* VQ-VAE: options, encoder, quantizer, decoder, the autoencoder's loss and the
 * codebook's EMA update. The prior over the codes is in vqvae_prior.c. */
#include "models/vqvae.h"
#include "frontend/nn.h"
#include "models/registry.h"
#include "runtime/error.h"

#include <stddef.h>
#include <stdio.h>

static const char *const updates[] = {"loss", "ema", NULL};

#define VQ(field) offsetof(ed_vqvae_opts, field)
const ed_option ed_vqvae_options[] = {
    {"codes", ED_OPTION_INT, VQ(codes), 4, 1, 64, NULL, "code vectors per sample (the grid the prior models)", NULL},
    {"num_embeddings", ED_OPTION_INT, VQ(num_embeddings), 64, 2, 65536, NULL, "codebook size K", NULL},
    {"embedding_dim", ED_OPTION_INT, VQ(embedding_dim), 16, 1, 4096, NULL, "width E of a code vector", NULL},
    {"encoder_sizes", ED_OPTION_SIZES, VQ(encoder_sizes), 0, 1, 65536, NULL, "hidden widths of the encoder", "256,128"},
    {"decoder_sizes", ED_OPTION_SIZES, VQ(decoder_sizes), 0, 1, 65536, NULL, "hidden widths of the decoder", "128,256"},
    {"activation", ED_OPTION_ENUM, VQ(activation), ED_ACT_RELU, 0, 0, ed_activation_names,
     "activation of the hidden layers", NULL},
    {"commitment", ED_OPTION_REAL, VQ(commitment), 0.25, 0, 100, NULL, "weight beta of ||z_e - sg(z_q)||^2", NULL},
    {"codebook_update", ED_OPTION_ENUM, VQ(codebook_update), ED_VQ_UPDATE_LOSS, 0, 0, updates,
     "codebook trained by its loss term or by EMA", NULL},
    {"ema_decay", ED_OPTION_REAL, VQ(ema_decay), 0.99, 0, 0.999999, NULL, "decay of the EMA codebook", NULL},
    {"restart_below", ED_OPTION_REAL, VQ(restart_below), 1, 0, 1e9, NULL,
     "EMA: restart codes whose EMA count is below this (0: never)", NULL},
    {"prior_width", ED_OPTION_INT, VQ(prior_width), 64, 1, 4096, NULL, "width of the prior's transformer", NULL},
    {"prior_layers", ED_OPTION_INT, VQ(prior_layers), 2, 0, 64, NULL, "transformer blocks of the prior", NULL},
    {"prior_heads", ED_OPTION_INT, VQ(prior_heads), 4, 1, 64, NULL, "attention heads of the prior (divide prior_width)",
     NULL},
};
#undef VQ

void ed_vqvae_defaults(ed_vqvae_opts *o)
{
    *o = (ed_vqvae_opts){0};
    ed_options_defaults(ed_vqvae_options, ED_VQVAE_NOPTIONS, o);
}

/* The options' own consistency (the table checks each range when text is parsed; a
 * struct filled in C is checked here). */
static bool valid(ed_graph *g, const ed_vqvae_opts *o)
{
    if (ed_graph_error(g)) return false;
    if (o->data_dim < 1 || o->codes < 1 || o->num_embeddings < 1 || o->embedding_dim < 1) {
        ed_graph_fail(
            g, "vqvae: data_dim, codes, num_embeddings and embedding_dim must be >= 1 (got %lld, %lld, %lld, %lld)",
            (long long)o->data_dim, (long long)o->codes, (long long)o->num_embeddings, (long long)o->embedding_dim);
        return false;
    }
    if ((unsigned)o->activation >= ED_ACT_COUNT || (unsigned)o->codebook_update >= ED_VQ_UPDATE_COUNT) {
        ed_graph_fail(g, "vqvae: activation %d or codebook_update %d out of range", o->activation, o->codebook_update);
        return false;
    }
    if (o->encoder_sizes.n < 0 || o->encoder_sizes.n > ED_SIZES_MAX || o->decoder_sizes.n < 0 ||
        o->decoder_sizes.n > ED_SIZES_MAX) {
        ed_graph_fail(g, "vqvae: 0 to %d hidden sizes per network", ED_SIZES_MAX);
        return false;
    }
    return true;
}

ed_node *ed_vqvae_codebook(ed_graph *g, const ed_vqvae_opts *o)
{
    if (!valid(g, o)) return NULL;
    ed_shape s = ed_shape2(o->num_embeddings, o->embedding_dim);
    ed_init init = {ED_INIT_UNIFORM, 1.0 / (double)o->num_embeddings};
    if (o->codebook_update == ED_VQ_UPDATE_EMA) return ed_state(g, "vq.codebook", ED_F32, s, init);
    return ed_param(g, "vq.codebook", ED_F32, s, init);
}

/* An MLP under scope "vq": hidden widths, then a linear layer of width out. */
static ed_node *mlp(ed_node *x, const char *name, const ed_sizes *hidden, int64_t out, const ed_vqvae_opts *o)
{
    int64_t sizes[ED_SIZES_MAX + 1];
    for (int i = 0; i < hidden->n; i++) sizes[i] = hidden->v[i];
    sizes[hidden->n] = out;
    ed_scope_push(x->graph, "vq");
    ed_node *y = ed_mlp(x, name, sizes, hidden->n + 1, (ed_activation)o->activation, false);
    ed_scope_pop(x->graph);
    return y;
}

ed_node *ed_vqvae_encode(ed_node *x, const ed_vqvae_opts *o)
{
    if (!x || !valid(x->graph, o)) return NULL;
    ed_graph *g = x->graph;
    if (x->dtype != ED_F32 || x->shape.rank != 2 || x->shape.dim[1] != o->data_dim) {
        char t[96];
        ed_node_type_str(x, t, sizeof t);
        return ed_graph_fail(g, "vqvae: x is %s, needs f32[B, %lld]", t, (long long)o->data_dim);
    }
    int64_t batch = x->shape.dim[0];
    ed_node *z = mlp(x, "enc", &o->encoder_sizes, o->codes * o->embedding_dim, o);
    return ed_reshape(z, ed_shape3(batch, o->codes, o->embedding_dim));
}

ed_node *ed_vqvae_nearest(ed_node *z, ed_node *codebook)
{
    if (!z || !codebook || ed_graph_error(z->graph)) return NULL;
    ed_graph *g = z->graph;
    if (codebook->shape.rank != 2 || z->shape.rank < 1 || z->shape.dim[z->shape.rank - 1] != codebook->shape.dim[1]) {
        char tz[96], tc[96];
        ed_node_type_str(z, tz, sizeof tz);
        ed_node_type_str(codebook, tc, sizeof tc);
        return ed_graph_fail(g, "vqvae: vectors %s do not match codebook %s ([..., E] and [K, E])", tz, tc);
    }
    int64_t e = codebook->shape.dim[1], k = codebook->shape.dim[0];
    ed_node *flat = ed_reshape(z, ed_shape2(-1, e));
    /* ||z||^2 - 2 z.e + ||e||^2, [N, K] */
    ed_node *zz = ed_sum(ed_square(flat), ed_axis_bit(flat, 1), true);
    ed_node *ee = ed_reshape(ed_sum(ed_square(codebook), ed_axis_bit(codebook, 1), false), ed_shape2(1, k));
    ed_node *ze = ed_matmul_t(flat, codebook, false, true);
    ed_node *dist = ed_add(ed_sub(zz, ed_mul_scalar(ze, 2)), ee);
    ed_node *idx = ed_argmin(dist, ed_axis_bit(dist, 1), false);
    ed_shape s = z->shape;
    s.rank--;
    return ed_reshape(idx, s);
}

ed_node *ed_vqvae_decode(ed_node *z, const ed_vqvae_opts *o)
{
    if (!z || !valid(z->graph, o)) return NULL;
    if (z->shape.rank != 3 || z->shape.dim[1] != o->codes || z->shape.dim[2] != o->embedding_dim) {
        char t[96];
        ed_node_type_str(z, t, sizeof t);
        return ed_graph_fail(z->graph, "vqvae: decoder input is %s, needs [B, %lld, %lld]", t, (long long)o->codes,
                             (long long)o->embedding_dim);
    }
    ed_node *flat = ed_reshape(z, ed_shape2(z->shape.dim[0], o->codes * o->embedding_dim));
    return mlp(flat, "dec", &o->decoder_sizes, o->data_dim, o);
}

int ed_vqvae_forward(ed_graph *g, ed_node *x, const ed_vqvae_opts *o, ed_vqvae_pass *out)
{
    *out = (ed_vqvae_pass){0};
    if (!x) return ED_ERR;
    out->codebook = ed_vqvae_codebook(g, o);
    out->z_e = ed_vqvae_encode(x, o);
    out->indices = ed_vqvae_nearest(out->z_e, out->codebook);
    out->z_q = ed_gather(out->codebook, out->indices, 0);
    out->z_q_st = ed_add(out->z_e, ed_stop_gradient(ed_sub(out->z_q, out->z_e)));
    out->logits = ed_vqvae_decode(out->z_q_st, o);
    return ed_graph_error(g) ? ED_ERR : ED_OK;
}

/* sum over all axes but the first: [B, ...] -> [B] */
static ed_node *per_sample_sum(ed_node *v)
{
    unsigned axes = 0;
    for (int i = 1; i < v->shape.rank; i++) axes |= 1u << i;
    return ed_sum(v, axes, false);
}

ed_node *ed_vqvae_loss(ed_graph *g, ed_node *x, const ed_vqvae_opts *o)
{
    ed_vqvae_pass p;
    if (ed_vqvae_forward(g, x, o, &p) != ED_OK) return NULL;
    /* Bernoulli negative log-likelihood with logits l: softplus(l) - x l. */
    ed_node *recon = per_sample_sum(ed_sub(ed_softplus(p.logits), ed_mul(x, p.logits)));
    ed_node *commit = per_sample_sum(ed_square(ed_sub(p.z_e, ed_stop_gradient(p.z_q))));
    ed_node *total = ed_add(recon, ed_mul_scalar(commit, o->commitment));
    if (o->codebook_update == ED_VQ_UPDATE_LOSS) {
        ed_node *codebook = per_sample_sum(ed_square(ed_sub(ed_stop_gradient(p.z_e), p.z_q)));
        total = ed_add(total, codebook);
    } else if (ed_vqvae_ema_update(g, &p, o) != ED_OK) {
        return NULL;
    }
    return ed_mean(total, ED_ALL_AXES, false);
}

int ed_vqvae_ema_update(ed_graph *g, const ed_vqvae_pass *p, const ed_vqvae_opts *o)
{
    if (!p->codebook || !p->z_e || !p->indices || ed_graph_error(g)) return ED_ERR;
    if (p->codebook->op != ED_OP_STATE) {
        ed_graph_fail(g, "vqvae: the EMA update needs the codebook as state (codebook_update = ema)");
        return ED_ERR;
    }
    int64_t k = o->num_embeddings, e = o->embedding_dim, n = ed_shape_numel(p->indices->shape);
    double d = o->ema_decay;
    ed_node *z = ed_reshape(ed_stop_gradient(p->z_e), ed_shape2(n, e));
    ed_node *onehot = ed_one_hot(ed_reshape(p->indices, ed_shape1(n)), k, ED_F32);
    ed_node *batch_count = ed_sum(onehot, ed_axis_bit(onehot, 0), false); /* [K] */
    ed_node *batch_sum = ed_matmul_t(onehot, z, true, false);             /* [K, E] */

    ed_node *count = ed_state(g, "vq.ema.count", ED_F32, ed_shape1(k), (ed_init){ED_INIT_ONES, 0});
    ed_node *new_count = ed_add(ed_mul_scalar(count, d), ed_mul_scalar(batch_count, 1 - d));
    new_count = ed_maximum(new_count, ed_scalar(g, ED_F32, 1e-6));
    ed_node *sum = ed_mul(p->codebook, ed_reshape(count, ed_shape2(k, 1)));
    ed_node *new_sum = ed_add(ed_mul_scalar(sum, d), ed_mul_scalar(batch_sum, 1 - d));
    ed_node *codebook = ed_div(new_sum, ed_reshape(new_count, ed_shape2(k, 1)));

    if (o->restart_below > 0) {
        ed_node *threshold = ed_scalar(g, ED_F32, o->restart_below);
        ed_node *dead = ed_lt(new_count, threshold);
        ed_node *rows = ed_gather(z, ed_randint(g, ed_shape1(k), 0, n), 0);
        codebook = ed_where(ed_reshape(dead, ed_shape2(k, 1)), rows, codebook);
        new_count = ed_where(dead, threshold, new_count);
    }
    ed_update(g, "vq.codebook", codebook);
    ed_update(g, "vq.ema.count", new_count);
    return ed_graph_error(g) ? ED_ERR : ED_OK;
}

ed_node *ed_vqvae_encode_indices(ed_node *x, const ed_vqvae_opts *o)
{
    if (!x) return NULL;
    return ed_vqvae_nearest(ed_vqvae_encode(x, o), ed_vqvae_codebook(x->graph, o));
}

ed_node *ed_vqvae_decode_indices(ed_node *idx, const ed_vqvae_opts *o)
{
    if (!idx || !valid(idx->graph, o)) return NULL;
    if (idx->dtype != ED_I32 || idx->shape.rank != 2 || idx->shape.dim[1] != o->codes) {
        char t[96];
        ed_node_type_str(idx, t, sizeof t);
        return ed_graph_fail(idx->graph, "vqvae: codes are %s, need i32[B, %lld]", t, (long long)o->codes);
    }
    ed_node *z = ed_gather(ed_vqvae_codebook(idx->graph, o), idx, 0);
    return ed_sigmoid(ed_vqvae_decode(z, o));
}

ed_node *ed_vqvae_recon_mse(ed_graph *g, ed_node *x, const ed_vqvae_opts *o)
{
    ed_vqvae_pass p;
    if (ed_vqvae_forward(g, x, o, &p) != ED_OK) return NULL;
    ed_node *err = ed_square(ed_sub(x, ed_sigmoid(p.logits)));
    return ed_mean(err, ed_axis_bit(err, 1), false);
}

ed_node *ed_vqvae_code_counts(ed_node *x, const ed_vqvae_opts *o)
{
    ed_node *idx = ed_vqvae_encode_indices(x, o);
    if (!idx) return NULL;
    ed_node *onehot = ed_one_hot(ed_reshape(idx, ed_shape1(idx->shape.dim[0] * idx->shape.dim[1])), o->num_embeddings,
                                 ED_F32);
    return ed_sum(onehot, ed_axis_bit(onehot, 0), false);
}

/* ---- the registry entry ------------------------------------------------------------- */

static void model_defaults(ed_gen_model *m)
{
    ed_vqvae_defaults(&m->opts.vqvae);
    m->opts.vqvae.data_dim = ed_gen_model_dim(m);
}

static int model_check(const ed_gen_model *m)
{
    const ed_vqvae_opts *o = &m->opts.vqvae;
    if (m->obs_size) return ed_fail("model vqvae is unconditional: the data have observations");
    if (!m->unit_range)
        return ed_fail("model vqvae: its decoder is Bernoulli and needs data in [0, 1]; these data leave it");
    if (o->prior_width % o->prior_heads != 0)
        return ed_fail("model vqvae: prior_heads (%lld) must divide prior_width (%lld)", (long long)o->prior_heads,
                       (long long)o->prior_width);
    return ED_OK;
}

static ed_node *train_loss(ed_graph *g, const ed_gen_model *m, const ed_batch *b)
{
    return ed_vqvae_loss(g, ed_gen_model_flatten(m, b->x), &m->opts.vqvae);
}

static ed_node *prior_loss(ed_graph *g, const ed_gen_model *m, const ed_batch *b)
{
    return ed_vqvae_prior_loss(g, ed_gen_model_flatten(m, b->x), &m->opts.vqvae);
}

static ed_node *model_sample(ed_graph *g, const ed_gen_model *m, int64_t n, ed_node *obs, ed_node *labels,
                             const ed_gen_sample_opts *so)
{
    (void)obs, (void)labels;
    if (!ed_gen_model_plain_sampler(g, m, so, "codes drawn from the prior, one after another, then decoded"))
        return NULL;
    return ed_gen_model_unflatten(m, ed_vqvae_sample(g, n, &m->opts.vqvae));
}

static ed_node *model_reconstruct(ed_graph *g, const ed_gen_model *m, ed_node *x)
{
    (void)g;
    const ed_vqvae_opts *o = &m->opts.vqvae;
    return ed_gen_model_unflatten(m,
                                  ed_vqvae_decode_indices(ed_vqvae_encode_indices(ed_gen_model_flatten(m, x), o), o));
}

/* recon_mse per image, the prior's NLL of the codes in nats per image, and the codes'
 * histogram (usage and perplexity). */
static int model_figures(ed_graph *g, const ed_gen_model *m, const ed_batch *b, ed_node **out)
{
    ed_node *x = ed_gen_model_flatten(m, b->x);
    out[0] = ed_vqvae_recon_mse(g, x, &m->opts.vqvae);
    out[1] = ed_vqvae_prior_nll(g, x, &m->opts.vqvae);
    out[2] = ed_vqvae_code_counts(x, &m->opts.vqvae);
    out[3] = out[2];
    return ed_graph_error(g) ? ED_ERR : ED_OK;
}

/* The autoencoder and its codebook first, then the prior on the (frozen) codes. */
static const char *const autoencoder_groups[] = {"vq.enc.", "vq.dec.", "vq.codebook", NULL};
static const char *const prior_groups[] = {"vq.prior.", NULL};

const ed_model_def ed_vqvae_model = {
    .name = "vqvae",
    .summary = "VQ-VAE: a learned codebook, and a causal-transformer prior over the codes to sample from",
    .options = ed_vqvae_options,
    .noptions = ED_VQVAE_NOPTIONS,
    .defaults = model_defaults,
    .check = model_check,
    .nsteps = 2,
    .steps = {{.name = "train", .groups = autoencoder_groups, .loss = train_loss},
              {.name = "prior", .groups = prior_groups, .loss = prior_loss}},
    .sample = model_sample,
    .samplers = "prior",
    .nfigures = 4,
    .figures = {{"recon_mse", "per pixel", ED_FIGURE_MEAN},
                {"prior_nll", "nats/sample", ED_FIGURE_MEAN},
                {"codes_used", "codes", ED_FIGURE_USED},
                {"perplexity", "codes", ED_FIGURE_PERPLEXITY}},
    .figure_nodes = model_figures,
    .reconstruct = model_reconstruct,
};
