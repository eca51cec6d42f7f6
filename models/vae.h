/* The variational autoencoder (Kingma & Welling 2014) and its beta-VAE weighting, with
 * Edifice.Generative.VAE's options and defaults: MLP encoder -> (mu, log_var) heads,
 * MLP decoder, z = mu + exp(log_var / 2) eps.
 *
 * Every figure is in nats per sample, summed (not averaged) over the data dimension D and
 * the latent: neg ELBO = -log p(x | z) + beta KL(q(z | x) || N(0, I)). Edifice mixes a
 * per-element mean with a per-sample sum; that is not copied. Likelihoods: Bernoulli on
 * logits (the default, for data in [0, 1], grey levels included) or Gaussian with a fixed
 * sigma (0.1: a tenth of the [0, 1] pixel range; sigma 1 would let the KL drown the
 * reconstruction). log_var is not clamped, as in Edifice.
 *
 * Params: "vae.enc.0", "vae.enc.1", ... (hidden layers), "vae.enc.mu", "vae.enc.log_var";
 * "vae.dec.0", ..., "vae.dec.<n>" (the last one linear, to D). Each has .w and .b.
 *
 * arch conv (images [C, H, W], flattened to D outside as for the MLP): the encoder is one
 * 4x4 stride-2 convolution per entry of channels (padding 1: each halves H and W; 28 ->
 * 14 -> 7 for 32,64), each followed by the activation, then the mu and log_var heads as
 * dense layers on the flattened features; the decoder mirrors it: a dense layer (with the
 * activation) to [channels[n-1], H / 2^n, W / 2^n], then 4x4 stride-2 transposed
 * convolutions back through the channels to C at H x W, the last one without activation.
 * The encoder and decoder widths play no part. Params: "vae.enc.conv0", "vae.enc.conv1",
 * ..., "vae.enc.mu", "vae.enc.log_var"; "vae.dec.fc", "vae.dec.up0", ..., "vae.dec.up<n-1>"
 * (the last one to C channels). */
#ifndef ED_VAE_H
#define ED_VAE_H

#include "frontend/nn.h"
#include "models/options.h"

typedef enum { ED_VAE_BERNOULLI, ED_VAE_GAUSSIAN, ED_VAE_LIKELIHOOD_COUNT } ed_vae_likelihood;
typedef enum { ED_VAE_MLP, ED_VAE_CONV, ED_VAE_ARCH_COUNT } ed_vae_arch;

typedef struct {
    int64_t latent;        /* [32] */
    ed_sizes encoder;      /* hidden widths [256,128] */
    ed_sizes decoder;      /* hidden widths [128,256] */
    int activation;        /* an ed_activation, after every hidden layer [relu] */
    double beta;           /* KL weight in the loss [1] */
    int likelihood;        /* ed_vae_likelihood [bernoulli] */
    double gaussian_sigma; /* fixed decoder std of the Gaussian likelihood [0.1] */
    int arch;              /* ed_vae_arch [mlp] */
    ed_sizes channels;     /* conv: channels of the stride-2 convolutions [32,64] */
    int64_t data_dim;      /* D, set by the caller (not an option) */
    int64_t image[3];      /* conv: one sample as [C, H, W], C H W = D; set by the caller */
} ed_vae_opts;

#define ED_VAE_NOPTIONS 9
extern const ed_option ed_vae_options[ED_VAE_NOPTIONS];

/* Every option at its default; data_dim 0. */
void ed_vae_defaults(ed_vae_opts *o);

/* ---- the networks (x, z and every result take x's or z's float dtype) ---------------- */

/* x [B, D] -> mu [B, latent]; *log_var gets [B, latent] (log_var may be NULL). */
ed_node *ed_vae_encode(ed_node *x, const ed_vae_opts *o, ed_node **log_var);
/* z [..., latent] -> [..., D]: logits (Bernoulli) or the mean (Gaussian). */
ed_node *ed_vae_decode(ed_node *z, const ed_vae_opts *o);
/* A decoder output as the mean in data space: sigmoid of the logits, or the mean itself. */
ed_node *ed_vae_mean(ed_node *out, const ed_vae_opts *o);

/* ---- the terms, per sample ------------------------------------------------------------ */

/* -log p(x | out) summed over the last axis, out [..., D] broadcasting against x [B, D].
 * Bernoulli: softplus(l) - x l (BCE with logits, stable, any x in [0, 1]); Gaussian:
 * (x - m)^2 / (2 sigma^2) + log sigma + log(2 pi) / 2 per element. */
ed_node *ed_vae_recon_nll(ed_node *x, ed_node *out, const ed_vae_opts *o);
/* KL(N(mu, exp(log_var)) || N(0, I)) = sum (mu^2 + exp(log_var) - 1 - log_var) / 2 over
 * the last axis. */
ed_node *ed_vae_kl(ed_node *mu, ed_node *log_var);

/* ---- training and eval ---------------------------------------------------------------- */

/* [B]: the negative ELBO with beta, one z per sample (analytic KL). */
ed_node *ed_vae_neg_elbo(ed_graph *g, ed_node *x, const ed_vae_opts *o);
/* The same with the noise given: eps [B, latent]. */
ed_node *ed_vae_neg_elbo_eps(ed_node *x, ed_node *eps, const ed_vae_opts *o);
/* The training loss: the batch mean of ed_vae_neg_elbo (a scalar). */
ed_node *ed_vae_loss(ed_graph *g, ed_node *x, const ed_vae_opts *o);

/* [B]: the importance-weighted bound on -log p(x) with k >= 1 samples per x (k = 100 for
 * eval): log k - logsumexp_k(log p(x | z_k) + log p(z_k) - log q(z_k | x)). beta plays no
 * part: this bounds the model's likelihood whatever it was trained with. Builds the
 * decoder on [k, B, latent], so memory grows with k B. */
ed_node *ed_vae_iwae(ed_graph *g, ed_node *x, int64_t k, const ed_vae_opts *o);
/* The same with the noise given: eps [k, B, latent]. */
ed_node *ed_vae_iwae_eps(ed_node *x, ed_node *eps, const ed_vae_opts *o);

/* ---- generation ----------------------------------------------------------------------- */

/* [n, D] f32: the decoder mean at z ~ N(0, I) (in [0, 1] for Bernoulli). */
ed_node *ed_vae_sample(ed_graph *g, int64_t n, const ed_vae_opts *o);
/* [B, D]: the decoder mean at z = mu(x). */
ed_node *ed_vae_reconstruct(ed_node *x, const ed_vae_opts *o);

#endif
