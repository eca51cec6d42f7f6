/* edifice eval: how close a trained model's samples are to its data, next to how close
 * two independent draws of the data are to each other (the floor). */
#include "models/evaluate.h"
#include "models/metrics.h"
#include "models/toy_data.h"
#include "tools/cli.h"
#include "tools/gen_args.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char usage[] = "usage: edifice eval MODEL --ckpt FILE [--data SPEC] [--n N] [--plot FILE.png]\n"
                            "                    [--sampler NAME] [--steps K] [--guidance S] [--eta X] [--seed S]\n"
                            "                    [--batch B] [--backend jit|interp]\n"
                            "\n"
                            "Draws N samples (default 10000) and compares them with N fresh points of the data\n"
                            "(default: the data the checkpoint was trained on), printed beside the same figures\n"
                            "for two independent draws of the data (the floor a perfect model would reach;\n"
                            "sliced Wasserstein averaged over four draws):\n"
                            "  sliced Wasserstein-1 (256 directions) and squared MMD with an RBF kernel whose\n"
                            "  bandwidth is the median distance of the data. A conditional model is compared on\n"
                            "  (observation, action chunk) pairs, its chunks drawn for the fresh observations.\n"
                            "For 8gaussians, also the modes hit (each by at least 1% of the samples within 3\n"
                            "standard deviations of it) and the share of samples within 3 std of a mode.\n"
                            "For the demonstration set (demo), also the share of chunks that reach the goal\n"
                            "without touching the obstacle, and the left/right balance of the valid ones.\n"
                            "Generated sets are drawn fresh; for .npy data the rows are split into two random\n"
                            "halves (N is at most half the rows).\n"
                            "\n"
                            "Image models print their family's own figures on the test split, then, for labelled\n"
                            "images with a test split (digits, fashion_mnist), N samples (default: the test split's\n"
                            "size) judged by a classifier trained once per data set on its train split (an MLP\n"
                            "256-128 on the pixels, 3000 Adam steps, seed 0; cached in $EDIFICE_CACHE, else\n"
                            "$XDG_CACHE_HOME/edifice, else ~/.cache/edifice):\n"
                            "  frechet_distance  of its last hidden layer's features, to the test split's; the floor\n"
                            "                    is N train images (at most the split) against the test split\n"
                            "  classes_hit, class_perplexity  of the predicted classes (floor: the train images')\n"
                            "  label_accuracy    class-conditional models: the share of samples predicted as the\n"
                            "                    class they were drawn for (labels as the test split's); floor:\n"
                            "                    the classifier's accuracy on the test split\n"
                            "\n"
                            "  --plot FILE.png   also write a scatter plot of the samples over the data\n";

static void print_demo(const ed_tensor *obs, const ed_tensor *chunks, const ed_tensor *data_chunks)
{
    ed_demo_stats m, d;
    if (ed_demo_evaluate(obs, chunks, 0, &m) != ED_OK || ed_demo_evaluate(obs, data_chunks, 0, &d) != ED_OK) {
        cli_error(CLI_FAIL, "eval: %s", ed_last_error());
        return;
    }
    printf("%-26s %11.1f%% %11.1f%%\n", "valid chunks", 100 * m.valid_rate, 100 * d.valid_rate);
    printf("%-26s %11.1f%% %11.1f%%\n", "  reach the goal", 100 * m.reach_rate, 100 * d.reach_rate);
    printf("%-26s %11.1f%% %11.1f%%\n", "  hit the obstacle", 100 * m.collision_rate, 100 * d.collision_rate);
    double ml = m.left + m.right ? 100.0 * (double)m.left / (double)(m.left + m.right) : 0;
    double dl = d.left + d.right ? 100.0 * (double)d.left / (double)(d.left + d.right) : 0;
    printf("%-26s %5.1f/%4.1f%% %5.1f/%4.1f%%\n", "left/right (passing ones)", ml, 100 - ml, dl, 100 - dl);
}

/* 8gaussians: how many of its modes the samples reach, and how many samples are near
 * one, beside the same for the reference draw. */
static void print_modes(const ed_tensor *samples, const ed_tensor *data)
{
    double centers[16];
    int k = ed_toy_modes(ED_TOY_8GAUSSIANS, centers, 8);
    double std = ed_toy_default_noise(ED_TOY_8GAUSSIANS);
    ed_mode_coverage m, d;
    if (ed_mode_coverage_of(samples, centers, k, std, 0.01, &m) != ED_OK ||
        ed_mode_coverage_of(data, centers, k, std, 0.01, &d) != ED_OK) {
        cli_error(CLI_FAIL, "eval: %s", ed_last_error());
        return;
    }
    printf("%-26s %10d/%d %10d/%d\n", "modes hit (>= 1% each)", m.modes_hit, k, d.modes_hit, k);
    printf("%-26s %11.1f%% %11.1f%%\n", "within 3 std of a mode", 100 * m.near_share, 100 * d.near_share);
}

