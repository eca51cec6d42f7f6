/* The pass manager and the passes simplify, fold, cse and dce: pipeline strings and
 * their errors, hooks and stats, and meaning: every pass and the default pipeline
 * against the interpreter on the graph as built, on the example graph, on seeded random
 * graphs full of rewritable patterns (interpreter and JIT), and on MLP training steps
 * run for several calls (outputs and every store value). The golden tests of each pass
 * (the printed graph after it) are files in tests/ir. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "frontend/nn.h"
#include "ir/text.h"
#include "passes/pass.h"
#include "models/train_step.h"
#include "support/interp_check.h"
#include "support/run_check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------------ */

static ed_graph *parse(const char *text)
{
    ed_graph *g = ed_graph_parse(text, "test");
    if (!g) fail_msg("parse: %s", ed_last_error());
    return g;
}

/* g without passes on the interpreter (the oracle) against g after pipeline on
 * backend, each with its own store (seed 3) and program seed 5, for `calls` calls:
 * every output of every call, then every store value. Returns the node count after
 * the passes. */
static int compare_pipeline(const ed_graph *g, const char *pipeline, ed_backend backend, double tol, int calls,
                            const char *what)
{
    random_feeds fd;
    random_feeds_make(g, -2, 2, &fd);
    ed_pass_stats stats[16];
    ed_pass_opts po = {.verify = ED_VERIFY_ON, .stats = stats, .stats_cap = 16};
    const ed_compile_opts opts[2] = {{.backend = ED_BACKEND_INTERP, .seed = 5, .passes = ""},
                                     {.backend = backend, .seed = 5, .passes = pipeline, .pass_opts = &po}};
    char label[256];
    snprintf(label, sizeof label, "%s (without passes, then with %s)", what, pipeline ? pipeline : "the default");
    program_set ps;
    programs_compile(&ps, g, opts, 2, label);
    for (int c = 0; c < calls; c++) {
        programs_run(&ps, &fd, label);
        programs_check_outputs(&ps, 0, 1, check_tensors_close, tol, label, c);
    }
    programs_check_stores(&ps, 0, 1, check_tensors_close, tol, label);
    int after = po.nstats ? stats[po.nstats - 1].nodes_after : g->nnodes;
    programs_free(&ps);
    random_feeds_free(&fd);
    return after;
}

static const char *const single_passes[] = {"simplify", "fold", "cse", "dce",
                                            "fuse",     "plan", NULL,  "simplify,fold,cse,dce,simplify,cse"};
enum { NPIPELINES = sizeof single_passes / sizeof single_passes[0] };

/* Every pass alone, the default pipeline (NULL) and a longer one, on the interpreter. */
static void check_every_pipeline(const ed_graph *g, double tol, int calls, const char *what)
{
    for (int i = 0; i < NPIPELINES; i++) {
        char label[256];
        snprintf(label, sizeof label, "%s [%s]", what, single_passes[i] ? single_passes[i] : "default");
        compare_pipeline(g, single_passes[i], ED_BACKEND_INTERP, tol, calls, label);
    }
}

/* ---- the pass manager ---------------------------------------------------------- */

static void test_pass_table(void **state)
{
    (void)state;
    const char *names[] = {"simplify", "fold", "cse", "dce"};
    for (int i = 0; i < 4; i++) {
        const ed_pass *p = ed_pass_find(names[i]);
        assert_non_null(p);
        assert_string_equal(p->name, names[i]);
        assert_non_null(p->run);
        assert_true(strlen(p->description) > 10);
    }
    assert_null(ed_pass_find("nope"));
    assert_true(ed_pass_count() >= 4);
    assert_int_equal(ed_pipeline_check(ED_DEFAULT_PIPELINE), ED_OK);
    /* every op of today's table is one passes understand, except the control ops
     * (loop and its result picker get) and fused nodes, which passes treat as opaque */
    for (int op = 0; op < ED_OP_COUNT; op++)
        assert_true(ed_pass_op_is_known((ed_op)op) == (op != ED_OP_LOOP && op != ED_OP_GET && op != ED_OP_FUSED &&
                                                       ed_ops[op].kind != ED_KIND_COLLECTIVE));
    assert_false(ed_pass_op_is_known(ED_OP_COUNT));
}

