/* JIT kernels split over the thread pool (backend/llvm/lower_split.c): every program runs
 * at 1, 2 and 3 pool threads, its outputs and store bit for bit the same at each (but for
 * split sgemms), and against the interpreter, on sizes the chunks do not divide:
 * elementwise ops with broadcasting, reductions over leading, middle and trailing axes,
 * fused chains, matmuls split by rows, columns and batch, Adam training steps, random
 * draws (whole Philox blocks per chunk), leading-axis sums (split over columns) and
 * concats (every input's walk over the same rows). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "backend/llvm/jit.h"
#include "frontend/nn.h"
#include "models/train_step.h"
#include "passes/pass.h"
#include "runtime/pool.h"
#include "support/run_check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { NTHREADS = 3 };
static const int thread_counts[NTHREADS] = {1, 2, 3};

static bool close_enough(double want, double have, double tol)
{
    if (isnan(want) || isnan(have)) return isnan(want) && isnan(have);
    if (isinf(want) || isinf(have)) return want == have;
    return fabs(want - have) <= tol * (1 + fabs(want));
}

static bool same_bits(const ed_tensor *a, const ed_tensor *b)
{
    return a->dtype == b->dtype && ed_shape_eq(a->shape, b->shape) && ed_tensor_bytes(a) == ed_tensor_bytes(b) &&
           memcmp(a->data, b->data, ed_tensor_bytes(a)) == 0;
}

/* Kernels of g's JIT program (after passes, NULL: the default ones) that call the pool. */
static int split_kernels(const ed_graph *g, const char *passes)
{
    ed_graph *c = ed_graph_clone(g);
    assert_non_null(c);
    if (ed_pass_run(c, passes, NULL) != ED_OK) fail_msg("passes: %s", ed_last_error());
    char *ir = ed_jit_dump_ir(c);
    ed_graph_free(c);
    if (!ir) fail_msg("dump: %s", ed_last_error());
    int n = 0;
    for (const char *s = ir; (s = strstr(s, "call void @ed_pool_run(")); s++) n++;
    free(ir);
    return n;
}

/* g on the interpreter and on the JIT at each pool size (own stores, seed 7), `steps`
 * calls with the same feeds: each output within tol of the interpreter's, and each JIT
 * output and the JIT stores equal bit for bit across the sizes (bits) or within tol of
 * the 1-thread values: an sgemm split into row or column blocks rounds differently, as
 * OpenBLAS's own threads do. */
static void check_threads(ed_graph *g, const char *passes, double tol, int steps, bool bits)
{
    random_feeds fd;
    random_feeds_make(g, -2, 2, &fd);
    ed_store *si = ed_store_new(7), *sj[NTHREADS];
    ed_program *pi = ed_compile(g, si, &(ed_compile_opts){.backend = ED_BACKEND_INTERP, .seed = 5, .passes = passes});
    ed_program *pj[NTHREADS];
    if (!pi) fail_msg("compile interp: %s", ed_last_error());
    for (int t = 0; t < NTHREADS; t++) {
        sj[t] = ed_store_new(7);
        pj[t] = ed_compile(g, sj[t], &(ed_compile_opts){.backend = ED_BACKEND_JIT, .seed = 5, .passes = passes});
        if (!pj[t]) fail_msg("compile jit: %s", ed_last_error());
    }
    for (int s = 0; s < steps; s++) {
        if (ed_run(pi, fd.f, fd.n) != ED_OK) fail_msg("run interp: %s", ed_last_error());
        for (int t = 0; t < NTHREADS; t++) {
            ed_pool_set_threads(thread_counts[t]);
            if (ed_run(pj[t], fd.f, fd.n) != ED_OK) fail_msg("run jit: %s", ed_last_error());
        }
        for (int o = 0; o < ed_program_num_outputs(pi); o++) {
            const char *name = ed_program_output_name(pi, o);
            const ed_tensor *want = ed_program_output_at(pi, o), *one = ed_program_output_at(pj[0], o);
            for (int t = 1; t < NTHREADS; t++) {
                const ed_tensor *other = ed_program_output_at(pj[t], o);
                if (bits && !same_bits(one, other))
                    fail_msg("step %d output %s: %d threads differ from 1", s, name, thread_counts[t]);
                for (int64_t i = 0; i < ed_tensor_numel(one); i++)
                    if (!close_enough(ed_tensor_get(one, i), ed_tensor_get(other, i), tol))
                        fail_msg("step %d output %s element %lld: 1 thread %.9g, %d threads %.9g", s, name,
                                 (long long)i, ed_tensor_get(one, i), thread_counts[t], ed_tensor_get(other, i));
            }
            assert_true(ed_shape_eq(want->shape, one->shape));
            for (int64_t i = 0; i < ed_tensor_numel(want); i++)
                if (!close_enough(ed_tensor_get(want, i), ed_tensor_get(one, i), tol))
                    fail_msg("step %d output %s element %lld: interp %.9g, jit %.9g", s, name, (long long)i,
                             ed_tensor_get(want, i), ed_tensor_get(one, i));
        }
    }
    for (int t = 1; t < NTHREADS && bits; t++) {
        assert_int_equal(ed_store_count(sj[t]), ed_store_count(sj[0]));
        for (int k = 0; k < ed_store_count(sj[0]); k++)
            if (!same_bits(ed_store_tensor(sj[0], k), ed_store_get(sj[t], ed_store_name(sj[0], k))))
                fail_msg("store %s: %d threads differ from 1", ed_store_name(sj[0], k), thread_counts[t]);
    }
    ed_pool_set_threads(2);
    ed_program_free(pi);
    ed_store_free(si);
    for (int t = 0; t < NTHREADS; t++) {
        ed_program_free(pj[t]);
        ed_store_free(sj[t]);
    }
    random_feeds_free(&fd);
}

