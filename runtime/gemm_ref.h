/* Reference GEMM with the signatures of cblas_sgemm and cblas_dgemm (runtime/gemm_ref.c).
 * `edifice export --no-blas` links these into the object in place of OpenBLAS's. */
#ifndef ED_GEMM_REF_H
#define ED_GEMM_REF_H

/* C = alpha op(A) op(B) + beta C, op(A) m x k, op(B) k x n. order: 101 row-major, 102
 * column-major; ta, tb: 111 no transpose, 112 (or 113) transposed: CBLAS's values. */
void ed_ref_sgemm(int order, int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                  int ldb, float beta, float *c, int ldc);
void ed_ref_dgemm(int order, int ta, int tb, int m, int n, int k, double alpha, const double *a, int lda,
                  const double *b, int ldb, double beta, double *c, int ldc);

#endif
