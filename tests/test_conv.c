/* The convolution ops on the JIT against the interpreter: the direct lowering bit for
 * bit on the odd shapes (special values included), the im2col + sgemm lowering within
 * float rounding on the same shapes, the default choice on a larger layer, and random
 * convolutional graphs with their gradients through the default passes. Values by hand
 * are in test_interp_ops, gradients in test_grad. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "frontend/loop.h"
#include "frontend/nn.h"
#include "passes/autodiff.h"
#include "passes/pass.h"
#include "runtime/pool.h"

#include <cblas.h>
#include "support/run_check.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* The odd shapes of the issue: stride 2, padding 1, dilation 2, groups 2, 1x1, a kernel
 * larger than the input with padding, all of them at once, and batches the gemm form
 * splits into chunks. */
typedef struct {
    ed_shape x, w;
    ed_conv_opts o;
} conv_case;

static const conv_case cases[] = {
    {{4, {2, 3, 7, 6}}, {4, {4, 3, 3, 3}}, {.stride = {2, 2}}},
    {{4, {1, 2, 5, 5}}, {4, {3, 2, 3, 3}}, {.padding = {1, 1}}},
    {{4, {1, 2, 7, 6}}, {4, {2, 2, 2, 3}}, {.dilation = {2, 2}, .padding = {1, 0}}},
    {{4, {2, 4, 5, 4}}, {4, {6, 2, 3, 2}}, {.groups = 2, .stride = {1, 2}}},
    {{4, {2, 3, 4, 5}}, {4, {5, 3, 1, 1}}, {.groups = 1}},
    {{4, {1, 2, 2, 3}}, {4, {2, 2, 4, 4}}, {.padding = {2, 1}}},
    {{4, {1, 3, 8, 9}}, {4, {3, 1, 3, 2}}, {.stride = {2, 3}, .dilation = {2, 1}, .padding = {1, 2}, .groups = 3}},
    {{4, {3, 8, 13, 11}}, {4, {16, 4, 3, 3}}, {.stride = {2, 1}, .padding = {1, 1}, .groups = 2}},
    /* gemm chunks of images (backend/llvm/conv_gemm.c): 100 pixels make chunks of 20, so
     * batch 21 ends with a chunk of one; 132 pixels make chunks of one, 1x1 reads x as is */
    {{4, {21, 4, 10, 10}}, {4, {6, 2, 3, 3}}, {.padding = {1, 1}, .groups = 2}},
    {{4, {2, 3, 12, 11}}, {4, {4, 3, 1, 1}}, {.groups = 1}},
    /* as wide out as in at stride 1, so im2col copies runs of rows: dilated, and a kernel
     * larger than the input */
    {{4, {3, 2, 5, 6}}, {4, {3, 2, 3, 3}}, {.dilation = {2, 2}, .padding = {2, 2}}},
    {{4, {1, 2, 2, 2}}, {4, {2, 2, 5, 5}}, {.padding = {2, 2}}},
    /* conv_transpose2d at stride 1 runs as a conv2d with the flipped kernel: padded apart
     * per axis (3 and 0 after the flip), a 1-row kernel, and padding past the kernel's
     * reach, which keeps col2im */
    {{4, {3, 4, 9, 8}}, {4, {6, 2, 3, 3}}, {.dilation = {2, 1}, .padding = {1, 2}, .groups = 2}},
    {{4, {1, 3, 5, 7}}, {4, {2, 3, 1, 3}}, {.padding = {0, 1}}},
    {{4, {3, 4, 6, 5}}, {4, {4, 2, 3, 3}}, {.padding = {3, 1}, .groups = 2}},
    /* stride 1 with fewer outputs than inputs on planes of 512+ pixels runs one sgemm per
     * tap over padded planes (conv2d and its weight gradient; conv_transpose2d when the
     * flipped kernel has fewer outputs): unpadded, dilated and grouped, a 1-row kernel */
    {{4, {2, 6, 23, 25}}, {4, {2, 6, 3, 3}}, {.padding = {1, 1}}},
    {{4, {1, 8, 24, 27}}, {4, {2, 4, 3, 3}}, {.dilation = {2, 1}, .padding = {2, 1}, .groups = 2}},
    {{4, {2, 5, 26, 24}}, {4, {3, 5, 1, 3}}, {.padding = {0, 1}}},
    {{4, {1, 4, 26, 26}}, {4, {2, 4, 3, 3}}, {.groups = 1}},
    {{4, {1, 2, 25, 23}}, {4, {5, 2, 3, 3}}, {.dilation = {1, 2}, .padding = {1, 2}}},
};
enum { NCASES = sizeof cases / sizeof cases[0] };

