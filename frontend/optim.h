/* Optimizers, gradient clipping, parameter EMA and learning-rate schedules, as graph
 * builders: given params and their gradient nodes they append the update arithmetic
 * and bind `update` outputs, so one program call is one optimizer step and the store
 * holds the new values afterwards.
 *
 * Hyper-parameters are constants in the graph; the schedule is computed in the graph
 * from a step counter held in state, so a schedule never needs a new graph.
 *
 * State names: "<prefix>step" (i32 counter, starts at 0), "<prefix>m.<param>",
 * "<prefix>v.<param>" (Adam moments), "<prefix>mom.<param>" (SGD momentum buffer),
 * "<prefix>ema.<param>" (EMA). The default prefix is "opt.". */
#ifndef ED_OPTIM_H
#define ED_OPTIM_H

#include "frontend/frontend.h"

typedef enum { ED_OPT_SGD, ED_OPT_ADAM, ED_OPT_ADAMW, ED_OPT_COUNT } ed_optimizer;
typedef enum { ED_SCHED_CONSTANT, ED_SCHED_WARMUP, ED_SCHED_COSINE, ED_SCHED_COUNT } ed_schedule_kind;

typedef struct {
    ed_schedule_kind kind;
    int64_t warmup_steps; /* linear warm-up from lr/warmup to lr (WARMUP and COSINE) */
    int64_t total_steps;  /* COSINE: decay ends here */
    double min_ratio;     /* COSINE: final lr = lr * min_ratio */
} ed_schedule;

/* Zero fields take the defaults in brackets. */
typedef struct {
    ed_optimizer kind;    /* [SGD] */
    double lr;            /* [1e-3] */
    double momentum;      /* SGD [0: plain SGD] */
    bool nesterov;        /* SGD with momentum */
    double beta1, beta2;  /* Adam(W) [0.9, 0.999] */
    bool exact_betas;     /* take beta1, beta2 as given, zeros included (WGAN-GP's 0, 0.9) */
    double eps;           /* Adam(W) [1e-8] */
    double weight_decay;  /* SGD, Adam: L2 added to the gradient; AdamW: decoupled [0] */
    double clip_norm;     /* clip gradients to this global L2 norm [0: off] */
    ed_schedule schedule; /* [constant] */
    const char *prefix;   /* state name prefix ["opt."] */
} ed_optim_opts;

const char *ed_optimizer_name(ed_optimizer k); /* "sgd", "adam", "adamw" */
bool ed_optimizer_parse(const char *s, ed_optimizer *out);

/* The learning-rate factor at step (an i32 scalar node): constant 1; warm-up
 * min(1, (step + 1) / warmup); cosine: warm-up, then
 * min_ratio + (1 - min_ratio) * 0.5 * (1 + cos(pi * p)), p = (step - warmup) /
 * (total - warmup) clipped to [0, 1]. In dtype dt. */
ed_node *ed_schedule_factor(ed_node *step, const ed_schedule *s, ed_dtype dt);

/* sqrt of the sum of squares of every element of grads[0..n) (dtype of grads[0]). */
ed_node *ed_global_norm(ed_node *const *grads, int n);

/* Scale grads[0..n) so their global L2 norm is at most max_norm (PyTorch's
 * clip_grad_norm_: factor min(1, max_norm / (norm + 1e-6))). Writes the clipped
 * gradients to out[] and returns the norm before clipping. */
ed_node *ed_clip_by_global_norm(ed_node *const *grads, int n, double max_norm, ed_node **out);

/* Append one optimizer step for params[i] with gradients grads[i]: binds updates for
 * every param, its optimizer state and the step counter. Returns the learning rate
 * used at this step (a scalar node), or NULL on error (recorded on the graph). */
ed_node *ed_optimizer_step(ed_graph *g, ed_node *const *params, ed_node *const *grads, int n,
                           const ed_optim_opts *opts);

/* Exponential moving average of values[i] (typically the updated params) into state
 * "<prefix>ema.<name>": ema = d * ema + (1 - d) * value, and ema = value on the first
 * call (step == 0), so it never averages in its zero start. step is the i32 counter of
 * the optimizer (the value before this call's increment). d is decay, or with warmup
 * min(decay, (1 + step) / (10 + step)), so a short run is not an average dominated by
 * its first weights (0.18 at step 1, 0.9 at step 80). */
int ed_ema(ed_graph *g, const char *const *names, ed_node *const *values, int n, double decay, bool warmup,
           ed_node *step, const char *prefix);

#endif
