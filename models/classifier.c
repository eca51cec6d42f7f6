/* The feature classifier of the image figures: its network, its seeded training with
 * the project's training step, and its cache file. */
#include "models/classifier.h"
#include "backend/backend.h"
#include "frontend/nn.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "models/metrics.h"
#include "models/train_step.h"
#include "runtime/error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define APPLY_BATCH 1000

ed_classifier_opts ed_classifier_settings(const ed_classifier_opts *o)
{
    ed_classifier_opts s = o ? *o : (ed_classifier_opts){0};
    if (s.hidden[0] <= 0) s.hidden[0] = 256;
    if (s.hidden[1] <= 0) s.hidden[1] = 128;
    if (s.steps <= 0) s.steps = 3000;
    if (s.batch <= 0) s.batch = 128;
    if (!(s.lr > 0)) s.lr = 1e-3;
    if (s.input_noise == 0) s.input_noise = 0.3;
    if (!(s.input_noise > 0)) s.input_noise = 0; /* asked for none */
    return s;
}

/* Everything the cache key covers, as one line of text. */
static void settings_text(const ed_classifier_opts *o, char *buf, size_t size)
{
    snprintf(buf, size, "v%d mlp %lld,%lld relu, adam lr %.17g, %lld steps of %lld, input noise %.17g, seed %llu",
             ED_CLASSIFIER_VERSION, (long long)o->hidden[0], (long long)o->hidden[1], o->lr, (long long)o->steps,
             (long long)o->batch, o->input_noise, (unsigned long long)o->seed);
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static void shape_text(ed_shape s, char *buf, size_t size)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < s.rank && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s%lld", i ? "," : "", (long long)s.dim[i]);
}

static int check_data(const ed_dataset *d, const char *what)
{
    if (!d || !ed_dataset_is_images(d) || !d->labels || d->classes < 2)
        return ed_fail("classifier: %s '%s' must be labelled images with at least 2 classes", what,
                       d ? d->spec : "(none)");
    if (ed_dataset_rows(d) < 2) return ed_fail("classifier: %s '%s' has under 2 rows", what, d->spec);
    return ED_OK;
}

/* ---- the network -------------------------------------------------------------------- */

/* The features and logits of x [B, sample...] in g. */
static ed_node *network(ed_node *x, const ed_classifier_opts *o, int32_t classes, ed_node **features)
{
    int64_t b = x->shape.dim[0], dim = ed_shape_numel(x->shape) / b;
    ed_node *flat = ed_reshape(x, ed_shape2(b, dim));
    *features = ed_mlp(flat, "clf.hidden", o->hidden, 2, ED_ACT_RELU, true);
    return ed_dense(*features, "clf.out", classes, true);
}

static ed_node *images_input(ed_graph *g, ed_shape sample, int64_t b)
{
    ed_shape s = {.rank = sample.rank + 1, .dim = {b}};
    for (int i = 0; i < sample.rank; i++) s.dim[i + 1] = sample.dim[i];
    return ed_input(g, "x", ED_F32, s);
}

/* Mean softmax cross entropy of logits [B, K] against labels i32 [B]. */
static ed_node *cross_entropy(ed_node *logits, ed_node *labels, int32_t classes)
{
    ed_node *picked = ed_mul(ed_one_hot(labels, classes, ED_F32), ed_log_softmax(logits, -1));
    return ed_neg(ed_mean(ed_sum(picked, ed_axis_bit(picked, -1), false), ed_axis_bit(labels, 0), false));
}

