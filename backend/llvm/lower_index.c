/* Indexing kernels, in the interpreter's loop order (interp/index.c): the data
 * is viewed as [outer, dim, inner] around the axis and the indices as one flat i32
 * list. gather copies bits from the clamped index; scatter_add copies base, then adds
 * updates in index order, dropping out-of-range ones; one_hot zero-fills, then writes
 * a 1 per in-range index. Sizes are static and baked in as constants. */
#include "backend/llvm/lower.h"

static LLVMValueRef elem_ptr(ed_cg *cg, LLVMTypeRef ty, LLVMValueRef base, LLVMValueRef i)
{
    return LLVMBuildInBoundsGEP2(cg->b, ty, base, &i, 1, "");
}

/* (a * n + b) with a constant n: the [outer, dim, inner] offset arithmetic. */
static LLVMValueRef mul_add(ed_cg *cg, LLVMValueRef a, int64_t n, LLVMValueRef b)
{
    return LLVMBuildNSWAdd(cg->b, LLVMBuildNSWMul(cg->b, a, ed_cg_i64(cg, n), ""), b, "");
}

/* Offset of row [o, k, 0] in a [outer, mid, inner] layout. */
static LLVMValueRef row_start(ed_cg *cg, LLVMValueRef o, int64_t mid, LLVMValueRef k, int64_t inner)
{
    return LLVMBuildNSWMul(cg->b, mul_add(cg, o, mid, k), ed_cg_i64(cg, inner), "");
}

/* idx[i] sign-extended to i64, so negative indices stay negative. */
static LLVMValueRef load_index(ed_cg *cg, LLVMValueRef idx, LLVMValueRef i)
{
    LLVMValueRef j = LLVMBuildLoad2(cg->b, cg->i32, elem_ptr(cg, cg->i32, idx, i), "");
    return LLVMBuildSExt(cg->b, j, cg->i64, "");
}

/* Branch into a new block when 0 <= j < dim (one unsigned compare: a negative j is
 * huge as unsigned). Returns the join block; close_if continues there. */
static LLVMBasicBlockRef open_if_in_range(ed_cg *cg, LLVMValueRef j, int64_t dim)
{
    LLVMValueRef ok = LLVMBuildICmp(cg->b, LLVMIntULT, j, ed_cg_i64(cg, dim), "");
    LLVMBasicBlockRef then = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "in_range");
    LLVMBasicBlockRef join = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "next");
    LLVMBuildCondBr(cg->b, ok, then, join);
    LLVMPositionBuilderAtEnd(cg->b, then);
    return join;
}

static void close_if(ed_cg *cg, LLVMBasicBlockRef join)
{
    LLVMBuildBr(cg->b, join);
    LLVMPositionBuilderAtEnd(cg->b, join);
}

/* Element alignment only: a fed tensor need not be 64-byte aligned. */
static unsigned elem_align(ed_dtype dt) { return (unsigned)ed_dtype_size(dt); }

/* ---- gather ------------------------------------------------------------------------ */

/* j < 0 -> 0, j >= dim -> dim - 1 (dim > 0). */
static LLVMValueRef clamp_index(ed_cg *cg, LLVMValueRef j, int64_t dim)
{
    LLVMValueRef zero = ed_cg_i64(cg, 0), last = ed_cg_i64(cg, dim - 1);
    j = LLVMBuildSelect(cg->b, LLVMBuildICmp(cg->b, LLVMIntSLT, j, zero, ""), zero, j, "");
    return LLVMBuildSelect(cg->b, LLVMBuildICmp(cg->b, LLVMIntSGT, j, last, ""), last, j, "");
}

/* out[o, i, :] = x[o, clamp(idx[i]), :], one row of inner elements per memcpy (a bit
 * copy, so NaN payloads survive as in the interpreter). */
static void lower_gather(ed_cg *cg, const ed_node *n, LLVMValueRef *args)
{
    ed_axis_view v = ed_axis_view_of(n->in[0]->shape, n->attr.axis);
    int64_t ni = ed_shape_numel(n->in[1]->shape);
    if (v.dim == 0 || ed_shape_numel(n->shape) == 0) return; /* shape rule: dim 0 only if out is empty */
    LLVMTypeRef ety = ed_cg_type(cg, n->dtype);
    unsigned al = elem_align(n->dtype);
    LLVMValueRef row_bytes = ed_cg_i64(cg, v.inner * (int64_t)ed_dtype_size(n->dtype));
    ed_loop lo = ed_loop_open(cg);
    ed_loop li = ed_loop_open(cg);
    LLVMValueRef j = clamp_index(cg, load_index(cg, args[2], li.i), v.dim);
    LLVMValueRef src = row_start(cg, lo.i, v.dim, j, v.inner);
    LLVMValueRef dst = row_start(cg, lo.i, ni, li.i, v.inner);
    LLVMBuildMemCpy(cg->b, elem_ptr(cg, ety, args[0], dst), al, elem_ptr(cg, ety, args[1], src), al, row_bytes);
    ed_loop_close(cg, &li, ni);
    ed_loop_close(cg, &lo, v.outer);
}

/* ---- scatter_add ------------------------------------------------------------------- */

