/* The text parser: recursive descent over bytes, no recursion deeper than one
 * statement except into loop bodies (at most MAX_DEPTH deep). Positions are byte offsets; line and column are worked out only when an
 * error is reported. Nodes are built with ed_node_new, so every shape rule runs, and
 * the finished graph goes through ed_graph_verify. */
#include "ir/text.h"
#include "runtime/error.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* Larger integers are refused, so no shape rule can overflow on parsed dims. */
#define MAX_INT 9007199254740992LL /* 2^53 */
#define MAX_NUMBER_CHARS 400
#define MAX_DEPTH 32 /* loops nested in loops */

/* Doubles at least this large round to infinity as f32 (FLT_MAX plus half an ulp). */
static const double F32_OVERFLOW = 0x1.ffffffp127;

/* A value name (a span of the text) and the node it names. */
typedef struct {
    size_t off, len, def;
    ed_node *node; /* NULL: empty slot */
} vslot;

typedef struct {
    const char *s;
    size_t len, pos;
    const char *file;
    ed_graph *g;
    vslot *slots; /* open addressing, power-of-two size */
    size_t nslots, nvalues;
    ed_node **ins; /* operands of the statement being parsed */
    int nins, capins;
    double *data; /* const values of the statement and where each was written */
    size_t *data_at;
    int64_t ndata, capdata;
    ed_strbuf name, debug;
    int depth; /* 0 for the top graph, +1 per loop body */
    bool failed;
    char msg[ED_ERROR_MAX];
} parser;

/* Everything one node statement gathers before the node is built. */
typedef struct {
    ed_op op;
    size_t op_at, type_at, name_at;
    size_t key_at[ED_KEY_COUNT];
    bool seen[ED_KEY_COUNT];
    int count[ED_KEY_COUNT]; /* entries of list-valued keys */
    ed_attrs a;
    ed_dtype dtype;
    ed_shape shape;
    bool has_debug;
} stmt;

/* ---- errors -------------------------------------------------------------------- */

static void line_col(const parser *p, size_t off, size_t *line, size_t *col)
{
    size_t l = 1, start = 0;
    for (size_t i = 0; i < off && i < p->len; i++) {
        if (p->s[i] == '\n') {
            l++;
            start = i + 1;
        }
    }
    *line = l;
    *col = off - start + 1;
}

/* Records the first error as "FILE:LINE:COL: message" on one line; returns false. */
static bool fail_at(parser *p, size_t off, const char *fmt, ...)
{
    if (p->failed) return false;
    p->failed = true;
    size_t line, col;
    line_col(p, off, &line, &col);
    int n = snprintf(p->msg, sizeof p->msg, "%s:%zu:%zu: ", p->file, line, col);
    size_t used = n < 0 ? 0 : (size_t)n < sizeof p->msg ? (size_t)n : sizeof p->msg - 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->msg + used, sizeof p->msg - used, fmt, ap);
    va_end(ap);
    for (char *c = p->msg; *c; c++)
        if ((unsigned char)*c < 0x20) *c = ' ';
    return false;
}

static bool is_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static bool is_digit(int c) { return c >= '0' && c <= '9'; }
static bool is_name_char(int c) { return is_alpha(c) || is_digit(c) || c == '.'; }

static int at(const parser *p, size_t i) { return i < p->len ? (unsigned char)p->s[i] : -1; }

/* The token at off for a message: a run of word characters, or one (escaped) byte. */
static void excerpt(const parser *p, size_t off, char *out, size_t size)
{
    size_t n = 0;
    for (size_t i = off; n + 4 < size && (is_name_char(at(p, i)) || at(p, i) == '-' || at(p, i) == '+'); i++)
        out[n++] = p->s[i];
    if (n == 0 && off < p->len) {
        unsigned char c = (unsigned char)p->s[off];
        if (c < 0x20 || c >= 0x7f) n = (size_t)snprintf(out, size, "\\x%02x", c);
        else out[n++] = (char)c;
    }
    out[n] = '\0';
}

static bool expected(parser *p, const char *what)
{
    if (p->pos >= p->len) return fail_at(p, p->pos, "unexpected end of input: expected %s", what);
    char tok[48];
    excerpt(p, p->pos, tok, sizeof tok);
    return fail_at(p, p->pos, "expected %s, got '%s'", what, tok);
}

static bool out_of_memory(parser *p) { return fail_at(p, p->pos, "out of memory"); }

/* ---- lexing -------------------------------------------------------------------- */

static void skip_ws(parser *p)
{
    for (int c; (c = at(p, p->pos)) != -1; p->pos++) {
        if (c == '#') {
            while (at(p, p->pos) != -1 && at(p, p->pos) != '\n') p->pos++;
            if (p->pos >= p->len) return;
        } else if (c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != '\f' && c != '\v') {
            return;
        }
    }
}

static int peek(parser *p)
{
    skip_ws(p);
    return at(p, p->pos);
}

