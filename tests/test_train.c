/* Optimizers, schedules, clipping, EMA and the training-step builder on the interpreter.
 * Expected trajectories were computed by hand (SGD) or with a few lines of Python
 * written from the update formulas (Adam, AdamW, Nesterov, cosine), not by this code. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "backend/backend.h"
#include "frontend/nn.h"
#include "frontend/optim.h"
#include "ir/text.h"
#include "models/data_parallel.h"
#include "models/train_step.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* loss = sum((x - c)^2), x = param "x" starting at [1, -2], c = [0.5, 0.5] (f64). */
static ed_graph *quadratic(ed_node **x_out)
{
    ed_graph *g = ed_graph_new("quad");
    ed_node *x = ed_param(g, "x", ED_F64, ed_shape1(2), (ed_init){ED_INIT_ZEROS, 0});
    ed_node *c = ed_const(g, ED_F64, ed_shape1(2), (double[]){0.5, 0.5}, 2);
    ed_node *loss = ed_sum(ed_square(ed_sub(x, c)), ED_ALL_AXES, false);
    if (x_out) *x_out = x;
    ed_output(g, "loss", loss);
    return g;
}

static ed_store *store_with_x(void)
{
    ed_store *st = ed_store_new(0);
    ed_tensor *t = ed_tensor_new(ED_F64, ed_shape1(2));
    ((double *)t->data)[0] = 1;
    ((double *)t->data)[1] = -2;
    ed_store_put(st, "x", t, true);
    return st;
}

/* Train for rows steps and compare x after each step with want[step][0..1]. */
static void check_trajectory(const ed_train_opts *o, const double want[][2], int rows, double tol)
{
    ed_graph *g = quadratic(NULL);
    assert_int_equal(ed_train_step(g, ed_graph_output(g, "loss"), o), ED_OK);
    ed_store *st = store_with_x();
    ed_program *p = ed_compile(g, st, NULL);
    if (!p) fail_msg("%s", ed_last_error());
    for (int s = 0; s < rows; s++) {
        assert_int_equal(ed_run(p, NULL, 0), ED_OK);
        const double *x = ed_store_get(st, "x")->data;
        for (int i = 0; i < 2; i++)
            if (fabs(x[i] - want[s][i]) > tol)
                fail_msg("step %d x[%d] = %.17g, want %.17g", s + 1, i, x[i], want[s][i]);
    }
    assert_float_equal(ed_tensor_get(ed_store_get(st, "opt.step"), 0), rows, 0);
    ed_program_free(p);
    ed_store_free(st);
    ed_graph_free(g);
}

static void test_adam_three_steps(void **state)
{
    (void)state;
    const double want[3][2] = {{0.90000000099999999, -1.9000000001999999},
                               {0.80118742165916679, -1.8001271883808261},
                               {0.70487125256029959, -1.7004739338629591}};
    check_trajectory(&(ed_train_opts){.optim = {.kind = ED_OPT_ADAM, .lr = 0.1}}, want, 3, 1e-12);
}

/* betas (0, 0.9) taken exactly (WGAN-GP's), not as "zero means the default"; the
 * values from the same recursion written out in Python. */
static void test_adam_exact_betas(void **state)
{
    (void)state;
    const double want[3][2] = {{0.900000001, -1.9000000002},
                               {0.8111399776837476, -1.801955886746585},
                               {0.7342114129895958, -1.705843517927261}};
    check_trajectory(&(ed_train_opts){.optim = {.kind = ED_OPT_ADAM, .lr = 0.1, .beta2 = 0.9, .exact_betas = true}},
                     want, 3, 1e-12);
}

static void test_adamw_three_steps(void **state)
{
    (void)state;
    const double want[3][2] = {{0.89000000099999999, -1.8800000001999999},
                               {0.78249473905553768, -1.7613583758696036},
                               {0.67904017100862957, -1.644176218495963}};
    check_trajectory(&(ed_train_opts){.optim = {.kind = ED_OPT_ADAMW, .lr = 0.1, .weight_decay = 0.1}}, want, 3, 1e-12);
}

