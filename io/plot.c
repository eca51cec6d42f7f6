/* Scatter plots and image grids written as PNG with libpng. */
#include "io/plot.h"
#include "io/atomic_file.h"
#include "runtime/error.h"

#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MARGIN 16
#define GAP 2

typedef struct {
    int w, h;
    unsigned char *px; /* RGB, row-major */
} canvas;

static int canvas_new(canvas *c, int w, int h, uint32_t fill, const char *path)
{
    c->w = w;
    c->h = h;
    c->px = malloc((size_t)w * (size_t)h * 3);
    if (!c->px)
        return ed_fail("%s: out of memory for a %dx%d picture", path, w, h);
    for (size_t i = 0; i < (size_t)w * (size_t)h; i++) {
        c->px[3 * i] = (unsigned char)(fill >> 16);
        c->px[3 * i + 1] = (unsigned char)(fill >> 8);
        c->px[3 * i + 2] = (unsigned char)fill;
    }
    return ED_OK;
}

/* Blends colour into pixel (x, y) with opacity a in [0, 1]. */
static void blend(canvas *c, int x, int y, uint32_t color, double a)
{
    if (x < 0 || y < 0 || x >= c->w || y >= c->h || a <= 0)
        return;
    unsigned char *p = c->px + 3 * ((size_t)y * (size_t)c->w + (size_t)x);
    for (int k = 0; k < 3; k++) {
        double want = (double)((color >> (16 - 8 * k)) & 0xff);
        p[k] = (unsigned char)lround(p[k] + (want - p[k]) * (a > 1 ? 1 : a));
    }
}

/* ---- PNG output ----------------------------------------------------------------------- */

/* libpng's message, kept outside encode_png's frame so it survives the longjmp. */
static _Thread_local char png_message[256];

static void on_png_error(png_structp png, png_const_charp msg)
{
    snprintf(png_message, sizeof png_message, "%s", msg);
    png_longjmp(png, 1);
}

static void on_png_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

/* Encodes c into f; description (may be NULL) goes into a tEXt chunk. */
static int encode_png(FILE *f, const canvas *c, const char *description, const char *path)
{
    png_message[0] = '\0';
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, on_png_error,
                                              on_png_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        return ed_fail("%s: cannot set up libpng (out of memory)", path);
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return ed_fail("%s: libpng: %s", path, png_message);
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)c->w, (png_uint_32)c->h, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_text text[2] = {{.compression = PNG_TEXT_COMPRESSION_NONE,
                         .key = (png_charp) "Software",
                         .text = (png_charp) "edifice"},
                        {.compression = PNG_TEXT_COMPRESSION_NONE,
                         .key = (png_charp) "Description",
                         .text = (png_charp)description}};
    png_set_text(png, info, text, description ? 2 : 1);
    png_write_info(png, info);
    for (int y = 0; y < c->h; y++)
        png_write_row(png, c->px + (size_t)y * (size_t)c->w * 3);
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    return ED_OK;
}

static int write_png(const char *path, const canvas *c, const char *description)
{
    ed_atomic_file af;
    if (ed_atomic_open(&af, path) != ED_OK)
        return ED_ERR;
    return ed_atomic_finish(&af, encode_png(af.f, c, description, path));
}

/* ---- scatter plots --------------------------------------------------------------------- */

typedef struct {
    double xmin, xmax, ymin, ymax;
} bounds;

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
    canvas *c;
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
                blend(a->c, ix, iy, color, a->alpha * (cover > 1 ? 1 : cover));
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

static void draw_axes(const plot_area *a)
{
    const uint32_t zero_line = 0xdcdcdc, frame = 0x404040;
    const bounds *b = &a->b;
    if (b->xmin < 0 && b->xmax > 0) {
        int x = a->x0 + (int)((0 - b->xmin) / (b->xmax - b->xmin) * (a->x1 - a->x0 + 1));
        for (int y = a->y0; y <= a->y1; y++)
            blend(a->c, x, y, zero_line, 1);
    }
    if (b->ymin < 0 && b->ymax > 0) {
        int y = a->y0 + (int)((b->ymax - 0) / (b->ymax - b->ymin) * (a->y1 - a->y0 + 1));
        for (int x = a->x0; x <= a->x1; x++)
            blend(a->c, x, y, zero_line, 1);
    }
    for (int x = a->x0 - 1; x <= a->x1 + 1; x++) {
        blend(a->c, x, a->y0 - 1, frame, 1);
        blend(a->c, x, a->y1 + 1, frame, 1);
    }
    for (int y = a->y0 - 1; y <= a->y1 + 1; y++) {
        blend(a->c, a->x0 - 1, y, frame, 1);
        blend(a->c, a->x1 + 1, y, frame, 1);
    }
}

