/* The `fuse` pass: chains of elementwise ops (broadcasts and splat consts included),
 * and the reduction (sum, mean, max, min) they feed or that feeds them, become one
 * `fused` node each, whose body graph is the chain (ir.h, "fused expressions"), so the
 * backends run them as one loop nest with the intermediate values in registers.
 *
 * Groups are found in one reverse topological sweep. An elementwise node or reduction
 * starts a group (as its root) unless it can join the group of its users: every user
 * is in that one group, the node is not bound to out or update (its value is needed as
 * such), and it fits. A group holds at most one reduction; a reduction joins a group
 * whose root has the reduction's shape (the members after it are an epilogue run once
 * per group: log(sum(.)) + m) or its operand's (a row kernel: exp(x - m) / sum(...),
 * when the reduction is read back at each element's own group).
 * An elementwise node fits when it has as many elements as the shape each phase that
 * reads it runs over (the reduction's operand, or the root): a smaller value, say a
 * bias, would be recomputed for every element; broadcast_to is free and always joins.
 * A group value (log(s) in x - m - log(s)) is the exception: it joins the row kernel
 * of the reduction it is computed from, which evaluates it from that reduction (once
 * per group when it reads nothing per element, ed_fused_group_values).
 * A join must keep the group within ED_FUSED_MAX_INPUTS distinct inputs and
 * ED_FUSED_MAX_NODES body nodes. Every node that joins has all its users inside the
 * group, so no value leaves a group except through its root and no cycle can form.
 * Groups of one op stay as they are, and so do groups reading nothing but splat
 * consts (fold's work). Splat consts read by a group are copied into its body.
 *
 * Before grouping for good, values are copied into their readers (then the groups are
 * found again): broadcasts into the groups that read them, small cheap chains into
 * every group that reads them (a bias add: act(mm + b) in one pass, the backward group
 * reading mm), a cheap chain into a reduction that reads it. After grouping, a
 * broadcast still read by several nodes gets a copy per later reader (split_broadcasts).
 *
 * Then a small matmul or a gemm convolution read only by a chain of its shape becomes
 * the chain's producer (fuse_matmul.c), before split_broadcasts.
 *
 * Autodiff does not know fused nodes (ed_grad refuses them): fuse runs after ed_grad,
 * as in ed_compile's default pipeline. The pass manager runs fuse in loop bodies. */
#include "frontend/frontend.h"
#include "passes/pass.h"
#include "runtime/error.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct {
    ed_node *root;
    ed_node *red; /* the group's reduction, or NULL */
    int members;
    int next;
    ed_node *ext[ED_FUSED_MAX_INPUTS + 1]; /* distinct inputs from outside, not splat consts */
    int nconst;                            /* distinct splat consts read (an upper bound) */
    bool costly;                           /* has a member that is not cheap arithmetic */
} group;

/* Limits of a chain copied into a reduction's group (recompute_into_reductions). */
#define RECOMPUTE_MAX_NODES 8
#define RECOMPUTE_MAX_INPUTS 4

typedef struct {
    ed_graph *g;
    int n;           /* nodes before the pass (order's length; fused nodes are added after) */
    ed_node **order; /* topological */
    ed_uses *uses;
    bool *pinned;         /* by id: bound to out or update */
    int *gid;             /* by id: the node's group, -1 for none */
    unsigned char *phase; /* by id, members of groups with a reduction: 1 read by it, 2 by the result */
    bool *refused;        /* by id: a group value (below) that found no row kernel to join last time */
    group *groups;
    int ngroups;
} fuser;

static bool splat_const(const ed_node *n) { return n->op == ED_OP_CONST && n->attr.ndata == 1; }

static bool elementwise(const ed_node *n) { return ed_ops[n->op].kind == ED_KIND_ELEM; }

static bool reduction(const ed_node *n) { return ed_ops[n->op].flags & F_FUSABLE_RED; }

static bool has_ext(const group *gr, const ed_node *x)
{
    for (int i = 0; i < gr->next; i++)
        if (gr->ext[i] == x) return true;
    return false;
}

