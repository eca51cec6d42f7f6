/* The parameter store and its seeded initializers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "runtime/error.h"
#include "runtime/philox.h"
#include "runtime/store.h"
#include "runtime/tensor.h"
#include "support/error_check.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static void test_init_names(void **state)
{
    (void)state;
    const char *names[ED_INIT_COUNT] = {"zeros",          "ones",          "normal",          "uniform",
                                        "glorot_uniform", "glorot_normal", "kaiming_uniform", "kaiming_normal"};
    for (int k = 0; k < ED_INIT_COUNT; k++) {
        ed_init_kind parsed = ED_INIT_COUNT;
        assert_string_equal(ed_init_name((ed_init_kind)k), names[k]);
        assert_true(ed_init_parse(names[k], &parsed));
        assert_int_equal(parsed, k);
    }
    ed_init_kind kind;
    assert_false(ed_init_parse("xavier", &kind));
    assert_false(ed_init_parse("", &kind));
    assert_false(ed_init_parse(NULL, &kind));
    assert_string_equal(ed_init_name(ED_INIT_COUNT), "?");
}

static void test_fans_and_stream_hash(void **state)
{
    (void)state;
    double in, out;
    ed_init_fans(ed_shape2(3, 4), &in, &out);
    assert_true(in == 3 && out == 4);
    ed_init_fans(ed_shape4(2, 3, 5, 7), &in, &out);
    assert_true(in == 30 && out == 42);
    ed_init_fans(ed_shape1(9), &in, &out);
    assert_true(in == 9 && out == 9);
    ed_init_fans(ed_shape0(), &in, &out);
    assert_true(in == 1 && out == 1);
    /* Published FNV-1a 32-bit test vectors. */
    assert_int_equal(ed_name_stream(""), 0x811c9dc5u);
    assert_int_equal(ed_name_stream("a"), 0xe40c292cu);
    assert_int_equal(ed_name_stream("foobar"), 0xbf9cf968u);
}

typedef struct {
    double mean, std, min, max;
} stats;

static stats stats_of(const ed_tensor *t)
{
    int64_t n = ed_tensor_numel(t);
    stats s = {0, 0, INFINITY, -INFINITY};
    for (int64_t i = 0; i < n; i++) {
        double v = ed_tensor_get(t, i);
        s.mean += v;
        s.min = fmin(s.min, v);
        s.max = fmax(s.max, v);
    }
    s.mean /= (double)n;
    for (int64_t i = 0; i < n; i++) {
        double d = ed_tensor_get(t, i) - s.mean;
        s.std += d * d;
    }
    s.std = sqrt(s.std / (double)(n - 1));
    return s;
}

static ed_tensor *initialized(ed_dtype dt, ed_shape shape, ed_init_kind kind, double scale)
{
    ed_tensor *t = ed_tensor_new(dt, shape);
    assert_non_null(t);
    if (ed_init_fill(t, (ed_init){kind, scale}, 1234, "layer.w") != ED_OK)
        fail_msg("init %s failed: %s", ed_init_name(kind), ed_last_error());
    return t;
}

/* Tolerances are five standard errors: sqrt(1/n) of the std for the mean, and at most
 * 0.71 / sqrt(n) (a normal's case) relative for the sample std. */
static bool moments_close(stats s, double std, double n)
{
    return fabs(s.mean) <= 5 * std / sqrt(n) && fabs(s.std / std - 1) <= 3.5 / sqrt(n);
}

static void check_normal(ed_tensor *t, double std)
{
    stats s = stats_of(t);
    double n = (double)ed_tensor_numel(t);
    if (!moments_close(s, std, n)) fail_msg("normal: mean %g std %g, want 0 and %g", s.mean, s.std, std);
    ed_tensor_free(t);
}

/* Inside [-bound, bound), reaching close to both ends (a gap of 20 bound / n is
 * missed with probability e^-10), with std bound / sqrt(3). */
