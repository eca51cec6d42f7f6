/* edifice data: write samples of a built-in data set as .npy or as a PNG scatter plot,
 * or the first images of an image set as .npy or as a PNG grid. */
#include "models/dataset.h"
#include "models/toy_data.h"
#include "io/npy.h"
#include "io/plot.h"
#include "tools/cli.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: edifice data NAME --n N [--seed S] [--noise X] --out FILE.npy|FILE.png\n"
    "       edifice data IMAGES [--split train|test] [--n N] --out FILE.npy|FILE.png\n"
    "\n"
    "Writes N samples of a built-in data set, a function of (N, seed, noise).\n"
    "  NAME         moons, circles, swiss_roll, 8gaussians, checkerboard (2-D, [N, 2]),\n"
    "               or demo (observation [N, 6] -> action chunk [N, 8, 2])\n"
    "  IMAGES       digits, fashion_mnist, or IMG.npy[,labels=Y.npy] (see train --help):\n"
    "               the first N images of the split (default: 100 for a PNG, all for\n"
    "               .npy) as a grid, or as F.npy [N, C, H, W] in [0, 1] and, with\n"
    "               labels, F.labels.npy [N]\n"
    "  --out F.npy  the array; for demo two arrays, F.obs.npy and F.actions.npy (train\n"
    "               on them with --data F.obs.npy,F.actions.npy)\n"
    "  --out F.png  a scatter plot (demo: every waypoint of every chunk)\n"
    "  --seed S     default 0\n"
    "  --noise X    the 2-D sets' noise (default: the set's own)\n";

/* F.npy -> F.<part>.npy */
static int write_part(const char *out, const char *part, const ed_tensor *t)
{
    char path[4096];
    snprintf(path, sizeof path, "%.*s.%s.npy", (int)(strlen(out) - 4), out, part);
    if (ed_npy_write(path, t) != ED_OK) return cli_error(CLI_FAIL, "data: %s", ed_last_error());
    printf("wrote %s\n", path);
    return CLI_OK;
}

static int write_demo(const char *out, int64_t n, uint64_t seed)
{
    ed_pairs p = {0};
    if (ed_demo_pairs(n, seed, &p) != ED_OK) return cli_error(CLI_FAIL, "data: %s", ed_last_error());
    int rc;
    if (cli_ends_with(out, ".png")) {
        ed_tensor *pts = ed_tensor_wrap(ED_F32, ed_shape2(n * ED_DEMO_HORIZON, ED_DEMO_ACTION), p.actions->data);
        rc = pts && ed_plot_scatter(out, pts, NULL, NULL) == ED_OK ? CLI_OK : cli_error(CLI_FAIL, "data: %s", ed_last_error());
        if (rc == CLI_OK) printf("wrote %s\n", out);
        ed_tensor_free(pts);
    } else {
        rc = write_part(out, "obs", p.obs);
        if (rc == CLI_OK) rc = write_part(out, "actions", p.actions);
    }
    ed_pairs_free(&p);
    return rc;
}

static bool is_image_spec(const char *name)
{
    return strcmp(name, "digits") == 0 || strcmp(name, "fashion_mnist") == 0 || strstr(name, ".npy");
}

/* The first n images (n = 0: the default) of an image set. */
static int write_images(const char *spec, ed_split split, int64_t n, const char *out)
{
    ed_dataset d;
    if (ed_dataset_open_split(&d, spec, 1, 0, split) != ED_OK) return cli_error(CLI_FAIL, "data: %s", ed_last_error());
    if (!ed_dataset_is_images(&d)) {
        ed_dataset_free(&d);
        return cli_error(CLI_USAGE, "data: %s holds no images (images are [N, H, W] or [N, C, H, W])", spec);
    }
    bool png = cli_ends_with(out, ".png");
    int64_t rows = ed_dataset_rows(&d);
    n = n ? n : png ? 100 : rows;
    n = n < rows ? n : rows;
    ed_shape s = d.x->shape;
    s.dim[0] = n;
    ed_tensor *x = ed_tensor_wrap(ED_F32, s, d.x->data);
    ed_tensor *y = d.labels ? ed_tensor_wrap(ED_I32, ed_shape1(n), d.labels->data) : NULL;
    int scale = d.height >= 64 ? 1 : (int)(64 / d.height);
    int rc = CLI_OK;
    if (!x || (d.labels && !y)) rc = cli_error(CLI_FAIL, "data: out of memory");
    else if (png && ed_plot_image_grid_nchw(out, x, 0, scale) != ED_OK) rc = cli_error(CLI_FAIL, "data: %s", ed_last_error());
    else if (!png && ed_npy_write(out, x) != ED_OK) rc = cli_error(CLI_FAIL, "data: %s", ed_last_error());
    if (rc == CLI_OK) printf("wrote %s (%lld images of %lldx%lldx%lld%s)\n", out, (long long)n, (long long)d.channels,
                             (long long)d.height, (long long)d.width, d.labels ? ", labelled" : "");
    if (rc == CLI_OK && !png && y) rc = write_part(out, "labels", y);
    ed_tensor_free(x);
    ed_tensor_free(y);
    ed_dataset_free(&d);
    return rc;
}

