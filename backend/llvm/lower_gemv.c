/* Small-batch matmul x[m, k] * W[k, n] (W the right operand, not transposed) as a
 * JIT-generated GEMV: W is streamed once per block of up to 4 rows of x, 8 rows of W at
 * a time read left to right in panels of a few 8-wide vectors (the panel's sums in
 * registers, added to the result after each block of 8 rows of W).
 * At batch 1 the weights' bytes decide the time, which sgemm's packing wastes. */
#include "backend/llvm/lower.h"

#include <stdlib.h>

enum { VW = 8 }; /* floats per vector: AVX2 (the kernel is correct at any width) */

/* Rows of x handled per pass over W, and 8-wide vectors per panel for that many rows:
 * rows * vectors accumulators plus the panel's loads stay within 16 registers. */
static const int panel_vectors[5] = {0, 8, 4, 2, 2};
enum { MAX_BLOCK_ROWS = 4, KBLOCK = 8 };

int ed_gemv_max_rows(void)
{
    /* EDIFICE_GEMV_ROWS overrides the crossover (0: always sgemm), to measure it
     * (bench/RESULTS.md); the value shapes the IR, so the object cache keys on it. */
    const char *e = getenv("EDIFICE_GEMV_ROWS");
    if (e && *e) {
        char *end;
        long v = strtol(e, &end, 10);
        if (*end == 0 && v >= 0 && v <= 64) return (int)v;
    }
    return ED_GEMV_MAX_ROWS;
}

bool ed_gemv_applies(const ed_node *n)
{
    const ed_shape os = n->shape;
    if (n->dtype != ED_F32 || n->attr.tb || os.rank < 2) return false;
    /* One matrix: every batch dim of the result is 1. */
    for (int i = 0; i < os.rank - 2; i++)
        if (os.dim[i] != 1) return false;
    int64_t m = os.dim[os.rank - 2];
    return m >= 1 && m <= ed_gemv_max_rows() && os.dim[os.rank - 1] > 0;
}

typedef struct {
    LLVMValueRef x, w, c;  /* operand pointers */
    int64_t m, n, k;       /* result [m, n], k the summed dim */
    bool ta;               /* x stored [k, m] */
} gemv;

static LLVMValueRef gep(ed_cg *cg, LLVMTypeRef ty, LLVMValueRef p, LLVMValueRef i)
{
    return LLVMBuildInBoundsGEP2(cg->b, ty, p, &i, 1, "");
}

static LLVMValueRef splat(ed_cg *cg, LLVMValueRef s, unsigned width)
{
    LLVMTypeRef vt = LLVMVectorType(cg->f32, width);
    LLVMValueRef v = LLVMBuildInsertElement(cg->b, LLVMGetPoison(vt), s, LLVMConstInt(cg->i32, 0, 0), "");
    LLVMValueRef zero = LLVMConstNull(LLVMVectorType(cg->i32, width));
    return LLVMBuildShuffleVector(cg->b, v, LLVMGetPoison(vt), zero, "");
}

static LLVMValueRef fmuladd(ed_cg *cg, LLVMTypeRef vt, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c)
{
    const char *name = "llvm.fmuladd";
    unsigned id = LLVMLookupIntrinsicID(name, 12);
    LLVMValueRef f = LLVMGetIntrinsicDeclaration(cg->mod, id, &vt, 1);
    LLVMTypeRef ft = LLVMIntrinsicGetType(cg->ctx, id, &vt, 1);
    return LLVMBuildCall2(cg->b, ft, f, (LLVMValueRef[]){a, b, c}, 3, "");
}

/* One panel: rows r0..r0+rows-1 of the result, columns j .. j + nvec * width - 1 (j an
 * i64 value), adding W's rows k0 .. k0 + kcount - 1 (k0 an i64 value) in order to what
 * the result holds. */
