/* Toy 2-D data sets, .npy data, and the obstacle-avoidance demonstration set. */
#include "models/toy_data.h"
#include "runtime/error.h"
#include "io/npy.h"
#include "runtime/philox.h"
#include "runtime/store.h"

#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PI 3.14159265358979323846

static const char *const toy_names[ED_TOY_COUNT] = {
    [ED_TOY_MOONS] = "moons",           [ED_TOY_CIRCLES] = "circles",           [ED_TOY_SWISS_ROLL] = "swiss_roll",
    [ED_TOY_8GAUSSIANS] = "8gaussians", [ED_TOY_CHECKERBOARD] = "checkerboard",
};

static const double toy_noise[ED_TOY_COUNT] = {
    [ED_TOY_MOONS] = 0.1,      [ED_TOY_CIRCLES] = 0.05,     [ED_TOY_SWISS_ROLL] = 0.05,
    [ED_TOY_8GAUSSIANS] = 0.1, [ED_TOY_CHECKERBOARD] = 0.0,
};

const char *ed_toy_name(ed_toy set) { return (unsigned)set < ED_TOY_COUNT ? toy_names[set] : "?"; }

double ed_toy_default_noise(ed_toy set) { return (unsigned)set < ED_TOY_COUNT ? toy_noise[set] : 0.0; }

int ed_toy_parse(const char *name, ed_toy *out)
{
    for (int k = 0; name && k < ED_TOY_COUNT; k++) {
        if (strcmp(name, toy_names[k]) == 0) {
            *out = (ed_toy)k;
            return ED_OK;
        }
    }
    return ed_fail("unknown data set '%s' (valid: moons, circles, swiss_roll, 8gaussians, "
                   "checkerboard)",
                   name ? name : "(null)");
}

/* ---- random draws -------------------------------------------------------------- */

/* The Philox stream of quantity k of a set: FNV-1a("data.<set>") + k. */
static uint32_t data_stream(const char *set, uint32_t k)
{
    char name[64];
    snprintf(name, sizeof name, "data.%s", set);
    return ed_name_stream(name) + k;
}

/* n doubles in [0, 1) (or N(0, 1) if normal) from stream k of set; NULL with a message
 * if out of memory. Element i belongs to row i (or to i / width for wider draws). */
static double *draw(const char *set, uint32_t k, int64_t n, uint64_t seed, bool normal)
{
    double *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
    if (!v) {
        ed_fail("data: out of memory drawing %lld values", (long long)n);
        return NULL;
    }
    if (normal) ed_rng_normal(v, ED_F64, n, seed, 0, data_stream(set, k));
    else ed_rng_uniform(v, ED_F64, n, seed, 0, data_stream(set, k), 0.0, 1.0);
    return v;
}

/* ---- the noiseless sets: raw points plus their exact centre and scale -------------- */

/* Each generator fills xy[2i], xy[2i+1] for row i from the two uniform draws u, w (and
 * a third, z, where needed), before centring and scaling. */
typedef struct {
    double cx, cy, scale; /* out = (raw - c) * scale */
} placement;

static void moons_row(double u, double w, double *x, double *y)
{
    double t = PI * w;
    if (u < 0.5) {
        *x = cos(t);
        *y = sin(t);
    } else {
        *x = 1.0 - cos(t);
        *y = 0.5 - sin(t);
    }
}

/* Exact moments of the noiseless moons. x: each moon has variance 1/2 (cos t), their
 * means are 0 and 1, so 1/2 + 1/4 = 3/4 around 0.5. y: each moon has variance
 * 1/2 - 4/pi^2 (sin t), means 2/pi and 1/2 - 2/pi, so the mixture adds the squared half
 * difference, around 0.25. */
static placement moons_placement(void)
{
    double half = (4.0 / PI - 0.5) / 2.0;
    double var_y = 0.5 - 4.0 / (PI * PI) + half * half;
    return (placement){0.5, 0.25, 1.0 / sqrt((0.75 + var_y) / 2.0)};
}