/* One graph holding all three ops of case c: y = conv2d(x, w), conv_transpose2d(t, w)
 * with output_padding where the stride allows, conv2d_weight_grad(x, t). */
static ed_graph *case_graph(const conv_case *c, ed_dtype dt)
{
    ed_graph *g = ed_graph_new("conv");
    ed_node *x = ed_input(g, "x", dt, c->x), *w = ed_input(g, "w", dt, c->w);
    ed_conv_opts o = c->o;
    ed_node *y = ed_conv2d(x, w, &o);
    assert_non_null(y);
    ed_node *t = ed_input(g, "t", dt, y->shape);
    ed_output(g, "y", y);
    ed_output(g, "dw", ed_conv2d_weight_grad(x, t, c->w.dim[2], c->w.dim[3], &o));
    for (int k = 0; k < 2; k++) o.output_padding[k] = o.stride[k] > 1;
    ed_output(g, "xt", ed_conv_transpose2d(t, w, &o));
    if (ed_graph_error(g)) fail_msg("%s", ed_graph_error(g));
    return g;
}

/* Every eighth element a special value: 0, -0, NaN, +-inf. */
static void add_specials(random_feeds *fd)
{
    static const double special[] = {0.0, -0.0, NAN, INFINITY, -INFINITY};
    for (int i = 0; i < fd->n; i++)
        for (int64_t e = 0; e < ed_tensor_numel(fd->t[i]); e++)
            if (pick(8) == 0) ed_tensor_set(fd->t[i], e, special[pick(5)]);
}

static void compare(const ed_graph *g, ed_conv_lowering conv, bool specials, tensor_check check, double tol,
                    const char *what)
{
    ed_compile_opts opts[2] = {{.backend = ED_BACKEND_INTERP, .passes = ""},
                               {.backend = ED_BACKEND_JIT, .passes = "", .conv = conv}};
    program_set ps;
    programs_compile(&ps, g, opts, 2, what);
    random_feeds fd;
    random_feeds_make(g, -2, 2, &fd);
    if (specials) add_specials(&fd);
    programs_run(&ps, &fd, what);
    programs_check_outputs(&ps, 0, 1, check, tol, what, 0);
    random_feeds_free(&fd);
    programs_free(&ps);
}

static void test_direct_bit_identical(void **state)
{
    (void)state;
    rng_seed(1);
    for (int c = 0; c < NCASES; c++)
        for (int d = 0; d < 2; d++) {
            ed_graph *g = case_graph(&cases[c], d ? ED_F64 : ED_F32);
            char what[64];
            snprintf(what, sizeof what, "direct, case %d, %s", c, d ? "f64" : "f32");
            compare(g, ED_CONV_DIRECT, false, check_tensors_agree, 0, what);
            compare(g, ED_CONV_DIRECT, true, check_tensors_agree, 0, what);
            ed_graph_free(g);
        }
}

/* sgemm sums in float in its own order: within 1e-5 of (1 + |value|). */
static void test_gemm_close(void **state)
{
    (void)state;
    rng_seed(2);
    for (int c = 0; c < NCASES; c++) {
        ed_graph *g = case_graph(&cases[c], ED_F32);
        char what[64];
        snprintf(what, sizeof what, "gemm, case %d", c);
        compare(g, ED_CONV_GEMM, false, check_tensors_close, 1e-5, what);
        ed_graph_free(g);
    }
}

/* The gemm form spreads a call's images over the thread pool in a fixed number of parts
 * (backend/llvm/conv_gemm.c), OpenBLAS at one thread inside: 1, 2 and 3 threads give the
 * same bits, the weight gradient's partial sums included, on every case (batches 1 to
 * 21). OpenBLAS at one thread outside too, as bench runs it: with more BLAS threads and
 * one pool thread, small planes go to sgemm in chunks of images, summed otherwise. */
