/* Samplers against closed forms. The data is N(m, s^2) per dimension, 2-D with
 * m = (1, -2), s = (0.5, 2). For x = alpha x0 + sigma eps the optimal predictors are
 * analytic: with V = alpha^2 s^2 + sigma^2 and r = x - alpha m,
 *   eps = sigma r / V,  x0 = m + alpha s^2 r / V,  score = -r / V,  v = v_a x0 + v_s eps,
 * and the consistency function (the probability-flow map to the data, VE in sigma) is
 * f(x, sigma) = m + s (x - m) / sqrt(s^2 + sigma^2). The test denoisers build these from
 * graph ops, computing alpha and sigma from the time input t as a network would see it.
 *
 * Tolerances. Each sampler draws N = 10,000 samples. Two checks per dimension:
 * 1. Against the exact moments of the discretized sampler (scripts/sampler_moments.py:
 *    with Gaussian data every step is affine plus Gaussian noise, so the mean and
 *    variance propagate exactly): |mean - pred| <= 5 s / sqrt(N) and |std - pred_std| <=
 *    5 s / sqrt(2 N), i.e. five standard errors (the chance of a false failure is ~1e-6).
 *    This checks the implementation itself, discretization included.
 * 2. Against the data: the same five standard errors plus a stated bias bound `b` (as a
 *    fraction of s) that each test explains; it covers the sampler's own discretization
 *    and prior mismatch (e.g. starting from N(0, I) where the true x_T has mean
 *    sqrt(abar_T) m). Every case runs on the interpreter and on the JIT with the same
 *    numbers, and test_jit_matches_interp compares the two sample by sample. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "backend/backend.h"
#include "frontend/loop.h"
#include "frontend/nn.h"
#include "models/samplers.h"
#include "support/run_check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_SAMPLES 10000

static const double M[2] = {1, -2}, S[2] = {0.5, 2};

/* How the denoiser turns its time input into (alpha, sigma), and its convention for v. */
typedef enum { TK_DISCRETE, TK_VP, TK_VE, TK_FLOW, TK_SIGMA } time_kind;

typedef struct {
    time_kind tk;
    ed_pred pred;
    bool consistency; /* return the consistency function (x0) instead of the posterior mean */
    int T;            /* TK_DISCRETE: sqrt(abar) and sqrt(1 - abar) tables */
    double *sqrt_ab, *sqrt_1mab;
} gauss;

static ed_node *scal(ed_graph *g, double v) { return ed_scalar(g, ED_F32, v); }

static ed_node *analytic(ed_graph *body, ed_node *x, const ed_denoise_in *in, void *vctx)
{
    const gauss *c = vctx;
    ed_node *t = in->t, *a = NULL, *sg = NULL, *va = NULL, *vs = NULL;
    switch (c->tk) {
    case TK_DISCRETE: {
        ed_node *ti = ed_cast(t, ED_I32);
        a = ed_table_at(ed_table(body, ED_F32, c->sqrt_ab, c->T), ti);
        sg = ed_table_at(ed_table(body, ED_F32, c->sqrt_1mab, c->T), ti);
        va = ed_neg(sg), vs = a;
        break;
    }
    case TK_VP: { /* log alpha = -t^2 (20 - 0.1) / 4 - 0.1 t / 2 */
        ed_node *la = ed_sub(ed_mul(scal(body, -19.9 / 4), ed_square(t)), ed_mul(scal(body, 0.05), t));
        a = ed_exp(la);
        sg = ed_sqrt(ed_sub(scal(body, 1), ed_exp(ed_mul(scal(body, 2), la))));
        va = ed_neg(sg), vs = a;
        break;
    }
    case TK_VE: /* sigma = 0.01 * 5000^t */
        a = scal(body, 1);
        sg = ed_mul(scal(body, 0.01), ed_exp(ed_mul(scal(body, log(5000.0)), t)));
        va = scal(body, 0), vs = scal(body, 1);
        break;
    case TK_FLOW:
        a = t, sg = ed_sub(scal(body, 1), t);
        va = scal(body, 1), vs = scal(body, -1);
        break;
    case TK_SIGMA:
        a = scal(body, 1), sg = t;
        va = scal(body, 0), vs = scal(body, 1);
        break;
    }
    ed_node *m = ed_const(body, ED_F32, ed_shape1(2), M, 2);
    ed_node *s2 = ed_const(body, ED_F32, ed_shape1(2), (double[]){S[0] * S[0], S[1] * S[1]}, 2);
    if (c->consistency) { /* m + s (x - m) / sqrt(s^2 + sigma^2) with alpha = 1 */
        ed_node *sd = ed_const(body, ED_F32, ed_shape1(2), S, 2);
        return ed_add(m, ed_div(ed_mul(sd, ed_sub(x, m)), ed_sqrt(ed_add(s2, ed_square(sg)))));
    }
    ed_node *V = ed_add(ed_mul(ed_square(a), s2), ed_square(sg));
    ed_node *r = ed_div(ed_sub(x, ed_mul(a, m)), V);
    ed_node *eps = ed_mul(sg, r);
    ed_node *x0 = ed_add(m, ed_mul(ed_mul(a, s2), r));
    switch (c->pred) {
    case ED_PRED_EPS: return eps;
    case ED_PRED_X0: return x0;
    case ED_PRED_SCORE: return ed_neg(r);
    case ED_PRED_VELOCITY: return ed_add(ed_mul(va, x0), ed_mul(vs, eps));
    default: return NULL;
    }
}

