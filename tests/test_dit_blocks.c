/* DiT blocks (frontend/dit_blocks.h): patchify values by hand and the round trip, the
 * sin-cos position embedding by hand, the label table's null class and dropout, and the
 * adaLN-Zero rule: at initialisation a block is the identity and the final layer zero,
 * while the modulation still gets a gradient. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "frontend/dit_blocks.h"
#include "passes/autodiff.h"
#include "support/interp_check.h"

#include <math.h>
#include <string.h>

/* Outputs "y" of g on the interpreter with store st (NULL: a fresh one), copied. */
static ed_tensor *run_y(ed_graph *g, ed_store *st, ed_node *y)
{
    if (ed_graph_error(g)) fail_msg("graph error: %s", ed_graph_error(g));
    ed_store *own = st ? NULL : ed_store_new(0);
    ed_output(g, "y", y);
    ed_program *p = ed_compile(g, st ? st : own, &(ed_compile_opts){.backend = ED_BACKEND_INTERP});
    if (!p || ed_run(p, NULL, 0) != ED_OK) fail_msg("compile/run: %s", ed_last_error());
    ed_tensor *t = ed_tensor_copy(ed_program_output(p, "y"));
    ed_program_free(p);
    ed_store_free(own);
    return t;
}

static void graph_error_has(ed_graph *g, const char *part)
{
    const char *e = ed_graph_error(g);
    if (!e || !strstr(e, part)) fail_msg("graph error \"%s\" lacks \"%s\"", e ? e : "(none)", part);
}
#define CHECK_GRAPH_ERROR_HAS(g, part) graph_error_has((g), (part))

static ed_node *iota(ed_graph *g, ed_shape s)
{
    int64_t n = ed_shape_numel(s);
    double v[256];
    assert_true(n <= 256);
    for (int64_t i = 0; i < n; i++) v[i] = (double)i;
    return ed_const(g, ED_F32, s, v, n);
}

static void test_patchify_values(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("t");
    ed_node *x = iota(g, ed_shape4(1, 2, 4, 4)); /* channel 1 is channel 0 + 16 */
    ed_node *t = ed_patchify(x, 2);
    /* 4 tokens (row-major patches) of (channel, dy, dx). */
    CHECK(t, ED_F32, ed_shape3(1, 4, 8), 0, 0, 1, 4, 5, 16, 17, 20, 21, 2, 3, 6, 7, 18, 19, 22, 23, 8, 9, 12, 13, 24,
          25, 28, 29, 10, 11, 14, 15, 26, 27, 30, 31);
    ed_graph_free(g);
}

static void test_patchify_round_trip(void **state)
{
    (void)state;
    static const int64_t patches[3] = {1, 2, 4};
    for (int k = 0; k < 3; k++) {
        ed_graph *g = ed_graph_new("t");
        ed_node *x = ed_randn(g, ED_F32, ed_shape4(2, 3, 8, 4));
        int64_t p = patches[k];
        ed_node *t = ed_patchify(x, p);
        assert_int_equal(t->shape.dim[1], (8 / p) * (4 / p));
        assert_int_equal(t->shape.dim[2], 3 * p * p);
        ed_node *back = ed_unpatchify(t, p, 3, 8, 4);
        /* bit for bit: the largest difference and the data's size (not all zero) */
        ed_node *parts[2] = {ed_reshape(ed_max(ed_abs(ed_sub(back, x)), ED_ALL_AXES, false), ed_shape1(1)),
                             ed_reshape(ed_max(ed_abs(x), ED_ALL_AXES, false), ed_shape1(1))};
        ed_tensor *r = run_y(g, NULL, ed_concat(parts, 2, 0));
        assert_float_equal(ed_tensor_get(r, 0), 0, 0);
        assert_true(ed_tensor_get(r, 1) > 0.5);
        ed_tensor_free(r);
        ed_graph_free(g);
    }
    ed_graph *g = ed_graph_new("t");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape4(2, 1, 6, 6));
    assert_null(ed_patchify(x, 4));
    CHECK_GRAPH_ERROR_HAS(g, "patchify: x must be [B, C, H, W] with H and W multiples of the patch 4");
    ed_graph_free(g);
    g = ed_graph_new("t");
    assert_null(ed_unpatchify(ed_input(g, "t", ED_F32, ed_shape3(2, 9, 4)), 2, 1, 6, 4));
    CHECK_GRAPH_ERROR_HAS(g, "unpatchify: tokens must be [B, 6, 4]");
    ed_graph_free(g);
}

