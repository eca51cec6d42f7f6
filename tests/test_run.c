/* ed_compile / ed_run: feed checks, store binding, updates, outputs, backend choice
 * and the errors a user can cause. The tests of ed_run's contract run twice, once per
 * backend; then the JIT's own plumbing: the default backend, opt levels, the arena
 * and the compile statistics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "support/interp_check.h"
#include "support/run_check.h"

#include "backend/program.h"
#include "ir/text.h"
#include "passes/autodiff.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Count heap allocations, forwarding to glibc's own entry points. Not under ASan,
 * which owns malloc; there the steady-state test checks pointers only. */
#ifndef __SANITIZE_ADDRESS__
#define COUNTS_ALLOCS 1
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void *__libc_memalign(size_t align, size_t n);
static long allocs;
void *malloc(size_t n) { return allocs++, __libc_malloc(n); }
void *calloc(size_t n, size_t size) { return allocs++, __libc_calloc(n, size); }
void *realloc(void *p, size_t n) { return allocs++, __libc_realloc(p, n); }
void *aligned_alloc(size_t align, size_t n) { return allocs++, __libc_memalign(align, n); }
#endif

static ed_program *compile_on(const ed_graph *g, ed_store *st)
{
    return ed_compile(g, st, &(ed_compile_opts){.backend = backend_under_test});
}

/* ---- feeds ------------------------------------------------------------------------ */

static void test_feed_errors(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("g");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(4, 3));
    ed_node *k = ed_input(g, "k", ED_I32, ed_shape0());
    ed_output(g, "s", ed_sum(x, ED_ALL_AXES, false));
    ed_output(g, "k2", ed_mul(k, ed_scalar(g, ED_I32, 2)));
    ed_program *p = compile_on(g, NULL);
    assert_non_null(p);

    ed_tensor *xt = ed_tensor_new(ED_F32, ed_shape2(4, 3));
    ed_tensor *kt = ed_tensor_new(ED_I32, ed_shape0());
    ed_tensor *v3 = ed_tensor_new(ED_F32, ed_shape1(3));
    ed_tensor *xi = ed_tensor_new(ED_I32, ed_shape2(4, 3));
    for (int i = 0; i < 12; i++) ((float *)xt->data)[i] = (float)i;
    *(int32_t *)kt->data = 21;

    assert_int_equal(ed_run(p, (ed_feed[]){{"k", kt}}, 1), ED_ERR);
    CHECK_ERROR_HAS("input \"x\" is not fed");
    assert_int_equal(ed_run(p, (ed_feed[]){{"x", xt}, {"k", kt}, {"q", kt}}, 3), ED_ERR);
    CHECK_ERROR_HAS("no input named \"q\" in @g");
    assert_int_equal(ed_run(p, (ed_feed[]){{"x", xt}, {"k", kt}, {"x", xt}}, 3), ED_ERR);
    CHECK_ERROR_HAS("input \"x\" is fed twice");
    assert_int_equal(ed_run(p, (ed_feed[]){{"x", NULL}, {"k", kt}}, 2), ED_ERR);
    CHECK_ERROR_HAS("input \"x\" is fed a NULL tensor");
    assert_int_equal(ed_run(p, (ed_feed[]){{"x", v3}, {"k", kt}}, 2), ED_ERR);
    CHECK_ERROR_HAS("input \"x\": fed f32[3], graph wants f32[4,3]");
    assert_int_equal(ed_run(p, (ed_feed[]){{"x", xi}, {"k", kt}}, 2), ED_ERR);
    CHECK_ERROR_HAS("input \"x\": fed i32[4,3], graph wants f32[4,3]");
    assert_int_equal(ed_run(p, (ed_feed[]){{NULL, xt}}, 1), ED_ERR);
    CHECK_ERROR_HAS("no name");
    assert_int_equal(ed_run(p, NULL, 2), ED_ERR);
    assert_int_equal(ed_run(p, (ed_feed[]){{"x", xt}}, -1), ED_ERR);
    assert_int_equal(ed_run(NULL, NULL, 0), ED_ERR);
    /* failed calls do not advance the random counter */
    assert_int_equal(ed_program_calls(p), 0);

    /* feed order does not matter */
    assert_int_equal(ed_run(p, (ed_feed[]){{"k", kt}, {"x", xt}}, 2), ED_OK);
    assert_true(f32_at(ed_program_output(p, "s"), 0) == 66);
    assert_int_equal(i32_at(ed_program_output(p, "k2"), 0), 42);
    assert_int_equal(ed_program_calls(p), 1);

    ed_tensor_free(xt);
    ed_tensor_free(kt);
    ed_tensor_free(v3);
    ed_tensor_free(xi);
    ed_program_free(p);
    ed_graph_free(g);
}

/* ---- outputs ---------------------------------------------------------------------- */

