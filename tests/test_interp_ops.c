/* The reference interpreter, op by op, against values worked out by hand (or known
 * constants such as e and erf(1/sqrt 2)); nothing here recomputes an expectation with
 * the formula under test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "frontend/nn.h"
#include "interp/interp.h"
#include "runtime/philox.h"
#include "support/interp_check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define EXACT 0.0
#define F32TOL 3e-7 /* ~2.5 float ulps, for transcendental results */
#define F64TOL 1e-15

static ed_graph *g;

static int setup(void **state)
{
    (void)state;
    g = ed_graph_new("t");
    return g ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    ed_graph_free(g);
    return 0;
}

/* [2,3] and [2,3,4] tensors holding 0, 1, 2, ... */
static ed_node *iota23(ed_dtype dt) { return CST(g, dt, ed_shape2(2, 3), 0, 1, 2, 3, 4, 5); }

static ed_node *iota234(void)
{
    return CST(g, ED_F32, ed_shape3(2, 3, 4), 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
               21, 22, 23);
}

static void test_every_op_has_a_kernel(void **state)
{
    (void)state;
    for (int op = 0; op < ED_OP_COUNT; op++)
        if (!ed_interp_has_kernel((ed_op)op)) fail_msg("op %s has no interpreter kernel", ed_op_name((ed_op)op));
    assert_false(ed_interp_has_kernel(ED_OP_COUNT));
    assert_false(ed_interp_has_kernel((ed_op)-1));
}

/* Every elementwise op runs ed_k_elementwise, so what it needs is its case in
 * ir/scalar.c, whose default gives NaN; at 0.5 no op's value is NaN. */
static void test_every_elementwise_op_has_scalar_semantics(void **state)
{
    (void)state;
    const double x[3] = {0.5, 0.5, 0.5};
    for (int op = 0; op < ED_OP_COUNT; op++)
        if (ed_ops[op].kind == ED_KIND_ELEM && isnan(ed_scalar_eval((ed_op)op, x, &(ed_attrs){0}, ED_F64)))
            fail_msg("op %s has no scalar semantics (ir/scalar.c)", ed_op_name((ed_op)op));
}

/* ---- elementwise, binary ----------------------------------------------------------- */

static void test_binary_arith_f32(void **state)
{
    (void)state;
    ed_shape s = ed_shape2(2, 3);
    ed_node *a = CST(g, ED_F32, s, 1, 2, 3, 4, 5, 6);
    ed_node *b = CST(g, ED_F32, s, 0.5, -1, 2, 8, 0, -3);
    CHECK(ed_add(a, b), ED_F32, s, EXACT, 1.5, 1, 5, 12, 5, 3);
    CHECK(ed_sub(a, b), ED_F32, s, EXACT, 0.5, 3, 1, -4, 5, 9);
    CHECK(ed_mul(a, b), ED_F32, s, EXACT, 0.5, -2, 6, 32, 0, -18);
    CHECK(ed_div(a, b), ED_F32, s, EXACT, 2, -2, 1.5, 0.5, INFINITY, -2);
    CHECK(ed_pow(a, b), ED_F32, s, F32TOL, 1, 0.5, 9, 65536, 1, 0.004629629629629629);
    ed_node *z = CST(g, ED_F32, ed_shape2(1, 2), 0, -1);
    CHECK(ed_div(z, ed_scalar(g, ED_F32, 0)), ED_F32, ed_shape2(1, 2), EXACT, NAN, -INFINITY);
    /* f32 results are rounded to float: 0.1f + 0.2f is not 0.3. */
    CHECK(ed_add(ed_scalar(g, ED_F32, 0.1), ed_scalar(g, ED_F32, 0.2)), ED_F32, ed_shape0(), EXACT,
          0.30000001192092896);
}

static void test_binary_f64(void **state)
{
    (void)state;
    CHECK(ed_add(ed_scalar(g, ED_F64, 0.1), ed_scalar(g, ED_F64, 0.2)), ED_F64, ed_shape0(), EXACT,
          0.30000000000000004);
    ed_node *a = CST(g, ED_F64, ed_shape1(3), 1, 2, 0.1);
    ed_node *b = CST(g, ED_F64, ed_shape1(3), 3, 0.5, 3);
    CHECK(ed_div(a, b), ED_F64, ed_shape1(3), F64TOL, 0.3333333333333333, 4, 0.03333333333333333);
    CHECK(ed_pow(b, a), ED_F64, ed_shape1(3), F64TOL, 3, 0.25, 1.1161231740339044);
}

static void test_broadcasting(void **state)
{
    (void)state;
    /* scalar with tensor, either side */
    ed_node *t = CST(g, ED_F32, ed_shape2(2, 2), 1, 2, 3, 4);
    ed_node *ten = ed_scalar(g, ED_F32, 10);
    CHECK(ed_add(ten, t), ED_F32, ed_shape2(2, 2), EXACT, 11, 12, 13, 14);
    CHECK(ed_sub(t, ten), ED_F32, ed_shape2(2, 2), EXACT, -9, -8, -7, -6);
    /* [3,1] with [1,4] */
    ed_node *col = CST(g, ED_F32, ed_shape2(3, 1), 1, 2, 3);
    ed_node *row = CST(g, ED_F32, ed_shape2(1, 4), 10, 20, 30, 40);
    CHECK(ed_sub(col, row), ED_F32, ed_shape2(3, 4), EXACT, -9, -19, -29, -39, -8, -18, -28, -38, -7, -17, -27, -37);
    /* rank mismatch: [2,3] * [3] */
    ed_node *v = CST(g, ED_F32, ed_shape1(3), 10, 100, 1000);
    CHECK(ed_mul(iota23(ED_F32), v), ED_F32, ed_shape2(2, 3), EXACT, 0, 100, 2000, 30, 400, 5000);
    /* [2,1,3] + [4,1] -> [2,4,3] */
    ed_node *x = CST(g, ED_F32, ed_shape3(2, 1, 3), 0, 1, 2, 3, 4, 5);
    ed_node *y = CST(g, ED_F32, ed_shape2(4, 1), 10, 20, 30, 40);
    CHECK(ed_add(x, y), ED_F32, ed_shape3(2, 4, 3), EXACT, 10, 11, 12, 20, 21, 22, 30, 31, 32, 40, 41, 42, 13, 14, 15,
          23, 24, 25, 33, 34, 35, 43, 44, 45);
    /* size-1 dims and rank 0 */
    CHECK(ed_add(ed_fill(g, ED_F32, ed_shape2(1, 1), 2), ed_fill(g, ED_F32, ed_shape1(1), 3)), ED_F32, ed_shape2(1, 1),
          EXACT, 5);
    CHECK(ed_add(ed_scalar(g, ED_F32, 2.5), ed_scalar(g, ED_F32, 0.25)), ED_F32, ed_shape0(), EXACT, 2.75);
}

static void test_broadcasting_rank6(void **state)
{
    (void)state;
    int64_t xd[6] = {2, 1, 2, 1, 1, 1}, yd[6] = {1, 1, 1, 1, 1, 2}, od[6] = {2, 1, 2, 1, 1, 2};
    ed_node *x = CST(g, ED_F32, ed_shapen(6, xd), 1, 2, 3, 4);
    ed_node *y = CST(g, ED_F32, ed_shapen(6, yd), 10, 20);
    CHECK(ed_add(x, y), ED_F32, ed_shapen(6, od), EXACT, 11, 21, 12, 22, 13, 23, 14, 24);
    /* rank 6 against rank 1 */
    ed_node *w = CST(g, ED_F32, ed_shape1(2), 100, 200);
    CHECK(ed_mul(x, w), ED_F32, ed_shapen(6, od), EXACT, 100, 200, 200, 400, 300, 600, 400, 800);
}

static void test_maximum_minimum_nan(void **state)
{
    (void)state;
    ed_shape s = ed_shape1(4);
    ed_node *a = CST(g, ED_F32, s, 1, NAN, 3, 4);
    ed_node *b = CST(g, ED_F32, s, 2, 1, NAN, -5);
    CHECK(ed_maximum(a, b), ED_F32, s, EXACT, 2, NAN, NAN, 4);
    CHECK(ed_minimum(a, b), ED_F32, s, EXACT, 1, NAN, NAN, -5);
    /* broadcast scalar bound, as relu-by-maximum would */
    CHECK(ed_maximum(a, ed_scalar(g, ED_F32, 2)), ED_F32, s, EXACT, 2, NAN, 3, 4);
}

