/* Test helpers: run a node through the interpreter and compare it with values written
 * by hand in the test. */
#ifndef TEST_INTERP_CHECK_H
#define TEST_INTERP_CHECK_H

#include "backend/backend.h"
#include "frontend/frontend.h"
#include "support/error_check.h"

/* A const from a literal list: CST(g, ED_F32, ed_shape2(2, 2), 1, 2, 3, 4). */
#define CST(g, dt, shape, ...)                                  \
    ed_const((g), (dt), (shape), (const double[]){__VA_ARGS__}, \
             (int64_t)(sizeof((const double[]){__VA_ARGS__}) / sizeof(double)))

/* Compile n's graph with the interpreter and a fresh store (seed 0), run it once with
 * no feeds, and fail the test unless n's value has dtype dt, shape s and the values
 * want[0..count) in C order. A NaN wants a NaN, infinities must match exactly, and a
 * finite value may differ by tol * max(1, |want|). */
void check_node_at(ed_node *n, ed_dtype dt, ed_shape s, const double *want, int64_t count, double tol, const char *file,
                   int line);

#define CHECK(n, dt, s, tol, ...)                                \
    check_node_at((n), (dt), (s), (const double[]){__VA_ARGS__}, \
                  (int64_t)(sizeof((const double[]){__VA_ARGS__}) / sizeof(double)), (tol), __FILE__, __LINE__)

#endif
