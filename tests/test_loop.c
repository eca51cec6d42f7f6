/* The loop op: builder, verifier, text form, interpreter (values checked by hand) and
 * the JIT against the interpreter, bit for bit. Shared tests run once per backend. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "support/interp_check.h"
#include "support/run_check.h"

#include "backend/llvm/jit.h"
#include "backend/program.h"
#include "frontend/loop.h"
#include "ir/text.h"
#include "frontend/nn.h"
#include "passes/pass.h"
#include "passes/autodiff.h"
#include "runtime/philox.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void assert_error_has(const ed_graph *g, const char *part)
{
    const char *err = ed_graph_error(g);
    if (!err || !strstr(err, part))
        fail_msg("expected an error containing\n  %s\ngot\n  %s", part, err ? err : "(none)");
}

/* ---- values by hand --------------------------------------------------------------- */

/* c = 0; 10 times c += 1, s += index: c = 10, s = 0 + 1 + ... + 9 = 45. */
static void test_counter_and_index_sum(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("count");
    ed_loop_builder *b = ed_loop_begin(g, 10);
    ed_node *c = ed_loop_carried(b, ed_scalar(g, ED_I32, 0));
    ed_node *s = ed_loop_carried(b, ed_scalar(g, ED_I32, 0));
    ed_node *next[2] = {ed_add(c, ed_scalar(ed_loop_body(b), ED_I32, 1)), ed_add(s, ed_loop_index(b))};
    ed_node *loop = ed_loop_end(b, next, 2, NULL, 0);
    ed_output(g, "c", ed_loop_result(loop, 0));
    ed_output(g, "s", ed_loop_result(loop, 1));
    assert_null(ed_graph_error(g));
    ed_program *p = compile_with(g, NULL, backend_under_test, 0);
    run_ok(p, NULL, 0);
    assert_int_equal(i32_at(out(p, "c"), 0), 10);
    assert_int_equal(i32_at(out(p, "s"), 0), 45);
    run_ok(p, NULL, 0); /* a second call starts again from the initial values */
    assert_int_equal(i32_at(out(p, "c"), 0), 10);
    ed_program_free(p);
    ed_graph_free(g);
}

/* acc = 0; acc += x * (index + 1) over 4 trips: acc = 10 x. The input x is captured. */
static void test_running_sum_of_captured_input(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("rsum");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape1(3));
    ed_loop_builder *b = ed_loop_begin(g, 4);
    ed_node *acc = ed_loop_carried(b, ed_fill(g, ED_F32, ed_shape1(3), 0));
    ed_node *xb = ed_loop_capture(b, x);
    assert_ptr_equal(ed_loop_capture(b, x), xb); /* captured once */
    ed_node *k = ed_add_scalar(ed_cast(ed_loop_index(b), ED_F32), 1);
    ed_node *acc1 = ed_add(acc, ed_mul(xb, k));
    ed_node *loop = ed_loop_end(b, &acc1, 1, NULL, 0);
    ed_output(g, "acc", ed_loop_result(loop, 0));
    assert_null(ed_graph_error(g));
    assert_int_equal(loop->nin, 2);
    ed_program *p = compile_with(g, NULL, backend_under_test, 0);
    ed_tensor *xt = ed_tensor_new(ED_F32, ed_shape1(3));
    float xs[3] = {1, -2, 0.5f};
    memcpy(xt->data, xs, sizeof xs);
    run_ok(p, &(ed_feed){"x", xt}, 1);
    for (int i = 0; i < 3; i++) assert_float_equal(f32_at(out(p, "acc"), i), 10 * xs[i], 0);
    ed_tensor_free(xt);
    ed_program_free(p);
    ed_graph_free(g);
}

/* v = 1; v *= 2 with v stacked before the update: [1, 2, 4, 8, 16], final 32. */
static void test_stacked_trajectory(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("traj");
    ed_loop_builder *b = ed_loop_begin(g, 5);
    ed_node *v = ed_loop_carried(b, CST(g, ED_F32, ed_shape1(2), 1, -1));
    ed_node *v2 = ed_mul_scalar(v, 2);
    ed_node *i = ed_loop_index(b);
    ed_node *stacked[2] = {v, i};
    ed_node *loop = ed_loop_end(b, &v2, 1, stacked, 2);
    ed_node *traj = ed_loop_result(loop, 1), *idx = ed_loop_result(loop, 2);
    assert_non_null(traj);
    assert_true(ed_shape_eq(traj->shape, ed_shape2(5, 2)));
    assert_true(ed_shape_eq(idx->shape, ed_shape1(5)));
    ed_output(g, "v", ed_loop_result(loop, 0));
    ed_output(g, "traj", traj);
    ed_output(g, "idx", idx);
    ed_program *p = compile_with(g, NULL, backend_under_test, 0);
    run_ok(p, NULL, 0);
    for (int t = 0; t < 5; t++) {
        assert_float_equal(f32_at(out(p, "traj"), 2 * t), (float)(1 << t), 0);
        assert_float_equal(f32_at(out(p, "traj"), 2 * t + 1), -(float)(1 << t), 0);
        assert_int_equal(i32_at(out(p, "idx"), t), t);
    }
    assert_float_equal(f32_at(out(p, "v"), 0), 32, 0);
    ed_program_free(p);
    ed_graph_free(g);
}

/* (a, b) -> (b, a + b): Fibonacci, which needs the carried values double-buffered. */
static void test_carried_swap(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("fib");
    ed_loop_builder *b = ed_loop_begin(g, 10);
    ed_node *a = ed_loop_carried(b, ed_scalar(g, ED_I32, 0));
    ed_node *c = ed_loop_carried(b, ed_scalar(g, ED_I32, 1));
    ed_node *next[2] = {c, ed_add(a, c)};
    ed_node *loop = ed_loop_end(b, next, 2, NULL, 0);
    ed_output(g, "a", ed_loop_result(loop, 0));
    ed_output(g, "b", ed_loop_result(loop, 1));
    ed_program *p = compile_with(g, NULL, backend_under_test, 0);
    run_ok(p, NULL, 0);
    assert_int_equal(i32_at(out(p, "a"), 0), 55);
    assert_int_equal(i32_at(out(p, "b"), 0), 89);
    ed_program_free(p);
    ed_graph_free(g);
}

/* ed_compile runs passes on a copy: the copy must own its own body, so the program
 * outlives the graph it came from, and the copy prints like the original. */
static void test_compiled_copy_owns_its_body(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("copy");
    ed_loop_builder *b = ed_loop_begin(g, 7);
    ed_node *s = ed_loop_carried(b, ed_scalar(g, ED_I32, 0));
    ed_node *next[1] = {ed_add(ed_mul(s, ed_scalar(ed_loop_body(b), ED_I32, 1)), ed_loop_index(b))};
    ed_output(g, "s", ed_loop_result(ed_loop_end(b, next, 1, NULL, 0), 0));
    assert_null(ed_graph_error(g));
    ed_graph *c = ed_graph_clone(g);
    assert_non_null(c);
    assert_true(c->nsubs == 1 && g->nsubs == 1 && c->subs[0] != g->subs[0] && c->subs[0]->parent == c);
    char *a = ed_graph_print(g), *z = ed_graph_print(c);
    assert_string_equal(a, z);
    free(a), free(z);
    ed_graph_free(c);
    ed_program *p = compile_with(g, NULL, backend_under_test, 0);
    ed_graph_free(g);
    run_ok(p, NULL, 0);
    assert_int_equal(i32_at(out(p, "s"), 0), 21);
    ed_program_free(p);
}

static void test_zero_trips_returns_initial_values(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("zero");
    ed_loop_builder *b = ed_loop_begin(g, 0);
    ed_node *v = ed_loop_carried(b, CST(g, ED_F32, ed_shape1(3), 1, 2, 3));
    ed_node *v1 = ed_add(v, ed_randn(ed_loop_body(b), ED_F32, ed_shape1(3)));
    ed_node *loop = ed_loop_end(b, &v1, 1, &v1, 1);
    ed_node *traj = ed_loop_result(loop, 1);
    assert_true(ed_shape_eq(traj->shape, ed_shape2(0, 3)));
    ed_output(g, "v", ed_loop_result(loop, 0));
    ed_output(g, "traj", traj);
    ed_program *p = compile_with(g, NULL, backend_under_test, 0);
    run_ok(p, NULL, 0);
    for (int i = 0; i < 3; i++) assert_float_equal(f32_at(out(p, "v"), i), i + 1, 0);
    assert_int_equal(ed_tensor_numel(out(p, "traj")), 0);
    ed_program_free(p);
    ed_graph_free(g);
}

