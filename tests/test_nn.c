/* nn blocks: parameter names and shapes, output shapes, sticky errors that name the
 * block, and values on the interpreter against hand-computed numbers (the multi-head
 * attention reference came from a plain-loop Python script, not from this code). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "frontend/nn.h"
#include "passes/autodiff.h"
#include "support/interp_check.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define F32TOL 1e-6
#define F64TOL 1e-12

static ed_graph *g;

static int setup(void **state)
{
    (void)state;
    g = ed_graph_new("nn");
    return g ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    ed_graph_free(g);
    return 0;
}

/* ---- helpers ------------------------------------------------------------------------ */

static void assert_error_has(const char *part)
{
    const char *e = ed_graph_error(g);
    if (!e || !strstr(e, part)) fail_msg("graph error \"%s\" lacks \"%s\"", e ? e : "(none)", part);
}

/* The param named name exists with this dtype, shape and initializer. */
static void assert_param(const char *name, ed_dtype dt, ed_shape s, ed_init_kind init)
{
    ed_node *p = ed_graph_leaf(g, ED_OP_PARAM, name);
    if (!p) fail_msg("no param \"%s\"", name);
    assert_int_equal(p->dtype, dt);
    assert_true(ed_shape_eq(p->shape, s));
    assert_int_equal(p->attr.init.kind, init);
}

static void assert_shape(const ed_node *n, ed_dtype dt, ed_shape s)
{
    assert_non_null(n);
    assert_int_equal(n->dtype, dt);
    assert_true(ed_shape_eq(n->shape, s));
}

static int count_params(void)
{
    int n = 0;
    for (int i = 0; i < g->nnodes; i++) n += g->nodes[i]->op == ED_OP_PARAM;
    return n;
}

static void put_at(ed_store *st, const char *name, ed_dtype dt, ed_shape s, const double *v, int64_t n)
{
    assert_int_equal(n, ed_shape_numel(s));
    ed_tensor *t = ed_tensor_new(dt, s);
    assert_non_null(t);
    for (int64_t i = 0; i < n; i++) ed_tensor_set(t, i, v[i]);
    assert_int_equal(ed_store_put(st, name, t, true), ED_OK);
}
#define PUT(st, name, dt, s, ...)                                  \
    put_at((st), (name), (dt), (s), (const double[]){__VA_ARGS__}, \
           (int64_t)(sizeof((const double[]){__VA_ARGS__}) / sizeof(double)))

/* Output y of g run once on the interpreter with store st; the caller frees the copy. */
static ed_tensor *run_y(ed_store *st, ed_node *y)
{
    if (ed_graph_error(g)) fail_msg("graph error: %s", ed_graph_error(g));
    ed_output(g, "y", y);
    ed_program *p = ed_compile(g, st, &(ed_compile_opts){.backend = ED_BACKEND_INTERP});
    if (!p || ed_run(p, NULL, 0) != ED_OK) fail_msg("compile/run: %s", ed_last_error());
    ed_tensor *t = ed_tensor_copy(ed_program_output(p, "y"));
    ed_program_free(p);
    assert_non_null(t);
    return t;
}

static void expect_at(const ed_tensor *t, const double *want, int64_t n, double tol, int line)
{
    if (ed_tensor_numel(t) != n)
        fail_msg("line %d: %lld values, want %lld", line, (long long)ed_tensor_numel(t), (long long)n);
    for (int64_t i = 0; i < n; i++) {
        double got = ed_tensor_get(t, i);
        if (!(fabs(got - want[i]) <= tol * fmax(1.0, fabs(want[i]))))
            fail_msg("line %d: element %lld: got %.17g, want %.17g", line, (long long)i, got, want[i]);
    }
}
#define EXPECT(t, tol, ...)                                                                                          \
    expect_at((t), (const double[]){__VA_ARGS__}, (int64_t)(sizeof((const double[]){__VA_ARGS__}) / sizeof(double)), \
              (tol), __LINE__)

/* ---- activations ------------------------------------------------------------------------ */

static void test_activation_names(void **state)
{
    (void)state;
    for (int i = 0; i < ED_ACT_COUNT; i++) {
        ed_activation a = ED_ACT_COUNT;
        assert_true(ed_activation_parse(ed_activation_name((ed_activation)i), &a));
        assert_int_equal(a, i);
    }
    assert_string_equal(ed_activation_name(ED_ACT_GELU_TANH), "gelu_tanh");
    assert_string_equal(ed_activation_name(ED_ACT_LEAKY_RELU), "leaky_relu");
    assert_string_equal(ed_activation_name((ed_activation)99), "?");
    ed_activation a = ED_ACT_RELU;
    assert_false(ed_activation_parse("swish", &a));
    assert_false(ed_activation_parse(NULL, &a));
    assert_int_equal(a, ED_ACT_RELU);
}

static void test_activate_ops(void **state)
{
    (void)state;
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(2, 3));
    assert_ptr_equal(ed_activate(x, ED_ACT_NONE), x);
    const ed_op ops[ED_ACT_COUNT] = {
        [ED_ACT_RELU] = ED_OP_RELU,
        [ED_ACT_SILU] = ED_OP_SILU,
        [ED_ACT_GELU] = ED_OP_GELU,
        [ED_ACT_GELU_TANH] = ED_OP_GELU,
        [ED_ACT_TANH] = ED_OP_TANH,
        [ED_ACT_SIGMOID] = ED_OP_SIGMOID,
        [ED_ACT_LEAKY_RELU] = ED_OP_LEAKY_RELU,
        [ED_ACT_SOFTPLUS] = ED_OP_SOFTPLUS,
    };
    for (int i = 1; i < ED_ACT_COUNT; i++) {
        ed_node *y = ed_activate(x, (ed_activation)i);
        assert_non_null(y);
        assert_int_equal(y->op, ops[i]);
        assert_ptr_equal(y->in[0], x);
    }
    assert_int_equal(ed_activate(x, ED_ACT_GELU)->attr.approx, 0);
    assert_int_equal(ed_activate(x, ED_ACT_GELU_TANH)->attr.approx, 1);
    assert_true(ed_activate(x, ED_ACT_LEAKY_RELU)->attr.alpha == 0.01);
    assert_null(ed_activate(NULL, ED_ACT_RELU));
    assert_null(ed_graph_error(g));
    assert_null(ed_activate(x, (ed_activation)42));
    assert_error_has("activate: unknown activation 42");
}

