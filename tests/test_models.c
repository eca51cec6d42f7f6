/* The generative models and their training: option tables with Edifice's defaults,
 * beta schedules against closed forms, the denoiser's interface for samplers, the loss
 * falling for each model on unconditional moons and on the conditional demonstration
 * pairs, resume giving the same losses and params bit for bit on both backends, and
 * bad checkpoints rejected with a message naming the file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "models/trainer.h"
#include "models/generate.h"
#include "io/safetensors.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TMP ED_BINARY_DIR "/test_models_tmp"

static int setup(void **state)
{
    (void)state;
    return system("mkdir -p '" TMP "'") == 0 ? 0 : -1;
}

static ed_gen_model make_model(const char *name, const ed_dataset *d)
{
    ed_gen_model m;
    const ed_model_def *def = ed_model_find(name);
    if (!def) fail_msg("%s", ed_last_error());
    if (ed_gen_model_init(&m, def, ed_dataset_sample_shape(d), ed_dataset_obs_size(d)) != ED_OK)
        fail_msg("%s", ed_last_error());
    return m;
}

static void set(ed_gen_model *m, const char *k, const char *v)
{
    if (ed_gen_model_set(m, k, v) != ED_OK) fail_msg("%s", ed_last_error());
}

/* ---- options -------------------------------------------------------------------- */

static void expect_opt(const ed_gen_model *m, const char *name, const char *want)
{
    char buf[64];
    const char *v = ed_gen_model_get(m, name, buf, sizeof buf);
    if (!v || strcmp(v, want) != 0) fail_msg("%s.%s = %s, want %s", m->def->name, name, v ? v : "(none)", want);
}

static void test_defaults_follow_edifice(void **state)
{
    (void)state;
    ed_gen_model m;
    assert_int_equal(ed_gen_model_init(&m, ed_model_find("ddpm"), ed_shape2(8, 64), 287), ED_OK);
    expect_opt(&m, "hidden", "256");
    expect_opt(&m, "layers", "4");
    expect_opt(&m, "timesteps", "100");
    expect_opt(&m, "beta_schedule", "linear");
    expect_opt(&m, "beta_start", "0.0001");
    expect_opt(&m, "beta_end", "0.02");
    assert_int_equal(ed_gen_model_init(&m, ed_model_find("ddim"), ed_shape2(8, 64), 287), ED_OK);
    expect_opt(&m, "timesteps", "1000");
    expect_opt(&m, "ddim_steps", "50");
    expect_opt(&m, "eta", "0");
    expect_opt(&m, "clip_x0", "-1"); /* set at training from the schedule and the data */
    assert_int_equal(ed_gen_model_init(&m, ed_model_find("flow_matching"), ed_shape2(8, 64), 287), ED_OK);
    expect_opt(&m, "hidden", "256");
    expect_opt(&m, "layers", "4");
    expect_opt(&m, "sigma_min", "0");
    expect_opt(&m, "solver", "euler");
    expect_opt(&m, "sample_steps", "20");
    expect_opt(&m, "guidance_scale", "1");
    assert_string_equal(m.def->pred, "velocity");
    assert_string_equal(ed_model_find("ddpm")->pred, "eps");
    /* Edifice's ScoreSDE: hidden 256, 4 layers, VP 0.1..20, VE 0.01..50; on 2-D data the
     * small network (64, 2) and 8000 steps by default. */
    assert_int_equal(ed_gen_model_init(&m, ed_model_find("score_sde"), ed_shape1(64), 0), ED_OK);
    expect_opt(&m, "hidden", "256");
    expect_opt(&m, "layers", "4");
    assert_int_equal(ed_gen_model_init(&m, ed_model_find("score_sde"), ed_shape1(2), 0), ED_OK);
    expect_opt(&m, "hidden", "64");
    expect_opt(&m, "layers", "2");
    assert_int_equal(m.def->default_steps, 8000);
    expect_opt(&m, "sde", "vp");
    expect_opt(&m, "beta_min", "0.1");
    expect_opt(&m, "beta_max", "20");
    expect_opt(&m, "sigma_min", "0.01");
    expect_opt(&m, "sigma_max", "50");
    expect_opt(&m, "sampler", "pc");
    expect_opt(&m, "snr", "0.16");
    assert_null(m.def->pred); /* it samples itself, not through ed_denoiser_sample */
}