static void test_threads_same_bits(void **state)
{
    (void)state;
    rng_seed(5);
    int blas = openblas_get_num_threads();
    openblas_set_num_threads(1);
    static const int threads[] = {1, 2, 3};
    for (int c = 0; c < NCASES; c++) {
        ed_graph *g = case_graph(&cases[c], ED_F32);
        char what[64];
        snprintf(what, sizeof what, "threads, case %d", c);
        ed_compile_opts opts[3];
        for (int k = 0; k < 3; k++) opts[k] = (ed_compile_opts){.backend = ED_BACKEND_JIT, .conv = ED_CONV_GEMM};
        program_set ps;
        programs_compile(&ps, g, opts, 3, what);
        random_feeds fd;
        random_feeds_make(g, -2, 2, &fd);
        for (int k = 0; k < 3; k++) {
            ed_pool_set_threads(threads[k]);
            if (ed_run(ps.p[k], fd.f, fd.n) != ED_OK) fail_msg("%s: run %d: %s", what, k, ed_last_error());
        }
        programs_check_outputs(&ps, 0, 1, check_tensors_agree, 0, what, 0);
        programs_check_outputs(&ps, 0, 2, check_tensors_agree, 0, what, 0);
        random_feeds_free(&fd);
        programs_free(&ps);
        ed_graph_free(g);
    }
    ed_pool_set_threads(0);
    openblas_set_num_threads(blas);
}

/* The default picks per op (sgemm unless one channel per group); f64 stays direct
 * whatever is asked. */
static void test_default_choice(void **state)
{
    (void)state;
    rng_seed(3);
    const conv_case layer = {{4, {4, 32, 14, 14}}, {4, {32, 32, 3, 3}}, {.padding = {1, 1}}};
    ed_graph *g = case_graph(&layer, ED_F32);
    compare(g, ED_CONV_AUTO, false, check_tensors_close, 1e-5, "default, a U-Net layer");
    ed_graph_free(g);
    const conv_case small = {{4, {2, 1, 28, 28}}, {4, {8, 1, 3, 3}}, {.padding = {1, 1}}};
    g = case_graph(&small, ED_F32);
    compare(g, ED_CONV_AUTO, false, check_tensors_close, 1e-5, "default, a first layer");
    ed_graph_free(g);
    /* one channel per group (pooling) stays direct: the interpreter's bits */
    const conv_case pool = {{4, {6, 1, 14, 14}}, {4, {1, 1, 2, 2}}, {.stride = {2, 2}}};
    g = case_graph(&pool, ED_F32);
    compare(g, ED_CONV_AUTO, true, check_tensors_agree, 0, "default, pooling");
    ed_graph_free(g);
    g = case_graph(&cases[7], ED_F64);
    compare(g, ED_CONV_GEMM, true, check_tensors_agree, 0, "gemm asked, f64");
    ed_graph_free(g);
}

/* A sampler's shape: convolutions inside a loop body (two of them sharing the gemm
 * buffer, one transposed), five trips, each form against the interpreter. */
static void test_in_a_loop(void **state)
{
    (void)state;
    rng_seed(4);
    ed_graph *g = ed_graph_new("loop");
    ed_node *x0 = ed_input(g, "x", ED_F32, ed_shape4(2, 4, 8, 8));
    ed_node *w0 = ed_input(g, "w", ED_F32, ed_shape4(8, 4, 3, 3));
    ed_loop_builder *b = ed_loop_begin(g, 5);
    ed_node *x = ed_loop_carried(b, x0), *w = ed_loop_capture(b, w0);
    ed_conv_opts down = {.stride = {2, 2}, .padding = {1, 1}}, up = down;
    up.output_padding[0] = up.output_padding[1] = 1;
    ed_node *h = ed_tanh(ed_conv2d(x, w, &down));
    ed_node *next = ed_add(x, ed_mul_scalar(ed_conv_transpose2d(h, w, &up), 0.1));
    ed_node *loop = ed_loop_end(b, &next, 1, &h, 1);
    ed_output(g, "x", ed_loop_result(loop, 0));
    ed_output(g, "h", ed_loop_result(loop, 1));
    if (ed_graph_error(g)) fail_msg("%s", ed_graph_error(g));
    compare(g, ED_CONV_DIRECT, false, check_tensors_close, 1e-5, "loop, direct"); /* tanh: f32 polynomial */
    compare(g, ED_CONV_GEMM, false, check_tensors_close, 1e-4, "loop, gemm");
    ed_graph_free(g);
}

/* ---- random convolutional graphs through the passes ---------------------------------- */

/* A small conv net drawn from the seed: convolutions (any of the odd settings), bias,
 * activations, pooling, upsampling, group norm, transposed convolutions back up; a loss
 * and its gradients for x and every param. */
