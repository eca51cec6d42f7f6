/* The last step of the `fuse` pass: a small matmul (ED_GEMV_MAX_ROWS rows at most, or a
 * 16-bit weight) or a gemm convolution whose only reader is an elementwise chain of its
 * shape becomes that chain's producer, one fused node act(x @ W + b) or act(conv(x, W) + b)
 * (ir.h, "fused expressions"): at batch 1 the chain's own kernel call and pass over the
 * product cost as much as its math; after a conv the chain runs per image while it is
 * in cache (backend/llvm/lower_fused.c). */
#include "frontend/frontend.h"
#include "ir/conv.h"
#include "passes/pass.h"
#include "runtime/error.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

/* The matmuls the JIT runs as a GEMV (backend/llvm/lower_gemv.c, ed_gemv_applies at the
 * default crossover): f32 out, W not transposed, one matrix. */
static bool small_matmul(const ed_node *m)
{
    const ed_shape s = m->shape;
    if (m->op != ED_OP_MATMUL || m->dtype != ED_F32 || m->attr.tb || s.rank < 2) return false;
    for (int a = 0; a < s.rank - 2; a++)
        if (s.dim[a] != 1) return false;
    return ed_dtype_is_16bit(m->in[1]->dtype) || s.dim[s.rank - 2] <= ED_GEMV_MAX_ROWS;
}

/* The forward convolutions the JIT runs as im2col + sgemm by default (f32 operands, not
 * depthwise): its sgemm calls take the chain as an epilogue. The direct form would run
 * the chain after the whole conv, so those stay apart. */
static bool gemm_conv(const ed_node *c)
{
    if (c->op != ED_OP_CONV2D && c->op != ED_OP_CONV_TRANSPOSE2D) return false;
    if (c->dtype != ED_F32 || c->in[0]->dtype != ED_F32 || c->in[1]->dtype != ED_F32) return false;
    ed_conv_geom g = ed_conv_geom_of(c);
    return ed_conv_gemm_default(&g);
}

static bool producer(const ed_node *m) { return small_matmul(m) || gemm_conv(m); }

/* A chain that may take a producer: an elementwise node, or a fused one without a
 * reduction or a producer, with room for one more input and two more body nodes. */
static bool chain(const ed_node *f)
{
    if (ed_ops[f->op].kind == ED_KIND_ELEM) return f->nin + 1 <= ED_FUSED_MAX_INPUTS;
    if (f->op != ED_OP_FUSED) return false;
    const ed_graph *body = f->attr.body;
    return !ed_fused_reduction(body) && !ed_fused_producer(body) && f->nin + 1 <= ED_FUSED_MAX_INPUTS &&
           body->nnodes + 2 <= ED_FUSED_MAX_NODES;
}

/* Input number k of f reads mm? The one it reads (f reads it once: mm has one use). */
static int product_input(const ed_node *f, const ed_node *mm)
{
    for (int k = 0; k < f->nin; k++)
        if (f->in[k] == mm) return k;
    return -1;
}

/* Body input for f's input k (or for mm's operands, in its place), named in order. */
static ed_node *body_input(ed_graph *body, const ed_node *of, int *count)
{
    char name[16];
    snprintf(name, sizeof name, "x%d", (*count)++);
    return ed_input(body, name, of->dtype, of->shape);
}

/* The fused node mm's operands, then f's other inputs, computing f's value with mm
 * in its body. NULL with the body's error on failure. */
