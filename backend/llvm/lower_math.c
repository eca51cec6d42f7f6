/* Inline f32 transcendentals for the JIT: exp, log, tanh, erf and the activations
 * built from them, emitted as straight-line LLVM IR in f32 (no calls, no branches) so
 * the loop vectorizer turns an elementwise kernel into <8 x float> code with AVX2
 * (<16 x float> where the host prefers AVX-512). ed_math_f32, at the end, says which
 * op has which form.
 *
 * The scheme is the usual one (Cephes, Eigen, XLA's CPU backend): reduce the argument
 * exactly (with fma), evaluate a Cephes polynomial with fma-Horner, rebuild the
 * exponent with integer shifts, and fix the special values with selects. Every path is
 * computed and the right one selected, so each function costs the sum of its branches.
 *
 * Special values follow libm: exp(+inf) = +inf, exp(-inf) = 0, overflow gives +inf,
 * underflow 0; results in the subnormal range come from gradual underflow (one
 * rounding of a normal product; they flush to 0 only if the caller runs with MXCSR
 * FTZ set); log(0) = -inf, log(x < 0) = NaN, log(inf) = inf, subnormal inputs are
 * scaled first; tanh(+-large) = +-1, tanh(-0) = -0; NaN in gives NaN out everywhere;
 * silu and gelu of -inf are NaN (-inf * 0), as the interpreter computes them.
 * No fast-math flags: LLVM keeps every rounding as written.
 *
 * Measured accuracy against double libm rounded to float is printed and asserted by
 * tests/test_jit_math.c (the exhaustive measurement: bench/HISTORY.md). */
#include "backend/llvm/lower.h"

#include <math.h>
#include <string.h>

/* ---- IR shorthands (scalar f32 / i32) -------------------------------------------- */

static LLVMValueRef K(ed_cg *cg, double v) { return LLVMConstReal(cg->f32, v); }
static LLVMValueRef KI(ed_cg *cg, int32_t v) { return LLVMConstInt(cg->i32, (unsigned long long)(int64_t)v, 1); }

static LLVMValueRef intrin(ed_cg *cg, const char *name, LLVMValueRef *args, unsigned n)
{
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    LLVMTypeRef ty = cg->f32;
    LLVMValueRef f = LLVMGetIntrinsicDeclaration(cg->mod, id, &ty, 1);
    LLVMTypeRef ft = LLVMIntrinsicGetType(cg->ctx, id, &ty, 1);
    return LLVMBuildCall2(cg->b, ft, f, args, n, "");
}

static LLVMValueRef fma3(ed_cg *cg, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c)
{
    LLVMValueRef v[3] = {a, b, c};
    return intrin(cg, "llvm.fma", v, 3);
}
static LLVMValueRef fabs1(ed_cg *cg, LLVMValueRef a) { return intrin(cg, "llvm.fabs", &a, 1); }
static LLVMValueRef copysign2(ed_cg *cg, LLVMValueRef mag, LLVMValueRef sgn)
{
    LLVMValueRef v[2] = {mag, sgn};
    return intrin(cg, "llvm.copysign", v, 2);
}

static LLVMValueRef add(ed_cg *cg, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFAdd(cg->b, a, b, ""); }
static LLVMValueRef sub(ed_cg *cg, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFSub(cg->b, a, b, ""); }
static LLVMValueRef mul(ed_cg *cg, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFMul(cg->b, a, b, ""); }
static LLVMValueRef quo(ed_cg *cg, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFDiv(cg->b, a, b, ""); }
static LLVMValueRef neg(ed_cg *cg, LLVMValueRef a) { return LLVMBuildFNeg(cg->b, a, ""); }
static LLVMValueRef cmp(ed_cg *cg, LLVMRealPredicate p, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildFCmp(cg->b, p, a, b, "");
}
static LLVMValueRef sel(ed_cg *cg, LLVMValueRef c, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildSelect(cg->b, c, a, b, "");
}
static LLVMValueRef is_nan(ed_cg *cg, LLVMValueRef v) { return cmp(cg, LLVMRealUNO, v, v); }
static LLVMValueRef bits(ed_cg *cg, LLVMValueRef f) { return LLVMBuildBitCast(cg->b, f, cg->i32, ""); }
static LLVMValueRef flt(ed_cg *cg, LLVMValueRef i) { return LLVMBuildBitCast(cg->b, i, cg->f32, ""); }

