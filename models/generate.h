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

#include "models/registry.h"

/* The sampler names a model accepts, "a|b|c" (for help and messages). */
const char *ed_gen_model_samplers(const ed_gen_model *m);

/* n samples [n, sample...] (f32) in g. obs [n, obs_size] is required for a conditional
 * model and must be NULL otherwise. The initial noise and every step's noise are drawn
 * in the graph (the program's seed and call counter). NULL with the reason on the graph
 * for an unknown sampler or a bad option. */
ed_node *ed_gen_model_sample(ed_graph *g, const ed_gen_model *m, int64_t n, ed_node *obs, ed_node *labels,
                             const ed_gen_sample_opts *o);

/* The denoiser families' sample callback (flow matching's ODE solvers, ddpm and ddim):
 * the whole sampler loop around the model's network. */
ed_node *ed_denoiser_sample(ed_graph *g, const ed_gen_model *m, int64_t n, ed_node *obs, ed_node *labels,
                            const ed_gen_sample_opts *o);

#endif
