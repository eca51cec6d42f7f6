/* Sliced Wasserstein distance and RBF-kernel MMD^2 between point sets; histogram and
 * class-prediction summaries. */
#include "models/metrics.h"
#include "runtime/error.h"
#include "runtime/philox.h"
#include "runtime/store.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* ---- inputs ------------------------------------------------------------------------- */

typedef struct {
    int64_t n, d;
    double *cols; /* column-major: cols[k * n + i] is coordinate k of point i */
} points;

static int check_pair(const char *what, const ed_tensor *x, const ed_tensor *y, int64_t min_n)
{
    if (!x || !y) return ed_fail("%s: NULL point set", what);
    char a[96], b[96];
    ed_type_str(x->dtype, x->shape, a, sizeof a);
    ed_type_str(y->dtype, y->shape, b, sizeof b);
    if (!ed_dtype_is_float(x->dtype) || !ed_dtype_is_float(y->dtype) || x->shape.rank != 2 || y->shape.rank != 2 ||
        x->shape.dim[1] != y->shape.dim[1] || x->shape.dim[1] < 1)
        return ed_fail("%s: expected two f32 or f64 point sets [N, D] and [M, D] with the same "
                       "D >= 1, got %s and %s",
                       what, a, b);
    if (x->shape.dim[0] < min_n || y->shape.dim[0] < min_n)
        return ed_fail("%s: needs at least %lld points in each set, got %s and %s", what, (long long)min_n, a, b);
    return ED_OK;
}

/* Rows rows[0..k) of t (all rows if rows is NULL) in column-major double. */
static int load_points(const char *what, const ed_tensor *t, const int64_t *rows, int64_t k, points *out)
{
    int64_t d = t->shape.dim[1];
    out->n = k;
    out->d = d;
    out->cols = malloc((size_t)(k * d > 0 ? k * d : 1) * sizeof(double));
    if (!out->cols) return ed_fail("%s: out of memory for %lld points", what, (long long)k);
    for (int64_t i = 0; i < k; i++) {
        int64_t r = rows ? rows[i] : i;
        for (int64_t c = 0; c < d; c++) {
            double v = t->dtype == ED_F32 ? (double)((const float *)t->data)[r * d + c]
                                          : ((const double *)t->data)[r * d + c];
            if (!isfinite(v)) {
                free(out->cols);
                out->cols = NULL;
                return ed_fail("%s: point %lld has a non-finite coordinate (%g)", what, (long long)r, v);
            }
            out->cols[c * k + i] = v;
        }
    }
    return ED_OK;
}

/* Every row of x and of y; on failure neither is left allocated. */
static int load_pair(const char *what, const ed_tensor *x, const ed_tensor *y, points *px, points *py)
{
    if (load_points(what, x, NULL, x->shape.dim[0], px) != ED_OK) return ED_ERR;
    if (load_points(what, y, NULL, y->shape.dim[0], py) != ED_OK) {
        free(px->cols);
        return ED_ERR;
    }
    return ED_OK;
}

/* ---- sorting and selection of doubles ---------------------------------------------- */

static void insertion_sort(double *a, int64_t n)
{
    for (int64_t i = 1; i < n; i++) {
        double v = a[i];
        int64_t j = i;
        for (; j > 0 && a[j - 1] > v; j--) a[j] = a[j - 1];
        a[j] = v;
    }
}

static double median3(double a, double b, double c)
{
    return a < b ? (b < c ? b : a < c ? c : a) : (a < c ? a : b < c ? c : b);
}

