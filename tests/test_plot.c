/* PNG output: scatter plots, line charts and image grids are decoded again with libpng
 * and checked pixel by pixel where the geometry says what must be there; the built-in
 * font; the plot-log and data commands. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "models/toy_data.h"
#include "runtime/error.h"
#include "io/canvas.h"
#include "io/npy.h"
#include "io/plot.h"
#include "runtime/tensor.h"
#include "support/cli_run.h"
#include "support/error_check.h"

#include <dirent.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TMP ED_BINARY_DIR "/test_plot_"

typedef struct {
    int w, h;
    unsigned char *rgb;
} decoded;

static decoded decode(const char *path)
{
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&img, path)) fail_msg("libpng cannot read %s: %s", path, img.message);
    img.format = PNG_FORMAT_RGB;
    decoded d = {(int)img.width, (int)img.height, malloc(PNG_IMAGE_SIZE(img))};
    if (!png_image_finish_read(&img, NULL, d.rgb, 0, NULL)) fail_msg("libpng cannot decode %s: %s", path, img.message);
    return d;
}

static const unsigned char *pixel(const decoded *d, int x, int y)
{
    return d->rgb + 3 * ((size_t)y * (size_t)d->w + (size_t)x);
}

static bool is_white(const unsigned char *p) { return p[0] == 255 && p[1] == 255 && p[2] == 255; }

static bool file_contains(const char *path, const char *text)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    size_t len = strlen(text);
    for (size_t i = 0; i + len <= n; i++)
        if (memcmp(buf + i, text, len) == 0) return true;
    return false;
}

static ed_tensor *points(int64_t n, const float *xy)
{
    ed_tensor *t = ed_tensor_new(ED_F32, ed_shape2(n, 2));
    memcpy(t->data, xy, (size_t)n * 2 * sizeof(float));
    return t;
}

/* Plot area of a bare 512 x 512 picture: pixels 16..495 both ways, so with bounds [-1, 1]^2
 * data x maps to pixel 16 + (x + 1) / 2 * 480 and y to 16 + (1 - y) / 2 * 480. */
static int px_of(double x) { return (int)(16 + (x + 1) / 2 * 480); }
static int py_of(double y) { return (int)(16 + (1 - y) / 2 * 480); }

static void test_scatter_pixels(void **state)
{
    (void)state;
    const char *path = TMP "scatter.png";
    ed_tensor *pts = points(2, (const float[]){0.5f, 0.5f, 5.0f, 0.0f}); /* 2nd: outside */
    ed_tensor *under = points(2, (const float[]){-0.5f, -0.5f, 0.5f, 0.5f});
    ed_scatter_opts o = {.fixed_bounds = true, .xmin = -1, .xmax = 1, .ymin = -1, .ymax = 1, .bare = true};
    assert_int_equal(ed_plot_scatter(path, pts, under, &o), ED_OK);
    decoded d = decode(path);
    assert_int_equal(d.w, 512);
    assert_int_equal(d.h, 512);
    /* the sample on top of a data point: blue (0x1f77b4) dominates */
    const unsigned char *s = pixel(&d, px_of(0.5), py_of(0.5));
    assert_true(s[2] > s[0] + 60 && s[2] > 150);
    /* the data point alone: grey */
    const unsigned char *g = pixel(&d, px_of(-0.5), py_of(-0.5));
    assert_true(!is_white(g) && g[0] == g[1] && g[1] == g[2] && g[0] < 220);
    /* far from every point: white; the frame just outside the plot area: dark grey */
    assert_true(is_white(pixel(&d, px_of(-0.5), py_of(0.5))));
    assert_true(is_white(pixel(&d, 5, 5))); /* the margin */
    const unsigned char *f = pixel(&d, 15, 200);
    assert_true(f[0] == 0x40 && f[1] == 0x40 && f[2] == 0x40);
    /* zero lines at x = 0 and y = 0 in light grey */
    const unsigned char *z = pixel(&d, px_of(0), py_of(-0.8));
    assert_true(z[0] == 0xdc && z[2] == 0xdc);
    /* a dot is small: 5 pixels away from its centre is background */
    assert_true(is_white(pixel(&d, px_of(-0.5) + 5, py_of(-0.5))));
    assert_true(file_contains(path, "points: 1 of 2 drawn; under: 2 of 2 drawn"));
    assert_true(file_contains(path, "x [-1, 1] y [-1, 1]"));
    free(d.rgb);
    ed_tensor_free(pts);
    ed_tensor_free(under);
    unlink(path);
}

