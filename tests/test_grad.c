/* Autodiff against central finite differences, in f64 on the interpreter.
 *
 * Every differentiable op has at least one case below (a test checks that), on seeded
 * random shapes with broadcasting. The loss is sum(y * w) for a fixed random w, so every
 * output element contributes with its own weight. Tolerance: relative error 1e-6 of
 * max(1, |analytic|, |numeric|) unless a case states another bound and its reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "backend/backend.h"
#include "frontend/frontend.h"
#include "frontend/nn.h"
#include "frontend/norm.h"
#include "passes/autodiff.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_X 4
#define TOL 1e-6
#define STEP 1e-6

/* ---- seeded randomness for shapes and values ------------------------------- */

static uint64_t rng_state;

static double urand(void)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(rng_state >> 11) * 0x1p-53;
}

static int64_t irand(int64_t lo, int64_t hi) { return lo + (int64_t)(urand() * (double)(hi - lo + 1)); }

/* How a case fills an input: uniform in [lo, hi]; with away, |x| in [lo, hi] and a random
 * sign (keeps samples off the kinks of abs, relu, sign). */
typedef struct {
    ed_shape shape;
    double lo, hi;
    bool away;
} x_spec;

static double sample(const x_spec *s)
{
    double v = s->lo + (s->hi - s->lo) * urand();
    return s->away && urand() < 0.5 ? -v : v;
}

/* ---- the harness -------------------------------------------------------------- */

typedef struct {
    ed_graph *g;
    ed_node *x[MAX_X];
    x_spec spec[MAX_X];
    int nx;
} grad_case;

static grad_case *case_new(void)
{
    grad_case *c = calloc(1, sizeof *c);
    c->g = ed_graph_new("grad");
    return c;
}

static ed_node *case_x(grad_case *c, ed_shape s, double lo, double hi, bool away)
{
    char name[16];
    snprintf(name, sizeof name, "x%d", c->nx);
    c->spec[c->nx] = (x_spec){s, lo, hi, away};
    return c->x[c->nx++] = ed_input(c->g, name, ED_F64, s);
}

static ed_node *xs(grad_case *c, ed_shape s) { return case_x(c, s, -1.5, 1.5, false); }

static ed_shape random_shape(int min_rank, int max_rank)
{
    ed_shape s = {.rank = (int)irand(min_rank, max_rank)};
    for (int i = 0; i < s.rank; i++) s.dim[i] = irand(1, 4);
    return s;
}

/* A shape that broadcasts against s: some dims set to 1, maybe leading dims dropped. */
static ed_shape broadcast_partner(ed_shape s)
{
    ed_shape p = s;
    for (int i = 0; i < p.rank; i++)
        if (urand() < 0.4) p.dim[i] = 1;
    int drop = (int)irand(0, s.rank);
    p.rank -= drop;
    memmove(p.dim, p.dim + drop, sizeof(int64_t) * (size_t)p.rank);
    return p;
}

static ed_tensor *fill_random(const x_spec *s)
{
    ed_tensor *t = ed_tensor_new(ED_F64, s->shape);
    double *d = t->data;
    for (int64_t i = 0; i < ed_shape_numel(s->shape); i++) d[i] = sample(s);
    return t;
}

static double worst_seen; /* largest relative error of any element at the default tolerance */

static double run_loss(ed_program *p, ed_feed *feeds, int n)
{
    assert_int_equal(ed_run(p, feeds, n), ED_OK);
    return *(const double *)ed_program_output(p, "loss")->data;
}

/* Compare ed_grad of sum(y * w) with central differences for every input element.
 * Frees the case. */