/* Horner with fma: c[0] x^(n-1) + ... + c[n-1]. */
static LLVMValueRef poly(ed_cg *cg, LLVMValueRef x, const double *c, int n)
{
    LLVMValueRef p = K(cg, c[0]);
    for (int k = 1; k < n; k++) p = fma3(cg, p, x, K(cg, c[k]));
    return p;
}

/* The same, with the coefficient of each step chosen per element: c = use_a ? a : b. */
static LLVMValueRef poly_sel(ed_cg *cg, LLVMValueRef x, LLVMValueRef use_a, const double *a, const double *b, int n)
{
    LLVMValueRef p = sel(cg, use_a, K(cg, a[0]), K(cg, b[0]));
    for (int k = 1; k < n; k++) p = fma3(cg, p, x, sel(cg, use_a, K(cg, a[k]), K(cg, b[k])));
    return p;
}

/* ---- exp --------------------------------------------------------------------------- */

#define LN2 0.693147180559945309417232121458176568
#define LOG2E 1.44269504088896340735992468100189214
#define MAGIC 12582912.0 /* 1.5 * 2^23: adding it rounds to an integer held in the low bits */

/* Cephes expf: exp(r) = 1 + r + r^2 P(r) on |r| <= ln2/2. */
static const double EXP_P[] = {1.9875691500E-4, 1.3981999507E-3, 8.3334519073E-3,
                               4.1665795894E-2, 1.6666665459E-1, 5.0000001201E-1};

/* 2^n for an i32 n in [-126, 127], built in the exponent field. */
static LLVMValueRef pow2i(ed_cg *cg, LLVMValueRef n)
{
    return flt(cg, LLVMBuildShl(cg->b, LLVMBuildAdd(cg->b, n, KI(cg, 127), ""), KI(cg, 23), ""));
}

/* exp(x) split as m * s: m = y 2^n1 is a normal float, s = 2^n2 a power of two, and
 * m * s rounds once to exp(x) (to inf on overflow, gradually to subnormals and 0 on
 * underflow). Callers that multiply the result by something (silu, gelu) fold that
 * into m before applying s, so their subnormal results also round once. With
 * zero_below, m is 0 for x < -150, where each such caller's product (x e^x, x e^z with
 * z ~ -x^2) is below 2^-150 anyway: the product is then exactly 0 (NaN for an
 * infinite factor, as x * 0 in the interpreter) instead of a spurious tiny value.
 * NaN propagates through the arithmetic: the integer ops below carry no nsw/nuw
 * flags, so NaN bits make no poison. */
static LLVMValueRef exp_split(ed_cg *cg, LLVMValueRef x, bool zero_below, LLVMValueRef *s)
{
    LLVMBuilderRef b = cg->b;
    LLVMValueRef x0 = x;
    /* exp(89) overflows and exp(-104) already rounds to 0; the low clamp is at -150
     * so that callers' products stay right (silu(-107) is still a subnormal). It keeps
     * n in [-217, 128], so n1 and n2 are in [-109, 64]: 2^n1, 2^n2 are normal. */
    x = sel(cg, cmp(cg, LLVMRealOGT, x, K(cg, 89)), K(cg, 89), x);
    x = sel(cg, cmp(cg, LLVMRealOLT, x, K(cg, -150)), K(cg, -150), x);
    /* n = round(x log2 e): the magic addition leaves n in the low mantissa bits. */
    LLVMValueRef t = fma3(cg, x, K(cg, LOG2E), K(cg, MAGIC));
    LLVMValueRef nf = sub(cg, t, K(cg, MAGIC));
    LLVMValueRef n = LLVMBuildSub(b, bits(cg, t), KI(cg, 0x4B400000), "");
    /* r = x - n ln2 in two fma steps (n ln2_hi is exact inside the fma). */
    float l2h = (float)LN2;
    LLVMValueRef mnf = neg(cg, nf);
    LLVMValueRef r = fma3(cg, mnf, K(cg, l2h), x);
    r = fma3(cg, mnf, K(cg, LN2 - (double)l2h), r);
    LLVMValueRef p = poly(cg, r, EXP_P, 6);
    LLVMValueRef y = add(cg, fma3(cg, p, mul(cg, r, r), r), K(cg, 1));
    LLVMValueRef n1 = LLVMBuildAShr(b, n, KI(cg, 1), "");
    *s = pow2i(cg, LLVMBuildSub(b, n, n1, ""));
    LLVMValueRef m = mul(cg, y, pow2i(cg, n1)); /* exact */
    if (zero_below) m = sel(cg, cmp(cg, LLVMRealOLT, x0, K(cg, -150)), K(cg, 0), m);
    return m;
}

