/* edifice train: train a registered model on a data set, with a progress line, a
 * checkpoint at the end (or on Ctrl-C), and --resume continuing bit for bit. */
#include "models/trainer.h"
#include "tools/cli.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "usage: edifice train MODEL --data NAME|FILE.npy|OBS.npy,ACTIONS.npy\n"
    "                     [--steps N] [--batch B] [--lr X] [--seed S] [--n ROWS]\n"
    "                     [--backend jit|interp] [--out FILE.safetensors] [--resume FILE]\n"
    "                     [--lr-schedule cosine|constant] [--log FILE.csv] [--every K]\n"
    "                     [--OPTION VALUE ...] [pass options]\n"
    "\n"
    "Trains MODEL (see `edifice models`) with Adam and writes a checkpoint: the params,\n"
    "the optimizer state, the step and the data RNG state, with the model, its options\n"
    "and the data named in the metadata. Ctrl-C stops after the current step and saves\n"
    "the checkpoint (exit status 130); --resume FILE continues that run exactly as if\n"
    "it had not been stopped.\n"
    "\n"
    "  --data SPEC       a built-in set (moons, circles, swiss_roll, 8gaussians,\n"
    "                    checkerboard: 2-D; demo: observation -> 8x2 action chunk), an\n"
    "                    .npy array [N, D], or OBS.npy,ACTIONS.npy pairs [N, O], [N, H, A]\n"
    "  --n ROWS          rows generated for a built-in set (default 10000)\n"
    "  --steps N         train until step N (default 1000; on --resume, the run's own)\n"
    "  --batch B         batch size (default 256)\n"
    "  --lr X            Adam learning rate (default 0.001)\n"
    "  --lr-schedule S   cosine (default: from lr down to lr/100 at the last step) or\n"
    "                    constant\n"
    "  --seed S          seeds the params, the noise, the batches and a built-in set (0)\n"
    "  --backend B       jit (default) or interp (the reference interpreter)\n"
    "  --out FILE        the checkpoint (default MODEL.safetensors; on --resume, FILE)\n"
    "  --resume FILE     continue from a checkpoint of MODEL; the data, seed and model\n"
    "                    options come from it (giving other values is an error)\n"
    "  --log FILE.csv    write step,loss for every step\n"
    "  --every K         without a terminal, print progress every K steps (default: a\n"
    "                    tenth of the run)\n"
    "  --OPTION VALUE    a model option, e.g. --hidden 128 (see `edifice models MODEL`)\n"
    "Pass options (how the training step is compiled; not kept in the checkpoint):\n";

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* SA_RESETHAND: a second Ctrl-C kills at once (the checkpoint write is atomic). */
static void catch_signals(struct sigaction *old_int, struct sigaction *old_term)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, old_int);
    sigaction(SIGTERM, &sa, old_term);
}

#define MAX_MODEL_OPTS 64

typedef struct {
    const ed_model_def *def;
    const char *data, *out, *resume, *log;
    long long steps, batch, n, seed, every; /* -1: not given */
    double lr;                              /* NAN: not given */
    ed_backend backend;
    cli_pass_args passes; /* --passes, --print-after-all, --print-after, --pass-stats */
    int lr_schedule; /* -1: not given */
    const char *opt_name[MAX_MODEL_OPTS], *opt_value[MAX_MODEL_OPTS];
    char opt_buf[MAX_MODEL_OPTS][128];
    int nopts;
} train_args;

static int parse_count(const char *flag, const char *v, long long lo, long long *out)
{
    unsigned long long u;
    if (!v || !cli_parse_u64(v, &u) || u > (unsigned long long)INT64_MAX || (long long)u < lo)
        return cli_error(CLI_USAGE, "train: %s wants a whole number >= %lld, got '%s'", flag, lo, v ? v : "");
    *out = (long long)u;
    return CLI_OK;
}