static void test_compare(void **state)
{
    (void)state;
    ed_shape s = ed_shape1(4);
    ed_node *a = CST(g, ED_F32, s, 1, 2, 3, NAN);
    ed_node *b = CST(g, ED_F32, s, 2, 2, 2, NAN);
    CHECK(ed_lt(a, b), ED_I32, s, EXACT, 1, 0, 0, 0);
    CHECK(ed_le(a, b), ED_I32, s, EXACT, 1, 1, 0, 0);
    CHECK(ed_gt(a, b), ED_I32, s, EXACT, 0, 0, 1, 0);
    CHECK(ed_ge(a, b), ED_I32, s, EXACT, 0, 1, 1, 0);
    CHECK(ed_eq(a, b), ED_I32, s, EXACT, 0, 1, 0, 0);
    /* i32 operands, broadcast [2,1] against [3] */
    ed_node *c = CST(g, ED_I32, ed_shape2(2, 1), -1, 5);
    ed_node *d = CST(g, ED_I32, ed_shape1(3), 0, 5, 6);
    CHECK(ed_lt(c, d), ED_I32, ed_shape2(2, 3), EXACT, 1, 1, 1, 0, 0, 1);
    CHECK(ed_eq(c, d), ED_I32, ed_shape2(2, 3), EXACT, 0, 0, 0, 0, 1, 0);
}

static void test_where(void **state)
{
    (void)state;
    ed_node *cond = CST(g, ED_I32, ed_shape2(2, 1), 7, 0);
    CHECK(ed_where(cond, iota23(ED_F32), ed_scalar(g, ED_F32, -1)), ED_F32, ed_shape2(2, 3), EXACT, 0, 1, 2, -1, -1,
          -1);
    /* per-element condition; any nonzero is true */
    ed_node *c2 = CST(g, ED_I32, ed_shape1(3), 0, -2, 1);
    ed_node *a = CST(g, ED_I32, ed_shape1(3), 10, 20, 30);
    ed_node *b = CST(g, ED_I32, ed_shape1(3), -10, -20, -30);
    CHECK(ed_where(c2, a, b), ED_I32, ed_shape1(3), EXACT, -10, 20, 30);
    /* condition from a comparison, NaN compares false */
    ed_node *x = CST(g, ED_F32, ed_shape1(3), -1, NAN, 2);
    ed_node *zero = ed_scalar(g, ED_F32, 0);
    CHECK(ed_where(ed_gt(x, zero), x, zero), ED_F32, ed_shape1(3), EXACT, 0, 0, 2);
}

static void test_i32_arithmetic(void **state)
{
    (void)state;
    ed_shape s = ed_shape1(6);
    ed_node *a = CST(g, ED_I32, s, 7, -7, 7, -7, 5, 0);
    ed_node *b = CST(g, ED_I32, s, 2, 2, -2, -2, 0, 0);
    CHECK(ed_div(a, b), ED_I32, s, EXACT, 3, -3, -3, 3, 0, 0); /* truncation; x/0 = 0 */
    CHECK(ed_mul(a, b), ED_I32, s, EXACT, 14, -14, -14, 14, 0, 0);
    CHECK(ed_sub(a, b), ED_I32, s, EXACT, 5, -9, 9, -5, 5, 0);
    /* two's complement wrap */
    ed_node *big = CST(g, ED_I32, ed_shape1(2), 2147483647, 46341);
    ed_node *one = ed_scalar(g, ED_I32, 1);
    CHECK(ed_add(big, one), ED_I32, ed_shape1(2), EXACT, -2147483648.0, 46342);
    CHECK(ed_mul(big, CST(g, ED_I32, ed_shape1(2), 1, 46341)), ED_I32, ed_shape1(2), EXACT, 2147483647, -2147479015);
    ed_node *lo = ed_scalar(g, ED_I32, -2147483648.0);
    CHECK(ed_sub(lo, one), ED_I32, ed_shape0(), EXACT, 2147483647);
    CHECK(ed_neg(lo), ED_I32, ed_shape0(), EXACT, -2147483648.0);
    CHECK(ed_mul(ed_scalar(g, ED_I32, 65536), ed_scalar(g, ED_I32, 65536)), ED_I32, ed_shape0(), EXACT, 0);
    /* products past 2^53 keep their low 32 bits: (2^31-1)^2 = 2^62 - 2^32 + 1 wraps to 1 */
    CHECK(ed_square(ed_scalar(g, ED_I32, 2147483647)), ED_I32, ed_shape0(), EXACT, 1);
    CHECK(ed_mul(ed_scalar(g, ED_I32, -2147483648.0), ed_scalar(g, ED_I32, 2147483647)), ED_I32, ed_shape0(), EXACT,
          -2147483648.0);
    ed_node *p = CST(g, ED_I32, ed_shape1(4), 2, 3, -2, 2);
    ed_node *q = CST(g, ED_I32, ed_shape1(4), 10, 2, 3, -1);
    CHECK(ed_pow(p, q), ED_I32, ed_shape1(4), EXACT, 1024, 9, -8, 0);
    CHECK(ed_maximum(p, q), ED_I32, ed_shape1(4), EXACT, 10, 3, 3, 2);
    CHECK(ed_minimum(p, q), ED_I32, ed_shape1(4), EXACT, 2, 2, -2, -1);
}

static void test_i32_unary(void **state)
{
    (void)state;
    ed_shape s = ed_shape1(3);
    ed_node *x = CST(g, ED_I32, s, -5, 0, 5);
    CHECK(ed_neg(x), ED_I32, s, EXACT, 5, 0, -5);
    CHECK(ed_abs(x), ED_I32, s, EXACT, 5, 0, 5);
    CHECK(ed_square(x), ED_I32, s, EXACT, 25, 0, 25);
    CHECK(ed_sign(x), ED_I32, s, EXACT, -1, 0, 1);
    CHECK(ed_relu(x), ED_I32, s, EXACT, 0, 0, 5);
    CHECK(ed_clamp(x, -1, 2), ED_I32, s, EXACT, -1, 0, 2);
    CHECK(ed_stop_gradient(x), ED_I32, s, EXACT, -5, 0, 5);
}

/* ---- elementwise, unary (float) ----------------------------------------------------- */

static void test_unary_basic(void **state)
{
    (void)state;
    CHECK(ed_neg(CST(g, ED_F32, ed_shape1(2), 1.5, -2)), ED_F32, ed_shape1(2), EXACT, -1.5, 2);
    CHECK(ed_abs(CST(g, ED_F32, ed_shape1(3), -1.5, 2, -0.0)), ED_F32, ed_shape1(3), EXACT, 1.5, 2, 0);
    CHECK(ed_square(CST(g, ED_F32, ed_shape1(2), -3, 0.5)), ED_F32, ed_shape1(2), EXACT, 9, 0.25);
    CHECK(ed_sqrt(CST(g, ED_F32, ed_shape1(4), 4, 2, 0, -1)), ED_F32, ed_shape1(4), F32TOL, 2, 1.4142135623730951, 0,
          NAN);
    CHECK(ed_rsqrt(CST(g, ED_F32, ed_shape1(3), 4, 0.25, 0)), ED_F32, ed_shape1(3), EXACT, 0.5, 2, INFINITY);
    CHECK(ed_sign(CST(g, ED_F32, ed_shape1(4), -2.5, 0, 3, NAN)), ED_F32, ed_shape1(4), EXACT, -1, 0, 1, NAN);
    CHECK(ed_stop_gradient(CST(g, ED_F32, ed_shape1(2), 1, -2)), ED_F32, ed_shape1(2), EXACT, 1, -2);
}

static void test_unary_exp_log(void **state)
{
    (void)state;
    CHECK(ed_exp(CST(g, ED_F32, ed_shape1(4), 0, 1, -1, 1000)), ED_F32, ed_shape1(4), F32TOL, 1, 2.718281828459045,
          0.36787944117144233, INFINITY);
    CHECK(ed_log(CST(g, ED_F32, ed_shape1(4), 1, 0, -1, 10)), ED_F32, ed_shape1(4), F32TOL, 0, -INFINITY, NAN,
          2.302585092994046);
    CHECK(ed_exp(ed_scalar(g, ED_F64, 1)), ED_F64, ed_shape0(), F64TOL, 2.718281828459045);
    CHECK(ed_log(ed_scalar(g, ED_F64, 10)), ED_F64, ed_shape0(), F64TOL, 2.302585092994046);
}

/* CHECK's tolerance is absolute below 1, so the small results get one of their own
 * size: 1e-22 is ~1e-15 relative at 1e-7, where log(1 + x) in double is off by 6e-17.
 * Expected values there are the series x - x^2/2 + x^3/3 (f32: at x = (float)1e-7). */
