/* edifice data: write samples of a built-in data set as .npy or as a PNG scatter plot. */
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
    "\n"
    "Writes N samples of a built-in data set, a function of (N, seed, noise).\n"
    "  NAME         moons, circles, swiss_roll, 8gaussians, checkerboard (2-D, [N, 2]),\n"
    "               or demo (observation [N, 6] -> action chunk [N, 8, 2])\n"
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

int cmd_data(int argc, char **argv)
{
    const char *name = NULL, *out = NULL, *v;
    unsigned long long n = 0, seed = 0;
    bool have_n = false;
    double noise = ED_NOISE_DEFAULT;
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
    if (!have_n) return cli_error(CLI_USAGE, "data: --n N is required");
    if (!out) return cli_error(CLI_USAGE, "data: --out FILE.npy or FILE.png is required");
    if (!cli_ends_with(out, ".npy") && !cli_ends_with(out, ".png"))
        return cli_error(CLI_USAGE, "data: --out must end in .npy or .png, got '%s'", out);
    if (strcmp(name, "demo") == 0) {
        if (noise != ED_NOISE_DEFAULT) return cli_error(CLI_USAGE, "data: --noise is for the 2-D sets, not demo");
        return write_demo(out, (int64_t)n, seed);
    }
    ed_toy set;
    if (ed_toy_parse(name, &set) != ED_OK)
        return cli_error(CLI_USAGE, "data: unknown data set '%s' (moons, circles, swiss_roll, 8gaussians, checkerboard, demo)", name);
    ed_tensor *x = ed_toy_sample(set, (int64_t)n, seed, noise);
    if (!x) return cli_error(CLI_FAIL, "data: %s", ed_last_error());
    int rc = cli_ends_with(out, ".png") ? ed_plot_scatter(out, x, NULL, NULL) : ed_npy_write(out, x);
    ed_tensor_free(x);
    if (rc != ED_OK) return cli_error(CLI_FAIL, "data: %s", ed_last_error());
    printf("wrote %s\n", out);
    return CLI_OK;
}
