/* Consistency models: the boundary f(x, sigma_min) = x exactly for any weights, the CT
 * schedule's numbers, the EMA target checked by hand over three steps, the loss falling,
 * and one-step and multistep sampling of an untrained model against its closed form. */
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

#define ROWS 64

static ed_gen_model small_model(void)
{
    ed_gen_model m;
    assert_int_equal(ed_gen_model_init(&m, ed_model_find("consistency"), ed_shape1(2), 0), ED_OK);
    assert_int_equal(ed_gen_model_set(&m, "hidden", "16"), ED_OK);
    assert_int_equal(ed_gen_model_set(&m, "layers", "1"), ED_OK);
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
        cmocka_unit_test(test_boundary_exact),     cmocka_unit_test(test_schedule),
        cmocka_unit_test(test_target_ema_by_hand), cmocka_unit_test(test_loss_falls),
        cmocka_unit_test(test_sample_untrained),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