static void test_pipeline_strings(void **state)
{
    (void)state;
    assert_int_equal(ed_pipeline_check(""), ED_OK);
    assert_int_equal(ed_pipeline_check("  "), ED_OK);
    assert_int_equal(ed_pipeline_check(NULL), ED_OK);
    assert_int_equal(ed_pipeline_check("cse"), ED_OK);
    assert_int_equal(ed_pipeline_check(" simplify , fold,cse ,dce "), ED_OK);
    assert_int_equal(ed_pipeline_check("cse,cse,dce"), ED_OK);
    assert_int_equal(ed_pipeline_check("simplify,vectorize"), ED_ERR);
    CHECK_ERROR_HAS(
        "unknown pass 'vectorize' in pipeline 'simplify,vectorize' (known: simplify, fold, cse, hoist, dce, fuse, plan");
    assert_int_equal(ed_pipeline_check("cse,,dce"), ED_ERR);
    CHECK_ERROR_HAS("empty pass name");
    assert_int_equal(ed_pipeline_check("cse,"), ED_ERR);
    CHECK_ERROR_HAS("empty pass name");
    assert_int_equal(ed_pipeline_check("cse dce"), ED_ERR);
    CHECK_ERROR_HAS("separated by commas");

    /* an unknown name anywhere stops the pipeline before any pass runs */
    ed_graph *g = parse("graph @g {\n %0 = input \"x\" : f32[2]\n %1 = const 1 : f32[]\n %2 = mul %0, %1 : f32[2]\n"
                        " out y = %2\n}\n");
    assert_int_equal(ed_pass_run(g, "simplify,bogus", NULL), ED_ERR);
    CHECK_ERROR_HAS("unknown pass 'bogus'");
    assert_int_equal(g->nnodes, 3);
    assert_int_equal(ed_pass_run(g, "simplify", &(ed_pass_opts){.print_after = "cse,nope"}), ED_ERR);
    CHECK_ERROR_HAS("unknown pass 'nope' in print-after 'cse,nope'");
    assert_int_equal(g->nnodes, 3);
    /* the empty pipeline changes nothing */
    assert_int_equal(ed_pass_run(g, "", NULL), ED_OK);
    assert_int_equal(g->nnodes, 3);
    /* and ed_compile reports a bad pipeline */
    assert_null(ed_compile(g, NULL, &(ed_compile_opts){.passes = "cse,dse"}));
    CHECK_ERROR_HAS("unknown pass 'dse'");
    ed_graph_free(g);
}

static int bad_pass(ed_graph *g, ed_pass_stats *st)
{
    (void)st;
    for (int i = 0; i < g->nnodes; i++)
        if (g->nodes[i]->op == ED_OP_NEG) g->nodes[i]->dtype = ED_I32; /* a type its rule does not give */
    return ED_OK;
}

static int failing_pass(ed_graph *g, ed_pass_stats *st)
{
    (void)g, (void)st;
    return ed_fail("failing_pass: not built yet");
}

static void test_register_and_verify(void **state)
{
    (void)state;
    assert_int_equal(ed_pass_register(&(ed_pass){"test_bad", bad_pass, "breaks types"}), ED_OK);
    assert_int_equal(ed_pass_register(&(ed_pass){"test_fail", failing_pass, "fails"}), ED_OK);
    assert_int_equal(ed_pass_register(&(ed_pass){"test_bad", bad_pass, "again"}), ED_ERR);
    CHECK_ERROR_HAS("exists already");
    assert_int_equal(ed_pass_register(&(ed_pass){"Bad-Name", bad_pass, "x"}), ED_ERR);
    assert_int_equal(ed_pass_register(&(ed_pass){"cse", bad_pass, "x"}), ED_ERR);
    assert_non_null(ed_pass_find("test_bad"));

    const char *text = "graph @g {\n %0 = input \"x\" : f32[2]\n %1 = neg %0 : f32[2]\n out y = %1\n}\n";
    ed_graph *g = parse(text);
    assert_int_equal(ed_pass_run(g, "cse,test_bad,dce", &(ed_pass_opts){.verify = ED_VERIFY_ON}), ED_ERR);
    CHECK_ERROR_HAS("does not verify after pass test_bad");
    ed_graph_free(g);
    g = parse(text);
    assert_int_equal(ed_pass_run(g, "test_fail", NULL), ED_ERR);
    CHECK_ERROR_HAS("not built yet");
    ed_graph_free(g);
    /* verification off lets the broken graph through; the compile verifier still stops it */
    g = parse(text);
    assert_int_equal(ed_pass_run(g, "test_bad", &(ed_pass_opts){.verify = ED_VERIFY_OFF}), ED_OK);
    ed_graph_free(g);
    g = parse(text);
    assert_null(ed_compile(
        g, NULL, &(ed_compile_opts){.passes = "test_bad", .pass_opts = &(ed_pass_opts){.verify = ED_VERIFY_OFF}}));
    CHECK_ERROR_HAS("verify:");
    /* the caller's graph is untouched by the passes of ed_compile */
    assert_int_equal(g->nodes[1]->dtype, ED_F32);
    ed_graph_free(g);
}

