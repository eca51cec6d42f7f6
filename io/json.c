/* The JSON pull reader: a cursor over the text, one function per kind of value. */
#include "io/json.h"
#include "runtime/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- UTF-8 ------------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0 if it is invalid
 * (overlong forms, surrogates and code points above U+10FFFF are invalid). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    if (s[0] < 0x80)
        return 1;
    size_t len = s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC0 ? 2 : 0;
    if (len == 0 || len > n || s[0] > 0xF4)
        return 0;
    uint32_t cp = s[0] & (0x7F >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

size_t ed_utf8_valid_prefix(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        size_t len = utf8_seq(u + i, n - i);
        if (len == 0)
            return i;
        i += len;
    }
    return n;
}

static size_t put_utf8(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* ---- the cursor -------------------------------------------------------------------- */

int ed_json_init(ed_json *j, const char *text, size_t len, const char *source, const char *what,
                 size_t offset)
{
    *j = (ed_json){.base = text, .p = text, .end = text + len, .source = source, .what = what,
                   .offset = offset};
    size_t good = ed_utf8_valid_prefix(text, len);
    if (good < len)
        return ed_fail("%s: bad %s at byte %zu: invalid UTF-8", source, what, offset + good);
    return ED_OK;
}

int ed_json_fail(const ed_json *j, const char *expected)
{
    return ed_fail("%s: bad %s at byte %zu: expected %s", j->source, j->what,
                   j->offset + (size_t)(j->p - j->base), expected);
}

static void skip_space(ed_json *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

char ed_json_peek(ed_json *j)
{
    skip_space(j);
    return j->p < j->end ? *j->p : 0;
}

bool ed_json_accept(ed_json *j, char ch)
{
    if (ed_json_peek(j) != ch || j->p == j->end)
        return false;
    j->p++;
    return true;
}

int ed_json_expect(ed_json *j, char ch, const char *expected)
{
    return ed_json_accept(j, ch) ? ED_OK : ed_json_fail(j, expected);
}

static bool accept_word(ed_json *j, const char *word)
{
    size_t n = strlen(word);
    skip_space(j);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0)
        return false;
    j->p += n;
    return true;
}

bool ed_json_accept_null(ed_json *j) { return accept_word(j, "null"); }

int ed_json_end(ed_json *j, const char *expected)
{
    skip_space(j);
    return j->p == j->end ? ED_OK : ed_json_fail(j, expected);
}

/* ---- strings ----------------------------------------------------------------------- */

static int hex4(ed_json *j, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++, j->p++) {
        char h = j->p < j->end ? *j->p : 0;
        int d = h >= '0' && h <= '9'   ? h - '0'
                : h >= 'a' && h <= 'f' ? h - 'a' + 10
                : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                       : -1;
        if (d < 0)
            return ed_json_fail(j, "4 hex digits after \\u");
        v = v << 4 | (uint32_t)d;
    }
    *out = v;
    return ED_OK;
}

/* A \u escape (j->p just after the 'u'), with surrogate pairs, appended to out. */
static int unicode_escape(ed_json *j, char *out, size_t *len)
{
    uint32_t cp, lo;
    if (hex4(j, &cp) != ED_OK)
        return ED_ERR;
    if (cp >= 0xDC00 && cp <= 0xDFFF)
        return ed_json_fail(j, "a high surrogate before a low one");
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (j->end - j->p < 2 || j->p[0] != '\\' || j->p[1] != 'u')
            return ed_json_fail(j, "a low surrogate \\uDC00-\\uDFFF after a high one");
        j->p += 2;
        if (hex4(j, &lo) != ED_OK)
            return ED_ERR;
        if (lo < 0xDC00 || lo > 0xDFFF)
            return ed_json_fail(j, "a low surrogate \\uDC00-\\uDFFF after a high one");
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    }
    if (cp == 0)
        return ed_json_fail(j, "no \\u0000 in a string");
    *len += put_utf8(cp, out + *len);
    return ED_OK;
}