/* x += 0.1 * randn each step: the increments are exactly the draws of the rule in
 * runtime/philox.h (iteration seed from the loop's stream, then the op's stream). */
static ed_graph *random_walk_graph(int64_t trips, ed_shape s, ed_node **loop_out, ed_node **randn_out)
{
    ed_graph *g = ed_graph_new("walk");
    ed_loop_builder *b = ed_loop_begin(g, trips);
    ed_node *x = ed_loop_carried(b, ed_fill(g, ED_F32, s, 0));
    ed_node *z = ed_randn(ed_loop_body(b), ED_F32, s);
    ed_node *x1 = ed_add(x, ed_mul_scalar(z, 0.1));
    ed_node *loop = ed_loop_end(b, &x1, 1, &x1, 1);
    ed_output(g, "x", ed_loop_result(loop, 0));
    ed_output(g, "traj", ed_loop_result(loop, 1));
    assert_null(ed_graph_error(g));
    if (loop_out) *loop_out = loop;
    if (randn_out) *randn_out = z;
    return g;
}

static void test_random_walk_by_hand(void **state)
{
    (void)state;
    ed_node *loop, *z;
    ed_graph *g = random_walk_graph(6, ed_shape1(5), &loop, &z);
    const uint64_t seed = 77;
    ed_program *p = compile_with(g, NULL, backend_under_test, seed);
    for (uint64_t call = 0; call < 2; call++) {
        run_ok(p, NULL, 0);
        float x[5] = {0};
        for (uint32_t i = 0; i < 6; i++) {
            uint64_t si = ed_rng_loop_seed(seed, call, loop->attr.stream, i);
            float draw[5];
            ed_rng_normal(draw, ED_F32, 5, si, call, z->attr.stream);
            for (int e = 0; e < 5; e++) {
                x[e] = x[e] + (float)(draw[e] * 0.1f);
                assert_true(f32_at(out(p, "traj"), i * 5 + e) == x[e]);
            }
        }
        for (int e = 0; e < 5; e++) assert_true(f32_at(out(p, "x"), e) == x[e]);
        /* every step moved: the iterations do not repeat one draw */
        assert_true(f32_at(out(p, "traj"), 5) - f32_at(out(p, "traj"), 0) != f32_at(out(p, "traj"), 0));
    }
    ed_program_free(p);
    ed_graph_free(g);
}

/* y = w * x over 3 steps with the param w captured; and a param the body builds
 * itself is moved to the outer graph and captured. */
static void test_captured_param(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("param");
    ed_node *w = ed_param(g, "w", ED_F32, ed_shape1(2), (ed_init){ED_INIT_ONES, 0});
    ed_loop_builder *b = ed_loop_begin(g, 3);
    ed_node *x = ed_loop_carried(b, ed_fill(g, ED_F32, ed_shape1(2), 1));
    ed_node *bias = ed_param(ed_loop_body(b), "bias", ED_F32, ed_shape1(2), (ed_init){ED_INIT_ZEROS, 0});
    ed_node *x1 = ed_add(ed_mul(x, ed_loop_capture(b, w)), bias);
    ed_node *loop = ed_loop_end(b, &x1, 1, NULL, 0);
    ed_output(g, "x", ed_loop_result(loop, 0));
    assert_null(ed_graph_error(g));
    ed_graph *body = loop->attr.body;
    assert_null(ed_graph_leaf(body, ED_OP_PARAM, "bias"));
    assert_non_null(ed_graph_leaf(g, ED_OP_PARAM, "bias"));
    assert_int_equal(loop->nin, 3); /* carried x, captured w, captured bias */
    assert_int_equal(ed_loop_body_ninputs(body), 4);

    ed_store *st = ed_store_new(0);
    ed_program *p = compile_with(g, st, backend_under_test, 0);
    float *wv = ed_store_get(st, "w")->data, *bv = ed_store_get(st, "bias")->data;
    wv[0] = 2, wv[1] = -1;
    bv[0] = 1, bv[1] = 0.5f;
    run_ok(p, NULL, 0);
    /* x0 = 1: x1 = 3, 7, 15; x1' = -0.5, 1, -0.5 */
    assert_float_equal(f32_at(out(p, "x"), 0), 15, 0);
    assert_float_equal(f32_at(out(p, "x"), 1), -0.5, 0);
    ed_program_free(p);
    ed_store_free(st);
    ed_graph_free(g);
}

/* for i < 3: for j < 4: s += i * j + 1 -> sum_i (6 i + 4) = 30; inner loop nested. */
static void test_nested_loop(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("nest");
    ed_loop_builder *ob = ed_loop_begin(g, 3);
    ed_node *s = ed_loop_carried(ob, ed_scalar(g, ED_I32, 0));
    ed_node *i = ed_loop_index(ob);
    ed_loop_builder *ib = ed_loop_begin(ed_loop_body(ob), 4);
    ed_node *si = ed_loop_carried(ib, s);
    ed_node *ii = ed_loop_capture(ib, i);
    ed_node *si1 = ed_add(si, ed_add_scalar(ed_mul(ii, ed_loop_index(ib)), 1));
    ed_node *inner = ed_loop_end(ib, &si1, 1, NULL, 0);
    ed_node *s1 = ed_loop_result(inner, 0);
    ed_node *rnd = ed_randn(ed_loop_body(ob), ED_F32, ed_shape1(2));
    ed_node *outer = ed_loop_end(ob, &s1, 1, &rnd, 1);
    ed_output(g, "s", ed_loop_result(outer, 0));
    ed_output(g, "r", ed_loop_result(outer, 1));
    assert_null(ed_graph_error(g));
    ed_program *p = compile_with(g, NULL, backend_under_test, 3);
    run_ok(p, NULL, 0);
    assert_int_equal(i32_at(out(p, "s"), 0), 30);
    ed_program_free(p);
    ed_graph_free(g);
}

/* ---- builder errors ------------------------------------------------------------------ */

