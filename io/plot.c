/* Scatter plots and image grids, drawn on an io/canvas.h picture. */
#include "io/plot.h"
#include "io/canvas.h"
#include "io/plot_frame.h"
#include "runtime/error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MARGIN 16
#define GAP 2

/* ---- scatter plots --------------------------------------------------------------------- */

typedef ed_bounds bounds;

static int check_points(const char *path, const ed_tensor *t, const char *role)
{
    if (!t)
        return role[0] == 'p' ? ed_fail("%s: no points to plot", path) : ED_OK;
    if (ed_dtype_is_float(t->dtype) && t->shape.rank == 2 && t->shape.dim[1] >= 2)
        return ED_OK;
    char type[96];
    return ed_fail("%s: %s must be f32 or f64 [N, D] with D >= 2, got %s", path, role,
                   ed_type_str(t->dtype, t->shape, type, sizeof type));
}

static void point_at(const ed_tensor *t, int64_t i, double *x, double *y)
{
    int64_t d = t->shape.dim[1];
    *x = ed_tensor_get(t, i * d);
    *y = ed_tensor_get(t, i * d + 1);
}

/* Range of the finite points of t; false if there are none. */
static bool data_range(const ed_tensor *t, bounds *b)
{
    bool any = false;
    for (int64_t i = 0; i < t->shape.dim[0]; i++) {
        double x, y;
        point_at(t, i, &x, &y);
        if (!isfinite(x) || !isfinite(y))
            continue;
        if (!any)
            *b = (bounds){x, x, y, y};
        any = true;
        b->xmin = fmin(b->xmin, x);
        b->xmax = fmax(b->xmax, x);
        b->ymin = fmin(b->ymin, y);
        b->ymax = fmax(b->ymax, y);
    }
    return any;
}

/* Widens b by 5% on each side (a degenerate range becomes +-1 around it), then the
 * narrower axis so a unit has the same length in pixels on both axes. */
static bounds auto_bounds(const ed_tensor *points, const ed_tensor *under, int pw, int ph)
{
    bounds b;
    if (!(under && data_range(under, &b)) && !data_range(points, &b))
        b = (bounds){-1, 1, -1, 1};
    double rx = b.xmax - b.xmin, ry = b.ymax - b.ymin;
    double cx = 0.5 * (b.xmin + b.xmax), cy = 0.5 * (b.ymin + b.ymax);
    rx = rx > 0 ? 1.1 * rx : 2.0;
    ry = ry > 0 ? 1.1 * ry : 2.0;
    double units_per_px = fmax(rx / pw, ry / ph);
    rx = units_per_px * pw;
    ry = units_per_px * ph;
    return (bounds){cx - rx / 2, cx + rx / 2, cy - ry / 2, cy + ry / 2};
}

typedef struct {
    ed_canvas *c;
    bounds b;
    int x0, y0, x1, y1; /* the plot area inside the frame, inclusive */
    double radius, alpha;
} plot_area;

/* One dot at data (x, y), clipped to the plot area. Returns whether it is in bounds. */
static bool draw_dot(const plot_area *a, double x, double y, uint32_t color)
{
    if (!isfinite(x) || !isfinite(y) || x < a->b.xmin || x > a->b.xmax || y < a->b.ymin ||
        y > a->b.ymax)
        return false;
    double px = a->x0 + (x - a->b.xmin) / (a->b.xmax - a->b.xmin) * (a->x1 - a->x0 + 1);
    double py = a->y0 + (a->b.ymax - y) / (a->b.ymax - a->b.ymin) * (a->y1 - a->y0 + 1);
    int lo_x = (int)floor(px - a->radius - 1), hi_x = (int)ceil(px + a->radius + 1);
    int lo_y = (int)floor(py - a->radius - 1), hi_y = (int)ceil(py + a->radius + 1);
    for (int iy = lo_y > a->y0 ? lo_y : a->y0; iy <= hi_y && iy <= a->y1; iy++) {
        for (int ix = lo_x > a->x0 ? lo_x : a->x0; ix <= hi_x && ix <= a->x1; ix++) {
            double dx = ix + 0.5 - px, dy = iy + 0.5 - py;
            double cover = a->radius + 0.5 - sqrt(dx * dx + dy * dy);
            if (cover > 0)
                ed_canvas_blend(a->c, ix, iy, color, a->alpha * (cover > 1 ? 1 : cover));
        }
    }
    return true;
}