/* Automatic bounds: every point is drawn, and the picture has ink where the moons are:
 * the pixel of each of 200 data points is not white. */
static void test_scatter_auto_bounds(void **state)
{
    (void)state;
    const char *path = TMP "moons.png";
    ed_tensor *data = ed_toy_by_name("moons", 2000, 1, ED_NOISE_DEFAULT);
    ed_tensor *f64 = ed_tensor_new(ED_F64, ed_shape2(200, 2));
    for (int i = 0; i < 400; i++) ((double *)f64->data)[i] = ((const float *)data->data)[i];
    ed_scatter_opts o = {.width = 300, .height = 200, .bare = true};
    assert_int_equal(ed_plot_scatter(path, f64, data, &o), ED_OK);
    decoded d = decode(path);
    assert_int_equal(d.w, 300);
    assert_int_equal(d.h, 200);
    assert_true(file_contains(path, "points: 200 of 200 drawn; under: 2000 of 2000 drawn"));
    int64_t ink = 0;
    for (int y = 16; y < 184; y++)
        for (int x = 16; x < 284; x++) ink += !is_white(pixel(&d, x, y));
    /* 2000 dots of radius 1.6 cover a good part of the area but far from all of it */
    assert_true(ink > 2000 && ink < 268 * 168 / 2);
    free(d.rgb);
    ed_tensor_free(data);
    ed_tensor_free(f64);
    unlink(path);
}

static void test_scatter_errors(void **state)
{
    (void)state;
    const char *path = TMP "bad.png";
    ed_tensor *one_col = ed_tensor_new(ED_F32, ed_shape2(3, 1));
    assert_int_equal(ed_plot_scatter(path, one_col, NULL, NULL), ED_ERR);
    CHECK_ERROR_HAS("points must be f32 or f64 [N, D] with D >= 2, got f32[3,1]");
    ed_tensor *ok = ed_tensor_new(ED_F32, ed_shape2(3, 2));
    assert_int_equal(ed_plot_scatter(path, ok, one_col, NULL), ED_ERR);
    CHECK_ERROR_HAS("the under set must be");
    assert_int_equal(ed_plot_scatter(path, NULL, NULL, NULL), ED_ERR);
    CHECK_ERROR_HAS("no points to plot");
    assert_int_equal(ed_plot_scatter(path, ok, NULL, &(ed_scatter_opts){.width = 10}), ED_ERR);
    CHECK_ERROR_HAS("picture size 10x512 is outside 64..8192");
    assert_int_equal(
        ed_plot_scatter(path, ok, NULL,
                        &(ed_scatter_opts){.fixed_bounds = true, .xmin = 1, .xmax = 1, .ymin = 0, .ymax = 1}),
        ED_ERR);
    CHECK_ERROR_HAS("must be finite with min < max");
    assert_int_equal(ed_plot_scatter(path, ok, NULL, &(ed_scatter_opts){.alpha = 2}), ED_ERR);
    CHECK_ERROR_HAS("opacity 2");
    assert_int_equal(ed_plot_scatter(ED_BINARY_DIR "/no/such/dir/x.png", ok, NULL, NULL), ED_ERR);
    CHECK_ERROR_HAS("cannot write in directory");
    assert_true(access(path, F_OK) != 0);
    /* empty and all-NaN sets still give a picture (default bounds) */
    ed_tensor *nan = points(1, (const float[]){NAN, 1});
    assert_int_equal(ed_plot_scatter(path, nan, NULL, NULL), ED_OK);
    assert_true(file_contains(path, "points: 0 of 1 drawn"));
    ed_tensor_free(nan);
    ed_tensor_free(one_col);
    ed_tensor_free(ok);
    unlink(path);
}

