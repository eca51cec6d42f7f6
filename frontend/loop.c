/* The loop builder: the body graph with its input leaves, kept in the order the IR
 * wants (index, carried, captured) whatever order the calls came in, and the loop node. */
#include "frontend/loop.h"

#include "runtime/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    ed_node *outer, *inner;
} pair;

struct ed_loop_builder {
    ed_graph *outer, *body;
    int64_t trips;
    ed_node *index;
    pair *carried, *captured;
    int ncarried, ncaptured, capc, capk;
};

static bool push(pair **list, int *n, int *cap, pair p)
{
    if (*n == *cap) {
        int c = *cap ? *cap * 2 : 8;
        pair *q = realloc(*list, (size_t)c * sizeof *q);
        if (!q) return false;
        *list = q;
        *cap = c;
    }
    (*list)[(*n)++] = p;
    return true;
}

ed_loop_builder *ed_loop_begin(ed_graph *outer, int64_t trips)
{
    if (!outer) return NULL;
    ed_loop_builder *b = calloc(1, sizeof *b);
    if (!b || !(b->body = ed_graph_new("body"))) {
        free(b);
        ed_graph_fail(outer, "loop: out of memory");
        return NULL;
    }
    b->outer = outer;
    b->body->parent = outer; /* adopted by ed_loop_end; known now for error messages */
    b->body->eval_mode = outer->eval_mode;
    b->body->weight_dtype = outer->weight_dtype;
    b->trips = trips;
    if (trips < 0 || trips > INT32_MAX)
        ed_graph_fail(outer, "loop: trips must be 0..%d (the index is i32), got %lld", INT32_MAX, (long long)trips);
    if (outer->scope[0]) ed_scope_push(b->body, outer->scope);
    b->index = ed_node_new(b->body, ED_OP_INPUT, NULL, 0,
                           &(ed_attrs){.name = "index", .dtype = ED_I32, .shape = {.rank = 0}});
    return b;
}

ed_graph *ed_loop_body(const ed_loop_builder *b) { return b ? b->body : NULL; }

ed_node *ed_loop_index(ed_loop_builder *b) { return b ? b->index : NULL; }

/* The check shared by carried and capture: v is a value of the outer graph. */
static bool outer_value(ed_loop_builder *b, ed_node *v, const char *what)
{
    if (!v) {
        if (!b->outer->failed) ed_graph_fail(b->outer, "%s: the outer value is NULL", what);
        return false;
    }
    if (v->graph != b->outer) {
        ed_graph_fail(b->outer, "%s: %%%d belongs to @%s, not to the loop's outer graph @%s%s", what, v->id,
                      v->graph->name, b->outer->name,
                      v->graph == b->body ? " (it is already a body node)"
                                          : " (capture it into the enclosing loop first)");
        return false;
    }
    if (ed_ops[v->op].flags & F_TUPLE) {
        ed_graph_fail(b->outer, "%s: %%%d is a loop; pass one of its results (ed_loop_result)", what, v->id);
        return false;
    }
    return true;
}

static ed_node *body_input(ed_loop_builder *b, const char *prefix, int k, const ed_node *like)
{
    char name[48];
    snprintf(name, sizeof name, "%s%d", prefix, k);
    return ed_node_new(b->body, ED_OP_INPUT, NULL, 0,
                       &(ed_attrs){.name = name, .dtype = like->dtype, .shape = like->shape});
}

ed_node *ed_loop_carried(ed_loop_builder *b, ed_node *init)
{
    if (!b || !outer_value(b, init, "ed_loop_carried")) return NULL;
    ed_node *in = body_input(b, "carried", b->ncarried, init);
    if (in && !push(&b->carried, &b->ncarried, &b->capc, (pair){init, in})) {
        ed_graph_fail(b->outer, "loop: out of memory");
        return NULL;
    }
    return in;
}

ed_node *ed_loop_capture(ed_loop_builder *b, ed_node *v)
{
    if (!b || !outer_value(b, v, "ed_loop_capture")) return NULL;
    for (int i = 0; i < b->ncaptured; i++)
        if (b->captured[i].outer == v) return b->captured[i].inner;
    ed_node *in = body_input(b, "captured", b->ncaptured, v);
    if (in && !push(&b->captured, &b->ncaptured, &b->capk, (pair){v, in})) {
        ed_graph_fail(b->outer, "loop: out of memory");
        return NULL;
    }
    return in;
}

/* Params and state the body built itself become outer leaves, captured. */
static void hoist_stored_leaves(ed_loop_builder *b)
{
    ed_graph *body = b->body;
    int n = body->nnodes;
    for (int i = 0; i < n && !body->failed && !b->outer->failed; i++) {
        ed_node *p = body->nodes[i];
        if (p->op != ED_OP_PARAM && p->op != ED_OP_STATE) continue;
        ed_node *o = ed_node_new(b->outer, p->op, NULL, 0, &p->attr);
        ed_node *in = ed_loop_capture(b, o);
        if (in) ed_replace_all_uses(body, p, in);
    }
}

