/* The VAE family (models/vae.h): options as Edifice, the KL and the likelihoods against
 * closed forms, the IWAE bound against the ELBO on the same draws and in expectation,
 * beta scaling only the KL, gradients reaching encoder and decoder, a short training run
 * on 8x8 bars, the trained IWAE(100) bound below the ELBO, samples and reconstructions,
 * both backends agreeing, and errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "models/train_step.h"
#include "passes/autodiff.h"
#include "models/vae.h"
#include "support/run_check.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

enum { SIDE = 8, D = SIDE * SIDE };

/* Small nets so the suite stays fast: latent 3 (or 8 for training), one hidden layer. */
static ed_vae_opts small_opts(int64_t latent, int64_t width)
{
    ed_vae_opts o;
    ed_vae_defaults(&o);
    o.latent = latent;
    o.encoder = (ed_sizes){1, {width}};
    o.decoder = (ed_sizes){1, {width}};
    o.data_dim = D;
    return o;
}

/* n 8x8 bar images: per image an orientation, each of its 8 lines on with probability
 * 3/8; horizontal bars at 1, vertical ones at grey 7/8 (so x is not only 0 and 1). */
static ed_tensor *bars(int64_t n, ed_dtype dt)
{
    ed_tensor *t = ed_tensor_new(dt, ed_shape2(n, D));
    for (int64_t i = 0; i < n; i++) {
        bool vertical = rng_u32() & 1;
        for (int line = 0; line < SIDE; line++) {
            if (pick(8) >= 3) continue;
            for (int j = 0; j < SIDE; j++) {
                int pixel = vertical ? j * SIDE + line : line * SIDE + j;
                ed_tensor_set(t, i * D + pixel, vertical ? 0.875 : 1.0);
            }
        }
    }
    return t;
}

static double mean_of(const ed_tensor *t)
{
    double s = 0;
    for (int64_t i = 0; i < ed_tensor_numel(t); i++) s += ed_tensor_get(t, i);
    return s / (double)ed_tensor_numel(t);
}

static double variance_of(const ed_tensor *t)
{
    double m = mean_of(t), s = 0;
    for (int64_t i = 0; i < ed_tensor_numel(t); i++) s += (ed_tensor_get(t, i) - m) * (ed_tensor_get(t, i) - m);
    return s / (double)(ed_tensor_numel(t) - 1);
}

static void graph_ok(const ed_graph *g)
{
    if (ed_graph_error(g)) fail_msg("%s", ed_graph_error(g));
}

/* |have - want| <= tol in double (cmocka's assert_float_equal rounds to float). */
#define EXPECT_NEAR(have, want, tol) expect_near((have), (want), (tol), #have, __LINE__)
static void expect_near(double have, double want, double tol, const char *what, int line)
{
    if (!(fabs(have - want) <= tol)) fail_msg("line %d: %s = %.17g, want %.17g (tol %g)", line, what, have, want, tol);
}

/* ---- options ------------------------------------------------------------------------- */

static void test_defaults_follow_edifice(void **state)
{
    (void)state;
    ed_vae_opts o;
    ed_vae_defaults(&o);
    assert_int_equal(o.latent, 32);
    assert_int_equal(o.encoder.n, 2);
    assert_int_equal(o.encoder.v[0], 256);
    assert_int_equal(o.encoder.v[1], 128);
    assert_int_equal(o.decoder.n, 2);
    assert_int_equal(o.decoder.v[0], 128);
    assert_int_equal(o.decoder.v[1], 256);
    assert_int_equal(o.activation, ED_ACT_RELU);
    EXPECT_NEAR(o.beta, 1, 0);
    assert_int_equal(o.likelihood, ED_VAE_BERNOULLI);
    EXPECT_NEAR(o.gaussian_sigma, 0.1, 0);
    assert_int_equal(o.data_dim, 0);
    char buf[64];
    assert_string_equal(ed_options_get(ed_vae_options, ED_VAE_NOPTIONS, &o, "encoder", buf, sizeof buf), "256,128");
    assert_string_equal(ed_options_get(ed_vae_options, ED_VAE_NOPTIONS, &o, "activation", buf, sizeof buf), "relu");
    assert_string_equal(ed_options_get(ed_vae_options, ED_VAE_NOPTIONS, &o, "likelihood", buf, sizeof buf),
                        "bernoulli");
}

