/* Collectives: a call to the runtime's allreduce on the output's arena bytes, in place
 * when the memory plan gave the output its input's bytes (then both pointers agree). */
#include "backend/llvm/lower.h"

void ed_lower_collective(ed_cg *cg, const ed_node *n, LLVMValueRef *args)
{
    LLVMTypeRef params[5] = {cg->ptr, cg->ptr, cg->i64, cg->i32, cg->i32};
    LLVMValueRef call[5] = {args[0], args[1], ed_cg_i64(cg, ed_shape_numel(n->shape)),
                            LLVMConstInt(cg->i32, n->dtype == ED_F64, 0),
                            LLVMConstInt(cg->i32, n->op == ED_OP_ALLREDUCE_MEAN, 0)};
    ed_cg_call(cg, "ed_comm_allreduce", cg->vd, params, 5, call);
}
