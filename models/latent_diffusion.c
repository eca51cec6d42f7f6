/* Latent diffusion (see latent_diffusion.h): its options, the scale factor, the loss
 * in latent space and the sampler that decodes, and the registry's entry. */
#include "models/latent_diffusion.h"
#include "models/generate.h"
#include "models/registry.h"
#include "runtime/error.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

static const char *const solvers[] = {"euler", "midpoint", "heun", "rk4", NULL};
static const char *const likelihoods[] = {"bernoulli", "gaussian", NULL};

#define LD(field) offsetof(ed_latent_opts, field)
const ed_option ed_latent_options[] = {
    {"vae", ED_OPTION_PATH, LD(vae_path), 0, 0, 0, NULL, "a trained vae checkpoint (frozen; copied into this one)", ""},
    {"scale", ED_OPTION_REAL, LD(scale), 0, 0, 1e9, NULL,
     "latent scale factor (0: 1 / std of the training latents, computed at the start)", NULL},
    {"hidden", ED_OPTION_INT, LD(fm.net.hidden), 256, 2, 65536, NULL, "width of the latent denoiser (even)", NULL},
    {"layers", ED_OPTION_INT, LD(fm.net.layers), 4, 0, 64, NULL, "pre-LayerNorm residual MLP blocks", NULL},
    {"expansion", ED_OPTION_INT, LD(fm.net.expansion), 4, 1, 64, NULL, "block inner width / hidden", NULL},
    {"time_scale", ED_OPTION_REAL, LD(fm.net.time_scale), 1000, 1e-6, 1e9, NULL,
     "t is scaled by this before the sinusoidal embedding", NULL},
    {"sigma_min", ED_OPTION_REAL, LD(fm.sigma_min), 0, 0, 0.999, NULL, "noise left at t = 1 (0: rectified flow)", NULL},
    {"cond_dropout", ED_OPTION_REAL, LD(fm.cond_dropout), 0.1, 0, 1, NULL,
     "training probability of the null class (CFG; 0 without labels)", NULL},
    {"solver", ED_OPTION_ENUM, LD(fm.solver), ED_FM_EULER, 0, 0, solvers, "ODE solver for sampling", NULL},
    {"sample_steps", ED_OPTION_INT, LD(fm.sample_steps), 20, 1, 100000, NULL, "ODE steps for sampling", NULL},
    {"guidance_scale", ED_OPTION_REAL, LD(fm.guidance_scale), 1, 0, 100, NULL,
     "classifier-free guidance scale (1: none)", NULL},
    {"vae_latent", ED_OPTION_INT, LD(vae.latent), 32, 1, 65536, NULL, "the VAE's latent size (from --vae)", NULL},
    {"vae_encoder", ED_OPTION_SIZES, LD(vae.encoder), 0, 1, 65536, NULL, "the VAE's encoder widths (from --vae)",
     "256,128"},
    {"vae_decoder", ED_OPTION_SIZES, LD(vae.decoder), 0, 1, 65536, NULL, "the VAE's decoder widths (from --vae)",
     "128,256"},
    {"vae_activation", ED_OPTION_ENUM, LD(vae.activation), ED_ACT_RELU, 0, 0, ed_activation_names,
     "the VAE's activation (from --vae)", NULL},
    {"vae_likelihood", ED_OPTION_ENUM, LD(vae.likelihood), ED_VAE_BERNOULLI, 0, 0, likelihoods,
     "the VAE's likelihood (from --vae)", NULL},
};
#undef LD

ed_node *ed_latent_encode(ed_node *x, const ed_latent_opts *o)
{
    if (!x) return NULL;
    ed_graph *g = x->graph;
    ed_scope_push(g, ED_LATENT_VAE_SCOPE);
    ed_node *mu = ed_vae_encode(x, &o->vae, NULL);
    ed_scope_pop(g);
    return ed_mul_scalar(mu, o->scale);
}

ed_node *ed_latent_decode(ed_node *z, const ed_latent_opts *o)
{
    if (!z) return NULL;
    ed_graph *g = z->graph;
    ed_scope_push(g, ED_LATENT_VAE_SCOPE);
    ed_node *x = ed_vae_mean(ed_vae_decode(ed_mul_scalar(z, 1 / o->scale), &o->vae), &o->vae);
    ed_scope_pop(g);
    return x;
}

