/* The score SDE family (see score_sde.h): options, network, loss, sampling, likelihood
 * and its registry entry. */
#include "models/score_sde.h"
#include "models/registry.h"
#include "runtime/error.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

static const char *const kinds[] = {"vp", "ve", NULL};
static const char *const samplers[] = {"pc", "em", "ode", NULL};
static const char *const features[] = {"sinusoidal", "fourier", NULL};
static const char *const solvers[] = {"euler", "heun", "midpoint", "rk4", NULL}; /* ed_ode_method order */
static const char *const probes[] = {"rademacher", "gaussian", NULL};

#define S(field) offsetof(ed_score_sde_opts, field)
const ed_option ed_score_sde_options[] = {
    {"hidden", ED_OPTION_INT, S(net.hidden), 256, 2, 65536, NULL,
     "width of the denoiser (even; low-dimensional data: 64)", NULL},
    {"layers", ED_OPTION_INT, S(net.layers), 4, 0, 64, NULL, "pre-LayerNorm residual MLP blocks (low-dimensional: 2)",
     NULL},
    {"expansion", ED_OPTION_INT, S(net.expansion), 4, 1, 64, NULL, "block inner width / hidden", NULL},
    {"time_features", ED_OPTION_ENUM, S(net.time_features), ED_TIME_FOURIER, 0, 0, features,
     "time embedding: Gaussian Fourier features of t, or sinusoidal of t * time_scale", NULL},
    {"fourier_scale", ED_OPTION_REAL, S(net.fourier_scale), 16, 1e-6, 1e6, NULL,
     "std of the random Fourier frequencies", NULL},
    {"time_scale", ED_OPTION_REAL, S(net.time_scale), 1000, 1e-6, 1e9, NULL,
     "t is scaled by this before the sinusoidal embedding", NULL},
    {"max_period", ED_OPTION_REAL, S(net.max_period), 10000, 1, 1e12, NULL,
     "longest period of the sinusoidal embedding", NULL},
    {"sde", ED_OPTION_ENUM, S(sde), ED_SDE_VP, 0, 0, kinds, "variance preserving or variance exploding", NULL},
    {"beta_min", ED_OPTION_REAL, S(beta_min), 0.1, 1e-6, 1e3, NULL, "VP: beta(0)", NULL},
    {"beta_max", ED_OPTION_REAL, S(beta_max), 20, 1e-6, 1e3, NULL, "VP: beta(1)", NULL},
    {"sigma_min", ED_OPTION_REAL, S(sigma_min), 0.01, 1e-6, 1e6, NULL, "VE: sigma(0)", NULL},
    {"sigma_max", ED_OPTION_REAL, S(sigma_max), 50, 1e-6, 1e6, NULL, "VE: sigma(1)", NULL},
    {"train_eps", ED_OPTION_REAL, S(train_eps), 1e-5, 1e-9, 0.5, NULL, "training t ~ U(train_eps, 1)", NULL},
    {"sampler", ED_OPTION_ENUM, S(sampler), ED_SDE_SAMPLER_PC, 0, 0, samplers,
     "predictor-corrector, Euler-Maruyama or the probability-flow ODE", NULL},
    {"sample_steps", ED_OPTION_INT, S(sample_steps), 200, 1, 100000, NULL, "sampler steps from t = 1", NULL},
    {"sample_eps", ED_OPTION_REAL, S(sample_eps), 1e-3, 1e-9, 0.5, NULL, "the samplers stop at this t", NULL},
    {"snr", ED_OPTION_REAL, S(snr), 0.16, 0, 10, NULL, "pc: the Langevin corrector's signal-to-noise ratio", NULL},
    {"corrector_steps", ED_OPTION_INT, S(corrector_steps), 1, 1, 100, NULL, "pc: Langevin steps per step", NULL},
    {"ode_solver", ED_OPTION_ENUM, S(ode_solver), ED_ODE_RK4, 0, 0, solvers, "ode: the solver", NULL},
    {"nll_steps", ED_OPTION_INT, S(nll_steps), 20, 1, 100000, NULL, "likelihood: RK4 steps of the PF-ODE", NULL},
    {"probe", ED_OPTION_ENUM, S(probe), ED_PROBE_RADEMACHER, 0, 0, probes, "likelihood: Hutchinson probe", NULL},
};
#undef S

void ed_score_sde_defaults(ed_score_sde_opts *o)
{
    *o = (ed_score_sde_opts){0};
    ed_options_defaults(ed_score_sde_options, ED_SCORE_SDE_NOPTIONS, o);
}

ed_process ed_score_sde_process(const ed_score_sde_opts *o)
{
    if (o->sde == ED_SDE_VE)
        return (ed_process){.kind = ED_PROC_VE, .sigma_min = o->sigma_min, .sigma_max = o->sigma_max};
    return (ed_process){.kind = ED_PROC_VP, .beta_min = o->beta_min, .beta_max = o->beta_max};
}

