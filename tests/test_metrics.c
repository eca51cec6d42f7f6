/* Sliced Wasserstein distance and RBF MMD^2: exact small cases, brute-force agreement,
 * and the figures for equal and for shifted Gaussians against closed-form values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "models/toy_data.h"
#include "runtime/error.h"
#include "models/metrics.h"
#include "runtime/philox.h"
#include "runtime/tensor.h"
#include "support/error_check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PI 3.14159265358979323846

/* n x d standard normals (f32 or f64) from seed, plus shift on coordinate 0. */
static ed_tensor *gaussian(ed_dtype dt, int64_t n, int64_t d, uint64_t seed, double shift)
{
    ed_tensor *t = ed_tensor_new(dt, ed_shape2(n, d));
    ed_rng_normal(t->data, dt, n * d, seed, 0, 77);
    for (int64_t i = 0; i < n; i++) ed_tensor_set(t, i * d, ed_tensor_get(t, i * d) + shift);
    return t;
}

static ed_tensor *from_values(int64_t n, int64_t d, const double *v)
{
    ed_tensor *t = ed_tensor_new(ED_F64, ed_shape2(n, d));
    memcpy(t->data, v, (size_t)(n * d) * sizeof(double));
    return t;
}

/* ---- sliced Wasserstein -------------------------------------------------------------- */

static void test_swd_exact_cases(void **state)
{
    (void)state;
    double sw;
    /* identical sets: 0 exactly */
    ed_tensor *x = gaussian(ED_F32, 500, 3, 1, 0);
    assert_int_equal(ed_sliced_wasserstein(x, x, NULL, &sw), ED_OK);
    assert_true(sw == 0);
    /* in 1-D every direction is +-1 and a translation by c moves every quantile by c:
     * W1 = W2 = |c| exactly (up to the f64 rounding of x + c) */
    ed_tensor *a = gaussian(ED_F64, 300, 1, 2, 0), *b = gaussian(ED_F64, 300, 1, 2, 0.3);
    assert_int_equal(ed_sliced_wasserstein(a, b, NULL, &sw), ED_OK);
    assert_true(fabs(sw - 0.3) < 1e-12);
    assert_int_equal(ed_sliced_wasserstein(a, b, &(ed_swd_opts){.p = 2}, &sw), ED_OK);
    assert_true(fabs(sw - 0.3) < 1e-12);
    /* unequal sizes, by the quantile functions: {0, 1, 2} against {0, 2} differ by 1 on
     * t in [1/3, 2/3), so W1 = 1/3 and W2 = sqrt(1/3) */
    ed_tensor *three = from_values(3, 1, (const double[]){2, 0, 1});
    ed_tensor *two = from_values(2, 1, (const double[]){2, 0});
    assert_int_equal(ed_sliced_wasserstein(three, two, NULL, &sw), ED_OK);
    assert_true(fabs(sw - 1.0 / 3) < 1e-12);
    assert_int_equal(ed_sliced_wasserstein(two, three, &(ed_swd_opts){.p = 2}, &sw), ED_OK);
    assert_true(fabs(sw - sqrt(1.0 / 3)) < 1e-12);
    /* a single point each: |c . theta| averaged over the directions, at most |c| */
    ed_tensor *p = from_values(1, 2, (const double[]){0, 0}), *q = from_values(1, 2, (const double[]){3, 4});
    assert_int_equal(ed_sliced_wasserstein(p, q, &(ed_swd_opts){.projections = 4096}, &sw), ED_OK);
    /* E|theta . c| = |c| E|cos| = 5 * 2 / pi = 3.183; 4096 directions: s.e. 5 * 0.31 / 64 */
    assert_true(fabs(sw - 10 / PI) < 0.12);
    ed_tensor_free(x);
    ed_tensor_free(a);
    ed_tensor_free(b);
    ed_tensor_free(three);
    ed_tensor_free(two);
    ed_tensor_free(p);
    ed_tensor_free(q);
}

