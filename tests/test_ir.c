/* IR: op table, shape rules and the error message of every op, sticky errors, NULL
 * propagation, leaves by name, bindings, topological order, uses, replace-all-uses,
 * and the verifier. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "frontend/frontend.h"
#include "frontend/loop.h"
#include "runtime/error.h"

#include <stdlib.h>
#include <string.h>

static ed_node *in32(ed_graph *g, const char *name, ed_shape s) { return ed_input(g, name, ED_F32, s); }
static ed_node *ini(ed_graph *g, const char *name, ed_shape s) { return ed_input(g, name, ED_I32, s); }

static void test_every_op_has_a_row_and_rule(void **state)
{
    (void)state;
    for (int op = 0; op < ED_OP_COUNT; op++) {
        assert_non_null(ed_ops[op].name);
        assert_true(ed_shape_rule_exists((ed_op)op));
        ed_op back;
        assert_true(ed_op_lookup(ed_ops[op].name, &back));
        assert_int_equal(back, op);
    }
    ed_op dummy;
    assert_false(ed_op_lookup("no_such_op", &dummy));
}

/* One bad construction per op and the words its message must contain. */
typedef ed_node *(*bad_fn)(ed_graph *g);

static ed_node *bad_input(ed_graph *g) { return ed_input(g, "x", ED_F32, (ed_shape){.rank = 7}); }
static ed_node *bad_param(ed_graph *g) { return ed_param(g, "w", ED_I32, ed_shape1(3), (ed_init){0}); }
static ed_node *bad_state(ed_graph *g)
{
    return ed_state(g, "s", ED_F32, (ed_shape){.rank = 1, .dim = {-2}}, (ed_init){0});
}
static ed_node *bad_const(ed_graph *g)
{
    double v[3] = {1, 2, 3};
    return ed_const(g, ED_F32, ed_shape2(2, 2), v, 3);
}
#define BAD_BINARY(fn) \
    static ed_node *bad_##fn(ed_graph *g) { return ed_##fn(in32(g, "a", ed_shape2(2, 3)), in32(g, "b", ed_shape1(4))); }
BAD_BINARY(add)
BAD_BINARY(sub)
BAD_BINARY(mul)
BAD_BINARY(div)
BAD_BINARY(pow)
BAD_BINARY(maximum)
BAD_BINARY(minimum)
BAD_BINARY(lt)
BAD_BINARY(le)
BAD_BINARY(gt)
BAD_BINARY(ge)
BAD_BINARY(eq)
#undef BAD_BINARY
static ed_node *bad_where(ed_graph *g)
{
    return ed_where(in32(g, "c", ed_shape1(3)), in32(g, "a", ed_shape1(3)), in32(g, "b", ed_shape1(3)));
}
#define BAD_FLOAT_UNARY(fn) \
    static ed_node *bad_##fn(ed_graph *g) { return ed_##fn(ini(g, "i", ed_shape1(3))); }
BAD_FLOAT_UNARY(exp)
static ed_node *bad_allreduce_sum(ed_graph *g) { return ed_allreduce(ini(g, "i", ed_shape1(3)), false); }
static ed_node *bad_allreduce_mean(ed_graph *g) { return ed_allreduce(ini(g, "i", ed_shape1(3)), true); }
BAD_FLOAT_UNARY(expm1)
BAD_FLOAT_UNARY(log)
BAD_FLOAT_UNARY(log1p)
BAD_FLOAT_UNARY(sqrt)
BAD_FLOAT_UNARY(rsqrt)
BAD_FLOAT_UNARY(tanh)
BAD_FLOAT_UNARY(sigmoid)
BAD_FLOAT_UNARY(silu)
BAD_FLOAT_UNARY(softplus)
BAD_FLOAT_UNARY(sin)
BAD_FLOAT_UNARY(cos)
BAD_FLOAT_UNARY(erf)
#undef BAD_FLOAT_UNARY
static ed_node *bad_leaky(ed_graph *g) { return ed_leaky_relu(ini(g, "i", ed_shape1(3)), 0.1); }
static ed_node *bad_gelu(ed_graph *g) { return ed_gelu(ini(g, "i", ed_shape1(3)), false); }
static ed_node *bad_clamp(ed_graph *g) { return ed_clamp(in32(g, "x", ed_shape1(3)), 2, 1); }
static ed_node *bad_cast(ed_graph *g) { return ed_cast(in32(g, "x", ed_shape1(3)), (ed_dtype)9); }
/* neg, abs, square, relu, sign, stop_gradient accept every dtype; they fail only on
 * a NULL input. */
