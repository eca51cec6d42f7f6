/* Elementwise and movement kernels: one strided walk over the output with each input
 * read through its numpy-broadcast strides (baked in as constants).
 *
 * Semantics follow ir/scalar.c. Ops whose f32 result equals the double computation
 * rounded once (add, sub, mul, div, sqrt, compares, max/min, ...) are emitted natively
 * in the element type so they vectorize. On f32, exp, log, tanh, erf, sigmoid, silu,
 * softplus and gelu (both forms) are inline f32 polynomials (lower_math.c): no calls,
 * so they vectorize too, within a few ulp of the double result rounded to float but
 * not bit-identical to the interpreter (bounds measured by tests/test_jit_math.c).
 * The rest (those ops on f64; sin, cos, pow, rsqrt, leaky_relu, clamp on any type)
 * are computed in double like the interpreter, calling libm where needed, and rounded
 * at the end, which makes them bit-identical to it; an op with no case here calls its
 * scalar semantics (ed_scalar_eval3), so a new op needs no lowering to be right, only
 * to be fast. f64 stays on libm on purpose: it
 * exists for gradient checks, where agreement with the oracle beats speed. No
 * fast-math flags anywhere. */
#include "interp/iter.h"
#include "backend/llvm/lower.h"

#include <math.h>

static LLVMValueRef intrinsic1(ed_cg *cg, const char *name, LLVMTypeRef ty, LLVMValueRef v)
{
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    LLVMValueRef f = LLVMGetIntrinsicDeclaration(cg->mod, id, &ty, 1);
    LLVMTypeRef ft = LLVMIntrinsicGetType(cg->ctx, id, &ty, 1);
    return LLVMBuildCall2(cg->b, ft, f, &v, 1, "");
}

static LLVMValueRef libm1(ed_cg *cg, const char *name, LLVMValueRef x)
{
    return ed_cg_call(cg, name, cg->f64, &cg->f64, 1, &x);
}

static LLVMValueRef dconst(ed_cg *cg, double v) { return LLVMConstReal(cg->f64, v); }

static LLVMValueRef to_double(ed_cg *cg, LLVMValueRef v, ed_dtype dt)
{
    if (dt == ED_F32) return LLVMBuildFPExt(cg->b, v, cg->f64, "");
    if (dt == ED_I32) return LLVMBuildSIToFP(cg->b, v, cg->f64, "");
    return v;
}

/* ed_scalar_round: float rounding, or the host's ed_to_i32 (wrap, NaN -> 0). */
static LLVMValueRef from_double(ed_cg *cg, LLVMValueRef v, ed_dtype dt)
{
    if (dt == ED_F32) return LLVMBuildFPTrunc(cg->b, v, cg->f32, "");
    if (dt == ED_I32) return ed_cg_call(cg, "ed_to_i32", cg->i32, &cg->f64, 1, &v);
    return v;
}

static LLVMValueRef is_nan(ed_cg *cg, LLVMValueRef v) { return LLVMBuildFCmp(cg->b, LLVMRealUNO, v, v, ""); }

/* maximum/minimum with the NaN rule: any NaN operand gives NaN; otherwise a > b ? a : b. */
static LLVMValueRef nan_pick(ed_cg *cg, LLVMValueRef a, LLVMValueRef b, bool want_max, LLVMTypeRef ty)
{
    LLVMValueRef gt = LLVMBuildFCmp(cg->b, want_max ? LLVMRealOGT : LLVMRealOLT, a, b, "");
    LLVMValueRef r = LLVMBuildSelect(cg->b, gt, a, b, "");
    LLVMValueRef nan = LLVMBuildFCmp(cg->b, LLVMRealUNO, a, b, "");
    return LLVMBuildSelect(cg->b, nan, LLVMConstReal(ty, NAN), r, "");
}

