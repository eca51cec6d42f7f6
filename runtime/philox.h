/* Philox-4x32-10 (Salmon, Moraes, Dror, Shaw, SC'11; the Random123 library) and the
 * random streams behind the graph's random ops.
 *
 * Every random value is a pure function of (seed, call, stream, element index), so
 * the interpreter and the JIT produce identical bits as long as both follow these
 * rules exactly:
 *
 *   key     = {seed low 32 bits, seed high 32 bits}
 *   counter = {block, stream, call low 32 bits, call high 32 bits}
 *   element i uses output lane i % 4 of block i / 4 (the block index is a uint32,
 *   so streams longer than 2^34 elements repeat)
 *
 *   uniform:   u = (bits >> 8) * 2^-24 in [0, 1)
 *              f32: (float)lo + ((float)hi - (float)lo) * u, every step in float
 *              f64: lo + (hi - lo) * u in double
 *              (no fused multiply-add: the two roundings are part of the contract;
 *              rounding can make a value equal hi when hi - lo is large relative to lo)
 *   normal:    Box-Muller per block: lanes (0,1) give z0, z1 and lanes (2,3) give z2,
 *              z3 from m = (b_even >> 8) + 1 in 1..2^24 and k = b_odd >> 8 in 0..2^24-1.
 *              f64: u1 = m 2^-24 in (0, 1], u2 = k 2^-24, r = sqrt(-2 log u1),
 *                z_even = r cos(2 pi u2), z_odd = r sin(2 pi u2)
 *                (libm's log, sqrt, cos, sin in double; 2 pi is the double nearest it)
 *              f32: every step below is one IEEE float operation, rounded to nearest,
 *                in the order written (no fused multiply-add, no reassociation; the
 *                code is runtime/normal_f32.c), with no libm call; constants are the
 *                decimals below rounded to float:
 *                u1 = (float)m * 2^-24 (exact);
 *                log: u1 = f 2^e with f in [0.5, 1) (from the bits); if f < 0.70710678f
 *                  then f = 2f, e = e - 1; x = f - 1; z = x * x;
 *                  p = Horner in x, highest first, of 7.0376836292e-2, -1.1514610310e-1,
 *                  1.1676998740e-1, -1.2420140846e-1, 1.4249322787e-1, -1.6668057665e-1,
 *                  2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1 (p = p x + c);
 *                  y = (x * z) * p; y = y + e * -2.12194440e-4; y = y - 0.5 z;
 *                  l = (x + y) + e * 0.693359375;
 *                r = sqrtf(-2 l) (correctly rounded);
 *                angle: k' = k + 2^21, q = (k' >> 22) & 3, j = (k' & (2^22 - 1)) - 2^21,
 *                  a = ((float)j * 2^-24) * 6.2831855f (the float nearest 2 pi), w = a * a;
 *                  s = ((-1.9515295891e-4 w + 8.3321608736e-3) w - 1.6666654611e-1) w a + a
 *                  (Horner as written, then ((p * w) * a) + a);
 *                  c = (((2.443315711809948e-5 w - 1.388731625493765e-3) w
 *                  + 4.166664568298827e-2) w) w - 0.5 w + 1 (left to right);
 *                  quadrant q: (sin, cos) = (s, c), (c, -s), (-s, -c), (-c, s) for q = 0..3
 *                  (negation flips the sign bit, so zeros may be -0);
 *                z_even = r * cos, z_odd = r * sin.
 *                (log: max abs error 4.9e-7, max rel 8.1e-8 against libm over every u1;
 *                sin, cos: max abs error 9.1e-8 over every k; |z| <= 5.7683.)
 *   randint:   lo + (int64)(((uint64)bits * (uint64)(hi - lo)) >> 32)
 *   bernoulli: 1 if u < p (u as for uniform, compared in double) else 0
 *
 * Loops: a loop node owns a stream of its graph. Iteration i of a call runs its body
 * with seed_i = words 0 and 1 (low, high) of block i of the stream (seed, call, loop
 * stream), and the body's random ops draw from (seed_i, call, their stream). Nested
 * loops apply the rule again with seed_i as the seed.
 */
#ifndef ED_PHILOX_H
#define ED_PHILOX_H

#include "runtime/tensor.h"

#include <stdint.h>

/* One Philox-4x32 block with 10 rounds. out may alias ctr. */
void ed_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* The four 32-bit words of one block of the stream (seed, call, stream). */
void ed_rng_block(uint64_t seed, uint64_t call, uint32_t stream, uint32_t block, uint32_t out[4]);

/* The seed of iteration `iteration` of the loop owning stream loop_stream. */
uint64_t ed_rng_loop_seed(uint64_t seed, uint64_t call, uint32_t loop_stream, uint32_t iteration);

/* The functions below write n elements to out (nothing if n <= 0). An unsupported dt
 * leaves out untouched: callers (graph verifier, store) check dtypes first. */

/* dt: ED_F32 or ED_F64. Values in [lo, hi) (see the rounding note above). */
void ed_rng_uniform(void *out, ed_dtype dt, int64_t n, uint64_t seed, uint64_t call, uint32_t stream, double lo,
                    double hi);

/* dt: ED_F32 or ED_F64. Standard normal N(0, 1). */
void ed_rng_normal(void *out, ed_dtype dt, int64_t n, uint64_t seed, uint64_t call, uint32_t stream);

/* Integers in [lo, hi). The caller validates lo < hi, hi - lo <= 2^32 and that both
 * fit in int32; if hi <= lo every element is lo (a defined answer, never a crash). */
void ed_rng_randint(int32_t *out, int64_t n, uint64_t seed, uint64_t call, uint32_t stream, int64_t lo, int64_t hi);

/* dt: ED_F32, ED_F64 or ED_I32. 1 with probability p, else 0. */
void ed_rng_bernoulli(void *out, ed_dtype dt, int64_t n, uint64_t seed, uint64_t call, uint32_t stream, double p);

/* The draws above as one call over the thread pool (runtime/pool.h), in ranges of whole
 * blocks of at least ED_RNG_SPLIT_MIN elements: the same bits as the serial call at any
 * thread count. (a, b) is (lo, hi) for uniform and randint (integers, exact in double),
 * (p, 0) for bernoulli, unused for normal; randint's dt is ED_I32. */
typedef enum { ED_RNG_UNIFORM, ED_RNG_NORMAL, ED_RNG_BERNOULLI, ED_RNG_RANDINT } ed_rng_kind;
#define ED_RNG_SPLIT_MIN 8192
void ed_rng_pool(void *out, ed_rng_kind kind, ed_dtype dt, int64_t n, uint64_t seed, uint64_t call, uint32_t stream,
                 double a, double b);

#endif
