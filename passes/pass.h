/* The pass manager: named graph-to-graph passes run as a pipeline string.
 *
 *   ed_pass_opts o = {.print_after = "cse", .print_to = stderr};
 *   if (ed_pass_run(g, "simplify,fold,cse,dce", &o) != ED_OK) puts(ed_last_error());
 *
 * A pass rewrites the graph in place (new nodes with ed_node_new, uses redirected with
 * ed_replace_all_uses or by rewriting n->in[]). After each pass the manager removes
 * the nodes that pass left dead (nodes that were reachable from an output or update
 * before it ran and are not after, and new nodes nothing uses), renumbers the graph
 * densely in topological order, and, when verification is on, runs the IR verifier.
 * Dead code that was there before a pass is the job of `dce`.
 *
 * Loop bodies are graphs like any other: before a pass runs on g, the manager runs it
 * (with the same sweeping and verification) on the body of each loop of g, nested
 * bodies first, and checks that the body's interface stayed: the same input leaves in
 * the same order and out bindings of the same types. A pass function itself sees one
 * graph and treats loop nodes as opaque, so calling ed_pass_fuse(g, st) directly does
 * not enter bodies; ed_pass_run_one(g, "fuse", st) does.
 *
 * Every pass keeps the meaning of the graph: the same outputs and updates for the
 * same feeds, store and seed; inputs, params and state are never removed or merged,
 * so feeds and the store bind exactly as before. Ops a pass does not know (a kind it
 * has no case for, or attributes outside the schema it reads) are left alone. */
#ifndef ED_PASS_H
#define ED_PASS_H

#include "ir/ir.h"

#include <stdbool.h>
#include <stdio.h>

/* What one pass did. The manager fills name, ms and the node counts; the pass adds
 * to rewrites the number of nodes it replaced or created. Node counts are of the
 * graph and the bodies of its loops (nested ones too; fused nodes' bodies are not
 * counted), and body_nodes_* say how many of them are in loop bodies. */
typedef struct {
    const char *name;
    double ms;
    int nodes_before, nodes_after;
    int body_nodes_before, body_nodes_after;
    int rewrites;
} ed_pass_stats;

/* A pass: ED_OK, or ED_ERR with the reason in ed_last_error() (or on the graph). */
typedef int (*ed_pass_fn)(ed_graph *g, ed_pass_stats *st);

typedef struct {
    const char *name; /* [a-z_]+, used in pipeline strings */
    ed_pass_fn run;
    const char *description; /* one line, for --help and errors */
} ed_pass;

/* The pipeline ed_compile runs when none is given. */
#define ED_DEFAULT_PIPELINE "simplify,fold,cse,hoist,dce,fuse,plan"

/* The passes known by name: the built-in table, then any registered ones. */
int ed_pass_count(void);
const ed_pass *ed_pass_at(int i);
const ed_pass *ed_pass_find(const char *name);
/* Add a pass defined outside passes/ (e.g. a backend's). The struct is copied; its
 * strings must outlive every pipeline that names it. Fails on a name already taken
 * or a full table. */
int ed_pass_register(const ed_pass *p);

typedef enum {
    ED_VERIFY_DEFAULT, /* on in debug builds (no NDEBUG) or when EDIFICE_VERIFY_PASSES=1 */
    ED_VERIFY_ON,
    ED_VERIFY_OFF,
} ed_pass_verify;

/* The zero value (or NULL) is: verify per ED_VERIFY_DEFAULT, print nothing. */
typedef struct {
    ed_pass_verify verify;
    bool print_after_all;    /* the text form after every pass */
    const char *print_after; /* ... or after the passes named here ("cse" or "fold,dce") */
    FILE *print_to;          /* where that text goes (stderr when NULL) */
    FILE *stats_to;          /* when set: one line per pass, time and node counts */
    ed_pass_stats *stats;    /* when set: up to stats_cap entries, one per pass run */
    int stats_cap;
    int nstats; /* out: entries written to stats */
} ed_pass_opts;

