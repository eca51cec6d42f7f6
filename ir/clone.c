/* Copying a graph and removing nodes from one: what passes need beyond
 * replace_all_uses. A clone is rebuilt through ed_node_new, so every node is checked
 * again; removal renumbers the survivors densely in topological order. */
#include "ir/ir.h"
#include "runtime/error.h"

#include <stdlib.h>
#include <string.h>

ed_graph *ed_graph_clone(const ed_graph *g)
{
    if (!g) {
        ed_fail("clone: no graph (NULL)");
        return NULL;
    }
    ed_graph *c = ed_graph_new(g->name);
    if (c) c->eval_mode = g->eval_mode, c->weight_dtype = g->weight_dtype;
    ed_node **order = ed_graph_topo(g); /* inputs before users, even after replace_all_uses */
    ed_node **map = calloc((size_t)g->nnodes + 1, sizeof *map);
    ed_node **ins = NULL;
    int maxin = 1;
    for (int i = 0; i < g->nnodes; i++)
        if (g->nodes[i]->nin > maxin) maxin = g->nodes[i]->nin;
    ins = malloc((size_t)maxin * sizeof *ins);
    if (!c || !order || !map || !ins) {
        free(order), free(map), free(ins);
        ed_graph_free(c);
        ed_fail("clone: out of memory (or a cycle in @%s)", g->name);
        return NULL;
    }
    for (int i = 0; i < g->nnodes && !c->failed; i++) {
        const ed_node *n = order[i];
        for (int k = 0; k < n->nin; k++) ins[k] = map[n->in[k]->id];
        ed_attrs a = n->attr;
        if (a.body) { /* a loop's body is owned by its graph: the copy gets its own */
            ed_graph *body = ed_graph_clone(a.body);
            if (!body || ed_graph_adopt(c, body) != ED_OK) {
                if (body) ed_graph_free(body);
                else ed_graph_fail(c, "clone of loop body @%s: %s", a.body->name, ed_last_error());
                break;
            }
            a.body = body;
        }
        ed_node *m = ed_node_new(c, n->op, ins, n->nin, &a);
        if (m && n->name && n->name != n->attr.name) ed_set_name(m, n->name);
        map[n->id] = m;
    }
    for (int i = 0; i < g->noutputs && !c->failed; i++) ed_output(c, g->outputs[i].name, map[g->outputs[i].node->id]);
    for (int i = 0; i < g->nupdates && !c->failed; i++) ed_update(c, g->updates[i].name, map[g->updates[i].node->id]);
    if (g->next_stream > c->next_stream) c->next_stream = g->next_stream;
    free(order), free(map), free(ins);
    /* A graph with a sticky error clones with the same error. */
    if (g->failed && !c->failed) ed_graph_fail(c, "%s", g->error);
    if (c->failed && !g->failed) {
        ed_fail("clone: @%s: %s", g->name, c->error);
        ed_graph_free(c);
        return NULL;
    }
    return c;
}

int ed_graph_remove_nodes(ed_graph *g, const bool *dead)
{
    for (int i = 0; i < g->nnodes; i++) {
        const ed_node *n = g->nodes[i];
        if (dead[i]) continue;
        for (int k = 0; k < n->nin; k++)
            if (dead[n->in[k]->id])
                return ed_fail("remove_nodes: %%%d is removed but %%%d %s uses it", n->in[k]->id, n->id,
                               ed_op_name(n->op));
    }
    for (int i = 0; i < g->noutputs; i++)
        if (dead[g->outputs[i].node->id])
            return ed_fail("remove_nodes: %%%d is removed but out %s binds it", g->outputs[i].node->id,
                           g->outputs[i].name);
    for (int i = 0; i < g->nupdates; i++)
        if (dead[g->updates[i].node->id])
            return ed_fail("remove_nodes: %%%d is removed but update \"%s\" binds it", g->updates[i].node->id,
                           g->updates[i].name);
    ed_node **order = ed_graph_topo(g);
    if (!order) return ED_ERR;
    int k = 0;
    for (int i = 0; i < g->nnodes; i++) {
        ed_node *n = order[i];
        if (dead[n->id]) continue;
        g->nodes[k] = n;
        n->id = k++;
    }
    g->nnodes = k;
    free(order);
    return ED_OK;
}

int ed_graph_reorder(ed_graph *g, ed_node *const *order)
{
    int n = g->nnodes;
    int *at = malloc(((size_t)n + 1) * sizeof *at);
    if (!at) return ed_fail("reorder: out of memory");
    for (int i = 0; i < n; i++) at[i] = -1;
    for (int i = 0; i < n; i++) {
        const ed_node *v = order[i];
        if (!v || v->graph != g || v->id < 0 || v->id >= n || g->nodes[v->id] != v || at[v->id] >= 0) {
            free(at);
            return ed_fail("reorder: the order is not a permutation of @%s's nodes", g->name);
        }
        at[v->id] = i;
    }
    for (int i = 0; i < n; i++)
        for (int k = 0; k < order[i]->nin; k++)
            if (at[order[i]->in[k]->id] >= i) {
                free(at);
                return ed_fail("reorder: %%%d comes before its input %%%d", order[i]->id, order[i]->in[k]->id);
            }
    free(at);
    for (int i = 0; i < n; i++) {
        g->nodes[i] = order[i];
        order[i]->id = i;
    }
    return ED_OK;
}
