/* Consistency models (see consistency.h): options, the consistency function, the CT loss
 * with its EMA target network, sampling and the registry entry. */
#include "models/consistency.h"
#include "models/registry.h"
#include "models/samplers.h"
#include "models/schedules.h"
#include "runtime/error.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const losses[] = {"pseudo_huber", "l2", NULL};
static const char *const noises[] = {"uniform", "lognormal", NULL};
static const char *const weightings[] = {"uniform", "inverse", NULL};
static const char *const teacher_solvers[] = {"euler", "heun", NULL};

#define CM(field) offsetof(ed_cm_opts, field)
const ed_option ed_cm_options[] = {
    {"hidden", ED_OPTION_INT, CM(net.hidden), 256, 2, 65536, NULL,
     "width of the network (even; low-dimensional data: 64)", NULL},
    {"layers", ED_OPTION_INT, CM(net.layers), 4, 0, 64, NULL, "pre-LayerNorm residual MLP blocks (low-dimensional: 2)",
     NULL},
    {"expansion", ED_OPTION_INT, CM(net.expansion), 4, 1, 64, NULL, "block inner width / hidden", NULL},
    {"time_scale", ED_OPTION_REAL, CM(net.time_scale), 10, 1e-6, 1e9, NULL,
     "log(sigma) / 4 is scaled by this before the sinusoidal embedding (1000 aliases between levels)", NULL},
    {"max_period", ED_OPTION_REAL, CM(net.max_period), 10000, 1, 1e12, NULL, "longest period of the time embedding",
     NULL},
    {"sigma_min", ED_OPTION_REAL, CM(sigma_min), 0.002, 1e-6, 1e3, NULL, "the boundary: f(x, sigma_min) = x", NULL},
    {"sigma_max", ED_OPTION_REAL, CM(sigma_max), 80, 1e-3, 1e6, NULL, "the prior's noise level", NULL},
    {"rho", ED_OPTION_REAL, CM(rho), 7, 0.1, 100, NULL, "Karras grid exponent", NULL},
    {"sigma_data", ED_OPTION_REAL, CM(sigma_data), 0.5, 1e-6, 1e6, NULL, "data scale of c_skip, c_out, c_in", NULL},
    {"s0", ED_OPTION_INT, CM(s0), 2, 2, 100000, NULL, "CT: grid points at the start", NULL},
    {"s1", ED_OPTION_INT, CM(s1), 50, 2, 100000, NULL, "CT: grid points - 1 at the end of the schedule", NULL},
    {"schedule_steps", ED_OPTION_INT, CM(schedule_steps), 0, 0, 100000000, NULL,
     "CT: steps over which the grid grows from s0 to s1 + 1 points (0: the run's --steps)", NULL},
    {"mu0", ED_OPTION_REAL, CM(mu0), 0, 0, 0.999999, NULL,
     "CT: the target's EMA rate at s0 points (iCT's 0: the online params; Song et al.'s 0.9)", NULL},
    {"loss", ED_OPTION_ENUM, CM(loss), ED_CM_LOSS_PSEUDO_HUBER, 0, 0, losses,
     "distance of the pair: pseudo-Huber or mean squared error", NULL},
    {"noise", ED_OPTION_ENUM, CM(noise), ED_CM_NOISE_LOGNORMAL, 0, 0, noises,
     "CT: the pair's level n, uniform or iCT's lognormal", NULL},
    {"weighting", ED_OPTION_ENUM, CM(weighting), ED_CM_WEIGHT_INVERSE, 0, 0, weightings,
     "CT: lambda = 1 or iCT's 1 / (sigma_{n+1} - sigma_n)", NULL},
    {"sample_steps", ED_OPTION_INT, CM(sample_steps), 1, 1, 1000, NULL,
     "sampling steps (K: the first K of K + 1 Karras points)", NULL},
    {"teacher", ED_OPTION_PATH, CM(teacher), 0, 0, 0, NULL,
     "CD: a trained flow_matching checkpoint (frozen; copied into this one); none: CT", ""},
    {"cd_grid", ED_OPTION_INT, CM(cd_grid), 18, 0, 100000, NULL,
     "CD: points of the fixed grid from step 0, uniform levels and weights (Song et al.'s 18); 0: CT's grid and "
     "draws (s0, s1, mu0, noise, weighting)",
     NULL},
    {"cd_mu", ED_OPTION_REAL, CM(cd_mu), 0.95, 0, 0.999999, NULL, "CD: the target's EMA rate on the fixed grid", NULL},
    {"teacher_solver", ED_OPTION_ENUM, CM(teacher_solver), ED_CM_TEACHER_HEUN, 0, 0, teacher_solvers,
     "CD: the teacher's ODE step from sigma_{n+1} to sigma_n", NULL},
    {"teacher_hidden", ED_OPTION_INT, CM(teacher_fm.net.hidden), 256, 2, 65536, NULL,
     "the teacher's width (from --teacher)", NULL},
    {"teacher_layers", ED_OPTION_INT, CM(teacher_fm.net.layers), 4, 0, 64, NULL,
     "the teacher's blocks (from --teacher)", NULL},
    {"teacher_expansion", ED_OPTION_INT, CM(teacher_fm.net.expansion), 4, 1, 64, NULL,
     "the teacher's expansion (from --teacher)", NULL},
    {"teacher_time_scale", ED_OPTION_REAL, CM(teacher_fm.net.time_scale), 1000, 1e-6, 1e9, NULL,
     "the teacher's time scale (from --teacher)", NULL},
    {"teacher_max_period", ED_OPTION_REAL, CM(teacher_fm.net.max_period), 10000, 1, 1e12, NULL,
     "the teacher's longest period (from --teacher)", NULL},
    {"teacher_sigma_min", ED_OPTION_REAL, CM(teacher_fm.sigma_min), 0, 0, 0.999, NULL,
     "the teacher's noise left at t = 1 (from --teacher)", NULL},
};
#undef CM

