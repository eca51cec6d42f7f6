/* Module construction: one internal kernel per computed node and the entry function
 * `void ed_entry(ptr arena, ptr values, i64 seed, i64 call)` that calls them in order. Also the
 * small IR helpers (loops, calls, types) shared by the lower_*.c files. */
#include "backend/llvm/lower.h"

#include "backend/arena.h"
#include "backend/llvm/jit.h"
#include "ir/text.h"
#include "runtime/error.h"
#include "runtime/numerics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------------- */

LLVMTypeRef ed_cg_type(ed_cg *cg, ed_dtype dt)
{
    if (ed_dtype_is_16bit(dt)) return LLVMInt16TypeInContext(cg->ctx); /* storage: the GEMV widens it */
    return dt == ED_F32 ? cg->f32 : dt == ED_I32 ? cg->i32 : cg->f64;
}

LLVMValueRef ed_cg_i64(ed_cg *cg, int64_t v) { return LLVMConstInt(cg->i64, (unsigned long long)v, 1); }

LLVMValueRef ed_cg_call(ed_cg *cg, const char *name, LLVMTypeRef ret, LLVMTypeRef *params, int np, LLVMValueRef *args)
{
    LLVMTypeRef ft = LLVMFunctionType(ret, params, (unsigned)np, 0);
    LLVMValueRef f = LLVMGetNamedFunction(cg->mod, name);
    if (!f) f = LLVMAddFunction(cg->mod, name, ft);
    return LLVMBuildCall2(cg->b, ft, f, args, (unsigned)np, "");
}

LLVMValueRef ed_cg_alloca(ed_cg *cg, LLVMTypeRef ty)
{
    /* Allocas in the entry block are what mem2reg/SROA promote to registers. */
    LLVMBuilderRef tmp = LLVMCreateBuilderInContext(cg->ctx);
    LLVMBasicBlockRef entry = LLVMGetEntryBasicBlock(cg->fn);
    LLVMValueRef first = LLVMGetFirstInstruction(entry);
    if (first) LLVMPositionBuilderBefore(tmp, first);
    else LLVMPositionBuilderAtEnd(tmp, entry);
    LLVMValueRef a = LLVMBuildAlloca(tmp, ty, "");
    LLVMDisposeBuilder(tmp);
    return a;
}

ed_loop ed_loop_open(ed_cg *cg) { return ed_loop_open_at(cg, ed_cg_i64(cg, 0)); }

ed_loop ed_loop_open_at(ed_cg *cg, LLVMValueRef start)
{
    ed_loop l;
    l.pre = LLVMGetInsertBlock(cg->b);
    l.start = start;
    l.body = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "loop");
    LLVMBuildBr(cg->b, l.body);
    LLVMPositionBuilderAtEnd(cg->b, l.body);
    l.i = LLVMBuildPhi(cg->b, cg->i64, "i");
    return l;
}

/* Do-while form: callers only open loops with n > 0 (empty kernels emit nothing). */
void ed_loop_close(ed_cg *cg, ed_loop *l, int64_t n) { ed_loop_close_at(cg, l, ed_cg_i64(cg, n)); }

void ed_loop_close_at(ed_cg *cg, ed_loop *l, LLVMValueRef end)
{
    LLVMValueRef next = LLVMBuildNUWAdd(cg->b, l->i, ed_cg_i64(cg, 1), "");
    LLVMValueRef more = LLVMBuildICmp(cg->b, LLVMIntSLT, next, end, "");
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(cg->b);
    LLVMBasicBlockRef exit = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "done");
    LLVMBuildCondBr(cg->b, more, l->body, exit);
    LLVMValueRef vals[2] = {l->start, next};
    LLVMBasicBlockRef from[2] = {l->pre, latch};
    LLVMAddIncoming(l->i, vals, from, 2);
    LLVMPositionBuilderAtEnd(cg->b, exit);
}

/* ---- strided walk --------------------------------------------------------------- */

typedef struct {
    int rank, nops;
    int64_t dim[ED_MAX_RANK];
    int64_t stride[ED_WALK_MAX_OPS][ED_MAX_RANK];
} walk_shape;

