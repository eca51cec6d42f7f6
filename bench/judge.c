/* `bench judge DATA SAMPLES.npy LABELS.npy [SEED]`: images drawn elsewhere (a PyTorch
 * twin's samples) judged by edifice's own feature classifier, with the figures and the
 * printing of `edifice eval` (models/evaluate.h), so both sides of the learning table
 * are measured by the same classifier. SAMPLES f32 [n, D] or [n, C, H, W] in the data's
 * pixel range, LABELS i32 [n] (the class each was drawn for), SEED the floor's draw. */
#include "bench/bench.h"
#include "io/npy.h"
#include "models/dataset.h"
#include "models/evaluate.h"
#include "models/registry.h"
#include "models/trainer.h"
#include "runtime/error.h"
#include "runtime/tensor.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* samples as [n, sample...] of the data's images; NULL with the reason printed. */
static ed_tensor *as_images(const ed_tensor *s, ed_shape sample)
{
    int64_t n = s->shape.rank ? s->shape.dim[0] : 0, per = ed_shape_numel(sample);
    if (s->dtype != ED_F32 || n < 2 || ed_tensor_numel(s) != n * per) {
        fprintf(stderr, "bench judge: the samples must be f32 [n >= 2, %lld]\n", (long long)per);
        return NULL;
    }
    ed_shape shape = {.rank = sample.rank + 1, .dim = {n}};
    for (int i = 0; i < sample.rank; i++) shape.dim[i + 1] = sample.dim[i];
    ed_tensor *t = ed_tensor_new(ED_F32, shape);
    if (t) memcpy(t->data, s->data, sizeof(float) * (size_t)(n * per));
    return t;
}

int bench_judge(int argc, char **argv)
{
    if (argc < 5 || argc > 6) {
        fprintf(stderr, "usage: bench judge DATA SAMPLES.npy LABELS.npy [SEED]\n");
        return 2;
    }
    ed_checkpoint ck = {.data_n = 0, .data_seed = 0};
    snprintf(ck.data, sizeof ck.data, "%s", argv[2]);
    ed_tensor *raw = ed_npy_read(argv[3]), *labels = raw ? ed_npy_read(argv[4]) : NULL, *s = NULL;
    uint64_t seed = argc == 6 ? strtoull(argv[5], NULL, 10) : 0;
    ed_dataset d;
    int rc = 1;
    if (!raw || !labels) fprintf(stderr, "bench judge: %s\n", ed_last_error());
    else if (ed_dataset_open_split(&d, ck.data, 0, 0, ED_SPLIT_TEST) != ED_OK)
        fprintf(stderr, "bench judge: %s\n", ed_last_error());
    else {
        ck.model.sample = ed_dataset_sample_shape(&d);
        ck.model.def = &ed_cgan_model; /* named only in a message */
        ed_dataset_free(&d);
        s = as_images(raw, ck.model.sample);
    }
    ed_eval_images e;
    ed_eval_image_figures v;
    if (s && labels->dtype == ED_I32 && ed_tensor_numel(labels) == s->shape.dim[0]) {
        if (ed_eval_images_open(&e, &ck, NULL) != 1) fprintf(stderr, "bench judge: %s\n", ed_last_error());
        else {
            if (ed_eval_images_compare(&e, s, labels, seed, &v) != ED_OK)
                fprintf(stderr, "bench judge: %s\n", ed_last_error());
            else {
                printf("image figures of %lld samples from %s against the test images of %s\n", (long long)v.n, argv[3],
                       ck.data);
                printf("  %-24s %12s %12s\n", "", "model", "floor");
                printf("  %-24s %12.4f %12.4f\n", "frechet_distance", v.frechet, v.frechet_floor);
                printf("  %-24s %12lld %12lld\n", "classes_hit", (long long)v.classes_hit,
                       (long long)v.floor_classes_hit);
                printf("  %-24s %12.4f %12.4f\n", "class_perplexity", v.class_perplexity, v.floor_perplexity);
                printf("  %-24s %12.4f %12.4f\n", "label_accuracy", v.label_accuracy, e.test_accuracy);
                rc = 0;
            }
            ed_eval_images_free(&e);
        }
    } else if (s) fprintf(stderr, "bench judge: the labels must be i32 [%lld]\n", (long long)s->shape.dim[0]);
    ed_tensor_free(raw);
    ed_tensor_free(labels);
    ed_tensor_free(s);
    return rc;
}