static void check_uniform(ed_tensor *t, double bound)
{
    stats s = stats_of(t);
    double n = (double)ed_tensor_numel(t);
    double reach = bound * (1 - 20 / n);
    if (s.min < -bound || s.max >= bound)
        fail_msg("uniform: range [%g, %g] outside [-%g, %g)", s.min, s.max, bound, bound);
    if (s.min > -reach || s.max < reach)
        fail_msg("uniform: range [%g, %g] does not fill [-%g, %g)", s.min, s.max, bound, bound);
    if (!moments_close(s, bound / sqrt(3.0), n))
        fail_msg("uniform: mean %g std %g, want 0 and %g", s.mean, s.std, bound / sqrt(3.0));
    ed_tensor_free(t);
}

static void test_constant_initializers(void **state)
{
    (void)state;
    for (int dt = 0; dt < ED_DTYPE_COUNT; dt++) {
        ed_tensor *z = initialized((ed_dtype)dt, ed_shape2(5, 7), ED_INIT_ZEROS, 3.0);
        ed_tensor *o = initialized((ed_dtype)dt, ed_shape2(5, 7), ED_INIT_ONES, 3.0);
        for (int i = 0; i < 35; i++) {
            assert_true(ed_tensor_get(z, i) == 0.0);
            assert_true(ed_tensor_get(o, i) == 1.0);
        }
        ed_tensor_free(z);
        ed_tensor_free(o);
    }
}

static void test_random_initializers_match_formulas(void **state)
{
    (void)state;
    const ed_shape w = ed_shape2(512, 256); /* fan_in 512, fan_out 256 */
    check_normal(initialized(ED_F32, w, ED_INIT_NORMAL, 0.5), 0.5);
    check_normal(initialized(ED_F64, w, ED_INIT_NORMAL, 0.02), 0.02);
    check_uniform(initialized(ED_F32, w, ED_INIT_UNIFORM, 0.3), 0.3);
    check_uniform(initialized(ED_F64, w, ED_INIT_UNIFORM, 0.3), 0.3);
    check_uniform(initialized(ED_F32, w, ED_INIT_GLOROT_UNIFORM, 0), sqrt(6.0 / 768));
    check_uniform(initialized(ED_F32, w, ED_INIT_GLOROT_UNIFORM, 2), 2 * sqrt(6.0 / 768));
    check_normal(initialized(ED_F32, w, ED_INIT_GLOROT_NORMAL, 0), sqrt(2.0 / 768));
    check_normal(initialized(ED_F64, w, ED_INIT_GLOROT_NORMAL, 3), 3 * sqrt(2.0 / 768));
    check_uniform(initialized(ED_F32, w, ED_INIT_KAIMING_UNIFORM, 0), sqrt(2.0) * sqrt(3.0 / 512));
    check_uniform(initialized(ED_F32, w, ED_INIT_KAIMING_UNIFORM, 1), sqrt(3.0 / 512));
    check_normal(initialized(ED_F32, w, ED_INIT_KAIMING_NORMAL, 0), sqrt(2.0) / sqrt(512));
    check_normal(initialized(ED_F32, w, ED_INIT_KAIMING_NORMAL, 1), 1 / sqrt(512));
    /* A conv kernel [3, 3, 16, 32]: receptive field 9, fan_in 144, fan_out 288. */
    const ed_shape k = ed_shape4(3, 3, 16, 32);
    check_normal(initialized(ED_F32, k, ED_INIT_KAIMING_NORMAL, 0), sqrt(2.0 / 144));
    check_uniform(initialized(ED_F32, k, ED_INIT_GLOROT_UNIFORM, 0), sqrt(6.0 / 432));
    /* A vector: fan_in = fan_out = its length. */
    check_uniform(initialized(ED_F32, ed_shape1(40960), ED_INIT_GLOROT_UNIFORM, 0), sqrt(6.0 / 81920));
}

