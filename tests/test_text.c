/* Text form and DOT: golden prints, a round trip per op row, every parse error with
 * its line and column, truncation and mutation fuzzing, files, Graphviz output. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "frontend/frontend.h"
#include "frontend/loop.h"
#include "ir/text.h"
#include "runtime/error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CST(g, dt, shape, ...)                                  \
    ed_const((g), (dt), (shape), (const double[]){__VA_ARGS__}, \
             (int64_t)(sizeof((const double[]){__VA_ARGS__}) / sizeof(double)))

/* ---- helpers ---------------------------------------------------------------------- */

static ed_node *X(ed_graph *g) { return ed_input(g, "x", ED_F32, ed_shape2(2, 3)); }
static ed_node *Y(ed_graph *g) { return ed_input(g, "y", ED_F32, ed_shape1(3)); }
static ed_node *IDX(ed_graph *g) { return ed_input(g, "idx", ED_I32, ed_shape1(5)); }

/* A loop with carried, captured and stacked values, a random op and a nested loop. */
static ed_node *build_loop(ed_graph *g)
{
    ed_loop_builder *b = ed_loop_begin(g, 5);
    ed_graph *body = ed_loop_body(b);
    ed_node *y = ed_loop_capture(b, Y(g));
    ed_node *x = ed_loop_carried(b, X(g));
    ed_node *i = ed_cast(ed_loop_index(b), ED_F32);
    ed_node *z = ed_randn(body, ED_F32, ed_shape1(3));
    ed_node *x1 = ed_add(ed_mul(x, y), ed_add(i, z));
    ed_loop_builder *inner = ed_loop_begin(body, 2);
    ed_node *acc = ed_loop_carried(inner, x1);
    ed_node *acc1 = ed_set_name(ed_sub(acc, ed_loop_capture(inner, y)), "inner \"dbg\"");
    ed_node *x2 = ed_loop_result(ed_loop_end(inner, &acc1, 1, NULL, 0), 0);
    ed_node *stk = ed_sum(x2, 2, false);
    return ed_loop_end(b, &x2, 1, &stk, 1);
}

/* (x + y broadcast) * 0.5, cast to i32 and compared, with debug names in the body. */
static ed_node *build_fused(ed_graph *g)
{
    ed_graph *body = ed_graph_new("f \"body\"");
    ed_node *a = ed_input(body, "x0", ED_F32, ed_shape2(2, 3));
    ed_node *b = ed_input(body, "x1", ED_F32, ed_shape1(3));
    ed_node *s = ed_set_name(ed_mul(ed_add(a, ed_broadcast_to(b, ed_shape2(2, 3))), ed_scalar(body, ED_F32, 0.5)),
                             "half");
    ed_output(body, "y", ed_gt(ed_cast(s, ED_I32), ed_scalar(body, ED_I32, -2)));
    return ed_fused((ed_node *const[]){X(g), ed_input(g, "y3", ED_F32, ed_shape1(3))}, 2, body);
}

/* A tuple (loop) is bound through one of its results. */
static ed_node *value_of(ed_node *n) { return n && (ed_ops[n->op].flags & F_TUPLE) ? ed_loop_result(n, 1) : n; }

/* One node of each op with attributes away from their defaults. The switch has no
 * default, so -Wswitch flags an op added to ops.def without a case here. */
