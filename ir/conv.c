/* Shape rules and geometry of the convolution ops. conv2d's rule is the one place that
 * says which (input, kernel, attributes) make a valid convolution; the other two ops
 * state theirs by the forward conv2d they are the adjoints of. */
#include "ir/conv.h"
#include "ir/rule.h"

#include <stdarg.h>
#include <stdio.h>

static bool check_pair(const int64_t *v, int64_t lo, const char *name, char *msg, size_t size)
{
    for (int i = 0; i < 2; i++)
        if (v[i] < lo || v[i] > ED_CONV_MAX_ATTR)
            return ed_rule_fail(msg, size, "%s must be in [%lld, 2^20], got [%lld, %lld]", name, (long long)lo,
                                (long long)v[0], (long long)v[1]);
    return true;
}

static bool check_attrs(ed_op op, const ed_attrs *a, char *msg, size_t size)
{
    if (!check_pair(a->stride, 1, "stride", msg, size) || !check_pair(a->padding, 0, "padding", msg, size) ||
        !check_pair(a->dilation, 1, "dilation", msg, size))
        return false;
    if (a->groups < 1 || a->groups > ED_CONV_MAX_ATTR)
        return ed_rule_fail(msg, size, "groups must be in [1, 2^20], got %lld", (long long)a->groups);
    if (op == ED_OP_CONV2D_WEIGHT_GRAD && !check_pair(a->kernel, 1, "kernel", msg, size)) return false;
    if (op == ED_OP_CONV_TRANSPOSE2D) {
        for (int i = 0; i < 2; i++)
            if (a->out_pad[i] < 0 || a->out_pad[i] >= a->stride[i])
                return ed_rule_fail(msg, size,
                                    "output_padding must be in [0, stride), got [%lld, %lld] with stride [%lld, %lld]",
                                    (long long)a->out_pad[0], (long long)a->out_pad[1], (long long)a->stride[0],
                                    (long long)a->stride[1]);
    }
    return true;
}

/* Both operands: rank 4, one float dtype. */
static bool check_operands(ed_op op, const ed_node *x, const ed_node *y, const char *xs, const char *ys, char *msg,
                           size_t size)
{
    if (x->shape.rank != 4 || y->shape.rank != 4)
        return ed_rule_fail(msg, size, "needs %s and %s of rank 4, got %s and %s", xs, ys, ed_rule_type(x),
                            ed_rule_type(y));
    if (x->dtype != y->dtype)
        return ed_rule_fail(msg, size, "dtypes differ: %s and %s", ed_rule_type(x), ed_rule_type(y));
    if ((ed_ops[op].flags & F_FLOAT) && !ed_dtype_is_float(x->dtype))
        return ed_rule_fail(msg, size, "needs a float dtype, got %s (use cast)", ed_rule_type(x));
    return true;
}

/* The output size of conv2d along one axis, or -1 when the dilated kernel does not fit
 * the padded input. */
static int64_t conv_out(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d)
{
    int64_t span = d * (k - 1) + 1, padded = in + 2 * p;
    return padded < span ? -1 : (padded - span) / s + 1;
}

/* The forward conv2d's spatial output for input x of h x w, kernel kh x kw. */
static bool forward_out(const ed_node *x, int64_t kh, int64_t kw, const ed_attrs *a, int64_t *oh, int64_t *ow,
                        char *msg, size_t size)
{
    *oh = conv_out(x->shape.dim[2], kh, a->stride[0], a->padding[0], a->dilation[0]);
    *ow = conv_out(x->shape.dim[3], kw, a->stride[1], a->padding[1], a->dilation[1]);
    if (*oh < 0 || *ow < 0)
        return ed_rule_fail(
            msg, size,
            "the kernel %lldx%lld with dilation [%lld, %lld] spans %lldx%lld, more than the input %s padded by "
            "[%lld, %lld]",
            (long long)kh, (long long)kw, (long long)a->dilation[0], (long long)a->dilation[1],
            (long long)(a->dilation[0] * (kh - 1) + 1), (long long)(a->dilation[1] * (kw - 1) + 1), ed_rule_type(x),
            (long long)a->padding[0], (long long)a->padding[1]);
    return true;
}

static bool check_groups(int64_t channels, const char *what, const ed_node *v, int64_t groups, char *msg, size_t size)
{
    if (channels % groups)
        return ed_rule_fail(msg, size, "groups %lld does not divide the %lld %s channels of %s", (long long)groups,
                            (long long)channels, what, ed_rule_type(v));
    return true;
}

/* conv2d(x [N,C,H,W], w [O,C/groups,KH,KW]) -> [N,O,OH,OW] */
static bool rule_conv2d(const ed_node *x, const ed_node *w, const ed_attrs *a, ed_shape *out, char *msg, size_t size)
{
    int64_t c = x->shape.dim[1], o = w->shape.dim[0], kh = w->shape.dim[2], kw = w->shape.dim[3], oh, ow;
    if (!check_groups(c, "input", x, a->groups, msg, size) || !check_groups(o, "output", w, a->groups, msg, size))
        return false;
    if (w->shape.dim[1] != c / a->groups)
        return ed_rule_fail(msg, size, "weight %s needs dim 1 = input channels / groups = %lld (input %s, groups %lld)",
                            ed_rule_type(w), (long long)(c / a->groups), ed_rule_type(x), (long long)a->groups);
    if (kh < 1 || kw < 1) return ed_rule_fail(msg, size, "weight %s has an empty kernel", ed_rule_type(w));
    if (!forward_out(x, kh, kw, a, &oh, &ow, msg, size)) return false;
    *out = ed_shape4(x->shape.dim[0], o, oh, ow);
    return true;
}

