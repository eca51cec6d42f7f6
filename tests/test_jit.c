/* The LLVM JIT backend against the interpreter (the oracle): every lowered op on
 * shapes with dims 1, 7, 13, 64 and 1000 and broadcasting patterns, seeded random
 * graphs, random ops bit for bit, an MLP, errors, and a vectorization check. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "backend/llvm/jit.h"
#include "frontend/nn.h"
#include "passes/autodiff.h"
#include "passes/pass.h"
#include "support/interp_check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- helpers ------------------------------------------------------------------ */

#define MAXF 16
static ed_feed feeds[MAXF];
static ed_tensor *fed[MAXF];
static int nfeeds;
static uint64_t rng_state = 1;

static uint32_t next_u32(void)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(rng_state >> 33);
}
static double uniform(double lo, double hi) { return lo + (hi - lo) * (next_u32() / 4294967296.0); }
static int pick(int n) { return (int)(next_u32() % (uint32_t)n); }

static void free_feeds(void)
{
    for (int i = 0; i < nfeeds; i++) ed_tensor_free(fed[i]);
    nfeeds = 0;
}

/* An input fed with values in [-3, 3] (ints in [-5, 5]); with special set, some
 * elements are 0, -0, NaN, inf (ints: 0, -1, INT_MIN, INT_MAX). */
static ed_node *input(ed_graph *g, ed_dtype dt, ed_shape s, bool special)
{
    assert_true(nfeeds < MAXF);
    char name[16];
    snprintf(name, sizeof name, "x%d", nfeeds);
    ed_node *x = ed_input(g, name, dt, s);
    ed_tensor *t = ed_tensor_new(dt, s);
    for (int64_t i = 0; i < ed_tensor_numel(t); i++) {
        double v = dt == ED_I32 ? (double)(pick(11) - 5) : uniform(-3, 3);
        if (special && pick(8) == 0) {
            static const double fs[] = {0.0, -0.0, NAN, INFINITY, -INFINITY, 1.0};
            static const double is[] = {0, -1, -2147483648.0, 2147483647.0, 65536, 1};
            v = dt == ED_I32 ? is[pick(6)] : fs[pick(6)];
        }
        ed_tensor_set(t, i, v);
    }
    fed[nfeeds] = t;
    feeds[nfeeds] = (ed_feed){x->attr.name, t};
    nfeeds++;
    return x;
}

/* Every test starts with no feeds (a failed test may leave some). */
static int reset(void **state)
{
    (void)state;
    free_feeds();
    return 0;
}

static bool close_enough(double want, double have, double tol)
{
    if (isnan(want) || isnan(have)) return isnan(want) && isnan(have);
    if (tol == 0 || isinf(want) || isinf(have)) return want == have;
    return fabs(want - have) <= tol * (1 + fabs(want));
}

/* On f32 the JIT computes exp, log, tanh, erf, sigmoid, silu, softplus and gelu with
 * inline polynomials (backend/llvm/lower_math.c), measured within 1e-6 relative of the
 * double result by tests/test_jit_math.c; the interpreter rounds the double result.
 * Where a caller asks for identical values (tol 0), those outputs get this relative
 * tolerance instead; every other op, and these ops on f64 (libm), stay exact. */
#define POLY_REL_TOL 2e-6
static bool is_poly_f32(const ed_node *n)
{
    if (n->dtype != ED_F32) return false;
    switch (n->op) {
    case ED_OP_EXP:
    case ED_OP_EXPM1:
    case ED_OP_LOG:
    case ED_OP_LOG1P:
    case ED_OP_TANH:
    case ED_OP_ERF:
    case ED_OP_SIGMOID:
    case ED_OP_SILU:
    case ED_OP_SOFTPLUS:
    case ED_OP_GELU: return true;
    default: return false;
    }
}
static bool close_rel(double want, double have, double tol)
{
    if (isnan(want) || isnan(have)) return isnan(want) && isnan(have);
    if (isinf(want) || isinf(have)) return want == have;
    return fabs(want - have) <= tol * fabs(want);
}

/* Ops compare_backends has seen as an output (test_every_elementwise_op_is_compared). */
static bool compared[ED_OP_COUNT];

/* Compile g on both backends (each with its own store, seed 7), run `calls` times with
 * the current feeds, and compare every output; tol 0 means identical values. */
static void compare_backends(ed_graph *g, double tol, int calls)
{
    ed_store *si = ed_store_new(7), *sj = ed_store_new(7);
    /* No graph passes: every op of g must reach the JIT's lowering (test_passes checks
     * the passes on the JIT). */
    ed_program *pi = ed_compile(g, si, &(ed_compile_opts){.backend = ED_BACKEND_INTERP, .seed = 42, .passes = ""});
    ed_program *pj = ed_compile(g, sj, &(ed_compile_opts){.backend = ED_BACKEND_JIT, .seed = 42, .passes = ""});
    if (!pi || !pj) fail_msg("compile failed: %s", ed_last_error());
    for (int c = 0; c < calls; c++) {
        if (ed_run(pi, feeds, nfeeds) != ED_OK || ed_run(pj, feeds, nfeeds) != ED_OK)
            fail_msg("run failed: %s", ed_last_error());
        for (int o = 0; o < ed_program_num_outputs(pi); o++) {
            const ed_tensor *a = ed_program_output_at(pi, o), *b = ed_program_output_at(pj, o);
            compared[g->outputs[o].node->op] = true;
            assert_int_equal(a->dtype, b->dtype);
            assert_true(ed_shape_eq(a->shape, b->shape));
            for (int64_t i = 0; i < ed_tensor_numel(a); i++) {
                double want = ed_tensor_get(a, i), have = ed_tensor_get(b, i);
                bool poly = tol == 0 && is_poly_f32(g->outputs[o].node);
                if (poly ? !close_rel(want, have, POLY_REL_TOL) : !close_enough(want, have, tol)) {
                    const ed_node *n = g->outputs[o].node;
                    fail_msg("call %d output %s (op %s, %s): element %lld: interp %.9g, jit %.9g", c,
                             ed_program_output_name(pi, o), ed_op_name(n->op), ed_dtype_name(n->dtype), (long long)i,
                             want, have);
                }
            }
        }
    }
    ed_program_free(pi);
    ed_program_free(pj);
    ed_store_free(si);
    ed_store_free(sj);
}

