/* Tensors: shapes, dtypes, aligned buffers and element access. */
#include "runtime/tensor.h"
#include "runtime/half.h"
#include "runtime/error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- shapes ------------------------------------------------------------------ */

ed_shape ed_shape0(void) { return (ed_shape){.rank = 0}; }

ed_shape ed_shape1(int64_t d0) { return (ed_shape){.rank = 1, .dim = {d0}}; }

ed_shape ed_shape2(int64_t d0, int64_t d1) { return (ed_shape){.rank = 2, .dim = {d0, d1}}; }

ed_shape ed_shape3(int64_t d0, int64_t d1, int64_t d2) { return (ed_shape){.rank = 3, .dim = {d0, d1, d2}}; }

ed_shape ed_shape4(int64_t d0, int64_t d1, int64_t d2, int64_t d3)
{
    return (ed_shape){.rank = 4, .dim = {d0, d1, d2, d3}};
}

/* An out-of-range rank is kept as given (only the dims that fit are copied) so that
 * ed_tensor_new and the shape checks can report it instead of silently clipping. */
ed_shape ed_shapen(int rank, const int64_t *dims)
{
    ed_shape s = {.rank = rank};
    int copy = rank < 0 ? 0 : rank > ED_MAX_RANK ? ED_MAX_RANK : rank;
    for (int i = 0; i < copy && dims; i++) s.dim[i] = dims[i];
    return s;
}

static bool rank_ok(int rank) { return rank >= 0 && rank <= ED_MAX_RANK; }

/* Element count, or -1 if the shape is invalid (bad rank, negative dim) or the count
 * overflows int64. */
int64_t ed_shape_numel(ed_shape s)
{
    if (!rank_ok(s.rank)) return -1;
    int64_t n = 1;
    for (int i = 0; i < s.rank; i++) {
        int64_t d = s.dim[i];
        if (d < 0) return -1;
        if (d != 0 && n > INT64_MAX / d) return -1;
        n *= d;
    }
    return n;
}

bool ed_shape_eq(ed_shape a, ed_shape b)
{
    if (a.rank != b.rank || !rank_ok(a.rank)) return false;
    for (int i = 0; i < a.rank; i++)
        if (a.dim[i] != b.dim[i]) return false;
    return true;
}

void ed_shape_strides(ed_shape s, int64_t strides[ED_MAX_RANK])
{
    int rank = rank_ok(s.rank) ? s.rank : 0;
    /* Unsigned so a huge dim behind a zero dim wraps instead of being undefined;
     * strides of an empty tensor are never used to address memory. */
    uint64_t stride = 1;
    for (int i = ED_MAX_RANK - 1; i >= 0; i--) {
        if (i >= rank) {
            strides[i] = 0;
            continue;
        }
        strides[i] = (int64_t)stride;
        stride *= (uint64_t)s.dim[i];
    }
}

/* ---- dtypes ------------------------------------------------------------------ */

static bool dtype_ok(ed_dtype t) { return (unsigned)t < ED_DTYPE_COUNT; }

const char *ed_dtype_name(ed_dtype t)
{
    switch (t) {
    case ED_F32: return "f32";
    case ED_I32: return "i32";
    case ED_F64: return "f64";
    case ED_BF16: return "bf16";
    case ED_F16: return "f16";
    default: return "?";
    }
}

bool ed_dtype_parse(const char *s, ed_dtype *out)
{
    if (!s) return false;
    for (int t = 0; t < ED_DTYPE_COUNT; t++) {
        if (strcmp(s, ed_dtype_name((ed_dtype)t)) == 0) {
            if (out) *out = (ed_dtype)t;
            return true;
        }
    }
    return false;
}

size_t ed_dtype_size(ed_dtype t)
{
    switch (t) {
    case ED_F32: return 4;
    case ED_I32: return 4;
    case ED_F64: return 8;
    case ED_BF16:
    case ED_F16: return 2;
    default: return 0;
    }
}

bool ed_dtype_is_float(ed_dtype t) { return t == ED_F32 || t == ED_F64; }
bool ed_dtype_is_16bit(ed_dtype t) { return t == ED_BF16 || t == ED_F16; }