/* The activation option's index is the ed_activation of the same name. */
static void test_activation_choices_are_ed_activations(void **state)
{
    (void)state;
    ed_vae_opts o;
    ed_vae_defaults(&o);
    for (int a = 0; a < ED_ACT_COUNT; a++) {
        if (ed_options_set(ed_vae_options, ED_VAE_NOPTIONS, &o, "activation", ed_activation_name(a)) != ED_OK)
            fail_msg("%s", ed_last_error());
        assert_int_equal(o.activation, a);
    }
    assert_int_equal(ed_options_set(ed_vae_options, ED_VAE_NOPTIONS, &o, "likelihood", "gaussian"), ED_OK);
    assert_int_equal(o.likelihood, ED_VAE_GAUSSIAN);
    assert_int_equal(ed_options_set(ed_vae_options, ED_VAE_NOPTIONS, &o, "likelihood", "poisson"), ED_ERR);
    assert_int_equal(ed_options_set(ed_vae_options, ED_VAE_NOPTIONS, &o, "decoder", "64,32,16"), ED_OK);
    assert_int_equal(o.decoder.n, 3);
    assert_int_equal(o.decoder.v[2], 16);
}

/* ---- the terms against closed forms ---------------------------------------------------- */

/* Feeds two [rows, cols] inputs "a" and "b", runs once on be, returns the program. */
static ed_program *run_two(ed_graph *g, ed_store *st, ed_backend be, ed_dtype dt, int64_t rows, int64_t cols,
                           const double *a, const double *b)
{
    ed_tensor *ta = ed_tensor_new(dt, ed_shape2(rows, cols)), *tb = ed_tensor_new(dt, ed_shape2(rows, cols));
    for (int64_t i = 0; i < rows * cols; i++) {
        ed_tensor_set(ta, i, a[i]);
        ed_tensor_set(tb, i, b[i]);
    }
    ed_program *p = compile_with(g, st, be, 0);
    run_ok(p, (ed_feed[]){{"a", ta}, {"b", tb}}, 2);
    ed_tensor_free(ta);
    ed_tensor_free(tb);
    return p;
}

static void check_kl(ed_backend be, ed_dtype dt, double tol)
{
    ed_graph *g = ed_graph_new("kl");
    ed_node *mu = ed_input(g, "a", dt, ed_shape2(2, 2)), *lv = ed_input(g, "b", dt, ed_shape2(2, 2));
    ed_output(g, "kl", ed_vae_kl(mu, lv));
    graph_ok(g);
    const double m[4] = {0, 0, 0.5, -1}, v[4] = {0, 0, 0, log(2)};
    ed_program *p = run_two(g, NULL, be, dt, 2, 2, m, v);
    /* Row 0 is the prior itself. Row 1: ((0.25 + 1 - 1 - 0) + (1 + 2 - 1 - ln 2)) / 2
     * = (2.25 - 0.69314718055994531) / 2. */
    EXPECT_NEAR(ed_tensor_get(out(p, "kl"), 0), 0, tol);
    EXPECT_NEAR(ed_tensor_get(out(p, "kl"), 1), 0.77842640972002735, tol);
    ed_program_free(p);
    ed_graph_free(g);
}

static void test_kl_closed_form(void **state)
{
    (void)state;
    check_kl(ED_BACKEND_INTERP, ED_F64, 1e-15);
    check_kl(ED_BACKEND_JIT, ED_F32, 1e-6);
}

/* -[x log s(l) + (1 - x) log(1 - s(l))] per element, rows summed, grey x and logits far
 * out included: the softplus form must not lose the large terms or produce inf. */
static void check_bernoulli(ed_backend be, ed_dtype dt, double tol)
{
    ed_vae_opts o = small_opts(2, 4);
    o.data_dim = 3;
    ed_graph *g = ed_graph_new("bce");
    ed_node *x = ed_input(g, "a", dt, ed_shape2(2, 3)), *l = ed_input(g, "b", dt, ed_shape2(2, 3));
    ed_output(g, "nll", ed_vae_recon_nll(x, l, &o));
    graph_ok(g);
    const double xs[6] = {0, 1, 0.25, 1, 0, 1}, ls[6] = {0, 2, -1, -30, 40, 40};
    ed_program *p = run_two(g, NULL, be, dt, 2, 3, xs, ls);
    /* ln 2; ln(1 + e^-2); ln(1 + e^-1) + 0.25 (grey: 0.25 ln(1 + e) + 0.75 ln(1 + e^-1)). */
    double row0 = 0.69314718055994531 + 0.1269280110429725 + 0.31326168751822286 + 0.25;
    /* 30 + ln(1 + e^-30); 40 + ln(1 + e^-40); ln(1 + e^-40). */
    double row1 = 30 + 9.357622968839737e-14 + 40 + 2 * 4.2483542552915889e-18;
    EXPECT_NEAR(ed_tensor_get(out(p, "nll"), 0), row0, tol);
    EXPECT_NEAR(ed_tensor_get(out(p, "nll"), 1), row1, tol * 70);
    ed_program_free(p);
    ed_graph_free(g);
}

static void test_bernoulli_nll_closed_form(void **state)
{
    (void)state;
    check_bernoulli(ED_BACKEND_INTERP, ED_F64, 1e-15);
    check_bernoulli(ED_BACKEND_JIT, ED_F32, 1e-6);
}