static const ed_shape *test_shapes(int *n)
{
    static ed_shape s[6];
    s[0] = ed_shape0();
    s[1] = ed_shape1(1);
    s[2] = ed_shape1(7);
    s[3] = ed_shape2(13, 64);
    s[4] = ed_shape1(1000);
    s[5] = ed_shape3(7, 1, 13);
    *n = 6;
    return s;
}

/* ---- elementwise --------------------------------------------------------------- */

typedef ed_node *(*unary_fn)(ed_node *);
static ed_node *leaky(ed_node *x) { return ed_leaky_relu(x, 0.1); }
static ed_node *gelu_erf(ed_node *x) { return ed_gelu(x, false); }
static ed_node *gelu_tanh(ed_node *x) { return ed_gelu(x, true); }
static ed_node *clamp(ed_node *x) { return ed_clamp(x, -1.5, 0.7); }
static ed_node *to_i32(ed_node *x) { return ed_cast(x, ED_I32); }
static ed_node *to_f32(ed_node *x) { return ed_cast(x, ED_F32); }
static ed_node *to_f64(ed_node *x) { return ed_cast(x, ED_F64); }

static const unary_fn float_unary[] = {
    ed_neg,  ed_abs,     ed_exp,  ed_expm1, ed_log,           ed_log1p,  ed_sqrt, ed_rsqrt, ed_square,
    ed_tanh, ed_sigmoid, ed_relu, leaky,    gelu_erf,         gelu_tanh, ed_erf,  ed_silu,  ed_softplus,
    ed_sin,  ed_cos,     ed_sign, clamp,    ed_stop_gradient, to_i32,    to_f64,  to_f32,
};
static const unary_fn int_unary[] = {ed_neg, ed_abs,           ed_square, ed_relu, ed_sign,
                                     clamp,  ed_stop_gradient, to_f32,    to_f64};

/* Every elementwise op is compared for identical values, except the f32
 * transcendentals, which are polynomials on the JIT: POLY_REL_TOL relative. */
static void test_unary_ops(void **state)
{
    (void)state;
    int ns;
    const ed_shape *shapes = test_shapes(&ns);
    static const ed_dtype fdts[] = {ED_F32, ED_F64};
    for (int d = 0; d < 2; d++)
        for (int s = 0; s < ns; s++) {
            ed_graph *g = ed_graph_new("unary");
            ed_node *x = input(g, fdts[d], shapes[s], true);
            for (size_t k = 0; k < sizeof float_unary / sizeof float_unary[0]; k++) {
                char name[16];
                snprintf(name, sizeof name, "y%zu", k);
                ed_output(g, name, float_unary[k](x));
            }
            compare_backends(g, 0, 1);
            free_feeds();
            ed_graph_free(g);
        }
    for (int s = 0; s < ns; s++) {
        ed_graph *g = ed_graph_new("unary_i32");
        ed_node *x = input(g, ED_I32, shapes[s], true);
        for (size_t k = 0; k < sizeof int_unary / sizeof int_unary[0]; k++) {
            char name[16];
            snprintf(name, sizeof name, "y%zu", k);
            ed_output(g, name, int_unary[k](x));
        }
        compare_backends(g, 0, 1);
        free_feeds();
        ed_graph_free(g);
    }
}

typedef ed_node *(*binary_fn)(ed_node *, ed_node *);
static const binary_fn binary[] = {ed_add,     ed_sub, ed_mul, ed_div, ed_pow, ed_maximum,
                                   ed_minimum, ed_lt,  ed_le,  ed_gt,  ed_ge,  ed_eq};

/* numpy broadcasting: same shape, scalar, [n,1]x[1,m], rank mismatch, size-1 dims. */
static void test_binary_ops_broadcast(void **state)
{
    (void)state;
    struct {
        ed_shape a, b;
    } pairs[] = {
        {ed_shape2(13, 64), ed_shape2(13, 64)}, {ed_shape1(1000), ed_shape1(1000)},
        {ed_shape0(), ed_shape2(7, 13)},        {ed_shape2(7, 13), ed_shape0()},
        {ed_shape2(64, 1), ed_shape2(1, 13)},   {ed_shape1(13), ed_shape3(7, 1, 13)},
        {ed_shape3(7, 64, 1), ed_shape1(1)},    {ed_shape2(1, 1), ed_shape1(1)},
        {ed_shape2(1, 1000), ed_shape2(7, 1)},
    };
    static const ed_dtype dts[] = {ED_F32, ED_I32, ED_F64};
    for (int d = 0; d < 3; d++)
        for (size_t p = 0; p < sizeof pairs / sizeof pairs[0]; p++) {
            ed_graph *g = ed_graph_new("binary");
            ed_node *a = input(g, dts[d], pairs[p].a, true), *b = input(g, dts[d], pairs[p].b, true);
            for (size_t k = 0; k < sizeof binary / sizeof binary[0]; k++) {
                char name[16];
                snprintf(name, sizeof name, "y%zu", k);
                ed_output(g, name, binary[k](a, b));
            }
            ed_output(g, "where", ed_where(ed_lt(a, b), a, b));
            compare_backends(g, 0, 1);
            free_feeds();
            ed_graph_free(g);
        }
}

