/* Memory planning: the plan pass (a low-peak schedule), the arena planner's liveness,
 * reuse and in-place updates, and the JIT running on planned arenas. Every planned
 * program is checked against the interpreter (the oracle) and against the JIT without
 * reuse, which must agree bit for bit: planning moves buffers, never arithmetic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "backend/arena.h"
#include "backend/llvm/jit.h"
#include "backend/program.h"
#include "frontend/nn.h"
#include "passes/pass.h"
#include "models/train_step.h"
#include "support/interp_check.h"
#include "support/run_check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------------ */

/* The default pipeline without fuse, so planning is tested on its own (fused graphs
 * are planned in test_fuse). */
#define NO_FUSE "simplify,fold,cse,dce,plan"

/* Three programs of g, each with its own store: the interpreter without passes (the
 * oracle), the JIT after NO_FUSE with the default arena (reuse and in-place), and the
 * JIT after the same pipeline without reuse. Each call's outputs
 * and finally every store value: planned vs oracle within tol, planned vs unplanned
 * bit for bit. Outputs are compared only after the call has finished, so a buffer
 * reused for an output would show. Returns the planned program's memory stats. */
static ed_arena_stats check_planned(const ed_graph *g, double tol, int calls, const char *what)
{
    random_feeds fd;
    random_feeds_make(g, -1.5, 1.5, &fd);
    const ed_compile_opts opts[3] = {{.backend = ED_BACKEND_INTERP, .seed = 5, .passes = ""},
                                     {.seed = 5, .passes = NO_FUSE},
                                     {.seed = 5, .passes = NO_FUSE, .arena = ED_ARENA_SEPARATE}};
    program_set ps;
    programs_compile(&ps, g, opts, 3, what);
    for (int c = 0; c < calls; c++) {
        programs_run(&ps, &fd, what);
        programs_check_outputs(&ps, 0, 1, check_tensors_agree, tol, what, c);
        programs_check_outputs(&ps, 2, 1, check_tensors_agree, 0, what, c);
    }
    programs_check_stores(&ps, 0, 1, check_tensors_agree, tol, what);
    programs_check_stores(&ps, 2, 1, check_tensors_agree, 0, what);
    ed_program **p = ps.p;
    ed_arena_stats st = ed_program_compile_stats(p[1]).memory;
    assert_int_equal(st.arena_bytes, (int64_t)p[1]->arena_bytes);
    assert_true(st.peak_bytes <= st.arena_bytes && st.arena_bytes <= st.buffer_bytes);
    /* no reuse: the sum of all buffers, with those of the updates written into the store */
    int64_t direct = 0;
    for (int i = 0; i < p[1]->nupdates; i++)
        if (p[1]->upd_direct[i])
            direct += (ed_arena_node_bytes(p[1]->updates[i].node) + ED_ALIGN - 1) / ED_ALIGN * ED_ALIGN;
    assert_int_equal(p[2]->arena_bytes, st.buffer_bytes + direct);
    programs_free(&ps);
    random_feeds_free(&fd);
    return st;
}

/* The planner's promise, checked from the definition: two buffers alive at the same
 * position of the order never share a byte, unless one node writes over its input in
 * place (same offset, F_INPLACE, the input's last read). Outputs and updates live to
 * the end, consts from the start. */
static void check_layout(const ed_graph *g, ed_node *const *order, const int64_t *off)
{
    int n = g->nnodes;
    int *pos = calloc((size_t)n, sizeof *pos), *last = calloc((size_t)n, sizeof *last);
    for (int i = 0; i < n; i++) pos[order[i]->id] = last[order[i]->id] = i;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < order[i]->nin; k++)
            if (last[order[i]->in[k]->id] < i) last[order[i]->in[k]->id] = i;
    for (int i = 0; i < g->noutputs; i++) last[g->outputs[i].node->id] = n;
    for (int i = 0; i < g->nupdates; i++) last[g->updates[i].node->id] = n;
    for (int i = 0; i < n; i++)
        if (g->nodes[i]->op == ED_OP_CONST) pos[i] = 0, last[i] = n;
    for (int a = 0; a < n; a++) {
        const ed_node *x = g->nodes[a];
        assert_int_equal(off[a] >= 0, ed_arena_holds(x));
        if (off[a] < 0) continue;
        assert_int_equal(off[a] % ED_ALIGN, 0);
        int64_t xe = off[a] + ed_arena_node_bytes(x);
        for (int b = 0; b < n; b++) {
            const ed_node *y = g->nodes[b];
            if (b == a || off[b] < 0 || pos[b] < pos[a] || pos[b] > last[a]) continue;
            /* y is written while x is alive */
            int64_t ye = off[b] + ed_arena_node_bytes(y);
            if (off[b] >= xe || off[a] >= ye || ye == off[b] || xe == off[a]) continue;
            bool inplace = false;
            for (int k = 0; k < y->nin; k++)
                if (y->in[k] == x && ed_arena_inplace_input(y, k, off) && last[a] == pos[b]) inplace = true;
            if (!inplace)
                fail_msg("%%%d %s and %%%d %s share bytes while both are alive", a, ed_op_name(x->op), b,
                         ed_op_name(y->op));
        }
    }
    free(pos), free(last);
}

