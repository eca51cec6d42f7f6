/* PNG pictures with libpng: 2-D scatter plots and grids of images.
 *
 * Both writers build an 8-bit RGB image in memory and write it atomically (temporary
 * file, fsync, rename: io/atomic_file.h), so an interrupted run never leaves a
 * torn PNG. Failures return ED_ERR with one line in ed_last_error() naming the file. */
#ifndef ED_PLOT_H
#define ED_PLOT_H

#include "runtime/tensor.h"

#include <stdbool.h>
#include <stdint.h>

/* Largest width or height accepted for either picture. */
#define ED_PLOT_MAX_SIDE 8192

/* Scatter plot: white background, a dark-grey axes box with a 16-pixel margin, light
 * grey lines at x = 0 and y = 0 when they are in view, then the optional `under` set
 * and the `points` set on top, each point an anti-aliased filled dot blended with the
 * given opacity. Points outside the bounds or not finite are not drawn. No text is
 * drawn; the bounds and the number of points drawn are written into the PNG as a tEXt
 * "Description" chunk ("x [a, b] y [c, d]; points: k of n drawn; under: ...").
 * Zero fields mean the defaults in brackets. */
typedef struct {
    int width, height;   /* [512, 512] pixels, each 64..ED_PLOT_MAX_SIDE */
    bool fixed_bounds;   /* use the bounds below as given (min < max, finite) */
    double xmin, xmax, ymin, ymax;
    double radius;       /* [1.6] dot radius in pixels, 0.5..32 */
    double alpha;        /* [0.75] dot opacity, in (0, 1] */
    uint32_t color;      /* [0x1f77b4, blue] 0xRRGGBB of `points`; 0 means the default,
                            so pure black is 0x010101 */
    uint32_t under_color; /* [0xa0a0a0, grey] of `under` */
} ed_scatter_opts;

/* points (and under, which may be NULL): f32 or f64 [N, D] with D >= 2; columns 0 and 1
 * are x and y. Automatic bounds: the range of the finite points of `under` if it has
 * any (so samples are seen against the data, and a few wild samples cannot squash the
 * picture), else of `points` (else [-1, 1]^2), plus 5% on each side, then the narrower
 * range widened so one unit is as long on both axes. opts may be NULL. */
int ed_plot_scatter(const char *path, const ed_tensor *points, const ed_tensor *under,
                    const ed_scatter_opts *opts);

/* Grid of images: images is f32 or f64 [N, H, W] (grey) or [N, H, W, C] with C = 1
 * (grey) or 3 (RGB), values in [0, 1] (clamped; 0 is black; NaN is drawn red). Tiles
 * are laid out row by row, cols per row (0: ceil(sqrt(N))), each pixel scaled up to
 * scale x scale pixels (0: 1; at most 64), with 2-pixel mid-grey gaps around the tiles.
 * The resulting picture must fit in ED_PLOT_MAX_SIDE on each side. */
int ed_plot_image_grid(const char *path, const ed_tensor *images, int cols, int scale);

#endif
