/* A fused node as one kernel: a walk over the result (every input read through its
 * broadcast strides, as ed_lower_elem does) whose body evaluates the expression graph
 * on registers, each step emitted exactly as its own elementwise kernel would
 * (ed_lower_elem_value), so the result equals the unfused kernels' and the
 * intermediate values never touch memory.
 *
 * With a reduction in the body: an outer walk over the reduction's groups (kept axes)
 * and, per group, an inner walk over its elements evaluating the reduction's operand
 * and accumulating it exactly as ed_lower_reduce does (the same accumulator), then the
 * rest of the body once at the group's result (epilogue) or in a second inner walk
 * over the group (row kernel; its values computed from the reduction, consts and
 * inputs of one value per group alone, ed_fused_group_values, e.g. log(s) in
 * log-softmax, once per group before the walk: the same code on the same operands, so
 * the same bits, without relying on LICM). An epilogue whose sum or mean is over
 * leading axes (ed_red_leading) interchanges the walks as ed_lower_reduce does: phase
 * 1 over the whole operand into an array of accumulators, then the epilogue per
 * result; each result still adds its elements in order, and the first walk vectorizes. */
#include "interp/iter.h"
#include "backend/llvm/lower.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

static LLVMValueRef splat(ed_cg *cg, const ed_node *c)
{
    double v = c->attr.data[0];
    if (c->dtype == ED_I32) return LLVMConstInt(cg->i32, (unsigned long long)(int64_t)v, 1);
    return LLVMConstReal(ed_cg_type(cg, c->dtype), v);
}

/* Evaluate the body nodes with want[] set (all if NULL) into v; input number k is
 * loaded from ptr[k], a producer's value is the caller's v[its id]. */
static void eval(ed_cg *cg, const ed_graph *body, const bool *want, LLVMValueRef *ptr, LLVMValueRef *v)
{
    LLVMValueRef x[3];
    for (int i = 0, k = 0; i < body->nnodes; i++) {
        const ed_node *b = body->nodes[i];
        bool skip = want && !want[i];
        if (b->op == ED_OP_INPUT) {
            if (!skip) v[i] = LLVMBuildLoad2(cg->b, ed_cg_type(cg, b->dtype), ptr[k], "");
            k++;
        } else if (skip || ed_fused_producer_op(b->op)) {
            continue;
        } else if (b->op == ED_OP_CONST) {
            v[i] = splat(cg, b);
        } else if (b->op == ED_OP_BROADCAST_TO) {
            v[i] = v[b->in[0]->id]; /* every value is read at the walk's index */
        } else {
            for (int j = 0; j < b->nin; j++) x[j] = v[b->in[j]->id];
            v[i] = ed_lower_elem_value(cg, b, x);
        }
    }
}

static void fused_body(ed_cg *cg, LLVMValueRef *ptrs, void *ud)
{
    const ed_node *n = ud;
    const ed_graph *body = n->attr.body;
    LLVMValueRef v[ED_FUSED_MAX_NODES];
    eval(cg, body, NULL, ptrs + 1, v);
    LLVMBuildStore(cg->b, v[body->outputs[0].node->id], ptrs[0]);
}

static void lower_elementwise(ed_cg *cg, const ed_node *n, LLVMValueRef *args)
{
    assert(n->nin + 1 <= ED_WALK_MAX_OPS);
    ed_lop ops[ED_WALK_MAX_OPS] = {{0}};
    ops[0].ty = ed_cg_type(cg, n->dtype);
    ops[0].ptr = args[0];
    ed_shape_strides(n->shape, ops[0].stride);
    for (int k = 0; k < n->nin; k++) {
        ops[k + 1].ty = ed_cg_type(cg, n->in[k]->dtype);
        ops[k + 1].ptr = args[k + 1];
        ed_iter_bcast_strides(ops[k + 1].stride, n->in[k]->shape, n->shape);
    }
    ed_lower_walk(cg, n->shape, ops, n->nin + 1, fused_body, (void *)n);
}

/* ---- with a producer (a matmul or a convolution) ------------------------------------ */

