/* Sample-quality metrics between two point sets x [N, D] and y [M, D] (f32 or f64, all
 * values finite; the arithmetic is in double). Both are deterministic: the same inputs
 * and options give the same bits. Failures return ED_ERR with one line in
 * ed_last_error().
 *
 * To compare a model against the data fairly, measure (samples, data) and a floor
 * (data, fresh data) with the same options: the same projection seed for SWD, and one
 * bandwidth for MMD (compute it once with ed_mmd_median_bandwidth on the data). */
#ifndef ED_METRICS_H
#define ED_METRICS_H

#include "runtime/tensor.h"

#include <stdint.h>

/* Sliced Wasserstein distance.
 *   directions theta_1..theta_P: D-dimensional standard normal vectors from Philox
 *   (seed, call 0, stream FNV-1a("metrics.swd")), normalized to unit length;
 *   per direction, the exact 1-D Wasserstein distance between the projected samples,
 *   by sorting: W_p^p = integral over t in (0, 1) of |F^-1(t) - G^-1(t)|^p, with F, G the
 *   empirical distributions (for N = M: the mean of |a_(i) - b_(i)|^p over sorted a, b;
 *   N != M is handled exactly by merging the two step functions);
 *   p = 1 (default): SW1 = mean over directions of W1 (in data units);
 *   p = 2: SW2 = sqrt(mean over directions of W2^2).
 * Cost: O(P (N + M) (D + log(N + M))); P = 256, N = M = 10,000, D = 2 takes about
 * 0.3 s on one core (the sorts dominate). */
typedef struct {
    int projections; /* [256], 1..65536 */
    uint64_t seed;   /* seed of the directions */
    int p;           /* [1] 1 or 2 */
} ed_swd_opts;

/* opts may be NULL (defaults). N, M >= 1, the same D >= 1, finite values. */
int ed_sliced_wasserstein(const ed_tensor *x, const ed_tensor *y, const ed_swd_opts *opts, double *out);

/* Squared maximum mean discrepancy with the RBF kernel
 * k(a, b) = exp(-|a - b|^2 / (2 sigma^2)), the unbiased estimator
 *   MMD^2_u = sum_{i != j} k(x_i, x_j) / (N (N - 1)) + sum_{i != j} k(y_i, y_j) / (M (M - 1))
 *             - 2 sum_{i, j} k(x_i, y_j) / (N M),
 * which can be slightly negative when the two distributions are equal.
 * sigma <= 0 uses ed_mmd_median_bandwidth(x, y). N, M >= 2.
 * Cost: (N^2 + M^2) / 2 + N M kernel evaluations, O((N + M)^2 D) time and O((N + M) D)
 * memory: a double loop in plain C whose inner loop runs over blocks of 64 points with a
 * polynomial exp (relative error ~1e-16), written so the compiler vectorizes it at -O2,
 * each lane accumulating in double. N = M = 10,000, D = 2 is 2e8 kernels: about 0.85 s
 * on one core of the 2-core build machine with the default SSE2 code, 0.27 s with
 * EDIFICE_NATIVE (AVX-512). */
int ed_mmd2_rbf(const ed_tensor *x, const ed_tensor *y, double sigma, double *out);

/* The median heuristic: sigma = the median (the lower one for an even count) of the
 * Euclidean distances between distinct points of a deterministic subsample of the
 * pooled set: up to 500 evenly strided rows of x and up to 500 of y (y may be NULL).
 * An error if that median is 0 (e.g. all points equal). */
int ed_mmd_median_bandwidth(const ed_tensor *x, const ed_tensor *y, double *sigma);

/* The perplexity exp(H) of a histogram: H is the entropy of count[0..k-1] / sum (the
 * effective number of categories in use); *used (may be NULL) gets how many counts are
 * nonzero. NAN with ed_last_error() set for k < 1, a negative or non-finite count, or
 * an empty histogram. */
double ed_histogram_perplexity(const double *count, int64_t k, int64_t *used);

/* The class spread of n >= 1 predicted classes pred[i] in 0..classes-1: how many classes
 * occur (*hit) and the perplexity of their histogram (*perplexity: classes for a
 * uniform spread, 1 for a single class). ED_ERR for a class out of range. */
int ed_class_spread(const int32_t *pred, int64_t n, int32_t classes, int64_t *hit, double *perplexity);

/* The share of the n >= 1 predictions equal to the requested labels: a conditional
 * model's accuracy as a classifier judges it. NAN with ed_last_error() for n < 1. */
double ed_label_accuracy(const int32_t *pred, const int32_t *requested, int64_t n);
/* Mode coverage of samples x [N, D] against k modes centers [k * D] (row-major) of
 * standard deviation std (the 8 Gaussians' 0.1): each sample goes to its nearest
 * centre and is near when within 3 std of it (Euclidean). near_share is the share of
 * near samples; a mode is hit when at least ceil(min_share N) (and at least 1) near
 * samples went to it, so a stray sample or two does not count as coverage. */
typedef struct {
    int modes_hit;
    double near_share;
} ed_mode_coverage;

/* N >= 1, 1 <= k <= 1024, std > 0, min_share in [0, 1], finite values. */
int ed_mode_coverage_of(const ed_tensor *x, const double *centers, int k, double std, double min_share,
                        ed_mode_coverage *out);

#endif
