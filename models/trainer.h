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
    int64_t batch;      /* [256] */
    double lr;          /* Adam learning rate [1e-3] */
    uint64_t seed;      /* params, the step's random draws and the batches [0] */
    ed_backend backend; /* [JIT] */
    int64_t steps;      /* the run's planned length, kept in checkpoints [0: not said] */
    ed_lr_schedule lr_schedule; /* [constant]; cosine needs steps */
    /* How the step is compiled (not kept in checkpoints: a run resumes the same with any
     * pipeline): graph passes [NULL: the default pipeline, "": none] and their printing
     * and statistics [NULL]. */
    const char *passes;
    ed_pass_opts *pass_opts;
} ed_trainer_opts;

#define ED_TRAIN_DEFAULT_BATCH 256
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
const ed_store *ed_trainer_store(const ed_trainer *t);
const ed_program *ed_trainer_program(const ed_trainer *t);

/* Write the checkpoint (atomic). */
int ed_trainer_save(const ed_trainer *t, const char *path);

#endif