void ed_cm_defaults(ed_cm_opts *o)
{
    *o = (ed_cm_opts){0};
    ed_fm_defaults(&o->teacher_fm); /* the fields no option names (unconditional, no guidance) */
    ed_options_defaults(ed_cm_options, ED_CM_NOPTIONS, o);
}

double ed_cm_karras_sigma(const ed_cm_opts *o, int64_t i, int64_t n)
{
    if (i <= 0) return o->sigma_min;
    if (i >= n - 1) return o->sigma_max;
    double lo = pow(o->sigma_min, 1 / o->rho), hi = pow(o->sigma_max, 1 / o->rho);
    return pow(lo + (double)i / (double)(n - 1) * (hi - lo), o->rho);
}

bool ed_cm_fixed_grid(const ed_cm_opts *o) { return o->teacher.s[0] && o->cd_grid > 0; }

/* The schedule's ends: CD's fixed grid is CT's schedule with s0 = s1 + 1 = cd_grid. */
static void schedule_ends(const ed_cm_opts *o, int64_t *s0, int64_t *s1, double *mu0)
{
    bool fixed = ed_cm_fixed_grid(o);
    *s0 = fixed ? o->cd_grid : o->s0;
    *s1 = fixed ? o->cd_grid - 1 : o->s1;
    *mu0 = fixed ? o->cd_mu : o->mu0;
}

int64_t ed_cm_grid_size(const ed_cm_opts *o, int64_t k)
{
    int64_t s0i, s1i;
    double mu0;
    schedule_ends(o, &s0i, &s1i, &mu0);
    double s0 = (double)s0i, s1 = (double)s1i;
    /* schedule_steps 0 (not yet the run's): the end of the schedule */
    double done = o->schedule_steps < 1 || k >= o->schedule_steps ? 1 : (double)k / (double)o->schedule_steps;
    double r = sqrt(done * ((s1 + 1) * (s1 + 1) - s0 * s0) + s0 * s0);
    return (int64_t)ceil(r - 1) + 1;
}

