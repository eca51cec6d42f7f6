/* Training a registered model on a dataset, one compiled program call per step, and
 * checkpoints that resume bit for bit.
 *
 * The step graph: inputs "x" [B, sample...] (and "obs" [B, O]), the model's loss with
 * its random draws (t, noise, dropout) inside the graph, then models/train_step.h's
 * ed_train_step with Adam. The program's random streams use the training seed, and its
 * call counter equals the step, as does the batch index of the data RNG
 * (models/dataset.h): so the step count, the store (params, Adam moments, opt.step)
 * and the options are the whole state of a run.
 *
 * A checkpoint is the store as safetensors (io/safetensors.h: atomic write, CRC)
 * with this metadata:
 *   "model"                  the registry name
 *   "model.sample_shape"     e.g. "8,2";  "model.obs_size": "6" (0: unconditional)
 *   "model.unit_range"       "1" when the training data lie in [0, 1], else "0" (absent: 1)
 *   "option.<name>"          every option of the model (reals exactly, %.17g at most)
 *   "data", "data.n", "data.seed"   the data spec and what generated it
 *   "data.fingerprint"       16 hex digits of ed_dataset_fingerprint (resume checks it)
 *   "train.step", "train.seed", "train.batch", "train.lr", "train.steps" (planned),
 *                            "train.lr_schedule" (absent: constant), "train.loss" (last loss)
 *   "train.data_rng"         "philox4x32-10 stream=train.batch call=<next batch>"
 * Loading checks every key, that the store holds exactly the params and state of the
 * step graph with their shapes, and that opt.step agrees with train.step. */
#ifndef ED_TRAINER_H
#define ED_TRAINER_H

#include "passes/pass.h"
#include "backend/backend.h"
#include "models/dataset.h"
#include "models/registry.h"

/* The learning rate over a run: constant, or cosine (one step of warm-up, then a
 * cosine from lr down to lr / 100 at the planned last step; the one knob that made the
 * 2-D models' samples sharp within a short budget, see models/README.md). */
typedef enum { ED_LR_CONSTANT, ED_LR_COSINE, ED_LR_COUNT } ed_lr_schedule;

const char *ed_lr_schedule_name(ed_lr_schedule s); /* "constant", "cosine" */
bool ed_lr_schedule_parse(const char *s, ed_lr_schedule *out);

typedef struct {
    int64_t batch;              /* [256] */
    double lr;                  /* Adam learning rate [1e-3] */
    uint64_t seed;              /* params, the step's random draws and the batches [0] */
    ed_backend backend;         /* [JIT] */
    int64_t steps;              /* the run's planned length, kept in checkpoints [0: not said] */
    ed_lr_schedule lr_schedule; /* [constant]; cosine needs steps */
    /* How the step is compiled (not kept in checkpoints: a run resumes the same with any
     * pipeline): graph passes [NULL: the default pipeline, "": none] and their printing
     * and statistics [NULL]. */
    const char *passes;
    ed_pass_opts *pass_opts;
    /* Data parallel, when runtime/comm.h has several ranks (not kept either: a run resumes
     * on any number of ranks): batch is the global batch, each rank trains on batch /
     * ranks rows of it, gradients averaged in allreduce calls of at most `bucket` values
     * [0: ED_TRAIN_DEFAULT_BUCKET]. */
    int64_t bucket;
} ed_trainer_opts;

#define ED_TRAIN_DEFAULT_BATCH 256
#define ED_TRAIN_DEFAULT_BUCKET (INT64_C(1) << 20)
#define ED_TRAIN_DEFAULT_LR 1e-3

/* What a checkpoint holds. */
typedef struct {
    ed_gen_model model;
    ed_trainer_opts train;
    char data[1024];
    int64_t data_n;
    uint64_t data_seed;
    uint64_t data_fingerprint;
    int64_t step;
    double loss;
    ed_store *store; /* owned; ed_trainer_resume takes it */
} ed_checkpoint;

/* ED_ERR with a message starting with the path for a bad file (safetensors checks,
 * missing or malformed metadata, an unknown model or option). */
int ed_checkpoint_load(const char *path, ed_checkpoint *out);
void ed_checkpoint_free(ed_checkpoint *c);
/* For sampling: every param that has an EMA in the store ("<step prefix>ema.<param>",
 * kept when the model's ema_option was on) takes the EMA's value. Returns how many did
 * (0: a checkpoint without EMA, left as it was), or ED_ERR. Not for resuming: the run
 * goes on from the raw weights. */
int ed_checkpoint_use_ema(ed_checkpoint *c);

typedef struct ed_trainer ed_trainer;

/* A fresh run: params from their initializers (seeded by o->seed). The model must fit
 * the data's shapes. d must outlive the trainer. NULL with ed_last_error() on failure. */
ed_trainer *ed_trainer_new(const ed_gen_model *m, const ed_dataset *d, const ed_trainer_opts *o);
/* Continue a checkpoint's run (its model and store; ck->store is taken and set to
 * NULL) on the same data (its fingerprint must match) with o (normally ck->train; another lr or batch is allowed but then the run is
 * not the one that was interrupted). */
