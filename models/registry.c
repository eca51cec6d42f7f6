#include "models/registry.h"
#include "models/generate.h"
#include "models/unet.h"
#include "runtime/error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fm_defaults(ed_gen_model *m) { ed_fm_defaults(&m->opts.fm); }
static void ddpm_defaults(ed_gen_model *m) { ed_ddpm_defaults(&m->opts.diffusion); }
static void ddim_defaults(ed_gen_model *m) { ed_ddim_defaults(&m->opts.diffusion); }

/* signed_range 1: the network sees pixels scaled from [0, 1] to [-1, 1], the scale of its
 * N(0, 1) prior; the samples come back to [0, 1], clamped. -1 (a checkpoint written before
 * the option) trains and samples the pixels as they are. */
static ed_node *to_model(ed_node *x, int64_t signed_range) { return signed_range == 1 ? ed_pixels_to_signed(x) : x; }

static ed_node *from_model(ed_node *x, int64_t signed_range)
{
    return x && signed_range == 1 ? ed_signed_to_pixels(x) : x;
}

/* A fresh run's signed_range: 1 for the U-Net on data in [0, 1] unless given. */
static int64_t pick_signed_range(const ed_gen_model *m, int64_t given, int arch)
{
    if (given >= 0) return given;
    return arch == ED_ARCH_CONV && m->unit_range ? 1 : 0;
}

static int check_signed_range(const ed_gen_model *m, int64_t signed_range)
{
    if (signed_range == 1 && !m->unit_range) return ed_fail("%s: signed_range 1 needs data in [0, 1]", m->def->name);
    return ED_OK;
}

static ed_node *fm_loss(ed_graph *g, const ed_gen_model *m, const ed_batch *b)
{
    return ed_fm_loss(g, to_model(b->x, m->opts.fm.signed_range), b->obs, &m->opts.fm);
}

static ed_node *fm_sample(ed_graph *g, const ed_gen_model *m, int64_t n, ed_node *obs, ed_node *labels,
                          const ed_gen_sample_opts *o)
{
    return from_model(ed_denoiser_sample(g, m, n, obs, labels, o), m->opts.fm.signed_range);
}

static int fm_prepare(ed_gen_model *m, ed_store *st, const ed_dataset *d, uint64_t seed, ed_backend backend)
{
    (void)st, (void)d, (void)seed, (void)backend;
    ed_fm_opts *o = &m->opts.fm;
    o->signed_range = pick_signed_range(m, o->signed_range, o->net.arch);
    /* As ddpm's U-Net: samples from an EMA of the weights unless ema_decay is given. */
    if (o->net.arch == ED_ARCH_CONV && !ed_gen_model_was_set(m, "ema_decay")) o->ema_decay = 0.999;
    return ED_OK;
}

static ed_node *fm_denoise(ed_graph *g, const ed_gen_model *m, ed_node *x, ed_node *t, ed_node *cond, ed_node *labels)
{
    (void)g, (void)labels;
    return ed_fm_velocity(x, t, cond, NULL, &m->opts.fm);
}

static ed_node *diffusion_loss(ed_graph *g, const ed_gen_model *m, const ed_batch *b)
{
    const ed_diffusion_opts *o = &m->opts.diffusion;
    return ed_diffusion_loss(g, to_model(b->x, o->signed_range), b->obs, o);
}

static ed_node *diffusion_sample(ed_graph *g, const ed_gen_model *m, int64_t n, ed_node *obs, ed_node *labels,
                                 const ed_gen_sample_opts *o)
{
    return from_model(ed_denoiser_sample(g, m, n, obs, labels, o), m->opts.diffusion.signed_range);
}

/* Both diffusion models' fresh-run range: signed pixels are clipped to their range [-1, 1]
 * at sampling unless clip_x0 was given. */
static void prepare_signed_range(ed_gen_model *m)
{
    ed_diffusion_opts *o = &m->opts.diffusion;
    o->signed_range = pick_signed_range(m, o->signed_range, o->net.arch);
    if (o->signed_range == 1 && o->clip_x0 < 0) o->clip_x0 = 1;
}

static ed_node *diffusion_denoise(ed_graph *g, const ed_gen_model *m, ed_node *x, ed_node *t, ed_node *cond,
                                  ed_node *labels)
{
    (void)g, (void)labels;
    return ed_diffusion_eps(x, t, cond, NULL, &m->opts.diffusion);
}

