#include "models/flow_matching.h"
#include "models/unet.h"

#include <math.h>
#include <stddef.h>

static const char *const solvers[] = {"euler", "midpoint", "heun", "rk4", NULL};

#define FM(field) offsetof(ed_fm_opts, field)
const ed_option ed_fm_options[] = {
    {"hidden", ED_OPTION_INT, FM(net.hidden), 256, 2, 65536, NULL, "width of the denoiser (even)", NULL},
    {"layers", ED_OPTION_INT, FM(net.layers), 4, 0, 64, NULL, "pre-LayerNorm residual MLP blocks", NULL},
    {"expansion", ED_OPTION_INT, FM(net.expansion), 4, 1, 64, NULL, "block inner width / hidden", NULL},
    {"time_scale", ED_OPTION_REAL, FM(net.time_scale), 1000, 1e-6, 1e9, NULL,
     "t is scaled by this before the sinusoidal embedding", NULL},
    {"max_period", ED_OPTION_REAL, FM(net.max_period), 10000, 1, 1e12, NULL, "longest period of the time embedding",
     NULL},
    {"arch", ED_OPTION_ENUM, FM(net.arch), ED_ARCH_MLP, 0, 0, ed_denoiser_arch_names,
     "denoiser network: mlp (residual MLP) or conv (U-Net on [C, H, W] images, models/unet.h)", NULL},
    {"channels", ED_OPTION_INT, FM(net.unet.channels), 16, 2, 4096, NULL, "conv: base width C (even)", NULL},
    {"mults", ED_OPTION_SIZES, FM(net.unet.mults), 0, 1, 64, NULL,
     "conv: width multiplier per resolution (one level each, halving H and W)", "1,2,2"},
    {"blocks", ED_OPTION_INT, FM(net.unet.blocks), 1, 1, ED_UNET_MAX_BLOCKS, NULL, "conv: residual blocks per level",
     NULL},
    {"attention", ED_OPTION_INT, FM(net.unet.attention), 0, 0, 1, NULL,
     "conv: 1 adds self-attention at the lowest resolution", NULL},
    {"groups", ED_OPTION_INT, FM(net.unet.groups), 8, 1, 4096, NULL, "conv: group norm groups (divide every width)",
     NULL},
    {"sigma_min", ED_OPTION_REAL, FM(sigma_min), 0, 0, 0.999, NULL, "noise left at t = 1 (0: rectified flow)", NULL},
    {"cond_dropout", ED_OPTION_REAL, FM(cond_dropout), 0, 0, 1, NULL,
     "training probability of the null condition (CFG)", NULL},
    {"solver", ED_OPTION_ENUM, FM(solver), ED_FM_EULER, 0, 0, solvers, "ODE solver for sampling", NULL},
    {"sample_steps", ED_OPTION_INT, FM(sample_steps), 20, 1, 100000, NULL, "ODE steps for sampling", NULL},
    {"guidance_scale", ED_OPTION_REAL, FM(guidance_scale), 1, 0, 100, NULL, "classifier-free guidance scale (1: none)",
     NULL},
    {"signed_range", ED_OPTION_INT, FM(signed_range), -1, -1, 1, NULL,
     "1: images in [0, 1] are trained and sampled as [-1, 1] (-1: set at training, 1 for --arch conv on such data; 0 "
     "in checkpoints written before the option)",
     NULL},
    {"ema_decay", ED_OPTION_REAL, FM(ema_decay), 0, 0, 0.999999, NULL,
     "EMA of the weights, which sample uses (0: off; decay min(d, (1 + n) / (10 + n)) at step n)", NULL},
};
#undef FM

void ed_fm_defaults(ed_fm_opts *o)
{
    *o = (ed_fm_opts){0};
    ed_options_defaults(ed_fm_options, ED_FM_NOPTIONS, o);
}

ed_node *ed_fm_velocity(ed_node *x, ed_node *t, ed_node *cond, ed_node *keep, const ed_fm_opts *o)
{
    return ed_denoiser(x, t, cond, keep, &o->net, "fm");
}

/* [B] -> [B, 1, ...] matching x's rank, for broadcasting per sample. */
static ed_node *per_sample(ed_node *v, const ed_node *x)
{
    ed_shape s = x->shape;
    for (int i = 1; i < s.rank; i++) s.dim[i] = 1;
    return ed_reshape(v, s);
}

ed_node *ed_fm_sample_loss(ed_graph *g, ed_node *x1, ed_node *obs, const ed_fm_opts *o)
{
    if (!x1 || ed_graph_error(g)) return NULL;
    int64_t batch = x1->shape.dim[0];
    ed_node *t = ed_rand(g, x1->dtype, ed_shape1(batch), 0, 1);
    ed_node *x0 = ed_randn(g, x1->dtype, x1->shape);
    ed_node *keep = NULL;
    if (obs && o->cond_dropout > 0)
        keep = ed_sub(ed_scalar(g, x1->dtype, 1), ed_bernoulli(g, x1->dtype, ed_shape2(batch, 1), o->cond_dropout));
    double c = 1 - o->sigma_min;
    ed_node *tb = per_sample(t, x1);
    /* x_t = x0 + t (x1 - c x0) = (1 - c t) x0 + t x1, and the target is x1 - c x0. */
    ed_node *u = ed_sub(x1, ed_mul_scalar(x0, c));
    ed_node *xt = ed_add(x0, ed_mul(tb, u));
    ed_node *v = ed_fm_velocity(xt, t, obs, keep, o);
    unsigned per_sample_axes = 0;
    for (int i = 1; i < x1->shape.rank; i++) per_sample_axes |= 1u << i;
    return ed_mean(ed_square(ed_sub(v, u)), per_sample_axes, false);
}

ed_node *ed_fm_loss(ed_graph *g, ed_node *x1, ed_node *obs, const ed_fm_opts *o)
{
    return ed_mean(ed_fm_sample_loss(g, x1, obs, o), ED_ALL_AXES, false);
}