static void test_sgd_momentum_three_steps(void **state)
{
    (void)state;
    /* g = 2 (x - c); b = 0.9 b + g; x -= 0.1 b:
     * b1 = [1, -5], x1 = [0.9, -1.5]; g1 = [0.8, -4], b2 = [1.7, -8.5], x2 = [0.73, -0.65];
     * g2 = [0.46, -2.3], b3 = [1.99, -9.95], x3 = [0.531, 0.345] */
    const double want[3][2] = {{0.9, -1.5}, {0.73, -0.65}, {0.531, 0.345}};
    check_trajectory(&(ed_train_opts){.optim = {.kind = ED_OPT_SGD, .lr = 0.1, .momentum = 0.9}}, want, 3, 1e-12);
    const double nesterov[3][2] = {{0.81000000000000005, -1.0499999999999998},
                                   {0.61119999999999997, -0.055999999999999828},
                                   {0.445824, 0.77088000000000023}};
    check_trajectory(&(ed_train_opts){.optim = {.kind = ED_OPT_SGD, .lr = 0.1, .momentum = 0.9, .nesterov = true}},
                     nesterov, 3, 1e-12);
    /* plain SGD with L2 weight decay 0.5: g = [1, -5] + 0.5 [1, -2] = [1.5, -6]; x1 = x0 - 0.1 g */
    const double decay[1][2] = {{0.85, -1.4}};
    check_trajectory(&(ed_train_opts){.optim = {.kind = ED_OPT_SGD, .lr = 0.1, .weight_decay = 0.5}}, decay, 1, 1e-12);
}

static void test_clipping(void **state)
{
    (void)state;
    /* g = [1, -5], |g| = sqrt 26; clip to 1: x1 = x0 - g / (sqrt 26 + 1e-6) with lr 1 */
    double s = 1 / (sqrt(26) + 1e-6);
    const double want[1][2] = {{1 - s, -2 + 5 * s}};
    check_trajectory(&(ed_train_opts){.optim = {.kind = ED_OPT_SGD, .lr = 1, .clip_norm = 1}}, want, 1, 1e-12);
    /* A norm under the limit is left alone. */
    const double same[1][2] = {{0.9, -1.5}};
    check_trajectory(&(ed_train_opts){.optim = {.kind = ED_OPT_SGD, .lr = 0.1, .clip_norm = 100}}, same, 1, 1e-12);
}

static void test_outputs_of_train_step(void **state)
{
    (void)state;
    ed_graph *g = quadratic(NULL);
    ed_train_opts o = {.optim = {.kind = ED_OPT_SGD, .lr = 0.1}};
    assert_int_equal(ed_train_step(g, ed_graph_output(g, "loss"), &o), ED_OK);
    ed_store *st = store_with_x();
    ed_program *p = ed_compile(g, st, NULL);
    assert_non_null(p);
    assert_int_equal(ed_run(p, NULL, 0), ED_OK);
    /* loss and grad_norm are of the params before the step: (0.5^2 + 2.5^2), |[1, -5]| */
    assert_float_equal(ed_tensor_get(ed_program_output(p, "loss"), 0), 6.5, 1e-12);
    assert_float_equal(ed_tensor_get(ed_program_output(p, "grad_norm"), 0), sqrt(26), 1e-12);
    assert_float_equal(ed_tensor_get(ed_program_output(p, "lr"), 0), 0.1, 1e-15);
    ed_program_free(p);
    ed_store_free(st);
    ed_graph_free(g);
}

/* Two params "a.x" and "b.x" in one loss; a step that trains group "a." moves a.x only,
 * keeps b.x bit for bit, and makes optimizer state for a.x alone (b.x is frozen). */
