/* The evaluation protocol of `edifice eval`: reference and floor draws, then the
 * metrics of models/metrics.h on (observation, sample) vectors. */
#include "models/evaluate.h"
#include "models/generate.h"
#include "models/metrics.h"
#include "runtime/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static bool is_file_spec(const char *spec) { return strchr(spec, ',') || strstr(spec, ".npy"); }

/* Rows perm[from..from+n) of t (f32 [N, ...]) into a new tensor. */
static ed_tensor *take_rows(const ed_tensor *t, const int64_t *perm, int64_t from, int64_t n)
{
    if (!t) return NULL;
    ed_shape s = t->shape;
    s.dim[0] = n;
    ed_tensor *r = ed_tensor_new(t->dtype, s);
    size_t row = (size_t)(ed_tensor_numel(t) / t->shape.dim[0]) * ed_dtype_size(t->dtype);
    for (int64_t i = 0; r && i < n; i++)
        memcpy((char *)r->data + (size_t)i * row, (const char *)t->data + (size_t)perm[from + i] * row, row);
    return r;
}

/* 0..rows-1 in a seeded random order (Fisher-Yates on a 64-bit LCG); NULL if out of memory. */
static int64_t *shuffled(int64_t rows, uint64_t seed)
{
    int64_t *perm = malloc((size_t)rows * sizeof *perm);
    if (!perm) return NULL;
    uint64_t s = seed * 6364136223846793005ull + 1442695040888963407ull;
    for (int64_t i = 0; i < rows; i++) perm[i] = i;
    for (int64_t i = rows - 1; i > 0; i--) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        int64_t j = (int64_t)((s >> 33) % (uint64_t)(i + 1));
        int64_t t = perm[i];
        perm[i] = perm[j], perm[j] = t;
    }
    return perm;
}

/* Two halves of a file's rows in a seeded random order. */
static int split_file(ed_eval_data *e, const char *spec, uint64_t seed)
{
    ed_dataset all = {0};
    if (ed_dataset_open(&all, spec, 1, 0) != ED_OK) return ED_ERR;
    int64_t rows = ed_dataset_rows(&all), half = rows / 2;
    if (half < 2) {
        ed_dataset_free(&all);
        return ed_fail("%s has %lld rows; a floor needs at least 4", spec, (long long)rows);
    }
    if (e->n > half) e->n = half;
    int64_t *perm = shuffled(rows, seed);
    if (!perm) {
        ed_dataset_free(&all);
        return ed_fail("out of memory");
    }
    ed_dataset *a = &e->ref, *b = &e->floor[0];
    bool has_obs = all.obs != NULL;
    a->x = take_rows(all.x, perm, 0, e->n), a->obs = take_rows(all.obs, perm, 0, e->n);
    b->x = take_rows(all.x, perm, half, e->n), b->obs = take_rows(all.obs, perm, half, e->n);
    e->nfloor = 1;
    free(perm);
    ed_dataset_free(&all);
    if (!a->x || !b->x || (has_obs && (!a->obs || !b->obs))) return ed_fail("out of memory");
    return ED_OK;
}

static int check_fit(const ed_eval_data *e, const ed_checkpoint *ck, const char *spec)
{
    const ed_gen_model *m = &ck->model;
    if (ed_dataset_obs_size(&e->ref) == m->obs_size &&
        ed_shape_numel(ed_dataset_sample_shape(&e->ref)) == ed_shape_numel(m->sample))
        return ED_OK;
    return ed_fail("data %s does not fit model %s of %s (observations %lld, sample of %lld values)", spec, m->def->name,
                   ck->data, (long long)m->obs_size, (long long)ed_shape_numel(m->sample));
}

int ed_eval_data_open(ed_eval_data *e, const ed_checkpoint *ck, const char *spec, int64_t n, uint64_t seed)
{
    *e = (ed_eval_data){.n = n};
    if (!spec) spec = ck->data;
    int status = ED_OK;
    if (is_file_spec(spec)) {
        status = split_file(e, spec, seed);
    } else {
        e->nfloor = ED_EVAL_FLOOR_DRAWS;
        status = ed_gen_fresh_data(ck, spec, n, seed, 0, &e->ref);
        for (int k = 0; k < e->nfloor && status == ED_OK; k++)
            status = ed_gen_fresh_data(ck, spec, n, seed, 1 + (uint64_t)k, &e->floor[k]);
    }
    if (status == ED_OK) status = check_fit(e, ck, spec);
    if (status != ED_OK) ed_eval_data_free(e);
    return status;
}