static LLVMValueRef sigmoid_d(ed_cg *cg, LLVMValueRef u)
{
    /* exp(-|u|) is exp(-u) for u >= 0 and exp(u) otherwise: one call, both branches. */
    LLVMValueRef e = libm1(cg, "exp", LLVMBuildFNeg(cg->b, intrinsic1(cg, "llvm.fabs", cg->f64, u), ""));
    LLVMValueRef onep = LLVMBuildFAdd(cg->b, dconst(cg, 1), e, "");
    LLVMValueRef pos = LLVMBuildFDiv(cg->b, dconst(cg, 1), onep, "");
    LLVMValueRef neg = LLVMBuildFDiv(cg->b, e, onep, "");
    return LLVMBuildSelect(cg->b, LLVMBuildFCmp(cg->b, LLVMRealOGE, u, dconst(cg, 0), ""), pos, neg, "");
}

/* The ops computed in double (x already converted), as ir/scalar.c writes them. */
static LLVMValueRef eval_double(ed_cg *cg, const ed_node *n, LLVMValueRef *x)
{
    LLVMBuilderRef b = cg->b;
    LLVMValueRef u = x[0], zero = dconst(cg, 0);
    switch (n->op) {
    case ED_OP_POW: {
        LLVMTypeRef p2[2] = {cg->f64, cg->f64};
        return ed_cg_call(cg, "pow", cg->f64, p2, 2, x);
    }
    case ED_OP_EXP: return libm1(cg, "exp", u);
    case ED_OP_LOG: return libm1(cg, "log", u);
    case ED_OP_TANH: return libm1(cg, "tanh", u);
    case ED_OP_ERF: return libm1(cg, "erf", u);
    case ED_OP_SIN: return libm1(cg, "sin", u);
    case ED_OP_COS: return libm1(cg, "cos", u);
    case ED_OP_RSQRT: return LLVMBuildFDiv(b, dconst(cg, 1), intrinsic1(cg, "llvm.sqrt", cg->f64, u), "");
    case ED_OP_SIGMOID: return sigmoid_d(cg, u);
    case ED_OP_SILU: return LLVMBuildFMul(b, u, sigmoid_d(cg, u), "");
    case ED_OP_SOFTPLUS: {
        LLVMValueRef pos = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGT, u, zero, ""), u, zero, "");
        LLVMValueRef e = libm1(cg, "exp", LLVMBuildFNeg(b, intrinsic1(cg, "llvm.fabs", cg->f64, u), ""));
        return LLVMBuildFAdd(b, pos, libm1(cg, "log1p", e), "");
    }
    case ED_OP_GELU: {
        LLVMValueRef half_u = LLVMBuildFMul(b, dconst(cg, 0.5), u, "");
        LLVMValueRef t;
        if (n->attr.approx) {
            LLVMValueRef c3 = LLVMBuildFMul(b, LLVMBuildFMul(b, LLVMBuildFMul(b, dconst(cg, 0.044715), u, ""), u, ""), u, "");
            LLVMValueRef in = LLVMBuildFMul(b, dconst(cg, 0.79788456080286535588), LLVMBuildFAdd(b, u, c3, ""), "");
            t = libm1(cg, "tanh", in);
        } else {
            t = libm1(cg, "erf", LLVMBuildFMul(b, u, dconst(cg, 0.70710678118654752440), ""));
        }
        return LLVMBuildFMul(b, half_u, LLVMBuildFAdd(b, dconst(cg, 1), t, ""), "");
    }
    case ED_OP_LEAKY_RELU: {
        LLVMValueRef ge = LLVMBuildFCmp(b, LLVMRealOGE, u, zero, "");
        return LLVMBuildSelect(b, ge, u, LLVMBuildFMul(b, dconst(cg, n->attr.alpha), u, ""), "");
    }
    case ED_OP_CLAMP:
        return nan_pick(cg, nan_pick(cg, u, dconst(cg, n->attr.lo), true, cg->f64), dconst(cg, n->attr.hi), false,
                        cg->f64);
    default: return NULL;
    }
}

