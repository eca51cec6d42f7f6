/* Consistency models: the boundary f(x, sigma_min) = x exactly for any weights, the CT
 * schedule's numbers, the EMA target checked by hand over three steps, the loss falling,
 * one-step and multistep sampling of an untrained model against its closed form, and
 * distillation: the teacher's ODE slope, its frozen weights, the CD loss falling. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "models/generate.h"
#include "models/registry.h"
#include "models/trainer.h"
#include "runtime/philox.h"
#include "support/run_check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ROWS 64

static ed_gen_model small_model(void)
{
    ed_gen_model m;
    assert_int_equal(ed_gen_model_init(&m, ed_model_find("consistency"), ed_shape1(2), 0), ED_OK);
    assert_int_equal(ed_gen_model_set(&m, "hidden", "16"), ED_OK);
    assert_int_equal(ed_gen_model_set(&m, "layers", "1"), ED_OK);
    assert_int_equal(ed_gen_model_set(&m, "schedule_steps", "1000"), ED_OK); /* 0: a trainer's run's steps */
    /* Song et al.'s CT (the defaults are iCT's): uniform levels and weights, mu0 0.9 */
    assert_int_equal(ed_gen_model_set(&m, "mu0", "0.9"), ED_OK);
    assert_int_equal(ed_gen_model_set(&m, "noise", "uniform"), ED_OK);
    assert_int_equal(ed_gen_model_set(&m, "weighting", "uniform"), ED_OK);
    return m;
}

/* Every store value (the zero output layer too) replaced by N(0, 1) draws. */
static void randomize_store(ed_store *st)
{
    for (int i = 0; i < ed_store_count(st); i++) {
        ed_tensor *t = ed_store_tensor(st, i);
        if (t->dtype == ED_F32) ed_rng_normal(t->data, ED_F32, ed_tensor_numel(t), 7, 0, (uint32_t)i);
    }
}

/* f(x, sigma_min) is x bit for bit on both backends, for sigma given as [] and as [B];
 * at sigma = 1 the network does change x. */
static void test_boundary_exact(void **state)
{
    (void)state;
    ed_gen_model m = small_model();
    const ed_cm_opts *o = &m.opts.cm;
    ed_tensor *x = ed_tensor_new(ED_F32, ed_shape2(ROWS, 2));
    ed_rng_normal(x->data, ED_F32, 2 * ROWS, 3, 0, 0);
    for (int i = 0; i < 2 * ROWS; i++) ((float *)x->data)[i] *= 3;
    for (int be = 0; be < 2; be++) {
        ed_graph *g = ed_graph_new("boundary");
        ed_node *xi = ed_input(g, "x", ED_F32, ed_shape2(ROWS, 2));
        ed_output(g, "scalar", ed_cm_function(xi, ed_scalar(g, ED_F32, o->sigma_min), o, "cm"));
        ed_output(g, "rows", ed_cm_function(xi, ed_fill(g, ED_F32, ed_shape1(ROWS), o->sigma_min), o, "cm"));
        ed_output(g, "one", ed_cm_function(xi, ed_scalar(g, ED_F32, 1), o, "cm"));
        if (ed_graph_error(g)) fail_msg("%s", ed_graph_error(g));
        ed_store *st = ed_store_new(5);
        ed_program *p = compile_with(g, st, be ? ED_BACKEND_JIT : ED_BACKEND_INTERP, 1);
        randomize_store(st);
        run_ok(p, (ed_feed[]){{"x", x}}, 1);
        assert_memory_equal(out(p, "scalar")->data, x->data, ed_tensor_bytes(x));
        assert_memory_equal(out(p, "rows")->data, x->data, ed_tensor_bytes(x));
        int differ = 0;
        for (int i = 0; i < 2 * ROWS; i++) differ += f32_at(out(p, "one"), i) != f32_at(x, i);
        assert_true(differ > ROWS);
        ed_program_free(p);
        ed_store_free(st);
        ed_graph_free(g);
    }
    ed_tensor_free(x);
}