double ed_cm_ema_rate(const ed_cm_opts *o, int64_t k)
{
    int64_t s0, s1;
    double mu0;
    schedule_ends(o, &s0, &s1, &mu0);
    return exp((double)s0 * log(mu0) / (double)ed_cm_grid_size(o, k));
}

/* Steps whose N(k) differ: the schedule's, or 1 for the fixed grid. */
static int schedule_table_size(const ed_cm_opts *o) { return ed_cm_fixed_grid(o) ? 1 : (int)o->schedule_steps + 1; }

/* The largest grid's points: the grid table's width. */
static int64_t grid_width(const ed_cm_opts *o) { return ed_cm_fixed_grid(o) ? o->cd_grid : o->s1 + 1; }

/* [B] or [] -> broadcastable against x [B, ...]. */
static ed_node *per_sample(ed_node *v, const ed_node *x)
{
    if (v->shape.rank == 0) return v;
    ed_shape s = x->shape;
    for (int i = 1; i < s.rank; i++) s.dim[i] = 1;
    return ed_reshape(v, s);
}

ed_node *ed_cm_function(ed_node *x, ed_node *sigma, const ed_cm_opts *o, const char *name)
{
    if (!x || !sigma) return NULL;
    if (sigma->dtype != x->dtype) sigma = ed_cast(sigma, x->dtype);
    double sd2 = o->sigma_data * o->sigma_data;
    ed_node *off = ed_add_scalar(sigma, -o->sigma_min); /* exactly 0 at sigma_min */
    ed_node *norm = ed_sqrt(ed_add_scalar(ed_square(sigma), sd2));
    ed_node *c_skip = ed_div(ed_scalar_like(sigma, sd2), ed_add_scalar(ed_square(off), sd2));
    ed_node *c_out = ed_div(ed_mul_scalar(off, o->sigma_data), norm);
    ed_node *in = ed_div(x, per_sample(norm, x));
    ed_node *net = ed_denoiser(in, ed_mul_scalar(ed_log(sigma), 0.25), NULL, NULL, &o->net, name);
    return ed_add(ed_mul(per_sample(c_skip, x), x), ed_mul(per_sample(c_out, x), net));
}

/* ---- consistency training ---------------------------------------------------------- */

#define ONLINE "cm"
#define TARGET "cm_ema"

/* The first training step's counter, which drives the schedule. */
static ed_node *step_counter(ed_graph *g)
{
    return ed_state(g, "opt.step", ED_I32, ed_shape0(), (ed_init){ED_INIT_ZEROS, 0});
}

/* N(k) (i32) and mu(k) for k = 0..K as tables gathered at the step (clamped past K). */
static ed_node *grid_size_at(ed_graph *g, ed_node *step, const ed_cm_opts *o)
{
    int n = schedule_table_size(o);
    double *v = ed_graph_alloc(g, (size_t)n * sizeof *v);
    if (!v) return ed_graph_fail(g, "consistency: out of memory");
    for (int k = 0; k < n; k++) v[k] = (double)ed_cm_grid_size(o, k);
    return ed_table_at(ed_table(g, ED_I32, v, n), step);
}

static ed_node *ema_rate_at(ed_graph *g, ed_node *step, const ed_cm_opts *o)
{
    int n = schedule_table_size(o);
    double *v = ed_graph_alloc(g, (size_t)n * sizeof *v);
    if (!v) return ed_graph_fail(g, "consistency: out of memory");
    for (int k = 0; k < n; k++) v[k] = ed_cm_ema_rate(o, k);
    return ed_table_at(ed_table(g, ED_F32, v, n), step);
}

/* Every grid the schedule visits, row N holding the N ascending sigmas: [(Nmax + 1) Nmax]. */
static ed_node *grid_table(ed_graph *g, const ed_cm_opts *o, int64_t width)
{
    int64_t n = (width + 1) * width;
    double *v = ed_graph_alloc(g, (size_t)n * sizeof *v);
    if (!v) return ed_graph_fail(g, "consistency: out of memory");
    for (int64_t row = 0; row <= width; row++)
        for (int64_t i = 0; i < width; i++)
            v[row * width + i] = row >= 2 && i < row ? ed_cm_karras_sigma(o, i, row) : 0;
    return ed_table(g, ED_F32, v, (int)n);
}

