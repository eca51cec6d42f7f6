/* The Frechet distance between two sets of feature vectors, each fitted by a Gaussian
 * (its mean and covariance, all arithmetic in double):
 *   FD = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1^1/2 S2 S1^1/2)^1/2)
 * the 2-Wasserstein distance squared between the two Gaussians (FID's formula; here the
 * features are those of models/classifier.h). The covariance divides by N - 1. Square
 * roots of symmetric positive semi-definite matrices come from a cyclic Jacobi
 * eigendecomposition; eigenvalues below zero (rounding noise of a singular covariance)
 * count as 0. Failures return ED_ERR with one line in ed_last_error(). */
#ifndef ED_FRECHET_H
#define ED_FRECHET_H

#include "runtime/tensor.h"

#include <stdint.h>

typedef struct {
    int64_t n, d; /* the set's rows and the features' width */
    double *mean; /* [d] */
    double *cov;  /* [d, d], row-major */
} ed_feature_stats;

/* Mean and covariance of x f32 or f64 [N, D], N >= 2, finite values. */
int ed_feature_stats_of(const ed_tensor *x, ed_feature_stats *out);
void ed_feature_stats_free(ed_feature_stats *s);

/* FD between two fits of the same width. Rounding can make it slightly negative when the
 * sets are equal; it is returned as computed. */
int ed_frechet_distance(const ed_feature_stats *a, const ed_feature_stats *b, double *out);
/* The same from the two sets [N, D] and [M, D]. */
int ed_frechet_distance_of(const ed_tensor *x, const ed_tensor *y, double *out);

/* The eigendecomposition a = V diag(values) V^T of the symmetric n x n matrix a
 * (row-major; only its values are read, it is left unchanged): values[0..n) unsorted,
 * vectors (may be NULL) row-major with eigenvector k in column k. Cyclic Jacobi
 * rotations until the off-diagonal part is below 1e-15 of the matrix's norm (at most 100
 * sweeps; an error if it has not converged by then). O(n^3) per sweep: meant for
 * n <= a few hundred. */
int ed_symmetric_eigen(const double *a, int64_t n, double *values, double *vectors);

#endif
