/* Sampling a registered model: the adapter between a model (models/registry.h) and the
 * samplers (models/samplers.h). One call builds, in the outer graph, the whole sampler
 * loop around the model's denoiser, so a compiled program draws every sample in one call.
 *
 * Samplers by model:
 *   flow_matching   euler, midpoint, heun, rk4 (the ODE from noise at t = 0 to data at
 *                   t = 1; default: the model's `solver` with `sample_steps` steps)
 *   ddpm, ddim      ddpm (ancestral, all T steps, posterior variance as Edifice's
 *                   p_sample) and ddim (a uniform sub-sequence of the T steps with the
 *                   model's eta and clip_x0; default steps: the ddim model's ddim_steps)
 *                   ddpm's default is ddpm, ddim's is ddim.
 *
 * Classifier-free guidance: with observations and a scale s != 1, the model output is
 * out_null + s (out_cond - out_null), out_null the network under the null condition
 * (two network evaluations per model call). Guidance on an unconditional model, or eta
 * for a sampler other than ddim, is an error rather than silently ignored. */
#ifndef ED_GENERATE_H
#define ED_GENERATE_H

#include "backend/backend.h"
#include "models/registry.h"
#include "models/trainer.h"

/* The sampler names a model accepts, "a|b|c" (for help and messages). */
const char *ed_gen_model_samplers(const ed_gen_model *m);

/* n samples [n, sample...] (f32) in g, built in eval mode (ed_graph_set_training; g's
 * mode is restored after). obs [n, obs_size] is required for a conditional
 * model and must be NULL otherwise. The initial noise and every step's noise are drawn
 * in the graph (the program's seed and call counter). NULL with the reason on the graph
 * for an unknown sampler or a bad option. */
ed_node *ed_gen_model_sample(ed_graph *g, const ed_gen_model *m, int64_t n, ed_node *obs, ed_node *labels,
                             const ed_gen_sample_opts *o);

/* The denoiser families' sample callback (flow matching's ODE solvers, ddpm and ddim):
 * the whole sampler loop around the model's network. */
ed_node *ed_denoiser_sample(ed_graph *g, const ed_gen_model *m, int64_t n, ed_node *obs, ed_node *labels,
                            const ed_gen_sample_opts *o);

/* The sampler o asks for, by name, for messages: o->sampler, or the model's default. */
const char *ed_gen_sampler_name(const ed_gen_model *m, const ed_gen_sample_opts *o, char *buf, size_t size);

/* ---- drawing samples in batches ------------------------------------------------------ */

#define ED_GEN_DEFAULT_BATCH 10000

/* Where a draw is, for a progress line. */
typedef struct {
    int64_t done, n;      /* samples drawn so far, of n */
    int64_t calls, batch; /* compiled calls in all, samples per call */
    double compile_s;     /* seconds spent compiling the sampler */
    double draw_s;        /* seconds spent drawing so far */
} ed_gen_progress;

/* Zero fields take the defaults in brackets. */
typedef struct {
    ed_gen_sample_opts sampler;
    uint64_t seed;      /* the program's seed: every draw of noise [0] */
    int64_t batch;      /* samples per compiled call [ED_GEN_DEFAULT_BATCH] */
    ed_backend backend; /* [JIT] */
    const char *passes; /* graph passes [NULL: the default pipeline] and their printing */
    ed_pass_opts *pass_opts;
    /* Called once compiled (done = 0) and after each call (done = n after the last). */
    void (*progress)(void *ctx, const ed_gen_progress *p);
    void *progress_ctx;
} ed_gen_draw_opts;

/* n samples f32 [n, sample...] of m with the params in st, into *out (the caller frees
 * it). A conditional model needs obs f32 [n, obs_size]; an unconditional one takes NULL.
 * A class-conditional model (m->classes > 0) needs labels i32 [n] in 0..classes-1, the
 * class of each sample; any other model takes NULL.
 *
 * One sampler program for `batch` samples is compiled and called ceil(n / batch) times:
 * call k draws samples k*batch onwards with call counter k, for observation and label
 * rows k*batch onwards (the last call's rows past n wrap around to row 0 and its samples
 * past n are dropped). So the samples depend on the seed and the batch, not on n: a draw
 * of n is the first n rows of any longer draw with the same seed, batch and leading
 * observations and labels. ED_ERR with the reason in ed_last_error(). */
int ed_gen_draw(const ed_gen_model *m, ed_store *st, int64_t n, const ed_tensor *obs, const ed_tensor *labels,
                const ed_gen_draw_opts *o, ed_tensor **out);

/* The program ed_gen_draw calls: m's whole sampler for `batch` samples with o's options
 * and seed (o->batch is not read), graph in *g (free both; input "obs" f32 [batch,
 * obs_size] for a conditional model, "labels" i32 [batch] for a class-conditional one;
 * output "samples"). Its call k is ed_gen_draw's call k. NULL with ed_last_error(). */
ed_program *ed_gen_compile(const ed_gen_model *m, ed_store *st, int64_t batch, const ed_gen_draw_opts *o, ed_graph **g);

/* Labels i32 [n] for a grid of images `cols` wide with one class per row: sample i is
 * class (i / cols) % classes, so grid row r shows class r % classes. NULL with a message
 * for n < 1, cols < 1 or classes < 1. The caller frees it. */
ed_tensor *ed_gen_class_rows(int64_t n, int64_t classes, int64_t cols);

/* A fresh draw of n rows of spec for sampling and evaluating ck's model: seeded apart
 * from the training data's seed, by seed (the sampler's) and by k (draws 0 and 1 of a
 * floor differ). Files are read whole. */
int ed_gen_fresh_data(const ed_checkpoint *ck, const char *spec, int64_t n, uint64_t seed, uint64_t k, ed_dataset *d);

#endif
