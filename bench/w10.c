/* W10 dcgan_fashion (bench/README.md): one DCGAN iteration of `edifice train gan --arch conv
 * --data fashion_mnist` at its defaults, as one program like W8: the models/gan.h networks
 * (channels 32,64, latent 128, glorot weights, no dropout in D: the conv default), batch 64
 * of real Fashion-MNIST images in [0, 1], non-saturating losses, Adam 2e-4, betas 0.5/0.999,
 * each step its own state. One G(z) feeds both steps: D's loss reads it as a value, G's
 * goes through a second D pass; both updates land at the end of the call. The trainer's
 * two programs also run G's forward once more (fresh z in the gen step): that G forward
 * (270 MFLOP, about a tenth) is the work this program does not do.
 *
 * Conv and dense FLOPs (bench_matmul_flops; 2 N O OH OW C KH KW per conv op, N = 64):
 *   D conv0 1->32, 28->14: 12.85M   D conv1 32->64, 14->7: 205.52M   D out 3136->1: 0.40M
 *   G fc 128->3136: 51.38M          G up0 64->32, 7->14: 205.52M     G up1 32->1: 12.85M
 *   forward: G once 269.75M + D three times (real, fake, fake for G) 656.30M
 *   D step backward, per D pass: weight grads 218.77M + input grads of out and conv1
 *     205.92M (none into conv0's input): x2 = 849.38M
 *   G step backward: D's input grads 218.77M, G's weight grads 269.75M, input grads of up1
 *     and up0 218.37M (none into z) = 706.88M
 *   total 2482.31 MFLOP per iteration (checked by tests/test_bench_workloads.c). */
#include "bench/workloads.h"
#include "frontend/frontend.h"
#include "models/gan.h"
#include "models/train_step.h"

enum { BATCH = 64, NBATCHES = 16, SIDE = 28 };

static ed_graph *build_w10(void)
{
    ed_graph *g = ed_graph_new("w10_dcgan");
    ed_gan_opts o;
    ed_gan_defaults(&o);
    o.arch = ED_GAN_CONV;
    o.data_dim = SIDE * SIDE;
    o.unit_range = true; /* pixels in [0, 1]: a sigmoid output, as the trainer picks */
    o.image[0] = 1, o.image[1] = SIDE, o.image[2] = SIDE;
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(BATCH, o.data_dim));
    ed_node *fake = ed_gan_generate(ed_randn(g, ED_F32, ed_shape2(BATCH, o.latent)), NULL, &o);
    ed_node *real_l = ed_gan_discriminate(x, NULL, &o), *fake_l = ed_gan_discriminate(fake, NULL, &o);
    ed_node *disc = ed_add(ed_mean(ed_softplus(ed_neg(real_l)), ED_ALL_AXES, false),
                           ed_mean(ed_softplus(fake_l), ED_ALL_AXES, false));
    ed_node *gen = ed_mean(ed_softplus(ed_neg(ed_gan_discriminate(fake, NULL, &o))), ED_ALL_AXES, false);
    static const char *const discs[] = {"disc.", NULL}, *const gens[] = {"gen.", NULL};
    ed_optim_opts adam = {.kind = ED_OPT_ADAM, .lr = 2e-4, .beta1 = o.beta1, .beta2 = o.beta2, .exact_betas = true};
    ed_train_step(g, disc, &(ed_train_opts){.optim = adam, .groups = discs});
    adam.prefix = "opt.gen.";
    if (gen) ed_output(g, "gen_loss", gen);
    ed_train_step(g, gen, &(ed_train_opts){.optim = adam, .groups = gens});
    return g;
}

int bench_w10_dcgan_build(bench_workload *w)
{
    w->id = "w10_dcgan";
    w->title = "W10 dcgan_fashion";
    w->g = build_w10();
    w->input = "x";
    return bench_fashion_batches(w, BATCH, NBATCHES, ed_shape2(BATCH, SIDE * SIDE));
}
