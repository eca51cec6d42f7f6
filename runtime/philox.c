/* Philox-4x32-10 and the streams built on it; the exact rules are in philox.h. */
#include "runtime/philox.h"

#include "runtime/normal_f32.h"
#include "runtime/pool.h"

#include <math.h>
#include <string.h>

/* Round multipliers and key increments ("Weyl" constants) from the Philox paper. */
#define PHILOX_M0 UINT32_C(0xD2511F53)
#define PHILOX_M1 UINT32_C(0xCD9E8D57)
#define PHILOX_W0 UINT32_C(0x9E3779B9)
#define PHILOX_W1 UINT32_C(0xBB67AE85)

#define TWO_PI 6.283185307179586 /* the double nearest 2 pi */
#define INV_2_24 (1.0 / 16777216.0)

static void philox_round(uint32_t x[4], const uint32_t k[2])
{
    uint64_t p0 = (uint64_t)PHILOX_M0 * x[0];
    uint64_t p1 = (uint64_t)PHILOX_M1 * x[2];
    uint32_t y0 = (uint32_t)(p1 >> 32) ^ x[1] ^ k[0];
    uint32_t y1 = (uint32_t)p1;
    uint32_t y2 = (uint32_t)(p0 >> 32) ^ x[3] ^ k[1];
    uint32_t y3 = (uint32_t)p0;
    x[0] = y0;
    x[1] = y1;
    x[2] = y2;
    x[3] = y3;
}

void ed_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
    uint32_t x[4] = {ctr[0], ctr[1], ctr[2], ctr[3]};
    uint32_t k[2] = {key[0], key[1]};
    for (int round = 0; round < 10; round++) {
        if (round > 0) { /* the key is bumped between rounds, not before the first */
            k[0] += PHILOX_W0;
            k[1] += PHILOX_W1;
        }
        philox_round(x, k);
    }
    for (int i = 0; i < 4; i++) out[i] = x[i];
}

void ed_rng_block(uint64_t seed, uint64_t call, uint32_t stream, uint32_t block, uint32_t out[4])
{
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    const uint32_t ctr[4] = {block, stream, (uint32_t)call, (uint32_t)(call >> 32)};
    ed_philox4x32_10(ctr, key, out);
}

uint64_t ed_rng_loop_seed(uint64_t seed, uint64_t call, uint32_t loop_stream, uint32_t iteration)
{
    uint32_t b[4];
    ed_rng_block(seed, call, loop_stream, iteration, b);
    return (uint64_t)b[0] | (uint64_t)b[1] << 32;
}

/* Elements come in blocks of four; the last block may be partly used. */
static int lanes_in_block(int64_t n, int64_t base) { return n - base < 4 ? (int)(n - base) : 4; }

static uint32_t block_of(int64_t base) { return (uint32_t)(base / 4); }

static double unit_double(uint32_t bits) { return (double)(bits >> 8) * INV_2_24; }

/* Exact in float too: a 24-bit integer times a power of two. */
static float unit_float(uint32_t bits) { return (float)(bits >> 8) * (float)INV_2_24; }

/* The functions below write elements [first, n) of the stream, first a multiple of 4: a
   range of whole blocks, so a split draw has the same bits as the whole one. */

static void uniform_f32(float *y, int64_t first, int64_t n, uint64_t seed, uint64_t call, uint32_t stream, double lo,
                        double hi)
{
    const float flo = (float)lo, span = (float)hi - flo;
    uint32_t b[4];
    for (int64_t base = first; base < n; base += 4) {
        ed_rng_block(seed, call, stream, block_of(base), b);
        for (int lane = 0; lane < lanes_in_block(n, base); lane++) {
            /* Two roundings, never one FMA: ISO C mode (-std=c17) keeps GCC from
             * contracting, and the JIT must not contract this either. */
            float scaled = span * unit_float(b[lane]);
            y[base + lane] = flo + scaled;
        }
    }
}

static void uniform_f64(double *y, int64_t first, int64_t n, uint64_t seed, uint64_t call, uint32_t stream, double lo,
                        double hi)
{
    const double span = hi - lo;
    uint32_t b[4];
    for (int64_t base = first; base < n; base += 4) {
        ed_rng_block(seed, call, stream, block_of(base), b);
        for (int lane = 0; lane < lanes_in_block(n, base); lane++) {
            double scaled = span * unit_double(b[lane]);
            y[base + lane] = lo + scaled;
        }
    }
}