/* N(k), mu(k) and the Karras grid at their stated values. */
static void test_schedule(void **state)
{
    (void)state;
    ed_gen_model m = small_model();
    const ed_cm_opts *o = &m.opts.cm;
    assert_int_equal(o->schedule_steps, 1000);
    assert_int_equal(ed_cm_grid_size(o, 0), 2);
    assert_int_equal(ed_cm_grid_size(o, 1000), 51);
    assert_int_equal(ed_cm_grid_size(o, 5000), 51);
    /* k = 500: ceil(sqrt(0.5 (51^2 - 4) + 4) - 1) + 1 = ceil(36.09 - 1) + 1 */
    assert_int_equal(ed_cm_grid_size(o, 500), 37);
    for (int k = 1; k <= 1000; k++) assert_true(ed_cm_grid_size(o, k) >= ed_cm_grid_size(o, k - 1));
    assert_true(fabs(ed_cm_ema_rate(o, 0) - 0.9) < 1e-15);
    assert_true(fabs(ed_cm_ema_rate(o, 1000) - pow(0.9, 2.0 / 51)) < 1e-15);
    assert_true(ed_cm_karras_sigma(o, 0, 10) == 0.002);
    assert_true(ed_cm_karras_sigma(o, 9, 10) == 80);
    double mid = pow((pow(0.002, 1 / 7.0) + pow(80, 1 / 7.0)) / 2, 7);
    assert_true(fabs(ed_cm_karras_sigma(o, 1, 3) - mid) < 1e-12 * mid);
    for (int i = 1; i < 10; i++) assert_true(ed_cm_karras_sigma(o, i, 10) > ed_cm_karras_sigma(o, i - 1, 10));
    /* with a teacher, CD's fixed grid from step 0: 18 points, mu 0.95 (cd_grid 0: CT's) */
    assert_int_equal(ed_gen_model_set(&m, "teacher", "t.safetensors"), ED_OK);
    assert_true(ed_cm_fixed_grid(o));
    for (int k = 0; k <= 2000; k += 500) {
        assert_int_equal(ed_cm_grid_size(o, k), 18);
        assert_true(fabs(ed_cm_ema_rate(o, k) - 0.95) < 1e-15);
    }
    assert_int_equal(ed_gen_model_set(&m, "cd_grid", "0"), ED_OK);
    assert_false(ed_cm_fixed_grid(o));
    assert_int_equal(ed_cm_grid_size(o, 0), 2);
    assert_int_equal(ed_cm_grid_size(o, 500), 37);
}

/* schedule_steps 0 (the default) becomes a fresh run's planned steps, kept in the model
 * the checkpoint saves; a given value stays; a run without planned steps is refused. */
static void test_run_steps(void **state)
{
    (void)state;
    ed_dataset d;
    assert_int_equal(ed_dataset_open(&d, "moons", 512, 1), ED_OK);
    ed_gen_model m;
    assert_int_equal(ed_gen_model_init(&m, ed_model_find("consistency"), ed_shape1(2), 0), ED_OK);
    assert_int_equal(m.opts.cm.schedule_steps, 0);
    const int64_t given[] = {0, 123};
    for (int i = 0; i < 2; i++) {
        m.opts.cm.schedule_steps = given[i];
        ed_trainer *t = ed_trainer_new(&m, &d, &(ed_trainer_opts){.batch = 32, .lr = 1e-3, .steps = 300});
        if (!t) fail_msg("%s", ed_last_error());
        assert_int_equal(ed_trainer_model(t)->opts.cm.schedule_steps, given[i] ? given[i] : 300);
        ed_trainer_free(t);
    }
    m.opts.cm.schedule_steps = 0;
    assert_null(ed_trainer_new(&m, &d, &(ed_trainer_opts){.batch = 32, .lr = 1e-3}));
    assert_non_null(strstr(ed_last_error(), "schedule_steps 0 follows the run's planned steps"));
    ed_dataset_free(&d);
}

/* CT's schedule options beside CD's fixed grid, and CD's options without a teacher, are
 * refused with the way out. */
