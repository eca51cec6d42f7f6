/* Topological order, use lists and replace-all-uses. */
#include "ir/ir.h"
#include "runtime/error.h"

#include <stdlib.h>
#include <string.h>

static bool creation_order_is_topological(const ed_graph *g)
{
    for (int i = 0; i < g->nnodes; i++)
        for (int k = 0; k < g->nodes[i]->nin; k++)
            if (g->nodes[i]->in[k]->id >= i) return false;
    return true;
}

/* Sift-down / sift-up on a min-heap of node ids. */
static void heap_push(int *heap, int *n, int v)
{
    int i = (*n)++;
    while (i > 0 && heap[(i - 1) / 2] > v) {
        heap[i] = heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    heap[i] = v;
}

static int heap_pop(int *heap, int *n)
{
    int top = heap[0], v = heap[--(*n)], i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && heap[c + 1] < heap[c]) c++;
        if (heap[c] >= v) break;
        heap[i] = heap[c];
        i = c;
    }
    if (*n) heap[i] = v;
    return top;
}

ed_node **ed_graph_topo(const ed_graph *g)
{
    int n = g->nnodes;
    ed_node **order = malloc((size_t)(n ? n : 1) * sizeof *order);
    if (!order) return NULL;
    if (creation_order_is_topological(g)) {
        if (n) memcpy(order, g->nodes, (size_t)n * sizeof *order);
        return order;
    }
    /* Kahn's algorithm, always taking the lowest ready id, so the order is stable. */
    ed_uses *u = ed_uses_build(g);
    int *pending = calloc((size_t)(n ? n : 1), sizeof *pending);
    int *heap = malloc((size_t)(n ? n : 1) * sizeof *heap);
    if (!u || !pending || !heap) {
        ed_uses_free(u), free(pending), free(heap), free(order);
        return NULL;
    }
    int hn = 0, count = 0;
    for (int i = 0; i < n; i++) {
        pending[i] = g->nodes[i]->nin;
        if (!pending[i]) heap_push(heap, &hn, i);
    }
    while (hn) {
        int id = heap_pop(heap, &hn);
        order[count++] = g->nodes[id];
        /* A node using this one twice appears twice in the use list: decrement per use. */
        for (int k = u->start[id]; k < u->start[id + 1]; k++)
            if (--pending[u->list[k]->id] == 0) heap_push(heap, &hn, u->list[k]->id);
    }
    ed_uses_free(u);
    free(pending);
    free(heap);
    if (count != n) { /* a cycle: only replace_all_uses can make one */
        free(order);
        ed_fail("graph @%s has a cycle", g->name);
        return NULL;
    }
    return order;
}

ed_uses *ed_uses_build(const ed_graph *g)
{
    int n = g->nnodes, total = 0;
    for (int i = 0; i < n; i++) total += g->nodes[i]->nin;
    ed_uses *u = malloc(sizeof *u);
    if (!u) return NULL;
    u->start = calloc((size_t)n + 2, sizeof *u->start);
    u->list = malloc((size_t)(total ? total : 1) * sizeof *u->list);
    int *fill = calloc((size_t)n + 1, sizeof *fill);
    if (!u->start || !u->list || !fill) {
        free(fill);
        ed_uses_free(u);
        return NULL;
    }
    for (int i = 0; i < n; i++)
        for (int k = 0; k < g->nodes[i]->nin; k++) u->start[g->nodes[i]->in[k]->id + 1]++;
    for (int i = 0; i < n; i++) u->start[i + 1] += u->start[i];
    for (int i = 0; i < n; i++)
        for (int k = 0; k < g->nodes[i]->nin; k++) {
            int src = g->nodes[i]->in[k]->id;
            u->list[u->start[src] + fill[src]++] = g->nodes[i];
        }
    free(fill);
    return u;
}

void ed_uses_free(ed_uses *u)
{
    if (!u) return;
    free(u->start);
    free(u->list);
    free(u);
}

int ed_use_count(const ed_uses *u, const ed_node *n) { return u->start[n->id + 1] - u->start[n->id]; }

int ed_replace_all_uses(ed_graph *g, ed_node *old, ed_node *new_node)
{
    if (!old || !new_node || old->graph != g || new_node->graph != g)
        return ed_fail("replace_all_uses: nodes must be non-NULL and belong to @%s", g->name);
    if (old->dtype != new_node->dtype || !ed_shape_eq(old->shape, new_node->shape)) {
        char a[96], b[96];
        return ed_fail("replace_all_uses: %%%d is %s but %%%d is %s", old->id, ed_node_type_str(old, a, sizeof a),
                       new_node->id, ed_node_type_str(new_node, b, sizeof b));
    }
    for (int i = 0; i < g->nnodes; i++) {
        ed_node *n = g->nodes[i];
        if (n == new_node) continue; /* new may be built from old: keep that use */
        for (int k = 0; k < n->nin; k++)
            if (n->in[k] == old) n->in[k] = new_node;
    }
    for (int i = 0; i < g->noutputs; i++)
        if (g->outputs[i].node == old) g->outputs[i].node = new_node;
    for (int i = 0; i < g->nupdates; i++)
        if (g->updates[i].node == old) g->updates[i].node = new_node;
    return ED_OK;
}