static void discrete_tables(gauss *c, const ed_beta_opts *o)
{
    c->T = ed_beta_steps(o);
    double *b = malloc((size_t)c->T * sizeof *b), *ab = malloc((size_t)c->T * sizeof *ab);
    assert_int_equal(ed_betas(o, b), ED_OK);
    ed_alphas(b, c->T, NULL, ab);
    c->sqrt_ab = malloc((size_t)c->T * sizeof(double));
    c->sqrt_1mab = malloc((size_t)c->T * sizeof(double));
    for (int t = 0; t < c->T; t++) c->sqrt_ab[t] = sqrt(ab[t]), c->sqrt_1mab[t] = sqrt(1 - ab[t]);
    free(b);
    free(ab);
}

static void gauss_free(gauss *c)
{
    free(c->sqrt_ab);
    free(c->sqrt_1mab);
}

static const ed_sample_spec SPEC = {.shape = {.rank = 2, .dim = {N_SAMPLES, 2}}};

/* Compile g (output "x") on backend be, run once, and check the samples as the header
 * says: pm/ps the exact discretized moments, b the stated bias bound as a fraction of s. */
static void run_check(ed_backend be, ed_graph *g, const ed_sample_result *r, const double pm[2], const double ps[2],
                      double b)
{
    if (!r->samples) fail_msg("building the sampler failed: %s", ed_graph_error(g));
    ed_output(g, "x", r->samples);
    ed_store *st = ed_store_new(0);
    ed_program *p = compile_with(g, st, be, 7);
    run_ok(p, NULL, 0);
    const ed_tensor *x = ed_program_output(p, "x");
    assert_int_equal(x->shape.rank, 2);
    assert_int_equal(x->shape.dim[0], N_SAMPLES);
    const float *v = x->data;
    for (int d = 0; d < 2; d++) {
        double sum = 0, sq = 0;
        for (int i = 0; i < N_SAMPLES; i++) {
            double xi = v[2 * i + d];
            if (!isfinite(xi)) fail_msg("sample %d dim %d is %g", i, d, xi);
            sum += xi;
        }
        double mean = sum / N_SAMPLES;
        for (int i = 0; i < N_SAMPLES; i++) sq += (v[2 * i + d] - mean) * (v[2 * i + d] - mean);
        double sd = sqrt(sq / (N_SAMPLES - 1));
        double se_m = 5 * S[d] / sqrt(N_SAMPLES), se_s = 5 * S[d] / sqrt(2.0 * N_SAMPLES);
        if (getenv("ED_TEST_VERBOSE"))
            printf("  dim %d: mean %.5f (exact %.5f) std %.5f (exact %.5f)\n", d, mean, pm[d], sd, ps[d]);
        if (fabs(mean - pm[d]) > se_m || fabs(sd - ps[d]) > se_s)
            fail_msg("dim %d: mean %.5f std %.5f, exact discretized %.5f %.5f (tolerance %.4f %.4f)", d, mean, sd,
                     pm[d], ps[d], se_m, se_s);
        if (fabs(mean - M[d]) > se_m + b * S[d] || fabs(sd - S[d]) > se_s + b * S[d])
            fail_msg("dim %d: mean %.5f std %.5f, data %.5f %.5f (bias bound %.3f s)", d, mean, sd, M[d], S[d], b);
    }
    ed_program_free(p);
    ed_store_free(st);
    ed_graph_free(g);
}

/* ---- the closed-form cases --------------------------------------------------------------- */

typedef enum { SAMPLE_DDPM, SAMPLE_DDIM, SAMPLE_ODE, SAMPLE_EM, SAMPLE_PC, SAMPLE_CONSISTENCY } sampler;

/* One sampler run on the analytic denoiser c (of prediction c.pred), checked by
 * run_check against the exact discretized moments pm/ps and the bias bound b. The
 * sampler's options are the one pointer of its kind (NULL: its defaults). */
typedef struct {
    const char *test, *graph;
    gauss c; /* TK_DISCRETE: tables from the DDPM options' betas, else the default */
    sampler s;
    const ed_ddpm_opts *ddpm;
    const ed_ddim_opts *ddim;
    const ed_ode_opts *ode;
    const ed_sde_opts *sde;
    const ed_pc_opts *pc;
    const ed_consistency_opts *cm;
    double grid_end; /* ODE: when set, times on ed_time_grid(0, grid_end, steps) */
    int iterations;  /* when set, the sampler's expected iteration count */
    double pm[2], ps[2], b;
} sampler_case;