static bool accept(parser *p, char c)
{
    if (peek(p) != (unsigned char)c) return false;
    p->pos++;
    return true;
}

static bool expect(parser *p, char c, const char *what) { return accept(p, c) || expected(p, what); }

/* A word [A-Za-z_][A-Za-z0-9_]* into buf (cut to fit, so a long word matches nothing);
 * false, consuming nothing, if none starts here. */
static bool read_word(parser *p, char *buf, size_t size, size_t *start)
{
    int first = peek(p);
    *start = p->pos;
    if (!is_alpha(first)) return false;
    size_t n = 0;
    for (int c; (c = at(p, p->pos)) != -1 && (is_alpha(c) || is_digit(c)); p->pos++)
        if (n + 1 < size) buf[n++] = (char)c;
    buf[n] = '\0';
    return true;
}

/* A bare name [A-Za-z_][A-Za-z0-9_.]* right at pos, into b. */
static bool read_bare(parser *p, ed_strbuf *b)
{
    size_t start = p->pos;
    if (!is_alpha(at(p, start))) return false;
    while (is_name_char(at(p, p->pos))) p->pos++;
    b->len = 0;
    ed_sb_put(b, p->s + start, p->pos - start);
    return !b->failed || out_of_memory(p);
}

static int hex_digit(int c)
{
    if (is_digit(c)) return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* One escape after a backslash at p->pos - 1. */
static bool read_escape(parser *p, ed_strbuf *b)
{
    size_t esc = p->pos - 1;
    int c = at(p, p->pos);
    const char *plain = c > 0 ? strchr("\"\\nt", c) : NULL;
    if (plain) {
        ed_sb_putc(b, c == 'n' ? '\n' : c == 't' ? '\t' : (char)c);
        p->pos++;
        return true;
    }
    if (c != 'x') {
        char tok[8];
        excerpt(p, p->pos, tok, sizeof tok);
        return fail_at(p, esc, "bad escape '\\%.1s' in string (use \\\" \\\\ \\n \\t or \\xHH)", tok);
    }
    int hi = hex_digit(at(p, p->pos + 1)), lo = hi < 0 ? -1 : hex_digit(at(p, p->pos + 2));
    if (lo < 0) return fail_at(p, esc, "bad escape in string: \\x needs two hex digits");
    if (hi == 0 && lo == 0) return fail_at(p, esc, "a string cannot hold \\x00");
    ed_sb_putc(b, (char)(hi * 16 + lo));
    p->pos += 3;
    return true;
}

/* A double-quoted string on one line into b (NUL-terminated). */
static bool read_string(parser *p, ed_strbuf *b, const char *what)
{
    if (peek(p) != '"') return expected(p, what);
    size_t open = p->pos++;
    b->len = 0;
    ed_sb_put(b, "", 0);
    for (;;) {
        int c = at(p, p->pos);
        if (c == -1 || c == '\n') return fail_at(p, open, "unterminated string");
        p->pos++;
        if (c == '"') break;
        if (c == '\\') {
            if (at(p, p->pos) == -1 || at(p, p->pos) == '\n') return fail_at(p, open, "unterminated string");
            if (!read_escape(p, b)) return false;
        } else if (c < 0x20 && c != '\t') {
            return fail_at(p, p->pos - 1, "control byte \\x%02x in string (write it as an escape)", c);
        } else {
            ed_sb_putc(b, (char)c);
        }
    }
    return !b->failed || out_of_memory(p);
}

/* "an axis" -> "axis" */
static const char *noun(const char *what)
{
    if (!strncmp(what, "an ", 3)) return what + 3;
    return strncmp(what, "a ", 2) ? what : what + 2;
}

/* An integer in lo..hi; `what` ("an axis") names it in messages. */
static bool read_int(parser *p, int64_t lo, int64_t hi, const char *what, int64_t *out)
{
    skip_ws(p);
    size_t start = p->pos, i = start;
    bool neg = at(p, i) == '-';
    if (neg) i++;
    if (!is_digit(at(p, i))) return expected(p, what);
    int64_t v = 0;
    bool big = false;
    for (; is_digit(at(p, i)); i++) {
        if (v > MAX_INT) big = true;
        else v = v * 10 + (at(p, i) - '0');
    }
    char tok[48];
    excerpt(p, start, tok, sizeof tok);
    if (is_name_char(at(p, i)) || at(p, i) == '+' || at(p, i) == '-')
        return fail_at(p, start, "expected %s, got '%s'", what, tok);
    if (neg) v = -v;
    if (big || v < lo || v > hi)
        return fail_at(p, start, "%s %s is out of range %lld..%lld", noun(what), tok, (long long)lo, (long long)hi);
    p->pos = i;
    *out = v;
    return true;
}

/* The end of a decimal number (digits, point, exponent) starting at i; i if none. */
static size_t scan_decimal(const parser *p, size_t i)
{
    size_t j = i, digits = 0;
    for (; is_digit(at(p, j)); j++) digits++;
    if (at(p, j) == '.')
        for (j++; is_digit(at(p, j)); j++) digits++;
    if (!digits) return i;
    if (at(p, j) == 'e' || at(p, j) == 'E') {
        size_t k = j + 1;
        if (at(p, k) == '+' || at(p, k) == '-') k++;
        if (!is_digit(at(p, k))) return j; /* the caller sees the stray 'e' */
        for (j = k; is_digit(at(p, j)); j++) {}
    }
    return j;
}

/* nan or inf spelled at i..end. */
static bool read_special(const parser *p, size_t i, size_t end, double sign, double *out)
{
    if (end - i != 3) return false;
    if (!strncmp(p->s + i, "nan", 3)) *out = NAN;
    else if (!strncmp(p->s + i, "inf", 3)) *out = sign * INFINITY;
    else return false;
    return true;
}

/* A number: decimal (as strtod reads it), nan or inf, with an optional sign. */
static bool read_number(parser *p, const char *what, double *out)
{
    skip_ws(p);
    size_t start = p->pos, i = start;
    double sign = at(p, i) == '-' ? -1 : 1;
    if (at(p, i) == '-' || at(p, i) == '+') i++;
    int c = at(p, i);
    if (i == start && !is_digit(c) && c != '.' && !is_alpha(c)) return expected(p, what);
    char tok[48];
    excerpt(p, start, tok, sizeof tok);
    size_t end = i;
    if (is_alpha(c)) {
        while (is_alpha(at(p, end))) end++;
        if (!read_special(p, i, end, sign, out) || is_name_char(at(p, end)))
            return fail_at(p, start, "bad number '%s'", tok);
        p->pos = end;
        return true;
    }
    end = scan_decimal(p, i);
    if (end == i || is_name_char(at(p, end)) || at(p, end) == '+' || at(p, end) == '-')
        return fail_at(p, start, "bad number '%s'", tok);
    if (end - start > MAX_NUMBER_CHARS) return fail_at(p, start, "number too long (%zu characters)", end - start);
    char buf[MAX_NUMBER_CHARS + 1];
    memcpy(buf, p->s + start, end - start);
    buf[end - start] = '\0';
    errno = 0;
    double v = strtod(buf, NULL);
    if (errno == ERANGE && isinf(v)) return fail_at(p, start, "number out of range: %s", tok);
    *out = v;
    p->pos = end;
    return true;
}

static bool read_bool(parser *p, bool *out)
{
    char w[16];
    size_t start;
    if (!read_word(p, w, sizeof w, &start)) return expected(p, "true or false");
    if (strcmp(w, "true") && strcmp(w, "false")) {
        p->pos = start;
        return expected(p, "true or false");
    }
    *out = w[0] == 't';
    return true;
}

/* [a, b, ...] of at most ED_MAX_RANK integers in lo..hi; where (may be NULL) gets
 * each entry's offset. */
static bool read_int_list(parser *p, int64_t lo, int64_t hi, const char *what, int64_t *v, int *n, size_t *where)
{
    *n = 0;
    if (!expect(p, '[', "'[' and a list of integers")) return false;
    if (accept(p, ']')) return true;
    for (;;) {
        skip_ws(p);
        size_t start = p->pos;
        int64_t x;
        if (!read_int(p, lo, hi, what, &x)) return false;
        if (*n == ED_MAX_RANK) return fail_at(p, start, "too many entries (at most %d)", ED_MAX_RANK);
        if (where) where[*n] = start;
        v[(*n)++] = x;
        if (accept(p, ']')) return true;
        if (!expect(p, ',', "',' or ']'")) return false;
    }
}

/* ---- value names --------------------------------------------------------------- */

static uint64_t hash_span(const char *s, size_t n)
{
    uint64_t h = 14695981039346656037u;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211u;
    return h;
}

/* The slot holding the name, or the empty slot where it would go. */
static vslot *find_slot(const parser *p, vslot *slots, size_t nslots, size_t off, size_t len)
{
    size_t i = hash_span(p->s + off, len) & (nslots - 1);
    while (slots[i].node && !(slots[i].len == len && memcmp(p->s + slots[i].off, p->s + off, len) == 0))
        i = (i + 1) & (nslots - 1);
    return &slots[i];
}

static bool grow_slots(parser *p)
{
    size_t n = p->nslots ? p->nslots * 2 : 64;
    vslot *slots = calloc(n, sizeof *slots);
    if (!slots) return false;
    for (size_t i = 0; i < p->nslots; i++)
        if (p->slots[i].node) *find_slot(p, slots, n, p->slots[i].off, p->slots[i].len) = p->slots[i];
    free(p->slots);
    p->slots = slots;
    p->nslots = n;
    return true;
}

static vslot *lookup(parser *p, size_t off, size_t len)
{
    if (!p->nslots) return NULL;
    vslot *v = find_slot(p, p->slots, p->nslots, off, len);
    return v->node ? v : NULL;
}

static bool define(parser *p, size_t off, size_t len, size_t def, ed_node *n)
{
    if (2 * (p->nvalues + 1) > p->nslots && !grow_slots(p)) return out_of_memory(p);
    *find_slot(p, p->slots, p->nslots, off, len) = (vslot){off, len, def, n};
    p->nvalues++;
    return true;
}

/* `%name` right at pos: its span (after the '%'). */
static bool read_value_name(parser *p, size_t *off, size_t *len)
{
    size_t pct = p->pos++;
    *off = p->pos;
    while (is_name_char(at(p, p->pos))) p->pos++;
    *len = p->pos - *off;
    return *len || fail_at(p, pct, "expected a value name after '%%'");
}

static int shown(size_t len) { return len > 200 ? 200 : (int)len; }

static bool read_ref(parser *p, ed_node **out)
{
    if (peek(p) != '%') return expected(p, "a value (%name)");
    size_t start = p->pos, off, len;
    if (!read_value_name(p, &off, &len)) return false;
    vslot *v = lookup(p, off, len);
    if (!v) return fail_at(p, start, "undefined value %%%.*s", shown(len), p->s + off);
    *out = v->node;
    return true;
}

/* ---- attributes ---------------------------------------------------------------- */

/* The key of this op called `name`, or ED_KEY_COUNT. */
static ed_text_key find_key(ed_op op, const char *name)
{
    for (int k = 0; k < ED_KEY_COUNT; k++)
        if ((ed_ops[op].attrs & ed_text_keys[k].group) && strcmp(ed_text_keys[k].name, name) == 0)
            return (ed_text_key)k;
    return ED_KEY_COUNT;
}

static void key_list(ed_op op, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int k = 0; k < ED_KEY_COUNT && n < size; k++)
        if (ed_ops[op].attrs & ed_text_keys[k].group)
            n += (size_t)snprintf(buf + n, size - n, "%s%s", n ? ", " : "", ed_text_keys[k].name);
}

