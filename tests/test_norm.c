/* Mode-dependent nn blocks (frontend/norm.h): batch norm by hand in both modes, its
 * running statistics after a training call, eval with batch 1, dropout's mask, and
 * the JIT against the interpreter. The finite-difference gradient through batch norm
 * is in test_grad. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "frontend/loop.h"
#include "frontend/norm.h"
#include "support/run_check.h"

#include <math.h>
#include <string.h>

static ed_tensor *tensor_of(ed_dtype dt, ed_shape s, const double *v)
{
    ed_tensor *t = ed_tensor_new(dt, s);
    assert_non_null(t);
    for (int64_t i = 0; i < ed_shape_numel(s); i++) ed_tensor_set(t, i, v[i]);
    return t;
}

static void put(ed_store *st, const char *name, ed_shape s, const double *v)
{
    assert_int_equal(ed_store_put(st, name, tensor_of(ED_F64, s, v), true), ED_OK);
}

static void expect_values(const ed_tensor *t, const double *want, int64_t n, double tol, const char *what)
{
    assert_int_equal(ed_tensor_numel(t), n);
    for (int64_t i = 0; i < n; i++)
        if (!(fabs(ed_tensor_get(t, i) - want[i]) <= tol))
            fail_msg("%s[%lld]: got %.17g, want %.17g", what, (long long)i, ed_tensor_get(t, i), want[i]);
}

/* Training: column 0 = 1, 2, 3, 6 (mean 3, biased var 3.5, unbiased 14/3), column 1 =
 * 0, 0, 4, 4 (mean 2, var 4, unbiased 16/3); eps 0. */
static void test_batch_norm_training_by_hand(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("bn");
    assert_true(ed_graph_training(g));
    ed_node *x = ed_input(g, "x", ED_F64, ed_shape2(4, 2));
    ed_node *y = ed_batch_norm(x, "bn", 0, 0.1, true);
    assert_non_null(y);
    ed_output(g, "y", y);
    assert_non_null(ed_graph_leaf(g, ED_OP_STATE, "bn.running_mean"));
    assert_non_null(ed_graph_leaf(g, ED_OP_STATE, "bn.running_var"));
    assert_non_null(ed_graph_leaf(g, ED_OP_PARAM, "bn.g"));
    assert_non_null(ed_graph_leaf(g, ED_OP_PARAM, "bn.b"));
    assert_int_equal(g->nupdates, 2);

    ed_store *st = ed_store_new(0);
    ed_program *p = compile_with(g, st, ED_BACKEND_INTERP, 0);
    ed_tensor *xt = tensor_of(ED_F64, ed_shape2(4, 2), (const double[]){1, 0, 2, 0, 3, 4, 6, 4});
    run_ok(p, &(ed_feed){"x", xt}, 1);
    double s = sqrt(3.5);
    expect_values(out(p, "y"), (const double[]){-2 / s, -1, -1 / s, -1, 0, 1, 3 / s, 1}, 8, 1e-15, "y");
    /* running = 0.9 running + 0.1 batch, from mean 0 and var 1 */
    expect_values(ed_store_get(st, "bn.running_mean"), (const double[]){0.3, 0.2}, 2, 1e-15, "running_mean");
    expect_values(ed_store_get(st, "bn.running_var"), (const double[]){0.9 + 1.4 / 3, 0.9 + 1.6 / 3}, 2, 1e-15,
                  "running_var");
    /* a second call moves them again: 0.9 * 0.3 + 0.1 * 3 */
    run_ok(p, &(ed_feed){"x", xt}, 1);
    expect_values(ed_store_get(st, "bn.running_mean"), (const double[]){0.57, 0.38}, 2, 1e-15, "running_mean 2");
    ed_tensor_free(xt);
    ed_program_free(p);
    ed_store_free(st);
    ed_graph_free(g);
}

/* Eval: one row, normalized by the stored running statistics; nothing is updated and
 * the batch of 1 is fine. */
