/* The fuse pass and the fused op (its golden outputs are files in tests/ir, whose
 * inputs are checked here to be what the constructors build): text round trips of
 * pass-made graphs, meaning (the interpreter before and after fusion agree bit for bit,
 * as do the JIT before and after; the JIT against the interpreter within the f32 math
 * bounds) on seeded random graphs and training steps, the limits of a fused node,
 * values bound to out/update staying materialized, autodiff refusing fused nodes,
 * and the W1 training step's kernel count. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "frontend/loop.h"
#include "frontend/nn.h"
#include "ir/text.h"
#include "passes/autodiff.h"
#include "passes/pass.h"
#include "models/train_step.h"
#include "support/interp_check.h"
#include "support/run_check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NO_FUSE "simplify,fold,cse,dce,plan"

typedef struct {
    ed_backend backend;
    const char *passes;
} config;

/* Run g under each config for `calls` calls (own store, seed 3, program seed 5) and
 * compare every output and store value with config 0's: within tol[k] for config k.
 * Returns the kernel count of config `count_of`. */
static int check_configs(const ed_graph *g, const config *cf, const double *tol, int ncf, int calls, const char *what,
                         int count_of)
{
    random_feeds fd;
    random_feeds_make(g, -1.5, 1.5, &fd);
    assert_true(ncf <= PROGRAMS_MAX);
    ed_compile_opts opts[PROGRAMS_MAX];
    for (int k = 0; k < ncf; k++)
        opts[k] = (ed_compile_opts){.backend = cf[k].backend, .seed = 5, .passes = cf[k].passes};
    program_set ps;
    programs_compile(&ps, g, opts, ncf, what);
    int kernels = ed_program_compile_stats(ps.p[count_of]).kernels;
    for (int c = 0; c < calls; c++) {
        programs_run(&ps, &fd, what);
        for (int k = 1; k < ncf; k++) programs_check_outputs(&ps, 0, k, check_tensors_agree, tol[k], what, c);
    }
    for (int k = 1; k < ncf; k++) programs_check_stores(&ps, 0, k, check_tensors_agree, tol[k], what);
    programs_free(&ps);
    random_feeds_free(&fd);
    return kernels;
}

/* The interpreter and the JIT, each without and with fuse: interp before/after and JIT
 * before/after bit for bit, JIT against interp within tol. Returns the fused JIT's
 * kernel count. */
static int check_fusion(const ed_graph *g, double tol, int calls, const char *what)
{
    const config interp[2] = {{ED_BACKEND_INTERP, NO_FUSE}, {ED_BACKEND_INTERP, NULL}};
    check_configs(g, interp, (const double[]){0, 0}, 2, calls, what, 1);
    const config jit[3] = {{ED_BACKEND_JIT, NO_FUSE}, {ED_BACKEND_JIT, NULL}, {ED_BACKEND_INTERP, ""}};
    return check_configs(g, jit, (const double[]){0, 0, tol}, 3, calls, what, 1);
}

/* check_fusion over two calls, adding the kernels of g without fuse (interpreter) and
 * with it (JIT) to the counters of a random-graph test. */
static void count_fusion(const ed_graph *g, double tol, const char *what, int *unfused, int *fused)
{
    *fused += check_fusion(g, tol, 2, what);
    const config one[1] = {{ED_BACKEND_INTERP, NO_FUSE}};
    *unfused += check_configs(g, one, (const double[]){0}, 1, 0, what, 0);
}

static ed_graph *parse(const char *text)
{
    ed_graph *g = ed_graph_parse(text, "test");
    if (!g) fail_msg("parse: %s", ed_last_error());
    return g;
}

/* A copy of g after the default pipeline, verified after every pass. On a failure the
 * input graph is printed, to reproduce it with `edifice opt`. */
static ed_graph *passed(const ed_graph *g)
{
    ed_graph *h = ed_graph_clone(g);
    assert_non_null(h);
    if (ed_pass_run(h, NULL, &(ed_pass_opts){.verify = ED_VERIFY_ON}) != ED_OK) {
        char *text = ed_graph_print(g);
        fprintf(stderr, "%s\n", text ? text : "");
        free(text);
        fail_msg("passes: %s", ed_last_error());
    }
    return h;
}

/* h prints, parses back and prints again byte for byte (fused bodies included). */
static void assert_round_trips(const ed_graph *h)
{
    char *text = ed_graph_print(h);
    ed_graph *back = parse(text);
    char *again = ed_graph_print(back);
    assert_string_equal(again, text);
    free(text), free(again);
    ed_graph_free(back);
}

static int count_op(const ed_graph *g, ed_op op)
{
    int n = 0;
    for (int i = 0; i < g->nnodes; i++) n += g->nodes[i]->op == op;
    return n;
}

/* ---- goldens and text ------------------------------------------------------------- */

/* The input graphs of the fuse goldens in tests/ir, read from there. */
static ed_graph *golden_input(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/tests/ir/%s.edir", ED_SOURCE_DIR, name);
    ed_graph *g = ed_graph_read_file(path);
    if (!g) fail_msg("%s", ed_last_error());
    return g;
}

/* The chain of tests/ir/fuse_chain_with_broadcast.edir after fuse prints back byte for
 * byte. */
static void test_chain_with_broadcast_round_trips(void **state)
{
    (void)state;
    ed_graph *g = golden_input("fuse_chain_with_broadcast");
    assert_int_equal(ed_pass_run(g, "fuse", &(ed_pass_opts){.verify = ED_VERIFY_ON}), ED_OK);
    assert_int_equal(count_op(g, ED_OP_FUSED), 1);
    assert_round_trips(g);
    ed_graph_free(g);
}

static void test_parse_errors(void **state)
{
    (void)state;
    const char *bad = "graph @g {\n  %x = input \"x\" : f32[2]\n"
                      "  %f = fused %x graph @b {\n    %0 = input \"x0\" : f32[2]\n"
                      "    %1 = exp %0 : f32[2]\n    %2 = argmax %1 {axes=[0], keepdims=false} : i32[]\n"
                      "    out y = %2\n  } : i32[]\n  out y = %f\n}\n";
    assert_null(ed_graph_parse(bad, "bad"));
    CHECK_ERROR_HAS("only elementwise ops, broadcast_to, splat consts and one sum, mean, max or min");
    const char *two = "graph @g {\n  %x = input \"x\" : f32[2,3]\n"
                      "  %f = fused %x graph @b {\n    %0 = input \"x0\" : f32[2,3]\n"
                      "    %1 = sum %0 {axes=[1], keepdims=true} : f32[2,1]\n"
                      "    %2 = max %1 {axes=[0], keepdims=true} : f32[1,1]\n"
                      "    out y = %2\n  } : f32[1,1]\n  out y = %f\n}\n";
    assert_null(ed_graph_parse(two, "bad"));
    CHECK_ERROR_HAS("body @b has two reductions (%1 and %2), at most one");
    /* the result is neither per group nor per element of the reduced operand */
    const char *other = "graph @g {\n  %x = input \"x\" : f32[2,3]\n  %z = input \"z\" : f32[4,2,3]\n"
                        "  %f = fused %x, %z graph @b {\n    %0 = input \"x0\" : f32[2,3]\n"
                        "    %1 = input \"x1\" : f32[4,2,3]\n"
                        "    %2 = sum %0 {axes=[1], keepdims=true} : f32[2,1]\n"
                        "    %3 = add %1, %2 : f32[4,2,3]\n"
                        "    out y = %3\n  } : f32[4,2,3]\n  out y = %f\n}\n";
    assert_null(ed_graph_parse(other, "bad"));
    CHECK_ERROR_HAS(
        "result f32[4,2,3] has neither the shape of its reduction f32[2,1] nor that of the reduced operand");
    /* nor a result that the reduction broadcasts to but larger than its operand */
    const char *wide = "graph @g {\n  %x = input \"x\" : f32[3]\n  %z = input \"z\" : f32[2,3]\n"
                       "  %f = fused %x, %z graph @b {\n    %0 = input \"x0\" : f32[3]\n"
                       "    %1 = input \"x1\" : f32[2,3]\n"
                       "    %2 = sum %0 {axes=[0], keepdims=true} : f32[1]\n"
                       "    %3 = add %1, %2 : f32[2,3]\n"
                       "    %4 = mul %3, %1 : f32[2,3]\n"
                       "    out y = %4\n  } : f32[2,3]\n  out y = %f\n}\n";
    assert_null(ed_graph_parse(wide, "bad"));
    CHECK_ERROR_HAS("neither the shape of its reduction f32[1] nor that of the reduced operand");
    const char *wrong_type = "graph @g {\n  %x = input \"x\" : f32[2]\n"
                             "  %f = fused %x graph @b {\n    %0 = input \"x0\" : f32[3]\n"
                             "    %1 = exp %0 : f32[3]\n    out y = %1\n  } : f32[3]\n  out y = %f\n}\n";
    assert_null(ed_graph_parse(wrong_type, "bad"));
    CHECK_ERROR_HAS("input 0 is f32[2] but the body's input \"x0\" is f32[3]");
}