/* Does x fit into gr? Then update gr's inputs as if it joined. */
static bool try_join(group *gr, ed_node *x)
{
    group t = *gr;
    int w = 0; /* x stops being an input */
    for (int i = 0; i < t.next; i++)
        if (t.ext[i] != x) t.ext[w++] = t.ext[i];
    t.next = w;
    for (int k = 0; k < x->nin; k++) {
        ed_node *y = x->in[k];
        if (splat_const(y)) t.nconst++;
        else if (!has_ext(&t, y)) {
            if (t.next == ED_FUSED_MAX_INPUTS) return false;
            t.ext[t.next++] = y;
        }
    }
    t.members++;
    if (t.members + t.next + t.nconst > ED_FUSED_MAX_NODES) return false;
    *gr = t;
    return true;
}

/* The group all of x's users are in, or -1. */
static int users_group(const fuser *f, const ed_node *x)
{
    const ed_uses *u = f->uses;
    int g = -1;
    if (u->start[x->id] == u->start[x->id + 1]) return -1;
    for (int k = u->start[x->id]; k < u->start[x->id + 1]; k++) {
        int h = f->gid[u->list[k]->id];
        if (h < 0 || (g >= 0 && h != g)) return -1;
        g = h;
    }
    return g;
}

/* Which phases of gr read x (all of x's users are in gr): 1 the reduction's operand,
 * 2 the result (ir.h). */
static unsigned user_phases(const fuser *f, const group *gr, const ed_node *x)
{
    const ed_uses *u = f->uses;
    unsigned ph = 0;
    for (int k = u->start[x->id]; k < u->start[x->id + 1]; k++) {
        const ed_node *user = u->list[k];
        ph |= user == gr->red ? 1u : f->phase[user->id];
    }
    return ph;
}

/* May reduction r feed a row kernel whose result has shape d? */
static bool row_reduction(const ed_node *r, ed_shape d)
{
    return reduction(r) && ed_shape_eq(r->in[0]->shape, d) && ed_reduction_reads_back(r);
}

/* Is x, smaller than d, computed (through elementwise values smaller than d) from a
 * reduction that may feed a row kernel of shape d? A few levels: log(s), rsqrt(v + eps). */
static bool group_value(const ed_node *x, ed_shape d, int depth)
{
    if (depth == 0 || !elementwise(x) || ed_shape_numel(x->shape) >= ed_shape_numel(d)) return false;
    for (int k = 0; k < x->nin; k++)
        if (row_reduction(x->in[k], d) || group_value(x->in[k], d, depth - 1)) return true;
    return false;
}

/* May x join gr, whose members read it, by size? Each phase runs per element of its
 * shape, so a smaller value would be recomputed per element (broadcast_to is free),
 * except a group value read by the result (x - m - log(s)): a row kernel evaluates it
 * from its reduction once per group. A reduction joins a group without one whose
 * result has its shape (then the rest is its epilogue) or its operand's (a row kernel). */
static bool fits(const fuser *f, const group *gr, const ed_node *x, unsigned *ph)
{
    int64_t ny = ed_shape_numel(gr->root->shape);
    if (reduction(x)) return !gr->red && (ed_shape_eq(x->shape, gr->root->shape) || row_reduction(x, gr->root->shape));
    *ph = gr->red ? user_phases(f, gr, x) : 2;
    if (x->op == ED_OP_BROADCAST_TO) return true;
    int64_t n = ed_shape_numel(x->shape);
    if ((*ph & 1) && n != ed_shape_numel(gr->red->in[0]->shape)) return false;
    if (!(*ph & 2) || n == ny) return true;
    /* the reduction comes later in the sweep; group_values_ok checks it joined */
    return !gr->red && !f->refused[x->id] && group_value(x, gr->root->shape, 4);
}

static void find_groups(fuser *f, ed_node *const *order)
{
    for (int i = f->n - 1; i >= 0; i--) {
        ed_node *x = order[i];
        f->gid[x->id] = -1;
        if (!elementwise(x) && x->op != ED_OP_BROADCAST_TO && !reduction(x)) continue;
        int h = f->pinned[x->id] ? -1 : users_group(f, x);
        unsigned ph = 0;
        if (h >= 0 && fits(f, &f->groups[h], x, &ph) && try_join(&f->groups[h], x)) {
            f->gid[x->id] = h;
            f->phase[x->id] = (unsigned char)ph;
            if (reduction(x)) f->groups[h].red = x;
            continue;
        }
        if (x->op == ED_OP_BROADCAST_TO) continue;
        group *gr = &f->groups[f->ngroups];
        *gr = (group){.root = x, .red = reduction(x) ? x : NULL};
        if (!try_join(gr, x)) continue; /* more inputs than a fused node takes: stays as it is */
        f->phase[x->id] = reduction(x) ? 0 : 2;
        f->gid[x->id] = f->ngroups++;
    }
}

