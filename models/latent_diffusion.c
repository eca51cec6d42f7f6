/* Latent diffusion (see latent_diffusion.h): its options, the scale factor, the loss
 * in latent space and the sampler that decodes, and the registry's entry. */
#include "models/latent_diffusion.h"
#include "models/dit.h"
#include "models/generate.h"
#include "models/registry.h"
#include "runtime/error.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

static const char *const solvers[] = {"euler", "midpoint", "heun", "rk4", NULL};
static const char *const likelihoods[] = {"bernoulli", "gaussian", NULL};
static const char *const denoisers[] = {"mlp", "dit", NULL};
static const char *const objectives[] = {"diffusion", "flow_matching", NULL}; /* as dit's */
static const char *const schedules[] = {"linear", "cosine", NULL};
static const char *const vae_archs[] = {"mlp", "conv", NULL}; /* as vae's */

#define LD(field) offsetof(ed_latent_opts, field)
const ed_option ed_latent_options[] = {
    {"vae", ED_OPTION_PATH, LD(vae_path), 0, 0, 0, NULL, "a trained vae checkpoint (frozen; copied into this one)", ""},
    {"scale", ED_OPTION_REAL, LD(scale), 0, 0, 1e9, NULL,
     "latent scale factor (0: 1 / std of the training latents, computed at the start)", NULL},
    {"denoiser", ED_OPTION_ENUM, LD(denoiser), ED_LATENT_MLP, 0, 0, denoisers,
     "the latent denoiser: residual MLP, or DiT on runs of latent_patch latent values", NULL},
    {"objective", ED_OPTION_ENUM, LD(objective), ED_DIT_FLOW, 0, 0, objectives,
     "flow_matching (velocity, ODE solvers) or diffusion (eps, ddpm|ddim)", NULL},
    {"hidden", ED_OPTION_INT, LD(fm.net.hidden), 256, 2, 65536, NULL, "width of the latent denoiser (even)", NULL},
    {"layers", ED_OPTION_INT, LD(fm.net.layers), 4, 0, 64, NULL, "residual MLP blocks, or DiT blocks", NULL},
    {"expansion", ED_OPTION_INT, LD(fm.net.expansion), 4, 1, 64, NULL, "block inner width / hidden", NULL},
    {"heads", ED_OPTION_INT, LD(heads), 4, 1, 256, NULL, "dit: attention heads (divide hidden)", NULL},
    {"latent_patch", ED_OPTION_INT, LD(latent_patch), 2, 1, 65536, NULL,
     "dit: latent values per token (divides the VAE's latent)", NULL},
    {"time_scale", ED_OPTION_REAL, LD(fm.net.time_scale), 1000, 1e-6, 1e9, NULL,
     "mlp, flow_matching: t is scaled by this before the sinusoidal embedding", NULL},
    {"sigma_min", ED_OPTION_REAL, LD(fm.sigma_min), 0, 0, 0.999, NULL,
     "flow_matching: noise left at t = 1 (0: rectified flow)", NULL},
    {"cond_dropout", ED_OPTION_REAL, LD(fm.cond_dropout), 0.1, 0, 1, NULL,
     "training probability of the null class (CFG; 0 without labels)", NULL},
    {"solver", ED_OPTION_ENUM, LD(fm.solver), ED_FM_EULER, 0, 0, solvers, "flow_matching: ODE solver for sampling",
     NULL},
    {"sample_steps", ED_OPTION_INT, LD(fm.sample_steps), 20, 1, 100000, NULL, "flow_matching: ODE steps for sampling",
     NULL},
    {"guidance_scale", ED_OPTION_REAL, LD(fm.guidance_scale), 1, 0, 100, NULL,
     "classifier-free guidance scale (1: none)", NULL},
    {"timesteps", ED_OPTION_INT, LD(diffusion.timesteps), 1000, 1, 100000, NULL, "diffusion: steps T", NULL},
    {"beta_schedule", ED_OPTION_ENUM, LD(diffusion.beta_schedule), ED_DIFF_BETA_LINEAR, 0, 0, schedules,
     "diffusion: noise schedule", NULL},
    {"beta_start", ED_OPTION_REAL, LD(diffusion.beta_start), 1e-4, 1e-8, 0.5, NULL, "diffusion: first beta (linear)",
     NULL},
    {"beta_end", ED_OPTION_REAL, LD(diffusion.beta_end), 0.02, 1e-8, 0.999, NULL, "diffusion: last beta (linear)",
     NULL},
    {"ddim_steps", ED_OPTION_INT, LD(diffusion.ddim_steps), 50, 1, 100000, NULL, "diffusion: DDIM sampling steps",
     NULL},
    {"eta", ED_OPTION_REAL, LD(diffusion.eta), 0, 0, 1, NULL, "diffusion: DDIM noise (0 deterministic, 1 DDPM-like)",
     NULL},
    {"clip_x0", ED_OPTION_REAL, LD(diffusion.clip_x0), 0, 0, 1e6, NULL,
     "diffusion: clamp the predicted x0 to [-c, c] (0: off; the latents have unit std)", NULL},
    {"vae_latent", ED_OPTION_INT, LD(vae.latent), 32, 1, 65536, NULL,
     "the VAE's latent size (read from --vae; if given, must equal it)", NULL},
    {"vae_encoder", ED_OPTION_SIZES, LD(vae.encoder), 0, 1, 65536, NULL, "the VAE's encoder widths (from --vae)",
     "256,128"},
    {"vae_decoder", ED_OPTION_SIZES, LD(vae.decoder), 0, 1, 65536, NULL, "the VAE's decoder widths (from --vae)",
     "128,256"},
    {"vae_activation", ED_OPTION_ENUM, LD(vae.activation), ED_ACT_RELU, 0, 0, ed_activation_names,
     "the VAE's activation (from --vae)", NULL},
    {"vae_likelihood", ED_OPTION_ENUM, LD(vae.likelihood), ED_VAE_BERNOULLI, 0, 0, likelihoods,
     "the VAE's likelihood (from --vae)", NULL},
    {"vae_arch", ED_OPTION_ENUM, LD(vae.arch), ED_VAE_MLP, 0, 0, vae_archs, "the VAE's architecture (from --vae)",
     NULL},
    {"vae_channels", ED_OPTION_SIZES, LD(vae.channels), 0, 1, 4096, NULL, "the conv VAE's channels (from --vae)",
     "32,64"},
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
    ed_ddim_defaults(&o->diffusion);
    ed_vae_defaults(&o->vae);
    ed_options_defaults(ed_latent_options, ED_LATENT_NOPTIONS, o);
    if (m->classes == 0) o->fm.cond_dropout = 0;
}

