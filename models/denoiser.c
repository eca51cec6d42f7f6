#include "models/denoiser.h"
#include "models/unet.h"

#include <math.h>
#include <stdio.h>

/* [sin(2 pi W t), cos(2 pi W t)] for t [B] -> [B, hidden], W the fixed random state. */
static ed_node *fourier_features(ed_node *t, ed_dtype dt, const ed_denoiser_opts *o)
{
    ed_graph *g = t->graph;
    char name[256];
    snprintf(name, sizeof name, "%s.fourier.w", ed_scope(g));
    ed_node *w = ed_state(g, name, dt, ed_shape2(1, o->hidden / 2), (ed_init){ED_INIT_NORMAL, o->fourier_scale});
    ed_node *angle = ed_matmul(ed_reshape(ed_mul_scalar(t, 6.283185307179586), ed_shape2(t->shape.dim[0], 1)), w);
    ed_node *parts[2] = {ed_sin(angle), ed_cos(angle)};
    return ed_concat(parts, 2, 1);
}

/* t [B] or [] -> [B, hidden]. */
static ed_node *time_embedding(ed_node *t, int64_t batch, ed_dtype dt, const ed_denoiser_opts *o)
{
    if (t->dtype != dt) t = ed_cast(t, dt);
    if (o->time_features == ED_TIME_FOURIER) {
        if (t->shape.rank == 1) return fourier_features(t, dt, o);
        return ed_broadcast_to(fourier_features(ed_reshape(t, ed_shape1(1)), dt, o), ed_shape2(batch, o->hidden));
    }
    if (o->time_scale != 1) t = ed_mul_scalar(t, o->time_scale);
    if (t->shape.rank == 0) {
        ed_node *e = ed_timestep_embedding(ed_reshape(t, ed_shape1(1)), o->hidden, o->max_period);
        return ed_broadcast_to(e, ed_shape2(batch, o->hidden));
    }
    return ed_timestep_embedding(t, o->hidden, o->max_period);
}

/* The condition features [B, obs + 1]: (obs * keep, keep), or zeros for the null one. */
static ed_node *condition(ed_graph *g, ed_node *cond, ed_node *keep, int64_t batch, ed_dtype dt,
                          const ed_denoiser_opts *o)
{
    if (!cond) return ed_fill(g, dt, ed_shape2(batch, o->obs_size + 1), 0);
    if (cond->dtype != dt) cond = ed_cast(cond, dt);
    if (!keep) keep = ed_fill(g, dt, ed_shape2(batch, 1), 1);
    ed_node *parts[2] = {ed_mul(cond, keep), keep};
    return ed_concat(parts, 2, 1);
}

const char *const ed_denoiser_arch_names[ED_ARCH_COUNT + 1] = {"mlp", "conv", NULL};

ed_node *ed_denoiser(ed_node *x, ed_node *t, ed_node *cond, ed_node *keep, const ed_denoiser_opts *o, const char *name)
{
    if (o->arch == ED_ARCH_CONV) return ed_unet(x, t, cond, keep, o, name);
    if (!x || !t) return NULL;
    ed_graph *g = x->graph;
    if (ed_graph_error(g)) return NULL;
    if (x->shape.rank < 2 || !ed_dtype_is_float(x->dtype))
        return ed_graph_fail(g, "denoiser %s: x must be a float batch [B, ...], rank >= 2", name);
    if (o->hidden < 2 || o->hidden % 2 || o->layers < 0 || o->expansion < 1)
        return ed_graph_fail(g, "denoiser %s: hidden must be even and >= 2, layers >= 0, expansion >= 1", name);
    int64_t batch = x->shape.dim[0], d = ed_shape_numel(x->shape) / (batch ? batch : 1);
    if (t->shape.rank > 1 || (t->shape.rank == 1 && t->shape.dim[0] != batch))
        return ed_graph_fail(g, "denoiser %s: t must be [] or [%lld]", name, (long long)batch);
    if (o->obs_size == 0 && cond)
        return ed_graph_fail(g, "denoiser %s: an unconditional model was given a condition", name);
    if (cond && (cond->shape.rank != 2 || cond->shape.dim[0] != batch || cond->shape.dim[1] != o->obs_size))
        return ed_graph_fail(g, "denoiser %s: cond must be [%lld, %lld]", name, (long long)batch,
                             (long long)o->obs_size);

    ed_scope_push(g, name);
    ed_node *parts[3];
    int np = 0;
    parts[np++] = ed_reshape(x, ed_shape2(batch, d));
    parts[np++] = time_embedding(t, batch, x->dtype, o);
    if (o->obs_size > 0) parts[np++] = ed_dense(condition(g, cond, keep, batch, x->dtype, o), "cond", o->hidden, true);
    ed_node *h = ed_silu(ed_dense(ed_concat(parts, np, 1), "in", o->hidden, true));
    for (int64_t i = 0; i < o->layers; i++) {
        char block[32];
        snprintf(block, sizeof block, "block%lld", (long long)i);
        ed_scope_push(g, block);
        ed_node *u = ed_layer_norm(h, "ln", 1e-5, true);
        u = ed_silu(ed_dense(u, "fc1", o->expansion * o->hidden, true));
        h = ed_add(h, ed_dense(u, "fc2", o->hidden, true));
        ed_scope_pop(g);
    }
    /* The output layer starts at zero, so the first prediction is 0 and the first
     * loss is the target's variance rather than that plus a random network's output. */
    char wname[256], bname[256];
    snprintf(bname, sizeof bname, "%s.out.w", ed_scope(g)); /* 16-bit for sampling: a copy, as ed_dense's */
    ed_dtype wdt = ed_matmul_weight_name(g, x->dtype, bname, wname, sizeof wname);
    snprintf(bname, sizeof bname, "%s.out.b", ed_scope(g));
    ed_node *w = ed_param(g, wname, wdt, ed_shape2(o->hidden, d), (ed_init){ED_INIT_ZEROS, 0});
    ed_node *b = ed_param(g, bname, x->dtype, ed_shape1(d), (ed_init){ED_INIT_ZEROS, 0});
    ed_node *out = ed_reshape(ed_add(ed_matmul(h, w), b), x->shape);
    ed_scope_pop(g);
    return out;
}
