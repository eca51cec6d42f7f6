/* The fused kernel: the body's expression evaluated once per result element, in the
 * body's creation order (topological, checked by the shape rule). Every step is
 * ed_scalar_eval rounded to its dtype, as the unfused nodes would store it, so a fused
 * node gives exactly the values of the nodes it replaced.
 *
 * With a reduction in the body (ir.h): per group of the reduction, phase 1 evaluates
 * the reduction's operand per element of the group (in the reduction kernel's order,
 * accumulating as reduce.c does), then phase 2 evaluates the rest once (an epilogue)
 * or per element of the group (a row kernel; its values computed from the reduction,
 * consts and inputs of one value per group alone, ed_fused_group_values, once per group
 * before the elements). */
#include "interp/iter.h"
#include "interp/kernels.h"

#include <assert.h>
#include <math.h>

typedef struct {
    const ed_graph *body;
    const ed_tensor *const *in;
    int input_of[ED_FUSED_MAX_NODES]; /* body input id -> the node's input number */
    double v[ED_FUSED_MAX_NODES];
    double product; /* the producer's value at the element */
} evaluator;

static void eval_init(evaluator *e, const ed_graph *body, const ed_tensor *const *in)
{
    e->body = body;
    e->in = in;
    for (int i = 0, k = 0; i < body->nnodes; i++) e->input_of[i] = body->nodes[i]->op == ED_OP_INPUT ? k++ : -1;
}

/* The nodes with want[] set, inputs read at off[input number]. */
static void eval(evaluator *e, const bool *want, const int64_t *off)
{
    double x[3];
    for (int i = 0; i < e->body->nnodes; i++) {
        if (want && !want[i]) continue;
        const ed_node *b = e->body->nodes[i];
        if (b->op == ED_OP_INPUT) {
            e->v[i] = interp_get(e->in[e->input_of[i]], off[e->input_of[i]]);
        } else if (b->op == ED_OP_CONST) {
            e->v[i] = b->attr.data[0];
        } else if (b->op == ED_OP_BROADCAST_TO) {
            e->v[i] = e->v[b->in[0]->id]; /* read at the phase's index already */
        } else if (ed_fused_producer_op(b->op)) {
            e->v[i] = e->product;
        } else {
            for (int k = 0; k < b->nin; k++) x[k] = e->v[b->in[k]->id];
            e->v[i] = ed_scalar_round(ed_scalar_eval(b->op, x, &b->attr, b->dtype), b->dtype);
        }
    }
}

static void elementwise(const ed_node *n, const ed_tensor *const *in, ed_tensor *out)
{
    const ed_graph *body = n->attr.body;
    evaluator e;
    eval_init(&e, body, in);
    int64_t total = ed_shape_numel(out->shape);
    ed_iter it;
    ed_iter_init(&it, out->shape, n->nin);
    for (int k = 0; k < n->nin; k++) ed_iter_bcast_strides(it.stride[k], in[k]->shape, out->shape);
    for (int64_t i = 0; i < total; i++, ed_iter_next(&it)) {
        eval(&e, NULL, it.off);
        interp_set(out, i, e.v[body->outputs[0].node->id]);
    }
}

/* A producer: the product into out by the matmul or convolution kernel (the unfused
 * node's values), then the rest per element reading the product there (the inputs only
 * it reads are not walked). */
static void with_producer(const ed_node *n, const ed_node *mm, const ed_tensor *const *in, ed_tensor *out,
                          const ed_interp_ctx *ctx)
{
    const ed_graph *body = n->attr.body;
    evaluator e;
    eval_init(&e, body, in);
    const ed_tensor *operands[2] = {in[e.input_of[mm->in[0]->id]], in[e.input_of[mm->in[1]->id]]};
    if (mm->op == ED_OP_MATMUL) ed_k_matmul(mm, operands, out, ctx);
    else if (mm->op == ED_OP_CONV2D) ed_k_conv2d(mm, operands, out, ctx);
    else ed_k_conv_transpose2d(mm, operands, out, ctx);
    bool each[ED_FUSED_MAX_NODES];
    ed_fused_per_element(body, each);
    int64_t total = ed_shape_numel(out->shape);
    ed_iter it;
    ed_iter_init(&it, out->shape, n->nin);
    for (int i = 0; i < body->nnodes; i++) {
        int k = e.input_of[i];
        if (k >= 0 && each[i]) ed_iter_bcast_strides(it.stride[k], in[k]->shape, out->shape);
    }
    for (int64_t i = 0; i < total; i++, ed_iter_next(&it)) {
        e.product = interp_get(out, i);
        eval(&e, each, it.off);
        interp_set(out, i, e.v[body->outputs[0].node->id]);
    }
}