static ed_node *build_op(ed_graph *g, ed_op op)
{
    switch (op) {
    case ED_OP_INPUT: return ed_input(g, "in put", ED_F64, ed_shape3(1, 2, 3));
    case ED_OP_PARAM: return ed_param(g, "enc.fc1.w", ED_F32, ed_shape2(3, 4), (ed_init){ED_INIT_KAIMING_NORMAL, 1.5});
    case ED_OP_STATE: return ed_state(g, "adam.m", ED_I32, ed_shape1(4), (ed_init){ED_INIT_ONES, 0.25});
    case ED_OP_CONST: return CST(g, ED_F32, ed_shape2(2, 3), 0.1, -0.0, NAN, INFINITY, -INFINITY, 1e-45);
    case ED_OP_ADD: return ed_add(X(g), Y(g));
    case ED_OP_SUB: return ed_sub(X(g), Y(g));
    case ED_OP_MUL: return ed_mul(X(g), Y(g));
    case ED_OP_DIV: return ed_div(X(g), Y(g));
    case ED_OP_POW: return ed_pow(X(g), Y(g));
    case ED_OP_MAXIMUM: return ed_maximum(X(g), Y(g));
    case ED_OP_MINIMUM: return ed_minimum(X(g), Y(g));
    case ED_OP_LT: return ed_lt(X(g), Y(g));
    case ED_OP_LE: return ed_le(X(g), Y(g));
    case ED_OP_GT: return ed_gt(X(g), Y(g));
    case ED_OP_GE: return ed_ge(X(g), Y(g));
    case ED_OP_EQ: return ed_eq(X(g), Y(g));
    case ED_OP_WHERE: return ed_where(ed_gt(X(g), Y(g)), X(g), Y(g));
    case ED_OP_NEG: return ed_neg(X(g));
    case ED_OP_ABS: return ed_abs(X(g));
    case ED_OP_EXP: return ed_exp(X(g));
    case ED_OP_EXPM1: return ed_expm1(X(g));
    case ED_OP_LOG: return ed_log(X(g));
    case ED_OP_LOG1P: return ed_log1p(X(g));
    case ED_OP_SQRT: return ed_sqrt(X(g));
    case ED_OP_RSQRT: return ed_rsqrt(X(g));
    case ED_OP_SQUARE: return ed_square(X(g));
    case ED_OP_TANH: return ed_tanh(X(g));
    case ED_OP_SIGMOID: return ed_sigmoid(X(g));
    case ED_OP_RELU: return ed_relu(X(g));
    case ED_OP_LEAKY_RELU: return ed_leaky_relu(X(g), 0.2);
    case ED_OP_GELU: return ed_gelu(X(g), true);
    case ED_OP_SILU: return ed_silu(X(g));
    case ED_OP_SOFTPLUS: return ed_softplus(X(g));
    case ED_OP_SIN: return ed_sin(X(g));
    case ED_OP_COS: return ed_cos(X(g));
    case ED_OP_ERF: return ed_erf(X(g));
    case ED_OP_SIGN: return ed_sign(X(g));
    case ED_OP_CLAMP: return ed_clamp(X(g), -1, 2.5);
    case ED_OP_CAST: return ed_cast(X(g), ED_I32);
    case ED_OP_STOP_GRADIENT: return ed_stop_gradient(X(g));
    case ED_OP_SUM: return ed_sum(X(g), 2, true);
    case ED_OP_MEAN: return ed_mean(X(g), 3, false);
    case ED_OP_MAX: return ed_max(X(g), 1, true);
    case ED_OP_MIN: return ed_min(X(g), 2, false);
    case ED_OP_ARGMAX: return ed_argmax(X(g), 2, true);
    case ED_OP_ARGMIN: return ed_argmin(X(g), 1, false);
    case ED_OP_RESHAPE: return ed_reshape(X(g), ed_shape3(3, 1, 2));
    case ED_OP_TRANSPOSE: return ed_transpose(ed_input(g, "x3", ED_F32, ed_shape3(2, 3, 4)), (const int[]){2, 0, 1});
    case ED_OP_BROADCAST_TO: return ed_broadcast_to(Y(g), ed_shape3(4, 2, 3));
    case ED_OP_SLICE: return ed_slice(X(g), (const int64_t[]){1, 0}, (const int64_t[]){2, 3}, (const int64_t[]){1, 2});
    case ED_OP_CONCAT: return ed_concat((ed_node *const[]){X(g), ed_neg(X(g)), X(g)}, 3, 1);
    case ED_OP_PAD: return ed_pad(X(g), (const int64_t[]){1, 0}, (const int64_t[]){0, 2}, 0.5);
    case ED_OP_GATHER: return ed_gather(X(g), IDX(g), 1);
    case ED_OP_ONE_HOT: return ed_one_hot(IDX(g), 7, ED_F32);
    case ED_OP_SCATTER_ADD: return ed_scatter_add(X(g), IDX(g), ed_input(g, "upd", ED_F32, ed_shape2(2, 5)), 1);
    case ED_OP_MATMUL:
        return ed_matmul_t(ed_input(g, "a", ED_F32, ed_shape2(3, 2)), ed_input(g, "b", ED_F32, ed_shape2(4, 3)), true,
                           true);
    case ED_OP_CONV2D:
        return ed_conv2d(ed_input(g, "img", ED_F32, ed_shape4(2, 4, 7, 6)),
                         ed_input(g, "k", ED_F32, ed_shape4(6, 2, 3, 2)),
                         &(ed_conv_opts){.stride = {2, 1}, .padding = {1, 0}, .dilation = {1, 2}, .groups = 2});
    case ED_OP_CONV_TRANSPOSE2D:
        return ed_conv_transpose2d(ed_input(g, "img_t", ED_F32, ed_shape4(2, 4, 3, 3)),
                                   ed_input(g, "k_t", ED_F32, ed_shape4(4, 3, 3, 2)),
                                   &(ed_conv_opts){.stride = {2, 3}, .padding = {1, 0}, .output_padding = {1, 2}});
    case ED_OP_CONV2D_WEIGHT_GRAD:
        return ed_conv2d_weight_grad(
            ed_input(g, "img64", ED_F64, ed_shape4(2, 4, 7, 6)), ed_input(g, "dy", ED_F64, ed_shape4(2, 6, 4, 4)), 3, 2,
            &(ed_conv_opts){.stride = {2, 1}, .padding = {1, 0}, .dilation = {1, 2}, .groups = 2});
    case ED_OP_RAND: return ed_rand(g, ED_F32, ed_shape2(2, 3), -1, 3);
    case ED_OP_RANDN: return ed_randn(g, ED_F64, ed_shape1(4));
    case ED_OP_RANDINT: return ed_randint(g, ed_shape1(5), 3, 17);
    case ED_OP_BERNOULLI: return ed_bernoulli(g, ED_F32, ed_shape1(2), 0.25);
    case ED_OP_ALLREDUCE_SUM: return ed_allreduce(X(g), false);
    case ED_OP_ALLREDUCE_MEAN: return ed_allreduce(X(g), true);
    case ED_OP_LOOP: return build_loop(g);
    case ED_OP_GET: return ed_loop_result(build_loop(g), 0);
    case ED_OP_FUSED: return build_fused(g);
    case ED_OP_COUNT: break;
    }
    return NULL;
}

static ed_graph *parse_or_fail(const char *text, const char *file)
{
    ed_graph *g = ed_graph_parse(text, file);
    if (!g) {
        print_error("parse failed: %s\ntext:\n%s\n", ed_last_error(), text);
        fail();
    }
    assert_int_equal(ed_graph_verify(g), ED_OK);
    return g;
}

/* print(parse(print(g))) == print(g); returns the parsed graph (caller frees). */
static ed_graph *round_trip(const ed_graph *g)
{
    char *text = ed_graph_print(g);
    assert_non_null(text);
    ed_graph *back = parse_or_fail(text, "rt.edir");
    char *again = ed_graph_print(back);
    assert_non_null(again);
    assert_string_equal(again, text);
    free(text);
    free(again);
    return back;
}

static void assert_same_node(const ed_node *a, const ed_node *b)
{
    assert_int_equal(a->op, b->op);
    assert_int_equal(a->dtype, b->dtype);
    assert_true(ed_shape_eq(a->shape, b->shape));
    assert_int_equal(a->attr.stream, b->attr.stream);
    assert_int_equal(a->name == NULL, b->name == NULL);
    if (a->name) assert_string_equal(a->name, b->name);
}

static void assert_print(const ed_graph *g, const char *want)
{
    char *text = ed_graph_print(g);
    assert_non_null(text);
    assert_string_equal(text, want);
    free(text);
}

static void assert_parse_error(const char *text, const char *want)
{
    ed_clear_error();
    ed_graph *g = ed_graph_parse(text, "g.edir");
    if (g) {
        print_error("parsed, but wanted the error: %s\ntext:\n%s\n", want, text);
        ed_graph_free(g);
        fail();
    }
    assert_string_equal(ed_last_error(), want);
}

/* ---- golden prints ---------------------------------------------------------------- */