typedef struct {
    const ed_node *n, *mm;
    bool each[ED_FUSED_MAX_NODES];
} product_walk;

static void product_body(ed_cg *cg, LLVMValueRef *ptrs, void *ud)
{
    const product_walk *p = ud;
    const ed_graph *body = p->n->attr.body;
    LLVMValueRef v[ED_FUSED_MAX_NODES];
    v[p->mm->id] = LLVMBuildLoad2(cg->b, ed_cg_type(cg, p->mm->dtype), ptrs[0], "");
    eval(cg, body, p->each, ptrs + 1, v);
    LLVMBuildStore(cg->b, v[body->outputs[0].node->id], ptrs[0]);
}

/* The walk's operands: the result (it holds the product), then the inputs, those only
 * the producer reads not walked (stride 0). ptr[k]: the pointer of operand k. */
static void product_ops(ed_cg *cg, const product_walk *p, const LLVMValueRef *ptr, ed_lop *ops)
{
    const ed_node *n = p->n;
    const ed_graph *body = n->attr.body;
    assert(n->nin + 1 <= ED_WALK_MAX_OPS);
    memset(ops, 0, (size_t)(n->nin + 1) * sizeof *ops);
    ops[0].ty = ed_cg_type(cg, n->dtype);
    ops[0].ptr = ptr[0];
    ed_shape_strides(n->shape, ops[0].stride);
    for (int i = 0, k = 0; i < body->nnodes; i++) {
        if (body->nodes[i]->op != ED_OP_INPUT) continue;
        ops[k + 1].ty = ed_cg_type(cg, n->in[k]->dtype);
        ops[k + 1].ptr = ptr[k + 1];
        if (p->each[i]) ed_iter_bcast_strides(ops[k + 1].stride, n->in[k]->shape, n->shape);
        k++;
    }
}

/* KERNEL_epi(ctx, b0, b1) (conv_gemm.h's epilogue): the chain over result images [b0,
 * b1), one walk per image; ctx holds the kernel's output and input pointers. Emitted
 * beside the kernel being emitted, which the builder returns to. */
static LLVMValueRef emit_epilogue(ed_cg *cg, const product_walk *p)
{
    const ed_node *n = p->n;
    size_t len;
    const char *kernel = LLVMGetValueName2(cg->fn, &len);
    char name[300];
    snprintf(name, sizeof name, "%.*s_epi", (int)len, kernel);
    LLVMTypeRef tp[3] = {cg->ptr, cg->i64, cg->i64};
    LLVMValueRef fn = LLVMAddFunction(cg->mod, name, LLVMFunctionType(cg->vd, tp, 3, 0));
    LLVMSetLinkage(fn, LLVMInternalLinkage);
    LLVMValueRef kernel_fn = cg->fn;
    LLVMBasicBlockRef kernel_at = LLVMGetInsertBlock(cg->b);
    ed_split *split = cg->split;
    cg->fn = fn, cg->split = NULL;
    LLVMPositionBuilderAtEnd(cg->b, LLVMAppendBasicBlockInContext(cg->ctx, fn, "entry"));
    LLVMValueRef ptr[ED_WALK_MAX_OPS];
    for (int k = 0; k <= n->nin; k++) {
        LLVMValueRef at = ed_cg_i64(cg, k);
        ptr[k] = LLVMBuildLoad2(cg->b, cg->ptr, LLVMBuildInBoundsGEP2(cg->b, cg->ptr, LLVMGetParam(fn, 0), &at, 1, ""),
                                "");
    }
    ed_lop ops[ED_WALK_MAX_OPS], image[ED_WALK_MAX_OPS];
    product_ops(cg, p, ptr, ops);
    ed_shape one = n->shape;
    one.dim[0] = 1;
    ed_loop l = ed_loop_open_at(cg, LLVMGetParam(fn, 1));
    for (int k = 0; k <= n->nin; k++) {
        image[k] = ops[k];
        LLVMValueRef off = LLVMBuildNSWMul(cg->b, l.i, ed_cg_i64(cg, ops[k].stride[0]), "");
        image[k].ptr = LLVMBuildInBoundsGEP2(cg->b, ops[k].ty, ops[k].ptr, &off, 1, "");
    }
    ed_lower_walk(cg, one, image, n->nin + 1, product_body, (void *)p);
    ed_loop_close_at(cg, &l, LLVMGetParam(fn, 2));
    LLVMBuildRetVoid(cg->b);
    cg->fn = kernel_fn, cg->split = split;
    LLVMPositionBuilderAtEnd(cg->b, kernel_at);
    return fn;
}