static void test_outputs(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("g");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape1(3));
    ed_node *y = ed_add(ed_mul_scalar(x, 2), ed_scalar(g, ED_F32, 1));
    ed_output(g, "y", y);
    ed_output(g, "x_again", x); /* a leaf as output: the program keeps a copy */
    ed_output(g, "c", CST(g, ED_I32, ed_shape1(2), 4, 5));
    ed_program *p = compile_on(g, NULL);
    assert_non_null(p);
    assert_int_equal(ed_program_num_outputs(p), 3);
    assert_string_equal(ed_program_output_name(p, 0), "y");
    assert_string_equal(ed_program_output_name(p, 2), "c");
    assert_null(ed_program_output_name(p, 3));
    assert_null(ed_program_output_at(p, -1));
    assert_null(ed_program_output(p, "nope"));

    float xs[3] = {1, -2, 0.5f};
    ed_tensor *xt = ed_tensor_wrap(ED_F32, ed_shape1(3), xs);
    assert_int_equal(ed_run(p, &(ed_feed){"x", xt}, 1), ED_OK);
    const ed_tensor *yt = ed_program_output(p, "y");
    assert_ptr_equal(yt, ed_program_output_at(p, 0));
    assert_true(yt->dtype == ED_F32 && ed_shape_eq(yt->shape, ed_shape1(3)));
    assert_true(f32_at(yt, 0) == 3 && f32_at(yt, 1) == -3 && f32_at(yt, 2) == 2);
    const ed_tensor *xa = ed_program_output(p, "x_again");
    assert_true(xa->data != (void *)xs);
    xs[0] = 100; /* the caller's buffer changes; the output keeps what the call saw */
    assert_true(f32_at(xa, 0) == 1 && f32_at(xa, 1) == -2);
    const ed_tensor *c = ed_program_output(p, "c");
    assert_int_equal(i32_at(c, 0), 4);
    assert_int_equal(i32_at(c, 1), 5);

    /* output tensors are the program's and are reused by the next call */
    xs[0] = 10;
    assert_int_equal(ed_run(p, &(ed_feed){"x", xt}, 1), ED_OK);
    assert_ptr_equal(ed_program_output(p, "y"), yt);
    assert_true(f32_at(yt, 0) == 21);
    ed_tensor_free(xt);
    ed_program_free(p);
    ed_graph_free(g);
}

/* Last call's output fed back as this call's input (a sampler loop): the program must
 * read the old values even though it rewrites that tensor during the call. */
static void test_output_fed_back(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("loop");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape1(2));
    ed_output(g, "u", ed_add_scalar(x, 1));  /* computed first, into its own tensor */
    ed_output(g, "v", ed_mul_scalar(x, 10)); /* reads x after u was written */
    ed_program *p = compile_on(g, NULL);
    float xs[2] = {1, 2};
    ed_tensor *xt = ed_tensor_wrap(ED_F32, ed_shape1(2), xs);
    assert_int_equal(ed_run(p, &(ed_feed){"x", xt}, 1), ED_OK);
    for (int step = 0; step < 3; step++) {
        const ed_tensor *u = ed_program_output(p, "u");
        float u0 = f32_at(u, 0), u1 = f32_at(u, 1);
        assert_int_equal(ed_run(p, &(ed_feed){"x", u}, 1), ED_OK);
        assert_true(f32_at(ed_program_output(p, "u"), 0) == u0 + 1);
        assert_true(f32_at(ed_program_output(p, "v"), 0) == u0 * 10);
        assert_true(f32_at(ed_program_output(p, "v"), 1) == u1 * 10);
    }
    assert_true(f32_at(ed_program_output(p, "u"), 0) == 5);
    ed_tensor_free(xt);
    ed_program_free(p);
    ed_graph_free(g);
}

/* ---- store binding ---------------------------------------------------------------- */

static void test_store_binding(void **state)
{
    (void)state;
    ed_store *st = ed_store_new(9);
    ed_graph *g1 = ed_graph_new("train");
    ed_node *w = ed_param(g1, "w", ED_F32, ed_shape2(2, 2), (ed_init){ED_INIT_ONES, 0});
    ed_node *s = ed_state(g1, "s", ED_F32, ed_shape1(2), (ed_init){ED_INIT_ZEROS, 0});
    ed_output(g1, "ws", ed_sum(w, ED_ALL_AXES, false));
    ed_output(g1, "ss", ed_sum(s, ED_ALL_AXES, false));
    ed_program *p1 = compile_on(g1, st);
    assert_non_null(p1);

    /* created with their initializers; params trainable, state not */
    assert_int_equal(ed_store_count(st), 2);
    ed_tensor *wt = ed_store_get(st, "w");
    assert_non_null(wt);
    for (int i = 0; i < 4; i++) assert_true(f32_at(wt, i) == 1);
    for (int i = 0; i < ed_store_count(st); i++)
        assert_int_equal(ed_store_trainable(st, i), strcmp(ed_store_name(st, i), "w") == 0);

    /* a second graph naming "w" binds the same tensor */
    ed_graph *g2 = ed_graph_new("sample");
    ed_node *w2 = ed_param(g2, "w", ED_F32, ed_shape2(2, 2), (ed_init){ED_INIT_NORMAL, 1});
    ed_output(g2, "w_copy", w2);
    ed_program *p2 = compile_on(g2, st);
    assert_non_null(p2);
    assert_int_equal(ed_store_count(st), 2);
    assert_ptr_equal(ed_store_get(st, "w"), wt);

    /* params are read from the store tensor by pointer: edits are seen */
    ((float *)wt->data)[3] = 5;
    assert_int_equal(ed_run(p1, NULL, 0), ED_OK);
    assert_true(f32_at(ed_program_output(p1, "ws"), 0) == 8);
    assert_int_equal(ed_run(p2, NULL, 0), ED_OK);
    assert_true(f32_at(ed_program_output(p2, "w_copy"), 3) == 5);

    /* an entry replaced by a tensor of the same type is picked up */
    ed_tensor *nw = ed_tensor_new(ED_F32, ed_shape2(2, 2));
    for (int i = 0; i < 4; i++) ((float *)nw->data)[i] = 0.5f;
    assert_int_equal(ed_store_put(st, "w", nw, true), ED_OK);
    assert_int_equal(ed_run(p1, NULL, 0), ED_OK);
    assert_true(f32_at(ed_program_output(p1, "ws"), 0) == 2);

    /* ... one of another type is refused at run time */
    assert_int_equal(ed_store_put(st, "w", ed_tensor_new(ED_F32, ed_shape1(3)), true), ED_OK);
    assert_int_equal(ed_run(p1, NULL, 0), ED_ERR);
    CHECK_ERROR_HAS("param \"w\": the store holds f32[3], graph wants f32[2,2]");

    ed_program_free(p1);
    ed_program_free(p2);
    ed_graph_free(g1);
    ed_graph_free(g2);
    ed_store_free(st);
}