/* [B] or [] -> broadcastable against x [B, ...]. */
static ed_node *per_sample(ed_node *v, const ed_node *x)
{
    if (v->shape.rank == 0) return v;
    ed_shape s = x->shape;
    for (int i = 1; i < s.rank; i++) s.dim[i] = 1;
    return ed_reshape(v, s);
}

/* log alpha(t) of VP, and sigma(t) of VE, in the graph (t of x's dtype). */
static ed_node *vp_log_alpha(ed_node *t, const ed_score_sde_opts *o)
{
    double db = o->beta_max - o->beta_min;
    return ed_add(ed_mul_scalar(ed_square(t), -0.25 * db), ed_mul_scalar(t, -0.5 * o->beta_min));
}

static ed_node *ve_sigma(ed_node *t, const ed_score_sde_opts *o)
{
    return ed_mul_scalar(ed_exp(ed_mul_scalar(t, log(o->sigma_max / o->sigma_min))), o->sigma_min);
}

ed_node *ed_score_sde_eps(ed_node *x, ed_node *t, const ed_score_sde_opts *o)
{
    if (!x || !t) return NULL;
    if (t->dtype != x->dtype) t = ed_cast(t, x->dtype);
    ed_node *in = x;
    if (o->sde == ED_SDE_VE) /* the marginal's scale for unit-variance data */
        in = ed_mul(x, per_sample(ed_rsqrt(ed_add_scalar(ed_square(ve_sigma(t, o)), 1)), x));
    return ed_denoiser(in, t, NULL, NULL, &o->net, "sde");
}

/* Pixel data onto a continuous density: v = (x (K - 1) + u) / K. */
static ed_node *dequantize(ed_graph *g, ed_node *x, const ed_score_sde_opts *o)
{
    if (o->levels == 0) return x;
    double k = (double)o->levels;
    return ed_mul_scalar(ed_add(ed_mul_scalar(x, k - 1), ed_rand(g, x->dtype, x->shape, 0, 1)), 1 / k);
}

ed_node *ed_score_sde_loss(ed_graph *g, ed_node *x, const ed_score_sde_opts *o)
{
    if (!x || ed_graph_error(g)) return NULL;
    ed_node *x0 = dequantize(g, x, o);
    int64_t batch = x->shape.dim[0];
    ed_node *t = ed_rand(g, x->dtype, ed_shape1(batch), o->train_eps, 1);
    ed_node *z = ed_randn(g, x->dtype, x->shape);
    ed_node *xt;
    if (o->sde == ED_SDE_VE) {
        xt = ed_add(x0, ed_mul(per_sample(ve_sigma(t, o), x), z));
    } else {
        ed_node *la = vp_log_alpha(t, o);
        ed_node *alpha = ed_exp(la), *sigma = ed_sqrt(ed_neg(ed_expm1(ed_mul_scalar(la, 2))));
        xt = ed_add(ed_mul(per_sample(alpha, x), x0), ed_mul(per_sample(sigma, x), z));
    }
    /* lambda(t) = sigma^2: sigma^2 |score + z / sigma|^2 = |eps_hat - z|^2 */
    return ed_mean(ed_square(ed_sub(ed_score_sde_eps(xt, t, o), z)), ED_ALL_AXES, false);
}

/* The samplers' and the likelihood's model: the network at the loop's t. */
static ed_node *denoise_fn(ed_graph *body, ed_node *x, const ed_denoise_in *in, void *ctx)
{
    (void)body;
    return ed_score_sde_eps(x, in->t, ctx);
}

ed_node *ed_score_sde_sample(ed_graph *g, int64_t n, ed_shape shape, const char *sampler, int64_t steps,
                             const ed_score_sde_opts *o)
{
    if (!g || ed_graph_error(g)) return NULL;
    int which = o->sampler;
    if (sampler && *sampler) {
        for (which = 0; samplers[which] && strcmp(samplers[which], sampler) != 0; which++) {}
        if (!samplers[which])
            return ed_graph_fail(g, "sample score_sde: unknown sampler '%s' (samplers: pc|em|ode)", sampler);
    }
    ed_model model = {denoise_fn, (void *)o, ED_PRED_EPS};
    shape.dim[0] = n;
    ed_sample_spec spec = {.shape = shape, .dtype = ED_F32};
    ed_process p = ed_score_sde_process(o);
    int nsteps = (int)(steps ? steps : o->sample_steps);
    ed_sde_opts sde = {.process = p, .steps = nsteps, .t_eps = o->sample_eps};
    ed_sample_result r;
    if (which == ED_SDE_SAMPLER_EM) r = ed_sample_euler_maruyama(g, &model, &spec, &sde);
    else if (which == ED_SDE_SAMPLER_PC)
        r = ed_sample_pc(g, &model, &spec,
                         &(ed_pc_opts){.sde = sde, .corrector_steps = (int)o->corrector_steps, .snr = o->snr});
    else
        r = ed_sample_ode(
            g, &model, &spec,
            &(ed_ode_opts){.process = p, .method = o->ode_solver, .steps = nsteps, .t_eps = o->sample_eps});
    if (!r.samples || o->levels == 0) return r.samples;
    double k = (double)o->levels; /* back onto the pixel grid's scale */
    return ed_clamp(ed_mul_scalar(ed_add_scalar(ed_mul_scalar(r.samples, k), -0.5), 1 / (k - 1)), 0, 1);
}

