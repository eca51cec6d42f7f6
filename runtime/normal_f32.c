/* Standard normals in float (the exact rule is in runtime/philox.h). The hot loop has
 * no libm call and no branch, so gcc -O2 vectorizes it. CMakeLists.txt builds this
 * file with -ffp-contract=off (every + and * is its own IEEE float rounding, so scalar,
 * SSE, AVX and the sanitizer build's -O0 code give the same bits) and -fno-math-errno
 * (sqrtf becomes the sqrt instruction, correctly rounded either way). */
#include "runtime/normal_f32.h"

#include <math.h>
#include <string.h>

static inline uint32_t bits_of(float x)
{
    uint32_t b;
    memcpy(&b, &x, sizeof b);
    return b;
}

static inline float float_of(uint32_t b)
{
    float x;
    memcpy(&x, &b, sizeof x);
    return x;
}

/* log(u) for a positive normal float u: u = f 2^e with f in [sqrt(1/2), sqrt(2)),
 * log(f) = x - x^2/2 + x^3 P(x) with x = f - 1 (Cephes logf's polynomial), and e ln 2
 * added in two parts (ln 2 = 0.693359375 - 2.12194440e-4, the first exact in a few
 * bits) so the sum keeps its precision near u = 1. */
static inline float unit_log(float u)
{
    uint32_t b = bits_of(u);
    int32_t e = (int32_t)(b >> 23) - 126; /* u = f 2^e, f in [0.5, 1) */
    float f = float_of((b & UINT32_C(0x007fffff)) | UINT32_C(0x3f000000));
    int32_t below = f < 0.70710678f;
    e -= below;
    float x = f * (float)(1 + below) - 1.0f; /* times 1 or 2: exact */
    float fe = (float)e;
    float z = x * x;
    float p = 7.0376836292e-2f;
    p = p * x - 1.1514610310e-1f;
    p = p * x + 1.1676998740e-1f;
    p = p * x - 1.2420140846e-1f;
    p = p * x + 1.4249322787e-1f;
    p = p * x - 1.6668057665e-1f;
    p = p * x + 2.0000714765e-1f;
    p = p * x - 2.4999993993e-1f;
    p = p * x + 3.3333331174e-1f;
    float y = x * z * p;
    y = y + fe * -2.12194440e-4f;
    y = y - 0.5f * z;
    float r = x + y;
    return r + fe * 0.693359375f;
}

/* sin and cos of 2 pi k 2^-24. The reduction is exact in integers: k = q 2^22 + j with
 * j in [-2^21, 2^21), so the angle is q quarter turns plus 2 pi j 2^-24 in [-pi/4, pi/4),
 * where Cephes sinf/cosf's polynomials hold; the quadrant swaps and negates. */
static inline void turn_sincos(uint32_t k, float *s_out, float *c_out)
{
    uint32_t shifted = k + (UINT32_C(1) << 21);
    uint32_t q = (shifted >> 22) & 3;
    int32_t j = (int32_t)(shifted & UINT32_C(0x3fffff)) - (INT32_C(1) << 21);
    float x = ((float)j * 0x1p-24f) * 6.28318530717958647692f; /* j 2^-24 is exact */
    float z = x * x;
    float ps = -1.9515295891e-4f;
    ps = ps * z + 8.3321608736e-3f;
    ps = ps * z - 1.6666654611e-1f;
    float s = ps * z * x + x;
    float pc = 2.443315711809948e-5f;
    pc = pc * z - 1.388731625493765e-3f;
    pc = pc * z + 4.166664568298827e-2f;
    float c = pc * z * z - 0.5f * z + 1.0f;
    /* q = 1: (sin, cos) = (c, -s); 2: (-s, -c); 3: (-c, s). Bit operations rather
     * than branches: swap when q is odd, then flip sign bits. */
    uint32_t swap = UINT32_C(0) - (q & 1), sb = bits_of(s), cb = bits_of(c);
    uint32_t sq = (cb & swap) | (sb & ~swap), cq = (sb & swap) | (cb & ~swap);
    *s_out = float_of(sq ^ ((q & 2) << 30));
    *c_out = float_of(cq ^ (((q + 1) & 2) << 30));
}

/* Eight pairs at a time: a fixed trip count is what gcc -O2's cheap vectorizer cost
 * model accepts (a loop over a run-time count stays scalar there). */
enum { PAIRS = 8 };

static void box_muller_8(const uint32_t *restrict w, float *restrict z)
{
    for (int p = 0; p < PAIRS; p++) {
        float u1 = (float)((w[2 * p] >> 8) + 1) * 0x1p-24f; /* (0, 1], exact */
        float r = sqrtf(-2.0f * unit_log(u1));
        float s, c;
        turn_sincos(w[2 * p + 1] >> 8, &s, &c);
        z[2 * p] = r * c;
        z[2 * p + 1] = r * s;
    }
}

void ed_box_muller_f32(const uint32_t *w, float *z, int64_t npairs)
{
    int64_t p = 0;
    for (; p + PAIRS <= npairs; p += PAIRS) box_muller_8(w + 2 * p, z + 2 * p);
    if (p < npairs) { /* the tail through zero-padded copies */
        uint32_t wt[2 * PAIRS] = {0};
        float zt[2 * PAIRS];
        memcpy(wt, w + 2 * p, (size_t)(npairs - p) * 2 * sizeof *wt);
        box_muller_8(wt, zt);
        memcpy(z + 2 * p, zt, (size_t)(npairs - p) * 2 * sizeof *zt);
    }
}

float ed_unit_logf(float u) { return unit_log(u); }

void ed_turn_sincosf(uint32_t k, float *sin_out, float *cos_out) { turn_sincos(k, sin_out, cos_out); }