/* Build group h's fused node. map: by outer id, the body node (scratch, reset after);
 * repl: by outer id, the fused node that replaced a root. */
static ed_node *build(fuser *f, int h, ed_node *const *order, ed_node **map, ed_node *const *repl)
{
    group *gr = &f->groups[h];
    char name[32];
    snprintf(name, sizeof name, "f%d", gr->root->id);
    ed_graph *body = ed_graph_new(name);
    if (!body) return NULL;
    ed_node *ext[ED_FUSED_MAX_INPUTS];
    int next = 0, nmapped = 0;
    ed_node *mapped[ED_FUSED_MAX_NODES]; /* outer nodes whose map entry is set */
    /* The body's inputs first (in order of first use), then its consts and ops. */
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < f->n && !body->failed; i++) {
            ed_node *m = order[i];
            if (f->gid[m->id] != h) continue;
            ed_node *in[3];
            for (int k = 0; k < m->nin; k++) {
                ed_node *y = m->in[k];
                bool member = y->id < f->n && f->gid[y->id] == h;
                if (!map[y->id] && !member && splat_const(y) == (pass == 1)) {
                    if (pass == 1) {
                        map[y->id] = ed_node_new(body, ED_OP_CONST, NULL, 0, &y->attr);
                    } else {
                        char in_name[16];
                        snprintf(in_name, sizeof in_name, "x%d", next);
                        ext[next++] = repl[y->id] ? repl[y->id] : y;
                        map[y->id] = ed_input(body, in_name, y->dtype, y->shape);
                    }
                    mapped[nmapped++] = y;
                }
                in[k] = map[y->id];
            }
            if (pass == 0) continue;
            map[m->id] = ed_node_new(body, m->op, in, m->nin, &m->attr);
            if (m->name && map[m->id]) ed_set_name(map[m->id], m->name);
            mapped[nmapped++] = m;
        }
    ed_output(body, "y", map[gr->root->id]);
    for (int i = 0; i < nmapped; i++) map[mapped[i]->id] = NULL;
    if (body->failed) {
        ed_fail("fuse: body of %%%d: %s", gr->root->id, body->error);
        ed_graph_free(body);
        return NULL;
    }
    ed_node *fused = ed_fused(ext, next, body);
    if (fused && gr->root->name) ed_set_name(fused, gr->root->name);
    return fused;
}

/* Did every group value that joined a group (fits) find its row kernel: a reduction
 * in its group that it is computed from? Otherwise it would be recomputed per element
 * (the reduction stayed out: bound, read elsewhere, over the limits), so mark it
 * refused and return false for another sweep. */
static bool group_values_ok(fuser *f)
{
    bool ok = true;
    bool *from_red = calloc((size_t)f->n + 1, sizeof *from_red); /* by id: computed from its group's reduction */
    if (!from_red) return true; /* out of memory: keep the groups, which are correct, only slower */
    for (int i = 0; i < f->n; i++) {
        const ed_node *x = f->order[i];
        int h = f->gid[x->id];
        if (h < 0) continue;
        const group *gr = &f->groups[h];
        from_red[x->id] = x == gr->red;
        for (int k = 0; k < x->nin && !from_red[x->id]; k++) {
            const ed_node *y = x->in[k];
            from_red[x->id] = y->id < f->n && f->gid[y->id] == h && from_red[y->id];
        }
        bool small = x != gr->red && x->op != ED_OP_BROADCAST_TO && (f->phase[x->id] & 2) &&
                     ed_shape_numel(x->shape) < ed_shape_numel(gr->root->shape);
        if (small && !(from_red[x->id] && gr->red && row_reduction(gr->red, gr->root->shape))) {
            f->refused[x->id] = true;
            ok = false;
        }
    }
    free(from_red);
    return ok;
}

static void fuser_free(fuser *f)
{
    free(f->order), free(f->pinned), free(f->gid), free(f->phase), free(f->refused), free(f->groups);
    ed_uses_free(f->uses);
    *f = (fuser){0};
}