/* The full Gaussian log-density, constants included. */
static void test_gaussian_nll_closed_form(void **state)
{
    (void)state;
    ed_vae_opts o = small_opts(2, 4);
    o.data_dim = 2;
    o.likelihood = ED_VAE_GAUSSIAN;
    o.gaussian_sigma = 0.1;
    ed_graph *g = ed_graph_new("gauss");
    ed_node *x = ed_input(g, "a", ED_F64, ed_shape2(1, 2)), *m = ed_input(g, "b", ED_F64, ed_shape2(1, 2));
    ed_output(g, "nll", ed_vae_recon_nll(x, m, &o));
    graph_ok(g);
    ed_program *p = run_two(g, NULL, ED_BACKEND_INTERP, ED_F64, 1, 2, (double[]){0.2, 0.9}, (double[]){0.1, 1.0});
    /* Each residual is 0.1 = sigma: 1/2 per element, plus 2 (ln 0.1 + ln(2 pi) / 2)
     * = 1 + 2 (-2.3025850929940455 + 0.9189385332046727). */
    EXPECT_NEAR(ed_tensor_get(out(p, "nll"), 0), -1.7672931195787456, 1e-13);
    ed_program_free(p);
    ed_graph_free(g);
}

/* ---- the bounds on fixed draws --------------------------------------------------------- */

enum { NB = 4, NL = 3 };

/* Builds neg_elbo (given beta), iwae with K = 1 on the same eps, and mu, log_var, all f64
 * from one store, and runs them on x and eps. */
static ed_program *bounds_on_draws(ed_graph *g, ed_store *st, double beta, const ed_tensor *x, const ed_tensor *eps)
{
    ed_vae_opts o = small_opts(NL, 5);
    o.beta = beta;
    ed_node *xi = ed_input(g, "x", ED_F64, ed_shape2(NB, D)), *ei = ed_input(g, "eps", ED_F64, ed_shape2(NB, NL));
    ed_node *lv, *mu = ed_vae_encode(xi, &o, &lv);
    ed_output(g, "neg_elbo", ed_vae_neg_elbo_eps(xi, ei, &o));
    ed_output(g, "iwae", ed_vae_iwae_eps(xi, ed_reshape(ei, ed_shape3(1, NB, NL)), &o));
    ed_output(g, "kl", ed_vae_kl(mu, lv));
    ed_output(g, "mu", mu);
    ed_output(g, "log_var", lv);
    graph_ok(g);
    ed_program *p = compile_with(g, st, ED_BACKEND_INTERP, 0);
    run_ok(p, (ed_feed[]){{"x", x}, {"eps", eps}}, 2);
    return p;
}

/* With K = 1 and the same eps, IWAE and the neg ELBO share the reconstruction term; they
 * differ by log q(z|x) - log p(z) (one draw) minus the analytic KL, computed here by hand. */
static void test_iwae_k1_is_elbo_on_same_draws(void **state)
{
    (void)state;
    rng_seed(11);
    ed_tensor *x = bars(NB, ED_F64), *eps = ed_tensor_new(ED_F64, ed_shape2(NB, NL));
    for (int64_t i = 0; i < NB * NL; i++) ed_tensor_set(eps, i, (rng_u32() / 4294967296.0 - 0.5) * 3);
    ed_store *st = ed_store_new(5);
    ed_graph *g = ed_graph_new("bounds");
    ed_program *p = bounds_on_draws(g, st, 1, x, eps);
    const ed_tensor *mu = out(p, "mu"), *lv = out(p, "log_var");
    for (int b = 0; b < NB; b++) {
        double log_q_over_p = 0;
        for (int j = 0; j < NL; j++) {
            double e = ed_tensor_get(eps, b * NL + j), v = ed_tensor_get(lv, b * NL + j);
            double z = ed_tensor_get(mu, b * NL + j) + exp(v / 2) * e;
            log_q_over_p += (z * z - e * e - v) / 2;
        }
        double want = ed_tensor_get(out(p, "neg_elbo"), b) - ed_tensor_get(out(p, "kl"), b) + log_q_over_p;
        EXPECT_NEAR(ed_tensor_get(out(p, "iwae"), b), want, 1e-12);
    }
    ed_program_free(p);
    ed_graph_free(g);
    ed_store_free(st);
    ed_tensor_free(x);
    ed_tensor_free(eps);
}

