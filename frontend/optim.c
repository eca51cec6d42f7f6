/* Optimizer steps, clipping, EMA and schedules built from ordinary ops. */
#include "frontend/optim.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const double PI = 3.14159265358979323846;

static const char *const optimizer_names[ED_OPT_COUNT] = {"sgd", "adam", "adamw"};

const char *ed_optimizer_name(ed_optimizer k) { return (unsigned)k < ED_OPT_COUNT ? optimizer_names[k] : "?"; }

bool ed_optimizer_parse(const char *s, ed_optimizer *out)
{
    for (int i = 0; s && i < ED_OPT_COUNT; i++)
        if (strcmp(s, optimizer_names[i]) == 0) {
            if (out) *out = (ed_optimizer)i;
            return true;
        }
    return false;
}

static double or_default(double v, double d) { return v != 0 ? v : d; }

static ed_node *scalar(ed_graph *g, ed_dtype dt, double v) { return ed_scalar(g, dt, v); }

ed_node *ed_schedule_factor(ed_node *step, const ed_schedule *s, ed_dtype dt)
{
    if (!step) return NULL;
    ed_graph *g = step->graph;
    ed_schedule sc = s ? *s : (ed_schedule){0};
    if (sc.kind == ED_SCHED_CONSTANT) return scalar(g, dt, 1);
    if ((unsigned)sc.kind >= ED_SCHED_COUNT || sc.warmup_steps < 0 ||
        (sc.kind == ED_SCHED_COSINE && sc.total_steps <= sc.warmup_steps))
        return ed_graph_fail(
            g, "schedule: kind %d with warmup %lld and total %lld steps is not valid (cosine needs total > warmup)",
            (int)sc.kind, (long long)sc.warmup_steps, (long long)sc.total_steps);
    ed_node *t = ed_cast(step, dt);
    ed_node *warm = scalar(g, dt, 1);
    if (sc.warmup_steps > 0) warm = ed_minimum(warm, ed_mul_scalar(ed_add_scalar(t, 1), 1.0 / (double)sc.warmup_steps));
    if (sc.kind == ED_SCHED_WARMUP) return warm;
    double span = (double)(sc.total_steps - sc.warmup_steps);
    ed_node *progress = ed_clamp(ed_mul_scalar(ed_add_scalar(t, -(double)sc.warmup_steps), 1.0 / span), 0, 1);
    ed_node *cosine = ed_mul_scalar(ed_add_scalar(ed_cos(ed_mul_scalar(progress, PI)), 1), 0.5);
    ed_node *decay = ed_add_scalar(ed_mul_scalar(cosine, 1 - sc.min_ratio), sc.min_ratio);
    return ed_mul(warm, decay);
}

ed_node *ed_global_norm(ed_node *const *grads, int n)
{
    ed_node *sq = NULL;
    for (int i = 0; i < n; i++) {
        ed_node *s = ed_sum(ed_square(grads[i]), ED_ALL_AXES, false);
        if (sq && s && s->dtype != sq->dtype) s = ed_cast(s, sq->dtype);
        sq = sq ? ed_add(sq, s) : s;
    }
    return ed_sqrt(sq);
}

ed_node *ed_clip_by_global_norm(ed_node *const *grads, int n, double max_norm, ed_node **out)
{
    ed_node *norm = ed_global_norm(grads, n);
    ed_node *factor = ed_minimum(ed_scalar_like(norm, 1),
                                 ed_div(ed_scalar_like(norm, max_norm), ed_add_scalar(norm, 1e-6)));
    for (int i = 0; i < n; i++) {
        ed_node *f = factor && grads[i] && factor->dtype != grads[i]->dtype ? ed_cast(factor, grads[i]->dtype) : factor;
        out[i] = ed_mul(grads[i], f);
    }
    return norm;
}

/* "<prefix><what>.<name>" as optimizer state of param p's type, zero-initialized. */
static ed_node *slot(ed_graph *g, const char *prefix, const char *what, const ed_node *p)
{
    char name[512];
    snprintf(name, sizeof name, "%s%s.%s", prefix, what, p->attr.name ? p->attr.name : p->name ? p->name : "?");
    return ed_state(g, name, p->dtype, p->shape, (ed_init){ED_INIT_ZEROS, 0});
}

