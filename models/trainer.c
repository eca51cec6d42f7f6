#include "models/trainer.h"
#include "models/train_step.h"
#include "models/data_parallel.h"
#include "io/safetensors.h"
#include "runtime/comm.h"

#include <errno.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One compiled program per training step of the model (models/registry.h), all over
 * one store. An iteration runs step k repeats[k] times; run r of step k in iteration i
 * is that program's call i * repeats[k] + r and draws batch i * runs + (the runs before
 * it in the iteration), so a single-step model's call and batch are both i. */
struct ed_trainer {
    ed_gen_model model;
    ed_trainer_opts o;
    const ed_dataset *d;
    int nsteps;
    ed_graph *g[ED_MAX_STEPS];
    ed_program *p[ED_MAX_STEPS];
    int64_t repeats[ED_MAX_STEPS];
    int64_t runs; /* program calls per iteration, all steps */
    double losses[ED_MAX_STEPS];
    ed_dataset own_data; /* d points here once the trainer owns its data */
    ed_store *st;
    /* Data parallel (runtime/comm.h): this rank of `world`; each program reads `local`
     * = batch / world rows, this rank's slice of the global batch drawn into xg, og, lg. */
    int rank, world;
    int64_t local;
    ed_tensor *xb, *ob, *lb;
    ed_tensor *xg, *og, *lg;
    int64_t step;
    double loss;
};

static const char *shape_text(ed_shape s, char *buf, size_t size)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < s.rank && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s%lld", i ? "," : "", (long long)s.dim[i]);
    return buf;
}

static int check_fit(const ed_gen_model *m, const ed_dataset *d)
{
    ed_shape s = ed_dataset_sample_shape(d);
    int64_t obs = ed_dataset_obs_size(d);
    if (ed_shape_eq(s, m->sample) && obs == m->obs_size) return ED_OK;
    char a[96], b[96];
    return ed_fail("model %s is for samples [%s] with %lld observation features; data '%s' has samples [%s] "
                   "with %lld",
                   m->def->name, shape_text(m->sample, a, sizeof a), (long long)m->obs_size, d->spec,
                   shape_text(s, b, sizeof b), (long long)obs);
}

static const char *const lr_schedules[ED_LR_COUNT] = {"constant", "cosine"};

const char *ed_lr_schedule_name(ed_lr_schedule s) { return (unsigned)s < ED_LR_COUNT ? lr_schedules[s] : "?"; }

bool ed_lr_schedule_parse(const char *s, ed_lr_schedule *out)
{
    for (int i = 0; i < ED_LR_COUNT; i++)
        if (s && strcmp(s, lr_schedules[i]) == 0) {
            *out = (ed_lr_schedule)i;
            return true;
        }
    return false;
}

/* Step k's optimizer state prefix: "opt." for the first step (the names single-step
 * checkpoints have always had), "opt.<step>." for the others. */
static void state_prefix(const ed_gen_model *m, int k, char *buf, size_t size)
{
    if (k == 0) snprintf(buf, size, "opt.");
    else snprintf(buf, size, "opt.%s.", m->def->steps[k].name);
}

/* Step k's inputs for a batch of b rows and its loss on them. */
static ed_node *step_loss(ed_graph *g, const ed_gen_model *m, int k, int64_t b)
{
    ed_batch in = {.x = ed_input(g, "x", ED_F32, ed_gen_model_batch_shape(m, b))};
    if (m->obs_size) in.obs = ed_input(g, "obs", ED_F32, ed_shape2(b, m->obs_size));
    if (m->classes) in.labels = ed_input(g, "labels", ED_I32, ed_shape1(b));
    return ed_gen_model_step_loss(g, m, k, &in);
}

/* On one of several ranks, the step's per-row draws become this rank's rows of the
 * whole batch's (models/data_parallel.h), told apart on a probe built for 2 * local. */
static int split_draws(ed_graph *g, const ed_gen_model *m, int k, int64_t local, int rank, int world)
{
    if (world <= 1) return ED_OK;
    ed_graph *probe = ed_graph_new("probe");
    if (!probe) {
        ed_graph_fail(g, "out of memory");
        return ED_ERR;
    }
    if (!step_loss(probe, m, k, 2 * local)) {
        ed_graph_fail(g, "data parallel: %s", ed_graph_error(probe));
        ed_graph_free(probe);
        return ED_ERR;
    }
    int rc = ed_dp_split_draws(g, probe, local, rank, world);
    ed_graph_free(probe);
    return rc;
}