/* beta multiplies the KL and nothing else; the IWAE bound ignores it. */
static void test_beta_scales_only_the_kl(void **state)
{
    (void)state;
    rng_seed(12);
    ed_tensor *x = bars(NB, ED_F64), *eps = ed_tensor_new(ED_F64, ed_shape2(NB, NL));
    for (int64_t i = 0; i < NB * NL; i++) ed_tensor_set(eps, i, rng_u32() / 4294967296.0 - 0.5);
    ed_store *st = ed_store_new(6);
    ed_graph *g1 = ed_graph_new("beta1"), *g4 = ed_graph_new("beta4");
    ed_program *p1 = bounds_on_draws(g1, st, 1, x, eps), *p4 = bounds_on_draws(g4, st, 4, x, eps);
    for (int b = 0; b < NB; b++) {
        double kl = ed_tensor_get(out(p1, "kl"), b);
        assert_true(kl > 0);
        EXPECT_NEAR(ed_tensor_get(out(p4, "neg_elbo"), b) - ed_tensor_get(out(p1, "neg_elbo"), b), 3 * kl, 1e-11);
        EXPECT_NEAR(ed_tensor_get(out(p4, "iwae"), b), ed_tensor_get(out(p1, "iwae"), b), 1e-12);
    }
    ed_program_free(p1);
    ed_program_free(p4);
    ed_graph_free(g1);
    ed_graph_free(g4);
    ed_store_free(st);
    ed_tensor_free(x);
    ed_tensor_free(eps);
}

/* IWAE with K = 1 is an unbiased draw of the neg ELBO (beta 1): over many draws of one x
 * the two means agree within 4 standard errors, while K = 100 lies clearly below. */
static void test_iwae_k1_in_expectation(void **state)
{
    (void)state;
    enum { N = 4000 };
    rng_seed(13);
    ed_tensor *one = bars(1, ED_F32), *x = ed_tensor_new(ED_F32, ed_shape2(N, D));
    for (int64_t i = 0; i < N * D; i++) ((float *)x->data)[i] = ((float *)one->data)[i % D];
    ed_vae_opts o = small_opts(NL, 16);
    ed_graph *g = ed_graph_new("expectation");
    ed_node *xi = ed_input(g, "x", ED_F32, ed_shape2(N, D));
    ed_output(g, "neg_elbo", ed_vae_neg_elbo(g, xi, &o));
    ed_output(g, "iwae1", ed_vae_iwae(g, xi, 1, &o));
    graph_ok(g);
    ed_store *st = ed_store_new(7);
    ed_program *p = compile_with(g, st, ED_BACKEND_JIT, 1);
    run_ok(p, (ed_feed[]){{"x", x}}, 1);
    const ed_tensor *elbo = out(p, "neg_elbo"), *iwae = out(p, "iwae1");
    double se = sqrt(variance_of(elbo) / N + variance_of(iwae) / N);
    assert_true(se > 0.01); /* the draws differ: a real comparison */
    if (fabs(mean_of(elbo) - mean_of(iwae)) > 4 * se)
        fail_msg("mean neg ELBO %.4f, mean IWAE(1) %.4f, standard error %.4f", mean_of(elbo), mean_of(iwae), se);
    ed_program_free(p);
    ed_graph_free(g);
    ed_store_free(st);
    ed_tensor_free(one);
    ed_tensor_free(x);
}

/* ---- gradients and training --------------------------------------------------------- */

/* One SGD step moves every encoder and decoder param (named as the header says). */
static void test_gradients_reach_encoder_and_decoder(void **state)
{
    (void)state;
    ed_vae_opts o = small_opts(4, 16);
    o.encoder = (ed_sizes){2, {16, 8}};
    o.decoder = (ed_sizes){2, {8, 16}};
    rng_seed(14);
    ed_tensor *x = bars(32, ED_F32);
    ed_graph *g = ed_graph_new("grad");
    ed_node *loss = ed_vae_loss(g, ed_input(g, "x", ED_F32, ed_shape2(32, D)), &o);
    assert_int_equal(ed_train_step(g, loss, &(ed_train_opts){.optim = {.kind = ED_OPT_SGD, .lr = 0.1}}), ED_OK);
    graph_ok(g);
    ed_store *st = ed_store_new(8);
    ed_program *p = compile_with(g, st, ED_BACKEND_JIT, 0);
    static const char *const names[] = {"vae.enc.0.w",  "vae.enc.0.b",  "vae.enc.1.w",       "vae.enc.1.b",
                                        "vae.enc.mu.w", "vae.enc.mu.b", "vae.enc.log_var.w", "vae.enc.log_var.b",
                                        "vae.dec.0.w",  "vae.dec.0.b",  "vae.dec.1.w",       "vae.dec.1.b",
                                        "vae.dec.2.w",  "vae.dec.2.b"};
    enum { NP = sizeof names / sizeof names[0] };
    ed_tensor *before[NP];
    for (int i = 0; i < NP; i++) {
        const ed_tensor *t = ed_store_get(st, names[i]);
        if (!t) fail_msg("no param %s", names[i]);
        before[i] = ed_tensor_copy(t);
    }
    int trainable = 0;
    for (int i = 0; i < ed_store_count(st); i++) trainable += ed_store_trainable(st, i);
    assert_int_equal(trainable, NP); /* no params under other names */
    run_ok(p, (ed_feed[]){{"x", x}}, 1);
    for (int i = 0; i < NP; i++) {
        const ed_tensor *after = ed_store_get(st, names[i]);
        double moved = 0;
        for (int64_t j = 0; j < ed_tensor_numel(after); j++)
            moved += fabs(ed_tensor_get(after, j) - ed_tensor_get(before[i], j));
        if (!(moved > 0)) fail_msg("%s did not move", names[i]);
        ed_tensor_free(before[i]);
    }
    ed_program_free(p);
    ed_graph_free(g);
    ed_store_free(st);
    ed_tensor_free(x);
}

