/* The memory planner (backend/arena.h): liveness along the order, in-place chains,
 * then offsets greedily by size with best fit. */
#include "backend/arena.h"

#include "runtime/error.h"

#include <stdlib.h>

static const int64_t LIMIT = INT64_C(1) << 60;

bool ed_arena_holds(const ed_node *n) { return n->op != ED_OP_INPUT && n->op != ED_OP_PARAM && n->op != ED_OP_STATE; }

static int64_t aligned(int64_t bytes) { return (bytes + ED_ALIGN - 1) / ED_ALIGN * ED_ALIGN; }

static int too_big(const ed_node *n)
{
    char type[96];
    return ed_fail("compile: %s (%%%d) does not fit in the program's memory", ed_node_type_str(n, type, sizeof type),
                   n->id);
}

/* The old layout: each buffer its own slot, in order. Buffers used together stay close. */
static int64_t plan_separate(const ed_graph *g, ed_node *const *order, int64_t *offsets)
{
    int64_t top = 0;
    for (int i = 0; i < g->nnodes; i++) {
        const ed_node *n = order[i];
        if (!ed_arena_holds(n)) continue;
        int64_t bytes = ed_arena_node_bytes(n);
        if (bytes < 0 || bytes > LIMIT - top) return too_big(n);
        offsets[n->id] = top;
        top += aligned(bytes);
    }
    return top;
}

/* A buffer: one node's value, or an in-place chain of them sharing bytes. */
typedef struct {
    int64_t size, off;
    int first, last; /* positions in the order during which it is alive, inclusive */
} buffer;

typedef struct {
    int n;          /* nodes in the order; position n means "after the call" */
    bool *in_store; /* by id: an update written straight into its store tensor */
    int *pos;       /* by id: position in the order */
    int *last;      /* by id: last position reading the value (its own if none) */
    bool *pinned;   /* by id: alive to the end (bound to out or update) */
    int *buf;       /* by id: its buffer, -1 if not held */
    buffer *bufs;
    int nbufs;
} plan;

static void plan_free(plan *p)
{
    free(p->in_store), free(p->pos), free(p->last), free(p->pinned), free(p->buf), free(p->bufs);
}

/* Does the plan give n bytes of the arena? */
static bool held(const plan *p, const ed_node *n) { return ed_arena_holds(n) && !p->in_store[n->id]; }

/* Positions, last reads and the values that must survive the call. */
static int liveness(const ed_graph *g, ed_node *const *order, plan *p)
{
    int n = g->nnodes;
    p->n = n;
    p->pos = calloc((size_t)n + 1, sizeof *p->pos);
    p->last = calloc((size_t)n + 1, sizeof *p->last);
    p->pinned = calloc((size_t)n + 1, sizeof *p->pinned);
    p->buf = calloc((size_t)n + 1, sizeof *p->buf);
    p->bufs = calloc((size_t)n + 1, sizeof *p->bufs);
    p->in_store = calloc((size_t)n + 1, sizeof *p->in_store);
    if (!p->in_store || !p->pos || !p->last || !p->pinned || !p->buf || !p->bufs)
        return ed_fail("compile: out of memory");
    for (int i = 0; i < n; i++) p->pos[order[i]->id] = p->last[order[i]->id] = i;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < order[i]->nin; k++) {
            int x = order[i]->in[k]->id;
            if (i > p->last[x]) p->last[x] = i;
        }
    for (int i = 0; i < g->noutputs; i++) p->pinned[g->outputs[i].node->id] = true;
    for (int i = 0; i < g->nupdates; i++) p->pinned[g->updates[i].node->id] = true;
    return ED_OK;
}

/* The input of n whose buffer n may take over, or -1: n is elementwise (F_INPLACE),
 * and the input is a computed value of n's type that is read for the last time here. */
static int inplace_source(const plan *p, const ed_node *n)
{
    if (!(ed_ops[n->op].flags & F_INPLACE)) return -1;
    if (n->op == ED_OP_FUSED && !ed_fused_inplace_ok(n)) return -1;
    for (int k = 0; k < n->nin; k++) {
        const ed_node *x = n->in[k];
        if (!held(p, x) || x->op == ED_OP_CONST || p->pinned[x->id]) continue;
        if (x->dtype != n->dtype || !ed_shape_eq(x->shape, n->shape)) continue;
        if (p->last[x->id] != p->pos[n->id] || p->buf[x->id] < 0) continue;
        return k;
    }
    return -1;
}

