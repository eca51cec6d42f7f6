/* Data sets: the seeded 2-D toy sets (determinism, shape, moments, geometry), the .npy
 * loaders, the obstacle-avoidance demonstration set with its evaluator, and the image
 * sets (digits, Fashion-MNIST, .npy images with labels) behind --data. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "models/dataset.h"
#include "models/image_data.h"
#include "models/toy_data.h"
#include "runtime/error.h"
#include "io/npy.h"
#include "runtime/tensor.h"
#include "support/error_check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TMP ED_BINARY_DIR "/test_data_"
#define PI 3.14159265358979323846

static const float *rows(const ed_tensor *t) { return t->data; }

typedef struct {
    double mean[2], var[2];
} moments;

static moments moments_of(const ed_tensor *t)
{
    moments m = {{0}, {0}};
    int64_t n = t->shape.dim[0];
    const float *p = rows(t);
    for (int64_t i = 0; i < n; i++)
        for (int c = 0; c < 2; c++)
            m.mean[c] += p[2 * i + c] / (double)n;
    for (int64_t i = 0; i < n; i++)
        for (int c = 0; c < 2; c++)
            m.var[c] += (p[2 * i + c] - m.mean[c]) * (p[2 * i + c] - m.mean[c]) / (double)n;
    return m;
}

/* ---- names ---------------------------------------------------------------------- */

static void test_names(void **state)
{
    (void)state;
    const char *names[] = {"moons", "circles", "swiss_roll", "8gaussians", "checkerboard"};
    for (int k = 0; k < ED_TOY_COUNT; k++) {
        ed_toy set = ED_TOY_COUNT;
        assert_string_equal(ed_toy_name((ed_toy)k), names[k]);
        assert_int_equal(ed_toy_parse(names[k], &set), ED_OK);
        assert_int_equal(set, k);
    }
    assert_string_equal(ed_toy_name(ED_TOY_COUNT), "?");
    ed_toy set;
    assert_int_equal(ed_toy_parse("moon", &set), ED_ERR);
    CHECK_ERROR_HAS("unknown data set 'moon'");
    CHECK_ERROR_HAS("valid: moons, circles, swiss_roll, 8gaussians, checkerboard");
    assert_int_equal(ed_toy_parse(NULL, &set), ED_ERR);
    assert_null(ed_toy_by_name("spirals", 10, 0, ED_NOISE_DEFAULT));
    CHECK_ERROR_HAS("unknown data set 'spirals'");
}

/* ---- determinism and shape ------------------------------------------------------------ */

static void test_deterministic_per_seed(void **state)
{
    (void)state;
    for (int k = 0; k < ED_TOY_COUNT; k++) {
        ed_tensor *a = ed_toy_sample((ed_toy)k, 1000, 7, ED_NOISE_DEFAULT);
        ed_tensor *b = ed_toy_sample((ed_toy)k, 1000, 7, ED_NOISE_DEFAULT);
        ed_tensor *c = ed_toy_sample((ed_toy)k, 1000, 8, ED_NOISE_DEFAULT);
        ed_tensor *prefix = ed_toy_sample((ed_toy)k, 100, 7, ED_NOISE_DEFAULT);
        assert_non_null(a);
        assert_non_null(c);
        assert_int_equal(a->dtype, ED_F32);
        assert_true(ed_shape_eq(a->shape, ed_shape2(1000, 2)));
        assert_memory_equal(a->data, b->data, 1000 * 2 * sizeof(float));
        assert_memory_not_equal(a->data, c->data, 1000 * 2 * sizeof(float));
        /* rows are a pure function of (seed, row): a shorter draw is a prefix */
        assert_memory_equal(a->data, prefix->data, 100 * 2 * sizeof(float));
        for (int64_t i = 0; i < 2000; i++)
            assert_true(isfinite(rows(a)[i]));
        ed_tensor_free(a);
        ed_tensor_free(b);
        ed_tensor_free(c);
        ed_tensor_free(prefix);
    }
}

static void test_sizes_and_bad_arguments(void **state)
{
    (void)state;
    ed_tensor *empty = ed_toy_sample(ED_TOY_MOONS, 0, 1, ED_NOISE_DEFAULT);
    assert_non_null(empty);
    assert_true(ed_shape_eq(empty->shape, ed_shape2(0, 2)));
    ed_tensor_free(empty);
    assert_null(ed_toy_sample(ED_TOY_MOONS, -1, 1, ED_NOISE_DEFAULT));
    CHECK_ERROR_HAS("number of rows -1");
    assert_null(ed_toy_sample(ED_TOY_MOONS, ED_DATA_MAX_ROWS + 1, 1, 0));
    CHECK_ERROR_HAS("outside 0..");
    assert_null(ed_toy_sample(ED_TOY_CIRCLES, 10, 1, NAN));
    CHECK_ERROR_HAS("circles: noise must be a finite number");
    assert_null(ed_toy_sample(ED_TOY_CIRCLES, 10, 1, INFINITY));
    assert_null(ed_toy_sample(ED_TOY_COUNT, 10, 1, 0));
    CHECK_ERROR_HAS("unknown toy set");
}

/* Every set is centred and scaled to unit average variance before noise, so the mean is
 * ~0 and (var_x + var_y) / 2 ~ 1 + noise^2. With n = 20000 the standard error of a mean
 * is at most sqrt(var_c / n) <= sqrt(2 / 20000) = 0.01 (a coordinate's variance is at
 * most 2 here), so 0.05 is 5 standard errors; the standard error of a variance is
 * sqrt((E x^4 - var^2) / n) <= sqrt(8 / 20000) = 0.02 for these bounded sets, and the
 * average of two halves it, so 0.05 is > 4 of them. */