static ed_graph *train_graph(const ed_classifier *c)
{
    ed_graph *g = ed_graph_new("train_classifier");
    if (!g) return NULL;
    ed_node *features, *labels = ed_input(g, "labels", ED_I32, ed_shape1(c->o.batch));
    ed_node *x = images_input(g, c->sample, c->o.batch);
    if (c->o.input_noise > 0) x = ed_add(x, ed_mul_scalar(ed_randn(g, ED_F32, x->shape), c->o.input_noise));
    ed_node *logits = network(x, &c->o, c->classes, &features);
    ed_train_opts to = {.optim = {.kind = ED_OPT_ADAM, .lr = c->o.lr, .prefix = "opt."}};
    if (ed_graph_error(g) || ed_train_step(g, cross_entropy(logits, labels, c->classes), &to) != ED_OK) {
        ed_fail("classifier: %s", ed_graph_error(g));
        ed_graph_free(g);
        return NULL;
    }
    return g;
}

/* The trained params alone (no optimizer state), copied into a store of their own. */
static ed_store *params_only(const ed_store *st)
{
    ed_store *out = ed_store_new(ed_store_seed(st));
    for (int i = 0; out && i < ed_store_count(st); i++) {
        const char *name = ed_store_name(st, i);
        if (strncmp(name, "clf.", 4) != 0) continue;
        if (ed_store_put(out, name, ed_tensor_copy(ed_store_tensor(st, i)), true) != ED_OK) {
            ed_store_free(out);
            return NULL;
        }
    }
    return out;
}

static int run_training(ed_classifier *c, const ed_dataset *d, ed_store *st)
{
    ed_graph *g = train_graph(c);
    ed_program *p = g ? ed_compile(g, st, &(ed_compile_opts){.seed = c->o.seed}) : NULL;
    ed_tensor *lb = ed_tensor_new(ED_I32, ed_shape1(c->o.batch));
    ed_tensor *xb = p ? ed_tensor_new(ED_F32, ed_graph_leaf(g, ED_OP_INPUT, "x")->shape) : NULL;
    int status = p ? ED_OK : ED_ERR;
    if (status == ED_OK && (!xb || !lb)) status = ed_fail("classifier: out of memory");
    for (int64_t k = 0; k < c->o.steps && status == ED_OK; k++) {
        ed_feed feeds[2] = {{"x", xb}, {"labels", lb}};
        status = ed_dataset_batch(d, c->o.seed, (uint64_t)k, xb, NULL);
        if (status == ED_OK) status = ed_dataset_batch_labels(d, c->o.seed, (uint64_t)k, lb);
        if (status == ED_OK) status = ed_run(p, feeds, 2);
    }
    if (status == ED_OK) c->final_loss = ed_tensor_get(ed_program_output(p, "loss"), 0);
    if (status == ED_OK && !isfinite(c->final_loss))
        status = ed_fail("classifier: training on '%s' diverged (loss %g)", d->spec, c->final_loss);
    ed_tensor_free(xb);
    ed_tensor_free(lb);
    ed_program_free(p);
    ed_graph_free(g);
    return status;
}

int ed_classifier_train(ed_classifier *c, const ed_dataset *train, const ed_classifier_opts *o)
{
    *c = (ed_classifier){.o = ed_classifier_settings(o), .final_loss = NAN};
    if (check_data(train, "training data") != ED_OK) return ED_ERR;
    c->sample = ed_dataset_sample_shape(train);
    c->classes = train->classes;
    c->data_fingerprint = ed_dataset_fingerprint(train);
    ed_store *st = ed_store_new(c->o.seed);
    if (!st) return ed_fail("classifier: out of memory");
    int status = run_training(c, train, st);
    if (status == ED_OK) {
        c->st = params_only(st);
        if (!c->st) status = ed_fail("classifier: out of memory");
    }
    ed_store_free(st);
    return status;
}

/* ---- using it ----------------------------------------------------------------------- */

/* Rows [from, from + rows) of x into the batch xb (the rest of xb zeroed). */
static void fill_batch(ed_tensor *xb, const ed_tensor *x, int64_t from, int64_t rows)
{
    size_t row = ed_tensor_bytes(x) / (size_t)x->shape.dim[0];
    memset(xb->data, 0, ed_tensor_bytes(xb));
    memcpy(xb->data, (const char *)x->data + (size_t)from * row, (size_t)rows * row);
}

