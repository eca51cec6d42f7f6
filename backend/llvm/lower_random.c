/* Random ops call the runtime's stream functions (runtime/philox.h) with the
 * program's seed and call counter, so their bits match the interpreter exactly. A large
 * draw goes to ed_rng_pool, which splits it over the thread pool in whole blocks. */
#include "backend/llvm/lower.h"
#include "runtime/philox.h"

/* ed_rng_pool(out, kind, dt, n, seed, call, stream, a, b) */
static void lower_pooled(ed_cg *cg, const ed_node *n, LLVMValueRef out, LLVMValueRef seed, LLVMValueRef call)
{
    ed_rng_kind kind = ED_RNG_UNIFORM;
    double a = n->attr.lo, b = n->attr.hi;
    switch (n->op) {
    case ED_OP_RANDN: kind = ED_RNG_NORMAL; break;
    case ED_OP_BERNOULLI:
        kind = ED_RNG_BERNOULLI;
        a = n->attr.p;
        b = 0;
        break;
    case ED_OP_RANDINT: kind = ED_RNG_RANDINT; break;
    default: break;
    }
    LLVMTypeRef p[9] = {cg->ptr, cg->i32, cg->i32, cg->i64, cg->i64, cg->i64, cg->i32, cg->f64, cg->f64};
    LLVMValueRef v[9] = {out,
                         LLVMConstInt(cg->i32, (unsigned long long)kind, 0),
                         LLVMConstInt(cg->i32, (unsigned long long)n->dtype, 0),
                         ed_cg_i64(cg, ed_shape_numel(n->shape)),
                         seed,
                         call,
                         LLVMConstInt(cg->i32, n->attr.stream, 0),
                         LLVMConstReal(cg->f64, a),
                         LLVMConstReal(cg->f64, b)};
    ed_cg_call(cg, "ed_rng_pool", cg->vd, p, 9, v);
}

void ed_lower_random(ed_cg *cg, const ed_node *n, LLVMValueRef out, LLVMValueRef seed, LLVMValueRef call)
{
    int64_t count = ed_shape_numel(n->shape);
    if (count == 0) return;
    if (count >= 2 * ED_RNG_SPLIT_MIN && ed_split_min_work() > 0) {
        lower_pooled(cg, n, out, seed, call);
        return;
    }
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
