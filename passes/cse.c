/* cse: hash-consing. Two nodes are the same value when they have the same op, type,
 * inputs (in either order for a commutative binary op) and schema attributes; the
 * later one is replaced by the earlier. Random ops merge only with the same stream
 * (their values are a function of seed, call and stream), constants only with
 * bitwise-equal data. Inputs, params and state, and ops passes do not know, are
 * never merged. */
#include "passes/pass.h"
#include "runtime/error.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static bool mergeable(const ed_node *n) { return ed_pass_op_is_known(n->op) && !(ed_ops[n->op].attrs & A_NAME); }

static bool swapped_inputs(const ed_node *n)
{
    return (ed_ops[n->op].flags & F_COMM) && n->nin == 2 && n->in[0]->id > n->in[1]->id;
}

static uint64_t mix(uint64_t h, uint64_t v) { return (h ^ v) * 0x100000001b3ULL; }

static uint64_t hash_node(const ed_node *n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    h = mix(h, (uint64_t)n->op);
    h = mix(h, (uint64_t)n->dtype);
    for (int d = 0; d < n->shape.rank; d++) h = mix(h, (uint64_t)n->shape.dim[d]);
    bool sw = swapped_inputs(n);
    for (int k = 0; k < n->nin; k++) h = mix(h, (uint64_t)n->in[sw ? n->nin - 1 - k : k]->id);
    if (n->op == ED_OP_CONST && n->attr.ndata > 0) {
        uint64_t bits;
        memcpy(&bits, &n->attr.data[0], sizeof bits);
        h = mix(h, bits ^ (uint64_t)n->attr.ndata);
    }
    return h;
}

static bool same_double(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

static bool same_i64s(const int64_t *a, const int64_t *b, int n)
{
    return !n || memcmp(a, b, (size_t)n * sizeof *a) == 0;
}

/* The attributes of the op's schema (A_NAME and A_INIT belong to leaves never merged). */
static bool same_attrs(const ed_node *a, const ed_node *b)
{
    unsigned s = ed_ops[a->op].attrs;
    const ed_attrs *x = &a->attr, *y = &b->attr;
    int r = a->nin ? a->in[0]->shape.rank : 0; /* per-axis attributes cover the input's axes */
    if (s & A_DATA) {
        if (x->ndata != y->ndata) return false;
        for (int64_t i = 0; i < x->ndata; i++)
            if (!same_double(x->data[i], y->data[i])) return false;
    }
    if ((s & A_AXES) && (x->axes != y->axes || x->keepdims != y->keepdims)) return false;
    if ((s & A_AXIS) && x->axis != y->axis) return false;
    if (s & A_PERM)
        for (int d = 0; d < r; d++)
            if (x->perm[d] != y->perm[d]) return false;
    if ((s & A_SLICE) &&
        !(same_i64s(x->start, y->start, r) && same_i64s(x->stop, y->stop, r) && same_i64s(x->step, y->step, r)))
        return false;
    if ((s & A_PAD) && !(same_i64s(x->pad_lo, y->pad_lo, r) && same_i64s(x->pad_hi, y->pad_hi, r) &&
                         same_double(x->pad_value, y->pad_value)))
        return false;
    if ((s & A_ALPHA) && !same_double(x->alpha, y->alpha)) return false;
    if ((s & A_APPROX) && x->approx != y->approx) return false;
    if ((s & A_RANGE) && !(same_double(x->lo, y->lo) && same_double(x->hi, y->hi))) return false;
    if ((s & A_PROB) && !same_double(x->p, y->p)) return false;
    if ((s & A_STREAM) && x->stream != y->stream) return false;
    if ((s & A_TRANS) && (x->ta != y->ta || x->tb != y->tb)) return false;
    if ((s & A_CONV) && !(same_i64s(x->stride, y->stride, 2) && same_i64s(x->padding, y->padding, 2) &&
                          same_i64s(x->dilation, y->dilation, 2) && x->groups == y->groups))
        return false;
    if ((s & A_OUTPAD) && !same_i64s(x->out_pad, y->out_pad, 2)) return false;
    if ((s & A_KERNEL) && !same_i64s(x->kernel, y->kernel, 2)) return false;
    return true;
}

static bool same_node(const ed_node *a, const ed_node *b)
{
    if (a->op != b->op || a->dtype != b->dtype || !ed_shape_eq(a->shape, b->shape) || a->nin != b->nin) return false;
    bool sa = swapped_inputs(a), sb = swapped_inputs(b);
    for (int k = 0; k < a->nin; k++)
        if (a->in[sa ? a->nin - 1 - k : k] != b->in[sb ? b->nin - 1 - k : k]) return false;
    return same_attrs(a, b);
}

int ed_pass_cse(ed_graph *g, ed_pass_stats *st)
{
    int n = g->nnodes;
    size_t cap = 16;
    while (cap < 2 * (size_t)n) cap *= 2;
    ed_node **order = ed_graph_topo(g);
    ed_node **table = calloc(cap, sizeof *table);
    ed_node **canon = calloc((size_t)n + 1, sizeof *canon);
    if (!order || !table || !canon) {
        free(order), free(table), free(canon);
        return ed_fail("cse: out of memory");
    }
    for (int i = 0; i < n; i++) {
        ed_node *x = order[i];
        for (int k = 0; k < x->nin; k++) x->in[k] = canon[x->in[k]->id];
        canon[x->id] = x;
        if (!mergeable(x)) continue;
        size_t slot = (size_t)hash_node(x) & (cap - 1);
        while (table[slot] && !same_node(table[slot], x)) slot = (slot + 1) & (cap - 1);
        if (table[slot]) {
            canon[x->id] = table[slot];
            st->rewrites++;
        } else {
            table[slot] = x;
        }
    }
    for (int i = 0; i < g->noutputs; i++) g->outputs[i].node = canon[g->outputs[i].node->id];
    for (int i = 0; i < g->nupdates; i++) g->updates[i].node = canon[g->updates[i].node->id];
    free(order), free(table), free(canon);
    return ED_OK;
}