static void test_init_errors(void **state)
{
    (void)state;
    ed_tensor *i = ed_tensor_new(ED_I32, ed_shape1(4));
    assert_int_equal(ed_init_fill(i, (ed_init){ED_INIT_NORMAL, 1}, 0, "steps"), ED_ERR);
    CHECK_ERROR_HAS("init: \"steps\" is i32; only zeros and ones can initialize it, not normal");
    assert_int_equal(ed_init_fill(i, (ed_init){ED_INIT_ONES, 0}, 0, "steps"), ED_OK);
    assert_true(ed_tensor_get(i, 3) == 1.0);
    ed_tensor_free(i);

    ed_tensor *f = ed_tensor_new(ED_F32, ed_shape1(4));
    assert_int_equal(ed_init_fill(f, (ed_init){ED_INIT_NORMAL, -1}, 0, "w"), ED_ERR);
    CHECK_ERROR_HAS("scale must be finite and >= 0");
    assert_int_equal(ed_init_fill(f, (ed_init){ED_INIT_UNIFORM, NAN}, 0, "w"), ED_ERR);
    CHECK_ERROR_HAS("scale");
    assert_int_equal(ed_init_fill(f, (ed_init){(ed_init_kind)99, 1}, 0, "w"), ED_ERR);
    CHECK_ERROR_HAS("unknown initializer kind 99");
    assert_int_equal(ed_init_fill(NULL, (ed_init){ED_INIT_ZEROS, 0}, 0, "w"), ED_ERR);
    ed_tensor_free(f);

    ed_tensor *empty = ed_tensor_new(ED_F32, ed_shape2(0, 8));
    assert_int_equal(ed_init_fill(empty, (ed_init){ED_INIT_KAIMING_NORMAL, 0}, 0, "e"), ED_OK);
    ed_tensor_free(empty);
}

static bool same_bits(const ed_tensor *a, const ed_tensor *b)
{
    return a->dtype == b->dtype && ed_shape_eq(a->shape, b->shape) && memcmp(a->data, b->data, ed_tensor_bytes(a)) == 0;
}

static void test_determinism_by_seed_and_name(void **state)
{
    (void)state;
    const ed_init init = {ED_INIT_GLOROT_NORMAL, 0};
    const ed_shape s = ed_shape2(16, 8);
    ed_tensor *a = ed_tensor_new(ED_F32, s), *b = ed_tensor_new(ED_F32, s);
    ed_tensor *other_name = ed_tensor_new(ED_F32, s), *other_seed = ed_tensor_new(ED_F32, s);
    assert_int_equal(ed_init_fill(a, init, 7, "enc.fc1.w"), ED_OK);
    assert_int_equal(ed_init_fill(b, init, 7, "enc.fc1.w"), ED_OK);
    assert_int_equal(ed_init_fill(other_name, init, 7, "enc.fc2.w"), ED_OK);
    assert_int_equal(ed_init_fill(other_seed, init, 8, "enc.fc1.w"), ED_OK);
    assert_true(same_bits(a, b));
    assert_false(same_bits(a, other_name));
    assert_false(same_bits(a, other_seed));
    int equal = 0;
    for (int i = 0; i < 128; i++) equal += ed_tensor_get(a, i) == ed_tensor_get(other_name, i);
    assert_true(equal < 3);
    ed_tensor_free(a);
    ed_tensor_free(b);
    ed_tensor_free(other_name);
    ed_tensor_free(other_seed);
}

/* The initializer's draws are exactly the Philox streams with stream = FNV-1a(name)
 * and call = 0, which is what lets other tools reproduce them. */
static void test_draws_are_the_documented_streams(void **state)
{
    (void)state;
    enum { n = 37 };
    const char *name = "den.fc1.w";
    double want[n];
    ed_tensor *t = ed_tensor_new(ED_F64, ed_shape1(n));
    assert_int_equal(ed_init_fill(t, (ed_init){ED_INIT_UNIFORM, 0.25}, 77, name), ED_OK);
    ed_rng_uniform(want, ED_F64, n, 77, 0, ed_name_stream(name), -0.25, 0.25);
    assert_memory_equal(t->data, want, sizeof want);
    assert_int_equal(ed_init_fill(t, (ed_init){ED_INIT_NORMAL, 1}, 77, name), ED_OK);
    ed_rng_normal(want, ED_F64, n, 77, 0, ed_name_stream(name));
    assert_memory_equal(t->data, want, sizeof want);
    ed_tensor_free(t);
}

