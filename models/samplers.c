/* Diffusion-family samplers as loop graphs (see samplers.h).
 *
 * Every sampler follows the same plan: compute, on the host in double, the numbers each
 * iteration needs (times, noise levels, and the update's coefficients with the model's
 * parameterization folded in), put each as a const table in the loop body, gather by
 * the loop index, and write the update with a handful of elementwise ops. So the body
 * is the same size whatever the step count, and no schedule is recomputed in f32. */
#include "models/samplers.h"

#include "frontend/loop.h"
#include "runtime/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *pred_names[ED_PRED_COUNT] = {"eps", "x0", "velocity", "score"};
static const char *ode_names[ED_ODE_COUNT] = {"euler", "heun", "midpoint", "rk4"};

const char *ed_pred_name(ed_pred p) { return (unsigned)p < ED_PRED_COUNT ? pred_names[p] : "?"; }
const char *ed_ode_method_name(ed_ode_method k) { return (unsigned)k < ED_ODE_COUNT ? ode_names[k] : "?"; }

static bool parse_name(const char *s, const char *const *names, int n, int *out)
{
    for (int i = 0; i < n; i++)
        if (s && strcmp(s, names[i]) == 0) {
            *out = i;
            return true;
        }
    return false;
}

bool ed_pred_parse(const char *s, ed_pred *out)
{
    int k;
    if (!parse_name(s, pred_names, ED_PRED_COUNT, &k)) return false;
    *out = (ed_pred)k;
    return true;
}

bool ed_ode_method_parse(const char *s, ed_ode_method *out)
{
    int k;
    if (!parse_name(s, ode_names, ED_ODE_COUNT, &k)) return false;
    *out = (ed_ode_method)k;
    return true;
}

/* ---- the one place where parameterizations convert ---------------------------------- */

/* Coefficients with x0_hat = c[0] x + c[1] out and eps_hat = c[2] x + c[3] out, where
 * x = alpha x0 + sigma eps and out is the model's output. False where singular. */
static bool pred_coefficients(ed_pred p, const ed_level *l, double c[4])
{
    double a = l->alpha, s = l->sigma;
    switch (p) {
    case ED_PRED_EPS: /* x0 = (x - s eps) / a */ c[0] = 1 / a, c[1] = -s / a, c[2] = 0, c[3] = 1; break;
    case ED_PRED_X0: /* eps = (x - a x0) / s */ c[0] = 0, c[1] = 1, c[2] = 1 / s, c[3] = -a / s; break;
    case ED_PRED_VELOCITY: { /* solve x = a x0 + s eps, v = v_a x0 + v_s eps */
        double det = a * l->v_s - s * l->v_a;
        c[0] = l->v_s / det, c[1] = -s / det, c[2] = -l->v_a / det, c[3] = a / det;
        break;
    }
    case ED_PRED_SCORE: /* eps = -s score, x0 = (x + s^2 score) / a */
        c[0] = 1 / a, c[1] = s * s / a, c[2] = 0, c[3] = -s;
        break;
    default: return false;
    }
    for (int i = 0; i < 4; i++)
        if (!isfinite(c[i])) return false;
    return true;
}

/* ---- building blocks ------------------------------------------------------------------ */

/* One sampler under construction. */
typedef struct {
    ed_graph *g; /* outer graph */
    const ed_model *m;
    ed_dtype dt;
    ed_shape shape;
    bool trajectory;
    int n; /* iterations */
    ed_loop_builder *loop;
    ed_graph *body;
    ed_node *idx;    /* loop index, i32 [] */
    const char *who; /* sampler name for errors */
} build;

/* What one model evaluation needs per iteration, host side. */
typedef struct {
    double *t, *alpha, *sigma, *c[4];
} eval_host;

static double *dalloc(build *b, int n) { return ed_graph_alloc(b->g, (size_t)n * sizeof(double)); }

