/* GAN family builders: the networks' params and modes (batch norm state and dropout in
 * training, neither in the eval-mode sampler), the losses by hand at a zero output
 * layer, the gradient penalty's gradient against finite differences (second order
 * inside one graph), each step's updates confined to its group, cgan's labels in both
 * networks, and batch-1 sampling from the running statistics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "backend/backend.h"
#include "models/generate.h"
#include "models/gan.h"
#include "models/registry.h"
#include "models/train_step.h"
#include "models/trainer.h"
#include "passes/autodiff.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static ed_gan_opts small_opts(ed_gan_loss loss, int64_t classes)
{
    ed_gan_opts o;
    if (loss == ED_GAN_STANDARD) ed_gan_defaults(&o);
    else ed_wgan_gp_defaults(&o);
    o.data_dim = 3;
    o.classes = classes;
    o.latent = 4;
    o.gen_sizes = (ed_sizes){1, {6}};
    o.disc_sizes = (ed_sizes){2, {5, 4}};
    return o;
}

static ed_program *compile(ed_graph *g, ed_store *st)
{
    if (ed_graph_error(g)) fail_msg("%s", ed_graph_error(g));
    ed_program *p = ed_compile(g, st, &(ed_compile_opts){.backend = ED_BACKEND_INTERP});
    if (!p) fail_msg("%s", ed_last_error());
    return p;
}

static int count_op(const ed_graph *g, ed_op op)
{
    int n = 0;
    for (int i = 0; i < g->nnodes; i++) n += g->nodes[i]->op == op;
    return n;
}

static void expect_param(ed_graph *g, const char *name, int64_t rows, int64_t cols)
{
    ed_node *p = ed_graph_leaf(g, ED_OP_PARAM, name);
    if (!p) fail_msg("no param %s", name);
    assert_true(ed_shape_eq(p->shape, cols ? ed_shape2(rows, cols) : ed_shape1(rows)));
}

/* Defaults are Edifice's, the betas and n_critic each family's. */
static void test_defaults(void **state)
{
    (void)state;
    ed_gan_opts o;
    ed_gan_defaults(&o);
    assert_int_equal(o.latent, 128);
    assert_int_equal(o.gen_sizes.n, 2);
    assert_int_equal(o.gen_sizes.v[0], 256);
    assert_int_equal(o.gen_sizes.v[1], 512);
    assert_int_equal(o.disc_sizes.v[0], 512);
    assert_int_equal(o.disc_sizes.v[1], 256);
    assert_float_equal(o.dropout, -1, 0); /* auto: 0.3 in the MLP's D, none in DCGAN's */
    assert_int_equal(o.init, ED_GAN_INIT_GLOROT);
    assert_int_equal(o.n_critic, 1);
    assert_float_equal(o.beta1, 0.5, 0);
    ed_wgan_gp_defaults(&o);
    assert_int_equal(o.n_critic, 5);
    assert_float_equal(o.beta1, 0, 0);
    assert_float_equal(o.beta2, 0.9, 0);
    assert_float_equal(o.gp_lambda, 10, 0);
    assert_int_equal(o.loss, ED_GAN_WGAN_GP);
}

/* wgan_gp's registry entry: the toy settings on 2-D data, the table's defaults on the
 * digits (64 numbers); gan keeps its own on both. */
