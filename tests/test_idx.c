/* IDX reader: small files written here (plain and gzip, good and bad), and the real
 * Fashion-MNIST test set that scripts/install-deps.sh installs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "io/idx.h"
#include "runtime/error.h"
#include "support/error_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define TMP ED_BINARY_DIR "/test_idx_"
#define FASHION "/usr/share/datasets/fashion-mnist/"

/* Writes n bytes as a plain file, or gzip-compressed when gz. */
static void write_bytes(const char *path, const unsigned char *b, size_t n, bool gz)
{
    if (gz) {
        gzFile f = gzopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(gzwrite(f, b, (unsigned)n), (int)n);
        assert_int_equal(gzclose(f), Z_OK);
        return;
    }
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* u8 [2, 3, 2]: 0..11, written plain and gzipped: the same array either way. */
static void test_read_u8(void **state)
{
    (void)state;
    unsigned char b[4 + 12 + 12] = {0, 0, 0x08, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 2};
    for (int i = 0; i < 12; i++) b[16 + i] = (unsigned char)(i * 20);
    for (int gz = 0; gz < 2; gz++) {
        const char *path = gz ? TMP "u8.idx.gz" : TMP "u8.idx";
        write_bytes(path, b, 28, gz);
        ed_idx a;
        assert_int_equal(ed_idx_read(path, &a), ED_OK);
        assert_int_equal(a.type, ED_IDX_U8);
        assert_true(ed_shape_eq(a.shape, ed_shape3(2, 3, 2)));
        for (int i = 0; i < 12; i++) assert_true(ed_idx_get(&a, i) == i * 20);
        ed_idx_free(&a);
        assert_null(a.data);
        unlink(path);
    }
}

/* Big-endian elements of every wider type come back in host order with their sign. */
static void test_read_wide_types(void **state)
{
    (void)state;
    const char *path = TMP "wide.idx.gz";
    unsigned char i16[] = {0, 0, 0x0B, 1, 0, 0, 0, 2, 0x01, 0x02, 0xff, 0xfe};
    write_bytes(path, i16, sizeof i16, true);
    ed_idx a;
    assert_int_equal(ed_idx_read(path, &a), ED_OK);
    assert_string_equal(ed_idx_type_name(a.type), "i16");
    assert_true(ed_idx_get(&a, 0) == 258 && ed_idx_get(&a, 1) == -2);
    ed_idx_free(&a);
    unsigned char i32[] = {0, 0, 0x0C, 1, 0, 0, 0, 1, 0x80, 0, 0, 1};
    write_bytes(path, i32, sizeof i32, true);
    assert_int_equal(ed_idx_read(path, &a), ED_OK);
    assert_true(ed_idx_get(&a, 0) == (double)INT32_MIN + 1);
    ed_idx_free(&a);
    unsigned char f32[] = {0, 0, 0x0D, 1, 0, 0, 0, 1, 0xc0, 0x20, 0, 0}; /* -2.5f */
    write_bytes(path, f32, sizeof f32, false);
    assert_int_equal(ed_idx_read(path, &a), ED_OK);
    assert_true(ed_idx_get(&a, 0) == -2.5);
    ed_idx_free(&a);
    unsigned char f64[] = {0, 0, 0x0E, 1, 0, 0, 0, 1, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0}; /* 1.5 */
    write_bytes(path, f64, sizeof f64, true);
    assert_int_equal(ed_idx_read(path, &a), ED_OK);
    assert_true(ed_idx_get(&a, 0) == 1.5);
    ed_idx_free(&a);
    unsigned char i8[] = {0, 0, 0x09, 1, 0, 0, 0, 1, 0xff};
    write_bytes(path, i8, sizeof i8, false);
    assert_int_equal(ed_idx_read(path, &a), ED_OK);
    assert_true(ed_idx_get(&a, 0) == -1);
    ed_idx_free(&a);
    unlink(path);
}

/* Reads the bytes back as an IDX file and expects the error to name the file and say part. */
static void expect_bad(const unsigned char *b, size_t n, bool gz, const char *part)
{
    const char *path = gz ? TMP "bad.idx.gz" : TMP "bad.idx";
    write_bytes(path, b, n, gz);
    ed_idx a = {.type = 99};
    assert_int_equal(ed_idx_read(path, &a), ED_ERR);
    assert_null(a.data);
    assert_int_equal(a.type, 0);
    CHECK_ERROR_HAS(path);
    CHECK_ERROR_HAS(part);
    unlink(path);
}

static void test_bad_files(void **state)
{
    (void)state;
    const unsigned char npy[] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0};
    const unsigned char type7[] = {0, 0, 0x07, 1, 0, 0, 0, 1, 5};
    const unsigned char rank0[] = {0, 0, 0x08, 0};
    const unsigned char rank7[] = {0, 0, 0x08, 7};
    const unsigned char short_dims[] = {0, 0, 0x08, 2, 0, 0, 0, 3, 0, 0};
    const unsigned char short_data[] = {0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3};
    const unsigned char long_data[] = {0, 0, 0x08, 1, 0, 0, 0, 2, 1, 2, 3};
    const unsigned char huge[] = {0, 0, 0x0E, 4, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                  0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    const unsigned char big[] = {0, 0, 0x08, 3, 0, 0, 0x27, 0x10, 0, 0, 0x27, 0x10, 0, 0, 0x27, 0x10, 7};
    for (int gz = 0; gz < 2; gz++) {
        expect_bad(npy, sizeof npy, gz, "not an IDX file (bad magic 93 4e 55 4d: expected 00 00 TYPE RANK)");
        expect_bad(npy, 2, gz, "shorter than an IDX header");
        expect_bad(type7, sizeof type7, gz, "unknown IDX type code 0x07 (expected 0x08 u8");
        expect_bad(rank0, sizeof rank0, gz, "IDX rank 0 is outside 1..6");
        expect_bad(rank7, sizeof rank7, gz, "IDX rank 7 is outside 1..6");
        expect_bad(short_dims, sizeof short_dims, gz, "the file ends inside the 2 dims");
        expect_bad(short_data, sizeof short_data, gz, "truncated");
        expect_bad(long_data, sizeof long_data, gz, "1 unexpected bytes after the data");
        expect_bad(huge, sizeof huge, gz, "overflow the address space");
    }
    /* plain: the size check happens before any allocation and names both counts */
    expect_bad(short_data, sizeof short_data, false, "dims 2 x 2 of u8 need 4 bytes of data, the file has 3");
    expect_bad(short_data, sizeof short_data, true, "need 4 bytes of data, the file has 3");
    /* 10^12 bytes promised by a gzip file of a few dozen bytes */
    expect_bad(big, sizeof big, true, "dims 10000 x 10000 x 10000 of u8 need 1000000000000 bytes of data, "
                                      "more than a gzip file of");
    expect_bad(big, sizeof big, false, "the file has 1");
    /* a gzip stream cut in the middle */
    unsigned char good[4 + 4 + 400] = {0, 0, 0x08, 1, 0, 0, 0x01, 0x90};
    for (int i = 0; i < 400; i++) good[8 + i] = (unsigned char)(i * 7919 >> 3);
    const char *path = TMP "cut.idx.gz";
    write_bytes(path, good, sizeof good, true);
    FILE *f = fopen(path, "rb");
    unsigned char z[2048];
    size_t n = fread(z, 1, sizeof z, f);
    fclose(f);
    write_bytes(path, z, n / 2, false);
    ed_idx a;
    assert_int_equal(ed_idx_read(path, &a), ED_ERR);
    CHECK_ERROR_HAS(path);
    unlink(path);
    assert_int_equal(ed_idx_read(TMP "no-such-file.idx", &a), ED_ERR);
    CHECK_ERROR_HAS("no-such-file.idx: cannot open: No such file or directory");
    assert_int_equal(ed_idx_read(NULL, &a), ED_ERR);
}

/* The real Fashion-MNIST test set (Debian's dataset-fashion-mnist). */
static void test_fashion_mnist_test_set(void **state)
{
    (void)state;
    if (access(FASHION "t10k-images-idx3-ubyte.gz", R_OK) != 0)
        fail_msg(FASHION " is missing: run scripts/install-deps.sh (package dataset-fashion-mnist)");
    ed_idx img, lab;
    assert_int_equal(ed_idx_read(FASHION "t10k-images-idx3-ubyte.gz", &img), ED_OK);
    assert_int_equal(img.type, ED_IDX_U8);
    assert_true(ed_shape_eq(img.shape, ed_shape3(10000, 28, 28)));
    /* the first image (an ankle boot): its pixel sum, its first ink, one row */
    double sum = 0;
    for (int i = 0; i < 784; i++) sum += ed_idx_get(&img, i);
    assert_true(sum == 33456);
    assert_true(ed_idx_get(&img, 214) == 0 && ed_idx_get(&img, 215) == 3 && ed_idx_get(&img, 221) == 37);
    assert_true(ed_idx_get(&img, 14 * 28 + 14) == 0x6e);
    ed_idx_free(&img);
    assert_int_equal(ed_idx_read(FASHION "t10k-labels-idx1-ubyte.gz", &lab), ED_OK);
    assert_true(ed_shape_eq(lab.shape, ed_shape1(10000)));
    const int first[] = {9, 2, 1, 1, 6, 1, 4, 6, 5, 7};
    for (int i = 0; i < 10; i++) assert_true(ed_idx_get(&lab, i) == first[i]);
    ed_idx_free(&lab);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_u8),
        cmocka_unit_test(test_read_wide_types),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_fashion_mnist_test_set),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
