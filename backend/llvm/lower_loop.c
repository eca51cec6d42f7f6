/* loop and get in the JIT. A loop is one kernel with the usual signature whose body
 * is a native counted loop (a phi over the index) calling the body's own kernels, so a
 * 1000-trip loop is one call from ed_entry. Everything it needs lives in the loop's
 * arena slot (ed_loop_layout): the results, the i32 index, two buffers per carried
 * value, and the body's arena with its offsets baked in. Iteration i reads buffer
 * i % 2 of each carried value and writes its next values into the other: a next value
 * computed by a body node is written there directly (see direct_targets), anything
 * else (a pass-through, a const, a value bound twice) is copied; stacked outputs are
 * copied to row i of their result. Random ops in the body get the
 * iteration's seed from ed_rng_loop_seed, as in the interpreter. */
#include "backend/llvm/lower.h"

#include "backend/arena.h"
#include "runtime/error.h"

#include <stdio.h>
#include <stdlib.h>

static void copy(ed_cg *cg, LLVMValueRef dst, LLVMValueRef src, int64_t bytes)
{
    if (bytes > 0) LLVMBuildMemCpy(cg->b, dst, 1, src, 1, ed_cg_i64(cg, bytes));
}

static int64_t value_bytes(const ed_node *n) { return ed_shape_numel(n->shape) * (int64_t)ed_dtype_size(n->dtype); }

void ed_lower_get(ed_cg *cg, const ed_node *n, LLVMValueRef *args)
{
    int64_t off = ed_loop_result_offset(n->in[0], n->attr.index);
    copy(cg, args[0], ed_cg_byte_gep(cg, args[1], off), value_bytes(n));
}

typedef struct {
    const ed_node *loop;
    const ed_loop_layout *l;
    LLVMValueRef out, seed, call;
    LLVMValueRef *kern, *vals;
} loop_gen;

/* The buffer pointers of carried value k for iteration i: cur (read) and next (written). */
static void carried_buffers(ed_cg *cg, const loop_gen *lg, LLVMValueRef odd, int k, LLVMValueRef *cur,
                            LLVMValueRef *nxt)
{
    LLVMValueRef a = ed_cg_byte_gep(cg, lg->out, lg->l->carried[2 * k]);
    LLVMValueRef b = ed_cg_byte_gep(cg, lg->out, lg->l->carried[2 * k + 1]);
    *cur = LLVMBuildSelect(cg->b, odd, b, a, "cur");
    *nxt = LLVMBuildSelect(cg->b, odd, a, b, "next");
}

/* The node whose bytes node w writes over (an in-place input by the plan), or NULL. */
static const ed_node *inplace_source(const ed_node *w, const int64_t *body_off)
{
    for (int j = 0; j < w->nin; j++)
        if (ed_arena_inplace_input(w, j, body_off)) return w->in[j];
    return NULL;
}

/* Ping-pong without a copy: when carried value k's next value v is a computed body node
 * (not an input, a const or a value already given to another carried slot), v and
 * the in-place chain it ends (the values v writes over, and those they write over)
 * take next buffer k as their memory instead of their body slot. That is safe: the
 * next buffer is read by no one during the iteration, v is bound so nothing writes
 * over it later, each chain member is read last by the next member (it dies there),
 * and every reader finds the value through vals[]. Sets direct[k]. */
static void direct_targets(const loop_gen *lg, LLVMValueRef *nxt, bool *direct, bool *moved)
{
    const ed_graph *body = lg->loop->attr.body;
    const int64_t *off = lg->l->body_off;
    for (int k = 0; k < lg->loop->attr.ncarried; k++) {
        const ed_node *v = body->outputs[k].node;
        if (off[v->id] < 0 || ed_ops[v->op].kind == ED_KIND_LEAF || moved[v->id]) continue;
        for (const ed_node *w = v; w; w = inplace_source(w, off)) {
            lg->vals[w->id] = nxt[k];
            moved[w->id] = true;
        }
        direct[k] = true;
    }
}

/* One iteration at index i (i64): bind the body's inputs, call its kernels, then copy
 * the next carried values and the stacked rows. */