static const sampler_case CASES[] = {
    /* DDPM. Linear schedule, eps model, variance beta_t. Exact: mean (0.99999, -1.99968),
     * std (0.50075, 1.99764). b = 0.01: the start N(0, I) misses sqrt(abar_T) m = 0.013 m
     * and the beta_t variance slightly overshoots; both are below 0.2% of s. */
    {"test_ddpm_eps",
     "ddpm",
     {.tk = TK_DISCRETE, .pred = ED_PRED_EPS},
     SAMPLE_DDPM,
     .iterations = 1000,
     .pm = {0.999990, -1.999677},
     .ps = {0.500752, 1.997641},
     .b = 0.01},
    /* Cosine schedule, velocity model, posterior variance beta~. Exact: mean (1.00000,
     * -2.00000), std (0.49799, 1.99572); b = 0.01 (beta~ undershoots the variance by 0.4%
     * of s: the true reverse step also carries Var[x0 | x_t]). */
    {"test_ddpm_velocity_cosine",
     "ddpm_v",
     {.tk = TK_DISCRETE, .pred = ED_PRED_VELOCITY},
     SAMPLE_DDPM,
     .ddpm = &(ed_ddpm_opts){.beta = {.kind = ED_BETA_COSINE}, .posterior_variance = true},
     .pm = {1.0, -2.0},
     .ps = {0.497993, 1.995717},
     .b = 0.01},
    /* DDIM. 100 uniform steps, eta = 0, x0 model. Exact: mean (0.99691, -1.97497), std
     * (0.48585, 1.96975). b = 0.03: deterministic DDIM keeps the start's mean error (no
     * noise washes it out) and loses ~1.5-3% of s in std at 100 steps. */
    {"test_ddim_deterministic",
     "ddim0",
     {.tk = TK_DISCRETE, .pred = ED_PRED_X0},
     SAMPLE_DDIM,
     .ddim = &(ed_ddim_opts){.steps = 100},
     .pm = {0.996913, -1.974973},
     .ps = {0.485848, 1.969751},
     .b = 0.03},
    /* 100 uniform steps, eta = 1 (really adds sigma-scaled noise), score model. Exact: mean
     * (0.99999, -1.99968), std (0.46795, 1.93964). b = 0.07: DDIM's eta = 1 noise over 10x
     * coarser steps undershoots the variance (6% of s for the first dimension). The std
     * differs from the eta = 0 run: the noise is really added. */
    {"test_ddim_eta1",
     "ddim1",
     {.tk = TK_DISCRETE, .pred = ED_PRED_SCORE},
     SAMPLE_DDIM,
     .ddim = &(ed_ddim_opts){.steps = 100, .eta = 1},
     .pm = {0.999990, -1.999677},
     .ps = {0.467954, 1.939644},
     .b = 0.07},
    /* 50 quadratic steps, eta = 0.5, velocity model. Exact: mean (0.99908, -1.98998), std
     * (0.47966, 1.91792). b = 0.05 (coarse steps at the noisy end). */
    {"test_ddim_quadratic",
     "ddimq",
     {.tk = TK_DISCRETE, .pred = ED_PRED_VELOCITY},
     SAMPLE_DDIM,
     .ddim = &(ed_ddim_opts){.steps = 50, .eta = 0.5, .spacing = ED_SPACING_QUADRATIC},
     .pm = {0.999082, -1.989976},
     .ps = {0.479664, 1.917921},
     .b = 0.05},
    /* ODE integrators. Flow matching, velocity, Euler 100 steps. Exact: mean (1, -2) (the
     * start N(0, I) is exact for flow matching), std (0.49265, 1.97058): Euler's
     * first-order error, b = 0.02. */
    {"test_flow_euler",
     "fm_euler",
     {.tk = TK_FLOW, .pred = ED_PRED_VELOCITY},
     SAMPLE_ODE,
     .ode = &(ed_ode_opts){.process = {.kind = ED_PROC_FLOW}, .method = ED_ODE_EULER, .steps = 100},
     .pm = {1, -2},
     .ps = {0.492645, 1.970582},
     .b = 0.02},
    /* Flow matching, velocity, midpoint 20 steps: std (0.49999, 1.99994); b = 0.005. */
    {"test_flow_midpoint",
     "fm_mid",
     {.tk = TK_FLOW, .pred = ED_PRED_VELOCITY},
     SAMPLE_ODE,
     .ode = &(ed_ode_opts){.process = {.kind = ED_PROC_FLOW}, .method = ED_ODE_MIDPOINT, .steps = 20},
     .pm = {1, -2},
     .ps = {0.499985, 1.999942},
     .b = 0.005},
    /* Flow matching with an x0 model, Heun 20 steps on a custom grid 0..0.999 (x0 is
     * singular at t = 1, sigma = 0). The result is x at t = 0.999, so mean 0.999 m; exact
     * std (0.50001, 1.99536); b = 0.005. */
    {"test_flow_heun_x0",
     "fm_heun",
     {.tk = TK_FLOW, .pred = ED_PRED_X0},
     SAMPLE_ODE,
     .ode = &(ed_ode_opts){.process = {.kind = ED_PROC_FLOW}, .method = ED_ODE_HEUN, .steps = 20},
     .grid_end = 0.999,
     .pm = {0.999, -1.998},
     .ps = {0.500010, 1.995364},
     .b = 0.005},
    /* Flow matching, velocity, RK4 10 steps (40 model calls): std (0.50000, 1.99999); b = 0.002. */
    {"test_flow_rk4",
     "fm_rk4",
     {.tk = TK_FLOW, .pred = ED_PRED_VELOCITY},
     SAMPLE_ODE,
     .ode = &(ed_ode_opts){.process = {.kind = ED_PROC_FLOW}, .method = ED_ODE_RK4, .steps = 10},
     .pm = {1, -2},
     .ps = {0.500000, 1.999991},
     .b = 0.002},
    /* VP probability-flow ODE, eps model, RK4 20 steps from t = 1 to 1e-3. Exact: mean
     * (0.99666, -1.97361), std (0.50008, 1.99979). b = 0.015: the prior N(0, I) misses the
     * true mean alpha(1) m = 0.0066 m, and the deterministic flow carries that to the end. */
    {"test_vp_ode_rk4",
     "vp_rk4",
     {.tk = TK_VP, .pred = ED_PRED_EPS},
     SAMPLE_ODE,
     .ode = &(ed_ode_opts){.process = {.kind = ED_PROC_VP}, .method = ED_ODE_RK4, .steps = 20},
     .pm = {0.996660, -1.973607},
     .ps = {0.500081, 1.999788},
     .b = 0.015},
    /* VP probability-flow ODE, score model, Heun 50 steps: mean (0.99617, -1.97279), std
     * (0.50063, 1.99911); b = 0.015 as above. */
    {"test_vp_ode_heun_score",
     "vp_heun",
     {.tk = TK_VP, .pred = ED_PRED_SCORE},
     SAMPLE_ODE,
     .ode = &(ed_ode_opts){.process = {.kind = ED_PROC_VP}, .method = ED_ODE_HEUN, .steps = 50},
     .pm = {0.996169, -1.972791},
     .ps = {0.500626, 1.999105},
     .b = 0.015},
    /* VE probability-flow ODE, score model, RK4 50 steps, prior N(0, 50^2). Exact: mean
     * (0.98999, -1.92006), std (0.50009, 1.99846). b = 0.045: the prior ignores the data's
     * mean, an error of about m s / sigma_max = 0.04 s in the result. */
    {"test_ve_ode_rk4",
     "ve_rk4",
     {.tk = TK_VE, .pred = ED_PRED_SCORE},
     SAMPLE_ODE,
     .ode = &(ed_ode_opts){.process = {.kind = ED_PROC_VE}, .method = ED_ODE_RK4, .steps = 50},
     .pm = {0.989998, -1.920062},
     .ps = {0.500091, 1.998461},
     .b = 0.045},
    /* SDEs. VP reverse SDE, Euler-Maruyama 500 steps, eps model. Exact: mean (1.00112,
     * -2.00116), std (0.50049, 2.00147). b = 0.005. */
    {"test_vp_em",
     "vp_em",
     {.tk = TK_VP, .pred = ED_PRED_EPS},
     SAMPLE_EM,
     .sde = &(ed_sde_opts){.process = {.kind = ED_PROC_VP}, .steps = 500},
     .pm = {1.001124, -2.001157},
     .ps = {0.500488, 2.001468},
     .b = 0.005},
    /* VE reverse SDE, Euler-Maruyama 500 steps, score model. Exact: mean (0.99992,
     * -1.99714), std (0.50012, 2.00010). b = 0.005. */
    {"test_ve_em",
     "ve_em",
     {.tk = TK_VE, .pred = ED_PRED_SCORE},
     SAMPLE_EM,
     .sde = &(ed_sde_opts){.process = {.kind = ED_PROC_VE}, .steps = 500},
     .pm = {0.999915, -1.997143},
     .ps = {0.500124, 2.000097},
     .b = 0.005},
    /* Predictor-corrector: the Langevin corrector targets the exact marginal p_t, so for
     * the analytic score it leaves the distribution near what Euler-Maruyama gives; its
     * step size depends on batch norms, so there is no affine closed form: pred = the EM
     * moments above, b = 0.01 (and the same five standard errors). */
    {"test_vp_pc",
     "vp_pc",
     {.tk = TK_VP, .pred = ED_PRED_EPS},
     SAMPLE_PC,
     .pc = &(ed_pc_opts){.sde = {.process = {.kind = ED_PROC_VP}, .steps = 500}, .snr = 0.16},
     .pm = {1.001124, -2.001157},
     .ps = {0.500488, 2.001468},
     .b = 0.01},
    {"test_ve_pc",
     "ve_pc",
     {.tk = TK_VE, .pred = ED_PRED_SCORE},
     SAMPLE_PC,
     .pc = &(ed_pc_opts){.sde = {.process = {.kind = ED_PROC_VE}, .steps = 500}, .corrector_steps = 2},
     .pm = {0.999915, -1.997143},
     .ps = {0.500124, 2.000097},
     .b = 0.01},
    /* Consistency. One step from sigma = 80 with the exact consistency function: mean
     * m (1 - s / sqrt(s^2 + 80^2)) = (0.99375, -1.95002), std (0.49999, 1.99938). b = 0.03
     * (the prior ignores the mean: m s / 80 = 0.025 s). */
    {"test_consistency_one_step",
     "cm1",
     {.tk = TK_SIGMA, .pred = ED_PRED_X0, .consistency = true},
     SAMPLE_CONSISTENCY,
     .iterations = 1,
     .pm = {0.993750, -1.950016},
     .ps = {0.499990, 1.999375},
     .b = 0.03},
    /* Two steps (80, 0.661): mean (0.99623, -1.95254), std (0.49999, 1.99944); b = 0.03. */
    {"test_consistency_two_steps",
     "cm2",
     {.tk = TK_SIGMA, .pred = ED_PRED_X0, .consistency = true},
     SAMPLE_CONSISTENCY,
     .cm = &(ed_consistency_opts){.steps = 2},
     .iterations = 2,
     .pm = {0.996230, -1.952540},
     .ps = {0.499995, 1.999436},
     .b = 0.03},
};
enum { NCASES = sizeof CASES / sizeof CASES[0] };