/* i32 division: x/0 = 0, truncation toward zero, INT_MIN/-1 wraps. */
static void test_int_division_edges(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("idiv");
    ed_node *a = CST(g, ED_I32, ed_shape1(8), 7, -7, 7, -7, 5, -2147483648.0, -2147483648.0, 0);
    ed_node *b = CST(g, ED_I32, ed_shape1(8), 2, 2, -2, 0, 0, -1, 1, -1);
    ed_node *q = ed_div(a, b);
    ed_output(g, "q", q);
    compare_backends(g, 0, 1);
    ed_store *st = ed_store_new(0);
    ed_program *p = ed_compile(g, st, &(ed_compile_opts){.backend = ED_BACKEND_JIT});
    assert_non_null(p);
    assert_int_equal(ed_run(p, NULL, 0), ED_OK);
    const int32_t want[8] = {3, -3, -3, 0, 0, INT32_MIN, INT32_MIN, 0};
    assert_memory_equal(ed_program_output(p, "q")->data, want, sizeof want);
    ed_program_free(p);
    ed_store_free(st);
    ed_graph_free(g);
}

/* ---- reductions ------------------------------------------------------------------ */

static void test_reductions_all_axis_sets(void **state)
{
    (void)state;
    typedef ed_node *(*red_fn)(ed_node *, unsigned, bool);
    static const red_fn fns[] = {ed_sum, ed_mean, ed_max, ed_min, ed_argmax, ed_argmin};
    static const ed_dtype dts[] = {ED_F32, ED_I32, ED_F64};
    for (int d = 0; d < 3; d++)
        for (int keep = 0; keep < 2; keep++) {
            ed_graph *g = ed_graph_new("reduce");
            ed_node *x = input(g, dts[d], ed_shape3(7, 13, 64), d == 0 && keep);
            ed_node *v = input(g, dts[d], ed_shape1(1000), false);
            ed_node *one = input(g, dts[d], ed_shape2(1, 7), false);
            int k = 0;
            for (size_t f = 0; f < sizeof fns / sizeof fns[0]; f++) {
                if (fns[f] == ed_mean && dts[d] == ED_I32) continue;
                char name[24];
                for (unsigned axes = 1; axes < 8; axes++) {
                    snprintf(name, sizeof name, "r%d", k++);
                    ed_output(g, name, fns[f](x, axes, keep));
                }
                snprintf(name, sizeof name, "r%d", k++);
                ed_output(g, name, fns[f](v, 1, keep));
                snprintf(name, sizeof name, "r%d", k++);
                ed_output(g, name, fns[f](one, 1, keep));
            }
            compare_backends(g, 0, 1);
            free_feeds();
            ed_graph_free(g);
        }
}

/* g1 in backend b1 and g2 in b2 (no passes), every output compared byte for byte. */
static void compare_programs_bits(const ed_graph *g1, ed_backend b1, const ed_graph *g2, ed_backend b2)
{
    ed_store *s1 = ed_store_new(7), *s2 = ed_store_new(7);
    ed_program *p1 = ed_compile(g1, s1, &(ed_compile_opts){.backend = b1, .passes = ""});
    ed_program *p2 = ed_compile(g2, s2, &(ed_compile_opts){.backend = b2, .passes = ""});
    if (!p1 || !p2) fail_msg("compile failed: %s", ed_last_error());
    if (ed_run(p1, feeds, nfeeds) != ED_OK || ed_run(p2, feeds, nfeeds) != ED_OK)
        fail_msg("run failed: %s", ed_last_error());
    assert_int_equal(ed_program_num_outputs(p1), ed_program_num_outputs(p2));
    for (int o = 0; o < ed_program_num_outputs(p1); o++) {
        const ed_tensor *a = ed_program_output_at(p1, o), *b = ed_program_output_at(p2, o);
        assert_true(ed_shape_eq(a->shape, b->shape) && a->dtype == b->dtype);
        size_t bytes = (size_t)ed_tensor_numel(a) * ed_dtype_size(a->dtype);
        if (memcmp(a->data, b->data, bytes) != 0) fail_msg("output %s differs", ed_program_output_name(p1, o));
    }
    ed_program_free(p1);
    ed_program_free(p2);
    ed_store_free(s1);
    ed_store_free(s2);
}

static void compare_backends_bits(const ed_graph *g) { compare_programs_bits(g, ED_BACKEND_INTERP, g, ED_BACKEND_JIT); }

/* Sums and means over leading axes (the JIT's interchanged loop, or its fallback for
 * few or too many kept elements) against the interpreter bit for bit, on values from
 * 1e-8 to 1e8 so that any change in the order of the additions shows. */
static void test_leading_reductions_bit_exact(void **state)
{
    (void)state;
    static const struct {
        ed_shape s;
        unsigned axes;
    } cases[] = {
        {{2, {1, 7}}, 1},        {{2, {13, 1}}, 1},       {{2, {1000, 13}}, 1},    {{3, {7, 5, 33}}, 1},
        {{3, {7, 5, 33}}, 3},    {{3, {64, 16, 128}}, 1}, {{3, {64, 16, 128}}, 3}, {{4, {1, 9, 1, 12}}, 7},
        {{4, {3, 1, 4, 10}}, 2}, {{2, {5, 16385}}, 1},    {{2, {3, 40000}}, 1},    {{2, {1000, 8}}, 1},
    };
    static const ed_dtype dts[] = {ED_F32, ED_F64, ED_I32};
    for (int d = 0; d < 3; d++)
        for (int keep = 0; keep < 2; keep++) {
            ed_graph *g = ed_graph_new("leading");
            int k = 0;
            for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
                ed_node *x = input(g, dts[d], cases[c].s, false);
                ed_tensor *t = fed[nfeeds - 1];
                if (dts[d] != ED_I32)
                    for (int64_t i = 0; i < ed_tensor_numel(t); i++)
                        ed_tensor_set(t, i, uniform(-1, 1) * pow(10, pick(17) - 8));
                char name[24];
                snprintf(name, sizeof name, "s%d", k++);
                ed_output(g, name, ed_sum(x, cases[c].axes, keep));
                if (dts[d] == ED_I32) continue;
                snprintf(name, sizeof name, "m%d", k++);
                ed_output(g, name, ed_mean(x, cases[c].axes, keep));
            }
            compare_backends_bits(g);
            free_feeds();
            ed_graph_free(g);
        }
}

