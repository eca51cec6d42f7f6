/* RealNVP's graph builders: masked affine couplings, the logit pre-transform, uniform
 * dequantisation, the exact log density and the exact inverse (models/realnvp.h). */
#include "models/realnvp.h"
#include "models/registry.h"
#include "runtime/error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PI 3.14159265358979323846

static const char *const masks[] = {"halves", "parity", "checkerboard", NULL};
static const char *const scales[] = {"fixed", "learned", NULL};

#define RN(field) offsetof(ed_realnvp_opts, field)
const ed_option ed_realnvp_options[] = {
    {"couplings", ED_OPTION_INT, RN(couplings), 4, 1, 256, NULL, "affine coupling layers", NULL},
    {"hidden", ED_OPTION_SIZES, RN(hidden), 0, 1, 65536, NULL, "hidden widths of each coupling's conditioner", "256"},
    {"activation", ED_OPTION_ENUM, RN(activation), ED_ACT_RELU, 0, 0, ed_activation_names, "conditioner activation",
     NULL},
    {"mask", ED_OPTION_ENUM, RN(mask), ED_RNVP_MASK_HALVES, 0, 0, masks,
     "coupling masks, alternating with their complement (checkerboard: 1-channel images)", NULL},
    {"scale_bound", ED_OPTION_REAL, RN(scale_bound), 1, 1e-3, 100, NULL, "log-scale s = scale_bound * tanh(raw)", NULL},
    {"scale", ED_OPTION_ENUM, RN(scale), ED_RNVP_SCALE_FIXED, 0, 0, scales,
     "the bound fixed, or times a learned per-coordinate factor", NULL},
    {"logit_alpha", ED_OPTION_REAL, RN(logit_alpha), 0.05, 0, 0.49, NULL,
     "image data: y = logit(a + (1 - 2a) v) (0: no pre-transform)", NULL},
};
#undef RN

void ed_realnvp_defaults(ed_realnvp_opts *o)
{
    *o = (ed_realnvp_opts){0};
    ed_options_defaults(ed_realnvp_options, ED_REALNVP_NOPTIONS, o);
}

/* ---- checks --------------------------------------------------------------------- */

static bool uses_logit(const ed_realnvp_opts *o) { return o->levels > 0 && o->logit_alpha > 0; }

/* The checkerboard's grid: the given one, or a square one for height = width = 0. */
static bool grid(const ed_realnvp_opts *o, int64_t *h, int64_t *w)
{
    *h = o->height;
    *w = o->width;
    if (*h == 0 && *w == 0) {
        int64_t side = (int64_t)llround(sqrt((double)o->data_dim));
        *h = *w = side;
    }
    return *h > 0 && *w > 0 && *h * *w == o->data_dim;
}

/* The options a builder needs, checked once; false with the reason on g. */
static bool check_opts(ed_graph *g, const ed_realnvp_opts *o)
{
    const char *bad = NULL;
    int64_t h, w;
    if (o->data_dim < 1) bad = "data_dim must be >= 1";
    else if (o->couplings < 1) bad = "couplings must be >= 1";
    else if (o->hidden.n < 0 || o->hidden.n > ED_SIZES_MAX) bad = "hidden has a bad length";
    else if ((unsigned)o->activation >= ED_ACT_COUNT) bad = "unknown activation";
    else if ((unsigned)o->mask >= ED_RNVP_MASK_COUNT) bad = "unknown mask";
    else if ((unsigned)o->scale >= ED_RNVP_SCALE_COUNT) bad = "unknown scale mode";
    else if (!(o->scale_bound > 0 && o->scale_bound < INFINITY)) bad = "scale_bound must be finite and > 0";
    else if (!(o->logit_alpha >= 0 && o->logit_alpha < 0.5)) bad = "logit_alpha must be in [0, 0.5)";
    else if (o->levels < 0 || o->levels == 1) bad = "levels must be 0 (continuous) or >= 2";
    else if (o->mask == ED_RNVP_MASK_CHECKERBOARD && !grid(o, &h, &w))
        bad = "the checkerboard needs height * width = data_dim (or a square data_dim)";
    for (int i = 0; !bad && i < o->hidden.n; i++)
        if (o->hidden.v[i] < 1) bad = "hidden widths must be >= 1";
    if (bad) ed_graph_fail(g, "realnvp: %s (data_dim %lld)", bad, (long long)o->data_dim);
    return !bad;
}