/* ---- schedule ------------------------------------------------------------------ */

static void test_reorder_refuses_bad_orders(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("g");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape1(4));
    ed_node *a = ed_exp(x), *b = ed_neg(x), *c = ed_add(a, b);
    ed_output(g, "c", c);
    assert_int_equal(ed_graph_reorder(g, (ed_node *[]){x, a, c, b}), ED_ERR);
    CHECK_ERROR_HAS("comes before its input");
    assert_int_equal(ed_graph_reorder(g, (ed_node *[]){x, a, a, c}), ED_ERR);
    CHECK_ERROR_HAS("not a permutation");
    assert_int_equal(a->id, 1); /* unchanged */
    assert_int_equal(ed_graph_reorder(g, (ed_node *[]){x, b, a, c}), ED_OK);
    assert_int_equal(b->id, 1);
    assert_int_equal(a->id, 2);
    assert_ptr_equal(g->nodes[1], b);
    assert_int_equal(ed_graph_verify(g), ED_OK);
    ed_graph_free(g);
}

/* Built breadth first: two big values, then what reduces each. Depth first keeps
 * one big value alive at a time. */
static ed_graph *interleaved_graph(void)
{
    ed_graph *g = ed_graph_new("interleaved");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(64, 64));
    ed_node *big[4], *small[4];
    for (int i = 0; i < 4; i++) big[i] = ed_exp(ed_mul(x, ed_scalar(g, ED_F32, 0.1 * (i + 1))));
    for (int i = 0; i < 4; i++) small[i] = ed_sum(big[i], 1, false);
    ed_node *y = ed_add(ed_add(small[0], small[1]), ed_add(small[2], small[3]));
    ed_output(g, "y", y);
    return g;
}

static void test_plan_pass_lowers_peak(void **state)
{
    (void)state;
    ed_graph *g = interleaved_graph();
    ed_node **before = ed_graph_topo(g);
    int64_t peak0 = ed_plan_peak(g, before);
    free(before);
    ed_node **order = ed_plan_order(g);
    assert_non_null(order);
    int64_t peak1 = ed_plan_peak(g, order);
    free(order);
    print_message("interleaved: peak %lld -> %lld bytes\n", (long long)peak0, (long long)peak1);
    /* creation order keeps 4 mul results (or exps) alive; the schedule at most 2 */
    assert_true(peak0 >= 4 * 64 * 64 * 4);
    assert_true(peak1 <= 2 * 64 * 64 * 4 + 4 * 64 * 4);

    ed_graph *h = ed_graph_clone(g);
    ed_pass_stats st[2];
    ed_pass_opts po = {.verify = ED_VERIFY_ON, .stats = st, .stats_cap = 2};
    assert_int_equal(ed_pass_run(h, "plan", &po), ED_OK);
    assert_true(st[0].rewrites > 0);
    assert_int_equal(h->nnodes, g->nnodes);
    ed_node **after = ed_graph_topo(h);
    for (int i = 0; i < h->nnodes; i++) assert_ptr_equal(after[i], h->nodes[i]); /* creation order is the schedule */
    assert_int_equal(ed_plan_peak(h, after), peak1);
    free(after);
    /* a second run keeps a good order */
    assert_int_equal(ed_pass_run(h, "plan", &po), ED_OK);
    assert_int_equal(st[0].rewrites, 0);
    ed_graph_free(h);

    /* the arena follows: smaller after the pass than in creation order */
    ed_store *s0 = ed_store_new(0), *s1 = ed_store_new(0);
    ed_program *p0 = ed_compile(g, s0, &(ed_compile_opts){.passes = "simplify,fold,cse,dce"});
    ed_program *p1 = ed_compile(g, s1, &(ed_compile_opts){.passes = NO_FUSE});
    assert_non_null(p0);
    assert_non_null(p1);
    ed_arena_stats m0 = ed_program_compile_stats(p0).memory, m1 = ed_program_compile_stats(p1).memory;
    print_message("interleaved: arena %lld -> %lld bytes (buffers %lld)\n", (long long)m0.arena_bytes,
                  (long long)m1.arena_bytes, (long long)m1.buffer_bytes);
    assert_true(m1.arena_bytes < m0.arena_bytes);
    assert_true(m1.peak_bytes < m0.peak_bytes);
    ed_program_free(p0);
    ed_program_free(p1);
    ed_store_free(s0);
    ed_store_free(s1);
    check_planned(g, 1e-5, 1, "interleaved");
    ed_graph_free(g);
}

