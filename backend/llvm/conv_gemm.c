/* im2col + sgemm over a chunk of images: the columns of one group for nb images are the
 * cg kh kw x nb oh ow matrix col[(ci, p, q)][(b, i, j)] = x[b, ci, i sh - ph + p dh,
 * j sw - pw + q dw] (0 outside); conv2d is W_g col, its input gradient col2im(W_g^T dy_g)
 * (at stride 1 a conv2d of dy with the flipped kernel instead), its weight gradient the
 * sum over chunks of dy_g col^T, where dy_g is the chunk's outputs gathered as og x nb oh ow. One chunk is one sgemm wide enough for BLAS and its threads.
 * Stride 1 with fewer outputs than inputs on large planes skips im2col: one sgemm per
 * kernel tap over the once-padded input (below, "shifted taps"). */
#include "backend/llvm/conv_gemm.h"

#include "runtime/pool.h"

#include <cblas.h>
#include <string.h>

/* With more than one BLAS thread, planes smaller than BATCH_PLANE pixels go to sgemm
 * CHUNK_COLS columns at a time (a 7x7 layer, 41 images per call), so that the call is
 * wide enough to split; otherwise one image at a time, whose columns stay in cache.
 * Measured (bench/HISTORY.md, "conv chunks"): 2x faster at two threads on a 7x7 layer,
 * 20-30% slower at one on the conv VAE and DCGAN steps. */
#define BATCH_PLANE 128
#define CHUNK_COLS 2048

int64_t ed_conv_gemm_chunk_max(const ed_conv_geom *g)
{
    int64_t plane = g->oh * g->ow;
    if (plane <= 0 || plane >= BATCH_PLANE || g->n <= 1) return 1;
    int64_t nb = CHUNK_COLS / plane;
    return nb < g->n ? nb : g->n;
}

/* Images per sgemm in this call: BLAS's thread count can change between calls. */
static int64_t chunk_of(const ed_conv_geom *g)
{
    return openblas_get_num_threads() > 1 ? ed_conv_gemm_chunk_max(g) : 1;
}

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

/* The output rows [*i0, *i1) whose input row i sh - ph + p dh is inside [0, h). */
static void inside_rows(const ed_conv_geom *g, int64_t p, int64_t *i0, int64_t *i1)
{
    ed_conv_geom t = *g; /* the column rule with rows for columns */
    t.w = g->h, t.ow = g->oh, t.sw = g->sh, t.pw = g->ph, t.dw = g->dh;
    inside_cols(&t, p, i0, i1);
}

/* One row of columns when stride is 1 and rows are as wide in and out: output rows
 * [i0, i1) read input rows r0 .. as one run of memory, so one copy, then the columns
 * outside [j0, j1) (which read a neighbouring row, or before or after the plane) zeroed. */
static void im2col_rows(float *dst, const float *plane, int64_t start, const ed_conv_geom *g, int64_t i0, int64_t i1,
                        int64_t j0, int64_t j1)
{
    int64_t len = (i1 - i0) * g->ow, lo = start < 0 ? -start : 0, end = g->h * g->w - start;
    int64_t hi = len < end ? len : end;
    if (hi > lo) memcpy(dst + lo, plane + start + lo, (size_t)(hi - lo) * sizeof *dst);
    /* column by column: a row's few edge zeros would each be a memset call */
    for (int64_t j = 0; j < j0; j++)
        for (int64_t i = 0; i < i1 - i0; i++) dst[i * g->ow + j] = 0;
    for (int64_t j = j1; j < g->ow; j++)
        for (int64_t i = 0; i < i1 - i0; i++) dst[i * g->ow + j] = 0;
}

/* One image's columns: row (ci, p, q) at col + ((ci kh + p) kw + q) ld. The bounds of a
 * window position are the same for every channel, so they are found once per (p, q)
 * (their divisions cost as much as a small plane's copy). */
