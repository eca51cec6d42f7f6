/* The compiled program behind ed_program, shared by every backend.
 *
 * ed_compile does all the setup once: the topological order, one value tensor per
 * computed node (JIT: views into one arena, see backend/arena.h; interpreter: one
 * allocation each), the store binding of params and state, and copies for outputs and
 * updates whose value is a bound leaf. A call then only checks and binds its feeds,
 * re-checks the store entries (a user may have replaced one), runs the nodes and
 * writes the updates; it allocates nothing in the steady state.
 *
 * Everything indexed "by node id" has graph->nnodes entries, taken at compile time:
 * the graph must not change while a program built from it is in use (ed_run refuses a
 * graph whose node count changed). */
#ifndef ED_PROGRAM_H
#define ED_PROGRAM_H

#include "backend/backend.h"
#include "runtime/numerics.h"

typedef struct {
    const char *name; /* graph-owned */
    const ed_node *node;
} ed_program_binding;

struct ed_program {
    const ed_graph *graph; /* the copy that was compiled: the caller's graph after the passes */
    ed_graph *copy;        /* owned: the same graph, freed with the program. The program is a snapshot:
                              * the caller may change or free its graph afterwards. */
    ed_store *store;
    ed_compile_opts opts; /* backend and opt level resolved: never the DEFAULT values */
    ed_compile_stats stats;
    uint64_t calls; /* calls that completed: the next call's random counter */

    int nnodes;
    ed_node **order;         /* topological order */
    ed_tensor **owned;       /* by node id: the tensor a computed node writes; NULL for bound leaves.
                                JIT: non-owning views into arena */
    const ed_tensor **value; /* by node id: where the node's value is during a call */
    ed_tensor **bound;       /* by node id: the store tensor of a param or state, for this call */
    const ed_tensor **args;  /* scratch for one node's input values (maxin entries) */
    int maxin;

    int ninputs;
    const ed_node **inputs; /* the input leaves */
    const ed_tensor **fed;  /* per input: the tensor fed in this call */
    ed_tensor **stage;      /* per input: a private copy, used when a fed tensor overlaps
                                program memory (e.g. last call's output fed back);
                                allocated the first time it is needed */

    int nstored;
    const ed_node **stored; /* the param and state leaves */

    int noutputs;
    ed_program_binding *outputs;
    ed_tensor **out_copy; /* per output: a program copy when its node is a bound leaf,
                                so the output keeps the value the call saw */
    int nupdates;
    ed_program_binding *updates;
    const ed_node **upd_target; /* per update: the param or state it writes */
    ed_tensor **upd_stage;      /* per update: staging copy when the value is a bound leaf,
                                   so every read of old values precedes every write */
    bool *upd_direct;           /* per update: the JIT writes it into the target's store
                                   tensor during the call (ED_ARENA_IN_STORE) */

    ed_numerics_fault fault; /* check_numerics: the first non-finite value of the call */
    struct ed_jit *jit;      /* ED_BACKEND_JIT: the compiled entry function's engine */
    void *arena;             /* ED_BACKEND_JIT: every computed node's buffer, one allocation */
    size_t arena_bytes;
    void **ptrs; /* ED_BACKEND_JIT: by node id, the data pointer of an input, param
                                or state for this call (the values table of ed_entry), and
                                of an update written into the store */
};

#endif