static int simple_escape(ed_json *j, char *out, size_t *len)
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    const char *hit = j->p < j->end && *j->p ? strchr(from, *j->p) : NULL;
    if (!hit)
        return ed_json_fail(j, "a valid escape (\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)");
    out[(*len)++] = to[hit - from];
    j->p++;
    return ED_OK;
}

/* The decoded string is never longer than its raw bytes: an escape of n bytes decodes
 * to at most n (\uXXXX: 6 -> 3, a surrogate pair: 12 -> 4). */
int ed_json_string(ed_json *j, char **out, size_t *raw, size_t *raw_len)
{
    if (!ed_json_accept(j, '"'))
        return ed_json_fail(j, "a string");
    const char *start = j->p, *q = j->p;
    while (q < j->end && *q != '"')
        q += *q == '\\' && q + 1 < j->end ? 2 : 1;
    if (q >= j->end)
        return ed_json_fail(j, "a closing quote");
    char *s = malloc((size_t)(q - start) + 1);
    if (!s)
        return ed_fail("%s: out of memory reading the %s", j->source, j->what);
    size_t len = 0;
    int status = ED_OK;
    while (status == ED_OK && j->p < q) {
        if ((unsigned char)*j->p < 0x20) {
            status = ed_json_fail(j, "no raw control characters in a string");
        } else if (*j->p == '\\') {
            j->p++;
            status = *j->p == 'u' ? (j->p++, unicode_escape(j, s, &len)) : simple_escape(j, s, &len);
        } else {
            s[len++] = *j->p++;
        }
    }
    if (status != ED_OK || j->p != q) { /* an escape ran past the closing quote */
        free(s);
        return status != ED_OK ? status : ed_json_fail(j, "a complete escape");
    }
    j->p++;
    s[len] = '\0';
    if (raw)
        *raw = (size_t)(start - j->base);
    if (raw_len)
        *raw_len = (size_t)(q - start);
    if (out)
        *out = s;
    else
        free(s);
    return ED_OK;
}

/* ---- numbers ----------------------------------------------------------------------- */

static bool is_digit(const ed_json *j, const char *p) { return p < j->end && *p >= '0' && *p <= '9'; }

/* Sets the error at `at`; returns NULL for scan_number. */
static const char *number_error(ed_json *j, const char *at, const char *expected)
{
    j->p = at;
    ed_json_fail(j, expected);
    return NULL;
}

/* The end of the number starting at j->p (after whitespace) by the JSON grammar
 * -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?, or NULL with the error set. */
static const char *scan_number(ed_json *j)
{
    skip_space(j);
    const char *p = j->p;
    if (p < j->end && *p == '-')
        p++;
    if (!is_digit(j, p))
        return number_error(j, p, "a number");
    if (*p == '0' && is_digit(j, p + 1))
        return number_error(j, p + 1, "a number without leading zeros");
    while (is_digit(j, p))
        p++;
    if (p < j->end && *p == '.') {
        if (!is_digit(j, ++p))
            return number_error(j, p, "a digit after the decimal point");
        while (is_digit(j, p))
            p++;
    }
    if (p < j->end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < j->end && (*p == '+' || *p == '-'))
            p++;
        if (!is_digit(j, p))
            return number_error(j, p, "a digit in the exponent");
        while (is_digit(j, p))
            p++;
    }
    return p;
}

int ed_json_number(ed_json *j, double *out)
{
    const char *end = scan_number(j);
    if (!end)
        return ED_ERR;
    size_t n = (size_t)(end - j->p);
    char *copy = malloc(n + 1); /* strtod needs a terminated string; the text is not */
    if (!copy)
        return ed_fail("%s: out of memory reading the %s", j->source, j->what);
    memcpy(copy, j->p, n);
    copy[n] = '\0';
    *out = strtod(copy, NULL);
    free(copy);
    j->p = end;
    return ED_OK;
}