static void test_builder_errors(void **state)
{
    (void)state;
    /* the carried value's next value has another shape */
    ed_graph *g = ed_graph_new("e1");
    ed_loop_builder *b = ed_loop_begin(g, 3);
    ed_node *x = ed_loop_carried(b, ed_fill(g, ED_F32, ed_shape1(2), 0));
    ed_node *x1 = ed_sum(x, 1, true);
    assert_null(ed_loop_end(b, &x1, 1, NULL, 0));
    assert_error_has(g, "carried value 0 is f32[2] but its next value (out next0) is f32[1]");
    ed_graph_free(g);

    /* negative trips: recorded at begin, end gives NULL */
    g = ed_graph_new("e2");
    b = ed_loop_begin(g, -1);
    x = ed_loop_carried(b, ed_scalar(g, ED_F32, 0));
    assert_null(ed_loop_end(b, &x, 1, NULL, 0));
    assert_error_has(g, "loop: trips must be 0..2147483647 (the index is i32), got -1");
    ed_graph_free(g);

    /* NULL propagation: a failed body op, and an error inside the body */
    g = ed_graph_new("e3");
    b = ed_loop_begin(g, 3);
    x = ed_loop_carried(b, ed_fill(g, ED_F32, ed_shape1(2), 0));
    ed_node *bad = ed_add(x, ed_fill(ed_loop_body(b), ED_F32, ed_shape1(3), 1));
    assert_null(bad);
    assert_null(ed_loop_end(b, &bad, 1, NULL, 0));
    assert_error_has(g, "loop body: add: shapes do not broadcast");
    assert_null(ed_loop_result(NULL, 0));
    ed_graph_free(g);

    /* an outer node used in the body directly, and a foreign capture */
    g = ed_graph_new("e4");
    ed_node *outer_x = ed_input(g, "x", ED_F32, ed_shape1(2));
    b = ed_loop_begin(g, 3);
    x = ed_loop_carried(b, outer_x);
    assert_null(ed_add(x, outer_x));
    assert_null(ed_loop_end(b, &x, 1, NULL, 0));
    assert_error_has(g, "use ed_loop_capture to bring an outer value into a loop body");
    ed_graph_free(g);
    g = ed_graph_new("e5");
    ed_graph *other = ed_graph_new("other");
    b = ed_loop_begin(g, 3);
    assert_null(ed_loop_capture(b, ed_input(other, "y", ED_F32, ed_shape1(2))));
    assert_null(ed_loop_end(b, NULL, 0, NULL, 0));
    assert_error_has(g, "ed_loop_capture: %0 belongs to @other, not to the loop's outer graph @e5");
    ed_graph_free(other);
    ed_graph_free(g);

    /* counts that disagree, an out-of-range result, a loop used as a value */
    g = ed_graph_new("e6");
    b = ed_loop_begin(g, 3);
    x = ed_loop_carried(b, ed_scalar(g, ED_F32, 0));
    assert_null(ed_loop_end(b, NULL, 0, NULL, 0));
    assert_error_has(g, "ed_loop_end: 0 next values for 1 carried values");
    ed_graph_free(g);
    g = ed_graph_new("e7");
    b = ed_loop_begin(g, 3);
    x = ed_loop_carried(b, ed_scalar(g, ED_F32, 0));
    ed_node *loop = ed_loop_end(b, &x, 1, NULL, 0);
    assert_non_null(loop);
    assert_null(ed_loop_result(loop, 1));
    assert_error_has(g, "get: index 1 is out of range: the loop (%1) has 1 results");
    ed_graph_free(g);
    g = ed_graph_new("e8");
    b = ed_loop_begin(g, 3);
    x = ed_loop_carried(b, ed_scalar(g, ED_F32, 0));
    loop = ed_loop_end(b, &x, 1, NULL, 0);
    assert_null(ed_neg(loop));
    assert_error_has(g, "neg: input 1 (%1) is a loop, whose results are read with get (ed_loop_result)");
    ed_graph_free(g);
    g = ed_graph_new("e9");
    b = ed_loop_begin(g, 3);
    x = ed_loop_carried(b, ed_scalar(g, ED_F32, 0));
    loop = ed_loop_end(b, &x, 1, NULL, 0);
    ed_output(g, "y", loop);
    assert_error_has(g, "out \"y\": %1 is a loop; bind one of its results (get)");
    ed_graph_free(g);

    /* NULL everywhere is no crash */
    assert_null(ed_loop_begin(NULL, 3));
    assert_null(ed_loop_index(NULL));
    assert_null(ed_loop_carried(NULL, NULL));
    assert_null(ed_loop_capture(NULL, NULL));
    assert_null(ed_loop_end(NULL, NULL, 0, NULL, 0));
    assert_null(ed_loop_body(NULL));
}

static void test_autodiff_refuses_loops(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("grad");
    ed_node *w = ed_param(g, "w", ED_F32, ed_shape1(2), (ed_init){ED_INIT_ONES, 0});
    ed_loop_builder *b = ed_loop_begin(g, 3);
    ed_node *x = ed_loop_carried(b, w);
    ed_node *x1 = ed_mul_scalar(x, 2);
    ed_node *loop = ed_loop_end(b, &x1, 1, NULL, 0);
    ed_node *loss = ed_sum(ed_loop_result(loop, 0), 1, false);
    assert_null(ed_grad1(loss, w));
    assert_error_has(g, "autodiff: op loop has no gradient rule yet (%1)");
    ed_graph_free(g);
}

/* ---- text, DOT and the verifier ------------------------------------------------------- */

static const char loop_text[] = "graph @t {\n"
                                "  %0 = input \"x\" : f32[2]\n"
                                "  %1 = const 0 : f32[2]\n"
                                "  %2 = loop %1, %0 {stream=1, trips=4, ncarried=1} graph @body {\n"
                                "    %0 = input \"index\" : i32[]\n"
                                "    %1 = input \"carried0\" : f32[2]\n"
                                "    %2 = input \"captured0\" : f32[2]\n"
                                "    %3 = loop %1, %2 {stream=1, trips=2, ncarried=1} graph @body {\n"
                                "      %0 = input \"index\" : i32[]\n"
                                "      %1 = input \"carried0\" : f32[2]\n"
                                "      %2 = input \"captured0\" : f32[2]\n"
                                "      %3 = add %1, %2 : f32[2]\n"
                                "      out next0 = %3\n"
                                "    } \"inner\"\n"
                                "    %4 = get %3 {index=0} : f32[2]\n"
                                "    %5 = randn {stream=2} : f32[2]\n"
                                "    %6 = add %4, %5 : f32[2]\n"
                                "    out next0 = %6\n"
                                "    out y0 = %0\n"
                                "  }\n"
                                "  %3 = get %2 {index=0} : f32[2]\n"
                                "  %4 = get %2 {index=1} : i32[4]\n"
                                "  out x = %3\n"
                                "  out i = %4\n"
                                "}\n";

static ed_graph *build_text_graph(void)
{
    ed_graph *g = ed_graph_new("t");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape1(2));
    ed_loop_builder *b = ed_loop_begin(g, 4);
    ed_node *c = ed_loop_carried(b, ed_fill(g, ED_F32, ed_shape1(2), 0));
    ed_node *xb = ed_loop_capture(b, x);
    ed_loop_builder *ib = ed_loop_begin(ed_loop_body(b), 2);
    ed_node *ic = ed_loop_carried(ib, c);
    ed_node *ic1 = ed_add(ic, ed_loop_capture(ib, xb));
    ed_node *inner = ed_set_name(ed_loop_end(ib, &ic1, 1, NULL, 0), "inner");
    ed_node *r = ed_loop_result(inner, 0);
    ed_node *c1 = ed_add(r, ed_randn(ed_loop_body(b), ED_F32, ed_shape1(2)));
    ed_node *idx = ed_loop_index(b);
    ed_node *loop = ed_loop_end(b, &c1, 1, &idx, 1);
    ed_output(g, "x", ed_loop_result(loop, 0));
    ed_output(g, "i", ed_loop_result(loop, 1));
    assert_null(ed_graph_error(g));
    return g;
}

static void test_text_golden_and_round_trip(void **state)
{
    (void)state;
    ed_graph *g = build_text_graph();
    char *text = ed_graph_print(g);
    assert_non_null(text);
    assert_string_equal(text, loop_text);
    ed_graph *back = ed_graph_parse(text, "loop.edir");
    if (!back) fail_msg("parse: %s", ed_last_error());
    char *again = ed_graph_print(back);
    assert_string_equal(again, text);
    /* the parsed graph runs like the built one */
    ed_program *p1 = compile_with(g, NULL, ED_BACKEND_INTERP, 5), *p2 = compile_with(back, NULL, ED_BACKEND_INTERP, 5);
    ed_tensor *xt = ed_tensor_new(ED_F32, ed_shape1(2));
    ((float *)xt->data)[0] = 1, ((float *)xt->data)[1] = 2;
    run_ok(p1, &(ed_feed){"x", xt}, 1);
    run_ok(p2, &(ed_feed){"x", xt}, 1);
    assert_memory_equal(out(p1, "x")->data, out(p2, "x")->data, 8);
    assert_memory_equal(out(p1, "i")->data, out(p2, "i")->data, 16);
    ed_tensor_free(xt);
    ed_program_free(p1);
    ed_program_free(p2);
    free(text);
    free(again);
    ed_graph_free(back);
    ed_graph_free(g);
}

static void test_dot_has_body_cluster(void **state)
{
    (void)state;
    ed_graph *g = build_text_graph();
    char *dot = ed_graph_dot(g);
    assert_non_null(dot);
    assert_non_null(strstr(dot, "  subgraph cluster_n2 {\n"));
    assert_non_null(strstr(dot, "  n2 [label=\"%2 loop x4\", fillcolor=palegreen];\n"));
    assert_non_null(strstr(dot, "  n2_b_n3 [label=\"%3 loop x2\\n\\\"inner\\\"\", fillcolor=palegreen];\n"));
    assert_non_null(strstr(dot, "  subgraph cluster_n2_b_n3 {\n"));
    assert_non_null(strstr(dot, "  n2_b_n3_b_n1 -> n2_b_n3_b_n3;\n"));
    assert_non_null(strstr(dot, "  n2_b_n6 -> n2 [style=dashed];\n"));
    free(dot);
    ed_graph_free(g);
}

static void expect_parse_error(const char *text, const char *part)
{
    ed_graph *g = ed_graph_parse(text, "bad.edir");
    if (g) {
        ed_graph_free(g);
        fail_msg("parsed, but wanted an error containing: %s", part);
    }
    if (!strstr(ed_last_error(), part))
        fail_msg("expected an error containing\n  %s\ngot\n  %s", part, ed_last_error());
}

