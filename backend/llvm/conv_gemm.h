/* The f32 convolution ops as im2col + sgemm, per chunk of images and group: C functions that JIT
 * code calls (backend/llvm/lower_conv.c), with the geometry of ir/conv.h and a scratch
 * buffer of ed_conv_gemm_scratch floats. Sums run in float in BLAS's order: the
 * interpreter's values within rounding, and a padded term is a multiplied zero (so an
 * infinite weight makes NaN where the interpreter skips the term). */
#ifndef ED_LLVM_CONV_GEMM_H
#define ED_LLVM_CONV_GEMM_H

#include "ir/conv.h"

/* The most images one sgemm takes for g (1 unless its output planes are small; a
 * call takes this many only with more than one BLAS thread). */
int64_t ed_conv_gemm_chunk_max(const ed_conv_geom *g);
/* A call's images go to this many parts, each with its own scratch, run on the thread pool
 * (runtime/pool.h); a constant, so that sums over parts do not depend on the thread count. */
#define ED_CONV_GEMM_PARTS 4

/* Floats of scratch the conv2d kernel needs for g: per part, the largest chunk's columns,
 * cg kh kw x chunk oh ow, then its outputs, og x chunk oh ow (or the shifted form's). */
int64_t ed_conv_gemm_scratch(const ed_conv_geom *g);

/* The same for the conv_transpose2d op, which at stride 1 runs as a conv2d of dy with the
 * flipped kernel (the kernel copy, then that conv2d's parts). */
int64_t ed_conv_transpose_gemm_scratch(const ed_conv_geom *g);

/* The same for conv2d_weight_grad: the parts' scratch, then each part's partial sum. */
int64_t ed_conv_weight_grad_gemm_scratch(const ed_conv_geom *g);

/* The forward ops call epi(epi_ctx, b0, b1) (when not NULL) on output images [b0, b1) as
 * soon as they are written, on the thread that wrote them, while they are in cache: a
 * fused chain after the conv (backend/llvm/lower_fused.c). Every image once, in order
 * within a part. */
typedef void (*ed_conv_epilogue)(void *epi_ctx, int64_t b0, int64_t b1);

void ed_conv2d_gemm_f32(float *y, const float *x, const float *w, const ed_conv_geom *g, float *col,
                        ed_conv_epilogue epi, void *epi_ctx);
void ed_conv_transpose2d_gemm_f32(float *x, const float *y, const float *w, const ed_conv_geom *g, float *col,
                                  ed_conv_epilogue epi, void *epi_ctx);
void ed_conv2d_weight_grad_gemm_f32(float *dw, const float *x, const float *dy, const ed_conv_geom *g, float *col);

#endif
