/* safetensors checkpoints of an ed_store. Format: see safetensors.h and
 * https://github.com/huggingface/safetensors (README, "Format"). */
#include "io/safetensors.h"
#include "io/atomic_file.h"
#include "io/json.h"
#include "runtime/error.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

/* The reference implementation refuses headers over 100 MB; so do we. */
#define ST_MAX_HEADER 100000000u
#define KEY_FORMAT "edifice.format"
#define KEY_SEED "edifice.seed"
#define KEY_TRAINABLE "edifice.trainable"
#define KEY_CRC "edifice.crc32"
#define RESERVED_PREFIX "edifice."

static bool host_is_little_endian(void)
{
    const uint16_t one = 1;
    unsigned char first;
    memcpy(&first, &one, 1);
    return first == 1;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* ---- the metadata map ------------------------------------------------------------- */

struct ed_meta {
    int count, cap;
    char **keys, **values;
};

ed_meta *ed_meta_new(void)
{
    ed_meta *m = calloc(1, sizeof *m);
    if (!m) ed_fail("metadata: out of memory");
    return m;
}

void ed_meta_free(ed_meta *m)
{
    if (!m) return;
    for (int i = 0; i < m->count; i++) {
        free(m->keys[i]);
        free(m->values[i]);
    }
    free(m->keys);
    free(m->values);
    free(m);
}

static int meta_find(const ed_meta *m, const char *key)
{
    for (int i = 0; m && key && i < m->count; i++)
        if (strcmp(m->keys[i], key) == 0) return i;
    return -1;
}

static int meta_grow(ed_meta *m)
{
    if (m->count < m->cap) return ED_OK;
    if (m->cap >= INT32_MAX / 4) return ed_fail("metadata: too many entries");
    int cap = m->cap ? 2 * m->cap : 8;
    char **keys = realloc(m->keys, (size_t)cap * sizeof *keys);
    if (keys) m->keys = keys;
    char **values = keys ? realloc(m->values, (size_t)cap * sizeof *values) : NULL;
    if (!values) return ed_fail("metadata: out of memory");
    m->values = values;
    m->cap = cap;
    return ED_OK;
}

int ed_meta_set(ed_meta *m, const char *key, const char *value)
{
    if (!m || !key || !value) return ed_fail("metadata: NULL argument");
    if (!*key) return ed_fail("metadata: keys must be non-empty");
    char *v = dup_str(value);
    if (!v) return ed_fail("metadata: out of memory");
    int i = meta_find(m, key);
    if (i >= 0) {
        free(m->values[i]);
        m->values[i] = v;
        return ED_OK;
    }
    char *k = dup_str(key);
    if (!k || meta_grow(m) != ED_OK) {
        free(k);
        free(v);
        return ed_fail("metadata: out of memory");
    }
    m->keys[m->count] = k;
    m->values[m->count] = v;
    m->count++;
    return ED_OK;
}

const char *ed_meta_get(const ed_meta *m, const char *key)
{
    int i = meta_find(m, key);
    return i >= 0 ? m->values[i] : NULL;
}

int ed_meta_count(const ed_meta *m) { return m ? m->count : 0; }

const char *ed_meta_key(const ed_meta *m, int i) { return m && i >= 0 && i < m->count ? m->keys[i] : NULL; }

const char *ed_meta_value(const ed_meta *m, int i) { return m && i >= 0 && i < m->count ? m->values[i] : NULL; }

static bool utf8_ok(const char *s)
{
    size_t n = strlen(s);
    return ed_utf8_valid_prefix(s, n) == n;
}

/* ---- writing --------------------------------------------------------------------------- */

typedef struct {
    char *p;
    size_t len, cap;
    bool oom;
} sbuf;

static void sb_putn(sbuf *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_puts(sbuf *b, const char *s) { sb_putn(b, s, strlen(s)); }

/* s as a JSON string literal: quotes, backslashes and control characters escaped,
 * everything else (valid UTF-8, checked by the caller) as is. */
static void sb_json_string(sbuf *b, const char *s)
{
    sb_putn(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            sb_putn(b, esc, 2);
        } else if (*p < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", *p);
            sb_putn(b, esc, 6);
        } else {
            sb_putn(b, (const char *)p, 1);
        }
    }
    sb_putn(b, "\"", 1);
}

static const char *st_dtype_name(ed_dtype t)
{
    return t == ED_F32 ? "F32" : t == ED_I32 ? "I32" : t == ED_F64 ? "F64" : NULL;
}

static int check_save_args(const char *path, const ed_store *st, const ed_meta *meta)
{
    if (!path) return ed_fail("safetensors: NULL path");
    if (!host_is_little_endian()) return ed_fail("%s: safetensors support needs a little-endian host", path);
    if (!st) return ed_fail("%s: cannot save a NULL store", path);
    for (int i = 0; i < ed_meta_count(meta); i++) {
        const char *k = meta->keys[i];
        if (strncmp(k, RESERVED_PREFIX, strlen(RESERVED_PREFIX)) == 0)
            return ed_fail("%s: metadata key '%s' is reserved (keys starting with '" RESERVED_PREFIX
                           "' belong to edifice)",
                           path, k);
        if (!utf8_ok(k) || !utf8_ok(meta->values[i]))
            return ed_fail("%s: metadata entry %d is not valid UTF-8", path, i);
    }
    for (int i = 0; i < ed_store_count(st); i++) {
        const ed_tensor *t = ed_store_tensor(st, i);
        const char *name = ed_store_name(st, i);
        if (!utf8_ok(name)) return ed_fail("%s: tensor name #%d is not valid UTF-8", path, i);
        if (!t || !st_dtype_name(t->dtype) || (!t->data && ed_tensor_bytes(t)))
            return ed_fail("%s: tensor '%s' cannot be saved (no data or unknown dtype)", path, name);
    }
    return ED_OK;
}

/* The __metadata__ object: the caller's entries, then the reserved ones. *crc_at gets
 * the offset of the checksum's first digit in b. */
static void put_metadata(sbuf *b, const ed_store *st, const ed_meta *meta, size_t *crc_at)
{
    sb_puts(b, "\"__metadata__\":{");
    for (int i = 0; i < ed_meta_count(meta); i++) {
        sb_json_string(b, meta->keys[i]);
        sb_puts(b, ":");
        sb_json_string(b, meta->values[i]);
        sb_puts(b, ",");
    }
    char num[32];
    snprintf(num, sizeof num, "%" PRIu64, ed_store_seed(st));
    sb_puts(b, "\"" KEY_FORMAT "\":\"1\",\"" KEY_SEED "\":");
    sb_json_string(b, num);
    sb_puts(b, ",\"" KEY_TRAINABLE "\":");
    sbuf names = {0};
    sb_puts(&names, "[");
    for (int i = 0, first = 1; i < ed_store_count(st); i++) {
        if (!ed_store_trainable(st, i)) continue;
        if (!first) sb_puts(&names, ",");
        sb_json_string(&names, ed_store_name(st, i));
        first = 0;
    }
    sb_puts(&names, "]");
    b->oom |= names.oom;
    sb_json_string(b, names.oom ? "" : names.p);
    free(names.p);
    sb_puts(b, ",\"" KEY_CRC "\":\"");
    *crc_at = b->len;
    sb_puts(b, "00000000\"}");
}

static void put_tensor(sbuf *b, const char *name, const ed_tensor *t, uint64_t begin)
{
    char num[80];
    sb_puts(b, ",");
    sb_json_string(b, name);
    sb_puts(b, ":{\"dtype\":\"");
    sb_puts(b, st_dtype_name(t->dtype));
    sb_puts(b, "\",\"shape\":[");
    for (int d = 0; d < t->shape.rank; d++) {
        snprintf(num, sizeof num, d ? ",%" PRId64 : "%" PRId64, t->shape.dim[d]);
        sb_puts(b, num);
    }
    snprintf(num, sizeof num, "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}", begin,
             begin + (uint64_t)ed_tensor_bytes(t));
    sb_puts(b, num);
}

/* The order of the tensors in the data: the F64 ones first, then the 4-byte ones, each
 * group in store order. The header is padded to 8 bytes, so every tensor starts at a
 * file offset that is a multiple of its element size (mmap-based readers and
 * torch views need that). begin[i] gets the data offset of store entry i. */
static int *data_order(const ed_store *st, uint64_t **begin)
{
    int n = ed_store_count(st), k = 0;
    int *order = malloc((size_t)(n ? n : 1) * sizeof *order);
    *begin = malloc((size_t)(n ? n : 1) * sizeof **begin);
    if (!order || !*begin) {
        free(order);
        free(*begin);
        *begin = NULL;
        return NULL;
    }
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < n; i++)
            if ((ed_store_tensor(st, i)->dtype == ED_F64) == (pass == 0)) order[k++] = i;
    uint64_t at = 0;
    for (k = 0; k < n; k++) {
        (*begin)[order[k]] = at;
        at += ed_tensor_bytes(ed_store_tensor(st, order[k]));
    }
    return order;
}

