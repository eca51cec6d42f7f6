/* Latent diffusion (Rombach et al. 2022) over a frozen VAE: a denoiser trains on the VAE
 * encoder's latent means z = mu(x), multiplied by a scale factor so they have unit
 * variance; sampling runs the sampler in latent space, divides by the scale and decodes
 * with the VAE's decoder (its mean: sigmoid of the logits for a Bernoulli VAE), the
 * whole chain one loop plus the decoder in one compiled call.
 *
 * The denoiser (option `denoiser`): mlp, flow matching's residual MLP (models/denoiser.h,
 * params "fm.*", or "ddpm.*" under the diffusion objective), or dit, the DiT of
 * models/dit.h on the latent vector cut into latent / latent_patch tokens of latent_patch
 * consecutive values with 1-D sin-cos positions (a VAE latent has no 2-D layout; params
 * "dit.*"); hidden, layers and expansion are its width, depth and MLP ratio. The
 * objective (option `objective`): flow_matching, velocity on the linear path, sampled by
 * the ODE solvers; or diffusion, epsilon on the DDPM process (1000 linear betas), sampled
 * with ddpm or ddim (clip_x0 off: the latents are not bounded). An option of another
 * denoiser or objective (--heads with the MLP, --ddim_steps with flow matching, ...)
 * given for a fresh run is an error, not a silent no-op.
 *
 * The VAE is another run's checkpoint (`edifice train vae`), named by the option `vae`
 * and loaded as a frozen parameter group (ed_frozen_def, models/registry.h): its
 * tensors join the store under the scope "ae" ("ae.vae.enc.0.w", ...), no step trains
 * them, and every latent_diffusion checkpoint carries them, so it stands alone. The
 * VAE's architecture options are copied from its checkpoint into vae_latent,
 * vae_encoder, vae_decoder, vae_activation, vae_likelihood, vae_arch and vae_channels
 * (an MLP or a convolutional VAE: the latent is a vector either way); a value given for one of
 * them must equal the checkpoint's (else an error naming both). The scale factor,
 * option `scale`, is 1 / std of the latent means of the training data (at most the first
 * 10,000 rows, over every latent element), computed when a fresh run starts unless
 * given; checkpoints keep it.
 *
 * Class labels, when the data have them, condition the denoiser (the MLP: a one-hot
 * observation; DiT: its label table with the null class) with classifier-free guidance
 * (cond_dropout 0.1 by default, as dit); `sample --label K --guidance S` as for dit. */
#ifndef ED_LATENT_DIFFUSION_H
#define ED_LATENT_DIFFUSION_H

#include "models/diffusion.h"
#include "models/flow_matching.h"
#include "models/vae.h"

typedef enum { ED_LATENT_MLP, ED_LATENT_DIT, ED_LATENT_DENOISER_COUNT } ed_latent_denoiser;

typedef struct {
    ed_fm_opts fm; /* the MLP denoiser (hidden 256, layers 4, ...) and flow matching's settings */
    /* The diffusion objective's process and sampler (its net: fm.net, t unscaled). */
    ed_diffusion_opts diffusion;
    ed_vae_opts vae; /* the frozen VAE's networks, from its checkpoint */
    ed_path vae_path;
    double scale;         /* latent scale factor [0: computed from the data at the start] */
    int denoiser;         /* ed_latent_denoiser [mlp] */
    int objective;        /* ed_dit_objective [flow_matching] */
    int64_t heads;        /* dit: attention heads [4] */
    int64_t latent_patch; /* dit: latent values per token [2] */
} ed_latent_opts;

#define ED_LATENT_NOPTIONS 29
extern const ed_option ed_latent_options[ED_LATENT_NOPTIONS];

/* The name scope of the frozen VAE's tensors. */
#define ED_LATENT_VAE_SCOPE "ae"

/* The latent means scaled, z = scale * mu(x) [B, latent], for x [B, D] in [0, 1];
 * builds the encoder in the "ae" scope. */
ed_node *ed_latent_encode(ed_node *x, const ed_latent_opts *o);
/* Pixels [..., D] (the decoder's mean) of scaled latents z [..., latent]. */
ed_node *ed_latent_decode(ed_node *z, const ed_latent_opts *o);

#endif