/* ---- in-place ------------------------------------------------------------------ */

static void test_inplace_chain(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("chain");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(32, 48));
    ed_node *b = ed_input(g, "b", ED_F32, ed_shape1(48));
    ed_node *e = ed_exp(x);                          /* a fresh buffer */
    ed_node *n = ed_neg(e);                          /* over e */
    ed_node *s = ed_add(n, b);                       /* over n (b broadcasts) */
    ed_node *t = ed_mul(s, s);                       /* over s, read twice */
    ed_node *u = ed_tanh(t);                         /* t is an output: a new buffer */
    ed_node *v = ed_sub(u, ed_sigmoid(u));           /* u is read later: a new buffer; sub goes over u */
    ed_node *w = ed_add(v, ed_scalar(g, ED_F32, 1)); /* over v; the const is never written */
    ed_output(g, "t", t);
    ed_output(g, "w", w);
    ed_node **order = ed_graph_topo(g);
    int64_t *off = malloc((size_t)g->nnodes * sizeof *off);
    ed_arena_stats st;
    assert_true(ed_arena_plan_mode(g, order, ED_ARENA_INPLACE, off, &st) > 0);
    check_layout(g, order, off);
    assert_int_equal(off[n->id], off[e->id]);
    assert_int_equal(off[s->id], off[n->id]);
    assert_int_equal(off[t->id], off[s->id]);
    assert_true(ed_arena_inplace_input(t, 0, off) && ed_arena_inplace_input(t, 1, off));
    assert_false(ed_arena_inplace_input(s, 1, off)); /* b is bound, not in the arena */
    assert_true(off[u->id] != off[t->id]);           /* t is an output */
    assert_true(off[v->in[1]->id] != off[u->id]);    /* u is alive when the sigmoid is written */
    assert_int_equal(off[v->id], off[u->id]);        /* both inputs die at the sub: over the first */
    assert_int_equal(off[w->id], off[v->id]);
    assert_true(off[w->id] != off[w->in[1]->id]);
    assert_int_equal(st.inplace, 5);
    int64_t with = st.arena_bytes;
    assert_true(ed_arena_plan_mode(g, order, ED_ARENA_REUSE, off, &st) > 0);
    check_layout(g, order, off);
    assert_int_equal(st.inplace, 0);
    print_message("chain: arena %lld bytes in place, %lld without\n", (long long)with, (long long)st.arena_bytes);
    assert_true(with < st.arena_bytes);
    free(order);
    free(off);
    ed_arena_stats m = check_planned(g, 2e-6, 2, "in-place chain");
    assert_true(m.inplace >= 5);
    ed_graph_free(g);
}

/* The optimized code of an in-place kernel reads its input through the output
 * pointer: one pointer, so no noalias promise is broken. */
