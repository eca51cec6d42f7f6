/* nn building blocks: compositions of the op constructors, with scoped parameter names. */
#include "frontend/nn.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- errors, scopes and names ------------------------------------------------- */

/* Record "what: message (in "scope")" as the graph's error; returns NULL. */
ed_node *ed_nn_fail(ed_graph *g, const char *what, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *scope = ed_scope(g);
    if (scope[0]) return ed_graph_fail(g, "%s: %s (in \"%s\")", what, msg, scope);
    return ed_graph_fail(g, "%s: %s", what, msg);
}

static bool is_float(const ed_node *x) { return ed_dtype_is_float(x->dtype); }

/* A block name is non-empty dotted parts ("enc.fc1"), none of them empty. */
static bool valid_block_name(const char *name)
{
    if (!name || !name[0]) return false;
    for (const char *p = name; *p; p++)
        if (*p == '.' && (p == name || p[1] == '.' || p[1] == '\0')) return false;
    return true;
}

/* Start a named block on x's graph: false (nothing pushed) on NULL x, an earlier error
 * or a bad name. */
static bool block_enter(ed_node *x, const char *what, const char *name)
{
    if (!x || ed_graph_error(x->graph)) return false;
    if (!valid_block_name(name)) {
        ed_nn_fail(x->graph, what, "bad block name \"%s\" (need non-empty parts separated by single dots)",
                   name ? name : "(null)");
        return false;
    }
    ed_scope_push(x->graph, name);
    return !ed_graph_error(x->graph); /* a failed push pushed nothing */
}

/* Name the block's result after its scope (unless an inner block named it already) and
 * leave the scope, on success and failure alike. */
static ed_node *block_leave(ed_graph *g, ed_node *y)
{
    if (y && !y->name) ed_set_name(y, ed_scope(g));
    ed_scope_pop(g);
    return y;
}

/* "scope.leaf" (or "leaf" at top level), malloc'd; NULL with a graph error on OOM. */
static char *scoped(ed_graph *g, const char *leaf)
{
    const char *scope = ed_scope(g);
    size_t n = strlen(scope) + strlen(leaf) + 2;
    char *s = malloc(n);
    if (!s) {
        ed_graph_fail(g, "out of memory");
        return NULL;
    }
    snprintf(s, n, "%s%s%s", scope, scope[0] ? "." : "", leaf);
    return s;
}

ed_node *ed_scoped_leaf(ed_graph *g, ed_op kind, const char *leaf, ed_dtype dt, ed_shape s, ed_init init)
{
    char *name = scoped(g, leaf);
    ed_node *p = !name ? NULL : kind == ED_OP_PARAM ? ed_param(g, name, dt, s, init) : ed_state(g, name, dt, s, init);
    free(name);
    return p;
}

static ed_node *scoped_param(ed_graph *g, const char *leaf, ed_dtype dt, ed_shape s, ed_init_kind kind)
{
    return ed_scoped_leaf(g, ED_OP_PARAM, leaf, dt, s, (ed_init){.kind = kind});
}

static ed_node *set_scoped_name(ed_node *n, const char *leaf)
{
    if (!n) return NULL;
    char *name = scoped(n->graph, leaf);
    ed_set_name(n, name);
    free(name);
    return n;
}

/* ---- activations ------------------------------------------------------------ */

const char *const ed_activation_names[ED_ACT_COUNT + 1] = {
    [ED_ACT_NONE] = "none",           [ED_ACT_RELU] = "relu",
    [ED_ACT_SILU] = "silu",           [ED_ACT_GELU] = "gelu",
    [ED_ACT_GELU_TANH] = "gelu_tanh", [ED_ACT_TANH] = "tanh",
    [ED_ACT_SIGMOID] = "sigmoid",     [ED_ACT_LEAKY_RELU] = "leaky_relu",
    [ED_ACT_SOFTPLUS] = "softplus",   [ED_ACT_COUNT] = NULL,
};