/* Hoare partition around a median-of-three pivot: a[0..j] <= pivot <= a[j+1..n). */
static int64_t partition(double *a, int64_t n)
{
    double pivot = median3(a[0], a[n / 2], a[n - 1]);
    int64_t i = -1, j = n;
    for (;;) {
        do i++;
        while (a[i] < pivot);
        do j--;
        while (a[j] > pivot);
        if (i >= j) return j;
        double t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

/* Quicksort (no NaNs: inputs are checked finite); recursion only on the smaller side. */
static void sort_doubles(double *a, int64_t n)
{
    while (n > 24) {
        int64_t j = partition(a, n) + 1;
        if (j < n - j) {
            sort_doubles(a, j);
            a += j;
            n -= j;
        } else {
            sort_doubles(a + j, n - j);
            n = j;
        }
    }
    insertion_sort(a, n);
}

/* The k-th smallest of a[0..n) (a is reordered). */
static double select_kth(double *a, int64_t n, int64_t k)
{
    while (n > 24) {
        int64_t j = partition(a, n) + 1;
        if (k < j) {
            n = j;
        } else {
            a += j;
            n -= j;
            k -= j;
        }
    }
    insertion_sort(a, n);
    return a[k];
}

/* ---- sliced Wasserstein ------------------------------------------------------------- */

/* W_p^p between the empirical distributions of sorted a[0..n) and b[0..m): the
 * integral of |F^-1 - G^-1|^p over (0, 1), walking the merged breakpoints i/n, j/m. */
static double w_pp_sorted(const double *a, int64_t n, const double *b, int64_t m, int p)
{
    double acc = 0, t = 0;
    int64_t i = 0, j = 0;
    while (i < n && j < m) {
        /* the next breakpoint is min((i + 1) / n, (j + 1) / m), compared exactly */
        int64_t ci = (i + 1) * m, cj = (j + 1) * n;
        double next = ci <= cj ? (double)(i + 1) / (double)n : (double)(j + 1) / (double)m;
        double diff = fabs(a[i] - b[j]);
        acc += (next - t) * (p == 1 ? diff : diff * diff);
        t = next;
        i += ci <= cj;
        j += cj <= ci;
    }
    return acc;
}

static void project(const points *pt, const double *dir, double *out)
{
    for (int64_t i = 0; i < pt->n; i++) out[i] = 0;
    for (int64_t c = 0; c < pt->d; c++) {
        const double *col = pt->cols + c * pt->n;
        double w = dir[c];
        for (int64_t i = 0; i < pt->n; i++) out[i] += w * col[i];
    }
}

/* P unit directions in D dimensions, row-major. */
static double *directions(int p, int64_t d, uint64_t seed)
{
    double *dir = malloc((size_t)(p * d) * sizeof *dir);
    if (!dir) return NULL;
    ed_rng_normal(dir, ED_F64, p * d, seed, 0, ed_name_stream("metrics.swd"));
    for (int k = 0; k < p; k++) {
        double *v = dir + k * d, norm = 0;
        for (int64_t c = 0; c < d; c++) norm += v[c] * v[c];
        norm = sqrt(norm);
        for (int64_t c = 0; c < d; c++) v[c] = norm > 0 ? v[c] / norm : (c == 0); /* a zero draw: the first axis */
    }
    return dir;
}

static int swd_opts(const ed_swd_opts *in, ed_swd_opts *o)
{
    *o = in ? *in : (ed_swd_opts){0};
    o->projections = o->projections ? o->projections : 256;
    o->p = o->p ? o->p : 1;
    if (o->projections < 1 || o->projections > 65536 || (o->p != 1 && o->p != 2))
        return ed_fail("sliced wasserstein: projections %d must be in 1..65536 and p (%d) 1 or 2", o->projections,
                       o->p);
    return ED_OK;
}

int ed_sliced_wasserstein(const ed_tensor *x, const ed_tensor *y, const ed_swd_opts *opts, double *out)
{
    const char *what = "sliced wasserstein";
    ed_swd_opts o;
    if (!out) return ed_fail("%s: NULL output", what);
    if (swd_opts(opts, &o) != ED_OK || check_pair(what, x, y, 1) != ED_OK) return ED_ERR;
    points px = {0}, py = {0};
    if (load_pair(what, x, y, &px, &py) != ED_OK) return ED_ERR;
    double *dir = directions(o.projections, px.d, o.seed);
    double *a = malloc((size_t)px.n * sizeof *a), *b = malloc((size_t)py.n * sizeof *b);
    int status = dir && a && b ? ED_OK : ed_fail("%s: out of memory", what);
    double total = 0;
    for (int k = 0; status == ED_OK && k < o.projections; k++) {
        project(&px, dir + k * px.d, a);
        project(&py, dir + k * px.d, b);
        sort_doubles(a, px.n);
        sort_doubles(b, py.n);
        total += w_pp_sorted(a, px.n, b, py.n, o.p);
    }
    if (status == ED_OK) *out = o.p == 1 ? total / o.projections : sqrt(total / o.projections);
    free(dir);
    free(a);
    free(b);
    free(px.cols);
    free(py.cols);
    return status;
}

/* ---- MMD ---------------------------------------------------------------------------- */

#define BLOCK 64

/* Largest exponent argument: exp(-708) ~ 3e-308 stands for anything smaller. */
#define EXP_ARG_MAX 708.0

/* exp(x) for -708 <= x <= 0, vectorizable: x = k ln2 + r, |r| <= ln2 / 2, e^r by its
 * Taylor polynomial to degree 12 (relative error about 1e-16), times 2^k built in the
 * exponent bits (k >= -1022, so the result is a normal number). */
static inline double exp_nonpos(double x)
{
    const double log2e = 1.4426950408889634, ln2_hi = 0.6931471803691238, ln2_lo = 1.9082149292705877e-10,
                 shifter = 0x1.8p52;
    double kf = x * log2e + shifter; /* round to nearest; k sits in the low mantissa bits */
    int64_t kbits;
    memcpy(&kbits, &kf, sizeof kbits);
    kf -= shifter;
    double r = x - kf * ln2_hi - kf * ln2_lo;
    double poly = 1.0 / 479001600;
    poly = poly * r + 1.0 / 39916800;
    poly = poly * r + 1.0 / 3628800;
    poly = poly * r + 1.0 / 362880;
    poly = poly * r + 1.0 / 40320;
    poly = poly * r + 1.0 / 5040;
    poly = poly * r + 1.0 / 720;
    poly = poly * r + 1.0 / 120;
    poly = poly * r + 1.0 / 24;
    poly = poly * r + 1.0 / 6;
    poly = poly * r + 0.5;
    poly = poly * r + 1.0;
    poly = poly * r + 1.0;
    int64_t shifter_bits;
    memcpy(&shifter_bits, &shifter, sizeof shifter_bits);
    int64_t scale_bits = (int64_t)((uint64_t)(kbits - shifter_bits + 1023) << 52);
    double scale;
    memcpy(&scale, &scale_bits, sizeof scale);
    return poly * scale;
}

/* acc[k] += k(p, q_{j+k}) for one full block of BLOCK points starting at j. The loops
 * have a fixed trip count so the compiler vectorizes them without an epilogue, and each
 * lane keeps its own accumulator (no reassociation needed). */
static void kernel_block(const points *q, int64_t j, const double *p, double c, double acc[BLOCK])
{
    double d2[BLOCK];
    for (int k = 0; k < BLOCK; k++) d2[k] = 0;
    for (int64_t dim = 0; dim < q->d; dim++) {
        const double *col = q->cols + dim * q->n + j;
        double v = p[dim];
        for (int k = 0; k < BLOCK; k++) {
            double t = col[k] - v;
            d2[k] += t * t;
        }
    }
    for (int k = 0; k < BLOCK; k++) { /* a loop of its own, or it would not vectorize */
        double u = c * d2[k];
        d2[k] = u < EXP_ARG_MAX ? u : EXP_ARG_MAX;
    }
    for (int k = 0; k < BLOCK; k++) acc[k] += exp_nonpos(-d2[k]);
}

/* Sum over j in [j0, n) of k(p, q_j). */
static double kernel_row(const points *q, int64_t j0, const double *p, double c)
{
    double acc[BLOCK] = {0};
    int64_t j = j0;
    for (; j + BLOCK <= q->n; j += BLOCK) kernel_block(q, j, p, c, acc);
    double tail = 0;
    for (; j < q->n; j++) {
        double d2 = 0;
        for (int64_t dim = 0; dim < q->d; dim++) {
            double t = q->cols[dim * q->n + j] - p[dim];
            d2 += t * t;
        }
        double u = c * d2;
        tail += exp_nonpos(-(u < EXP_ARG_MAX ? u : EXP_ARG_MAX));
    }
    double sum = 0;
    for (int k = 0; k < BLOCK; k++) sum += acc[k];
    return sum + tail;
}

static void row_of(const points *pt, int64_t i, double *p)
{
    for (int64_t c = 0; c < pt->d; c++) p[c] = pt->cols[c * pt->n + i];
}

/* Mean of k over pairs i < j of one set (= the mean over i != j). */
static double within_mean(const points *pt, double c, double *p)
{
    double sum = 0;
    for (int64_t i = 0; i + 1 < pt->n; i++) {
        row_of(pt, i, p);
        sum += kernel_row(pt, i + 1, p, c);
    }
    return sum / ((double)pt->n * (double)(pt->n - 1) / 2.0);
}

static double cross_mean(const points *px, const points *py, double c, double *p)
{
    double sum = 0;
    for (int64_t i = 0; i < px->n; i++) {
        row_of(px, i, p);
        sum += kernel_row(py, 0, p, c);
    }
    return sum / ((double)px->n * (double)py->n);
}

int ed_mmd2_rbf(const ed_tensor *x, const ed_tensor *y, double sigma, double *out)
{
    const char *what = "mmd";
    if (!out) return ed_fail("%s: NULL output", what);
    if (check_pair(what, x, y, 2) != ED_OK) return ED_ERR;
    if (isnan(sigma) || isinf(sigma)) return ed_fail("%s: bandwidth must be finite, got %g", what, sigma);
    if (sigma <= 0 && ed_mmd_median_bandwidth(x, y, &sigma) != ED_OK) return ED_ERR;
    points px = {0}, py = {0};
    if (load_pair(what, x, y, &px, &py) != ED_OK) return ED_ERR;
    double *p = malloc((size_t)px.d * sizeof *p);
    int status = p ? ED_OK : ed_fail("%s: out of memory", what);
    if (status == ED_OK) {
        double c = 1.0 / (2.0 * sigma * sigma);
        *out = within_mean(&px, c, p) + within_mean(&py, c, p) - 2.0 * cross_mean(&px, &py, c, p);
    }
    free(p);
    free(px.cols);
    free(py.cols);
    return status;
}

/* Up to `most` evenly strided row indices of an n-row set into rows; returns how many. */
static int64_t strided_rows(int64_t n, int64_t most, int64_t *rows)
{
    int64_t k = n < most ? n : most;
    for (int64_t i = 0; i < k; i++) rows[i] = i * n / k;
    return k;
}

static double *pairwise_distances(const points *pt, int64_t *count)
{
    int64_t n = pt->n, m = n * (n - 1) / 2, at = 0;
    double *dist = malloc((size_t)(m > 0 ? m : 1) * sizeof *dist);
    for (int64_t i = 0; dist && i < n; i++) {
        for (int64_t j = i + 1; j < n; j++) {
            double d2 = 0;
            for (int64_t c = 0; c < pt->d; c++) {
                double t = pt->cols[c * n + i] - pt->cols[c * n + j];
                d2 += t * t;
            }
            dist[at++] = sqrt(d2);
        }
    }
    *count = m;
    return dist;
}

/* Rows of x and y (y may be NULL) pooled into one column-major set. */
static int pooled_subsample(const char *what, const ed_tensor *x, const ed_tensor *y, points *out)
{
    int64_t rows[1000];
    points a = {0}, b = {0};
    int64_t ka = strided_rows(x->shape.dim[0], 500, rows);
    if (load_points(what, x, rows, ka, &a) != ED_OK) return ED_ERR;
    int64_t kb = y ? strided_rows(y->shape.dim[0], 500, rows) : 0;
    if (y && load_points(what, y, rows, kb, &b) != ED_OK) {
        free(a.cols);
        return ED_ERR;
    }
    int64_t d = x->shape.dim[1], n = ka + kb;
    *out = (points){.n = n, .d = d, .cols = malloc((size_t)(n * d) * sizeof(double))};
    for (int64_t c = 0; out->cols && c < d; c++) {
        memcpy(out->cols + c * n, a.cols + c * ka, (size_t)ka * sizeof(double));
        if (kb) memcpy(out->cols + c * n + ka, b.cols + c * kb, (size_t)kb * sizeof(double));
    }
    free(a.cols);
    free(b.cols);
    return out->cols ? ED_OK : ed_fail("%s: out of memory", what);
}

int ed_mmd_median_bandwidth(const ed_tensor *x, const ed_tensor *y, double *sigma)
{
    const char *what = "mmd bandwidth";
    if (!sigma) return ed_fail("%s: NULL output", what);
    if (check_pair(what, x, y ? y : x, 1) != ED_OK) return ED_ERR;
    points pool;
    if (pooled_subsample(what, x, y, &pool) != ED_OK) return ED_ERR;
    int64_t count = 0;
    double *dist = pool.n >= 2 ? pairwise_distances(&pool, &count) : NULL;
    int status = ED_OK;
    if (pool.n < 2) status = ed_fail("%s: needs at least 2 points", what);
    else if (!dist) status = ed_fail("%s: out of memory", what);
    double median = status == ED_OK ? select_kth(dist, count, (count - 1) / 2) : 0;
    if (status == ED_OK && !(median > 0))
        status = ed_fail("%s: the median distance between points is 0 (are all points equal?); "
                         "give a bandwidth",
                         what);
    if (status == ED_OK) *sigma = median;
    free(dist);
    free(pool.cols);
    return status;
}

double ed_histogram_perplexity(const double *count, int64_t k, int64_t *used)
{
    if (used) *used = 0;
    double total = 0;
    for (int64_t j = 0; count && j < k; j++) {
        if (!(count[j] >= 0) || isinf(count[j])) {
            ed_fail("perplexity: count %lld is %g, not a finite count", (long long)j, count[j]);
            return NAN;
        }
        total += count[j];
    }
    if (!count || k < 1 || total <= 0) {
        ed_fail("perplexity: needs k >= 1 categories and a nonempty histogram (k = %lld)", (long long)k);
        return NAN;
    }
    double entropy = 0;
    int64_t distinct = 0;
    for (int64_t j = 0; j < k; j++) {
        if (count[j] == 0) continue;
        double p = count[j] / total;
        entropy -= p * log(p);
        distinct++;
    }
    if (used) *used = distinct;
    return exp(entropy);
}

int ed_class_spread(const int32_t *pred, int64_t n, int32_t classes, int64_t *hit, double *perplexity)
{
    *hit = 0;
    *perplexity = NAN;
    if (!pred || n < 1 || classes < 1)
        return ed_fail("class spread: needs n >= 1 predictions and classes >= 1 (n = %lld, classes = %d)", (long long)n,
                       (int)classes);
    double *count = calloc((size_t)classes, sizeof *count);
    if (!count) return ed_fail("class spread: out of memory for %d classes", (int)classes);
    for (int64_t i = 0; i < n; i++) {
        if (pred[i] < 0 || pred[i] >= classes) {
            free(count);
            return ed_fail("class spread: prediction %lld is class %d, not in 0..%d", (long long)i, (int)pred[i],
                           (int)classes - 1);
        }
        count[pred[i]]++;
    }
    *perplexity = ed_histogram_perplexity(count, classes, hit);
    free(count);
    return ED_OK;
}

double ed_label_accuracy(const int32_t *pred, const int32_t *requested, int64_t n)
{
    if (!pred || !requested || n < 1) {
        ed_fail("label accuracy: needs n >= 1 predictions and labels (n = %lld)", (long long)n);
        return NAN;
    }
    int64_t right = 0;
    for (int64_t i = 0; i < n; i++) right += pred[i] == requested[i];
    return (double)right / (double)n;
}

/* ---- mode coverage ---------------------------------------------------------------- */

int ed_mode_coverage_of(const ed_tensor *x, const double *centers, int k, double std, double min_share,
                        ed_mode_coverage *out)
{
    *out = (ed_mode_coverage){0};
    if (!x || x->shape.rank != 2 || x->shape.dim[0] < 1 || (x->dtype != ED_F32 && x->dtype != ED_F64))
        return ed_fail("mode coverage: the samples must be a float [N, D] with N >= 1");
    if (!centers || k < 1 || k > 1024 || !(std > 0) || isinf(std) || !(min_share >= 0 && min_share <= 1))
        return ed_fail("mode coverage: needs 1..1024 modes, std > 0 and min_share in [0, 1] (k %d, std %g, share %g)",
                       k, std, min_share);
    int64_t n = x->shape.dim[0], d = x->shape.dim[1];
    int64_t *near = calloc((size_t)k, sizeof *near);
    if (!near) return ed_fail("mode coverage: out of memory");
    int64_t total = 0;
    double radius2 = 9 * std * std;
    for (int64_t i = 0; i < n; i++) {
        int best = 0;
        double best_d2 = INFINITY;
        for (int c = 0; c < k; c++) {
            double d2 = 0;
            for (int64_t j = 0; j < d; j++) {
                double diff = ed_tensor_get(x, i * d + j) - centers[c * d + j];
                d2 += diff * diff;
            }
            if (d2 < best_d2) best_d2 = d2, best = c;
            if (!(d2 < INFINITY)) break; /* NaN or inf: refused below */
        }
        if (!(best_d2 < INFINITY)) {
            free(near);
            return ed_fail("mode coverage: sample %lld is not finite", (long long)i);
        }
        if (best_d2 <= radius2) near[best]++, total++;
    }
    double need = ceil(min_share * (double)n);
    if (need < 1) need = 1;
    for (int c = 0; c < k; c++) out->modes_hit += (double)near[c] >= need;
    out->near_share = (double)total / (double)n;
    free(near);
    return ED_OK;
}
