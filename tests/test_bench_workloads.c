/* The benchmark's training workloads (bench/workloads.h) run cheaply: each builds,
 * compiles on the JIT at -O0 (fast to compile) and trains a few steps with a finite loss
 * that goes down (the GANs W8 and W10: both steps run); W2 matches the interpreter on its
 * first step; the digits loader reads the shipped file and reports a missing one; the FLOP
 * counter counts 2mnk and W10's convolutions. No timing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "backend/backend.h"
#include "bench/workloads.h"
#include "frontend/frontend.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Train `steps` steps of workload id on backend b; losses[0..steps). */
static void train(const char *id, ed_backend b, int steps, double *losses)
{
    bench_workload w;
    int rc = bench_workload_build(id, &w);
    if (rc) fprintf(stderr, "%s: %s\n", id, ed_last_error());
    assert_int_equal(rc, 0);
    assert_non_null(w.g);
    assert_true(w.nbatches >= 1);
    ed_store *st = ed_store_new(0);
    ed_program *p = ed_compile(w.g, st, &(ed_compile_opts){.backend = b, .opt_level = ED_OPT_O0});
    if (!p) fprintf(stderr, "%s: %s\n", id, ed_last_error());
    assert_non_null(p);
    for (int k = 0; k < steps; k++) {
        ed_feed f = {w.input, w.batches[k % w.nbatches]};
        assert_int_equal(ed_run(p, &f, 1), ED_OK);
        losses[k] = ed_tensor_get(ed_program_output(p, "loss"), 0);
        assert_true(isfinite(losses[k]));
    }
    ed_program_free(p);
    ed_store_free(st);
    bench_workload_free(&w);
}

/* Decreasing-ish: the mean of the last three losses is below the first. */
static void trains(const char *id, int steps)
{
    double l[32];
    train(id, ED_BACKEND_JIT, steps, l);
    double tail = (l[steps - 1] + l[steps - 2] + l[steps - 3]) / 3;
    fprintf(stderr, "%s: loss %.5f -> %.5f over %d steps\n", id, l[0], tail, steps);
    assert_true(tail < l[0]);
}

static void w1_trains(void **state)
{
    (void)state;
    trains("w1", 12);
}

static void w2_trains(void **state)
{
    (void)state;
    trains("w2", 12);
}

static void w3_trains(void **state)
{
    (void)state;
    trains("w3", 8);
}

static void w5_trains(void **state)
{
    (void)state;
    trains("w5", 12);
}

/* A GAN workload's losses need not fall (each network's is measured against a moving
 * opponent): its steps run with finite losses, and both steps' optimizers ran every call
 * (each Adam counter at the number of calls). */
static void runs_both_steps(const char *id)
{
    bench_workload w;
    assert_int_equal(bench_workload_build(id, &w), 0);
    ed_store *st = ed_store_new(0);
    ed_program *p = ed_compile(w.g, st, &(ed_compile_opts){.opt_level = ED_OPT_O0});
    if (!p) fprintf(stderr, "%s: %s\n", id, ed_last_error());
    assert_non_null(p);
    for (int k = 0; k < 4; k++) {
        ed_feed f = {w.input, w.batches[k % w.nbatches]};
        assert_int_equal(ed_run(p, &f, 1), ED_OK);
        assert_true(isfinite(ed_tensor_get(ed_program_output(p, "loss"), 0)));
        assert_true(isfinite(ed_tensor_get(ed_program_output(p, "gen_loss"), 0)));
    }
    const char *counters[] = {"opt.step", "opt.gen.step"};
    for (int i = 0; i < 2; i++) {
        ed_tensor *c = ed_store_get(st, counters[i]);
        assert_non_null(c);
        assert_int_equal((int)ed_tensor_get(c, 0), 4);
    }
    ed_program_free(p);
    ed_store_free(st);
    bench_workload_free(&w);
}

static void w8_runs_both_steps(void **state)
{
    (void)state;
    runs_both_steps("w8");
}

/* W10 on real Fashion-MNIST batches: both steps run, and its FLOPs are those counted by
 * hand in bench/w10.c (every conv of G and D forward, D's step's weight and input
 * gradients, G's step's through D). */