static void test_wgan_gp_low_dimensional_defaults(void **state)
{
    (void)state;
    ed_gen_model m;
    assert_int_equal(ed_gen_model_init(&m, &ed_wgan_gp_model, ed_shape1(2), 0), ED_OK);
    assert_int_equal(m.opts.gan.gen_sizes.n, 2);
    assert_int_equal(m.opts.gan.gen_sizes.v[0], 128);
    assert_int_equal(m.opts.gan.gen_sizes.v[1], 128);
    assert_int_equal(m.opts.gan.disc_sizes.v[0], 128);
    assert_int_equal(m.opts.gan.disc_sizes.v[1], 128);
    assert_float_equal(m.opts.gan.gp_lambda, 0.1, 0);
    assert_float_equal(m.opts.gan.beta1, 0.5, 0);
    assert_float_equal(m.opts.gan.beta2, 0.9, 0);
    assert_float_equal(m.opts.gan.dropout, 0, 0);
    assert_int_equal(m.opts.gan.n_critic, 5);
    assert_int_equal(ed_gen_model_set(&m, "gp_lambda", "10"), ED_OK); /* an option still overrides */
    assert_float_equal(m.opts.gan.gp_lambda, 10, 0);
    assert_int_equal(ed_gen_model_init(&m, &ed_wgan_gp_model, ed_shape1(64), 0), ED_OK);
    assert_int_equal(m.opts.gan.gen_sizes.v[1], 512);
    assert_int_equal(m.opts.gan.disc_sizes.v[0], 512);
    assert_float_equal(m.opts.gan.gp_lambda, 10, 0);
    assert_float_equal(m.opts.gan.beta1, 0, 0);
    assert_float_equal(m.opts.gan.dropout, 0.3, 0);
    assert_int_equal(ed_gen_model_init(&m, &ed_gan_model, ed_shape1(2), 0), ED_OK);
    assert_int_equal(m.opts.gan.gen_sizes.v[1], 512);
    assert_float_equal(m.opts.gan.dropout, -1, 0);
    assert_int_equal(ed_model_default_steps(&ed_wgan_gp_model), 4000);
}

/* Training graphs: G has batch norm with running-stat updates, D dropout masks. */
static void test_networks_in_training(void **state)
{
    (void)state;
    ed_gan_opts o = small_opts(ED_GAN_STANDARD, 0);
    ed_graph *g = ed_graph_new("disc");
    ed_node *loss = ed_gan_disc_loss(g, ed_input(g, "x", ED_F32, ed_shape2(8, 3)), NULL, &o);
    assert_non_null(loss);
    expect_param(g, "gen.0.w", 4, 6);
    expect_param(g, "gen.bn0.g", 6, 0);
    expect_param(g, "gen.out.w", 6, 3);
    expect_param(g, "disc.0.w", 3, 5);
    expect_param(g, "disc.1.w", 5, 4);
    expect_param(g, "disc.out.w", 4, 1);
    assert_non_null(ed_graph_leaf(g, ED_OP_STATE, "gen.bn0.running_mean"));
    assert_non_null(ed_graph_update(g, "gen.bn0.running_var"));
    assert_int_equal(count_op(g, ED_OP_BERNOULLI), 4); /* 2 layers x (real, fake) */
    assert_int_equal(ed_graph_leaf(g, ED_OP_PARAM, "gen.0.w")->attr.init.kind,
                     ED_INIT_GLOROT_UNIFORM); /* init glorot */
    ed_graph_free(g);
    o.init = ED_GAN_INIT_DCGAN;
    g = ed_graph_new("disc_dcgan_init");
    assert_non_null(ed_gan_disc_loss(g, ed_input(g, "x", ED_F32, ed_shape2(8, 3)), NULL, &o));
    assert_int_equal(ed_graph_leaf(g, ED_OP_PARAM, "disc.1.w")->attr.init.kind, ED_INIT_NORMAL);
    ed_graph_free(g);
}

/* The sampler is built in eval mode: no dropout, no batch-norm update; batch 1 runs. */
static void test_sample_in_eval_mode(void **state)
{
    (void)state;
    ed_gen_model m;
    assert_int_equal(ed_gen_model_init(&m, &ed_gan_model, ed_shape1(3), 0), ED_OK);
    m.opts.gan.gen_sizes = (ed_sizes){1, {6}};
    ed_graph *g = ed_graph_new("sample");
    ed_node *x = ed_gen_model_sample(g, &m, 1, NULL, NULL, NULL);
    assert_non_null(x);
    assert_true(ed_graph_training(g)); /* restored */
    assert_int_equal(g->nupdates, 0);
    assert_int_equal(count_op(g, ED_OP_BERNOULLI), 0);
    ed_output(g, "x", x);
    ed_store *st = ed_store_new(0);
    ed_program *p = compile(g, st);
    assert_int_equal(ed_run(p, NULL, 0), ED_OK);
    const float *v = ed_program_output(p, "x")->data;
    for (int i = 0; i < 3; i++) assert_true(isfinite(v[i]));
    ed_program_free(p);
    ed_store_free(st);
    ed_graph_free(g);
}

/* With D's output layer zero every logit is 0: the standard disc loss is 2 log 2, the
 * generator's log 2; the critic's is lambda (|0 + 1e-12|^(1/2) - 1)^2. */
