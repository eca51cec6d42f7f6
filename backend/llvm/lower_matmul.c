/* matmul as calls to OpenBLAS (row-major cblas_sgemm, cblas_dgemm for f64), one per
 * batch element, or a GEMV kernel of our own for a few rows (lower_gemv.c). Batch offsets of a and b (numpy-broadcast batch dims) are computed
 * here and baked in as constant tables. */
#include "interp/iter.h"
#include "backend/llvm/lower.h"
#include "runtime/error.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

static LLVMValueRef offsets_table(ed_cg *cg, const int64_t *v, int64_t n)
{
    LLVMValueRef *c = malloc((size_t)n * sizeof *c);
    if (!c) return NULL;
    for (int64_t i = 0; i < n; i++) c[i] = ed_cg_i64(cg, v[i]);
    LLVMValueRef init = LLVMConstArray2(cg->i64, c, (uint64_t)n);
    free(c);
    LLVMValueRef g = LLVMAddGlobal(cg->mod, LLVMTypeOf(init), "mm_off");
    LLVMSetInitializer(g, init);
    LLVMSetGlobalConstant(g, 1);
    LLVMSetLinkage(g, LLVMPrivateLinkage);
    return g;
}

/* A split matmul's unit is a block of this many rows (or columns) of the result: a
   multiple of every sgemm micro-tile, so only the last block has a ragged edge. */
#define GEMM_SPLIT_BLOCK 32
/* Multiply-adds per chunk below which a split is not worth a worker. */
#define GEMM_SPLIT_MIN_MACS (1 << 18)

bool ed_split_gemm_on(void)
{
    const char *env = getenv("EDIFICE_SPLIT_GEMM");
    return !(env && strcmp(env, "0") == 0);
}

bool ed_split_gemm_applies(const ed_node *n)
{
    if (!ed_split_gemm_on()) return false;
    const ed_shape as = n->in[0]->shape, os = n->shape;
    int64_t k = as.dim[as.rank - (n->attr.ta ? 2 : 1)];
    int64_t macs = ed_shape_numel(os) * k;
    return macs >= 2 * GEMM_SPLIT_MIN_MACS && !ed_gemv_applies(n) && !ed_dtype_is_16bit(n->in[1]->dtype);
}

