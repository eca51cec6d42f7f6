/* .npy reading and writing: round trips, the exact bytes numpy expects, and every way a
 * file can be wrong (each must give NULL and one message naming the file). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "runtime/error.h"
#include "io/npy.h"
#include "runtime/tensor.h"
#include "support/error_check.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TMP_PREFIX ED_BINARY_DIR "/test_npy_"

/* A .npy image as numpy lays it out: preamble, dict padded with spaces to a multiple
 * of 64 bytes, '\n', data. Returns its size. */
static size_t make_npy(unsigned char *out, int major, const char *dict, const void *data, size_t data_len)
{
    size_t preamble = major == 1 ? 10 : 12;
    size_t len = strlen(dict);
    size_t total = (preamble + len + 1 + 63) / 64 * 64;
    size_t header_len = total - preamble;
    memcpy(out, "\x93NUMPY", 6);
    out[6] = (unsigned char)major;
    out[7] = 0;
    for (size_t i = 0; i < preamble - 8; i++) out[8 + i] = (unsigned char)(header_len >> (8 * i));
    memcpy(out + preamble, dict, len);
    memset(out + preamble + len, ' ', header_len - len - 1);
    out[total - 1] = '\n';
    if (data_len) memcpy(out + total, data, data_len);
    return total + data_len;
}

static unsigned char image[1 << 16];

static ed_tensor *parse_dict(int major, const char *dict, const void *data, size_t data_len)
{
    size_t n = make_npy(image, major, dict, data, data_len);
    return ed_npy_parse(image, n, "x.npy");
}