enum { TRAIN_N = 1024, BATCH = 64, STEPS = 600, EVAL_N = 128, EVAL_K = 100 };

/* Adam on bars: the loss falls 2x (42 -> about 17.5 nats over seeds; the data's own
 * entropy is about 10.5), the eval figures are finite and IWAE(100) is below the
 * neg ELBO on held-out images; samples and reconstructions are [n, D] in [0, 1]. */
static void test_training_and_eval(void **state)
{
    (void)state;
    ed_vae_opts o = small_opts(8, 64);
    rng_seed(15);
    ed_tensor *data = bars(TRAIN_N, ED_F32), *test = bars(EVAL_N, ED_F32);
    ed_tensor *xb = ed_tensor_new(ED_F32, ed_shape2(BATCH, D));

    ed_graph *g = ed_graph_new("vae_train");
    ed_node *loss = ed_vae_loss(g, ed_input(g, "x", ED_F32, ed_shape2(BATCH, D)), &o);
    assert_int_equal(ed_train_step(g, loss, &(ed_train_opts){.optim = {.kind = ED_OPT_ADAM, .lr = 1e-2}}), ED_OK);
    graph_ok(g);
    ed_store *st = ed_store_new(9);
    ed_program *p = compile_with(g, st, ED_BACKEND_JIT, 2);
    double first = 0, last = 0;
    for (int s = 0; s < STEPS; s++) {
        int64_t row = (int64_t)s * BATCH % TRAIN_N;
        memcpy(xb->data, (float *)data->data + row * D, BATCH * D * sizeof(float));
        run_ok(p, (ed_feed[]){{"x", xb}}, 1);
        double l = ed_tensor_get(out(p, "loss"), 0);
        if (!isfinite(l)) fail_msg("step %d: loss %g", s, l);
        if (s < 20) first += l / 20;
        if (s >= STEPS - 20) last += l / 20;
    }
    printf("vae bars: loss %.2f -> %.2f nats per image\n", first, last);
    if (!(last < first / 2)) fail_msg("loss %.3f -> %.3f: did not fall 2x", first, last);

    ed_graph *e = ed_graph_new("vae_eval");
    ed_node *x = ed_input(e, "x", ED_F32, ed_shape2(EVAL_N, D));
    ed_output(e, "neg_elbo", ed_vae_neg_elbo(e, x, &o));
    ed_output(e, "iwae", ed_vae_iwae(e, x, EVAL_K, &o));
    ed_output(e, "recon", ed_vae_reconstruct(x, &o));
    ed_output(e, "sample", ed_vae_sample(e, 10, &o));
    graph_ok(e);
    ed_program *q = compile_with(e, st, ED_BACKEND_JIT, 3);
    run_ok(q, (ed_feed[]){{"x", test}}, 1);
    double elbo = mean_of(out(q, "neg_elbo")), iwae = mean_of(out(q, "iwae"));
    printf("vae bars test: neg ELBO %.3f, IWAE(%d) %.3f nats per image\n", elbo, EVAL_K, iwae);
    assert_true(isfinite(elbo) && isfinite(iwae));
    if (!(iwae < elbo - 0.05)) fail_msg("IWAE(%d) %.4f is not below the neg ELBO %.4f", EVAL_K, iwae, elbo);
    assert_true(elbo < first / 2);
    const ed_tensor *recon = out(q, "recon"), *sample = out(q, "sample");
    assert_true(ed_shape_eq(recon->shape, ed_shape2(EVAL_N, D)));
    assert_true(ed_shape_eq(sample->shape, ed_shape2(10, D)));
    for (int64_t i = 0; i < ed_tensor_numel(recon); i++) assert_true(f32_at(recon, i) >= 0 && f32_at(recon, i) <= 1);
    for (int64_t i = 0; i < ed_tensor_numel(sample); i++) assert_true(f32_at(sample, i) >= 0 && f32_at(sample, i) <= 1);
    /* Reconstructions resemble their inputs: mean absolute error well below the 0.5 of a guess. */
    double err = 0;
    for (int64_t i = 0; i < ed_tensor_numel(recon); i++) err += fabs(f32_at(recon, i) - f32_at(test, i));
    err /= (double)ed_tensor_numel(recon);
    if (!(err < 0.15)) fail_msg("reconstruction mean absolute error %.3f", err);

    ed_program_free(q);
    ed_graph_free(e);
    ed_program_free(p);
    ed_graph_free(g);
    ed_store_free(st);
    ed_tensor_free(data);
    ed_tensor_free(test);
    ed_tensor_free(xb);
}