static void check_case(grad_case *c, ed_node *y, double tol, double step, const char *what)
{
    ed_graph *g = c->g;
    if (!y) fail_msg("%s: building failed: %s", what, ed_graph_error(g));
    int64_t ny = ed_shape_numel(y->shape);
    double *w = malloc((size_t)(ny ? ny : 1) * sizeof *w);
    for (int64_t i = 0; i < ny; i++) w[i] = 0.5 + urand();
    ed_node *loss = y->shape.rank == 0 && ny == 1
                        ? y
                        : ed_sum(ed_mul(y, ed_const(g, ED_F64, y->shape, w, ny)), ED_ALL_AXES, false);
    free(w);
    ed_node *grads[MAX_X];
    if (ed_grad(loss, c->x, c->nx, grads) != ED_OK) fail_msg("%s: ed_grad failed: %s", what, ed_graph_error(g));
    ed_output(g, "loss", loss);
    for (int i = 0; i < c->nx; i++) {
        char name[16];
        snprintf(name, sizeof name, "g%d", i);
        ed_output(g, name, grads[i]);
    }
    if (ed_graph_error(g)) fail_msg("%s: %s", what, ed_graph_error(g));
    ed_store *st = ed_store_new(0); /* for state a case may hold (batch norm's running statistics) */
    ed_program *p = ed_compile(g, st, &(ed_compile_opts){.backend = ED_BACKEND_INTERP});
    if (!p) fail_msg("%s: compile: %s", what, ed_last_error());

    ed_tensor *in[MAX_X];
    ed_feed feeds[MAX_X];
    for (int i = 0; i < c->nx; i++) {
        in[i] = fill_random(&c->spec[i]);
        feeds[i] = (ed_feed){c->x[i]->attr.name, in[i]};
    }
    run_loss(p, feeds, c->nx);
    ed_tensor *analytic[MAX_X];
    for (int i = 0; i < c->nx; i++) {
        char name[16];
        snprintf(name, sizeof name, "g%d", i);
        analytic[i] = ed_tensor_copy(ed_program_output(p, name));
    }
    for (int i = 0; i < c->nx; i++) {
        double *x = in[i]->data;
        const double *ga = analytic[i]->data;
        for (int64_t j = 0; j < ed_tensor_numel(in[i]); j++) {
            double keep = x[j];
            x[j] = keep + step;
            double up = run_loss(p, feeds, c->nx);
            x[j] = keep - step;
            double down = run_loss(p, feeds, c->nx);
            x[j] = keep;
            double numeric = (up - down) / (2 * step);
            double err = fabs(ga[j] - numeric) / fmax(1.0, fmax(fabs(ga[j]), fabs(numeric)));
            if (!(err <= tol))
                fail_msg("%s: d loss / d x%d[%lld]: analytic %.12g, numeric %.12g (rel err %.3g > %.1g)", what, i,
                         (long long)j, ga[j], numeric, err, tol);
            if (tol == TOL) worst_seen = fmax(worst_seen, err);
        }
    }
    for (int i = 0; i < c->nx; i++) {
        ed_tensor_free(in[i]);
        ed_tensor_free(analytic[i]);
    }
    ed_program_free(p);
    ed_store_free(st);
    ed_graph_free(g);
    free(c);
}

/* ---- one case per op (several for some) -------------------------------------- */

static bool covered[ED_OP_COUNT];

static void check(grad_case *c, ed_node *y, const char *what)
{
    if (y) covered[y->op] = true;
    check_case(c, y, TOL, STEP, what);
}

typedef ed_node *(*binary_fn)(ed_node *, ed_node *);

static void binary_cases(binary_fn fn, const char *what, double lo, double hi, bool away)
{
    for (int trial = 0; trial < 4; trial++) {
        grad_case *c = case_new();
        ed_shape a = random_shape(0, 3), b = broadcast_partner(a);
        if (trial & 1) { /* the smaller shape first, too */
            ed_shape t = a;
            a = b;
            b = t;
        }
        ed_node *x = case_x(c, a, lo, hi, away), *y = case_x(c, b, lo, hi, away);
        check(c, fn(x, y), what);
    }
}

static void test_binary_ops(void **state)
{
    (void)state;
    rng_state = 1;
    binary_cases(ed_add, "add", -1.5, 1.5, false);
    binary_cases(ed_sub, "sub", -1.5, 1.5, false);
    binary_cases(ed_mul, "mul", -1.5, 1.5, false);
    binary_cases(ed_div, "div", 0.5, 2, true);
    binary_cases(ed_pow, "pow", 0.5, 2, false); /* positive bases: d/db needs log a */
    binary_cases(ed_maximum, "maximum", -1.5, 1.5, false);
    binary_cases(ed_minimum, "minimum", -1.5, 1.5, false);
}

