/* Noise schedules and time grids for the diffusion family, computed on the host in
 * double, plus helpers that put a table into a graph as a const so a sampler can
 * gather the value for its loop index.
 *
 * Index conventions: discrete schedules are indexed by timestep t = 0..T-1, where
 * t = 0 is the least noisy step (beta[0] = beta_start) and alpha_bar[t] = prod_{s<=t}
 * (1 - beta[s]). VE sigma tables ascend the same way (sigma[0] = sigma_min).
 * Continuous diffusion processes (VP, VE) use t in [0, 1] with t = 0 the data end and
 * integrate 1 -> 0; flow matching keeps its own convention (t = 0 noise, t = 1 data)
 * and integrates 0 -> 1. */
#ifndef ED_SCHEDULES_H
#define ED_SCHEDULES_H

#include "frontend/frontend.h"

/* ---- discrete beta schedules (DDPM / DDIM) ------------------------------------ */

typedef enum { ED_BETA_LINEAR, ED_BETA_COSINE, ED_BETA_SIGMOID, ED_BETA_COUNT } ed_beta_kind;

/* Zero fields take the defaults in brackets. */
typedef struct {
    ed_beta_kind kind;    /* [LINEAR] */
    int steps;            /* T [1000] */
    double beta_start;    /* LINEAR, SIGMOID: first beta [1e-4] */
    double beta_end;      /* LINEAR, SIGMOID: last beta [0.02] */
    double cosine_s;      /* COSINE: offset s of Nichol & Dhariwal [0.008] */
    double max_beta;      /* COSINE: betas are clipped to this [0.999] */
    double sigmoid_range; /* SIGMOID: betas follow sigmoid over [-r, r] [6] */
} ed_beta_opts;

const char *ed_beta_kind_name(ed_beta_kind k); /* "linear", "cosine", "sigmoid" */
bool ed_beta_kind_parse(const char *s, ed_beta_kind *out);

/* The resolved step count of o (o may be NULL: 1000). */
int ed_beta_steps(const ed_beta_opts *o);

/* Fill beta[0..T) for T = ed_beta_steps(o). o may be NULL (linear, 1000 steps).
 *   linear:  beta_t = beta_start + (beta_end - beta_start) t / (T - 1)
 *   cosine:  abar(u) = f(u) / f(0), f(u) = cos^2(pi/2 (u + s) / (1 + s)),
 *            beta_t = min(1 - abar((t + 1) / T) / abar(t / T), max_beta)
 *   sigmoid: beta_t = beta_start + (beta_end - beta_start) sigmoid(-r + 2 r t / (T - 1))
 * Returns ED_ERR (ed_last_error) on bad options: T < 1, betas outside (0, 1). */
int ed_betas(const ed_beta_opts *o, double *beta);

/* alpha[t] = 1 - beta[t], alpha_bar[t] = prod_{s<=t} alpha[s]. Either output may be NULL. */
void ed_alphas(const double *beta, int n, double *alpha, double *alpha_bar);

/* ---- VE sigmas --------------------------------------------------------------- */

/* Geometric sigma[i] = sigma_min (sigma_max / sigma_min)^(i / (n - 1)), i = 0..n-1
 * (ascending; n == 1 gives sigma_min). ED_ERR unless 0 < sigma_min <= sigma_max, n >= 1. */
int ed_ve_sigmas(double sigma_min, double sigma_max, int n, double *sigma);

/* ---- time grids -------------------------------------------------------------- */

typedef enum { ED_SPACING_UNIFORM, ED_SPACING_QUADRATIC, ED_SPACING_COUNT } ed_spacing;

/* A DDIM sub-sequence of S of the T timesteps, ascending, always from 0 to T-1:
 *   uniform:   tau_i = round(i (T - 1) / (S - 1))
 *   quadratic: tau_i = round((i / (S - 1))^2 (T - 1)), moved up where needed so the
 *              sequence is strictly increasing (dense near t = 0, as in the DDIM paper)
 * S == 1 gives {T - 1}. ED_ERR unless 1 <= S <= T. */
int ed_ddim_timesteps(int T, int S, ed_spacing spacing, int *tau);

/* n + 1 evenly spaced times from t0 to t1 inclusive (either direction: 0..1 for flow
 * matching, 1..eps for reverse SDEs). The last value is exactly t1. ED_ERR if n < 1. */
int ed_time_grid(double t0, double t1, int n, double *t);

/* ---- continuous processes x_t = alpha(t) x0 + sigma(t) eps ---------------------- */

typedef enum {
    ED_PROC_VP,   /* variance preserving SDE, beta(t) = beta_min + t (beta_max - beta_min) */
    ED_PROC_VE,   /* variance exploding SDE, sigma(t) = sigma_min (sigma_max / sigma_min)^t */
    ED_PROC_FLOW, /* flow matching: x_t = t data + (1 - (1 - sigma_min) t) noise, so
                   * alpha = t, sigma = 1 - (1 - sigma_min) t (x0 always names the data
                   * here); sigma_min = 0 is rectified flow */
    ED_PROC_COUNT
} ed_process_kind;

/* Zero fields take the defaults in brackets. */
typedef struct {
    ed_process_kind kind;  /* [VP] */
    double beta_min;       /* VP [0.1] */
    double beta_max;       /* VP [20] */
    double sigma_min;      /* VE [0.01] */
    double sigma_max;      /* VE [50] */
    double flow_sigma_min; /* FLOW: the noise left at t = 1 [0] */
} ed_process;

/* Everything a sampler needs at one time t, in double. */
typedef struct {
    double t;
    double alpha, sigma;   /* x_t = alpha x0 + sigma eps */
    double dalpha, dsigma; /* d alpha / dt, d sigma / dt: the probability-flow ODE is
                            * dx/dt = dalpha x0_hat + dsigma eps_hat */
    double f;              /* SDE drift dx = f x dt + g dw (VP: -beta/2; VE, FLOW: 0) */
    double g2;             /* g^2 (VP: beta(t); VE: d sigma^2 / dt; FLOW: 0, no SDE) */
    double v_a, v_s;       /* the velocity a model predicts is v = v_a x0 + v_s eps */
} ed_level;

/* The level of process p (NULL: VP defaults) at time t. Velocity conventions:
 * VP: v = alpha eps - sigma x0 (Salimans & Ho; the derivative along the angle
 * atan2(sigma, alpha)); VE: v = eps (d x / d sigma); FLOW: v = d x / dt = x0 - (1 - sigma_min) eps
 * (data minus noise). */
ed_level ed_process_level(const ed_process *p, double t);

/* The level of discrete VP step t given alpha_bar[t] (t is the model's time input):
 * alpha = sqrt(abar), sigma = sqrt(1 - abar), v = alpha eps - sigma x0. */
ed_level ed_discrete_level(double t, double alpha_bar_t);

/* ---- tables in graphs ----------------------------------------------------------- */

/* v[0..n) as a const [n] of dtype dt in g. */
ed_node *ed_table(ed_graph *g, ed_dtype dt, const double *v, int n);
/* table[index] as a scalar []: index is an i32 scalar node (e.g. a loop index).
 * Out-of-range indices clamp (gather's rule). */
ed_node *ed_table_at(ed_node *table, ed_node *index);

#endif
