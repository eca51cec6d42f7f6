#include "models/diffusion.h"
#include "models/unet.h"
#include "runtime/error.h"

#include <math.h>
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>

static const char *const schedules[] = {"linear", "cosine", NULL};

#define D(field) offsetof(ed_diffusion_opts, field)
#define NET_OPTIONS                                                                                                    \
    {"hidden", ED_OPTION_INT, D(net.hidden), 256, 2, 65536, NULL, "width of the denoiser (even)", NULL},               \
        {"layers", ED_OPTION_INT, D(net.layers), 4, 0, 64, NULL, "pre-LayerNorm residual MLP blocks", NULL},           \
        {"expansion", ED_OPTION_INT, D(net.expansion), 4, 1, 64, NULL, "block inner width / hidden", NULL},            \
        {"time_scale",                                                                                                 \
         ED_OPTION_REAL,                                                                                               \
         D(net.time_scale),                                                                                            \
         1,                                                                                                            \
         1e-6,                                                                                                         \
         1e9,                                                                                                          \
         NULL,                                                                                                         \
         "the timestep is scaled by this before the embedding",                                                        \
         NULL},                                                                                                        \
    {                                                                                                                  \
        "max_period", ED_OPTION_REAL, D(net.max_period), 10000, 1, 1e12, NULL, "longest period of the time embedding", \
            NULL                                                                                                       \
    }

#define CONV_OPTIONS                                                                                                     \
    {"arch",                                                                                                             \
     ED_OPTION_ENUM,                                                                                                     \
     D(net.arch),                                                                                                        \
     ED_ARCH_MLP,                                                                                                        \
     0,                                                                                                                  \
     0,                                                                                                                  \
     ed_denoiser_arch_names,                                                                                             \
     "denoiser network: mlp (residual MLP) or conv (U-Net on [C, H, W] images, models/unet.h)",                          \
     NULL},                                                                                                              \
        {"channels", ED_OPTION_INT, D(net.unet.channels), 16, 2, 4096, NULL, "conv: base width C (even)", NULL},         \
        {"mults",                                                                                                        \
         ED_OPTION_SIZES,                                                                                                \
         D(net.unet.mults),                                                                                              \
         0,                                                                                                              \
         1,                                                                                                              \
         64,                                                                                                             \
         NULL,                                                                                                           \
         "conv: width multiplier per resolution (one level each, halving H and W)",                                      \
         "1,2,2"},                                                                                                       \
        {"blocks", ED_OPTION_INT, D(net.unet.blocks), 1, 1, ED_UNET_MAX_BLOCKS, NULL, "conv: residual blocks per level", \
         NULL},                                                                                                          \
        {"attention",                                                                                                    \
         ED_OPTION_INT,                                                                                                  \
         D(net.unet.attention),                                                                                          \
         0,                                                                                                              \
         0,                                                                                                              \
         1,                                                                                                              \
         NULL,                                                                                                           \
         "conv: 1 adds self-attention at the lowest resolution",                                                         \
         NULL},                                                                                                          \
    {                                                                                                                    \
        "groups", ED_OPTION_INT, D(net.unet.groups), 8, 1, 4096, NULL, "conv: group norm groups (divide every width)",   \
            NULL                                                                                                         \
    }

#define SCHEDULE_OPTIONS                                                                                               \
    {"beta_schedule", ED_OPTION_ENUM, D(beta_schedule), ED_DIFF_BETA_LINEAR, 0, 0, schedules, "noise schedule", NULL}, \
        {"beta_start", ED_OPTION_REAL, D(beta_start), 1e-4, 1e-8, 0.5, NULL, "first beta (linear)", NULL},             \
        {"beta_end", ED_OPTION_REAL, D(beta_end), 0.02, 1e-8, 0.999, NULL, "last beta (linear)", NULL},                \
    {                                                                                                                  \
        "cond_dropout", ED_OPTION_REAL, D(cond_dropout), 0, 0, 1, NULL,                                                \
            "training probability of the null condition (CFG)", NULL                                                   \
    }

#define EMA_OPTION                                                                                 \
    {"ema_decay",                                                                                  \
     ED_OPTION_REAL,                                                                               \
     D(ema_decay),                                                                                 \
     0,                                                                                            \
     0,                                                                                            \
     0.999999,                                                                                     \
     NULL,                                                                                         \
     "EMA of the weights, which sample uses (0: off; decay min(d, (1 + n) / (10 + n)) at step n)", \
     NULL}

#define SIGNED_RANGE_OPTION                                                                                    \
    {"signed_range",                                                                                           \
     ED_OPTION_INT,                                                                                            \
     D(signed_range),                                                                                          \
     -1,                                                                                                       \
     -1,                                                                                                       \
     1,                                                                                                        \
     NULL,                                                                                                     \
     "1: images in [0, 1] are trained and sampled as [-1, 1] (-1: set at training, 1 for --arch conv on such " \
     "data; 0 in checkpoints written before the option)",                                                      \
     NULL}

const ed_option ed_ddpm_options[] = {
    NET_OPTIONS,
    CONV_OPTIONS,
    {"timesteps", ED_OPTION_INT, D(timesteps), 100, 1, 100000, NULL, "diffusion steps T", NULL},
    SCHEDULE_OPTIONS,
    SIGNED_RANGE_OPTION,
    {"clip_x0", ED_OPTION_REAL, D(clip_x0), -1, -1, 1e6, NULL,
     "clamp the predicted x0 to [-c, c] when sampling (0: off; -1: set at training, 1 with signed_range 1, else off)",
     NULL},
    EMA_OPTION,
};