/* N(0, I_2) against N(0, I_2) and against N((1, 0), I_2), 2000 points each.
 * Floor: per direction, F_n - G_n at x is about N(0, 2 F (1 - F) / n), so
 * E W1 = E integral |F_n - G_n| dx ~ sqrt(2 / pi) sqrt(2 / n) integral sqrt(F (1 - F)) dx
 * = 0.798 * 0.0316 * 1.615 = 0.041 for N(0, 1) (30 seeds: mean 0.039, sd 0.008);
 * bound 0.08.
 * Shifted: projected, the shift is cos(theta), W1 -> |cos theta|, whose mean over
 * uniform directions is 2 / pi = 0.637. The sample means differ from the true ones by
 * ~sqrt(2 / 2000) = 0.03 per coordinate and 1024 random directions add 0.31 / 32 = 0.01
 * (30 seeds: mean 0.632, sd 0.015); bound +-0.06. */
static void test_swd_same_and_shifted(void **state)
{
    (void)state;
    ed_tensor *x = gaussian(ED_F32, 2000, 2, 10, 0), *y = gaussian(ED_F32, 2000, 2, 11, 0);
    ed_tensor *z = gaussian(ED_F32, 2000, 2, 12, 1.0);
    ed_swd_opts o = {.projections = 1024, .seed = 3};
    double same, shifted, again;
    assert_int_equal(ed_sliced_wasserstein(x, y, &o, &same), ED_OK);
    assert_int_equal(ed_sliced_wasserstein(x, z, &o, &shifted), ED_OK);
    assert_int_equal(ed_sliced_wasserstein(x, z, &o, &again), ED_OK);
    print_message("SW1 same %.4f, shifted by 1: %.4f (2/pi = %.4f)\n", same, shifted, 2 / PI);
    assert_true(same > 0 && same < 0.08);
    assert_true(fabs(shifted - 2 / PI) < 0.06);
    assert_true(shifted > 7 * same);
    assert_true(again == shifted); /* deterministic */
    o.seed = 4;
    assert_int_equal(ed_sliced_wasserstein(x, z, &o, &again), ED_OK);
    assert_true(again != shifted && fabs(again - shifted) < 0.05); /* other directions */
    ed_tensor_free(x);
    ed_tensor_free(y);
    ed_tensor_free(z);
}

static void test_swd_errors(void **state)
{
    (void)state;
    ed_tensor *a = gaussian(ED_F32, 10, 2, 1, 0), *b = gaussian(ED_F32, 10, 3, 1, 0);
    double sw;
    assert_int_equal(ed_sliced_wasserstein(a, b, NULL, &sw), ED_ERR);
    CHECK_ERROR_HAS("same D >= 1, got f32[10,2] and f32[10,3]");
    assert_int_equal(ed_sliced_wasserstein(a, a, &(ed_swd_opts){.p = 3}, &sw), ED_ERR);
    CHECK_ERROR_HAS("p (3) 1 or 2");
    assert_int_equal(ed_sliced_wasserstein(a, a, &(ed_swd_opts){.projections = -1}, &sw), ED_ERR);
    ed_tensor *i32 = ed_tensor_new(ED_I32, ed_shape2(10, 2));
    assert_int_equal(ed_sliced_wasserstein(a, i32, NULL, &sw), ED_ERR);
    ((float *)a->data)[7] = NAN;
    assert_int_equal(ed_sliced_wasserstein(a, a, NULL, &sw), ED_ERR);
    CHECK_ERROR_HAS("point 3 has a non-finite coordinate");
    ed_tensor *none = ed_tensor_new(ED_F32, ed_shape2(0, 2));
    assert_int_equal(ed_sliced_wasserstein(none, none, NULL, &sw), ED_ERR);
    CHECK_ERROR_HAS("at least 1 points");
    ed_tensor_free(a);
    ed_tensor_free(b);
    ed_tensor_free(i32);
    ed_tensor_free(none);
}