static void test_option_errors(void **state)
{
    (void)state;
    ed_gen_model m;
    assert_int_equal(ed_gen_model_init(&m, ed_model_find("flow_matching"), ed_shape1(2), 0), ED_OK);
    assert_int_equal(ed_gen_model_set(&m, "hiden", "3"), ED_ERR);
    assert_non_null(strstr(ed_last_error(), "unknown option 'hiden'"));
    assert_non_null(strstr(ed_last_error(), "hidden"));
    assert_int_equal(ed_gen_model_set(&m, "layers", "four"), ED_ERR);
    assert_non_null(strstr(ed_last_error(), "not an integer"));
    assert_int_equal(ed_gen_model_set(&m, "sigma_min", "1.5"), ED_ERR);
    assert_non_null(strstr(ed_last_error(), "outside [0, 0.999]"));
    assert_int_equal(ed_gen_model_set(&m, "solver", "dopri5"), ED_ERR);
    assert_non_null(strstr(ed_last_error(), "euler|midpoint|heun|rk4"));
    assert_false(ed_gen_model_was_set(&m, "sigma_min")); /* a failed set is not recorded */
    assert_int_equal(ed_gen_model_set(&m, "sigma_min", "0.1"), ED_OK);
    assert_true(ed_gen_model_was_set(&m, "sigma_min"));
    assert_false(ed_gen_model_was_set(&m, "layers"));
    assert_false(ed_gen_model_was_set(&m, "nosuch"));
    for (int i = 0; i < ed_model_count(); i++) /* set_options has a bit per option */
        assert_true(ed_model_at(i)->noptions <= 64);
    /* Reals print so they read back exactly. */
    assert_int_equal(ed_gen_model_set(&m, "cond_dropout", "0.1"), ED_OK);
    expect_opt(&m, "cond_dropout", "0.1");
    assert_int_equal(ed_gen_model_set(&m, "time_scale", "0.30000000000000004"), ED_OK);
    expect_opt(&m, "time_scale", "0.30000000000000004");
    assert_null(ed_model_find("nosuch"));
    assert_non_null(
        strstr(ed_last_error(),
               "flow_matching, ddpm, ddim, vae, vqvae, realnvp, gan, wgan_gp, cgan, dit, score_sde, latent_diffusion, "
               "consistency"));
}

/* A SIZES option: a list of widths with its default, parse errors and exact round trip. */
typedef struct {
    ed_sizes hidden;
} sizes_opts;

static void test_option_sizes(void **state)
{
    (void)state;
    static const ed_option table[] = {
        {"hidden", ED_OPTION_SIZES, offsetof(sizes_opts, hidden), 0, 1, 4096, NULL, "widths", "256,128"},
    };
    sizes_opts o;
    char buf[64];
    ed_options_defaults(table, 1, &o);
    assert_int_equal(o.hidden.n, 2);
    assert_int_equal(o.hidden.v[0], 256);
    assert_int_equal(o.hidden.v[1], 128);
    assert_string_equal(ed_options_get(table, 1, &o, "hidden", buf, sizeof buf), "256,128");
    assert_string_equal(ed_option_default_str(&table[0], buf, sizeof buf), "256,128");
    assert_int_equal(ed_options_set(table, 1, &o, "hidden", "64"), ED_OK);
    assert_int_equal(o.hidden.n, 1);
    assert_string_equal(ed_options_get(table, 1, &o, "hidden", buf, sizeof buf), "64");
    assert_int_equal(ed_options_set(table, 1, &o, "hidden", "64,x"), ED_ERR);
    assert_non_null(strstr(ed_last_error(), "not a list of integers"));
    assert_int_equal(ed_options_set(table, 1, &o, "hidden", "64,0"), ED_ERR);
    assert_non_null(strstr(ed_last_error(), "0 is outside [1, 4096]"));
    assert_int_equal(ed_options_set(table, 1, &o, "hidden", "64,"), ED_ERR);
    assert_non_null(strstr(ed_last_error(), "ends with a comma"));
    assert_int_equal(ed_options_set(table, 1, &o, "hidden", "1,2,3,4,5,6,7,8,9"), ED_ERR);
    assert_non_null(strstr(ed_last_error(), "at most 8"));
    assert_int_equal(o.hidden.n, 1); /* a failed set leaves the value alone */
}

/* A PATH option: any text shorter than ED_PATH_MAX, "" by default, read back as given. */
typedef struct {
    int64_t k;
    ed_path file;
} path_opts;

