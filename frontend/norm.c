/* Mode-dependent nn blocks: batch norm (batch or running statistics) and dropout. */
#include "frontend/norm.h"
#include "frontend/nn.h"

#include <math.h>
#include <stdio.h>

/* "scope.leaf" into buf; false (with a graph error) if it does not fit. */
static bool scoped_name(ed_graph *g, const char *leaf, char *buf, size_t size)
{
    const char *scope = ed_scope(g);
    int n = snprintf(buf, size, "%s%s%s", scope, scope[0] ? "." : "", leaf);
    if (n < 0 || (size_t)n >= size) {
        ed_graph_fail(g, "batch_norm: name \"%s.%s\" is too long", scope, leaf);
        return false;
    }
    return true;
}

static ed_node *leaf(ed_graph *g, ed_op kind, const char *name, ed_dtype dt, ed_shape s, ed_init_kind init)
{
    return ed_scoped_leaf(g, kind, name, dt, s, (ed_init){.kind = init});
}

/* Bind "scope.leaf" = v. */
static void update(ed_graph *g, const char *name, ed_node *v)
{
    char full[512];
    if (v && scoped_name(g, name, full, sizeof full)) ed_update(g, full, v);
}

/* v [C] as x's broadcast shape for the feature axis: itself when that axis is the last,
 * else [1, C, 1, ...] (the NCHW channel axis). */
static ed_node *along(ed_node *v, const ed_node *x, int axis)
{
    if (axis == x->shape.rank - 1) return v;
    ed_shape s = x->shape;
    for (int i = 0; i < s.rank; i++) s.dim[i] = i == axis ? x->shape.dim[axis] : 1;
    return ed_reshape(v, s);
}

static ed_node *batch_norm_body(ed_node *x, int axis, double eps, double momentum, bool affine)
{
    ed_graph *g = x->graph;
    int r = x->shape.rank;
    int64_t c = x->shape.dim[axis], n = ed_shape_numel(x->shape) / (c ? c : 1);
    unsigned rows = ED_ALL_AXES & ~(1u << axis) & ((1u << r) - 1);
    ed_shape fs = ed_shape1(c);
    ed_node *mean_r = leaf(g, ED_OP_STATE, "running_mean", x->dtype, fs, ED_INIT_ZEROS);
    ed_node *var_r = leaf(g, ED_OP_STATE, "running_var", x->dtype, fs, ED_INIT_ONES);
    ed_node *mean, *var;
    if (ed_graph_training(g)) {
        if (n < 2)
            return ed_graph_fail(g, "batch_norm: training needs at least 2 values per feature, x has %lld (in \"%s\")",
                                 (long long)n, ed_scope(g));
        mean = ed_mean(x, rows, false);
        var = ed_mean(ed_square(ed_sub(x, along(mean, x, axis))), rows, false); /* biased: divides by n */
        ed_node *batch_mean = ed_stop_gradient(mean);
        ed_node *unbiased = ed_mul_scalar(ed_stop_gradient(var), (double)n / (double)(n - 1));
        update(g, "running_mean", ed_add(ed_mul_scalar(mean_r, 1 - momentum), ed_mul_scalar(batch_mean, momentum)));
        update(g, "running_var", ed_add(ed_mul_scalar(var_r, 1 - momentum), ed_mul_scalar(unbiased, momentum)));
    } else {
        mean = mean_r, var = var_r;
    }
    ed_node *y = ed_mul(ed_sub(x, along(mean, x, axis)), along(ed_rsqrt(ed_add_scalar(var, eps)), x, axis));
    if (!affine) return y;
    ed_node *gain = leaf(g, ED_OP_PARAM, "g", x->dtype, fs, ED_INIT_ONES);
    return ed_add(ed_mul(y, along(gain, x, axis)),
                  along(leaf(g, ED_OP_PARAM, "b", x->dtype, fs, ED_INIT_ZEROS), x, axis));
}

static ed_node *batch_norm(ed_node *x, int axis, const char *name, double eps, double momentum, bool affine)
{
    ed_graph *g = x->graph;
    ed_scope_push(g, name);
    if (ed_graph_error(g)) return NULL;
    ed_node *y = batch_norm_body(x, axis, eps, momentum, affine);
    if (y && !y->name) ed_set_name(y, ed_scope(g));
    ed_scope_pop(g);
    return y;
}

/* The checks both entry points share; false with g's error set. */
static bool check_args(ed_node *x, const char *what, int min_rank, const char *layout, const char *name, double eps,
                       double momentum)
{
    if (!x || ed_graph_error(x->graph)) return false;
    ed_graph *g = x->graph;
    char t[96];
    ed_node_type_str(x, t, sizeof t);
    if (!ed_dtype_is_float(x->dtype) || x->shape.rank < min_rank) {
        ed_graph_fail(g, "%s: x is %s, needs f32 or f64 of rank >= %d (%s)", what, t, min_rank, layout);
        return false;
    }
    if (!(eps >= 0 && eps < INFINITY) || !(momentum >= 0 && momentum <= 1)) {
        ed_graph_fail(g, "%s: eps (%g) must be finite and >= 0, momentum (%g) in [0, 1]", what, eps, momentum);
        return false;
    }
    if (!name || !name[0]) {
        ed_graph_fail(g, "%s: needs a block name", what);
        return false;
    }
    return true;
}

ed_node *ed_batch_norm(ed_node *x, const char *name, double eps, double momentum, bool affine)
{
    if (!check_args(x, "batch_norm", 2, "[..., C]", name, eps, momentum)) return NULL;
    return batch_norm(x, x->shape.rank - 1, name, eps, momentum, affine);
}

ed_node *ed_batch_norm2d(ed_node *x, const char *name, double eps, double momentum, bool affine)
{
    if (!check_args(x, "batch_norm2d", 3, "[N, C, ...]", name, eps, momentum)) return NULL;
    return batch_norm(x, 1, name, eps, momentum, affine);
}

ed_node *ed_dropout(ed_node *x, double rate)
{
    if (!x || ed_graph_error(x->graph)) return NULL;
    if (!ed_dtype_is_float(x->dtype)) {
        char t[96];
        ed_node_type_str(x, t, sizeof t);
        return ed_graph_fail(x->graph, "dropout: x is %s, needs f32 or f64", t);
    }
    if (!(rate >= 0 && rate < 1)) return ed_graph_fail(x->graph, "dropout: rate must be in [0, 1), got %g", rate);
    if (rate == 0 || !ed_graph_training(x->graph)) return x;
    ed_node *keep = ed_bernoulli(x->graph, x->dtype, x->shape, 1 - rate);
    return ed_mul(x, ed_mul_scalar(keep, 1 / (1 - rate)));
}
