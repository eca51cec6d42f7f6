/* The dit model (models/dit.h): data-dependent defaults and checks, the network's zero
 * start and its use of the label, classifier-free guidance by hand through the sampler
 * path with labels, and the errors for guidance without a trained null class. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "models/generate.h"
#include "support/error_check.h"

#include <math.h>
#include <string.h>

static void init(ed_gen_model *m, ed_shape sample, int64_t obs, int64_t classes)
{
    ed_data_facts f = {.sample = sample, .obs_size = obs, .classes = classes, .unit_range = true};
    if (ed_gen_model_init_data(m, ed_model_find("dit"), &f) != ED_OK) fail_msg("%s", ed_last_error());
}

static void expect_opt(const ed_gen_model *m, const char *name, const char *want)
{
    char buf[64];
    const char *v = ed_gen_model_get(m, name, buf, sizeof buf);
    if (!v || strcmp(v, want) != 0) fail_msg("dit.%s = %s, want %s", name, v ? v : "(none)", want);
}

static void test_defaults_and_checks(void **state)
{
    (void)state;
    ed_gen_model m;
    init(&m, ed_shape3(1, 8, 8), 0, 10); /* the digits: the small preset */
    expect_opt(&m, "hidden", "128");
    expect_opt(&m, "depth", "4");
    expect_opt(&m, "heads", "4");
    expect_opt(&m, "mlp_ratio", "4");
    expect_opt(&m, "patch", "2");
    expect_opt(&m, "cond_dropout", "0.1");
    expect_opt(&m, "objective", "flow_matching");
    expect_opt(&m, "sample_steps", "50");
    expect_opt(&m, "timesteps", "1000");
    expect_opt(&m, "clip_x0", "1");
    assert_int_equal(ed_gen_model_check(&m), ED_OK);
    assert_string_equal(ed_gen_model_samplers(&m), "euler|midpoint|heun|rk4");
    assert_string_equal(ed_gen_model_sampling(&m).pred, "velocity");
    assert_int_equal(ed_gen_model_set(&m, "objective", "diffusion"), ED_OK);
    assert_string_equal(ed_gen_model_samplers(&m), "ddpm|ddim");
    assert_string_equal(ed_gen_model_sampling(&m).pred, "eps");
    assert_int_equal(ed_gen_model_set(&m, "patch", "3"), ED_OK);
    assert_int_equal(ed_gen_model_check(&m), ED_ERR);
    CHECK_ERROR_HAS("dit: the patch 3 must divide the image's 8x8 pixels (--patch)");
    assert_int_equal(ed_gen_model_set(&m, "patch", "2"), ED_OK);
    assert_int_equal(ed_gen_model_set(&m, "heads", "3"), ED_OK);
    assert_int_equal(ed_gen_model_check(&m), ED_ERR);
    CHECK_ERROR_HAS("dit: heads 3 must divide hidden 128");

    init(&m, ed_shape3(1, 28, 28), 0, 0); /* Edifice's defaults; no labels, no dropout */
    expect_opt(&m, "hidden", "256");
    expect_opt(&m, "depth", "6");
    expect_opt(&m, "patch", "4");
    expect_opt(&m, "cond_dropout", "0");
    assert_int_equal(ed_gen_model_check(&m), ED_OK);

    init(&m, ed_shape1(2), 0, 0);
    assert_int_equal(ed_gen_model_check(&m), ED_ERR);
    CHECK_ERROR_HAS("dit: the data must be images [C, H, W]");
    init(&m, ed_shape3(1, 8, 8), 6, 0);
    assert_int_equal(ed_gen_model_check(&m), ED_ERR);
    CHECK_ERROR_HAS("dit: observations are not supported");
}

/* The network outputs exactly zero at init (the final layer is zero), and once its
 * params move, the label changes the output (label 3 against the null class). */
