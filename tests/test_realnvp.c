/* RealNVP's builders (models/realnvp.h): the inverse undoes the forward map, the log-det
 * matches a finite-difference Jacobian, the zero-initialised flow is the identity with
 * the Gaussian density, the dequantisation bound matches a quadrature of its
 * expectation, training lowers the held-out NLL on moons and the bits per dimension on
 * small bar images, samples are finite and in range, and bad options or shapes are graph
 * errors naming the cause. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "models/realnvp.h"
#include "models/metrics.h"
#include "models/toy_data.h"
#include "models/train_step.h"
#include "support/run_check.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define PI 3.14159265358979323846

static ed_realnvp_opts opts_for(int64_t d, int mask, const char *hidden)
{
    ed_realnvp_opts o;
    ed_realnvp_defaults(&o);
    if (ed_options_set(ed_realnvp_options, ED_REALNVP_NOPTIONS, &o, "hidden", hidden) != ED_OK)
        fail_msg("%s", ed_last_error());
    o.mask = mask;
    o.data_dim = d;
    return o;
}

static double uniform(double lo, double hi) { return lo + (hi - lo) * (rng_u32() / 4294967296.0); }

/* Every store entry moved by U(-amp, amp): the zero heads leave the identity. */
static void perturb(ed_store *st, double amp)
{
    for (int i = 0; i < ed_store_count(st); i++) {
        ed_tensor *t = ed_store_tensor(st, i);
        for (int64_t k = 0; k < ed_tensor_numel(t); k++) ed_tensor_set(t, k, ed_tensor_get(t, k) + uniform(-amp, amp));
    }
}

static ed_tensor *random_tensor(ed_dtype dt, ed_shape s, double lo, double hi)
{
    ed_tensor *t = ed_tensor_new(dt, s);
    for (int64_t k = 0; k < ed_tensor_numel(t); k++) ed_tensor_set(t, k, uniform(lo, hi));
    return t;
}

static void build_ok(const ed_graph *g)
{
    if (ed_graph_error(g)) fail_msg("%s", ed_graph_error(g));
}

static void test_defaults(void **state)
{
    (void)state;
    ed_realnvp_opts o;
    ed_realnvp_defaults(&o);
    assert_int_equal(o.couplings, 4);
    assert_int_equal(o.hidden.n, 1);
    assert_int_equal(o.hidden.v[0], 256);
    assert_int_equal(o.activation, ED_ACT_RELU);
    assert_int_equal(o.mask, ED_RNVP_MASK_HALVES);
    assert_int_equal(o.scale, ED_RNVP_SCALE_FIXED);
    assert_float_equal(o.scale_bound, 1, 0);
    assert_float_equal(o.logit_alpha, 0.05, 0);
    assert_int_equal(o.data_dim + o.levels + o.height + o.width, 0);
    /* The enum options' names are their enum values. */
    assert_int_equal(ed_options_set(ed_realnvp_options, ED_REALNVP_NOPTIONS, &o, "mask", "checkerboard"), ED_OK);
    assert_int_equal(o.mask, ED_RNVP_MASK_CHECKERBOARD);
    assert_int_equal(ed_options_set(ed_realnvp_options, ED_REALNVP_NOPTIONS, &o, "activation", "silu"), ED_OK);
    assert_int_equal(o.activation, ED_ACT_SILU);
    assert_int_equal(ed_options_set(ed_realnvp_options, ED_REALNVP_NOPTIONS, &o, "scale", "learned"), ED_OK);
    assert_int_equal(o.scale, ED_RNVP_SCALE_LEARNED);
    assert_int_equal(ed_options_set(ed_realnvp_options, ED_REALNVP_NOPTIONS, &o, "logit_alpha", "0.5"), ED_ERR);
}

/* ---- the bijection ---------------------------------------------------------------- */

typedef struct {
    const char *what;
    ed_realnvp_opts o;
    double lo, hi; /* the inputs' range */
} flow_case;

/* Continuous data with each mask kind, odd D, the learned scale, and image data through
 * the logit pre-transform on a square and on a non-square checkerboard. */