static void test_batch_norm_eval_batch_1(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("bn_eval");
    ed_graph_set_training(g, false);
    assert_false(ed_graph_training(g));
    ed_node *x = ed_input(g, "x", ED_F64, ed_shape2(1, 2));
    ed_output(g, "y", ed_batch_norm(x, "bn", 0, 0.1, true));
    assert_null(ed_graph_error(g));
    assert_int_equal(g->nupdates, 0);
    ed_store *st = ed_store_new(0);
    put(st, "bn.running_mean", ed_shape1(2), (const double[]){1, 2});
    put(st, "bn.running_var", ed_shape1(2), (const double[]){4, 9});
    put(st, "bn.g", ed_shape1(2), (const double[]){2, 1});
    put(st, "bn.b", ed_shape1(2), (const double[]){0.5, 0});
    ed_program *p = compile_with(g, st, ED_BACKEND_INTERP, 0);
    ed_tensor *xt = tensor_of(ED_F64, ed_shape2(1, 2), (const double[]){3, 5});
    run_ok(p, &(ed_feed){"x", xt}, 1);
    /* (3 - 1) / 2 * 2 + 0.5, (5 - 2) / 3 * 1 + 0 */
    expect_values(out(p, "y"), (const double[]){2.5, 1}, 2, 1e-15, "y");
    expect_values(ed_store_get(st, "bn.running_mean"), (const double[]){1, 2}, 2, 0, "running_mean unchanged");
    ed_tensor_free(xt);
    ed_program_free(p);
    ed_store_free(st);
    ed_graph_free(g);
}

/* BatchNorm2d: x [2, 2, 1, 2] (N, C, H, W) normalized per channel over N, H and W.
 * Channel 0 holds 1, 2 (sample 0) and 3, 6 (sample 1): the column 0 of the test above;
 * channel 1 holds 0, 0 and 4, 4: its column 1. The same figures must come out, in NCHW
 * order, in training and then in eval from the running statistics. */
static void test_batch_norm2d_per_channel(void **state)
{
    (void)state;
    for (int training = 1; training >= 0; training--) {
        ed_graph *g = ed_graph_new("bn2d");
        ed_graph_set_training(g, training);
        ed_node *x = ed_input(g, "x", ED_F64, ed_shape4(2, 2, 1, 2));
        ed_output(g, "y", ed_batch_norm2d(x, "bn", 0, 0.1, true));
        assert_null(ed_graph_error(g));
        assert_int_equal(ed_graph_leaf(g, ED_OP_PARAM, "bn.g")->shape.dim[0], 2);
        assert_int_equal(g->nupdates, training ? 2 : 0);
        ed_store *st = ed_store_new(0);
        if (!training) {
            put(st, "bn.running_mean", ed_shape1(2), (const double[]){3, 2});
            put(st, "bn.running_var", ed_shape1(2), (const double[]){3.5, 4});
            put(st, "bn.g", ed_shape1(2), (const double[]){1, 2});
            put(st, "bn.b", ed_shape1(2), (const double[]){0, 0.5});
        }
        ed_program *p = compile_with(g, st, training ? ED_BACKEND_JIT : ED_BACKEND_INTERP, 0);
        ed_tensor *xt = tensor_of(ED_F64, ed_shape4(2, 2, 1, 2), (const double[]){1, 2, 0, 0, 3, 6, 4, 4});
        run_ok(p, &(ed_feed){"x", xt}, 1);
        double s = sqrt(3.5), k = training ? 1 : 2, c = training ? 0 : 0.5;
        expect_values(out(p, "y"), (const double[]){-2 / s, -1 / s, -k + c, -k + c, 0, 3 / s, k + c, k + c}, 8, 1e-12,
                      "y");
        if (training) {
            expect_values(ed_store_get(st, "bn.running_mean"), (const double[]){0.3, 0.2}, 2, 1e-12, "running_mean");
            expect_values(ed_store_get(st, "bn.running_var"), (const double[]){0.9 + 1.4 / 3, 0.9 + 1.6 / 3}, 2, 1e-12,
                          "running_var");
        }
        ed_tensor_free(xt);
        ed_program_free(p);
        ed_store_free(st);
        ed_graph_free(g);
    }
    ed_graph *g = ed_graph_new("bn2d_rank");
    assert_null(ed_batch_norm2d(ed_input(g, "x", ED_F64, ed_shape2(4, 2)), "bn", 0, 0.1, true));
    assert_non_null(strstr(ed_graph_error(g), "batch_norm2d: x is"));
    ed_graph_free(g);
}