static LLVMValueRef int_div(ed_cg *cg, LLVMValueRef a, LLVMValueRef d)
{
    /* x/0 = 0 and INT_MIN/-1 wraps (as ed_to_i32 does); sdiv would trap on both. */
    LLVMBuilderRef b = cg->b;
    LLVMValueRef zero = LLVMConstInt(cg->i32, 0, 0), m1 = LLVMConstInt(cg->i32, (unsigned long long)-1, 1);
    LLVMValueRef is0 = LLVMBuildICmp(b, LLVMIntEQ, d, zero, ""), ism1 = LLVMBuildICmp(b, LLVMIntEQ, d, m1, "");
    LLVMValueRef safe = LLVMBuildSelect(b, LLVMBuildOr(b, is0, ism1, ""), LLVMConstInt(cg->i32, 1, 0), d, "");
    LLVMValueRef q = LLVMBuildSDiv(b, a, safe, "");
    q = LLVMBuildSelect(b, ism1, LLVMBuildSub(b, zero, a, ""), q, "");
    return LLVMBuildSelect(b, is0, zero, q, "");
}

/* Native ops in element type idt (the inputs'); NULL when the op goes through double. */
static LLVMValueRef eval_native(ed_cg *cg, const ed_node *n, LLVMValueRef *x, ed_dtype idt)
{
    LLVMBuilderRef b = cg->b;
    bool fl = idt != ED_I32;
    LLVMTypeRef ty = ed_cg_type(cg, idt);
    LLVMValueRef u = x[0], zero = fl ? LLVMConstReal(ty, 0) : LLVMConstInt(ty, 0, 0);
    static const LLVMRealPredicate fp[] = {LLVMRealOLT, LLVMRealOLE, LLVMRealOGT, LLVMRealOGE, LLVMRealOEQ};
    static const LLVMIntPredicate ip[] = {LLVMIntSLT, LLVMIntSLE, LLVMIntSGT, LLVMIntSGE, LLVMIntEQ};
    switch (n->op) {
    case ED_OP_ADD: return fl ? LLVMBuildFAdd(b, u, x[1], "") : LLVMBuildAdd(b, u, x[1], "");
    case ED_OP_SUB: return fl ? LLVMBuildFSub(b, u, x[1], "") : LLVMBuildSub(b, u, x[1], "");
    case ED_OP_MUL: return fl ? LLVMBuildFMul(b, u, x[1], "") : LLVMBuildMul(b, u, x[1], "");
    case ED_OP_SQUARE: return fl ? LLVMBuildFMul(b, u, u, "") : LLVMBuildMul(b, u, u, "");
    case ED_OP_DIV: return fl ? LLVMBuildFDiv(b, u, x[1], "") : int_div(cg, u, x[1]);
    case ED_OP_MAXIMUM:
    case ED_OP_MINIMUM:
        if (fl) return nan_pick(cg, u, x[1], n->op == ED_OP_MAXIMUM, ty);
        return LLVMBuildSelect(b, LLVMBuildICmp(b, n->op == ED_OP_MAXIMUM ? LLVMIntSGT : LLVMIntSLT, u, x[1], ""),
                               u, x[1], "");
    case ED_OP_LT: case ED_OP_LE: case ED_OP_GT: case ED_OP_GE: case ED_OP_EQ: {
        int k = n->op - ED_OP_LT;
        LLVMValueRef c = fl ? LLVMBuildFCmp(b, fp[k], u, x[1], "") : LLVMBuildICmp(b, ip[k], u, x[1], "");
        return LLVMBuildZExt(b, c, cg->i32, "");
    }
    case ED_OP_WHERE: return LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntNE, u, LLVMConstInt(cg->i32, 0, 0), ""), x[1], x[2], "");
    case ED_OP_NEG: return fl ? LLVMBuildFNeg(b, u, "") : LLVMBuildSub(b, zero, u, "");
    case ED_OP_ABS:
        if (fl) return intrinsic1(cg, "llvm.fabs", ty, u);
        return LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLT, u, zero, ""), LLVMBuildSub(b, zero, u, ""), u, "");
    case ED_OP_SQRT: return intrinsic1(cg, "llvm.sqrt", ty, u);
    case ED_OP_RELU: {
        if (!fl) return LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSGT, u, zero, ""), u, zero, "");
        LLVMValueRef r = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGT, u, zero, ""), u, zero, "");
        return LLVMBuildSelect(b, is_nan(cg, u), u, r, "");
    }
    case ED_OP_SIGN: {
        LLVMValueRef one = fl ? LLVMConstReal(ty, 1) : LLVMConstInt(ty, 1, 0);
        LLVMValueRef mone = fl ? LLVMConstReal(ty, -1) : LLVMConstInt(ty, (unsigned long long)-1, 1);
        LLVMValueRef pos = fl ? LLVMBuildFCmp(b, LLVMRealOGT, u, zero, "") : LLVMBuildICmp(b, LLVMIntSGT, u, zero, "");
        LLVMValueRef neg = fl ? LLVMBuildFCmp(b, LLVMRealOLT, u, zero, "") : LLVMBuildICmp(b, LLVMIntSLT, u, zero, "");
        LLVMValueRef r = LLVMBuildSelect(b, pos, one, LLVMBuildSelect(b, neg, mone, zero, ""), "");
        return fl ? LLVMBuildSelect(b, is_nan(cg, u), u, r, "") : r;
    }
    case ED_OP_STOP_GRADIENT: return u;
    default: return NULL;
    }
}

