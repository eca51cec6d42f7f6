/* Training data named the way the CLI names it, and minibatches drawn from it.
 *
 * A spec is one of
 *   a built-in 2-D set   moons, circles, swiss_roll, 8gaussians, checkerboard: n rows
 *                        generated from seed (models/toy_data.h), unconditional [n, 2]
 *   demo                 the obstacle-avoidance demonstrations: obs [n, 6] -> action
 *                        chunks [n, 8, 2]
 *   digits               the shipped 8x8 digits: images [N, 1, 8, 8], labels 0..9; train
 *                        is the first 1,500 rows, test the last 297 (models/image_data.h)
 *   fashion_mnist        Debian's dataset-fashion-mnist: images [N, 1, 28, 28], labels
 *                        0..9; train 60,000, test 10,000
 *   FILE.npy             any [N, D] array, unconditional; or images [N, H, W] (one
 *                        channel) or [N, C, H, W] (C <= 4), uint8 or float in [0, 1]
 *   FILE.npy,labels=Y.npy  the same with integer labels Y [N] (classes: max label + 1)
 *   OBS.npy,ACTIONS.npy  pairs: obs [N, O] and action chunks [N, H, A]
 * (n and seed only matter for the generated sets.)
 *
 * Images are f32 in [0, 1] with x's sample shape [C, H, W]; channels, height and width
 * say so (all 0 for other data). Only digits and fashion_mnist have a test split;
 * ed_dataset_open gives the train split (for every other spec: all of it).
 *
 * Batches are drawn uniformly with replacement; the rows of batch k are a function of
 * (seed, k) only (Philox stream FNV-1a("train.batch"), call k), so the data RNG's whole
 * state is the next batch index and a resumed run draws the same batches. */
#ifndef ED_DATASET_H
#define ED_DATASET_H

#include "models/image_data.h"
#include "runtime/tensor.h"

#include <stdint.h>

typedef struct {
    char spec[1024];
    int64_t n;     /* the n asked for (generated sets) */
    uint64_t seed; /* the seed asked for (generated sets) */
    ed_tensor *x;   /* f32 [N, sample...] */
    ed_tensor *obs; /* f32 [N, O] or NULL (unconditional) */
    ed_split split;
    ed_tensor *labels; /* i32 [N] in 0..classes-1, or NULL */
    int32_t classes;   /* 0 without labels */
    int64_t channels, height, width; /* x is images [N, C, H, W]; 0 otherwise */
    int64_t levels;                  /* grey levels of integer pixels (digits 17); 0: continuous */
} ed_dataset;

/* What a model needs to know of its data. */
typedef struct {
    ed_shape sample;  /* one sample's shape; images [C, H, W] */
    int64_t obs_size; /* observation width, 0: unconditional */
    int64_t classes;  /* label classes, 0: no labels */
    int64_t levels;   /* pixel levels, 0: continuous */
    bool unit_range;  /* every value of x in [0, 1] */
} ed_data_facts;

ed_data_facts ed_dataset_facts(const ed_dataset *d);

/* The names of the built-in sets, for help texts: "moons, circles, ..., demo". */
const char *ed_dataset_builtin_names(void);

/* At most INT32_MAX rows. On failure *d is zeroed and ed_last_error() says why (naming the file if any). */
int ed_dataset_open(ed_dataset *d, const char *spec, int64_t n, uint64_t seed);
/* The same for either split; asking for the test split of a spec without one is an error. */
int ed_dataset_open_split(ed_dataset *d, const char *spec, int64_t n, uint64_t seed, ed_split split);
void ed_dataset_free(ed_dataset *d);

int64_t ed_dataset_rows(const ed_dataset *d);
ed_shape ed_dataset_sample_shape(const ed_dataset *d); /* x's shape without axis 0 */
int64_t ed_dataset_obs_size(const ed_dataset *d);      /* 0 when unconditional */
bool ed_dataset_is_images(const ed_dataset *d);

/* FNV-1a 64 over the shapes and bytes of x and obs (and labels, when there are any): checkpoints keep it so a resumed
 * run notices data that changed under the same spec (an edited .npy file). */
uint64_t ed_dataset_fingerprint(const ed_dataset *d);

/* Rows of batch k into xb [B, sample...] and ob [B, O] (ob NULL when unconditional). */
int ed_dataset_batch(const ed_dataset *d, uint64_t seed, uint64_t k, ed_tensor *xb, ed_tensor *ob);
/* The labels of the same rows into lb, i32 [B] (an error when d has none). */
int ed_dataset_batch_labels(const ed_dataset *d, uint64_t seed, uint64_t k, ed_tensor *lb);

#endif
