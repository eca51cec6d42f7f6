/* nn building blocks composed from the op constructors of frontend.h (no ops of their own).
 *
 * Parameters are named by scope: a block given name "fc1" inside the graph's current
 * scope "enc" creates params "enc.fc1.w" and "enc.fc1.b". Blocks push their name while
 * they build, so a shape error raised inside one says where it happened, and the block's
 * result node is given the full scoped name for dumps (unless an inner block already
 * named it more precisely, e.g. an mlp's last layer keeps "enc.1").
 *
 * Errors are sticky like every constructor: a NULL input, a bad argument or an inner
 * failure returns NULL, and ed_graph_error() names the block. Params and constants take
 * x's dtype (f32 or f64). */
#ifndef ED_NN_H
#define ED_NN_H

#include "frontend/frontend.h"

/* ---- for blocks written outside nn.c ------------------------------------------ */

/* Record "what: message (in "scope")" as g's error (without the scope at top level);
 * returns NULL. */
ed_node *ed_nn_fail(ed_graph *g, const char *what, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The param (kind ED_OP_PARAM) or state (ED_OP_STATE) named "<scope>.<leaf>" ("<leaf>" at
 * top level): a block's own weights or statistics. */
ed_node *ed_scoped_leaf(ed_graph *g, ed_op kind, const char *leaf, ed_dtype dt, ed_shape s, ed_init init);

/* ---- activations ------------------------------------------------------------ */

typedef enum {
    ED_ACT_NONE,
    ED_ACT_RELU,
    ED_ACT_SILU,
    ED_ACT_GELU,      /* exact (erf) */
    ED_ACT_GELU_TANH, /* tanh approximation */
    ED_ACT_TANH,
    ED_ACT_SIGMOID,
    ED_ACT_LEAKY_RELU, /* slope 0.01 below zero */
    ED_ACT_SOFTPLUS,
    ED_ACT_COUNT
} ed_activation;

/* ED_ACT_NONE returns x itself. */
ed_node *ed_activate(ed_node *x, ed_activation act);
/* "none", "relu", "silu", "gelu", "gelu_tanh", "tanh", "sigmoid", "leaky_relu",
 * "softplus"; "?" for an out-of-range value. */
const char *ed_activation_name(ed_activation act);
/* The same names in ed_activation order, NULL-terminated: an enum option's value list
 * (the option's index is then the activation itself). */
extern const char *const ed_activation_names[ED_ACT_COUNT + 1];
/* Returns false (no error set) if s names no activation. */
bool ed_activation_parse(const char *s, ed_activation *out);

/* ---- layers with parameters ------------------------------------------------- */

/* x [..., in] (rank >= 2) @ W [in, units] (+ b [units]). W: glorot_uniform (Axon's
 * default), b: zeros. Rank > 2: the leading dims are flattened into one [rows, in]
 * matmul and reshaped back (one sgemm for the forward pass and for each gradient). */
ed_node *ed_dense(ed_node *x, const char *name, int64_t units, bool bias);
/* The dtype and name of a matmul weight on inputs of dtype x: x and base, or, while g builds
 * with 16-bit weights (ed_graph_set_weight_dtype) on f32 inputs, bf16/f16 and "base.bf16" /
 * "base.f16": the copy models/generate.c fills from the f32 param "base". */
ed_dtype ed_matmul_weight_name(const ed_graph *g, ed_dtype x, const char *base, char *name, size_t cap);

/* n dense layers of sizes[0..n) named name.0 .. name.(n-1), each with a bias and followed
 * by act, except the last unless activate_last. */
ed_node *ed_mlp(ed_node *x, const char *name, const int64_t *sizes, int n, ed_activation act, bool activate_last);

/* Normalize over the last axis with its mean and biased variance:
 * (x - mean) / sqrt(var + eps), then * name.g (ones) + name.b (zeros) when affine. */
ed_node *ed_layer_norm(ed_node *x, const char *name, double eps, bool affine);

/* Group normalization of x [N,C,H,W]: the channels in `groups` groups, each (sample, group)
 * normalized by its mean and biased variance over its C/groups*H*W values, then
 * * name.g [C] (ones) + name.b [C] (zeros) per channel when affine (PyTorch's GroupNorm;
 * its default eps 1e-5). A composition of reshapes, reductions and elementwise ops. */
ed_node *ed_group_norm(ed_node *x, const char *name, int64_t groups, double eps, bool affine);

/* Convolution layers on x [N,C,H,W] with a square k x k kernel (o: stride, padding,
 * dilation, groups; NULL: defaults): name.w [out_ch, C/groups, k, k] for conv2d,
 * [C, out_ch/groups, k, k] for conv_transpose2d (PyTorch's layouts), glorot uniform with
 * PyTorch's fans (fan_in = w dim 1 k^2, fan_out = w dim 0 k^2); name.b [out_ch] zeros,
 * added per channel. */
ed_node *ed_conv2d_layer(ed_node *x, const char *name, int64_t out_ch, int64_t k, const ed_conv_opts *o, bool bias);
ed_node *ed_conv_transpose2d_layer(ed_node *x, const char *name, int64_t out_ch, int64_t k, const ed_conv_opts *o,
                                   bool bias);

/* Multi-head self-attention on x [B, T, D], D divisible by heads: dense q, k, v
 * (name.q, name.k, name.v, with bias), scores q k^T / sqrt(D / heads) per head, future
 * positions masked to -1e9 when causal, softmax over keys, then dense name.o. */
ed_node *ed_self_attention(ed_node *x, const char *name, int heads, bool causal);

/* ---- parameter-free blocks ---------------------------------------------------- */

/* Numerically stable along one axis (negative counts from the end): the max along the
 * axis is subtracted first, under stop_gradient since the result does not depend on it.
 * An all -inf slice gives logsumexp -inf (softmax NaN) rather than inf - inf. */
ed_node *ed_softmax(ed_node *x, int axis);
ed_node *ed_log_softmax(ed_node *x, int axis);
ed_node *ed_logsumexp(ed_node *x, int axis, bool keepdims);

/* Sinusoidal embedding of timesteps t [B] (f32 or f64; i32 is cast to f32) -> [B, dim]:
 * concat(sin(t f), cos(t f)) with f_i = exp(-ln(max_period) i / half), i < half = dim / 2.
 * dim must be even and >= 2, max_period > 0. */
ed_node *ed_timestep_embedding(ed_node *t, int64_t dim, double max_period);

#endif