/* x must be a float [B, data_dim]. */
static bool check_data(ed_node *x, const ed_realnvp_opts *o, const char *what)
{
    if (!x || ed_graph_error(x->graph) || !check_opts(x->graph, o)) return false;
    if ((x->dtype != ED_F32 && x->dtype != ED_F64) || x->shape.rank != 2 || x->shape.dim[1] != o->data_dim) {
        char t[96];
        ed_node_type_str(x, t, sizeof t);
        ed_graph_fail(x->graph, "realnvp %s: input is %s, needs f32 or f64 [B, %lld]", what, t, (long long)o->data_dim);
        return false;
    }
    return true;
}

/* ---- couplings -------------------------------------------------------------------- */

/* Coupling i's mask [D]: 1 on the coordinates it conditions on (and leaves alone). */
static ed_node *mask_of(ed_graph *g, ed_dtype dt, int64_t i, const ed_realnvp_opts *o)
{
    int64_t d = o->data_dim, h, w;
    double *m = malloc((size_t)d * sizeof *m);
    if (!m) return ed_graph_fail(g, "realnvp: out of memory");
    grid(o, &h, &w);
    for (int64_t j = 0; j < d; j++) {
        bool first;
        if (o->mask == ED_RNVP_MASK_HALVES) first = j < d / 2;
        else if (o->mask == ED_RNVP_MASK_PARITY) first = j % 2 == 0;
        else first = (j / w + j % w) % 2 == 0;
        m[j] = first == (i % 2 == 0);
    }
    ed_node *c = ed_const(g, dt, ed_shape1(d), m, d);
    free(m);
    return c;
}

/* h @ W + b with W and b named "<scope>.<leaf>.{w,b}" and starting at zero. */
static ed_node *zero_dense(ed_node *h, const char *leaf, int64_t units)
{
    ed_graph *g = h->graph;
    char wname[256], bname[256];
    snprintf(wname, sizeof wname, "%s.%s.w", ed_scope(g), leaf);
    snprintf(bname, sizeof bname, "%s.%s.b", ed_scope(g), leaf);
    ed_node *w = ed_param(g, wname, h->dtype, ed_shape2(h->shape.dim[1], units), (ed_init){ED_INIT_ZEROS, 0});
    ed_node *b = ed_param(g, bname, h->dtype, ed_shape1(units), (ed_init){ED_INIT_ZEROS, 0});
    return ed_add(ed_matmul(h, w), b);
}

/* Coupling i's log-scale *s and shift *t [B, D] from y (only y * m is read); both are
 * zero on the conditioning coordinates. */
static void coupling_st(ed_node *y, ed_node *m, int64_t i, const ed_realnvp_opts *o, ed_node **s, ed_node **t)
{
    ed_graph *g = y->graph;
    char scope[32];
    snprintf(scope, sizeof scope, "flow.c%lld", (long long)i);
    *s = *t = NULL;
    ed_scope_push(g, scope);
    if (ed_graph_error(g)) return; /* a failed push pushed nothing */
    ed_node *h = ed_mul(y, m);
    if (o->hidden.n > 0) h = ed_mlp(h, "net", o->hidden.v, o->hidden.n, (ed_activation)o->activation, true);
    ed_node *free_part = ed_sub(ed_scalar_like(m, 1), m);
    ed_node *bound = ed_mul(ed_scalar_like(y, o->scale_bound), free_part);
    if (o->scale == ED_RNVP_SCALE_LEARNED) {
        char name[256];
        snprintf(name, sizeof name, "%s.scale", ed_scope(g));
        bound = ed_mul(bound, ed_param(g, name, y->dtype, ed_shape1(o->data_dim), (ed_init){ED_INIT_ONES, 0}));
    }
    if (h) {
        *s = ed_mul(bound, ed_tanh(zero_dense(h, "s", o->data_dim)));
        *t = ed_mul(free_part, zero_dense(h, "t", o->data_dim));
    }
    ed_scope_pop(g);
}