static void im2col(float *col, int64_t ld, const float *x, const ed_conv_geom *g)
{
    bool runs = g->sh == 1 && g->sw == 1 && g->w == g->ow;
    int64_t taps = g->kh * g->kw, image = g->h * g->w;
    for (int64_t p = 0; p < g->kh; p++) {
        int64_t i0, i1;
        inside_rows(g, p, &i0, &i1);
        for (int64_t q = 0; q < g->kw; q++) {
            int64_t j0, j1, off = q * g->dw - g->pw;
            inside_cols(g, q, &j0, &j1);
            for (int64_t ci = 0; ci < g->cg; ci++) {
                float *row = col + (ci * taps + p * g->kw + q) * ld;
                if (i0 > 0) memset(row, 0, (size_t)(i0 * g->ow) * sizeof *row);
                if (i1 < g->oh) memset(row + i1 * g->ow, 0, (size_t)((g->oh - i1) * g->ow) * sizeof *row);
                const float *plane = x + ci * image;
                if (runs) {
                    int64_t r0 = i0 - g->ph + p * g->dh;
                    im2col_rows(row + i0 * g->ow, plane, r0 * g->w + off, g, i0, i1, j0, j1);
                    continue;
                }
                for (int64_t i = i0; i < i1; i++) {
                    const float *src = plane + (i * g->sh - g->ph + p * g->dh) * g->w;
                    float *dst = row + i * g->ow;
                    if (g->sw == 1) memcpy(dst + j0, src + off + j0, (size_t)(j1 - j0) * sizeof *dst);
                    else
                        for (int64_t j = j0; j < j1; j++) dst[j] = src[off + j * g->sw];
                }
                for (int64_t j = 0; j < j0; j++) /* edge zeros column by column, as above */
                    for (int64_t i = i0; i < i1; i++) row[i * g->ow + j] = 0;
                for (int64_t j = j1; j < g->ow; j++)
                    for (int64_t i = i0; i < i1; i++) row[i * g->ow + j] = 0;
            }
        }
    }
}

/* x = the columns put back where im2col read them, summed (x holds cg channels of
 * h x w). Each channel is zeroed just before its sums, while it is in cache. */
static void col2im(float *x, const float *col, int64_t ld, const ed_conv_geom *g)
{
    for (int64_t ci = 0; ci < g->cg; ci++) {
        memset(x + ci * g->h * g->w, 0, (size_t)(g->h * g->w) * sizeof *x);
        for (int64_t p = 0; p < g->kh; p++)
            for (int64_t q = 0; q < g->kw; q++) {
                const float *row = col + ((ci * g->kh + p) * g->kw + q) * ld;
                int64_t j0, j1, off = q * g->dw - g->pw;
                inside_cols(g, q, &j0, &j1);
                for (int64_t i = 0; i < g->oh; i++) {
                    int64_t r = i * g->sh - g->ph + p * g->dh;
                    if (r < 0 || r >= g->h) continue;
                    float *restrict dst = x + (ci * g->h + r) * g->w + off;
                    const float *restrict src = row + i * g->ow;
                    if (g->sw == 1) /* a separate loop so that it vectorizes */
                        for (int64_t j = j0; j < j1; j++) dst[j] += src[j];
                    else
                        for (int64_t j = j0; j < j1; j++) dst[j * g->sw] += src[j];
                }
            }
    }
}

/* The og output planes of group grp for images b0 .. b0 + nb of y [n, o, plane], as
 * og x nb plane (to_chunk), or back. */
static void gather_outputs(float *chunk, const float *y, const ed_conv_geom *g, int64_t b0, int64_t nb, int64_t grp)
{
    int64_t plane = g->oh * g->ow;
    for (int64_t o = 0; o < g->og; o++)
        for (int64_t b = 0; b < nb; b++)
            memcpy(chunk + (o * nb + b) * plane, y + ((b0 + b) * g->o + grp * g->og + o) * plane,
                   (size_t)plane * sizeof *y);
}

static void scatter_outputs(float *y, const float *chunk, const ed_conv_geom *g, int64_t b0, int64_t nb, int64_t grp)
{
    int64_t plane = g->oh * g->ow;
    for (int64_t o = 0; o < g->og; o++)
        for (int64_t b = 0; b < nb; b++)
            memcpy(y + ((b0 + b) * g->o + grp * g->og + o) * plane, chunk + (o * nb + b) * plane,
                   (size_t)plane * sizeof *y);
}

