/* hoist: loop-invariant code motion. A loop body's node whose value cannot change from
 * one trip to the next (it reads only captured values and consts, draws nothing random)
 * is computed once, in the loop's graph, and comes into the body as one more captured
 * value. A sampler's observation projection, say, then runs once per call instead of
 * once per step.
 *
 * The pass runs on the graph holding the loop; the manager runs it on loop bodies first,
 * so what an inner loop hoists into its body can move on out of the outer loop. The
 * moved nodes are the same ops with the same inputs, so the values are the same bits.
 *
 * Not moved: random ops (a body draws from a per-trip seed), loops and fused nodes (their
 * bodies belong to the body graph), ops passes do not know, and a broadcast_to read by
 * the body (moving it would store the broadcast result instead of reading the small
 * value; its input moves instead). Values that depend on the trip index stay. */
#include "passes/pass.h"
#include "runtime/error.h"

#include <stdio.h>
#include <stdlib.h>

static bool movable_op(const ed_node *n)
{
    const ed_op_info *info = &ed_ops[n->op];
    return info->kind != ED_KIND_LEAF && info->kind != ED_KIND_RANDOM && !(info->attrs & A_STREAM) &&
           !(info->flags & F_TUPLE) && !n->attr.body && ed_pass_op_is_known(n->op);
}

/* The outer value a captured body input stands for, or NULL for the index and the
 * carried inputs. */
static ed_node *outer_of(const ed_node *loop, const ed_graph *body, const ed_node *leaf)
{
    int ncarried = loop->attr.ncarried;
    for (int k = 1 + ncarried; k < ed_loop_body_ninputs(body); k++)
        if (ed_loop_body_input(body, k) == leaf) return loop->in[k - 1];
    return NULL;
}

/* frontier[i]: body node i moves and is read by a node that stays or bound to an out. */
static void mark_frontier(const ed_graph *body, const bool *move, bool *frontier)
{
    for (int i = 0; i < body->nnodes; i++) frontier[i] = false;
    for (int i = 0; i < body->nnodes; i++) {
        const ed_node *n = body->nodes[i];
        if (move[i]) continue;
        for (int k = 0; k < n->nin; k++) frontier[n->in[k]->id] |= move[n->in[k]->id];
    }
    for (int i = 0; i < body->noutputs; i++) frontier[body->outputs[i].node->id] |= move[body->outputs[i].node->id];
}

/* A fresh captured-input name in body: "captured<k>" for the first free k from the
 * number captured so far. */
static ed_node *new_captured(ed_graph *body, const ed_node *loop, const ed_node *like)
{
    char name[48];
    for (int k = loop->nin - loop->attr.ncarried;; k++) {
        snprintf(name, sizeof name, "captured%d", k);
        if (!ed_graph_leaf(body, ED_OP_INPUT, name)) break;
    }
    return ed_node_new(body, ED_OP_INPUT, NULL, 0,
                       &(ed_attrs){.name = name, .dtype = like->dtype, .shape = like->shape});
}

/* Renumber body with its input leaves first, in their order, as loop bodies are laid
 * out (the new ones were made after the nodes that now read them). */
static int inputs_first(ed_graph *body)
{
    ed_node **topo = ed_graph_topo(body), **order = malloc(((size_t)body->nnodes + 1) * sizeof *order);
    int k = 0, rc = ED_ERR;
    if (topo && order) {
        for (int i = 0; i < body->nnodes; i++)
            if (topo[i]->op == ED_OP_INPUT) order[k++] = topo[i];
        for (int i = 0; i < body->nnodes; i++)
            if (topo[i]->op != ED_OP_INPUT) order[k++] = topo[i];
        rc = ed_graph_reorder(body, order);
    }
    if (!order) rc = ed_fail("hoist: out of memory");
    free(topo), free(order);
    return rc;
}

/* Append v to the loop's inputs (a captured value; the body's new input leaf is last). */
static bool append_input(ed_graph *g, ed_node *loop, ed_node *v)
{
    ed_node **in = ed_graph_alloc(g, (size_t)(loop->nin + 1) * sizeof *in);
    if (!in) return false;
    for (int k = 0; k < loop->nin; k++) in[k] = loop->in[k];
    in[loop->nin] = v;
    loop->in = in;
    loop->nin++;
    return true;
}

