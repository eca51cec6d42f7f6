/* Noise schedules and time grids (see schedules.h). Everything is double on the host;
 * graphs see tables rounded once to their dtype. */
#include "models/schedules.h"

#include "runtime/error.h"

#include <math.h>
#include <string.h>

#define PI 3.14159265358979323846

static const char *beta_names[ED_BETA_COUNT] = {"linear", "cosine", "sigmoid"};

const char *ed_beta_kind_name(ed_beta_kind k) { return (unsigned)k < ED_BETA_COUNT ? beta_names[k] : "?"; }

bool ed_beta_kind_parse(const char *s, ed_beta_kind *out)
{
    for (int k = 0; k < ED_BETA_COUNT; k++)
        if (s && strcmp(s, beta_names[k]) == 0) {
            *out = (ed_beta_kind)k;
            return true;
        }
    return false;
}

static double or_default(double v, double d) { return v != 0 ? v : d; }

int ed_beta_steps(const ed_beta_opts *o) { return o && o->steps ? o->steps : 1000; }

/* Nichol & Dhariwal's f(u) = cos^2(pi/2 (u + s) / (1 + s)). */
static double cosine_f(double u, double s)
{
    double c = cos(PI / 2 * (u + s) / (1 + s));
    return c * c;
}

int ed_betas(const ed_beta_opts *o, double *beta)
{
    ed_beta_opts d = o ? *o : (ed_beta_opts){0};
    int T = ed_beta_steps(&d);
    double b0 = or_default(d.beta_start, 1e-4), b1 = or_default(d.beta_end, 0.02);
    double s = or_default(d.cosine_s, 0.008), maxb = or_default(d.max_beta, 0.999);
    double r = or_default(d.sigmoid_range, 6);
    if (T < 1) return ed_fail("beta schedule: steps must be >= 1 (got %d)", T);
    if ((unsigned)d.kind >= ED_BETA_COUNT) return ed_fail("beta schedule: unknown kind %d", (int)d.kind);
    for (int t = 0; t < T; t++) {
        double u = T > 1 ? (double)t / (T - 1) : 0; /* 0..1 over the steps */
        switch (d.kind) {
        case ED_BETA_LINEAR: beta[t] = b0 + (b1 - b0) * u; break;
        case ED_BETA_COSINE: {
            double b = 1 - cosine_f((double)(t + 1) / T, s) / cosine_f((double)t / T, s);
            beta[t] = b < maxb ? b : maxb;
            break;
        }
        case ED_BETA_SIGMOID: beta[t] = b0 + (b1 - b0) / (1 + exp(-(-r + 2 * r * u))); break;
        default: break;
        }
        if (!(beta[t] > 0 && beta[t] < 1))
            return ed_fail("beta schedule %s: beta[%d] = %g is outside (0, 1)", beta_names[d.kind], t, beta[t]);
    }
    return ED_OK;
}

void ed_alphas(const double *beta, int n, double *alpha, double *alpha_bar)
{
    double prod = 1;
    for (int t = 0; t < n; t++) {
        prod *= 1 - beta[t];
        if (alpha) alpha[t] = 1 - beta[t];
        if (alpha_bar) alpha_bar[t] = prod;
    }
}

int ed_ve_sigmas(double sigma_min, double sigma_max, int n, double *sigma)
{
    if (n < 1) return ed_fail("VE sigmas: n must be >= 1 (got %d)", n);
    if (!(sigma_min > 0 && sigma_min <= sigma_max))
        return ed_fail("VE sigmas: need 0 < sigma_min <= sigma_max (got %g, %g)", sigma_min, sigma_max);
    double lr = log(sigma_max / sigma_min);
    for (int i = 0; i < n; i++) sigma[i] = n > 1 ? sigma_min * exp(lr * i / (n - 1)) : sigma_min;
    if (n > 1) sigma[n - 1] = sigma_max; /* exact end point */
    return ED_OK;
}