const char *ed_activation_name(ed_activation act)
{
    return (unsigned)act < ED_ACT_COUNT ? ed_activation_names[act] : "?";
}

bool ed_activation_parse(const char *s, ed_activation *out)
{
    for (int i = 0; s && i < ED_ACT_COUNT; i++) {
        if (strcmp(s, ed_activation_names[i]) == 0) {
            if (out) *out = (ed_activation)i;
            return true;
        }
    }
    return false;
}

ed_node *ed_activate(ed_node *x, ed_activation act)
{
    if (!x) return NULL;
    switch (act) {
    case ED_ACT_NONE: return x;
    case ED_ACT_RELU: return ed_relu(x);
    case ED_ACT_SILU: return ed_silu(x);
    case ED_ACT_GELU: return ed_gelu(x, false);
    case ED_ACT_GELU_TANH: return ed_gelu(x, true);
    case ED_ACT_TANH: return ed_tanh(x);
    case ED_ACT_SIGMOID: return ed_sigmoid(x);
    case ED_ACT_LEAKY_RELU: return ed_leaky_relu(x, 0.01);
    case ED_ACT_SOFTPLUS: return ed_softplus(x);
    case ED_ACT_COUNT: break;
    }
    /* No default above, so -Wswitch flags an activation added without a case. */
    return ed_nn_fail(x->graph, "activate", "unknown activation %d", (int)act);
}

/* ---- dense and mlp -------------------------------------------------------------- */

ed_dtype ed_matmul_weight_name(const ed_graph *g, ed_dtype x, const char *base, char *name, size_t cap)
{
    ed_dtype dt = x == ED_F32 ? ed_graph_weight_dtype(g) : x;
    if (dt == x) snprintf(name, cap, "%s", base);
    else snprintf(name, cap, "%s.%s", base, ed_dtype_name(dt));
    return dt;
}

static ed_node *dense_body(ed_node *x, int64_t units, bool bias)
{
    ed_graph *g = x->graph;
    char t[96];
    ed_node_type_str(x, t, sizeof t);
    if (!is_float(x)) return ed_nn_fail(g, "dense", "x is %s, needs f32 or f64", t);
    if (x->shape.rank < 2) return ed_nn_fail(g, "dense", "x is %s, needs rank >= 2 ([..., in])", t);
    if (units < 1) return ed_nn_fail(g, "dense", "units must be >= 1, got %lld", (long long)units);
    int64_t in = x->shape.dim[x->shape.rank - 1];
    char wname[16];
    ed_dtype wdt = ed_matmul_weight_name(g, x->dtype, "w", wname, sizeof wname);
    ed_node *w = scoped_param(g, wname, wdt, ed_shape2(in, units), ED_INIT_GLOROT_UNIFORM);
    ed_node *y;
    if (x->shape.rank == 2) {
        y = ed_matmul(x, w);
    } else {
        /* [..., in] as one [rows, in] @ [in, units] matmul rather than a batched one that
         * broadcasts w: the forward pass and both gradients are then one sgemm each, and
         * the weight gradient is not a [batch, in, units] stack summed afterwards. */
        ed_shape out = x->shape;
        out.dim[out.rank - 1] = units;
        int64_t rows = 1;
        for (int d = 0; d < x->shape.rank - 1; d++) rows *= x->shape.dim[d];
        y = ed_reshape(ed_matmul(ed_reshape(x, ed_shape2(rows, in)), w), out);
    }
    if (!bias) return y;
    return ed_add(y, scoped_param(g, "b", x->dtype, ed_shape1(units), ED_INIT_ZEROS));
}

ed_node *ed_dense(ed_node *x, const char *name, int64_t units, bool bias)
{
    if (!block_enter(x, "dense", name)) return NULL;
    return block_leave(x->graph, dense_body(x, units, bias));
}