/* Three 2 x 3 images, 2 columns, scale 4: the picture is 2 (3*4 + 2) + 2 = 30 wide and
 * 2 (2*4 + 2) + 2 = 22 high; tile (c, r) starts at (2 + 14c, 2 + 10r). */
static void test_image_grid(void **state)
{
    (void)state;
    const char *path = TMP "grid.png";
    ed_tensor *img = ed_tensor_new(ED_F32, ed_shape3(3, 2, 3));
    float *v = img->data;
    for (int i = 0; i < 18; i++) v[i] = (float)i / 17.0f;
    v[0] = -1;  /* clamped to black */
    v[5] = 7;   /* clamped to white */
    v[6] = NAN; /* image 1, pixel (0, 0): red */
    assert_int_equal(ed_plot_image_grid(path, img, 2, 4), ED_OK);
    decoded d = decode(path);
    assert_int_equal(d.w, 30);
    assert_int_equal(d.h, 22);
    const unsigned char *gap = pixel(&d, 0, 0), *hole = pixel(&d, 2 + 14 + 5, 2 + 10 + 3);
    assert_true(gap[0] == 128 && gap[1] == 128 && gap[2] == 128);
    assert_true(hole[0] == 128);   /* the empty fourth slot */
    for (int dy = 0; dy < 4; dy++) /* the whole 4 x 4 block of a pixel has its value */
        for (int dx = 0; dx < 4; dx++) assert_int_equal(pixel(&d, 2 + dx, 2 + dy)[0], 0);
    assert_int_equal(pixel(&d, 2 + 2 * 4, 2 + 4)[1], 255);                 /* image 0 (1, 2) */
    assert_int_equal(pixel(&d, 2 + 4, 2)[0], (int)lround(1.0 / 17 * 255)); /* (0, 1) */
    const unsigned char *red = pixel(&d, 16 + 1, 2 + 1);
    assert_true(red[0] == 255 && red[1] == 0 && red[2] == 0);
    const unsigned char *third = pixel(&d, 2 + 4 * 2 + 3, 12 + 4 + 3); /* image 2 (1, 2) */
    assert_int_equal(third[0], 255);
    assert_int_equal(third[0], third[2]);
    free(d.rgb);

    /* RGB images [N, H, W, 3] and the default layout (ceil(sqrt(5)) = 3 columns) */
    ed_tensor *rgb = ed_tensor_new(ED_F64, (ed_shape){4, {5, 1, 1, 3}});
    double *c = rgb->data;
    c[0] = 1;         /* image 0: pure red */
    c[3 * 4 + 2] = 1; /* image 4: pure blue, row 1, column 1 */
    assert_int_equal(ed_plot_image_grid(path, rgb, 0, 0), ED_OK);
    d = decode(path);
    assert_int_equal(d.w, 3 * 3 + 2);
    assert_int_equal(d.h, 2 * 3 + 2);
    assert_true(pixel(&d, 2, 2)[0] == 255 && pixel(&d, 2, 2)[2] == 0);
    assert_true(pixel(&d, 5, 5)[2] == 255 && pixel(&d, 5, 5)[0] == 0);
    free(d.rgb);
    ed_tensor_free(rgb);
    ed_tensor_free(img);
    unlink(path);
}

