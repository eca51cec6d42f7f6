/* nn blocks whose graph depends on the train/eval mode (ed_graph_set_training): batch
 * normalization and dropout. Like the blocks of nn.h they are compositions of op
 * constructors with scoped names, so autodiff and every backend handle them as is; the
 * mode is read once, while the block builds. */
#ifndef ED_NORM_H
#define ED_NORM_H

#include "frontend/nn.h"

/* Batch normalization of x [..., C] per feature (the last axis), over every other axis.
 * Training: x normalized by the batch's mean and biased variance, (x - mean) /
 * sqrt(var + eps); binds updates of the state name.running_mean (zeros) and
 * name.running_var (ones): r' = (1 - momentum) r + momentum s, with the unbiased
 * variance (n / (n - 1), n the count per feature) in the running one, as PyTorch does.
 * Needs n >= 2, and one batch_norm of a name per graph (one update each).
 * Eval: (x - running_mean) / sqrt(running_var + eps), nothing updated.
 * Then * name.g (ones) + name.b (zeros) when affine. PyTorch's defaults: eps 1e-5,
 * momentum 0.1. */
ed_node *ed_batch_norm(ed_node *x, const char *name, double eps, double momentum, bool affine);
/* The same per channel of x [N, C, ...] (axis 1), over N and the spatial axes: PyTorch's
 * BatchNorm2d on [N, C, H, W]. State and params are [C], named as above. */
ed_node *ed_batch_norm2d(ed_node *x, const char *name, double eps, double momentum, bool affine);

/* Training: x * m / (1 - rate) with m ~ Bernoulli(1 - rate) per element, drawn in the
 * graph; eval, or rate 0: x itself. rate in [0, 1). */
ed_node *ed_dropout(ed_node *x, double rate);

#endif