static ed_node *mlp_body(ed_node *x, const int64_t *sizes, int n, ed_activation act, bool activate_last)
{
    ed_graph *g = x->graph;
    if (!sizes || n < 1) return ed_nn_fail(g, "mlp", "needs at least one layer size, got n = %d", n);
    /* Checked up front so a bad activation builds no layers at all. */
    if ((unsigned)act >= ED_ACT_COUNT) return ed_nn_fail(g, "mlp", "unknown activation %d", (int)act);
    ed_node *h = x;
    for (int i = 0; i < n && h; i++) {
        char layer[32], act_leaf[64];
        snprintf(layer, sizeof layer, "%d", i);
        h = ed_dense(h, layer, sizes[i], true);
        if (act == ED_ACT_NONE || (i == n - 1 && !activate_last)) continue;
        snprintf(act_leaf, sizeof act_leaf, "%d.%s", i, ed_activation_name(act));
        h = set_scoped_name(ed_activate(h, act), act_leaf);
    }
    return h;
}

ed_node *ed_mlp(ed_node *x, const char *name, const int64_t *sizes, int n, ed_activation act, bool activate_last)
{
    if (!block_enter(x, "mlp", name)) return NULL;
    return block_leave(x->graph, mlp_body(x, sizes, n, act, activate_last));
}

/* ---- layer norm ------------------------------------------------------------------ */

static ed_node *layer_norm_body(ed_node *x, double eps, bool affine)
{
    ed_graph *g = x->graph;
    char t[96];
    ed_node_type_str(x, t, sizeof t);
    if (!is_float(x)) return ed_nn_fail(g, "layer_norm", "x is %s, needs f32 or f64", t);
    if (x->shape.rank < 1) return ed_nn_fail(g, "layer_norm", "x is %s, needs rank >= 1", t);
    if (!(eps >= 0 && eps < INFINITY)) return ed_nn_fail(g, "layer_norm", "eps must be finite and >= 0, got %g", eps);
    unsigned last = ed_axis_bit(x, -1);
    ed_node *d = ed_sub(x, ed_mean(x, last, true));
    ed_node *var = ed_mean(ed_square(d), last, true); /* biased: divides by D */
    ed_node *y = ed_mul(d, ed_rsqrt(ed_add_scalar(var, eps)));
    if (!affine) return y;
    ed_shape s = ed_shape1(x->shape.dim[x->shape.rank - 1]);
    ed_node *gain = scoped_param(g, "g", x->dtype, s, ED_INIT_ONES);
    return ed_add(ed_mul(y, gain), scoped_param(g, "b", x->dtype, s, ED_INIT_ZEROS));
}

ed_node *ed_layer_norm(ed_node *x, const char *name, double eps, bool affine)
{
    if (!block_enter(x, "layer_norm", name)) return NULL;
    return block_leave(x->graph, layer_norm_body(x, eps, affine));
}

/* Per (sample, group) mean and biased variance, each as a mean over H, W per channel
 * ([N,C,1,1], one pass over x) then over the group's channels (a tiny [N,G,C/G] view),
 * read back per channel. x is never reshaped (a copy in the JIT): three passes over it,
 * mean, variance and the normalization with the affine map, one fused kernel each. */
static ed_node *per_group(ed_node *per_channel, int64_t groups)
{
    ed_shape s = per_channel->shape;
    ed_shape grouped = ed_shape3(s.dim[0], groups, s.dim[1] / groups);
    ed_node *m = ed_mean(ed_reshape(per_channel, grouped), 4, true);
    return ed_reshape(ed_broadcast_to(m, grouped), s);
}