int ed_lower_matmul(ed_cg *cg, const ed_node *n, LLVMValueRef *args)
{
    LLVMBuilderRef b = cg->b;
    const ed_shape as = n->in[0]->shape, bs = n->in[1]->shape, os = n->shape;
    int ra = as.rank, rb = bs.rank, ro = os.rank;
    int64_t m = os.dim[ro - 2], nn = os.dim[ro - 1];
    int64_t k = as.dim[ra - (n->attr.ta ? 2 : 1)];
    int64_t a_cols = as.dim[ra - 1], b_cols = bs.dim[rb - 1];
    bool f32 = n->dtype == ED_F32;
    LLVMTypeRef ety = ed_cg_type(cg, n->dtype);
    size_t es = f32 ? 4 : 8;
    if (m * nn == 0) return ED_OK;
    if (ed_gemv_applies(n)) {
        ed_lower_gemv(cg, n, args);
        return ED_OK;
    }
    if (ed_dtype_is_16bit(n->in[1]->dtype)) /* the GEMV takes one matrix; no scratch widening yet */
        return ed_fail("backend jit: a batched matmul of a %s weight is not implemented (16-bit weights, issue 21)",
                       ed_dtype_name(n->in[1]->dtype));
    if (k == 0) { /* an empty sum: BLAS may not touch C, so zero it here */
        LLVMBuildMemSet(b, args[0], LLVMConstInt(LLVMInt8TypeInContext(cg->ctx), 0, 0),
                        ed_cg_i64(cg, m * nn * (int64_t)es), 64);
        return ED_OK;
    }

    /* Batch offsets of each operand's matrix, in elements. */
    ed_shape batch = {.rank = ro - 2}, ba = {.rank = ra - 2}, bb = {.rank = rb - 2};
    for (int i = 0; i < batch.rank; i++) batch.dim[i] = os.dim[i];
    for (int i = 0; i < ba.rank; i++) ba.dim[i] = as.dim[i];
    for (int i = 0; i < bb.rank; i++) bb.dim[i] = bs.dim[i];
    ed_iter it;
    ed_iter_init(&it, batch, 2);
    ed_iter_bcast_strides(it.stride[0], ba, batch);
    ed_iter_bcast_strides(it.stride[1], bb, batch);
    int64_t a_mat = as.dim[ra - 2] * a_cols, b_mat = bs.dim[rb - 2] * b_cols;
    for (int i = 0; i < batch.rank; i++) it.stride[0][i] *= a_mat, it.stride[1][i] *= b_mat;
    int64_t nbatch = ed_shape_numel(batch);
    int64_t *offs = malloc(2 * (size_t)nbatch * sizeof *offs);
    if (!offs) return ed_fail("backend jit: out of memory");
    for (int64_t t = 0; t < nbatch; t++, ed_iter_next(&it)) offs[t] = it.off[0], offs[nbatch + t] = it.off[1];

    LLVMTypeRef bi = sizeof(blasint) == 8 ? cg->i64 : cg->i32;
#define BI(v) LLVMConstInt(bi, (unsigned long long)(v), 0)
    LLVMTypeRef params[14] = {cg->i32, cg->i32, cg->i32, bi, bi, bi, ety, cg->ptr, bi, cg->ptr, bi, ety, cg->ptr, bi};
    LLVMValueRef A, B, C, M = BI(m), N = BI(nn);
    ed_loop l = {0};
    ed_split *sp = cg->split;
    if (nbatch == 1) {
        A = LLVMBuildInBoundsGEP2(b, ety, args[1], (LLVMValueRef[]){ed_cg_i64(cg, offs[0])}, 1, "");
        B = LLVMBuildInBoundsGEP2(b, ety, args[2], (LLVMValueRef[]){ed_cg_i64(cg, offs[1])}, 1, "");
        C = args[0];
        if (sp) { /* blocks [begin, end) of the result's rows (a's) or columns (b's), the larger */
            bool rows = m >= nn;
            int64_t len = rows ? m : nn;
            sp->walks = 1;
            sp->extent = (len + GEMM_SPLIT_BLOCK - 1) / GEMM_SPLIT_BLOCK;
            int64_t block_macs = GEMM_SPLIT_BLOCK * (rows ? nn : m) * k;
            sp->grain = (GEMM_SPLIT_MIN_MACS + block_macs - 1) / block_macs;
            LLVMValueRef first = LLVMBuildMul(b, sp->begin, ed_cg_i64(cg, GEMM_SPLIT_BLOCK), "");
            LLVMValueRef last = LLVMBuildMul(b, sp->end, ed_cg_i64(cg, GEMM_SPLIT_BLOCK), "");
            LLVMValueRef over = LLVMBuildICmp(b, LLVMIntSGT, last, ed_cg_i64(cg, len), "");
            last = LLVMBuildSelect(b, over, ed_cg_i64(cg, len), last, "");
            LLVMValueRef count = LLVMBuildIntCast2(b, LLVMBuildSub(b, last, first, ""), bi, 1, "");
            /* row r of a is at r * a_cols, or column r at r when a is transposed; likewise b */
            LLVMValueRef step = ed_cg_i64(cg, rows ? (n->attr.ta ? 1 : a_cols) : (n->attr.tb ? b_cols : 1));
            LLVMValueRef at = LLVMBuildMul(b, first, step, "");
            if (rows) A = LLVMBuildInBoundsGEP2(b, ety, A, &at, 1, "");
            else B = LLVMBuildInBoundsGEP2(b, ety, B, &at, 1, "");
            LLVMValueRef c_at = rows ? LLVMBuildMul(b, first, ed_cg_i64(cg, nn), "") : first;
            C = LLVMBuildInBoundsGEP2(b, ety, C, &c_at, 1, "");
            if (rows) M = count;
            else N = count;
        }
    } else {
        LLVMValueRef tab = offsets_table(cg, offs, 2 * nbatch);
        if (!tab) {
            free(offs);
            return ed_fail("backend jit: out of memory");
        }
        if (sp) { /* matrices [begin, end) of the batch */
            sp->walks = 1;
            sp->extent = nbatch;
            sp->grain = (GEMM_SPLIT_MIN_MACS + m * nn * k - 1) / (m * nn * k);
        }
        l = sp ? ed_loop_open_at(cg, sp->begin) : ed_loop_open(cg);
        LLVMValueRef ia = LLVMBuildInBoundsGEP2(b, cg->i64, tab, &l.i, 1, "");
        LLVMValueRef ib = LLVMBuildInBoundsGEP2(b, cg->i64, ia, (LLVMValueRef[]){ed_cg_i64(cg, nbatch)}, 1, "");
        LLVMValueRef oa = LLVMBuildLoad2(b, cg->i64, ia, ""), ob = LLVMBuildLoad2(b, cg->i64, ib, "");
        A = LLVMBuildInBoundsGEP2(b, ety, args[1], &oa, 1, "");
        B = LLVMBuildInBoundsGEP2(b, ety, args[2], &ob, 1, "");
        LLVMValueRef oc = LLVMBuildMul(b, l.i, ed_cg_i64(cg, m * nn), "");
        C = LLVMBuildInBoundsGEP2(b, ety, args[0], &oc, 1, "");
    }
    free(offs);
    LLVMValueRef cargs[14] = {LLVMConstInt(cg->i32, CblasRowMajor, 0),
                              LLVMConstInt(cg->i32, n->attr.ta ? CblasTrans : CblasNoTrans, 0),
                              LLVMConstInt(cg->i32, n->attr.tb ? CblasTrans : CblasNoTrans, 0),
                              M,
                              N,
                              BI(k),
                              LLVMConstReal(ety, 1.0),
                              A,
                              BI(a_cols),
                              B,
                              BI(b_cols),
                              LLVMConstReal(ety, 0.0),
                              C,
                              BI(nn)};
#undef BI
    ed_cg_call(cg, f32 ? "cblas_sgemm" : "cblas_dgemm", cg->vd, params, 14, cargs);
    if (nbatch != 1 && sp) ed_loop_close_at(cg, &l, sp->end);
    else if (nbatch != 1) ed_loop_close(cg, &l, nbatch);
    return ED_OK;
}