static double loss_at_zero_logits(ed_gan_loss kind, bool disc)
{
    ed_gan_opts o = small_opts(kind, 0);
    ed_graph *g = ed_graph_new("loss");
    ed_node *loss = disc ? ed_gan_disc_loss(g, ed_input(g, "x", ED_F32, ed_shape2(8, 3)), NULL, &o)
                         : ed_gan_gen_loss(g, 8, NULL, &o);
    ed_output(g, "loss", loss);
    ed_store *st = ed_store_new(0);
    ed_program *p = compile(g, st);
    memset(ed_store_get(st, "disc.out.w")->data, 0, 4 * sizeof(float));
    ed_tensor *x = ed_tensor_new(ED_F32, ed_shape2(8, 3));
    for (int i = 0; i < 24; i++) ((float *)x->data)[i] = (float)(i % 5) - 2;
    int rc = disc ? ed_run(p, (ed_feed[]){{"x", x}}, 1) : ed_run(p, NULL, 0);
    assert_int_equal(rc, ED_OK);
    double v = *(const float *)ed_program_output(p, "loss")->data;
    ed_tensor_free(x);
    ed_program_free(p);
    ed_store_free(st);
    ed_graph_free(g);
    return v;
}

static void test_losses_by_hand(void **state)
{
    (void)state;
    assert_float_equal(loss_at_zero_logits(ED_GAN_STANDARD, true), 2 * log(2), 1e-6);
    assert_float_equal(loss_at_zero_logits(ED_GAN_STANDARD, false), log(2), 1e-6);
    assert_float_equal(loss_at_zero_logits(ED_GAN_WGAN_GP, false), 0, 0);
    assert_float_equal(loss_at_zero_logits(ED_GAN_WGAN_GP, true), 10 * pow(1 - 1e-6, 2), 1e-5);
}

/* d penalty / d (D's params, the real batch) from ed_grad against central differences,
 * in f64 with every random draw (interpolation weights, dropout masks) replayed at call 0. */
static double penalty_at(ed_program *p, ed_feed *f)
{
    ed_program_set_calls(p, 0);
    assert_int_equal(ed_run(p, f, 2), ED_OK);
    return *(const double *)ed_program_output(p, "penalty")->data;
}

static void test_penalty_gradient(void **state)
{
    (void)state;
    ed_gan_opts o = small_opts(ED_GAN_WGAN_GP, 0);
    o.activation = ED_ACT_SILU; /* smooth: no kinks for the differences to straddle */
    ed_graph *g = ed_graph_new("gp");
    ed_node *real = ed_input(g, "real", ED_F64, ed_shape2(5, 3)), *fake = ed_input(g, "fake", ED_F64, ed_shape2(5, 3));
    ed_node *penalty = ed_gan_gradient_penalty(real, fake, NULL, &o);
    assert_non_null(penalty);
    const char *names[] = {"disc.0.w", "disc.0.b", "disc.1.w", "disc.out.w"};
    ed_node *wrt[5], *grads[5];
    for (int i = 0; i < 4; i++) wrt[i] = ed_graph_leaf(g, ED_OP_PARAM, names[i]);
    wrt[4] = real;
    assert_int_equal(ed_grad(penalty, wrt, 5, grads), ED_OK);
    ed_output(g, "penalty", penalty);
    char gname[8];
    for (int i = 0; i < 5; i++) snprintf(gname, sizeof gname, "g%d", i), ed_output(g, gname, grads[i]);
    ed_store *st = ed_store_new(5);
    ed_program *p = compile(g, st);
    ed_tensor *rt = ed_tensor_new(ED_F64, ed_shape2(5, 3)), *ft = ed_tensor_new(ED_F64, ed_shape2(5, 3));
    for (int i = 0; i < 15; i++) ((double *)rt->data)[i] = sin(i + 1.0), ((double *)ft->data)[i] = cos(2.0 * i);
    ed_feed f[2] = {{"real", rt}, {"fake", ft}};
    assert_true(penalty_at(p, f) > 0);
    int checked = 0;
    for (int i = 0; i < 5; i++) {
        snprintf(gname, sizeof gname, "g%d", i);
        ed_tensor *analytic = ed_tensor_copy(ed_program_output(p, gname));
        double *v = i < 4 ? ed_store_get(st, names[i])->data : rt->data;
        for (int64_t j = 0; j < ed_tensor_numel(analytic); j++) {
            double keep = v[j], h = 1e-6;
            v[j] = keep + h;
            double up = penalty_at(p, f);
            v[j] = keep - h;
            double down = penalty_at(p, f);
            v[j] = keep;
            double numeric = (up - down) / (2 * h), a = ((const double *)analytic->data)[j];
            if (fabs(a - numeric) > 1e-6 * fmax(1, fabs(a)))
                fail_msg("d penalty / d %s[%lld]: analytic %.12g, numeric %.12g", i < 4 ? names[i] : "real",
                         (long long)j, a, numeric);
            checked += a != 0;
        }
        ed_tensor_free(analytic);
    }
    assert_true(checked > 30); /* the gradients are not trivially zero */
    ed_tensor_free(rt);
    ed_tensor_free(ft);
    ed_program_free(p);
    ed_store_free(st);
    ed_graph_free(g);
}