/* ---- meaning ------------------------------------------------------------------------- */

typedef ed_node *(*unary_fn)(ed_node *);
typedef ed_node *(*binary_fn)(ed_node *, ed_node *);

/* Elementwise chains over f32[6,8] with broadcast operands ([8], [6,1]), splat consts,
 * broadcast_to, comparisons, where and casts, broken by reductions and matmuls, with
 * some intermediates bound to out. */
static int random_ops(ed_graph *g, ed_node **pool, int np, ed_node *row, ed_node *col, ed_node *w, ed_node *k)
{
    static const unary_fn un[] = {ed_tanh, ed_sigmoid, ed_relu, ed_neg, ed_abs,
                                  ed_silu, ed_square,  ed_exp,  ed_sin, ed_softplus};
    static const binary_fn bin[] = {ed_add, ed_sub, ed_mul, ed_maximum, ed_minimum};
    int nops = 12 + pick(30);
    for (int i = 0; i < nops && np < 64; i++) {
        ed_node *x = pool[pick(np)], *y = pool[pick(np)], *r;
        switch (pick(12)) {
        case 0:
        case 1:
        case 2: r = un[pick(10)](x); break;
        case 3:
        case 4: r = bin[pick(5)](x, y); break;
        case 5: r = bin[pick(5)](x, pick(2) ? row : col); break;
        case 6: r = ed_add(x, ed_broadcast_to(pick(2) ? row : col, ed_shape2(6, 8))); break;
        case 7: r = ed_mul(ed_add(x, ed_scalar(g, ED_F32, 0.25)), ed_scalar(g, ED_F32, -1.5)); break;
        case 8: r = ed_where(ed_gt(x, y), ed_tanh(x), ed_mul(y, ed_scalar(g, ED_F32, 0.5))); break;
        case 9: r = ed_add(x, ed_cast(ed_add(k, ed_cast(ed_mul(y, ed_scalar(g, ED_F32, 2)), ED_I32)), ED_F32)); break;
        case 10: r = ed_sub(x, ed_mean(x, 2, true)); break; /* a reduction breaks the chain */
        default: r = ed_matmul(ed_tanh(x), w); break;
        }
        assert_non_null(r);
        pool[np++] = r;
    }
    return np;
}

/* The last value of pool and some of the others from pool[2] on (pick(skip) drops
 * one) become outputs o<i>; the graph must have no error. */
static ed_graph *with_random_outputs(ed_graph *g, ed_node **pool, int np, int skip, uint64_t seed)
{
    for (int i = 2; i < np; i++) {
        if (pick(skip) && i != np - 1) continue;
        char name[16];
        snprintf(name, sizeof name, "o%d", i);
        ed_output(g, name, pool[i]);
    }
    if (ed_graph_error(g)) fail_msg("random graph %llu: %s", (unsigned long long)seed, ed_graph_error(g));
    return g;
}

static ed_graph *random_graph(uint64_t seed)
{
    rng_seed(seed * 2654435761u + 3);
    ed_graph *g = ed_graph_new("random");
    ed_node *pool[64];
    int np = 0;
    pool[np++] = ed_input(g, "a", ED_F32, ed_shape2(6, 8));
    pool[np++] = ed_input(g, "b", ED_F32, ed_shape2(6, 8));
    ed_node *row = ed_input(g, "row", ED_F32, ed_shape1(8));
    ed_node *col = ed_input(g, "col", ED_F32, ed_shape2(6, 1));
    ed_node *w = ed_input(g, "w", ED_F32, ed_shape2(8, 8));
    ed_node *k = ed_input(g, "k", ED_I32, ed_shape2(6, 8));
    np = random_ops(g, pool, np, row, col, w, k);
    return with_random_outputs(g, pool, np, 4, seed);
}

static void test_random_graphs(void **state)
{
    (void)state;
    int fused = 0, unfused_kernels = 0, fused_kernels = 0;
    for (uint64_t s = 1; s <= 30; s++) {
        ed_graph *g = random_graph(s);
        char what[64];
        snprintf(what, sizeof what, "random graph %llu", (unsigned long long)s);
        /* the fused graph verifies and prints back byte for byte */
        ed_graph *h = passed(g);
        fused += count_op(h, ED_OP_FUSED);
        for (int i = 0; i < h->nnodes; i++)
            if (h->nodes[i]->op == ED_OP_FUSED) assert_true(h->nodes[i]->nin <= ED_FUSED_MAX_INPUTS);
        assert_round_trips(h);
        ed_graph_free(h);
        count_fusion(g, 2e-6, what, &unfused_kernels, &fused_kernels);
        ed_graph_free(g);
    }
    print_message("random graphs: %d fused nodes, kernels %d -> %d\n", fused, unfused_kernels, fused_kernels);
    assert_true(fused >= 30);
    assert_true(fused_kernels < unfused_kernels);
}

/* The random graphs without simplify, so their broadcast_to nodes (read by several
 * groups, by matmuls) reach fuse: copied into groups and split per reader, with the
 * same bits on each backend as without fuse. */
static void test_random_graphs_keep_broadcasts(void **state)
{
    (void)state;
    int broadcasts = 0;
    for (uint64_t s = 1; s <= 15; s++) {
        ed_graph *g = random_graph(s);
        broadcasts += count_op(g, ED_OP_BROADCAST_TO);
        char what[64];
        snprintf(what, sizeof what, "random graph %llu without simplify", (unsigned long long)s);
        const config interp[2] = {{ED_BACKEND_INTERP, "cse,dce"}, {ED_BACKEND_INTERP, "cse,dce,fuse,plan"}};
        check_configs(g, interp, (const double[]){0, 0}, 2, 1, what, 1);
        const config jit[2] = {{ED_BACKEND_JIT, "cse,dce"}, {ED_BACKEND_JIT, "cse,dce,fuse,plan"}};
        check_configs(g, jit, (const double[]){0, 0}, 2, 1, what, 1);
        ed_graph_free(g);
    }
    assert_true(broadcasts >= 5);
}

/* The same chains as the body of a 3-trip loop: a carried (tanh of the last value),
 * the other operands captured, a randn in the body, some values stacked. */
