/* simplify: local rewrites that keep every value (see the rules below), applied in
 * topological order so each node sees its inputs already simplified.
 *
 *   x*1, 1*x, x+0, 0+x, x-0, x/1, pow(x, 1)  -> x   (when the result has x's type)
 *   neg(neg x) -> x;   log(exp x) -> x;   exp(log x) -> x when x is never negative
 *   reshape(reshape x) -> reshape x;  reshape/broadcast_to/cast to x's own type -> x
 *   transpose(transpose x) -> one transpose, or x when the perms cancel
 *   matmul(transpose(a) swapping the last two axes, b) -> matmul(a, b) with ta flipped
 *   (same for b and tb)
 *   an elementwise op reading broadcast_to(x) reads x when it broadcasts to the same
 *   result anyway
 *   sum/mean/max/min(reshape x) -> the reduction over x's own axes (then a reshape of
 *   the result when its shape differs), when the reshape only merges or splits groups
 *   of axes, every group is reduced whole or kept whole, and no elementwise op reads
 *   the reshape too
 *
 * Two of these can change a value at the edge of floating point: x + 0 turns a -0
 * input into +0 in the original but not after (only 1/x and sign-sensitive code can
 * tell), and log(exp x) is x even where exp(x) overflows to inf or underflows to 0 in
 * the original. Both are the usual compiler choices; everything else is exact.
 *
 * The reduction rule is exact too: both backends walk the kept axes in C order and a
 * group's reduced elements in C order, and a merged group's row-major flat index runs
 * through its axes' tuples in C order, so the elements meet the accumulator in the same
 * sequence and a mean divides by the same count (test_passes checks it bit for bit). */
#include "passes/pass.h"
#include "runtime/error.h"

#include <stdlib.h>
#include <string.h>

static bool same_type(const ed_node *a, const ed_node *b)
{
    return a->dtype == b->dtype && ed_shape_eq(a->shape, b->shape);
}

/* n is a const whose every value is v. */
static bool is_const_value(const ed_node *n, double v)
{
    if (n->op != ED_OP_CONST || n->attr.ndata < 1) return false;
    for (int64_t i = 0; i < n->attr.ndata; i++)
        if (n->attr.data[i] != v) return false;
    return true;
}

/* The value of n is never below zero (NaN allowed: exp(log NaN) is NaN too). Looks
 * a few nodes deep. */
static bool never_negative(const ed_node *n, int depth)
{
    if (depth > 4) return false;
    if (ed_ops[n->op].flags & F_NONNEG) return true;
    switch (n->op) {
    case ED_OP_CONST:
        for (int64_t i = 0; i < n->attr.ndata; i++)
            if (n->attr.data[i] < 0) return false;
        return true;
    case ED_OP_ADD: case ED_OP_MUL: case ED_OP_DIV: case ED_OP_MAXIMUM: case ED_OP_MINIMUM:
        return never_negative(n->in[0], depth + 1) && never_negative(n->in[1], depth + 1);
    case ED_OP_SUM: case ED_OP_MEAN: case ED_OP_MAX: case ED_OP_MIN: case ED_OP_RESHAPE: case ED_OP_TRANSPOSE:
    case ED_OP_BROADCAST_TO: case ED_OP_SLICE:
        return never_negative(n->in[0], depth + 1);
    default:
        return false;
    }
}

/* Identity element rules: the other operand, when it has the result's type. */
static ed_node *identity_operand(ed_node *x)
{
    ed_node *a = x->in[0], *b = x->nin > 1 ? x->in[1] : NULL;
    ed_node *keep = NULL;
    switch (x->op) {
    case ED_OP_ADD:
        if (is_const_value(b, 0)) keep = a;
        else if (is_const_value(a, 0)) keep = b;
        break;
    case ED_OP_MUL:
        if (is_const_value(b, 1)) keep = a;
        else if (is_const_value(a, 1)) keep = b;
        break;
    case ED_OP_SUB:
        if (is_const_value(b, 0)) keep = a;
        break;
    case ED_OP_DIV: case ED_OP_POW:
        if (is_const_value(b, 1)) keep = a;
        break;
    default:
        break;
    }
    return keep && same_type(keep, x) ? keep : NULL;
}

static bool is_identity_perm(const int *perm, int rank)
{
    for (int i = 0; i < rank; i++)
        if (perm[i] != i) return false;
    return true;
}

/* A transpose that swaps the last two axes and keeps the others. */
static bool swaps_last_two(const ed_node *t)
{
    int r = t->shape.rank;
    if (t->op != ED_OP_TRANSPOSE || r < 2) return false;
    for (int i = 0; i < r - 2; i++)
        if (t->attr.perm[i] != i) return false;
    return t->attr.perm[r - 2] == r - 1 && t->attr.perm[r - 1] == r - 2;
}