static void test_grid_options(void **state)
{
    (void)state;
    ed_gen_model m;
    assert_int_equal(ed_gen_model_init(&m, ed_model_find("consistency"), ed_shape1(2), 0), ED_OK);
    assert_int_equal(ed_gen_model_set(&m, "teacher", "t.safetensors"), ED_OK);
    assert_int_equal(ed_gen_model_check(&m), ED_OK);
    assert_int_equal(ed_gen_model_set(&m, "s0", "10"), ED_OK);
    assert_int_equal(ed_gen_model_check(&m), ED_ERR);
    assert_non_null(strstr(ed_last_error(), "give --cd_grid 0 to distil with them"));
    assert_int_equal(ed_gen_model_set(&m, "s0", "2"), ED_OK);
    assert_int_equal(ed_gen_model_set(&m, "noise", "uniform"), ED_OK); /* the fixed grid's own draw: still refused */
    assert_int_equal(ed_gen_model_check(&m), ED_ERR);
    assert_int_equal(ed_gen_model_set(&m, "noise", "lognormal"), ED_OK);
    assert_int_equal(ed_gen_model_set(&m, "cd_grid", "0"), ED_OK);
    assert_int_equal(ed_gen_model_check(&m), ED_OK);
    assert_int_equal(ed_gen_model_set(&m, "cd_grid", "1"), ED_OK);
    assert_int_equal(ed_gen_model_check(&m), ED_ERR);
    assert_int_equal(ed_gen_model_init(&m, ed_model_find("consistency"), ed_shape1(2), 0), ED_OK);
    assert_int_equal(ed_gen_model_set(&m, "cd_mu", "0.9"), ED_OK);
    assert_int_equal(ed_gen_model_check(&m), ED_ERR);
    assert_non_null(strstr(ed_last_error(), "cd_grid and cd_mu are for distillation"));
}

/* The store's f32 values whose names start with prefix, back to back. */
static double *snapshot(const ed_store *st, const char *prefix, int64_t *n)
{
    *n = 0;
    for (int i = 0; i < ed_store_count(st); i++)
        if (strncmp(ed_store_name(st, i), prefix, strlen(prefix)) == 0) *n += ed_tensor_numel(ed_store_tensor(st, i));
    double *v = malloc((size_t)*n * sizeof *v);
    int64_t k = 0;
    for (int i = 0; i < ed_store_count(st); i++)
        if (strncmp(ed_store_name(st, i), prefix, strlen(prefix)) == 0) {
            const ed_tensor *t = ed_store_tensor(st, i);
            for (int64_t j = 0; j < ed_tensor_numel(t); j++) v[k++] = f32_at(t, j);
        }
    return v;
}

/* Three steps: target_{k+1} = mu(k) target_k + (1 - mu(k)) theta_{k+1}, with
 * target_0 = theta_0, from the values in the store before and after each step. */
static void test_target_ema_by_hand(void **state)
{
    (void)state;
    ed_dataset d;
    assert_int_equal(ed_dataset_open(&d, "moons", 512, 1), ED_OK);
    ed_gen_model m = small_model();
    ed_trainer *t = ed_trainer_new(&m, &d, &(ed_trainer_opts){.batch = 32, .lr = 1e-2, .seed = 3});
    if (!t) fail_msg("%s", ed_last_error());
    const ed_store *st = ed_trainer_store(t);
    int64_t n, nt;
    double *theta = snapshot(st, "cm.", &n), *target = snapshot(st, "cm_ema.", &nt);
    assert_int_equal(n, nt);
    assert_true(n > 100);
    for (int k = 0; k < 3; k++) {
        double loss;
        assert_int_equal(ed_trainer_step(t, &loss), ED_OK);
        double *theta_new = snapshot(st, "cm.", &n), *target_new = snapshot(st, "cm_ema.", &nt);
        float mu = (float)ed_cm_ema_rate(&m.opts.cm, k);
        assert_true(mu > 0.9f - 1e-6f && mu < 0.99f); /* N(k) = 2, 3, 4: 0.9, 0.932, 0.949 */
        int64_t changed = 0, moved = 0;
        for (int64_t i = 0; i < n; i++) {
            double old = k == 0 ? theta[i] : target[i];
            double want = (double)mu * old + (double)(1.0f - mu) * theta_new[i];
            if (!(fabs(target_new[i] - want) <= 2e-7 * (1 + fabs(want))))
                fail_msg("step %d, value %lld: target %.9g, want %.9g (mu %.7f)", k, (long long)i, target_new[i], want,
                         (double)mu);
            changed += theta_new[i] != old;
            moved += theta_new[i] != old && target_new[i] != theta_new[i];
        }
        /* An average, not a copy (step 0 moves only the output layer: the zero output
         * weights give the hidden layers no gradient yet). */
        assert_true(changed > 0 && moved == changed);
        free(theta), free(target);
        theta = theta_new, target = target_new;
    }
    free(theta), free(target);
    ed_trainer_free(t);
    ed_dataset_free(&d);
}