static void test_inplace_kernel_ir(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("k");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape1(1000));
    ed_node *y = ed_neg(ed_exp(x));
    ed_output(g, "y", ed_sum(y, ED_ALL_AXES, false));
    char *ir = ed_jit_dump(g, 0, ED_JIT_DUMP_IR);
    assert_non_null(ir);
    const char *k = strstr(ir, "_neg(ptr");
    assert_non_null(k);
    const char *eol = strchr(k, '\n');
    char line[512];
    snprintf(line, sizeof line, "%.*s", (int)(eol - k), k);
    /* out is noalias, the input written over is not */
    assert_non_null(strstr(line, "(ptr noalias %0, ptr %1"));
    const char *exp_k = strstr(ir, "_exp(ptr");
    assert_non_null(exp_k);
    assert_non_null(strstr(exp_k, "(ptr noalias %0, ptr noalias %1"));
    free(ir);
    ed_graph_free(g);
}

/* Values that must not be reused or written over: outputs (read after the call),
 * updates (written to the store after every kernel), consts (filled once). */
static void test_outputs_updates_consts_intact(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("keep");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(16, 16));
    ed_node *c = ed_fill(g, ED_F32, ed_shape2(16, 16), 0.5);
    ed_node *a = ed_exp(ed_mul(x, c));
    ed_output(g, "a", a);
    ed_node *b = ed_neg(a); /* a dies here but is an output: not in place */
    ed_node *cnt = ed_state(g, "count", ED_F32, ed_shape2(16, 16), (ed_init){ED_INIT_ZEROS, 0});
    ed_node *nc = ed_add(cnt, ed_mul(b, c));
    ed_update(g, "count", nc);
    ed_node *z = ed_tanh(ed_add(nc, ed_matmul(b, b))); /* nc is read after its update value is made */
    ed_output(g, "z", ed_sum(z, ED_ALL_AXES, false));
    ed_output(g, "a_again", a);
    check_planned(g, 1e-5, 3, "outputs, updates and consts");
    ed_graph_free(g);
}

/* An update is written into its store tensor during the call when nothing reads the old
 * value after it (backend/arena.h, ED_ARENA_IN_STORE): here only w's. s is read after its
 * update is made, v's update reads v as a matrix, q is also an output, e's update value
 * is also an output. The values: check_planned (against the interpreter, and bit for bit
 * against the unplanned JIT, which writes updates after the call). */
static void test_updates_into_store(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("store");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(16, 16));
    ed_init init = {ED_INIT_GLOROT_UNIFORM, 0};
    ed_node *w = ed_param(g, "w", ED_F32, ed_shape2(16, 16), init);
    ed_node *uw = ed_sub(w, ed_mul(ed_scalar(g, ED_F32, 0.1), ed_mul(x, w)));
    ed_update(g, "w", uw);
    ed_node *s = ed_state(g, "s", ED_F32, ed_shape2(16, 16), (ed_init){ED_INIT_ZEROS, 0});
    ed_node *us = ed_add(s, x);
    ed_update(g, "s", us);
    ed_output(g, "r", ed_add(s, us)); /* reads s after us is made */
    ed_node *v = ed_param(g, "v", ED_F32, ed_shape2(16, 16), init);
    ed_node *uv = ed_matmul(v, v);
    ed_update(g, "v", uv);
    ed_node *q = ed_param(g, "q", ED_F32, ed_shape1(4), init);
    ed_node *uq = ed_mul(q, ed_scalar(g, ED_F32, 2));
    ed_update(g, "q", uq);
    ed_output(g, "q", q);
    ed_node *e = ed_param(g, "e", ED_F32, ed_shape1(4), init);
    ed_node *ue = ed_exp(e);
    ed_update(g, "e", ue);
    ed_output(g, "ue", ue);
    ed_output(g, "y", ed_sum(ed_mul(uw, x), ED_ALL_AXES, false));
    ed_node **order = ed_graph_topo(g);
    int64_t *off = malloc((size_t)g->nnodes * sizeof *off);
    ed_arena_stats st;
    assert_true(ed_arena_plan_program(g, order, ED_ARENA_INPLACE, true, off, &st) > 0);
    assert_int_equal(off[uw->id], ED_ARENA_IN_STORE);
    assert_true(ed_arena_update_target(uw) == w && ed_arena_inplace_input(uw, 0, off));
    assert_true(off[us->id] >= 0 && off[uv->id] >= 0 && off[uq->id] >= 0 && off[ue->id] >= 0);
    assert_int_equal(st.in_store, 1);
    assert_true(ed_arena_plan_program(g, order, ED_ARENA_REUSE, true, off, &st) > 0); /* in-place mode only */
    assert_true(off[uw->id] >= 0 && st.in_store == 0);
    assert_true(ed_arena_plan_program(g, order, ED_ARENA_INPLACE, false, off, &st) > 0);
    assert_true(off[uw->id] >= 0 && st.in_store == 0);
    free(order);
    free(off);
    ed_arena_stats m = check_planned(g, 1e-5, 3, "updates into the store");
    assert_int_equal(m.in_store, 1);
    ed_graph_free(g);
}

