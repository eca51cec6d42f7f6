/* The f32 normal rule of runtime/philox.h: Box-Muller in float with the project's own
 * log and sin/cos polynomials (no libm), written so gcc -O2 vectorizes it. The pieces
 * are exposed so tests can check them exhaustively against libm. */
#ifndef ED_NORMAL_F32_H
#define ED_NORMAL_F32_H

#include <stdint.h>

/* Pair p turns the Philox words w[2p] (-> u1) and w[2p + 1] (-> u2) into z[2p] (the
 * cosine half) and z[2p + 1] (the sine half), exactly as philox.h states. */
void ed_box_muller_f32(const uint32_t *w, float *z, int64_t npairs);

/* log(u) as the rule computes it; meant for u = m 2^-24 with m in 1..2^24. */
float ed_unit_logf(float u);

/* sin and cos of 2 pi k 2^-24 as the rule computes them; k < 2^24. */
void ed_turn_sincosf(uint32_t k, float *sin_out, float *cos_out);

#endif