static void test_moments(void **state)
{
    (void)state;
    for (int k = 0; k < ED_TOY_COUNT; k++) {
        ed_tensor *t = ed_toy_sample((ed_toy)k, 20000, 3, ED_NOISE_DEFAULT);
        assert_non_null(t);
        moments m = moments_of(t);
        double noise = ed_toy_default_noise((ed_toy)k);
        double avg_var = (m.var[0] + m.var[1]) / 2;
        if (fabs(m.mean[0]) > 0.05 || fabs(m.mean[1]) > 0.05 ||
            fabs(avg_var - (1 + noise * noise)) > 0.05)
            fail_msg("%s: mean (%g, %g), average variance %g, want ~0 and ~%g",
                     ed_toy_name((ed_toy)k), m.mean[0], m.mean[1], avg_var, 1 + noise * noise);
        ed_tensor_free(t);
    }
}

/* The noise option adds independent N(0, noise^2) per coordinate: the same seed with
 * noise 0.3 and with noise 0 differ by exactly noise times the same normals, so the
 * difference has mean ~0 and per-coordinate variance ~0.09 (n = 20000: standard error
 * 0.09 * sqrt(2 / 20000) = 0.0009, bound 0.005). */
static void test_noise_option(void **state)
{
    (void)state;
    ed_tensor *clean = ed_toy_sample(ED_TOY_MOONS, 20000, 5, 0.0);
    ed_tensor *noisy = ed_toy_sample(ED_TOY_MOONS, 20000, 5, 0.3);
    ed_tensor *diff = ed_tensor_new(ED_F32, ed_shape2(20000, 2));
    for (int64_t i = 0; i < 40000; i++)
        ((float *)diff->data)[i] = rows(noisy)[i] - rows(clean)[i];
    moments m = moments_of(diff);
    assert_true(fabs(m.mean[0]) < 0.01 && fabs(m.mean[1]) < 0.01);
    assert_true(fabs(m.var[0] - 0.09) < 0.005 && fabs(m.var[1] - 0.09) < 0.005);
    ed_tensor *dflt = ed_toy_sample(ED_TOY_MOONS, 20000, 5, ED_NOISE_DEFAULT);
    ed_tensor *explicit_default = ed_toy_sample(ED_TOY_MOONS, 20000, 5, 0.1);
    assert_true(ed_toy_default_noise(ED_TOY_MOONS) == 0.1);
    assert_memory_equal(dflt->data, explicit_default->data, 40000 * sizeof(float));
    ed_tensor_free(clean);
    ed_tensor_free(noisy);
    ed_tensor_free(diff);
    ed_tensor_free(dflt);
    ed_tensor_free(explicit_default);
}

/* ---- the geometry of each set ---------------------------------------------------------- */

/* 8 gaussians, noise 0.1: centres sqrt(2) (cos k pi/4, sin k pi/4). The distance to the
 * own centre is Rayleigh(0.1): P(r > 0.6) = exp(-18) ~ 1.5e-8 per point, and adjacent
 * centres are 2 sqrt(2) sin(pi/8) = 1.08 apart, so the nearest centre is the own one.
 * Its mean is 0.1 sqrt(pi/2) = 0.1253 (standard error 0.0007 at n = 8000). Each centre
 * holds Binomial(8000, 1/8) points: 1000 +- 29.6, bound +-150 (5 sigma). */
static void test_8gaussians_near_centres(void **state)
{
    (void)state;
    const int64_t n = 8000;
    ed_tensor *t = ed_toy_sample(ED_TOY_8GAUSSIANS, n, 11, 0.1);
    int64_t count[8] = {0};
    double mean_r = 0;
    for (int64_t i = 0; i < n; i++) {
        double x = rows(t)[2 * i], y = rows(t)[2 * i + 1], best = INFINITY;
        int arg = -1;
        for (int k = 0; k < 8; k++) {
            double cx = sqrt(2.0) * cos(k * PI / 4), cy = sqrt(2.0) * sin(k * PI / 4);
            double r = hypot(x - cx, y - cy);
            if (r < best) {
                best = r;
                arg = k;
            }
        }
        assert_true(best < 0.6);
        count[arg]++;
        mean_r += best / (double)n;
    }
    for (int k = 0; k < 8; k++)
        if (labs((long)(count[k] - n / 8)) > 150)
            fail_msg("centre %d holds %lld of %lld points", k, (long long)count[k], (long long)n);
    assert_true(fabs(mean_r - 0.1 * sqrt(PI / 2)) < 0.005);
    ed_tensor_free(t);
}

/* Checkerboard, no noise: every point is in a cell (c, r) of the 4 x 4 board with
 * c + r even, the board spans +-2 s with s = sqrt(3)/2, and each of the 8 cells holds
 * Binomial(16000, 1/8) points: 2000 +- 42, bound +-210. */
static void test_checkerboard_cells(void **state)
{
    (void)state;
    const int64_t n = 16000;
    const double s = sqrt(3.0) / 2;
    ed_tensor *t = ed_toy_sample(ED_TOY_CHECKERBOARD, n, 2, ED_NOISE_DEFAULT);
    int64_t cells[4][4] = {{0}};
    for (int64_t i = 0; i < n; i++) {
        double x = rows(t)[2 * i] / s + 2, y = rows(t)[2 * i + 1] / s + 2;
        assert_true(x >= -1e-5 && x <= 4 + 1e-5 && y >= -1e-5 && y <= 4 + 1e-5);
        int c = (int)floor(x), r = (int)floor(y);
        c = c > 3 ? 3 : c < 0 ? 0 : c;
        r = r > 3 ? 3 : r < 0 ? 0 : r;
        /* a point within f32 rounding of a cell edge may round into the white cell */
        double edge = fmin(fmin(x - floor(x), ceil(x) - x), fmin(y - floor(y), ceil(y) - y));
        if ((c + r) % 2 != 0 && edge > 1e-5)
            fail_msg("point %lld (%g, %g) is in the white cell (%d, %d)", (long long)i, x, y, c, r);
        cells[c][r]++;
    }
    for (int c = 0; c < 4; c++)
        for (int r = 0; r < 4; r++)
            if ((c + r) % 2 == 0 && llabs(cells[c][r] - n / 8) > 210)
                fail_msg("cell (%d, %d) holds %lld points", c, r, (long long)cells[c][r]);
    ed_tensor_free(t);
}