static void test_net_zero_start_and_label(void **state)
{
    (void)state;
    ed_gen_model m;
    init(&m, ed_shape3(1, 8, 8), 0, 10);
    static const ed_option_arg small[] = {{"hidden", "16"}, {"depth", "2"}, {"heads", "2"}};
    for (int i = 0; i < 3; i++) assert_int_equal(ed_gen_model_set(&m, small[i].name, small[i].value), ED_OK);
    ed_graph *g = ed_graph_new("t");
    ed_node *x = ed_randn(g, ED_F32, ed_shape4(4, 1, 8, 8));
    ed_node *t = ed_fill(g, ED_F32, ed_shape1(4), 500);
    ed_node *labels = ed_fill(g, ED_I32, ed_shape1(4), 3);
    ed_node *y = ed_gen_model_denoise(g, &m, x, t, NULL, labels);
    ed_node *null = ed_gen_model_denoise(g, &m, x, t, NULL, NULL);
    assert_true(ed_shape_eq(y->shape, x->shape));
    ed_node *parts[2] = {ed_reshape(ed_max(ed_abs(y), ED_ALL_AXES, false), ed_shape1(1)),
                         ed_reshape(ed_max(ed_abs(ed_sub(y, null)), ED_ALL_AXES, false), ed_shape1(1))};
    ed_output(g, "y", ed_concat(parts, 2, 0));
    if (ed_graph_error(g)) fail_msg("%s", ed_graph_error(g));
    ed_store *st = ed_store_new(1);
    ed_program *p = ed_compile(g, st, &(ed_compile_opts){.backend = ED_BACKEND_INTERP});
    assert_non_null(p);
    assert_int_equal(ed_run(p, NULL, 0), ED_OK);
    const ed_tensor *r = ed_program_output(p, "y");
    assert_float_equal(ed_tensor_get(r, 0), 0, 0);
    assert_float_equal(ed_tensor_get(r, 1), 0, 0);
    assert_non_null(ed_store_get(st, "dit.label.table"));
    assert_non_null(ed_store_get(st, "dit.block1.ada.w"));
    for (int i = 0; i < ed_store_count(st); i++) {
        ed_tensor *v = (ed_tensor *)ed_store_tensor(st, i);
        for (int64_t k = 0; k < ed_tensor_numel(v); k++) ((float *)v->data)[k] += 0.05f * (float)((k * 7 + i) % 11 - 5);
    }
    assert_int_equal(ed_run(p, NULL, 0), ED_OK);
    r = ed_program_output(p, "y");
    assert_true(ed_tensor_get(r, 0) > 1e-3);
    assert_true(ed_tensor_get(r, 1) > 1e-3);
    ed_program_free(p);
    ed_store_free(st);
    ed_graph_free(g);
}

/* On vectors [B, L] (latent_diffusion's latents): L / patch tokens of patch values with
 * 1-D positions, the output zero at the start and L wide; a patch not dividing L is an
 * error on the graph. */
static void test_net_on_vectors(void **state)
{
    (void)state;
    ed_dit_opts o;
    ed_dit_defaults(&o, 8, 8, 10);
    o.hidden = 16, o.depth = 1, o.heads = 2, o.patch = 3;
    ed_graph *g = ed_graph_new("t");
    ed_node *x = ed_randn(g, ED_F32, ed_shape2(4, 6));
    ed_node *y = ed_dit_net(x, ed_fill(g, ED_F32, ed_shape1(4), 0.5), NULL, 10, &o);
    assert_true(ed_shape_eq(y->shape, x->shape));
    ed_output(g, "y", ed_max(ed_abs(y), ED_ALL_AXES, false));
    if (ed_graph_error(g)) fail_msg("%s", ed_graph_error(g));
    ed_node *patch = ed_graph_leaf(g, ED_OP_PARAM, "dit.patch.w");
    assert_true(ed_shape_eq(patch->shape, ed_shape2(3, 16))); /* 2 tokens of 3 values */
    assert_true(ed_shape_eq(ed_graph_leaf(g, ED_OP_PARAM, "dit.final.linear.w")->shape, ed_shape2(16, 3)));
    ed_store *st = ed_store_new(1);
    ed_program *p = ed_compile(g, st, &(ed_compile_opts){.backend = ED_BACKEND_INTERP});
    assert_non_null(p);
    assert_int_equal(ed_run(p, NULL, 0), ED_OK);
    assert_float_equal(ed_tensor_get(ed_program_output(p, "y"), 0), 0, 0);
    ed_program_free(p);
    ed_store_free(st);
    ed_graph_free(g);
    g = ed_graph_new("t");
    o.patch = 4;
    assert_null(ed_dit_net(ed_randn(g, ED_F32, ed_shape2(4, 6)), ed_fill(g, ED_F32, ed_shape1(4), 0.5), NULL, 10, &o));
    assert_non_null(ed_graph_error(g));
    if (!strstr(ed_graph_error(g), "dit: the patch 4 must divide the vectors' length 6"))
        fail_msg("graph error: %s", ed_graph_error(g));
    ed_graph_free(g);
}

