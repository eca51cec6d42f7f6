/* Kernels split over the thread pool (runtime/pool.h). A large kernel whose first walk's
 * first axis indexes independent outputs (or groups of a reduction) becomes NAME_range
 * (the usual parameters, then begin and end of that axis), NAME_task (the pool's task:
 * unpacks the arguments) and NAME (the usual signature: calls ed_pool_run). Each output is
 * computed by the same code as in the whole kernel, so its bits do not depend on threads. */
#include "backend/arena.h"
#include "backend/llvm/lower.h"
#include "runtime/error.h"

#include <stdio.h>
#include <stdlib.h>

/* Elements read and written per chunk below which waking a worker costs more than the
   chunk: bench/HISTORY.md (2026-12-07, pool) has the measurement. */
#define SPLIT_MIN_WORK 32768

int ed_split_min_work(void)
{
    const char *env = getenv("EDIFICE_SPLIT_WORK");
    if (env && *env) {
        char *end;
        long v = strtol(env, &end, 10);
        if (*end == '\0' && v >= 0 && v <= (1L << 30)) return (int)v;
    }
    return SPLIT_MIN_WORK;
}

/* Kinds whose lowering is one walk writing only the outputs its first axis indexes, or
   (concat) one such walk per input, all over the same first axis. The walks are checked
   after emission as well (ed_split.walks, .mismatch). */
static bool kind_splits(const ed_node *n)
{
    int64_t rows, cols;
    switch (ed_ops[n->op].kind) {
    case ED_KIND_ELEM: return true;
    case ED_KIND_MOVE: return n->op != ED_OP_PAD; /* concat: a walk per input, each over the range */
    case ED_KIND_REDUCE: return true;             /* a leading sum splits over its output columns */
    case ED_KIND_FUSED: {
        /* A producer's product is written whole (or per image) before its chain reads it. */
        if (ed_fused_producer(n->attr.body)) return false;
        const ed_node *r = ed_fused_reduction(n->attr.body);
        return !r || ed_fused_row_kernel(n) || !ed_red_leading(r, &rows, &cols);
    }
    default: return false;
    }
}

/* A walk over groups (each item a whole reduction), not over elements. */
static bool is_reduction(const ed_node *n)
{
    return ed_ops[n->op].kind == ED_KIND_REDUCE || (n->op == ED_OP_FUSED && ed_fused_reduction(n->attr.body));
}

/* Elements the kernel reads and writes: its cost, to the first order. */
static int64_t work_of(const ed_node *n)
{
    int64_t w = ed_shape_numel(n->shape);
    for (int k = 0; k < n->nin; k++) w += ed_shape_numel(n->in[k]->shape);
    return w;
}

/* NAME_task(ptr ctx, i64 begin, i64 end, i32 worker): ctx holds the kernel's nin + 3
   arguments, 8 bytes each. */
static LLVMValueRef emit_task(ed_cg *cg, const ed_node *n, LLVMValueRef range, const char *name)
{
    LLVMTypeRef tp[4] = {cg->ptr, cg->i64, cg->i64, cg->i32};
    LLVMValueRef task = LLVMAddFunction(cg->mod, name, LLVMFunctionType(cg->vd, tp, 4, 0));
    LLVMSetLinkage(task, LLVMInternalLinkage);
    LLVMPositionBuilderAtEnd(cg->b, LLVMAppendBasicBlockInContext(cg->ctx, task, "entry"));
    int na = n->nin + 5;
    LLVMValueRef *a = malloc((size_t)na * sizeof *a);
    if (!a) return NULL;
    for (int k = 0; k < n->nin + 3; k++) {
        LLVMValueRef at = ed_cg_i64(cg, k);
        LLVMValueRef slot = LLVMBuildInBoundsGEP2(cg->b, cg->i64, LLVMGetParam(task, 0), &at, 1, "");
        a[k] = LLVMBuildLoad2(cg->b, k <= n->nin ? cg->ptr : cg->i64, slot, "");
    }
    a[n->nin + 3] = LLVMGetParam(task, 1);
    a[n->nin + 4] = LLVMGetParam(task, 2);
    LLVMBuildCall2(cg->b, LLVMGlobalGetValueType(range), range, a, (unsigned)na, "");
    LLVMBuildRetVoid(cg->b);
    free(a);
    return task;
}

