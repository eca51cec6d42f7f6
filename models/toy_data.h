/* Data sets for the generative models: seeded 2-D toy sets, .npy files, and the
 * conditional obstacle-avoidance demonstration set (observation -> action chunk).
 *
 * Every random draw comes from the project's Philox streams (runtime/philox.h) with the
 * caller's seed, call 0 and a stream per quantity (FNV-1a of "data.<set>" plus a small
 * index), and element i of a stream belongs to row i. So a set is a pure function of
 * (seed, n, noise), rows are independent draws, and the first m rows of an n-row draw
 * equal an m-row draw. Every failure returns NULL / ED_ERR with one line in
 * ed_last_error(); nothing aborts on user input.
 *
 * The 2-D toy sets, f32 [N, 2]. Each noiseless set is centred on the origin and scaled
 * so its per-coordinate variance, averaged over x and y, is 1 (computed from the exact
 * distribution, not from the sample); then independent N(0, noise^2) noise is added to
 * each coordinate, so the variance is about 1 + noise^2.
 *   moons        sklearn's two half circles: with probability 1/2 the upper moon
 *                (cos t, sin t), else the lower (1 - cos t, 0.5 - sin t), t ~ U(0, pi);
 *                centred by (0.5, 0.25), scaled by 1.418. Default noise 0.1.
 *   circles      radius 1 or 0.5 (probability 1/2 each), angle ~ U(0, 2 pi); scaled by
 *                1/sqrt(0.3125) = 1.789. Default noise 0.05.
 *   swiss_roll   sklearn's roll in 2-D: t = 1.5 pi (1 + 2u), u ~ U(0, 1),
 *                (t cos t, t sin t); centred and scaled by its exact mean and variance.
 *                Default noise 0.05.
 *   8gaussians   centres sqrt(2) (cos(k pi/4), sin(k pi/4)), k uniform in 0..7; the
 *                noise is each Gaussian's standard deviation. Default noise 0.1.
 *   checkerboard uniform on the 8 cells (c, r) of a 4 x 4 board with c + r even (cell
 *                (c, r) covers [c - 2, c - 1) x [r - 2, r - 1)), scaled by sqrt(3)/2 so
 *                the board spans +-1.732. Default noise 0. */
#ifndef ED_TOY_DATA_H
#define ED_TOY_DATA_H

#include "runtime/tensor.h"

#include <stdint.h>

typedef enum {
    ED_TOY_MOONS,
    ED_TOY_CIRCLES,
    ED_TOY_SWISS_ROLL,
    ED_TOY_8GAUSSIANS,
    ED_TOY_CHECKERBOARD,
    ED_TOY_COUNT
} ed_toy;

/* Pass as noise to use the set's default (any negative value does). */
#define ED_NOISE_DEFAULT (-1.0)
/* Largest n the generators accept. */
#define ED_DATA_MAX_ROWS (INT64_C(1) << 31)

/* "moons", "circles", "swiss_roll", "8gaussians", "checkerboard"; "?" out of range. */
const char *ed_toy_name(ed_toy set);
/* ED_ERR for an unknown name, with a message listing the valid names. */
int ed_toy_parse(const char *name, ed_toy *out);
/* The noise used for ED_NOISE_DEFAULT (0 for an out-of-range set). */
double ed_toy_default_noise(ed_toy set);

/* n rows (0 <= n <= ED_DATA_MAX_ROWS) of a set as a new f32 [n, 2] tensor. noise: the
 * standard deviation added per coordinate; negative: the default; NaN/inf: an error. */
ed_tensor *ed_toy_sample(ed_toy set, int64_t n, uint64_t seed, double noise);
/* The same, by name. */
ed_tensor *ed_toy_by_name(const char *name, int64_t n, uint64_t seed, double noise);
/* A set made of separate modes (8gaussians): their centres into centers[0 .. 2k) (x, y
 * per mode) and k returned; 0 for a set without modes. max: room for max modes. */
int ed_toy_modes(ed_toy set, double *centers, int max);

/* Any .npy file holding a 2-D array [N, D] (N, D >= 1) of f32 or f64, as a new f32
 * tensor. Other dtypes or ranks, an empty array, or a value that is not finite in f32
 * (NaN, inf, or an f64 beyond the f32 range) are errors naming the file and what was
 * found. */
ed_tensor *ed_data_load_npy(const char *path);

/* ---- conditional data: (observation, action chunk) pairs --------------------------- */

typedef struct {
    ed_tensor *obs;     /* f32 [N, O] */
    ed_tensor *actions; /* f32 [N, H, A] */
    ed_tensor *side;    /* i32 [N]: the demonstration set's mode, ED_DEMO_LEFT or
                           ED_DEMO_RIGHT; NULL for pairs loaded from files */
} ed_pairs;

