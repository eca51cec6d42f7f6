/* Frechet distance between Gaussian fits of two feature sets, with a Jacobi
 * eigendecomposition for the matrix square roots. */
#include "models/frechet.h"
#include "runtime/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define JACOBI_SWEEPS 100

void ed_feature_stats_free(ed_feature_stats *s)
{
    free(s->mean);
    free(s->cov);
    *s = (ed_feature_stats){0};
}

int ed_feature_stats_of(const ed_tensor *x, ed_feature_stats *out)
{
    *out = (ed_feature_stats){0};
    if (!x || !ed_dtype_is_float(x->dtype) || x->shape.rank != 2 || x->shape.dim[0] < 2 || x->shape.dim[1] < 1) {
        char t[96] = "NULL";
        if (x) ed_type_str(x->dtype, x->shape, t, sizeof t);
        return ed_fail("frechet: expected an f32 or f64 feature set [N >= 2, D >= 1], got %s", t);
    }
    int64_t n = x->shape.dim[0], d = x->shape.dim[1];
    double *mean = calloc((size_t)d, sizeof *mean), *cov = calloc((size_t)(d * d), sizeof *cov);
    double *row = malloc((size_t)d * sizeof *row);
    if (!mean || !cov || !row) {
        free(mean), free(cov), free(row);
        return ed_fail("frechet: out of memory for %lld features", (long long)d);
    }
    for (int64_t i = 0; i < n * d; i++) {
        double v = ed_tensor_get(x, i);
        if (!isfinite(v)) {
            free(mean), free(cov), free(row);
            return ed_fail("frechet: feature %lld of row %lld is %g", (long long)(i % d), (long long)(i / d), v);
        }
        mean[i % d] += v;
    }
    for (int64_t j = 0; j < d; j++) mean[j] /= (double)n;
    /* Centred rows, accumulating the upper triangle; the lower one is its mirror. */
    for (int64_t i = 0; i < n; i++) {
        for (int64_t j = 0; j < d; j++) row[j] = ed_tensor_get(x, i * d + j) - mean[j];
        for (int64_t j = 0; j < d; j++)
            for (int64_t k = j; k < d; k++) cov[j * d + k] += row[j] * row[k];
    }
    for (int64_t j = 0; j < d; j++)
        for (int64_t k = j; k < d; k++) cov[k * d + j] = cov[j * d + k] /= (double)(n - 1);
    free(row);
    *out = (ed_feature_stats){.n = n, .d = d, .mean = mean, .cov = cov};
    return ED_OK;
}

/* One Jacobi rotation in the (p, q) plane that zeroes a[p][q] (a is n x n, symmetric),
 * accumulated into v's columns p and q. */
static void rotate(double *a, double *v, int64_t n, int64_t p, int64_t q)
{
    double apq = a[p * n + q];
    double theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
    double t = (theta >= 0 ? 1 : -1) / (fabs(theta) + sqrt(theta * theta + 1));
    double c = 1 / sqrt(t * t + 1), s = t * c;
    for (int64_t k = 0; k < n; k++) { /* columns: a J */
        double akp = a[k * n + p], akq = a[k * n + q];
        a[k * n + p] = c * akp - s * akq;
        a[k * n + q] = s * akp + c * akq;
    }
    for (int64_t k = 0; k < n; k++) { /* rows: J^T (a J) */
        double apk = a[p * n + k], aqk = a[q * n + k];
        a[p * n + k] = c * apk - s * aqk;
        a[q * n + k] = s * apk + c * aqk;
    }
    a[p * n + q] = a[q * n + p] = 0; /* zero by construction: drop the rounding */
    for (int64_t k = 0; k < n; k++) {
        double vkp = v[k * n + p], vkq = v[k * n + q];
        v[k * n + p] = c * vkp - s * vkq;
        v[k * n + q] = s * vkp + c * vkq;
    }
}

