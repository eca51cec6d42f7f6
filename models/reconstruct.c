/* Reconstructions in batches: one program per batch size (the first, and a smaller
 * last one), the rows copied out after each call. */
#include "models/reconstruct.h"
#include "runtime/error.h"

#include <string.h>

bool ed_gen_can_reconstruct(const ed_gen_model *m) { return m->def->reconstruct != NULL; }

/* x [b, sample...] -> out "y". */
static ed_graph *reconstruct_graph(const ed_gen_model *m, int64_t b)
{
    ed_graph *g = ed_graph_new("reconstruct");
    if (!g) return NULL;
    ed_output(g, "y", m->def->reconstruct(g, m, ed_input(g, "x", ED_F32, ed_gen_model_batch_shape(m, b))));
    if (ed_graph_error(g)) {
        ed_fail("reconstruct %s: %s", m->def->name, ed_graph_error(g));
        ed_graph_free(g);
        return NULL;
    }
    return g;
}

int ed_gen_reconstruct(const ed_gen_model *m, ed_store *st, const ed_tensor *x, int64_t batch, ed_backend backend,
                       ed_tensor **out)
{
    *out = NULL;
    if (!ed_gen_can_reconstruct(m))
        return ed_fail("model %s cannot reconstruct data (vae and vqvae can)", m->def->name);
    int64_t n = x->shape.rank > 0 ? x->shape.dim[0] : 0;
    bool fits = x->dtype == ED_F32 && x->shape.rank == m->sample.rank + 1 && n > 0;
    for (int i = 0; fits && i < m->sample.rank; i++) fits = x->shape.dim[i + 1] == m->sample.dim[i];
    if (!fits)
        return ed_fail("reconstruct %s: the data must be f32 [N >= 1, ...] like the model's samples", m->def->name);
    if (batch <= 0) batch = 500;
    ed_tensor *r = ed_tensor_new(ED_F32, x->shape);
    if (!r) return ED_ERR;
    int64_t row = ed_tensor_numel(x) / n, built = 0;
    ed_graph *g = NULL;
    ed_program *p = NULL;
    int rc = ED_OK;
    for (int64_t start = 0; start < n && rc == ED_OK; start += batch) {
        int64_t b = n - start < batch ? n - start : batch;
        if (b != built) {
            ed_program_free(p);
            ed_graph_free(g);
            p = NULL;
            g = reconstruct_graph(m, b);
            if (g) p = ed_compile(g, st, &(ed_compile_opts){.backend = backend});
            if (!p) {
                rc = ED_ERR;
                break;
            }
            built = b;
        }
        ed_tensor xb = *x;
        xb.shape.dim[0] = b;
        xb.data = (float *)x->data + start * row;
        xb.owns = false;
        ed_feed feed = {"x", &xb};
        if (ed_run(p, &feed, 1) != ED_OK) {
            rc = ED_ERR;
            break;
        }
        memcpy((float *)r->data + start * row, ed_program_output(p, "y")->data, (size_t)(b * row) * sizeof(float));
    }
    ed_program_free(p);
    ed_graph_free(g);
    if (rc != ED_OK) {
        ed_tensor_free(r);
        return ED_ERR;
    }
    *out = r;
    return ED_OK;
}
