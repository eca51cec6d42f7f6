#include "models/train_step.h"
#include "passes/autodiff.h"
#include "runtime/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool ed_train_in_groups(const char *name, const char *const *groups)
{
    if (!groups) return true;
    for (int i = 0; groups[i]; i++)
        if (strncmp(name, groups[i], strlen(groups[i])) == 0) return true;
    return false;
}

static bool trained(const ed_node *n, const char *const *groups)
{
    return n->op == ED_OP_PARAM && ed_train_in_groups(n->attr.name, groups);
}

static void output_once(ed_graph *g, const char *name, ed_node *v)
{
    if (!ed_graph_output(g, name)) ed_output(g, name, v);
}

/* Gradients first..last-1 as one flat vector, averaged over the ranks, cut back. */
static void average_bucket(ed_node **grads, int first, int last, ed_node **flat)
{
    for (int i = first; i < last; i++)
        flat[i - first] = ed_reshape(grads[i], ed_shape1(ed_shape_numel(grads[i]->shape)));
    ed_node *cat = last - first == 1 ? flat[0] : ed_concat(flat, last - first, 0);
    ed_node *avg = ed_allreduce(cat, true);
    int64_t at = 0;
    for (int i = first; i < last; i++) {
        int64_t size = ed_shape_numel(grads[i]->shape);
        ed_node *part = last - first == 1 ? avg : ed_slice_axis(avg, 0, at, at + size);
        grads[i] = ed_reshape(part, grads[i]->shape);
        at += size;
    }
}

/* Buckets in param order, each of one dtype and at most `bucket` values (a gradient
 * larger than that alone), so small tensors do not pay a call each. */
static void average_over_ranks(ed_node **grads, int n, int64_t bucket, ed_node **scratch)
{
    for (int first = 0, last; first < n; first = last) {
        int64_t size = ed_shape_numel(grads[first]->shape);
        for (last = first + 1; last < n && grads[last]->dtype == grads[first]->dtype; last++) {
            int64_t next = ed_shape_numel(grads[last]->shape);
            if (size + next > bucket) break;
            size += next;
        }
        average_bucket(grads, first, last, scratch);
    }
}

int ed_train_step(ed_graph *g, ed_node *loss, const ed_train_opts *opts)
{
    if (!g || !loss || ed_graph_error(g)) return ED_ERR;
    ed_train_opts o = opts ? *opts : (ed_train_opts){0};
    int n = 0;
    for (int i = 0; i < g->nnodes; i++) n += trained(g->nodes[i], o.groups);
    if (n == 0) {
        ed_graph_fail(g, "train_step: graph @%s has no params to train%s", g->name,
                      o.groups ? " in the given groups" : "");
        return ED_ERR;
    }
    ed_node **params = malloc((size_t)n * sizeof *params);
    ed_node **grads = malloc((size_t)n * sizeof *grads);
    ed_node **clipped = malloc((size_t)n * sizeof *clipped);
    const char **names = malloc((size_t)n * sizeof *names);
    if (!params || !grads || !clipped || !names) {
        free(params), free(grads), free(clipped), free(names);
        ed_graph_fail(g, "train_step: out of memory");
        return ED_ERR;
    }
    int k = 0;
    for (int i = 0; i < g->nnodes; i++)
        if (trained(g->nodes[i], o.groups)) params[k++] = g->nodes[i];

    if (ed_grad(loss, params, n, grads) == ED_OK) {
        if (o.allreduce_bucket > 0) {
            average_over_ranks(grads, n, o.allreduce_bucket, clipped);
            loss = ed_allreduce(loss, true);
        }
        ed_node *norm;
        ed_optim_opts optim = o.optim;
        if (optim.clip_norm > 0) {
            norm = ed_clip_by_global_norm(grads, n, optim.clip_norm, clipped);
            optim.clip_norm = 0; /* clipped here, once */
        } else {
            norm = ed_global_norm(grads, n);
            for (int i = 0; i < n; i++) clipped[i] = grads[i];
        }
        /* The EMA reads the step counter before the optimizer's increment. */
        ed_node *lr = ed_optimizer_step(g, params, clipped, n, &optim);
        if (lr && o.ema_decay > 0) {
            /* Average the new param values: the update bindings just made. */
            for (int i = 0; i < n; i++) {
                names[i] = params[i]->attr.name;
                grads[i] = ed_graph_update(g, names[i]);
            }
            const char *prefix = optim.prefix ? optim.prefix : "opt.";
            char step_name[256];
            snprintf(step_name, sizeof step_name, "%sstep", prefix);
            ed_ema(g, names, grads, n, o.ema_decay, o.ema_warmup, ed_graph_leaf(g, ED_OP_STATE, step_name), prefix);
        }
        output_once(g, "loss", loss);
        output_once(g, "grad_norm", norm);
        output_once(g, "lr", lr);
    }
    free(params), free(grads), free(clipped), free(names);
    return ed_graph_error(g) ? ED_ERR : ED_OK;
}