static void test_unary_log1p(void **state)
{
    (void)state;
    CHECK(ed_log1p(CST(g, ED_F32, ed_shape1(6), 0, 1, -0.5, -1, -2, INFINITY)), ED_F32, ed_shape1(6), F32TOL, 0,
          0.6931471805599453, -0.6931471805599453, -INFINITY, NAN, INFINITY);
    CHECK(ed_log1p(ed_scalar(g, ED_F64, 1e-7)), ED_F64, ed_shape0(), 1e-22, 9.999999500000033e-08);
    CHECK(ed_log1p(ed_scalar(g, ED_F64, -1e-7)), ED_F64, ed_shape0(), 1e-22, -1.0000000500000033e-07);
    CHECK(ed_log1p(ed_scalar(g, ED_F32, 1e-7)), ED_F32, ed_shape0(), 1e-14, 9.999999616860996e-08);
    CHECK(ed_log1p(ed_scalar(g, ED_F64, 1.718281828459045)), ED_F64, ed_shape0(), F64TOL, 1);
}

/* As log1p: exp(x) - 1 in double is off by 6e-17 at 1e-7; the series is x + x^2/2 +
 * x^3/6 there. */
static void test_unary_expm1(void **state)
{
    (void)state;
    CHECK(ed_expm1(CST(g, ED_F32, ed_shape1(6), 0, 1, -1, -INFINITY, INFINITY, 1000)), ED_F32, ed_shape1(6), F32TOL, 0,
          1.718281828459045, -0.6321205588285577, -1, INFINITY, INFINITY);
    CHECK(ed_expm1(ed_scalar(g, ED_F64, 1e-7)), ED_F64, ed_shape0(), 1e-22, 1.0000000500000017e-07);
    CHECK(ed_expm1(ed_scalar(g, ED_F64, -1e-7)), ED_F64, ed_shape0(), 1e-22, -9.999999500000016e-08);
    CHECK(ed_expm1(ed_scalar(g, ED_F32, 1e-7)), ED_F32, ed_shape0(), 1e-14, 1.0000000616861003e-07);
    CHECK(ed_expm1(ed_scalar(g, ED_F64, 0.6931471805599453)), ED_F64, ed_shape0(), F64TOL, 1);
}

static void test_unary_activations(void **state)
{
    (void)state;
    CHECK(ed_tanh(CST(g, ED_F32, ed_shape1(3), 0, 0.5, -20)), ED_F32, ed_shape1(3), F32TOL, 0, 0.46211715726000974, -1);
    CHECK(ed_sigmoid(CST(g, ED_F32, ed_shape1(4), 0, 2, -2, -1000)), ED_F32, ed_shape1(4), F32TOL, 0.5,
          0.8807970779778823, 0.11920292202211755, 0);
    CHECK(ed_relu(CST(g, ED_F32, ed_shape1(4), -1, 0, 2.5, NAN)), ED_F32, ed_shape1(4), EXACT, 0, 0, 2.5, NAN);
    CHECK(ed_leaky_relu(CST(g, ED_F32, ed_shape1(3), -2, 3, 0), 0.1), ED_F32, ed_shape1(3), F32TOL, -0.2, 3, 0);
    CHECK(ed_gelu(CST(g, ED_F32, ed_shape1(3), 0, 1, -1), false), ED_F32, ed_shape1(3), F32TOL, 0, 0.8413447460685429,
          -0.15865525393145707);
    CHECK(ed_gelu(CST(g, ED_F32, ed_shape1(2), 1, -1), true), ED_F32, ed_shape1(2), F32TOL, 0.8411919906082768,
          -0.15880800939172324);
    CHECK(ed_silu(CST(g, ED_F32, ed_shape1(3), 0, 1, -1)), ED_F32, ed_shape1(3), F32TOL, 0, 0.7310585786300049,
          -0.2689414213699951);
    CHECK(ed_softplus(CST(g, ED_F32, ed_shape1(4), 0, 1, -1, 100)), ED_F32, ed_shape1(4), F32TOL, 0.6931471805599453,
          1.3132616875182228, 0.31326168751822286, 100);
    CHECK(ed_sin(CST(g, ED_F32, ed_shape1(2), 0, 0.5)), ED_F32, ed_shape1(2), F32TOL, 0, 0.479425538604203);
    CHECK(ed_cos(CST(g, ED_F32, ed_shape1(2), 0, 0.5)), ED_F32, ed_shape1(2), F32TOL, 1, 0.8775825618903728);
    CHECK(ed_erf(CST(g, ED_F32, ed_shape1(4), 0, 0.5, -1, 3)), ED_F32, ed_shape1(4), F32TOL, 0, 0.5204998778130465,
          -0.8427007929497149, 0.9999779095030014);
    CHECK(ed_sigmoid(ed_scalar(g, ED_F64, 2)), ED_F64, ed_shape0(), F64TOL, 0.8807970779778823);
}

static void test_clamp_nan(void **state)
{
    (void)state;
    CHECK(ed_clamp(CST(g, ED_F32, ed_shape1(5), -5, 0.5, 5, NAN, -1), -1, 1), ED_F32, ed_shape1(5), EXACT, -1, 0.5, 1,
          NAN, -1);
}

static void test_cast(void **state)
{
    (void)state;
    ed_node *f = CST(g, ED_F32, ed_shape1(4), 2.7, -2.7, 0.5, NAN);
    CHECK(ed_cast(f, ED_I32), ED_I32, ed_shape1(4), EXACT, 2, -2, 0, 0);
    CHECK(ed_cast(CST(g, ED_I32, ed_shape1(2), 3, -4), ED_F32), ED_F32, ed_shape1(2), EXACT, 3, -4);
    /* f32 0.1 widened keeps its float value; f64 0.1 narrowed is rounded to float */
    CHECK(ed_cast(ed_scalar(g, ED_F32, 0.1), ED_F64), ED_F64, ed_shape0(), EXACT, 0.10000000149011612);
    CHECK(ed_cast(ed_scalar(g, ED_F64, 0.1), ED_F32), ED_F32, ed_shape0(), EXACT, 0.10000000149011612);
    CHECK(ed_cast(ed_scalar(g, ED_I32, 2147483647), ED_F64), ED_F64, ed_shape0(), EXACT, 2147483647);
    /* out of range wraps like two's complement: 3e9 - 2^32 */
    CHECK(ed_cast(ed_scalar(g, ED_F64, 3e9), ED_I32), ED_I32, ed_shape0(), EXACT, -1294967296);
}

/* ---- reductions ----------------------------------------------------------------------- */

static void test_sum_axes(void **state)
{
    (void)state;
    ed_node *x = iota234();
    CHECK(ed_sum(x, 0x1, false), ED_F32, ed_shape2(3, 4), EXACT, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34);
    CHECK(ed_sum(x, 0x1, true), ED_F32, ed_shape3(1, 3, 4), EXACT, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34);
    CHECK(ed_sum(x, 0x2, false), ED_F32, ed_shape2(2, 4), EXACT, 12, 15, 18, 21, 48, 51, 54, 57);
    CHECK(ed_sum(x, 0x4, false), ED_F32, ed_shape2(2, 3), EXACT, 6, 22, 38, 54, 70, 86);
    CHECK(ed_sum(x, 0x4, true), ED_F32, ed_shape3(2, 3, 1), EXACT, 6, 22, 38, 54, 70, 86);
    CHECK(ed_sum(x, 0x5, false), ED_F32, ed_shape1(3), EXACT, 60, 92, 124);
    CHECK(ed_sum(x, 0x5, true), ED_F32, ed_shape3(1, 3, 1), EXACT, 60, 92, 124);
    CHECK(ed_sum(x, 0x6, true), ED_F32, ed_shape3(2, 1, 1), EXACT, 66, 210);
    CHECK(ed_sum(x, ED_ALL_AXES, false), ED_F32, ed_shape0(), EXACT, 276);
    CHECK(ed_sum(x, ED_ALL_AXES, true), ED_F32, ed_shape3(1, 1, 1), EXACT, 276);
    /* no axes: every element is its own group */
    CHECK(ed_sum(iota23(ED_F32), 0, false), ED_F32, ed_shape2(2, 3), EXACT, 0, 1, 2, 3, 4, 5);
    /* rank 0 input */
    CHECK(ed_sum(ed_scalar(g, ED_F32, 4), ED_ALL_AXES, false), ED_F32, ed_shape0(), EXACT, 4);
}