static ed_node *bad_neg(ed_graph *g) { return ed_neg(ed_add(in32(g, "x", ed_shape1(3)), NULL)); }
static ed_node *bad_mean(ed_graph *g) { return ed_mean(ini(g, "i", ed_shape1(3)), ED_ALL_AXES, false); }
static ed_node *bad_sum(ed_graph *g) { return ed_sum(in32(g, "x", ed_shape2(2, 3)), 1u << 2, false); }
static ed_node *bad_max(ed_graph *g) { return ed_max(in32(g, "x", ed_shape2(0, 3)), 1u, false); }
static ed_node *bad_min(ed_graph *g) { return ed_min(in32(g, "x", ed_shape0()), 1u, true); }
static ed_node *bad_argmax(ed_graph *g) { return ed_argmax(in32(g, "x", ed_shape2(2, 0)), 2u, false); }
static ed_node *bad_argmin(ed_graph *g) { return ed_argmin(in32(g, "x", ed_shape2(2, 3)), 1u << 3, false); }
static ed_node *bad_reshape(ed_graph *g) { return ed_reshape(in32(g, "x", ed_shape2(2, 3)), ed_shape2(4, 2)); }
static ed_node *bad_reshape_infer(ed_graph *g) { return ed_reshape(in32(g, "x", ed_shape2(2, 3)), ed_shape2(-1, 4)); }
static ed_node *bad_transpose(ed_graph *g)
{
    int perm[2] = {0, 0};
    return ed_transpose(in32(g, "x", ed_shape2(2, 3)), perm);
}
static ed_node *bad_broadcast(ed_graph *g) { return ed_broadcast_to(in32(g, "x", ed_shape2(2, 3)), ed_shape2(2, 4)); }
static ed_node *bad_slice(ed_graph *g)
{
    int64_t b[1] = {0}, e[1] = {3}, s[1] = {0};
    return ed_slice(in32(g, "x", ed_shape1(3)), b, e, s);
}
static ed_node *bad_concat(ed_graph *g)
{
    ed_node *xs[2] = {in32(g, "a", ed_shape2(2, 3)), in32(g, "b", ed_shape2(3, 3))};
    return ed_concat(xs, 2, 1);
}
static ed_node *bad_pad(ed_graph *g)
{
    int64_t lo[1] = {-1}, hi[1] = {0};
    return ed_pad(in32(g, "x", ed_shape1(3)), lo, hi, 0);
}
static ed_node *bad_gather(ed_graph *g)
{
    return ed_gather(in32(g, "x", ed_shape2(4, 3)), in32(g, "i", ed_shape1(2)), 0);
}
static ed_node *bad_one_hot(ed_graph *g) { return ed_one_hot(in32(g, "i", ed_shape1(2)), 5, ED_F32); }
static ed_node *bad_scatter(ed_graph *g)
{
    return ed_scatter_add(in32(g, "x", ed_shape2(4, 3)), ini(g, "i", ed_shape1(2)), in32(g, "u", ed_shape2(2, 4)), 0);
}
static ed_node *x4(ed_graph *g, int64_t n, int64_t c, int64_t h, int64_t w)
{
    return in32(g, "x4", ed_shape4(n, c, h, w));
}
static ed_node *w4(ed_graph *g, int64_t o, int64_t c, int64_t h, int64_t w)
{
    return in32(g, "w4", ed_shape4(o, c, h, w));
}
static ed_node *bad_conv_fit(ed_graph *g)
{
    return ed_conv2d(x4(g, 1, 2, 3, 3), w4(g, 4, 2, 3, 3), &(ed_conv_opts){.dilation = {2, 1}});
}
static ed_node *bad_conv_groups(ed_graph *g)
{
    return ed_conv2d(x4(g, 1, 3, 5, 5), w4(g, 4, 1, 3, 3), &(ed_conv_opts){.groups = 2});
}
static ed_node *bad_conv_channels(ed_graph *g)
{
    return ed_conv2d(x4(g, 1, 4, 5, 5), w4(g, 4, 4, 3, 3), &(ed_conv_opts){.groups = 2});
}
static ed_node *bad_conv_rank(ed_graph *g)
{
    return ed_conv2d(in32(g, "x", ed_shape3(1, 5, 5)), w4(g, 4, 1, 3, 3), NULL);
}
static ed_node *bad_conv_stride(ed_graph *g)
{
    return ed_conv2d(x4(g, 1, 1, 5, 5), w4(g, 1, 1, 3, 3), &(ed_conv_opts){.stride = {-1, 1}});
}
static ed_node *bad_conv_t_outpad(ed_graph *g)
{
    return ed_conv_transpose2d(x4(g, 1, 2, 3, 3), w4(g, 2, 1, 3, 3),
                               &(ed_conv_opts){.stride = {2, 1}, .output_padding = {1, 1}});
}
static ed_node *bad_conv_t_channels(ed_graph *g)
{
    return ed_conv_transpose2d(x4(g, 1, 2, 3, 3), w4(g, 3, 1, 3, 3), NULL);
}
static ed_node *bad_conv_wgrad(ed_graph *g)
{
    return ed_conv2d_weight_grad(x4(g, 2, 2, 5, 5), in32(g, "dy", ed_shape4(2, 3, 4, 4)), 3, 3, NULL);
}
static ed_node *bad_matmul(ed_graph *g)
{
    return ed_matmul(in32(g, "a", ed_shape2(32, 64)), in32(g, "b", ed_shape2(128, 10)));
}
static ed_node *bad_matmul_batch(ed_graph *g)
{
    return ed_matmul(in32(g, "a", ed_shape3(2, 3, 4)), in32(g, "b", ed_shape3(5, 4, 2)));
}
static ed_node *bad_matmul_rank(ed_graph *g)
{
    return ed_matmul(in32(g, "a", ed_shape1(3)), in32(g, "b", ed_shape2(3, 2)));
}
static ed_node *bad_rand(ed_graph *g) { return ed_rand(g, ED_I32, ed_shape1(3), 0, 1); }
static ed_node *bad_randn(ed_graph *g) { return ed_randn(g, ED_F32, (ed_shape){.rank = 1, .dim = {-1}}); }
static ed_node *bad_randint(ed_graph *g) { return ed_randint(g, ed_shape1(3), 5, 5); }
static ed_node *bad_bernoulli(ed_graph *g) { return ed_bernoulli(g, ED_F32, ed_shape1(3), 1.5); }
static ed_node *bad_loop(ed_graph *g)
{
    ed_loop_builder *b = ed_loop_begin(g, 2);
    ed_node *x = ed_loop_carried(b, ed_fill(g, ED_F32, ed_shape1(2), 0));
    ed_node *x1 = ed_cast(x, ED_I32);
    return ed_loop_end(b, &x1, 1, NULL, 0);
}
static ed_node *bad_get(ed_graph *g)
{
    ed_loop_builder *b = ed_loop_begin(g, 2);
    ed_node *x = ed_loop_carried(b, ed_fill(g, ED_F32, ed_shape1(2), 0));
    return ed_loop_result(ed_loop_end(b, &x, 1, NULL, 0), 3);
}

