/* The Frechet distance and its Jacobi eigendecomposition: cases worked by hand
 * (diagonal and non-diagonal covariances), equal sets at ~0, a shifted set at the
 * shift's squared length, and the errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "models/frechet.h"
#include "runtime/error.h"
#include "runtime/philox.h"
#include "support/error_check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static ed_tensor *from_values(int64_t n, int64_t d, const double *v)
{
    ed_tensor *t = ed_tensor_new(ED_F64, ed_shape2(n, d));
    memcpy(t->data, v, (size_t)(n * d) * sizeof(double));
    return t;
}

/* n x d normals (f64) from seed, coordinate j scaled by j + 1 and mixed with its
 * neighbour so the covariance is not diagonal. */
static ed_tensor *correlated(int64_t n, int64_t d, uint64_t seed)
{
    ed_tensor *t = ed_tensor_new(ED_F64, ed_shape2(n, d));
    ed_rng_normal(t->data, ED_F64, n * d, seed, 0, 5);
    double *x = t->data;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = d - 1; j > 0; j--) x[i * d + j] = (double)(j + 1) * x[i * d + j] + 0.5 * x[i * d + j - 1];
    return t;
}

/* A fit given by hand: mean and covariance copied. */
static ed_feature_stats fit(int64_t d, const double *mean, const double *cov)
{
    ed_feature_stats s = {
        .n = 100, .d = d, .mean = malloc((size_t)d * sizeof(double)), .cov = malloc((size_t)(d * d) * sizeof(double))};
    memcpy(s.mean, mean, (size_t)d * sizeof(double));
    memcpy(s.cov, cov, (size_t)(d * d) * sizeof(double));
    return s;
}

static void test_eigen_small_and_random(void **state)
{
    (void)state;
    double vals[2], vecs[4];
    assert_int_equal(ed_symmetric_eigen((const double[]){2, 1, 1, 2}, 2, vals, vecs), ED_OK);
    double lo = fmin(vals[0], vals[1]), hi = fmax(vals[0], vals[1]);
    assert_true(fabs(lo - 1) < 1e-14 && fabs(hi - 3) < 1e-14);
    assert_true(fabs(fabs(vecs[0]) - sqrt(0.5)) < 1e-14); /* eigenvectors (1, +-1) / sqrt 2 */

    /* A random symmetric 60 x 60: V diag(values) V^T gives it back and V is orthogonal. */
    enum { N = 60 };
    double *a = malloc(N * N * sizeof(double)), *v = malloc(N * N * sizeof(double)), w[N];
    ed_rng_normal(a, ED_F64, N * N, 3, 0, 9);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < i; j++) a[i * N + j] = a[j * N + i];
    assert_int_equal(ed_symmetric_eigen(a, N, w, v), ED_OK);
    double worst = 0, worst_orth = 0;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            double back = 0, dot = 0;
            for (int k = 0; k < N; k++) back += v[i * N + k] * w[k] * v[j * N + k], dot += v[k * N + i] * v[k * N + j];
            worst = fmax(worst, fabs(back - a[i * N + j]));
            worst_orth = fmax(worst_orth, fabs(dot - (i == j)));
        }
    assert_true(worst < 1e-12);
    assert_true(worst_orth < 1e-12);
    /* The zero matrix: converged at once, all eigenvalues 0. */
    memset(a, 0, N * N * sizeof(double));
    assert_int_equal(ed_symmetric_eigen(a, N, w, NULL), ED_OK);
    for (int i = 0; i < N; i++) assert_true(w[i] == 0);
    a[0] = NAN;
    assert_int_equal(ed_symmetric_eigen(a, N, w, NULL), ED_ERR);
    CHECK_ERROR_HAS("non-finite");
    free(a);
    free(v);
}

static void test_stats_by_hand(void **state)
{
    (void)state;
    /* (0,0), (2,0), (1,3): mean (1,1); centred (-1,-1), (1,-1), (0,2); /(N-1) = 2. */
    ed_tensor *x = from_values(3, 2, (const double[]){0, 0, 2, 0, 1, 3});
    ed_feature_stats s;
    assert_int_equal(ed_feature_stats_of(x, &s), ED_OK);
    assert_true(s.mean[0] == 1 && s.mean[1] == 1);
    assert_true(s.cov[0] == 1 && s.cov[1] == 0 && s.cov[2] == 0 && s.cov[3] == 3);
    ed_feature_stats_free(&s);
    ed_tensor_free(x);
}

