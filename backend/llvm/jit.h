/* The LLVM JIT backend: one LLVM function per computed node, one entry function
 * `ed_entry(arena, values, seed, call)` that calls them in topological order.
 * Computed nodes (consts included) live in the program's arena at offsets fixed at
 * compile time (backend/arena.h) and baked into the code as constants; values[id] is
 * the data pointer of input, param or state id for this call (filled by
 * backend/compile.c). Other entries of values are not read.
 *
 * Ops without a lowering make the check fail with one clear line naming the op. */
#ifndef ED_LLVM_JIT_H
#define ED_LLVM_JIT_H

#include "backend/backend.h"
#include "ir/ir.h"
#include "runtime/numerics.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct ed_jit ed_jit;
typedef void (*ed_jit_entry)(void *arena, void *const *values, uint64_t seed, uint64_t call);

/* Milliseconds per phase of ed_jit_compile; codegen includes creating the LLJIT. */
/* What the object cache did for one compile. */
typedef enum {
    ED_JIT_CACHE_OFF,        /* not asked, EDIFICE_NO_CACHE, no cache folder, or numerics checks */
    ED_JIT_CACHE_HIT,        /* the object came from the cache: no optimization, no codegen */
    ED_JIT_CACHE_STORED,     /* compiled, and the object stored */
    ED_JIT_CACHE_NOT_STORED, /* compiled; storing failed (ed_last_error() says why), the program works */
} ed_jit_cache;

typedef struct {
    double lower_ms, optimize_ms, codegen_ms; /* codegen: or loading and linking a cached object */
    int kernels;                              /* kernel functions in the module before optimization */
    ed_jit_cache cache;
} ed_jit_stats;

/* True when op has a lowering (leaves included). */
bool ed_jit_has_lowering(ed_op op);
/* ED_OK, or ED_ERR with "backend jit: op X (%N) is not lowered yet; use the interp backend". */
int ed_jit_check(const ed_graph *g);

/* Build, optimize (default<O{level}> with level 0..3, host CPU) and JIT the program of
 * g in the given topological order, with the arena offsets of ed_arena_plan. The
 * code-generation level follows level too (O0 = CodeGenLevelNone ... O3 = Aggressive).
 * With numerics, every float kernel output is checked into it as the program runs
 * (runtime/numerics.h; it must outlive the code). conv: the convolutions' form. cache:
 * look the object up in, and store it into, the on-disk cache (obj_cache.h) unless
 * EDIFICE_NO_CACHE is set or numerics is on. NULL with ed_last_error() on failure. */
ed_jit *ed_jit_compile(const ed_graph *g, ed_node *const *order, const int64_t *offsets, int level,
                       ed_numerics_fault *numerics, ed_conv_lowering conv, bool cache);
ed_jit_entry ed_jit_entry_fn(const ed_jit *j);
ed_jit_stats ed_jit_get_stats(const ed_jit *j);
/* Milliseconds spent building, optimizing and code-generating, in total. */
double ed_jit_compile_ms(const ed_jit *j);
void ed_jit_free(ed_jit *j);

/* What g's program compiles to at level 0..3, as text (free() it), or NULL with
 * ed_last_error(): the optimized LLVM IR, or the host assembly (the same target
 * machine the JIT uses). */
typedef enum { ED_JIT_DUMP_IR, ED_JIT_DUMP_ASM } ed_jit_dump_kind;
char *ed_jit_dump(const ed_graph *g, int level, ed_jit_dump_kind kind);
/* ed_jit_dump(g, 2, ED_JIT_DUMP_IR). */
char *ed_jit_dump_ir(const ed_graph *g);

#endif
