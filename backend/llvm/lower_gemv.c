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

bool ed_gemv_one_matrix(const ed_node *n)
{
    for (int i = 0; i < n->shape.rank - 2; i++)
        if (n->shape.dim[i] != 1) return false;
    return true;
}

bool ed_gemv_applies(const ed_node *n)
{
    const ed_shape os = n->shape;
    if (n->dtype != ED_F32 || n->attr.tb || os.rank < 2 || !ed_gemv_one_matrix(n)) return false;
    int64_t m = os.dim[os.rank - 2];
    /* 16-bit weights have no sgemm: every row count takes this kernel. */
    return ed_dtype_is_16bit(n->in[1]->dtype) || (m >= 1 && m <= ed_gemv_max_rows());
}

typedef struct {
    LLVMValueRef x, w, c; /* operand pointers */
    int64_t m, n, k;      /* result [m, n], k the summed dim */
    bool ta;              /* x stored [k, m] */
    ed_dtype wt;          /* W's dtype: f32, or bf16 / f16 widened as it is loaded */
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

/* width elements of W from element `at`, as f32: bf16 is f32's upper half (a shift),
 * f16 LLVM's fpext from half (F16C's vcvtph2ps on this host). */
static LLVMValueRef load_w(ed_cg *cg, const gemv *g, LLVMValueRef at, unsigned width)
{
    LLVMTypeRef vt = LLVMVectorType(cg->f32, width);
    if (g->wt == ED_F32) {
        LLVMValueRef v = LLVMBuildLoad2(cg->b, vt, gep(cg, cg->f32, g->w, at), "");
        LLVMSetAlignment(v, 4);
        return v;
    }
    LLVMTypeRef i16 = LLVMInt16TypeInContext(cg->ctx), ht = LLVMVectorType(i16, width);
    LLVMValueRef h = LLVMBuildLoad2(cg->b, ht, gep(cg, i16, g->w, at), "");
    LLVMSetAlignment(h, 2);
    if (g->wt == ED_F16)
        return LLVMBuildFPExt(
            cg->b, LLVMBuildBitCast(cg->b, h, LLVMVectorType(LLVMHalfTypeInContext(cg->ctx), width), ""), vt, "");
    LLVMValueRef sixteen[VW];
    for (unsigned i = 0; i < width; i++) sixteen[i] = LLVMConstInt(cg->i32, 16, 0);
    LLVMValueRef wide = LLVMBuildZExt(cg->b, h, LLVMVectorType(cg->i32, width), "");
    return LLVMBuildBitCast(cg->b, LLVMBuildShl(cg->b, wide, LLVMConstVector(sixteen, width), ""), vt, "");
}

/* bf16 W in panels of 8-wide vectors is read as pairs: 16 values loaded as 8 32-bit
 * words, each word's high half an odd column's f32 (the low half masked off) and its low
 * half, shifted up, an even column's: no shuffle per load, where widening 8 at a time
 * takes one (vpmovzxwd) per vector. The pair's sums stay in even, odd column order
 * until the panel stores them. */
static bool bf16_pairs(const gemv *g, unsigned width) { return g->wt == ED_BF16 && width == VW; }

static void load_bf16_pair(ed_cg *cg, const gemv *g, LLVMValueRef at, LLVMValueRef *even, LLVMValueRef *odd)
{
    LLVMTypeRef i16 = LLVMInt16TypeInContext(cg->ctx), wt = LLVMVectorType(cg->i32, VW);
    LLVMTypeRef vt = LLVMVectorType(cg->f32, VW);
    LLVMValueRef w = LLVMBuildLoad2(cg->b, wt, gep(cg, i16, g->w, at), "");
    LLVMSetAlignment(w, 2);
    LLVMValueRef sixteen[VW], high[VW];
    for (int i = 0; i < VW; i++)
        sixteen[i] = LLVMConstInt(cg->i32, 16, 0), high[i] = LLVMConstInt(cg->i32, 0xffff0000u, 0);
    *even = LLVMBuildBitCast(cg->b, LLVMBuildShl(cg->b, w, LLVMConstVector(sixteen, VW), ""), vt, "");
    *odd = LLVMBuildBitCast(cg->b, LLVMBuildAnd(cg->b, w, LLVMConstVector(high, VW), ""), vt, "");
}

/* The lanes of a, b (2 * VW in all) at lane(i) for i < VW. */
static LLVMValueRef pick(ed_cg *cg, LLVMValueRef a, LLVMValueRef b, int (*lane)(int, int), int half)
{
    LLVMValueRef mask[VW];
    for (int i = 0; i < VW; i++) mask[i] = LLVMConstInt(cg->i32, (unsigned long long)lane(i, half), 0);
    return LLVMBuildShuffleVector(cg->b, a, b, LLVMConstVector(mask, VW), "");
}
static int every_other(int i, int odd) { return 2 * i + odd; }                           /* c0, c1 -> even or odd */
static int interleaved(int i, int upper) { return upper * VW / 2 + i / 2 + i % 2 * VW; } /* even, odd -> c0 or c1 */

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
static void emit_panel(ed_cg *cg, const gemv *g, LLVMValueRef r0, int rows, int nvec, unsigned width, LLVMValueRef j,
                       LLVMValueRef k0, int64_t kcount)
{
    LLVMTypeRef vt = LLVMVectorType(cg->f32, width);
    LLVMValueRef acc[MAX_BLOCK_ROWS][8], cptr[MAX_BLOCK_ROWS][8];
    for (int r = 0; r < rows; r++)
        for (int v = 0; v < nvec; v++) {
            LLVMValueRef row = LLVMBuildNSWAdd(cg->b, r0, ed_cg_i64(cg, r), "");
            LLVMValueRef at = LLVMBuildNSWAdd(cg->b, LLVMBuildNSWMul(cg->b, row, ed_cg_i64(cg, g->n), ""),
                                              ed_cg_i64(cg, (int64_t)v * width), "");
            at = LLVMBuildNSWAdd(cg->b, at, j, "");
            cptr[r][v] = gep(cg, cg->f32, g->c, at);
            acc[r][v] = ed_cg_alloca(cg, vt); /* promoted to registers by SROA */
            LLVMValueRef c = LLVMBuildLoad2(cg->b, vt, cptr[r][v], "");
            LLVMSetAlignment(c, 4);
            LLVMBuildStore(cg->b, c, acc[r][v]);
        }
    for (int r = 0; r < rows; r++) /* a bf16 pair's sums in even, odd column order */
        for (int v = 0; v + 1 < nvec && bf16_pairs(g, width); v += 2) {
            LLVMValueRef c0 = LLVMBuildLoad2(cg->b, vt, acc[r][v], ""),
                         c1 = LLVMBuildLoad2(cg->b, vt, acc[r][v + 1], "");
            LLVMBuildStore(cg->b, pick(cg, c0, c1, every_other, 0), acc[r][v]);
            LLVMBuildStore(cg->b, pick(cg, c0, c1, every_other, 1), acc[r][v + 1]);
        }
    ed_loop l = ed_loop_open(cg);
    LLVMValueRef p = LLVMBuildNSWAdd(cg->b, k0, l.i, "");
    LLVMValueRef wrow = LLVMBuildNSWAdd(cg->b, LLVMBuildNSWMul(cg->b, p, ed_cg_i64(cg, g->n), ""), j, "");
    LLVMValueRef wv[8];
    for (int v = 0; v < nvec; v++) {
        LLVMValueRef at = LLVMBuildNSWAdd(cg->b, wrow, ed_cg_i64(cg, (int64_t)v * width), "");
        if (v + 1 < nvec && bf16_pairs(g, width)) load_bf16_pair(cg, g, at, &wv[v], &wv[v + 1]), v++;
        else wv[v] = load_w(cg, g, at, width);
    }
    for (int r = 0; r < rows; r++) {
        LLVMValueRef row = LLVMBuildNSWAdd(cg->b, r0, ed_cg_i64(cg, r), "");
        LLVMValueRef xi = g->ta ? LLVMBuildNSWAdd(cg->b, LLVMBuildNSWMul(cg->b, p, ed_cg_i64(cg, g->m), ""), row, "")
                                : LLVMBuildNSWAdd(cg->b, LLVMBuildNSWMul(cg->b, row, ed_cg_i64(cg, g->k), ""), p, "");
        LLVMValueRef xs = splat(cg, LLVMBuildLoad2(cg->b, cg->f32, gep(cg, cg->f32, g->x, xi), ""), width);
        for (int v = 0; v < nvec; v++) {
            LLVMValueRef a = LLVMBuildLoad2(cg->b, vt, acc[r][v], "");
            LLVMBuildStore(cg->b, fmuladd(cg, vt, xs, wv[v], a), acc[r][v]);
        }
    }
    ed_loop_close(cg, &l, kcount);
    for (int r = 0; r < rows; r++) /* back to column order */
        for (int v = 0; v + 1 < nvec && bf16_pairs(g, width); v += 2) {
            LLVMValueRef e = LLVMBuildLoad2(cg->b, vt, acc[r][v], ""), o = LLVMBuildLoad2(cg->b, vt, acc[r][v + 1], "");
            LLVMBuildStore(cg->b, pick(cg, e, o, interleaved, 0), acc[r][v]);
            LLVMBuildStore(cg->b, pick(cg, e, o, interleaved, 1), acc[r][v + 1]);
        }
    for (int r = 0; r < rows; r++)
        for (int v = 0; v < nvec; v++) {
            LLVMValueRef st = LLVMBuildStore(cg->b, LLVMBuildLoad2(cg->b, vt, acc[r][v], ""), cptr[r][v]);
            LLVMSetAlignment(st, 4);
        }
}

/* W's rows k0 .. k0 + kcount - 1 into result rows r0..: full panels in a loop, then the
 * leftover whole vectors as one narrower panel, then the last n % 8 columns one float
 * wide. A block of KBLOCK rows of W is read as KBLOCK sequential streams. */
static void emit_kblock(ed_cg *cg, const gemv *g, LLVMValueRef r0, int rows, LLVMValueRef k0, int64_t kcount)
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
static void emit_rows(ed_cg *cg, const gemv *g, LLVMValueRef r0, int rows)
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
    gemv g = {.x = args[1],
              .w = args[2],
              .c = args[0],
              .m = os.dim[os.rank - 2],
              .n = os.dim[os.rank - 1],
              .k = as.dim[as.rank - (n->attr.ta ? 2 : 1)],
              .ta = n->attr.ta,
              .wt = n->in[1]->dtype};
    /* The panels add into the result, which starts at zero (also k = 0's empty sum). */
    LLVMBuildMemSet(cg->b, g.c, LLVMConstInt(LLVMInt8TypeInContext(cg->ctx), 0, 0), ed_cg_i64(cg, g.m * g.n * 4), 4);
    if (g.k == 0) return;
    /* Blocks of MAX_BLOCK_ROWS rows in a loop (16-bit weights take any batch), then the rest. */
    int64_t blocks = g.m / MAX_BLOCK_ROWS, rest = g.m % MAX_BLOCK_ROWS;
    if (blocks > 0) {
        ed_loop l = ed_loop_open(cg);
        emit_rows(cg, &g, LLVMBuildNSWMul(cg->b, l.i, ed_cg_i64(cg, MAX_BLOCK_ROWS), ""), MAX_BLOCK_ROWS);
        ed_loop_close(cg, &l, blocks);
    }
    if (rest > 0) emit_rows(cg, &g, ed_cg_i64(cg, blocks * MAX_BLOCK_ROWS), (int)rest);
}
