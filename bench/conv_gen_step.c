/* One training iteration of `edifice train vae|gan --arch conv --data fashion_mnist`
 * (bench/README.md, "conv VAE and DCGAN steps"): the trainer's own compiled steps on
 * the real data, timed per iteration after one warm-up. Prints the wall-clock median
 * over the repeats and the process CPU seconds per iteration (user + system over the
 * timed calls): on a shared machine the CPU figure is the one to compare with the
 * PyTorch twin (bench/torch/convgen.py), at one OpenBLAS thread.
 *   conv_gen_step vae|gan [--batch B] [--repeats R] [--steps S] [--threads T] */
#include "bench/bench.h"
#include "models/registry.h"
#include "models/trainer.h"
#include "runtime/error.h"
#include "runtime/pool.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static bool iteration(void *ud)
{
    double loss;
    if (ed_trainer_step(ud, &loss) == ED_OK) return true;
    fprintf(stderr, "conv_gen_step: %s\n", ed_last_error());
    return false;
}

int main(int argc, char **argv)
{
    if (argc < 2 || (strcmp(argv[1], "vae") && strcmp(argv[1], "gan"))) {
        fprintf(stderr, "usage: conv_gen_step vae|gan [--batch B] [--repeats R] [--steps S] [--threads T]\n");
        return 2;
    }
    bool gan = !strcmp(argv[1], "gan");
    bench_opts bo = {.backend = ED_BACKEND_JIT, .threads = 1, .repeats = 5, .steps = 5};
    int64_t batch = gan ? 64 : 256;
    for (int i = 2; i + 1 < argc; i += 2) {
        long v = atol(argv[i + 1]);
        if (v < 1) {
            fprintf(stderr, "conv_gen_step: %s wants a number >= 1\n", argv[i]);
            return 2;
        }
        if (!strcmp(argv[i], "--batch")) batch = v;
        else if (!strcmp(argv[i], "--repeats")) bo.repeats = (int)v;
        else if (!strcmp(argv[i], "--steps")) bo.steps = (int)v;
        else if (!strcmp(argv[i], "--threads")) bo.threads = (int)v;
        else {
            fprintf(stderr, "conv_gen_step: unknown flag %s\n", argv[i]);
            return 2;
        }
    }
    openblas_set_num_threads(bo.threads);
    ed_pool_set_threads(bo.threads); /* the convolutions' images (backend/llvm/conv_gemm.c) */
    ed_dataset d = {0};
    ed_gen_model m;
    if (ed_dataset_open(&d, "fashion_mnist", 0, 0) != ED_OK) {
        fprintf(stderr, "conv_gen_step: %s\n", ed_last_error());
        return 1;
    }
    ed_data_facts f = ed_dataset_facts(&d);
    if (ed_gen_model_init_data(&m, gan ? &ed_gan_model : &ed_vae_model, &f) != ED_OK ||
        ed_gen_model_set(&m, "arch", "conv") != ED_OK || ed_gen_model_check(&m) != ED_OK) {
        fprintf(stderr, "conv_gen_step: %s\n", ed_last_error());
        ed_dataset_free(&d);
        return 1;
    }
    ed_trainer_opts to = {.batch = batch, .lr = gan ? 2e-4 : 1e-3, .backend = ED_BACKEND_JIT, .steps = 1000000};
    ed_trainer *t = ed_trainer_new(&m, &d, &to);
    if (!t) {
        fprintf(stderr, "conv_gen_step: %s\n", ed_last_error());
        ed_dataset_free(&d);
        return 1;
    }
    /* one warm-up call here, so the CPU clock covers the timed calls only */
    bo.no_warmup = true;
    bench_stat s;
    bool ok = iteration(t);
    double cpu0 = cpu_now();
    ok = ok && bench_time(&bo, iteration, t, &s);
    double calls = (double)bo.repeats * bo.steps;
    if (ok)
        printf("conv_gen_step %s batch %lld threads %d: wall %.4f s/iter (median of %d x %d; min %.4f), cpu %.4f "
               "s/iter\n",
               argv[1], (long long)batch, bo.threads, s.median, bo.repeats, bo.steps, s.min,
               (cpu_now() - cpu0) / calls);
    ed_trainer_free(t);
    ed_dataset_free(&d);
    return ok ? 0 : 1;
}