/* Find g's groups into f (freed with fuser_free, also on failure). */
static int fuser_init(fuser *f, ed_graph *g)
{
    int n = g->nnodes;
    *f = (fuser){.g = g, .n = n};
    f->order = ed_graph_topo(g);
    f->uses = ed_uses_build(g);
    f->pinned = calloc((size_t)n + 1, sizeof *f->pinned);
    f->gid = calloc((size_t)n + 1, sizeof *f->gid);
    f->phase = calloc((size_t)n + 1, sizeof *f->phase);
    f->refused = calloc((size_t)n + 1, sizeof *f->refused);
    f->groups = calloc((size_t)n + 1, sizeof *f->groups);
    if (!f->order || !f->uses || !f->pinned || !f->gid || !f->phase || !f->refused || !f->groups)
        return ed_fail("fuse: out of memory");
    for (int i = 0; i < g->noutputs; i++) f->pinned[g->outputs[i].node->id] = true;
    for (int i = 0; i < g->nupdates; i++) f->pinned[g->updates[i].node->id] = true;
    do { /* each sweep but the last refuses one more value at least */
        f->ngroups = 0;
        find_groups(f, f->order);
    } while (!group_values_ok(f));
    return ED_OK;
}

/* Ops a reduction's loop may recompute for free (F_CHEAP): a few cycles each, hidden
 * behind the sequential accumulation. Transcendentals are not (exp, sigmoid: tens of
 * instructions that vectorize in their own kernel but not inside the reduction). */
static bool cheap(ed_op op) { return ed_ops[op].flags & F_CHEAP; }

/* Does reduction r meet each group's elements contiguously (its reduced axes, size-1
 * axes aside, after its kept ones)? Otherwise a copied chain's inputs would be read
 * strided, each one as slowly as the stored value it replaces. */
static bool contiguous_groups(const ed_node *r)
{
    const ed_shape d = r->in[0]->shape;
    bool reducing = false;
    for (int a = 0; a < d.rank; a++) {
        if (d.dim[a] == 1) continue;
        bool reduced = r->attr.axes >> a & 1;
        if (reducing && !reduced) return false;
        reducing = reducing || reduced;
    }
    return true;
}

/* A copy of group gx's members (new nodes of g, reading what the members read), or NULL. */
static ed_node *copy_group(fuser *f, int gx)
{
    ed_node *from[RECOMPUTE_MAX_NODES], *to[RECOMPUTE_MAX_NODES];
    int nc = 0;
    for (int i = 0; i < f->n; i++) {
        ed_node *m = f->order[i], *in[3];
        if (f->gid[m->id] != gx) continue;
        for (int k = 0; k < m->nin; k++) {
            in[k] = m->in[k];
            for (int j = 0; j < nc; j++)
                if (from[j] == m->in[k]) in[k] = to[j];
        }
        from[nc] = m;
        if (!(to[nc++] = ed_node_new(f->g, m->op, in, m->nin, &m->attr))) return NULL;
    }
    return to[nc - 1]; /* the root comes last in topological order */
}

/* Flag the groups holding a transcendental (or any op that is not cheap). */
static void mark_costly(fuser *f)
{
    for (int i = 0; i < f->n; i++) {
        const ed_node *m = f->order[i];
        if (f->gid[m->id] >= 0 && !cheap(m->op)) f->groups[f->gid[m->id]].costly = true;
    }
}

/* A chain stored because several groups read it, one of them as (part of) a
 * reduction's operand: give that reduction its own copy, so its group recomputes the
 * chain from the chain's inputs instead of reading the stored value, and the stored
 * chain may fuse into its other readers. W1: a gradient's square read by Adam and by
 * the global norm; MSE's difference read by the loss and by its gradient. Only small
 * chains of cheap ops without a reduction of their own, into reductions over
 * contiguous groups. Returns the copies made, or -1. */
