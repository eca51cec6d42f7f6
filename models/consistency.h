/* Consistency models (Song et al. 2023), trained by consistency training (CT):
 * Edifice.Generative.ConsistencyModel's model and defaults.
 *
 * The consistency function on the VE process x = x0 + sigma z, sigma in [sigma_min,
 * sigma_max] (0.002, 80; Karras grid with rho 7, sigma_data 0.5):
 *   f(x, s) = c_skip(s) x + c_out(s) F(c_in(s) x, log(s) / 4)
 *   c_skip = sd^2 / ((s - smin)^2 + sd^2), c_out = sd (s - smin) / sqrt(sd^2 + s^2),
 *   c_in = 1 / sqrt(s^2 + sd^2)
 * so f(x, sigma_min) = x exactly whatever F's weights (c_skip = 1, c_out = 0 in float).
 * F is the shared denoiser (models/denoiser.h) on the time input log(s) / 4, scaled by
 * time_scale (10: at 1000 the fastest features alias between grid levels, bench/HISTORY.md)
 * into its sinusoidal embedding. Params "cm.*". On 2-D data: hidden 64, 2 blocks.
 *
 * CT (Song et al. 2023, Algorithm 3 with their schedules): at step k (the first training
 * step's counter opt.step, in the graph) the grid has N(k) points
 *   N(k) = ceil(sqrt(k / K ((s1 + 1)^2 - s0^2) + s0^2) - 1) + 1,  K = schedule_steps
 * (0 by default: the trainer sets it to the run's planned steps),
 * (s0 2, s1 50 (Song et al.: 150, slower to train here); N stays at s1 + 1 after K), the
 * ascending Karras grid
 *   sigma_i = (smin^(1/rho) + i / (N - 1) (smax^(1/rho) - smin^(1/rho)))^rho, i < N.
 * Per sample: n drawn by iCT's lognormal (the default) or ~ U{0..N-2}, one z, the pair x + sigma_{n+1} z and x + sigma_n z; the
 * loss is lambda d(f_theta(x + sigma_{n+1} z), f_target(x + sigma_n z)) averaged over the
 * batch, lambda = 1 / (sigma_{n+1} - sigma_n) (iCT's, the default) or 1,
 * d = pseudo-Huber sqrt(|a - b|^2 + c^2) - c with c = 0.00054 sqrt(dim) (per sample), or
 * l2: the mean squared error over the elements.
 *
 * The target network is the same network over the state group "cm_ema.*", an EMA of
 * the online params written by the step's own update (ed_cm_target_update, after the
 * optimizer): target = mu(k) target + (1 - mu(k)) theta_new, mu(k) = exp(s0 log mu0 /
 * N(k)) (mu0 0, iCT's: the online params; Song et al.'s 0.9); at step 0 the target is the online params themselves (Song's
 * theta^- = theta at init), read through where(opt.step == 0, theta, state). The number
 * tables (N(k), mu(k), every grid's sigmas) are computed on the host in double and
 * gathered in the graph.
 *
 * Consistency distillation (CD, Song et al. 2023, Algorithm 2) with --teacher CKPT, a
 * trained flow_matching checkpoint loaded as the frozen group "teacher.*" (its options
 * copied into teacher_*): by default on a fixed grid of cd_grid (18) points from step 0
 * with the EMA rate cd_mu (0.95), Song et al.'s (cd_grid 0: CT's growing grid), the level
 * draw, target and distance as CT, but the pair is x_{n+1} = x + sigma_{n+1} z and x_n one step (Euler or Heun) of the teacher's
 * probability-flow ODE from sigma_{n+1} down to sigma_n. Flow matching's path is
 * x_t = t x1 + (1 - c t) x0 (c = 1 - its sigma_min, t = 1 data), so x_sigma = x_t / t
 * with sigma = 1 / t - c, and dx_sigma / dsigma = x0_hat = x_t - t v (see teacher_slope).
 *
 * Sampling: ed_sample_consistency (models/samplers.h) in one compiled call with the
 * online params; steps K: the first K points of the descending Karras grid of K + 1
 * points from sigma_max to sigma_min (K = 1: sigma_max alone), on CD's fixed grid the
 * nearest of its points instead (the levels it was trained at). Pixels in [0, 1] are
 * scaled to [-1, 1] for the model and back, clamped, after sampling. */
#ifndef ED_CONSISTENCY_H
#define ED_CONSISTENCY_H

#include "models/denoiser.h"
#include "models/flow_matching.h"
#include "models/options.h"

