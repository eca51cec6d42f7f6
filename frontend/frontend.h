/* C constructors: one per op, plus the nn building blocks (frontend/nn.c).
 *
 * Leaves take the graph; everything else takes nodes and finds the graph from them.
 * Binary ops broadcast like numpy. On bad shapes or dtypes a constructor records the
 * first error on the graph (ed_graph_error) and returns NULL; a NULL input gives NULL,
 * so a whole model can be built and checked once at the end. */
#ifndef ED_FRONTEND_H
#define ED_FRONTEND_H

#include "ir/ir.h"

/* ---- leaves ---------------------------------------------------------------- */

ed_node *ed_input(ed_graph *g, const char *name, ed_dtype dt, ed_shape shape);
ed_node *ed_param(ed_graph *g, const char *name, ed_dtype dt, ed_shape shape, ed_init init);
ed_node *ed_state(ed_graph *g, const char *name, ed_dtype dt, ed_shape shape, ed_init init);
/* n values in C order, or n == 1 to fill the whole shape. */
ed_node *ed_const(ed_graph *g, ed_dtype dt, ed_shape shape, const double *values, int64_t n);
ed_node *ed_fill(ed_graph *g, ed_dtype dt, ed_shape shape, double value);
ed_node *ed_scalar(ed_graph *g, ed_dtype dt, double value);
/* A scalar const with x's dtype. */
ed_node *ed_scalar_like(const ed_node *x, double value);

/* ---- elementwise ------------------------------------------------------------- */

ed_node *ed_add(ed_node *a, ed_node *b);
ed_node *ed_sub(ed_node *a, ed_node *b);
ed_node *ed_mul(ed_node *a, ed_node *b);
ed_node *ed_div(ed_node *a, ed_node *b);
ed_node *ed_pow(ed_node *a, ed_node *b);
ed_node *ed_maximum(ed_node *a, ed_node *b);
ed_node *ed_minimum(ed_node *a, ed_node *b);
ed_node *ed_lt(ed_node *a, ed_node *b);
ed_node *ed_le(ed_node *a, ed_node *b);
ed_node *ed_gt(ed_node *a, ed_node *b);
ed_node *ed_ge(ed_node *a, ed_node *b);
ed_node *ed_eq(ed_node *a, ed_node *b);
ed_node *ed_where(ed_node *cond, ed_node *a, ed_node *b);
ed_node *ed_add_scalar(ed_node *x, double v);
ed_node *ed_mul_scalar(ed_node *x, double v);

ed_node *ed_neg(ed_node *x);
ed_node *ed_abs(ed_node *x);
ed_node *ed_exp(ed_node *x);
/* exp(x) - 1, accurate for small x. */
ed_node *ed_expm1(ed_node *x);
ed_node *ed_log(ed_node *x);
/* log(1 + x), accurate for small x. */
ed_node *ed_log1p(ed_node *x);
ed_node *ed_sqrt(ed_node *x);
ed_node *ed_rsqrt(ed_node *x);
ed_node *ed_square(ed_node *x);
ed_node *ed_tanh(ed_node *x);
ed_node *ed_sigmoid(ed_node *x);
ed_node *ed_relu(ed_node *x);
ed_node *ed_leaky_relu(ed_node *x, double alpha);
ed_node *ed_gelu(ed_node *x, bool tanh_approx);
ed_node *ed_erf(ed_node *x);
ed_node *ed_silu(ed_node *x);
ed_node *ed_softplus(ed_node *x);
ed_node *ed_sin(ed_node *x);
ed_node *ed_cos(ed_node *x);
ed_node *ed_sign(ed_node *x);
ed_node *ed_clamp(ed_node *x, double lo, double hi);
/* Pixels in [0, 1] to the [-1, 1] scale of a diffusion prior (2x - 1), and back, clamped to
 * [0, 1]: the one place the image models take the scale from. */
ed_node *ed_pixels_to_signed(ed_node *x);
ed_node *ed_signed_to_pixels(ed_node *x);
ed_node *ed_cast(ed_node *x, ed_dtype dt);
ed_node *ed_stop_gradient(ed_node *x);
/* x summed (mean: averaged) over the ranks of a data-parallel run (runtime/comm.h);
 * the identity with one rank. */
ed_node *ed_allreduce(ed_node *x, bool mean);
/* One kernel for an elementwise expression over in[0..nin): body is a graph of
 * elementwise ops, broadcast_to, splat consts and at most one sum, mean, max or min
 * (its operand accumulated per group, then an epilogue or a row; ir.h, "fused
 * expressions") whose input leaves, in id order, have
 * the types of in[], and whose one `out` is the result (ir.h, "fused expressions").
 * in[0]'s graph takes body over (unless the inputs are NULL or body already belongs
 * to a graph, which is an error). The fuse pass makes these after
 * autodiff; ed_grad refuses them. */
ed_node *ed_fused(ed_node *const *in, int nin, ed_graph *body);

/* ---- reductions: axes is a bit mask (bit i = axis i) ------------------------- */

#define ED_ALL_AXES 0x3Fu
/* The mask bit of one axis; negative axes count from the end as in numpy. */
unsigned ed_axis_bit(const ed_node *x, int axis);