/* A gemm convolution hands the chain to conv_gemm.c as its epilogue: each image gets it
 * right after its sgemm, on the same thread, while it is in cache. */
static void lower_conv_epilogue(ed_cg *cg, const product_walk *p, LLVMValueRef *args, LLVMValueRef *conv_args)
{
    const ed_node *n = p->n;
    LLVMValueRef epi = emit_epilogue(cg, p);
    LLVMValueRef ctx = ed_cg_alloca(cg, LLVMArrayType2(cg->ptr, (uint64_t)n->nin + 1));
    for (int k = 0; k <= n->nin; k++) {
        LLVMValueRef at = ed_cg_i64(cg, k);
        LLVMBuildStore(cg->b, args[k], LLVMBuildInBoundsGEP2(cg->b, cg->ptr, ctx, &at, 1, ""));
    }
    ed_lower_conv_then(cg, p->mm, conv_args, epi, ctx);
}

/* The product into the result (GEMV or sgemm, as the producer alone would be), then the
 * rest of the body per element over it in place: the result of a small matmul is a
 * few KB, still in L1, and the chain costs no kernel call or buffer of its own. */
static int lower_with_producer(ed_cg *cg, const ed_node *n, const ed_node *mm, LLVMValueRef *args)
{
    const ed_graph *body = n->attr.body;
    LLVMValueRef mm_args[3] = {args[0], NULL, NULL};
    for (int i = 0, k = 0; i < body->nnodes; i++) {
        if (body->nodes[i]->op != ED_OP_INPUT) continue;
        if (body->nodes[i] == mm->in[0]) mm_args[1] = args[k + 1];
        if (body->nodes[i] == mm->in[1]) mm_args[2] = args[k + 1];
        k++;
    }
    product_walk p = {.n = n, .mm = mm};
    ed_fused_per_element(body, p.each);
    if (mm->op != ED_OP_MATMUL && ed_conv_lowers_to_gemm(cg, mm)) {
        lower_conv_epilogue(cg, &p, args, mm_args);
        return ED_OK;
    }
    if (mm->op == ED_OP_MATMUL) {
        int rc = ed_lower_matmul(cg, mm, mm_args);
        if (rc != ED_OK) return rc;
    } else {
        ed_lower_conv(cg, mm, mm_args); /* the direct loops: the chain after the whole */
    }
    ed_lop ops[ED_WALK_MAX_OPS];
    product_ops(cg, &p, args, ops);
    ed_lower_walk(cg, n->shape, ops, n->nin + 1, product_body, &p);
    return ED_OK;
}

/* ---- with a reduction -------------------------------------------------------------- */

/* One inner walk over a group: its operands and, per input number, the operand it is
 * read through (-1: not read in this phase). Operand 0 is the result in row kernels. */
typedef struct {
    ed_lop ops[ED_WALK_MAX_OPS];
    int nops;
    int of[ED_FUSED_MAX_INPUTS];
    int outer[ED_WALK_MAX_OPS]; /* operand -> the outer walk's operand at the group start */
} phase_walk;

typedef struct {
    const ed_node *n, *r;
    const ed_graph *body;
    bool p1[ED_FUSED_MAX_NODES], p2[ED_FUSED_MAX_NODES];
    bool once[ED_FUSED_MAX_NODES], each[ED_FUSED_MAX_NODES]; /* a row kernel's phase 2: per group, per element */
    bool row;
    ed_shape red;
    int64_t count;
    phase_walk w1, w2;
    int epi_of[ED_FUSED_MAX_INPUTS]; /* epilogue: input -> outer operand */
    ed_red_acc acc;
    LLVMValueRef rv;                     /* the group's reduction, for phase 2 */
    LLVMValueRef gv[ED_FUSED_MAX_NODES]; /* the group's values with once[] set */
} fred;