/* The U-Net reads [C, H, W] images; the MLP any shape. */
static int fm_check(const ed_gen_model *m)
{
    if (check_signed_range(m, m->opts.fm.signed_range) != ED_OK) return ED_ERR;
    return m->opts.fm.net.arch == ED_ARCH_CONV ? ed_unet_check(&m->opts.fm.net.unet, m->sample, m->def->name) : ED_OK;
}

static int diffusion_check(const ed_gen_model *m)
{
    const ed_denoiser_opts *o = &m->opts.diffusion.net;
    if (check_signed_range(m, m->opts.diffusion.signed_range) != ED_OK) return ED_ERR;
    return o->arch == ED_ARCH_CONV ? ed_unet_check(&o->unet, m->sample, m->def->name) : ED_OK;
}

/* DDIM's x0 = (x - sqrt(1 - abar) eps) / sqrt(abar) multiplies any eps error by
 * 1 / sqrt(abar), about 2e4 at the cosine schedule's last step (abar ~ 2e-9): unclipped,
 * its samples on moons land 4e4 x the floor away. clip_x0 = -1 (the default) becomes a
 * clip at 1.5 x the training data's largest |x| for the cosine schedule (3.6x the floor
 * in the same run), and off for the linear one, whose abar stays far from 0. */
static int ddim_prepare(ed_gen_model *m, ed_store *st, const ed_dataset *d, uint64_t seed, ed_backend backend)
{
    (void)st, (void)seed, (void)backend;
    ed_diffusion_opts *o = &m->opts.diffusion;
    prepare_signed_range(m);
    if (o->clip_x0 >= 0) return ED_OK; /* given, or the signed range's */
    o->clip_x0 = 0;
    if (o->beta_schedule != ED_BETA_COSINE) return ED_OK;
    const float *x = d->x->data;
    double big = 0;
    for (int64_t i = 0; i < ed_tensor_numel(d->x); i++) big = fmax(big, fabs((double)x[i]));
    o->clip_x0 = big > 0 ? 1.5 * big : 1;
    return ED_OK;
}

/* ddpm's schedule (Edifice's T = 100 steps of linear betas 1e-4..0.02, kept for the MLP) ends
 * at alpha_bar 0.37: a third of the signal is left where the sampler starts from pure noise,
 * and U-Net samples on Fashion-MNIST came out as speckle (bench/HISTORY.md). The cosine
 * schedule's last beta (0.999) multiplies the first sampling step's error by 30 instead. A
 * fresh U-Net run with none of the four set takes Ho et al.'s 1e-4..0.02 over 1000 steps
 * scaled to 100: 1e-3..0.2 (alpha_bar 4.6e-5 at T); the checkpoint keeps the values. */
static int ddpm_prepare(ed_gen_model *m, ed_store *st, const ed_dataset *d, uint64_t seed, ed_backend backend)
{
    (void)st, (void)d, (void)seed, (void)backend;
    ed_diffusion_opts *o = &m->opts.diffusion;
    prepare_signed_range(m);
    if (o->clip_x0 < 0) o->clip_x0 = 0;
    /* The U-Net samples from an EMA of its weights unless ema_decay is given (the figures
     * with and without: bench/RESULTS.md). */
    if (o->net.arch == ED_ARCH_CONV && !ed_gen_model_was_set(m, "ema_decay")) o->ema_decay = 0.999;
    if (o->net.arch != ED_ARCH_CONV || ed_gen_model_was_set(m, "timesteps") ||
        ed_gen_model_was_set(m, "beta_schedule") || ed_gen_model_was_set(m, "beta_start") ||
        ed_gen_model_was_set(m, "beta_end"))
        return ED_OK;
    o->beta_start = 1e-3;
    o->beta_end = 0.2;
    return ED_OK;
}

/* The U-Net's fresh run without --steps and --batch: 1200 steps at batch 64, some 0.3-0.55 s
 * of CPU each on Fashion-MNIST (one thread), so the default run fits minutes of one core
 * (bench/RESULTS.md has the figures against 600). The MLP keeps the trainer's. */
static void unet_run_defaults(int arch, int64_t *steps, int64_t *batch)
{
    if (arch != ED_ARCH_CONV) return;
    *steps = 1200;
    *batch = 64;
}