/* Mean loss of the first and last `window` of `steps` steps. */
static void train_losses(const char *loss, const char *ict, int steps, int window, double *first, double *last)
{
    ed_dataset d;
    assert_int_equal(ed_dataset_open(&d, "moons", 4096, 2), ED_OK);
    ed_gen_model m = small_model();
    assert_int_equal(ed_gen_model_set(&m, "hidden", "32"), ED_OK);
    assert_int_equal(ed_gen_model_set(&m, "loss", loss), ED_OK);
    if (ict) { /* iCT's level draw and weighting */
        assert_int_equal(ed_gen_model_set(&m, "noise", "lognormal"), ED_OK);
        assert_int_equal(ed_gen_model_set(&m, "weighting", "inverse"), ED_OK);
        assert_int_equal(ed_gen_model_set(&m, "mu0", "0"), ED_OK);
    }
    char k[32];
    snprintf(k, sizeof k, "%d", steps);
    assert_int_equal(ed_gen_model_set(&m, "schedule_steps", k), ED_OK);
    ed_trainer *t = ed_trainer_new(&m, &d, &(ed_trainer_opts){.batch = 128, .lr = 2e-3, .seed = 4});
    if (!t) fail_msg("%s", ed_last_error());
    *first = *last = 0;
    for (int s = 0; s < steps; s++) {
        double l;
        assert_int_equal(ed_trainer_step(t, &l), ED_OK);
        assert_true(isfinite(l));
        if (s < window) *first += l / window;
        if (s >= steps - window) *last += l / window;
    }
    printf("consistency, %s loss%s: %.5f -> %.5f over %d steps\n", loss, ict ? " (iCT)" : "", *first, *last, steps);
    ed_trainer_free(t);
    ed_dataset_free(&d);
}

/* Over a schedule's run the loss falls (measured: pseudo-Huber 0.26 -> 0.022, l2 0.12 -> 0.0009). Part of the
 * fall is the grid refining (adjacent sigmas closer), part the network; with a fixed
 * grid the loss first rises from the untrained f = c_skip x, which is consistent at
 * high noise by collapsing there, so only a schedule's run gives a clean fall. */
static void test_loss_falls(void **state)
{
    (void)state;
    double first, last;
    train_losses("pseudo_huber", NULL, 300, 20, &first, &last);
    assert_true(last < 0.5 * first);
    double plain = first;
    train_losses("l2", NULL, 300, 20, &first, &last);
    assert_true(last < 0.5 * first);
    /* iCT's weighting divides by the pair's spacing, so its loss does not shrink with the
     * grid (measured 0.86 -> 0.91); it is finite and well above the unweighted one. */
    train_losses("pseudo_huber", "ict", 300, 20, &first, &last);
    assert_true(first > 2 * plain && last > 2 * plain && last < 2 * first);
}

/* The teacher's slope dx/dsigma = t (y - v(t y, t)), t = 1 / (sigma_y + c), at the
 * untrained teacher (zero output layer, v = 0): x / (sigma + 1); x / (sigma + 0.9) for a
 * teacher with sigma_min 0.1; for [0, 1] data read at y = (x + 1) / 2, sigma / 2. */
