/* The workload table and what the workloads share: the digits and Fashion-MNIST loaders,
 * batch cutting, and matmul FLOP counting. */
#include "bench/workloads.h"
#include "frontend/frontend.h"
#include "ir/conv.h"
#include "models/image_data.h"
#include "models/toy_data.h"
#include "models/trainer.h"
#include "runtime/comm.h"
#include "runtime/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int64_t bench_local_batch(int64_t batch) { return batch / ed_comm_size(); }

int64_t bench_allreduce_bucket(void) { return ed_comm_size() > 1 ? ED_TRAIN_DEFAULT_BUCKET : 0; }

static const struct {
    const char *id;
    int (*build)(bench_workload *w);
} table[] = {
    {"w1", bench_w1_build},           {"w2", bench_w2_build},
    {"w3", bench_w3_build},           {"w3d", bench_w3d_build},
    {"w5", bench_w5_build},           {"w8", bench_w8_build},
    {"w9_unet", bench_w9_unet_build}, {"w10_dcgan", bench_w10_dcgan_build},
};

bool bench_is_training_workload(const char *id)
{
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (!strcmp(id, table[i].id)) return true;
    return false;
}

int bench_workload_build(const char *id, bench_workload *w)
{
    memset(w, 0, sizeof *w);
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (strcmp(id, table[i].id)) continue;
        if (table[i].build(w) == 0 && w->g && !ed_graph_error(w->g)) return 0;
        if (w->g && ed_graph_error(w->g)) ed_fail("workload %s: %s", id, ed_graph_error(w->g));
        bench_workload_free(w);
        return -1;
    }
    return ed_fail("unknown training workload %s", id);
}

void bench_workload_free(bench_workload *w)
{
    for (int i = 0; i < w->nbatches; i++) ed_tensor_free(w->batches[i]);
    free(w->batches);
    ed_graph_free(w->g);
    memset(w, 0, sizeof *w);
}

ed_tensor *bench_digits_load(int64_t rows)
{
    ed_images all;
    if (ed_digits_read(ed_digits_path(), &all) != ED_OK) return NULL;
    ed_tensor *t = NULL;
    if (rows > all.x->shape.dim[0])
        ed_fail("digits: %s has %lld rows, %lld wanted", ed_digits_path(), (long long)all.x->shape.dim[0],
                (long long)rows);
    else if (!(t = ed_tensor_new(ED_F32, ed_shape2(rows, 64))))
        ed_fail("digits: out of memory for %lld rows", (long long)rows);
    else memcpy(t->data, all.x->data, sizeof(float) * 64 * (size_t)rows);
    ed_images_free(&all);
    return t;
}

ed_tensor **bench_split_batches(const ed_tensor *x, int64_t b, int n, ed_shape shape)
{
    int64_t dcols = x->shape.rank == 2 ? x->shape.dim[1] : 0;
    if (dcols < 1 || (int64_t)n * b > x->shape.dim[0] || ed_shape_numel(shape) != b * dcols) {
        ed_fail("split_batches: cannot cut %d batches of %lld rows as wanted", n, (long long)b);
        return NULL;
    }
    ed_tensor **out = calloc((size_t)n, sizeof *out);
    if (!out) {
        ed_fail("split_batches: out of memory");
        return NULL;
    }
    for (int k = 0; k < n; k++) {
        out[k] = ed_tensor_new(ED_F32, shape);
        if (!out[k]) {
            while (k--) ed_tensor_free(out[k]);
            free(out);
            ed_fail("split_batches: out of memory");
            return NULL;
        }
        memcpy(out[k]->data, (const float *)x->data + (size_t)(k * b * dcols), sizeof(float) * (size_t)(b * dcols));
    }
    return out;
}

