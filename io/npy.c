/* NumPy .npy reader and writer. Format reference: numpy/lib/format.py (NEP 1).
 *
 *   "\x93NUMPY" major minor  header-length (u16 LE in 1.0, u32 LE in 2.0 / 3.0)
 *   header: a Python dict literal {'descr': '<f4', 'fortran_order': False,
 *           'shape': (2, 3), } padded with spaces and ended by '\n'
 *   data:   the elements in C order */
#include "io/npy.h"
#include "io/atomic_file.h"
#include "runtime/error.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
#define NPY_DATA_ALIGN 64
/* numpy itself refuses headers over 10000 bytes by default; this bound only keeps a
 * corrupt length field from asking for gigabytes. */
#define NPY_MAX_HEADER (1u << 20)
#define HEADER_TRUNCATED "%s: truncated: preamble says the header is %zu bytes, file has %zu"

/* An element type a file may hold. Native types are the tensor's bytes; the others are
 * integers that ed_npy_read_any widens or narrows into i32. */
typedef struct {
    const char *code; /* descr without its byte-order character */
    ed_dtype dtype;
    size_t size;
    bool native, is_signed;
} npy_type;

static const npy_type npy_types[] = {
    {"f4", ED_F32, 4, true, true},   {"i4", ED_I32, 4, true, true},   {"f8", ED_F64, 8, true, true},
    {"u1", ED_I32, 1, false, false}, {"i1", ED_I32, 1, false, true},  {"u2", ED_I32, 2, false, false},
    {"i2", ED_I32, 2, false, true},  {"u4", ED_I32, 4, false, false}, {"i8", ED_I32, 8, false, true},
    {"u8", ED_I32, 8, false, false},
};

typedef struct {
    const npy_type *type;
    ed_dtype dtype;
    ed_shape shape;
    size_t data_bytes; /* in the file */
} npy_header;

static bool host_is_little_endian(void)
{
    const uint16_t one = 1;
    unsigned char first;
    memcpy(&first, &one, 1);
    return first == 1;
}

static int check_host(const char *name)
{
    if (!host_is_little_endian()) return ed_fail("%s: .npy support needs a little-endian host", name);
    return ED_OK;
}

/* ---- preamble: magic, version, header length ----------------------------------- */

static int check_magic(const unsigned char *p, size_t n, const char *name)
{
    size_t cmp = n < NPY_MAGIC_LEN ? n : NPY_MAGIC_LEN;
    if (n == 0 || memcmp(p, NPY_MAGIC, cmp) != 0) return ed_fail("%s: not an .npy file (bad magic)", name);
    if (n < NPY_MAGIC_LEN + 2) return ed_fail("%s: truncated: file ends inside the .npy preamble (%zu bytes)", name, n);
    return ED_OK;
}

/* Bytes of the header-length field for a format version, or ED_ERR. */
static int length_field_size(unsigned major, unsigned minor, const char *name, size_t *size)
{
    if (minor == 0 && major == 1) {
        *size = 2;
        return ED_OK;
    }
    if (minor == 0 && (major == 2 || major == 3)) {
        *size = 4;
        return ED_OK;
    }
    return ed_fail("%s: unsupported .npy format version %u.%u (edifice reads 1.0, 2.0, 3.0)", name, major, minor);
}

static size_t read_le(const unsigned char *p, size_t size)
{
    size_t v = 0;
    for (size_t i = size; i-- > 0;) v = v << 8 | p[i];
    return v;
}

static int check_header_len(size_t len, const char *name)
{
    if (len > NPY_MAX_HEADER) return ed_fail("%s: implausible .npy header length %zu bytes", name, len);
    return ED_OK;
}

/* ---- header dict --------------------------------------------------------------- */

typedef struct {
    const char *text, *p, *end;
    size_t file_offset; /* of text[0], so messages point into the file */
    const char *name;
} cursor;

