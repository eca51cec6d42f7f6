/* Shared by the interpreter's kernels: element access as double and a strided
 * odometer that walks a shape in C order while keeping one flat offset per operand. */
#ifndef ED_INTERP_ITER_H
#define ED_INTERP_ITER_H

#include "runtime/half.h"
#include "runtime/tensor.h"

#include <stdint.h>
#include <string.h>

/* Every kernel computes in double; these convert at the tensor's edge. */
static inline double interp_get(const ed_tensor *t, int64_t i)
{
    switch (t->dtype) {
    case ED_F32: return ((const float *)t->data)[i];
    case ED_I32: return ((const int32_t *)t->data)[i];
    case ED_BF16: return ed_bf16_to_f32(((const uint16_t *)t->data)[i]); /* widened as it is read */
    case ED_F16: return ed_f16_to_f32(((const uint16_t *)t->data)[i]);
    default: return ((const double *)t->data)[i];
    }
}

/* Same result as storing ed_scalar_round(v, dtype): float rounding, or i32 truncation
 * toward zero with two's-complement wrap. */
static inline void interp_set(ed_tensor *t, int64_t i, double v)
{
    switch (t->dtype) {
    case ED_F32: ((float *)t->data)[i] = (float)v; break;
    case ED_I32: ((int32_t *)t->data)[i] = ed_to_i32(v); break;
    default: ((double *)t->data)[i] = v; break;
    }
}

/* Movement ops copy bits, so they need no conversion (and keep NaN payloads). */
static inline void interp_copy_elem(ed_tensor *dst, int64_t di, const ed_tensor *src, int64_t si)
{
    size_t es = ed_dtype_size(dst->dtype);
    memcpy((char *)dst->data + (size_t)di * es, (const char *)src->data + (size_t)si * es, es);
}

#define ED_ITER_MAX_OPS 16 /* a fused node's inputs and its output */

typedef struct {
    int rank, nops;
    int64_t dim[ED_MAX_RANK];
    int64_t idx[ED_MAX_RANK];
    int64_t stride[ED_ITER_MAX_OPS][ED_MAX_RANK]; /* elements per step of each axis */
    int64_t base[ED_ITER_MAX_OPS];                /* offsets at index 0 */
    int64_t off[ED_ITER_MAX_OPS];                 /* offsets at the current index */
} ed_iter;

/* Walk shape with nops operands; strides and bases start at 0. */
void ed_iter_init(ed_iter *it, ed_shape shape, int nops);
/* Back to index 0 (offsets = bases). */
void ed_iter_rewind(ed_iter *it);
/* Step to the next index in C order; after the last index it wraps to index 0. */
void ed_iter_next(ed_iter *it);
/* Strides that read a C-order tensor of shape `in` as if broadcast to `out` (numpy
 * rules: missing leading axes and size-1 axes get stride 0). */
void ed_iter_bcast_strides(int64_t stride[ED_MAX_RANK], ed_shape in, ed_shape out);

#endif