static ed_node *group_norm_body(ed_node *x, int64_t groups, double eps, bool affine)
{
    ed_graph *g = x->graph;
    char t[96];
    ed_node_type_str(x, t, sizeof t);
    if (!is_float(x)) return ed_nn_fail(g, "group_norm", "x is %s, needs f32 or f64", t);
    if (x->shape.rank != 4) return ed_nn_fail(g, "group_norm", "x is %s, needs rank 4 [N,C,H,W]", t);
    int64_t ch = x->shape.dim[1];
    if (groups < 1 || ch % groups)
        return ed_nn_fail(g, "group_norm", "groups %lld must be >= 1 and divide the %lld channels of %s",
                          (long long)groups, (long long)ch, t);
    if (!(eps >= 0 && eps < INFINITY)) return ed_nn_fail(g, "group_norm", "eps must be finite and >= 0, got %g", eps);
    unsigned hw = 4 | 8;
    ed_node *d = ed_sub(x, per_group(ed_mean(x, hw, true), groups));
    ed_node *var = per_group(ed_mean(ed_square(d), hw, true), groups); /* biased: divides by C/G*H*W */
    ed_node *y = ed_mul(d, ed_rsqrt(ed_add_scalar(var, eps)));
    if (!affine) return y;
    ed_node *gain = ed_reshape(scoped_param(g, "g", x->dtype, ed_shape1(ch), ED_INIT_ONES), ed_shape3(ch, 1, 1));
    ed_node *bias = ed_reshape(scoped_param(g, "b", x->dtype, ed_shape1(ch), ED_INIT_ZEROS), ed_shape3(ch, 1, 1));
    return ed_add(ed_mul(y, gain), bias);
}

ed_node *ed_group_norm(ed_node *x, const char *name, int64_t groups, double eps, bool affine)
{
    if (!block_enter(x, "group_norm", name)) return NULL;
    return block_leave(x->graph, group_norm_body(x, groups, eps, affine));
}

/* ---- convolution layers ---------------------------------------------------------- */

/* w [O, C/groups, k, k] (conv2d) or [C_in, C_out/groups, k, k] (transposed), glorot
 * uniform with PyTorch's fans for that layout (fan_in = dim 1 k^2, fan_out = dim 0 k^2)
 * as a plain uniform bound, since the store's own fans read the last two axes as
 * [in, out] (the dense layout); b zeros. The init is Axon's conv default. */
static ed_node *conv_weight(ed_graph *g, ed_dtype dt, int64_t d0, int64_t d1, int64_t k)
{
    double bound = sqrt(6.0 / ((double)(d0 + d1) * (double)(k * k)));
    return ed_scoped_leaf(g, ED_OP_PARAM, "w", dt, ed_shape4(d0, d1, k, k), (ed_init){ED_INIT_UNIFORM, bound});
}

static ed_node *conv_layer_body(ed_node *x, int64_t out_ch, int64_t k, const ed_conv_opts *o, bool bias,
                                bool transposed)
{
    ed_graph *g = x->graph;
    const char *what = transposed ? "conv_transpose2d_layer" : "conv2d_layer";
    char t[96];
    ed_node_type_str(x, t, sizeof t);
    if (!is_float(x)) return ed_nn_fail(g, what, "x is %s, needs f32 or f64", t);
    if (x->shape.rank != 4) return ed_nn_fail(g, what, "x is %s, needs rank 4 [N,C,H,W]", t);
    int64_t groups = o && o->groups ? o->groups : 1, in_ch = x->shape.dim[1];
    if (out_ch < 1 || k < 1 || groups < 1 || in_ch % groups || out_ch % groups)
        return ed_nn_fail(g, what,
                          "out channels %lld and kernel %lld must be >= 1, groups %lld must divide %lld and %lld",
                          (long long)out_ch, (long long)k, (long long)groups, (long long)in_ch, (long long)out_ch);
    ed_node *y = transposed ? ed_conv_transpose2d(x, conv_weight(g, x->dtype, in_ch, out_ch / groups, k), o)
                            : ed_conv2d(x, conv_weight(g, x->dtype, out_ch, in_ch / groups, k), o);
    if (!bias) return y;
    ed_node *b = scoped_param(g, "b", x->dtype, ed_shape1(out_ch), ED_INIT_ZEROS);
    return ed_add(y, ed_reshape(b, ed_shape3(out_ch, 1, 1)));
}

ed_node *ed_conv2d_layer(ed_node *x, const char *name, int64_t out_ch, int64_t k, const ed_conv_opts *o, bool bias)
{
    if (!block_enter(x, "conv2d_layer", name)) return NULL;
    return block_leave(x->graph, conv_layer_body(x, out_ch, k, o, bias, false));
}