/* Circles, no noise: radii exactly s or s/2 with s = 1/sqrt(0.3125); each circle holds
 * Binomial(10000, 1/2): 5000 +- 50, bound +-250. Angles are uniform: each quadrant holds
 * a quarter (2500 +- 43, bound +-220). */
static void test_circles_radii(void **state)
{
    (void)state;
    const int64_t n = 10000;
    const double s = 1 / sqrt(0.3125);
    ed_tensor *t = ed_toy_sample(ED_TOY_CIRCLES, n, 4, 0.0);
    int64_t outer = 0, quadrant[4] = {0};
    for (int64_t i = 0; i < n; i++) {
        double x = rows(t)[2 * i], y = rows(t)[2 * i + 1], r = hypot(x, y);
        bool is_outer = fabs(r - s) < 1e-5, is_inner = fabs(r - s / 2) < 1e-5;
        assert_true(is_outer || is_inner);
        outer += is_outer;
        quadrant[(x < 0) * 2 + (y < 0)]++;
    }
    assert_true(llabs(outer - n / 2) <= 250);
    for (int q = 0; q < 4; q++)
        assert_true(llabs(quadrant[q] - n / 4) <= 220);
    ed_tensor_free(t);
}

/* Moons, no noise: undo the placement (out = (raw - (0.5, 0.25)) * scale) and each point
 * is on the unit circle around (0, 0) with y >= 0 (upper moon) or around (1, 0.5) with
 * y <= 0.5 (lower moon). The two moons hold 5000 +- 50 each (bound 250). */
static void test_moons_geometry(void **state)
{
    (void)state;
    const int64_t n = 10000;
    double half = (4 / PI - 0.5) / 2, var_y = 0.5 - 4 / (PI * PI) + half * half;
    double scale = 1 / sqrt((0.75 + var_y) / 2);
    assert_true(fabs(scale - 1.418) < 0.001); /* the figure data.h quotes */
    ed_tensor *t = ed_toy_sample(ED_TOY_MOONS, n, 6, 0.0);
    int64_t upper = 0;
    for (int64_t i = 0; i < n; i++) {
        double x = rows(t)[2 * i] / scale + 0.5, y = rows(t)[2 * i + 1] / scale + 0.25;
        bool up = fabs(hypot(x, y) - 1) < 1e-5 && y >= -1e-5;
        bool down = fabs(hypot(x - 1, y - 0.5) - 1) < 1e-5 && y <= 0.5 + 1e-5;
        if (!up && !down)
            fail_msg("point %lld (%g, %g) is on neither moon", (long long)i, x, y);
        upper += up;
    }
    assert_true(llabs(upper - n / 2) <= 250);
    ed_tensor_free(t);
}

/* Swiss roll, no noise: every point is on the curve t (cos t, sin t), t in
 * [1.5 pi, 4.5 pi], after undoing a placement recovered from the data (the mean and the
 * scale): the radius equals the angle's unwrapped value. The roll turns 1.5 times, so
 * t = r recovers the turn and cos t, sin t must match the direction. */
static void test_swiss_roll_curve(void **state)
{
    (void)state;
    const int64_t n = 4000;
    ed_tensor *big = ed_toy_sample(ED_TOY_SWISS_ROLL, 200000, 1, 0.0);
    /* the exact placement by Simpson's rule, as data.c computes it */
    double sx = 0, sy = 0, sxx = 0, syy = 0;
    const int m = 4096;
    for (int i = 0; i <= m; i++) {
        double wt = (i == 0 || i == m) ? 1 : (i % 2 ? 4 : 2), u = (double)i / m;
        double tt = 1.5 * PI * (1 + 2 * u), x = tt * cos(tt), y = tt * sin(tt);
        sx += wt * x, sy += wt * y, sxx += wt * x * x, syy += wt * y * y;
    }
    double k = 1.0 / (3 * m), mx = sx * k, my = sy * k;
    double scale = 1 / sqrt((sxx * k - mx * mx + syy * k - my * my) / 2);
    ed_tensor *t = ed_toy_sample(ED_TOY_SWISS_ROLL, n, 9, 0.0);
    for (int64_t i = 0; i < n; i++) {
        double x = rows(t)[2 * i] / scale + mx, y = rows(t)[2 * i + 1] / scale + my;
        double r = hypot(x, y);
        assert_true(r > 1.5 * PI - 1e-3 && r < 4.5 * PI + 1e-3);
        if (hypot(x - r * cos(r), y - r * sin(r)) > 1e-3)
            fail_msg("point %lld (%g, %g) is off the roll", (long long)i, x, y);
    }
    moments mb = moments_of(big); /* the placement really centres and scales */
    assert_true(fabs(mb.mean[0]) < 0.01 && fabs(mb.mean[1]) < 0.01);
    assert_true(fabs((mb.var[0] + mb.var[1]) / 2 - 1) < 0.01);
    ed_tensor_free(t);
    ed_tensor_free(big);
}

/* ---- .npy files ------------------------------------------------------------------------ */

static void write_npy(const char *path, ed_dtype dt, ed_shape s, const double *v)
{
    ed_tensor *t = ed_tensor_new(dt, s);
    for (int64_t i = 0; i < ed_shape_numel(s); i++)
        ed_tensor_set(t, i, v ? v[i] : (double)i * 0.25);
    assert_int_equal(ed_npy_write(path, t), ED_OK);
    ed_tensor_free(t);
}

