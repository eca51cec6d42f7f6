/* The arena size of a node and the scratch layout of a loop's slot (backend/arena.h).
 * A loop's body is planned with ed_arena_plan like any graph, so a nested loop's
 * scratch sits inside its parent's body arena. */
#include "backend/arena.h"

#include "runtime/error.h"

#include <stdlib.h>

static const int64_t LIMIT = INT64_C(1) << 60;

static int64_t aligned(int64_t bytes) { return (bytes + ED_ALIGN - 1) / ED_ALIGN * ED_ALIGN; }

static int64_t value_bytes(const ed_node *n)
{
    int64_t numel = ed_shape_numel(n->shape), size = (int64_t)ed_dtype_size(n->dtype);
    if (numel < 0 || numel > LIMIT / size) return -1;
    return numel * size;
}

int64_t ed_arena_node_bytes(const ed_node *n)
{
    if (n->op != ED_OP_LOOP) return value_bytes(n);
    ed_loop_layout l;
    int st = ed_loop_layout_make(n, &l);
    int64_t total = l.total;
    ed_loop_layout_free(&l);
    return st == ED_OK ? total : -1;
}

void ed_loop_layout_free(ed_loop_layout *l)
{
    free(l->carried);
    free(l->body_off);
    free(l->order);
    *l = (ed_loop_layout){0};
}

int ed_loop_layout_make(const ed_node *loop, ed_loop_layout *l)
{
    *l = (ed_loop_layout){0};
    const ed_graph *body = loop->attr.body;
    int nc = loop->attr.ncarried;
    l->carried = calloc(2 * (size_t)nc + 1, sizeof *l->carried);
    l->body_off = calloc((size_t)body->nnodes + 1, sizeof *l->body_off);
    l->order = ed_graph_topo(body);
    if (!l->carried || !l->body_off || !l->order) return ed_fail("compile: out of memory");
    int64_t top = value_bytes(loop);
    if (top < 0) return ed_fail("compile: the results of loop %%%d are too large", loop->id);
    l->index = aligned(top);
    top = l->index + ED_ALIGN;
    for (int k = 0; k < 2 * nc; k++) {
        int64_t bytes = value_bytes(loop->in[k / 2]);
        if (bytes < 0 || bytes > LIMIT - top) return ed_fail("compile: loop %%%d does not fit in memory", loop->id);
        l->carried[k] = top;
        top = aligned(top + bytes);
    }
    l->body = top;
    int64_t body_bytes = ed_arena_plan(body, l->order, l->body_off);
    if (body_bytes < 0 || body_bytes > LIMIT - top)
        return ed_fail("compile: loop %%%d does not fit in memory", loop->id);
    l->total = top + body_bytes;
    return ED_OK;
}