static int recompute_into_reductions(fuser *f)
{
    int copies = 0;
    mark_costly(f);
    for (int i = 0; i < f->n; i++) {
        ed_node *x = f->order[i];
        int gx = f->gid[x->id];
        if (gx < 0 || f->groups[gx].root != x || f->pinned[x->id]) continue;
        const group *gr = &f->groups[gx];
        if (gr->red || gr->costly || gr->members > RECOMPUTE_MAX_NODES || gr->next > RECOMPUTE_MAX_INPUTS) continue;
        int done[ED_FUSED_MAX_INPUTS], ndone = 0; /* groups given a copy already, and the copy */
        ed_node *made[ED_FUSED_MAX_INPUTS];
        const ed_uses *u = f->uses;
        for (int k = u->start[x->id]; k < u->start[x->id + 1]; k++) {
            ed_node *user = u->list[k];
            int h = f->gid[user->id];
            if (h < 0 || h == gx || !f->groups[h].red) continue;
            const group *hr = &f->groups[h];
            if (user != hr->red && !(f->phase[user->id] & 1)) continue;
            if (ed_shape_numel(x->shape) != ed_shape_numel(hr->red->in[0]->shape) || !contiguous_groups(hr->red))
                continue;
            /* x stops being an input of h, the copy's inputs become ones (at most) */
            if (hr->next - 1 + gr->next > ED_FUSED_MAX_INPUTS ||
                hr->members + hr->next + hr->nconst + gr->members + gr->nconst > ED_FUSED_MAX_NODES)
                continue;
            ed_node *copy = NULL;
            for (int j = 0; j < ndone; j++)
                if (done[j] == h) copy = made[j];
            if (!copy) {
                if (ndone == ED_FUSED_MAX_INPUTS || !(copy = copy_group(f, gx))) continue;
                done[ndone] = h, made[ndone++] = copy;
                copies++;
            }
            for (int j = 0; j < user->nin; j++)
                if (user->in[j] == x) user->in[j] = copy;
        }
        if (ed_graph_error(f->g)) return -1;
    }
    return copies;
}

/* ---- values every reader recomputes: broadcasts and cheap chains ---------------- */

/* Limits of a chain copied into every group that reads it (recompute_into_readers). */
#define READERS_MAX_NODES 4
#define READERS_MAX_GROUPS 8

/* Redirect user's reads of x to y. */
static void redirect(ed_node *user, const ed_node *x, ed_node *y)
{
    for (int j = 0; j < user->nin; j++)
        if (user->in[j] == x) user->in[j] = y;
}

/* Room in group hr for a copy of `members` nodes reading `inputs` values in place of
 * one input it reads now (counted as in try_join: the copy's inputs may all be new). */
static bool room_for_copy(const group *hr, int members, int inputs)
{
    return hr->next - 1 + inputs <= ED_FUSED_MAX_INPUTS &&
           hr->members + hr->next + hr->nconst + members + inputs <= ED_FUSED_MAX_NODES;
}

/* A broadcast_to that groups read is not stored for them: each group that reads it
 * gets its own copy, which joins the group (a broadcast is free there). Readers outside
 * groups keep reading it (split_broadcasts gives them their own). Returns the copies
 * made, or -1. */
static int copy_broadcasts(fuser *f)
{
    int copies = 0;
    const ed_uses *u = f->uses;
    for (int i = 0; i < f->n; i++) {
        ed_node *x = f->order[i];
        if (x->op != ED_OP_BROADCAST_TO || f->gid[x->id] >= 0) continue;
        int done[READERS_MAX_GROUPS], ndone = 0; /* groups given a copy already, and the copy */
        ed_node *made[READERS_MAX_GROUPS];
        for (int k = u->start[x->id]; k < u->start[x->id + 1]; k++) {
            ed_node *user = u->list[k];
            int h = f->gid[user->id];
            if (h < 0) continue;
            ed_node *copy = NULL;
            for (int j = 0; j < ndone; j++)
                if (done[j] == h) copy = made[j];
            if (!copy) {
                if (ndone == READERS_MAX_GROUPS || !room_for_copy(&f->groups[h], 1, 1)) continue;
                if (!(copy = ed_node_new(f->g, ED_OP_BROADCAST_TO, x->in, 1, &x->attr))) return -1;
                done[ndone] = h, made[ndone++] = copy;
                copies++;
            }
            redirect(user, x, copy);
        }
    }
    return copies;
}

/* After grouping: a broadcast_to still read by several nodes (a concat, a matmul)
 * keeps its first reader, in topological order, and each later one gets its own copy,
 * placed just before it (the graph is reordered so, which the manager's renumbering
 * keeps), so a full-size buffer is not kept alive between distant readers. RK4: cse
 * merges k2's and k3's time embeddings, and their [10000, 128] broadcast would stay
 * alive across k2's network. A broadcast costs one write of its result, no more than
 * the read it saves. Not for one bound to out (stored to the end anyway). */
