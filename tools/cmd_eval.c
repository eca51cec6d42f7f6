/* edifice eval: how close a trained model's samples are to its data, next to how close
 * two independent draws of the data are to each other (the floor). */
#include "models/toy_data.h"
#include "models/metrics.h"
#include "tools/cli.h"
#include "tools/gen_args.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: edifice eval MODEL --ckpt FILE [--data SPEC] [--n N] [--plot FILE.png]\n"
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
    "For the demonstration set (demo), also the share of chunks that reach the goal\n"
    "without touching the obstacle, and the left/right balance of the valid ones.\n"
    "Generated sets are drawn fresh; for .npy data the rows are split into two random\n"
    "halves (N is at most half the rows).\n"
    "\n"
    "  --plot FILE.png   also write a scatter plot of the samples over the data\n";

static bool is_file_spec(const char *spec) { return strchr(spec, ',') || strstr(spec, ".npy"); }

/* Rows perm[from..from+n) of t (f32 [N, ...]) into a new tensor. */
static ed_tensor *take_rows(const ed_tensor *t, const int64_t *perm, int64_t from, int64_t n)
{
    if (!t) return NULL;
    ed_shape s = t->shape;
    s.dim[0] = n;
    ed_tensor *r = ed_tensor_new(t->dtype, s);
    size_t row = (size_t)(ed_tensor_numel(t) / t->shape.dim[0]) * ed_dtype_size(t->dtype);
    for (int64_t i = 0; r && i < n; i++)
        memcpy((char *)r->data + (size_t)i * row, (const char *)t->data + (size_t)perm[from + i] * row, row);
    return r;
}

/* Two halves A, B of a file's rows in a seeded random order (Fisher-Yates on a 64-bit LCG). */
static int split_file(const char *spec, uint64_t seed, int64_t *n, ed_dataset *a, ed_dataset *b)
{
    ed_dataset all = {0};
    if (ed_dataset_open(&all, spec, 1, 0) != ED_OK) return cli_error(CLI_FAIL, "eval: %s", ed_last_error());
    int64_t rows = ed_dataset_rows(&all), half = rows / 2;
    if (half < 2) {
        ed_dataset_free(&all);
        return cli_error(CLI_FAIL, "eval: %s has %lld rows; a floor needs at least 4", spec, (long long)rows);
    }
    if (*n > half) *n = half;
    int64_t *perm = malloc((size_t)rows * sizeof *perm);
    if (!perm) {
        ed_dataset_free(&all);
        return cli_error(CLI_FAIL, "eval: out of memory");
    }
    uint64_t s = seed * 6364136223846793005ull + 1442695040888963407ull;
    for (int64_t i = 0; i < rows; i++) perm[i] = i;
    for (int64_t i = rows - 1; i > 0; i--) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        int64_t j = (int64_t)((s >> 33) % (uint64_t)(i + 1));
        int64_t t = perm[i];
        perm[i] = perm[j], perm[j] = t;
    }
    bool has_obs = all.obs != NULL;
    a->x = take_rows(all.x, perm, 0, *n), a->obs = take_rows(all.obs, perm, 0, *n);
    b->x = take_rows(all.x, perm, half, *n), b->obs = take_rows(all.obs, perm, half, *n);
    free(perm);
    ed_dataset_free(&all);
    if (!a->x || !b->x || (has_obs && (!a->obs || !b->obs))) return cli_error(CLI_FAIL, "eval: out of memory");
    return CLI_OK;
}

/* The points compared: x flattened to [N, D], with the observations in front if any. */
static ed_tensor *joint(const ed_tensor *obs, const ed_tensor *x)
{
    int64_t n = x->shape.dim[0], dx = ed_tensor_numel(x) / n, dobs = obs ? obs->shape.dim[1] : 0;
    ed_tensor *r = ed_tensor_new(ED_F32, ed_shape2(n, dobs + dx));
    for (int64_t i = 0; r && i < n; i++) {
        float *row = (float *)r->data + i * (dobs + dx);
        if (obs) memcpy(row, (const float *)obs->data + i * dobs, (size_t)dobs * sizeof(float));
        memcpy(row + dobs, (const float *)x->data + i * dx, (size_t)dx * sizeof(float));
    }
    return r;
}

/* out: SW(s, a), the mean SW(b_k, a) over the nb draws b, MMD^2(s, a), MMD^2(b_0, a). */
static int metrics(const ed_tensor *s, const ed_tensor *a, ed_tensor *const *b, int nb, double out[4], double *bw)
{
    ed_swd_opts so = {.projections = 256, .seed = 0, .p = 1};
    if (ed_mmd_median_bandwidth(a, NULL, bw) != ED_OK || ed_sliced_wasserstein(s, a, &so, &out[0]) != ED_OK ||
        ed_mmd2_rbf(s, a, *bw, &out[2]) != ED_OK || ed_mmd2_rbf(b[0], a, *bw, &out[3]) != ED_OK)
        return cli_error(CLI_FAIL, "eval: %s", ed_last_error());
    out[1] = 0;
    for (int k = 0; k < nb; k++) {
        double f;
        if (ed_sliced_wasserstein(b[k], a, &so, &f) != ED_OK) return cli_error(CLI_FAIL, "eval: %s", ed_last_error());
        out[1] += f / nb;
    }
    return CLI_OK;
}