ed_node *ed_conv_transpose2d_layer(ed_node *x, const char *name, int64_t out_ch, int64_t k, const ed_conv_opts *o,
                                   bool bias)
{
    if (!block_enter(x, "conv_transpose2d_layer", name)) return NULL;
    return block_leave(x->graph, conv_layer_body(x, out_ch, k, o, bias, true));
}

/* ---- softmax family ------------------------------------------------------------------ */

/* Normalize axis for x (float, rank >= 1); -1 with a graph error naming `what` if bad. */
static int softmax_axis(ed_node *x, int axis, const char *what)
{
    if (!x || ed_graph_error(x->graph)) return -1;
    char t[96];
    ed_node_type_str(x, t, sizeof t);
    int r = x->shape.rank, a = axis < 0 ? axis + r : axis;
    if (!is_float(x)) ed_nn_fail(x->graph, what, "x is %s, needs f32 or f64", t);
    else if (a < 0 || a >= r) ed_nn_fail(x->graph, what, "axis %d is out of range for %s", axis, t);
    else return a;
    return -1;
}

/* x - m with m the max along axis (kept), as a constant for autodiff. m is clamped to the
 * finite range so an all -inf slice gives -inf - (-max) = -inf, not NaN. */
static ed_node *shift_by_max(ed_node *x, int axis, ed_node **m)
{
    double big = x->dtype == ED_F64 ? DBL_MAX : FLT_MAX;
    *m = ed_stop_gradient(ed_clamp(ed_max(x, 1u << axis, true), -big, big));
    return ed_sub(x, *m);
}

ed_node *ed_softmax(ed_node *x, int axis)
{
    int a = softmax_axis(x, axis, "softmax");
    if (a < 0) return NULL;
    ed_node *m, *e = ed_exp(shift_by_max(x, a, &m));
    return ed_div(e, ed_sum(e, 1u << a, true));
}

ed_node *ed_log_softmax(ed_node *x, int axis)
{
    int a = softmax_axis(x, axis, "log_softmax");
    if (a < 0) return NULL;
    ed_node *m, *s = shift_by_max(x, a, &m);
    return ed_sub(s, ed_log(ed_sum(ed_exp(s), 1u << a, true)));
}

/* x's shape without axis a. */
static ed_shape drop_axis(ed_shape s, int a)
{
    ed_shape r = {.rank = s.rank - 1};
    for (int i = 0, j = 0; i < s.rank; i++)
        if (i != a) r.dim[j++] = s.dim[i];
    return r;
}

ed_node *ed_logsumexp(ed_node *x, int axis, bool keepdims)
{
    int a = softmax_axis(x, axis, "logsumexp");
    if (a < 0) return NULL;
    ed_node *m, *s = shift_by_max(x, a, &m);
    ed_node *r = ed_add(ed_log(ed_sum(ed_exp(s), 1u << a, true)), m);
    return keepdims ? r : ed_reshape(r, drop_axis(x->shape, a));
}

/* ---- self-attention ---------------------------------------------------------------- */

/* [B, T, H*Dh] -> [B, H, T, Dh] */
static ed_node *split_heads(ed_node *y, int64_t heads)
{
    if (!y) return NULL;
    const int64_t *d = y->shape.dim;
    static const int perm[4] = {0, 2, 1, 3};
    return ed_transpose(ed_reshape(y, ed_shape4(d[0], d[1], heads, d[2] / heads)), perm);
}

/* [B, H, T, Dh] -> [B, T, H*Dh] */
static ed_node *merge_heads(ed_node *y)
{
    if (!y) return NULL;
    const int64_t *d = y->shape.dim;
    static const int perm[4] = {0, 2, 1, 3};
    return ed_reshape(ed_transpose(y, perm), ed_shape3(d[0], d[2], d[1] * d[3]));
}

/* scores [..., T, T] with key positions after the query's set to -1e9. The mask is
 * ge(row, col) of two index vectors, 2T constants rather than T*T. */
