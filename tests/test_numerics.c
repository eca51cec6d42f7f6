/* The numeric guard (--check-numerics, EDIFICE_CHECK_NUMERICS; runtime/numerics.h): a
 * call that computes a NaN or an infinity fails naming the op that made it, on both
 * backends, writes no update, and is off unless asked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "support/cli_run.h"
#include "support/run_check.h"

#include "backend/backend.h"
#include "frontend/frontend.h"
#include "frontend/loop.h"
#include "runtime/error.h"
#include "runtime/store.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static ed_backend backend;

static int on_jit_backend(void **state)
{
    (void)state;
    backend = ED_BACKEND_JIT;
    return 0;
}

static int on_interp_backend(void **state)
{
    (void)state;
    backend = ED_BACKEND_INTERP;
    return 0;
}

static void assert_error_has(const char *part)
{
    const char *err = ed_last_error();
    if (!err || !strstr(err, part))
        fail_msg("expected an error containing\n  %s\ngot\n  %s", part, err ? err : "(none)");
}

static ed_program *compile_checked(const ed_graph *g, ed_store *st, bool check)
{
    ed_compile_opts o = {.backend = backend, .check_numerics = check};
    ed_program *p = ed_compile(g, st, &o);
    if (!p) fail_msg("compile: %s", ed_last_error());
    return p;
}

/* y = log(x) * x on x = [1, 2, -1, 3]: log makes a NaN at element 2. A state s takes y
 * as its update, so a failed call must leave it as it was. */
static ed_graph *log_graph(void)
{
    ed_graph *g = ed_graph_new("g");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape1(4));
    ed_node *s = ed_state(g, "s", ED_F32, ed_shape1(4), (ed_init){ED_INIT_ONES, 1});
    ed_node *y = ed_mul(ed_set_name(ed_log(x), "logx"), x);
    ed_output(g, "y", ed_add(y, s));
    ed_update(g, "s", y);
    assert_null(ed_graph_error(g));
    return g;
}

static ed_tensor *x_with(float bad)
{
    ed_tensor *x = ed_tensor_new(ED_F32, ed_shape1(4));
    float *v = x->data;
    v[0] = 1, v[1] = 2, v[2] = bad, v[3] = 3;
    return x;
}

static void test_names_the_op(void **state)
{
    (void)state;
    ed_graph *g = log_graph();
    ed_store *st = ed_store_new(1);
    ed_program *p = compile_checked(g, st, true);
    ed_tensor *x = x_with(-1);
    ed_feed f = {"x", x};
    assert_int_equal(ed_run(p, &f, 1), ED_ERR);
    assert_error_has("check-numerics: nan at element 2 of %");
    assert_error_has("= log \"logx\" : f32[4] in graph @g");
    const float *s = ed_store_get(st, "s")->data;
    for (int i = 0; i < 4; i++) assert_true(s[i] == 1.0f); /* no update written */
    assert_int_equal(ed_program_calls(p), 0);
    /* A good call on the same program runs and counts. */
    ((float *)x->data)[2] = 4;
    assert_int_equal(ed_run(p, &f, 1), ED_OK);
    assert_int_equal(ed_program_calls(p), 1);
    assert_true(fabsf(((const float *)ed_store_get(st, "s")->data)[2] - 4 * logf(4)) < 1e-5f);
    ed_tensor_free(x);
    ed_program_free(p);
    ed_store_free(st);
    ed_graph_free(g);
}

/* Off unless asked: the same call runs and hands out the NaN. */
static void test_off_by_default(void **state)
{
    (void)state;
    ed_graph *g = log_graph();
    ed_store *st = ed_store_new(1);
    ed_program *p = compile_checked(g, st, false);
    ed_tensor *x = x_with(-1);
    ed_feed f = {"x", x};
    assert_int_equal(ed_run(p, &f, 1), ED_OK);
    assert_true(isnan(f32_at(out(p, "y"), 2)));
    ed_tensor_free(x);
    ed_program_free(p);
    ed_store_free(st);
    ed_graph_free(g);
}