/* The columns of images b0 .. b0 + nb of group grp, or x itself when that is them. */
static const float *columns(float *col, const float *x, const ed_conv_geom *g, int64_t b0, int64_t nb, int64_t grp)
{
    int64_t plane = g->oh * g->ow, image = g->h * g->w;
    if (nb == 1 && is_pointwise(g)) return x + (b0 * g->c + grp * g->cg) * image;
    for (int64_t b = 0; b < nb; b++)
        im2col(col + b * plane, nb * plane, x + ((b0 + b) * g->c + grp * g->cg) * image, g);
    return col;
}

/* The caller's epilogue over finished output images. */
typedef struct {
    ed_conv_epilogue fn;
    void *ctx;
} epilogue;

static void finish(const epilogue *e, int64_t b0, int64_t b1)
{
    if (e->fn && b1 > b0) e->fn(e->ctx, b0, b1);
}

/* ---- stride 1 as one sgemm per tap ----------------------------------------------------
 * With the input padded once into planes hp x wp (wp = w + 2 pw), tap (p, q) of a stride-1
 * convolution reads, for the output pixel at row i and column j, the padded pixel
 * (i + p dh) wp + j + q dw: one run of oh wp floats per channel from offset p dh wp + q dw,
 * channels a plane apart. So the taps are og x cg by cg x oh wp sgemms summed with beta 1,
 * straight from the padded planes with no im2col; the wp - ow extra columns per output row
 * read past the row (or into the next channel) and are dropped when the rows are copied
 * out. Measured (bench/HISTORY.md, "shifted taps"): 15-22% faster than im2col for fewer
 * outputs than inputs on 28x28 planes (48 -> 16, 32 -> 16), where im2col's columns are
 * large and its sgemm narrow; slower at 14x14 and 7x7 and for more outputs than inputs,
 * where each tap's sum over only cg channels costs more than the copy it saves. */
#define SHIFT_MIN_PLANE 512

static bool shifts(const ed_conv_geom *g)
{
    return g->sh == 1 && g->sw == 1 && !is_pointwise(g) && g->og < g->cg && g->oh * g->ow >= SHIFT_MIN_PLANE;
}

typedef struct {
    int64_t wp, plane, taps; /* padded row and plane, kh kw */
    int64_t weights, input;  /* float offsets of the per-tap weights and the padded planes */
    int64_t out, total;      /* of the og x oh wp outputs, and the floats of it all */
} shift_layout;

/* Each piece starts on a cache line. */
static int64_t line_up(int64_t floats) { return (floats + 15) / 16 * 16; }

static shift_layout shift_layout_of(const ed_conv_geom *g)
{
    shift_layout s;
    s.wp = g->w + 2 * g->pw;
    s.plane = (g->h + 2 * g->ph) * s.wp;
    s.taps = g->kh * g->kw;
    s.weights = 0;
    s.input = line_up(s.taps * g->o * g->cg);
    /* the last tap reads (kw - 1) dw floats past the last plane, in the dropped columns */
    s.out = s.input + line_up(g->cg * s.plane + (g->kw - 1) * g->dw);
    s.total = s.out + g->og * g->oh * s.wp;
    return s;
}

/* The cg channels of one image and group into the interior of the padded planes. */
static void pad_channels(float *padded, const float *xg, const ed_conv_geom *g, const shift_layout *s)
{
    for (int64_t ci = 0; ci < g->cg; ci++)
        for (int64_t r = 0; r < g->h; r++)
            memcpy(padded + ci * s->plane + (r + g->ph) * s->wp + g->pw, xg + (ci * g->h + r) * g->w,
                   (size_t)g->w * sizeof *padded);
}

