#include "models/generate.h"
#include "models/samplers.h"

#include <string.h>

/* What the denoise callback needs: the model, the outer observations and the scale. */
typedef struct {
    const ed_gen_model *m;
    ed_node *obs; /* outer graph, or NULL */
    double guidance;
} denoise_ctx;

static ed_node *denoise(ed_graph *body, ed_node *x, const ed_denoise_in *in, void *p)
{
    const denoise_ctx *c = p;
    ed_node *cond = c->obs ? ed_loop_capture(in->loop, c->obs) : NULL;
    ed_node *out = ed_gen_model_denoise(body, c->m, x, in->t, cond);
    if (!cond || c->guidance == 1) return out;
    ed_node *null = ed_gen_model_denoise(body, c->m, x, in->t, NULL);
    return ed_add(null, ed_mul(ed_scalar(body, x->dtype, c->guidance), ed_sub(out, null)));
}

static bool is_fm(const ed_gen_model *m) { return m->def->pred[0] == 'v'; }

const char *ed_gen_model_samplers(const ed_gen_model *m) { return m->def->samplers ? m->def->samplers : ""; }

static const ed_ode_method fm_methods[ED_FM_SOLVER_COUNT] = {ED_ODE_EULER, ED_ODE_MIDPOINT, ED_ODE_HEUN, ED_ODE_RK4};

static ed_sample_result sample_fm(ed_graph *g, const ed_gen_model *m, const ed_model *model,
                                  const ed_sample_spec *spec, const char *name, int64_t steps, bool eta)
{
    const ed_fm_opts *f = &m->opts.fm;
    ed_ode_opts o = {.process = {.kind = ED_PROC_FLOW, .flow_sigma_min = f->sigma_min},
                     .method = fm_methods[f->solver],
                     .steps = (int)(steps ? steps : f->sample_steps)};
    if (name && *name && !ed_ode_method_parse(name, &o.method)) {
        ed_graph_fail(g, "sample %s: unknown sampler '%s' (samplers: %s)", m->def->name, name, ed_gen_model_samplers(m));
        return (ed_sample_result){0};
    }
    if (eta) {
        ed_graph_fail(g, "sample %s: eta applies to the ddim sampler only", m->def->name);
        return (ed_sample_result){0};
    }
    return ed_sample_ode(g, model, spec, &o);
}

static ed_sample_result sample_diffusion(ed_graph *g, const ed_gen_model *m, const ed_model *model,
                                         const ed_sample_spec *spec, const char *name, int64_t steps,
                                         const ed_gen_sample_opts *o)
{
    const ed_diffusion_opts *d = &m->opts.diffusion;
    if (!name || !*name) name = strcmp(m->def->name, "ddpm") == 0 ? "ddpm" : "ddim";
    ed_beta_opts beta = ed_diffusion_beta_opts(d);
    if (strcmp(name, "ddpm") == 0) {
        if (steps && steps != d->timesteps) {
            ed_graph_fail(g, "sample %s: the ddpm sampler runs all %lld steps (for fewer, use the ddim sampler)",
                          m->def->name, (long long)d->timesteps);
            return (ed_sample_result){0};
        }
        if (o->has_eta) {
            ed_graph_fail(g, "sample %s: eta applies to the ddim sampler only", m->def->name);
            return (ed_sample_result){0};
        }
        ed_ddpm_opts p = {.beta = beta, .posterior_variance = true, .clip_x0 = d->clip_x0 > 0, .clip = d->clip_x0};
        return ed_sample_ddpm(g, model, spec, &p);
    }
    if (strcmp(name, "ddim") == 0) {
        int64_t s = steps ? steps : d->ddim_steps;
        if (s > d->timesteps) s = d->timesteps; /* the ddpm model's T = 100 is below ddim_steps' default */
        ed_ddim_opts p = {.beta = beta, .steps = (int)s, .eta = o->has_eta ? o->eta : d->eta,
                          .clip_x0 = d->clip_x0 > 0, .clip = d->clip_x0};
        if (steps > d->timesteps) {
            ed_graph_fail(g, "sample %s: %lld ddim steps, but the model has only %lld timesteps", m->def->name,
                          (long long)steps, (long long)d->timesteps);
            return (ed_sample_result){0};
        }
        return ed_sample_ddim(g, model, spec, &p);
    }
    ed_graph_fail(g, "sample %s: unknown sampler '%s' (samplers: %s)", m->def->name, name, ed_gen_model_samplers(m));
    return (ed_sample_result){0};
}

ed_node *ed_denoiser_sample(ed_graph *g, const ed_gen_model *m, int64_t n, ed_node *obs, ed_node *labels,
                            const ed_gen_sample_opts *o)
{
    (void)labels;
    const char *who = m->def->name;
    if (o->has_eta && o->eta < 0) return ed_graph_fail(g, "sample %s: eta must be >= 0", who);
    if (o->has_guidance && !obs)
        return ed_graph_fail(g, "sample %s: guidance needs a conditional model (this one has no observations)", who);
    if (o->has_guidance && !(o->guidance >= 0)) return ed_graph_fail(g, "sample %s: the guidance scale must be >= 0", who);
    denoise_ctx ctx = {m, obs, o->has_guidance ? o->guidance : is_fm(m) ? m->opts.fm.guidance_scale : 1};
    ed_pred pred;
    if (!ed_pred_parse(m->def->pred, &pred)) return ed_graph_fail(g, "sample %s: unknown prediction", who);
    ed_model model = {denoise, &ctx, pred};
    ed_sample_spec spec = {.dtype = ED_F32};
    spec.shape.rank = m->sample.rank + 1;
    spec.shape.dim[0] = n;
    for (int i = 0; i < m->sample.rank; i++) spec.shape.dim[i + 1] = m->sample.dim[i];
    ed_sample_result r = is_fm(m) ? sample_fm(g, m, &model, &spec, o->sampler, o->steps, o->has_eta)
                                  : sample_diffusion(g, m, &model, &spec, o->sampler, o->steps, o);
    return r.samples;
}

ed_node *ed_gen_model_sample(ed_graph *g, const ed_gen_model *m, int64_t n, ed_node *obs, ed_node *labels,
                             const ed_gen_sample_opts *o)
{
    ed_gen_sample_opts d = o ? *o : (ed_gen_sample_opts){0};
    if (!g || ed_graph_error(g)) return NULL;
    if (!m || !m->def) return ed_graph_fail(g, "sample: no model");
    const char *who = m->def->name;
    if (n < 1 || n > INT32_MAX) return ed_graph_fail(g, "sample %s: the sample count must be in 1..%d", who, INT32_MAX);
    if (d.steps < 0 || d.steps > 1000000) return ed_graph_fail(g, "sample %s: steps must be in 1..1000000", who);
    if ((obs != NULL) != (m->obs_size > 0))
        return ed_graph_fail(g, "sample %s: %s", who,
                             obs ? "observations given to an unconditional model" : "a conditional model needs observations");
    if (obs && (obs->shape.rank != 2 || obs->shape.dim[0] != n || obs->shape.dim[1] != m->obs_size))
        return ed_graph_fail(g, "sample %s: observations must be [%lld, %lld]", who, (long long)n, (long long)m->obs_size);
    if (labels && (labels->dtype != ED_I32 || labels->shape.rank != 1 || labels->shape.dim[0] != n))
        return ed_graph_fail(g, "sample %s: labels must be i32[%lld]", who, (long long)n);
    if (!m->def->sample) return ed_graph_fail(g, "sample %s: this model cannot sample", who);
    return m->def->sample(g, m, n, obs, labels, &d);
}
