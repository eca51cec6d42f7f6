/* edifice sample: draw samples from a trained model's checkpoint, as .npy or a plot. */
#include "io/npy.h"
#include "io/plot.h"
#include "tools/cli.h"
#include "tools/gen_args.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char usage[] =
    "usage: edifice sample MODEL --ckpt FILE [--n N] --out FILE.npy|FILE.png [--no-data] [--obs FILE.npy]\n"
    "                      [--label K] [--sampler NAME] [--steps K] [--guidance S] [--eta X] [--seed S]\n"
    "                      [--batch B] [--backend jit|interp]\n"
    "\n"
    "Draws N samples from MODEL's checkpoint. The whole sampler (every step of it) is one\n"
    "compiled call per batch.\n"
    "\n"
    "  --n N             samples (default 10000; with --obs, the observations' rows)\n"
    "  --out F.npy       the samples [N, sample...]; for a conditional model also the\n"
    "                    observations they were drawn for, as F.obs.npy\n"
    "  --out F.png       image data: a grid of the samples (N defaults to 100); otherwise\n"
    "                    a scatter plot of the samples (columns 0 and 1; action chunks:\n"
    "                    every waypoint) over a fresh draw of the training data in grey\n"
    "  --no-data         the plot without the data\n"
    "  --obs FILE.npy    observations [N, O] for a conditional model (default: a fresh\n"
    "                    draw of the training data's observations)\n"
    "  --label K         class-conditional models: every sample of class K (default: one\n"
    "                    class per row of the grid, row r is class r % classes; the\n"
    "                    .npy output gets the labels as F.labels.npy)\n";

/* [N, ...] -> [N * rows, cols] points for a scatter plot (cols = the last axis). */
static ed_tensor *as_points(const ed_tensor *t)
{
    int64_t cols = t->shape.dim[t->shape.rank - 1];
    if (t->shape.rank < 2 || cols < 2) return NULL;
    return ed_tensor_wrap(t->dtype, ed_shape2(ed_tensor_numel(t) / cols, cols), t->data);
}

int plot_over_data(const char *cmd, const char *path, const ed_tensor *samples, const ed_tensor *data)
{
    ed_tensor *p = as_points(samples), *u = data ? as_points(data) : NULL;
    int rc = CLI_OK;
    if (!p) rc = cli_error(CLI_FAIL, "%s: a plot needs samples with at least 2 columns", cmd);
    else if (ed_plot_scatter(path, p, u, NULL) != ED_OK) rc = cli_error(CLI_FAIL, "%s: %s", cmd, ed_last_error());
    else printf("wrote %s\n", path);
    ed_tensor_free(p);
    ed_tensor_free(u);
    return rc;
}

static int write_npy(const char *cmd, const char *path, const ed_tensor *t)
{
    if (ed_npy_write(path, t) != ED_OK) return cli_error(CLI_FAIL, "%s: %s", cmd, ed_last_error());
    printf("wrote %s\n", path);
    return CLI_OK;
}

/* The classes to draw for a class-conditional model: label (>= 0) for every sample, or
 * one class per row of a grid `cols` wide. *out stays NULL for other models. */
static int class_labels(const ed_gen_model *m, long long label, int64_t n, int64_t cols, ed_tensor **out)
{
    *out = NULL;
    if (m->classes == 0 && label >= 0)
        return cli_error(CLI_USAGE, "sample: %s is not class-conditional; --label is not used", m->def->name);
    if (m->classes == 0) return CLI_OK;
    if (label >= m->classes)
        return cli_error(CLI_USAGE, "sample: --label %lld is outside the model's classes 0..%lld", label,
                         (long long)m->classes - 1);
    *out = label >= 0 ? ed_tensor_new(ED_I32, ed_shape1(n)) : ed_gen_class_rows(n, m->classes, cols);
    if (!*out) return cli_error(CLI_FAIL, "sample: %s", ed_last_error());
    for (int64_t i = 0; label >= 0 && i < n; i++) ((int32_t *)(*out)->data)[i] = (int32_t)label;
    return CLI_OK;
}

