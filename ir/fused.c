/* The fused op's shape rule: its body must be an elementwise expression over inputs of
 * the node's input types, with at most one reduction (layout in ir.h). */
#include "ir/ir.h"
#include "runtime/error.h"

#include <stdio.h>

bool ed_fused_body_op(const ed_node *n)
{
    if (n->op == ED_OP_CONST) return n->attr.ndata == 1; /* a splat: one value, folded into the code */
    return ed_ops[n->op].kind == ED_KIND_ELEM || n->op == ED_OP_BROADCAST_TO || ed_fused_producer_op(n->op) ||
           (ed_ops[n->op].flags & F_FUSABLE_RED);
}

bool ed_fused_producer_op(ed_op op) { return op == ED_OP_MATMUL || op == ED_OP_CONV2D || op == ED_OP_CONV_TRANSPOSE2D; }

const ed_node *ed_fused_producer(const ed_graph *body)
{
    for (int i = 0; body && i < body->nnodes; i++)
        if (ed_fused_producer_op(body->nodes[i]->op)) return body->nodes[i];
    return NULL;
}

const ed_node *ed_fused_matmul(const ed_graph *body)
{
    for (int i = 0; body && i < body->nnodes; i++)
        if (body->nodes[i]->op == ED_OP_MATMUL) return body->nodes[i];
    return NULL;
}

const ed_node *ed_fused_reduction(const ed_graph *body)
{
    for (int i = 0; body && i < body->nnodes; i++)
        if (ed_ops[body->nodes[i]->op].kind == ED_KIND_REDUCE) return body->nodes[i];
    return NULL;
}

/* Mark from (and its ancestors) in mark[], not walking through stop. Ids are
 * topological, so one backward sweep does it. */
static void mark_ancestors(const ed_graph *body, const ed_node *from, const ed_node *stop, bool *mark)
{
    for (int i = 0; i < body->nnodes; i++) mark[i] = false;
    if (from == stop) return;
    mark[from->id] = true;
    for (int i = from->id; i >= 0; i--) {
        const ed_node *n = body->nodes[i];
        if (!mark[i]) continue;
        for (int k = 0; k < n->nin; k++)
            if (n->in[k] != stop) mark[n->in[k]->id] = true;
    }
}

void ed_fused_phases(const ed_graph *body, bool *phase1, bool *phase2)
{
    const ed_node *r = ed_fused_reduction(body), *y = body->outputs[0].node;
    if (r) mark_ancestors(body, r->in[0], NULL, phase1);
    else
        for (int i = 0; i < body->nnodes; i++) phase1[i] = false;
    mark_ancestors(body, y, r, phase2);
}

bool ed_fused_row_kernel(const ed_node *n)
{
    const ed_node *r = ed_fused_reduction(n->attr.body);
    return r && !ed_shape_eq(n->shape, r->shape);
}

/* Does input b, broadcast to r's operand, hold one value per group of r (every reduced
 * axis of size > 1 broadcast from size 1 or absent)? */
static bool constant_per_group(const ed_node *b, const ed_node *r)
{
    const ed_shape d = r->in[0]->shape, s = b->shape;
    for (int a = 0; a < d.rank; a++) {
        int j = a - (d.rank - s.rank);
        if ((r->attr.axes >> a & 1) && d.dim[a] > 1 && j >= 0 && s.dim[j] > 1) return false;
    }
    return true;
}

void ed_fused_group_values(const ed_graph *body, bool *per_group)
{
    const ed_node *r = ed_fused_reduction(body);
    for (int i = 0; i < body->nnodes; i++) {
        const ed_node *n = body->nodes[i];
        if (n->op == ED_OP_INPUT) {
            per_group[i] = r && constant_per_group(n, r);
            continue;
        }
        /* consts too, so a value computed once reads them computed */
        bool from_group = n->op == ED_OP_CONST || r;
        for (int k = 0; k < n->nin && from_group; k++) from_group = n->in[k] == r || per_group[n->in[k]->id];
        per_group[i] = from_group;
    }
}

bool ed_fused_inplace_ok(const ed_node *n)
{
    /* An epilogue result (one element per group) is written while later groups still
     * read inputs of its shape at other indices. A row kernel writes element e of a
     * group after reading element e, and reads nothing of other groups. A product reads
     * whole rows and columns of its operands while it is written. */
    if (ed_fused_producer(n->attr.body)) return false;
    return !ed_fused_reduction(n->attr.body) || ed_fused_row_kernel(n);
}

static bool broadcasts_to(ed_shape s, ed_shape to)
{
    ed_shape b;
    return ed_broadcast_shapes(s, to, &b) && ed_shape_eq(b, to);
}