static void emit_panel(ed_cg *cg, const gemv *g, int64_t r0, int rows, int nvec, unsigned width, LLVMValueRef j,
                       LLVMValueRef k0, int64_t kcount)
{
    LLVMTypeRef vt = LLVMVectorType(cg->f32, width);
    LLVMValueRef acc[MAX_BLOCK_ROWS][8], cptr[MAX_BLOCK_ROWS][8];
    for (int r = 0; r < rows; r++)
        for (int v = 0; v < nvec; v++) {
            LLVMValueRef at = LLVMBuildNSWAdd(cg->b, j, ed_cg_i64(cg, (r0 + r) * g->n + (int64_t)v * width), "");
            cptr[r][v] = gep(cg, cg->f32, g->c, at);
            acc[r][v] = ed_cg_alloca(cg, vt); /* promoted to registers by SROA */
            LLVMValueRef c = LLVMBuildLoad2(cg->b, vt, cptr[r][v], "");
            LLVMSetAlignment(c, 4);
            LLVMBuildStore(cg->b, c, acc[r][v]);
        }
    ed_loop l = ed_loop_open(cg);
    LLVMValueRef p = LLVMBuildNSWAdd(cg->b, k0, l.i, "");
    LLVMValueRef wrow = LLVMBuildNSWAdd(cg->b, LLVMBuildNSWMul(cg->b, p, ed_cg_i64(cg, g->n), ""), j, "");
    LLVMValueRef wv[8];
    for (int v = 0; v < nvec; v++) {
        LLVMValueRef at = LLVMBuildNSWAdd(cg->b, wrow, ed_cg_i64(cg, (int64_t)v * width), "");
        wv[v] = LLVMBuildLoad2(cg->b, vt, gep(cg, cg->f32, g->w, at), "");
        LLVMSetAlignment(wv[v], 4);
    }
    for (int r = 0; r < rows; r++) {
        int64_t row = r0 + r;
        LLVMValueRef xi = g->ta ? LLVMBuildNSWAdd(cg->b, LLVMBuildNSWMul(cg->b, p, ed_cg_i64(cg, g->m), ""),
                                                  ed_cg_i64(cg, row), "")
                                : LLVMBuildNSWAdd(cg->b, ed_cg_i64(cg, row * g->k), p, "");
        LLVMValueRef xs = splat(cg, LLVMBuildLoad2(cg->b, cg->f32, gep(cg, cg->f32, g->x, xi), ""), width);
        for (int v = 0; v < nvec; v++) {
            LLVMValueRef a = LLVMBuildLoad2(cg->b, vt, acc[r][v], "");
            LLVMBuildStore(cg->b, fmuladd(cg, vt, xs, wv[v], a), acc[r][v]);
        }
    }
    ed_loop_close(cg, &l, kcount);
    for (int r = 0; r < rows; r++)
        for (int v = 0; v < nvec; v++) {
            LLVMValueRef st = LLVMBuildStore(cg->b, LLVMBuildLoad2(cg->b, vt, acc[r][v], ""), cptr[r][v]);
            LLVMSetAlignment(st, 4);
        }
}

/* W's rows k0 .. k0 + kcount - 1 into result rows r0..: full panels in a loop, then the
 * leftover whole vectors as one narrower panel, then the last n % 8 columns one float
 * wide. A block of KBLOCK rows of W is read as KBLOCK sequential streams. */
static void emit_kblock(ed_cg *cg, const gemv *g, int64_t r0, int rows, LLVMValueRef k0, int64_t kcount)
{
    int nvec = panel_vectors[rows];
    int64_t panel = (int64_t)nvec * VW, full = g->n / panel, done = full * panel;
    if (full > 0) {
        ed_loop l = ed_loop_open(cg);
        emit_panel(cg, g, r0, rows, nvec, VW, LLVMBuildNSWMul(cg->b, l.i, ed_cg_i64(cg, panel), ""), k0, kcount);
        ed_loop_close(cg, &l, full);
    }
    int64_t vecs = (g->n - done) / VW;
    if (vecs > 0) emit_panel(cg, g, r0, rows, (int)vecs, VW, ed_cg_i64(cg, done), k0, kcount);
    done += vecs * VW;
    if (g->n > done) emit_panel(cg, g, r0, rows, (int)(g->n - done), 1, ed_cg_i64(cg, done), k0, kcount);
}

/* Result rows r0..r0+rows-1: W's rows in blocks of KBLOCK, then the rest. */
static void emit_rows(ed_cg *cg, const gemv *g, int64_t r0, int rows)
{
    int64_t blocks = g->k / KBLOCK, rest = g->k % KBLOCK;
    if (blocks > 0) {
        ed_loop l = ed_loop_open(cg);
        emit_kblock(cg, g, r0, rows, LLVMBuildNSWMul(cg->b, l.i, ed_cg_i64(cg, KBLOCK), ""), KBLOCK);
        ed_loop_close(cg, &l, blocks);
    }
    if (rest > 0) emit_kblock(cg, g, r0, rows, ed_cg_i64(cg, blocks * KBLOCK), rest);
}

void ed_lower_gemv(ed_cg *cg, const ed_node *n, LLVMValueRef *args)
{
    const ed_shape os = n->shape, as = n->in[0]->shape;
    gemv g = {.x = args[1], .w = args[2], .c = args[0], .m = os.dim[os.rank - 2], .n = os.dim[os.rank - 1],
              .k = as.dim[as.rank - (n->attr.ta ? 2 : 1)], .ta = n->attr.ta};
    /* The panels add into the result, which starts at zero (also k = 0's empty sum). */
    LLVMBuildMemSet(cg->b, g.c, LLVMConstInt(LLVMInt8TypeInContext(cg->ctx), 0, 0), ed_cg_i64(cg, g.m * g.n * 4), 4);
    if (g.k == 0) return;
    for (int64_t r0 = 0; r0 < g.m; r0 += MAX_BLOCK_ROWS) {
        int rows = g.m - r0 < MAX_BLOCK_ROWS ? (int)(g.m - r0) : MAX_BLOCK_ROWS;
        emit_rows(cg, &g, r0, rows);
    }
}
