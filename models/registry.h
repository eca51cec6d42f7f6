/* The models by name. An entry (ed_model_def) says everything the trainer, the sampler
 * and the CLI need about a family: its options table, its training steps (each a loss
 * over named parameter groups with its own optimizer settings, run in order every
 * iteration), how to sample it, and its own evaluation figures. A checkpoint names its
 * entry and stores the option values.
 *
 * A model instance (ed_gen_model) is an entry plus option values plus the data's
 * shapes: one sample x (no batch axis, e.g. [2], [8, 2] or [1, 8, 8]), the observation
 * width (0: unconditional) and the number of classes (0: no labels). */
#ifndef ED_MODEL_REGISTRY_H
#define ED_MODEL_REGISTRY_H

#include "backend/backend.h"
#include "frontend/optim.h"
#include "models/consistency.h"
#include "models/dataset.h"
#include "models/diffusion.h"
#include "models/dit.h"
#include "models/flow_matching.h"
#include "models/gan.h"
#include "models/latent_diffusion.h"
#include "models/realnvp.h"
#include "models/score_sde.h"
#include "models/vae.h"
#include "models/vqvae.h"

typedef struct ed_gen_model ed_gen_model;

/* One training batch as graph inputs. */
typedef struct {
    ed_node *x;      /* f32 [B, sample...] */
    ed_node *obs;    /* f32 [B, obs_size], or NULL when unconditional */
    ed_node *labels; /* i32 [B], or NULL when the data have no labels */
} ed_batch;

/* One training step of a family. Every iteration runs the model's steps in order, each
 * `repeats` times (a GAN's n_critic), each on a batch of its own, and each as one
 * compiled program over the one store. */
typedef struct {
    const char *name; /* "train" for single-step families; "disc", "gen", "prior", ... */
    /* The params it trains: name prefixes, NULL-terminated; NULL: every param of its
     * graph. A param no step trains is frozen: kept and checkpointed, never updated. */
    const char *const *groups;
    ed_node *(*loss)(ed_graph *g, const ed_gen_model *m, const ed_batch *b);
    int64_t (*repeats)(const ed_gen_model *m); /* NULL: 1 */
    /* Adjust the optimizer (betas, lr scale) from the options; NULL: Adam with the run's
     * lr. The trainer sets the state prefix ("opt." for the first step, "opt.<name>."
     * for the others, so single-step checkpoints keep their names). */
    void (*optim)(const ed_gen_model *m, ed_optim_opts *o);
    /* After the optimizer has bound its updates: bind updates that read the params' new
     * values (ed_graph_update), e.g. a target network's EMA; NULL: none. */
    int (*finish)(ed_graph *g, const ed_gen_model *m);
} ed_step_def;

#define ED_MAX_STEPS 4

/* How to sample; zero fields take the model's own settings. */
typedef struct {
    const char *sampler; /* NULL or "": the model's default sampler */
    int64_t steps;       /* 0: the model's default (ddpm: T, and no other count is accepted) */
    bool has_guidance;   /* guidance below is set (else the model's own) */
    double guidance;
    bool has_eta; /* eta below is set (else the model's own) */
    double eta;
    /* The dense layers' weights while sampling: f32 (0, the default), or bf16 / f16
     * (ED_BF16, ED_F16): params "<layer>.w.bf16" / ".w.f16" of the store's f32 "<layer>.w"
     * rounded to nearest even when the sampler is compiled (ed_gen_compile), kept 16-bit
     * in memory and widened to f32 in the matmul; everything else computes in f32. */
    ed_dtype weights;
} ed_gen_sample_opts;

/* How a figure's node over a batch becomes one number over the whole split. */
typedef enum {
    ED_FIGURE_MEAN,       /* node [B]: a figure per sample, averaged over the rows */
    ED_FIGURE_PERPLEXITY, /* node [K]: counts of K categories in the batch (codes), summed
                             over the rows; the figure is exp(entropy) of the histogram */
    ED_FIGURE_USED,       /* node [K]: the same counts; the figure is how many occur */
} ed_figure_kind;