static void test_option_path(void **state)
{
    (void)state;
    static const ed_option table[] = {
        {"k", ED_OPTION_INT, offsetof(path_opts, k), 1, 0, 9, NULL, "k", NULL},
        {"file", ED_OPTION_PATH, offsetof(path_opts, file), 0, 0, 0, NULL, "a checkpoint", ""},
    };
    static path_opts o;
    static char buf[ED_OPTION_TEXT_MAX], long_path[ED_PATH_MAX + 1];
    ed_options_defaults(table, 2, &o);
    assert_string_equal(o.file.s, "");
    assert_string_equal(ed_options_get(table, 2, &o, "file", buf, sizeof buf), "");
    assert_string_equal(ed_option_range_str(&table[1], buf, sizeof buf), "a file");
    assert_int_equal(ed_options_set(table, 2, &o, "file", "runs/vae 1.safetensors"), ED_OK);
    assert_string_equal(ed_options_get(table, 2, &o, "file", buf, sizeof buf), "runs/vae 1.safetensors");
    memset(long_path, 'a', ED_PATH_MAX);
    assert_int_equal(ed_options_set(table, 2, &o, "file", long_path), ED_ERR);
    assert_non_null(strstr(ed_last_error(), "option file: the path is longer than 1023 characters"));
    assert_string_equal(o.file.s, "runs/vae 1.safetensors"); /* a failed set leaves the value alone */
    long_path[ED_PATH_MAX - 1] = '\0';
    assert_int_equal(ed_options_set(table, 2, &o, "file", long_path), ED_OK);
    assert_string_equal(ed_options_get(table, 2, &o, "file", buf, sizeof buf), long_path);
}

/* ---- schedules ------------------------------------------------------------------- */

static void test_beta_schedules(void **state)
{
    (void)state;
    ed_diffusion_opts o;
    ed_ddpm_defaults(&o);
    double b[1000], ab[1000];
    assert_int_equal(ed_diffusion_betas(&o, b), ED_OK);
    assert_float_equal(b[0], 1e-4, 1e-15);
    assert_float_equal(b[99], 0.02, 1e-15);
    assert_float_equal(b[50], 1e-4 + (0.02 - 1e-4) * 50.0 / 99.0, 1e-15);
    assert_int_equal(ed_diffusion_alpha_bar(&o, ab), ED_OK);
    double p = 1;
    for (int i = 0; i < 100; i++) p *= 1 - b[i];
    assert_float_equal(ab[99], p, 1e-15);
    /* Cosine: alpha_bar[t] = f(t + 1) / f(0), f(u) = cos^2((u / T + s) / (1 + s) pi / 2). */
    o.beta_schedule = ED_DIFF_BETA_COSINE;
    o.timesteps = 1000;
    assert_int_equal(ed_diffusion_alpha_bar(&o, ab), ED_OK);
    const double pi = 3.14159265358979323846, s = 0.008;
    for (int t = 0; t < 990; t += 97) {
        double f0 = cos(s / (1 + s) * pi / 2), f1 = cos(((t + 1) / 1000.0 + s) / (1 + s) * pi / 2);
        assert_float_equal(ab[t], (f1 * f1) / (f0 * f0), 1e-9);
    }
    o.beta_schedule = ED_DIFF_BETA_LINEAR;
    o.beta_end = 1.5;
    assert_int_equal(ed_diffusion_betas(&o, b), ED_ERR);
    assert_non_null(strstr(ed_last_error(), "outside (0, 1)"));
}

/* ---- the denoiser as a sampler sees it -------------------------------------------- */

