/* `edifice train` on 2 ranks, driven through mpirun (tests/mpi/README.md): the same
 * parameters as one process with the same global batch, checkpoints that resume across
 * rank counts, and a rank that dies or hangs making the run end with an error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "io/safetensors.h"
#include "runtime/store.h"
#include "support/cli_run.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TMP ED_BINARY_DIR "/mpi_train_tmp"
/* ddpm on moons, the command, short: one JIT compile per rank and 40 steps. */
#define RUN "train ddpm --data moons --n 2000 --batch 64 --seed 3 --lr-schedule constant"

/* Adam divides each gradient by its running RMS, so a rounding difference of the
 * gradient sums (2 ranks sum in another order) moves a param by at most ~lr per step in
 * the worst case; measured differences stay far below this bound (bench/RESULTS.md). */
#define PARAM_TOL 2e-4

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The CLI alone, or on 2 ranks (extra: mpirun options before the program). */
static void one(cli_result *r, const char *args) { cli_run(ED_CLI, TMP, r, args); }

static void two(cli_result *r, const char *extra, const char *args)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "-np 2 --oversubscribe %s '%s' %s", extra, ED_CLI, args);
    cli_run(ED_MPIEXEC, TMP, r, cmd);
}

static void assert_ok(const cli_result *r)
{
    if (r->status != 0) fail_msg("exit %d; stderr: %s", r->status, r->err);
}

/* The largest |a - b| over the float tensors of two checkpoints; everything else
 * (names, shapes, the i32 step counters) must be equal. */
static double max_param_diff(const char *a, const char *b)
{
    ed_store *x = ed_safetensors_load(a, NULL), *y = ed_safetensors_load(b, NULL);
    if (!x || !y) fail_msg("cannot load %s or %s", a, b);
    assert_int_equal(ed_store_count(x), ed_store_count(y));
    double worst = 0;
    for (int i = 0; i < ed_store_count(x); i++) {
        const ed_tensor *s = ed_store_tensor(x, i), *t = ed_store_get(y, ed_store_name(x, i));
        assert_non_null(t);
        assert_int_equal(ed_tensor_numel(s), ed_tensor_numel(t));
        for (int64_t k = 0; k < ed_tensor_numel(s); k++) {
            double d = fabs(ed_tensor_get(s, k) - ed_tensor_get(t, k));
            if (s->dtype == ED_I32) assert_true(d == 0);
            else if (d > worst) worst = d;
        }
    }
    ed_store_free(x);
    ed_store_free(y);
    return worst;
}

static int setup(void **state)
{
    (void)state;
    return system("rm -rf '" TMP "' && mkdir -p '" TMP "'") == 0 ? 0 : -1;
}

/* The reference: one process, batch 64, 40 steps (and a copy stopped at 20). */
static void test_one_process_reference(void **state)
{
    (void)state;
    static cli_result r;
    one(&r, RUN " --steps 40 --out " TMP "/one40.safetensors");
    assert_ok(&r);
    one(&r, RUN " --steps 20 --out " TMP "/one20.safetensors");
    assert_ok(&r);
}

static void test_two_ranks_match_one_process(void **state)
{
    (void)state;
    static cli_result r;
    two(&r, "", RUN " --steps 40 --allreduce-bucket 5000 --out " TMP "/two40.safetensors");
    assert_ok(&r);
    /* rank 0 alone reports, and says how it ran */
    assert_non_null(strstr(r.err, "2 ranks of 32 rows"));
    assert_non_null(strstr(r.err, "in collectives"));
    const char *trained = strstr(r.err, "trained 40 steps");
    assert_non_null(trained);
    assert_null(strstr(trained + 1, "trained 40 steps"));
    double d = max_param_diff(TMP "/one40.safetensors", TMP "/two40.safetensors");
    print_message("2 ranks vs 1 process after 40 steps: max |param difference| %.3g\n", d);
    assert_true(d < PARAM_TOL);
    /* the draws are the one-process draws, not the same draws on both ranks: a run
       whose ranks drew alike would be a run on 32 rows, far from this one */
    one(&r, "train ddpm --data moons --n 2000 --batch 32 --seed 3 --lr-schedule constant --steps 40 --out " TMP
            "/half40.safetensors");
    assert_ok(&r);
    assert_true(max_param_diff(TMP "/one40.safetensors", TMP "/half40.safetensors") > 100 * PARAM_TOL);
}

/* Stopped at step 20 on 2 ranks, resumed on 1 (and the other way), each ends where the
 * one-process run of 40 steps does. */
static void test_resume_across_rank_counts(void **state)
{
    (void)state;
    static cli_result r;
    two(&r, "", RUN " --steps 20 --out " TMP "/two20.safetensors");
    assert_ok(&r);
    one(&r, "train ddpm --resume " TMP "/two20.safetensors --steps 40");
    assert_ok(&r);
    assert_true(max_param_diff(TMP "/one40.safetensors", TMP "/two20.safetensors") < PARAM_TOL);
    two(&r, "", "train ddpm --resume " TMP "/one20.safetensors --steps 40");
    assert_ok(&r);
    assert_true(max_param_diff(TMP "/one40.safetensors", TMP "/one20.safetensors") < PARAM_TOL);
}

/* Rank 1 exits before step 5 (a crash): mpirun ends rank 0, and the run fails. */
static void test_dead_rank_ends_the_run(void **state)
{
    (void)state;
    static cli_result r;
    double t0 = now_s();
    two(&r, "-x EDIFICE_TEST_RANK_FAULT=1:5:exit", RUN " --steps 40 --mpi-timeout 5 --out " TMP "/dead.safetensors");
    double secs = now_s() - t0;
    print_message("a dead rank: exit %d after %.1f s\n", r.status, secs);
    assert_true(r.status != 0);
    assert_true(secs < 60);
    assert_non_null(strstr(r.err, "EDIFICE_TEST_RANK_FAULT: exit before step 5"));
}

/* Rank 1 stops itself before step 5 (a hang): rank 0 gives up after --mpi-timeout 3
 * with a clear line instead of waiting in the allreduce forever. */
static void test_hung_rank_times_out(void **state)
{
    (void)state;
    static cli_result r;
    double t0 = now_s();
    two(&r, "-x EDIFICE_TEST_RANK_FAULT=1:5:stop", RUN " --steps 40 --mpi-timeout 3 --out " TMP "/hung.safetensors");
    double secs = now_s() - t0;
    print_message("a hung rank: exit %d after %.1f s\n", r.status, secs);
    assert_true(r.status != 0);
    assert_true(secs < 60);
    if (!strstr(r.err, "rank 0 of 2: no answer from the other ranks within 3 s (--mpi-timeout)"))
        fail_msg("no timeout message; stderr: %s", r.err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_process_reference),     cmocka_unit_test(test_two_ranks_match_one_process),
        cmocka_unit_test(test_resume_across_rank_counts), cmocka_unit_test(test_dead_rank_ends_the_run),
        cmocka_unit_test(test_hung_rank_times_out),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