static void test_elementwise_odd_shapes(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("elem");
    ed_node *a = ed_input(g, "a", ED_F32, ed_shape2(257, 263));
    ed_node *row = ed_input(g, "row", ED_F32, ed_shape1(263));
    ed_node *col = ed_input(g, "col", ED_F32, ed_shape2(257, 1));
    ed_node *v = ed_input(g, "v", ED_F64, ed_shape1(65537));
    ed_node *w = ed_input(g, "w", ED_F32, ed_shape3(3, 7, 4099));
    ed_node *i = ed_input(g, "i", ED_I32, ed_shape2(301, 311));
    ed_output(g, "bcast", ed_add(ed_mul(a, row), col));
    ed_output(g, "tanh", ed_tanh(a));
    ed_output(g, "div", ed_div(col, ed_add(ed_exp(a), ed_scalar(g, ED_F32, 2.5))));
    ed_output(g, "f64", ed_sqrt(ed_abs(v)));
    ed_output(g, "slice", ed_sigmoid(w));
    ed_output(g, "int", ed_mul(i, i));
    ed_output(g, "transpose", ed_transpose(a, (int[]){1, 0}));
    assert_true(split_kernels(g, "") >= 6);
    check_threads(g, "", 2e-6, 2, true);
    ed_graph_free(g);
}

static void test_reductions_every_axis(void **state)
{
    (void)state;
    typedef ed_node *(*red_fn)(ed_node *, unsigned, bool);
    static const red_fn fns[] = {ed_sum, ed_mean, ed_max, ed_argmin};
    static const unsigned axis_sets[] = {1, 2, 4, 3, 5, 6};
    static const ed_dtype dts[] = {ED_F32, ED_F64};
    for (int d = 0; d < 2; d++) {
        ed_graph *g = ed_graph_new("reduce");
        ed_node *x = ed_input(g, "x", dts[d], ed_shape3(61, 67, 19));
        ed_node *wide = ed_input(g, "wide", dts[d], ed_shape2(5, 20011)); /* too many columns to interchange */
        int k = 0;
        char name[24];
        for (size_t f = 0; f < sizeof fns / sizeof *fns; f++)
            for (size_t a = 0; a < sizeof axis_sets / sizeof *axis_sets; a++) {
                snprintf(name, sizeof name, "r%d", k++);
                ed_output(g, name, fns[f](x, axis_sets[a], f % 2 == 0));
            }
        ed_output(g, "wide0", ed_sum(wide, 1, false));
        ed_output(g, "wide1", ed_max(wide, 2, true));
        assert_true(split_kernels(g, "") >= 12);
        check_threads(g, "", 0, 1, true);
        ed_graph_free(g);
    }
}

