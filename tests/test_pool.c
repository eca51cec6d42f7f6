/* The thread pool (runtime/pool.h): coverage of every index once, worker bounds and
 * exclusivity, nesting, resizing, many tiny runs and two callers at once. Tasks run on
 * pool threads, where cmocka cannot assert: they count failures that the test asserts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "runtime/pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    atomic_int *hits; /* per index */
    int64_t n, grain;
    int threads;
    atomic_int bad_worker, short_chunk, calls;
    atomic_int busy[64]; /* per worker: a chunk is running */
    atomic_int overlap;
    atomic_int used[64];
} coverage;

static void spin_ns(int64_t ns)
{
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    do clock_gettime(CLOCK_MONOTONIC, &b);
    while ((b.tv_sec - a.tv_sec) * 1000000000 + (b.tv_nsec - a.tv_nsec) < ns);
}

static void count_chunk(void *ctx, int64_t begin, int64_t end, int worker)
{
    coverage *c = ctx;
    atomic_fetch_add(&c->calls, 1);
    if (worker < 0 || worker >= c->threads) {
        atomic_fetch_add(&c->bad_worker, 1);
        return;
    }
    if (atomic_exchange(&c->busy[worker], 1)) atomic_fetch_add(&c->overlap, 1);
    atomic_store(&c->used[worker], 1);
    int64_t min = c->grain < c->n ? c->grain : c->n;
    if (end - begin < min || begin < 0 || end > c->n) atomic_fetch_add(&c->short_chunk, 1);
    for (int64_t i = begin; i < end && i >= 0 && i < c->n; i++) atomic_fetch_add(&c->hits[i], 1);
    if (end - begin > 16) spin_ns(2000); /* long enough that another worker could collide */
    atomic_store(&c->busy[worker], 0);
}

/* Runs [0, n) at the pool's current size and checks the run's invariants. */
static void check_run(int64_t n, int64_t grain)
{
    coverage *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->hits = calloc(n > 0 ? (size_t)n : 1, sizeof *c->hits);
    assert_non_null(c->hits);
    c->n = n;
    c->grain = grain < 1 ? 1 : grain;
    c->threads = ed_pool_threads();
    ed_pool_run(n, grain, count_chunk, c);
    for (int64_t i = 0; i < n; i++)
        if (atomic_load(&c->hits[i]) != 1)
            fail_msg("n %lld grain %lld threads %d: index %lld run %d times", (long long)n, (long long)grain,
                     c->threads, (long long)i, atomic_load(&c->hits[i]));
    assert_int_equal(atomic_load(&c->bad_worker), 0);
    assert_int_equal(atomic_load(&c->short_chunk), 0);
    assert_int_equal(atomic_load(&c->overlap), 0);
    if (n <= 0) assert_int_equal(atomic_load(&c->calls), 0);
    if (n > 0 && n <= c->grain) assert_int_equal(atomic_load(&c->calls), 1);
    if (n > 0 && n / c->grain >= 2 && c->threads > 1) assert_true(atomic_load(&c->calls) >= 2);
    free(c->hits);
    free(c);
}

static void test_every_index_once(void **state)
{
    (void)state;
    static const int threads[] = {1, 2, 3, 4, 7};
    static const int64_t sizes[] = {0, 1, 2, 3, 5, 7, 13, 31, 97, 1000, 4099, 65537};
    static const int64_t grains[] = {0, 1, 2, 3, 7, 64, 1000, 100000};
    for (size_t t = 0; t < sizeof threads / sizeof *threads; t++) {
        ed_pool_set_threads(threads[t]);
        assert_int_equal(ed_pool_threads(), threads[t]);
        for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
            for (size_t g = 0; g < sizeof grains / sizeof *grains; g++) check_run(sizes[s], grains[g]);
    }
}

/* The pool does run chunks on more than one thread at once. */
typedef struct {
    atomic_int workers_seen[64];
    atomic_int distinct;
} meet;

static void wait_for_company(void *ctx, int64_t begin, int64_t end, int worker)
{
    (void)begin, (void)end;
    meet *m = ctx;
    if (!atomic_exchange(&m->workers_seen[worker], 1)) atomic_fetch_add(&m->distinct, 1);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    do clock_gettime(CLOCK_MONOTONIC, &b);
    while (atomic_load(&m->distinct) < 2 && b.tv_sec - a.tv_sec < 5);
}

static void test_runs_in_parallel(void **state)
{
    (void)state;
    ed_pool_set_threads(2);
    meet m = {0};
    ed_pool_run(2, 1, wait_for_company, &m);
    assert_int_equal(atomic_load(&m.distinct), 2);
    assert_int_equal(atomic_load(&m.workers_seen[0]), 1);
    assert_int_equal(atomic_load(&m.workers_seen[1]), 1);
}

/* A run from inside a task runs inline as the task's worker. */
typedef struct {
    int64_t inner_n;
    atomic_int *hits; /* outer index * inner_n + inner index */
    atomic_int bad;
} nested;

typedef struct {
    nested *outer;
    int64_t row;
    int worker;
} nested_row;

static void inner_task(void *ctx, int64_t begin, int64_t end, int worker)
{
    nested_row *r = ctx;
    if (worker != r->worker || begin != 0 || end != r->outer->inner_n) atomic_fetch_add(&r->outer->bad, 1);
    for (int64_t j = begin; j < end; j++) atomic_fetch_add(&r->outer->hits[r->row * r->outer->inner_n + j], 1);
}

