/* Random ops call the runtime's stream functions (runtime/philox.h) with the
 * program's seed and call counter, so their bits match the interpreter exactly. */
#include "backend/llvm/lower.h"

void ed_lower_random(ed_cg *cg, const ed_node *n, LLVMValueRef out, LLVMValueRef seed, LLVMValueRef call)
{
    int64_t count = ed_shape_numel(n->shape);
    if (count == 0) return;
    LLVMValueRef dt = LLVMConstInt(cg->i32, (unsigned long long)n->dtype, 0);
    LLVMValueRef cnt = ed_cg_i64(cg, count);
    LLVMValueRef stream = LLVMConstInt(cg->i32, n->attr.stream, 0);
    LLVMTypeRef p[8] = {cg->ptr, cg->i32, cg->i64, cg->i64, cg->i64, cg->i32, cg->f64, cg->f64};
    switch (n->op) {
    case ED_OP_RAND: {
        LLVMValueRef a[8] = {
            out, dt, cnt, seed, call, stream, LLVMConstReal(cg->f64, n->attr.lo), LLVMConstReal(cg->f64, n->attr.hi)};
        ed_cg_call(cg, "ed_rng_uniform", cg->vd, p, 8, a);
        break;
    }
    case ED_OP_RANDN: {
        LLVMValueRef a[6] = {out, dt, cnt, seed, call, stream};
        ed_cg_call(cg, "ed_rng_normal", cg->vd, p, 6, a);
        break;
    }
    case ED_OP_BERNOULLI: {
        LLVMValueRef a[7] = {out, dt, cnt, seed, call, stream, LLVMConstReal(cg->f64, n->attr.p)};
        ed_cg_call(cg, "ed_rng_bernoulli", cg->vd, p, 7, a);
        break;
    }
    case ED_OP_RANDINT: {
        LLVMTypeRef q[7] = {cg->ptr, cg->i64, cg->i64, cg->i64, cg->i32, cg->i64, cg->i64};
        LLVMValueRef a[7] = {
            out, cnt, seed, call, stream, ed_cg_i64(cg, (int64_t)n->attr.lo), ed_cg_i64(cg, (int64_t)n->attr.hi)};
        ed_cg_call(cg, "ed_rng_randint", cg->vd, q, 7, a);
        break;
    }
    default: break;
    }
}