static void circles_row(double u, double w, double *x, double *y)
{
    double r = u < 0.5 ? 1.0 : 0.5, t = 2.0 * PI * w;
    *x = r * cos(t);
    *y = r * sin(t);
}

static void swiss_row(double u, double w, double *x, double *y)
{
    (void)u;
    double t = 1.5 * PI * (1.0 + 2.0 * w);
    *x = t * cos(t);
    *y = t * sin(t);
}

/* Exact mean and variance of the roll by Simpson's rule over w in [0, 1] (the integrand
 * is smooth; 4096 intervals give about 1e-12 relative error). */
static placement swiss_placement(void)
{
    const int m = 4096;
    double sx = 0, sy = 0, sxx = 0, syy = 0;
    for (int i = 0; i <= m; i++) {
        double wt = (i == 0 || i == m) ? 1.0 : (i % 2 ? 4.0 : 2.0), x, y;
        swiss_row(0, (double)i / m, &x, &y);
        sx += wt * x;
        sy += wt * y;
        sxx += wt * x * x;
        syy += wt * y * y;
    }
    double k = 1.0 / (3.0 * m);
    double mx = sx * k, my = sy * k;
    double var = (sxx * k - mx * mx + syy * k - my * my) / 2.0;
    return (placement){mx, my, 1.0 / sqrt(var)};
}

static void gaussians_row(double u, double w, double *x, double *y)
{
    (void)w;
    int k = (int)(u * 8.0);
    if (k > 7) k = 7;
    *x = sqrt(2.0) * cos(k * PI / 4.0);
    *y = sqrt(2.0) * sin(k * PI / 4.0);
}

/* Column c = floor(4u), row r = 2 floor(2w) + (c mod 2): a cell with c + r even, each
 * of the 8 with probability 1/8; the position inside the cell is uniform. */
static void checker_row(double u, double w, double *x, double *y)
{
    double cu = 4.0 * u, rw = 2.0 * w;
    int c = (int)cu, k = (int)rw;
    *x = cu - 2.0;
    *y = (double)(2 * k + (c & 1)) + (rw - k) - 2.0;
}

typedef void (*row_fn)(double u, double w, double *x, double *y);

static const row_fn toy_rows[ED_TOY_COUNT] = {
    [ED_TOY_MOONS] = moons_row,          [ED_TOY_CIRCLES] = circles_row,      [ED_TOY_SWISS_ROLL] = swiss_row,
    [ED_TOY_8GAUSSIANS] = gaussians_row, [ED_TOY_CHECKERBOARD] = checker_row,
};

static placement toy_placement(ed_toy set)
{
    switch (set) {
    case ED_TOY_MOONS: return moons_placement();
    case ED_TOY_CIRCLES: return (placement){0, 0, 1.0 / sqrt(0.3125)};
    case ED_TOY_SWISS_ROLL: return swiss_placement();
    case ED_TOY_8GAUSSIANS: return (placement){0, 0, 1.0};
    default: return (placement){0, 0, sqrt(3.0) / 2.0}; /* a uniform [-2, 2): var 4/3 */
    }
}

static int check_rows(const char *what, int64_t n)
{
    if (n < 0 || n > ED_DATA_MAX_ROWS)
        return ed_fail("%s: number of rows %lld is outside 0..%lld", what, (long long)n, (long long)ED_DATA_MAX_ROWS);
    return ED_OK;
}

