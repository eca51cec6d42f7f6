/* The verifier: every node's type agrees with its op's rule, inputs belong to the
 * graph and precede their users in some order, names are unique, and bindings are
 * well-typed. Passes run it after every change in test builds. */
#include "ir/ir.h"
#include "runtime/error.h"

#include <stdlib.h>
#include <string.h>

static int verify_node(const ed_graph *g, const ed_node *n)
{
    const ed_op_info *info = &ed_ops[n->op];
    if (n->graph != g || g->nodes[n->id] != n) return ed_fail("verify: %%%d is not stored under its id", n->id);
    if (n->nin < info->min_inputs || (info->max_inputs >= 0 && n->nin > info->max_inputs))
        return ed_fail("verify: %%%d %s has %d inputs", n->id, info->name, n->nin);
    for (int k = 0; k < n->nin; k++) {
        const ed_node *x = n->in[k];
        if (!x || x->graph != g || x->id < 0 || x->id >= g->nnodes || g->nodes[x->id] != x)
            return ed_fail("verify: input %d of %%%d %s is not a node of @%s", k + 1, n->id, info->name, g->name);
        if ((ed_ops[x->op].flags & F_TUPLE) && n->op != ED_OP_GET)
            return ed_fail("verify: input %d of %%%d %s is a %s (read its results with get)", k + 1, n->id, info->name,
                           ed_op_name(x->op));
    }
    if ((info->attrs & (A_BODY | A_EXPR)) && n->attr.body && n->attr.body->parent != g)
        return ed_fail("verify: the body of %s %%%d is not owned by @%s", info->name, n->id, g->name);
    ed_dtype dt;
    ed_shape s;
    char msg[768];
    if (!ed_infer(n->op, n->in, n->nin, &n->attr, &dt, &s, msg, sizeof msg))
        return ed_fail("verify: %%%d %s: %s", n->id, info->name, msg);
    if (dt != n->dtype || !ed_shape_eq(s, n->shape)) {
        char a[96], b[96];
        return ed_fail("verify: %%%d %s is %s but its rule gives %s", n->id, info->name,
                       ed_node_type_str(n, a, sizeof a), ed_type_str(dt, s, b, sizeof b));
    }
    if (info->attrs & A_NAME) {
        const ed_node *first = ed_graph_leaf(g, n->op, n->attr.name);
        if (first != n)
            return ed_fail("verify: %s \"%s\" is defined twice (%%%d and %%%d)", info->name, n->attr.name, first->id,
                           n->id);
    }
    return ED_OK;
}

int ed_graph_verify(const ed_graph *g)
{
    if (!g) return ed_fail("verify: no graph");
    if (g->failed) return ed_fail("verify: graph @%s has an error: %s", g->name, g->error);
    for (int i = 0; i < g->nnodes; i++)
        if (verify_node(g, g->nodes[i]) != ED_OK) return ED_ERR;
    ed_node **order = ed_graph_topo(g); /* fails on a cycle */
    if (!order) return ED_ERR;
    free(order);
    for (int i = 0; i < g->noutputs; i++) {
        const ed_node *v = g->outputs[i].node;
        if (!v || v->graph != g) return ed_fail("verify: out %s is not a node of @%s", g->outputs[i].name, g->name);
        if (ed_ops[v->op].flags & F_TUPLE)
            return ed_fail("verify: out %s is a %s, not a value (bind a get)", g->outputs[i].name, ed_op_name(v->op));
        for (int j = 0; j < i; j++)
            if (strcmp(g->outputs[j].name, g->outputs[i].name) == 0)
                return ed_fail("verify: out %s is bound twice", g->outputs[i].name);
    }
    for (int i = 0; i < g->nupdates; i++) {
        const ed_binding *b = &g->updates[i];
        const ed_node *t = ed_graph_leaf(g, ED_OP_PARAM, b->name);
        if (!t) t = ed_graph_leaf(g, ED_OP_STATE, b->name);
        if (!t) return ed_fail("verify: update \"%s\" names no param or state", b->name);
        if (!b->node || b->node->graph != g || b->node->dtype != t->dtype || !ed_shape_eq(b->node->shape, t->shape))
            return ed_fail("verify: update \"%s\" has the wrong type or node", b->name);
    }
    return ED_OK;
}
