/* GANs on flat data x [B, D]: Edifice.Generative.GAN's generator and discriminator,
 * trained as two compiled steps over one store, "disc" (run n_critic times) then "gen",
 * each on its own parameter group with its own Adam settings.
 *
 * Generator: z ~ N(0, I) [B, latent] (cgan: concatenated with the one-hot label), then
 * per hidden width dense -> batch norm -> activation, then dense D -> the output
 * activation. Discriminator: x [B, D] (cgan: with the one-hot label), per hidden width
 * dense -> activation -> dropout, then dense 1: a raw logit (critic value) per sample.
 * Batch norm and dropout follow the graph's train/eval mode (frontend/norm.h): the
 * training steps build in training mode, sampling in eval mode (running statistics).
 *
 * Losses, l = D's logits, G(z) the generated batch:
 *   gan, cgan  disc: mean softplus(-l(x)) + mean softplus(l(G(z)))  (= -log s(l) and
 *              -log(1 - s(l)), stable on logits); gen: mean softplus(-l(G(z))), the
 *              non-saturating loss.
 *   wgan_gp    disc: mean l(G(z)) - mean l(x) + lambda mean_i (|grad_x^ l(x^)_i|_2 - 1)^2
 *              at x^_i = e_i x_i + (1 - e_i) G(z)_i, e_i ~ U[0, 1); the gradient of the
 *              sum of the per-sample outputs, so row i is d l(x^_i) / d x^_i (no 1/B),
 *              by ed_grad inside the step; its norm is sqrt(|.|^2 + 1e-12) so a zero
 *              gradient has a finite derivative. gen: -mean l(G(z)).
 *
 * Choices against Edifice, on purpose:
 * - The output activation matches the data (output = auto): sigmoid for data in [0, 1]
 *   (Edifice's default), none for other data (the 2-D sets are unbounded: tanh would
 *   clip 8gaussians' modes at radius 1.41); sigmoid, tanh and none can be forced.
 * - The discriminator is conditional too in cgan (Edifice conditions only G).
 * - Adam betas (0.5, 0.999) for gan and cgan (the usual GAN setting), (0, 0.9) for
 *   wgan_gp (Gulrajani et al.), n_critic 1 and 5; both steps use the run's lr.
 * - wgan_gp on low-dimensional data (a vector of at most 16 numbers: the 2-D sets) takes
 *   the paper's toy settings instead: gp_lambda 0.1, beta1 0.5, no dropout in the critic,
 *   and both networks 128,128 (the registry entry's defaults; options still override).
 *
 * arch conv (DCGAN, Radford et al., on images [C, H, W] kept flat [B, D] outside):
 * G: z (cgan: with the one-hot label) -> dense to [channels[n-1], H / 2^n, W / 2^n] ->
 * batch norm -> activation, then per channel entry from the last a 4x4 stride-2
 * transposed convolution (padding 1, doubling H and W) to the entry before it -> 2-D batch
 * norm (per channel) -> activation, the last one to C channels -> the output activation.
 * D: per channel entry a 4x4 stride-2 convolution -> leaky ReLU 0.2 (-> dropout only if
 * --dropout is given: DCGAN's D has none), then
 * (cgan: with the one-hot label) dense 1 on the flattened features. D has no batch norm:
 * each step runs D on the real and the fake batch apart (one batch norm per name and
 * graph), and WGAN-GP's critic must have none anyway. 28x28 with channels 32,64:
 * G 7x7x64 -> 14x14x32 -> 28x28x1, D 28 -> 14x14x32 -> 7x7x64. --init dcgan draws
 * every weight (dense ones too) from DCGAN's N(0, 0.02) instead of the layers' glorot
 * uniform (the default: on Fashion-MNIST the N(0, 0.02) run was worse, bench/HISTORY.md);
 * biases zeros, batch-norm gains ones either way.
 *
 * Names: params "gen.*", "disc.*"; batch norm state "gen.bn<i>.running_mean/var"
 * (conv: "gen.fc", "gen.bn_fc", "gen.up<i>", "gen.bn<i>"; "disc.conv<i>", "disc.out"). */
#ifndef ED_GAN_H
#define ED_GAN_H

#include "frontend/frontend.h"
#include "models/options.h"

#include <stdint.h>