static int flow_cases(flow_case *c)
{
    int n = 0;
    c[n] = (flow_case){"halves D=5 learned", opts_for(5, ED_RNVP_MASK_HALVES, "16"), -2, 2};
    c[n++].o.scale = ED_RNVP_SCALE_LEARNED;
    c[n++] = (flow_case){"parity D=6 two layers", opts_for(6, ED_RNVP_MASK_PARITY, "16,8"), -2, 2};
    c[n] = (flow_case){"checkerboard 4x4 K=17", opts_for(16, ED_RNVP_MASK_CHECKERBOARD, "16"), 0, 1};
    c[n++].o.levels = 17;
    c[n] = (flow_case){"checkerboard 3x4 K=256 silu", opts_for(12, ED_RNVP_MASK_CHECKERBOARD, "16"), 0, 1};
    c[n].o.levels = 256;
    c[n].o.height = 3;
    c[n].o.width = 4;
    c[n++].o.activation = ED_ACT_SILU;
    return n;
}

/* What the couplings see: the logit pre-transform of image data, else x itself. */
static double pre_transform(double x, const ed_realnvp_opts *o)
{
    if (o->levels == 0 || o->logit_alpha == 0) return x;
    double p = o->logit_alpha + (1 - 2 * o->logit_alpha) * x;
    return log(p / (1 - p));
}

/* Params moved by U(-a, a), a = 0.5 / sqrt(D): far enough from the identity that the
 * couplings move some coordinate by more than 0.5, near enough that z stays in the
 * range a trained flow gives (|z| < 10; larger |z| would test f32 cancellation in
 * y - t rather than the inverse). */
static void test_inverse_undoes_forward(void **state)
{
    (void)state;
    flow_case cases[8];
    int n = flow_cases(cases);
    rng_seed(11);
    for (int k = 0; k < n; k++) {
        const ed_realnvp_opts *o = &cases[k].o;
        enum { B = 32 };
        ed_graph *g = ed_graph_new("realnvp_roundtrip");
        ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(B, o->data_dim));
        ed_node *z = ed_realnvp_forward(x, o, NULL);
        ed_output(g, "z", z);
        ed_output(g, "x_back", ed_realnvp_inverse(z, o));
        build_ok(g);
        ed_store *st = ed_store_new(5);
        ed_program *p = compile_with(g, st, backend_under_test, 0);
        perturb(st, 0.5 / sqrt((double)o->data_dim));
        ed_tensor *xt = random_tensor(ED_F32, x->shape, cases[k].lo, cases[k].hi);
        run_ok(p, &(ed_feed){"x", xt}, 1);
        const ed_tensor *zt = out(p, "z"), *back = out(p, "x_back");
        double moved = 0, err = 0, zmax = 0;
        for (int64_t i = 0; i < ed_tensor_numel(xt); i++) {
            zmax = fmax(zmax, fabs(f32_at(zt, i)));
            moved = fmax(moved, fabs(f32_at(zt, i) - pre_transform(f32_at(xt, i), o)));
            err = fmax(err, fabs(f32_at(back, i) - f32_at(xt, i)));
        }
        print_message("%s: max |z| %.2f, couplings move by up to %.2f, max |inverse(forward(x)) - x| %.2e\n",
                      cases[k].what, zmax, moved, err);
        assert_true(moved > 0.5 && zmax < 10);
        if (!(err <= 1e-5)) fail_msg("%s: inverse(forward(x)) is off by %g", cases[k].what, err);
        ed_tensor_free(xt);
        ed_program_free(p);
        ed_store_free(st);
        ed_graph_free(g);
    }
}

/* log |det a| of an n x n matrix (row-major), by elimination with partial pivoting. */
static double log_abs_det(double *a, int n)
{
    double sum = 0;
    for (int c = 0; c < n; c++) {
        int piv = c;
        for (int r = c + 1; r < n; r++)
            if (fabs(a[r * n + c]) > fabs(a[piv * n + c])) piv = r;
        for (int j = 0; j < n; j++) {
            double t = a[c * n + j];
            a[c * n + j] = a[piv * n + j];
            a[piv * n + j] = t;
        }
        sum += log(fabs(a[c * n + c]));
        for (int r = c + 1; r < n; r++) {
            double f = a[r * n + c] / a[c * n + c];
            for (int j = c; j < n; j++) a[r * n + j] -= f * a[c * n + j];
        }
    }
    return sum;
}

