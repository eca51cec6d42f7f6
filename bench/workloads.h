/* The training-step workloads of bench/README.md (W1, W2, W3, W5, W8, W9, W10) as graphs plus the
 * data batches a step is fed, shared by the driver (bench/train.c) and the tests
 * (tests/test_bench_workloads.c). One program call of a workload's graph is one
 * training step: forward, backward and the optimizer update, with output "loss". */
#ifndef ED_BENCH_WORKLOADS_H
#define ED_BENCH_WORKLOADS_H

#include "ir/ir.h"
#include "runtime/tensor.h"

typedef struct {
    const char *id;    /* "w1" */
    const char *title; /* "W1 ddpm_mlp_2d" */
    ed_graph *g;
    const char *input; /* the one data input, fed batches[k % nbatches] at call k */
    ed_tensor **batches;
    int nbatches;
} bench_workload;

/* Build workload id ("w1", "w2", "w3", "w3d", "w5", "w8", "w9_unet", "w10_dcgan") into
 * *w. Returns 0, or -1 with one line in
 * ed_last_error() (unknown id, graph error, data file missing). */
int bench_workload_build(const char *id, bench_workload *w);
void bench_workload_free(bench_workload *w);
/* Whether id names a training workload. */
bool bench_is_training_workload(const char *id);

int bench_w1_build(bench_workload *w);
int bench_w2_build(bench_workload *w);
int bench_w3_build(bench_workload *w);
int bench_w3d_build(bench_workload *w); /* W3 at the dit model's default size */
int bench_w5_build(bench_workload *w);
int bench_w8_build(bench_workload *w);
int bench_w9_unet_build(bench_workload *w);   /* bench/w9.c */
int bench_w10_dcgan_build(bench_workload *w); /* bench/w10.c */

/* Data parallel (W1 and W3 under mpirun in an EDIFICE_MPI build, runtime/comm.h): each
 * rank's share of a workload's global batch, and the allreduce bucket its training step
 * averages gradients with (0 on one rank: the step as it always was). */
int64_t bench_local_batch(int64_t batch);
int64_t bench_allreduce_bucket(void);

/* The first rows images of data/digits.csv.gz (EDIFICE_DIGITS overrides the path) as
 * f32 [rows, 64], pixels scaled to [0, 1]: the library's reader (models/image_data.h),
 * flattened. NULL with ed_last_error() on failure. */
ed_tensor *bench_digits_load(int64_t rows);
/* Cut rows [k*b, (k+1)*b) of x [N, D] into n new tensors reshaped to shape (numel b*D). */
ed_tensor **bench_split_batches(const ed_tensor *x, int64_t b, int n, ed_shape shape);
/* w's batches: n batches of b points of a 2-D toy set (models/toy_data.h), seed 0.
 * Returns 0, or -1 with the reason in ed_last_error(). */
int bench_toy_batches(bench_workload *w, int set, int64_t b, int n);
/* w's batches: the first n * b Fashion-MNIST training images (models/image_data.h, in
 * [0, 1]), n batches of b, each reshaped to shape. Returns 0, or -1 as above. */
int bench_fashion_batches(bench_workload *w, int64_t b, int n, ed_shape shape);

/* DDPM forward noising of x0 [B, ...] (f32) with T linear betas 1e-4..0.02: draws
 * t ~ U{0..T-1} [B] and eps ~ N(0, 1) like x0 inside the graph and returns
 * x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps. */
ed_node *bench_ddpm_noised(ed_node *x0, int T, ed_node **t, ed_node **eps);

/* 2mnk summed over every matmul node of g, and 2 x (multiply-adds) over every convolution
 * node (conv2d, its input and weight gradients: 2 N O OH OW C/groups KH KW each), a loop's
 * body counted once per trip: the FLOPs that dominate a step or a sampler call. */
double bench_matmul_flops(const ed_graph *g);

#endif
