/* Latent diffusion (Rombach et al. 2022) over a frozen VAE: the denoiser of flow
 * matching (models/denoiser.h, velocity prediction on the linear path) trains on the
 * VAE encoder's latent means z = mu(x), multiplied by a scale factor so they have unit
 * variance; sampling integrates the ODE in latent space, divides by the scale and
 * decodes with the VAE's decoder (its mean: sigmoid of the logits for a Bernoulli VAE),
 * the whole chain one loop plus the decoder in one compiled call.
 *
 * The VAE is another run's checkpoint (`edifice train vae`), named by the option `vae`
 * and loaded as a frozen parameter group (ed_frozen_def, models/registry.h): its
 * tensors join the store under the scope "ae" ("ae.vae.enc.0.w", ...), no step trains
 * them, and every latent_diffusion checkpoint carries them, so it stands alone. The
 * VAE's architecture options are copied from its checkpoint into vae_latent,
 * vae_encoder, vae_decoder, vae_activation and vae_likelihood (values given for these
 * are replaced). The scale factor, option `scale`, is 1 / std of the latent means of
 * the training data (at most the first 10,000 rows, over every latent element), computed
 * when a fresh run starts unless given; checkpoints keep it.
 *
 * Class labels, when the data have them, condition the denoiser as a one-hot
 * observation with classifier-free guidance (cond_dropout 0.1 by default, as dit);
 * `sample --label K --guidance S` as for dit. Params of the denoiser: "fm.*". */
#ifndef ED_LATENT_DIFFUSION_H
#define ED_LATENT_DIFFUSION_H

#include "models/flow_matching.h"
#include "models/vae.h"

typedef struct {
    ed_fm_opts fm;   /* the latent denoiser: hidden 256, layers 4, ... as flow_matching */
    ed_vae_opts vae; /* the frozen VAE's networks, from its checkpoint */
    ed_path vae_path;
    double scale; /* latent scale factor [0: computed from the data at the start] */
} ed_latent_opts;

#define ED_LATENT_NOPTIONS 16
extern const ed_option ed_latent_options[ED_LATENT_NOPTIONS];

/* The name scope of the frozen VAE's tensors. */
#define ED_LATENT_VAE_SCOPE "ae"

/* The latent means scaled, z = scale * mu(x) [B, latent], for x [B, D] in [0, 1];
 * builds the encoder in the "ae" scope. */
ed_node *ed_latent_encode(ed_node *x, const ed_latent_opts *o);
/* Pixels [..., D] (the decoder's mean) of scaled latents z [..., latent]. */
ed_node *ed_latent_decode(ed_node *z, const ed_latent_opts *o);

#endif
