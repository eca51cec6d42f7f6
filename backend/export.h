/* Ahead-of-time export: a compiled JIT program written as one object file NAME.o and
 * its header NAME.h, for a C program that links it with `cc prog.c NAME.o -lopenblas -lm`
 * (no LLVM, no edifice). The object holds the program's code (the same optimized IR
 * the JIT compiles, for the same target machine, so the same bits), the runtime
 * helpers that code calls (linked in from bitcode embedded at build time), the params
 * and state as constant data, and the const values of the arena.
 *
 * Functions of NAME.o (NAME.h documents the sizes, dtypes and shapes):
 *   NAME_WORKSPACE_BYTES           the arena one call works in
 *   void NAME_init(void *ws)       zeroes a caller's workspace (64-byte aligned) and
 *                                  writes the consts in; once per workspace
 *   int NAME_call(ws, in..., out..., seed, call)   one call in the caller's workspace
 *   int NAME_run(in..., out..., seed, call)        the same in a static workspace
 *                                  inside the object (not reentrant)
 *   int NAME_sample(in..., seed, out...)           with ED_EXPORT_SAMPLE: NAME_run at
 *                                  call 0
 * Inputs and outputs follow the graph's order; seed and call are ed_compile's seed and
 * the program's call counter (ed_program_calls), so call k of the object equals the
 * (k+1)-th ed_run of the program. All return 0. */
#ifndef ED_EXPORT_H
#define ED_EXPORT_H

#include "backend/backend.h"

typedef struct {
    const char *out;        /* path without extension: writes OUT.o and OUT.h */
    const char *name;       /* the C prefix [the file name of out, as an identifier] */
    const char *target_cpu; /* NULL: the host CPU and its features (bit-identical to the JIT) */
    const char *triple;     /* NULL: the host's; another architecture is an error */
    bool sample_fn;         /* also NAME_sample */
    bool no_blas;           /* GEMMs by runtime/gemm_ref.c's loops: no OpenBLAS (and not its bits) */
    const char *about;      /* lines for the header's top comment (what was exported, how), or NULL */
} ed_export_opts;

/* Write p (compiled with the JIT backend, without updates) as o->out.o and o->out.h.
 * Export before the first ed_run: the arena's nonzero bytes are baked in as its consts.
 * ED_ERR with the reason in ed_last_error(). */
int ed_export_program(const ed_program *p, const ed_export_opts *o);

/* p's header o->out.h for the object of prefix name, code for triple and cpu, needing
 * the external symbols `needs` (backend/export_header.c; called by ed_export_program). */
int ed_export_write_header(const ed_program *p, const ed_export_opts *o, const char *name, const char *triple,
                           const char *cpu, const char *needs);

#endif