static void test_activate_values(void **state)
{
    (void)state;
    ed_node *x = CST(g, ED_F64, ed_shape1(3), -2, 0, 3);
    CHECK(ed_activate(x, ED_ACT_LEAKY_RELU), ED_F64, ed_shape1(3), F64TOL, -0.02, 0, 3);
    CHECK(ed_activate(x, ED_ACT_RELU), ED_F64, ed_shape1(3), F64TOL, 0, 0, 3);
    CHECK(ed_activate(x, ED_ACT_NONE), ED_F64, ed_shape1(3), F64TOL, -2, 0, 3);
}

/* ---- dense --------------------------------------------------------------------------------- */

static void test_dense_params(void **state)
{
    (void)state;
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(4, 3));
    ed_node *y = ed_dense(x, "enc.fc1", 5, true);
    assert_shape(y, ED_F32, ed_shape2(4, 5));
    assert_param("enc.fc1.w", ED_F32, ed_shape2(3, 5), ED_INIT_GLOROT_UNIFORM);
    assert_param("enc.fc1.b", ED_F32, ed_shape1(5), ED_INIT_ZEROS);
    assert_string_equal(y->name, "enc.fc1");
    assert_string_equal(ed_scope(g), "");
    /* Within a scope, names nest; the scope is restored afterwards. */
    ed_scope_push(g, "model");
    ed_node *z = ed_dense(y, "out", 2, false);
    assert_string_equal(ed_scope(g), "model");
    ed_scope_pop(g);
    assert_shape(z, ED_F32, ed_shape2(4, 2));
    assert_int_equal(z->op, ED_OP_MATMUL);
    assert_string_equal(z->name, "model.out");
    assert_param("model.out.w", ED_F32, ed_shape2(5, 2), ED_INIT_GLOROT_UNIFORM);
    assert_null(ed_graph_leaf(g, ED_OP_PARAM, "model.out.b"));
    assert_int_equal(count_params(), 3);
    /* The same block name again shares the weights. */
    assert_non_null(ed_dense(x, "enc.fc1", 5, true));
    assert_int_equal(count_params(), 3);
    assert_null(ed_graph_error(g));
}

static void test_dense_batched_and_f64(void **state)
{
    (void)state;
    ed_node *x = ed_input(g, "x", ED_F64, ed_shape3(2, 7, 3));
    assert_shape(ed_dense(x, "d", 4, true), ED_F64, ed_shape3(2, 7, 4));
    assert_param("d.w", ED_F64, ed_shape2(3, 4), ED_INIT_GLOROT_UNIFORM);
    assert_param("d.b", ED_F64, ed_shape1(4), ED_INIT_ZEROS);
}

/* Rank 3: one [rows, in] @ [in, units] matmul between reshapes, with the values and the
 * weight gradient of the batched matmul that broadcasts w (interpreter, f64). */
static void test_dense_rank3_is_one_matmul(void **state)
{
    (void)state;
    ed_node *x = ed_rand(g, ED_F64, ed_shape3(2, 5, 3), -1, 1);
    ed_node *y = ed_dense(x, "d", 4, true);
    assert_shape(y, ED_F64, ed_shape3(2, 5, 4));
    int matmuls = 0;
    for (int i = 0; i < g->nnodes; i++)
        if (g->nodes[i]->op == ED_OP_MATMUL) {
            matmuls++;
            assert_int_equal(g->nodes[i]->in[0]->shape.rank, 2);
            assert_int_equal(g->nodes[i]->in[0]->shape.dim[0], 10);
        }
    assert_int_equal(matmuls, 1);
    ed_node *w = ed_param(g, "d.w", ED_F64, ed_shape2(3, 4), (ed_init){ED_INIT_GLOROT_UNIFORM, 0});
    ed_node *b = ed_param(g, "d.b", ED_F64, ed_shape1(4), (ed_init){ED_INIT_ZEROS, 0});
    ed_node *ref = ed_add(ed_matmul(x, w), b);
    ed_node *gw[2];
    assert_int_equal(ed_grad(ed_sum(ed_square(y), ED_ALL_AXES, false), &w, 1, &gw[0]), ED_OK);
    assert_int_equal(ed_grad(ed_sum(ed_square(ref), ED_ALL_AXES, false), &w, 1, &gw[1]), ED_OK);
    ed_node *parts[2] = {ed_reshape(ed_sub(y, ref), ed_shape1(40)), ed_reshape(ed_sub(gw[0], gw[1]), ed_shape1(12))};
    ed_store *st = ed_store_new(3);
    ed_tensor *diff = run_y(st, ed_concat(parts, 2, 0));
    double ref_norm = 0;
    for (int64_t i = 0; i < ed_tensor_numel(diff); i++) assert_true(fabs(ed_tensor_get(diff, i)) < 1e-12);
    ed_tensor *wt = ed_store_get(st, "d.w");
    for (int64_t i = 0; i < 12; i++) ref_norm += fabs(ed_tensor_get(wt, i));
    assert_true(ref_norm > 0); /* the weights are not all zero, so the check means something */
    ed_tensor_free(diff);
    ed_store_free(st);
}