static int64_t draw_set(const plot_area *a, const ed_tensor *t, uint32_t color)
{
    int64_t drawn = 0;
    for (int64_t i = 0; t && i < t->shape.dim[0]; i++) {
        double x, y;
        point_at(t, i, &x, &y);
        drawn += draw_dot(a, x, y, color);
    }
    return drawn;
}

static void draw_zero_lines(const plot_area *a)
{
    const uint32_t zero_line = 0xdcdcdc;
    const bounds *b = &a->b;
    if (b->xmin < 0 && b->xmax > 0) {
        int x = a->x0 + (int)((0 - b->xmin) / (b->xmax - b->xmin) * (a->x1 - a->x0 + 1));
        ed_canvas_fill(a->c, x, a->y0, x, a->y1, zero_line);
    }
    if (b->ymin < 0 && b->ymax > 0) {
        int y = a->y0 + (int)((b->ymax - 0) / (b->ymax - b->ymin) * (a->y1 - a->y0 + 1));
        ed_canvas_fill(a->c, a->x0, y, a->x1, y, zero_line);
    }
}

static void draw_box(const plot_area *a)
{
    const uint32_t frame = 0x404040;
    ed_canvas_fill(a->c, a->x0 - 1, a->y0 - 1, a->x1 + 1, a->y0 - 1, frame);
    ed_canvas_fill(a->c, a->x0 - 1, a->y1 + 1, a->x1 + 1, a->y1 + 1, frame);
    ed_canvas_fill(a->c, a->x0 - 1, a->y0 - 1, a->x0 - 1, a->y1 + 1, frame);
    ed_canvas_fill(a->c, a->x1 + 1, a->y0 - 1, a->x1 + 1, a->y1 + 1, frame);
}

static int check_scatter_opts(const char *path, const ed_scatter_opts *o)
{
    if (o->caption && strlen(o->caption) > 4096)
        return ed_fail("%s: a caption of %zu characters is too long (4096 at most)", path, strlen(o->caption));
    if (o->width < 64 || o->width > ED_PLOT_MAX_SIDE || o->height < 64 ||
        o->height > ED_PLOT_MAX_SIDE)
        return ed_fail("%s: picture size %dx%d is outside 64..%d", path, o->width, o->height,
                       ED_PLOT_MAX_SIDE);
    if (!(o->radius >= 0.5 && o->radius <= 32) || !(o->alpha > 0 && o->alpha <= 1))
        return ed_fail("%s: dot radius %g must be in 0.5..32 and opacity %g in (0, 1]", path,
                       o->radius, o->alpha);
    if (o->fixed_bounds &&
        !(isfinite(o->xmin) && isfinite(o->xmax) && isfinite(o->ymin) && isfinite(o->ymax) &&
          o->xmin < o->xmax && o->ymin < o->ymax))
        return ed_fail("%s: bounds x [%g, %g] y [%g, %g] must be finite with min < max", path,
                       o->xmin, o->xmax, o->ymin, o->ymax);
    return ED_OK;
}

static ed_scatter_opts scatter_defaults(const ed_scatter_opts *in)
{
    ed_scatter_opts o = in ? *in : (ed_scatter_opts){0};
    o.width = o.width ? o.width : 512;
    o.height = o.height ? o.height : 512;
    o.radius = o.radius != 0 ? o.radius : 1.6;
    o.alpha = o.alpha != 0 ? o.alpha : 0.75;
    o.color = o.color ? o.color : 0x1f77b4;
    o.under_color = o.under_color ? o.under_color : 0xa0a0a0;
    o.label = o.label ? o.label : "samples";
    o.under_label = o.under_label ? o.under_label : "data";
    return o;
}

/* The plot area and bounds: bare, a 16-pixel margin; else the frame's layout, with the
 * automatic bounds fitted to the area it leaves (twice: the y labels' width depends on
 * the bounds). */