/* ---- generation, backends, errors -------------------------------------------------- */

/* The Gaussian decoder returns its mean unsquashed; reconstruction draws nothing. */
static void test_gaussian_sample_and_deterministic_reconstruction(void **state)
{
    (void)state;
    ed_vae_opts o = small_opts(4, 16);
    o.likelihood = ED_VAE_GAUSSIAN;
    rng_seed(16);
    ed_tensor *x = bars(6, ED_F32);
    ed_graph *g = ed_graph_new("gen");
    ed_output(g, "sample", ed_vae_sample(g, 5, &o));
    ed_output(g, "recon", ed_vae_reconstruct(ed_input(g, "x", ED_F32, ed_shape2(6, D)), &o));
    graph_ok(g);
    ed_store *st = ed_store_new(10);
    ed_program *p = compile_with(g, st, ED_BACKEND_JIT, 0);
    run_ok(p, (ed_feed[]){{"x", x}}, 1);
    assert_true(ed_shape_eq(out(p, "sample")->shape, ed_shape2(5, D)));
    ed_tensor *recon = ed_tensor_copy(out(p, "recon")), *sample = ed_tensor_copy(out(p, "sample"));
    bool outside = false;
    for (int64_t i = 0; i < ed_tensor_numel(sample); i++) outside |= f32_at(sample, i) < 0 || f32_at(sample, i) > 1;
    assert_true(outside); /* no sigmoid on a Gaussian mean */
    run_ok(p, (ed_feed[]){{"x", x}}, 1);
    check_tensors_agree(recon, out(p, "recon"), 0, "reconstruction", "second call");
    bool differ = false;
    for (int64_t i = 0; i < ed_tensor_numel(sample); i++) differ |= f32_at(sample, i) != f32_at(out(p, "sample"), i);
    assert_true(differ); /* fresh z each call */
    ed_tensor_free(recon);
    ed_tensor_free(sample);
    ed_program_free(p);
    ed_graph_free(g);
    ed_store_free(st);
    ed_tensor_free(x);
}

/* The same draws on both backends: the JIT's figures match the interpreter's. */
static void test_backends_agree(void **state)
{
    (void)state;
    ed_vae_opts o = small_opts(NL, 16);
    o.beta = 0.5;
    rng_seed(17);
    ed_tensor *x = bars(7, ED_F32);
    ed_graph *g = ed_graph_new("both");
    ed_node *xi = ed_input(g, "x", ED_F32, ed_shape2(7, D));
    ed_output(g, "neg_elbo", ed_vae_neg_elbo(g, xi, &o));
    ed_output(g, "iwae", ed_vae_iwae(g, xi, 13, &o));
    ed_output(g, "sample", ed_vae_sample(g, 3, &o));
    graph_ok(g);
    ed_store *s1 = ed_store_new(11), *s2 = ed_store_new(11);
    ed_program *pi = compile_with(g, s1, ED_BACKEND_INTERP, 4), *pj = compile_with(g, s2, ED_BACKEND_JIT, 4);
    run_ok(pi, (ed_feed[]){{"x", x}}, 1);
    run_ok(pj, (ed_feed[]){{"x", x}}, 1);
    check_tensors_close(out(pi, "neg_elbo"), out(pj, "neg_elbo"), 1e-4, "neg_elbo", "jit");
    check_tensors_close(out(pi, "iwae"), out(pj, "iwae"), 1e-4, "iwae", "jit");
    check_tensors_close(out(pi, "sample"), out(pj, "sample"), 1e-4, "sample", "jit");
    ed_program_free(pi);
    ed_program_free(pj);
    ed_graph_free(g);
    ed_store_free(s1);
    ed_store_free(s2);
    ed_tensor_free(x);
}

static void expect_graph_error(ed_graph *g, ed_node *n, const char *part)
{
    assert_null(n);
    const char *msg = ed_graph_error(g);
    if (!msg || !strstr(msg, part)) fail_msg("error '%s' does not contain '%s'", msg ? msg : "(none)", part);
    ed_graph_free(g);
}