static void test_teacher_slope(void **state)
{
    (void)state;
    ed_tensor *x = ed_tensor_new(ED_F32, ed_shape2(ROWS, 2)), *s = ed_tensor_new(ED_F32, ed_shape1(ROWS));
    ed_rng_normal(x->data, ED_F32, 2 * ROWS, 3, 0, 0);
    for (int i = 0; i < ROWS; i++) ((float *)s->data)[i] = (float)(0.002 * pow(40000, i / (double)(ROWS - 1)));
    for (int k = 0; k < 3; k++) {
        ed_gen_model m = small_model();
        m.opts.cm.unit_range = k == 2;
        m.opts.cm.teacher_fm.sigma_min = k == 1 ? 0.1 : 0;
        ed_graph *g = ed_graph_new("slope");
        ed_node *xi = ed_input(g, "x", ED_F32, ed_shape2(ROWS, 2)), *si = ed_input(g, "s", ED_F32, ed_shape1(ROWS));
        ed_output(g, "d", ed_cm_teacher_slope(xi, si, &m.opts.cm));
        if (ed_graph_error(g)) fail_msg("%s", ed_graph_error(g));
        ed_store *st = ed_store_new(5);
        ed_program *p = compile_with(g, st, ED_BACKEND_INTERP, 1);
        assert_non_null(ed_store_get(st, "teacher.fm.out.w")); /* the teacher's scope */
        run_ok(p, (ed_feed[]){{"x", x}, {"s", s}}, 2);
        for (int64_t i = 0; i < 2 * ROWS; i++) {
            double xv = f32_at(x, i), sv = f32_at(s, i / 2), want;
            if (k == 2) want = (xv + 1) / 2 / (sv / 2 + 1);
            else want = xv / (sv + (k == 1 ? 0.9 : 1));
            if (!(fabs(f32_at(out(p, "d"), i) - want) <= 1e-6 * (1 + fabs(want))))
                fail_msg("case %d, value %lld: slope %.9g, want %.9g", k, (long long)i, f32_at(out(p, "d"), i), want);
        }
        ed_program_free(p);
        ed_store_free(st);
        ed_graph_free(g);
    }
    ed_tensor_free(x);
    ed_tensor_free(s);
}

/* Consistency distillation from a small flow-matching teacher trained here: the
 * teacher's options are adopted, its tensors join the store under "teacher." bit for bit
 * and stay so through training (no optimizer state for them), and the CD loss falls on
 * the fixed 18-point grid (measured 0.066 -> 0.022; on CT's growing grid, cd_grid 0,
 * 2.77 -> 0.011: at N = 2 the pair spans sigma_max to sigma_min). */
static void test_distill(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/edifice_cd_teacher_%d.safetensors", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
             (int)getpid());
    ed_dataset d;
    assert_int_equal(ed_dataset_open(&d, "moons", 4096, 2), ED_OK);
    ed_gen_model fm;
    assert_int_equal(ed_gen_model_init(&fm, ed_model_find("flow_matching"), ed_shape1(2), 0), ED_OK);
    assert_int_equal(ed_gen_model_set(&fm, "hidden", "24"), ED_OK);
    assert_int_equal(ed_gen_model_set(&fm, "layers", "1"), ED_OK);
    ed_trainer *tf = ed_trainer_new(&fm, &d, &(ed_trainer_opts){.batch = 128, .lr = 2e-3, .seed = 4});
    if (!tf) fail_msg("%s", ed_last_error());
    for (int s = 0; s < 300; s++) assert_int_equal(ed_trainer_step(tf, NULL), ED_OK);
    assert_int_equal(ed_trainer_save(tf, path), ED_OK);

    ed_gen_model m; /* the defaults with a teacher: CD's fixed grid */
    assert_int_equal(ed_gen_model_init(&m, ed_model_find("consistency"), ed_shape1(2), 0), ED_OK);
    assert_int_equal(ed_gen_model_set(&m, "hidden", "32"), ED_OK);
    assert_int_equal(ed_gen_model_set(&m, "layers", "1"), ED_OK);
    assert_int_equal(ed_gen_model_set(&m, "teacher", path), ED_OK);
    assert_int_equal(ed_gen_model_check(&m), ED_OK);
    ed_trainer *t = ed_trainer_new(&m, &d, &(ed_trainer_opts){.batch = 128, .lr = 2e-3, .seed = 4, .steps = 300});
    if (!t) fail_msg("%s", ed_last_error());
    assert_int_equal(ed_trainer_model(t)->opts.cm.teacher_fm.net.hidden, 24); /* adopted */
    assert_int_equal(ed_cm_grid_size(&ed_trainer_model(t)->opts.cm, 0), 18);
    double first = 0, last = 0;
    for (int s = 0; s < 300; s++) {
        double l;
        assert_int_equal(ed_trainer_step(t, &l), ED_OK);
        assert_true(isfinite(l));
        if (s < 20) first += l / 20;
        if (s >= 280) last += l / 20;
    }
    printf("consistency distillation: %.5f -> %.5f over 300 steps\n", first, last);
    assert_true(last < 0.5 * first);
    const ed_store *ft = ed_trainer_store(tf), *st = ed_trainer_store(t);
    int copied = 0;
    for (int i = 0; i < ed_store_count(ft); i++) {
        const char *name = ed_store_name(ft, i);
        if (strncmp(name, "opt.", 4) == 0) continue;
        char scoped[256];
        snprintf(scoped, sizeof scoped, "teacher.%s", name);
        const ed_tensor *a = ed_store_tensor(ft, i), *b = ed_store_get(st, scoped);
        if (!b) fail_msg("the student's store lacks %s", scoped);
        assert_true(ed_shape_eq(a->shape, b->shape));
        assert_memory_equal(a->data, b->data, ed_tensor_bytes(a));
        copied++;
    }
    assert_true(copied >= 8); /* in, block0 (ln, fc1, fc2), out: weights and biases */
    for (int i = 0; i < ed_store_count(st); i++) assert_null(strstr(ed_store_name(st, i), "opt.teacher"));
    for (int i = 0; i < ed_store_count(st); i++) assert_null(strstr(ed_store_name(st, i), ".teacher."));
    ed_trainer_free(t);
    ed_trainer_free(tf);
    ed_dataset_free(&d);
    remove(path);
}