/* --NAME VALUE or --NAME=VALUE for a model option. */
static int model_option(train_args *a, int argc, char **argv, int *i)
{
    const char *arg = argv[*i];
    if (strncmp(arg, "--", 2) != 0 || !arg[2])
        return cli_error(CLI_USAGE, "train: unexpected argument '%s' (try edifice train --help)", arg);
    if (a->nopts == MAX_MODEL_OPTS) return cli_error(CLI_USAGE, "train: too many model options");
    char *name = a->opt_buf[a->nopts];
    const char *eq = strchr(arg + 2, '='), *value;
    size_t len = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
    if (len >= sizeof a->opt_buf[0]) return cli_error(CLI_USAGE, "train: option name too long");
    memcpy(name, arg + 2, len);
    name[len] = '\0';
    if (!ed_option_find(a->def->options, a->def->noptions, name)) {
        char list[1024];
        return cli_error(CLI_USAGE, "train: '%s' is neither a train flag nor an option of %s (options: %s; try edifice train --help)",
                         arg, a->def->name, ed_options_list(a->def->options, a->def->noptions, list, sizeof list));
    }
    value = eq ? eq + 1 : (*i + 1 < argc ? argv[++*i] : NULL);
    if (!value) return cli_error(CLI_USAGE, "train: --%s needs a value", name);
    a->opt_name[a->nopts] = name;
    a->opt_value[a->nopts++] = value;
    return CLI_OK;
}

static int parse_args(train_args *a, int argc, char **argv)
{
    const char *v;
    int rc = CLI_OK;
    for (int i = 2; i < argc && rc == CLI_OK; i++) {
        if (cli_option(argc, argv, &i, "--data", &v)) {
            if (!v) rc = cli_error(CLI_USAGE, "train: --data needs a value");
            a->data = v;
        } else if (cli_option(argc, argv, &i, "--out", &v)) {
            if (!v) rc = cli_error(CLI_USAGE, "train: --out needs a file name");
            a->out = v;
        } else if (cli_option(argc, argv, &i, "--resume", &v)) {
            if (!v) rc = cli_error(CLI_USAGE, "train: --resume needs a checkpoint file");
            a->resume = v;
        } else if (cli_option(argc, argv, &i, "--log", &v)) {
            if (!v) rc = cli_error(CLI_USAGE, "train: --log needs a file name");
            a->log = v;
        } else if (cli_option(argc, argv, &i, "--steps", &v)) rc = parse_count("--steps", v, 1, &a->steps);
        else if (cli_option(argc, argv, &i, "--batch", &v)) rc = parse_count("--batch", v, 1, &a->batch);
        else if (cli_option(argc, argv, &i, "--n", &v)) rc = parse_count("--n", v, 1, &a->n);
        else if (cli_option(argc, argv, &i, "--seed", &v)) rc = parse_count("--seed", v, 0, &a->seed);
        else if (cli_option(argc, argv, &i, "--every", &v)) rc = parse_count("--every", v, 1, &a->every);
        else if (cli_option(argc, argv, &i, "--lr", &v)) {
            char *end = NULL;
            a->lr = v ? strtod(v, &end) : NAN;
            if (!v || *end || end == v || !(a->lr > 0 && isfinite(a->lr)))
                rc = cli_error(CLI_USAGE, "train: --lr wants a finite number > 0, got '%s'", v ? v : "");
        } else if (cli_option(argc, argv, &i, "--lr-schedule", &v)) {
            ed_lr_schedule k = ED_LR_COSINE;
            if (!ed_lr_schedule_parse(v, &k)) rc = cli_error(CLI_USAGE, "train: --lr-schedule wants cosine or constant, got '%s'", v ? v : "");
            a->lr_schedule = (int)k;
        } else if (cli_option(argc, argv, &i, "--backend", &v)) {
            if (v && strcmp(v, "jit") == 0) a->backend = ED_BACKEND_JIT;
            else if (v && strcmp(v, "interp") == 0) a->backend = ED_BACKEND_INTERP;
            else rc = cli_error(CLI_USAGE, "train: --backend wants jit or interp, got '%s'", v ? v : "");
        } else if (cli_pass_arg("train", &a->passes, argc, argv, &i, &rc)) {
        } else {
            rc = model_option(a, argc, argv, &i);
        }
    }
    return rc;
}