static void uniform_range(void *out, ed_dtype dt, int64_t first, int64_t n, uint64_t seed, uint64_t call,
                          uint32_t stream, double lo, double hi)
{
    if (dt == ED_F32) uniform_f32(out, first, n, seed, call, stream, lo, hi);
    else if (dt == ED_F64) uniform_f64(out, first, n, seed, call, stream, lo, hi);
}

void ed_rng_uniform(void *out, ed_dtype dt, int64_t n, uint64_t seed, uint64_t call, uint32_t stream, double lo,
                    double hi)
{
    uniform_range(out, dt, 0, n, seed, call, stream, lo, hi);
}

/* The four f64 normals of one block; see philox.h. */
static void box_muller_block(const uint32_t b[4], double z[4])
{
    for (int pair = 0; pair < 2; pair++) {
        double u1 = ((double)(b[2 * pair] >> 8) + 1.0) * INV_2_24;
        double u2 = unit_double(b[2 * pair + 1]);
        double r = sqrt(-2.0 * log(u1));
        double angle = TWO_PI * u2;
        z[2 * pair] = r * cos(angle);
        z[2 * pair + 1] = r * sin(angle);
    }
}

/* ed_rng_block for GROUP consecutive blocks at once, the words as ed_rng_block
 * leaves them (w[4k + lane]): the same rounds as philox_round, with the state held per
 * word (x0[k]..x3[k]) so that, with a fixed trip count, gcc -O2 vectorizes them across
 * blocks (32x32->64-bit multiplies as pmuludq). test_normal_f32 checks the words
 * against ed_rng_block through the element rule. */
enum { GROUP = 16 };

static void philox_group(uint64_t seed, uint64_t call, uint32_t stream, uint32_t first, uint32_t *restrict w)
{
    uint32_t x0[GROUP], x1[GROUP], x2[GROUP], x3[GROUP];
    for (int k = 0; k < GROUP; k++) {
        x0[k] = first + (uint32_t)k;
        x1[k] = stream;
        x2[k] = (uint32_t)call;
        x3[k] = (uint32_t)(call >> 32);
    }
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int round = 0; round < 10; round++) {
        if (round > 0) {
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
        for (int k = 0; k < GROUP; k++) {
            uint64_t p0 = (uint64_t)PHILOX_M0 * x0[k];
            uint64_t p1 = (uint64_t)PHILOX_M1 * x2[k];
            uint32_t y0 = (uint32_t)(p1 >> 32) ^ x1[k] ^ k0;
            uint32_t y2 = (uint32_t)(p0 >> 32) ^ x3[k] ^ k1;
            x0[k] = y0;
            x1[k] = (uint32_t)p1;
            x2[k] = y2;
            x3[k] = (uint32_t)p0;
        }
    }
    for (int k = 0; k < GROUP; k++) {
        w[4 * k] = x0[k];
        w[4 * k + 1] = x1[k];
        w[4 * k + 2] = x2[k];
        w[4 * k + 3] = x3[k];
    }
}

/* f32: the words of up to CHUNK_BLOCKS blocks, then the float Box-Muller over them. */
enum { CHUNK_BLOCKS = 64 };

static void normal_f32(float *y, int64_t first, int64_t n, uint64_t seed, uint64_t call, uint32_t stream)
{
    uint32_t w[4 * CHUNK_BLOCKS];
    float z[4 * CHUNK_BLOCKS];
    for (int64_t base = first; base < n; base += 4 * CHUNK_BLOCKS) {
        int64_t count = n - base < 4 * CHUNK_BLOCKS ? n - base : 4 * CHUNK_BLOCKS;
        int blocks = (int)((count + 3) / 4);
        for (int k = 0; k < blocks; k += GROUP) /* may run past n: unused words */
            philox_group(seed, call, stream, block_of(base) + (uint32_t)k, w + 4 * k);
        if (count == 4 * CHUNK_BLOCKS) {
            ed_box_muller_f32(w, y + base, 2 * CHUNK_BLOCKS);
        } else {
            ed_box_muller_f32(w, z, 2 * blocks);
            memcpy(y + base, z, (size_t)count * sizeof *z);
        }
    }
}