/* Row N: the CDF of iCT's lognormal n over the N - 1 pairs of grid N, 1 past them. */
static ed_node *lognormal_cdf_table(ed_graph *g, const ed_cm_opts *o, int64_t width)
{
    double *v = ed_graph_alloc(g, (size_t)((width + 1) * width) * sizeof *v);
    if (!v) return ed_graph_fail(g, "consistency: out of memory");
    const double p_mean = -1.1, p_std = 2.0;
    for (int64_t row = 0; row <= width; row++) {
        double total = 0, *r = v + row * width;
        for (int64_t j = 0; j < width; j++) {
            double w = 0;
            if (row >= 2 && j < row - 1) {
                double a = log(ed_cm_karras_sigma(o, j, row)), b = log(ed_cm_karras_sigma(o, j + 1, row));
                w = erf((b - p_mean) / (sqrt(2) * p_std)) - erf((a - p_mean) / (sqrt(2) * p_std));
            }
            total += w;
            r[j] = total;
        }
        for (int64_t j = 0; j < width; j++) r[j] = row >= 2 && j < row - 1 && total > 0 ? r[j] / total : 1;
    }
    return ed_reshape(ed_table(g, ED_F32, v, (int)((width + 1) * width)), ed_shape2(width + 1, width));
}

/* The pair's lower level n [B] i32 in 0..N-2. */
static ed_node *draw_level(ed_graph *g, ed_node *grid_n, int64_t batch, int64_t width, const ed_cm_opts *o)
{
    ed_node *n;
    /* CD's fixed grid is Song et al.'s CD: uniform levels (the lognormal draw starves its
     * top levels, and one step from sigma_max with them: bench/HISTORY.md) */
    if (o->noise == ED_CM_NOISE_LOGNORMAL && !ed_cm_fixed_grid(o)) { /* how many CDF values lie below u */
        ed_node *u = ed_rand(g, ED_F32, ed_shape2(batch, 1), 0, 1);
        ed_node *cdf = ed_reshape(ed_gather(lognormal_cdf_table(g, o, width), grid_n, 0), ed_shape2(1, width));
        n = ed_sum(ed_lt(cdf, u), 2u, false);
    } else { /* floor(u (N - 1)) */
        ed_node *u = ed_rand(g, ED_F32, ed_shape1(batch), 0, 1);
        n = ed_cast(ed_mul(u, ed_cast(ed_add_scalar(grid_n, -1), ED_F32)), ED_I32);
    }
    /* against u (N - 1) rounding up to N - 1 */
    return ed_minimum(n, ed_add_scalar(grid_n, -2));
}

/* The target network reads the state "cm_ema.*": build it as params "cm_ema.*", then
 * replace each by where(first, stop_gradient(online), state) and remove it, so no
 * "cm_ema" param ever reaches the store. */
static void read_target_state(ed_graph *g, ed_node *first)
{
    int before = g->nnodes, ndead = 0;
    ed_node **dead = malloc((size_t)before * sizeof *dead);
    if (!dead) {
        ed_graph_fail(g, "consistency: out of memory");
        return;
    }
    size_t len = strlen(TARGET ".");
    for (int i = 0; i < before && !ed_graph_error(g); i++) {
        ed_node *p = g->nodes[i];
        if (p->op != ED_OP_PARAM || strncmp(p->attr.name, TARGET ".", len) != 0) continue;
        char online[256];
        snprintf(online, sizeof online, ONLINE ".%s", p->attr.name + len);
        ed_node *theta = ed_graph_leaf(g, ED_OP_PARAM, online);
        ed_node *state = ed_state(g, p->attr.name, p->dtype, p->shape, (ed_init){ED_INIT_ZEROS, 0});
        ed_node *read = ed_where(first, ed_stop_gradient(theta), state);
        if (!theta || !read || ed_replace_all_uses(g, p, read) != ED_OK) {
            ed_graph_fail(g, "consistency: the target's %s has no online twin %s", p->attr.name, online);
            break;
        }
        dead[ndead++] = p;
    }
    bool *mask = calloc((size_t)g->nnodes, 1);
    if (mask && !ed_graph_error(g)) {
        for (int i = 0; i < ndead; i++) mask[dead[i]->id] = true;
        if (ed_graph_remove_nodes(g, mask) != ED_OK) ed_graph_fail(g, "consistency: %s", ed_last_error());
    }
    free(mask);
    free(dead);
}