/* In f64, rows x, x + h e_j, x - h e_j give the Jacobian by central differences: its
 * error is O(h^2) ~ 1e-10 from truncation plus ~1e-16 / h ~ 1e-11 from rounding, so
 * log|det| must agree with the graph's log-det to 1e-7. */
static void check_logdet(const char *what, const ed_realnvp_opts *o, double lo, double hi)
{
    enum { D = 4, ROWS = 2 * D + 1 };
    const double h = 1e-5;
    assert_int_equal(o->data_dim, D);
    ed_graph *g = ed_graph_new("realnvp_logdet");
    ed_node *x = ed_input(g, "x", ED_F64, ed_shape2(ROWS, D));
    ed_node *logdet;
    ed_output(g, "z", ed_realnvp_forward(x, o, &logdet));
    ed_output(g, "logdet", logdet);
    build_ok(g);
    ed_store *st = ed_store_new(9);
    ed_program *p = compile_with(g, st, backend_under_test, 0);
    perturb(st, 0.5);
    double x0[D];
    for (int j = 0; j < D; j++) x0[j] = uniform(lo, hi);
    ed_tensor *xt = ed_tensor_new(ED_F64, x->shape);
    for (int r = 0; r < ROWS; r++)
        for (int j = 0; j < D; j++) {
            double step = r == 0 ? 0 : (r - 1) / 2 == j ? ((r - 1) % 2 ? -h : h) : 0;
            ed_tensor_set(xt, r * D + j, x0[j] + step);
        }
    run_ok(p, &(ed_feed){"x", xt}, 1);
    const ed_tensor *z = out(p, "z");
    double jac[D * D];
    for (int j = 0; j < D; j++)     /* column j: dz / dx_j */
        for (int i = 0; i < D; i++) /* row i */
            jac[i * D + j] = (ed_tensor_get(z, (1 + 2 * j) * D + i) - ed_tensor_get(z, (2 + 2 * j) * D + i)) / (2 * h);
    double fd = log_abs_det(jac, D), graph = ed_tensor_get(out(p, "logdet"), 0);
    print_message("%s: log-det %.10f, finite differences %.10f\n", what, graph, fd);
    assert_true(fabs(graph) > 0.1); /* a real test: the perturbed flow changes volume */
    if (!(fabs(graph - fd) <= 1e-7)) fail_msg("%s: log-det %.12g, finite differences %.12g", what, graph, fd);
    ed_tensor_free(xt);
    ed_program_free(p);
    ed_store_free(st);
    ed_graph_free(g);
}

static void test_logdet_matches_finite_differences(void **state)
{
    (void)state;
    rng_seed(38);
    ed_realnvp_opts o = opts_for(4, ED_RNVP_MASK_HALVES, "8");
    o.scale = ED_RNVP_SCALE_LEARNED;
    check_logdet("halves, learned scale", &o, -1.5, 1.5);
    o = opts_for(4, ED_RNVP_MASK_PARITY, "8,8");
    o.couplings = 5;
    o.activation = ED_ACT_TANH;
    check_logdet("parity, 5 couplings", &o, -1.5, 1.5);
    o = opts_for(4, ED_RNVP_MASK_CHECKERBOARD, "8"); /* 2 x 2 image, logit included */
    o.levels = 17;
    check_logdet("checkerboard 2x2 with logit", &o, 0.02, 0.98);
}

/* ---- densities ---------------------------------------------------------------------- */