/* Each registered step trains its own group: "disc" updates no gen.* param and "gen" no
 * disc.* param (the batch-norm state moves in both, as G runs in both). */
static void test_steps_update_their_groups(void **state)
{
    (void)state;
    const ed_model_def *defs[] = {&ed_gan_model, &ed_wgan_gp_model};
    for (int d = 0; d < 2; d++) {
        ed_gen_model m;
        assert_int_equal(ed_gen_model_init(&m, defs[d], ed_shape1(2), 0), ED_OK);
        m.opts.gan.gen_sizes = (ed_sizes){1, {8}};
        m.opts.gan.disc_sizes = (ed_sizes){1, {8}};
        assert_int_equal(ed_gen_model_step_repeats(&m, 0), d ? 5 : 1);
        for (int k = 0; k < 2; k++) {
            ed_graph *g = ed_graph_new("step");
            ed_batch b = {.x = ed_input(g, "x", ED_F32, ed_shape2(4, 2))};
            ed_train_opts to = {.optim = {.kind = ED_OPT_ADAM}, .groups = defs[d]->steps[k].groups};
            defs[d]->steps[k].optim(&m, &to.optim);
            assert_true(to.optim.exact_betas);
            assert_int_equal(ed_train_step(g, ed_gen_model_step_loss(g, &m, k, &b), &to), ED_OK);
            const char *own = k == 0 ? "disc." : "gen.", *other = k == 0 ? "gen." : "disc.";
            int own_params = 0;
            for (int i = 0; i < g->nupdates; i++) {
                const char *name = g->updates[i].name;
                bool param = ed_graph_leaf(g, ED_OP_PARAM, name) != NULL;
                if (param && strncmp(name, other, strlen(other)) == 0) fail_msg("step %d updates %s", k, name);
                own_params += param && strncmp(name, own, strlen(own)) == 0;
            }
            assert_int_equal(own_params, k == 0 ? 4 : 6); /* disc: 2 dense; gen: 2 dense + bn */
            assert_non_null(ed_graph_update(g, "gen.bn0.running_mean"));
            ed_graph_free(g);
        }
    }
}

/* cgan: the one-hot label widens both networks' first layer; labels are needed; the
 * sampler without labels cycles through the classes. */
static void test_cgan_conditions_both(void **state)
{
    (void)state;
    ed_gen_model m;
    ed_data_facts f = {.sample = ed_shape1(3), .classes = 4};
    assert_int_equal(ed_gen_model_init_data(&m, &ed_cgan_model, &f), ED_OK);
    assert_int_equal(m.opts.gan.classes, 4);
    assert_int_equal(ed_gen_model_check(&m), ED_OK);
    m.opts.gan.gen_sizes = (ed_sizes){1, {6}};
    m.opts.gan.disc_sizes = (ed_sizes){1, {5}};
    ed_graph *g = ed_graph_new("cgan");
    ed_batch b = {.x = ed_input(g, "x", ED_F32, ed_shape2(4, 3)),
                  .labels = ed_input(g, "labels", ED_I32, ed_shape1(4))};
    assert_non_null(ed_gen_model_step_loss(g, &m, 0, &b));
    expect_param(g, "gen.0.w", 128 + 4, 6);
    expect_param(g, "disc.0.w", 3 + 4, 5);
    ed_graph_free(g);
    g = ed_graph_new("cgan_sample");
    assert_non_null(ed_gen_model_sample(g, &m, 6, NULL, ed_input(g, "labels", ED_I32, ed_shape1(6)), NULL));
    ed_graph_free(g);
    /* without labels in the data, cgan refuses */
    f.classes = 0;
    assert_int_equal(ed_gen_model_init_data(&m, &ed_cgan_model, &f), ED_OK);
    assert_int_equal(ed_gen_model_check(&m), ED_ERR);
    assert_non_null(strstr(ed_last_error(), "needs class labels"));
}