/* One buffer per held node, or per in-place chain; lifetimes from the liveness. */
static int make_buffers(ed_node *const *order, ed_arena_mode mode, plan *p, ed_arena_stats *st)
{
    for (int i = 0; i < p->n; i++) p->buf[order[i]->id] = -1;
    for (int i = 0; i < p->n; i++) {
        const ed_node *n = order[i];
        if (!held(p, n)) continue;
        int64_t bytes = ed_arena_node_bytes(n);
        if (bytes < 0 || bytes > LIMIT) return too_big(n);
        st->buffer_bytes += aligned(bytes);
        st->buffers++;
        int k = mode == ED_ARENA_INPLACE ? inplace_source(p, n) : -1;
        int b;
        if (k >= 0) {
            b = p->buf[n->in[k]->id];
            st->inplace++;
        } else {
            b = p->nbufs++;
            p->bufs[b] = (buffer){.size = aligned(bytes), .first = i, .last = i};
        }
        p->buf[n->id] = b;
        /* Consts, and loops (their slot holds the body's consts), are filled at compile
         * time: their buffers live for the whole program, so no other buffer reuses them. */
        bool filled = n->op == ED_OP_CONST || n->op == ED_OP_LOOP;
        int end = filled || p->pinned[n->id] ? p->n : p->last[n->id];
        if (filled) p->bufs[b].first = 0;
        if (end > p->bufs[b].last) p->bufs[b].last = end;
    }
    return ED_OK;
}

static int by_size(const void *a, const void *b)
{
    const buffer *x = *(buffer *const *)a, *y = *(buffer *const *)b;
    if (x->size != y->size) return x->size > y->size ? -1 : 1;
    return (x->first > y->first) - (x->first < y->first);
}

static int by_offset(const void *a, const void *b)
{
    const buffer *x = *(buffer *const *)a, *y = *(buffer *const *)b;
    return (x->off > y->off) - (x->off < y->off);
}

/* Largest first; each at the smallest gap that fits among the already placed buffers
 * alive at the same time, else above them all. Returns the arena size. */
static int64_t place(plan *p)
{
    buffer **sorted = malloc(((size_t)p->nbufs + 1) * sizeof *sorted);
    buffer **overlap = malloc(((size_t)p->nbufs + 1) * sizeof *overlap);
    if (!sorted || !overlap) {
        free(sorted), free(overlap);
        return ed_fail("compile: out of memory");
    }
    for (int i = 0; i < p->nbufs; i++) sorted[i] = &p->bufs[i];
    qsort(sorted, (size_t)p->nbufs, sizeof *sorted, by_size);
    int64_t top = 0;
    for (int i = 0; i < p->nbufs; i++) {
        buffer *b = sorted[i];
        int no = 0;
        for (int j = 0; j < i; j++)
            if (sorted[j]->first <= b->last && b->first <= sorted[j]->last) overlap[no++] = sorted[j];
        qsort(overlap, (size_t)no, sizeof *overlap, by_offset);
        int64_t cursor = 0, best = -1, best_gap = 0;
        for (int j = 0; j < no; j++) {
            int64_t gap = overlap[j]->off - cursor;
            if (gap >= b->size && (best < 0 || gap < best_gap)) best = cursor, best_gap = gap;
            if (overlap[j]->off + overlap[j]->size > cursor) cursor = overlap[j]->off + overlap[j]->size;
        }
        b->off = best >= 0 ? best : cursor;
        if (b->off + b->size > top) top = b->off + b->size;
    }
    free(sorted), free(overlap);
    return top;
}

/* The most bytes alive at one position: a lower bound for any layout of these buffers. */
static int64_t peak(const plan *p)
{
    int64_t *delta = calloc((size_t)p->n + 2, sizeof *delta);
    if (!delta) return 0;
    for (int i = 0; i < p->nbufs; i++) {
        delta[p->bufs[i].first] += p->bufs[i].size;
        delta[p->bufs[i].last + 1] -= p->bufs[i].size;
    }
    int64_t live = 0, most = 0;
    for (int i = 0; i <= p->n; i++) {
        live += delta[i];
        if (live > most) most = live;
    }
    free(delta);
    return most;
}

/* ---- updates written into the store ------------------------------------------------ */

