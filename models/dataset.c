#include "models/dataset.h"
#include "models/toy_data.h"
#include "io/npy.h"
#include "runtime/error.h"
#include "runtime/philox.h"
#include "runtime/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *ed_dataset_builtin_names(void)
{
    return "moons, circles, swiss_roll, 8gaussians, checkerboard, demo, digits, fashion_mnist";
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static int take_pairs(ed_dataset *d, ed_pairs *p)
{
    d->obs = p->obs;
    d->x = p->actions;
    p->obs = p->actions = NULL;
    ed_pairs_free(p);
    return ED_OK;
}

static int take_images(ed_dataset *d, ed_images *im)
{
    d->x = im->x;
    d->labels = im->labels;
    d->classes = im->classes;
    d->levels = im->levels;
    if (d->x->shape.rank == 4) {
        d->channels = d->x->shape.dim[1];
        d->height = d->x->shape.dim[2];
        d->width = d->x->shape.dim[3];
    }
    *im = (ed_images){0};
    return ED_OK;
}

/* FILE.npy with optional labels: images when the file has rank 3 or 4, else the [N, D]
 * reader exactly as before (its messages included). */
static int open_npy(ed_dataset *d, const char *x_path, const char *labels_path)
{
    char descr[4];
    ed_shape s;
    if (ed_npy_peek(x_path, descr, &s) == ED_OK && (s.rank == 3 || s.rank == 4)) {
        ed_images im;
        if (ed_images_load_npy(x_path, labels_path, &im) != ED_OK) return ED_ERR;
        return take_images(d, &im);
    }
    d->x = ed_data_load_npy(x_path);
    if (!d->x) return ED_ERR;
    if (labels_path && !(d->labels = ed_labels_load_npy(labels_path, d->x->shape.dim[0], &d->classes))) return ED_ERR;
    return ED_OK;
}

static int open_image_set(ed_dataset *d, const char *spec, ed_split split)
{
    ed_images im;
    int status = strcmp(spec, "digits") == 0 ? ed_digits_load(split, &im) : ed_fashion_mnist_load(split, &im);
    return status == ED_OK ? take_images(d, &im) : ED_ERR;
}

static int open_spec(ed_dataset *d, const char *spec, int64_t n, uint64_t seed, ed_split split)
{
    if (strcmp(spec, "digits") == 0 || strcmp(spec, "fashion_mnist") == 0) return open_image_set(d, spec, split);
    if (split != ED_SPLIT_TRAIN) return ed_fail("data %s has no test split (digits and fashion_mnist have one)", spec);
    ed_toy toy;
    const char *comma = strchr(spec, ',');
    if (comma && (comma == spec || !comma[1] || (strncmp(comma + 1, "labels=", 7) != 0 && strchr(comma + 1, ','))))
        return ed_fail("data '%s': expected a built-in set, FILE.npy, OBS.npy,ACTIONS.npy or X.npy,labels=Y.npy", spec);
    if (comma) {
        char first[1024];
        size_t k = (size_t)(comma - spec);
        if (k >= sizeof first) return ed_fail("data: file name too long");
        memcpy(first, spec, k);
        first[k] = '\0';
        if (strncmp(comma + 1, "labels=", 7) == 0) return open_npy(d, first, comma + 8);
        ed_pairs p = {0};
        if (ed_pairs_load_npy(first, comma + 1, &p) != ED_OK) return ED_ERR;
        return take_pairs(d, &p);
    }
    if (ends_with(spec, ".npy")) return open_npy(d, spec, NULL);
    if (n < 1) return ed_fail("data %s: the number of rows must be >= 1, got %lld", spec, (long long)n);
    if (strcmp(spec, "demo") == 0) {
        ed_pairs p = {0};
        if (ed_demo_pairs(n, seed, &p) != ED_OK) return ED_ERR;
        return take_pairs(d, &p);
    }
    if (ed_toy_parse(spec, &toy) != ED_OK)
        return ed_fail("unknown data '%s': give a built-in set (%s), FILE.npy, FILE.npy,labels=Y.npy, or "
                       "OBS.npy,ACTIONS.npy",
                       spec, ed_dataset_builtin_names());
    d->x = ed_toy_sample(toy, n, seed, ED_NOISE_DEFAULT);
    return d->x ? ED_OK : ED_ERR;
}

int ed_dataset_open(ed_dataset *d, const char *spec, int64_t n, uint64_t seed)
{
    return ed_dataset_open_split(d, spec, n, seed, ED_SPLIT_TRAIN);
}

int ed_dataset_open_split(ed_dataset *d, const char *spec, int64_t n, uint64_t seed, ed_split split)
{
    *d = (ed_dataset){0};
    if (!spec || !*spec) return ed_fail("no data given");
    if (strlen(spec) >= sizeof d->spec) return ed_fail("data: spec too long");
    if (open_spec(d, spec, n, seed, split) != ED_OK) {
        ed_dataset_free(d);
        return ED_ERR;
    }
    if (ed_dataset_rows(d) > INT32_MAX) {
        ed_dataset_free(d);
        return ed_fail("data %s: more than %d rows", spec, INT32_MAX);
    }
    snprintf(d->spec, sizeof d->spec, "%s", spec);
    d->n = n;
    d->seed = seed;
    d->split = split;
    return ED_OK;
}

void ed_dataset_free(ed_dataset *d)
{
    ed_tensor_free(d->x);
    ed_tensor_free(d->obs);
    ed_tensor_free(d->labels);
    *d = (ed_dataset){0};
}

int64_t ed_dataset_rows(const ed_dataset *d) { return d->x ? d->x->shape.dim[0] : 0; }

ed_shape ed_dataset_sample_shape(const ed_dataset *d)
{
    ed_shape s = {0};
    if (!d->x) return s;
    s.rank = d->x->shape.rank - 1;
    for (int i = 0; i < s.rank; i++) s.dim[i] = d->x->shape.dim[i + 1];
    return s;
}

int64_t ed_dataset_obs_size(const ed_dataset *d) { return d->obs ? d->obs->shape.dim[1] : 0; }

bool ed_dataset_is_images(const ed_dataset *d) { return d->channels > 0; }

static uint64_t fnv_bytes(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

static uint64_t fnv_tensor(uint64_t h, const ed_tensor *t)
{
    if (!t) return fnv_bytes(h, "none", 4);
    h = fnv_bytes(h, &t->shape.rank, sizeof t->shape.rank);
    h = fnv_bytes(h, t->shape.dim, sizeof t->shape.dim[0] * (size_t)t->shape.rank);
    return fnv_bytes(h, t->data, ed_tensor_bytes(t));
}

uint64_t ed_dataset_fingerprint(const ed_dataset *d)
{
    uint64_t h = fnv_tensor(fnv_tensor(0xcbf29ce484222325ULL, d->x), d->obs);
    return d->labels ? fnv_tensor(h, d->labels) : h; /* sets without labels keep their old fingerprint */
}

/* The rows of batch k: uniform with replacement, a function of (seed, k) only. */
static int32_t *batch_rows(const ed_dataset *d, uint64_t seed, uint64_t k, int64_t b)
{
    int32_t *idx = malloc((size_t)(b > 0 ? b : 1) * sizeof *idx);
    if (!idx) {
        ed_fail("data: out of memory");
        return NULL;
    }
    ed_rng_randint(idx, b, seed, k, ed_name_stream("train.batch"), 0, ed_dataset_rows(d));
    return idx;
}

int ed_dataset_batch(const ed_dataset *d, uint64_t seed, uint64_t k, ed_tensor *xb, ed_tensor *ob)
{
    int64_t b = xb->shape.dim[0], rows = ed_dataset_rows(d);
    int32_t *idx = batch_rows(d, seed, k, b);
    if (!idx) return ED_ERR;
    size_t xrow = ed_tensor_bytes(d->x) / (size_t)rows;
    for (int64_t i = 0; i < b; i++)
        memcpy((char *)xb->data + (size_t)i * xrow, (const char *)d->x->data + (size_t)idx[i] * xrow, xrow);
    if (ob && d->obs) {
        size_t orow = ed_tensor_bytes(d->obs) / (size_t)rows;
        for (int64_t i = 0; i < b; i++)
            memcpy((char *)ob->data + (size_t)i * orow, (const char *)d->obs->data + (size_t)idx[i] * orow, orow);
    }
    free(idx);
    return ED_OK;
}

int ed_dataset_batch_labels(const ed_dataset *d, uint64_t seed, uint64_t k, ed_tensor *lb)
{
    if (!d->labels) return ed_fail("data %s has no labels", d->spec);
    if (lb->dtype != ED_I32 || lb->shape.rank != 1) return ed_fail("data %s: a label batch is i32 [B]", d->spec);
    int32_t *idx = batch_rows(d, seed, k, lb->shape.dim[0]);
    if (!idx) return ED_ERR;
    const int32_t *y = d->labels->data;
    for (int64_t i = 0; i < lb->shape.dim[0]; i++) ((int32_t *)lb->data)[i] = y[idx[i]];
    free(idx);
    return ED_OK;
}

ed_data_facts ed_dataset_facts(const ed_dataset *d)
{
    ed_data_facts f = {.sample = ed_dataset_sample_shape(d),
                       .obs_size = ed_dataset_obs_size(d),
                       .classes = d->labels ? d->classes : 0,
                       .levels = d->levels,
                       .unit_range = true};
    const float *x = d->x->data;
    for (int64_t i = 0, n = ed_tensor_numel(d->x); i < n && f.unit_range; i++) f.unit_range = x[i] >= 0 && x[i] <= 1;
    return f;
}