static void eval_host_alloc(build *b, eval_host *e)
{
    e->t = dalloc(b, b->n), e->alpha = dalloc(b, b->n), e->sigma = dalloc(b, b->n);
    for (int i = 0; i < 4; i++) e->c[i] = dalloc(b, b->n);
}

/* Record the level of iteration k; false (with the graph error) where the model's
 * parameterization is singular. */
static bool eval_host_set(build *b, eval_host *e, int k, const ed_level *l)
{
    double c[4];
    if (!pred_coefficients(b->m->pred, l, c)) {
        ed_graph_fail(b->g,
                      "%s: the %s parameterization is singular at iteration %d (t = %g, alpha = %g, sigma = %g); "
                      "move the grid off that end",
                      b->who, ed_pred_name(b->m->pred), k, l->t, l->alpha, l->sigma);
        return false;
    }
    e->t[k] = l->t, e->alpha[k] = l->alpha, e->sigma[k] = l->sigma;
    for (int i = 0; i < 4; i++) e->c[i][k] = c[i];
    return true;
}

/* A per-iteration value in the body: the table gathered at the loop index. */
static ed_node *per_step(build *b, const double *v) { return ed_table_at(ed_table(b->body, b->dt, v, b->n), b->idx); }

/* a * x + c * y with scalars a, c; NULL if anything is NULL (the error is recorded). */
static ed_node *axpby(ed_node *a, ed_node *x, ed_node *c, ed_node *y) { return ed_add(ed_mul(a, x), ed_mul(c, y)); }

/* The model's raw output at x for the iteration's level e, checked for type. */
static ed_node *model_out(build *b, const eval_host *e, ed_node *x)
{
    if (!x) return NULL;
    ed_denoise_in in = {
        .loop = b->loop, .t = per_step(b, e->t), .alpha = per_step(b, e->alpha), .sigma = per_step(b, e->sigma)};
    ed_node *out = b->m->fn(b->body, x, &in, b->m->ctx);
    if (!out) {
        if (!ed_graph_error(b->body) && !ed_graph_error(b->g))
            ed_graph_fail(b->body, "%s: the denoiser returned NULL", b->who);
        return NULL;
    }
    if (out->graph != b->body || out->dtype != x->dtype || !ed_shape_eq(out->shape, x->shape)) {
        char want[64], got[64];
        return ed_graph_fail(b->body, "%s: the denoiser must return %s in the loop body, got %s%s", b->who,
                             ed_node_type_str(x, want, sizeof want), ed_node_type_str(out, got, sizeof got),
                             out->graph != b->body ? " from another graph" : "");
    }
    return out;
}

/* x0_hat and eps_hat at x (either output may be NULL). With clip > 0, x0_hat is clamped
 * and eps_hat recomputed from it. */
static bool model_eval(build *b, const eval_host *e, ed_node *x, double clip, ed_node **x0, ed_node **eps)
{
    ed_node *out = model_out(b, e, x);
    if (!out) return false;
    ed_node *c[4];
    for (int i = 0; i < 4; i++) c[i] = per_step(b, e->c[i]);
    ed_node *x0h = axpby(c[0], x, c[1], out);
    if (clip > 0) {
        x0h = ed_clamp(x0h, -clip, clip);
        /* eps from the clipped x0: (x - alpha x0) / sigma */
        if (eps) *eps = ed_div(ed_sub(x, ed_mul(per_step(b, e->alpha), x0h)), per_step(b, e->sigma));
    } else if (eps) {
        *eps = axpby(c[2], x, c[3], out);
    }
    if (x0) *x0 = x0h;
    return true;
}

static ed_node *noise(build *b) { return ed_randn(b->body, b->dt, b->shape); }

static ed_sample_result fail_result(ed_graph *g, const char *who, const char *msg)
{
    ed_graph_fail(g, "%s: %s", who, msg);
    return (ed_sample_result){0};
}