static void test_dense_errors(void **state)
{
    (void)state;
    assert_null(ed_dense(NULL, "d", 3, true));
    assert_null(ed_graph_error(g));
    ed_node *v = ed_input(g, "v", ED_F32, ed_shape1(3));
    assert_null(ed_dense(v, "enc.fc1", 5, true));
    assert_error_has("dense: x is f32[3], needs rank >= 2");
    assert_error_has("(in \"enc.fc1\")");
    assert_string_equal(ed_scope(g), ""); /* popped on failure too */
    assert_int_equal(count_params(), 0);
    /* sticky: later blocks give NULL and keep the first message */
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(2, 3));
    assert_null(x);
    assert_null(ed_dense(x, "ok", 2, true));
    assert_error_has("needs rank >= 2");
}

static void test_dense_bad_arguments(void **state)
{
    (void)state;
    const char *bad_names[] = {NULL, "", ".a", "a.", "a..b"};
    for (size_t i = 0; i < sizeof bad_names / sizeof *bad_names; i++) {
        ed_graph *h = ed_graph_new("h");
        ed_node *x = ed_input(h, "x", ED_F32, ed_shape2(2, 3));
        assert_null(ed_dense(x, bad_names[i], 2, true));
        assert_non_null(strstr(ed_graph_error(h), "dense: bad block name"));
        assert_string_equal(ed_scope(h), "");
        ed_graph_free(h);
    }
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(2, 3));
    assert_null(ed_dense(x, "d", 0, true));
    assert_error_has("dense: units must be >= 1, got 0 (in \"d\")");
}

static void test_dense_i32_and_conflict(void **state)
{
    (void)state;
    ed_graph *h = ed_graph_new("h");
    ed_node *k = ed_input(h, "k", ED_I32, ed_shape2(2, 3));
    assert_null(ed_dense(k, "d", 2, true));
    assert_non_null(strstr(ed_graph_error(h), "dense: x is i32[2,3], needs f32 or f64"));
    ed_graph_free(h);
    /* reusing a block name with another input width: the param conflict names the scope */
    ed_node *a = ed_input(g, "a", ED_F32, ed_shape2(2, 3));
    ed_node *b = ed_input(g, "b", ED_F32, ed_shape2(2, 4));
    assert_non_null(ed_dense(a, "enc.fc", 2, true));
    assert_null(ed_dense(b, "enc.fc", 2, true));
    assert_error_has("\"enc.fc.w\" already exists as f32[3,2]");
    assert_error_has("in \"enc.fc\"");
    assert_string_equal(ed_scope(g), "");
}

static void test_dense_values(void **state)
{
    (void)state;
    ed_node *x = CST(g, ED_F32, ed_shape2(2, 3), 1, 2, 3, 4, 5, 6);
    ed_node *y = ed_dense(x, "fc", 2, true);
    ed_store *st = ed_store_new(0);
    PUT(st, "fc.w", ED_F32, ed_shape2(3, 2), 1, 0, 0, 1, 1, 1);
    PUT(st, "fc.b", ED_F32, ed_shape1(2), 0.5, -1);
    ed_tensor *t = run_y(st, y);
    /* [1,2,3] @ W = [1+3, 2+3], + b */
    EXPECT(t, F32TOL, 4.5, 4, 10.5, 10);
    ed_tensor_free(t);
    ed_store_free(st);
}

static void test_dense_values_rank3(void **state)
{
    (void)state;
    ed_node *x = CST(g, ED_F64, ed_shape3(2, 2, 2), 1, 2, 3, 4, -1, 0, 0, 0.5);
    ed_node *y = ed_dense(x, "fc", 3, true);
    ed_store *st = ed_store_new(0);
    PUT(st, "fc.w", ED_F64, ed_shape2(2, 3), 1, 2, 0, 0, 1, -1);
    PUT(st, "fc.b", ED_F64, ed_shape1(3), 0, 0, 10);
    ed_tensor *t = run_y(st, y);
    /* row [a, b] -> [a, 2a + b, 10 - b] */
    EXPECT(t, F64TOL, 1, 4, 8, 3, 10, 6, -1, -2, 10, 0, 0.5, 9.5);
    assert_true(ed_shape_eq(t->shape, ed_shape3(2, 2, 3)));
    ed_tensor_free(t);
    ed_store_free(st);
}

/* ---- mlp ------------------------------------------------------------------------------------ */

static void test_conv_layer_params(void **state)
{
    (void)state;
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape4(2, 3, 7, 7));
    ed_conv_opts down = {.stride = {2, 2}, .padding = {1, 1}};
    ed_node *y = ed_conv2d_layer(x, "enc.c1", 8, 3, &down, true);
    assert_shape(y, ED_F32, ed_shape4(2, 8, 4, 4));
    assert_param("enc.c1.w", ED_F32, ed_shape4(8, 3, 3, 3), ED_INIT_UNIFORM);
    assert_param("enc.c1.b", ED_F32, ed_shape1(8), ED_INIT_ZEROS);
    /* glorot with PyTorch's fans: fan_in 3*9, fan_out 8*9. */
    ed_node *w = ed_graph_leaf(g, ED_OP_PARAM, "enc.c1.w");
    assert_float_equal(w->attr.init.scale, sqrt(6.0 / (27 + 72)), 1e-12);
    assert_string_equal(y->name, "enc.c1");
    /* Transposed: [C_in, C_out, k, k], 4 -> 8 with output_padding 1 (4 -> 7 without). */
    ed_conv_opts up = {.stride = {2, 2}, .padding = {1, 1}, .output_padding = {1, 1}};
    ed_node *z = ed_conv_transpose2d_layer(y, "dec.t1", 5, 3, &up, false);
    assert_shape(z, ED_F32, ed_shape4(2, 5, 8, 8));
    assert_param("dec.t1.w", ED_F32, ed_shape4(8, 5, 3, 3), ED_INIT_UNIFORM);
    assert_null(ed_graph_leaf(g, ED_OP_PARAM, "dec.t1.b"));
    /* Groups: w [O, C/groups, k, k]. */
    ed_node *q = ed_conv2d_layer(y, "grp", 4, 1, &(ed_conv_opts){.groups = 2}, true);
    assert_shape(q, ED_F32, ed_shape4(2, 4, 4, 4));
    assert_param("grp.w", ED_F32, ed_shape4(4, 4, 1, 1), ED_INIT_UNIFORM);
    assert_null(ed_graph_error(g));
}