/* The distance of each pair, weighted by lambda [B] (NULL: 1), averaged over the batch. */
static ed_node *pair_distance(ed_node *a, ed_node *b, ed_node *lambda, const ed_cm_opts *o)
{
    int64_t batch = a->shape.dim[0], dim = ed_shape_numel(a->shape) / (batch ? batch : 1);
    ed_node *ss = ed_sum(ed_square(ed_reshape(ed_sub(a, b), ed_shape2(batch, dim))), 2u, false);
    ed_node *per;
    if (o->loss == ED_CM_LOSS_L2) per = ed_mul_scalar(ss, 1 / (double)dim); /* the mean over elements */
    else {
        double c = 0.00054 * sqrt((double)dim);
        per = ed_add_scalar(ed_sqrt(ed_add_scalar(ss, c * c)), -c);
    }
    return ed_mean(lambda ? ed_mul(lambda, per) : per, ED_ALL_AXES, false);
}

static ed_node *to_model_scale(ed_node *x, const ed_cm_opts *o) { return o->unit_range ? ed_pixels_to_signed(x) : x; }

/* ---- consistency distillation ------------------------------------------------------- */

#define TEACHER "teacher"

/* Flow matching (sigma_min s_fm, c = 1 - s_fm) draws x_t = t x1 + (1 - c t) x0 and its
 * network predicts v = x1 - c x0. Dividing by t: x_t / t = x1 + ((1 - c t) / t) x0, the
 * VE process x = x1 + sigma z at
 *   sigma = 1 / t - c,   t = 1 / (sigma + c),   x_t = t x_sigma.
 * The VE probability-flow ODE is dx/dsigma = (x - x1_hat) / sigma = x0_hat (the noise
 * estimate), and from x_t = t v + x0 (substitute x1 = v + c x0): x0_hat = x_t - t v, so
 *   dx_sigma / dsigma = t (x_sigma - v(t x_sigma, t)),   t = 1 / (sigma + c).
 * (c = 1: x_sigma / (1 + sigma) at t = 1 / (1 + sigma).) The teacher saw the data in its
 * own scale: for [0, 1] data the model's x = 2 y - 1 and sigma = 2 sigma_y, and the slope
 * dx/dsigma = dy/dsigma_y is the same number, read at y = (x + 1) / 2, sigma_y = sigma / 2. */
ed_node *ed_cm_teacher_slope(ed_node *x, ed_node *sigma, const ed_cm_opts *o)
{
    if (!x || !sigma) return NULL;
    ed_graph *g = x->graph;
    if (sigma->dtype != x->dtype) sigma = ed_cast(sigma, x->dtype);
    ed_node *y = o->unit_range ? ed_mul_scalar(ed_add_scalar(x, 1), 0.5) : x;
    ed_node *sy = o->unit_range ? ed_mul_scalar(sigma, 0.5) : sigma;
    ed_node *t = ed_div(ed_scalar_like(sy, 1), ed_add_scalar(sy, 1 - o->teacher_fm.sigma_min));
    ed_node *tb = per_sample(t, y);
    ed_scope_push(g, TEACHER);
    ed_node *v = ed_fm_velocity(ed_mul(tb, y), t, NULL, NULL, &o->teacher_fm);
    ed_scope_pop(g);
    return ed_mul(tb, ed_sub(y, v));
}