static void test_load_npy(void **state)
{
    (void)state;
    const char *f64 = TMP "f64.npy", *f32 = TMP "f32.npy", *bad = TMP "bad.npy";
    write_npy(f64, ED_F64, ed_shape2(5, 3), NULL);
    ed_tensor *t = ed_data_load_npy(f64);
    assert_non_null(t);
    assert_int_equal(t->dtype, ED_F32);
    assert_true(ed_shape_eq(t->shape, ed_shape2(5, 3)));
    for (int i = 0; i < 15; i++)
        assert_true(rows(t)[i] == (float)(i * 0.25));
    ed_tensor_free(t);
    write_npy(f32, ED_F32, ed_shape2(4, 2), NULL);
    t = ed_data_load_npy(f32);
    assert_non_null(t);
    assert_true(ed_shape_eq(t->shape, ed_shape2(4, 2)) && rows(t)[7] == 1.75f);
    ed_tensor_free(t);

    write_npy(bad, ED_I32, ed_shape2(4, 2), NULL);
    assert_null(ed_data_load_npy(bad));
    CHECK_ERROR_HAS(bad);
    CHECK_ERROR_HAS("expected a non-empty 2-D array [N, D] of f32 or f64, found i32[4,2]");
    write_npy(bad, ED_F32, ed_shape1(7), NULL);
    assert_null(ed_data_load_npy(bad));
    CHECK_ERROR_HAS("found f32[7]");
    write_npy(bad, ED_F64, ed_shape3(2, 3, 2), NULL);
    assert_null(ed_data_load_npy(bad));
    CHECK_ERROR_HAS("found f64[2,3,2]");
    write_npy(bad, ED_F32, ed_shape2(0, 2), NULL);
    assert_null(ed_data_load_npy(bad));
    CHECK_ERROR_HAS("found f32[0,2]");
    write_npy(bad, ED_F32, ed_shape2(2, 2), (const double[]){1, 2, NAN, 4});
    assert_null(ed_data_load_npy(bad));
    CHECK_ERROR_HAS("value nan at [1, 0] is not a finite number");
    write_npy(bad, ED_F64, ed_shape2(2, 2), (const double[]){1, 1e300, 3, 4});
    assert_null(ed_data_load_npy(bad));
    CHECK_ERROR_HAS("value 1e+300 at [0, 1] is not a finite f32 number");
    assert_null(ed_data_load_npy(TMP "missing.npy"));
    CHECK_ERROR_HAS("cannot open");
    unlink(f64);
    unlink(f32);
    unlink(bad);
}

static void test_load_pairs(void **state)
{
    (void)state;
    const char *obs = TMP "obs.npy", *act = TMP "act.npy";
    write_npy(obs, ED_F32, ed_shape2(10, 6), NULL);
    write_npy(act, ED_F64, ed_shape3(10, 8, 2), NULL);
    ed_pairs p;
    assert_int_equal(ed_pairs_load_npy(obs, act, &p), ED_OK);
    assert_true(ed_shape_eq(p.obs->shape, ed_shape2(10, 6)));
    assert_true(ed_shape_eq(p.actions->shape, ed_shape3(10, 8, 2)));
    assert_int_equal(p.actions->dtype, ED_F32);
    assert_null(p.side);
    assert_true(((float *)p.actions->data)[159] == 159 * 0.25f);
    ed_pairs_free(&p);
    assert_null(p.obs);
    ed_pairs_free(&p); /* twice is harmless */

    write_npy(act, ED_F32, ed_shape3(9, 8, 2), NULL);
    assert_int_equal(ed_pairs_load_npy(obs, act, &p), ED_ERR);
    CHECK_ERROR_HAS("9 action chunks, but");
    CHECK_ERROR_HAS("has 10 observations");
    assert_null(p.obs);
    write_npy(act, ED_F32, ed_shape2(10, 16), NULL);
    assert_int_equal(ed_pairs_load_npy(obs, act, &p), ED_ERR);
    CHECK_ERROR_HAS(act);
    CHECK_ERROR_HAS("3-D array [N, H, A] of f32 or f64, found f32[10,16]");
    write_npy(obs, ED_I32, ed_shape2(10, 6), NULL);
    assert_int_equal(ed_pairs_load_npy(obs, act, &p), ED_ERR);
    CHECK_ERROR_HAS(obs);
    unlink(obs);
    unlink(act);
}

/* ---- the demonstration set ------------------------------------------------------------ */

static void test_demo_shapes_and_determinism(void **state)
{
    (void)state;
    ed_pairs a, b;
    assert_int_equal(ed_demo_pairs(500, 3, &a), ED_OK);
    assert_int_equal(ed_demo_pairs(500, 3, &b), ED_OK);
    assert_true(ed_shape_eq(a.obs->shape, ed_shape2(500, ED_DEMO_OBS)));
    assert_true(ed_shape_eq(a.actions->shape, ed_shape3(500, ED_DEMO_HORIZON, 2)));
    assert_true(ed_shape_eq(a.side->shape, ed_shape1(500)));
    assert_memory_equal(a.obs->data, b.obs->data, ed_tensor_bytes(a.obs));
    assert_memory_equal(a.actions->data, b.actions->data, ed_tensor_bytes(a.actions));
    ed_pairs_free(&b);
    assert_int_equal(ed_demo_pairs(500, 4, &b), ED_OK);
    assert_memory_not_equal(a.obs->data, b.obs->data, ed_tensor_bytes(a.obs));
    /* the last waypoint is the goal; the first is one eighth of the way from the start */
    const float *o = a.obs->data, *w = a.actions->data;
    for (int64_t i = 0; i < 500; i++) {
        const float *oi = o + 6 * i, *wi = w + 16 * i;
        assert_true(fabsf(wi[14] - oi[2]) < 1e-5f && fabsf(wi[15] - oi[3]) < 1e-5f);
        double len = hypot(oi[2] - oi[0], oi[3] - oi[1]);
        assert_true(len >= 1.5 - 1e-5 && len <= 2.0 + 1e-5);
        assert_true(fabs(oi[0]) <= 1 && fabs(oi[1]) <= 1);
    }
    ed_pairs_free(&a);
    ed_pairs_free(&b);
    assert_int_equal(ed_demo_pairs(-5, 3, &a), ED_ERR);
    CHECK_ERROR_HAS("demo: number of rows -5");
    assert_null(a.obs);
}