static ed_graph *random_loop_graph(uint64_t seed)
{
    rng_seed(seed * 2654435761u + 7);
    ed_graph *g = ed_graph_new("random_loop");
    ed_loop_builder *lb = ed_loop_begin(g, 3);
    ed_graph *body = ed_loop_body(lb);
    ed_node *pool[64];
    int np = 0;
    pool[np++] = ed_loop_carried(lb, ed_input(g, "a", ED_F32, ed_shape2(6, 8)));
    pool[np++] = ed_loop_capture(lb, ed_input(g, "b", ED_F32, ed_shape2(6, 8)));
    ed_node *row = ed_loop_capture(lb, ed_input(g, "row", ED_F32, ed_shape1(8)));
    ed_node *col = ed_loop_capture(lb, ed_input(g, "col", ED_F32, ed_shape2(6, 1)));
    ed_node *w = ed_loop_capture(lb, ed_input(g, "w", ED_F32, ed_shape2(8, 8)));
    ed_node *k = ed_loop_capture(lb, ed_input(g, "k", ED_I32, ed_shape2(6, 8)));
    pool[np++] = ed_mul_scalar(ed_randn(body, ED_F32, ed_shape2(6, 8)), 0.5);
    np = random_ops(body, pool, np, row, col, w, k);
    ed_node *next = ed_tanh(pool[np - 1]), *stacked[64];
    int ns = 0;
    for (int i = 3; i < np; i++)
        if (!pick(4) || i == np - 1) stacked[ns++] = pool[i];
    ed_node *loop = ed_loop_end(lb, &next, 1, stacked, ns);
    for (int i = 0; loop && i <= ns; i++) {
        char name[16];
        snprintf(name, sizeof name, "r%d", i);
        ed_output(g, name, ed_loop_result(loop, i));
    }
    if (ed_graph_error(g)) fail_msg("random loop graph %llu: %s", (unsigned long long)seed, ed_graph_error(g));
    return g;
}

static int count_fused_in_bodies(const ed_graph *g)
{
    int n = 0;
    for (int i = 0; i < g->nnodes; i++)
        if (g->nodes[i]->op == ED_OP_LOOP) n += count_op(g->nodes[i]->attr.body, ED_OP_FUSED);
    return n;
}

/* Loop bodies are fused by the default pipeline (the pass manager runs it inside
 * them), with the same guarantees as outer graphs: interpreter and JIT each give the
 * same bits with and without fuse, and agree with each other within the tolerance of
 * the inline math and sgemm compounded over 3 trips. */
static void test_random_loop_bodies(void **state)
{
    (void)state;
    int fused = 0, unfused_kernels = 0, fused_kernels = 0;
    for (uint64_t s = 1; s <= 20; s++) {
        ed_graph *g = random_loop_graph(s);
        char what[64];
        snprintf(what, sizeof what, "random loop graph %llu", (unsigned long long)s);
        ed_graph *h = passed(g);
        fused += count_fused_in_bodies(h);
        /* fused nodes inside a loop body print and parse back byte for byte */
        assert_round_trips(h);
        ed_graph_free(h);
        fused_kernels += check_fusion(g, 1e-4, 2, what);
        const config jit_unfused[1] = {{ED_BACKEND_JIT, NO_FUSE}};
        unfused_kernels += check_configs(g, jit_unfused, (const double[]){0}, 1, 0, what, 0);
        ed_graph_free(g);
    }
    print_message("random loop bodies: %d fused nodes, kernels %d -> %d\n", fused, unfused_kernels, fused_kernels);
    assert_true(fused >= 20);
    assert_true(fused_kernels < unfused_kernels);
}

/* ---- reductions ------------------------------------------------------------------------ */

static int count_kernels(const ed_graph *g)
{
    int n = 0;
    for (int i = 0; i < g->nnodes; i++) n += ed_ops[g->nodes[i]->op].kind != ED_KIND_LEAF;
    return n;
}

/* Fused nodes whose body holds a reduction: all, and those that are row kernels. */
static int count_fused_reductions(const ed_graph *g, int *rows)
{
    int n = 0;
    for (int i = 0; i < g->nnodes; i++) {
        const ed_node *x = g->nodes[i];
        if (x->op != ED_OP_FUSED || !ed_fused_reduction(x->attr.body)) continue;
        n++;
        if (rows) *rows += ed_fused_row_kernel(x);
    }
    return n;
}

/* A graph as its constructors build it (ed_softmax, ...) is the input of the golden
 * tests/ir/<golden>.edir; after the pipeline there it prints back byte for byte and
 * means what it meant. */
static void check_golden_graph(ed_graph *g, const char *golden, double tol)
{
    ed_graph *in = golden_input(golden);
    char *built = ed_graph_print(g), *read = ed_graph_print(in);
    if (strcmp(built, read) != 0) fail_msg("tests/ir/%s.edir does not hold the graph built here:\n%s", golden, built);
    free(built), free(read);
    ed_graph_free(in);
    ed_graph *h = ed_graph_clone(g);
    assert_non_null(h);
    assert_int_equal(ed_pass_run(h, "simplify,fold,cse,dce,fuse", &(ed_pass_opts){.verify = ED_VERIFY_ON}), ED_OK);
    assert_round_trips(h);
    ed_graph_free(h);
    check_fusion(g, tol, 2, g->name);
}

/* The kernels of softmax, logsumexp, MSE, layer norm and log-softmax (over the last
 * axis and axis 0) are golden files in tests/ir (fuse_softmax_two_kernels.edir, ...). */
static void test_softmax(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("softmax");
    ed_output(g, "y", ed_softmax(ed_input(g, "x", ED_F32, ed_shape2(5, 7)), -1));
    check_golden_graph(g, "fuse_softmax_two_kernels", 2e-6);
    ed_graph_free(g);
}

static void test_logsumexp(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("logsumexp");
    ed_output(g, "y", ed_logsumexp(ed_input(g, "x", ED_F64, ed_shape3(3, 5, 4)), 1, true));
    check_golden_graph(g, "fuse_logsumexp_two_kernels", 1e-12);
    ed_graph_free(g);
}

static void test_mse(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("mse");
    ed_node *a = ed_input(g, "a", ED_F32, ed_shape2(9, 5)), *b = ed_input(g, "b", ED_F32, ed_shape2(9, 5));
    ed_output(g, "y", ed_mean(ed_square(ed_sub(a, b)), ED_ALL_AXES, false));
    check_golden_graph(g, "fuse_mse_one_kernel", 2e-6);
    ed_graph_free(g);
}

static void test_layer_norm(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("layer_norm");
    ed_output(g, "y", ed_layer_norm(ed_input(g, "x", ED_F32, ed_shape3(2, 3, 7)), "ln", 1e-5, true));
    check_golden_graph(g, "fuse_layer_norm_two_kernels", 2e-6);
    ed_graph_free(g);
}

static void test_log_softmax(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("log_softmax");
    ed_output(g, "y", ed_log_softmax(ed_input(g, "x", ED_F32, ed_shape2(5, 7)), -1));
    check_golden_graph(g, "fuse_log_softmax_two_kernels", 2e-6);
    ed_graph_free(g);
    g = ed_graph_new("log_softmax_axis0");
    ed_output(g, "y", ed_log_softmax(ed_input(g, "x", ED_F32, ed_shape2(5, 7)), 0));
    check_golden_graph(g, "fuse_log_softmax_axis0_two_kernels", 2e-6);
    ed_graph_free(g);
}

/* A chain read by an elementwise group and by a reduction (Adam's second moment and
 * the global norm both read a gradient's square) is recomputed in the reduction's
 * group rather than stored: two kernels, both reading the gradient itself. A chain
 * bound to out stays stored and is read. */
