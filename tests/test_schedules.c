/* Noise schedules, time grids, process levels and in-graph tables. Expected values are
 * worked by hand (small cases) or from the closed forms with a calculator (T = 1000). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "models/schedules.h"
#include "support/interp_check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PI 3.14159265358979323846

static void near(double got, double want, double tol, const char *what)
{
    if (!(fabs(got - want) <= tol * fmax(1, fabs(want)))) fail_msg("%s = %.17g, want %.17g", what, got, want);
}

static void test_linear_small(void **state)
{
    (void)state;
    double b[5], a[5], ab[5];
    assert_int_equal(ed_betas(&(ed_beta_opts){.steps = 5, .beta_start = 0.1, .beta_end = 0.5}, b), ED_OK);
    ed_alphas(b, 5, a, ab);
    const double wb[5] = {0.1, 0.2, 0.3, 0.4, 0.5};
    const double wab[5] = {0.9, 0.72, 0.504, 0.3024, 0.1512}; /* 0.9*0.8, *0.7, *0.6, *0.5 */
    for (int t = 0; t < 5; t++) {
        near(b[t], wb[t], 1e-15, "beta");
        near(a[t], 1 - wb[t], 1e-15, "alpha");
        near(ab[t], wab[t], 1e-15, "alpha_bar");
    }
}

static void test_linear_default(void **state)
{
    (void)state;
    assert_int_equal(ed_beta_steps(NULL), 1000);
    double *b = malloc(1000 * sizeof *b), *ab = malloc(1000 * sizeof *ab);
    assert_int_equal(ed_betas(NULL, b), ED_OK);
    ed_alphas(b, 1000, NULL, ab);
    near(b[0], 1e-4, 1e-15, "beta[0]");
    near(b[1], 1e-4 + 0.0199 / 999, 1e-15, "beta[1]");
    near(b[999], 0.02, 1e-15, "beta[999]");
    near(ab[1], 0.9999 * (1 - (1e-4 + 0.0199 / 999)), 1e-15, "alpha_bar[1]");
    /* prod(1 - beta) ~ exp(-sum beta) = exp(-10.05) = 4.3e-5; the exact product: */
    near(ab[999], 4.0358297653756754e-05, 1e-12, "alpha_bar[999]");
    free(b);
    free(ab);
}

static void test_cosine(void **state)
{
    (void)state;
    double *b = malloc(1000 * sizeof *b), *ab = malloc(1000 * sizeof *ab);
    assert_int_equal(ed_betas(&(ed_beta_opts){.kind = ED_BETA_COSINE}, b), ED_OK);
    ed_alphas(b, 1000, NULL, ab);
    /* f(u) = cos^2(pi/2 (u + 0.008) / 1.008); beta_0 = 1 - f(0.001) / f(0) */
    double f0 = pow(cos(PI / 2 * 0.008 / 1.008), 2), f1 = pow(cos(PI / 2 * 0.009 / 1.008), 2);
    near(b[0], 1 - f1 / f0, 1e-12, "beta[0]");
    near(b[0], 4.128422482196914e-05, 1e-9, "beta[0] value");
    /* Unclipped, the product telescopes: alpha_bar[t] = f((t + 1) / T) / f(0). */
    double f_half = pow(cos(PI / 2 * 0.508 / 1.008), 2);
    near(ab[499], f_half / f0, 1e-12, "alpha_bar[499]");
    near(ab[499], 0.49384359044063775, 1e-12, "alpha_bar[499] value");
    near(b[998], 0.7499993929010453, 1e-12, "beta[998]");
    near(b[999], 0.999, 0, "beta[999] clipped"); /* f(1) = 0 gives beta 1, clipped */
    /* T = 2: beta_0 = 1 - f(1/2) / f(0) */
    double b2[2];
    assert_int_equal(ed_betas(&(ed_beta_opts){.kind = ED_BETA_COSINE, .steps = 2, .max_beta = 0.9}, b2), ED_OK);
    near(b2[0], 1 - f_half / f0, 1e-12, "T=2 beta[0]");
    near(b2[0], 0.5061564095593623, 1e-12, "T=2 beta[0] value");
    near(b2[1], 0.9, 0, "T=2 beta[1] clipped at max_beta");
    free(b);
    free(ab);
}

static void test_sigmoid(void **state)
{
    (void)state;
    double b[3];
    assert_int_equal(
        ed_betas(&(ed_beta_opts){.kind = ED_BETA_SIGMOID, .steps = 3, .beta_start = 0.1, .beta_end = 0.5}, b), ED_OK);
    /* 0.1 + 0.4 sigmoid(-6, 0, 6); sigmoid(6) = 1 / (1 + e^-6) = 0.99752737684 */
    near(b[0], 0.1 + 0.4 * (1 - 0.99752737684336534), 1e-12, "beta[0]");
    near(b[1], 0.3, 1e-15, "beta[1]");
    near(b[2], 0.1 + 0.4 * 0.99752737684336534, 1e-12, "beta[2]");
    double *bl = malloc(1000 * sizeof *bl);
    assert_int_equal(ed_betas(&(ed_beta_opts){.kind = ED_BETA_SIGMOID}, bl), ED_OK);
    near(bl[500], 0.010079879790061013, 1e-12, "default beta[500]");
    free(bl);
}

