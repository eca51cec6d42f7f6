/* A gemm convolution as the producer of its bias and activation (passes/fuse_matmul.c,
 * conv_gemm.c's epilogue): on odd shapes and batches, the fused node's values on both
 * backends against the interpreter running the unfused graph, the same bits at 1, 2 and
 * 3 threads, the printed IR read back, and the convs the rule leaves alone. */
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
#include "runtime/pool.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { ACT_NONE, ACT_RELU, ACT_SILU, ACT_LEAKY, ACT_TANH, ACT_SIGMOID, ACT_RESIDUAL, ACT_COUNT } act;
static const char *const act_names[ACT_COUNT] = {"none", "relu", "silu", "leaky_relu", "tanh", "sigmoid", "residual"};

typedef struct {
    bool transpose;
    ed_shape x, w; /* w: [O, C/groups, kh, kw] of the forward conv2d */
    ed_conv_opts o;
} conv_case;

/* Stride 2, padding 1, dilation 2, groups 2, 1x1, transposed at stride 1 (run as a
 * flipped conv2d) and 2, batches 1, 3, 5 (5 images in 4 parts: uneven), 3/5/7 channels,
 * a 7x7 plane (chunked with several BLAS threads) and a 24x24 stride-1 layer with fewer
 * outputs than inputs (conv_gemm.c's shifted taps). */
static const conv_case cases[] = {
    {false, {4, {3, 3, 9, 7}}, {4, {5, 3, 3, 3}}, {.stride = {2, 2}, .padding = {1, 1}}},
    {false, {4, {5, 5, 8, 8}}, {4, {7, 5, 3, 3}}, {.dilation = {2, 2}, .padding = {2, 2}}},
    {false, {4, {1, 6, 6, 5}}, {4, {4, 3, 3, 2}}, {.groups = 2, .padding = {1, 0}}},
    {false, {4, {5, 7, 4, 5}}, {4, {3, 7, 1, 1}}, {.groups = 1}},
    {true, {4, {3, 3, 6, 5}}, {4, {5, 3, 3, 3}}, {.padding = {1, 1}}},
    {true, {4, {5, 5, 4, 4}}, {4, {5, 3, 4, 4}}, {.stride = {2, 2}, .padding = {1, 1}}},
    {false, {4, {5, 3, 7, 7}}, {4, {5, 3, 3, 3}}, {.padding = {1, 1}}},
    {false, {4, {3, 8, 24, 24}}, {4, {4, 8, 3, 3}}, {.padding = {1, 1}}},
};
enum { NCASES = sizeof cases / sizeof cases[0] };

/* The conv's output: conv2d(x, w), or conv_transpose2d(x, w) with x as its dy (x's
 * channels are then w's first axis). */
static ed_node *conv_of(ed_graph *g, const conv_case *c, ed_dtype dt)
{
    ed_shape ws = c->w;
    if (c->transpose) { /* w [x's C, out C / groups, kh, kw] */
        ws.dim[0] = c->x.dim[1];
        ws.dim[1] = c->w.dim[1];
    }
    ed_node *x = ed_input(g, "x", dt, c->x);
    ed_node *w = ed_param(g, "w", dt, ws, (ed_init){ED_INIT_NORMAL, 0.3});
    return c->transpose ? ed_conv_transpose2d(x, w, &c->o) : ed_conv2d(x, w, &c->o);
}

/* y = act(conv + b), b [C] broadcast from [1, C, 1, 1] (residual: relu(conv + b) + r). */
static ed_graph *layer(const conv_case *c, act a, ed_dtype dt)
{
    ed_graph *g = ed_graph_new("layer");
    ed_node *y = conv_of(g, c, dt);
    int64_t ch = y->shape.dim[1];
    ed_node *b = ed_param(g, "b", dt, ed_shape1(ch), (ed_init){ED_INIT_NORMAL, 0.5});
    y = ed_add(y, ed_broadcast_to(ed_reshape(b, (ed_shape){4, {1, ch, 1, 1}}), y->shape));
    switch (a) {
    case ACT_RELU: y = ed_relu(y); break;
    case ACT_SILU: y = ed_silu(y); break;
    case ACT_LEAKY: y = ed_leaky_relu(y, 0.2); break;
    case ACT_TANH: y = ed_tanh(y); break;
    case ACT_SIGMOID: y = ed_sigmoid(y); break;
    case ACT_RESIDUAL: y = ed_add(ed_relu(y), ed_input(g, "r", dt, y->shape)); break;
    default: break;
    }
    ed_output(g, "y", y);
    if (ed_graph_error(g)) fail_msg("layer: %s", ed_graph_error(g));
    return g;
}

