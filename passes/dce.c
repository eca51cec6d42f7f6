/* dce: remove every node that no output or update depends on. Inputs, params and
 * state stay (feeds and the store bind them by name), and so do ops passes do not
 * know, which may have effects this pass cannot see. */
#include "passes/pass.h"
#include "runtime/error.h"

#include <stdlib.h>

int ed_pass_dce(ed_graph *g, ed_pass_stats *st)
{
    bool *dead = calloc((size_t)g->nnodes + 1, sizeof *dead);
    if (!dead) return ed_fail("dce: out of memory");
    ed_pass_live(g, dead);
    int removed = 0;
    for (int i = 0; i < g->nnodes; i++) {
        dead[i] = !dead[i];
        removed += dead[i];
    }
    int rc = removed ? ed_graph_remove_nodes(g, dead) : ED_OK;
    free(dead);
    st->rewrites += removed;
    return rc;
}
