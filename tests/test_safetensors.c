/* safetensors checkpoints: bit-exact round trips of a store with its metadata, the
 * file layout, loading into an existing store, atomic replacement, and one specific
 * message for each way a file can be corrupt (plus every single-bit flip of a small
 * checkpoint is rejected). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "runtime/error.h"
#include "io/safetensors.h"
#include "runtime/store.h"
#include "runtime/tensor.h"
#include "support/error_check.h"

#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TMP ED_BINARY_DIR "/test_safetensors_"

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)size + 1);
    assert_int_equal(fread(buf, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    *n = (size_t)size;
    return buf;
}

static void spit(const char *path, const void *bytes, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* A hand-made file: the 8-byte length, header (unpadded), data. */
static void craft(const char *path, const char *header, const void *data, size_t data_len)
{
    size_t hn = strlen(header);
    unsigned char *buf = malloc(8 + hn + data_len + 1);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)hn >> (8 * i));
    memcpy(buf + 8, header, hn);
    if (data_len) memcpy(buf + 8 + hn, data, data_len);
    spit(path, buf, 8 + hn + data_len);
    free(buf);
}

/* A store with every dtype, a scalar, an empty tensor, special float values and a
 * non-trainable entry, named with characters JSON must escape. */
static ed_store *sample_store(uint64_t seed)
{
    ed_store *st = ed_store_new(seed);
    ed_init normal = {ED_INIT_NORMAL, 1.0};
    assert_non_null(ed_store_ensure(st, "enc.fc1.w", ED_F32, ed_shape2(3, 4), normal, true));
    ed_tensor *b = ed_store_ensure(st, "enc.fc1.b", ED_F32, ed_shape1(4), normal, true);
    float *bv = b->data;
    bv[0] = NAN;
    bv[1] = -INFINITY;
    bv[2] = -0.0f;
    bv[3] = 1e-45f; /* a denormal */
    ed_tensor *step = ed_store_ensure(st, "opt.step", ED_I32, ed_shape0(), (ed_init){ED_INIT_ZEROS, 0}, false);
    *(int32_t *)step->data = -123456789;
    assert_non_null(ed_store_ensure(st, "x64 \"quoted\"\\ tab\t é ✓", ED_F64, ed_shape3(2, 2, 2), normal, true));
    assert_non_null(ed_store_ensure(st, "empty", ED_F32, ed_shape2(0, 3), normal, false));
    return st;
}

static ed_meta *sample_meta(void)
{
    ed_meta *m = ed_meta_new();
    assert_int_equal(ed_meta_set(m, "model", "flow_matching"), ED_OK);
    assert_int_equal(ed_meta_set(m, "step", "1000"), ED_OK);
    assert_int_equal(ed_meta_set(m, "options", "{\"hidden\": 256,\n \"name\": \"ü\"}"), ED_OK);
    return m;
}

static void assert_same_store(const ed_store *a, const ed_store *b)
{
    assert_int_equal(ed_store_count(a), ed_store_count(b));
    assert_true(ed_store_seed(a) == ed_store_seed(b));
    for (int i = 0; i < ed_store_count(a); i++) {
        assert_string_equal(ed_store_name(a, i), ed_store_name(b, i));
        const ed_tensor *x = ed_store_tensor(a, i), *y = ed_store_tensor(b, i);
        assert_int_equal(x->dtype, y->dtype);
        assert_true(ed_shape_eq(x->shape, y->shape));
        assert_int_equal(ed_store_trainable(a, i), ed_store_trainable(b, i));
        if (ed_tensor_bytes(x)) assert_memory_equal(x->data, y->data, ed_tensor_bytes(x));
    }
}

static void assert_no_temp_files(void)
{
    DIR *d = opendir(ED_BINARY_DIR);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)))
        if (strncmp(e->d_name, "test_safetensors_", 17) == 0 && strstr(e->d_name, ".tmp"))
            fail_msg("temporary file left behind: %s", e->d_name);
    closedir(d);
}

/* ---- round trips ------------------------------------------------------------------------ */