static void load_ptrs(const fred *f, const int *of, LLVMValueRef *ptrs, LLVMValueRef *by_input)
{
    for (int k = 0; k < f->n->nin; k++) by_input[k] = of[k] >= 0 ? ptrs[of[k]] : NULL;
}

static void phase1_body(ed_cg *cg, LLVMValueRef *ptrs, void *ud)
{
    fred *f = ud;
    LLVMValueRef in[ED_FUSED_MAX_INPUTS], v[ED_FUSED_MAX_NODES];
    load_ptrs(f, f->w1.of, ptrs, in);
    eval(cg, f->body, f->p1, in, v);
    ed_red_acc_add(cg, &f->acc, v[f->r->in[0]->id]);
}

static void phase2_eval(ed_cg *cg, fred *f, LLVMValueRef *in, LLVMValueRef out)
{
    LLVMValueRef v[ED_FUSED_MAX_NODES];
    memcpy(v, f->gv, sizeof v);
    v[f->r->id] = f->rv;
    eval(cg, f->body, f->row ? f->each : f->p2, in, v);
    LLVMBuildStore(cg->b, v[f->body->outputs[0].node->id], out);
}

static void row_body(ed_cg *cg, LLVMValueRef *ptrs, void *ud)
{
    fred *f = ud;
    LLVMValueRef in[ED_FUSED_MAX_INPUTS];
    load_ptrs(f, f->w2.of, ptrs, in);
    phase2_eval(cg, f, in, ptrs[0]);
}

static void run_phase(ed_cg *cg, fred *f, phase_walk *w, LLVMValueRef *outer_ptrs, ed_walk_body body)
{
    for (int j = 0; j < w->nops; j++) w->ops[j].ptr = outer_ptrs[w->outer[j]];
    ed_lower_walk(cg, f->red, w->ops, w->nops, body, f);
}

static void group_body(ed_cg *cg, LLVMValueRef *ptrs, void *ud)
{
    fred *f = ud;
    ed_red_acc_start(cg, &f->acc);
    run_phase(cg, f, &f->w1, ptrs, phase1_body);
    f->rv = ed_red_acc_result(cg, &f->acc, f->count);
    if (f->row) {
        /* before the walk, which they dominate; inputs at the group's first element */
        LLVMValueRef in[ED_FUSED_MAX_INPUTS];
        for (int k = 0; k < f->n->nin; k++) in[k] = f->w2.of[k] >= 0 ? ptrs[f->w2.outer[f->w2.of[k]]] : NULL;
        f->gv[f->r->id] = f->rv;
        eval(cg, f->body, f->once, in, f->gv);
        run_phase(cg, f, &f->w2, ptrs, row_body);
        return;
    }
    LLVMValueRef in[ED_FUSED_MAX_INPUTS];
    load_ptrs(f, f->epi_of, ptrs, in);
    phase2_eval(cg, f, in, ptrs[0]);
}

/* Split strides st over D into the kept axes (kept) and the reduced ones (red). */
static void split(const int64_t *st, uint32_t axes, int rank, int64_t *kept, int64_t *red)
{
    for (int a = 0, nk = 0, nr = 0; a < rank; a++) {
        if (axes >> a & 1) red[nr++] = st[a];
        else kept[nk++] = st[a];
    }
}

/* ---- an epilogue over leading reduced axes ----------------------------------------- */

/* Phase 1 at one element of D: operand 0 is the element's accumulator. */
static void leading_p1_body(ed_cg *cg, LLVMValueRef *ptrs, void *ud)
{
    fred *f = ud;
    f->acc.acc = ptrs[0];
    phase1_body(cg, ptrs, ud);
}

/* The epilogue at one result element: operand 1 is its accumulator. */
static void leading_epi_body(ed_cg *cg, LLVMValueRef *ptrs, void *ud)
{
    fred *f = ud;
    LLVMValueRef in[ED_FUSED_MAX_INPUTS];
    f->acc.acc = ptrs[1];
    f->rv = ed_red_acc_result(cg, &f->acc, f->count);
    load_ptrs(f, f->epi_of, ptrs, in);
    phase2_eval(cg, f, in, ptrs[0]);
}

