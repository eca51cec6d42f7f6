/* One constructor per op: fill the attributes, then ed_node_new checks and builds. */
#include "frontend/frontend.h"
#include "runtime/error.h"

#include <stdio.h>

static ed_graph *graph_of(const ed_node *x) { return x ? x->graph : NULL; }

/* ---- leaves ---------------------------------------------------------------- */

static ed_node *typed_leaf(ed_graph *g, ed_op op, const char *name, ed_dtype dt, ed_shape s, ed_init init)
{
    if (!g) return NULL;
    ed_attrs a = {.name = name, .init = init, .dtype = dt, .shape = s};
    return ed_node_new(g, op, NULL, 0, &a);
}

ed_node *ed_input(ed_graph *g, const char *name, ed_dtype dt, ed_shape shape)
{
    return typed_leaf(g, ED_OP_INPUT, name, dt, shape, (ed_init){0});
}

ed_node *ed_param(ed_graph *g, const char *name, ed_dtype dt, ed_shape shape, ed_init init)
{
    return typed_leaf(g, ED_OP_PARAM, name, dt, shape, init);
}

ed_node *ed_state(ed_graph *g, const char *name, ed_dtype dt, ed_shape shape, ed_init init)
{
    return typed_leaf(g, ED_OP_STATE, name, dt, shape, init);
}

ed_node *ed_const(ed_graph *g, ed_dtype dt, ed_shape shape, const double *values, int64_t n)
{
    if (!g) return NULL;
    ed_attrs a = {.data = values, .ndata = n, .dtype = dt, .shape = shape};
    /* Store values as the dtype holds them, so printing and every backend agree. */
    double one;
    if (n == 1 && values) {
        one = ed_scalar_round(values[0], dt);
        a.data = &one;
        return ed_node_new(g, ED_OP_CONST, NULL, 0, &a);
    }
    ed_node *c = ed_node_new(g, ED_OP_CONST, NULL, 0, &a);
    if (c) {
        double *d = (double *)c->attr.data; /* graph-owned copy */
        for (int64_t i = 0; i < c->attr.ndata; i++) d[i] = ed_scalar_round(d[i], dt);
    }
    return c;
}

ed_node *ed_fill(ed_graph *g, ed_dtype dt, ed_shape shape, double value) { return ed_const(g, dt, shape, &value, 1); }

ed_node *ed_scalar(ed_graph *g, ed_dtype dt, double value) { return ed_fill(g, dt, ed_shape0(), value); }

ed_node *ed_scalar_like(const ed_node *x, double value) { return x ? ed_scalar(x->graph, x->dtype, value) : NULL; }

/* ---- elementwise ------------------------------------------------------------- */

static ed_node *op1(ed_op op, ed_node *x, const ed_attrs *a)
{
    ed_node *in[1] = {x};
    return ed_node_new(graph_of(x), op, in, 1, a);
}

static ed_node *op2(ed_op op, ed_node *x, ed_node *y)
{
    ed_node *in[2] = {x, y};
    return ed_node_new(graph_of(x) ? graph_of(x) : graph_of(y), op, in, 2, NULL);
}

ed_node *ed_add(ed_node *a, ed_node *b) { return op2(ED_OP_ADD, a, b); }
ed_node *ed_sub(ed_node *a, ed_node *b) { return op2(ED_OP_SUB, a, b); }
ed_node *ed_mul(ed_node *a, ed_node *b) { return op2(ED_OP_MUL, a, b); }
ed_node *ed_div(ed_node *a, ed_node *b) { return op2(ED_OP_DIV, a, b); }
ed_node *ed_pow(ed_node *a, ed_node *b) { return op2(ED_OP_POW, a, b); }
ed_node *ed_maximum(ed_node *a, ed_node *b) { return op2(ED_OP_MAXIMUM, a, b); }
ed_node *ed_minimum(ed_node *a, ed_node *b) { return op2(ED_OP_MINIMUM, a, b); }
ed_node *ed_lt(ed_node *a, ed_node *b) { return op2(ED_OP_LT, a, b); }
ed_node *ed_le(ed_node *a, ed_node *b) { return op2(ED_OP_LE, a, b); }
ed_node *ed_gt(ed_node *a, ed_node *b) { return op2(ED_OP_GT, a, b); }
ed_node *ed_ge(ed_node *a, ed_node *b) { return op2(ED_OP_GE, a, b); }
ed_node *ed_eq(ed_node *a, ed_node *b) { return op2(ED_OP_EQ, a, b); }

