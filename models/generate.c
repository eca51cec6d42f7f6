#include "models/generate.h"
#include "models/samplers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* What the denoise callback needs: the model, the outer observations and labels, and
 * the guidance scale. */
typedef struct {
    const ed_gen_model *m;
    ed_node *obs;    /* outer graph, or NULL */
    ed_node *labels; /* outer graph, or NULL */
    double guidance;
} denoise_ctx;

static ed_node *denoise(ed_graph *body, ed_node *x, const ed_denoise_in *in, void *p)
{
    const denoise_ctx *c = p;
    ed_node *cond = c->obs ? ed_loop_capture(in->loop, c->obs) : NULL;
    ed_node *labels = c->labels ? ed_loop_capture(in->loop, c->labels) : NULL;
    ed_node *out = ed_gen_model_denoise(body, c->m, x, in->t, cond, labels);
    if ((!cond && !labels) || c->guidance == 1) return out;
    /* classifier-free guidance: null + s (cond - null), the null condition and class */
    ed_node *null = ed_gen_model_denoise(body, c->m, x, in->t, NULL, NULL);
    return ed_add(null, ed_mul(ed_scalar(body, x->dtype, c->guidance), ed_sub(out, null)));
}

const char *ed_gen_model_samplers(const ed_gen_model *m)
{
    const char *s = m->def->sampling ? ed_gen_model_sampling(m).samplers : m->def->samplers;
    return s ? s : "";
}

static const ed_ode_method fm_methods[ED_FM_SOLVER_COUNT] = {ED_ODE_EULER, ED_ODE_MIDPOINT, ED_ODE_HEUN, ED_ODE_RK4};

static ed_sample_result sample_fm(ed_graph *g, const ed_gen_model *m, const ed_fm_opts *f, const ed_model *model,
                                  const ed_sample_spec *spec, const char *name, int64_t steps, bool eta)
{
    ed_ode_opts o = {.process = {.kind = ED_PROC_FLOW, .flow_sigma_min = f->sigma_min},
                     .method = fm_methods[f->solver],
                     .steps = (int)(steps ? steps : f->sample_steps)};
    if (name && *name && !ed_ode_method_parse(name, &o.method)) {
        ed_graph_fail(g, "sample %s: unknown sampler '%s' (samplers: %s)", m->def->name, name,
                      ed_gen_model_samplers(m));
        return (ed_sample_result){0};
    }
    if (eta) {
        ed_graph_fail(g, "sample %s: eta applies to the ddim sampler only", m->def->name);
        return (ed_sample_result){0};
    }
    return ed_sample_ode(g, model, spec, &o);
}

static ed_sample_result sample_diffusion(ed_graph *g, const ed_gen_model *m, const ed_denoiser_sampling *ds,
                                         const ed_model *model, const ed_sample_spec *spec, const char *name,
                                         int64_t steps, const ed_gen_sample_opts *o)
{
    const ed_diffusion_opts *d = ds->diffusion;
    if (!name || !*name) name = ds->default_sampler;
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
        ed_ddim_opts p = {.beta = beta,
                          .steps = (int)s,
                          .eta = o->has_eta ? o->eta : d->eta,
                          .clip_x0 = d->clip_x0 > 0,
                          .clip = d->clip_x0};
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
    const char *who = m->def->name;
    ed_denoiser_sampling ds = ed_gen_model_sampling(m);
    if (o->has_eta && !(o->eta >= 0 && o->eta <= 1))
        return ed_graph_fail(g, "sample %s: eta must be in [0, 1] (0: deterministic ddim, 1: ddpm's noise), got %g",
                             who, o->eta);
    if (o->has_guidance && !obs && !labels)
        return ed_graph_fail(
            g, "sample %s: guidance needs a conditional model (this one has no observations or labels)", who);
    if (o->has_guidance && !(o->guidance >= 0))
        return ed_graph_fail(g, "sample %s: the guidance scale must be >= 0", who);
    denoise_ctx ctx = {m, obs, labels, o->has_guidance ? o->guidance : ds.guidance};
    if (ctx.guidance != 1 && !ds.guidable)
        return ed_graph_fail(g,
                             "sample %s: guidance %g needs a model trained with a null condition "
                             "(cond_dropout > 0); this one was trained without",
                             who, ctx.guidance);
    ed_pred pred;
    if (!ed_pred_parse(ds.pred, &pred)) return ed_graph_fail(g, "sample %s: unknown prediction", who);
    ed_model model = {denoise, &ctx, pred};
    ed_sample_spec spec = {.dtype = ED_F32};
    spec.shape.rank = m->sample.rank + 1;
    spec.shape.dim[0] = n;
    for (int i = 0; i < m->sample.rank; i++) spec.shape.dim[i + 1] = m->sample.dim[i];
    ed_sample_result r = ds.fm ? sample_fm(g, m, ds.fm, &model, &spec, o->sampler, o->steps, o->has_eta)
                               : sample_diffusion(g, m, &ds, &model, &spec, o->sampler, o->steps, o);
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
                             obs ? "observations given to an unconditional model"
                                 : "a conditional model needs observations");
    if (obs && (obs->shape.rank != 2 || obs->shape.dim[0] != n || obs->shape.dim[1] != m->obs_size))
        return ed_graph_fail(g, "sample %s: observations must be [%lld, %lld]", who, (long long)n,
                             (long long)m->obs_size);
    if ((labels != NULL) != (m->classes > 0))
        return ed_graph_fail(g, "sample %s: %s", who,
                             labels ? "labels given to a model that is not class-conditional"
                                    : "a class-conditional model needs labels");
    if (labels && (labels->dtype != ED_I32 || labels->shape.rank != 1 || labels->shape.dim[0] != n))
        return ed_graph_fail(g, "sample %s: labels must be i32[%lld]", who, (long long)n);
    if (!m->def->sample) return ed_graph_fail(g, "sample %s: this model cannot sample", who);
    /* samples come from the eval-mode network (batch norm's running statistics, no dropout) */
    bool training = ed_graph_training(g);
    ed_dtype weights = ed_graph_weight_dtype(g);
    if (!ed_graph_set_weight_dtype(g, d.weights))
        return ed_graph_fail(g, "sample %s: weights must be f32, bf16 or f16, got %s", who, ed_dtype_name(d.weights));
    ed_graph_set_training(g, false);
    ed_node *x = m->def->sample(g, m, n, obs, labels, &d);
    ed_graph_set_training(g, training);
    ed_graph_set_weight_dtype(g, weights);
    return x;
}