int cmd_data(int argc, char **argv)
{
    const char *name = NULL, *out = NULL, *v;
    unsigned long long n = 0, seed = 0;
    bool have_n = false;
    double noise = ED_NOISE_DEFAULT;
    ed_split split = ED_SPLIT_TRAIN;
    bool have_split = false;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(usage, stdout);
            return CLI_OK;
        }
        if (cli_option(argc, argv, &i, "--n", &v)) {
            if (!v || !cli_parse_u64(v, &n) || n < 1 || n > (unsigned long long)ED_DATA_MAX_ROWS)
                return cli_error(CLI_USAGE, "data: --n wants an integer in [1, %lld], got '%s'", (long long)ED_DATA_MAX_ROWS,
                                 v ? v : "");
            have_n = true;
        } else if (cli_option(argc, argv, &i, "--seed", &v)) {
            if (!v || !cli_parse_u64(v, &seed)) return cli_error(CLI_USAGE, "data: --seed wants a whole number, got '%s'", v ? v : "");
        } else if (cli_option(argc, argv, &i, "--noise", &v)) {
            char *end = NULL;
            noise = v ? strtod(v, &end) : NAN;
            if (!v || *end || end == v || !(noise >= 0 && isfinite(noise)))
                return cli_error(CLI_USAGE, "data: --noise wants a finite number >= 0, got '%s'", v ? v : "");
        } else if (cli_option(argc, argv, &i, "--split", &v)) {
            if (!v || (strcmp(v, "train") != 0 && strcmp(v, "test") != 0))
                return cli_error(CLI_USAGE, "data: --split wants train or test, got '%s'", v ? v : "");
            split = strcmp(v, "test") == 0 ? ED_SPLIT_TEST : ED_SPLIT_TRAIN;
            have_split = true;
        } else if (cli_option(argc, argv, &i, "--out", &v)) {
            if (!v) return cli_error(CLI_USAGE, "data: --out needs a file name");
            out = v;
        } else if (argv[i][0] != '-' && !name) {
            name = argv[i];
        } else {
            return cli_error(CLI_USAGE, "data: unexpected argument '%s' (try edifice data --help)", argv[i]);
        }
    }
    if (!name) return cli_error(CLI_USAGE, "data: give a data set name (try edifice data --help)");
    bool images = is_image_spec(name);
    if (!have_n && !images) return cli_error(CLI_USAGE, "data: --n N is required");
    if (!out) return cli_error(CLI_USAGE, "data: --out FILE.npy or FILE.png is required");
    if (!cli_ends_with(out, ".npy") && !cli_ends_with(out, ".png"))
        return cli_error(CLI_USAGE, "data: --out must end in .npy or .png, got '%s'", out);
    if (have_split && !images) return cli_error(CLI_USAGE, "data: --split is for the image sets");
    if (images) {
        if (noise != ED_NOISE_DEFAULT) return cli_error(CLI_USAGE, "data: --noise is for the 2-D sets");
        return write_images(name, split, (int64_t)n, out);
    }
    if (strcmp(name, "demo") == 0) {
        if (noise != ED_NOISE_DEFAULT) return cli_error(CLI_USAGE, "data: --noise is for the 2-D sets, not demo");
        return write_demo(out, (int64_t)n, seed);
    }
    ed_toy set;
    if (ed_toy_parse(name, &set) != ED_OK)
        return cli_error(CLI_USAGE, "data: unknown data set '%s' (moons, circles, swiss_roll, 8gaussians, checkerboard, demo, digits, fashion_mnist)", name);
    ed_tensor *x = ed_toy_sample(set, (int64_t)n, seed, noise);
    if (!x) return cli_error(CLI_FAIL, "data: %s", ed_last_error());
    int rc = cli_ends_with(out, ".png") ? ed_plot_scatter(out, x, NULL, NULL) : ed_npy_write(out, x);
    ed_tensor_free(x);
    if (rc != ED_OK) return cli_error(CLI_FAIL, "data: %s", ed_last_error());
    printf("wrote %s\n", out);
    return CLI_OK;
}