static void test_where(void **state)
{
    (void)state;
    rng_state = 2;
    grad_case *c = case_new();
    ed_node *a = xs(c, ed_shape2(3, 4)), *b = xs(c, ed_shape1(4));
    ed_node *cond = ed_gt(ed_const(c->g, ED_F64, ed_shape2(3, 1), (double[]){1, -1, 2}, 3), ed_scalar(c->g, ED_F64, 0));
    check(c, ed_where(cond, a, b), "where");
}

typedef ed_node *(*unary_fn)(ed_node *);
static ed_node *gelu_erf(ed_node *x) { return ed_gelu(x, false); }
static ed_node *gelu_tanh(ed_node *x) { return ed_gelu(x, true); }
static ed_node *leaky(ed_node *x) { return ed_leaky_relu(x, 0.2); }
static ed_node *clamp(ed_node *x) { return ed_clamp(x, -0.7, 0.9); }
static ed_node *cast_f64(ed_node *x) { return ed_cast(x, ED_F64); }
/* One process is one rank: both collectives are the identity, and so their gradients. */
static ed_node *allreduce_sum(ed_node *x) { return ed_allreduce(x, false); }
static ed_node *allreduce_mean(ed_node *x) { return ed_allreduce(x, true); }

static void test_unary_ops(void **state)
{
    (void)state;
    rng_state = 3;
    const struct {
        unary_fn fn;
        const char *what;
        double lo, hi;
        bool away;
    } cases[] = {
        {ed_neg, "neg", -2, 2, false},
        {ed_abs, "abs", 0.1, 2, true},
        {ed_exp, "exp", -2, 2, false},
        {ed_log, "log", 0.2, 3, false},
        {ed_log1p, "log1p", -0.5, 2, false},
        {ed_expm1, "expm1", -2, 2, false},
        {ed_sqrt, "sqrt", 0.2, 3, false},
        {ed_rsqrt, "rsqrt", 0.2, 3, false},
        {ed_square, "square", -2, 2, false},
        {ed_tanh, "tanh", -2, 2, false},
        {ed_sigmoid, "sigmoid", -4, 4, false},
        {ed_relu, "relu", 0.1, 2, true},
        {leaky, "leaky_relu", 0.1, 2, true},
        {gelu_erf, "gelu erf", -3, 3, false},
        {gelu_tanh, "gelu tanh", -3, 3, false},
        {ed_erf, "erf", -2, 2, false},
        {ed_silu, "silu", -4, 4, false},
        {ed_softplus, "softplus", -4, 4, false},
        {ed_sin, "sin", -3, 3, false},
        {ed_cos, "cos", -3, 3, false},
        {ed_sign, "sign", 0.1, 2, true},
        {cast_f64, "cast f64->f64", -2, 2, false},
        {allreduce_sum, "allreduce_sum", -2, 2, false},
        {allreduce_mean, "allreduce_mean", -2, 2, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        grad_case *c = case_new();
        ed_node *x = case_x(c, random_shape(0, 3), cases[i].lo, cases[i].hi, cases[i].away);
        check(c, cases[i].fn(x), cases[i].what);
    }
    /* clamp: with samples in [-1.5, 1.5], some inside and some outside [-0.7, 0.9] */
    grad_case *c = case_new();
    check(c, clamp(xs(c, ed_shape1(24))), "clamp");
}

static void test_cast_through_f32(void **state)
{
    (void)state;
    /* Bound 1e-4, step 1e-2: the f32 round trip quantizes x to 2^-24 relative, so
     * central differences see eps_f32 / step ~ 1e-5 noise. */
    rng_state = 4;
    grad_case *c = case_new();
    ed_node *x = xs(c, ed_shape2(2, 3));
    ed_node *y = ed_cast(ed_square(ed_cast(x, ED_F32)), ED_F64);
    covered[ED_OP_CAST] = true;
    check_case(c, y, 1e-4, 1e-2, "cast via f32");
}

static void test_reductions(void **state)
{
    (void)state;
    rng_state = 5;
    typedef ed_node *(*reduce_fn)(ed_node *, unsigned, bool);
    const struct {
        reduce_fn fn;
        const char *what;
    } ops[] = {{ed_sum, "sum"}, {ed_mean, "mean"}, {ed_max, "max"}, {ed_min, "min"}};
    const unsigned masks[] = {0x1, 0x2, 0x5, 0x6, ED_ALL_AXES, 0};
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++)
        for (size_t m = 0; m < sizeof masks / sizeof masks[0]; m++)
            for (int keep = 0; keep < 2; keep++) {
                grad_case *c = case_new();
                ed_node *x = xs(c, ed_shape3(2, 3, 4));
                char what[64];
                snprintf(what, sizeof what, "%s axes 0x%x keepdims %d", ops[k].what, masks[m], keep);
                check(c, ops[k].fn(x, masks[m], keep), what);
            }
}