/* Check the common arguments, draw or take x_init, and open the loop. */
static bool begin(build *b, ed_graph *g, const ed_model *m, const ed_sample_spec *spec, int n, double prior_scale,
                  const char *who, ed_node **x)
{
    memset(b, 0, sizeof *b);
    b->g = g, b->m = m, b->who = who, b->n = n;
    if (!g) return false;
    if (ed_graph_error(g)) return false;
    if (!m || !m->fn || !spec) {
        ed_graph_fail(g, "%s: needs a model with a denoiser callback and a sample spec", who);
        return false;
    }
    if ((unsigned)m->pred >= ED_PRED_COUNT) {
        ed_graph_fail(g, "%s: unknown model parameterization %d", who, (int)m->pred);
        return false;
    }
    b->dt = spec->dtype ? spec->dtype : ED_F32;
    b->shape = spec->shape;
    b->trajectory = spec->trajectory;
    if (b->dt != ED_F32 && b->dt != ED_F64) {
        ed_graph_fail(g, "%s: samples must be f32 or f64", who);
        return false;
    }
    if (spec->x_init) {
        if (spec->x_init->graph != g || spec->x_init->dtype != b->dt) {
            ed_graph_fail(g, "%s: x_init must be a %s node of the outer graph", who, ed_dtype_name(b->dt));
            return false;
        }
        b->shape = spec->x_init->shape;
    }
    if (b->shape.rank < 1) {
        ed_graph_fail(g, "%s: the sample shape needs a batch axis (rank >= 1)", who);
        return false;
    }
    if (n < 1) {
        ed_graph_fail(g, "%s: needs at least one step (got %d)", who, n);
        return false;
    }
    ed_node *x0 = spec->x_init ? spec->x_init : ed_randn(g, b->dt, b->shape);
    if (!spec->x_init && prior_scale != 1) x0 = ed_mul(x0, ed_scalar(g, b->dt, prior_scale));
    b->loop = ed_loop_begin(g, n);
    if (!b->loop) return false;
    b->body = ed_loop_body(b->loop);
    b->idx = ed_loop_index(b->loop);
    *x = ed_loop_carried(b->loop, x0);
    if (*x) return true;
    ed_node *none = NULL;
    ed_loop_end(b->loop, &none, 1, NULL, 0); /* frees the builder; the error stays on g */
    return false;
}

/* Close the loop with next as the new x; stacks next when a trajectory is asked for. */
static ed_sample_result finish(build *b, ed_node *next)
{
    ed_sample_result r = {.iterations = b->n};
    if (!next) {
        if (!ed_graph_error(b->g) && !ed_graph_error(b->body))
            ed_graph_fail(b->body, "%s: building the step failed", b->who);
        ed_node *none = NULL;
        ed_loop_end(b->loop, &none, 1, NULL, 0); /* frees the builder; the error stays */
        return r;
    }
    ed_node *stk[1] = {next};
    ed_node *loop = ed_loop_end(b->loop, &next, 1, stk, b->trajectory ? 1 : 0);
    if (!loop) return r;
    r.loop = loop;
    r.samples = ed_loop_result(loop, 0);
    if (b->trajectory) r.trajectory = ed_loop_result(loop, 1);
    return r;
}

static double or_default(double v, double d) { return v != 0 ? v : d; }

/* The discrete schedule of a beta option set, on the graph's arena. */
static double *discrete_alpha_bar(ed_graph *g, const ed_beta_opts *o, int *T, double **beta)
{
    *T = ed_beta_steps(o);
    if (*T < 1) {
        ed_graph_fail(g, "beta schedule: steps must be >= 1 (got %d)", *T);
        return NULL;
    }
    double *bt = ed_graph_alloc(g, (size_t)*T * sizeof(double)), *ab = ed_graph_alloc(g, (size_t)*T * sizeof(double));
    if (ed_betas(o, bt) != ED_OK) {
        ed_graph_fail(g, "%s", ed_last_error());
        return NULL;
    }
    ed_alphas(bt, *T, NULL, ab);
    if (beta) *beta = bt;
    return ab;
}

/* ---- DDPM ----------------------------------------------------------------------------- */

