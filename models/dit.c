/* The DiT model (see dit.h): its options, network and training loss. */
#include "models/dit.h"
#include "frontend/dit_blocks.h"
#include "models/generate.h"
#include "runtime/error.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

static const char *const objectives[] = {"diffusion", "flow_matching", NULL};
static const char *const pos_kinds[] = {"sincos", "learned", NULL};
static const char *const schedules[] = {"linear", "cosine", NULL};
static const char *const solvers[] = {"euler", "midpoint", "heun", "rk4", NULL};

#define DIT(field) offsetof(ed_dit_opts, field)
const ed_option ed_dit_options[] = {
    {"hidden", ED_OPTION_INT, DIT(hidden), 256, 4, 65536, NULL, "token width (8x8 images: 128)", NULL},
    {"depth", ED_OPTION_INT, DIT(depth), 6, 0, 64, NULL, "adaLN-Zero transformer blocks (8x8 images: 4)", NULL},
    {"heads", ED_OPTION_INT, DIT(heads), 4, 1, 256, NULL, "attention heads (divide hidden)", NULL},
    {"mlp_ratio", ED_OPTION_INT, DIT(mlp_ratio), 4, 1, 64, NULL, "MLP width / hidden", NULL},
    {"patch", ED_OPTION_INT, DIT(patch), 4, 1, 64, NULL, "patch side in pixels (8x8 images: 2)", NULL},
    {"pos_embed", ED_OPTION_ENUM, DIT(pos_learned), 0, 0, 0, pos_kinds, "position embedding: fixed 2-D or learned",
     NULL},
    {"objective", ED_OPTION_ENUM, DIT(objective), ED_DIT_FLOW, 0, 0, objectives,
     "diffusion (eps, ddpm|ddim) or flow_matching (velocity, ODE solvers)", NULL},
    {"cond_dropout", ED_OPTION_REAL, DIT(cond_dropout), 0.1, 0, 1, NULL,
     "training probability of the null class (CFG; 0 without labels)", NULL},
    {"guidance_scale", ED_OPTION_REAL, DIT(guidance_scale), 1, 0, 100, NULL,
     "classifier-free guidance scale when sampling (1: none)", NULL},
    {"timesteps", ED_OPTION_INT, DIT(diffusion.timesteps), 1000, 1, 100000, NULL, "diffusion steps T", NULL},
    {"beta_schedule", ED_OPTION_ENUM, DIT(diffusion.beta_schedule), ED_DIFF_BETA_LINEAR, 0, 0, schedules,
     "diffusion noise schedule", NULL},
    {"beta_start", ED_OPTION_REAL, DIT(diffusion.beta_start), 1e-4, 1e-8, 0.5, NULL, "first beta (linear)", NULL},
    {"beta_end", ED_OPTION_REAL, DIT(diffusion.beta_end), 0.02, 1e-8, 0.999, NULL, "last beta (linear)", NULL},
    {"ddim_steps", ED_OPTION_INT, DIT(diffusion.ddim_steps), 50, 1, 100000, NULL, "DDIM sampling steps", NULL},
    {"eta", ED_OPTION_REAL, DIT(diffusion.eta), 0, 0, 1, NULL, "DDIM noise (0 deterministic, 1 DDPM-like)", NULL},
    {"clip_x0", ED_OPTION_REAL, DIT(diffusion.clip_x0), 1, 0, 1e6, NULL,
     "clamp the predicted x0 to [-c, c] (0: off; pixels lie in [-1, 1])", NULL},
    {"sigma_min", ED_OPTION_REAL, DIT(fm.sigma_min), 0, 0, 0.999, NULL, "flow matching: noise left at t = 1", NULL},
    {"solver", ED_OPTION_ENUM, DIT(fm.solver), ED_FM_EULER, 0, 0, solvers, "flow matching: ODE solver", NULL},
    {"sample_steps", ED_OPTION_INT, DIT(fm.sample_steps), 50, 1, 100000, NULL, "flow matching: ODE steps", NULL},
};
#undef DIT