/* wgan_gp's critic runs 5 times per iteration, so its cosine schedule spans 5 x steps
 * of its own counter: after 2 of 4 iterations (its 10th run, counter 9) the lr factor is
 * 0.01 + 0.99 (1 + cos(pi 8/19)) / 2, not the floor a 4-step span would give. */
static void test_critic_schedule_spans_its_runs(void **state)
{
    (void)state;
    ed_dataset d;
    assert_int_equal(ed_dataset_open(&d, "8gaussians", 64, 0), ED_OK);
    ed_gen_model m;
    ed_data_facts f = ed_dataset_facts(&d);
    assert_int_equal(ed_gen_model_init_data(&m, &ed_wgan_gp_model, &f), ED_OK);
    m.opts.gan.latent = 4;
    m.opts.gan.gen_sizes = (ed_sizes){1, {8}};
    m.opts.gan.disc_sizes = (ed_sizes){1, {8}};
    ed_trainer_opts o = {.batch = 8, .lr = 1e-3, .steps = 4, .lr_schedule = ED_LR_COSINE};
    ed_trainer *t = ed_trainer_new(&m, &d, &o);
    if (!t) fail_msg("%s", ed_last_error());
    double loss;
    for (int i = 0; i < 2; i++) assert_int_equal(ed_trainer_step(t, &loss), ED_OK);
    double lr = ed_tensor_get(ed_program_output(ed_trainer_program(t), "lr"), 0);
    double want = 1e-3 * (0.01 + 0.99 * 0.5 * (1 + cos(3.14159265358979323846 * 8 / 19)));
    assert_float_equal(lr, want, 1e-6 * want);
    ed_trainer_free(t);
    ed_dataset_free(&d);
}

static void expect_shape(ed_graph *g, ed_op kind, const char *name, ed_shape want)
{
    ed_node *p = ed_graph_leaf(g, kind, name);
    if (!p) fail_msg("no param or state %s", name);
    if (!ed_shape_eq(p->shape, want))
        fail_msg("%s: rank %d, dim 0 %lld", name, p->shape.rank, (long long)p->shape.dim[0]);
}

/* DCGAN (arch conv) on 8x8 images with 3 classes: G's and D's params named and shaped as
 * gan.h says (--init dcgan: N(0, 0.02) weights), G's 2-D batch norm per channel with its
 * updates, D's dropout after each convolution only when asked; both steps and the eval-mode sampler run (interpreter) with samples in
 * [0, 1] (sigmoid), and the critic's gradient penalty builds through the convolutions. */