/* The default passes fuse these into elementwise, row (softmax) and reduction kernels. */
static void test_fused_chains(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("fused");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(517, 131));
    ed_node *y = ed_input(g, "y", ED_F32, ed_shape2(517, 131));
    ed_node *b = ed_input(g, "b", ED_F32, ed_shape1(131));
    ed_node *t = ed_input(g, "t", ED_F32, ed_shape3(37, 41, 53));
    ed_output(g, "chain", ed_sub(ed_mul(ed_tanh(ed_add(x, b)), y), ed_sigmoid(ed_mul(x, y))));
    ed_output(g, "softmax", ed_softmax(ed_mul(x, y), 1));
    ed_node *mu = ed_mean(x, 2, true);
    ed_node *xc = ed_sub(x, mu);
    ed_node *var = ed_mean(ed_square(xc), 2, true);
    ed_output(g, "norm", ed_mul(xc, ed_rsqrt(ed_add(var, ed_scalar(g, ED_F32, 1e-5)))));
    ed_output(g, "dot_rows", ed_sum(ed_mul(x, y), 2, false));
    ed_output(g, "dot_cols", ed_sum(ed_mul(x, y), 1, false));
    ed_output(g, "middle", ed_max(ed_exp(ed_mul(t, t)), 2, false));
    assert_true(split_kernels(g, NULL) >= 4);
    check_threads(g, NULL, 2e-5, 2, true);
    ed_graph_free(g);
}

static void test_matmul_split(void **state)
{
    (void)state;
    struct {
        ed_shape a, b;
        bool ta, tb;
    } cases[] = {
        {ed_shape2(333, 77), ed_shape2(77, 129), false, false},        /* rows */
        {ed_shape2(77, 333), ed_shape2(77, 129), true, false},         /* rows, a transposed */
        {ed_shape2(45, 77), ed_shape2(77, 1031), false, false},        /* columns */
        {ed_shape2(45, 77), ed_shape2(1031, 77), false, true},         /* columns, b transposed */
        {ed_shape2(77, 45), ed_shape2(1031, 77), true, true},          /* columns, both */
        {ed_shape3(5, 67, 45), ed_shape3(5, 45, 71), false, false},    /* batch */
        {ed_shape4(3, 1, 64, 70), ed_shape3(2, 70, 65), false, false}, /* broadcast batch */
    };
    static const ed_dtype dts[] = {ED_F32, ED_F64};
    for (int d = 0; d < 2; d++) {
        ed_graph *g = ed_graph_new("mm");
        for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
            char an[8], bn[8], yn[8];
            snprintf(an, sizeof an, "a%zu", c);
            snprintf(bn, sizeof bn, "b%zu", c);
            snprintf(yn, sizeof yn, "y%zu", c);
            ed_node *a = ed_input(g, an, dts[d], cases[c].a), *b = ed_input(g, bn, dts[d], cases[c].b);
            ed_output(g, yn, ed_matmul_t(a, b, cases[c].ta, cases[c].tb));
        }
        assert_int_equal(split_kernels(g, ""), (int)(sizeof cases / sizeof *cases));
        check_threads(g, "", dts[d] == ED_F32 ? 1e-5 : 1e-12, 1, false);
        ed_graph_free(g);
    }
}

/* Forward, backward and Adam on a batch large enough that every kind splits. */
static void test_training_steps(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("train");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(300, 37));
    ed_node *y = ed_input(g, "y", ED_F32, ed_shape2(300, 5));
    ed_node *h = ed_silu(ed_dense(x, "l1", 257, true));
    h = ed_tanh(ed_dense(h, "l2", 129, true));
    ed_node *pred = ed_dense(h, "l3", 5, true);
    ed_node *loss = ed_mean(ed_square(ed_sub(pred, y)), ED_ALL_AXES, false);
    ed_output(g, "pred", pred);
    ed_train_opts o = {.optim = {.kind = ED_OPT_ADAM, .lr = 3e-3}};
    assert_int_equal(ed_train_step(g, loss, &o), ED_OK);
    assert_true(split_kernels(g, NULL) >= 8);
    check_threads(g, NULL, 1e-4, 3, false);
    /* with whole sgemms (OpenBLAS at one thread in the tests) the step is bit for bit
       the same at every pool size */
    setenv("EDIFICE_SPLIT_GEMM", "0", 1);
    assert_true(split_kernels(g, NULL) >= 4);
    check_threads(g, NULL, 1e-4, 3, true);
    unsetenv("EDIFICE_SPLIT_GEMM");
    ed_graph_free(g);
}

/* A split sgemm whose block count is odd (333 rows: 11 blocks of 32) really runs in 2
 * chunks on 2 threads: the per-thread grain rounded up once made it one chunk, inline
 * (W4's 10,000-row sgemms: 313 blocks, grain 157, one thread). */
