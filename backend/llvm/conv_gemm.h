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
/* Floats of scratch the kernels need for g: the largest chunk's columns, cg kh kw x chunk
 * oh ow, then its outputs, og x chunk oh ow. */
int64_t ed_conv_gemm_scratch(const ed_conv_geom *g);

/* The same for the conv_transpose2d op, which at stride 1 runs as a conv2d of dy with the
 * flipped kernel (the kernel copy, then that conv2d's columns). */
int64_t ed_conv_transpose_gemm_scratch(const ed_conv_geom *g);

void ed_conv2d_gemm_f32(float *y, const float *x, const float *w, const ed_conv_geom *g, float *col);
void ed_conv_transpose2d_gemm_f32(float *x, const float *y, const float *w, const ed_conv_geom *g, float *col);
void ed_conv2d_weight_grad_gemm_f32(float *dw, const float *x, const float *dy, const ed_conv_geom *g, float *col);

#endif
