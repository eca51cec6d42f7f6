/* The fused kernel: the body's expression evaluated once per result element, in the
 * body's creation order (topological, checked by the shape rule). Every step is
 * ed_scalar_eval rounded to its dtype, as the unfused nodes would store it, so a fused
 * node gives exactly the values of the nodes it replaced. */
#include "backend/interp/iter.h"
#include "backend/interp/kernels.h"

#include <assert.h>

ED_KERNEL(ed_k_fused)
{
    (void)ctx;
    const ed_graph *body = n->attr.body;
    int nb = body->nnodes, y = body->outputs[0].node->id;
    assert(nb <= ED_FUSED_MAX_NODES && n->nin <= ED_FUSED_MAX_INPUTS);
    int input_of[ED_FUSED_MAX_NODES]; /* body input id -> the node's input number */
    for (int i = 0, k = 0; i < nb; i++) input_of[i] = body->nodes[i]->op == ED_OP_INPUT ? k++ : -1;
    int64_t total = ed_shape_numel(out->shape);
    ed_iter it;
    ed_iter_init(&it, out->shape, n->nin);
    for (int k = 0; k < n->nin; k++) ed_iter_bcast_strides(it.stride[k], in[k]->shape, out->shape);
    double v[ED_FUSED_MAX_NODES], x[3];
    for (int64_t e = 0; e < total; e++, ed_iter_next(&it)) {
        for (int i = 0; i < nb; i++) {
            const ed_node *b = body->nodes[i];
            if (b->op == ED_OP_INPUT) {
                v[i] = interp_get(in[input_of[i]], it.off[input_of[i]]);
            } else if (b->op == ED_OP_CONST) {
                v[i] = b->attr.data[0];
            } else if (b->op == ED_OP_BROADCAST_TO) {
                v[i] = v[b->in[0]->id]; /* read at the result's index already */
            } else {
                for (int k = 0; k < b->nin; k++) x[k] = v[b->in[k]->id];
                v[i] = ed_scalar_round(ed_scalar_eval(b->op, x, &b->attr, b->dtype), b->dtype);
            }
        }
        interp_set(out, e, v[y]);
    }
}
