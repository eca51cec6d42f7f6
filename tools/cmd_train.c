/* edifice train: train a registered model on a data set, with a progress line, a
 * checkpoint at the end (or on Ctrl-C), and --resume continuing bit for bit. */
#include "models/trainer.h"
#include "runtime/comm.h"
#include "runtime/store.h"
#include "tools/cli.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>

static const char usage[] =
    "usage: edifice train MODEL --data NAME|FILE.npy|OBS.npy,ACTIONS.npy\n"
    "                     [--steps N] [--batch B] [--lr X] [--seed S] [--n ROWS]\n"
    "                     [--backend jit|interp] [--out FILE.safetensors] [--force] [--resume FILE]\n"
    "                     [--lr-schedule cosine|constant] [--log FILE.csv] [--every K]\n"
    "                     [--save-every K] [--mpi-timeout SECONDS] [--allreduce-bucket N]\n"
    "                     [--OPTION VALUE ...] [pass options]\n"
    "\n"
    "Trains MODEL (see `edifice models`) with Adam and writes a checkpoint: the params,\n"
    "the optimizer state, the step and the data RNG state, with the model, its options\n"
    "and the data named in the metadata. Ctrl-C stops after the current step and saves\n"
    "the checkpoint (exit status 130); --resume FILE continues that run exactly as if\n"
    "it had not been stopped.\n"
    "\n"
    "  --data SPEC       a built-in set (moons, circles, swiss_roll, 8gaussians,\n"
    "                    checkerboard: 2-D; demo: observation -> 8x2 action chunk), the\n"
    "                    images digits (8x8, 1500 train / 297 test) or fashion_mnist\n"
    "                    (28x28, 60000 / 10000; package dataset-fashion-mnist), an\n"
    "                    .npy array [N, D], images [N, H, W] or [N, C, H, W] (uint8 or\n"
    "                    float; X.npy,labels=Y.npy adds labels), or OBS.npy,ACTIONS.npy\n"
    "                    pairs [N, O], [N, H, A]\n"
    "  --n ROWS          rows generated for a built-in set (default 10000)\n"
    "  --steps N         train until step N (default 1000, or the model's own as\n"
    "                    `edifice models` lists it; on --resume, the run's own)\n"
    "  --batch B         batch size (default 256; the GANs with --arch conv: 64)\n"
    "  --lr X            Adam learning rate (default 0.001; the GANs with --arch conv:\n"
    "                    0.0002)\n"
    "  --lr-schedule S   cosine (default: from lr down to lr/100 at the last step) or\n"
    "                    constant\n"
    "  --seed S          seeds the params, the noise, the batches and a built-in set (0)\n"
    "  --backend B       jit (default) or interp (the reference interpreter)\n"
    "  --out FILE        the checkpoint (default MODEL.safetensors; on --resume, FILE)\n"
    "  --force           replace an existing --out (other than the checkpoint resumed)\n"
    "  --resume FILE     continue from a checkpoint of MODEL; the data, seed and model\n"
    "                    options come from it (giving other values is an error)\n"
    "  --log FILE.csv    write step,loss for every step\n"
    "  --save-every K    also save the checkpoint every K steps (each save atomic: a kill\n"
    "                    at any moment leaves the last complete one)\n"
    "  --every K         without a terminal, print progress every K steps (default: a\n"
    "                    tenth of the run)\n"
    "  --OPTION VALUE    a model option, e.g. --hidden 128 (see `edifice models MODEL`)\n"
    "Data parallel (a build with EDIFICE_MPI, started as mpirun -np R edifice train ...):\n"
    "each rank trains on B/R rows of the batch B, gradients averaged; rank 0 prints,\n"
    "logs and saves; --resume works on any number of ranks.\n"
    "  --mpi-timeout S   give up (exit 1) when the other ranks do not answer within S\n"
    "                    seconds: a rank died or hangs (default 300; 0: wait forever)\n"
    "  --allreduce-bucket N  gradients averaged in calls of at most N values (default\n"
    "                    1048576)\n"
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
    ed_train_request req; /* the flags, as the library takes them */
    const char *log;
    long long every;      /* -1: not given */
    long long save_every; /* 0: save at the end only */
    bool mpi_flag;        /* --mpi-timeout or --allreduce-bucket given */
    double mpi_timeout;   /* -1: not given */
    cli_pass_args passes; /* --passes, --print-after-all, --print-after, --pass-stats */
    ed_option_arg opts[MAX_MODEL_OPTS];
    char opt_name[MAX_MODEL_OPTS][128];
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
    const ed_model_def *def = a->req.def;
    if (strncmp(arg, "--", 2) != 0 || !arg[2])
        return cli_error(CLI_USAGE, "train: unexpected argument '%s' (try edifice train --help)", arg);
    if (strcmp(arg, "--weights") == 0 || strncmp(arg, "--weights=", 10) == 0) /* sample's and export's flag */
        return cli_error(CLI_USAGE, "train: 16-bit weights are for sampling (sample/export --weights); training with "
                                    "them is not implemented");
    if (a->req.noptions == MAX_MODEL_OPTS) return cli_error(CLI_USAGE, "train: too many model options");
    char *name = a->opt_name[a->req.noptions];
    const char *eq = strchr(arg + 2, '='), *value;
    size_t len = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
    if (len >= sizeof a->opt_name[0]) return cli_error(CLI_USAGE, "train: option name too long");
    memcpy(name, arg + 2, len);
    name[len] = '\0';
    if (!ed_option_find(def->options, def->noptions, name)) {
        char list[1024];
        return cli_error(
            CLI_USAGE,
            "train: '%s' is neither a train flag nor an option of %s (options: %s; try edifice train --help)", arg,
            def->name, ed_options_list(def->options, def->noptions, list, sizeof list));
    }
    value = eq ? eq + 1 : (*i + 1 < argc ? argv[++*i] : NULL);
    if (!value) return cli_error(CLI_USAGE, "train: --%s needs a value", name);
    a->opts[a->req.noptions++] = (ed_option_arg){name, value};
    return CLI_OK;
}