static void test_hooks_and_stats(void **state)
{
    (void)state;
    ed_graph *g = parse("graph @g {\n %0 = input \"x\" : f32[2]\n %1 = const 1 : f32[]\n %2 = mul %0, %1 : f32[2]\n"
                        " %3 = neg %2 : f32[2]\n %4 = neg %2 : f32[2]\n %5 = add %3, %4 : f32[2]\n"
                        " %6 = exp %0 : f32[2]\n out y = %5\n}\n");
    char *buf = NULL, *sbuf = NULL;
    size_t len = 0, slen = 0;
    FILE *f = open_memstream(&buf, &len), *sf = open_memstream(&sbuf, &slen);
    ed_pass_stats st[8];
    ed_pass_opts o = {
        .verify = ED_VERIFY_ON, .print_after = "cse", .print_to = f, .stats_to = sf, .stats = st, .stats_cap = 8};
    assert_int_equal(ed_pass_run(g, NULL, &o), ED_OK);
    fclose(f);
    fclose(sf);
    /* print-after=cse: one graph, after cse */
    assert_non_null(strstr(buf, "# after cse\ngraph @g {"));
    assert_null(strstr(buf, "# after simplify"));
    assert_null(strstr(buf + 1, "# after"));
    /* stats: seven passes in order with their node counts */
    assert_int_equal(o.nstats, 7);
    assert_string_equal(st[0].name, "simplify");
    assert_int_equal(st[0].nodes_before, 7);
    assert_int_equal(st[0].nodes_after, 5); /* mul x, 1 and its const gone; the dead exp stays (dce's job) */
    assert_int_equal(st[0].rewrites, 1);
    assert_string_equal(st[2].name, "cse");
    assert_int_equal(st[2].rewrites, 1);
    assert_int_equal(st[2].nodes_after, 4);
    assert_string_equal(st[3].name, "hoist");
    assert_int_equal(st[3].rewrites, 0); /* no loop */
    assert_string_equal(st[4].name, "dce");
    assert_int_equal(st[4].nodes_after, 3); /* x, neg, add */
    assert_string_equal(st[5].name, "fuse");
    assert_int_equal(st[5].nodes_after, 2); /* x, fused neg and add */
    assert_int_equal(g->nnodes, 2);
    for (int i = 0; i < 4; i++) assert_true(st[i].ms >= 0);
    assert_non_null(strstr(sbuf, "pass simplify: "));
    assert_non_null(strstr(sbuf, "7 -> 5 nodes, 1 rewrites\n"));
    assert_non_null(strstr(sbuf, "pass dce: "));
    free(buf);
    free(sbuf);

    /* print-after-all prints after every pass; the stats array stops at its capacity */
    f = open_memstream(&buf, &len);
    ed_pass_stats one[1];
    o = (ed_pass_opts){.print_after_all = true, .print_to = f, .stats = one, .stats_cap = 1};
    assert_int_equal(ed_pass_run(g, "cse,dce,cse", &o), ED_OK);
    fclose(f);
    int n = 0;
    for (const char *p = buf; (p = strstr(p, "# after ")); p++) n++;
    assert_int_equal(n, 3);
    assert_int_equal(o.nstats, 1);
    free(buf);
    ed_graph_free(g);
}