/* ---- MMD ------------------------------------------------------------------------------ */

static double kern(const ed_tensor *a, int64_t i, const ed_tensor *b, int64_t j, double sigma)
{
    int64_t d = a->shape.dim[1];
    double d2 = 0;
    for (int64_t c = 0; c < d; c++) {
        double t = ed_tensor_get(a, i * d + c) - ed_tensor_get(b, j * d + c);
        d2 += t * t;
    }
    return exp(-d2 / (2 * sigma * sigma));
}

/* The textbook unbiased estimator with libm's exp and full i != j loops. */
static double brute_mmd2(const ed_tensor *x, const ed_tensor *y, double sigma)
{
    int64_t n = x->shape.dim[0], m = y->shape.dim[0];
    double xx = 0, yy = 0, xy = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) xx += i == j ? 0 : kern(x, i, x, j, sigma);
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < m; j++) yy += i == j ? 0 : kern(y, i, y, j, sigma);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < m; j++) xy += kern(x, i, y, j, sigma);
    return xx / (double)(n * (n - 1)) + yy / (double)(m * (m - 1)) - 2 * xy / (double)(n * m);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median heuristic by brute force when both sets have at most 500 rows (so the
 * subsample is everything): the lower median of all pooled pairwise distances. */
static double brute_median(const ed_tensor *x, const ed_tensor *y)
{
    int64_t n = x->shape.dim[0], m = y->shape.dim[0], all = n + m, d = x->shape.dim[1], k = 0;
    double *dist = malloc((size_t)(all * (all - 1) / 2) * sizeof *dist);
    for (int64_t i = 0; i < all; i++) {
        for (int64_t j = i + 1; j < all; j++) {
            double d2 = 0;
            for (int64_t c = 0; c < d; c++) {
                double a = i < n ? ed_tensor_get(x, i * d + c) : ed_tensor_get(y, (i - n) * d + c);
                double b = j < n ? ed_tensor_get(x, j * d + c) : ed_tensor_get(y, (j - n) * d + c);
                d2 += (a - b) * (a - b);
            }
            dist[k++] = sqrt(d2);
        }
    }
    qsort(dist, (size_t)k, sizeof *dist, cmp_double);
    double med = dist[(k - 1) / 2];
    free(dist);
    return med;
}

/* Small and medium cases (below and above the 64-point block, with tails) agree with
 * the brute force to 1e-13 of the kernel scale. */
static void test_mmd_matches_brute_force(void **state)
{
    (void)state;
    const int64_t sizes[][3] = {{7, 5, 3}, {2, 2, 1}, {150, 130, 2}, {64, 128, 4}};
    for (int s = 0; s < 4; s++) {
        ed_tensor *x = gaussian(ED_F64, sizes[s][0], sizes[s][2], 100 + s, 0);
        ed_tensor *y = gaussian(ED_F32, sizes[s][1], sizes[s][2], 200 + s, 0.7);
        for (int b = 0; b < 3; b++) {
            double sigma = (double[]){0.8, 0.05, 6.0}[b], got;
            assert_int_equal(ed_mmd2_rbf(x, y, sigma, &got), ED_OK);
            double want = brute_mmd2(x, y, sigma);
            if (fabs(got - want) > 1e-13)
                fail_msg("case %d sigma %g: mmd2 %.17g, brute force %.17g", s, sigma, got, want);
        }
        double sigma;
        assert_int_equal(ed_mmd_median_bandwidth(x, y, &sigma), ED_OK);
        assert_true(sigma == brute_median(x, y));
        double with_median, with_given;
        assert_int_equal(ed_mmd2_rbf(x, y, 0, &with_median), ED_OK);
        assert_int_equal(ed_mmd2_rbf(x, y, sigma, &with_given), ED_OK);
        assert_true(with_median == with_given);
        ed_tensor_free(x);
        ed_tensor_free(y);
    }
}

/* Far-apart points drive the kernel's exponent below -708: the values are 0 to double
 * precision and the estimator stays finite. */