/* A fused body is an elementwise expression with at most one sum, mean, max or min:
 * argmax inside is refused. */
static ed_node *bad_fused(ed_graph *g)
{
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(2, 3));
    ed_graph *body = ed_graph_new("f");
    ed_node *b = ed_input(body, "x0", ED_F32, ed_shape2(2, 3));
    ed_output(body, "y", ed_add(b, ed_cast(ed_argmax(b, 2, true), ED_F32)));
    return ed_fused(&x, 1, body);
}

typedef struct {
    ed_op op;
    bad_fn build;
    const char *expect; /* the whole message must contain this */
} bad_case;

static const bad_case bad_cases[] = {
    {ED_OP_INPUT, bad_input, "input: bad shape (rank 7"},
    {ED_OP_PARAM, bad_param, "param: trainable params must be float, got i32"},
    {ED_OP_STATE, bad_state, "state: bad shape"},
    {ED_OP_CONST, bad_const, "const: has 3 values for f32[2,2] (give 1 value or 4)"},
    {ED_OP_ADD, bad_add, "add: shapes do not broadcast: f32[2,3] vs f32[4] (at %2)"},
    {ED_OP_SUB, bad_sub, "sub: shapes do not broadcast"},
    {ED_OP_MUL, bad_mul, "mul: shapes do not broadcast"},
    {ED_OP_DIV, bad_div, "div: shapes do not broadcast"},
    {ED_OP_POW, bad_pow, "pow: shapes do not broadcast"},
    {ED_OP_MAXIMUM, bad_maximum, "maximum: shapes do not broadcast"},
    {ED_OP_MINIMUM, bad_minimum, "minimum: shapes do not broadcast"},
    {ED_OP_LT, bad_lt, "lt: shapes do not broadcast"},
    {ED_OP_LE, bad_le, "le: shapes do not broadcast"},
    {ED_OP_GT, bad_gt, "gt: shapes do not broadcast"},
    {ED_OP_GE, bad_ge, "ge: shapes do not broadcast"},
    {ED_OP_EQ, bad_eq, "eq: shapes do not broadcast"},
    {ED_OP_WHERE, bad_where, "where: condition must be i32 (a comparison), got f32[3]"},
    {ED_OP_EXP, bad_exp, "exp: needs a float dtype, got i32[3] (use cast)"},
    {ED_OP_ALLREDUCE_SUM, bad_allreduce_sum, "allreduce_sum: needs a float dtype, got i32[3]"},
    {ED_OP_ALLREDUCE_MEAN, bad_allreduce_mean, "allreduce_mean: needs a float dtype, got i32[3]"},
    {ED_OP_EXPM1, bad_expm1, "expm1: needs a float dtype"},
    {ED_OP_LOG, bad_log, "log: needs a float dtype"},
    {ED_OP_LOG1P, bad_log1p, "log1p: needs a float dtype"},
    {ED_OP_SQRT, bad_sqrt, "sqrt: needs a float dtype"},
    {ED_OP_RSQRT, bad_rsqrt, "rsqrt: needs a float dtype"},
    {ED_OP_TANH, bad_tanh, "tanh: needs a float dtype"},
    {ED_OP_SIGMOID, bad_sigmoid, "sigmoid: needs a float dtype"},
    {ED_OP_SILU, bad_silu, "silu: needs a float dtype"},
    {ED_OP_SOFTPLUS, bad_softplus, "softplus: needs a float dtype"},
    {ED_OP_SIN, bad_sin, "sin: needs a float dtype"},
    {ED_OP_COS, bad_cos, "cos: needs a float dtype"},
    {ED_OP_ERF, bad_erf, "erf: needs a float dtype"},
    {ED_OP_LEAKY_RELU, bad_leaky, "leaky_relu: needs a float dtype"},
    {ED_OP_GELU, bad_gelu, "gelu: needs a float dtype"},
    {ED_OP_CLAMP, bad_clamp, "clamp: needs lo <= hi, got lo=2 hi=1"},
    {ED_OP_CAST, bad_cast, "cast: bad target dtype 9"},
    {ED_OP_ADD, bad_neg, "add: input 2 is NULL"},
    {ED_OP_MEAN, bad_mean, "mean: needs a float dtype"},
    {ED_OP_SUM, bad_sum, "sum: axes mask 0x4 names an axis beyond rank 2 of f32[2,3]"},
    {ED_OP_MAX, bad_max, "max: reduces axis 0 of size 0 in f32[0,3]"},
    {ED_OP_MIN, bad_min, "min: axes mask 0x1 names an axis beyond rank 0 of f32[]"},
    {ED_OP_ARGMAX, bad_argmax, "argmax: reduces axis 1 of size 0 in f32[2,0]"},
    {ED_OP_ARGMIN, bad_argmin, "argmin: axes mask 0x8 names an axis beyond rank 2"},
    {ED_OP_RESHAPE, bad_reshape, "reshape: element counts differ: f32[2,3] to f32[4,2]"},
    {ED_OP_RESHAPE, bad_reshape_infer,
     "reshape: cannot infer the -1 dim: f32[2,3] has 6 elements, not a multiple of 4"},
    {ED_OP_TRANSPOSE, bad_transpose, "transpose: perm is not a permutation of 0..1 for f32[2,3]"},
    {ED_OP_BROADCAST_TO, bad_broadcast, "broadcast_to: cannot broadcast f32[2,3] to f32[2,4]"},
    {ED_OP_SLICE, bad_slice, "slice: axis 0: step must be >= 1, got 0"},
    {ED_OP_CONCAT, bad_concat, "concat: shapes differ off axis 1: f32[2,3] vs f32[3,3] (input 2)"},
    {ED_OP_PAD, bad_pad, "pad: axis 0: padding must be >= 0"},
    {ED_OP_GATHER, bad_gather, "gather: indices must be i32, got f32[2]"},
    {ED_OP_ONE_HOT, bad_one_hot, "one_hot: indices must be i32, got f32[2]"},
    {ED_OP_SCATTER_ADD, bad_scatter,
     "scatter_add: updates are f32[2,4] but f32[4,3] indexed by i32[2] on axis 0 needs f32[2,3]"},
    {ED_OP_MATMUL, bad_matmul, "matmul: inner dimensions differ: f32[32,64] x f32[128,10] (at %2)"},
    {ED_OP_MATMUL, bad_matmul_batch, "matmul: batch dimensions do not broadcast: f32[2,3,4] x f32[5,4,2]"},
    {ED_OP_MATMUL, bad_matmul_rank, "matmul: operands need rank >= 2"},
    {ED_OP_CONV2D, bad_conv_fit,
     "conv2d: the kernel 3x3 with dilation [2, 1] spans 5x3, more than the input f32[1,2,3,3] padded by [0, 0]"},
    {ED_OP_CONV2D, bad_conv_groups, "conv2d: groups 2 does not divide the 3 input channels of f32[1,3,5,5]"},
    {ED_OP_CONV2D, bad_conv_channels,
     "conv2d: weight f32[4,4,3,3] needs dim 1 = input channels / groups = 2 (input f32[1,4,5,5], groups 2)"},
    {ED_OP_CONV2D, bad_conv_rank, "conv2d: needs x and w of rank 4, got f32[1,5,5] and f32[4,1,3,3]"},
    {ED_OP_CONV2D, bad_conv_stride, "conv2d: stride must be in [1, 2^20], got [-1, 1]"},
    {ED_OP_CONV_TRANSPOSE2D, bad_conv_t_outpad,
     "conv_transpose2d: output_padding must be in [0, stride), got [1, 1] with stride [2, 1]"},
    {ED_OP_CONV_TRANSPOSE2D, bad_conv_t_channels,
     "conv_transpose2d: weight f32[3,1,3,3] needs dim 0 = the input's 2 channels (input f32[1,2,3,3])"},
    {ED_OP_CONV2D_WEIGHT_GRAD, bad_conv_wgrad,
     "conv2d_weight_grad: dy f32[2,3,4,4] is not conv2d's output for f32[2,2,5,5] with kernel 3x3 (3x3)"},
    {ED_OP_RAND, bad_rand, "rand: needs a float dtype, got i32"},
    {ED_OP_RANDN, bad_randn, "randn: bad shape"},
    {ED_OP_RANDINT, bad_randint, "randint: needs integers lo < hi within i32, got lo=5 hi=5"},
    {ED_OP_BERNOULLI, bad_bernoulli, "bernoulli: needs 0 <= p <= 1, got p=1.5"},
    {ED_OP_LOOP, bad_loop, "loop: carried value 0 is f32[2] but its next value (out next0) is i32[2] (at %1)"},
    {ED_OP_FUSED, bad_fused,
     "fused: body @f has argmax (%1): only elementwise ops, broadcast_to, splat consts and one sum, mean, max or min"},
    {ED_OP_GET, bad_get, "get: index 3 is out of range: the loop (%1) has 1 results"},
};