int ed_ddim_timesteps(int T, int S, ed_spacing spacing, int *tau)
{
    if (S < 1 || S > T) return ed_fail("DDIM timesteps: need 1 <= steps <= T (got %d of %d)", S, T);
    if ((unsigned)spacing >= ED_SPACING_COUNT) return ed_fail("DDIM timesteps: unknown spacing %d", (int)spacing);
    if (S == 1) {
        tau[0] = T - 1;
        return ED_OK;
    }
    for (int i = 0; i < S; i++) {
        double u = (double)i / (S - 1);
        if (spacing == ED_SPACING_QUADRATIC) u *= u;
        tau[i] = (int)lround(u * (T - 1));
        /* Strictly increasing; the bound T-1-(S-1-i) leaves room for the rest (it never
         * binds for these spacings, but keeps the contract whatever the rounding). */
        if (i > 0 && tau[i] <= tau[i - 1]) tau[i] = tau[i - 1] + 1;
        if (tau[i] > T - S + i) tau[i] = T - S + i;
    }
    return ED_OK;
}

int ed_time_grid(double t0, double t1, int n, double *t)
{
    if (n < 1) return ed_fail("time grid: need at least one step (got %d)", n);
    for (int i = 0; i <= n; i++) t[i] = t0 + (t1 - t0) * ((double)i / n);
    t[n] = t1;
    return ED_OK;
}

ed_level ed_process_level(const ed_process *p, double t)
{
    ed_process d = p ? *p : (ed_process){0};
    ed_level l = {.t = t};
    switch (d.kind) {
    case ED_PROC_VP: {
        double b0 = or_default(d.beta_min, 0.1), b1 = or_default(d.beta_max, 20);
        double beta = b0 + t * (b1 - b0);
        double lmc = -0.25 * t * t * (b1 - b0) - 0.5 * t * b0; /* log alpha(t) */
        l.alpha = exp(lmc);
        l.sigma = sqrt(-expm1(2 * lmc));
        l.dalpha = -0.5 * beta * l.alpha;
        l.dsigma = 0.5 * beta * l.alpha * l.alpha / l.sigma;
        l.f = -0.5 * beta;
        l.g2 = beta;
        l.v_a = -l.sigma;
        l.v_s = l.alpha;
        break;
    }
    case ED_PROC_VE: {
        double s0 = or_default(d.sigma_min, 0.01), s1 = or_default(d.sigma_max, 50);
        double lr = log(s1 / s0);
        l.alpha = 1;
        l.sigma = s0 * exp(lr * t);
        l.dalpha = 0;
        l.dsigma = l.sigma * lr;
        l.f = 0;
        l.g2 = 2 * l.sigma * l.sigma * lr;
        l.v_a = 0;
        l.v_s = 1;
        break;
    }
    case ED_PROC_FLOW: {
        double c = 1 - d.flow_sigma_min;
        l.alpha = t;
        l.sigma = 1 - c * t;
        l.dalpha = 1;
        l.dsigma = -c;
        l.v_a = 1;
        l.v_s = -c;
        break;
    }
    default: l.alpha = l.sigma = NAN; break;
    }
    return l;
}

ed_level ed_discrete_level(double t, double alpha_bar_t)
{
    ed_level l = {.t = t, .alpha = sqrt(alpha_bar_t), .sigma = sqrt(1 - alpha_bar_t)};
    l.v_a = -l.sigma;
    l.v_s = l.alpha;
    /* No continuous time: the ODE and SDE fields stay 0; discrete samplers do not use them. */
    return l;
}

ed_node *ed_table(ed_graph *g, ed_dtype dt, const double *v, int n)
{
    if (!g) return NULL;
    if (n < 1) return ed_graph_fail(g, "table: needs at least one value");
    /* n == 1 would be a splat of the same value: the same tensor. */
    return ed_const(g, dt, ed_shape1(n), v, n);
}

ed_node *ed_table_at(ed_node *table, ed_node *index) { return ed_gather(table, index, 0); }