ed_sample_result ed_sample_ddpm(ed_graph *g, const ed_model *m, const ed_sample_spec *spec, const ed_ddpm_opts *o)
{
    ed_ddpm_opts d = o ? *o : (ed_ddpm_opts){0};
    int T;
    double *beta;
    double *ab = g && !ed_graph_error(g) ? discrete_alpha_bar(g, &d.beta, &T, &beta) : NULL;
    if (!ab) return (ed_sample_result){0};
    build b;
    ed_node *x;
    if (!begin(&b, g, m, spec, T, 1, "ddpm", &x)) return (ed_sample_result){0};
    eval_host e;
    eval_host_alloc(&b, &e);
    double *cx0 = dalloc(&b, T), *cxt = dalloc(&b, T), *sd = dalloc(&b, T);
    for (int k = 0; k < T; k++) {
        int t = T - 1 - k;
        double abp = t > 0 ? ab[t - 1] : 1;
        ed_level l = ed_discrete_level(t, ab[t]);
        if (!eval_host_set(&b, &e, k, &l)) return finish(&b, NULL);
        /* the posterior q(x_{t-1} | x_t, x0) mean and variance */
        cx0[k] = sqrt(abp) * beta[t] / (1 - ab[t]);
        cxt[k] = sqrt(1 - beta[t]) * (1 - abp) / (1 - ab[t]);
        double var = d.posterior_variance ? (1 - abp) / (1 - ab[t]) * beta[t] : beta[t];
        sd[k] = t > 0 ? sqrt(var) : 0;
    }
    ed_node *z = ed_mul(per_step(&b, sd), noise(&b)), *next;
    if (d.clip_x0) {
        ed_node *x0h;
        if (!model_eval(&b, &e, x, or_default(d.clip, 1), &x0h, NULL)) return finish(&b, NULL);
        next = axpby(per_step(&b, cx0), x0h, per_step(&b, cxt), x);
    } else {
        /* Fold the conversion into the step: x' = (cx0 c0 + cxt) x + cx0 c1 out. In f32
         * this avoids forming x0_hat from a difference of large terms near t = T. */
        double *p = dalloc(&b, T), *q = dalloc(&b, T);
        for (int k = 0; k < T; k++) p[k] = cx0[k] * e.c[0][k] + cxt[k], q[k] = cx0[k] * e.c[1][k];
        next = axpby(per_step(&b, p), x, per_step(&b, q), model_out(&b, &e, x));
    }
    return finish(&b, next ? ed_add(next, z) : NULL);
}

/* ---- DDIM ----------------------------------------------------------------------------- */

