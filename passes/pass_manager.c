/* The pass manager: the table of named passes, pipeline strings, and what happens
 * around every pass (sweeping what it left dead, verification, stats, printing). */
#include "passes/pass.h"
#include "ir/text.h"
#include "runtime/error.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The built-in passes, in the order --help lists them. Add a row for a new pass. */
static const ed_pass builtin[] = {
    {"simplify", ed_pass_simplify,
     "algebraic identities, reshape/transpose chains, transposes into matmul flags, broadcasts into consumers"},
    {"fold", ed_pass_fold, "evaluate nodes whose inputs are all constants (interpreter kernels, size-limited)"},
    {"cse", ed_pass_cse, "merge nodes with the same op, inputs, attributes and type"},
    {"hoist", ed_pass_hoist, "move loop-invariant body nodes out of their loop (computed once, captured)"},
    {"dce", ed_pass_dce, "remove nodes no output or update depends on"},
    {"fuse", ed_pass_fuse, "elementwise chains (broadcasts, splat consts) into one fused kernel each; after autodiff"},
    {"plan", ed_pass_plan, "reorder nodes so that fewer bytes are alive at once (the arena follows this order)"},
};
enum { NBUILTIN = sizeof builtin / sizeof builtin[0], MAX_REGISTERED = 32 };

static ed_pass registered[MAX_REGISTERED];
static int nregistered;

int ed_pass_count(void) { return NBUILTIN + nregistered; }

const ed_pass *ed_pass_at(int i)
{
    if (i < 0 || i >= ed_pass_count()) return NULL;
    return i < NBUILTIN ? &builtin[i] : &registered[i - NBUILTIN];
}

const ed_pass *ed_pass_find(const char *name)
{
    for (int i = 0; name && i < ed_pass_count(); i++)
        if (strcmp(ed_pass_at(i)->name, name) == 0) return ed_pass_at(i);
    return NULL;
}

int ed_pass_register(const ed_pass *p)
{
    if (!p || !p->name || !p->name[0] || !p->run) return ed_fail("pass register: a pass needs a name and a function");
    for (const char *c = p->name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || *c == '_'))
            return ed_fail("pass register: name '%s' must be made of a-z and _", p->name);
    if (ed_pass_find(p->name)) return ed_fail("pass register: a pass named '%s' exists already", p->name);
    if (nregistered == MAX_REGISTERED) return ed_fail("pass register: table full (%d passes)", MAX_REGISTERED);
    registered[nregistered++] = *p;
    return ED_OK;
}

/* ---- pipeline strings ------------------------------------------------------------ */

enum { MAX_PIPELINE = 64, MAX_NAME = 64 };

static void known_list(char *buf, size_t size)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < ed_pass_count() && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s%s", i ? ", " : "", ed_pass_at(i)->name);
}

/* Split "a, b,c" into passes; what names the string in messages ("pipeline",
 * "print-after"). */
static int parse_list(const char *s, const char *what, const ed_pass **out, int *n)
{
    *n = 0;
    const char *p = s;
    while (*p == ' ') p++;
    if (!*p) return ED_OK;
    for (;;) {
        while (*p == ' ') p++;
        const char *start = p;
        while (*p && *p != ',' && *p != ' ') p++;
        size_t len = (size_t)(p - start);
        while (*p == ' ') p++;
        if (*p && *p != ',') return ed_fail("passes: bad %s '%s': names are separated by commas", what, s);
        if (len == 0) return ed_fail("passes: empty pass name in %s '%s'", what, s);
        char name[MAX_NAME];
        if (len >= sizeof name) return ed_fail("passes: pass name too long in %s '%s'", what, s);
        memcpy(name, start, len);
        name[len] = '\0';
        const ed_pass *pass = ed_pass_find(name);
        if (!pass) {
            char known[512];
            known_list(known, sizeof known);
            return ed_fail("passes: unknown pass '%s' in %s '%s' (known: %s)", name, what, s, known);
        }
        if (*n == MAX_PIPELINE) return ed_fail("passes: more than %d passes in %s", MAX_PIPELINE, what);
        out[(*n)++] = pass;
        if (!*p) return ED_OK;
        p++; /* the comma */
    }
}

int ed_pipeline_check(const char *pipeline)
{
    const ed_pass *list[MAX_PIPELINE];
    int n;
    return parse_list(pipeline ? pipeline : ED_DEFAULT_PIPELINE, "pipeline", list, &n);
}

/* ---- running --------------------------------------------------------------------- */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static bool verify_on(ed_pass_verify v)
{
    if (v == ED_VERIFY_ON) return true;
    if (v == ED_VERIFY_OFF) return false;
    const char *env = getenv("EDIFICE_VERIFY_PASSES");
    if (env && env[0]) return strcmp(env, "0") != 0;
#ifdef NDEBUG
    return false;
#else
    return true;
#endif
}