static bool read_axes(parser *p, stmt *st)
{
    int64_t v[ED_MAX_RANK];
    size_t where[ED_MAX_RANK];
    int n;
    if (!read_int_list(p, 0, ED_MAX_RANK - 1, "an axis", v, &n, where)) return false;
    for (int i = 0; i < n; i++) {
        if (st->a.axes >> v[i] & 1) return fail_at(p, where[i], "axis %lld is listed twice", (long long)v[i]);
        st->a.axes |= 1u << v[i];
    }
    return true;
}

static bool read_perm(parser *p, stmt *st)
{
    int64_t v[ED_MAX_RANK];
    if (!read_int_list(p, INT_MIN, INT_MAX, "an axis", v, &st->count[ED_KEY_PERM], NULL)) return false;
    for (int i = 0; i < st->count[ED_KEY_PERM]; i++) st->a.perm[i] = (int)v[i];
    return true;
}

static bool read_init(parser *p, stmt *st)
{
    char w[32];
    size_t start;
    if (!read_word(p, w, sizeof w, &start)) return expected(p, "an initializer name");
    if (!ed_init_parse(w, &st->a.init.kind)) {
        char names[256] = "";
        size_t n = 0;
        for (int i = 0; i < ED_INIT_COUNT && n < sizeof names; i++)
            n += (size_t)snprintf(names + n, sizeof names - n, "%s%s", i ? ", " : "", ed_init_name((ed_init_kind)i));
        return fail_at(p, start, "unknown initializer '%s' (expected one of %s)", w, names);
    }
    return true;
}

