/* The parameter store and the seeded initializers. */
#include "runtime/store.h"
#include "runtime/error.h"
#include "runtime/philox.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- initializers ------------------------------------------------------------ */

static const char *const init_names[ED_INIT_COUNT] = {
    [ED_INIT_ZEROS] = "zeros",
    [ED_INIT_ONES] = "ones",
    [ED_INIT_NORMAL] = "normal",
    [ED_INIT_UNIFORM] = "uniform",
    [ED_INIT_GLOROT_UNIFORM] = "glorot_uniform",
    [ED_INIT_GLOROT_NORMAL] = "glorot_normal",
    [ED_INIT_KAIMING_UNIFORM] = "kaiming_uniform",
    [ED_INIT_KAIMING_NORMAL] = "kaiming_normal",
};

const char *ed_init_name(ed_init_kind kind) { return (unsigned)kind < ED_INIT_COUNT ? init_names[kind] : "?"; }

bool ed_init_parse(const char *s, ed_init_kind *out)
{
    if (!s) return false;
    for (int k = 0; k < ED_INIT_COUNT; k++) {
        if (strcmp(s, init_names[k]) == 0) {
            if (out) *out = (ed_init_kind)k;
            return true;
        }
    }
    return false;
}

uint32_t ed_name_stream(const char *name)
{
    uint32_t h = UINT32_C(2166136261); /* FNV-1a offset basis and prime */
    for (const unsigned char *p = (const unsigned char *)(name ? name : ""); *p; p++) {
        h ^= *p;
        h *= UINT32_C(16777619);
    }
    return h;
}

void ed_init_fans(ed_shape s, double *fan_in, double *fan_out)
{
    if (s.rank <= 0 || s.rank > ED_MAX_RANK) {
        *fan_in = *fan_out = 1;
        return;
    }
    if (s.rank == 1) {
        *fan_in = *fan_out = (double)s.dim[0];
        return;
    }
    double receptive = 1;
    for (int i = 0; i < s.rank - 2; i++) receptive *= (double)s.dim[i];
    *fan_in = (double)s.dim[s.rank - 2] * receptive;
    *fan_out = (double)s.dim[s.rank - 1] * receptive;
}

static void fill_constant(ed_tensor *t, int64_t n, double v)
{
    for (int64_t i = 0; i < n; i++) ed_tensor_set(t, i, v);
}

/* Normal draws are made in double and scaled before the one rounding to f32. */
static int fill_normal(ed_tensor *t, int64_t n, double std, uint64_t seed, uint32_t stream)
{
    if ((uint64_t)n > SIZE_MAX / sizeof(double))
        return ed_fail("init: %lld normals do not fit in memory", (long long)n);
    double *z = t->dtype == ED_F64 ? t->data : malloc((size_t)n * sizeof *z);
    if (!z) return ed_fail("init: out of memory drawing %lld normals", (long long)n);
    ed_rng_normal(z, ED_F64, n, seed, 0, stream);
    for (int64_t i = 0; i < n; i++) ed_tensor_set(t, i, z[i] * std);
    if (z != t->data) free(z);
    return ED_OK;
}

static void fill_uniform(ed_tensor *t, int64_t n, double bound, uint64_t seed, uint32_t stream)
{
    ed_rng_uniform(t->data, t->dtype, n, seed, 0, stream, -bound, bound);
}

static double default_gain(ed_init_kind kind)
{
    return kind == ED_INIT_KAIMING_UNIFORM || kind == ED_INIT_KAIMING_NORMAL ? sqrt(2.0) : 1.0;
}

static int check_init(const ed_tensor *t, ed_init init, const char *name)
{
    if (!t) return ed_fail("init: \"%s\": NULL tensor", name);
    if ((unsigned)init.kind >= ED_INIT_COUNT)
        return ed_fail("init: \"%s\": unknown initializer kind %d", name, (int)init.kind);
    if (init.kind == ED_INIT_ZEROS || init.kind == ED_INIT_ONES) return ED_OK;
    if (!ed_dtype_is_float(t->dtype))
        return ed_fail("init: \"%s\" is %s; only zeros and ones can initialize it, not %s", name,
                       ed_dtype_name(t->dtype), ed_init_name(init.kind));
    if (!isfinite(init.scale) || init.scale < 0)
        return ed_fail("init: \"%s\": %s scale must be finite and >= 0, got %g", name, ed_init_name(init.kind),
                       init.scale);
    return ED_OK;
}

