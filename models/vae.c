#include "models/vae.h"
#include "models/conv_image.h"
#include "models/registry.h"
#include "runtime/error.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

static const char *const likelihoods[] = {"bernoulli", "gaussian", NULL};
static const char *const archs[] = {"mlp", "conv", NULL};

#define VAE(field) offsetof(ed_vae_opts, field)
const ed_option ed_vae_options[] = {
    {"latent", ED_OPTION_INT, VAE(latent), 32, 1, 65536, NULL, "latent dimension", NULL},
    {"encoder", ED_OPTION_SIZES, VAE(encoder), 0, 1, 65536, NULL, "encoder hidden widths", "256,128"},
    {"decoder", ED_OPTION_SIZES, VAE(decoder), 0, 1, 65536, NULL, "decoder hidden widths", "128,256"},
    {"activation", ED_OPTION_ENUM, VAE(activation), ED_ACT_RELU, 0, 0, ed_activation_names, "after every hidden layer",
     NULL},
    {"beta", ED_OPTION_REAL, VAE(beta), 1, 0, 1e6, NULL, "KL weight in the loss (beta-VAE)", NULL},
    {"likelihood", ED_OPTION_ENUM, VAE(likelihood), ED_VAE_BERNOULLI, 0, 0, likelihoods,
     "p(x | z): bernoulli for [0, 1] data, or gaussian", NULL},
    {"gaussian_sigma", ED_OPTION_REAL, VAE(gaussian_sigma), 0.1, 1e-6, 1e6, NULL,
     "fixed std of the gaussian likelihood", NULL},
    {"arch", ED_OPTION_ENUM, VAE(arch), ED_VAE_MLP, 0, 0, archs,
     "mlp, or conv: stride-2 convolutions on images, transposed ones back", NULL},
    {"channels", ED_OPTION_SIZES, VAE(channels), 0, 1, 4096, NULL, "conv: channels of the encoder's convolutions",
     "32,64"},
};
#undef VAE

void ed_vae_defaults(ed_vae_opts *o)
{
    *o = (ed_vae_opts){0};
    ed_options_defaults(ed_vae_options, ED_VAE_NOPTIONS, o);
}

/* Sum over the last axis: per-element terms to per-sample ones. */
static ed_node *sum_last(ed_node *x) { return x ? ed_sum(x, ed_axis_bit(x, -1), false) : NULL; }

static bool check_opts(ed_graph *g, const ed_vae_opts *o)
{
    if (o->latent < 1 || o->data_dim < 1) {
        ed_graph_fail(g, "vae: latent (%lld) and data_dim (%lld) must be >= 1", (long long)o->latent,
                      (long long)o->data_dim);
        return false;
    }
    if ((unsigned)o->activation >= ED_ACT_COUNT || (unsigned)o->likelihood >= ED_VAE_LIKELIHOOD_COUNT ||
        o->encoder.n < 0 || o->encoder.n > ED_SIZES_MAX || o->decoder.n < 0 || o->decoder.n > ED_SIZES_MAX) {
        ed_graph_fail(g, "vae: activation, likelihood or a hidden-size list is out of range");
        return false;
    }
    if (o->likelihood == ED_VAE_GAUSSIAN && !(o->gaussian_sigma > 0)) {
        ed_graph_fail(g, "vae: gaussian_sigma must be > 0, got %g", o->gaussian_sigma);
        return false;
    }
    if ((unsigned)o->arch >= ED_VAE_ARCH_COUNT) {
        ed_graph_fail(g, "vae: arch %d is out of range", o->arch);
        return false;
    }
    if (o->arch == ED_VAE_CONV)
        return ed_conv_image_check(g, "vae --arch conv", o->image, o->data_dim, o->channels.n, ED_SIZES_MAX);
    return true;
}

/* ---- the convolutional networks ----------------------------------------------------- */

/* 4x4 kernels, stride 2, padding 1: a side halves (conv) or doubles (transposed). */
static const ed_conv_opts halve = {.stride = {2, 2}, .padding = {1, 1}};

/* x [B, D] -> the flattened features [B, F] of the last convolution. */
static ed_node *conv_features(ed_node *x, const ed_vae_opts *o)
{
    int64_t b = x->shape.dim[0];
    ed_node *h = ed_reshape(x, ed_shape4(b, o->image[0], o->image[1], o->image[2]));
    for (int i = 0; i < o->channels.n; i++) {
        char name[16];
        snprintf(name, sizeof name, "conv%d", i);
        h = ed_activate(ed_conv2d_layer(h, name, o->channels.v[i], 4, &halve, true), (ed_activation)o->activation);
    }
    return h ? ed_reshape(h, ed_shape2(b, ed_shape_numel(h->shape) / b)) : NULL;
}

