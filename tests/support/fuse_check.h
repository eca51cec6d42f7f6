/* Helpers of the fusion suites (test_fuse_matmul, test_fuse_conv): deterministic inputs,
 * one output of a graph compiled with a given pipeline, and element-wise comparison. */
#ifndef ED_TEST_FUSE_CHECK_H
#define ED_TEST_FUSE_CHECK_H

#include "backend/backend.h"

/* An f32 tensor of shape s with small repeating values (multiples of 1/7 in -11/7..11/7). */
ed_tensor *fuse_filled(ed_shape s, int salt);

/* A copy of output "y" of g on backend be with the passes given (NULL: the default
 * pipeline, which fuses), fed feeds; fails the test if compile or run fails. */
ed_tensor *fuse_run(const ed_graph *g, ed_backend be, const char *passes, const ed_feed *feeds, int nfeeds);

/* want and have agree: bit for bit (NaN matching NaN) when tol is 0, else within tol
 * relative to 1 + |want|. */
void fuse_compare(const ed_tensor *want, const ed_tensor *have, double tol, const char *what);

#endif