ed_node *ed_where(ed_node *cond, ed_node *a, ed_node *b)
{
    ed_node *in[3] = {cond, a, b};
    ed_graph *g = graph_of(cond) ? graph_of(cond) : graph_of(a) ? graph_of(a) : graph_of(b);
    return ed_node_new(g, ED_OP_WHERE, in, 3, NULL);
}

ed_node *ed_add_scalar(ed_node *x, double v) { return ed_add(x, ed_scalar_like(x, v)); }
ed_node *ed_mul_scalar(ed_node *x, double v) { return ed_mul(x, ed_scalar_like(x, v)); }

ed_node *ed_neg(ed_node *x) { return op1(ED_OP_NEG, x, NULL); }
ed_node *ed_abs(ed_node *x) { return op1(ED_OP_ABS, x, NULL); }
ed_node *ed_exp(ed_node *x) { return op1(ED_OP_EXP, x, NULL); }
ed_node *ed_expm1(ed_node *x) { return op1(ED_OP_EXPM1, x, NULL); }
ed_node *ed_log(ed_node *x) { return op1(ED_OP_LOG, x, NULL); }
ed_node *ed_log1p(ed_node *x) { return op1(ED_OP_LOG1P, x, NULL); }
ed_node *ed_sqrt(ed_node *x) { return op1(ED_OP_SQRT, x, NULL); }
ed_node *ed_rsqrt(ed_node *x) { return op1(ED_OP_RSQRT, x, NULL); }
ed_node *ed_square(ed_node *x) { return op1(ED_OP_SQUARE, x, NULL); }
ed_node *ed_tanh(ed_node *x) { return op1(ED_OP_TANH, x, NULL); }
ed_node *ed_sigmoid(ed_node *x) { return op1(ED_OP_SIGMOID, x, NULL); }
ed_node *ed_relu(ed_node *x) { return op1(ED_OP_RELU, x, NULL); }
ed_node *ed_erf(ed_node *x) { return op1(ED_OP_ERF, x, NULL); }
ed_node *ed_silu(ed_node *x) { return op1(ED_OP_SILU, x, NULL); }
ed_node *ed_softplus(ed_node *x) { return op1(ED_OP_SOFTPLUS, x, NULL); }
ed_node *ed_sin(ed_node *x) { return op1(ED_OP_SIN, x, NULL); }
ed_node *ed_cos(ed_node *x) { return op1(ED_OP_COS, x, NULL); }
ed_node *ed_sign(ed_node *x) { return op1(ED_OP_SIGN, x, NULL); }
ed_node *ed_stop_gradient(ed_node *x) { return op1(ED_OP_STOP_GRADIENT, x, NULL); }
ed_node *ed_allreduce(ed_node *x, bool mean) { return op1(mean ? ED_OP_ALLREDUCE_MEAN : ED_OP_ALLREDUCE_SUM, x, NULL); }

ed_node *ed_fused(ed_node *const *in, int nin, ed_graph *body)
{
    ed_graph *g = nin > 0 && in && in[0] ? in[0]->graph : NULL;
    if (g && !body) ed_graph_fail(g, "fused: no body graph");
    if (!g || !body || ed_graph_adopt(g, body) != ED_OK) return NULL; /* body stays the caller's */
    return ed_node_new(g, ED_OP_FUSED, in, nin, &(ed_attrs){.body = body});
}

ed_node *ed_leaky_relu(ed_node *x, double alpha) { return op1(ED_OP_LEAKY_RELU, x, &(ed_attrs){.alpha = alpha}); }

ed_node *ed_gelu(ed_node *x, bool tanh_approx)
{
    return op1(ED_OP_GELU, x, &(ed_attrs){.approx = tanh_approx ? 1 : 0});
}

ed_node *ed_clamp(ed_node *x, double lo, double hi) { return op1(ED_OP_CLAMP, x, &(ed_attrs){.lo = lo, .hi = hi}); }

ed_node *ed_pixels_to_signed(ed_node *x) { return ed_add_scalar(ed_mul_scalar(x, 2), -1); }

ed_node *ed_signed_to_pixels(ed_node *x) { return ed_clamp(ed_mul_scalar(ed_add_scalar(x, 1), 0.5), 0, 1); }

ed_node *ed_cast(ed_node *x, ed_dtype dt)
{
    return op1(ED_OP_CAST, x, &(ed_attrs){.dtype = dt, .shape = x ? x->shape : ed_shape0()});
}

/* ---- reductions ---------------------------------------------------------------- */

unsigned ed_axis_bit(const ed_node *x, int axis)
{
    if (!x) return 0;
    if (axis < 0) axis += x->shape.rank;
    /* An axis out of range gives a bit beyond the rank, which the shape rule reports. */
    if (axis < 0 || axis >= 31) return 1u << 31;
    return 1u << axis;
}