/* The whole header, padded with spaces to a multiple of 8 bytes; tensors listed in
 * store order (which loading keeps). */
static int build_header(const char *path, const ed_store *st, const ed_meta *meta, const uint64_t *begin, sbuf *b,
                        size_t *crc_at)
{
    sb_puts(b, "{");
    put_metadata(b, st, meta, crc_at);
    for (int i = 0; i < ed_store_count(st); i++) put_tensor(b, ed_store_name(st, i), ed_store_tensor(st, i), begin[i]);
    sb_puts(b, "}");
    while (!b->oom && b->len % 8) sb_puts(b, " ");
    if (b->oom) return ed_fail("%s: out of memory building the header", path);
    if (b->len > ST_MAX_HEADER)
        return ed_fail("%s: header of %zu bytes exceeds the format's limit of %u", path, b->len, ST_MAX_HEADER);
    return ED_OK;
}

static void put_le64(unsigned char out[8], uint64_t v)
{
    for (int i = 0; i < 8; i++) out[i] = (unsigned char)(v >> (8 * i));
}

static int write_file(const char *path, const unsigned char prefix[8], const sbuf *header, const ed_store *st,
                      const int *order)
{
    ed_atomic_file af;
    if (ed_atomic_open(&af, path) != ED_OK) return ED_ERR;
    int status = ED_OK;
    if (fwrite(prefix, 1, 8, af.f) != 8 || fwrite(header->p, 1, header->len, af.f) != header->len)
        status = ed_fail("%s: write failed: %s", path, strerror(errno));
    for (int k = 0; status == ED_OK && k < ed_store_count(st); k++) {
        const ed_tensor *t = ed_store_tensor(st, order[k]);
        size_t n = ed_tensor_bytes(t);
        if (n && fwrite(t->data, 1, n, af.f) != n) status = ed_fail("%s: write failed: %s", path, strerror(errno));
    }
    return ed_atomic_finish(&af, status);
}

