/* The shared JSON reader (io/json.h): a document read back value by value, and every
 * kind of bad text refused with one line that names the source and the byte offset. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "io/json.h"
#include "runtime/error.h"
#include "support/error_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the walk below collects from {"name": ..., "dims": [...], "x": ...}. */
typedef struct {
    char *name;
    uint64_t dims[8];
    int ndims;
    double x;
    int members, skipped;
    char keys[8][16];
} doc;

static int read_dim(ed_json *j, void *ctx)
{
    doc *d = ctx;
    if (d->ndims == 8)
        return ed_fail("too many dims");
    return ed_json_uint(j, &d->dims[d->ndims++]);
}

static int read_member(ed_json *j, const char *key, void *ctx)
{
    doc *d = ctx;
    if (d->members < 8)
        snprintf(d->keys[d->members], sizeof d->keys[0], "%s", key);
    d->members++;
    if (strcmp(key, "name") == 0) {
        free(d->name);
        return ed_json_string(j, &d->name, NULL, NULL);
    }
    if (strcmp(key, "dims") == 0)
        return ed_json_array(j, "the dims", read_dim, d);
    if (strcmp(key, "x") == 0)
        return ed_json_number(j, &d->x);
    d->skipped++;
    return ed_json_skip(j);
}

/* Reads text as a whole document; ED_OK or ED_ERR with the message set. */
static int read_doc(const char *text, doc *d)
{
    memset(d, 0, sizeof *d);
    ed_json j;
    if (ed_json_init(&j, text, strlen(text), "f.json", "JSON text", 100) != ED_OK ||
        ed_json_object(&j, "the document", read_member, d) != ED_OK)
        return ED_ERR;
    return ed_json_end(&j, "the end of the text");
}

static void expect_refused(const char *text, const char *message)
{
    doc d;
    ed_clear_error();
    if (read_doc(text, &d) == ED_OK)
        fail_msg("accepted: %s", text);
    free(d.name);
    if (strncmp(ed_last_error(), "f.json: ", 8) != 0)
        fail_msg("the message does not name the source: %s", ed_last_error());
    CHECK_ERROR_HAS(message);
}

static void test_reads_a_document(void **state)
{
    (void)state;
    doc d;
    const char *text = " {\"name\": \"a\\\"b\\\\c\\/\\n\\u00e9\\ud83d\\ude00\",\n"
                       "  \"dims\": [0, 3, 4611686018427387903],\n"
                       "  \"x\": -1.5e3,\n"
                       "  \"other\": {\"t\": [true, false, null, {}, [], \"s\", 0, -0.25E-2, 12e+1]},\n"
                       "  \"empty\": \"\"}  ";
    if (read_doc(text, &d) != ED_OK)
        fail_msg("%s", ed_last_error());
    assert_string_equal(d.name, "a\"b\\c/\n\xc3\xa9\xf0\x9f\x98\x80");
    assert_int_equal(d.ndims, 3);
    assert_int_equal(d.dims[0], 0);
    assert_int_equal(d.dims[1], 3);
    assert_true(d.dims[2] == (UINT64_C(1) << 62) - 1);
    assert_true(d.x == -1500.0);
    assert_int_equal(d.members, 5);
    assert_int_equal(d.skipped, 2);
    free(d.name);
}

static void test_raw_string_position(void **state)
{
    (void)state;
    const char *text = "  \"ab\\tc\"";
    ed_json j;
    assert_int_equal(ed_json_init(&j, text, strlen(text), "s", "string", 0), ED_OK);
    char *s = NULL;
    size_t raw = 0, raw_len = 0;
    assert_int_equal(ed_json_string(&j, &s, &raw, &raw_len), ED_OK);
    assert_string_equal(s, "ab\tc");
    assert_int_equal(raw, 3);
    assert_int_equal(raw_len, 5);
    assert_int_equal(ed_json_end(&j, "the end"), ED_OK);
    free(s);
}

/* Duplicate keys are handed to the caller each time (it names them better). */
static void test_duplicate_keys_reach_the_caller(void **state)
{
    (void)state;
    doc d;
    assert_int_equal(read_doc("{\"k\": 1, \"k\": 2}", &d), ED_OK);
    assert_int_equal(d.members, 2);
    assert_string_equal(d.keys[0], "k");
    assert_string_equal(d.keys[1], "k");
}