/* x_n from x_{n+1} by one step of the teacher's ODE from s_hi to s_lo (both [B]). */
static ed_node *teacher_step(ed_node *x_hi, ed_node *s_hi, ed_node *s_lo, const ed_cm_opts *o)
{
    ed_node *h = per_sample(ed_sub(s_lo, s_hi), x_hi);
    ed_node *d = ed_cm_teacher_slope(x_hi, s_hi, o);
    ed_node *euler = ed_add(x_hi, ed_mul(h, d));
    if (o->teacher_solver == ED_CM_TEACHER_EULER) return euler;
    ed_node *d2 = ed_cm_teacher_slope(euler, s_lo, o);
    return ed_add(x_hi, ed_mul(ed_mul_scalar(h, 0.5), ed_add(d, d2)));
}

ed_node *ed_cm_loss(ed_graph *g, ed_node *x, const ed_cm_opts *o)
{
    if (!x || ed_graph_error(g)) return NULL;
    if (o->s1 + 1 < o->s0 || !(o->sigma_min < o->sigma_max))
        return ed_graph_fail(g, "consistency: needs s1 + 1 >= s0 and sigma_min < sigma_max");
    if (!ed_cm_fixed_grid(o) && o->schedule_steps < 1)
        return ed_graph_fail(g, "consistency: schedule_steps is 0 (the run's steps, which the trainer sets); give it "
                                "to build the loss alone");
    x = to_model_scale(x, o);
    int64_t batch = x->shape.dim[0], width = grid_width(o);
    ed_node *step = step_counter(g);
    ed_node *first = ed_eq(step, ed_scalar(g, ED_I32, 0));
    ed_node *grid_n = grid_size_at(g, step, o);
    ed_node *n = draw_level(g, grid_n, batch, width, o);
    ed_node *at = ed_add(ed_mul_scalar(grid_n, (double)width), n);
    ed_node *grid = grid_table(g, o, width);
    ed_node *s_lo = ed_gather(grid, at, 0), *s_hi = ed_gather(grid, ed_add_scalar(at, 1), 0);
    if (x->dtype != ED_F32) s_lo = ed_cast(s_lo, x->dtype), s_hi = ed_cast(s_hi, x->dtype);
    ed_node *z = ed_randn(g, x->dtype, x->shape);
    ed_node *x_hi = ed_add(x, ed_mul(per_sample(s_hi, x), z));
    ed_node *x_lo = o->teacher.s[0] ? ed_stop_gradient(teacher_step(x_hi, s_hi, s_lo, o))
                                    : ed_add(x, ed_mul(per_sample(s_lo, x), z));
    ed_node *online = ed_cm_function(x_hi, s_hi, o, ONLINE);
    ed_node *target = ed_cm_function(x_lo, s_lo, o, TARGET);
    if (ed_graph_error(g)) return NULL;
    read_target_state(g, first);
    bool inverse = o->weighting == ED_CM_WEIGHT_INVERSE && !ed_cm_fixed_grid(o); /* CD's fixed grid: lambda 1 */
    ed_node *lambda = inverse ? ed_div(ed_scalar_like(s_hi, 1), ed_sub(s_hi, s_lo)) : NULL;
    return pair_distance(online, ed_stop_gradient(target), lambda, o);
}

int ed_cm_target_update(ed_graph *g, const ed_cm_opts *o)
{
    if (!g || ed_graph_error(g)) return ED_ERR;
    ed_node *step = step_counter(g);
    ed_node *first = ed_eq(step, ed_scalar(g, ED_I32, 0));
    ed_node *mu = ema_rate_at(g, step, o);
    size_t len = strlen(TARGET ".");
    int before = g->nnodes;
    for (int i = 0; i < before && !ed_graph_error(g); i++) {
        ed_node *s = g->nodes[i];
        if (s->op != ED_OP_STATE || strncmp(s->attr.name, TARGET ".", len) != 0) continue;
        char online[256];
        snprintf(online, sizeof online, ONLINE ".%s", s->attr.name + len);
        ed_node *theta = ed_graph_leaf(g, ED_OP_PARAM, online), *theta_new = ed_graph_update(g, online);
        if (!theta || !theta_new) {
            ed_graph_fail(g, "consistency: the step does not train %s, which the target %s averages", online,
                          s->attr.name);
            break;
        }
        ed_node *old = ed_where(first, theta, s);
        ed_node *mu_t = s->dtype == ED_F32 ? mu : ed_cast(mu, s->dtype);
        ed_update(g, s->attr.name, ed_add(ed_mul(mu_t, old), ed_mul(ed_sub(ed_scalar_like(mu_t, 1), mu_t), theta_new)));
    }
    return ed_graph_error(g) ? ED_ERR : ED_OK;
}