ed_trainer *ed_trainer_resume(ed_checkpoint *ck, const ed_dataset *d, const ed_trainer_opts *o);
void ed_trainer_free(ed_trainer *t);

/* One iteration: every training step of the model in order, each on its own batch.
 * *loss gets the first step's loss (before the update). */
int ed_trainer_step(ed_trainer *t, double *loss);
int64_t ed_trainer_steps_done(const ed_trainer *t);
/* The last loss of each of the model's training steps into losses[0..]; returns how many. */
int ed_trainer_step_losses(const ed_trainer *t, double *losses);
const ed_gen_model *ed_trainer_model(const ed_trainer *t);
const ed_store *ed_trainer_store(const ed_trainer *t);
const ed_program *ed_trainer_program(const ed_trainer *t);

/* Write the checkpoint (atomic). */
int ed_trainer_save(const ed_trainer *t, const char *path);

/* Loads a checkpoint that must be of model def: ED_ERR naming both models if it is
 * another's (else as ed_checkpoint_load). */
int ed_checkpoint_load_for(const char *path, const ed_model_def *def, ed_checkpoint *out);

/* ---- frozen parameter groups (models/frozen.c) ------------------------------------------ */

/* Loads each of m's frozen groups (ed_frozen_def) into st: the checkpoint its option
 * names must be of the group's model and fit m's data (adopt); its params and state go
 * in under the group's scope, not trainable. ED_ERR naming the option (--vae) for a
 * missing option, an unreadable file, another model's checkpoint or data that differ. */
int ed_frozen_load(ed_gen_model *m, ed_store *st);
/* Whether a store name belongs to one of m's frozen groups. */
bool ed_frozen_owns(const ed_gen_model *m, const char *name);

/* ---- a training run, fresh or resumed, from one request (models/train_open.c) ------ */

/* A model option as text, as the command line gives it (--hidden 128). */
typedef struct {
    const char *name, *value;
} ed_option_arg;

/* A training run as the caller asks for it. The fields are the `train` command's flags,
 * and messages name them so (--data, --seed). A field left at zero (NULL, false) is
 * not given: a resumed run takes the checkpoint's value, a fresh one the default. */
typedef struct {
    const ed_model_def *def;      /* the model (required) */
    const ed_option_arg *options; /* model options set from text, in order */
    int noptions;
    const char *data; /* the data spec (a fresh run needs it) */
    int64_t n;        /* rows generated for a built-in set [10000] */
    bool has_seed;    /* seed below is given [0] */
    uint64_t seed;
    const char *resume;   /* a checkpoint of def to continue; NULL: a fresh run */
    const char *out;      /* where the run will be saved [the resumed file, else
                                     "<model>.safetensors"] */
    bool force;           /* out may replace an existing file other than the resumed one */
    int64_t steps;        /* the run's planned length [1000] */
    int64_t batch;        /* [256] */
    double lr;            /* Adam's learning rate [1e-3] */
    bool has_lr_schedule; /* lr_schedule below is given [cosine] */
    ed_lr_schedule lr_schedule;
    /* How the step is compiled (never taken from a checkpoint). */
    ed_backend backend;
    const char *passes;
    ed_pass_opts *pass_opts;
    int64_t bucket; /* values per allreduce call on several ranks [ED_TRAIN_DEFAULT_BUCKET] */
} ed_train_request;

/* What ed_trainer_open decided, for the caller to report. */
typedef struct {
    ed_trainer *trainer; /* the run, owning its data; the caller frees it */
    char out[4096];      /* where to save it */
    bool resumed;
    ed_trainer_opts was; /* resumed: the checkpoint's own options */
    bool diverges;       /* resumed with another batch, lr or schedule, or another length
                              of a cosine schedule: the run goes on, but not as the
                              interrupted one would have */
    bool bad_request;    /* on failure: the request is at fault (a missing field, a bad
                              option value, a field the checkpoint fixes given otherwise),
                              not a file, the data or the compiler */
} ed_train_open_result;

/* Opens the run r asks for; ED_ERR with one line in ed_last_error() otherwise.
 *
 * Fresh: opens r->data (n rows, seed) and builds def for its shapes with r's options.
 * Resumed (the resume rules): r->resume must be a checkpoint of def; --data, --n,
 * --seed and every model option must be absent or equal to the checkpoint's (a run
 * keeps its data, seed and model); the data is opened again from the checkpoint's spec
 * and must be what it was (ed_trainer_resume checks its fingerprint); steps, batch, lr
 * and schedule default to the checkpoint's and may be changed (res->diverges says so).
 * Either way the directory of the output must be writable, checked before anything is
 * compiled, so a run never fails at its end for want of a place to save it. A resumed
 * run may already be at its planned length: ed_trainer_steps_done(t) >= steps. */
int ed_trainer_open(const ed_train_request *r, ed_train_open_result *res);

/* Makes t own the data it was made with (d, freed with t; *d is zeroed), for a caller
 * that opened the data for this run only. ED_ERR if t reads other data. */
int ed_trainer_take_data(ed_trainer *t, ed_dataset *d);

/* The data and options of a run (ed_trainer_open decided them). */
const ed_dataset *ed_trainer_data(const ed_trainer *t);
const ed_trainer_opts *ed_trainer_options(const ed_trainer *t);

#endif
