/* The two lowerings of the convolution ops on one layer each (bench/README.md, "conv
 * layers"): seconds per call of conv2d, its input gradient (conv_transpose2d) and its
 * weight gradient, direct and im2col + sgemm, medians of 5. Prints one line per op and
 * form; the default rule in backend/llvm/lower_conv.c follows these figures.
 *   conv_layers N C O H W K [stride pad]  */
#include "backend/backend.h"
#include "bench/bench.h"
#include "frontend/frontend.h"
#include "runtime/error.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct {
    ed_program *p;
    ed_feed feeds[3];
} call_ud;

static bool call(void *ud)
{
    call_ud *c = ud;
    return ed_run(c->p, c->feeds, 3) == ED_OK;
}

int main(int argc, char **argv)
{
    if (argc != 7 && argc != 9) {
        fprintf(stderr, "usage: conv_layers N C O H W K [stride pad]\n");
        return 2;
    }
    int64_t v[8] = {0, 0, 0, 0, 0, 0, 1, 0};
    for (int i = 1; i < argc; i++) v[i - 1] = atoll(argv[i]);
    int64_t n = v[0], c = v[1], o = v[2], h = v[3], w = v[4], k = v[5];
    ed_conv_opts opts = {.stride = {v[6], v[6]}, .padding = {v[7], v[7]}};
    static const char *const ops[] = {"conv2d", "input_grad", "weight_grad"};
    static const char *const forms[] = {"direct", "gemm"};
    for (int op = 0; op < 3; op++)
        for (int f = 0; f < 2; f++) {
            ed_graph *g = ed_graph_new("layer");
            ed_node *x = ed_input(g, "x", ED_F32, ed_shape4(n, c, h, w));
            ed_node *kw = ed_input(g, "w", ED_F32, ed_shape4(o, c, k, k));
            ed_node *y = ed_conv2d(x, kw, &opts);
            if (!y) {
                fprintf(stderr, "%s\n", ed_graph_error(g));
                return 1;
            }
            ed_node *dy = ed_input(g, "dy", ED_F32, y->shape);
            ed_conv_opts t = opts;
            for (int i = 0; i < 2; i++) t.output_padding[i] = (h + 2 * v[7] - k) % v[6];
            ed_node *r = op == 0   ? y
                         : op == 1 ? ed_conv_transpose2d(dy, kw, &t)
                                   : ed_conv2d_weight_grad(x, dy, k, k, &opts);
            ed_output(g, "r", r);
            ed_store *st = ed_store_new(1);
            call_ud u = {.p = ed_compile(g, st, &(ed_compile_opts){.conv = f ? ED_CONV_GEMM : ED_CONV_DIRECT})};
            if (!u.p) {
                fprintf(stderr, "%s\n", ed_last_error());
                return 1;
            }
            ed_tensor *tx = ed_tensor_new(ED_F32, x->shape), *tw = ed_tensor_new(ED_F32, kw->shape),
                      *td = ed_tensor_new(ED_F32, y->shape);
            u.feeds[0] = (ed_feed){"x", tx};
            u.feeds[1] = (ed_feed){"w", tw};
            u.feeds[2] = (ed_feed){"dy", td};
            double flops = 2.0 * (double)(n * o * y->shape.dim[2] * y->shape.dim[3] * c * k * k);
            bench_opts bo = {.repeats = 5, .steps = 1};
            bench_stat s;
            if (!bench_time(&bo, call, &u, &s)) {
                fprintf(stderr, "%s\n", ed_last_error());
                return 1;
            }
            printf("%-12s %-7s %10.3f ms  %7.2f GFLOP/s  (min %.3f, max %.3f)\n", ops[op], forms[f], s.median * 1e3,
                   flops / s.median * 1e-9, s.min * 1e3, s.max * 1e3);
            ed_tensor_free(tx), ed_tensor_free(tw), ed_tensor_free(td);
            ed_program_free(u.p);
            ed_store_free(st);
            ed_graph_free(g);
        }
    return 0;
}
