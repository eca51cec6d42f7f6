/* A small matmul as the producer of its bias and activation (passes/fuse_matmul.c):
 * the fused node in the printed IR, and its values on both backends against the
 * interpreter running the unfused graph, on odd shapes, 1..8 rows, f32 and 16-bit W. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "backend/backend.h"
#include "frontend/frontend.h"
#include "ir/text.h"
#include "passes/pass.h"
#include "support/fuse_check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef enum { ACT_NONE, ACT_SILU, ACT_GELU, ACT_GELU_TANH, ACT_RELU, ACT_TANH, ACT_RESIDUAL, ACT_COUNT } act;
static const char *const act_names[ACT_COUNT] = {"none", "silu", "gelu", "gelu_tanh", "relu", "tanh", "residual"};

/* y = act(x @ w + b) (residual: x0 + (x @ w + b), x0 another input of y's shape). */
static ed_graph *dense(int64_t m, int64_t k, int64_t n, ed_dtype wdt, act a)
{
    ed_graph *g = ed_graph_new("dense");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(m, k));
    ed_node *w = ed_param(g, "w", wdt, ed_shape2(k, n), (ed_init){ED_INIT_NORMAL, 1.0});
    ed_node *b = ed_param(g, "b", ED_F32, ed_shape1(n), (ed_init){ED_INIT_NORMAL, 0.5});
    ed_node *y = ed_add(ed_matmul(x, w), b);
    switch (a) {
    case ACT_SILU: y = ed_silu(y); break;
    case ACT_GELU: y = ed_gelu(y, false); break;
    case ACT_GELU_TANH: y = ed_gelu(y, true); break;
    case ACT_RELU: y = ed_relu(y); break;
    case ACT_TANH: y = ed_tanh(y); break;
    case ACT_RESIDUAL: y = ed_add(ed_input(g, "x0", ED_F32, ed_shape2(m, n)), y); break;
    default: break;
    }
    ed_output(g, "y", y);
    assert_null(ed_graph_error(g));
    return g;
}

/* Every row count 1..8, n and k not multiples of 8, each activation, f32/bf16/f16 W:
 * the fused kernel (JIT and interpreter) against the interpreter's unfused graph. The
 * interpreter's fused node stores what the unfused nodes stored: the same bits. */
static void test_fused_dense_matches_unfused_interp(void **state)
{
    (void)state;
    static const int64_t ks[] = {1, 5, 17, 300}, ns[] = {1, 7, 9, 65, 100};
    static const ed_dtype wdts[] = {ED_F32, ED_BF16, ED_F16};
    int c = 0;
    for (int64_t m = 1; m <= 8; m++)
        for (int d = 0; d < 3; d++)
            for (int s = 0; s < 4; s++, c++) {
                int64_t k = ks[(m + s) % 4], n = ns[(c * 3 + s) % 5];
                act a = (act)(c % ACT_COUNT);
                ed_graph *g = dense(m, k, n, wdts[d], a);
                ed_tensor *x = fuse_filled(ed_shape2(m, k), c), *x0 = fuse_filled(ed_shape2(m, n), c + 1);
                ed_feed feeds[2] = {{"x", x}, {"x0", x0}};
                int nf = a == ACT_RESIDUAL ? 2 : 1;
                char what[128];
                snprintf(what, sizeof what, "m=%lld k=%lld n=%lld %s %s", (long long)m, (long long)k, (long long)n,
                         ed_dtype_name(wdts[d]), act_names[a]);
                ed_tensor *want = fuse_run(g, ED_BACKEND_INTERP, "", feeds, nf);
                ed_tensor *interp = fuse_run(g, ED_BACKEND_INTERP, NULL, feeds, nf);
                ed_tensor *jit = fuse_run(g, ED_BACKEND_JIT, NULL, feeds, nf);
                fuse_compare(want, interp, 0, what);
                fuse_compare(want, jit, 1e-5, what); /* float sums and the inline f32 math */
                ed_tensor_free(want), ed_tensor_free(interp), ed_tensor_free(jit);
                ed_tensor_free(x), ed_tensor_free(x0);
                ed_graph_free(g);
            }
}

/* The sgemm crossover lowered to 0 rows: the fused node's product takes sgemm, the
 * chain still runs in its kernel, and the values agree. */
static void test_fused_dense_with_sgemm_product(void **state)
{
    (void)state;
    setenv("EDIFICE_GEMV_ROWS", "0", 1);
    ed_graph *g = dense(3, 17, 65, ED_F32, ACT_SILU);
    ed_tensor *x = fuse_filled(ed_shape2(3, 17), 5);
    ed_feed feed = {"x", x};
    ed_tensor *want = fuse_run(g, ED_BACKEND_INTERP, "", &feed, 1), *jit = fuse_run(g, ED_BACKEND_JIT, NULL, &feed, 1);
    fuse_compare(want, jit, 1e-5, "sgemm product");
    unsetenv("EDIFICE_GEMV_ROWS");
    ed_tensor_free(want), ed_tensor_free(jit), ed_tensor_free(x);
    ed_graph_free(g);
}

