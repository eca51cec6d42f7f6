/* Reverse-mode autodiff. One vector-Jacobian rule per differentiable op, in a table
 * indexed by ed_op (unary elementwise ops: a case of vjp_unary); every rule is built
 * from frontend constructors, so the backward graph is ordinary, differentiable IR.
 * Broadcasting is undone once, in unbroadcast(). */
#include "passes/autodiff.h"
#include "frontend/frontend.h"
#include "runtime/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* gin[k] receives the contribution of gy to input k where need[k]; it may have the
 * output's broadcast shape, which the caller reduces to the input's shape. */
typedef void (*vjp_fn)(ed_node *y, ed_node *gy, const bool *need, ed_node **gin);

static ed_node *c(const ed_node *like, double v) { return ed_scalar_like(like, v); }

static ed_node *zeros_of(const ed_node *x) { return ed_fill(x->graph, x->dtype, x->shape, 0); }

/* Float 0/1 mask from an i32 comparison, in the dtype of like. */
static ed_node *mask(ed_node *cmp, const ed_node *like) { return ed_cast(cmp, like->dtype); }

/* Sum g over the axes that broadcasting added or stretched, giving shape t. */
static ed_node *unbroadcast(ed_node *g, ed_shape t)
{
    if (!g || ed_shape_eq(g->shape, t)) return g;
    int lead = g->shape.rank - t.rank;
    unsigned axes = 0;
    for (int i = 0; i < g->shape.rank; i++)
        if (i < lead || (t.dim[i - lead] == 1 && g->shape.dim[i] != 1)) axes |= 1u << i;
    ed_node *s = axes ? ed_sum(g, axes, true) : g;
    return ed_reshape(s, t);
}

/* ---- elementwise ------------------------------------------------------------ */

static void vjp_add(ed_node *y, ed_node *gy, const bool *need, ed_node **gin)
{
    (void)y, (void)need;
    gin[0] = gin[1] = gy;
}

static void vjp_sub(ed_node *y, ed_node *gy, const bool *need, ed_node **gin)
{
    (void)y;
    gin[0] = gy;
    if (need[1]) gin[1] = ed_neg(gy);
}

static void vjp_mul(ed_node *y, ed_node *gy, const bool *need, ed_node **gin)
{
    if (need[0]) gin[0] = ed_mul(gy, y->in[1]);
    if (need[1]) gin[1] = ed_mul(gy, y->in[0]);
}

static void vjp_div(ed_node *y, ed_node *gy, const bool *need, ed_node **gin)
{
    ed_node *b = y->in[1];
    if (need[0]) gin[0] = ed_div(gy, b);
    if (need[1]) gin[1] = ed_neg(ed_div(ed_mul(gy, y), b)); /* -gy * a / b^2 */
}

static void vjp_pow(ed_node *y, ed_node *gy, const bool *need, ed_node **gin)
{
    ed_node *a = y->in[0], *b = y->in[1];
    if (need[0]) gin[0] = ed_mul(gy, ed_mul(b, ed_pow(a, ed_sub(b, c(b, 1)))));
    if (need[1]) gin[1] = ed_mul(gy, ed_mul(y, ed_log(a)));
}

/* maximum / minimum: the winner takes the gradient, ties split it equally. */
static void vjp_extremum(ed_node *y, ed_node *gy, const bool *need, ed_node **gin)
{
    ed_node *a = y->in[0], *b = y->in[1];
    bool is_max = y->op == ED_OP_MAXIMUM;
    ed_node *a_wins = mask(is_max ? ed_gt(a, b) : ed_lt(a, b), a);
    ed_node *tie = ed_mul_scalar(mask(ed_eq(a, b), a), 0.5);
    ed_node *wa = ed_add(a_wins, tie);
    if (need[0]) gin[0] = ed_mul(gy, wa);
    if (need[1]) gin[1] = ed_mul(gy, ed_sub(c(wa, 1), wa));
}

