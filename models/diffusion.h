/* DDPM (Ho et al. 2020) with epsilon prediction: Edifice.Generative.Diffusion's model
 * and defaults (T = 100 steps, linear betas 1e-4..0.02, hidden 256, 4 pre-LayerNorm
 * residual MLP blocks), and the same denoiser trained with Edifice.Generative.DDIM's
 * defaults (T = 1000) for DDIM sampling.
 *
 * Timesteps t = 0..T-1, t = 0 the least noisy (beta[0] = beta_start); alpha_bar[t] =
 * prod_{s <= t} (1 - beta[s]). Training draws t uniformly per sample and eps ~ N(0, I),
 * forms x_t = sqrt(alpha_bar[t]) x0 + sqrt(1 - alpha_bar[t]) eps and regresses eps
 * (mean squared error). The network sees the integer timestep as a float (time_scale 1)
 * through the standard sinusoidal embedding; Edifice's increasing frequencies on t / T
 * are not copied. cond_dropout trains the null condition as in flow matching.
 *
 * The beta tables come from models/schedules.h (ed_diffusion_beta_opts maps the options).
 * A fresh ddpm run with --arch conv (the U-Net, models/unet.h) sets beta_start 1e-3 and
 * beta_end 0.2 when neither T nor the schedule was given (models/registry.c: ddpm_prepare).
 * signed_range is applied by the registry entries, not here: the loss takes x0 as given. */
#ifndef ED_DIFFUSION_H
#define ED_DIFFUSION_H

#include "models/denoiser.h"
#include "models/options.h"
#include "models/schedules.h"

typedef enum { ED_DIFF_BETA_LINEAR, ED_DIFF_BETA_COSINE, ED_DIFF_BETA_COUNT } ed_diff_beta;

typedef struct {
    ed_denoiser_opts net; /* hidden 256, layers 4, expansion 4, time_scale 1 */
    int64_t timesteps;    /* T [100; DDIM: 1000] */
    int beta_schedule;    /* ed_diff_beta [linear] */
    double beta_start;    /* linear [1e-4] */
    double beta_end;      /* linear [0.02] */
    double cond_dropout;  /* probability of the null condition in training [0] */
    int64_t signed_range; /* 1: [0, 1] images trained and sampled as [-1, 1]; -1: set at training [-1] */
    /* Sampling with DDIM (only in the "ddim" model's options). */
    int64_t ddim_steps; /* [50] */
    double eta;         /* [0: deterministic] */
    double clip_x0;     /* clamp the predicted x0 to [-c, c]; 0 = off; -1: set at training [-1] */
    double ema_decay;   /* EMA of the weights, sampled from (models/registry.h: ema_option) [0: off] */
} ed_diffusion_opts;

#define ED_DDPM_NOPTIONS 19
#define ED_DDIM_NOPTIONS 21
extern const ed_option ed_ddpm_options[ED_DDPM_NOPTIONS];
extern const ed_option ed_ddim_options[ED_DDIM_NOPTIONS];

void ed_ddpm_defaults(ed_diffusion_opts *o);
void ed_ddim_defaults(ed_diffusion_opts *o);

/* The schedule of o as models/schedules.h describes it (linear or cosine, T steps). */
ed_beta_opts ed_diffusion_beta_opts(const ed_diffusion_opts *o);
/* T betas into out (ed_betas of ed_diffusion_beta_opts). ED_ERR with a message if
 * T < 1 or a beta falls outside (0, 1). */
int ed_diffusion_betas(const ed_diffusion_opts *o, double *out);
/* T cumulative products alpha_bar[t] into out (computed in double). */
int ed_diffusion_alpha_bar(const ed_diffusion_opts *o, double *out);

/* The predicted noise at (x, t): t is the timestep [B] or [] (any dtype). Params "ddpm.*". */
ed_node *ed_diffusion_eps(ed_node *x, ed_node *t, ed_node *cond, ed_node *keep, const ed_diffusion_opts *o);

/* The training loss for data x0 [B, ...] and obs [B, O] (NULL when unconditional). */
ed_node *ed_diffusion_loss(ed_graph *g, ed_node *x0, ed_node *obs, const ed_diffusion_opts *o);
/* The same per sample [B] (its mean is the loss): a held-out figure. */
ed_node *ed_diffusion_sample_loss(ed_graph *g, ed_node *x0, ed_node *obs, const ed_diffusion_opts *o);

#endif