/* Options of one denoiser or one objective (-1: any), so one given for another is an
 * error rather than a silent no-op. */
static const struct {
    const char *name;
    int denoiser, objective;
} narrow_options[] = {
    {"heads", ED_LATENT_DIT, -1},
    {"latent_patch", ED_LATENT_DIT, -1},
    {"time_scale", ED_LATENT_MLP, ED_DIT_FLOW},
    {"sigma_min", -1, ED_DIT_FLOW},
    {"solver", -1, ED_DIT_FLOW},
    {"sample_steps", -1, ED_DIT_FLOW},
    {"timesteps", -1, ED_DIT_DIFFUSION},
    {"beta_schedule", -1, ED_DIT_DIFFUSION},
    {"beta_start", -1, ED_DIT_DIFFUSION},
    {"beta_end", -1, ED_DIT_DIFFUSION},
    {"ddim_steps", -1, ED_DIT_DIFFUSION},
    {"eta", -1, ED_DIT_DIFFUSION},
    {"clip_x0", -1, ED_DIT_DIFFUSION},
};

static int check_narrow_options(const ed_gen_model *m)
{
    const ed_latent_opts *o = &m->opts.latent;
    for (size_t i = 0; i < sizeof narrow_options / sizeof *narrow_options; i++) {
        int den = narrow_options[i].denoiser, obj = narrow_options[i].objective;
        if (!ed_gen_model_was_set(m, narrow_options[i].name) ||
            ((den < 0 || den == o->denoiser) && (obj < 0 || obj == o->objective)))
            continue;
        char want[96] = "";
        if (den >= 0) snprintf(want, sizeof want, "--denoiser %s", denoisers[den]);
        if (obj >= 0)
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s--objective %s", den >= 0 ? " with " : "",
                     objectives[obj]);
        return ed_fail("latent_diffusion: --%s applies to %s only", narrow_options[i].name, want);
    }
    return ED_OK;
}