/* The data itself: every chunk reaches the goal, never touches the obstacle, and the
 * evaluator's left/right verdict equals the generator's label. Sides are Bernoulli(1/2):
 * at n = 4000 the left share has standard error 0.0079, bound +-0.04 (5 sigma). */
static void test_demo_modes_balanced_and_valid(void **state)
{
    (void)state;
    const int64_t n = 4000;
    ed_pairs p;
    assert_int_equal(ed_demo_pairs(n, 21, &p), ED_OK);
    ed_demo_stats s;
    assert_int_equal(ed_demo_evaluate(p.obs, p.actions, 0, &s), ED_OK);
    assert_int_equal(s.n, n);
    assert_int_equal(s.collided, 0);
    assert_int_equal(s.reached, n);
    assert_int_equal(s.valid, n);
    assert_int_equal(s.left + s.right, n);
    int64_t left = 0;
    for (int64_t i = 0; i < n; i++)
        left += ((const int32_t *)p.side->data)[i] == ED_DEMO_LEFT;
    assert_int_equal(s.left, left);
    assert_true(fabs(s.left_rate - 0.5) < 0.04 && fabs(s.right_rate - 0.5) < 0.04);
    assert_true(s.valid_rate == 1.0);

    /* every demonstration's polyline keeps at least 0.1 beyond the obstacle's radius */
    double worst = INFINITY;
    const float *o = p.obs->data, *w = p.actions->data;
    for (int64_t i = 0; i < n; i++) {
        const float *oi = o + 6 * i, *wi = w + 16 * i;
        double px = oi[0], py = oi[1];
        for (int k = 0; k < ED_DEMO_HORIZON; k++) {
            double qx = wi[2 * k], qy = wi[2 * k + 1], dx = qx - px, dy = qy - py;
            double t = ((oi[4] - px) * dx + (oi[5] - py) * dy) / (dx * dx + dy * dy);
            t = t < 0 ? 0 : t > 1 ? 1 : t;
            worst = fmin(worst, hypot(px + t * dx - oi[4], py + t * dy - oi[5]));
            px = qx;
            py = qy;
        }
    }
    if (worst < ED_DEMO_RADIUS + 0.1)
        fail_msg("a demonstration passes %g from an obstacle centre", worst);
    ed_pairs_free(&p);
}

/* The two modes are far apart and their average goes through the obstacle: for each
 * observation build the left and the right path with the same clearance, average them,
 * and every averaged chunk collides (while both modes are valid). */
static void test_demo_mode_average_collides(void **state)
{
    (void)state;
    const int64_t n = 2000;
    ed_pairs p;
    assert_int_equal(ed_demo_pairs(n, 5, &p), ED_OK);
    ed_tensor *mean = ed_tensor_new(ED_F32, ed_shape3(n, ED_DEMO_HORIZON, 2));
    ed_tensor *left = ed_tensor_new(ED_F32, ed_shape3(n, ED_DEMO_HORIZON, 2));
    ed_tensor *straight = ed_tensor_new(ED_F32, ed_shape3(n, ED_DEMO_HORIZON, 2));
    double min_gap = INFINITY;
    for (int64_t i = 0; i < n; i++) {
        const float *oi = (const float *)p.obs->data + 6 * i;
        float l[16], r[16];
        double c = 0.35 + 0.2 * (double)i / (double)n; /* the generator's range */
        assert_int_equal(ed_demo_path(oi, ED_DEMO_LEFT, c, l), ED_OK);
        assert_int_equal(ed_demo_path(oi, ED_DEMO_RIGHT, c, r), ED_OK);
        double gap = 0;
        for (int k = 0; k < 16; k++) {
            ((float *)mean->data)[16 * i + k] = 0.5f * (l[k] + r[k]);
            ((float *)left->data)[16 * i + k] = l[k];
        }
        for (int k = 0; k < 8; k++)
            gap = fmax(gap, hypot(l[2 * k] - r[2 * k], l[2 * k + 1] - r[2 * k + 1]));
        min_gap = fmin(min_gap, gap);
        for (int k = 1; k <= 8; k++) {
            float *si = (float *)straight->data + 16 * i + 2 * (k - 1);
            si[0] = oi[0] + (oi[2] - oi[0]) * (float)k / 8;
            si[1] = oi[1] + (oi[3] - oi[1]) * (float)k / 8;
        }
    }
    /* the modes pass the obstacle 2c >= 0.7 apart; at the nearest waypoint the bump is
     * still >= 0.9 of its peak, so the widest waypoint gap is above 0.6 */
    assert_true(min_gap > 0.6);
    ed_demo_stats s;
    assert_int_equal(ed_demo_evaluate(p.obs, mean, 0, &s), ED_OK);
    assert_int_equal(s.collided, n);
    assert_true(s.collision_rate == 1.0);
    assert_int_equal(s.valid, 0);
    assert_int_equal(s.reached, n); /* it does reach the goal, through the obstacle */
    assert_int_equal(ed_demo_evaluate(p.obs, left, 0, &s), ED_OK);
    assert_int_equal(s.valid, n);
    assert_int_equal(s.left, n);
    assert_int_equal(ed_demo_evaluate(p.obs, straight, 0, &s), ED_OK);
    assert_int_equal(s.collided, n);
    ed_tensor_free(mean);
    ed_tensor_free(left);
    ed_tensor_free(straight);
    ed_pairs_free(&p);
}