/* z [..., latent] -> [..., D]: the leading axes become one batch axis for the convolutions. */
static ed_node *conv_decode(ed_node *z, const ed_vae_opts *o)
{
    int n = o->channels.n;
    int64_t rows = ed_shape_numel(z->shape) / o->latent, top = o->channels.v[n - 1];
    int64_t h0 = o->image[1] >> n, w0 = o->image[2] >> n;
    ed_node *h = ed_reshape(z, ed_shape2(rows, o->latent));
    h = ed_activate(ed_dense(h, "fc", top * h0 * w0, true), (ed_activation)o->activation);
    h = h ? ed_reshape(h, ed_shape4(rows, top, h0, w0)) : NULL;
    for (int i = n - 1; i >= 0; i--) {
        char name[16];
        snprintf(name, sizeof name, "up%d", n - 1 - i);
        h = ed_conv_transpose2d_layer(h, name, i ? o->channels.v[i - 1] : o->image[0], 4, &halve, true);
        if (i) h = ed_activate(h, (ed_activation)o->activation);
    }
    if (!h) return NULL;
    ed_shape s = z->shape;
    s.dim[s.rank - 1] = o->data_dim;
    return ed_reshape(h, s);
}

/* x must be a float [B, D] batch. */
static bool check_data(ed_node *x, const ed_vae_opts *o, const char *what)
{
    if (!x || ed_graph_error(x->graph) || !check_opts(x->graph, o)) return false;
    if (x->shape.rank != 2 || x->shape.dim[1] != o->data_dim || !ed_dtype_is_float(x->dtype)) {
        char t[64];
        ed_graph_fail(x->graph, "vae %s: x is %s, need a float [B, %lld] batch", what,
                      ed_type_str(x->dtype, x->shape, t, sizeof t), (long long)o->data_dim);
        return false;
    }
    return true;
}

/* eps must be [..., B, latent] of x's dtype with `lead` leading axes. */
static bool check_eps(ed_node *x, ed_node *eps, int lead, const ed_vae_opts *o, const char *what)
{
    if (!eps || !check_data(x, o, what)) return false;
    if (eps->dtype != x->dtype || eps->shape.rank != lead + 2 || eps->shape.dim[lead] != x->shape.dim[0] ||
        eps->shape.dim[lead + 1] != o->latent) {
        char t[64];
        ed_graph_fail(x->graph, "vae %s: eps is %s, need %s[%sB = %lld, latent = %lld]", what,
                      ed_type_str(eps->dtype, eps->shape, t, sizeof t), ed_dtype_name(x->dtype), lead ? "k, " : "",
                      (long long)x->shape.dim[0], (long long)o->latent);
        return false;
    }
    return true;
}

ed_node *ed_vae_encode(ed_node *x, const ed_vae_opts *o, ed_node **log_var)
{
    ed_node *unused;
    if (!log_var) log_var = &unused;
    *log_var = NULL;
    if (!check_data(x, o, "encoder")) return NULL;
    ed_graph *g = x->graph;
    ed_scope_push(g, "vae");
    ed_node *h = x;
    if (o->arch == ED_VAE_CONV) {
        ed_scope_push(g, "enc");
        h = conv_features(x, o);
        ed_scope_pop(g);
    } else if (o->encoder.n > 0) {
        h = ed_mlp(x, "enc", o->encoder.v, o->encoder.n, (ed_activation)o->activation, true);
    }
    ed_scope_push(g, "enc");
    ed_node *mu = ed_dense(h, "mu", o->latent, true);
    *log_var = ed_dense(h, "log_var", o->latent, true);
    ed_scope_pop(g);
    ed_scope_pop(g);
    return mu;
}

ed_node *ed_vae_decode(ed_node *z, const ed_vae_opts *o)
{
    if (!z || ed_graph_error(z->graph) || !check_opts(z->graph, o)) return NULL;
    if (z->shape.rank < 2 || z->shape.dim[z->shape.rank - 1] != o->latent || !ed_dtype_is_float(z->dtype)) {
        char t[64];
        return ed_graph_fail(z->graph, "vae decoder: z is %s, need a float [..., %lld]",
                             ed_type_str(z->dtype, z->shape, t, sizeof t), (long long)o->latent);
    }
    /* The hidden widths, then D with no activation after it. */
    int64_t sizes[ED_SIZES_MAX + 1];
    for (int i = 0; i < o->decoder.n; i++) sizes[i] = o->decoder.v[i];
    sizes[o->decoder.n] = o->data_dim;
    ed_scope_push(z->graph, "vae");
    ed_node *out;
    if (o->arch == ED_VAE_CONV) {
        ed_scope_push(z->graph, "dec");
        out = conv_decode(z, o);
        ed_scope_pop(z->graph);
    } else {
        out = ed_mlp(z, "dec", sizes, o->decoder.n + 1, (ed_activation)o->activation, false);
    }
    ed_scope_pop(z->graph);
    return out;
}

