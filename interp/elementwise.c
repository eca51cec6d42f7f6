/* Elementwise ops with numpy broadcasting: one loop over the output in C order, each
 * input read through its broadcast strides. The value of every element comes from
 * ed_scalar_eval (ir/scalar.c), so the interpreter, constant folding and fused kernels
 * share one definition of each op. */
#include "interp/iter.h"
#include "interp/kernels.h"

#include <assert.h>

ED_KERNEL(ed_k_elementwise)
{
    (void)ctx;
    int nin = n->nin;
    assert(nin >= 1 && nin <= 3);
    int64_t total = ed_shape_numel(out->shape);
    ed_iter it;
    ed_iter_init(&it, out->shape, nin);
    for (int k = 0; k < nin; k++) ed_iter_bcast_strides(it.stride[k], in[k]->shape, out->shape);
    double x[3];
    for (int64_t i = 0; i < total; i++, ed_iter_next(&it)) {
        for (int k = 0; k < nin; k++) x[k] = interp_get(in[k], it.off[k]);
        interp_set(out, i, ed_scalar_eval(n->op, x, &n->attr, n->dtype));
    }
}