static void test_shape_error_of_every_op(void **state)
{
    (void)state;
    bool covered[ED_OP_COUNT] = {0};
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        ed_graph *g = ed_graph_new("bad");
        ed_node *n = bad_cases[i].build(g);
        const char *err = ed_graph_error(g);
        if (n || !err || !strstr(err, bad_cases[i].expect))
            fail_msg("case %zu: expected an error containing\n  %s\ngot\n  %s", i, bad_cases[i].expect,
                     err ? err : "(no error)");
        covered[bad_cases[i].op] = true;
        ed_graph_free(g);
    }
    /* Ops that take every dtype and shape fail only through their inputs (covered by
     * the NULL and foreign-graph tests below). */
    const ed_op total_ops[] = {ED_OP_NEG, ED_OP_ABS, ED_OP_SQUARE, ED_OP_RELU, ED_OP_SIGN, ED_OP_STOP_GRADIENT};
    for (size_t i = 0; i < sizeof total_ops / sizeof total_ops[0]; i++) covered[total_ops[i]] = true;
    for (int op = 0; op < ED_OP_COUNT; op++)
        if (!covered[op]) fail_msg("no shape-error case for op %s", ed_op_name((ed_op)op));
}

static void test_errors_are_sticky_and_null_propagates(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("g");
    ed_node *a = in32(g, "a", ed_shape2(2, 3));
    ed_node *b = in32(g, "b", ed_shape2(4, 3));
    ed_node *bad = ed_matmul(a, b);
    assert_null(bad);
    const char *first = ed_graph_error(g);
    assert_non_null(strstr(first, "matmul: inner dimensions differ: f32[2,3] x f32[4,3]"));
    /* Later constructors fail too, and the first message is kept. */
    assert_null(ed_add(a, a));
    assert_null(ed_relu(bad));
    assert_null(ed_sum(ed_exp(bad), ED_ALL_AXES, false));
    assert_null(ed_input(g, "c", ED_F32, ed_shape1(2)));
    assert_non_null(strstr(ed_graph_error(g), "matmul"));
    /* All-NULL inputs have no graph to report on and simply give NULL. */
    assert_null(ed_add(NULL, NULL));
    assert_null(ed_concat((ed_node *[]){NULL, NULL}, 2, 0));
    assert_null(ed_input(NULL, "x", ED_F32, ed_shape1(1)));
    ed_graph_free(g);
}

