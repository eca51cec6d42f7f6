/* The process's thread pool (pool.h). One run at a time owns the pool (run_lock); its
 * chunks are claimed from an atomic counter, so a late or descheduled worker never holds
 * the caller back: whoever is awake takes the next chunk. */
#include "runtime/pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

#define POOL_MAX_THREADS 64
/* A training step launches hundreds of kernels back to back: a worker that has just
   finished spins this long for the next run before it sleeps. */
#define SPIN_NS 50000
/* Chunks per thread when grain allows: a worker that is late (the cores are shared) leaves
   its share to the others instead of making the caller wait. */
#define CHUNKS_PER_THREAD 4

/* The job word: the run's generation in the high 32 bits, then CLOSED, then the number of
   workers inside the run. A worker enters only an open run of the generation it was woken
   for; the caller closes the run and waits for the users to leave before it returns, so
   the job fields below are never read once the run is over. */
#define JOB_CLOSED (UINT64_C(1) << 31)
#define JOB_USERS (JOB_CLOSED - 1)

typedef struct {
    pthread_t thread;
    atomic_bool quit;
    uint32_t first_seen; /* the posted generation when it was started */
} worker_slot;

static struct {
    pthread_mutex_t run_lock; /* held by the one caller whose run owns the pool */
    int started;              /* worker threads running (indices 1..started) */
    worker_slot slot[POOL_MAX_THREADS];

    /* The current run, written by its caller before posting. */
    ed_pool_task fn;
    void *ctx;
    int64_t n;
    int64_t chunks;
    atomic_int_fast64_t next_chunk;
    atomic_int_fast64_t done_chunks;
    atomic_uint_fast64_t job;
    atomic_uint posted; /* generation of the latest run */

    /* Sleeping: workers wait for a new generation, the caller for its last chunk. */
    pthread_mutex_t sleep_lock;
    pthread_cond_t work_cv, done_cv;
    atomic_int sleepers;
    atomic_bool caller_sleeping;
} pool = {.run_lock = PTHREAD_MUTEX_INITIALIZER,
          .sleep_lock = PTHREAD_MUTEX_INITIALIZER,
          .work_cv = PTHREAD_COND_INITIALIZER,
          .done_cv = PTHREAD_COND_INITIALIZER};

static atomic_int wanted_threads; /* 0: not resolved yet */
static atomic_int_fast64_t parallel_runs;
static pthread_once_t hooks_once = PTHREAD_ONCE_INIT;

/* -1 outside a task; else the worker index the current task runs as. */
static _Thread_local int current_worker = -1;

static int default_threads(void)
{
    const char *env = getenv("EDIFICE_THREADS");
    if (env && *env) {
        char *end;
        long v = strtol(env, &end, 10);
        if (*end == '\0' && v > 0) return v > POOL_MAX_THREADS ? POOL_MAX_THREADS : (int)v;
    }
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus < 1) return 1;
    return cpus > POOL_MAX_THREADS ? POOL_MAX_THREADS : (int)cpus;
}

int ed_pool_threads(void)
{
    int t = atomic_load(&wanted_threads);
    if (t > 0) return t;
    t = default_threads();
    int unset = 0;
    atomic_compare_exchange_strong(&wanted_threads, &unset, t);
    return atomic_load(&wanted_threads);
}