ed_node *ed_sum(ed_node *x, unsigned axes, bool keepdims);
ed_node *ed_mean(ed_node *x, unsigned axes, bool keepdims);
ed_node *ed_max(ed_node *x, unsigned axes, bool keepdims);
ed_node *ed_min(ed_node *x, unsigned axes, bool keepdims);
/* Index of the first extreme element, flattened over the reduced axes in C order. */
ed_node *ed_argmax(ed_node *x, unsigned axes, bool keepdims);
ed_node *ed_argmin(ed_node *x, unsigned axes, bool keepdims);

/* ---- movement ------------------------------------------------------------------ */

/* One dim may be -1: inferred from the element count. */
ed_node *ed_reshape(ed_node *x, ed_shape shape);
/* perm[i] is the input axis that becomes output axis i; NULL reverses the axes. */
ed_node *ed_transpose(ed_node *x, const int *perm);
/* Swap the last two axes. */
ed_node *ed_transpose_last2(ed_node *x);
ed_node *ed_broadcast_to(ed_node *x, ed_shape shape);
/* Per axis, Python-style: negative start/stop count from the end and are clipped;
 * step >= 1 (NULL steps: all 1). */
ed_node *ed_slice(ed_node *x, const int64_t *start, const int64_t *stop, const int64_t *step);
/* x[..., start:stop, ...] on one axis. */
ed_node *ed_slice_axis(ed_node *x, int axis, int64_t start, int64_t stop);
ed_node *ed_concat(ed_node *const *xs, int n, int axis);
ed_node *ed_pad(ed_node *x, const int64_t *lo, const int64_t *hi, double value);

/* ---- indexing ------------------------------------------------------------------ */

/* numpy take(x, idx, axis): out-of-range indices are clamped (documented choice). */
ed_node *ed_gather(ed_node *x, ed_node *idx, int axis);
/* idx.shape + [depth]; out-of-range indices give an all-zero row. */
ed_node *ed_one_hot(ed_node *idx, int64_t depth, ed_dtype dt);
/* base with updates added at idx along axis; out-of-range indices are dropped. */
ed_node *ed_scatter_add(ed_node *base, ed_node *idx, ed_node *updates, int axis);

/* ---- matmul -------------------------------------------------------------------- */

ed_node *ed_matmul(ed_node *a, ed_node *b);
ed_node *ed_matmul_t(ed_node *a, ed_node *b, bool transpose_a, bool transpose_b);

/* ---- convolutions (NCHW; ir/conv.h states the rule) ---------------------------- */

/* Per spatial axis (h, w). The zero value of a field is its default: stride 1, padding
 * 0, dilation 1, groups 1, output_padding 0 (conv_transpose2d only). NULL: all defaults. */
typedef struct {
    int64_t stride[2], padding[2], dilation[2];
    int64_t groups;
    int64_t output_padding[2];
} ed_conv_opts;

/* x [N,C,H,W], w [O,C/groups,KH,KW] -> [N,O,OH,OW], OH = (H + 2 ph - dh (KH-1) - 1) / sh + 1. */
ed_node *ed_conv2d(ed_node *x, ed_node *w, const ed_conv_opts *o);
/* The adjoint of conv2d in x (its input gradient), PyTorch's conv_transpose2d: y [N,O,H,W],
 * w [O,C/groups,KH,KW] -> [N,C,(H-1) sh - 2 ph + dh (KH-1) + 1 + output_padding, ...]. */
ed_node *ed_conv_transpose2d(ed_node *y, ed_node *w, const ed_conv_opts *o);
/* The adjoint of conv2d in w (its weight gradient): x [N,C,H,W], dy [N,O,OH,OW] ->
 * [O,C/groups,kh,kw]. */
ed_node *ed_conv2d_weight_grad(ed_node *x, ed_node *dy, int64_t kh, int64_t kw, const ed_conv_opts *o);
/* Average over kh x kw windows of x [N,C,H,W] (stride, padding: stride and padding of
 * o, NULL: stride = kernel, no padding), zeros in the padding counted: every window
 * divides by kh kw (PyTorch's count_include_pad=True). A conv2d with a ones kernel per
 * channel, then the division. */
ed_node *ed_avg_pool2d(ed_node *x, int64_t kh, int64_t kw, const ed_conv_opts *o);
/* Nearest-neighbour upsampling of x [N,C,H,W] by whole factors: [N,C,H sh,W sw], each
 * pixel repeated (a reshape, broadcast_to and reshape, so it fuses into its reader). */
ed_node *ed_upsample_nearest2d(ed_node *x, int64_t sh, int64_t sw);

/* ---- random (Philox streams; a new stream per node) ----------------------------- */

ed_node *ed_rand(ed_graph *g, ed_dtype dt, ed_shape shape, double lo, double hi);
ed_node *ed_randn(ed_graph *g, ed_dtype dt, ed_shape shape);
ed_node *ed_randint(ed_graph *g, ed_shape shape, int64_t lo, int64_t hi);
ed_node *ed_bernoulli(ed_graph *g, ed_dtype dt, ed_shape shape, double p);

#endif