/* Remove what the pass left dead: nodes live before it and dead now, and new nodes
 * that nothing uses. Dead code from before stays (dce removes it), except where it
 * reads a removed node. */
static int sweep(ed_graph *g, const bool *live_before, int nbefore)
{
    bool *live = calloc((size_t)g->nnodes + 1, sizeof *live);
    bool *dead = calloc((size_t)g->nnodes + 1, sizeof *dead);
    if (!live || !dead) {
        free(live), free(dead);
        return ed_fail("passes: out of memory");
    }
    ed_node **order = ed_graph_topo(g);
    if (!order) {
        free(live), free(dead);
        return ED_ERR;
    }
    ed_pass_live(g, live);
    bool any = false;
    for (int i = 0; i < g->nnodes; i++) {
        /* old dead code reading a removed node goes with it */
        const ed_node *n = order[i];
        bool d = !live[n->id] && (n->id >= nbefore || live_before[n->id]);
        for (int k = 0; k < n->nin && !d && !live[n->id]; k++) d = dead[n->in[k]->id];
        dead[n->id] = d;
        any |= d;
    }
    int rc = any ? ed_graph_remove_nodes(g, dead) : ED_OK;
    free(live), free(dead), free(order);
    return rc;
}

static bool in_list(const ed_pass *const *list, int n, const ed_pass *p)
{
    for (int i = 0; i < n; i++)
        if (list[i] == p) return true;
    return false;
}

static int print_graph(const ed_graph *g, const char *pass, FILE *f)
{
    fprintf(f, "# after %s\n", pass);
    return ed_graph_write(g, f);
}

/* A loop body's interface: its input leaves in order (index, carried, captured) and
 * the types of its out bindings. Passes keep leaves (never removed or merged) and
 * types, so the manager checks that they did. */
typedef struct {
    int ninputs, noutputs;
    ed_node **inputs;
    ed_dtype *dtype;
    ed_shape *shape;
} body_interface;

static void interface_free(body_interface *bi)
{
    free(bi->inputs), free(bi->dtype), free(bi->shape);
    *bi = (body_interface){0};
}

static int interface_take(const ed_graph *body, body_interface *bi)
{
    *bi = (body_interface){.ninputs = ed_loop_body_ninputs(body), .noutputs = body->noutputs};
    bi->inputs = calloc((size_t)bi->ninputs + 1, sizeof *bi->inputs);
    bi->dtype = calloc((size_t)bi->noutputs + 1, sizeof *bi->dtype);
    bi->shape = calloc((size_t)bi->noutputs + 1, sizeof *bi->shape);
    if (!bi->inputs || !bi->dtype || !bi->shape) return ed_fail("passes: out of memory");
    for (int k = 0; k < bi->ninputs; k++) bi->inputs[k] = ed_loop_body_input(body, k);
    for (int k = 0; k < bi->noutputs; k++) {
        bi->dtype[k] = body->outputs[k].node->dtype;
        bi->shape[k] = body->outputs[k].node->shape;
    }
    return ED_OK;
}

static int interface_check(const ed_graph *body, const body_interface *bi, const char *pass)
{
    bool same = ed_loop_body_ninputs(body) == bi->ninputs && body->noutputs == bi->noutputs;
    for (int k = 0; same && k < bi->ninputs; k++) same = ed_loop_body_input(body, k) == bi->inputs[k];
    for (int k = 0; same && k < bi->noutputs; k++)
        same = body->outputs[k].node->dtype == bi->dtype[k] && ed_shape_eq(body->outputs[k].node->shape, bi->shape[k]);
    return same ? ED_OK : ed_fail("passes: pass %s changed the inputs or outputs of loop body @%s", pass, body->name);
}

static int run_one(ed_graph *g, const ed_pass *pass, bool verify, ed_pass_stats *st);

/* Run pass on the body of every loop of g (their loops' bodies first), as if each
 * body were a graph of its own; their rewrites count towards st. */
static int run_bodies(ed_graph *g, const ed_pass *pass, bool verify, ed_pass_stats *st)
{
    for (int i = 0; i < g->nnodes; i++) {
        ed_node *n = g->nodes[i];
        if (n->op != ED_OP_LOOP || !n->attr.body) continue;
        body_interface bi;
        ed_pass_stats inner;
        int rc = interface_take(n->attr.body, &bi);
        if (rc == ED_OK) rc = run_one(n->attr.body, pass, verify, &inner);
        if (rc == ED_OK) rc = interface_check(n->attr.body, &bi, pass->name);
        interface_free(&bi);
        if (rc != ED_OK) return ED_ERR;
        st->rewrites += inner.rewrites;
    }
    return ED_OK;
}