static ed_graph *mlp_graph(void)
{
    ed_graph *g = ed_graph_new("mlp");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(4, 3));
    ed_node *w = ed_param(g, "fc1.w", ED_F32, ed_shape2(3, 8), (ed_init){ED_INIT_GLOROT_UNIFORM, 0});
    ed_node *h = ed_matmul(x, w);
    ed_node *c = ed_scalar(g, ED_F32, 1.5);
    CST(g, ED_F32, ed_shape1(3), 1, 2, 3);
    ed_node *s = ed_sum(h, 2, false);
    ed_randn(g, ED_F32, ed_shape2(4, 8));
    ed_node *y = ed_set_name(ed_add(s, c), "my.debug.name");
    ed_output(g, "y", y);
    ed_update(g, "fc1.w", ed_sub(w, ed_mul_scalar(w, 0.01)));
    assert_null(ed_graph_error(g));
    return g;
}

static const char mlp_text[] = "graph @mlp {\n"
                               "  %0 = input \"x\" : f32[4,3]\n"
                               "  %1 = param \"fc1.w\" {init=glorot_uniform, scale=0} : f32[3,8]\n"
                               "  %2 = matmul %0, %1 : f32[4,8]\n"
                               "  %3 = const 1.5 : f32[]\n"
                               "  %4 = const [1, 2, 3] : f32[3]\n"
                               "  %5 = sum %2 {axes=[1], keepdims=false} : f32[4]\n"
                               "  %6 = randn {stream=1} : f32[4,8]\n"
                               "  %7 = add %5, %3 : f32[4] \"my.debug.name\"\n"
                               "  %8 = const 0.01 : f32[]\n"
                               "  %9 = mul %1, %8 : f32[3,8]\n"
                               "  %10 = sub %1, %9 : f32[3,8]\n"
                               "  out y = %7\n"
                               "  update \"fc1.w\" = %10\n"
                               "}\n";

static void test_golden_mlp(void **state)
{
    (void)state;
    ed_graph *g = mlp_graph();
    assert_print(g, mlp_text);
    ed_graph *back = round_trip(g);
    ed_graph_free(back);
    ed_graph_free(g);
}

/* The convolution attributes: printed in full, read back, and their errors. */
static void test_golden_conv(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("conv");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape4(2, 4, 7, 6)), *w = ed_input(g, "w", ED_F32, ed_shape4(6, 2, 3, 2));
    ed_conv_opts o = {.stride = {2, 1}, .padding = {1, 0}, .dilation = {1, 2}, .groups = 2};
    ed_node *y = ed_conv2d(x, w, &o);
    o.output_padding[0] = 1;
    ed_output(g, "y", y);
    ed_output(g, "xt", ed_conv_transpose2d(y, w, &o));
    ed_output(g, "dw", ed_conv2d_weight_grad(x, y, 3, 2, &o));
    const char *want =
        "graph @conv {\n"
        "  %0 = input \"x\" : f32[2,4,7,6]\n"
        "  %1 = input \"w\" : f32[6,2,3,2]\n"
        "  %2 = conv2d %0, %1 {stride=[2, 1], padding=[1, 0], dilation=[1, 2], groups=2} : f32[2,6,4,4]\n"
        "  %3 = conv_transpose2d %2, %1 {stride=[2, 1], padding=[1, 0], dilation=[1, 2], groups=2, "
        "output_padding=[1, 0]} : f32[2,4,8,6]\n"
        "  %4 = conv2d_weight_grad %0, %2 {stride=[2, 1], padding=[1, 0], dilation=[1, 2], groups=2, "
        "kernel=[3, 2]} : f32[6,2,3,2]\n"
        "  out y = %2\n"
        "  out xt = %3\n"
        "  out dw = %4\n"
        "}\n";
    assert_print(g, want);
    ed_graph_free(round_trip(g));
    char *dot = ed_graph_dot(g);
    assert_non_null(strstr(dot, "%2 conv2d s2x1 p1x0 d1x2 g2\\nf32[2,6,4,4]"));
    free(dot);
    ed_graph_free(g);
#define CONV_HEAD "graph @g {\n  %0 = input \"x\" : f32[1,2,5,5]\n  %1 = input \"w\" : f32[2,2,3,3]\n"
    assert_parse_error(CONV_HEAD "  %2 = conv2d %0, %1 {stride=[1], padding=[0, 0], dilation=[1, 1], groups=1} : "
                                 "f32[1,2,3,3]\n}",
                       "g.edir:4:23: stride has 1 entries, needs 2 (h, w)");
    assert_parse_error(CONV_HEAD
                       "  %2 = conv2d %0, %1 {stride=[1, 1], padding=[0, 0], dilation=[1, 1]} : f32[1,2,3,3]\n}",
                       "g.edir:4:71: missing attribute 'groups' for conv2d");
    assert_parse_error(
        CONV_HEAD "  %2 = conv2d %0, %1 {stride=[1, 1], padding=[0, 0], dilation=[1, 1], groups=1, "
                  "kernel=[3, 3]} : f32[1,2,3,3]\n}",
        "g.edir:4:81: unknown attribute 'kernel' for conv2d (expected stride, padding, dilation, groups)");
    assert_parse_error(CONV_HEAD "  %2 = conv2d %0, %1 {stride=[1, 1], padding=[0, 0], dilation=[0, 1], groups=1} : "
                                 "f32[1,2,3,3]\n}",
                       "g.edir:4:8: conv2d: dilation must be in [1, 2^20], got [0, 1] (at %2)");
#undef CONV_HEAD
}

/* After replace_all_uses creation order is no longer topological; the printer
 * renumbers densely in topological order. */
static void test_golden_renumbered(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("re");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape1(2));
    ed_node *a = ed_exp(x);
    ed_node *y = ed_neg(a);
    ed_node *d = ed_sqrt(x);
    assert_int_equal(ed_replace_all_uses(g, a, d), ED_OK);
    ed_output(g, "y", y);
    assert_print(g, "graph @re {\n"
                    "  %0 = input \"x\" : f32[2]\n"
                    "  %1 = exp %0 : f32[2]\n"
                    "  %2 = sqrt %0 : f32[2]\n"
                    "  %3 = neg %2 : f32[2]\n"
                    "  out y = %3\n"
                    "}\n");
    ed_graph_free(round_trip(g));
    ed_graph_free(g);
}