int ed_classifier_apply(const ed_classifier *c, const ed_tensor *x, ed_tensor **features, ed_tensor **pred)
{
    if (features) *features = NULL;
    if (pred) *pred = NULL;
    ed_shape want = {.rank = c->sample.rank + 1, .dim = {x ? x->shape.dim[0] : 0}};
    for (int i = 0; i < c->sample.rank; i++) want.dim[i + 1] = c->sample.dim[i];
    if (!c->st || !x || x->dtype != ED_F32 || x->shape.dim[0] < 1 || !ed_shape_eq(x->shape, want)) {
        char a[64], b[96] = "NULL";
        shape_text(c->sample, a, sizeof a);
        if (x) ed_type_str(x->dtype, x->shape, b, sizeof b);
        return ed_fail("classifier: expected f32 images [N, %s], got %s", a, b);
    }
    int64_t n = x->shape.dim[0], b = n < APPLY_BATCH ? n : APPLY_BATCH, width = c->o.hidden[1];
    ed_graph *g = ed_graph_new("classify");
    ed_node *f, *logits = g ? network(images_input(g, c->sample, b), &c->o, c->classes, &f) : NULL;
    if (logits) {
        ed_output(g, "features", f);
        ed_output(g, "class", ed_argmax(logits, ed_axis_bit(logits, -1), false));
    }
    if (g && ed_graph_error(g)) ed_fail("classifier: %s", ed_graph_error(g));
    ed_program *p = g && !ed_graph_error(g) ? ed_compile(g, c->st, NULL) : NULL;
    ed_tensor *xb = p ? ed_tensor_new(ED_F32, ed_graph_leaf(g, ED_OP_INPUT, "x")->shape) : NULL;
    ed_tensor *feat = ed_tensor_new(ED_F32, ed_shape2(n, width)), *cls = ed_tensor_new(ED_I32, ed_shape1(n));
    int status = p ? ED_OK : ED_ERR;
    if (status == ED_OK && (!xb || !feat || !cls))
        status = ed_fail("classifier: out of memory for %lld rows", (long long)n);
    for (int64_t from = 0; from < n && status == ED_OK; from += b) {
        int64_t rows = n - from < b ? n - from : b;
        fill_batch(xb, x, from, rows);
        status = ed_run(p, &(ed_feed){"x", xb}, 1);
        if (status != ED_OK) break;
        const ed_tensor *fo = ed_program_output(p, "features"), *co = ed_program_output(p, "class");
        memcpy((float *)feat->data + from * width, fo->data, (size_t)(rows * width) * sizeof(float));
        memcpy((int32_t *)cls->data + from, co->data, (size_t)rows * sizeof(int32_t));
    }
    ed_tensor_free(xb);
    ed_program_free(p);
    ed_graph_free(g);
    if (status == ED_OK && features) *features = feat, feat = NULL;
    if (status == ED_OK && pred) *pred = cls, cls = NULL;
    ed_tensor_free(feat);
    ed_tensor_free(cls);
    return status;
}

int ed_classifier_accuracy(const ed_classifier *c, const ed_dataset *d, double *accuracy)
{
    *accuracy = NAN;
    if (check_data(d, "data") != ED_OK) return ED_ERR;
    if (d->classes > c->classes)
        return ed_fail("classifier: data '%s' has %d classes, the classifier %d", d->spec, (int)d->classes,
                       (int)c->classes);
    ed_tensor *pred;
    if (ed_classifier_apply(c, d->x, NULL, &pred) != ED_OK) return ED_ERR;
    *accuracy = ed_label_accuracy(pred->data, d->labels->data, ed_dataset_rows(d));
    ed_tensor_free(pred);
    return ED_OK;
}

void ed_classifier_free(ed_classifier *c)
{
    ed_store_free(c->st);
    *c = (ed_classifier){0};
}

/* ---- the cache ---------------------------------------------------------------------- */