/* x's op on new inputs or attributes, if that has x's type (checked first, so a
 * rule can never leave an error on the graph). */
static ed_node *rebuild(ed_node *x, ed_node *const *in, const ed_attrs *a)
{
    ed_dtype dt;
    ed_shape s;
    char msg[256];
    if (!ed_infer(x->op, in, x->nin, a, &dt, &s, msg, sizeof msg) || dt != x->dtype || !ed_shape_eq(s, x->shape))
        return NULL;
    ed_node *y = ed_node_new(x->graph, x->op, in, x->nin, a);
    if (y && x->name) ed_set_name(y, x->name);
    return y;
}

/* The axes of x (bit i = axis i of x) that a reduction over `axes` of reshape(x ->
 * to) reduces, or 0 when it cannot be said in x's axes. Both shapes split into the
 * smallest runs of axes with equal products (size-1 axes outside a run belong to
 * none); a run of `to` must be reduced whole or kept whole, and then the same run of
 * x is. A run that is both merged and split ([B, T*D] -> [B*T, D]) is one run, so
 * reducing B*T alone is refused. */
static uint32_t axes_before_reshape(ed_shape from, ed_shape to, uint32_t axes)
{
    if (ed_shape_numel(from) <= 0) return 0;
    uint32_t mapped = 0;
    int i = 0, j = 0;
    for (;;) {
        while (i < from.rank && from.dim[i] == 1) i++;
        while (j < to.rank && to.dim[j] == 1) j++;
        if (i == from.rank || j == to.rank) break;
        int i0 = i, j0 = j;
        int64_t pi = from.dim[i++], pj = to.dim[j++];
        while (pi != pj) {
            if (pi < pj && i < from.rank) pi *= from.dim[i++];
            else if (pj < pi && j < to.rank) pj *= to.dim[j++];
            else return 0; /* cannot happen with equal element counts */
        }
        int reduced = 0, kept = 0;
        for (int k = j0; k < j; k++)
            if (to.dim[k] > 1) {
                if (axes >> k & 1) reduced++;
                else kept++;
            }
        if (reduced && kept) return 0;
        for (int k = i0; k < i && reduced; k++) mapped |= 1u << k;
    }
    return mapped;
}

/* sum/mean/max/min of a reshape that only regroups axes, as the reduction of the
 * reshape's operand (and a reshape to x's shape when the kept axes differ). Not when
 * the reshaped value is also read elementwise (shared): then the reduction and those
 * readers share a layout and fuse into one kernel (softmax or x - mean over a
 * flattened view), and reading the other layout would split them. */
static ed_node *reduce_through_reshape(ed_node *x, bool shared)
{
    ed_node *r = x->in[0];
    if (r->op != ED_OP_RESHAPE || shared) return NULL;
    ed_node *src = r->in[0];
    uint32_t axes = axes_before_reshape(src->shape, r->shape, x->attr.axes);
    if (!axes) return NULL;
    /* reducing size-1 axes too moves nothing, and may spare the reshape after */
    ed_attrs a = {.axes = axes, .keepdims = false};
    for (int i = 0; i < src->shape.rank; i++)
        if (src->shape.dim[i] == 1) a.axes |= 1u << i;
    ed_dtype dt;
    ed_shape s;
    char msg[256];
    if (!ed_infer(x->op, &src, 1, &a, &dt, &s, msg, sizeof msg) || !ed_shape_eq(s, x->shape)) a.axes = axes;
    if (!ed_infer(x->op, &src, 1, &a, &dt, &s, msg, sizeof msg) || dt != x->dtype ||
        ed_shape_numel(s) != ed_shape_numel(x->shape))
        return NULL;
    ed_node *y = ed_node_new(x->graph, x->op, &src, 1, &a);
    if (y && !ed_shape_eq(s, x->shape))
        y = ed_node_new(x->graph, ED_OP_RESHAPE, &y, 1, &(ed_attrs){.dtype = x->dtype, .shape = x->shape});
    if (y && x->name) ed_set_name(y, x->name);
    return y;
}

/* One rewrite of x, or NULL when no rule applies. A new node may be returned; the
 * caller tries again on it. operand_shared: x's first operand has elementwise readers
 * (true when unknown). */