static void test_frechet_by_hand(void **state)
{
    (void)state;
    double fd;
    /* Diagonal: |(1,2)|^2 + (4 + 9) + (1 + 1) - 2 (sqrt(4 * 1) + sqrt(9 * 1)) = 5 + 15 - 10. */
    ed_feature_stats a = fit(2, (const double[]){0, 0}, (const double[]){4, 0, 0, 9});
    ed_feature_stats b = fit(2, (const double[]){1, 2}, (const double[]){1, 0, 0, 1});
    assert_int_equal(ed_frechet_distance(&a, &b, &fd), ED_OK);
    assert_true(fabs(fd - 10) < 1e-12);
    /* The 1-D case is (m1 - m2)^2 + (s1 - s2)^2 with standard deviations s. */
    ed_feature_stats c = fit(1, (const double[]){3}, (const double[]){0.25});
    ed_feature_stats e = fit(1, (const double[]){1}, (const double[]){4});
    assert_int_equal(ed_frechet_distance(&c, &e, &fd), ED_OK);
    assert_true(fabs(fd - (4 + 1.5 * 1.5)) < 1e-12);
    /* Not diagonal: I against [[2, 1], [1, 2]] (eigenvalues 1 and 3), equal means:
     * 2 + 4 - 2 tr([[2, 1], [1, 2]]^1/2) = 6 - 2 (1 + sqrt 3). */
    ed_feature_stats i2 = fit(2, (const double[]){5, 5}, (const double[]){1, 0, 0, 1});
    ed_feature_stats s2 = fit(2, (const double[]){5, 5}, (const double[]){2, 1, 1, 2});
    assert_int_equal(ed_frechet_distance(&i2, &s2, &fd), ED_OK);
    assert_true(fabs(fd - (6 - 2 * (1 + sqrt(3)))) < 1e-12);
    /* And symmetric in its two arguments with two general covariances. */
    ed_feature_stats p = fit(2, (const double[]){0, 1}, (const double[]){3, -1, -1, 1});
    double fd_ps, fd_sp;
    assert_int_equal(ed_frechet_distance(&p, &s2, &fd_ps), ED_OK);
    assert_int_equal(ed_frechet_distance(&s2, &p, &fd_sp), ED_OK);
    assert_true(fd_ps > 0 && fabs(fd_ps - fd_sp) < 1e-12);
    ed_feature_stats *all[] = {&a, &b, &c, &e, &i2, &s2, &p};
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++) ed_feature_stats_free(all[k]);
}

static void test_same_and_shifted_sets(void **state)
{
    (void)state;
    enum { N = 500, D = 32 };
    ed_tensor *x = correlated(N, D, 1), *y = ed_tensor_copy(x);
    double fd, shift2 = 0;
    assert_int_equal(ed_frechet_distance_of(x, y, &fd), ED_OK);
    assert_true(fabs(fd) < 1e-8);
    double *v = y->data;
    for (int j = 0; j < D; j++) shift2 += (0.1 * j - 1) * (0.1 * j - 1);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < D; j++) v[i * D + j] += 0.1 * j - 1;
    assert_int_equal(ed_frechet_distance_of(x, y, &fd), ED_OK);
    assert_true(fabs(fd - shift2) < 1e-8 * shift2);
    /* Two independent draws of one distribution are close; a scaled one is far. */
    ed_tensor *z = correlated(N, D, 2);
    double fd_same;
    assert_int_equal(ed_frechet_distance_of(x, z, &fd_same), ED_OK);
    for (int i = 0; i < N * D; i++) ((double *)z->data)[i] *= 2;
    assert_int_equal(ed_frechet_distance_of(x, z, &fd), ED_OK);
    assert_true(fd_same > 0 && fd > 10 * fd_same);
    ed_tensor_free(x);
    ed_tensor_free(y);
    ed_tensor_free(z);
}

static void test_errors(void **state)
{
    (void)state;
    double fd;
    ed_tensor *one = from_values(1, 2, (const double[]){1, 2});
    ed_tensor *two = from_values(2, 1, (const double[]){1, 2});
    ed_tensor *wide = from_values(2, 2, (const double[]){1, 2, 3, NAN});
    assert_int_equal(ed_frechet_distance_of(one, two, &fd), ED_ERR);
    CHECK_ERROR_HAS("[N >= 2, D >= 1]");
    assert_true(isnan(fd));
    ((double *)wide->data)[3] = 4;
    assert_int_equal(ed_frechet_distance_of(two, wide, &fd), ED_ERR);
    CHECK_ERROR_HAS("same width");
    ((double *)wide->data)[3] = NAN;
    assert_int_equal(ed_frechet_distance_of(wide, wide, &fd), ED_ERR);
    CHECK_ERROR_HAS("feature 1 of row 1 is nan");
    ed_tensor_free(one);
    ed_tensor_free(two);
    ed_tensor_free(wide);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eigen_small_and_random),
        cmocka_unit_test(test_stats_by_hand),
        cmocka_unit_test(test_frechet_by_hand),
        cmocka_unit_test(test_same_and_shifted_sets),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