static int malformed(const cursor *c, const char *expected)
{
    return ed_fail("%s: malformed .npy header at byte %zu: expected %s", c->name,
                   c->file_offset + (size_t)(c->p - c->text), expected);
}

static void skip_space(cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

/* Skips spaces, then consumes ch if it is next. */
static bool accept(cursor *c, char ch)
{
    skip_space(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return true;
    }
    return false;
}

static int expect(cursor *c, char ch, const char *what) { return accept(c, ch) ? ED_OK : malformed(c, what); }

static bool accept_word(cursor *c, const char *word)
{
    skip_space(c);
    size_t len = strlen(word);
    if ((size_t)(c->end - c->p) >= len && memcmp(c->p, word, len) == 0) {
        c->p += len;
        return true;
    }
    return false;
}

/* A Python string literal without escapes (numpy never writes any), into out. */
static int parse_string(cursor *c, char *out, size_t cap)
{
    skip_space(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) return malformed(c, "a quoted string");
    char quote = *c->p++;
    size_t len = 0;
    while (c->p < c->end && *c->p != quote) {
        if (*c->p == '\\' || len + 1 >= cap) return malformed(c, "a short string without escapes");
        out[len++] = *c->p++;
    }
    if (c->p >= c->end) return malformed(c, "a closing quote");
    c->p++;
    out[len] = '\0';
    return ED_OK;
}

static int parse_bool(cursor *c, bool *out)
{
    if (accept_word(c, "True")) *out = true;
    else if (accept_word(c, "False")) *out = false;
    else return malformed(c, "True or False");
    return ED_OK;
}

static int parse_dim(cursor *c, int64_t *out)
{
    skip_space(c);
    if (c->p >= c->end || *c->p < '0' || *c->p > '9') return malformed(c, "a non-negative integer dimension");
    int64_t v = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        int digit = *c->p - '0';
        if (v > (INT64_MAX - digit) / 10) return malformed(c, "a dimension that fits in 64 bits");
        v = v * 10 + digit;
        c->p++;
    }
    if (c->p < c->end && *c->p == 'L') /* Python 2 era files write longs as 3L */
        c->p++;
    *out = v;
    return ED_OK;
}

/* A tuple of dims: (), (3,), (2, 3) with an optional trailing comma. */
static int parse_shape(cursor *c, ed_shape *out, int *rank)
{
    *rank = 0;
    if (expect(c, '(', "'(' starting the shape tuple") != ED_OK) return ED_ERR;
    while (!accept(c, ')')) {
        int64_t d = 0;
        if (parse_dim(c, &d) != ED_OK) return ED_ERR;
        if (*rank < ED_MAX_RANK) out->dim[*rank] = d;
        (*rank)++;
        if (!accept(c, ',')) {
            if (expect(c, ')', "',' or ')' in the shape tuple") != ED_OK) return ED_ERR;
            break;
        }
    }
    return ED_OK;
}

typedef struct {
    char descr[32];
    bool fortran_order;
    ed_shape shape;
    int rank; /* may exceed ED_MAX_RANK: reported after parsing */
    bool seen_descr, seen_order, seen_shape;
} header_fields;

static int parse_descr(cursor *c, header_fields *h)
{
    skip_space(c);
    if (c->p < c->end && *c->p == '[')
        return ed_fail("%s: unsupported dtype: structured arrays are not supported "
                       "(edifice reads <f4, <i4, <f8)",
                       c->name);
    return parse_string(c, h->descr, sizeof h->descr);
}

