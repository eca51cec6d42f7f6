/* ed_arena_plan: one slot per held node, in topological order, no reuse yet. */
#include "backend/arena.h"

#include "runtime/error.h"

bool ed_arena_holds(const ed_node *n)
{
    return n->op != ED_OP_INPUT && n->op != ED_OP_PARAM && n->op != ED_OP_STATE;
}

int64_t ed_arena_plan(const ed_graph *g, ed_node *const *order, int64_t *offsets)
{
    const int64_t limit = INT64_MAX - ED_ALIGN;
    int64_t top = 0;
    for (int i = 0; i < g->nnodes; i++) offsets[i] = -1;
    /* Topological order keeps buffers used together close together. */
    for (int i = 0; i < g->nnodes; i++) {
        const ed_node *n = order[i];
        if (!ed_arena_holds(n)) continue;
        int64_t bytes = ed_arena_node_bytes(n);
        if (bytes < 0 || bytes > limit - top) {
            char type[96];
            ed_fail("compile: %s (%%%d) does not fit in the program's memory",
                    ed_node_type_str(n, type, sizeof type), n->id);
            return -1;
        }
        offsets[n->id] = top;
        top += (bytes + ED_ALIGN - 1) / ED_ALIGN * ED_ALIGN;
    }
    return top;
}