static void test_mmd_extreme_distances(void **state)
{
    (void)state;
    ed_tensor *x = from_values(2, 1, (const double[]){0, 1e200});
    ed_tensor *y = from_values(2, 1, (const double[]){-1e200, 1});
    double got;
    assert_int_equal(ed_mmd2_rbf(x, y, 1.0, &got), ED_OK);
    /* k(0, 1) = exp(-1/2) is the only non-zero kernel: MMD^2 = 0 + 0 - 2 e^-0.5 / 4 */
    assert_true(fabs(got - (-0.5 * exp(-0.5))) < 1e-15);
    ed_tensor_free(x);
    ed_tensor_free(y);
}

/* N(0, I_2) against itself and against N((1, 0), I_2), 2000 points each, sigma = 1.
 * Closed form: E k(x, y) for x ~ N(m1, I), y ~ N(m2, I) is
 * (s^2 / (s^2 + 2))^(D/2) exp(-|m1 - m2|^2 / (2 (s^2 + 2))), so
 * MMD^2 = 2 (1/3) (1 - exp(-1/6)) = 0.10236 for the shift and 0 without.
 * Spread: under equality the unbiased estimate is a degenerate U-statistic whose
 * standard deviation is of order sqrt(2) * 0.3 / n ~ 2e-4 (bound 0.003); under the shift
 * it is of order 1 / sqrt(n) (30 seeds: mean 0.10234, sd 0.0062); bound 0.025. */
static void test_mmd_same_and_shifted(void **state)
{
    (void)state;
    ed_tensor *x = gaussian(ED_F32, 2000, 2, 20, 0), *y = gaussian(ED_F32, 2000, 2, 21, 0);
    ed_tensor *z = gaussian(ED_F32, 2000, 2, 22, 1.0);
    double same, shifted, want = 2.0 / 3 * (1 - exp(-1.0 / 6));
    assert_int_equal(ed_mmd2_rbf(x, y, 1.0, &same), ED_OK);
    assert_int_equal(ed_mmd2_rbf(x, z, 1.0, &shifted), ED_OK);
    print_message("MMD^2 same %.2e, shifted by 1: %.5f (closed form %.5f)\n", same, shifted, want);
    assert_true(fabs(same) < 0.003);
    assert_true(fabs(shifted - want) < 0.025);
    /* the median heuristic gives sigma ~ median |x - y| of N(0, 2 I) in 2-D:
     * sqrt(2) * sqrt(2 ln 2) = 1.665 (Rayleigh median); still separates clearly */
    double sigma;
    assert_int_equal(ed_mmd_median_bandwidth(x, y, &sigma), ED_OK);
    assert_true(fabs(sigma - 2 * sqrt(log(2))) < 0.1);
    assert_int_equal(ed_mmd2_rbf(x, z, 0, &shifted), ED_OK);
    assert_int_equal(ed_mmd2_rbf(x, y, 0, &same), ED_OK);
    assert_true(shifted > 20 * fabs(same));
    ed_tensor_free(x);
    ed_tensor_free(y);
    ed_tensor_free(z);
}

/* The eval command's size: 10,000 against 10,000 points of moons. Prints the time; the
 * figures must sit at the floor (same distribution) and be finite. */