static void test_sum_i32_and_f64(void **state)
{
    (void)state;
    CHECK(ed_sum(iota23(ED_I32), 0x2, false), ED_I32, ed_shape1(2), EXACT, 3, 12);
    /* accumulated exactly, then wrapped once when stored */
    CHECK(ed_sum(CST(g, ED_I32, ed_shape1(3), 2147483647, 1, 5), ED_ALL_AXES, false), ED_I32, ed_shape0(), EXACT,
          -2147483643);
    /* f32 sums accumulate in double: summed in float, 2^24 + 1 + 1 would stay 2^24 */
    CHECK(ed_sum(CST(g, ED_F32, ed_shape1(3), 16777216, 1, 1), ED_ALL_AXES, false), ED_F32, ed_shape0(), EXACT,
          16777218);
    /* f64 keeps what f32 would lose (f32 cannot hold 1e16 + 2) */
    ed_node *big = CST(g, ED_F64, ed_shape1(3), 1e16, 2, -1e16);
    CHECK(ed_sum(big, ED_ALL_AXES, false), ED_F64, ed_shape0(), EXACT, 2);
    CHECK(ed_mean(CST(g, ED_F64, ed_shape1(3), 0.1, 0.2, 0.4), ED_ALL_AXES, false), ED_F64, ed_shape0(), F64TOL,
          0.23333333333333334);
}

static void test_sum_rank6(void **state)
{
    (void)state;
    int64_t xd[6] = {1, 2, 1, 2, 1, 2}, od[4] = {1, 1, 2, 1}, kd[6] = {1, 1, 1, 2, 1, 1};
    ed_node *x = CST(g, ED_F32, ed_shapen(6, xd), 1, 2, 3, 4, 5, 6, 7, 8);
    CHECK(ed_sum(x, 0x22, false), ED_F32, ed_shapen(4, od), EXACT, 14, 22);
    CHECK(ed_sum(x, 0x22 | 0x1 | 0x4 | 0x10, true), ED_F32, ed_shapen(6, kd), EXACT, 14, 22);
    CHECK(ed_max(x, 0x2A, false), ED_F32, ed_shape3(1, 1, 1), EXACT, 8);
}

static void test_mean(void **state)
{
    (void)state;
    ed_node *x = iota234();
    CHECK(ed_mean(x, 0x2, false), ED_F32, ed_shape2(2, 4), EXACT, 4, 5, 6, 7, 16, 17, 18, 19);
    CHECK(ed_mean(x, 0x2, true), ED_F32, ed_shape3(2, 1, 4), EXACT, 4, 5, 6, 7, 16, 17, 18, 19);
    CHECK(ed_mean(x, 0x5, false), ED_F32, ed_shape1(3), EXACT, 7.5, 11.5, 15.5);
    CHECK(ed_mean(x, ED_ALL_AXES, false), ED_F32, ed_shape0(), EXACT, 11.5);
    CHECK(ed_mean(x, ED_ALL_AXES, true), ED_F32, ed_shape3(1, 1, 1), EXACT, 11.5);
    CHECK(ed_mean(iota23(ED_F32), 0, true), ED_F32, ed_shape2(2, 3), EXACT, 0, 1, 2, 3, 4, 5);
}

static void test_empty_reductions(void **state)
{
    (void)state;
    ed_node *e = ed_fill(g, ED_F32, ed_shape2(2, 0), 1);
    CHECK(ed_sum(e, 0x2, false), ED_F32, ed_shape1(2), EXACT, 0, 0);
    CHECK(ed_mean(e, 0x2, true), ED_F32, ed_shape2(2, 1), EXACT, NAN, NAN);
    /* reducing the non-empty axis of an empty tensor leaves an empty result */
    ed_node *s = ed_sum(e, 0x1, false);
    assert_non_null(s);
    assert_int_equal(ed_shape_numel(s->shape), 0);
    ed_output(g, "empty", s);
    ed_program *p = ed_compile(g, NULL, NULL);
    assert_non_null(p);
    assert_int_equal(ed_run(p, NULL, 0), ED_OK);
    assert_int_equal(ed_tensor_numel(ed_program_output(p, "empty")), 0);
    ed_program_free(p);
}

static void test_max_min(void **state)
{
    (void)state;
    ed_node *x = iota234();
    CHECK(ed_max(x, 0x4, false), ED_F32, ed_shape2(2, 3), EXACT, 3, 7, 11, 15, 19, 23);
    CHECK(ed_max(x, 0x3, true), ED_F32, ed_shape3(1, 1, 4), EXACT, 20, 21, 22, 23);
    CHECK(ed_min(x, 0x2, false), ED_F32, ed_shape2(2, 4), EXACT, 0, 1, 2, 3, 12, 13, 14, 15);
    CHECK(ed_min(x, ED_ALL_AXES, false), ED_F32, ed_shape0(), EXACT, 0);
    ed_node *y = CST(g, ED_I32, ed_shape2(2, 3), 3, 9, 1, 9, 2, 9);
    CHECK(ed_max(y, 0x1, false), ED_I32, ed_shape1(3), EXACT, 9, 9, 9);
    CHECK(ed_min(y, 0x2, true), ED_I32, ed_shape2(2, 1), EXACT, 1, 2);
    CHECK(ed_max(y, 0, false), ED_I32, ed_shape2(2, 3), EXACT, 3, 9, 1, 9, 2, 9);
}

static void test_max_min_nan(void **state)
{
    (void)state;
    ed_node *x = CST(g, ED_F32, ed_shape2(3, 3), 1, NAN, 3, 4, 5, 6, NAN, -1, 2);
    CHECK(ed_max(x, 0x2, false), ED_F32, ed_shape1(3), EXACT, NAN, 6, NAN);
    CHECK(ed_min(x, 0x2, false), ED_F32, ed_shape1(3), EXACT, NAN, 4, NAN);
    CHECK(ed_max(x, 0x1, false), ED_F32, ed_shape1(3), EXACT, NAN, NAN, 6);
    CHECK(ed_min(x, ED_ALL_AXES, false), ED_F32, ed_shape0(), EXACT, NAN);
}

static void test_argmax_argmin(void **state)
{
    (void)state;
    ed_node *y = CST(g, ED_F32, ed_shape2(2, 3), 3, 9, 1, 9, 2, 9);
    CHECK(ed_argmax(y, 0x2, false), ED_I32, ed_shape1(2), EXACT, 1, 0); /* first of equal maxima */
    CHECK(ed_argmax(y, 0x1, false), ED_I32, ed_shape1(3), EXACT, 1, 0, 1);
    CHECK(ed_argmax(y, ED_ALL_AXES, false), ED_I32, ed_shape0(), EXACT, 1);
    CHECK(ed_argmin(y, ED_ALL_AXES, true), ED_I32, ed_shape2(1, 1), EXACT, 2);
    CHECK(ed_argmin(y, 0x2, true), ED_I32, ed_shape2(2, 1), EXACT, 2, 1);
    CHECK(ed_argmin(y, 0, false), ED_I32, ed_shape2(2, 3), EXACT, 0, 0, 0, 0, 0, 0);
    /* several axes: the index is flattened over the reduced axes (a, c) in C order */
    ed_node *z = CST(g, ED_F32, ed_shape3(2, 2, 2), 1, 5, 7, 2, 8, 0, 3, 8);
    CHECK(ed_argmax(z, 0x5, false), ED_I32, ed_shape1(2), EXACT, 2, 3);
    CHECK(ed_argmin(z, 0x5, true), ED_I32, ed_shape3(1, 2, 1), EXACT, 3, 1);
    CHECK(ed_argmax(z, 0x3, false), ED_I32, ed_shape1(2), EXACT, 2, 3);
    CHECK(ed_argmin(z, 0x6, false), ED_I32, ed_shape1(2), EXACT, 0, 1);
    CHECK(ed_argmax(CST(g, ED_I32, ed_shape1(4), -3, 7, 7, 0), ED_ALL_AXES, false), ED_I32, ed_shape0(), EXACT, 1);
}

static void test_argmax_nan(void **state)
{
    (void)state;
    /* A NaN is the extreme for both, and the first NaN wins (numpy). */
    ed_node *x = CST(g, ED_F32, ed_shape2(3, 4), 1, NAN, 3, NAN, NAN, 9, -9, 0, 4, 5, 6, 7);
    CHECK(ed_argmax(x, 0x2, false), ED_I32, ed_shape1(3), EXACT, 1, 0, 3);
    CHECK(ed_argmin(x, 0x2, false), ED_I32, ed_shape1(3), EXACT, 1, 0, 0);
    CHECK(ed_argmax(x, 0x1, false), ED_I32, ed_shape1(4), EXACT, 1, 0, 2, 0);
    CHECK(ed_argmin(x, ED_ALL_AXES, false), ED_I32, ed_shape0(), EXACT, 1);
}

/* ---- movement ------------------------------------------------------------------------ */