static void outer_task(void *ctx, int64_t begin, int64_t end, int worker)
{
    nested *o = ctx;
    for (int64_t i = begin; i < end; i++) {
        nested_row r = {o, i, worker};
        ed_pool_run(o->inner_n, 1, inner_task, &r);
    }
}

static void test_nested_runs_inline(void **state)
{
    (void)state;
    ed_pool_set_threads(3);
    enum { rows = 37, cols = 53 };
    nested o = {.inner_n = cols};
    o.hits = calloc(rows * cols, sizeof *o.hits);
    assert_non_null(o.hits);
    ed_pool_run(rows, 1, outer_task, &o);
    assert_int_equal(atomic_load(&o.bad), 0);
    for (int i = 0; i < rows * cols; i++) assert_int_equal(atomic_load(&o.hits[i]), 1);
    free(o.hits);
}

static void test_set_threads_up_and_down(void **state)
{
    (void)state;
    static const int sizes[] = {1, 2, 4, 3, 1, 8, 2, 5, 2, 1, 2};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        ed_pool_set_threads(sizes[k]);
        assert_int_equal(ed_pool_threads(), sizes[k]);
        check_run(1001, 3);
        check_run(64, 1);
    }
    ed_pool_set_threads(1000);
    assert_int_equal(ed_pool_threads(), 64);
    check_run(500, 1);
}

static void test_default_threads(void **state)
{
    (void)state;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int online = cpus < 1 ? 1 : cpus > 64 ? 64 : (int)cpus;
    const char *saved = getenv("EDIFICE_THREADS");
    char *keep = saved ? strdup(saved) : NULL;
    setenv("EDIFICE_THREADS", "3", 1);
    ed_pool_set_threads(0);
    assert_int_equal(ed_pool_threads(), 3);
    static const char *not_positive[] = {"0", "-2", "two", "2x", ""};
    for (size_t k = 0; k < sizeof not_positive / sizeof *not_positive; k++) {
        setenv("EDIFICE_THREADS", not_positive[k], 1);
        ed_pool_set_threads(-1);
        assert_int_equal(ed_pool_threads(), online);
    }
    unsetenv("EDIFICE_THREADS");
    ed_pool_set_threads(0);
    assert_int_equal(ed_pool_threads(), online);
    if (keep) setenv("EDIFICE_THREADS", keep, 1);
    free(keep);
}

static void add_range(void *ctx, int64_t begin, int64_t end, int worker)
{
    (void)worker;
    atomic_fetch_add((atomic_llong *)ctx, (long long)((end - begin) * (begin + end - 1) / 2));
}

/* Back-to-back tiny runs as a training step makes them: no deadlock, bounded time. */
static void test_many_tiny_runs(void **state)
{
    (void)state;
    ed_pool_set_threads(2);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int r = 0; r < 10000; r++) {
        atomic_llong sum = 0;
        int64_t n = 2 + r % 61;
        ed_pool_run(n, 1, add_range, &sum);
        if (atomic_load(&sum) != n * (n - 1) / 2) fail_msg("run %d: sum %lld", r, (long long)atomic_load(&sum));
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double seconds = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) * 1e-9;
    print_message("10000 tiny runs at 2 threads: %.3f s\n", seconds);
    assert_true(seconds < 30); /* ~50 ms quiet; generous for a loaded machine under ASan */
}

/* After a run the workers spin briefly, then sleep: an idle process burns no CPU. */
static void test_idle_pool_sleeps(void **state)
{
    (void)state;
    ed_pool_set_threads(2);
    check_run(1000, 1);
    struct timespec pause = {0, 50 * 1000 * 1000}, cpu0, cpu1;
    nanosleep(&pause, NULL);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu0);
    pause.tv_nsec = 200 * 1000 * 1000;
    nanosleep(&pause, NULL);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu1);
    double busy = (double)(cpu1.tv_sec - cpu0.tv_sec) + (double)(cpu1.tv_nsec - cpu0.tv_nsec) * 1e-9;
    print_message("CPU while idle for 200 ms: %.2f ms\n", busy * 1e3);
    assert_true(busy < 0.02);
}

/* Two callers at once: each run still covers its range once (the second may run inline). */
static void *caller_thread(void *arg)
{
    int *failures = arg;
    for (int r = 0; r < 2000; r++) {
        atomic_llong sum = 0;
        int64_t n = 100 + r % 37;
        ed_pool_run(n, 4, add_range, &sum);
        if (atomic_load(&sum) != n * (n - 1) / 2) (*failures)++;
    }
    return NULL;
}

static void test_two_callers(void **state)
{
    (void)state;
    ed_pool_set_threads(3);
    int failures[2] = {0, 0};
    pthread_t t[2];
    for (int k = 0; k < 2; k++) assert_int_equal(pthread_create(&t[k], NULL, caller_thread, &failures[k]), 0);
    for (int k = 0; k < 2; k++) pthread_join(t[k], NULL);
    assert_int_equal(failures[0] + failures[1], 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_index_once),   cmocka_unit_test(test_runs_in_parallel),
        cmocka_unit_test(test_nested_runs_inline), cmocka_unit_test(test_set_threads_up_and_down),
        cmocka_unit_test(test_default_threads),    cmocka_unit_test(test_many_tiny_runs),
        cmocka_unit_test(test_idle_pool_sleeps),   cmocka_unit_test(test_two_callers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