static void test_recompute_into_reduction(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("adam_norm");
    ed_node *grad = ed_input(g, "grad", ED_F32, ed_shape2(17, 9));
    ed_node *v = ed_state(g, "v", ED_F32, ed_shape2(17, 9), (ed_init){ED_INIT_ONES, 0});
    ed_node *sq = ed_square(ed_mul(grad, ed_scalar(g, ED_F32, 0.5)));
    ed_update(g, "v", ed_add(ed_mul(v, ed_scalar(g, ED_F32, 0.9)), ed_mul(sq, ed_scalar(g, ED_F32, 0.1))));
    ed_output(g, "norm", ed_sqrt(ed_sum(sq, ED_ALL_AXES, false)));
    ed_graph *h = ed_graph_clone(g);
    assert_int_equal(ed_pass_run(h, "fuse", &(ed_pass_opts){.verify = ED_VERIFY_ON}), ED_OK);
    assert_int_equal(count_kernels(h), 2);
    assert_int_equal(count_op(h, ED_OP_SQUARE), 0);
    const ed_node *hv = ed_graph_update(h, "v"), *hn = ed_graph_output(h, "norm");
    assert_int_equal(hv->op, ED_OP_FUSED);
    assert_int_equal(hn->op, ED_OP_FUSED);
    assert_non_null(ed_fused_reduction(hn->attr.body));
    const ed_node *hgrad = ed_graph_leaf(h, ED_OP_INPUT, "grad");
    assert_true(hn->nin == 1 && hn->in[0] == hgrad);
    assert_true(hv->in[0] == hgrad || hv->in[1] == hgrad);
    ed_graph_free(h);
    check_fusion(g, 2e-6, 3, "recompute into a reduction");
    /* bound to out, the square is stored once and both read it */
    ed_output(g, "sq", sq);
    h = ed_graph_clone(g);
    assert_int_equal(ed_pass_run(h, "fuse", &(ed_pass_opts){.verify = ED_VERIFY_ON}), ED_OK);
    assert_int_equal(count_kernels(h), 3);
    assert_ptr_equal(ed_graph_output(h, "norm")->in[0], ed_graph_output(h, "sq"));
    ed_graph_free(h);
    check_fusion(g, 2e-6, 2, "stored chain read by a reduction");
    ed_graph_free(g);
}

/* What is not recomputed: a chain with a transcendental (it would leave its vectorized
 * kernel for the reduction's sequential loop), and a cheap chain read by a reduction
 * down columns (its inputs would be read strided). Both stay stored and are read. */
static void test_no_costly_recompute(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("no_recompute");
    ed_node *a = ed_input(g, "a", ED_F32, ed_shape2(16, 9)), *b = ed_input(g, "b", ED_F32, ed_shape2(16, 9));
    ed_node *w = ed_input(g, "w", ED_F32, ed_shape2(9, 4));
    ed_node *costly = ed_mul(ed_sigmoid(a), b), *cheap = ed_mul(ed_add(a, b), b);
    ed_output(g, "mc", ed_matmul(costly, w));
    ed_output(g, "sc", ed_sum(costly, 2, true)); /* rows: contiguous, but sigmoid */
    ed_output(g, "mp", ed_matmul(cheap, w));
    ed_output(g, "sp", ed_sum(cheap, 1, true)); /* columns */
    ed_graph *h = ed_graph_clone(g);
    assert_int_equal(ed_pass_run(h, "fuse", &(ed_pass_opts){.verify = ED_VERIFY_ON}), ED_OK);
    const ed_node *mc = ed_graph_output(h, "mc"), *sc = ed_graph_output(h, "sc");
    const ed_node *mp = ed_graph_output(h, "mp"), *sp = ed_graph_output(h, "sp");
    assert_int_equal(sc->op, ED_OP_SUM);
    assert_ptr_equal(sc->in[0], mc->in[0]);
    assert_int_equal(sp->op, ED_OP_SUM);
    assert_ptr_equal(sp->in[0], mp->in[0]);
    assert_int_equal(count_kernels(h), 6); /* two fused chains, two matmuls, two sums */
    ed_graph_free(h);
    check_fusion(g, 2e-6, 1, "no costly recompute");
    ed_graph_free(g);
}

/* A broadcast_to read by two groups is copied into each (not stored: the golden
 * tests/ir/fuse_broadcast_into_readers.edir); one read by two concats is split, a copy
 * each, so neither keeps the full-size value alive for the other. */
static void test_broadcast_into_readers(void **state)
{
    (void)state;
    ed_graph *g = golden_input("fuse_broadcast_into_readers");
    check_fusion(g, 2e-6, 1, "broadcast read by two groups");
    ed_graph_free(g);

    /* two concats (not groups) read it: each gets its own copy, just before it */
    g = ed_graph_new("split");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(5, 2)), *t = ed_input(g, "t", ED_F32, ed_shape2(1, 3));
    ed_node *w = ed_input(g, "w", ED_F32, ed_shape2(5, 5));
    ed_node *bt = ed_broadcast_to(ed_tanh(t), ed_shape2(5, 3));
    ed_node *h1 = ed_tanh(ed_matmul(ed_concat((ed_node *[]){x, bt}, 2, 1), w));
    ed_node *h2 = ed_matmul(ed_concat((ed_node *[]){ed_slice_axis(h1, 1, 0, 2), bt}, 2, 1), w);
    ed_output(g, "y", h2);
    ed_graph *h = passed(g);
    assert_int_equal(count_op(h, ED_OP_BROADCAST_TO), 2);
    for (int i = 0; i < h->nnodes; i++) {
        const ed_node *n = h->nodes[i];
        if (n->op != ED_OP_BROADCAST_TO) continue;
        const ed_node *next = h->nodes[i + 1]; /* its one reader, right after it */
        assert_int_equal(next->op, ED_OP_CONCAT);
        assert_ptr_equal(next->in[1], n);
    }
    ed_graph_free(h);
    check_fusion(g, 2e-6, 1, "broadcast read by two concats");
    ed_graph_free(g);
}

/* A dense layer silu(x @ W + b): forward only, the sgemm and one fused pass per layer;
 * in a training step too, the backward group recomputing x @ W + b from the sgemm's
 * output, so the bias add is never a kernel of its own. */
static void test_dense_bias_activation(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("dense");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(16, 5));
    const int64_t sizes[3] = {12, 12, 3};
    ed_node *y = ed_mlp(x, "mlp", sizes, 3, ED_ACT_SILU, false);
    ed_output(g, "y", y);
    ed_graph *h = passed(g);
    /* 3 sgemms, a fused add + silu for each hidden layer, the last bias add */
    assert_int_equal(count_kernels(h), 6);
    assert_int_equal(count_op(h, ED_OP_MATMUL), 3);
    assert_int_equal(count_op(h, ED_OP_FUSED), 2);
    assert_int_equal(count_op(h, ED_OP_SILU), 0);
    for (int i = 0; i < h->nnodes; i++)
        if (h->nodes[i]->op == ED_OP_FUSED) assert_int_equal(h->nodes[i]->in[0]->op, ED_OP_MATMUL);
    ed_graph_free(h);
    check_fusion(g, 2e-6, 1, "dense + silu forward");
    ed_graph_free(g);

    g = ed_graph_new("dense_train");
    x = ed_input(g, "x", ED_F32, ed_shape2(16, 5));
    ed_node *target = ed_input(g, "target", ED_F32, ed_shape2(16, 3));
    y = ed_mlp(x, "mlp", sizes, 3, ED_ACT_SILU, false);
    ed_node *loss = ed_mean(ed_square(ed_sub(y, target)), ED_ALL_AXES, false);
    assert_int_equal(ed_train_step(g, loss, &(ed_train_opts){.optim = {.kind = ED_OPT_SGD, .lr = 1e-2}}), ED_OK);
    h = passed(g);
    /* no pre-activation [16, 12] is stored: every elementwise [16, 12] value is a fused
     * node reading a matmul (the forward silu(mm + b), the backward group) */
    int readers = 0;
    for (int i = 0; i < h->nnodes; i++) {
        const ed_node *n = h->nodes[i];
        if (ed_ops[n->op].kind != ED_KIND_ELEM || n->shape.rank != 2 || n->shape.dim[1] != 12) continue;
        fail_msg("a [16, 12] %s is stored", ed_ops[n->op].name);
    }
    for (int i = 0; i < h->nnodes; i++) {
        const ed_node *n = h->nodes[i];
        if (n->op == ED_OP_FUSED && n->shape.rank == 2 && n->shape.dim[1] == 12 && n->in[0]->op == ED_OP_MATMUL)
            readers++;
    }
    assert_true(readers >= 4); /* two layers, forward and backward */
    int k = count_kernels(h);
    print_message("dense + silu training step: %d kernels\n", k);
    assert_true(k <= 33); /* 35 with the bias adds stored */
    ed_graph_free(h);
    check_fusion(g, 1e-5, 3, "dense + silu training step");
    ed_graph_free(g);
}