#define HEAD "graph @t {\n  %0 = const 0 : f32[2]\n"
#define IDX "    %0 = input \"index\" : i32[]\n"

static void test_verifier_rejections(void **state)
{
    (void)state;
    /* next value of the wrong type */
    expect_parse_error(HEAD "  %1 = loop %0 {stream=1, trips=2, ncarried=1} graph @b {\n" IDX
                            "    %1 = input \"c\" : f32[2]\n    %2 = sum %1 {axes=[0], keepdims=false} : f32[]\n"
                            "    out n = %2\n  }\n}\n",
                       "carried value 0 is f32[2] but its next value (out n) is f32[]");
    /* too few body inputs */
    expect_parse_error(HEAD "  %1 = loop %0 {stream=1, trips=2, ncarried=1} graph @b {\n" IDX
                            "    out n = %0\n  }\n}\n",
                       "body @b has 1 inputs, but the loop needs 2: the index, 1 carried and 0 captured");
    /* an index that is not i32[] */
    expect_parse_error(HEAD "  %1 = loop %0 {stream=1, trips=2, ncarried=1} graph @b {\n"
                            "    %0 = input \"i\" : f32[]\n    %1 = input \"c\" : f32[2]\n    out n = %1\n  }\n}\n",
                       "the body's first input (the index, \"i\") must be i32[], got f32[]");
    /* a captured value of the wrong type */
    expect_parse_error(HEAD "  %1 = loop %0 {stream=1, trips=2, ncarried=0} graph @b {\n" IDX
                            "    %1 = input \"c\" : f32[3]\n  }\n}\n",
                       "captured value 0 is f32[2] but the body's input \"c\" is f32[3]");
    /* a param in the body */
    expect_parse_error(HEAD "  %1 = loop {stream=1, trips=2, ncarried=0} graph @b {\n" IDX
                            "    %1 = param \"w\" {init=zeros, scale=0} : f32[2]\n    out y = %1\n  }\n}\n",
                       "body @b has param \"w\": build it in the outer graph and capture it (ed_loop_capture)");
    /* ncarried beyond the inputs; trips out of range; get out of range; a loop used as a value */
    expect_parse_error(HEAD "  %1 = loop %0 {stream=1, trips=2, ncarried=2} graph @b {\n" IDX "  }\n}\n",
                       "ncarried must be 0..1 (the number of inputs), got 2");
    expect_parse_error(HEAD "  %1 = loop {stream=1, trips=-1, ncarried=0} graph @b {\n" IDX "  }\n}\n",
                       "trip count -1 is out of range 0..2147483647");
    expect_parse_error(HEAD "  %1 = loop {stream=1, trips=2, ncarried=0} graph @b {\n" IDX "  }\n"
                            "  %2 = get %1 {index=0} : f32[2]\n}\n",
                       "get: index 0 is out of range: the loop (%1) has 0 results");
    expect_parse_error(HEAD "  %1 = loop {stream=1, trips=2, ncarried=0} graph @b {\n" IDX "  }\n"
                            "  %2 = neg %1 : f32[0]\n}\n",
                       "neg: input 1 (%1) is a loop, whose results are read with get");
    expect_parse_error(HEAD "  %1 = loop {stream=1, trips=2, ncarried=0} graph @b {\n" IDX "  }\n  out y = %1\n}\n",
                       "out \"y\": %1 is a loop; bind one of its results (get)");
    expect_parse_error(HEAD "  %1 = get %0 {index=0} : f32[2]\n}\n", "get: reads a result of a loop, got const f32[2]");
    /* body values are not visible outside, outer values not inside */
    expect_parse_error(HEAD "  %1 = loop {stream=1, trips=2, ncarried=0} graph @b {\n" IDX
                            "    %1 = neg %0 : i32[]\n    %2 = neg %0 : f32[2]\n  }\n}\n",
                       "annotation f32[2] does not match the inferred i32[]");
    expect_parse_error(HEAD
                       "  %1 = loop {stream=1, trips=2, ncarried=0} graph @b {\n    %x = neg %0 : f32[2]\n  }\n}\n",
                       "undefined value %0");
    /* an unterminated body and a missing body */
    expect_parse_error(HEAD "  %1 = loop {stream=1, trips=2, ncarried=0} graph @b {\n" IDX,
                       "unexpected end of input: expected '}'");
    expect_parse_error(HEAD "  %1 = loop {stream=1, trips=2, ncarried=0} : f32[0]\n}\n", "expected 'graph', got ':'");

    /* a body owned by another graph */
    ed_graph *g = ed_graph_new("own"), *body = ed_graph_new("stray");
    ed_input(body, "index", ED_I32, (ed_shape){0});
    ed_node *loop = ed_node_new(g, ED_OP_LOOP, NULL, 0, &(ed_attrs){.body = body, .trips = 1});
    assert_non_null(loop);
    assert_int_equal(ed_graph_verify(g), ED_ERR);
    assert_non_null(strstr(ed_last_error(), "the body of loop %0 is not owned by @own"));
    assert_int_equal(ed_graph_adopt(g, body), ED_OK);
    assert_int_equal(ed_graph_verify(g), ED_OK);
    assert_int_equal(ed_graph_adopt(body, g), ED_ERR); /* no cycles */
    ed_graph_free(g);
}

/* Deep nesting in text is refused, not a stack overflow. */
static void test_nesting_limit(void **state)
{
    (void)state;
    char *text = malloc(1 << 16), *q = text;
    q += sprintf(q, "graph @t {\n");
    for (int d = 0; d < 40; d++) q += sprintf(q, "%%l = loop {stream=1, trips=1, ncarried=0} graph @b {\n");
    for (int d = 0; d < 40; d++) q += sprintf(q, "}\n");
    sprintf(q, "}\n");
    expect_parse_error(text, "loops nested more than 32 deep");
    free(text);
}

/* ---- the JIT against the interpreter ------------------------------------------------- */

/* Compile g on both backends with the same seed, run `calls` times, and require every
 * output to be bit-identical after each call. */
typedef struct {
    ed_backend backend;
    const char *passes; /* NULL: the default pipeline */
} program_kind;

static ed_program *compile_kind(const ed_graph *g, ed_store *st, program_kind k, uint64_t seed)
{
    ed_program *p = ed_compile(g, st, &(ed_compile_opts){.backend = k.backend, .seed = seed, .passes = k.passes});
    if (!p) fail_msg("compile failed: %s", ed_last_error());
    return p;
}

/* Compile g as two kinds of program (backend, passes) with the same seed and store
 * seed, run both `calls` times, and require every output to agree after each call:
 * bit for bit when tol is 0, else f32 within tol relative. */
static void assert_programs_agree(const ed_graph *g, program_kind k1, program_kind k2, uint64_t seed, int calls,
                                  double tol)
{
    ed_store *s1 = ed_store_new(1), *s2 = ed_store_new(1);
    ed_program *pi = compile_kind(g, s1, k1, seed), *pj = compile_kind(g, s2, k2, seed);
    for (int c = 0; c < calls; c++) {
        run_ok(pi, NULL, 0);
        run_ok(pj, NULL, 0);
        for (int k = 0; k < ed_program_num_outputs(pi); k++) {
            const ed_tensor *a = ed_program_output_at(pi, k), *b = ed_program_output_at(pj, k);
            assert_int_equal(ed_tensor_bytes(a), ed_tensor_bytes(b));
            if (tol == 0 || a->dtype != ED_F32) {
                if (ed_tensor_bytes(a) && memcmp(a->data, b->data, ed_tensor_bytes(a)) != 0)
                    fail_msg("output %s differs between the two programs (call %d)", ed_program_output_name(pi, k), c);
                continue;
            }
            for (int64_t e = 0; e < ed_tensor_numel(a); e++) {
                double x = f32_at(a, e), y = f32_at(b, e);
                if (!(fabs(x - y) <= tol * fmax(1, fabs(x))))
                    fail_msg("output %s[%lld]: first %.9g, second %.9g (call %d)", ed_program_output_name(pi, k),
                             (long long)e, x, y, c);
            }
        }
    }
    ed_program_free(pi);
    ed_program_free(pj);
    ed_store_free(s1);
    ed_store_free(s2);
}

