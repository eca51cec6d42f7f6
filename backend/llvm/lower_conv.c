/* The convolution ops. Direct form: per output element, a sum over a 3-D window of
 * products of two operands, in the interpreter's order and in double, so the same bits.
 * Terms in the padding are replaced by +0 (a select, no branch): the sum never holds -0,
 * so adding +0 is the interpreter's skip. Gemm form (f32): a call to conv_gemm.c with the
 * geometry as a constant table and a module-global im2col buffer shared by all. */
#include "backend/llvm/conv_gemm.h"
#include "backend/llvm/lower.h"
#include "ir/conv.h"

/* One convolution as a walk: output loops over out[4], window loops over win[3]; terms()
 * gives the offsets into the two operands and whether the term is inside. */
typedef struct {
    LLVMValueRef a, b, inside;
} conv_term;
typedef conv_term (*term_fn)(ed_cg *cg, const ed_conv_geom *g, LLVMValueRef *out, LLVMValueRef *win);

static LLVMValueRef k64(ed_cg *cg, int64_t v) { return ed_cg_i64(cg, v); }

static LLVMValueRef mul(ed_cg *cg, LLVMValueRef x, int64_t v) { return LLVMBuildNSWMul(cg->b, x, k64(cg, v), ""); }

static LLVMValueRef add(ed_cg *cg, LLVMValueRef x, LLVMValueRef y) { return LLVMBuildNSWAdd(cg->b, x, y, ""); }

/* ((i0 d1 + i1) d2 + i2) d3 + i3 */
static LLVMValueRef at4(ed_cg *cg, int64_t d1, int64_t d2, int64_t d3, LLVMValueRef *i)
{
    return add(cg, mul(cg, add(cg, mul(cg, add(cg, mul(cg, i[0], d1), i[1]), d2), i[2]), d3), i[3]);
}

/* The input row (or column) a window position reads: out * s - p + k * d, and whether
 * it is in [0, size). */
static LLVMValueRef in_pos(ed_cg *cg, LLVMValueRef out, LLVMValueRef k, int64_t s, int64_t p, int64_t d, int64_t size,
                           LLVMValueRef *inside)
{
    LLVMValueRef r = add(cg, add(cg, mul(cg, out, s), mul(cg, k, d)), k64(cg, -p));
    LLVMValueRef ok = LLVMBuildICmp(cg->b, LLVMIntULT, r, k64(cg, size), "");
    *inside = *inside ? LLVMBuildAnd(cg->b, *inside, ok, "") : ok;
    return r;
}

/* The output row a transposed position reads: (r + p - k d) / s when whole and in
 * [0, size). */
static LLVMValueRef out_pos(ed_cg *cg, LLVMValueRef r, LLVMValueRef k, int64_t s, int64_t p, int64_t d, int64_t size,
                            LLVMValueRef *inside)
{
    LLVMBuilderRef b = cg->b;
    LLVMValueRef t = LLVMBuildNSWSub(b, add(cg, r, k64(cg, p)), mul(cg, k, d), "");
    LLVMValueRef i = LLVMBuildSDiv(b, t, k64(cg, s), "");
    LLVMValueRef ok = LLVMBuildICmp(b, LLVMIntSGE, t, k64(cg, 0), "");
    ok = LLVMBuildAnd(b, ok, LLVMBuildICmp(b, LLVMIntEQ, LLVMBuildSRem(b, t, k64(cg, s), ""), k64(cg, 0), ""), "");
    ok = LLVMBuildAnd(b, ok, LLVMBuildICmp(b, LLVMIntSLT, i, k64(cg, size), ""), "");
    *inside = *inside ? LLVMBuildAnd(b, *inside, ok, "") : ok;
    return i;
}

/* conv2d: out (n, o, i, j), window (ci, p, q); a = x, b = w. */
static conv_term conv2d_term(ed_cg *cg, const ed_conv_geom *g, LLVMValueRef *out, LLVMValueRef *win)
{
    LLVMValueRef inside = NULL;
    LLVMValueRef grp = LLVMBuildUDiv(cg->b, out[1], k64(cg, g->og), "");
    LLVMValueRef c = add(cg, mul(cg, grp, g->cg), win[0]);
    LLVMValueRef r = in_pos(cg, out[2], win[1], g->sh, g->ph, g->dh, g->h, &inside);
    LLVMValueRef s = in_pos(cg, out[3], win[2], g->sw, g->pw, g->dw, g->w, &inside);
    LLVMValueRef xi[4] = {out[0], c, r, s}, wi[4] = {out[1], win[0], win[1], win[2]};
    return (conv_term){at4(cg, g->c, g->h, g->w, xi), at4(cg, g->cg, g->kh, g->kw, wi), inside};
}