typedef enum { ED_GAN_STANDARD, ED_GAN_WGAN_GP, ED_GAN_COUNT } ed_gan_loss;
typedef enum { ED_GAN_MLP, ED_GAN_CONV, ED_GAN_ARCH_COUNT } ed_gan_arch;
typedef enum { ED_GAN_INIT_GLOROT, ED_GAN_INIT_DCGAN, ED_GAN_INIT_COUNT } ed_gan_init;
typedef enum { ED_GAN_OUT_AUTO, ED_GAN_OUT_SIGMOID, ED_GAN_OUT_TANH, ED_GAN_OUT_NONE, ED_GAN_OUT_COUNT } ed_gan_output;

typedef struct {
    int64_t data_dim;    /* D, set by the caller (not an option) */
    int64_t classes;     /* cgan: label classes, set by the caller; 0: unconditional */
    bool unit_range;     /* the data lie in [0, 1] (output = auto picks sigmoid), set by the caller */
    ed_gan_loss loss;    /* set by the family, not an option */
    int64_t latent;      /* [128] */
    ed_sizes gen_sizes;  /* [256,512] */
    ed_sizes disc_sizes; /* [512,256] */
    int activation;      /* an ed_activation, both networks [relu] */
    int output;          /* ed_gan_output [auto] */
    double dropout;      /* in D [gan -1: 0.3, conv 0; wgan_gp 0.3, on 2-D data 0] */
    double bn_momentum;  /* of the generator's batch norm [0.1] */
    int64_t n_critic;    /* disc steps per gen step [gan 1, wgan_gp 5] */
    double gp_lambda;    /* wgan_gp's penalty weight [10; on 2-D data 0.1] */
    double beta1, beta2; /* Adam, both steps [gan 0.5, 0.999; wgan_gp 0, 0.9] */
    int arch;            /* ed_gan_arch [mlp] */
    ed_sizes channels;   /* conv: D's channels, G's reversed [32,64] */
    int init;            /* ed_gan_init of the weights [glorot] */
    int64_t image[3];    /* conv: one sample as [C, H, W], set by the caller */
} ed_gan_opts;

#define ED_GAN_NOPTIONS 13
extern const ed_option ed_gan_options[ED_GAN_NOPTIONS];
#define ED_WGAN_GP_NOPTIONS 14
extern const ed_option ed_wgan_gp_options[ED_WGAN_GP_NOPTIONS];

/* The defaults of each family (data_dim, classes, unit_range 0). */
void ed_gan_defaults(ed_gan_opts *o);
void ed_wgan_gp_defaults(ed_gan_opts *o);

/* G(z): z [B, latent], labels i32 [B] (cgan) or NULL -> [B, D]. Params "gen.*". */
ed_node *ed_gan_generate(ed_node *z, ed_node *labels, const ed_gan_opts *o);
/* D's logits [B] of x [B, D] (with labels i32 [B] for cgan, else NULL). Params "disc.*". */
ed_node *ed_gan_discriminate(ed_node *x, ed_node *labels, const ed_gan_opts *o);

/* The steps' scalar losses on a real batch x [B, D] (labels as above); z is drawn in the
 * graph. The discriminator's step builds G too (its batch norm, in training mode, moves
 * the running statistics as PyTorch's G(z) does in that step). */
ed_node *ed_gan_disc_loss(ed_graph *g, ed_node *x, ed_node *labels, const ed_gan_opts *o);
ed_node *ed_gan_gen_loss(ed_graph *g, int64_t batch, ed_node *labels, const ed_gan_opts *o);
/* wgan_gp's penalty lambda-free: mean over i of (|d sum_j l(x^_j) / d x^_i|_2 - 1)^2. */
ed_node *ed_gan_gradient_penalty(ed_node *real, ed_node *fake, ed_node *labels, const ed_gan_opts *o);

/* n samples [n, D] of G in g (z drawn in the graph); labels i32 [n] for cgan. Build in
 * eval mode for the running statistics (ed_gen_model_sample does). The registered cgan
 * sampler, given no labels, draws class i mod classes for sample i: a grid of `classes`
 * columns shows one class per column. */
ed_node *ed_gan_sample(ed_graph *g, int64_t n, ed_node *labels, const ed_gan_opts *o);

#endif