static void test_golden_numbers_and_names(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("odd name");
    ed_node *x = ed_input(g, "q\"b\\s\n\t\x01\xc3\xa9", ED_F32, ed_shape1(3));
    CST(g, ED_F32, ed_shape1(6), 0.1, 1.0 / 3, 1e-8, 3.4028234663852886e38, 1e-45, -0.0);
    CST(g, ED_F64, ed_shape1(4), 0.1, 1.0 / 3, 1e300, 5e-324);
    CST(g, ED_I32, ed_shape1(3), -7, 2147483647, 0);
    CST(g, ED_F32, ed_shape1(3), NAN, INFINITY, -INFINITY);
    ed_node *z = ed_fill(g, ED_F32, ed_shape2(512, 2), 0);
    ed_node *l = ed_set_name(ed_leaky_relu(x, 0.1), "");
    ed_output(g, "1st", l);
    ed_output(g, "a.b_c", z);
    ed_output(g, "with space", x);
    ed_node *mm = ed_matmul_t(ed_input(g, "m", ED_F32, ed_shape2(2, 2)), ed_input(g, "m", ED_F32, ed_shape2(2, 2)),
                              true, false);
    ed_output(g, "mm", mm);
    assert_null(ed_graph_error(g));
    assert_print(g, "graph @\"odd name\" {\n"
                    "  %0 = input \"q\\\"b\\\\s\\n\\t\\x01\\xc3\\xa9\" : f32[3]\n"
                    "  %1 = const [0.1, 0.33333334, 1e-08, 3.4028235e+38, 1.4013e-45, -0] : f32[6]\n"
                    "  %2 = const [0.1, 0.3333333333333333, 1e+300, 4.94065645841247e-324] : f64[4]\n"
                    "  %3 = const [-7, 2147483647, 0] : i32[3]\n"
                    "  %4 = const [nan, inf, -inf] : f32[3]\n"
                    "  %5 = const 0 : f32[512,2]\n"
                    "  %6 = leaky_relu %0 {alpha=0.1} : f32[3] \"\"\n"
                    "  %7 = input \"m\" : f32[2,2]\n"
                    "  %8 = matmul %7, %7 {ta=true} : f32[2,2]\n"
                    "  out \"1st\" = %6\n"
                    "  out a.b_c = %5\n"
                    "  out \"with space\" = %0\n"
                    "  out mm = %8\n"
                    "}\n");
    ed_graph *back = round_trip(g);
    assert_string_equal(back->name, "odd name");
    assert_string_equal(back->nodes[0]->attr.name, "q\"b\\s\n\t\x01\xc3\xa9");
    assert_true(signbit(back->nodes[1]->attr.data[5]));
    assert_true(isnan(back->nodes[4]->attr.data[0]));
    ed_graph_free(back);
    ed_graph_free(g);
}

static void test_failed_graph_prints_its_error(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("bad");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape1(2));
    ed_add(x, ed_input(g, "z", ED_F32, ed_shape1(3)));
    char *text = ed_graph_print(g);
    assert_non_null(text);
    const char *want = "# error: add: shapes do not broadcast";
    assert_true(strncmp(text, want, strlen(want)) == 0);
    free(text);
    ed_graph_free(g);
}

/* ed_sb_printf formats into the spare room and grows only for what does not fit: short
 * and long pieces (past any spare room) land whole, in order, NUL-terminated. */
static void test_strbuf_printf_grows(void **state)
{
    (void)state;
    char want[4096] = "", piece[512];
    memset(piece, 'a', 300);
    piece[300] = '\0';
    ed_strbuf b = {0};
    for (int i = 0; i < 40; i++) {
        const char *tail = i % 7 == 3 ? piece : "";
        ed_sb_printf(&b, "%d:%s;", i, tail);
        size_t at = strlen(want);
        snprintf(want + at, sizeof want - at, "%d:%s;", i, tail);
    }
    assert_false(b.failed);
    assert_int_equal(b.len, strlen(want));
    assert_string_equal(b.s, want);
    ed_sb_free(&b);
}

static void test_cycle_and_null(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("cyc");
    ed_node *a = ed_neg(ed_input(g, "x", ED_F32, ed_shape1(2)));
    ed_node *c = ed_neg(ed_neg(a));
    assert_int_equal(ed_replace_all_uses(g, a, c), ED_OK); /* c's input now uses c */
    assert_null(ed_graph_print(g));
    assert_string_equal(ed_last_error(), "graph @cyc has a cycle");
    assert_null(ed_graph_dot(g));
    assert_string_equal(ed_last_error(), "graph @cyc has a cycle");
    ed_graph_free(g);
    assert_null(ed_graph_print(NULL));
    assert_null(ed_graph_dot(NULL));
    assert_int_equal(ed_graph_write(NULL, stdout), ED_ERR);
    assert_null(ed_graph_parse(NULL, "n.edir"));
    assert_string_equal(ed_last_error(), "n.edir: no text (NULL)");
    assert_null(ed_graph_read_file(NULL));

    /* A successful print leaves an earlier message alone. */
    ed_fail("earlier");
    g = mlp_graph();
    free(ed_graph_print(g));
    assert_string_equal(ed_last_error(), "earlier");
    ed_graph_free(g);
}

/* ---- round trips -------------------------------------------------------------------- */

/* Every op row, each in its own graph, with a debug name where the op takes one. */
static void test_round_trip_every_op(void **state)
{
    (void)state;
    for (int op = 0; op < ED_OP_COUNT; op++) {
        char name[64];
        snprintf(name, sizeof name, "op_%s", ed_op_name((ed_op)op));
        ed_graph *g = ed_graph_new(name);
        ed_node *n = build_op(g, (ed_op)op);
        if (!n) print_error("op %s: %s\n", ed_op_name((ed_op)op), ed_graph_error(g));
        assert_non_null(n);
        assert_int_equal(n->op, op); /* the test covers this row */
        if (ed_text_has_debug_name(n->op)) ed_set_name(n, "dbg \"n\"\n");
        ed_output(g, "y", value_of(n));
        ed_graph *back = round_trip(g);
        assert_same_node(ed_graph_output(g, "y"), ed_graph_output(back, "y"));
        ed_graph_free(back);
        ed_graph_free(g);
    }
}

/* All ops in one graph, plus bindings of every kind. */
static ed_graph *every_op_graph(void)
{
    ed_graph *g = ed_graph_new("every");
    for (int op = 0; op < ED_OP_COUNT; op++) {
        char out[32];
        snprintf(out, sizeof out, "o%d", op);
        ed_output(g, out,
                  value_of(ed_set_name(build_op(g, (ed_op)op), ed_text_has_debug_name((ed_op)op) ? out : NULL)));
    }
    ed_node *w = ed_graph_leaf(g, ED_OP_PARAM, "enc.fc1.w");
    ed_update(g, "enc.fc1.w", ed_mul_scalar(w, 0.5));
    ed_node *m = ed_graph_leaf(g, ED_OP_STATE, "adam.m");
    ed_update(g, "adam.m", ed_add(m, ed_scalar(g, ED_I32, 1)));
    assert_null(ed_graph_error(g));
    return g;
}