/* Renumber the body: input leaves first (index, carried, captured), the rest in their
 * creation order, hoisted params dropped. Leaves have no inputs, so this stays
 * topological. */
static bool reorder_body(ed_loop_builder *b)
{
    ed_graph *body = b->body;
    ed_node **nodes = malloc((size_t)(body->nnodes ? body->nnodes : 1) * sizeof *nodes);
    if (!nodes) return false;
    int k = 0;
    nodes[k++] = b->index;
    for (int i = 0; i < b->ncarried; i++) nodes[k++] = b->carried[i].inner;
    for (int i = 0; i < b->ncaptured; i++) nodes[k++] = b->captured[i].inner;
    for (int i = 0; i < body->nnodes; i++) {
        ed_node *n = body->nodes[i];
        if (n->op != ED_OP_INPUT && n->op != ED_OP_PARAM && n->op != ED_OP_STATE) nodes[k++] = n;
        else if (n->op == ED_OP_INPUT) {
            bool ours = n == b->index;
            for (int j = 0; j < b->ncarried; j++) ours |= n == b->carried[j].inner;
            for (int j = 0; j < b->ncaptured; j++) ours |= n == b->captured[j].inner;
            if (!ours) nodes[k++] = n; /* a stray input: the verifier names it */
        }
    }
    for (int i = 0; i < k; i++) {
        nodes[i]->id = i;
        body->nodes[i] = nodes[i];
    }
    body->nnodes = k;
    free(nodes);
    return true;
}

static void free_builder(ed_loop_builder *b, bool free_body)
{
    if (free_body) ed_graph_free(b->body);
    free(b->carried);
    free(b->captured);
    free(b);
}

/* Bind next values and stacked outputs as the body's outs; false on a NULL or foreign node. */
static bool bind_outputs(ed_loop_builder *b, ed_node *const *next, int n, ed_node *const *stacked, int m)
{
    ed_graph *body = b->body;
    for (int k = 0; k < n + m; k++) {
        ed_node *v = k < n ? next[k] : stacked[k - n];
        const char *what = k < n ? "next value" : "stacked output";
        int j = k < n ? k : k - n;
        if (!v) {
            if (!body->failed) ed_graph_fail(b->outer, "ed_loop_end: %s %d is NULL", what, j);
            return false;
        }
        if (v->graph != body) {
            ed_graph_fail(b->outer, "ed_loop_end: %s %d (%%%d) is not a node of the loop body", what, j, v->id);
            return false;
        }
        char name[32];
        snprintf(name, sizeof name, k < n ? "next%d" : "y%d", j);
        ed_output(body, name, v);
    }
    return !body->failed;
}

ed_node *ed_loop_end(ed_loop_builder *b, ed_node *const *next, int n, ed_node *const *stacked, int m)
{
    if (!b) return NULL;
    ed_graph *outer = b->outer, *body = b->body;
    if (!outer->failed && (n != b->ncarried || m < 0 || (n > 0 && !next) || (m > 0 && !stacked)))
        ed_graph_fail(outer, "ed_loop_end: %d next values for %d carried values (and %d stacked outputs%s)", n,
                      b->ncarried, m, (n > 0 && !next) || (m > 0 && !stacked) ? ", NULL array" : "");
    if (!outer->failed && bind_outputs(b, next, n, stacked, m)) hoist_stored_leaves(b);
    if (!outer->failed && body->failed) ed_graph_fail(outer, "loop body: %s", body->error);
    if (!outer->failed && !reorder_body(b)) ed_graph_fail(outer, "loop: out of memory");
    if (outer->failed || ed_graph_adopt(outer, body) != ED_OK) {
        free_builder(b, true);
        return NULL;
    }
    int nin = b->ncarried + b->ncaptured;
    ed_node **in = malloc((size_t)(nin ? nin : 1) * sizeof *in);
    ed_node *loop = NULL;
    if (!in) ed_graph_fail(outer, "loop: out of memory");
    else {
        for (int i = 0; i < b->ncarried; i++) in[i] = b->carried[i].outer;
        for (int i = 0; i < b->ncaptured; i++) in[b->ncarried + i] = b->captured[i].outer;
        ed_attrs a = {.body = body, .trips = b->trips, .ncarried = b->ncarried};
        loop = ed_node_new(outer, ED_OP_LOOP, in, nin, &a);
    }
    free(in);
    free_builder(b, false); /* the body is the outer graph's now */
    return loop;
}

ed_node *ed_loop_result(ed_node *loop, int k)
{
    if (!loop) return NULL;
    return ed_node_new(loop->graph, ED_OP_GET, &loop, 1, &(ed_attrs){.index = k});
}