/* What readers do not recompute: a chain with a transcendental (sigmoid), and a cheap
 * chain of two full-size inputs (each reader would read both in place of one). Both
 * stay stored, one kernel each, read by both groups. */
static void test_no_costly_copy_into_readers(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("no_copy");
    ed_node *a = ed_input(g, "a", ED_F32, ed_shape2(7, 9)), *b = ed_input(g, "b", ED_F32, ed_shape2(7, 9));
    ed_node *c = ed_input(g, "c", ED_F32, ed_shape1(9));
    ed_node *costly = ed_mul(ed_sigmoid(a), c), *wide = ed_add(a, b);
    ed_output(g, "c1", ed_tanh(costly));
    ed_output(g, "c2", ed_exp(ed_mul(costly, b)));
    ed_output(g, "w1", ed_tanh(wide));
    ed_output(g, "w2", ed_exp(ed_mul(wide, b)));
    ed_graph *h = ed_graph_clone(g);
    assert_int_equal(ed_pass_run(h, "fuse", &(ed_pass_opts){.verify = ED_VERIFY_ON}), ED_OK);
    assert_int_equal(count_op(h, ED_OP_SIGMOID), 0); /* in one fused node ... */
    assert_int_equal(count_op(h, ED_OP_ADD), 1);     /* a + b stays one kernel */
    const ed_node *c1 = ed_graph_output(h, "c1"), *c2 = ed_graph_output(h, "c2");
    const ed_node *w1 = ed_graph_output(h, "w1"), *w2 = ed_graph_output(h, "w2");
    assert_ptr_equal(c1->in[0], c2->in[0]); /* ... which both read */
    assert_int_equal(c1->in[0]->op, ED_OP_FUSED);
    assert_int_equal(w1->in[0]->op, ED_OP_ADD);
    assert_true(w2->in[0] == w1->in[0] || w2->in[1] == w1->in[0]);
    assert_int_equal(count_kernels(h), 6);
    ed_graph_free(h);
    check_fusion(g, 2e-6, 1, "no costly copy into readers");
    ed_graph_free(g);
}

/* An epilogue never writes over an input: here v (f32[3], dying at the fused node, of
 * the result's type) is read by every group as the row x * v, so writing group 0's
 * result into v's bytes would change what groups 1 and 2 read. A row kernel may write
 * over its D-shaped input (each group reads only its own elements first). */
static void test_epilogue_not_in_place(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("epilogue_in_place");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(3, 3)), *z = ed_input(g, "z", ED_F32, ed_shape1(3));
    ed_node *v = ed_exp(z);
    ed_output(g, "y", ed_add(ed_sum(ed_mul(x, v), 2, false), v));
    ed_node *d = ed_tanh(x); /* a computed [3,3] input of a row kernel, dying there */
    ed_output(g, "r", ed_sub(d, ed_max(d, 2, true)));
    ed_graph *h = passed(g);
    const ed_node *y = ed_graph_output(h, "y"), *r = ed_graph_output(h, "r");
    assert_int_equal(y->op, ED_OP_FUSED);
    assert_false(ed_fused_row_kernel(y) || ed_fused_inplace_ok(y));
    assert_int_equal(r->op, ED_OP_FUSED);
    assert_true(ed_fused_row_kernel(r) && ed_fused_inplace_ok(r));
    ed_graph_free(h);
    check_fusion(g, 2e-6, 2, "epilogue not in place");
    ed_graph_free(g);
}

/* A reduction read back broadcast along other axes than its groups (square operands
 * make it legal: sum over axis 1 without keepdims, added to rows) is no row kernel:
 * such a body is refused, and the pass stores the reduction instead. Over leading axes
 * without keepdims the broadcast does read each element's group. */
static void test_row_kernel_needs_its_groups(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("transposed_broadcast");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(4, 4)), *y = ed_input(g, "y", ED_F32, ed_shape2(4, 4));
    ed_output(g, "a", ed_add(y, ed_sum(ed_tanh(x), 2, false))); /* r[j] by column: not a row */
    ed_output(g, "b", ed_mul(y, ed_max(ed_exp(x), 1, false)));  /* axis 0: r[j] is column j's group */
    ed_graph *h = passed(g);
    const ed_node *a = ed_graph_output(h, "a"), *b = ed_graph_output(h, "b");
    assert_false(a->op == ED_OP_FUSED && ed_fused_reduction(a->attr.body));
    assert_true(b->op == ED_OP_FUSED && ed_fused_row_kernel(b));
    ed_graph_free(h);
    check_fusion(g, 2e-6, 1, "row kernels and their groups");
    ed_graph_free(g);
    const char *bad = "graph @g {\n  %x = input \"x\" : f32[3,3]\n"
                      "  %f = fused %x graph @b {\n    %0 = input \"x0\" : f32[3,3]\n"
                      "    %1 = sum %0 {axes=[1], keepdims=false} : f32[3]\n"
                      "    %2 = add %0, %1 : f32[3,3]\n"
                      "    out y = %2\n  } : f32[3,3]\n  out y = %f\n}\n";
    assert_null(ed_graph_parse(bad, "bad"));
    CHECK_ERROR_HAS("reduction %1 (f32[3]) broadcast to f32[3,3] does not read each element's own group");
}

/* A fused reduction in text: several axes, keepdims false, an i32 sum; parses, runs
 * (interpreter and JIT) and prints back. */
static void test_text_round_trip(void **state)
{
    (void)state;
    const char *text = "graph @g {\n"
                       "  %0 = input \"x\" : f64[3,4,5]\n"
                       "  %1 = input \"k\" : i32[4]\n"
                       "  %2 = fused %0 graph @a {\n"
                       "    %0 = input \"x0\" : f64[3,4,5]\n"
                       "    %1 = tanh %0 : f64[3,4,5]\n"
                       "    %2 = max %1 {axes=[0, 2], keepdims=false} : f64[4]\n"
                       "    %3 = const 2 : f64[]\n"
                       "    %4 = mul %2, %3 : f64[4] \"twice\"\n"
                       "    out y = %4\n"
                       "  } : f64[4]\n"
                       "  %3 = fused %0, %1 graph @b {\n"
                       "    %0 = input \"x0\" : f64[3,4,5]\n"
                       "    %1 = input \"x1\" : i32[4]\n"
                       "    %2 = cast %0 : i32[3,4,5]\n"
                       "    %3 = sum %2 {axes=[0, 2], keepdims=false} : i32[4]\n"
                       "    %4 = add %3, %1 : i32[4]\n"
                       "    out y = %4\n"
                       "  } : i32[4]\n"
                       "  out m = %2\n"
                       "  out s = %3\n"
                       "}\n";
    ed_graph *g = parse(text);
    char *again = ed_graph_print(g);
    assert_string_equal(again, text);
    free(again);
    /* the fused nodes against the interpreter running them, and the JIT against that */
    const config cf[2] = {{ED_BACKEND_INTERP, ""}, {ED_BACKEND_JIT, ""}};
    check_configs(g, cf, (const double[]){0, 0}, 2, 1, "text round trip", 1);
    ed_graph_free(g);
}