static void write_file(const char *path, const void *bytes, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static unsigned char *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    unsigned char *buf = malloc(1 << 20);
    *n = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

/* No temporary files may survive a write, successful or not. */
static void assert_no_temp_files(void)
{
    DIR *dir = opendir(ED_BINARY_DIR);
    assert_non_null(dir);
    struct dirent *e;
    while ((e = readdir(dir)))
        if (strncmp(e->d_name, "test_npy_", 9) == 0 && strstr(e->d_name, ".tmp"))
            fail_msg("temporary file left behind: %s", e->d_name);
    closedir(dir);
}

static ed_tensor *filled(ed_dtype dt, ed_shape s)
{
    ed_tensor *t = ed_tensor_new(dt, s);
    assert_non_null(t);
    for (int64_t i = 0; i < ed_tensor_numel(t); i++) ed_tensor_set(t, i, (double)(i * 7 % 23) - 11.25 * (dt != ED_I32));
    return t;
}

static void round_trip(ed_dtype dt, ed_shape s)
{
    const char *path = TMP_PREFIX "rt.npy";
    ed_tensor *t = filled(dt, s);
    assert_int_equal(ed_npy_write(path, t), ED_OK);
    ed_tensor *back = ed_npy_read(path);
    if (!back) fail_msg("read back failed: %s", ed_last_error());
    assert_int_equal(back->dtype, dt);
    assert_true(ed_shape_eq(back->shape, s));
    assert_int_equal(ed_tensor_bytes(back), ed_tensor_bytes(t));
    if (ed_tensor_bytes(t)) assert_memory_equal(back->data, t->data, ed_tensor_bytes(t));

    /* Layout: version 1.0, data at a multiple of 64, header ends in '\n'. */
    size_t n;
    unsigned char *bytes = read_file(path, &n);
    assert_memory_equal(bytes, "\x93NUMPY\x01\x00", 8);
    size_t header_len = bytes[8] | (size_t)bytes[9] << 8;
    assert_int_equal((10 + header_len) % 64, 0);
    assert_int_equal(bytes[10 + header_len - 1], '\n');
    assert_int_equal(n, 10 + header_len + ed_tensor_bytes(t));
    free(bytes);
    ed_tensor_free(t);
    ed_tensor_free(back);
    remove(path);
}

static void test_round_trip_every_dtype_and_rank(void **state)
{
    (void)state;
    const int64_t dims[ED_MAX_RANK] = {2, 3, 1, 4, 2, 3};
    for (int dt = 0; dt < ED_DTYPE_COUNT; dt++) {
        if (dt == ED_BF16 || dt == ED_F16) continue; /* storage-only: refused below */
        for (int rank = 0; rank <= ED_MAX_RANK; rank++) round_trip((ed_dtype)dt, ed_shapen(rank, dims));
        round_trip((ed_dtype)dt, ed_shape3(2, 0, 5)); /* empty */
        round_trip((ed_dtype)dt, ed_shape1(0));
    }
    /* the 16-bit weight storage has no place in .npy: a clear error, no file */
    static const ed_dtype half[2] = {ED_BF16, ED_F16};
    remove(TMP_PREFIX "half.npy");
    for (int i = 0; i < 2; i++) {
        ed_tensor *t = ed_tensor_new(half[i], ed_shape1(3));
        assert_int_equal(ed_npy_write(TMP_PREFIX "half.npy", t), ED_ERR);
        assert_non_null(strstr(ed_last_error(), ed_dtype_name(half[i])));
        assert_int_equal(access(TMP_PREFIX "half.npy", F_OK), -1);
        ed_tensor_free(t);
    }
    assert_no_temp_files();
}

/* Our bytes are numpy's bytes: the dict text and the padding are what np.save writes. */
static void test_writer_matches_numpy_layout(void **state)
{
    (void)state;
    const char *path = TMP_PREFIX "layout.npy";
    const double values[3] = {0.0, 1.0, 2.0};
    ed_tensor *t = ed_tensor_wrap(ED_F64, ed_shape1(3), (void *)values);
    assert_int_equal(ed_npy_write(path, t), ED_OK);
    unsigned char want[256];
    size_t want_n = make_npy(want, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", values,
                             sizeof values);
    size_t n;
    unsigned char *bytes = read_file(path, &n);
    assert_int_equal(n, want_n);
    assert_memory_equal(bytes, want, n);
    free(bytes);
    ed_tensor_free(t);

    /* Scalars are shape () and 2-d shapes have no trailing comma. */
    ed_tensor *s = ed_tensor_new(ED_I32, ed_shape0());
    assert_int_equal(ed_npy_write(path, s), ED_OK);
    bytes = read_file(path, &n);
    assert_non_null(strstr((char *)bytes + 10, "{'descr': '<i4', 'fortran_order': False, 'shape': (), }"));
    free(bytes);
    ed_tensor_free(s);
    ed_tensor *m = ed_tensor_new(ED_F32, ed_shape2(4, 5));
    assert_int_equal(ed_npy_write(path, m), ED_OK);
    bytes = read_file(path, &n);
    assert_non_null(strstr((char *)bytes + 10, "'shape': (4, 5), }"));
    free(bytes);
    ed_tensor_free(m);
    remove(path);
}

static void test_overwrite_replaces(void **state)
{
    (void)state;
    const char *path = TMP_PREFIX "over.npy";
    ed_tensor *a = filled(ED_F32, ed_shape2(8, 8));
    ed_tensor *b = filled(ED_I32, ed_shape1(3));
    assert_int_equal(ed_npy_write(path, a), ED_OK);
    assert_int_equal(ed_npy_write(path, b), ED_OK);
    ed_tensor *back = ed_npy_read(path);
    assert_non_null(back);
    assert_int_equal(back->dtype, ED_I32);
    assert_true(ed_shape_eq(back->shape, ed_shape1(3)));
    ed_tensor_free(a);
    ed_tensor_free(b);
    ed_tensor_free(back);
    remove(path);
    assert_no_temp_files();
}

static void test_reads_versions_and_header_variants(void **state)
{
    (void)state;
    const float f[6] = {1, 2, 3, 4, 5, 6};
    const char *dicts[] = {
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}",
        "{\"shape\": (2,3), \"descr\": \"<f4\", \"fortran_order\": False}",
        "{ 'fortran_order' : False , 'shape' : ( 2 , 3 , ) , 'descr' : '|f4' , }",
        "{'descr': '=f4', 'fortran_order': False, 'shape': (2L, 3L), }",
    };
    for (int major = 1; major <= 3; major++) {
        for (size_t k = 0; k < sizeof dicts / sizeof dicts[0]; k++) {
            ed_tensor *t = parse_dict(major, dicts[k], f, sizeof f);
            if (!t) fail_msg("version %d, %s: %s", major, dicts[k], ed_last_error());
            assert_int_equal(t->dtype, ED_F32);
            assert_true(ed_shape_eq(t->shape, ed_shape2(2, 3)));
            assert_memory_equal(t->data, f, sizeof f);
            assert_int_equal((uintptr_t)t->data % ED_ALIGN, 0);
            ed_tensor_free(t);
        }
    }
    const int32_t i = -42;
    ed_tensor *t = parse_dict(1, "{'descr': '<i4', 'fortran_order': False, 'shape': ()}", &i, sizeof i);
    assert_non_null(t);
    assert_int_equal(t->shape.rank, 0);
    assert_true(ed_tensor_get(t, 0) == -42.0);
    ed_tensor_free(t);
}