static int sample(gen_args *a, long long n, long long label, const char *out, const char *obs_path, bool underlay)
{
    ed_checkpoint ck = {0};
    ed_dataset fresh = {0};
    ed_tensor *obs = NULL, *s = NULL, *labels = NULL;
    int rc = gen_load(a, &ck);
    if (rc != CLI_OK) return rc;
    const ed_gen_model *m = &ck.model;
    if (obs_path && m->obs_size == 0)
        rc = cli_error(CLI_USAGE, "sample: %s is unconditional; --obs is not used", m->def->name);
    if (rc == CLI_OK && obs_path) {
        obs = ed_npy_read(obs_path);
        if (!obs) rc = cli_error(CLI_FAIL, "sample: %s", ed_last_error());
        else if (obs->dtype != ED_F32 || obs->shape.rank != 2 || obs->shape.dim[1] != m->obs_size)
            rc = cli_error(CLI_FAIL, "sample: %s must be an f32 array [N, %lld] of observations", obs_path,
                           (long long)m->obs_size);
        else if (n < 0) n = obs->shape.dim[0];
        else if (n > obs->shape.dim[0])
            rc = cli_error(CLI_USAGE, "sample: --n %lld, but %s has only %lld rows", n, obs_path,
                           (long long)obs->shape.dim[0]);
        if (rc == CLI_OK && n < obs->shape.dim[0]) {
            obs->shape.dim[0] = n; /* the first n rows: the data is row-major */
        }
    }
    bool images = m->sample.rank == 3 && (m->sample.dim[0] == 1 || m->sample.dim[0] == 3);
    if (n < 0) n = images ? 100 : 10000;
    bool plot = cli_ends_with(out, ".png");
    if (images) underlay = false; /* a grid of images has no data underneath */
    /* A fresh draw of the training data: the observations to condition on and the plot's underlay. */
    if (rc == CLI_OK && ((plot && underlay) || (m->obs_size > 0 && !obs)))
        rc = gen_fresh_data(a, &ck, ck.data, n, 0, &fresh);
    if (rc == CLI_OK && m->obs_size > 0 && !obs) {
        obs = fresh.obs;
        fresh.obs = NULL;
    }
    int cols = (int)ceil(sqrt((double)n)); /* a square-ish grid */
    if (rc == CLI_OK) rc = class_labels(m, label, n, cols, &labels);
    if (rc == CLI_OK) rc = gen_draw(a, &ck, n, obs, labels, &s);
    if (rc == CLI_OK && plot && images) {
        /* Images at least 64 pixels on a side. */
        int scale = (int)(64 / m->sample.dim[1]) > 1 ? (int)(64 / m->sample.dim[1]) : 1;
        if (ed_plot_image_grid_nchw(out, s, cols, scale) != ED_OK)
            rc = cli_error(CLI_FAIL, "sample: %s", ed_last_error());
    } else if (rc == CLI_OK && plot) rc = plot_over_data("sample", out, s, underlay ? fresh.x : NULL);
    else if (rc == CLI_OK) {
        rc = write_npy("sample", out, s);
        if (rc == CLI_OK && m->obs_size > 0) {
            char path[4096];
            snprintf(path, sizeof path, "%.*s.obs.npy", (int)(strlen(out) - 4), out);
            rc = write_npy("sample", path, obs);
        }
        if (rc == CLI_OK && labels) {
            char path[4096];
            snprintf(path, sizeof path, "%.*s.labels.npy", (int)(strlen(out) - 4), out);
            rc = write_npy("sample", path, labels);
        }
    }
    ed_tensor_free(labels);
    ed_tensor_free(s);
    ed_tensor_free(obs);
    ed_dataset_free(&fresh);
    ed_checkpoint_free(&ck);
    return rc;
}

int cmd_sample(int argc, char **argv)
{
    gen_args a = {.cmd = "sample"};
    int rc;
    if (!gen_start(&a, usage, "edifice sample flow_matching --ckpt F --out x.png", argc, argv, &rc)) return rc;
    const char *out = NULL, *obs = NULL, *v;
    long long n = -1, label = -1;
    bool underlay = true;
    for (int i = 2; i < argc && rc == CLI_OK; i++) {
        if (gen_arg(&a, argc, argv, &i, &rc)) continue;
        if (strcmp(argv[i], "--no-data") == 0) underlay = false;
        else if (cli_option(argc, argv, &i, "--n", &v)) rc = gen_parse_count("sample", "--n", v, 1, INT32_MAX, &n);
        else if (cli_option(argc, argv, &i, "--label", &v))
            rc = gen_parse_count("sample", "--label", v, 0, INT32_MAX, &label);
        else if (cli_option(argc, argv, &i, "--out", &v)) {
            out = v;
            if (!v || !(cli_ends_with(v, ".npy") || cli_ends_with(v, ".png")))
                rc = cli_error(CLI_USAGE, "sample: --out wants FILE.npy or FILE.png, got '%s'", v ? v : "");
        } else if (cli_option(argc, argv, &i, "--obs", &v)) {
            if (!v) rc = cli_error(CLI_USAGE, "sample: --obs needs a file");
            obs = v;
        } else rc = cli_error(CLI_USAGE, "sample: unexpected argument '%s' (try edifice sample --help)", argv[i]);
    }
    if (rc == CLI_OK && !out) rc = cli_error(CLI_USAGE, "sample: --out FILE.npy|FILE.png is required");
    return rc == CLI_OK ? sample(&a, n, label, out, obs, underlay) : rc;
}
