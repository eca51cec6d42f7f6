/* The score SDE family: the probability-flow likelihood against the closed form of a
 * Gaussian, the VP/VE switch, the frozen Fourier features, and option errors.
 *
 * Closed form. Data N(m, s^2) per dimension, m = (1, -2), s = (0.5, 2). With
 * V(t) = alpha^2 s^2 + sigma^2 the exact eps is sigma (x - alpha m) / V and the PF-ODE
 * maps x at t_eps to x1 = alpha1 m + sqrt(V1 / V_eps) (x - alpha_eps m) at t = 1. The
 * estimate is log prior(x1) + integral div f, and the exact flow gives
 *   log p_eps(x) - log p_1(x1) + log prior(x1),
 * which the test computes in double. The Jacobian is diagonal, so Rademacher probes
 * give the trace exactly: what is left is RK4 and f32. Gaussian probes are unbiased:
 * their mean error over the rows is checked at five standard errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "models/generate.h"
#include "models/registry.h"
#include "models/sde_likelihood.h"
#include "models/trainer.h"
#include "runtime/philox.h"
#include "support/run_check.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define PI 3.14159265358979323846
#define ROWS 2000

static const double M[2] = {1, -2}, S[2] = {0.5, 2};

static ed_node *exact_eps(ed_graph *body, ed_node *x, const ed_denoise_in *in, void *ctx)
{
    (void)ctx;
    ed_node *m = ed_const(body, ED_F32, ed_shape1(2), (double[]){M[0], M[1]}, 2);
    ed_node *s2 = ed_const(body, ED_F32, ed_shape1(2), (double[]){S[0] * S[0], S[1] * S[1]}, 2);
    ed_node *v = ed_add(ed_mul(ed_square(in->alpha), s2), ed_square(in->sigma));
    return ed_div(ed_mul(in->sigma, ed_sub(x, ed_mul(in->alpha, m))), v);
}

static double log_normal(double x, double mean, double var)
{
    return -0.5 * (log(2 * PI * var) + (x - mean) * (x - mean) / var);
}

/* The exact-flow reference for one row (see the file comment). */
static double reference(const double *x, const ed_process *p, double t_eps)
{
    ed_level le = ed_process_level(p, t_eps), l1 = ed_process_level(p, 1);
    double prior = p->kind == ED_PROC_VE ? l1.sigma : 1, r = 0;
    for (int d = 0; d < 2; d++) {
        double ve = le.alpha * le.alpha * S[d] * S[d] + le.sigma * le.sigma;
        double v1 = l1.alpha * l1.alpha * S[d] * S[d] + l1.sigma * l1.sigma;
        double x1 = l1.alpha * M[d] + sqrt(v1 / ve) * (x[d] - le.alpha * M[d]);
        r += log_normal(x[d], le.alpha * M[d], ve) - log_normal(x1, l1.alpha * M[d], v1) +
             log_normal(x1, 0, prior * prior);
    }
    return r;
}

/* Mean and max |estimate - reference| over ROWS data rows, and the errors' std. */
static void pf_errors(const ed_pf_nll_opts *o, double *mean, double *max, double *sd)
{
    double z[2 * ROWS];
    ed_rng_normal(z, ED_F64, 2 * ROWS, 5, 0, 1);
    ed_tensor *x = ed_tensor_new(ED_F32, ed_shape2(ROWS, 2));
    for (int i = 0; i < 2 * ROWS; i++) ((float *)x->data)[i] = (float)(M[i % 2] + S[i % 2] * z[i]);
    ed_graph *g = ed_graph_new("pf");
    ed_model model = {exact_eps, NULL, ED_PRED_EPS};
    ed_output(g, "logp", ed_pf_log_prob(g, &model, ed_input(g, "x", ED_F32, ed_shape2(ROWS, 2)), o));
    if (ed_graph_error(g)) fail_msg("%s", ed_graph_error(g));
    ed_store *st = ed_store_new(1);
    ed_program *p = compile_with(g, st, ED_BACKEND_JIT, 3);
    run_ok(p, (ed_feed[]){{"x", x}}, 1);
    const ed_tensor *lp = out(p, "logp");
    double s = 0, s2 = 0;
    *max = 0;
    for (int i = 0; i < ROWS; i++) {
        double row[2] = {f32_at(x, 2 * i), f32_at(x, 2 * i + 1)};
        double e = f32_at(lp, i) - reference(row, &o->process, o->t_eps ? o->t_eps : 1e-5);
        s += e, s2 += e * e;
        if (fabs(e) > *max) *max = fabs(e);
    }
    *mean = s / ROWS;
    *sd = sqrt(s2 / ROWS - *mean * *mean);
    ed_program_free(p);
    ed_store_free(st);
    ed_graph_free(g);
    ed_tensor_free(x);
}