/* A family's own evaluation figure on a data split. */
typedef struct {
    const char *name; /* "neg_elbo", "iwae_nll", ... */
    const char *unit; /* "nats/image", "bits/dim" */
    ed_figure_kind kind;
} ed_figure_def;

#define ED_MAX_FIGURES 8

/* How a denoiser family samples: what its network predicts and the process it was
 * trained on, flow matching's (fm: t in [0, 1], 1 = data) or diffusion's (integer
 * timesteps), exactly one of the two non-NULL. */
typedef struct {
    const char *pred;                   /* "eps" or "velocity" */
    const char *samplers;               /* the names it accepts, "a|b|c" */
    const ed_fm_opts *fm;               /* sigma_min, solver, sample_steps */
    const ed_diffusion_opts *diffusion; /* schedule, ddim_steps, eta, clip_x0 */
    const char *default_sampler;        /* diffusion: "ddpm" or "ddim" */
    double guidance;                    /* the scale without --guidance (1: none) */
    bool guidable;                      /* the null condition was trained: guidance is allowed (else an error) */
} ed_denoiser_sampling;

/* A frozen parameter group: another model's trained checkpoint, named by a PATH option
 * of this model, whose params and state (not its optimizer's "opt.*") join the store
 * under a name scope when a fresh run starts (ed_frozen_load, models/trainer.h). No step
 * trains them (the steps name their own groups) and every checkpoint of the run saves
 * them, so the checkpoint stands alone: resume, sample and eval read the frozen weights
 * from it, never from the file again (the option keeps the file's name, for the record). */
typedef struct {
    const char *option; /* the PATH option naming the checkpoint ("vae"); required */
    const char *model;  /* the registry name the checkpoint must be of ("vae") */
    const char *scope;  /* its tensors' names get this scope: "ae" -> "ae.vae.enc.0.w" */
    /* Takes what m needs of the frozen model (its options) and checks what else m needs of
     * it (frozen.c checks the sample shapes first); ED_ERR with a message otherwise. */
    int (*adopt)(ed_gen_model *m, const ed_gen_model *frozen);
    bool optional; /* an empty option loads nothing (consistency: no teacher is CT); else required */
} ed_frozen_def;

#define ED_MAX_FROZEN 2

