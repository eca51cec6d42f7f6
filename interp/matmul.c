/* Batched matmul: [..., m, k] x [..., k, n] with numpy-broadcast batch dims; ta / tb
 * read a or b with its last two dims swapped. Plain loops, accumulated in double. */
#include "interp/iter.h"
#include "interp/kernels.h"

ED_KERNEL(ed_k_matmul)
{
    (void)ctx;
    const ed_tensor *a = in[0], *b = in[1];
    int ra = a->shape.rank, rb = b->shape.rank, ro = out->shape.rank;
    int64_t m = out->shape.dim[ro - 2], nn = out->shape.dim[ro - 1];
    int64_t k = a->shape.dim[ra - (n->attr.ta ? 2 : 1)];
    /* Element (i, p) of a's matrix and (p, j) of b's, as offsets. */
    int64_t a_cols = a->shape.dim[ra - 1], b_cols = b->shape.dim[rb - 1];
    int64_t a_si = n->attr.ta ? 1 : a_cols, a_sp = n->attr.ta ? a_cols : 1;
    int64_t b_sp = n->attr.tb ? 1 : b_cols, b_sj = n->attr.tb ? b_cols : 1;

    /* Walk the batch dims; operands 0 and 1 are the matrix offsets of a and b. */
    ed_shape batch = {.rank = ro - 2}, ba = {.rank = ra - 2}, bb = {.rank = rb - 2};
    for (int i = 0; i < batch.rank; i++) batch.dim[i] = out->shape.dim[i];
    for (int i = 0; i < ba.rank; i++) ba.dim[i] = a->shape.dim[i];
    for (int i = 0; i < bb.rank; i++) bb.dim[i] = b->shape.dim[i];
    ed_iter it;
    ed_iter_init(&it, batch, 2);
    ed_iter_bcast_strides(it.stride[0], ba, batch);
    ed_iter_bcast_strides(it.stride[1], bb, batch);
    int64_t a_mat = a->shape.dim[ra - 2] * a_cols, b_mat = b->shape.dim[rb - 2] * b_cols;
    for (int i = 0; i < batch.rank; i++) it.stride[0][i] *= a_mat, it.stride[1][i] *= b_mat;

    int64_t nbatch = ed_shape_numel(batch);
    for (int64_t t = 0; t < nbatch; t++, ed_iter_next(&it)) {
        int64_t ao = it.off[0], bo = it.off[1], oo = t * m * nn;
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < nn; j++) {
                double acc = 0;
                for (int64_t p = 0; p < k; p++)
                    acc += interp_get(a, ao + i * a_si + p * a_sp) * interp_get(b, bo + p * b_sp + j * b_sj);
                interp_set(out, oo + i * nn + j, acc);
            }
    }
}