static void assert_backends_agree_within(const ed_graph *g, uint64_t seed, int calls, double tol)
{
    assert_programs_agree(g, (program_kind){ED_BACKEND_INTERP, NULL}, (program_kind){ED_BACKEND_JIT, NULL}, seed, calls,
                          tol);
}

static void assert_backends_agree(const ed_graph *g, uint64_t seed, int calls)
{
    assert_backends_agree_within(g, seed, calls, 0);
}

static void test_jit_random_walk_bit_for_bit(void **state)
{
    (void)state;
    ed_graph *g = random_walk_graph(50, ed_shape2(37, 2), NULL, NULL);
    assert_backends_agree(g, 1234, 3);
    ed_graph_free(g);
}

/* Nested loops with random ops at both levels and a body mixing reductions, matmul,
 * tanh and movement ops. The JIT's matmul (BLAS) and inline tanh are not bit-identical
 * to the interpreter's (see ARCHITECTURE.md), so floats agree within 1e-5 here; the
 * random draws and the integer counter are exact. */
static void test_jit_mixed_bodies(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("mixed");
    ed_node *w = ed_param(g, "w", ED_F32, ed_shape2(3, 3), (ed_init){ED_INIT_NORMAL, 0.5});
    ed_loop_builder *ob = ed_loop_begin(g, 7);
    ed_graph *body = ed_loop_body(ob);
    ed_node *x = ed_loop_carried(ob, ed_fill(g, ED_F32, ed_shape2(4, 3), 0.25));
    ed_node *cnt = ed_loop_carried(ob, ed_scalar(g, ED_I32, 0));
    ed_node *wb = ed_loop_capture(ob, w);
    ed_loop_builder *ib = ed_loop_begin(body, 3);
    ed_node *y = ed_loop_carried(ib, x);
    ed_node *y1 = ed_add(ed_tanh(ed_matmul(y, ed_loop_capture(ib, wb))),
                         ed_mul_scalar(ed_randn(ed_loop_body(ib), ED_F32, ed_shape2(4, 3)), 0.1));
    ed_node *inner = ed_loop_end(ib, &y1, 1, &y1, 1);
    ed_node *x1 = ed_add(ed_loop_result(inner, 0), ed_rand(body, ED_F32, ed_shape1(3), -1, 1));
    ed_node *next[2] = {x1, ed_add(cnt, ed_argmax(ed_sum(x1, 2, false), 1, false))};
    ed_node *stacked[2] = {ed_mean(ed_loop_result(inner, 1), 1, false), ed_transpose(x1, (const int[]){1, 0})};
    ed_node *loop = ed_loop_end(ob, next, 2, stacked, 2);
    for (int k = 0; k < 4; k++) {
        char name[8];
        snprintf(name, sizeof name, "r%d", k);
        ed_output(g, name, ed_loop_result(loop, k));
    }
    assert_null(ed_graph_error(g));
    assert_backends_agree_within(g, 99, 2, 1e-5);
    ed_graph_free(g);
}

/* Carried values computed by the body are written straight into the next buffer (the
 * JIT's ping-pong without a copy), whatever the body binds: an in-place chain, one
 * node bound to two carried slots and a stacked output, a const, a pass-through and a
 * swap, with 6 and 7 trips (the final buffer alternates). */
static void test_jit_carried_values_written_in_place(void **state)
{
    (void)state;
    for (int trips = 6; trips <= 7; trips++) {
        ed_graph *g = ed_graph_new("direct");
        ed_shape s = ed_shape2(37, 3);
        ed_loop_builder *b = ed_loop_begin(g, trips);
        ed_node *x = ed_loop_carried(b, ed_fill(g, ED_F32, s, 0.25));
        ed_node *y = ed_loop_carried(b, ed_fill(g, ED_F32, s, -1));
        ed_node *c = ed_loop_carried(b, ed_fill(g, ED_F32, s, 7));
        ed_node *p = ed_loop_carried(b, ed_fill(g, ED_F32, s, 2));
        ed_node *q = ed_loop_carried(b, ed_fill(g, ED_F32, s, 3));
        ed_node *a = ed_add_scalar(ed_mul_scalar(ed_sub(x, ed_mul_scalar(y, 0.5)), 0.75), 1.0);
        a = ed_add(a, ed_mul_scalar(ed_randn(ed_loop_body(b), ED_F32, s), 0.1));
        ed_node *next[5] = {a, a, ed_fill(ed_loop_body(b), ED_F32, s, 5), q, p};
        ed_node *stacked[2] = {a, ed_add(y, c)};
        ed_node *loop = ed_loop_end(b, next, 5, stacked, 2);
        for (int k = 0; k < 7; k++) {
            char name[8];
            snprintf(name, sizeof name, "r%d", k);
            ed_output(g, name, ed_loop_result(loop, k));
        }
        assert_null(ed_graph_error(g));
        assert_backends_agree(g, 5, 2);
        ed_graph_free(g);
    }
}

/* The copy is gone: a loop whose one carried value is computed by the body has three
 * memcpy of its 800 bytes, all once per call (the initial value in, the final value to
 * the results, and `get`), none per trip. */
static void test_jit_no_copy_per_trip(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("nocopy");
    ed_loop_builder *b = ed_loop_begin(g, 50);
    ed_node *x = ed_loop_carried(b, ed_fill(g, ED_F32, ed_shape2(100, 2), 0.5));
    ed_node *x1 = ed_add_scalar(ed_mul_scalar(x, 0.5), 1.0);
    ed_node *loop = ed_loop_end(b, &x1, 1, NULL, 0);
    ed_output(g, "x", ed_loop_result(loop, 0));
    char *ir = ed_jit_dump(g, 0, ED_JIT_DUMP_IR);
    assert_non_null(ir);
    int copies = 0;
    for (char *at = strstr(ir, "@llvm.memcpy"); at; at = strstr(at + 1, "@llvm.memcpy")) {
        char line[256];
        char *end = strchr(at, '\n');
        snprintf(line, sizeof line, "%.*s", end ? (int)(end - at) : 255, at);
        if (strncmp(at - 10, "call void ", 10) == 0 && strstr(line, "i64 800,")) copies++;
    }
    free(ir);
    assert_int_equal(copies, 3);
    assert_backends_agree(g, 1, 1);
    ed_graph_free(g);
}

/* A 1000-trip loop is one native loop inside one compiled call: the kernels do not
 * grow with the trip count, the IR has a counted loop to 1000, and one ed_run (one
 * ed_entry call) runs all the trips. */