static void test_foreign_graph_input(void **state)
{
    (void)state;
    ed_graph *g1 = ed_graph_new("one"), *g2 = ed_graph_new("two");
    ed_node *a = in32(g1, "a", ed_shape1(3)), *b = in32(g2, "b", ed_shape1(3));
    assert_null(ed_add(a, b));
    assert_non_null(strstr(ed_graph_error(g1), "add: input 2 (%0) belongs to graph @two, not @one"));
    ed_graph_free(g1);
    ed_graph_free(g2);
}

static void test_scope_in_message(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("g");
    ed_node *x = in32(g, "x", ed_shape2(32, 64));
    ed_scope_push(g, "enc");
    ed_scope_push(g, "fc1");
    assert_string_equal(ed_scope(g), "enc.fc1");
    ed_node *w = ed_param(g, "enc.fc1.w", ED_F32, ed_shape2(128, 10), (ed_init){ED_INIT_GLOROT_UNIFORM, 0});
    assert_null(ed_matmul(x, w));
    assert_string_equal(ed_graph_error(g),
                        "matmul: inner dimensions differ: f32[32,64] x f32[128,10] (at %2 in \"enc.fc1\")");
    ed_scope_pop(g);
    assert_string_equal(ed_scope(g), "enc");
    ed_scope_pop(g);
    assert_string_equal(ed_scope(g), "");
    /* A pop undoes one push, however many dotted parts it added. */
    ed_scope_push(g, "a.b");
    ed_scope_push(g, "c.d");
    assert_string_equal(ed_scope(g), "a.b.c.d");
    ed_scope_pop(g);
    assert_string_equal(ed_scope(g), "a.b");
    ed_scope_pop(g);
    ed_scope_pop(g); /* popping at top level is harmless */
    assert_string_equal(ed_scope(g), "");
    ed_graph_free(g);
}