static void test_denoise_interface(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++) {
        ed_gen_model m;
        assert_int_equal(ed_gen_model_init(&m, ed_model_find(k ? "ddpm" : "flow_matching"), ed_shape2(8, 2), 6), ED_OK);
        set(&m, "hidden", "16");
        set(&m, "layers", "2");
        ed_graph *g = ed_graph_new("den");
        ed_node *x = ed_input(g, "x", ED_F32, ed_shape3(5, 8, 2));
        ed_node *obs = ed_input(g, "obs", ED_F32, ed_shape2(5, 6));
        /* t as a scalar (what a sampler's loop gives) and per sample; with and without cond. */
        ed_node *a = ed_gen_model_denoise(g, &m, x, ed_scalar(g, ED_F32, 3), obs, NULL);
        ed_node *b = ed_gen_model_denoise(g, &m, x, ed_fill(g, ED_F32, ed_shape1(5), 3), obs, NULL);
        ed_node *c = ed_gen_model_denoise(g, &m, x, ed_scalar(g, ED_F32, 3), NULL, NULL);
        if (!a || !b || !c) fail_msg("%s", ed_graph_error(g));
        assert_true(ed_shape_eq(a->shape, x->shape));
        ed_output(g, "a", a);
        ed_output(g, "b", b);
        ed_output(g, "c", c);
        ed_store *st = ed_store_new(1);
        ed_program *p = ed_compile(g, st, &(ed_compile_opts){.backend = ED_BACKEND_INTERP});
        if (!p) fail_msg("%s", ed_last_error());
        /* The output layer starts at zero (every prediction 0): give it values. */
        ed_tensor *wout = ed_store_get(st, k ? "ddpm.out.w" : "fm.out.w");
        assert_non_null(wout);
        for (int64_t i = 0; i < ed_tensor_numel(wout); i++) {
            assert_true(ed_tensor_get(wout, i) == 0);
            ed_tensor_set(wout, i, 0.3 * sin((double)i));
        }
        ed_tensor *xv = ed_tensor_new(ED_F32, x->shape), *ov = ed_tensor_new(ED_F32, obs->shape);
        for (int i = 0; i < 80; i++) ed_tensor_set(xv, i, sin(i));
        for (int i = 0; i < 30; i++) ed_tensor_set(ov, i, cos(i));
        assert_int_equal(ed_run(p, (ed_feed[]){{"x", xv}, {"obs", ov}}, 2), ED_OK);
        const ed_tensor *ta = ed_program_output(p, "a"), *tb = ed_program_output(p, "b"),
                        *tc = ed_program_output(p, "c");
        bool differs = false;
        for (int i = 0; i < 80; i++) {
            assert_true(isfinite(ed_tensor_get(ta, i)));
            assert_float_equal(ed_tensor_get(ta, i), ed_tensor_get(tb, i), 1e-6);
            differs |= fabs(ed_tensor_get(ta, i) - ed_tensor_get(tc, i)) > 1e-6;
        }
        assert_true(differs); /* the null condition is not the observation */
        /* The params are shared between the three calls. */
        int nparams = 0;
        for (int i = 0; i < g->nnodes; i++) nparams += g->nodes[i]->op == ED_OP_PARAM;
        assert_int_equal(nparams, 2 + 2 + 2 * 6 + 2); /* in, cond, 2 blocks x (ln, fc1, fc2), out */
        ed_program_free(p);
        ed_store_free(st);
        ed_tensor_free(xv);
        ed_tensor_free(ov);
        /* Shape errors are clear and sticky. */
        ed_node *bad = ed_gen_model_denoise(g, &m, ed_input(g, "x2", ED_F32, ed_shape2(5, 16)), ed_scalar(g, ED_F32, 0),
                                            NULL, NULL);
        assert_null(bad);
        assert_non_null(strstr(ed_graph_error(g), "the model was built for f32[5,8,2]"));
        ed_graph_free(g);
    }
}

/* ---- training ------------------------------------------------------------------- */

typedef struct {
    const char *model, *data;
    double max_ratio; /* the last window's mean loss must be below this times the first's */
    int steps;
    int64_t batch;
    double lr;
    ed_backend backend;
    const char *opts[8]; /* name, value pairs */
} run_spec;

/* Mean loss of the first and the last `window` steps. */
static void train_run(const run_spec *r, int window, double *first, double *last)
{
    ed_dataset d;
    if (ed_dataset_open(&d, r->data, 4000, 7) != ED_OK) fail_msg("%s", ed_last_error());
    ed_gen_model m = make_model(r->model, &d);
    for (int i = 0; r->opts[i]; i += 2) set(&m, r->opts[i], r->opts[i + 1]);
    ed_trainer *t = ed_trainer_new(
        &m, &d, &(ed_trainer_opts){.batch = r->batch, .lr = r->lr, .seed = 3, .backend = r->backend});
    if (!t) fail_msg("%s", ed_last_error());
    *first = *last = 0;
    for (int s = 0; s < r->steps; s++) {
        double loss;
        assert_int_equal(ed_trainer_step(t, &loss), ED_OK);
        assert_true(isfinite(loss));
        if (s < window) *first += loss / window;
        if (s >= r->steps - window) *last += loss / window;
    }
    assert_int_equal(ed_trainer_steps_done(t), r->steps);
    print_message("%s on %s: loss %.4f -> %.4f over %d steps\n", r->model, r->data, *first, *last, r->steps);
    ed_trainer_free(t);
    ed_dataset_free(&d);
}