static void expect_parse_error(const char *dict, const void *data, size_t len, const char *part)
{
    ed_clear_error();
    ed_tensor *t = parse_dict(1, dict, data, len);
    if (t) {
        ed_tensor_free(t);
        fail_msg("accepted %s", dict);
    }
    CHECK_ERROR_HAS("x.npy: ");
    CHECK_ERROR_HAS(part);
}

static void test_rejects_bad_dtypes_and_layouts(void **state)
{
    (void)state;
    const double d[4] = {0};
    expect_parse_error("{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }", d, 24,
                       "x.npy: unsupported dtype '<i8' (edifice reads <f4, <i4, <f8)");
    expect_parse_error("{'descr': '<f2', 'fortran_order': False, 'shape': (3,), }", d, 6, "unsupported dtype '<f2'");
    expect_parse_error("{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }", d, 3, "unsupported dtype '|u1'");
    expect_parse_error("{'descr': '>f4', 'fortran_order': False, 'shape': (3,), }", d, 12, "big-endian dtype '>f4'");
    expect_parse_error("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (3,), }", d, 12, "structured");
    expect_parse_error("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", d, 16, "fortran_order");
    expect_parse_error("{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1), }", d, 4, "rank 7 exceeds");
}

/* ed_npy_read_any: integer files of other widths become i32, checked for range; the
 * plain reader still refuses them; ed_npy_peek reads the header only. */