/* ---- guidance by hand ------------------------------------------------------------------ */

/* A velocity "network" v(x, y) = -x + a_y with a_y = 2 y + 1 for a label and 0.5 for the
 * null class. One Euler step of the flow from t = 0 to 1 gives x0 + v(x0) = a_y, so the
 * guided sample is a_null + s (a_y - a_null): by hand, label 3 at s = 2 is 13.5. */
static ed_node *affine_velocity(ed_graph *g, const ed_gen_model *m, ed_node *x, ed_node *t, ed_node *cond,
                                ed_node *labels)
{
    (void)m, (void)t, (void)cond;
    int64_t b = x->shape.dim[0];
    ed_node *a = labels ? ed_add_scalar(ed_mul_scalar(ed_cast(labels, ED_F32), 2), 1)
                        : ed_fill(g, ED_F32, ed_shape1(b), 0.5);
    return ed_add(ed_neg(x), ed_broadcast_to(ed_reshape(a, ed_shape2(b, 1)), x->shape));
}

static ed_fm_opts one_euler_step = {.solver = ED_FM_EULER, .sample_steps = 1, .guidance_scale = 1};

static void affine_sampling(const ed_gen_model *m, ed_denoiser_sampling *s)
{
    *s = (ed_denoiser_sampling){.pred = "velocity",
                                .samplers = "euler",
                                .fm = &one_euler_step,
                                .guidance = 1,
                                .guidable = m->unit_range}; /* a stand-in for "trained with dropout" */
}

static const ed_model_def affine_def = {.name = "affine",
                                        .uses_labels = true,
                                        .sample = ed_denoiser_sample,
                                        .denoise = affine_velocity,
                                        .sampling = affine_sampling};

static void expect_guided(const ed_gen_model *m, ed_store *st, double scale, const double *want)
{
    ed_tensor *labels = ed_tensor_new(ED_I32, ed_shape1(3)), *s = NULL;
    static const int32_t l[3] = {3, 0, 9};
    memcpy(labels->data, l, sizeof l);
    ed_gen_draw_opts o = {
        .backend = ED_BACKEND_INTERP, .seed = 5, .sampler = {.has_guidance = true, .guidance = scale}};
    if (ed_gen_draw(m, st, 3, NULL, labels, &o, &s) != ED_OK) fail_msg("%s", ed_last_error());
    for (int i = 0; i < 6; i++) assert_float_equal(((float *)s->data)[i], want[i / 2], 1e-5);
    ed_tensor_free(s);
    ed_tensor_free(labels);
}

