/* The convolution ops as plain loops over ir/conv.h's rule, accumulated in double in a
 * fixed order (the JIT's direct lowering keeps the same order, so the same bits). Terms
 * that fall in the padding are skipped, not multiplied by zero. */
#include "interp/iter.h"
#include "interp/kernels.h"
#include "ir/conv.h"

static int64_t at4(int64_t d1, int64_t d2, int64_t d3, int64_t i0, int64_t i1, int64_t i2, int64_t i3)
{
    return ((i0 * d1 + i1) * d2 + i2) * d3 + i3;
}

/* y[n,o,i,j] = sum over (ci, p, q) of x[n, group(o)*cg+ci, i*sh-ph+p*dh, j*sw-pw+q*dw] w[o,ci,p,q] */
ED_KERNEL(ed_k_conv2d)
{
    (void)ctx;
    const ed_tensor *x = in[0], *w = in[1];
    ed_conv_geom g = ed_conv_geom_of(n);
    for (int64_t b = 0; b < g.n; b++)
        for (int64_t o = 0; o < g.o; o++)
            for (int64_t i = 0; i < g.oh; i++)
                for (int64_t j = 0; j < g.ow; j++) {
                    double acc = 0;
                    int64_t c0 = o / g.og * g.cg;
                    for (int64_t ci = 0; ci < g.cg; ci++)
                        for (int64_t p = 0; p < g.kh; p++) {
                            int64_t r = i * g.sh - g.ph + p * g.dh;
                            if (r < 0 || r >= g.h) continue;
                            for (int64_t q = 0; q < g.kw; q++) {
                                int64_t s = j * g.sw - g.pw + q * g.dw;
                                if (s < 0 || s >= g.w) continue;
                                acc += interp_get(x, at4(g.c, g.h, g.w, b, c0 + ci, r, s)) *
                                       interp_get(w, at4(g.cg, g.kh, g.kw, o, ci, p, q));
                            }
                        }
                    interp_set(out, at4(g.o, g.oh, g.ow, b, o, i, j), acc);
                }
}

/* x[n,c,r,s] = sum over (oi, p, q) of y[n, group(c)*og+oi, i, j] w[group(c)*og+oi, c', p, q]
 * where r = i*sh-ph+p*dh and s = j*sw-pw+q*dw for whole i, j in range. */
ED_KERNEL(ed_k_conv_transpose2d)
{
    (void)ctx;
    const ed_tensor *y = in[0], *w = in[1];
    ed_conv_geom g = ed_conv_geom_of(n);
    for (int64_t b = 0; b < g.n; b++)
        for (int64_t c = 0; c < g.c; c++)
            for (int64_t r = 0; r < g.h; r++)
                for (int64_t s = 0; s < g.w; s++) {
                    double acc = 0;
                    int64_t o0 = c / g.cg * g.og, cl = c % g.cg;
                    for (int64_t oi = 0; oi < g.og; oi++)
                        for (int64_t p = 0; p < g.kh; p++) {
                            int64_t ti = r + g.ph - p * g.dh, i = ti / g.sh;
                            if (ti < 0 || ti % g.sh || i >= g.oh) continue;
                            for (int64_t q = 0; q < g.kw; q++) {
                                int64_t tj = s + g.pw - q * g.dw, j = tj / g.sw;
                                if (tj < 0 || tj % g.sw || j >= g.ow) continue;
                                acc += interp_get(y, at4(g.o, g.oh, g.ow, b, o0 + oi, i, j)) *
                                       interp_get(w, at4(g.cg, g.kh, g.kw, o0 + oi, cl, p, q));
                            }
                        }
                    interp_set(out, at4(g.c, g.h, g.w, b, c, r, s), acc);
                }
}

/* dw[o,ci,p,q] = sum over (n, i, j) of dy[n,o,i,j] x[n, group(o)*cg+ci, i*sh-ph+p*dh, j*sw-pw+q*dw] */
ED_KERNEL(ed_k_conv2d_weight_grad)
{
    (void)ctx;
    const ed_tensor *x = in[0], *dy = in[1];
    ed_conv_geom g = ed_conv_geom_of(n);
    for (int64_t o = 0; o < g.o; o++)
        for (int64_t ci = 0; ci < g.cg; ci++)
            for (int64_t p = 0; p < g.kh; p++)
                for (int64_t q = 0; q < g.kw; q++) {
                    double acc = 0;
                    int64_t c = o / g.og * g.cg + ci;
                    for (int64_t b = 0; b < g.n; b++)
                        for (int64_t i = 0; i < g.oh; i++) {
                            int64_t r = i * g.sh - g.ph + p * g.dh;
                            if (r < 0 || r >= g.h) continue;
                            for (int64_t j = 0; j < g.ow; j++) {
                                int64_t s = j * g.sw - g.pw + q * g.dw;
                                if (s < 0 || s >= g.w) continue;
                                acc += interp_get(dy, at4(g.o, g.oh, g.ow, b, o, i, j)) *
                                       interp_get(x, at4(g.c, g.h, g.w, b, c, r, s));
                            }
                        }
                    interp_set(out, at4(g.cg, g.kh, g.kw, o, ci, p, q), acc);
                }
}