typedef struct {
    const char *name;
    const char *summary;
    bool uses_labels; /* class-conditional: labels reach its steps and samples */
    const ed_option *options;
    int noptions;
    void (*defaults)(ed_gen_model *m);
    /* Check the data fit the family (flat data only, labels needed, ...); NULL: any. */
    int (*check)(const ed_gen_model *m);

    int nsteps;
    ed_step_def steps[ED_MAX_STEPS];
    /* Iterations of a fresh run without --steps; 0: the trainer's 1000. For a family
     * whose default run needs more (the GANs on 8gaussians, score_sde: bench/HISTORY.md). */
    int64_t default_steps;
    /* A fresh run's steps, batch and lr without --steps, --batch and --lr, for these options
     * (they come in at default_steps, the trainer's 256 and 1e-3); NULL: those. The DCGAN's
     * 64 and 2e-4, the U-Net denoisers' steps and batch. */
    void (*run_defaults)(const ed_gen_model *m, int64_t *steps, int64_t *batch, double *lr);
    /* An INT option that a fresh run sets to its own planned steps when it is 0
     * (consistency's schedule_steps: the grid grows over the whole run); NULL: none. */
    const char *run_steps_option;
    /* A REAL option in [0, 1) holding the decay of an EMA of the weights, kept as training
     * state beside the optimizer's and sampled from when present (ed_checkpoint_use_ema);
     * 0 turns it off. NULL: the family keeps none. */
    const char *ema_option;

    /* Frozen groups from other checkpoints (see ed_frozen_def). */
    int nfrozen;
    ed_frozen_def frozen[ED_MAX_FROZEN];
    /* A fresh run only, after the frozen groups are loaded and before the steps are built:
     * settings computed from the training data (latent diffusion's scale factor) written
     * into m's options, so checkpoints keep them. NULL: none. */
    int (*prepare)(ed_gen_model *m, ed_store *st, const ed_dataset *d, uint64_t seed, ed_backend backend);

    /* n samples [n, sample...] into g; obs [n, obs_size] for a conditional model, labels
     * i32 [n] for a class-conditional one, else NULL. NULL with the reason on g. */
    ed_node *(*sample)(ed_graph *g, const ed_gen_model *m, int64_t n, ed_node *obs, ed_node *labels,
                       const ed_gen_sample_opts *o);
    const char *samplers; /* the sampler names it accepts, "a|b|c"; NULL: only its own */

    /* The figures' nodes over a batch (shaped as their kind says), written into
     * out[0..nfigures-1]; NULL: none. */
    int nfigures;
    ed_figure_def figures[ED_MAX_FIGURES];
    int (*figure_nodes)(ed_graph *g, const ed_gen_model *m, const ed_batch *b, ed_node **out);

    /* Reconstructions [B, sample...] of x [B, sample...] (autoencoders); NULL: none. */
    ed_node *(*reconstruct)(ed_graph *g, const ed_gen_model *m, ed_node *x);

    /* Denoiser families only (the diffusion samplers wrap it): what the network returns,
     * "eps" or "velocity", and the network itself (labels i32 [B] or NULL: the null
     * class); NULL for other families. */
    const char *pred;
    ed_node *(*denoise)(ed_graph *g, const ed_gen_model *m, ed_node *x, ed_node *t, ed_node *cond, ed_node *labels);
    /* A denoiser family whose prediction and process follow its options (dit) fills s;
     * NULL: fixed by pred (velocity: m->opts.fm, eps: m->opts.diffusion). */
    void (*sampling)(const ed_gen_model *m, ed_denoiser_sampling *s);
} ed_model_def;

struct ed_gen_model {
    const ed_model_def *def;
    ed_shape sample;  /* one sample's shape, rank 1..5 */
    int64_t obs_size; /* 0: unconditional */
    int64_t classes;  /* 0: no labels */
    int64_t levels;   /* integer pixels with this many levels (17 for digits); 0: continuous */
    bool unit_range;  /* the training data lie in [0, 1] */
    /* Bit i: options[i] was set by name (ed_gen_model_set: by hand, or from a checkpoint)
     * rather than left at its default; what a frozen group's adopt checks against. */
    uint64_t set_options;
    union {
        ed_fm_opts fm;
        ed_diffusion_opts diffusion;
        ed_realnvp_opts realnvp;
        ed_vae_opts vae;
        ed_vqvae_opts vqvae;
        ed_gan_opts gan;
        ed_dit_opts dit;
        ed_score_sde_opts sde;
        ed_latent_opts latent;
        ed_cm_opts cm;
    } opts;
};

/* The families defined in their own files. */
extern const ed_model_def ed_realnvp_model;
extern const ed_model_def ed_vae_model;
extern const ed_model_def ed_vqvae_model;
extern const ed_model_def ed_gan_model;
extern const ed_model_def ed_wgan_gp_model;
extern const ed_model_def ed_cgan_model;
extern const ed_model_def ed_dit_model;
extern const ed_model_def ed_score_sde_model;
extern const ed_model_def ed_latent_diffusion_model;
extern const ed_model_def ed_consistency_model;

int ed_model_count(void);
const ed_model_def *ed_model_at(int i);
/* NULL with a message listing the models for an unknown name. */
const ed_model_def *ed_model_find(const char *name);
/* The iterations of a fresh run of def without --steps (def->default_steps, else 1000). */
#define ED_DEFAULT_TRAIN_STEPS 1000
int64_t ed_model_default_steps(const ed_model_def *def);