static ed_node *row_sum(ed_node *x) { return ed_sum(x, ed_axis_bit(x, 1), false); }

/* ---- the bijection ---------------------------------------------------------------- */

ed_node *ed_realnvp_forward(ed_node *v, const ed_realnvp_opts *o, ed_node **logdet)
{
    if (logdet) *logdet = NULL;
    if (!check_data(v, o, "forward")) return NULL;
    ed_graph *g = v->graph;
    ed_node *y = v, *ld = ed_fill(g, v->dtype, ed_shape1(v->shape.dim[0]), 0);
    if (uses_logit(o)) {
        double a = o->logit_alpha;
        ed_node *p = ed_add_scalar(ed_mul_scalar(v, 1 - 2 * a), a);
        ed_node *log_p = ed_log(p), *log_q = ed_log(ed_sub(ed_scalar_like(p, 1), p));
        y = ed_sub(log_p, log_q);
        ld = ed_add_scalar(ed_neg(row_sum(ed_add(log_p, log_q))), (double)o->data_dim * log(1 - 2 * a));
    }
    for (int64_t i = 0; i < o->couplings && y; i++) {
        ed_node *s, *t;
        coupling_st(y, mask_of(g, v->dtype, i, o), i, o, &s, &t);
        y = ed_add(ed_mul(y, ed_exp(s)), t);
        ld = ed_add(ld, row_sum(s));
    }
    if (logdet) *logdet = y ? ld : NULL;
    return y;
}

ed_node *ed_realnvp_inverse(ed_node *z, const ed_realnvp_opts *o)
{
    if (!check_data(z, o, "inverse")) return NULL;
    ed_graph *g = z->graph;
    ed_node *y = z;
    for (int64_t i = o->couplings - 1; i >= 0 && y; i--) {
        ed_node *s, *t;
        coupling_st(y, mask_of(g, z->dtype, i, o), i, o, &s, &t);
        y = ed_mul(ed_sub(y, t), ed_exp(ed_neg(s)));
    }
    if (uses_logit(o)) {
        double a = o->logit_alpha;
        y = ed_mul_scalar(ed_add_scalar(ed_sigmoid(y), -a), 1 / (1 - 2 * a));
    }
    return y;
}

/* ---- densities and samples ---------------------------------------------------------- */

ed_node *ed_realnvp_log_density(ed_node *v, const ed_realnvp_opts *o)
{
    ed_node *logdet;
    ed_node *z = ed_realnvp_forward(v, o, &logdet);
    if (!z) return NULL;
    double log_norm = 0.5 * (double)o->data_dim * log(2 * PI);
    ed_node *log_base = ed_add_scalar(ed_mul_scalar(row_sum(ed_square(z)), -0.5), -log_norm);
    return ed_add(log_base, logdet);
}

ed_node *ed_realnvp_log_prob(ed_graph *g, ed_node *x, const ed_realnvp_opts *o)
{
    if (!g || ed_graph_error(g)) return NULL;
    if (!check_data(x, o, "log_prob")) return NULL;
    if (o->levels == 0) return ed_realnvp_log_density(x, o);
    double k = (double)o->levels;
    /* v = (k + u) / K with k = x (K - 1): uniform noise over the pixel's cell. */
    ed_node *u = ed_rand(g, x->dtype, x->shape, 0, 1);
    ed_node *v = ed_mul_scalar(ed_add(ed_mul_scalar(x, k - 1), u), 1 / k);
    return ed_add_scalar(ed_realnvp_log_density(v, o), -(double)o->data_dim * log(k));
}

ed_node *ed_realnvp_loss(ed_graph *g, ed_node *x, const ed_realnvp_opts *o)
{
    ed_node *lp = ed_realnvp_log_prob(g, x, o);
    return lp ? ed_neg(ed_mean(lp, ED_ALL_AXES, false)) : NULL;
}