/* A feed that is the store tensor an update is written into during the call: staged, so
 * the call reads the values it was given (the interpreter, its own copy, agrees). */
static void test_feed_aliasing_store_update(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("alias");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(8, 8));
    ed_node *w = ed_param(g, "w", ED_F32, ed_shape2(8, 8), (ed_init){ED_INIT_GLOROT_UNIFORM, 0});
    ed_node *uw = ed_add(w, ed_scalar(g, ED_F32, 1));
    ed_update(g, "w", uw);
    ed_output(g, "y", ed_sum(ed_mul(ed_exp(uw), x), ED_ALL_AXES, false)); /* x read after w is written */
    ed_store *sj = ed_store_new(4), *si = ed_store_new(4);
    ed_program *pj = ed_compile(g, sj, &(ed_compile_opts){.seed = 1});
    ed_program *pi = ed_compile(g, si, &(ed_compile_opts){.backend = ED_BACKEND_INTERP, .seed = 1});
    assert_non_null(pj);
    assert_non_null(pi);
    assert_int_equal(ed_program_compile_stats(pj).memory.in_store, 1);
    for (int c = 0; c < 3; c++) {
        ed_tensor *wj = ed_store_get(sj, "w"), *copy = ed_tensor_new(ED_F32, ed_shape2(8, 8));
        memcpy(copy->data, wj->data, ed_tensor_bytes(wj));
        run_ok(pj, &(ed_feed){"x", wj}, 1);
        run_ok(pi, &(ed_feed){"x", copy}, 1);
        check_tensors_agree(ed_program_output(pi, "y"), ed_program_output(pj, "y"), 1e-5, "aliased feed", "y");
        check_tensors_agree(ed_store_get(si, "w"), ed_store_get(sj, "w"), 1e-6, "aliased feed", "w");
        ed_tensor_free(copy);
    }
    ed_program_free(pj), ed_program_free(pi);
    ed_store_free(sj), ed_store_free(si);
    ed_graph_free(g);
}

/* ---- random graphs and training ---------------------------------------------------- */

typedef ed_node *(*unary_fn)(ed_node *);
typedef ed_node *(*binary_fn)(ed_node *, ed_node *);

/* Values of type f32[6, 8] and f32[8, 6] mixed by every kind of op the planner meets. */
static ed_graph *random_graph(uint64_t seed)
{
    rng_seed(seed * 2654435761u + 7);
    ed_graph *g = ed_graph_new("random");
    ed_node *pool[48];
    int np = 0;
    pool[np++] = ed_input(g, "a", ED_F32, ed_shape2(6, 8));
    pool[np++] = ed_input(g, "b", ED_F32, ed_shape2(6, 8));
    ed_node *w = ed_input(g, "w", ED_F32, ed_shape2(8, 8));
    static const unary_fn un[] = {ed_tanh, ed_sigmoid, ed_relu, ed_neg, ed_abs, ed_silu, ed_square, ed_exp};
    static const binary_fn bin[] = {ed_add, ed_sub, ed_mul, ed_maximum};
    static const int perm10[2] = {1, 0};
    int nops = 10 + pick(30);
    for (int i = 0; i < nops && np < 48; i++) {
        ed_node *x = pool[pick(np)], *y = pool[pick(np)];
        ed_node *r;
        switch (pick(10)) {
        case 0:
        case 1: r = un[pick(8)](x); break;
        case 2:
        case 3: r = bin[pick(4)](x, y); break;
        case 4: r = ed_add(x, ed_sum(y, 1, true)); break; /* broadcast */
        case 5: r = ed_matmul(x, w); break;
        case 6: r = ed_transpose(ed_transpose(ed_tanh(x), perm10), perm10); break;
        case 7: r = ed_mul(x, ed_randn(g, ED_F32, ed_shape2(6, 8))); break;
        case 8:
            r = ed_slice(ed_concat((ed_node *[]){x, y}, 2, 0), (int64_t[]){3, 0}, (int64_t[]){9, 8}, (int64_t[]){1, 1});
            break;
        default: r = ed_add(ed_mul(x, ed_scalar(g, ED_F32, 0.5)), ed_exp(ed_neg(ed_square(y)))); break;
        }
        assert_non_null(r);
        pool[np++] = r;
    }
    for (int i = 2; i < np; i++) {
        if (pick(3) && i != np - 1) continue;
        char name[16];
        snprintf(name, sizeof name, "o%d", i);
        ed_output(g, name, pool[i]);
    }
    if (ed_graph_error(g)) fail_msg("random graph %llu: %s", (unsigned long long)seed, ed_graph_error(g));
    return g;
}