static void ddpm_run_defaults(const ed_gen_model *m, int64_t *steps, int64_t *batch, double *lr)
{
    (void)lr;
    unet_run_defaults(m->opts.diffusion.net.arch, steps, batch);
}

static void fm_run_defaults(const ed_gen_model *m, int64_t *steps, int64_t *batch, double *lr)
{
    (void)lr;
    unet_run_defaults(m->opts.fm.net.arch, steps, batch);
}

static const ed_model_def denoiser_models[] = {
    {.name = "flow_matching",
     .ema_option = "ema_decay",
     .summary = "conditional flow matching, linear OT path, velocity prediction, ODE sampling",
     .options = ed_fm_options,
     .noptions = ED_FM_NOPTIONS,
     .defaults = fm_defaults,
     .check = fm_check,
     .prepare = fm_prepare,
     .run_defaults = fm_run_defaults,
     .nsteps = 1,
     .steps = {{.name = "train", .loss = fm_loss}},
     .sample = fm_sample,
     .samplers = "euler|midpoint|heun|rk4",
     .pred = "velocity",
     .denoise = fm_denoise},
    {.name = "ddpm",
     .ema_option = "ema_decay",
     .summary = "DDPM, epsilon prediction, ancestral sampling (Edifice Diffusion: T = 100)",
     .options = ed_ddpm_options,
     .noptions = ED_DDPM_NOPTIONS,
     .defaults = ddpm_defaults,
     .check = diffusion_check,
     .prepare = ddpm_prepare,
     .run_defaults = ddpm_run_defaults,
     .nsteps = 1,
     .steps = {{.name = "train", .loss = diffusion_loss}},
     .sample = diffusion_sample,
     .samplers = "ddpm|ddim",
     .pred = "eps",
     .denoise = diffusion_denoise},
    {.name = "ddim",
     .ema_option = "ema_decay",
     .summary = "DDPM-trained denoiser sampled with DDIM (Edifice DDIM: T = 1000, 50 steps, eta 0)",
     .prepare = ddim_prepare,
     .options = ed_ddim_options,
     .noptions = ED_DDIM_NOPTIONS,
     .defaults = ddim_defaults,
     .check = diffusion_check,
     .nsteps = 1,
     .steps = {{.name = "train", .loss = diffusion_loss}},
     .sample = diffusion_sample,
     .samplers = "ddpm|ddim",
     .pred = "eps",
     .denoise = diffusion_denoise},
};
static const ed_model_def *const models[] = {
    &denoiser_models[0],   &denoiser_models[1], &denoiser_models[2], &ed_vae_model,
    &ed_vqvae_model,       &ed_realnvp_model,   &ed_gan_model,       &ed_wgan_gp_model,
    &ed_cgan_model,        &ed_dit_model,       &ed_score_sde_model, &ed_latent_diffusion_model,
    &ed_consistency_model,
};
enum { NMODELS = sizeof models / sizeof models[0] };

int ed_model_count(void) { return NMODELS; }

const ed_model_def *ed_model_at(int i) { return i >= 0 && i < NMODELS ? models[i] : NULL; }

const ed_model_def *ed_model_find(const char *name)
{
    for (int i = 0; i < NMODELS; i++)
        if (name && strcmp(models[i]->name, name) == 0) return models[i];
    char list[256];
    size_t len = 0;
    list[0] = '\0';
    for (int i = 0; i < NMODELS; i++)
        len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", models[i]->name);
    ed_fail("unknown model '%s' (models: %s)", name ? name : "", list);
    return NULL;
}

int64_t ed_model_default_steps(const ed_model_def *def)
{
    return def && def->default_steps > 0 ? def->default_steps : ED_DEFAULT_TRAIN_STEPS;
}

int ed_gen_model_init_data(ed_gen_model *m, const ed_model_def *def, const ed_data_facts *f)
{
    *m = (ed_gen_model){0};
    if (!def) return ed_fail("no model given");
    ed_shape sample = f->sample;
    if (sample.rank < 1 || sample.rank >= ED_MAX_RANK || ed_shape_numel(sample) < 1)
        return ed_fail("model %s: a sample must have rank 1..%d and at least one element", def->name, ED_MAX_RANK - 1);
    if (f->obs_size < 0 || f->classes < 0 || f->levels < 0 || f->levels == 1)
        return ed_fail("model %s: bad data facts (observations %lld, classes %lld, levels %lld)", def->name,
                       (long long)f->obs_size, (long long)f->classes, (long long)f->levels);
    m->def = def;
    m->sample = sample;
    m->obs_size = f->obs_size;
    m->classes = def->uses_labels ? f->classes : 0;
    m->levels = f->levels;
    m->unit_range = f->unit_range;
    def->defaults(m);
    return ED_OK;
}