ed_sample_result ed_sample_ddim(ed_graph *g, const ed_model *m, const ed_sample_spec *spec, const ed_ddim_opts *o)
{
    ed_ddim_opts d = o ? *o : (ed_ddim_opts){0};
    int T, S = d.steps ? d.steps : 50;
    double *ab = g && !ed_graph_error(g) ? discrete_alpha_bar(g, &d.beta, &T, NULL) : NULL;
    if (!ab) return (ed_sample_result){0};
    if (d.eta < 0) return fail_result(g, "ddim", "eta must be >= 0");
    int *tau = ed_graph_alloc(g, (size_t)(S > 0 ? S : 1) * sizeof(int));
    if (d.timesteps) {
        for (int i = 0; i < S; i++) {
            tau[i] = d.timesteps[i];
            if (tau[i] < 0 || tau[i] >= T || (i > 0 && tau[i] <= tau[i - 1]))
                return fail_result(g, "ddim", "custom timesteps must be strictly increasing within 0..T-1");
        }
    } else if (ed_ddim_timesteps(T, S, d.spacing, tau) != ED_OK) {
        return fail_result(g, "ddim", ed_last_error());
    }
    build b;
    ed_node *x;
    if (!begin(&b, g, m, spec, S, 1, "ddim", &x)) return (ed_sample_result){0};
    eval_host e;
    eval_host_alloc(&b, &e);
    double *c0 = dalloc(&b, S), *c1 = dalloc(&b, S), *sd = dalloc(&b, S);
    for (int k = 0; k < S; k++) {
        int i = S - 1 - k, t = tau[i];
        double abt = ab[t], abp = i > 0 ? ab[tau[i - 1]] : 1;
        ed_level l = ed_discrete_level(t, abt);
        if (!eval_host_set(&b, &e, k, &l)) return finish(&b, NULL);
        double s = d.eta * sqrt((1 - abp) / (1 - abt)) * sqrt(1 - abt / abp);
        c0[k] = sqrt(abp);
        c1[k] = sqrt(fmax(0, 1 - abp - s * s));
        sd[k] = s;
    }
    ed_node *next;
    if (d.clip_x0) {
        ed_node *x0h, *epsh;
        if (!model_eval(&b, &e, x, or_default(d.clip, 1), &x0h, &epsh)) return finish(&b, NULL);
        next = axpby(per_step(&b, c0), x0h, per_step(&b, c1), epsh);
    } else {
        /* folded as in DDPM: x' = (c0 x0_c + c1 eps_c) x + (...) out */
        double *p = dalloc(&b, S), *q = dalloc(&b, S);
        for (int k = 0; k < S; k++)
            p[k] = c0[k] * e.c[0][k] + c1[k] * e.c[2][k], q[k] = c0[k] * e.c[1][k] + c1[k] * e.c[3][k];
        next = axpby(per_step(&b, p), x, per_step(&b, q), model_out(&b, &e, x));
    }
    if (next && d.eta > 0) next = ed_add(next, ed_mul(per_step(&b, sd), noise(&b)));
    return finish(&b, next);
}

/* ---- ODE integrators -------------------------------------------------------------------- */

/* A model evaluation that returns the drift dx/dt = dalpha x0_hat + dsigma eps_hat, with
 * the conversion folded into two coefficients: drift = d1 x + d2 out. */
typedef struct {
    eval_host e;
    double *d1, *d2;
} drift_host;

static void drift_host_alloc(build *b, drift_host *h)
{
    eval_host_alloc(b, &h->e);
    h->d1 = dalloc(b, b->n), h->d2 = dalloc(b, b->n);
}

static bool drift_host_set(build *b, drift_host *h, int k, const ed_process *p, double t)
{
    ed_level l = ed_process_level(p, t);
    if (!eval_host_set(b, &h->e, k, &l)) return false;
    h->d1[k] = l.dalpha * h->e.c[0][k] + l.dsigma * h->e.c[2][k];
    h->d2[k] = l.dalpha * h->e.c[1][k] + l.dsigma * h->e.c[3][k];
    return true;
}

static ed_node *drift(build *b, const drift_host *h, ed_node *x)
{
    return axpby(per_step(b, h->d1), x, per_step(b, h->d2), model_out(b, &h->e, x));
}

static ed_node *plus_h(build *b, ed_node *x, ed_node *h, double frac, ed_node *k)
{
    ed_node *hh = frac == 1 ? h : ed_mul(h, ed_scalar(b->body, b->dt, frac));
    return ed_add(x, ed_mul(hh, k));
}

static bool process_ok(ed_graph *g, const ed_process *p, const char *who, bool sde)
{
    if ((unsigned)p->kind >= ED_PROC_COUNT) {
        ed_graph_fail(g, "%s: unknown process %d", who, (int)p->kind);
        return false;
    }
    if (sde && p->kind == ED_PROC_FLOW) {
        ed_graph_fail(g, "%s: flow matching has no SDE; use ed_sample_ode", who);
        return false;
    }
    return true;
}

/* The scale of the prior draw at the start time: VE sigma(t0); VP and flow N(0, I). */
static double prior_std(const ed_process *p, double t0)
{
    return p->kind == ED_PROC_VE ? ed_process_level(p, t0).sigma : 1;
}