/* A graph with a loop whose body (and the body of a loop in it) hold x * 1. */
static const char loop_text[] = "graph @t {\n"
                                "  %0 = input \"x\" : f32[2]\n"
                                "  %1 = const 0 : f32[2]\n"
                                "  %2 = loop %1, %0 {stream=1, trips=3, ncarried=1} graph @body {\n"
                                "    %0 = input \"index\" : i32[]\n"
                                "    %1 = input \"carried0\" : f32[2]\n"
                                "    %2 = input \"captured0\" : f32[2]\n"
                                "    %3 = loop %1, %2 {stream=1, trips=2, ncarried=1} graph @inner {\n"
                                "      %0 = input \"index\" : i32[]\n"
                                "      %1 = input \"carried0\" : f32[2]\n"
                                "      %2 = input \"captured0\" : f32[2]\n"
                                "      %3 = const 1 : f32[]\n"
                                "      %4 = mul %2, %3 : f32[2]\n"
                                "      %5 = add %1, %4 : f32[2]\n"
                                "      out next0 = %5\n"
                                "    }\n"
                                "    %4 = get %3 {index=0} : f32[2]\n"
                                "    %5 = const 1 : f32[]\n"
                                "    %6 = mul %4, %5 : f32[2]\n"
                                "    out next0 = %6\n"
                                "  }\n"
                                "  %3 = get %2 {index=0} : f32[2]\n"
                                "  %4 = const 1 : f32[]\n"
                                "  %5 = mul %3, %4 : f32[2]\n"
                                "  out y = %5\n"
                                "}\n";

/* Stats count the nodes of loop bodies too and say how many are there. */
static void test_stats_count_loop_bodies(void **state)
{
    (void)state;
    ed_graph *g = parse(loop_text);
    char *sbuf = NULL;
    size_t slen = 0;
    FILE *sf = open_memstream(&sbuf, &slen);
    ed_pass_stats st[1];
    ed_pass_opts o = {.verify = ED_VERIFY_ON, .stats_to = sf, .stats = st, .stats_cap = 1};
    assert_int_equal(ed_pass_run(g, "simplify", &o), ED_OK);
    fclose(sf);
    /* outer 6 -> 4, body 7 -> 5, inner 6 -> 4: 19 -> 13, 13 -> 9 of them in bodies */
    assert_int_equal(st[0].nodes_before, 19);
    assert_int_equal(st[0].nodes_after, 13);
    assert_int_equal(st[0].body_nodes_before, 13);
    assert_int_equal(st[0].body_nodes_after, 9);
    assert_int_equal(st[0].rewrites, 3);
    assert_non_null(strstr(sbuf, "19 -> 13 nodes (13 -> 9 of them in loop bodies), 3 rewrites\n"));
    free(sbuf);
    ed_graph_free(g);
}

/* A pass function called directly acts on one graph; ed_pass_run_one runs the named
 * pass on loop bodies too, as the manager does. */
static void test_run_one_enters_loop_bodies(void **state)
{
    (void)state;
    ed_graph *g = parse(loop_text);
    ed_graph *body = g->nodes[2]->attr.body;
    ed_pass_stats st = {0};
    assert_int_equal(ed_pass_simplify(g, &st), ED_OK);
    assert_int_equal(st.rewrites, 1);
    assert_int_equal(body->nnodes, 7); /* the body is untouched */
    ed_graph_free(g);

    g = parse(loop_text);
    body = g->nodes[2]->attr.body;
    assert_int_equal(ed_pass_run_one(g, "simplify", &st), ED_OK);
    assert_string_equal(st.name, "simplify");
    assert_int_equal(st.rewrites, 3);
    assert_int_equal(g->nnodes, 4);
    assert_int_equal(body->nnodes, 5);
    assert_int_equal(body->nodes[3]->attr.body->nnodes, 4);
    assert_int_equal(ed_graph_verify(g), ED_OK);
    assert_int_equal(ed_pass_run_one(g, "dce", NULL), ED_OK);
    assert_int_equal(ed_pass_run_one(g, "vectorize", &st), ED_ERR);
    CHECK_ERROR_HAS("unknown pass 'vectorize' (known: simplify, fold");
    ed_graph_free(g);
}

/* ---- clone ------------------------------------------------------------------------ */