static void test_loss_falls(void **state)
{
    (void)state;
    const run_spec runs[] = {
        {"flow_matching", "moons", 0.85, 300, 128, 2e-3, ED_BACKEND_JIT, {"hidden", "64", "layers", "2"}},
        {"ddpm", "moons", 0.85, 300, 128, 2e-3, ED_BACKEND_JIT, {"hidden", "64", "layers", "2"}},
        {"flow_matching",
         "demo",
         0.5,
         300,
         128,
         2e-3,
         ED_BACKEND_JIT,
         {"hidden", "64", "layers", "2", "cond_dropout", "0.1"}},
        {"ddpm", "demo", 0.5, 300, 128, 2e-3, ED_BACKEND_JIT, {"hidden", "64", "layers", "2", "cond_dropout", "0.1"}},
        {"ddim", "moons", 0.85, 300, 128, 2e-3, ED_BACKEND_JIT, {"hidden", "64", "layers", "2"}},
        {"score_sde", "moons", 0.85, 300, 128, 2e-3, ED_BACKEND_JIT, {"hidden", "64", "layers", "2"}},
        {"score_sde", "moons", 0.85, 300, 128, 2e-3, ED_BACKEND_JIT, {"hidden", "64", "layers", "2", "sde", "ve"}},
    };
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        double first, last;
        train_run(&runs[i], 20, &first, &last);
        /* A clear fall (the runs are seeded, so this is not luck). The output layer starts
         * at zero, so the first loss is the target's variance (FM on moons: about 2, with
         * an irreducible part near 1.4; DDPM: 1); the demonstration set is far easier. */
        if (!(last < runs[i].max_ratio * first))
            fail_msg("%s on %s: loss %.4f -> %.4f did not fall", runs[i].model, runs[i].data, first, last);
    }
}

/* ---- resume ----------------------------------------------------------------------- */

static ed_trainer *small_trainer(const ed_dataset *d, ed_backend be)
{
    ed_gen_model m = make_model("flow_matching", d);
    set(&m, "hidden", "16");
    set(&m, "layers", "1");
    set(&m, "cond_dropout", "0.2");
    /* A cosine schedule over the planned 12 steps: the resumed half must follow it. */
    ed_trainer *t = ed_trainer_new(
        &m, d,
        &(ed_trainer_opts){
            .batch = 32, .lr = 1e-2, .seed = 11, .backend = be, .steps = 12, .lr_schedule = ED_LR_COSINE});
    if (!t) fail_msg("%s", ed_last_error());
    return t;
}

static bool same_store(const ed_store *a, const ed_store *b)
{
    if (ed_store_count(a) != ed_store_count(b)) return false;
    for (int i = 0; i < ed_store_count(a); i++) {
        const ed_tensor *x = ed_store_tensor(a, i), *y = ed_store_get(b, ed_store_name(a, i));
        if (!y || ed_tensor_bytes(x) != ed_tensor_bytes(y) || memcmp(x->data, y->data, ed_tensor_bytes(x)) != 0)
            return false;
    }
    return true;
}

static void resume_case(ed_backend be)
{
    enum { N = 12 };
    ed_dataset d;
    assert_int_equal(ed_dataset_open(&d, "demo", 500, 2), ED_OK);
    double straight[N], resumed[N];
    ed_trainer *a = small_trainer(&d, be);
    for (int i = 0; i < N; i++) assert_int_equal(ed_trainer_step(a, &straight[i]), ED_OK);

    ed_trainer *b = small_trainer(&d, be);
    for (int i = 0; i < N / 2; i++) assert_int_equal(ed_trainer_step(b, &resumed[i]), ED_OK);
    const char *path = TMP "/resume.safetensors";
    assert_int_equal(ed_trainer_save(b, path), ED_OK);
    ed_trainer_free(b);
    ed_checkpoint ck;
    if (ed_checkpoint_load(path, &ck) != ED_OK) fail_msg("%s", ed_last_error());
    assert_int_equal(ck.step, N / 2);
    assert_string_equal(ck.model.def->name, "flow_matching");
    assert_string_equal(ck.data, "demo");
    assert_int_equal(ck.data_n, 500);
    assert_int_equal(ck.train.batch, 32);
    assert_true(ck.train.lr == 1e-2);
    assert_int_equal(ck.train.lr_schedule, ED_LR_COSINE);
    assert_int_equal(ck.train.steps, 12);
    assert_float_equal(ck.model.opts.fm.cond_dropout, 0.2, 0);
    ed_trainer_opts o = ck.train;
    o.backend = be;
    ed_trainer *c = ed_trainer_resume(&ck, &d, &o);
    if (!c) fail_msg("%s", ed_last_error());
    assert_null(ck.store);
    for (int i = N / 2; i < N; i++) assert_int_equal(ed_trainer_step(c, &resumed[i]), ED_OK);
    for (int i = 0; i < N; i++)
        if (memcmp(&straight[i], &resumed[i], sizeof(double)) != 0)
            fail_msg("step %d: straight %.9g, resumed %.9g", i, straight[i], resumed[i]);
    assert_true(same_store(ed_trainer_store(a), ed_trainer_store(c)));
    assert_int_equal(ed_trainer_steps_done(c), N);
    ed_checkpoint_free(&ck);
    ed_trainer_free(a);
    ed_trainer_free(c);
    ed_dataset_free(&d);
}