static ed_graph *random_net(uint64_t seed)
{
    rng_seed(seed);
    ed_graph *g = ed_graph_new("net");
    int64_t c = 1 + pick(3), h = 6 + pick(6), w = 6 + pick(6);
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape4(2, c, h, w)), *v = x;
    int layers = 2 + pick(4);
    for (int l = 0; l < layers && v; l++) {
        char name[32];
        snprintf(name, sizeof name, "k%d", l);
        int64_t groups = v->shape.dim[1] % 2 == 0 && pick(2) ? 2 : 1, out = groups * (1 + pick(4));
        int64_t k = 1 + pick(3);
        ed_conv_opts o = {.stride = {1 + pick(2), 1 + pick(2)},
                          .padding = {pick(2), pick(2)},
                          .dilation = {1 + (k > 1 && pick(3) == 0), 1},
                          .groups = groups};
        if (v->shape.dim[2] + 2 * o.padding[0] < o.dilation[0] * (k - 1) + 1 || v->shape.dim[3] + 2 * o.padding[1] < k)
            continue;
        ed_node *kw = ed_param(g, name, ED_F32, ed_shape4(out, v->shape.dim[1] / groups, k, k),
                               (ed_init){ED_INIT_KAIMING_NORMAL, 0});
        snprintf(name, sizeof name, "b%d", l);
        ed_node *b = ed_param(g, name, ED_F32, ed_shape3(out, 1, 1), (ed_init){ED_INIT_NORMAL, 0.1});
        ed_node *y = ed_add(ed_conv2d(v, kw, &o), b);
        switch (pick(5)) {
        case 0: y = ed_silu(y); break;
        case 1: y = ed_relu(y); break;
        case 2:
            snprintf(name, sizeof name, "gn%d", l);
            y = ed_group_norm(y, name, y->shape.dim[1] % 2 == 0 ? 2 : 1, 1e-5, true);
            break;
        case 3:
            if (y->shape.dim[2] >= 2 && y->shape.dim[3] >= 2) y = ed_avg_pool2d(y, 2, 2, NULL);
            break;
        default: y = ed_tanh(ed_upsample_nearest2d(y, 2, 1)); break;
        }
        v = y;
    }
    /* back up with a transposed convolution */
    ed_node *tw = ed_param(g, "up", ED_F32, ed_shape4(v->shape.dim[1], 2, 3, 3), (ed_init){ED_INIT_KAIMING_NORMAL, 0});
    ed_node *up = ed_conv_transpose2d(v, tw,
                                      &(ed_conv_opts){.stride = {2, 2}, .padding = {1, 1}, .output_padding = {1, 0}});
    ed_node *loss = ed_mean(ed_square(up), ED_ALL_AXES, false);
    ed_output(g, "loss", loss);
    ed_node *wrt[16] = {x};
    int nw = 1;
    for (int i = 0; i < g->nnodes && nw < 16; i++)
        if (g->nodes[i]->op == ED_OP_PARAM) wrt[nw++] = g->nodes[i];
    ed_node *grads[16];
    if (ed_grad(loss, wrt, nw, grads) != ED_OK) fail_msg("seed %llu: %s", (unsigned long long)seed, ed_graph_error(g));
    for (int i = 0; i < nw; i++) {
        char name[32];
        snprintf(name, sizeof name, "g%d", i);
        ed_output(g, name, grads[i]);
    }
    if (ed_graph_error(g)) fail_msg("seed %llu: %s", (unsigned long long)seed, ed_graph_error(g));
    return g;
}

static void test_random_graphs_through_passes(void **state)
{
    (void)state;
    for (uint64_t s = 1; s <= 16; s++) {
        ed_graph *g = random_net(s);
        ed_compile_opts opts[3] = {{.backend = ED_BACKEND_INTERP, .passes = ""},
                                   {.backend = ED_BACKEND_JIT, .conv = ED_CONV_DIRECT},
                                   {.backend = ED_BACKEND_JIT, .conv = ED_CONV_GEMM}};
        char what[64];
        snprintf(what, sizeof what, "random net %llu", (unsigned long long)s);
        program_set ps;
        programs_compile(&ps, g, opts, 3, what);
        random_feeds fd;
        random_feeds_make(g, -1, 1, &fd);
        programs_run(&ps, &fd, what);
        /* the passes and the JIT's f32 polynomials (tanh, silu) move the last bits */
        programs_check_outputs(&ps, 0, 1, check_tensors_close, 1e-4, what, 0);
        programs_check_outputs(&ps, 0, 2, check_tensors_close, 1e-4, what, 0);
        random_feeds_free(&fd);
        programs_free(&ps);
        ed_graph_free(g);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_direct_bit_identical),
        cmocka_unit_test(test_gemm_close),
        cmocka_unit_test(test_threads_same_bits),
        cmocka_unit_test(test_default_choice),
        cmocka_unit_test(test_in_a_loop),
        cmocka_unit_test(test_random_graphs_through_passes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
