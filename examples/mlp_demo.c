/* The README example: build a small MLP graph in C, dump it, run it on the JIT (the
 * default backend). Writes OUTDIR/mlp.edir and OUTDIR/x.npy for the CLI to reuse. */
#include "backend/backend.h"
#include "frontend/frontend.h"
#include "frontend/nn.h"
#include "ir/text.h"
#include "io/npy.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    const char *outdir = argc > 1 ? argv[1] : ".";

    /* y = mlp(x): 2 -> 16 -> 16 -> 1 with tanh, and its mean as a second output. */
    ed_graph *g = ed_graph_new("mlp");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(4, 2));
    int64_t sizes[3] = {16, 16, 1};
    ed_node *y = ed_mlp(x, "mlp", sizes, 3, ED_ACT_TANH, false);
    ed_output(g, "y", y);
    ed_output(g, "mean", ed_mean(y, ED_ALL_AXES, false));
    if (ed_graph_error(g)) {
        fprintf(stderr, "mlp_demo: %s\n", ed_graph_error(g));
        return 1;
    }

    char *text = ed_graph_print(g);
    printf("%s\n", text);
    char path[4096];
    snprintf(path, sizeof path, "%s/mlp.edir", outdir);
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) == EOF || fclose(f) != 0) {
        fprintf(stderr, "mlp_demo: cannot write %s\n", path);
        return 1;
    }
    free(text);

    /* Parameters come from their initializers, seeded by the store. The JIT at -O2 is
     * the default; .backend = ED_BACKEND_INTERP picks the reference interpreter. */
    ed_store *st = ed_store_new(42);
    ed_program *p = ed_compile(g, st, &(ed_compile_opts){.seed = 42});
    if (!p) {
        fprintf(stderr, "mlp_demo: %s\n", ed_last_error());
        return 1;
    }
    float xs[8] = {0, 0, 0, 1, 1, 0, 1, 1};
    ed_tensor *xt = ed_tensor_wrap(ED_F32, ed_shape2(4, 2), xs);
    snprintf(path, sizeof path, "%s/x.npy", outdir);
    if (ed_npy_write(path, xt) != ED_OK || ed_run(p, &(ed_feed){"x", xt}, 1) != ED_OK) {
        fprintf(stderr, "mlp_demo: %s\n", ed_last_error());
        return 1;
    }
    const ed_tensor *yt = ed_program_output(p, "y");
    const float *yv = yt->data;
    for (int i = 0; i < 4; i++) printf("y[%d] = mlp(%g, %g) = %.6f\n", i, xs[2 * i], xs[2 * i + 1], yv[i]);
    printf("mean = %.6f\n", *(const float *)ed_program_output(p, "mean")->data);

    ed_tensor_free(xt);
    ed_program_free(p);
    ed_store_free(st);
    ed_graph_free(g);
    return 0;
}
