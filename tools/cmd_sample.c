/* edifice sample: draw samples from a trained model's checkpoint, as .npy or a plot. */
#include "io/npy.h"
#include "io/plot.h"
#include "models/reconstruct.h"
#include "models/toy_data.h"
#include "tools/cli.h"
#include "tools/gen_args.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char usage[] =
    "usage: edifice sample MODEL --ckpt FILE [--n N] --out FILE.npy|FILE.png [--no-data] [--obs FILE.npy]\n"
    "                      [--reconstruct FILE.npy|DATA]\n"
    "                      [--label K] [--sampler NAME] [--steps K] [--guidance S] [--eta X] [--seed S]\n"
    "                      [--batch B] [--backend jit|interp] [--weights f32|bf16|f16]\n"
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
    "                    .npy output gets the labels as F.labels.npy)\n"
    "  --reconstruct X   autoencoders (vae, vqvae): instead of sampling, reconstruct the\n"
    "                    images of X (an .npy file or a data set's name, read as --data\n"
    "                    reads it; --n: its first N rows, default all, or 50 for a PNG).\n"
    "                    F.npy gets the reconstructions; F.png pairs of rows, originals\n"
    "                    above their reconstructions\n";

/* [N, ...] -> [N * rows, cols] points for a scatter plot (cols = the last axis). */
static ed_tensor *as_points(const ed_tensor *t)
{
    int64_t cols = t->shape.dim[t->shape.rank - 1];
    if (t->shape.rank < 2 || cols < 2) return NULL;
    return ed_tensor_wrap(t->dtype, ed_shape2(ed_tensor_numel(t) / cols, cols), t->data);
}