/* Drop size-1 axes, then merge axis a into a+1 when every operand steps contiguously. */
static walk_shape collapse(ed_shape s, const ed_lop *ops, int nops)
{
    walk_shape w = {.nops = nops};
    for (int a = 0; a < s.rank; a++) {
        if (s.dim[a] == 1) continue;
        w.dim[w.rank] = s.dim[a];
        for (int k = 0; k < nops; k++) w.stride[k][w.rank] = ops[k].stride[a];
        w.rank++;
    }
    for (int a = w.rank - 2; a >= 0; a--) {
        bool merge = true;
        for (int k = 0; k < nops; k++)
            if (w.stride[k][a] != w.stride[k][a + 1] * w.dim[a + 1]) merge = false;
        if (!merge) continue;
        w.dim[a] *= w.dim[a + 1];
        for (int k = 0; k < nops; k++) w.stride[k][a] = w.stride[k][a + 1];
        for (int b = a + 1; b + 1 < w.rank; b++) {
            w.dim[b] = w.dim[b + 1];
            for (int k = 0; k < nops; k++) w.stride[k][b] = w.stride[k][b + 1];
        }
        w.rank--;
    }
    return w;
}

static void walk_level(ed_cg *cg, const walk_shape *w, int a, const ed_lop *ops, LLVMValueRef *off, ed_walk_body body,
                       void *ud);

/* Elements per unit of a split one-axis walk: blocks of a constant count keep the loop
   that vectorizes free of a run-time remainder. */
#define SPLIT_BLOCK 256

/* Elements [first + j * count, ...) for j in 0..count-1 of a one-axis walk, if cond. */
static void walk_run(ed_cg *cg, const walk_shape *w, const ed_lop *ops, LLVMValueRef *off, ed_walk_body body, void *ud,
                     LLVMValueRef cond, LLVMValueRef first, int64_t count, LLVMValueRef blocks_end)
{
    LLVMBasicBlockRef run = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "run");
    LLVMBasicBlockRef after = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "after");
    LLVMBuildCondBr(cg->b, cond, run, after);
    LLVMPositionBuilderAtEnd(cg->b, run);
    ed_loop outer = {0};
    if (blocks_end) outer = ed_loop_open_at(cg, first);
    LLVMValueRef start = blocks_end ? LLVMBuildNSWMul(cg->b, outer.i, ed_cg_i64(cg, count), "") : first;
    ed_loop l = ed_loop_open(cg);
    LLVMValueRef i = LLVMBuildNSWAdd(cg->b, start, l.i, "");
    LLVMValueRef inner[ED_WALK_MAX_OPS];
    for (int k = 0; k < w->nops; k++)
        inner[k] = LLVMBuildNSWAdd(cg->b, off[k], LLVMBuildNSWMul(cg->b, i, ed_cg_i64(cg, w->stride[k][0]), ""), "");
    walk_level(cg, w, 1, ops, inner, body, ud);
    ed_loop_close(cg, &l, count);
    if (blocks_end) ed_loop_close_at(cg, &outer, blocks_end);
    LLVMBuildBr(cg->b, after);
    LLVMPositionBuilderAtEnd(cg->b, after);
}

/* A split kernel's one-axis walk over blocks [begin, end) of SPLIT_BLOCK elements: the
   whole blocks, then the last, short one in the chunk that holds it. */
static void walk_blocks(ed_cg *cg, const walk_shape *w, const ed_lop *ops, LLVMValueRef *off, ed_walk_body body,
                        void *ud)
{
    const ed_split *sp = cg->split;
    int64_t whole = w->dim[0] / SPLIT_BLOCK, tail = w->dim[0] % SPLIT_BLOCK;
    if (whole > 0) {
        LLVMValueRef over = LLVMBuildICmp(cg->b, LLVMIntSGT, sp->end, ed_cg_i64(cg, whole), "");
        LLVMValueRef end = LLVMBuildSelect(cg->b, over, ed_cg_i64(cg, whole), sp->end, "");
        LLVMValueRef any = LLVMBuildICmp(cg->b, LLVMIntSLT, sp->begin, end, "");
        walk_run(cg, w, ops, off, body, ud, any, sp->begin, SPLIT_BLOCK, end);
    }
    if (tail > 0) {
        LLVMValueRef last = LLVMBuildICmp(cg->b, LLVMIntSGT, sp->end, ed_cg_i64(cg, whole), "");
        walk_run(cg, w, ops, off, body, ud, last, ed_cg_i64(cg, whole * SPLIT_BLOCK), tail, NULL);
    }
}