static bool read_approx(parser *p, stmt *st)
{
    char w[16];
    size_t start;
    if (read_word(p, w, sizeof w, &start) && (!strcmp(w, "erf") || !strcmp(w, "tanh"))) {
        st->a.approx = w[0] == 't';
        return true;
    }
    p->pos = start;
    return expected(p, "erf or tanh");
}

static bool read_key_value(parser *p, stmt *st, ed_text_key key)
{
    ed_attrs *a = &st->a;
    int64_t v = 0;
    int *n = &st->count[key];
    switch (key) {
    case ED_KEY_INIT: return read_init(p, st);
    case ED_KEY_SCALE: return read_number(p, "a number", &a->init.scale);
    case ED_KEY_AXES: return read_axes(p, st);
    case ED_KEY_KEEPDIMS: return read_bool(p, &a->keepdims);
    case ED_KEY_AXIS:
        if (!read_int(p, INT_MIN, INT_MAX, "an axis", &v)) return false;
        a->axis = (int)v;
        return true;
    case ED_KEY_PERM: return read_perm(p, st);
    case ED_KEY_START: return read_int_list(p, -MAX_INT, MAX_INT, "an index", a->start, n, NULL);
    case ED_KEY_STOP: return read_int_list(p, -MAX_INT, MAX_INT, "an index", a->stop, n, NULL);
    case ED_KEY_STEP: return read_int_list(p, -MAX_INT, MAX_INT, "a step", a->step, n, NULL);
    case ED_KEY_PAD_LO: return read_int_list(p, -MAX_INT, MAX_INT, "an amount", a->pad_lo, n, NULL);
    case ED_KEY_PAD_HI: return read_int_list(p, -MAX_INT, MAX_INT, "an amount", a->pad_hi, n, NULL);
    case ED_KEY_PAD_VALUE: return read_number(p, "a number", &a->pad_value);
    case ED_KEY_ALPHA: return read_number(p, "a number", &a->alpha);
    case ED_KEY_APPROX: return read_approx(p, st);
    case ED_KEY_LO: return read_number(p, "a number", &a->lo);
    case ED_KEY_HI: return read_number(p, "a number", &a->hi);
    case ED_KEY_P: return read_number(p, "a number", &a->p);
    case ED_KEY_STREAM:
        if (!read_int(p, 1, UINT32_MAX, "a stream id", &v)) return false;
        a->stream = (uint32_t)v;
        return true;
    case ED_KEY_TA: return read_bool(p, &a->ta);
    case ED_KEY_TB: return read_bool(p, &a->tb);
    case ED_KEY_TRIPS: return read_int(p, 0, INT32_MAX, "a trip count", &a->trips);
    case ED_KEY_NCARRIED:
        if (!read_int(p, 0, INT_MAX, "a count", &v)) return false;
        a->ncarried = (int)v;
        return true;
    case ED_KEY_INDEX:
        if (!read_int(p, 0, INT_MAX, "an index", &v)) return false;
        a->index = (int)v;
        return true;
    case ED_KEY_STRIDE: return read_int_list(p, -MAX_INT, MAX_INT, "a stride", a->stride, n, NULL);
    case ED_KEY_PADDING: return read_int_list(p, -MAX_INT, MAX_INT, "an amount", a->padding, n, NULL);
    case ED_KEY_DILATION: return read_int_list(p, -MAX_INT, MAX_INT, "a dilation", a->dilation, n, NULL);
    case ED_KEY_GROUPS: return read_int(p, -MAX_INT, MAX_INT, "a group count", &a->groups);
    case ED_KEY_OUT_PAD: return read_int_list(p, -MAX_INT, MAX_INT, "an amount", a->out_pad, n, NULL);
    case ED_KEY_KERNEL: return read_int_list(p, -MAX_INT, MAX_INT, "a size", a->kernel, n, NULL);
    case ED_KEY_COUNT: break;
    }
    return false;
}