/* Frees the tensors and sets the fields to NULL (safe on a zeroed or freed struct). */
void ed_pairs_free(ed_pairs *p);

/* Pairs from two .npy files: obs [N, O] and actions [N, H, A] (N, O, H, A >= 1, the same
 * N), each f32 or f64 (converted to f32) with finite values. On failure *out is left
 * zeroed and the message names the offending file. */
int ed_pairs_load_npy(const char *obs_path, const char *actions_path, ed_pairs *out);

/* The obstacle-avoidance demonstration set. Per row (all draws independent):
 *   start s ~ U([-1, 1]^2); heading theta ~ U(-pi, pi); length L ~ U(1.5, 2);
 *   u = (cos theta, sin theta), nrm = (-u.y, u.x) (the left normal); goal g = s + L u;
 *   obstacle o = s + a L u + b nrm with a ~ U(0.4, 0.6), b ~ U(-0.05, 0.05): near the
 *   middle of the straight line, slightly off it; radius ED_DEMO_RADIUS.
 *   side: left (sigma = +1) or right (sigma = -1) with probability 1/2 each;
 *   clearance c ~ U(0.35, 0.55); peak offset h = b + sigma c.
 *   path p(tau) = s + tau L u + h S(tau) nrm for tau in [0, 1], with the bump
 *   S(tau) = smoothstep(tau / a) for tau <= a, smoothstep((1 - tau) / (1 - a)) after,
 *   smoothstep(x) = 3x^2 - 2x^3: S(0) = S(1) = 0, S(a) = 1, C1 everywhere (the path
 *   leaves the start and meets the goal along the straight line's direction).
 *   waypoints: p(k / H) for k = 1..H, H = ED_DEMO_HORIZON (the last one is the goal).
 * obs = (s.x, s.y, g.x, g.y, o.x, o.y): f32 [n, 6]; actions f32 [n, 8, 2]; side i32 [n].
 * At tau = a the path passes the obstacle's centre at lateral distance c >= 0.35, so
 * every demonstration clears the obstacle (by at least 0.1 beyond its radius, checked
 * by the tests on the polyline). The two modes are mirror images about offset b: their
 * mean has offset b S(tau), which goes through the obstacle's centre at tau = a, so a
 * policy that averages the modes collides. */
#define ED_DEMO_HORIZON 8
#define ED_DEMO_OBS 6
#define ED_DEMO_ACTION 2
#define ED_DEMO_RADIUS 0.2
#define ED_DEMO_GOAL_TOL 0.1
#define ED_DEMO_LEFT 0
#define ED_DEMO_RIGHT 1

int ed_demo_pairs(int64_t n, uint64_t seed, ed_pairs *out);

/* The path of the construction above for one observation (s, g, o), on the given side
 * with the given clearance c (the generator draws c from U(0.35, 0.55)); a and b are
 * recovered from the obstacle's position, a = (o - s).u / L and b = (o - s).nrm. Writes
 * H x 2 waypoints. For tests and pictures: e.g. the mean of the left and the right path
 * of an observation is the "mode-averaging policy", and it hits the obstacle. An error
 * if start equals goal or the obstacle is not strictly between them along the line. */
int ed_demo_path(const float obs[ED_DEMO_OBS], int side, double clearance, float out[ED_DEMO_HORIZON * ED_DEMO_ACTION]);

/* How a batch of action chunks for the demonstration set behaves. A chunk's path is the
 * polyline start, waypoint 1, ..., waypoint H.
 *   collided: some segment comes within ED_DEMO_RADIUS of the obstacle's centre;
 *   reached:  the last waypoint is within goal_tol of the goal;
 *   left / right: the side of the obstacle on which the path first crosses the line
 *             through the obstacle perpendicular to start -> goal (left = towards the
 *             left normal); a path that never crosses it is neither;
 *   valid:    reached, not collided, and left or right.
 * A chunk with a non-finite coordinate is counted in none of these. Rates are counts
 * divided by n (0 when n = 0). */
typedef struct {
    int64_t n, collided, reached, valid, left, right;
    double collision_rate, reach_rate, valid_rate, left_rate, right_rate;
} ed_demo_stats;

/* obs: f32 or f64 [N, >= 6] laid out as above; chunks: f32 or f64 [N, H, 2], H >= 1.
 * goal_tol <= 0 means ED_DEMO_GOAL_TOL. */
int ed_demo_evaluate(const ed_tensor *obs, const ed_tensor *chunks, double goal_tol, ed_demo_stats *out);

#endif
