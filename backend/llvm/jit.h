/* The LLVM JIT backend: one LLVM function per computed node, one entry function
 * `ed_entry(values, seed, call)` that calls them in topological order. values[id] is
 * the data pointer of node id's value for this call (filled by backend/compile.c).
 *
 * Ops without a lowering make the check fail with one clear line naming the op. */
#ifndef ED_LLVM_JIT_H
#define ED_LLVM_JIT_H

#include "ir/ir.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct ed_jit ed_jit;
typedef void (*ed_jit_entry)(void *const *values, uint64_t seed, uint64_t call);

/* True when op has a lowering (leaves included). */
bool ed_jit_has_lowering(ed_op op);
/* ED_OK, or ED_ERR with "backend jit: op X (%N) is not lowered yet; use the interp backend". */
int ed_jit_check(const ed_graph *g);

/* Build, optimize (default<O2>, host CPU) and JIT the program of g in the given
 * topological order. NULL with ed_last_error() on failure. */
ed_jit *ed_jit_compile(const ed_graph *g, ed_node *const *order);
ed_jit_entry ed_jit_entry_fn(const ed_jit *j);
/* Milliseconds spent building, optimizing and code-generating. */
double ed_jit_compile_ms(const ed_jit *j);
void ed_jit_free(ed_jit *j);

/* The optimized LLVM IR of g's program as text (free() it), or NULL on failure. */
char *ed_jit_dump_ir(const ed_graph *g);

#endif