static void test_store_errors_at_compile(void **state)
{
    (void)state;
    ed_store *st = ed_store_new(0);
    assert_int_equal(ed_store_put(st, "w", ed_tensor_new(ED_F32, ed_shape1(3)), true), ED_OK);
    ed_graph *g = ed_graph_new("g");
    ed_output(g, "w", ed_param(g, "w", ED_F32, ed_shape2(3, 1), (ed_init){ED_INIT_ZEROS, 0}));
    assert_null(compile_on(g, st));
    CHECK_ERROR_HAS("\"w\"");
    CHECK_ERROR_HAS("f32[3]");
    CHECK_ERROR_HAS("f32[3,1]");
    /* a graph with params needs a store */
    assert_null(compile_on(g, NULL));
    CHECK_ERROR_HAS("param \"w\" needs a store");
    ed_graph_free(g);
    ed_store_free(st);
}

/* ---- updates ---------------------------------------------------------------------- */

static void test_counter_update(void **state)
{
    (void)state;
    ed_store *st = ed_store_new(0);
    ed_graph *g = ed_graph_new("g");
    ed_node *count = ed_state(g, "count", ED_I32, ed_shape0(), (ed_init){ED_INIT_ZEROS, 0});
    ed_node *next = ed_add(count, ed_scalar(g, ED_I32, 1));
    ed_update(g, "count", next);
    ed_output(g, "seen", count);
    ed_output(g, "next", next);
    ed_program *p = compile_on(g, st);
    assert_non_null(p);
    for (int call = 0; call < 3; call++) {
        assert_int_equal(ed_run(p, NULL, 0), ED_OK);
        /* outputs show the values the call read; the store holds the update */
        assert_int_equal(i32_at(ed_program_output(p, "seen"), 0), call);
        assert_int_equal(i32_at(ed_program_output(p, "next"), 0), call + 1);
        assert_int_equal(i32_at(ed_store_get(st, "count"), 0), call + 1);
    }
    /* a second program on the same store continues from the stored value */
    ed_program *q = compile_on(g, st);
    assert_int_equal(ed_run(q, NULL, 0), ED_OK);
    assert_int_equal(i32_at(ed_program_output(q, "seen"), 0), 3);
    assert_int_equal(i32_at(ed_store_get(st, "count"), 0), 4);
    ed_program_free(q);
    ed_program_free(p);
    ed_graph_free(g);
    ed_store_free(st);
}

/* Updates see old values only: a swap, and an SGD-like step that reads w twice. */
static void test_updates_read_old_values(void **state)
{
    (void)state;
    ed_store *st = ed_store_new(0);
    ed_graph *g = ed_graph_new("g");
    ed_node *a = ed_param(g, "a", ED_F32, ed_shape1(2), (ed_init){ED_INIT_ONES, 0});
    ed_node *b = ed_param(g, "b", ED_F32, ed_shape1(2), (ed_init){ED_INIT_ZEROS, 0});
    ed_node *w = ed_param(g, "w", ED_F32, ed_shape1(2), (ed_init){ED_INIT_ONES, 0});
    ed_node *grad = ed_input(g, "grad", ED_F32, ed_shape1(2));
    ed_update(g, "a", b);
    ed_update(g, "b", a);
    ed_update(g, "w", ed_sub(w, ed_mul_scalar(grad, 0.5)));
    ed_output(g, "w_before", w);
    ed_program *p = compile_on(g, st);
    assert_non_null(p);
    float gs[2] = {2, -4};
    ed_tensor *gt = ed_tensor_wrap(ED_F32, ed_shape1(2), gs);

    /* a failed call writes nothing */
    assert_int_equal(ed_run(p, NULL, 0), ED_ERR);
    assert_true(f32_at(ed_store_get(st, "a"), 0) == 1);

    assert_int_equal(ed_run(p, &(ed_feed){"grad", gt}, 1), ED_OK);
    assert_true(f32_at(ed_store_get(st, "a"), 0) == 0 && f32_at(ed_store_get(st, "a"), 1) == 0);
    assert_true(f32_at(ed_store_get(st, "b"), 0) == 1 && f32_at(ed_store_get(st, "b"), 1) == 1);
    assert_true(f32_at(ed_store_get(st, "w"), 0) == 0 && f32_at(ed_store_get(st, "w"), 1) == 3);
    assert_true(f32_at(ed_program_output(p, "w_before"), 1) == 1);
    assert_int_equal(ed_run(p, &(ed_feed){"grad", gt}, 1), ED_OK);
    assert_true(f32_at(ed_store_get(st, "a"), 0) == 1 && f32_at(ed_store_get(st, "b"), 0) == 0);
    assert_true(f32_at(ed_store_get(st, "w"), 1) == 5);
    ed_tensor_free(gt);
    ed_program_free(p);
    ed_graph_free(g);
    ed_store_free(st);
}

