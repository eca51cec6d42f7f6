/* 16-bit float storage (bf16, IEEE f16): conversions from f32 rounding to nearest even,
 * and exact widening back. Weights kept 16-bit in memory are widened to f32 where they
 * are read; nothing computes in 16 bits. */
#ifndef ED_HALF_H
#define ED_HALF_H

#include <stdint.h>

/* bf16 keeps f32's exponent: f32's upper 16 bits, rounded to nearest even on the lower
 * 16; NaN stays NaN (quiet), infinities and zeros keep their sign. */
uint16_t ed_f32_to_bf16(float v);
float ed_bf16_to_f32(uint16_t h);
/* f16: 5 exponent bits, 10 mantissa bits; rounded to nearest even, overflow to
 * infinity (|v| >= 65520), subnormals below 2^-14 kept, underflow to signed zero. */
uint16_t ed_f32_to_f16(float v);
float ed_f16_to_f32(uint16_t h);

#endif