static void print_demo(const ed_tensor *obs, const ed_tensor *chunks, const ed_tensor *data_chunks)
{
    ed_demo_stats m, d;
    if (ed_demo_evaluate(obs, chunks, 0, &m) != ED_OK || ed_demo_evaluate(obs, data_chunks, 0, &d) != ED_OK) {
        fprintf(stderr, "edifice: eval: %s\n", ed_last_error());
        return;
    }
    printf("%-26s %11.1f%% %11.1f%%\n", "valid chunks", 100 * m.valid_rate, 100 * d.valid_rate);
    printf("%-26s %11.1f%% %11.1f%%\n", "  reach the goal", 100 * m.reach_rate, 100 * d.reach_rate);
    printf("%-26s %11.1f%% %11.1f%%\n", "  hit the obstacle", 100 * m.collision_rate, 100 * d.collision_rate);
    double ml = m.left + m.right ? 100.0 * (double)m.left / (double)(m.left + m.right) : 0;
    double dl = d.left + d.right ? 100.0 * (double)d.left / (double)(d.left + d.right) : 0;
    printf("%-26s %5.1f/%4.1f%% %5.1f/%4.1f%%\n", "left/right (passing ones)", ml, 100 - ml, dl, 100 - dl);
}

/* Draws of the data for the floor: a generated set's floor varies by some 20% from one
 * pair of draws to the next (moons: the points per moon are binomial), so its sliced
 * Wasserstein floor is the mean over this many draws against the reference one. */
#define FLOOR_DRAWS 4

static int eval(gen_args *a, const char *spec, long long n, const char *plot)
{
    ed_checkpoint ck = {0};
    ed_dataset da = {0}, db[FLOOR_DRAWS];
    ed_tensor *s = NULL, *js = NULL, *ja = NULL, *jb[FLOOR_DRAWS] = {0};
    int nb = 1;
    memset(db, 0, sizeof db);
    int rc = gen_load(a, &ck);
    if (rc != CLI_OK) return rc;
    if (!spec) spec = ck.data;
    int64_t rows = n < 0 ? 10000 : n;
    if (is_file_spec(spec)) rc = split_file(spec, a->seed, &rows, &da, &db[0]);
    else {
        nb = FLOOR_DRAWS;
        rc = gen_fresh_data(a, &ck, spec, rows, 0, &da);
        for (int k = 0; k < nb && rc == CLI_OK; k++) rc = gen_fresh_data(a, &ck, spec, rows, 1 + (uint64_t)k, &db[k]);
    }
    const ed_gen_model *m = &ck.model;
    if (rc == CLI_OK && (ed_dataset_obs_size(&da) != m->obs_size || ed_shape_numel(ed_dataset_sample_shape(&da)) !=
                                                                       ed_shape_numel(m->sample)))
        rc = cli_error(CLI_FAIL, "eval: data %s does not fit model %s of %s (observations %lld, sample of %lld values)", spec,
                       m->def->name, ck.data, (long long)m->obs_size, (long long)ed_shape_numel(m->sample));
    if (rc == CLI_OK) rc = gen_draw(a, &ck, rows, da.obs, &s);
    if (rc == CLI_OK) {
        js = joint(da.obs, s), ja = joint(da.obs, da.x);
        bool ok = js && ja;
        for (int k = 0; k < nb; k++) ok &= (jb[k] = joint(db[k].obs, db[k].x)) != NULL;
        if (!ok) rc = cli_error(CLI_FAIL, "eval: out of memory");
    }
    double v[4], bw = 0;
    if (rc == CLI_OK) rc = metrics(js, ja, jb, nb, v, &bw);
    if (rc == CLI_OK) {
        char name[64];
        printf("eval %s (%s, step %lld), sampler %s: %lld samples against %lld fresh points of %s\n", m->def->name, a->ckpt,
               (long long)ck.step, gen_sampler_name(a, m, name, sizeof name), (long long)rows, (long long)rows, spec);
        printf("%-26s %12s %12s %8s\n", "", "model", "floor", "ratio");
        if (nb > 1) printf("(the floor: two independent draws of the data; sliced W1 averaged over %d)\n", nb);
        printf("%-26s %12.5f %12.5f %8.2f\n", "sliced Wasserstein-1", v[0], v[1], v[1] > 0 ? v[0] / v[1] : 0);
        snprintf(name, sizeof name, "MMD^2 (rbf, sigma %.3g)", bw);
        printf("%-26s %12.6f %12.6f\n", name, v[2], v[3]);
        if (strcmp(spec, "demo") == 0) print_demo(da.obs, s, da.x);
    }
    if (rc == CLI_OK && plot) rc = plot_over_data("eval", plot, s, da.x);
    ed_tensor_free(s), ed_tensor_free(js), ed_tensor_free(ja);
    ed_dataset_free(&da);
    for (int k = 0; k < FLOOR_DRAWS; k++) ed_tensor_free(jb[k]), ed_dataset_free(&db[k]);
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