bool ed_reduction_reads_back(const ed_node *r)
{
    const ed_shape d = r->in[0]->shape, s = r->shape;
    if (!broadcasts_to(s, d)) return false;
    /* numpy broadcasting reads r at strides `have`; its own group is at the strides of
     * the kept axes in C order (`want`); axes of size 1 move nothing */
    int64_t own[ED_MAX_RANK], want = 1, kept_stride[ED_MAX_RANK];
    ed_shape_strides(s, own);
    for (int a = d.rank - 1; a >= 0; a--) {
        bool reduced = r->attr.axes >> a & 1;
        kept_stride[a] = reduced ? 0 : want;
        if (!reduced) want *= d.dim[a];
    }
    for (int a = 0; a < d.rank; a++) {
        int j = a - (d.rank - s.rank);
        int64_t have = j < 0 || s.dim[j] == 1 ? 0 : own[j];
        if (d.dim[a] > 1 && have != kept_stride[a]) return false;
    }
    return true;
}

/* Is body node x read by producer mm alone (its operand, of its own shape)? */
static bool only_matmul_reads(const ed_graph *body, const ed_node *x, const ed_node *mm)
{
    if (!mm || (mm->in[0] != x && mm->in[1] != x)) return false;
    for (int i = x->id + 1; i < body->nnodes; i++)
        for (int k = 0; k < body->nodes[i]->nin; k++)
            if (body->nodes[i] != mm && body->nodes[i]->in[k] == x) return false;
    return true;
}

void ed_fused_per_element(const ed_graph *body, bool *each)
{
    const ed_node *mm = ed_fused_producer(body);
    for (int i = 0; i < body->nnodes; i++) each[i] = !only_matmul_reads(body, body->nodes[i], mm);
}

/* With a reduction r: phase 1 (r's operand and what it reads) broadcasts to r's input
 * shape D; the result is r's shape or D; everything else broadcasts to the result. */
static bool check_shapes(const ed_graph *body, char *msg, size_t size)
{
    char t1[96], t2[96];
    const ed_node *y = body->outputs[0].node, *r = ed_fused_reduction(body), *mm = ed_fused_producer(body);
    bool p1[ED_FUSED_MAX_NODES], p2[ED_FUSED_MAX_NODES];
    ed_fused_phases(body, p1, p2);
    if (r) {
        for (int i = r->id + 1; i < body->nnodes; i++)
            if (ed_ops[body->nodes[i]->op].kind == ED_KIND_REDUCE)
                return ed_body_fail(msg, size, "body @%s has two reductions (%%%d and %%%d), at most one", body->name,
                                    r->id, i);
        const ed_node *x = r->in[0];
        if (!ed_shape_eq(y->shape, r->shape) && !ed_shape_eq(y->shape, x->shape))
            return ed_body_fail(msg, size,
                                "body @%s's result %s has neither the shape of its reduction %s nor that of the "
                                "reduced operand",
                                body->name, ed_node_type_str(y, t1, sizeof t1), ed_node_type_str(r, t2, sizeof t2));
        if (!broadcasts_to(r->shape, y->shape))
            return ed_body_fail(msg, size, "body @%s's reduction %%%d is %s, which does not broadcast to the result %s",
                                body->name, r->id, ed_node_type_str(r, t1, sizeof t1),
                                ed_node_type_str(y, t2, sizeof t2));
        if (!ed_shape_eq(y->shape, r->shape) && !ed_reduction_reads_back(r))
            return ed_body_fail(msg, size,
                                "body @%s's reduction %%%d (%s) broadcast to %s does not read each element's own group "
                                "(a row kernel needs keepdims or leading reduced axes)",
                                body->name, r->id, ed_node_type_str(r, t1, sizeof t1),
                                ed_node_type_str(y, t2, sizeof t2));
    }
    for (int i = 0; i < body->nnodes; i++) {
        const ed_node *n = body->nodes[i];
        if (only_matmul_reads(body, n, mm)) continue; /* of the producer's operand shapes */
        if (p1[i] && !broadcasts_to(n->shape, r->in[0]->shape))
            return ed_body_fail(msg, size, "body value %%%d is %s, which does not broadcast to the reduced operand %s",
                                n->id, ed_node_type_str(n, t1, sizeof t1), ed_node_type_str(r->in[0], t2, sizeof t2));
        if ((p2[i] || !p1[i]) && n != r && !broadcasts_to(n->shape, y->shape))
            return ed_body_fail(msg, size, "body value %%%d is %s, which does not broadcast to the result %s", n->id,
                                ed_node_type_str(n, t1, sizeof t1), ed_node_type_str(y, t2, sizeof t2));
    }
    return true;
}

/* A producer (matmul or convolution): the only one, no reduction beside it, both
 * operands body inputs, of the result's shape (every later value is read per element of
 * it); a matmul one matrix. */