static void test_jit_thousand_trips_is_one_call(void **state)
{
    (void)state;
    ed_graph *g3 = random_walk_graph(3, ed_shape2(100, 2), NULL, NULL);
    ed_graph *g1000 = random_walk_graph(1000, ed_shape2(100, 2), NULL, NULL);
    ed_program *p3 = compile_with(g3, NULL, ED_BACKEND_JIT, 0), *p1000 = compile_with(g1000, NULL, ED_BACKEND_JIT, 0);
    assert_int_equal(ed_program_compile_stats(p3).kernels, ed_program_compile_stats(p1000).kernels);
    char *ir = ed_jit_dump(g1000, 2, ED_JIT_DUMP_IR);
    assert_non_null(ir);
    /* the counted loop: a compare of the index with 1000 ... */
    bool counted = false;
    for (char *line = ir; line && !counted; line = strchr(line + 1, '\n')) {
        char *end = strchr(line + 1, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char buf[256];
        snprintf(buf, sizeof buf, "%.*s", (int)(len < 255 ? len : 255), line);
        counted = strstr(buf, "icmp") && strstr(buf, ", 1000");
    }
    assert_true(counted);
    /* ... around one call site of the per-iteration seed: not unrolled */
    char *first = strstr(ir, "call i64 @ed_rng_loop_seed");
    assert_non_null(first);
    assert_null(strstr(first + 1, "call i64 @ed_rng_loop_seed"));
    free(ir);
    uint64_t before = ed_program_calls(p1000);
    run_ok(p1000, NULL, 0);
    assert_int_equal(ed_program_calls(p1000) - before, 1);
    /* and the last row of the trajectory is the final carried value */
    const ed_tensor *traj = out(p1000, "traj"), *x = out(p1000, "x");
    assert_memory_equal((const float *)traj->data + 999 * 200, x->data, 200 * sizeof(float));
    ed_program_free(p3);
    ed_program_free(p1000);
    ed_graph_free(g3);
    ed_graph_free(g1000);
}

/* A text-form graph with nested loops runs the same on both backends after a round trip. */
static void test_jit_parsed_nested_graph(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_parse(loop_text, "loop.edir");
    assert_non_null(g);
    ed_store *st = ed_store_new(0);
    ed_program *pi = compile_with(g, st, ED_BACKEND_INTERP, 8), *pj = compile_with(g, st, ED_BACKEND_JIT, 8);
    ed_tensor *xt = ed_tensor_new(ED_F32, ed_shape1(2));
    ((float *)xt->data)[0] = 0.5f, ((float *)xt->data)[1] = -3;
    run_ok(pi, &(ed_feed){"x", xt}, 1);
    run_ok(pj, &(ed_feed){"x", xt}, 1);
    assert_memory_equal(out(pi, "x")->data, out(pj, "x")->data, 8);
    assert_memory_equal(out(pi, "i")->data, out(pj, "i")->data, 16);
    for (int t = 0; t < 4; t++) assert_int_equal(i32_at(out(pj, "i"), t), t);
    ed_tensor_free(xt);
    ed_program_free(pi);
    ed_program_free(pj);
    ed_store_free(st);
    ed_graph_free(g);
}

/* ---- graph passes inside loop bodies ------------------------------------------------- */

static const program_kind INTERP_RAW = {ED_BACKEND_INTERP, ""}, INTERP_PASSES = {ED_BACKEND_INTERP, NULL},
                          JIT_RAW = {ED_BACKEND_JIT, ""}, JIT_PASSES = {ED_BACKEND_JIT, NULL};

/* A DDPM-like sampler: x ~ N(0, 1) carried; per-step coefficients gathered from a
 * captured table by the index; a small denoiser eps = tanh(x w + b); the step
 * x1 = c1 (x - c2 eps) + sigma z with z ~ N(0, 1) in the body; stacked: the batch mean
 * and the batch variance of x1 (reductions), with redundant arithmetic for simplify,
 * fold and cse to remove. */
static ed_graph *ddpm_like_graph(void)
{
    enum { T = 9 };
    ed_graph *g = ed_graph_new("ddpm_like");
    ed_shape s = ed_shape2(37, 5);
    double tab[3 * T];
    for (int t = 0; t < T; t++) {
        tab[t] = 1.0 / sqrt(1 - 0.02 * (t + 1));
        tab[T + t] = 0.02 * (t + 1) / sqrt(1 - 0.1 * t);
        tab[2 * T + t] = t == 0 ? 0 : sqrt(0.02 * t);
    }
    ed_node *w = ed_param(g, "w", ED_F32, ed_shape2(5, 5), (ed_init){ED_INIT_NORMAL, 0.5});
    ed_node *bias = ed_param(g, "b", ED_F32, ed_shape1(5), (ed_init){ED_INIT_NORMAL, 0.1});
    ed_node *table = ed_const(g, ED_F32, ed_shape2(3, T), tab, 3 * T);
    ed_loop_builder *b = ed_loop_begin(g, T);
    ed_graph *body = ed_loop_body(b);
    ed_node *x = ed_loop_carried(b, ed_randn(g, ED_F32, s));
    ed_node *coef = ed_gather(ed_loop_capture(b, table), ed_loop_index(b), 1);
    ed_node *c1 = ed_slice_axis(coef, 0, 0, 1), *c2 = ed_slice_axis(coef, 0, 1, 2), *sig = ed_slice_axis(coef, 0, 2, 3);
    ed_node *eps = ed_tanh(ed_add(ed_matmul(x, ed_loop_capture(b, w)), ed_loop_capture(b, bias)));
    ed_node *one = ed_mul(ed_scalar(body, ED_F32, 0.5), ed_scalar(body, ED_F32, 2)); /* fold: 1 */
    ed_node *mean_part = ed_mul(c1, ed_sub(x, ed_mul(c2, ed_mul(eps, one))));        /* simplify: eps * 1 */
    ed_node *x1 = ed_add(mean_part, ed_mul(sig, ed_randn(body, ED_F32, s)));
    ed_node *m = ed_mean(x1, 1, true);
    ed_node *d = ed_sub(x1, ed_mean(x1, 1, true)); /* cse: the same mean */
    ed_node *stacked[2] = {ed_reshape(m, ed_shape1(5)), ed_mean(ed_mul(d, d), 1, false)};
    ed_node *loop = ed_loop_end(b, &x1, 1, stacked, 2);
    ed_output(g, "x", ed_loop_result(loop, 0));
    ed_output(g, "mean", ed_loop_result(loop, 1));
    ed_output(g, "var", ed_loop_result(loop, 2));
    assert_null(ed_graph_error(g));
    return g;
}

/* Online softmax over the rows of a captured [T, 8, 19] param, one block per trip: the
 * running max and sum of exponentials are carried ([8, 1]), each block's softmax is
 * stacked, and the log-sum-exp is formed from the finals outside. */
static ed_graph *running_softmax_graph(void)
{
    ed_graph *g = ed_graph_new("running_softmax");
    ed_node *xs = ed_param(g, "xs", ED_F32, ed_shape3(6, 8, 19), (ed_init){ED_INIT_NORMAL, 2});
    ed_loop_builder *b = ed_loop_begin(g, 6);
    ed_node *m = ed_loop_carried(b, ed_fill(g, ED_F32, ed_shape2(8, 1), -1e30));
    ed_node *sum = ed_loop_carried(b, ed_fill(g, ED_F32, ed_shape2(8, 1), 0));
    ed_node *row = ed_gather(ed_loop_capture(b, xs), ed_loop_index(b), 0);
    ed_node *m1 = ed_maximum(m, ed_max(row, 2, true));
    ed_node *s1 = ed_add(ed_mul(sum, ed_exp(ed_sub(m, m1))), ed_sum(ed_exp(ed_sub(row, m1)), 2, true));
    ed_node *next[2] = {m1, s1};
    ed_node *sm = ed_softmax(row, 1);
    ed_node *loop = ed_loop_end(b, next, 2, &sm, 1);
    ed_output(g, "lse", ed_add(ed_log(ed_loop_result(loop, 1)), ed_loop_result(loop, 0)));
    ed_output(g, "softmax", ed_loop_result(loop, 2));
    assert_null(ed_graph_error(g));
    return g;
}

/* Nested loops, random ops at both levels, a fusible chain with a reduction in each. */
static ed_graph *nested_fusible_graph(void)
{
    ed_graph *g = ed_graph_new("nested_fusible");
    ed_shape s = ed_shape2(13, 7);
    ed_loop_builder *ob = ed_loop_begin(g, 5);
    ed_graph *body = ed_loop_body(ob);
    ed_node *x = ed_loop_carried(ob, ed_fill(g, ED_F32, s, 0.5));
    ed_loop_builder *ib = ed_loop_begin(body, 3);
    ed_node *y = ed_loop_carried(ib, x);
    ed_node *centred = ed_sub(y, ed_mean(y, 2, true));
    ed_node *y1 = ed_add(ed_sub(y, ed_mul_scalar(ed_mul(centred, ed_sigmoid(y)), 0.1)),
                         ed_mul_scalar(ed_randn(ed_loop_body(ib), ED_F32, s), 0.05));
    ed_node *energy = ed_sum(ed_mul(y1, y1), 2, false);
    ed_node *inner = ed_loop_end(ib, &y1, 1, &energy, 1);
    ed_node *x1 = ed_add(ed_mul_scalar(ed_loop_result(inner, 0), 0.9),
                         ed_mul_scalar(ed_rand(body, ED_F32, s, -1, 1), 0.01));
    ed_node *st = ed_max(ed_loop_result(inner, 1), 1, false);
    ed_node *loop = ed_loop_end(ob, &x1, 1, &st, 1);
    ed_output(g, "x", ed_loop_result(loop, 0));
    ed_output(g, "energy", ed_loop_result(loop, 1));
    assert_null(ed_graph_error(g));
    return g;
}

typedef ed_graph *(*graph_builder)(void);
static const graph_builder pass_graphs[] = {ddpm_like_graph, running_softmax_graph, nested_fusible_graph};
enum { NPASS_GRAPHS = sizeof pass_graphs / sizeof pass_graphs[0] };

/* Passes keep a body's meaning: with and without the default pipeline the interpreter
 * gives the same bits, and so does the JIT (fused kernels compute what the unfused
 * ones do, random ops keep their streams); the JIT with passes agrees with the
 * interpreter with passes (bit for bit for the DDPM-like steps' draws, within the
 * inline math's tolerance elsewhere). */
static void test_passes_in_bodies_keep_values(void **state)
{
    (void)state;
    for (int i = 0; i < NPASS_GRAPHS; i++) {
        ed_graph *g = pass_graphs[i]();
        assert_programs_agree(g, INTERP_RAW, INTERP_PASSES, 21, 2, 0);
        assert_programs_agree(g, JIT_RAW, JIT_PASSES, 21, 2, 0);
        assert_programs_agree(g, INTERP_PASSES, JIT_PASSES, 21, 2, 2e-5);
        ed_graph_free(g);
    }
}

static int count_op(const ed_graph *g, ed_op op)
{
    int n = 0;
    for (int i = 0; i < g->nnodes; i++) n += g->nodes[i]->op == op;
    return n;
}

static ed_graph *first_body(const ed_graph *g)
{
    for (int i = 0; i < g->nnodes; i++)
        if (g->nodes[i]->op == ED_OP_LOOP) return g->nodes[i]->attr.body;
    return NULL;
}

/* A conditioned sampler's shape: the observation projection tanh(obs @ w_obs + b) and a
 * value stacked per trip read only captured values; the step reads the index, the
 * carried x and a draw. hoist moves the projection out of the loop. */
static ed_graph *conditioned_sampler_graph(void)
{
    enum { T = 12 };
    ed_graph *g = ed_graph_new("conditioned_sampler");
    ed_node *obs = ed_param(g, "obs", ED_F32, ed_shape2(3, 7), (ed_init){ED_INIT_NORMAL, 1});
    ed_node *wo = ed_param(g, "w_obs", ED_F32, ed_shape2(7, 6), (ed_init){ED_INIT_NORMAL, 0.5});
    ed_node *bo = ed_param(g, "b_obs", ED_F32, ed_shape1(6), (ed_init){ED_INIT_NORMAL, 0.1});
    ed_node *w = ed_param(g, "w", ED_F32, ed_shape2(6, 6), (ed_init){ED_INIT_NORMAL, 0.5});
    ed_loop_builder *b = ed_loop_begin(g, T);
    ed_graph *body = ed_loop_body(b);
    ed_node *x = ed_loop_carried(b, ed_randn(g, ED_F32, ed_shape2(3, 6)));
    ed_node *proj = ed_tanh(ed_add(ed_matmul(ed_loop_capture(b, obs), ed_loop_capture(b, wo)), ed_loop_capture(b, bo)));
    ed_node *t = ed_mul_scalar(ed_cast(ed_loop_index(b), ED_F32), 0.1);
    ed_node *eps = ed_tanh(ed_add(ed_matmul(x, ed_loop_capture(b, w)), ed_mul(proj, t)));
    ed_node *x1 = ed_add(ed_sub(x, ed_mul_scalar(eps, 0.2)),
                         ed_mul_scalar(ed_randn(body, ED_F32, ed_shape2(3, 6)), 0.05));
    ed_node *stacked[1] = {ed_sum(proj, ED_ALL_AXES, false)};
    ed_node *loop = ed_loop_end(b, &x1, 1, stacked, 1);
    ed_output(g, "x", ed_loop_result(loop, 0));
    ed_output(g, "proj_sum", ed_loop_result(loop, 1));
    assert_null(ed_graph_error(g));
    return g;
}

/* hoist keeps the bits: with and without it, on each backend, over two calls (so two
 * seeds of the loop's draws); and the projection's matmul and tanh leave the body. */
static void test_hoist_keeps_values(void **state)
{
    (void)state;
    const program_kind jit_no_hoist = {ED_BACKEND_JIT, "simplify,fold,cse,dce,fuse,plan"},
                       interp_no_hoist = {ED_BACKEND_INTERP, "simplify,fold,cse,dce,fuse,plan"};
    ed_graph *g = conditioned_sampler_graph();
    assert_programs_agree(g, JIT_PASSES, jit_no_hoist, 21, 2, 0);
    assert_programs_agree(g, INTERP_PASSES, interp_no_hoist, 21, 2, 0);
    assert_programs_agree(g, INTERP_RAW, JIT_PASSES, 21, 2, 2e-5);
    ed_graph *copy = ed_graph_clone(g);
    assert_non_null(copy);
    ed_pass_stats st;
    if (ed_pass_run_one(copy, "hoist", &st) != ED_OK) fail_msg("hoist: %s", ed_last_error());
    const ed_graph *before = first_body(g), *after = first_body(copy);
    assert_int_equal(count_op(before, ED_OP_MATMUL), 2);
    assert_int_equal(count_op(after, ED_OP_MATMUL), 1);
    assert_int_equal(count_op(after, ED_OP_TANH), 1);
    assert_int_equal(count_op(copy, ED_OP_MATMUL), 1);
    /* The projection and its sum cross: two more captured inputs. */
    assert_int_equal(ed_loop_body_ninputs(after), ed_loop_body_ninputs(before) + 2);
    assert_true(st.rewrites >= 4);
    ed_graph_free(copy);
    ed_graph_free(g);
}

/* The default pipeline fuses inside bodies, nested ones included: every body has
 * fewer nodes and at least one fused node, and keeps its inputs (names, types, order)
 * and its outputs' types. */
static void test_passes_fuse_bodies(void **state)
{
    (void)state;
    for (int i = 0; i < NPASS_GRAPHS; i++) {
        ed_graph *g = pass_graphs[i]();
        ed_graph *copy = ed_graph_clone(g);
        assert_non_null(copy);
        if (ed_pass_run(copy, NULL, NULL) != ED_OK) fail_msg("passes: %s", ed_last_error());
        int depth = 0;
        for (ed_graph *b0 = first_body(g), *b1 = first_body(copy); b0; b0 = first_body(b0), b1 = first_body(b1)) {
            assert_non_null(b1);
            depth++;
            if (b1->nnodes >= b0->nnodes || count_op(b1, ED_OP_FUSED) == 0)
                fail_msg("graph %s, body depth %d: %d nodes before, %d after, %d fused", g->name, depth, b0->nnodes,
                         b1->nnodes, count_op(b1, ED_OP_FUSED));
            assert_int_equal(ed_loop_body_ninputs(b1), ed_loop_body_ninputs(b0));
            for (int k = 0; k < ed_loop_body_ninputs(b0); k++) {
                const ed_node *u = ed_loop_body_input(b0, k), *v = ed_loop_body_input(b1, k);
                assert_string_equal(u->attr.name, v->attr.name);
                assert_int_equal(u->dtype, v->dtype);
                assert_true(ed_shape_eq(u->shape, v->shape));
            }
            assert_int_equal(b1->noutputs, b0->noutputs);
            for (int k = 0; k < b0->noutputs; k++) {
                assert_int_equal(b1->outputs[k].node->dtype, b0->outputs[k].node->dtype);
                assert_true(ed_shape_eq(b1->outputs[k].node->shape, b0->outputs[k].node->shape));
            }
        }
        assert_int_equal(depth, i == 2 ? 2 : 1);
        ed_graph_free(copy);
        ed_graph_free(g);
    }
}

/* What each pass does in a body, on a text graph: x * 1 goes (simplify), 2 * 3
 * becomes 6 (fold) but cast(index) * 6 stays (the index is an input, never a
 * constant), the repeated add merges (cse), the unused exp goes (dce), while the
 * unused captured input stays: 4 inputs + cast, 6, mul, add, 0.5, mul, add = 11.
 * Then the values by hand on both backends: c_{i+1} = 1.5 (c_i + x), y0 = 6 i,
 * y1 = c_i (a pass-through). */
static const char body_passes_text[] = "graph @bp {\n"
                                       "  %0 = input \"x\" : f32[3]\n"
                                       "  %1 = input \"unused\" : f32[2]\n"
                                       "  %2 = loop %0, %0, %1 {stream=1, trips=4, ncarried=1} graph @body {\n"
                                       "    %0 = input \"index\" : i32[]\n"
                                       "    %1 = input \"carried0\" : f32[3]\n"
                                       "    %2 = input \"captured0\" : f32[3]\n"
                                       "    %3 = input \"captured1\" : f32[2]\n"
                                       "    %4 = const 2 : f32[]\n"
                                       "    %5 = const 3 : f32[]\n"
                                       "    %6 = mul %4, %5 : f32[]\n"
                                       "    %7 = cast %0 : f32[]\n"
                                       "    %8 = mul %7, %6 : f32[]\n"
                                       "    %9 = add %1, %2 : f32[3]\n"
                                       "    %10 = add %1, %2 : f32[3]\n"
                                       "    %11 = const 1 : f32[]\n"
                                       "    %12 = mul %10, %11 : f32[3]\n"
                                       "    %13 = const 0.5 : f32[]\n"
                                       "    %14 = mul %12, %13 : f32[3]\n"
                                       "    %15 = add %9, %14 : f32[3]\n"
                                       "    %16 = exp %2 : f32[3]\n"
                                       "    out next0 = %15\n"
                                       "    out y0 = %8\n"
                                       "    out y1 = %1\n"
                                       "  }\n"
                                       "  %3 = get %2 {index=0} : f32[3]\n"
                                       "  %4 = get %2 {index=1} : f32[4]\n"
                                       "  %5 = get %2 {index=2} : f32[4,3]\n"
                                       "  out c = %3\n"
                                       "  out y0 = %4\n"
                                       "  out y1 = %5\n"
                                       "}\n";

static void test_passes_in_body_by_hand(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_parse(body_passes_text, "bp.edir");
    if (!g) fail_msg("parse: %s", ed_last_error());
    ed_graph *copy = ed_graph_clone(g);
    if (ed_pass_run(copy, "simplify,fold,cse,dce", NULL) != ED_OK) fail_msg("passes: %s", ed_last_error());
    const ed_graph *body = first_body(copy);
    assert_int_equal(body->nnodes, 11);
    assert_int_equal(count_op(body, ED_OP_EXP), 0);
    assert_int_equal(count_op(body, ED_OP_CAST), 1);
    assert_int_equal(count_op(body, ED_OP_ADD), 2);
    assert_int_equal(ed_loop_body_ninputs(body), 4);
    assert_string_equal(ed_loop_body_input(body, 3)->attr.name, "captured1");
    ed_graph_free(copy);

    const program_kind kinds[2] = {INTERP_PASSES, JIT_PASSES};
    ed_tensor *x = ed_tensor_new(ED_F32, ed_shape1(3)), *u = ed_tensor_new(ED_F32, ed_shape1(2));
    float *xv = x->data;
    xv[0] = 1, xv[1] = -2, xv[2] = 0.25f;
    ((float *)u->data)[0] = ((float *)u->data)[1] = 0;
    for (int k = 0; k < 2; k++) {
        ed_program *p = compile_kind(g, NULL, kinds[k], 0);
        run_ok(p, (ed_feed[]){{"x", x}, {"unused", u}}, 2);
        float c[3] = {xv[0], xv[1], xv[2]};
        for (int i = 0; i < 4; i++) {
            assert_true(f32_at(out(p, "y0"), i) == 6.0f * (float)i);
            for (int e = 0; e < 3; e++) {
                assert_true(f32_at(out(p, "y1"), 3 * i + e) == c[e]);
                float sum = c[e] + xv[e];
                c[e] = sum + sum * 0.5f;
            }
        }
        for (int e = 0; e < 3; e++) assert_true(f32_at(out(p, "c"), e) == c[e]);
        ed_program_free(p);
    }
    ed_tensor_free(x);
    ed_tensor_free(u);
    ed_graph_free(g);
}

/* A pass that adds an input leaf to every loop body: the manager refuses it. */
static int add_body_input(ed_graph *g, ed_pass_stats *st)
{
    (void)st;
    if (g->parent) ed_input(g, "stray", ED_F32, ed_shape1(1));
    return ED_OK;
}

static void test_pass_changing_a_body_interface_fails(void **state)
{
    (void)state;
    static const ed_pass stray = {"add_body_input", add_body_input, "test: breaks a loop body's interface"};
    if (!ed_pass_find(stray.name)) assert_int_equal(ed_pass_register(&stray), ED_OK);
    ed_graph *g = ed_graph_parse(body_passes_text, "bp.edir");
    assert_non_null(g);
    assert_int_equal(ed_pass_run(g, "add_body_input", NULL), ED_ERR);
    if (!strstr(ed_last_error(), "pass add_body_input changed the inputs or outputs of loop body @body"))
        fail_msg("unexpected error: %s", ed_last_error());
    ed_graph_free(g);
}

/* A body's consts live in the loop's arena slot, filled once at compile time: no other
 * buffer may reuse that slot, or later calls read clobbered consts. Here matmuls after
 * the loop would take the slot; every call must still give 3 6 9 12. */
static void test_jit_body_consts_survive_calls(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("body_consts");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(16, 16));
    ed_loop_builder *b = ed_loop_begin(g, 3);
    ed_node *c = ed_loop_carried(b, ed_fill(g, ED_F32, ed_shape1(4), 0));
    ed_node *next = ed_add(c, ed_const(ed_loop_body(b), ED_F32, ed_shape1(4), (double[]){1, 2, 3, 4}, 4));
    ed_node *loop = ed_loop_end(b, &next, 1, NULL, 0);
    ed_output(g, "c", ed_mul_scalar(ed_loop_result(loop, 0), 1));
    ed_node *h = ed_matmul(x, x);
    h = ed_matmul(h, ed_exp(h));
    h = ed_matmul(h, ed_exp(h));
    ed_output(g, "y", ed_sum(h, ED_ALL_AXES, false));
    ed_store *st = ed_store_new(0);
    ed_program *p = ed_compile(g, st, &(ed_compile_opts){.backend = ED_BACKEND_JIT});
    if (!p) fail_msg("%s", ed_last_error());
    ed_tensor *xv = ed_tensor_new(ED_F32, ed_shape2(16, 16));
    for (int call = 0; call < 3; call++) {
        assert_int_equal(ed_run(p, (ed_feed[]){{"x", xv}}, 1), ED_OK);
        const float *cv = ed_program_output(p, "c")->data;
        for (int i = 0; i < 4; i++)
            if (cv[i] != 3.0f * (float)(i + 1)) fail_msg("call %d: c[%d] = %g, want %g", call, i, cv[i], 3.0 * (i + 1));
    }
    ed_tensor_free(xv);
    ed_program_free(p);
    ed_store_free(st);
    ed_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest shared[] = {
        cmocka_unit_test(test_counter_and_index_sum),
        cmocka_unit_test(test_running_sum_of_captured_input),
        cmocka_unit_test(test_stacked_trajectory),
        cmocka_unit_test(test_carried_swap),
        cmocka_unit_test(test_compiled_copy_owns_its_body),
        cmocka_unit_test(test_zero_trips_returns_initial_values),
        cmocka_unit_test(test_random_walk_by_hand),
        cmocka_unit_test(test_captured_param),
        cmocka_unit_test(test_nested_loop),
    };
    const struct CMUnitTest ir[] = {
        cmocka_unit_test(test_builder_errors),
        cmocka_unit_test(test_autodiff_refuses_loops),
        cmocka_unit_test(test_text_golden_and_round_trip),
        cmocka_unit_test(test_dot_has_body_cluster),
        cmocka_unit_test(test_verifier_rejections),
        cmocka_unit_test(test_nesting_limit),
    };
    const struct CMUnitTest jit[] = {
        cmocka_unit_test(test_jit_random_walk_bit_for_bit),
        cmocka_unit_test(test_jit_mixed_bodies),
        cmocka_unit_test(test_jit_carried_values_written_in_place),
        cmocka_unit_test(test_jit_no_copy_per_trip),
        cmocka_unit_test(test_jit_thousand_trips_is_one_call),
        cmocka_unit_test(test_jit_body_consts_survive_calls),
        cmocka_unit_test(test_jit_parsed_nested_graph),
        cmocka_unit_test(test_passes_in_bodies_keep_values),
        cmocka_unit_test(test_passes_fuse_bodies),
        cmocka_unit_test(test_hoist_keeps_values),
        cmocka_unit_test(test_passes_in_body_by_hand),
        cmocka_unit_test(test_pass_changing_a_body_interface_fails),
    };
    int failed = cmocka_run_group_tests_name("loop_interp", shared, on_interp, NULL);
    failed += cmocka_run_group_tests_name("loop_shared_on_jit", shared, on_jit, NULL);
    failed += cmocka_run_group_tests_name("loop_jit", jit, NULL, NULL);
    failed += cmocka_run_group_tests_name("loop_ir", ir, NULL, NULL);
    return failed;
}
