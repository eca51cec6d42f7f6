/* The f32 normal rule of runtime/philox.h: its own log and sin/cos against libm over
 * every input the rule can give them, the element rule, the distribution of 1e6 draws,
 * and the tails. (The JIT calls the same function; test_loop and test_jit compare the
 * backends bit for bit.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "runtime/normal_f32.h"
#include "runtime/philox.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { N_DRAWS = 1000000 };

/* Every u1 = m 2^-24, m = 1..2^24. Measured: max abs 4.93e-7 (at |log| ~ 8, where an
 * ulp is 4.8e-7), max rel 8.1e-8 (under one ulp); never positive, so -2 log u1 >= 0. */
static void test_log_every_u1(void **state)
{
    (void)state;
    double max_abs = 0, max_rel = 0;
    for (uint32_t m = 1; m <= UINT32_C(1) << 24; m++) {
        float u = (float)m * 0x1p-24f;
        float l = ed_unit_logf(u);
        double ref = log((double)u);
        assert_true(l <= 0.0f);
        double err = fabs((double)l - ref);
        if (err > max_abs) max_abs = err;
        if (ref != 0 && err / -ref > max_rel) max_rel = err / -ref;
    }
    assert_true(ed_unit_logf(1.0f) == 0.0f);
    assert_true(max_abs < 6e-7);
    assert_true(max_rel < 1.2e-7);
}

/* Every angle 2 pi k 2^-24. Measured: max abs error 9.1e-8 for both (values are in
 * [-1, 1], where an ulp is at most 1.2e-7). */
static void test_sincos_every_angle(void **state)
{
    (void)state;
    double max_s = 0, max_c = 0;
    for (uint32_t k = 0; k < UINT32_C(1) << 24; k++) {
        float s, c;
        ed_turn_sincosf(k, &s, &c);
        double a = 6.283185307179586 * (double)k * 0x1p-24;
        double es = fabs((double)s - sin(a)), ec = fabs((double)c - cos(a));
        if (es > max_s) max_s = es;
        if (ec > max_c) max_c = ec;
    }
    assert_true(max_s < 1.2e-7);
    assert_true(max_c < 1.2e-7);
    /* The quarter turns are exact. */
    float s, c;
    ed_turn_sincosf(0, &s, &c);
    assert_true(s == 0.0f && c == 1.0f);
    ed_turn_sincosf(UINT32_C(1) << 22, &s, &c);
    assert_true(s == 1.0f && c == 0.0f);
    ed_turn_sincosf(UINT32_C(2) << 22, &s, &c);
    assert_true(s == 0.0f && c == -1.0f);
    ed_turn_sincosf(UINT32_C(3) << 22, &s, &c);
    assert_true(s == -1.0f && c == 0.0f);
}

/* Element i is the rule applied to the words of block i / 4, whatever n (chunk edges at
 * 256 elements and the tail included), and within 3.5e-7 (1 + |z|) of the f64 draw. */
static void test_element_rule(void **state)
{
    (void)state;
    enum { n = 1003 };
    float *z = malloc(n * sizeof *z);
    double *zd = malloc(n * sizeof *zd);
    ed_rng_normal(z, ED_F32, n, 3, 1, 77);
    ed_rng_normal(zd, ED_F64, n, 3, 1, 77);
    for (int i = 0; i < n; i++) {
        uint32_t b[4];
        ed_rng_block(3, 1, 77, (uint32_t)(i / 4), b);
        int even = i % 4 - i % 2;
        float u1 = (float)((b[even] >> 8) + 1) * 0x1p-24f;
        float r = sqrtf(-2.0f * ed_unit_logf(u1));
        float s, c;
        ed_turn_sincosf(b[even + 1] >> 8, &s, &c);
        float want = i % 2 ? r * s : r * c;
        assert_true(memcmp(&z[i], &want, sizeof want) == 0);
        assert_true(fabs((double)z[i] - zd[i]) <= 3.5e-7 * (1 + fabs(zd[i])));
    }
    /* A short draw is a prefix of a long one. */
    for (int len = 1; len < 300; len += 37) {
        float part[300];
        ed_rng_normal(part, ED_F32, len, 3, 1, 77);
        assert_memory_equal(part, z, (size_t)len * sizeof *z);
    }
    free(z);
    free(zd);
}