void ed_eval_data_free(ed_eval_data *e)
{
    ed_dataset_free(&e->ref);
    for (int k = 0; k < ED_EVAL_FLOOR_DRAWS; k++) ed_dataset_free(&e->floor[k]);
    e->nfloor = 0;
}

/* The points compared: x flattened to [N, D], with the observations in front if any. */
static ed_tensor *joint(const ed_tensor *obs, const ed_tensor *x)
{
    int64_t n = x->shape.dim[0], dx = ed_tensor_numel(x) / n, dobs = obs ? obs->shape.dim[1] : 0;
    ed_tensor *r = ed_tensor_new(ED_F32, ed_shape2(n, dobs + dx));
    for (int64_t i = 0; r && i < n; i++) {
        float *row = (float *)r->data + i * (dobs + dx);
        if (obs) memcpy(row, (const float *)obs->data + i * dobs, (size_t)dobs * sizeof(float));
        memcpy(row + dobs, (const float *)x->data + i * dx, (size_t)dx * sizeof(float));
    }
    return r;
}

static int metrics(const ed_tensor *s, const ed_tensor *a, ed_tensor *const *b, int nb, ed_eval_figures *out)
{
    ed_swd_opts so = {.projections = 256, .seed = 0, .p = 1};
    if (ed_mmd_median_bandwidth(a, NULL, &out->bandwidth) != ED_OK ||
        ed_sliced_wasserstein(s, a, &so, &out->swd) != ED_OK ||
        ed_mmd2_rbf(s, a, out->bandwidth, &out->mmd2) != ED_OK ||
        ed_mmd2_rbf(b[0], a, out->bandwidth, &out->mmd2_floor) != ED_OK)
        return ED_ERR;
    out->swd_floor = 0;
    for (int k = 0; k < nb; k++) {
        double f;
        if (ed_sliced_wasserstein(b[k], a, &so, &f) != ED_OK) return ED_ERR;
        out->swd_floor += f / nb;
    }
    return ED_OK;
}

int ed_eval_compare(const ed_eval_data *e, const ed_tensor *samples, ed_eval_figures *out)
{
    *out = (ed_eval_figures){0};
    if (!samples || samples->shape.rank < 1 || samples->shape.dim[0] != e->n ||
        ed_tensor_numel(samples) / e->n != ed_tensor_numel(e->ref.x) / e->n)
        return ed_fail("the samples must be [%lld, ...] like the data", (long long)e->n);
    ed_tensor *js = joint(e->ref.obs, samples), *ja = joint(e->ref.obs, e->ref.x), *jb[ED_EVAL_FLOOR_DRAWS] = {0};
    bool ok = js && ja;
    for (int k = 0; k < e->nfloor; k++) ok &= (jb[k] = joint(e->floor[k].obs, e->floor[k].x)) != NULL;
    int status = ok ? metrics(js, ja, jb, e->nfloor, out) : ed_fail("out of memory");
    ed_tensor_free(js);
    ed_tensor_free(ja);
    for (int k = 0; k < ED_EVAL_FLOOR_DRAWS; k++) ed_tensor_free(jb[k]);
    return status;
}

/* ---- a family's own figures ---------------------------------------------------------- */

/* The figures' graph for batches of b rows. */
static ed_graph *figure_graph(const ed_gen_model *m, int64_t b)
{
    ed_graph *g = ed_graph_new("eval");
    if (!g) return NULL;
    ed_batch in = {.x = ed_input(g, "x", ED_F32, ed_gen_model_batch_shape(m, b))};
    if (m->obs_size) in.obs = ed_input(g, "obs", ED_F32, ed_shape2(b, m->obs_size));
    if (m->classes) in.labels = ed_input(g, "labels", ED_I32, ed_shape1(b));
    ed_node *figs[ED_MAX_FIGURES] = {0};
    if (m->def->figure_nodes(g, m, &in, figs) == ED_OK && !ed_graph_error(g))
        for (int i = 0; i < m->def->nfigures; i++) ed_output(g, m->def->figures[i].name, figs[i]);
    if (ed_graph_error(g)) {
        ed_fail("eval %s: %s", m->def->name, ed_graph_error(g));
        ed_graph_free(g);
        return NULL;
    }
    return g;
}

/* Rows [start, start + n) of t (axis 0) as a tensor that borrows t's data. */
static ed_tensor rows_of(const ed_tensor *t, int64_t start, int64_t n)
{
    ed_tensor r = *t;
    int64_t row = ed_tensor_numel(t) / t->shape.dim[0];
    r.shape.dim[0] = n;
    r.data = (char *)t->data + (size_t)(start * row) * ed_dtype_size(t->dtype);
    r.owns = false;
    return r;
}