static LLVMValueRef eval_cast(ed_cg *cg, LLVMValueRef u, ed_dtype from, ed_dtype to)
{
    if (from == to) return u;
    if (to == ED_I32) return from_double(cg, to_double(cg, u, from), ED_I32);
    if (from == ED_I32) return LLVMBuildSIToFP(cg->b, u, ed_cg_type(cg, to), "");
    return to == ED_F64 ? LLVMBuildFPExt(cg->b, u, cg->f64, "") : LLVMBuildFPTrunc(cg->b, u, cg->f32, "");
}

/* Any op without attributes that has no case above: a call to its scalar semantics
 * (ir/scalar.c), in double like the interpreter, so the result is the same. */
static LLVMValueRef eval_by_call(ed_cg *cg, const ed_node *n, LLVMValueRef *x)
{
    LLVMTypeRef p[5] = {cg->i32, cg->i32, cg->f64, cg->f64, cg->f64};
    LLVMValueRef a[5] = {LLVMConstInt(cg->i32, (unsigned long long)n->op, 0),
                         LLVMConstInt(cg->i32, (unsigned long long)n->dtype, 0), dconst(cg, 0), dconst(cg, 0),
                         dconst(cg, 0)};
    for (int k = 0; k < n->nin; k++) a[2 + k] = x[k];
    return ed_cg_call(cg, "ed_scalar_eval3", cg->f64, p, 5, a);
}

LLVMValueRef ed_lower_elem_value(ed_cg *cg, const ed_node *n, LLVMValueRef *x)
{
    /* where's first input is the i32 condition; the value type is its second. */
    ed_dtype idt = n->in[n->op == ED_OP_WHERE ? 1 : 0]->dtype;
    LLVMValueRef r;
    if (n->op == ED_OP_CAST) return eval_cast(cg, x[0], idt, n->dtype);
    if ((r = ed_math_f32(cg, n, x[0])) || (r = eval_native(cg, n, x, idt))) return r;
    LLVMValueRef d[3];
    for (int k = 0; k < n->nin; k++) d[k] = to_double(cg, x[k], n->in[k]->dtype);
    if (!(r = eval_double(cg, n, d))) r = eval_by_call(cg, n, d);
    return from_double(cg, r, n->dtype);
}

static void elem_body(ed_cg *cg, LLVMValueRef *ptrs, void *ud)
{
    const ed_node *n = ud;
    LLVMValueRef x[3];
    for (int k = 0; k < n->nin; k++)
        x[k] = LLVMBuildLoad2(cg->b, ed_cg_type(cg, n->in[k]->dtype), ptrs[k + 1], "");
    LLVMBuildStore(cg->b, ed_lower_elem_value(cg, n, x), ptrs[0]);
}

/* eval_by_call passes no attributes: an op with some needs a case of its own. */
bool ed_lower_elem_ok(ed_op op)
{
    if (ed_ops[op].kind != ED_KIND_ELEM) return false;
    return ed_ops[op].attrs == 0 || op == ED_OP_LEAKY_RELU || op == ED_OP_GELU || op == ED_OP_CLAMP;
}