static ed_graph *build_step(const ed_gen_model *m, const ed_trainer_opts *o, int k, int rank, int world)
{
    char name[128], prefix[64];
    if (k == 0) snprintf(name, sizeof name, "train_%s", m->def->name);
    else snprintf(name, sizeof name, "train_%s_%s", m->def->name, m->def->steps[k].name);
    ed_graph *g = ed_graph_new(name);
    if (!g) return NULL;
    int64_t local = o->batch / world;
    ed_node *loss = step_loss(g, m, k, local);
    if (loss) split_draws(g, m, k, local, rank, world);
    state_prefix(m, k, prefix, sizeof prefix);
    ed_train_opts to = {.optim = {.kind = ED_OPT_ADAM, .lr = o->lr, .prefix = prefix},
                        .groups = m->def->steps[k].groups,
                        .allreduce_bucket = world > 1 ? (o->bucket > 0 ? o->bucket : ED_TRAIN_DEFAULT_BUCKET) : 0};
    if (o->lr_schedule == ED_LR_COSINE) {
        /* the step's own counter runs `repeats` times per iteration (a critic's n_critic) */
        int64_t total = o->steps * ed_gen_model_step_repeats(m, k);
        to.optim.schedule = (ed_schedule){
            .kind = ED_SCHED_COSINE,
            /* one step at full lr before the decay, as every checkpoint so far was trained;
               none when the whole run is one step */
            .warmup_steps = total > 1 ? 1 : 0,
            .total_steps = total,
            .min_ratio = 0.01};
    }
    if (m->def->steps[k].optim) m->def->steps[k].optim(m, &to.optim);
    to.ema_decay = ed_gen_model_ema_decay(m);
    to.ema_warmup = true;
    if (ed_graph_error(g) || ed_train_step(g, loss, &to) != ED_OK || ed_gen_model_step_finish(g, m, k) != ED_OK) {
        ed_fail("%s", ed_graph_error(g));
        ed_graph_free(g);
        return NULL;
    }
    return g;
}

/* A resumed store must hold exactly the graph's params and state (compiling added
 * nothing) and its step counter must agree with the metadata. */
static bool has_leaf(const ed_trainer *t, const char *name)
{
    for (int k = 0; k < t->nsteps; k++)
        if (ed_graph_leaf(t->g[k], ED_OP_PARAM, name) || ed_graph_leaf(t->g[k], ED_OP_STATE, name)) return true;
    return false;
}

static int check_resumed_store(const ed_trainer *t, int count_before)
{
    int count = ed_store_count(t->st);
    if (count != count_before)
        return ed_fail("the checkpoint lacks '%s' (and %d more), which model %s needs: it was written by "
                       "another model or version",
                       ed_store_name(t->st, count_before), count - count_before - 1, t->model.def->name);
    for (int i = 0; i < count; i++) {
        const char *name = ed_store_name(t->st, i);
        if (!has_leaf(t, name) && !ed_frozen_owns(&t->model, name))
            return ed_fail("the checkpoint holds '%s', which model %s does not use", name, t->model.def->name);
    }
    for (int k = 0; k < t->nsteps; k++) {
        char prefix[64], key[80];
        state_prefix(&t->model, k, prefix, sizeof prefix);
        snprintf(key, sizeof key, "%sstep", prefix);
        const ed_tensor *s = ed_store_get(t->st, key);
        int64_t want = t->step * t->repeats[k];
        if (!s || s->dtype != ED_I32 || s->shape.rank != 0 || ((const int32_t *)s->data)[0] != (int32_t)want)
            return ed_fail("the optimizer's step counter %s disagrees with train.step = %lld", key, (long long)t->step);
    }
    return ED_OK;
}