static bool check_producer(const ed_graph *body, const ed_node *mm, char *msg, size_t size)
{
    char t1[96], t2[96];
    const ed_node *y = body->outputs[0].node;
    const char *what = ed_op_name(mm->op);
    for (int i = mm->id + 1; i < body->nnodes; i++)
        if (ed_fused_producer_op(body->nodes[i]->op))
            return ed_body_fail(msg, size, "body @%s has two matmuls or convs (%%%d and %%%d), at most one", body->name,
                                mm->id, i);
    if (ed_fused_reduction(body))
        return ed_body_fail(msg, size, "body @%s has a %s and a reduction, at most one of them", body->name, what);
    if (mm->in[0]->op != ED_OP_INPUT || mm->in[1]->op != ED_OP_INPUT)
        return ed_body_fail(msg, size, "body @%s's %s %%%d must read two body inputs", body->name, what, mm->id);
    for (int a = 0; mm->op == ED_OP_MATMUL && a < mm->shape.rank - 2; a++)
        if (mm->shape.dim[a] != 1)
            return ed_body_fail(msg, size, "body @%s's matmul %%%d is %s: one matrix only (batch dims of size 1)",
                                body->name, mm->id, ed_node_type_str(mm, t1, sizeof t1));
    if (!ed_shape_eq(mm->shape, y->shape))
        return ed_body_fail(msg, size, "body @%s's %s %%%d is %s, not of the result's shape %s", body->name, what,
                            mm->id, ed_node_type_str(mm, t1, sizeof t1), ed_node_type_str(y, t2, sizeof t2));
    return true;
}

static bool check_body(const ed_graph *body, ed_node *const *in, int nin, char *msg, size_t size)
{
    char t1[96], t2[96];
    if (ed_loop_body_ninputs(body) != nin)
        return ed_body_fail(msg, size, "body @%s has %d inputs, the node %d", body->name, ed_loop_body_ninputs(body),
                            nin);
    for (int k = 0; k < nin; k++) {
        const ed_node *b = ed_loop_body_input(body, k);
        if (b->dtype != in[k]->dtype || !ed_shape_eq(b->shape, in[k]->shape))
            return ed_body_fail(msg, size, "input %d is %s but the body's input \"%s\" is %s", k,
                                ed_node_type_str(in[k], t1, sizeof t1), b->attr.name,
                                ed_node_type_str(b, t2, sizeof t2));
    }
    if (body->noutputs != 1 || body->nupdates)
        return ed_body_fail(msg, size, "body @%s must have one out binding and no updates (has %d and %d)", body->name,
                            body->noutputs, body->nupdates);
    if (body->nnodes > ED_FUSED_MAX_NODES)
        return ed_body_fail(msg, size, "body @%s has %d nodes, at most %d", body->name, body->nnodes,
                            ED_FUSED_MAX_NODES);
    for (int i = 0; i < body->nnodes; i++)
        for (int k = 0; k < body->nodes[i]->nin; k++)
            if (body->nodes[i]->in[k]->id >= i)
                return ed_body_fail(msg, size, "body @%s is not in topological creation order (%%%d reads %%%d)",
                                    body->name, i, body->nodes[i]->in[k]->id);
    const ed_node *y = body->outputs[0].node;
    if (!y || y->op == ED_OP_INPUT) return ed_body_fail(msg, size, "body @%s's result must be computed", body->name);
    for (int i = 0; i < body->nnodes; i++) {
        const ed_node *n = body->nodes[i];
        if (n->op != ED_OP_INPUT && !ed_fused_body_op(n))
            return ed_body_fail(msg, size,
                                "body @%s has %s (%%%d): only elementwise ops, broadcast_to, splat consts and one "
                                "sum, mean, max or min, or one matmul or conv",
                                body->name, ed_op_name(n->op), n->id);
    }
    const ed_node *mm = ed_fused_producer(body);
    if (mm && !check_producer(body, mm, msg, size)) return false;
    return check_shapes(body, msg, size);
}

bool ed_fused_rule(ed_op op, ed_node *const *in, int nin, const ed_attrs *a, ed_dtype *dt, ed_shape *out, char *msg,
                   size_t size)
{
    (void)op;
    const ed_graph *body = a->body;
    if (!body) return ed_body_fail(msg, size, "has no body graph");
    if (body->failed) return ed_body_fail(msg, size, "body @%s has an error: %s", body->name, body->error);
    if (nin > ED_FUSED_MAX_INPUTS)
        return ed_body_fail(msg, size, "reads %d inputs, at most %d", nin, ED_FUSED_MAX_INPUTS);
    if (ed_graph_verify(body) != ED_OK) return ed_body_fail(msg, size, "body: %s", ed_last_error());
    if (!check_body(body, in, nin, msg, size)) return false;
    *dt = body->outputs[0].node->dtype;
    *out = body->outputs[0].node->shape;
    return true;
}
