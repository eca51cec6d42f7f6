/* Test helpers for running graphs: a seeded random source for random graphs and their
 * inputs, the backend shared tests run on, compile-and-run that fails the test on an
 * error, and comparisons of two programs' outputs and store values, bit for bit or
 * within a tolerance. */
#ifndef TEST_RUN_CHECK_H
#define TEST_RUN_CHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "backend/backend.h"
#include "frontend/frontend.h"

/* ---- random draws ---------------------------------------------------------------- */

/* One LCG (Knuth's MMIX constants) per test program, starting from state 1: random
 * graphs and their inputs come out the same on every machine and every run. */
void rng_seed(uint64_t state);
uint32_t rng_u32(void);
/* A draw in [0, n). */
int pick(int n);

/* ---- inputs ------------------------------------------------------------------------- */

enum { RANDOM_FEEDS_MAX = 64 };

typedef struct {
    ed_feed f[RANDOM_FEEDS_MAX];
    ed_tensor *t[RANDOM_FEEDS_MAX];
    int n;
} random_feeds;

/* A tensor for every input of g, in node order, drawn from the random source: floats
 * uniform in [lo, hi), ints in [-3, 3]. Free with random_feeds_free. */
void random_feeds_make(const ed_graph *g, double lo, double hi, random_feeds *fd);
void random_feeds_free(random_feeds *fd);

/* ---- the backend under test ------------------------------------------------------- */

/* Tests shared by both backends read this; a group's setup sets it. */
extern ed_backend backend_under_test;
int on_jit(void **state);
int on_interp(void **state);

/* ---- compile and run --------------------------------------------------------------- */

/* ed_compile on backend be with program seed `seed`; fails the test on an error. */
ed_program *compile_with(const ed_graph *g, ed_store *st, ed_backend be, uint64_t seed);
/* ed_run; fails the test on an error. */
void run_ok(ed_program *p, const ed_feed *feeds, int n);
/* The output named name; fails the test if there is none. */
const ed_tensor *out(const ed_program *p, const char *name);

static inline float f32_at(const ed_tensor *t, int64_t i) { return ((const float *)t->data)[i]; }
static inline int32_t i32_at(const ed_tensor *t, int64_t i) { return ((const int32_t *)t->data)[i]; }

/* ---- comparing values ---------------------------------------------------------------- */

/* NaN matches only NaN, an infinity only itself, and otherwise |want - have| <=
 * tol * (1 + |want|): at tol 0 the values are equal (-0 equals +0). */
bool values_close(double want, double have, double tol);

/* Same dtype and shape, then every element: at tol 0 the same bits (NaNs of any payload
 * are equal), else values_close. Fails with what, name and the element. */
void check_tensors_agree(const ed_tensor *want, const ed_tensor *have, double tol, const char *what, const char *name);
/* As check_tensors_agree, but values_close at every tol, 0 included. */
void check_tensors_close(const ed_tensor *want, const ed_tensor *have, double tol, const char *what, const char *name);

/* One of the two above: how a caller wants two programs' values compared. */
typedef void (*tensor_check)(const ed_tensor *want, const ed_tensor *have, double tol, const char *what,
                             const char *name);

/* ---- several programs of one graph --------------------------------------------------- */

enum { PROGRAMS_MAX = 4 };

/* Programs of one graph, each with its own store (seed 3), run on the same feeds. */
typedef struct {
    ed_program *p[PROGRAMS_MAX];
    ed_store *s[PROGRAMS_MAX];
    int n;
} program_set;

/* Compile g once per opts[k], each with a fresh store; fails the test (naming what and
 * k) if one does not compile. */
void programs_compile(program_set *ps, const ed_graph *g, const ed_compile_opts *opts, int n, const char *what);
/* One call of every program; fails the test on an error. */
void programs_run(program_set *ps, const random_feeds *fd, const char *what);
/* Program b's outputs against program a's (the same count, names in the same order)
 * with check, after call number `call`. */
void programs_check_outputs(const program_set *ps, int a, int b, tensor_check check, double tol, const char *what,
                            int call);
/* Every value in program a's store against the same name in b's, which must hold the
 * same count. */
void programs_check_stores(const program_set *ps, int a, int b, tensor_check check, double tol, const char *what);
void programs_free(program_set *ps);

#endif