static ed_sample_result sample_case(ed_graph *g, const sampler_case *k, gauss *c)
{
    const ed_model m = {analytic, c, c->pred};
    switch (k->s) {
    case SAMPLE_DDPM: return ed_sample_ddpm(g, &m, &SPEC, k->ddpm);
    case SAMPLE_DDIM: return ed_sample_ddim(g, &m, &SPEC, k->ddim);
    case SAMPLE_ODE: {
        if (!k->grid_end) return ed_sample_ode(g, &m, &SPEC, k->ode);
        double times[64];
        assert_true(k->ode->steps < 64);
        assert_int_equal(ed_time_grid(0, k->grid_end, k->ode->steps, times), ED_OK);
        ed_ode_opts o = *k->ode;
        o.times = times;
        return ed_sample_ode(g, &m, &SPEC, &o);
    }
    case SAMPLE_EM: return ed_sample_euler_maruyama(g, &m, &SPEC, k->sde);
    case SAMPLE_PC: return ed_sample_pc(g, &m, &SPEC, k->pc);
    case SAMPLE_CONSISTENCY: return ed_sample_consistency(g, &m, &SPEC, k->cm);
    }
    fail_msg("unknown sampler %d", (int)k->s);
    return (ed_sample_result){.samples = NULL};
}