static void test_groups_freeze_the_rest(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("groups");
    ed_node *a = ed_param(g, "a.x", ED_F64, ed_shape1(2), (ed_init){ED_INIT_ONES, 0});
    ed_node *b = ed_param(g, "b.x", ED_F64, ed_shape1(2), (ed_init){ED_INIT_ONES, 0});
    ed_node *loss = ed_sum(ed_square(ed_mul(a, b)), ED_ALL_AXES, false);
    const char *const groups[] = {"a.", NULL};
    ed_train_opts o = {.optim = {.kind = ED_OPT_ADAM, .lr = 0.1}, .groups = groups};
    assert_int_equal(ed_train_step(g, loss, &o), ED_OK);
    assert_non_null(ed_graph_update(g, "a.x"));
    assert_null(ed_graph_update(g, "b.x"));
    ed_store *st = ed_store_new(0);
    ed_program *p = ed_compile(g, st, NULL);
    if (!p) fail_msg("%s", ed_last_error());
    assert_int_equal(ed_run(p, NULL, 0), ED_OK);
    assert_true(ed_tensor_get(ed_store_get(st, "a.x"), 0) < 1);
    assert_true(ed_tensor_get(ed_store_get(st, "b.x"), 0) == 1);
    assert_non_null(ed_store_get(st, "opt.m.a.x"));
    assert_null(ed_store_get(st, "opt.m.b.x"));
    ed_program_free(p);
    ed_store_free(st);
    ed_graph_free(g);
    assert_true(ed_train_in_groups("gen.fc.w", (const char *const[]){"disc.", "gen.", NULL}));
    assert_false(ed_train_in_groups("genx.w", (const char *const[]){"gen.", NULL}));
    assert_true(ed_train_in_groups("anything", NULL));

    /* No param in the groups is an error on the graph, not a silent no-op. */
    g = quadratic(NULL);
    const char *const none[] = {"zzz.", NULL};
    o.groups = none;
    assert_int_equal(ed_train_step(g, ed_graph_output(g, "loss"), &o), ED_ERR);
    assert_non_null(strstr(ed_graph_error(g), "no params to train in the given groups"));
    ed_graph_free(g);
}

static void test_schedules(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("s");
    ed_node *step = ed_input(g, "step", ED_I32, ed_shape0());
    ed_schedule cosine = {.kind = ED_SCHED_COSINE, .warmup_steps = 2, .total_steps = 10, .min_ratio = 0.1};
    ed_schedule warm = {.kind = ED_SCHED_WARMUP, .warmup_steps = 4};
    ed_output(g, "cos", ed_schedule_factor(step, &cosine, ED_F64));
    ed_output(g, "warm", ed_schedule_factor(step, &warm, ED_F64));
    ed_output(g, "const", ed_schedule_factor(step, &(ed_schedule){0}, ED_F64));
    ed_program *p = ed_compile(g, NULL, NULL);
    assert_non_null(p);
    const double want_cos[12] = {0.5,
                                 1,
                                 1,
                                 0.96574578963007907,
                                 0.86819805153394636,
                                 0.72220754456429037,
                                 0.55000000000000004,
                                 0.37779245543570961,
                                 0.23180194846605365,
                                 0.13425421036992097,
                                 0.1,
                                 0.1};
    for (int s = 0; s < 12; s++) {
        int32_t sv = s;
        ed_tensor *t = ed_tensor_wrap(ED_I32, ed_shape0(), &sv);
        assert_int_equal(ed_run(p, &(ed_feed){"step", t}, 1), ED_OK);
        assert_float_equal(ed_tensor_get(ed_program_output(p, "cos"), 0), want_cos[s], 1e-12);
        assert_float_equal(ed_tensor_get(ed_program_output(p, "warm"), 0), s < 4 ? (s + 1) / 4.0 : 1, 1e-15);
        assert_float_equal(ed_tensor_get(ed_program_output(p, "const"), 0), 1, 0);
        ed_tensor_free(t);
    }
    ed_program_free(p);
    ed_graph_free(g);
    g = ed_graph_new("bad");
    step = ed_input(g, "step", ED_I32, ed_shape0());
    assert_null(
        ed_schedule_factor(step, &(ed_schedule){.kind = ED_SCHED_COSINE, .warmup_steps = 5, .total_steps = 5}, ED_F32));
    assert_non_null(strstr(ed_graph_error(g), "cosine needs total > warmup"));
    ed_graph_free(g);
}