/* A sum or mean over leading axes with an epilogue, as ed_lower_reduce does it
 * (ed_red_leading): one walk over D in C order accumulating phase 1 into an array of
 * accumulators (stride 0 along the reduced axes), rows outer and outputs inner, so it
 * vectorizes across the outputs with each output's additions in the same order; then
 * one walk over the results evaluating the epilogue. used1/used2: the inputs each
 * phase reads. */
static void lower_leading(ed_cg *cg, fred *f, LLVMValueRef *args, int64_t cols, const bool *used1, const bool *used2)
{
    const ed_node *n = f->n;
    const ed_shape d = f->r->in[0]->shape;
    uint32_t axes = f->r->attr.axes;
    ed_shape kept = {0};
    for (int a = 0; a < d.rank; a++)
        if (!(axes >> a & 1)) kept.dim[kept.rank++] = d.dim[a];
    int64_t kst[ED_MAX_RANK], st[ED_MAX_RANK], unused[ED_MAX_RANK];
    ed_shape_strides(kept, kst);
    LLVMTypeRef acc_ty = ed_red_acc_type(cg, f->r);
    f->acc = (ed_red_acc){.n = f->r};
    LLVMValueRef accs = ed_red_acc_array(cg, &f->acc, cols);

    ed_lop ops[ED_WALK_MAX_OPS] = {{0}};
    int nops = 1;
    ops[0] = (ed_lop){.ty = acc_ty, .ptr = accs};
    for (int a = 0, k = 0; a < d.rank; a++) ops[0].stride[a] = axes >> a & 1 ? 0 : kst[k++];
    for (int k = 0; k < n->nin; k++) {
        f->w1.of[k] = -1;
        if (!used1[k]) continue;
        f->w1.of[k] = nops;
        ops[nops] = (ed_lop){.ty = ed_cg_type(cg, n->in[k]->dtype), .ptr = args[k + 1]};
        ed_iter_bcast_strides(ops[nops].stride, n->in[k]->shape, d);
        nops++;
    }
    ed_lower_walk(cg, d, ops, nops, leading_p1_body, f);

    /* the epilogue: result, accumulator, then the inputs it reads at the result element */
    memset(ops, 0, sizeof ops);
    ops[0] = (ed_lop){.ty = ed_cg_type(cg, n->dtype), .ptr = args[0]};
    ops[1] = (ed_lop){.ty = acc_ty, .ptr = accs};
    memcpy(ops[0].stride, kst, sizeof kst);
    memcpy(ops[1].stride, kst, sizeof kst);
    nops = 2;
    for (int k = 0; k < n->nin; k++) {
        f->epi_of[k] = -1;
        if (!used2[k]) continue;
        f->epi_of[k] = nops;
        ops[nops] = (ed_lop){.ty = ed_cg_type(cg, n->in[k]->dtype), .ptr = args[k + 1]};
        ed_iter_bcast_strides(st, n->in[k]->shape, n->shape);
        if (n->shape.rank == d.rank) split(st, axes, d.rank, ops[nops].stride, unused);
        else memcpy(ops[nops].stride, st, sizeof st);
        nops++;
    }
    ed_lower_walk(cg, kept, ops, nops, leading_epi_body, f);
}