static void test_image_grid_errors(void **state)
{
    (void)state;
    const char *path = TMP "badgrid.png";
    ed_tensor *flat = ed_tensor_new(ED_F32, ed_shape2(4, 64));
    assert_int_equal(ed_plot_image_grid(path, flat, 0, 1), ED_ERR);
    CHECK_ERROR_HAS("images must be f32 or f64 [N, H, W] or [N, H, W, 1 or 3]");
    CHECK_ERROR_HAS("got f32[4,64]");
    ed_tensor *i32 = ed_tensor_new(ED_I32, ed_shape3(1, 2, 2));
    assert_int_equal(ed_plot_image_grid(path, i32, 0, 1), ED_ERR);
    ed_tensor *two = ed_tensor_new(ED_F32, (ed_shape){4, {1, 2, 2, 2}});
    assert_int_equal(ed_plot_image_grid(path, two, 0, 1), ED_ERR);
    ed_tensor *digits = ed_tensor_new(ED_F32, ed_shape3(100, 8, 8));
    assert_int_equal(ed_plot_image_grid(path, digits, 0, 65), ED_ERR);
    CHECK_ERROR_HAS("scale 65 in 0..64");
    assert_int_equal(ed_plot_image_grid(path, digits, 100, 64), ED_ERR);
    CHECK_ERROR_HAS("above the limit of 8192 per side");
    assert_int_equal(ed_plot_image_grid(path, digits, 10, 8), ED_OK); /* 10 x 10 digits */
    decoded d = decode(path);
    assert_int_equal(d.w, 10 * (64 + 2) + 2);
    free(d.rgb);
    ed_tensor_free(flat);
    ed_tensor_free(i32);
    ed_tensor_free(two);
    ed_tensor_free(digits);
    unlink(path);
    DIR *dir = opendir(ED_BINARY_DIR);
    struct dirent *e;
    while ((e = readdir(dir)))
        if (strncmp(e->d_name, "test_plot_", 10) == 0 && strstr(e->d_name, ".tmp"))
            fail_msg("temporary file left behind: %s", e->d_name);
    closedir(dir);
}

/* The plot area a decorated picture reports in its Description ("area x A..B y C..D"). */
typedef struct {
    int x0, x1, y0, y1;
} area;

static area area_of(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    for (size_t i = 0; i + 7 < n; i++) {
        area a;
        if (memcmp(buf + i, "area x ", 7) == 0 &&
            sscanf(buf + i, "area x %d..%d y %d..%d", &a.x0, &a.x1, &a.y0, &a.y1) == 4)
            return a;
    }
    fail_msg("%s has no plot area in its Description", path);
    return (area){0};
}

/* Pixels darker than mid-grey in [x0, x1] x [y0, y1]: text and axes are dark, data
 * dots and grid lines are not. */
static int64_t dark_pixels(const decoded *d, int x0, int y0, int x1, int y1)
{
    int64_t n = 0;
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) {
            const unsigned char *p = pixel(d, x, y);
            n += p[0] < 100 && p[1] < 100 && p[2] < 100;
        }
    return n;
}

static int64_t non_white(const decoded *d, int x0, int y0, int x1, int y1)
{
    int64_t n = 0;
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) n += !is_white(pixel(d, x, y));
    return n;
}

/* A decorated scatter plot: tick labels left of and below the area, the legend above,
 * the caption at the bottom, and the data where the area's mapping puts it. */
