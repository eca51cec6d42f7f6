/* Open MPI behind runtime/comm.h (EDIFICE_MPI builds). Collectives run on MPI_COMM_WORLD
 * from the thread that called ed_comm_init; a watchdog thread only reads a deadline and
 * never calls MPI, so MPI_THREAD_FUNNELED is enough. */
#include "runtime/comm.h"

#ifdef ED_WITH_MPI
#include "runtime/error.h"

#include <mpi.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static bool started; /* by ed_comm_init (not by a caller that ran MPI_Init itself) */
static int rank = 0, size = 1;
static double timeout_s = ED_COMM_DEFAULT_TIMEOUT;
static double comm_s;
static _Atomic double deadline; /* monotonic seconds a collective in progress must end by; 0: none */
static pthread_t watchdog;
static atomic_bool stop_watchdog;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A blocked MPI call cannot be interrupted portably: exiting the process is the way
 * out, and mpirun then stops the other ranks. */
static void *watch(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop_watchdog)) {
        double d = atomic_load(&deadline);
        if (d > 0 && now() > d) {
            char line[256];
            int len = snprintf(line, sizeof line,
                               "edifice: rank %d of %d: no answer from the other ranks within %g s (--mpi-timeout): "
                               "a rank died or hangs; giving up\n",
                               rank, size, timeout_s);
            if (write(STDERR_FILENO, line, (size_t)len) < 0) { /* nothing better to do */
            }
            _exit(1);
        }
        usleep(50 * 1000);
    }
    return NULL;
}

bool ed_comm_built_with_mpi(void) { return true; }

int ed_comm_init(void)
{
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) {
        int provided = 0;
        if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
            return ed_fail("MPI_Init_thread failed");
        started = true;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    atomic_store(&stop_watchdog, false);
    if (size > 1 && pthread_create(&watchdog, NULL, watch, NULL) != 0) return ed_fail("cannot start the MPI watchdog");
    return 0;
}

void ed_comm_finalize(void)
{
    if (size > 1) {
        atomic_store(&stop_watchdog, true);
        pthread_join(watchdog, NULL);
    }
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (started && !finalized) MPI_Finalize();
    started = false;
    rank = 0, size = 1;
}

int ed_comm_rank(void) { return rank; }
int ed_comm_size(void) { return size; }
void ed_comm_set_timeout(double seconds) { timeout_s = seconds; }
double ed_comm_timeout(void) { return timeout_s; }
double ed_comm_seconds(void) { return comm_s; }
void ed_comm_reset_seconds(void) { comm_s = 0; }

static double enter(void)
{
    double t = now();
    if (timeout_s > 0) atomic_store(&deadline, t + timeout_s);
    return t;
}

static void leave(double t0)
{
    atomic_store(&deadline, 0.0);
    comm_s += now() - t0;
}

void ed_comm_allreduce(void *out, const void *in, int64_t n, int32_t is_f64, int32_t mean)
{
    size_t elem = is_f64 ? sizeof(double) : sizeof(float);
    if (out != in) memcpy(out, in, (size_t)n * elem);
    if (size == 1) return;
    double t0 = enter();
    /* MPI counts are int: a buffer above 2^31 - 1 values goes in pieces */
    for (int64_t done = 0; done < n;) {
        int count = (int)(n - done < INT32_MAX ? n - done : INT32_MAX);
        MPI_Allreduce(MPI_IN_PLACE, (char *)out + (size_t)done * elem, count, is_f64 ? MPI_DOUBLE : MPI_FLOAT, MPI_SUM,
                      MPI_COMM_WORLD);
        done += count;
    }
    leave(t0);
    if (!mean) return;
    if (is_f64) {
        double inv = 1.0 / size, *d = out;
        for (int64_t i = 0; i < n; i++) d[i] *= inv;
    } else {
        float inv = 1.0f / (float)size, *f = out;
        for (int64_t i = 0; i < n; i++) f[i] *= inv;
    }
}

void ed_comm_barrier(void)
{
    if (size == 1) return;
    double t0 = enter();
    MPI_Barrier(MPI_COMM_WORLD);
    leave(t0);
}
#endif