void ed_pool_set_threads(int n)
{
    if (n <= 0) n = default_threads();
    atomic_store(&wanted_threads, n > POOL_MAX_THREADS ? POOL_MAX_THREADS : n);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Claims and runs chunks of the current run until none is left. */
static void run_chunks(int worker)
{
    const int64_t n = pool.n, chunks = pool.chunks;
    const int64_t base = n / chunks, extra = n % chunks;
    for (;;) {
        int64_t c = atomic_fetch_add(&pool.next_chunk, 1);
        if (c >= chunks) return;
        /* The first `extra` chunks hold one item more: sizes differ by at most one. */
        int64_t begin = c * base + (c < extra ? c : extra);
        int64_t end = begin + base + (c < extra ? 1 : 0);
        current_worker = worker;
        pool.fn(pool.ctx, begin, end, worker);
        current_worker = -1;
        if (atomic_fetch_add(&pool.done_chunks, 1) + 1 == chunks && atomic_load(&pool.caller_sleeping)) {
            pthread_mutex_lock(&pool.sleep_lock);
            pthread_cond_signal(&pool.done_cv);
            pthread_mutex_unlock(&pool.sleep_lock);
        }
    }
}

/* Returns the next posted generation after `seen`, or `seen` when asked to quit. */
static uint32_t wait_for_run(worker_slot *slot, uint32_t seen)
{
    int64_t deadline = now_ns() + SPIN_NS;
    for (int i = 0;; i++) {
        uint32_t g = atomic_load(&pool.posted);
        if (g != seen || atomic_load(&slot->quit)) return g;
        if ((i & 63) == 63 && now_ns() > deadline) break;
        cpu_relax();
    }
    pthread_mutex_lock(&pool.sleep_lock);
    atomic_fetch_add(&pool.sleepers, 1);
    uint32_t g;
    while ((g = atomic_load(&pool.posted)) == seen && !atomic_load(&slot->quit))
        pthread_cond_wait(&pool.work_cv, &pool.sleep_lock);
    atomic_fetch_sub(&pool.sleepers, 1);
    pthread_mutex_unlock(&pool.sleep_lock);
    return g;
}

static void take_part(uint32_t gen, int worker)
{
    uint64_t w = atomic_load(&pool.job);
    do {
        if ((uint32_t)(w >> 32) != gen || (w & JOB_CLOSED)) return;
    } while (!atomic_compare_exchange_weak(&pool.job, &w, w + 1));
    run_chunks(worker);
    atomic_fetch_sub(&pool.job, 1);
}

static void *worker_main(void *arg)
{
    worker_slot *slot = arg;
    const int worker = (int)(slot - pool.slot);
    uint32_t seen = slot->first_seen;
    for (;;) {
        uint32_t g = wait_for_run(slot, seen);
        if (atomic_load(&slot->quit)) return NULL;
        seen = g;
        take_part(g, worker);
    }
}

/* Stops and joins the workers from index `keep` + 1 on. Holds run_lock. */
static void stop_workers(int keep)
{
    if (pool.started <= keep) return;
    for (int w = keep + 1; w <= pool.started; w++) atomic_store(&pool.slot[w].quit, true);
    pthread_mutex_lock(&pool.sleep_lock);
    pthread_cond_broadcast(&pool.work_cv);
    pthread_mutex_unlock(&pool.sleep_lock);
    for (int w = keep + 1; w <= pool.started; w++) pthread_join(pool.slot[w].thread, NULL);
    pool.started = keep;
}

/* At exit the idle workers are joined, so nothing runs while the process tears down. An
   exit from inside a run (a task or another thread) leaves them: the run owns the pool. */
static void stop_at_exit(void)
{
    if (pthread_mutex_trylock(&pool.run_lock) != 0) return;
    stop_workers(0);
    pthread_mutex_unlock(&pool.run_lock);
}

/* A forked child has none of the parent's workers: it starts its own when it runs. */
static void reset_in_child(void)
{
    pool.started = 0;
    pthread_mutex_init(&pool.run_lock, NULL);
    pthread_mutex_init(&pool.sleep_lock, NULL);
    pthread_cond_init(&pool.work_cv, NULL);
    pthread_cond_init(&pool.done_cv, NULL);
    atomic_store(&pool.sleepers, 0);
    atomic_store(&pool.caller_sleeping, false);
}

static void install_hooks(void)
{
    atexit(stop_at_exit);
    pthread_atfork(NULL, NULL, reset_in_child);
}

/* Brings the workers to threads - 1 and returns the threads a run can use. Holds run_lock. */
static int size_pool(int threads)
{
    stop_workers(threads - 1);
    if (pool.started < threads - 1) pthread_once(&hooks_once, install_hooks);
    while (pool.started < threads - 1) {
        worker_slot *slot = &pool.slot[pool.started + 1];
        atomic_store(&slot->quit, false);
        slot->first_seen = atomic_load(&pool.posted);
        if (pthread_create(&slot->thread, NULL, worker_main, slot) != 0) break;
        pool.started++;
    }
    return pool.started + 1;
}

static void wait_for_chunks(void)
{
    const int64_t chunks = pool.chunks;
    int64_t deadline = now_ns() + SPIN_NS;
    for (int i = 0; atomic_load(&pool.done_chunks) < chunks; i++) {
        if ((i & 63) == 63 && now_ns() > deadline) break;
        cpu_relax();
    }
    if (atomic_load(&pool.done_chunks) == chunks) return;
    pthread_mutex_lock(&pool.sleep_lock);
    atomic_store(&pool.caller_sleeping, true);
    while (atomic_load(&pool.done_chunks) < chunks) pthread_cond_wait(&pool.done_cv, &pool.sleep_lock);
    atomic_store(&pool.caller_sleeping, false);
    pthread_mutex_unlock(&pool.sleep_lock);
}

void ed_pool_run(int64_t n, int64_t grain, ed_pool_task fn, void *ctx)
{
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    int threads = ed_pool_threads();
    int64_t chunks = n / grain;
    if (chunks > (int64_t)threads * CHUNKS_PER_THREAD) chunks = (int64_t)threads * CHUNKS_PER_THREAD;
    if (current_worker >= 0 || chunks < 2 || threads == 1 || pthread_mutex_trylock(&pool.run_lock) != 0) {
        int worker = current_worker >= 0 ? current_worker : 0;
        int outer = current_worker;
        current_worker = worker; /* a call nested in fn runs inline as the same worker */
        fn(ctx, 0, n, worker);
        current_worker = outer;
        return;
    }
    if (size_pool(threads) < threads && chunks > (int64_t)pool.started + 1) chunks = pool.started + 1;
    atomic_fetch_add(&parallel_runs, 1);
    pool.fn = fn;
    pool.ctx = ctx;
    pool.n = n;
    pool.chunks = chunks;
    atomic_store(&pool.next_chunk, 0);
    atomic_store(&pool.done_chunks, 0);
    uint32_t gen = atomic_load(&pool.posted) + 1;
    atomic_store(&pool.job, (uint64_t)gen << 32);
    atomic_store(&pool.posted, gen);
    if (threads > 1 && atomic_load(&pool.sleepers) > 0) {
        pthread_mutex_lock(&pool.sleep_lock);
        pthread_cond_broadcast(&pool.work_cv);
        pthread_mutex_unlock(&pool.sleep_lock);
    }
    run_chunks(0);
    wait_for_chunks();
    /* Close the run; a worker that entered after the last chunk leaves at once. */
    uint64_t w = atomic_fetch_or(&pool.job, JOB_CLOSED) | JOB_CLOSED;
    for (int i = 0; w & JOB_USERS; i++, w = atomic_load(&pool.job)) {
        if (i > 1000) sched_yield();
        cpu_relax();
    }
    pthread_mutex_unlock(&pool.run_lock);
}

int64_t ed_pool_parallel_runs(void) { return (int64_t)atomic_load(&parallel_runs); }
