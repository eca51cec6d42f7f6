/* W2 vae_digits (bench/README.md): one training step of a VAE on the 8x8 digits.
 * Encoder 64-256-256 (ReLU) to mu and logvar (16 each, two linear heads), z = mu +
 * exp(logvar / 2) eps with eps drawn in the step, decoder 16-256-256-64 (ReLU; sigmoid
 * output folded into the loss), loss = mean over the batch of BCE summed over the 64
 * pixels plus the KL to N(0, I) summed over the 16 latents. Batch 128, Adam lr 1e-3. */
#include "bench/workloads.h"
#include "frontend/nn.h"
#include "models/train_step.h"
#include "runtime/error.h"

enum { BATCH = 128, PIXELS = 64, LATENT = 16, HIDDEN = 256, NBATCHES = 11 };

static ed_graph *build_w2(void)
{
    ed_graph *g = ed_graph_new("w2_vae_digits");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(BATCH, PIXELS));
    int64_t enc_sizes[2] = {HIDDEN, HIDDEN};
    ed_node *h = ed_mlp(x, "enc", enc_sizes, 2, ED_ACT_RELU, true);
    ed_node *mu = ed_dense(h, "mu", LATENT, true);
    ed_node *logvar = ed_dense(h, "logvar", LATENT, true);
    ed_node *eps = ed_randn(g, ED_F32, ed_shape2(BATCH, LATENT));
    ed_node *z = ed_add(mu, ed_mul(ed_exp(ed_mul_scalar(logvar, 0.5)), eps));
    int64_t dec_sizes[3] = {HIDDEN, HIDDEN, PIXELS};
    ed_node *logits = ed_mlp(z, "dec", dec_sizes, 3, ED_ACT_RELU, false);
    /* BCE(sigmoid(l), x) = softplus(l) - x l, stable for any l. */
    ed_node *bce = ed_sum(ed_sub(ed_softplus(logits), ed_mul(x, logits)), ED_ALL_AXES, false);
    /* KL = -1/2 sum(1 + logvar - mu^2 - exp(logvar)) */
    ed_node *kl_terms = ed_sub(ed_sub(ed_add_scalar(logvar, 1.0), ed_square(mu)), ed_exp(logvar));
    ed_node *kl = ed_mul_scalar(ed_sum(kl_terms, ED_ALL_AXES, false), -0.5);
    ed_node *loss = ed_mul_scalar(ed_add(bce, kl), 1.0 / BATCH);
    ed_train_step(g, loss, &(ed_train_opts){.optim = {.kind = ED_OPT_ADAM, .lr = 1e-3}});
    return g;
}

int bench_w2_build(bench_workload *w)
{
    w->id = "w2";
    w->title = "W2 vae_digits";
    w->g = build_w2();
    w->input = "x";
    ed_tensor *all = bench_digits_load((int64_t)BATCH * NBATCHES);
    if (!all) return -1;
    w->batches = bench_split_batches(all, BATCH, NBATCHES, ed_shape2(BATCH, PIXELS));
    ed_tensor_free(all);
    if (!w->batches) return -1;
    w->nbatches = NBATCHES;
    return 0;
}