static void test_resume_bit_identical_interp(void **state)
{
    (void)state;
    resume_case(ED_BACKEND_INTERP);
}

static void test_resume_bit_identical_jit(void **state)
{
    (void)state;
    resume_case(ED_BACKEND_JIT);
}

/* ---- the EMA of the weights (ema_decay) ---------------------------------------------- */

static ed_trainer *ema_trainer(const ed_dataset *d, const char *decay)
{
    ed_gen_model m = make_model("ddpm", d);
    set(&m, "hidden", "16");
    set(&m, "layers", "1");
    if (decay) set(&m, "ema_decay", decay);
    ed_trainer *t = ed_trainer_new(
        &m, d,
        &(ed_trainer_opts){
            .batch = 32, .lr = 1e-2, .seed = 3, .backend = ED_BACKEND_INTERP, .steps = 6, .lr_schedule = ED_LR_COSINE});
    if (!t) fail_msg("%s", ed_last_error());
    return t;
}

static void run_steps(ed_trainer *t, int n)
{
    for (int i = 0; i < n; i++) assert_int_equal(ed_trainer_step(t, NULL), ED_OK);
}

/* 4 samples of ddpm with the params in st (seed 5, the model's own sampler). */
static ed_tensor *ddpm_draw(const ed_gen_model *m, ed_store *st)
{
    ed_tensor *s = NULL;
    if (ed_gen_draw(m, st, 4, NULL, NULL, &(ed_gen_draw_opts){.seed = 5, .backend = ED_BACKEND_INTERP}, &s) != ED_OK)
        fail_msg("%s", ed_last_error());
    return s;
}

static bool same_tensor(const ed_tensor *a, const ed_tensor *b)
{
    return ed_tensor_bytes(a) == ed_tensor_bytes(b) && memcmp(a->data, b->data, ed_tensor_bytes(a)) == 0;
}

/* The U-Net's fresh run (ddpm's and flow_matching's) without --steps and --batch: 1200
 * steps at batch 64; the MLP keeps the trainer's defaults. */
static void test_unet_run_defaults(void **state)
{
    (void)state;
    ed_dataset d;
    if (ed_dataset_open(&d, "digits", 0, 0) != ED_OK) fail_msg("%s", ed_last_error());
    const char *names[2] = {"ddpm", "flow_matching"};
    for (int k = 0; k < 2; k++)
        for (int conv = 0; conv < 2; conv++) {
            ed_gen_model m = make_model(names[k], &d);
            if (conv) set(&m, "arch", "conv");
            int64_t steps = 1000, batch = 256;
            double lr = 1e-3;
            assert_non_null(m.def->run_defaults);
            m.def->run_defaults(&m, &steps, &batch, &lr);
            assert_int_equal(steps, conv ? 1200 : 1000);
            assert_int_equal(batch, conv ? 64 : 256);
            assert_true(lr == 1e-3);
        }
    ed_dataset_free(&d);
}

/* The EMA is training state: the checkpoint keeps the option and every opt.ema.* tensor,
 * a run resumed from it ends with the store (EMA included) of the run never stopped, and
 * ed_checkpoint_use_ema puts each param's EMA in its place for sampling. */
static void test_ema_checkpoint_and_resume(void **state)
{
    (void)state;
    ed_dataset d;
    assert_int_equal(ed_dataset_open(&d, "moons", 300, 1), ED_OK);
    ed_trainer *a = ema_trainer(&d, "0.9");
    run_steps(a, 6);
    ed_trainer *b = ema_trainer(&d, "0.9");
    run_steps(b, 3);
    const char *path = TMP "/ema.safetensors";
    assert_int_equal(ed_trainer_save(b, path), ED_OK);
    ed_checkpoint ck;
    if (ed_checkpoint_load(path, &ck) != ED_OK) fail_msg("%s", ed_last_error());
    assert_float_equal(ck.model.opts.diffusion.ema_decay, 0.9, 0);
    assert_true(same_store(ed_trainer_store(b), ck.store));
    const ed_tensor *w = ed_store_get(ck.store, "ddpm.in.w"), *avg = ed_store_get(ck.store, "opt.ema.ddpm.in.w");
    assert_non_null(avg);
    assert_false(same_tensor(w, avg)); /* three steps apart from the weights */
    ed_trainer_opts o = ck.train;
    o.backend = ED_BACKEND_INTERP; /* not kept in checkpoints */
    ed_trainer *c = ed_trainer_resume(&ck, &d, &o);
    if (!c) fail_msg("%s", ed_last_error());
    run_steps(c, 3);
    assert_true(same_store(ed_trainer_store(a), ed_trainer_store(c)));
    ed_checkpoint_free(&ck);

    /* Sampling: every param (and only params) takes its EMA; the samples change. */
    if (ed_checkpoint_load(path, &ck) != ED_OK) fail_msg("%s", ed_last_error());
    ed_tensor *raw = ddpm_draw(&ck.model, ck.store);
    int params = 0, swapped = ed_checkpoint_use_ema(&ck);
    for (int i = 0; i < ed_store_count(ck.store); i++) {
        const char *name = ed_store_name(ck.store, i);
        if (strncmp(name, "ddpm.", 5) != 0) continue;
        char key[256];
        snprintf(key, sizeof key, "opt.ema.%s", name);
        assert_true(same_tensor(ed_store_tensor(ck.store, i), ed_store_get(ck.store, key)));
        params++;
    }
    assert_true(params > 4);
    assert_int_equal(swapped, params);
    ed_tensor *ema = ddpm_draw(&ck.model, ck.store);
    assert_false(same_tensor(raw, ema));
    ed_tensor_free(raw);
    ed_tensor_free(ema);
    ed_checkpoint_free(&ck);
    ed_trainer_free(a);
    ed_trainer_free(b);
    ed_trainer_free(c);
    ed_dataset_free(&d);
}