typedef enum { ED_CM_LOSS_PSEUDO_HUBER, ED_CM_LOSS_L2, ED_CM_LOSS_COUNT } ed_cm_distance;
/* n ~ U{0..N-2}, or iCT's discretized lognormal: p(n) proportional to
 * erf((log sigma_{n+1} - P_mean) / (sqrt 2 P_std)) - erf((log sigma_n - P_mean) / (sqrt 2 P_std)),
 * P_mean -1.1, P_std 2 (Song and Dhariwal 2023). */
typedef enum { ED_CM_NOISE_UNIFORM, ED_CM_NOISE_LOGNORMAL, ED_CM_NOISE_COUNT } ed_cm_noise;
/* lambda = 1, or iCT's 1 / (sigma_{n+1} - sigma_n). */
typedef enum { ED_CM_WEIGHT_UNIFORM, ED_CM_WEIGHT_INVERSE, ED_CM_WEIGHT_COUNT } ed_cm_weighting;

/* The teacher's ODE step in distillation. */
typedef enum { ED_CM_TEACHER_EULER, ED_CM_TEACHER_HEUN, ED_CM_TEACHER_COUNT } ed_cm_teacher_solver;

typedef struct {
    ed_denoiser_opts net;   /* hidden 256, layers 4, expansion 4, time_scale 1000 */
    double sigma_min;       /* [0.002] */
    double sigma_max;       /* [80] */
    double rho;             /* [7] */
    double sigma_data;      /* [0.5] */
    int64_t s0, s1;         /* grid points at the start and (s1 + 1) at the end of the schedule [2, 50] */
    int64_t schedule_steps; /* K: the steps over which N grows [0: the run's steps, set by the trainer] */
    double mu0;             /* the target's EMA rate at N = s0 [0.9] */
    int loss;               /* ed_cm_distance [pseudo_huber] */
    int noise;              /* ed_cm_noise: how n is drawn [uniform] */
    int weighting;          /* ed_cm_weighting: lambda(sigma_n) [uniform] */
    int64_t sample_steps;   /* [1] */
    ed_path teacher;        /* CD: a flow_matching checkpoint ("": consistency training) */
    int64_t cd_grid;        /* CD: a fixed grid of this many points [18]; 0: s0, s1, mu0 as CT */
    double cd_mu;           /* CD: the EMA rate on the fixed grid [0.95] */
    int teacher_solver;     /* ed_cm_teacher_solver [heun] */
    ed_fm_opts teacher_fm;  /* the teacher's settings (from --teacher; net, sigma_min) */
    bool unit_range;        /* the data lie in [0, 1] (from the data, not an option) */
} ed_cm_opts;

#define ED_CM_NOPTIONS 27
extern const ed_option ed_cm_options[ED_CM_NOPTIONS];

void ed_cm_defaults(ed_cm_opts *o);

/* Karras grid point i of n ascending (i = 0: sigma_min, i = n - 1: sigma_max, both exact). */
double ed_cm_karras_sigma(const ed_cm_opts *o, int64_t i, int64_t n);
/* CD on its fixed grid (a teacher and cd_grid > 0): N(k) = cd_grid, mu(k) = cd_mu. */
bool ed_cm_fixed_grid(const ed_cm_opts *o);
/* The schedule at step k: grid points N(k) and the target's EMA rate mu(k) (with
 * schedule_steps 0, not yet the run's, the schedule's end). */
int64_t ed_cm_grid_size(const ed_cm_opts *o, int64_t k);
double ed_cm_ema_rate(const ed_cm_opts *o, int64_t k);

/* f(x, sigma): x [B, ...] float, sigma [B] or [] (any float dtype, cast to x's).
 * name: the network's param prefix ("cm" online). */
ed_node *ed_cm_function(ed_node *x, ed_node *sigma, const ed_cm_opts *o, const char *name);

/* The CT loss, or CD's when o->teacher is set (the teacher's params "teacher.*" must be
 * in the store), a scalar, on data x [B, ...] (the data's scale, see above); n, z in
 * the graph; builds the target network over the state "cm_ema.*". */
ed_node *ed_cm_loss(ed_graph *g, ed_node *x, const ed_cm_opts *o);

/* The slope dx/dsigma of the teacher's probability-flow ODE at (x, sigma [B]) in the
 * model's scale (CD; exposed for tests). */
ed_node *ed_cm_teacher_slope(ed_node *x, ed_node *sigma, const ed_cm_opts *o);

/* After the optimizer has bound its updates (ed_train_step): bind the target's EMA
 * update from the online params' new values. ED_OK, or ED_ERR with the reason on g. */
int ed_cm_target_update(ed_graph *g, const ed_cm_opts *o);

/* n samples shaped like shape (axis 0 replaced by n) in steps steps (0: o's). */
ed_node *ed_cm_sample(ed_graph *g, int64_t n, ed_shape shape, int64_t steps, const ed_cm_opts *o);

#endif