static LLVMValueRef exp_f32(ed_cg *cg, LLVMValueRef x)
{
    LLVMValueRef s, m = exp_split(cg, x, false, &s);
    return mul(cg, m, s);
}

/* expm1(x) = 2^n expm1(r) + (2^n - 1), r = x - n ln2 as in exp_split and expm1(r) =
 * r + r^2 P(r) from exp's polynomial, so small x (n = 0, r = x) keep their digits.
 * Below -18 the result rounds to -1, so x is clamped there; above 64 it is exp(x),
 * and the clamp keeps 2^n normal. Zeros keep their sign. */
static LLVMValueRef expm1_f32(ed_cg *cg, LLVMValueRef x)
{
    LLVMBuilderRef b = cg->b;
    LLVMValueRef xc = sel(cg, cmp(cg, LLVMRealOLT, x, K(cg, -18)), K(cg, -18), x);
    xc = sel(cg, cmp(cg, LLVMRealOGT, xc, K(cg, 64)), K(cg, 64), xc);
    LLVMValueRef t = fma3(cg, xc, K(cg, LOG2E), K(cg, MAGIC));
    LLVMValueRef mnf = neg(cg, sub(cg, t, K(cg, MAGIC)));
    LLVMValueRef n = LLVMBuildSub(b, bits(cg, t), KI(cg, 0x4B400000), "");
    float l2h = (float)LN2;
    LLVMValueRef r = fma3(cg, mnf, K(cg, l2h), xc);
    r = fma3(cg, mnf, K(cg, LN2 - (double)l2h), r);
    LLVMValueRef em = fma3(cg, poly(cg, r, EXP_P, 6), mul(cg, r, r), r);
    LLVMValueRef s = pow2i(cg, n);
    LLVMValueRef res = fma3(cg, s, em, sub(cg, s, K(cg, 1)));
    res = sel(cg, cmp(cg, LLVMRealOGT, x, K(cg, 64)), exp_f32(cg, x), res);
    res = sel(cg, cmp(cg, LLVMRealOEQ, x, K(cg, 0)), x, res);
    return sel(cg, is_nan(cg, x), x, res);
}

/* ---- log ----------------------------------------------------------------------------- */

/* Cephes logf: log(1+f) = f - f^2/2 + f^3 P(f) on sqrt(1/2) <= 1+f < sqrt(2). */
static const double LOG_P[] = {7.0376836292E-2,  -1.1514610310E-1, 1.1676998740E-1,
                               -1.2420140846E-1, 1.4249322787E-1,  -1.6668057665E-1,
                               2.0000714765E-1,  -2.4999993993E-1, 3.3333331174E-1};

/* log(x) for positive normal x; eadj is added to the exponent (for prescaled input). */
static LLVMValueRef log_core(ed_cg *cg, LLVMValueRef x, LLVMValueRef eadj)
{
    LLVMBuilderRef b = cg->b;
    LLVMValueRef i = bits(cg, x);
    /* x = m 2^e with m in [0.5, 1) */
    LLVMValueRef e = LLVMBuildSub(b, LLVMBuildAnd(b, LLVMBuildLShr(b, i, KI(cg, 23), ""), KI(cg, 0xff), ""),
                                  KI(cg, 126), "");
    e = LLVMBuildAdd(b, e, eadj, "");
    LLVMValueRef m = flt(cg, LLVMBuildOr(b, LLVMBuildAnd(b, i, KI(cg, 0x007fffff), ""), KI(cg, 0x3f000000), ""));
    /* m < sqrt(1/2): use 2m and e - 1, so 1+f is in [sqrt(1/2), sqrt(2)); f is exact. */
    LLVMValueRef small = cmp(cg, LLVMRealOLT, m, K(cg, 0.70710678118654752440));
    e = LLVMBuildSub(b, e, LLVMBuildZExt(b, small, cg->i32, ""), "");
    LLVMValueRef f = sub(cg, sel(cg, small, add(cg, m, m), m), K(cg, 1));
    LLVMValueRef z = mul(cg, f, f);
    LLVMValueRef y = mul(cg, mul(cg, poly(cg, f, LOG_P, 9), f), z);
    LLVMValueRef fe = LLVMBuildSIToFP(b, e, cg->f32, "");
    /* ln2 = 0.693359375 - 2.12194440e-4: the first part has 9 bits, so e * it is exact. */
    y = fma3(cg, fe, K(cg, -2.12194440e-4), y);
    y = fma3(cg, z, K(cg, -0.5), y);
    return fma3(cg, fe, K(cg, 0.693359375), add(cg, f, y));
}