static void test_demo_evaluate_edge_cases(void **state)
{
    (void)state;
    ed_pairs p;
    assert_int_equal(ed_demo_pairs(50, 1, &p), ED_OK);
    ed_tensor *junk = ed_tensor_copy(p.actions);
    float *j = junk->data;
    for (int k = 0; k < 16; k++)
        j[k] = NAN; /* row 0: not finite: counted nowhere */
    for (int k = 0; k < 16; k++) /* row 1: stays at the start: never crosses, never arrives */
        j[16 + k] = ((const float *)p.obs->data)[6 + k % 2];
    j[32 + 14] += 0.5f; /* row 2: last waypoint 0.5 off the goal */
    ed_demo_stats s;
    assert_int_equal(ed_demo_evaluate(p.obs, junk, 0, &s), ED_OK);
    assert_int_equal(s.valid, 47);
    assert_int_equal(s.reached, 47);
    assert_int_equal(s.left + s.right, 48);
    assert_int_equal(s.collided, 0);
    assert_int_equal(ed_demo_evaluate(p.obs, junk, 1.0, &s), ED_OK); /* a looser goal */
    assert_int_equal(s.reached, 48);

    assert_int_equal(ed_demo_evaluate(p.actions, p.obs, 0, &s), ED_ERR);
    CHECK_ERROR_HAS("expected observations [N, >=6] and chunks [N, H, 2]");
    ed_tensor *few = ed_tensor_new(ED_F32, ed_shape3(49, 8, 2));
    assert_int_equal(ed_demo_evaluate(p.obs, few, 0, &s), ED_ERR);
    ed_tensor_free(few);
    float out[16];
    const float same[6] = {1, 1, 1, 1, 1, 1};
    assert_int_equal(ed_demo_path(same, ED_DEMO_LEFT, 0.4, out), ED_ERR);
    CHECK_ERROR_HAS("start and goal must be distinct");
    const float behind[6] = {0, 0, 1, 0, -1, 0};
    assert_int_equal(ed_demo_path(behind, ED_DEMO_LEFT, 0.4, out), ED_ERR);
    CHECK_ERROR_HAS("between start and goal");
    assert_int_equal(ed_demo_path((const float[6]){0, 0, 2, 0, 1, 0}, 7, 0.4, out), ED_ERR);
    ed_tensor_free(junk);
    ed_pairs_free(&p);
}

/* ---- image data ------------------------------------------------------------------------ */

static void check_unit_pixels(const ed_tensor *x)
{
    const float *p = x->data;
    for (int64_t i = 0; i < ed_tensor_numel(x); i++)
        if (!(p[i] >= 0 && p[i] <= 1)) fail_msg("pixel %lld is %g, outside [0, 1]", (long long)i, p[i]);
}

static void check_labels(const ed_tensor *y, int32_t classes, int64_t per_class_min)
{
    int64_t count[16] = {0};
    for (int64_t i = 0; i < y->shape.dim[0]; i++) {
        int32_t v = ((const int32_t *)y->data)[i];
        if (v < 0 || v >= classes) fail_msg("label %d at row %lld is outside 0..%d", v, (long long)i, classes - 1);
        count[v]++;
    }
    for (int k = 0; k < classes; k++) assert_true(count[k] >= per_class_min);
}

/* The split is by file order: train rows 0..1499, test rows 1500..1796. */
static void test_digits(void **state)
{
    (void)state;
    ed_images tr, te;
    assert_int_equal(ed_digits_load(ED_SPLIT_TRAIN, &tr), ED_OK);
    assert_int_equal(ed_digits_load(ED_SPLIT_TEST, &te), ED_OK);
    assert_true(ed_shape_eq(tr.x->shape, ed_shape4(1500, 1, 8, 8)));
    assert_true(ed_shape_eq(te.x->shape, ed_shape4(297, 1, 8, 8)));
    assert_true(ed_shape_eq(tr.labels->shape, ed_shape1(1500)));
    assert_int_equal(tr.classes, 10);
    check_unit_pixels(tr.x);
    check_unit_pixels(te.x);
    check_labels(tr.labels, 10, 146); /* 146..153 of each digit in the train rows */
    check_labels(te.labels, 10, 27);
    /* the file's first line: 0,0,5,13,9,1,0,0, 0,0,13,15,10,15,5,0, ... label 0 */
    const float *x = tr.x->data;
    const float row0[8] = {0, 0, 5, 13, 9, 1, 0, 0}, row1[8] = {0, 0, 13, 15, 10, 15, 5, 0};
    for (int k = 0; k < 8; k++) {
        assert_true(x[k] == row0[k] / 16);
        assert_true(x[8 + k] == row1[k] / 16);
    }
    assert_int_equal(((int32_t *)tr.labels->data)[0], 0);
    /* line 1501 starts the test split (0,0,0,3,12,12,2,0 ... label 1); line 1797 is an 8 */
    assert_true(((float *)te.x->data)[3] == 3.0f / 16 && ((float *)te.x->data)[4] == 12.0f / 16);
    assert_int_equal(((int32_t *)te.labels->data)[0], 1);
    assert_int_equal(((int32_t *)te.labels->data)[296], 8);
    ed_images_free(&tr);
    ed_images_free(&te);

    setenv("EDIFICE_DIGITS", TMP "no-digits.csv.gz", 1);
    assert_int_equal(ed_digits_load(ED_SPLIT_TRAIN, &tr), ED_ERR);
    CHECK_ERROR_HAS("no-digits.csv.gz");
    CHECK_ERROR_HAS("EDIFICE_DIGITS");
    assert_null(tr.x);
    FILE *f = fopen(TMP "digits.csv", "w");
    fputs("0,1,2\n", f);
    fclose(f);
    setenv("EDIFICE_DIGITS", TMP "digits.csv", 1);
    assert_int_equal(ed_digits_load(ED_SPLIT_TEST, &te), ED_ERR);
    CHECK_ERROR_HAS("digits.csv line 1 column 3 is not a valid value");
    unsetenv("EDIFICE_DIGITS");
    unlink(TMP "digits.csv");
}