static void test_clone(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("c");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(3, 4));
    ed_node *w = ed_param(g, "w", ED_F32, ed_shape2(4, 2), (ed_init){ED_INIT_GLOROT_UNIFORM, 0});
    ed_node *s = ed_state(g, "s", ED_F32, ed_shape2(4, 2), (ed_init){ED_INIT_ZEROS, 0});
    ed_node *r = ed_randn(g, ED_F32, ed_shape2(3, 2));
    ed_node *y = ed_set_name(ed_add(ed_matmul(x, w), r), "y.sum");
    ed_output(g, "y", y);
    ed_update(g, "s", ed_add(s, w));
    /* make creation order non-topological: the clone must still come out in order */
    ed_node *late = ed_neg(x);
    ed_node *first = ed_abs(x);
    assert_int_equal(ed_replace_all_uses(g, first, ed_exp(late)), ED_OK);
    ed_output(g, "z", first);
    char *a = ed_graph_print(g);
    ed_graph *c = ed_graph_clone(g);
    assert_non_null(c);
    char *b = ed_graph_print(c);
    assert_string_equal(a, b);
    assert_int_equal(c->nnodes, g->nnodes);
    assert_int_equal(c->next_stream, g->next_stream);
    assert_string_equal(ed_graph_output(c, "y")->name, "y.sum");
    for (int i = 0; i < c->nnodes; i++) {
        assert_int_equal(c->nodes[i]->id, i);
        assert_ptr_equal(c->nodes[i]->graph, c);
        for (int k = 0; k < c->nodes[i]->nin; k++) assert_true(c->nodes[i]->in[k]->id < i);
    }
    assert_int_equal(ed_graph_verify(c), ED_OK);
    /* independent: changing the clone leaves g as it was */
    ed_output(c, "extra", ed_neg(ed_graph_leaf(c, ED_OP_INPUT, "x")));
    char *a2 = ed_graph_print(g);
    assert_string_equal(a, a2);
    free(a), free(b), free(a2);
    ed_graph_free(c);

    /* a graph with a sticky error clones with it */
    assert_null(ed_matmul(x, x));
    c = ed_graph_clone(g);
    assert_non_null(c);
    assert_non_null(ed_graph_error(c));
    assert_string_equal(ed_graph_error(c), ed_graph_error(g));
    ed_graph_free(c);
    ed_graph_free(g);
    assert_null(ed_graph_clone(NULL));
}

static void test_remove_nodes_refuses_used(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("r");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape1(2));
    ed_node *e = ed_exp(x);
    ed_output(g, "y", ed_neg(e));
    bool dead[3] = {false, true, false};
    assert_int_equal(ed_graph_remove_nodes(g, dead), ED_ERR);
    CHECK_ERROR_HAS("uses it");
    assert_int_equal(g->nnodes, 3);
    bool dead2[3] = {false, false, true};
    assert_int_equal(ed_graph_remove_nodes(g, dead2), ED_ERR);
    CHECK_ERROR_HAS("out y binds it");
    ed_graph_free(g);
}

/* ---- meaning -------------------------------------------------------------------- */

/* A seeded random reshape of a random shape (runs of small factors grouped one way for
 * the input and another for the reshape, sometimes reordered so groups interleave),
 * reduced by a random op over random axes. */
