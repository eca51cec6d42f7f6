/* im2col + sgemm: the columns of one image-group are the cg kh kw x oh ow matrix
 * col[(ci, p, q)][(i, j)] = x[ci, i sh - ph + p dh, j sw - pw + q dw] (0 outside); then
 * conv2d is W_g col, its input gradient col2im(W_g^T dy_g), its weight gradient the sum
 * over images of dy_g col^T. A 1x1 kernel with stride 1 and no padding reads x as is. */
#include "backend/llvm/conv_gemm.h"

#include <cblas.h>
#include <string.h>

int64_t ed_conv_gemm_scratch(const ed_conv_geom *g) { return g->cg * g->kh * g->kw * g->oh * g->ow; }

static bool is_pointwise(const ed_conv_geom *g)
{
    return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->ph == 0 && g->pw == 0;
}

/* The columns j of an output row whose input column j sw - pw + q dw is inside [0, w). */
static void inside_cols(const ed_conv_geom *g, int64_t q, int64_t *j0, int64_t *j1)
{
    int64_t off = q * g->dw - g->pw; /* input column of output column 0 */
    if (g->w == 0) {
        *j0 = *j1 = 0;
        return;
    }
    *j0 = off >= 0 ? 0 : (-off + g->sw - 1) / g->sw;
    *j1 = off >= g->w ? 0 : (g->w - 1 - off) / g->sw + 1;
    if (*j1 > g->ow) *j1 = g->ow;
    if (*j0 > *j1) *j0 = *j1;
}

static void im2col(float *col, const float *x, const ed_conv_geom *g)
{
    int64_t plane = g->oh * g->ow;
    for (int64_t ci = 0; ci < g->cg; ci++)
        for (int64_t p = 0; p < g->kh; p++)
            for (int64_t q = 0; q < g->kw; q++) {
                float *row = col + ((ci * g->kh + p) * g->kw + q) * plane;
                int64_t j0, j1, off = q * g->dw - g->pw;
                inside_cols(g, q, &j0, &j1);
                for (int64_t i = 0; i < g->oh; i++) {
                    int64_t r = i * g->sh - g->ph + p * g->dh;
                    float *dst = row + i * g->ow;
                    if (r < 0 || r >= g->h) {
                        memset(dst, 0, (size_t)g->ow * sizeof *dst);
                        continue;
                    }
                    const float *src = x + (ci * g->h + r) * g->w;
                    for (int64_t j = 0; j < j0; j++) dst[j] = 0;
                    if (g->sw == 1) memcpy(dst + j0, src + off + j0, (size_t)(j1 - j0) * sizeof *dst);
                    else
                        for (int64_t j = j0; j < j1; j++) dst[j] = src[off + j * g->sw];
                    for (int64_t j = j1; j < g->ow; j++) dst[j] = 0;
                }
            }
}

/* x += the columns put back where im2col read them (x holds cg channels of h x w). */
static void col2im_add(float *x, const float *col, const ed_conv_geom *g)
{
    int64_t plane = g->oh * g->ow;
    for (int64_t ci = 0; ci < g->cg; ci++)
        for (int64_t p = 0; p < g->kh; p++)
            for (int64_t q = 0; q < g->kw; q++) {
                const float *row = col + ((ci * g->kh + p) * g->kw + q) * plane;
                int64_t j0, j1, off = q * g->dw - g->pw;
                inside_cols(g, q, &j0, &j1);
                for (int64_t i = 0; i < g->oh; i++) {
                    int64_t r = i * g->sh - g->ph + p * g->dh;
                    if (r < 0 || r >= g->h) continue;
                    float *dst = x + (ci * g->h + r) * g->w;
                    const float *src = row + i * g->ow;
                    for (int64_t j = j0; j < j1; j++) dst[off + j * g->sw] += src[j];
                }
            }
}

void ed_conv2d_gemm_f32(float *y, const float *x, const float *w, const ed_conv_geom *g, float *col)
{
    int64_t k = g->cg * g->kh * g->kw, plane = g->oh * g->ow;
    if (k == 0) { /* an empty sum: BLAS may not touch C */
        memset(y, 0, (size_t)(g->n * g->o * plane) * sizeof *y);
        return;
    }
    for (int64_t b = 0; b < g->n; b++)
        for (int64_t grp = 0; grp < g->groups; grp++) {
            const float *xg = x + (b * g->c + grp * g->cg) * g->h * g->w;
            const float *cols = xg;
            if (!is_pointwise(g)) im2col(col, xg, g), cols = col;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)g->og, (blasint)plane, (blasint)k, 1.0f,
                        w + grp * g->og * k, (blasint)k, cols, (blasint)plane, 0.0f,
                        y + (b * g->o + grp * g->og) * plane, (blasint)plane);
        }
}

void ed_conv_transpose2d_gemm_f32(float *x, const float *y, const float *w, const ed_conv_geom *g, float *col)
{
    int64_t k = g->cg * g->kh * g->kw, plane = g->oh * g->ow, image = g->h * g->w;
    memset(x, 0, (size_t)(g->n * g->c * image) * sizeof *x);
    if (g->og == 0 || k == 0) return;
    for (int64_t b = 0; b < g->n; b++)
        for (int64_t grp = 0; grp < g->groups; grp++) {
            float *xg = x + (b * g->c + grp * g->cg) * image;
            bool direct = is_pointwise(g); /* the columns are x itself */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (blasint)k, (blasint)plane, (blasint)g->og, 1.0f,
                        w + grp * g->og * k, (blasint)k, y + (b * g->o + grp * g->og) * plane, (blasint)plane, 0.0f,
                        direct ? xg : col, (blasint)plane);
            if (!direct) col2im_add(xg, col, g);
        }
}

void ed_conv2d_weight_grad_gemm_f32(float *dw, const float *x, const float *dy, const ed_conv_geom *g, float *col)
{
    int64_t k = g->cg * g->kh * g->kw, plane = g->oh * g->ow;
    memset(dw, 0, (size_t)(g->o * k) * sizeof *dw);
    if (plane == 0 || g->og == 0 || k == 0) return;
    for (int64_t b = 0; b < g->n; b++)
        for (int64_t grp = 0; grp < g->groups; grp++) {
            const float *xg = x + (b * g->c + grp * g->cg) * g->h * g->w;
            const float *cols = xg;
            if (!is_pointwise(g)) im2col(col, xg, g), cols = col;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)g->og, (blasint)k, (blasint)plane, 1.0f,
                        dy + (b * g->o + grp * g->og) * plane, (blasint)plane, cols, (blasint)plane, 1.0f,
                        dw + grp * g->og * k, (blasint)k);
        }
}