static int check_opts(const ed_trainer_opts *o, int world)
{
    if (!(o->batch >= 1 && o->batch <= (INT64_C(1) << 24)))
        return ed_fail("the batch size must be in [1, 16777216], got %lld", (long long)o->batch);
    if (o->batch % world != 0)
        return ed_fail("the batch %lld does not split evenly over %d ranks: give a multiple of %d", (long long)o->batch,
                       world, world);
    if (o->bucket < 0) return ed_fail("the allreduce bucket must be >= 0 values, got %lld", (long long)o->bucket);
    if (!(o->lr > 0 && isfinite(o->lr))) return ed_fail("the learning rate must be finite and > 0, got %g", o->lr);
    if ((unsigned)o->lr_schedule >= ED_LR_COUNT)
        return ed_fail("unknown learning-rate schedule %d", (int)o->lr_schedule);
    if (o->lr_schedule == ED_LR_COSINE && o->steps < 1)
        return ed_fail("a cosine learning-rate schedule needs the run's planned steps");
    return ED_OK;
}

/* A fresh run's run_steps_option left at 0 becomes its planned steps, so the checkpoint
 * keeps the number the steps were built with (a resumed run keeps it as it was). */
static int follow_run_steps(ed_gen_model *m, const ed_trainer_opts *o)
{
    const char *name = m->def->run_steps_option;
    char buf[64];
    if (!name) return ED_OK;
    const char *v = ed_gen_model_get(m, name, buf, sizeof buf);
    if (!v) return ED_ERR;
    if (strcmp(v, "0") != 0) return ED_OK;
    if (o->steps < 1)
        return ed_fail("model %s: %s 0 follows the run's planned steps, and this run has none (give --%s N)",
                       m->def->name, name, name);
    snprintf(buf, sizeof buf, "%lld", (long long)o->steps);
    return ed_gen_model_set(m, name, buf);
}

/* st: NULL for a fresh run, else a checkpoint's store (taken over, freed on failure). */
static ed_trainer *make(const ed_gen_model *m, const ed_dataset *d, const ed_trainer_opts *o, ed_store *st,
                        int64_t step)
{
    if (check_opts(o, ed_comm_size()) != ED_OK || check_fit(m, d) != ED_OK) {
        ed_store_free(st);
        return NULL;
    }
    ed_trainer *t = calloc(1, sizeof *t);
    if (!t) {
        ed_store_free(st);
        ed_fail("out of memory");
        return NULL;
    }
    t->model = *m;
    t->o = *o;
    t->d = d;
    t->step = step;
    t->loss = NAN;
    t->rank = ed_comm_rank();
    t->world = ed_comm_size();
    t->local = o->batch / t->world;
    bool resumed = st != NULL;
    t->st = st ? st : ed_store_new(o->seed);
    /* A fresh run reads its frozen groups and the settings it computes from the data
     * before anything is built; a resumed one has both in its checkpoint. */
    if (!resumed && (follow_run_steps(&t->model, o) != ED_OK || ed_frozen_load(&t->model, t->st) != ED_OK ||
                     (m->def->prepare && m->def->prepare(&t->model, t->st, d, o->seed, o->backend) != ED_OK)))
        goto fail;
    int count_before = ed_store_count(t->st);
    t->nsteps = m->def->nsteps;
    for (int k = 0; k < t->nsteps; k++) {
        t->repeats[k] = ed_gen_model_step_repeats(m, k);
        t->runs += t->repeats[k];
        t->losses[k] = NAN;
        t->g[k] = build_step(&t->model, o, k, t->rank, t->world);
        if (!t->g[k]) goto fail;
        /* Step k's seed: the run's seed for the first step (as single-step runs have
         * always drawn), then one more per step so two steps never share a stream. */
        t->p[k] = ed_compile(
            t->g[k], t->st,
            &(ed_compile_opts){
                .backend = o->backend, .seed = o->seed + (uint64_t)k, .passes = o->passes, .pass_opts = o->pass_opts});
        if (!t->p[k]) goto fail;
        ed_program_set_calls(t->p[k], (uint64_t)(step * t->repeats[k]));
    }
    if (resumed && check_resumed_store(t, count_before) != ED_OK) goto fail;
    t->xb = ed_tensor_new(ED_F32, ed_gen_model_batch_shape(m, t->local));
    if (m->obs_size) t->ob = ed_tensor_new(ED_F32, ed_shape2(t->local, m->obs_size));
    if (m->classes) t->lb = ed_tensor_new(ED_I32, ed_shape1(t->local));
    bool split = t->world > 1;
    if (split) t->xg = ed_tensor_new(ED_F32, ed_gen_model_batch_shape(m, o->batch));
    if (split && m->obs_size) t->og = ed_tensor_new(ED_F32, ed_shape2(o->batch, m->obs_size));
    if (split && m->classes) t->lg = ed_tensor_new(ED_I32, ed_shape1(o->batch));
    if (!t->xb || (m->obs_size && !t->ob) || (m->classes && !t->lb) || (split && !t->xg) ||
        (split && m->obs_size && !t->og) || (split && m->classes && !t->lg)) {
        ed_fail("out of memory");
        goto fail;
    }
    return t;
fail:
    ed_trainer_free(t);
    return NULL;
}