static void test_round_trip_all_ops_in_one_graph(void **state)
{
    (void)state;
    ed_graph *g = every_op_graph();
    bool seen[ED_OP_COUNT] = {0};
    for (int i = 0; i < g->nnodes; i++) seen[g->nodes[i]->op] = true;
    for (int op = 0; op < ED_OP_COUNT; op++) {
        if (!seen[op]) print_error("op %s is not covered\n", ed_op_name((ed_op)op));
        assert_true(seen[op]);
    }
    ed_graph *back = round_trip(g);
    assert_int_equal(back->nnodes, g->nnodes);
    for (int i = 0; i < g->nnodes; i++) assert_same_node(g->nodes[i], back->nodes[i]);
    assert_int_equal(back->next_stream, g->next_stream);
    ed_graph_free(back);
    ed_graph_free(g);
}

static void test_parse_free_form(void **state)
{
    (void)state;
    const char *text = "# a hand-written graph\r\n"
                       "graph   @ddpm.train{%x0=input \"x0\":f32[ 512 , 2 ]   # data\n"
                       "\t%h.1 = randn {stream=42} : f32[512,2] \"noise\"\n"
                       "  %w1_new = add %x0,%h.1 : f32[512,2]\n"
                       "  %c = const [] : f32[0]\n"
                       "  %b = bernoulli {p=+2.5e-1, stream=7} : i32[] \n"
                       "  out \"x\" = %w1_new out loss=%h.1\n"
                       "}   # done\n";
    ed_graph *g = parse_or_fail(text, "free.edir");
    assert_string_equal(g->name, "ddpm.train");
    ed_node *r = g->nodes[1];
    assert_int_equal(r->op, ED_OP_RANDN);
    assert_int_equal(r->attr.stream, 42);
    assert_string_equal(r->name, "noise");
    assert_int_equal(g->nodes[4]->attr.stream, 7);
    assert_true(g->nodes[4]->attr.p == 0.25);
    assert_int_equal(g->nodes[3]->attr.ndata, 0);
    assert_ptr_equal(ed_graph_output(g, "x"), g->nodes[2]);
    /* New random ops continue after the largest parsed stream id. */
    assert_int_equal(ed_randn(g, ED_F32, ed_shape0())->attr.stream, 43);
    ed_graph_free(g);
    ed_graph_free(parse_or_fail("graph @e {}", NULL));
}

/* Parsed values are stored as the dtype holds them, as ed_const does. */
static void test_parse_rounds_values(void **state)
{
    (void)state;
    ed_graph *g = parse_or_fail("graph @v {\n"
                                "  %0 = const [0.1, 3.4028235e38, 1e-50] : f32[3]\n"
                                "  %1 = input \"x\" : i32[2]\n"
                                "  %2 = pad %1 {lo=[1], hi=[0], value=2.75} : i32[3]\n"
                                "}\n",
                                "v.edir");
    const double *d = g->nodes[0]->attr.data;
    assert_true(d[0] == (double)0.1f);
    assert_true(d[1] == (double)3.4028235e38f);
    assert_true(d[2] == 0);
    assert_true(g->nodes[2]->attr.pad_value == 2);
    ed_graph_free(g);
}

static void test_large_graph(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("chain");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape1(4));
    for (int i = 0; i < 20000; i++) x = ed_add(x, ed_scalar(g, ED_F32, i));
    ed_output(g, "y", x);
    ed_graph_free(round_trip(g));
    ed_graph_free(g);
}

/* ---- parse errors --------------------------------------------------------------------- */

#define HEAD "graph @g {\n  %0 = input \"x\" : f32[4,8]\n"

static void test_errors_structure(void **state)
{
    (void)state;
    assert_parse_error("", "g.edir:1:1: unexpected end of input: expected 'graph'");
    assert_parse_error("grph @g {}", "g.edir:1:1: expected 'graph', got 'grph'");
    assert_parse_error("graph g {}", "g.edir:1:7: expected '@' and the graph name, got 'g'");
    assert_parse_error("graph @ g {}", "g.edir:1:8: expected the graph name after '@', got ' '");
    assert_parse_error("graph @g }", "g.edir:1:10: expected '{', got '}'");
    assert_parse_error(HEAD "\n  %1 = relu %0 : f32[4,8]\n\n", "g.edir:6:1: unexpected end of input: expected '}'");
    assert_parse_error(HEAD "}\n}", "g.edir:4:1: expected the end of input after the graph's '}'");
    assert_parse_error(HEAD "  output y = %0\n}",
                       "g.edir:3:3: expected a statement (%name = ..., out or update) or '}', got 'output'");
    assert_parse_error(HEAD "  % = relu %0 : f32[4,8]\n}", "g.edir:3:3: expected a value name after '%'");
    assert_parse_error(HEAD "  %1 relu %0 : f32[4,8]\n}", "g.edir:3:6: expected '=' after the value name, got 'relu'");
    assert_parse_error(HEAD "  %1 = 3 : f32[]\n}", "g.edir:3:8: expected an op name, got '3'");
    assert_parse_error(HEAD "  %1 = foo %0 : f32[4,8]\n}", "g.edir:3:8: unknown op 'foo'");
    assert_parse_error(HEAD "  %1 = relu %0 f32[4,8]\n}", "g.edir:3:16: expected ':' and the type, got 'f32'");
    assert_parse_error(HEAD "  %1 = relu %0 : f32[4,8]\n  %0 = relu %1 : f32[4,8]\n}",
                       "g.edir:4:3: %0 is already defined (at 2:3)");
    assert_parse_error(HEAD "  %1 = add %0, %q : f32[4,8]\n}", "g.edir:3:16: undefined value %q");
    assert_parse_error(HEAD "  %1 = add %0, : f32[4,8]\n}", "g.edir:3:16: expected a value (%name) after ',', got ':'");
    assert_parse_error(HEAD "  out = %0\n}", "g.edir:3:7: expected the output's name, got '='");
    assert_parse_error(HEAD "  out y %0\n}", "g.edir:3:9: expected '=', got '%'");
    assert_parse_error(HEAD "  out y = %0\n  out y = %0\n}", "g.edir:4:7: out \"y\" is bound twice");
    assert_parse_error(HEAD "  update \"w\" = %0\n}",
                       "g.edir:3:10: update \"w\": no param or state of that name in @g");
    assert_parse_error(HEAD "  %1 = input \"x\" : f32[4,8]\n}", "g.edir:3:14: input \"x\" is already defined");
    assert_parse_error(HEAD "  %1 = input \"y\" : f32[4,8] \"dbg\"\n}",
                       "g.edir:3:29: input takes no debug name (its binding name is its name)");
    assert_parse_error(HEAD "  %1 = relu %0 : f32[4,8]\n  # \xff\x00",
                       "g.edir:4:6: unexpected end of input: expected '}'");
}