int ed_classifier_cache_dir(char *buf, size_t size)
{
    const char *own = getenv("EDIFICE_CACHE"), *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    int len;
    if (own && *own) len = snprintf(buf, size, "%s", own);
    else if (xdg && *xdg) len = snprintf(buf, size, "%s/edifice", xdg);
    else if (home && *home) len = snprintf(buf, size, "%s/.cache/edifice", home);
    else return ed_fail("no cache folder: none of EDIFICE_CACHE, XDG_CACHE_HOME and HOME is set");
    if (len < 0 || (size_t)len >= size) return ed_fail("the cache folder's name is too long");
    return ED_OK;
}

/* The spec's name for a file name: the data file's base name (or the built-in set's
 * name), letters, digits, '_', '-' and '.' only, at most 40 characters. */
static void spec_name(const char *spec, char *buf, size_t size)
{
    const char *end = strchr(spec, ','), *slash = NULL;
    if (!end) end = spec + strlen(spec);
    for (const char *p = spec; p < end; p++)
        if (*p == '/') slash = p;
    const char *start = slash ? slash + 1 : spec;
    size_t n = 0;
    for (const char *p = start; p < end && n + 1 < size && n < 40; p++) {
        char ch = *p;
        bool plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
                     ch == '-' || ch == '.';
        buf[n++] = plain ? ch : '_';
    }
    buf[n] = '\0';
    if (n == 0) snprintf(buf, size, "data");
}

int ed_classifier_cache_path(const ed_dataset *train, const ed_classifier_opts *o, char *buf, size_t size)
{
    char dir[4096], name[48], settings[256];
    ed_classifier_opts s = ed_classifier_settings(o);
    if (ed_classifier_cache_dir(dir, sizeof dir) != ED_OK) return ED_ERR;
    spec_name(train->spec, name, sizeof name);
    settings_text(&s, settings, sizeof settings);
    int len = snprintf(buf, size, "%s/classifier-%s-%016llx-%016llx.safetensors", dir, name,
                       (unsigned long long)ed_dataset_fingerprint(train), (unsigned long long)fnv1a(settings));
    if (len < 0 || (size_t)len >= size) return ed_fail("the cache file's name is too long");
    return ED_OK;
}

int ed_classifier_save(const ed_classifier *c, const char *path)
{
    char settings[256], text[64];
    ed_meta *m = ed_meta_new();
    if (!m) return ED_ERR;
    settings_text(&c->o, settings, sizeof settings);
    int status = ed_meta_set(m, "classifier.settings", settings);
    snprintf(text, sizeof text, "%016llx", (unsigned long long)c->data_fingerprint);
    if (status == ED_OK) status = ed_meta_set(m, "classifier.data_fingerprint", text);
    shape_text(c->sample, text, sizeof text);
    if (status == ED_OK) status = ed_meta_set(m, "classifier.sample", text);
    snprintf(text, sizeof text, "%d", (int)c->classes);
    if (status == ED_OK) status = ed_meta_set(m, "classifier.classes", text);
    snprintf(text, sizeof text, "%.9g", c->final_loss);
    if (status == ED_OK) status = ed_meta_set(m, "classifier.final_loss", text);
    if (status == ED_OK) status = ed_safetensors_save(path, c->st, m);
    ed_meta_free(m);
    return status;
}

/* The metadata key must hold exactly want. */
static int expect_meta(const ed_meta *m, const char *path, const char *key, const char *want)
{
    const char *got = ed_meta_get(m, key);
    if (got && strcmp(got, want) == 0) return ED_OK;
    return ed_fail("%s: %s is '%s', expected '%s': a classifier for other data or settings", path, key,
                   got ? got : "(missing)", want);
}

