/* Indexing ops. gather and scatter_add view their data as [outer, axis, inner] and
 * the indices as one flat list, which is exactly numpy take's layout:
 * out[o, i, r] = x[o, idx[i], r]. */
#include "interp/iter.h"
#include "interp/kernels.h"

/* numpy take with indices clamped into [0, dim - 1]. */
ED_KERNEL(ed_k_gather)
{
    (void)ctx;
    const ed_tensor *x = in[0], *idx = in[1];
    ed_axis_view v = ed_axis_view_of(x->shape, n->attr.axis);
    int64_t ni = ed_tensor_numel(idx);
    if (v.dim == 0) return; /* the shape rule allows this only when out is empty */
    for (int64_t o = 0; o < v.outer; o++)
        for (int64_t i = 0; i < ni; i++) {
            int64_t j = ((const int32_t *)idx->data)[i];
            j = j < 0 ? 0 : j >= v.dim ? v.dim - 1 : j;
            for (int64_t r = 0; r < v.inner; r++)
                interp_copy_elem(out, (o * ni + i) * v.inner + r, x, (o * v.dim + j) * v.inner + r);
        }
}

/* base plus updates added at their indices; repeated indices add up (in index order,
 * each sum rounded to the dtype), out-of-range indices are dropped. */
ED_KERNEL(ed_k_scatter_add)
{
    (void)ctx;
    const ed_tensor *base = in[0], *idx = in[1], *upd = in[2];
    size_t bytes = ed_tensor_bytes(out);
    if (bytes) memcpy(out->data, base->data, bytes);
    ed_axis_view v = ed_axis_view_of(base->shape, n->attr.axis);
    int64_t ni = ed_tensor_numel(idx);
    for (int64_t o = 0; o < v.outer; o++)
        for (int64_t i = 0; i < ni; i++) {
            int64_t j = ((const int32_t *)idx->data)[i];
            if (j < 0 || j >= v.dim) continue;
            for (int64_t r = 0; r < v.inner; r++) {
                int64_t at = (o * v.dim + j) * v.inner + r;
                interp_set(out, at, interp_get(out, at) + interp_get(upd, (o * ni + i) * v.inner + r));
            }
        }
}

/* out[..., d] = 1 where d == idx[...]; an index outside [0, depth) gives a zero row. */
ED_KERNEL(ed_k_one_hot)
{
    (void)n, (void)ctx;
    const ed_tensor *idx = in[0];
    int64_t depth = out->shape.dim[out->shape.rank - 1];
    int64_t ni = ed_tensor_numel(idx);
    for (int64_t i = 0; i < ni; i++) {
        int64_t j = ((const int32_t *)idx->data)[i];
        for (int64_t d = 0; d < depth; d++) interp_set(out, i * depth + d, d == j ? 1.0 : 0.0);
    }
}