static void test_batch_norm_errors(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("bn");
    assert_null(ed_batch_norm(ed_input(g, "x", ED_F32, ed_shape2(1, 3)), "bn", 1e-5, 0.1, true));
    assert_non_null(strstr(ed_graph_error(g), "at least 2 values per feature"));
    ed_graph_free(g);
    g = ed_graph_new("bn");
    assert_null(ed_batch_norm(ed_input(g, "x", ED_F32, ed_shape1(3)), "bn", 1e-5, 0.1, true));
    assert_non_null(strstr(ed_graph_error(g), "rank >= 2"));
    ed_graph_free(g);
    g = ed_graph_new("bn");
    assert_null(ed_batch_norm(ed_input(g, "x", ED_F32, ed_shape2(4, 3)), "bn", 1e-5, 1.5, true));
    assert_non_null(strstr(ed_graph_error(g), "momentum"));
    ed_graph_free(g);
    g = ed_graph_new("dropout");
    assert_null(ed_dropout(ed_input(g, "x", ED_F32, ed_shape2(4, 3)), 1));
    assert_non_null(strstr(ed_graph_error(g), "rate"));
    ed_graph_free(g);
}

/* Dropout at rate 0.25 keeps each element as x / 0.75 or drops it to 0; about 3/4
 * survive; eval gives x itself. */
static void test_dropout(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("dropout");
    ed_node *x = ed_fill(g, ED_F32, ed_shape2(100, 40), 3);
    ed_output(g, "y", ed_dropout(x, 0.25));
    ed_program *p = compile_with(g, NULL, ED_BACKEND_INTERP, 7);
    run_ok(p, NULL, 0);
    const ed_tensor *y = out(p, "y");
    int kept = 0;
    for (int64_t i = 0; i < 4000; i++) {
        float v = f32_at(y, i);
        if (v != 0 && v != 4.0f) fail_msg("element %lld is %g, not 0 or 4", (long long)i, v);
        kept += v != 0;
    }
    /* 3000 expected, standard deviation sqrt(4000 * 0.75 * 0.25) = 27.4: five of them */
    assert_in_range(kept, 3000 - 137, 3000 + 137);
    ed_program_free(p);
    ed_graph_free(g);

    g = ed_graph_new("dropout_eval");
    ed_graph_set_training(g, false);
    x = ed_input(g, "x", ED_F32, ed_shape2(2, 2));
    assert_ptr_equal(ed_dropout(x, 0.3), x);
    ed_graph_set_training(g, true);
    assert_ptr_not_equal(ed_dropout(x, 0.3), x);
    ed_graph_free(g);
}

/* A dense layer, batch norm and dropout in training on f32, and a second program in
 * eval: the JIT's outputs and store (running statistics) against the interpreter's
 * over three calls. */
static ed_graph *block_graph(bool training)
{
    ed_graph *g = ed_graph_new(training ? "train" : "eval");
    ed_graph_set_training(g, training);
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(7, 5));
    ed_node *h = ed_dropout(ed_relu(ed_batch_norm(ed_dense(x, "fc", 6, true), "bn", 1e-5, 0.1, true)), 0.3);
    ed_output(g, "y", h);
    assert_null(ed_graph_error(g));
    return g;
}

static void test_jit_against_interp(void **state)
{
    (void)state;
    rng_seed(11);
    for (int mode = 0; mode < 2; mode++) {
        ed_graph *g = block_graph(mode == 0);
        random_feeds fd;
        random_feeds_make(g, -2, 2, &fd);
        program_set ps;
        ed_compile_opts opts[2] = {{.backend = ED_BACKEND_INTERP}, {.backend = ED_BACKEND_JIT}};
        programs_compile(&ps, g, opts, 2, "batch norm");
        for (int call = 0; call < 3; call++) {
            programs_run(&ps, &fd, "batch norm");
            programs_check_outputs(&ps, 0, 1, check_tensors_close, 2e-6, "batch norm", call);
            programs_check_stores(&ps, 0, 1, check_tensors_close, 2e-6, "batch norm");
        }
        programs_free(&ps);
        random_feeds_free(&fd);
        ed_graph_free(g);
    }
}

/* The mode is the graph's: clones keep it and loop bodies take the outer graph's. */
static void test_mode_travels(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("g");
    ed_graph_set_training(g, false);
    ed_graph *c = ed_graph_clone(g);
    assert_false(ed_graph_training(c));
    ed_loop_builder *b = ed_loop_begin(g, 2);
    assert_false(ed_graph_training(ed_loop_body(b)));
    ed_loop_end(b, NULL, 0, NULL, 0);
    ed_graph_free(c);
    ed_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_norm_training_by_hand),
        cmocka_unit_test(test_batch_norm_eval_batch_1),
        cmocka_unit_test(test_batch_norm_errors),
        cmocka_unit_test(test_batch_norm2d_per_channel),
        cmocka_unit_test(test_dropout),
        cmocka_unit_test(test_jit_against_interp),
        cmocka_unit_test(test_mode_travels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