/* The counts of a histogram figure, summed over the batches. */
typedef struct {
    double *count;
    int64_t k;
} histogram;

static int add_counts(histogram *h, const ed_tensor *f)
{
    int64_t k = ed_tensor_numel(f);
    if (!h->count) {
        h->count = calloc((size_t)k, sizeof *h->count);
        h->k = k;
        if (!h->count) return ed_fail("eval: out of memory for %lld counts", (long long)k);
    }
    if (k != h->k)
        return ed_fail("eval: a histogram figure changed size from %lld to %lld", (long long)h->k, (long long)k);
    for (int64_t j = 0; j < k; j++) h->count[j] += ed_tensor_get(f, j);
    return ED_OK;
}

int ed_eval_model_figures(const ed_gen_model *m, ed_store *st, const ed_dataset *d, const ed_eval_opts *o,
                          double *means)
{
    ed_eval_opts opts = o ? *o : (ed_eval_opts){0};
    if (opts.batch <= 0) opts.batch = 500;
    int nf = m->def->nfigures;
    if (nf == 0 || !m->def->figure_nodes) return 0;
    int64_t rows = ed_dataset_rows(d);
    if (rows < 1) return ed_fail("eval %s: no rows to evaluate", m->def->name), -1;
    if ((m->classes > 0 && !d->labels) || (d->obs != NULL) != (m->obs_size > 0))
        return ed_fail("eval %s: the data's labels or observations do not match the model", m->def->name), -1;
    double sum[ED_MAX_FIGURES] = {0};
    histogram hist[ED_MAX_FIGURES] = {0};
    ed_graph *g = NULL;
    ed_program *p = NULL;
    int64_t built = 0, call = 0;
    int rc = ED_OK;
    for (int64_t start = 0; start < rows && rc == ED_OK; start += opts.batch, call++) {
        int64_t b = rows - start < opts.batch ? rows - start : opts.batch;
        if (b != built) { /* the first batch, and a smaller last one */
            ed_program_free(p);
            ed_graph_free(g);
            p = NULL;
            g = figure_graph(m, b);
            if (g) p = ed_compile(g, st, &(ed_compile_opts){.backend = opts.backend, .seed = opts.seed});
            if (!p) {
                rc = ED_ERR;
                break;
            }
            built = b;
        }
        ed_program_set_calls(p, (uint64_t)call);
        ed_tensor x = rows_of(d->x, start, b), obs, lab;
        ed_feed feeds[3] = {{"x", &x}};
        int nfeeds = 1;
        if (d->obs) obs = rows_of(d->obs, start, b), feeds[nfeeds++] = (ed_feed){"obs", &obs};
        if (m->classes) lab = rows_of(d->labels, start, b), feeds[nfeeds++] = (ed_feed){"labels", &lab};
        if (ed_run(p, feeds, nfeeds) != ED_OK) {
            rc = ED_ERR;
            break;
        }
        for (int i = 0; i < nf && rc == ED_OK; i++) {
            const ed_tensor *f = ed_program_output(p, m->def->figures[i].name);
            if (m->def->figures[i].kind == ED_FIGURE_MEAN)
                for (int64_t r = 0; r < b; r++) sum[i] += ed_tensor_get(f, r);
            else rc = add_counts(&hist[i], f);
        }
    }
    ed_program_free(p);
    ed_graph_free(g);
    for (int i = 0; i < nf && rc == ED_OK; i++) {
        ed_figure_kind kind = m->def->figures[i].kind;
        int64_t used;
        if (kind == ED_FIGURE_MEAN) means[i] = sum[i] / (double)rows;
        else means[i] = ed_histogram_perplexity(hist[i].count, hist[i].k, &used);
        if (kind == ED_FIGURE_USED) means[i] = (double)used;
        if (isnan(means[i])) rc = ED_ERR;
    }
    for (int i = 0; i < nf; i++) free(hist[i].count);
    return rc == ED_OK ? nf : -1;
}

/* ---- images: figures in a classifier's feature space ---------------------------------- */

