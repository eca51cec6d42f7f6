/* The reference interpreter: one plain-C kernel per op, the oracle every other
 * backend and pass is tested against.
 *
 * A kernel computes one node from the values of its inputs into a tensor of the
 * node's dtype and shape. Kernels never fail on a graph that passed the verifier, and
 * only loop allocates (its body's buffers, once per call). The kernel table is indexed by ed_op; ed_interp_has_kernel lets a
 * start-up check (and a test) find any op left without one. */
#ifndef ED_INTERP_H
#define ED_INTERP_H

#include "ir/ir.h"

#include <stdbool.h>
#include <stdint.h>

/* What a kernel may need beyond its inputs: the random streams' key, and where the
 * loop kernel (the one kernel that allocates, once per call) reports running out of
 * memory: it sets *status to ED_ERR with the message in ed_last_error(). */
typedef struct {
    uint64_t seed; /* ed_compile_opts.seed; inside a loop body, the iteration's seed */
    uint64_t call; /* the program's call counter */
    int *status;   /* may be NULL */
} ed_interp_ctx;

bool ed_interp_has_kernel(ed_op op);

/* Compute n into out. in[k] is the value of n->in[k]; out has n's dtype and shape and
 * must not overlap any input. Bound leaves (input, param, state) compute nothing: their
 * value is the bound tensor itself, which the caller puts in its value table. */
void ed_interp_eval(const ed_node *n, const ed_tensor *const *in, ed_tensor *out, const ed_interp_ctx *ctx);

/* True for input, param and state: leaves whose value is bound, not computed. */
bool ed_interp_is_bound_leaf(ed_op op);

#endif