/* conv_transpose2d: out (n, c, r, s), window (oi, p, q); a = y, b = w. */
static conv_term transpose_term(ed_cg *cg, const ed_conv_geom *g, LLVMValueRef *out, LLVMValueRef *win)
{
    LLVMValueRef inside = NULL;
    LLVMValueRef grp = LLVMBuildUDiv(cg->b, out[1], k64(cg, g->cg), "");
    LLVMValueRef cl = LLVMBuildURem(cg->b, out[1], k64(cg, g->cg), "");
    LLVMValueRef o = add(cg, mul(cg, grp, g->og), win[0]);
    LLVMValueRef i = out_pos(cg, out[2], win[1], g->sh, g->ph, g->dh, g->oh, &inside);
    LLVMValueRef j = out_pos(cg, out[3], win[2], g->sw, g->pw, g->dw, g->ow, &inside);
    LLVMValueRef yi[4] = {out[0], o, i, j}, wi[4] = {o, cl, win[1], win[2]};
    return (conv_term){at4(cg, g->o, g->oh, g->ow, yi), at4(cg, g->cg, g->kh, g->kw, wi), inside};
}

/* conv2d_weight_grad: out (o, ci, p, q), window (n, i, j); a = x, b = dy. */
static conv_term weight_grad_term(ed_cg *cg, const ed_conv_geom *g, LLVMValueRef *out, LLVMValueRef *win)
{
    LLVMValueRef inside = NULL;
    LLVMValueRef grp = LLVMBuildUDiv(cg->b, out[0], k64(cg, g->og), "");
    LLVMValueRef c = add(cg, mul(cg, grp, g->cg), out[1]);
    LLVMValueRef r = in_pos(cg, win[1], out[2], g->sh, g->ph, g->dh, g->h, &inside);
    LLVMValueRef s = in_pos(cg, win[2], out[3], g->sw, g->pw, g->dw, g->w, &inside);
    LLVMValueRef dyi[4] = {win[0], out[0], win[1], win[2]}, xi[4] = {win[0], c, r, s};
    return (conv_term){at4(cg, g->c, g->h, g->w, xi), at4(cg, g->o, g->oh, g->ow, dyi), inside};
}

static LLVMValueRef load_as_double(ed_cg *cg, const ed_node *n, LLVMValueRef base, LLVMValueRef off)
{
    LLVMTypeRef ety = ed_cg_type(cg, n->dtype);
    LLVMValueRef v = LLVMBuildLoad2(cg->b, ety, LLVMBuildInBoundsGEP2(cg->b, ety, base, &off, 1, ""), "");
    return n->dtype == ED_F64 ? v : LLVMBuildFPExt(cg->b, v, cg->f64, "");
}