static ed_graph *reshape_reduce_graph(uint64_t seed)
{
    rng_seed(seed * 2654435761u + 7);
    int64_t atom[6];
    int natoms = 2 + pick(5);
    for (int i = 0; i < natoms; i++) atom[i] = 1 + pick(4);
    ed_shape from = {0}, to = {0};
    /* from: consecutive atoms grouped at random */
    for (int i = 0; i < natoms; i++) {
        if (from.rank == 0 || (from.rank < 4 && pick(2))) from.dim[from.rank++] = atom[i];
        else from.dim[from.rank - 1] *= atom[i];
    }
    if (pick(4) == 0) /* a different order of the atoms: groups interleave */
        for (int i = natoms - 1; i > 0; i--) {
            int j = pick(i + 1);
            int64_t t = atom[i];
            atom[i] = atom[j], atom[j] = t;
        }
    for (int i = 0; i < natoms; i++) {
        if (to.rank < 5 && (to.rank == 0 || pick(2))) to.dim[to.rank++] = atom[i];
        else to.dim[to.rank - 1] *= atom[i];
    }
    if (to.rank < 5 && pick(5) == 0) { /* a size-1 axis somewhere */
        int at = pick(to.rank + 1);
        for (int k = to.rank; k > at; k--) to.dim[k] = to.dim[k - 1];
        to.dim[at] = 1;
        to.rank++;
    }
    static const ed_op ops[] = {ED_OP_SUM, ED_OP_MEAN, ED_OP_MAX, ED_OP_MIN};
    ed_op op = ops[pick(4)];
    ed_dtype dt = op != ED_OP_MEAN && pick(4) == 0 ? ED_I32 : ED_F32;
    unsigned axes = (unsigned)pick(1 << to.rank);
    if (!axes) axes = 1;
    ed_graph *g = ed_graph_new("reshape_reduce");
    ed_node *x = ed_input(g, "x", dt, from);
    ed_node *src = dt == ED_F32 && pick(2) ? ed_tanh(x) : x; /* a producer to fuse with */
    ed_node *r = ed_reshape(src, to);
    ed_node *in[1] = {r};
    ed_node *red = ed_node_new(g, op, in, 1, &(ed_attrs){.axes = axes, .keepdims = pick(2) == 0});
    ed_output(g, "r", red);
    if (pick(3) == 0) ed_output(g, "reshaped", dt == ED_F32 ? ed_exp(r) : r); /* the reshape has other users */
    if (ed_graph_error(g)) fail_msg("reshape/reduce graph %llu: %s", (unsigned long long)seed, ed_graph_error(g));
    return g;
}

/* Before and after simplify (and the default pipeline), on the interpreter and the JIT:
 * the same bits everywhere, since the rule keeps the order of accumulation. */
static void test_meaning_reduce_through_reshape(void **state)
{
    (void)state;
    int rewritten = 0, kept = 0;
    for (uint64_t s = 1; s <= 60; s++) {
        ed_graph *g = reshape_reduce_graph(s);
        char what[64];
        snprintf(what, sizeof what, "reshape/reduce graph %llu", (unsigned long long)s);
        random_feeds fd;
        random_feeds_make(g, -2, 2, &fd);
        ed_pass_stats st[8];
        ed_pass_opts po = {.verify = ED_VERIFY_ON, .stats = st, .stats_cap = 8};
        /* the interpreter without passes, with simplify and with the default pipeline */
        const ed_compile_opts on_interp[3] = {
            {.backend = ED_BACKEND_INTERP, .seed = 5, .passes = ""},
            {.backend = ED_BACKEND_INTERP, .seed = 5, .passes = "simplify", .pass_opts = &po},
            {.backend = ED_BACKEND_INTERP, .seed = 5}};
        program_set ps;
        programs_compile(&ps, g, on_interp, 3, what);
        if (st[0].rewrites) rewritten++;
        else kept++;
        programs_run(&ps, &fd, what);
        for (int k = 1; k < 3; k++) programs_check_outputs(&ps, 0, k, check_tensors_agree, 0, what, 0);
        programs_free(&ps);
        /* the same on the JIT, and the JIT against the interpreter (tanh and exp are the
         * JIT's own inline math, so within its usual tolerance there) */
        const ed_compile_opts on_jit[4] = {{.backend = ED_BACKEND_INTERP, .seed = 5, .passes = ""},
                                           {.backend = ED_BACKEND_JIT, .seed = 5, .passes = ""},
                                           {.backend = ED_BACKEND_JIT, .seed = 5, .passes = "simplify"},
                                           {.backend = ED_BACKEND_JIT, .seed = 5}};
        programs_compile(&ps, g, on_jit, 4, what);
        programs_run(&ps, &fd, what);
        programs_check_outputs(&ps, 0, 1, check_tensors_close, 1e-5, what, 0);
        for (int k = 2; k < 4; k++) programs_check_outputs(&ps, 1, k, check_tensors_agree, 0, what, 0);
        programs_free(&ps);
        random_feeds_free(&fd);
        ed_graph_free(g);
    }
    print_message("reshape/reduce graphs: %d rewritten, %d kept\n", rewritten, kept);
    assert_true(rewritten >= 15);
    assert_true(kept >= 10);
}

static void test_meaning_example_graph(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_read_file(ED_SOURCE_DIR "/examples/mlp.edir");
    assert_non_null(g);
    check_every_pipeline(g, 0, 2, "examples/mlp.edir");
    ed_graph_free(g);
}