static void test_conv_layer_errors(void **state)
{
    (void)state;
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(2, 3));
    assert_null(ed_conv2d_layer(x, "c", 4, 3, NULL, true));
    assert_error_has("conv2d_layer");
    assert_error_has("rank 4");
    ed_graph_free(g);
    g = ed_graph_new("nn");
    ed_node *y = ed_input(g, "y", ED_F32, ed_shape4(1, 3, 5, 5));
    assert_null(ed_conv_transpose2d_layer(y, "t", 4, 3, &(ed_conv_opts){.groups = 2}, true));
    assert_error_has("groups 2 must divide 3");
}

static void test_conv_layer_values(void **state)
{
    (void)state;
    /* 1x1 kernel: per pixel, y_o = sum_c w[o,c] x_c + b_o. */
    ed_node *x = CST(g, ED_F32, ed_shape4(1, 2, 1, 2), 1, 2, 3, 4);
    ed_node *y = ed_conv2d_layer(x, "c", 2, 1, NULL, true);
    ed_store *st = ed_store_new(0);
    PUT(st, "c.w", ED_F32, ed_shape4(2, 2, 1, 1), 1, 1, 2, -1);
    PUT(st, "c.b", ED_F32, ed_shape1(2), 0.5, -1);
    ed_tensor *t = run_y(st, y);
    /* channels x0 = [1, 2], x1 = [3, 4]: y0 = x0 + x1 + 0.5, y1 = 2 x0 - x1 - 1 */
    EXPECT(t, F32TOL, 4.5, 6.5, -2, -1);
    ed_tensor_free(t);
    ed_store_free(st);
}

static void test_mlp_structure(void **state)
{
    (void)state;
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(4, 3));
    const int64_t sizes[] = {8, 8, 2};
    ed_node *y = ed_mlp(x, "den", sizes, 3, ED_ACT_SILU, false);
    assert_shape(y, ED_F32, ed_shape2(4, 2));
    assert_param("den.0.w", ED_F32, ed_shape2(3, 8), ED_INIT_GLOROT_UNIFORM);
    assert_param("den.1.w", ED_F32, ed_shape2(8, 8), ED_INIT_GLOROT_UNIFORM);
    assert_param("den.2.w", ED_F32, ed_shape2(8, 2), ED_INIT_GLOROT_UNIFORM);
    assert_param("den.2.b", ED_F32, ed_shape1(2), ED_INIT_ZEROS);
    assert_int_equal(count_params(), 6);
    assert_int_equal(y->op, ED_OP_ADD); /* last layer not activated */
    assert_string_equal(y->name, "den.2");
    /* hidden layers are: add (bias) -> silu */
    ed_node *h1 = y->in[0]->in[0];
    assert_int_equal(h1->op, ED_OP_SILU);
    assert_string_equal(h1->name, "den.1.silu");

    ed_node *z = ed_mlp(x, "head", sizes + 2, 1, ED_ACT_TANH, true);
    assert_shape(z, ED_F32, ed_shape2(4, 2));
    assert_int_equal(z->op, ED_OP_TANH);
    assert_string_equal(z->name, "head.0.tanh");
    assert_string_equal(ed_scope(g), "");
    assert_null(ed_graph_error(g));
}

static void test_mlp_errors(void **state)
{
    (void)state;
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(4, 3));
    const int64_t sizes[] = {8, -1};
    assert_null(ed_mlp(x, "m", sizes, 0, ED_ACT_RELU, false));
    assert_error_has("mlp: needs at least one layer size, got n = 0 (in \"m\")");

    ed_graph *h = ed_graph_new("h");
    ed_node *hx = ed_input(h, "x", ED_F32, ed_shape2(4, 3));
    assert_null(ed_mlp(hx, "m", sizes, 2, ED_ACT_RELU, false));
    assert_non_null(strstr(ed_graph_error(h), "dense: units must be >= 1, got -1 (in \"m.1\")"));
    assert_string_equal(ed_scope(h), "");
    ed_graph_free(h);

    h = ed_graph_new("h");
    hx = ed_input(h, "x", ED_F32, ed_shape2(4, 3));
    assert_null(ed_mlp(hx, "m", sizes, 1, (ed_activation)-3, false));
    assert_non_null(strstr(ed_graph_error(h), "mlp: unknown activation -3"));
    assert_null(ed_graph_leaf(h, ED_OP_PARAM, "m.0.w")); /* nothing built */
    ed_graph_free(h);
}