static void test_meta_map(void **state)
{
    (void)state;
    ed_meta *m = ed_meta_new();
    assert_int_equal(ed_meta_count(m), 0);
    assert_null(ed_meta_get(m, "a"));
    assert_int_equal(ed_meta_set(m, "a", "1"), ED_OK);
    assert_int_equal(ed_meta_set(m, "b", "2"), ED_OK);
    assert_int_equal(ed_meta_set(m, "a", "3"), ED_OK); /* replaces, keeps position */
    assert_int_equal(ed_meta_count(m), 2);
    assert_string_equal(ed_meta_key(m, 0), "a");
    assert_string_equal(ed_meta_value(m, 0), "3");
    assert_string_equal(ed_meta_get(m, "b"), "2");
    assert_null(ed_meta_key(m, 2));
    assert_int_equal(ed_meta_set(m, "", "x"), ED_ERR);
    CHECK_ERROR_HAS("keys must be non-empty");
    ed_meta_free(m);
    ed_meta_free(NULL);
}

static void test_round_trip_bit_exact(void **state)
{
    (void)state;
    const char *path = TMP "rt.safetensors";
    ed_store *st = sample_store(0x1234567890abcdefULL);
    ed_meta *meta = sample_meta();
    assert_int_equal(ed_safetensors_save(path, st, meta), ED_OK);
    ed_meta *got_meta = NULL;
    ed_store *back = ed_safetensors_load(path, &got_meta);
    if (!back) fail_msg("%s", ed_last_error());
    assert_same_store(st, back);
    /* the caller's metadata comes back, in order; the reserved keys do not */
    assert_int_equal(ed_meta_count(got_meta), 3);
    for (int i = 0; i < 3; i++) {
        assert_string_equal(ed_meta_key(got_meta, i), ed_meta_key(meta, i));
        assert_string_equal(ed_meta_value(got_meta, i), ed_meta_value(meta, i));
    }
    assert_null(ed_meta_get(got_meta, "edifice.crc32"));
    /* saving what was loaded gives the same bytes */
    const char *again = TMP "rt2.safetensors";
    assert_int_equal(ed_safetensors_save(again, back, got_meta), ED_OK);
    size_t n1, n2;
    unsigned char *b1 = slurp(path, &n1), *b2 = slurp(again, &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(b1, b2, n1);
    free(b1);
    free(b2);
    assert_no_temp_files();
    ed_meta_free(meta);
    ed_meta_free(got_meta);
    ed_store_free(st);
    ed_store_free(back);
    unlink(path);
    unlink(again);
}

/* The layout the safetensors format defines: u64 LE header length (a multiple of 8,
 * padded with spaces), a JSON object listing the tensors in store order, then exactly
 * the tensors' bytes, the f64 ones first so each tensor is aligned to its element size
 * even after an odd number of 4-byte elements. */
static void test_file_layout(void **state)
{
    (void)state;
    const char *path = TMP "layout.safetensors";
    ed_store *st = ed_store_new(3);
    ed_tensor *w = ed_store_ensure(st, "w", ED_F32, ed_shape2(2, 3), (ed_init){ED_INIT_ONES, 0}, true);
    ((float *)w->data)[5] = 2.5f;
    ed_store_ensure(st, "k", ED_I32, ed_shape1(1), (ed_init){ED_INIT_ONES, 0}, false);
    ed_tensor *d = ed_store_ensure(st, "d", ED_F64, ed_shape1(2), (ed_init){ED_INIT_ZEROS, 0}, true);
    ((double *)d->data)[1] = -0.125;
    assert_int_equal(ed_safetensors_save(path, st, NULL), ED_OK);
    size_t n;
    unsigned char *b = slurp(path, &n);
    uint64_t hn = 0;
    for (int i = 7; i >= 0; i--) hn = hn << 8 | b[i];
    assert_int_equal(hn % 8, 0);
    assert_int_equal(n, 8 + hn + 16 + 24 + 4);
    char *header = strndup((const char *)b + 8, hn);
    assert_int_equal(header[0], '{');
    const char *tw = strstr(header, "\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[16,40]}");
    const char *tk = strstr(header, "\"k\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[40,44]}");
    const char *td = strstr(header, "\"d\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,16]}");
    assert_true(tw && tk && td && tw < tk && tk < td); /* listed in store order */
    assert_non_null(strstr(header, "\"edifice.trainable\":\"[\\\"w\\\",\\\"d\\\"]\""));
    assert_non_null(strstr(header, "\"edifice.seed\":\"3\""));
    double d1;
    memcpy(&d1, b + 8 + hn + 8, 8);
    assert_true(d1 == -0.125);
    float last;
    memcpy(&last, b + 8 + hn + 16 + 20, 4);
    assert_true(last == 2.5f);
    int32_t k0;
    memcpy(&k0, b + 8 + hn + 40, 4);
    assert_int_equal(k0, 1);
    free(header);
    free(b);
    ed_store *back = ed_safetensors_load(path, NULL);
    assert_string_equal(ed_store_name(back, 2), "d"); /* the store order comes back */
    assert_same_store(st, back);
    ed_store_free(back);
    ed_store_free(st);
    unlink(path);
}

/* A file another tool wrote: no edifice keys, keys in any order, escapes, whitespace,
 * an unknown field; every tensor loads as trainable with seed 0. */
static void test_foreign_file(void **state)
{
    (void)state;
    const char *path = TMP "foreign.safetensors";
    const float data[3] = {1, 2, 3};
    craft(path,
          "{ \"b\\u00e9\\ud83d\\ude00\" : { \"data_offsets\" : [4, 12], \"shape\": [2],"
          " \"dtype\": \"F32\", \"extra\": {\"x\": [1, -2.5e3, true, null]} },\n"
          "  \"__metadata__\": {\"format\": \"pt\"},"
          "  \"a\": {\"dtype\": \"F32\", \"shape\": [], \"data_offsets\": [0, 4]} }   ",
          data, sizeof data);
    ed_meta *meta = NULL;
    ed_store *st = ed_safetensors_load(path, &meta);
    if (!st) fail_msg("%s", ed_last_error());
    assert_int_equal(ed_store_count(st), 2);
    assert_string_equal(ed_store_name(st, 0), "b\xc3\xa9\xf0\x9f\x98\x80");
    assert_true(ed_store_trainable(st, 0) && ed_store_trainable(st, 1));
    assert_true(ed_store_seed(st) == 0);
    const float *bv = ed_store_get(st, "b\xc3\xa9\xf0\x9f\x98\x80")->data;
    assert_true(bv[0] == 2 && bv[1] == 3);
    assert_true(*(float *)ed_store_get(st, "a")->data == 1);
    assert_string_equal(ed_meta_get(meta, "format"), "pt");
    ed_meta_free(meta);
    ed_store_free(st);
    unlink(path);
}

/* ---- loading into an existing store --------------------------------------------------- */

static void test_load_into(void **state)
{
    (void)state;
    const char *path = TMP "into.safetensors";
    ed_store *saved = sample_store(1);
    assert_int_equal(ed_safetensors_save(path, saved, NULL), ED_OK);

    /* a store built independently (different seed, so different values) gets the file's
     * values copied into its own tensors: pointers held elsewhere stay valid */
    ed_store *st = sample_store(2);
    ed_tensor *w = ed_store_get(st, "enc.fc1.w");
    assert_memory_not_equal(w->data, ed_store_get(saved, "enc.fc1.w")->data, 48);
    assert_int_equal(ed_safetensors_load_into(path, st, true, NULL), ED_OK);
    assert_ptr_equal(ed_store_get(st, "enc.fc1.w"), w);
    assert_memory_equal(w->data, ed_store_get(saved, "enc.fc1.w")->data, 48);
    assert_true(ed_store_seed(st) == 2);

    /* a mismatching type: an error naming both, and nothing changes */
    ed_store *other = ed_store_new(5);
    ed_tensor *ow = ed_store_ensure(other, "enc.fc1.w", ED_F32, ed_shape2(4, 4), (ed_init){ED_INIT_ONES, 0}, true);
    assert_int_equal(ed_safetensors_load_into(path, other, false, NULL), ED_ERR);
    CHECK_ERROR_HAS("tensor 'enc.fc1.w' is f32[3,4] in the file but f32[4,4] in the store");
    assert_int_equal(ed_store_count(other), 1);
    assert_true(((float *)ow->data)[0] == 1);
    ed_store_free(other);

    /* exact: an extra name in the file, or one missing from it, is an error */
    other = ed_store_new(5);
    ed_store_ensure(other, "enc.fc1.w", ED_F32, ed_shape2(3, 4), (ed_init){ED_INIT_ONES, 0}, true);
    assert_int_equal(ed_safetensors_load_into(path, other, true, NULL), ED_ERR);
    CHECK_ERROR_HAS("is in the file but not in the store");
    assert_int_equal(ed_store_count(other), 1);
    /* not exact: the missing entries are added with the file's trainable flags */
    assert_int_equal(ed_safetensors_load_into(path, other, false, NULL), ED_OK);
    assert_int_equal(ed_store_count(other), 5);
    assert_false(ed_store_trainable(other, 2)); /* opt.step, added third */
    ed_store_ensure(other, "dec.w", ED_F32, ed_shape1(2), (ed_init){ED_INIT_ONES, 0}, true);
    assert_int_equal(ed_safetensors_load_into(path, other, true, NULL), ED_ERR);
    CHECK_ERROR_HAS("the store's tensor 'dec.w' is missing from the file");
    ed_store_free(other);
    ed_store_free(st);
    ed_store_free(saved);
    unlink(path);
}

/* ---- atomic replacement ------------------------------------------------------------------ */

static void test_atomic_replace(void **state)
{
    (void)state;
    const char *path = TMP "atomic.safetensors";
    ed_store *a = sample_store(1), *b = sample_store(2);
    assert_int_equal(ed_safetensors_save(path, a, NULL), ED_OK);
    size_t n_old;
    unsigned char *old = slurp(path, &n_old);
    /* a reader that has the old checkpoint open keeps seeing all of it: the new file is
     * a different file renamed over the name, never the old one rewritten in place */
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(ed_safetensors_save(path, b, NULL), ED_OK);
    unsigned char *seen = malloc(n_old);
    assert_int_equal(pread(fd, seen, n_old, 0), (ssize_t)n_old);
    assert_memory_equal(seen, old, n_old);
    close(fd);
    ed_store *back = ed_safetensors_load(path, NULL);
    assert_same_store(b, back);
    ed_store_free(back);

    /* a save that fails leaves the previous checkpoint as it was */
    ed_meta *bad = ed_meta_new();
    ed_meta_set(bad, "edifice.step", "3");
    size_t n_before;
    unsigned char *before = slurp(path, &n_before);
    assert_int_equal(ed_safetensors_save(path, a, bad), ED_ERR);
    CHECK_ERROR_HAS("metadata key 'edifice.step' is reserved");
    size_t n_after;
    unsigned char *after = slurp(path, &n_after);
    assert_int_equal(n_before, n_after);
    assert_memory_equal(before, after, n_before);
    assert_int_equal(ed_safetensors_save(ED_BINARY_DIR "/no/such/dir/x.safetensors", a, NULL), ED_ERR);
    CHECK_ERROR_HAS("cannot write in directory");
    assert_no_temp_files();
    ed_meta_free(bad);
    free(old);
    free(seen);
    free(before);
    free(after);
    ed_store_free(a);
    ed_store_free(b);
    unlink(path);
}

static void test_save_rejects_bad_names(void **state)
{
    (void)state;
    ed_store *st = ed_store_new(0);
    ed_store_ensure(st, "bad\xff", ED_F32, ed_shape1(1), (ed_init){ED_INIT_ONES, 0}, true);
    assert_int_equal(ed_safetensors_save(TMP "badname.safetensors", st, NULL), ED_ERR);
    CHECK_ERROR_HAS("tensor name #0 is not valid UTF-8");
    assert_int_equal(ed_safetensors_save(NULL, st, NULL), ED_ERR);
    assert_int_equal(ed_safetensors_save(TMP "x.safetensors", NULL, NULL), ED_ERR);
    CHECK_ERROR_HAS("cannot save a NULL store");
    ed_store_free(st);
    assert_no_temp_files();
}

/* ---- corrupt files: one specific message each ------------------------------------------------ */

static const char *const CORRUPT = TMP "corrupt.safetensors";

static void expect_rejected(const char *part)
{
    ed_store *st = ed_safetensors_load(CORRUPT, NULL);
    if (st) {
        ed_store_free(st);
        fail_msg("a corrupt file loaded (expected \"%s\")", part);
    }
    CHECK_ERROR_HAS(CORRUPT);
    CHECK_ERROR_HAS(part);
}

static void test_rejects_truncation(void **state)
{
    (void)state;
    ed_store *st = sample_store(9);
    assert_int_equal(ed_safetensors_save(CORRUPT, st, NULL), ED_OK);
    size_t n;
    unsigned char *good = slurp(CORRUPT, &n);
    spit(CORRUPT, good, 5);
    expect_rejected("truncated: 5 bytes, shorter than the 8-byte header length");
    spit(CORRUPT, good, 100);
    expect_rejected("truncated: the header length says");
    spit(CORRUPT, good, n - 1);
    expect_rejected("truncated: the tensors need");
    unsigned char *longer = malloc(n + 3);
    memcpy(longer, good, n);
    memset(longer + n, 0, 3);
    spit(CORRUPT, longer, n + 3);
    expect_rejected("3 unexpected bytes after the last tensor");
    spit(CORRUPT, good, 0);
    expect_rejected("truncated: 0 bytes");
    unsigned char huge[16] = {0, 0, 0, 0, 0, 1, 0, 0, '{', '}'};
    spit(CORRUPT, huge, sizeof huge);
    expect_rejected("exceeds the format's limit");
    free(longer);
    free(good);
    ed_store_free(st);
    assert_null(ed_safetensors_load(TMP "missing.safetensors", NULL));
    CHECK_ERROR_HAS("cannot open");
    unlink(CORRUPT);
}

static void test_rejects_bad_json(void **state)
{
    (void)state;
    const float d[2] = {1, 2};
    craft(CORRUPT, "[]", NULL, 0);
    expect_rejected("bad JSON header at byte 8: expected '{' starting the header");
    craft(CORRUPT, "{\"a\" {}}", NULL, 0);
    expect_rejected("bad JSON header at byte 13: expected ':' after a key");
    craft(CORRUPT, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", d, 8);
    expect_rejected("expected ',' or '}' in the header");
    craft(CORRUPT, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}} x", d, 8);
    expect_rejected("expected only spaces after the header object");
    craft(CORRUPT, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", d, 8);
    expect_rejected("expected an integer (no fraction or exponent)");
    craft(CORRUPT, "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", d, 8);
    expect_rejected("expected a non-negative integer");
    craft(CORRUPT, "{\"a\\ud800\":{}}", NULL, 0);
    expect_rejected("a low surrogate");
    craft(CORRUPT, "{\"a\\q\":{}}", NULL, 0);
    expect_rejected("a valid escape");
    craft(CORRUPT, "{\"a\xc3\x28\":{}}", NULL, 0);
    expect_rejected("bad JSON header at byte 11: invalid UTF-8");
    craft(CORRUPT, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", d, 8);
    expect_rejected("tensor 'a': missing \"data_offsets\"");
    craft(CORRUPT, "{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\"}}", d, 8);
    expect_rejected("tensor 'a': \"dtype\" appears twice");
    craft(CORRUPT, "{\"__metadata__\":{\"k\":1}}", NULL, 0);
    expect_rejected("expected a string value in __metadata__");
    craft(CORRUPT, "{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", NULL, 0);
    expect_rejected("metadata key 'k' appears twice");
    craft(CORRUPT, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", d, 4);
    expect_rejected("rank above edifice's maximum of 6");
    char deep[300] = "{\"a\":{\"x\":";
    for (int i = 0; i < 70; i++) strcat(deep, "[");
    craft(CORRUPT, deep, NULL, 0);
    expect_rejected("nesting at most 64 deep");
}

static void test_rejects_bad_tensors(void **state)
{
    (void)state;
    const double d[4] = {1, 2, 3, 4};
    craft(CORRUPT, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", d, 8);
    expect_rejected("tensor 'a': data_offsets [8, 16] are out of range (the data buffer has 8 "
                    "bytes)");
    craft(CORRUPT, "{\"a\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,8]}}", d, 8);
    expect_rejected("tensor 'a': f64[2] needs 16 bytes but data_offsets [0, 8] hold 8 (dtype "
                    "or shape does not match the data)");
    craft(CORRUPT, "{\"a\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[0,8]}}", d, 8);
    expect_rejected("tensor 'a': dtype 'BF16' is not supported (edifice reads F32, I32, F64)");
    craft(CORRUPT, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", d, 8);
    expect_rejected("data_offsets [8, 0] are reversed");
    craft(CORRUPT,
          "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
          "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[16,24]}}",
          d, 24);
    expect_rejected("bytes 8..16 of the data belong to no tensor");
    craft(CORRUPT,
          "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
          "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
          d, 12);
    expect_rejected("overlaps tensor");
    craft(CORRUPT,
          "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
          "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
          d, 16);
    expect_rejected("tensor 'a' appears twice");
    craft(CORRUPT, "{\"\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", d, 8);
    expect_rejected("a tensor has an empty name");
    craft(CORRUPT,
          "{\"__metadata__\":{\"edifice.format\":\"1\"},"
          "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
          d, 8);
    expect_rejected("corrupt: an edifice checkpoint without its edifice.crc32 checksum");
    craft(CORRUPT,
          "{\"__metadata__\":{\"edifice.format\":\"2\",\"edifice.crc32\":\"00000000\"},"
          "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
          d, 8);
    expect_rejected("checkpoint format '2' is not supported");
    craft(CORRUPT,
          "{\"__metadata__\":{\"edifice.format\":\"1\",\"edifice.crc32\":\"0000000G\"},"
          "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
          d, 8);
    expect_rejected("edifice.crc32 is '0000000G', not 8 lower-case hex digits");
    craft(CORRUPT,
          "{\"__metadata__\":{\"edifice.format\":\"1\",\"edifice.crc32\":\"00000000\","
          "\"edifice.trainable\":\"[\\\"b\\\"]\"},"
          "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
          d, 8);
    expect_rejected("edifice.trainable names 'b', which is not in the file");
}

static void test_rejects_checksum_mismatch(void **state)
{
    (void)state;
    ed_store *st = sample_store(4);
    assert_int_equal(ed_safetensors_save(CORRUPT, st, NULL), ED_OK);
    size_t n;
    unsigned char *b = slurp(CORRUPT, &n);
    b[n - 40] ^= 0x10; /* a bit in the f64 tensor's data */
    spit(CORRUPT, b, n);
    expect_rejected("corrupt: checksum mismatch (the file says crc32 ");
    free(b);
    ed_store_free(st);
}

/* A key in edifice's namespace that this version does not know is refused, not handed to
 * the caller (whose metadata no save accepts back: the fuzzer's first finding). */
static void test_rejects_unknown_reserved_key(void **state)
{
    (void)state;
    ed_store *st = sample_store(2);
    ed_meta *m = ed_meta_new();
    ed_meta_set(m, "edifizz.future", "1");
    assert_int_equal(ed_safetensors_save(CORRUPT, st, m), ED_OK);
    size_t n;
    unsigned char *b = slurp(CORRUPT, &n);
    size_t at = 0;
    while (at + 8 <= n && memcmp(b + at, "edifizz.", 8) != 0) at++;
    assert_true(at + 8 <= n);
    memcpy(b + at, "edifice.", 8);
    spit(CORRUPT, b, n);
    expect_rejected("unknown reserved metadata key 'edifice.future'");
    free(b);
    ed_meta_free(m);
    ed_store_free(st);
}

/* Every single-bit flip anywhere in a small checkpoint (length field, header, padding,
 * data) is rejected. */
static void test_every_bit_flip_rejected(void **state)
{
    (void)state;
    ed_store *st = ed_store_new(1);
    ed_store_ensure(st, "w", ED_F32, ed_shape1(3), (ed_init){ED_INIT_NORMAL, 1}, true);
    ed_store_ensure(st, "s", ED_I32, ed_shape0(), (ed_init){ED_INIT_ZEROS, 0}, false);
    ed_meta *m = ed_meta_new();
    ed_meta_set(m, "model", "ddpm");
    assert_int_equal(ed_safetensors_save(CORRUPT, st, m), ED_OK);
    size_t n;
    unsigned char *good = slurp(CORRUPT, &n);
    for (size_t i = 0; i < n; i++) {
        for (int bit = 0; bit < 8; bit++) {
            good[i] ^= (unsigned char)(1u << bit);
            spit(CORRUPT, good, n);
            good[i] ^= (unsigned char)(1u << bit);
            ed_store *bad = ed_safetensors_load(CORRUPT, NULL);
            if (bad) {
                ed_store_free(bad);
                fail_msg("flipping bit %d of byte %zu (of %zu) went unnoticed", bit, i, n);
            }
            CHECK_ERROR_HAS(CORRUPT);
        }
    }
    spit(CORRUPT, good, n);
    ed_store *ok = ed_safetensors_load(CORRUPT, NULL);
    assert_non_null(ok);
    ed_store_free(ok);
    free(good);
    ed_meta_free(m);
    ed_store_free(st);
    unlink(CORRUPT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_meta_map),
        cmocka_unit_test(test_round_trip_bit_exact),
        cmocka_unit_test(test_file_layout),
        cmocka_unit_test(test_foreign_file),
        cmocka_unit_test(test_load_into),
        cmocka_unit_test(test_atomic_replace),
        cmocka_unit_test(test_save_rejects_bad_names),
        cmocka_unit_test(test_rejects_truncation),
        cmocka_unit_test(test_rejects_bad_json),
        cmocka_unit_test(test_rejects_bad_tensors),
        cmocka_unit_test(test_rejects_checksum_mismatch),
        cmocka_unit_test(test_rejects_unknown_reserved_key),
        cmocka_unit_test(test_every_bit_flip_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