static void test_errors_types_and_numbers(void **state)
{
    (void)state;
    assert_parse_error(HEAD "  %1 = sum %0 {axes=[1], keepdims=false} : f32[4,8]\n}",
                       "g.edir:3:44: type annotation f32[4,8] does not match the inferred f32[4]");
    assert_parse_error(HEAD "  %1 = cast %0 : i32[4]\n}",
                       "g.edir:3:18: type annotation i32[4] does not match the inferred i32[4,8]");
    assert_parse_error(HEAD "  %1 = relu %0 : f8[4,8]\n}",
                       "g.edir:3:18: bad dtype 'f8' (expected f32, i32, f64, bf16 or f16)");
    assert_parse_error(HEAD "  %1 = relu %0 : [4,8]\n}", "g.edir:3:18: expected a type such as f32[4,8], got '['");
    assert_parse_error(HEAD "  %1 = relu %0 : f32 4\n}",
                       "g.edir:3:22: expected '[' and the shape after the dtype, got '4'");
    assert_parse_error(HEAD "  %1 = relu %0 : f32[4;8]\n}", "g.edir:3:23: expected ',' or ']' in the shape, got ';'");
    assert_parse_error(HEAD "  %1 = input \"z\" : f32[1,1,1,1,1,1,1]\n}",
                       "g.edir:3:36: rank > 6: a shape has at most 6 dimensions");
    assert_parse_error(HEAD "  %1 = input \"z\" : f32[-1]\n}",
                       "g.edir:3:24: dimension -1 is out of range 0..9007199254740992");
    assert_parse_error(HEAD "  %1 = input \"z\" : f32[99999999999999999999]\n}",
                       "g.edir:3:24: dimension 99999999999999999999 is out of range 0..9007199254740992");
    assert_parse_error(HEAD "  %1 = input \"z\" : f32[2.5]\n}", "g.edir:3:24: expected a dimension, got '2.5'");
    /* Sizes past 2^40 elements are refused where they arise, so no byte count overflows. */
    assert_parse_error(
        HEAD "  %1 = input \"z\" : f32[9007199254740992,512]\n}",
        "g.edir:3:8: input: gives f32[9007199254740992,512]: dimension 0 is over the limit of 2^40 (at %1)");
    assert_parse_error(HEAD "  %1 = input \"z\" : f32[1048576,1048577]\n}",
                       "g.edir:3:8: input: gives f32[1048576,1048577]: over the limit of 2^40 elements (at %1)");
    assert_parse_error(HEAD "  %1 = const 1.2.3 : f32[]\n}", "g.edir:3:14: bad number '1.2.3'");
    assert_parse_error(HEAD "  %1 = const 1e : f32[]\n}", "g.edir:3:14: bad number '1e'");
    assert_parse_error(HEAD "  %1 = const 0x10 : f32[]\n}", "g.edir:3:14: bad number '0x10'");
    assert_parse_error(HEAD "  %1 = const infinity : f32[]\n}", "g.edir:3:14: bad number 'infinity'");
    assert_parse_error(HEAD "  %1 = const - 1 : f32[]\n}", "g.edir:3:14: bad number '-'");
    assert_parse_error(HEAD "  %1 = const 1e999 : f64[]\n}", "g.edir:3:14: number out of range: 1e999");
    assert_parse_error(HEAD "  %1 = const : f32[]\n}", "g.edir:3:14: expected a value or a [list] of values, got ':'");
    assert_parse_error(HEAD "  %1 = const [1, 2 : f32[2]\n}",
                       "g.edir:3:20: expected ',' or ']' in the value list, got ':'");
    assert_parse_error(HEAD "  %1 = const [1, 1.5] : i32[2]\n}", "g.edir:3:18: value 1.5 is not an i32 integer");
    assert_parse_error(HEAD "  %1 = const 1e39 : f32[]\n}", "g.edir:3:14: value 1e+39 is out of the f32 range");
    assert_parse_error(HEAD "  %1 = const [1, 2, 3] : f32[2,2]\n}",
                       "g.edir:3:8: const: has 3 values for f32[2,2] (give 1 value or 4) (at %1)");
    assert_parse_error(HEAD "  %1 = input \"z\" : f32[3]\n  %2 = add %0, %1 : f32[4,8]\n}",
                       "g.edir:4:8: add: shapes do not broadcast: f32[4,8] vs f32[3] (at %2)");
    assert_parse_error(HEAD "  %1 = relu %0, %0 : f32[4,8]\n}", "g.edir:3:8: relu: takes 1 inputs, got 2 (at %1)");
    assert_parse_error(HEAD "  %1 = input \"\" : f32[4,8]\n}", "g.edir:3:8: input: needs a non-empty name (at %1)");
}