/* The interchanged loop of a leading-axis sum vectorizes across its outputs. */
static void test_leading_reduction_ir_is_vectorized(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("colsum");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape3(64, 16, 128));
    ed_output(g, "y", ed_sum(x, 3, false));
    char *ir = ed_jit_dump_ir(g);
    assert_non_null(ir);
    assert_true(strstr(ir, "fpext <") != NULL);
    assert_true(strstr(ir, "fadd <4 x double>") || strstr(ir, "fadd <8 x double>") || strstr(ir, "fadd <16 x double>"));
    free(ir);
    ed_graph_free(g);
}

/* Fused epilogues over leading axes (the interchanged loop in lower_fused.c): tanh
 * times a row vector summed over two axes then exp(-|.|), a bias added to a mean, a
 * sum of relu, an i32 sum of a cast. Bit for bit, the fused graph in the JIT against
 * the unfused one in the JIT (f32 tanh and exp are inline polynomials there, not
 * libm's) and, in f64, against the fused graph in the interpreter; its IR adds
 * vectors of doubles. */
static void test_fused_leading_reductions_bit_exact(void **state)
{
    (void)state;
    for (int d = 0; d < 2; d++) {
        ed_dtype dt = d ? ED_F64 : ED_F32;
        ed_graph *g = ed_graph_new("fused_leading");
        ed_node *x = input(g, dt, ed_shape3(64, 16, 40), false), *y = input(g, dt, ed_shape1(40), false);
        ed_node *a = input(g, dt, ed_shape2(1000, 13), false), *b = input(g, dt, ed_shape2(1000, 13), false);
        ed_node *bias = input(g, dt, ed_shape1(13), false);
        for (int k = 0; k < 2; k++) {
            ed_tensor *t = fed[k == 0 ? 0 : 2];
            for (int64_t i = 0; i < ed_tensor_numel(t); i++) ed_tensor_set(t, i, uniform(-1, 1) * pow(10, pick(9) - 4));
        }
        ed_output(g, "e1", ed_exp(ed_neg(ed_abs(ed_sum(ed_mul(ed_tanh(x), y), 3, true)))));
        ed_output(g, "e2", ed_add(ed_mean(ed_sub(a, b), 1, false), bias));
        ed_output(g, "e3", ed_sigmoid(ed_sum(ed_relu(x), 1, false)));
        ed_output(g, "e4",
                  ed_mul(ed_sum(ed_cast(ed_mul(a, ed_scalar(g, dt, 100)), ED_I32), 1, false), ed_scalar(g, ED_I32, 3)));
        ed_graph *h = ed_graph_clone(g);
        assert_non_null(h);
        assert_int_equal(ed_pass_run(h, NULL, NULL), ED_OK);
        int epilogues = 0;
        for (int i = 0; i < h->nnodes; i++)
            epilogues += h->nodes[i]->op == ED_OP_FUSED && ed_fused_reduction(h->nodes[i]->attr.body) &&
                         !ed_fused_row_kernel(h->nodes[i]);
        assert_int_equal(epilogues, 4);
        compare_programs_bits(g, ED_BACKEND_JIT, h, ED_BACKEND_JIT);
        if (dt == ED_F64) compare_backends_bits(h);
        char *ir = ed_jit_dump_ir(h);
        assert_non_null(ir);
        assert_true(strstr(ir, "fadd <4 x double>") || strstr(ir, "fadd <8 x double>") ||
                    strstr(ir, "fadd <16 x double>"));
        free(ir);
        free_feeds();
        ed_graph_free(h);
        ed_graph_free(g);
    }
}

/* ---- movement ------------------------------------------------------------------- */

static void test_movement_ops(void **state)
{
    (void)state;
    static const ed_dtype dts[] = {ED_F32, ED_I32, ED_F64};
    for (int d = 0; d < 3; d++) {
        ed_graph *g = ed_graph_new("move");
        ed_node *x = input(g, dts[d], ed_shape3(7, 13, 64), true);
        ed_node *c = input(g, dts[d], ed_shape3(7, 1, 64), true);
        ed_output(g, "reshape", ed_reshape(x, ed_shape2(91, 64)));
        ed_output(g, "reshape1", ed_reshape(x, ed_shape1(7 * 13 * 64)));
        static const int perms[][3] = {{0, 1, 2}, {2, 1, 0}, {1, 0, 2}, {0, 2, 1}, {2, 0, 1}, {1, 2, 0}};
        for (int p = 0; p < 6; p++) {
            char name[16];
            snprintf(name, sizeof name, "t%d", p);
            ed_output(g, name, ed_transpose(x, perms[p]));
        }
        ed_output(g, "bcast", ed_broadcast_to(c, ed_shape4(2, 7, 13, 64)));
        ed_output(g, "bcast_scalar",
                  ed_broadcast_to(ed_reshape(ed_slice(c, (const int64_t[]){2, 0, 3}, (const int64_t[]){3, 1, 4},
                                                      (const int64_t[]){1, 1, 1}),
                                             ed_shape0()),
                                  ed_shape1(1000)));
        ed_output(g, "slice",
                  ed_slice(x, (const int64_t[]){1, 0, 3}, (const int64_t[]){7, 13, 64}, (const int64_t[]){2, 5, 3}));
        ed_output(g, "concat", ed_concat((ed_node *const[]){x, c, x}, 3, 1));
        ed_output(g, "pad", ed_pad(x, (const int64_t[]){1, 0, 2}, (const int64_t[]){0, 3, 1}, 1.5));
        compare_backends(g, 0, 1);
        free_feeds();
        ed_graph_free(g);
    }
}