ed_node *ed_score_sde_log_prob(ed_graph *g, ed_node *x, const ed_score_sde_opts *o)
{
    if (!g || !x || ed_graph_error(g)) return NULL;
    ed_model model = {denoise_fn, (void *)o, ED_PRED_EPS};
    ed_pf_nll_opts po = {.process = ed_score_sde_process(o),
                         .method = ED_ODE_RK4,
                         .steps = (int)o->nll_steps,
                         .t_eps = o->train_eps,
                         .probe = o->probe};
    ed_node *lp = ed_pf_log_prob(g, &model, dequantize(g, x, o), &po);
    int64_t dim = ed_shape_numel(x->shape) / x->shape.dim[0];
    return o->levels ? ed_add_scalar(lp, -(double)dim * log((double)o->levels)) : lp;
}

/* ---- the registry entry ------------------------------------------------------------- */

/* Vectors of at most this many numbers (the 2-D sets) get the small network: with the
 * 8000-step default run it samples moons near the floor in about a minute of CPU, where
 * the full one at 1000 steps stays far off (bench/HISTORY.md). */
#define SMALL_DATA_DIM 16

static void model_defaults(ed_gen_model *m)
{
    ed_score_sde_defaults(&m->opts.sde);
    m->opts.sde.levels = m->levels;
    if (m->sample.rank == 1 && m->sample.dim[0] <= SMALL_DATA_DIM)
        m->opts.sde.net.hidden = 64, m->opts.sde.net.layers = 2;
}

static int model_check(const ed_gen_model *m)
{
    const ed_score_sde_opts *o = &m->opts.sde;
    if (m->obs_size) return ed_fail("model score_sde is unconditional: the data have observations");
    if (o->sde == ED_SDE_VE && !(o->sigma_min < o->sigma_max))
        return ed_fail("model score_sde: sigma_min must be below sigma_max");
    if (o->sde == ED_SDE_VP && !(o->beta_min <= o->beta_max))
        return ed_fail("model score_sde: beta_min must not exceed beta_max");
    if (!(o->sample_eps < 1 && o->train_eps < 1))
        return ed_fail("model score_sde: train_eps and sample_eps must be below 1");
    return ED_OK;
}

static ed_node *model_loss(ed_graph *g, const ed_gen_model *m, const ed_batch *b)
{
    return ed_score_sde_loss(g, b->x, &m->opts.sde);
}

static ed_node *model_sample(ed_graph *g, const ed_gen_model *m, int64_t n, ed_node *obs, ed_node *labels,
                             const ed_gen_sample_opts *so)
{
    (void)obs, (void)labels;
    if (so->has_guidance || so->has_eta)
        return ed_graph_fail(g,
                             "sample score_sde: no guidance or eta (an unconditional model with samplers pc|em|ode)");
    ed_shape s = {.rank = m->sample.rank + 1};
    for (int i = 0; i < m->sample.rank; i++) s.dim[i + 1] = m->sample.dim[i];
    return ed_score_sde_sample(g, n, s, so->sampler, so->steps, &m->opts.sde);
}

/* nll: -log p in nats per sample by the PF-ODE (the dequantisation bound for pixels). */
static int model_figures(ed_graph *g, const ed_gen_model *m, const ed_batch *b, ed_node **out)
{
    ed_node *nll = ed_neg(ed_score_sde_log_prob(g, b->x, &m->opts.sde));
    out[0] = nll;
    out[1] = ed_mul_scalar(nll, 1 / ((double)ed_gen_model_dim(m) * log(2)));
    return ed_graph_error(g) ? ED_ERR : ED_OK;
}

const ed_model_def ed_score_sde_model = {
    .name = "score_sde",
    .summary = "score SDE (VP or VE), eps-matching DSM, predictor-corrector / Euler-Maruyama / PF-ODE sampling, "
               "PF-ODE likelihood",
    .options = ed_score_sde_options,
    .noptions = ED_SCORE_SDE_NOPTIONS,
    .defaults = model_defaults,
    .check = model_check,
    .nsteps = 1,
    .steps = {{.name = "train", .loss = model_loss}},
    .default_steps = 8000,
    .sample = model_sample,
    .samplers = "pc|em|ode",
    .nfigures = 2,
    .figures = {{"nll", "nats/sample", ED_FIGURE_MEAN}, {"bits_per_dim", "bits/dim", ED_FIGURE_MEAN}},
    .figure_nodes = model_figures,
};
