/* Constructors of the convolution ops, and pooling and upsampling built from them and
 * from movement ops (so they need no kernels, VJPs or lowerings of their own). */
#include "frontend/frontend.h"

static ed_graph *graph_of2(const ed_node *a, const ed_node *b) { return a ? a->graph : b ? b->graph : NULL; }

static int64_t or_default(int64_t v, int64_t dflt) { return v ? v : dflt; }

static ed_attrs conv_attrs(const ed_conv_opts *o)
{
    ed_conv_opts z = {0};
    if (!o) o = &z;
    ed_attrs a = {.groups = or_default(o->groups, 1)};
    for (int i = 0; i < 2; i++) {
        a.stride[i] = or_default(o->stride[i], 1);
        a.padding[i] = o->padding[i];
        a.dilation[i] = or_default(o->dilation[i], 1);
        a.out_pad[i] = o->output_padding[i];
    }
    return a;
}

static ed_node *conv_op(ed_op op, ed_node *a, ed_node *b, const ed_attrs *attrs)
{
    ed_graph *g = graph_of2(a, b);
    return g ? ed_node_new(g, op, (ed_node *[]){a, b}, 2, attrs) : NULL;
}

ed_node *ed_conv2d(ed_node *x, ed_node *w, const ed_conv_opts *o)
{
    ed_attrs a = conv_attrs(o);
    a.out_pad[0] = a.out_pad[1] = 0; /* conv_transpose2d's alone */
    return conv_op(ED_OP_CONV2D, x, w, &a);
}

ed_node *ed_conv_transpose2d(ed_node *y, ed_node *w, const ed_conv_opts *o)
{
    ed_attrs a = conv_attrs(o);
    return conv_op(ED_OP_CONV_TRANSPOSE2D, y, w, &a);
}

ed_node *ed_conv2d_weight_grad(ed_node *x, ed_node *dy, int64_t kh, int64_t kw, const ed_conv_opts *o)
{
    ed_attrs a = conv_attrs(o);
    a.out_pad[0] = a.out_pad[1] = 0;
    a.kernel[0] = kh;
    a.kernel[1] = kw;
    return conv_op(ED_OP_CONV2D_WEIGHT_GRAD, x, dy, &a);
}

ed_node *ed_avg_pool2d(ed_node *x, int64_t kh, int64_t kw, const ed_conv_opts *o)
{
    if (!x) return NULL;
    ed_graph *g = x->graph;
    ed_shape s = x->shape;
    if (s.rank != 4) {
        char t[96];
        return ed_graph_fail(g, "avg_pool2d: needs x of rank 4 [N,C,H,W], got %s", ed_node_type_str(x, t, sizeof t));
    }
    if (kh < 1 || kw < 1)
        return ed_graph_fail(g, "avg_pool2d: kernel must be >= 1, got %lldx%lld", (long long)kh, (long long)kw);
    ed_conv_opts p = {.stride = {kh, kw}};
    if (o) p.stride[0] = or_default(o->stride[0], kh), p.stride[1] = or_default(o->stride[1], kw);
    if (o) p.padding[0] = o->padding[0], p.padding[1] = o->padding[1];
    /* Each channel as its own image, summed by a ones kernel (exact), divided by the count. */
    ed_node *flat = ed_reshape(x, ed_shape4(s.dim[0] * s.dim[1], 1, s.dim[2], s.dim[3]));
    ed_node *ones = ed_fill(g, x->dtype, ed_shape4(1, 1, kh, kw), 1);
    ed_node *sum = ed_conv2d(flat, ones, &p);
    if (!sum) return NULL;
    ed_node *mean = ed_div(sum, ed_scalar_like(x, (double)(kh * kw)));
    return ed_reshape(mean, ed_shape4(s.dim[0], s.dim[1], sum->shape.dim[2], sum->shape.dim[3]));
}

ed_node *ed_upsample_nearest2d(ed_node *x, int64_t sh, int64_t sw)
{
    if (!x) return NULL;
    ed_shape s = x->shape;
    if (s.rank != 4) {
        char t[96];
        return ed_graph_fail(x->graph, "upsample_nearest2d: needs x of rank 4 [N,C,H,W], got %s",
                             ed_node_type_str(x, t, sizeof t));
    }
    if (sh < 1 || sw < 1 || sh > (1 << 20) || sw > (1 << 20))
        return ed_graph_fail(x->graph, "upsample_nearest2d: scale must be in [1, 2^20], got %lldx%lld", (long long)sh,
                             (long long)sw);
    ed_shape six = {.rank = 6, .dim = {s.dim[0], s.dim[1], s.dim[2], 1, s.dim[3], 1}};
    ed_node *r = ed_reshape(x, six);
    six.dim[3] = sh;
    six.dim[5] = sw;
    return ed_reshape(ed_broadcast_to(r, six), ed_shape4(s.dim[0], s.dim[1], s.dim[2] * sh, s.dim[3] * sw));
}