static void place_area(plot_area *a, ed_frame *f, const ed_scatter_opts *o, const ed_tensor *points,
                       const ed_tensor *under, bool legend)
{
    a->x0 = MARGIN;
    a->y0 = MARGIN;
    a->x1 = o->width - MARGIN - 1;
    a->y1 = o->height - MARGIN - 1;
    for (int pass = 0; pass < (o->bare ? 1 : 3); pass++) {
        a->b = o->fixed_bounds ? (bounds){o->xmin, o->xmax, o->ymin, o->ymax}
                               : auto_bounds(points, under, a->x1 - a->x0 + 1, a->y1 - a->y0 + 1);
        if (o->bare || pass == 2)
            break;
        ed_frame_layout(f, o->width, o->height, &a->b, legend, o->caption);
        a->x0 = f->x0, a->y0 = f->y0, a->x1 = f->x1, a->y1 = f->y1;
    }
}

int ed_plot_scatter(const char *path, const ed_tensor *points, const ed_tensor *under,
                    const ed_scatter_opts *opts)
{
    if (!path)
        return ed_fail("plot: NULL path");
    ed_scatter_opts o = scatter_defaults(opts);
    if (check_points(path, points, "points") != ED_OK ||
        check_points(path, under, "the under set") != ED_OK ||
        check_scatter_opts(path, &o) != ED_OK)
        return ED_ERR;
    ed_canvas c;
    if (ed_canvas_new(&c, o.width, o.height, 0xffffff, path) != ED_OK)
        return ED_ERR;
    bool legend = !o.bare && (under || (opts && opts->label));
    plot_area a = {.c = &c, .radius = o.radius, .alpha = o.alpha};
    ed_frame f;
    place_area(&a, &f, &o, points, under, legend);
    if (!o.bare)
        ed_frame_grid(&c, &f, &a.b);
    draw_zero_lines(&a);
    draw_box(&a);
    int64_t under_drawn = draw_set(&a, under, o.under_color);
    int64_t drawn = draw_set(&a, points, o.color);
    draw_box(&a); /* the frame stays on top of dots at the edge */
    if (!o.bare) {
        ed_frame_axes(&c, &f, &a.b);
        ed_legend_item items[2] = {{o.label, o.color, false}, {o.under_label, o.under_color, false}};
        if (legend)
            ed_frame_legend(&c, &f, items, under ? 2 : 1);
        ed_frame_caption(&c, &f, o.caption);
    }
    char desc[512];
    int len = snprintf(desc, sizeof desc, "x [%.6g, %.6g] y [%.6g, %.6g]; points: %lld of %lld drawn",
                       a.b.xmin, a.b.xmax, a.b.ymin, a.b.ymax, (long long)drawn,
                       (long long)points->shape.dim[0]);
    if (under && len > 0 && (size_t)len < sizeof desc)
        len += snprintf(desc + len, sizeof desc - (size_t)len, "; under: %lld of %lld drawn",
                        (long long)under_drawn, (long long)under->shape.dim[0]);
    if (len > 0 && (size_t)len < sizeof desc)
        snprintf(desc + len, sizeof desc - (size_t)len, "; area x %d..%d y %d..%d", a.x0, a.x1, a.y0, a.y1);
    int status = ed_canvas_write_png(&c, path, desc);
    ed_canvas_free(&c);
    return status;
}

/* ---- image grids ------------------------------------------------------------------------- */

/* Where element (image n, row y, column x, channel k) lives: offsets by stride. */
typedef struct {
    int64_t n, h, w, channels;
    int64_t n_stride, y_stride, x_stride, c_stride;
} image_layout;

static int check_images(const char *path, const ed_tensor *t, bool channels_first, image_layout *l)
{
    *l = (image_layout){0};
    if (!t)
        return ed_fail("%s: no images to draw", path);
    int rank = t->shape.rank;
    bool ok = ed_dtype_is_float(t->dtype) && (channels_first ? rank == 4 : rank == 3 || rank == 4);
    const int64_t *d = t->shape.dim;
    if (ok && channels_first)
        *l = (image_layout){d[0], d[2], d[3], d[1], d[1] * d[2] * d[3], d[3], 1, d[2] * d[3]};
    else if (ok) {
        int64_t ch = rank == 4 ? d[3] : 1;
        *l = (image_layout){d[0], d[1], d[2], ch, d[1] * d[2] * ch, d[2] * ch, ch, 1};
    }
    ok = ok && (l->channels == 1 || l->channels == 3) && l->n > 0 && l->h > 0 && l->w > 0;
    if (ok)
        return ED_OK;
    char type[96];
    return ed_fail(channels_first ? "%s: images must be f32 or f64 [N, C, H, W] with C = 1 or 3 and N, H, W >= 1, "
                                    "got %s"
                                  : "%s: images must be f32 or f64 [N, H, W] or [N, H, W, 1 or 3] with N, H, "
                                    "W >= 1, got %s",
                   path, ed_type_str(t->dtype, t->shape, type, sizeof type));
}