static void conv2d_shifted(float *y, const float *x, const float *w, const ed_conv_geom *g, float *scratch, int64_t b0,
                           int64_t b1, const epilogue *epi)
{
    shift_layout s = shift_layout_of(g);
    float *wt = scratch + s.weights, *padded = scratch + s.input, *out = scratch + s.out;
    int64_t image = g->h * g->w, plane = g->oh * g->ow, ncols = g->oh * s.wp;
    /* wt [grp, tap, oi, ci] = w [grp og + oi, ci, tap]: each tap's weights as an og x cg matrix */
    for (int64_t grp = 0; grp < g->groups; grp++)
        for (int64_t t = 0; t < s.taps; t++)
            for (int64_t oi = 0; oi < g->og; oi++)
                for (int64_t ci = 0; ci < g->cg; ci++)
                    wt[((grp * s.taps + t) * g->og + oi) * g->cg + ci] =
                        w[((grp * g->og + oi) * g->cg + ci) * s.taps + t];
    /* the borders stay zero: every image writes the same interior */
    memset(padded, 0, (size_t)(s.out - s.input) * sizeof *padded);
    for (int64_t b = b0; b < b1; b++)
        for (int64_t grp = 0; grp < g->groups; grp++) {
            pad_channels(padded, x + (b * g->c + grp * g->cg) * image, g, &s);
            for (int64_t t = 0; t < s.taps; t++) {
                int64_t p = t / g->kw, q = t % g->kw;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)g->og, (blasint)ncols, (blasint)g->cg,
                            1.0f, wt + (grp * s.taps + t) * g->og * g->cg, (blasint)g->cg,
                            padded + p * g->dh * s.wp + q * g->dw, (blasint)s.plane, t ? 1.0f : 0.0f, out,
                            (blasint)ncols);
            }
            float *yg = y + (b * g->o + grp * g->og) * plane;
            for (int64_t oi = 0; oi < g->og; oi++)
                for (int64_t i = 0; i < g->oh; i++)
                    memcpy(yg + oi * plane + i * g->ow, out + oi * ncols + i * s.wp, (size_t)g->ow * sizeof *yg);
            if (grp == g->groups - 1) finish(epi, b, b + 1);
        }
}

/* The weight gradient tap by tap: dw_t += dy' X_t^T per image, dy' being dy's rows widened
 * to wp with zeros in the extra columns (so the columns read past a row add nothing). */
static void weight_grad_shifted(float *dw, const float *x, const float *dy, const ed_conv_geom *g, float *scratch,
                                int64_t b0, int64_t b1)
{
    shift_layout s = shift_layout_of(g);
    float *dwt = scratch + s.weights, *padded = scratch + s.input, *dyw = scratch + s.out;
    int64_t image = g->h * g->w, plane = g->oh * g->ow, ncols = g->oh * s.wp;
    memset(dwt, 0, (size_t)(s.taps * g->o * g->cg) * sizeof *dwt);
    memset(padded, 0, (size_t)(s.out - s.input) * sizeof *padded);
    memset(dyw, 0, (size_t)(g->og * ncols) * sizeof *dyw);
    for (int64_t b = b0; b < b1; b++)
        for (int64_t grp = 0; grp < g->groups; grp++) {
            pad_channels(padded, x + (b * g->c + grp * g->cg) * image, g, &s);
            const float *dyg = dy + (b * g->o + grp * g->og) * plane;
            for (int64_t oi = 0; oi < g->og; oi++)
                for (int64_t i = 0; i < g->oh; i++)
                    memcpy(dyw + oi * ncols + i * s.wp, dyg + oi * plane + i * g->ow, (size_t)g->ow * sizeof *dyw);
            for (int64_t t = 0; t < s.taps; t++) {
                int64_t p = t / g->kw, q = t % g->kw;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)g->og, (blasint)g->cg, (blasint)ncols,
                            1.0f, dyw, (blasint)ncols, padded + p * g->dh * s.wp + q * g->dw, (blasint)s.plane, 1.0f,
                            dwt + (grp * s.taps + t) * g->og * g->cg, (blasint)g->cg);
            }
        }
    for (int64_t grp = 0; grp < g->groups; grp++)
        for (int64_t t = 0; t < s.taps; t++)
            for (int64_t oi = 0; oi < g->og; oi++)
                for (int64_t ci = 0; ci < g->cg; ci++)
                    dw[((grp * g->og + oi) * g->cg + ci) * s.taps + t] =
                        dwt[((grp * s.taps + t) * g->og + oi) * g->cg + ci];
}

