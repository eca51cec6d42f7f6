/* Test helpers of interp_check.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "support/interp_check.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static bool close_enough(double got, double want, double tol)
{
    if (isnan(want)) return isnan(got);
    if (isinf(want) || isinf(got)) return got == want;
    return fabs(got - want) <= tol * fmax(1.0, fabs(want));
}

/* Stops the test: cmocka's _fail longjmps out. */
static void stop(const char *file, int line) { _fail(file, line); }

void check_node_at(ed_node *n, ed_dtype dt, ed_shape s, const double *want, int64_t count, double tol, const char *file,
                   int line)
{
    if (!n) {
        print_error("node is NULL\n");
        stop(file, line);
        return;
    }
    ed_graph *g = n->graph;
    if (ed_graph_error(g)) {
        print_error("graph error: %s\n", ed_graph_error(g));
        stop(file, line);
        return;
    }
    char name[32], have[96], wanted[96];
    snprintf(name, sizeof name, "check%d", g->noutputs);
    ed_output(g, name, n);
    ed_node_type_str(n, have, sizeof have);
    if (n->dtype != dt || !ed_shape_eq(n->shape, s) || ed_shape_numel(s) != count) {
        print_error("node is %s, test wants %s with %lld values\n", have, ed_type_str(dt, s, wanted, sizeof wanted),
                    (long long)count);
        stop(file, line);
        return;
    }
    ed_store *st = ed_store_new(0);
    /* no passes: these tests check the interpreter's kernels on the graph as built */
    ed_program *p = ed_compile(g, st, &(ed_compile_opts){.backend = ED_BACKEND_INTERP, .passes = ""});
    int bad = -1;
    double got = 0;
    const char *err = NULL;
    if (!p || ed_run(p, NULL, 0) != ED_OK) {
        err = ed_last_error();
    } else {
        const ed_tensor *t = ed_program_output(p, name);
        for (int64_t i = 0; i < count && bad < 0; i++) {
            got = ed_tensor_get(t, i);
            if (!close_enough(got, want[i], tol)) bad = (int)i;
        }
    }
    ed_program_free(p);
    ed_store_free(st);
    if (err) {
        print_error("compile/run failed: %s\n", err);
        stop(file, line);
    } else if (bad >= 0) {
        print_error("element %d of %s: got %.17g, want %.17g (tol %g)\n", bad, have, got, want[bad], tol);
        stop(file, line);
    }
}
