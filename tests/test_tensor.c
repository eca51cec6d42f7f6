/* Tensors: shapes, dtypes, type strings, allocation, element access, i32 conversion. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "runtime/error.h"
#include "runtime/tensor.h"
#include "support/error_check.h"

#include <math.h>
#include <string.h>

static void test_shapes(void **state)
{
    (void)state;
    assert_int_equal(ed_shape0().rank, 0);
    assert_int_equal(ed_shape_numel(ed_shape0()), 1);
    assert_int_equal(ed_shape_numel(ed_shape4(2, 3, 4, 5)), 120);
    assert_int_equal(ed_shape_numel(ed_shape2(7, 0)), 0);
    assert_int_equal(ed_shape_numel(ed_shape1(-1)), -1);
    assert_int_equal(ed_shape_numel(ed_shape2(INT64_MAX, 2)), -1);

    int64_t dims[7] = {1, 2, 3, 4, 5, 6, 7};
    ed_shape s6 = ed_shapen(6, dims);
    assert_int_equal(s6.rank, 6);
    assert_int_equal(s6.dim[5], 6);
    assert_int_equal(ed_shape_numel(s6), 720);
    assert_int_equal(ed_shape_numel(ed_shapen(7, dims)), -1);

    assert_true(ed_shape_eq(ed_shape3(1, 2, 3), ed_shapen(3, dims)));
    assert_false(ed_shape_eq(ed_shape2(1, 2), ed_shape3(1, 2, 3)));
    assert_false(ed_shape_eq(ed_shape2(1, 2), ed_shape2(2, 1)));
    /* Dims past the rank do not matter. */
    ed_shape a = ed_shape1(5), b = ed_shape1(5);
    b.dim[3] = 99;
    assert_true(ed_shape_eq(a, b));

    int64_t st[ED_MAX_RANK];
    ed_shape_strides(ed_shape3(2, 3, 4), st);
    assert_int_equal(st[0], 12);
    assert_int_equal(st[1], 4);
    assert_int_equal(st[2], 1);
    ed_shape_strides(ed_shape0(), st);
    assert_int_equal(st[0], 0);
}

static void test_dtypes(void **state)
{
    (void)state;
    const char *names[] = {"f32", "i32", "f64", "bf16", "f16"};
    const size_t sizes[] = {4, 4, 8, 2, 2};
    for (int t = 0; t < ED_DTYPE_COUNT; t++) {
        ed_dtype parsed = ED_DTYPE_COUNT;
        assert_string_equal(ed_dtype_name((ed_dtype)t), names[t]);
        assert_true(ed_dtype_parse(names[t], &parsed));
        assert_int_equal(parsed, t);
        assert_int_equal(ed_dtype_size((ed_dtype)t), sizes[t]);
    }
    ed_dtype dt;
    assert_false(ed_dtype_parse("f8", &dt));
    assert_true(ed_dtype_is_16bit(ED_BF16) && ed_dtype_is_16bit(ED_F16) && !ed_dtype_is_16bit(ED_F32));
    assert_false(ed_dtype_is_float(ED_BF16));
    assert_false(ed_dtype_parse("", &dt));
    assert_false(ed_dtype_parse(NULL, &dt));
    assert_false(ed_dtype_parse("F32", &dt));
    assert_true(ed_dtype_is_float(ED_F32));
    assert_true(ed_dtype_is_float(ED_F64));
    assert_false(ed_dtype_is_float(ED_I32));
    assert_string_equal(ed_dtype_name((ed_dtype)42), "?");
}

static void test_type_str(void **state)
{
    (void)state;
    char buf[64];
    assert_string_equal(ed_type_str(ED_F32, ed_shape2(512, 2), buf, sizeof buf), "f32[512,2]");
    assert_string_equal(ed_type_str(ED_F32, ed_shape0(), buf, sizeof buf), "f32[]");
    assert_string_equal(ed_type_str(ED_I32, ed_shape1(7), buf, sizeof buf), "i32[7]");
    int64_t dims[6] = {1, 2, 3, 4, 5, 6};
    assert_string_equal(ed_type_str(ED_F64, ed_shapen(6, dims), buf, sizeof buf), "f64[1,2,3,4,5,6]");
    /* A short buffer truncates but stays terminated. */
    char small[6];
    ed_type_str(ED_F32, ed_shape2(512, 2), small, sizeof small);
    assert_string_equal(small, "f32[5");
    ed_type_str(ED_F32, ed_shapen(9, dims), buf, sizeof buf);
    assert_non_null(strstr(buf, "rank 9"));
}

static void test_new_is_zeroed_and_aligned(void **state)
{
    (void)state;
    ed_tensor *t = ed_tensor_new(ED_F32, ed_shape2(3, 5));
    assert_non_null(t);
    assert_true(t->owns);
    assert_int_equal((uintptr_t)t->data % ED_ALIGN, 0);
    assert_int_equal(ed_tensor_numel(t), 15);
    assert_int_equal(ed_tensor_bytes(t), 60);
    for (int i = 0; i < 15; i++) assert_true(ed_tensor_get(t, i) == 0.0);
    ed_tensor_free(t);

    /* Scalars and empty tensors are fine; an empty tensor still gets a buffer. */
    ed_tensor *s = ed_tensor_new(ED_F64, ed_shape0());
    assert_non_null(s);
    assert_int_equal(ed_tensor_numel(s), 1);
    ed_tensor_free(s);
    ed_tensor *e = ed_tensor_new(ED_I32, ed_shape3(4, 0, 2));
    assert_non_null(e);
    assert_non_null(e->data);
    assert_int_equal(ed_tensor_bytes(e), 0);
    ed_tensor_free(e);
    ed_tensor_free(NULL);
}

