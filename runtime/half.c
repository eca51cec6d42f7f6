/* bf16 and f16 conversions, in integer arithmetic on the bits (no host half type, so the
 * result is the same on every compiler and target). */
#include "runtime/half.h"

#include <string.h>

static uint32_t bits_of(float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    return u;
}

static float float_of(uint32_t u)
{
    float v;
    memcpy(&v, &u, 4);
    return v;
}

uint16_t ed_f32_to_bf16(float v)
{
    uint32_t u = bits_of(v);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* NaN: keep it quiet */
    u += 0x7fffu + ((u >> 16) & 1);                                           /* to nearest, ties to even */
    return (uint16_t)(u >> 16);
}

float ed_bf16_to_f32(uint16_t h) { return float_of((uint32_t)h << 16); }

uint16_t ed_f32_to_f16(float v)
{
    uint32_t u = bits_of(v), sign = (u >> 16) & 0x8000u, a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu)); /* NaN, quiet */
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);                       /* >= 65520 rounds to infinity */
    if (a >= 0x38800000u) {                                                        /* normal: 2^-14 and up */
        uint32_t r = a - 0x38000000u;                                              /* rebias the exponent 127 -> 15 */
        r += 0xfffu + ((r >> 13) & 1);
        return (uint16_t)(sign | (r >> 13));
    }
    if (a < 0x33000000u) return (uint16_t)sign; /* below half the smallest subnormal (2^-25): zero */
    /* subnormal: the mantissa with its implicit 1, shifted to units of 2^-24, rounded */
    uint32_t e = a >> 23, m = (a & 0x7fffffu) | 0x800000u, shift = 126 - e; /* 14..24 */
    uint32_t q = m >> shift, rest = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rest > half || (rest == half && (q & 1))) q++;
    return (uint16_t)(sign | q);
}

float ed_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 31) return float_of(sign | 0x7f800000u | (m << 13));
    if (e > 0) return float_of(sign | ((e + 112) << 23) | (m << 13));
    if (m == 0) return float_of(sign);
    float v = (float)m * (1.0f / 16777216.0f); /* m * 2^-24, exact */
    return sign ? -v : v;
}
