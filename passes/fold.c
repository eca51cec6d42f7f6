/* fold: constant folding. A known, non-random node whose inputs are all constants is
 * evaluated once with the interpreter's kernel (the oracle, so folding can never
 * disagree with it) and replaced by a constant: a splat when every element is the
 * same, whatever the size; otherwise only up to FOLD_KEEP elements, so folding never
 * turns a cheap broadcast into a large table.
 *
 * This is the one place a pass uses backend code: the interpreter's kernels, which
 * depend only on ir/ and runtime/. */
#include "interp/interp.h"
#include "ir/conv.h"
#include "passes/pass.h"
#include "runtime/error.h"

#include <stdlib.h>
#include <string.h>

enum {
    FOLD_EVAL = 1 << 20, /* largest result evaluated (elements) */
    FOLD_KEEP = 1 << 14, /* largest non-splat constant made (elements) */
};

/* Largest convolution evaluated (multiply-adds): a small result may still sum a huge
 * window, and the interpreter's kernel is plain loops. */
#define FOLD_CONV_WORK 6.7e7

static bool too_much_work(const ed_node *n)
{
    if (ed_ops[n->op].kind != ED_KIND_CONV) return false;
    ed_conv_geom g = ed_conv_geom_of(n);
    double macs = (double)g.n * (double)g.o * (double)g.oh * (double)g.ow * (double)g.cg * (double)g.kh * (double)g.kw;
    return macs > FOLD_CONV_WORK;
}

static bool foldable(const ed_node *n)
{
    if (!ed_pass_op_is_known(n->op) || n->nin == 0) return false; /* leaves and random ops */
    if (ed_ops[n->op].kind == ED_KIND_RANDOM) return false;
    if (ed_shape_numel(n->shape) > FOLD_EVAL || too_much_work(n)) return false;
    for (int k = 0; k < n->nin; k++)
        if (n->in[k]->op != ED_OP_CONST) return false;
    return true;
}

/* The value of a const node (cached per node id). */
static ed_tensor *const_value(ed_node *c, ed_tensor **cache)
{
    if (cache[c->id]) return cache[c->id];
    ed_tensor *t = ed_tensor_new(c->dtype, c->shape);
    if (!t) return NULL;
    ed_interp_ctx ctx = {0};
    ed_interp_eval(c, NULL, t, &ctx);
    return cache[c->id] = t;
}

/* A const holding t's values (one value if they are all the same), or NULL to keep
 * the node as it is. */
static ed_node *const_of(ed_graph *g, const ed_node *n, const ed_tensor *t)
{
    int64_t count = ed_tensor_numel(t);
    double first = count ? ed_tensor_get(t, 0) : 0;
    bool splat = true;
    for (int64_t i = 1; i < count && splat; i++) {
        double v = ed_tensor_get(t, i);
        splat = memcmp(&v, &first, sizeof v) == 0;
    }
    if (!splat && count > FOLD_KEEP) return NULL;
    int64_t nd = splat ? 1 : count;
    double *data = malloc((size_t)nd * sizeof *data);
    if (!data) return NULL;
    for (int64_t i = 0; i < nd; i++) data[i] = ed_tensor_get(t, i);
    ed_attrs a = {.data = data, .ndata = nd, .dtype = n->dtype, .shape = n->shape};
    ed_node *c = ed_node_new(g, ED_OP_CONST, NULL, 0, &a);
    free(data);
    if (c && n->name) ed_set_name(c, n->name);
    return c;
}

int ed_pass_fold(ed_graph *g, ed_pass_stats *st)
{
    int n = g->nnodes, rc = ED_OK;
    ed_node **order = ed_graph_topo(g);
    ed_node **canon = calloc((size_t)n + 1, sizeof *canon);
    /* by node id, old and new nodes alike: the values of const nodes evaluated so far */
    int cap = 2 * n + 16;
    ed_tensor **cache = calloc((size_t)cap, sizeof *cache);
    const ed_tensor *args[8];
    if (!order || !canon || !cache) {
        free(order), free(canon), free(cache);
        return ed_fail("fold: out of memory");
    }
    for (int i = 0; i < n && rc == ED_OK; i++) {
        ed_node *x = order[i];
        for (int k = 0; k < x->nin; k++) x->in[k] = canon[x->in[k]->id];
        canon[x->id] = x;
        if (!foldable(x) || x->nin > (int)(sizeof args / sizeof args[0])) continue;
        bool ok = true;
        for (int k = 0; k < x->nin && ok; k++) ok = (args[k] = const_value(x->in[k], cache)) != NULL;
        ed_tensor *out = ok ? ed_tensor_new(x->dtype, x->shape) : NULL;
        if (!out) {
            rc = ed_fail("fold: out of memory");
            break;
        }
        ed_interp_ctx ctx = {0};
        ed_interp_eval(x, args, out, &ctx);
        ed_node *c = const_of(g, x, out);
        if (c && c->id < cap) {
            cache[c->id] = out; /* later folds read it from here */
            out = NULL;
        }
        ed_tensor_free(out);
        if (!c) continue;
        canon[x->id] = c;
        st->rewrites++;
        if (g->nnodes >= cap) { /* grow the cache with the graph */
            int ncap = 2 * cap;
            ed_tensor **p = realloc(cache, (size_t)ncap * sizeof *p);
            if (!p) {
                rc = ed_fail("fold: out of memory");
                break;
            }
            memset(p + cap, 0, (size_t)(ncap - cap) * sizeof *p);
            cache = p, cap = ncap;
        }
    }
    if (rc == ED_OK) {
        for (int i = 0; i < g->noutputs; i++)
            if (g->outputs[i].node->id < n) g->outputs[i].node = canon[g->outputs[i].node->id];
        for (int i = 0; i < g->nupdates; i++)
            if (g->updates[i].node->id < n) g->updates[i].node = canon[g->updates[i].node->id];
    }
    for (int i = 0; i < cap; i++) ed_tensor_free(cache[i]);
    free(order), free(canon), free(cache);
    return rc;
}