static void w10_runs_both_steps(void **state)
{
    (void)state;
    runs_both_steps("w10_dcgan");
    bench_workload w;
    assert_int_equal(bench_workload_build("w10_dcgan", &w), 0);
    assert_int_equal(w.batches[0]->shape.dim[0], 64);
    assert_int_equal(w.batches[0]->shape.dim[1], 784);
    fprintf(stderr, "w10_dcgan: %.0f FLOPs per iteration\n", bench_matmul_flops(w.g));
    assert_true(bench_matmul_flops(w.g) == 2482307072.0);
    bench_workload_free(&w);
}

/* Same seeds and store seed: the JIT's first two W2 losses are the interpreter's. */
static void w2_jit_matches_interp(void **state)
{
    (void)state;
    double j[2], i[2];
    train("w2", ED_BACKEND_JIT, 2, j);
    train("w2", ED_BACKEND_INTERP, 2, i);
    for (int k = 0; k < 2; k++) assert_true(fabs(j[k] - i[k]) <= 1e-4 * fabs(i[k]));
}

static void digits_load(void **state)
{
    (void)state;
    ed_tensor *t = bench_digits_load(1797);
    assert_non_null(t);
    assert_int_equal(t->shape.dim[0], 1797);
    assert_int_equal(t->shape.dim[1], 64);
    /* first row of the file: 0,0,5,13,9,1,0,0,... */
    assert_true(ed_tensor_get(t, 2) == 5.0 / 16);
    assert_true(ed_tensor_get(t, 3) == 13.0 / 16);
    for (int64_t k = 0; k < 1797 * 64; k++) assert_true(ed_tensor_get(t, k) >= 0 && ed_tensor_get(t, k) <= 1);
    ed_tensor_free(t);
    assert_null(bench_digits_load(1798)); /* more rows than the file has */
    assert_non_null(strstr(ed_last_error(), "1797 rows"));
}

static void digits_missing_file(void **state)
{
    (void)state;
    setenv("EDIFICE_DIGITS", "/nonexistent/digits.csv.gz", 1);
    assert_null(bench_digits_load(10));
    assert_non_null(strstr(ed_last_error(), "/nonexistent/digits.csv.gz"));
    bench_workload w;
    assert_int_equal(bench_workload_build("w2", &w), -1);
    assert_null(w.g);
    unsetenv("EDIFICE_DIGITS");
}

static void unknown_workload(void **state)
{
    (void)state;
    bench_workload w;
    assert_int_equal(bench_workload_build("w9", &w), -1);
    assert_non_null(strstr(ed_last_error(), "w9"));
    assert_false(bench_is_training_workload("w6"));
    assert_true(bench_is_training_workload("w3"));
}

/* [2,3] @ [3,5] is 2*2*3*5 = 60 FLOPs; a batched [4,2,3] @ [3,5] four times that, and
 * a transposed a ([3,2]^T) counts its k from the other axis. */
static void matmul_flops(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("flops");
    ed_node *b = ed_input(g, "b", ED_F32, ed_shape2(3, 5));
    ed_output(g, "y1", ed_matmul(ed_input(g, "a", ED_F32, ed_shape2(2, 3)), b));
    ed_output(g, "y2", ed_matmul(ed_input(g, "a3", ED_F32, ed_shape3(4, 2, 3)), b));
    ed_output(g, "y3", ed_matmul_t(ed_input(g, "at", ED_F32, ed_shape2(3, 2)), b, true, false));
    assert_null(ed_graph_error(g));
    assert_true(bench_matmul_flops(g) == 60 + 240 + 60);
    ed_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(matmul_flops),
        cmocka_unit_test(digits_load),
        cmocka_unit_test(digits_missing_file),
        cmocka_unit_test(unknown_workload),
        cmocka_unit_test(w1_trains),
        cmocka_unit_test(w2_trains),
        cmocka_unit_test(w3_trains),
        cmocka_unit_test(w5_trains),
        cmocka_unit_test(w8_runs_both_steps),
        cmocka_unit_test(w10_runs_both_steps),
        cmocka_unit_test(w2_jit_matches_interp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