int ed_symmetric_eigen(const double *a, int64_t n, double *values, double *vectors)
{
    if (!a || !values || n < 1 || n > 65536) return ed_fail("eigen: expected a square matrix of size 1..65536");
    double *w = malloc((size_t)(n * n) * sizeof *w), *v = malloc((size_t)(n * n) * sizeof *v);
    if (!w || !v) {
        free(w), free(v);
        return ed_fail("eigen: out of memory for a %lld x %lld matrix", (long long)n, (long long)n);
    }
    double norm2 = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            double x = 0.5 * (a[i * n + j] + a[j * n + i]); /* read as exactly symmetric */
            w[i * n + j] = x;
            v[i * n + j] = i == j;
            norm2 += x * x;
        }
    if (!isfinite(norm2)) {
        free(w), free(v);
        return ed_fail("eigen: the matrix has a non-finite or overflowing value");
    }
    int status = ED_ERR;
    for (int sweep = 0; sweep <= JACOBI_SWEEPS; sweep++) {
        double off2 = 0;
        for (int64_t p = 0; p < n; p++)
            for (int64_t q = p + 1; q < n; q++) off2 += 2 * w[p * n + q] * w[p * n + q];
        if (off2 <= 1e-30 * norm2) {
            status = ED_OK;
            break;
        }
        if (sweep == JACOBI_SWEEPS) break;
        for (int64_t p = 0; p < n; p++)
            for (int64_t q = p + 1; q < n; q++)
                if (w[p * n + q] != 0) rotate(w, v, n, p, q);
    }
    if (status == ED_OK) {
        for (int64_t i = 0; i < n; i++) values[i] = w[i * n + i];
        if (vectors) memcpy(vectors, v, (size_t)(n * n) * sizeof *v);
    } else ed_fail("eigen: Jacobi did not converge in %d sweeps (n = %lld)", JACOBI_SWEEPS, (long long)n);
    free(w), free(v);
    return status;
}

/* c = a b for n x n row-major matrices. */
static void matmul(const double *a, const double *b, double *c, int64_t n)
{
    memset(c, 0, (size_t)(n * n) * sizeof *c);
    for (int64_t i = 0; i < n; i++)
        for (int64_t k = 0; k < n; k++) {
            double aik = a[i * n + k];
            for (int64_t j = 0; j < n; j++) c[i * n + j] += aik * b[k * n + j];
        }
}

/* root = s^1/2 for symmetric PSD s; negative eigenvalues count as 0. */
static int sqrt_psd(const double *s, int64_t n, double *root, double *scratch_values, double *scratch_vectors)
{
    if (ed_symmetric_eigen(s, n, scratch_values, scratch_vectors) != ED_OK) return ED_ERR;
    const double *v = scratch_vectors;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            double x = 0;
            for (int64_t k = 0; k < n; k++) x += v[i * n + k] * sqrt(fmax(scratch_values[k], 0)) * v[j * n + k];
            root[i * n + j] = x;
        }
    return ED_OK;
}

int ed_frechet_distance(const ed_feature_stats *a, const ed_feature_stats *b, double *out)
{
    *out = NAN;
    if (!a || !b || !a->mean || !b->mean || a->d != b->d)
        return ed_fail("frechet: two fits of the same width are needed (%lld and %lld)", a ? (long long)a->d : -1LL,
                       b ? (long long)b->d : -1LL);
    int64_t d = a->d;
    size_t dd = (size_t)(d * d);
    double *root = malloc(dd * sizeof(double)), *tmp = malloc(dd * sizeof(double)), *m = malloc(dd * sizeof(double)),
           *vec = malloc(dd * sizeof(double)), *val = malloc((size_t)d * sizeof(double));
    int status = root && tmp && m && vec && val ? ED_OK
                                                : ed_fail("frechet: out of memory for %lld features", (long long)d);
    if (status == ED_OK) status = sqrt_psd(a->cov, d, root, val, vec);
    if (status == ED_OK) {
        matmul(root, b->cov, tmp, d); /* S1^1/2 S2 S1^1/2: symmetric PSD, unlike S1 S2 */
        matmul(tmp, root, m, d);
        status = ed_symmetric_eigen(m, d, val, NULL);
    }
    if (status == ED_OK) {
        double dist = 0, tr_root = 0;
        for (int64_t j = 0; j < d; j++) {
            double diff = a->mean[j] - b->mean[j];
            dist += diff * diff + a->cov[j * d + j] + b->cov[j * d + j];
            tr_root += sqrt(fmax(val[j], 0));
        }
        *out = dist - 2 * tr_root;
    }
    free(root), free(tmp), free(m), free(vec), free(val);
    return status;
}

int ed_frechet_distance_of(const ed_tensor *x, const ed_tensor *y, double *out)
{
    ed_feature_stats a, b;
    *out = NAN;
    if (ed_feature_stats_of(x, &a) != ED_OK) return ED_ERR;
    if (ed_feature_stats_of(y, &b) != ED_OK) {
        ed_feature_stats_free(&a);
        return ED_ERR;
    }
    int status = ed_frechet_distance(&a, &b, out);
    ed_feature_stats_free(&a);
    ed_feature_stats_free(&b);
    return status;
}
