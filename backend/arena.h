/* The memory plan of a compiled program: every computed node's buffer lives at a fixed
 * offset in one arena, allocated once per program. Inputs, params and state are not in
 * the arena: they are bound by pointer at each call.
 *
 * This is the seam for memory planning: today each buffer gets its own slot (no reuse);
 * a later pass can give buffers whose live ranges do not overlap the same bytes by
 * changing ed_arena_plan alone. Whatever it does, a kernel's output must not share bytes
 * with its inputs (the JIT marks kernel pointers noalias). */
#ifndef ED_ARENA_H
#define ED_ARENA_H

#include "ir/ir.h"

#include <stdbool.h>
#include <stdint.h>

/* Does n's value live in the arena? (Everything but inputs, params and state.) */
bool ed_arena_holds(const ed_node *n);

/* Fill offsets[id] (g->nnodes entries) with each held node's byte offset, ED_ALIGN
 * aligned, and -1 for the others. order is a topological order of g. Returns the
 * arena's size in bytes, or -1 with ed_last_error() on overflow. */
int64_t ed_arena_plan(const ed_graph *g, ed_node *const *order, int64_t *offsets);

#endif