static int parse_entry(cursor *c, header_fields *h)
{
    char key[32];
    if (parse_string(c, key, sizeof key) != ED_OK) return ED_ERR;
    if (expect(c, ':', "':' after a key") != ED_OK) return ED_ERR;
    bool *seen;
    int status;
    if (strcmp(key, "descr") == 0) {
        seen = &h->seen_descr;
        status = parse_descr(c, h);
    } else if (strcmp(key, "fortran_order") == 0) {
        seen = &h->seen_order;
        status = parse_bool(c, &h->fortran_order);
    } else if (strcmp(key, "shape") == 0) {
        seen = &h->seen_shape;
        status = parse_shape(c, &h->shape, &h->rank);
    } else {
        return ed_fail("%s: malformed .npy header: unexpected key '%s'", c->name, key);
    }
    if (status != ED_OK) return ED_ERR;
    if (*seen) return ed_fail("%s: malformed .npy header: key '%s' appears twice", c->name, key);
    *seen = true;
    return ED_OK;
}

static int parse_dict(cursor *c, header_fields *h)
{
    if (expect(c, '{', "'{' starting the header dict") != ED_OK) return ED_ERR;
    while (!accept(c, '}')) {
        if (parse_entry(c, h) != ED_OK) return ED_ERR;
        if (!accept(c, ',')) {
            if (expect(c, '}', "',' or '}' in the header dict") != ED_OK) return ED_ERR;
            break;
        }
    }
    skip_space(c);
    if (c->p != c->end) return malformed(c, "only padding after the header dict");
    if (!h->seen_descr || !h->seen_order || !h->seen_shape)
        return ed_fail("%s: malformed .npy header: missing key '%s'", c->name,
                       !h->seen_descr   ? "descr"
                       : !h->seen_order ? "fortran_order"
                                        : "shape");
    return ED_OK;
}

/* Maps a descr such as '<f4' to a type (the non-native ones only when widen), with a
 * message naming what is wrong. */
static int dtype_from_descr(const char *descr, const char *name, bool widen, const npy_type **out)
{
    char order = descr[0];
    for (size_t i = 0; i < sizeof npy_types / sizeof npy_types[0]; i++) {
        const npy_type *t = &npy_types[i];
        if (order == '\0' || strcmp(descr + 1, t->code) != 0 || (!t->native && !widen)) continue;
        if (order == '<' || order == '|' || order == '=') {
            *out = t;
            return ED_OK;
        }
        if (order == '>')
            return ed_fail("%s: big-endian dtype '%s' is not supported (save with '<%s')", name, descr, t->code);
    }
    if (widen)
        return ed_fail("%s: unsupported dtype '%s' (edifice reads <f4, <f8 and integers of 1 to 8 bytes)", name, descr);
    return ed_fail("%s: unsupported dtype '%s' (edifice reads <f4, <i4, <f8)", name, descr);
}

static int parse_header(const char *text, size_t len, size_t file_offset, const char *name, bool widen, npy_header *out)
{
    cursor c = {.text = text, .p = text, .end = text + len, .file_offset = file_offset, .name = name};
    header_fields h = {0};
    if (parse_dict(&c, &h) != ED_OK) return ED_ERR;
    if (dtype_from_descr(h.descr, name, widen, &out->type) != ED_OK) return ED_ERR;
    out->dtype = out->type->dtype;
    if (h.fortran_order)
        return ed_fail("%s: fortran_order arrays are not supported (save a C-ordered array, "
                       "e.g. np.ascontiguousarray)",
                       name);
    if (h.rank > ED_MAX_RANK) return ed_fail("%s: rank %d exceeds edifice's maximum of %d", name, h.rank, ED_MAX_RANK);
    out->shape = h.shape;
    out->shape.rank = h.rank;
    int64_t numel = ed_shape_numel(out->shape);
    size_t size = out->type->size;
    if (numel < 0 || (uint64_t)numel > SIZE_MAX / size)
        return ed_fail("%s: shape in the .npy header is too large", name);
    out->data_bytes = (size_t)numel * size;
    return ED_OK;
}

static int check_data_size(size_t have, size_t want, const char *name)
{
    if (have < want) return ed_fail("%s: truncated: header says %zu bytes of data, file has %zu", name, want, have);
    if (have > want)
        return ed_fail("%s: %zu unexpected bytes after the data (header says %zu bytes of data)", name, have - want,
                       want);
    return ED_OK;
}