/* ---- compile errors and backends -------------------------------------------------- */

static void test_backend_choice(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("g");
    ed_output(g, "y", ed_add_scalar(ed_scalar(g, ED_F32, 1), 2));
    /* NULL options, a zeroed struct and an unset backend all mean the JIT */
    ed_program *d[3] = {ed_compile(g, NULL, NULL), ed_compile(g, NULL, &(ed_compile_opts){0}),
                        ed_compile(g, NULL, &(ed_compile_opts){.seed = 3})};
    for (int i = 0; i < 3; i++) {
        assert_non_null(d[i]);
        assert_int_equal(ed_program_backend(d[i]), ED_BACKEND_JIT);
        assert_int_equal(ed_run(d[i], NULL, 0), ED_OK);
        assert_true(f32_at(ed_program_output(d[i], "y"), 0) == 3);
        ed_program_free(d[i]);
    }
    ed_program *p = ed_compile(g, NULL, &(ed_compile_opts){.backend = ED_BACKEND_INTERP});
    assert_int_equal(ed_program_backend(p), ED_BACKEND_INTERP);
    ed_program_free(p);
    assert_int_equal(ed_program_backend(NULL), ED_BACKEND_DEFAULT);

    assert_null(ed_compile(g, NULL, &(ed_compile_opts){.backend = (ed_backend)7}));
    CHECK_ERROR_HAS("unknown backend 7");
    assert_null(ed_compile(g, NULL, &(ed_compile_opts){.opt_level = (ed_opt_level)9}));
    CHECK_ERROR_HAS("unknown opt level 9");
    assert_null(ed_compile(g, NULL, &(ed_compile_opts){.backend = ED_BACKEND_INTERP, .opt_level = (ed_opt_level)-1}));
    CHECK_ERROR_HAS("unknown opt level -1");
    ed_graph_free(g);
}

/* Element-wise closeness relative to max(1, |want|). */
static void assert_close(const ed_tensor *got, const ed_tensor *want, double tol, const char *what)
{
    assert_int_equal(got->dtype, want->dtype);
    assert_true(ed_shape_eq(got->shape, want->shape));
    for (int64_t i = 0; i < ed_tensor_numel(want); i++) {
        double a = ed_tensor_get(got, i), b = ed_tensor_get(want, i);
        if (!(fabs(a - b) <= tol * fmax(1, fabs(b))))
            fail_msg("%s: element %lld: got %.9g, interpreter %.9g", what, (long long)i, a, b);
    }
}

/* The example MLP plus a step of plain SGD on it (updates, randomness, i32 state):
 * every opt level computes what the interpreter does, call after call. */
static ed_graph *opt_level_graph(void)
{
    ed_graph *g = ed_graph_read_file(ED_SOURCE_DIR "/examples/mlp.edir");
    assert_non_null(g);
    ed_node *w = ed_graph_leaf(g, ED_OP_PARAM, "mlp.0.w");
    ed_node *noise = ed_randn(g, ED_F32, w->shape);
    ed_update(g, "mlp.0.w", ed_add(w, ed_mul_scalar(noise, 0.01)));
    ed_node *steps = ed_state(g, "steps", ED_I32, ed_shape0(), (ed_init){ED_INIT_ZEROS, 0});
    ed_update(g, "steps", ed_add(steps, ed_scalar(g, ED_I32, 1)));
    ed_output(g, "steps", steps);
    assert_null(ed_graph_error(g));
    return g;
}

