/* Reductions over any set of axes, in the interpreter's order: an outer walk over the
 * kept axes (meeting output elements in C order) and an inner walk over the reduced
 * ones (meeting a group's elements in C order). Sums accumulate in double (i64 for
 * i32) strictly in that order, so results are bit-identical to the interpreter; this
 * also means the inner loop does not vectorize (that needs reassociation). The
 * accumulator is shared with fused reductions (lower_fused.c).
 *
 * Sums and means over leading axes (a bias gradient: [B, K] over axis 0) interchange
 * the loops instead (lower_leading): one accumulator per output element in a stack
 * array, rows in C order, and per row a contiguous loop over the K outputs. Each
 * output still adds its elements in the same order, so the bits are unchanged, and
 * the loop over outputs vectorizes. */
#include "backend/llvm/lower.h"

#include <string.h>

static bool is_pick(ed_op op) { return op == ED_OP_MAX || op == ED_OP_MIN || op == ED_OP_ARGMAX || op == ED_OP_ARGMIN; }

void ed_red_acc_init(ed_cg *cg, ed_red_acc *a, const ed_node *n)
{
    ed_dtype dt = n->in[0]->dtype;
    *a = (ed_red_acc){.n = n};
    if (is_pick(n->op)) {
        a->best = ed_cg_alloca(cg, ed_cg_type(cg, dt));
        a->at = ed_cg_alloca(cg, cg->i64);
        a->j = ed_cg_alloca(cg, cg->i64);
    } else {
        a->acc = ed_cg_alloca(cg, dt == ED_I32 ? cg->i64 : cg->f64);
    }
}

void ed_red_acc_start(ed_cg *cg, ed_red_acc *a)
{
    LLVMBuilderRef b = cg->b;
    ed_dtype dt = a->n->in[0]->dtype;
    if (is_pick(a->n->op)) {
        LLVMBuildStore(b, ed_cg_i64(cg, 0), a->j);
        LLVMBuildStore(b, ed_cg_i64(cg, 0), a->at);
        LLVMBuildStore(b, LLVMConstNull(ed_cg_type(cg, dt)), a->best);
    } else {
        LLVMBuildStore(b, LLVMConstNull(dt == ED_I32 ? cg->i64 : cg->f64), a->acc);
    }
}

void ed_red_acc_add(ed_cg *cg, ed_red_acc *a, LLVMValueRef v)
{
    LLVMBuilderRef b = cg->b;
    ed_dtype dt = a->n->in[0]->dtype;
    if (!is_pick(a->n->op)) {
        LLVMValueRef acc = LLVMBuildLoad2(b, dt == ED_I32 ? cg->i64 : cg->f64, a->acc, "");
        if (dt == ED_I32) acc = LLVMBuildAdd(b, acc, LLVMBuildSExt(b, v, cg->i64, ""), "");
        else acc = LLVMBuildFAdd(b, acc, dt == ED_F32 ? LLVMBuildFPExt(b, v, cg->f64, "") : v, "");
        LLVMBuildStore(b, acc, a->acc);
        return;
    }
    /* The first element, then any that beats the best: a NaN wins and the first NaN stays. */
    bool want_max = a->n->op == ED_OP_MAX || a->n->op == ED_OP_ARGMAX;
    LLVMValueRef j = LLVMBuildLoad2(b, cg->i64, a->j, "");
    LLVMValueRef best = LLVMBuildLoad2(b, ed_cg_type(cg, dt), a->best, "");
    LLVMValueRef take;
    if (dt == ED_I32) {
        take = LLVMBuildICmp(b, want_max ? LLVMIntSGT : LLVMIntSLT, v, best, "");
    } else {
        LLVMValueRef better = LLVMBuildFCmp(b, want_max ? LLVMRealOGT : LLVMRealOLT, v, best, "");
        LLVMValueRef vnan = LLVMBuildFCmp(b, LLVMRealUNO, v, v, "");
        LLVMValueRef bnum = LLVMBuildFCmp(b, LLVMRealORD, best, best, "");
        take = LLVMBuildAnd(b, bnum, LLVMBuildOr(b, vnan, better, ""), "");
    }
    take = LLVMBuildOr(b, take, LLVMBuildICmp(b, LLVMIntEQ, j, ed_cg_i64(cg, 0), ""), "");
    LLVMBuildStore(b, LLVMBuildSelect(b, take, v, best, ""), a->best);
    LLVMValueRef at = LLVMBuildLoad2(b, cg->i64, a->at, "");
    LLVMBuildStore(b, LLVMBuildSelect(b, take, j, at, ""), a->at);
    LLVMBuildStore(b, LLVMBuildAdd(b, j, ed_cg_i64(cg, 1), ""), a->j);
}