static void walk_level(ed_cg *cg, const walk_shape *w, int a, const ed_lop *ops, LLVMValueRef *off, ed_walk_body body,
                       void *ud)
{
    if (a == w->rank) {
        LLVMValueRef ptrs[ED_WALK_MAX_OPS];
        for (int k = 0; k < w->nops; k++) ptrs[k] = LLVMBuildInBoundsGEP2(cg->b, ops[k].ty, ops[k].ptr, &off[k], 1, "");
        body(cg, ptrs, ud);
        return;
    }
    /* A split kernel's first walk covers [begin, end) of its first axis (lower_split.c). */
    ed_split *sp = cg->split;
    bool ranged = a == 0 && sp && sp->depth == 1 && (sp->walks == 1 || sp->every_walk);
    if (ranged && w->rank == 1 && sp->blocks) {
        walk_blocks(cg, w, ops, off, body, ud);
        return;
    }
    ed_loop l = ranged ? ed_loop_open_at(cg, sp->begin) : ed_loop_open(cg);
    LLVMValueRef inner[ED_WALK_MAX_OPS];
    for (int k = 0; k < w->nops; k++) {
        LLVMValueRef step = LLVMBuildNSWMul(cg->b, l.i, ed_cg_i64(cg, w->stride[k][a]), "");
        inner[k] = LLVMBuildNSWAdd(cg->b, off[k], step, "");
    }
    walk_level(cg, w, a + 1, ops, inner, body, ud);
    if (ranged) ed_loop_close_at(cg, &l, sp->end);
    else ed_loop_close(cg, &l, w->dim[a]);
}

void ed_lower_walk(ed_cg *cg, ed_shape shape, ed_lop *ops, int nops, ed_walk_body body, void *ud)
{
    if (ed_shape_numel(shape) == 0) return;
    if (cg->flat) {
        ed_lower_flat_walk(cg, ops, nops, body, ud);
        return;
    }
    walk_shape w = collapse(shape, ops, nops);
    LLVMValueRef off[ED_WALK_MAX_OPS];
    for (int k = 0; k < nops; k++) off[k] = ed_cg_i64(cg, ops[k].base);
    ed_split *sp = cg->split;
    if (sp && sp->depth == 0) {
        int64_t extent = w.rank == 1 && sp->blocks ? (w.dim[0] + SPLIT_BLOCK - 1) / SPLIT_BLOCK : w.rank ? w.dim[0] : 1;
        if (++sp->walks == 1) sp->extent = extent;
        else if (extent != sp->extent) sp->mismatch = true;
    }
    if (sp) sp->depth++;
    walk_level(cg, &w, 0, ops, off, body, ud);
    if (sp) sp->depth--;
}

/* ---- support table --------------------------------------------------------------- */

bool ed_jit_has_lowering(ed_op op)
{
    switch (ed_ops[op].kind) {
    case ED_KIND_LEAF: return true; /* bound leaves need nothing; consts are filled at compile */
    case ED_KIND_ELEM: return ed_lower_elem_ok(op);
    case ED_KIND_REDUCE: return true;
    case ED_KIND_MOVE: return ed_lower_move_ok(op);
    case ED_KIND_INDEX: return ed_lower_index_ok(op);
    case ED_KIND_MATMUL: return true;
    case ED_KIND_CONV: return true;
    case ED_KIND_RANDOM: return true;
    case ED_KIND_CONTROL: return op == ED_OP_LOOP || op == ED_OP_GET;
    case ED_KIND_FUSED: return op == ED_OP_FUSED;
    case ED_KIND_COLLECTIVE: return true;
    default: return false;
    }
}

