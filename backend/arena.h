/* The memory plan of a compiled program: every computed node's buffer lives at a fixed
 * offset in one arena, allocated once per program. Inputs, params and state are not in
 * the arena: they are bound by pointer at each call.
 *
 * The planner (backend/arena.c) works on any graph and any topological order of it
 * (loop bodies use it too):
 *   - liveness: a buffer lives from the node that writes it to its last reader in the
 *     order; consts (filled once at compile time) live for the whole program, and the
 *     values bound to `out` and `update` live to the end of the call (outputs stay
 *     valid after it, updates are copied into the store after every kernel ran,
 *     unless written there directly: ed_arena_plan_program);
 *   - in-place: an F_INPLACE node of the same dtype and shape as an input that dies at
 *     that node writes over that input's buffer (never a const, leaf or bound value).
 *     Only elementwise kernels have the flag: they read element i of each input
 *     before writing element i of the output, so exact aliasing is safe; the JIT
 *     lowers such an input through the output pointer (ed_arena_inplace_input);
 *   - reuse: buffers (in-place chains as one) get offsets greedily by size, each at
 *     the best-fitting gap among the buffers whose lifetimes overlap its own.
 * Apart from in-place, a kernel's output never shares bytes with its inputs, which are
 * alive while it runs (the JIT marks kernel pointers noalias). */
#ifndef ED_ARENA_H
#define ED_ARENA_H

#include "backend/backend.h"
#include "ir/ir.h"

#include <stdbool.h>
#include <stdint.h>

/* Does n's value live in the arena? (Everything but inputs, params and state.) */
bool ed_arena_holds(const ed_node *n);

/* Fill offsets[id] (g->nnodes entries) with each held node's byte offset, ED_ALIGN
 * aligned, and -1 for the others. order is a topological order of g. Returns the
 * arena's size in bytes, or -1 with ed_last_error() on overflow. stats may be NULL.
 * ED_ARENA_SEPARATE gives every buffer its own slot, in order (no reuse). */
int64_t ed_arena_plan_mode(const ed_graph *g, ed_node *const *order, ed_arena_mode mode, int64_t *offsets,
                           ed_arena_stats *stats);
/* As ed_arena_plan_mode, and with updates_in_store (JIT programs that are not checking
 * numerics) in the in-place mode, an update whose target's old value nothing reads
 * after it (arena.c, writes_store) gets no arena bytes: its offset is ED_ARENA_IN_STORE,
 * and the JIT writes it through the pointer table (like a bound leaf's) into the
 * target's store tensor, which it then reads in place; compile.c sets the pointer at
 * each call and has nothing to copy after it. W3's copies of every param and Adam
 * moment after each step were 7% of its time (bench/HISTORY.md). */
#define ED_ARENA_IN_STORE (-2)
int64_t ed_arena_plan_program(const ed_graph *g, ed_node *const *order, ed_arena_mode mode, bool updates_in_store,
                              int64_t *offsets, ed_arena_stats *stats);
/* The param or state that update value u is written to (the one binding u is the value
 * of), else NULL. */
const ed_node *ed_arena_update_target(const ed_node *u);

/* ed_arena_plan_mode with the default mode (reuse and in-place), no stats. */
int64_t ed_arena_plan(const ed_graph *g, ed_node *const *order, int64_t *offsets);

/* Does node n write over its input k (the same bytes, by the plan in offsets: one
 * arena buffer, or n written into the store tensor of its input k)? */
bool ed_arena_inplace_input(const ed_node *n, int k, const int64_t *offsets);

/* Bytes node n needs in the arena: its value, and for a loop also the scratch its
 * native loop uses (ed_loop_layout). -1 with ed_last_error() on overflow. */
int64_t ed_arena_node_bytes(const ed_node *n);

/* Where a loop's scratch lives, as byte offsets from the start of the loop's slot
 * (backend/arena_loop.c). The slot holds, in order: the results (the loop's own
 * type), the i32 index, two buffers per carried value (iteration i reads buffer i % 2
 * and writes its next values into the other), and the body's own arena, planned by
 * ed_arena_plan on the body (so nested loops nest their scratch). */
typedef struct {
    int64_t index;     /* the i32 index the body reads */
    int64_t *carried;  /* 2 per carried value: [2k] buffer A of value k, [2k+1] buffer B */
    int64_t body;      /* start of the body's arena */
    int64_t *body_off; /* by body node id: offset within the body's arena, -1 for its inputs */
    ed_node **order;   /* the body's topological order */
    int64_t total;     /* the whole slot */
} ed_loop_layout;

/* ED_OK or ED_ERR with ed_last_error(); free with ed_loop_layout_free either way. */
int ed_loop_layout_make(const ed_node *loop, ed_loop_layout *l);
void ed_loop_layout_free(ed_loop_layout *l);

#endif