/* ---- one op over a range of images ------------------------------------------------- */

/* Floats of one part's scratch: the larger of the two forms', on a cache line. */
static int64_t part_floats(const ed_conv_geom *g)
{
    int64_t im2col = (g->cg * g->kh * g->kw + g->og) * ed_conv_gemm_chunk_max(g) * g->oh * g->ow;
    int64_t shifted = shifts(g) ? shift_layout_of(g).total : 0;
    return line_up(shifted > im2col ? shifted : im2col);
}

/* y of images [b0, b1), each chunk's then finished. */
static void conv2d_images(float *y, const float *x, const float *w, const ed_conv_geom *g, float *col, int64_t b0,
                          int64_t b1, const epilogue *epi)
{
    int64_t k = g->cg * g->kh * g->kw, plane = g->oh * g->ow, chunk = chunk_of(g);
    if (chunk == 1 && shifts(g)) {
        conv2d_shifted(y, x, w, g, col, b0, b1, epi);
        return;
    }
    float *out = col + k * chunk * plane;
    for (int64_t c0 = b0; c0 < b1; c0 += chunk) {
        int64_t nb = b1 - c0 < chunk ? b1 - c0 : chunk, ncols = nb * plane;
        for (int64_t grp = 0; grp < g->groups; grp++) {
            const float *cols = columns(col, x, g, c0, nb, grp);
            float *dst = nb == 1 ? y + (c0 * g->o + grp * g->og) * plane : out;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)g->og, (blasint)ncols, (blasint)k, 1.0f,
                        w + grp * g->og * k, (blasint)k, cols, (blasint)ncols, 0.0f, dst, (blasint)ncols);
            if (nb > 1) scatter_outputs(y, out, g, c0, nb, grp);
        }
        finish(epi, c0, c0 + nb);
    }
}

/* x of images [b0, b1) as col2im(W^T dy), each chunk's then finished. */
static void transpose_images(float *x, const float *y, const float *w, const ed_conv_geom *g, float *col, int64_t b0,
                             int64_t b1, const epilogue *epi)
{
    int64_t k = g->cg * g->kh * g->kw, plane = g->oh * g->ow, image = g->h * g->w, chunk = chunk_of(g);
    float *dys = col + k * chunk * plane;
    for (int64_t c0 = b0; c0 < b1; c0 += chunk) {
        int64_t nb = b1 - c0 < chunk ? b1 - c0 : chunk, ncols = nb * plane;
        for (int64_t grp = 0; grp < g->groups; grp++) {
            const float *dy = y + (c0 * g->o + grp * g->og) * plane;
            if (nb > 1) gather_outputs(dys, y, g, c0, nb, grp), dy = dys;
            bool direct = nb == 1 && is_pointwise(g); /* the columns are x itself */
            float *xg = x + (c0 * g->c + grp * g->cg) * image;
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (blasint)k, (blasint)ncols, (blasint)g->og, 1.0f,
                        w + grp * g->og * k, (blasint)k, dy, (blasint)ncols, 0.0f, direct ? xg : col, (blasint)ncols);
            if (direct) continue;
            for (int64_t b = 0; b < nb; b++)
                col2im(x + ((c0 + b) * g->c + grp * g->cg) * image, col + b * plane, ncols, g);
        }
        finish(epi, c0, c0 + nb);
    }
}