void ed_dit_defaults(ed_dit_opts *o, int64_t height, int64_t width, int64_t classes)
{
    *o = (ed_dit_opts){0};
    ed_ddim_defaults(&o->diffusion);
    ed_fm_defaults(&o->fm);
    ed_options_defaults(ed_dit_options, ED_DIT_NOPTIONS, o);
    if (height <= 8 && width <= 8) o->hidden = 128, o->depth = 4, o->patch = 2;
    if (classes == 0) o->cond_dropout = 0;
}

int ed_dit_check(const ed_dit_opts *o, int rank, const int64_t *s)
{
    if (rank != 3) return ed_fail("dit: the data must be images [C, H, W]");
    if (s[1] % o->patch || s[2] % o->patch)
        return ed_fail("dit: the patch %lld must divide the image's %lldx%lld pixels (--patch)", (long long)o->patch,
                       (long long)s[1], (long long)s[2]);
    if (o->hidden % o->heads)
        return ed_fail("dit: heads %lld must divide hidden %lld", (long long)o->heads, (long long)o->hidden);
    if (o->hidden % 4) return ed_fail("dit: hidden %lld must be a multiple of 4", (long long)o->hidden);
    return ED_OK;
}

enum { FREQ_DIM = 256 };       /* the time embedding's sinusoid, as DiT's */
#define FLOW_TIME_SCALE 1000.0 /* t in [0, 1] spread over the sinusoid's periods, as flow_matching */

/* x as tokens [B, N, F] with their positions [N, hidden]: an image's patches, or a
 * vector's runs of `patch` values. */
static ed_node *to_tokens(ed_node *x, const ed_dit_opts *o, ed_node **pos)
{
    ed_graph *g = x->graph;
    int64_t b = x->shape.dim[0], p = o->patch;
    if (x->shape.rank == 2) {
        int64_t n = x->shape.dim[1] / p;
        *pos = ed_pos_embed_1d(g, x->dtype, n, o->hidden, o->pos_learned, "pos");
        return ed_reshape(x, ed_shape3(b, n, p));
    }
    *pos = ed_pos_embed_2d(g, x->dtype, x->shape.dim[2] / p, x->shape.dim[3] / p, o->hidden, o->pos_learned, "pos");
    return ed_patchify(x, p);
}

/* The inverse of to_tokens: out [B, N, F] in x's shape. */
static ed_node *from_tokens(ed_node *out, const ed_node *x, const ed_dit_opts *o)
{
    if (x->shape.rank == 2) return ed_reshape(out, x->shape);
    return ed_unpatchify(out, o->patch, x->shape.dim[1], x->shape.dim[2], x->shape.dim[3]);
}

ed_node *ed_dit_net(ed_node *x, ed_node *t, ed_node *labels, int64_t classes, const ed_dit_opts *o)
{
    if (!x || !t) return NULL;
    ed_graph *g = x->graph;
    if (ed_graph_error(g)) return NULL;
    if ((x->shape.rank != 4 && x->shape.rank != 2) || !ed_dtype_is_float(x->dtype))
        return ed_graph_fail(g, "dit: x must be a float batch of images [B, C, H, W] or of vectors [B, L]");
    if (x->shape.rank == 2 && (o->patch < 1 || x->shape.dim[1] % o->patch))
        return ed_graph_fail(g, "dit: the patch %lld must divide the vectors' length %lld", (long long)o->patch,
                             (long long)x->shape.dim[1]);
    int64_t b = x->shape.dim[0];
    if (t->shape.rank > 1 || (t->shape.rank == 1 && t->shape.dim[0] != b))
        return ed_graph_fail(g, "dit: t must be [] or [%lld]", (long long)b);
    if (classes == 0 && labels) return ed_graph_fail(g, "dit: labels given to an unconditional model");
    if (t->dtype != x->dtype) t = ed_cast(t, x->dtype);
    if (o->objective == ED_DIT_FLOW) t = ed_mul_scalar(t, FLOW_TIME_SCALE);
    if (t->shape.rank == 0) t = ed_broadcast_to(ed_reshape(t, ed_shape1(1)), ed_shape1(b));

    ed_scope_push(g, "dit");
    ed_node *pos = NULL, *pieces = to_tokens(x, o, &pos);
    ed_node *tokens = ed_add(ed_dense(pieces, "patch", o->hidden, true), pos);
    ed_node *c = ed_dit_time_embedding(t, FREQ_DIM, o->hidden, "temb");
    if (classes > 0) {
        if (!labels) labels = ed_fill(g, ED_I32, ed_shape1(b), (double)classes); /* the null class */
        c = ed_add(c, ed_label_embedding(labels, classes, o->hidden, x->dtype, "label"));
    }
    ed_node *sc = ed_silu(c);
    for (int64_t i = 0; i < o->depth; i++) {
        char name[32];
        snprintf(name, sizeof name, "block%lld", (long long)i);
        tokens = ed_dit_block(tokens, sc, (int)o->heads, o->mlp_ratio * o->hidden, name);
    }
    int64_t features = pieces ? pieces->shape.dim[2] : 1;
    ed_node *out = from_tokens(ed_dit_final_layer(tokens, sc, features, "final"), x, o);
    ed_scope_pop(g);
    return out;
}