ed_node *ed_realnvp_sample(ed_graph *g, int64_t n, const ed_realnvp_opts *o)
{
    if (!g || ed_graph_error(g) || !check_opts(g, o)) return NULL;
    if (n < 1) return ed_graph_fail(g, "realnvp sample: n must be >= 1, got %lld", (long long)n);
    ed_node *v = ed_realnvp_inverse(ed_randn(g, ED_F32, ed_shape2(n, o->data_dim)), o);
    if (o->levels == 0) return v;
    double k = (double)o->levels;
    return ed_clamp(ed_mul_scalar(ed_add_scalar(ed_mul_scalar(v, k), -0.5), 1 / (k - 1)), 0, 1);
}

/* ---- the registry entry ------------------------------------------------------------- */

/* The data facts the options do not hold: the flat size, the pixel levels and, for
 * one-channel images, the grid (where the checkerboard mask is the default). */
static void model_defaults(ed_gen_model *m)
{
    ed_realnvp_opts *o = &m->opts.realnvp;
    ed_realnvp_defaults(o);
    o->data_dim = ed_gen_model_dim(m);
    o->levels = m->levels;
    if (m->sample.rank == 3 && m->sample.dim[0] == 1) {
        o->height = m->sample.dim[1];
        o->width = m->sample.dim[2];
        o->mask = ED_RNVP_MASK_CHECKERBOARD;
    }
}

static int model_check(const ed_gen_model *m)
{
    if (m->obs_size) return ed_fail("model realnvp is unconditional: the data have observations");
    if (m->opts.realnvp.mask == ED_RNVP_MASK_CHECKERBOARD && m->opts.realnvp.height == 0 &&
        (m->sample.rank != 1 ||
         (int64_t)sqrt((double)m->sample.dim[0]) * (int64_t)sqrt((double)m->sample.dim[0]) != m->sample.dim[0]))
        return ed_fail("model realnvp: the checkerboard mask needs one-channel images or a square number of features");
    return ED_OK;
}

static ed_node *model_loss(ed_graph *g, const ed_gen_model *m, const ed_batch *b)
{
    return ed_realnvp_loss(g, ed_gen_model_flatten(m, b->x), &m->opts.realnvp);
}

static ed_node *model_sample(ed_graph *g, const ed_gen_model *m, int64_t n, ed_node *obs, ed_node *labels,
                             const ed_gen_sample_opts *so)
{
    (void)obs, (void)labels;
    if (!ed_gen_model_plain_sampler(g, m, so, "the flow samples through its exact inverse")) return NULL;
    return ed_gen_model_unflatten(m, ed_realnvp_sample(g, n, &m->opts.realnvp));
}

/* nll: -log p in nats per sample (the dequantisation bound for pixel data); bits/dim. */
static int model_figures(ed_graph *g, const ed_gen_model *m, const ed_batch *b, ed_node **out)
{
    ed_node *nll = ed_neg(ed_realnvp_log_prob(g, ed_gen_model_flatten(m, b->x), &m->opts.realnvp));
    out[0] = nll;
    out[1] = ed_mul_scalar(nll, 1 / ((double)ed_gen_model_dim(m) * log(2)));
    return ed_graph_error(g) ? ED_ERR : ED_OK;
}

const ed_model_def ed_realnvp_model = {
    .name = "realnvp",
    .summary = "RealNVP normalizing flow: affine couplings, exact likelihood, sampling by the exact inverse",
    .options = ed_realnvp_options,
    .noptions = ED_REALNVP_NOPTIONS,
    .defaults = model_defaults,
    .check = model_check,
    .nsteps = 1,
    .steps = {{.name = "train", .loss = model_loss}},
    .sample = model_sample,
    .samplers = "inverse",
    .nfigures = 2,
    .figures = {{"nll", "nats/sample", ED_FIGURE_MEAN}, {"bits_per_dim", "bits/dim", ED_FIGURE_MEAN}},
    .figure_nodes = model_figures,
};