static void normal_range(void *out, ed_dtype dt, int64_t first, int64_t n, uint64_t seed, uint64_t call,
                         uint32_t stream)
{
    if (dt == ED_F32) {
        normal_f32(out, first, n, seed, call, stream);
        return;
    }
    if (dt != ED_F64) return;
    uint32_t b[4];
    double z[4];
    double *y = out;
    for (int64_t base = first; base < n; base += 4) {
        ed_rng_block(seed, call, stream, block_of(base), b);
        box_muller_block(b, z);
        for (int lane = 0; lane < lanes_in_block(n, base); lane++) y[base + lane] = z[lane];
    }
}

void ed_rng_normal(void *out, ed_dtype dt, int64_t n, uint64_t seed, uint64_t call, uint32_t stream)
{
    normal_range(out, dt, 0, n, seed, call, stream);
}

static void randint_range(int32_t *out, int64_t first, int64_t n, uint64_t seed, uint64_t call, uint32_t stream,
                          int64_t lo, int64_t hi)
{
    if (hi <= lo) {
        for (int64_t i = first; i < n; i++) out[i] = (int32_t)lo;
        return;
    }
    const uint64_t span = (uint64_t)hi - (uint64_t)lo;
    uint32_t b[4];
    for (int64_t base = first; base < n; base += 4) {
        ed_rng_block(seed, call, stream, block_of(base), b);
        for (int lane = 0; lane < lanes_in_block(n, base); lane++) {
            uint64_t offset = ((uint64_t)b[lane] * span) >> 32;
            out[base + lane] = (int32_t)(lo + (int64_t)offset);
        }
    }
}

void ed_rng_randint(int32_t *out, int64_t n, uint64_t seed, uint64_t call, uint32_t stream, int64_t lo, int64_t hi)
{
    randint_range(out, 0, n, seed, call, stream, lo, hi);
}

static void bernoulli_range(void *out, ed_dtype dt, int64_t first, int64_t n, uint64_t seed, uint64_t call,
                            uint32_t stream, double p)
{
    if (dt != ED_F32 && dt != ED_F64 && dt != ED_I32) return;
    uint32_t b[4];
    for (int64_t base = first; base < n; base += 4) {
        ed_rng_block(seed, call, stream, block_of(base), b);
        for (int lane = 0; lane < lanes_in_block(n, base); lane++) {
            int hit = unit_double(b[lane]) < p;
            int64_t i = base + lane;
            if (dt == ED_F32) ((float *)out)[i] = (float)hit;
            else if (dt == ED_F64) ((double *)out)[i] = hit;
            else ((int32_t *)out)[i] = hit;
        }
    }
}

void ed_rng_bernoulli(void *out, ed_dtype dt, int64_t n, uint64_t seed, uint64_t call, uint32_t stream, double p)
{
    bernoulli_range(out, dt, 0, n, seed, call, stream, p);
}

typedef struct {
    ed_rng_kind kind;
    void *out;
    ed_dtype dt;
    int64_t n;
    uint64_t seed, call;
    uint32_t stream;
    double a, b;
} pool_draw;

/* The pool's task: blocks [begin, end) of the draw. */
static void draw_blocks(void *ctx, int64_t begin, int64_t end, int worker)
{
    (void)worker;
    const pool_draw *d = ctx;
    int64_t first = 4 * begin, last = 4 * end < d->n ? 4 * end : d->n;
    switch (d->kind) {
    case ED_RNG_UNIFORM: uniform_range(d->out, d->dt, first, last, d->seed, d->call, d->stream, d->a, d->b); break;
    case ED_RNG_NORMAL: normal_range(d->out, d->dt, first, last, d->seed, d->call, d->stream); break;
    case ED_RNG_BERNOULLI: bernoulli_range(d->out, d->dt, first, last, d->seed, d->call, d->stream, d->a); break;
    case ED_RNG_RANDINT:
        randint_range(d->out, first, last, d->seed, d->call, d->stream, (int64_t)d->a, (int64_t)d->b);
        break;
    }
}

void ed_rng_pool(void *out, ed_rng_kind kind, ed_dtype dt, int64_t n, uint64_t seed, uint64_t call, uint32_t stream,
                 double a, double b)
{
    if (n <= 0) return;
    pool_draw d = {kind, out, dt, n, seed, call, stream, a, b};
    ed_pool_run((n + 3) / 4, ED_RNG_SPLIT_MIN / 4, draw_blocks, &d);
}