/* ---- sampling ------------------------------------------------------------------------ */

static ed_node *consistency_fn(ed_graph *body, ed_node *x, const ed_denoise_in *in, void *ctx)
{
    (void)body;
    return ed_cm_function(x, in->t, ctx, ONLINE);
}

ed_node *ed_cm_sample(ed_graph *g, int64_t n, ed_shape shape, int64_t steps, const ed_cm_opts *o)
{
    if (!g || ed_graph_error(g)) return NULL;
    int64_t k = steps ? steps : o->sample_steps;
    if (k < 1 || k > 1000)
        return ed_graph_fail(g, "sample consistency: steps must be in [1, 1000], got %lld", (long long)k);
    double *sigmas = ed_graph_alloc(g, (size_t)k * sizeof *sigmas);
    if (!sigmas) return ed_graph_fail(g, "sample consistency: out of memory");
    /* descending, no sigma_min; on CD's fixed grid the nearest of its points (it was
     * trained at those levels only, and between them its time features alias) */
    int64_t points = o->cd_grid;
    for (int64_t i = 0; i < k; i++)
        sigmas[i] = ed_cm_fixed_grid(o)
                        ? ed_cm_karras_sigma(o, llround((double)(k - i) * (double)(points - 1) / (double)k), points)
                        : ed_cm_karras_sigma(o, k - i, k + 1);
    ed_model model = {consistency_fn, (void *)o, ED_PRED_X0};
    shape.dim[0] = n;
    ed_sample_spec spec = {.shape = shape, .dtype = ED_F32};
    ed_consistency_opts so = {.steps = (int)k, .sigmas = sigmas, .sigma_max = o->sigma_max, .sigma_min = o->sigma_min};
    ed_sample_result r = ed_sample_consistency(g, &model, &spec, &so);
    if (!r.samples || !o->unit_range) return r.samples;
    return ed_signed_to_pixels(r.samples);
}

/* ---- the registry entry ------------------------------------------------------------- */

/* Vectors of at most this many numbers (the 2-D sets) get the small network, as
 * score_sde's: with the 8000-step default run it samples moons in one step nearer the
 * floor than flow matching's defaults do in 20 (bench/HISTORY.md). */
#define SMALL_DATA_DIM 16

static void model_defaults(ed_gen_model *m)
{
    ed_cm_defaults(&m->opts.cm);
    m->opts.cm.unit_range = m->unit_range;
    if (m->sample.rank == 1 && m->sample.dim[0] <= SMALL_DATA_DIM)
        m->opts.cm.net.hidden = 64, m->opts.cm.net.layers = 2;
}