/* CRC-32 of the file as it will be written, with the checksum digits as zeros. */
static uLong file_crc(const unsigned char prefix[8], const sbuf *header, const ed_store *st, const int *order)
{
    uLong crc = crc32_z(0, prefix, 8);
    crc = crc32_z(crc, (const Bytef *)header->p, header->len);
    for (int k = 0; k < ed_store_count(st); k++) {
        const ed_tensor *t = ed_store_tensor(st, order[k]);
        if (ed_tensor_bytes(t)) crc = crc32_z(crc, t->data, ed_tensor_bytes(t));
    }
    return crc;
}

int ed_safetensors_save(const char *path, const ed_store *st, const ed_meta *meta)
{
    if (check_save_args(path, st, meta) != ED_OK) return ED_ERR;
    uint64_t *begin = NULL;
    int *order = data_order(st, &begin);
    if (!order) return ed_fail("%s: out of memory", path);
    sbuf header = {0};
    size_t crc_at = 0;
    int status = build_header(path, st, meta, begin, &header, &crc_at);
    if (status == ED_OK) {
        unsigned char prefix[8];
        put_le64(prefix, header.len);
        char digits[9];
        snprintf(digits, sizeof digits, "%08lx", (unsigned long)(file_crc(prefix, &header, st, order) & 0xffffffffUL));
        memcpy(header.p + crc_at, digits, 8);
        status = write_file(path, prefix, &header, st, order);
    }
    free(header.p);
    free(order);
    free(begin);
    return status;
}

/* ---- reading: the JSON header ------------------------------------------------------- */

typedef struct {
    char *name;
    ed_dtype dtype;
    ed_shape shape;
    uint64_t begin, end, bytes;
    ed_tensor *t;
    bool trainable;
} tinfo;

typedef struct {
    const char *path;
    tinfo *tensors;
    int count, cap;
    ed_meta *meta; /* every __metadata__ entry, reserved ones included */
    bool seen_meta;
    size_t crc_at;  /* offset of the checksum's raw digits in the header */
    size_t crc_len; /* raw length of the checksum string; 0 if absent */
} header_info;

/* ---- reading: tensor entries and metadata -------------------------------------------- */

static int parse_dtype(ed_json *j, const char *name, ed_dtype *out)
{
    char *s = NULL;
    if (ed_json_string(j, &s, NULL, NULL) != ED_OK) return ED_ERR;
    int status = ED_OK;
    if (strcmp(s, "F32") == 0) *out = ED_F32;
    else if (strcmp(s, "I32") == 0) *out = ED_I32;
    else if (strcmp(s, "F64") == 0) *out = ED_F64;
    else
        status = ed_fail("%s: tensor '%s': dtype '%s' is not supported (edifice reads F32, "
                         "I32, F64)",
                         j->source, name, s);
    free(s);
    return status;
}