static void test_mlp_values(void **state)
{
    (void)state;
    ed_node *x = CST(g, ED_F64, ed_shape2(2, 2), 1, 2, -1, 0.5);
    const int64_t sizes[] = {2, 1};
    ed_node *y = ed_mlp(x, "m", sizes, 2, ED_ACT_RELU, false);
    ed_store *st = ed_store_new(0);
    PUT(st, "m.0.w", ED_F64, ed_shape2(2, 2), 1, -1, 1, 1);
    PUT(st, "m.0.b", ED_F64, ed_shape1(2), 0, -1);
    PUT(st, "m.1.w", ED_F64, ed_shape2(2, 1), 2, 3);
    PUT(st, "m.1.b", ED_F64, ed_shape1(1), 0.25);
    ed_tensor *t = run_y(st, y);
    /* [1,2]: h = relu([3, 0]) = [3, 0] -> 6.25; [-1,0.5]: h = relu([-0.5, 0.5]) = [0, 0.5] -> 1.75 */
    EXPECT(t, F64TOL, 6.25, 1.75);
    ed_tensor_free(t);
    ed_store_free(st);
}

/* ---- layer norm ------------------------------------------------------------------------------ */

static void test_layer_norm_structure(void **state)
{
    (void)state;
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape3(2, 5, 6));
    ed_node *y = ed_layer_norm(x, "blk.ln1", 1e-5, true);
    assert_shape(y, ED_F32, ed_shape3(2, 5, 6));
    assert_param("blk.ln1.g", ED_F32, ed_shape1(6), ED_INIT_ONES);
    assert_param("blk.ln1.b", ED_F32, ed_shape1(6), ED_INIT_ZEROS);
    assert_string_equal(y->name, "blk.ln1");
    assert_shape(ed_layer_norm(x, "ln2", 1e-5, false), ED_F32, ed_shape3(2, 5, 6));
    assert_int_equal(count_params(), 2);

    assert_null(ed_layer_norm(x, "ln3", -1, true));
    assert_error_has("layer_norm: eps must be finite and >= 0, got -1 (in \"ln3\")");
    ed_graph *h = ed_graph_new("h");
    ed_node *s = ed_input(h, "s", ED_F32, ed_shape0());
    assert_null(ed_layer_norm(s, "ln", 1e-5, true));
    assert_non_null(strstr(ed_graph_error(h), "layer_norm: x is f32[], needs rank >= 1 (in \"ln\")"));
    ed_graph_free(h);
}

static void test_layer_norm_values(void **state)
{
    (void)state;
    /* row 1: mean 2.5, biased var 1.25 -> (x - 2.5) / sqrt(1.25); row 2 = 2 * row 1 + 0 gives
     * the same (mean 5, var 5). eps 0 keeps the hand values exact. */
    ed_node *x = CST(g, ED_F64, ed_shape2(2, 4), 1, 2, 3, 4, 2, 4, 6, 8);
    const double a = 1.3416407864998738, b = 0.44721359549995793;
    CHECK(ed_layer_norm(x, "n", 0.0, false), ED_F64, ed_shape2(2, 4), F64TOL, -a, -b, b, a, -a, -b, b, a);
    ed_store *st = ed_store_new(0);
    PUT(st, "a.g", ED_F64, ed_shape1(4), 1, 2, 1, 1);
    PUT(st, "a.b", ED_F64, ed_shape1(4), 0, 0, 1, 0);
    ed_tensor *t = run_y(st, ed_layer_norm(x, "a", 0.0, true));
    EXPECT(t, F64TOL, -a, -2 * b, b + 1, a, -a, -2 * b, b + 1, a);
    ed_tensor_free(t);
    ed_store_free(st);
}

/* A constant row normalizes to 0 when eps > 0. */
static void test_layer_norm_constant_row(void **state)
{
    (void)state;
    ed_node *x = CST(g, ED_F32, ed_shape2(1, 3), 7, 7, 7);
    CHECK(ed_layer_norm(x, "ln", 1e-5, false), ED_F32, ed_shape2(1, 3), F32TOL, 0, 0, 0);
}

static void test_layer_norm_moments(void **state)
{
    (void)state;
    ed_node *x = CST(g, ED_F32, ed_shape2(2, 5), 3, -1, 4, 1, 5, 100, 101, 99, 103, 97);
    ed_tensor *t = run_y(NULL, ed_layer_norm(x, "ln", 1e-5, false));
    for (int r = 0; r < 2; r++) {
        double m = 0, v = 0;
        for (int i = 0; i < 5; i++) m += ed_tensor_get(t, r * 5 + i) / 5;
        for (int i = 0; i < 5; i++) v += pow(ed_tensor_get(t, r * 5 + i) - m, 2) / 5;
        assert_true(fabs(m) < 1e-6);
        assert_true(fabs(v - 1) < 1e-4); /* vars 4.64 and 4: eps 1e-5 shrinks them by < 3e-6 */
    }
    ed_tensor_free(t);
}

/* ---- softmax family ---------------------------------------------------------------------- */

static void test_softmax_shapes_and_errors(void **state)
{
    (void)state;
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape3(2, 3, 4));
    assert_shape(ed_softmax(x, -1), ED_F32, ed_shape3(2, 3, 4));
    assert_shape(ed_log_softmax(x, 1), ED_F32, ed_shape3(2, 3, 4));
    assert_shape(ed_logsumexp(x, -2, false), ED_F32, ed_shape2(2, 4));
    assert_shape(ed_logsumexp(x, 0, true), ED_F32, ed_shape3(1, 3, 4));
    /* the max is a constant for autodiff */
    ed_node *lse = ed_logsumexp(x, 2, true);
    assert_int_equal(lse->op, ED_OP_ADD);
    assert_int_equal(lse->in[1]->op, ED_OP_STOP_GRADIENT);
    assert_null(ed_softmax(NULL, 0));
    assert_null(ed_graph_error(g));
    assert_null(ed_softmax(x, 3));
    assert_error_has("softmax: axis 3 is out of range for f32[2,3,4]");

    ed_graph *h = ed_graph_new("h");
    ed_node *k = ed_input(h, "k", ED_I32, ed_shape1(3));
    assert_null(ed_logsumexp(k, 0, false));
    assert_non_null(strstr(ed_graph_error(h), "logsumexp: x is i32[3], needs f32 or f64"));
    ed_graph_free(h);
    h = ed_graph_new("h");
    ed_node *v = ed_input(h, "v", ED_F64, ed_shape1(3));
    assert_null(ed_log_softmax(v, -2));
    assert_non_null(strstr(ed_graph_error(h), "log_softmax: axis -2 is out of range for f64[3]"));
    ed_graph_free(h);
}