int ed_gen_model_init(ed_gen_model *m, const ed_model_def *def, ed_shape sample, int64_t obs_size)
{
    return ed_gen_model_init_data(m, def, &(ed_data_facts){.sample = sample, .obs_size = obs_size});
}

int64_t ed_gen_model_dim(const ed_gen_model *m) { return ed_shape_numel(m->sample); }

ed_node *ed_gen_model_flatten(const ed_gen_model *m, ed_node *x)
{
    if (!x) return NULL;
    return ed_reshape(x, ed_shape2(x->shape.dim[0], ed_gen_model_dim(m)));
}

bool ed_gen_model_image(const ed_gen_model *m, int64_t chw[3])
{
    const ed_shape *s = &m->sample;
    chw[0] = chw[1] = chw[2] = 0;
    if (s->rank != 2 && s->rank != 3) return false;
    chw[0] = s->rank == 3 ? s->dim[0] : 1;
    chw[1] = s->dim[s->rank - 2];
    chw[2] = s->dim[s->rank - 1];
    return true;
}

bool ed_gen_model_plain_sampler(ed_graph *g, const ed_gen_model *m, const ed_gen_sample_opts *o, const char *how)
{
    const char *own = m->def->samplers;
    if ((!o->sampler || !*o->sampler || strcmp(o->sampler, own) == 0) && !o->steps && !o->has_guidance && !o->has_eta)
        return true;
    ed_graph_fail(g, "sample %s: %s (sampler '%s'; no steps, guidance or eta)", m->def->name, how, own);
    return false;
}

ed_shape ed_gen_model_batch_shape(const ed_gen_model *m, int64_t b)
{
    ed_shape s = m->sample;
    s.rank++;
    for (int i = s.rank - 1; i > 0; i--) s.dim[i] = s.dim[i - 1];
    s.dim[0] = b;
    return s;
}

ed_node *ed_gen_model_unflatten(const ed_gen_model *m, ed_node *flat)
{
    return flat ? ed_reshape(flat, ed_gen_model_batch_shape(m, flat->shape.dim[0])) : NULL;
}

int ed_gen_model_set(ed_gen_model *m, const char *name, const char *value)
{
    if (ed_options_set(m->def->options, m->def->noptions, &m->opts, name, value) != ED_OK) {
        char msg[ED_ERROR_MAX];
        snprintf(msg, sizeof msg, "%s", ed_last_error());
        return ed_fail("%s: %s", m->def->name, msg);
    }
    const ed_option *o = ed_option_find(m->def->options, m->def->noptions, name);
    ptrdiff_t i = o - m->def->options;
    if (i < 64) m->set_options |= UINT64_C(1) << i;
    return ED_OK;
}

bool ed_gen_model_was_set(const ed_gen_model *m, const char *name)
{
    const ed_option *o = ed_option_find(m->def->options, m->def->noptions, name);
    ptrdiff_t i = o ? o - m->def->options : 64;
    return i < 64 && (m->set_options >> i & 1);
}

const char *ed_gen_model_get(const ed_gen_model *m, const char *name, char *buf, size_t size)
{
    return ed_options_get(m->def->options, m->def->noptions, &m->opts, name, buf, size);
}

double ed_gen_model_ema_decay(const ed_gen_model *m)
{
    char buf[64];
    const char *v = m->def->ema_option ? ed_gen_model_get(m, m->def->ema_option, buf, sizeof buf) : NULL;
    return v ? strtod(v, NULL) : 0;
}

int ed_gen_model_check(const ed_gen_model *m)
{
    /* Dropping the condition needs one: on unconditional data it would train nothing. */
    char buf[64];
    const char *drop = ed_gen_model_get(m, "cond_dropout", buf, sizeof buf);
    if (drop && strtod(drop, NULL) > 0 && m->obs_size == 0 && m->classes == 0)
        return ed_fail("model %s: cond_dropout %s drops the condition, but the data have none (no observations "
                       "or labels); leave it at 0",
                       m->def->name, drop);
    return m->def->check ? m->def->check(m) : ED_OK;
}