static void test_random_graphs(void **state)
{
    (void)state;
    int64_t arena = 0, buffers = 0;
    int inplace = 0;
    for (uint64_t s = 1; s <= 24; s++) {
        ed_graph *g = random_graph(s);
        char what[64];
        snprintf(what, sizeof what, "random graph %llu", (unsigned long long)s);
        /* the layout itself, on the graph after the default pipeline */
        ed_graph *h = ed_graph_clone(g);
        assert_int_equal(ed_pass_run(h, NULL, NULL), ED_OK); /* fused nodes included */
        ed_node **order = ed_graph_topo(h);
        int64_t *off = malloc((size_t)h->nnodes * sizeof *off);
        for (int mode = ED_ARENA_INPLACE; mode <= ED_ARENA_SEPARATE; mode++) {
            assert_true(ed_arena_plan_mode(h, order, (ed_arena_mode)mode, off, NULL) >= 0);
            check_layout(h, order, off);
        }
        free(order);
        free(off);
        ed_graph_free(h);
        ed_arena_stats m = check_planned(g, 2e-6, 2, what);
        arena += m.arena_bytes;
        buffers += m.buffer_bytes;
        inplace += m.inplace;
        ed_graph_free(g);
    }
    print_message("random graphs: arena %lld bytes, buffers %lld, %d in place\n", (long long)arena, (long long)buffers,
                  inplace);
    assert_true(arena < buffers);
    assert_true(inplace > 0);
}

/* An MLP training step (Adam, clipping, EMA): planned JIT against the interpreter and
 * against the unplanned JIT over several steps, and an arena well under the sum. */
static void test_training_step(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("mlp_train");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(64, 3));
    ed_node *t = ed_input(g, "t", ED_F32, ed_shape2(64, 2));
    int64_t sizes[3] = {32, 32, 2};
    ed_node *y = ed_mlp(x, "mlp", sizes, 3, ED_ACT_SILU, false);
    ed_node *noise = ed_mul(ed_randn(g, ED_F32, ed_shape2(64, 2)), ed_scalar(g, ED_F32, 0.01));
    ed_node *loss = ed_mean(ed_square(ed_sub(ed_add(y, noise), t)), ED_ALL_AXES, false);
    ed_train_opts o = {.optim = {.kind = ED_OPT_ADAM, .lr = 1e-2, .clip_norm = 1.0}, .ema_decay = 0.9};
    assert_int_equal(ed_train_step(g, loss, &o), ED_OK);
    ed_arena_stats m = check_planned(g, 1e-4, 5, "MLP training step");
    print_message("MLP training step: arena %lld bytes, buffers %lld, peak %lld, %d in place\n",
                  (long long)m.arena_bytes, (long long)m.buffer_bytes, (long long)m.peak_bytes, m.inplace);
    assert_true(m.arena_bytes * 2 < m.buffer_bytes);
    assert_true(m.inplace > 10);
    assert_int_equal(m.in_store, 3 * 6 + 6); /* each param, its two Adam moments and its EMA */
    ed_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reorder_refuses_bad_orders),
        cmocka_unit_test(test_plan_pass_lowers_peak),
        cmocka_unit_test(test_inplace_chain),
        cmocka_unit_test(test_inplace_kernel_ir),
        cmocka_unit_test(test_outputs_updates_consts_intact),
        cmocka_unit_test(test_updates_into_store),
        cmocka_unit_test(test_feed_aliasing_store_update),
        cmocka_unit_test(test_random_graphs),
        cmocka_unit_test(test_training_step),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
