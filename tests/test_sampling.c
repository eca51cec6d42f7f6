/* Sampling registered models (models/generate.h): every model and sampler gives finite
 * samples of the right shape, unconditional and conditional (with guidance), the JIT
 * agrees with the interpreter, and bad requests fail with a message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "backend/backend.h"
#include "models/dataset.h"
#include "models/generate.h"

#include <math.h>
#include <string.h>

static ed_gen_model small_model(const char *name, ed_shape sample, int64_t obs)
{
    ed_gen_model m;
    if (ed_gen_model_init(&m, ed_model_find(name), sample, obs) != ED_OK) fail_msg("%s", ed_last_error());
    ed_gen_model_set(&m, "hidden", "16");
    ed_gen_model_set(&m, "layers", "1");
    if (strcmp(name, "ddim") == 0) ed_gen_model_set(&m, "timesteps", "200");
    return m;
}

/* Build the sampler for n samples, run it once on backend be (params from their
 * initializers, seed 3), and return a copy of the samples. */
static ed_tensor *draw(const ed_gen_model *m, int64_t n, const ed_gen_sample_opts *o, ed_backend be)
{
    ed_graph *g = ed_graph_new("t");
    ed_node *obs = m->obs_size ? ed_input(g, "obs", ED_F32, ed_shape2(n, m->obs_size)) : NULL;
    ed_node *s = ed_gen_model_sample(g, m, n, obs, NULL, o);
    if (!s) fail_msg("%s", ed_graph_error(g));
    ed_output(g, "s", s);
    ed_store *st = ed_store_new(5);
    /* The output layer starts at zero; give every param a small nonzero value so the
     * network's output (and guidance) matters. */
    ed_program *p = ed_compile(g, st, &(ed_compile_opts){.backend = be, .seed = 3});
    if (!p) fail_msg("%s", ed_last_error());
    for (int i = 0; i < ed_store_count(st); i++) {
        ed_tensor *t = (ed_tensor *)ed_store_tensor(st, i);
        float *v = t->data;
        for (int64_t k = 0; k < ed_tensor_numel(t); k++) v[k] += 0.05f * (float)((k * 7 + i) % 11 - 5);
    }
    ed_tensor *ob = obs ? ed_tensor_new(ED_F32, obs->shape) : NULL;
    for (int64_t k = 0; ob && k < ed_tensor_numel(ob); k++) ((float *)ob->data)[k] = (float)(k % 5) * 0.3f - 0.6f;
    ed_feed f = {"obs", ob};
    if (ed_run(p, &f, ob ? 1 : 0) != ED_OK) fail_msg("%s", ed_last_error());
    ed_tensor *r = ed_tensor_copy(ed_program_output(p, "s"));
    ed_tensor_free(ob);
    ed_program_free(p);
    ed_store_free(st);
    ed_graph_free(g);
    return r;
}

static void expect_finite_shape(const ed_tensor *t, int64_t n, ed_shape sample)
{
    assert_int_equal(t->shape.rank, sample.rank + 1);
    assert_int_equal(t->shape.dim[0], n);
    for (int i = 0; i < sample.rank; i++) assert_int_equal(t->shape.dim[i + 1], sample.dim[i]);
    const float *v = t->data;
    for (int64_t k = 0; k < ed_tensor_numel(t); k++)
        if (!isfinite(v[k])) fail_msg("sample value %lld is %g", (long long)k, v[k]);
}

static double max_diff(const ed_tensor *a, const ed_tensor *b)
{
    double d = 0;
    for (int64_t k = 0; k < ed_tensor_numel(a); k++) d = fmax(d, fabs(((float *)a->data)[k] - ((float *)b->data)[k]));
    return d;
}

typedef struct {
    const char *model, *sampler;
    int64_t steps;
} case_t;

static const case_t cases[] = {
    {"flow_matching", NULL, 0},
    {"flow_matching", "heun", 3},
    {"flow_matching", "midpoint", 3},
    {"flow_matching", "rk4", 2},
    {"ddpm", NULL, 0},
    {"ddpm", "ddim", 10},
    {"ddim", NULL, 0},
    {"ddim", "ddim", 7},
};

/* Every model and sampler, unconditional [n, 2] and conditional [n, 8, 2] given 6
 * observation values, on both backends, which agree. */
