/* What `edifice sample` and `edifice eval` share: their sampler flags, loading a
 * checkpoint of the named model, and drawing samples from it through one compiled
 * sampler program (models/generate.h), batch by batch. */
#include "models/dataset.h"
#include "tools/cli.h"
#include "tools/gen_args.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int parse_real(const char *cmd, const char *flag, const char *v, double lo, double *out)
{
    char *end = NULL;
    double x = v ? strtod(v, &end) : NAN;
    if (!v || end == v || *end || !isfinite(x) || x < lo)
        return cli_error(CLI_USAGE, "%s: %s wants a finite number >= %g, got '%s'", cmd, flag, lo, v ? v : "");
    *out = x;
    return CLI_OK;
}

int gen_parse_count(const char *cmd, const char *flag, const char *v, long long lo, long long hi, long long *out)
{
    unsigned long long u;
    if (!v || !cli_parse_u64(v, &u) || u > (unsigned long long)hi || (long long)u < lo)
        return cli_error(CLI_USAGE, "%s: %s wants a whole number in %lld..%lld, got '%s'", cmd, flag, lo, hi, v ? v : "");
    *out = (long long)u;
    return CLI_OK;
}

bool gen_start(gen_args *a, const char *usage, const char *example, int argc, char **argv, int *rc)
{
    *rc = CLI_OK;
    for (int i = 1; i < argc; i++)
        if (cli_is_help(argv[i])) {
            fputs(usage, stdout);
            fputs(gen_usage, stdout);
            fputs("Pass options (how the sampler is compiled):\n", stdout);
            fputs(cli_pass_usage, stdout);
            return false;
        }
    if (argc < 2 || argv[1][0] == '-') {
        *rc = cli_error(CLI_USAGE, "%s: give the model first, e.g. %s", a->cmd, example);
        return false;
    }
    a->def = ed_model_find(argv[1]);
    if (!a->def) *rc = cli_error(CLI_USAGE, "%s: %s", a->cmd, ed_last_error());
    return a->def != NULL;
}

bool gen_arg(gen_args *a, int argc, char **argv, int *i, int *rc)
{
    const char *v;
    long long k;
    if (cli_option(argc, argv, i, "--ckpt", &v)) {
        if (!v) *rc = cli_error(CLI_USAGE, "%s: --ckpt needs a checkpoint file", a->cmd);
        a->ckpt = v;
    } else if (cli_option(argc, argv, i, "--sampler", &v)) {
        if (!v) *rc = cli_error(CLI_USAGE, "%s: --sampler needs a name", a->cmd);
        a->so.sampler = v;
    } else if (cli_option(argc, argv, i, "--steps", &v)) {
        *rc = gen_parse_count(a->cmd, "--steps", v, 1, 1000000, &k);
        a->so.steps = k;
    } else if (cli_option(argc, argv, i, "--seed", &v)) {
        *rc = gen_parse_count(a->cmd, "--seed", v, 0, INT64_MAX, &k);
        a->seed = (uint64_t)k;
    } else if (cli_option(argc, argv, i, "--batch", &v)) {
        *rc = gen_parse_count(a->cmd, "--batch", v, 1, INT32_MAX, &k);
        a->batch = k;
    } else if (cli_option(argc, argv, i, "--guidance", &v)) {
        *rc = parse_real(a->cmd, "--guidance", v, 0, &a->so.guidance);
        a->so.has_guidance = true;
    } else if (cli_option(argc, argv, i, "--eta", &v)) {
        *rc = parse_real(a->cmd, "--eta", v, 0, &a->so.eta);
        a->so.has_eta = true;
    } else if (cli_option(argc, argv, i, "--backend", &v)) {
        if (v && strcmp(v, "jit") == 0) a->backend = ED_BACKEND_JIT;
        else if (v && strcmp(v, "interp") == 0) a->backend = ED_BACKEND_INTERP;
        else *rc = cli_error(CLI_USAGE, "%s: --backend wants jit or interp, got '%s'", a->cmd, v ? v : "");
    } else if (!cli_pass_arg(a->cmd, &a->passes, argc, argv, i, rc)) {
        return false;
    }
    return true;
}

const char gen_usage[] =
    "  --ckpt FILE       the checkpoint `edifice train MODEL` wrote (required)\n"
    "  --sampler NAME    flow_matching: euler|midpoint|heun|rk4 (default: the model's\n"
    "                    solver option); ddpm, ddim: ddpm|ddim (default: the model's name)\n"
    "  --steps K         sampler steps (default: sample_steps, ddim_steps; ddpm runs all T)\n"
    "  --guidance S      classifier-free guidance scale for a conditional model (1: none)\n"
    "  --eta X           DDIM noise (0 deterministic, 1 DDPM-like; default the model's)\n"
    "  --seed S          seeds the sampler's noise and any fresh data drawn (default 0)\n"
    "  --batch B         samples per compiled call (default 10000)\n"
    "  --backend B       jit (default) or interp (the reference interpreter)\n";

int gen_load(const gen_args *a, ed_checkpoint *ck)
{
    if (!a->ckpt) return cli_error(CLI_USAGE, "%s: --ckpt FILE is required (the checkpoint of edifice train %s)", a->cmd, a->def->name);
    if (ed_checkpoint_load(a->ckpt, ck) != ED_OK) return cli_error(CLI_FAIL, "%s: %s", a->cmd, ed_last_error());
    if (ck->model.def != a->def) {
        int rc = cli_error(CLI_FAIL, "%s: %s is a checkpoint of model %s, not %s", a->cmd, a->ckpt, ck->model.def->name,
                           a->def->name);
        ed_checkpoint_free(ck);
        return rc;
    }
    return CLI_OK;
}

