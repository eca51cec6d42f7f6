/* Training data named the way the CLI names it, and minibatches drawn from it.
 *
 * A spec is one of
 *   a built-in 2-D set   moons, circles, swiss_roll, 8gaussians, checkerboard: n rows
 *                        generated from seed (models/toy_data.h), unconditional [n, 2]
 *   demo                 the obstacle-avoidance demonstrations: obs [n, 6] -> action
 *                        chunks [n, 8, 2]
 *   FILE.npy             any [N, D] array, unconditional
 *   OBS.npy,ACTIONS.npy  pairs: obs [N, O] and action chunks [N, H, A]
 * (n and seed only matter for the generated sets.)
 *
 * Batches are drawn uniformly with replacement; the rows of batch k are a function of
 * (seed, k) only (Philox stream FNV-1a("train.batch"), call k), so the data RNG's whole
 * state is the next batch index and a resumed run draws the same batches. */
#ifndef ED_DATASET_H
#define ED_DATASET_H

#include "runtime/tensor.h"

#include <stdint.h>

typedef struct {
    char spec[1024];
    int64_t n;     /* the n asked for (generated sets) */
    uint64_t seed; /* the seed asked for (generated sets) */
    ed_tensor *x;   /* f32 [N, sample...] */
    ed_tensor *obs; /* f32 [N, O] or NULL (unconditional) */
} ed_dataset;

/* The names of the built-in sets, for help texts: "moons, circles, ..., demo". */
const char *ed_dataset_builtin_names(void);

/* At most INT32_MAX rows. On failure *d is zeroed and ed_last_error() says why (naming the file if any). */
int ed_dataset_open(ed_dataset *d, const char *spec, int64_t n, uint64_t seed);
void ed_dataset_free(ed_dataset *d);

int64_t ed_dataset_rows(const ed_dataset *d);
ed_shape ed_dataset_sample_shape(const ed_dataset *d); /* x's shape without axis 0 */
int64_t ed_dataset_obs_size(const ed_dataset *d);      /* 0 when unconditional */

/* FNV-1a 64 over the shapes and bytes of x and obs: checkpoints keep it so a resumed
 * run notices data that changed under the same spec (an edited .npy file). */
uint64_t ed_dataset_fingerprint(const ed_dataset *d);

/* Rows of batch k into xb [B, sample...] and ob [B, O] (ob NULL when unconditional). */
int ed_dataset_batch(const ed_dataset *d, uint64_t seed, uint64_t k, ed_tensor *xb, ed_tensor *ob);

#endif
