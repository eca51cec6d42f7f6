/* Collectives: the runtime's allreduce over the ranks (a copy with one rank). */
#include "interp/kernels.h"
#include "runtime/comm.h"

ED_KERNEL(ed_k_allreduce)
{
    (void)ctx;
    ed_comm_allreduce(out->data, in[0]->data, ed_tensor_numel(out), out->dtype == ED_F64,
                      n->op == ED_OP_ALLREDUCE_MEAN);
}
