#include "models/dataset.h"
#include "models/toy_data.h"
#include "runtime/error.h"
#include "runtime/philox.h"
#include "runtime/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *ed_dataset_builtin_names(void) { return "moons, circles, swiss_roll, 8gaussians, checkerboard, demo"; }

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

static int open_spec(ed_dataset *d, const char *spec, int64_t n, uint64_t seed)
{
    ed_toy toy;
    const char *comma = strchr(spec, ',');
    if (comma) {
        char obs[1024];
        size_t k = (size_t)(comma - spec);
        if (k >= sizeof obs) return ed_fail("data: file name too long");
        memcpy(obs, spec, k);
        obs[k] = '\0';
        ed_pairs p = {0};
        if (ed_pairs_load_npy(obs, comma + 1, &p) != ED_OK) return ED_ERR;
        return take_pairs(d, &p);
    }
    if (ends_with(spec, ".npy")) {
        d->x = ed_data_load_npy(spec);
        return d->x ? ED_OK : ED_ERR;
    }
    if (n < 1) return ed_fail("data %s: the number of rows must be >= 1, got %lld", spec, (long long)n);
    if (strcmp(spec, "demo") == 0) {
        ed_pairs p = {0};
        if (ed_demo_pairs(n, seed, &p) != ED_OK) return ED_ERR;
        return take_pairs(d, &p);
    }
    if (ed_toy_parse(spec, &toy) != ED_OK)
        return ed_fail("unknown data '%s': give a built-in set (%s), FILE.npy, or OBS.npy,ACTIONS.npy",
                       spec, ed_dataset_builtin_names());
    d->x = ed_toy_sample(toy, n, seed, ED_NOISE_DEFAULT);
    return d->x ? ED_OK : ED_ERR;
}

int ed_dataset_open(ed_dataset *d, const char *spec, int64_t n, uint64_t seed)
{
    *d = (ed_dataset){0};
    if (!spec || !*spec) return ed_fail("no data given");
    if (strlen(spec) >= sizeof d->spec) return ed_fail("data: spec too long");
    if (open_spec(d, spec, n, seed) != ED_OK) {
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
    return ED_OK;
}

void ed_dataset_free(ed_dataset *d)
{
    ed_tensor_free(d->x);
    ed_tensor_free(d->obs);
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
    return fnv_tensor(fnv_tensor(0xcbf29ce484222325ULL, d->x), d->obs);
}

int ed_dataset_batch(const ed_dataset *d, uint64_t seed, uint64_t k, ed_tensor *xb, ed_tensor *ob)
{
    int64_t b = xb->shape.dim[0], rows = ed_dataset_rows(d);
    int32_t *idx = malloc((size_t)(b > 0 ? b : 1) * sizeof *idx);
    if (!idx) return ed_fail("data: out of memory");
    ed_rng_randint(idx, b, seed, k, ed_name_stream("train.batch"), 0, rows);
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