static void test_models_and_samplers(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int cond = 0; cond < 2; cond++) {
            ed_shape sample = cond ? ed_shape2(8, 2) : ed_shape1(2);
            ed_gen_model m = small_model(cases[i].model, sample, cond ? 6 : 0);
            ed_gen_sample_opts o = {.sampler = cases[i].sampler, .steps = cases[i].steps};
            ed_tensor *a = draw(&m, 37, &o, ED_BACKEND_JIT), *b = draw(&m, 37, &o, ED_BACKEND_INTERP);
            expect_finite_shape(a, 37, sample);
            expect_finite_shape(b, 37, sample);
            double d = max_diff(a, b);
            if (d > 1e-3)
                fail_msg("%s/%s cond %d: jit and interp differ by %g", cases[i].model, cases[i].sampler, cond, d);
            ed_tensor_free(a);
            ed_tensor_free(b);
        }
}

/* Guidance 1 is no guidance; another scale changes the samples; the prior noise is the
 * same so the change comes from the model outputs. */
static void test_guidance(void **state)
{
    (void)state;
    ed_gen_model m = small_model("flow_matching", ed_shape2(8, 2), 6);
    ed_gen_model_set(&m, "cond_dropout", "0.1"); /* guidance needs the null condition trained */
    ed_tensor *plain = draw(&m, 16, NULL, ED_BACKEND_JIT);
    ed_tensor *one = draw(&m, 16, &(ed_gen_sample_opts){.has_guidance = true, .guidance = 1}, ED_BACKEND_JIT);
    ed_tensor *three = draw(&m, 16, &(ed_gen_sample_opts){.has_guidance = true, .guidance = 3}, ED_BACKEND_JIT);
    assert_true(max_diff(plain, one) == 0);
    assert_true(max_diff(plain, three) > 1e-3);
    ed_tensor_free(plain);
    ed_tensor_free(one);
    ed_tensor_free(three);
}

/* DDIM eta above 0 adds noise: the samples differ from eta 0. */
static void test_eta(void **state)
{
    (void)state;
    ed_gen_model m = small_model("ddim", ed_shape1(2), 0);
    ed_tensor *a = draw(&m, 16, NULL, ED_BACKEND_JIT);
    ed_tensor *b = draw(&m, 16, &(ed_gen_sample_opts){.has_eta = true, .eta = 1}, ED_BACKEND_JIT);
    assert_true(max_diff(a, b) > 1e-3);
    ed_tensor_free(a);
    ed_tensor_free(b);
}

static void expect_error(const ed_gen_model *m, int64_t n, bool with_obs, const ed_gen_sample_opts *o, const char *msg)
{
    ed_graph *g = ed_graph_new("t");
    ed_node *obs = with_obs ? ed_input(g, "obs", ED_F32, ed_shape2(n, m->obs_size ? m->obs_size : 3)) : NULL;
    assert_null(ed_gen_model_sample(g, m, n, obs, NULL, o));
    const char *e = ed_graph_error(g);
    if (!e || !strstr(e, msg)) fail_msg("error '%s', want '%s'", e ? e : "(none)", msg);
    ed_graph_free(g);
}

static void test_errors(void **state)
{
    (void)state;
    ed_gen_model fm = small_model("flow_matching", ed_shape1(2), 0), ddpm = small_model("ddpm", ed_shape1(2), 0);
    ed_gen_model cond = small_model("ddim", ed_shape2(8, 2), 6);
    expect_error(&fm, 8, false, &(ed_gen_sample_opts){.sampler = "ddim"},
                 "unknown sampler 'ddim' (samplers: euler|midpoint|heun|rk4)");
    expect_error(&ddpm, 8, false, &(ed_gen_sample_opts){.sampler = "euler"},
                 "unknown sampler 'euler' (samplers: ddpm|ddim)");
    expect_error(&ddpm, 8, false, &(ed_gen_sample_opts){.steps = 10}, "the ddpm sampler runs all 100 steps");
    expect_error(&ddpm, 8, false, &(ed_gen_sample_opts){.sampler = "ddim", .steps = 101}, "only 100 timesteps");
    expect_error(&fm, 8, true, NULL, "observations given to an unconditional model");
    expect_error(&cond, 8, false, NULL, "a conditional model needs observations");
    expect_error(&fm, 0, false, NULL, "the sample count must be in 1..");
    expect_error(&fm, 8, false, &(ed_gen_sample_opts){.has_eta = true, .eta = 1},
                 "eta applies to the ddim sampler only");
    expect_error(&ddpm, 8, false, &(ed_gen_sample_opts){.has_eta = true, .eta = 1},
                 "eta applies to the ddim sampler only");
    expect_error(&fm, 8, false, &(ed_gen_sample_opts){.has_guidance = true, .guidance = 2},
                 "guidance needs a conditional model");
    expect_error(&cond, 8, true, &(ed_gen_sample_opts){.has_guidance = true, .guidance = -1},
                 "guidance scale must be >= 0");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_models_and_samplers),
        cmocka_unit_test(test_guidance),
        cmocka_unit_test(test_eta),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