/* The state: one case on one backend. */
typedef struct {
    const sampler_case *k;
    ed_backend be;
} case_run;

static void test_case(void **state)
{
    const case_run *run = *state;
    const sampler_case *k = run->k;
    gauss c = k->c;
    if (c.tk == TK_DISCRETE) discrete_tables(&c, k->ddpm ? &k->ddpm->beta : NULL);
    ed_graph *g = ed_graph_new(k->graph);
    ed_sample_result r = sample_case(g, k, &c);
    if (k->iterations) assert_int_equal(r.iterations, k->iterations);
    run_check(run->be, g, &r, k->pm, k->ps, k->b);
    if (c.tk == TK_DISCRETE) gauss_free(&c);
}

/* ---- DDIM from a fixed start, and clipping ------------------------------------------ */

/* eta > 0 really adds sigma-scaled noise: from x_T = 0 for every sample, eta = 0 gives
 * one deterministic point (std 0, mean = the exact eta = 0 mean above), while eta = 1
 * gives the spread of the added noise alone: exact std (0.46795, 1.93948), mean
 * (0.99999, -1.99968); b = 0.07 as for eta = 1 above. */
static void test_ddim_eta_adds_noise(void **state)
{
    gauss c = {.tk = TK_DISCRETE, .pred = ED_PRED_EPS};
    discrete_tables(&c, NULL);
    ed_graph *g = ed_graph_new("ddim_zero");
    ed_sample_spec sp = SPEC;
    sp.x_init = ed_fill(g, ED_F32, SPEC.shape, 0);
    ed_sample_result r = ed_sample_ddim(g, &(ed_model){analytic, &c, ED_PRED_EPS}, &sp, &(ed_ddim_opts){.steps = 100});
    ed_output(g, "x", r.samples);
    ed_store *st = ed_store_new(0);
    ed_program *p = compile_with(g, st, *(const ed_backend *)*state, 0);
    run_ok(p, NULL, 0);
    const float *x = ed_program_output(p, "x")->data;
    for (int i = 0; i < N_SAMPLES; i++) {
        assert_float_equal(x[2 * i], 0.996913, 1e-4);
        assert_float_equal(x[2 * i + 1], -1.974973, 1e-4);
    }
    ed_program_free(p);
    ed_store_free(st);
    ed_graph_free(g);

    g = ed_graph_new("ddim_zero_eta1");
    sp.x_init = ed_fill(g, ED_F32, SPEC.shape, 0);
    r = ed_sample_ddim(g, &(ed_model){analytic, &c, ED_PRED_EPS}, &sp, &(ed_ddim_opts){.steps = 100, .eta = 1});
    run_check(*(const ed_backend *)*state, g, &r, (double[]){0.999990, -1.999677}, (double[]){0.467951, 1.939477},
              0.07);
    gauss_free(&c);
}