static void test_identity_at_init(void **state)
{
    (void)state;
    rng_seed(21);
    enum { B = 6, D = 3 };
    ed_realnvp_opts o = opts_for(D, ED_RNVP_MASK_HALVES, "16");
    ed_graph *g = ed_graph_new("realnvp_init");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(B, D));
    ed_output(g, "z", ed_realnvp_forward(x, &o, NULL));
    ed_output(g, "log_prob", ed_realnvp_log_prob(g, x, &o));
    ed_output(g, "loss", ed_realnvp_loss(g, x, &o));
    build_ok(g);
    ed_store *st = ed_store_new(1);
    ed_program *p = compile_with(g, st, backend_under_test, 0);
    ed_tensor *xt = random_tensor(ED_F32, x->shape, -3, 3);
    run_ok(p, &(ed_feed){"x", xt}, 1);
    double mean_nll = 0;
    for (int b = 0; b < B; b++) {
        double sq = 0;
        for (int j = 0; j < D; j++) {
            double v = ed_tensor_get(xt, b * D + j);
            sq += v * v;
            assert_float_equal(f32_at(out(p, "z"), b * D + j), v, 1e-6);
        }
        double want = -0.5 * sq - 0.5 * D * log(2 * PI);
        assert_float_equal(f32_at(out(p, "log_prob"), b), want, 1e-5 * (1 + fabs(want)));
        mean_nll -= want / B;
    }
    assert_float_equal(f32_at(out(p, "loss"), 0), mean_nll, 1e-5 * (1 + mean_nll));
    ed_tensor_free(xt);
    ed_program_free(p);
    ed_store_free(st);
    ed_graph_free(g);
}

/* The log density of v under the identity couplings with the logit pre-transform, per
 * coordinate: log N(y) + log|dy/dv|. */
static double logit_normal_log_density(double v, double a)
{
    double p = a + (1 - 2 * a) * v, y = log(p / (1 - p));
    return -0.5 * y * y - 0.5 * log(2 * PI) + log(1 - 2 * a) - log(p) - log(1 - p);
}

/* At the identity flow the bound factorises over coordinates: E_u of each
 * coordinate's log density over its cell [k/K, (k+1)/K), minus log K. Simpson's rule
 * on 2000 intervals gives the mean and the variance; the graph's rows are independent
 * draws of u, so their mean must lie within 6 standard errors. */
static void test_dequantisation_bound(void **state)
{
    (void)state;
    enum { B = 8192, D = 4, K = 5, N = 2000 };
    const int level[D] = {0, 1, 3, 4}; /* both edges of [0, 1] included */
    ed_realnvp_opts o = opts_for(D, ED_RNVP_MASK_PARITY, "8");
    o.levels = K;
    double mean = 0, var = 0;
    for (int j = 0; j < D; j++) {
        double m1 = 0, m2 = 0;
        for (int i = 0; i <= N; i++) {
            double w = (i == 0 || i == N) ? 1 : i % 2 ? 4 : 2;
            double f = logit_normal_log_density((level[j] + (double)i / N) / K, o.logit_alpha);
            m1 += w * f / (3.0 * N);
            m2 += w * f * f / (3.0 * N);
        }
        mean += m1 - log(K);
        var += m2 - m1 * m1;
    }
    ed_graph *g = ed_graph_new("realnvp_dequant");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(B, D));
    ed_output(g, "log_prob", ed_realnvp_log_prob(g, x, &o));
    build_ok(g);
    ed_store *st = ed_store_new(1);
    ed_program *p = compile_with(g, st, backend_under_test, 4);
    ed_tensor *xt = ed_tensor_new(ED_F32, x->shape);
    for (int64_t i = 0; i < B * D; i++) ed_tensor_set(xt, i, level[i % D] / (double)(K - 1));
    run_ok(p, &(ed_feed){"x", xt}, 1);
    double have = 0;
    for (int b = 0; b < B; b++) have += f32_at(out(p, "log_prob"), b) / B;
    double se = sqrt(var / B);
    print_message("dequantised bound: graph %.5f, quadrature %.5f (standard error %.5f)\n", have, mean, se);
    if (!(fabs(have - mean) <= 6 * se)) fail_msg("bound %.6f, want %.6f +- %.6f", have, mean, 6 * se);
    ed_tensor_free(xt);
    ed_program_free(p);
    ed_store_free(st);
    ed_graph_free(g);
}

/* ---- training and sampling ------------------------------------------------------------ */

/* The mean NLL in nats of data [N, D] under the store's params. */
static double mean_nll(ed_store *st, const ed_tensor *data, const ed_realnvp_opts *o)
{
    ed_graph *g = ed_graph_new("realnvp_nll");
    ed_node *x = ed_input(g, "x", ED_F32, data->shape);
    ed_output(g, "loss", ed_realnvp_loss(g, x, o));
    build_ok(g);
    ed_program *p = compile_with(g, st, ED_BACKEND_JIT, 0);
    run_ok(p, &(ed_feed){"x", data}, 1);
    double nll = f32_at(out(p, "loss"), 0);
    ed_program_free(p);
    ed_graph_free(g);
    return nll;
}