static void test_new_rejects_bad_shapes(void **state)
{
    (void)state;
    int64_t dims[7] = {1, 1, 1, 1, 1, 1, 1};
    assert_null(ed_tensor_new(ED_F32, ed_shapen(7, dims)));
    CHECK_ERROR_HAS("rank 7");
    assert_null(ed_tensor_new(ED_F32, ed_shapen(-1, dims)));
    CHECK_ERROR_HAS("rank -1");
    assert_null(ed_tensor_new(ED_F32, ed_shape2(4, -3)));
    CHECK_ERROR_HAS("negative dimension -3 at axis 1");
    assert_null(ed_tensor_new(ED_F32, ed_shape3(INT64_C(1) << 40, INT64_C(1) << 40, 4)));
    CHECK_ERROR_HAS("too large");
    /* Element count fits int64 but bytes do not fit size_t. */
    assert_null(ed_tensor_new(ED_F64, ed_shape1(INT64_C(1) << 62)));
    CHECK_ERROR_HAS("too large");
    assert_null(ed_tensor_new((ed_dtype)7, ed_shape1(2)));
    CHECK_ERROR_HAS("unknown dtype");
}

static void test_copy_and_wrap(void **state)
{
    (void)state;
    ed_tensor *a = ed_tensor_new(ED_I32, ed_shape1(4));
    for (int i = 0; i < 4; i++) ed_tensor_set(a, i, i * 10);
    ed_tensor *b = ed_tensor_copy(a);
    assert_non_null(b);
    assert_ptr_not_equal(a->data, b->data);
    assert_true(ed_shape_eq(a->shape, b->shape));
    ed_tensor_set(a, 0, 99);
    assert_true(ed_tensor_get(b, 0) == 0.0);
    assert_true(ed_tensor_get(b, 3) == 30.0);
    ed_tensor_free(a);
    ed_tensor_free(b);
    assert_null(ed_tensor_copy(NULL));
    CHECK_ERROR_HAS("NULL");

    float local[6] = {1, 2, 3, 4, 5, 6};
    ed_tensor *w = ed_tensor_wrap(ED_F32, ed_shape2(2, 3), local);
    assert_non_null(w);
    assert_false(w->owns);
    assert_true(ed_tensor_get(w, 5) == 6.0);
    ed_tensor_set(w, 0, -1.5);
    assert_true(local[0] == -1.5f);
    ed_tensor_free(w); /* must not free the stack array (ASan would say) */
    assert_null(ed_tensor_wrap(ED_F32, ed_shape1(3), NULL));
    CHECK_ERROR_HAS("NULL buffer");
}

static void test_get_set_each_dtype(void **state)
{
    (void)state;
    ed_tensor *f = ed_tensor_new(ED_F32, ed_shape1(2));
    ed_tensor *d = ed_tensor_new(ED_F64, ed_shape1(2));
    ed_tensor *i = ed_tensor_new(ED_I32, ed_shape1(2));
    ed_tensor_set(f, 1, 0.1);
    ed_tensor_set(d, 1, 0.1);
    ed_tensor_set(i, 1, -7.9);
    assert_true(ed_tensor_get(f, 1) == (double)0.1f);
    assert_true(ed_tensor_get(d, 1) == 0.1);
    assert_true(ed_tensor_get(i, 1) == -7.0);
    assert_true(((float *)f->data)[1] == 0.1f);
    assert_int_equal(((int32_t *)i->data)[1], -7);
    ed_tensor_free(f);
    ed_tensor_free(d);
    ed_tensor_free(i);
}

static void test_to_i32(void **state)
{
    (void)state;
    assert_int_equal(ed_to_i32(3.7), 3);
    assert_int_equal(ed_to_i32(-3.7), -3);
    assert_int_equal(ed_to_i32(-0.5), 0);
    assert_int_equal(ed_to_i32(2147483647.0), INT32_MAX);
    assert_int_equal(ed_to_i32(2147483648.0), INT32_MIN);
    assert_int_equal(ed_to_i32(4294967295.0), -1);
    assert_int_equal(ed_to_i32(4294967296.0 + 5), 5);
    assert_int_equal(ed_to_i32(-2147483649.0), INT32_MAX);
    assert_int_equal(ed_to_i32(-4294967296.0 - 3.9), -3);
    assert_int_equal(ed_to_i32(1e300), 0); /* a multiple of 2^32 */
    assert_int_equal(ed_to_i32(NAN), 0);
    assert_int_equal(ed_to_i32(INFINITY), 0);
    assert_int_equal(ed_to_i32(-INFINITY), 0);
}

static void test_aligned_alloc(void **state)
{
    (void)state;
    const size_t sizes[] = {0, 1, 63, 64, 65, 1000};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        unsigned char *p = ed_aligned_alloc(sizes[k]);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % ED_ALIGN, 0);
        for (size_t j = 0; j < sizes[k]; j++) assert_int_equal(p[j], 0);
        ed_aligned_free(p);
    }
    ed_aligned_free(NULL);
    assert_null(ed_aligned_alloc(SIZE_MAX));
    CHECK_ERROR_HAS("out of memory");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shapes),
        cmocka_unit_test(test_dtypes),
        cmocka_unit_test(test_type_str),
        cmocka_unit_test(test_new_is_zeroed_and_aligned),
        cmocka_unit_test(test_new_rejects_bad_shapes),
        cmocka_unit_test(test_copy_and_wrap),
        cmocka_unit_test(test_get_set_each_dtype),
        cmocka_unit_test(test_to_i32),
        cmocka_unit_test(test_aligned_alloc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