ed_tensor *ed_toy_sample(ed_toy set, int64_t n, uint64_t seed, double noise)
{
    if ((unsigned)set >= ED_TOY_COUNT) {
        ed_fail("data: unknown toy set %d", (int)set);
        return NULL;
    }
    const char *name = toy_names[set];
    if (check_rows(name, n) != ED_OK) return NULL;
    if (isnan(noise) || isinf(noise) || noise > 1e6) { /* the sets span a few units: 1e6 is noise alone */
        ed_fail("%s: noise must be a finite number up to 1e6, got %g", name, noise);
        return NULL;
    }
    if (noise < 0) noise = toy_noise[set];
    ed_tensor *t = ed_tensor_new(ED_F32, ed_shape2(n, 2));
    double *u = t ? draw(name, 0, n, seed, false) : NULL;
    double *w = u ? draw(name, 1, n, seed, false) : NULL;
    double *e = w ? draw(name, 2, 2 * n, seed, true) : NULL;
    if (!e) {
        free(u);
        free(w);
        ed_tensor_free(t);
        return NULL;
    }
    placement pl = toy_placement(set);
    float *out = t->data;
    for (int64_t i = 0; i < n; i++) {
        double x, y;
        toy_rows[set](u[i], w[i], &x, &y);
        out[2 * i] = (float)((x - pl.cx) * pl.scale + noise * e[2 * i]);
        out[2 * i + 1] = (float)((y - pl.cy) * pl.scale + noise * e[2 * i + 1]);
    }
    free(u);
    free(w);
    free(e);
    return t;
}

ed_tensor *ed_toy_by_name(const char *name, int64_t n, uint64_t seed, double noise)
{
    ed_toy set;
    if (ed_toy_parse(name, &set) != ED_OK) return NULL;
    return ed_toy_sample(set, n, seed, noise);
}

/* ---- .npy files -------------------------------------------------------------------- */

static void index_str(const ed_shape *s, int64_t flat, char *buf, size_t cap)
{
    int64_t strides[ED_MAX_RANK];
    ed_shape_strides(*s, strides);
    size_t len = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < s->rank && len < cap; i++) {
        len += (size_t)snprintf(buf + len, cap - len, i ? ", %lld" : "%lld",
                                (long long)(flat / strides[i] % s->dim[i]));
    }
    if (len < cap) snprintf(buf + len, cap - len, "]");
}

/* A new f32 copy of t (f32 or f64) whose every value is finite in f32; frees t in every
 * case. path and role name the file in messages. */
static ed_tensor *to_finite_f32(ed_tensor *t, const char *path)
{
    ed_tensor *out = t->dtype == ED_F32 ? t : ed_tensor_new(ED_F32, t->shape);
    if (!out) {
        ed_tensor_free(t);
        return NULL;
    }
    int64_t n = ed_tensor_numel(t);
    float *dst = out->data;
    for (int64_t i = 0; i < n; i++) {
        double v = t->dtype == ED_F32 ? (double)((const float *)t->data)[i] : ((const double *)t->data)[i];
        if (!isfinite(v) || fabs(v) > FLT_MAX) {
            char idx[96];
            index_str(&t->shape, i, idx, sizeof idx);
            ed_fail("%s: value %g at %s is not a finite %s", path, v, idx,
                    t->dtype == ED_F32 ? "number" : "f32 number");
            if (out != t) ed_tensor_free(out);
            ed_tensor_free(t);
            return NULL;
        }
        dst[i] = (float)v;
    }
    if (out != t) ed_tensor_free(t);
    return out;
}

/* Reads path and checks it holds an f32/f64 array of the given rank with no zero dim;
 * layout describes the expected shape for the message, e.g. "[N, D]". */
static ed_tensor *read_array(const char *path, int rank, const char *layout)
{
    if (!path) {
        ed_fail("data: NULL path");
        return NULL;
    }
    ed_tensor *t = ed_npy_read(path);
    if (!t) return NULL;
    bool ok = (t->dtype == ED_F32 || t->dtype == ED_F64) && t->shape.rank == rank;
    for (int i = 0; ok && i < rank; i++) ok = t->shape.dim[i] > 0;
    if (!ok) {
        char type[96];
        ed_type_str(t->dtype, t->shape, type, sizeof type);
        ed_fail("%s: expected a non-empty %d-D array %s of f32 or f64, found %s", path, rank, layout, type);
        ed_tensor_free(t);
        return NULL;
    }
    return to_finite_f32(t, path);
}

ed_tensor *ed_data_load_npy(const char *path) { return read_array(path, 2, "[N, D]"); }