/* x0 clipping: a bound that never binds (100) gives the unclipped run's exact moments;
 * a bound of 1 keeps every DDIM and DDPM sample in [-1, 1] (their last step returns the
 * clipped x0_hat), and dimension 1 (data mean -2) piles up exactly at -1, which no
 * unclipped run does: measured about half of the samples for DDIM 20 steps (asked: a
 * quarter) and 11% for DDPM, whose last steps keep x within its small noise of the
 * clipped x0_hat, so more of them end just inside (asked: 5%). */
static void test_clip_x0(void **state)
{
    gauss c = {.tk = TK_DISCRETE, .pred = ED_PRED_EPS};
    discrete_tables(&c, NULL);
    ed_graph *g = ed_graph_new("clip_loose");
    ed_sample_result r = ed_sample_ddim(g, &(ed_model){analytic, &c, ED_PRED_EPS}, &SPEC,
                                        &(ed_ddim_opts){.steps = 100, .clip_x0 = true, .clip = 100});
    run_check(*(const ed_backend *)*state, g, &r, (double[]){0.996913, -1.974973}, (double[]){0.485848, 1.969751},
              0.03);
    for (int which = 0; which < 2; which++) {
        g = ed_graph_new("clip_tight");
        r = which ? ed_sample_ddpm(g, &(ed_model){analytic, &c, ED_PRED_EPS}, &SPEC, &(ed_ddpm_opts){.clip_x0 = true})
                  : ed_sample_ddim(g, &(ed_model){analytic, &c, ED_PRED_EPS}, &SPEC,
                                   &(ed_ddim_opts){.steps = 20, .clip_x0 = true});
        if (!r.samples) fail_msg("%s", ed_graph_error(g));
        ed_output(g, "x", r.samples);
        ed_store *st = ed_store_new(0);
        ed_program *p = compile_with(g, st, *(const ed_backend *)*state, 0);
        run_ok(p, NULL, 0);
        const float *x = ed_program_output(p, "x")->data;
        int at_minus1 = 0;
        for (int i = 0; i < 2 * N_SAMPLES; i++) {
            if (!(x[i] >= -1 && x[i] <= 1))
                fail_msg("%s sample %d = %g outside [-1, 1]", which ? "ddpm" : "ddim", i, x[i]);
            at_minus1 += i % 2 && x[i] == -1;
        }
        if (at_minus1 < (which ? N_SAMPLES / 20 : N_SAMPLES / 4)) fail_msg("only %d of dim 1 clipped at -1", at_minus1);
        ed_program_free(p);
        ed_store_free(st);
        ed_graph_free(g);
    }
    gauss_free(&c);
}

/* ---- structure and errors ------------------------------------------------------------- */

static const ed_backend INTERP = ED_BACKEND_INTERP;

/* The trajectory is [iterations, N, D] and its last row is the result. */
static void test_trajectory(void **state)
{
    (void)state;
    gauss c = {.tk = TK_FLOW, .pred = ED_PRED_VELOCITY};
    ed_graph *g = ed_graph_new("traj");
    ed_sample_spec sp = {.shape = ed_shape2(5, 2), .trajectory = true};
    ed_sample_result r = ed_sample_ode(g, &(ed_model){analytic, &c, ED_PRED_VELOCITY}, &sp,
                                       &(ed_ode_opts){.process = {.kind = ED_PROC_FLOW}, .steps = 4});
    if (!r.trajectory) fail_msg("%s", ed_graph_error(g));
    assert_int_equal(r.trajectory->shape.rank, 3);
    assert_int_equal(r.trajectory->shape.dim[0], 4);
    ed_output(g, "x", r.samples);
    ed_output(g, "traj", r.trajectory);
    ed_store *st = ed_store_new(0);
    ed_program *p = compile_with(g, st, INTERP, 0);
    run_ok(p, NULL, 0);
    const float *x = ed_program_output(p, "x")->data, *tr = ed_program_output(p, "traj")->data;
    for (int i = 0; i < 10; i++) assert_float_equal(tr[30 + i], x[i], 0);
    assert_true(tr[0] != x[0]);
    ed_program_free(p);
    ed_store_free(st);
    ed_graph_free(g);
}