static void test_leaves_by_name(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("g");
    ed_init init = {ED_INIT_NORMAL, 0.1};
    ed_node *w1 = ed_param(g, "w", ED_F32, ed_shape2(3, 4), init);
    ed_node *w2 = ed_param(g, "w", ED_F32, ed_shape2(3, 4), init);
    assert_ptr_equal(w1, w2); /* the same name is the same parameter */
    assert_ptr_equal(ed_graph_leaf(g, ED_OP_PARAM, "w"), w1);
    assert_null(ed_graph_leaf(g, ED_OP_INPUT, "w"));
    assert_null(ed_param(g, "w", ED_F32, ed_shape2(4, 4), init));
    assert_non_null(strstr(ed_graph_error(g), "param: \"w\" already exists as f32[3,4], now asked for as f32[4,4]"));
    ed_graph_free(g);

    g = ed_graph_new("g");
    assert_null(ed_input(g, "", ED_F32, ed_shape1(1)));
    assert_non_null(strstr(ed_graph_error(g), "input: needs a non-empty name"));
    ed_graph_free(g);
}

static void test_outputs_and_updates(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("g");
    ed_node *s = ed_state(g, "count", ED_F32, ed_shape0(), (ed_init){ED_INIT_ZEROS, 0});
    ed_node *next = ed_add_scalar(s, 1);
    ed_output(g, "count", next);
    ed_update(g, "count", next);
    assert_null(ed_graph_error(g));
    assert_ptr_equal(ed_graph_output(g, "count"), next);
    assert_int_equal(g->nupdates, 1);
    assert_int_equal(ed_graph_verify(g), ED_OK);

    ed_update(g, "count", ed_reshape(next, ed_shape1(1)));
    assert_non_null(strstr(ed_graph_error(g), "update \"count\": new value is f32[1] but the state is f32[]"));
    ed_graph_free(g);

    g = ed_graph_new("g");
    ed_update(g, "nothing", ed_scalar(g, ED_F32, 1));
    assert_non_null(strstr(ed_graph_error(g), "update \"nothing\": no param or state of that name"));
    ed_graph_free(g);

    g = ed_graph_new("g");
    ed_node *one = ed_scalar(g, ED_F32, 1);
    ed_output(g, "y", one);
    ed_output(g, "y", one);
    assert_non_null(strstr(ed_graph_error(g), "out \"y\" is bound twice"));
    ed_graph_free(g);
}