static LLVMValueRef log_f32(ed_cg *cg, LLVMValueRef x)
{
    /* Subnormal inputs: scale by 2^23 first (the exponent field would be 0). */
    LLVMValueRef sub_n = cmp(cg, LLVMRealOLT, x, K(cg, 0x1p-126));
    LLVMValueRef xs = sel(cg, sub_n, mul(cg, x, K(cg, 0x1p23)), x);
    LLVMValueRef r = log_core(cg, xs, sel(cg, sub_n, KI(cg, -23), KI(cg, 0)));
    r = sel(cg, cmp(cg, LLVMRealOEQ, x, K(cg, INFINITY)), K(cg, INFINITY), r);
    r = sel(cg, cmp(cg, LLVMRealOEQ, x, K(cg, 0)), K(cg, -INFINITY), r);
    r = sel(cg, cmp(cg, LLVMRealOLT, x, K(cg, 0)), K(cg, NAN), r);
    return sel(cg, is_nan(cg, x), x, r);
}

/* log1p(t) for t in [0, 1] (Goldberg): u = 1 + t rounds, log(u) t / (u - 1) corrects
 * the rounding; t where u == 1. */
static LLVMValueRef log1p_unit(ed_cg *cg, LLVMValueRef t)
{
    LLVMValueRef u = add(cg, K(cg, 1), t);
    LLVMValueRef l = log_core(cg, u, KI(cg, 0));
    LLVMValueRef r = quo(cg, mul(cg, l, t), sub(cg, u, K(cg, 1)));
    return sel(cg, cmp(cg, LLVMRealOEQ, u, K(cg, 1)), t, r);
}

/* log1p(x) = log(u) (x / (u - 1)) with u = 1 + x rounded (Goldberg): the quotient
 * corrects u's rounding, so small x keep their digits; x itself where u == 1. The
 * quotient is taken first so that large x do not overflow. u >= 2^-24 for x > -1, so
 * log_core sees a normal number; -1, below -1, +inf and NaN are selected after. */
static LLVMValueRef log1p_f32(ed_cg *cg, LLVMValueRef x)
{
    LLVMValueRef u = add(cg, K(cg, 1), x);
    LLVMValueRef r = mul(cg, log_core(cg, u, KI(cg, 0)), quo(cg, x, sub(cg, u, K(cg, 1))));
    r = sel(cg, cmp(cg, LLVMRealOEQ, u, K(cg, 1)), x, r);
    r = sel(cg, cmp(cg, LLVMRealOEQ, x, K(cg, INFINITY)), x, r);
    r = sel(cg, cmp(cg, LLVMRealOEQ, x, K(cg, -1)), K(cg, -INFINITY), r);
    r = sel(cg, cmp(cg, LLVMRealOLT, x, K(cg, -1)), K(cg, NAN), r);
    return sel(cg, is_nan(cg, x), x, r);
}

/* ---- tanh ----------------------------------------------------------------------------- */

/* Cephes tanhf: tanh(a) = a + a^3 P(a^2) on |a| < 0.625. */
static const double TANH_P[] = {-5.70498872745E-3, 2.06390887954E-2, -5.37397155531E-2, 1.33314422036E-1,
                                -3.33332819422E-1};

static LLVMValueRef tanh_f32(ed_cg *cg, LLVMValueRef x)
{
    LLVMValueRef a = fabs1(cg, x);
    LLVMValueRef z = mul(cg, a, a);
    LLVMValueRef small = fma3(cg, mul(cg, poly(cg, z, TANH_P, 5), z), a, a);
    /* 1 - 2 / (exp(2a) + 1); tanh(9) rounds to 1 in float, so clamp there. */
    LLVMValueRef ac = sel(cg, cmp(cg, LLVMRealOGT, a, K(cg, 9)), K(cg, 9), a);
    LLVMValueRef e = exp_f32(cg, add(cg, ac, ac));
    LLVMValueRef large = sub(cg, K(cg, 1), quo(cg, K(cg, 2), add(cg, e, K(cg, 1))));
    LLVMValueRef r = sel(cg, cmp(cg, LLVMRealOLT, a, K(cg, 0.625)), small, large);
    return sel(cg, is_nan(cg, x), x, copysign2(cg, r, x));
}

