/* The rng workload: ns per standard normal from ed_rng_normal (runtime/philox.h), f32
 * and f64, for W4 DDPM's 20,000 per step and for 1,000,000 at once. Not a graph: this
 * is the runtime function every randn node of either backend calls. */
#include "bench/bench.h"
#include "runtime/philox.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct {
    void *out;
    ed_dtype dt;
    int64_t n;
    uint64_t call;
} rng_call;

static bool draw(void *ud)
{
    rng_call *c = ud;
    ed_rng_normal(c->out, c->dt, c->n, 1, c->call++, 7);
    return true;
}

int bench_rng(const bench_opts *o)
{
    static const int64_t sizes[] = {20000, 1000000};
    static const ed_dtype dts[] = {ED_F32, ED_F64};
    for (int s = 0; s < 2; s++)
        for (int d = 0; d < 2; d++) {
            rng_call c = {malloc((size_t)sizes[s] * 8), dts[d], sizes[s], 0};
            bench_stat st;
            bool ok = c.out && bench_time(o, draw, &c, &st);
            free(c.out);
            if (!ok) return 1;
            const char *name = dts[d] == ED_F32 ? "f32" : "f64";
            double ns = 1e9 * st.median / (double)sizes[s];
            printf("rng normal %s n=%lld: median %.3f ms per call (%.3f..%.3f), %.2f ns per normal\n", name,
                   (long long)sizes[s], 1e3 * st.median, 1e3 * st.min, 1e3 * st.max, ns);
            printf("RESULT workload=rng dtype=%s n=%lld median_ms=%.4f min_ms=%.4f max_ms=%.4f ns_per_normal=%.3f\n",
                   name, (long long)sizes[s], 1e3 * st.median, 1e3 * st.min, 1e3 * st.max, ns);
        }
    return 0;
}
