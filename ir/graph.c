/* Graph storage: the op table instance, node creation with sticky errors, names,
 * scopes, outputs and updates, graph-owned memory. */
#include "ir/ir.h"
#include "runtime/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const ed_op_info ed_ops[ED_OP_COUNT] = {
#define OP(id, name, min_in, max_in, kind, rule, flags, attrs) \
    [ED_OP_##id] = {name, min_in, max_in, ED_KIND_##kind, ED_RULE_##rule, flags, attrs},
#include "ir/ops.def"
#undef OP
};

const char *ed_op_name(ed_op op) { return (unsigned)op < ED_OP_COUNT ? ed_ops[op].name : "?"; }

bool ed_op_lookup(const char *name, ed_op *out)
{
    for (int i = 0; i < ED_OP_COUNT; i++) {
        if (strcmp(ed_ops[i].name, name) == 0) {
            *out = (ed_op)i;
            return true;
        }
    }
    return false;
}

static bool grow(void **items, int *cap, int need, size_t item_size);

/* ---- graph-owned memory: a list of chunks, freed together ---------------- */

typedef struct ed_chunk {
    struct ed_chunk *next;
    size_t used, size;
    _Alignas(16) unsigned char data[];
} ed_chunk;

void *ed_graph_alloc(ed_graph *g, size_t bytes)
{
    bytes = (bytes + 15) & ~(size_t)15;
    ed_chunk *c = g->chunks;
    if (!c || c->size - c->used < bytes) {
        size_t size = bytes > 65536 ? bytes : 65536;
        c = malloc(sizeof *c + size);
        if (!c) return NULL;
        c->size = size;
        c->used = 0;
        c->next = g->chunks;
        g->chunks = c;
    }
    void *p = c->data + c->used;
    c->used += bytes;
    memset(p, 0, bytes);
    return p;
}

char *ed_graph_strdup(ed_graph *g, const char *s)
{
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *p = ed_graph_alloc(g, n);
    if (p) memcpy(p, s, n);
    return p;
}

static char *heap_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

ed_graph *ed_graph_new(const char *name)
{
    ed_graph *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->name = heap_strdup(name ? name : "main");
    g->scope = heap_strdup("");
    g->next_stream = 1;
    if (!g->name || !g->scope) {
        ed_graph_free(g);
        return NULL;
    }
    return g;
}

void ed_graph_free(ed_graph *g)
{
    if (!g) return;
    for (ed_chunk *c = g->chunks, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    for (int i = 0; i < g->nsubs; i++) ed_graph_free(g->subs[i]);
    free(g->subs);
    free(g->nodes);
    free(g->outputs);
    free(g->updates);
    free(g->name);
    free(g->scope);
    free(g);
}

int ed_graph_adopt(ed_graph *g, ed_graph *sub)
{
    if (!g || !sub) return ED_ERR;
    /* A loop builder sets the parent while the body is built (for better messages). */
    bool ancestor = false;
    for (const ed_graph *a = g; a; a = a->parent) ancestor |= a == sub;
    for (int i = 0; i < g->nsubs; i++) ancestor |= g->subs[i] == sub;
    if (ancestor || (sub->parent && sub->parent != g)) {
        ed_graph_fail(g, "graph @%s already belongs to a graph (or contains @%s)", sub->name, g->name);
        return ED_ERR;
    }
    if (!grow((void **)&g->subs, &g->subcap, g->nsubs + 1, sizeof *g->subs)) {
        ed_graph_fail(g, "out of memory");
        return ED_ERR;
    }
    g->subs[g->nsubs++] = sub;
    sub->parent = g;
    return ED_OK;
}

/* ---- errors --------------------------------------------------------------- */

const char *ed_graph_error(const ed_graph *g)
{
    if (!g) return "no graph (NULL)";
    return g->failed ? g->error : NULL;
}

ed_node *ed_graph_fail(ed_graph *g, const char *fmt, ...)
{
    if (!g || g->failed) return NULL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->error, sizeof g->error, fmt, ap);
    va_end(ap);
    g->failed = true;
    return NULL;
}

char *ed_node_type_str(const ed_node *n, char *buf, size_t size) { return ed_type_str(n->dtype, n->shape, buf, size); }

/* ---- nodes ---------------------------------------------------------------- */

static bool grow(void **items, int *cap, int need, size_t item_size)
{
    if (need <= *cap) return true;
    int ncap = *cap ? *cap * 2 : 64;
    while (ncap < need) ncap *= 2;
    void *p = realloc(*items, (size_t)ncap * item_size);
    if (!p) return false;
    *items = p;
    *cap = ncap;
    return true;
}

