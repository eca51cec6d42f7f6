/* Philox-4x32-10 known answers and the random streams of the graph's random ops. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "runtime/philox.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define N_STATS 100000

/* Random123 tests/kat_vectors, the three "philox4x32 10" lines: ctr[4] key[2] -> out[4]. */
static void test_known_answers(void **state)
{
    (void)state;
    static const struct {
        uint32_t ctr[4], key[2], out[4];
    } kat[] = {
        {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
        {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
         {0xffffffff, 0xffffffff},
         {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
        {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
         {0xa4093822, 0x299f31d0},
         {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
    };
    for (size_t k = 0; k < sizeof kat / sizeof kat[0]; k++) {
        uint32_t out[4];
        ed_philox4x32_10(kat[k].ctr, kat[k].key, out);
        for (int i = 0; i < 4; i++) assert_int_equal(out[i], kat[k].out[i]);
        /* In place, as the header allows. */
        uint32_t x[4];
        memcpy(x, kat[k].ctr, sizeof x);
        ed_philox4x32_10(x, kat[k].key, x);
        assert_memory_equal(x, kat[k].out, sizeof x);
    }
}

/* Key and counter layout: key {seed lo, seed hi}, ctr {block, stream, call lo, call hi}. */
static void test_block_layout(void **state)
{
    (void)state;
    const uint64_t seed = UINT64_C(0x1122334455667788), call = UINT64_C(0x99aabbccddeeff00);
    const uint32_t ctr[4] = {3, 7, 0xddeeff00, 0x99aabbcc}, key[2] = {0x55667788, 0x11223344};
    uint32_t want[4], got[4];
    ed_philox4x32_10(ctr, key, want);
    ed_rng_block(seed, call, 7, 3, got);
    assert_memory_equal(got, want, sizeof got);
}

/* Element i is lane i % 4 of block i / 4, with u = (bits >> 8) * 2^-24. */
static void test_uniform_element_rule(void **state)
{
    (void)state;
    enum { n = 11 };
    double y[n];
    const double lo = -1.5, hi = 2.0;
    ed_rng_uniform(y, ED_F64, n, 42, 5, 9, lo, hi);
    for (int i = 0; i < n; i++) {
        uint32_t b[4];
        ed_rng_block(42, 5, 9, (uint32_t)(i / 4), b);
        double u = (double)(b[i % 4] >> 8) / 16777216.0;
        assert_true(y[i] == lo + (hi - lo) * u);
    }
    /* f32 follows its own rule in float. */
    float f[n];
    ed_rng_uniform(f, ED_F32, n, 42, 5, 9, lo, hi);
    for (int i = 0; i < n; i++) {
        uint32_t b[4];
        ed_rng_block(42, 5, 9, (uint32_t)(i / 4), b);
        float u = (float)(b[i % 4] >> 8) / 16777216.0f;
        float scaled = ((float)hi - (float)lo) * u;
        assert_true(f[i] == (float)lo + scaled);
    }
}

static void test_normal_element_rule(void **state)
{
    (void)state;
    enum { n = 10 };
    double z[n];
    float zf[n];
    ed_rng_normal(z, ED_F64, n, 3, 1, 77);
    ed_rng_normal(zf, ED_F32, n, 3, 1, 77);
    for (int i = 0; i < n; i++) {
        uint32_t b[4];
        ed_rng_block(3, 1, 77, (uint32_t)(i / 4), b);
        int even = i % 4 - i % 2;
        double u1 = ((double)(b[even] >> 8) + 1.0) / 16777216.0;
        double u2 = (double)(b[even + 1] >> 8) / 16777216.0;
        double r = sqrt(-2.0 * log(u1));
        double want = i % 2 ? r * sin(6.283185307179586 * u2) : r * cos(6.283185307179586 * u2);
        assert_true(z[i] == want);
        /* f32 has its own rule in float (exact bits: test_normal_f32). */
        assert_true(fabs((double)zf[i] - want) <= 3.5e-7 * (1 + fabs(want)));
    }
}

static void test_prefix_and_determinism(void **state)
{
    (void)state;
    enum { n = 1003 };
    double *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    ed_rng_normal(a, ED_F64, n, 11, 2, 3);
    ed_rng_normal(b, ED_F64, n, 11, 2, 3);
    assert_memory_equal(a, b, n * sizeof *a);
    double shortrun[7];
    ed_rng_normal(shortrun, ED_F64, 7, 11, 2, 3);
    assert_memory_equal(shortrun, a, sizeof shortrun);

    /* f32 uniform on [0, 1) is exactly the f64 one rounded (both are exact). */
    float *f = malloc(n * sizeof *f);
    ed_rng_uniform(a, ED_F64, n, 5, 0, 0, 0.0, 1.0);
    ed_rng_uniform(f, ED_F32, n, 5, 0, 0, 0.0, 1.0);
    for (int i = 0; i < n; i++) assert_true((double)f[i] == a[i]);
    free(a);
    free(b);
    free(f);
}

static int count_equal(const double *a, const double *b, int n)
{
    int same = 0;
    for (int i = 0; i < n; i++) same += a[i] == b[i];
    return same;
}

static void test_streams_differ(void **state)
{
    (void)state;
    enum { n = 256 };
    static double base[n], other[n];
    const uint64_t hi_bit = UINT64_C(1) << 40;
    ed_rng_uniform(base, ED_F64, n, 1, 0, 0, 0, 1);
    ed_rng_uniform(other, ED_F64, n, 2, 0, 0, 0, 1); /* seed */
    assert_true(count_equal(base, other, n) < 3);
    ed_rng_uniform(other, ED_F64, n, 1 + hi_bit, 0, 0, 0, 1); /* seed high word */
    assert_true(count_equal(base, other, n) < 3);
    ed_rng_uniform(other, ED_F64, n, 1, 1, 0, 0, 1); /* call */
    assert_true(count_equal(base, other, n) < 3);
    ed_rng_uniform(other, ED_F64, n, 1, hi_bit, 0, 0, 1); /* call high word */
    assert_true(count_equal(base, other, n) < 3);
    ed_rng_uniform(other, ED_F64, n, 1, 0, 1, 0, 1); /* stream */
    assert_true(count_equal(base, other, n) < 3);
    /* Within one stream, blocks differ too. */
    assert_true(count_equal(base, base + 4, n - 4) < 3);
}

static void moments(const double *x, int n, double *mean, double *var)
{
    double s = 0, ss = 0;
    for (int i = 0; i < n; i++) s += x[i];
    *mean = s / n;
    for (int i = 0; i < n; i++) ss += (x[i] - *mean) * (x[i] - *mean);
    *var = ss / (n - 1);
}

static void test_uniform_stats(void **state)
{
    (void)state;
    const double lo = -2.0, hi = 3.0;
    double *x = malloc(N_STATS * sizeof *x);
    float *xf = malloc(N_STATS * sizeof *xf);
    ed_rng_uniform(xf, ED_F32, N_STATS, 123, 4, 5, lo, hi);
    ed_rng_uniform(x, ED_F64, N_STATS, 123, 4, 5, lo, hi);
    for (int i = 0; i < N_STATS; i++) {
        assert_true(x[i] >= lo && x[i] < hi);
        assert_true(xf[i] >= (float)lo && xf[i] < (float)hi);
    }
    double mean, var;
    moments(x, N_STATS, &mean, &var);
    /* mean 0.5 (std error 0.0046), variance 25/12 */
    assert_true(fabs(mean - 0.5) < 0.025);
    assert_true(fabs(var - 25.0 / 12.0) < 0.04);
    for (int i = 0; i < N_STATS; i++) x[i] = xf[i];
    moments(x, N_STATS, &mean, &var);
    assert_true(fabs(mean - 0.5) < 0.025);
    assert_true(fabs(var - 25.0 / 12.0) < 0.04);
    free(x);
    free(xf);
}

static void test_normal_stats(void **state)
{
    (void)state;
    double *z = malloc(N_STATS * sizeof *z);
    ed_rng_normal(z, ED_F64, N_STATS, 7, 0, 99);
    double mean, var;
    moments(z, N_STATS, &mean, &var);
    assert_true(fabs(mean) < 0.016);      /* 5 standard errors */
    assert_true(fabs(var - 1.0) < 0.025); /* sd of the sample variance ~ 0.0045 */
    int within_one = 0, finite = 0;
    for (int i = 0; i < N_STATS; i++) {
        within_one += fabs(z[i]) < 1.0;
        finite += isfinite(z[i]) != 0;
    }
    assert_int_equal(finite, N_STATS);
    assert_true(fabs((double)within_one / N_STATS - 0.682689) < 0.01);
    free(z);
}

static void test_randint(void **state)
{
    (void)state;
    const int lo = -3, hi = 4, span = hi - lo;
    int32_t *v = malloc(N_STATS * sizeof *v);
    ed_rng_randint(v, N_STATS, 9, 8, 7, lo, hi);
    int counts[7] = {0};
    for (int i = 0; i < N_STATS; i++) {
        assert_true(v[i] >= lo && v[i] < hi);
        counts[v[i] - lo]++;
    }
    /* Each value ~ N/7 = 14286 with sd ~ 111. */
    for (int k = 0; k < span; k++) assert_true(abs(counts[k] - N_STATS / span) < 600);

    /* A wide range stays inside int32 bounds. */
    ed_rng_randint(v, 1000, 9, 8, 7, INT32_MIN, INT32_MAX);
    int negative = 0;
    for (int i = 0; i < 1000; i++) {
        assert_true(v[i] < INT32_MAX);
        negative += v[i] < 0;
    }
    assert_true(negative > 400 && negative < 600);

    /* A single value, and the documented answer for an empty range. */
    ed_rng_randint(v, 100, 1, 1, 1, 5, 6);
    for (int i = 0; i < 100; i++) assert_int_equal(v[i], 5);
    ed_rng_randint(v, 100, 1, 1, 1, 5, 5);
    for (int i = 0; i < 100; i++) assert_int_equal(v[i], 5);
    free(v);
}

static void test_bernoulli(void **state)
{
    (void)state;
    const double p = 0.3;
    double *d = malloc(N_STATS * sizeof *d);
    float *f = malloc(N_STATS * sizeof *f);
    int32_t *k = malloc(N_STATS * sizeof *k);
    ed_rng_bernoulli(d, ED_F64, N_STATS, 5, 6, 7, p);
    ed_rng_bernoulli(f, ED_F32, N_STATS, 5, 6, 7, p);
    ed_rng_bernoulli(k, ED_I32, N_STATS, 5, 6, 7, p);
    int ones = 0;
    for (int i = 0; i < N_STATS; i++) {
        assert_true(d[i] == 0.0 || d[i] == 1.0);
        assert_true((double)f[i] == d[i]); /* same draws whatever the dtype */
        assert_true((double)k[i] == d[i]);
        ones += d[i] == 1.0;
    }
    /* sd of the rate ~ 0.00145 */
    assert_true(fabs((double)ones / N_STATS - p) < 0.008);

    ed_rng_bernoulli(k, ED_I32, 1000, 5, 6, 7, 0.0);
    for (int i = 0; i < 1000; i++) assert_int_equal(k[i], 0);
    ed_rng_bernoulli(k, ED_I32, 1000, 5, 6, 7, 1.0);
    for (int i = 0; i < 1000; i++) assert_int_equal(k[i], 1);
    free(d);
    free(f);
    free(k);
}

static void test_bad_dtype_and_empty_leave_output(void **state)
{
    (void)state;
    int32_t sentinel[4] = {-9, -9, -9, -9};
    ed_rng_uniform(sentinel, ED_I32, 4, 1, 1, 1, 0, 1);
    ed_rng_normal(sentinel, ED_I32, 4, 1, 1, 1);
    ed_rng_bernoulli(sentinel, (ed_dtype)17, 4, 1, 1, 1, 0.5);
    ed_rng_uniform(sentinel, ED_F32, 0, 1, 1, 1, 0, 1);
    ed_rng_randint(sentinel, -5, 1, 1, 1, 0, 10);
    for (int i = 0; i < 4; i++) assert_int_equal(sentinel[i], -9);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answers),
        cmocka_unit_test(test_block_layout),
        cmocka_unit_test(test_uniform_element_rule),
        cmocka_unit_test(test_normal_element_rule),
        cmocka_unit_test(test_prefix_and_determinism),
        cmocka_unit_test(test_streams_differ),
        cmocka_unit_test(test_uniform_stats),
        cmocka_unit_test(test_normal_stats),
        cmocka_unit_test(test_randint),
        cmocka_unit_test(test_bernoulli),
        cmocka_unit_test(test_bad_dtype_and_empty_leave_output),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