/* ---- indexing ------------------------------------------------------------------- */

/* Negative, first, in range, i32 extremes, one past dims 4 and 5, far out. */
static ed_node *edge_indices(ed_graph *g)
{
    return CST(g, ED_I32, ed_shape1(9), -1, 0, 3, 2147483647.0, 5, -2147483648.0, 4, 100, 1);
}

/* x.shape[:axis] + idx.shape + x.shape[axis+1:], as the shape rule computes it. */
static ed_shape take_shape(ed_shape x, ed_shape idx, int axis)
{
    ed_shape s = {0};
    for (int a = 0; a < axis; a++) s.dim[s.rank++] = x.dim[a];
    for (int a = 0; a < idx.rank; a++) s.dim[s.rank++] = idx.dim[a];
    for (int a = axis + 1; a < x.rank; a++) s.dim[s.rank++] = x.dim[a];
    return s;
}

/* Every axis of a rank-3 input with indices of rank 0, 1, 2 and an empty list; out of
 * range and negative indices clamp. Special values check the copy keeps their bits. */
static void test_gather_every_axis(void **state)
{
    (void)state;
    static const ed_dtype dts[] = {ED_F32, ED_I32, ED_F64};
    for (int d = 0; d < 3; d++) {
        ed_graph *g = ed_graph_new("gather");
        ed_node *x = input(g, dts[d], ed_shape3(4, 5, 6), true);
        ed_node *idx[] = {CST(g, ED_I32, ed_shape0(), -3), CST(g, ED_I32, ed_shape0(), 99), edge_indices(g),
                          input(g, ED_I32, ed_shape2(3, 4), true), input(g, ED_I32, ed_shape1(0), false)};
        for (int axis = 0; axis < 3; axis++)
            for (size_t k = 0; k < sizeof idx / sizeof idx[0]; k++) {
                char name[16];
                snprintf(name, sizeof name, "g%d_%zu", axis, k);
                ed_output(g, name, ed_gather(x, idx[k], axis));
            }
        compare_backends(g, 0, 1);
        free_feeds();
        ed_graph_free(g);
    }
}

/* In- and out-of-range indices (a zero row), rank 0, 1, 2 indices, depth 1 and 0. */
static void test_one_hot(void **state)
{
    (void)state;
    static const ed_dtype dts[] = {ED_F32, ED_I32, ED_F64};
    for (int d = 0; d < 3; d++) {
        ed_graph *g = ed_graph_new("one_hot");
        ed_node *edges = edge_indices(g), *idx2 = input(g, ED_I32, ed_shape2(3, 4), true);
        ed_output(g, "h5", ed_one_hot(edges, 5, dts[d]));
        ed_output(g, "h6", ed_one_hot(idx2, 6, dts[d]));
        ed_output(g, "h_scalar", ed_one_hot(CST(g, ED_I32, ed_shape0(), 2), 3, dts[d]));
        ed_output(g, "h_out", ed_one_hot(CST(g, ED_I32, ed_shape0(), 3), 3, dts[d]));
        ed_output(g, "h1", ed_one_hot(edges, 1, dts[d]));
        ed_output(g, "h0", ed_one_hot(edges, 0, dts[d]));
        compare_backends(g, 0, 1);
        free_feeds();
        ed_graph_free(g);
    }
}

/* Every axis, repeated and dropped indices, rank 0, 1, 2 index lists. */
static void test_scatter_add_every_axis(void **state)
{
    (void)state;
    static const ed_dtype dts[] = {ED_F32, ED_I32, ED_F64};
    for (int d = 0; d < 3; d++) {
        ed_graph *g = ed_graph_new("scatter_add");
        ed_shape bs = ed_shape3(4, 5, 6);
        ed_node *base = input(g, dts[d], bs, d == 0);
        /* 4, 5, 6: one past the end of axis 0, 1, 2 */
        ed_node *idx[] = {CST(g, ED_I32, ed_shape1(11), 1, 3, 1, -1, 1, 7, 0, 3, 4, 5, 6),
                          CST(g, ED_I32, ed_shape2(2, 3), 2, 2, 9, 0, 2, -2), CST(g, ED_I32, ed_shape0(), 1)};
        for (int axis = 0; axis < 3; axis++)
            for (size_t k = 0; k < sizeof idx / sizeof idx[0]; k++) {
                ed_node *upd = input(g, dts[d], take_shape(bs, idx[k]->shape, axis), d == 0);
                char name[16];
                snprintf(name, sizeof name, "s%d_%zu", axis, k);
                ed_output(g, name, ed_scatter_add(base, idx[k], upd, axis));
            }
        compare_backends(g, 0, 1);
        free_feeds();
        ed_graph_free(g);
    }
}

/* Repeated indices add in index order: ((0 + 1) + 1e8) - 1e8 is 0 in f32 (1e8 + 1
 * rounds back to 1e8), while the reverse order or 1e8 - 1e8 first gives 1. */
static void test_scatter_add_order(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("order");
    ed_node *base = CST(g, ED_F32, ed_shape1(2), 0, 0);
    ed_node *idx = CST(g, ED_I32, ed_shape1(4), 0, 0, 1, 0);
    ed_node *upd = CST(g, ED_F32, ed_shape1(4), 1, 1e8, 5, -1e8);
    ed_output(g, "y", ed_scatter_add(base, idx, upd, 0));
    compare_backends(g, 0, 1);
    ed_store *st = ed_store_new(0);
    ed_program *p = ed_compile(g, st, &(ed_compile_opts){.backend = ED_BACKEND_JIT});
    assert_non_null(p);
    assert_int_equal(ed_run(p, NULL, 0), ED_OK);
    const float want[2] = {0, 5};
    assert_memory_equal(ed_program_output(p, "y")->data, want, sizeof want);
    ed_program_free(p);
    ed_store_free(st);
    ed_graph_free(g);
}