/* ---- erf, erfc --------------------------------------------------------------------------- */

/* Cephes erff: erf(x) = x T(x^2) on |x| < 1. */
static const double ERF_T[] = {7.853861353153693E-5,  -8.010193625184903E-4, 5.188327685732524E-3,
                               -2.685381193529856E-2, 1.128358514861418E-1,  -3.761262582423300E-1,
                               1.128379165726710E+0};
/* Cephes erfcf: erfc(a) = exp(-a^2) / a * P(1/a^2) on [1, 2), R(1/a^2) from 2 on (R
 * padded with a leading 0 so both have 9 coefficients). */
static const double ERFC_P[] = {2.326819970068386E-2, -1.387039388740657E-1, 3.687424674597105E-1,
                                -5.824733027278666E-1, 6.210004621745983E-1, -4.944515323274145E-1,
                                3.404879937665872E-1,  -2.741127028184656E-1, 5.638259427386472E-1};
static const double ERFC_R[] = {0.0,
                                -1.047766399936249E+1, 1.297719955372516E+1,  -7.495518717768503E+0,
                                2.921019019210786E+0,  -1.015265279202700E+0, 4.218463358204948E-1,
                                -2.820767439740514E-1, 5.641895067754075E-1};

/* erfc(a) for a >= 1 as u * s (see exp_split), given a^2 = sq_hi + sq_lo exactly:
 * exp(-a^2) is exp(-sq_hi) (1 - sq_lo), so the rounding of a^2, worth up to a^2 2^-24
 * relative, does not reach the result. */
static LLVMValueRef erfc_tail(ed_cg *cg, LLVMValueRef a, LLVMValueRef sq_hi, LLVMValueRef sq_lo, LLVMValueRef *s)
{
    LLVMValueRef q = quo(cg, K(cg, 1), a);
    LLVMValueRef p = poly_sel(cg, mul(cg, q, q), cmp(cg, LLVMRealOLT, a, K(cg, 2)), ERFC_P, ERFC_R, 9);
    LLVMValueRef m = exp_split(cg, neg(cg, sq_hi), true, s);
    m = fma3(cg, neg(cg, sq_lo), m, m);
    return mul(cg, mul(cg, m, q), p);
}

static LLVMValueRef erf_small(ed_cg *cg, LLVMValueRef x) { return mul(cg, x, poly(cg, mul(cg, x, x), ERF_T, 7)); }

static LLVMValueRef erf_f32(ed_cg *cg, LLVMValueRef x)
{
    LLVMValueRef a = fabs1(cg, x);
    /* erfc(4) = 1.5e-8 is below half an ulp of 1: erf is 1 in float from there on. */
    LLVMValueRef ac = sel(cg, cmp(cg, LLVMRealOLT, a, K(cg, 1)), K(cg, 1), a);
    ac = sel(cg, cmp(cg, LLVMRealOGT, ac, K(cg, 4)), K(cg, 4), ac);
    LLVMValueRef hi = mul(cg, ac, ac), lo = fma3(cg, ac, ac, neg(cg, hi));
    LLVMValueRef sc, tail = erfc_tail(cg, ac, hi, lo, &sc);
    LLVMValueRef big = copysign2(cg, sub(cg, K(cg, 1), mul(cg, tail, sc)), x);
    LLVMValueRef r = sel(cg, cmp(cg, LLVMRealOLT, a, K(cg, 1)), erf_small(cg, x), big);
    return sel(cg, is_nan(cg, x), x, r);
}

/* ---- activations -------------------------------------------------------------------------- */

/* sigmoid(z) = num / (1 + e) with e = exp(-|z|) in [0, 1]: num = 1 for z >= 0 and e
 * below; neither part overflows. e = m * s (exp_split); z_lo, when given, is a
 * correction to z (the exponent is -|z + z_lo|), applied to first order. */
typedef struct {
    LLVMValueRef m, s, e, den, neg;
} sig_parts;