static void test_mmd_ten_thousand(void **state)
{
    (void)state;
#if defined(__OPTIMIZE__) && !defined(__SANITIZE_ADDRESS__)
    const int64_t n = 10000;
#else
    const int64_t n = 2000; /* unoptimized or sanitized builds: same code, less time */
#endif
    ed_tensor *x = ed_toy_by_name("moons", n, 1, ED_NOISE_DEFAULT);
    ed_tensor *y = ed_toy_by_name("moons", n, 2, ED_NOISE_DEFAULT);
    double sigma, mmd, sw;
    struct timespec t0, t1, t2;
    assert_int_equal(ed_mmd_median_bandwidth(x, y, &sigma), ED_OK);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(ed_mmd2_rbf(x, y, sigma, &mmd), ED_OK);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_equal(ed_sliced_wasserstein(x, y, NULL, &sw), ED_OK);
    clock_gettime(CLOCK_MONOTONIC, &t2);
    double dt_mmd = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    double dt_sw = (double)(t2.tv_sec - t1.tv_sec) + 1e-9 * (double)(t2.tv_nsec - t1.tv_nsec);
    print_message("N = %lld moons vs moons: MMD^2 %.2e (sigma %.3f) in %.2f s; SW1 %.4f in "
                  "%.2f s\n",
                  (long long)n, mmd, sigma, dt_mmd, sw, dt_sw);
    /* floors: MMD^2 ~ 1e-4 at most; SW1 ~ 0.012 at n = 10000, scaling as 1 / sqrt(n) */
    assert_true(isfinite(mmd) && fabs(mmd) < 0.003);
    assert_true(sw > 0 && sw < 0.05 * sqrt(2000.0 / (double)n));
    ed_tensor_free(x);
    ed_tensor_free(y);
}

static void test_mmd_errors(void **state)
{
    (void)state;
    ed_tensor *one = gaussian(ED_F32, 1, 2, 1, 0), *a = gaussian(ED_F32, 10, 2, 1, 0);
    double v;
    assert_int_equal(ed_mmd2_rbf(one, a, 1.0, &v), ED_ERR);
    CHECK_ERROR_HAS("needs at least 2 points in each set");
    assert_int_equal(ed_mmd2_rbf(a, a, NAN, &v), ED_ERR);
    CHECK_ERROR_HAS("bandwidth must be finite");
    ed_tensor *same = from_values(3, 1, (const double[]){4, 4, 4});
    assert_int_equal(ed_mmd2_rbf(same, same, 0, &v), ED_ERR);
    CHECK_ERROR_HAS("the median distance between points is 0");
    assert_int_equal(ed_mmd2_rbf(same, same, 1.0, &v), ED_OK); /* fine with a bandwidth */
    assert_true(fabs(v) < 1e-15);
    assert_int_equal(ed_mmd2_rbf(a, NULL, 1.0, &v), ED_ERR);
    ed_tensor_free(one);
    ed_tensor_free(a);
    ed_tensor_free(same);
}

/* ---- class predictions ------------------------------------------------------------- */

static void test_class_spread_and_label_accuracy(void **state)
{
    (void)state;
    int64_t hit;
    double ppl;
    /* Shares (1/2, 1/4, 1/4) of 4 classes: entropy 1.5 ln 2, perplexity 2^1.5. */
    const int32_t pred[] = {0, 0, 1, 2}, want[] = {0, 1, 1, 2};
    assert_int_equal(ed_class_spread(pred, 4, 4, &hit, &ppl), ED_OK);
    assert_int_equal(hit, 3);
    assert_true(fabs(ppl - pow(2, 1.5)) < 1e-12);
    assert_int_equal(ed_class_spread(pred, 2, 4, &hit, &ppl), ED_OK); /* one class */
    assert_true(hit == 1 && fabs(ppl - 1) < 1e-15);
    assert_true(ed_label_accuracy(pred, want, 4) == 0.75);
    assert_int_equal(ed_class_spread(pred, 4, 2, &hit, &ppl), ED_ERR);
    CHECK_ERROR_HAS("prediction 3 is class 2, not in 0..1");
    assert_int_equal(ed_class_spread(pred, 0, 4, &hit, &ppl), ED_ERR);
    assert_true(isnan(ed_label_accuracy(pred, want, 0)));
    CHECK_ERROR_HAS("n >= 1");
}

/* ---- mode coverage ---------------------------------------------------------------- */

/* Modes at (0, 0) and (10, 0), std 1: 0.5 and 2.9 are near mode 0, 3.1 is not, (10, 2)
 * is near mode 1, 6 goes to mode 1 (distance 4) but is not near. */