/* A checkpoint without EMA (ema_decay 0, or written before the option: no option.ema_decay
 * in its metadata) loads, resumes and samples as before: no opt.ema.* state, and
 * ed_checkpoint_use_ema leaves the store as it is. */
static void test_checkpoint_without_ema(void **state)
{
    (void)state;
    ed_dataset d;
    assert_int_equal(ed_dataset_open(&d, "moons", 300, 1), ED_OK);
    ed_trainer *t = ema_trainer(&d, NULL);
    run_steps(t, 2);
    const char *path = TMP "/no_ema.safetensors", *old = TMP "/before_ema.safetensors";
    assert_int_equal(ed_trainer_save(t, path), ED_OK);
    for (int i = 0; i < ed_store_count(ed_trainer_store(t)); i++)
        assert_null(strstr(ed_store_name(ed_trainer_store(t), i), "ema."));
    /* The same file as an older edifice wrote it. */
    ed_meta *meta = NULL, *before = ed_meta_new();
    ed_store *st = ed_safetensors_load(path, &meta);
    if (!st) fail_msg("%s", ed_last_error());
    assert_string_equal(ed_meta_get(meta, "option.ema_decay"), "0");
    for (int i = 0; i < ed_meta_count(meta); i++)
        if (strcmp(ed_meta_key(meta, i), "option.ema_decay") != 0)
            assert_int_equal(ed_meta_set(before, ed_meta_key(meta, i), ed_meta_value(meta, i)), ED_OK);
    assert_int_equal(ed_safetensors_save(old, st, before), ED_OK);
    ed_store_free(st);
    ed_meta_free(meta);
    ed_meta_free(before);

    ed_checkpoint now, then;
    if (ed_checkpoint_load(path, &now) != ED_OK || ed_checkpoint_load(old, &then) != ED_OK)
        fail_msg("%s", ed_last_error());
    assert_float_equal(then.model.opts.diffusion.ema_decay, 0, 0);
    assert_int_equal(ed_checkpoint_use_ema(&then), 0);
    assert_true(same_store(now.store, then.store));
    ed_tensor *a = ddpm_draw(&now.model, now.store), *b = ddpm_draw(&then.model, then.store);
    assert_true(same_tensor(a, b));
    ed_tensor_free(a);
    ed_tensor_free(b);
    ed_trainer_opts o = then.train;
    o.backend = ED_BACKEND_INTERP;
    ed_trainer *r = ed_trainer_resume(&then, &d, &o);
    if (!r) fail_msg("%s", ed_last_error());
    run_steps(r, 1);
    ed_trainer_free(r);
    ed_checkpoint_free(&now);
    ed_checkpoint_free(&then);
    ed_trainer_free(t);
    ed_dataset_free(&d);
}

/* ---- bad checkpoints ---------------------------------------------------------------- */

static void write_bytes(const char *path, const unsigned char *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
}