/* EDIFICE_CHECK_NUMERICS=1 turns it on for any compile; an infinity is named as such. */
static void test_env_and_inf(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("g");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape1(4));
    ed_output(g, "y", ed_neg(ed_set_name(ed_exp(x), "grows")));
    setenv("EDIFICE_CHECK_NUMERICS", "1", 1);
    ed_program *p = compile_checked(g, NULL, false);
    unsetenv("EDIFICE_CHECK_NUMERICS");
    ed_tensor *x4 = x_with(100); /* exp(100) overflows f32 */
    ed_feed f = {"x", x4};
    assert_int_equal(ed_run(p, &f, 1), ED_ERR);
    assert_error_has("inf at element 2 of %");
    assert_error_has("= exp \"grows\"");
    ed_tensor_free(x4);
    ed_program_free(p);
    ed_graph_free(g);
}

/* c = 1e30; 4 times c = c * 1e5 "grow": the second trip overflows. The JIT checks the loop
 * body's kernels and names the body's op; the interpreter checks the loop's results. */
static void test_inside_a_loop(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("g");
    ed_loop_builder *b = ed_loop_begin(g, 4);
    ed_node *c = ed_loop_carried(b, ed_scalar(g, ED_F32, 1e30));
    ed_node *next = ed_set_name(ed_mul(c, ed_scalar(ed_loop_body(b), ED_F32, 1e5)), "grow");
    ed_node *loop = ed_loop_end(b, &next, 1, NULL, 0);
    ed_output(g, "c", ed_loop_result(loop, 0));
    assert_null(ed_graph_error(g));
    ed_program *p = compile_checked(g, NULL, true);
    assert_int_equal(ed_run(p, NULL, 0), ED_ERR);
    assert_error_has("check-numerics: inf at element 0 of %");
    if (backend == ED_BACKEND_JIT) assert_error_has("mul \"grow\"");
    ed_program_free(p);
    ed_graph_free(g);
}

/* The CLI: `train --check-numerics` at an absurd learning rate stops at the first
 * non-finite value, names it, and saves no checkpoint. */
static void test_train_stops_without_saving(void **state)
{
    (void)state;
    char dir[] = "/tmp/edifice_numerics_XXXXXX";
    assert_non_null(mkdtemp(dir));
    cli_result r;
    cli_run(ED_CLI, dir, &r,
            "train flow_matching --data moons --hidden 8 --layers 1 --steps 20 --lr 1e30 --check-numerics "
            "--out ck.safetensors");
    assert_int_equal(r.status, 1);
    if (!strstr(r.err, "check-numerics: inf at element") || !strstr(r.err, "stopping without saving"))
        fail_msg("stderr: %s", r.err);
    char path[256];
    snprintf(path, sizeof path, "%s/ck.safetensors", dir);
    assert_int_not_equal(access(path, F_OK), 0);
    /* Without the flag the same run is stopped by the loss check, later, also unsaved. */
    cli_run(ED_CLI, dir, &r,
            "train flow_matching --data moons --hidden 8 --layers 1 --steps 20 --lr 1e30 --out ck.safetensors");
    assert_int_equal(r.status, 1);
    if (strstr(r.err, "check-numerics")) fail_msg("stderr: %s", r.err);
    assert_int_not_equal(access(path, F_OK), 0);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_names_the_op, on_jit_backend),
        cmocka_unit_test_setup(test_names_the_op, on_interp_backend),
        cmocka_unit_test_setup(test_off_by_default, on_jit_backend),
        cmocka_unit_test_setup(test_off_by_default, on_interp_backend),
        cmocka_unit_test_setup(test_env_and_inf, on_jit_backend),
        cmocka_unit_test_setup(test_env_and_inf, on_interp_backend),
        cmocka_unit_test_setup(test_inside_a_loop, on_jit_backend),
        cmocka_unit_test_setup(test_inside_a_loop, on_interp_backend),
        cmocka_unit_test(test_train_stops_without_saving),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