static int split_broadcasts(ed_graph *g)
{
    int n = g->nnodes, ncopies = 0;
    ed_node **order = ed_graph_topo(g);
    ed_uses *u = ed_uses_build(g);
    int *rank = calloc((size_t)n + 1, sizeof *rank);
    bool *pinned = calloc((size_t)n + 1, sizeof *pinned);
    /* reader[k]: the reader of copy k (node n + k); a copy per use at most */
    ed_node **reader = u ? malloc(((size_t)u->start[n] + 1) * sizeof *reader) : NULL;
    int rc = order && u && rank && pinned && reader ? ED_OK : ed_fail("fuse: out of memory");
    for (int i = 0; i < g->noutputs && rc == ED_OK; i++) pinned[g->outputs[i].node->id] = true;
    for (int i = 0; i < g->nupdates && rc == ED_OK; i++) pinned[g->updates[i].node->id] = true;
    for (int i = 0; i < n && rc == ED_OK; i++) rank[order[i]->id] = i;
    for (int i = 0; i < n && rc == ED_OK; i++) {
        ed_node *x = order[i];
        if (x->op != ED_OP_BROADCAST_TO || pinned[x->id]) continue;
        ed_node *first = NULL;
        for (int k = u->start[x->id]; k < u->start[x->id + 1]; k++)
            if (!first || rank[u->list[k]->id] < rank[first->id]) first = u->list[k];
        for (int k = u->start[x->id]; k < u->start[x->id + 1] && rc == ED_OK; k++) {
            ed_node *user = u->list[k];
            bool reads_x = false; /* still: a use entry per read, the first redirects them all */
            for (int j = 0; j < user->nin; j++) reads_x |= user->in[j] == x;
            if (user == first || !reads_x) continue;
            ed_node *copy = ed_node_new(g, ED_OP_BROADCAST_TO, x->in, 1, &x->attr);
            if (!copy) rc = ed_fail("fuse: %s", ed_graph_error(g));
            else redirect(user, x, copy), reader[ncopies++] = user;
        }
    }
    if (rc == ED_OK && ncopies > 0) { /* the copies (nodes n..) each just before its reader */
        ed_node **placed = malloc((size_t)g->nnodes * sizeof *placed);
        int np = 0;
        if (!placed) rc = ed_fail("fuse: out of memory");
        for (int i = 0; i < n && rc == ED_OK; i++) {
            for (int k = 0; k < ncopies; k++)
                if (reader[k] == order[i]) placed[np++] = g->nodes[n + k];
            placed[np++] = order[i];
        }
        if (rc == ED_OK) rc = ed_graph_reorder(g, placed);
        free(placed);
    }
    free(order), free(rank), free(pinned), free(reader);
    ed_uses_free(u);
    return rc;
}

/* Is chain root x (a group without a reduction) recomputed as cheaply as it is read?
 * Cheap arithmetic only (no transcendentals: see cheap()), a few ops, and at most one
 * input of x's size (others smaller: a bias, a scalar), no wider than x: a reader then
 * reads that input in place of x, and keeping it alive costs no more than keeping x. */
static bool cheap_to_recompute(const fuser *f, const ed_node *x, int gx)
{
    const group *gr = &f->groups[gx];
    if (gr->red || gr->costly || gr->members > READERS_MAX_NODES || gr->next > RECOMPUTE_MAX_INPUTS) return false;
    int full = 0;
    for (int k = 0; k < gr->next; k++) {
        const ed_node *y = gr->ext[k];
        if (ed_shape_numel(y->shape) < ed_shape_numel(x->shape)) continue;
        if (ed_dtype_size(y->dtype) > ed_dtype_size(x->dtype)) return false;
        full++;
    }
    return full <= 1;
}

/* May group h recompute x, which its member user reads? As fits() asks of a member: x
 * has the elements of each phase that reads it, and a reduction's operand is read over
 * contiguous groups (recompute_into_reductions). */
static bool reader_fits(const fuser *f, int h, const ed_node *user, const ed_node *x)
{
    const group *hr = &f->groups[h];
    unsigned ph = !hr->red ? 2u : user == hr->red ? 1u : f->phase[user->id];
    int64_t n = ed_shape_numel(x->shape);
    if ((ph & 1) && (n != ed_shape_numel(hr->red->in[0]->shape) || !contiguous_groups(hr->red))) return false;
    return !(ph & 2) || n == ed_shape_numel(hr->root->shape);
}

/* A cheap chain stored only because several groups read it: each of them recomputes it
 * from the chain's inputs instead, and it is not stored. A dense layer act(x @ W + b)
 * in a training step: the activation and the backward pass's group both read x @ W +
 * b; each gets a copy, so the forward pass is the sgemm and one fused act(mm + b), and
 * the backward group reads mm (alive for it anyway). Only when every reader is a group
 * that fits it (readers outside groups need it stored). Returns the copies made, or -1. */