static void test_bad_checkpoints(void **state)
{
    (void)state;
    ed_dataset d;
    assert_int_equal(ed_dataset_open(&d, "moons", 100, 0), ED_OK);
    ed_trainer *t = small_trainer(&d, ED_BACKEND_INTERP);
    double loss;
    assert_int_equal(ed_trainer_step(t, &loss), ED_OK);
    const char *good = TMP "/good.safetensors", *bad = TMP "/bad.safetensors";
    assert_int_equal(ed_trainer_save(t, good), ED_OK);
    FILE *f = fopen(good, "rb");
    assert_non_null(f);
    static unsigned char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    assert_true(n > 1000 && n < sizeof buf);

    ed_checkpoint ck;
    write_bytes(bad, buf, n - 100); /* truncated */
    assert_int_equal(ed_checkpoint_load(bad, &ck), ED_ERR);
    assert_non_null(strstr(ed_last_error(), bad));
    assert_null(ck.store);
    for (size_t pos = 20; pos < n; pos += n / 7) { /* a flipped bit, in the header or the data */
        buf[pos] ^= 0x10;
        write_bytes(bad, buf, n);
        buf[pos] ^= 0x10;
        assert_int_equal(ed_checkpoint_load(bad, &ck), ED_ERR);
        assert_non_null(strstr(ed_last_error(), bad));
    }
    /* A safetensors file without training metadata. */
    assert_int_equal(ed_safetensors_save(bad, ed_trainer_store(t), NULL), ED_OK);
    assert_int_equal(ed_checkpoint_load(bad, &ck), ED_ERR);
    assert_non_null(strstr(ed_last_error(), "not an edifice training checkpoint"));

    /* A checkpoint whose store does not fit the model it names: another model's params. */
    assert_int_equal(ed_checkpoint_load(good, &ck), ED_OK);
    set(&ck.model, "hidden", "32");
    ed_trainer *r = ed_trainer_resume(&ck, &d, &ck.train);
    assert_null(r);
    assert_non_null(strstr(ed_last_error(), "fm.in.w"));
    ed_checkpoint_free(&ck);
    /* Data of another shape. */
    ed_dataset demo;
    assert_int_equal(ed_dataset_open(&demo, "demo", 10, 0), ED_OK);
    assert_int_equal(ed_checkpoint_load(good, &ck), ED_OK);
    assert_null(ed_trainer_resume(&ck, &demo, &ck.train));
    assert_non_null(strstr(ed_last_error(), "data 'demo' has samples [8,2]"));
    ed_checkpoint_free(&ck);
    ed_dataset_free(&demo);
    ed_trainer_free(t);
    ed_dataset_free(&d);
}

static void test_dataset_errors(void **state)
{
    (void)state;
    ed_dataset d;
    assert_int_equal(ed_dataset_open(&d, "spirals", 10, 0), ED_ERR);
    assert_non_null(strstr(ed_last_error(), "unknown data 'spirals'"));
    assert_int_equal(ed_dataset_open(&d, TMP "/missing.npy", 10, 0), ED_ERR);
    assert_non_null(strstr(ed_last_error(), "missing.npy"));
    assert_int_equal(ed_dataset_open(&d, "moons", 0, 0), ED_ERR);
    assert_int_equal(ed_dataset_open(&d, "demo", 50, 0), ED_OK);
    assert_int_equal(ed_dataset_obs_size(&d), 6);
    assert_true(ed_shape_eq(ed_dataset_sample_shape(&d), ed_shape2(8, 2)));
    /* Batches are a function of (seed, index): equal draws, different indices differ. */
    ed_tensor *a = ed_tensor_new(ED_F32, ed_shape3(4, 8, 2)), *b = ed_tensor_new(ED_F32, ed_shape3(4, 8, 2));
    ed_tensor *oa = ed_tensor_new(ED_F32, ed_shape2(4, 6));
    assert_int_equal(ed_dataset_batch(&d, 5, 9, a, oa), ED_OK);
    assert_int_equal(ed_dataset_batch(&d, 5, 9, b, NULL), ED_OK);
    assert_memory_equal(a->data, b->data, ed_tensor_bytes(a));
    assert_int_equal(ed_dataset_batch(&d, 5, 10, b, NULL), ED_OK);
    assert_memory_not_equal(a->data, b->data, ed_tensor_bytes(a));
    ed_tensor_free(a);
    ed_tensor_free(b);
    ed_tensor_free(oa);
    ed_dataset_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_follow_edifice),
        cmocka_unit_test(test_option_errors),
        cmocka_unit_test(test_option_sizes),
        cmocka_unit_test(test_option_path),
        cmocka_unit_test(test_beta_schedules),
        cmocka_unit_test(test_denoise_interface),
        cmocka_unit_test(test_dataset_errors),
        cmocka_unit_test(test_resume_bit_identical_interp),
        cmocka_unit_test(test_resume_bit_identical_jit),
        cmocka_unit_test(test_bad_checkpoints),
        cmocka_unit_test(test_unet_run_defaults),
        cmocka_unit_test(test_ema_checkpoint_and_resume),
        cmocka_unit_test(test_checkpoint_without_ema),
        cmocka_unit_test(test_loss_falls),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
