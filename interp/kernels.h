/* The interpreter's kernels, grouped by file (one file per kind of op). interp.c puts
 * them in the table indexed by ed_op. */
#ifndef ED_INTERP_KERNELS_H
#define ED_INTERP_KERNELS_H

#include "interp/interp.h"

typedef void (*ed_interp_kernel)(const ed_node *n, const ed_tensor *const *in, ed_tensor *out,
                                 const ed_interp_ctx *ctx);

#define ED_KERNEL(fn) void fn(const ed_node *n, const ed_tensor *const *in, ed_tensor *out, const ed_interp_ctx *ctx)

/* elementwise.c: every ELEM op, through ed_scalar_eval */
ED_KERNEL(ed_k_elementwise);
/* fused.c: a fused expression, per element */
ED_KERNEL(ed_k_fused);

/* reduce.c */
ED_KERNEL(ed_k_sum_mean);
ED_KERNEL(ed_k_max_min);
ED_KERNEL(ed_k_argmax_argmin);

/* movement.c */
ED_KERNEL(ed_k_reshape);
ED_KERNEL(ed_k_transpose);
ED_KERNEL(ed_k_broadcast_to);
ED_KERNEL(ed_k_slice);
ED_KERNEL(ed_k_concat);
ED_KERNEL(ed_k_pad);

/* index.c */
ED_KERNEL(ed_k_gather);
ED_KERNEL(ed_k_scatter_add);
ED_KERNEL(ed_k_one_hot);

/* matmul.c */
ED_KERNEL(ed_k_matmul);

/* conv.c */
ED_KERNEL(ed_k_conv2d);
ED_KERNEL(ed_k_conv_transpose2d);
ED_KERNEL(ed_k_conv2d_weight_grad);

/* leaves.c: constants, bound leaves, random streams */
ED_KERNEL(ed_k_const);
ED_KERNEL(ed_k_bound_leaf);
ED_KERNEL(ed_k_rand);
ED_KERNEL(ed_k_randn);
ED_KERNEL(ed_k_randint);
ED_KERNEL(ed_k_bernoulli);

/* collective.c */
ED_KERNEL(ed_k_allreduce);

/* loop.c */
ED_KERNEL(ed_k_loop);
ED_KERNEL(ed_k_get);

#endif