/* Kernels take one pointer per input: more than the old fixed limit of 5. */
static void test_concat_many_inputs(void **state)
{
    (void)state;
    static const ed_dtype dts[] = {ED_F32, ED_I32, ED_F64};
    for (int d = 0; d < 3; d++) {
        ed_graph *g = ed_graph_new("concat9");
        ed_node *xs[9];
        for (int k = 0; k < 9; k++) xs[k] = input(g, dts[d], ed_shape3(2, 1 + k % 3, 5), true);
        ed_output(g, "c1", ed_concat(xs, 9, 1));
        ed_node *same[9];
        for (int k = 0; k < 9; k++) same[k] = xs[4];
        ed_output(g, "c0", ed_concat(same, 9, 0));
        compare_backends(g, 0, 1);
        free_feeds();
        ed_graph_free(g);
    }
}

/* One process is one rank: allreduce is a copy on both backends, in place (its input
 * dies there) or not, f32 and f64. The 2-rank values are tests/mpi's. */
static void test_allreduce_one_rank(void **state)
{
    (void)state;
    static const ed_dtype dts[] = {ED_F32, ED_F64};
    for (int d = 0; d < 2; d++) {
        ed_graph *g = ed_graph_new("allreduce");
        ed_node *x = input(g, dts[d], ed_shape2(3, 5), true);
        ed_output(g, "kept", ed_allreduce(x, false));
        ed_output(g, "in_place", ed_allreduce(ed_neg(x), true));
        ed_output(g, "x", x);
        compare_backends_bits(g);
        free_feeds();
        ed_graph_free(g);
    }
}

/* gather's gradient is a scatter_add into zeros; repeated indices accumulate and
 * out-of-range ones land on the clamped row. */
static void test_gather_gradient(void **state)
{
    (void)state;
    static const ed_dtype dts[] = {ED_F32, ED_F64};
    for (int d = 0; d < 2; d++) {
        ed_graph *g = ed_graph_new("gather_grad");
        ed_node *x = input(g, dts[d], ed_shape2(5, 6), false);
        ed_node *i1 = CST(g, ED_I32, ed_shape2(2, 4), 4, 0, 4, 9, -2, 1, 4, 0);
        ed_node *i0 = CST(g, ED_I32, ed_shape1(7), 0, 3, 3, -1, 7, 3, 2);
        ed_node *y1 = ed_gather(x, i1, 1); /* [5, 2, 4] */
        ed_node *w = input(g, dts[d], y1->shape, false);
        ed_node *loss = ed_add(ed_sum(ed_mul(y1, w), 7, false), ed_sum(ed_square(ed_gather(x, i0, 0)), 3, false));
        ed_node *dx = NULL;
        assert_int_equal(ed_grad(loss, &x, 1, &dx), ED_OK);
        bool has_scatter = false;
        for (int i = 0; i < g->nnodes; i++) has_scatter |= g->nodes[i]->op == ED_OP_SCATTER_ADD;
        assert_true(has_scatter);
        ed_output(g, "loss", loss);
        ed_output(g, "dx", dx);
        compare_backends(g, 0, 2);
        free_feeds();
        ed_graph_free(g);
    }
}

/* ---- matmul --------------------------------------------------------------------- */

static void test_matmul(void **state)
{
    (void)state;
    struct {
        ed_shape a, b;
        bool ta, tb;
    } cases[] = {
        {ed_shape2(7, 13), ed_shape2(13, 64), false, false},
        {ed_shape2(13, 7), ed_shape2(13, 64), true, false},
        {ed_shape2(7, 13), ed_shape2(64, 13), false, true},
        {ed_shape2(13, 7), ed_shape2(64, 13), true, true},
        {ed_shape2(1, 1000), ed_shape2(1000, 1), false, false},
        {ed_shape2(64, 64), ed_shape2(64, 64), false, false},
        {ed_shape3(2, 7, 13), ed_shape2(13, 5), false, false},
        {ed_shape4(3, 1, 4, 5), ed_shape3(2, 5, 6), false, false},
        {ed_shape3(2, 5, 4), ed_shape4(3, 1, 6, 5), true, true},
    };
    static const ed_dtype dts[] = {ED_F32, ED_F64};
    for (int d = 0; d < 2; d++)
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            ed_graph *g = ed_graph_new("mm");
            ed_node *a = input(g, dts[d], cases[c].a, false), *b = input(g, dts[d], cases[c].b, false);
            ed_output(g, "y", ed_matmul_t(a, b, cases[c].ta, cases[c].tb));
            /* sgemm sums in float, the interpreter in double */
            compare_backends(g, dts[d] == ED_F32 ? 1e-5 : 1e-12, 2);
            free_feeds();
            ed_graph_free(g);
        }
}

/* The GEMV kernel (backend/llvm/lower_gemv.c) on every row count 1..8 (the crossover
 * raised to 8 so each takes it), n and k not multiples of the 8-wide vector, x plain and
 * transposed; a transposed weight keeps sgemm and must agree as well. */