int ed_jit_check(const ed_graph *g)
{
    for (int i = 0; i < g->nnodes; i++) {
        const ed_node *n = g->nodes[i];
        if (!ed_jit_has_lowering(n->op))
            return ed_fail("backend jit: op %s (%%%d%s) is not lowered yet; use the interp backend", ed_op_name(n->op),
                           n->id, g->parent ? " in a loop body" : "");
        if (n->op == ED_OP_LOOP && ed_jit_check(n->attr.body) != ED_OK) return ED_ERR;
    }
    return ED_OK;
}

/* ---- kernels and entry ------------------------------------------------------------ */

static bool has_kernel(const ed_node *n) { return ed_ops[n->op].kind != ED_KIND_LEAF; }

/* Arrays sized by a node's input count (concat takes any number of inputs). */
static void *alloc_array(int n, size_t size)
{
    void *p = calloc((size_t)n, size);
    if (!p) ed_fail("backend jit: out of memory");
    return p;
}

/* void NAME(ptr noalias out, ptr noalias in..., i64 seed, i64 call). An input the
 * memory plan puts in the output's bytes (offsets, may be NULL: none) is not marked:
 * the kernel reads it through the output pointer instead (emit_kernel). */
LLVMValueRef ed_lower_declare_kernel(ed_cg *cg, const ed_node *n, const char *name, const int64_t *offsets)
{
    return ed_lower_declare_kernel_n(cg, n, name, offsets, 0);
}

LLVMValueRef ed_lower_declare_kernel_n(ed_cg *cg, const ed_node *n, const char *name, const int64_t *offsets, int extra)
{
    int np = n->nin + 3 + extra;
    LLVMTypeRef *params = alloc_array(np, sizeof *params);
    if (!params) return NULL;
    for (int k = 0; k < np; k++) params[k] = k <= n->nin ? cg->ptr : cg->i64;
    LLVMValueRef fn = LLVMAddFunction(cg->mod, name, LLVMFunctionType(cg->vd, params, (unsigned)np, 0));
    free(params);
    LLVMSetLinkage(fn, LLVMInternalLinkage);
    /* Never inlined into the entry: one entry holding every kernel's loops made the
     * optimizer's time grow faster than the kernel count. */
    unsigned noinline = LLVMGetEnumAttributeKindForName("noinline", 8);
    LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(cg->ctx, noinline, 0));
    unsigned noalias = LLVMGetEnumAttributeKindForName("noalias", 7);
    for (int k = 0; k <= n->nin; k++)
        if (k == 0 || !offsets || !ed_arena_inplace_input(n, k - 1, offsets))
            LLVMAddAttributeAtIndex(fn, (unsigned)k + 1, LLVMCreateEnumAttribute(cg->ctx, noalias, 0));
    return fn;
}

int ed_lower_body(ed_cg *cg, const ed_node *n, LLVMValueRef *args)
{
    switch (ed_ops[n->op].kind) {
    case ED_KIND_ELEM: ed_lower_elem(cg, n, args); break;
    case ED_KIND_MOVE: ed_lower_move(cg, n, args); break;
    case ED_KIND_REDUCE: ed_lower_reduce(cg, n, args); break;
    case ED_KIND_INDEX: ed_lower_index(cg, n, args); break;
    case ED_KIND_MATMUL: return ed_lower_matmul(cg, n, args);
    case ED_KIND_CONV: ed_lower_conv(cg, n, args); break;
    case ED_KIND_RANDOM:
        ed_lower_random(cg, n, args[0], LLVMGetParam(cg->fn, (unsigned)n->nin + 1),
                        LLVMGetParam(cg->fn, (unsigned)n->nin + 2));
        break;
    case ED_KIND_CONTROL: ed_lower_get(cg, n, args); break; /* loops have their own emitter */
    case ED_KIND_FUSED: return ed_lower_fused(cg, n, args);
    case ED_KIND_COLLECTIVE: ed_lower_collective(cg, n, args); break;
    default: break;
    }
    return ED_OK;
}

/* The kernel name of computed node n: prefix + "k<id>_<op>" + suffix. */
static void kernel_name(char *name, size_t size, const ed_node *n, const char *prefix, const char *suffix)
{
    snprintf(name, size, "%.200sk%d_%s%s", prefix, n->id, ed_op_name(n->op), suffix);
}

