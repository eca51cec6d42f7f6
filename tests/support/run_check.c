/* Test helpers for running graphs (see run_check.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "support/run_check.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- random draws ---------------------------------------------------------------- */

static uint64_t rng_state = 1;

void rng_seed(uint64_t state) { rng_state = state; }

uint32_t rng_u32(void)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(rng_state >> 33);
}

int pick(int n) { return (int)(rng_u32() % (uint32_t)n); }

/* ---- inputs ------------------------------------------------------------------------- */

void random_feeds_make(const ed_graph *g, double lo, double hi, random_feeds *fd)
{
    fd->n = 0;
    for (int i = 0; i < g->nnodes; i++) {
        const ed_node *x = g->nodes[i];
        if (x->op != ED_OP_INPUT) continue;
        assert_true(fd->n < RANDOM_FEEDS_MAX);
        ed_tensor *t = ed_tensor_new(x->dtype, x->shape);
        for (int64_t k = 0; k < ed_tensor_numel(t); k++)
            ed_tensor_set(t, k, x->dtype == ED_I32 ? pick(7) - 3 : lo + (hi - lo) * (rng_u32() / 4294967296.0));
        fd->t[fd->n] = t;
        fd->f[fd->n] = (ed_feed){x->attr.name, t};
        fd->n++;
    }
}

void random_feeds_free(random_feeds *fd)
{
    for (int i = 0; i < fd->n; i++) ed_tensor_free(fd->t[i]);
    fd->n = 0;
}

/* ---- the backend under test ------------------------------------------------------- */

ed_backend backend_under_test;

int on_jit(void **state)
{
    (void)state;
    backend_under_test = ED_BACKEND_JIT;
    return 0;
}

int on_interp(void **state)
{
    (void)state;
    backend_under_test = ED_BACKEND_INTERP;
    return 0;
}

/* ---- compile and run --------------------------------------------------------------- */

ed_program *compile_with(const ed_graph *g, ed_store *st, ed_backend be, uint64_t seed)
{
    ed_program *p = ed_compile(g, st, &(ed_compile_opts){.backend = be, .seed = seed});
    if (!p) fail_msg("compile failed: %s", ed_last_error());
    return p;
}

void run_ok(ed_program *p, const ed_feed *feeds, int n)
{
    if (ed_run(p, feeds, n) != ED_OK) fail_msg("run failed: %s", ed_last_error());
}

const ed_tensor *out(const ed_program *p, const char *name)
{
    const ed_tensor *t = ed_program_output(p, name);
    assert_non_null(t);
    return t;
}

/* ---- comparing values ---------------------------------------------------------------- */

bool values_close(double want, double have, double tol)
{
    if (isnan(want) || isnan(have)) return isnan(want) && isnan(have);
    if (isinf(want) || isinf(have)) return want == have;
    return fabs(want - have) <= tol * (1 + fabs(want));
}

static bool same_bits(double want, double have)
{
    return memcmp(&want, &have, sizeof want) == 0 || (isnan(want) && isnan(have));
}

static void check_tensors(const ed_tensor *want, const ed_tensor *have, double tol, bool bits_at_zero, const char *what,
                          const char *name)
{
    assert_int_equal(want->dtype, have->dtype);
    assert_true(ed_shape_eq(want->shape, have->shape));
    for (int64_t i = 0; i < ed_tensor_numel(want); i++) {
        double w = ed_tensor_get(want, i), h = ed_tensor_get(have, i);
        bool ok = tol == 0 && bits_at_zero ? same_bits(w, h) : values_close(w, h, tol);
        if (!ok) fail_msg("%s: %s[%lld]: %.9g expected, %.9g", what, name, (long long)i, w, h);
    }
}

void check_tensors_agree(const ed_tensor *want, const ed_tensor *have, double tol, const char *what, const char *name)
{
    check_tensors(want, have, tol, true, what, name);
}

void check_tensors_close(const ed_tensor *want, const ed_tensor *have, double tol, const char *what, const char *name)
{
    check_tensors(want, have, tol, false, what, name);
}

/* ---- several programs of one graph --------------------------------------------------- */

void programs_compile(program_set *ps, const ed_graph *g, const ed_compile_opts *opts, int n, const char *what)
{
    assert_true(n >= 1 && n <= PROGRAMS_MAX);
    ps->n = n;
    for (int k = 0; k < n; k++) {
        ps->s[k] = ed_store_new(3);
        ps->p[k] = ed_compile(g, ps->s[k], &opts[k]);
        if (!ps->p[k]) fail_msg("%s: compile %d: %s", what, k, ed_last_error());
    }
}

void programs_run(program_set *ps, const random_feeds *fd, const char *what)
{
    for (int k = 0; k < ps->n; k++)
        if (ed_run(ps->p[k], fd->f, fd->n) != ED_OK) fail_msg("%s: run %d: %s", what, k, ed_last_error());
}

void programs_check_outputs(const program_set *ps, int a, int b, tensor_check check, double tol, const char *what,
                            int call)
{
    const ed_program *pa = ps->p[a], *pb = ps->p[b];
    assert_int_equal(ed_program_num_outputs(pa), ed_program_num_outputs(pb));
    char label[256];
    snprintf(label, sizeof label, "%s, program %d against %d, call %d", what, b, a, call);
    for (int o = 0; o < ed_program_num_outputs(pa); o++) {
        assert_string_equal(ed_program_output_name(pa, o), ed_program_output_name(pb, o));
        check(ed_program_output_at(pa, o), ed_program_output_at(pb, o), tol, label, ed_program_output_name(pa, o));
    }
}

void programs_check_stores(const program_set *ps, int a, int b, tensor_check check, double tol, const char *what)
{
    assert_int_equal(ed_store_count(ps->s[a]), ed_store_count(ps->s[b]));
    char label[256];
    snprintf(label, sizeof label, "%s, store of program %d against %d", what, b, a);
    for (int i = 0; i < ed_store_count(ps->s[a]); i++) {
        const char *name = ed_store_name(ps->s[a], i);
        const ed_tensor *have = ed_store_get(ps->s[b], name);
        if (!have) fail_msg("%s: store entry %s missing", label, name);
        check(ed_store_get(ps->s[a], name), have, tol, label, name);
    }
}

void programs_free(program_set *ps)
{
    for (int k = 0; k < ps->n; k++) {
        ed_program_free(ps->p[k]);
        ed_store_free(ps->s[k]);
    }
    ps->n = 0;
}
