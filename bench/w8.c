/* W8 wgan_gp_2d (bench/README.md): one WGAN-GP iteration at wgan_gp's table defaults
 * (the networks it takes on images; on 2-D data `edifice train` now defaults to 128,128
 * networks, lambda 0.1, beta1 0.5, no dropout) on 8gaussians, as one program: a critic step with its gradient
 * penalty (a gradient inside the loss, so the step differentiates twice) and a generator
 * step. G: z [256, 128] -> (dense, batch norm, ReLU) x (256, 512) -> dense 2; D: (dense,
 * ReLU, dropout 0.3) x (512, 256) -> dense 1; the models/gan.h builders. One G(z) feeds
 * both steps; the critic's loss reads it as a value (D's params only), the generator's
 * -mean D(G(z)) goes through a second D pass (its own dropout) to G's params. Both
 * updates land at the end of the call, so G's step sees the critic before its update
 * (the trainer runs them as two programs; the work is the same). Adam lr 1e-3, betas
 * (0, 0.9); batch 256 of the 8gaussians set, 16 batches in turn. */
#include "bench/workloads.h"
#include "frontend/frontend.h"
#include "models/gan.h"
#include "models/toy_data.h"
#include "models/train_step.h"
#include "runtime/error.h"

enum { BATCH = 256, NBATCHES = 16 };

static ed_graph *build_w8(void)
{
    ed_graph *g = ed_graph_new("w8_wgan_gp_2d");
    ed_gan_opts o;
    ed_wgan_gp_defaults(&o);
    o.data_dim = 2;
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(BATCH, 2));
    ed_node *fake = ed_gan_generate(ed_randn(g, ED_F32, ed_shape2(BATCH, o.latent)), NULL, &o);
    ed_node *wdist = ed_sub(ed_mean(ed_gan_discriminate(fake, NULL, &o), ED_ALL_AXES, false),
                            ed_mean(ed_gan_discriminate(x, NULL, &o), ED_ALL_AXES, false));
    ed_node *critic = ed_add(wdist, ed_mul_scalar(ed_gan_gradient_penalty(x, fake, NULL, &o), o.gp_lambda));
    ed_node *gen = ed_neg(ed_mean(ed_gan_discriminate(fake, NULL, &o), ED_ALL_AXES, false));
    static const char *const disc[] = {"disc.", NULL}, *const gens[] = {"gen.", NULL};
    ed_optim_opts adam = {.kind = ED_OPT_ADAM, .lr = 1e-3, .beta1 = o.beta1, .beta2 = o.beta2, .exact_betas = true};
    ed_train_step(g, critic, &(ed_train_opts){.optim = adam, .groups = disc});
    adam.prefix = "opt.gen.";
    if (gen) ed_output(g, "gen_loss", gen);
    ed_train_step(g, gen, &(ed_train_opts){.optim = adam, .groups = gens});
    return g;
}

int bench_w8_build(bench_workload *w)
{
    w->id = "w8";
    w->title = "W8 wgan_gp_2d";
    w->g = build_w8();
    w->input = "x";
    return bench_toy_batches(w, ED_TOY_8GAUSSIANS, BATCH, NBATCHES);
}