static void test_beta_errors(void **state)
{
    (void)state;
    double b[4];
    assert_int_equal(ed_betas(&(ed_beta_opts){.steps = -3}, b), ED_ERR);
    CHECK_ERROR_HAS("steps must be >= 1");
    assert_int_equal(ed_betas(&(ed_beta_opts){.steps = 4, .beta_start = 0.5, .beta_end = 1.5}, b), ED_ERR);
    CHECK_ERROR_HAS("outside (0, 1)");
    assert_int_equal(ed_betas(&(ed_beta_opts){.kind = (ed_beta_kind)7, .steps = 4}, b), ED_ERR);
    CHECK_ERROR_HAS("unknown kind");
    ed_beta_kind k;
    assert_true(ed_beta_kind_parse("cosine", &k) && k == ED_BETA_COSINE);
    assert_false(ed_beta_kind_parse("cosin", &k));
    assert_string_equal(ed_beta_kind_name(ED_BETA_SIGMOID), "sigmoid");
}

static void test_ve_sigmas(void **state)
{
    (void)state;
    double s[3];
    assert_int_equal(ed_ve_sigmas(0.01, 50, 3, s), ED_OK);
    near(s[0], 0.01, 0, "sigma[0]");
    near(s[1], sqrt(0.01 * 50), 1e-15, "sigma[1]"); /* geometric mean */
    near(s[2], 50, 0, "sigma[2]");
    assert_int_equal(ed_ve_sigmas(0.01, 50, 1, s), ED_OK);
    near(s[0], 0.01, 0, "n=1");
    assert_int_equal(ed_ve_sigmas(1, 0.5, 3, s), ED_ERR);
    CHECK_ERROR_HAS("sigma_min <= sigma_max");
}

static void test_ddim_timesteps(void **state)
{
    (void)state;
    int tau[10];
    assert_int_equal(ed_ddim_timesteps(1000, 10, ED_SPACING_UNIFORM, tau), ED_OK);
    for (int i = 0; i < 10; i++) assert_int_equal(tau[i], 111 * i); /* 999 / 9 = 111 */
    /* (i/4)^2 * 999 = 0, 62.44, 249.75, 561.94, 999 */
    assert_int_equal(ed_ddim_timesteps(1000, 5, ED_SPACING_QUADRATIC, tau), ED_OK);
    const int q[5] = {0, 62, 250, 562, 999};
    for (int i = 0; i < 5; i++) assert_int_equal(tau[i], q[i]);
    /* T = 10, S = 8: (i/7)^2 * 9 rounds to 0 0 1 2 3 5 7 9; duplicates move up */
    assert_int_equal(ed_ddim_timesteps(10, 8, ED_SPACING_QUADRATIC, tau), ED_OK);
    const int q2[8] = {0, 1, 2, 3, 4, 5, 7, 9};
    for (int i = 0; i < 8; i++) assert_int_equal(tau[i], q2[i]);
    /* every length from 1 to T is strictly increasing and ends at T - 1 */
    int all[50];
    for (int sp = 0; sp < ED_SPACING_COUNT; sp++)
        for (int S = 1; S <= 50; S++) {
            assert_int_equal(ed_ddim_timesteps(50, S, (ed_spacing)sp, all), ED_OK);
            assert_int_equal(all[S - 1], 49);
            if (S > 1) assert_int_equal(all[0], 0);
            for (int i = 1; i < S; i++) assert_true(all[i] > all[i - 1]);
        }
    assert_int_equal(ed_ddim_timesteps(10, 11, ED_SPACING_UNIFORM, tau), ED_ERR);
    CHECK_ERROR_HAS("1 <= steps <= T");
}

static void test_time_grid(void **state)
{
    (void)state;
    double t[5];
    assert_int_equal(ed_time_grid(0, 1, 4, t), ED_OK);
    for (int i = 0; i < 5; i++) near(t[i], 0.25 * i, 0, "0..1");
    assert_int_equal(ed_time_grid(1, 1e-3, 4, t), ED_OK);
    near(t[0], 1, 0, "first");
    near(t[2], (1 + 1e-3) / 2, 1e-15, "middle");
    near(t[4], 1e-3, 0, "last exact");
    assert_int_equal(ed_time_grid(1, 0, 0, t), ED_ERR);
}