/* Top-level fused nodes of g whose body holds a conv. */
static int fused_convs(const ed_graph *g)
{
    int c = 0;
    for (int i = 0; i < g->nnodes; i++) {
        const ed_node *n = g->nodes[i];
        const ed_node *p = n->op == ED_OP_FUSED ? ed_fused_producer(n->attr.body) : NULL;
        c += p && p->op != ED_OP_MATMUL;
    }
    return c;
}

/* The default passes make every case and chain one fused node with the conv inside. */
static void expect_fused(const ed_graph *g, int want, const char *what)
{
    ed_graph *h = ed_graph_clone(g);
    assert_int_equal(ed_pass_run(h, ED_DEFAULT_PIPELINE, NULL), ED_OK);
    int have = fused_convs(h);
    if (have != want) {
        char *ir = ed_graph_print(h);
        fail_msg("%s: %d fused convs, want %d:\n%s", what, have, want, ir);
    }
    ed_graph_free(h);
}

/* Every case with every chain: the fused node on the interpreter gives the unfused
 * interpreter's bits; on the JIT (at one thread) the unfused JIT's bits (the same
 * sgemms, the same elementwise code) and the interpreter's within float rounding. */
static void test_fused_conv_matches_unfused(void **state)
{
    (void)state;
    ed_pool_set_threads(1);
    for (int c = 0; c < NCASES; c++)
        for (int a = 0; a < ACT_COUNT; a++) {
            if ((c + a) % 2 && a != ACT_RESIDUAL && a != ACT_SILU) continue; /* half the pairs: compile time */
            ed_graph *g = layer(&cases[c], (act)a, ED_F32);
            char what[96];
            snprintf(what, sizeof what, "case %d %s", c, act_names[a]);
            expect_fused(g, 1, what);
            const ed_node *y = g->outputs[0].node;
            ed_tensor *x = fuse_filled(cases[c].x, c), *r = fuse_filled(y->shape, c + 1);
            ed_feed feeds[2] = {{"x", x}, {"r", r}};
            int nf = a == ACT_RESIDUAL ? 2 : 1;
            ed_tensor *want = fuse_run(g, ED_BACKEND_INTERP, "", feeds, nf);
            ed_tensor *interp = fuse_run(g, ED_BACKEND_INTERP, NULL, feeds, nf);
            ed_tensor *jit_unfused = fuse_run(g, ED_BACKEND_JIT, "", feeds, nf);
            ed_tensor *jit = fuse_run(g, ED_BACKEND_JIT, NULL, feeds, nf);
            fuse_compare(want, interp, 0, what);
            fuse_compare(jit_unfused, jit, 0, what);
            fuse_compare(want, jit, 1e-4, what); /* float sums in BLAS's order, inline f32 math */
            ed_tensor_free(want), ed_tensor_free(interp), ed_tensor_free(jit_unfused), ed_tensor_free(jit);
            ed_tensor_free(x), ed_tensor_free(r);
            ed_graph_free(g);
        }
    ed_pool_set_threads(0);
}

/* The epilogue runs in each part on the pool's threads: the same bits at 1, 2 and 3
 * threads (OpenBLAS at one thread, as the parts run it). */