static void test_guidance_by_hand(void **state)
{
    (void)state;
    ed_gen_model m = {.def = &affine_def, .sample = ed_shape1(2), .classes = 10, .unit_range = true};
    ed_store *st = ed_store_new(0);
    /* a_y = 7, 1, 19 for labels 3, 0, 9; a_null = 0.5 */
    expect_guided(&m, st, 1, (const double[]){7, 1, 19});
    expect_guided(&m, st, 2, (const double[]){13.5, 1.5, 37.5});
    expect_guided(&m, st, 0, (const double[]){0.5, 0.5, 0.5});
    expect_guided(&m, st, 3.5, (const double[]){0.5 + 3.5 * 6.5, 0.5 + 3.5 * 0.5, 0.5 + 3.5 * 18.5});

    /* No null class trained: guidance is an error, not a silent no-op. */
    m.unit_range = false;
    ed_tensor *labels = ed_tensor_new(ED_I32, ed_shape1(3)), *s = NULL;
    memset(labels->data, 0, 12);
    ed_gen_draw_opts o = {.backend = ED_BACKEND_INTERP, .sampler = {.has_guidance = true, .guidance = 2}};
    assert_int_equal(ed_gen_draw(&m, st, 3, NULL, labels, &o, &s), ED_ERR);
    CHECK_ERROR_HAS("sample affine: guidance 2 needs a model trained with a null condition (cond_dropout > 0)");
    o.sampler.guidance = 1; /* no guidance asked: fine */
    assert_int_equal(ed_gen_draw(&m, st, 3, NULL, labels, &o, &s), ED_OK);
    ed_tensor_free(s);
    ed_tensor_free(labels);
    ed_store_free(st);
}

/* The dit model itself: guidance needs cond_dropout > 0 and labels; samplers follow the
 * objective. */
static void test_dit_sampling_errors(void **state)
{
    (void)state;
    ed_gen_model m;
    init(&m, ed_shape3(1, 8, 8), 0, 10);
    assert_int_equal(ed_gen_model_set(&m, "hidden", "16"), ED_OK);
    assert_int_equal(ed_gen_model_set(&m, "depth", "1"), ED_OK);
    assert_int_equal(ed_gen_model_set(&m, "cond_dropout", "0"), ED_OK);
    assert_int_equal(ed_gen_model_set(&m, "objective", "diffusion"), ED_OK);
    ed_graph *g = ed_graph_new("t");
    ed_node *labels = ed_input(g, "labels", ED_I32, ed_shape1(4));
    ed_gen_sample_opts o = {.has_guidance = true, .guidance = 2};
    assert_null(ed_gen_model_sample(g, &m, 4, NULL, labels, &o));
    assert_non_null(strstr(ed_graph_error(g), "guidance 2 needs a model trained with a null condition"));
    ed_graph_free(g);

    g = ed_graph_new("t");
    labels = ed_input(g, "labels", ED_I32, ed_shape1(4));
    assert_null(ed_gen_model_sample(g, &m, 4, NULL, labels, &(ed_gen_sample_opts){.sampler = "euler"}));
    assert_non_null(strstr(ed_graph_error(g), "unknown sampler 'euler' (samplers: ddpm|ddim)"));
    ed_graph_free(g);

    g = ed_graph_new("t");
    assert_null(ed_gen_model_sample(g, &m, 4, NULL, NULL, NULL));
    assert_non_null(strstr(ed_graph_error(g), "a class-conditional model needs labels"));
    ed_graph_free(g);

    /* The flow objective: every ODE solver builds. */
    assert_int_equal(ed_gen_model_set(&m, "objective", "flow_matching"), ED_OK);
    static const char *const solvers[] = {"euler", "midpoint", "heun", "rk4"};
    for (int i = 0; i < 4; i++) {
        g = ed_graph_new("t");
        labels = ed_input(g, "labels", ED_I32, ed_shape1(4));
        ed_gen_sample_opts so = {.sampler = solvers[i], .steps = 2};
        ed_node *s = ed_gen_model_sample(g, &m, 4, NULL, labels, &so);
        if (!s) fail_msg("%s: %s", solvers[i], ed_graph_error(g));
        assert_true(ed_shape_eq(s->shape, ed_shape4(4, 1, 8, 8)));
        ed_graph_free(g);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_checks), cmocka_unit_test(test_net_zero_start_and_label),
        cmocka_unit_test(test_net_on_vectors),      cmocka_unit_test(test_guidance_by_hand),
        cmocka_unit_test(test_dit_sampling_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
