/* The interpreter's kernel table (indexed by ed_op) and the entry point that dispatches
 * one node. Elementwise ops need no entry: they all run ed_k_elementwise. */
#include "interp/kernels.h"

#include <assert.h>

static const ed_interp_kernel kernels[ED_OP_COUNT] = {
    [ED_OP_INPUT] = ed_k_bound_leaf,
    [ED_OP_PARAM] = ed_k_bound_leaf,
    [ED_OP_STATE] = ed_k_bound_leaf,
    [ED_OP_CONST] = ed_k_const,
    [ED_OP_SUM] = ed_k_sum_mean,
    [ED_OP_MEAN] = ed_k_sum_mean,
    [ED_OP_MAX] = ed_k_max_min,
    [ED_OP_MIN] = ed_k_max_min,
    [ED_OP_ARGMAX] = ed_k_argmax_argmin,
    [ED_OP_ARGMIN] = ed_k_argmax_argmin,
    [ED_OP_RESHAPE] = ed_k_reshape,
    [ED_OP_TRANSPOSE] = ed_k_transpose,
    [ED_OP_BROADCAST_TO] = ed_k_broadcast_to,
    [ED_OP_SLICE] = ed_k_slice,
    [ED_OP_CONCAT] = ed_k_concat,
    [ED_OP_PAD] = ed_k_pad,
    [ED_OP_GATHER] = ed_k_gather,
    [ED_OP_ONE_HOT] = ed_k_one_hot,
    [ED_OP_SCATTER_ADD] = ed_k_scatter_add,
    [ED_OP_MATMUL] = ed_k_matmul,
    [ED_OP_CONV2D] = ed_k_conv2d,
    [ED_OP_CONV_TRANSPOSE2D] = ed_k_conv_transpose2d,
    [ED_OP_CONV2D_WEIGHT_GRAD] = ed_k_conv2d_weight_grad,
    [ED_OP_RAND] = ed_k_rand,
    [ED_OP_RANDN] = ed_k_randn,
    [ED_OP_RANDINT] = ed_k_randint,
    [ED_OP_BERNOULLI] = ed_k_bernoulli,
    [ED_OP_ALLREDUCE_SUM] = ed_k_allreduce,
    [ED_OP_ALLREDUCE_MEAN] = ed_k_allreduce,
    [ED_OP_LOOP] = ed_k_loop,
    [ED_OP_GET] = ed_k_get,
    [ED_OP_FUSED] = ed_k_fused,
};

static ed_interp_kernel kernel_of(ed_op op)
{
    if ((unsigned)op >= ED_OP_COUNT) return NULL;
    if (ed_ops[op].kind == ED_KIND_ELEM) return ed_k_elementwise;
    return kernels[op];
}

bool ed_interp_has_kernel(ed_op op) { return kernel_of(op) != NULL; }

bool ed_interp_is_bound_leaf(ed_op op) { return op == ED_OP_INPUT || op == ED_OP_PARAM || op == ED_OP_STATE; }

void ed_interp_eval(const ed_node *n, const ed_tensor *const *in, ed_tensor *out, const ed_interp_ctx *ctx)
{
    /* ed_compile checks every op of the graph has a kernel before anything runs. */
    assert(ed_interp_has_kernel(n->op));
    assert(out->dtype == n->dtype && ed_shape_eq(out->shape, n->shape));
    kernel_of(n->op)(n, in, out, ctx);
}