static void test_errors(void **state)
{
    (void)state;
    ed_vae_opts o = small_opts(NL, 8);
    ed_graph *g = ed_graph_new("e1");
    expect_graph_error(g, ed_vae_loss(g, ed_input(g, "x", ED_F32, ed_shape2(4, 10)), &o),
                       "vae neg_elbo: x is f32[4,10], need a float [B, 64] batch");
    g = ed_graph_new("e2");
    expect_graph_error(g, ed_vae_iwae(g, ed_input(g, "x", ED_F32, ed_shape2(4, D)), 0, &o), "k must be >= 1");
    g = ed_graph_new("e3");
    expect_graph_error(
        g, ed_vae_iwae_eps(ed_input(g, "x", ED_F32, ed_shape2(4, D)), ed_input(g, "eps", ED_F32, ed_shape2(4, NL)), &o),
        "eps is f32[4,3], need f32[k, B = 4, latent = 3]");
    g = ed_graph_new("e4");
    expect_graph_error(g, ed_vae_decode(ed_input(g, "z", ED_F32, ed_shape2(4, NL + 1)), &o),
                       "vae decoder: z is f32[4,4], need a float [..., 3]");
    g = ed_graph_new("e5");
    ed_vae_opts bad = o;
    bad.likelihood = ED_VAE_GAUSSIAN;
    bad.gaussian_sigma = 0;
    expect_graph_error(g, ed_vae_sample(g, 2, &bad), "gaussian_sigma must be > 0");
    g = ed_graph_new("e6");
    bad = o;
    bad.data_dim = 0;
    expect_graph_error(g, ed_vae_sample(g, 2, &bad), "data_dim (0) must be >= 1");
    g = ed_graph_new("e7");
    expect_graph_error(g, ed_vae_sample(g, 0, &o), "n must be >= 1");
}

/* ---- arch conv ------------------------------------------------------------------------ */

/* A conv VAE on 8x8 one-channel images: channels 4,8 take 8 -> 4 -> 2. */
static ed_vae_opts conv_opts(int64_t latent, int64_t c0, int64_t c1)
{
    ed_vae_opts o = small_opts(latent, 8);
    o.arch = ED_VAE_CONV;
    o.channels = (ed_sizes){2, {c0, c1}};
    o.image[0] = 1, o.image[1] = SIDE, o.image[2] = SIDE;
    return o;
}

static void expect_leaf(ed_graph *g, const char *name, ed_shape want)
{
    ed_node *n = ed_graph_leaf(g, ED_OP_PARAM, name);
    if (!n) fail_msg("no param %s", name);
    if (!ed_shape_eq(n->shape, want))
        fail_msg("%s has rank %d, dim 0 %lld", name, n->shape.rank, (long long)n->shape.dim[0]);
}

/* The params named and shaped as vae.h says (PyTorch's layouts), the mlp widths unused,
 * and the outputs of every entry point shaped as the MLP's. */
static void test_conv_shapes_and_names(void **state)
{
    (void)state;
    ed_vae_opts o = conv_opts(3, 4, 8);
    ed_graph *g = ed_graph_new("conv_shapes");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(5, D));
    ed_node *log_var, *mu = ed_vae_encode(x, &o, &log_var);
    ed_node *iwae = ed_vae_iwae(g, x, 7, &o);
    ed_node *rec = ed_vae_reconstruct(x, &o);
    graph_ok(g);
    assert_true(ed_shape_eq(mu->shape, ed_shape2(5, 3)) && ed_shape_eq(log_var->shape, ed_shape2(5, 3)));
    assert_true(ed_shape_eq(iwae->shape, ed_shape1(5)));
    assert_true(ed_shape_eq(rec->shape, ed_shape2(5, D)));
    ed_node *z = ed_input(g, "z", ED_F32, ed_shape3(7, 5, 3));
    assert_true(ed_shape_eq(ed_vae_decode(z, &o)->shape, ed_shape3(7, 5, D)));
    expect_leaf(g, "vae.enc.conv0.w", ed_shape4(4, 1, 4, 4));
    expect_leaf(g, "vae.enc.conv0.b", ed_shape1(4));
    expect_leaf(g, "vae.enc.conv1.w", ed_shape4(8, 4, 4, 4));
    expect_leaf(g, "vae.enc.mu.w", ed_shape2(8 * 2 * 2, 3));
    expect_leaf(g, "vae.enc.log_var.w", ed_shape2(8 * 2 * 2, 3));
    expect_leaf(g, "vae.dec.fc.w", ed_shape2(3, 8 * 2 * 2));
    expect_leaf(g, "vae.dec.up0.w", ed_shape4(8, 4, 4, 4));
    expect_leaf(g, "vae.dec.up1.w", ed_shape4(4, 1, 4, 4));
    expect_leaf(g, "vae.dec.up1.b", ed_shape1(1));
    assert_null(ed_graph_leaf(g, ED_OP_PARAM, "vae.enc.0.w"));
    assert_null(ed_graph_leaf(g, ED_OP_PARAM, "vae.dec.0.w"));
    ed_graph_free(g);

    /* 8x8 cannot take 4 halvings; C H W must be D */
    ed_vae_opts bad = o;
    bad.channels = (ed_sizes){4, {2, 2, 2, 2}};
    g = ed_graph_new("conv_e1");
    expect_graph_error(g, ed_vae_sample(g, 2, &bad), "4 stride-2 layers need H and W divisible by 16");
    bad = o;
    bad.image[0] = 2;
    g = ed_graph_new("conv_e2");
    expect_graph_error(g, ed_vae_sample(g, 2, &bad), "an image [C, H, W] of data_dim 64 numbers");
}