static void vjp_where(ed_node *y, ed_node *gy, const bool *need, ed_node **gin)
{
    ed_node *cond = y->in[0], *zero = c(gy, 0);
    if (need[1]) gin[1] = ed_where(cond, gy, zero);
    if (need[2]) gin[2] = ed_where(cond, zero, gy);
}

static void vjp_unary(ed_node *y, ed_node *gy, const bool *need, ed_node **gin)
{
    (void)need;
    ed_node *x = y->in[0], *d = NULL;
    switch (y->op) {
    case ED_OP_NEG: gin[0] = ed_neg(gy); return;
    case ED_OP_ABS: d = ed_sign(x); break;
    case ED_OP_EXP: d = y; break;
    case ED_OP_EXPM1: d = ed_exp(x); break; /* not y + 1, which loses exp(x) for x << 0 */
    case ED_OP_LOG: gin[0] = ed_div(gy, x); return;
    case ED_OP_LOG1P: gin[0] = ed_div(gy, ed_add_scalar(x, 1)); return;
    case ED_OP_SQRT: gin[0] = ed_div(ed_mul_scalar(gy, 0.5), y); return;
    case ED_OP_RSQRT: d = ed_mul_scalar(ed_div(y, x), -0.5); break; /* -x^-1.5 / 2 */
    case ED_OP_SQUARE: d = ed_mul_scalar(x, 2); break;
    case ED_OP_TANH: d = ed_sub(c(y, 1), ed_square(y)); break;
    case ED_OP_SIGMOID: d = ed_mul(y, ed_sub(c(y, 1), y)); break;
    case ED_OP_RELU: d = mask(ed_gt(x, c(x, 0)), x); break;
    case ED_OP_LEAKY_RELU: d = ed_where(ed_ge(x, c(x, 0)), c(x, 1), c(x, y->attr.alpha)); break;
    case ED_OP_SILU: {
        ed_node *s = ed_sigmoid(x); /* s * (1 + x * (1 - s)) */
        d = ed_mul(s, ed_add(c(x, 1), ed_mul(x, ed_sub(c(x, 1), s))));
        break;
    }
    case ED_OP_SOFTPLUS: d = ed_sigmoid(x); break;
    case ED_OP_SIN: d = ed_cos(x); break;
    case ED_OP_COS: d = ed_neg(ed_sin(x)); break;
    case ED_OP_CLAMP: d = ed_mul(mask(ed_ge(x, c(x, y->attr.lo)), x), mask(ed_le(x, c(x, y->attr.hi)), x)); break;
    case ED_OP_GELU: {
        if (y->attr.approx) {
            /* u = k (x + 0.044715 x^3), t = tanh u:
             * d = 0.5 (1 + t) + 0.5 x (1 - t^2) k (1 + 3 * 0.044715 x^2) */
            const double k = 0.79788456080286535588;
            ed_node *x2 = ed_square(x);
            ed_node *u = ed_mul_scalar(ed_add(x, ed_mul_scalar(ed_mul(x2, x), 0.044715)), k);
            ed_node *t = ed_tanh(u);
            ed_node *du = ed_mul_scalar(ed_add_scalar(ed_mul_scalar(x2, 3 * 0.044715), 1), k);
            ed_node *left = ed_mul_scalar(ed_add_scalar(t, 1), 0.5);
            ed_node *right = ed_mul(ed_mul_scalar(x, 0.5), ed_mul(ed_sub(c(t, 1), ed_square(t)), du));
            d = ed_add(left, right);
        } else {
            /* Phi(x) + x phi(x), Phi(x) = 0.5 (1 + erf(x / sqrt 2)) */
            ed_node *phi_cdf = ed_mul_scalar(ed_add_scalar(ed_erf(ed_mul_scalar(x, 0.70710678118654752440)), 1), 0.5);
            ed_node *pdf = ed_mul_scalar(ed_exp(ed_mul_scalar(ed_square(x), -0.5)), 0.39894228040143267794);
            d = ed_add(phi_cdf, ed_mul(x, pdf));
        }
        break;
    }
    case ED_OP_ERF: /* 2 / sqrt(pi) exp(-x^2) */
        d = ed_mul_scalar(ed_exp(ed_neg(ed_square(x))), 1.12837916709551257390);
        break;
    case ED_OP_SIGN: return; /* zero almost everywhere */
    case ED_OP_CAST:
        if (ed_dtype_is_float(x->dtype)) gin[0] = ed_cast(gy, x->dtype);
        return;
    default:
        ed_graph_fail(y->graph, "autodiff: op %s has no gradient rule yet (%%%d)", ed_op_name(y->op), y->id);
        return;
    }
    gin[0] = ed_mul(gy, d);
}