void ed_pairs_free(ed_pairs *p)
{
    if (!p) return;
    ed_tensor_free(p->obs);
    ed_tensor_free(p->actions);
    ed_tensor_free(p->side);
    *p = (ed_pairs){0};
}

int ed_pairs_load_npy(const char *obs_path, const char *actions_path, ed_pairs *out)
{
    if (!out) return ed_fail("data: NULL output");
    *out = (ed_pairs){0};
    ed_tensor *obs = read_array(obs_path, 2, "[N, O]");
    if (!obs) return ED_ERR;
    ed_tensor *act = read_array(actions_path, 3, "[N, H, A]");
    if (!act) {
        ed_tensor_free(obs);
        return ED_ERR;
    }
    if (obs->shape.dim[0] != act->shape.dim[0]) {
        ed_fail("%s: %lld action chunks, but %s has %lld observations", actions_path, (long long)act->shape.dim[0],
                obs_path, (long long)obs->shape.dim[0]);
        ed_tensor_free(obs);
        ed_tensor_free(act);
        return ED_ERR;
    }
    out->obs = obs;
    out->actions = act;
    return ED_OK;
}

/* ---- the demonstration set -------------------------------------------------------- */

enum { D_SX, D_SY, D_THETA, D_LEN, D_A, D_B, D_SIDE, D_CLEAR, D_DRAWS };

static double smoothstep(double x) { return x * x * (3.0 - 2.0 * x); }

/* The bump S(tau) of data.h: 0 at both ends, 1 at tau = a, C1. */
static double bump(double tau, double a)
{
    return tau <= a ? smoothstep(tau / a) : smoothstep((1.0 - tau) / (1.0 - a));
}

/* The waypoints p(k / H), k = 1..H, of the path from s along u (length len) whose
 * lateral offset along the left normal is h S(tau), S peaking at tau = a. */
static void demo_waypoints(double sx, double sy, double ux, double uy, double len, double a, double h, float *out)
{
    double nx = -uy, ny = ux;
    for (int k = 1; k <= ED_DEMO_HORIZON; k++) {
        double tau = (double)k / ED_DEMO_HORIZON, lat = h * bump(tau, a);
        out[2 * (k - 1)] = (float)(sx + tau * len * ux + lat * nx);
        out[2 * (k - 1) + 1] = (float)(sy + tau * len * uy + lat * ny);
    }
}

static void demo_row(const double d[D_DRAWS], float *obs, float *act, int32_t *side)
{
    double sx = 2.0 * d[D_SX] - 1.0, sy = 2.0 * d[D_SY] - 1.0;
    double theta = PI * (2.0 * d[D_THETA] - 1.0), len = 1.5 + 0.5 * d[D_LEN];
    double a = 0.4 + 0.2 * d[D_A], b = 0.1 * d[D_B] - 0.05;
    double ux = cos(theta), uy = sin(theta), nx = -uy, ny = ux;
    bool left = d[D_SIDE] < 0.5;
    double h = b + (left ? 1.0 : -1.0) * (0.35 + 0.2 * d[D_CLEAR]);
    const double o[ED_DEMO_OBS] = {
        sx, sy, sx + len * ux, sy + len * uy, sx + a * len * ux + b * nx, sy + a * len * uy + b * ny};
    for (int k = 0; k < ED_DEMO_OBS; k++) obs[k] = (float)o[k];
    demo_waypoints(sx, sy, ux, uy, len, a, h, act);
    *side = left ? ED_DEMO_LEFT : ED_DEMO_RIGHT;
}