static bool read_one_attr(parser *p, stmt *st)
{
    char w[32], keys[256];
    size_t start;
    if (!read_word(p, w, sizeof w, &start)) return expected(p, "an attribute name");
    ed_text_key key = find_key(st->op, w);
    if (key == ED_KEY_COUNT) {
        key_list(st->op, keys, sizeof keys);
        if (!keys[0]) return fail_at(p, start, "unknown attribute '%s': %s takes none", w, ed_op_name(st->op));
        return fail_at(p, start, "unknown attribute '%s' for %s (expected %s)", w, ed_op_name(st->op), keys);
    }
    if (st->seen[key]) return fail_at(p, start, "attribute '%s' is given twice", w);
    st->seen[key] = true;
    st->key_at[key] = start;
    return expect(p, '=', "'=' after the attribute name") && read_key_value(p, st, key);
}

/* An optional {key=value, ...} block, then a check that nothing required is missing. */
static bool read_attrs(parser *p, stmt *st)
{
    if (accept(p, '{') && !accept(p, '}')) {
        do {
            if (!read_one_attr(p, st)) return false;
        } while (accept(p, ','));
        if (!expect(p, '}', "',' or '}'")) return false;
    }
    skip_ws(p);
    for (int k = 0; k < ED_KEY_COUNT; k++)
        if ((ed_ops[st->op].attrs & ed_text_keys[k].group) && !ed_text_keys[k].optional && !st->seen[k])
            return fail_at(p, p->pos, "missing attribute '%s' for %s", ed_text_keys[k].name, ed_op_name(st->op));
    return true;
}

/* ---- node statements ----------------------------------------------------------- */

static bool push_input(parser *p, ed_node *n)
{
    if (p->nins == p->capins) {
        int cap = p->capins ? p->capins * 2 : 8;
        ed_node **ins = realloc(p->ins, (size_t)cap * sizeof *ins);
        if (!ins) return out_of_memory(p);
        p->ins = ins;
        p->capins = cap;
    }
    p->ins[p->nins++] = n;
    return true;
}

static bool read_inputs(parser *p)
{
    p->nins = 0;
    if (peek(p) != '%') return true;
    for (;;) {
        ed_node *n;
        if (!read_ref(p, &n) || !push_input(p, n)) return false;
        if (!accept(p, ',')) return true;
        if (peek(p) != '%') return expected(p, "a value (%name) after ','");
    }
}