static int parse_dim(ed_json *j, void *ctx)
{
    tinfo *t = ctx;
    uint64_t d;
    if (ed_json_uint(j, &d) != ED_OK) return ED_ERR;
    if (t->shape.rank == ED_MAX_RANK)
        return ed_fail("%s: tensor '%s': rank above edifice's maximum of %d", j->source, t->name, ED_MAX_RANK);
    t->shape.dim[t->shape.rank++] = (int64_t)d;
    return ED_OK;
}

static int parse_offsets(ed_json *j, uint64_t *begin, uint64_t *end)
{
    if (ed_json_expect(j, '[', "'[' starting data_offsets") != ED_OK || ed_json_uint(j, begin) != ED_OK ||
        ed_json_expect(j, ',', "',' between the two data_offsets") != ED_OK || ed_json_uint(j, end) != ED_OK ||
        ed_json_expect(j, ']', "']' after the two data_offsets") != ED_OK)
        return ED_ERR;
    return ED_OK;
}

/* Bytes dtype x shape needs, or ED_ERR if that overflows. */
static int tensor_bytes(const char *path, tinfo *t)
{
    uint64_t n = ed_dtype_size(t->dtype);
    for (int d = 0; d < t->shape.rank; d++) {
        uint64_t dim = (uint64_t)t->shape.dim[d];
        if (dim && n > (UINT64_C(1) << 62) / dim) return ed_fail("%s: tensor '%s': shape too large", path, t->name);
        n *= dim;
    }
    t->bytes = n;
    return ED_OK;
}

/* A tensor entry's fields, with a bit per field seen. */
typedef struct {
    tinfo *t;
    unsigned seen;
} tensor_entry;

static int parse_tensor_field(ed_json *j, const char *key, void *ctx)
{
    static const char *const fields[] = {"dtype", "shape", "data_offsets"};
    tensor_entry *e = ctx;
    tinfo *t = e->t;
    int f = 0;
    while (f < 3 && strcmp(key, fields[f]) != 0) f++;
    if (f == 3) return ed_json_skip(j); /* unknown fields are allowed */
    if (e->seen & (1u << f)) return ed_fail("%s: tensor '%s': \"%s\" appears twice", j->source, t->name, key);
    e->seen |= 1u << f;
    if (f == 0) return parse_dtype(j, t->name, &t->dtype);
    if (f == 1) {
        t->shape = (ed_shape){0};
        return ed_json_array(j, "the shape", parse_dim, t);
    }
    return parse_offsets(j, &t->begin, &t->end);
}

static int parse_tensor(ed_json *j, tinfo *t)
{
    tensor_entry e = {t, 0};
    if (ed_json_object(j, "a tensor entry", parse_tensor_field, &e) != ED_OK) return ED_ERR;
    if (e.seen != 7)
        return ed_fail("%s: tensor '%s': missing \"%s\"", j->source, t->name,
                       !(e.seen & 1)   ? "dtype"
                       : !(e.seen & 2) ? "shape"
                                       : "data_offsets");
    return tensor_bytes(j->source, t);
}

static int parse_meta_entry(ed_json *j, const char *key, void *ctx)
{
    header_info *h = ctx;
    char *value = NULL;
    size_t raw = 0, raw_len = 0;
    int status = ed_json_peek(j) == '"' ? ed_json_string(j, &value, &raw, &raw_len)
                                        : ed_json_fail(j, "a string value in __metadata__");
    if (status == ED_OK && ed_meta_get(h->meta, key))
        status = ed_fail("%s: metadata key '%s' appears twice", h->path, key);
    if (status == ED_OK && !*key) status = ed_fail("%s: empty metadata key", h->path);
    if (status == ED_OK) status = ed_meta_set(h->meta, key, value);
    if (status == ED_OK && strcmp(key, KEY_CRC) == 0) {
        h->crc_at = raw;
        h->crc_len = raw_len;
    }
    free(value);
    return status;
}

static int parse_metadata(ed_json *j, header_info *h)
{
    if (h->seen_meta) return ed_fail("%s: \"__metadata__\" appears twice", h->path);
    h->seen_meta = true;
    if (ed_json_accept_null(j)) return ED_OK;
    return ed_json_object(j, "__metadata__", parse_meta_entry, h);
}

static tinfo *new_tensor_info(header_info *h)
{
    if (h->count == h->cap) {
        int cap = h->cap ? 2 * h->cap : 16;
        tinfo *t = h->count < INT32_MAX / 4 ? realloc(h->tensors, (size_t)cap * sizeof *t) : NULL;
        if (!t) {
            ed_fail("%s: out of memory reading the header", h->path);
            return NULL;
        }
        h->tensors = t;
        h->cap = cap;
    }
    tinfo *t = &h->tensors[h->count++];
    *t = (tinfo){.trainable = true};
    return t;
}

