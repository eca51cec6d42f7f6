/* The `plan` pass: a topological order that keeps the peak of live memory low, made
 * the graph's creation order (so every later topological walk, the backends' included,
 * follows it). The arena itself is laid out by the backend along this order
 * (backend/arena.h).
 *
 * Cost model: a computed value takes its bytes (rounded up to 64) from the node that
 * writes it to its last reader; inputs, params and state are bound by pointer and cost
 * nothing here; consts live for the whole program and values bound to out or update
 * to the end of the call, so no order changes their cost.
 *
 * Heuristic: list scheduling. Among the ready nodes take the one that frees the most
 * bytes net of what it allocates; ties go to the earlier node of the current order,
 * so chains stay together and an order that is already good stays as it is. The new
 * order is kept only if its peak is lower than the current one's. */
#include "passes/pass.h"
#include "runtime/error.h"

#include <stdlib.h>

static bool bound_leaf(const ed_node *n)
{
    return n->op == ED_OP_INPUT || n->op == ED_OP_PARAM || n->op == ED_OP_STATE;
}

/* Bytes of n's value as the schedule counts them (0 for what no order changes). */
static int64_t cost(const ed_node *n, const bool *pinned)
{
    if (bound_leaf(n) || n->op == ED_OP_CONST || pinned[n->id]) return 0;
    int64_t numel = ed_shape_numel(n->shape);
    if (numel < 0) return 0;
    return (numel * (int64_t)ed_dtype_size(n->dtype) + 63) / 64 * 64;
}

typedef struct {
    int n;
    bool *pinned; /* by id: bound to out or update */
    int *uses;    /* by id: reads of the value not yet scheduled */
    int *pending; /* by id: inputs (per use) not yet scheduled */
    int *rank;    /* by id: position in the current order (tie-break) */
    ed_uses *users;
} sched;

static void sched_free(sched *s)
{
    free(s->pinned), free(s->uses), free(s->pending), free(s->rank);
    ed_uses_free(s->users);
}

static int sched_init(const ed_graph *g, ed_node *const *order, sched *s)
{
    int n = g->nnodes;
    *s = (sched){.n = n};
    s->pinned = calloc((size_t)n + 1, sizeof *s->pinned);
    s->uses = calloc((size_t)n + 1, sizeof *s->uses);
    s->pending = calloc((size_t)n + 1, sizeof *s->pending);
    s->rank = calloc((size_t)n + 1, sizeof *s->rank);
    s->users = ed_uses_build(g);
    if (!s->pinned || !s->uses || !s->pending || !s->rank || !s->users) return ed_fail("plan: out of memory");
    for (int i = 0; i < g->noutputs; i++) s->pinned[g->outputs[i].node->id] = true;
    for (int i = 0; i < g->nupdates; i++) s->pinned[g->updates[i].node->id] = true;
    for (int i = 0; i < n; i++) {
        const ed_node *v = order[i];
        s->rank[v->id] = i;
        s->pending[v->id] = v->nin;
        s->uses[v->id] = ed_use_count(s->users, v);
    }
    return ED_OK;
}

/* Bytes scheduling v frees: inputs whose every remaining read is v's. */
static int64_t frees(const sched *s, const ed_node *v)
{
    int64_t f = 0;
    for (int k = 0; k < v->nin; k++) {
        const ed_node *x = v->in[k];
        int here = 0;
        bool first = true;
        for (int j = 0; j < v->nin; j++) {
            if (v->in[j] != x) continue;
            if (j < k) first = false;
            here++;
        }
        if (first && here == s->uses[x->id]) f += cost(x, s->pinned);
    }
    return f;
}

int64_t ed_plan_peak(const ed_graph *g, ed_node *const *order)
{
    sched s;
    int64_t live = 0, most = 0;
    if (sched_init(g, order, &s) != ED_OK) {
        sched_free(&s);
        return -1;
    }
    for (int i = 0; i < g->nnodes; i++) {
        const ed_node *v = order[i];
        live += cost(v, s.pinned);
        if (live > most) most = live;
        live -= frees(&s, v);
        for (int k = 0; k < v->nin; k++) s.uses[v->in[k]->id]--;
        if (ed_use_count(s.users, v) == 0) live -= cost(v, s.pinned); /* never read */
    }
    sched_free(&s);
    return most;
}

/* The greedy order into out (nnodes entries). */
static int greedy(const ed_graph *g, sched *s, ed_node **out)
{
    int n = g->nnodes, nready = 0, count = 0;
    ed_node **ready = malloc(((size_t)n + 1) * sizeof *ready);
    if (!ready) return ed_fail("plan: out of memory");
    for (int i = 0; i < n; i++)
        if (s->pending[i] == 0) ready[nready++] = g->nodes[i];
    while (nready) {
        int best = 0;
        int64_t best_score = 0;
        for (int r = 0; r < nready; r++) {
            int64_t score = frees(s, ready[r]) - cost(ready[r], s->pinned);
            if (r == 0 || score > best_score ||
                (score == best_score && s->rank[ready[r]->id] < s->rank[ready[best]->id]))
                best = r, best_score = score;
        }
        ed_node *v = ready[best];
        ready[best] = ready[--nready];
        out[count++] = v;
        for (int k = 0; k < v->nin; k++) s->uses[v->in[k]->id]--;
        const ed_uses *u = s->users;
        for (int k = u->start[v->id]; k < u->start[v->id + 1]; k++)
            if (--s->pending[u->list[k]->id] == 0) ready[nready++] = u->list[k];
    }
    free(ready);
    if (count != n) return ed_fail("plan: graph @%s has a cycle", g->name);
    return ED_OK;
}

ed_node **ed_plan_order(const ed_graph *g)
{
    ed_node **cur = ed_graph_topo(g);
    ed_node **next = malloc(((size_t)g->nnodes + 1) * sizeof *next);
    sched s;
    int rc = cur && next ? sched_init(g, cur, &s) : ed_fail("plan: out of memory");
    if (cur && next) {
        if (rc == ED_OK) rc = greedy(g, &s, next);
        sched_free(&s);
    }
    if (rc != ED_OK) {
        free(cur), free(next);
        return NULL;
    }
    int64_t before = ed_plan_peak(g, cur), after = ed_plan_peak(g, next);
    if (before < 0 || after < 0 || after >= before) {
        free(next);
        return cur;
    }
    free(cur);
    return next;
}

/* Schedule g and the bodies of its fused nodes; loop bodies are the pass manager's
 * (it runs every pass on them). rewrites counts nodes that moved. */
static int plan_graph(ed_graph *g, ed_pass_stats *st)
{
    for (int i = 0; i < g->nnodes; i++) {
        const ed_node *n = g->nodes[i];
        if (n->attr.body && n->op != ED_OP_LOOP && plan_graph(n->attr.body, st) != ED_OK) return ED_ERR;
    }
    ed_node **order = ed_plan_order(g);
    if (!order) return ED_ERR;
    for (int i = 0; i < g->nnodes; i++)
        if (order[i]->id != i) st->rewrites++;
    int rc = ed_graph_reorder(g, order);
    free(order);
    return rc;
}

int ed_pass_plan(ed_graph *g, ed_pass_stats *st) { return plan_graph(g, st); }