static void test_opt_levels_match_the_interpreter(void **state)
{
    (void)state;
    ed_graph *g = opt_level_graph();
    float xs[8] = {0, 0, 0, 1, 1, 0, 1, 1};
    ed_tensor *xt = ed_tensor_wrap(ED_F32, ed_shape2(4, 2), xs);
    const ed_opt_level levels[5] = {ED_OPT_O0, ED_OPT_O1, ED_OPT_O2, ED_OPT_O3, ED_OPT_DEFAULT};
    for (int l = 0; l < 5; l++) {
        ed_store *si = ed_store_new(4), *sj = ed_store_new(4);
        ed_program *pi = ed_compile(g, si, &(ed_compile_opts){.backend = ED_BACKEND_INTERP, .seed = 8});
        ed_program *pj = ed_compile(g, sj, &(ed_compile_opts){.seed = 8, .opt_level = levels[l]});
        assert_non_null(pi);
        if (!pj) fail_msg("opt level %d: %s", (int)levels[l], ed_last_error());
        for (int call = 0; call < 3; call++) {
            assert_int_equal(ed_run(pi, &(ed_feed){"x", xt}, 1), ED_OK);
            assert_int_equal(ed_run(pj, &(ed_feed){"x", xt}, 1), ED_OK);
            for (int k = 0; k < ed_program_num_outputs(pi); k++)
                assert_close(ed_program_output_at(pj, k), ed_program_output_at(pi, k), 1e-5,
                             ed_program_output_name(pi, k));
            assert_close(ed_store_get(sj, "mlp.0.w"), ed_store_get(si, "mlp.0.w"), 1e-6, "update mlp.0.w");
        }
        assert_int_equal(i32_at(ed_store_get(sj, "steps"), 0), 3);
        ed_program_free(pi);
        ed_program_free(pj);
        ed_store_free(si);
        ed_store_free(sj);
    }
    ed_tensor_free(xt);
    ed_graph_free(g);
}

/* Every computed node of a JIT program lives in one arena allocated at compile time;
 * a call binds pointers and allocates nothing. */
static void test_jit_arena_and_steady_state(void **state)
{
    (void)state;
    ed_graph *g = opt_level_graph();
    ed_store *st = ed_store_new(1);
    ed_program *p = ed_compile(g, st, NULL);
    assert_non_null(p);
    assert_non_null(p->arena);
    assert_int_equal((uintptr_t)p->arena % 64, 0);
    void *arena = p->arena;
    for (int i = 0; i < p->nnodes; i++) {
        const ed_tensor *t = p->owned[i];
        if (!t) continue;
        assert_false(t->owns); /* a view */
        uintptr_t at = (uintptr_t)t->data - (uintptr_t)arena;
        assert_int_equal(at % 64, 0);
        assert_true(at + ed_tensor_bytes(t) <= p->arena_bytes);
    }
    assert_int_equal(ed_program_compile_stats(p).arena_bytes, p->arena_bytes);

    float xs[8] = {0, 0, 0, 1, 1, 0, 1, 1};
    ed_tensor *xt = ed_tensor_wrap(ED_F32, ed_shape2(4, 2), xs);
    ed_feed feed = {"x", xt};
    assert_int_equal(ed_run(p, &feed, 1), ED_OK); /* warm-up: OpenBLAS sets up its buffers */
    const ed_tensor *y = ed_program_output(p, "y");
    float y0[4];
    memcpy(y0, y->data, sizeof y0);
#ifdef COUNTS_ALLOCS
    long before = allocs;
#endif
    int rc1 = ed_run(p, &feed, 1), rc2 = ed_run(p, &feed, 1);
#ifdef COUNTS_ALLOCS
    long during = allocs - before;
    assert_true(before > 0); /* the counter works: compiling allocated */
    assert_int_equal(during, 0);
#endif
    assert_int_equal(rc1, ED_OK);
    assert_int_equal(rc2, ED_OK);
    assert_ptr_equal(p->arena, arena);
    assert_ptr_equal(ed_program_output(p, "y"), y);
    assert_true((uintptr_t)y->data >= (uintptr_t)arena && (uintptr_t)y->data < (uintptr_t)arena + p->arena_bytes);
    /* the noisy update of mlp.0.w moves y from call to call; the step counter is exact */
    assert_memory_not_equal(y->data, y0, sizeof y0);
    assert_int_equal(i32_at(ed_program_output(p, "steps"), 0), 2);
    ed_tensor_free(xt);
    ed_program_free(p);
    ed_store_free(st);
    ed_graph_free(g);
}

/* A large arena (mapped, 2 MB aligned, never memset) reads as zero before its first call,
 * even where a freed program's arena held values, and runs like the interpreter. */
static void test_jit_large_arena_reads_zero(void **state)
{
    (void)state;
    enum { N = 1100000 }; /* 4.4 MB of f32: the huge-page path */
    ed_graph *g = ed_graph_parse("graph @big {\n"
                                 "  %x = input \"x\" : f32[1100000]\n"
                                 "  %y = mul %x, %x : f32[1100000]\n"
                                 "  %z = add %y, %x : f32[1100000]\n"
                                 "  out z = %z\n"
                                 "}\n",
                                 "big");
    assert_non_null(g);
    ed_tensor *x = ed_tensor_new(ED_F32, ed_shape1(N));
    for (int i = 0; i < N; i++) ((float *)x->data)[i] = (float)(i % 97) / 8 + 1;
    ed_feed feed = {"x", x};
    ed_program *want = compile_with(g, NULL, ED_BACKEND_INTERP, 0);
    run_ok(want, &feed, 1);
    for (int round = 0; round < 2; round++) {
        ed_program *p = compile_with(g, NULL, ED_BACKEND_JIT, 0);
        assert_true(p->arena_bytes >= (4 << 20));
        assert_int_equal((uintptr_t)p->arena % (2 << 20), 0);
        const unsigned char *a = p->arena;
        size_t nonzero = 0;
        for (size_t i = 0; i < p->arena_bytes; i++) nonzero += a[i] != 0;
        assert_int_equal(nonzero, 0); /* round 1: after round 0's arena was filled and freed */
        run_ok(p, &feed, 1);
        check_tensors_agree(out(want, "z"), out(p, "z"), 0, "large arena", "z");
        ed_program_free(p);
    }
    ed_program_free(want);
    ed_tensor_free(x);
    ed_graph_free(g);
}