/* ---- reading from memory ----------------------------------------------------------- */

/* Magic, version and header length of an in-memory image. */
static int parse_preamble(const unsigned char *p, size_t n, const char *name, size_t *preamble, size_t *header_len)
{
    if (check_magic(p, n, name) != ED_OK) return ED_ERR;
    size_t field = 0;
    if (length_field_size(p[6], p[7], name, &field) != ED_OK) return ED_ERR;
    *preamble = NPY_MAGIC_LEN + 2 + field;
    if (n < *preamble) return ed_fail("%s: truncated: file ends inside the .npy preamble (%zu bytes)", name, n);
    *header_len = read_le(p + NPY_MAGIC_LEN + 2, field);
    if (check_header_len(*header_len, name) != ED_OK) return ED_ERR;
    if (n - *preamble < *header_len) return ed_fail(HEADER_TRUNCATED, name, *header_len, n - *preamble);
    return ED_OK;
}

ed_tensor *ed_npy_parse(const void *bytes, size_t n, const char *what)
{
    const char *name = what ? what : "npy";
    const unsigned char *p = bytes;
    if (check_host(name) != ED_OK) return NULL;
    if (!p && n) {
        ed_fail("%s: NULL buffer", name);
        return NULL;
    }
    size_t preamble = 0, header_len = 0;
    npy_header h = {0};
    if (parse_preamble(p, n, name, &preamble, &header_len) != ED_OK ||
        parse_header((const char *)p + preamble, header_len, preamble, name, false, &h) != ED_OK)
        return NULL;
    size_t data_offset = preamble + header_len;
    if (check_data_size(n - data_offset, h.data_bytes, name) != ED_OK) return NULL;
    ed_tensor *t = ed_tensor_new(h.dtype, h.shape);
    if (t && h.data_bytes) memcpy(t->data, p + data_offset, h.data_bytes);
    return t;
}

/* ---- reading from a file ------------------------------------------------------------- */

/* Reads up to n bytes; *got is how many arrived. ED_ERR only on an I/O error. */
static int read_some(FILE *f, void *buf, size_t n, size_t *got, const char *name)
{
    *got = fread(buf, 1, n, f);
    if (*got < n && ferror(f)) return ed_fail("%s: read error: %s", name, strerror(errno));
    return ED_OK;
}

/* Counts the bytes left in f (for the trailing-bytes message). */
static int count_rest(FILE *f, size_t *rest, const char *name)
{
    unsigned char buf[4096];
    size_t got;
    *rest = 0;
    do {
        if (read_some(f, buf, sizeof buf, &got, name) != ED_OK) return ED_ERR;
        *rest += got;
    } while (got == sizeof buf);
    return ED_OK;
}

static int read_preamble(FILE *f, const char *name, size_t *preamble, size_t *header_len)
{
    unsigned char p[NPY_MAGIC_LEN + 2 + 4];
    size_t got;
    if (read_some(f, p, NPY_MAGIC_LEN + 2, &got, name) != ED_OK) return ED_ERR;
    if (check_magic(p, got, name) != ED_OK) return ED_ERR;
    size_t field = 0;
    if (length_field_size(p[6], p[7], name, &field) != ED_OK) return ED_ERR;
    if (read_some(f, p + NPY_MAGIC_LEN + 2, field, &got, name) != ED_OK) return ED_ERR;
    if (got < field)
        return ed_fail("%s: truncated: file ends inside the .npy preamble (%zu bytes)", name, NPY_MAGIC_LEN + 2 + got);
    *preamble = NPY_MAGIC_LEN + 2 + field;
    *header_len = read_le(p + NPY_MAGIC_LEN + 2, field);
    return check_header_len(*header_len, name);
}

