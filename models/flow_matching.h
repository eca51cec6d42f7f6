/* Conditional flow matching (Lipman et al. 2023) with the linear (optimal-transport)
 * path, velocity prediction: Edifice.Generative.FlowMatching's model and defaults.
 *
 * Convention (Edifice's): t = 0 is noise, t = 1 is data. With x0 ~ N(0, I) and x1 a
 * data sample, x_t = (1 - (1 - sigma_min) t) x0 + t x1 and the regression target is
 * u = x1 - (1 - sigma_min) x0; t ~ U(0, 1) per sample; the loss is the mean squared
 * error of the predicted velocity. sigma_min = 0 (the default, as Edifice) is the
 * rectified-flow path.
 *
 * Conditional data (observation -> action chunk) trains classifier-free guidance when
 * cond_dropout > 0: each sample's observation is replaced by the null condition with
 * that probability (Edifice has no dropout and guides with zero observations; its
 * default guidance scale 1 means no guidance, so the default dropout here is 0).
 *
 * Differences from Edifice on purpose: the network is the shared pre-LN denoiser
 * (models/denoiser.h) rather than Edifice's unnormalized sum-of-embeddings MLP, and t is
 * scaled by time_scale (1000) before the standard sinusoidal embedding, because raw
 * t in [0, 1] puts every angle below 1 radian. */
#ifndef ED_FLOW_MATCHING_H
#define ED_FLOW_MATCHING_H

#include "models/denoiser.h"
#include "models/options.h"

typedef enum { ED_FM_EULER, ED_FM_MIDPOINT, ED_FM_HEUN, ED_FM_RK4, ED_FM_SOLVER_COUNT } ed_fm_solver;

typedef struct {
    ed_denoiser_opts net;  /* hidden 256, layers 4, expansion 4, time_scale 1000 */
    double sigma_min;      /* [0] */
    double cond_dropout;   /* probability of the null condition in training [0] */
    int solver;            /* ed_fm_solver, for sampling [euler] */
    int64_t sample_steps;  /* ODE steps [20] */
    double guidance_scale; /* v_null + s (v_cond - v_null) when sampling [1: none] */
    int64_t signed_range;  /* 1: [0, 1] images trained and sampled as [-1, 1]; -1: set at training [-1] */
    double ema_decay;      /* EMA of the weights, sampled from (models/registry.h: ema_option) [0: off] */
} ed_fm_opts;

/* The table's length is checked against this by the compiler (the definition is
 * unsized, so a different count is a conflicting declaration). */
#define ED_FM_NOPTIONS 18
extern const ed_option ed_fm_options[ED_FM_NOPTIONS];

/* Every option at its default; net.obs_size 0. */
void ed_fm_defaults(ed_fm_opts *o);

/* The predicted velocity at (x, t) under cond (NULL: the null condition), keep [B, 1]
 * or NULL as in ed_denoiser. Params "fm.*". */
ed_node *ed_fm_velocity(ed_node *x, ed_node *t, ed_node *cond, ed_node *keep, const ed_fm_opts *o);

/* The training loss (a scalar) for data x1 [B, ...] and observations obs [B, O] (NULL
 * when o->net.obs_size is 0). Draws t, the noise and the dropout mask in the graph. */
ed_node *ed_fm_loss(ed_graph *g, ed_node *x1, ed_node *obs, const ed_fm_opts *o);
/* The same per sample [B] (its mean is the loss): a held-out figure. */
ed_node *ed_fm_sample_loss(ed_graph *g, ed_node *x1, ed_node *obs, const ed_fm_opts *o);

#endif