static void lower_direct(ed_cg *cg, const ed_node *n, LLVMValueRef *args)
{
    LLVMBuilderRef b = cg->b;
    ed_conv_geom g = ed_conv_geom_of(n);
    int64_t out_dims[4], win_dims[3];
    term_fn term;
    if (n->op == ED_OP_CONV2D) {
        term = conv2d_term;
        int64_t od[4] = {g.n, g.o, g.oh, g.ow}, wd[3] = {g.cg, g.kh, g.kw};
        for (int k = 0; k < 4; k++) out_dims[k] = od[k];
        for (int k = 0; k < 3; k++) win_dims[k] = wd[k];
    } else if (n->op == ED_OP_CONV_TRANSPOSE2D) {
        term = transpose_term;
        int64_t od[4] = {g.n, g.c, g.h, g.w}, wd[3] = {g.og, g.kh, g.kw};
        for (int k = 0; k < 4; k++) out_dims[k] = od[k];
        for (int k = 0; k < 3; k++) win_dims[k] = wd[k];
    } else {
        term = weight_grad_term;
        int64_t od[4] = {g.o, g.cg, g.kh, g.kw}, wd[3] = {g.n, g.oh, g.ow};
        for (int k = 0; k < 4; k++) out_dims[k] = od[k];
        for (int k = 0; k < 3; k++) win_dims[k] = wd[k];
    }
    if (ed_shape_numel(n->shape) == 0) return;
    bool empty_window = win_dims[0] * win_dims[1] * win_dims[2] == 0;

    LLVMValueRef acc = ed_cg_alloca(cg, cg->f64);
    ed_loop ol[4], wl[3];
    LLVMValueRef oi[4], wi[3];
    for (int k = 0; k < 4; k++) ol[k] = ed_loop_open(cg), oi[k] = ol[k].i;
    LLVMBuildStore(b, LLVMConstReal(cg->f64, 0), acc);
    if (!empty_window) {
        for (int k = 0; k < 3; k++) wl[k] = ed_loop_open(cg), wi[k] = wl[k].i;
        conv_term t = term(cg, &g, oi, wi);
        /* An outside term reads offset 0 (in bounds) and is dropped by the select. */
        LLVMValueRef zero = k64(cg, 0);
        LLVMValueRef pa = LLVMBuildSelect(b, t.inside, t.a, zero, ""), pb = LLVMBuildSelect(b, t.inside, t.b, zero, "");
        LLVMValueRef prod = LLVMBuildFMul(b, load_as_double(cg, n->in[0], args[1], pa),
                                          load_as_double(cg, n->in[1], args[2], pb), "");
        prod = LLVMBuildSelect(b, t.inside, prod, LLVMConstReal(cg->f64, 0), "");
        LLVMBuildStore(b, LLVMBuildFAdd(b, LLVMBuildLoad2(b, cg->f64, acc, ""), prod, ""), acc);
        for (int k = 2; k >= 0; k--) ed_loop_close(cg, &wl[k], win_dims[k]);
    }
    LLVMValueRef v = LLVMBuildLoad2(b, cg->f64, acc, "");
    if (n->dtype != ED_F64) v = LLVMBuildFPTrunc(b, v, cg->f32, "");
    LLVMValueRef off = at4(cg, out_dims[1], out_dims[2], out_dims[3], oi);
    LLVMBuildStore(b, v, LLVMBuildInBoundsGEP2(b, ed_cg_type(cg, n->dtype), args[0], &off, 1, ""));
    for (int k = 3; k >= 0; k--) ed_loop_close(cg, &ol[k], out_dims[k]);
}

/* ---- the gemm form ---------------------------------------------------------------- */

/* The im2col buffer stops here (bytes); a larger convolution stays direct. */
#define GEMM_MAX_SCRATCH ((int64_t)256 << 20)

_Static_assert(sizeof(ed_conv_geom) == 18 * sizeof(int64_t), "ed_conv_geom is read as an i64 table");

static LLVMValueRef geom_table(ed_cg *cg, const ed_conv_geom *g)
{
    const int64_t *v = (const int64_t *)g;
    LLVMValueRef c[18];
    for (int i = 0; i < 18; i++) c[i] = k64(cg, v[i]);
    LLVMValueRef init = LLVMConstArray2(cg->i64, c, 18);
    LLVMValueRef t = LLVMAddGlobal(cg->mod, LLVMTypeOf(init), "conv_geom");
    LLVMSetInitializer(t, init);
    LLVMSetGlobalConstant(t, 1);
    LLVMSetLinkage(t, LLVMPrivateLinkage);
    return t;
}

/* The shared buffer, at least bytes long: a zeroed module global, replaced by a larger
 * one when a later convolution needs more (kernels run one at a time). */
static LLVMValueRef scratch(ed_cg *cg, int64_t bytes)
{
    if (cg->conv_scratch && bytes <= cg->conv_scratch_bytes) return cg->conv_scratch;
    LLVMTypeRef ty = LLVMArrayType2(LLVMInt8TypeInContext(cg->ctx), (uint64_t)(bytes > 0 ? bytes : 1));
    LLVMValueRef gv = LLVMAddGlobal(cg->mod, ty, "conv_scratch");
    LLVMSetInitializer(gv, LLVMConstNull(ty));
    LLVMSetLinkage(gv, LLVMPrivateLinkage);
    LLVMSetAlignment(gv, 64);
    if (cg->conv_scratch) {
        LLVMReplaceAllUsesWith(cg->conv_scratch, gv);
        LLVMDeleteGlobal(cg->conv_scratch);
    }
    cg->conv_scratch = gv;
    cg->conv_scratch_bytes = bytes;
    return gv;
}