static bool push_value(parser *p, size_t where, double v)
{
    if (p->ndata == p->capdata) {
        int64_t cap = p->capdata ? p->capdata * 2 : 16;
        double *d = realloc(p->data, (size_t)cap * sizeof *d);
        if (d) p->data = d;
        size_t *w = d ? realloc(p->data_at, (size_t)cap * sizeof *w) : NULL;
        if (!w) return out_of_memory(p);
        p->data_at = w;
        p->capdata = cap;
    }
    p->data[p->ndata] = v;
    p->data_at[p->ndata++] = where;
    return true;
}

static bool read_one_value(parser *p, const char *what)
{
    double v;
    skip_ws(p);
    size_t start = p->pos;
    return read_number(p, what, &v) && push_value(p, start, v);
}

/* const's values: one number, or a flat [list]. */
static bool read_values(parser *p)
{
    p->ndata = 0;
    if (peek(p) != '[') return read_one_value(p, "a value or a [list] of values");
    p->pos++;
    if (accept(p, ']')) return true;
    for (;;) {
        if (!read_one_value(p, "a value")) return false;
        if (accept(p, ']')) return true;
        if (!expect(p, ',', "',' or ']' in the value list")) return false;
    }
}

/* Round const values to the dtype, refusing what it cannot hold. */
static bool fit_values(parser *p, ed_dtype dt)
{
    for (int64_t i = 0; i < p->ndata; i++) {
        double v = p->data[i];
        char num[ED_NUM_BUF];
        if (dt == ED_I32 && !(v == floor(v) && v >= INT32_MIN && v <= INT32_MAX))
            return fail_at(p, p->data_at[i], "value %s is not an i32 integer", ed_text_number(v, ED_F64, num));
        if (dt == ED_F32 && isfinite(v) && fabs(v) >= F32_OVERFLOW)
            return fail_at(p, p->data_at[i], "value %s is out of the f32 range", ed_text_number(v, ED_F64, num));
        p->data[i] = ed_scalar_round(v, dt);
    }
    return true;
}

static bool read_type(parser *p, ed_dtype *dt, ed_shape *s)
{
    char w[16];
    size_t start;
    if (!read_word(p, w, sizeof w, &start)) return expected(p, "a type such as f32[4,8]");
    if (!ed_dtype_parse(w, dt)) {
        char tok[48];
        excerpt(p, start, tok, sizeof tok);
        return fail_at(p, start, "bad dtype '%s' (expected f32, i32, f64, bf16 or f16)", tok);
    }
    *s = (ed_shape){0};
    if (!expect(p, '[', "'[' and the shape after the dtype")) return false;
    if (accept(p, ']')) return true;
    for (;;) {
        skip_ws(p);
        size_t dim_at = p->pos;
        int64_t d;
        if (!read_int(p, 0, MAX_INT, "a dimension", &d)) return false;
        if (s->rank == ED_MAX_RANK)
            return fail_at(p, dim_at, "rank > %d: a shape has at most %d dimensions", ED_MAX_RANK, ED_MAX_RANK);
        s->dim[s->rank++] = d;
        if (accept(p, ']')) return true;
        if (!expect(p, ',', "',' or ']' in the shape")) return false;
    }
}

/* List attributes give one entry per axis of the input. */
static bool check_list_lengths(parser *p, const stmt *st)
{
    if (p->nins < 1) return true; /* ed_node_new reports the arity */
    const ed_node *x = p->ins[0];
    static const ed_text_key lists[] = {ED_KEY_PERM, ED_KEY_START,  ED_KEY_STOP,
                                        ED_KEY_STEP, ED_KEY_PAD_LO, ED_KEY_PAD_HI};
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
        ed_text_key k = lists[i];
        if (st->seen[k] && st->count[k] != x->shape.rank) {
            char t[160];
            return fail_at(p, st->key_at[k], "%s has %d entries but the input is %s (rank %d)", ed_text_keys[k].name,
                           st->count[k], ed_node_type_str(x, t, sizeof t), x->shape.rank);
        }
    }
    /* Convolution attributes give one entry per spatial axis (h, w). */
    static const ed_text_key pairs[] = {ED_KEY_STRIDE, ED_KEY_PADDING, ED_KEY_DILATION, ED_KEY_OUT_PAD, ED_KEY_KERNEL};
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        ed_text_key k = pairs[i];
        if (st->seen[k] && st->count[k] != 2)
            return fail_at(p, st->key_at[k], "%s has %d entries, needs 2 (h, w)", ed_text_keys[k].name, st->count[k]);
    }
    return true;
}

/* concat adds dims; refuse sums that would overflow the shape rule's arithmetic. */
static bool check_concat_size(parser *p, const stmt *st)
{
    int ax = st->a.axis;
    int64_t total = 0;
    for (int k = 0; k < p->nins; k++) {
        if (ax < 0 || ax >= p->ins[k]->shape.rank) return true; /* the rule reports it */
        total += p->ins[k]->shape.dim[ax];
        if (total > MAX_INT) return fail_at(p, st->op_at, "concat: the result is too large");
    }
    return true;
}

