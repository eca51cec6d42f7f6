/* Building loops: fori_loop semantics with carried values and stacked outputs.
 *
 *   ed_loop_builder *b = ed_loop_begin(g, 1000);
 *   ed_node *i = ed_loop_index(b);                 // i32[] in the body: 0 .. trips-1
 *   ed_node *x = ed_loop_carried(b, x0);            // x0 in g; x in the body
 *   ed_node *w = ed_loop_capture(b, ed_param(g, "w", ...)); // outer value, read-only
 *   ed_graph *body = ed_loop_body(b);               // build the step in here
 *   ed_node *x1 = ed_add(x, ed_mul(w, ed_randn(body, ED_F32, shape)));
 *   ed_node *loop = ed_loop_end(b, &x1, 1, &x1, 1); // next carried, then stacked outputs
 *   ed_node *x_final = ed_loop_result(loop, 0);     // carried finals first,
 *   ed_node *traj = ed_loop_result(loop, 1);        // then stacked: [1000, ...]
 *
 * Body nodes live in the body graph, which the outer graph owns once the loop is built.
 * Outer values reach the body only through ed_loop_carried and ed_loop_capture
 * (capturing the same outer node twice gives the same body node). Params and state
 * are outer values too: capture them. For convenience, params or state that code in the
 * body creates itself (nn blocks called on the body graph) are moved at ed_loop_end to
 * the outer graph under the same name and captured, so `update` bindings and the store
 * see one param. The body starts in the outer graph's name scope.
 *
 * A nested loop is a loop built on the body graph (ed_loop_begin(body, n)); its
 * captures come from that body, so capture grand-outer values into the middle loop first.
 *
 * Errors are sticky on the outer graph (bad trips, a wrong carried type, a NULL value,
 * an error inside the body): ed_loop_end then returns NULL. Every function accepts a
 * NULL builder or node and returns NULL. ed_loop_end always frees the builder; call it
 * exactly once per ed_loop_begin. */
#ifndef ED_FRONTEND_LOOP_H
#define ED_FRONTEND_LOOP_H

#include "ir/ir.h"

typedef struct ed_loop_builder ed_loop_builder;

/* NULL only when outer is NULL or memory runs out. trips < 0 is recorded on outer. */
ed_loop_builder *ed_loop_begin(ed_graph *outer, int64_t trips);
ed_graph *ed_loop_body(const ed_loop_builder *b);
/* The iteration index, i32[] (0 .. trips-1). */
ed_node *ed_loop_index(ed_loop_builder *b);
/* A carried value starting at init (an outer node); returns its value in the body for
 * the current iteration. */
ed_node *ed_loop_carried(ed_loop_builder *b, ed_node *init);
/* An outer value read in the body (the same every iteration). */
ed_node *ed_loop_capture(ed_loop_builder *b, ed_node *outer_value);
/* Finish: next[k] (body nodes) is carried value k's value for the next iteration, with
 * the carried value's exact type; stacked[j] (body nodes) is stacked into [trips, ...].
 * Returns the loop node (a tuple: read it with ed_loop_result) and frees b. */
ed_node *ed_loop_end(ed_loop_builder *b, ed_node *const *next, int n, ed_node *const *stacked, int m);
/* Result k of a loop: the final carried values first (k < n), then the stacked outputs. */
ed_node *ed_loop_result(ed_node *loop, int k);

#endif