LLVMValueRef ed_red_acc_result(ed_cg *cg, ed_red_acc *a, int64_t count)
{
    LLVMBuilderRef b = cg->b;
    const ed_node *n = a->n;
    ed_dtype dt = n->in[0]->dtype;
    if (n->op == ED_OP_ARGMAX || n->op == ED_OP_ARGMIN)
        return LLVMBuildTrunc(b, LLVMBuildLoad2(b, cg->i64, a->at, ""), cg->i32, "");
    if (is_pick(n->op)) return LLVMBuildLoad2(b, ed_cg_type(cg, dt), a->best, "");
    if (dt == ED_I32) return LLVMBuildTrunc(b, LLVMBuildLoad2(b, cg->i64, a->acc, ""), cg->i32, "");
    LLVMValueRef r = LLVMBuildLoad2(b, cg->f64, a->acc, "");
    if (n->op == ED_OP_MEAN) r = LLVMBuildFDiv(b, r, LLVMConstReal(cg->f64, (double)count), "");
    if (dt == ED_F32) r = LLVMBuildFPTrunc(b, r, cg->f32, "");
    return r;
}

typedef struct {
    ed_red_acc acc;
    int64_t red_stride[ED_MAX_RANK];
    ed_shape red;
} reduce_ud;

static void inner_body(ed_cg *cg, LLVMValueRef *ptrs, void *udp)
{
    reduce_ud *u = udp;
    ed_dtype dt = u->acc.n->in[0]->dtype;
    ed_red_acc_add(cg, &u->acc, LLVMBuildLoad2(cg->b, ed_cg_type(cg, dt), ptrs[0], ""));
}

static void outer_body(ed_cg *cg, LLVMValueRef *ptrs, void *udp)
{
    reduce_ud *u = udp;
    ed_red_acc_start(cg, &u->acc);
    ed_lop in = {.ty = ed_cg_type(cg, u->acc.n->in[0]->dtype), .ptr = ptrs[1]};
    memcpy(in.stride, u->red_stride, sizeof in.stride);
    ed_lower_walk(cg, u->red, &in, 1, inner_body, u);
    LLVMBuildStore(cg->b, ed_red_acc_result(cg, &u->acc, ed_shape_numel(u->red)), ptrs[0]);
}

/* The interchanged loop's limits: below MIN outputs the strided walk is as good; the
 * accumulators live on the stack of ed_run's caller, at most MAX doubles (128 KB). */
#define LEADING_MIN_K 8
#define LEADING_MAX_K 16384

bool ed_red_leading(const ed_node *n, int64_t *rows, int64_t *cols)
{
    if (n->op != ED_OP_SUM && n->op != ED_OP_MEAN) return false;
    const ed_shape xs = n->in[0]->shape;
    bool kept_seen = false;
    *rows = *cols = 1;
    for (int a = 0; a < xs.rank; a++) {
        if (xs.dim[a] == 1) continue;
        if (n->attr.axes >> a & 1) {
            if (kept_seen) return false;
            *rows *= xs.dim[a];
        } else {
            kept_seen = true;
            *cols *= xs.dim[a];
        }
    }
    return *rows >= 1 && *cols >= LEADING_MIN_K && *cols <= LEADING_MAX_K;
}

LLVMTypeRef ed_red_acc_type(ed_cg *cg, const ed_node *n) { return n->in[0]->dtype == ED_I32 ? cg->i64 : cg->f64; }

/* The kernel is kept out of line so that its accumulator array is on the stack only
 * while it runs (inlined into ed_entry, every such kernel's array would share one
 * frame). */
LLVMValueRef ed_red_acc_array(ed_cg *cg, ed_red_acc *a, int64_t cols)
{
    LLVMTypeRef ty = ed_red_acc_type(cg, a->n);
    LLVMValueRef accs = ed_cg_alloca(cg, LLVMArrayType2(ty, (uint64_t)cols));
    LLVMSetAlignment(accs, 64);
    unsigned noinline = LLVMGetEnumAttributeKindForName("noinline", 8);
    LLVMAddAttributeAtIndex(cg->fn, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(cg->ctx, noinline, 0));
    ed_loop c = ed_loop_open(cg);
    a->acc = LLVMBuildInBoundsGEP2(cg->b, ty, accs, &c.i, 1, "");
    ed_red_acc_start(cg, a);
    ed_loop_close(cg, &c, cols);
    return accs;
}

