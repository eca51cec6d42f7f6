/* The parameter store: named tensors in insertion order, plus seeded initializers.
 *
 * Graphs refer to parameters and state by name; the same name built into two graphs
 * binds to the same tensor here, and the store is what a checkpoint saves.
 * Random initializers draw from the Philox streams of runtime/philox.h with
 * seed = store seed, stream = FNV-1a hash of the parameter name and call = 0, so a
 * parameter's initial value depends only on (seed, name, shape, initializer) and
 * never on the order parameters are created. */
#ifndef ED_STORE_H
#define ED_STORE_H

#include "runtime/tensor.h"

#include <stdbool.h>
#include <stdint.h>

typedef enum {
    ED_INIT_ZEROS,
    ED_INIT_ONES,
    ED_INIT_NORMAL,
    ED_INIT_UNIFORM,
    ED_INIT_GLOROT_UNIFORM,
    ED_INIT_GLOROT_NORMAL,
    ED_INIT_KAIMING_UNIFORM,
    ED_INIT_KAIMING_NORMAL,
    ED_INIT_COUNT
} ed_init_kind;

/* normal: std = scale; uniform: U(-scale, scale);
 * glorot / kaiming: gain = scale, 0 means the default gain (1 for glorot, sqrt(2) for
 * kaiming); zeros / ones ignore scale.
 * Fans: rank >= 2: fan_in = dim[rank-2] * receptive, fan_out = dim[rank-1] * receptive,
 * receptive = product of dim[0 .. rank-3]; rank 1: fan_in = fan_out = dim[0];
 * rank 0: 1. (Weights are [in, out], used as x @ W.) */
typedef struct {
    ed_init_kind kind;
    double scale;
} ed_init;

/* "zeros", "ones", "normal", "uniform", "glorot_uniform", "glorot_normal",
 * "kaiming_uniform", "kaiming_normal"; "?" for an out-of-range kind. */
const char *ed_init_name(ed_init_kind kind);
/* Returns false (no error set) if s names no initializer. */
bool ed_init_parse(const char *s, ed_init_kind *out);

/* fan_in and fan_out of a shape as defined above. */
void ed_init_fans(ed_shape s, double *fan_in, double *fan_out);

/* Fills t in place. i32 tensors accept only zeros and ones. name selects the random
 * stream (may be NULL: treated as ""). Returns ED_OK or ED_ERR with a message. */
int ed_init_fill(ed_tensor *t, ed_init init, uint64_t seed, const char *name);

/* 32-bit FNV-1a hash of a name: the Philox stream id of a parameter's initializer. */
uint32_t ed_name_stream(const char *name);

typedef struct ed_store ed_store;

ed_store *ed_store_new(uint64_t seed);
void ed_store_free(ed_store *st);
uint64_t ed_store_seed(const ed_store *st);

/* NULL if absent (no error set). */
ed_tensor *ed_store_get(const ed_store *st, const char *name);
/* Takes ownership of t (also on failure, where t is freed); replaces an existing
 * entry of that name in place (freeing the old tensor, keeping its position).
 * A tensor may belong to one entry only. */
int ed_store_put(ed_store *st, const char *name, ed_tensor *t, bool trainable);
/* Returns the existing entry if its dtype and shape match (its trainable flag is left
 * as it was), NULL with a message naming both types on a mismatch, or creates,
 * initializes and inserts a new tensor. */
ed_tensor *ed_store_ensure(ed_store *st, const char *name, ed_dtype dt, ed_shape shape, ed_init init, bool trainable);

/* Entries in insertion order, 0 <= i < count. */
int ed_store_count(const ed_store *st);
const char *ed_store_name(const ed_store *st, int i);
ed_tensor *ed_store_tensor(const ed_store *st, int i);
/* ED_OK when every value is finite; else ED_ERR with "NAME holds a non-finite value at
 * element K" for the first one. */
int ed_store_check_finite(const ed_store *st);
bool ed_store_trainable(const ed_store *st, int i);

#endif