/* dw = the sum over images [b0, b1) of dy_b col_b^T. */
static void weight_grad_images(float *dw, const float *x, const float *dy, const ed_conv_geom *g, float *col,
                               int64_t b0, int64_t b1, const epilogue *epi)
{
    (void)epi; /* a sum over images: nothing is finished before the end */
    int64_t k = g->cg * g->kh * g->kw, plane = g->oh * g->ow, chunk = chunk_of(g);
    if (chunk == 1 && shifts(g)) {
        weight_grad_shifted(dw, x, dy, g, col, b0, b1);
        return;
    }
    memset(dw, 0, (size_t)(g->o * k) * sizeof *dw);
    float *dys = col + k * chunk * plane;
    for (int64_t c0 = b0; c0 < b1; c0 += chunk) {
        int64_t nb = b1 - c0 < chunk ? b1 - c0 : chunk, ncols = nb * plane;
        for (int64_t grp = 0; grp < g->groups; grp++) {
            const float *dyg = dy + (c0 * g->o + grp * g->og) * plane;
            if (nb > 1) gather_outputs(dys, dy, g, c0, nb, grp), dyg = dys;
            const float *cols = columns(col, x, g, c0, nb, grp);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)g->og, (blasint)k, (blasint)ncols, 1.0f, dyg,
                        (blasint)ncols, cols, (blasint)ncols, 1.0f, dw + grp * g->og * k, (blasint)k);
        }
    }
}

/* ---- the images of a call in parts over the thread pool ------------------------------
 * Part p takes images [p n / P, (p + 1) n / P) with its own scratch (P = ED_CONV_GEMM_PARTS,
 * a constant, not the thread count), so the parts run on the pool's threads in any order,
 * OpenBLAS at one thread inside each. The weight gradient sums each part's images into the
 * part's own partial and then adds the partials in part order: the same bits at any
 * thread count. */

typedef void (*images_fn)(float *out, const float *a, const float *b, const ed_conv_geom *g, float *scratch, int64_t b0,
                          int64_t b1, const epilogue *epi);

typedef struct {
    images_fn fn;
    float *out;
    const float *a, *b;
    const ed_conv_geom *g;
    float *scratch;
    int64_t part_floats; /* scratch per part */
    int64_t out_floats;  /* out per part: 0 when the parts write disjoint images of one out */
    epilogue epi;
} parts_job;

static void run_parts(void *ctx, int64_t begin, int64_t end, int worker)
{
    const parts_job *j = ctx;
    (void)worker; /* a part's scratch is its own, whichever thread runs it */
    for (int64_t p = begin; p < end; p++)
        j->fn(j->out + p * j->out_floats, j->a, j->b, j->g, j->scratch + p * j->part_floats,
              p * j->g->n / ED_CONV_GEMM_PARTS, (p + 1) * j->g->n / ED_CONV_GEMM_PARTS, &j->epi);
}

static void over_parts(parts_job *j)
{
    if (ed_pool_threads() <= 1 || j->g->n <= 1) {
        run_parts(j, 0, ED_CONV_GEMM_PARTS, 0);
        return;
    }
    int blas = openblas_get_num_threads();
    if (blas > 1) openblas_set_num_threads(1);
    ed_pool_run(ED_CONV_GEMM_PARTS, 1, run_parts, j);
    if (blas > 1) openblas_set_num_threads(blas);
}

int64_t ed_conv_gemm_scratch(const ed_conv_geom *g) { return ED_CONV_GEMM_PARTS * part_floats(g); }

void ed_conv2d_gemm_f32(float *y, const float *x, const float *w, const ed_conv_geom *g, float *col,
                        ed_conv_epilogue epi, void *epi_ctx)
{
    int64_t k = g->cg * g->kh * g->kw, plane = g->oh * g->ow;
    if (k == 0) { /* an empty sum: BLAS may not touch C */
        memset(y, 0, (size_t)(g->n * g->o * plane) * sizeof *y);
        finish(&(epilogue){epi, epi_ctx}, 0, g->n);
        return;
    }
    over_parts(&(parts_job){conv2d_images, y, x, w, g, col, part_floats(g), 0, {epi, epi_ctx}});
}

/* At stride 1 the input gradient is itself a convolution: dy convolved with the kernel
 * flipped in both axes, its in and out channels swapped, padded by d (k - 1) - p. That is
 * im2col row copies and one sgemm, where col2im would scatter-add every column row (W9:
 * col2im was 12% of a U-Net step). Not when the padding exceeds the kernel's reach, which
 * would pad negatively. */