static int check_scatter_opts(const char *path, const ed_scatter_opts *o)
{
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
    return o;
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
    canvas c;
    if (canvas_new(&c, o.width, o.height, 0xffffff, path) != ED_OK)
        return ED_ERR;
    plot_area a = {.c = &c, .x0 = MARGIN, .y0 = MARGIN, .x1 = o.width - MARGIN - 1,
                   .y1 = o.height - MARGIN - 1, .radius = o.radius, .alpha = o.alpha};
    a.b = o.fixed_bounds ? (bounds){o.xmin, o.xmax, o.ymin, o.ymax}
                         : auto_bounds(points, under, a.x1 - a.x0 + 1, a.y1 - a.y0 + 1);
    draw_axes(&a);
    int64_t under_drawn = draw_set(&a, under, o.under_color);
    int64_t drawn = draw_set(&a, points, o.color);
    draw_axes(&a); /* the frame stays on top of dots at the edge */
    char desc[512];
    int len = snprintf(desc, sizeof desc, "x [%.6g, %.6g] y [%.6g, %.6g]; points: %lld of %lld drawn",
                       a.b.xmin, a.b.xmax, a.b.ymin, a.b.ymax, (long long)drawn,
                       (long long)points->shape.dim[0]);
    if (under && len > 0 && (size_t)len < sizeof desc)
        snprintf(desc + len, sizeof desc - (size_t)len, "; under: %lld of %lld drawn",
                 (long long)under_drawn, (long long)under->shape.dim[0]);
    int status = write_png(path, &c, desc);
    free(c.px);
    return status;
}

/* ---- image grids ------------------------------------------------------------------------- */

static int check_images(const char *path, const ed_tensor *t, int64_t *channels)
{
    if (!t)
        return ed_fail("%s: no images to draw", path);
    bool ok = ed_dtype_is_float(t->dtype) && (t->shape.rank == 3 || t->shape.rank == 4);
    *channels = ok && t->shape.rank == 4 ? t->shape.dim[3] : 1;
    ok = ok && (*channels == 1 || *channels == 3);
    for (int i = 0; ok && i < 3; i++)
        ok = t->shape.dim[i] > 0;
    if (ok)
        return ED_OK;
    char type[96];
    return ed_fail("%s: images must be f32 or f64 [N, H, W] or [N, H, W, 1 or 3] with N, H, "
                   "W >= 1, got %s", path, ed_type_str(t->dtype, t->shape, type, sizeof type));
}

static unsigned char to_byte(double v)
{
    v = v < 0 ? 0 : v > 1 ? 1 : v;
    return (unsigned char)lround(v * 255.0);
}

/* Fills the scale x scale block of canvas pixel (x, y) of tile (tx, ty). */
static void put_image_pixel(canvas *c, int tile_x, int tile_y, int scale, const double *rgb)
{
    uint32_t color = 0;
    if (isnan(rgb[0]) || isnan(rgb[1]) || isnan(rgb[2]))
        color = 0xff0000;
    else
        color = (uint32_t)to_byte(rgb[0]) << 16 | (uint32_t)to_byte(rgb[1]) << 8 |
                to_byte(rgb[2]);
    for (int dy = 0; dy < scale; dy++)
        for (int dx = 0; dx < scale; dx++)
            blend(c, tile_x + dx, tile_y + dy, color, 1);
}

static void draw_tile(canvas *c, const ed_tensor *t, int64_t n, int64_t channels, int left,
                      int top, int scale)
{
    int64_t h = t->shape.dim[1], w = t->shape.dim[2];
    for (int64_t y = 0; y < h; y++) {
        for (int64_t x = 0; x < w; x++) {
            int64_t base = ((n * h + y) * w + x) * channels;
            double rgb[3];
            for (int k = 0; k < 3; k++)
                rgb[k] = ed_tensor_get(t, base + (channels == 3 ? k : 0));
            put_image_pixel(c, left + (int)x * scale, top + (int)y * scale, scale, rgb);
        }
    }
}

int ed_plot_image_grid(const char *path, const ed_tensor *images, int cols, int scale)
{
    if (!path)
        return ed_fail("plot: NULL path");
    int64_t channels = 1;
    if (check_images(path, images, &channels) != ED_OK)
        return ED_ERR;
    int64_t n = images->shape.dim[0], h = images->shape.dim[1], w = images->shape.dim[2];
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
    canvas c;
    if (canvas_new(&c, (int)width, (int)height, 0x808080, path) != ED_OK)
        return ED_ERR;
    for (int64_t i = 0; i < n; i++) {
        int left = (int)(GAP + (i % ncol) * (w * scale + GAP));
        int top = (int)(GAP + (i / ncol) * (h * scale + GAP));
        draw_tile(&c, images, i, channels, left, top, scale);
    }
    char desc[128];
    snprintf(desc, sizeof desc, "%lld images of %lldx%lld, scale %d", (long long)n,
             (long long)h, (long long)w, scale);
    int status = write_png(path, &c, desc);
    free(c.px);
    return status;
}