static bool check_before_build(parser *p, stmt *st)
{
    const ed_op_info *info = &ed_ops[st->op];
    if (p->nins < info->min_inputs || (info->max_inputs >= 0 && p->nins > info->max_inputs)) return true;
    if (!check_list_lengths(p, st)) return false;
    if (st->op == ED_OP_CONCAT && !check_concat_size(p, st)) return false;
    if (st->op == ED_OP_PAD) st->a.pad_value = ed_scalar_round(st->a.pad_value, p->ins[0]->dtype);
    return true;
}

static ed_node *build_node(parser *p, stmt *st)
{
    static const double no_values[1] = {0}; /* a const of zero elements still needs a pointer */
    if (ed_ops[st->op].attrs & A_DATA) {
        if (!fit_values(p, st->dtype)) return NULL;
        st->a.data = p->ndata ? p->data : no_values;
        st->a.ndata = p->ndata;
    }
    if (ed_ops[st->op].flags & F_TYPED) {
        st->a.dtype = st->dtype;
        st->a.shape = st->shape;
    }
    if (!check_before_build(p, st)) return NULL;
    int before = p->g->nnodes;
    ed_node *n = ed_node_new(p->g, st->op, p->ins, p->nins, &st->a);
    if (!n) {
        fail_at(p, st->op_at, "%s", ed_graph_error(p->g));
        return NULL;
    }
    if (n->id < before) { /* ed_node_new hands back an existing leaf of the same name */
        ed_strbuf q = {0};
        ed_text_quote(&q, st->a.name);
        fail_at(p, st->name_at, "%s %s is already defined", ed_op_name(st->op), q.s ? q.s : "");
        ed_sb_free(&q);
        return NULL;
    }
    return n;
}

static bool check_type(parser *p, const stmt *st, const ed_node *n)
{
    if (n->dtype == st->dtype && ed_shape_eq(n->shape, st->shape)) return true;
    char want[160], got[160];
    return fail_at(p, st->type_at, "type annotation %s does not match the inferred %s",
                   ed_type_str(st->dtype, st->shape, want, sizeof want), ed_node_type_str(n, got, sizeof got));
}

static bool set_debug_name(parser *p, ed_node *n)
{
    ed_set_name(n, p->debug.s);
    return (n->name && strcmp(n->name, p->debug.s) == 0) || out_of_memory(p);
}

static ed_graph *read_body(parser *p);

/* `OP ... : TYPE ["debug"]` after `%name =` (a tuple op such as loop has no type). */
static ed_node *read_node(parser *p)
{
    stmt st = {0};
    char w[32];
    if (!read_word(p, w, sizeof w, &st.op_at)) {
        expected(p, "an op name");
        return NULL;
    }
    if (!ed_op_lookup(w, &st.op)) {
        fail_at(p, st.op_at, "unknown op '%s'", w);
        return NULL;
    }
    unsigned groups = ed_ops[st.op].attrs;
    if (groups & A_NAME) {
        skip_ws(p);
        st.name_at = p->pos;
        if (!read_string(p, &p->name, "the quoted name of the leaf")) return NULL;
        st.a.name = p->name.s;
    }
    if ((groups & A_DATA) && !read_values(p)) return NULL;
    if (!read_inputs(p) || !read_attrs(p, &st)) return NULL;
    if ((groups & (A_BODY | A_EXPR)) && !(st.a.body = read_body(p))) return NULL;
    bool tuple = ed_ops[st.op].flags & F_TUPLE;
    if (!tuple) {
        if (!expect(p, ':', "':' and the type")) return NULL;
        skip_ws(p);
        st.type_at = p->pos;
        if (!read_type(p, &st.dtype, &st.shape)) return NULL;
    }
    if (ed_text_has_debug_name(st.op) && peek(p) == '"') {
        if (!read_string(p, &p->debug, "a debug name")) return NULL;
        st.has_debug = true;
    } else if (peek(p) == '"') {
        fail_at(p, p->pos, "%s takes no debug name (its binding name is its name)", w);
        return NULL;
    }
    ed_node *n = build_node(p, &st);
    if (!n || (!tuple && !check_type(p, &st, n)) || (st.has_debug && !set_debug_name(p, n))) return NULL;
    return n;
}

/* `%name = ...` */
static bool read_definition(parser *p)
{
    size_t start = p->pos, off, len;
    if (!read_value_name(p, &off, &len)) return false;
    vslot *old = lookup(p, off, len);
    if (old) {
        size_t line, col;
        line_col(p, old->def, &line, &col);
        return fail_at(p, start, "%%%.*s is already defined (at %zu:%zu)", shown(len), p->s + off, line, col);
    }
    if (!expect(p, '=', "'=' after the value name")) return false;
    ed_node *n = read_node(p);
    return n && define(p, off, len, start, n);
}