static void test_reshape(void **state)
{
    (void)state;
    CHECK(ed_reshape(iota23(ED_F32), ed_shape2(3, 2)), ED_F32, ed_shape2(3, 2), EXACT, 0, 1, 2, 3, 4, 5);
    CHECK(ed_reshape(ed_scalar(g, ED_I32, 7), ed_shape2(1, 1)), ED_I32, ed_shape2(1, 1), EXACT, 7);
    CHECK(ed_reshape(ed_fill(g, ED_F64, ed_shape3(1, 1, 1), 0.1), ed_shape0()), ED_F64, ed_shape0(), EXACT, 0.1);
    CHECK(ed_reshape(iota23(ED_F32), ed_shape3(3, 1, -1)), ED_F32, ed_shape3(3, 1, 2), EXACT, 0, 1, 2, 3, 4, 5);
}

static void test_transpose(void **state)
{
    (void)state;
    CHECK(ed_transpose(iota23(ED_F32), NULL), ED_F32, ed_shape2(3, 2), EXACT, 0, 3, 1, 4, 2, 5);
    int perm[3] = {2, 0, 1};
    CHECK(ed_transpose(iota234(), perm), ED_F32, ed_shape3(4, 2, 3), EXACT, 0, 4, 8, 12, 16, 20, 1, 5, 9, 13, 17, 21, 2,
          6, 10, 14, 18, 22, 3, 7, 11, 15, 19, 23);
    int perm2[3] = {1, 2, 0};
    CHECK(ed_transpose(iota234(), perm2), ED_F32, ed_shape3(3, 4, 2), EXACT, 0, 12, 1, 13, 2, 14, 3, 15, 4, 16, 5, 17,
          6, 18, 7, 19, 8, 20, 9, 21, 10, 22, 11, 23);
    /* element sizes 4 and 8 */
    CHECK(ed_transpose_last2(iota23(ED_I32)), ED_I32, ed_shape2(3, 2), EXACT, 0, 3, 1, 4, 2, 5);
    CHECK(ed_transpose_last2(CST(g, ED_F64, ed_shape2(2, 2), 0.1, 0.2, 0.3, 0.4)), ED_F64, ed_shape2(2, 2), EXACT, 0.1,
          0.3, 0.2, 0.4);
    CHECK(ed_transpose(ed_scalar(g, ED_F32, 3), NULL), ED_F32, ed_shape0(), EXACT, 3);
}