/* Elementwise chains feeding sum/mean/max/min over random axes (odd shapes, size-1
 * axes, a cube, keepdims or not), in f32 or f64, with epilogues on the reduced value, row
 * kernels reading it back broadcast, i32 sums, and intermediates bound to out. */
static ed_graph *random_reduce_graph(uint64_t seed)
{
    rng_seed(seed * 40503u + 11);
    /* a cube: reductions without keepdims broadcast back along any axes */
    static const ed_shape shapes[6] = {{3, {5, 7, 3}}, {4, {3, 1, 4, 5}}, {2, {9, 5}},
                                       {3, {2, 6, 1}}, {3, {4, 4, 4}},    {3, {4, 4, 4}}};
    ed_shape sh = shapes[pick(6)];
    ed_dtype dt = seed % 2 ? ED_F32 : ED_F64;
    ed_graph *g = ed_graph_new("random_reduce");
    ed_node *pool[64];
    int np = 0;
    pool[np++] = ed_input(g, "a", dt, sh);
    pool[np++] = ed_input(g, "b", dt, sh);
    ed_node *last = ed_input(g, "last", dt, ed_shape1(sh.dim[sh.rank - 1]));
    static const unary_fn un[] = {ed_tanh, ed_sigmoid, ed_relu, ed_neg, ed_abs, ed_silu, ed_square, ed_exp, ed_sin};
    static const binary_fn bin[] = {ed_add, ed_sub, ed_mul, ed_maximum, ed_minimum};
    typedef ed_node *(*reduce_fn)(ed_node *, unsigned, bool);
    static const reduce_fn red[] = {ed_sum, ed_mean, ed_max, ed_min};
    int nops = 8 + pick(16), nout = 0;
    for (int i = 0; i < nops && np < 60; i++) {
        ed_node *x = pool[pick(np)], *y = pool[pick(np)], *r = NULL;
        int c = pick(10);
        if (c < 2) r = un[pick(9)](x);
        else if (c < 4) r = bin[pick(5)](x, pick(3) ? y : last);
        else {
            unsigned axes = 1u + (unsigned)pick((1 << sh.rank) - 1);
            bool keep = pick(2) || axes == (1u << sh.rank) - 1; /* all axes: [] broadcasts back too */
            ed_node *operand = pick(2) ? ed_mul(ed_tanh(x), pick(2) ? y : last) : ed_sub(x, y);
            ed_node *m = red[pick(4)](operand, axes, keep);
            if (pick(5) == 0) { /* an i32 sum of a cast */
                m = ed_cast(ed_sum(ed_cast(ed_mul(operand, ed_scalar(g, dt, 3)), ED_I32), axes, keep), dt);
            }
            ed_node *e = ed_exp(ed_neg(ed_abs(m))); /* an epilogue */
            int how = pick(4);
            ed_shape back;
            bool broadcasts_back = ed_broadcast_shapes(m->shape, sh, &back) && ed_shape_eq(back, sh);
            if (broadcasts_back && !keep && m->shape.rank > 0) how = 3; /* read back along any axes */
            if (how >= 2 && broadcasts_back) {                          /* a row kernel: the group read back */
                r = how == 2 ? ed_div(ed_exp(operand), ed_add(e, ed_scalar(g, dt, 1))) : ed_sub(operand, m);
            } else {
                char name[16];
                snprintf(name, sizeof name, "r%d", nout++);
                ed_output(g, name, how == 0 ? e : ed_add(m, ed_sigmoid(m)));
                continue;
            }
        }
        assert_non_null(r);
        pool[np++] = r;
    }
    return with_random_outputs(g, pool, np, 3, seed);
}

static void test_random_reduction_graphs(void **state)
{
    (void)state;
    int fused = 0, rows = 0, unfused_kernels = 0, fused_kernels = 0;
    for (uint64_t s = 1; s <= 40; s++) {
        ed_graph *g = random_reduce_graph(s);
        char what[64];
        snprintf(what, sizeof what, "random reduction graph %llu", (unsigned long long)s);
        ed_graph *h = passed(g);
        fused += count_fused_reductions(h, &rows);
        assert_round_trips(h);
        ed_graph_free(h);
        count_fusion(g, 1e-5, what, &unfused_kernels, &fused_kernels);
        ed_graph_free(g);
    }
    print_message("random reduction graphs: %d fused reductions (%d row kernels), kernels %d -> %d\n", fused, rows,
                  unfused_kernels, fused_kernels);
    assert_true(fused >= 40);
    assert_true(rows >= 10);
    assert_true(fused_kernels < unfused_kernels);
}

/* Row kernels whose phase 2 holds a value smaller than the result (log(s) in
 * log-softmax): a group value read back per element. */
static int count_group_value_rows(const ed_graph *g)
{
    int n = 0;
    for (int i = 0; i < g->nnodes; i++) {
        const ed_node *x = g->nodes[i];
        if (x->op != ED_OP_FUSED || !ed_fused_row_kernel(x)) continue;
        const ed_graph *b = x->attr.body;
        bool p1[ED_FUSED_MAX_NODES], p2[ED_FUSED_MAX_NODES], found = false;
        ed_fused_phases(b, p1, p2);
        for (int k = 0; k < b->nnodes; k++) {
            const ed_node *v = b->nodes[k];
            found = found || (p2[k] && ed_ops[v->op].kind == ED_KIND_ELEM &&
                              ed_shape_numel(v->shape) < ed_shape_numel(x->shape));
        }
        n += found;
    }
    return n;
}

/* A value of a reduction's shape computed from it (log, rsqrt(. + eps), times an input
 * of that shape, exp(-|.|) + 1), read back per element by the reduced operand's shape:
 * odd shapes, keepdims or leading reduced axes, f32 or f64; sometimes bound to out or
 * read elsewhere too (it stays stored), its reduction bound to out (v stays out of
 * the row kernel), two reductions' values in one result (one joins), and on square
 * operands reductions that do not read back (the group value is then refused: it
 * would be read along the wrong axis). */
