/* Flat kernels: an elementwise or fused elementwise node whose inputs all have its shape or
 * one element takes its elements [begin, end) as run-time arguments, so nodes that differ
 * only in length share one function (keyed by ed_node_key_flat). A large one runs through
 * a shared pool caller that cuts [begin, end) into blocks; each element is the same code's. */
#include "backend/llvm/lower.h"

#include "backend/arena.h"
#include "runtime/error.h"

#include <stdio.h>
#include <stdlib.h>

/* Elements per chunk unit of a pooled flat kernel (as the split walk's blocks). */
#define FLAT_BLOCK 256

/* An input read at the element's index (it has n's shape), else at 0 (one element). */
static bool full_input(const ed_node *n, int k) { return ed_shape_eq(n->in[k]->shape, n->shape); }

bool ed_flat_applies(const ed_node *n)
{
    if (ed_shape_numel(n->shape) <= 0 || n->nin + 1 > ED_WALK_MAX_OPS) return false;
    if (ed_ops[n->op].kind == ED_KIND_ELEM) {
        if (!ed_lower_elem_ok(n->op)) return false;
    } else if (n->op != ED_OP_FUSED || ed_fused_producer(n->attr.body) || ed_fused_reduction(n->attr.body)) {
        return false;
    }
    for (int k = 0; k < n->nin; k++)
        if (!full_input(n, k) && ed_shape_numel(n->in[k]->shape) != 1) return false;
    return true;
}

/* Elements read and written: the split rule's work (lower_split.c). */
static int64_t flat_work(const ed_node *n)
{
    int64_t w = ed_shape_numel(n->shape);
    for (int k = 0; k < n->nin; k++) w += ed_shape_numel(n->in[k]->shape);
    return w;
}

/* Blocks per chunk so that a chunk has at least min_work elements read and written. */
static int64_t flat_grain(int64_t min_work, int64_t extent, int64_t work)
{
    return (min_work * extent + work - 1) / work;
}

bool ed_flat_pooled(const ed_node *n)
{
    int64_t min_work = ed_split_min_work(), work = flat_work(n);
    if (min_work <= 0 || work < 2 * min_work) return false;
    int64_t extent = (ed_shape_numel(n->shape) + FLAT_BLOCK - 1) / FLAT_BLOCK;
    return extent / flat_grain(min_work, extent, work) >= 2;
}

void ed_lower_flat_walk(ed_cg *cg, const ed_lop *ops, int nops, ed_walk_body body, void *ud)
{
    const ed_flat *f = cg->flat;
    LLVMBasicBlockRef run = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "run");
    LLVMBasicBlockRef after = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "after");
    LLVMBuildCondBr(cg->b, LLVMBuildICmp(cg->b, LLVMIntSLT, f->begin, f->end, ""), run, after);
    LLVMPositionBuilderAtEnd(cg->b, run);
    ed_loop l = ed_loop_open_at(cg, f->begin);
    LLVMValueRef ptrs[ED_WALK_MAX_OPS];
    for (int k = 0; k < nops; k++) {
        LLVMValueRef at = f->full[k] ? l.i : ed_cg_i64(cg, 0);
        ptrs[k] = LLVMBuildInBoundsGEP2(cg->b, ops[k].ty, ops[k].ptr, &at, 1, "");
    }
    body(cg, ptrs, ud);
    ed_loop_close_at(cg, &l, f->end);
    LLVMBuildBr(cg->b, after);
    LLVMPositionBuilderAtEnd(cg->b, after);
}

LLVMValueRef ed_lower_flat_kernel(ed_cg *cg, const ed_node *n, const char *name, const int64_t *offsets)
{
    LLVMValueRef fn = ed_lower_declare_kernel_n(cg, n, name, offsets, 2);
    if (!fn) return NULL;
    ed_flat f = {.begin = LLVMGetParam(fn, (unsigned)n->nin + 3), .end = LLVMGetParam(fn, (unsigned)n->nin + 4)};
    f.full[0] = true; /* the walk's operand 0 is the result, k + 1 input k (elem and fused) */
    for (int k = 0; k < n->nin; k++) f.full[k + 1] = full_input(n, k);
    cg->flat = &f;
    int st = ed_lower_define_kernel(cg, n, fn, offsets);
    cg->flat = NULL;
    return st == ED_OK ? fn : NULL;
}

/* NAME_task(ptr ctx, i64 first, i64 last, i32 worker): ctx holds the kernel's nin + 5
   arguments; blocks [first, last) of [begin, end) go to the flat kernel. */
