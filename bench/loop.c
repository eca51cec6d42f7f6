/* The loop workload (bench/README.md): one call runs a 1000-trip loop whose carried
 * value is f32[10000, 2], updated by a few elementwise ops and a randn per step
 * (x <- x - 0.001 x^3 + 0.02 z, a noisy gradient step on x^4/4). The JIT runs it as
 * one native loop; the interpreter walks the body graph 1000 times. */
#include "bench/bench.h"
#include "frontend/frontend.h"
#include "frontend/loop.h"

#include <stdio.h>

static bool run_once(void *ud)
{
    if (ed_run(ud, NULL, 0) == ED_OK) return true;
    fprintf(stderr, "bench loop: %s\n", ed_last_error());
    return false;
}

enum { TRIPS = 1000, N = 10000 };

/* with_noise false drops the randn (its Box-Muller in double dominates otherwise). */
static int one(const bench_opts *o, bool with_noise)
{
    ed_graph *g = ed_graph_new("loop_bench");
    ed_shape s = ed_shape2(N, 2);
    ed_loop_builder *b = ed_loop_begin(g, TRIPS);
    ed_node *x = ed_loop_carried(b, ed_fill(g, ED_F32, s, 0.5));
    ed_node *z = with_noise ? ed_randn(ed_loop_body(b), ED_F32, s) : ed_fill(ed_loop_body(b), ED_F32, s, 0.1);
    ed_node *x1 = ed_add(ed_sub(x, ed_mul_scalar(ed_mul(x, ed_square(x)), 0.001)), ed_mul_scalar(z, 0.02));
    ed_node *loop = ed_loop_end(b, &x1, 1, NULL, 0);
    ed_output(g, "x", ed_loop_result(loop, 0));
    ed_program *p = ed_compile(g, NULL, &(ed_compile_opts){.backend = o->backend, .seed = 1});
    int rc = 1;
    bench_stat st;
    if (!p) fprintf(stderr, "bench loop: %s\n", ed_last_error());
    else if (bench_time(o, run_once, p, &st)) {
        ed_compile_stats cs = ed_program_compile_stats(p);
        printf("loop %d trips x f32[%d,2], 6 ops + %s per trip: %s median %.1f ms per call (%.1f..%.1f), "
               "%.1f us per trip | compile %.1f ms, %d kernels, arena %zu bytes\n",
               TRIPS, N, with_noise ? "randn" : "const", bench_backend_name(o->backend), 1e3 * st.median, 1e3 * st.min,
               1e3 * st.max, 1e6 * st.median / TRIPS, cs.lower_ms + cs.optimize_ms + cs.codegen_ms, cs.kernels,
               cs.arena_bytes);
        printf(
            "RESULT workload=loop body=%s backend=%s median_ms=%.4f min_ms=%.4f max_ms=%.4f trips=%d compile_ms=%.2f "
            "kernels=%d arena_bytes=%zu\n",
            with_noise ? "randn" : "const", bench_backend_name(o->backend), 1e3 * st.median, 1e3 * st.min, 1e3 * st.max,
            TRIPS, cs.lower_ms + cs.optimize_ms + cs.codegen_ms, cs.kernels, cs.arena_bytes);
        rc = 0;
    }
    ed_program_free(p);
    ed_graph_free(g);
    return rc;
}

int bench_loop(const bench_opts *o) { return one(o, true) || one(o, false); }