static unsigned char to_byte(double v)
{
    v = v < 0 ? 0 : v > 1 ? 1 : v;
    return (unsigned char)lround(v * 255.0);
}

/* Fills the scale x scale block of one image pixel at (left, top). */
static void put_image_pixel(ed_canvas *c, int left, int top, int scale, const double *rgb)
{
    uint32_t color = 0;
    if (isnan(rgb[0]) || isnan(rgb[1]) || isnan(rgb[2]))
        color = 0xff0000;
    else
        color = (uint32_t)to_byte(rgb[0]) << 16 | (uint32_t)to_byte(rgb[1]) << 8 |
                to_byte(rgb[2]);
    ed_canvas_fill(c, left, top, left + scale - 1, top + scale - 1, color);
}

static void draw_tile(ed_canvas *c, const ed_tensor *t, const image_layout *l, int64_t n, int left, int top,
                      int scale)
{
    for (int64_t y = 0; y < l->h; y++) {
        for (int64_t x = 0; x < l->w; x++) {
            int64_t base = n * l->n_stride + y * l->y_stride + x * l->x_stride;
            double rgb[3];
            for (int k = 0; k < 3; k++)
                rgb[k] = ed_tensor_get(t, base + (l->channels == 3 ? k * l->c_stride : 0));
            put_image_pixel(c, left + (int)x * scale, top + (int)y * scale, scale, rgb);
        }
    }
}

static int image_grid(const char *path, const ed_tensor *images, bool channels_first, int cols, int scale)
{
    if (!path)
        return ed_fail("plot: NULL path");
    image_layout l = {0};
    if (check_images(path, images, channels_first, &l) != ED_OK)
        return ED_ERR;
    int64_t n = l.n, h = l.h, w = l.w;
    if (cols < 0 || scale < 0 || scale > 64)
        return ed_fail("%s: columns %d must be >= 0 and scale %d in 0..64", path, cols, scale);
    scale = scale ? scale : 1;
    int64_t ncol = cols ? cols : (int64_t)ceil(sqrt((double)n));
    ncol = ncol < n ? ncol : n;
    int64_t nrow = (n + ncol - 1) / ncol;
    int64_t width = ncol * (w * scale + GAP) + GAP, height = nrow * (h * scale + GAP) + GAP;
    if (width > ED_PLOT_MAX_SIDE || height > ED_PLOT_MAX_SIDE)
        return ed_fail("%s: a grid of %lld x %lld tiles of %lldx%lld at scale %d is %lldx%lld "
                       "pixels, above the limit of %d per side", path, (long long)ncol,
                       (long long)nrow, (long long)h, (long long)w, scale, (long long)width,
                       (long long)height, ED_PLOT_MAX_SIDE);
    ed_canvas c;
    if (ed_canvas_new(&c, (int)width, (int)height, 0x808080, path) != ED_OK)
        return ED_ERR;
    for (int64_t i = 0; i < n; i++) {
        int left = (int)(GAP + (i % ncol) * (w * scale + GAP));
        int top = (int)(GAP + (i / ncol) * (h * scale + GAP));
        draw_tile(&c, images, &l, i, left, top, scale);
    }
    char desc[128];
    snprintf(desc, sizeof desc, "%lld images of %lldx%lld, scale %d", (long long)n,
             (long long)h, (long long)w, scale);
    int status = ed_canvas_write_png(&c, path, desc);
    ed_canvas_free(&c);
    return status;
}

int ed_plot_image_grid(const char *path, const ed_tensor *images, int cols, int scale)
{
    return image_grid(path, images, false, cols, scale);
}

int ed_plot_image_grid_nchw(const char *path, const ed_tensor *images, int cols, int scale)
{
    return image_grid(path, images, true, cols, scale);
}