/* Standard normal CDF. */
static double phi(double x) { return 0.5 * erfc(-x / sqrt(2.0)); }

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* 1e6 draws: moments within 5 standard errors (mean 0.005, variance 0.0071, excess
 * kurtosis 0.024) and the Kolmogorov-Smirnov distance under 0.0019 (the 0.1% point is
 * 1.95 / sqrt(n) = 0.00195). */
static void test_distribution(void **state)
{
    (void)state;
    float *z = malloc(N_DRAWS * sizeof *z);
    ed_rng_normal(z, ED_F32, N_DRAWS, 2026, 5, 11);
    double s1 = 0, s2 = 0, s4 = 0;
    for (int i = 0; i < N_DRAWS; i++) {
        assert_true(isfinite(z[i]));
        s1 += z[i];
    }
    double mean = s1 / N_DRAWS;
    for (int i = 0; i < N_DRAWS; i++) {
        double d = z[i] - mean;
        s2 += d * d;
        s4 += d * d * d * d;
    }
    double var = s2 / N_DRAWS, kurt = s4 / N_DRAWS / (var * var) - 3.0;
    assert_true(fabs(mean) < 0.005);
    assert_true(fabs(var - 1.0) < 0.0071);
    assert_true(fabs(kurt) < 0.024);
    qsort(z, N_DRAWS, sizeof *z, cmp_float);
    double d = 0;
    for (int i = 0; i < N_DRAWS; i++) {
        double f = phi(z[i]);
        double lo = f - (double)i / N_DRAWS, hi = (double)(i + 1) / N_DRAWS - f;
        if (lo > d) d = lo;
        if (hi > d) d = hi;
    }
    assert_true(d < 0.0019);
    free(z);
}

/* u1 = 2^-24 (the smallest) gives the largest radius, sqrt(48 ln 2) = 5.7683; u1 = 1
 * gives 0; every u1 gives a finite radius (test_log_every_u1: -2 log u1 >= 0). */
static void test_tails(void **state)
{
    (void)state;
    const uint32_t w[8] = {0x000000ffu, 0x00000000u, 0x000000ffu, UINT32_C(1) << 30,
                           0xffffffffu, 0x12345678u, 0x00000000u, UINT32_C(3) << 30};
    float z[8];
    ed_box_muller_f32(w, z, 4);
    const double rmax = sqrt(48.0 * log(2.0));
    assert_true(fabs(z[0] - rmax) < 1e-6 && z[1] == 0.0f);
    assert_true(fabs(z[3] - rmax) < 1e-6 && z[2] == 0.0f);      /* a quarter turn: all sine */
    assert_true(z[4] == 0.0f && z[5] == 0.0f);                  /* u1 = 1 */
    assert_true(fabs(z[7] + sqrt(-2.0 * log(0x1p-24))) < 1e-6); /* u1 = 2^-24 exactly */
    /* Every u1 at a fixed angle: finite, |z| <= rmax. */
    uint32_t pair[2] = {0, UINT32_C(0x20000000)};
    for (uint32_t m = 0; m < UINT32_C(1) << 24; m += 97) {
        pair[0] = m << 8;
        ed_box_muller_f32(pair, z, 1);
        assert_true(isfinite(z[0]) && isfinite(z[1]));
        assert_true(fabs(z[0]) <= rmax + 1e-6 && fabs(z[1]) <= rmax + 1e-6);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_every_u1), cmocka_unit_test(test_sincos_every_angle),
        cmocka_unit_test(test_element_rule), cmocka_unit_test(test_distribution),
        cmocka_unit_test(test_tails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
