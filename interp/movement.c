/* Movement ops: each walks one shape in C order and copies elements between strided
 * positions (bit copies: the dtype never changes). */
#include "interp/iter.h"
#include "interp/kernels.h"

/* Copy every element of a walk: operand 0 indexes dst, operand 1 indexes src. */
static void copy_walk(ed_iter *it, ed_tensor *dst, const ed_tensor *src)
{
    int64_t total = 1;
    for (int a = 0; a < it->rank; a++) total *= it->dim[a];
    ed_iter_rewind(it);
    for (int64_t i = 0; i < total; i++, ed_iter_next(it)) interp_copy_elem(dst, it->off[0], src, it->off[1]);
}

/* A walk over shape s whose operand 0 writes a C-order tensor of that shape. */
static void init_dense_dst(ed_iter *it, ed_shape s)
{
    ed_iter_init(it, s, 2);
    ed_shape_strides(s, it->stride[0]);
}

ED_KERNEL(ed_k_reshape)
{
    (void)n, (void)ctx;
    size_t bytes = ed_tensor_bytes(out);
    if (bytes) memcpy(out->data, in[0]->data, bytes);
}

/* Output axis i is input axis perm[i]. */
ED_KERNEL(ed_k_transpose)
{
    (void)ctx;
    int64_t xs[ED_MAX_RANK];
    ed_shape_strides(in[0]->shape, xs);
    ed_iter it;
    init_dense_dst(&it, out->shape);
    for (int a = 0; a < out->shape.rank; a++) it.stride[1][a] = xs[n->attr.perm[a]];
    copy_walk(&it, out, in[0]);
}

ED_KERNEL(ed_k_broadcast_to)
{
    (void)n, (void)ctx;
    ed_iter it;
    init_dense_dst(&it, out->shape);
    ed_iter_bcast_strides(it.stride[1], in[0]->shape, out->shape);
    copy_walk(&it, out, in[0]);
}

/* Output index i on axis a reads input index start + i * step. */
ED_KERNEL(ed_k_slice)
{
    (void)ctx;
    int64_t xs[ED_MAX_RANK];
    ed_shape_strides(in[0]->shape, xs);
    ed_iter it;
    init_dense_dst(&it, out->shape);
    for (int a = 0; a < out->shape.rank; a++) {
        it.stride[1][a] = xs[a] * n->attr.step[a];
        it.base[1] += xs[a] * n->attr.start[a];
    }
    copy_walk(&it, out, in[0]);
}

/* Each input is walked over its own shape and lands at its running offset on the axis. */
ED_KERNEL(ed_k_concat)
{
    (void)ctx;
    int ax = n->attr.axis;
    int64_t os[ED_MAX_RANK], at = 0;
    ed_shape_strides(out->shape, os);
    for (int k = 0; k < n->nin; k++) {
        const ed_tensor *x = in[k];
        ed_iter it;
        ed_iter_init(&it, x->shape, 2);
        for (int a = 0; a < x->shape.rank; a++) it.stride[0][a] = os[a];
        ed_shape_strides(x->shape, it.stride[1]);
        it.base[0] = at * os[ax];
        copy_walk(&it, out, x);
        at += x->shape.dim[ax];
    }
}

/* Fill with pad_value, then copy the input into the interior. */
ED_KERNEL(ed_k_pad)
{
    (void)ctx;
    int64_t total = ed_shape_numel(out->shape);
    for (int64_t i = 0; i < total; i++) interp_set(out, i, n->attr.pad_value);
    int64_t os[ED_MAX_RANK];
    ed_shape_strides(out->shape, os);
    ed_iter it;
    ed_iter_init(&it, in[0]->shape, 2);
    for (int a = 0; a < out->shape.rank; a++) {
        it.stride[0][a] = os[a];
        it.base[0] += os[a] * n->attr.pad_lo[a];
    }
    ed_shape_strides(in[0]->shape, it.stride[1]);
    copy_walk(&it, out, in[0]);
}