static LLVMValueRef emit_task(ed_cg *cg, const ed_node *n, LLVMValueRef flat, const char *name)
{
    LLVMTypeRef tp[4] = {cg->ptr, cg->i64, cg->i64, cg->i32};
    LLVMValueRef task = LLVMAddFunction(cg->mod, name, LLVMFunctionType(cg->vd, tp, 4, 0));
    LLVMSetLinkage(task, LLVMInternalLinkage);
    cg->fn = task;
    LLVMPositionBuilderAtEnd(cg->b, LLVMAppendBasicBlockInContext(cg->ctx, task, "entry"));
    int na = n->nin + 5;
    LLVMValueRef *a = malloc((size_t)na * sizeof *a);
    if (!a) return (ed_fail("backend jit: out of memory"), NULL);
    for (int k = 0; k < na; k++) {
        LLVMValueRef at = ed_cg_i64(cg, k);
        LLVMValueRef slot = LLVMBuildInBoundsGEP2(cg->b, cg->i64, LLVMGetParam(task, 0), &at, 1, "");
        a[k] = LLVMBuildLoad2(cg->b, k <= n->nin ? cg->ptr : cg->i64, slot, "");
    }
    LLVMValueRef begin = a[n->nin + 3], end = a[n->nin + 4], block = ed_cg_i64(cg, FLAT_BLOCK);
    LLVMValueRef first = LLVMBuildNSWAdd(cg->b, begin, LLVMBuildNSWMul(cg->b, LLVMGetParam(task, 1), block, ""), "");
    LLVMValueRef last = LLVMBuildNSWAdd(cg->b, begin, LLVMBuildNSWMul(cg->b, LLVMGetParam(task, 2), block, ""), "");
    a[n->nin + 3] = first;
    a[n->nin + 4] = LLVMBuildSelect(cg->b, LLVMBuildICmp(cg->b, LLVMIntSLT, last, end, ""), last, end, "");
    LLVMBuildCall2(cg->b, LLVMGlobalGetValueType(flat), flat, a, (unsigned)na, "");
    LLVMBuildRetVoid(cg->b);
    free(a);
    return task;
}

LLVMValueRef ed_lower_flat_pool(ed_cg *cg, const ed_node *n, const char *name, const int64_t *offsets,
                                LLVMValueRef flat)
{
    char part[300];
    snprintf(part, sizeof part, "%s_task", name);
    LLVMValueRef task = emit_task(cg, n, flat, part);
    LLVMValueRef fn = task ? ed_lower_declare_kernel_n(cg, n, name, offsets, 2) : NULL;
    if (!fn) return NULL;
    cg->fn = fn;
    LLVMPositionBuilderAtEnd(cg->b, LLVMAppendBasicBlockInContext(cg->ctx, fn, "entry"));
    int na = n->nin + 5;
    LLVMValueRef ctx = ed_cg_alloca(cg, LLVMArrayType2(cg->i64, (uint64_t)na));
    for (int k = 0; k < na; k++) {
        LLVMValueRef at = ed_cg_i64(cg, k);
        LLVMBuildStore(cg->b, LLVMGetParam(fn, (unsigned)k), LLVMBuildInBoundsGEP2(cg->b, cg->i64, ctx, &at, 1, ""));
    }
    /* The split rule at run time: the same extent and grain as ed_flat_pooled for this length. */
    LLVMValueRef count = LLVMBuildNSWSub(cg->b, LLVMGetParam(fn, (unsigned)n->nin + 4),
                                         LLVMGetParam(fn, (unsigned)n->nin + 3), "");
    int64_t full = 1, single = 0;
    for (int k = 0; k < n->nin; k++) full_input(n, k) ? full++ : single++;
    LLVMValueRef extent = LLVMBuildSDiv(cg->b, LLVMBuildNSWAdd(cg->b, count, ed_cg_i64(cg, FLAT_BLOCK - 1), ""),
                                        ed_cg_i64(cg, FLAT_BLOCK), "");
    LLVMValueRef work = LLVMBuildNSWAdd(cg->b, LLVMBuildNSWMul(cg->b, count, ed_cg_i64(cg, full), ""),
                                        ed_cg_i64(cg, single), "");
    LLVMValueRef grain = LLVMBuildNSWMul(cg->b, extent, ed_cg_i64(cg, ed_split_min_work()), "");
    grain = LLVMBuildSDiv(cg->b, LLVMBuildNSWAdd(cg->b, grain, LLVMBuildNSWSub(cg->b, work, ed_cg_i64(cg, 1), ""), ""),
                          work, "");
    LLVMTypeRef rp[4] = {cg->i64, cg->i64, cg->ptr, cg->ptr};
    LLVMValueRef ra[4] = {extent, grain, task, ctx};
    ed_cg_call(cg, "ed_pool_run", cg->vd, rp, 4, ra);
    LLVMBuildRetVoid(cg->b);
    return fn;
}
