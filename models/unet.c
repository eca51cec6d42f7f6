#include "models/unet.h"
#include "runtime/error.h"

#include <stdio.h>

#define GN_EPS 1e-5

static ed_node *silu_gn(ed_node *h, const char *name, int64_t groups)
{
    return ed_silu(ed_group_norm(h, name, groups, GN_EPS, true));
}

static ed_node *conv3(ed_node *h, const char *name, int64_t out_ch, int64_t stride)
{
    ed_conv_opts c = {.stride = {stride, stride}, .padding = {1, 1}};
    return ed_conv2d_layer(h, name, out_ch, 3, &c, true);
}

/* [B, c] -> [B, c, 1, 1]: added per channel. */
static ed_node *per_channel(ed_node *v)
{
    return v ? ed_reshape(v, ed_shape4(v->shape.dim[0], v->shape.dim[1], 1, 1)) : NULL;
}

static ed_node *res_block(ed_node *h, ed_node *temb_act, const char *name, int64_t out_ch, int64_t groups)
{
    ed_graph *g = h->graph;
    ed_scope_push(g, name);
    ed_node *u = conv3(silu_gn(h, "gn1", groups), "conv1", out_ch, 1);
    u = ed_add(u, per_channel(ed_dense(temb_act, "temb", out_ch, true)));
    u = conv3(silu_gn(u, "gn2", groups), "conv2", out_ch, 1);
    ed_node *skip = h->shape.dim[1] == out_ch ? h : ed_conv2d_layer(h, "skip", out_ch, 1, NULL, true);
    ed_node *out = ed_add(skip, u);
    ed_scope_pop(g);
    return out;
}

/* h += attention over the H W positions of GN(h), one head. */
static ed_node *attention(ed_node *h, const char *name, int64_t groups)
{
    ed_graph *g = h->graph;
    int64_t b = h->shape.dim[0], c = h->shape.dim[1], hw = h->shape.dim[2] * h->shape.dim[3];
    static const int swap[3] = {0, 2, 1};
    ed_scope_push(g, name);
    ed_node *u = ed_reshape(ed_group_norm(h, "gn", groups, GN_EPS, true), ed_shape3(b, c, hw));
    u = ed_self_attention(ed_transpose(u, swap), "attn", 1, false);
    ed_node *out = ed_add(h, ed_reshape(ed_transpose(u, swap), h->shape));
    ed_scope_pop(g);
    return out;
}

/* t [B] or [] -> the embedding [B, 4C] before its activation. */
static ed_node *time_embedding(ed_node *t, int64_t batch, ed_dtype dt, const ed_denoiser_opts *o)
{
    ed_graph *g = t->graph;
    if (t->dtype != dt) t = ed_cast(t, dt);
    if (o->time_scale != 1) t = ed_mul_scalar(t, o->time_scale);
    ed_node *e;
    if (t->shape.rank == 0)
        e = ed_broadcast_to(ed_timestep_embedding(ed_reshape(t, ed_shape1(1)), o->unet.channels, o->max_period),
                            ed_shape2(batch, o->unet.channels));
    else e = ed_timestep_embedding(t, o->unet.channels, o->max_period);
    ed_scope_push(g, "time");
    e = ed_dense(ed_silu(ed_dense(e, "fc1", 4 * o->unet.channels, true)), "fc2", 4 * o->unet.channels, true);
    ed_scope_pop(g);
    return e;
}

/* The condition features (obs * keep, keep) as the dense denoiser forms them. */
static ed_node *condition(ed_graph *g, ed_node *cond, ed_node *keep, int64_t batch, ed_dtype dt, int64_t obs)
{
    if (!cond) return ed_fill(g, dt, ed_shape2(batch, obs + 1), 0);
    if (cond->dtype != dt) cond = ed_cast(cond, dt);
    if (!keep) keep = ed_fill(g, dt, ed_shape2(batch, 1), 1);
    ed_node *parts[2] = {ed_mul(cond, keep), keep};
    return ed_concat(parts, 2, 1);
}

int ed_unet_check(const ed_unet_opts *o, ed_shape s, const char *model)
{
    if (s.rank != 3)
        return ed_fail("%s: arch conv needs image samples [C, H, W], got rank %d (use arch mlp for flat data)", model,
                       s.rank);
    int levels = o->mults.n;
    if (levels < 1) return ed_fail("%s: arch conv needs at least one channel multiplier (mults)", model);
    int64_t f = (int64_t)1 << (levels - 1);
    if (s.dim[1] % f || s.dim[2] % f)
        return ed_fail("%s: arch conv with %d levels needs H and W divisible by %lld, the images are %lldx%lld", model,
                       levels, (long long)f, (long long)s.dim[1], (long long)s.dim[2]);
    if (o->channels < 2 || o->channels % 2) return ed_fail("%s: channels must be even and >= 2", model);
    if (o->channels % o->groups)
        return ed_fail("%s: groups %lld must divide channels %lld", model, (long long)o->groups,
                       (long long)o->channels);
    for (int i = 0; i < levels; i++)
        if ((o->channels * o->mults.v[i]) % o->groups)
            return ed_fail("%s: groups %lld must divide every level's width (channels %lld x mult %lld)", model,
                           (long long)o->groups, (long long)o->channels, (long long)o->mults.v[i]);
    if (o->blocks < 1 || o->blocks > ED_UNET_MAX_BLOCKS)
        return ed_fail("%s: blocks must be in [1, %d]", model, ED_UNET_MAX_BLOCKS);
    return ED_OK;
}