static void test_fashion_mnist(void **state)
{
    (void)state;
    ed_dataset tr, te;
    assert_int_equal(ed_dataset_open(&tr, "fashion_mnist", 0, 0), ED_OK);
    assert_int_equal(ed_dataset_open_split(&te, "fashion_mnist", 0, 0, ED_SPLIT_TEST), ED_OK);
    assert_int_equal(ed_dataset_rows(&tr), 60000);
    assert_int_equal(ed_dataset_rows(&te), 10000);
    assert_true(ed_shape_eq(ed_dataset_sample_shape(&tr), ed_shape3(1, 28, 28)));
    assert_true(ed_dataset_is_images(&te));
    assert_true(te.channels == 1 && te.height == 28 && te.width == 28);
    assert_int_equal(tr.classes, 10);
    assert_int_equal(te.split, ED_SPLIT_TEST);
    check_unit_pixels(te.x);
    check_labels(tr.labels, 10, 6000); /* the upstream train split is balanced */
    check_labels(te.labels, 10, 1000);
    assert_int_equal(((int32_t *)tr.labels->data)[0], 9);
    assert_int_equal(((int32_t *)te.labels->data)[1], 2);
    assert_true(((float *)te.x->data)[221] == 37.0f / 255); /* the first test image's pixel (7, 25) */
    ed_dataset_free(&tr);
    ed_dataset_free(&te);

    setenv("EDIFICE_FASHION_MNIST", TMP "no-such-dir", 1);
    assert_int_equal(ed_dataset_open(&tr, "fashion_mnist", 0, 0), ED_ERR);
    CHECK_ERROR_HAS("no-such-dir/train-images-idx3-ubyte.gz: No such file or directory");
    CHECK_ERROR_HAS("dataset-fashion-mnist");
    unsetenv("EDIFICE_FASHION_MNIST");
}

static void write_u8_npy(const char *path, ed_shape s, const uint8_t *v)
{
    char dict[256];
    int len = snprintf(dict, sizeof dict, "{'descr': '|u1', 'fortran_order': False, 'shape': (");
    for (int i = 0; i < s.rank; i++) len += snprintf(dict + len, sizeof dict - (size_t)len, "%lld, ", (long long)s.dim[i]);
    len += snprintf(dict + len, sizeof dict - (size_t)len, "), }");
    size_t header = (10 + (size_t)len + 1 + 63) / 64 * 64 - 10;
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    fputc((int)(header & 0xff), f);
    fputc((int)(header >> 8), f);
    fprintf(f, "%s%*s\n", dict, (int)(header - (size_t)len - 1), "");
    fwrite(v, 1, (size_t)ed_shape_numel(s), f);
    fclose(f);
}

/* .npy images: [N, H, W] uint8 gains a channel axis and is divided by 255; labels come
 * from a second file; every batch's labels belong to its images. */