/* def's defaults for data of the given shapes. ED_ERR for a bad shape. */
int ed_gen_model_init(ed_gen_model *m, const ed_model_def *def, ed_shape sample, int64_t obs_size);
/* The same with every fact of the data (labels and pixel levels too). */
int ed_gen_model_init_data(ed_gen_model *m, const ed_model_def *def, const ed_data_facts *f);
/* The flattened size of one sample, and x [B, sample...] as [B, D] and back: for the
 * families whose networks read flat vectors. */
int64_t ed_gen_model_dim(const ed_gen_model *m);
/* [b, sample...]: a batch of b samples. */
ed_shape ed_gen_model_batch_shape(const ed_gen_model *m, int64_t b);
ed_node *ed_gen_model_flatten(const ed_gen_model *m, ed_node *x);
ed_node *ed_gen_model_unflatten(const ed_gen_model *m, ed_node *flat);
/* One sample as an image: chw gets [C, H, W] for samples [C, H, W], [1, H, W] for [H, W];
 * false (chw zeros) for other shapes. For the convolutional networks. */
bool ed_gen_model_image(const ed_gen_model *m, int64_t chw[3]);
/* For families with one fixed way to sample (def->samplers names it): false, with an error
 * on g saying how the family samples, when o asks for another sampler, steps, guidance
 * or eta. */
bool ed_gen_model_plain_sampler(ed_graph *g, const ed_gen_model *m, const ed_gen_sample_opts *o, const char *how);
/* Set one option by name from text (see ed_options_set), recorded in m->set_options. */
int ed_gen_model_set(ed_gen_model *m, const char *name, const char *value);
/* Whether the option was set by name since the defaults (false for an unknown name). */
bool ed_gen_model_was_set(const ed_gen_model *m, const char *name);
/* An option's value as text (NULL for an unknown name). */
const char *ed_gen_model_get(const ed_gen_model *m, const char *name, char *buf, size_t size);
/* The family's own check of the data's shapes (after the options are set). */
int ed_gen_model_check(const ed_gen_model *m);
/* The decay of the weights' EMA (def->ema_option's value); 0 when off or the family has none. */
double ed_gen_model_ema_decay(const ed_gen_model *m);

/* Step k's scalar loss on a batch. x [B, sample...], obs [B, obs_size] (NULL when
 * unconditional); the random draws (t, noise, dropout) are in the graph. */
ed_node *ed_gen_model_step_loss(ed_graph *g, const ed_gen_model *m, int k, const ed_batch *b);
/* The first step's loss: the whole training loss of a single-step family. */
ed_node *ed_gen_model_loss(ed_graph *g, const ed_gen_model *m, ed_node *x, ed_node *obs);
/* Step k's finish (see ed_step_def), after ed_train_step on its graph; ED_OK when it
 * has none. */
int ed_gen_model_step_finish(ed_graph *g, const ed_gen_model *m, int k);
/* How many times step k runs per iteration. */
int64_t ed_gen_model_step_repeats(const ed_gen_model *m, int k);

/* The network at (x, t) of a denoiser family: x [B, sample...], t [B] or [] (the
 * model's time: the integer timestep for the diffusion models, t in [0, 1] with 1 =
 * data for flow matching), cond [B, obs_size] or NULL (the null condition), labels
 * i32 [B] of a class-conditional model or NULL (the null class). Same shape as x. An
 * error on g for a family without a denoiser. */
ed_node *ed_gen_model_denoise(ed_graph *g, const ed_gen_model *m, ed_node *x, ed_node *t, ed_node *cond,
                              ed_node *labels);
/* The sampling settings of a denoiser family (see ed_denoiser_sampling). */
ed_denoiser_sampling ed_gen_model_sampling(const ed_gen_model *m);

#endif