/* Move the invariant nodes of one loop's body to g; returns how many moved, or -1. */
static int hoist_loop(ed_graph *g, ed_node *loop)
{
    ed_graph *body = loop->attr.body;
    int n = body->nnodes;
    bool *move = calloc((size_t)n + 1, sizeof *move), *frontier = calloc((size_t)n + 1, sizeof *frontier);
    bool *invariant = calloc((size_t)n + 1, sizeof *invariant), *cross = calloc((size_t)n + 1, sizeof *cross);
    ed_node **outer = calloc((size_t)n + 1, sizeof *outer);
    ed_node **order = ed_graph_topo(body);
    int moved = -1;
    if (!move || !frontier || !invariant || !cross || !outer || !order) {
        ed_fail("hoist: out of memory");
        goto done;
    }
    /* Invariant: a captured input, a const, or a movable op of invariant inputs. */
    for (int i = 0; i < n; i++) {
        ed_node *v = order[i];
        bool inv;
        if (v->op == ED_OP_INPUT) inv = (outer[v->id] = outer_of(loop, body, v)) != NULL;
        else if (v->op == ED_OP_CONST) inv = true;
        else {
            inv = movable_op(v);
            for (int k = 0; k < v->nin && inv; k++) inv = invariant[v->in[k]->id];
        }
        invariant[v->id] = inv;
        move[v->id] = inv && v->op != ED_OP_INPUT && v->op != ED_OP_CONST;
    }
    /* What crosses: each moved value the body still reads. A broadcast_to the body reads
     * stays there as well (reading the small value is cheaper than storing the
     * broadcast), and what it broadcasts crosses instead, through any chain of them. */
    mark_frontier(body, move, frontier);
    int ncross = 0;
    for (int i = 0; i < n; i++) {
        if (!frontier[i]) continue;
        ed_node *v = body->nodes[i];
        while (v->op == ED_OP_BROADCAST_TO && move[v->id]) v = v->in[0];
        if (move[v->id] && !cross[v->id]) cross[v->id] = true, ncross++;
    }
    moved = 0;
    if (!ncross) goto done;
    /* Rebuild the moved nodes in g in topological order; consts they read are copied. */
    for (int i = 0; i < n; i++) {
        ed_node *v = order[i];
        if (!move[v->id]) continue;
        ed_node **in = malloc(((size_t)v->nin + 1) * sizeof *in);
        if (!in) goto fail;
        for (int k = 0; k < v->nin; k++) {
            ed_node *u = v->in[k];
            if (!outer[u->id] && u->op == ED_OP_CONST) outer[u->id] = ed_node_new(g, ED_OP_CONST, NULL, 0, &u->attr);
            in[k] = outer[u->id];
        }
        outer[v->id] = ed_node_new(g, v->op, in, v->nin, &v->attr);
        free(in);
        if (!outer[v->id]) goto fail;
        if (v->name) ed_set_name(outer[v->id], v->name);
        moved++;
    }
    /* Each value that crosses becomes a captured input of the body. */
    for (int i = 0; i < n; i++) {
        if (!cross[i]) continue;
        ed_node *leaf = new_captured(body, loop, body->nodes[i]);
        if (!leaf || !append_input(g, loop, outer[i])) goto fail;
        if (ed_replace_all_uses(body, body->nodes[i], leaf) != ED_OK) goto fail;
    }
    /* Drop what moved from the body; removing renumbers it in topological order (the
     * new leaves were made last, after their readers). */
    bool *live = calloc((size_t)body->nnodes + 1, sizeof *live), *dead = calloc((size_t)body->nnodes + 1, sizeof *dead);
    if (!live || !dead) {
        free(live), free(dead);
        goto fail;
    }
    ed_pass_live(body, live);
    /* Dead code of the body that reads a removed node goes with it (as the manager's
     * sweep does for the graph a pass runs on). */
    ed_node **now = ed_graph_topo(body);
    int rc = now ? ED_OK : ED_ERR;
    for (int i = 0; now && i < body->nnodes; i++) {
        const ed_node *v = now[i];
        bool d = !live[v->id] && v->id < n && move[v->id];
        for (int k = 0; k < v->nin && !d && !live[v->id]; k++) d = dead[v->in[k]->id];
        dead[v->id] = d;
    }
    free(now);
    if (rc == ED_OK) rc = ed_graph_remove_nodes(body, dead);
    free(live), free(dead);
    if (rc == ED_OK) rc = inputs_first(body);
    if (rc != ED_OK) goto fail;
    goto done;
fail:
    moved = -1;
    char why[ED_ERROR_MAX];
    snprintf(why, sizeof why, "%s", ed_graph_error(g) ? ed_graph_error(g) : ed_last_error());
    ed_fail("hoist: loop %%%d: %s", loop->id, why);
done:
    free(move), free(frontier), free(invariant), free(cross), free(outer), free(order);
    return moved;
}

int ed_pass_hoist(ed_graph *g, ed_pass_stats *st)
{
    int nnodes = g->nnodes;
    for (int i = 0; i < nnodes; i++) {
        ed_node *loop = g->nodes[i];
        if (loop->op != ED_OP_LOOP || !loop->attr.body) continue;
        int moved = hoist_loop(g, loop);
        if (moved < 0) return ED_ERR;
        st->rewrites += moved;
    }
    /* The loop now reads values created after it: put g back in topological order. */
    ed_node **topo = ed_graph_topo(g);
    int rc = topo ? ed_graph_reorder(g, topo) : ED_ERR;
    free(topo);
    return rc;
}