ed_sample_result ed_sample_ode(ed_graph *g, const ed_model *m, const ed_sample_spec *spec, const ed_ode_opts *o)
{
    ed_ode_opts d = o ? *o : (ed_ode_opts){0};
    int n = d.steps ? d.steps : 50;
    if (!g || ed_graph_error(g)) return (ed_sample_result){0};
    if (!process_ok(g, &d.process, "ode", false)) return (ed_sample_result){0};
    if ((unsigned)d.method >= ED_ODE_COUNT) return fail_result(g, "ode", "unknown method");
    if (n < 1) return fail_result(g, "ode", "needs at least one step");
    double *times = ed_graph_alloc(g, (size_t)(n + 1) * sizeof(double));
    if (d.times) {
        memcpy(times, d.times, (size_t)(n + 1) * sizeof(double));
    } else {
        double eps = or_default(d.t_eps, 1e-3);
        if (d.process.kind == ED_PROC_FLOW) ed_time_grid(0, 1, n, times);
        else ed_time_grid(1, eps, n, times);
    }
    /* Stage times as fractions of the step: Euler {0}, Heun {0, 1}, midpoint {0, 1/2},
     * RK4 {0, 1/2, 1/2, 1} (the two halves share their tables). */
    static const double frac[ED_ODE_COUNT][3] = {{0}, {0, 1}, {0, 0.5}, {0, 0.5, 1}};
    static const int nstage[ED_ODE_COUNT] = {1, 2, 2, 3};
    build b;
    ed_node *x;
    if (!begin(&b, g, m, spec, n, prior_std(&d.process, times[0]), "ode", &x)) return (ed_sample_result){0};
    drift_host st[3];
    double *h = dalloc(&b, n);
    for (int j = 0; j < nstage[d.method]; j++) drift_host_alloc(&b, &st[j]);
    for (int k = 0; k < n; k++) {
        h[k] = times[k + 1] - times[k];
        for (int j = 0; j < nstage[d.method]; j++)
            if (!drift_host_set(&b, &st[j], k, &d.process, times[k] + frac[d.method][j] * h[k]))
                return finish(&b, NULL);
    }
    ed_node *hn = per_step(&b, h), *next = NULL;
    ed_node *k1 = drift(&b, &st[0], x);
    switch (d.method) {
    case ED_ODE_EULER: next = plus_h(&b, x, hn, 1, k1); break;
    case ED_ODE_HEUN: {
        ed_node *k2 = drift(&b, &st[1], plus_h(&b, x, hn, 1, k1));
        next = plus_h(&b, x, hn, 0.5, ed_add(k1, k2));
        break;
    }
    case ED_ODE_MIDPOINT: next = plus_h(&b, x, hn, 1, drift(&b, &st[1], plus_h(&b, x, hn, 0.5, k1))); break;
    case ED_ODE_RK4: {
        ed_node *k2 = drift(&b, &st[1], plus_h(&b, x, hn, 0.5, k1));
        ed_node *k3 = drift(&b, &st[1], plus_h(&b, x, hn, 0.5, k2));
        ed_node *k4 = drift(&b, &st[2], plus_h(&b, x, hn, 1, k3));
        ed_node *two = ed_scalar(b.body, b.dt, 2);
        ed_node *sum = ed_add(ed_add(k1, ed_mul(two, k2)), ed_add(ed_mul(two, k3), k4));
        next = plus_h(&b, x, hn, 1.0 / 6, sum);
        break;
    }
    default: break;
    }
    return finish(&b, next);
}

/* ---- reverse SDEs -------------------------------------------------------------------- */

/* Host tables of one Euler-Maruyama step x' = p x + q out + sd z at level e, and of the
 * score at the same level (for the corrector): score = s1 x + s2 out. */
typedef struct {
    eval_host e;
    double *p, *q, *sd, *s1, *s2, *lang_a;
} sde_host;

