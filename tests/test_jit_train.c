/* Whole training steps on the JIT against the interpreter: an MLP with noisy inputs
 * and dropout (forward, backward, Adam) for 20 steps, losses within 1e-5 relative and
 * the random draws identical bit for bit; and the errors a bad call must give. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "backend/backend.h"
#include "frontend/nn.h"
#include "models/train_step.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

enum { BATCH = 37, IN = 13, STEPS = 20 };

/* y = sin(3 x0) + x1 x2 on x in [-1, 1]^13: a smooth target the MLP can fit. */
static void fill_data(ed_tensor *x, ed_tensor *y)
{
    uint64_t s = 12345;
    for (int64_t i = 0; i < BATCH * IN; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        ed_tensor_set(x, i, (double)(s >> 11) / 9007199254740992.0 * 2 - 1);
    }
    for (int64_t b = 0; b < BATCH; b++) {
        double x0 = ed_tensor_get(x, b * IN), x1 = ed_tensor_get(x, b * IN + 1), x2 = ed_tensor_get(x, b * IN + 2);
        ed_tensor_set(y, b, sin(3 * x0) + x1 * x2);
    }
}

/* Inputs get Gaussian noise and the hidden layer a dropout mask, both drawn inside the
 * step; the noise and mask are outputs so the test can compare their bits. */
static ed_graph *build_step(void)
{
    ed_graph *g = ed_graph_new("train");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(BATCH, IN));
    ed_node *y = ed_input(g, "y", ED_F32, ed_shape2(BATCH, 1));
    ed_node *noise = ed_randn(g, ED_F32, ed_shape2(BATCH, IN));
    ed_node *xn = ed_add(x, ed_mul(noise, ed_scalar(g, ED_F32, 0.05)));
    ed_node *h = ed_silu(ed_dense(xn, "l1", 64, true));
    ed_node *keep = ed_bernoulli(g, ED_F32, ed_shape2(BATCH, 64), 0.9);
    h = ed_mul(h, ed_div(keep, ed_scalar(g, ED_F32, 0.9)));
    h = ed_tanh(ed_dense(h, "l2", 64, true));
    ed_node *pred = ed_dense(h, "l3", 1, true);
    ed_node *loss = ed_mean(ed_square(ed_sub(pred, y)), ED_ALL_AXES, false);
    ed_output(g, "noise", noise);
    ed_output(g, "keep", keep);
    ed_train_opts o = {.optim = {.kind = ED_OPT_ADAM, .lr = 3e-3}};
    assert_int_equal(ed_train_step(g, loss, &o), ED_OK);
    return g;
}

static bool same_bits(const ed_tensor *a, const ed_tensor *b)
{
    return ed_tensor_bytes(a) == ed_tensor_bytes(b) && memcmp(a->data, b->data, ed_tensor_bytes(a)) == 0;
}

static void test_mlp_training_20_steps(void **state)
{
    (void)state;
    ed_graph *g = build_step();
    ed_tensor *x = ed_tensor_new(ED_F32, ed_shape2(BATCH, IN)), *y = ed_tensor_new(ED_F32, ed_shape2(BATCH, 1));
    fill_data(x, y);
    ed_feed feeds[2] = {{"x", x}, {"y", y}};
    ed_store *si = ed_store_new(3), *sj = ed_store_new(3);
    ed_program *pi = ed_compile(g, si, &(ed_compile_opts){.backend = ED_BACKEND_INTERP, .seed = 9});
    ed_program *pj = ed_compile(g, sj, &(ed_compile_opts){.backend = ED_BACKEND_JIT, .seed = 9});
    if (!pi || !pj) fail_msg("compile: %s", ed_last_error());
    double first = 0, last = 0, worst = 0;
    for (int s = 0; s < STEPS; s++) {
        if (ed_run(pi, feeds, 2) != ED_OK || ed_run(pj, feeds, 2) != ED_OK) fail_msg("run: %s", ed_last_error());
        assert_true(same_bits(ed_program_output(pi, "noise"), ed_program_output(pj, "noise")));
        assert_true(same_bits(ed_program_output(pi, "keep"), ed_program_output(pj, "keep")));
        double li = ed_tensor_get(ed_program_output(pi, "loss"), 0);
        double lj = ed_tensor_get(ed_program_output(pj, "loss"), 0);
        double rel = fabs(li - lj) / fabs(li);
        if (rel > worst) worst = rel;
        if (rel > 1e-5) fail_msg("step %d: loss interp %.9g, jit %.9g (rel %.3g)", s, li, lj, rel);
        if (s == 0) first = li;
        last = li;
    }
    printf("20 Adam steps: loss %.5f -> %.5f, worst relative loss difference %.3g\n", first, last, worst);
    assert_true(last < 0.8 * first); /* it really trains */
    assert_int_equal(ed_tensor_get(ed_store_get(sj, "opt.step"), 0), STEPS);
    ed_program_free(pi);
    ed_program_free(pj);
    ed_store_free(si);
    ed_store_free(sj);
    ed_tensor_free(x);
    ed_tensor_free(y);
    ed_graph_free(g);
}