static int parse_member(ed_json *j, const char *key, void *ctx)
{
    header_info *h = ctx;
    if (strcmp(key, "__metadata__") == 0) return parse_metadata(j, h);
    tinfo *t = new_tensor_info(h);
    if (!t) return ED_ERR;
    if (!(t->name = dup_str(key))) return ed_fail("%s: out of memory reading the header", h->path);
    return parse_tensor(j, t);
}

static int parse_header(const char *text, size_t len, header_info *h)
{
    ed_json j;
    if (ed_json_init(&j, text, len, h->path, "JSON header", 8) != ED_OK ||
        ed_json_object(&j, "the header", parse_member, h) != ED_OK)
        return ED_ERR;
    return ed_json_end(&j, "only spaces after the header object");
}

/* ---- reading: checks across entries ------------------------------------------------- */

/* qsort has no context argument: the comparators read the array from here. */
static _Thread_local const tinfo *sort_base;

static int by_offset(const void *a, const void *b)
{
    const tinfo *x = &sort_base[*(const int *)a], *y = &sort_base[*(const int *)b];
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(sort_base[*(const int *)a].name, sort_base[*(const int *)b].name);
}

/* Indices 0..count-1 of h's tensors sorted by cmp. */
static int *sorted_index(const header_info *h, int (*cmp)(const void *, const void *))
{
    int *idx = malloc((size_t)(h->count ? h->count : 1) * sizeof *idx);
    if (!idx) {
        ed_fail("%s: out of memory", h->path);
        return NULL;
    }
    for (int i = 0; i < h->count; i++) idx[i] = i;
    sort_base = h->tensors;
    qsort(idx, (size_t)h->count, sizeof *idx, cmp);
    return idx;
}

static int check_entry(const header_info *h, const tinfo *t)
{
    char type[96];
    if (!*t->name) return ed_fail("%s: a tensor has an empty name", h->path);
    if (t->begin > t->end)
        return ed_fail("%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] are reversed", h->path, t->name,
                       t->begin, t->end);
    if (t->end - t->begin != t->bytes)
        return ed_fail("%s: tensor '%s': %s needs %" PRIu64 " bytes but data_offsets [%" PRIu64 ", %" PRIu64
                       "] hold %" PRIu64 " (dtype or shape does not match the data)",
                       h->path, t->name, ed_type_str(t->dtype, t->shape, type, sizeof type), t->bytes, t->begin, t->end,
                       t->end - t->begin);
    return ED_OK;
}

/* The tensors, sorted by offset, must tile [0, data_len) exactly. */
static int check_layout(const header_info *h, const int *order, uint64_t data_len, uint64_t file_size)
{
    bool tiles = true;
    uint64_t at = 0;
    for (int k = 0; k < h->count; k++) {
        const tinfo *t = &h->tensors[order[k]];
        tiles = tiles && t->begin == at;
        at = t->end > at ? t->end : at;
    }
    for (int k = 0; k < h->count; k++) {
        const tinfo *t = &h->tensors[order[k]];
        if (t->end <= data_len) continue;
        if (tiles)
            return ed_fail("%s: truncated: the tensors need %" PRIu64 " bytes of data but the "
                           "file (%" PRIu64 " bytes) has %" PRIu64 " after the header",
                           h->path, at, file_size, data_len);
        return ed_fail("%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] are out of "
                       "range (the data buffer has %" PRIu64 " bytes)",
                       h->path, t->name, t->begin, t->end, data_len);
    }
    at = 0;
    for (int k = 0; k < h->count; k++) {
        const tinfo *t = &h->tensors[order[k]];
        if (t->begin > at)
            return ed_fail("%s: bytes %" PRIu64 "..%" PRIu64 " of the data belong to no tensor", h->path, at, t->begin);
        if (t->begin < at)
            return ed_fail("%s: tensor '%s' overlaps tensor '%s' in the data", h->path, t->name,
                           h->tensors[order[k - 1]].name);
        at = t->end;
    }
    if (at < data_len) return ed_fail("%s: %" PRIu64 " unexpected bytes after the last tensor", h->path, data_len - at);
    return ED_OK;
}

static int check_names(const header_info *h, const int *by_name_idx)
{
    for (int k = 1; k < h->count; k++)
        if (strcmp(h->tensors[by_name_idx[k]].name, h->tensors[by_name_idx[k - 1]].name) == 0)
            return ed_fail("%s: tensor '%s' appears twice", h->path, h->tensors[by_name_idx[k]].name);
    return ED_OK;
}