/* The graph the inputs live on; records an error for NULL or foreign inputs. */
static ed_graph *inputs_graph(ed_graph *g, ed_op op, ed_node *const *in, int nin)
{
    for (int i = 0; i < nin; i++) {
        if (!in[i]) {
            /* A NULL input is either propagation of an earlier error or a user bug. */
            if (g && !g->failed) ed_graph_fail(g, "%s: input %d is NULL", ed_op_name(op), i + 1);
            return NULL;
        }
        if (in[i]->graph != g) {
            ed_graph_fail(g, "%s: input %d (%%%d) belongs to graph @%s, not @%s%s", ed_op_name(op), i + 1, in[i]->id,
                          in[i]->graph->name, g->name,
                          g->parent ? " (use ed_loop_capture to bring an outer value into a loop body)" : "");
            return NULL;
        }
        if ((ed_ops[in[i]->op].flags & F_TUPLE) && op != ED_OP_GET) {
            ed_graph_fail(g, "%s: input %d (%%%d) is a %s, whose results are read with get (ed_loop_result)",
                          ed_op_name(op), i + 1, in[i]->id, ed_op_name(in[i]->op));
            return NULL;
        }
    }
    return g;
}

static void fail_with_context(ed_graph *g, ed_op op, const char *msg)
{
    if (g->scope[0]) ed_graph_fail(g, "%s: %s (at %%%d in \"%s\")", ed_op_name(op), msg, g->nnodes, g->scope);
    else ed_graph_fail(g, "%s: %s (at %%%d)", ed_op_name(op), msg, g->nnodes);
}

/* Copy the pointer-valued attributes into graph memory. */
static bool own_attrs(ed_graph *g, ed_attrs *a)
{
    if (a->name && !(a->name = ed_graph_strdup(g, a->name))) return false;
    if (a->data && a->ndata > 0) {
        double *d = ed_graph_alloc(g, (size_t)a->ndata * sizeof *d);
        if (!d) return false;
        memcpy(d, a->data, (size_t)a->ndata * sizeof *d);
        a->data = d;
    }
    return true;
}

ed_node *ed_node_new(ed_graph *g, ed_op op, ed_node *const *in, int nin, const ed_attrs *attrs)
{
    if (!g) {
        /* Leaves pass their graph; other ops find it from the first non-NULL input. */
        for (int i = 0; i < nin && !g; i++)
            if (in[i]) g = in[i]->graph;
        if (!g) return NULL;
    }
    if (g->failed) return NULL; /* sticky: nothing more is built after the first error */
    if ((unsigned)op >= ED_OP_COUNT) return ed_graph_fail(g, "unknown op number %d", (int)op);
    const ed_op_info *info = &ed_ops[op];
    if (nin < info->min_inputs || (info->max_inputs >= 0 && nin > info->max_inputs)) {
        char msg[128];
        snprintf(msg, sizeof msg, "takes %d%s inputs, got %d", info->min_inputs, info->max_inputs < 0 ? " or more" : "",
                 nin);
        if (info->max_inputs > info->min_inputs)
            snprintf(msg, sizeof msg, "takes %d to %d inputs, got %d", info->min_inputs, info->max_inputs, nin);
        fail_with_context(g, op, msg);
        return NULL;
    }
    if (!inputs_graph(g, op, in, nin)) return NULL;

    ed_attrs a = attrs ? *attrs : (ed_attrs){0};
    if (info->attrs & A_NAME) {
        /* One leaf per name: the same name again is the same leaf (weight sharing). */
        if (!a.name || !a.name[0]) {
            fail_with_context(g, op, "needs a non-empty name");
            return NULL;
        }
        ed_node *old = ed_graph_leaf(g, op, a.name);
        if (old) {
            if (old->dtype == a.dtype && ed_shape_eq(old->shape, a.shape)) return old;
            char t1[96], t2[96], msg[256];
            snprintf(msg, sizeof msg, "\"%s\" already exists as %s, now asked for as %s", a.name,
                     ed_node_type_str(old, t1, sizeof t1), ed_type_str(a.dtype, a.shape, t2, sizeof t2));
            fail_with_context(g, op, msg);
            return NULL;
        }
    }
    ed_dtype dt;
    ed_shape shape;
    char msg[768];
    if (!ed_infer(op, in, nin, &a, &dt, &shape, msg, sizeof msg)) {
        fail_with_context(g, op, msg);
        return NULL;
    }
    if (info->attrs & A_STREAM && a.stream == 0) a.stream = g->next_stream++;
    else if (info->attrs & A_STREAM && a.stream >= g->next_stream) g->next_stream = a.stream + 1;

    if (!grow((void **)&g->nodes, &g->cap, g->nnodes + 1, sizeof *g->nodes)) return ed_graph_fail(g, "out of memory");
    ed_node *n = ed_graph_alloc(g, sizeof *n);
    ed_node **ins = nin ? ed_graph_alloc(g, (size_t)nin * sizeof *ins) : NULL;
    if (!n || (nin && !ins) || !own_attrs(g, &a)) return ed_graph_fail(g, "out of memory");
    if (nin) memcpy(ins, in, (size_t)nin * sizeof *ins);
    n->graph = g;
    n->id = g->nnodes;
    n->op = op;
    n->dtype = dt;
    n->shape = shape;
    n->nin = nin;
    n->in = ins;
    a.dtype = dt;
    a.shape = shape;
    n->attr = a;
    n->name = a.name;
    g->nodes[g->nnodes++] = n;
    return n;
}