static void test_softmax_values(void **state)
{
    (void)state;
    /* [0, ln 2, ln 3] -> [1, 2, 3] / 6; a constant row -> 1/3; a 2000-wide row stays finite */
    ed_node *x = CST(g, ED_F32, ed_shape2(3, 3), 0, log(2.0), log(3.0), -5, -5, -5, 1000, 0, -1000);
    CHECK(ed_softmax(x, -1), ED_F32, ed_shape2(3, 3), F32TOL, 1.0 / 6, 2.0 / 6, 3.0 / 6, 1.0 / 3, 1.0 / 3, 1.0 / 3, 1,
          0, 0);
    CHECK(ed_log_softmax(x, 1), ED_F32, ed_shape2(3, 3), F32TOL, -log(6.0), -log(3.0), -log(2.0), -log(3.0), -log(3.0),
          -log(3.0), 0, -1000, -2000);
    /* over axis 0 (negative): columns of [[0, 1], [0, 1]] */
    ed_node *c = CST(g, ED_F64, ed_shape2(2, 2), 0, 1, 0, 1);
    CHECK(ed_softmax(c, -2), ED_F64, ed_shape2(2, 2), F64TOL, 0.5, 0.5, 0.5, 0.5);
}

static void test_softmax_rows_sum_to_one(void **state)
{
    (void)state;
    ed_node *x = CST(g, ED_F32, ed_shape2(2, 4), 0.3, -1.7, 2.2, 0.9, 40, 41, 39, -60);
    ed_tensor *t = run_y(NULL, ed_softmax(x, 1));
    for (int r = 0; r < 2; r++) {
        double s = 0;
        for (int i = 0; i < 4; i++) s += ed_tensor_get(t, r * 4 + i);
        assert_true(fabs(s - 1) < 1e-6);
    }
    ed_tensor_free(t);
}

static void test_log_softmax_is_log_of_softmax(void **state)
{
    (void)state;
    ed_node *x = CST(g, ED_F64, ed_shape2(2, 3), 0.3, -1.7, 2.2, 4, 5, 3);
    ed_output(g, "a", ed_log(ed_softmax(x, -1)));
    ed_output(g, "b", ed_log_softmax(x, -1));
    ed_program *p = ed_compile(g, NULL, &(ed_compile_opts){.backend = ED_BACKEND_INTERP});
    assert_non_null(p);
    assert_int_equal(ed_run(p, NULL, 0), ED_OK);
    const ed_tensor *a = ed_program_output(p, "a"), *b = ed_program_output(p, "b");
    for (int i = 0; i < 6; i++) {
        assert_true(ed_tensor_get(b, i) < 0);
        assert_true(fabs(ed_tensor_get(a, i) - ed_tensor_get(b, i)) < 1e-12);
    }
    ed_program_free(p);
}

static void test_logsumexp_values(void **state)
{
    (void)state;
    ed_node *x = CST(g, ED_F32, ed_shape2(3, 2), 1000, 1000, -1000, -1000, 0, log(3.0));
    CHECK(ed_logsumexp(x, -1, false), ED_F32, ed_shape1(3), F32TOL, 1000 + log(2.0), -1000 + log(2.0), log(4.0));
    CHECK(ed_logsumexp(x, 0, true), ED_F32, ed_shape2(1, 2), F32TOL, 1000, 1000);
    /* an all -inf row: -inf, not NaN */
    ed_node *n = CST(g, ED_F64, ed_shape2(2, 2), -INFINITY, -INFINITY, -INFINITY, 0);
    CHECK(ed_logsumexp(n, 1, false), ED_F64, ed_shape1(2), F64TOL, -INFINITY, 0);
}

/* ---- self-attention -------------------------------------------------------------------------- */

static void test_attention_structure(void **state)
{
    (void)state;
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape3(2, 5, 8));
    ed_node *y = ed_self_attention(x, "blk.attn", 2, true);
    assert_shape(y, ED_F32, ed_shape3(2, 5, 8));
    const char *names[] = {"blk.attn.q", "blk.attn.k", "blk.attn.v", "blk.attn.o"};
    for (int i = 0; i < 4; i++) {
        char w[64], b[64];
        snprintf(w, sizeof w, "%s.w", names[i]);
        snprintf(b, sizeof b, "%s.b", names[i]);
        assert_param(w, ED_F32, ed_shape2(8, 8), ED_INIT_GLOROT_UNIFORM);
        assert_param(b, ED_F32, ed_shape1(8), ED_INIT_ZEROS);
    }
    assert_int_equal(count_params(), 8);
    assert_string_equal(y->name, "blk.attn.o");
    assert_string_equal(ed_scope(g), "");
    assert_null(ed_graph_error(g));
}

static void test_attention_errors(void **state)
{
    (void)state;
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape3(2, 3, 6));
    assert_null(ed_self_attention(x, "blk.attn", 4, false));
    assert_error_has("self_attention: D = 6 is not divisible by heads = 4 (x is f32[2,3,6])");
    assert_error_has("(in \"blk.attn\")");
    assert_string_equal(ed_scope(g), "");
    assert_int_equal(count_params(), 0);

    ed_graph *h = ed_graph_new("h");
    ed_node *x2 = ed_input(h, "x", ED_F32, ed_shape2(3, 6));
    assert_null(ed_self_attention(x2, "sa", 1, false));
    assert_non_null(strstr(ed_graph_error(h), "self_attention: x is f32[3,6], needs [B, T, D] (in \"sa\")"));
    ed_graph_free(h);
    h = ed_graph_new("h");
    x2 = ed_input(h, "x", ED_F32, ed_shape3(1, 3, 6));
    assert_null(ed_self_attention(x2, "sa", 0, false));
    assert_non_null(strstr(ed_graph_error(h), "not divisible by heads = 0"));
    ed_graph_free(h);
}