static void test_const_values_round_to_dtype(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("g");
    ed_node *c = ed_scalar(g, ED_F32, 0.1);
    assert_true(c->attr.data[0] == (double)0.1f);
    double v[2] = {2.7, -2.7};
    ed_node *ci = ed_const(g, ED_I32, ed_shape1(2), v, 2);
    assert_true(ci->attr.data[0] == 2 && ci->attr.data[1] == -2);
    ed_graph_free(g);
}

static void test_random_streams_are_distinct(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("g");
    ed_node *a = ed_randn(g, ED_F32, ed_shape1(4));
    ed_node *b = ed_randn(g, ED_F32, ed_shape1(4));
    ed_node *c = ed_randint(g, ed_shape1(4), 0, 10);
    assert_true(a->attr.stream != 0 && a->attr.stream != b->attr.stream && b->attr.stream != c->attr.stream);
    ed_graph_free(g);
}

static void test_topo_uses_replace(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("g");
    ed_node *x = in32(g, "x", ed_shape1(3));
    ed_node *e = ed_exp(x);    /* %1 */
    ed_node *y = ed_mul(e, e); /* %2: uses e twice */
    ed_output(g, "y", y);
    ed_uses *u = ed_uses_build(g);
    assert_int_equal(ed_use_count(u, x), 1);
    assert_int_equal(ed_use_count(u, e), 2);
    assert_int_equal(ed_use_count(u, y), 0);
    ed_uses_free(u);

    /* Replace exp by a later node: creation order stops being topological. */
    ed_node *t = ed_tanh(x); /* %3 */
    assert_int_equal(ed_replace_all_uses(g, e, t), ED_OK);
    assert_ptr_equal(y->in[0], t);
    assert_ptr_equal(y->in[1], t);
    ed_node **order = ed_graph_topo(g);
    assert_non_null(order);
    int pos[4];
    for (int i = 0; i < g->nnodes; i++) pos[order[i]->id] = i;
    assert_true(pos[t->id] < pos[y->id]);
    assert_true(pos[x->id] < pos[t->id]);
    free(order);
    assert_int_equal(ed_graph_verify(g), ED_OK);

    /* Types must match. */
    ed_node *s = ed_sum(x, ED_ALL_AXES, false);
    assert_int_equal(ed_replace_all_uses(g, t, s), ED_ERR);
    assert_non_null(strstr(ed_last_error(), "replace_all_uses: %3 is f32[3] but %4 is f32[]"));

    /* Outputs follow a replacement. */
    ed_node *y2 = ed_add(y, y);
    assert_int_equal(ed_replace_all_uses(g, y, y2), ED_OK);
    assert_ptr_equal(ed_graph_output(g, "y"), y2);
    assert_ptr_equal(y2->in[0], y); /* the new node keeps its own use of the old one */

    /* A cycle (only replace_all_uses can make one) is caught. */
    assert_int_equal(ed_replace_all_uses(g, x, ed_neg(t)), ED_OK);
    assert_int_equal(ed_graph_verify(g), ED_ERR);
    assert_non_null(strstr(ed_last_error(), "cycle"));
    ed_graph_free(g);
}

static void test_verifier_catches_corruption(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("g");
    ed_node *x = in32(g, "x", ed_shape2(2, 3));
    ed_node *y = ed_relu(x);
    assert_int_equal(ed_graph_verify(g), ED_OK);
    y->shape.dim[1] = 4; /* as a buggy pass might */
    assert_int_equal(ed_graph_verify(g), ED_ERR);
    assert_non_null(strstr(ed_last_error(), "verify: %1 relu is f32[2,4] but its rule gives f32[2,3]"));
    y->shape.dim[1] = 3;
    y->dtype = ED_I32;
    assert_int_equal(ed_graph_verify(g), ED_ERR);
    ed_graph_free(g);

    g = ed_graph_new("g");
    in32(g, "x", ed_shape1(2));
    ed_add(NULL, ed_scalar(g, ED_F32, 1));
    assert_int_equal(ed_graph_verify(g), ED_ERR);
    assert_non_null(strstr(ed_last_error(), "has an error"));
    ed_graph_free(g);
}

/* Sizes past 2^40 elements are refused at construction, whichever op forms them, and a
 * huge slice step or padding does not overflow the rule's own arithmetic. */