/* f64, eps given: the gradient of the mean negative ELBO in every conv VAE param,
 * the JIT against the interpreter, and the interpreter's against central differences
 * in a few weights of the first convolution and of the last transposed one. */
static void test_conv_gradients(void **state)
{
    (void)state;
    enum { B = 3, NLAT = 2 };
    ed_vae_opts o = conv_opts(NLAT, 2, 3);
    static const char *const names[] = {"vae.enc.conv0.w", "vae.enc.conv0.b",   "vae.enc.conv1.w", "vae.enc.conv1.b",
                                        "vae.enc.mu.w",    "vae.enc.log_var.w", "vae.dec.fc.w",    "vae.dec.fc.b",
                                        "vae.dec.up0.w",   "vae.dec.up0.b",     "vae.dec.up1.w",   "vae.dec.up1.b"};
    enum { NP = sizeof names / sizeof names[0] };
    ed_graph *g = ed_graph_new("conv_grad");
    ed_node *x = ed_input(g, "x", ED_F64, ed_shape2(B, D));
    ed_node *eps = ed_input(g, "eps", ED_F64, ed_shape2(B, NLAT));
    ed_node *loss = ed_mean(ed_vae_neg_elbo_eps(x, eps, &o), ED_ALL_AXES, false);
    ed_output(g, "loss", loss);
    for (int i = 0; i < NP; i++) {
        ed_node *w = ed_graph_leaf(g, ED_OP_PARAM, names[i]);
        if (!w) fail_msg("no param %s", names[i]);
        ed_output(g, names[i], ed_grad1(loss, w));
    }
    graph_ok(g);
    rng_seed(21);
    ed_tensor *xt = bars(B, ED_F64);
    ed_tensor *et = ed_tensor_new(ED_F64, ed_shape2(B, NLAT));
    for (int64_t i = 0; i < B * NLAT; i++) ed_tensor_set(et, i, (pick(2001) - 1000) / 1000.0);
    ed_feed feeds[] = {{"x", xt}, {"eps", et}};
    ed_store *si = ed_store_new(5), *sj = ed_store_new(5);
    ed_program *pi = compile_with(g, si, ED_BACKEND_INTERP, 0), *pj = compile_with(g, sj, ED_BACKEND_JIT, 0);
    run_ok(pi, feeds, 2);
    run_ok(pj, feeds, 2);
    for (int i = 0; i < NP; i++) check_tensors_close(out(pi, names[i]), out(pj, names[i]), 1e-9, "jit grad", names[i]);
    /* central differences on the interpreter, h = 1e-5 */
    static const char *const probe[] = {"vae.enc.conv0.w", "vae.dec.up1.w"};
    for (int k = 0; k < 2; k++) {
        ed_tensor *w = ed_store_get(si, probe[k]);
        ed_tensor *grad = ed_tensor_copy(out(pi, probe[k]));
        for (int64_t j = 0; j < ed_tensor_numel(w); j += 5) {
            double w0 = ed_tensor_get(w, j), h = 1e-5;
            ed_tensor_set(w, j, w0 + h);
            run_ok(pi, feeds, 2);
            double up = ed_tensor_get(out(pi, "loss"), 0);
            ed_tensor_set(w, j, w0 - h);
            run_ok(pi, feeds, 2);
            double down = ed_tensor_get(out(pi, "loss"), 0);
            ed_tensor_set(w, j, w0);
            double fd = (up - down) / (2 * h), an = ed_tensor_get(grad, j);
            if (!(fabs(fd - an) <= 1e-6 * (1 + fabs(an))))
                fail_msg("%s[%lld]: analytic %.12g, central difference %.12g", probe[k], (long long)j, an, fd);
        }
        ed_tensor_free(grad);
    }
    ed_program_free(pi);
    ed_program_free(pj);
    ed_store_free(si);
    ed_store_free(sj);
    ed_graph_free(g);
    ed_tensor_free(xt);
    ed_tensor_free(et);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_follow_edifice),
        cmocka_unit_test(test_activation_choices_are_ed_activations),
        cmocka_unit_test(test_kl_closed_form),
        cmocka_unit_test(test_bernoulli_nll_closed_form),
        cmocka_unit_test(test_gaussian_nll_closed_form),
        cmocka_unit_test(test_iwae_k1_is_elbo_on_same_draws),
        cmocka_unit_test(test_beta_scales_only_the_kl),
        cmocka_unit_test(test_iwae_k1_in_expectation),
        cmocka_unit_test(test_gradients_reach_encoder_and_decoder),
        cmocka_unit_test(test_training_and_eval),
        cmocka_unit_test(test_gaussian_sample_and_deterministic_reconstruction),
        cmocka_unit_test(test_backends_agree),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_conv_shapes_and_names),
        cmocka_unit_test(test_conv_gradients),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