/* A 16-bit tensor gets its f32 values (the same draws), rounded to nearest even. */
static int fill_16bit(ed_tensor *t, ed_init init, uint64_t seed, const char *name)
{
    ed_tensor *wide = ed_tensor_new(ED_F32, t->shape);
    if (!wide) return ed_fail("init: \"%s\": out of memory", name);
    int rc = ed_init_fill(wide, init, seed, name);
    for (int64_t i = 0; rc == ED_OK && i < ed_tensor_numel(t); i++) ed_tensor_set(t, i, ((float *)wide->data)[i]);
    ed_tensor_free(wide);
    return rc;
}

int ed_init_fill(ed_tensor *t, ed_init init, uint64_t seed, const char *name)
{
    name = name ? name : "";
    if (t && ed_dtype_is_16bit(t->dtype)) return fill_16bit(t, init, seed, name);
    if (check_init(t, init, name) != ED_OK) return ED_ERR;
    int64_t n = ed_tensor_numel(t);
    if (n <= 0) return ED_OK;
    uint32_t stream = ed_name_stream(name);
    double fan_in, fan_out;
    ed_init_fans(t->shape, &fan_in, &fan_out);
    double gain = init.scale != 0 ? init.scale : default_gain(init.kind);
    switch (init.kind) {
    case ED_INIT_ZEROS: fill_constant(t, n, 0); return ED_OK;
    case ED_INIT_ONES: fill_constant(t, n, 1); return ED_OK;
    case ED_INIT_NORMAL: return fill_normal(t, n, init.scale, seed, stream);
    case ED_INIT_UNIFORM: fill_uniform(t, n, init.scale, seed, stream); return ED_OK;
    case ED_INIT_GLOROT_UNIFORM: fill_uniform(t, n, gain * sqrt(6.0 / (fan_in + fan_out)), seed, stream); return ED_OK;
    case ED_INIT_GLOROT_NORMAL: return fill_normal(t, n, gain * sqrt(2.0 / (fan_in + fan_out)), seed, stream);
    case ED_INIT_KAIMING_UNIFORM: fill_uniform(t, n, gain * sqrt(3.0 / fan_in), seed, stream); return ED_OK;
    case ED_INIT_KAIMING_NORMAL: return fill_normal(t, n, gain / sqrt(fan_in), seed, stream);
    default: return ed_fail("init: \"%s\": unknown initializer kind %d", name, (int)init.kind);
    }
}

/* ---- the store ---------------------------------------------------------------- */

typedef struct {
    char *name;
    ed_tensor *tensor;
    bool trainable;
} entry;

/* Entries live in an array in insertion order; an open-addressing table (linear
 * probing, no deletions, at most half full) maps a name to its entry index. */
struct ed_store {
    uint64_t seed;
    entry *entries;
    int count, capacity;
    int *slots; /* entry index, or -1 for empty */
    int nslots; /* a power of two */
};

ed_store *ed_store_new(uint64_t seed)
{
    ed_store *st = calloc(1, sizeof *st);
    if (!st) {
        ed_fail("store: out of memory");
        return NULL;
    }
    st->seed = seed;
    return st;
}

void ed_store_free(ed_store *st)
{
    if (!st) return;
    for (int i = 0; i < st->count; i++) {
        free(st->entries[i].name);
        ed_tensor_free(st->entries[i].tensor);
    }
    free(st->entries);
    free(st->slots);
    free(st);
}

uint64_t ed_store_seed(const ed_store *st) { return st ? st->seed : 0; }

/* The slot holding name, or the empty slot where it would go. Needs nslots > 0. */
static int find_slot(const ed_store *st, const char *name)
{
    unsigned mask = (unsigned)st->nslots - 1;
    unsigned i = ed_name_stream(name) & mask;
    while (st->slots[i] >= 0 && strcmp(st->entries[st->slots[i]].name, name) != 0) i = (i + 1) & mask;
    return (int)i;
}

static int find_entry(const ed_store *st, const char *name)
{
    if (!st || !name || st->nslots == 0) return -1;
    return st->slots[find_slot(st, name)];
}

static int rebuild_slots(ed_store *st, int nslots)
{
    int *slots = malloc((size_t)nslots * sizeof *slots);
    if (!slots) return ed_fail("store: out of memory");
    for (int i = 0; i < nslots; i++) slots[i] = -1;
    free(st->slots);
    st->slots = slots;
    st->nslots = nslots;
    for (int e = 0; e < st->count; e++) st->slots[find_slot(st, st->entries[e].name)] = e;
    return ED_OK;
}

