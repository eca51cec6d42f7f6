/* The training-step workloads (W1, W2, W3, W5) timed the same way: build the graph,
 * compile once (compile time reported on its own), one warm-up step, then R repeats of
 * S steps, each step fed the next data batch. Prints one human line and one
 * `RESULT key=value ...` line that bench/report.py reads. */
#include "bench/bench.h"
#include "bench/workloads.h"
#include "ir/text.h"
#include "passes/pass.h"
#include "runtime/comm.h"
#include "runtime/error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct {
    ed_program *p;
    const bench_workload *w;
    ed_feed feed;
    long calls;
    double first_loss, last_loss;
} train_call;

static bool train_step(void *ud)
{
    train_call *c = ud;
    c->feed.tensor = c->w->batches[c->calls % c->w->nbatches];
    if (ed_run(c->p, &c->feed, 1) != ED_OK) {
        fprintf(stderr, "bench %s: %s\n", c->w->id, ed_last_error());
        return false;
    }
    c->last_loss = ed_tensor_get(ed_program_output(c->p, "loss"), 0);
    if (c->calls++ == 0) c->first_loss = c->last_loss;
    return true;
}

/* The step's graph as the passes leave it, printed to path. */
static int dump_ir(const ed_graph *g, const char *passes, const char *path)
{
    ed_graph *c = ed_graph_clone(g);
    char *text = c && ed_pass_run(c, passes, NULL) == ED_OK ? ed_graph_print(c) : NULL;
    FILE *f = text ? fopen(path, "w") : NULL;
    int rc = f && fputs(text, f) >= 0 ? 0 : 1;
    if (f && fclose(f)) rc = 1;
    if (rc) fprintf(stderr, "bench: --dump-ir %s: %s\n", path, text ? "cannot write" : ed_last_error());
    free(text);
    ed_graph_free(c);
    return rc;
}