static tinfo *find_by_name(header_info *h, const int *by_name_idx, const char *name)
{
    int lo = 0, hi = h->count - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2, c = strcmp(h->tensors[by_name_idx[mid]].name, name);
        if (c == 0) return &h->tensors[by_name_idx[mid]];
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return NULL;
}

typedef struct {
    header_info *h;
    const int *by_name_idx;
} trainable_list;

static int mark_trainable(ed_json *j, void *ctx)
{
    trainable_list *l = ctx;
    char *name = NULL;
    if (ed_json_string(j, &name, NULL, NULL) != ED_OK) return ED_ERR;
    tinfo *t = find_by_name(l->h, l->by_name_idx, name);
    if (!t) ed_fail("%s: edifice.trainable names '%s', which is not in the file", l->h->path, name);
    free(name);
    if (!t) return ED_ERR;
    t->trainable = true;
    return ED_OK;
}

/* "edifice.trainable": a JSON array of names, each a tensor of the file. */
static int apply_trainable(header_info *h, const int *by_name_idx, const char *list)
{
    for (int i = 0; i < h->count; i++) h->tensors[i].trainable = false;
    ed_json j;
    trainable_list l = {h, by_name_idx};
    if (ed_json_init(&j, list, strlen(list), h->path, "edifice.trainable metadata", 0) != ED_OK ||
        ed_json_array(&j, "the list", mark_trainable, &l) != ED_OK)
        return ED_ERR;
    return ed_json_end(&j, "the end of the list");
}

static int parse_seed(const char *path, const char *s, uint64_t *seed)
{
    ed_json j;
    if (ed_json_init(&j, s, strlen(s), path, "edifice.seed", 0) != ED_OK || ed_json_uint(&j, seed) != ED_OK)
        return ED_ERR;
    return j.p == j.end ? ED_OK : ed_json_fail(&j, "only digits");
}

static bool is_known_key(const char *k)
{
    return strcmp(k, KEY_FORMAT) == 0 || strcmp(k, KEY_SEED) == 0 || strcmp(k, KEY_TRAINABLE) == 0 ||
           strcmp(k, KEY_CRC) == 0;
}

/* Whether any metadata key starts with "edifice.". */
static bool has_reserved_key(const ed_meta *m)
{
    for (int i = 0; i < m->count; i++)
        if (strncmp(m->keys[i], RESERVED_PREFIX, strlen(RESERVED_PREFIX)) == 0) return true;
    return false;
}

/* The reserved keys of an edifice file: checksum, format, seed, trainable flags. The
 * checksum is required as soon as any "edifice." key is there, so a flipped bit in one
 * key's name cannot turn an edifice file into an unchecked foreign one. */
static int check_reserved(header_info *h, const int *by_name_idx, uint64_t *seed)
{
    *seed = 0;
    if (!has_reserved_key(h->meta)) return ED_OK; /* a file from another tool */
    for (int i = 0; i < h->meta->count; i++) {
        /* An unknown one would pass into the caller's metadata, which no save accepts back. */
        const char *k = h->meta->keys[i];
        if (strncmp(k, RESERVED_PREFIX, strlen(RESERVED_PREFIX)) == 0 && !is_known_key(k))
            return ed_fail("%s: unknown reserved metadata key '%s' (this edifice reads format 1: " KEY_FORMAT
                           ", " KEY_SEED ", " KEY_TRAINABLE ", " KEY_CRC ")",
                           h->path, k);
    }
    const char *crc = ed_meta_get(h->meta, KEY_CRC);
    if (!crc) return ed_fail("%s: corrupt: an edifice checkpoint without its " KEY_CRC " checksum", h->path);
    bool hex = h->crc_len == 8 && strlen(crc) == 8;
    for (int i = 0; hex && i < 8; i++) hex = (crc[i] >= '0' && crc[i] <= '9') || (crc[i] >= 'a' && crc[i] <= 'f');
    if (!hex) return ed_fail("%s: corrupt: " KEY_CRC " is '%s', not 8 lower-case hex digits", h->path, crc);
    const char *format = ed_meta_get(h->meta, KEY_FORMAT);
    if (!format || strcmp(format, "1") != 0)
        return ed_fail("%s: checkpoint format '%s' is not supported (this edifice reads "
                       "format 1)",
                       h->path, format ? format : "(missing)");
    const char *seed_text = ed_meta_get(h->meta, KEY_SEED);
    if (seed_text && parse_seed(h->path, seed_text, seed) != ED_OK) return ED_ERR;
    const char *trainable = ed_meta_get(h->meta, KEY_TRAINABLE);
    return trainable ? apply_trainable(h, by_name_idx, trainable) : ED_OK;
}