double bench_matmul_flops(const ed_graph *g)
{
    double f = 0;
    for (int i = 0; i < g->nnodes; i++) {
        const ed_node *n = g->nodes[i];
        if (n->op == ED_OP_LOOP) f += (double)n->attr.trips * bench_matmul_flops(n->attr.body);
        const ed_node *mm = n->op == ED_OP_FUSED ? ed_fused_producer(n->attr.body) : n; /* a fused producer too */
        if (!mm) continue;
        if (mm->op == ED_OP_CONV2D || mm->op == ED_OP_CONV_TRANSPOSE2D || mm->op == ED_OP_CONV2D_WEIGHT_GRAD) {
            ed_conv_geom c = ed_conv_geom_of(mm); /* the forward conv's geometry, whichever side */
            f += 2.0 * (double)(c.n * c.o * c.oh * c.ow) * (double)(c.cg * c.kh * c.kw);
            continue;
        }
        if (mm->op != ED_OP_MATMUL) continue;
        const ed_shape a = mm->in[0]->shape;
        double k = (double)a.dim[a.rank - (mm->attr.ta ? 2 : 1)];
        f += 2.0 * k * (double)ed_shape_numel(mm->shape);
    }
    return f;
}

ed_node *bench_ddpm_noised(ed_node *x0, int steps, ed_node **t_out, ed_node **eps_out)
{
    ed_graph *g = x0->graph;
    double *s1 = malloc(sizeof(double) * (size_t)steps), *s2 = malloc(sizeof(double) * (size_t)steps), prod = 1;
    if (!s1 || !s2) {
        free(s1);
        free(s2);
        return ed_graph_fail(g, "out of memory");
    }
    for (int i = 0; i < steps; i++) {
        double beta = 1e-4 + (0.02 - 1e-4) * i / (steps - 1);
        prod *= 1 - beta;
        s1[i] = sqrt(prod);
        s2[i] = sqrt(1 - prod);
    }
    int64_t batch = x0->shape.dim[0];
    ed_shape col = x0->shape; /* [B, 1, ..., 1] */
    for (int i = 1; i < col.rank; i++) col.dim[i] = 1;
    ed_node *t = ed_randint(g, ed_shape1(batch), 0, steps);
    ed_node *eps = ed_randn(g, ED_F32, x0->shape);
    ed_node *a = ed_reshape(ed_gather(ed_const(g, ED_F32, ed_shape1(steps), s1, steps), t, 0), col);
    ed_node *b = ed_reshape(ed_gather(ed_const(g, ED_F32, ed_shape1(steps), s2, steps), t, 0), col);
    free(s1);
    free(s2);
    *t_out = t;
    *eps_out = eps;
    return ed_add(ed_mul(a, x0), ed_mul(b, eps));
}

int bench_fashion_batches(bench_workload *w, int64_t b, int n, ed_shape shape)
{
    ed_images all;
    if (ed_fashion_mnist_load(ED_SPLIT_TRAIN, &all) != ED_OK) return -1;
    int64_t d = ed_shape_numel(all.x->shape) / all.x->shape.dim[0];
    ed_tensor *flat = n * b <= all.x->shape.dim[0] ? ed_tensor_new(ED_F32, ed_shape2(n * b, d)) : NULL;
    if (flat) memcpy(flat->data, all.x->data, sizeof(float) * (size_t)(n * b * d));
    ed_images_free(&all);
    if (!flat) return ed_fail("fashion_mnist: cannot take %d batches of %lld images", n, (long long)b);
    w->batches = bench_split_batches(flat, b, n, shape);
    ed_tensor_free(flat);
    if (!w->batches) return -1;
    w->nbatches = n;
    return 0;
}

int bench_toy_batches(bench_workload *w, int set, int64_t b, int n)
{
    ed_tensor *all = ed_toy_sample((ed_toy)set, b * n, 0, ED_NOISE_DEFAULT);
    if (!all) return -1;
    w->batches = bench_split_batches(all, b, n, ed_shape2(b, 2));
    ed_tensor_free(all);
    if (!w->batches) return -1;
    w->nbatches = n;
    return 0;
}