/* The gemm convolutions share a scratch buffer the module holds: a training step through
 * conv2d, its input gradient and its weight gradient allocates nothing per call either. */
static void test_jit_conv_steady_state(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("conv_step");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape4(2, 3, 9, 9));
    ed_node *w1 = ed_param(g, "w1", ED_F32, ed_shape4(8, 3, 3, 3), (ed_init){ED_INIT_KAIMING_NORMAL, 0});
    ed_node *w2 = ed_param(g, "w2", ED_F32, ed_shape4(8, 8, 3, 3), (ed_init){ED_INIT_KAIMING_NORMAL, 0});
    ed_conv_opts o = {.stride = {2, 2}, .padding = {1, 1}};
    ed_node *h = ed_relu(ed_conv2d(x, w1, &o));
    ed_node *loss = ed_mean(ed_square(ed_conv2d(h, w2, &o)), ED_ALL_AXES, false);
    ed_node *wrt[2] = {w1, w2}, *grads[2];
    assert_int_equal(ed_grad(loss, wrt, 2, grads), ED_OK);
    ed_update(g, "w1", ed_sub(w1, ed_mul_scalar(grads[0], 0.1)));
    ed_update(g, "w2", ed_sub(w2, ed_mul_scalar(grads[1], 0.1)));
    ed_output(g, "loss", loss);
    ed_store *st = ed_store_new(1);
    ed_program *p = ed_compile(g, st, &(ed_compile_opts){.conv = ED_CONV_GEMM});
    assert_non_null(p);
    ed_tensor *xt = ed_tensor_new(ED_F32, x->shape);
    for (int64_t i = 0; i < ed_tensor_numel(xt); i++) ed_tensor_set(xt, i, (double)(i % 7) - 3);
    ed_feed feed = {"x", xt};
    assert_int_equal(ed_run(p, &feed, 1), ED_OK); /* warm-up */
    float first = f32_at(ed_program_output(p, "loss"), 0);
#ifdef COUNTS_ALLOCS
    long before = allocs;
#endif
    int rc1 = ed_run(p, &feed, 1), rc2 = ed_run(p, &feed, 1);
#ifdef COUNTS_ALLOCS
    assert_int_equal(allocs - before, 0);
#endif
    assert_int_equal(rc1, ED_OK);
    assert_int_equal(rc2, ED_OK);
    assert_true(f32_at(ed_program_output(p, "loss"), 0) < first); /* the steps descend */
    ed_tensor_free(xt);
    ed_program_free(p);
    ed_store_free(st);
    ed_graph_free(g);
}

/* Stable outputs: the same feeds give bit-identical outputs, call after call. */
static void test_jit_outputs_are_stable(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_read_file(ED_SOURCE_DIR "/examples/mlp.edir");
    ed_store *st = ed_store_new(2);
    ed_program *p = ed_compile(g, st, NULL);
    assert_non_null(p);
    float xs[8] = {0.5f, -1, 2, 1, 1, 0, -3, 1};
    ed_tensor *xt = ed_tensor_wrap(ED_F32, ed_shape2(4, 2), xs);
    assert_int_equal(ed_run(p, &(ed_feed){"x", xt}, 1), ED_OK);
    const ed_tensor *y = ed_program_output(p, "y");
    float y0[4];
    memcpy(y0, y->data, sizeof y0);
    for (int call = 0; call < 3; call++) {
        assert_int_equal(ed_run(p, &(ed_feed){"x", xt}, 1), ED_OK);
        assert_ptr_equal(ed_program_output(p, "y"), y);
        assert_memory_equal(y->data, y0, sizeof y0);
    }
    ed_tensor_free(xt);
    ed_program_free(p);
    ed_store_free(st);
    ed_graph_free(g);
}