/* Apply the command line's model options; on resume they must equal the checkpoint's. */
static int apply_model_options(const train_args *a, ed_gen_model *m, bool resuming, const char *ckpt)
{
    for (int i = 0; i < a->nopts; i++) {
        char before[64], after[64];
        ed_gen_model_get(m, a->opt_name[i], before, sizeof before);
        if (ed_gen_model_set(m, a->opt_name[i], a->opt_value[i]) != ED_OK)
            return cli_error(CLI_USAGE, "train: %s", ed_last_error());
        ed_gen_model_get(m, a->opt_name[i], after, sizeof after);
        if (resuming && strcmp(before, after) != 0)
            return cli_error(CLI_USAGE, "train: %s was trained with %s = %s; a resumed run keeps its model options", ckpt,
                             a->opt_name[i], before);
    }
    return CLI_OK;
}

/* On resume, a flag the checkpoint fixes must be absent or equal. */
static int same_or_absent(const char *ckpt, const char *flag, bool given, bool equal, const char *was)
{
    if (!given || equal) return CLI_OK;
    return cli_error(CLI_USAGE, "train: %s was trained with %s %s; a resumed run keeps it (leave %s out)", ckpt, flag, was,
                     flag);
}

static int64_t param_count(const ed_store *st)
{
    int64_t n = 0;
    for (int i = 0; i < ed_store_count(st); i++)
        if (ed_store_trainable(st, i)) n += ed_tensor_numel(ed_store_tensor(st, i));
    return n;
}

static const char *shape_str(ed_shape s, char *buf, size_t size)
{
    size_t len = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < s.rank && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s%lld", i ? ", " : "", (long long)s.dim[i]);
    if (len < size) snprintf(buf + len, size - len, "]");
    return buf;
}

