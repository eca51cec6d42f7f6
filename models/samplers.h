/* Samplers of the diffusion family, each built as one `loop` node around a denoiser.
 *
 * The denoiser is a graph-building callback: the sampler calls it inside the loop body
 * (once per model evaluation of a step) with the current x and the noise level, and it
 * returns the model's output in the parameterization named by ed_model.pred. It builds
 * into `body` and brings outer nodes (e.g. parameters) in with ed_loop_capture(loop, n).
 *
 * Every sampler works with the pair (x0_hat, eps_hat) under x = alpha x0 + sigma eps;
 * converting a model output to that pair happens in one place (samplers.c,
 * pred_coefficients), in double on the host: per step the coefficients of
 * x0_hat = c1 x + c2 out and eps_hat = c3 x + c4 out are tables gathered by the loop
 * index. A parameterization that is singular somewhere on the grid (x0 or score at
 * sigma = 0, eps at alpha = 0) is an error naming the step, not a NaN.
 *
 * The initial noise is drawn in the outer graph (or given as spec->x_init); noise of
 * each step is drawn inside the body, so it differs per iteration and per call.
 * On error the result's samples are NULL and the reason is the graph's sticky error. */
#ifndef ED_SAMPLERS_H
#define ED_SAMPLERS_H

#include "frontend/loop.h"
#include "models/schedules.h"

typedef enum {
    ED_PRED_EPS,      /* the noise eps */
    ED_PRED_X0,       /* the clean sample */
    ED_PRED_VELOCITY, /* v = v_a x0 + v_s eps (ed_level: VP and DDPM/DDIM alpha eps - sigma
                       * x0; flow matching data - noise; VE eps) */
    ED_PRED_SCORE,    /* grad log p_t(x) = -eps / sigma */
    ED_PRED_COUNT
} ed_pred;

const char *ed_pred_name(ed_pred p); /* "eps", "x0", "velocity", "score" */
bool ed_pred_parse(const char *s, ed_pred *out);

/* What the denoiser gets besides x. All nodes are scalars [] of x's dtype in body. */
typedef struct {
    ed_loop_builder *loop; /* to capture outer nodes: ed_loop_capture(loop, node) */
    ed_node *t;            /* the model's time input: the integer timestep (DDPM, DDIM), t in
                        * [0, 1] (VP, VE, flow matching), sigma (consistency) */
    ed_node *alpha;        /* x = alpha x0 + sigma eps at this t */
    ed_node *sigma;
} ed_denoise_in;

typedef ed_node *(*ed_denoise_fn)(ed_graph *body, ed_node *x, const ed_denoise_in *in, void *ctx);

typedef struct {
    ed_denoise_fn fn;
    void *ctx;
    ed_pred pred; /* what fn returns [EPS] */
} ed_model;

/* What to sample. Zero fields take the defaults in brackets. */
typedef struct {
    ed_shape shape;  /* the batch, e.g. [10000, 2]; axis 0 is the sample index */
    ed_dtype dtype;  /* [f32] */
    ed_node *x_init; /* starting x in the outer graph (already at the prior's scale);
                        * [NULL: drawn from the sampler's prior] */
    bool trajectory; /* also return x after every loop iteration, [steps, shape...] */
} ed_sample_spec;

typedef struct {
    ed_node *samples;    /* in the outer graph; NULL on error */
    ed_node *trajectory; /* [iterations, shape...] when spec->trajectory, else NULL */
    ed_node *loop;       /* the loop node itself */
    int iterations;      /* trip count of the loop */
} ed_sample_result;

/* ---- DDPM ancestral ------------------------------------------------------------- */

typedef struct {
    ed_beta_opts beta;       /* [linear 1e-4..0.02, T = 1000] */
    bool posterior_variance; /* noise variance beta~_t = (1 - abar_{t-1}) / (1 - abar_t) beta_t
                              * instead of beta_t [false: beta_t] */
    bool clip_x0;            /* clamp x0_hat to [-clip, clip] [false] */
    double clip;             /* [1] */
} ed_ddpm_opts;

/* x_T ~ N(0, I); for t = T-1..0: x <- posterior mean given x0_hat, plus noise for t > 0.
 * T iterations; the model's t is the integer timestep. */
ed_sample_result ed_sample_ddpm(ed_graph *g, const ed_model *m, const ed_sample_spec *spec, const ed_ddpm_opts *o);

/* ---- DDIM ----------------------------------------------------------------------- */