static void test_compile_stats(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("g");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape1(3));      /* bound: not in the arena */
    ed_node *c = CST(g, ED_F32, ed_shape1(3), 1, 2, 3);       /* 12 bytes -> 64 */
    ed_node *y = ed_mul(ed_add(x, c), c);                     /* two kernels, 64 each */
    ed_output(g, "y", ed_sum(ed_exp(y), ED_ALL_AXES, false)); /* two more */
    /* no graph passes: fuse would make add, mul and exp one kernel */
    ed_program *p = ed_compile(g, NULL, &(ed_compile_opts){.opt_level = ED_OPT_O3, .passes = "", .no_cache = true});
    assert_non_null(p);
    ed_compile_stats s = ed_program_compile_stats(p);
    assert_int_equal(s.kernels, 4);
    /* the const, add (mul and exp write over it in place), the sum */
    assert_int_equal(s.arena_bytes, 3 * 64);
    assert_int_equal(s.memory.arena_bytes, 3 * 64);
    assert_int_equal(s.memory.buffer_bytes, 5 * 64);
    assert_int_equal(s.memory.peak_bytes, 3 * 64);
    assert_int_equal(s.memory.buffers, 5);
    assert_int_equal(s.memory.inplace, 2);
    assert_true(s.lower_ms > 0 && s.optimize_ms > 0 && s.codegen_ms > 0);
    ed_program_free(p);
    /* no reuse: every buffer its own slot, as before planning */
    p = ed_compile(g, NULL, &(ed_compile_opts){.arena = ED_ARENA_SEPARATE, .passes = ""});
    s = ed_program_compile_stats(p);
    assert_int_equal(s.arena_bytes, 5 * 64);
    assert_int_equal(s.memory.inplace, 0);
    ed_program_free(p);
    /* reuse without in-place: exp takes the dead add's slot, the sum the mul's */
    p = ed_compile(g, NULL, &(ed_compile_opts){.arena = ED_ARENA_REUSE, .passes = ""});
    s = ed_program_compile_stats(p);
    assert_int_equal(s.arena_bytes, 3 * 64);
    assert_int_equal(s.memory.peak_bytes, 3 * 64);
    assert_int_equal(s.memory.inplace, 0);
    ed_program_free(p);
    assert_null(ed_compile(g, NULL, &(ed_compile_opts){.arena = (ed_arena_mode)9}));
    assert_non_null(strstr(ed_last_error(), "arena mode"));

    p = ed_compile(g, NULL, &(ed_compile_opts){.backend = ED_BACKEND_INTERP});
    s = ed_program_compile_stats(p);
    assert_int_equal(s.kernels, 1); /* the default pipeline fuses add, mul, exp and the sum */
    assert_true(s.lower_ms == 0 && s.optimize_ms == 0 && s.codegen_ms == 0 && s.arena_bytes == 0);
    ed_program_free(p);
    s = ed_program_compile_stats(NULL);
    assert_int_equal(s.kernels, 0);
    ed_graph_free(g);
}

/* Nodes that compute the same function of their inputs share one JIT kernel (ed_node_key):
 * exp of two f32[3] inputs is one kernel, exp of an f32[4] the same one (a flat kernel
 * takes its length at run time, test_jit_flat), and two random draws of the same shape
 * differ in their stream, so they are two. Values stay each node's own. */
static void test_identical_kernels_shared(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("g");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape1(3)), *y = ed_input(g, "y", ED_F32, ed_shape1(3));
    ed_node *z = ed_input(g, "z", ED_F32, ed_shape1(4));
    ed_output(g, "a", ed_set_name(ed_exp(x), "one"));
    ed_output(g, "b", ed_set_name(ed_exp(y), "two")); /* another debug name: still the same kernel */
    ed_output(g, "c", ed_exp(z));
    ed_output(g, "r1", ed_rand(g, ED_F32, ed_shape1(3), 0, 1));
    ed_output(g, "r2", ed_rand(g, ED_F32, ed_shape1(3), 0, 1));
    ed_program *p = ed_compile(g, NULL, &(ed_compile_opts){.passes = ""});
    assert_non_null(p);
    assert_int_equal(ed_program_compile_stats(p).kernels, 3);
    float xv[3] = {0, 1, -1}, yv[3] = {2, 0.5f, 3}, zv[4] = {1, 2, 3, 4};
    ed_tensor *xt = ed_tensor_wrap(ED_F32, ed_shape1(3), xv), *yt = ed_tensor_wrap(ED_F32, ed_shape1(3), yv);
    ed_tensor *zt = ed_tensor_wrap(ED_F32, ed_shape1(4), zv);
    ed_feed f[] = {{"x", xt}, {"y", yt}, {"z", zt}};
    assert_int_equal(ed_run(p, f, 3), ED_OK);
    for (int i = 0; i < 3; i++) {
        assert_true(fabsf(f32_at(ed_program_output(p, "a"), i) - expf(xv[i])) <= 2e-6f * expf(xv[i]));
        assert_true(fabsf(f32_at(ed_program_output(p, "b"), i) - expf(yv[i])) <= 2e-6f * expf(yv[i]));
    }
    for (int i = 0; i < 4; i++)
        assert_true(fabsf(f32_at(ed_program_output(p, "c"), i) - expf(zv[i])) <= 2e-6f * expf(zv[i]));
    assert_memory_not_equal(ed_program_output(p, "r1")->data, ed_program_output(p, "r2")->data, 3 * sizeof(float));
    ed_tensor_free(xt);
    ed_tensor_free(yt);
    ed_tensor_free(zt);
    ed_program_free(p);
    ed_graph_free(g);
}