/* The file holds exactly the network's params, each of its shape. */
static int check_params(const ed_store *st, const ed_classifier *c, const char *path)
{
    int64_t dim = ed_shape_numel(c->sample), h0 = c->o.hidden[0], h1 = c->o.hidden[1], k = c->classes;
    const struct {
        const char *name;
        ed_shape shape;
    } want[] = {{"clf.hidden.0.w", ed_shape2(dim, h0)}, {"clf.hidden.0.b", ed_shape1(h0)},
                {"clf.hidden.1.w", ed_shape2(h0, h1)},  {"clf.hidden.1.b", ed_shape1(h1)},
                {"clf.out.w", ed_shape2(h1, k)},        {"clf.out.b", ed_shape1(k)}};
    int n = (int)(sizeof want / sizeof want[0]);
    if (ed_store_count(st) != n)
        return ed_fail("%s: holds %d tensors, the classifier has %d params", path, ed_store_count(st), n);
    for (int i = 0; i < n; i++) {
        const ed_tensor *t = ed_store_get(st, want[i].name);
        if (!t || t->dtype != ED_F32 || !ed_shape_eq(t->shape, want[i].shape))
            return ed_fail("%s: param %s is missing or not of the network's shape", path, want[i].name);
    }
    return ED_OK;
}

int ed_classifier_load(ed_classifier *c, const char *path, const ed_dataset *train, const ed_classifier_opts *o)
{
    *c = (ed_classifier){.o = ed_classifier_settings(o), .final_loss = NAN};
    if (check_data(train, "training data") != ED_OK) return ED_ERR;
    c->sample = ed_dataset_sample_shape(train);
    c->classes = train->classes;
    c->data_fingerprint = ed_dataset_fingerprint(train);
    ed_meta *m = NULL;
    ed_store *st = ed_safetensors_load(path, &m);
    if (!st) return ED_ERR;
    char want[256];
    settings_text(&c->o, want, sizeof want);
    int status = expect_meta(m, path, "classifier.settings", want);
    snprintf(want, sizeof want, "%016llx", (unsigned long long)c->data_fingerprint);
    if (status == ED_OK) status = expect_meta(m, path, "classifier.data_fingerprint", want);
    shape_text(c->sample, want, sizeof want);
    if (status == ED_OK) status = expect_meta(m, path, "classifier.sample", want);
    snprintf(want, sizeof want, "%d", (int)c->classes);
    if (status == ED_OK) status = expect_meta(m, path, "classifier.classes", want);
    if (status == ED_OK) status = check_params(st, c, path);
    const char *loss = ed_meta_get(m, "classifier.final_loss");
    if (loss) c->final_loss = strtod(loss, NULL);
    ed_meta_free(m);
    if (status == ED_OK) c->st = st;
    else ed_store_free(st);
    return status;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static bool file_exists(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f) fclose(f);
    return f != NULL;
}

int ed_classifier_open(ed_classifier *c, const ed_dataset *train, const ed_classifier_opts *o,
                       ed_classifier_cache *info)
{
    ed_classifier_cache own;
    if (!info) info = &own;
    *info = (ed_classifier_cache){0};
    double t0 = now_s();
    if (check_data(train, "training data") != ED_OK) return ED_ERR;
    bool named = ed_classifier_cache_path(train, o, info->path, sizeof info->path) == ED_OK;
    if (!named) {
        snprintf(info->note, sizeof info->note, "%s", ed_last_error());
        info->path[0] = '\0';
    }
    /* A file that does not load (damaged, or a key collision) is replaced, not trusted. */
    if (named && file_exists(info->path) && ed_classifier_load(c, info->path, train, o) == ED_OK) {
        info->loaded = true;
        info->seconds = now_s() - t0;
        return ED_OK;
    }
    if (ed_classifier_train(c, train, o) != ED_OK) return ED_ERR;
    info->seconds = now_s() - t0;
    if (!named) return ED_OK;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", info->path);
    *strrchr(dir, '/') = '\0';
    if (ed_make_dirs(dir) == ED_OK && ed_classifier_save(c, info->path) == ED_OK) info->saved = true;
    else snprintf(info->note, sizeof info->note, "%s", ed_last_error());
    return ED_OK;
}