ed_node *ed_vae_mean(ed_node *out, const ed_vae_opts *o)
{
    if (!out) return NULL;
    return o->likelihood == ED_VAE_BERNOULLI ? ed_sigmoid(out) : out;
}

ed_node *ed_vae_recon_nll(ed_node *x, ed_node *out, const ed_vae_opts *o)
{
    if (!x || !out) return NULL;
    if (o->likelihood == ED_VAE_BERNOULLI)
        /* -x log s(l) - (1 - x) log(1 - s(l)) = softplus(l) - x l, with no log of 0 anywhere. */
        return sum_last(ed_sub(ed_softplus(out), ed_mul(x, out)));
    double sigma = o->gaussian_sigma;
    ed_node *sq = sum_last(ed_square(ed_sub(x, out)));
    double per_element = log(sigma) + 0.5 * log(2 * 3.14159265358979323846);
    return ed_add_scalar(ed_mul_scalar(sq, 0.5 / (sigma * sigma)), per_element * (double)o->data_dim);
}

ed_node *ed_vae_kl(ed_node *mu, ed_node *log_var)
{
    if (!mu || !log_var) return NULL;
    ed_node *t = ed_sub(ed_add(ed_square(mu), ed_exp(log_var)), ed_add_scalar(log_var, 1));
    return ed_mul_scalar(sum_last(t), 0.5);
}

/* z = mu + exp(log_var / 2) eps, eps [..., B, latent] broadcasting over leading axes. */
static ed_node *reparameterize(ed_node *mu, ed_node *log_var, ed_node *eps)
{
    return ed_add(mu, ed_mul(ed_exp(ed_mul_scalar(log_var, 0.5)), eps));
}

ed_node *ed_vae_neg_elbo_eps(ed_node *x, ed_node *eps, const ed_vae_opts *o)
{
    if (!check_eps(x, eps, 0, o, "neg_elbo")) return NULL;
    ed_node *log_var, *mu = ed_vae_encode(x, o, &log_var);
    ed_node *out = ed_vae_decode(reparameterize(mu, log_var, eps), o);
    ed_node *kl = ed_vae_kl(mu, log_var);
    return ed_add(ed_vae_recon_nll(x, out, o), o->beta == 1 ? kl : ed_mul_scalar(kl, o->beta));
}

ed_node *ed_vae_neg_elbo(ed_graph *g, ed_node *x, const ed_vae_opts *o)
{
    if (!check_data(x, o, "neg_elbo")) return NULL;
    ed_node *eps = ed_randn(g, x->dtype, ed_shape2(x->shape.dim[0], o->latent));
    return ed_vae_neg_elbo_eps(x, eps, o);
}

ed_node *ed_vae_loss(ed_graph *g, ed_node *x, const ed_vae_opts *o)
{
    ed_node *per_sample = ed_vae_neg_elbo(g, x, o);
    return per_sample ? ed_mean(per_sample, ED_ALL_AXES, false) : NULL;
}

ed_node *ed_vae_iwae_eps(ed_node *x, ed_node *eps, const ed_vae_opts *o)
{
    if (!check_eps(x, eps, 1, o, "iwae")) return NULL;
    int64_t k = eps->shape.dim[0];
    ed_node *log_var, *mu = ed_vae_encode(x, o, &log_var);
    ed_node *z = reparameterize(mu, log_var, eps); /* [k, B, latent] */
    ed_node *out = ed_vae_decode(z, o);            /* [k, B, D] */
    /* log p(z) - log q(z | x) = (sum eps^2 + sum log_var - sum z^2) / 2: the 2 pi terms
     * cancel and (z - mu)^2 / var is eps^2. */
    ed_node *eps_minus_z = ed_sub(sum_last(ed_square(eps)), sum_last(ed_square(z)));
    ed_node *prior_ratio = ed_mul_scalar(ed_add(eps_minus_z, sum_last(log_var)), 0.5);
    ed_node *log_w = ed_sub(prior_ratio, ed_vae_recon_nll(x, out, o)); /* [k, B] */
    return ed_sub(ed_scalar_like(x, log((double)k)), ed_logsumexp(log_w, 0, false));
}

ed_node *ed_vae_iwae(ed_graph *g, ed_node *x, int64_t k, const ed_vae_opts *o)
{
    if (!check_data(x, o, "iwae")) return NULL;
    if (k < 1) return ed_graph_fail(g, "vae iwae: k must be >= 1, got %lld", (long long)k);
    ed_node *eps = ed_randn(g, x->dtype, ed_shape3(k, x->shape.dim[0], o->latent));
    return ed_vae_iwae_eps(x, eps, o);
}