/* The interpreter adds in double and rounds to the dtype: for f32 that equals one
 * native float add (53 >= 2 * 24 + 2 bits: no double rounding), for i32 a wrapping add. */
static LLVMValueRef add(ed_cg *cg, ed_dtype dt, LLVMValueRef a, LLVMValueRef b)
{
    return dt == ED_I32 ? LLVMBuildAdd(cg->b, a, b, "") : LLVMBuildFAdd(cg->b, a, b, "");
}

/* out[at .. at + inner) += upd[from .. from + inner), element by element. */
static void add_row(ed_cg *cg, const ed_node *n, LLVMValueRef *args, LLVMValueRef at, LLVMValueRef from, int64_t inner)
{
    LLVMTypeRef ety = ed_cg_type(cg, n->dtype);
    ed_loop lr = ed_loop_open(cg);
    LLVMValueRef po = elem_ptr(cg, ety, args[0], LLVMBuildNSWAdd(cg->b, at, lr.i, ""));
    LLVMValueRef pu = elem_ptr(cg, ety, args[3], LLVMBuildNSWAdd(cg->b, from, lr.i, ""));
    LLVMValueRef sum = add(cg, n->dtype, LLVMBuildLoad2(cg->b, ety, po, ""), LLVMBuildLoad2(cg->b, ety, pu, ""));
    LLVMBuildStore(cg->b, sum, po);
    ed_loop_close(cg, &lr, inner);
}

/* out = base, then for o, then i in order: out[o, idx[i], :] += upd[o, i, :] when the
 * index is in range. The i loop stays outside the row loop, so repeated indices add
 * up in index order exactly like the interpreter. */
static void lower_scatter_add(ed_cg *cg, const ed_node *n, LLVMValueRef *args)
{
    int64_t bytes = ed_shape_numel(n->shape) * (int64_t)ed_dtype_size(n->dtype);
    unsigned al = elem_align(n->dtype);
    if (bytes) LLVMBuildMemCpy(cg->b, args[0], al, args[1], al, ed_cg_i64(cg, bytes));
    ed_axis_view v = ed_axis_view_of(n->in[0]->shape, n->attr.axis);
    int64_t ni = ed_shape_numel(n->in[1]->shape);
    if (v.dim == 0 || v.outer * ni * v.inner == 0) return; /* no update lands */
    ed_loop lo = ed_loop_open(cg);
    ed_loop li = ed_loop_open(cg);
    LLVMValueRef j = load_index(cg, args[2], li.i);
    LLVMBasicBlockRef join = open_if_in_range(cg, j, v.dim);
    LLVMValueRef at = row_start(cg, lo.i, v.dim, j, v.inner);
    LLVMValueRef from = row_start(cg, lo.i, ni, li.i, v.inner);
    add_row(cg, n, args, at, from, v.inner);
    close_if(cg, join);
    ed_loop_close(cg, &li, ni);
    ed_loop_close(cg, &lo, v.outer);
}

/* ---- one_hot ----------------------------------------------------------------------- */

static LLVMValueRef one(ed_cg *cg, ed_dtype dt)
{
    LLVMTypeRef ty = ed_cg_type(cg, dt);
    return dt == ED_I32 ? LLVMConstInt(ty, 1, 0) : LLVMConstReal(ty, 1.0);
}

/* Zero everything (0 and +0.0 are all-zero bits), then out[i, idx[i]] = 1 for each
 * index in [0, depth): the same values as the interpreter's d == j test per element. */
static void lower_one_hot(ed_cg *cg, const ed_node *n, LLVMValueRef *args)
{
    int64_t depth = n->shape.dim[n->shape.rank - 1];
    int64_t ni = ed_shape_numel(n->in[0]->shape);
    if (ni * depth == 0) return;
    LLVMTypeRef ety = ed_cg_type(cg, n->dtype);
    LLVMValueRef zero8 = LLVMConstInt(LLVMInt8TypeInContext(cg->ctx), 0, 0);
    int64_t bytes = ni * depth * (int64_t)ed_dtype_size(n->dtype);
    LLVMBuildMemSet(cg->b, args[0], zero8, ed_cg_i64(cg, bytes), elem_align(n->dtype));
    ed_loop li = ed_loop_open(cg);
    LLVMValueRef j = load_index(cg, args[1], li.i);
    LLVMBasicBlockRef join = open_if_in_range(cg, j, depth);
    LLVMBuildStore(cg->b, one(cg, n->dtype), elem_ptr(cg, ety, args[0], mul_add(cg, li.i, depth, j)));
    close_if(cg, join);
    ed_loop_close(cg, &li, ni);
}

/* ---- dispatch ---------------------------------------------------------------------- */

bool ed_lower_index_ok(ed_op op) { return op == ED_OP_GATHER || op == ED_OP_ONE_HOT || op == ED_OP_SCATTER_ADD; }

void ed_lower_index(ed_cg *cg, const ed_node *n, LLVMValueRef *args)
{
    switch (n->op) {
    case ED_OP_GATHER: lower_gather(cg, n, args); break;
    case ED_OP_SCATTER_ADD: lower_scatter_add(cg, n, args); break;
    case ED_OP_ONE_HOT: lower_one_hot(cg, n, args); break;
    default: break;
    }
}