static int latent_check(const ed_gen_model *m)
{
    const ed_latent_opts *o = &m->opts.latent;
    if (m->obs_size > 0) return ed_fail("latent_diffusion: observations are not supported (class labels are)");
    if (check_narrow_options(m) != ED_OK) return ED_ERR;
    if (o->denoiser == ED_LATENT_DIT && o->fm.net.hidden % o->heads)
        return ed_fail("latent_diffusion: heads %lld must divide hidden %lld", (long long)o->heads,
                       (long long)o->fm.net.hidden);
    return ED_OK;
}

/* The options with what the data fix: the VAE's width D and the denoiser's condition
 * (a one-hot class); the MLP's settings copied into the diffusion objective's, which
 * feeds it the integer timestep unscaled (as ddpm). */
static ed_latent_opts opts_of(const ed_gen_model *m)
{
    ed_latent_opts o = m->opts.latent;
    o.vae.data_dim = ed_gen_model_dim(m);
    ed_gen_model_image(m, o.vae.image); /* the conv VAE's [C, H, W]; checked in latent_check */
    o.fm.net.obs_size = m->classes;
    o.diffusion.net = o.fm.net;
    o.diffusion.net.time_scale = 1;
    o.diffusion.cond_dropout = o.fm.cond_dropout;
    return o;
}

/* The DiT denoiser's options: hidden, layers (depth) and expansion (MLP ratio) are the
 * MLP's, the objective's settings the model's; 1-D sin-cos positions. */
static ed_dit_opts dit_opts_of(const ed_latent_opts *o)
{
    return (ed_dit_opts){.hidden = o->fm.net.hidden,
                         .depth = o->fm.net.layers,
                         .heads = o->heads,
                         .mlp_ratio = o->fm.net.expansion,
                         .patch = o->latent_patch,
                         .objective = o->objective,
                         .cond_dropout = o->fm.cond_dropout,
                         .guidance_scale = o->fm.guidance_scale,
                         .diffusion = o->diffusion,
                         .fm = o->fm};
}

/* The VAE's architecture options: vae_<name> here is <name> there. */
static const char *const vae_options[] = {"latent",     "encoder", "decoder", "activation",
                                          "likelihood", "arch",    "channels"};

