/* score_samples: edifice eval's sample figures for samples made elsewhere (the PyTorch
 * twins of bench/torch/learning.py), so both sides are judged by the same code: the same
 * feature classifier (cached as `edifice eval` caches it) and the same sliced Wasserstein.
 *
 *   score_samples MODEL DATA SEED SAMPLES.npy [LABELS.npy]
 *
 * MODEL names the family whose data facts apply (dit, score_sde, ...); DATA is a data
 * spec. Labelled images print eval's image figures (frechet_distance, class spread,
 * label_accuracy when LABELS is given); other data print sliced Wasserstein-1 and its
 * floor against fresh draws seeded by SEED, as `edifice eval` does. */
#include "io/npy.h"
#include "models/evaluate.h"
#include "models/registry.h"
#include "runtime/error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(void)
{
    fprintf(stderr, "score_samples: %s\n", ed_last_error());
    return 1;
}

/* A checkpoint with no params: the model's facts from the data, as training sets them. */
static int open_model(ed_checkpoint *ck, const char *model, const char *spec)
{
    *ck = (ed_checkpoint){0};
    const ed_model_def *def = ed_model_find(model);
    if (!def) return ed_fail("no model %s", model);
    ed_dataset d;
    if (ed_dataset_open(&d, spec, 10000, 0) != ED_OK) return ED_ERR;
    ed_data_facts facts = ed_dataset_facts(&d);
    int rc = ed_gen_model_init_data(&ck->model, def, &facts);
    ed_dataset_free(&d);
    snprintf(ck->data, sizeof ck->data, "%s", spec);
    ck->data_n = 10000;
    return rc;
}

static int score_images(const ed_checkpoint *ck, const ed_tensor *s, const ed_tensor *labels, uint64_t seed)
{
    ed_eval_images e;
    if (ed_eval_images_open(&e, ck, NULL) != 1) return ED_ERR;
    ed_eval_image_figures v;
    int rc = ed_eval_images_compare(&e, s, labels, seed, &v);
    if (rc == ED_OK) {
        printf("frechet_distance %.6f\nfrechet_floor %.6f\nclasses_hit %lld\nclass_perplexity %.6f\n", v.frechet,
               v.frechet_floor, (long long)v.classes_hit, v.class_perplexity);
        if (!isnan(v.label_accuracy)) printf("label_accuracy %.6f\n", v.label_accuracy);
    }
    ed_eval_images_free(&e);
    return rc;
}

static int score_points(const ed_checkpoint *ck, const ed_tensor *s, uint64_t seed)
{
    ed_eval_data e;
    if (ed_eval_data_open(&e, ck, NULL, s->shape.dim[0], seed) != ED_OK) return ED_ERR;
    ed_eval_figures v;
    int rc = ed_eval_compare(&e, s, &v);
    if (rc == ED_OK)
        printf("swd %.6f\nswd_floor %.6f\nswd_ratio %.4f\nmmd2 %.6g\n", v.swd, v.swd_floor, v.swd / v.swd_floor,
               v.mmd2);
    ed_eval_data_free(&e);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 5 || argc > 6) {
        fprintf(stderr, "usage: score_samples MODEL DATA SEED SAMPLES.npy [LABELS.npy]\n");
        return 2;
    }
    uint64_t seed = strtoull(argv[3], NULL, 10);
    ed_checkpoint ck;
    if (open_model(&ck, argv[1], argv[2]) != ED_OK) return fail();
    ed_tensor *s = ed_npy_read(argv[4]), *labels = argc == 6 ? ed_npy_read(argv[5]) : NULL;
    int rc = s && (argc == 5 || labels) ? ED_OK : ED_ERR;
    if (rc == ED_OK) rc = ck.model.sample.rank == 3 ? score_images(&ck, s, labels, seed) : score_points(&ck, s, seed);
    ed_tensor_free(s);
    ed_tensor_free(labels);
    ed_checkpoint_free(&ck);
    return rc == ED_OK ? 0 : fail();
}