static void lower_reduction(ed_cg *cg, const ed_node *n, LLVMValueRef *args)
{
    fred fs = {0}, *f = &fs;
    f->n = n;
    f->body = n->attr.body;
    f->r = ed_fused_reduction(f->body);
    f->row = ed_fused_row_kernel(n);
    ed_fused_phases(f->body, f->p1, f->p2);
    ed_fused_group_values(f->body, f->once);
    for (int i = 0; i < f->body->nnodes; i++) {
        f->once[i] = f->once[i] && f->p2[i] && f->row;
        f->each[i] = f->p2[i] && !f->once[i];
    }
    const ed_shape d = f->r->in[0]->shape;
    uint32_t axes = f->r->attr.axes;
    ed_shape kept = {0};
    for (int a = 0; a < d.rank; a++) {
        if (axes >> a & 1) f->red.dim[f->red.rank++] = d.dim[a];
        else kept.dim[kept.rank++] = d.dim[a];
    }
    f->count = ed_shape_numel(f->red);
    bool used1[ED_FUSED_MAX_INPUTS] = {0}, used2[ED_FUSED_MAX_INPUTS] = {0};
    for (int i = 0, k = 0; i < f->body->nnodes; i++)
        if (f->body->nodes[i]->op == ED_OP_INPUT) {
            used1[k] = f->p1[i];
            used2[k] = f->p2[i];
            k++;
        }
    int64_t rows, cols;
    if (!f->row && ed_red_leading(f->r, &rows, &cols)) {
        lower_leading(cg, f, args, cols, used1, used2);
        return;
    }
    /* The outer walk: the result, then each input at its group's start. */
    ed_lop outer[ED_WALK_MAX_OPS] = {{0}};
    int nouter = 1;
    int64_t st[ED_MAX_RANK], unused[ED_MAX_RANK];
    outer[0] = (ed_lop){.ty = ed_cg_type(cg, n->dtype), .ptr = args[0]};
    f->w2.ops[0] = (ed_lop){.ty = outer[0].ty};
    f->w2.nops = f->row ? 1 : 0;
    if (f->row) {
        ed_shape_strides(d, st);
        split(st, axes, d.rank, outer[0].stride, f->w2.ops[0].stride);
    } else {
        ed_shape_strides(kept, outer[0].stride); /* groups in C order over the kept axes */
    }
    for (int k = 0; k < n->nin; k++) {
        f->w1.of[k] = f->w2.of[k] = f->epi_of[k] = -1;
        LLVMTypeRef ty = ed_cg_type(cg, n->in[k]->dtype);
        int at_d = -1; /* the outer operand reading input k broadcast to D */
        int64_t red_st[ED_MAX_RANK] = {0};
        if (used1[k] || (used2[k] && f->row)) {
            ed_iter_bcast_strides(st, n->in[k]->shape, d);
            at_d = nouter++;
            outer[at_d] = (ed_lop){.ty = ty, .ptr = args[k + 1]};
            split(st, axes, d.rank, outer[at_d].stride, red_st);
        }
        phase_walk *ws[2] = {used1[k] ? &f->w1 : NULL, used2[k] && f->row ? &f->w2 : NULL};
        for (int w = 0; w < 2; w++) {
            if (!ws[w]) continue;
            int j = ws[w]->nops++;
            ws[w]->ops[j] = (ed_lop){.ty = ty};
            memcpy(ws[w]->ops[j].stride, red_st, sizeof red_st);
            ws[w]->outer[j] = at_d;
            ws[w]->of[k] = j;
        }
        if (used2[k] && !f->row) { /* read at the group's result element */
            ed_iter_bcast_strides(st, n->in[k]->shape, n->shape);
            f->epi_of[k] = nouter++;
            outer[f->epi_of[k]] = (ed_lop){.ty = ty, .ptr = args[k + 1]};
            if (n->shape.rank == d.rank) split(st, axes, d.rank, outer[f->epi_of[k]].stride, unused);
            else memcpy(outer[f->epi_of[k]].stride, st, sizeof st);
        }
    }
    f->w2.outer[0] = 0;
    assert(nouter <= ED_WALK_MAX_OPS);
    ed_red_acc_init(cg, &f->acc, f->r);
    ed_lower_walk(cg, kept, outer, nouter, group_body, f);
}

int ed_lower_fused(ed_cg *cg, const ed_node *n, LLVMValueRef *args)
{
    assert(n->attr.body->nnodes <= ED_FUSED_MAX_NODES && n->nin <= ED_FUSED_MAX_INPUTS);
    const ed_node *mm = ed_fused_producer(n->attr.body);
    if (mm) return lower_with_producer(cg, n, mm, args);
    if (ed_fused_reduction(n->attr.body)) lower_reduction(cg, n, args);
    else lower_elementwise(cg, n, args);
    return ED_OK;
}
