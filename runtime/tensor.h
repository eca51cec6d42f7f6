/* Tensors: dtype, static shape and a contiguous, 64-byte aligned buffer.
 * The lowest layer: everything else includes this. */
#ifndef ED_TENSOR_H
#define ED_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ED_MAX_RANK 6
#define ED_ALIGN 64

typedef enum {
    ED_F32,
    ED_I32,
    ED_F64,  /* interpreter only: gradient checks in double precision */
    ED_BF16, /* storage only (runtime/half.h): a weight a matmul widens to f32 as it reads */
    ED_F16,  /* the same, IEEE half */
    ED_DTYPE_COUNT
} ed_dtype;

/* Dims in numpy order: dim[0] is outermost. Rank 0 is a scalar. */
typedef struct {
    int rank;
    int64_t dim[ED_MAX_RANK];
} ed_shape;

typedef struct ed_tensor {
    ed_dtype dtype;
    ed_shape shape;
    void *data; /* contiguous, C order, ED_ALIGN aligned when owned */
    bool owns;  /* free data with the tensor */
} ed_tensor;

/* Shapes. ed_shape0() is a scalar. ed_shapen copies rank dims. */
ed_shape ed_shape0(void);
ed_shape ed_shape1(int64_t d0);
ed_shape ed_shape2(int64_t d0, int64_t d1);
ed_shape ed_shape3(int64_t d0, int64_t d1, int64_t d2);
ed_shape ed_shape4(int64_t d0, int64_t d1, int64_t d2, int64_t d3);
ed_shape ed_shapen(int rank, const int64_t *dims);
int64_t ed_shape_numel(ed_shape s);
/* The largest dimension and element count a graph may have: 2^40 elements (4 TiB of
 * f32) is beyond any machine this runs on, and keeps every byte count and sum of byte
 * counts the passes form far from int64 overflow. */
#define ED_MAX_NUMEL ((int64_t)1 << 40)
bool ed_shape_eq(ed_shape a, ed_shape b);
/* Row-major strides in elements. */
void ed_shape_strides(ed_shape s, int64_t strides[ED_MAX_RANK]);

const char *ed_dtype_name(ed_dtype t); /* "f32", "i32", "f64", "bf16", "f16" */
bool ed_dtype_parse(const char *s, ed_dtype *out);
size_t ed_dtype_size(ed_dtype t);
bool ed_dtype_is_float(ed_dtype t); /* f32, f64: the computing float types */
bool ed_dtype_is_16bit(ed_dtype t); /* bf16, f16: storage only */

/* Writes e.g. "f32[512,2]" or "i32[]" into buf; returns buf. */
char *ed_type_str(ed_dtype t, ed_shape s, char *buf, size_t n);

/* Allocation. Returns NULL on bad shape (negative dim, rank > 6) or out of memory.
 * New tensors are zero-filled. */
ed_tensor *ed_tensor_new(ed_dtype t, ed_shape s);
ed_tensor *ed_tensor_copy(const ed_tensor *src);
/* A copy of a float tensor in another float or 16-bit dtype (f32 -> bf16/f16 rounds to
 * nearest even, runtime/half.h). NULL with a message for an integer dtype. */
ed_tensor *ed_tensor_convert(const ed_tensor *src, ed_dtype dt);
/* Wrap caller memory without taking ownership. */
ed_tensor *ed_tensor_wrap(ed_dtype t, ed_shape s, void *data);
void ed_tensor_free(ed_tensor *t);
int64_t ed_tensor_numel(const ed_tensor *t);
/* The index of t's first NaN or infinity, or -1 when every value is finite (and for
 * integer tensors). */
int64_t ed_tensor_first_nonfinite(const ed_tensor *t);
size_t ed_tensor_bytes(const ed_tensor *t);

/* Element access as double, whatever the dtype (slow; for tests and tools). */
double ed_tensor_get(const ed_tensor *t, int64_t i);
void ed_tensor_set(ed_tensor *t, int64_t i, double v);

/* Aligned allocation used for every tensor buffer; size rounded up to ED_ALIGN. */
void *ed_aligned_alloc(size_t bytes);
void ed_aligned_free(void *p);

/* Store a double into an i32 slot: truncates toward zero, wraps like two's complement,
 * NaN becomes 0. Shared by every place that converts to i32 so they agree. */
int32_t ed_to_i32(double v);

#endif