static void put_identity_attention(ed_store *st, const char *name)
{
    const char *parts[] = {"q", "k", "v", "o"};
    for (int i = 0; i < 4; i++) {
        char w[64], b[64];
        snprintf(w, sizeof w, "%s.%s.w", name, parts[i]);
        snprintf(b, sizeof b, "%s.%s.b", name, parts[i]);
        PUT(st, w, ED_F32, ed_shape2(2, 2), 1, 0, 0, 1);
        PUT(st, b, ED_F32, ed_shape1(2), 0, 0);
    }
}

/* T = 2, D = 2, one head, identity weights, x = I: q = k = v = x, scores = I / sqrt 2, so a
 * row attends to itself with sigmoid(1/sqrt 2) = 0.66976... and to the other with the rest.
 * Causal: position 0 sees only itself. */
static void test_attention_identity_values(void **state)
{
    (void)state;
    ed_node *x = CST(g, ED_F32, ed_shape3(1, 2, 2), 1, 0, 0, 1);
    ed_output(g, "causal", ed_self_attention(x, "c", 1, true));
    ed_store *st = ed_store_new(0);
    put_identity_attention(st, "a");
    put_identity_attention(st, "c");
    ed_tensor *t = run_y(st, ed_self_attention(x, "a", 1, false));
    const double s = 0.66976154932665688, r = 0.33023845067334312;
    EXPECT(t, F32TOL, s, r, r, s);
    ed_tensor_free(t);
    ed_program *p = ed_compile(g, st, &(ed_compile_opts){.backend = ED_BACKEND_INTERP});
    assert_int_equal(ed_run(p, NULL, 0), ED_OK);
    EXPECT(ed_program_output(p, "causal"), F32TOL, 1, 0, r, s);
    ed_program_free(p);
    ed_store_free(st);
}

/* Causal: position 0 sees only itself (identity v: its own x), whatever position 1 holds. */
static void test_attention_causal_ignores_future(void **state)
{
    (void)state;
    ed_node *x1 = CST(g, ED_F32, ed_shape3(1, 2, 2), 0.5, -1, 2, 3);
    ed_node *x2 = CST(g, ED_F32, ed_shape3(1, 2, 2), 0.5, -1, -7, 0.25);
    ed_output(g, "y1", ed_self_attention(x1, "c", 1, true));
    ed_output(g, "y2", ed_self_attention(x2, "c", 1, true));
    ed_store *st = ed_store_new(0);
    put_identity_attention(st, "c");
    ed_program *p = ed_compile(g, st, &(ed_compile_opts){.backend = ED_BACKEND_INTERP});
    assert_non_null(p);
    assert_int_equal(ed_run(p, NULL, 0), ED_OK);
    const ed_tensor *y1 = ed_program_output(p, "y1"), *y2 = ed_program_output(p, "y2");
    const double own[2] = {0.5, -1};
    for (int i = 0; i < 2; i++) {
        assert_true(fabs(ed_tensor_get(y1, i) - own[i]) <= F32TOL);
        assert_true(fabs(ed_tensor_get(y2, i) - own[i]) <= F32TOL);
    }
    assert_true(fabs(ed_tensor_get(y2, 2) - ed_tensor_get(y1, 2)) > 0.1); /* position 1 did change */
    ed_program_free(p);
    ed_store_free(st);
}

/* Weights from a fixed formula, shared with the Python reference. */
static void put_formula_attention(ed_store *st, const char *name, int d)
{
    const char *parts[] = {"q", "k", "v", "o"};
    double w[16], b[4];
    for (int k = 0; k < 4; k++) {
        for (int i = 0; i < d; i++)
            for (int j = 0; j < d; j++) w[i * d + j] = 0.5 * sin(1.0 + k * 16 + i * 4 + j);
        for (int j = 0; j < d; j++) b[j] = 0.1 * cos(k * 4.0 + j);
        char wn[64], bn[64];
        snprintf(wn, sizeof wn, "%s.%s.w", name, parts[k]);
        snprintf(bn, sizeof bn, "%s.%s.b", name, parts[k]);
        put_at(st, wn, ED_F64, ed_shape2(d, d), w, d * d);
        put_at(st, bn, ED_F64, ed_shape1(d), b, d);
    }
}

/* B = 2, T = 3, D = 4, two heads, f64, against a plain-loop reference (batch rows must
 * not mix). */
