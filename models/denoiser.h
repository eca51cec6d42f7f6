/* The denoising network shared by the diffusion family and flow matching: the layout of
 * Edifice's Diffusion denoiser, with the standard time embedding.
 *
 *   x [B, ...] -> flatten [B, D]
 *   temb = sinusoidal(t * time_scale) [B, hidden], decreasing frequencies
 *          f_i = max_period^(-i / half) (ed_timestep_embedding; Edifice used increasing
 *          frequencies on t / T here, which we do not copy), or Gaussian Fourier
 *          features of t (ed_time_features)
 *   c    = dense(concat(obs * keep, keep)) [B, hidden] when the model is conditional
 *   h    = silu(dense(concat(x, temb, c), hidden))
 *   num_layers x pre-LayerNorm residual blocks: h += dense(silu(dense(LN(h), expansion *
 *          hidden)), hidden)
 *   out  = dense(h, D) reshaped to x's shape, its weight and bias starting at zero (so
 *          the first loss is the target's variance; Edifice's glorot start adds a random
 *          network's output of variance ~|h|^2 / hidden on top, a loss near 10 here)
 *
 * keep is the condition flag: 1 = the observation is given, 0 = the null condition
 * (classifier-free guidance trains it by dropping conditions; a sampler asks for the
 * unconditional output with cond = NULL). Carrying the flag as an input column keeps
 * the null condition distinct from a real all-zero observation.
 *
 * Parameters are named "<name>.in", "<name>.cond", "<name>.block<i>.{ln,fc1,fc2}",
 * "<name>.out" (each with .w/.b, LN with .g/.b). */
#ifndef ED_DENOISER_H
#define ED_DENOISER_H

#include "frontend/nn.h"
#include "models/options.h"

/* SINUSOIDAL: ed_timestep_embedding of t * time_scale. FOURIER: Gaussian random
 * features [sin(2 pi W t), cos(2 pi W t)] (Tancik et al.; Song et al.'s score networks),
 * W ~ N(0, fourier_scale^2) fixed at init: the state "<name>.fourier.w" [1, hidden / 2],
 * checkpointed, never trained. */
typedef enum { ED_TIME_SINUSOIDAL, ED_TIME_FOURIER, ED_TIME_FEATURES_COUNT } ed_time_features;

/* The network: the residual MLP above (the default everywhere) or the convolutional
 * U-Net of models/unet.h (image samples [C, H, W]). */
typedef enum { ED_ARCH_MLP, ED_ARCH_CONV, ED_ARCH_COUNT } ed_denoiser_arch;
extern const char *const ed_denoiser_arch_names[ED_ARCH_COUNT + 1];

/* The U-Net's own settings (arch conv); models/unet.h describes the network. */
typedef struct {
    int64_t channels;  /* base width C [16] */
    ed_sizes mults;    /* per resolution: its width is C * mult; levels = mults.n [1,2,2] */
    int64_t blocks;    /* residual blocks per resolution [1] */
    int64_t attention; /* 1: self-attention at the lowest resolution [0] */
    int64_t groups;    /* group norm groups [8] */
} ed_unet_opts;

typedef struct {
    int arch;             /* ed_denoiser_arch [mlp] */
    ed_unet_opts unet;    /* arch conv */
    int64_t hidden;       /* width [256] */
    int64_t layers;       /* residual blocks [4] */
    int64_t expansion;    /* inner width of a block = expansion * hidden [4] */
    double time_scale;    /* t is multiplied by this before the embedding */
    double max_period;    /* of the sinusoidal embedding [10000] */
    int64_t obs_size;     /* 0: unconditional; else the width of cond */
    int time_features;    /* ed_time_features [SINUSOIDAL] */
    double fourier_scale; /* FOURIER: std of the frequencies [16 in score_sde] */
} ed_denoiser_opts;

/* arch mlp: the network above; arch conv: ed_unet (models/unet.h), same arguments.
 * x: [B, ...] float; t: [B] or [] (broadcast over the batch), any dtype (cast to x's);
 * cond: [B, obs_size] or NULL (the null condition when obs_size > 0; must be NULL when
 * obs_size is 0); keep: [B, 1] of x's dtype or NULL (all ones). Returns x's shape, or
 * NULL with the reason on the graph. */
ed_node *ed_denoiser(ed_node *x, ed_node *t, ed_node *cond, ed_node *keep, const ed_denoiser_opts *o, const char *name);

#endif
