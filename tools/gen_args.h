/* The sampler flags and the progress lines that `edifice sample` and `edifice eval`
 * share (tools/gen_args.c); the drawing itself is models/generate.h's. */
#ifndef ED_TOOLS_GEN_ARGS_H
#define ED_TOOLS_GEN_ARGS_H

#include "models/generate.h"
#include "models/trainer.h"
#include "tools/cli.h"

typedef struct {
    const char *cmd;         /* "sample", "eval": for messages */
    const ed_model_def *def; /* the model named on the command line */
    const char *ckpt;
    ed_gen_sample_opts so; /* --sampler, --steps, --guidance, --eta, --weights */
    uint64_t seed;         /* --seed: the program's seed */
    int64_t batch;         /* --batch: samples per call [10000] */
    ed_backend backend;    /* --backend */
    cli_pass_args passes;  /* --passes, --print-after-all, --print-after, --pass-stats */
    bool raw_weights;      /* --raw-weights: the trained weights, not their EMA */
} gen_args;

/* The usage lines of the flags gen_arg takes. */
extern const char gen_usage[];

/* The start of `edifice sample|eval MODEL ...`: prints usage and the shared flags for
 * --help anywhere (*rc = CLI_OK), or checks that MODEL comes first and is known. Returns
 * true when the command should go on to its own flags (from argv[2]); otherwise *rc is
 * the exit code. */
bool gen_start(gen_args *a, const char *usage, const char *example, int argc, char **argv, int *rc);

/* Take argv[*i] if it is one of the shared flags (a bad value sets *rc). */
bool gen_arg(gen_args *a, int argc, char **argv, int *i, int *rc);
/* A whole number in lo..hi for flag, else a usage error naming cmd. */
/* --weights: f32, bf16 or f16 into *out. */
int gen_parse_weights(const char *cmd, const char *v, ed_dtype *out);
int gen_parse_count(const char *cmd, const char *flag, const char *v, long long lo, long long hi, long long *out);

/* Load a->ckpt, which must be a checkpoint of a->def, with the EMA of its weights in
 * place of them when it keeps one (unless --raw-weights). A CLI_* code. */
int gen_load(const gen_args *a, ed_checkpoint *ck);

/* ed_gen_draw with the flags, printing its progress and one timing line on stderr. */
int gen_draw(const gen_args *a, ed_checkpoint *ck, int64_t n, const ed_tensor *obs, const ed_tensor *labels,
             ed_tensor **out);

/* ed_gen_fresh_data seeded by --seed and k. */
int gen_fresh_data(const gen_args *a, const ed_checkpoint *ck, const char *spec, int64_t n, uint64_t k, ed_dataset *d);

/* A scatter plot of samples (columns 0 and 1 of the last axis: action chunks plot every
 * waypoint) over data in grey (NULL: none); prints "wrote PATH". */
int plot_over_data(const char *cmd, const char *path, const ed_tensor *samples, const ed_tensor *data,
                   const char *caption);

#endif