ed_node *ed_unet(ed_node *x, ed_node *t, ed_node *cond, ed_node *keep, const ed_denoiser_opts *o, const char *name)
{
    if (!x || !t) return NULL;
    ed_graph *g = x->graph;
    if (ed_graph_error(g)) return NULL;
    if (x->shape.rank != 4 || !ed_dtype_is_float(x->dtype))
        return ed_graph_fail(g, "unet %s: x must be a float image batch [B, C, H, W]", name);
    ed_shape sample = ed_shape3(x->shape.dim[1], x->shape.dim[2], x->shape.dim[3]);
    if (ed_unet_check(&o->unet, sample, name) != ED_OK) return ed_graph_fail(g, "%s", ed_last_error());
    if (o->time_features != ED_TIME_SINUSOIDAL)
        return ed_graph_fail(g, "unet %s: Fourier time features are not implemented for arch conv", name);
    int64_t batch = x->shape.dim[0];
    if (t->shape.rank > 1 || (t->shape.rank == 1 && t->shape.dim[0] != batch))
        return ed_graph_fail(g, "unet %s: t must be [] or [%lld]", name, (long long)batch);
    if (o->obs_size == 0 && cond)
        return ed_graph_fail(g, "unet %s: an unconditional model was given a condition", name);
    if (cond && (cond->shape.rank != 2 || cond->shape.dim[0] != batch || cond->shape.dim[1] != o->obs_size))
        return ed_graph_fail(g, "unet %s: cond must be [%lld, %lld]", name, (long long)batch, (long long)o->obs_size);

    const ed_unet_opts *u = &o->unet;
    int levels = u->mults.n;
    ed_scope_push(g, name);
    ed_node *temb = time_embedding(t, batch, x->dtype, o);
    if (o->obs_size > 0)
        temb = ed_add(temb,
                      ed_dense(condition(g, cond, keep, batch, x->dtype, o->obs_size), "cond", 4 * u->channels, true));
    ed_node *tact = ed_silu(temb);

    ed_node *skips[ED_SIZES_MAX * ED_UNET_MAX_BLOCKS];
    int nskips = 0;
    char scope[32], block[32];
    ed_node *h = conv3(x, "in", u->channels, 1);
    for (int i = 0; i < levels; i++) {
        int64_t width = u->channels * u->mults.v[i];
        snprintf(scope, sizeof scope, "down%d", i);
        ed_scope_push(g, scope);
        for (int64_t j = 0; j < u->blocks; j++) {
            snprintf(block, sizeof block, "block%lld", (long long)j);
            h = res_block(h, tact, block, width, u->groups);
            if (nskips < (int)(sizeof skips / sizeof skips[0])) skips[nskips++] = h;
        }
        if (i < levels - 1) h = conv3(h, "down", width, 2);
        ed_scope_pop(g);
    }
    ed_scope_push(g, "mid");
    h = res_block(h, tact, "block", h ? h->shape.dim[1] : 1, u->groups);
    if (u->attention && h) h = attention(h, "attn", u->groups);
    ed_scope_pop(g);
    for (int i = levels - 1; i >= 0; i--) {
        int64_t width = u->channels * u->mults.v[i];
        snprintf(scope, sizeof scope, "up%d", i);
        ed_scope_push(g, scope);
        for (int64_t j = 0; j < u->blocks; j++) {
            snprintf(block, sizeof block, "block%lld", (long long)j);
            ed_node *parts[2] = {h, nskips > 0 ? skips[--nskips] : NULL};
            h = res_block(ed_concat(parts, 2, 1), tact, block, width, u->groups);
        }
        if (i > 0) h = conv3(ed_upsample_nearest2d(h, 2, 2), "up", u->channels * u->mults.v[i - 1], 1);
        ed_scope_pop(g);
    }
    /* The output conv starts at zero: the first prediction is 0 (see models/denoiser.h). */
    h = silu_gn(h, "out_gn", u->groups);
    ed_node *w = ed_scoped_leaf(g, ED_OP_PARAM, "out.w", x->dtype, ed_shape4(x->shape.dim[1], u->channels, 3, 3),
                                (ed_init){ED_INIT_ZEROS, 0});
    ed_node *b = ed_scoped_leaf(g, ED_OP_PARAM, "out.b", x->dtype, ed_shape1(x->shape.dim[1]),
                                (ed_init){ED_INIT_ZEROS, 0});
    ed_node *out = ed_add(ed_conv2d(h, w, &(ed_conv_opts){.padding = {1, 1}}),
                          per_channel(ed_reshape(b, ed_shape2(1, x->shape.dim[1]))));
    ed_scope_pop(g);
    return out;
}