static ed_graph *random_group_value_graph(uint64_t seed)
{
    rng_seed(seed * 69069u + 5);
    static const ed_shape shapes[6] = {{3, {5, 7, 3}}, {4, {3, 1, 4, 5}}, {2, {9, 5}},
                                       {3, {2, 6, 1}}, {3, {4, 4, 4}},    {2, {4, 4}}};
    ed_shape sh = shapes[pick(6)];
    ed_dtype dt = seed % 2 ? ED_F32 : ED_F64;
    ed_graph *g = ed_graph_new("random_group_value");
    ed_node *pool[16];
    int np = 0, nout = 0;
    pool[np++] = ed_input(g, "a", dt, sh);
    pool[np++] = ed_input(g, "b", dt, sh);
    ed_node *last = ed_input(g, "last", dt, ed_shape1(sh.dim[sh.rank - 1]));
    typedef ed_node *(*reduce_fn)(ed_node *, unsigned, bool);
    static const reduce_fn red[] = {ed_sum, ed_mean, ed_max, ed_min};
    int blocks = 1 + pick(3);
    for (int i = 0; i < blocks; i++) {
        ed_node *x = pool[pick(np)], *y = pool[pick(np)];
        ed_node *operand = pick(2) ? ed_sub(x, y) : ed_mul(ed_tanh(x), y);
        unsigned axes = 1u + (unsigned)pick((1 << sh.rank) - 1);
        bool keep = pick(3) > 0 || axes == (1u << sh.rank) - 1;
        ed_node *m = red[pick(4)](operand, axes, keep), *v = NULL;
        char name[16];
        snprintf(name, sizeof name, "gin%d", i);
        switch (pick(4)) {
        case 0: v = ed_log(ed_add_scalar(ed_abs(m), 1)); break;
        case 1: v = ed_rsqrt(ed_add_scalar(ed_square(m), 1e-3)); break;
        case 2: v = ed_mul(ed_sigmoid(m), ed_input(g, name, dt, m->shape)); break;
        default: v = ed_add_scalar(ed_exp(ed_neg(ed_abs(m))), 1); break;
        }
        if (pick(4) == 0) /* a second reduction's group value: one of the two joins */
            v = ed_add(v, ed_log(ed_add_scalar(ed_abs(ed_max(operand, axes, keep)), 2)));
        ed_shape back;
        if (!ed_broadcast_shapes(v->shape, sh, &back) || !ed_shape_eq(back, sh)) {
            snprintf(name, sizeof name, "r%d", nout++);
            ed_output(g, name, v);
            continue;
        }
        ed_node *r;
        switch (pick(3)) {
        case 0: r = ed_sub(operand, v); break;                          /* log-softmax */
        case 1: r = ed_add(ed_mul(ed_sub(operand, m), v), last); break; /* layer norm */
        default: r = ed_mul(ed_exp(operand), v); break;
        }
        int bind = pick(8);
        if (bind == 0) { /* bound: stays stored */
            snprintf(name, sizeof name, "v%d", i);
            ed_output(g, name, v);
        } else if (bind == 1) { /* read by another group too */
            snprintf(name, sizeof name, "w%d", i);
            ed_output(g, name, ed_mul(v, ed_scalar(g, dt, 3)));
        } else if (bind == 2) { /* the reduction bound: v has no row kernel to join */
            snprintf(name, sizeof name, "m%d", i);
            ed_output(g, name, m);
        }
        if (np < 16) pool[np++] = r;
    }
    return with_random_outputs(g, pool, np, 2, seed);
}

static void test_random_group_values(void **state)
{
    (void)state;
    int rows = 0, unfused_kernels = 0, fused_kernels = 0;
    for (uint64_t s = 1; s <= 40; s++) {
        ed_graph *g = random_group_value_graph(s);
        char what[64];
        snprintf(what, sizeof what, "random group value graph %llu", (unsigned long long)s);
        ed_graph *h = passed(g);
        rows += count_group_value_rows(h);
        assert_round_trips(h);
        ed_graph_free(h);
        count_fusion(g, 1e-5, what, &unfused_kernels, &fused_kernels);
        ed_graph_free(g);
    }
    print_message("random group value graphs: %d row kernels with group values, kernels %d -> %d\n", rows,
                  unfused_kernels, fused_kernels);
    assert_true(rows >= 20);
    assert_true(fused_kernels < unfused_kernels);
}

/* A group value of a reduction that does not read back (axis 1 of a square operand
 * without keepdims: broadcast, log(s)[j] meets row i) joins no row kernel: the pass
 * stores it, and a body holding it is refused. */
static void test_group_value_needs_its_groups(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("transposed_group_value");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(4, 4));
    ed_node *ls = ed_log(ed_sum(ed_exp(x), 2, false)); /* f32[4], by row */
    ed_output(g, "y", ed_sub(x, ls));
    ed_graph *h = passed(g);
    const ed_node *y = ed_graph_output(h, "y");
    assert_false(y->op == ED_OP_FUSED && ed_fused_reduction(y->attr.body));
    assert_int_equal(count_group_value_rows(h), 0);
    ed_graph_free(h);
    check_fusion(g, 2e-6, 1, "transposed group value");
    ed_graph_free(g);
    const char *bad = "graph @g {\n  %x = input \"x\" : f32[3,3]\n"
                      "  %f = fused %x graph @b {\n    %0 = input \"x0\" : f32[3,3]\n"
                      "    %1 = sum %0 {axes=[1], keepdims=false} : f32[3]\n"
                      "    %2 = log %1 : f32[3]\n"
                      "    %3 = sub %0, %2 : f32[3,3]\n"
                      "    out y = %3\n  } : f32[3,3]\n  out y = %f\n}\n";
    assert_null(ed_graph_parse(bad, "bad"));
    CHECK_ERROR_HAS("reduction %1 (f32[3]) broadcast to f32[3,3] does not read each element's own group");
}

/* More inputs than a fused node takes: the chain is cut, meaning kept. */
static void test_input_limit(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("wide");
    ed_node *acc = ed_input(g, "x0", ED_F32, ed_shape1(16));
    for (int i = 1; i < 40; i++) {
        char name[16];
        snprintf(name, sizeof name, "x%d", i);
        acc = ed_add(ed_mul(acc, ed_scalar(g, ED_F32, 0.5)), ed_input(g, name, ED_F32, ed_shape1(16)));
    }
    ed_output(g, "y", acc);
    ed_graph *h = ed_graph_clone(g);
    assert_int_equal(ed_pass_run(h, "fuse", &(ed_pass_opts){.verify = ED_VERIFY_ON}), ED_OK);
    int nf = count_op(h, ED_OP_FUSED);
    for (int i = 0; i < h->nnodes; i++)
        if (h->nodes[i]->op == ED_OP_FUSED) {
            assert_true(h->nodes[i]->nin <= ED_FUSED_MAX_INPUTS);
            assert_true(h->nodes[i]->attr.body->nnodes <= ED_FUSED_MAX_NODES);
        }
    print_message("40-input chain: %d fused nodes\n", nf);
    assert_true(nf >= 3 && nf <= 6);
    ed_graph_free(h);
    check_fusion(g, 1e-6, 1, "40-input chain");
    ed_graph_free(g);
}

/* Values bound to out or update stay materialized; the rest of the chain fuses. */
static void test_bound_values_stay(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("bound");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(8, 8));
    ed_node *e = ed_exp(ed_neg(x));
    ed_output(g, "e", e);
    ed_node *s = ed_state(g, "s", ED_F32, ed_shape2(8, 8), (ed_init){ED_INIT_ONES, 0});
    ed_node *ns = ed_mul(ed_add(s, e), ed_scalar(g, ED_F32, 0.5));
    ed_update(g, "s", ns);
    ed_output(g, "y", ed_tanh(ed_sub(ns, e)));
    ed_graph *h = ed_graph_clone(g);
    assert_int_equal(ed_pass_run(h, "fuse", &(ed_pass_opts){.verify = ED_VERIFY_ON}), ED_OK);
    const ed_node *he = ed_graph_output(h, "e"), *hs = ed_graph_update(h, "s"), *hy = ed_graph_output(h, "y");
    assert_int_equal(he->op, ED_OP_FUSED); /* exp(neg x) */
    assert_int_equal(hs->op, ED_OP_FUSED); /* (s + e) * 0.5, reading e */
    assert_int_equal(hy->op, ED_OP_FUSED); /* tanh(ns - e), reading both */
    assert_ptr_equal(hs->in[1], he);
    assert_true(hy->in[0] == hs || hy->in[1] == hs);
    assert_int_equal(count_op(h, ED_OP_FUSED), 3);
    ed_graph_free(h);
    check_fusion(g, 2e-6, 3, "bound values");
    ed_graph_free(g);
}