/* ---- bad calls ---------------------------------------------------------------------- */

static ed_program *small_program(ed_graph **gp)
{
    ed_graph *g = ed_graph_new("g");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(3, 4));
    ed_node *n = ed_input(g, "n", ED_I32, ed_shape0());
    ed_output(g, "y", ed_mul(ed_exp(x), ed_cast(n, ED_F32)));
    ed_program *p = ed_compile(g, NULL, &(ed_compile_opts){.backend = ED_BACKEND_JIT});
    if (!p) fail_msg("%s", ed_last_error());
    *gp = g;
    return p;
}

static void test_unbound_input_is_an_error(void **state)
{
    (void)state;
    ed_graph *g;
    ed_program *p = small_program(&g);
    ed_tensor *x = ed_tensor_new(ED_F32, ed_shape2(3, 4));
    assert_int_equal(ed_run(p, &(ed_feed){"x", x}, 1), ED_ERR);
    assert_non_null(strstr(ed_last_error(), "\"n\""));
    ed_tensor_free(x);
    ed_program_free(p);
    ed_graph_free(g);
}

static void test_wrong_dtype_is_an_error(void **state)
{
    (void)state;
    ed_graph *g;
    ed_program *p = small_program(&g);
    ed_tensor *x = ed_tensor_new(ED_F32, ed_shape2(3, 4)), *n = ed_tensor_new(ED_F32, ed_shape0());
    ed_feed f[2] = {{"x", x}, {"n", n}};
    assert_int_equal(ed_run(p, f, 2), ED_ERR);
    assert_string_equal(ed_last_error(), "input \"n\": fed f32[], graph wants i32[]");
    /* the program is still usable after a refused call */
    ed_tensor_free(n);
    n = ed_tensor_new(ED_I32, ed_shape0());
    ed_tensor_set(n, 0, 2);
    f[1].tensor = n;
    assert_int_equal(ed_run(p, f, 2), ED_OK);
    assert_float_equal(ed_tensor_get(ed_program_output(p, "y"), 0), 2.0, 0);
    ed_tensor_free(x);
    ed_tensor_free(n);
    ed_program_free(p);
    ed_graph_free(g);
}

static void test_unknown_feed_is_an_error(void **state)
{
    (void)state;
    ed_graph *g;
    ed_program *p = small_program(&g);
    ed_tensor *x = ed_tensor_new(ED_F32, ed_shape2(3, 4)), *n = ed_tensor_new(ED_I32, ed_shape0());
    ed_feed f[3] = {{"x", x}, {"n", n}, {"z", x}};
    assert_int_equal(ed_run(p, f, 3), ED_ERR);
    assert_non_null(strstr(ed_last_error(), "\"z\""));
    ed_tensor_free(x);
    ed_tensor_free(n);
    ed_program_free(p);
    ed_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mlp_training_20_steps),
        cmocka_unit_test(test_unbound_input_is_an_error),
        cmocka_unit_test(test_wrong_dtype_is_an_error),
        cmocka_unit_test(test_unknown_feed_is_an_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