/* The family's own figures on the test split of spec (or, for a set without one, on
 * the data the model was trained on). */
static int print_model_figures(gen_args *a, ed_checkpoint *ck, const char *spec)
{
    ed_dataset d = {0};
    const char *which = "test split";
    if (ed_dataset_open_split(&d, spec, ck->data_n, ck->data_seed, ED_SPLIT_TEST) != ED_OK) {
        which = "training data (the set has no test split)";
        if (ed_dataset_open(&d, spec, ck->data_n, ck->data_seed) != ED_OK)
            return cli_error(CLI_FAIL, "eval: %s", ed_last_error());
    }
    const ed_gen_model *m = &ck->model;
    double means[ED_MAX_FIGURES];
    int rc = CLI_OK;
    if (ed_eval_model_figures(m, ck->store, &d, &(ed_eval_opts){.seed = a->seed, .backend = a->backend}, means) < 0)
        rc = cli_error(CLI_FAIL, "eval: %s", ed_last_error());
    else {
        printf("eval %s (%s, step %lld) on the %s of %s, %lld rows:\n", m->def->name, a->ckpt, (long long)ck->step,
               which, spec, (long long)ed_dataset_rows(&d));
        for (int i = 0; i < m->def->nfigures; i++)
            printf("  %-24s %12.4f %s\n", m->def->figures[i].name, means[i], m->def->figures[i].unit);
    }
    ed_dataset_free(&d);
    return rc;
}

static void print_image_figures(const ed_eval_image_figures *v, double test_accuracy)
{
    printf("  %-24s %12s %12s\n", "", "model", "floor");
    printf("  %-24s %12.4f %12.4f\n", "frechet_distance", v->frechet, v->frechet_floor);
    printf("  %-24s %12lld %12lld\n", "classes_hit", (long long)v->classes_hit, (long long)v->floor_classes_hit);
    printf("  %-24s %12.4f %12.4f\n", "class_perplexity", v->class_perplexity, v->floor_perplexity);
    if (!isnan(v->label_accuracy))
        printf("  %-24s %12.4f %12.4f\n", "label_accuracy", v->label_accuracy, test_accuracy);
}

/* The classifier's figures of N samples (models/evaluate.h), for labelled images. */
static int eval_images(gen_args *a, ed_checkpoint *ck, const char *spec, long long n)
{
    ed_eval_images e;
    int got = ed_eval_images_open(&e, ck, spec);
    if (got < 0) return cli_error(CLI_FAIL, "eval: %s", ed_last_error());
    if (got == 0) {
        printf("(no classifier figures: %s)\n", ed_last_error());
        return CLI_OK;
    }
    const ed_classifier *c = &e.clf;
    if (e.cache.loaded) fprintf(stderr, "eval: feature classifier loaded from %s\n", e.cache.path);
    else
        fprintf(stderr, "eval: feature classifier trained in %.1f s%s%s%s%s\n", e.cache.seconds,
                e.cache.saved ? ", cached at " : "", e.cache.saved ? e.cache.path : "",
                e.cache.saved ? "" : "; not cached: ", e.cache.saved ? "" : e.cache.note);
    int64_t count = n < 0 ? ed_dataset_rows(&e.test) : n;
    ed_tensor *labels = ck->model.def->uses_labels ? ed_eval_images_labels(&e, count) : NULL, *s = NULL;
    ed_eval_image_figures v;
    int rc = ck->model.def->uses_labels && !labels ? cli_error(CLI_FAIL, "eval: %s", ed_last_error()) : CLI_OK;
    if (rc == CLI_OK) rc = gen_draw(a, ck, count, NULL, labels, &s);
    if (rc == CLI_OK && ed_eval_images_compare(&e, s, labels, a->seed, &v) != ED_OK)
        rc = cli_error(CLI_FAIL, "eval: %s", ed_last_error());
    if (rc == CLI_OK) {
        char name[64];
        printf("image figures of %lld samples (sampler %s) against the %lld test images of %s; floor: %lld train "
               "images\n",
               (long long)v.n, ed_gen_sampler_name(&ck->model, &a->so, name, sizeof name),
               (long long)ed_dataset_rows(&e.test), spec, (long long)v.floor_n);
        printf("(features: the last hidden layer (%lld) of a classifier %lld-%lld-%d, test accuracy %.4f)\n",
               (long long)c->o.hidden[1], (long long)c->o.hidden[0], (long long)c->o.hidden[1], (int)c->classes,
               e.test_accuracy);
        print_image_figures(&v, e.test_accuracy);
    }
    ed_tensor_free(s);
    ed_tensor_free(labels);
    ed_eval_images_free(&e);
    return rc;
}