static void test_conv_networks(void **state)
{
    (void)state;
    ed_gen_model m;
    ed_data_facts f = {.sample = ed_shape3(1, 8, 8), .classes = 3, .unit_range = true};
    assert_int_equal(ed_gen_model_init_data(&m, &ed_cgan_model, &f), ED_OK);
    assert_int_equal(ed_gen_model_set(&m, "arch", "conv"), ED_OK);
    assert_int_equal(ed_gen_model_set(&m, "channels", "4,8"), ED_OK);
    assert_int_equal(ed_gen_model_set(&m, "latent", "5"), ED_OK);
    assert_int_equal(ed_gen_model_check(&m), ED_OK);
    ed_graph *g = ed_graph_new("dcgan_disc");
    ed_batch b = {.x = ed_input(g, "x", ED_F32, ed_shape4(6, 1, 8, 8)),
                  .labels = ed_input(g, "labels", ED_I32, ed_shape1(6))};
    ed_output(g, "loss", ed_gen_model_step_loss(g, &m, 0, &b));
    if (ed_graph_error(g)) fail_msg("%s", ed_graph_error(g));
    expect_shape(g, ED_OP_PARAM, "gen.fc.w", ed_shape2(5 + 3, 8 * 2 * 2));
    expect_shape(g, ED_OP_PARAM, "gen.bn_fc.g", ed_shape1(8 * 2 * 2));
    expect_shape(g, ED_OP_PARAM, "gen.up0.w", ed_shape4(8, 4, 4, 4));
    expect_shape(g, ED_OP_PARAM, "gen.bn0.g", ed_shape1(4));
    expect_shape(g, ED_OP_STATE, "gen.bn0.running_var", ed_shape1(4));
    expect_shape(g, ED_OP_PARAM, "gen.up1.w", ed_shape4(4, 1, 4, 4));
    expect_shape(g, ED_OP_PARAM, "disc.conv0.w", ed_shape4(4, 1, 4, 4));
    expect_shape(g, ED_OP_PARAM, "disc.conv1.w", ed_shape4(8, 4, 4, 4));
    expect_shape(g, ED_OP_PARAM, "disc.out.w", ed_shape2(8 * 2 * 2 + 3, 1));
    assert_null(ed_graph_leaf(g, ED_OP_PARAM, "gen.0.w"));
    assert_null(ed_graph_leaf(g, ED_OP_PARAM, "disc.0.w"));
    assert_int_equal(ed_graph_leaf(g, ED_OP_PARAM, "disc.conv0.w")->attr.init.kind, ED_INIT_UNIFORM); /* glorot */
    ed_graph_free(g);
    /* --init dcgan: N(0, 0.02) for every weight, biases and gains kept */
    assert_int_equal(ed_gen_model_set(&m, "init", "dcgan"), ED_OK);
    g = ed_graph_new("dcgan_init");
    b = (ed_batch){.x = ed_input(g, "x", ED_F32, ed_shape4(6, 1, 8, 8)),
                   .labels = ed_input(g, "labels", ED_I32, ed_shape1(6))};
    ed_output(g, "loss", ed_gen_model_step_loss(g, &m, 0, &b));
    if (ed_graph_error(g)) fail_msg("%s", ed_graph_error(g));
    const char *const weights[] = {"gen.fc.w", "gen.up0.w", "gen.up1.w", "disc.conv0.w", "disc.conv1.w", "disc.out.w"};
    for (int i = 0; i < 6; i++) {
        ed_init in = ed_graph_leaf(g, ED_OP_PARAM, weights[i])->attr.init;
        if (in.kind != ED_INIT_NORMAL || in.scale != 0.02) fail_msg("%s: init %s", weights[i], ed_init_name(in.kind));
    }
    assert_int_equal(ed_graph_leaf(g, ED_OP_PARAM, "gen.bn0.g")->attr.init.kind, ED_INIT_ONES);
    assert_int_equal(ed_graph_leaf(g, ED_OP_PARAM, "disc.conv0.b")->attr.init.kind, ED_INIT_ZEROS);
    assert_non_null(ed_graph_update(g, "gen.bn0.running_mean"));
    assert_int_equal(count_op(g, ED_OP_BERNOULLI), 0); /* DCGAN's D: no dropout unless asked */
    ed_store *st = ed_store_new(1);
    ed_program *p = compile(g, st);
    ed_tensor *x = ed_tensor_new(ED_F32, ed_shape4(6, 1, 8, 8)), *lab = ed_tensor_new(ED_I32, ed_shape1(6));
    for (int i = 0; i < 6 * 64; i++) ((float *)x->data)[i] = (float)((i * 7) % 11) / 10;
    for (int i = 0; i < 6; i++) ((int32_t *)lab->data)[i] = i % 3;
    assert_int_equal(ed_run(p, (ed_feed[]){{"x", x}, {"labels", lab}}, 2), ED_OK);
    double loss = *(const float *)ed_program_output(p, "loss")->data;
    assert_true(loss > 0.5 && loss < 3); /* near 2 log 2 at the start */
    ed_program_free(p);
    ed_graph_free(g);

    g = ed_graph_new("dcgan_sample");
    ed_node *classes = ed_const(g, ED_I32, ed_shape1(4), (const double[]){0, 1, 2, 0}, 4);
    ed_node *xs = ed_gen_model_sample(g, &m, 4, NULL, classes, NULL);
    if (!xs) fail_msg("%s", ed_graph_error(g) ? ed_graph_error(g) : ed_last_error());
    assert_true(ed_shape_eq(xs->shape, ed_shape4(4, 1, 8, 8)));
    assert_int_equal(g->nupdates, 0);
    ed_output(g, "x", xs);
    p = compile(g, st);
    assert_int_equal(ed_run(p, NULL, 0), ED_OK);
    const float *v = ed_program_output(p, "x")->data;
    for (int i = 0; i < 4 * 64; i++) assert_true(v[i] >= 0 && v[i] <= 1);
    ed_program_free(p);
    ed_graph_free(g);
    ed_store_free(st);
    ed_tensor_free(x);
    ed_tensor_free(lab);

    /* --dropout given: a mask after each convolution */
    assert_int_equal(ed_gen_model_set(&m, "dropout", "0.3"), ED_OK);
    g = ed_graph_new("dcgan_dropout");
    b = (ed_batch){.x = ed_input(g, "x", ED_F32, ed_shape4(6, 1, 8, 8)),
                   .labels = ed_input(g, "labels", ED_I32, ed_shape1(6))};
    assert_non_null(ed_gen_model_step_loss(g, &m, 0, &b));
    assert_int_equal(count_op(g, ED_OP_BERNOULLI), 4); /* 2 convolutions x (real, fake) */
    ed_graph_free(g);

    /* wgan_gp: the penalty's gradient (differentiated again by the step) goes through the
     * convolutions' input gradients */
    f.classes = 0;
    assert_int_equal(ed_gen_model_init_data(&m, &ed_wgan_gp_model, &f), ED_OK);
    assert_int_equal(ed_gen_model_set(&m, "arch", "conv"), ED_OK);
    g = ed_graph_new("dcgan_critic");
    b = (ed_batch){.x = ed_input(g, "x", ED_F32, ed_shape4(6, 1, 8, 8))};
    assert_non_null(ed_gen_model_step_loss(g, &m, 0, &b));
    /* G's two transposed convolutions, and D's two input gradients in the penalty */
    assert_int_equal(count_op(g, ED_OP_CONV_TRANSPOSE2D), 4);
    ed_graph_free(g);
}