static ed_node *causal_mask(ed_node *scores)
{
    ed_graph *g = scores->graph;
    int64_t t = scores->shape.dim[scores->shape.rank - 1];
    double *idx = malloc((size_t)(t > 0 ? t : 1) * sizeof *idx);
    if (!idx) return ed_graph_fail(g, "out of memory");
    for (int64_t i = 0; i < t; i++) idx[i] = (double)i;
    ed_node *row = ed_const(g, ED_I32, ed_shape2(t, 1), idx, t);
    ed_node *col = ed_const(g, ED_I32, ed_shape2(1, t), idx, t);
    free(idx);
    return ed_where(ed_ge(row, col), scores, ed_scalar_like(scores, -1e9));
}

static ed_node *attention_body(ed_node *x, int heads, bool causal)
{
    ed_graph *g = x->graph;
    char t[96];
    ed_node_type_str(x, t, sizeof t);
    if (!is_float(x)) return ed_nn_fail(g, "self_attention", "x is %s, needs f32 or f64", t);
    if (x->shape.rank != 3) return ed_nn_fail(g, "self_attention", "x is %s, needs [B, T, D]", t);
    int64_t dm = x->shape.dim[2];
    if (heads < 1 || dm % heads)
        return ed_nn_fail(g, "self_attention", "D = %lld is not divisible by heads = %d (x is %s)", (long long)dm,
                          heads, t);
    ed_node *q = split_heads(ed_dense(x, "q", dm, true), heads);
    ed_node *k = split_heads(ed_dense(x, "k", dm, true), heads);
    ed_node *v = split_heads(ed_dense(x, "v", dm, true), heads);
    ed_node *s = ed_mul_scalar(ed_matmul_t(q, k, false, true), 1.0 / sqrt((double)(dm / heads)));
    if (causal && s) s = causal_mask(s);
    ed_node *p = set_scoped_name(ed_softmax(s, -1), "probs");
    return ed_dense(merge_heads(ed_matmul(p, v)), "o", dm, true);
}

ed_node *ed_self_attention(ed_node *x, const char *name, int heads, bool causal)
{
    if (!block_enter(x, "self_attention", name)) return NULL;
    return block_leave(x->graph, attention_body(x, heads, causal));
}

/* ---- timestep embedding ---------------------------------------------------------------- */

/* Frequencies [1, half] in t's dtype, computed in double. */
static ed_node *timestep_freqs(ed_graph *g, ed_dtype dt, int64_t half, double max_period)
{
    double *f = malloc((size_t)half * sizeof *f);
    if (!f) return ed_graph_fail(g, "out of memory");
    for (int64_t i = 0; i < half; i++) f[i] = exp(-log(max_period) * (double)i / (double)half);
    ed_node *c = ed_const(g, dt, ed_shape2(1, half), f, half);
    free(f);
    return c;
}

ed_node *ed_timestep_embedding(ed_node *t, int64_t dim, double max_period)
{
    if (!t || ed_graph_error(t->graph)) return NULL;
    ed_graph *g = t->graph;
    char ty[96];
    ed_node_type_str(t, ty, sizeof ty);
    const char *what = "timestep_embedding";
    if (t->shape.rank != 1) return ed_nn_fail(g, what, "t is %s, needs [B]", ty);
    if (dim < 2 || dim % 2) return ed_nn_fail(g, what, "dim = %lld must be even and >= 2", (long long)dim);
    if (!(max_period > 0 && max_period < INFINITY))
        return ed_nn_fail(g, what, "max_period must be finite and > 0, got %g", max_period);
    if (t->dtype == ED_I32) t = ed_cast(t, ED_F32);
    ed_node *f = timestep_freqs(g, t->dtype, dim / 2, max_period);
    ed_node *args = ed_mul(ed_reshape(t, ed_shape2(t->shape.dim[0], 1)), f);
    ed_node *parts[2] = {ed_sin(args), ed_cos(args)};
    return ed_concat(parts, 2, 1);
}