/* conv_transpose2d(y [N,O,OH,OW], w [O,C/groups,KH,KW]) -> x [N,C,H,W], the largest H
 * whose conv2d gives OH plus out_pad: H = (OH-1) sh - 2 ph + dh (KH-1) + 1 + out_pad. */
static bool rule_conv_transpose(const ed_node *y, const ed_node *w, const ed_attrs *a, ed_shape *out, char *msg,
                                size_t size)
{
    int64_t o = y->shape.dim[1], kh = w->shape.dim[2], kw = w->shape.dim[3];
    if (w->shape.dim[0] != o)
        return ed_rule_fail(msg, size, "weight %s needs dim 0 = the input's %lld channels (input %s)", ed_rule_type(w),
                            (long long)o, ed_rule_type(y));
    if (!check_groups(o, "input", y, a->groups, msg, size)) return false;
    if (kh < 1 || kw < 1) return ed_rule_fail(msg, size, "weight %s has an empty kernel", ed_rule_type(w));
    if (y->shape.dim[2] < 1 || y->shape.dim[3] < 1)
        return ed_rule_fail(msg, size, "input %s has no rows or columns", ed_rule_type(y));
    int64_t hw[2];
    for (int i = 0; i < 2; i++) {
        int64_t k = w->shape.dim[2 + i];
        hw[i] = (y->shape.dim[2 + i] - 1) * a->stride[i] - 2 * a->padding[i] + a->dilation[i] * (k - 1) + 1 +
                a->out_pad[i];
    }
    if (hw[0] < 1 || hw[1] < 1)
        return ed_rule_fail(msg, size, "padding [%lld, %lld] leaves an output of %lldx%lld for input %s",
                            (long long)a->padding[0], (long long)a->padding[1], (long long)hw[0], (long long)hw[1],
                            ed_rule_type(y));
    *out = ed_shape4(y->shape.dim[0], w->shape.dim[1] * a->groups, hw[0], hw[1]);
    return true;
}

/* conv2d_weight_grad(x [N,C,H,W], dy [N,O,OH,OW]) -> [O,C/groups,KH,KW], dy being
 * the shape conv2d of x with that kernel gives. */
static bool rule_weight_grad(const ed_node *x, const ed_node *dy, const ed_attrs *a, ed_shape *out, char *msg,
                             size_t size)
{
    int64_t c = x->shape.dim[1], o = dy->shape.dim[1], oh, ow;
    if (x->shape.dim[0] != dy->shape.dim[0])
        return ed_rule_fail(msg, size, "batch sizes differ: %s and %s", ed_rule_type(x), ed_rule_type(dy));
    if (!check_groups(c, "input", x, a->groups, msg, size) || !check_groups(o, "output", dy, a->groups, msg, size))
        return false;
    if (!forward_out(x, a->kernel[0], a->kernel[1], a, &oh, &ow, msg, size)) return false;
    if (dy->shape.dim[2] != oh || dy->shape.dim[3] != ow)
        return ed_rule_fail(msg, size, "dy %s is not conv2d's output for %s with kernel %lldx%lld (%lldx%lld)",
                            ed_rule_type(dy), ed_rule_type(x), (long long)a->kernel[0], (long long)a->kernel[1],
                            (long long)oh, (long long)ow);
    *out = ed_shape4(o, c / a->groups, a->kernel[0], a->kernel[1]);
    return true;
}

bool ed_conv_rule(ed_op op, ed_node *const *in, int nin, const ed_attrs *a, ed_dtype *dt, ed_shape *out, char *msg,
                  size_t size)
{
    (void)nin;
    static const char *const names[][2] = {{"x", "w"}, {"y", "w"}, {"x", "dy"}};
    int k = op == ED_OP_CONV2D ? 0 : op == ED_OP_CONV_TRANSPOSE2D ? 1 : 2;
    if (!check_operands(op, in[0], in[1], names[k][0], names[k][1], msg, size) || !check_attrs(op, a, msg, size))
        return false;
    bool ok = k == 0   ? rule_conv2d(in[0], in[1], a, out, msg, size)
              : k == 1 ? rule_conv_transpose(in[0], in[1], a, out, msg, size)
                       : rule_weight_grad(in[0], in[1], a, out, msg, size);
    *dt = in[0]->dtype;
    return ok;
}

ed_conv_geom ed_conv_geom_of(const ed_node *n)
{
    /* x, w and y of the forward conv2d, whichever of them n computes. */
    ed_shape x, w, y;
    if (n->op == ED_OP_CONV2D) x = n->in[0]->shape, w = n->in[1]->shape, y = n->shape;
    else if (n->op == ED_OP_CONV_TRANSPOSE2D) y = n->in[0]->shape, w = n->in[1]->shape, x = n->shape;
    else x = n->in[0]->shape, y = n->in[1]->shape, w = n->shape;
    const ed_attrs *a = &n->attr;
    ed_conv_geom g = {
        .n = x.dim[0],
        .c = x.dim[1],
        .h = x.dim[2],
        .w = x.dim[3],
        .o = y.dim[1],
        .oh = y.dim[2],
        .ow = y.dim[3],
        .kh = w.dim[2],
        .kw = w.dim[3],
        .sh = a->stride[0],
        .sw = a->stride[1],
        .ph = a->padding[0],
        .pw = a->padding[1],
        .dh = a->dilation[0],
        .dw = a->dilation[1],
        .groups = a->groups,
    };
    g.cg = g.c / g.groups;
    g.og = g.o / g.groups;
    return g;
}

bool ed_conv_gemm_default(const ed_conv_geom *g) { return g->cg * g->og > 1; }
