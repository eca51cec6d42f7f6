/* Plain-loop GEMM for objects without BLAS. Rows of C accumulate in p order
 * (c[i][j] += alpha a[i][p] b[p][j]), so the inner loop runs along a row of C and
 * vectorizes; not OpenBLAS's summation order, so not its bits. Column-major is the
 * row-major product of the transposes with the operands swapped. */
#include "runtime/gemm_ref.h"

#include <stddef.h>

enum { ROW_MAJOR = 101, NO_TRANS = 111 };

void ed_ref_sgemm(int order, int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                  int ldb, float beta, float *c, int ldc)
{
    if (order != ROW_MAJOR) {
        ed_ref_sgemm(ROW_MAJOR, tb, ta, n, m, k, alpha, b, ldb, a, lda, beta, c, ldc);
        return;
    }
    for (int i = 0; i < m; i++) {
        float *row = c + (size_t)i * (size_t)ldc;
        for (int j = 0; j < n; j++) row[j] = beta == 0 ? 0 : beta * row[j];
        for (int p = 0; p < k; p++) {
            float x = alpha * (ta == NO_TRANS ? a[(size_t)i * (size_t)lda + (size_t)p]
                                              : a[(size_t)p * (size_t)lda + (size_t)i]);
            for (int j = 0; j < n; j++)
                row[j] += x * (tb == NO_TRANS ? b[(size_t)p * (size_t)ldb + (size_t)j]
                                              : b[(size_t)j * (size_t)ldb + (size_t)p]);
        }
    }
}

void ed_ref_dgemm(int order, int ta, int tb, int m, int n, int k, double alpha, const double *a, int lda,
                  const double *b, int ldb, double beta, double *c, int ldc)
{
    if (order != ROW_MAJOR) {
        ed_ref_dgemm(ROW_MAJOR, tb, ta, n, m, k, alpha, b, ldb, a, lda, beta, c, ldc);
        return;
    }
    for (int i = 0; i < m; i++) {
        double *row = c + (size_t)i * (size_t)ldc;
        for (int j = 0; j < n; j++) row[j] = beta == 0 ? 0 : beta * row[j];
        for (int p = 0; p < k; p++) {
            double x = alpha * (ta == NO_TRANS ? a[(size_t)i * (size_t)lda + (size_t)p]
                                               : a[(size_t)p * (size_t)lda + (size_t)i]);
            for (int j = 0; j < n; j++)
                row[j] += x * (tb == NO_TRANS ? b[(size_t)p * (size_t)ldb + (size_t)j]
                                              : b[(size_t)j * (size_t)ldb + (size_t)p]);
        }
    }
}
