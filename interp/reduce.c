/* Reductions over any set of axes. The input's axes split into kept ones (the outer
 * loop, which meets output elements in C order, with or without keepdims since size-1
 * axes do not move memory) and reduced ones (the inner loop, which meets a group's
 * elements in C order, so a counter there is the flattened index argmax reports). */
#include "interp/iter.h"
#include "interp/kernels.h"

#include <math.h>

typedef struct {
    ed_iter outer, inner; /* operand 0: offset into the input */
    int64_t nout, ngroup;
} groups;

static void split_axes(const ed_tensor *x, uint32_t axes, groups *g)
{
    int64_t xs[ED_MAX_RANK];
    ed_shape_strides(x->shape, xs);
    ed_shape kept = {0}, red = {0};
    int64_t kst[ED_MAX_RANK], rst[ED_MAX_RANK];
    for (int a = 0; a < x->shape.rank; a++) {
        if (axes >> a & 1) {
            rst[red.rank] = xs[a];
            red.dim[red.rank++] = x->shape.dim[a];
        } else {
            kst[kept.rank] = xs[a];
            kept.dim[kept.rank++] = x->shape.dim[a];
        }
    }
    ed_iter_init(&g->outer, kept, 1);
    ed_iter_init(&g->inner, red, 1);
    for (int a = 0; a < kept.rank; a++) g->outer.stride[0][a] = kst[a];
    for (int a = 0; a < red.rank; a++) g->inner.stride[0][a] = rst[a];
    g->nout = ed_shape_numel(kept);
    g->ngroup = ed_shape_numel(red);
}

/* Start the inner loop at the current output element's group. */
static void enter_group(groups *g)
{
    g->inner.base[0] = g->outer.off[0];
    ed_iter_rewind(&g->inner);
}

/* Accumulate in double; mean of an empty group is 0/0 = NaN. */
ED_KERNEL(ed_k_sum_mean)
{
    (void)ctx;
    groups g;
    split_axes(in[0], n->attr.axes, &g);
    for (int64_t o = 0; o < g.nout; o++, ed_iter_next(&g.outer)) {
        enter_group(&g);
        double acc = 0;
        for (int64_t j = 0; j < g.ngroup; j++, ed_iter_next(&g.inner)) acc += interp_get(in[0], g.inner.off[0]);
        interp_set(out, o, n->op == ED_OP_MEAN ? acc / (double)g.ngroup : acc);
    }
}

/* Does v replace best? A NaN wins over numbers and the first NaN stays, as in numpy
 * (the one NaN rule of ir/scalar.c). */
static bool beats(double v, double best, bool want_max)
{
    if (isnan(best)) return false;
    if (isnan(v)) return true;
    return want_max ? v > best : v < best;
}

/* The value (or flat in-group index) of each group's first extreme element. */
static void pick(const ed_node *n, const ed_tensor *x, ed_tensor *out, bool want_max, bool want_index)
{
    groups g;
    split_axes(x, n->attr.axes, &g);
    for (int64_t o = 0; o < g.nout; o++, ed_iter_next(&g.outer)) {
        enter_group(&g);
        double best = NAN; /* an empty group cannot pass the shape rule; NaN if it ever did */
        int64_t at = 0;
        for (int64_t j = 0; j < g.ngroup; j++, ed_iter_next(&g.inner)) {
            double v = interp_get(x, g.inner.off[0]);
            if (j == 0 || beats(v, best, want_max)) {
                best = v;
                at = j;
            }
        }
        interp_set(out, o, want_index ? (double)at : best);
    }
}

ED_KERNEL(ed_k_max_min)
{
    (void)ctx;
    pick(n, in[0], out, n->op == ED_OP_MAX, false);
}

ED_KERNEL(ed_k_argmax_argmin)
{
    (void)ctx;
    pick(n, in[0], out, n->op == ED_OP_ARGMAX, true);
}