static void test_movement(void **state)
{
    (void)state;
    rng_state = 6;
    grad_case *c = case_new();
    check(c, ed_reshape(xs(c, ed_shape3(2, 3, 4)), ed_shape2(4, 6)), "reshape");
    c = case_new();
    check(c, ed_transpose(xs(c, ed_shape3(2, 3, 4)), (int[]){2, 0, 1}), "transpose");
    c = case_new();
    check(c, ed_broadcast_to(xs(c, ed_shape2(3, 1)), ed_shape3(2, 3, 4)), "broadcast_to");
    c = case_new();
    check(c, ed_slice(xs(c, ed_shape3(5, 4, 7)), (int64_t[]){1, 0, 1}, (int64_t[]){5, 3, 7}, (int64_t[]){1, 1, 1}),
          "slice step 1");
    c = case_new();
    check(c, ed_slice(xs(c, ed_shape3(5, 4, 7)), (int64_t[]){1, 0, 1}, (int64_t[]){5, 4, 6}, (int64_t[]){2, 3, 2}),
          "slice strided");
    c = case_new();
    ed_node *parts[3] = {xs(c, ed_shape2(2, 1)), xs(c, ed_shape2(2, 3)), xs(c, ed_shape2(2, 2))};
    check(c, ed_concat(parts, 3, 1), "concat");
    c = case_new();
    check(c, ed_pad(xs(c, ed_shape2(2, 3)), (int64_t[]){1, 0}, (int64_t[]){2, 3}, 0.5), "pad");
}

static void test_indexing(void **state)
{
    (void)state;
    rng_state = 7;
    /* Repeated indices accumulate; -1 and 9 are clamped by gather. */
    grad_case *c = case_new();
    ed_node *idx = ed_const(c->g, ED_I32, ed_shape2(2, 3), (double[]){0, 2, 2, -1, 9, 1}, 6);
    check(c, ed_gather(xs(c, ed_shape2(4, 3)), idx, 0), "gather axis 0");
    c = case_new();
    idx = ed_const(c->g, ED_I32, ed_shape1(4), (double[]){3, 0, 3, 1}, 4);
    check(c, ed_gather(xs(c, ed_shape3(2, 4, 3)), idx, 1), "gather axis 1");
    /* scatter_add: both the base and the updates; index 7 is dropped. */
    c = case_new();
    idx = ed_const(c->g, ED_I32, ed_shape1(4), (double[]){1, 1, 7, 0}, 4);
    ed_node *base = xs(c, ed_shape2(3, 2)), *upd = xs(c, ed_shape2(4, 2));
    check(c, ed_scatter_add(base, idx, upd, 0), "scatter_add");
}

