/* PNG output: scatter plots and image grids are decoded again with libpng and checked
 * pixel by pixel where the geometry says what must be there. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "models/toy_data.h"
#include "runtime/error.h"
#include "io/plot.h"
#include "runtime/tensor.h"
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
    if (!png_image_begin_read_from_file(&img, path))
        fail_msg("libpng cannot read %s: %s", path, img.message);
    img.format = PNG_FORMAT_RGB;
    decoded d = {(int)img.width, (int)img.height, malloc(PNG_IMAGE_SIZE(img))};
    if (!png_image_finish_read(&img, NULL, d.rgb, 0, NULL))
        fail_msg("libpng cannot decode %s: %s", path, img.message);
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
        if (memcmp(buf + i, text, len) == 0)
            return true;
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
    for (int i = 0; i < 400; i++)
        ((double *)f64->data)[i] = ((const float *)data->data)[i];
    ed_scatter_opts o = {.width = 300, .height = 200, .bare = true};
    assert_int_equal(ed_plot_scatter(path, f64, data, &o), ED_OK);
    decoded d = decode(path);
    assert_int_equal(d.w, 300);
    assert_int_equal(d.h, 200);
    assert_true(file_contains(path, "points: 200 of 200 drawn; under: 2000 of 2000 drawn"));
    int64_t ink = 0;
    for (int y = 16; y < 184; y++)
        for (int x = 16; x < 284; x++)
            ink += !is_white(pixel(&d, x, y));
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
    assert_int_equal(ed_plot_scatter(path, ok, NULL,
                                     &(ed_scatter_opts){.fixed_bounds = true, .xmin = 1, .xmax = 1,
                                                        .ymin = 0, .ymax = 1}),
                     ED_ERR);
    CHECK_ERROR_HAS("must be finite with min < max");
    assert_int_equal(ed_plot_scatter(path, ok, NULL, &(ed_scatter_opts){.alpha = 2}), ED_ERR);
    CHECK_ERROR_HAS("opacity 2");
    assert_int_equal(ed_plot_scatter(ED_BINARY_DIR "/no/such/dir/x.png", ok, NULL, NULL), ED_ERR);
    CHECK_ERROR_HAS("cannot create temporary file");
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
    for (int i = 0; i < 18; i++)
        v[i] = (float)i / 17.0f;
    v[0] = -1;    /* clamped to black */
    v[5] = 7;     /* clamped to white */
    v[6] = NAN;   /* image 1, pixel (0, 0): red */
    assert_int_equal(ed_plot_image_grid(path, img, 2, 4), ED_OK);
    decoded d = decode(path);
    assert_int_equal(d.w, 30);
    assert_int_equal(d.h, 22);
    const unsigned char *gap = pixel(&d, 0, 0), *hole = pixel(&d, 2 + 14 + 5, 2 + 10 + 3);
    assert_true(gap[0] == 128 && gap[1] == 128 && gap[2] == 128);
    assert_true(hole[0] == 128); /* the empty fourth slot */
    for (int dy = 0; dy < 4; dy++) /* the whole 4 x 4 block of a pixel has its value */
        for (int dx = 0; dx < 4; dx++)
            assert_int_equal(pixel(&d, 2 + dx, 2 + dy)[0], 0);
    assert_int_equal(pixel(&d, 2 + 2 * 4, 2 + 4)[1], 255);           /* image 0 (1, 2) */
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
    c[0] = 1; /* image 0: pure red */
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scatter_pixels),
        cmocka_unit_test(test_scatter_auto_bounds),
        cmocka_unit_test(test_scatter_errors),
        cmocka_unit_test(test_image_grid),
        cmocka_unit_test(test_image_grid_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