static void test_training_on_moons(void **state)
{
    (void)state;
    enum { B = 256, STEPS = 800, D = 2, EVAL = 4096 };
    ed_realnvp_opts o = opts_for(D, ED_RNVP_MASK_HALVES, "64,64");
    ed_tensor *train = ed_toy_sample(ED_TOY_MOONS, (int64_t)B * STEPS, 1, ED_NOISE_DEFAULT);
    ed_tensor *test = ed_toy_sample(ED_TOY_MOONS, EVAL, 2, ED_NOISE_DEFAULT);
    assert_non_null(train);
    assert_non_null(test);

    ed_graph *g = ed_graph_new("realnvp_train");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(B, D));
    assert_int_equal(ed_train_step(g, ed_realnvp_loss(g, x, &o), &(ed_train_opts){.optim = {.kind = ED_OPT_ADAM, .lr = 2e-3}}),
                     ED_OK);
    build_ok(g);
    ed_store *st = ed_store_new(3);
    ed_program *p = compile_with(g, st, ED_BACKEND_JIT, 0);
    double before = mean_nll(st, test, &o);
    ed_tensor *batch = ed_tensor_new(ED_F32, x->shape);
    for (int s = 0; s < STEPS; s++) {
        memcpy(batch->data, (const float *)train->data + (int64_t)s * B * D, sizeof(float) * B * D);
        run_ok(p, &(ed_feed){"x", batch}, 1);
        assert_true(isfinite(f32_at(out(p, "loss"), 0)));
    }
    double after = mean_nll(st, test, &o);
    print_message("moons: held-out NLL %.4f -> %.4f nats over %d steps\n", before, after, STEPS);
    /* The identity flow scores N(0, I): log(2 pi) + E|x|^2 / 2 = 2.85 nats on moons (variance
     * about 1.01 per coordinate). A trained flow must gain at least 1 nat. */
    assert_float_equal(before, log(2 * PI) + 1.01, 0.05);
    if (!(after < before - 1.0)) fail_msg("held-out NLL %.4f -> %.4f: not 1 nat lower", before, after);

    /* Samples: finite, and closer to the data than the base distribution is (SW1). */
    enum { NS = 4096 };
    ed_graph *sg = ed_graph_new("realnvp_sample");
    ed_output(sg, "x", ed_realnvp_sample(sg, NS, &o));
    ed_output(sg, "z", ed_randn(sg, ED_F32, ed_shape2(NS, D)));
    build_ok(sg);
    ed_program *sp = compile_with(sg, st, ED_BACKEND_JIT, 7);
    run_ok(sp, NULL, 0);
    const ed_tensor *xs = out(sp, "x");
    assert_int_equal(xs->shape.dim[0], NS);
    assert_int_equal(xs->shape.dim[1], D);
    for (int64_t i = 0; i < NS * D; i++) assert_true(isfinite(f32_at(xs, i)));
    double sw_model, sw_base;
    assert_int_equal(ed_sliced_wasserstein(xs, test, NULL, &sw_model), ED_OK);
    assert_int_equal(ed_sliced_wasserstein(out(sp, "z"), test, NULL, &sw_base), ED_OK);
    print_message("moons: SW1 to held-out data: samples %.4f, N(0, I) %.4f\n", sw_model, sw_base);
    assert_true(sw_model < 0.5 * sw_base);

    ed_program_free(sp);
    ed_graph_free(sg);
    ed_tensor_free(batch);
    ed_tensor_free(train);
    ed_tensor_free(test);
    ed_program_free(p);
    ed_store_free(st);
    ed_graph_free(g);
}

/* n 4 x 4 images with 17 levels, as k / 16: one bar (a row or a column, at random) of
 * intensity k in 8..16 on a background of 0. */