ed_node *ed_vae_sample(ed_graph *g, int64_t n, const ed_vae_opts *o)
{
    if (ed_graph_error(g) || !check_opts(g, o)) return NULL;
    if (n < 1) return ed_graph_fail(g, "vae sample: n must be >= 1, got %lld", (long long)n);
    ed_node *z = ed_randn(g, ED_F32, ed_shape2(n, o->latent));
    return ed_vae_mean(ed_vae_decode(z, o), o);
}

ed_node *ed_vae_reconstruct(ed_node *x, const ed_vae_opts *o)
{
    return ed_vae_mean(ed_vae_decode(ed_vae_encode(x, o, NULL), o), o);
}

/* ---- the registry entry ------------------------------------------------------------- */

/* The eval figure's importance samples (the K = 100). */
enum { IWAE_SAMPLES = 100 };

static void model_defaults(ed_gen_model *m)
{
    ed_vae_defaults(&m->opts.vae);
    m->opts.vae.data_dim = ed_gen_model_dim(m);
    ed_gen_model_image(m, m->opts.vae.image);
}

static int model_check(const ed_gen_model *m)
{
    if (m->obs_size) return ed_fail("model vae is unconditional: the data have observations");
    if (m->opts.vae.arch == ED_VAE_CONV) {
        int64_t chw[3];
        if (!ed_gen_model_image(m, chw))
            return ed_fail("model vae --arch conv needs images ([H, W] or [C, H, W] samples); these data are not");
        for (int i = 0; i < ED_VAE_NOPTIONS; i++) {
            const ed_option *op = &ed_vae_options[i];
            char has[64], def[64];
            if (strcmp(op->name, "encoder") && strcmp(op->name, "decoder")) continue;
            ed_option_default_str(op, def, sizeof def);
            if (strcmp(ed_gen_model_get(m, op->name, has, sizeof has), def) != 0)
                return ed_fail("model vae --arch conv: --%s is the mlp's widths (set --channels instead)", op->name);
        }
        int n = m->opts.vae.channels.n;
        if (chw[1] % (1 << n) || chw[2] % (1 << n))
            return ed_fail("model vae --arch conv: %d stride-2 layers (--channels) need H and W divisible by %d; the "
                           "images are %lldx%lld",
                           n, 1 << n, (long long)chw[1], (long long)chw[2]);
    }
    if (m->opts.vae.likelihood == ED_VAE_BERNOULLI && !m->unit_range)
        return ed_fail("model vae: the Bernoulli likelihood needs data in [0, 1]; these data leave it "
                       "(use --likelihood gaussian)");
    return ED_OK;
}

static ed_node *model_loss(ed_graph *g, const ed_gen_model *m, const ed_batch *b)
{
    return ed_vae_loss(g, ed_gen_model_flatten(m, b->x), &m->opts.vae);
}

static ed_node *model_sample(ed_graph *g, const ed_gen_model *m, int64_t n, ed_node *obs, ed_node *labels,
                             const ed_gen_sample_opts *so)
{
    (void)obs, (void)labels;
    if (!ed_gen_model_plain_sampler(g, m, so, "the decoder's mean at z ~ N(0, I)")) return NULL;
    return ed_gen_model_unflatten(m, ed_vae_sample(g, n, &m->opts.vae));
}

static ed_node *model_reconstruct(ed_graph *g, const ed_gen_model *m, ed_node *x)
{
    (void)g;
    return ed_gen_model_unflatten(m, ed_vae_reconstruct(ed_gen_model_flatten(m, x), &m->opts.vae));
}

/* The negative ELBO (with the model's beta) and the K = 100 importance-weighted bound on
 * -log p(x), both in nats per sample. */
static int model_figures(ed_graph *g, const ed_gen_model *m, const ed_batch *b, ed_node **out)
{
    ed_node *x = ed_gen_model_flatten(m, b->x);
    out[0] = ed_vae_neg_elbo(g, x, &m->opts.vae);
    out[1] = ed_vae_iwae(g, x, IWAE_SAMPLES, &m->opts.vae);
    return ed_graph_error(g) ? ED_ERR : ED_OK;
}

const ed_model_def ed_vae_model = {
    .name = "vae",
    .summary = "variational autoencoder (beta-VAE), Bernoulli or Gaussian decoder, samples from the prior",
    .options = ed_vae_options,
    .noptions = ED_VAE_NOPTIONS,
    .defaults = model_defaults,
    .check = model_check,
    .nsteps = 1,
    .steps = {{.name = "train", .loss = model_loss}},
    .sample = model_sample,
    .samplers = "prior",
    .nfigures = 2,
    .figures = {{"neg_elbo", "nats/sample", ED_FIGURE_MEAN}, {"iwae_nll", "nats/sample", ED_FIGURE_MEAN}},
    .figure_nodes = model_figures,
    .reconstruct = model_reconstruct,
};