static void test_scatter_frame(void **state)
{
    (void)state;
    const char *path = TMP "framed.png";
    ed_tensor *data = ed_toy_by_name("moons", 1000, 1, ED_NOISE_DEFAULT);
    ed_tensor *pts = points(1, (const float[]){0.5f, 0.5f});
    ed_scatter_opts o = {.fixed_bounds = true,
                         .xmin = -1,
                         .xmax = 1,
                         .ymin = -1,
                         .ymax = 1,
                         .caption = "flow_matching step 5000: sw 0.034, mmd 0.0012"};
    assert_int_equal(ed_plot_scatter(path, pts, data, &o), ED_OK);
    decoded d = decode(path);
    assert_int_equal(d.w, 512);
    assert_int_equal(d.h, 512);
    area a = area_of(path);
    assert_true(a.x0 > 40 && a.x1 < 511 && a.y0 > 16 && a.y1 < 450);     /* room for text all round */
    assert_true(dark_pixels(&d, 0, a.y0, a.x0 - 8, a.y1) > 100);         /* y tick labels */
    assert_true(dark_pixels(&d, a.x0, a.y1 + 8, a.x1, a.y1 + 28) > 100); /* x tick labels */
    assert_true(dark_pixels(&d, 0, a.y1 + 30, 511, 511) > 200);          /* the caption */
    assert_true(dark_pixels(&d, a.x0, 0, a.x1, a.y0 - 3) > 50);          /* legend text */
    /* the legend's dots: blue for the samples, grey for the data */
    int blue = 0, grey = 0;
    for (int y = 0; y < a.y0 - 2; y++)
        for (int x = a.x0; x <= a.x1; x++) {
            const unsigned char *p = pixel(&d, x, y);
            blue += p[2] > p[0] + 60;
            grey += p[0] == 0xa0 && p[1] == 0xa0 && p[2] == 0xa0;
        }
    assert_true(blue > 5 && grey > 5);
    /* the box, and the sample's dot where the area's mapping puts (0.5, 0.5) */
    const unsigned char *f = pixel(&d, a.x0 - 1, (a.y0 + a.y1) / 2);
    assert_true(f[0] == 0x40 && f[1] == 0x40 && f[2] == 0x40);
    int sx = (int)(a.x0 + 0.75 * (a.x1 - a.x0 + 1)), sy = (int)(a.y0 + 0.25 * (a.y1 - a.y0 + 1));
    const unsigned char *s = pixel(&d, sx, sy);
    assert_true(s[2] > s[0] + 60);
    free(d.rgb);

    /* no caption, no under set, no label: nothing above the area, less below it */
    assert_int_equal(ed_plot_scatter(path, data, NULL, &(ed_scatter_opts){.width = 300, .height = 200}), ED_OK);
    d = decode(path);
    a = area_of(path);
    assert_true(a.y0 < 16);
    assert_int_equal(non_white(&d, 0, 0, 299, a.y0 - 2), 0);
    assert_true(dark_pixels(&d, 0, a.y0, a.x0 - 4, a.y1) > 20); /* small text still there */
    assert_int_equal(non_white(&d, 0, a.y1 + 25, 299, 199), 0);
    free(d.rgb);
    /* a long caption wraps onto more lines: the area shrinks */
    char caption[600];
    memset(caption, 0, sizeof caption);
    for (int i = 0; i < 60; i++) memcpy(caption + 5 * i, "word ", 5);
    assert_int_equal(ed_plot_scatter(path, data, NULL, &(ed_scatter_opts){.caption = caption}), ED_OK);
    area wrapped = area_of(path);
    assert_int_equal(ed_plot_scatter(path, data, NULL, &(ed_scatter_opts){.caption = "word"}), ED_OK);
    assert_true(area_of(path).y1 - wrapped.y1 >= 3 * 20); /* 300 characters at 12 pixels: 8 lines, not 1 */
    char huge[5000];
    memset(huge, 'x', sizeof huge - 1);
    huge[sizeof huge - 1] = '\0';
    assert_int_equal(ed_plot_scatter(path, data, NULL, &(ed_scatter_opts){.caption = huge}), ED_ERR);
    CHECK_ERROR_HAS("caption of 4999 characters is too long");
    ed_tensor_free(data);
    ed_tensor_free(pts);
    unlink(path);
}

/* The font: widths, glyph shapes, lower case as upper case, a box for the unknown. */
static void test_font(void **state)
{
    (void)state;
    assert_int_equal(ed_text_width("", -1, 1), 0);
    assert_int_equal(ed_text_width("AB", -1, 1), 11);
    assert_int_equal(ed_text_width("ABC", 2, 3), 33);
    ed_canvas c;
    assert_int_equal(ed_canvas_new(&c, 40, 10, 0xffffff, "font"), ED_OK);
    ed_canvas_text(&c, 0, 0, "1aA~", -1, 1, 0x000000);
    /* '1': a stem in column 2 and a foot across columns 1..3 */
    for (int y = 0; y < 7; y++) assert_int_equal(c.px[3 * (y * 40 + 2)], 0);
    assert_int_equal(c.px[3 * (6 * 40 + 1)], 0);
    assert_int_equal(c.px[3 * (0 * 40 + 0)], 255);
    /* 'a' and 'A' are the same picture */
    for (int y = 0; y < 7; y++)
        for (int x = 0; x < 5; x++) assert_int_equal(c.px[3 * (y * 40 + 6 + x)], c.px[3 * (y * 40 + 12 + x)]);
    /* '~' has no glyph: a hollow box */
    assert_int_equal(c.px[3 * (0 * 40 + 18)], 0);
    assert_int_equal(c.px[3 * (3 * 40 + 20)], 255);
    assert_int_equal(c.px[3 * (8 * 40 + 18)], 255); /* nothing below the cell */
    ed_canvas_free(&c);
}

