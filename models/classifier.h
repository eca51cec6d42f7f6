/* A small classifier of labelled images, trained once per data set and cached: its last
 * hidden layer is the feature space of `edifice eval`'s image figures (Frechet distance,
 * class spread, conditional accuracy: models/evaluate.h).
 *
 * Network: flattened pixels -> dense hidden[0], relu -> dense hidden[1], relu (the
 * features) -> dense classes (logits); params clf.hidden.0.*, clf.hidden.1.*, clf.out.*
 * (glorot uniform, zero biases) from the store seed `seed`. Training: softmax cross
 * entropy, Adam (lr, betas 0.9, 0.999), `steps` steps of `batch` train rows drawn by the
 * data sets' batch rule (models/dataset.h) with `seed`, Gaussian noise of std
 * input_noise added to the pixels (drawn in the graph): one ed_train_step program on
 * the JIT. The result is a function of the train split and the options (bit for bit at
 * a fixed BLAS thread count: multi-threaded OpenBLAS may sum in another order; the cache
 * keeps the first one trained). The noise is there for the digits, whose test split's
 * writers are not the train split's: without it the network fits the train split
 * exactly and reaches some 92% on the test split, with it 95-96% (measured, seeds 0-2;
 * Fashion-MNIST: 86%, seed 0).
 *
 * Cache: DIR/classifier-NAME-FINGERPRINT-SETTINGS.safetensors, where DIR is
 * $EDIFICE_CACHE, else $XDG_CACHE_HOME/edifice, else $HOME/.cache/edifice; NAME is the
 * data spec's name, FINGERPRINT the train split's ed_dataset_fingerprint and SETTINGS a
 * hash of the options and ED_CLASSIFIER_VERSION. The file's metadata repeat all of them
 * and are checked on load, so changed data, options or network train a new classifier
 * and a stale file is never used. Written atomically (io/atomic_file.h). */
#ifndef ED_CLASSIFIER_H
#define ED_CLASSIFIER_H

#include "models/dataset.h"
#include "runtime/store.h"

#include <stdbool.h>

/* Bump when the network or its training changes: older cache files stop matching. */
#define ED_CLASSIFIER_VERSION 1

/* Zero fields take the defaults in brackets. */
typedef struct {
    int64_t hidden[2];  /* [256, 128]; the features are hidden[1] wide */
    int64_t steps;      /* [3000] */
    int64_t batch;      /* [128] */
    double lr;          /* [1e-3] */
    double input_noise; /* std of the noise on the pixels in training [0.3]; < 0: none */
    uint64_t seed;      /* init, batches and noise [0] */
} ed_classifier_opts;

typedef struct {
    ed_classifier_opts o; /* with the defaults filled in */
    ed_shape sample;      /* one image [C, H, W] */
    int32_t classes;
    uint64_t data_fingerprint; /* of the train split it learned */
    ed_store *st;              /* clf.* only */
    double final_loss;         /* the last training step's loss (NAN when loaded from an old run) */
} ed_classifier;

/* What ed_classifier_open did. */
typedef struct {
    char path[4096]; /* the cache file ("" when no cache folder could be named) */
    bool loaded;     /* read from path; else trained now */
    bool saved;      /* trained and written to path */
    char note[512];  /* why it was not saved, or "" */
    double seconds;  /* loading or training */
} ed_classifier_cache;

/* The options with the defaults filled in. */
ed_classifier_opts ed_classifier_settings(const ed_classifier_opts *o);

/* Train on train (labelled images) without touching the cache. */
int ed_classifier_train(ed_classifier *c, const ed_dataset *train, const ed_classifier_opts *o);

/* The cache folder (see above) into buf; ED_ERR when none can be named. */
int ed_classifier_cache_dir(char *buf, size_t size);
/* The cache file for train and o into buf. */
int ed_classifier_cache_path(const ed_dataset *train, const ed_classifier_opts *o, char *buf, size_t size);

/* The classifier for train and o: loaded from the cache when a matching file is there,
 * else trained and written to it. A cache that cannot be written is not an error (the
 * classifier is still returned; info->note says why). info may be NULL. */
int ed_classifier_open(ed_classifier *c, const ed_dataset *train, const ed_classifier_opts *o,
                       ed_classifier_cache *info);

int ed_classifier_save(const ed_classifier *c, const char *path);
/* Load path, which must have been written for exactly this train split and options. */
int ed_classifier_load(ed_classifier *c, const char *path, const ed_dataset *train, const ed_classifier_opts *o);

/* The features f32 [N, hidden[1]] (may be NULL) and the predicted classes i32 [N] (may
 * be NULL) of images x f32 [N, C, H, W] of the classifier's sample shape. */
int ed_classifier_apply(const ed_classifier *c, const ed_tensor *x, ed_tensor **features, ed_tensor **pred);

/* The share of d's rows whose predicted class is their label. */
int ed_classifier_accuracy(const ed_classifier *c, const ed_dataset *d, double *accuracy);

void ed_classifier_free(ed_classifier *c);

#endif
