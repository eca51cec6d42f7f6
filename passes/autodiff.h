/* Reverse-mode autodiff: appends the backward graph to the forward graph.
 *
 * Every vector-Jacobian rule is written in ordinary differentiable ops, so the
 * gradient nodes can themselves be differentiated (gradient penalties, second order).
 *
 * Choices:
 * - maximum/minimum and the max/min reductions split the gradient equally between
 *   tied elements.
 * - relu, abs, sign, clamp at their kinks: relu'(0) = 0, abs'(0) = 0 (via sign),
 *   sign' = 0, clamp passes the gradient where lo <= x <= hi.
 * - gather's rule scatters into the clamped index it read; scatter_add passes no
 *   gradient through dropped (out-of-range) updates.
 * - Non-differentiable ops (compare, argmax/argmin, one_hot, random ops, i32 values)
 *   and stop_gradient pass no gradient.
 * - A wrt node the loss does not depend on gets a zero gradient (a const 0 of its
 *   type), not an error. */
#ifndef ED_AUTODIFF_H
#define ED_AUTODIFF_H

#include "ir/ir.h"

/* Gradients of the scalar float node loss with respect to wrt[0..n-1], written to
 * grads[0..n-1]. Returns ED_OK, or ED_ERR with the reason recorded on the graph
 * (non-scalar loss, non-float wrt, nodes of another graph, earlier graph error);
 * grads are then NULL. */
int ed_grad(ed_node *loss, ed_node *const *wrt, int n, ed_node **grads);

/* Gradient of the scalar node y with respect to one node x (NULL on error). */
ed_node *ed_grad1(ed_node *y, ed_node *x);

/* True when op has a vector-Jacobian rule (every F_DIFF op must; a test checks). */
bool ed_has_vjp(ed_op op);

#endif
