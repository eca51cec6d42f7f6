/* What W4net and W7 share: compile one sampler graph (a loop node) with the bench
 * options, count its matmul work, and time whole sampler calls. */
#include "bench/sampler.h"
#include "bench/workloads.h"
#include "passes/pass.h"

#include <stdio.h>

static int body_nodes(const ed_graph *g)
{
    int n = 0;
    for (int i = 0; i < g->nnodes; i++)
        if (g->nodes[i]->op == ED_OP_LOOP) n += g->nodes[i]->attr.body->nnodes + body_nodes(g->nodes[i]->attr.body);
    return n;
}

/* The right operand of matmul n, or of the producer matmul of fused node n; else NULL. */
static const ed_node *matmul_weight(const ed_node *n)
{
    if (n->op == ED_OP_MATMUL) return n->in[1];
    const ed_node *mm = n->op == ED_OP_FUSED ? ed_fused_matmul(n->attr.body) : NULL;
    if (!mm) return NULL;
    for (int i = 0, k = 0; i < n->attr.body->nnodes; i++)
        if (n->attr.body->nodes[i]->op == ED_OP_INPUT) {
            if (n->attr.body->nodes[i] == mm->in[1]) return n->in[k];
            k++;
        }
    return NULL;
}

/* Bytes of the right operands of matmuls in loop bodies that the body captures (the
 * weights; what the hoist pass moved before the loop is read once per call, not counted). */
static double loop_weight_bytes(const ed_graph *g, bool in_body)
{
    double bytes = 0;
    for (int i = 0; i < g->nnodes; i++) {
        const ed_node *n = g->nodes[i], *w = matmul_weight(n);
        if (n->op == ED_OP_LOOP) bytes += loop_weight_bytes(n->attr.body, true);
        if (in_body && w && w->op == ED_OP_INPUT)
            bytes += (double)ed_shape_numel(w->shape) * (double)ed_dtype_size(w->dtype);
    }
    return bytes;
}

/* Loop body nodes after the pipeline ed_compile runs, on a copy, and the weight bytes a trip reads. */
static int body_nodes_after(const ed_graph *g, const char *passes, double *weight_bytes)
{
    ed_graph *copy = ed_graph_clone(g);
    int n = copy && ed_pass_run(copy, passes, NULL) == ED_OK ? body_nodes(copy) : -1;
    *weight_bytes = n >= 0 ? loop_weight_bytes(copy, false) : 0;
    ed_graph_free(copy);
    return n;
}

typedef struct {
    ed_program *p;
    const ed_feed *feed;
    int nfeed;
    const char *name;
} sampler_call;

static bool call_once(void *ud)
{
    sampler_call *c = ud;
    if (ed_run(c->p, c->feed, c->nfeed) == ED_OK) return true;
    fprintf(stderr, "bench %s: %s\n", c->name, ed_last_error());
    return false;
}

int bench_sampler_run(const bench_opts *o, const char *name, ed_graph *g, ed_sample_result r, const char *out, int full,
                      const ed_feed *feed, int nfeed, bench_sampler *b)
{
    *b = (bench_sampler){0};
    if (!r.samples) {
        fprintf(stderr, "bench %s: %s\n", name, ed_graph_error(g));
        return 1;
    }
    ed_output(g, out, r.samples);
    b->iterations = r.iterations;
    b->body = r.loop->attr.body->nnodes;
    b->body_after = body_nodes_after(g, o->passes, &b->step_weight_bytes);
    /* Matmul work of one full call (an interpreter graph may run fewer trips), counted
     * before the passes, and the roofline at this process's sgemm rate (JIT runs). */
    b->flops = bench_matmul_flops(g) / r.iterations * full;
    b->sgemm = o->backend == ED_BACKEND_INTERP ? 0 : bench_sgemm_flops(256);
    b->st = ed_store_new(0);
    double t0 = bench_now();
    b->p = ed_compile(g, b->st, &(ed_compile_opts){.backend = o->backend, .seed = 1, .passes = o->passes});
    b->compile_s = bench_now() - t0;
    if (!b->p) {
        fprintf(stderr, "bench %s: %s\n", name, ed_last_error());
        return 1;
    }
    b->cs = ed_program_compile_stats(b->p);
    sampler_call call = {b->p, feed, nfeed, name};
    return bench_time(o, call_once, &call, &b->s) ? 0 : 1;
}

void bench_sampler_free(bench_sampler *b, ed_graph *g)
{
    ed_program_free(b->p);
    ed_store_free(b->st);
    ed_graph_free(g);
}