int ed_json_uint(ed_json *j, uint64_t *out)
{
    skip_space(j);
    if (!is_digit(j, j->p))
        return ed_json_fail(j, "a non-negative integer");
    if (*j->p == '0' && is_digit(j, j->p + 1))
        return ed_json_fail(j, "an integer without leading zeros");
    uint64_t v = 0;
    while (is_digit(j, j->p)) {
        unsigned d = (unsigned)(*j->p - '0');
        if (v > ((UINT64_C(1) << 62) - 1 - d) / 10)
            return ed_json_fail(j, "an integer below 2^62");
        v = v * 10 + d;
        j->p++;
    }
    if (j->p < j->end && (*j->p == '.' || *j->p == 'e' || *j->p == 'E'))
        return ed_json_fail(j, "an integer (no fraction or exponent)");
    *out = v;
    return ED_OK;
}

/* ---- containers -------------------------------------------------------------------- */

/* "'{' starting <where>" or "'{'" into buf. */
static const char *expected_text(char *buf, size_t size, const char *what, const char *link,
                                 const char *where)
{
    if (where)
        snprintf(buf, size, "%s %s %s", what, link, where);
    else
        snprintf(buf, size, "%s", what);
    return buf;
}

static int enter(ed_json *j)
{
    if (j->depth >= ED_JSON_MAX_DEPTH)
        return ed_json_fail(j, "nesting at most 64 deep");
    j->depth++;
    return ED_OK;
}

int ed_json_object(ed_json *j, const char *where, ed_json_member_fn member, void *ctx)
{
    char msg[256];
    if (ed_json_peek(j) == '{' && enter(j) != ED_OK)
        return ED_ERR;
    if (ed_json_expect(j, '{', expected_text(msg, sizeof msg, "'{'", "starting", where)) != ED_OK)
        return ED_ERR;
    if (!ed_json_accept(j, '}')) {
        do {
            char *key = NULL;
            if (ed_json_string(j, &key, NULL, NULL) != ED_OK)
                return ED_ERR;
            int status = ed_json_expect(j, ':', "':' after a key");
            if (status == ED_OK)
                status = member(j, key, ctx);
            free(key);
            if (status != ED_OK)
                return ED_ERR;
        } while (ed_json_accept(j, ','));
        if (ed_json_expect(j, '}', expected_text(msg, sizeof msg, "',' or '}'", "in", where)) != ED_OK)
            return ED_ERR;
    }
    j->depth--;
    return ED_OK;
}

int ed_json_array(ed_json *j, const char *where, ed_json_item_fn item, void *ctx)
{
    char msg[256];
    if (ed_json_peek(j) == '[' && enter(j) != ED_OK)
        return ED_ERR;
    if (ed_json_expect(j, '[', expected_text(msg, sizeof msg, "'['", "starting", where)) != ED_OK)
        return ED_ERR;
    if (!ed_json_accept(j, ']')) {
        do {
            if (item(j, ctx) != ED_OK)
                return ED_ERR;
        } while (ed_json_accept(j, ','));
        if (ed_json_expect(j, ']', expected_text(msg, sizeof msg, "',' or ']'", "in", where)) != ED_OK)
            return ED_ERR;
    }
    j->depth--;
    return ED_OK;
}

/* ---- skipping ---------------------------------------------------------------------- */

static int skip_member(ed_json *j, const char *key, void *ctx)
{
    (void)key, (void)ctx;
    return ed_json_skip(j);
}

static int skip_item(ed_json *j, void *ctx)
{
    (void)ctx;
    return ed_json_skip(j);
}

int ed_json_skip(ed_json *j)
{
    switch (ed_json_peek(j)) {
    case '"':
        return ed_json_string(j, NULL, NULL, NULL);
    case '{':
        return ed_json_object(j, NULL, skip_member, NULL);
    case '[':
        return ed_json_array(j, NULL, skip_item, NULL);
    case 't':
    case 'f':
    case 'n':
        if (accept_word(j, "true") || accept_word(j, "false") || accept_word(j, "null"))
            return ED_OK;
        return ed_json_fail(j, "a value");
    default:
        if (ed_json_peek(j) == '-' || is_digit(j, j->p)) {
            const char *end = scan_number(j);
            if (!end)
                return ED_ERR;
            j->p = end;
            return ED_OK;
        }
        return ed_json_fail(j, "a value");
    }
}
