/* The fused op's shape rule: its body must be an elementwise expression over inputs of
 * the node's input types (layout in ir.h). */
#include "ir/ir.h"
#include "runtime/error.h"

#include <stdio.h>


bool ed_fused_body_op(const ed_node *n)
{
    if (n->op == ED_OP_CONST) return n->attr.ndata == 1; /* a splat: one value, folded into the code */
    return ed_ops[n->op].kind == ED_KIND_ELEM || n->op == ED_OP_BROADCAST_TO;
}

static bool check_body(const ed_graph *body, ed_node *const *in, int nin, char *msg, size_t size)
{
    char t1[96], t2[96];
    if (ed_loop_body_ninputs(body) != nin)
        return ed_body_fail(msg, size, "body @%s has %d inputs, the node %d", body->name, ed_loop_body_ninputs(body), nin);
    for (int k = 0; k < nin; k++) {
        const ed_node *b = ed_loop_body_input(body, k);
        if (b->dtype != in[k]->dtype || !ed_shape_eq(b->shape, in[k]->shape))
            return ed_body_fail(msg, size, "input %d is %s but the body's input \"%s\" is %s", k,
                        ed_node_type_str(in[k], t1, sizeof t1), b->attr.name, ed_node_type_str(b, t2, sizeof t2));
    }
    if (body->noutputs != 1 || body->nupdates)
        return ed_body_fail(msg, size, "body @%s must have one out binding and no updates (has %d and %d)", body->name,
                    body->noutputs, body->nupdates);
    if (body->nnodes > ED_FUSED_MAX_NODES)
        return ed_body_fail(msg, size, "body @%s has %d nodes, at most %d", body->name, body->nnodes, ED_FUSED_MAX_NODES);
    for (int i = 0; i < body->nnodes; i++)
        for (int k = 0; k < body->nodes[i]->nin; k++)
            if (body->nodes[i]->in[k]->id >= i)
                return ed_body_fail(msg, size, "body @%s is not in topological creation order (%%%d reads %%%d)", body->name,
                            i, body->nodes[i]->in[k]->id);
    const ed_node *y = body->outputs[0].node;
    if (!y || y->op == ED_OP_INPUT) return ed_body_fail(msg, size, "body @%s's result must be computed", body->name);
    for (int i = 0; i < body->nnodes; i++) {
        const ed_node *n = body->nodes[i];
        if (n->op != ED_OP_INPUT && !ed_fused_body_op(n))
            return ed_body_fail(msg, size, "body @%s has %s (%%%d): only elementwise ops, broadcast_to and splat consts",
                        body->name, ed_op_name(n->op), n->id);
    }
    for (int i = 0; i < body->nnodes; i++) {
        const ed_node *n = body->nodes[i];
        ed_shape s;
        if (!ed_broadcast_shapes(n->shape, y->shape, &s) || !ed_shape_eq(s, y->shape))
            return ed_body_fail(msg, size, "body value %%%d is %s, which does not broadcast to the result %s", n->id,
                        ed_node_type_str(n, t1, sizeof t1), ed_node_type_str(y, t2, sizeof t2));
    }
    return true;
}

bool ed_fused_rule(ed_op op, ed_node *const *in, int nin, const ed_attrs *a, ed_dtype *dt, ed_shape *out,
                   char *msg, size_t size)
{
    (void)op;
    const ed_graph *body = a->body;
    if (!body) return ed_body_fail(msg, size, "has no body graph");
    if (body->failed) return ed_body_fail(msg, size, "body @%s has an error: %s", body->name, body->error);
    if (nin > ED_FUSED_MAX_INPUTS) return ed_body_fail(msg, size, "reads %d inputs, at most %d", nin, ED_FUSED_MAX_INPUTS);
    if (ed_graph_verify(body) != ED_OK) return ed_body_fail(msg, size, "body: %s", ed_last_error());
    if (!check_body(body, in, nin, msg, size)) return false;
    *dt = body->outputs[0].node->dtype;
    *out = body->outputs[0].node->shape;
    return true;
}
