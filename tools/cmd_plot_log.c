/* edifice plot-log: a training log (train --log F.csv) as a PNG line chart. */
#include "io/csv_log.h"
#include "io/plot.h"
#include "tools/cli.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] = "usage: edifice plot-log LOG.csv --out FILE.png [--smooth K] [--caption TEXT]\n"
                            "                        [--width W] [--height H]\n"
                            "\n"
                            "Draws every column of a CSV log against its first column: `train --log` writes\n"
                            "step,loss, so this is the loss curve. A header line names the columns; each\n"
                            "further line holds numbers (an empty field or nan breaks the line).\n"
                            "  --smooth K     also draw each column's running mean over the last K rows, dark on\n"
                            "                 top of the raw values in a light colour (default: rows / 50, at\n"
                            "                 least 1; 1 draws the raw values alone)\n"
                            "  --caption T    the text under the chart (default: the file, the rows and the last\n"
                            "                 values)\n"
                            "  --width W      default 720; --height H default 450 (64..8192)\n";

/* Running mean over the last k finite values (fewer at the start). */
static double *running_mean(const double *v, int64_t n, int64_t k)
{
    double *m = malloc(sizeof(double) * (size_t)n);
    if (!m) return NULL;
    double sum = 0;
    int64_t count = 0;
    for (int64_t i = 0; i < n; i++) {
        if (isfinite(v[i])) sum += v[i], count++;
        if (i >= k && isfinite(v[i - k])) sum -= v[i - k], count--;
        m[i] = count ? sum / (double)count : NAN;
    }
    return m;
}

static const uint32_t dark[] = {0x1f77b4, 0xd62728, 0x2ca02c, 0x9467bd, 0xff7f0e, 0x8c564b, 0x17becf};
static const uint32_t light[] = {0xaecde6, 0xf0b0b0, 0xb2dfb0, 0xd4c4e6, 0xffd0a8, 0xd6bfb8, 0xaee6ee};

static int plot(const ed_csv_log *l, const char *out, int64_t smooth, const char *caption, int w, int h,
                const char *path)
{
    ed_series s[2 * (ED_CSV_LOG_MAX_COLUMNS - 1)];
    double *means[ED_CSV_LOG_MAX_COLUMNS] = {0};
    char names[ED_CSV_LOG_MAX_COLUMNS][96];
    int n = 0, rc = CLI_OK;
    for (int k = 1; k < l->ncol; k++) {
        if (smooth <= 1) {
            s[n++] = (ed_series){l->names[k], l->v[k], dark[k - 1], 1.5};
            continue;
        }
        if (!(means[k] = running_mean(l->v[k], l->rows, smooth))) rc = cli_error(CLI_FAIL, "plot-log: out of memory");
        snprintf(names[k], sizeof names[k], "%s (mean of %lld)", l->names[k], (long long)smooth);
        s[n++] = (ed_series){l->names[k], l->v[k], light[k - 1], 1};
        s[n++] = (ed_series){names[k], means[k], dark[k - 1], 2};
    }
    char text[1024];
    if (!caption) {
        int len = snprintf(text, sizeof text, "%s: %lld rows", path, (long long)l->rows);
        for (int k = 1; k < l->ncol && len > 0 && (size_t)len < sizeof text; k++)
            len += snprintf(text + len, sizeof text - (size_t)len, ", last %s %.4g", l->names[k], l->v[k][l->rows - 1]);
        for (int k = 1; smooth > 1 && k < l->ncol && len > 0 && (size_t)len < sizeof text; k++)
            len += snprintf(text + len, sizeof text - (size_t)len, " (mean of the last %lld: %.4g)", (long long)smooth,
                            means[k] ? means[k][l->rows - 1] : NAN);
        caption = text;
    }
    ed_line_opts o = {.width = w, .height = h, .caption = caption};
    if (rc == CLI_OK && ed_plot_lines(out, l->v[0], l->rows, s, n, &o) != ED_OK)
        rc = cli_error(CLI_FAIL, "plot-log: %s", ed_last_error());
    for (int k = 0; k < ED_CSV_LOG_MAX_COLUMNS; k++) free(means[k]);
    return rc;
}

static bool parse_int(const char *v, long long lo, long long hi, long long *out)
{
    unsigned long long u;
    if (!cli_parse_u64(v, &u) || u < (unsigned long long)lo || u > (unsigned long long)hi) return false;
    *out = (long long)u;
    return true;
}

int cmd_plot_log(int argc, char **argv)
{
    const char *path = NULL, *out = NULL, *caption = NULL, *v;
    long long smooth = -1, w = 720, h = 450;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(usage, stdout);
            return CLI_OK;
        }
        if (cli_option(argc, argv, &i, "--out", &v)) {
            if (!v) return cli_error(CLI_USAGE, "plot-log: --out needs a file name");
            out = v;
        } else if (cli_option(argc, argv, &i, "--smooth", &v)) {
            if (!v || !parse_int(v, 1, 1000000000, &smooth))
                return cli_error(CLI_USAGE, "plot-log: --smooth wants a whole number >= 1, got '%s'", v ? v : "");
        } else if (cli_option(argc, argv, &i, "--caption", &v)) {
            if (!v) return cli_error(CLI_USAGE, "plot-log: --caption needs a text");
            caption = v;
        } else if (cli_option(argc, argv, &i, "--width", &v)) {
            if (!v || !parse_int(v, 64, 8192, &w))
                return cli_error(CLI_USAGE, "plot-log: --width wants 64..8192, got '%s'", v ? v : "");
        } else if (cli_option(argc, argv, &i, "--height", &v)) {
            if (!v || !parse_int(v, 64, 8192, &h))
                return cli_error(CLI_USAGE, "plot-log: --height wants 64..8192, got '%s'", v ? v : "");
        } else if (argv[i][0] != '-' && !path) {
            path = argv[i];
        } else {
            return cli_error(CLI_USAGE, "plot-log: unexpected argument '%s' (try edifice plot-log --help)", argv[i]);
        }
    }
    if (!path) return cli_error(CLI_USAGE, "plot-log: give a log file (try edifice plot-log --help)");
    if (!out || !cli_ends_with(out, ".png")) return cli_error(CLI_USAGE, "plot-log: --out FILE.png is required");
    ed_csv_log l;
    int rc = ed_csv_log_read(path, &l) == ED_OK ? CLI_OK : cli_error(CLI_FAIL, "plot-log: %s", ed_last_error());
    if (rc == CLI_OK) {
        int64_t k = smooth > 0 ? smooth : (l.rows / 50 > 1 ? l.rows / 50 : 1);
        rc = plot(&l, out, k, caption, (int)w, (int)h, path);
    }
    ed_csv_log_free(&l);
    if (rc == CLI_OK) printf("wrote %s\n", out);
    return rc;
}
