/* The per-row random draws of a data-parallel step: drawn for the whole batch, sliced. */
#include "models/data_parallel.h"
#include "frontend/frontend.h"
#include "runtime/error.h"

static const ed_node *same_draw(const ed_graph *probe, const ed_node *n)
{
    for (int i = 0; i < probe->nnodes; i++) {
        const ed_node *p = probe->nodes[i];
        if (p->op == n->op && p->attr.stream == n->attr.stream) return p;
    }
    return NULL;
}

static bool per_row(const ed_node *n, const ed_graph *probe, int64_t local)
{
    if (ed_ops[n->op].kind != ED_KIND_RANDOM || n->shape.rank == 0 || n->shape.dim[0] != local) return false;
    const ed_node *p = same_draw(probe, n);
    return p && p->shape.rank == n->shape.rank && p->shape.dim[0] == 2 * local;
}

int ed_dp_split_draws(ed_graph *g, const ed_graph *probe, int64_t local, int rank, int world)
{
    if (world <= 1 || ed_graph_error(g)) return ed_graph_error(g) ? ED_ERR : ED_OK;
    int count = g->nnodes; /* the nodes made here are not visited */
    for (int i = 0; i < count; i++) {
        ed_node *n = g->nodes[i];
        if (!per_row(n, probe, local)) continue;
        ed_attrs whole = n->attr;
        whole.shape.dim[0] = local * world;
        ed_node *all = ed_node_new(g, n->op, NULL, 0, &whole);
        ed_node *mine = ed_slice_axis(all, 0, rank * local, (rank + 1) * local);
        if (!mine) return ED_ERR;
        if (ed_replace_all_uses(g, n, mine) != ED_OK) {
            ed_graph_fail(g, "data parallel: %s", ed_last_error());
            return ED_ERR;
        }
    }
    return ed_graph_error(g) ? ED_ERR : ED_OK;
}