/* A line chart: a rising line goes from the area's bottom-left to its top-right. */
static void test_line_chart(void **state)
{
    (void)state;
    const char *path = TMP "lines.png";
    double x[101], up[101], flat[101];
    for (int i = 0; i <= 100; i++) x[i] = i, up[i] = i / 100.0, flat[i] = i == 50 ? NAN : 0.5;
    ed_series s[2] = {{"rising", up, 0x1f77b4, 2}, {"flat", flat, 0xd62728, 2}};
    assert_int_equal(ed_plot_lines(path, x, 101, s, 2, &(ed_line_opts){.caption = "a caption"}), ED_OK);
    decoded d = decode(path);
    assert_int_equal(d.w, 720);
    assert_int_equal(d.h, 450);
    area a = area_of(path);
    /* y bounds [-0.05, 1.05]: y = v maps to y0 + (1.05 - v) / 1.1 * height */
    int hgt = a.y1 - a.y0 + 1, wid = a.x1 - a.x0 + 1;
    for (int i = 10; i <= 90; i += 20) {
        int px = (int)(a.x0 + i / 100.0 * wid), py = (int)(a.y0 + (1.05 - i / 100.0) / 1.1 * hgt);
        bool found = false;
        for (int dy = -2; dy <= 2; dy++) {
            const unsigned char *p = pixel(&d, px, py + dy);
            found |= p[2] > 150 && p[0] < 100;
        }
        if (!found) fail_msg("no blue near (%d, %d) for x = %d", px, py, i);
    }
    int mid = (int)(a.y0 + 0.55 / 1.1 * hgt);
    const unsigned char *red = pixel(&d, (int)(a.x0 + 0.25 * wid), mid);
    assert_true(red[0] > 150 && red[2] < 100);
    const unsigned char *gap = pixel(&d, (int)(a.x0 + 0.5 * wid), mid); /* the NaN breaks the red line */
    assert_false(gap[0] > 150 && gap[2] < 100);
    assert_true(dark_pixels(&d, 0, a.y0, a.x0 - 8, a.y1) > 100);
    assert_true(dark_pixels(&d, a.x0, 0, a.x1, a.y0 - 3) > 50); /* legend */
    assert_true(file_contains(path, "series: 2 of 101 points"));
    free(d.rgb);
    assert_int_equal(ed_plot_lines(path, x, 0, s, 2, NULL), ED_ERR);
    CHECK_ERROR_HAS("at least one x value");
    assert_int_equal(ed_plot_lines(path, x, 5, s, 0, NULL), ED_ERR);
    CHECK_ERROR_HAS("1..16 series");
    assert_int_equal(ed_plot_lines(path, x, 5, s, 1, &(ed_line_opts){.height = 9000}), ED_ERR);
    CHECK_ERROR_HAS("picture size 720x9000");
    unlink(path);
}

/* Channels-first grids: [N, C, H, W] reads channel k of pixel (y, x) at ((n C + k) H + y) W + x. */
static void test_image_grid_nchw(void **state)
{
    (void)state;
    const char *path = TMP "nchw.png";
    ed_tensor *rgb = ed_tensor_new(ED_F32, ed_shape4(2, 3, 2, 2));
    float *v = rgb->data;
    v[0 * 4 + 1] = 1;      /* image 0, red at (0, 1) */
    v[1 * 4 + 2] = 1;      /* image 0, green at (1, 0) */
    v[12 + 2 * 4 + 3] = 1; /* image 1, blue at (1, 1) */
    assert_int_equal(ed_plot_image_grid_nchw(path, rgb, 2, 3), ED_OK);
    decoded d = decode(path);
    assert_int_equal(d.w, 2 * (2 * 3 + 2) + 2);
    assert_int_equal(d.h, 2 * 3 + 4);
    const unsigned char *r = pixel(&d, 2 + 3, 2), *g = pixel(&d, 2, 2 + 3), *b = pixel(&d, 10 + 3, 2 + 3);
    assert_true(r[0] == 255 && r[1] == 0 && r[2] == 0);
    assert_true(g[0] == 0 && g[1] == 255 && g[2] == 0);
    assert_true(b[0] == 0 && b[1] == 0 && b[2] == 255);
    free(d.rgb);
    ed_tensor *nhwc = ed_tensor_new(ED_F32, ed_shape3(2, 4, 4));
    assert_int_equal(ed_plot_image_grid_nchw(path, nhwc, 0, 1), ED_ERR);
    CHECK_ERROR_HAS("images must be f32 or f64 [N, C, H, W] with C = 1 or 3");
    ed_tensor_free(nhwc);
    ed_tensor_free(rgb);
    unlink(path);
}