static void test_pos_embed(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("t");
    /* dim 4: one frequency (1) per half; token k is at row k / 3, column k % 3. */
    ed_node *e = ed_pos_embed_2d(g, ED_F32, 2, 3, 4, false, "pos");
    double s1 = sin(1.0), c1 = cos(1.0), s2 = sin(2.0), c2 = cos(2.0);
    CHECK(e, ED_F32, ed_shape2(6, 4), 1e-7, 0, 1, 0, 1, 0, 1, s1, c1, 0, 1, s2, c2, s1, c1, 0, 1, s1, c1, s1, c1, s1,
          c1, s2, c2);
    /* dim 8: frequencies 1 and 1/100 for the row of token 4 (row 1, column 1). */
    ed_node *e8 = ed_slice_axis(ed_pos_embed_2d(g, ED_F32, 2, 3, 8, false, "pos"), 0, 4, 5);
    CHECK(e8, ED_F32, ed_shape2(1, 8), 1e-7, s1, sin(0.01), c1, cos(0.01), s1, sin(0.01), c1, cos(0.01));
    ed_node *learned = ed_pos_embed_2d(g, ED_F32, 2, 3, 8, true, "pos");
    assert_int_equal(learned->op, ED_OP_PARAM);
    assert_string_equal(learned->name, "pos");
    assert_true(ed_shape_eq(learned->shape, ed_shape2(6, 8)));
    assert_int_equal(learned->attr.init.kind, ED_INIT_NORMAL);
    assert_null(ed_pos_embed_2d(g, ED_F32, 2, 3, 6, false, "pos"));
    CHECK_GRAPH_ERROR_HAS(g, "a width 6 that is a multiple of 4");
    ed_graph_free(g);
}

/* 1-D: token k's row is sin(k w_i), then cos(k w_i), w_i = 10000^(-i / (dim / 2)). */
static void test_pos_embed_1d(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("t");
    ed_node *e = ed_pos_embed_1d(g, ED_F32, 3, 2, false, "pos"); /* one frequency, 1 */
    CHECK(e, ED_F32, ed_shape2(3, 2), 1e-7, 0, 1, sin(1.0), cos(1.0), sin(2.0), cos(2.0));
    ed_node *e4 = ed_slice_axis(ed_pos_embed_1d(g, ED_F32, 3, 4, false, "pos"), 0, 2, 3); /* 1 and 1/100 */
    CHECK(e4, ED_F32, ed_shape2(1, 4), 1e-7, sin(2.0), sin(0.02), cos(2.0), cos(0.02));
    ed_node *learned = ed_pos_embed_1d(g, ED_F32, 3, 4, true, "pos");
    assert_int_equal(learned->op, ED_OP_PARAM);
    assert_true(ed_shape_eq(learned->shape, ed_shape2(3, 4)));
    assert_null(ed_pos_embed_1d(g, ED_F32, 3, 5, false, "pos"));
    CHECK_GRAPH_ERROR_HAS(g, "pos_embed_1d: 3 tokens and an even width 5");
    ed_graph_free(g);
}

static void test_label_embedding(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("t");
    ed_scope_push(g, "dit");
    ed_node *labels = CST(g, ED_I32, ed_shape1(3), 2, 0, 3);
    ed_node *e = ed_label_embedding(labels, 3, 2, ED_F32, "y");
    ed_scope_pop(g);
    ed_node *table = ed_graph_leaf(g, ED_OP_PARAM, "dit.y.table");
    assert_non_null(table);
    assert_true(ed_shape_eq(table->shape, ed_shape2(4, 2))); /* 3 classes and the null one */
    ed_store *st = ed_store_new(0);
    ed_tensor *tv = ed_tensor_new(ED_F32, ed_shape2(4, 2));
    for (int i = 0; i < 8; i++) ((float *)tv->data)[i] = (float)(10 * (i / 2) + i % 2);
    assert_int_equal(ed_store_put(st, "dit.y.table", tv, true), ED_OK);
    ed_tensor *r = run_y(g, st, e);
    static const float want[6] = {20, 21, 0, 1, 30, 31}; /* label 3 is the null row */
    for (int i = 0; i < 6; i++) assert_float_equal(((float *)r->data)[i], want[i], 0);
    ed_tensor_free(r);
    ed_store_free(st);
    ed_graph_free(g);

    /* Dropout: p = 0 is the labels themselves; p = 1 all null; p = 0.25 about a quarter,
     * every other label kept. */
    g = ed_graph_new("t");
    ed_node *l = ed_randint(g, ed_shape1(20000), 0, 10);
    assert_ptr_equal(ed_label_dropout(l, 10, 0), l);
    ed_node *all = ed_label_dropout(l, 10, 1);
    ed_node *some = ed_label_dropout(l, 10, 0.25);
    ed_node *nulls = ed_sum(ed_cast(ed_eq(some, ed_scalar(g, ED_I32, 10)), ED_F32), ED_ALL_AXES, false);
    ed_node *kept = ed_sum(ed_cast(ed_eq(some, l), ED_F32), ED_ALL_AXES, false);
    ed_node *every = ed_sum(ed_cast(ed_eq(all, ed_scalar(g, ED_I32, 10)), ED_F32), ED_ALL_AXES, false);
    ed_node *parts[3] = {ed_reshape(nulls, ed_shape1(1)), ed_reshape(kept, ed_shape1(1)),
                         ed_reshape(every, ed_shape1(1))};
    r = run_y(g, NULL, ed_concat(parts, 3, 0));
    double n_null = ed_tensor_get(r, 0);
    assert_float_equal(n_null + ed_tensor_get(r, 1), 20000, 0);
    assert_true(fabs(n_null - 5000) < 5 * sqrt(20000 * 0.25 * 0.75)); /* five standard errors */
    assert_float_equal(ed_tensor_get(r, 2), 20000, 0);
    ed_tensor_free(r);
    ed_graph_free(g);
}

