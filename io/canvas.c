/* The RGB canvas behind every plot, and its PNG encoding with libpng. */
#include "io/canvas.h"
#include "io/atomic_file.h"
#include "runtime/error.h"

#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>

int ed_canvas_new(ed_canvas *c, int w, int h, uint32_t fill, const char *path)
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

void ed_canvas_free(ed_canvas *c)
{
    free(c->px);
    c->px = NULL;
}

void ed_canvas_blend(ed_canvas *c, int x, int y, uint32_t color, double a)
{
    if (x < 0 || y < 0 || x >= c->w || y >= c->h || a <= 0)
        return;
    unsigned char *p = c->px + 3 * ((size_t)y * (size_t)c->w + (size_t)x);
    for (int k = 0; k < 3; k++) {
        double want = (double)((color >> (16 - 8 * k)) & 0xff);
        p[k] = (unsigned char)lround(p[k] + (want - p[k]) * (a > 1 ? 1 : a));
    }
}

void ed_canvas_fill(ed_canvas *c, int x0, int y0, int x1, int y1, uint32_t color)
{
    for (int y = y0 < 0 ? 0 : y0; y <= y1 && y < c->h; y++)
        for (int x = x0 < 0 ? 0 : x0; x <= x1 && x < c->w; x++)
            ed_canvas_blend(c, x, y, color, 1);
}

/* Distance from (px, py) to the segment (x0, y0)-(x1, y1). */
static double segment_distance(double px, double py, double x0, double y0, double x1, double y1)
{
    double dx = x1 - x0, dy = y1 - y0, len2 = dx * dx + dy * dy;
    double t = len2 > 0 ? ((px - x0) * dx + (py - y0) * dy) / len2 : 0;
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    return hypot(px - (x0 + t * dx), py - (y0 + t * dy));
}

void ed_canvas_line(ed_canvas *c, double x0, double y0, double x1, double y1, double width, uint32_t color)
{
    double r = width / 2;
    int lo_x = (int)floor(fmin(x0, x1) - r - 1), hi_x = (int)ceil(fmax(x0, x1) + r + 1);
    int lo_y = (int)floor(fmin(y0, y1) - r - 1), hi_y = (int)ceil(fmax(y0, y1) + r + 1);
    lo_x = lo_x < 0 ? 0 : lo_x;
    lo_y = lo_y < 0 ? 0 : lo_y;
    for (int y = lo_y; y <= hi_y && y < c->h; y++)
        for (int x = lo_x; x <= hi_x && x < c->w; x++) {
            double cover = r + 0.5 - segment_distance(x + 0.5, y + 0.5, x0, y0, x1, y1);
            if (cover > 0)
                ed_canvas_blend(c, x, y, color, cover > 1 ? 1 : cover);
        }
}

void ed_canvas_disc(ed_canvas *c, double x, double y, double radius, uint32_t color, double alpha)
{
    int lo_x = (int)floor(x - radius - 1), hi_x = (int)ceil(x + radius + 1);
    int lo_y = (int)floor(y - radius - 1), hi_y = (int)ceil(y + radius + 1);
    for (int iy = lo_y; iy <= hi_y; iy++)
        for (int ix = lo_x; ix <= hi_x; ix++) {
            double cover = radius + 0.5 - hypot(ix + 0.5 - x, iy + 0.5 - y);
            if (cover > 0)
                ed_canvas_blend(c, ix, iy, color, alpha * (cover > 1 ? 1 : cover));
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
static int encode_png(FILE *f, const ed_canvas *c, const char *description, const char *path)
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

int ed_canvas_write_png(const ed_canvas *c, const char *path, const char *description)
{
    ed_atomic_file af;
    if (ed_atomic_open(&af, path) != ED_OK)
        return ED_ERR;
    return ed_atomic_finish(&af, encode_png(af.f, c, description, path));
}