/* ---- the registry's entry ------------------------------------------------------------ */

static void latent_defaults(ed_gen_model *m)
{
    ed_latent_opts *o = &m->opts.latent;
    *o = (ed_latent_opts){0};
    ed_fm_defaults(&o->fm);
    ed_vae_defaults(&o->vae);
    ed_options_defaults(ed_latent_options, ED_LATENT_NOPTIONS, o);
    if (m->classes == 0) o->fm.cond_dropout = 0;
}

static int latent_check(const ed_gen_model *m)
{
    if (m->obs_size > 0) return ed_fail("latent_diffusion: observations are not supported (class labels are)");
    return ED_OK;
}

/* The options with what the data fix: the VAE's width D and the denoiser's condition
 * (a one-hot class). */
static ed_latent_opts opts_of(const ed_gen_model *m)
{
    ed_latent_opts o = m->opts.latent;
    o.vae.data_dim = ed_gen_model_dim(m);
    o.fm.net.obs_size = m->classes;
    return o;
}

static int adopt_vae(ed_gen_model *m, const ed_gen_model *vae)
{
    m->opts.latent.vae = vae->opts.vae;
    return ED_OK;
}

enum { SCALE_ROWS = 10000, SCALE_BATCH = 500 };

/* 1 / std of the latent means of the first rows of the training data, in double. */
static int latent_prepare(ed_gen_model *m, ed_store *st, const ed_dataset *d, uint64_t seed, ed_backend backend)
{
    if (m->opts.latent.scale > 0) return ED_OK; /* given */
    ed_latent_opts o = opts_of(m);
    o.scale = 1;
    int64_t rows = ed_dataset_rows(d) < SCALE_ROWS ? ed_dataset_rows(d) : SCALE_ROWS;
    int64_t b = rows < SCALE_BATCH ? rows : SCALE_BATCH, dim = ed_gen_model_dim(m);
    ed_graph *g = ed_graph_new("latent_scale");
    if (!g) return ED_ERR;
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(b, dim));
    ed_output(g, "z", ed_latent_encode(x, &o));
    ed_program *p = NULL;
    int status = ed_graph_error(g) ? ed_fail("latent_diffusion: %s", ed_graph_error(g)) : ED_OK;
    if (status == ED_OK) {
        p = ed_compile(g, st, &(ed_compile_opts){.backend = backend, .seed = seed});
        if (!p) status = ED_ERR;
    }
    double sum = 0, sum2 = 0;
    int64_t count = 0;
    for (int64_t start = 0; status == ED_OK && start + b <= rows; start += b) {
        const float *rowp = (const float *)d->x->data + start * dim;
        ed_tensor *xb = ed_tensor_wrap(ED_F32, ed_shape2(b, dim), (void *)rowp);
        status = xb ? ed_run(p, (ed_feed[]){{"x", xb}}, 1) : ED_ERR;
        ed_tensor_free(xb);
        if (status != ED_OK) break;
        const ed_tensor *z = ed_program_output(p, "z");
        for (int64_t i = 0; i < ed_tensor_numel(z); i++) {
            double v = ((const float *)z->data)[i];
            sum += v, sum2 += v * v;
        }
        count += ed_tensor_numel(z);
    }
    ed_program_free(p);
    ed_graph_free(g);
    if (status != ED_OK) return ED_ERR;
    double mean = sum / (double)count, var = sum2 / (double)count - mean * mean;
    if (!(var > 0) || !isfinite(var))
        return ed_fail("latent_diffusion: the VAE's latents of these data have variance %g; no scale factor", var);
    m->opts.latent.scale = 1 / sqrt(var);
    return ED_OK;
}

/* The class as the denoiser's condition: one-hot, or the null condition for NULL. */
static ed_node *class_cond(ed_node *labels, int64_t classes)
{
    return labels ? ed_one_hot(labels, classes, ED_F32) : NULL;
}

static ed_node *latent_loss(ed_graph *g, const ed_gen_model *m, const ed_batch *b)
{
    ed_latent_opts o = opts_of(m);
    ed_node *z = ed_latent_encode(ed_gen_model_flatten(m, b->x), &o);
    return ed_fm_loss(g, z, class_cond(b->labels, m->classes), &o.fm);
}

