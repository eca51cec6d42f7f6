/* Compiled programs: a graph bound to a store, ready to be called in a loop.
 *
 *   ed_program *p = ed_compile(g, store, &(ed_compile_opts){.backend = ED_BACKEND_INTERP});
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
#include "runtime/error.h"
#include "runtime/store.h"

typedef enum { ED_BACKEND_INTERP, ED_BACKEND_JIT } ed_backend;

typedef struct {
    ed_backend backend;
    uint64_t seed; /* seed of the random ops' streams */
} ed_compile_opts;

typedef struct {
    const char *name;
    const ed_tensor *tensor;
} ed_feed;

typedef struct ed_program ed_program;

/* NULL with ed_last_error() on failure (graph error, verifier, store type mismatch,
 * unavailable backend). The graph and store must outlive the program. */
ed_program *ed_compile(const ed_graph *g, ed_store *st, const ed_compile_opts *opts);
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

#endif
