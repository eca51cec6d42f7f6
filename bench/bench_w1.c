/* W1 ddpm_mlp_2d (bench/README.md): one DDPM training step of the epsilon-prediction
 * MLP on 2-D data, batch 512, Adam. Prints compile time and the median and spread of
 * the step time over repeats.
 *
 *   bench_w1 [--backend interp|jit] [--steps N] [--repeats R] */
#include "backend/backend.h"
#include "frontend/nn.h"
#include "passes/train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { BATCH = 512, T = 1000, TEMB = 32 };

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The W1 training-step graph. */
static ed_graph *build_w1(void)
{
    ed_graph *g = ed_graph_new("w1_ddpm_mlp_2d");
    ed_node *x0 = ed_input(g, "x0", ED_F32, ed_shape2(BATCH, 2));
    double abar[T], s1[T], s2[T], prod = 1;
    for (int i = 0; i < T; i++) {
        double beta = 1e-4 + (0.02 - 1e-4) * i / (T - 1);
        prod *= 1 - beta;
        abar[i] = prod;
        s1[i] = sqrt(abar[i]);
        s2[i] = sqrt(1 - abar[i]);
    }
    ed_node *t = ed_randint(g, ed_shape1(BATCH), 0, T);
    ed_node *eps = ed_randn(g, ED_F32, ed_shape2(BATCH, 2));
    ed_node *a = ed_reshape(ed_gather(ed_const(g, ED_F32, ed_shape1(T), s1, T), t, 0), ed_shape2(BATCH, 1));
    ed_node *b = ed_reshape(ed_gather(ed_const(g, ED_F32, ed_shape1(T), s2, T), t, 0), ed_shape2(BATCH, 1));
    ed_node *xt = ed_add(ed_mul(a, x0), ed_mul(b, eps));
    ed_node *temb = ed_silu(ed_dense(ed_timestep_embedding(ed_cast(t, ED_F32), TEMB, 10000), "temb", 128, true));
    ed_node *h = ed_concat((ed_node *[]){xt, temb}, 2, 1);
    int64_t sizes[4] = {256, 256, 256, 2};
    ed_node *pred = ed_mlp(h, "den", sizes, 4, ED_ACT_SILU, false);
    ed_node *loss = ed_mean(ed_square(ed_sub(pred, eps)), ED_ALL_AXES, false);
    ed_train_step(g, loss, &(ed_train_opts){.optim = {.kind = ED_OPT_ADAM, .lr = 1e-3}});
    return g;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    ed_backend backend = ED_BACKEND_INTERP;
    int steps = 5, repeats = 5;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--backend") && i + 1 < argc) {
            i++;
            backend = !strcmp(argv[i], "jit") ? ED_BACKEND_JIT : ED_BACKEND_INTERP;
        } else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--repeats") && i + 1 < argc) repeats = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_w1 [--backend interp|jit] [--steps N] [--repeats R]\n");
            return 2;
        }
    }
    if (steps < 1 || repeats < 1 || repeats > 100) {
        fprintf(stderr, "bench_w1: steps >= 1 and 1 <= repeats <= 100\n");
        return 2;
    }
    ed_graph *g = build_w1();
    if (ed_graph_error(g)) {
        fprintf(stderr, "bench_w1: %s\n", ed_graph_error(g));
        return 1;
    }
    float *xs = malloc(sizeof(float) * BATCH * 2);
    for (int i = 0; i < BATCH; i++) { /* two Gaussian-ish blobs, deterministic */
        double u = (i * 0.618033988749895) - floor(i * 0.618033988749895);
        xs[2 * i] = (float)((i % 2 ? 1.0 : -1.0) + 0.1 * cos(6.283 * u));
        xs[2 * i + 1] = (float)(0.1 * sin(6.283 * u));
    }
    ed_tensor *x0 = ed_tensor_wrap(ED_F32, ed_shape2(BATCH, 2), xs);
    ed_store *st = ed_store_new(0);
    double t0 = now();
    ed_program *p = ed_compile(g, st, &(ed_compile_opts){.backend = backend});
    double compile_s = now() - t0;
    if (!p) {
        fprintf(stderr, "bench_w1: %s\n", ed_last_error());
        return 1;
    }
    ed_feed feed = {"x0", x0};
    ed_run(p, &feed, 1); /* warm-up */
    double times[100];
    for (int r = 0; r < repeats; r++) {
        double s = now();
        for (int k = 0; k < steps; k++)
            if (ed_run(p, &feed, 1) != ED_OK) {
                fprintf(stderr, "bench_w1: %s\n", ed_last_error());
                return 1;
            }
        times[r] = (now() - s) / steps;
    }
    qsort(times, (size_t)repeats, sizeof times[0], cmp_double);
    printf("W1 ddpm_mlp_2d backend=%s nodes=%d compile=%.3fs step median=%.2fms min=%.2fms max=%.2fms "
           "(%d repeats x %d steps) steps/s=%.1f loss=%.4f\n",
           backend == ED_BACKEND_JIT ? "jit" : "interp", g->nnodes, compile_s, 1e3 * times[repeats / 2],
           1e3 * times[0], 1e3 * times[repeats - 1], repeats, steps, 1.0 / times[repeats / 2],
           ed_tensor_get(ed_program_output(p, "loss"), 0));
    ed_program_free(p);
    ed_store_free(st);
    ed_tensor_free(x0);
    free(xs);
    ed_graph_free(g);
    return 0;
}
