/* Latency of an exported policy (bench/export.sh builds it against the policy.o and
 * policy.h that `edifice export` wrote; not part of the CMake build). In one process:
 * the time from main to the first chunk (the object's first-call set-up included), then
 * the median, min and max of N more chunks, each a policy_run call with its own call
 * counter. usage: export_latency N */
#include "policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    double t0 = now_ms();
    float obs[POLICY_OBS_COUNT], chunk[POLICY_SAMPLES_COUNT];
    for (int i = 0; i < POLICY_OBS_COUNT; i++) obs[i] = (float)((i % 5) - 2) / 2.0f;
    policy_run(obs, chunk, 1, 0);
    double first = now_ms() - t0;
    int n = argc > 1 ? atoi(argv[1]) : 200;
    double *t = malloc(sizeof *t * (size_t)(n > 0 ? n : 1));
    for (int k = 0; k < n; k++) {
        double s = now_ms();
        policy_run(obs, chunk, 1, (uint64_t)k + 1);
        t[k] = now_ms() - s;
    }
    qsort(t, (size_t)n, sizeof *t, cmp);
    printf("export first_chunk_ms=%.3f per_chunk median_ms=%.3f min_ms=%.3f max_ms=%.3f chunks=%d x0=%g\n", first,
           t[n / 2], t[0], t[n - 1], n, chunk[0]);
    free(t);
    return 0;
}