static void test_order_independence(void **state)
{
    (void)state;
    const char *names[] = {"dec.fc1.w", "dec.fc1.b", "dec.out.w", "enc.fc1.w"};
    const ed_init inits[] = {
        {ED_INIT_KAIMING_UNIFORM, 0}, {ED_INIT_NORMAL, 0.1}, {ED_INIT_GLOROT_NORMAL, 1}, {ED_INIT_UNIFORM, 0.05}};
    const ed_shape shapes[] = {ed_shape2(6, 10), ed_shape1(10), ed_shape2(10, 3), ed_shape2(3, 6)};
    ed_store *fwd = ed_store_new(99), *rev = ed_store_new(99);
    for (int k = 0; k < 4; k++) assert_non_null(ed_store_ensure(fwd, names[k], ED_F32, shapes[k], inits[k], true));
    for (int k = 3; k >= 0; k--) assert_non_null(ed_store_ensure(rev, names[k], ED_F32, shapes[k], inits[k], true));
    for (int k = 0; k < 4; k++) assert_true(same_bits(ed_store_get(fwd, names[k]), ed_store_get(rev, names[k])));
    /* Insertion order is kept. */
    assert_string_equal(ed_store_name(fwd, 0), "dec.fc1.w");
    assert_string_equal(ed_store_name(rev, 0), "enc.fc1.w");
    ed_store_free(fwd);
    ed_store_free(rev);
}

static void test_ensure(void **state)
{
    (void)state;
    ed_store *st = ed_store_new(5);
    assert_int_equal(ed_store_seed(st), 5);
    const ed_init glorot = {ED_INIT_GLOROT_UNIFORM, 0};
    ed_tensor *w = ed_store_ensure(st, "fc1.w", ED_F32, ed_shape2(3, 8), glorot, true);
    assert_non_null(w);
    assert_ptr_equal(ed_store_ensure(st, "fc1.w", ED_F32, ed_shape2(3, 8), glorot, true), w);
    assert_int_equal(ed_store_count(st), 1);

    assert_null(ed_store_ensure(st, "fc1.w", ED_F32, ed_shape2(4, 8), glorot, true));
    assert_string_equal(ed_last_error(), "store: \"fc1.w\" is f32[3,8] but the graph wants f32[4,8]");
    assert_null(ed_store_ensure(st, "fc1.w", ED_F64, ed_shape2(3, 8), glorot, true));
    assert_string_equal(ed_last_error(), "store: \"fc1.w\" is f32[3,8] but the graph wants f64[3,8]");

    /* Failures insert nothing. */
    assert_null(ed_store_ensure(st, "step", ED_I32, ed_shape0(), glorot, false));
    CHECK_ERROR_HAS("\"step\" is i32");
    assert_null(ed_store_ensure(st, "bad", ED_F32, ed_shape2(3, -1), glorot, true));
    CHECK_ERROR_HAS("store: \"bad\": tensor: negative dimension -1");
    assert_null(ed_store_ensure(st, "", ED_F32, ed_shape0(), glorot, true));
    CHECK_ERROR_HAS("non-empty name");
    assert_int_equal(ed_store_count(st), 1);

    ed_tensor *step = ed_store_ensure(st, "step", ED_I32, ed_shape0(), (ed_init){ED_INIT_ZEROS, 0}, false);
    assert_non_null(step);
    assert_int_equal(ed_store_count(st), 2);
    assert_true(ed_store_trainable(st, 0));
    assert_false(ed_store_trainable(st, 1));
    assert_ptr_equal(ed_store_tensor(st, 1), step);
    assert_null(ed_store_name(st, 2));
    assert_null(ed_store_tensor(st, -1));
    assert_false(ed_store_trainable(st, 7));

    /* A stored tensor equals a direct fill with the store's seed and its name. */
    ed_tensor *direct = ed_tensor_new(ED_F32, ed_shape2(3, 8));
    assert_int_equal(ed_init_fill(direct, glorot, 5, "fc1.w"), ED_OK);
    assert_true(same_bits(direct, w));
    ed_tensor_free(direct);
    ed_store_free(st);
}