static void test_matmul(void **state)
{
    (void)state;
    rng_state = 8;
    const struct {
        ed_shape a, b;
        bool ta, tb;
    } cases[] = {
        {ed_shape2(3, 4), ed_shape2(4, 2), false, false},          {ed_shape3(2, 3, 4), ed_shape2(4, 5), false, false},
        {ed_shape2(3, 4), ed_shape3(2, 4, 5), false, false},       {ed_shape2(4, 3), ed_shape2(2, 4), true, true},
        {ed_shape2(4, 3), ed_shape2(4, 2), true, false},           {ed_shape2(3, 4), ed_shape2(2, 4), false, true},
        {ed_shape4(2, 1, 3, 4), ed_shape3(3, 4, 2), false, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        grad_case *c = case_new();
        ed_node *a = xs(c, cases[i].a), *b = xs(c, cases[i].b);
        char what[32];
        snprintf(what, sizeof what, "matmul case %zu", i);
        check(c, ed_matmul_t(a, b, cases[i].ta, cases[i].tb), what);
    }
}

/* The odd convolution shapes: stride 2, padding 1, dilation 2, groups 2, 1x1, a kernel
 * larger than the input with padding, and all at once; each op of the family alone
 * (conv_transpose2d with output_padding where the stride allows it). */
static void test_convolutions(void **state)
{
    (void)state;
    rng_state = 20;
    const struct {
        ed_shape x, w;
        ed_conv_opts o;
    } cases[] = {
        {ed_shape4(2, 3, 7, 6), ed_shape4(4, 3, 3, 3), {.stride = {2, 2}}},
        {ed_shape4(1, 2, 5, 5), ed_shape4(3, 2, 3, 3), {.padding = {1, 1}}},
        {ed_shape4(1, 2, 7, 6), ed_shape4(2, 2, 2, 3), {.dilation = {2, 2}, .padding = {1, 0}}},
        {ed_shape4(2, 4, 5, 4), ed_shape4(6, 2, 3, 2), {.groups = 2, .stride = {1, 2}}},
        {ed_shape4(2, 3, 4, 5), ed_shape4(5, 3, 1, 1), {.groups = 1}},
        {ed_shape4(1, 2, 2, 3), ed_shape4(2, 2, 4, 4), {.padding = {2, 1}}},
        {ed_shape4(1, 3, 8, 9),
         ed_shape4(3, 1, 3, 2),
         {.stride = {2, 3}, .dilation = {2, 1}, .padding = {1, 2}, .groups = 3}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char what[48];
        ed_conv_opts o = cases[i].o;
        grad_case *c = case_new();
        ed_node *x = xs(c, cases[i].x), *w = xs(c, cases[i].w);
        ed_node *y = ed_conv2d(x, w, &o);
        snprintf(what, sizeof what, "conv2d case %zu", i);
        ed_shape ys = y ? y->shape : ed_shape0();
        check(c, y, what);

        for (int k = 0; k < 2; k++) o.output_padding[k] = o.stride[k] > 1 ? 1 : 0;
        c = case_new();
        ed_node *t = xs(c, ys);
        w = xs(c, cases[i].w);
        snprintf(what, sizeof what, "conv_transpose2d case %zu", i);
        check(c, ed_conv_transpose2d(t, w, &o), what);
        o.output_padding[0] = o.output_padding[1] = 0;

        c = case_new();
        x = xs(c, cases[i].x);
        ed_node *dy = xs(c, ys);
        snprintf(what, sizeof what, "conv2d_weight_grad case %zu", i);
        check(c, ed_conv2d_weight_grad(x, dy, cases[i].w.dim[2], cases[i].w.dim[3], &o), what);
    }
    /* second order: the gradient of a conv net's input gradient goes through the VJPs of
     * conv_transpose2d and conv2d_weight_grad */
    grad_case *c2 = case_new();
    ed_node *x2 = xs(c2, ed_shape4(1, 2, 5, 4)), *w2 = xs(c2, ed_shape4(4, 1, 3, 2));
    ed_conv_opts o2 = {.stride = {2, 1}, .padding = {1, 1}, .groups = 2};
    ed_node *inner = ed_sum(ed_square(ed_tanh(ed_conv2d(x2, w2, &o2))), ED_ALL_AXES, false);
    check(c2, ed_grad1(inner, x2), "conv2d input gradient, differentiated again");
    /* pooling, upsampling and group norm, compositions differentiated through their parts */
    grad_case *c = case_new();
    check(c, ed_avg_pool2d(xs(c, ed_shape4(2, 3, 5, 4)), 3, 2, &(ed_conv_opts){.stride = {2, 1}, .padding = {1, 1}}),
          "avg_pool2d");
    c = case_new();
    check(c, ed_upsample_nearest2d(xs(c, ed_shape4(2, 2, 3, 2)), 2, 3), "upsample_nearest2d");
    c = case_new();
    ed_node *x = xs(c, ed_shape4(2, 6, 3, 2));
    check(c, ed_group_norm(x, "gn", 3, 1e-5, true), "group_norm");
}

static void test_params_and_nn_blocks(void **state)
{
    (void)state;
    rng_state = 9;
    /* nn blocks are compositions; checked end to end. */
    grad_case *c = case_new();
    ed_node *x = xs(c, ed_shape3(2, 3, 4));
    ed_node *gamma = xs(c, ed_shape1(4));
    ed_node *h = ed_mul(ed_layer_norm(x, "ln", 1e-5, false), gamma);
    check(c, ed_add(ed_softmax(h, -1), ed_log_softmax(h, 1)), "layer_norm, softmax, log_softmax");
    c = case_new();
    x = xs(c, ed_shape2(3, 5));
    check(c, ed_logsumexp(x, 1, false), "logsumexp");
    /* batch norm in training: the batch's statistics depend on x, so every row's
     * gradient reaches every other row of its feature */
    c = case_new();
    x = xs(c, ed_shape3(3, 2, 4));
    gamma = xs(c, ed_shape1(4));
    check(c, ed_mul(ed_batch_norm(x, "bn", 1e-5, 0.1, false), gamma), "batch_norm (training)");
    covered[ED_OP_PARAM] = true; /* params: see test_param_gradient */
}

/* A param as wrt, its value held by the store. */
static void test_param_gradient(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("p");
    ed_node *w = ed_param(g, "w", ED_F64, ed_shape1(3), (ed_init){ED_INIT_ZEROS, 0});
    ed_node *loss = ed_sum(ed_square(w), ED_ALL_AXES, false);
    ed_output(g, "gw", ed_grad1(loss, w));
    ed_store *st = ed_store_new(0);
    ed_tensor *wt = ed_tensor_new(ED_F64, ed_shape1(3));
    double *wd = wt->data;
    wd[0] = 1, wd[1] = -2, wd[2] = 0.5;
    ed_store_put(st, "w", wt, true);
    ed_program *p = ed_compile(g, st, NULL);
    assert_non_null(p);
    assert_int_equal(ed_run(p, NULL, 0), ED_OK);
    const double *gw = ed_program_output(p, "gw")->data;
    assert_float_equal(gw[0], 2, 0);
    assert_float_equal(gw[1], -4, 0);
    assert_float_equal(gw[2], 1, 0);
    ed_program_free(p);
    ed_store_free(st);
    ed_graph_free(g);
}

static void test_every_differentiable_op_is_checked(void **state)
{
    (void)state;
    for (int op = 0; op < ED_OP_COUNT; op++) {
        bool diff = ed_ops[op].flags & F_DIFF;
        if (diff && !ed_has_vjp((ed_op)op)) fail_msg("op %s is differentiable but has no VJP", ed_op_name((ed_op)op));
        if (diff && !covered[op]) fail_msg("op %s has no gradient check", ed_op_name((ed_op)op));
    }
    print_message("largest relative error over all 1e-6 cases: %.3g\n", worst_seen);
}

/* ---- second order: a WGAN-GP gradient penalty ------------------------------------ */

static void test_second_order_gradient_penalty(void **state)
{
    (void)state;
    rng_state = 10;
    /* critic(x) = tanh(x W1 + b1) W2; penalty = mean((|d critic / d x|_2 - 1)^2) over
     * the batch; checked: d penalty / d (W1, b1, W2) against differences of penalty,
     * which itself is built from first-order gradients. */
    grad_case *c = case_new();
    ed_graph *g = c->g;
    ed_node *w1 = xs(c, ed_shape2(3, 5)), *b1 = xs(c, ed_shape1(5)), *w2 = xs(c, ed_shape2(5, 1));
    double xv[12];
    for (int i = 0; i < 12; i++) xv[i] = 2 * urand() - 1;
    ed_node *x = ed_const(g, ED_F64, ed_shape2(4, 3), xv, 12);
    ed_node *critic = ed_matmul(ed_tanh(ed_add(ed_matmul(x, w1), b1)), w2);
    ed_node *dx = ed_grad1(ed_sum(critic, ED_ALL_AXES, false), x);
    ed_node *norm = ed_sqrt(ed_sum(ed_square(dx), 2u, false));
    ed_node *penalty = ed_mean(ed_square(ed_add_scalar(norm, -1)), ED_ALL_AXES, false);
    check_case(c, penalty, TOL, STEP, "WGAN-GP penalty, second order");
}

/* Gradients of gradients of gradients: d^3/dx^3 of x^4 = 24 x. */
static void test_third_order(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("g");
    ed_node *x = ed_input(g, "x", ED_F64, ed_shape0());
    ed_node *y = ed_square(ed_square(x));
    ed_node *d3 = ed_grad1(ed_grad1(ed_grad1(y, x), x), x);
    ed_output(g, "d3", d3);
    ed_program *p = ed_compile(g, NULL, NULL);
    assert_non_null(p);
    double xv = 1.5;
    ed_tensor *xt = ed_tensor_wrap(ED_F64, ed_shape0(), &xv);
    assert_int_equal(ed_run(p, &(ed_feed){"x", xt}, 1), ED_OK);
    assert_float_equal(*(const double *)ed_program_output(p, "d3")->data, 36.0, 1e-12);
    ed_tensor_free(xt);
    ed_program_free(p);
    ed_graph_free(g);
}

/* ---- structural rules ------------------------------------------------------------- */

static double run_scalar(ed_graph *g, ed_node *v, double xv)
{
    ed_output(g, "v", v);
    ed_program *p = ed_compile(g, NULL, NULL);
    if (!p) fail_msg("compile: %s", ed_last_error());
    ed_tensor *xt = ed_tensor_wrap(ED_F64, ed_shape0(), &xv);
    assert_int_equal(ed_run(p, &(ed_feed){"x", xt}, 1), ED_OK);
    double r = ed_tensor_get(ed_program_output(p, "v"), 0);
    ed_tensor_free(xt);
    ed_program_free(p);
    return r;
}

static void test_accumulation_and_blocking(void **state)
{
    (void)state;
    /* x used three times: d/dx (x*x + x) = 2x + 1 */
    ed_graph *g = ed_graph_new("g");
    ed_node *x = ed_input(g, "x", ED_F64, ed_shape0());
    assert_float_equal(run_scalar(g, ed_grad1(ed_add(ed_mul(x, x), x), x), 3), 7, 0);
    ed_graph_free(g);
    /* stop_gradient blocks: d/dx (x * sg(x)) = sg(x) */
    g = ed_graph_new("g");
    x = ed_input(g, "x", ED_F64, ed_shape0());
    assert_float_equal(run_scalar(g, ed_grad1(ed_mul(x, ed_stop_gradient(x)), x), 3), 3, 0);
    ed_graph_free(g);
    /* A wrt node the loss does not depend on gets zero. */
    g = ed_graph_new("g");
    x = ed_input(g, "x", ED_F64, ed_shape0());
    ed_node *other = ed_input(g, "o", ED_F64, ed_shape2(2, 2));
    ed_node *go = ed_grad1(ed_square(x), other);
    assert_non_null(go);
    assert_true(ed_shape_eq(go->shape, ed_shape2(2, 2)));
    assert_int_equal(go->op, ED_OP_CONST);
    assert_float_equal(go->attr.data[0], 0, 0);
    ed_graph_free(g);
    /* Non-differentiable paths (compare, argmax, random, i32) give zero. */
    g = ed_graph_new("g");
    x = ed_input(g, "x", ED_F64, ed_shape0());
    ed_node *gate = ed_cast(ed_gt(x, ed_scalar(g, ED_F64, 0)), ED_F64);
    ed_node *r = ed_add(ed_randn(g, ED_F64, ed_shape0()), ed_cast(ed_cast(x, ED_I32), ED_F64));
    ed_node *picked = ed_cast(
        ed_argmax(ed_mul(x, ed_const(g, ED_F64, ed_shape1(2), (double[]){1, -1}, 2)), ED_ALL_AXES, false), ED_F64);
    assert_float_equal(run_scalar(g, ed_grad1(ed_add(ed_add(gate, r), picked), x), 2.5), 0, 0);
    ed_graph_free(g);
}

static void test_max_ties_split_equally(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("g");
    ed_node *x = ed_input(g, "x", ED_F64, ed_shape0());
    ed_node *v = ed_mul(x, ed_const(g, ED_F64, ed_shape1(4), (double[]){1, 3, 3, 2}, 4));
    /* max over [x, 3x, 3x, 2x] at x > 0: the two tied 3x share the gradient: 3/2 + 3/2 */
    assert_float_equal(run_scalar(g, ed_grad1(ed_max(v, ED_ALL_AXES, false), x), 1), 3, 1e-12);
    ed_graph_free(g);
    g = ed_graph_new("g");
    x = ed_input(g, "x", ED_F64, ed_shape0());
    ed_node *cst = ed_scalar(g, ED_F64, 2);
    /* maximum(x, 2) at x = 2: half of the gradient to each side */
    assert_float_equal(run_scalar(g, ed_grad1(ed_maximum(x, cst), x), 2), 0.5, 0);
    ed_graph_free(g);
}

static void test_errors(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("g");
    ed_node *x = ed_input(g, "x", ED_F64, ed_shape1(3));
    ed_node *gx[1];
    assert_int_equal(ed_grad(ed_exp(x), &x, 1, gx), ED_ERR);
    assert_null(gx[0]);
    assert_non_null(strstr(ed_graph_error(g), "grad: the loss must be a float scalar, got f64[3]"));
    ed_graph_free(g);

    g = ed_graph_new("g");
    ed_node *i = ed_input(g, "i", ED_I32, ed_shape0());
    x = ed_input(g, "x", ED_F64, ed_shape0());
    assert_null(ed_grad1(ed_mul(x, ed_cast(i, ED_F64)), i));
    assert_non_null(strstr(ed_graph_error(g), "gradients exist only for float values"));
    ed_graph_free(g);

    g = ed_graph_new("g");
    ed_graph *h = ed_graph_new("h");
    x = ed_input(g, "x", ED_F64, ed_shape0());
    ed_node *hx = ed_input(h, "x", ED_F64, ed_shape0());
    assert_null(ed_grad1(ed_square(x), hx));
    assert_non_null(strstr(ed_graph_error(g), "another graph"));
    assert_null(ed_grad1(NULL, x)); /* NULL propagates */
    ed_graph_free(g);
    ed_graph_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_binary_ops),
        cmocka_unit_test(test_where),
        cmocka_unit_test(test_unary_ops),
        cmocka_unit_test(test_cast_through_f32),
        cmocka_unit_test(test_reductions),
        cmocka_unit_test(test_movement),
        cmocka_unit_test(test_indexing),
        cmocka_unit_test(test_matmul),
        cmocka_unit_test(test_convolutions),
        cmocka_unit_test(test_params_and_nn_blocks),
        cmocka_unit_test(test_param_gradient),
        cmocka_unit_test(test_every_differentiable_op_is_checked),
        cmocka_unit_test(test_second_order_gradient_penalty),
        cmocka_unit_test(test_third_order),
        cmocka_unit_test(test_accumulation_and_blocking),
        cmocka_unit_test(test_max_ties_split_equally),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
