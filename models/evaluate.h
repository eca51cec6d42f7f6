/* Evaluating a trained model against its data, beside a floor: how far two independent
 * draws of the data are from each other, the figure a perfect model would reach.
 *
 * The reference is a fresh draw of the data, and the samples are drawn for its
 * observations. A generated set gives the floor as ED_EVAL_FLOOR_DRAWS more fresh draws
 * (its sliced Wasserstein floor varies by some 20% from one pair of draws to the next:
 * moons' points per moon are binomial, so the mean over the draws is taken); a file's
 * rows are split into two random halves, the reference and one floor draw. A
 * conditional model is compared on (observation, sample) vectors. */
#ifndef ED_EVALUATE_H
#define ED_EVALUATE_H

#include "models/classifier.h"
#include "models/frechet.h"
#include "models/trainer.h"

#define ED_EVAL_FLOOR_DRAWS 4

typedef struct {
    ed_dataset ref;                        /* the data the samples are compared with */
    ed_dataset floor[ED_EVAL_FLOOR_DRAWS]; /* the draws compared with ref for the floor */
    int nfloor;
    int64_t n; /* rows of each: as asked, or at most half a file's rows */
} ed_eval_data;

/* The data to evaluate ck's model on: spec (NULL: what it was trained on), n rows of
 * each draw, seeded by seed (the sampler's). ED_ERR if the data does not fit the model
 * or a file has under 4 rows. */
int ed_eval_data_open(ed_eval_data *e, const ed_checkpoint *ck, const char *spec, int64_t n, uint64_t seed);
void ed_eval_data_free(ed_eval_data *e);

typedef struct {
    double swd, swd_floor;   /* sliced Wasserstein-1 (256 directions) to ref: the samples,
                                and the mean over the floor draws */
    double mmd2, mmd2_floor; /* RBF MMD^2 to ref: the samples, and floor draw 0 */
    double bandwidth;        /* of the kernel: ref's median distance */
} ed_eval_figures;

/* samples [e->n, sample...], drawn for e->ref's observations, against e->ref. */
int ed_eval_compare(const ed_eval_data *e, const ed_tensor *samples, ed_eval_figures *out);

/* A family's own figures (models/registry.h: figures, figure_nodes) over a whole data
 * split: the per-sample figures of every row averaged, or a histogram's perplexity or
 * count of categories used (ed_figure_kind) summed over every row. Rows go in order in batches
 * (the last one smaller), each batch one program call with its own random draws (seed,
 * call = batch index), so the result is a function of the store, the data and the seed. */
typedef struct {
    int64_t batch;      /* rows per program call [500] */
    uint64_t seed;      /* the figures' random draws (IWAE's samples, dequantisation) [0] */
    ed_backend backend; /* [JIT] */
} ed_eval_opts;

/* The mean over d's rows of each of m's figures into means[0..nfigures-1]; returns the
 * number of figures (0 for a family without any) or -1 with ed_last_error(). st holds
 * the model's params (a checkpoint's store). */
int ed_eval_model_figures(const ed_gen_model *m, ed_store *st, const ed_dataset *d, const ed_eval_opts *o,
                          double *means);

/* ---- images: figures in a classifier's feature space ---------------------------------
 * For labelled images with a test split (digits, fashion_mnist), samples are judged by
 * the feature classifier of models/classifier.h (default options, seed 0: one
 * classifier per data set, trained on its train split and cached): the Frechet distance
 * of their features to the test split's, beside a floor (as many train rows, drawn by
 * the eval seed, against the test split); the spread of their predicted classes; and
 * for a class-conditional model the share predicted as the class each was drawn for,
 * beside the classifier's own accuracy on the test split. */
typedef struct {
    ed_dataset train, test;
    ed_classifier clf;
    ed_classifier_cache cache; /* where the classifier came from */
    ed_feature_stats test_stats;
    double test_accuracy; /* the classifier's, on the test split */
} ed_eval_images;

/* For spec (NULL: what ck's model was trained on): 1 when the figures apply (the
 * classifier loaded or trained now), 0 when they do not (the data have no labels or no
 * test split; ed_last_error() says which), -1 on an error (ed_last_error()). */
int ed_eval_images_open(ed_eval_images *e, const ed_checkpoint *ck, const char *spec);
void ed_eval_images_free(ed_eval_images *e);

/* The labels to draw n class-conditional samples for: the test split's labels in
 * order, repeated, so the samples' classes are spread as the test split's. i32 [n]. */
ed_tensor *ed_eval_images_labels(const ed_eval_images *e, int64_t n);

typedef struct {
    int64_t n, floor_n;                        /* samples; floor rows (n, at most the train split's) */
    double frechet, frechet_floor;             /* to the test split's features */
    int64_t classes_hit, floor_classes_hit;    /* classes predicted at least once */
    double class_perplexity, floor_perplexity; /* exp(entropy) of the predicted classes */
    double label_accuracy;                     /* predicted == requested; NAN without labels */
} ed_eval_image_figures;

/* samples f32 [n >= 2, C, H, W] (drawn for labels i32 [n], or NULL for an unconditional
 * model) against e's test split; the floor's train rows are drawn with seed. */
int ed_eval_images_compare(const ed_eval_images *e, const ed_tensor *samples, const ed_tensor *labels, uint64_t seed,
                           ed_eval_image_figures *out);

#endif