ed_trainer *ed_trainer_new(const ed_gen_model *m, const ed_dataset *d, const ed_trainer_opts *o)
{
    return make(m, d, o, NULL, 0);
}

ed_trainer *ed_trainer_resume(ed_checkpoint *ck, const ed_dataset *d, const ed_trainer_opts *o)
{
    ed_store *st = ck->store;
    ck->store = NULL;
    if (!st) {
        ed_fail("the checkpoint has no store (already resumed?)");
        return NULL;
    }
    uint64_t fp = ed_dataset_fingerprint(d);
    if (check_fit(&ck->model, d) != ED_OK) { /* the clearer message when the shapes differ */
        ed_store_free(st);
        return NULL;
    }
    if (fp != ck->data_fingerprint) {
        ed_store_free(st);
        ed_fail(
            "the data '%s' is not what the checkpoint was trained on (fingerprint %016llx, now %016llx): it changed",
            d->spec, (unsigned long long)ck->data_fingerprint, (unsigned long long)fp);
        return NULL;
    }
    ed_trainer *t = make(&ck->model, d, o, st, ck->step);
    if (t) t->loss = ck->loss;
    return t;
}

void ed_trainer_free(ed_trainer *t)
{
    if (!t) return;
    for (int k = 0; k < t->nsteps; k++) {
        ed_program_free(t->p[k]);
        ed_graph_free(t->g[k]);
    }
    ed_store_free(t->st);
    ed_tensor_free(t->xb);
    ed_tensor_free(t->ob);
    ed_tensor_free(t->lb);
    ed_tensor_free(t->xg);
    ed_tensor_free(t->og);
    ed_tensor_free(t->lg);
    ed_dataset_free(&t->own_data);
    free(t);
}

int ed_trainer_take_data(ed_trainer *t, ed_dataset *d)
{
    if (t->d != d) return ed_fail("the trainer reads other data than '%s'", d->spec);
    t->own_data = *d;
    t->d = &t->own_data;
    *d = (ed_dataset){0};
    return ED_OK;
}

/* Rows [rank * local, (rank + 1) * local) of the global batch's rows in a tensor of them. */
static void copy_rows(ed_tensor *mine, const ed_tensor *all, int rank)
{
    size_t bytes = ed_tensor_bytes(mine);
    memcpy(mine->data, (const char *)all->data + (size_t)rank * bytes, bytes);
}

/* Batch k into xb, ob, lb: the whole batch, or on one of several ranks its slice of it
 * (the whole batch is drawn, so the ranks' rows are the one-process batch exactly). */
static int draw_batch(ed_trainer *t, uint64_t k)
{
    bool split = t->world > 1;
    ed_tensor *x = split ? t->xg : t->xb, *o = split ? t->og : t->ob, *l = split ? t->lg : t->lb;
    if (ed_dataset_batch(t->d, t->o.seed, k, x, o) != ED_OK) return ED_ERR;
    if (l && ed_dataset_batch_labels(t->d, t->o.seed, k, l) != ED_OK) return ED_ERR;
    if (!split) return ED_OK;
    copy_rows(t->xb, t->xg, t->rank);
    if (t->ob) copy_rows(t->ob, t->og, t->rank);
    if (t->lb) copy_rows(t->lb, t->lg, t->rank);
    return ED_OK;
}

int ed_trainer_step(ed_trainer *t, double *loss)
{
    int64_t batch = t->step * t->runs;
    for (int k = 0; k < t->nsteps; k++) {
        for (int64_t r = 0; r < t->repeats[k]; r++, batch++) {
            if (draw_batch(t, (uint64_t)batch) != ED_OK) return ED_ERR;
            ed_feed feeds[3] = {{"x", t->xb}};
            int nfeeds = 1;
            if (t->ob) feeds[nfeeds++] = (ed_feed){"obs", t->ob};
            if (t->lb) feeds[nfeeds++] = (ed_feed){"labels", t->lb};
            if (ed_run(t->p[k], feeds, nfeeds) != ED_OK) return ED_ERR;
            t->losses[k] = ed_tensor_get(ed_program_output(t->p[k], "loss"), 0);
        }
    }
    t->loss = t->losses[0];
    t->step++;
    if (loss) *loss = t->loss;
    return ED_OK;
}