static void test_process_levels(void **state)
{
    (void)state;
    /* VP at t = 1: log alpha = -(20 - 0.1)/4 - 0.1/2 = -5.025; beta(1) = 20 */
    ed_level l = ed_process_level(NULL, 1);
    near(l.alpha, exp(-5.025), 1e-14, "VP alpha(1)");
    near(l.g2, 20, 1e-15, "VP beta(1)");
    near(l.f, -10, 1e-15, "VP f(1)");
    /* t = 0.5: log alpha = -19.9/16 - 0.025 = -1.26875 */
    l = ed_process_level(&(ed_process){.kind = ED_PROC_VP}, 0.5);
    near(l.alpha, 0.28118288079675235, 1e-14, "VP alpha(0.5)");
    near(l.sigma, 0.9596542020680363, 1e-14, "VP sigma(0.5)");
    near(l.v_a, -l.sigma, 0, "VP v_a");
    near(l.v_s, l.alpha, 0, "VP v_s");
    /* VE at t = 0.5: the geometric mean of 0.01 and 50; g^2 = 2 sigma^2 ln(5000) */
    l = ed_process_level(&(ed_process){.kind = ED_PROC_VE}, 0.5);
    near(l.alpha, 1, 0, "VE alpha");
    near(l.sigma, sqrt(0.5), 1e-15, "VE sigma(0.5)");
    near(l.g2, 8.517193191416238, 1e-14, "VE g2(0.5)");
    l = ed_process_level(&(ed_process){.kind = ED_PROC_FLOW}, 0.25);
    near(l.alpha, 0.25, 0, "flow alpha");
    near(l.sigma, 0.75, 0, "flow sigma");
    near(l.v_a * 2 + l.v_s * 1, 1, 0, "flow v = x0 - eps");
    /* sigma_min: x_t = t x1 + (1 - 0.9 t) x0, so sigma(0.5) = 0.55 and v = x1 - 0.9 x0
     * (flow matching's regression target). */
    l = ed_process_level(&(ed_process){.kind = ED_PROC_FLOW, .flow_sigma_min = 0.1}, 0.5);
    near(l.alpha, 0.5, 0, "flow alpha, sigma_min");
    near(l.sigma, 0.55, 1e-15, "flow sigma, sigma_min");
    near(l.dalpha, 1, 0, "flow dalpha, sigma_min");
    near(l.dsigma, -0.9, 1e-15, "flow dsigma, sigma_min");
    near(l.v_a, 1, 0, "flow v_a, sigma_min");
    near(l.v_s, -0.9, 1e-15, "flow v_s, sigma_min");

    /* The derivatives against central differences, and the probability-flow identity:
     * dalpha x0 + dsigma eps = f x - g^2/2 score with x = alpha x0 + sigma eps and
     * score = -eps / sigma, i.e. dalpha = f alpha and dsigma = f sigma + g^2 / (2 sigma). */
    const ed_process procs[2] = {{.kind = ED_PROC_VP}, {.kind = ED_PROC_VE, .sigma_min = 0.02, .sigma_max = 10}};
    for (int k = 0; k < 2; k++)
        for (double t = 0.05; t < 1; t += 0.15) {
            double h = 1e-6;
            ed_level a = ed_process_level(&procs[k], t - h), b = ed_process_level(&procs[k], t + h);
            ed_level m = ed_process_level(&procs[k], t);
            near(m.dalpha, (b.alpha - a.alpha) / (2 * h), 1e-6, "dalpha");
            near(m.dsigma, (b.sigma - a.sigma) / (2 * h), 1e-6, "dsigma");
            near(m.dalpha, m.f * m.alpha, 1e-12, "dalpha = f alpha");
            near(m.dsigma, m.f * m.sigma + m.g2 / (2 * m.sigma), 1e-12, "dsigma = f sigma + g2 / 2 sigma");
        }
    l = ed_discrete_level(7, 0.36);
    near(l.t, 7, 0, "discrete t");
    near(l.alpha, 0.6, 1e-15, "discrete alpha");
    near(l.sigma, 0.8, 1e-15, "discrete sigma");
}

static void test_tables_in_graph(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("tables");
    const double v[4] = {0.5, 0.25, 0.125, 1e-4};
    ed_node *tab = ed_table(g, ED_F32, v, 4);
    CHECK(tab, ED_F32, ed_shape1(4), 0, 0.5, 0.25, 0.125, (float)1e-4);
    ed_node *i2 = ed_scalar(g, ED_I32, 2);
    CHECK(ed_table_at(tab, i2), ED_F32, ed_shape0(), 0, 0.125);
    CHECK(ed_table_at(tab, ed_scalar(g, ED_I32, 9)), ED_F32, ed_shape0(), 0, (float)1e-4); /* clamps */
    ed_node *one = ed_table(g, ED_F64, v, 1);
    CHECK(ed_table_at(one, ed_scalar(g, ED_I32, 0)), ED_F64, ed_shape0(), 0, 0.5);
    assert_null(ed_table(g, ED_F32, v, 0));
    assert_non_null(strstr(ed_graph_error(g), "at least one value"));
    ed_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear_small),   cmocka_unit_test(test_linear_default),
        cmocka_unit_test(test_cosine),         cmocka_unit_test(test_sigmoid),
        cmocka_unit_test(test_beta_errors),    cmocka_unit_test(test_ve_sigmas),
        cmocka_unit_test(test_ddim_timesteps), cmocka_unit_test(test_time_grid),
        cmocka_unit_test(test_process_levels), cmocka_unit_test(test_tables_in_graph),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