static void test_ema(void **state)
{
    (void)state;
    /* SGD lr 0.1: x1 = [0.9, -1.5], x2 = [0.82, -1.1]. EMA decay 0.5 starts at x1, then
     * 0.5 x1 + 0.5 x2 = [0.86, -1.3]. */
    ed_graph *g = quadratic(NULL);
    ed_train_opts o = {.optim = {.kind = ED_OPT_SGD, .lr = 0.1}, .ema_decay = 0.5};
    assert_int_equal(ed_train_step(g, ed_graph_output(g, "loss"), &o), ED_OK);
    ed_store *st = store_with_x();
    ed_program *p = ed_compile(g, st, NULL);
    assert_non_null(p);
    assert_int_equal(ed_run(p, NULL, 0), ED_OK);
    const double *ema = ed_store_get(st, "opt.ema.x")->data;
    assert_float_equal(ema[0], 0.9, 1e-15);
    assert_float_equal(ema[1], -1.5, 1e-15);
    assert_int_equal(ed_run(p, NULL, 0), ED_OK);
    ema = ed_store_get(st, "opt.ema.x")->data;
    assert_float_equal(ema[0], 0.86, 1e-15);
    assert_float_equal(ema[1], -1.3, 1e-15);
    ed_program_free(p);
    ed_store_free(st);
    ed_graph_free(g);
}

/* The warm-up EMA over 3 steps by hand: SGD lr 0.1 gives x1 = [0.9, -1.5], x2 = [0.82,
 * -1.1], x3 = [0.756, -0.78]; the EMA starts at x1, then d_n = min(decay, (1 + n) / (10 +
 * n)): 2/11 and 3/12 at steps 1 and 2 when decay is 0.99, the decay itself (0.2) at step
 * 2 when it is lower, so both sides of the min are taken. */
static void test_ema_warmup(void **state)
{
    (void)state;
    static const double xs[3][2] = {{0.9, -1.5}, {0.82, -1.1}, {0.756, -0.78}};
    static const double decays[2] = {0.99, 0.2};
    for (int k = 0; k < 2; k++) {
        ed_graph *g = quadratic(NULL);
        ed_train_opts o = {.optim = {.kind = ED_OPT_SGD, .lr = 0.1}, .ema_decay = decays[k], .ema_warmup = true};
        assert_int_equal(ed_train_step(g, ed_graph_output(g, "loss"), &o), ED_OK);
        ed_store *st = store_with_x();
        ed_program *p = ed_compile(g, st, NULL);
        assert_non_null(p);
        double want[2] = {xs[0][0], xs[0][1]};
        for (int n = 0; n < 3; n++) {
            assert_int_equal(ed_run(p, NULL, 0), ED_OK);
            double d = fmin(decays[k], (1.0 + n) / (10.0 + n));
            for (int i = 0; i < 2 && n > 0; i++) want[i] = d * want[i] + (1 - d) * xs[n][i];
            const double *ema = ed_store_get(st, "opt.ema.x")->data;
            assert_float_equal(ema[0], want[0], 1e-15);
            assert_float_equal(ema[1], want[1], 1e-15);
        }
        /* 0.99: 0.25 (2/11 x1 + 9/11 x2) + 0.75 x3, written out once */
        if (k == 0)
            assert_float_equal(((const double *)ed_store_get(st, "opt.ema.x")->data)[0],
                               0.25 * (2.0 / 11 * 0.9 + 9.0 / 11 * 0.82) + 0.75 * 0.756, 1e-15);
        ed_program_free(p);
        ed_store_free(st);
        ed_graph_free(g);
    }
}