static ed_node *absorb(ed_node *f, int k_mm)
{
    ed_node *mm = f->in[k_mm];
    char name[32];
    snprintf(name, sizeof name, "f%d", f->id);
    ed_graph *body = ed_graph_new(name);
    if (!body) return NULL;
    ed_node *ext[ED_FUSED_MAX_INPUTS], *in_of[ED_FUSED_MAX_INPUTS]; /* in_of: body value of f's input k */
    int next = 0, count = 0;
    for (int k = 0; k < f->nin; k++) {
        if (k == k_mm) {
            ed_node *a = body_input(body, mm->in[0], &count), *w = body_input(body, mm->in[1], &count);
            ext[next++] = mm->in[0], ext[next++] = mm->in[1];
            in_of[k] = ed_node_new(body, mm->op, (ed_node *[]){a, w}, 2, &mm->attr);
        } else {
            ext[next++] = f->in[k];
            in_of[k] = body_input(body, f->in[k], &count);
        }
    }
    ed_node *y;
    if (f->op != ED_OP_FUSED) {
        y = ed_node_new(body, f->op, in_of, f->nin, &f->attr);
    } else { /* copy f's body, its inputs now the values above */
        const ed_graph *old = f->attr.body;
        ed_node *map[ED_FUSED_MAX_NODES];
        for (int i = 0, k = 0; i < old->nnodes; i++) {
            const ed_node *b = old->nodes[i];
            ed_node *in[3];
            for (int j = 0; j < b->nin; j++) in[j] = map[b->in[j]->id];
            map[i] = b->op == ED_OP_INPUT ? in_of[k++] : ed_node_new(body, b->op, in, b->nin, &b->attr);
            if (b->op != ED_OP_INPUT && b->name && map[i]) ed_set_name(map[i], b->name);
        }
        y = map[old->outputs[0].node->id];
    }
    ed_output(body, "y", y);
    if (body->failed) {
        ed_fail("fuse: producer of %%%d: %s", f->id, body->error);
        ed_graph_free(body);
        return NULL;
    }
    ed_node *fused = ed_fused(ext, next, body);
    if (fused && f->name) ed_set_name(fused, f->name);
    return fused;
}

/* Reads of mm by live nodes (the roots fuse replaced are still there, dead). */
static int live_uses(const ed_uses *u, const bool *live, const ed_node *mm)
{
    int c = 0;
    for (int k = u->start[mm->id]; k < u->start[mm->id + 1]; k++) c += live[u->list[k]->id];
    return c;
}

int ed_fuse_producers(ed_graph *g, ed_pass_stats *st)
{
    int n = g->nnodes, rc = ED_OK;
    ed_uses *u = ed_uses_build(g);
    bool *pinned = calloc((size_t)n + 1, sizeof *pinned), *live = calloc((size_t)n + 1, sizeof *live),
         *replaced = calloc((size_t)n + 1, sizeof *replaced);
    if (!u || !pinned || !live || !replaced) rc = ed_fail("fuse: out of memory");
    else ed_pass_live(g, live);
    for (int i = 0; i < g->noutputs && rc == ED_OK; i++) pinned[g->outputs[i].node->id] = true;
    for (int i = 0; i < g->nupdates && rc == ED_OK; i++) pinned[g->updates[i].node->id] = true;
    for (int i = 0; i < n && rc == ED_OK; i++) {
        ed_node *f = g->nodes[i];
        if (!live[f->id] || !chain(f)) continue;
        int k = -1;
        for (int j = 0; j < f->nin && k < 0; j++) {
            const ed_node *mm = f->in[j];
            if (producer(mm) && mm->id < n && !pinned[mm->id] && live_uses(u, live, mm) == 1 &&
                ed_shape_eq(mm->shape, f->shape) && product_input(f, mm) == j)
                k = j;
        }
        if (k < 0) continue;
        ed_node *fused = absorb(f, k);
        if (!fused) {
            rc = ed_graph_error(g) ? ed_fail("fuse: %s", ed_graph_error(g)) : ED_ERR;
            break;
        }
        rc = ed_replace_all_uses(g, f, fused);
        replaced[f->id] = true; /* a fused node is opaque to the manager's sweep: removed here */
        st->rewrites++;
    }
    if (rc == ED_OK) {
        bool *dead = calloc((size_t)g->nnodes + 1, sizeof *dead);
        if (!dead) rc = ed_fail("fuse: out of memory");
        for (int i = 0; i < n && rc == ED_OK; i++) dead[i] = replaced[i] && g->nodes[i]->op == ED_OP_FUSED;
        if (rc == ED_OK) rc = ed_graph_remove_nodes(g, dead);
        free(dead);
    }
    free(pinned), free(live), free(replaced);
    ed_uses_free(u);
    return rc;
}