/* Check a pipeline string without running it: names separated by commas (spaces
 * around names allowed), each a known pass; "" is the empty pipeline. */
int ed_pipeline_check(const char *pipeline);

/* Run pipeline (NULL: ED_DEFAULT_PIPELINE; "": no pass) on g. The whole pipeline and
 * print_after are checked before any pass runs. On failure the graph may be partly
 * rewritten but still verifies unless the error came from the verifier, which names
 * the pass. */
int ed_pass_run(ed_graph *g, const char *pipeline, ed_pass_opts *opts);

/* Run the one pass called name on g as a pipeline of one does: on loop bodies first
 * (interface checked), with the sweep and verification (ED_VERIFY_DEFAULT). st may be
 * NULL. This, not the ed_pass_<name> functions below, is the way to run one pass. */
int ed_pass_run_one(ed_graph *g, const char *name, ed_pass_stats *st);

/* Print one stats line: "pass cse: 0.12 ms, 140 -> 128 nodes, 12 rewrites", or with
 * loops "pass cse: 0.12 ms, 140 -> 128 nodes (40 -> 30 of them in loop bodies), 12
 * rewrites". */
void ed_pass_stats_print(const ed_pass_stats *st, FILE *f);

/* ---- the built-in passes ------------------------------------------------------ */

/* These are the table's functions: each acts on the one graph it is given and treats
 * loop nodes as opaque (it does not enter their bodies), and it does not sweep what it
 * left dead or verify. The manager adds all that (ed_pass_run, ed_pass_run_one); call
 * these directly only to test a pass on one graph. */

int ed_pass_simplify(ed_graph *g, ed_pass_stats *st);
int ed_pass_fold(ed_graph *g, ed_pass_stats *st);
int ed_pass_cse(ed_graph *g, ed_pass_stats *st);
int ed_pass_hoist(ed_graph *g, ed_pass_stats *st);
int ed_pass_dce(ed_graph *g, ed_pass_stats *st);
/* fuse (passes/fuse.c): elementwise chains into fused nodes. After ed_grad only. */
int ed_pass_fuse(ed_graph *g, ed_pass_stats *st);
/* fuse's last step (passes/fuse_matmul.c): a small matmul (at most ED_GEMV_MAX_ROWS
 * rows, or a 16-bit weight; one matrix) or an f32 conv2d / conv_transpose2d of the gemm
 * form (ed_conv_gemm_default) read only by an elementwise chain of its shape becomes the
 * producer in that chain's fused node. */
int ed_fuse_producers(ed_graph *g, ed_pass_stats *st);
/* plan (passes/plan.c): reorder the nodes (and those of fused bodies) into
 * ed_plan_order's order; the manager applies it to loop bodies. */
int ed_pass_plan(ed_graph *g, ed_pass_stats *st);

/* A topological order of g that keeps the peak of live memory low (malloc'd, nnodes
 * entries), or NULL with ed_last_error(). Never worse than ed_graph_topo by
 * ed_plan_peak. */
ed_node **ed_plan_order(const ed_graph *g);
/* The peak bytes of computed values alive at once along order, by the schedule's
 * cost model (inputs, params, state, consts and out/update values not counted), or
 * -1 when out of memory. */
int64_t ed_plan_peak(const ed_graph *g, ed_node *const *order);

/* ---- helpers for pass authors (passes/pass_util.c) --------------------------------- */

/* True when passes may treat op as a pure function of its inputs and schema
 * attributes (a kind they know; random ops are pure given their stream). Anything
 * else is opaque: never folded, merged or rewritten, and kept by dce. */
bool ed_pass_op_is_known(ed_op op);
/* live[id] for every node: reachable from an output or update, or a leaf that binds
 * (input, param, state), or an op passes do not know. live has g->nnodes entries. */
void ed_pass_live(const ed_graph *g, bool *live);

#endif
