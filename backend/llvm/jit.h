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

/* What the object cache did for one compile (backend/compile.c looks up and stores). */
typedef enum {
    ED_JIT_CACHE_OFF,        /* not asked, EDIFICE_NO_CACHE, no cache folder, or numerics checks */
    ED_JIT_CACHE_HIT,        /* the objects came from the cache: no passes, lowering, optimization or codegen */
    ED_JIT_CACHE_STORED,     /* compiled, and the object stored */
    ED_JIT_CACHE_NOT_STORED, /* compiled; storing failed (ed_last_error() says why), the program works */
} ed_jit_cache;

/* Milliseconds per phase of ed_jit_compile (wall clock; with several parts, optimize is
 * the slowest part's optimizer and codegen the rest); codegen includes creating the LLJIT. */
typedef struct {
    double lower_ms, optimize_ms, codegen_ms; /* codegen: or loading and linking cached objects */
    int kernels;                              /* kernel functions in the module before optimization */
    int parts;                                /* modules optimized and code-generated, one thread each */
    ed_jit_cache cache;
} ed_jit_stats;

/* At most this many parts (compile threads) and objects per program. */
#define ED_JIT_MAX_OBJECTS 16

/* True when op has a lowering (leaves included). */
bool ed_jit_has_lowering(ed_op op);
/* ED_OK, or ED_ERR with "backend jit: op X (%N) is not lowered yet; use the interp backend". */
int ed_jit_check(const ed_graph *g);

/* Build, optimize (default<O{level}> with level 0..3, host CPU) and JIT the program of
 * g in the given topological order, with the arena offsets of ed_arena_plan. The
 * code-generation level follows level too (O0 = CodeGenLevelNone ... O3 = Aggressive).
 * With numerics, every float kernel output is checked into it as the program runs
 * (runtime/numerics.h; it must outlive the code). conv: the convolutions' form.
 * threads > 1 splits the program into that many modules (at most one per kernel; the
 * entry in the first, kernels balanced by size), each optimized and code-generated on its
 * own thread in its own LLVMContext with its own TargetMachine; the objects are linked by
 * the LLJIT. keep_objects: emit the objects here (also with one part) and keep them for
 * ed_jit_objects. NULL with ed_last_error() on failure. */
ed_jit *ed_jit_compile(const ed_graph *g, ed_node *const *order, const int64_t *offsets, int level,
                       ed_numerics_fault *numerics, ed_conv_lowering conv, int threads, bool keep_objects);
/* A program from the objects a compile at the same level kept (the object cache's hit):
 * no lowering, no optimization, no codegen. NULL with ed_last_error(). */
ed_jit *ed_jit_load(const void *const *obj, const size_t *len, int n, int level);
/* The objects j runs, when it emitted them itself (keep_objects or several parts): their
 * count (0: none kept), pointers valid while j lives. */
int ed_jit_objects(const ed_jit *j, const void *const **obj, const size_t **len);
/* What the cache did with j's objects, for its stats. */
void ed_jit_set_cache(ed_jit *j, ed_jit_cache c);
/* Compile threads when none are asked: EDIFICE_COMPILE_THREADS if a positive integer
 * (at most ED_JIT_MAX_OBJECTS), else the online CPUs, at most 8. */
int ed_jit_default_threads(void);
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