static bool sde_host_build(build *b, sde_host *sh, const ed_sde_opts *d, int n)
{
    eval_host_alloc(b, &sh->e);
    sh->p = dalloc(b, n), sh->q = dalloc(b, n), sh->sd = dalloc(b, n);
    sh->s1 = dalloc(b, n), sh->s2 = dalloc(b, n), sh->lang_a = dalloc(b, n);
    double eps = or_default(d->t_eps, 1e-3);
    for (int k = 0; k < n; k++) {
        double ta = 1 + (eps - 1) * ((double)k / n), tb = k + 1 == n ? eps : 1 + (eps - 1) * ((double)(k + 1) / n);
        double h = tb - ta; /* negative: time runs backwards */
        ed_level l = ed_process_level(&d->process, ta);
        if (!eval_host_set(b, &sh->e, k, &l)) return false;
        double *c = (double[4]){sh->e.c[0][k], sh->e.c[1][k], sh->e.c[2][k], sh->e.c[3][k]};
        /* reverse drift f x - g^2 score with score = -eps_hat / sigma */
        double gs = l.g2 / l.sigma;
        sh->p[k] = 1 + h * (l.f + gs * c[2]);
        sh->q[k] = h * gs * c[3];
        sh->sd[k] = k + 1 < n || d->final_noise ? sqrt(l.g2 * -h) : 0;
        sh->s1[k] = -c[2] / l.sigma;
        sh->s2[k] = -c[3] / l.sigma;
        sh->lang_a[k] = d->process.kind == ED_PROC_VP ? 1 - l.g2 * -h : 1;
    }
    return true;
}

static ed_node *em_step(build *b, const sde_host *sh, ed_node *x)
{
    ed_node *out = model_out(b, &sh->e, x);
    if (!out) return NULL;
    return ed_add(axpby(per_step(b, sh->p), x, per_step(b, sh->q), out), ed_mul(per_step(b, sh->sd), noise(b)));
}

/* Mean over the batch of the per-sample L2 norm (axes 1.. summed). */
static ed_node *batch_norm_mean(ed_node *v)
{
    unsigned axes = ((1u << v->shape.rank) - 1) & ~1u;
    ed_node *n = axes ? ed_sqrt(ed_sum(ed_square(v), axes, false)) : ed_abs(v);
    return ed_mean(n, ED_ALL_AXES, false);
}

static ed_node *langevin_step(build *b, const sde_host *sh, ed_node *x, double snr)
{
    ed_node *out = model_out(b, &sh->e, x);
    if (!out) return NULL;
    ed_node *score = axpby(per_step(b, sh->s1), x, per_step(b, sh->s2), out);
    ed_node *z = noise(b);
    ed_node *ratio = ed_div(ed_mul(ed_scalar(b->body, b->dt, snr), batch_norm_mean(z)), batch_norm_mean(score));
    ed_node *e = ed_mul(ed_mul(ed_scalar(b->body, b->dt, 2), per_step(b, sh->lang_a)), ed_square(ratio));
    ed_node *sd = ed_sqrt(ed_mul(ed_scalar(b->body, b->dt, 2), e));
    return ed_add(ed_add(x, ed_mul(e, score)), ed_mul(sd, z));
}

static bool sde_check(ed_graph *g, const ed_sde_opts *d, const char *who)
{
    if (!g || ed_graph_error(g)) return false;
    if (!process_ok(g, &d->process, who, true)) return false;
    double eps = or_default(d->t_eps, 1e-3);
    if (!(eps > 0 && eps < 1)) {
        ed_graph_fail(g, "%s: t_eps must be in (0, 1) (got %g)", who, eps);
        return false;
    }
    return true;
}

ed_sample_result ed_sample_euler_maruyama(ed_graph *g, const ed_model *m, const ed_sample_spec *spec,
                                          const ed_sde_opts *o)
{
    ed_sde_opts d = o ? *o : (ed_sde_opts){0};
    int n = d.steps ? d.steps : 1000;
    if (!sde_check(g, &d, "euler_maruyama")) return (ed_sample_result){0};
    build b;
    ed_node *x;
    if (!begin(&b, g, m, spec, n, prior_std(&d.process, 1), "euler_maruyama", &x)) return (ed_sample_result){0};
    sde_host sh;
    if (!sde_host_build(&b, &sh, &d, n)) return finish(&b, NULL);
    return finish(&b, em_step(&b, &sh, x));
}

