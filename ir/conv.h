/* The geometry of the convolution ops (conv2d, conv_transpose2d, conv2d_weight_grad),
 * always stated as the forward conv2d they belong to: x [n,c,h,w] * w [o,c/groups,kh,kw]
 * -> y [n,o,oh,ow]. Every backend indexes through it, so they agree on the rule:
 * y[n,o,i,j] = sum over (c in o's group, p, q) of x[n,c,i*sh-ph+p*dh, j*sw-pw+q*dw] w[o,c',p,q],
 * with x zero outside [0,h) x [0,w). */
#ifndef ED_IR_CONV_H
#define ED_IR_CONV_H

#include "ir/ir.h"

/* Attribute values (strides, padding, dilation, groups, kernel) stop here. */
#define ED_CONV_MAX_ATTR (1 << 20)

typedef struct {
    int64_t n, c, h, w; /* the input x */
    int64_t o, oh, ow;  /* the output y */
    int64_t kh, kw;     /* the kernel */
    int64_t sh, sw, ph, pw, dh, dw;
    int64_t groups;
    int64_t cg, og; /* channels per group: c / groups, o / groups */
} ed_conv_geom;

/* The geometry of convolution node n (one of the three ops). */
ed_conv_geom ed_conv_geom_of(const ed_node *n);

/* Does a backend run g as im2col + sgemm by default (f32): unless each group has one input
 * and one output channel (pooling, depthwise; bench/HISTORY.md, "conv layers")? The fuse
 * pass asks it too: a chain after such a conv runs in the conv's pass. */
bool ed_conv_gemm_default(const ed_conv_geom *g);

/* Shape rules of the three ops (ir/shape.c's table). */
bool ed_conv_rule(ed_op op, ed_node *const *in, int nin, const ed_attrs *a, ed_dtype *dt, ed_shape *out, char *msg,
                  size_t size);

#endif