/* x0 at sigma = 0 is singular: a clear error naming the step, not NaN samples. */
static void test_singular_parameterization(void **state)
{
    (void)state;
    gauss c = {.tk = TK_FLOW, .pred = ED_PRED_X0};
    ed_graph *g = ed_graph_new("sing");
    ed_sample_result r = ed_sample_ode(g, &(ed_model){analytic, &c, ED_PRED_X0}, &SPEC,
                                       &(ed_ode_opts){.process = {.kind = ED_PROC_FLOW}, .method = ED_ODE_HEUN});
    assert_null(r.samples);
    const char *e = ed_graph_error(g);
    assert_non_null(e);
    if (!strstr(e, "x0 parameterization is singular")) fail_msg("%s", e);
    ed_graph_free(g);
}

static ed_node *wrong_shape(ed_graph *body, ed_node *x, const ed_denoise_in *in, void *ctx)
{
    (void)x, (void)in, (void)ctx;
    return ed_fill(body, ED_F32, ed_shape1(3), 0);
}

static void test_errors(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("err");
    ed_sample_result r = ed_sample_ddim(g, &(ed_model){wrong_shape, NULL, ED_PRED_EPS}, &SPEC, NULL);
    assert_null(r.samples);
    if (!strstr(ed_graph_error(g), "must return f32[10000,2]")) fail_msg("%s", ed_graph_error(g));
    ed_graph_free(g);

    g = ed_graph_new("err2");
    gauss c = {.tk = TK_FLOW, .pred = ED_PRED_VELOCITY};
    r = ed_sample_euler_maruyama(g, &(ed_model){analytic, &c, ED_PRED_VELOCITY}, &SPEC,
                                 &(ed_sde_opts){.process = {.kind = ED_PROC_FLOW}});
    assert_null(r.samples);
    assert_non_null(strstr(ed_graph_error(g), "flow matching has no SDE"));
    ed_graph_free(g);

    g = ed_graph_new("err3");
    r = ed_sample_consistency(g, &(ed_model){analytic, &c, ED_PRED_X0}, &SPEC, &(ed_consistency_opts){.steps = 3});
    assert_null(r.samples);
    assert_non_null(strstr(ed_graph_error(g), "need explicit sigmas"));
    ed_graph_free(g);

    g = ed_graph_new("err4");
    r = ed_sample_ddim(g, &(ed_model){analytic, &c, ED_PRED_EPS}, &SPEC,
                       &(ed_ddim_opts){.steps = 3, .timesteps = (int[]){5, 3, 9}});
    assert_null(r.samples);
    assert_non_null(strstr(ed_graph_error(g), "strictly increasing"));
    ed_graph_free(g);

    ed_pred p;
    assert_true(ed_pred_parse("velocity", &p) && p == ED_PRED_VELOCITY);
    assert_false(ed_pred_parse("v", &p));
    ed_ode_method mth;
    assert_true(ed_ode_method_parse("rk4", &mth) && mth == ED_ODE_RK4);
}

static const ed_backend JIT = ED_BACKEND_JIT;

/* A network denoiser: an MLP on [x, t] built in the body by nn blocks (their params are
 * moved to the outer graph by the loop builder), plus an outer param captured by hand. */
static ed_node *mlp_model(ed_graph *body, ed_node *x, const ed_denoise_in *in, void *ctx)
{
    (void)body; /* nn blocks build in x's graph, which is the body */
    ed_node *scale = ed_loop_capture(in->loop, ctx);
    ed_node *tcol = ed_broadcast_to(ed_reshape(ed_mul_scalar(in->t, 1e-3), ed_shape2(1, 1)), ed_shape2(64, 1));
    ed_node *h = ed_concat((ed_node *[]){x, tcol}, 2, 1);
    ed_node *out = ed_mlp(h, "den", (const int64_t[]){16, 2}, 2, ED_ACT_SILU, false);
    return ed_mul(scale, ed_add(out, ed_mul(in->sigma, x)));
}

/* The network runs inside the loop on both backends with one set of params: the store
 * holds "den..." params once, and JIT and interpreter agree. */
