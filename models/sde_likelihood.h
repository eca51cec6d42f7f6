/* Log-likelihood through the probability-flow ODE of a VP or VE process (Song et al.
 * 2021, appendix D): dx/dt = f(x, t) = p(t) x + q(t) eps_hat(x, t), with
 * p = alpha' / alpha and q = sigma' - alpha' sigma / alpha (f x - g^2 score / 2 written
 * with score = -eps_hat / sigma), integrated from the data at t = t_eps to t = 1, and
 *   log p_{t_eps}(x) = log p_prior(x(1)) + integral_{t_eps}^{1} div f(x(t), t) dt.
 * The divergence is Hutchinson's estimate div f ~ p D + q v . d(v . eps_hat)/dx, one
 * vector-Jacobian product per model call (ed_grad inside the loop body), with one probe
 * v per sample held fixed along the path (FFJORD's choice: an unbiased estimate of the
 * integral). Rademacher probes give the trace exactly when the Jacobian is diagonal.
 *
 * The whole integration is one loop node carrying (x, integral); the prior is VP's
 * N(0, I) or VE's N(0, sigma_max^2 I), as the samplers draw. */
#ifndef ED_SDE_LIKELIHOOD_H
#define ED_SDE_LIKELIHOOD_H

#include "models/samplers.h"

typedef enum { ED_PROBE_RADEMACHER, ED_PROBE_GAUSSIAN, ED_PROBE_COUNT } ed_probe_kind;

/* Zero fields take the defaults in brackets. */
typedef struct {
    ed_process process;   /* VP or VE [VP 0.1..20] */
    ed_ode_method method; /* [EULER]; RK4 is what the score_sde model uses */
    int steps;            /* uniform steps from t_eps to 1 [100] */
    double t_eps;         /* [1e-5] */
    ed_probe_kind probe;  /* [RADEMACHER] */
} ed_pf_nll_opts;

/* log p(x) [B] (nats) of x [B, ...] under the model m, which must predict eps. The
 * probes are drawn in g. NULL with the reason on g. */
ed_node *ed_pf_log_prob(ed_graph *g, const ed_model *m, ed_node *x, const ed_pf_nll_opts *o);

#endif