static void test_errors_attributes(void **state)
{
    (void)state;
    assert_parse_error(HEAD "  %1 = sum %0 {axis=1, keepdims=false} : f32[4]\n}",
                       "g.edir:3:16: unknown attribute 'axis' for sum (expected axes, keepdims)");
    assert_parse_error(HEAD "  %1 = relu %0 {alpha=1} : f32[4,8]\n}",
                       "g.edir:3:17: unknown attribute 'alpha': relu takes none");
    assert_parse_error(HEAD "  %1 = sum %0 {axes=[1]} : f32[4]\n}",
                       "g.edir:3:26: missing attribute 'keepdims' for sum");
    assert_parse_error(HEAD "  %1 = sum %0 : f32[4]\n}", "g.edir:3:15: missing attribute 'axes' for sum");
    assert_parse_error(HEAD "  %1 = sum %0 {axes=[1], axes=[1], keepdims=true} : f32[4,1]\n}",
                       "g.edir:3:26: attribute 'axes' is given twice");
    assert_parse_error(HEAD "  %1 = sum %0 {axes=[1, 1], keepdims=true} : f32[4,1]\n}",
                       "g.edir:3:25: axis 1 is listed twice");
    assert_parse_error(HEAD "  %1 = sum %0 {axes=[6], keepdims=true} : f32[4,1]\n}",
                       "g.edir:3:22: axis 6 is out of range 0..5");
    assert_parse_error(HEAD "  %1 = sum %0 {axes=[1] keepdims=true} : f32[4,1]\n}",
                       "g.edir:3:25: expected ',' or '}', got 'keepdims'");
    assert_parse_error(HEAD "  %1 = sum %0 {axes=[1], keepdims=yes} : f32[4,1]\n}",
                       "g.edir:3:35: expected true or false, got 'yes'");
    assert_parse_error(HEAD "  %1 = sum %0 {axes 1} : f32[4,1]\n}",
                       "g.edir:3:21: expected '=' after the attribute name, got '1'");
    assert_parse_error(HEAD "  %1 = sum %0 {axes=1, keepdims=true} : f32[4,1]\n}",
                       "g.edir:3:21: expected '[' and a list of integers, got '1'");
    assert_parse_error(HEAD "  %1 = transpose %0 {perm=[1, 0, 2]} : f32[8,4]\n}",
                       "g.edir:3:22: perm has 3 entries but the input is f32[4,8] (rank 2)");
    assert_parse_error(HEAD "  %1 = transpose %0 {perm=[1, 1]} : f32[8,4]\n}",
                       "g.edir:3:8: transpose: perm is not a permutation of 0..1 for f32[4,8] (at %1)");
    assert_parse_error(HEAD "  %1 = slice %0 {start=[0,0,0,0,0,0,0]} : f32[4,8]\n}",
                       "g.edir:3:37: too many entries (at most 6)");
    assert_parse_error(HEAD "  %1 = gelu %0 {approx=fast} : f32[4,8]\n}",
                       "g.edir:3:24: expected erf or tanh, got 'fast'");
    assert_parse_error("graph @g {\n  %0 = param \"w\" {init=he, scale=1} : f32[2]\n}",
                       "g.edir:2:24: unknown initializer 'he' (expected one of zeros, ones, normal, uniform, "
                       "glorot_uniform, glorot_normal, kaiming_uniform, kaiming_normal)");
    assert_parse_error("graph @g {\n  %0 = randn {stream=0} : f32[2]\n}",
                       "g.edir:2:22: stream id 0 is out of range 1..4294967295");
    assert_parse_error("graph @g {\n  %0 = randn {stream=1.5} : f32[2]\n}",
                       "g.edir:2:22: expected a stream id, got '1.5'");
    assert_parse_error("graph @g {\n  %0 = randint {lo=0, hi=1.5, stream=1} : i32[2]\n}",
                       "g.edir:2:8: randint: needs integers lo < hi within i32, got lo=0 hi=1.5 (at %0)");
    assert_parse_error("graph @g {\n  %0 = randn {stream=1} : i32[2]\n}",
                       "g.edir:2:8: randn: needs a float dtype, got i32 (at %0)");
}

static void test_errors_strings(void **state)
{
    (void)state;
    assert_parse_error("graph @g {\n  %0 = input \"x : f32[2]\n}", "g.edir:2:14: unterminated string");
    assert_parse_error("graph @g {\n  %0 = input \"x", "g.edir:2:14: unterminated string");
    assert_parse_error("graph @g {\n  %0 = input \"x\\", "g.edir:2:14: unterminated string");
    assert_parse_error("graph @g {\n  %0 = input \"a\\qb\" : f32[2]\n}",
                       "g.edir:2:16: bad escape '\\q' in string (use \\\" \\\\ \\n \\t or \\xHH)");
    assert_parse_error("graph @g {\n  %0 = input \"a\\x4\" : f32[2]\n}",
                       "g.edir:2:16: bad escape in string: \\x needs two hex digits");
    assert_parse_error("graph @g {\n  %0 = input \"a\\x00\" : f32[2]\n}", "g.edir:2:16: a string cannot hold \\x00");
    assert_parse_error("graph @g {\n  %0 = input \"a\rb\" : f32[2]\n}",
                       "g.edir:2:16: control byte \\x0d in string (write it as an escape)");
    assert_parse_error("graph @g {\n  %0 = input x : f32[2]\n}",
                       "g.edir:2:14: expected the quoted name of the leaf, got 'x'");
}

/* ---- fuzzing -------------------------------------------------------------------------- */

/* A message of the form "FILE:LINE:COL: text" with LINE and COL >= 1. */
static void assert_located(const char *file)
{
    const char *e = ed_last_error();
    size_t n = strlen(file);
    assert_true(strncmp(e, file, n) == 0 && e[n] == ':');
    unsigned long line = 0, col = 0;
    int used = 0;
    assert_int_equal(sscanf(e + n, ":%lu:%lu: %n", &line, &col, &used), 2);
    assert_true(line >= 1 && col >= 1 && used > 0 && e[n + (size_t)used] != '\0');
    assert_null(strchr(e, '\n'));
}