static ed_tensor *bar_images(int64_t n)
{
    ed_tensor *t = ed_tensor_new(ED_F32, ed_shape2(n, 16));
    for (int64_t b = 0; b < n; b++) {
        int vertical = pick(2), at = pick(4), k = 8 + pick(9);
        for (int r = 0; r < 4; r++)
            for (int c = 0; c < 4; c++) ed_tensor_set(t, b * 16 + r * 4 + c, (vertical ? c : r) == at ? k / 16.0 : 0);
    }
    return t;
}

/* Image data: dequantised pixels through the logit and checkerboard couplings. Bits per
 * dimension come from the graph's bound, -log_prob / (D ln 2), averaged over 4096
 * held-out images (one dequantisation draw each). */
static void test_training_on_images(void **state)
{
    (void)state;
    enum { B = 128, STEPS = 300, D = 16, EVAL = 4096 };
    rng_seed(21);
    ed_realnvp_opts o = opts_for(D, ED_RNVP_MASK_CHECKERBOARD, "64");
    o.levels = 17;
    ed_tensor *train = bar_images((int64_t)B * STEPS), *test = bar_images(EVAL);
    ed_graph *g = ed_graph_new("realnvp_train_images");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(B, D));
    assert_int_equal(ed_train_step(g, ed_realnvp_loss(g, x, &o), &(ed_train_opts){.optim = {.kind = ED_OPT_ADAM, .lr = 2e-3}}),
                     ED_OK);
    build_ok(g);
    ed_store *st = ed_store_new(3);
    ed_program *p = compile_with(g, st, ED_BACKEND_JIT, 0);
    double before = mean_nll(st, test, &o) / (D * log(2));
    ed_tensor *batch = ed_tensor_new(ED_F32, x->shape);
    for (int s = 0; s < STEPS; s++) {
        memcpy(batch->data, (const float *)train->data + (int64_t)s * B * D, sizeof(float) * B * D);
        run_ok(p, &(ed_feed){"x", batch}, 1);
    }
    double after = mean_nll(st, test, &o) / (D * log(2));
    print_message("bar images: held-out %.4f -> %.4f bits/dim over %d steps\n", before, after, STEPS);
    /* The identity flow gives about 5.8 bits/dim; the data's entropy is log2(72) / 16 =
     * 0.39 bits/dim (2 orientations x 4 positions x 9 intensities), a floor for the bound. */
    assert_true(before > 5);
    if (!(after < 2)) fail_msg("bits/dim %.4f -> %.4f: not below 2", before, after);
    ed_tensor_free(batch);
    ed_tensor_free(train);
    ed_tensor_free(test);
    ed_program_free(p);
    ed_store_free(st);
    ed_graph_free(g);
}

static void test_image_samples_in_range(void **state)
{
    (void)state;
    rng_seed(27);
    enum { N = 64 };
    ed_realnvp_opts o = opts_for(16, ED_RNVP_MASK_CHECKERBOARD, "16");
    o.levels = 17;
    for (int logit = 0; logit < 2; logit++) {
        o.logit_alpha = logit ? 0.05 : 0;
        ed_graph *g = ed_graph_new("realnvp_image_sample");
        ed_output(g, "x", ed_realnvp_sample(g, N, &o));
        build_ok(g);
        ed_store *st = ed_store_new(2);
        ed_program *p = compile_with(g, st, backend_under_test, 1);
        perturb(st, 0.5);
        run_ok(p, NULL, 0);
        const ed_tensor *x = out(p, "x");
        assert_int_equal(x->shape.dim[0], N);
        assert_int_equal(x->shape.dim[1], 16);
        int inside = 0;
        for (int64_t i = 0; i < N * 16; i++) {
            float v = f32_at(x, i);
            assert_true(v >= 0 && v <= 1); /* false for NaN too */
            inside += v > 0 && v < 1;
        }
        assert_true(inside > 0); /* not all clamped */
        ed_program_free(p);
        ed_store_free(st);
        ed_graph_free(g);
    }
}

/* ---- params and errors ---------------------------------------------------------------- */