ed_node *ed_set_name(ed_node *n, const char *name)
{
    if (!n || !name) return n;
    if (ed_ops[n->op].kind == ED_KIND_LEAF && n->op != ED_OP_CONST) return n; /* binding name */
    char *s = ed_graph_strdup(n->graph, name);
    if (s) n->name = s;
    return n;
}

/* ---- scopes ---------------------------------------------------------------- */

void ed_scope_push(ed_graph *g, const char *name)
{
    if (!g || !name) return;
    if (g->scope_depth == (int)(sizeof g->scope_len / sizeof g->scope_len[0])) {
        ed_graph_fail(g, "scope \"%s\": scopes nested too deeply", name);
        return;
    }
    size_t old = strlen(g->scope), add = strlen(name);
    char *s = realloc(g->scope, old + add + 2);
    if (!s) {
        ed_graph_fail(g, "out of memory");
        return;
    }
    g->scope_len[g->scope_depth++] = old;
    if (old) s[old++] = '.';
    memcpy(s + old, name, add + 1);
    g->scope = s;
}

void ed_scope_pop(ed_graph *g)
{
    if (!g || g->scope_depth == 0) return;
    g->scope[g->scope_len[--g->scope_depth]] = '\0';
}

const char *ed_scope(const ed_graph *g) { return g ? g->scope : ""; }

void ed_graph_set_training(ed_graph *g, bool training)
{
    if (g) g->eval_mode = !training;
}

bool ed_graph_training(const ed_graph *g) { return g && !g->eval_mode; }

bool ed_graph_set_weight_dtype(ed_graph *g, ed_dtype dt)
{
    if (!g || (dt != ED_F32 && !ed_dtype_is_16bit(dt))) return false;
    g->weight_dtype = dt;
    return true;
}

ed_dtype ed_graph_weight_dtype(const ed_graph *g) { return g ? g->weight_dtype : ED_F32; }

/* ---- outputs and updates ------------------------------------------------- */

static void bind(ed_graph *g, ed_binding **list, int *n, int *cap, const char *name, ed_node *v, const char *what)
{
    if (!g || !v) return;
    if (v->graph != g) {
        ed_graph_fail(g, "%s \"%s\": node %%%d belongs to another graph", what, name, v->id);
        return;
    }
    if (ed_ops[v->op].flags & F_TUPLE) {
        ed_graph_fail(g, "%s \"%s\": %%%d is a %s; bind one of its results (get)", what, name, v->id,
                      ed_op_name(v->op));
        return;
    }
    if (!name || !name[0]) {
        ed_graph_fail(g, "%s: empty name", what);
        return;
    }
    for (int i = 0; i < *n; i++) {
        if (strcmp((*list)[i].name, name) == 0) {
            ed_graph_fail(g, "%s \"%s\" is bound twice", what, name);
            return;
        }
    }
    if (!grow((void **)list, cap, *n + 1, sizeof **list)) {
        ed_graph_fail(g, "out of memory");
        return;
    }
    (*list)[*n].name = ed_graph_strdup(g, name);
    (*list)[*n].node = v;
    (*n)++;
}

void ed_output(ed_graph *g, const char *name, ed_node *v)
{
    bind(g, &g->outputs, &g->noutputs, &g->outcap, name, v, "out");
}

void ed_update(ed_graph *g, const char *name, ed_node *v)
{
    if (!g || !v) return;
    ed_node *target = ed_graph_leaf(g, ED_OP_PARAM, name);
    if (!target) target = ed_graph_leaf(g, ED_OP_STATE, name);
    if (!target) {
        ed_graph_fail(g, "update \"%s\": no param or state of that name in @%s", name, g->name);
        return;
    }
    if (target->dtype != v->dtype || !ed_shape_eq(target->shape, v->shape)) {
        char a[96], b[96];
        ed_graph_fail(g, "update \"%s\": new value is %s but the %s is %s", name, ed_node_type_str(v, a, sizeof a),
                      ed_op_name(target->op), ed_node_type_str(target, b, sizeof b));
        return;
    }
    bind(g, &g->updates, &g->nupdates, &g->updcap, name, v, "update");
}

ed_node *ed_graph_output(const ed_graph *g, const char *name)
{
    for (int i = 0; g && i < g->noutputs; i++)
        if (strcmp(g->outputs[i].name, name) == 0) return g->outputs[i].node;
    return NULL;
}

ed_node *ed_graph_update(const ed_graph *g, const char *name)
{
    for (int i = 0; g && i < g->nupdates; i++)
        if (strcmp(g->updates[i].name, name) == 0) return g->updates[i].node;
    return NULL;
}

ed_node *ed_graph_leaf(const ed_graph *g, ed_op op, const char *name)
{
    for (int i = 0; g && name && i < g->nnodes; i++) {
        ed_node *n = g->nodes[i];
        if (n->op == op && n->attr.name && strcmp(n->attr.name, name) == 0) return n;
    }
    return NULL;
}
