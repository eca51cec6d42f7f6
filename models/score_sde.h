/* Score-based generative modelling with SDEs (Song et al. 2021):
 * Edifice.Generative.ScoreSDE's model and defaults, with its sde_type really switching.
 *
 * Processes (models/schedules.h, ed_level; t = 0 data, t = 1 prior):
 *   vp  x_t = alpha x0 + sigma z, beta(t) = beta_min + t (beta_max - beta_min) [0.1, 20]
 *   ve  x_t = x0 + sigma z, sigma(t) = sigma_min (sigma_max / sigma_min)^t      [0.01, 50]
 *
 * The network predicts eps, so score = -eps_hat / sigma(t) (Song et al.'s own networks
 * divide by sigma the same way). Training is denoising score matching with
 * lambda(t) = sigma(t)^2, which is exactly the eps-matching loss:
 *   sigma^2 |s(x_t) + z / sigma|^2 = |eps_hat - z|^2,
 * averaged over the elements, with t ~ U(train_eps, 1) per sample (train_eps 1e-5 for
 * both processes, as Song et al.'s losses).
 *
 * The network is the shared denoiser (models/denoiser.h) on t in [0, 1] with Gaussian
 * Fourier features (the paper's random frequencies, scale 16; Edifice's are fixed and
 * log-spaced, not copied) or the sinusoidal embedding of t * time_scale. VE feeds it
 * x / sqrt(1 + sigma^2) (the marginal's scale for data of unit variance; VP's is 1
 * already), so its input stays O(1) up to sigma_max = 50.
 *
 * Pixel data (levels K > 0) are dequantised, v = (x (K - 1) + u) / K with u ~ U(0, 1),
 * for training and likelihood; samples map back to the pixel grid, clamped to [0, 1]. */
#ifndef ED_SCORE_SDE_H
#define ED_SCORE_SDE_H

#include "models/denoiser.h"
#include "models/options.h"
#include "models/samplers.h"
#include "models/sde_likelihood.h"

typedef enum { ED_SDE_VP, ED_SDE_VE, ED_SDE_COUNT } ed_sde_kind;
typedef enum { ED_SDE_SAMPLER_PC, ED_SDE_SAMPLER_EM, ED_SDE_SAMPLER_ODE, ED_SDE_SAMPLER_COUNT } ed_sde_sampler;

typedef struct {
    ed_denoiser_opts net;    /* hidden 256, layers 4 (2-D data: 64, 2), expansion 4; fourier, scale 16 */
    int sde;                 /* ed_sde_kind [vp] */
    double beta_min;         /* VP [0.1] */
    double beta_max;         /* VP [20] */
    double sigma_min;        /* VE [0.01] */
    double sigma_max;        /* VE [50] */
    double train_eps;        /* t ~ U(train_eps, 1) in training [1e-5] */
    int sampler;             /* ed_sde_sampler [pc] */
    int64_t sample_steps;    /* predictor steps, or PF-ODE steps [see the options table] */
    double sample_eps;       /* the samplers stop at t = sample_eps [1e-3] */
    double snr;              /* Langevin corrector's signal-to-noise ratio [0.16] */
    int64_t corrector_steps; /* Langevin steps per predictor step [1] */
    int ode_solver;          /* ed_ode_method of the ode sampler [rk4] */
    int64_t nll_steps;       /* RK4 steps of the likelihood's PF-ODE [see the table] */
    int probe;               /* ed_probe_kind of the Hutchinson estimator [rademacher] */
    int64_t levels;          /* pixel levels of the data (from the data, not an option) */
} ed_score_sde_opts;

#define ED_SCORE_SDE_NOPTIONS 21
extern const ed_option ed_score_sde_options[ED_SCORE_SDE_NOPTIONS];

void ed_score_sde_defaults(ed_score_sde_opts *o);

/* The process of o as models/schedules.h describes it. */
ed_process ed_score_sde_process(const ed_score_sde_opts *o);

/* The predicted noise at (x, t): x [B, ...], t [B] or [] in [0, 1]. Params "sde.*". */
ed_node *ed_score_sde_eps(ed_node *x, ed_node *t, const ed_score_sde_opts *o);

/* The training loss (a scalar) on data x [B, ...]; t, z and the dequantisation in the graph. */
ed_node *ed_score_sde_loss(ed_graph *g, ed_node *x, const ed_score_sde_opts *o);

/* n samples shaped like shape (axis 0 replaced by n) with sampler (NULL: o's), steps
 * (0: o's). NULL with the reason on g. */
ed_node *ed_score_sde_sample(ed_graph *g, int64_t n, ed_shape shape, const char *sampler, int64_t steps,
                             const ed_score_sde_opts *o);

/* log p(x) [B] in nats by the probability-flow ODE from t = train_eps to 1 and the
 * prior (models/sde_likelihood.h); pixel data dequantised and scored on their grid
 * (-D log K, so -log p is the dequantisation bound on the discrete NLL). */
ed_node *ed_score_sde_log_prob(ed_graph *g, ed_node *x, const ed_score_sde_opts *o);

#endif