int ed_trainer_step_losses(const ed_trainer *t, double *losses)
{
    for (int k = 0; k < t->nsteps; k++) losses[k] = t->losses[k];
    return t->nsteps;
}

int64_t ed_trainer_steps_done(const ed_trainer *t) { return t->step; }
const ed_gen_model *ed_trainer_model(const ed_trainer *t) { return &t->model; }
const ed_store *ed_trainer_store(const ed_trainer *t) { return t->st; }
const ed_program *ed_trainer_program(const ed_trainer *t) { return t->p[0]; }
const ed_dataset *ed_trainer_data(const ed_trainer *t) { return t->d; }
const ed_trainer_opts *ed_trainer_options(const ed_trainer *t) { return &t->o; }

/* ---- checkpoints ------------------------------------------------------------------ */

static int meta_setf(ed_meta *m, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int meta_setf(ed_meta *m, const char *key, const char *fmt, ...)
{
    char buf[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return ed_meta_set(m, key, buf);
}

/* The shortest %.Ng that reads back to the same double. */
static const char *exact(double v, char *buf, size_t size)
{
    for (int p = 15; p <= 17; p++) {
        snprintf(buf, size, "%.*g", p, v);
        if (strtod(buf, NULL) == v) break;
    }
    return buf;
}

int ed_trainer_save(const ed_trainer *t, const char *path)
{
    ed_meta *m = ed_meta_new();
    if (!m) return ED_ERR;
    const ed_gen_model *gm = &t->model;
    char buf[ED_OPTION_TEXT_MAX], key[128];
    int rc = ed_meta_set(m, "model", gm->def->name);
    rc |= ed_meta_set(m, "model.sample_shape", shape_text(gm->sample, buf, sizeof buf));
    rc |= meta_setf(m, "model.obs_size", "%lld", (long long)gm->obs_size);
    if (gm->classes) rc |= meta_setf(m, "model.classes", "%lld", (long long)gm->classes);
    if (gm->levels) rc |= meta_setf(m, "model.levels", "%lld", (long long)gm->levels);
    rc |= ed_meta_set(m, "model.unit_range", gm->unit_range ? "1" : "0");
    for (int i = 0; i < gm->def->noptions; i++) {
        const char *name = gm->def->options[i].name;
        snprintf(key, sizeof key, "option.%s", name);
        rc |= ed_meta_set(m, key, ed_gen_model_get(gm, name, buf, sizeof buf));
    }
    rc |= ed_meta_set(m, "data", t->d->spec);
    rc |= meta_setf(m, "data.n", "%lld", (long long)t->d->n);
    rc |= meta_setf(m, "data.seed", "%llu", (unsigned long long)t->d->seed);
    rc |= meta_setf(m, "data.fingerprint", "%016llx", (unsigned long long)ed_dataset_fingerprint(t->d));
    rc |= meta_setf(m, "train.step", "%lld", (long long)t->step);
    rc |= meta_setf(m, "train.seed", "%llu", (unsigned long long)t->o.seed);
    rc |= meta_setf(m, "train.batch", "%lld", (long long)t->o.batch);
    rc |= ed_meta_set(m, "train.lr", exact(t->o.lr, buf, sizeof buf));
    rc |= meta_setf(m, "train.steps", "%lld", (long long)t->o.steps);
    rc |= ed_meta_set(m, "train.lr_schedule", ed_lr_schedule_name(t->o.lr_schedule));
    rc |= ed_meta_set(m, "train.loss", isfinite(t->loss) ? exact(t->loss, buf, sizeof buf) : "nan");
    rc |= meta_setf(m, "train.data_rng", "philox4x32-10 stream=train.batch call=%lld", (long long)(t->step * t->runs));
    if (rc == ED_OK) rc = ed_safetensors_save(path, t->st, m);
    ed_meta_free(m);
    return rc == ED_OK ? ED_OK : ED_ERR;
}

static const char *need(const ed_meta *m, const char *path, const char *key)
{
    const char *v = ed_meta_get(m, key);
    if (!v) ed_fail("%s: metadata '%s' is missing", path, key);
    return v;
}

static bool parse_i64(const char *s, int64_t lo, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo) return false;
    *out = v;
    return true;
}

static bool parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (*s == '-') return false;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end) return false;
    *out = v;
    return true;
}