/* The network's obs_size comes from the data, not from an option. */
static ed_gen_model with_obs(const ed_gen_model *m)
{
    ed_gen_model c = *m;
    if (!c.def->pred) return c;
    if (c.def->pred[0] == 'v') c.opts.fm.net.obs_size = m->obs_size;
    else c.opts.diffusion.net.obs_size = m->obs_size;
    return c;
}

static bool check_x(ed_graph *g, const ed_gen_model *m, ed_node *x)
{
    if (!x) return false;
    bool ok = x->shape.rank == m->sample.rank + 1;
    for (int i = 0; ok && i < m->sample.rank; i++) ok = x->shape.dim[i + 1] == m->sample.dim[i];
    if (!ok) {
        char have[96], want[96];
        ed_node_type_str(x, have, sizeof have);
        ed_type_str(x->dtype, ed_gen_model_batch_shape(m, x->shape.rank > 0 ? x->shape.dim[0] : 1), want, sizeof want);
        ed_graph_fail(g, "model %s: x is %s, the model was built for %s", m->def->name, have, want);
    }
    return ok;
}

ed_node *ed_gen_model_step_loss(ed_graph *g, const ed_gen_model *m, int k, const ed_batch *b)
{
    if (!b || !check_x(g, m, b->x)) return NULL;
    if (k < 0 || k >= m->def->nsteps) return ed_graph_fail(g, "model %s has no training step %d", m->def->name, k);
    if ((b->obs != NULL) != (m->obs_size > 0))
        return ed_graph_fail(g, "model %s: %s", m->def->name,
                             b->obs ? "observations given to an unconditional model"
                                    : "a conditional model needs observations");
    if ((b->labels != NULL) != (m->classes > 0))
        return ed_graph_fail(g, "model %s: %s", m->def->name,
                             b->labels ? "labels given to a model built without classes" : "the model needs labels");
    ed_gen_model c = with_obs(m);
    return m->def->steps[k].loss(g, &c, b);
}

ed_node *ed_gen_model_loss(ed_graph *g, const ed_gen_model *m, ed_node *x, ed_node *obs)
{
    return ed_gen_model_step_loss(g, m, 0, &(ed_batch){.x = x, .obs = obs});
}

int ed_gen_model_step_finish(ed_graph *g, const ed_gen_model *m, int k)
{
    if (k < 0 || k >= m->def->nsteps) {
        ed_graph_fail(g, "model %s has no training step %d", m->def->name, k);
        return ED_ERR;
    }
    const ed_step_def *s = &m->def->steps[k];
    return s->finish ? s->finish(g, m) : ED_OK;
}

int64_t ed_gen_model_step_repeats(const ed_gen_model *m, int k)
{
    const ed_step_def *s = &m->def->steps[k];
    return s->repeats ? s->repeats(m) : 1;
}

ed_node *ed_gen_model_denoise(ed_graph *g, const ed_gen_model *m, ed_node *x, ed_node *t, ed_node *cond,
                              ed_node *labels)
{
    if (!m->def->denoise) return ed_graph_fail(g, "model %s has no denoiser", m->def->name);
    if (!check_x(g, m, x)) return NULL;
    ed_gen_model c = with_obs(m);
    return m->def->denoise(g, &c, x, t, cond, labels);
}

ed_denoiser_sampling ed_gen_model_sampling(const ed_gen_model *m)
{
    ed_denoiser_sampling s = {.guidance = 1, .guidable = true};
    if (m->def->sampling) {
        m->def->sampling(m, &s);
        return s;
    }
    s.pred = m->def->pred;
    s.samplers = m->def->samplers;
    if (s.pred && s.pred[0] == 'v') {
        s.fm = &m->opts.fm;
        s.guidance = m->opts.fm.guidance_scale;
        s.guidable = m->opts.fm.cond_dropout > 0;
    } else if (s.pred) {
        s.diffusion = &m->opts.diffusion;
        s.guidable = m->opts.diffusion.cond_dropout > 0;
        s.default_sampler = strcmp(m->def->name, "ddpm") == 0 ? "ddpm" : "ddim";
    }
    return s;
}