static sig_parts sigmoid_split(ed_cg *cg, LLVMValueRef z, LLVMValueRef z_lo)
{
    sig_parts p;
    p.neg = cmp(cg, LLVMRealOLT, z, K(cg, 0));
    p.m = exp_split(cg, neg(cg, fabs1(cg, z)), true, &p.s);
    if (z_lo) p.m = fma3(cg, p.m, sel(cg, p.neg, z_lo, neg(cg, z_lo)), p.m);
    p.e = mul(cg, p.m, p.s);
    p.den = add(cg, K(cg, 1), p.e);
    return p;
}

/* x sigmoid(z), z of the sign of x: x / (1 + e) for z >= 0, (x m) s / (1 + e) below,
 * so that a subnormal e times a large x still rounds once. x = -inf gives -inf * 0 =
 * NaN (m is 0 there), as in the interpreter. */
static LLVMValueRef times_sigmoid(ed_cg *cg, LLVMValueRef x, LLVMValueRef z, LLVMValueRef z_lo)
{
    sig_parts p = sigmoid_split(cg, z, z_lo);
    LLVMValueRef num = sel(cg, p.neg, mul(cg, mul(cg, x, p.m), p.s), x);
    return quo(cg, num, p.den);
}

static LLVMValueRef sigmoid_f32(ed_cg *cg, LLVMValueRef x)
{
    sig_parts p = sigmoid_split(cg, x, NULL);
    return quo(cg, sel(cg, p.neg, p.e, K(cg, 1)), p.den); /* NaN: den is NaN */
}

/* x sigmoid(x), the interpreter's formula (silu(-inf) = NaN there too). */
static LLVMValueRef silu_f32(ed_cg *cg, LLVMValueRef x) { return times_sigmoid(cg, x, x, NULL); }

/* max(x, 0) + log1p(exp(-|x|)): softplus(x) = x + tiny for large x, exp(x) for very
 * negative x, no overflow. */
static LLVMValueRef softplus_f32(ed_cg *cg, LLVMValueRef x)
{
    LLVMValueRef e = exp_f32(cg, neg(cg, fabs1(cg, x)));
    LLVMValueRef pos = sel(cg, cmp(cg, LLVMRealOGT, x, K(cg, 0)), x, K(cg, 0));
    LLVMValueRef r = add(cg, pos, log1p_unit(cg, e));
    return sel(cg, is_nan(cg, x), x, r);
}

/* Float head and tail of a double constant. */
static void split_const(double v, double *hi, double *lo)
{
    *hi = (float)v;
    *lo = (float)(v - *hi);
}

/* gelu, tanh form: 0.5 x (1 + tanh(y)) = x sigmoid(z), z = 2y = K x (1 + c x^2) with
 * K = 2 sqrt(2/pi), c = 0.044715. The sigmoid form has no cancellation for negative x,
 * but there the result is ~ x e^z, whose relative error is the absolute error of z:
 * rounding z in float would cost |z| 2^-24 (1e-5 at x = -10), so z is carried as a
 * float pair (hi + lo, error-free products by fma and a two-sum), lo corrects e. */
static LLVMValueRef gelu_tanh(ed_cg *cg, LLVMValueRef x)
{
    double kh, kl, ch, cl;
    split_const(2 * 0.79788456080286535588, &kh, &kl);
    split_const(0.044715, &ch, &cl);
    /* sigmoid(z(30)) is 1 and sigmoid(z(-30)) is below 2^-150: clamping keeps x^2 finite. */
    LLVMValueRef xc = sel(cg, cmp(cg, LLVMRealOGT, x, K(cg, 30)), K(cg, 30), x);
    xc = sel(cg, cmp(cg, LLVMRealOLT, xc, K(cg, -30)), K(cg, -30), xc);
    LLVMValueRef sq = mul(cg, xc, xc), sq_lo = fma3(cg, xc, xc, neg(cg, sq));
    /* c x^2 = cs + cs_lo */
    LLVMValueRef cs = mul(cg, K(cg, ch), sq);
    LLVMValueRef cs_lo = fma3(cg, K(cg, ch), sq, neg(cg, cs));
    cs_lo = fma3(cg, K(cg, ch), sq_lo, fma3(cg, K(cg, cl), sq, cs_lo));
    /* t = 1 + c x^2 = t + t_lo (two-sum) */
    LLVMValueRef one = K(cg, 1), t = add(cg, one, cs);
    LLVMValueRef bv = sub(cg, t, one);
    LLVMValueRef t_lo = add(cg, sub(cg, one, sub(cg, t, bv)), sub(cg, cs, bv));
    t_lo = add(cg, t_lo, cs_lo);
    /* K x = kx + kx_lo */
    LLVMValueRef kx = mul(cg, K(cg, kh), xc);
    LLVMValueRef kx_lo = fma3(cg, K(cg, kl), xc, fma3(cg, K(cg, kh), xc, neg(cg, kx)));
    /* z = kx t = z + z_lo */
    LLVMValueRef z = mul(cg, kx, t);
    LLVMValueRef z_lo = fma3(cg, kx_lo, t, fma3(cg, kx, t_lo, fma3(cg, kx, t, neg(cg, z))));
    return times_sigmoid(cg, x, z, z_lo);
}