static void bind_update(ed_graph *g, ed_node *leaf, ed_node *value)
{
    if (leaf && value) ed_update(g, leaf->attr.name, value);
}

/* Adam's beta1 (k = 1) or beta2: as given with exact_betas, else zero means the default. */
static double beta(const ed_optim_opts *o, int k)
{
    double b = k == 1 ? o->beta1 : o->beta2;
    return o->exact_betas ? b : or_default(b, k == 1 ? 0.9 : 0.999);
}

/* Step-level scalars in one dtype: learning rate and Adam's bias corrections. */
typedef struct {
    ed_node *lr, *corr1, *corr2;
} step_scalars;

static step_scalars scalars_for(ed_graph *g, ed_node *step, const ed_optim_opts *o, ed_dtype dt)
{
    double lr = or_default(o->lr, 1e-3);
    step_scalars s = {.lr = ed_mul(scalar(g, dt, lr), ed_schedule_factor(step, &o->schedule, dt))};
    if (o->kind != ED_OPT_SGD) {
        ed_node *t = ed_cast(ed_add(step, ed_scalar(g, ED_I32, 1)), dt);
        double b1 = beta(o, 1), b2 = beta(o, 2);
        s.corr1 = ed_sub(scalar(g, dt, 1), ed_pow(scalar(g, dt, b1), t)); /* 1 - beta1^t */
        s.corr2 = ed_sub(scalar(g, dt, 1), ed_pow(scalar(g, dt, b2), t));
    }
    return s;
}

static ed_node *sgd_update(ed_graph *g, ed_node *p, ed_node *grad, const ed_optim_opts *o, const step_scalars *s,
                           const char *prefix)
{
    ed_node *d = grad;
    if (o->momentum != 0) {
        ed_node *buf = slot(g, prefix, "mom", p);
        ed_node *buf_new = ed_add(ed_mul_scalar(buf, o->momentum), grad);
        bind_update(g, buf, buf_new);
        d = o->nesterov ? ed_add(grad, ed_mul_scalar(buf_new, o->momentum)) : buf_new;
    }
    return ed_sub(p, ed_mul(s->lr, d));
}

static ed_node *adam_update(ed_graph *g, ed_node *p, ed_node *grad, const ed_optim_opts *o, const step_scalars *s,
                            const char *prefix)
{
    double b1 = beta(o, 1), b2 = beta(o, 2), eps = or_default(o->eps, 1e-8);
    ed_node *m = slot(g, prefix, "m", p), *v = slot(g, prefix, "v", p);
    ed_node *m_new = ed_add(ed_mul_scalar(m, b1), ed_mul_scalar(grad, 1 - b1));
    ed_node *v_new = ed_add(ed_mul_scalar(v, b2), ed_mul_scalar(ed_square(grad), 1 - b2));
    bind_update(g, m, m_new);
    bind_update(g, v, v_new);
    ed_node *mhat = ed_div(m_new, s->corr1), *vhat = ed_div(v_new, s->corr2);
    ed_node *base = p;
    if (o->kind == ED_OPT_ADAMW && o->weight_decay != 0) /* decoupled: p (1 - lr wd) */
        base = ed_sub(p, ed_mul(ed_mul_scalar(s->lr, o->weight_decay), p));
    return ed_sub(base, ed_mul(s->lr, ed_div(mhat, ed_add_scalar(ed_sqrt(vhat), eps))));
}