const char *ed_gen_sampler_name(const ed_gen_model *m, const ed_gen_sample_opts *o, char *buf, size_t size)
{
    char solver[64];
    if (o && o->sampler && *o->sampler) snprintf(buf, size, "%s", o->sampler);
    else if ((m->def->denoise || m->def->sampling) && ed_gen_model_sampling(m).fm)
        snprintf(buf, size, "%s", ed_gen_model_get(m, "solver", solver, sizeof solver));
    else if (m->def->denoise || m->def->sampling) snprintf(buf, size, "%s", ed_gen_model_sampling(m).default_sampler);
    else if (ed_gen_model_get(m, "sampler", solver, sizeof solver)) snprintf(buf, size, "%s", solver); /* score_sde */
    else snprintf(buf, size, "%s", m->def->name);
    return buf;
}

/* ---- drawing samples in batches ------------------------------------------------------ */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Rows [from, from + rows) of t into dst (rows wrap around t's first axis). */
static void copy_rows(ed_tensor *dst, const ed_tensor *t, int64_t from, int64_t rows)
{
    int64_t n = t->shape.dim[0], row = ed_tensor_numel(t) / n * (int64_t)ed_dtype_size(t->dtype);
    for (int64_t r = 0; r < rows; r++)
        memcpy((char *)dst->data + r * row, (const char *)t->data + (from + r) % n * row, (size_t)row);
}

static int check_obs(const ed_gen_model *m, int64_t n, const ed_tensor *obs)
{
    if (m->obs_size == 0 && obs) return ed_fail("model %s is unconditional; it takes no observations", m->def->name);
    if (m->obs_size > 0 && (!obs || obs->dtype != ED_F32 || obs->shape.rank != 2 || obs->shape.dim[0] != n ||
                            obs->shape.dim[1] != m->obs_size))
        return ed_fail("model %s needs f32 observations [%lld, %lld]", m->def->name, (long long)n,
                       (long long)m->obs_size);
    int64_t bad = obs ? ed_tensor_first_nonfinite(obs) : -1;
    if (bad >= 0)
        return ed_fail("observation %lld (row %lld, column %lld) is %g; observations must be finite", (long long)bad,
                       (long long)(bad / m->obs_size), (long long)(bad % m->obs_size), ((const float *)obs->data)[bad]);
    return ED_OK;
}

/* A diverged run's params give NaN samples: refused up front, naming the param. */
static int check_params(const ed_gen_model *m, const ed_store *st)
{
    if (ed_store_check_finite(st) == ED_OK) return ED_OK;
    char msg[ED_ERROR_MAX];
    snprintf(msg, sizeof msg, "%s", ed_last_error());
    return ed_fail("model %s: %s; these params cannot sample (the run that wrote them diverged)", m->def->name, msg);
}

static int check_labels(const ed_gen_model *m, int64_t n, const ed_tensor *labels)
{
    const char *who = m->def->name;
    if (m->classes == 0 && labels) return ed_fail("model %s is not class-conditional; it takes no labels", who);
    if (m->classes == 0) return ED_OK;
    if (!labels || labels->dtype != ED_I32 || labels->shape.rank != 1 || labels->shape.dim[0] != n)
        return ed_fail("model %s is class-conditional: it needs labels i32 [%lld] (one class per sample)", who,
                       (long long)n);
    const int32_t *l = labels->data;
    for (int64_t i = 0; i < n; i++)
        if (l[i] < 0 || l[i] >= m->classes)
            return ed_fail("model %s: label %d (sample %lld) is outside 0..%lld", who, (int)l[i], (long long)i,
                           (long long)m->classes - 1);
    return ED_OK;
}

ed_tensor *ed_gen_class_rows(int64_t n, int64_t classes, int64_t cols)
{
    if (n < 1 || n > INT32_MAX || classes < 1 || classes > INT32_MAX || cols < 1) {
        ed_fail("class rows: n %lld, classes %lld and cols %lld must be >= 1", (long long)n, (long long)classes,
                (long long)cols);
        return NULL;
    }
    ed_tensor *t = ed_tensor_new(ED_I32, ed_shape1(n));
    if (!t) return NULL;
    int32_t *l = t->data;
    for (int64_t i = 0; i < n; i++) l[i] = (int32_t)(i / cols % classes);
    return t;
}

static ed_program *compile_sampler(const ed_gen_model *m, ed_store *st, int64_t b, const ed_gen_draw_opts *o,
                                   ed_graph **g);

ed_program *ed_gen_compile(const ed_gen_model *m, ed_store *st, int64_t batch, const ed_gen_draw_opts *o, ed_graph **g)
{
    *g = NULL;
    if (!m || !m->def || !st) {
        ed_fail("sample: no model or no params");
        return NULL;
    }
    if (batch < 1 || batch > INT32_MAX) {
        ed_fail("sample %s: the batch must be in 1..%d", m->def->name, INT32_MAX);
        return NULL;
    }
    return check_params(m, st) == ED_OK ? compile_sampler(m, st, batch, o, g) : NULL;
}

/* Each 16-bit param "X.bf16" / "X.f16" of g gets the store's f32 "X" rounded (replaced on
 * every compile, so it follows the f32 weights); the f32 entries stay as they are. */
static int narrow_weights(const ed_graph *g, ed_store *st)
{
    for (int i = 0; i < g->nnodes; i++) {
        const ed_node *p = g->nodes[i];
        if (p->op != ED_OP_PARAM || !ed_dtype_is_16bit(p->dtype)) continue;
        const char *name = p->attr.name, *dot = strrchr(name, '.');
        if (!dot) return ed_fail("sample: 16-bit weight \"%s\" has no f32 source name", name);
        char *src = strndup(name, (size_t)(dot - name));
        ed_tensor *w = src ? ed_store_get(st, src) : NULL;
        if (!w || w->dtype != ED_F32 || !ed_shape_eq(w->shape, p->shape)) {
            char t[96];
            ed_type_str(ED_F32, p->shape, t, sizeof t);
            ed_fail("sample: %s weights need the param \"%s\" as %s in the checkpoint", ed_dtype_name(p->dtype),
                    src ? src : name, t);
            free(src);
            return ED_ERR;
        }
        free(src);
        ed_tensor *h = ed_tensor_convert(w, p->dtype);
        if (!h || ed_store_put(st, name, h, false) != ED_OK) return ED_ERR;
    }
    return ED_OK;
}

/* The sampler program for b samples, its graph in *g (outputs "samples"). */
static ed_program *compile_sampler(const ed_gen_model *m, ed_store *st, int64_t b, const ed_gen_draw_opts *o,
                                   ed_graph **g)
{
    *g = ed_graph_new("sample");
    if (!*g) return NULL;
    ed_node *obs = m->obs_size > 0 ? ed_input(*g, "obs", ED_F32, ed_shape2(b, m->obs_size)) : NULL;
    ed_node *labels = m->classes > 0 ? ed_input(*g, "labels", ED_I32, ed_shape1(b)) : NULL;
    ed_node *s = ed_gen_model_sample(*g, m, b, obs, labels, &o->sampler);
    if (s) ed_output(*g, "samples", s);
    if (ed_graph_error(*g)) {
        ed_fail("%s", ed_graph_error(*g));
        return NULL;
    }
    if (narrow_weights(*g, st) != ED_OK) return NULL;
    ed_compile_opts co = {.backend = o->backend, .seed = o->seed, .passes = o->passes, .pass_opts = o->pass_opts};
    return ed_compile(*g, st, &co);
}

static void report(const ed_gen_draw_opts *o, const ed_gen_progress *p)
{
    if (o->progress) o->progress(o->progress_ctx, p);
}

/* Per-call feeds whose rows follow the samples: row k*batch onwards of the caller's
 * tensor (wrapping) copied into the program's input. */
typedef struct {
    const char *name;
    const ed_tensor *all; /* [n, ...] from the caller, or NULL */
    ed_tensor *batch;     /* [batch, ...] fed to each call */
} row_feed;

/* The calls of a draw into res [n, ...]: call k feeds rows k*batch on of each row feed. */
static int draw_batches(ed_program *p, row_feed *rf, int nrf, ed_tensor *res, ed_gen_progress *pr,
                        const ed_gen_draw_opts *o)
{
    double t0 = now_s();
    size_t row = ed_tensor_bytes(res) / (size_t)pr->n;
    ed_feed feeds[2];
    int nfeeds = 0;
    for (int i = 0; i < nrf; i++)
        if (rf[i].all) feeds[nfeeds++] = (ed_feed){rf[i].name, rf[i].batch};
    for (int64_t done = 0; done < pr->n; done += pr->batch) {
        int64_t rows = pr->n - done < pr->batch ? pr->n - done : pr->batch;
        /* a short last batch repeats rows, then drops them */
        for (int i = 0; i < nrf; i++)
            if (rf[i].all) copy_rows(rf[i].batch, rf[i].all, done, pr->batch);
        if (ed_run(p, feeds, nfeeds) != ED_OK) return ED_ERR;
        memcpy((char *)res->data + (size_t)done * row, ed_program_output(p, "samples")->data, (size_t)rows * row);
        pr->done = done + rows;
        pr->draw_s = now_s() - t0;
        report(o, pr);
    }
    return ED_OK;
}

/* A tensor like t with `rows` on the first axis (NULL for NULL t). */
static ed_tensor *batch_like(const ed_tensor *t, int64_t rows)
{
    if (!t) return NULL;
    ed_shape s = t->shape;
    s.dim[0] = rows;
    return ed_tensor_new(t->dtype, s);
}

int ed_gen_draw(const ed_gen_model *m, ed_store *st, int64_t n, const ed_tensor *obs, const ed_tensor *labels,
                const ed_gen_draw_opts *opts, ed_tensor **out)
{
    const ed_gen_draw_opts o = opts ? *opts : (ed_gen_draw_opts){0};
    *out = NULL;
    if (!m || !m->def || !st) return ed_fail("sample: no model or no params");
    if (n < 1 || n > INT32_MAX) return ed_fail("sample %s: the sample count must be in 1..%d", m->def->name, INT32_MAX);
    if (o.batch < 0) return ed_fail("sample %s: the batch must be >= 1", m->def->name);
    if (check_params(m, st) != ED_OK || check_obs(m, n, obs) != ED_OK || check_labels(m, n, labels) != ED_OK)
        return ED_ERR;
    ed_gen_progress pr = {.n = n, .batch = o.batch ? o.batch : ED_GEN_DEFAULT_BATCH};
    if (pr.batch > n) pr.batch = n;
    pr.calls = (n + pr.batch - 1) / pr.batch;
    double t0 = now_s();
    ed_graph *g = NULL;
    ed_program *p = compile_sampler(m, st, pr.batch, &o, &g);
    row_feed rf[2] = {{"obs", obs, p ? batch_like(obs, pr.batch) : NULL},
                      {"labels", labels, p ? batch_like(labels, pr.batch) : NULL}};
    ed_shape full = {.rank = m->sample.rank + 1, .dim = {n}};
    for (int i = 0; i < m->sample.rank; i++) full.dim[i + 1] = m->sample.dim[i];
    ed_tensor *res = p ? ed_tensor_new(ED_F32, full) : NULL;
    int status = p && res && (!obs || rf[0].batch) && (!labels || rf[1].batch) ? ED_OK : ED_ERR;
    pr.compile_s = now_s() - t0;
    if (status == ED_OK) {
        report(&o, &pr);
        status = draw_batches(p, rf, 2, res, &pr, &o);
    }
    int64_t bad = status == ED_OK ? ed_tensor_first_nonfinite(res) : -1;
    if (bad >= 0) /* finite params can still overflow (a run at a huge lr): never hand out NaN */
        status = ed_fail("sample %s: the samples hold non-finite values (the first at sample %lld); the params or the "
                         "sampler settings do not give usable samples",
                         m->def->name, (long long)(bad / (ed_tensor_numel(res) / n)));
    if (status == ED_OK) {
        *out = res;
        res = NULL;
    }
    ed_tensor_free(res);
    for (int i = 0; i < 2; i++) ed_tensor_free(rf[i].batch);
    ed_program_free(p);
    ed_graph_free(g);
    return status;
}

int ed_gen_fresh_data(const ed_checkpoint *ck, const char *spec, int64_t n, uint64_t seed, uint64_t k, ed_dataset *d)
{
    /* Seeds apart from the training data's, and apart for the two draws of a floor. */
    return ed_dataset_open(d, spec, n, ck->data_seed + 1 + 2 * seed + k);
}