static void test_odd_split_spreads(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("odd");
    ed_node *a = ed_input(g, "a", ED_F32, ed_shape2(333, 77));
    ed_output(g, "y", ed_matmul(a, ed_input(g, "b", ED_F32, ed_shape2(77, 129))));
    ed_tensor *ta = ed_tensor_new(ED_F32, ed_shape2(333, 77)), *tb = ed_tensor_new(ED_F32, ed_shape2(77, 129));
    assert_non_null(ta);
    assert_non_null(tb);
    ed_store *st = ed_store_new(1);
    ed_set_threads(2);
    ed_program *p = ed_compile(g, st, &(ed_compile_opts){.backend = ED_BACKEND_JIT, .passes = ""});
    if (!p) fail_msg("%s", ed_last_error());
    int64_t before = ed_pool_parallel_runs();
    assert_int_equal(ed_run(p, (ed_feed[]){{"a", ta}, {"b", tb}}, 2), ED_OK);
    assert_true(ed_pool_parallel_runs() > before);
    ed_set_threads(1);
    ed_program_free(p);
    ed_store_free(st);
    ed_tensor_free(ta);
    ed_tensor_free(tb);
    ed_graph_free(g);
}

/* Runs of the pool while g (no inputs; passes "") runs once at 2 threads. */
static int64_t parallel_runs_of(ed_graph *g, const ed_feed *feeds, int nfeeds)
{
    ed_store *st = ed_store_new(1);
    ed_set_threads(2);
    ed_program *p = ed_compile(g, st, &(ed_compile_opts){.backend = ED_BACKEND_JIT, .passes = ""});
    if (!p) fail_msg("%s", ed_last_error());
    int64_t before = ed_pool_parallel_runs();
    assert_int_equal(ed_run(p, feeds, nfeeds), ED_OK);
    int64_t runs = ed_pool_parallel_runs() - before;
    ed_set_threads(1);
    ed_program_free(p);
    ed_store_free(st);
    return runs;
}

/* Every random op and dtype at sizes that end mid-block and mid-chunk: the interpreter's
 * exact bits at 1, 2 and 3 threads, over two calls (the call counter moves). */
static void test_random_draws(void **state)
{
    (void)state;
    static const int64_t sizes[] = {1, 7, 65537, 1000003};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        ed_graph *g = ed_graph_new("draws");
        ed_shape s = ed_shape1(sizes[k]);
        ed_output(g, "uniform32", ed_rand(g, ED_F32, s, -1.5, 2.5));
        ed_output(g, "uniform64", ed_rand(g, ED_F64, s, 0, 1));
        ed_output(g, "normal32", ed_randn(g, ED_F32, s));
        ed_output(g, "normal64", ed_randn(g, ED_F64, s));
        ed_output(g, "int", ed_randint(g, s, -3, 1000));
        ed_output(g, "coin32", ed_bernoulli(g, ED_F32, s, 0.3));
        ed_output(g, "coin_int", ed_bernoulli(g, ED_I32, s, 0.7));
        check_threads(g, "", 0, 2, true);
        if (sizes[k] >= 65537) assert_int_equal(parallel_runs_of(g, NULL, 0), 7);
        ed_graph_free(g);
    }
}

/* Sums and means over leading axes (the interchanged kernel) split over their columns:
 * the interpreter's exact values, the same bits at any thread count. */
static void test_leading_sums(void **state)
{
    (void)state;
    static const ed_dtype dts[] = {ED_F32, ED_F64, ED_I32};
    for (int d = 0; d < 3; d++) {
        ed_graph *g = ed_graph_new("leading");
        ed_node *tall = ed_input(g, "tall", dts[d], ed_shape2(65537, 33));
        ed_node *wide = ed_input(g, "wide", dts[d], ed_shape2(7, 16381));
        ed_node *deep = ed_input(g, "deep", dts[d], ed_shape3(1001, 3, 67));
        ed_node *one = ed_input(g, "one", dts[d], ed_shape2(1, 9999));
        ed_output(g, "tall", ed_sum(tall, 1, false));
        ed_output(g, "wide", ed_sum(wide, 1, true));
        ed_output(g, "deep", dts[d] == ED_I32 ? ed_sum(deep, 1, false) : ed_mean(deep, 1, false));
        ed_output(g, "deep01", ed_sum(deep, 3, false));
        ed_output(g, "one", ed_sum(one, 1, false));
        if (dts[d] != ED_I32) ed_output(g, "tall_mean", ed_mean(tall, 1, true)); /* means are float only */
        assert_true(split_kernels(g, "") >= 3);
        check_threads(g, "", 0, 1, true);
        ed_graph_free(g);
    }
    ed_graph *g = ed_graph_new("bias_grad");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(10000, 256));
    ed_output(g, "y", ed_sum(x, 1, false));
    ed_tensor *tx = ed_tensor_new(ED_F32, ed_shape2(10000, 256));
    assert_non_null(tx);
    assert_int_equal(parallel_runs_of(g, (ed_feed[]){{"x", tx}}, 1), 1);
    ed_tensor_free(tx);
    ed_graph_free(g);
}