/* ---- reading: the file ---------------------------------------------------------------- */

static void header_free(header_info *h)
{
    for (int i = 0; i < h->count; i++) {
        free(h->tensors[i].name);
        ed_tensor_free(h->tensors[i].t);
    }
    free(h->tensors);
    ed_meta_free(h->meta);
    *h = (header_info){0};
}

static int read_exact(FILE *f, void *buf, size_t n, const char *path, const char *what)
{
    size_t got = n ? fread(buf, 1, n, f) : 0;
    if (got == n) return ED_OK;
    if (ferror(f)) return ed_fail("%s: read error: %s", path, strerror(errno));
    return ed_fail("%s: truncated: the file ended while reading %s", path, what);
}

/* The 8-byte length and the header text; *size is the file's size. */
static int read_header_text(FILE *f, const char *path, char **text, uint64_t *header_len, uint64_t *size,
                            unsigned char prefix[8])
{
    struct stat info;
    if (fstat(fileno(f), &info) != 0 || !S_ISREG(info.st_mode)) return ed_fail("%s: not a regular file", path);
    *size = (uint64_t)info.st_size;
    if (*size < 8)
        return ed_fail("%s: truncated: %" PRIu64 " bytes, shorter than the 8-byte header "
                       "length",
                       path, *size);
    if (read_exact(f, prefix, 8, path, "the header length") != ED_OK) return ED_ERR;
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | prefix[i];
    if (n > ST_MAX_HEADER)
        return ed_fail("%s: not a safetensors file: header length %" PRIu64 " exceeds the "
                       "format's limit of %u bytes",
                       path, n, ST_MAX_HEADER);
    if (n > *size - 8)
        return ed_fail("%s: truncated: the header length says %" PRIu64 " bytes but only %" PRIu64 " follow", path, n,
                       *size - 8);
    *header_len = n;
    *text = malloc(n ? n : 1);
    if (!*text) return ed_fail("%s: out of memory reading the header", path);
    return read_exact(f, *text, n, path, "the header");
}

/* Reads every tensor's bytes (in file order) and checks the CRC if there is one. */
static int read_data(FILE *f, header_info *h, const int *order, uLong crc)
{
    for (int k = 0; k < h->count; k++) {
        tinfo *t = &h->tensors[order[k]];
        t->t = ed_tensor_new(t->dtype, t->shape);
        if (!t->t) return ED_ERR;
        if (read_exact(f, t->t->data, t->bytes, h->path, "the tensor data") != ED_OK) return ED_ERR;
        if (t->bytes) crc = crc32_z(crc, t->t->data, t->bytes);
    }
    const char *want = ed_meta_get(h->meta, KEY_CRC);
    if (!want) return ED_OK; /* a foreign file (check_reserved insists on it for ours) */
    char got[9];
    snprintf(got, sizeof got, "%08lx", (unsigned long)(crc & 0xffffffffUL));
    if (strcmp(got, want) != 0)
        return ed_fail("%s: corrupt: checksum mismatch (the file says crc32 %s, its contents "
                       "give %s)",
                       h->path, want, got);
    return ED_OK;
}

/* CRC of the length field and of the header with the checksum digits as zeros. */
static uLong header_crc(const unsigned char prefix[8], char *text, uint64_t len, const header_info *h)
{
    uLong crc = crc32_z(0, prefix, 8);
    char saved[8];
    bool patch = h->crc_len == 8;
    if (patch) {
        memcpy(saved, text + h->crc_at, 8);
        memset(text + h->crc_at, '0', 8);
    }
    crc = crc32_z(crc, (const Bytef *)text, len);
    if (patch) memcpy(text + h->crc_at, saved, 8);
    return crc;
}

/* Reads and fully validates path into h (tensors loaded, h->tensors[i].t set). */
static int read_checkpoint(const char *path, header_info *h, uint64_t *seed)
{
    *h = (header_info){.path = path};
    if (!path) return ed_fail("safetensors: NULL path");
    if (!host_is_little_endian()) return ed_fail("%s: safetensors support needs a little-endian host", path);
    if (!(h->meta = ed_meta_new())) return ED_ERR;
    FILE *f = fopen(path, "rb");
    if (!f) return ed_fail("%s: cannot open: %s", path, strerror(errno));
    char *text = NULL;
    uint64_t len = 0, size = 0;
    unsigned char prefix[8];
    int *order = NULL, *names = NULL;
    int status = read_header_text(f, path, &text, &len, &size, prefix);
    if (status == ED_OK) status = parse_header(text, len, h);
    for (int i = 0; status == ED_OK && i < h->count; i++) status = check_entry(h, &h->tensors[i]);
    if (status == ED_OK) status = (order = sorted_index(h, by_offset)) ? ED_OK : ED_ERR;
    if (status == ED_OK) status = check_layout(h, order, size - 8 - len, size);
    if (status == ED_OK) status = (names = sorted_index(h, by_name)) ? check_names(h, names) : ED_ERR;
    if (status == ED_OK) status = check_reserved(h, names, seed);
    if (status == ED_OK) status = read_data(f, h, order, header_crc(prefix, text, len, h));
    free(order);
    free(names);
    free(text);
    fclose(f);
    return status;
}