static int read_header(FILE *f, const char *name, bool widen, npy_header *h)
{
    size_t preamble = 0, header_len = 0, got = 0;
    if (read_preamble(f, name, &preamble, &header_len) != ED_OK) return ED_ERR;
    char *text = malloc(header_len ? header_len : 1);
    if (!text) return ed_fail("%s: out of memory reading the header", name);
    int status = read_some(f, text, header_len, &got, name);
    if (status == ED_OK && got < header_len) status = ed_fail(HEADER_TRUNCATED, name, header_len, got);
    if (status == ED_OK) status = parse_header(text, header_len, preamble, name, widen, h);
    free(text);
    return status;
}

/* For a regular file, checks the data size against the file size before anything
 * is allocated, so a corrupt shape cannot ask for terabytes. */
static int check_file_size(FILE *f, size_t want, const char *name)
{
    struct stat info;
    long pos = ftell(f);
    if (pos < 0 || fstat(fileno(f), &info) != 0 || !S_ISREG(info.st_mode))
        return ED_OK; /* not a plain file: the read itself will tell */
    size_t have = info.st_size > pos ? (size_t)(info.st_size - pos) : 0;
    return check_data_size(have, want, name);
}

/* Element i of n integers of type t at p, as an int64 (u8 values above INT64_MAX
 * saturate, which is out of i32's range all the same). */
static int64_t int_at(const unsigned char *p, const npy_type *t, size_t i)
{
    uint64_t v = 0;
    memcpy(&v, p + i * t->size, t->size); /* little-endian host: low bytes first */
    if (t->is_signed && t->size < 8 && (v >> (8 * t->size - 1)) & 1) v |= ~UINT64_C(0) << (8 * t->size);
    if (!t->is_signed && v > INT64_MAX) return INT64_MAX;
    return (int64_t)v;
}

/* Converts the file's integers in raw into t's i32 elements, each checked for range. */
static int narrow_to_i32(const unsigned char *raw, const npy_header *h, ed_tensor *t, const char *name)
{
    int32_t *out = t->data;
    int64_t n = ed_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        int64_t v = int_at(raw, h->type, (size_t)i);
        if (v < INT32_MIN || v > INT32_MAX)
            return ed_fail("%s: element %lld is %lld, outside the i32 range edifice converts to", name, (long long)i,
                           (long long)v);
        out[i] = (int32_t)v;
    }
    return ED_OK;
}

static ed_tensor *read_tensor(FILE *f, const char *name, bool widen)
{
    npy_header h = {0};
    if (read_header(f, name, widen, &h) != ED_OK || check_file_size(f, h.data_bytes, name) != ED_OK) return NULL;
    ed_tensor *t = ed_tensor_new(h.dtype, h.shape);
    if (!t) return NULL;
    unsigned char *raw = h.type->native ? t->data : malloc(h.data_bytes ? h.data_bytes : 1);
    size_t got = 0, rest = 0;
    int status = raw ? ED_OK : ed_fail("%s: out of memory for %zu bytes", name, h.data_bytes);
    if (status == ED_OK) status = read_some(f, raw, h.data_bytes, &got, name);
    if (status == ED_OK) status = count_rest(f, &rest, name);
    if (status == ED_OK) status = check_data_size(got + rest, h.data_bytes, name);
    if (status == ED_OK && !h.type->native) status = narrow_to_i32(raw, &h, t, name);
    if (raw != t->data) free(raw);
    if (status != ED_OK) {
        ed_tensor_free(t);
        return NULL;
    }
    return t;
}

static FILE *open_for_reading(const char *path)
{
    if (!path) {
        ed_fail("npy: NULL path");
        return NULL;
    }
    if (check_host(path) != ED_OK) return NULL;
    FILE *f = fopen(path, "rb");
    if (!f) ed_fail("%s: cannot open: %s", path, strerror(errno));
    return f;
}

ed_tensor *ed_npy_read(const char *path)
{
    FILE *f = open_for_reading(path);
    if (!f) return NULL;
    ed_tensor *t = read_tensor(f, path, false);
    fclose(f);
    return t;
}