/* [B] -> [B, 1, ...] of x's rank, to scale each sample. */
static ed_node *per_sample(ed_node *v, const ed_node *x)
{
    ed_shape s = x->shape;
    for (int i = 1; i < s.rank; i++) s.dim[i] = 1;
    return ed_reshape(v, s);
}

/* The mean of (pred - target)^2 over each sample's elements. [B] */
static ed_node *sample_mse(ed_node *pred, ed_node *target)
{
    unsigned axes = 0;
    for (int i = 1; i < target->shape.rank; i++) axes |= 1u << i;
    return ed_mean(ed_square(ed_sub(pred, target)), axes, false);
}

/* x_t = sqrt(abar_t) x + sqrt(1 - abar_t) eps for t ~ U{0..T-1}: the eps regression. */
static ed_node *diffusion_loss(ed_graph *g, ed_node *x, ed_node *labels, int64_t classes, const ed_dit_opts *o)
{
    int64_t T = o->diffusion.timesteps, b = x->shape.dim[0];
    double *abar = malloc((size_t)T * 3 * sizeof *abar);
    if (!abar) return ed_graph_fail(g, "dit: out of memory");
    if (ed_diffusion_alpha_bar(&o->diffusion, abar) != ED_OK) {
        ed_graph_fail(g, "dit: %s", ed_last_error());
        free(abar);
        return NULL;
    }
    double *s1 = abar + T, *s2 = abar + 2 * T;
    for (int64_t i = 0; i < T; i++) s1[i] = sqrt(abar[i]), s2[i] = sqrt(1 - abar[i]);
    ed_node *t = ed_randint(g, ed_shape1(b), 0, T);
    ed_node *eps = ed_randn(g, x->dtype, x->shape);
    ed_node *a = per_sample(ed_gather(ed_const(g, x->dtype, ed_shape1(T), s1, T), t, 0), x);
    ed_node *s = per_sample(ed_gather(ed_const(g, x->dtype, ed_shape1(T), s2, T), t, 0), x);
    free(abar);
    ed_node *xt = ed_add(ed_mul(a, x), ed_mul(s, eps));
    return sample_mse(ed_dit_net(xt, t, labels, classes, o), eps);
}

/* x_t = x0 + t (x1 - c x0) with c = 1 - sigma_min, x0 noise, x1 data; target x1 - c x0. */
static ed_node *flow_loss(ed_graph *g, ed_node *x1, ed_node *labels, int64_t classes, const ed_dit_opts *o)
{
    int64_t b = x1->shape.dim[0];
    ed_node *t = ed_rand(g, x1->dtype, ed_shape1(b), 0, 1);
    ed_node *x0 = ed_randn(g, x1->dtype, x1->shape);
    ed_node *u = ed_sub(x1, ed_mul_scalar(x0, 1 - o->fm.sigma_min));
    ed_node *xt = ed_add(x0, ed_mul(per_sample(t, x1), u));
    return sample_mse(ed_dit_net(xt, t, labels, classes, o), u);
}

