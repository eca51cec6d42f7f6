/* PNG pictures with libpng: 2-D scatter plots, line charts and grids of images.
 *
 * Every writer builds an 8-bit RGB image in memory and writes it atomically (temporary
 * file, fsync, rename: io/atomic_file.h), so an interrupted run never leaves a
 * torn PNG. Failures return ED_ERR with one line in ed_last_error() naming the file. */
#ifndef ED_PLOT_H
#define ED_PLOT_H

#include "runtime/tensor.h"

#include <stdbool.h>
#include <stdint.h>

/* Largest width or height accepted for either picture. */
#define ED_PLOT_MAX_SIDE 8192

/* Scatter plot on a white background: the optional `under` set, then the `points` set on
 * top, each point an anti-aliased filled dot blended with the given opacity; points
 * outside the bounds or not finite are not drawn. Around the plot area: a dark-grey
 * box with ticks at round numbers labelled in a built-in 5x7 font, a light grid at the
 * ticks and light-grey lines at x = 0 and y = 0 when in view; above it a legend (when
 * `under` is given or `label` is set: a dot and the name of each set); below it the
 * caption, wrapped at spaces to the picture's width. Text is drawn twice as large when
 * the picture is at least 360 pixels both ways. `bare` drops the text and grid and
 * keeps a 16-pixel margin around the area. The PNG carries a tEXt "Description":
 * "x [a, b] y [c, d]; points: k of n drawn; under: ...; area x X0..X1 y Y0..Y1" (the
 * plot area's pixels, inclusive). Zero fields mean the defaults in brackets. */
typedef struct {
    int width, height;   /* [512, 512] pixels, each 64..ED_PLOT_MAX_SIDE */
    bool fixed_bounds;   /* use the bounds below as given (min < max, finite) */
    double xmin, xmax, ymin, ymax;
    double radius;       /* [1.6] dot radius in pixels, 0.5..32 */
    double alpha;        /* [0.75] dot opacity, in (0, 1] */
    uint32_t color;      /* [0x1f77b4, blue] 0xRRGGBB of `points`; 0 means the default,
                            so pure black is 0x010101 */
    uint32_t under_color; /* [0xa0a0a0, grey] of `under` */
    bool bare;            /* no text, grid or legend: the plain picture */
    const char *label;       /* ["samples"] the legend's name for `points` */
    const char *under_label; /* ["data"] ... for `under` */
    const char *caption;     /* [none] e.g. the model, the step and eval figures; '\n'
                                starts a new line; at most 4096 characters */
} ed_scatter_opts;

/* points (and under, which may be NULL): f32 or f64 [N, D] with D >= 2; columns 0 and 1
 * are x and y. Automatic bounds: the range of the finite points of `under` if it has
 * any (so samples are seen against the data, and a few wild samples cannot squash the
 * picture), else of `points` (else [-1, 1]^2), plus 5% on each side, then the narrower
 * range widened so one unit is as long on both axes. opts may be NULL. */
int ed_plot_scatter(const char *path, const ed_tensor *points, const ed_tensor *under,
                    const ed_scatter_opts *opts);

/* Line chart: each series is drawn as an anti-aliased polyline through (x[i], y[i])
 * (a non-finite value breaks the line), in the frame the scatter plot has: ticks with
 * labels, a light grid, a legend above naming every series that has a name, and the
 * caption below. Bounds: the range of the finite x, and of the finite values of every
 * series plus 5% above and below ([-1, 1] when there are none). */
typedef struct {
    const char *name; /* legend text, or NULL to leave the series out of the legend */
    const double *y;  /* n values */
    uint32_t color;   /* 0xRRGGBB; 0: the i-th colour of a built-in palette */
    double width;     /* [1.5] line width in pixels, at most 16 (doubled with the text) */
} ed_series;

typedef struct {
    int width, height;   /* [720, 450] pixels, each 64..ED_PLOT_MAX_SIDE */
    const char *caption; /* [none] as for ed_scatter_opts */
} ed_line_opts;

/* x: n values (n >= 1), nondecreasing is not required; 1..16 series. opts may be NULL. */
int ed_plot_lines(const char *path, const double *x, int64_t n, const ed_series *series, int nseries,
                  const ed_line_opts *opts);

/* Grid of images: images is f32 or f64 [N, H, W] (grey) or [N, H, W, C] with C = 1
 * (grey) or 3 (RGB), values in [0, 1] (clamped; 0 is black; NaN is drawn red). Tiles
 * are laid out row by row, cols per row (0: ceil(sqrt(N))), each pixel scaled up to
 * scale x scale pixels (0: 1; at most 64), with 2-pixel mid-grey gaps around the tiles.
 * The resulting picture must fit in ED_PLOT_MAX_SIDE on each side. */
int ed_plot_image_grid(const char *path, const ed_tensor *images, int cols, int scale);
/* The same for channels-first images [N, C, H, W] with C = 1 or 3 (the data sets' and
 * the image models' layout). */
int ed_plot_image_grid_nchw(const char *path, const ed_tensor *images, int cols, int scale);

#endif