/* The block at init returns h bit for bit; the final layer returns zeros; the
 * modulation's weight still has a gradient (so training moves it off zero). */
static void test_adaln_zero_identity(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("t");
    ed_node *h = ed_randn(g, ED_F32, ed_shape3(2, 4, 8));
    ed_node *c = ed_silu(ed_randn(g, ED_F32, ed_shape2(2, 6)));
    ed_node *y = ed_dit_block(h, c, 2, 32, "b0");
    ed_node *f = ed_dit_final_layer(y, c, 5, "final");
    assert_true(ed_shape_eq(f->shape, ed_shape3(2, 4, 5)));
    assert_non_null(ed_graph_leaf(g, ED_OP_PARAM, "b0.ada.w"));
    assert_non_null(ed_graph_leaf(g, ED_OP_PARAM, "b0.attn.q.w"));
    assert_non_null(ed_graph_leaf(g, ED_OP_PARAM, "b0.fc2.b"));
    assert_non_null(ed_graph_leaf(g, ED_OP_PARAM, "final.linear.w"));
    ed_node *wrt = ed_graph_leaf(g, ED_OP_PARAM, "b0.ada.w"), *grad = NULL;
    ed_node *loss = ed_sum(ed_mul(y, ed_randn(g, ED_F32, y->shape)), ED_ALL_AXES, false);
    assert_int_equal(ed_grad(loss, &wrt, 1, &grad), ED_OK);
    ed_node *parts[4] = {ed_reshape(ed_max(ed_abs(ed_sub(y, h)), ED_ALL_AXES, false), ed_shape1(1)),
                         ed_reshape(ed_max(ed_abs(f), ED_ALL_AXES, false), ed_shape1(1)),
                         ed_reshape(ed_max(ed_abs(grad), ED_ALL_AXES, false), ed_shape1(1)),
                         ed_reshape(ed_max(ed_abs(h), ED_ALL_AXES, false), ed_shape1(1))};
    ed_store *st = ed_store_new(3);
    ed_tensor *r = run_y(g, st, ed_concat(parts, 4, 0));
    assert_float_equal(ed_tensor_get(r, 0), 0, 0);
    assert_float_equal(ed_tensor_get(r, 1), 0, 0);
    assert_true(ed_tensor_get(r, 2) > 1e-3);
    assert_true(ed_tensor_get(r, 3) > 0.5);
    ed_tensor_free(r);

    /* Moved off zero, the block is no longer the identity: the check above can fail. */
    ed_tensor *w = ed_store_get(st, "b0.ada.w");
    assert_non_null(w);
    for (int64_t i = 0; i < ed_tensor_numel(w); i++) ((float *)w->data)[i] = 0.01f * (float)(i % 7);
    ed_program *p = ed_compile(g, st, &(ed_compile_opts){.backend = ED_BACKEND_INTERP});
    assert_non_null(p);
    assert_int_equal(ed_run(p, NULL, 0), ED_OK);
    assert_true(ed_tensor_get(ed_program_output(p, "y"), 0) > 1e-4);
    ed_program_free(p);
    ed_store_free(st);
    ed_graph_free(g);

    g = ed_graph_new("t");
    assert_null(ed_dit_block(ed_input(g, "h", ED_F32, ed_shape3(2, 4, 8)), ed_input(g, "c", ED_F32, ed_shape2(3, 8)), 2,
                             8, "b"));
    CHECK_GRAPH_ERROR_HAS(g, "dit_block: h must be float [B, N, D] and c [B, E] of its dtype (B = 2, c's B = 3)");
    ed_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_patchify_values), cmocka_unit_test(test_patchify_round_trip),
        cmocka_unit_test(test_pos_embed),       cmocka_unit_test(test_pos_embed_1d),
        cmocka_unit_test(test_label_embedding), cmocka_unit_test(test_adaln_zero_identity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