ed_node *ed_optimizer_step(ed_graph *g, ed_node *const *params, ed_node *const *grads, int n, const ed_optim_opts *opts)
{
    if (!g || ed_graph_error(g)) return NULL;
    ed_optim_opts o = opts ? *opts : (ed_optim_opts){0};
    if ((unsigned)o.kind >= ED_OPT_COUNT || o.lr < 0 || o.momentum < 0 || o.weight_decay < 0 || o.clip_norm < 0 ||
        o.beta1 < 0 || o.beta1 >= 1 || o.beta2 < 0 || o.beta2 >= 1 || o.eps < 0)
        return ed_graph_fail(
            g, "optimizer: bad options (kind %d, lr %g, momentum %g, betas %g %g, eps %g, weight decay %g, clip %g)",
            (int)o.kind, o.lr, o.momentum, o.beta1, o.beta2, o.eps, o.weight_decay, o.clip_norm);
    if (o.nesterov && o.momentum == 0) return ed_graph_fail(g, "optimizer: nesterov needs momentum > 0");
    const char *prefix = o.prefix ? o.prefix : "opt.";
    for (int i = 0; i < n; i++)
        if (!params[i] || params[i]->op != ED_OP_PARAM || !grads[i])
            return ed_graph_fail(g, "optimizer: item %d is not a param with a gradient", i);

    char step_name[256];
    snprintf(step_name, sizeof step_name, "%sstep", prefix);
    ed_node *step = ed_state(g, step_name, ED_I32, ed_shape0(), (ed_init){ED_INIT_ZEROS, 0});
    ed_node *clipped[n > 0 ? n : 1];
    const ed_node *const *use = (const ed_node *const *)grads;
    if (o.clip_norm > 0 && n > 0) {
        ed_clip_by_global_norm(grads, n, o.clip_norm, clipped);
        use = (const ed_node *const *)clipped;
    }
    step_scalars per_dtype[ED_DTYPE_COUNT] = {{0}};
    bool have[ED_DTYPE_COUNT] = {0};
    ed_node *lr_first = NULL;
    for (int i = 0; i < n; i++) {
        ed_node *p = params[i], *grad = (ed_node *)use[i];
        if (!have[p->dtype]) {
            per_dtype[p->dtype] = scalars_for(g, step, &o, p->dtype);
            have[p->dtype] = true;
        }
        const step_scalars *s = &per_dtype[p->dtype];
        if (!lr_first) lr_first = s->lr;
        if (o.weight_decay != 0 && o.kind != ED_OPT_ADAMW) grad = ed_add(grad, ed_mul_scalar(p, o.weight_decay));
        ed_node *p_new = o.kind == ED_OPT_SGD ? sgd_update(g, p, grad, &o, s, prefix)
                                              : adam_update(g, p, grad, &o, s, prefix);
        bind_update(g, p, p_new);
    }
    bind_update(g, step, ed_add(step, ed_scalar(g, ED_I32, 1)));
    if (!lr_first) lr_first = ed_mul_scalar(ed_schedule_factor(step, &o.schedule, ED_F32), or_default(o.lr, 1e-3));
    return ed_graph_error(g) ? NULL : lr_first;
}

/* The decay at this step, of dtype dt: min(decay, (1 + step) / (10 + step)). */
static ed_node *warm_decay(ed_graph *g, ed_node *step, double decay, ed_dtype dt)
{
    ed_node *s = ed_cast(step, dt);
    return ed_minimum(ed_scalar(g, dt, decay), ed_div(ed_add_scalar(s, 1), ed_add_scalar(s, 10)));
}

int ed_ema(ed_graph *g, const char *const *names, ed_node *const *values, int n, double decay, bool warmup,
           ed_node *step, const char *prefix)
{
    if (!g || ed_graph_error(g) || !step) return -1;
    if (!(decay >= 0 && decay <= 1)) {
        ed_graph_fail(g, "ema: decay must be in [0, 1], got %g", decay);
        return -1;
    }
    const char *pre = prefix ? prefix : "opt.";
    ed_node *first = ed_eq(step, ed_scalar(g, ED_I32, 0));
    for (int i = 0; i < n; i++) {
        ed_node *v = values[i];
        if (!v) return -1;
        char name[512];
        snprintf(name, sizeof name, "%sema.%s", pre, names[i]);
        ed_node *ema = ed_state(g, name, v->dtype, v->shape, (ed_init){ED_INIT_ZEROS, 0});
        ed_node *avg;
        if (warmup) {
            ed_node *d = warm_decay(g, step, decay, v->dtype);
            avg = ed_add(ed_mul(ema, d), ed_mul(v, ed_sub(ed_scalar(g, v->dtype, 1), d)));
        } else {
            avg = ed_add(ed_mul_scalar(ema, decay), ed_mul_scalar(v, 1 - decay));
        }
        bind_update(g, ema, ed_where(first, v, avg));
    }
    return ed_graph_error(g) ? -1 : 0;
}