static void test_pf_nll_gaussian_closed_form(void **state)
{
    (void)state;
    const ed_process procs[2] = {{.kind = ED_PROC_VP}, {.kind = ED_PROC_VE}};
    /* Measured max |error| per row (nats), RK4: VP 100 steps 6.2e-6, 20 steps 1.3e-4; VE
     * 100 steps 2.0e-5, 20 steps 9.6e-3 (the VE drift grows as sigma does). Gaussian
     * probes: per-row sd about 10 nats, mean error within 0.15. */
    const double tol100[2] = {1e-4, 1e-4}, tol20[2] = {1e-3, 3e-2};
    for (int k = 0; k < 2; k++) {
        double mean, max, sd;
        ed_pf_nll_opts o = {.process = procs[k], .method = ED_ODE_RK4, .steps = 100};
        pf_errors(&o, &mean, &max, &sd);
        printf("%s, rademacher, rk4 100: mean error %.2e, max %.2e nats\n", k ? "ve" : "vp", mean, max);
        if (!(max < tol100[k])) fail_msg("max error %g nats", max);
        o.steps = 20;
        pf_errors(&o, &mean, &max, &sd);
        printf("%s, rademacher, rk4 20: mean error %.2e, max %.2e nats\n", k ? "ve" : "vp", mean, max);
        if (!(max < tol20[k])) fail_msg("max error %g nats at 20 steps", max);
        o.steps = 100, o.probe = ED_PROBE_GAUSSIAN;
        pf_errors(&o, &mean, &max, &sd);
        printf("%s, gaussian, rk4 100: mean error %.2e (sd %.2e) nats\n", k ? "ve" : "vp", mean, sd);
        assert_true(sd > 1e-3); /* the probes do vary */
        if (!(fabs(mean) < 5 * sd / sqrt(ROWS) + tol100[k])) fail_msg("mean error %g, sd %g", mean, sd);
    }
}

static void test_pf_nll_errors(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("pf");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(4, 2));
    ed_model model = {exact_eps, NULL, ED_PRED_X0};
    assert_null(ed_pf_log_prob(g, &model, x, NULL));
    assert_non_null(strstr(ed_graph_error(g), "needs a model predicting eps"));
    ed_graph_free(g);
    g = ed_graph_new("pf");
    x = ed_input(g, "x", ED_F32, ed_shape2(4, 2));
    model.pred = ED_PRED_EPS;
    assert_null(ed_pf_log_prob(g, &model, x, &(ed_pf_nll_opts){.process = {.kind = ED_PROC_FLOW}}));
    assert_non_null(strstr(ed_graph_error(g), "VP or VE"));
    ed_graph_free(g);
}

static ed_gen_model moons_model(const char *sde)
{
    ed_gen_model m;
    assert_int_equal(ed_gen_model_init(&m, ed_model_find("score_sde"), ed_shape1(2), 0), ED_OK);
    assert_int_equal(ed_gen_model_set(&m, "hidden", "16"), ED_OK);
    assert_int_equal(ed_gen_model_set(&m, "layers", "1"), ED_OK);
    assert_int_equal(ed_gen_model_set(&m, "sde", sde), ED_OK);
    return m;
}

/* Untrained, the network's output layer is zero: eps_hat = 0, so the samplers only
 * move the prior draw by the process's own drift and noise, both closed forms:
 *   ode  VP x(eps) = x(1) alpha(eps) / alpha(1) (rms about 152); VE x(eps) = x(1) (50);
 *   em   VE adds noise of variance sigma(1)^2 - sigma(eps)^2 (rms 70.7), as discretized.
 * (Not pc: its Langevin step size divides by |score| = 0.) 4000 values: the rms has a
 * standard error near 1.1%, so 5% bounds. */
static double untrained_rms(const char *sde, const char *sampler)
{
    ed_gen_model m = moons_model(sde);
    ed_store *st = ed_store_new(2);
    ed_tensor *s = NULL;
    ed_gen_draw_opts o = {.sampler = {.sampler = sampler, .steps = 40}, .seed = 4};
    if (ed_gen_draw(&m, st, 2000, NULL, NULL, &o, &s) != ED_OK) fail_msg("%s", ed_last_error());
    double s2 = 0;
    for (int64_t i = 0; i < ed_tensor_numel(s); i++) s2 += f32_at(s, i) * f32_at(s, i);
    double rms = sqrt(s2 / (double)ed_tensor_numel(s));
    printf("untrained %s, %s: rms %.3f\n", sde, sampler, rms);
    ed_tensor_free(s);
    ed_store_free(st);
    return rms;
}

