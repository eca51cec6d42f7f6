/* The U-Net denoiser (models/unet.h, --arch conv): its parameters' names and shapes, the
 * zero start, the gradient of a perturbed network against finite differences in f64, and
 * three Adam steps of a tiny conditional U-Net with attention on the JIT against the
 * interpreter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "backend/backend.h"
#include "models/registry.h"
#include "models/train_step.h"
#include "models/trainer.h"
#include "models/unet.h"
#include "passes/autodiff.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const ed_option_arg tiny[] = {{"arch", "conv"}, {"channels", "8"},  {"groups", "4"},
                                     {"mults", "1,2"}, {"attention", "1"}, {"timesteps", "10"}};

static void init(ed_gen_model *m, const char *model, ed_shape sample, int64_t obs)
{
    if (ed_gen_model_init(m, ed_model_find(model), sample, obs) != ED_OK) fail_msg("%s", ed_last_error());
    for (size_t i = 0; i < sizeof tiny / sizeof tiny[0]; i++)
        if (ed_option_find(m->def->options, m->def->noptions, tiny[i].name) &&
            ed_gen_model_set(m, tiny[i].name, tiny[i].value) != ED_OK)
            fail_msg("%s", ed_last_error());
    if (ed_gen_model_check(m) != ED_OK) fail_msg("%s", ed_last_error());
}

static void expect_param(const ed_store *st, const char *name, ed_shape s)
{
    const ed_tensor *t = ed_store_get(st, name);
    if (!t) fail_msg("no param %s", name);
    if (!ed_shape_eq(t->shape, s)) fail_msg("param %s has the wrong shape", name);
}

/* Deterministic nonzero changes to every stored tensor: the zero output layer would
 * otherwise make every gradient through the network zero. */
static void perturb(ed_store *st)
{
    for (int i = 0; i < ed_store_count(st); i++) {
        ed_tensor *v = ed_store_tensor(st, i);
        for (int64_t k = 0; k < ed_tensor_numel(v); k++)
            ed_tensor_set(v, k, ed_tensor_get(v, k) + 0.1 * (double)((k * 7 + i) % 11 - 5) / 5);
    }
}

static void test_params_and_zero_start(void **state)
{
    (void)state;
    ed_gen_model m;
    init(&m, "ddpm", ed_shape3(1, 8, 8), 0);
    ed_graph *g = ed_graph_new("t");
    ed_node *x = ed_randn(g, ED_F32, ed_shape4(3, 1, 8, 8));
    ed_node *y = ed_gen_model_denoise(g, &m, x, ed_fill(g, ED_F32, ed_shape1(3), 4), NULL, NULL);
    ed_output(g, "y", y);
    if (ed_graph_error(g)) fail_msg("%s", ed_graph_error(g));
    assert_true(ed_shape_eq(y->shape, x->shape));
    ed_store *st = ed_store_new(1);
    ed_program *p = ed_compile(g, st, &(ed_compile_opts){.backend = ED_BACKEND_INTERP});
    assert_non_null(p);
    assert_int_equal(ed_run(p, NULL, 0), ED_OK);
    const ed_tensor *r = ed_program_output(p, "y");
    for (int64_t i = 0; i < ed_tensor_numel(r); i++) assert_float_equal(ed_tensor_get(r, i), 0, 0);
    expect_param(st, "ddpm.time.fc1.w", ed_shape2(8, 32));
    expect_param(st, "ddpm.time.fc2.w", ed_shape2(32, 32));
    expect_param(st, "ddpm.in.w", ed_shape4(8, 1, 3, 3));
    expect_param(st, "ddpm.down0.block0.gn1.g", ed_shape1(8));
    expect_param(st, "ddpm.down0.block0.conv1.w", ed_shape4(8, 8, 3, 3));
    expect_param(st, "ddpm.down0.block0.temb.w", ed_shape2(32, 8));
    expect_param(st, "ddpm.down0.down.w", ed_shape4(8, 8, 3, 3));
    expect_param(st, "ddpm.down1.block0.conv1.w", ed_shape4(16, 8, 3, 3));
    expect_param(st, "ddpm.down1.block0.skip.w", ed_shape4(16, 8, 1, 1));
    expect_param(st, "ddpm.mid.block.conv2.w", ed_shape4(16, 16, 3, 3));
    expect_param(st, "ddpm.mid.attn.attn.q.w", ed_shape2(16, 16));
    expect_param(st, "ddpm.up1.block0.conv1.w", ed_shape4(16, 32, 3, 3));
    expect_param(st, "ddpm.up1.up.w", ed_shape4(8, 16, 3, 3));
    expect_param(st, "ddpm.up0.block0.conv1.w", ed_shape4(8, 16, 3, 3));
    expect_param(st, "ddpm.up0.block0.skip.w", ed_shape4(8, 16, 1, 1));
    expect_param(st, "ddpm.out_gn.b", ed_shape1(8));
    expect_param(st, "ddpm.out.w", ed_shape4(1, 8, 3, 3));
    expect_param(st, "ddpm.out.b", ed_shape1(1));
    assert_null(ed_store_get(st, "ddpm.up1.down.w"));   /* no downsampling on the way up */
    assert_null(ed_store_get(st, "ddpm.down1.down.w")); /* nor below the last level */
    /* A changed network answers, and differently at another t. */
    perturb(st);
    assert_int_equal(ed_run(p, NULL, 0), ED_OK);
    double big = 0;
    for (int64_t i = 0; i < ed_tensor_numel(r); i++) big = fmax(big, fabs(ed_tensor_get(r, i)));
    assert_true(big > 1e-3);
    ed_program_free(p);
    ed_store_free(st);
    ed_graph_free(g);
}