void ed_lower_elem(ed_cg *cg, const ed_node *n, LLVMValueRef *args)
{
    ed_lop ops[4] = {{0}};
    ops[0].ty = ed_cg_type(cg, n->dtype);
    ops[0].ptr = args[0];
    ed_shape_strides(n->shape, ops[0].stride);
    for (int k = 0; k < n->nin; k++) {
        ops[k + 1].ty = ed_cg_type(cg, n->in[k]->dtype);
        ops[k + 1].ptr = args[k + 1];
        ed_iter_bcast_strides(ops[k + 1].stride, n->in[k]->shape, n->shape);
    }
    ed_lower_walk(cg, n->shape, ops, n->nin + 1, elem_body, (void *)n);
}

/* ---- movement: bit copies (integer loads keep NaN payloads) ---------------------- */

static void copy_body(ed_cg *cg, LLVMValueRef *ptrs, void *ud)
{
    LLVMTypeRef ty = ud;
    LLVMBuildStore(cg->b, LLVMBuildLoad2(cg->b, ty, ptrs[1], ""), ptrs[0]);
}

typedef struct {
    LLVMValueRef v;
} fill_ud;

static void fill_body(ed_cg *cg, LLVMValueRef *ptrs, void *ud)
{
    LLVMBuildStore(cg->b, ((fill_ud *)ud)->v, ptrs[0]);
}

bool ed_lower_move_ok(ed_op op)
{
    return op == ED_OP_RESHAPE || op == ED_OP_TRANSPOSE || op == ED_OP_BROADCAST_TO || op == ED_OP_SLICE ||
           op == ED_OP_CONCAT || op == ED_OP_PAD;
}

void ed_lower_move(ed_cg *cg, const ed_node *n, LLVMValueRef *args)
{
    LLVMTypeRef bits = n->dtype == ED_F64 ? cg->i64 : cg->i32;
    ed_shape xs0 = n->in[0]->shape;
    int64_t xs[ED_MAX_RANK], os[ED_MAX_RANK];
    ed_shape_strides(xs0, xs);
    ed_shape_strides(n->shape, os);
    ed_lop ops[2] = {{.ty = bits, .ptr = args[0]}, {.ty = bits, .ptr = args[1]}};
    for (int a = 0; a < ED_MAX_RANK; a++) ops[0].stride[a] = os[a];
    int r = n->shape.rank;
    switch (n->op) {
    case ED_OP_RESHAPE: /* same bytes: walk the output with the input read densely */
        ed_shape_strides(n->shape, ops[1].stride);
        break;
    case ED_OP_TRANSPOSE:
        for (int a = 0; a < r; a++) ops[1].stride[a] = xs[n->attr.perm[a]];
        break;
    case ED_OP_BROADCAST_TO: ed_iter_bcast_strides(ops[1].stride, xs0, n->shape); break;
    case ED_OP_SLICE:
        for (int a = 0; a < r; a++) {
            ops[1].stride[a] = xs[a] * n->attr.step[a];
            ops[1].base += xs[a] * n->attr.start[a];
        }
        break;
    case ED_OP_PAD: {
        fill_ud f;
        double v = ed_scalar_round(n->attr.pad_value, n->dtype);
        f.v = n->dtype == ED_I32 ? LLVMConstInt(cg->i32, (unsigned long long)(int64_t)v, 1)
                                 : LLVMConstReal(ed_cg_type(cg, n->dtype), v);
        ops[0].ty = ed_cg_type(cg, n->dtype);
        ed_lower_walk(cg, n->shape, ops, 1, fill_body, &f);
        ops[0].ty = bits;
        for (int a = 0; a < r; a++) ops[0].base += os[a] * n->attr.pad_lo[a];
        memcpy(ops[1].stride, xs, sizeof xs);
        ed_lower_walk(cg, xs0, ops, 2, copy_body, bits);
        return;
    }
    case ED_OP_CONCAT: {
        int64_t at = 0;
        for (int k = 0; k < n->nin; k++) {
            ed_shape s = n->in[k]->shape;
            ops[0].base = at * os[n->attr.axis];
            ops[1].ptr = args[k + 1];
            ed_shape_strides(s, ops[1].stride);
            ed_lower_walk(cg, s, ops, 2, copy_body, bits);
            at += s.dim[n->attr.axis];
        }
        return;
    }
    default: return;
    }
    ed_lower_walk(cg, n->shape, ops, 2, copy_body, bits);
}