typedef struct {
    ed_beta_opts beta;    /* [linear 1e-4..0.02, T = 1000] */
    int steps;            /* S [50] */
    ed_spacing spacing;   /* [uniform] */
    const int *timesteps; /* a custom ascending sub-sequence of 0..T-1, length steps
                            * [NULL: ed_ddim_timesteps(T, S, spacing)] */
    double eta;           /* 0 deterministic, 1 DDPM-like [0] */
    bool clip_x0;         /* [false] */
    double clip;          /* [1] */
} ed_ddim_opts;

/* x <- sqrt(abar_prev) x0_hat + sqrt(1 - abar_prev - s^2) eps_hat + s z with
 * s = eta sqrt((1 - abar_prev) / (1 - abar_t)) sqrt(1 - abar_t / abar_prev), going down
 * the sub-sequence (abar_prev = 1 after its first element). S iterations. */
ed_sample_result ed_sample_ddim(ed_graph *g, const ed_model *m, const ed_sample_spec *spec, const ed_ddim_opts *o);

/* ---- ODE integrators: flow matching and probability-flow ODEs -------------------- */

typedef enum { ED_ODE_EULER, ED_ODE_HEUN, ED_ODE_MIDPOINT, ED_ODE_RK4, ED_ODE_COUNT } ed_ode_method;

const char *ed_ode_method_name(ed_ode_method k); /* "euler", "heun", "midpoint", "rk4" */
bool ed_ode_method_parse(const char *s, ed_ode_method *out);

typedef struct {
    ed_process process;   /* [VP 0.1..20]; FLOW for flow matching */
    ed_ode_method method; /* [EULER] (model calls per step: 1, 2, 2, 4) */
    int steps;            /* [50] */
    double t_eps;         /* VP, VE end time [1e-3] */
    const double *times;  /* a custom grid of steps + 1 times [NULL: flow 0 -> 1, VP and VE
                           * 1 -> t_eps, uniform] */
} ed_ode_opts;

/* dx/dt = dalpha x0_hat + dsigma eps_hat (ed_level), from the prior at the grid's start
 * (flow: N(0, I); VP: N(0, I); VE: N(0, sigma_max^2 I)). steps iterations. */
ed_sample_result ed_sample_ode(ed_graph *g, const ed_model *m, const ed_sample_spec *spec, const ed_ode_opts *o);

/* ---- reverse SDEs: Euler-Maruyama and predictor-corrector --------------------------- */

typedef struct {
    ed_process process; /* VP or VE [VP 0.1..20] */
    int steps;          /* [1000] */
    double t_eps;       /* end time [1e-3] */
    bool final_noise;   /* add noise on the last step too [false: the last step returns the
                         * drift mean, Song et al.'s noise removal] */
} ed_sde_opts;

/* dx = (f x - g^2 score) dt + g dw_bar from t = 1 to t_eps on a uniform grid. */
ed_sample_result ed_sample_euler_maruyama(ed_graph *g, const ed_model *m, const ed_sample_spec *spec,
                                          const ed_sde_opts *o);

typedef struct {
    ed_sde_opts sde;     /* the predictor (Euler-Maruyama) [as ed_sde_opts] */
    int corrector_steps; /* Langevin steps before each predictor step [1] */
    double snr;          /* signal-to-noise ratio of the corrector [0.16] */
} ed_pc_opts;

/* Per time step: corrector_steps Langevin steps at t, x <- x + e score + sqrt(2 e) z with
 * e = 2 a (snr |z| / |score|)^2 (norms per sample, averaged over the batch; a = 1 - g^2 dt
 * for VP, 1 for VE), then one Euler-Maruyama step. */
ed_sample_result ed_sample_pc(ed_graph *g, const ed_model *m, const ed_sample_spec *spec, const ed_pc_opts *o);

/* ---- consistency models ------------------------------------------------------------- */

typedef struct {
    int steps;            /* [1: one step] */
    const double *sigmas; /* descending, sigmas[0] = the start [NULL: {sigma_max} for one step,
                           * {80, 0.661} for two (Song et al. 2023); more steps need sigmas] */
    double sigma_max;     /* [80] */
    double sigma_min;     /* [0.002] */
} ed_consistency_opts;

/* x = sigmas[0] z; x0 = f(x, sigmas[0]); then for each further sigma:
 * x = x0 + sqrt(sigma^2 - sigma_min^2) z, x0 = f(x, sigma). The model is the consistency
 * function (x0 prediction; any pred converts with alpha = 1, sigma = t). steps iterations. */
ed_sample_result ed_sample_consistency(ed_graph *g, const ed_model *m, const ed_sample_spec *spec,
                                       const ed_consistency_opts *o);

#endif