/* Room for one more entry, keeping the table at most half full. */
static int reserve_one(ed_store *st)
{
    if (st->count == INT32_MAX / 4) return ed_fail("store: too many entries");
    if (st->count == st->capacity) {
        int capacity = st->capacity ? st->capacity * 2 : 16;
        entry *entries = realloc(st->entries, (size_t)capacity * sizeof *entries);
        if (!entries) return ed_fail("store: out of memory");
        st->entries = entries;
        st->capacity = capacity;
    }
    if (2 * (st->count + 1) > st->nslots) return rebuild_slots(st, st->nslots ? st->nslots * 2 : 32);
    return ED_OK;
}

static int insert_entry(ed_store *st, const char *name, ed_tensor *t, bool trainable)
{
    if (reserve_one(st) != ED_OK) return ED_ERR;
    char *copy = malloc(strlen(name) + 1);
    if (!copy) return ed_fail("store: out of memory");
    strcpy(copy, name);
    st->entries[st->count] = (entry){.name = copy, .tensor = t, .trainable = trainable};
    st->slots[find_slot(st, copy)] = st->count;
    st->count++;
    return ED_OK;
}

ed_tensor *ed_store_get(const ed_store *st, const char *name)
{
    int e = find_entry(st, name);
    return e >= 0 ? st->entries[e].tensor : NULL;
}

static int check_name(const ed_store *st, const char *name)
{
    if (!st) return ed_fail("store: NULL store");
    if (!name || !*name) return ed_fail("store: a parameter needs a non-empty name");
    return ED_OK;
}

int ed_store_put(ed_store *st, const char *name, ed_tensor *t, bool trainable)
{
    if (check_name(st, name) != ED_OK) {
        ed_tensor_free(t); /* ownership was handed over either way */
        return ED_ERR;
    }
    if (!t) return ed_fail("store: \"%s\": NULL tensor", name);
    int e = find_entry(st, name);
    if (e >= 0) {
        if (st->entries[e].tensor != t) ed_tensor_free(st->entries[e].tensor);
        st->entries[e].tensor = t;
        st->entries[e].trainable = trainable;
        return ED_OK;
    }
    if (insert_entry(st, name, t, trainable) != ED_OK) {
        ed_tensor_free(t);
        return ED_ERR;
    }
    return ED_OK;
}

static ed_tensor *check_existing(const char *name, ed_tensor *have, ed_dtype dt, ed_shape shape)
{
    if (have->dtype == dt && ed_shape_eq(have->shape, shape)) return have;
    char have_str[128], want_str[128];
    ed_fail("store: \"%s\" is %s but the graph wants %s", name,
            ed_type_str(have->dtype, have->shape, have_str, sizeof have_str),
            ed_type_str(dt, shape, want_str, sizeof want_str));
    return NULL;
}

ed_tensor *ed_store_ensure(ed_store *st, const char *name, ed_dtype dt, ed_shape shape, ed_init init, bool trainable)
{
    if (check_name(st, name) != ED_OK) return NULL;
    ed_tensor *have = ed_store_get(st, name);
    if (have) return check_existing(name, have, dt, shape);
    ed_tensor *t = ed_tensor_new(dt, shape);
    if (!t) {
        char why[ED_ERROR_MAX]; /* copied: ed_fail rewrites the buffer it reads */
        snprintf(why, sizeof why, "%s", ed_last_error());
        ed_fail("store: \"%s\": %s", name, why);
        return NULL;
    }
    if (ed_init_fill(t, init, st->seed, name) != ED_OK) {
        ed_tensor_free(t);
        return NULL;
    }
    if (ed_store_put(st, name, t, trainable) != ED_OK) return NULL;
    return t;
}

int ed_store_count(const ed_store *st) { return st ? st->count : 0; }

static bool index_ok(const ed_store *st, int i) { return st && i >= 0 && i < st->count; }

const char *ed_store_name(const ed_store *st, int i) { return index_ok(st, i) ? st->entries[i].name : NULL; }

ed_tensor *ed_store_tensor(const ed_store *st, int i) { return index_ok(st, i) ? st->entries[i].tensor : NULL; }

bool ed_store_trainable(const ed_store *st, int i) { return index_ok(st, i) && st->entries[i].trainable; }

int ed_store_check_finite(const ed_store *st)
{
    for (int i = 0; i < ed_store_count(st); i++) {
        int64_t bad = ed_tensor_first_nonfinite(ed_store_tensor(st, i));
        if (bad >= 0)
            return ed_fail("%s holds a non-finite value at element %lld", ed_store_name(st, i), (long long)bad);
    }
    return ED_OK;
}