/* XOR with a 2-16-1 tanh MLP, Adam, on the interpreter: the loss must fall below 0.01. */
static void test_mlp_learns_xor(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("xor");
    ed_node *x = ed_const(g, ED_F32, ed_shape2(4, 2), (double[]){0, 0, 0, 1, 1, 0, 1, 1}, 8);
    ed_node *t = ed_const(g, ED_F32, ed_shape2(4, 1), (double[]){0, 1, 1, 0}, 4);
    int64_t sizes[2] = {16, 1};
    ed_node *y = ed_mlp(x, "mlp", sizes, 2, ED_ACT_TANH, false);
    ed_node *loss = ed_mean(ed_square(ed_sub(y, t)), ED_ALL_AXES, false);
    assert_int_equal(ed_train_step(g, loss, &(ed_train_opts){.optim = {.kind = ED_OPT_ADAM, .lr = 0.05}}), ED_OK);
    ed_store *st = ed_store_new(1);
    ed_program *p = ed_compile(g, st, NULL);
    assert_non_null(p);
    double first = 0, last = 0;
    for (int step = 0; step < 300; step++) {
        assert_int_equal(ed_run(p, NULL, 0), ED_OK);
        last = ed_tensor_get(ed_program_output(p, "loss"), 0);
        if (step == 0) first = last;
    }
    print_message("xor: loss %.4f -> %.6f after 300 Adam steps\n", first, last);
    assert_true(first > 0.1);
    assert_true(last < 0.01);
    ed_program_free(p);
    ed_store_free(st);
    ed_graph_free(g);
}

/* The text form of a training step round-trips, and the parsed graph trains the same. */
static void test_train_step_text_round_trip(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("step");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(8, 3));
    ed_node *h = ed_dense(x, "fc", 4, true);
    ed_node *noise = ed_randn(g, ED_F32, ed_shape2(8, 4));
    ed_node *loss = ed_mean(ed_square(ed_sub(ed_silu(h), noise)), ED_ALL_AXES, false);
    ed_train_opts o = {.optim = {.kind = ED_OPT_ADAMW,
                                 .lr = 0.01,
                                 .weight_decay = 0.01,
                                 .clip_norm = 1,
                                 .schedule = {.kind = ED_SCHED_COSINE, .warmup_steps = 2, .total_steps = 10}},
                       .ema_decay = 0.9};
    assert_int_equal(ed_train_step(g, loss, &o), ED_OK);
    char *text = ed_graph_print(g);
    ed_graph *back = ed_graph_parse(text, "step.edir");
    if (!back) fail_msg("%s", ed_last_error());
    char *again = ed_graph_print(back);
    assert_string_equal(text, again);

    float xv[24];
    for (int i = 0; i < 24; i++) xv[i] = (float)(i % 5) * 0.25f - 0.5f;
    ed_tensor *xt = ed_tensor_wrap(ED_F32, ed_shape2(8, 3), xv);
    ed_store *s1 = ed_store_new(3), *s2 = ed_store_new(3);
    ed_program *p1 = ed_compile(g, s1, &(ed_compile_opts){.seed = 5});
    ed_program *p2 = ed_compile(back, s2, &(ed_compile_opts){.seed = 5});
    assert_non_null(p1);
    assert_non_null(p2);
    double prev = -1;
    for (int step = 0; step < 4; step++) {
        assert_int_equal(ed_run(p1, &(ed_feed){"x", xt}, 1), ED_OK);
        assert_int_equal(ed_run(p2, &(ed_feed){"x", xt}, 1), ED_OK);
        double l1 = ed_tensor_get(ed_program_output(p1, "loss"), 0);
        double l2 = ed_tensor_get(ed_program_output(p2, "loss"), 0);
        assert_true(l1 == l2);   /* same graph, same seed: same bits */
        assert_true(l1 != prev); /* the random stream advances every call */
        prev = l1;
    }
    assert_float_equal(ed_tensor_get(ed_store_get(s1, "opt.step"), 0), 4, 0);
    ed_tensor_free(xt);
    ed_program_free(p1);
    ed_program_free(p2);
    ed_store_free(s1);
    ed_store_free(s2);
    free(text);
    free(again);
    ed_graph_free(back);
    ed_graph_free(g);
}