/* gelu, exact: 0.5 x (1 + erf(u)), u = x / sqrt(2). 1 + erf(u) is 1 + erf_small(u)
 * for |u| < 1, 2 - erfc(u) above and erfc(-u) below: no cancellation for negative x.
 * u^2 = x^2 / 2 is split exactly from x (not from the rounded u). */
static LLVMValueRef gelu_erf(ed_cg *cg, LLVMValueRef x)
{
    LLVMValueRef u = mul(cg, x, K(cg, 0.70710678118654752440));
    LLVMValueRef a = fabs1(cg, u);
    /* Past |u| = 12.5, exp(-u^2) < 2^-225: the tail is exactly 0 (exp_split's
     * zero_below), so gelu is x there and -0 (NaN for -inf, as in the interpreter)
     * on the negative side. The clamp keeps x^2 finite. */
    LLVMValueRef lim = cmp(cg, LLVMRealOGT, a, K(cg, 12.5));
    LLVMValueRef ac = sel(cg, cmp(cg, LLVMRealOLT, a, K(cg, 1)), K(cg, 1), a);
    ac = sel(cg, lim, K(cg, 12.5), ac);
    LLVMValueRef xc = sel(cg, lim, K(cg, 18), x);
    LLVMValueRef hi = mul(cg, xc, xc), lo = fma3(cg, xc, xc, neg(cg, hi));
    LLVMValueRef sc, tail = erfc_tail(cg, ac, mul(cg, hi, K(cg, 0.5)), mul(cg, lo, K(cg, 0.5)), &sc);
    LLVMValueRef half_x = mul(cg, K(cg, 0.5), x);
    LLVMValueRef pos = mul(cg, half_x, sub(cg, K(cg, 2), mul(cg, tail, sc)));
    LLVMValueRef negv = mul(cg, mul(cg, half_x, tail), sc); /* rounds once if subnormal */
    LLVMValueRef big = sel(cg, cmp(cg, LLVMRealOGT, u, K(cg, 0)), pos, negv);
    /* 1 + u T(u^2) in one rounding: for u near -1 it is 0.16, so each rounding counts */
    LLVMValueRef small = mul(cg, half_x, fma3(cg, u, poly(cg, mul(cg, u, u), ERF_T, 7), K(cg, 1)));
    LLVMValueRef r = sel(cg, cmp(cg, LLVMRealOLT, a, K(cg, 1)), small, big);
    return sel(cg, is_nan(cg, x), x, r);
}

static LLVMValueRef gelu_f32(ed_cg *cg, LLVMValueRef x, bool approx)
{
    return approx ? gelu_tanh(cg, x) : gelu_erf(cg, x);
}

/* ---- the ops that have an inline form ------------------------------------------------- */

LLVMValueRef ed_math_f32(ed_cg *cg, const ed_node *n, LLVMValueRef x)
{
    if (n->dtype != ED_F32 || n->nin != 1 || n->in[0]->dtype != ED_F32) return NULL;
    switch (n->op) {
    case ED_OP_EXP: return exp_f32(cg, x);
    case ED_OP_EXPM1: return expm1_f32(cg, x);
    case ED_OP_LOG: return log_f32(cg, x);
    case ED_OP_LOG1P: return log1p_f32(cg, x);
    case ED_OP_TANH: return tanh_f32(cg, x);
    case ED_OP_ERF: return erf_f32(cg, x);
    case ED_OP_SIGMOID: return sigmoid_f32(cg, x);
    case ED_OP_SILU: return silu_f32(cg, x);
    case ED_OP_SOFTPLUS: return softplus_f32(cg, x);
    case ED_OP_GELU: return gelu_f32(cg, x, n->attr.approx);
    default: return NULL;
    }
}