int ed_lower_define_kernel(ed_cg *cg, const ed_node *n, LLVMValueRef fn, const int64_t *offsets)
{
    LLVMValueRef *args = alloc_array(n->nin + 1, sizeof *args);
    if (!args) return ED_ERR;
    cg->fn = fn;
    LLVMPositionBuilderAtEnd(cg->b, LLVMAppendBasicBlockInContext(cg->ctx, fn, "entry"));
    for (int k = 0; k <= n->nin; k++)
        args[k] = LLVMGetParam(fn, k > 0 && ed_arena_inplace_input(n, k - 1, offsets) ? 0 : (unsigned)k);
    int st = ed_lower_body(cg, n, args);
    free(args);
    if (st == ED_OK) LLVMBuildRetVoid(cg->b);
    return st;
}

/* The kernel of computed node n (ed_lower_define_kernel). */
static LLVMValueRef emit_kernel(ed_cg *cg, const ed_node *n, const char *prefix, const int64_t *offsets)
{
    char name[256];
    kernel_name(name, sizeof name, n, prefix, "");
    if (n->op == ED_OP_LOOP) return ed_lower_loop(cg, n, name);
    bool split;
    LLVMValueRef fn = ed_lower_split_kernel(cg, n, name, offsets, &split);
    if (fn || split) return fn;
    fn = ed_lower_declare_kernel(cg, n, name, offsets);
    return fn && ed_lower_define_kernel(cg, n, fn, offsets) == ED_OK ? fn : NULL;
}

/* Kernels already emitted, by what they compute (ed_node_key plus which inputs are read
 * through the output pointer): a node whose key is here calls that kernel. A DiT's
 * blocks are the same kernels N times; each is optimized and compiled once. A flat
 * node's key leaves its length out (ed_node_key_flat): a chain of tanh of every length
 * is one kernel. */
typedef struct {
    uint64_t hash;
    char *key; /* NULL: empty slot */
    LLVMValueRef fn;
} kernel_slot;

typedef struct {
    kernel_slot *slot;
    int cap; /* a power of two */
} kernel_table;

/* The forms a node's kernel takes: whole (emit_kernel), flat, or flat on the pool. */
typedef enum { FORM_WHOLE, FORM_FLAT, FORM_POOL } kernel_form;

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static char *kernel_key(const ed_node *n, const int64_t *offsets, kernel_form form)
{
    char *key = form == FORM_WHOLE ? ed_node_key(n) : ed_node_key_flat(n);
    if (!key) return NULL;
    size_t len = strlen(key);
    char *k = realloc(key, len + (size_t)n->nin + 3);
    if (!k) {
        free(key);
        ed_fail("backend jit: out of memory");
        return NULL;
    }
    for (int i = 0; i < n->nin; i++) k[len++] = offsets && ed_arena_inplace_input(n, i, offsets) ? 'P' : '-';
    k[len++] = "WFP"[form];
    k[len] = '\0';
    return k;
}

/* The slot for key: its kernel's, or the empty one it goes in. */
static kernel_slot *find_slot(const kernel_table *t, const char *key, uint64_t h)
{
    for (int i = (int)(h & (uint64_t)(t->cap - 1));; i = (i + 1) & (t->cap - 1))
        if (!t->slot[i].key || (t->slot[i].hash == h && strcmp(t->slot[i].key, key) == 0)) return &t->slot[i];
}

static LLVMValueRef emit_form(ed_cg *cg, const kernel_table *t, const ed_node *n, const char *prefix,
                              const int64_t *offsets, kernel_form form);

/* Node n's kernel in form: the one already emitted for its key, else a new one. */
static LLVMValueRef shared_kernel(ed_cg *cg, const kernel_table *t, const ed_node *n, const char *prefix,
                                  const int64_t *offsets, kernel_form form)
{
    char *key = kernel_key(n, offsets, form);
    if (!key) return NULL;
    uint64_t h = fnv1a(key);
    kernel_slot *s = find_slot(t, key, h);
    if (s->key) {
        free(key);
        return s->fn;
    }
    LLVMValueRef fn = emit_form(cg, t, n, prefix, offsets, form);
    s = find_slot(t, key, h); /* the pool form put its flat kernel in the table */
    if (fn) *s = (kernel_slot){h, key, fn};
    else free(key);
    return fn;
}