/* Concat along inner axes splits over rows: each chunk copies its rows of every input
 * (W4's [10000, 2] | [10000, 128] input of the first layer). Along axis 0 with inputs of
 * different lengths the walks' ranges differ: it stays whole. */
static void test_concat_split(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("concat");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(10007, 3));
    ed_node *t = ed_input(g, "t", ED_F32, ed_shape2(1, 129));
    ed_node *a = ed_input(g, "a", ED_F64, ed_shape3(41, 37, 23)), *b = ed_input(g, "b", ED_F64, ed_shape3(41, 37, 1));
    ed_node *c = ed_input(g, "c", ED_F64, ed_shape3(41, 5, 23));
    ed_node *u = ed_input(g, "u", ED_I32, ed_shape2(30011, 3)), *v = ed_input(g, "v", ED_I32, ed_shape2(30011, 3));
    ed_node *w = ed_input(g, "w", ED_I32, ed_shape2(7, 3));
    ed_output(g, "rows", ed_concat((ed_node *[]){x, ed_broadcast_to(t, ed_shape2(10007, 129))}, 2, 1));
    ed_output(g, "last", ed_concat((ed_node *[]){a, b, a}, 3, 2));
    ed_output(g, "middle", ed_concat((ed_node *[]){a, c}, 2, 1));
    ed_output(g, "first_same", ed_concat((ed_node *[]){u, v}, 2, 0));
    ed_output(g, "first_other", ed_concat((ed_node *[]){u, w}, 2, 0));
    assert_true(split_kernels(g, "") >= 4);
    check_threads(g, "", 0, 1, true);
    ed_graph_free(g);

    g = ed_graph_new("concat_rows");
    x = ed_input(g, "x", ED_F32, ed_shape2(10000, 2));
    t = ed_input(g, "t", ED_F32, ed_shape2(10000, 128));
    ed_output(g, "h", ed_concat((ed_node *[]){x, t}, 2, 1));
    ed_tensor *tx = ed_tensor_new(ED_F32, ed_shape2(10000, 2)), *tt = ed_tensor_new(ED_F32, ed_shape2(10000, 128));
    assert_non_null(tx);
    assert_non_null(tt);
    assert_int_equal(parallel_runs_of(g, (ed_feed[]){{"x", tx}, {"t", tt}}, 2), 1);
    ed_tensor_free(tx);
    ed_tensor_free(tt);
    ed_graph_free(g);
}

/* Small kernels stay whole; EDIFICE_SPLIT_WORK=0 and EDIFICE_SPLIT_GEMM=0 turn splitting off. */
static void test_split_choice(void **state)
{
    (void)state;
    ed_graph *small = ed_graph_new("small");
    ed_output(small, "y", ed_tanh(ed_input(small, "x", ED_F32, ed_shape2(100, 100))));
    assert_int_equal(split_kernels(small, ""), 0);
    ed_graph *big = ed_graph_new("big");
    ed_node *a = ed_input(big, "a", ED_F32, ed_shape2(300, 300));
    ed_output(big, "y", ed_tanh(a));
    ed_output(big, "z", ed_matmul(a, a));
    assert_int_equal(split_kernels(big, ""), 2);
    setenv("EDIFICE_SPLIT_WORK", "0", 1);
    assert_int_equal(split_kernels(big, ""), 1);
    setenv("EDIFICE_SPLIT_GEMM", "0", 1);
    assert_int_equal(split_kernels(big, ""), 0);
    unsetenv("EDIFICE_SPLIT_WORK");
    assert_int_equal(split_kernels(big, ""), 1);
    unsetenv("EDIFICE_SPLIT_GEMM");
    ed_graph_free(small);
    ed_graph_free(big);
}

int main(void)
{
    rng_seed(1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_elementwise_odd_shapes), cmocka_unit_test(test_reductions_every_axis),
        cmocka_unit_test(test_fused_chains),           cmocka_unit_test(test_matmul_split),
        cmocka_unit_test(test_training_steps),         cmocka_unit_test(test_split_choice),
        cmocka_unit_test(test_odd_split_spreads),      cmocka_unit_test(test_random_draws),
        cmocka_unit_test(test_leading_sums),           cmocka_unit_test(test_concat_split),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