/* ---- reductions ------------------------------------------------------------- */

/* gy reshaped to the input's rank (reduced axes as 1), then broadcast to it. */
static ed_node *expand_reduced(ed_node *v, const ed_node *x, unsigned axes)
{
    ed_shape keep = x->shape;
    for (int i = 0; i < keep.rank; i++)
        if (axes >> i & 1) keep.dim[i] = 1;
    return ed_broadcast_to(ed_reshape(v, keep), x->shape);
}

static void vjp_reduce(ed_node *y, ed_node *gy, const bool *need, ed_node **gin)
{
    (void)need;
    ed_node *x = y->in[0];
    unsigned axes = y->attr.axes;
    ed_node *g = expand_reduced(gy, x, axes);
    if (y->op == ED_OP_SUM) {
        gin[0] = g;
    } else if (y->op == ED_OP_MEAN) {
        double count = ed_shape_numel(x->shape) / (double)(ed_shape_numel(y->shape) ? ed_shape_numel(y->shape) : 1);
        gin[0] = ed_mul_scalar(g, count > 0 ? 1.0 / count : 0.0);
    } else { /* max, min: ties split equally */
        ed_node *hit = mask(ed_eq(x, expand_reduced(y, x, axes)), x);
        ed_node *ties = expand_reduced(ed_sum(hit, axes, true), x, axes);
        gin[0] = ed_div(ed_mul(g, hit), ties);
    }
}

/* ---- movement ---------------------------------------------------------------- */

static void vjp_reshape(ed_node *y, ed_node *gy, const bool *need, ed_node **gin)
{
    (void)need;
    gin[0] = ed_reshape(gy, y->in[0]->shape);
}

static void vjp_transpose(ed_node *y, ed_node *gy, const bool *need, ed_node **gin)
{
    (void)need;
    int inv[ED_MAX_RANK];
    for (int i = 0; i < y->shape.rank; i++) inv[y->attr.perm[i]] = i;
    gin[0] = ed_transpose(gy, inv);
}

static void vjp_broadcast_to(ed_node *y, ed_node *gy, const bool *need, ed_node **gin)
{
    (void)y, (void)need;
    gin[0] = gy; /* unbroadcast sums it back */
}

static void vjp_slice(ed_node *y, ed_node *gy, const bool *need, ed_node **gin)
{
    (void)need;
    const ed_node *x = y->in[0];
    const ed_attrs *a = &y->attr;
    ed_node *g = gy;
    int64_t lo[ED_MAX_RANK] = {0}, hi[ED_MAX_RANK] = {0};
    for (int i = 0; i < x->shape.rank; i++) {
        if (a->step[i] == 1) {
            lo[i] = a->start[i];
            hi[i] = x->shape.dim[i] - a->stop[i];
            continue;
        }
        /* Strided: scatter the rows back to start, start+step, ... on this axis. */
        int64_t n = y->shape.dim[i];
        double *pos = malloc((size_t)(n ? n : 1) * sizeof *pos);
        for (int64_t k = 0; pos && k < n; k++) pos[k] = (double)(a->start[i] + k * a->step[i]);
        ed_node *idx = pos ? ed_const(y->graph, ED_I32, ed_shape1(n), pos, n) : NULL;
        free(pos);
        ed_shape base = g ? g->shape : x->shape;
        base.dim[i] = x->shape.dim[i];
        g = ed_scatter_add(ed_fill(y->graph, x->dtype, base, 0), idx, g, i);
    }
    gin[0] = ed_pad(g, lo, hi, 0);
}

