/* The `fuse` pass: chains of elementwise ops (broadcasts and splat consts included)
 * become one `fused` node each, whose body graph is the chain (ir.h, "fused
 * expressions"), so the backends run them as one loop with the intermediate values in
 * registers.
 *
 * Groups are found in one reverse topological sweep. An elementwise node starts a group
 * (as its root) unless it can join the group of its users: every user is in that one
 * group, the node is not bound to out or update (its value is needed as such), and it
 * has as many elements as the root (a smaller value, say a bias, would be recomputed
 * for every result element; broadcast_to is free and always joins). A join must keep
 * the group within ED_FUSED_MAX_INPUTS distinct inputs and ED_FUSED_MAX_NODES body
 * nodes. Every node that joins has all its users inside the group, so no value leaves a
 * group except through its root and no cycle can form. Groups of one op stay as they
 * are, and so do groups reading nothing but splat consts (fold's work). Splat consts
 * read by a group are copied into its body.
 *
 * Autodiff does not know fused nodes (ed_grad refuses them): fuse runs after ed_grad,
 * as in ed_compile's default pipeline. Loop bodies are not fused yet. */
#include "frontend/frontend.h"
#include "passes/pass.h"
#include "runtime/error.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct {
    ed_node *root;
    int members;
    int next;
    ed_node *ext[ED_FUSED_MAX_INPUTS + 1]; /* distinct inputs from outside, not splat consts */
    int nconst;                           /* distinct splat consts read (an upper bound) */
} group;

typedef struct {
    ed_graph *g;
    int n;         /* nodes before the pass (order's length; fused nodes are added after) */
    ed_uses *uses;
    bool *pinned;  /* by id: bound to out or update */
    int *gid;      /* by id: the node's group, -1 for none */
    group *groups;
    int ngroups;
} fuser;

static bool splat_const(const ed_node *n) { return n->op == ED_OP_CONST && n->attr.ndata == 1; }

static bool elementwise(const ed_node *n) { return ed_ops[n->op].kind == ED_KIND_ELEM; }

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

static void find_groups(fuser *f, ed_node *const *order)
{
    for (int i = f->n - 1; i >= 0; i--) {
        ed_node *x = order[i];
        f->gid[x->id] = -1;
        if (!elementwise(x) && x->op != ED_OP_BROADCAST_TO) continue;
        int h = f->pinned[x->id] ? -1 : users_group(f, x);
        if (h >= 0) {
            group *gr = &f->groups[h];
            bool same_size = ed_shape_numel(x->shape) == ed_shape_numel(gr->root->shape);
            if ((same_size || x->op == ED_OP_BROADCAST_TO) && try_join(gr, x)) {
                f->gid[x->id] = h;
                continue;
            }
        }
        if (!elementwise(x)) continue;
        group *gr = &f->groups[f->ngroups];
        *gr = (group){.root = x};
        if (!try_join(gr, x)) continue; /* more inputs than a fused node takes: stays as it is */
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

int ed_pass_fuse(ed_graph *g, ed_pass_stats *st)
{
    int n = g->nnodes;
    fuser f = {.g = g, .n = n};
    ed_node **order = ed_graph_topo(g);
    /* by id, fused nodes included: a member may read an earlier group's fused node */
    ed_node **map = calloc(2 * (size_t)n + 1, sizeof *map), **repl = calloc(2 * (size_t)n + 1, sizeof *repl);
    f.uses = ed_uses_build(g);
    f.pinned = calloc((size_t)n + 1, sizeof *f.pinned);
    f.gid = calloc((size_t)n + 1, sizeof *f.gid);
    f.groups = calloc((size_t)n + 1, sizeof *f.groups);
    int rc = ED_OK;
    if (!order || !map || !repl || !f.uses || !f.pinned || !f.gid || !f.groups) {
        rc = ed_fail("fuse: out of memory");
        goto done;
    }
    for (int i = 0; i < g->noutputs; i++) f.pinned[g->outputs[i].node->id] = true;
    for (int i = 0; i < g->nupdates; i++) f.pinned[g->updates[i].node->id] = true;
    find_groups(&f, order);
    /* Roots in topological order, so a group reading an earlier root reads its fused node. */
    for (int i = 0; i < n && rc == ED_OK; i++) {
        ed_node *r = order[i];
        int h = f.gid[r->id];
        /* one op gains nothing; no input at all is a constant, which is fold's */
        if (h < 0 || f.groups[h].root != r || f.groups[h].members < 2 || f.groups[h].next == 0) continue;
        ed_node *fused = build(&f, h, order, map, repl);
        if (!fused) {
            rc = ed_graph_error(g) ? ed_fail("fuse: %s", ed_graph_error(g)) : ED_ERR;
            break;
        }
        repl[r->id] = fused;
        rc = ed_replace_all_uses(g, r, fused);
        st->rewrites += f.groups[h].members;
    }
done:
    free(order), free(map), free(repl), free(f.pinned), free(f.gid), free(f.groups);
    ed_uses_free(f.uses);
    return rc;
}