/* `out NAME = %v` or `update "NAME" = %v`. */
static bool read_binding(parser *p, bool update)
{
    skip_ws(p);
    size_t start = p->pos;
    bool ok = at(p, start) == '"' ? read_string(p, &p->name, "a name")
                                  : read_bare(p, &p->name) || expected(p, update ? "the quoted name of a param or state"
                                                                                 : "the output's name");
    ed_node *n;
    if (!ok || !expect(p, '=', "'='") || !read_ref(p, &n)) return false;
    if (update) ed_update(p->g, p->name.s, n);
    else ed_output(p->g, p->name.s, n);
    return !ed_graph_error(p->g) || fail_at(p, start, "%s", ed_graph_error(p->g));
}

static bool read_statement(parser *p)
{
    char w[16];
    size_t start;
    int c = peek(p);
    if (c == '%') return read_definition(p);
    if (c == -1) return expected(p, "'}'");
    if (read_word(p, w, sizeof w, &start)) {
        if (!strcmp(w, "out")) return read_binding(p, false);
        if (!strcmp(w, "update")) return read_binding(p, true);
        p->pos = start;
    }
    return expected(p, "a statement (%name = ..., out or update) or '}'");
}

/* `graph @NAME { statements }` into a new p->g. */
static bool read_graph_block(parser *p)
{
    char w[16];
    size_t start;
    if (!read_word(p, w, sizeof w, &start) || strcmp(w, "graph")) {
        p->pos = start;
        return expected(p, "'graph'");
    }
    if (!expect(p, '@', "'@' and the graph name")) return false;
    bool named = at(p, p->pos) == '"' ? read_string(p, &p->name, "the graph name") : read_bare(p, &p->name);
    if (!named) return expected(p, "the graph name after '@'");
    if (!(p->g = ed_graph_new(p->name.s))) return out_of_memory(p);
    if (!expect(p, '{', "'{'")) return false;
    while (peek(p) != '}')
        if (!read_statement(p)) return false;
    p->pos++;
    return true;
}

static void parser_free(parser *p)
{
    free(p->slots);
    free(p->ins);
    free(p->data);
    free(p->data_at);
    ed_sb_free(&p->name);
    ed_sb_free(&p->debug);
}

/* A loop's `graph @NAME { ... }`, parsed with its own value names and owned by p->g
 * (so it is freed with it whatever happens next). NULL on failure. */
static ed_graph *read_body(parser *p)
{
    skip_ws(p);
    if (p->depth + 1 > MAX_DEPTH) {
        fail_at(p, p->pos, "loops nested more than %d deep", MAX_DEPTH);
        return NULL;
    }
    parser q = {.s = p->s, .len = p->len, .pos = p->pos, .file = p->file, .depth = p->depth + 1};
    bool ok = read_graph_block(&q);
    p->pos = q.pos;
    if (!ok) {
        p->failed = true;
        memcpy(p->msg, q.msg, sizeof p->msg);
    } else if (ed_graph_adopt(p->g, q.g) != ED_OK) {
        ed_graph_free(q.g);
        q.g = NULL;
        ok = out_of_memory(p);
    }
    ed_graph *body = ok ? q.g : NULL;
    if (!ok) ed_graph_free(q.g);
    parser_free(&q);
    return body;
}

static bool read_graph(parser *p)
{
    if (!read_graph_block(p)) return false;
    size_t close = p->pos - 1;
    if (peek(p) != -1) return fail_at(p, p->pos, "expected the end of input after the graph's '}'");
    if (ed_graph_verify(p->g) != ED_OK) return fail_at(p, close, "%s", ed_last_error());
    return true;
}

static ed_graph *parse_text(const char *text, size_t len, const char *filename)
{
    parser p = {.s = text, .len = len, .file = filename ? filename : "<input>"};
    bool ok = read_graph(&p);
    parser_free(&p);
    if (ok) return p.g;
    ed_graph_free(p.g);
    ed_fail("%s", p.failed ? p.msg : "parse failed");
    return NULL;
}

ed_graph *ed_graph_parse(const char *text, const char *filename)
{
    if (!text) {
        ed_fail("%s: no text (NULL)", filename ? filename : "<input>");
        return NULL;
    }
    return parse_text(text, strlen(text), filename);
}

ed_graph *ed_graph_read_file(const char *path)
{
    if (!path) {
        ed_fail("read: no path (NULL)");
        return NULL;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        ed_fail("%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    ed_strbuf b = {0};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) ed_sb_put(&b, chunk, n);
    bool bad = ferror(f);
    int err = errno ? errno : EIO;
    fclose(f);
    ed_graph *g = NULL;
    if (bad) ed_fail("%s: cannot read: %s", path, strerror(err));
    else if (b.failed) ed_fail("%s: out of memory reading the file", path);
    else g = parse_text(b.s ? b.s : "", b.len, path);
    ed_sb_free(&b);
    return g;
}