/* A chain of splat consts only is a constant (fold's job): fuse leaves it, without error. */
static void test_constant_chain_is_left(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("c");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape1(4));
    ed_node *c = ed_exp(ed_mul(ed_fill(g, ED_F32, ed_shape1(4), 0.5), ed_scalar(g, ED_F32, -1)));
    ed_output(g, "y", ed_add(x, c)); /* two users in two groups: c roots its own group */
    ed_output(g, "z", ed_mul(x, c));
    assert_int_equal(ed_pass_run(g, "fuse", &(ed_pass_opts){.verify = ED_VERIFY_ON}), ED_OK);
    assert_int_equal(count_op(g, ED_OP_FUSED), 0);
    assert_int_equal(count_op(g, ED_OP_EXP), 1);
    check_fusion(g, 2e-6, 1, "constant chain");
    ed_graph_free(g);
}

/* ed_grad refuses a graph whose loss is reached through a fused node. */
static void test_autodiff_refuses_fused(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("g");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape1(4));
    ed_output(g, "t", ed_tanh(ed_exp(x)));
    assert_int_equal(ed_pass_run(g, "fuse", NULL), ED_OK);
    ed_node *xx = ed_graph_leaf(g, ED_OP_INPUT, "x");
    ed_node *loss = ed_sum(ed_graph_output(g, "t"), ED_ALL_AXES, false);
    ed_node *grad;
    assert_int_equal(ed_grad(loss, &xx, 1, &grad), ED_ERR);
    assert_non_null(strstr(ed_graph_error(g), "fused node"));
    assert_non_null(strstr(ed_graph_error(g), "after ed_grad"));
    ed_graph_free(g);
}

/* An MLP training step (Adam, clipping, EMA) with the default pipeline. */
static void test_training_step(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("mlp_train");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(32, 3));
    ed_node *t = ed_input(g, "t", ED_F32, ed_shape2(32, 2));
    int64_t sizes[3] = {16, 16, 2};
    ed_node *y = ed_mlp(x, "mlp", sizes, 3, ED_ACT_GELU, false);
    ed_node *loss = ed_mean(ed_square(ed_sub(y, t)), ED_ALL_AXES, false);
    ed_train_opts o = {.optim = {.kind = ED_OPT_ADAM, .lr = 1e-2, .clip_norm = 1.0}, .ema_decay = 0.9};
    assert_int_equal(ed_train_step(g, loss, &o), ED_OK);
    int kernels = check_fusion(g, 1e-4, 5, "MLP training step");
    print_message("MLP training step: %d kernels after fusion\n", kernels);
    ed_graph_free(g);
}

/* A layer norm's training step: the backward reads d, var + eps and rsqrt(var + eps),
 * so the forward stores them (d = x - mean(x) as a row kernel, var + eps as an epilogue,
 * rsqrt and d * rsqrt as their own kernels) and no group value joins a row kernel:
 * 31 kernels, as before group values could. Bit equality on both backends. */
static void test_layer_norm_training_step(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("ln_train");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(6, 5)), *t = ed_input(g, "t", ED_F32, ed_shape2(6, 3));
    ed_node *y = ed_dense(ed_layer_norm(ed_dense(x, "in", 9, true), "ln", 1e-5, true), "out", 3, false);
    ed_node *loss = ed_mean(ed_square(ed_sub(y, t)), ED_ALL_AXES, false);
    assert_int_equal(ed_train_step(g, loss, &(ed_train_opts){.optim = {.kind = ED_OPT_SGD, .lr = 1e-2}}), ED_OK);
    ed_graph *h = passed(g);
    assert_int_equal(count_kernels(h), 31);
    assert_int_equal(count_group_value_rows(h), 0);
    ed_graph_free(h);
    check_fusion(g, 1e-4, 3, "layer norm training step");
    ed_graph_free(g);
}

/* The W1 training step (bench/w1.c): kernels after the default pipeline. A regression
 * in fusion fails here. */
static void test_w1_kernel_count(void **state)
{
    (void)state;
    enum { B = 512, T = 1000 };
    ed_graph *g = ed_graph_new("w1");
    ed_node *x0 = ed_input(g, "x0", ED_F32, ed_shape2(B, 2));
    double s1[T], s2[T], prod = 1;
    for (int i = 0; i < T; i++) {
        prod *= 1 - (1e-4 + (0.02 - 1e-4) * i / (T - 1));
        s1[i] = sqrt(prod);
        s2[i] = sqrt(1 - prod);
    }
    ed_node *t = ed_randint(g, ed_shape1(B), 0, T);
    ed_node *eps = ed_randn(g, ED_F32, ed_shape2(B, 2));
    ed_node *a = ed_reshape(ed_gather(ed_const(g, ED_F32, ed_shape1(T), s1, T), t, 0), ed_shape2(B, 1));
    ed_node *b = ed_reshape(ed_gather(ed_const(g, ED_F32, ed_shape1(T), s2, T), t, 0), ed_shape2(B, 1));
    ed_node *xt = ed_add(ed_mul(a, x0), ed_mul(b, eps));
    ed_node *temb = ed_silu(ed_dense(ed_timestep_embedding(ed_cast(t, ED_F32), 32, 10000), "temb", 128, true));
    ed_node *h = ed_concat((ed_node *[]){xt, temb}, 2, 1);
    int64_t sizes[4] = {256, 256, 256, 2};
    ed_node *pred = ed_mlp(h, "den", sizes, 4, ED_ACT_SILU, false);
    ed_node *loss = ed_mean(ed_square(ed_sub(pred, eps)), ED_ALL_AXES, false);
    assert_int_equal(ed_train_step(g, loss, &(ed_train_opts){.optim = {.kind = ED_OPT_ADAM, .lr = 1e-3}}), ED_OK);
    ed_store *st = ed_store_new(0);
    ed_program *p0 = ed_compile(g, st, &(ed_compile_opts){.backend = ED_BACKEND_INTERP, .passes = NO_FUSE});
    ed_program *p1 = ed_compile(g, st, &(ed_compile_opts){.backend = ED_BACKEND_INTERP});
    assert_non_null(p0);
    assert_non_null(p1);
    int k0 = ed_program_compile_stats(p0).kernels, k1 = ed_program_compile_stats(p1).kernels;
    print_message("W1 training step: %d kernels without fuse, %d with\n", k0, k1);
    assert_int_equal(k0, 245);
    assert_true(k1 <= 91);
    ed_program_free(p0);
    ed_program_free(p1);
    ed_store_free(st);
    ed_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chain_with_broadcast_round_trips),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_random_graphs),
        cmocka_unit_test(test_random_graphs_keep_broadcasts),
        cmocka_unit_test(test_random_loop_bodies),
        cmocka_unit_test(test_softmax),
        cmocka_unit_test(test_logsumexp),
        cmocka_unit_test(test_mse),
        cmocka_unit_test(test_layer_norm),
        cmocka_unit_test(test_log_softmax),
        cmocka_unit_test(test_recompute_into_reduction),
        cmocka_unit_test(test_no_costly_recompute),
        cmocka_unit_test(test_broadcast_into_readers),
        cmocka_unit_test(test_dense_bias_activation),
        cmocka_unit_test(test_no_costly_copy_into_readers),
        cmocka_unit_test(test_epilogue_not_in_place),
        cmocka_unit_test(test_row_kernel_needs_its_groups),
        cmocka_unit_test(test_text_round_trip),
        cmocka_unit_test(test_random_reduction_graphs),
        cmocka_unit_test(test_random_group_values),
        cmocka_unit_test(test_group_value_needs_its_groups),
        cmocka_unit_test(test_input_limit),
        cmocka_unit_test(test_bound_values_stay),
        cmocka_unit_test(test_constant_chain_is_left),
        cmocka_unit_test(test_autodiff_refuses_fused),
        cmocka_unit_test(test_training_step),
        cmocka_unit_test(test_layer_norm_training_step),
        cmocka_unit_test(test_w1_kernel_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