int bench_train(const bench_opts *o, const char *id)
{
    bench_workload w;
    if (bench_workload_build(id, &w)) {
        fprintf(stderr, "bench %s: %s\n", id, ed_last_error());
        return 1;
    }
    if (o->dump_ir && dump_ir(w.g, o->passes, o->dump_ir)) {
        bench_workload_free(&w);
        return 1;
    }
    ed_store *st = ed_store_new(0);
    ed_pass_stats ps[16];
    ed_pass_opts po = {.stats = ps, .stats_cap = 16};
    double t0 = bench_now();
    ed_program *p = ed_compile(
        w.g, st,
        &(ed_compile_opts){
            .backend = o->backend, .opt_level = o->opt, .passes = o->passes, .arena = o->arena, .pass_opts = &po});
    double compile_s = bench_now() - t0;
    /* the same compile again: with the object cache on, what a second process pays */
    ed_store *st_warm = ed_store_new(0);
    t0 = bench_now();
    ed_program *warm = p ? ed_compile(
                               w.g, st_warm,
                               &(ed_compile_opts){
                                   .backend = o->backend, .opt_level = o->opt, .passes = o->passes, .arena = o->arena})
                         : NULL;
    double warm_s = bench_now() - t0;
    ed_compile_stats ws = warm ? ed_program_compile_stats(warm) : (ed_compile_stats){0};
    ed_program_free(warm);
    ed_store_free(st_warm);
    int nodes_after = po.nstats ? ps[po.nstats - 1].nodes_after : w.g->nnodes;
    train_call call = {.p = p, .w = &w, .feed = {w.input, NULL}};
    bench_stat s;
    int rc = 1;
    /* the share of the timed calls (warm-up included) rank 0 spent in collectives */
    ed_comm_reset_seconds();
    t0 = bench_now();
    double cpu0 = bench_cpu_now();
    bool timed = p && bench_time(o, train_step, &call, &s);
    /* CPU seconds of the process per step, the warm-up step included */
    double cpu_step = (bench_cpu_now() - cpu0) / (o->repeats * o->steps + !o->no_warmup);
    double comm_share = timed ? ed_comm_seconds() / (bench_now() - t0) : 0;
    if (!p) fprintf(stderr, "bench %s: %s\n", id, ed_last_error());
    else if (timed) {
        double flops = bench_matmul_flops(w.g);
        double sgemm = bench_sgemm_flops(256);
        double roof = sgemm > 0 ? flops / sgemm : 0;
        ed_compile_stats cs = ed_program_compile_stats(p);
        int opt = o->opt == ED_OPT_DEFAULT ? 2 : (int)o->opt - (int)ED_OPT_O0;
        printf("%s backend=%s threads=%d nodes=%d->%d compile=%.3fs step median=%.3fms min=%.3fms max=%.3fms "
               "(%d repeats x %d steps) steps/s=%.1f matmul=%.1f MFLOP/step (%.2f GFLOP/s) | sgemm 256^3 %.1f GFLOP/s, "
               "roofline %.3fms = %.0f%% of the step | loss %.4f -> %.4f\n",
               w.title, bench_backend_name(o->backend), o->threads, w.g->nnodes, nodes_after, compile_s, 1e3 * s.median,
               1e3 * s.min, 1e3 * s.max, o->repeats, o->steps, 1.0 / s.median, flops / 1e6, flops / s.median / 1e9,
               sgemm / 1e9, 1e3 * roof, 100 * roof / s.median, call.first_loss, call.last_loss);
        if (ed_comm_size() > 1)
            printf("%s data parallel: %d ranks of %lld rows, %.1f%% of the timed steps in allreduce (rank 0)\n",
                   w.title, ed_comm_size(), (long long)w.batches[0]->shape.dim[0], 100 * comm_share);
        printf("%s compile split: lower=%.1fms optimize=%.1fms codegen=%.1fms kernels=%d arena=%zu bytes cache=%s\n",
               w.title, cs.lower_ms, cs.optimize_ms, cs.codegen_ms, cs.kernels, cs.arena_bytes,
               cs.cache ? cs.cache : "none");
        printf("%s second compile: %.3fs (JIT %.1fms: lower=%.1fms optimize=%.1fms codegen=%.1fms) cache=%s\n", w.title,
               warm_s, ws.lower_ms + ws.optimize_ms + ws.codegen_ms, ws.lower_ms, ws.optimize_ms, ws.codegen_ms,
               ws.cache ? ws.cache : "none");
        printf("%s memory: arena=%lld buffers=%lld (%d) peak=%lld bytes, %d in place, %d updates into the store\n",
               w.title, (long long)cs.memory.arena_bytes, (long long)cs.memory.buffer_bytes, cs.memory.buffers,
               (long long)cs.memory.peak_bytes, cs.memory.inplace, cs.memory.in_store);
        printf(
            "RESULT workload=%s backend=%s threads=%d opt=%d passes=%s nodes=%d nodes_after=%d kernels=%d "
            "arena_bytes=%zu buffer_bytes=%lld peak_bytes=%lld inplace=%d compile_s=%.4f lower_ms=%.2f optimize_ms=%.2f codegen_ms=%.2f median_ms=%.4f "
            "min_ms=%.4f max_ms=%.4f repeats=%d steps=%d mflop=%.3f sgemm_gflops=%.2f roofline_ms=%.4f "
            "loss_first=%.6g loss_last=%.6g ranks=%d comm_share=%.4f cache=%s warm_compile_s=%.4f warm_jit_ms=%.2f "
            "warm_cache=%s cpu_ms=%.4f\n",
            id, bench_backend_name(o->backend), o->threads, opt, o->passes && !*o->passes ? "none" : "default",
            w.g->nnodes, nodes_after, cs.kernels, cs.arena_bytes, (long long)cs.memory.buffer_bytes,
            (long long)cs.memory.peak_bytes, cs.memory.inplace, compile_s, cs.lower_ms, cs.optimize_ms, cs.codegen_ms,
            1e3 * s.median, 1e3 * s.min, 1e3 * s.max, o->repeats, o->steps, flops / 1e6, sgemm / 1e9, 1e3 * roof,
            call.first_loss, call.last_loss, ed_comm_size(), comm_share, cs.cache ? cs.cache : "none", warm_s,
            ws.lower_ms + ws.optimize_ms + ws.codegen_ms, ws.cache ? ws.cache : "none", 1e3 * cpu_step);
        rc = isfinite(call.last_loss) ? 0 : 1;
        if (rc) fprintf(stderr, "bench %s: the loss is not finite\n", id);
    }
    ed_program_free(p);
    ed_store_free(st);
    bench_workload_free(&w);
    return rc;
}