/* Rows [from, from + rows) of t into dst (rows wrap around t's first axis). */
static void copy_rows(ed_tensor *dst, const ed_tensor *t, int64_t from, int64_t rows)
{
    int64_t n = t->shape.dim[0], row = ed_tensor_numel(t) / n * (int64_t)ed_dtype_size(t->dtype);
    for (int64_t r = 0; r < rows; r++)
        memcpy((char *)dst->data + r * row, (const char *)t->data + (from + r) % n * row, (size_t)row);
}

int gen_draw(const gen_args *a, ed_checkpoint *ck, int64_t n, const ed_tensor *obs, ed_tensor **out)
{
    const ed_gen_model *m = &ck->model;
    int64_t b = a->batch > 0 ? a->batch : 10000;
    if (b > n) b = n;
    *out = NULL;
    if (m->obs_size > 0 && (!obs || obs->dtype != ED_F32 || obs->shape.rank != 2 || obs->shape.dim[0] != n ||
                            obs->shape.dim[1] != m->obs_size))
        return cli_error(CLI_FAIL, "%s: model %s needs f32 observations [%lld, %lld]", a->cmd, m->def->name, (long long)n,
                         (long long)m->obs_size);
    ed_graph *g = ed_graph_new("sample");
    ed_node *o = m->obs_size > 0 ? ed_input(g, "obs", ED_F32, ed_shape2(b, m->obs_size)) : NULL;
    ed_node *s = ed_gen_model_sample(g, m, b, o, NULL, &a->so);
    if (s) ed_output(g, "samples", s);
    if (ed_graph_error(g)) {
        int rc = cli_error(CLI_FAIL, "%s: %s", a->cmd, ed_graph_error(g));
        ed_graph_free(g);
        return rc;
    }
    double t0 = now_s();
    ed_pass_opts po = cli_pass_opts(&a->passes);
    ed_compile_opts co = {.backend = a->backend, .seed = a->seed, .passes = a->passes.pipeline, .pass_opts = &po};
    ed_program *p = ed_compile(g, ck->store, &co);
    ed_tensor *ob = o ? ed_tensor_new(ED_F32, o->shape) : NULL;
    ed_shape full = s->shape;
    full.dim[0] = n;
    ed_tensor *res = p ? ed_tensor_new(ED_F32, full) : NULL;
    int rc = p && res && (!o || ob) ? CLI_OK : cli_error(CLI_FAIL, "%s: %s", a->cmd, ed_last_error());
    double t1 = now_s();
    size_t row = (size_t)(ed_shape_numel(s->shape) / b) * sizeof(float);
    int64_t calls = (n + b - 1) / b;
    /* One call runs the whole sampler, so there is no step to report; say what is coming. */
    if (rc == CLI_OK)
        fprintf(stderr, "%s: compiled in %.2f s; drawing %lld samples in %lld call%s of %lld...\n", a->cmd, t1 - t0,
                (long long)n, (long long)calls, calls == 1 ? "" : "s", (long long)b);
    for (int64_t done = 0; rc == CLI_OK && done < n; done += b) {
        int64_t rows = n - done < b ? n - done : b;
        if (ob) copy_rows(ob, obs, done, b); /* a short last batch repeats rows, then drops them */
        ed_feed f = {"obs", ob};
        if (ed_run(p, &f, ob ? 1 : 0) != ED_OK) {
            rc = cli_error(CLI_FAIL, "%s: %s", a->cmd, ed_last_error());
            break;
        }
        memcpy((char *)res->data + (size_t)done * row, ed_program_output(p, "samples")->data, (size_t)rows * row);
        if (calls > 1)
            fprintf(stderr, "%s: %lld of %lld samples, %.1f s\n", a->cmd, (long long)(done + rows), (long long)n, now_s() - t1);
    }
    double t2 = now_s();
    if (rc == CLI_OK) {
        fprintf(stderr, "%s: %lld samples of %s (step %lld) in %.2f s (%s)\n", a->cmd, (long long)n, m->def->name,
                (long long)ck->step, t2 - t1, a->backend == ED_BACKEND_INTERP ? "interp" : "jit");
        *out = res;
        res = NULL;
    }
    ed_tensor_free(res);
    ed_tensor_free(ob);
    ed_program_free(p);
    ed_graph_free(g);
    return rc;
}

int gen_fresh_data(const gen_args *a, const ed_checkpoint *ck, const char *spec, int64_t n, uint64_t k,
                   ed_dataset *d)
{
    /* Seeds apart from the training data's, and apart for the two draws of a floor. */
    uint64_t seed = ck->data_seed + 1 + 2 * a->seed + k;
    if (ed_dataset_open(d, spec, n, seed) != ED_OK) return cli_error(CLI_FAIL, "%s: %s", a->cmd, ed_last_error());
    return CLI_OK;
}

const char *gen_sampler_name(const gen_args *a, const ed_gen_model *m, char *buf, size_t size)
{
    char solver[64];
    if (a->so.sampler && *a->so.sampler) snprintf(buf, size, "%s", a->so.sampler);
    else if (m->def->pred && m->def->pred[0] == 'v') snprintf(buf, size, "%s", ed_gen_model_get(m, "solver", solver, sizeof solver));
    else snprintf(buf, size, "%s", m->def->name);
    return buf;
}