static void test_fused_conv_threads_same_bits(void **state)
{
    (void)state;
    int blas = openblas_get_num_threads();
    openblas_set_num_threads(1);
    for (int c = 0; c < NCASES; c++) {
        act a = c % 2 ? ACT_RESIDUAL : ACT_SILU;
        ed_graph *g = layer(&cases[c], a, ED_F32);
        const ed_node *y = g->outputs[0].node;
        ed_tensor *x = fuse_filled(cases[c].x, c), *r = fuse_filled(y->shape, c + 1);
        ed_feed feeds[2] = {{"x", x}, {"r", r}};
        ed_store *s = ed_store_new(3);
        ed_program *p = ed_compile(g, s, &(ed_compile_opts){.backend = ED_BACKEND_JIT});
        if (!p) fail_msg("compile: %s", ed_last_error());
        ed_tensor *out[3];
        for (int t = 0; t < 3; t++) {
            ed_pool_set_threads(t + 1);
            assert_int_equal(ed_run(p, feeds, a == ACT_RESIDUAL ? 2 : 1), ED_OK);
            out[t] = ed_tensor_copy(ed_program_output(p, "y"));
        }
        char what[64];
        snprintf(what, sizeof what, "case %d, 2 threads against 1", c);
        fuse_compare(out[0], out[1], 0, what);
        snprintf(what, sizeof what, "case %d, 3 threads against 1", c);
        fuse_compare(out[0], out[2], 0, what);
        for (int t = 0; t < 3; t++) ed_tensor_free(out[t]);
        ed_program_free(p);
        ed_store_free(s);
        ed_tensor_free(x), ed_tensor_free(r);
        ed_graph_free(g);
    }
    ed_pool_set_threads(0);
    openblas_set_num_threads(blas);
}

/* The printed fused node starts its body with the conv, and the text reads back to
 * the same text (verified by the parser). */
static void test_fused_conv_printed_ir(void **state)
{
    (void)state;
    for (int c = 3; c <= 4; c++) { /* a conv2d and a conv_transpose2d */
        ed_graph *g = layer(&cases[c], ACT_RELU, ED_F32);
        assert_int_equal(ed_pass_run(g, ED_DEFAULT_PIPELINE, NULL), ED_OK);
        char *ir = ed_graph_print(g);
        const char *op = c == 3 ? "= conv2d" : "= conv_transpose2d";
        const char *fused = strstr(ir, "fused"), *conv = strstr(ir, op);
        if (!fused || !conv || conv < fused || !strstr(conv, "relu")) fail_msg("no %s in a fused body:\n%s", op, ir);
        ed_graph *back = ed_graph_parse(ir, "printed");
        if (!back) fail_msg("parse: %s\n%s", ed_last_error(), ir);
        assert_int_equal(ed_graph_verify(back), ED_OK);
        char *again = ed_graph_print(back);
        if (strcmp(ir, again) != 0) fail_msg("round trip:\n%s\nread back as\n%s", ir, again);
        char *dot = ed_graph_dot(back);
        assert_non_null(dot);
        assert_non_null(strstr(dot, "conv"));
        free(dot), free(again), free(ir);
        ed_graph_free(back);
        ed_graph_free(g);
    }
}

/* The rule leaves a conv alone when it has two readers, when its reader reduces, when
 * it is f64, and when each group has one channel in and out (direct loops). */
static void test_fused_conv_refusals(void **state)
{
    (void)state;
    const conv_case *c0 = &cases[0];
    ed_graph *g = ed_graph_new("two_readers");
    ed_node *y = conv_of(g, c0, ED_F32);
    ed_output(g, "a", ed_relu(y));
    ed_output(g, "b", ed_tanh(y));
    expect_fused(g, 0, "two readers");
    ed_graph_free(g);

    g = ed_graph_new("reduction");
    y = conv_of(g, c0, ED_F32);
    ed_output(g, "s", ed_sum(ed_relu(y), 0xf, false));
    expect_fused(g, 0, "a reduction");
    ed_graph_free(g);

    g = layer(c0, ACT_RELU, ED_F64);
    expect_fused(g, 0, "f64");
    ed_graph_free(g);

    const conv_case depthwise = {false, {4, {2, 4, 6, 6}}, {4, {4, 1, 3, 3}}, {.groups = 4, .padding = {1, 1}}};
    g = layer(&depthwise, ACT_RELU, ED_F32);
    expect_fused(g, 0, "depthwise");
    ed_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fused_conv_matches_unfused),
        cmocka_unit_test(test_fused_conv_threads_same_bits),
        cmocka_unit_test(test_fused_conv_printed_ir),
        cmocka_unit_test(test_fused_conv_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