static void test_matmul_gemv_odd_shapes(void **state)
{
    (void)state;
    setenv("EDIFICE_GEMV_ROWS", "8", 1);
    static const int64_t ns[] = {1, 7, 9, 63, 65, 100, 257}, ks[] = {1, 5, 17, 300};
    for (int64_t m = 1; m <= 8; m++)
        for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++)
            for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
                int64_t n = ns[ni], k = ks[ki];
                bool ta = (m + ni + ki) % 2 == 1, tb = (m + ni + ki) % 7 == 3;
                ed_graph *g = ed_graph_new("gemv");
                ed_node *a = input(g, ED_F32, ta ? ed_shape2(k, m) : ed_shape2(m, k), false);
                ed_node *b = input(g, ED_F32, tb ? ed_shape2(n, k) : ed_shape2(k, n), false);
                ed_output(g, "y", ed_matmul_t(a, b, ta, tb));
                compare_backends(g, 1e-5, 1);
                free_feeds();
                ed_graph_free(g);
            }
    unsetenv("EDIFICE_GEMV_ROWS");
}

/* At batch 1 the matmul is the JIT's own vector loop, not a call to sgemm; at 64 rows
 * it stays sgemm. */
static void test_matmul_gemv_is_chosen_by_rows(void **state)
{
    (void)state;
    for (int big = 0; big < 2; big++) {
        ed_graph *g = ed_graph_new("gemv_ir");
        ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(big ? 64 : 1, 256));
        ed_node *w = ed_input(g, "w", ED_F32, ed_shape2(256, 1024));
        ed_output(g, "y", ed_matmul(x, w));
        char *ir = ed_jit_dump_ir(g);
        assert_non_null(ir);
        assert_int_equal(strstr(ir, "cblas_sgemm") != NULL, big);
        if (!big) assert_non_null(strstr(ir, "<8 x float>"));
        free(ir);
        ed_graph_free(g);
    }
}

/* ---- random ops, consts ------------------------------------------------------------ */

static void test_random_ops_bit_identical(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("rng");
    ed_output(g, "u", ed_rand(g, ED_F32, ed_shape2(13, 64), -2, 3));
    ed_output(g, "u64", ed_rand(g, ED_F64, ed_shape1(1000), 0, 1));
    ed_output(g, "n", ed_randn(g, ED_F32, ed_shape1(1001)));
    ed_output(g, "n64", ed_randn(g, ED_F64, ed_shape1(7)));
    ed_output(g, "i", ed_randint(g, ed_shape2(7, 13), -5, 9));
    ed_output(g, "b", ed_bernoulli(g, ED_F32, ed_shape1(1000), 0.3));
    ed_output(g, "bi", ed_bernoulli(g, ED_I32, ed_shape1(1), 0.5));
    ed_output(g, "c", CST(g, ED_F32, ed_shape2(2, 2), 1, 2, 3, 4));
    ed_output(g, "splat", ed_fill(g, ED_I32, ed_shape1(13), 3));
    compare_backends(g, 0, 3); /* three calls: the call counter advances the streams */
    ed_graph_free(g);
}

/* ---- random graphs ---------------------------------------------------------------- */

/* 5-30 ops drawn from unary, binary (broadcasting among [7,13], [1,13], [7,1], [13],
 * []), reductions with keepdims and matmul by a [13,13] weight. */
static void random_graph(uint64_t seed)
{
    rng_state = seed * 2654435761u + 1;
    ed_graph *g = ed_graph_new("random");
    ed_node *pool[64];
    int np = 0;
    pool[np++] = input(g, ED_F32, ed_shape2(7, 13), false);
    pool[np++] = input(g, ED_F32, ed_shape1(13), false);
    pool[np++] = input(g, ED_F32, ed_shape2(7, 1), false);
    ed_node *w = input(g, ED_F32, ed_shape2(13, 13), false);
    static const unary_fn un[] = {ed_tanh, ed_sigmoid, ed_relu,   ed_neg,     ed_abs,
                                  ed_sin,  ed_silu,    gelu_tanh, ed_softplus};
    static const binary_fn bin[] = {ed_add, ed_sub, ed_mul, ed_maximum, ed_minimum};
    int nops = 5 + pick(26);
    for (int i = 0; i < nops; i++) {
        ed_node *x = pool[pick(np)], *y;
        switch (pick(5)) {
        case 0: y = un[pick(9)](x); break;
        case 1: y = bin[pick(5)](x, pool[pick(np)]); break;
        case 2:
            y = x->shape.rank == 2   ? (pick(2) ? ed_sum(x, 1u << pick(2), true) : ed_max(x, 1u << pick(2), true))
                : x->shape.rank == 1 ? ed_mean(x, 1, false)
                                     : ed_exp(x);
            break;
        case 3: y = ed_matmul(ed_broadcast_to(x, ed_shape2(7, 13)), w); break;
        default: y = ed_where(ed_gt(x, pool[pick(np)]), x, pool[pick(np)]); break;
        }
        assert_non_null(y);
        if (y->shape.rank > 2 || ed_shape_numel(y->shape) > 91) continue;
        if (np < 64) pool[np++] = y;
    }
    for (int i = 3; i < np; i++) {
        char name[16];
        snprintf(name, sizeof name, "o%d", i);
        ed_output(g, name, pool[i]);
    }
    if (np == 3) ed_output(g, "o", pool[0]);
    compare_backends(g, 1e-4, 1);
    free_feeds();
    ed_graph_free(g);
}

static void test_random_graphs(void **state)
{
    (void)state;
    for (uint64_t s = 1; s <= 40; s++) random_graph(s);
}

/* ---- a model ----------------------------------------------------------------------- */

static void test_mlp_forward(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("mlp");
    ed_node *x = input(g, ED_F32, ed_shape2(64, 13), false);
    ed_node *h = ed_tanh(ed_dense(x, "l1", 64, true));
    ed_node *y = ed_dense(h, "l2", 7, true);
    ed_output(g, "y", y);
    ed_output(g, "loss", ed_mean(ed_square(y), 3, false));
    compare_backends(g, 1e-5, 2);
    free_feeds();
    ed_graph_free(g);
}