int ed_eval_images_open(ed_eval_images *e, const ed_checkpoint *ck, const char *spec)
{
    *e = (ed_eval_images){.test_accuracy = NAN};
    if (!spec) spec = ck->data;
    if (ed_dataset_open_split(&e->train, spec, ck->data_n, ck->data_seed, ED_SPLIT_TRAIN) != ED_OK) return -1;
    if (!ed_dataset_is_images(&e->train) || !e->train.labels) {
        ed_eval_images_free(e);
        ed_fail("data %s are not labelled images", spec);
        return 0;
    }
    if (ed_dataset_open_split(&e->test, spec, ck->data_n, ck->data_seed, ED_SPLIT_TEST) != ED_OK) {
        ed_eval_images_free(e);
        return 0;
    }
    if (!ed_shape_eq(ed_dataset_sample_shape(&e->test), ck->model.sample)) {
        ed_eval_images_free(e);
        ed_fail("data %s do not fit model %s's images", spec, ck->model.def->name);
        return -1;
    }
    ed_tensor *features = NULL, *pred = NULL;
    int status = ed_classifier_open(&e->clf, &e->train, NULL, &e->cache);
    if (status == ED_OK) status = ed_classifier_apply(&e->clf, e->test.x, &features, &pred);
    if (status == ED_OK) status = ed_feature_stats_of(features, &e->test_stats);
    if (status == ED_OK)
        e->test_accuracy = ed_label_accuracy(pred->data, e->test.labels->data, ed_dataset_rows(&e->test));
    ed_tensor_free(features);
    ed_tensor_free(pred);
    if (status != ED_OK) ed_eval_images_free(e);
    return status == ED_OK ? 1 : -1;
}

void ed_eval_images_free(ed_eval_images *e)
{
    ed_dataset_free(&e->train);
    ed_dataset_free(&e->test);
    ed_classifier_free(&e->clf);
    ed_feature_stats_free(&e->test_stats);
}

ed_tensor *ed_eval_images_labels(const ed_eval_images *e, int64_t n)
{
    ed_tensor *t = ed_tensor_new(ED_I32, ed_shape1(n));
    if (!t) {
        ed_fail("out of memory for %lld labels", (long long)n);
        return NULL;
    }
    int64_t rows = ed_dataset_rows(&e->test);
    for (int64_t i = 0; i < n; i++) ((int32_t *)t->data)[i] = ((const int32_t *)e->test.labels->data)[i % rows];
    return t;
}

/* Frechet distance of x's features to the test split's, and the spread of x's classes. */
static int judge(const ed_eval_images *e, const ed_tensor *x, double *fd, int64_t *hit, double *perplexity,
                 ed_tensor **pred)
{
    ed_tensor *features = NULL;
    ed_feature_stats stats = {0};
    int status = ed_classifier_apply(&e->clf, x, &features, pred);
    if (status == ED_OK) status = ed_feature_stats_of(features, &stats);
    if (status == ED_OK) status = ed_frechet_distance(&stats, &e->test_stats, fd);
    if (status == ED_OK) status = ed_class_spread((*pred)->data, x->shape.dim[0], e->clf.classes, hit, perplexity);
    ed_feature_stats_free(&stats);
    ed_tensor_free(features);
    return status;
}

int ed_eval_images_compare(const ed_eval_images *e, const ed_tensor *samples, const ed_tensor *labels, uint64_t seed,
                           ed_eval_image_figures *out)
{
    *out = (ed_eval_image_figures){.label_accuracy = NAN};
    int64_t n = samples && samples->shape.rank >= 1 ? samples->shape.dim[0] : 0;
    if (n < 2) return ed_fail("eval: the image figures need at least 2 samples");
    if (labels && (labels->dtype != ED_I32 || labels->shape.rank != 1 || labels->shape.dim[0] != n))
        return ed_fail("eval: the requested labels must be i32 [%lld]", (long long)n);
    int64_t rows = ed_dataset_rows(&e->train);
    out->n = n;
    out->floor_n = n < rows ? n : rows;
    int64_t *perm = shuffled(rows, seed);
    ed_tensor *floor_x = perm ? take_rows(e->train.x, perm, 0, out->floor_n) : NULL, *pred = NULL, *floor_pred = NULL;
    free(perm);
    if (!floor_x) return ed_fail("out of memory");
    int status = judge(e, samples, &out->frechet, &out->classes_hit, &out->class_perplexity, &pred);
    if (status == ED_OK)
        status = judge(e, floor_x, &out->frechet_floor, &out->floor_classes_hit, &out->floor_perplexity, &floor_pred);
    if (status == ED_OK && labels) out->label_accuracy = ed_label_accuracy(pred->data, labels->data, n);
    ed_tensor_free(pred);
    ed_tensor_free(floor_pred);
    ed_tensor_free(floor_x);
    return status;
}
