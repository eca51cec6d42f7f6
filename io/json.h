/* A small pull reader for JSON text (RFC 8259), the one every format in io/ shares: the
 * caller walks the text value by value, taking what it knows and skipping the rest.
 * Every error is one line "<source>: bad <what> at byte <N>: expected <...>", N counted
 * in the file the text came from. Text must be UTF-8; nesting deeper than
 * ED_JSON_MAX_DEPTH is refused. Duplicate keys are passed on: the caller knows what a
 * key means and names the duplicate better (safetensors rejects each kind). */
#ifndef ED_JSON_H
#define ED_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ED_JSON_MAX_DEPTH 64

typedef struct {
    const char *base, *p, *end;
    const char *source; /* names the file in messages */
    const char *what;   /* names the text in messages: "JSON header" */
    size_t offset;      /* of base[0] in the file */
    int depth;
} ed_json;

/* Starts reading text[0, len). ED_ERR, naming the first bad byte, unless the text is
 * valid UTF-8. */
int ed_json_init(ed_json *j, const char *text, size_t len, const char *source, const char *what,
                 size_t offset);

/* "...at byte N: expected <expected>" for the current position; returns ED_ERR. */
int ed_json_fail(const ed_json *j, const char *expected);

/* After whitespace: whether the next character is ch, consuming it if so. */
bool ed_json_accept(ed_json *j, char ch);
/* ed_json_accept or an error "expected <expected>". */
int ed_json_expect(ed_json *j, char ch, const char *expected);
/* After whitespace: the next character, not consumed (0 at the end of the text). */
char ed_json_peek(ed_json *j);
/* After whitespace: the word null, consumed if there. */
bool ed_json_accept_null(ed_json *j);

/* A string. *out (out may be NULL: not kept) gets a new NUL-terminated copy with the
 * escapes decoded (\u0000 is refused, so the copy is the whole string); raw and raw_len
 * (may be NULL) get where its raw bytes, between the quotes, lie from base. */
int ed_json_string(ed_json *j, char **out, size_t *raw, size_t *raw_len);
/* A non-negative integer below 2^62, no fraction or exponent. */
int ed_json_uint(ed_json *j, uint64_t *out);
/* Any JSON number. */
int ed_json_number(ed_json *j, double *out);
/* Any value, checked and dropped. */
int ed_json_skip(ed_json *j);

/* An object: member(j, key, ctx) reads each member's value (j is just after the ':').
 * where names the object in messages: "expected '{' starting <where>", "expected ','
 * or '}' in <where>" (NULL: "expected '{'", "expected ',' or '}'"). */
typedef int (*ed_json_member_fn)(ed_json *j, const char *key, void *ctx);
int ed_json_object(ed_json *j, const char *where, ed_json_member_fn member, void *ctx);
/* An array: item(j, ctx) reads each element. where as for ed_json_object. */
typedef int (*ed_json_item_fn)(ed_json *j, void *ctx);
int ed_json_array(ed_json *j, const char *where, ed_json_item_fn item, void *ctx);

/* Nothing but whitespace is left; else an error "expected <expected>". */
int ed_json_end(ed_json *j, const char *expected);

/* The length of the longest valid UTF-8 prefix of s[0, n) (n: all of it is valid).
 * Writers check their strings with it too. */
size_t ed_utf8_valid_prefix(const char *s, size_t n);

#endif