static void test_npy_images(void **state)
{
    (void)state;
    const char *x_path = TMP "img.npy", *y_path = TMP "lab.npy";
    uint8_t px[20 * 2 * 3];
    for (int i = 0; i < 20; i++)
        for (int k = 0; k < 6; k++) px[6 * i + k] = (uint8_t)(10 * i + k);
    write_u8_npy(x_path, ed_shape3(20, 2, 3), px);
    ed_tensor *y = ed_tensor_new(ED_I32, ed_shape1(20));
    for (int i = 0; i < 20; i++) ((int32_t *)y->data)[i] = i % 7;
    assert_int_equal(ed_npy_write(y_path, y), ED_OK);

    ed_dataset d;
    assert_int_equal(ed_dataset_open(&d, TMP "img.npy,labels=" TMP "lab.npy", 1, 0), ED_OK);
    assert_true(ed_shape_eq(d.x->shape, ed_shape4(20, 1, 2, 3)));
    assert_true(d.channels == 1 && d.height == 2 && d.width == 3);
    assert_int_equal(d.classes, 7);
    assert_true(((float *)d.x->data)[6 * 19 + 5] == 195.0f / 255);
    ed_tensor *xb = ed_tensor_new(ED_F32, ed_shape4(16, 1, 2, 3)), *lb = ed_tensor_new(ED_I32, ed_shape1(16));
    assert_int_equal(ed_dataset_batch(&d, 3, 4, xb, NULL), ED_OK);
    assert_int_equal(ed_dataset_batch_labels(&d, 3, 4, lb), ED_OK);
    for (int j = 0; j < 16; j++) {
        int row = (int)lroundf(((float *)xb->data)[6 * j] * 255) / 10;
        assert_int_equal(((int32_t *)lb->data)[j], row % 7);
    }
    uint64_t with_labels = ed_dataset_fingerprint(&d);
    ed_dataset_free(&d);
    assert_int_equal(ed_dataset_open(&d, x_path, 1, 0), ED_OK);
    assert_null(d.labels);
    assert_int_equal(d.classes, 0);
    assert_true(ed_dataset_fingerprint(&d) != with_labels);
    assert_int_equal(ed_dataset_batch_labels(&d, 3, 4, lb), ED_ERR);
    CHECK_ERROR_HAS("has no labels");
    ed_dataset_free(&d);
    assert_int_equal(ed_dataset_open_split(&d, x_path, 1, 0, ED_SPLIT_TEST), ED_ERR);
    CHECK_ERROR_HAS("has no test split");

    /* [N, C, H, W] floats stay as they are; channels last or values beyond [0, 1] do not */
    ed_tensor *rgb = ed_tensor_new(ED_F64, ed_shape4(2, 3, 4, 5));
    for (int i = 0; i < 120; i++) ((double *)rgb->data)[i] = i / 119.0;
    assert_int_equal(ed_npy_write(x_path, rgb), ED_OK);
    assert_int_equal(ed_dataset_open(&d, x_path, 1, 0), ED_OK);
    assert_true(ed_shape_eq(ed_dataset_sample_shape(&d), ed_shape3(3, 4, 5)));
    assert_true(((float *)d.x->data)[119] == 1.0f);
    ed_dataset_free(&d);
    ((double *)rgb->data)[7] = 2;
    assert_int_equal(ed_npy_write(x_path, rgb), ED_OK);
    assert_int_equal(ed_dataset_open(&d, x_path, 1, 0), ED_ERR);
    CHECK_ERROR_HAS("float pixels must be in [0, 1], element 7 is 2");
    ed_tensor *nhwc = ed_tensor_new(ED_F32, ed_shape4(2, 28, 28, 1));
    assert_int_equal(ed_npy_write(x_path, nhwc), ED_OK);
    assert_int_equal(ed_dataset_open(&d, x_path, 1, 0), ED_ERR);
    CHECK_ERROR_HAS("channels first [N, C, H, W] with C <= 4, found C = 28");
    ed_tensor *ints = ed_tensor_new(ED_I32, ed_shape3(2, 3, 3));
    assert_int_equal(ed_npy_write(x_path, ints), ED_OK);
    assert_int_equal(ed_dataset_open(&d, x_path, 1, 0), ED_ERR);
    CHECK_ERROR_HAS("of uint8 or float, found 'i4' [2, 3, 3]");

    /* labels: the wrong count, a negative label, floats */
    write_u8_npy(x_path, ed_shape3(20, 2, 3), px);
    ed_tensor *few = ed_tensor_new(ED_I32, ed_shape1(19));
    assert_int_equal(ed_npy_write(y_path, few), ED_OK);
    assert_int_equal(ed_dataset_open(&d, TMP "img.npy,labels=" TMP "lab.npy", 1, 0), ED_ERR);
    CHECK_ERROR_HAS("lab.npy: expected integer labels [20], found i32[19]");
    ((int32_t *)y->data)[3] = -1;
    assert_int_equal(ed_npy_write(y_path, y), ED_OK);
    assert_int_equal(ed_dataset_open(&d, TMP "img.npy,labels=" TMP "lab.npy", 1, 0), ED_ERR);
    CHECK_ERROR_HAS("label -1 at row 3 is negative");
    ed_tensor *fy = ed_tensor_new(ED_F32, ed_shape1(20));
    assert_int_equal(ed_npy_write(y_path, fy), ED_OK);
    assert_int_equal(ed_dataset_open(&d, TMP "img.npy,labels=" TMP "lab.npy", 1, 0), ED_ERR);
    CHECK_ERROR_HAS("found f32[20]");
    assert_null(d.x);

    /* [N, D] data takes labels too, and is otherwise read as before */
    ed_tensor *flat = ed_tensor_new(ED_F32, ed_shape2(19, 2));
    assert_int_equal(ed_npy_write(x_path, flat), ED_OK);
    assert_int_equal(ed_npy_write(y_path, few), ED_OK);
    assert_int_equal(ed_dataset_open(&d, TMP "img.npy,labels=" TMP "lab.npy", 1, 0), ED_OK);
    assert_false(ed_dataset_is_images(&d));
    assert_int_equal(d.classes, 1);
    assert_true(ed_shape_eq(ed_dataset_sample_shape(&d), ed_shape1(2)));
    ed_dataset_free(&d);
    ed_tensor *tensors[] = {xb, lb, y, rgb, nhwc, ints, few, fy, flat};
    for (size_t i = 0; i < sizeof tensors / sizeof tensors[0]; i++) ed_tensor_free(tensors[i]);
    unlink(x_path);
    unlink(y_path);
}

/* The old specs: no labels, no image shape, no test split. */
static void test_dataset_specs_without_images(void **state)
{
    (void)state;
    ed_dataset d;
    assert_int_equal(ed_dataset_open(&d, "moons", 50, 1), ED_OK);
    assert_false(ed_dataset_is_images(&d));
    assert_null(d.labels);
    assert_int_equal(d.split, ED_SPLIT_TRAIN);
    ed_dataset_free(&d);
    assert_int_equal(ed_dataset_open_split(&d, "moons", 50, 1, ED_SPLIT_TEST), ED_ERR);
    CHECK_ERROR_HAS("data moons has no test split (digits and fashion_mnist have one)");
    assert_int_equal(ed_dataset_open(&d, "digits", 0, 0), ED_OK); /* n does not matter */
    assert_int_equal(ed_dataset_rows(&d), 1500);
    assert_true(ed_shape_eq(ed_dataset_sample_shape(&d), ed_shape3(1, 8, 8)));
    ed_dataset_free(&d);
    assert_int_equal(ed_dataset_open(&d, "spirals", 10, 0), ED_ERR);
    CHECK_ERROR_HAS("digits, fashion_mnist), FILE.npy, FILE.npy,labels=Y.npy, or OBS.npy,ACTIONS.npy");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_deterministic_per_seed),
        cmocka_unit_test(test_sizes_and_bad_arguments),
        cmocka_unit_test(test_moments),
        cmocka_unit_test(test_noise_option),
        cmocka_unit_test(test_8gaussians_near_centres),
        cmocka_unit_test(test_checkerboard_cells),
        cmocka_unit_test(test_circles_radii),
        cmocka_unit_test(test_moons_geometry),
        cmocka_unit_test(test_swiss_roll_curve),
        cmocka_unit_test(test_load_npy),
        cmocka_unit_test(test_load_pairs),
        cmocka_unit_test(test_demo_shapes_and_determinism),
        cmocka_unit_test(test_demo_modes_balanced_and_valid),
        cmocka_unit_test(test_demo_mode_average_collides),
        cmocka_unit_test(test_demo_evaluate_edge_cases),
        cmocka_unit_test(test_digits),
        cmocka_unit_test(test_fashion_mnist),
        cmocka_unit_test(test_npy_images),
        cmocka_unit_test(test_dataset_specs_without_images),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
