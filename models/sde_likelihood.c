/* The probability-flow ODE log-likelihood (see sde_likelihood.h). Host tables per step
 * and stage, gathered by the loop index, as the samplers do. */
#include "models/sde_likelihood.h"

#include "frontend/loop.h"
#include "passes/autodiff.h"

#include <math.h>

#define PI 3.14159265358979323846
#define MAX_STAGES 3 /* distinct stage times per step: RK4's 0, 1/2, 1 */

/* Per stage, per step: the time and level the model sees, and the drift's p and q. */
typedef struct {
    double *t, *alpha, *sigma, *p, *q;
} stage_host;

typedef struct {
    ed_graph *body;
    ed_loop_builder *loop;
    ed_node *idx, *probe;
    const ed_model *m;
    ed_dtype dt;
    int n;
    double dim; /* elements per sample */
} pf_build;

static ed_node *per_step(pf_build *b, const double *v)
{
    return ed_table_at(ed_table(b->body, b->dt, v, b->n), b->idx);
}

/* The sum over every axis but the first: [B, ...] -> [B]. */
static ed_node *row_sum(ed_node *v)
{
    unsigned axes = ((1u << v->shape.rank) - 1) & ~1u;
    return axes ? ed_sum(v, axes, false) : v;
}

/* f(x) and the Hutchinson divergence [B] at one stage. */
static bool stage_eval(pf_build *b, const stage_host *s, ed_node *x, ed_node **f, ed_node **div)
{
    ed_denoise_in in = {
        .loop = b->loop, .t = per_step(b, s->t), .alpha = per_step(b, s->alpha), .sigma = per_step(b, s->sigma)};
    ed_node *e = b->m->fn(b->body, x, &in, b->m->ctx);
    if (!e) return false;
    ed_node *p = per_step(b, s->p), *q = per_step(b, s->q);
    *f = ed_add(ed_mul(p, x), ed_mul(q, e));
    /* v . d(v . eps_hat)/dx, per sample: the samples do not interact, so the gradient of
     * the batch sum holds each sample's own vector-Jacobian product. */
    ed_node *vjp = ed_grad1(ed_sum(ed_mul(e, b->probe), ED_ALL_AXES, false), x);
    ed_node *hutch = vjp ? row_sum(ed_mul(vjp, b->probe)) : NULL;
    *div = ed_add(ed_mul_scalar(p, b->dim), ed_mul(q, hutch));
    return *f && *div;
}

static bool stage_set(stage_host *s, int k, const ed_process *p, double t)
{
    ed_level l = ed_process_level(p, t);
    s->t[k] = t, s->alpha[k] = l.alpha, s->sigma[k] = l.sigma;
    s->p[k] = l.dalpha / l.alpha;
    s->q[k] = l.dsigma - l.dalpha * l.sigma / l.alpha;
    return isfinite(s->p[k]) && isfinite(s->q[k]) && l.sigma > 0;
}

static ed_node *probe(ed_graph *g, ed_node *x, ed_probe_kind kind)
{
    if (kind == ED_PROBE_GAUSSIAN) return ed_randn(g, x->dtype, x->shape);
    return ed_add_scalar(ed_mul_scalar(ed_bernoulli(g, x->dtype, x->shape, 0.5), 2), -1);
}

/* x + h * frac * k, h a [] node. */
static ed_node *step(ed_node *x, ed_node *h, double frac, ed_node *k)
{
    return ed_add(x, ed_mul(frac == 1 ? h : ed_mul_scalar(h, frac), k));
}

/* The prior's log-density at t = 1, [B]. */
static ed_node *prior_log_density(ed_node *x1, const ed_process *p, double dim)
{
    double s = p->kind == ED_PROC_VE ? ed_process_level(p, 1).sigma : 1;
    ed_node *q = ed_mul_scalar(row_sum(ed_square(x1)), -0.5 / (s * s));
    return ed_add_scalar(q, -0.5 * dim * log(2 * PI * s * s));
}