static void test_mode_coverage_by_hand(void **state)
{
    (void)state;
    const double centers[] = {0, 0, 10, 0};
    ed_tensor *x = from_values(5, 2, (const double[]){0.5, 0, 2.9, 0, 3.1, 0, 10, 2, 6, 0});
    ed_mode_coverage c;
    assert_int_equal(ed_mode_coverage_of(x, centers, 2, 1, 0, &c), ED_OK);
    assert_int_equal(c.modes_hit, 2);
    assert_float_equal(c.near_share, 0.6, 1e-15);
    /* 40% of 5 = 2 near samples needed: only mode 0 has them */
    assert_int_equal(ed_mode_coverage_of(x, centers, 2, 1, 0.4, &c), ED_OK);
    assert_int_equal(c.modes_hit, 1);
    ed_tensor_free(x);
}

/* The 8 Gaussians themselves: every mode, and within 3 std in 2-D with probability
 * 1 - exp(-9/2) = 0.98889 (binomial sd over 10000 draws: 0.001). All points on one
 * centre: one mode. */
static void test_mode_coverage_of_the_data(void **state)
{
    (void)state;
    double centers[16];
    assert_int_equal(ed_toy_modes(ED_TOY_8GAUSSIANS, centers, 8), 8);
    assert_float_equal(centers[0], sqrt(2.0), 1e-15);
    assert_float_equal(centers[5], sqrt(2.0), 1e-15); /* k = 2: (0, sqrt 2) */
    assert_int_equal(ed_toy_modes(ED_TOY_MOONS, centers, 8), 0);
    ed_tensor *x = ed_toy_sample(ED_TOY_8GAUSSIANS, 10000, 3, ED_NOISE_DEFAULT);
    ed_mode_coverage c;
    assert_int_equal(ed_mode_coverage_of(x, centers, 8, 0.1, 0.01, &c), ED_OK);
    assert_int_equal(c.modes_hit, 8);
    assert_float_equal(c.near_share, 1 - exp(-4.5), 0.005);
    for (int64_t i = 0; i < 10000; i++) ed_tensor_set(x, 2 * i, centers[6]), ed_tensor_set(x, 2 * i + 1, centers[7]);
    assert_int_equal(ed_mode_coverage_of(x, centers, 8, 0.1, 0.01, &c), ED_OK);
    assert_int_equal(c.modes_hit, 1);
    assert_float_equal(c.near_share, 1, 0);
    ed_tensor_free(x);
}

static void test_mode_coverage_errors(void **state)
{
    (void)state;
    const double centers[] = {0, 0};
    ed_tensor *x = from_values(1, 2, (const double[]){NAN, 0});
    ed_mode_coverage c;
    assert_int_equal(ed_mode_coverage_of(x, centers, 1, 1, 0, &c), ED_ERR);
    assert_non_null(strstr(ed_last_error(), "not finite"));
    assert_int_equal(ed_mode_coverage_of(x, centers, 1, 0, 0, &c), ED_ERR);
    assert_int_equal(ed_mode_coverage_of(x, centers, 0, 1, 0, &c), ED_ERR);
    assert_int_equal(ed_mode_coverage_of(x, centers, 1, 1, 2, &c), ED_ERR);
    ed_tensor_free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_swd_exact_cases),
        cmocka_unit_test(test_swd_same_and_shifted),
        cmocka_unit_test(test_swd_errors),
        cmocka_unit_test(test_mmd_matches_brute_force),
        cmocka_unit_test(test_mmd_extreme_distances),
        cmocka_unit_test(test_mmd_same_and_shifted),
        cmocka_unit_test(test_mmd_ten_thousand),
        cmocka_unit_test(test_mmd_errors),
        cmocka_unit_test(test_class_spread_and_label_accuracy),
        cmocka_unit_test(test_mode_coverage_by_hand),
        cmocka_unit_test(test_mode_coverage_of_the_data),
        cmocka_unit_test(test_mode_coverage_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