static void test_truncated(void **state)
{
    (void)state;
    /* Offsets count from byte 100, where the text starts in its file. */
    expect_refused("", "at byte 100: expected '{' starting the document");
    expect_refused("{", "at byte 101: expected a string");
    expect_refused("{\"name\"", "at byte 107: expected ':' after a key");
    expect_refused("{\"name\": ", "at byte 109: expected a string");
    expect_refused("{\"name\": \"abc", "at byte 110: expected a closing quote");
    expect_refused("{\"name\": \"abc\"", "at byte 114: expected ',' or '}' in the document");
    expect_refused("{\"dims\": [1, 2", "at byte 114: expected ',' or ']' in the dims");
    expect_refused("{\"dims\": [1,", "at byte 112: expected a non-negative integer");
    expect_refused("{\"y\": [1, {\"a\": ", "at byte 116: expected a value");
    expect_refused("{\"y\": tru}", "at byte 106: expected a value");
    expect_refused("{\"name\": \"a\\u12\"}", "expected 4 hex digits after \\u");
    expect_refused("{} x", "at byte 103: expected the end of the text");
}

static void test_bad_escapes_and_strings(void **state)
{
    (void)state;
    expect_refused("{\"name\": \"a\\q\"}", "at byte 112: expected a valid escape");
    expect_refused("{\"name\": \"\\ud800\"}", "expected a low surrogate \\uDC00-\\uDFFF after a high one");
    expect_refused("{\"name\": \"\\ud800\\u0041\"}", "expected a low surrogate");
    expect_refused("{\"name\": \"\\udc00\"}", "expected a high surrogate before a low one");
    expect_refused("{\"name\": \"\\u0000\"}", "expected no \\u0000 in a string");
    expect_refused("{\"name\": \"a\tb\"}", "at byte 111: expected no raw control characters in a string");
    expect_refused("{\"name\": \"\\\"}", "expected a closing quote");
    expect_refused("{\"name\": \"a\xc3\x28\"}", "at byte 111: invalid UTF-8");
    expect_refused("{\"name\": \"\xed\xa0\x80\"}", "at byte 110: invalid UTF-8"); /* an encoded surrogate */
    expect_refused("{\"name\": \"\xc0\xaf\"}", "at byte 110: invalid UTF-8");     /* overlong */
}

static void test_bad_numbers(void **state)
{
    (void)state;
    expect_refused("{\"x\": 01}", "at byte 107: expected a number without leading zeros");
    expect_refused("{\"x\": 1.}", "at byte 108: expected a digit after the decimal point");
    expect_refused("{\"x\": 1e}", "at byte 108: expected a digit in the exponent");
    expect_refused("{\"x\": -}", "at byte 107: expected a number");
    expect_refused("{\"x\": +1}", "at byte 106: expected a number");
    expect_refused("{\"y\": .5}", "at byte 106: expected a value");
    expect_refused("{\"dims\": [2.0]}", "expected an integer (no fraction or exponent)");
    expect_refused("{\"dims\": [-2]}", "expected a non-negative integer");
    expect_refused("{\"dims\": [4611686018427387904]}", "expected an integer below 2^62");
    expect_refused("{\"dims\": [007]}", "expected an integer without leading zeros");
}

/* ED_JSON_MAX_DEPTH levels are read; one more is refused, in a skipped value too. */
static void test_nesting_depth(void **state)
{
    (void)state;
    char text[256] = "{\"y\": ";
    size_t at = strlen(text);
    for (int i = 1; i < ED_JSON_MAX_DEPTH; i++)
        text[at++] = '[';
    for (int i = 1; i < ED_JSON_MAX_DEPTH; i++)
        text[at++] = ']';
    text[at++] = '}';
    text[at] = '\0';
    doc d;
    if (read_doc(text, &d) != ED_OK)
        fail_msg("%s", ed_last_error());
    char deeper[256] = "{\"y\": ";
    at = strlen(deeper);
    for (int i = 0; i < ED_JSON_MAX_DEPTH; i++)
        deeper[at++] = '[';
    deeper[at] = '\0';
    expect_refused(deeper, "expected nesting at most 64 deep");
}

static void test_utf8_prefix(void **state)
{
    (void)state;
    assert_int_equal(ed_utf8_valid_prefix("abc", 3), 3);
    assert_int_equal(ed_utf8_valid_prefix("a\xc3\xa9z", 4), 4);
    assert_int_equal(ed_utf8_valid_prefix("ab\xff", 3), 2);
    assert_int_equal(ed_utf8_valid_prefix("a\xc3", 2), 1); /* cut in the middle */
    assert_int_equal(ed_utf8_valid_prefix("\xf4\x90\x80\x80", 4), 0); /* above U+10FFFF */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reads_a_document),
        cmocka_unit_test(test_raw_string_position),
        cmocka_unit_test(test_duplicate_keys_reach_the_caller),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_bad_escapes_and_strings),
        cmocka_unit_test(test_bad_numbers),
        cmocka_unit_test(test_nesting_depth),
        cmocka_unit_test(test_utf8_prefix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