ed_sample_result ed_sample_pc(ed_graph *g, const ed_model *m, const ed_sample_spec *spec, const ed_pc_opts *o)
{
    ed_pc_opts d = o ? *o : (ed_pc_opts){0};
    int n = d.sde.steps ? d.sde.steps : 1000;
    int nc = d.corrector_steps ? d.corrector_steps : 1;
    double snr = or_default(d.snr, 0.16);
    if (!sde_check(g, &d.sde, "pc")) return (ed_sample_result){0};
    if (nc < 0 || snr < 0) return fail_result(g, "pc", "corrector_steps and snr must be >= 0");
    build b;
    ed_node *x;
    if (!begin(&b, g, m, spec, n, prior_std(&d.sde.process, 1), "pc", &x)) return (ed_sample_result){0};
    sde_host sh;
    if (!sde_host_build(&b, &sh, &d.sde, n)) return finish(&b, NULL);
    for (int k = 0; k < n; k++) /* VP's a = 1 - beta dt: a grid this coarse has no valid step */
        if (!(sh.lang_a[k] > 0)) {
            ed_graph_fail(g, "pc: step %d is too coarse for the VP corrector (1 - beta dt = %g); use more steps", k,
                          sh.lang_a[k]);
            return finish(&b, NULL);
        }
    for (int j = 0; j < nc && x; j++) x = langevin_step(&b, &sh, x, snr);
    return finish(&b, x ? em_step(&b, &sh, x) : NULL);
}

/* ---- consistency -------------------------------------------------------------------- */

ed_sample_result ed_sample_consistency(ed_graph *g, const ed_model *m, const ed_sample_spec *spec,
                                       const ed_consistency_opts *o)
{
    ed_consistency_opts d = o ? *o : (ed_consistency_opts){0};
    int n = d.steps ? d.steps : 1;
    double smax = or_default(d.sigma_max, 80), smin = or_default(d.sigma_min, 0.002);
    if (!g || ed_graph_error(g)) return (ed_sample_result){0};
    if (n < 1) return fail_result(g, "consistency", "needs at least one step");
    double *sig = ed_graph_alloc(g, (size_t)n * sizeof(double));
    if (d.sigmas) memcpy(sig, d.sigmas, (size_t)n * sizeof(double));
    else if (n == 1) sig[0] = smax;
    else if (n == 2) sig[0] = smax, sig[1] = 0.661;
    else return fail_result(g, "consistency", "more than two steps need explicit sigmas");
    for (int k = 0; k < n; k++)
        if (!(sig[k] > smin) || (k > 0 && sig[k] >= sig[k - 1]))
            return fail_result(g, "consistency", "sigmas must be descending and above sigma_min");
    build b;
    ed_node *x;
    if (!begin(&b, g, m, spec, n, sig[0], "consistency", &x)) return (ed_sample_result){0};
    eval_host e;
    eval_host_alloc(&b, &e);
    double *sd = dalloc(&b, n);
    for (int k = 0; k < n; k++) {
        ed_level l = {.t = sig[k], .alpha = 1, .sigma = sig[k], .v_a = 0, .v_s = 1};
        if (!eval_host_set(&b, &e, k, &l)) return finish(&b, NULL);
        /* the first iteration starts from the prior draw itself */
        sd[k] = k > 0 ? sqrt(sig[k] * sig[k] - smin * smin) : 0;
    }
    /* x carries the current x0 estimate (the prior draw before the first step). */
    ed_node *xin = n > 1 ? ed_add(x, ed_mul(per_step(&b, sd), noise(&b))) : x;
    ed_node *x0h;
    if (!model_eval(&b, &e, xin, 0, &x0h, NULL)) return finish(&b, NULL);
    return finish(&b, x0h);
}