/* A fused GEMV large enough for the thread pool's split (W of 512 x 300: far above
 * lower_split's work threshold) at 2 threads: its kernel must run whole (the GEMV writes
 * every element before the chain reads them), so the values are those of 1 thread. */
static void test_fused_dense_on_two_threads(void **state)
{
    (void)state;
    ed_graph *g = dense(4, 512, 300, ED_F32, ACT_SILU);
    ed_tensor *x = fuse_filled(ed_shape2(4, 512), 9);
    ed_feed feed = {"x", x};
    ed_tensor *want = fuse_run(g, ED_BACKEND_INTERP, "", &feed, 1);
    ed_set_threads(1);
    ed_tensor *one = fuse_run(g, ED_BACKEND_JIT, NULL, &feed, 1);
    ed_set_threads(2);
    ed_tensor *two = fuse_run(g, ED_BACKEND_JIT, NULL, &feed, 1);
    ed_set_threads(1);
    fuse_compare(want, one, 1e-5, "1 thread");
    fuse_compare(one, two, 0, "2 threads against 1");
    ed_tensor_free(want), ed_tensor_free(one), ed_tensor_free(two), ed_tensor_free(x);
    ed_graph_free(g);
}

/* How many nodes of op are in g's top level (not in bodies). */
static int count_op(const ed_graph *g, ed_op op)
{
    int c = 0;
    for (int i = 0; i < g->nnodes; i++) c += g->nodes[i]->op == op;
    return c;
}

/* After the default passes, silu(x @ w + b) at 8 rows is one fused node whose body
 * starts with the matmul (printed so); at 64 rows the matmul stays a node of its own
 * (sgemm) and the chain fuses alone; a matmul read by two chains is not absorbed. */
static void test_fused_dense_printed_ir(void **state)
{
    (void)state;
    for (int big = 0; big < 2; big++) {
        ed_graph *g = dense(big ? 64 : 8, 256, 1024, ED_F32, ACT_SILU);
        assert_int_equal(ed_pass_run(g, ED_DEFAULT_PIPELINE, NULL), ED_OK);
        char *ir = ed_graph_print(g);
        assert_non_null(ir);
        const char *fused = strstr(ir, "fused");
        if (!fused) fail_msg("no fused node in\n%s", ir);
        const char *mm = strstr(ir, "matmul");
        if (big != (mm != NULL && mm < fused) || count_op(g, ED_OP_MATMUL) != big) fail_msg("big=%d:\n%s", big, ir);
        if (!big && !strstr(fused, "matmul")) fail_msg("no matmul in the fused body:\n%s", ir);
        free(ir);
        ed_graph_free(g);
    }
    ed_graph *g = ed_graph_new("shared");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(1, 16));
    ed_node *w = ed_input(g, "w", ED_F32, ed_shape2(16, 32));
    ed_node *y = ed_matmul(x, w);
    ed_output(g, "a", ed_silu(y));
    ed_output(g, "b", ed_tanh(y));
    assert_int_equal(ed_pass_run(g, ED_DEFAULT_PIPELINE, NULL), ED_OK);
    assert_int_equal(count_op(g, ED_OP_MATMUL), 1);
    ed_graph_free(g);
}

/* The fused op's rule refuses a producer that is not one: a matmul of a computed value,
 * or two of them. */
static void test_fused_matmul_rule(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("outer");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(2, 3)), *w = ed_input(g, "w", ED_F32, ed_shape2(3, 3));
    ed_graph *body = ed_graph_new("body");
    ed_node *bx = ed_input(body, "x0", ED_F32, ed_shape2(2, 3)), *bw = ed_input(body, "x1", ED_F32, ed_shape2(3, 3));
    ed_output(body, "y", ed_matmul(ed_neg(bx), bw));
    assert_null(ed_fused((ed_node *[]){x, w}, 2, body));
    assert_non_null(strstr(ed_graph_error(g), "must read two body inputs"));
    ed_graph_free(g); /* the body too: g adopted it */
    g = ed_graph_new("outer2");
    x = ed_input(g, "x", ED_F32, ed_shape2(3, 3)), w = ed_input(g, "w", ED_F32, ed_shape2(3, 3));
    body = ed_graph_new("body2");
    bx = ed_input(body, "x0", ED_F32, ed_shape2(3, 3)), bw = ed_input(body, "x1", ED_F32, ed_shape2(3, 3));
    ed_output(body, "y", ed_add(ed_matmul(bx, bw), ed_matmul(bw, bx)));
    assert_null(ed_fused((ed_node *[]){x, w}, 2, body));
    assert_non_null(strstr(ed_graph_error(g), "two matmuls"));
    ed_graph_free(g); /* the body too: g adopted it */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fused_dense_matches_unfused_interp),
        cmocka_unit_test(test_fused_dense_with_sgemm_product),
        cmocka_unit_test(test_fused_dense_on_two_threads),
        cmocka_unit_test(test_fused_dense_printed_ir),
        cmocka_unit_test(test_fused_matmul_rule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