static ed_node *reduce(ed_op op, ed_node *x, unsigned axes, bool keepdims)
{
    if (x && axes == ED_ALL_AXES) axes = (1u << x->shape.rank) - 1;
    return op1(op, x, &(ed_attrs){.axes = axes, .keepdims = keepdims});
}

ed_node *ed_sum(ed_node *x, unsigned axes, bool keepdims) { return reduce(ED_OP_SUM, x, axes, keepdims); }
ed_node *ed_mean(ed_node *x, unsigned axes, bool keepdims) { return reduce(ED_OP_MEAN, x, axes, keepdims); }
ed_node *ed_max(ed_node *x, unsigned axes, bool keepdims) { return reduce(ED_OP_MAX, x, axes, keepdims); }
ed_node *ed_min(ed_node *x, unsigned axes, bool keepdims) { return reduce(ED_OP_MIN, x, axes, keepdims); }
ed_node *ed_argmax(ed_node *x, unsigned axes, bool keepdims) { return reduce(ED_OP_ARGMAX, x, axes, keepdims); }
ed_node *ed_argmin(ed_node *x, unsigned axes, bool keepdims) { return reduce(ED_OP_ARGMIN, x, axes, keepdims); }

/* ---- movement ------------------------------------------------------------------ */

ed_node *ed_reshape(ed_node *x, ed_shape shape)
{
    if (!x) return NULL;
    int infer = -1;
    int64_t known = 1;
    for (int i = 0; i < shape.rank && i < ED_MAX_RANK; i++) {
        if (shape.dim[i] == -1 && infer < 0) infer = i;
        else known *= shape.dim[i];
    }
    if (infer >= 0) {
        int64_t total = ed_shape_numel(x->shape);
        if (known <= 0 || total % known) {
            char t[96];
            return ed_graph_fail(x->graph,
                                 "reshape: cannot infer the -1 dim: %s has %lld elements, not a multiple of %lld",
                                 ed_node_type_str(x, t, sizeof t), (long long)total, (long long)known);
        }
        shape.dim[infer] = total / known;
    }
    return op1(ED_OP_RESHAPE, x, &(ed_attrs){.dtype = x->dtype, .shape = shape});
}

ed_node *ed_transpose(ed_node *x, const int *perm)
{
    if (!x) return NULL;
    ed_attrs a = {0};
    for (int i = 0; i < x->shape.rank; i++) a.perm[i] = perm ? perm[i] : x->shape.rank - 1 - i;
    return op1(ED_OP_TRANSPOSE, x, &a);
}

ed_node *ed_transpose_last2(ed_node *x)
{
    if (!x) return NULL;
    int perm[ED_MAX_RANK];
    int r = x->shape.rank;
    for (int i = 0; i < r; i++) perm[i] = i;
    if (r >= 2) perm[r - 2] = r - 1, perm[r - 1] = r - 2;
    return ed_transpose(x, perm);
}

ed_node *ed_broadcast_to(ed_node *x, ed_shape shape)
{
    if (!x) return NULL;
    return op1(ED_OP_BROADCAST_TO, x, &(ed_attrs){.dtype = x->dtype, .shape = shape});
}

/* Python slice normalization for a positive step. */
static int64_t clip_index(int64_t i, int64_t dim)
{
    if (i < 0) i += dim;
    if (i < 0) return 0;
    return i > dim ? dim : i;
}

ed_node *ed_slice(ed_node *x, const int64_t *start, const int64_t *stop, const int64_t *step)
{
    if (!x) return NULL;
    ed_attrs a = {0};
    for (int i = 0; i < x->shape.rank; i++) {
        int64_t d = x->shape.dim[i];
        a.start[i] = clip_index(start ? start[i] : 0, d);
        a.stop[i] = clip_index(stop ? stop[i] : d, d);
        if (a.stop[i] < a.start[i]) a.stop[i] = a.start[i]; /* empty, as in Python */
        a.step[i] = step ? step[i] : 1;
    }
    return op1(ED_OP_SLICE, x, &a);
}

ed_node *ed_slice_axis(ed_node *x, int axis, int64_t start, int64_t stop)
{
    if (!x) return NULL;
    int r = x->shape.rank;
    if (axis < 0) axis += r;
    if (axis < 0 || axis >= r) {
        char t[96];
        return ed_graph_fail(x->graph, "slice: axis out of range for %s", ed_node_type_str(x, t, sizeof t));
    }
    int64_t b[ED_MAX_RANK], e[ED_MAX_RANK];
    for (int i = 0; i < r; i++) b[i] = 0, e[i] = x->shape.dim[i];
    b[axis] = start;
    e[axis] = stop;
    return ed_slice(x, b, e, NULL);
}

