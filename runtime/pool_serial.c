/* The thread pool's serial stand-in in the runtime bitcode of objects `edifice export`
 * writes (CMakeLists.txt builds it with ED_RUNTIME_BITCODE, in place of pool.c): such an
 * object starts no threads, so a split kernel runs its whole range on the caller. */
#ifdef ED_RUNTIME_BITCODE
#include "runtime/pool.h"

int ed_pool_threads(void) { return 1; }

void ed_pool_set_threads(int n) { (void)n; }

void ed_pool_run(int64_t n, int64_t grain, ed_pool_task fn, void *ctx)
{
    (void)grain;
    if (n > 0) fn(ctx, 0, n, 0);
}

int64_t ed_pool_parallel_runs(void) { return 0; }
#endif