static void test_attention_two_heads(void **state)
{
    (void)state;
    ed_node *x = CST(g, ED_F64, ed_shape3(2, 3, 4), 0.5, -1, 0.25, 2, 1, 0, -0.5, 0.75, -0.25, 1.5, 1, -1, 2, 0.5, -1,
                     0, -0.5, -0.5, 1, 1, 0.25, 0, 0, -2);
    ed_output(g, "causal", ed_self_attention(x, "c", 2, true));
    ed_store *st = ed_store_new(0);
    put_formula_attention(st, "a", 4);
    put_formula_attention(st, "c", 4);
    ed_tensor *t = run_y(st, ed_self_attention(x, "a", 2, false));
    EXPECT(t, F64TOL, 0.22707569225339039, 0.31176701601724699, 0.10982118304210517, -0.19309373915561404,
           0.32538030597697876, 0.32305804196847143, 0.023717704032643991, -0.29742858161100022, -0.01527540782459097,
           -0.097638938956901677, -0.090233679897274155, 0.00013200832597209944, 0.070656537329460811,
           0.16591565142488351, 0.10863268075949739, -0.048526675610895714, 0.062948234317052584, 0.11706450761206269,
           0.063552212479179152, -0.048389693721017764, 0.02399016757055189, -0.044816779393176909,
           -0.07241938606598626, -0.033439943168837943);
    ed_tensor_free(t);
    ed_program *p = ed_compile(g, st, &(ed_compile_opts){.backend = ED_BACKEND_INTERP});
    assert_int_equal(ed_run(p, NULL, 0), ED_OK);
    EXPECT(ed_program_output(p, "causal"), F64TOL, 0.084110540022025115, -0.09342965628832034, -0.18507105748011954,
           -0.10655898192360674, 0.16484953258770801, -0.019903361284068499, -0.1863571965803259, -0.18147508477087598,
           -0.01527540782459097, -0.097638938956901677, -0.090233679897274155, 0.00013200832597209944,
           0.2702101281415159, 0.073746417405653242, -0.19051940939393847, -0.27962256982201533, 0.12932211903811983,
           0.081262931411583694, -0.041509020591553522, -0.12611777049147258, 0.02399016757055189,
           -0.044816779393176909, -0.07241938606598626, -0.033439943168837943);
    ed_program_free(p);
    ed_store_free(st);
}

/* ---- timestep embedding ------------------------------------------------------------------- */

static void test_timestep_structure(void **state)
{
    (void)state;
    ed_node *t = ed_input(g, "t", ED_F32, ed_shape1(5));
    assert_shape(ed_timestep_embedding(t, 8, 10000), ED_F32, ed_shape2(5, 8));
    ed_node *ti = ed_input(g, "ti", ED_I32, ed_shape1(5));
    assert_shape(ed_timestep_embedding(ti, 4, 10000), ED_F32, ed_shape2(5, 4));
    ed_node *td = ed_input(g, "td", ED_F64, ed_shape1(3));
    assert_shape(ed_timestep_embedding(td, 2, 10000), ED_F64, ed_shape2(3, 2));
    assert_int_equal(count_params(), 0);
    assert_null(ed_timestep_embedding(NULL, 4, 10000));
    assert_null(ed_graph_error(g));

    int before = g->nnodes;
    assert_null(ed_timestep_embedding(ti, 7, 10000));
    assert_error_has("timestep_embedding: dim = 7 must be even and >= 2");
    assert_int_equal(g->nnodes, before); /* no stray cast node */
}

static void test_timestep_errors(void **state)
{
    (void)state;
    ed_node *t2 = ed_input(g, "t", ED_F32, ed_shape2(5, 1));
    assert_null(ed_timestep_embedding(t2, 4, 10000));
    assert_error_has("timestep_embedding: t is f32[5,1], needs [B]");
    ed_graph *h = ed_graph_new("h");
    ed_node *t = ed_input(h, "t", ED_F32, ed_shape1(2));
    assert_null(ed_timestep_embedding(t, 4, 0));
    assert_non_null(strstr(ed_graph_error(h), "max_period must be finite and > 0, got 0"));
    ed_graph_free(h);
    h = ed_graph_new("h");
    t = ed_input(h, "t", ED_F32, ed_shape1(2));
    assert_null(ed_timestep_embedding(t, 0, 10000));
    assert_non_null(strstr(ed_graph_error(h), "dim = 0 must be even"));
    ed_graph_free(h);
}

static void test_timestep_values(void **state)
{
    (void)state;
    /* dim 4, period 1e4: f = [1, 0.01] */
    ed_node *t = CST(g, ED_F32, ed_shape1(2), 0, 1);
    CHECK(ed_timestep_embedding(t, 4, 10000), ED_F32, ed_shape2(2, 4), F32TOL, 0, 0, 1, 1, 0.8414709848078965,
          0.0099998333341666645, 0.54030230586813977, 0.99995000041666526);
    /* dim 6 from i32 t = 2: f = [1, 1e4^(-1/3), 1e4^(-2/3)] */
    ed_node *ti = CST(g, ED_I32, ed_shape1(1), 2);
    CHECK(ed_timestep_embedding(ti, 6, 10000), ED_F32, ed_shape2(1, 6), F32TOL, 0.90929742682568171,
          0.092698500778727239, 0.0043088560467428125, -0.41614683654714241, 0.99569422412373987, 0.99999071683669571);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_activation_names),
        T(test_activate_ops),
        T(test_activate_values),
        T(test_dense_params),
        T(test_dense_batched_and_f64),
        T(test_dense_rank3_is_one_matmul),
        T(test_dense_errors),
        T(test_dense_bad_arguments),
        T(test_dense_i32_and_conflict),
        T(test_dense_values),
        T(test_dense_values_rank3),
        T(test_conv_layer_params),
        T(test_conv_layer_errors),
        T(test_conv_layer_values),
        T(test_mlp_structure),
        T(test_mlp_errors),
        T(test_mlp_values),
        T(test_layer_norm_structure),
        T(test_layer_norm_values),
        T(test_layer_norm_constant_row),
        T(test_layer_norm_moments),
        T(test_softmax_shapes_and_errors),
        T(test_softmax_values),
        T(test_softmax_rows_sum_to_one),
        T(test_log_softmax_is_log_of_softmax),
        T(test_logsumexp_values),
        T(test_attention_structure),
        T(test_attention_errors),
        T(test_attention_identity_values),
        T(test_attention_causal_ignores_future),
        T(test_attention_two_heads),
        T(test_timestep_structure),
        T(test_timestep_errors),
        T(test_timestep_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