/* d loss / d x of a perturbed f64 U-Net (with a condition and attention) against central
 * differences at a few pixels. */
static void test_gradient_finite_differences(void **state)
{
    (void)state;
    ed_gen_model m;
    init(&m, "flow_matching", ed_shape3(1, 4, 4), 2);
    ed_graph *g = ed_graph_new("fd");
    ed_node *x = ed_input(g, "x", ED_F64, ed_shape4(2, 1, 4, 4));
    ed_node *t = ed_const(g, ED_F64, ed_shape1(2), (double[]){0.3, 0.8}, 2);
    ed_node *c = ed_const(g, ED_F64, ed_shape2(2, 2), (double[]){0.5, -1, 2, 0.25}, 4);
    ed_node *y = ed_gen_model_denoise(g, &m, x, t, c, NULL);
    double w[32];
    for (int i = 0; i < 32; i++) w[i] = sin(1.7 * i);
    ed_node *loss = ed_sum(ed_mul(ed_square(y), ed_const(g, ED_F64, ed_shape4(2, 1, 4, 4), w, 32)), ED_ALL_AXES, false);
    ed_node *dx;
    assert_int_equal(ed_grad(loss, &x, 1, &dx), ED_OK);
    ed_output(g, "loss", loss);
    ed_output(g, "dx", dx);
    if (ed_graph_error(g)) fail_msg("%s", ed_graph_error(g));
    ed_store *st = ed_store_new(2);
    ed_program *p = ed_compile(g, st, &(ed_compile_opts){.backend = ED_BACKEND_INTERP});
    assert_non_null(p);
    ed_tensor *xv = ed_tensor_new(ED_F64, ed_shape4(2, 1, 4, 4));
    for (int i = 0; i < 32; i++) ed_tensor_set(xv, i, cos(0.9 * i));
    ed_feed f = {"x", xv};
    assert_int_equal(ed_run(p, &f, 1), ED_OK);
    perturb(st);
    assert_int_equal(ed_run(p, &f, 1), ED_OK);
    ed_tensor *grad = ed_tensor_copy(ed_program_output(p, "dx"));
    double h = 1e-5, gmax = 0;
    for (int i = 0; i < 32; i += 5) {
        double x0 = ed_tensor_get(xv, i), lp, lm;
        ed_tensor_set(xv, i, x0 + h);
        assert_int_equal(ed_run(p, &f, 1), ED_OK);
        lp = ed_tensor_get(ed_program_output(p, "loss"), 0);
        ed_tensor_set(xv, i, x0 - h);
        assert_int_equal(ed_run(p, &f, 1), ED_OK);
        lm = ed_tensor_get(ed_program_output(p, "loss"), 0);
        ed_tensor_set(xv, i, x0);
        double fd = (lp - lm) / (2 * h), an = ed_tensor_get(grad, i);
        gmax = fmax(gmax, fabs(an));
        if (fabs(fd - an) > 1e-6 * fmax(1, fabs(fd)))
            fail_msg("pixel %d: autodiff %.10g, differences %.10g", i, an, fd);
    }
    assert_true(gmax > 1e-3); /* the check saw real gradients */
    ed_tensor_free(grad);
    ed_tensor_free(xv);
    ed_program_free(p);
    ed_store_free(st);
    ed_graph_free(g);
}

/* Three Adam steps of the ddpm loss (noise and t drawn in the step) on fixed images, JIT
 * against the interpreter: the same draws, losses within 1e-4 relative. */
