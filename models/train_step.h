/* The training-step builder: one graph holding forward, backward, optimizer update
 * and named outputs, so one program call is one training step. */
#ifndef ED_TRAIN_STEP_H
#define ED_TRAIN_STEP_H

#include "frontend/optim.h"

typedef struct {
    ed_optim_opts optim;
    double ema_decay; /* > 0: keep an EMA of every param in "<prefix>ema.<param>" */
    bool ema_warmup;  /* the EMA's decay ramps up to ema_decay (frontend/optim.h: ed_ema) */
    /* The params this step trains: those whose names start with one of these prefixes
     * (NULL-terminated), e.g. {"gen.", NULL}. NULL: every param of the graph. The others
     * are frozen for this step: read as values, not differentiated, no optimizer state. */
    const char *const *groups;
    /* > 0: a data-parallel step (runtime/comm.h): the gradients are averaged over the
     * ranks before clipping and the optimizer, in allreduce calls of at most this many
     * values each (several small gradients share one call), and the "loss" output is the
     * mean over the ranks. 0: this process's gradients alone. */
    int64_t allreduce_bucket;
} ed_train_opts;

/* Differentiate loss (a float scalar) with respect to the params of opts->groups, clip
 * and apply the optimizer, and bind the outputs "loss", "grad_norm" (before clipping)
 * and "lr" (this step's learning rate), unless the graph already binds those names.
 * Returns ED_OK, or ED_ERR with the reason on the graph. */
int ed_train_step(ed_graph *g, ed_node *loss, const ed_train_opts *opts);

/* True when a param of this name is in groups (always for groups == NULL). */
bool ed_train_in_groups(const char *name, const char *const *groups);

#endif