static int parse_args(train_args *a, int argc, char **argv)
{
    ed_train_request *r = &a->req;
    const char *v;
    long long k = 0;
    int rc = CLI_OK;
    for (int i = 2; i < argc && rc == CLI_OK; i++) {
        if (cli_option(argc, argv, &i, "--data", &v)) {
            if (!v) rc = cli_error(CLI_USAGE, "train: --data needs a value");
            r->data = v;
        } else if (cli_option(argc, argv, &i, "--out", &v)) {
            if (!v) rc = cli_error(CLI_USAGE, "train: --out needs a file name");
            r->out = v;
        } else if (strcmp(argv[i], "--force") == 0) {
            r->force = true;
        } else if (cli_option(argc, argv, &i, "--resume", &v)) {
            if (!v) rc = cli_error(CLI_USAGE, "train: --resume needs a checkpoint file");
            r->resume = v;
        } else if (cli_option(argc, argv, &i, "--log", &v)) {
            if (!v) rc = cli_error(CLI_USAGE, "train: --log needs a file name");
            a->log = v;
        } else if (cli_option(argc, argv, &i, "--steps", &v)) {
            rc = parse_count("--steps", v, 1, &k);
            r->steps = k;
        } else if (cli_option(argc, argv, &i, "--batch", &v)) {
            rc = parse_count("--batch", v, 1, &k);
            r->batch = k;
        } else if (cli_option(argc, argv, &i, "--n", &v)) {
            rc = parse_count("--n", v, 1, &k);
            r->n = k;
        } else if (cli_option(argc, argv, &i, "--seed", &v)) {
            rc = parse_count("--seed", v, 0, &k);
            r->seed = (uint64_t)k;
            r->has_seed = true;
        } else if (cli_option(argc, argv, &i, "--every", &v)) {
            rc = parse_count("--every", v, 1, &a->every);
        } else if (cli_option(argc, argv, &i, "--save-every", &v)) {
            rc = parse_count("--save-every", v, 1, &a->save_every);
        } else if (cli_option(argc, argv, &i, "--mpi-timeout", &v)) {
            char *end = NULL;
            a->mpi_timeout = v ? strtod(v, &end) : NAN;
            a->mpi_flag = true;
            if (!v || *end || end == v || !(a->mpi_timeout >= 0 && a->mpi_timeout <= 1e6))
                rc = cli_error(CLI_USAGE, "train: --mpi-timeout wants seconds in [0, 1e6], got '%s'", v ? v : "");
        } else if (cli_option(argc, argv, &i, "--allreduce-bucket", &v)) {
            rc = parse_count("--allreduce-bucket", v, 1, &k);
            r->bucket = k;
            a->mpi_flag = true;
        } else if (cli_option(argc, argv, &i, "--lr", &v)) {
            char *end = NULL;
            r->lr = v ? strtod(v, &end) : NAN;
            if (!v || *end || end == v || !(r->lr > 0 && isfinite(r->lr)))
                rc = cli_error(CLI_USAGE, "train: --lr wants a finite number > 0, got '%s'", v ? v : "");
        } else if (cli_option(argc, argv, &i, "--lr-schedule", &v)) {
            if (!ed_lr_schedule_parse(v, &r->lr_schedule))
                rc = cli_error(CLI_USAGE, "train: --lr-schedule wants cosine or constant, got '%s'", v ? v : "");
            r->has_lr_schedule = true;
        } else if (cli_option(argc, argv, &i, "--backend", &v)) {
            if (v && strcmp(v, "jit") == 0) r->backend = ED_BACKEND_JIT;
            else if (v && strcmp(v, "interp") == 0) r->backend = ED_BACKEND_INTERP;
            else rc = cli_error(CLI_USAGE, "train: --backend wants jit or interp, got '%s'", v ? v : "");
        } else if (cli_pass_arg("train", &a->passes, argc, argv, &i, &rc)) {
        } else {
            rc = model_option(a, argc, argv, &i);
        }
    }
    r->options = a->opts;
    return rc;
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

/* The training loop proper: returns CLI_OK, CLI_FAIL or 130 (interrupted, saved). */
/* Saves the run unless its params went non-finite (a loss can be finite one step
 * before they do): a poisoned checkpoint is never written. */
static int save(ed_trainer *t, const char *out)
{
    if (ed_store_check_finite(ed_trainer_store(t)) != ED_OK)
        return cli_error(CLI_FAIL, "train: at step %lld %s; stopping without saving (try a lower --lr)",
                         (long long)ed_trainer_steps_done(t), ed_last_error());
    if (ed_trainer_save(t, out) != ED_OK) return cli_error(CLI_FAIL, "train: %s", ed_last_error());
    return CLI_OK;
}

/* On several ranks a stop (Ctrl-C, SIGTERM) is agreed on, so every rank stops after
 * the same step and none waits alone in the next step's allreduce. */
static bool stop_agreed(void)
{
    if (ed_comm_size() == 1) return stop_requested;
    double any = stop_requested ? 1 : 0;
    ed_comm_allreduce(&any, &any, 1, 1, 0);
    return any > 0;
}

/* A test hook (tests/mpi/): EDIFICE_TEST_RANK_FAULT=RANK:STEP:exit|stop makes that rank,
 * before that step, exit at once (a crash) or stop itself (a hang), so the tests can
 * watch the other ranks give up rather than wait forever. */
static void rank_fault(int64_t step)
{
    const char *spec = getenv("EDIFICE_TEST_RANK_FAULT");
    int rank;
    long long at;
    char what[8];
    if (!spec || sscanf(spec, "%d:%lld:%7s", &rank, &at, what) != 3 || rank != ed_comm_rank() || at != step) return;
    fprintf(stderr, "edifice: rank %d: EDIFICE_TEST_RANK_FAULT: %s before step %lld\n", rank, what, at);
    if (strcmp(what, "stop") == 0) raise(SIGSTOP);
    else _exit(3);
}

static int run_steps(ed_trainer *t, const train_args *a, const char *out, FILE *log)
{
    bool lead = ed_comm_rank() == 0; /* prints and saves; the other ranks only train */
    int64_t total = ed_trainer_options(t)->steps;
    const ed_model_def *def = ed_trainer_model(t)->def;
    const char *names[ED_MAX_STEPS];
    int nloss = def->nsteps;
    for (int k = 0; k < nloss; k++) names[k] = def->steps[k].name;
    struct sigaction old_int, old_term;
    stop_requested = 0;
    catch_signals(&old_int, &old_term);
    cli_progress pr;
    int64_t start = ed_trainer_steps_done(t);
    double loss = NAN, losses[ED_MAX_STEPS] = {NAN, NAN, NAN, NAN};
    int rc = CLI_OK;
    cli_progress_start(&pr, lead ? stderr : NULL, start, total, a->every);
    cli_progress_losses(&pr, names, nloss);
    ed_comm_reset_seconds();
    bool stop = false;
    while (ed_trainer_steps_done(t) < total && !(stop = stop_agreed())) {
        rank_fault(ed_trainer_steps_done(t) + 1);
        if (ed_trainer_step(t, &loss) != ED_OK) {
            rc = cli_error(CLI_FAIL, "train: step %lld: %s; stopping without saving",
                           (long long)ed_trainer_steps_done(t) + 1, ed_last_error());
            break;
        }
        int64_t step = ed_trainer_steps_done(t);
        ed_trainer_step_losses(t, losses);
        if (log) {
            fprintf(log, "%lld", (long long)step);
            for (int k = 0; k < nloss; k++) fprintf(log, ",%.9g", losses[k]);
            fputc('\n', log);
        }
        int bad = -1;
        for (int k = nloss - 1; k >= 0; k--)
            if (!isfinite(losses[k])) bad = k;
        if (bad >= 0) {
            rc = cli_error(CLI_FAIL,
                           "train: the %s loss is %g at step %lld; stopping without saving (try a lower --lr)",
                           names[bad], losses[bad], (long long)step);
            break;
        }
        cli_progress_update(&pr, step, losses);
        if (lead && a->save_every > 0 && step % a->save_every == 0 && step < total && (rc = save(t, out)) != CLI_OK)
            break;
    }
    int64_t done = ed_trainer_steps_done(t);
    double secs = cli_progress_end(&pr, done, losses);
    /* A log that failed on the way costs the log, not the run: the checkpoint is saved. */
    bool log_failed = log && (ferror(log) | fclose(log)) != 0;
    if (rc == CLI_OK && !lead) {
        if (stop) rc = 130;
    } else if (rc == CLI_OK) {
        if ((rc = save(t, out)) != CLI_OK) {
        } else if (stop) {
            fprintf(stderr,
                    "edifice: interrupted at step %lld of %lld; checkpoint saved to %s (continue with --resume %s)\n",
                    (long long)done, (long long)total, out, out);
            rc = 130;
        } else {
            fprintf(stderr, "trained %lld steps in %.1f s (%.1f steps/s); checkpoint saved to %s\n",
                    (long long)(done - start), secs, secs > 0 ? (double)(done - start) / secs : 0.0, out);
            if (ed_comm_size() > 1)
                fprintf(stderr, "data parallel over %d ranks: rank 0 spent %.2f s (%.1f%%) in collectives\n",
                        ed_comm_size(), ed_comm_seconds(), secs > 0 ? 100 * ed_comm_seconds() / secs : 0.0);
        }
    }
    if (log_failed) rc = cli_error(CLI_FAIL, "train: writing --log %s failed; the log is incomplete", a->log);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    return rc;
}

/* The --log file with its header (step,loss; a family with several steps: a column per
 * step, by name), opened and flushed before any work so a full disk or /dev/full fails
 * now. NULL with the error printed. */
static FILE *open_log(const ed_model_def *def, const char *path)
{
    FILE *log = fopen(path, "w");
    if (!log) {
        cli_error(CLI_FAIL, "train: cannot write --log %s: %s", path, strerror(errno));
        return NULL;
    }
    fputs("step", log);
    for (int k = 0; k < def->nsteps; k++) fprintf(log, ",%s", def->nsteps == 1 ? "loss" : def->steps[k].name);
    fputc('\n', log);
    if (fflush(log) != 0) {
        int e = errno;
        fclose(log);
        cli_error(CLI_FAIL, "train: cannot write --log %s: %s", path, strerror(e));
        return NULL;
    }
    return log;
}

/* One line on what is about to run. */
static void print_run(const train_args *a, const ed_trainer *t)
{
    const ed_dataset *d = ed_trainer_data(t);
    const ed_trainer_opts *o = ed_trainer_options(t);
    const ed_compile_stats cs = ed_program_compile_stats(ed_trainer_program(t));
    bool interp = a->req.backend == ED_BACKEND_INTERP;
    char shape[96];
    fprintf(stderr, "%s %s on %s: %lld rows of %s%s%lld params, batch %lld, lr %g (%s), seed %llu, %s",
            a->req.resume ? "resume" : "train", a->req.def->name, d->spec, (long long)ed_dataset_rows(d),
            shape_str(ed_dataset_sample_shape(d), shape, sizeof shape),
            ed_dataset_obs_size(d) ? " given observations, " : ", ", (long long)param_count(ed_trainer_store(t)),
            (long long)o->batch, o->lr, ed_lr_schedule_name(o->lr_schedule), (unsigned long long)o->seed,
            interp ? "interp" : "jit");
    if (!interp) fprintf(stderr, " (compiled in %.0f ms)", cs.lower_ms + cs.optimize_ms + cs.codegen_ms);
    if (a->req.resume) fprintf(stderr, ", from step %lld", (long long)ed_trainer_steps_done(t));
    if (ed_comm_size() > 1)
        fprintf(stderr, ", %d ranks of %lld rows", ed_comm_size(), (long long)(o->batch / ed_comm_size()));
    fputc('\n', stderr);
}

/* Everything after parsing: open the run (models/trainer.h holds the resume rules), then train. */
static int train(train_args *a)
{
    ed_pass_opts po = cli_pass_opts(&a->passes);
    a->req.passes = a->passes.pipeline;
    a->req.pass_opts = &po;
    bool lead = ed_comm_rank() == 0;
    FILE *log = NULL;
    if (lead && a->log && !(log = open_log(a->req.def, a->log))) return CLI_FAIL;
    ed_train_open_result run;
    if (ed_trainer_open(&a->req, &run) != ED_OK) {
        if (log) fclose(log);
        return cli_error(run.bad_request ? CLI_USAGE : CLI_FAIL, "train: %s", ed_last_error());
    }
    ed_trainer *t = run.trainer;
    const ed_trainer_opts *o = ed_trainer_options(t);
    int rc = CLI_OK;
    if (run.resumed && ed_trainer_steps_done(t) >= o->steps) {
        if (lead)
            fprintf(stderr, "edifice: %s is already at step %lld of %lld; nothing to do (give --steps N above it)\n",
                    a->req.resume, (long long)ed_trainer_steps_done(t), (long long)o->steps);
    } else {
        if (run.diverges && lead)
            fprintf(stderr,
                    "edifice: note: --batch/--lr/--lr-schedule (or --steps, which ends the cosine) differ from the "
                    "checkpoint's (%lld, %g, %s, %lld): the run continues, but not as the interrupted one would have\n",
                    (long long)run.was.batch, run.was.lr, ed_lr_schedule_name(run.was.lr_schedule),
                    (long long)run.was.steps);
        if (lead) print_run(a, t);
        rc = run_steps(t, a, run.out, log);
        log = NULL; /* closed by run_steps */
    }
    if (log) fclose(log);
    ed_trainer_free(t);
    return rc;
}

/* mpirun's environment names the ranks; without EDIFICE_MPI each would train alone. */
static int world_size_from_env(void)
{
    const char *v = getenv("OMPI_COMM_WORLD_SIZE");
    return v ? atoi(v) : 1;
}

/* MPI starts here when mpirun started this process (an MPI build), and ends after the
 * run; MPI-only flags in a build without MPI are refused. */
static int train_on_ranks(train_args *a)
{
    if (!ed_comm_built_with_mpi()) {
        if (a->mpi_flag)
            return cli_error(CLI_USAGE, "train: --mpi-timeout and --allreduce-bucket need a build with MPI "
                                        "(cmake -DEDIFICE_MPI=ON; README.md, \"Data-parallel training\")");
        if (world_size_from_env() > 1)
            return cli_error(CLI_USAGE,
                             "train: started by mpirun on %d ranks, but this edifice is built without MPI "
                             "(cmake -DEDIFICE_MPI=ON): each rank would train alone",
                             world_size_from_env());
        return train(a);
    }
    if (!ed_comm_launched()) return train(a);
    if (a->mpi_timeout >= 0) ed_comm_set_timeout(a->mpi_timeout);
    if (ed_comm_init() != ED_OK) return cli_error(CLI_FAIL, "train: %s", ed_last_error());
    int rc = train(a);
    ed_comm_finalize();
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
        return cli_error(
            CLI_USAGE,
            "train: give the model first, e.g. edifice train flow_matching --data moons (see edifice models)");
    train_args a = {.every = -1, .mpi_timeout = -1};
    a.req.def = ed_model_find(argv[1]);
    if (!a.req.def) return cli_error(CLI_USAGE, "train: %s", ed_last_error());
    int rc = parse_args(&a, argc, argv);
    return rc == CLI_OK ? train_on_ranks(&a) : rc;
}