ed_node *ed_concat(ed_node *const *xs, int n, int axis)
{
    ed_graph *g = NULL;
    for (int i = 0; i < n && !g; i++) g = graph_of(xs[i]);
    if (!g || n < 1) return NULL;
    if (xs[0] && axis < 0) axis += xs[0]->shape.rank;
    return ed_node_new(g, ED_OP_CONCAT, xs, n, &(ed_attrs){.axis = axis});
}

ed_node *ed_pad(ed_node *x, const int64_t *lo, const int64_t *hi, double value)
{
    if (!x) return NULL;
    ed_attrs a = {.pad_value = ed_scalar_round(value, x->dtype)};
    for (int i = 0; i < x->shape.rank; i++) {
        a.pad_lo[i] = lo ? lo[i] : 0;
        a.pad_hi[i] = hi ? hi[i] : 0;
    }
    return op1(ED_OP_PAD, x, &a);
}

/* ---- indexing ------------------------------------------------------------------ */

ed_node *ed_gather(ed_node *x, ed_node *idx, int axis)
{
    if (x && axis < 0) axis += x->shape.rank;
    ed_node *in[2] = {x, idx};
    return ed_node_new(graph_of(x) ? graph_of(x) : graph_of(idx), ED_OP_GATHER, in, 2, &(ed_attrs){.axis = axis});
}

ed_node *ed_one_hot(ed_node *idx, int64_t depth, ed_dtype dt)
{
    if (!idx) return NULL;
    if (depth < 0 || idx->shape.rank >= ED_MAX_RANK) {
        char t[96];
        return ed_graph_fail(idx->graph, "one_hot: depth %lld on %s needs depth >= 0 and rank < %d", (long long)depth,
                             ed_node_type_str(idx, t, sizeof t), ED_MAX_RANK);
    }
    ed_shape s = idx->shape;
    s.dim[s.rank++] = depth;
    return op1(ED_OP_ONE_HOT, idx, &(ed_attrs){.dtype = dt, .shape = s});
}

ed_node *ed_scatter_add(ed_node *base, ed_node *idx, ed_node *updates, int axis)
{
    if (base && axis < 0) axis += base->shape.rank;
    ed_node *in[3] = {base, idx, updates};
    ed_graph *g = graph_of(base) ? graph_of(base) : graph_of(idx) ? graph_of(idx) : graph_of(updates);
    return ed_node_new(g, ED_OP_SCATTER_ADD, in, 3, &(ed_attrs){.axis = axis});
}

/* ---- matmul -------------------------------------------------------------------- */

ed_node *ed_matmul_t(ed_node *a, ed_node *b, bool transpose_a, bool transpose_b)
{
    ed_node *in[2] = {a, b};
    return ed_node_new(graph_of(a) ? graph_of(a) : graph_of(b), ED_OP_MATMUL, in, 2,
                       &(ed_attrs){.ta = transpose_a, .tb = transpose_b});
}

ed_node *ed_matmul(ed_node *a, ed_node *b) { return ed_matmul_t(a, b, false, false); }

/* ---- random ---------------------------------------------------------------------- */

ed_node *ed_rand(ed_graph *g, ed_dtype dt, ed_shape shape, double lo, double hi)
{
    return g ? ed_node_new(g, ED_OP_RAND, NULL, 0, &(ed_attrs){.lo = lo, .hi = hi, .dtype = dt, .shape = shape}) : NULL;
}

ed_node *ed_randn(ed_graph *g, ed_dtype dt, ed_shape shape)
{
    return g ? ed_node_new(g, ED_OP_RANDN, NULL, 0, &(ed_attrs){.dtype = dt, .shape = shape}) : NULL;
}

ed_node *ed_randint(ed_graph *g, ed_shape shape, int64_t lo, int64_t hi)
{
    return g ? ed_node_new(g, ED_OP_RANDINT, NULL, 0,
                           &(ed_attrs){.lo = (double)lo, .hi = (double)hi, .dtype = ED_I32, .shape = shape})
             : NULL;
}

ed_node *ed_bernoulli(ed_graph *g, ed_dtype dt, ed_shape shape, double p)
{
    return g ? ed_node_new(g, ED_OP_BERNOULLI, NULL, 0, &(ed_attrs){.p = p, .dtype = dt, .shape = shape}) : NULL;
}