static void test_graph_errors_refuse_compile(void **state)
{
    (void)state;
    assert_null(ed_compile(NULL, NULL, NULL));
    CHECK_ERROR_HAS("no graph");

    ed_graph *g = ed_graph_new("bad");
    ed_node *a = ed_input(g, "a", ED_F32, ed_shape2(2, 3));
    ed_node *b = ed_input(g, "b", ED_F32, ed_shape2(4, 5));
    assert_null(ed_matmul(a, b));
    assert_null(ed_compile(g, NULL, NULL));
    CHECK_ERROR_HAS("graph @bad has an error");
    CHECK_ERROR_HAS(ed_graph_error(g));
    /* the sticky error wins over the backend choice */
    assert_null(ed_compile(g, NULL, &(ed_compile_opts){.backend = ED_BACKEND_JIT}));
    CHECK_ERROR_HAS("inner dimensions differ");
    ed_graph_free(g);

    /* a graph the verifier rejects (a node whose type disagrees with its rule) */
    ed_graph *h = ed_graph_new("corrupt");
    ed_node *x = ed_input(h, "x", ED_F32, ed_shape1(3));
    ed_node *y = ed_neg(x);
    y->dtype = ED_I32;
    assert_null(ed_compile(h, NULL, NULL));
    CHECK_ERROR_HAS("verify:");
    ed_graph_free(h);
}

/* ed_compile takes a snapshot: nodes added to the graph later are not in the program,
 * and the graph may be freed while the program lives on. */
static void test_program_is_a_snapshot(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("g");
    ed_output(g, "y", ed_add(ed_scalar(g, ED_F32, 1), ed_scalar(g, ED_F32, 2)));
    ed_program *p = compile_on(g, NULL);
    assert_non_null(p);
    ed_output(g, "z", ed_scalar(g, ED_F32, 2));
    ed_graph_free(g);
    assert_int_equal(ed_run(p, NULL, 0), ED_OK);
    assert_int_equal(ed_program_num_outputs(p), 1);
    assert_float_equal(ed_tensor_get(ed_program_output(p, "y"), 0), 3.0, 0);
    assert_null(ed_program_output(p, "z"));
    ed_program_free(p);
}

static void test_empty_graph(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("empty");
    ed_program *p = compile_on(g, NULL);
    assert_non_null(p);
    assert_int_equal(ed_run(p, NULL, 0), ED_OK);
    assert_int_equal(ed_program_num_outputs(p), 0);
    ed_program_free(p);
    ed_program_free(NULL);
    ed_graph_free(g);
}

/* The seed option keys the random streams; the counter advances per call. */
static void test_seed_and_calls(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("g");
    ed_output(g, "r", ed_randint(g, ed_shape1(64), 0, 1000000));
    ed_program *a = ed_compile(g, NULL, &(ed_compile_opts){.backend = backend_under_test, .seed = 1});
    ed_program *b = ed_compile(g, NULL, &(ed_compile_opts){.backend = backend_under_test, .seed = 2});
    assert_int_equal(ed_run(a, NULL, 0), ED_OK);
    assert_int_equal(ed_run(b, NULL, 0), ED_OK);
    const ed_tensor *ra = ed_program_output(a, "r"), *rb = ed_program_output(b, "r");
    assert_memory_not_equal(ra->data, rb->data, ed_tensor_bytes(ra));
    ed_program_set_calls(b, 5);
    ed_program_set_calls(a, 5);
    assert_int_equal(ed_program_calls(a), 5);
    ed_program_free(b);
    b = ed_compile(g, NULL, &(ed_compile_opts){.backend = backend_under_test, .seed = 1});
    ed_program_set_calls(b, 5);
    assert_int_equal(ed_run(a, NULL, 0), ED_OK);
    assert_int_equal(ed_run(b, NULL, 0), ED_OK);
    assert_memory_equal(ed_program_output(a, "r")->data, ed_program_output(b, "r")->data, ed_tensor_bytes(ra));
    assert_int_equal(ed_program_calls(a), 6);
    ed_program_free(a);
    ed_program_free(b);
    ed_graph_free(g);
}

int main(void)
{
    /* ed_run's contract, on each backend */
    const struct CMUnitTest shared[] = {
        cmocka_unit_test(test_feed_errors),
        cmocka_unit_test(test_outputs),
        cmocka_unit_test(test_output_fed_back),
        cmocka_unit_test(test_store_binding),
        cmocka_unit_test(test_store_errors_at_compile),
        cmocka_unit_test(test_counter_update),
        cmocka_unit_test(test_updates_read_old_values),
        cmocka_unit_test(test_program_is_a_snapshot),
        cmocka_unit_test(test_empty_graph),
        cmocka_unit_test(test_seed_and_calls),
    };
    const struct CMUnitTest own[] = {
        cmocka_unit_test(test_backend_choice),
        cmocka_unit_test(test_graph_errors_refuse_compile),
        cmocka_unit_test(test_opt_levels_match_the_interpreter),
        cmocka_unit_test(test_jit_arena_and_steady_state),
        cmocka_unit_test(test_jit_large_arena_reads_zero),
        cmocka_unit_test(test_jit_conv_steady_state),
        cmocka_unit_test(test_jit_outputs_are_stable),
        cmocka_unit_test(test_compile_stats),
        cmocka_unit_test(test_identical_kernels_shared),
    };
    int failed = cmocka_run_group_tests_name("jit", shared, on_jit, NULL);
    failed += cmocka_run_group_tests_name("interp", shared, on_interp, NULL);
    return failed + cmocka_run_group_tests_name("backends", own, NULL, NULL);
}