static void test_network_denoiser(void **state)
{
    (void)state;
    float *res[2];
    for (int k = 0; k < 2; k++) {
        ed_graph *g = ed_graph_new("net");
        ed_node *scale = ed_param(g, "scale", ED_F32, ed_shape0(), (ed_init){ED_INIT_ONES, 0});
        ed_sample_spec sp = {.shape = ed_shape2(64, 2)};
        ed_sample_result r = ed_sample_ddim(g, &(ed_model){mlp_model, scale, ED_PRED_EPS}, &sp,
                                            &(ed_ddim_opts){.steps = 10, .eta = 1});
        if (!r.samples) fail_msg("%s", ed_graph_error(g));
        ed_output(g, "x", r.samples);
        ed_store *st = ed_store_new(0);
        ed_program *p = compile_with(g, st, k ? ED_BACKEND_JIT : ED_BACKEND_INTERP, 0);
        run_ok(p, NULL, 0);
        assert_non_null(ed_store_get(st, "scale"));
        int nden = 0;
        for (int i = 0; i < g->nnodes; i++)
            nden += g->nodes[i]->op == ED_OP_PARAM && strncmp(g->nodes[i]->attr.name, "den", 3) == 0;
        assert_true(nden >= 2); /* the MLP's weights live in the outer graph */
        res[k] = malloc(sizeof(float) * 128);
        memcpy(res[k], ed_program_output(p, "x")->data, sizeof(float) * 128);
        for (int i = 0; i < 128; i++) assert_true(isfinite(res[k][i]));
        ed_program_free(p);
        ed_store_free(st);
        ed_graph_free(g);
    }
    for (int i = 0; i < 128; i++) assert_float_equal(res[0][i], res[1][i], 1e-4 * fmax(1, fabs(res[0][i])));
    free(res[0]);
    free(res[1]);
}

/* Samples of the sampler `which` built fresh, on backend be (a malloc'd copy). */
static float *samples_on(int which, ed_backend be)
{
    gauss c = {.tk = TK_DISCRETE, .pred = ED_PRED_EPS};
    discrete_tables(&c, NULL);
    gauss cve = {.tk = TK_VE, .pred = ED_PRED_SCORE}, cvp = {.tk = TK_VP, .pred = ED_PRED_VELOCITY};
    ed_graph *g = ed_graph_new("cmp");
    ed_sample_spec sp = {.shape = ed_shape2(2000, 2)};
    ed_sample_result r;
    if (which == 0) r = ed_sample_ddpm(g, &(ed_model){analytic, &c, ED_PRED_EPS}, &sp, NULL);
    else if (which == 1)
        r = ed_sample_pc(g, &(ed_model){analytic, &cve, ED_PRED_SCORE}, &sp,
                         &(ed_pc_opts){.sde = {.process = {.kind = ED_PROC_VE}, .steps = 200}});
    else
        r = ed_sample_ode(g, &(ed_model){analytic, &cvp, ED_PRED_VELOCITY}, &sp,
                          &(ed_ode_opts){.method = ED_ODE_RK4, .steps = 20});
    if (!r.samples) fail_msg("%s", ed_graph_error(g));
    ed_output(g, "x", r.samples);
    ed_store *st = ed_store_new(0);
    ed_program *p = compile_with(g, st, be, 3);
    run_ok(p, NULL, 0);
    float *out = malloc(sizeof(float) * 4000);
    memcpy(out, ed_program_output(p, "x")->data, sizeof(float) * 4000);
    ed_program_free(p);
    ed_store_free(st);
    ed_graph_free(g);
    gauss_free(&c);
    return out;
}

/* The JIT draws the same Philox bits as the interpreter, so sample by sample the two
 * agree up to f32 rounding: the JIT's inline exp/log differ from libm by ~1e-7
 * relative. Measured: DDPM bit-identical, PC (VE) 1.4e-6, RK4 (VP, exp in the
 * denoiser) 1e-6. 1e-4 absolute leaves a 70x margin; a wrong coefficient or a missed
 * noise draw moves samples by O(s). */
static void test_jit_matches_interp(void **state)
{
    (void)state;
    for (int which = 0; which < 3; which++) {
        float *a = samples_on(which, ED_BACKEND_INTERP), *b = samples_on(which, ED_BACKEND_JIT);
        double worst = 0;
        for (int i = 0; i < 4000; i++) worst = fmax(worst, fabs((double)a[i] - b[i]));
        if (getenv("ED_TEST_VERBOSE")) printf("  sampler %d: max abs JIT - interp %.3g\n", which, worst);
        if (!(worst <= 1e-4)) fail_msg("sampler %d: JIT and interpreter differ by up to %g", which, worst);
        free(a);
        free(b);
    }
}

#define BOTH(fn) cmocka_unit_test_prestate(fn, (void *)&INTERP), cmocka_unit_test_prestate(fn, (void *)&JIT)

int main(void)
{
    static case_run runs[2 * NCASES];
    struct CMUnitTest tests[2 * NCASES + 9] = {
        BOTH(test_ddim_eta_adds_noise),          BOTH(test_clip_x0),
        cmocka_unit_test(test_trajectory),       cmocka_unit_test(test_singular_parameterization),
        cmocka_unit_test(test_errors),           cmocka_unit_test(test_jit_matches_interp),
        cmocka_unit_test(test_network_denoiser),
    };
    /* every case of the table on both backends, under its old test's name */
    for (int i = 0; i < 2 * NCASES; i++) {
        runs[i] = (case_run){&CASES[i / 2], i % 2 ? ED_BACKEND_JIT : ED_BACKEND_INTERP};
        tests[9 + i] = (struct CMUnitTest){
            .name = CASES[i / 2].test, .test_func = test_case, .initial_state = &runs[i]};
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