static void test_truncations(void **state)
{
    (void)state;
    ed_graph *g = every_op_graph();
    char *text = ed_graph_print(g);
    size_t len = strlen(text), close = strrchr(text, '}') - text;
    for (size_t n = 0; n <= len; n++) {
        char *cut = malloc(n + 1); /* exactly sized, so ASan sees any read past the end */
        memcpy(cut, text, n);
        cut[n] = '\0';
        ed_graph *h = ed_graph_parse(cut, "t.edir");
        if (n <= close) {
            if (h) print_error("a prefix of %zu bytes parsed\n", n);
            assert_null(h);
            assert_located("t.edir");
        } else {
            assert_non_null(h);
        }
        ed_graph_free(h);
        free(cut);
    }
    free(text);
    ed_graph_free(g);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15u;
static unsigned rnd(unsigned n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (unsigned)(rng_state % n);
}

/* Replace, delete, insert or duplicate a few bytes (the buffer has room to grow). */
static char *mutate(const char *text)
{
    static const char alphabet[] = "%,{}[]:=\"\\#-+.0123456789eEnafx _\n\t\x01\x7f\x80\xff";
    size_t len = strlen(text);
    char *s = malloc(2 * len + 64);
    memcpy(s, text, len + 1);
    for (int k = 1 + (int)rnd(3); k > 0 && len > 0; k--) {
        size_t i = rnd((unsigned)len), n = rnd(16) + 1;
        switch (rnd(4)) {
        case 0: s[i] = alphabet[rnd(sizeof alphabet - 1)]; break;
        case 1:
            memmove(s + i, s + i + 1, len - i);
            len--;
            break;
        case 2:
            memmove(s + i + 1, s + i, len - i + 1);
            s[i] = alphabet[rnd(sizeof alphabet - 1)];
            len++;
            break;
        default:
            if (i + n > len) n = len - i;
            memmove(s + i + n, s + i, len - i + 1); /* s[i..i+n) now appears twice */
            len += n;
        }
    }
    return s;
}

/* Whatever a mutated text gives, it is a clean error or a graph that round-trips. */
static void test_mutations(void **state)
{
    (void)state;
    ed_graph *g = every_op_graph();
    char *text = ed_graph_print(g);
    int parsed = 0;
    for (int i = 0; i < 3000; i++) {
        char *m = mutate(text);
        ed_graph *h = ed_graph_parse(m, "m.edir");
        if (h) {
            parsed++;
            ed_graph_free(round_trip(h));
            ed_graph_free(h);
        } else {
            assert_located("m.edir");
        }
        free(m);
    }
    assert_true(parsed > 0); /* some mutations are harmless, e.g. inside a name */
    free(text);
    ed_graph_free(g);
}

/* ---- files and DOT ----------------------------------------------------------------------- */

static void test_files(void **state)
{
    (void)state;
    const char *path = ED_BINARY_DIR "/test_text_tmp.edir";
    ed_graph *g = mlp_graph();
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(ed_graph_write(g, f), ED_OK);
    fclose(f);
    ed_graph *back = ed_graph_read_file(path);
    assert_non_null(back);
    assert_print(back, mlp_text);
    ed_graph_free(back);
    ed_graph_free(g);

    f = fopen(path, "wb");
    assert_non_null(f);
    fwrite("graph @g {\n\0}\n", 1, 14, f);
    fclose(f);
    assert_null(ed_graph_read_file(path));
    assert_string_equal(ed_last_error(), ED_BINARY_DIR "/test_text_tmp.edir:2:1: expected a statement (%name = ..., "
                                                       "out or update) or '}', got '\\x00'");
    remove(path);

    assert_null(ed_graph_read_file(ED_BINARY_DIR "/no_such_file.edir"));
    assert_string_equal(ed_last_error(), ED_BINARY_DIR "/no_such_file.edir: cannot open: No such file or directory");
    assert_null(ed_graph_read_file(ED_BINARY_DIR));
    assert_string_equal(ed_last_error(), ED_BINARY_DIR ": cannot read: Is a directory");
}

static void assert_has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)); p++)
        if ((p == text || p[-1] == '\n') && p[n] == '\n') return;
    print_error("missing line: %s\nin:\n%s\n", line, text);
    fail();
}

static void test_dot(void **state)
{
    (void)state;
    ed_graph *g = mlp_graph();
    ed_state(g, "ema", ED_F32, ed_shape0(), (ed_init){0});
    ed_input(g, "q\"\\", ED_F32, ed_shape0());
    char *dot = ed_graph_dot(g);
    assert_non_null(dot);
    assert_true(strncmp(dot, "digraph \"mlp\" {\n", 16) == 0);
    assert_has_line(dot, "  n0 [label=\"%0 input \\\"x\\\"\\nf32[4,3]\", fillcolor=lightblue];");
    assert_has_line(dot, "  n1 [label=\"%1 param \\\"fc1.w\\\"\\nf32[3,8]\", fillcolor=gold];");
    assert_has_line(dot, "  n2 [label=\"%2 matmul\\nf32[4,8]\", fillcolor=white];");
    assert_has_line(dot, "  n0 -> n2;");
    assert_has_line(dot, "  n1 -> n2;");
    assert_has_line(dot, "  n3 [label=\"%3 const 1.5\\nf32[]\", fillcolor=lightgray];");
    assert_has_line(dot, "  n4 [label=\"%4 const\\nf32[3]\", fillcolor=lightgray];");
    assert_has_line(dot, "  n6 [label=\"%6 randn\\nf32[4,8]\", fillcolor=pink];");
    assert_has_line(dot, "  n7 [label=\"%7 add\\nf32[4]\\n\\\"my.debug.name\\\"\", fillcolor=white];");
    assert_has_line(dot, "  n11 [label=\"%11 state \\\"ema\\\"\\nf32[]\", fillcolor=orange];");
    assert_has_line(dot, "  n12 [label=\"%12 input \\\"q\\\\\\\"\\\\\\\\\\\"\\nf32[]\", fillcolor=lightblue];");
    assert_has_line(dot, "  out0 [shape=ellipse, label=\"out y\", fillcolor=white];");
    assert_has_line(dot, "  n7 -> out0;");
    assert_has_line(dot, "  update0 [shape=ellipse, label=\"update \\\"fc1.w\\\"\", fillcolor=white];");
    assert_has_line(dot, "  n10 -> update0 [style=dashed];");
    size_t len = strlen(dot);
    assert_string_equal(dot + len - 2, "}\n");
    free(dot);
    ed_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_mlp),
        cmocka_unit_test(test_golden_conv),
        cmocka_unit_test(test_golden_renumbered),
        cmocka_unit_test(test_golden_numbers_and_names),
        cmocka_unit_test(test_failed_graph_prints_its_error),
        cmocka_unit_test(test_cycle_and_null),
        cmocka_unit_test(test_strbuf_printf_grows),
        cmocka_unit_test(test_round_trip_every_op),
        cmocka_unit_test(test_round_trip_all_ops_in_one_graph),
        cmocka_unit_test(test_parse_free_form),
        cmocka_unit_test(test_parse_rounds_values),
        cmocka_unit_test(test_large_graph),
        cmocka_unit_test(test_errors_structure),
        cmocka_unit_test(test_errors_types_and_numbers),
        cmocka_unit_test(test_errors_attributes),
        cmocka_unit_test(test_errors_strings),
        cmocka_unit_test(test_truncations),
        cmocka_unit_test(test_mutations),
        cmocka_unit_test(test_files),
        cmocka_unit_test(test_dot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