int ed_demo_path(const float obs[ED_DEMO_OBS], int side, double clearance, float out[ED_DEMO_HORIZON * ED_DEMO_ACTION])
{
    if (!obs || !out) return ed_fail("demo path: NULL argument");
    if (side != ED_DEMO_LEFT && side != ED_DEMO_RIGHT)
        return ed_fail("demo path: side %d is neither ED_DEMO_LEFT nor ED_DEMO_RIGHT", side);
    if (!isfinite(clearance)) return ed_fail("demo path: clearance must be finite, got %g", clearance);
    double sx = obs[0], sy = obs[1], dx = obs[2] - sx, dy = obs[3] - sy;
    double len = sqrt(dx * dx + dy * dy);
    if (!(len > 0) || !isfinite(len)) return ed_fail("demo path: start and goal must be distinct finite points");
    double ux = dx / len, uy = dy / len, ox = obs[4] - sx, oy = obs[5] - sy;
    double a = (ox * ux + oy * uy) / len, b = -uy * ox + ux * oy;
    if (!(a > 0 && a < 1))
        return ed_fail("demo path: the obstacle must lie between start and goal along the "
                       "line (its fraction along it is %g)",
                       a);
    double h = b + (side == ED_DEMO_LEFT ? clearance : -clearance);
    demo_waypoints(sx, sy, ux, uy, len, a, h, out);
    return ED_OK;
}

int ed_demo_pairs(int64_t n, uint64_t seed, ed_pairs *out)
{
    if (!out) return ed_fail("demo: NULL output");
    *out = (ed_pairs){0};
    if (check_rows("demo", n) != ED_OK) return ED_ERR;
    ed_pairs p = {
        .obs = ed_tensor_new(ED_F32, ed_shape2(n, ED_DEMO_OBS)),
        .actions = ed_tensor_new(ED_F32, ed_shape3(n, ED_DEMO_HORIZON, ED_DEMO_ACTION)),
        .side = ed_tensor_new(ED_I32, ed_shape1(n)),
    };
    double *draws[D_DRAWS] = {0};
    bool ok = p.obs && p.actions && p.side;
    for (int k = 0; ok && k < D_DRAWS; k++) ok = (draws[k] = draw("demo", (uint32_t)k, n, seed, false)) != NULL;
    for (int64_t i = 0; ok && i < n; i++) {
        double d[D_DRAWS];
        for (int k = 0; k < D_DRAWS; k++) d[k] = draws[k][i];
        demo_row(d, (float *)p.obs->data + i * ED_DEMO_OBS,
                 (float *)p.actions->data + i * ED_DEMO_HORIZON * ED_DEMO_ACTION, (int32_t *)p.side->data + i);
    }
    for (int k = 0; k < D_DRAWS; k++) free(draws[k]);
    if (!ok) {
        ed_pairs_free(&p);
        return ED_ERR;
    }
    *out = p;
    return ED_OK;
}

/* ---- evaluating chunks ------------------------------------------------------------- */

static double seg_dist2(double ax, double ay, double bx, double by, double px, double py)
{
    double dx = bx - ax, dy = by - ay, l2 = dx * dx + dy * dy;
    double t = l2 > 0 ? ((px - ax) * dx + (py - ay) * dy) / l2 : 0.0;
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    double ex = ax + t * dx - px, ey = ay + t * dy - py;
    return ex * ex + ey * ey;
}

typedef struct {
    bool finite, collided, reached;
    int side; /* -1 neither, else ED_DEMO_LEFT / ED_DEMO_RIGHT */
} chunk_verdict;

/* o: start, goal, obstacle; p: the H waypoints, x and y interleaved. */
static chunk_verdict judge_chunk(const double o[6], const double *p, int64_t h, double tol)
{
    chunk_verdict v = {.finite = true, .side = -1};
    for (int k = 0; k < 6; k++) v.finite = v.finite && isfinite(o[k]);
    for (int64_t k = 0; k < 2 * h; k++) v.finite = v.finite && isfinite(p[k]);
    if (!v.finite) return v;
    double ux = o[2] - o[0], uy = o[3] - o[1], ox = o[4], oy = o[5];
    double r2 = ED_DEMO_RADIUS * ED_DEMO_RADIUS;
    double px = o[0], py = o[1];
    double prev_along = (px - ox) * ux + (py - oy) * uy;
    for (int64_t k = 0; k < h; k++) {
        double qx = p[2 * k], qy = p[2 * k + 1];
        if (seg_dist2(px, py, qx, qy, ox, oy) < r2) v.collided = true;
        double along = (qx - ox) * ux + (qy - oy) * uy;
        if (v.side < 0 && prev_along < 0 && along >= 0) {
            double t = -prev_along / (along - prev_along);
            double cx = px + t * (qx - px) - ox, cy = py + t * (qy - py) - oy;
            double lateral = -uy * cx + ux * cy; /* along the left normal */
            if (lateral != 0) v.side = lateral > 0 ? ED_DEMO_LEFT : ED_DEMO_RIGHT;
        }
        prev_along = along;
        px = qx;
        py = qy;
    }
    double gx = px - o[2], gy = py - o[3];
    v.reached = gx * gx + gy * gy <= tol * tol;
    return v;
}

