/* Timing one sampler call (a graph whose loop node runs the whole sampler): the shared
 * part of bench/w4net.c and bench/w7.c. */
#ifndef ED_BENCH_SAMPLER_H
#define ED_BENCH_SAMPLER_H

#include "bench/bench.h"
#include "models/samplers.h"

typedef struct {
    ed_program *p;
    ed_store *st;
    int iterations;       /* trips of the loop in this graph */
    int body, body_after; /* loop body nodes as built and after the passes */
    double flops;         /* matmul FLOPs of one full call, before the passes */
    double sgemm;         /* 256^3 sgemm FLOP/s of this process (0 on the interpreter) */
    double compile_s;
    double step_weight_bytes; /* bytes of the matmul weights each loop trip reads (after the passes) */
    ed_compile_stats cs;
    bench_stat s; /* seconds per call */
} bench_sampler;

/* Make r.samples the output `out`, compile g with o's backend and passes (seed 1),
 * and time calls fed `feed`. full: the sampler's real trip count, when the graph was
 * built with fewer (the interpreter's). 0 on success; errors are printed as "bench
 * NAME: ...". Call bench_sampler_free(b, g) after, whatever the result. */
int bench_sampler_run(const bench_opts *o, const char *name, ed_graph *g, ed_sample_result r, const char *out, int full,
                      const ed_feed *feed, int nfeed, bench_sampler *b);
void bench_sampler_free(bench_sampler *b, ed_graph *g);

#endif