static void test_put_replace_and_get(void **state)
{
    (void)state;
    ed_store *st = ed_store_new(0);
    ed_clear_error();
    assert_null(ed_store_get(st, "missing"));
    assert_string_equal(ed_last_error(), ""); /* absence is not an error */

    ed_tensor *a = ed_tensor_new(ED_F32, ed_shape1(3));
    ed_tensor *b = ed_tensor_new(ED_F32, ed_shape1(5));
    ed_tensor *c = ed_tensor_new(ED_F64, ed_shape0());
    assert_int_equal(ed_store_put(st, "a", a, true), ED_OK);
    assert_int_equal(ed_store_put(st, "c", c, false), ED_OK);
    assert_int_equal(ed_store_put(st, "a", b, false), ED_OK); /* frees a */
    assert_int_equal(ed_store_count(st), 2);
    assert_ptr_equal(ed_store_get(st, "a"), b);
    assert_string_equal(ed_store_name(st, 0), "a"); /* keeps its place */
    assert_false(ed_store_trainable(st, 0));
    assert_int_equal(ed_store_put(st, "a", b, true), ED_OK); /* same tensor: not freed */
    assert_true(ed_store_trainable(st, 0));
    assert_ptr_equal(ed_store_get(st, "a"), b);

    /* Ownership passes even when put fails, so nothing leaks. */
    assert_int_equal(ed_store_put(NULL, "x", ed_tensor_new(ED_F32, ed_shape1(2)), true), ED_ERR);
    CHECK_ERROR_HAS("NULL store");
    assert_int_equal(ed_store_put(st, "", ed_tensor_new(ED_F32, ed_shape1(2)), true), ED_ERR);
    CHECK_ERROR_HAS("non-empty name");
    assert_int_equal(ed_store_put(st, "x", NULL, true), ED_ERR);
    CHECK_ERROR_HAS("NULL tensor");
    assert_int_equal(ed_store_count(st), 2);
    ed_store_free(st);
    ed_store_free(NULL);
}

static void test_many_names(void **state)
{
    (void)state;
    enum { n = 5000 };
    ed_store *st = ed_store_new(1);
    char name[32];
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "block%d.w", i);
        ed_tensor *t = ed_tensor_new(ED_I32, ed_shape0());
        ed_tensor_set(t, 0, i);
        assert_int_equal(ed_store_put(st, name, t, i % 2 == 0), ED_OK);
    }
    assert_int_equal(ed_store_count(st), n);
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "block%d.w", i);
        ed_tensor *t = ed_store_get(st, name);
        assert_non_null(t);
        assert_true(ed_tensor_get(t, 0) == i);
        assert_string_equal(ed_store_name(st, i), name);
        assert_int_equal(ed_store_trainable(st, i), i % 2 == 0);
    }
    assert_null(ed_store_get(st, "block5000.w"));
    ed_store_free(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_names),
        cmocka_unit_test(test_fans_and_stream_hash),
        cmocka_unit_test(test_constant_initializers),
        cmocka_unit_test(test_random_initializers_match_formulas),
        cmocka_unit_test(test_init_errors),
        cmocka_unit_test(test_determinism_by_seed_and_name),
        cmocka_unit_test(test_draws_are_the_documented_streams),
        cmocka_unit_test(test_order_independence),
        cmocka_unit_test(test_ensure),
        cmocka_unit_test(test_put_replace_and_get),
        cmocka_unit_test(test_many_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