static bool parse_shape(const char *s, ed_shape *out)
{
    *out = (ed_shape){0};
    while (*s) {
        if (out->rank == ED_MAX_RANK - 1) return false;
        char *end;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (errno || end == s || v < 1) return false;
        out->dim[out->rank++] = v;
        s = end;
        if (*s == ',') s++;
        else if (*s) return false;
    }
    return out->rank >= 1;
}

static int parse_meta(const char *path, const ed_meta *m, ed_checkpoint *c)
{
    const char *name = ed_meta_get(m, "model");
    if (!name) return ed_fail("%s: not an edifice training checkpoint (no 'model' in its metadata)", path);
    const ed_model_def *def = ed_model_find(name);
    if (!def) return ed_fail("%s: checkpoint of an unknown model '%s'", path, name);
    const char *v;
    ed_shape sample;
    int64_t obs = 0, i64;
    if (!(v = need(m, path, "model.sample_shape"))) return ED_ERR;
    if (!parse_shape(v, &sample)) return ed_fail("%s: bad model.sample_shape '%s'", path, v);
    if (!(v = need(m, path, "model.obs_size"))) return ED_ERR;
    if (!parse_i64(v, 0, &obs)) return ed_fail("%s: bad model.obs_size '%s'", path, v);
    /* Labels and pixel levels: absent in checkpoints of models that have none. */
    ed_data_facts facts = {.sample = sample, .obs_size = obs, .unit_range = true};
    if ((v = ed_meta_get(m, "model.classes")) && !parse_i64(v, 1, &facts.classes))
        return ed_fail("%s: bad model.classes '%s'", path, v);
    if ((v = ed_meta_get(m, "model.levels")) && !parse_i64(v, 2, &facts.levels))
        return ed_fail("%s: bad model.levels '%s'", path, v);
    /* absent (older checkpoints): in [0, 1], as they were read before it was kept */
    if ((v = ed_meta_get(m, "model.unit_range")) && !(strcmp(v, "0") == 0 || strcmp(v, "1") == 0))
        return ed_fail("%s: bad model.unit_range '%s'", path, v);
    if (v) facts.unit_range = v[0] == '1';
    if (ed_gen_model_init_data(&c->model, def, &facts) != ED_OK) return ED_ERR;
    for (int i = 0; i < def->noptions; i++) {
        char key[128];
        snprintf(key, sizeof key, "option.%s", def->options[i].name);
        /* An option added after the checkpoint was written keeps its default, which
         * builds the network it was trained with (arch mlp and its unused conv fields). */
        if (!(v = ed_meta_get(m, key))) continue;
        if (ed_gen_model_set(&c->model, def->options[i].name, v) != ED_OK) {
            char msg[ED_ERROR_MAX];
            snprintf(msg, sizeof msg, "%s", ed_last_error());
            return ed_fail("%s: %s", path, msg);
        }
    }
    for (int i = 0; i < ed_meta_count(m); i++) {
        const char *k = ed_meta_key(m, i);
        if (strncmp(k, "option.", 7) == 0 && !ed_option_find(def->options, def->noptions, k + 7))
            return ed_fail("%s: model %s has no option '%s'", path, name, k + 7);
    }
    if (!(v = need(m, path, "data"))) return ED_ERR;
    if (strlen(v) >= sizeof c->data) return ed_fail("%s: data spec too long", path);
    snprintf(c->data, sizeof c->data, "%s", v);
    if (!(v = need(m, path, "data.n")) || !parse_i64(v, 0, &c->data_n))
        return v ? ed_fail("%s: bad data.n '%s'", path, v) : ED_ERR;
    if (!(v = need(m, path, "data.seed")) || !parse_u64(v, &c->data_seed))
        return v ? ed_fail("%s: bad data.seed '%s'", path, v) : ED_ERR;
    if (!(v = need(m, path, "data.fingerprint"))) return ED_ERR;
    if (strlen(v) != 16 || strspn(v, "0123456789abcdef") != 16)
        return ed_fail("%s: bad data.fingerprint '%s'", path, v);
    c->data_fingerprint = strtoull(v, NULL, 16);
    if (!(v = need(m, path, "train.step")) || !parse_i64(v, 0, &c->step) || c->step > INT32_MAX)
        return v ? ed_fail("%s: bad train.step '%s'", path, v) : ED_ERR;
    if (!(v = need(m, path, "train.seed")) || !parse_u64(v, &c->train.seed))
        return v ? ed_fail("%s: bad train.seed '%s'", path, v) : ED_ERR;
    if (!(v = need(m, path, "train.batch")) || !parse_i64(v, 1, &i64))
        return v ? ed_fail("%s: bad train.batch '%s'", path, v) : ED_ERR;
    c->train.batch = i64;
    if (!(v = need(m, path, "train.steps")) || !parse_i64(v, 0, &c->train.steps))
        return v ? ed_fail("%s: bad train.steps '%s'", path, v) : ED_ERR;
    if (!(v = need(m, path, "train.lr"))) return ED_ERR;
    char *end;
    c->train.lr = strtod(v, &end);
    if (*end || end == v || !(c->train.lr > 0)) return ed_fail("%s: bad train.lr '%s'", path, v);
    v = ed_meta_get(m, "train.lr_schedule");
    if (v && !ed_lr_schedule_parse(v, &c->train.lr_schedule)) return ed_fail("%s: bad train.lr_schedule '%s'", path, v);
    v = ed_meta_get(m, "train.loss");
    c->loss = v ? strtod(v, NULL) : NAN;
    char want[128];
    int64_t runs = 0;
    for (int k = 0; k < def->nsteps; k++) runs += ed_gen_model_step_repeats(&c->model, k);
    snprintf(want, sizeof want, "philox4x32-10 stream=train.batch call=%lld", (long long)(c->step * runs));
    if (!(v = need(m, path, "train.data_rng"))) return ED_ERR;
    if (strcmp(v, want) != 0)
        return ed_fail("%s: train.data_rng '%s' does not match step %lld", path, v, (long long)c->step);
    return ED_OK;
}

