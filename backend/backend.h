/* Compiled programs: a graph bound to a store, ready to be called in a loop.
 *
 *   ed_program *p = ed_compile(g, store, NULL); // the JIT at -O2, seed 0
 *   ed_run(p, feeds, nfeeds);                 // inputs bound by name
 *   const ed_tensor *y = ed_program_output(p, "y");
 *
 * Params and state named in the graph are taken from the store, and created there
 * with their initializers when missing. After each call the store holds the values
 * of the graph's `update` bindings. Output tensors belong to the program and keep
 * their values until the next ed_run (copy them to keep them longer). */
#ifndef ED_BACKEND_H
#define ED_BACKEND_H

#include "ir/ir.h"
#include "passes/pass.h"
#include "runtime/error.h"
#include "runtime/store.h"

/* The zero value means the default, so `(ed_compile_opts){0}` and NULL options agree. */
typedef enum {
    ED_BACKEND_DEFAULT, /* = ED_BACKEND_JIT */
    ED_BACKEND_JIT,     /* LLVM ORC JIT: native code, buffers in one arena per program */
    ED_BACKEND_INTERP,  /* the reference interpreter: plain C loops, the oracle */
} ed_backend;

/* LLVM optimization level. Zero is the default (O2); the levels proper are 1..4 so
 * that a zero-initialized struct still means the default. ED_OPT_O0 + n is -On. */
typedef enum { ED_OPT_DEFAULT, ED_OPT_O0, ED_OPT_O1, ED_OPT_O2, ED_OPT_O3 } ed_opt_level;

/* How the JIT lays out its arena (backend/arena.h). Zero is the default: reuse and
 * in-place. The others exist to measure the planner and to debug it. Loop bodies are
 * always planned with the default. */
typedef enum {
    ED_ARENA_DEFAULT,  /* = ED_ARENA_INPLACE */
    ED_ARENA_INPLACE,  /* buffers with disjoint lifetimes share bytes; elementwise ops overwrite dying inputs */
    ED_ARENA_REUSE,    /* sharing, but no in-place updates */
    ED_ARENA_SEPARATE, /* every buffer its own slot */
} ed_arena_mode;

/* The memory figures of a plan (bytes; every buffer rounded up to ED_ALIGN). */
typedef struct {
    int64_t arena_bytes;  /* the arena: what the program allocates */
    int64_t buffer_bytes; /* the sum of all buffers (the arena without reuse) */
    int64_t peak_bytes;   /* the most bytes alive at once along the order: no layout does better */
    int buffers;          /* buffers planned */
    int inplace;          /* nodes that write over an input */
    int in_store;         /* updates the JIT writes straight into the store (backend/arena.h) */
} ed_arena_stats;

/* How the JIT lowers the convolution ops. Zero is the default: by size (backend/llvm/
 * lower_conv.c states the rule and bench/HISTORY.md the measurement behind it). The
 * others exist to test and measure each form. */
typedef enum {
    ED_CONV_AUTO,   /* = im2col + sgemm for f32 convolutions, direct for f64 and one channel per group */
    ED_CONV_DIRECT, /* loops in double: the interpreter's bits */
    ED_CONV_GEMM,   /* im2col + sgemm (col2im for conv_transpose2d) for every f32 convolution */
} ed_conv_lowering;

typedef struct {
    ed_backend backend;
    uint64_t seed;           /* seed of the random ops' streams */
    ed_arena_mode arena;     /* JIT only: the memory plan */
    ed_opt_level opt_level;  /* JIT only */
    ed_conv_lowering conv;   /* JIT only: the convolutions' form */
    const char *passes;      /* graph passes run on a copy of the graph: NULL for
                               ED_DEFAULT_PIPELINE, "" for none (passes/pass.h) */
    ed_pass_opts *pass_opts; /* NULL, or verification, printing and stats for the passes */
    bool check_numerics;     /* every float value checked as it is computed: a call that makes a
                                NaN or an infinity fails naming the node (runtime/numerics.h);
                                also on when EDIFICE_CHECK_NUMERICS=1 */
    bool no_cache;           /* JIT: neither read nor write the on-disk object cache (also off when
                                EDIFICE_NO_CACHE=1; folder and size bound: backend/llvm/obj_cache.h) */
    int compile_threads;     /* JIT: modules optimized and code-generated in parallel; 0: EDIFICE_COMPILE_THREADS,
                                else the online CPUs (at most 8). The code's results do not depend on it */
} ed_compile_opts;

/* What compiling cost. The JIT fills every field (kernels: distinct kernel functions;
 * nodes that compute the same thing share one); the interpreter compiles nothing (times
 * 0, arena 0) and reports one kernel per computed node. */
typedef struct {
    double lower_ms;       /* building the LLVM IR */
    double optimize_ms;    /* the LLVM pass pipeline */
    double codegen_ms;     /* machine code (ORC compiles on the first lookup) */
    int kernels;           /* kernel functions lowered */
    const char *cache;     /* JIT object cache: "off", "hit", "stored" or "not stored"; NULL: interp */
    bool passes_skipped;   /* a cache hit: the graph passes, the lowering and LLVM did not run (the
                              graph the passes made came from the cache entry) */
    int parts;             /* JIT: modules compiled in parallel (or loaded from the cache) */
    size_t arena_bytes;    /* the one buffer holding every computed node's value (JIT) */
    ed_arena_stats memory; /* the memory plan along the program's order; the interpreter
                              reports what the JIT's default plan would be (arena_bytes 0) */
} ed_compile_stats;

typedef struct {
    const char *name;
    const ed_tensor *tensor;
} ed_feed;

typedef struct ed_program ed_program;

/* NULL with ed_last_error() on failure (graph error, verifier, store type mismatch,
 * unknown backend or opt level, unknown pass). opts may be NULL: the defaults (JIT,
 * O2, seed 0, the default pass pipeline). The program compiles a copy of g after the
 * passes, so g itself is never changed; g (ed_run refuses it once it has changed)
 * and the store must outlive the program. */
ed_program *ed_compile(const ed_graph *g, ed_store *st, const ed_compile_opts *opts);

/* Threads programs run on, the caller included (n <= 0: EDIFICE_THREADS, else the online
   CPUs): the thread pool's (runtime/pool.h), which splits large kernels and sgemms, and
   OpenBLAS's (one while the pool splits sgemms; n with EDIFICE_SPLIT_GEMM=0). */
void ed_set_threads(int n);
/* What ed_compile does once if ed_set_threads was never called: OpenBLAS to one thread
   when the pool splits sgemms. */
void ed_threads_default(void);
void ed_program_free(ed_program *p);

/* One call. Every input of the graph must be fed once, with its exact dtype and shape.
 * Random streams advance: call k of a program draws with call counter k. */
int ed_run(ed_program *p, const ed_feed *feeds, int nfeeds);

int ed_program_num_outputs(const ed_program *p);
const char *ed_program_output_name(const ed_program *p, int i);
const ed_tensor *ed_program_output_at(const ed_program *p, int i);
/* NULL if the graph has no output of that name. */
const ed_tensor *ed_program_output(const ed_program *p, const char *name);
/* How many calls have run (the next call's random counter). */
uint64_t ed_program_calls(const ed_program *p);
void ed_program_set_calls(ed_program *p, uint64_t calls);
/* The backend p runs on (resolved: JIT or INTERP; DEFAULT for NULL). */
ed_backend ed_program_backend(const ed_program *p);
/* Zeros for NULL. */
ed_compile_stats ed_program_compile_stats(const ed_program *p);

#endif
