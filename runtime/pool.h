/* The process's one thread pool: the JIT's kernels, split sgemms and convolution images
 * run their independent ranges on it. The caller takes part as worker 0; workers start on
 * the first parallel run, spin a few tens of microseconds after a run, then sleep. */
#ifndef ED_POOL_H
#define ED_POOL_H

#include <stdint.h>

/* Work split over [0, n): fn(ctx, begin, end, worker) for disjoint chunks covering it. */
typedef void (*ed_pool_task)(void *ctx, int64_t begin, int64_t end, int worker);

/* Threads work runs on, the caller included (>= 1). */
int ed_pool_threads(void);

/* n <= 0: the default (EDIFICE_THREADS if a positive integer, else the online CPUs, at most 64).
   Safe from any thread; takes effect at the next run. */
void ed_pool_set_threads(int n);

/* Runs fn over [0, n) in chunks of at least grain items on the pool, the caller taking
   part; returns when every chunk is done. worker is in [0, ed_pool_threads()) and no two
   chunks of one run execute at once with the same worker (per-worker scratch). n <= grain,
   one thread, a call from inside a task or while another thread's run holds the pool:
   runs inline as fn(ctx, 0, n, w), w being 0 or the calling task's worker index.
   n <= 0 calls nothing. */
void ed_pool_run(int64_t n, int64_t grain, ed_pool_task fn, void *ctx);
/* Runs of ed_pool_run so far that went over the pool in 2 or more chunks (not inline):
   how a test sees that a split kernel really spread. */
int64_t ed_pool_parallel_runs(void);

#endif