/* As reduce.c's beats: a NaN wins over numbers and the first NaN stays. */
static bool beats(double v, double best, bool want_max)
{
    if (isnan(best)) return false;
    if (isnan(v)) return true;
    return want_max ? v > best : v < best;
}

/* Split the strides st (over D) into those of the kept and the reduced axes. */
static void split(const int64_t *st, uint32_t axes, int rank, int64_t *kept, int64_t *red)
{
    for (int a = 0, nk = 0, nr = 0; a < rank; a++) {
        if (axes >> a & 1) red[nr++] = st[a];
        else kept[nk++] = st[a];
    }
}

static void reduction(const ed_node *n, const ed_tensor *const *in, ed_tensor *out)
{
    const ed_graph *body = n->attr.body;
    const ed_node *r = ed_fused_reduction(body), *y = body->outputs[0].node;
    const ed_shape d = r->in[0]->shape;
    bool p1[ED_FUSED_MAX_NODES], p2[ED_FUSED_MAX_NODES], once[ED_FUSED_MAX_NODES], each[ED_FUSED_MAX_NODES];
    ed_fused_phases(body, p1, p2);
    bool row = ed_fused_row_kernel(n);
    /* a row kernel's values of the group alone (log(s)) once per group, the rest per element */
    ed_fused_group_values(body, once);
    for (int i = 0; i < body->nnodes; i++) {
        once[i] = once[i] && p2[i] && row;
        each[i] = p2[i] && !once[i];
    }
    evaluator e;
    eval_init(&e, body, in);
    /* Operand k < nin: input k broadcast to D; operand nin: the result (row kernels). */
    ed_shape kept = {0}, red = {0};
    for (int a = 0; a < d.rank; a++) {
        if (r->attr.axes >> a & 1) red.dim[red.rank++] = d.dim[a];
        else kept.dim[kept.rank++] = d.dim[a];
    }
    ed_iter outer, inner, epi;
    ed_iter_init(&outer, kept, n->nin + 1);
    ed_iter_init(&inner, red, n->nin + 1);
    ed_iter_init(&epi, out->shape, n->nin); /* epilogue: inputs broadcast to the result */
    for (int k = 0; k <= n->nin; k++) {
        int64_t st[ED_MAX_RANK] = {0};
        if (k < n->nin) ed_iter_bcast_strides(st, in[k]->shape, d);
        else if (row) ed_shape_strides(d, st);
        split(st, r->attr.axes, d.rank, outer.stride[k], inner.stride[k]);
        if (k < n->nin && !row) ed_iter_bcast_strides(epi.stride[k], in[k]->shape, out->shape);
    }
    int64_t nout = ed_shape_numel(kept), ngroup = ed_shape_numel(red);
    bool want_max = r->op == ED_OP_MAX;
    for (int64_t o = 0; o < nout; o++, ed_iter_next(&outer)) {
        for (int k = 0; k <= n->nin; k++) inner.base[k] = outer.off[k];
        ed_iter_rewind(&inner);
        double acc = 0;
        for (int64_t j = 0; j < ngroup; j++, ed_iter_next(&inner)) {
            eval(&e, p1, inner.off);
            double v = e.v[r->in[0]->id];
            if (r->op == ED_OP_SUM || r->op == ED_OP_MEAN) acc += v;
            else if (j == 0 || beats(v, acc, want_max)) acc = v;
        }
        if (r->op == ED_OP_MEAN) acc /= (double)ngroup;
        e.v[r->id] = ed_scalar_round(acc, r->dtype);
        if (!row) {
            eval(&e, p2, epi.off);
            interp_set(out, o, e.v[y->id]);
            ed_iter_next(&epi);
            continue;
        }
        eval(&e, once, outer.off); /* inputs at the group's first element */
        ed_iter_rewind(&inner);
        for (int64_t j = 0; j < ngroup; j++, ed_iter_next(&inner)) {
            eval(&e, each, inner.off);
            interp_set(out, inner.off[n->nin], e.v[y->id]);
        }
    }
}

ED_KERNEL(ed_k_fused)
{
    assert(n->attr.body->nnodes <= ED_FUSED_MAX_NODES && n->nin <= ED_FUSED_MAX_INPUTS);
    const ed_node *mm = ed_fused_producer(n->attr.body);
    if (mm) with_producer(n, mm, in, out, ctx);
    else if (ed_fused_reduction(n->attr.body)) reduction(n, in, out);
    else elementwise(n, in, out);
}