static int eval(gen_args *a, const char *spec, long long n, const char *plot)
{
    ed_checkpoint ck = {0};
    ed_eval_data e = {0};
    ed_eval_figures v;
    ed_tensor *s = NULL;
    int rc = gen_load(a, &ck);
    if (rc != CLI_OK) return rc;
    if (!spec) spec = ck.data;
    if (ck.model.def->nfigures) rc = print_model_figures(a, &ck, spec);
    if (rc != CLI_OK || ck.model.sample.rank == 3) { /* images: the family's figures and the classifier's */
        if (rc == CLI_OK) rc = eval_images(a, &ck, spec, n);
        ed_checkpoint_free(&ck);
        return rc;
    }
    if (ed_eval_data_open(&e, &ck, spec, n < 0 ? 10000 : n, a->seed) != ED_OK)
        rc = cli_error(CLI_FAIL, "eval: %s", ed_last_error());
    if (rc == CLI_OK) rc = gen_draw(a, &ck, e.n, e.ref.obs, ck.model.classes > 0 ? e.ref.labels : NULL, &s);
    if (rc == CLI_OK && ed_eval_compare(&e, s, &v) != ED_OK) rc = cli_error(CLI_FAIL, "eval: %s", ed_last_error());
    if (rc == CLI_OK) {
        const ed_gen_model *m = &ck.model;
        char name[64];
        printf("eval %s (%s, step %lld), sampler %s: %lld samples against %lld fresh points of %s\n", m->def->name,
               a->ckpt, (long long)ck.step, ed_gen_sampler_name(m, &a->so, name, sizeof name), (long long)e.n,
               (long long)e.n, spec);
        printf("%-26s %12s %12s %8s\n", "", "model", "floor", "ratio");
        if (e.nfloor > 1)
            printf("(the floor: two independent draws of the data; sliced W1 averaged over %d)\n", e.nfloor);
        printf("%-26s %12.5f %12.5f %8.2f\n", "sliced Wasserstein-1", v.swd, v.swd_floor,
               v.swd_floor > 0 ? v.swd / v.swd_floor : 0);
        snprintf(name, sizeof name, "MMD^2 (rbf, sigma %.3g)", v.bandwidth);
        printf("%-26s %12.6f %12.6f\n", name, v.mmd2, v.mmd2_floor);
        if (strcmp(spec, "demo") == 0) print_demo(e.ref.obs, s, e.ref.x);
        if (strcmp(spec, "8gaussians") == 0) print_modes(s, e.ref.x);
    }
    if (rc == CLI_OK && plot) {
        char caption[1536], name[64];
        snprintf(caption, sizeof caption,
                 "%s, step %lld, sampler %s: %lld samples against fresh %s\nsliced W1 %.4g (floor %.4g), MMD^2 %.3g "
                 "(floor %.3g)",
                 ck.model.def->name, (long long)ck.step, ed_gen_sampler_name(&ck.model, &a->so, name, sizeof name),
                 (long long)e.n, spec, v.swd, v.swd_floor, v.mmd2, v.mmd2_floor);
        rc = plot_over_data("eval", plot, s, e.ref.x, caption);
    }
    ed_tensor_free(s);
    ed_eval_data_free(&e);
    ed_checkpoint_free(&ck);
    return rc;
}

int cmd_eval(int argc, char **argv)
{
    gen_args a = {.cmd = "eval"};
    int rc;
    if (!gen_start(&a, usage, "edifice eval flow_matching --ckpt F", argc, argv, &rc)) return rc;
    const char *spec = NULL, *plot = NULL, *v;
    long long n = -1;
    for (int i = 2; i < argc && rc == CLI_OK; i++) {
        if (gen_arg(&a, argc, argv, &i, &rc)) continue;
        if (cli_option(argc, argv, &i, "--n", &v)) rc = gen_parse_count("eval", "--n", v, 2, INT32_MAX, &n);
        else if (cli_option(argc, argv, &i, "--data", &v)) {
            if (!v) rc = cli_error(CLI_USAGE, "eval: --data needs a value");
            spec = v;
        } else if (cli_option(argc, argv, &i, "--plot", &v)) {
            if (!v || !cli_ends_with(v, ".png"))
                rc = cli_error(CLI_USAGE, "eval: --plot wants FILE.png, got '%s'", v ? v : "");
            plot = v;
        } else rc = cli_error(CLI_USAGE, "eval: unexpected argument '%s' (try edifice eval --help)", argv[i]);
    }
    return rc == CLI_OK ? eval(&a, spec, n, plot) : rc;
}