/* Nodes of g and of its loops' bodies, nested ones included. */
static int count_nodes(const ed_graph *g)
{
    int n = g->nnodes;
    for (int i = 0; i < g->nnodes; i++)
        if (g->nodes[i]->op == ED_OP_LOOP && g->nodes[i]->attr.body) n += count_nodes(g->nodes[i]->attr.body);
    return n;
}

static int run_one(ed_graph *g, const ed_pass *pass, bool verify, ed_pass_stats *st)
{
    *st = (ed_pass_stats){.name = pass->name};
    double t0 = now_ms();
    int total_before = count_nodes(g);
    st->body_nodes_before = total_before - g->nnodes;
    if (run_bodies(g, pass, verify, st) != ED_OK) return ED_ERR;
    int nbefore = g->nnodes;
    bool *live_before = calloc((size_t)nbefore + 1, sizeof *live_before);
    if (!live_before) return ed_fail("passes: out of memory");
    ed_pass_live(g, live_before);
    int rc = pass->run(g, st);
    if (rc == ED_OK && ed_graph_error(g)) rc = ed_fail("pass %s: %s", pass->name, ed_graph_error(g));
    if (rc == ED_OK) rc = sweep(g, live_before, nbefore);
    st->ms = now_ms() - t0;
    st->nodes_before = total_before;
    st->nodes_after = count_nodes(g);
    st->body_nodes_after = st->nodes_after - g->nnodes;
    free(live_before);
    if (rc != ED_OK) return ED_ERR;
    if (verify && ed_graph_verify(g) != ED_OK) {
        char msg[ED_ERROR_MAX];
        snprintf(msg, sizeof msg, "%s", ed_last_error());
        return ed_fail("passes: the graph does not verify after pass %s: %s", pass->name, msg);
    }
    return ED_OK;
}

int ed_pass_run(ed_graph *g, const char *pipeline, ed_pass_opts *opts)
{
    ed_pass_opts none = {0};
    ed_pass_opts *o = opts ? opts : &none;
    o->nstats = 0;
    if (!g) return ed_fail("passes: no graph (NULL)");
    if (ed_graph_error(g)) return ed_fail("passes: graph @%s has an error: %s", g->name, ed_graph_error(g));
    const ed_pass *list[MAX_PIPELINE], *printed[MAX_PIPELINE];
    int n = 0, nprinted = 0;
    if (parse_list(pipeline ? pipeline : ED_DEFAULT_PIPELINE, "pipeline", list, &n) != ED_OK) return ED_ERR;
    if (o->print_after && parse_list(o->print_after, "print-after", printed, &nprinted) != ED_OK) return ED_ERR;
    bool verify = verify_on(o->verify);
    FILE *pf = o->print_to ? o->print_to : stderr;
    for (int i = 0; i < n; i++) {
        ed_pass_stats st;
        if (run_one(g, list[i], verify, &st) != ED_OK) return ED_ERR;
        if (o->stats && o->nstats < o->stats_cap) o->stats[o->nstats++] = st;
        if (o->stats_to) ed_pass_stats_print(&st, o->stats_to);
        if ((o->print_after_all || in_list(printed, nprinted, list[i])) && print_graph(g, list[i]->name, pf) != ED_OK)
            return ED_ERR;
    }
    return ED_OK;
}

int ed_pass_run_one(ed_graph *g, const char *name, ed_pass_stats *st)
{
    if (!g) return ed_fail("passes: no graph (NULL)");
    if (ed_graph_error(g)) return ed_fail("passes: graph @%s has an error: %s", g->name, ed_graph_error(g));
    const ed_pass *pass = ed_pass_find(name);
    if (!pass) {
        char known[512];
        known_list(known, sizeof known);
        return ed_fail("passes: unknown pass '%s' (known: %s)", name ? name : "(NULL)", known);
    }
    ed_pass_stats own;
    return run_one(g, pass, verify_on(ED_VERIFY_DEFAULT), st ? st : &own);
}

void ed_pass_stats_print(const ed_pass_stats *st, FILE *f)
{
    fprintf(f, "pass %s: %.2f ms, %d -> %d nodes", st->name, st->ms, st->nodes_before, st->nodes_after);
    if (st->body_nodes_before || st->body_nodes_after)
        fprintf(f, " (%d -> %d of them in loop bodies)", st->body_nodes_before, st->body_nodes_after);
    fprintf(f, ", %d rewrites\n", st->rewrites);
}
