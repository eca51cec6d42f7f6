/* Reference scalar semantics of the elementwise ops, in double precision.
 *
 * NaN rule (one for every backend): maximum, minimum, relu, clamp and the max/min
 * reductions propagate NaN. i32 results: division truncates toward zero, division
 * by zero gives 0, and results wrap like two's complement (ed_to_i32). */
#include "ir/ir.h"

#include "runtime/tensor.h"

#include <math.h>
#include <stdint.h>

static const double SQRT_2_OVER_PI = 0.79788456080286535588;
static const double SQRT_HALF = 0.70710678118654752440;

double ed_scalar_round(double v, ed_dtype dt)
{
    switch (dt) {
    case ED_F32: return (double)(float)v;
    case ED_I32: return (double)ed_to_i32(v);
    default: return v;
    }
}

static double nan_max(double a, double b)
{
    if (isnan(a) || isnan(b)) return NAN;
    return a > b ? a : b;
}

static double nan_min(double a, double b)
{
    if (isnan(a) || isnan(b)) return NAN;
    return a < b ? a : b;
}

static double sigmoid(double x)
{
    if (x >= 0) return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}

static double int_div(double a, double b)
{
    if (b == 0) return 0;
    return trunc(a / b);
}

/* A product of two i32 values can pass 2^53, where double loses the low bits that
 * two's-complement wrapping keeps: multiply in uint64 and wrap to i32 here. */
static double int_mul(double a, double b)
{
    uint64_t p = (uint64_t)(int64_t)a * (uint64_t)(int64_t)b;
    return (double)ed_to_i32((double)(uint32_t)p);
}

double ed_scalar_eval(ed_op op, const double *x, const ed_attrs *a, ed_dtype dt)
{
    double u = x[0];
    bool ints = dt == ED_I32;
    switch (op) {
    case ED_OP_ADD: return u + x[1];
    case ED_OP_SUB: return u - x[1];
    case ED_OP_MUL: return ints ? int_mul(u, x[1]) : u * x[1];
    case ED_OP_DIV: return ints ? int_div(u, x[1]) : u / x[1];
    case ED_OP_POW: return pow(u, x[1]);
    case ED_OP_MAXIMUM: return nan_max(u, x[1]);
    case ED_OP_MINIMUM: return nan_min(u, x[1]);
    case ED_OP_LT: return u < x[1];
    case ED_OP_LE: return u <= x[1];
    case ED_OP_GT: return u > x[1];
    case ED_OP_GE: return u >= x[1];
    case ED_OP_EQ: return u == x[1];
    case ED_OP_WHERE: return u != 0 ? x[1] : x[2];
    case ED_OP_NEG: return -u;
    case ED_OP_ABS: return fabs(u);
    case ED_OP_EXP: return exp(u);
    case ED_OP_EXPM1: return expm1(u);
    case ED_OP_LOG: return log(u);
    case ED_OP_LOG1P: return log1p(u);
    case ED_OP_SQRT: return sqrt(u);
    case ED_OP_RSQRT: return 1.0 / sqrt(u);
    case ED_OP_SQUARE: return ints ? int_mul(u, u) : u * u;
    case ED_OP_TANH: return tanh(u);
    case ED_OP_SIGMOID: return sigmoid(u);
    case ED_OP_RELU: return isnan(u) ? u : (u > 0 ? u : 0.0);
    case ED_OP_LEAKY_RELU: return u >= 0 ? u : a->alpha * u;
    case ED_OP_GELU:
        if (a->approx) return 0.5 * u * (1.0 + tanh(SQRT_2_OVER_PI * (u + 0.044715 * u * u * u)));
        return 0.5 * u * (1.0 + erf(u * SQRT_HALF));
    case ED_OP_ERF: return erf(u);
    case ED_OP_SILU: return u * sigmoid(u);
    case ED_OP_SOFTPLUS: return (u > 0 ? u : 0.0) + log1p(exp(-fabs(u)));
    case ED_OP_SIN: return sin(u);
    case ED_OP_COS: return cos(u);
    case ED_OP_SIGN: return isnan(u) ? u : (u > 0) - (u < 0);
    case ED_OP_CLAMP: return nan_min(nan_max(u, a->lo), a->hi);
    case ED_OP_CAST: return ints ? trunc(u) : u;
    case ED_OP_STOP_GRADIENT: return u;
    default: return NAN; /* not elementwise: callers check the op kind */
    }
}

double ed_scalar_eval3(ed_op op, ed_dtype dt, double x0, double x1, double x2)
{
    const double x[3] = {x0, x1, x2};
    return ed_scalar_eval(op, x, &(ed_attrs){0}, dt);
}