/* The flow-matching loss per test sample in latent space, its class never dropped:
 * what the trained loss is, held-out. [B] */
static int latent_figures(ed_graph *g, const ed_gen_model *m, const ed_batch *b, ed_node **out)
{
    ed_latent_opts o = opts_of(m);
    ed_node *z1 = ed_latent_encode(ed_gen_model_flatten(m, b->x), &o);
    if (!z1) return ED_ERR;
    int64_t n = z1->shape.dim[0];
    ed_node *t = ed_rand(g, ED_F32, ed_shape1(n), 0, 1);
    ed_node *z0 = ed_randn(g, ED_F32, z1->shape);
    ed_node *u = ed_sub(z1, ed_mul_scalar(z0, 1 - o.fm.sigma_min));
    ed_node *zt = ed_add(z0, ed_mul(ed_reshape(t, ed_shape2(n, 1)), u));
    ed_node *v = ed_fm_velocity(zt, t, class_cond(b->labels, m->classes), NULL, &o.fm);
    out[0] = ed_mean(ed_square(ed_sub(v, u)), 1u << 1, false);
    return out[0] ? ED_OK : ED_ERR;
}

/* The denoiser in latent space: the model of the inner sampler. */
static ed_node *latent_denoise(ed_graph *g, const ed_gen_model *m, ed_node *z, ed_node *t, ed_node *cond,
                               ed_node *labels)
{
    (void)g, (void)cond;
    ed_latent_opts o = opts_of(m);
    return ed_fm_velocity(z, t, class_cond(labels, m->classes), NULL, &o.fm);
}

static void latent_sampling(const ed_gen_model *m, ed_denoiser_sampling *s)
{
    const ed_latent_opts *o = &m->opts.latent;
    *s = (ed_denoiser_sampling){.pred = "velocity",
                                .samplers = "euler|midpoint|heun|rk4",
                                .fm = &o->fm,
                                .guidance = o->fm.guidance_scale,
                                .guidable = m->classes > 0 && o->fm.cond_dropout > 0};
}

/* The sampler's view: a denoiser family over latent vectors [latent]. */
static const ed_model_def latent_space = {
    .name = "latent_diffusion",
    .uses_labels = true,
    .options = ed_latent_options,
    .noptions = ED_LATENT_NOPTIONS,
    .samplers = "euler|midpoint|heun|rk4",
    .pred = "velocity",
    .denoise = latent_denoise,
    .sampling = latent_sampling,
};

/* Latents from the ODE, decoded: one graph, so one compiled call draws images. */
static ed_node *latent_sample(ed_graph *g, const ed_gen_model *m, int64_t n, ed_node *obs, ed_node *labels,
                              const ed_gen_sample_opts *so)
{
    (void)obs;
    ed_gen_model inner = *m;
    inner.def = &latent_space;
    inner.sample = ed_shape1(m->opts.latent.vae.latent);
    ed_node *z = ed_denoiser_sample(g, &inner, n, NULL, labels, so);
    ed_latent_opts o = opts_of(m);
    ed_node *x = ed_latent_decode(z, &o);
    return x ? ed_gen_model_unflatten(m, ed_clamp(x, 0, 1)) : NULL;
}

static const char *const denoiser_group[] = {"fm.", NULL};

const ed_model_def ed_latent_diffusion_model = {
    .name = "latent_diffusion",
    .summary = "flow matching in the latent space of a frozen VAE (--vae CKPT), decoded when sampling",
    .uses_labels = true,
    .options = ed_latent_options,
    .noptions = ED_LATENT_NOPTIONS,
    .defaults = latent_defaults,
    .check = latent_check,
    .nsteps = 1,
    .steps = {{.name = "train", .groups = denoiser_group, .loss = latent_loss}},
    .nfrozen = 1,
    .frozen = {{.option = "vae", .model = "vae", .scope = ED_LATENT_VAE_SCOPE, .adopt = adopt_vae}},
    .prepare = latent_prepare,
    .sample = latent_sample,
    .samplers = "euler|midpoint|heun|rk4",
    .nfigures = 1,
    .figures = {{"latent_mse", "per latent element", ED_FIGURE_MEAN}},
    .figure_nodes = latent_figures,
    .sampling = latent_sampling,
};
