/* One knob for the process's threads (backend.h, ed_set_threads): the thread pool runs the
 * JIT's split kernels and split sgemms, so OpenBLAS keeps one thread while the pool splits
 * sgemms, and the two never spin on the same cores at once. */
#include "backend/backend.h"

#include "backend/llvm/lower.h"
#include "runtime/pool.h"

#include <cblas.h>
#include <pthread.h>

void ed_set_threads(int n)
{
    ed_pool_set_threads(n);
    openblas_set_num_threads(ed_split_gemm_on() ? 1 : ed_pool_threads());
}

/* A program that never called ed_set_threads still must not run OpenBLAS's threads under
   the pool's split sgemms: OpenBLAS drops to one thread then (it is never raised here). */
static void default_blas_threads(void)
{
    if (ed_split_gemm_on()) openblas_set_num_threads(1);
}

void ed_threads_default(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, default_blas_threads);
}