ed_node *ed_pf_log_prob(ed_graph *g, const ed_model *m, ed_node *x, const ed_pf_nll_opts *o)
{
    ed_pf_nll_opts d = o ? *o : (ed_pf_nll_opts){0};
    if (!g || !x || ed_graph_error(g)) return NULL;
    int n = d.steps ? d.steps : 100;
    double eps = d.t_eps != 0 ? d.t_eps : 1e-5;
    if (d.process.kind != ED_PROC_VP && d.process.kind != ED_PROC_VE)
        return ed_graph_fail(g, "pf_log_prob: the process must be VP or VE");
    if (!m || !m->fn || m->pred != ED_PRED_EPS) return ed_graph_fail(g, "pf_log_prob: needs a model predicting eps");
    if ((unsigned)d.method >= ED_ODE_COUNT || (unsigned)d.probe >= ED_PROBE_COUNT || n < 1)
        return ed_graph_fail(g, "pf_log_prob: bad method, probe or step count");
    if (!(eps > 0 && eps < 1)) return ed_graph_fail(g, "pf_log_prob: t_eps must be in (0, 1) (got %g)", eps);
    if (x->shape.rank < 1 || !ed_dtype_is_float(x->dtype))
        return ed_graph_fail(g, "pf_log_prob: x must be a float batch [B, ...]");

    /* Stage times as fractions of a step, as the samplers' ODE: Euler {0}, Heun {0, 1},
     * midpoint {0, 1/2}, RK4 {0, 1/2, 1}. */
    static const double frac[ED_ODE_COUNT][MAX_STAGES] = {{0}, {0, 1}, {0, 0.5}, {0, 0.5, 1}};
    static const int nstage[ED_ODE_COUNT] = {1, 2, 2, 3};
    pf_build b = {.m = m, .dt = x->dtype, .n = n, .dim = (double)(ed_shape_numel(x->shape) / x->shape.dim[0])};
    stage_host st[MAX_STAGES];
    double *h = ed_graph_alloc(g, (size_t)n * sizeof *h);
    for (int j = 0; j < nstage[d.method]; j++) {
        double *mem = ed_graph_alloc(g, 5 * (size_t)n * sizeof *mem);
        if (!mem) return ed_graph_fail(g, "pf_log_prob: out of memory");
        st[j] = (stage_host){mem, mem + n, mem + 2 * n, mem + 3 * n, mem + 4 * n};
    }
    if (!h) return ed_graph_fail(g, "pf_log_prob: out of memory");
    for (int k = 0; k < n; k++) {
        double ta = eps + (1 - eps) * k / n, tb = k + 1 == n ? 1 : eps + (1 - eps) * (k + 1) / n;
        h[k] = tb - ta;
        for (int j = 0; j < nstage[d.method]; j++)
            if (!stage_set(&st[j], k, &d.process, ta + frac[d.method][j] * h[k]))
                return ed_graph_fail(g, "pf_log_prob: the process is singular at t = %g", ta);
    }

    ed_node *v = probe(g, x, d.probe);
    ed_node *zero = ed_fill(g, x->dtype, ed_shape1(x->shape.dim[0]), 0);
    b.loop = ed_loop_begin(g, n);
    b.body = ed_loop_body(b.loop);
    b.idx = ed_loop_index(b.loop);
    ed_node *xc = ed_loop_carried(b.loop, x), *acc = ed_loop_carried(b.loop, zero);
    b.probe = ed_loop_capture(b.loop, v);
    ed_node *hn = per_step(&b, h), *f1, *d1, *next[2] = {NULL, NULL};
    if (stage_eval(&b, &st[0], xc, &f1, &d1)) {
        ed_node *f2, *d2, *f3, *d3, *f4, *d4;
        switch (d.method) {
        case ED_ODE_EULER: next[0] = step(xc, hn, 1, f1), next[1] = step(acc, hn, 1, d1); break;
        case ED_ODE_HEUN:
            if (!stage_eval(&b, &st[1], step(xc, hn, 1, f1), &f2, &d2)) break;
            next[0] = step(xc, hn, 0.5, ed_add(f1, f2)), next[1] = step(acc, hn, 0.5, ed_add(d1, d2));
            break;
        case ED_ODE_MIDPOINT:
            if (!stage_eval(&b, &st[1], step(xc, hn, 0.5, f1), &f2, &d2)) break;
            next[0] = step(xc, hn, 1, f2), next[1] = step(acc, hn, 1, d2);
            break;
        case ED_ODE_RK4:
            if (!stage_eval(&b, &st[1], step(xc, hn, 0.5, f1), &f2, &d2) ||
                !stage_eval(&b, &st[1], step(xc, hn, 0.5, f2), &f3, &d3) ||
                !stage_eval(&b, &st[2], step(xc, hn, 1, f3), &f4, &d4))
                break;
            next[0] = step(xc, hn, 1.0 / 6, ed_add(ed_add(f1, ed_mul_scalar(f2, 2)), ed_add(ed_mul_scalar(f3, 2), f4)));
            next[1] = step(acc, hn, 1.0 / 6,
                           ed_add(ed_add(d1, ed_mul_scalar(d2, 2)), ed_add(ed_mul_scalar(d3, 2), d4)));
            break;
        default: break;
        }
    }
    if (!next[0] || !next[1]) {
        if (!ed_graph_error(g) && !ed_graph_error(b.body))
            ed_graph_fail(b.body, "pf_log_prob: building the step failed");
        ed_node *none = NULL;
        ed_loop_end(b.loop, &none, 1, NULL, 0); /* frees the builder; the error stays on g */
        return NULL;
    }
    ed_node *loop = ed_loop_end(b.loop, next, 2, NULL, 0);
    if (!loop) return NULL;
    return ed_add(prior_log_density(ed_loop_result(loop, 0), &d.process, b.dim), ed_loop_result(loop, 1));
}