/* Gemm for f32 when asked, and by default unless each group has one input and one
 * output channel (pooling, depthwise, ed_conv_gemm_default): measured on one core
 * (bench/HISTORY.md, "conv layers"), sgemm is 10-35x faster than the direct loops from
 * 1 -> 8 channels at 28x28 up to 64 -> 64 at 14x14, and they tie at 1 -> 1, where direct
 * wins pooling's 2x2 windows by 2-5x (one sgemm call per image costs more than the sum). */
static bool use_gemm(const ed_cg *cg, const ed_node *n, const ed_conv_geom *g)
{
    if (n->dtype != ED_F32 || cg->conv == ED_CONV_DIRECT) return false;
    /* in double: a product of sizes below 2^40 each may not fit an int64 */
    double cols = (double)g->oh * (double)g->ow * (double)ed_conv_gemm_chunk_max(g);
    double bytes = 4.0 * ((double)g->cg * (double)g->kh * (double)g->kw + (double)g->og) * cols;
    if (n->op == ED_OP_CONV_TRANSPOSE2D) { /* or as a conv2d of dy (conv_gemm.c), the larger */
        double taps = (double)g->kh * (double)g->kw, fcols = (double)g->h * (double)g->w;
        if (fcols < 128) fcols = 2048; /* at most a chunk's columns */
        double fbytes = 4.0 *
                        (((double)g->og * taps + (double)g->cg) * fcols + (double)g->o * (double)g->cg * taps + 16);
        if (fbytes > bytes) bytes = fbytes;
    }
    if (bytes * ED_CONV_GEMM_PARTS > (double)GEMM_MAX_SCRATCH) return false; /* a scratch per part */
    if (cg->conv == ED_CONV_GEMM) return true;
    return ed_conv_gemm_default(g);
}

bool ed_conv_lowers_to_gemm(const ed_cg *cg, const ed_node *n)
{
    ed_conv_geom g = ed_conv_geom_of(n);
    return use_gemm(cg, n, &g);
}

void ed_lower_conv_then(ed_cg *cg, const ed_node *n, LLVMValueRef *args, LLVMValueRef epi, LLVMValueRef epi_ctx)
{
    ed_conv_geom g = ed_conv_geom_of(n);
    if (!use_gemm(cg, n, &g)) {
        lower_direct(cg, n, args);
        return;
    }
    const char *fn = n->op == ED_OP_CONV2D             ? "ed_conv2d_gemm_f32"
                     : n->op == ED_OP_CONV_TRANSPOSE2D ? "ed_conv_transpose2d_gemm_f32"
                                                       : "ed_conv2d_weight_grad_gemm_f32";
    int64_t floats = n->op == ED_OP_CONV_TRANSPOSE2D ? ed_conv_transpose_gemm_scratch(&g)
                     : n->op == ED_OP_CONV2D         ? ed_conv_gemm_scratch(&g)
                                                     : ed_conv_weight_grad_gemm_scratch(&g);
    LLVMValueRef null = LLVMConstPointerNull(cg->ptr);
    LLVMTypeRef params[7] = {cg->ptr, cg->ptr, cg->ptr, cg->ptr, cg->ptr, cg->ptr, cg->ptr};
    LLVMValueRef call[7] = {args[0],
                            args[1],
                            args[2],
                            geom_table(cg, &g),
                            scratch(cg, floats * 4),
                            epi ? epi : null,
                            epi_ctx ? epi_ctx : null};
    /* the forward ops take an epilogue (conv_gemm.h), the weight gradient none */
    ed_cg_call(cg, fn, cg->vd, params, n->op == ED_OP_CONV2D_WEIGHT_GRAD ? 5 : 7, call);
}

void ed_lower_conv(ed_cg *cg, const ed_node *n, LLVMValueRef *args) { ed_lower_conv_then(cg, n, args, NULL, NULL); }