/* NAME(out, in..., seed, call): its arguments to the stack, then ed_pool_run(extent, grain,
   task, args). per_thread: grain at least extent / ed_pool_threads() (one chunk a thread). */
static LLVMValueRef emit_caller(ed_cg *cg, const ed_node *n, const char *name, const int64_t *offsets,
                                LLVMValueRef task, int64_t extent, int64_t grain, bool per_thread)
{
    LLVMValueRef fn = ed_lower_declare_kernel(cg, n, name, offsets);
    if (!fn) return NULL;
    cg->fn = fn;
    LLVMPositionBuilderAtEnd(cg->b, LLVMAppendBasicBlockInContext(cg->ctx, fn, "entry"));
    LLVMValueRef ctx = ed_cg_alloca(cg, LLVMArrayType2(cg->i64, (uint64_t)n->nin + 3));
    for (int k = 0; k < n->nin + 3; k++) {
        LLVMValueRef at = ed_cg_i64(cg, k);
        LLVMBuildStore(cg->b, LLVMGetParam(fn, (unsigned)k), LLVMBuildInBoundsGEP2(cg->b, cg->i64, ctx, &at, 1, ""));
    }
    LLVMValueRef g = ed_cg_i64(cg, grain);
    if (per_thread) {
        LLVMValueRef t = ed_cg_call(cg, "ed_pool_threads", cg->i32, NULL, 0, NULL);
        t = LLVMBuildSExt(cg->b, t, cg->i64, "");
        /* extent / t rounded down: the pool makes n / grain chunks, so rounding up gave an
           odd extent one chunk (313 row blocks, grain 157: W4's sgemms ran on one thread). */
        LLVMValueRef even = LLVMBuildSDiv(cg->b, ed_cg_i64(cg, extent), t, "");
        g = LLVMBuildSelect(cg->b, LLVMBuildICmp(cg->b, LLVMIntSGT, even, g, ""), even, g, "");
    }
    LLVMTypeRef rp[4] = {cg->i64, cg->i64, cg->ptr, cg->ptr};
    LLVMValueRef ra[4] = {ed_cg_i64(cg, extent), g, task, ctx};
    ed_cg_call(cg, "ed_pool_run", cg->vd, rp, 4, ra);
    LLVMBuildRetVoid(cg->b);
    return fn;
}

LLVMValueRef ed_lower_split_kernel(ed_cg *cg, const ed_node *n, const char *name, const int64_t *offsets, bool *split)
{
    *split = false;
    int64_t min_work = ed_split_min_work(), work = work_of(n);
    bool gemm = ed_ops[n->op].kind == ED_KIND_MATMUL;
    if (gemm ? !ed_split_gemm_applies(n) : min_work <= 0 || !kind_splits(n) || work < 2 * min_work) return NULL;
    int64_t rows, cols;
    bool leading = ed_ops[n->op].kind == ED_KIND_REDUCE && ed_red_leading(n, &rows, &cols);

    char part[300];
    snprintf(part, sizeof part, "%s_range", name);
    LLVMValueRef range = ed_lower_declare_kernel_n(cg, n, part, offsets, 2);
    if (!range) {
        *split = true;
        return NULL;
    }
    ed_split sp = {.begin = LLVMGetParam(range, (unsigned)n->nin + 3),
                   .end = LLVMGetParam(range, (unsigned)n->nin + 4),
                   .blocks = !is_reduction(n) && n->op != ED_OP_CONCAT,
                   .every_walk = n->op == ED_OP_CONCAT};
    cg->split = &sp;
    int st = ed_lower_define_kernel(cg, n, range, offsets);
    cg->split = NULL;
    if (st != ED_OK) {
        *split = true;
        return NULL;
    }
    /* grain: items of the split axis per chunk, so that a chunk has at least min_work */
    int64_t grain = gemm ? sp.grain : (min_work * sp.extent + work - 1) / work;
    if ((sp.every_walk ? sp.mismatch : sp.walks != 1) || sp.extent < 2 || grain < 1 || sp.extent / grain < 2) {
        LLVMDeleteFunction(range);
        return NULL;
    }
    *split = true;
    snprintf(part, sizeof part, "%s_task", name);
    LLVMValueRef task = emit_task(cg, n, range, part);
    if (!task) return (ed_fail("backend jit: out of memory"), NULL);
    /* A leading sum reads every row for its columns: one contiguous share a thread. */
    return emit_caller(cg, n, name, offsets, task, sp.extent, grain, gemm || leading);
}