static int check_eval_args(const ed_tensor *obs, const ed_tensor *chunks, ed_demo_stats *out)
{
    if (!obs || !chunks || !out) return ed_fail("demo evaluate: NULL argument");
    char a[96], b[96];
    ed_type_str(obs->dtype, obs->shape, a, sizeof a);
    ed_type_str(chunks->dtype, chunks->shape, b, sizeof b);
    bool float_types = ed_dtype_is_float(obs->dtype) && ed_dtype_is_float(chunks->dtype);
    if (!float_types || obs->shape.rank != 2 || obs->shape.dim[1] < ED_DEMO_OBS || chunks->shape.rank != 3 ||
        chunks->shape.dim[1] < 1 || chunks->shape.dim[2] != 2 || obs->shape.dim[0] != chunks->shape.dim[0])
        return ed_fail("demo evaluate: expected observations [N, >=6] and chunks [N, H, 2] of "
                       "f32 or f64, got %s and %s",
                       a, b);
    return ED_OK;
}

static void add_verdict(ed_demo_stats *s, chunk_verdict v)
{
    if (!v.finite) return;
    s->collided += v.collided;
    s->reached += v.reached;
    s->left += v.side == ED_DEMO_LEFT;
    s->right += v.side == ED_DEMO_RIGHT;
    s->valid += v.reached && !v.collided && v.side >= 0;
}

int ed_demo_evaluate(const ed_tensor *obs, const ed_tensor *chunks, double goal_tol, ed_demo_stats *out)
{
    if (check_eval_args(obs, chunks, out) != ED_OK) return ED_ERR;
    int64_t n = obs->shape.dim[0], h = chunks->shape.dim[1], width = obs->shape.dim[1];
    double tol = goal_tol > 0 ? goal_tol : ED_DEMO_GOAL_TOL;
    double *p = malloc((size_t)(2 * h) * sizeof *p);
    if (!p) return ed_fail("demo evaluate: out of memory");
    ed_demo_stats s = {.n = n};
    for (int64_t i = 0; i < n; i++) {
        double o[6];
        for (int k = 0; k < 6; k++) o[k] = ed_tensor_get(obs, i * width + k);
        for (int64_t k = 0; k < 2 * h; k++) p[k] = ed_tensor_get(chunks, i * 2 * h + k);
        add_verdict(&s, judge_chunk(o, p, h, tol));
    }
    free(p);
    double inv = n > 0 ? 1.0 / (double)n : 0.0;
    s.collision_rate = (double)s.collided * inv;
    s.reach_rate = (double)s.reached * inv;
    s.valid_rate = (double)s.valid * inv;
    s.left_rate = (double)s.left * inv;
    s.right_rate = (double)s.right * inv;
    *out = s;
    return ED_OK;
}

int ed_toy_modes(ed_toy set, double *centers, int max)
{
    if (set != ED_TOY_8GAUSSIANS || max < 8) return 0;
    placement pl = toy_placement(set);
    for (int k = 0; k < 8; k++) {
        double x, y;
        gaussians_row((k + 0.5) / 8.0, 0, &x, &y);
        centers[2 * k] = (x - pl.cx) * pl.scale;
        centers[2 * k + 1] = (y - pl.cy) * pl.scale;
    }
    return 8;
}
