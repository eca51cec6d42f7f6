/* The strided odometer of iter.h. */
#include "interp/iter.h"

void ed_iter_init(ed_iter *it, ed_shape shape, int nops)
{
    memset(it, 0, sizeof *it);
    it->rank = shape.rank;
    it->nops = nops;
    for (int a = 0; a < shape.rank; a++) it->dim[a] = shape.dim[a];
}

void ed_iter_rewind(ed_iter *it)
{
    for (int a = 0; a < it->rank; a++) it->idx[a] = 0;
    for (int k = 0; k < it->nops; k++) it->off[k] = it->base[k];
}

void ed_iter_next(ed_iter *it)
{
    for (int a = it->rank - 1; a >= 0; a--) {
        if (++it->idx[a] < it->dim[a]) {
            for (int k = 0; k < it->nops; k++) it->off[k] += it->stride[k][a];
            return;
        }
        /* This axis wraps: undo its steps and carry into the next outer axis. */
        for (int k = 0; k < it->nops; k++) it->off[k] -= it->stride[k][a] * (it->dim[a] - 1);
        it->idx[a] = 0;
    }
}

void ed_iter_bcast_strides(int64_t stride[ED_MAX_RANK], ed_shape in, ed_shape out)
{
    int64_t own[ED_MAX_RANK];
    ed_shape_strides(in, own);
    for (int a = 0; a < out.rank; a++) {
        int j = a - (out.rank - in.rank);
        stride[a] = (j < 0 || in.dim[j] == 1) ? 0 : own[j];
    }
}