static bool flips(const ed_conv_geom *g)
{
    return g->sh == 1 && g->sw == 1 && !is_pointwise(g) && g->ph <= g->dh * (g->kh - 1) && g->pw <= g->dw * (g->kw - 1);
}

/* The convolution whose output is x: dy [n, o, oh, ow] in, x [n, c, h, w] out. */
static ed_conv_geom flipped_geom(const ed_conv_geom *g)
{
    ed_conv_geom f = *g;
    f.c = g->o, f.h = g->oh, f.w = g->ow, f.cg = g->og;
    f.o = g->c, f.oh = g->h, f.ow = g->w, f.og = g->cg;
    f.ph = g->dh * (g->kh - 1) - g->ph, f.pw = g->dw * (g->kw - 1) - g->pw;
    return f;
}

/* Floats of the flipped kernel, on a cache line so that the parts after it stay aligned. */
static int64_t flipped_kernel_floats(const ed_conv_geom *g) { return line_up(g->o * g->cg * g->kh * g->kw); }

int64_t ed_conv_transpose_gemm_scratch(const ed_conv_geom *g)
{
    if (!flips(g)) return ed_conv_gemm_scratch(g);
    ed_conv_geom f = flipped_geom(g);
    return flipped_kernel_floats(g) + ed_conv_gemm_scratch(&f);
}

/* wf [grp, ci, oi, p, q] = w [grp, oi, ci, kh - 1 - p, kw - 1 - q]. */
static void flip_kernel(float *wf, const float *w, const ed_conv_geom *g)
{
    int64_t taps = g->kh * g->kw;
    for (int64_t grp = 0; grp < g->groups; grp++)
        for (int64_t ci = 0; ci < g->cg; ci++)
            for (int64_t oi = 0; oi < g->og; oi++) {
                const float *src = w + ((grp * g->og + oi) * g->cg + ci) * taps;
                float *dst = wf + ((grp * g->cg + ci) * g->og + oi) * taps;
                for (int64_t t = 0; t < taps; t++) dst[t] = src[taps - 1 - t];
            }
}

void ed_conv_transpose2d_gemm_f32(float *x, const float *y, const float *w, const ed_conv_geom *g, float *col,
                                  ed_conv_epilogue epi, void *epi_ctx)
{
    int64_t k = g->cg * g->kh * g->kw, plane = g->oh * g->ow, image = g->h * g->w;
    if (g->og == 0 || k == 0 || plane == 0) {
        memset(x, 0, (size_t)(g->n * g->c * image) * sizeof *x);
        finish(&(epilogue){epi, epi_ctx}, 0, g->n);
        return;
    }
    if (flips(g)) { /* the same images, so the epilogue follows */
        ed_conv_geom f = flipped_geom(g);
        flip_kernel(col, w, g);
        ed_conv2d_gemm_f32(x, y, col, &f, col + flipped_kernel_floats(g), epi, epi_ctx);
        return;
    }
    over_parts(&(parts_job){transpose_images, x, y, w, g, col, part_floats(g), 0, {epi, epi_ctx}});
}

/* The parts' scratch, then their partial sums. */
int64_t ed_conv_weight_grad_gemm_scratch(const ed_conv_geom *g)
{
    return ED_CONV_GEMM_PARTS * (part_floats(g) + line_up(g->o * g->cg * g->kh * g->kw));
}

void ed_conv2d_weight_grad_gemm_f32(float *dw, const float *x, const float *dy, const ed_conv_geom *g, float *col)
{
    int64_t k = g->cg * g->kh * g->kw, plane = g->oh * g->ow, size = g->o * k;
    memset(dw, 0, (size_t)size * sizeof *dw);
    if (plane == 0 || g->og == 0 || k == 0) return;
    int64_t part = part_floats(g), stride = line_up(size);
    float *partials = col + ED_CONV_GEMM_PARTS * part;
    over_parts(&(parts_job){weight_grad_images, partials, x, dy, g, col, part, stride, {NULL, NULL}});
    for (int64_t p = 0; p < ED_CONV_GEMM_PARTS; p++)
        for (int64_t i = 0; i < size; i++) dw[i] += partials[p * stride + i];
}