static LLVMValueRef emit_form(ed_cg *cg, const kernel_table *t, const ed_node *n, const char *prefix,
                              const int64_t *offsets, kernel_form form)
{
    if (form == FORM_WHOLE) return emit_kernel(cg, n, prefix, offsets);
    char name[256];
    if (form == FORM_FLAT) {
        kernel_name(name, sizeof name, n, prefix, "");
        return ed_lower_flat_kernel(cg, n, name, offsets);
    }
    LLVMValueRef flat = shared_kernel(cg, t, n, prefix, offsets, FORM_FLAT);
    kernel_name(name, sizeof name, n, prefix, "_pool");
    return flat ? ed_lower_flat_pool(cg, n, name, offsets, flat) : NULL;
}

int ed_lower_kernels(ed_cg *cg, const ed_graph *g, const char *prefix, const int64_t *offsets, LLVMValueRef *kern)
{
    kernel_table t = {.cap = 16};
    while (t.cap < 4 * g->nnodes) t.cap *= 2; /* a pooled flat node takes two slots */
    t.slot = alloc_array(t.cap, sizeof *t.slot);
    int st = t.slot ? ED_OK : ED_ERR;
    for (int i = 0; i < g->nnodes && st == ED_OK; i++) {
        const ed_node *n = g->nodes[i];
        if (!has_kernel(n)) continue;
        if (n->op == ED_OP_LOOP) /* its body is its own program */
            kern[i] = emit_kernel(cg, n, prefix, offsets);
        else if (ed_flat_applies(n))
            kern[i] = shared_kernel(cg, &t, n, prefix, offsets, ed_flat_pooled(n) ? FORM_POOL : FORM_FLAT);
        else kern[i] = shared_kernel(cg, &t, n, prefix, offsets, FORM_WHOLE);
        if (!kern[i]) st = ED_ERR;
    }
    for (int i = 0; t.slot && i < t.cap; i++) free(t.slot[i].key);
    free(t.slot);
    return st;
}

static LLVMValueRef host_ptr(ed_cg *cg, const void *p)
{
    return LLVMConstIntToPtr(ed_cg_i64(cg, (int64_t)(uintptr_t)p), cg->ptr);
}

/* --check-numerics: ed_numerics_check(fault, value, numel, is_f64, node) after the kernel.
 * The function, the fault record and the node are addresses in this process, baked in as
 * constants (the program that holds them outlives its code). */
static void emit_numerics_check(ed_cg *cg, const ed_node *n, LLVMValueRef value)
{
    if ((n->dtype != ED_F32 && n->dtype != ED_F64) || n->op == ED_OP_LOOP) return; /* its gets are checked */
    LLVMTypeRef params[] = {cg->ptr, cg->ptr, cg->i64, cg->i32, cg->ptr};
    LLVMTypeRef ft = LLVMFunctionType(cg->vd, params, 5, 0);
    LLVMValueRef args[] = {host_ptr(cg, cg->numerics), value, ed_cg_i64(cg, ed_shape_numel(n->shape)),
                           LLVMConstInt(cg->i32, n->dtype == ED_F64, 0), host_ptr(cg, n)};
    LLVMBuildCall2(cg->b, ft, host_ptr(cg, (const void *)(uintptr_t)ed_numerics_check), args, 5, "");
}