static void test_param_names(void **state)
{
    (void)state;
    ed_realnvp_opts o = opts_for(6, ED_RNVP_MASK_HALVES, "8,4");
    o.scale = ED_RNVP_SCALE_LEARNED;
    ed_graph *g = ed_graph_new("realnvp_names");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(2, 6));
    ed_output(g, "loss", ed_realnvp_loss(g, x, &o));
    ed_output(g, "sample", ed_realnvp_sample(g, 3, &o)); /* binds the same params */
    build_ok(g);
    const char *names[] = {"flow.c0.net.0.w", "flow.c0.net.1.b", "flow.c0.s.w", "flow.c0.t.b", "flow.c3.s.b",
                           "flow.c3.t.w", "flow.c2.scale"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!ed_graph_leaf(g, ED_OP_PARAM, names[i])) fail_msg("no param %s", names[i]);
    int params = 0;
    for (int i = 0; i < g->nnodes; i++) {
        const ed_node *n = g->nodes[i];
        if (n->op != ED_OP_PARAM) continue;
        params++;
        assert_true(strncmp(n->attr.name, "flow.c", 6) == 0);
    }
    assert_int_equal(params, 4 * 9); /* per coupling: 2 hidden layers and 2 heads (w, b each), scale */
    assert_null(ed_graph_leaf(g, ED_OP_PARAM, "flow.c4.s.w"));
    ed_graph_free(g);
}

static void expect_error(ed_graph *g, const char *part)
{
    const char *e = ed_graph_error(g);
    if (!e || !strstr(e, part)) fail_msg("error \"%s\", want one containing \"%s\"", e ? e : "(none)", part);
    ed_graph_free(g);
}

static void test_errors(void **state)
{
    (void)state;
    ed_realnvp_opts o = opts_for(4, ED_RNVP_MASK_HALVES, "8");
    ed_graph *g = ed_graph_new("e");
    assert_null(ed_realnvp_log_prob(g, ed_input(g, "x", ED_F32, ed_shape2(5, 3)), &o));
    expect_error(g, "realnvp log_prob: input is f32[5,3], needs f32 or f64 [B, 4]");

    g = ed_graph_new("e");
    assert_null(ed_realnvp_forward(ed_input(g, "x", ED_I32, ed_shape2(5, 4)), &o, NULL));
    expect_error(g, "realnvp forward: input is i32[5,4]");

    ed_realnvp_opts bad = opts_for(6, ED_RNVP_MASK_CHECKERBOARD, "8");
    g = ed_graph_new("e");
    assert_null(ed_realnvp_sample(g, 4, &bad));
    expect_error(g, "the checkerboard needs height * width = data_dim");
    bad.height = 2; /* 2 x 3 is fine */
    bad.width = 3;
    g = ed_graph_new("e");
    assert_non_null(ed_realnvp_sample(g, 4, &bad));
    assert_null(ed_graph_error(g));
    ed_graph_free(g);

    bad = o;
    bad.levels = 1;
    g = ed_graph_new("e");
    assert_null(ed_realnvp_loss(g, ed_input(g, "x", ED_F32, ed_shape2(5, 4)), &bad));
    expect_error(g, "levels must be 0 (continuous) or >= 2");

    bad = o;
    bad.scale_bound = 0;
    g = ed_graph_new("e");
    assert_null(ed_realnvp_inverse(ed_input(g, "z", ED_F32, ed_shape2(5, 4)), &bad));
    expect_error(g, "scale_bound must be finite and > 0");

    g = ed_graph_new("e");
    assert_null(ed_realnvp_sample(g, 0, &o));
    expect_error(g, "realnvp sample: n must be >= 1, got 0");

    g = ed_graph_new("e");
    assert_null(ed_realnvp_log_prob(g, NULL, &o)); /* a NULL input is a quiet NULL */
    assert_null(ed_graph_error(g));
    ed_graph_free(g);
}

int main(void)
{
#define BOTH(f) cmocka_unit_test_setup(f, on_interp), cmocka_unit_test_setup(f, on_jit)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        BOTH(test_inverse_undoes_forward),
        BOTH(test_logdet_matches_finite_differences),
        BOTH(test_identity_at_init),
        BOTH(test_dequantisation_bound),
        cmocka_unit_test(test_training_on_moons),
        cmocka_unit_test(test_training_on_images),
        BOTH(test_image_samples_in_range),
        cmocka_unit_test(test_param_names),
        cmocka_unit_test(test_errors),
    };
#undef BOTH
    return cmocka_run_group_tests(tests, NULL, NULL);
}