static int recompute_into_readers(fuser *f)
{
    int copies = 0;
    const ed_uses *u = f->uses;
    mark_costly(f);
    for (int i = 0; i < f->n; i++) {
        ed_node *x = f->order[i];
        int gx = f->gid[x->id];
        if (gx < 0 || f->groups[gx].root != x || f->pinned[x->id]) continue;
        int gs[READERS_MAX_GROUPS], ng = 0;
        bool ok = u->start[x->id] < u->start[x->id + 1] && cheap_to_recompute(f, x, gx);
        for (int k = u->start[x->id]; ok && k < u->start[x->id + 1]; k++) {
            const ed_node *user = u->list[k];
            int h = f->gid[user->id];
            ok = h >= 0 && reader_fits(f, h, user, x);
            bool seen = false;
            for (int j = 0; j < ng; j++) seen |= gs[j] == h;
            if (ok && !seen) {
                ok = ng < READERS_MAX_GROUPS && room_for_copy(&f->groups[h], f->groups[gx].members, f->groups[gx].next);
                gs[ng++] = h;
            }
        }
        if (!ok) continue;
        for (int j = 0; j < ng; j++) {
            ed_node *copy = copy_group(f, gx);
            if (!copy) return -1;
            copies++;
            for (int k = u->start[x->id]; k < u->start[x->id + 1]; k++)
                if (f->gid[u->list[k]->id] == gs[j]) redirect(u->list[k], x, copy);
        }
    }
    return copies;
}

/* Run a copying rule on f's groups; when it copied, find the groups again (the copies
 * join their readers' groups). */
static int copy_then_regroup(fuser *f, ed_graph *g, int (*rule)(fuser *))
{
    int copies = rule(f);
    if (copies < 0) return ed_fail("fuse: %s", ed_graph_error(g) ? ed_graph_error(g) : "out of memory");
    if (copies == 0) return ED_OK;
    fuser_free(f);
    return fuser_init(f, g);
}

int ed_pass_fuse(ed_graph *g, ed_pass_stats *st)
{
    fuser f;
    int rc = fuser_init(&f, g);
    if (rc == ED_OK) rc = copy_then_regroup(&f, g, copy_broadcasts);
    if (rc == ED_OK) rc = copy_then_regroup(&f, g, recompute_into_readers);
    if (rc == ED_OK) {
        int copies = recompute_into_reductions(&f);
        if (copies < 0) rc = ed_fail("fuse: %s", ed_graph_error(g));
        else if (copies > 0) {
            fuser_free(&f);
            rc = fuser_init(&f, g); /* the copies join their reductions' groups */
        }
    }
    int n = f.n;
    ed_node *const *order = f.order;
    /* by id, fused nodes included: a member may read an earlier group's fused node */
    ed_node **map = calloc(2 * (size_t)n + 1, sizeof *map), **repl = calloc(2 * (size_t)n + 1, sizeof *repl);
    if (rc == ED_OK && (!map || !repl)) rc = ed_fail("fuse: out of memory");
    /* Roots in topological order, so a group reading an earlier root reads its fused node. */
    for (int i = 0; i < n && rc == ED_OK; i++) {
        ed_node *r = order[i];
        int h = f.gid[r->id];
        /* one op gains nothing; no input at all is a constant, which is fold's */
        if (h < 0 || f.groups[h].root != r || f.groups[h].members < 2 || f.groups[h].next == 0) continue;
        /* dead: every reader got its own copy (a fused node would be kept as opaque) */
        if (!f.pinned[r->id] && ed_use_count(f.uses, r) == 0) continue;
        ed_node *fused = build(&f, h, order, map, repl);
        if (!fused) {
            rc = ed_graph_error(g) ? ed_fail("fuse: %s", ed_graph_error(g)) : ED_ERR;
            break;
        }
        repl[r->id] = fused;
        rc = ed_replace_all_uses(g, r, fused);
        st->rewrites += f.groups[h].members;
    }
    free(map), free(repl);
    fuser_free(&f);
    /* producers before the split: removing nodes renumbers, the split places copies */
    if (rc == ED_OK) rc = ed_fuse_producers(g, st);
    if (rc == ED_OK) rc = split_broadcasts(g);
    return rc;
}