ed_tensor *ed_npy_read_any(const char *path)
{
    FILE *f = open_for_reading(path);
    if (!f) return NULL;
    ed_tensor *t = read_tensor(f, path, true);
    fclose(f);
    return t;
}

int ed_npy_peek(const char *path, char descr[4], ed_shape *shape)
{
    FILE *f = open_for_reading(path);
    if (!f) return ED_ERR;
    npy_header h = {0};
    int status = read_header(f, path, true, &h);
    fclose(f);
    if (status != ED_OK) return ED_ERR;
    snprintf(descr, 4, "%s", h.type->code);
    *shape = h.shape;
    return ED_OK;
}

/* ---- writing ------------------------------------------------------------------------- */

/* The whole preamble + header, padded with spaces so the data starts at a multiple of
 * NPY_DATA_ALIGN and ended by '\n' as numpy writes it. Returns its length. */
static size_t format_header(const ed_tensor *t, char *buf, size_t cap)
{
    static const char *descr[ED_DTYPE_COUNT] = {[ED_F32] = "<f4", [ED_I32] = "<i4", [ED_F64] = "<f8"};
    const size_t preamble = NPY_MAGIC_LEN + 4;
    char dict[512];
    size_t len = (size_t)snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                                  descr[t->dtype]);
    for (int i = 0; i < t->shape.rank; i++)
        len += (size_t)snprintf(dict + len, sizeof dict - len, i ? ", %lld" : "%lld", (long long)t->shape.dim[i]);
    len += (size_t)snprintf(dict + len, sizeof dict - len, "%s), }", t->shape.rank == 1 ? "," : "");
    size_t total = (preamble + len + 1 + NPY_DATA_ALIGN - 1) / NPY_DATA_ALIGN * NPY_DATA_ALIGN;
    size_t header_len = total - preamble;
    if (total > cap) return 0;
    memcpy(buf, NPY_MAGIC, NPY_MAGIC_LEN);
    buf[6] = 1; /* version 1.0 */
    buf[7] = 0;
    buf[8] = (char)(header_len & 0xff);
    buf[9] = (char)(header_len >> 8);
    memcpy(buf + preamble, dict, len);
    memset(buf + preamble + len, ' ', header_len - len - 1);
    buf[total - 1] = '\n';
    return total;
}

static int check_writable(const char *path, const ed_tensor *t)
{
    if (!path) return ed_fail("npy: NULL path");
    if (check_host(path) != ED_OK) return ED_ERR;
    if (!t) return ed_fail("%s: cannot write a NULL tensor", path);
    if (t->dtype != ED_F32 && t->dtype != ED_I32 && t->dtype != ED_F64)
        return ed_fail("%s: cannot write dtype %s (.npy files hold f32, i32 and f64; widen 16-bit weights first)", path,
                       ed_dtype_name(t->dtype));
    if (ed_shape_numel(t->shape) < 0) return ed_fail("%s: cannot write a tensor with an invalid shape", path);
    if (!t->data && ed_tensor_bytes(t)) return ed_fail("%s: tensor has no data", path);
    return ED_OK;
}

static int write_all(FILE *f, const char *path, const char *header, size_t header_len, const ed_tensor *t)
{
    size_t bytes = ed_tensor_bytes(t);
    if (fwrite(header, 1, header_len, f) != header_len || (bytes && fwrite(t->data, 1, bytes, f) != bytes))
        return ed_fail("%s: write failed: %s", path, strerror(errno));
    return ED_OK;
}

int ed_npy_write(const char *path, const ed_tensor *t)
{
    if (check_writable(path, t) != ED_OK) return ED_ERR;
    char header[1024];
    size_t header_len = format_header(t, header, sizeof header);
    if (header_len == 0) return ed_fail("%s: header too long", path);
    ed_atomic_file af;
    if (ed_atomic_open(&af, path) != ED_OK) return ED_ERR;
    return ed_atomic_finish(&af, write_all(af.f, path, header, header_len, t));
}