/* Truncation is safe: snprintf always terminates, and a cut-off type string in a
 * message is better than none. */
char *ed_type_str(ed_dtype t, ed_shape s, char *buf, size_t n)
{
    if (!buf || n == 0) return buf;
    size_t used = (size_t)snprintf(buf, n, "%s[", ed_dtype_name(t));
    if (!rank_ok(s.rank)) {
        if (used < n) used += (size_t)snprintf(buf + used, n - used, "<rank %d>", s.rank);
    } else {
        for (int i = 0; i < s.rank && used < n; i++)
            used += (size_t)snprintf(buf + used, n - used, i ? ",%lld" : "%lld", (long long)s.dim[i]);
    }
    if (used < n) snprintf(buf + used, n - used, "]");
    return buf;
}

/* ---- allocation -------------------------------------------------------------- */

/* Zero-filled so every fresh tensor (and arena) starts from known bytes; at least
 * ED_ALIGN bytes so an empty tensor still has a valid, distinct pointer. */
void *ed_aligned_alloc(size_t bytes)
{
    if (bytes > SIZE_MAX - (ED_ALIGN - 1)) {
        ed_fail("out of memory: cannot allocate %zu bytes", bytes);
        return NULL;
    }
    size_t rounded = (bytes + ED_ALIGN - 1) / ED_ALIGN * ED_ALIGN;
    if (rounded == 0) rounded = ED_ALIGN;
    void *p = aligned_alloc(ED_ALIGN, rounded);
    if (!p) {
        ed_fail("out of memory: cannot allocate %zu bytes", bytes);
        return NULL;
    }
    memset(p, 0, rounded);
    return p;
}

void ed_aligned_free(void *p) { free(p); }

/* Checks dtype and shape and computes the byte size; ED_ERR with a message if bad. */
static int check_type(ed_dtype t, ed_shape s, size_t *bytes)
{
    if (!dtype_ok(t)) return ed_fail("tensor: unknown dtype %d", (int)t);
    if (!rank_ok(s.rank)) return ed_fail("tensor: rank %d is outside 0..%d", s.rank, ED_MAX_RANK);
    for (int i = 0; i < s.rank; i++)
        if (s.dim[i] < 0) return ed_fail("tensor: negative dimension %lld at axis %d", (long long)s.dim[i], i);
    char type[96];
    int64_t n = ed_shape_numel(s);
    size_t size = ed_dtype_size(t);
    if (n < 0 || (uint64_t)n > SIZE_MAX / size)
        return ed_fail("tensor: %s is too large to allocate", ed_type_str(t, s, type, sizeof type));
    *bytes = (size_t)n * size;
    return ED_OK;
}

static ed_tensor *tensor_struct(ed_dtype t, ed_shape s, void *data, bool owns)
{
    ed_tensor *x = malloc(sizeof *x);
    if (!x) {
        ed_fail("out of memory allocating a tensor");
        return NULL;
    }
    /* Only the dims inside the rank are meaningful; zero the rest so shapes compare
     * and hash the same however they were built. */
    ed_shape clean = {.rank = s.rank};
    for (int i = 0; i < s.rank; i++) clean.dim[i] = s.dim[i];
    *x = (ed_tensor){.dtype = t, .shape = clean, .data = data, .owns = owns};
    return x;
}

ed_tensor *ed_tensor_new(ed_dtype t, ed_shape s)
{
    size_t bytes;
    if (check_type(t, s, &bytes) != ED_OK) return NULL;
    void *data = ed_aligned_alloc(bytes);
    if (!data) return NULL;
    ed_tensor *x = tensor_struct(t, s, data, true);
    if (!x) ed_aligned_free(data);
    return x;
}

ed_tensor *ed_tensor_copy(const ed_tensor *src)
{
    if (!src) {
        ed_fail("tensor: copy of a NULL tensor");
        return NULL;
    }
    ed_tensor *x = ed_tensor_new(src->dtype, src->shape);
    if (!x) return NULL;
    size_t bytes = ed_tensor_bytes(x);
    if (bytes) memcpy(x->data, src->data, bytes);
    return x;
}

