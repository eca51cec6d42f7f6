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
 *
 * Two of these can change a value at the edge of floating point: x + 0 turns a -0
 * input into +0 in the original but not after (only 1/x and sign-sensitive code can
 * tell), and log(exp x) is x even where exp(x) overflows to inf or underflows to 0 in
 * the original. Both are the usual compiler choices; everything else is exact. */
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
    switch (n->op) {
    case ED_OP_EXP: case ED_OP_SQRT: case ED_OP_RSQRT: case ED_OP_SQUARE: case ED_OP_ABS: case ED_OP_RELU:
    case ED_OP_SIGMOID: case ED_OP_SOFTPLUS:
        return true;
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

/* One rewrite of x, or NULL when no rule applies. A new node may be returned; the
 * caller tries again on it. */
static ed_node *simplify_once(ed_node *x)
{
    ed_node *in0 = x->nin > 0 ? x->in[0] : NULL;
    ed_node *r = identity_operand(x);
    if (r) return r;
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
    if (!order || !canon) {
        free(order), free(canon);
        return ed_fail("simplify: out of memory");
    }
    for (int i = 0; i < n; i++) {
        ed_node *x = order[i];
        for (int k = 0; k < x->nin; k++) x->in[k] = canon[x->in[k]->id];
        canon[x->id] = x;
        ed_node *cur = x;
        /* Every rule reads an input; a rewrite may give a leaf or a new node to try again. */
        for (int round = 0; round < 8 && cur->nin > 0 && ed_pass_op_is_known(cur->op); round++) {
            ed_node *r = simplify_once(cur);
            if (!r || r == cur) break;
            if (!same_type(r, x)) break; /* never: every rule keeps the type */
            cur = r;
            st->rewrites++;
        }
        canon[x->id] = cur;
    }
    for (int i = 0; i < g->noutputs; i++) g->outputs[i].node = canon[g->outputs[i].node->id];
    for (int i = 0; i < g->nupdates; i++) g->updates[i].node = canon[g->updates[i].node->id];
    free(order), free(canon);
    return ed_graph_error(g) ? ed_fail("simplify: %s", ed_graph_error(g)) : ED_OK;
}
