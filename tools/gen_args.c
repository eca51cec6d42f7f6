/* What `edifice sample` and `edifice eval` share: their sampler flags, and the lines
 * they print while models/generate.h draws samples batch by batch. */
#include "tools/cli.h"
#include "tools/gen_args.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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
        return cli_error(CLI_USAGE, "%s: %s wants a whole number in %lld..%lld, got '%s'", cmd, flag, lo, hi,
                         v ? v : "");
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
    } else if (cli_option(argc, argv, i, "--weights", &v)) {
        *rc = gen_parse_weights(a->cmd, v, &a->so.weights);
    } else if (cli_option(argc, argv, i, "--backend", &v)) {
        if (v && strcmp(v, "jit") == 0) a->backend = ED_BACKEND_JIT;
        else if (v && strcmp(v, "interp") == 0) a->backend = ED_BACKEND_INTERP;
        else *rc = cli_error(CLI_USAGE, "%s: --backend wants jit or interp, got '%s'", a->cmd, v ? v : "");
    } else if (strcmp(argv[*i], "--raw-weights") == 0) {
        a->raw_weights = true;
    } else if (!cli_pass_arg(a->cmd, &a->passes, argc, argv, i, rc)) {
        return false;
    }
    return true;
}

int gen_parse_weights(const char *cmd, const char *v, ed_dtype *out)
{
    ed_dtype dt;
    if (!v || !ed_dtype_parse(v, &dt) || (dt != ED_F32 && !ed_dtype_is_16bit(dt)))
        return cli_error(CLI_USAGE, "%s: --weights wants f32, bf16 or f16, got '%s'", cmd, v ? v : "");
    *out = dt;
    return CLI_OK;
}

const char gen_usage[] = "  --ckpt FILE       the checkpoint `edifice train MODEL` wrote (required)\n"
                         "  --sampler NAME    flow_matching: euler|midpoint|heun|rk4 (default: the model's\n"
                         "                    solver option); ddpm, ddim: ddpm|ddim (default: the model's name);\n"
                         "                    score_sde: pc|em|ode (default: its sampler option, pc)\n"
                         "  --steps K         sampler steps (default: sample_steps, ddim_steps; ddpm runs all T)\n"
                         "  --guidance S      classifier-free guidance scale for a conditional model (1: none)\n"
                         "  --eta X           DDIM noise (0 deterministic, 1 DDPM-like; default the model's)\n"
                         "  --weights W       f32 (default), bf16 or f16: the dense layers' weights kept\n"
                         "                    16-bit while sampling (rounded from the checkpoint's f32, widened\n"
                         "                    in the matmul; compute stays f32). Samples stay within 3e-3\n"
                         "                    (bf16) or 5e-4 (f16) times 1 + the largest |sample| of the f32 ones\n"
                         "  --seed S          seeds the sampler's noise and any fresh data drawn (default 0)\n"
                         "  --batch B         samples per compiled call (default 10000)\n"
                         "  --backend B       jit (default) or interp (the reference interpreter)\n"
                         "  --raw-weights     the trained weights, not the EMA of them that a checkpoint\n"
                         "                    trained with ema_decay > 0 keeps (and is sampled from)\n";

int gen_load(const gen_args *a, ed_checkpoint *ck)
{
    if (!a->ckpt)
        return cli_error(CLI_USAGE, "%s: --ckpt FILE is required (the checkpoint of edifice train %s)", a->cmd,
                         a->def->name);
    if (ed_checkpoint_load_for(a->ckpt, a->def, ck) != ED_OK)
        return cli_error(CLI_FAIL, "%s: %s", a->cmd, ed_last_error());
    if (a->raw_weights) return CLI_OK;
    int swapped = ed_checkpoint_use_ema(ck);
    if (swapped < 0) {
        int rc = cli_error(CLI_FAIL, "%s: %s: %s", a->cmd, a->ckpt, ed_last_error());
        ed_checkpoint_free(ck);
        return rc;
    }
    if (swapped > 0)
        fprintf(stderr, "%s: the EMA of the weights (decay %g, %d tensors); --raw-weights for the trained ones\n",
                a->cmd, ed_gen_model_ema_decay(&ck->model), swapped);
    return CLI_OK;
}

typedef struct {
    const gen_args *a;
    double draw_s; /* the time of the last report */
} draw_report;

/* One call runs the whole sampler, so there is no step to report; say what is coming,
 * then one line per call. */
static void print_progress(void *ctx, const ed_gen_progress *p)
{
    draw_report *r = ctx;
    const char *cmd = r->a->cmd;
    r->draw_s = p->draw_s;
    if (p->done == 0)
        fprintf(stderr, "%s: compiled in %.2f s; drawing %lld samples in %lld call%s of %lld...\n", cmd, p->compile_s,
                (long long)p->n, (long long)p->calls, p->calls == 1 ? "" : "s", (long long)p->batch);
    else if (p->calls > 1)
        fprintf(stderr, "%s: %lld of %lld samples, %.1f s\n", cmd, (long long)p->done, (long long)p->n, p->draw_s);
}

int gen_draw(const gen_args *a, ed_checkpoint *ck, int64_t n, const ed_tensor *obs, const ed_tensor *labels,
             ed_tensor **out)
{
    ed_pass_opts po = cli_pass_opts(&a->passes);
    draw_report report = {a, 0};
    ed_gen_draw_opts o = {.sampler = a->so,
                          .seed = a->seed,
                          .batch = a->batch,
                          .backend = a->backend,
                          .passes = a->passes.pipeline,
                          .pass_opts = &po,
                          .progress = print_progress,
                          .progress_ctx = &report};
    if (ed_gen_draw(&ck->model, ck->store, n, obs, labels, &o, out) != ED_OK)
        return cli_error(CLI_FAIL, "%s: %s", a->cmd, ed_last_error());
    fprintf(stderr, "%s: %lld samples of %s (step %lld) in %.2f s (%s)\n", a->cmd, (long long)n, ck->model.def->name,
            (long long)ck->step, report.draw_s, a->backend == ED_BACKEND_INTERP ? "interp" : "jit");
    return CLI_OK;
}

int gen_fresh_data(const gen_args *a, const ed_checkpoint *ck, const char *spec, int64_t n, uint64_t k, ed_dataset *d)
{
    if (ed_gen_fresh_data(ck, spec, n, a->seed, k, d) != ED_OK)
        return cli_error(CLI_FAIL, "%s: %s", a->cmd, ed_last_error());
    return CLI_OK;
}