/* edifice plot-log and edifice data with an image set, end to end. */
static void test_cli_pictures(void **state)
{
    (void)state;
    static cli_result r;
    const char *dir = ED_BINARY_DIR;
    char log[4096] = "step,loss\n";
    for (int i = 1; i <= 200; i++)
        snprintf(log + strlen(log), sizeof log - strlen(log), "%d,%g\n", i, 2.0 / i + 0.01 * (i % 3));
    write_file_in(dir, "test_plot_log.csv", log);
    cli_run(ED_CLI, dir, &r, "plot-log '" ED_BINARY_DIR "/test_plot_log.csv' --out '" TMP "loss.png'");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "wrote " TMP "loss.png"));
    decoded d = decode(TMP "loss.png");
    assert_int_equal(d.w, 720);
    area a = area_of(TMP "loss.png");
    assert_true(dark_pixels(&d, 0, a.y1 + 30, 719, 449) > 100); /* the default caption */
    free(d.rgb);
    write_file_in(dir, "test_plot_log.csv", "step,loss\n1,0.5\n2,abc\n");
    cli_run(ED_CLI, dir, &r, "plot-log '" ED_BINARY_DIR "/test_plot_log.csv' --out '" TMP "loss.png'");
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "test_plot_log.csv line 3 column 2 (loss): not a number"));
    write_file_in(dir, "test_plot_log.csv", "step,loss\n");
    cli_run(ED_CLI, dir, &r, "plot-log '" ED_BINARY_DIR "/test_plot_log.csv' --out '" TMP "loss.png'");
    assert_non_null(strstr(r.err, "has a header but no rows"));
    cli_run(ED_CLI, dir, &r, "plot-log '" ED_BINARY_DIR "/test_plot_log.csv'");
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "--out FILE.png is required"));
    unlink(ED_BINARY_DIR "/test_plot_log.csv");

    /* 100 digits at scale 8: a 10 x 10 grid of 64-pixel tiles */
    cli_run(ED_CLI, dir, &r, "data digits --out '" TMP "digits.png'");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "100 images of 1x8x8, labelled"));
    d = decode(TMP "digits.png");
    assert_int_equal(d.w, 10 * (64 + 2) + 2);
    free(d.rgb);
    cli_run(ED_CLI, dir, &r, "data digits --split test --out '" TMP "digits.npy'");
    assert_int_equal(r.status, 0);
    ed_tensor *x = ed_npy_read(TMP "digits.npy"), *y = ed_npy_read(TMP "digits.labels.npy");
    assert_non_null(x);
    assert_non_null(y);
    assert_true(ed_shape_eq(x->shape, ed_shape4(297, 1, 8, 8)));
    assert_true(ed_shape_eq(y->shape, ed_shape1(297)));
    ed_tensor_free(x);
    ed_tensor_free(y);
    cli_run(ED_CLI, dir, &r, "data moons --n 10 --split test --out '" TMP "m.npy'");
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "--split is for the image sets"));
    unlink(TMP "loss.png");
    unlink(TMP "digits.png");
    unlink(TMP "digits.npy");
    unlink(TMP "digits.labels.npy");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scatter_pixels),
        cmocka_unit_test(test_scatter_auto_bounds),
        cmocka_unit_test(test_scatter_errors),
        cmocka_unit_test(test_image_grid),
        cmocka_unit_test(test_image_grid_errors),
        cmocka_unit_test(test_scatter_frame),
        cmocka_unit_test(test_font),
        cmocka_unit_test(test_line_chart),
        cmocka_unit_test(test_image_grid_nchw),
        cmocka_unit_test(test_cli_pictures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
