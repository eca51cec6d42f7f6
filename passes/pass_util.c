/* Helpers every pass shares: which ops passes understand, and liveness. */
#include "passes/pass.h"

#include <stdlib.h>

/* The attribute groups passes know how to compare and copy (A_NAME .. A_TRANS, and the
 * convolutions'). */
#define KNOWN_ATTRS ((unsigned)(((A_TRANS << 1) - 1) | A_CONV | A_OUTPAD | A_KERNEL))

bool ed_pass_op_is_known(ed_op op)
{
    if ((unsigned)op >= ED_OP_COUNT) return false;
    if (ed_ops[op].attrs & ~KNOWN_ATTRS) return false;
    switch (ed_ops[op].kind) {
    case ED_KIND_LEAF:
    case ED_KIND_ELEM:
    case ED_KIND_REDUCE:
    case ED_KIND_MOVE:
    case ED_KIND_INDEX:
    case ED_KIND_MATMUL:
    case ED_KIND_CONV:
    case ED_KIND_RANDOM: return true;
    default: return false;
    }
}

static bool is_root(const ed_node *n)
{
    return n->op == ED_OP_INPUT || n->op == ED_OP_PARAM || n->op == ED_OP_STATE || !ed_pass_op_is_known(n->op);
}

void ed_pass_live(const ed_graph *g, bool *live)
{
    int n = g->nnodes, top = 0;
    ed_node **stack = malloc((size_t)(n + g->noutputs + g->nupdates + 1) * sizeof *stack);
    for (int i = 0; i < n; i++) live[i] = false;
    if (!stack) { /* out of memory: call everything live, which removes nothing */
        for (int i = 0; i < n; i++) live[i] = true;
        return;
    }
    /* Each node is pushed at most once (marked when pushed). */
    for (int i = 0; i < n; i++)
        if (is_root(g->nodes[i])) live[i] = true, stack[top++] = g->nodes[i];
    for (int i = 0; i < g->noutputs; i++)
        if (!live[g->outputs[i].node->id]) live[g->outputs[i].node->id] = true, stack[top++] = g->outputs[i].node;
    for (int i = 0; i < g->nupdates; i++)
        if (!live[g->updates[i].node->id]) live[g->updates[i].node->id] = true, stack[top++] = g->updates[i].node;
    while (top) {
        ed_node *x = stack[--top];
        for (int k = 0; k < x->nin; k++)
            if (!live[x->in[k]->id]) live[x->in[k]->id] = true, stack[top++] = x->in[k];
    }
    free(stack);
}
