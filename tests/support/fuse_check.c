/* tests/support/fuse_check.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "support/fuse_check.h"

#include <math.h>

ed_tensor *fuse_filled(ed_shape s, int salt)
{
    ed_tensor *t = ed_tensor_new(ED_F32, s);
    for (int64_t i = 0; i < ed_tensor_numel(t); i++)
        ((float *)t->data)[i] = (float)(((i + salt) * 37 % 23) - 11) / 7.0f;
    return t;
}

ed_tensor *fuse_run(const ed_graph *g, ed_backend be, const char *passes, const ed_feed *feeds, int nfeeds)
{
    ed_store *s = ed_store_new(3);
    ed_program *p = ed_compile(g, s, &(ed_compile_opts){.backend = be, .passes = passes});
    if (!p) fail_msg("compile: %s", ed_last_error());
    assert_int_equal(ed_run(p, feeds, nfeeds), ED_OK);
    ed_tensor *y = ed_tensor_copy(ed_program_output(p, "y"));
    ed_program_free(p);
    ed_store_free(s);
    return y;
}

void fuse_compare(const ed_tensor *want, const ed_tensor *have, double tol, const char *what)
{
    assert_true(ed_shape_eq(want->shape, have->shape));
    for (int64_t i = 0; i < ed_tensor_numel(want); i++) {
        double w = ed_tensor_get(want, i), h = ed_tensor_get(have, i);
        bool ok = tol == 0 ? w == h || (isnan(w) && isnan(h)) : fabs(w - h) <= tol * (1 + fabs(w));
        if (!ok) fail_msg("%s: element %lld: want %.9g, got %.9g", what, (long long)i, w, h);
    }
}