/* arch conv wants images whose sides halve once per channel entry, and not the mlp widths. */
static void test_conv_errors(void **state)
{
    (void)state;
    ed_gen_model m;
    assert_int_equal(ed_gen_model_init(&m, &ed_gan_model, ed_shape1(3), 0), ED_OK);
    assert_int_equal(ed_gen_model_set(&m, "arch", "conv"), ED_OK);
    assert_int_equal(ed_gen_model_check(&m), ED_ERR);
    assert_non_null(strstr(ed_last_error(), "model gan --arch conv needs images"));
    assert_int_equal(ed_gen_model_init(&m, &ed_gan_model, ed_shape3(1, 6, 6), 0), ED_OK);
    assert_int_equal(ed_gen_model_set(&m, "arch", "conv"), ED_OK);
    assert_int_equal(ed_gen_model_check(&m), ED_ERR);
    assert_non_null(strstr(ed_last_error(), "need H and W divisible by 4; the images are 6x6"));
    assert_int_equal(ed_gen_model_set(&m, "channels", "8"), ED_OK);
    assert_int_equal(ed_gen_model_check(&m), ED_OK);
    assert_int_equal(ed_gen_model_set(&m, "generator_sizes", "64"), ED_OK);
    assert_int_equal(ed_gen_model_check(&m), ED_ERR);
    assert_non_null(strstr(ed_last_error(), "--generator_sizes is the mlp's widths"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_wgan_gp_low_dimensional_defaults),
        cmocka_unit_test(test_networks_in_training),
        cmocka_unit_test(test_sample_in_eval_mode),
        cmocka_unit_test(test_losses_by_hand),
        cmocka_unit_test(test_penalty_gradient),
        cmocka_unit_test(test_steps_update_their_groups),
        cmocka_unit_test(test_cgan_conditions_both),
        cmocka_unit_test(test_critic_schedule_spans_its_runs),
        cmocka_unit_test(test_conv_networks),
        cmocka_unit_test(test_conv_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