/* ---- errors ------------------------------------------------------------------------ */

/* No op is left without a lowering, so no graph can reach ed_jit_check's refusal;
 * a new op row without one fails here. */
static void test_every_op_has_a_lowering(void **state)
{
    (void)state;
    for (int op = 0; op < ED_OP_COUNT; op++)
        if (!ed_jit_has_lowering((ed_op)op)) fail_msg("op %s has no JIT lowering", ed_op_name((ed_op)op));
}

/* Runs after the elementwise tests: each elementwise op was the output of a graph
 * compared against the interpreter (an op left out of their lists fails here). */
static void test_every_elementwise_op_is_compared(void **state)
{
    (void)state;
    for (int op = 0; op < ED_OP_COUNT; op++)
        if (ed_ops[op].kind == ED_KIND_ELEM && !compared[op])
            fail_msg("op %s is not compared with the interpreter", ed_op_name((ed_op)op));
}

static void test_wrong_feed_shape_fails(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("g");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(7, 13));
    ed_output(g, "y", ed_exp(x));
    ed_program *p = ed_compile(g, NULL, &(ed_compile_opts){.backend = ED_BACKEND_JIT});
    assert_non_null(p);
    ed_tensor *t = ed_tensor_new(ED_F32, ed_shape2(13, 7));
    assert_int_equal(ed_run(p, &(ed_feed){"x", t}, 1), ED_ERR);
    assert_string_equal(ed_last_error(), "input \"x\": fed f32[13,7], graph wants f32[7,13]");
    ed_tensor_free(t);
    ed_program_free(p);
    ed_graph_free(g);
}

/* ---- vectorization and speed ----------------------------------------------------------- */

static void test_ir_is_vectorized(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("vec");
    ed_node *a = ed_input(g, "a", ED_F32, ed_shape1(1 << 16)), *b = ed_input(g, "b", ED_F32, ed_shape1(1 << 16));
    ed_output(g, "y", ed_maximum(ed_mul(ed_add(a, b), b), a));
    char *ir = ed_jit_dump_ir(g);
    assert_non_null(ir);
    /* 8 floats per ymm register; LLVM may interleave two of them as <16 x float>. SSE
     * alone would give <4 x float>. */
    assert_true(strstr(ir, "<8 x float>") || strstr(ir, "<16 x float>"));
    free(ir);
    ed_graph_free(g);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Reported, not asserted: 8 adds over 1e6 floats, median of 5 calls per backend. */
static void test_add_chain_timing(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("chain");
    ed_node *x = input(g, ED_F32, ed_shape1(1000000), false), *y = input(g, ED_F32, ed_shape1(1000000), false);
    ed_node *acc = x;
    for (int i = 0; i < 8; i++) acc = ed_add(acc, y);
    ed_output(g, "z", acc);
    double med[2], cms[2];
    for (int be = 0; be < 2; be++) {
        double t0 = now_ms();
        ed_program *p = ed_compile(g, NULL, &(ed_compile_opts){.backend = be ? ED_BACKEND_JIT : ED_BACKEND_INTERP});
        cms[be] = now_ms() - t0;
        assert_non_null(p);
        double t[5];
        for (int r = 0; r < 5; r++) {
            t0 = now_ms();
            assert_int_equal(ed_run(p, feeds, nfeeds), ED_OK);
            t[r] = now_ms() - t0;
        }
        qsort(t, 5, sizeof t[0], cmp_double);
        med[be] = t[2];
        ed_program_free(p);
    }
    printf("add chain 8 x 1e6 f32: interp %.2f ms, jit %.2f ms (median of 5); compile interp %.2f ms, jit %.2f ms\n",
           med[0], med[1], cms[0], cms[1]);
    compare_backends(g, 0, 1);
    free_feeds();
    ed_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_unary_ops, reset),
        cmocka_unit_test_setup(test_binary_ops_broadcast, reset),
        cmocka_unit_test_setup(test_int_division_edges, reset),
        cmocka_unit_test_setup(test_reductions_all_axis_sets, reset),
        cmocka_unit_test_setup(test_leading_reductions_bit_exact, reset),
        cmocka_unit_test_setup(test_leading_reduction_ir_is_vectorized, reset),
        cmocka_unit_test_setup(test_fused_leading_reductions_bit_exact, reset),
        cmocka_unit_test_setup(test_movement_ops, reset),
        cmocka_unit_test_setup(test_gather_every_axis, reset),
        cmocka_unit_test_setup(test_one_hot, reset),
        cmocka_unit_test_setup(test_scatter_add_every_axis, reset),
        cmocka_unit_test_setup(test_scatter_add_order, reset),
        cmocka_unit_test_setup(test_concat_many_inputs, reset),
        cmocka_unit_test_setup(test_allreduce_one_rank, reset),
        cmocka_unit_test_setup(test_gather_gradient, reset),
        cmocka_unit_test_setup(test_matmul, reset),
        cmocka_unit_test_setup(test_matmul_gemv_odd_shapes, reset),
        cmocka_unit_test_setup(test_matmul_gemv_is_chosen_by_rows, reset),
        cmocka_unit_test_setup(test_random_ops_bit_identical, reset),
        cmocka_unit_test_setup(test_random_graphs, reset),
        cmocka_unit_test_setup(test_mlp_forward, reset),
        cmocka_unit_test_setup(test_every_op_has_a_lowering, reset),
        cmocka_unit_test_setup(test_every_elementwise_op_is_compared, reset),
        cmocka_unit_test_setup(test_wrong_feed_shape_fails, reset),
        cmocka_unit_test_setup(test_ir_is_vectorized, reset),
        cmocka_unit_test_setup(test_add_chain_timing, reset),
    };
    return cmocka_run_group_tests(tests, NULL, reset);
}
