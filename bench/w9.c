/* W9 w9_unet (bench/README.md; the DCGAN step is W10, bench/w10.c): one DDPM training step
 * of the ddpm model's --arch conv U-Net at its defaults (models/unet.h: C 16, mults 1,2,2,
 * one residual block per level, group norm 8, no attention; T = 100 linear betas
 * 1e-4..0.02) on Fashion-MNIST 28x28 in [0, 1], batch 64: t, eps and x_t drawn inside the
 * step, eps MSE, Adam lr 1e-3. The first 1024 training images as 16 batches of 64 in turn. */
#include "bench/workloads.h"
#include "frontend/frontend.h"
#include "models/diffusion.h"
#include "models/train_step.h"
#include "runtime/error.h"

enum { BATCH = 64, NBATCHES = 16 };

static ed_graph *build_unet(void)
{
    ed_graph *g = ed_graph_new("w9_unet");
    ed_diffusion_opts o;
    ed_ddpm_defaults(&o);
    if (ed_options_set(ed_ddpm_options, ED_DDPM_NOPTIONS, &o, "arch", "conv") != ED_OK) {
        ed_graph_fail(g, "%s", ed_last_error());
        return g;
    }
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape4(BATCH, 1, 28, 28));
    ed_node *loss = ed_diffusion_loss(g, x, NULL, &o);
    ed_train_step(g, loss, &(ed_train_opts){.optim = {.kind = ED_OPT_ADAM, .lr = 1e-3}});
    return g;
}

int bench_w9_unet_build(bench_workload *w)
{
    w->id = "w9_unet";
    w->title = "W9 unet_fashion";
    w->g = build_unet();
    w->input = "x";
    return bench_fashion_batches(w, BATCH, NBATCHES, ed_shape4(BATCH, 1, 28, 28));
}