/* Fail before training, not after it, when the checkpoint cannot be written. */
static int check_writable(const char *out)
{
    char dir[4096];
    const char *slash = strrchr(out, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else snprintf(dir, sizeof dir, "%.*s", slash == out ? 1 : (int)(slash - out), out);
    if (access(dir, W_OK) != 0)
        return cli_error(CLI_FAIL, "train: cannot write the checkpoint %s: directory '%s' does not exist or is not writable",
                         out, dir);
    return CLI_OK;
}

/* The training loop proper: returns CLI_OK, CLI_FAIL or 130 (interrupted, saved). */
static int run(ed_trainer *t, int64_t total, const char *out, const char *log_path, long long every)
{
    FILE *log = NULL;
    if (log_path && !(log = fopen(log_path, "w"))) return cli_error(CLI_FAIL, "train: cannot write --log %s", log_path);
    if (log) fputs("step,loss\n", log);
    struct sigaction old_int, old_term;
    stop_requested = 0;
    catch_signals(&old_int, &old_term);
    cli_progress pr;
    int64_t start = ed_trainer_steps_done(t);
    double loss = NAN;
    int rc = CLI_OK;
    cli_progress_start(&pr, stderr, start, total, every);
    while (ed_trainer_steps_done(t) < total && !stop_requested) {
        if (ed_trainer_step(t, &loss) != ED_OK) {
            rc = cli_error(CLI_FAIL, "train: step %lld: %s", (long long)ed_trainer_steps_done(t) + 1, ed_last_error());
            break;
        }
        int64_t step = ed_trainer_steps_done(t);
        if (log) fprintf(log, "%lld,%.9g\n", (long long)step, loss);
        if (!isfinite(loss)) {
            rc = cli_error(CLI_FAIL, "train: the loss is %g at step %lld; stopping without a checkpoint (try a lower --lr)", loss,
                           (long long)step);
            break;
        }
        cli_progress_update(&pr, step, loss);
    }
    int64_t done = ed_trainer_steps_done(t);
    double secs = cli_progress_end(&pr, done, loss);
    if (log && fclose(log) != 0 && rc == CLI_OK) rc = cli_error(CLI_FAIL, "train: writing --log %s failed", log_path);
    if (rc == CLI_OK) {
        if (ed_trainer_save(t, out) != ED_OK) {
            rc = cli_error(CLI_FAIL, "train: %s", ed_last_error());
        } else if (stop_requested) {
            fprintf(stderr, "edifice: interrupted at step %lld of %lld; checkpoint saved to %s (continue with --resume %s)\n",
                    (long long)done, (long long)total, out, out);
            rc = 130;
        } else {
            fprintf(stderr, "trained %lld steps in %.1f s (%.1f steps/s); checkpoint saved to %s\n",
                    (long long)(done - start), secs, secs > 0 ? (double)(done - start) / secs : 0.0, out);
        }
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    return rc;
}

/* Everything after parsing: pick up the checkpoint or start fresh, then train. */
static int train(train_args *a)
{
    ed_checkpoint ck = {0};
    ed_dataset d = {0};
    ed_gen_model m;
    ed_trainer_opts o = {.batch = ED_TRAIN_DEFAULT_BATCH, .lr = ED_TRAIN_DEFAULT_LR, .steps = 1000, .lr_schedule = ED_LR_COSINE};
    ed_trainer *t = NULL;
    bool differs = false; /* a resumed run that will not be the interrupted one */
    char name[1024];
    int rc = CLI_OK;
    if (a->resume) {
        if (ed_checkpoint_load(a->resume, &ck) != ED_OK) return cli_error(CLI_FAIL, "train: %s", ed_last_error());
        if (ck.model.def != a->def)
            rc = cli_error(CLI_FAIL, "train: %s is a checkpoint of model %s, not %s", a->resume, ck.model.def->name, a->def->name);
        char was[64];
        snprintf(was, sizeof was, "%lld", (long long)ck.data_n);
        if (rc == CLI_OK) rc = same_or_absent(a->resume, "--data", a->data, a->data && strcmp(a->data, ck.data) == 0, ck.data);
        if (rc == CLI_OK) rc = same_or_absent(a->resume, "--n", a->n >= 0, a->n == ck.data_n, was);
        snprintf(was, sizeof was, "%llu", (unsigned long long)ck.train.seed);
        if (rc == CLI_OK)
            rc = same_or_absent(a->resume, "--seed", a->seed >= 0, (unsigned long long)a->seed == ck.train.seed, was);
        m = ck.model;
        if (rc == CLI_OK) rc = apply_model_options(a, &m, true, a->resume);
        o = ck.train;
        if (rc == CLI_OK && ed_dataset_open(&d, ck.data, ck.data_n, ck.data_seed) != ED_OK)
            rc = cli_error(CLI_FAIL, "train: %s (the data of %s)", ed_last_error(), a->resume);
        differs = (a->batch >= 0 && a->batch != o.batch) || (!isnan(a->lr) && a->lr != o.lr) ||
                  (a->lr_schedule >= 0 && a->lr_schedule != (int)o.lr_schedule) ||
                  (o.lr_schedule == ED_LR_COSINE && a->steps >= 0 && a->steps != o.steps);
    } else {
        if (!a->data) return cli_error(CLI_USAGE, "train: --data is required (a built-in set, FILE.npy or OBS.npy,ACTIONS.npy)");
        uint64_t seed = a->seed >= 0 ? (uint64_t)a->seed : 0;
        if (ed_dataset_open(&d, a->data, a->n >= 0 ? a->n : 10000, seed) != ED_OK)
            return cli_error(CLI_FAIL, "train: %s", ed_last_error());
        if (ed_gen_model_init(&m, a->def, ed_dataset_sample_shape(&d), ed_dataset_obs_size(&d)) != ED_OK)
            rc = cli_error(CLI_FAIL, "train: %s", ed_last_error());
        if (rc == CLI_OK) rc = apply_model_options(a, &m, false, NULL);
        o.seed = seed;
    }
    if (a->batch >= 0) o.batch = a->batch;
    if (!isnan(a->lr)) o.lr = a->lr;
    if (a->lr_schedule >= 0) o.lr_schedule = (ed_lr_schedule)a->lr_schedule;
    if (a->steps >= 0) o.steps = a->steps;
    o.backend = a->backend;
    ed_pass_opts po = cli_pass_opts(&a->passes);
    o.passes = a->passes.pipeline;
    o.pass_opts = &po;
    const char *out = a->out ? a->out : a->resume;
    if (!out) {
        snprintf(name, sizeof name, "%s.safetensors", a->def->name);
        out = name;
    }
    if (rc == CLI_OK) rc = check_writable(out);
    if (rc == CLI_OK && ck.store && ck.step >= o.steps) {
        fprintf(stderr, "edifice: %s is already at step %lld of %lld; nothing to do (give --steps N above it)\n", a->resume,
                (long long)ck.step, (long long)o.steps);
        ed_checkpoint_free(&ck);
        ed_dataset_free(&d);
        return CLI_OK;
    }
    if (rc == CLI_OK) {
        ed_clear_error();
        t = ck.store ? ed_trainer_resume(&ck, &d, &o) : ed_trainer_new(&m, &d, &o);
        if (!t) rc = cli_error(CLI_FAIL, "train: %s%s%s", a->resume ? a->resume : "", a->resume ? ": " : "", ed_last_error());
    }
    if (rc == CLI_OK && differs)
        fprintf(stderr, "edifice: note: --batch/--lr/--lr-schedule (or --steps, which ends the cosine) differ from the "
                        "checkpoint's (%lld, %g, %s, %lld): the run continues, but not as the interrupted one would have\n",
                (long long)ck.train.batch, ck.train.lr, ed_lr_schedule_name(ck.train.lr_schedule), (long long)ck.train.steps);
    if (rc == CLI_OK) {
        char shape[96];
        const ed_compile_stats cs = ed_program_compile_stats(ed_trainer_program(t));
        fprintf(stderr, "%s %s on %s: %lld rows of %s%s%lld params, batch %lld, lr %g (%s), seed %llu, %s",
                a->resume ? "resume" : "train", a->def->name, d.spec, (long long)ed_dataset_rows(&d),
                shape_str(ed_dataset_sample_shape(&d), shape, sizeof shape),
                ed_dataset_obs_size(&d) ? " given observations, " : ", ", (long long)param_count(ed_trainer_store(t)),
                (long long)o.batch, o.lr, ed_lr_schedule_name(o.lr_schedule), (unsigned long long)o.seed, a->backend == ED_BACKEND_INTERP ? "interp" : "jit");
        if (a->backend != ED_BACKEND_INTERP)
            fprintf(stderr, " (compiled in %.0f ms)", cs.lower_ms + cs.optimize_ms + cs.codegen_ms);
        if (a->resume) fprintf(stderr, ", from step %lld", (long long)ed_trainer_steps_done(t));
        fputc('\n', stderr);
        rc = run(t, o.steps, out, a->log, a->every);
    }
    ed_trainer_free(t);
    ed_checkpoint_free(&ck);
    ed_dataset_free(&d);
    return rc;
}

int cmd_train(int argc, char **argv)
{
    if (argc >= 2 && cli_is_help(argv[1])) {
        fputs(usage, stdout);
        fputs(cli_pass_usage, stdout);
        return CLI_OK;
    }
    for (int i = 1; i < argc; i++)
        if (cli_is_help(argv[i])) {
            fputs(usage, stdout);
            fputs(cli_pass_usage, stdout);
            return CLI_OK;
        }
    if (argc < 2 || argv[1][0] == '-')
        return cli_error(CLI_USAGE, "train: give the model first, e.g. edifice train flow_matching --data moons (see edifice models)");
    train_args a = {.steps = -1, .batch = -1, .n = -1, .seed = -1, .lr = NAN, .lr_schedule = -1};
    a.def = ed_model_find(argv[1]);
    if (!a.def) return cli_error(CLI_USAGE, "train: %s", ed_last_error());
    int rc = parse_args(&a, argc, argv);
    return rc == CLI_OK ? train(&a) : rc;
}