static void test_size_limits(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("g");
    ed_node *a = in32(g, "a", ed_shape2(1 << 20, 1));
    ed_node *b = in32(g, "b", ed_shape2(1, (1 << 20) + 1));
    assert_null(ed_mul(a, b));
    assert_non_null(strstr(ed_graph_error(g), "over the limit of 2^40 elements"));
    ed_graph_free(g);

    g = ed_graph_new("g");
    ed_node *x = in32(g, "x", ed_shape1(5));
    int64_t lo[1] = {0}, hi[1] = {INT64_MAX}, start[1] = {1}, stop[1] = {5}, step[1] = {INT64_MAX};
    assert_null(ed_pad(x, lo, hi, 0));
    assert_non_null(strstr(ed_graph_error(g), "padding 0, 9223372036854775807 is over the limit"));
    ed_graph_free(g);

    g = ed_graph_new("g");
    x = in32(g, "x", ed_shape1(5));
    ed_node *y = ed_slice(x, start, stop, step);
    assert_non_null(y);
    assert_int_equal(y->shape.dim[0], 1);
    ed_graph_free(g);
}

static void test_shapes_of_good_ops(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("g");
    ed_node *a = in32(g, "a", ed_shape3(2, 1, 4));
    ed_node *b = in32(g, "b", ed_shape2(3, 1));
    ed_node *s = ed_add(a, b);
    assert_true(ed_shape_eq(s->shape, ed_shape3(2, 3, 4)));
    assert_int_equal(ed_lt(a, b)->dtype, ED_I32);
    ed_node *r = ed_sum(s, ed_axis_bit(s, -1) | ed_axis_bit(s, 0), true);
    assert_true(ed_shape_eq(r->shape, ed_shape3(1, 3, 1)));
    assert_true(ed_shape_eq(ed_mean(s, ED_ALL_AXES, false)->shape, ed_shape0()));
    assert_int_equal(ed_argmax(s, 2u, false)->dtype, ED_I32);
    ed_node *m = ed_matmul(in32(g, "m", ed_shape4(5, 1, 2, 3)), in32(g, "n", ed_shape3(6, 3, 7)));
    assert_true(ed_shape_eq(m->shape, ed_shape4(5, 6, 2, 7)));
    ed_node *mt = ed_matmul_t(in32(g, "p", ed_shape2(3, 2)), in32(g, "q", ed_shape2(7, 3)), true, true);
    assert_true(ed_shape_eq(mt->shape, ed_shape2(2, 7)));
    int64_t start[3] = {-1, 0, 1}, stop[3] = {100, 2, 4}, step[3] = {1, 1, 2};
    ed_node *sl = ed_slice(s, start, stop, step);
    assert_true(ed_shape_eq(sl->shape, ed_shape3(1, 2, 2)));
    assert_true(ed_shape_eq(ed_reshape(s, ed_shape2(-1, 4))->shape, ed_shape2(6, 4)));
    ed_node *idx = ini(g, "i", ed_shape2(5, 6));
    assert_true(ed_shape_eq(ed_gather(s, idx, 1)->shape, ed_shapen(4, (int64_t[]){2, 5, 6, 4})));
    assert_true(ed_shape_eq(ed_one_hot(idx, 10, ED_F32)->shape, ed_shape3(5, 6, 10)));
    ed_node *xs[3] = {s, s, s};
    assert_true(ed_shape_eq(ed_concat(xs, 3, -1)->shape, ed_shape3(2, 3, 12)));
    int64_t lo[3] = {1, 0, 2}, hi[3] = {0, 3, 2};
    assert_true(ed_shape_eq(ed_pad(s, lo, hi, 0)->shape, ed_shape3(3, 6, 8)));
    assert_true(ed_shape_eq(ed_transpose(s, NULL)->shape, ed_shape3(4, 3, 2)));
    ed_shape six = ed_shapen(6, (int64_t[]){1, 2, 1, 3, 1, 2});
    assert_true(ed_shape_eq(ed_exp(in32(g, "six", six))->shape, six));
    assert_null(ed_graph_error(g));
    assert_int_equal(ed_graph_verify(g), ED_OK);
    ed_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_op_has_a_row_and_rule),
        cmocka_unit_test(test_shape_error_of_every_op),
        cmocka_unit_test(test_size_limits),
        cmocka_unit_test(test_errors_are_sticky_and_null_propagates),
        cmocka_unit_test(test_foreign_graph_input),
        cmocka_unit_test(test_scope_in_message),
        cmocka_unit_test(test_leaves_by_name),
        cmocka_unit_test(test_outputs_and_updates),
        cmocka_unit_test(test_const_values_round_to_dtype),
        cmocka_unit_test(test_random_streams_are_distinct),
        cmocka_unit_test(test_topo_uses_replace),
        cmocka_unit_test(test_verifier_catches_corruption),
        cmocka_unit_test(test_shapes_of_good_ops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