/* The caller's metadata: every entry except the reserved ones. */
static int user_meta(const header_info *h, ed_meta **meta)
{
    if (!meta) return ED_OK;
    *meta = ed_meta_new();
    if (!*meta) return ED_ERR;
    for (int i = 0; i < h->meta->count; i++) {
        const char *k = h->meta->keys[i];
        if (is_known_key(k)) continue;
        if (ed_meta_set(*meta, k, h->meta->values[i]) != ED_OK) {
            ed_meta_free(*meta);
            *meta = NULL;
            return ED_ERR;
        }
    }
    return ED_OK;
}

ed_store *ed_safetensors_load(const char *path, ed_meta **meta)
{
    if (meta) *meta = NULL;
    header_info h;
    uint64_t seed = 0;
    ed_store *st = NULL;
    if (read_checkpoint(path, &h, &seed) == ED_OK && (st = ed_store_new(seed))) {
        for (int i = 0; i < h.count; i++) {
            tinfo *t = &h.tensors[i];
            ed_tensor *owned = t->t;
            t->t = NULL;
            if (ed_store_put(st, t->name, owned, t->trainable) != ED_OK) {
                ed_store_free(st);
                st = NULL;
                break;
            }
        }
    }
    if (st && user_meta(&h, meta) != ED_OK) {
        ed_store_free(st);
        st = NULL;
    }
    header_free(&h);
    return st;
}

/* Every check of load_into, before the store is touched. */
static int check_against_store(const header_info *h, const ed_store *st, bool exact)
{
    char a[96], b[96];
    for (int i = 0; i < h->count; i++) {
        const tinfo *t = &h->tensors[i];
        const ed_tensor *have = ed_store_get(st, t->name);
        if (!have && exact)
            return ed_fail("%s: tensor '%s' is in the file but not in the store (a checkpoint "
                           "of a different model?)",
                           h->path, t->name);
        if (have && (have->dtype != t->dtype || !ed_shape_eq(have->shape, t->shape)))
            return ed_fail("%s: tensor '%s' is %s in the file but %s in the store", h->path, t->name,
                           ed_type_str(t->dtype, t->shape, a, sizeof a),
                           ed_type_str(have->dtype, have->shape, b, sizeof b));
    }
    /* Every name of the file is in the store and names are unique on both sides, so
     * equal counts mean equal sets. */
    if (!exact || h->count == ed_store_count(st)) return ED_OK;
    for (int i = 0; i < ed_store_count(st); i++) {
        const char *name = ed_store_name(st, i);
        bool found = false;
        for (int k = 0; !found && k < h->count; k++) found = strcmp(h->tensors[k].name, name) == 0;
        if (!found) return ed_fail("%s: the store's tensor '%s' is missing from the file", h->path, name);
    }
    return ED_OK;
}

int ed_safetensors_load_into(const char *path, ed_store *st, bool exact, ed_meta **meta)
{
    if (meta) *meta = NULL;
    if (!st) return ed_fail("%s: cannot load into a NULL store", path ? path : "safetensors");
    header_info h;
    uint64_t seed = 0;
    int status = read_checkpoint(path, &h, &seed);
    if (status == ED_OK) status = check_against_store(&h, st, exact);
    ed_meta *m = NULL;
    if (status == ED_OK && meta) status = user_meta(&h, &m);
    for (int i = 0; status == ED_OK && i < h.count; i++) {
        tinfo *t = &h.tensors[i];
        ed_tensor *have = ed_store_get(st, t->name);
        if (have) {
            if (t->bytes) memcpy(have->data, t->t->data, t->bytes);
            continue;
        }
        ed_tensor *owned = t->t;
        t->t = NULL;
        status = ed_store_put(st, t->name, owned, t->trainable);
    }
    header_free(&h);
    if (meta && status == ED_OK) *meta = m;
    else ed_meta_free(m);
    return status;
}