static void vjp_concat(ed_node *y, ed_node *gy, const bool *need, ed_node **gin)
{
    int axis = y->attr.axis;
    int64_t at = 0;
    for (int k = 0; k < y->nin; k++) {
        int64_t len = y->in[k]->shape.dim[axis];
        if (need[k]) gin[k] = ed_slice_axis(gy, axis, at, at + len);
        at += len;
    }
}

static void vjp_pad(ed_node *y, ed_node *gy, const bool *need, ed_node **gin)
{
    (void)need;
    const ed_node *x = y->in[0];
    int64_t start[ED_MAX_RANK], stop[ED_MAX_RANK];
    for (int i = 0; i < x->shape.rank; i++) {
        start[i] = y->attr.pad_lo[i];
        stop[i] = start[i] + x->shape.dim[i];
    }
    gin[0] = ed_slice(gy, start, stop, NULL);
}

/* ---- indexing ---------------------------------------------------------------- */

static void vjp_gather(ed_node *y, ed_node *gy, const bool *need, ed_node **gin)
{
    (void)need;
    ed_node *x = y->in[0], *idx = y->in[1];
    int axis = y->attr.axis;
    /* gather clamps its indices, so the gradient goes where the value came from. */
    ed_node *at = ed_clamp(idx, 0, (double)(x->shape.dim[axis] - 1));
    gin[0] = ed_scatter_add(zeros_of(x), at, gy, axis);
}

static void vjp_scatter_add(ed_node *y, ed_node *gy, const bool *need, ed_node **gin)
{
    ed_node *base = y->in[0], *idx = y->in[1], *upd = y->in[2];
    int axis = y->attr.axis;
    if (need[0]) gin[0] = gy;
    if (!need[2]) return;
    /* Updates at out-of-range indices were dropped: they get no gradient. */
    ed_node *inside = ed_mul(ed_ge(idx, c(idx, 0)), ed_lt(idx, c(idx, (double)base->shape.dim[axis])));
    ed_shape s = {.rank = upd->shape.rank};
    for (int i = 0; i < s.rank; i++) s.dim[i] = 1;
    for (int i = 0; i < idx->shape.rank; i++) s.dim[axis + i] = idx->shape.dim[i];
    ed_node *m = ed_reshape(mask(inside, upd), s);
    gin[2] = ed_mul(ed_gather(gy, idx, axis), m);
}

/* ---- matmul ------------------------------------------------------------------ */

/* y = op(a) op(b), op = optional transpose of the last two dims. */
static void vjp_matmul(ed_node *y, ed_node *gy, const bool *need, ed_node **gin)
{
    ed_node *a = y->in[0], *b = y->in[1];
    bool ta = y->attr.ta, tb = y->attr.tb;
    if (need[0]) gin[0] = ta ? ed_matmul_t(b, gy, tb, true) : ed_matmul_t(gy, b, false, !tb);
    if (need[1]) gin[1] = tb ? ed_matmul_t(gy, a, true, ta) : ed_matmul_t(a, gy, !ta, false);
}

/* ---- convolutions -------------------------------------------------------------
 *
 * The three ops are one bilinear map B(x, w) = y = conv2d(x, w) seen from each side:
 * conv_transpose2d(dy, w) = B's adjoint in x, conv2d_weight_grad(x, dy) = its adjoint in
 * w. So each op's gradients are the other two, and the family is closed under autodiff. */

static ed_conv_opts conv_opts_of(const ed_node *y, int64_t out_pad_h, int64_t out_pad_w)
{
    const ed_attrs *a = &y->attr;
    return (ed_conv_opts){.stride = {a->stride[0], a->stride[1]},
                          .padding = {a->padding[0], a->padding[1]},
                          .dilation = {a->dilation[0], a->dilation[1]},
                          .groups = a->groups,
                          .output_padding = {out_pad_h, out_pad_w}};
}