static void test_bad_options(void **state)
{
    (void)state;
    ed_graph *g = quadratic(NULL);
    assert_int_equal(
        ed_train_step(g, ed_graph_output(g, "loss"), &(ed_train_opts){.optim = {.kind = ED_OPT_ADAM, .beta1 = 1.5}}),
        ED_ERR);
    assert_non_null(strstr(ed_graph_error(g), "optimizer: bad options"));
    ed_graph_free(g);
    g = quadratic(NULL);
    assert_int_equal(ed_train_step(g, ed_graph_output(g, "loss"), &(ed_train_opts){.optim = {.nesterov = true}}),
                     ED_ERR);
    assert_non_null(strstr(ed_graph_error(g), "nesterov needs momentum"));
    ed_graph_free(g);
    g = ed_graph_new("none");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape0());
    assert_int_equal(ed_train_step(g, ed_square(x), NULL), ED_ERR);
    assert_non_null(strstr(ed_graph_error(g), "no params to train"));
    ed_graph_free(g);
}

/* ---- data parallel without MPI: the split of a step's random draws ---------------- */

/* x [b, 3] plus per-row noise, per-row times, and one draw of 4 values for the batch. */
static ed_graph *draws_graph(int64_t b)
{
    ed_graph *g = ed_graph_new("draws");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(b, 3));
    ed_output(g, "noise", ed_add(x, ed_randn(g, ED_F32, ed_shape2(b, 3))));
    ed_output(g, "t", ed_randint(g, ed_shape1(b), 0, 1000));
    ed_output(g, "shared", ed_randn(g, ED_F32, ed_shape1(4)));
    return g;
}

static ed_program *run_draws(ed_graph *g, int64_t b)
{
    ed_program *p = ed_compile(g, NULL, &(ed_compile_opts){.seed = 5});
    assert_non_null(p);
    ed_tensor *x = ed_tensor_new(ED_F32, ed_shape2(b, 3));
    assert_int_equal(ed_run(p, &(ed_feed){"x", x}, 1), ED_OK);
    ed_tensor_free(x);
    return p;
}

/* Rank r of 2 draws rows [4r, 4r + 4) of one process's draws for the batch of 8, bit for
 * bit; the draw of 4 values, whose size the batch does not set (though it equals the
 * local batch), stays whole. */
static void test_data_parallel_draws_are_the_batch_rows(void **state)
{
    (void)state;
    ed_graph *whole = draws_graph(8), *probe = draws_graph(8);
    ed_program *one = run_draws(whole, 8);
    for (int rank = 0; rank < 2; rank++) {
        ed_graph *g = draws_graph(4);
        assert_int_equal(ed_dp_split_draws(g, probe, 4, rank, 2), ED_OK);
        ed_program *p = run_draws(g, 4);
        const ed_tensor *noise = ed_program_output(p, "noise"), *t = ed_program_output(p, "t");
        assert_memory_equal(noise->data, (const float *)ed_program_output(one, "noise")->data + 12 * rank, 12 * 4);
        assert_memory_equal(t->data, (const int32_t *)ed_program_output(one, "t")->data + 4 * rank, 4 * 4);
        assert_memory_equal(ed_program_output(p, "shared")->data, ed_program_output(one, "shared")->data, 4 * 4);
        ed_program_free(p);
        ed_graph_free(g);
    }
    ed_program_free(one);
    ed_graph_free(whole);
    ed_graph_free(probe);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adam_three_steps),
        cmocka_unit_test(test_adam_exact_betas),
        cmocka_unit_test(test_adamw_three_steps),
        cmocka_unit_test(test_sgd_momentum_three_steps),
        cmocka_unit_test(test_clipping),
        cmocka_unit_test(test_outputs_of_train_step),
        cmocka_unit_test(test_groups_freeze_the_rest),
        cmocka_unit_test(test_schedules),
        cmocka_unit_test(test_ema),
        cmocka_unit_test(test_ema_warmup),
        cmocka_unit_test(test_mlp_learns_xor),
        cmocka_unit_test(test_train_step_text_round_trip),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_data_parallel_draws_are_the_batch_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