int ed_lower_calls(ed_cg *cg, const ed_graph *g, ed_node *const *order, const LLVMValueRef *kern,
                   const LLVMValueRef *vals, LLVMValueRef seed, LLVMValueRef call)
{
    int maxin = 0;
    for (int i = 0; i < g->nnodes; i++) maxin = g->nodes[i]->nin > maxin ? g->nodes[i]->nin : maxin;
    LLVMValueRef *args = alloc_array(maxin + 5, sizeof *args);
    if (!args) return ED_ERR;
    for (int i = 0; i < g->nnodes; i++) {
        const ed_node *n = order[i];
        LLVMValueRef k = kern[n->id];
        if (!k) continue;
        args[0] = vals[n->id];
        for (int j = 0; j < n->nin; j++) args[j + 1] = vals[n->in[j]->id];
        args[n->nin + 1] = seed;
        args[n->nin + 2] = call;
        /* a flat kernel (two more parameters) does elements [0, numel) */
        unsigned na = LLVMCountParams(k);
        args[n->nin + 3] = ed_cg_i64(cg, 0);
        args[n->nin + 4] = ed_cg_i64(cg, ed_shape_numel(n->shape));
        LLVMBuildCall2(cg->b, LLVMGlobalGetValueType(k), k, args, na, "");
        if (cg->numerics) emit_numerics_check(cg, n, vals[n->id]);
    }
    free(args);
    return ED_OK;
}

LLVMValueRef ed_cg_byte_gep(ed_cg *cg, LLVMValueRef base, int64_t off)
{
    LLVMValueRef o = ed_cg_i64(cg, off);
    return LLVMBuildInBoundsGEP2(cg->b, LLVMInt8TypeInContext(cg->ctx), base, &o, 1, "");
}

/* In ed_entry, where node id's value is: arena + its constant offset, or for a bound
 * leaf (input, param, state) the pointer in values[id]. */
static LLVMValueRef value_ptr(ed_cg *cg, LLVMValueRef entry, const int64_t *offsets, int id)
{
    if (offsets[id] >= 0) return ed_cg_byte_gep(cg, LLVMGetParam(entry, 0), offsets[id]);
    LLVMValueRef slot = ed_cg_i64(cg, id);
    slot = LLVMBuildInBoundsGEP2(cg->b, cg->ptr, LLVMGetParam(entry, 1), &slot, 1, "");
    return LLVMBuildLoad2(cg->b, cg->ptr, slot, "");
}

/* The arena is 64-byte aligned and no other pointer reaches it during a call (fed
 * tensors that overlap program memory are staged by compile.c): say so to LLVM. */
static void mark_arena_param(ed_cg *cg, LLVMValueRef entry)
{
    unsigned noalias = LLVMGetEnumAttributeKindForName("noalias", 7);
    unsigned align = LLVMGetEnumAttributeKindForName("align", 5);
    LLVMAddAttributeAtIndex(entry, 1, LLVMCreateEnumAttribute(cg->ctx, noalias, 0));
    LLVMAddAttributeAtIndex(entry, 1, LLVMCreateEnumAttribute(cg->ctx, align, 64));
}

int ed_lower_program(ed_cg *cg, const ed_graph *g, ed_node *const *order, const int64_t *offsets)
{
    if (ed_jit_check(g) != ED_OK) return ED_ERR;
    LLVMValueRef *kern = calloc((size_t)g->nnodes + 1, sizeof *kern);
    LLVMValueRef *vals = calloc((size_t)g->nnodes + 1, sizeof *vals);
    if (!kern || !vals) {
        free(kern), free(vals);
        return ed_fail("backend jit: out of memory");
    }
    int st = ed_lower_kernels(cg, g, "", offsets, kern);
    if (st == ED_OK) {
        LLVMTypeRef ep[4] = {cg->ptr, cg->ptr, cg->i64, cg->i64};
        LLVMValueRef entry = LLVMAddFunction(cg->mod, "ed_entry", LLVMFunctionType(cg->vd, ep, 4, 0));
        mark_arena_param(cg, entry);
        cg->fn = entry;
        LLVMPositionBuilderAtEnd(cg->b, LLVMAppendBasicBlockInContext(cg->ctx, entry, "entry"));
        for (int i = 0; i < g->nnodes; i++) vals[order[i]->id] = value_ptr(cg, entry, offsets, order[i]->id);
        st = ed_lower_calls(cg, g, order, kern, vals, LLVMGetParam(entry, 2), LLVMGetParam(entry, 3));
        LLVMBuildRetVoid(cg->b);
    }
    free(kern);
    free(vals);
    return st;
}