/* Untrained, F = 0, so f(x, s) = c_skip(s) x and the sampler's output is a closed form:
 *   1 step:  c_skip(s0) s0 z                                   (s0 = sigma_max)
 *   2 steps: c_skip(s1) (c_skip(s0) s0 z + sqrt(s1^2 - smin^2) z')
 * with s1 the middle of the 3-point Karras grid. 4000 values: rms within 5%. */
static double c_skip(double s) { return 0.25 / ((s - 0.002) * (s - 0.002) + 0.25); }

static double untrained_rms(int64_t steps)
{
    ed_gen_model m = small_model();
    ed_store *st = ed_store_new(2);
    ed_tensor *s = NULL;
    ed_gen_draw_opts o = {.sampler = {.steps = steps}, .seed = 4};
    if (ed_gen_draw(&m, st, 2000, NULL, NULL, &o, &s) != ED_OK) fail_msg("%s", ed_last_error());
    double s2 = 0;
    for (int64_t i = 0; i < ed_tensor_numel(s); i++) s2 += f32_at(s, i) * f32_at(s, i);
    ed_tensor_free(s);
    ed_store_free(st);
    return sqrt(s2 / 4000);
}

static void test_sample_untrained(void **state)
{
    (void)state;
    ed_gen_model m = small_model();
    double one = c_skip(80) * 80, mid = ed_cm_karras_sigma(&m.opts.cm, 1, 3);
    double two = c_skip(mid) * sqrt(one * one + mid * mid - 0.002 * 0.002);
    double have1 = untrained_rms(1), have2 = untrained_rms(2);
    printf("untrained: 1 step rms %.5g (closed form %.5g), 2 steps %.5g (%.5g, middle sigma %.4f)\n", have1, one, have2,
           two, mid);
    assert_true(fabs(have1 / one - 1) < 0.05);
    assert_true(fabs(have2 / two - 1) < 0.05);
    /* one compiled call for any K, and the errors */
    assert_true(isfinite(untrained_rms(8)));
    ed_graph *g = ed_graph_new("s");
    assert_null(m.def->sample(g, &m, 4, NULL, NULL, &(ed_gen_sample_opts){.sampler = "euler"}));
    assert_non_null(strstr(ed_graph_error(g), "unknown sampler 'euler' (samplers: consistency)"));
    ed_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_boundary_exact),
        cmocka_unit_test(test_schedule),
        cmocka_unit_test(test_run_steps),
        cmocka_unit_test(test_grid_options),
        cmocka_unit_test(test_target_ema_by_hand),
        cmocka_unit_test(test_loss_falls),
        cmocka_unit_test(test_sample_untrained),
        cmocka_unit_test(test_teacher_slope),
        cmocka_unit_test(test_distill),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