static ed_node *simplify_once(ed_node *x, bool operand_shared)
{
    ed_node *in0 = x->nin > 0 ? x->in[0] : NULL;
    ed_node *r = identity_operand(x);
    if (r) return r;
    if (ed_ops[x->op].flags & F_FUSABLE_RED) return reduce_through_reshape(x, operand_shared);
    switch (x->op) {
    case ED_OP_NEG:
        if (in0->op == ED_OP_NEG) return in0->in[0];
        break;
    case ED_OP_LOG:
        if (in0->op == ED_OP_EXP) return in0->in[0];
        break;
    case ED_OP_EXP:
        if (in0->op == ED_OP_LOG && never_negative(in0->in[0], 0)) return in0->in[0];
        break;
    case ED_OP_RESHAPE: case ED_OP_BROADCAST_TO: case ED_OP_CAST:
        if (same_type(in0, x)) return in0;
        if (x->op == ED_OP_RESHAPE && in0->op == ED_OP_RESHAPE) return rebuild(x, in0->in, &x->attr);
        break;
    case ED_OP_TRANSPOSE: {
        int rank = x->shape.rank;
        if (is_identity_perm(x->attr.perm, rank)) return in0;
        if (in0->op != ED_OP_TRANSPOSE) break;
        /* output axis i is in0's axis perm[i], which is the source's axis inner[perm[i]] */
        ed_attrs a = x->attr;
        for (int i = 0; i < rank; i++) a.perm[i] = in0->attr.perm[x->attr.perm[i]];
        if (is_identity_perm(a.perm, rank)) return in0->in[0];
        return rebuild(x, in0->in, &a);
    }
    case ED_OP_MATMUL:
        if (swaps_last_two(x->in[0]) || swaps_last_two(x->in[1])) {
            ed_attrs a = x->attr;
            ed_node *in[2] = {x->in[0], x->in[1]};
            for (int k = 0; k < 2; k++) {
                if (!swaps_last_two(in[k])) continue;
                in[k] = in[k]->in[0];
                if (k == 0) a.ta = !a.ta;
                else a.tb = !a.tb;
            }
            return rebuild(x, in, &a);
        }
        break;
    default:
        break;
    }
    /* an elementwise op reading a broadcast it would do itself */
    if (ed_ops[x->op].kind == ED_KIND_ELEM && x->nin >= 2) {
        ed_node *in[3];
        bool any = false;
        for (int k = 0; k < x->nin; k++) {
            in[k] = x->in[k];
            if (in[k]->op == ED_OP_BROADCAST_TO) in[k] = in[k]->in[0], any = true;
        }
        if (!any) return NULL;
        /* Take back the broadcasts one at a time until the result keeps its type. */
        for (int k = 0; k < x->nin; k++) {
            ed_node *keep = in[k];
            ed_dtype dt;
            ed_shape s;
            char msg[256];
            if (keep == x->in[k]) continue;
            if (!ed_infer(x->op, in, x->nin, &x->attr, &dt, &s, msg, sizeof msg) || dt != x->dtype ||
                !ed_shape_eq(s, x->shape))
                in[k] = x->in[k];
        }
        bool changed = false;
        for (int k = 0; k < x->nin; k++) changed |= in[k] != x->in[k];
        if (changed) return rebuild(x, in, &x->attr);
    }
    return NULL;
}

int ed_pass_simplify(ed_graph *g, ed_pass_stats *st)
{
    int n = g->nnodes;
    ed_node **order = ed_graph_topo(g);
    ed_node **canon = calloc((size_t)n + 1, sizeof *canon);
    bool *read_elementwise = calloc((size_t)n + 1, sizeof *read_elementwise);
    if (!order || !canon || !read_elementwise) {
        free(order), free(canon), free(read_elementwise);
        return ed_fail("simplify: out of memory");
    }
    for (int i = 0; i < n; i++) {
        const ed_node *y = g->nodes[i];
        if (ed_ops[y->op].kind == ED_KIND_ELEM || y->op == ED_OP_BROADCAST_TO)
            for (int k = 0; k < y->nin; k++) read_elementwise[y->in[k]->id] = true;
    }
    for (int i = 0; i < n; i++) {
        ed_node *x = order[i];
        bool operand_shared = x->nin > 0 && read_elementwise[x->in[0]->id];
        for (int k = 0; k < x->nin; k++) x->in[k] = canon[x->in[k]->id];
        /* what replaced the operand may have elementwise readers of its own */
        if (x->nin > 0 && x->in[0]->id < n) operand_shared |= read_elementwise[x->in[0]->id];
        canon[x->id] = x;
        ed_node *cur = x;
        /* Every rule reads an input; a rewrite may give a leaf or a new node to try again. */
        for (int round = 0; round < 8 && cur->nin > 0 && ed_pass_op_is_known(cur->op); round++) {
            ed_node *r = simplify_once(cur, round > 0 || operand_shared);
            if (!r || r == cur) break;
            if (!same_type(r, x)) break; /* never: every rule keeps the type */
            cur = r;
            st->rewrites++;
        }
        canon[x->id] = cur;
    }
    for (int i = 0; i < g->noutputs; i++) g->outputs[i].node = canon[g->outputs[i].node->id];
    for (int i = 0; i < g->nupdates; i++) g->updates[i].node = canon[g->updates[i].node->id];
    free(order), free(canon), free(read_elementwise);
    return ed_graph_error(g) ? ed_fail("simplify: %s", ed_graph_error(g)) : ED_OK;
}