ed_tensor *ed_tensor_convert(const ed_tensor *src, ed_dtype dt)
{
    bool ok_src = ed_dtype_is_float(src->dtype) || ed_dtype_is_16bit(src->dtype);
    if (!ok_src || !(ed_dtype_is_float(dt) || ed_dtype_is_16bit(dt))) {
        ed_fail("tensor: no conversion from %s to %s", ed_dtype_name(src->dtype), ed_dtype_name(dt));
        return NULL;
    }
    ed_tensor *t = ed_tensor_new(dt, src->shape);
    for (int64_t i = 0; t && i < ed_tensor_numel(t); i++) ed_tensor_set(t, i, ed_tensor_get(src, i));
    return t;
}

ed_tensor *ed_tensor_wrap(ed_dtype t, ed_shape s, void *data)
{
    size_t bytes;
    if (check_type(t, s, &bytes) != ED_OK) return NULL;
    if (!data && bytes) {
        ed_fail("tensor: wrapping a NULL buffer as a non-empty tensor");
        return NULL;
    }
    return tensor_struct(t, s, data, false);
}

void ed_tensor_free(ed_tensor *t)
{
    if (!t) return;
    if (t->owns) ed_aligned_free(t->data);
    free(t);
}

int64_t ed_tensor_numel(const ed_tensor *t) { return t ? ed_shape_numel(t->shape) : 0; }

size_t ed_tensor_bytes(const ed_tensor *t)
{
    int64_t n = ed_tensor_numel(t);
    return n > 0 ? (size_t)n * ed_dtype_size(t->dtype) : 0;
}

/* ---- element access ---------------------------------------------------------- */

double ed_tensor_get(const ed_tensor *t, int64_t i)
{
    switch (t->dtype) {
    case ED_F32: return ((const float *)t->data)[i];
    case ED_I32: return ((const int32_t *)t->data)[i];
    case ED_F64: return ((const double *)t->data)[i];
    case ED_BF16: return ed_bf16_to_f32(((const uint16_t *)t->data)[i]);
    case ED_F16: return ed_f16_to_f32(((const uint16_t *)t->data)[i]);
    default: return NAN;
    }
}

void ed_tensor_set(ed_tensor *t, int64_t i, double v)
{
    switch (t->dtype) {
    case ED_F32: ((float *)t->data)[i] = (float)v; break;
    case ED_I32: ((int32_t *)t->data)[i] = ed_to_i32(v); break;
    case ED_F64: ((double *)t->data)[i] = v; break;
    case ED_BF16: ((uint16_t *)t->data)[i] = ed_f32_to_bf16((float)v); break;
    case ED_F16: ((uint16_t *)t->data)[i] = ed_f32_to_f16((float)v); break;
    default: break;
    }
}

/* Non-finite values (NaN, +inf, -inf) all become 0: there is no meaningful integer
 * and C leaves the conversion undefined, so we pick one fixed answer. Finite values
 * truncate toward zero and are reduced mod 2^32 exactly (fmod is exact), then mapped
 * to the two's-complement range. */
int32_t ed_to_i32(double v)
{
    if (!isfinite(v)) return 0;
    double m = fmod(trunc(v), 4294967296.0); /* in (-2^32, 2^32), an integer */
    if (m < 0) m += 4294967296.0;
    int64_t u = (int64_t)m; /* in [0, 2^32) */
    if (u >= INT64_C(2147483648)) u -= INT64_C(4294967296);
    return (int32_t)u;
}

int64_t ed_tensor_first_nonfinite(const ed_tensor *t)
{
    int64_t n = ed_tensor_numel(t);
    if (t->dtype == ED_F32) {
        const float *v = t->data;
        for (int64_t i = 0; i < n; i++)
            if (!isfinite(v[i])) return i;
    } else if (t->dtype == ED_F64) {
        const double *v = t->data;
        for (int64_t i = 0; i < n; i++)
            if (!isfinite(v[i])) return i;
    }
    return -1;
}