static void test_jit_matches_interp(void **state)
{
    (void)state;
    ed_gen_model m;
    init(&m, "ddpm", ed_shape3(1, 8, 8), 3);
    ed_graph *g = ed_graph_new("train");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape4(5, 1, 8, 8));
    ed_node *obs = ed_input(g, "obs", ED_F32, ed_shape2(5, 3));
    ed_node *loss = ed_gen_model_loss(g, &m, x, obs);
    ed_train_opts o = {.optim = {.kind = ED_OPT_ADAM, .lr = 1e-2}};
    assert_int_equal(ed_train_step(g, loss, &o), ED_OK);
    if (ed_graph_error(g)) fail_msg("%s", ed_graph_error(g));
    ed_tensor *xv = ed_tensor_new(ED_F32, ed_shape4(5, 1, 8, 8)), *ov = ed_tensor_new(ED_F32, ed_shape2(5, 3));
    for (int64_t i = 0; i < ed_tensor_numel(xv); i++) ed_tensor_set(xv, i, sin(0.37 * (double)i));
    for (int64_t i = 0; i < ed_tensor_numel(ov); i++) ed_tensor_set(ov, i, cos((double)i));
    ed_feed f[2] = {{"x", xv}, {"obs", ov}};
    ed_store *si = ed_store_new(4), *sj = ed_store_new(4);
    ed_program *pi = ed_compile(g, si, &(ed_compile_opts){.backend = ED_BACKEND_INTERP, .seed = 3});
    ed_program *pj = ed_compile(g, sj, &(ed_compile_opts){.backend = ED_BACKEND_JIT, .seed = 3});
    if (!pi || !pj) fail_msg("compile: %s", ed_last_error());
    for (int s = 0; s < 3; s++) {
        if (ed_run(pi, f, 2) != ED_OK || ed_run(pj, f, 2) != ED_OK) fail_msg("run: %s", ed_last_error());
        double li = ed_tensor_get(ed_program_output(pi, "loss"), 0);
        double lj = ed_tensor_get(ed_program_output(pj, "loss"), 0);
        if (!(fabs(li - lj) <= 1e-4 * fabs(li))) fail_msg("step %d: loss interp %.9g, jit %.9g", s, li, lj);
    }
    /* The params moved the same way: the first conv's weights after three updates. */
    const ed_tensor *wi = ed_store_get(si, "ddpm.in.w"), *wj = ed_store_get(sj, "ddpm.in.w");
    for (int64_t i = 0; i < ed_tensor_numel(wi); i++)
        assert_float_equal(ed_tensor_get(wi, i), ed_tensor_get(wj, i), 1e-4);
    ed_program_free(pi);
    ed_program_free(pj);
    ed_store_free(si);
    ed_store_free(sj);
    ed_tensor_free(xv);
    ed_tensor_free(ov);
    ed_graph_free(g);
}

static void test_errors(void **state)
{
    (void)state;
    ed_gen_model m;
    if (ed_gen_model_init(&m, ed_model_find("ddpm"), ed_shape3(1, 6, 6), 0) != ED_OK) fail_msg("%s", ed_last_error());
    assert_int_equal(ed_gen_model_set(&m, "arch", "conv"), ED_OK);
    assert_int_equal(ed_gen_model_check(&m), ED_ERR); /* 6 is not divisible by 4 (mults 1,2,2) */
    assert_non_null(strstr(ed_last_error(), "needs H and W divisible by 4, the images are 6x6"));
    assert_int_equal(ed_gen_model_set(&m, "mults", "1,2"), ED_OK);
    assert_int_equal(ed_gen_model_check(&m), ED_OK);
    assert_int_equal(ed_gen_model_set(&m, "groups", "3"), ED_OK);
    assert_int_equal(ed_gen_model_check(&m), ED_ERR);
    assert_non_null(strstr(ed_last_error(), "groups 3 must divide channels 16"));
    /* The default stays the MLP, which reads any shape. */
    if (ed_gen_model_init(&m, ed_model_find("flow_matching"), ed_shape1(2), 0) != ED_OK)
        fail_msg("%s", ed_last_error());
    char buf[32];
    assert_string_equal(ed_gen_model_get(&m, "arch", buf, sizeof buf), "mlp");
    assert_int_equal(ed_gen_model_check(&m), ED_OK);
    assert_int_equal(ed_gen_model_set(&m, "arch", "conv"), ED_OK);
    assert_int_equal(ed_gen_model_check(&m), ED_ERR);
    assert_non_null(strstr(ed_last_error(), "arch conv needs image samples [C, H, W], got rank 1"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_params_and_zero_start),
        cmocka_unit_test(test_gradient_finite_differences),
        cmocka_unit_test(test_jit_matches_interp),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
