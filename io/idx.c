/* IDX reader: header checks first, then one allocation of exactly the bytes the dims
 * promise, bounded by what the file on disk can hold. */
#include "io/idx.h"
#include "runtime/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

/* deflate never compresses better than about 1032:1, so a gzip file of n bytes holds
 * at most this many times n bytes: a bound on what corrupt dims may ask for. */
#define GZIP_MAX_RATIO 1040

static size_t type_size(int type)
{
    switch (type) {
    case ED_IDX_U8: case ED_IDX_I8: return 1;
    case ED_IDX_I16: return 2;
    case ED_IDX_I32: case ED_IDX_F32: return 4;
    case ED_IDX_F64: return 8;
    default: return 0;
    }
}

const char *ed_idx_type_name(int type)
{
    switch (type) {
    case ED_IDX_U8: return "u8";
    case ED_IDX_I8: return "i8";
    case ED_IDX_I16: return "i16";
    case ED_IDX_I32: return "i32";
    case ED_IDX_F32: return "f32";
    case ED_IDX_F64: return "f64";
    default: return "?";
    }
}

static char *dims_text(const ed_shape *s, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < s->rank && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, i ? " x %lld" : "%lld", (long long)s->dim[i]);
    return buf;
}

/* Reads up to n bytes; *got is how many arrived. ED_ERR on a gzip or I/O error. */
static int read_some(gzFile f, void *buf, size_t n, size_t *got, const char *path)
{
    *got = 0;
    while (*got < n) {
        size_t want = n - *got < (1u << 30) ? n - *got : (1u << 30);
        int r = gzread(f, (char *)buf + *got, (unsigned)want);
        if (r < 0) {
            int code;
            const char *msg = gzerror(f, &code);
            return ed_fail("%s: cannot read: %s", path, code == Z_ERRNO ? strerror(errno) : msg);
        }
        if (r == 0) break;
        *got += (size_t)r;
    }
    return ED_OK;
}

static int read_header(gzFile f, const char *path, ed_idx *out)
{
    unsigned char head[4 + 4 * ED_MAX_RANK];
    size_t got;
    if (read_some(f, head, 4, &got, path) != ED_OK) return ED_ERR;
    if (got < 4) return ed_fail("%s: truncated: %zu bytes, shorter than an IDX header", path, got);
    if (head[0] != 0 || head[1] != 0)
        return ed_fail("%s: not an IDX file (bad magic %02x %02x %02x %02x: expected 00 00 TYPE RANK)", path,
                       head[0], head[1], head[2], head[3]);
    if (!type_size(head[2]))
        return ed_fail("%s: unknown IDX type code 0x%02x (expected 0x08 u8, 0x09 i8, 0x0B i16, 0x0C i32, "
                       "0x0D f32 or 0x0E f64)", path, head[2]);
    if (head[3] < 1 || head[3] > ED_MAX_RANK)
        return ed_fail("%s: IDX rank %d is outside 1..%d", path, head[3], ED_MAX_RANK);
    out->type = head[2];
    out->shape.rank = head[3];
    size_t dims_bytes = 4 * (size_t)out->shape.rank;
    if (read_some(f, head + 4, dims_bytes, &got, path) != ED_OK) return ED_ERR;
    if (got < dims_bytes)
        return ed_fail("%s: truncated: the file ends inside the %d dims of its IDX header", path, out->shape.rank);
    for (int i = 0; i < out->shape.rank; i++) {
        const unsigned char *p = head + 4 + 4 * i;
        out->shape.dim[i] = (int64_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]);
    }
    return ED_OK;
}