const ed_option ed_ddim_options[] = {
    NET_OPTIONS,
    CONV_OPTIONS,
    {"timesteps", ED_OPTION_INT, D(timesteps), 1000, 1, 100000, NULL, "diffusion steps T", NULL},
    SCHEDULE_OPTIONS,
    SIGNED_RANGE_OPTION,
    {"ddim_steps", ED_OPTION_INT, D(ddim_steps), 50, 1, 100000, NULL, "DDIM sampling steps", NULL},
    {"eta", ED_OPTION_REAL, D(eta), 0, 0, 1, NULL, "DDIM noise (0 deterministic, 1 DDPM-like)", NULL},
    {"clip_x0", ED_OPTION_REAL, D(clip_x0), -1, -1, 1e6, NULL,
     "clamp the predicted x0 to [-c, c] (0: off; -1: set at training, 1 with signed_range 1, else off for linear "
     "betas, 1.5 max |x| of the data for cosine)",
     NULL},
    EMA_OPTION,
};
#undef NET_OPTIONS
#undef CONV_OPTIONS
#undef SCHEDULE_OPTIONS
#undef SIGNED_RANGE_OPTION
#undef EMA_OPTION
#undef D

void ed_ddpm_defaults(ed_diffusion_opts *o)
{
    *o = (ed_diffusion_opts){0};
    ed_options_defaults(ed_ddim_options, ED_DDIM_NOPTIONS, o); /* the sampling fields too */
    ed_options_defaults(ed_ddpm_options, ED_DDPM_NOPTIONS, o);
}

void ed_ddim_defaults(ed_diffusion_opts *o)
{
    *o = (ed_diffusion_opts){0};
    ed_options_defaults(ed_ddim_options, ED_DDIM_NOPTIONS, o);
}

ed_beta_opts ed_diffusion_beta_opts(const ed_diffusion_opts *o)
{
    return (ed_beta_opts){
        .kind = o->beta_schedule == ED_DIFF_BETA_COSINE ? ED_BETA_COSINE : ED_BETA_LINEAR,
        .steps = o->timesteps > INT32_MAX ? -1 : (int)o->timesteps,
        .beta_start = o->beta_start,
        .beta_end = o->beta_end,
    };
}

int ed_diffusion_betas(const ed_diffusion_opts *o, double *out)
{
    if (o->timesteps < 1) return ed_fail("diffusion: timesteps must be >= 1, got %lld", (long long)o->timesteps);
    ed_beta_opts b = ed_diffusion_beta_opts(o);
    return ed_betas(&b, out);
}

int ed_diffusion_alpha_bar(const ed_diffusion_opts *o, double *out)
{
    if (ed_diffusion_betas(o, out) != ED_OK) return ED_ERR;
    double prod = 1;
    for (int64_t t = 0; t < o->timesteps; t++) {
        prod *= 1 - out[t];
        out[t] = prod;
    }
    return ED_OK;
}

ed_node *ed_diffusion_eps(ed_node *x, ed_node *t, ed_node *cond, ed_node *keep, const ed_diffusion_opts *o)
{
    return ed_denoiser(x, t, cond, keep, &o->net, "ddpm");
}

ed_node *ed_diffusion_sample_loss(ed_graph *g, ed_node *x0, ed_node *obs, const ed_diffusion_opts *o)
{
    if (!x0 || ed_graph_error(g)) return NULL;
    int64_t T = o->timesteps, batch = x0->shape.dim[0];
    double *abar = malloc((size_t)(T > 0 ? T : 1) * 2 * sizeof *abar);
    if (!abar) return ed_graph_fail(g, "diffusion: out of memory");
    if (ed_diffusion_alpha_bar(o, abar) != ED_OK) {
        ed_graph_fail(g, "%s", ed_last_error());
        free(abar);
        return NULL;
    }
    double *s1 = abar, *s2 = abar + T;
    for (int64_t i = 0; i < T; i++) {
        s2[i] = sqrt(1 - abar[i]);
        s1[i] = sqrt(abar[i]);
    }
    ed_node *t = ed_randint(g, ed_shape1(batch), 0, T);
    ed_node *eps = ed_randn(g, x0->dtype, x0->shape);
    ed_node *keep = NULL;
    if (obs && o->cond_dropout > 0)
        keep = ed_sub(ed_scalar(g, x0->dtype, 1), ed_bernoulli(g, x0->dtype, ed_shape2(batch, 1), o->cond_dropout));
    ed_shape ps = x0->shape; /* [B, 1, ...] */
    for (int i = 1; i < ps.rank; i++) ps.dim[i] = 1;
    ed_node *a = ed_reshape(ed_gather(ed_const(g, x0->dtype, ed_shape1(T), s1, T), t, 0), ps);
    ed_node *b = ed_reshape(ed_gather(ed_const(g, x0->dtype, ed_shape1(T), s2, T), t, 0), ps);
    free(abar);
    ed_node *xt = ed_add(ed_mul(a, x0), ed_mul(b, eps));
    ed_node *pred = ed_diffusion_eps(xt, t, obs, keep, o);
    unsigned per_sample_axes = 0;
    for (int i = 1; i < x0->shape.rank; i++) per_sample_axes |= 1u << i;
    return ed_mean(ed_square(ed_sub(pred, eps)), per_sample_axes, false);
}

ed_node *ed_diffusion_loss(ed_graph *g, ed_node *x0, ed_node *obs, const ed_diffusion_opts *o)
{
    return ed_mean(ed_diffusion_sample_loss(g, x0, obs, o), ED_ALL_AXES, false);
}