static void test_read_any_integers(void **state)
{
    (void)state;
    const char *path = TMP_PREFIX "any.npy";
    const unsigned char u1[4] = {0, 7, 200, 255};
    write_file(path, image, make_npy(image, 1, "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2), }", u1, 4));
    assert_null(ed_npy_read(path));
    CHECK_ERROR_HAS("unsupported dtype '|u1' (edifice reads <f4, <i4, <f8)");
    char descr[4];
    ed_shape shape;
    assert_int_equal(ed_npy_peek(path, descr, &shape), ED_OK);
    assert_string_equal(descr, "u1");
    assert_true(ed_shape_eq(shape, ed_shape2(2, 2)));
    ed_tensor *t = ed_npy_read_any(path);
    assert_non_null(t);
    assert_int_equal(t->dtype, ED_I32);
    assert_true(ed_shape_eq(t->shape, ed_shape2(2, 2)));
    for (int i = 0; i < 4; i++) assert_int_equal(((int32_t *)t->data)[i], u1[i]);
    ed_tensor_free(t);

    const int64_t i8[3] = {-5, 9, INT64_C(3000000000)};
    write_file(path, image, make_npy(image, 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", i8, 16));
    t = ed_npy_read_any(path);
    assert_non_null(t);
    assert_int_equal(((int32_t *)t->data)[0], -5);
    assert_int_equal(((int32_t *)t->data)[1], 9);
    ed_tensor_free(t);
    write_file(path, image, make_npy(image, 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }", i8, 24));
    assert_null(ed_npy_read_any(path));
    CHECK_ERROR_HAS("any.npy: element 2 is 3000000000, outside the i32 range");
    const int16_t i2[2] = {-300, 300};
    write_file(path, image, make_npy(image, 1, "{'descr': '<i2', 'fortran_order': False, 'shape': (2,), }", i2, 4));
    t = ed_npy_read_any(path);
    assert_non_null(t);
    assert_int_equal(((int32_t *)t->data)[0], -300);
    ed_tensor_free(t);
    write_file(path, image, make_npy(image, 1, "{'descr': '<i2', 'fortran_order': False, 'shape': (2,), }", i2, 3));
    assert_null(ed_npy_read_any(path));
    CHECK_ERROR_HAS("truncated");
    /* native types read exactly as ed_npy_read reads them */
    const float f4[2] = {0.25f, -1};
    write_file(path, image, make_npy(image, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", f4, 8));
    t = ed_npy_read_any(path);
    assert_non_null(t);
    assert_int_equal(t->dtype, ED_F32);
    assert_memory_equal(t->data, f4, 8);
    ed_tensor_free(t);
    write_file(path, image, make_npy(image, 1, "{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }", f4, 4));
    assert_null(ed_npy_read_any(path));
    CHECK_ERROR_HAS("unsupported dtype '<f2' (edifice reads <f4, <f8 and integers of 1 to 8 bytes)");
    assert_int_equal(ed_npy_peek(path, descr, &shape), ED_ERR);
    assert_int_equal(ed_npy_peek(TMP_PREFIX "none.npy", descr, &shape), ED_ERR);
    CHECK_ERROR_HAS("none.npy: cannot open");
    unlink(path);
}

static void test_rejects_malformed_headers(void **state)
{
    (void)state;
    const float f[3] = {0};
    const struct {
        const char *dict, *part;
    } bad[] = {
        {"{'descr': '<f4', 'shape': (3,), }", "missing key 'fortran_order'"},
        {"{'descr': '<f4', 'fortran_order': False, }", "missing key 'shape'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3,), 'x': 1}", "unexpected key 'x'"},
        {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (3,)}", "twice"},
        {"{'descr' '<f4', 'fortran_order': False, 'shape': (3,)}", "expected ':'"},
        {"{'descr': '<f4', 'fortran_order': Nope, 'shape': (3,)}", "True or False"},
        {"{'descr': '<f4, 'fortran_order': False, 'shape': (3,)}", "malformed"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (-3,)}", "non-negative integer"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3 4)}", "',' or ')'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': 3}", "'('"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}", "fits in 64 bits"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3,)} junk", "only padding"},
        {"['descr', '<f4']", "'{'"},
        {"", "'{'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3,)", "',' or '}'"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) expect_parse_error(bad[k].dict, f, sizeof f, bad[k].part);
    /* Messages point at the offending byte of the file. */
    expect_parse_error("{'descr' '<f4'}", f, 0, "at byte 19");
}

static void test_rejects_truncated_and_trailing(void **state)
{
    (void)state;
    const double d[3] = {1, 2, 3};
    const char *dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }";
    expect_parse_error(dict, d, 12, "x.npy: truncated: header says 24 bytes of data, file has 12");
    expect_parse_error(dict, d, 0, "header says 24 bytes of data, file has 0");

    size_t n = make_npy(image, 1, dict, d, sizeof d);
    image[n] = 7;
    assert_null(ed_npy_parse(image, n + 1, "x.npy"));
    CHECK_ERROR_HAS("x.npy: 1 unexpected bytes after the data");

    /* Cut inside the header and inside the preamble. */
    assert_null(ed_npy_parse(image, 40, "x.npy"));
    CHECK_ERROR_HAS("x.npy: truncated: preamble says the header is 118 bytes, file has 30");
    assert_null(ed_npy_parse(image, 9, "x.npy"));
    CHECK_ERROR_HAS("x.npy: truncated");
    assert_null(ed_npy_parse(image, 3, "x.npy"));
    CHECK_ERROR_HAS("x.npy: truncated");
}

static void test_rejects_bad_magic_and_version(void **state)
{
    (void)state;
    assert_null(ed_npy_parse("PK\x03\x04 this is a zip", 20, "x.npy"));
    CHECK_ERROR_HAS("x.npy: not an .npy file (bad magic)");
    assert_null(ed_npy_parse("", 0, "x.npy"));
    CHECK_ERROR_HAS("bad magic");
    assert_null(ed_npy_parse(NULL, 0, NULL));
    CHECK_ERROR_HAS("npy: not an .npy file");

    const float f = 1;
    size_t n = make_npy(image, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': ()}", &f, 4);
    image[6] = 4;
    assert_null(ed_npy_parse(image, n, "x.npy"));
    CHECK_ERROR_HAS("x.npy: unsupported .npy format version 4.0 (edifice reads 1.0, 2.0, 3.0)");
    image[6] = 1;
    image[7] = 1;
    assert_null(ed_npy_parse(image, n, "x.npy"));
    CHECK_ERROR_HAS("version 1.1");

    /* A 2.0 header length of 4 GB is refused before anything is allocated. */
    n = make_npy(image, 2, "{'descr': '<f4', 'fortran_order': False, 'shape': ()}", &f, 4);
    memset(image + 8, 0xff, 4);
    assert_null(ed_npy_parse(image, n, "x.npy"));
    CHECK_ERROR_HAS("implausible .npy header length");
}

static void test_file_errors_name_the_file(void **state)
{
    (void)state;
    const char *missing = TMP_PREFIX "does_not_exist.npy";
    assert_null(ed_npy_read(missing));
    CHECK_ERROR_HAS(missing);
    CHECK_ERROR_HAS("cannot open: No such file");

    const char *path = TMP_PREFIX "bad.npy";
    unsigned char garbage[100];
    for (int i = 0; i < 100; i++) garbage[i] = (unsigned char)(i * 37 + 11);
    write_file(path, garbage, sizeof garbage);
    assert_null(ed_npy_read(path));
    CHECK_ERROR_HAS(TMP_PREFIX "bad.npy: not an .npy file (bad magic)");

    write_file(path, "", 0);
    assert_null(ed_npy_read(path));
    CHECK_ERROR_HAS("bad magic");

    const double d[3] = {1, 2, 3};
    size_t n = make_npy(image, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", d, sizeof d);
    write_file(path, image, n - 12);
    assert_null(ed_npy_read(path));
    CHECK_ERROR_HAS(TMP_PREFIX "bad.npy: truncated: header says 24 bytes of data, file has 12");

    write_file(path, image, 50);
    assert_null(ed_npy_read(path));
    CHECK_ERROR_HAS("truncated: preamble says the header is 118 bytes, file has 40");

    write_file(path, image, 9);
    assert_null(ed_npy_read(path));
    CHECK_ERROR_HAS("truncated");

    image[n] = 0;
    write_file(path, image, n + 1);
    assert_null(ed_npy_read(path));
    CHECK_ERROR_HAS("1 unexpected bytes after the data");

    n = make_npy(image, 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }", d, sizeof d);
    write_file(path, image, n);
    assert_null(ed_npy_read(path));
    CHECK_ERROR_HAS("bad.npy: unsupported dtype '<i8'");

    /* A huge shape over a tiny file fails on size, without trying to allocate it. */
    n = make_npy(image, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 4096), }", d, 8);
    write_file(path, image, n);
    assert_null(ed_npy_read(path));
    CHECK_ERROR_HAS("truncated: header says 18014398509481984 bytes of data, file has 8");

    n = make_npy(image, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4), }", d, 8);
    write_file(path, image, n);
    assert_null(ed_npy_read(path));
    CHECK_ERROR_HAS("too large");
    remove(path);

    assert_null(ed_npy_read(NULL));
    CHECK_ERROR_HAS("NULL path");
}

static void test_write_errors(void **state)
{
    (void)state;
    ed_tensor *t = ed_tensor_new(ED_F32, ed_shape1(4));
    assert_int_equal(ed_npy_write(ED_BINARY_DIR "/no_such_dir/x.npy", t), ED_ERR);
    CHECK_ERROR_HAS(ED_BINARY_DIR "/no_such_dir/x.npy: cannot write in directory");
    assert_int_equal(ed_npy_write(TMP_PREFIX "null.npy", NULL), ED_ERR);
    CHECK_ERROR_HAS("cannot write a NULL tensor");
    assert_int_equal(ed_npy_write(NULL, t), ED_ERR);
    CHECK_ERROR_HAS("NULL path");
    /* Writing over a directory fails before anything is written, and leaves nothing behind. */
    const char *dir = TMP_PREFIX "dir";
    rmdir(dir);
    assert_int_equal(mkdir(dir, 0777), 0);
    assert_int_equal(ed_npy_write(dir, t), ED_ERR);
    CHECK_ERROR_HAS("dir: is a directory; give a file name");
    assert_int_equal(rmdir(dir), 0);
    ed_tensor_free(t);
    assert_no_temp_files();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_every_dtype_and_rank),
        cmocka_unit_test(test_writer_matches_numpy_layout),
        cmocka_unit_test(test_overwrite_replaces),
        cmocka_unit_test(test_reads_versions_and_header_variants),
        cmocka_unit_test(test_rejects_bad_dtypes_and_layouts),
        cmocka_unit_test(test_read_any_integers),
        cmocka_unit_test(test_rejects_malformed_headers),
        cmocka_unit_test(test_rejects_truncated_and_trailing),
        cmocka_unit_test(test_rejects_bad_magic_and_version),
        cmocka_unit_test(test_file_errors_name_the_file),
        cmocka_unit_test(test_write_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