int plot_over_data(const char *cmd, const char *path, const ed_tensor *samples, const ed_tensor *data,
                   const char *caption)
{
    ed_tensor *p = as_points(samples), *u = data ? as_points(data) : NULL;
    ed_scatter_opts o = {.caption = caption};
    int rc = CLI_OK;
    if (!p) rc = cli_error(CLI_FAIL, "%s: a plot needs samples with at least 2 columns", cmd);
    else if (ed_plot_scatter(path, p, u, &o) != ED_OK) rc = cli_error(CLI_FAIL, "%s: %s", cmd, ed_last_error());
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

/* Pixels per image pixel in a grid: images at least 64 pixels on a side. */
static int image_scale(const ed_gen_model *m)
{
    int64_t h = m->sample.rank == 3 ? m->sample.dim[1] : 64;
    return h < 64 ? (int)(64 / h) : 1;
}

/* Rows [0, n) of the originals and their reconstructions, interleaved ten to a row. */
static ed_tensor *pairs(const ed_tensor *x, const ed_tensor *r, int64_t n)
{
    ed_shape s = x->shape;
    s.dim[0] = 2 * ((n + 9) / 10) * 10;
    ed_tensor *t = ed_tensor_new(ED_F32, s);
    if (!t) return NULL;
    int64_t row = ed_tensor_numel(x) / x->shape.dim[0];
    float *dst = t->data;
    for (int64_t i = 0; i < s.dim[0]; i++) {
        int64_t k = i / 20 * 10 + i % 10; /* the image this tile shows */
        const ed_tensor *from = i % 20 < 10 ? x : r;
        if (k < n) memcpy(dst + i * row, (const float *)from->data + k * row, (size_t)row * sizeof(float));
        else memset(dst + i * row, 0, (size_t)row * sizeof(float));
    }
    return t;
}

static int reconstruct(gen_args *a, long long n, const char *out, const char *spec)
{
    ed_checkpoint ck = {0};
    ed_dataset d = {0};
    ed_tensor *r = NULL, *grid = NULL;
    int rc = gen_load(a, &ck);
    if (rc != CLI_OK) return rc;
    const ed_gen_model *m = &ck.model;
    bool plot = cli_ends_with(out, ".png");
    if (!ed_gen_can_reconstruct(m))
        rc = cli_error(CLI_USAGE, "sample: %s cannot reconstruct data (vae and vqvae can)", m->def->name);
    else if (ed_dataset_open(&d, spec, n > 0 ? n : 10000, a->seed) != ED_OK) /* generated sets: n rows */
        rc = cli_error(CLI_FAIL, "sample: --reconstruct %s: %s", spec, ed_last_error());
    if (rc == CLI_OK) {
        ed_tensor *x = d.x;
        if (n < 0) n = plot && x->shape.dim[0] > 50 ? 50 : x->shape.dim[0];
        if (n > x->shape.dim[0])
            rc = cli_error(CLI_USAGE, "sample: --n %lld, but %s has only %lld rows", n, spec,
                           (long long)x->shape.dim[0]);
        if (rc == CLI_OK) {
            x->shape.dim[0] = n; /* the first n rows: the data is row-major */
            int64_t row = ed_tensor_numel(x) / n;
            if (row == ed_gen_model_dim(m)) /* flat rows of the right size are images too */
                x->shape = ed_gen_model_batch_shape(m, n);
            if (ed_gen_reconstruct(m, ck.store, x, 0, a->backend, &r) != ED_OK)
                rc = cli_error(CLI_FAIL, "sample: %s", ed_last_error());
        }
    }
    if (rc == CLI_OK && plot) {
        if (!(grid = pairs(d.x, r, n)) || ed_plot_image_grid_nchw(out, grid, 10, image_scale(m)) != ED_OK)
            rc = cli_error(CLI_FAIL, "sample: %s", ed_last_error());
        else printf("wrote %s (%lld images above their reconstructions)\n", out, n);
    } else if (rc == CLI_OK) {
        rc = write_npy("sample", out, r);
    }
    ed_tensor_free(grid);
    ed_tensor_free(r);
    ed_dataset_free(&d);
    ed_checkpoint_free(&ck);
    return rc;
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
        obs = ed_data_load_npy(obs_path); /* f32 or f64, at least one row, finite: as train reads data */
        if (!obs) rc = cli_error(CLI_FAIL, "sample: --obs %s", ed_last_error());
        else if (obs->shape.dim[1] != m->obs_size)
            rc = cli_error(CLI_FAIL, "sample: --obs %s has %lld columns; %s takes observations [N, %lld]", obs_path,
                           (long long)obs->shape.dim[1], m->def->name, (long long)m->obs_size);
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
        /* The grid: one class per row for a class-conditional model, else square-ish. */
        if (ed_plot_image_grid_nchw(out, s, cols, image_scale(m)) != ED_OK)
            rc = cli_error(CLI_FAIL, "sample: %s", ed_last_error());
    } else if (rc == CLI_OK && plot) {
        char caption[256], name[64];
        snprintf(caption, sizeof caption, "%s, step %lld, sampler %s: %lld samples%s", m->def->name, (long long)ck.step,
                 ed_gen_sampler_name(m, &a->so, name, sizeof name), n, underlay ? " over fresh data" : "");
        rc = plot_over_data("sample", out, s, underlay ? fresh.x : NULL, caption);
    } else if (rc == CLI_OK) {
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
    const char *out = NULL, *obs = NULL, *recon = NULL, *v;
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
        } else if (cli_option(argc, argv, &i, "--reconstruct", &v)) {
            if (!v) rc = cli_error(CLI_USAGE, "sample: --reconstruct needs a file or a data set");
            recon = v;
        } else rc = cli_error(CLI_USAGE, "sample: unexpected argument '%s' (try edifice sample --help)", argv[i]);
    }
    if (rc == CLI_OK && !out) rc = cli_error(CLI_USAGE, "sample: --out FILE.npy|FILE.png is required");
    if (rc == CLI_OK && recon && (obs || label >= 0))
        rc = cli_error(CLI_USAGE, "sample: --reconstruct takes no --obs or --label");
    if (rc == CLI_OK && recon) return reconstruct(&a, n, out, recon);
    return rc == CLI_OK ? sample(&a, n, label, out, obs, underlay) : rc;
}