/* A graph built to hit every rule: identities, chains, matmul transposes, broadcasts,
 * constant subgraphs, repeats and random ops, mixed with ordinary ops. */
typedef ed_node *(*unary_fn)(ed_node *);
typedef ed_node *(*binary_fn)(ed_node *, ed_node *);

static ed_node *rewritable(ed_graph *g, ed_node *x, ed_node *w)
{
    static const int perm10[2] = {1, 0};
    ed_node *c;
    switch (pick(14)) {
    case 0: return ed_mul(x, ed_scalar(g, ED_F32, 1));
    case 1: return ed_add(ed_fill(g, ED_F32, x->shape, 0), x);
    case 2: return ed_neg(ed_neg(x));
    case 3: return ed_log(ed_exp(x));
    case 4: return ed_exp(ed_log(ed_abs(x)));
    case 5: return ed_exp(ed_log(x)); /* not safe: stays */
    case 6: return ed_reshape(ed_reshape(ed_reshape(x, ed_shape1(91)), ed_shape2(13, 7)), ed_shape2(7, 13));
    case 7: return ed_transpose(ed_transpose(x, perm10), perm10);
    case 8: return ed_matmul(ed_transpose(ed_transpose(x, perm10), perm10), ed_transpose_last2(w));
    case 9: return ed_add(ed_broadcast_to(ed_sum(x, 1, true), ed_shape2(7, 13)), x);
    case 10: /* a constant subgraph */
        c = ed_exp(ed_mul(ed_fill(g, ED_F32, ed_shape1(13), 0.5), ed_scalar(g, ED_F32, -1)));
        return ed_mul(x, ed_add(c, ed_scalar(g, ED_F32, 0.25)));
    case 11: return ed_add(ed_tanh(x), ed_tanh(x)); /* a repeat */
    case 12: return ed_add(x, ed_mul(ed_randn(g, ED_F32, x->shape), ed_scalar(g, ED_F32, 0.1)));
    default: return ed_div(ed_sub(x, ed_scalar(g, ED_F32, 0)), ed_scalar(g, ED_F32, 1));
    }
}

static ed_graph *random_graph(uint64_t seed)
{
    rng_seed(seed * 2654435761u + 11);
    ed_graph *g = ed_graph_new("random");
    ed_node *pool[64];
    int np = 0;
    pool[np++] = ed_input(g, "a", ED_F32, ed_shape2(7, 13));
    pool[np++] = ed_input(g, "b", ED_F32, ed_shape2(7, 13));
    ed_node *w = ed_input(g, "w", ED_F32, ed_shape2(13, 13));
    static const unary_fn un[] = {ed_tanh, ed_sigmoid, ed_relu, ed_neg, ed_abs, ed_sin, ed_silu, ed_softplus};
    static const binary_fn bin[] = {ed_add, ed_sub, ed_mul, ed_maximum, ed_minimum};
    int nops = 6 + pick(20);
    for (int i = 0; i < nops; i++) {
        ed_node *x = pool[pick(np)], *y;
        switch (pick(4)) {
        case 0: y = un[pick(8)](x); break;
        case 1: y = bin[pick(5)](x, pool[pick(np)]); break;
        default: y = rewritable(g, x, w); break;
        }
        assert_non_null(y);
        if (np < 64) pool[np++] = y;
    }
    int nout = 0;
    for (int i = 2; i < np; i++) {
        if (pick(3) == 0 && i != np - 1) continue; /* some dead code */
        char name[16];
        snprintf(name, sizeof name, "o%d", i);
        ed_output(g, name, pool[i]);
        nout++;
    }
    assert_true(nout > 0);
    if (ed_graph_error(g)) fail_msg("random graph %llu: %s", (unsigned long long)seed, ed_graph_error(g));
    return g;
}

static void test_meaning_random_graphs(void **state)
{
    (void)state;
    int before = 0, after = 0;
    for (uint64_t s = 1; s <= 30; s++) {
        ed_graph *g = random_graph(s);
        char what[64];
        snprintf(what, sizeof what, "random graph %llu", (unsigned long long)s);
        /* log(exp x) can differ from x by an ulp of the round trip */
        check_every_pipeline(g, 1e-6, 2, what);
        before += g->nnodes;
        after += compare_pipeline(g, NULL, ED_BACKEND_INTERP, 1e-6, 1, what);
        ed_graph_free(g);
    }
    print_message("random graphs: %d nodes before the default pipeline, %d after\n", before, after);
    assert_true(after < before);
}

