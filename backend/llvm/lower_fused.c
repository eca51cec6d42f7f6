/* A fused node as one kernel: a walk over the result (every input read through its
 * broadcast strides, as ed_lower_elem does) whose body evaluates the expression graph
 * on registers, each step emitted exactly as its own elementwise kernel would
 * (ed_lower_elem_value), so the result equals the unfused kernels' and the
 * intermediate values never touch memory. */
#include "backend/interp/iter.h"
#include "backend/llvm/lower.h"

#include <assert.h>

static LLVMValueRef splat(ed_cg *cg, const ed_node *c)
{
    double v = c->attr.data[0];
    if (c->dtype == ED_I32) return LLVMConstInt(cg->i32, (unsigned long long)(int64_t)v, 1);
    return LLVMConstReal(ed_cg_type(cg, c->dtype), v);
}

static void fused_body(ed_cg *cg, LLVMValueRef *ptrs, void *ud)
{
    const ed_node *n = ud;
    const ed_graph *body = n->attr.body;
    LLVMValueRef v[ED_FUSED_MAX_NODES], x[3];
    int k = 0;
    for (int i = 0; i < body->nnodes; i++) {
        const ed_node *b = body->nodes[i];
        if (b->op == ED_OP_INPUT) {
            v[i] = LLVMBuildLoad2(cg->b, ed_cg_type(cg, b->dtype), ptrs[1 + k++], "");
        } else if (b->op == ED_OP_CONST) {
            v[i] = splat(cg, b);
        } else if (b->op == ED_OP_BROADCAST_TO) {
            v[i] = v[b->in[0]->id]; /* every value is read at the result's index */
        } else {
            for (int j = 0; j < b->nin; j++) x[j] = v[b->in[j]->id];
            v[i] = ed_lower_elem_value(cg, b, x);
        }
    }
    LLVMBuildStore(cg->b, v[body->outputs[0].node->id], ptrs[0]);
}

void ed_lower_fused(ed_cg *cg, const ed_node *n, LLVMValueRef *args)
{
    assert(n->nin + 1 <= ED_WALK_MAX_OPS && n->attr.body->nnodes <= ED_FUSED_MAX_NODES);
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