ed_node *ed_dit_image_loss(ed_graph *g, ed_node *x, ed_node *labels, int64_t classes, const ed_dit_opts *o)
{
    if (!x || ed_graph_error(g)) return NULL;
    if (x->shape.rank != 4 && x->shape.rank != 2)
        return ed_graph_fail(g, "dit: x must be images [B, C, H, W] or vectors [B, L]");
    if (labels) labels = ed_label_dropout(labels, classes, o->cond_dropout);
    return o->objective == ED_DIT_FLOW ? flow_loss(g, x, labels, classes, o) : diffusion_loss(g, x, labels, classes, o);
}

ed_node *ed_dit_loss(ed_graph *g, ed_node *x, ed_node *labels, int64_t classes, const ed_dit_opts *o)
{
    return ed_mean(ed_dit_image_loss(g, x, labels, classes, o), ED_ALL_AXES, false);
}

/* ---- the registry's entry ---------------------------------------------------------------- */

static void dit_defaults(ed_gen_model *m)
{
    bool image = m->sample.rank == 3;
    ed_dit_defaults(&m->opts.dit, image ? m->sample.dim[1] : 0, image ? m->sample.dim[2] : 0, m->classes);
}

static int dit_check(const ed_gen_model *m)
{
    if (m->obs_size > 0) return ed_fail("dit: observations are not supported (class labels are)");
    if (!m->unit_range) return ed_fail("dit: the images must lie in [0, 1] (they are scaled to [-1, 1])");
    return ed_dit_check(&m->opts.dit, m->sample.rank, m->sample.dim);
}

static ed_node *dit_train_loss(ed_graph *g, const ed_gen_model *m, const ed_batch *b)
{
    return ed_dit_loss(g, ed_pixels_to_signed(b->x), b->labels, m->classes, &m->opts.dit);
}

/* The test loss per image, labels never dropped. */
static int dit_figures(ed_graph *g, const ed_gen_model *m, const ed_batch *b, ed_node **out)
{
    ed_dit_opts o = m->opts.dit;
    o.cond_dropout = 0;
    out[0] = ed_dit_image_loss(g, ed_pixels_to_signed(b->x), b->labels, m->classes, &o);
    return out[0] ? ED_OK : ED_ERR;
}

static ed_node *dit_denoise(ed_graph *g, const ed_gen_model *m, ed_node *x, ed_node *t, ed_node *cond, ed_node *labels)
{
    (void)g, (void)cond;
    return ed_dit_net(x, t, labels, m->classes, &m->opts.dit);
}

static void dit_sampling(const ed_gen_model *m, ed_denoiser_sampling *s)
{
    const ed_dit_opts *o = &m->opts.dit;
    bool flow = o->objective == ED_DIT_FLOW;
    *s = (ed_denoiser_sampling){.pred = flow ? "velocity" : "eps",
                                .samplers = flow ? "euler|midpoint|heun|rk4" : "ddpm|ddim",
                                .fm = flow ? &o->fm : NULL,
                                .diffusion = flow ? NULL : &o->diffusion,
                                .default_sampler = "ddim",
                                .guidance = o->guidance_scale,
                                .guidable = m->classes > 0 && o->cond_dropout > 0};
}

/* The network works on pixels scaled to [-1, 1]; its samples come back to [0, 1]. */
static ed_node *dit_sample(ed_graph *g, const ed_gen_model *m, int64_t n, ed_node *obs, ed_node *labels,
                           const ed_gen_sample_opts *o)
{
    ed_node *s = ed_denoiser_sample(g, m, n, obs, labels, o);
    return s ? ed_signed_to_pixels(s) : NULL;
}

const ed_model_def ed_dit_model = {
    .name = "dit",
    .summary = "Diffusion Transformer on image patches: adaLN-Zero blocks, class labels, classifier-free guidance",
    .uses_labels = true,
    .options = ed_dit_options,
    .noptions = ED_DIT_NOPTIONS,
    .defaults = dit_defaults,
    .check = dit_check,
    .nsteps = 1,
    .steps = {{.name = "train", .loss = dit_train_loss}},
    .sample = dit_sample,
    .nfigures = 1,
    .figures = {{"denoise_mse", "per pixel", ED_FIGURE_MEAN}},
    .figure_nodes = dit_figures,
    .denoise = dit_denoise,
    .sampling = dit_sampling,
};