static int emit_iteration(ed_cg *cg, const loop_gen *lg, LLVMValueRef i)
{
    const ed_node *n = lg->loop;
    const ed_graph *body = n->attr.body;
    const ed_loop_layout *l = lg->l;
    int nc = n->attr.ncarried;
    LLVMValueRef i32 = LLVMBuildTrunc(cg->b, i, cg->i32, "");
    LLVMValueRef odd = LLVMBuildTrunc(cg->b, i, cg->i1, "odd");
    LLVMValueRef index = ed_cg_byte_gep(cg, lg->out, l->index);
    LLVMBuildStore(cg->b, i32, index);
    LLVMValueRef seed = lg->seed;
    if (ed_graph_has_random(body)) {
        LLVMTypeRef p[4] = {cg->i64, cg->i64, cg->i32, cg->i32};
        LLVMValueRef a[4] = {lg->seed, lg->call, LLVMConstInt(cg->i32, n->attr.stream, 0), i32};
        seed = ed_cg_call(cg, "ed_rng_loop_seed", cg->i64, p, 4, a);
    }
    LLVMValueRef *nxt = calloc((size_t)nc + 1, sizeof *nxt);
    bool *direct = calloc((size_t)nc + 1, sizeof *direct);
    bool *moved = calloc((size_t)body->nnodes + 1, sizeof *moved);
    if (!nxt || !direct || !moved) {
        free(nxt);
        free(direct);
        free(moved);
        return ed_fail("backend jit: out of memory");
    }
    for (int id = 0; id < body->nnodes; id++)
        if (l->body_off[id] >= 0) lg->vals[id] = ed_cg_byte_gep(cg, lg->out, l->body + l->body_off[id]);
    lg->vals[ed_loop_body_input(body, 0)->id] = index;
    for (int k = 0; k < n->nin; k++) {
        LLVMValueRef cur = LLVMGetParam(cg->fn, (unsigned)k + 1);
        if (k < nc) carried_buffers(cg, lg, odd, k, &cur, &nxt[k]);
        lg->vals[ed_loop_body_input(body, k + 1)->id] = cur;
    }
    direct_targets(lg, nxt, direct, moved);
    int st = ed_lower_calls(cg, body, l->order, lg->kern, lg->vals, seed, lg->call);
    for (int k = 0; k < body->noutputs && st == ED_OK; k++) {
        const ed_node *v = body->outputs[k].node;
        int64_t bytes = value_bytes(v);
        if (k < nc) {
            if (!direct[k]) copy(cg, nxt[k], lg->vals[v->id], bytes);
        } else if (bytes > 0) {
            LLVMValueRef row = LLVMBuildNUWMul(cg->b, i, ed_cg_i64(cg, bytes), "");
            LLVMValueRef base = ed_cg_byte_gep(cg, lg->out, ed_loop_result_offset(n, k));
            LLVMValueRef dst = LLVMBuildInBoundsGEP2(cg->b, LLVMInt8TypeInContext(cg->ctx), base, &row, 1, "");
            copy(cg, dst, lg->vals[v->id], bytes);
        }
    }
    free(nxt);
    free(direct);
    free(moved);
    return st;
}

/* The loop kernel's code once the body's kernels exist. */
static int emit_loop_fn(ed_cg *cg, loop_gen *lg)
{
    const ed_node *n = lg->loop;
    int nc = n->attr.ncarried;
    LLVMPositionBuilderAtEnd(cg->b, LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "entry"));
    for (int k = 0; k < nc; k++)
        copy(cg, ed_cg_byte_gep(cg, lg->out, lg->l->carried[2 * k]), LLVMGetParam(cg->fn, (unsigned)k + 1),
             value_bytes(n->in[k]));
    if (n->attr.trips > 0) {
        ed_loop l = ed_loop_open(cg);
        if (emit_iteration(cg, lg, l.i) != ED_OK) return ED_ERR;
        ed_loop_close(cg, &l, n->attr.trips);
    }
    /* After trips iterations the current buffer is number trips % 2. */
    int last = (int)(n->attr.trips & 1);
    for (int k = 0; k < nc; k++)
        copy(cg, ed_cg_byte_gep(cg, lg->out, ed_loop_result_offset(n, k)),
             ed_cg_byte_gep(cg, lg->out, lg->l->carried[2 * k + last]), value_bytes(n->in[k]));
    LLVMBuildRetVoid(cg->b);
    return ED_OK;
}

LLVMValueRef ed_lower_loop(ed_cg *cg, const ed_node *n, const char *name)
{
    const ed_graph *body = n->attr.body;
    ed_loop_layout l;
    loop_gen lg = {.loop = n, .l = &l};
    LLVMValueRef fn = NULL;
    lg.kern = calloc((size_t)body->nnodes + 1, sizeof *lg.kern);
    lg.vals = calloc((size_t)body->nnodes + 1, sizeof *lg.vals);
    char prefix[300];
    snprintf(prefix, sizeof prefix, "%.256s.", name);
    if (ed_loop_layout_make(n, &l) != ED_OK) goto done;
    if (!lg.kern || !lg.vals) {
        ed_fail("backend jit: out of memory");
        goto done;
    }
    if (ed_lower_kernels(cg, body, prefix, l.body_off, lg.kern) != ED_OK) goto done;
    if (!(fn = ed_lower_declare_kernel(cg, n, name, NULL))) goto done;
    cg->fn = fn;
    lg.out = LLVMGetParam(fn, 0);
    lg.seed = LLVMGetParam(fn, (unsigned)n->nin + 1);
    lg.call = LLVMGetParam(fn, (unsigned)n->nin + 2);
    if (emit_loop_fn(cg, &lg) != ED_OK) fn = NULL;
done:
    ed_loop_layout_free(&l);
    free(lg.kern);
    free(lg.vals);
    return fn;
}