/* The data's byte count, checked for overflow and against what the file can hold. */
static int data_bytes(const ed_idx *a, const char *path, long long file_size, bool plain, size_t *bytes)
{
    char dims[160];
    size_t n = type_size(a->type);
    for (int i = 0; i < a->shape.rank; i++) {
        uint64_t d = (uint64_t)a->shape.dim[i];
        if (d && n > (SIZE_MAX / 2) / d)
            return ed_fail("%s: IDX dims %s of %s overflow the address space", path,
                           dims_text(&a->shape, dims, sizeof dims), ed_idx_type_name(a->type));
        n *= d;
    }
    *bytes = n;
    size_t header = 4 + 4 * (size_t)a->shape.rank;
    if (file_size < 0) return ED_OK; /* not a regular file: reading will tell */
    if (plain && (size_t)file_size - header < n)
        return ed_fail("%s: truncated: dims %s of %s need %zu bytes of data, the file has %zu", path,
                       dims_text(&a->shape, dims, sizeof dims), ed_idx_type_name(a->type), n,
                       (size_t)file_size - header);
    if (plain && (size_t)file_size - header > n)
        return ed_fail("%s: %zu unexpected bytes after the data (dims %s of %s need %zu bytes)", path,
                       (size_t)file_size - header - n, dims_text(&a->shape, dims, sizeof dims),
                       ed_idx_type_name(a->type), n);
    if (!plain && n / GZIP_MAX_RATIO > (size_t)file_size)
        return ed_fail("%s: dims %s of %s need %zu bytes of data, more than a gzip file of %lld bytes can "
                       "hold", path, dims_text(&a->shape, dims, sizeof dims), ed_idx_type_name(a->type), n,
                       file_size);
    return ED_OK;
}

static void to_host_order(ed_idx *a, size_t bytes)
{
    const uint16_t one = 1;
    unsigned char little;
    memcpy(&little, &one, 1);
    size_t w = type_size(a->type);
    if (!little || w == 1) return;
    unsigned char *p = a->data;
    for (size_t i = 0; i < bytes; i += w)
        for (size_t k = 0; k < w / 2; k++) {
            unsigned char t = p[i + k];
            p[i + k] = p[i + w - 1 - k];
            p[i + w - 1 - k] = t;
        }
}

static int read_data(gzFile f, const char *path, long long file_size, ed_idx *out)
{
    size_t bytes = 0, got = 0;
    if (data_bytes(out, path, file_size, gzdirect(f) == 1, &bytes) != ED_OK) return ED_ERR;
    out->data = malloc(bytes ? bytes : 1);
    if (!out->data) return ed_fail("%s: out of memory for %zu bytes of IDX data", path, bytes);
    if (read_some(f, out->data, bytes, &got, path) != ED_OK) return ED_ERR;
    if (got < bytes)
        return ed_fail("%s: truncated: the IDX dims need %zu bytes of data, the file has %zu", path, bytes, got);
    unsigned char extra[4096];
    size_t rest = 0;
    do {
        if (read_some(f, extra, sizeof extra, &got, path) != ED_OK) return ED_ERR;
        rest += got;
    } while (got == sizeof extra);
    if (rest) return ed_fail("%s: %zu unexpected bytes after the data (the IDX dims need %zu bytes)", path, rest, bytes);
    to_host_order(out, bytes);
    return ED_OK;
}

int ed_idx_read(const char *path, ed_idx *out)
{
    if (!out) return ed_fail("idx: NULL output");
    *out = (ed_idx){0};
    if (!path) return ed_fail("idx: NULL path");
    struct stat st;
    if (stat(path, &st) != 0) return ed_fail("%s: cannot open: %s", path, strerror(errno));
    gzFile f = gzopen(path, "rb");
    if (!f) return ed_fail("%s: cannot open: %s", path, errno ? strerror(errno) : "out of memory");
    int status = read_header(f, path, out);
    if (status == ED_OK) status = read_data(f, path, S_ISREG(st.st_mode) ? (long long)st.st_size : -1, out);
    gzclose(f);
    if (status != ED_OK) ed_idx_free(out);
    return status;
}

void ed_idx_free(ed_idx *a)
{
    if (!a) return;
    free(a->data);
    *a = (ed_idx){0};
}

double ed_idx_get(const ed_idx *a, int64_t i)
{
    const void *p = a->data;
    switch (a->type) {
    case ED_IDX_U8: return ((const uint8_t *)p)[i];
    case ED_IDX_I8: return ((const int8_t *)p)[i];
    case ED_IDX_I16: return ((const int16_t *)p)[i];
    case ED_IDX_I32: return ((const int32_t *)p)[i];
    case ED_IDX_F32: return ((const float *)p)[i];
    case ED_IDX_F64: return ((const double *)p)[i];
    default: return 0;
    }
}