static void expect_near(double have, double want, const char *what)
{
    if (!(fabs(have / want - 1) < 0.05)) fail_msg("%s: rms %g, want %g", what, have, want);
}

static void test_vp_ve_switch(void **state)
{
    (void)state;
    ed_process vp = {.kind = ED_PROC_VP}, ve = {.kind = ED_PROC_VE};
    double eps = 1e-3, s1 = ed_process_level(&ve, 1).sigma, se = ed_process_level(&ve, eps).sigma;
    expect_near(untrained_rms("vp", "ode"), ed_process_level(&vp, eps).alpha / ed_process_level(&vp, 1).alpha,
                "vp ode");
    expect_near(untrained_rms("ve", "ode"), s1, "ve ode");
    /* Euler-Maruyama's noise: g^2 at each step's start time, none on the last step. */
    double var = s1 * s1, h = (1 - eps) / 40;
    for (int k = 0; k < 39; k++) var += ed_process_level(&ve, 1 - h * k).g2 * h;
    printf("ve em: the SDE's own rms %.3f, its 40-step discretization's %.3f\n", sqrt(2 * s1 * s1 - se * se),
           sqrt(var));
    expect_near(untrained_rms("ve", "em"), sqrt(var), "ve em");
}

/* The Fourier frequencies are state: N(0, 16^2) at init, checkpointed, never trained. */
static void test_fourier_features_frozen(void **state)
{
    (void)state;
    ed_dataset d;
    assert_int_equal(ed_dataset_open(&d, "moons", 512, 1), ED_OK);
    ed_gen_model m = moons_model("ve");
    ed_trainer *t = ed_trainer_new(&m, &d, &(ed_trainer_opts){.batch = 64, .lr = 1e-2, .seed = 3});
    if (!t) fail_msg("%s", ed_last_error());
    double loss;
    assert_int_equal(ed_trainer_step(t, &loss), ED_OK);
    const ed_tensor *w = ed_store_get(ed_trainer_store(t), "sde.fourier.w");
    const ed_tensor *fc = ed_store_get(ed_trainer_store(t), "sde.in.w");
    assert_non_null(w);
    assert_non_null(fc);
    assert_true(ed_shape_eq(w->shape, ed_shape2(1, 8)));
    float w0[8], fc0 = f32_at(fc, 0);
    memcpy(w0, w->data, sizeof w0);
    double s2 = 0;
    for (int i = 0; i < 8; i++) s2 += (double)w0[i] * w0[i];
    assert_true(sqrt(s2 / 8) > 4 && sqrt(s2 / 8) < 40); /* scale 16, eight draws */
    for (int i = 0; i < 5; i++) assert_int_equal(ed_trainer_step(t, &loss), ED_OK);
    assert_memory_equal(w0, w->data, sizeof w0);
    assert_true(f32_at(fc, 0) != fc0); /* while the network trains */
    ed_trainer_free(t);
    ed_dataset_free(&d);
}

static void test_sample_errors(void **state)
{
    (void)state;
    ed_gen_model m = moons_model("vp");
    ed_graph *g = ed_graph_new("s");
    assert_null(ed_gen_model_sample(g, &m, 4, NULL, NULL, &(ed_gen_sample_opts){.sampler = "ddim"}));
    assert_non_null(strstr(ed_graph_error(g), "unknown sampler 'ddim' (samplers: pc|em|ode)"));
    ed_graph_free(g);
    g = ed_graph_new("s");
    assert_null(ed_gen_model_sample(g, &m, 4, NULL, NULL, &(ed_gen_sample_opts){.has_eta = true, .eta = 1}));
    assert_non_null(strstr(ed_graph_error(g), "no guidance or eta"));
    ed_graph_free(g);
    assert_int_equal(ed_gen_model_set(&m, "sde", "subvp"), ED_ERR);
    assert_non_null(strstr(ed_last_error(), "vp|ve"));
    assert_int_equal(ed_gen_model_set(&m, "sigma_min", "60"), ED_OK);
    assert_int_equal(ed_gen_model_set(&m, "sde", "ve"), ED_OK);
    assert_int_equal(ed_gen_model_check(&m), ED_ERR);
    assert_non_null(strstr(ed_last_error(), "sigma_min must be below sigma_max"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pf_nll_gaussian_closed_form),
        cmocka_unit_test(test_pf_nll_errors),
        cmocka_unit_test(test_vp_ve_switch),
        cmocka_unit_test(test_fourier_features_frozen),
        cmocka_unit_test(test_sample_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