static void test_broadcast_to(void **state)
{
    (void)state;
    ed_node *v = CST(g, ED_F32, ed_shape1(3), 1, 2, 3);
    CHECK(ed_broadcast_to(v, ed_shape2(2, 3)), ED_F32, ed_shape2(2, 3), EXACT, 1, 2, 3, 1, 2, 3);
    ed_node *c = CST(g, ED_I32, ed_shape2(3, 1), 1, 2, 3);
    CHECK(ed_broadcast_to(c, ed_shape2(3, 4)), ED_I32, ed_shape2(3, 4), EXACT, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    CHECK(ed_broadcast_to(ed_scalar(g, ED_F64, 0.5), ed_shape2(2, 2)), ED_F64, ed_shape2(2, 2), EXACT, 0.5, 0.5, 0.5,
          0.5);
    int64_t od[6] = {2, 1, 1, 1, 2, 2};
    CHECK(ed_broadcast_to(CST(g, ED_F32, ed_shape2(1, 2), 8, 9), ed_shapen(6, od)), ED_F32, ed_shapen(6, od), EXACT, 8,
          9, 8, 9, 8, 9, 8, 9);
}

static void test_slice(void **state)
{
    (void)state;
    ed_node *x = CST(g, ED_F32, ed_shape2(4, 5), 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19);
    int64_t b[2] = {1, 0}, e[2] = {4, 5}, st[2] = {2, 2};
    CHECK(ed_slice(x, b, e, st), ED_F32, ed_shape2(2, 3), EXACT, 5, 7, 9, 15, 17, 19);
    int64_t b2[2] = {-2, 1}, e2[2] = {100, -1};
    CHECK(ed_slice(x, b2, e2, NULL), ED_F32, ed_shape2(2, 3), EXACT, 11, 12, 13, 16, 17, 18);
    CHECK(ed_slice_axis(x, 1, 3, 4), ED_F32, ed_shape2(4, 1), EXACT, 3, 8, 13, 18);
    int64_t b3[2] = {0, 4}, e3[2] = {4, 5}, st3[2] = {3, 1};
    CHECK(ed_slice(x, b3, e3, st3), ED_F32, ed_shape2(2, 1), EXACT, 4, 19);
    ed_node *empty = ed_slice_axis(x, 0, 2, 2);
    assert_non_null(empty);
    assert_int_equal(empty->shape.dim[0], 0);
}

static void test_concat(void **state)
{
    (void)state;
    ed_node *a = CST(g, ED_F32, ed_shape2(2, 1), 1, 2);
    ed_node *b = CST(g, ED_F32, ed_shape2(2, 2), 3, 4, 5, 6);
    ed_node *e = ed_fill(g, ED_F32, ed_shape2(2, 0), 0);
    ed_node *c = CST(g, ED_F32, ed_shape2(2, 1), 7, 8);
    ed_node *xs[4] = {a, b, e, c};
    CHECK(ed_concat(xs, 4, 1), ED_F32, ed_shape2(2, 4), EXACT, 1, 3, 4, 7, 2, 5, 6, 8);
    ed_node *ys[2] = {iota23(ED_I32), CST(g, ED_I32, ed_shape2(1, 3), 9, 8, 7)};
    CHECK(ed_concat(ys, 2, 0), ED_I32, ed_shape2(3, 3), EXACT, 0, 1, 2, 3, 4, 5, 9, 8, 7);
    ed_node *zs[2] = {CST(g, ED_F64, ed_shape1(1), 0.5), CST(g, ED_F64, ed_shape1(2), 0.25, 0.125)};
    CHECK(ed_concat(zs, 2, -1), ED_F64, ed_shape1(3), EXACT, 0.5, 0.25, 0.125);
    ed_node *one[1] = {b};
    CHECK(ed_concat(one, 1, 0), ED_F32, ed_shape2(2, 2), EXACT, 3, 4, 5, 6);
}

static void test_pad(void **state)
{
    (void)state;
    ed_node *x = CST(g, ED_F32, ed_shape2(2, 2), 1, 2, 3, 4);
    int64_t lo[2] = {1, 0}, hi[2] = {0, 2};
    CHECK(ed_pad(x, lo, hi, -1), ED_F32, ed_shape2(3, 4), EXACT, -1, -1, -1, -1, 1, 2, -1, -1, 3, 4, -1, -1);
    int64_t lo1[1] = {2}, hi1[1] = {1};
    CHECK(ed_pad(CST(g, ED_I32, ed_shape1(2), 5, 6), lo1, hi1, 0), ED_I32, ed_shape1(5), EXACT, 0, 0, 5, 6, 0);
    CHECK(ed_pad(CST(g, ED_F32, ed_shape1(1), 5), lo1, hi1, NAN), ED_F32, ed_shape1(4), EXACT, NAN, NAN, 5, NAN);
    CHECK(ed_pad(ed_scalar(g, ED_F32, 3), NULL, NULL, 0), ED_F32, ed_shape0(), EXACT, 3);
}

/* ---- indexing ------------------------------------------------------------------------- */

static void test_gather(void **state)
{
    (void)state;
    ed_node *x = CST(g, ED_F32, ed_shape2(4, 2), 0, 1, 10, 11, 20, 21, 30, 31);
    /* -1 clamps to 0, 7 clamps to 3 */
    ed_node *idx = CST(g, ED_I32, ed_shape1(4), 3, -1, 7, 0);
    CHECK(ed_gather(x, idx, 0), ED_F32, ed_shape2(4, 2), EXACT, 30, 31, 0, 1, 30, 31, 0, 1);
    /* 2-D indices on the last axis: out[a, i, j] = y[a, idx[i, j]] */
    ed_node *y = CST(g, ED_F32, ed_shape2(2, 3), 1, 2, 3, 4, 5, 6);
    ed_node *idx2 = CST(g, ED_I32, ed_shape2(2, 2), 2, 0, 1, 1);
    CHECK(ed_gather(y, idx2, 1), ED_F32, ed_shape3(2, 2, 2), EXACT, 3, 1, 2, 2, 6, 4, 5, 5);
    /* a scalar index drops the axis */
    CHECK(ed_gather(y, ed_scalar(g, ED_I32, 1), 0), ED_F32, ed_shape1(3), EXACT, 4, 5, 6);
    CHECK(ed_gather(CST(g, ED_I32, ed_shape1(3), 7, 8, 9), ed_scalar(g, ED_I32, 2), 0), ED_I32, ed_shape0(), EXACT, 9);
    /* the middle axis of a rank-3 tensor */
    ed_node *z = CST(g, ED_F64, ed_shape3(2, 3, 1), 0.5, 1.5, 2.5, 3.5, 4.5, 5.5);
    CHECK(ed_gather(z, CST(g, ED_I32, ed_shape1(2), 2, 2), 1), ED_F64, ed_shape3(2, 2, 1), EXACT, 2.5, 2.5, 5.5, 5.5);
}

static void test_scatter_add(void **state)
{
    (void)state;
    /* repeated index 0 accumulates; 5 and -1 are out of range and dropped */
    ed_node *base = ed_fill(g, ED_F32, ed_shape2(3, 2), 1);
    ed_node *idx = CST(g, ED_I32, ed_shape1(5), 0, 2, 0, 5, -1);
    ed_node *upd = CST(g, ED_F32, ed_shape2(5, 2), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10);
    CHECK(ed_scatter_add(base, idx, upd, 0), ED_F32, ed_shape2(3, 2), EXACT, 7, 9, 1, 1, 4, 5);
    /* last axis, 2-D indices */
    ed_node *b2 = ed_fill(g, ED_I32, ed_shape2(2, 3), 0);
    ed_node *i2 = CST(g, ED_I32, ed_shape2(2, 2), 2, 2, 0, 3);
    ed_node *u2 = CST(g, ED_I32, ed_shape3(2, 2, 2), 1, 2, 3, 4, 5, 6, 7, 8);
    CHECK(ed_scatter_add(b2, i2, u2, 1), ED_I32, ed_shape2(2, 3), EXACT, 3, 0, 3, 7, 0, 11);
    /* scalar index */
    ed_node *b3 = CST(g, ED_F64, ed_shape1(3), 0.5, 0.5, 0.5);
    CHECK(ed_scatter_add(b3, ed_scalar(g, ED_I32, 1), ed_scalar(g, ED_F64, 0.25), 0), ED_F64, ed_shape1(3), EXACT, 0.5,
          0.75, 0.5);
}

static void test_one_hot(void **state)
{
    (void)state;
    ed_node *idx = CST(g, ED_I32, ed_shape1(4), 0, 2, -1, 3);
    CHECK(ed_one_hot(idx, 3, ED_F32), ED_F32, ed_shape2(4, 3), EXACT, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0);
    ed_node *idx2 = CST(g, ED_I32, ed_shape2(2, 1), 1, 0);
    CHECK(ed_one_hot(idx2, 2, ED_I32), ED_I32, ed_shape3(2, 1, 2), EXACT, 0, 1, 1, 0);
    CHECK(ed_one_hot(ed_scalar(g, ED_I32, 1), 4, ED_F64), ED_F64, ed_shape1(4), EXACT, 0, 1, 0, 0);
}

/* ---- matmul --------------------------------------------------------------------------- */

static void test_matmul(void **state)
{
    (void)state;
    ed_node *a = CST(g, ED_F32, ed_shape2(2, 3), 1, 2, 3, 4, 5, 6);
    ed_node *b = CST(g, ED_F32, ed_shape2(3, 2), 7, 8, 9, 10, 11, 12);
    ed_node *at = CST(g, ED_F32, ed_shape2(3, 2), 1, 4, 2, 5, 3, 6);
    ed_node *bt = CST(g, ED_F32, ed_shape2(2, 3), 7, 9, 11, 8, 10, 12);
    ed_shape s = ed_shape2(2, 2);
    CHECK(ed_matmul(a, b), ED_F32, s, EXACT, 58, 64, 139, 154);
    CHECK(ed_matmul_t(at, b, true, false), ED_F32, s, EXACT, 58, 64, 139, 154);
    CHECK(ed_matmul_t(a, bt, false, true), ED_F32, s, EXACT, 58, 64, 139, 154);
    CHECK(ed_matmul_t(at, bt, true, true), ED_F32, s, EXACT, 58, 64, 139, 154);
    /* the other order: [3,2] x [2,3] */
    CHECK(ed_matmul(b, a), ED_F32, ed_shape2(3, 3), EXACT, 39, 54, 69, 49, 68, 87, 59, 82, 105);
    /* 1x1 and an empty inner dimension */
    CHECK(ed_matmul(ed_fill(g, ED_F32, ed_shape2(1, 1), 3), ed_fill(g, ED_F32, ed_shape2(1, 1), -2)), ED_F32,
          ed_shape2(1, 1), EXACT, -6);
    CHECK(ed_matmul(ed_fill(g, ED_F32, ed_shape2(2, 0), 1), ed_fill(g, ED_F32, ed_shape2(0, 3), 1)), ED_F32,
          ed_shape2(2, 3), EXACT, 0, 0, 0, 0, 0, 0);
}

static void test_matmul_batched(void **state)
{
    (void)state;
    /* [2,1,2] x [2,2]: b shared by both batches */
    ed_node *a = CST(g, ED_F32, ed_shape3(2, 1, 2), 1, 2, 3, 4);
    ed_node *b = CST(g, ED_F32, ed_shape2(2, 2), 1, 0, 0, 2);
    CHECK(ed_matmul(a, b), ED_F32, ed_shape3(2, 1, 2), EXACT, 1, 4, 3, 8);
    /* [2,1,2,2] x [3,2,2] -> [2,3,2,2]: out[i, j] = a[i] @ b[j] with a[0] = I, a[1] = 2I */
    int64_t ad[4] = {2, 1, 2, 2}, od[4] = {2, 3, 2, 2};
    ed_node *a4 = CST(g, ED_F32, ed_shapen(4, ad), 1, 0, 0, 1, 2, 0, 0, 2);
    ed_node *b3 = CST(g, ED_F32, ed_shape3(3, 2, 2), 1, 2, 3, 4, 0, 1, 1, 0, 5, 0, 0, 5);
    CHECK(ed_matmul(a4, b3), ED_F32, ed_shapen(4, od), EXACT, 1, 2, 3, 4, 0, 1, 1, 0, 5, 0, 0, 5, 2, 4, 6, 8, 0, 2, 2,
          0, 10, 0, 0, 10);
    /* batched with transposes: a[k] stored as its transpose, b[k] = [[1,2],[3,4]] stored transposed */
    ed_node *ta = CST(g, ED_F32, ed_shape3(2, 2, 2), 1, 3, 2, 4, 0, 1, 1, 0);
    ed_node *tb = CST(g, ED_F32, ed_shape3(1, 2, 2), 1, 3, 2, 4);
    /* a[0] = [[1,2],[3,4]], a[1] = [[0,1],[1,0]]; b = [[1,2],[3,4]] */
    CHECK(ed_matmul_t(ta, tb, true, true), ED_F32, ed_shape3(2, 2, 2), EXACT, 7, 10, 15, 22, 3, 4, 1, 2);
    /* row vector times a batch of columns: [1,3] x [2,3,1] -> [2,1,1] */
    ed_node *r = CST(g, ED_F32, ed_shape2(1, 3), 1, 10, 100);
    ed_node *c = CST(g, ED_F32, ed_shape3(2, 3, 1), 1, 2, 3, 4, 5, 6);
    CHECK(ed_matmul(r, c), ED_F32, ed_shape3(2, 1, 1), EXACT, 321, 654);
}

static void test_matmul_f64(void **state)
{
    (void)state;
    ed_node *a = CST(g, ED_F64, ed_shape2(1, 2), 0.1, 0.2);
    ed_node *b = CST(g, ED_F64, ed_shape2(2, 1), 0.3, 0.4);
    CHECK(ed_matmul(a, b), ED_F64, ed_shape2(1, 1), F64TOL, 0.11);
    CHECK(ed_matmul_t(a, a, true, false), ED_F64, ed_shape2(2, 2), F64TOL, 0.01, 0.02, 0.02, 0.04);
}

/* ---- collectives: one process is one rank, so the sum and the mean are the value ---- */

static void test_allreduce_one_rank(void **state)
{
    (void)state;
    CHECK(ed_allreduce(iota23(ED_F32), false), ED_F32, ed_shape2(2, 3), EXACT, 0, 1, 2, 3, 4, 5);
    CHECK(ed_allreduce(CST(g, ED_F64, ed_shape1(2), 0.1, -3), true), ED_F64, ed_shape1(2), EXACT, 0.1, -3);
}

/* ---- constants ------------------------------------------------------------------------ */

static void test_const(void **state)
{
    (void)state;
    CHECK(ed_fill(g, ED_F32, ed_shape2(2, 2), 0.5), ED_F32, ed_shape2(2, 2), EXACT, 0.5, 0.5, 0.5, 0.5);
    CHECK(CST(g, ED_I32, ed_shape1(3), 1.9, -1.9, 3), ED_I32, ed_shape1(3), EXACT, 1, -1, 3);
    CHECK(ed_scalar(g, ED_F64, 0.1), ED_F64, ed_shape0(), EXACT, 0.1);
    CHECK(ed_scalar(g, ED_F32, 0.1), ED_F32, ed_shape0(), EXACT, 0.10000000149011612);
}

/* ---- random ---------------------------------------------------------------------------- */

/* Compile g with the seed, run it `calls` times, return the program. */
static ed_program *run_seeded(uint64_t seed, int calls)
{
    ed_program *p = ed_compile(g, NULL, &(ed_compile_opts){.backend = ED_BACKEND_INTERP, .seed = seed});
    assert_non_null(p);
    for (int i = 0; i < calls; i++) assert_int_equal(ed_run(p, NULL, 0), ED_OK);
    return p;
}

static bool same_bits(const ed_tensor *a, const ed_tensor *b)
{
    return ed_tensor_bytes(a) == ed_tensor_bytes(b) && memcmp(a->data, b->data, ed_tensor_bytes(a)) == 0;
}

static void test_rand_streams(void **state)
{
    (void)state;
    enum { N = 1001 };
    ed_node *u = ed_rand(g, ED_F32, ed_shape1(N), -2, 3);
    ed_node *v = ed_rand(g, ED_F32, ed_shape1(N), -2, 3);
    assert_true(u->attr.stream != v->attr.stream);
    ed_output(g, "u", u);
    ed_output(g, "v", v);
    ed_program *p1 = run_seeded(7, 1), *p2 = run_seeded(7, 1), *p3 = run_seeded(8, 1);
    const ed_tensor *u1 = ed_program_output(p1, "u");
    /* the documented key: (seed, call, node stream) */
    float *want = malloc(N * sizeof *want);
    ed_rng_uniform(want, ED_F32, N, 7, 0, u->attr.stream, -2, 3);
    assert_memory_equal(u1->data, want, N * sizeof *want);
    for (int i = 0; i < N; i++) assert_true(want[i] >= -2 && want[i] < 3);
    /* same seed and call: same bits; another seed or stream: different */
    assert_true(same_bits(u1, ed_program_output(p2, "u")));
    assert_false(same_bits(u1, ed_program_output(p3, "u")));
    assert_false(same_bits(u1, ed_program_output(p1, "v")));
    /* the next call differs, and rewinding the counter repeats call 0 */
    assert_int_equal(ed_program_calls(p1), 1);
    assert_int_equal(ed_run(p1, NULL, 0), ED_OK);
    assert_false(same_bits(ed_program_output(p1, "u"), ed_program_output(p2, "u")));
    ed_rng_uniform(want, ED_F32, N, 7, 1, u->attr.stream, -2, 3);
    assert_memory_equal(ed_program_output(p1, "u")->data, want, N * sizeof *want);
    ed_program_set_calls(p1, 0);
    assert_int_equal(ed_run(p1, NULL, 0), ED_OK);
    assert_true(same_bits(ed_program_output(p1, "u"), ed_program_output(p2, "u")));
    free(want);
    ed_program_free(p1);
    ed_program_free(p2);
    ed_program_free(p3);
}

static void test_randn(void **state)
{
    (void)state;
    enum { N = 4000 };
    ed_node *z = ed_randn(g, ED_F32, ed_shape2(N / 4, 4));
    ed_node *z64 = ed_randn(g, ED_F64, ed_shape1(N));
    ed_output(g, "z", z);
    ed_output(g, "z64", z64);
    ed_program *p = run_seeded(3, 1);
    const ed_tensor *t = ed_program_output(p, "z");
    float *want = malloc(N * sizeof *want);
    ed_rng_normal(want, ED_F32, N, 3, 0, z->attr.stream);
    assert_memory_equal(t->data, want, N * sizeof *want);
    free(want);
    const ed_tensor *t64 = ed_program_output(p, "z64");
    double sum = 0, sq = 0;
    for (int i = 0; i < N; i++) {
        double x = ((const double *)t64->data)[i];
        assert_true(isfinite(x));
        sum += x;
        sq += x * x;
    }
    /* N(0,1): the mean of 4000 draws is within 5 standard errors of 0, the variance near 1 */
    assert_true(fabs(sum / N) < 5.0 / sqrt(N));
    assert_true(fabs(sq / N - 1) < 0.15);
    ed_program_free(p);
}

static void test_randint(void **state)
{
    (void)state;
    enum { N = 500 };
    ed_node *r = ed_randint(g, ed_shape1(N), -2, 3);
    ed_output(g, "r", r);
    ed_program *p = run_seeded(11, 1);
    const int32_t *x = ed_program_output(p, "r")->data;
    int seen[5] = {0};
    for (int i = 0; i < N; i++) {
        assert_true(x[i] >= -2 && x[i] < 3);
        seen[x[i] + 2]++;
    }
    for (int k = 0; k < 5; k++) assert_true(seen[k] > 50); /* ~100 each */
    int32_t want[N];
    ed_rng_randint(want, N, 11, 0, r->attr.stream, -2, 3);
    assert_memory_equal(x, want, sizeof want);
    ed_program_free(p);
}

static void test_bernoulli(void **state)
{
    (void)state;
    enum { N = 4000 };
    ed_node *b = ed_bernoulli(g, ED_F32, ed_shape1(N), 0.25);
    ed_node *bi = ed_bernoulli(g, ED_I32, ed_shape1(8), 1);
    ed_node *b0 = ed_bernoulli(g, ED_F64, ed_shape1(8), 0);
    ed_output(g, "b", b);
    ed_output(g, "bi", bi);
    ed_output(g, "b0", b0);
    ed_program *p = run_seeded(5, 1);
    const float *x = ed_program_output(p, "b")->data;
    int ones = 0;
    for (int i = 0; i < N; i++) {
        assert_true(x[i] == 0 || x[i] == 1);
        ones += x[i] == 1;
    }
    assert_true(ones > 850 && ones < 1150); /* 1000 expected, sd ~27 */
    for (int i = 0; i < 8; i++) {
        assert_int_equal(((const int32_t *)ed_program_output(p, "bi")->data)[i], 1);
        assert_true(((const double *)ed_program_output(p, "b0")->data)[i] == 0);
    }
    ed_program_free(p);
}

static void test_rand_f64(void **state)
{
    (void)state;
    ed_node *u = ed_rand(g, ED_F64, ed_shape1(64), 10, 10.5);
    ed_output(g, "u", u);
    ed_program *p = run_seeded(1, 1);
    const double *x = ed_program_output(p, "u")->data;
    double want[64];
    ed_rng_uniform(want, ED_F64, 64, 1, 0, u->attr.stream, 10, 10.5);
    for (int i = 0; i < 64; i++) {
        assert_true(x[i] >= 10 && x[i] < 10.5);
        assert_true(x[i] == want[i]);
    }
    ed_program_free(p);
}

/* ---- convolutions ------------------------------------------------------------------- */

static ed_node *iota33(ed_dtype dt) { return CST(g, dt, ed_shape4(1, 1, 3, 3), 1, 2, 3, 4, 5, 6, 7, 8, 9); }

static void test_conv2d(void **state)
{
    (void)state;
    ed_node *x = iota33(ED_F32), *diag = CST(g, ED_F32, ed_shape4(1, 1, 2, 2), 1, 0, 0, 1);
    ed_node *ones = ed_fill(g, ED_F32, ed_shape4(1, 1, 2, 2), 1);
    /* x[i,j] + x[i+1,j+1] */
    CHECK(ed_conv2d(x, diag, NULL), ED_F32, ed_shape4(1, 1, 2, 2), EXACT, 6, 8, 12, 14);
    /* stride 2, padding 1: windows {-1,0} and {1,2} per axis, the padding adding nothing */
    ed_conv_opts s2p1 = {.stride = {2, 2}, .padding = {1, 1}};
    CHECK(ed_conv2d(x, ones, &s2p1), ED_F32, ed_shape4(1, 1, 2, 2), EXACT, 1, 5, 11, 28);
    /* dilation 2: the four corners */
    CHECK(ed_conv2d(x, ones, &(ed_conv_opts){.dilation = {2, 2}}), ED_F32, ed_shape4(1, 1, 1, 1), EXACT, 20);
    /* a kernel larger than the input, which padding makes fit: 5x5 over 3x3 padded by 1 */
    ed_node *big = ed_fill(g, ED_F64, ed_shape4(1, 1, 5, 5), 1);
    CHECK(ed_conv2d(iota33(ED_F64), big, &(ed_conv_opts){.padding = {1, 1}}), ED_F64, ed_shape4(1, 1, 1, 1), EXACT, 45);
    /* groups 2: each output channel reads its own input channel */
    ed_node *x2 = CST(g, ED_F32, ed_shape4(1, 2, 1, 1), 2, 3);
    ed_node *w2 = CST(g, ED_F32, ed_shape4(2, 1, 1, 1), 10, 100);
    CHECK(ed_conv2d(x2, w2, &(ed_conv_opts){.groups = 2}), ED_F32, ed_shape4(1, 2, 1, 1), EXACT, 20, 300);
    /* groups 1, 1x1: every output channel mixes both inputs */
    ed_node *w21 = CST(g, ED_F32, ed_shape4(2, 2, 1, 1), 1, 10, 100, 1000);
    CHECK(ed_conv2d(x2, w21, NULL), ED_F32, ed_shape4(1, 2, 1, 1), EXACT, 32, 3200);
    /* a batch of two: the second image is the first times -1 */
    ed_node *xb = CST(g, ED_F32, ed_shape4(2, 1, 1, 3), 1, 2, 3, -1, -2, -3);
    ed_node *w13 = CST(g, ED_F32, ed_shape4(1, 1, 1, 2), 1, -1);
    CHECK(ed_conv2d(xb, w13, NULL), ED_F32, ed_shape4(2, 1, 1, 2), EXACT, -1, -1, 1, 1);
}

static void test_conv_transpose2d(void **state)
{
    (void)state;
    ed_node *y = CST(g, ED_F32, ed_shape4(1, 1, 2, 2), 1, 2, 3, 4);
    ed_node *ones = ed_fill(g, ED_F32, ed_shape4(1, 1, 2, 2), 1);
    /* stride 2: each value spread over its own 2x2 block */
    CHECK(ed_conv_transpose2d(y, ones, &(ed_conv_opts){.stride = {2, 2}}), ED_F32, ed_shape4(1, 1, 4, 4), EXACT, 1, 1,
          2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4);
    /* stride 1: overlapping blocks add */
    CHECK(ed_conv_transpose2d(y, ones, NULL), ED_F32, ed_shape4(1, 1, 3, 3), EXACT, 1, 3, 2, 4, 10, 6, 3, 7, 4);
    /* output_padding adds a last row (and no column): nothing reaches it */
    CHECK(ed_conv_transpose2d(y, ones, &(ed_conv_opts){.stride = {2, 2}, .output_padding = {1, 0}}), ED_F32,
          ed_shape4(1, 1, 5, 4), EXACT, 1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4, 0, 0, 0, 0);
    /* padding 1 crops the border of the stride-1 result */
    CHECK(ed_conv_transpose2d(y, ed_fill(g, ED_F32, ed_shape4(1, 1, 3, 3), 1), &(ed_conv_opts){.padding = {1, 1}}),
          ED_F32, ed_shape4(1, 1, 2, 2), EXACT, 10, 10, 10, 10);
    /* groups 2 with two output channels per group: w [2,2,1,1] */
    ed_node *y2 = CST(g, ED_F32, ed_shape4(1, 2, 1, 1), 2, 3);
    ed_node *w = CST(g, ED_F32, ed_shape4(2, 2, 1, 1), 1, 10, 100, 1000);
    CHECK(ed_conv_transpose2d(y2, w, &(ed_conv_opts){.groups = 2}), ED_F32, ed_shape4(1, 4, 1, 1), EXACT, 2, 20, 300,
          3000);
}

static void test_conv2d_weight_grad(void **state)
{
    (void)state;
    ed_node *x = iota33(ED_F32), *dy = ed_fill(g, ED_F32, ed_shape4(1, 1, 2, 2), 1);
    /* dw[p,q] = the 2x2 window of x at (p,q) summed */
    CHECK(ed_conv2d_weight_grad(x, dy, 2, 2, NULL), ED_F32, ed_shape4(1, 1, 2, 2), EXACT, 12, 16, 24, 28);
    /* stride 2, padding 1 (dy of conv2d's 2x2 output): dw[p,q] sums x at rows 2i-1+p, cols 2j-1+q */
    ed_node *d = CST(g, ED_F32, ed_shape4(1, 1, 2, 2), 1, 10, 100, 1000);
    CHECK(ed_conv2d_weight_grad(x, d, 2, 2, &(ed_conv_opts){.stride = {2, 2}, .padding = {1, 1}}), ED_F32,
          ed_shape4(1, 1, 2, 2), EXACT, 5000, 6400, 8020, 9731);
}

static void test_pool_upsample_group_norm(void **state)
{
    (void)state;
    ed_node *x = CST(g, ED_F32, ed_shape4(1, 1, 4, 4), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);
    CHECK(ed_avg_pool2d(x, 2, 2, NULL), ED_F32, ed_shape4(1, 1, 2, 2), EXACT, 3.5, 5.5, 11.5, 13.5);
    /* padding counted: each window divides by 4 (count_include_pad) */
    CHECK(ed_avg_pool2d(iota33(ED_F32), 2, 2, &(ed_conv_opts){.padding = {1, 1}}), ED_F32, ed_shape4(1, 1, 2, 2), EXACT,
          0.25, 1.25, 2.75, 7);
    /* overlapping windows (stride 1) per channel of a [1,2,2,2] */
    ed_node *x2 = CST(g, ED_F64, ed_shape4(1, 2, 2, 2), 1, 2, 3, 4, -4, -8, 0, 0);
    CHECK(ed_avg_pool2d(x2, 1, 2, &(ed_conv_opts){.stride = {1, 1}}), ED_F64, ed_shape4(1, 2, 2, 1), EXACT, 1.5, 3.5,
          -6, 0);
    ed_node *u = CST(g, ED_F32, ed_shape4(1, 1, 2, 2), 1, 2, 3, 4);
    CHECK(ed_upsample_nearest2d(u, 2, 2), ED_F32, ed_shape4(1, 1, 4, 4), EXACT, 1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3,
          3, 4, 4);
    CHECK(ed_upsample_nearest2d(u, 1, 3), ED_F32, ed_shape4(1, 1, 2, 6), EXACT, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4);
    /* group norm, eps 0: groups {1,3} (mean 2, var 1) and {5,9} (mean 7, var 4) */
    ed_node *gx = CST(g, ED_F64, ed_shape4(1, 2, 1, 2), 1, 3, 5, 9);
    CHECK(ed_group_norm(gx, "gn2", 2, 0, false), ED_F64, ed_shape4(1, 2, 1, 2), EXACT, -1, 1, -1, 1);
    /* one group of {1,3,5,9}: mean 4.5, var 35/4 */
    double sd = sqrt(35.0 / 4);
    CHECK(ed_group_norm(gx, "gn1", 1, 0, false), ED_F64, ed_shape4(1, 2, 1, 2), F64TOL, -3.5 / sd, -1.5 / sd, 0.5 / sd,
          4.5 / sd);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_every_op_has_a_kernel),
        T(test_conv2d),
        T(test_conv_transpose2d),
        T(test_conv2d_weight_grad),
        T(test_pool_upsample_group_norm),
        T(test_every_elementwise_op_has_scalar_semantics),
        T(test_binary_arith_f32),
        T(test_binary_f64),
        T(test_broadcasting),
        T(test_broadcasting_rank6),
        T(test_maximum_minimum_nan),
        T(test_compare),
        T(test_where),
        T(test_i32_arithmetic),
        T(test_i32_unary),
        T(test_unary_basic),
        T(test_unary_exp_log),
        T(test_unary_log1p),
        T(test_unary_expm1),
        T(test_unary_activations),
        T(test_clamp_nan),
        T(test_cast),
        T(test_sum_axes),
        T(test_sum_i32_and_f64),
        T(test_sum_rank6),
        T(test_mean),
        T(test_empty_reductions),
        T(test_max_min),
        T(test_max_min_nan),
        T(test_argmax_argmin),
        T(test_argmax_nan),
        T(test_reshape),
        T(test_transpose),
        T(test_broadcast_to),
        T(test_slice),
        T(test_concat),
        T(test_pad),
        T(test_gather),
        T(test_scatter_add),
        T(test_one_hot),
        T(test_matmul),
        T(test_matmul_batched),
        T(test_matmul_f64),
        T(test_const),
        T(test_allreduce_one_rank),
        T(test_rand_streams),
        T(test_randn),
        T(test_randint),
        T(test_bernoulli),
        T(test_rand_f64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