/* The VAE's architecture from its checkpoint; a vae_* option given too must agree. */
static int adopt_vae(ed_gen_model *m, const ed_gen_model *vae)
{
    for (size_t i = 0; i < sizeof vae_options / sizeof *vae_options; i++) {
        char name[32], given[ED_OPTION_TEXT_MAX], has[ED_OPTION_TEXT_MAX];
        snprintf(name, sizeof name, "vae_%s", vae_options[i]);
        if (!ed_gen_model_was_set(m, name)) continue;
        ed_gen_model_get(m, name, given, sizeof given);
        ed_gen_model_get(vae, vae_options[i], has, sizeof has);
        if (strcmp(given, has) != 0)
            return ed_fail("--%s %s was given but the VAE has %s %s (leave --%s out: it is read from the VAE)", name,
                           given, vae_options[i], has, name);
    }
    const ed_latent_opts *o = &m->opts.latent;
    int64_t latent = vae->opts.vae.latent;
    if (o->denoiser == ED_LATENT_DIT && latent % o->latent_patch)
        return ed_fail("--latent_patch %lld must divide the VAE's latent %lld", (long long)o->latent_patch,
                       (long long)latent);
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

/* The class as the MLP's condition: one-hot, or the null condition for NULL. */
static ed_node *class_cond(ed_node *labels, int64_t classes)
{
    return labels ? ed_one_hot(labels, classes, ED_F32) : NULL;
}

/* The loss per latent vector [B] of the denoiser on z [B, latent]; its class dropped
 * with probability cond_dropout (0: never, for the held-out figure). */
static ed_node *sample_loss(ed_graph *g, const ed_gen_model *m, ed_node *z, ed_node *labels, double cond_dropout)
{
    ed_latent_opts o = opts_of(m);
    o.fm.cond_dropout = o.diffusion.cond_dropout = cond_dropout;
    if (o.denoiser == ED_LATENT_DIT) {
        ed_dit_opts d = dit_opts_of(&o);
        return ed_dit_image_loss(g, z, labels, m->classes, &d);
    }
    ed_node *cond = class_cond(labels, m->classes);
    if (o.objective == ED_DIT_FLOW) return ed_fm_sample_loss(g, z, cond, &o.fm);
    return ed_diffusion_sample_loss(g, z, cond, &o.diffusion);
}

static ed_node *latent_loss(ed_graph *g, const ed_gen_model *m, const ed_batch *b)
{
    ed_latent_opts o = opts_of(m);
    ed_node *z = ed_latent_encode(ed_gen_model_flatten(m, b->x), &o);
    return ed_mean(sample_loss(g, m, z, b->labels, o.fm.cond_dropout), ED_ALL_AXES, false);
}

/* The training loss per test sample in latent space, its class never dropped: what
 * the trained loss is, held-out. [B] */
static int latent_figures(ed_graph *g, const ed_gen_model *m, const ed_batch *b, ed_node **out)
{
    ed_latent_opts o = opts_of(m);
    out[0] = sample_loss(g, m, ed_latent_encode(ed_gen_model_flatten(m, b->x), &o), b->labels, 0);
    return out[0] ? ED_OK : ED_ERR;
}

/* The denoiser in latent space: the model of the inner sampler (labels NULL: the null class). */
static ed_node *latent_denoise(ed_graph *g, const ed_gen_model *m, ed_node *z, ed_node *t, ed_node *cond,
                               ed_node *labels)
{
    (void)g, (void)cond;
    ed_latent_opts o = opts_of(m);
    if (o.denoiser == ED_LATENT_DIT) {
        ed_dit_opts d = dit_opts_of(&o);
        return ed_dit_net(z, t, labels, m->classes, &d);
    }
    if (o.objective == ED_DIT_FLOW) return ed_fm_velocity(z, t, class_cond(labels, m->classes), NULL, &o.fm);
    return ed_diffusion_eps(z, t, class_cond(labels, m->classes), NULL, &o.diffusion);
}

static void latent_sampling(const ed_gen_model *m, ed_denoiser_sampling *s)
{
    const ed_latent_opts *o = &m->opts.latent;
    bool flow = o->objective == ED_DIT_FLOW;
    *s = (ed_denoiser_sampling){.pred = flow ? "velocity" : "eps",
                                .samplers = flow ? "euler|midpoint|heun|rk4" : "ddpm|ddim",
                                .fm = flow ? &o->fm : NULL,
                                .diffusion = flow ? NULL : &o->diffusion,
                                .default_sampler = "ddim",
                                .guidance = o->fm.guidance_scale,
                                .guidable = m->classes > 0 && o->fm.cond_dropout > 0};
}

/* The sampler's view: a denoiser family over latent vectors [latent]. */
static const ed_model_def latent_space = {
    .name = "latent_diffusion",
    .uses_labels = true,
    .options = ed_latent_options,
    .noptions = ED_LATENT_NOPTIONS,
    .denoise = latent_denoise,
    .sampling = latent_sampling,
};

/* Latents from the sampler, decoded: one graph, so one compiled call draws images. */
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

/* The denoiser's params: the MLP's for either objective ("fm.", "ddpm."), or DiT's. */
static const char *const denoiser_group[] = {"fm.", "ddpm.", "dit.", NULL};

const ed_model_def ed_latent_diffusion_model = {
    .name = "latent_diffusion",
    .summary = "flow matching or diffusion in the latent space of a frozen VAE (--vae CKPT), MLP or DiT denoiser, "
               "decoded when sampling",
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
    .nfigures = 1,
    .figures = {{"latent_mse", "per latent element", ED_FIGURE_MEAN}},
    .figure_nodes = latent_figures,
    .sampling = latent_sampling,
};
