/* The training-step builder: one graph holding forward, backward, optimizer update
 * and named outputs, so one program call is one training step. */
#ifndef ED_TRAIN_STEP_H
#define ED_TRAIN_STEP_H

#include "frontend/optim.h"

typedef struct {
    ed_optim_opts optim;
    double ema_decay; /* > 0: keep an EMA of every param in "<prefix>ema.<param>" */
} ed_train_opts;

/* Differentiate loss (a float scalar) with respect to every param of the graph, clip
 * and apply the optimizer, and bind the outputs "loss", "grad_norm" (before clipping)
 * and "lr" (this step's learning rate), unless the graph already binds those names.
 * Returns ED_OK, or ED_ERR with the reason on the graph. */
int ed_train_step(ed_graph *g, ed_node *loss, const ed_train_opts *opts);

#endif