/* conv_transpose2d's output_padding that gives back x's height and width: the rows and
 * columns the forward conv2d's stride left unread. */
static ed_conv_opts input_grad_opts(const ed_node *y, ed_shape x, int64_t kh, int64_t kw)
{
    const ed_attrs *a = &y->attr;
    int64_t k[2] = {kh, kw}, extra[2];
    for (int i = 0; i < 2; i++)
        extra[i] = (x.dim[2 + i] + 2 * a->padding[i] - a->dilation[i] * (k[i] - 1) - 1) % a->stride[i];
    return conv_opts_of(y, extra[0], extra[1]);
}

/* y = conv2d(x, w) */
static void vjp_conv2d(ed_node *y, ed_node *gy, const bool *need, ed_node **gin)
{
    ed_node *x = y->in[0], *w = y->in[1];
    int64_t kh = w->shape.dim[2], kw = w->shape.dim[3];
    ed_conv_opts o = input_grad_opts(y, x->shape, kh, kw);
    if (need[0]) gin[0] = ed_conv_transpose2d(gy, w, &o);
    if (need[1]) gin[1] = ed_conv2d_weight_grad(x, gy, kh, kw, &o);
}

/* x = conv_transpose2d(t, w): t plays conv2d's output, x its input. */
static void vjp_conv_transpose2d(ed_node *y, ed_node *gy, const bool *need, ed_node **gin)
{
    ed_node *t = y->in[0], *w = y->in[1];
    ed_conv_opts o = conv_opts_of(y, 0, 0);
    if (need[0]) gin[0] = ed_conv2d(gy, w, &o);
    if (need[1]) gin[1] = ed_conv2d_weight_grad(gy, t, w->shape.dim[2], w->shape.dim[3], &o);
}

/* gw = conv2d_weight_grad(x, dy) */
static void vjp_conv2d_weight_grad(ed_node *y, ed_node *gy, const bool *need, ed_node **gin)
{
    ed_node *x = y->in[0];
    ed_conv_opts o = input_grad_opts(y, x->shape, y->attr.kernel[0], y->attr.kernel[1]);
    if (need[0]) gin[0] = ed_conv_transpose2d(y->in[1], gy, &o);
    if (need[1]) gin[1] = ed_conv2d(x, gy, &o);
}

/* Each rank's value reaches every rank's result once (over n ranks, 1/n of it for the
 * mean), so the gradient is the same collective of the incoming gradients. */
static void vjp_allreduce(ed_node *y, ed_node *gy, const bool *need, ed_node **gin)
{
    if (need[0]) gin[0] = ed_allreduce(gy, y->op == ED_OP_ALLREDUCE_MEAN);
}

static void vjp_leaf(ed_node *y, ed_node *gy, const bool *need, ed_node **gin)
{
    (void)y, (void)gy, (void)need, (void)gin;
}

