/* The models by name: each entry knows its options table, how to build its training
 * loss and its denoiser. The CLI lists and builds models only through this table, and a
 * checkpoint names its entry and stores the option values.
 *
 * A model instance (ed_gen_model) is an entry plus option values plus the data's
 * shapes: one sample x (no batch axis, e.g. [2] or [8, 2]) and the observation width
 * (0: unconditional). Build a sampler around ed_gen_model_denoise: it adds the network
 * to any graph (e.g. a loop body) and returns what def->pred names. */
#ifndef ED_MODEL_REGISTRY_H
#define ED_MODEL_REGISTRY_H

#include "models/diffusion.h"
#include "models/flow_matching.h"

typedef struct ed_gen_model ed_gen_model;

typedef struct {
    const char *name;
    const char *summary;
    const char *pred; /* what the denoiser returns: "eps" or "velocity" */
    const ed_option *options;
    int noptions;
    void (*defaults)(ed_gen_model *m);
    ed_node *(*loss)(ed_graph *g, const ed_gen_model *m, ed_node *x, ed_node *obs);
    ed_node *(*denoise)(ed_graph *g, const ed_gen_model *m, ed_node *x, ed_node *t, ed_node *cond);
} ed_model_def;

struct ed_gen_model {
    const ed_model_def *def;
    ed_shape sample;  /* one sample's shape, rank 1..5 */
    int64_t obs_size; /* 0: unconditional */
    union {
        ed_fm_opts fm;
        ed_diffusion_opts diffusion;
    } opts;
};

int ed_model_count(void);
const ed_model_def *ed_model_at(int i);
/* NULL with a message listing the models for an unknown name. */
const ed_model_def *ed_model_find(const char *name);

/* def's defaults for data of the given shapes. ED_ERR for a bad shape. */
int ed_gen_model_init(ed_gen_model *m, const ed_model_def *def, ed_shape sample, int64_t obs_size);
/* Set one option by name from text (see ed_options_set). */
int ed_gen_model_set(ed_gen_model *m, const char *name, const char *value);
/* An option's value as text (NULL for an unknown name). */
const char *ed_gen_model_get(const ed_gen_model *m, const char *name, char *buf, size_t size);

/* The scalar training loss: x [B, sample...] and obs [B, obs_size] (NULL when
 * unconditional) are the batch; the random draws (t, noise, dropout) are in the graph. */
ed_node *ed_gen_model_loss(ed_graph *g, const ed_gen_model *m, ed_node *x, ed_node *obs);

/* The network at (x, t): x [B, sample...], t [B] or [] (the model's time: the integer
 * timestep for the diffusion models, t in [0, 1] with 1 = data for flow matching), cond
 * [B, obs_size] or NULL (the null condition). Same shape as x. */
ed_node *ed_gen_model_denoise(ed_graph *g, const ed_gen_model *m, ed_node *x, ed_node *t, ed_node *cond);

#endif