int ed_checkpoint_load(const char *path, ed_checkpoint *out)
{
    *out = (ed_checkpoint){0};
    ed_meta *m = NULL;
    ed_store *st = ed_safetensors_load(path, &m);
    if (!st) return ED_ERR;
    int rc = parse_meta(path, m, out);
    ed_meta_free(m);
    if (rc != ED_OK) {
        ed_store_free(st);
        *out = (ed_checkpoint){0};
        return ED_ERR;
    }
    out->store = st;
    return ED_OK;
}

int ed_checkpoint_load_for(const char *path, const ed_model_def *def, ed_checkpoint *out)
{
    if (ed_checkpoint_load(path, out) != ED_OK) return ED_ERR;
    if (out->model.def == def) return ED_OK;
    ed_fail("%s is a checkpoint of model %s, not %s", path, out->model.def->name, def->name);
    ed_checkpoint_free(out);
    return ED_ERR;
}

int ed_checkpoint_use_ema(ed_checkpoint *c)
{
    if (!c->store) return ed_fail("the checkpoint has no store");
    int swapped = 0;
    for (int k = 0; k < c->model.def->nsteps; k++) {
        char prefix[64], key[600];
        state_prefix(&c->model, k, prefix, sizeof prefix);
        for (int i = 0; i < ed_store_count(c->store); i++) {
            ed_tensor *w = ed_store_tensor(c->store, i);
            snprintf(key, sizeof key, "%sema.%s", prefix, ed_store_name(c->store, i));
            const ed_tensor *avg = ed_store_get(c->store, key);
            if (!avg) continue;
            if (avg->dtype != w->dtype || !ed_shape_eq(avg->shape, w->shape))
                return ed_fail("the checkpoint's '%s' does not have the type of '%s'", key, ed_store_name(c->store, i));
            memcpy(w->data, avg->data, ed_tensor_bytes(w));
            swapped++;
        }
    }
    return swapped;
}

void ed_checkpoint_free(ed_checkpoint *c)
{
    ed_store_free(c->store);
    *c = (ed_checkpoint){0};
}