static const vjp_fn vjps[ED_OP_COUNT] = {
    [ED_OP_PARAM] = vjp_leaf,
    [ED_OP_ADD] = vjp_add,
    [ED_OP_SUB] = vjp_sub,
    [ED_OP_MUL] = vjp_mul,
    [ED_OP_DIV] = vjp_div,
    [ED_OP_POW] = vjp_pow,
    [ED_OP_MAXIMUM] = vjp_extremum,
    [ED_OP_MINIMUM] = vjp_extremum,
    [ED_OP_WHERE] = vjp_where,
    [ED_OP_SUM] = vjp_reduce,
    [ED_OP_MEAN] = vjp_reduce,
    [ED_OP_MAX] = vjp_reduce,
    [ED_OP_MIN] = vjp_reduce,
    [ED_OP_RESHAPE] = vjp_reshape,
    [ED_OP_TRANSPOSE] = vjp_transpose,
    [ED_OP_BROADCAST_TO] = vjp_broadcast_to,
    [ED_OP_SLICE] = vjp_slice,
    [ED_OP_CONCAT] = vjp_concat,
    [ED_OP_PAD] = vjp_pad,
    [ED_OP_GATHER] = vjp_gather,
    [ED_OP_SCATTER_ADD] = vjp_scatter_add,
    [ED_OP_MATMUL] = vjp_matmul,
    [ED_OP_CONV2D] = vjp_conv2d,
    [ED_OP_CONV_TRANSPOSE2D] = vjp_conv_transpose2d,
    [ED_OP_CONV2D_WEIGHT_GRAD] = vjp_conv2d_weight_grad,
    [ED_OP_ALLREDUCE_SUM] = vjp_allreduce,
    [ED_OP_ALLREDUCE_MEAN] = vjp_allreduce,
};

/* Unary elementwise ops need no entry above: their rule is their case in vjp_unary. */
static vjp_fn vjp_of(ed_op op)
{
    if (vjps[op]) return vjps[op];
    return ed_ops[op].kind == ED_KIND_ELEM && ed_ops[op].max_inputs == 1 ? vjp_unary : NULL;
}

/* Whether vjp_unary has a case for op, asked on a scratch graph: f64[] x, y = op(x). */
static bool unary_rule_exists(ed_op op)
{
    ed_graph *g = ed_graph_new("vjp_probe");
    ed_node *x = g ? ed_input(g, "x", ED_F64, ed_shape0()) : NULL;
    ed_node *y = x ? ed_node_new(g, op, &x, 1, &(ed_attrs){.dtype = ED_F64}) : NULL;
    bool need = true;
    ed_node *gin = NULL;
    if (y) vjp_unary(y, x, &need, &gin);
    bool ok = y && !g->failed;
    ed_graph_free(g);
    return ok;
}

bool ed_has_vjp(ed_op op)
{
    if ((unsigned)op >= ED_OP_COUNT || !vjp_of(op)) return false;
    return vjp_of(op) != vjp_unary || unary_rule_exists(op);
}

/* ---- the reverse walk --------------------------------------------------------- */

static bool carries_gradient(const ed_node *n) { return (ed_ops[n->op].flags & F_DIFF) && ed_dtype_is_float(n->dtype); }

/* Control ops (and fused nodes, which the fuse pass makes after autodiff) pass
 * dependence on so that a loss reached through them is an error rather than a silent
 * zero gradient. */
static bool control(const ed_node *n)
{
    return ed_ops[n->op].kind == ED_KIND_CONTROL || ed_ops[n->op].kind == ED_KIND_FUSED;
}