/* Point a at accumulator c of the array accs. */
static void acc_at(ed_cg *cg, ed_red_acc *a, LLVMTypeRef ty, LLVMValueRef accs, LLVMValueRef c)
{
    a->acc = LLVMBuildInBoundsGEP2(cg->b, ty, accs, &c, 1, "");
}

/* Columns per unit of a split leading sum: a 64-byte line of f32, so chunks do not share
   lines of the output or of the rows they read. */
#define LEADING_BLOCK 16

/* Zero the accumulators; for each row r, for each c: acc[c] += x[r * cols + c]; then
 * out[c] = result(acc[c]): ed_red_acc's own add and result on each element, so the
 * same operations as the strided walk. A split kernel (lower_split.c) does this for its
 * columns [first, last), blocks [begin, end) of LEADING_BLOCK: each output's rows in the
 * same order, so the same bits. */
static void lower_leading(ed_cg *cg, const ed_node *n, LLVMValueRef *args, int64_t rows, int64_t cols)
{
    LLVMBuilderRef b = cg->b;
    ed_red_acc a = {.n = n}; /* acc points into the array */
    LLVMTypeRef acc_ty = ed_red_acc_type(cg, n);
    LLVMTypeRef in_ty = ed_cg_type(cg, n->in[0]->dtype);
    LLVMValueRef accs = ed_red_acc_array(cg, &a, cols);
    ed_split *sp = cg->split;
    LLVMValueRef first = NULL, last = NULL;
    if (sp) {
        sp->walks++;
        sp->extent = (cols + LEADING_BLOCK - 1) / LEADING_BLOCK;
        first = LLVMBuildNSWMul(b, sp->begin, ed_cg_i64(cg, LEADING_BLOCK), "");
        last = LLVMBuildNSWMul(b, sp->end, ed_cg_i64(cg, LEADING_BLOCK), "");
        LLVMValueRef over = LLVMBuildICmp(b, LLVMIntSGT, last, ed_cg_i64(cg, cols), "");
        last = LLVMBuildSelect(b, over, ed_cg_i64(cg, cols), last, "");
    }

    ed_loop r = ed_loop_open(cg);
    LLVMValueRef row = LLVMBuildNSWMul(b, r.i, ed_cg_i64(cg, cols), "");
    ed_loop c = sp ? ed_loop_open_at(cg, first) : ed_loop_open(cg);
    LLVMValueRef at = LLVMBuildNSWAdd(b, row, c.i, "");
    LLVMValueRef v = LLVMBuildLoad2(b, in_ty, LLVMBuildInBoundsGEP2(b, in_ty, args[1], &at, 1, ""), "");
    acc_at(cg, &a, acc_ty, accs, c.i);
    ed_red_acc_add(cg, &a, v);
    if (sp) ed_loop_close_at(cg, &c, last);
    else ed_loop_close(cg, &c, cols);
    ed_loop_close(cg, &r, rows);

    c = sp ? ed_loop_open_at(cg, first) : ed_loop_open(cg);
    acc_at(cg, &a, acc_ty, accs, c.i);
    LLVMValueRef res = ed_red_acc_result(cg, &a, rows);
    LLVMBuildStore(b, res, LLVMBuildInBoundsGEP2(b, ed_cg_type(cg, n->dtype), args[0], &c.i, 1, ""));
    if (sp) ed_loop_close_at(cg, &c, last);
    else ed_loop_close(cg, &c, cols);
}

void ed_lower_reduce(ed_cg *cg, const ed_node *n, LLVMValueRef *args)
{
    int64_t rows, cols;
    if (ed_red_leading(n, &rows, &cols)) {
        lower_leading(cg, n, args, rows, cols);
        return;
    }
    const ed_shape xs = n->in[0]->shape;
    int64_t st[ED_MAX_RANK];
    ed_shape_strides(xs, st);
    reduce_ud u = {0};
    ed_shape kept = {0};
    ed_lop ops[2] = {{.ty = ed_cg_type(cg, n->dtype), .ptr = args[0]},
                     {.ty = ed_cg_type(cg, n->in[0]->dtype), .ptr = args[1]}};
    for (int a = 0; a < xs.rank; a++) {
        if (n->attr.axes >> a & 1) {
            u.red_stride[u.red.rank] = st[a];
            u.red.dim[u.red.rank++] = xs.dim[a];
        } else {
            ops[1].stride[kept.rank] = st[a];
            kept.dim[kept.rank++] = xs.dim[a];
        }
    }
    ed_shape_strides(kept, ops[0].stride); /* output elements in C order over kept axes */
    ed_red_acc_init(cg, &u.acc, n);
    ed_lower_walk(cg, kept, ops, 2, outer_body, &u);
}