static int model_check(const ed_gen_model *m)
{
    const ed_cm_opts *o = &m->opts.cm;
    if (m->obs_size) return ed_fail("model consistency is unconditional: the data have observations");
    if (!(o->sigma_min < o->sigma_max)) return ed_fail("model consistency: sigma_min must be below sigma_max");
    if (o->s1 + 1 < o->s0) return ed_fail("model consistency: s1 + 1 must be at least s0");
    if ((o->s1 + 2) * (o->s1 + 1) > 1 << 26 || (o->cd_grid + 1) * o->cd_grid > 1 << 26)
        return ed_fail("model consistency: s1 or cd_grid is too large for the grid table");
    if (o->cd_grid == 1) return ed_fail("model consistency: cd_grid must be 0 (CT's growing grid) or at least 2");
    ed_cm_opts d;
    ed_cm_defaults(&d);
    bool ct_set = o->s0 != d.s0 || o->s1 != d.s1 || o->mu0 != d.mu0 || o->noise != d.noise ||
                  o->weighting != d.weighting;
    if (ed_cm_fixed_grid(o) && ct_set)
        return ed_fail("model consistency: s0, s1, mu0, noise and weighting shape CT's training; with --teacher "
                       "the grid is fixed (cd_grid %lld points, cd_mu %g, uniform levels and weights): give "
                       "--cd_grid 0 to distil with them",
                       (long long)o->cd_grid, o->cd_mu);
    if (!o->teacher.s[0] && (o->cd_grid != d.cd_grid || o->cd_mu != d.cd_mu))
        return ed_fail("model consistency: cd_grid and cd_mu are for distillation (--teacher CKPT)");
    return ED_OK;
}

static ed_node *model_loss(ed_graph *g, const ed_gen_model *m, const ed_batch *b)
{
    return ed_cm_loss(g, b->x, &m->opts.cm);
}

static int model_finish(ed_graph *g, const ed_gen_model *m) { return ed_cm_target_update(g, &m->opts.cm); }

/* CD's teacher: an unconditional flow-matching model of the same samples, whose process
 * reaches sigma_min (t = 1 / (sigma + c) <= 1 on the whole grid). */
static int adopt_teacher(ed_gen_model *m, const ed_gen_model *teacher)
{
    if (teacher->obs_size || teacher->opts.fm.net.obs_size)
        return ed_fail("the teacher is conditional; consistency distillation needs an unconditional one");
    if (teacher->opts.fm.signed_range == 1)
        return ed_fail("a teacher trained on [-1, 1] pixels (signed_range 1, the flow_matching --arch conv default) is "
                       "not implemented for distillation: train it with --signed_range 0");
    ed_cm_opts *o = &m->opts.cm;
    double lowest = o->unit_range ? o->sigma_min / 2 : o->sigma_min; /* in the teacher's scale */
    if (teacher->opts.fm.sigma_min > lowest)
        return ed_fail("the teacher's sigma_min %g leaves more noise than this model's lowest level %g "
                       "(its sigma_min in the teacher's scale)",
                       teacher->opts.fm.sigma_min, lowest);
    o->teacher_fm = teacher->opts.fm;
    return ED_OK;
}

static ed_node *model_sample(ed_graph *g, const ed_gen_model *m, int64_t n, ed_node *obs, ed_node *labels,
                             const ed_gen_sample_opts *so)
{
    (void)obs, (void)labels;
    if (so->sampler && *so->sampler && strcmp(so->sampler, "consistency") != 0)
        return ed_graph_fail(g, "sample consistency: unknown sampler '%s' (samplers: consistency)", so->sampler);
    if (so->has_guidance || so->has_eta)
        return ed_graph_fail(g,
                             "sample consistency: no guidance or eta (an unconditional model sampled with --steps K)");
    return ed_cm_sample(g, n, ed_gen_model_batch_shape(m, n), so->steps, &m->opts.cm);
}

static const char *const online_group[] = {ONLINE ".", NULL};

const ed_model_def ed_consistency_model = {
    .name = "consistency",
    .summary =
        "consistency model (consistency training, or distillation from --teacher CKPT; EMA target), one-step or multistep sampling",
    .options = ed_cm_options,
    .noptions = ED_CM_NOPTIONS,
    .defaults = model_defaults,
    .check = model_check,
    .nsteps = 1,
    .steps = {{.name = "train", .groups = online_group, .loss = model_loss, .finish = model_finish}},
    .default_steps = 8000,
    .run_steps_option = "schedule_steps",
    .nfrozen = 1,
    .frozen =
        {{.option = "teacher", .model = "flow_matching", .scope = TEACHER, .adopt = adopt_teacher, .optional = true}},
    .sample = model_sample,
    .samplers = "consistency",
};
