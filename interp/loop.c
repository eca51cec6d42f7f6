/* loop and get in the interpreter. A loop call allocates its body's buffers once,
 * runs the body `trips` times in topological order, double-buffers the carried values
 * (iteration i reads one set and its next values are copied into the other, so a body
 * may swap or pass carried values through) and copies each stacked output into its
 * slice of the result. Random ops in the body draw with the iteration's seed
 * (ed_rng_loop_seed, runtime/philox.h). */
#include "interp/kernels.h"
#include "runtime/error.h"
#include "runtime/philox.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    const ed_graph *body;
    int nb, nc, nres;
    ed_node **order;
    const ed_tensor **value; /* by body id */
    ed_tensor **owned;       /* by body id: computed nodes */
    const ed_tensor **args;
    ed_tensor *index;
    ed_tensor **carried[2]; /* by carried k: the two buffers */
    ed_tensor **result;     /* by result k: views into the loop's storage */
} frame;

static void frame_free(frame *f)
{
    for (int i = 0; f->owned && i < f->nb; i++) ed_tensor_free(f->owned[i]);
    for (int s = 0; s < 2; s++)
        for (int k = 0; f->carried[s] && k < f->nc; k++) ed_tensor_free(f->carried[s][k]);
    for (int k = 0; f->result && k < f->nres; k++) ed_tensor_free(f->result[k]);
    ed_tensor_free(f->index);
    free(f->order);
    free(f->value);
    free(f->owned);
    free(f->args);
    free(f->carried[0]);
    free(f->carried[1]);
    free(f->result);
}

static void *zalloc(int n, size_t size) { return calloc(n > 0 ? (size_t)n : 1, size); }

static bool frame_init(frame *f, const ed_node *loop, ed_tensor *out)
{
    const ed_graph *body = loop->attr.body;
    *f = (frame){.body = body, .nb = body->nnodes, .nc = loop->attr.ncarried, .nres = ed_loop_nresults(loop)};
    int maxin = 1;
    for (int i = 0; i < f->nb; i++) maxin = body->nodes[i]->nin > maxin ? body->nodes[i]->nin : maxin;
    f->order = ed_graph_topo(body);
    f->value = zalloc(f->nb, sizeof *f->value);
    f->owned = zalloc(f->nb, sizeof *f->owned);
    f->args = zalloc(maxin, sizeof *f->args);
    f->carried[0] = zalloc(f->nc, sizeof *f->carried[0]);
    f->carried[1] = zalloc(f->nc, sizeof *f->carried[1]);
    f->result = zalloc(f->nres, sizeof *f->result);
    f->index = ed_tensor_new(ED_I32, (ed_shape){0});
    if (!f->order || !f->value || !f->owned || !f->args || !f->carried[0] || !f->carried[1] || !f->result || !f->index)
        return false;
    for (int i = 0; i < f->nb; i++) {
        const ed_node *n = body->nodes[i];
        if (ed_interp_is_bound_leaf(n->op)) continue;
        if (!(f->owned[i] = ed_tensor_new(n->dtype, n->shape))) return false;
        f->value[i] = f->owned[i];
    }
    for (int k = 0; k < f->nc; k++) {
        const ed_node *c = loop->in[k];
        if (!(f->carried[0][k] = ed_tensor_new(c->dtype, c->shape)) ||
            !(f->carried[1][k] = ed_tensor_new(c->dtype, c->shape)))
            return false;
    }
    for (int k = 0; k < f->nres; k++) {
        ed_dtype dt;
        ed_shape s;
        ed_loop_result_type(loop, k, &dt, &s);
        char *at = out->data ? (char *)out->data + ed_loop_result_offset(loop, k) : NULL;
        if (!(f->result[k] = ed_tensor_wrap(dt, s, ed_shape_numel(s) ? at : NULL))) return false;
    }
    return true;
}

static void copy_bytes(void *dst, const void *src, size_t n)
{
    if (n && dst != src) memcpy(dst, src, n);
}

/* One run of the body with the given seed; carried values are read from cur. */
static void run_body(frame *f, const ed_node *loop, const ed_tensor *const *in, int cur, const ed_interp_ctx *ctx)
{
    for (int k = 0; k < loop->nin; k++) {
        const ed_node *leaf = ed_loop_body_input(f->body, k + 1);
        f->value[leaf->id] = k < f->nc ? f->carried[cur][k] : in[k];
    }
    f->value[ed_loop_body_input(f->body, 0)->id] = f->index;
    for (int i = 0; i < f->nb; i++) {
        const ed_node *n = f->order[i];
        ed_tensor *o = f->owned[n->id];
        if (!o) continue;
        for (int k = 0; k < n->nin; k++) f->args[k] = f->value[n->in[k]->id];
        ed_interp_eval(n, f->args, o, ctx);
    }
}

ED_KERNEL(ed_k_loop)
{
    frame f;
    if (!frame_init(&f, n, out)) {
        frame_free(&f);
        if (ctx->status) *ctx->status = ed_fail("run: out of memory for the body of loop %%%d", n->id);
        return;
    }
    for (int k = 0; k < f.nc; k++) copy_bytes(f.carried[0][k]->data, in[k]->data, ed_tensor_bytes(in[k]));
    int cur = 0;
    for (int64_t i = 0; i < n->attr.trips; i++) {
        ((int32_t *)f.index->data)[0] = (int32_t)i;
        ed_interp_ctx inner = *ctx;
        inner.seed = ed_rng_loop_seed(ctx->seed, ctx->call, n->attr.stream, (uint32_t)i);
        run_body(&f, n, in, cur, &inner);
        for (int k = 0; k < f.nres; k++) {
            const ed_tensor *v = f.value[f.body->outputs[k].node->id];
            size_t bytes = ed_tensor_bytes(v);
            if (!bytes) continue;
            if (k < f.nc) copy_bytes(f.carried[1 - cur][k]->data, v->data, bytes);
            else copy_bytes((char *)f.result[k]->data + (size_t)i * bytes, v->data, bytes);
        }
        cur = 1 - cur;
    }
    for (int k = 0; k < f.nc; k++) copy_bytes(f.result[k]->data, f.carried[cur][k]->data, ed_tensor_bytes(f.result[k]));
    frame_free(&f);
}

ED_KERNEL(ed_k_get)
{
    (void)ctx;
    size_t bytes = ed_tensor_bytes(out);
    if (bytes) copy_bytes(out->data, (const char *)in[0]->data + ed_loop_result_offset(n->in[0], n->attr.index), bytes);
}