int ed_grad(ed_node *loss, ed_node *const *wrt, int n, ed_node **grads)
{
    for (int i = 0; i < n; i++) grads[i] = NULL;
    if (!loss) return ED_ERR;
    ed_graph *g = loss->graph;
    if (g->failed) return ED_ERR;
    char t[96];
    if (loss->shape.rank != 0 || !ed_dtype_is_float(loss->dtype)) {
        ed_graph_fail(g, "grad: the loss must be a float scalar, got %s at %%%d (reduce it with sum or mean)",
                      ed_node_type_str(loss, t, sizeof t), loss->id);
        return ED_ERR;
    }
    for (int i = 0; i < n; i++) {
        if (!wrt[i] || wrt[i]->graph != g) {
            ed_graph_fail(g, "grad: wrt[%d] is %s", i, wrt[i] ? "a node of another graph" : "NULL");
            return ED_ERR;
        }
        if (ed_dtype_is_16bit(wrt[i]->dtype)) {
            ed_graph_fail(g,
                          "grad: wrt[%d] (%%%d) is %s: training with 16-bit weights is not implemented (they are "
                          "for sampling; train in f32)",
                          i, wrt[i]->id, ed_node_type_str(wrt[i], t, sizeof t));
            return ED_ERR;
        }
        if (!ed_dtype_is_float(wrt[i]->dtype)) {
            ed_graph_fail(g, "grad: wrt[%d] (%%%d) is %s; gradients exist only for float values", i, wrt[i]->id,
                          ed_node_type_str(wrt[i], t, sizeof t));
            return ED_ERR;
        }
    }

    int count = g->nnodes; /* the forward graph; backward nodes are appended after */
    ed_node **order = ed_graph_topo(g);
    bool *depends = calloc((size_t)count + 1, sizeof *depends);
    bool *needed = calloc((size_t)count + 1, sizeof *needed);
    ed_node **grad = calloc((size_t)count + 1, sizeof *grad);
    if (!order || !depends || !needed || !grad) {
        free(order), free(depends), free(needed), free(grad);
        ed_graph_fail(g, "grad: out of memory");
        return ED_ERR;
    }
    /* Forward: which nodes depend on a wrt node through differentiable ops. */
    for (int i = 0; i < n; i++) depends[wrt[i]->id] = true;
    for (int k = 0; k < count; k++) {
        ed_node *v = order[k];
        if (depends[v->id] || (!carries_gradient(v) && !control(v))) continue;
        for (int j = 0; j < v->nin; j++)
            if (depends[v->in[j]->id]) depends[v->id] = true;
    }
    /* Backward: the nodes between the wrt set and the loss. */
    needed[loss->id] = depends[loss->id];
    for (int k = count - 1; k >= 0; k--) {
        ed_node *v = order[k];
        if (!needed[v->id] || (!carries_gradient(v) && !control(v))) continue;
        for (int j = 0; j < v->nin; j++)
            if (depends[v->in[j]->id]) needed[v->in[j]->id] = true;
    }
    for (int k = 0; k < count && !g->failed; k++)
        if (needed[order[k]->id] && order[k]->op == ED_OP_LOOP)
            ed_graph_fail(g, "autodiff: op loop has no gradient rule yet (%%%d)", order[k]->id);
        else if (needed[order[k]->id] && order[k]->op == ED_OP_FUSED)
            ed_graph_fail(g,
                          "autodiff: fused node %%%d has no gradient: run the fuse pass after ed_grad "
                          "(ed_compile does)",
                          order[k]->id);

    grad[loss->id] = ed_scalar_like(loss, 1.0);
    for (int k = count - 1; k >= 0 && !g->failed; k--) {
        ed_node *v = order[k];
        if (!needed[v->id] || !grad[v->id] || !carries_gradient(v) || v->nin == 0) continue;
        bool need[v->nin];
        ed_node *gin[v->nin];
        for (int j = 0; j < v->nin; j++) {
            need[j] = needed[v->in[j]->id];
            gin[j] = NULL;
        }
        vjp_fn vjp = vjp_of(v->op);
        if (!vjp) {
            ed_graph_fail(g, "autodiff: op %s has no gradient rule yet (%%%d)", ed_op_name(v->op), v->id);
            break;
        }
        vjp(v, grad[v->id], need, gin);
        for (int j = 0; j < v->nin; j++) {
            if (!need[j] || !gin[j]) continue;
            ed_node *x = v->in[j];
            ed_node *contrib = unbroadcast(gin[j], x->shape);
            grad[x->id] = grad[x->id] ? ed_add(grad[x->id], contrib) : contrib;
        }
    }
    for (int i = 0; i < n && !g->failed; i++) grads[i] = grad[wrt[i]->id] ? grad[wrt[i]->id] : zeros_of(wrt[i]);
    free(order), free(depends), free(needed), free(grad);
    if (g->failed) {
        for (int i = 0; i < n; i++) grads[i] = NULL;
        return ED_ERR;
    }
    return ED_OK;
}

ed_node *ed_grad1(ed_node *y, ed_node *x)
{
    ed_node *gx = NULL;
    return ed_grad(y, &x, 1, &gx) == ED_OK ? gx : NULL;
}
