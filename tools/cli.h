/* Shared pieces of the `edifice` command-line program. */
#ifndef ED_CLI_H
#define ED_CLI_H

#include "backend/backend.h"

#include <stdbool.h>
#include <stdio.h>

/* Exit codes: 0 success, 1 failure of the work, 2 bad command line. */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

/* Print "edifice: <message>" on stderr; return the given code. */
int cli_error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* rc, or CLI_FAIL with an error when what went to stdout was not all written (a full
 * disk, a closed pipe): a command's result is never lost silently. */
int cli_finish_stdout(int rc);

/* Match argv[*i] against --name, taking the value from "--name=V" or the next
 * argument. Returns true on a match; *value is NULL when the value is missing. */
bool cli_option(int argc, char **argv, int *i, const char *name, const char **value);
bool cli_is_help(const char *arg);
/* s ends with suffix ("x.npy", ".npy"). */
bool cli_ends_with(const char *s, const char *suffix);
/* Parse a whole unsigned decimal number. */
bool cli_parse_u64(const char *s, unsigned long long *out);
/* mkdir -p (io/atomic_file.h: ed_make_dirs) */
int cli_make_dirs(const char *path);

/* --input bindings read from .npy files; the feeds array is what ed_run takes. */
#define CLI_MAX_FEEDS 256
typedef struct {
    ed_feed feeds[CLI_MAX_FEEDS];
    ed_tensor *tensors[CLI_MAX_FEEDS];
    char *names[CLI_MAX_FEEDS];
    int n;
} cli_feeds;
/* Add NAME=FILE.npy; cmd names the command in messages. Returns a CLI_* code. */
int cli_feeds_add(cli_feeds *f, const char *spec, const char *cmd);
void cli_feeds_free(cli_feeds *f);
/* Write every output of p as DIR/NAME.npy (creating DIR), reporting one line each. */
int cli_write_outputs(const ed_program *p, const char *dir, const char *cmd, FILE *report);

/* -O0..-O3 or --opt-level N (0..3): take argv[*i] if it is one of those and set *level
 * (a bad value sets *rc to CLI_USAGE with a message naming cmd). */
bool cli_opt_level_arg(const char *cmd, int argc, char **argv, int *i, ed_opt_level *level, int *rc);

/* The graph-pass options of every command that compiles (and of opt). */
typedef struct {
    const char *pipeline;    /* --passes LIST; NULL: the default pipeline */
    bool print_after_all;    /* --print-after-all: the text form after every pass, on stderr */
    const char *print_after; /* --print-after=NAME[,NAME...] */
    bool stats;              /* --pass-stats: time and node counts per pass, on stderr */
} cli_pass_args;
/* Take argv[*i] if it is one of the pass options (a bad value sets *rc). */
bool cli_pass_arg(const char *cmd, cli_pass_args *a, int argc, char **argv, int *i, int *rc);
/* The ed_pass_opts these options ask for (printing to stderr). */
ed_pass_opts cli_pass_opts(const cli_pass_args *a);
/* The usage lines of the pass options. */
extern const char cli_pass_usage[];

/* What the commands that run a graph share: the graph file, --input, --out, --seed,
 * --backend jit|interp, the opt level and --stats. */
typedef struct {
    const char *cmd; /* for messages: "run", "grad" */
    const char *path, *out;
    unsigned long long seed;
    cli_feeds feeds;
    ed_backend backend;     /* ED_BACKEND_DEFAULT unless --backend */
    ed_opt_level opt_level; /* ED_OPT_DEFAULT unless -On */
    bool stats;             /* --stats: print the compile statistics on stderr */
    ed_arena_mode arena;    /* --arena: the JIT's memory plan (default: in place) */
    cli_pass_args passes;   /* --passes, --print-after-all, --print-after, --pass-stats */
} cli_run_args;

/* Take argv[*i] if it is the graph file or a shared option (a bad value sets *rc).
 * Returns false for anything else, which the command handles or reports. */
bool cli_run_arg(cli_run_args *a, int argc, char **argv, int *i, int *rc);
/* Compile g on the chosen backend with a store seeded by a->seed, run it once with
 * the feeds and write every output to a->out. */
int cli_run_and_write(ed_graph *g, const cli_run_args *a, FILE *report);
/* "compile: lower X ms, optimize Y ms, codegen Z ms, N kernels" (the JIT), or
 * "compile: interp, nothing to compile, N kernels"; then the memory plan: "memory:
 * arena A bytes, buffers B bytes (N), peak live P bytes, K in place". */
void cli_print_stats(const ed_program *p, FILE *f);

/* The training progress line (tools/progress.c): step, the losses, steps/s and ETA,
 * redrawn in place on a terminal, else a plain line every `every` steps (0: a tenth of
 * the run). One loss prints as "loss X"; several (a family with several training steps)
 * each under its step's name, "train X  prior Y". */
#define CLI_MAX_LOSSES 4
typedef struct {
    FILE *f;
    bool tty, drawn;
    int64_t start, total, every;
    double t0, last_draw;
    int nlosses;
    const char *names[CLI_MAX_LOSSES];
} cli_progress;
/* f NULL: print nothing (only the time is kept). */
void cli_progress_start(cli_progress *p, FILE *f, int64_t start, int64_t total, int64_t every);
/* Name the losses (default: one, "loss"); n is at most CLI_MAX_LOSSES. */
void cli_progress_losses(cli_progress *p, const char *const *names, int n);
void cli_progress_update(cli_progress *p, int64_t step, const double *losses);
/* The last line (and a newline on a terminal); returns the seconds since start. */
double cli_progress_end(cli_progress *p, int64_t step, const double *losses);

int cmd_data(int argc, char **argv);
int cmd_plot_log(int argc, char **argv);
int cmd_dump(int argc, char **argv);
int cmd_opt(int argc, char **argv);
int cmd_grad(int argc, char **argv);
int cmd_models(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_sample(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_export_graph(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_train(int argc, char **argv);

#endif