static void test_meaning_random_graphs_jit(void **state)
{
    (void)state;
    for (uint64_t s = 101; s <= 112; s++) {
        ed_graph *g = random_graph(s);
        char what[64];
        snprintf(what, sizeof what, "random graph %llu on the JIT", (unsigned long long)s);
        compare_pipeline(g, NULL, ED_BACKEND_JIT, 1e-4, 2, what);
        ed_graph_free(g);
    }
}

/* An MLP regression training step (Adam, clipping, EMA, a warm-up schedule). */
static ed_graph *mlp_train_graph(void)
{
    ed_graph *g = ed_graph_new("mlp_train");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(16, 3));
    ed_node *t = ed_input(g, "t", ED_F32, ed_shape2(16, 2));
    int64_t sizes[3] = {12, 12, 2};
    ed_node *y = ed_mlp(x, "mlp", sizes, 3, ED_ACT_SILU, false);
    ed_node *loss = ed_mean(ed_square(ed_sub(y, t)), ED_ALL_AXES, false);
    ed_train_opts o = {.optim = {.kind = ED_OPT_ADAM,
                                 .lr = 1e-2,
                                 .clip_norm = 1.0,
                                 .schedule = {.kind = ED_SCHED_WARMUP, .warmup_steps = 3}},
                       .ema_decay = 0.9};
    assert_int_equal(ed_train_step(g, loss, &o), ED_OK);
    return g;
}

static void test_meaning_training_step(void **state)
{
    (void)state;
    ed_graph *g = mlp_train_graph();
    check_every_pipeline(g, 1e-5, 5, "MLP training step");
    int after = compare_pipeline(g, NULL, ED_BACKEND_JIT, 1e-4, 5, "MLP training step on the JIT");
    print_message("MLP training step: %d nodes, %d after the default pipeline\n", g->nnodes, after);
    assert_true(after < g->nnodes);
    ed_graph_free(g);
}

/* The W1 training step of bench/w1.c at a smaller batch: the default pipeline keeps
 * its meaning and removes a bounded share of its nodes. */
static void test_w1_training_step(void **state)
{
    (void)state;
    enum { B = 32, T = 1000 };
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
    ed_node *temb = ed_silu(ed_dense(ed_timestep_embedding(ed_cast(t, ED_F32), 32, 10000), "temb", 32, true));
    ed_node *h = ed_concat((ed_node *[]){xt, temb}, 2, 1);
    int64_t sizes[4] = {32, 32, 32, 2};
    ed_node *pred = ed_mlp(h, "den", sizes, 4, ED_ACT_SILU, false);
    ed_node *loss = ed_mean(ed_square(ed_sub(pred, eps)), ED_ALL_AXES, false);
    assert_int_equal(ed_train_step(g, loss, &(ed_train_opts){.optim = {.kind = ED_OPT_ADAM, .lr = 1e-3}}), ED_OK);
    int after = compare_pipeline(g, NULL, ED_BACKEND_INTERP, 1e-5, 3, "W1 step");
    print_message("W1 training step: %d nodes, %d after the default pipeline\n", g->nnodes, after);
    assert_true(after <= g->nnodes * 9 / 10);
    ed_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pass_table),
        cmocka_unit_test(test_pipeline_strings),
        cmocka_unit_test(test_register_and_verify),
        cmocka_unit_test(test_hooks_and_stats),
        cmocka_unit_test(test_stats_count_loop_bodies),
        cmocka_unit_test(test_run_one_enters_loop_bodies),
        cmocka_unit_test(test_clone),
        cmocka_unit_test(test_remove_nodes_refuses_used),
        cmocka_unit_test(test_meaning_example_graph),
        cmocka_unit_test(test_meaning_random_graphs),
        cmocka_unit_test(test_meaning_random_graphs_jit),
        cmocka_unit_test(test_meaning_reduce_through_reshape),
        cmocka_unit_test(test_meaning_training_step),
        cmocka_unit_test(test_w1_training_step),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