const ed_node *ed_arena_update_target(const ed_node *u)
{
    const ed_graph *g = u->graph;
    const ed_binding *b = NULL;
    for (int i = 0; i < g->nupdates; i++)
        if (g->updates[i].node == u) {
            if (b) return NULL; /* the value of two updates */
            b = &g->updates[i];
        }
    if (!b) return NULL;
    const ed_node *t = ed_graph_leaf(g, ED_OP_PARAM, b->name); /* as ed_update looks it up */
    return t ? t : ed_graph_leaf(g, ED_OP_STATE, b->name);
}

/* Can update value u be written into its target's store tensor while the call runs? When
 * nothing reads the target's old value after u: every other reader runs before u, the
 * target is neither an output nor another update's value (both read after the call),
 * and u reads it only element by element (an in-place kernel) or not at all. Not a
 * loop, whose slot holds scratch after its results. */
static bool writes_store(const plan *p, const ed_node *u)
{
    const ed_graph *g = u->graph;
    const ed_node *t = ed_arena_holds(u) && u->op != ED_OP_LOOP && u->op != ED_OP_CONST ? ed_arena_update_target(u)
                                                                                        : NULL;
    if (!t || t->dtype != u->dtype || !ed_shape_eq(t->shape, u->shape)) return false;
    for (int i = 0; i < g->noutputs; i++)
        if (g->outputs[i].node == u || g->outputs[i].node == t) return false;
    for (int i = 0; i < g->nupdates; i++)
        if (g->updates[i].node == t) return false;
    bool elementwise = (ed_ops[u->op].flags & F_INPLACE) && (u->op != ED_OP_FUSED || ed_fused_inplace_ok(u));
    for (int i = 0; i < g->nnodes; i++) {
        const ed_node *r = g->nodes[i];
        for (int k = 0; k < r->nin; k++)
            if (r->in[k] == t && (r == u ? !elementwise : p->pos[r->id] > p->pos[u->id])) return false;
    }
    return true;
}

int64_t ed_arena_plan_mode(const ed_graph *g, ed_node *const *order, ed_arena_mode mode, int64_t *offsets,
                           ed_arena_stats *stats)
{
    return ed_arena_plan_program(g, order, mode, false, offsets, stats);
}

int64_t ed_arena_plan_program(const ed_graph *g, ed_node *const *order, ed_arena_mode mode, bool updates_in_store,
                              int64_t *offsets, ed_arena_stats *stats)
{
    if (mode == ED_ARENA_DEFAULT) mode = ED_ARENA_INPLACE;
    ed_arena_stats st = {0};
    plan p = {0};
    for (int i = 0; i < g->nnodes; i++) offsets[i] = -1;
    int64_t top = -1;
    if (liveness(g, order, &p) != ED_OK) goto done;
    for (int i = 0; updates_in_store && mode == ED_ARENA_INPLACE && i < g->nupdates; i++) {
        const ed_node *u = g->updates[i].node;
        if (!p.in_store[u->id] && writes_store(&p, u)) {
            p.in_store[u->id] = true;
            st.in_store++;
        }
    }
    if (make_buffers(order, mode, &p, &st) != ED_OK) goto done;
    st.peak_bytes = peak(&p);
    if (mode == ED_ARENA_SEPARATE) {
        st.inplace = 0;
        top = plan_separate(g, order, offsets);
        goto done;
    }
    if ((top = place(&p)) < 0) goto done;
    for (int i = 0; i < g->nnodes; i++)
        offsets[i] = p.in_store[i] ? ED_ARENA_IN_STORE : p.buf[i] >= 0 ? p.bufs[p.buf[i]].off : -1;
done:
    plan_free(&p);
    st.arena_bytes = top;
    if (stats) *stats = st;
    return top;
}

int64_t ed_arena_plan(const ed_graph *g, ed_node *const *order, int64_t *offsets)
{
    return ed_arena_plan_mode(g, order, ED_ARENA_DEFAULT, offsets, NULL);
}

bool ed_arena_inplace_input(const ed_node *n, int k, const int64_t *offsets)
{
    const ed_node *x = n->in[k];
    bool same = offsets[n->id] >= 0 ? offsets[x->id] == offsets[n->id]
                                    : offsets[n->id] == ED_ARENA_IN_STORE && x == ed_arena_update_target(n);
    return (ed_ops[n->op].flags & F_INPLACE) && (n->op != ED_OP_FUSED || ed_fused_inplace_ok(n)) && same &&
           x->dtype == n->dtype && ed_shape_eq(x->shape, n->shape);
}
