/* The training commands of the edifice CLI, run as a user would: `models` lists the
 * registry with defaults, `data` writes .npy and PNG, `train` prints progress, writes a
 * checkpoint, resumes to the same losses, stops cleanly and saves on SIGINT, and every
 * user error (bad flags, options, data, wrong or damaged checkpoints) is one clear
 * line with a non-zero exit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "runtime/comm.h"
#include "runtime/error.h"
#include "io/npy.h"
#include "io/safetensors.h"
#include "models/trainer.h"
#include "models/generate.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TMP ED_BINARY_DIR "/test_cli_train_tmp"
/* A model small enough that each run takes a moment. */
#define SMALL "--hidden 16 --layers 1 --batch 32 --n 500"
/* Runs that a test stops early and resumes with another --steps: the cosine schedule
 * ends at the planned step, so these use a constant one (tests/test_models.c resumes a
 * cosine run at its own planned length). */
#define CONST "--lr-schedule constant"

typedef struct {
    int status;
    char out[65536];
    char err[65536];
} result;

static char *slurp(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    size_t got = fread(s, 1, (size_t)n, f);
    s[got] = '\0';
    fclose(f);
    if (size) *size = got;
    return s;
}

static void cli(result *r, const char *args)
{
    char cmd[8192];
    /* The feature classifier of eval's image figures is cached in the run's own folder. */
    snprintf(cmd, sizeof cmd, "cd '%s' && OPENBLAS_NUM_THREADS=1 EDIFICE_CACHE='%s/cache' '%s' %s >stdout 2>stderr",
             TMP, TMP, ED_CLI, args);
    int rc = system(cmd);
    r->status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    char *s = slurp(TMP "/stdout", NULL);
    snprintf(r->out, sizeof r->out, "%s", s ? s : "");
    free(s);
    s = slurp(TMP "/stderr", NULL);
    snprintf(r->err, sizeof r->err, "%s", s ? s : "");
    free(s);
}

static void assert_one_error_line(const result *r, const char *want)
{
    if (r->status == 0) fail_msg("expected failure, got exit 0; stderr: %s", r->err);
    if (strncmp(r->err, "edifice: ", 9) != 0 || !strstr(r->err, want))
        fail_msg("stderr should contain '%s', got: %s", want, r->err);
    const char *nl = strchr(r->err, '\n');
    assert_non_null(nl);
    assert_int_equal(nl[1], '\0');
}

static void assert_ok(const result *r)
{
    if (r->status != 0) fail_msg("exit %d; stderr: %s", r->status, r->err);
}

static int setup(void **state)
{
    (void)state;
    return system("rm -rf '" TMP "' && mkdir -p '" TMP "'") == 0 ? 0 : -1;
}

static void test_models_lists_defaults(void **state)
{
    (void)state;
    static result r;
    cli(&r, "models");
    assert_ok(&r);
    assert_non_null(strstr(r.out, "flow_matching: "));
    assert_non_null(strstr(r.out, "ddpm: "));
    assert_non_null(strstr(r.out, "ddim: "));
    assert_non_null(strstr(r.out, "--hidden           256"));
    assert_non_null(strstr(r.out, "--timesteps        100 "));
    assert_non_null(strstr(r.out, "--timesteps        1000"));
    assert_non_null(strstr(r.out, "--solver           euler    euler|midpoint|heun|rk4"));
    cli(&r, "models ddim");
    assert_ok(&r);
    assert_non_null(strstr(r.out, "--ddim_steps       50"));
    assert_null(strstr(r.out, "flow_matching"));
    cli(&r, "models wgan_gp");
    assert_ok(&r);
    assert_non_null(strstr(r.out, "(trains 4000 iterations without --steps)"));
    cli(&r, "models nosuch");
    assert_one_error_line(
        &r,
        "models: unknown model 'nosuch' (models: flow_matching, ddpm, ddim, vae, vqvae, realnvp, gan, wgan_gp, cgan, "
        "dit, score_sde, latent_diffusion, consistency)");
    cli(&r, "models --help");
    assert_ok(&r);
    assert_non_null(strstr(r.out, "usage: edifice models"));
}

static void test_data_writes_npy_and_png(void **state)
{
    (void)state;
    static result r;
    cli(&r, "data moons --n 300 --seed 4 --out moons.npy");
    assert_ok(&r);
    ed_tensor *x = ed_npy_read(TMP "/moons.npy");
    assert_non_null(x);
    assert_true(ed_shape_eq(x->shape, ed_shape2(300, 2)));
    ed_tensor_free(x);
    cli(&r, "data circles --n 300 --out circles.png");
    assert_ok(&r);
    size_t n;
    char *png = slurp(TMP "/circles.png", &n);
    assert_non_null(png);
    assert_memory_equal(png, "\x89PNG", 4);
    free(png);
    cli(&r, "data demo --n 50 --out demo.npy");
    assert_ok(&r);
    assert_non_null(strstr(r.out, "demo.obs.npy"));
    ed_tensor *o = ed_npy_read(TMP "/demo.obs.npy"), *a = ed_npy_read(TMP "/demo.actions.npy");
    assert_non_null(o);
    assert_non_null(a);
    assert_true(ed_shape_eq(o->shape, ed_shape2(50, 6)));
    assert_true(ed_shape_eq(a->shape, ed_shape3(50, 8, 2)));
    ed_tensor_free(o);
    ed_tensor_free(a);
    cli(&r, "data demo --n 50 --out demo.png");
    assert_ok(&r);

    cli(&r, "data spirals --n 5 --out s.npy");
    assert_one_error_line(&r, "data: unknown data set 'spirals'");
    cli(&r, "data moons --out s.npy");
    assert_one_error_line(&r, "data: --n N is required");
    cli(&r, "data moons --n 0 --out s.npy");
    assert_one_error_line(&r, "data: --n wants an integer in [1, ");
    cli(&r, "data moons --n 5 --out s.csv");
    assert_one_error_line(&r, "data: --out must end in .npy or .png");
    cli(&r, "data moons --n 5");
    assert_one_error_line(&r, "data: --out FILE.npy or FILE.png is required");
    cli(&r, "data moons --n 5 --noise -1 --out s.npy");
    assert_one_error_line(&r, "data: --noise wants a finite number >= 0");
    cli(&r, "data moons --n 5 --out no/such/dir/s.npy");
    assert_one_error_line(&r, "no/such/dir/s.npy");
}

/* The two files in TMP hold the same bytes. */
static void expect_same_files(const char *a, const char *b)
{
    char pa[512], pb[512];
    snprintf(pa, sizeof pa, TMP "/%s", a);
    snprintf(pb, sizeof pb, TMP "/%s", b);
    size_t na, nb;
    char *fa = slurp(pa, &na), *fb = slurp(pb, &nb);
    if (!fa || !fb) fail_msg("cannot read %s or %s", pa, pb);
    assert_int_equal(na, nb);
    assert_memory_equal(fa, fb, na);
    free(fa);
    free(fb);
}

/* Lines "step,loss" of a --log file from step `from` on, as one string. */
static char *log_from(const char *file, int from)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", TMP, file);
    char *s = slurp(path, NULL);
    if (!s) fail_msg("no log %s", path);
    assert_true(strncmp(s, "step,loss\n", 10) == 0);
    char *p = s + 10;
    while (*p && atoi(p) < from) p = strchr(p, '\n') + 1;
    char *r = strdup(p);
    free(s);
    return r;
}

static void test_train_and_resume(void **state)
{
    (void)state;
    static result r;
    /* Straight: 8 steps. Then 4, resume to 8: the same losses and the same bytes of
     * every tensor (the metadata differs only in nothing: same step, same loss). */
    cli(&r, "train flow_matching --data demo --steps 8 " SMALL " " CONST
            " --cond_dropout 0.2 --out straight.safetensors --log straight.csv --every 2");
    assert_ok(&r);
    assert_non_null(strstr(r.err, "train flow_matching on demo: 500 rows of [8, 2] given observations"));
    /* Not a terminal: plain periodic lines, no carriage returns. */
    assert_non_null(strstr(r.err, "step 2/8  loss "));
    assert_non_null(strstr(r.err, "step 8/8  loss "));
    assert_non_null(strstr(r.err, " steps/s  ETA "));
    assert_null(strchr(r.err, '\r'));
    assert_non_null(strstr(r.err, "checkpoint saved to straight.safetensors"));

    cli(&r, "train flow_matching --data demo --steps 4 " SMALL " " CONST
            " --cond_dropout 0.2 --out half.safetensors --log half.csv");
    assert_ok(&r);
    /* The planned length is the run's own: resume to 8 says --steps 8. */
    cli(&r, "train flow_matching --resume half.safetensors --steps 8 --out resumed.safetensors --log resumed.csv");
    assert_ok(&r);
    assert_non_null(strstr(r.err, "resume flow_matching on demo"));
    assert_non_null(strstr(r.err, "from step 4"));
    char *a = log_from("straight.csv", 5), *b = log_from("resumed.csv", 5);
    assert_string_equal(a, b);
    assert_true(strlen(a) > 20);
    free(a);
    free(b);
    expect_same_files("straight.safetensors", "resumed.safetensors");

    /* Resuming a finished run does nothing and says so. */
    cli(&r, "train flow_matching --resume straight.safetensors");
    assert_ok(&r);
    assert_non_null(strstr(r.err, "already at step 8 of 8"));
    /* The same run on the interpreter starts with the same loss to float precision. */
    cli(&r, "train flow_matching --data demo --steps 1 " SMALL " " CONST
            " --cond_dropout 0.2 --backend interp --out i.safetensors --log i.csv");
    assert_ok(&r);
    a = log_from("straight.csv", 1);
    b = log_from("i.csv", 1);
    double la = strtod(strchr(a, ',') + 1, NULL), lb = strtod(strchr(b, ',') + 1, NULL);
    assert_float_equal(la, lb, 1e-5 * la);
    free(a);
    free(b);
}

/* Every family through the one path: train 6 steps straight, or 3 and resume to 6, on
 * the digits; the checkpoints are the same bytes, eval prints the family's figures on
 * the test split and the classifier's figures (its classifier `classifier`: trained by
 * the first eval of the run, loaded from the cache by the others), sample writes a grid,
 * and the samples are finite and in [0, 1]. */
static void train_resume_sample(const char *model, const char *opts, const char *figure, const char *classifier)
{
    static result r;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "train %s --data digits --steps 6 --batch 32 %s --out %s_a.safetensors", model, opts,
             model);
    cli(&r, cmd);
    assert_ok(&r);
    snprintf(cmd, sizeof cmd, "train %s --data digits --steps 3 --batch 32 %s --out %s_h.safetensors", model, opts,
             model);
    cli(&r, cmd);
    assert_ok(&r);
    snprintf(cmd, sizeof cmd, "train %s --resume %s_h.safetensors --steps 6 --out %s_b.safetensors", model, model,
             model);
    cli(&r, cmd);
    assert_ok(&r);
    char pa[256], pb[256];
    snprintf(pa, sizeof pa, "%s_a.safetensors", model);
    snprintf(pb, sizeof pb, "%s_b.safetensors", model);
    expect_same_files(pa, pb);
    snprintf(cmd, sizeof cmd, "eval %s --ckpt %s_a.safetensors", model, model);
    cli(&r, cmd);
    assert_ok(&r);
    assert_non_null(strstr(r.out, "on the test split of digits, 297 rows"));
    assert_non_null(strstr(r.out, figure));
    assert_non_null(strstr(r.out, "image figures of 297 samples (sampler "));
    assert_non_null(strstr(r.out, "against the 297 test images of digits; floor: 297 train images"));
    if (!strstr(r.err, classifier)) fail_msg("eval should say '%s'; stderr: %s", classifier, r.err);
    double fd, fd_floor, ppl, ppl_floor;
    long long hit, hit_floor;
    const char *at = strstr(r.out, "frechet_distance");
    assert_non_null(at);
    assert_int_equal(sscanf(at, "frechet_distance %lf %lf classes_hit %lld %lld class_perplexity %lf %lf", &fd,
                            &fd_floor, &hit, &hit_floor, &ppl, &ppl_floor),
                     6);
    /* 6 training steps are far from the data; the floor (train against test) is near.
     * The floor's numbers: measured 4.24, 10 classes, perplexity 9.85. */
    assert_true(fd > fd_floor && fd_floor > 0 && fd_floor < 8);
    assert_true(hit >= 1 && hit <= 10 && hit_floor == 10);
    assert_true(ppl >= 1 && ppl <= hit + 1e-9 && ppl_floor > 9.5);
    if (strcmp(model, "dit") == 0 || strcmp(model, "latent_diffusion") == 0) /* class-conditional */
        assert_non_null(strstr(r.out, "label_accuracy"));
    else assert_null(strstr(r.out, "label_accuracy"));
    snprintf(cmd, sizeof cmd, "sample %s --ckpt %s_a.safetensors --n 16 --out %s.npy", model, model, model);
    cli(&r, cmd);
    assert_ok(&r);
    snprintf(pa, sizeof pa, TMP "/%s.npy", model);
    ed_tensor *s = ed_npy_read(pa);
    if (!s) fail_msg("%s", ed_last_error());
    assert_int_equal(s->shape.rank, 4);
    assert_int_equal(s->shape.dim[0], 16);
    for (int64_t i = 0; i < ed_tensor_numel(s); i++) {
        double v = ed_tensor_get(s, i);
        if (!(v >= 0 && v <= 1)) fail_msg("%s sample %lld is %g", model, (long long)i, v);
    }
    ed_tensor_free(s);
    snprintf(cmd, sizeof cmd, "sample %s --ckpt %s_a.safetensors --out %s.png", model, model, model);
    cli(&r, cmd);
    assert_ok(&r);
}

static void expect_npy(const char *path, int rank, int64_t d0, int64_t d1, int64_t d2);

/* dit (after train_resume_sample made dit_a): the classes of a draw, one per grid row
 * or the one asked for, and the errors around labels and guidance. */
static void test_dit_labels(void)
{
    static result r;
    cli(&r, "sample dit --ckpt dit_a.safetensors --n 20 --out grid.npy");
    assert_ok(&r);
    ed_tensor *l = ed_npy_read(TMP "/grid.labels.npy");
    if (!l) fail_msg("%s", ed_last_error());
    assert_int_equal(l->shape.dim[0], 20);
    for (int i = 0; i < 20; i++) assert_int_equal(((int32_t *)l->data)[i], i / 5); /* a 5-wide grid */
    ed_tensor_free(l);
    cli(&r,
        "sample dit --ckpt dit_a.safetensors --n 12 --label 3 --guidance 2 --sampler heun --steps 2 --out three.npy");
    assert_ok(&r);
    l = ed_npy_read(TMP "/three.labels.npy");
    for (int i = 0; i < 12; i++) assert_int_equal(((int32_t *)l->data)[i], 3);
    ed_tensor_free(l);
    expect_npy(TMP "/three.npy", 4, 12, 1, 8);
    cli(&r, "sample dit --ckpt dit_a.safetensors --label 10 --out x.npy");
    assert_one_error_line(&r, "sample: --label 10 is outside the model's classes 0..9");
    cli(&r, "train dit --data digits --steps 2 --batch 8 --hidden 16 --depth 1 --heads 2 --cond_dropout 0 "
            "--objective diffusion --timesteps 20 --out nodrop.safetensors");
    assert_ok(&r);
    cli(&r, "sample dit --ckpt nodrop.safetensors --label 3 --guidance 2 --out x.npy");
    assert_one_error_line(&r, "guidance 2 needs a model trained with a null condition (cond_dropout > 0)");
    cli(&r, "sample dit --ckpt nodrop.safetensors --label 3 --sampler euler --out x.npy");
    assert_one_error_line(&r, "unknown sampler 'euler' (samplers: ddpm|ddim)");
}

/* Every tensor of the VAE checkpoint vae_a is in latent_diffusion_a under "ae.", bit for
 * bit: the frozen group was never trained, and the checkpoint stands alone. */
static void expect_frozen_vae(void)
{
    ed_meta *mv = NULL, *ml = NULL;
    ed_store *vae = ed_safetensors_load(TMP "/vae_a.safetensors", &mv);
    ed_store *ld = ed_safetensors_load(TMP "/latent_diffusion_a.safetensors", &ml);
    if (!vae || !ld) fail_msg("%s", ed_last_error());
    assert_string_equal(ed_meta_get(ml, "option.vae"), "vae_a.safetensors");
    double scale = strtod(ed_meta_get(ml, "option.scale"), NULL);
    assert_true(scale > 0.05 && scale < 20); /* 1 / std of the latents, computed at the start */
    int copied = 0;
    for (int i = 0; i < ed_store_count(vae); i++) {
        const char *name = ed_store_name(vae, i);
        if (strncmp(name, "opt.", 4) == 0) continue;
        char scoped[256];
        snprintf(scoped, sizeof scoped, "ae.%s", name);
        const ed_tensor *a = ed_store_tensor(vae, i), *b = ed_store_get(ld, scoped);
        if (!b) fail_msg("latent_diffusion_a lacks %s", scoped);
        assert_true(ed_shape_eq(a->shape, b->shape));
        assert_memory_equal(a->data, b->data, ed_tensor_bytes(a));
        copied++;
    }
    assert_true(copied >= 6);                    /* encoder, mu, log_var, decoder: weights and biases */
    for (int i = 0; i < ed_store_count(ld); i++) /* no optimizer state for the frozen group */
        assert_null(strstr(ed_store_name(ld, i), ".ae."));
    ed_store_free(vae);
    ed_store_free(ld);
    ed_meta_free(mv);
    ed_meta_free(ml);
}

/* latent_diffusion with the options opts (a denoiser, an objective) over the VAE
 * checkpoint vae: 6 steps straight or 3 resumed to 6 write the same bytes, eval prints
 * the latent figure and the label accuracy, and a guided draw of one class with
 * `sample_opts` is in range. */
static void latent_variant_over(const char *vae, const char *name, const char *opts, const char *sample_opts)
{
    static result r;
    char cmd[768], a[96], b[96], common[160];
    snprintf(common, sizeof common, "train latent_diffusion --data digits --batch 32 --vae %s", vae);
    snprintf(cmd, sizeof cmd, "%s --steps 6 %s " CONST " --out %s_a.safetensors", common, opts, name);
    cli(&r, cmd);
    assert_ok(&r);
    snprintf(cmd, sizeof cmd, "%s --steps 3 %s " CONST " --out %s_h.safetensors", common, opts, name);
    cli(&r, cmd);
    assert_ok(&r);
    snprintf(cmd, sizeof cmd, "train latent_diffusion --resume %s_h.safetensors --steps 6 --out %s_b.safetensors", name,
             name);
    cli(&r, cmd);
    assert_ok(&r);
    snprintf(a, sizeof a, "%s_a.safetensors", name);
    snprintf(b, sizeof b, "%s_b.safetensors", name);
    expect_same_files(a, b);
    snprintf(cmd, sizeof cmd, "eval latent_diffusion --ckpt %s_a.safetensors --n 64", name);
    cli(&r, cmd);
    assert_ok(&r);
    assert_non_null(strstr(r.out, "latent_mse"));
    assert_non_null(strstr(r.out, "label_accuracy"));
    snprintf(cmd, sizeof cmd,
             "sample latent_diffusion --ckpt %s_a.safetensors --n 5 --label 2 --guidance 2 %s --out %s.npy", name,
             sample_opts, name);
    cli(&r, cmd);
    assert_ok(&r);
    snprintf(a, sizeof a, TMP "/%s.npy", name);
    expect_npy(a, 4, 5, 1, 8);
    ed_tensor *s = ed_npy_read(a);
    if (!s) fail_msg("%s", ed_last_error());
    for (int64_t i = 0; i < ed_tensor_numel(s); i++) {
        double v = ed_tensor_get(s, i);
        if (!(v >= 0 && v <= 1)) fail_msg("%s sample %lld is %g", name, (long long)i, v);
    }
    ed_tensor_free(s);
}

static void latent_variant(const char *name, const char *opts, const char *sample_opts)
{
    latent_variant_over("vae_a.safetensors", name, opts, sample_opts);
}

/* The DiT denoiser on latent runs and the diffusion objective (over vae_a, latent 4), and
 * what does not fit them. */
static void test_latent_variants(void)
{
    static result r;
    latent_variant("ld_dit", "--denoiser dit --hidden 16 --layers 1 --heads 2 --latent_patch 2 --sample_steps 4", "");
    latent_variant("ld_eps", "--objective diffusion --hidden 16 --layers 1 --ddim_steps 4", "--sampler ddim");
    latent_variant("ld_dit_eps",
                   "--denoiser dit --objective diffusion --hidden 16 --layers 1 --heads 2 --latent_patch 4",
                   "--steps 3");
    ed_meta *meta = NULL; /* the DiT's params, 2 tokens of 2 values; none of the MLP's */
    ed_store *st = ed_safetensors_load(TMP "/ld_dit_a.safetensors", &meta);
    if (!st) fail_msg("%s", ed_last_error());
    const ed_tensor *patch = ed_store_get(st, "dit.patch.w");
    assert_non_null(patch);
    assert_true(ed_shape_eq(patch->shape, ed_shape2(2, 16)));
    assert_null(ed_store_get(st, "fm.in.w"));
    ed_store_free(st);
    ed_meta_free(meta);
    cli(&r, "sample latent_diffusion --ckpt ld_eps_a.safetensors --n 2 --sampler euler --out x.npy");
    assert_one_error_line(&r, "unknown sampler 'euler' (samplers: ddpm|ddim)");
    cli(&r, "train latent_diffusion --data digits --steps 2 --vae vae_a.safetensors --denoiser dit --latent_patch 3");
    assert_one_error_line(&r, "--vae vae_a.safetensors: --latent_patch 3 must divide the VAE's latent 4");
    cli(&r, "train latent_diffusion --data digits --steps 2 --vae vae_a.safetensors --denoiser dit --hidden 18");
    assert_one_error_line(&r, "latent_diffusion: heads 4 must divide hidden 18");
    /* an option of another denoiser or objective is an error, not a silent no-op */
    cli(&r, "train latent_diffusion --data digits --steps 2 --vae vae_a.safetensors --latent_patch 2");
    assert_one_error_line(&r, "latent_diffusion: --latent_patch applies to --denoiser dit only");
    cli(&r, "train latent_diffusion --data digits --steps 2 --vae vae_a.safetensors --denoiser dit --time_scale 10");
    assert_one_error_line(&r, "--time_scale applies to --denoiser mlp with --objective flow_matching only");
    cli(&r, "train latent_diffusion --data digits --steps 2 --vae vae_a.safetensors --ddim_steps 10");
    assert_one_error_line(&r, "--ddim_steps applies to --objective diffusion only");
    cli(&r, "train latent_diffusion --data digits --steps 2 --vae vae_a.safetensors --objective diffusion "
            "--sample_steps 10");
    assert_one_error_line(&r, "--sample_steps applies to --objective flow_matching only");
}

/* latent_diffusion (after train_resume_sample made latent_diffusion_a from vae_a): the
 * frozen VAE, a class grid with guidance, and the errors of a bad --vae. */
static void test_latent_diffusion(void)
{
    static result r;
    expect_frozen_vae();
    cli(&r, "sample latent_diffusion --ckpt latent_diffusion_a.safetensors --n 6 --label 7 --guidance 2 --sampler "
            "heun --steps 2 --out seven.npy");
    assert_ok(&r);
    expect_npy(TMP "/seven.npy", 4, 6, 1, 8);
    /* the checkpoint stands alone: the VAE's file is not read again */
    assert_int_equal(system("mv '" TMP "/vae_a.safetensors' '" TMP "/vae_moved.safetensors'"), 0);
    cli(&r, "eval latent_diffusion --ckpt latent_diffusion_a.safetensors --steps 2");
    assert_ok(&r);
    cli(&r, "train latent_diffusion --resume latent_diffusion_a.safetensors --steps 7 --out ld_more.safetensors");
    assert_ok(&r);
    assert_int_equal(system("mv '" TMP "/vae_moved.safetensors' '" TMP "/vae_a.safetensors'"), 0);

    cli(&r, "train latent_diffusion --data digits --steps 2");
    assert_one_error_line(&r, "model latent_diffusion needs --vae CKPT: a trained vae checkpoint");
    cli(&r, "train latent_diffusion --data digits --steps 2 --vae none.safetensors");
    assert_one_error_line(&r, "--vae: none.safetensors");
    cli(&r, "train latent_diffusion --data digits --steps 2 --vae dit_a.safetensors");
    assert_one_error_line(&r, "--vae: dit_a.safetensors is a checkpoint of model dit, not vae");
    cli(&r, "train vae --data moons --likelihood gaussian --steps 2 --batch 4 --encoder 8 --decoder 8 --latent 2 "
            "--out vae2d.safetensors");
    assert_ok(&r);
    cli(&r, "train latent_diffusion --data digits --steps 2 --vae vae2d.safetensors");
    assert_one_error_line(&r, "--vae vae2d.safetensors: it was trained on samples f32[2], these data have "
                              "f32[1,8,8]");
    /* the VAE's options come from its checkpoint: one given too must agree with it */
    cli(&r, "train latent_diffusion --data digits --steps 2 --vae vae_a.safetensors --vae_latent 5");
    assert_one_error_line(&r, "--vae vae_a.safetensors: --vae_latent 5 was given but the VAE has latent 4 (leave "
                              "--vae_latent out: it is read from the VAE)");
    cli(&r, "train latent_diffusion --data digits --steps 2 --vae vae_a.safetensors --vae_encoder 32 --vae_decoder 32 "
            "--vae_likelihood gaussian");
    assert_one_error_line(&r, "--vae_likelihood gaussian was given but the VAE has likelihood bernoulli");
    cli(&r, "train latent_diffusion --data digits --steps 1 --batch 8 --hidden 8 --layers 0 --vae vae_a.safetensors "
            "--vae_latent 4 --vae_encoder 32 --vae_activation relu --out ld_same.safetensors");
    assert_ok(&r); /* equal values are fine */
    test_latent_variants();
}

/* score_sde from the CLI on moons, VP and VE: a run of 6 steps and a run of 3 resumed
 * to 6 write the same bytes; eval prints the PF-ODE NLL and the sliced Wasserstein line;
 * every sampler draws finite samples of the data's shape. */
static void test_score_sde(void **state)
{
    (void)state;
    static result r;
    const char *sdes[2] = {"vp", "ve"};
    char cmd[512];
    for (int k = 0; k < 2; k++) {
        const char *sde = sdes[k];
        snprintf(cmd, sizeof cmd,
                 "train score_sde --data moons --sde %s --steps 6 " SMALL " " CONST " --force --out sde_a.safetensors",
                 sde);
        cli(&r, cmd);
        assert_ok(&r);
        snprintf(cmd, sizeof cmd,
                 "train score_sde --data moons --sde %s --steps 3 " SMALL " " CONST " --force --out sde_h.safetensors",
                 sde);
        cli(&r, cmd);
        assert_ok(&r);
        cli(&r, "train score_sde --resume sde_h.safetensors --steps 6 --force --out sde_b.safetensors");
        assert_ok(&r);
        expect_same_files("sde_a.safetensors", "sde_b.safetensors");
        cli(&r, "eval score_sde --ckpt sde_a.safetensors --n 200 --steps 30");
        assert_ok(&r);
        assert_non_null(strstr(r.out, "of moons, 500 rows"));
        assert_non_null(strstr(r.out, "nll"));
        assert_non_null(strstr(r.out, "bits_per_dim"));
        assert_non_null(strstr(r.out, "sampler pc: 200 samples"));
        assert_non_null(strstr(r.out, "sliced Wasserstein-1"));
        const char *samplers[3] = {"pc", "em", "ode"};
        for (int j = 0; j < 3; j++) {
            snprintf(cmd, sizeof cmd,
                     "sample score_sde --ckpt sde_a.safetensors --n 64 --sampler %s --steps 30 --out sde.npy",
                     samplers[j]);
            cli(&r, cmd);
            assert_ok(&r);
            ed_tensor *s = ed_npy_read(TMP "/sde.npy");
            if (!s) fail_msg("%s", ed_last_error());
            assert_true(ed_shape_eq(s->shape, ed_shape2(64, 2)));
            for (int64_t i = 0; i < ed_tensor_numel(s); i++)
                if (!isfinite(ed_tensor_get(s, i)))
                    fail_msg("%s %s: sample %lld is not finite", sde, samplers[j], (long long)i);
            ed_tensor_free(s);
        }
    }
    cli(&r, "sample score_sde --ckpt sde_a.safetensors --sampler ddim --out sde.npy");
    assert_one_error_line(&r, "unknown sampler 'ddim' (samplers: pc|em|ode)");
    /* VP's corrector needs 1 - beta dt > 0: ten steps of t are too coarse for beta = 20. */
    cli(&r, "train score_sde --data moons --steps 2 " SMALL " " CONST " --out sde_vp.safetensors");
    assert_ok(&r);
    cli(&r, "sample score_sde --ckpt sde_vp.safetensors --steps 10 --out sde.npy");
    assert_one_error_line(&r, "too coarse for the VP corrector");
}

/* consistency from the CLI on moons: a run of 6 steps and a run of 3 resumed to 6 write
 * the same bytes (the EMA target state and the schedule's step included); eval prints
 * the sliced Wasserstein line; one-step and multistep samples are finite and shaped. */
static void test_consistency(void **state)
{
    (void)state;
    static result r;
    cli(&r, "train consistency --data moons --steps 6 --schedule_steps 6 " SMALL " " CONST " --out cm_a.safetensors");
    assert_ok(&r);
    cli(&r, "train consistency --data moons --steps 3 --schedule_steps 6 " SMALL " " CONST " --out cm_h.safetensors");
    assert_ok(&r);
    cli(&r, "train consistency --resume cm_h.safetensors --steps 6 --out cm_b.safetensors");
    assert_ok(&r);
    expect_same_files("cm_a.safetensors", "cm_b.safetensors");
    cli(&r, "eval consistency --ckpt cm_a.safetensors --n 200");
    assert_ok(&r);
    assert_non_null(strstr(r.out, "sampler consistency: 200 samples"));
    assert_non_null(strstr(r.out, "sliced Wasserstein-1"));
    for (int steps = 1; steps <= 3; steps += 2) {
        char cmd[256];
        snprintf(cmd, sizeof cmd, "sample consistency --ckpt cm_a.safetensors --n 64 --steps %d --out cm.npy", steps);
        cli(&r, cmd);
        assert_ok(&r);
        ed_tensor *s = ed_npy_read(TMP "/cm.npy");
        if (!s) fail_msg("%s", ed_last_error());
        assert_true(ed_shape_eq(s->shape, ed_shape2(64, 2)));
        for (int64_t i = 0; i < ed_tensor_numel(s); i++)
            if (!isfinite(ed_tensor_get(s, i))) fail_msg("%d steps: sample %lld is not finite", steps, (long long)i);
        ed_tensor_free(s);
    }
    cli(&r, "sample consistency --ckpt cm_a.safetensors --sampler euler --out cm.npy");
    assert_one_error_line(&r, "unknown sampler 'euler' (samplers: consistency)");
    /* schedule_steps left at 0: the run's --steps, kept in the checkpoint */
    cli(&r, "train consistency --data moons --steps 4 " SMALL " --out cm_d.safetensors");
    assert_ok(&r);
    ed_meta *m = NULL;
    ed_store *st = ed_safetensors_load(TMP "/cm_d.safetensors", &m);
    if (!st) fail_msg("%s", ed_last_error());
    assert_string_equal(ed_meta_get(m, "option.schedule_steps"), "4");
    ed_store_free(st);
    ed_meta_free(m);
}

/* consistency distillation from the CLI: a small flow-matching teacher on moons, then
 * consistency --teacher: 6 steps and 3 resumed to 6 write the same bytes; the teacher's
 * tensors are in the checkpoint bit for bit, which samples and evaluates without the
 * teacher's file; a missing file, a checkpoint of another model, a teacher of other
 * samples and one whose process stops above sigma_min are refused. */
static void test_consistency_distill(void **state)
{
    (void)state;
    static result r;
    cli(&r, "train flow_matching --data moons --steps 30 " SMALL " " CONST " --out fm_t.safetensors");
    assert_ok(&r);
#define CD "train consistency --data moons --teacher fm_t.safetensors --schedule_steps 6 " SMALL " " CONST
    cli(&r, CD " --steps 6 --out cd_a.safetensors");
    assert_ok(&r);
    cli(&r, CD " --steps 3 --out cd_h.safetensors");
    assert_ok(&r);
#undef CD
    cli(&r, "train consistency --resume cd_h.safetensors --steps 6 --out cd_b.safetensors");
    assert_ok(&r);
    expect_same_files("cd_a.safetensors", "cd_b.safetensors");
    ed_meta *mt = NULL, *mc = NULL;
    ed_store *fm = ed_safetensors_load(TMP "/fm_t.safetensors", &mt);
    ed_store *cd = ed_safetensors_load(TMP "/cd_a.safetensors", &mc);
    if (!fm || !cd) fail_msg("%s", ed_last_error());
    assert_string_equal(ed_meta_get(mc, "option.teacher"), "fm_t.safetensors");
    assert_string_equal(ed_meta_get(mc, "option.teacher_hidden"), "16");
    int copied = 0;
    for (int i = 0; i < ed_store_count(fm); i++) {
        const char *name = ed_store_name(fm, i);
        if (strncmp(name, "opt.", 4) == 0) continue;
        char scoped[256];
        snprintf(scoped, sizeof scoped, "teacher.%s", name);
        const ed_tensor *a = ed_store_tensor(fm, i), *b = ed_store_get(cd, scoped);
        if (!b) fail_msg("cd_a lacks %s", scoped);
        assert_memory_equal(a->data, b->data, ed_tensor_bytes(a));
        copied++;
    }
    assert_true(copied >= 8);
    ed_store_free(fm);
    ed_store_free(cd);
    ed_meta_free(mt);
    ed_meta_free(mc);
    assert_int_equal(system("mv '" TMP "/fm_t.safetensors' '" TMP "/fm_moved.safetensors'"), 0);
    cli(&r, "eval consistency --ckpt cd_a.safetensors --n 200 --steps 2");
    assert_ok(&r);
    assert_non_null(strstr(r.out, "sliced Wasserstein-1"));
    cli(&r, "sample consistency --ckpt cd_a.safetensors --n 64 --out cd.npy");
    assert_ok(&r);
    ed_tensor *s = ed_npy_read(TMP "/cd.npy");
    if (!s) fail_msg("%s", ed_last_error());
    assert_true(ed_shape_eq(s->shape, ed_shape2(64, 2)));
    for (int64_t i = 0; i < ed_tensor_numel(s); i++)
        if (!isfinite(ed_tensor_get(s, i))) fail_msg("sample %lld is not finite", (long long)i);
    ed_tensor_free(s);
    assert_int_equal(system("mv '" TMP "/fm_moved.safetensors' '" TMP "/fm_t.safetensors'"), 0);

    cli(&r, "train consistency --data moons --steps 2 --teacher fm_t.safetensors --s1 30");
    assert_one_error_line(&r, "model consistency: s0, s1, mu0, noise and weighting shape CT's training; with "
                              "--teacher the grid is fixed (cd_grid 18 points, cd_mu 0.95, uniform levels and "
                              "weights): give --cd_grid 0 to distil with them");
    cli(&r, "train consistency --data moons --steps 2 --teacher none.safetensors");
    assert_one_error_line(&r, "--teacher: none.safetensors");
    cli(&r, "train consistency --data moons --steps 2 --teacher cd_a.safetensors");
    assert_one_error_line(&r, "--teacher: cd_a.safetensors is a checkpoint of model consistency, not flow_matching");
    cli(&r, "train flow_matching --data digits --steps 2 " SMALL " --out fm_img.safetensors");
    assert_ok(&r);
    cli(&r, "train consistency --data moons --steps 2 --teacher fm_img.safetensors");
    assert_one_error_line(&r, "--teacher fm_img.safetensors: it was trained on samples f32[1,8,8], these "
                              "data have f32[2]");
    cli(&r, "train flow_matching --data moons --steps 2 --sigma_min 0.01 " SMALL " --out fm_sm.safetensors");
    assert_ok(&r);
    cli(&r, "train consistency --data moons --steps 2 --teacher fm_sm.safetensors");
    assert_one_error_line(&r, "the teacher's sigma_min 0.01 leaves more noise than this model's lowest level 0.002");
}

static void test_image_families(void **state)
{
    (void)state;
    train_resume_sample("vae", "--encoder 32 --decoder 32 --latent 4 " CONST, "iwae_nll",
                        "eval: feature classifier trained in");
    train_resume_sample("realnvp", "--couplings 2 --hidden 32 " CONST, "bits_per_dim",
                        "eval: feature classifier loaded from " TMP "/cache/classifier-digits-");
    train_resume_sample("vqvae",
                        "--encoder_sizes 32 --decoder_sizes 32 --num_embeddings 8 --embedding_dim 4 "
                        "--prior_width 16 --prior_layers 1 --prior_heads 2 --log vq.csv " CONST,
                        "perplexity", "eval: feature classifier loaded from");
    train_resume_sample("dit", "--hidden 16 --depth 1 --heads 2 --sample_steps 4 " CONST, "denoise_mse",
                        "eval: feature classifier loaded from");
    test_dit_labels();
    train_resume_sample("latent_diffusion", "--vae vae_a.safetensors --hidden 16 --layers 1 --sample_steps 4 " CONST,
                        "latent_mse", "eval: feature classifier loaded from");
    test_latent_diffusion();
    /* Autoencoders reconstruct given images: the first --n rows, in range; others refuse. */
    static result r;
    for (int k = 0; k < 2; k++) {
        const char *model = k ? "vqvae" : "vae";
        char cmd[256];
        snprintf(cmd, sizeof cmd, "sample %s --ckpt %s_a.safetensors --reconstruct digits --n 5 --out rec.npy", model,
                 model);
        cli(&r, cmd);
        assert_ok(&r);
        ed_tensor *t = ed_npy_read(TMP "/rec.npy");
        if (!t) fail_msg("%s", ed_last_error());
        assert_int_equal(t->shape.rank, 4);
        assert_int_equal(t->shape.dim[0], 5);
        assert_int_equal(t->shape.dim[3], 8);
        for (int64_t i = 0; i < ed_tensor_numel(t); i++)
            assert_true(ed_tensor_get(t, i) >= 0 && ed_tensor_get(t, i) <= 1);
        ed_tensor_free(t);
        snprintf(cmd, sizeof cmd, "sample %s --ckpt %s_a.safetensors --reconstruct digits --out rec.png", model, model);
        cli(&r, cmd);
        assert_ok(&r);
        assert_non_null(strstr(r.out, "50 images above their reconstructions"));
    }
    cli(&r, "sample realnvp --ckpt realnvp_a.safetensors --reconstruct digits --out rec.npy");
    assert_one_error_line(&r, "sample: realnvp cannot reconstruct data (vae and vqvae can)");
    cli(&r, "sample vae --ckpt vae_a.safetensors --reconstruct moons --out rec.npy");
    assert_one_error_line(&r, "the data must be f32 [N >= 1, ...] like the model's samples");

    /* Images without labels, or without a test split, have no classifier figures: said, not an error. */
    ed_tensor *im = ed_tensor_new(ED_F32, ed_shape3(20, 8, 8)), *lab = ed_tensor_new(ED_I32, ed_shape1(20));
    for (int64_t i = 0; i < ed_tensor_numel(im); i++) ed_tensor_set(im, i, (double)(i % 7) / 6);
    for (int64_t i = 0; i < 20; i++) ed_tensor_set(lab, i, (double)(i % 3));
    assert_int_equal(ed_npy_write(TMP "/im.npy", im), ED_OK);
    assert_int_equal(ed_npy_write(TMP "/lab.npy", lab), ED_OK);
    ed_tensor_free(im);
    ed_tensor_free(lab);
    cli(&r, "train vae --data im.npy --steps 2 --batch 4 --encoder 8 --decoder 8 --latent 2 --out im.safetensors");
    assert_ok(&r);
    cli(&r, "eval vae --ckpt im.safetensors");
    assert_ok(&r);
    assert_non_null(strstr(r.out, "(no classifier figures: data im.npy are not labelled images)"));
    cli(&r, "eval vae --ckpt im.safetensors --data im.npy,labels=lab.npy");
    assert_ok(&r);
    assert_non_null(strstr(r.out, "(no classifier figures: data im.npy,labels=lab.npy has no test split"));

    /* Two training steps: each loss in the progress line and a column of its own in the log. */
    cli(&r, "train vqvae --data digits --steps 2 --batch 8 --encoder_sizes 8 --decoder_sizes 8 --num_embeddings 4 "
            "--embedding_dim 2 --prior_width 8 --prior_layers 0 --prior_heads 1 --out vq2.safetensors --log vq2.csv");
    assert_ok(&r);
    assert_non_null(strstr(r.err, "step 2/2  train "));
    assert_non_null(strstr(r.err, "  prior "));
    char *log = slurp(TMP "/vq2.csv", NULL);
    assert_non_null(log);
    assert_true(strncmp(log, "step,train,prior\n1,", 19) == 0);
    free(log);
}

/* The GAN family: two steps (disc repeated n_critic times, then gen), both optimizers'
 * state and the batch-norm running statistics in the checkpoint: 6 iterations straight
 * and 3 + resume to 6 are the same bytes; eval prints the mode coverage on 8gaussians;
 * cgan trains on the digits and samples a grid in [0, 1]. */
#define GAN_SMALL "--latent 8 --generator_sizes 16,16 --discriminator_sizes 16,16 --batch 32 --n 500 " CONST

static void gan_resume(const char *model)
{
    static result r;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "train %s --data 8gaussians --steps 6 " GAN_SMALL " --out %s_a.safetensors --log %s.csv",
             model, model, model);
    cli(&r, cmd);
    assert_ok(&r);
    assert_non_null(strstr(r.err, "  disc "));
    assert_non_null(strstr(r.err, "  gen "));
    snprintf(cmd, sizeof cmd, "train %s --data 8gaussians --steps 3 " GAN_SMALL " --out %s_h.safetensors", model,
             model);
    cli(&r, cmd);
    assert_ok(&r);
    snprintf(cmd, sizeof cmd, "train %s --resume %s_h.safetensors --steps 6 --out %s_b.safetensors", model, model,
             model);
    cli(&r, cmd);
    assert_ok(&r);
    char pa[256], pb[256];
    snprintf(pa, sizeof pa, TMP "/%s_a.safetensors", model);
    snprintf(pb, sizeof pb, TMP "/%s_b.safetensors", model);
    size_t na, nb;
    char *fa = slurp(pa, &na), *fb = slurp(pb, &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(fa, fb, na);
    assert_non_null(memmem(fa, na, "opt.gen.step", 12));
    assert_non_null(memmem(fa, na, "gen.bn0.running_var", 19));
    free(fa);
    free(fb);
    snprintf(cmd, sizeof cmd, "eval %s --ckpt %s_a.safetensors --n 500", model, model);
    cli(&r, cmd);
    assert_ok(&r);
    assert_non_null(strstr(r.out, "modes hit (>= 1% each)"));
    assert_non_null(strstr(r.out, "8/8")); /* the data's own column */
    assert_non_null(strstr(r.out, "within 3 std of a mode"));
}

static void test_gan_families(void **state)
{
    (void)state;
    gan_resume("gan");
    gan_resume("wgan_gp");
    static result r;
    cli(&r, "train cgan --data digits --steps 2 --latent 8 --generator_sizes 16 --discriminator_sizes 16 --batch 16 "
            "--out cgan.safetensors");
    assert_ok(&r);
    cli(&r, "sample cgan --ckpt cgan.safetensors --n 20 --out cgan.npy");
    assert_ok(&r);
    ed_tensor *s = ed_npy_read(TMP "/cgan.npy");
    if (!s) fail_msg("%s", ed_last_error());
    assert_int_equal(s->shape.dim[0], 20);
    for (int64_t i = 0; i < ed_tensor_numel(s); i++) {
        double v = ed_tensor_get(s, i);
        if (!(v >= 0 && v <= 1)) fail_msg("cgan sample %lld is %g", (long long)i, v);
    }
    ed_tensor_free(s);
    cli(&r, "sample cgan --ckpt cgan.safetensors --out cgan.png");
    assert_ok(&r);
}

/* --arch conv from the command line on the digits (8x8, channels 4,8: 8 -> 4 -> 2): the
 * conv VAE and DCGAN train, resume to the same bytes, eval with their figures and the
 * image ones, and sample in [0, 1]; wgan_gp and cgan take the same networks; data that
 * are not images, or whose sides do not halve enough, are refused in one line. */
static void conv_round_trip(const char *model, const char *opts, const char *figure)
{
    static result r;
    char cmd[512];
    for (int k = 0; k < 2; k++) {
        snprintf(cmd, sizeof cmd,
                 "train %s --arch conv --channels 4,8 --data digits --steps %d --batch 16 %s " CONST
                 " --out conv_%s_%c.safetensors",
                 model, k ? 2 : 4, opts, model, k ? 'h' : 'a');
        cli(&r, cmd);
        assert_ok(&r);
    }
    snprintf(cmd, sizeof cmd, "train %s --resume conv_%s_h.safetensors --steps 4 --out conv_%s_b.safetensors", model,
             model, model);
    cli(&r, cmd);
    assert_ok(&r);
    char pa[256], pb[256];
    snprintf(pa, sizeof pa, "conv_%s_a.safetensors", model);
    snprintf(pb, sizeof pb, "conv_%s_b.safetensors", model);
    expect_same_files(pa, pb);
    snprintf(cmd, sizeof cmd, "eval %s --ckpt conv_%s_a.safetensors --n 64", model, model);
    cli(&r, cmd);
    assert_ok(&r);
    if (figure) assert_non_null(strstr(r.out, figure));
    assert_non_null(strstr(r.out, "image figures of 64 samples"));
    assert_non_null(strstr(r.out, "frechet_distance"));
    snprintf(cmd, sizeof cmd, "sample %s --ckpt conv_%s_a.safetensors --n 12 --out conv_%s.npy", model, model, model);
    cli(&r, cmd);
    assert_ok(&r);
    snprintf(pa, sizeof pa, TMP "/conv_%s.npy", model);
    ed_tensor *t = ed_npy_read(pa);
    if (!t) fail_msg("%s", ed_last_error());
    assert_true(ed_shape_eq(t->shape, ed_shape4(12, 1, 8, 8)));
    for (int64_t i = 0; i < ed_tensor_numel(t); i++)
        if (!(ed_tensor_get(t, i) >= 0 && ed_tensor_get(t, i) <= 1))
            fail_msg("%s sample %lld out of [0, 1]", model, (long long)i);
    ed_tensor_free(t);
}

static void test_conv_arch(void **state)
{
    (void)state;
    conv_round_trip("vae", "--latent 4", "iwae_nll");
    conv_round_trip("gan", "--latent 8", NULL);
    static result r;
    cli(&r, "sample vae --ckpt conv_vae_a.safetensors --reconstruct digits --n 3 --out conv_rec.npy");
    assert_ok(&r);
    cli(&r, "train wgan_gp --arch conv --channels 4 --data digits --steps 1 --n_critic 2 --out conv_w.safetensors");
    assert_ok(&r);
    assert_non_null(strstr(r.err, "batch 64, lr 0.0002 (cosine)")); /* DCGAN's own defaults */
    cli(&r, "train cgan --arch conv --channels 4,8 --data digits --steps 1 --batch 8 --out conv_c.safetensors");
    assert_ok(&r);
    cli(&r, "sample cgan --ckpt conv_c.safetensors --n 10 --out conv_c.png");
    assert_ok(&r);
    cli(&r, "train vae --arch conv --data moons --steps 1 --out conv_bad.safetensors");
    assert_one_error_line(&r, "model vae --arch conv needs images");
    cli(&r, "train gan --arch conv --channels 4,4,4,4 --data digits --steps 1 --out conv_bad.safetensors");
    assert_one_error_line(&r, "4 stride-2 layers (--channels) need H and W divisible by 16; the images are 8x8");
    cli(&r, "train vae --arch conv --encoder 64 --data digits --steps 1 --out conv_bad.safetensors");
    assert_one_error_line(&r, "--encoder is the mlp's widths (set --channels instead)");
    /* Latent diffusion over the conv VAE (latent 4): its architecture rides in the
     * checkpoint's vae_arch and vae_channels, so sampling rebuilds the conv decoder. */
    latent_variant_over("conv_vae_a.safetensors", "ld_conv", "--hidden 16 --layers 1 --sample_steps 4", "");
    ed_meta *meta = NULL;
    ed_store *st = ed_safetensors_load(TMP "/ld_conv_a.safetensors", &meta);
    if (!st) fail_msg("%s", ed_last_error());
    assert_string_equal(ed_meta_get(meta, "option.vae_arch"), "conv");
    assert_non_null(ed_store_get(st, "ae.vae.enc.conv0.w"));
    ed_store_free(st);
    ed_meta_free(meta);
    cli(&r, "train latent_diffusion --vae conv_vae_a.safetensors --vae_arch mlp --data digits --steps 1 --out "
            "conv_bad.safetensors");
    assert_one_error_line(&r, "--vae_arch mlp was given but the VAE has arch conv");
}

static void test_train_errors(void **state)
{
    (void)state;
    static result r;
    cli(&r, "train");
    assert_one_error_line(&r, "train: give the model first");
    cli(&r, "train vae --data moons --steps 5");
    assert_one_error_line(&r, "the Bernoulli likelihood needs data in [0, 1]");
    cli(&r, "train nosuch --data moons");
    assert_one_error_line(
        &r,
        "train: unknown model 'nosuch' (models: flow_matching, ddpm, ddim, vae, vqvae, realnvp, gan, wgan_gp, cgan, "
        "dit, score_sde, latent_diffusion, consistency)");
    cli(&r, "train vqvae --data moons --steps 5");
    assert_one_error_line(&r, "model vqvae: its decoder is Bernoulli and needs data in [0, 1]");
    cli(&r, "train ddpm");
    assert_one_error_line(&r, "train: --data is required");
    cli(&r, "train ddpm --data spirals");
    assert_one_error_line(&r, "train: unknown data 'spirals'");
    cli(&r, "train ddpm --data missing.npy");
    assert_one_error_line(&r, "missing.npy");
    cli(&r, "train ddpm --data moons --hiden 3");
    assert_one_error_line(&r, "train: '--hiden' is neither a train flag nor an option of ddpm");
    cli(&r, "train ddpm --data moons --weights bf16");
    assert_one_error_line(&r, "training with them is not implemented");
    cli(&r, "train ddpm --data moons --timesteps 0");
    assert_one_error_line(&r, "train: ddpm: option timesteps: 0 is outside [1, 100000]");
    cli(&r, "train ddpm --data moons --beta_schedule quadratic");
    assert_one_error_line(&r, "'quadratic' is not one of linear|cosine");
    cli(&r, "train ddpm --data moons --hidden 15 --steps 1");
    assert_one_error_line(&r, "hidden must be even");
    cli(&r, "train ddpm --data moons --lr -1");
    assert_one_error_line(&r, "train: --lr wants a finite number > 0, got '-1'");
    cli(&r, "train ddpm --data moons --steps 0");
    assert_one_error_line(&r, "train: --steps wants a whole number >= 1, got '0'");
    cli(&r, "train ddpm --data moons --backend gpu");
    assert_one_error_line(&r, "train: --backend wants jit or interp, got 'gpu'");
    cli(&r, "train ddpm --data moons --steps");
    assert_one_error_line(&r, "train: --steps wants a whole number >= 1, got ''");
    cli(&r, "train ddpm --data moons --steps 1 " SMALL " --out no/such/dir/x.safetensors");
    assert_one_error_line(&r, "no/such/dir/x.safetensors");

    /* Checkpoints: a good one, then the wrong model, a truncated and a bit-flipped copy. */
    cli(&r, "train flow_matching --data moons --steps 2 " SMALL " --out good.safetensors");
    assert_ok(&r);
    cli(&r, "train ddpm --resume good.safetensors --steps 4");
    assert_one_error_line(&r, "train: good.safetensors is a checkpoint of model flow_matching, not ddpm");
    cli(&r, "train flow_matching --resume good.safetensors --steps 4 --hidden 32");
    assert_one_error_line(&r, "good.safetensors was trained with hidden = 16; a resumed run keeps its model options");
    cli(&r, "train flow_matching --resume good.safetensors --steps 4 --data circles");
    assert_one_error_line(&r, "good.safetensors was trained with --data moons");
    cli(&r, "train flow_matching --resume good.safetensors --steps 4 --seed 9");
    assert_one_error_line(&r, "was trained with --seed 0");
    cli(&r, "train flow_matching --resume missing.safetensors");
    assert_one_error_line(&r, "missing.safetensors");

    size_t n;
    char *bytes = slurp(TMP "/good.safetensors", &n);
    FILE *f = fopen(TMP "/short.safetensors", "wb");
    fwrite(bytes, 1, n / 2, f);
    fclose(f);
    cli(&r, "train flow_matching --resume short.safetensors --steps 4");
    assert_one_error_line(&r, "short.safetensors");
    bytes[n - 5] ^= 0x04;
    f = fopen(TMP "/flipped.safetensors", "wb");
    fwrite(bytes, 1, n, f);
    fclose(f);
    free(bytes);
    cli(&r, "train flow_matching --resume flipped.safetensors --steps 4");
    assert_one_error_line(&r, "flipped.safetensors");
    assert_non_null(strstr(r.err, "checksum mismatch"));

    /* The data file changed under the checkpoint. */
    cli(&r, "data moons --n 100 --out d.npy");
    assert_ok(&r);
    cli(&r, "train ddpm --data d.npy --steps 2 " SMALL " --out d.safetensors");
    assert_ok(&r);
    cli(&r, "data moons --n 100 --seed 1 --out d.npy");
    assert_ok(&r);
    cli(&r, "train ddpm --resume d.safetensors --steps 4");
    assert_one_error_line(&r, "the data 'd.npy' is not what the checkpoint was trained on");

    /* A safetensors file that is not a training checkpoint. */
    ed_store *st = ed_store_new(0);
    ed_store_put(st, "w", ed_tensor_new(ED_F32, ed_shape1(3)), true);
    assert_int_equal(ed_safetensors_save(TMP "/plain.safetensors", st, NULL), ED_OK);
    ed_store_free(st);
    cli(&r, "train flow_matching --resume plain.safetensors");
    assert_one_error_line(&r, "plain.safetensors: not an edifice training checkpoint");
}

static bool file_has(const char *path, const char *s);

/* Outputs: checked before the work, never replacing what is not a regular file, never
 * replacing another run's checkpoint unasked; a log that cannot be written fails first. */
static void test_outputs(void **state)
{
    (void)state;
    static result r;
    const char *train = "train flow_matching --data moons --steps 1 " SMALL;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s --out one.safetensors", train);
    cli(&r, cmd); /* one step: the cosine schedule has no warm-up to fit */
    assert_ok(&r);
    cli(&r, cmd);
    assert_one_error_line(&r, "train: one.safetensors exists; give --force to replace it, --resume one.safetensors to "
                              "continue it, or another --out");
    snprintf(cmd, sizeof cmd, "%s --out one.safetensors --force", train);
    cli(&r, cmd);
    assert_ok(&r);

    assert_int_equal(system("cd '" TMP "' && rm -f fifo && mkfifo fifo && ln -sf fifo to_fifo && ln -sf "
                            "one.safetensors to_file && mkdir -p adir"),
                     0);
    static const struct {
        const char *out, *err;
    } bad[] = {
        {"fifo", "cannot write the checkpoint: fifo: is a pipe; give a file name"},
        {"to_fifo", "cannot write the checkpoint: to_fifo: a symlink to"},
        {"adir", "cannot write the checkpoint: adir: is a directory; give a file name"},
        {"adir/", "cannot write the checkpoint: adir/: names a directory; give a file name"},
        {"''", "cannot write the checkpoint: cannot write a file with an empty path"},
        {"/dev/null", "cannot write the checkpoint: /dev/null: is a device; give a file name"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(cmd, sizeof cmd, "%s --force --out %s", train, bad[i].out);
        cli(&r, cmd);
        assert_one_error_line(&r, bad[i].err);
        assert_null(strstr(r.err, "trained")); /* refused before any step */
    }
    struct stat st;
    assert_int_equal(lstat(TMP "/fifo", &st), 0);
    assert_true(S_ISFIFO(st.st_mode));

    /* A symlink to a file: the file is replaced, the link stays. */
    snprintf(cmd, sizeof cmd, "%s --force --out to_file --seed 3", train);
    cli(&r, cmd);
    assert_ok(&r);
    assert_int_equal(lstat(TMP "/to_file", &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    assert_true(file_has(TMP "/one.safetensors", "\"train.seed\":\"3\""));

    /* A temporary file of a process that died (kill -9 in a save) goes at the next save. */
    assert_int_equal(system("cd '" TMP "' && sh -c 'echo $$ >dead_pid' && touch one.safetensors.tmp$(cat "
                            "dead_pid).0 one.safetensors.tmp1.x"),
                     0);
    snprintf(cmd, sizeof cmd, "%s --force --out one.safetensors", train);
    cli(&r, cmd);
    assert_ok(&r);
    assert_int_equal(system("cd '" TMP "' && ! ls one.safetensors.tmp$(cat dead_pid).0 2>/dev/null && ls "
                            "one.safetensors.tmp1.x >/dev/null"),
                     0);

    /* --log: a full device or a missing directory fails before training. */
    snprintf(cmd, sizeof cmd, "%s --force --out one.safetensors --log /dev/full", train);
    cli(&r, cmd);
    assert_one_error_line(&r, "train: cannot write --log /dev/full: No space left on device");
    snprintf(cmd, sizeof cmd, "%s --force --out one.safetensors --log no/such/log.csv", train);
    cli(&r, cmd);
    assert_one_error_line(&r, "train: cannot write --log no/such/log.csv: No such file or directory");
}

/* Requests that used to pass silently or with a misleading message. */
/* Without EDIFICE_MPI the data-parallel flags and an mpirun launch are refused, not
 * ignored (each rank would train alone); an MPI build tests them in tests/mpi. */
static void test_mpi_flags_need_an_mpi_build(void **state)
{
    (void)state;
    if (ed_comm_built_with_mpi()) skip();
    static result r;
    cli(&r, "train ddpm --data moons --steps 1 --mpi-timeout 5");
    assert_int_equal(r.status, 2);
    assert_one_error_line(&r, "--mpi-timeout and --allreduce-bucket need a build with MPI (cmake -DEDIFICE_MPI=ON");
    cli(&r, "train ddpm --data moons --steps 1 --allreduce-bucket 100");
    assert_one_error_line(&r, "need a build with MPI");
    cli(&r, "train ddpm --data moons --steps 1 --mpi-timeout -1");
    assert_one_error_line(&r, "--mpi-timeout wants seconds in [0, 1e6], got '-1'");
    setenv("OMPI_COMM_WORLD_SIZE", "2", 1);
    cli(&r, "train ddpm --data moons --steps 1");
    unsetenv("OMPI_COMM_WORLD_SIZE");
    assert_int_equal(r.status, 2);
    assert_one_error_line(&r, "started by mpirun on 2 ranks, but this edifice is built without MPI");
}

static void test_refused_requests(void **state)
{
    (void)state;
    static result r;
    cli(&r, "train ddpm --data a,b,c --steps 1");
    assert_one_error_line(&r,
                          "data 'a,b,c': expected a built-in set, FILE.npy, OBS.npy,ACTIONS.npy or X.npy,labels=Y.npy");
    cli(&r, "train ddpm --data , --steps 1");
    assert_one_error_line(&r, "data ',': expected a built-in set");
    cli(&r, "train ddpm --data moons --cond_dropout 0.1 --steps 1 " SMALL);
    assert_one_error_line(&r, "model ddpm: cond_dropout 0.1 drops the condition, but the data have none");
    cli(&r, "data moons --noise 1e300 --n 10 --out n.npy");
    assert_one_error_line(&r, "moons: noise must be a finite number up to 1e6, got 1e+300");

    cli(&r, "train ddpm --data demo --steps 2 " SMALL " --force --out plain.safetensors");
    assert_ok(&r);
    cli(&r, "sample ddpm --ckpt plain.safetensors --n 4 --guidance 2 --out s.npy");
    assert_one_error_line(&r, "guidance 2 needs a model trained with a null condition (cond_dropout > 0)");
    cli(&r, "sample ddpm --ckpt plain.safetensors --n 4 --sampler ddim --eta 2 --out s.npy");
    assert_one_error_line(&r, "eta must be in [0, 1]");

    /* --obs: f64 as train takes it; no rows, or a NaN, refused. */
    ed_tensor *obs = ed_tensor_new(ED_F64, ed_shape2(3, 6));
    assert_int_equal(ed_npy_write(TMP "/obs64.npy", obs), ED_OK);
    cli(&r, "sample ddpm --ckpt plain.safetensors --obs obs64.npy --out s.npy");
    assert_ok(&r);
    ((double *)obs->data)[5] = NAN;
    assert_int_equal(ed_npy_write(TMP "/obs_nan.npy", obs), ED_OK);
    cli(&r, "sample ddpm --ckpt plain.safetensors --obs obs_nan.npy --out s.npy");
    assert_one_error_line(&r, "--obs obs_nan.npy: value nan at [0, 5] is not a finite f32 number");
    ed_tensor_free(obs);
    obs = ed_tensor_new(ED_F32, ed_shape2(0, 6));
    assert_int_equal(ed_npy_write(TMP "/obs0.npy", obs), ED_OK);
    cli(&r, "sample ddpm --ckpt plain.safetensors --obs obs0.npy --out s.npy");
    assert_one_error_line(&r, "obs0.npy: expected a non-empty 2-D array [N, D] of f32 or f64");
    ed_tensor_free(obs);
}

static bool wait_for_lines(const char *path, int lines, double timeout_s)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        char *s = slurp(path, NULL);
        int k = 0;
        for (char *p = s; p && *p; p++) k += *p == '\n';
        free(s);
        if (k >= lines) return true;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((double)(t.tv_sec - t0.tv_sec) + 1e-9 * (double)(t.tv_nsec - t0.tv_nsec) > timeout_s) return false;
        usleep(20000);
    }
}

/* Ctrl-C: the run stops after the current step, saves, exits 130; resume finishes it
 * and the losses equal an uninterrupted run's. */
static void test_sigint_saves(void **state)
{
    (void)state;
    static result r;
    unlink(TMP "/int.csv");
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (chdir(TMP) != 0) _exit(99);
        FILE *e = freopen("int.err", "w", stderr);
        (void)e;
        setenv("OPENBLAS_NUM_THREADS", "1", 1);
        execl(ED_CLI, ED_CLI, "train", "ddpm", "--data", "moons", "--steps", "100000", "--hidden", "16", "--layers",
              "1", "--batch", "32", "--n", "500", "--lr-schedule", "constant", "--out", "int.safetensors", "--log",
              "int.csv", (char *)NULL);
        _exit(98);
    }
    if (!wait_for_lines(TMP "/int.csv", 4, 60)) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        fail_msg("training did not start");
    }
    kill(pid, SIGINT);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 130);
    char *err = slurp(TMP "/int.err", NULL);
    assert_non_null(strstr(err, "edifice: interrupted at step "));
    assert_non_null(strstr(err, "checkpoint saved to int.safetensors (continue with --resume int.safetensors)"));
    int stopped = atoi(strstr(err, "interrupted at step ") + 20);
    free(err);
    assert_true(stopped >= 3 && stopped < 100000);

    /* Finish two more steps from the checkpoint; compare with a straight run. */
    char args[1024];
    snprintf(args, sizeof args, "train ddpm --resume int.safetensors --steps %d --log int2.csv", stopped + 2);
    cli(&r, args);
    assert_ok(&r);
    snprintf(args, sizeof args,
             "train ddpm --data moons --steps %d --hidden 16 --layers 1 --batch 32 --n 500 " CONST
             " --out s.safetensors --log s.csv",
             stopped + 2);
    cli(&r, args);
    assert_ok(&r);
    char *a = log_from("s.csv", stopped + 1), *b = log_from("int2.csv", stopped + 1);
    assert_string_equal(a, b);
    free(a);
    free(b);
}

/* Whether the file's bytes contain s (binary files included). */
/* kill -9 at random moments while a run saves after every step: the checkpoint on disk
 * always loads (the old one or the new one, never a torn one), --resume carries on, and
 * the temporary files the kills leave are gone after the next save. */
static void test_kill9_during_saves(void **state)
{
    (void)state;
    static result r;
    cli(&r, "train flow_matching --data moons --steps 2 " SMALL " " CONST " --backend interp --out k9.safetensors");
    assert_ok(&r);
    srand(7);
    int64_t last = 2;
    for (int kill_no = 0; kill_no < 20; kill_no++) {
        struct stat before;
        assert_int_equal(stat(TMP "/k9.safetensors", &before), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            if (chdir(TMP) != 0 || !freopen("/dev/null", "w", stderr)) _exit(99);
            setenv("OPENBLAS_NUM_THREADS", "1", 1);
            execl(ED_CLI, ED_CLI, "train", "flow_matching", "--resume", "k9.safetensors", "--steps", "1000000",
                  "--save-every", "1", "--backend", "interp", (char *)NULL);
            _exit(98);
        }
        /* Wait for the first save of this run (the file replaced), then kill a little later. */
        struct stat now;
        for (int i = 0; i < 6000; i++) {
            if (stat(TMP "/k9.safetensors", &now) == 0 && now.st_ino != before.st_ino) break;
            usleep(5000);
        }
        usleep((useconds_t)(rand() % 20000));
        kill(pid, SIGKILL);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status));
        ed_checkpoint ck = {0};
        if (ed_checkpoint_load(TMP "/k9.safetensors", &ck) != ED_OK) fail_msg("kill %d: %s", kill_no, ed_last_error());
        assert_true(ck.step > last); /* each run saved at least once before the kill */
        last = ck.step;
        ed_checkpoint_free(&ck);
    }
    char args[256];
    snprintf(args, sizeof args, "train flow_matching --resume k9.safetensors --steps %lld --backend interp",
             (long long)last + 3);
    cli(&r, args);
    assert_ok(&r);
    assert_int_equal(system("cd '" TMP "' && ! ls k9.safetensors.tmp* 2>/dev/null"), 0);
}

static bool file_has(const char *path, const char *s)
{
    size_t n, k = strlen(s);
    char *b = slurp(path, &n);
    bool found = false;
    for (size_t i = 0; b && !found && i + k <= n; i++) found = memcmp(b + i, s, k) == 0;
    free(b);
    return found;
}

static void expect_npy(const char *path, int rank, int64_t d0, int64_t d1, int64_t d2)
{
    ed_tensor *t = ed_npy_read(path);
    if (!t) fail_msg("%s", ed_last_error());
    assert_int_equal(t->shape.rank, rank);
    assert_int_equal(t->shape.dim[0], d0);
    assert_int_equal(t->shape.dim[1], d1);
    if (rank > 2) assert_int_equal(t->shape.dim[2], d2);
    for (int64_t i = 0; i < ed_tensor_numel(t); i++) assert_true(isfinite(((float *)t->data)[i]));
    ed_tensor_free(t);
}

/* sample and eval on a small checkpoint of each kind: files of the right shape, the
 * figures printed, and bad requests refused with one line. */
static void test_sample_and_eval(void **state)
{
    (void)state;
    static result r;
    cli(&r, "train flow_matching --data moons --steps 20 " SMALL " --out fm.safetensors");
    assert_ok(&r);
    cli(&r, "sample flow_matching --ckpt fm.safetensors --n 300 --out s.npy --sampler heun --steps 4 --batch 128");
    assert_ok(&r);
    assert_non_null(strstr(r.out, "wrote s.npy"));
    assert_non_null(strstr(r.err, "300 samples of flow_matching (step 20)"));
    expect_npy(TMP "/s.npy", 2, 300, 2, 0);
    cli(&r, "sample flow_matching --ckpt fm.safetensors --n 300 --out s.png");
    assert_ok(&r);
    assert_true(access(TMP "/s.png", F_OK) == 0);
    /* The plot's description (a tEXt chunk) counts the points drawn under the samples. */
    assert_true(file_has(TMP "/s.png", "under:"));
    cli(&r, "sample flow_matching --ckpt fm.safetensors --n 300 --out bare.png --no-data");
    assert_ok(&r);
    assert_true(file_has(TMP "/bare.png", "points: 300 of 300 drawn"));
    assert_false(file_has(TMP "/bare.png", "under:"));
    cli(&r, "eval flow_matching --ckpt fm.safetensors --n 400 --plot e.png");
    assert_ok(&r);
    assert_non_null(strstr(r.out, "400 samples against 400 fresh points of moons"));
    assert_non_null(strstr(r.out, "sliced Wasserstein-1"));
    assert_non_null(strstr(r.out, "MMD^2 (rbf, sigma"));
    assert_true(access(TMP "/e.png", F_OK) == 0);
    /* The same seed draws the same samples; the interpreter agrees with the JIT. */
    cli(&r,
        "sample flow_matching --ckpt fm.safetensors --n 300 --out s2.npy --sampler heun --steps 4 --batch 128 --backend interp");
    assert_ok(&r);
    ed_tensor *a = ed_npy_read(TMP "/s.npy"), *b = ed_npy_read(TMP "/s2.npy");
    for (int64_t i = 0; i < ed_tensor_numel(a); i++)
        assert_float_equal(((float *)a->data)[i], ((float *)b->data)[i], 1e-4);
    ed_tensor_free(a);
    ed_tensor_free(b);

    /* Conditional: chunks [n, 8, 2] for fresh observations, written beside them. */
    cli(&r, "train ddpm --data demo --steps 10 " SMALL " --cond_dropout 0.1 --out dd.safetensors");
    assert_ok(&r);
    cli(&r, "sample ddpm --ckpt dd.safetensors --n 50 --out c.npy --sampler ddim --steps 5 --guidance 2");
    assert_ok(&r);
    expect_npy(TMP "/c.npy", 3, 50, 8, 2);
    expect_npy(TMP "/c.obs.npy", 2, 50, 6, 0);
    cli(&r, "sample ddpm --ckpt dd.safetensors --obs c.obs.npy --n 20 --out c2.npy");
    assert_ok(&r);
    expect_npy(TMP "/c2.npy", 3, 20, 8, 2);
    cli(&r, "eval ddpm --ckpt dd.safetensors --n 100 --sampler ddim --steps 5");
    assert_ok(&r);
    assert_non_null(strstr(r.out, "valid chunks"));
    assert_non_null(strstr(r.out, "left/right"));

    cli(&r, "sample flow_matching --out x.npy");
    assert_one_error_line(&r, "--ckpt FILE is required");
    cli(&r, "sample ddpm --ckpt fm.safetensors --out x.npy");
    assert_one_error_line(&r, "fm.safetensors is a checkpoint of model flow_matching, not ddpm");
    cli(&r, "sample flow_matching --ckpt fm.safetensors --out x.npy --sampler ddim");
    assert_one_error_line(&r, "unknown sampler 'ddim' (samplers: euler|midpoint|heun|rk4)");
    cli(&r, "sample flow_matching --ckpt fm.safetensors --out x.npy --obs c.obs.npy");
    assert_one_error_line(&r, "flow_matching is unconditional; --obs is not used");
    cli(&r, "sample flow_matching --ckpt fm.safetensors --out x.npy --label 3");
    assert_one_error_line(&r, "sample: flow_matching is not class-conditional; --label is not used");
    cli(&r, "sample flow_matching --ckpt fm.safetensors --out x.npy --label x");
    assert_one_error_line(&r, "--label wants a whole number");
    cli(&r, "sample ddpm --ckpt dd.safetensors --out x.npy --steps 7");
    assert_one_error_line(&r, "the ddpm sampler runs all 100 steps");
    cli(&r, "sample flow_matching --ckpt fm.safetensors --out x.txt");
    assert_one_error_line(&r, "--out wants FILE.npy or FILE.png");
    cli(&r, "eval flow_matching --ckpt missing.safetensors");
    assert_one_error_line(&r, "missing.safetensors");
    cli(&r, "eval flow_matching --ckpt fm.safetensors --data demo --n 50");
    assert_one_error_line(&r, "does not fit model flow_matching");
}

/* The pass options reach the compiled step and sampler: stats and printing on stderr,
 * and a run without passes trains bit for bit like the default pipeline (every pass
 * keeps the values exactly). */
static void test_pass_options(void **state)
{
    (void)state;
    static result r;
    cli(&r, "train flow_matching --data moons --steps 12 " SMALL " --out p1.safetensors --log p1.csv --pass-stats");
    assert_ok(&r);
    assert_non_null(strstr(r.err, "pass fuse:"));
    assert_non_null(strstr(r.err, "pass plan:"));
    cli(&r, "train flow_matching --data moons --steps 12 " SMALL " --out p2.safetensors --log p2.csv --passes ''");
    assert_ok(&r);
    assert_null(strstr(r.err, "pass fuse:"));
    char *a = slurp(TMP "/p1.csv", NULL), *b = slurp(TMP "/p2.csv", NULL);
    assert_true(strlen(a) > 12 * 4);
    assert_string_equal(a, b);
    free(a);
    free(b);
    cli(&r, "sample flow_matching --ckpt p1.safetensors --n 20 --out p.npy --print-after=fuse");
    assert_ok(&r);
    assert_non_null(strstr(r.err, "fused"));
    cli(&r, "eval flow_matching --ckpt p1.safetensors --n 50 --passes simplify,dce --pass-stats");
    assert_ok(&r);
    assert_non_null(strstr(r.err, "pass dce:"));
    assert_null(strstr(r.err, "pass fuse:"));
    cli(&r, "train flow_matching --data moons --steps 2 " SMALL " --out p3.safetensors --passes simplify,bogus");
    assert_one_error_line(&r, "unknown pass 'bogus'");
    cli(&r, "sample flow_matching --ckpt p1.safetensors --out p.npy --print-after");
    assert_one_error_line(&r, "--print-after needs a pass name");
}

/* The U-Net denoiser (--arch conv) of ddpm and flow_matching on the 8x8 digits: a run and
 * its half resumed are the same bytes (the checkpoint keeps the arch and its options, so
 * resume, sample and eval rebuild the U-Net), samples are images in range, eval prints the
 * image figures, and data the U-Net cannot read are refused with one line. */
#define CONV_SMALL "--arch conv --channels 8 --groups 4 --batch 16 " CONST
static void test_conv_denoisers(void **state)
{
    (void)state;
    static result r;
    const char *models[2] = {"ddpm", "flow_matching"};
    for (int k = 0; k < 2; k++) {
        const char *m = models[k], *extra = k ? "--sample_steps 4" : "--timesteps 10";
        char cmd[512], pa[256], pb[256];
        snprintf(cmd, sizeof cmd, "train %s --data digits --steps 4 %s %s --out %s_c.safetensors", m, CONV_SMALL, extra,
                 m);
        cli(&r, cmd);
        assert_ok(&r);
        snprintf(cmd, sizeof cmd, "train %s --data digits --steps 2 %s %s --out %s_ch.safetensors", m, CONV_SMALL,
                 extra, m);
        cli(&r, cmd);
        assert_ok(&r);
        snprintf(cmd, sizeof cmd, "train %s --resume %s_ch.safetensors --steps 4 --out %s_cr.safetensors", m, m, m);
        cli(&r, cmd);
        assert_ok(&r);
        snprintf(pa, sizeof pa, "%s_c.safetensors", m);
        snprintf(pb, sizeof pb, "%s_cr.safetensors", m);
        expect_same_files(pa, pb);
        snprintf(cmd, sizeof cmd, "sample %s --ckpt %s_c.safetensors --n 9 --out %s_c.npy", m, m, m);
        cli(&r, cmd);
        assert_ok(&r);
        snprintf(pa, sizeof pa, TMP "/%s_c.npy", m);
        ed_tensor *s = ed_npy_read(pa);
        if (!s) fail_msg("%s", ed_last_error());
        assert_int_equal(s->shape.rank, 4);
        assert_int_equal(s->shape.dim[0], 9);
        assert_int_equal(s->shape.dim[3], 8);
        for (int64_t i = 0; i < ed_tensor_numel(s); i++) assert_true(isfinite(ed_tensor_get(s, i)));
        ed_tensor_free(s);
        snprintf(cmd, sizeof cmd, "sample %s --ckpt %s_c.safetensors --n 16 --out %s_c.png", m, m, m);
        cli(&r, cmd);
        assert_ok(&r);
        snprintf(cmd, sizeof cmd, "eval %s --ckpt %s_c.safetensors --n 64", m, m);
        cli(&r, cmd);
        assert_ok(&r);
        assert_non_null(strstr(r.out, "frechet_distance"));
    }
    /* ddpm's U-Net takes betas 1e-3..0.2 unless the schedule or T is given (ddpm_c gave T);
     * the checkpoint keeps them. */
    cli(&r, "train ddpm --data digits --steps 1 --arch conv --channels 8 --groups 4 --out lin.safetensors");
    assert_ok(&r);
    ed_meta *mc = NULL, *ml = NULL;
    ed_store *sc = ed_safetensors_load(TMP "/ddpm_c.safetensors", &mc);
    ed_store *sl = ed_safetensors_load(TMP "/lin.safetensors", &ml);
    if (!sc || !sl) fail_msg("%s", ed_last_error());
    assert_string_equal(ed_meta_get(mc, "option.beta_end"), "0.02");
    assert_string_equal(ed_meta_get(ml, "option.beta_end"), "0.2");
    assert_string_equal(ed_meta_get(ml, "option.beta_start"), "0.001");
    ed_store_free(sc);
    ed_store_free(sl);
    ed_meta_free(mc);
    ed_meta_free(ml);
    cli(&r, "train ddpm --data moons --steps 1 --arch conv --out x.safetensors");
    assert_one_error_line(&r, "ddpm: arch conv needs image samples [C, H, W], got rank 1");
    cli(&r, "train flow_matching --data digits --steps 1 --arch conv --mults 1,1,1,1,1 --out x.safetensors");
    assert_one_error_line(&r, "needs H and W divisible by 16, the images are 8x8");
    cli(&r, "train ddpm --data digits --steps 1 --arch conv --channels 12 --groups 8 --out x.safetensors");
    assert_one_error_line(&r, "groups 8 must divide channels 12");
}

/* samples (an .npy in TMP) equal, bit for bit, 6 samples drawn in the library from ck's store
 * with sample's defaults on the interpreter. */
static bool drawn_as(const char *samples, ed_checkpoint *ck)
{
    char path[512];
    snprintf(path, sizeof path, TMP "/%s", samples);
    ed_tensor *want = ed_npy_read(path), *got = NULL;
    if (!want) fail_msg("%s", ed_last_error());
    if (ed_gen_draw(&ck->model, ck->store, 6, NULL, NULL, &(ed_gen_draw_opts){.backend = ED_BACKEND_INTERP}, &got) !=
        ED_OK)
        fail_msg("%s", ed_last_error());
    bool same = ed_tensor_bytes(want) == ed_tensor_bytes(got) &&
                memcmp(want->data, got->data, ed_tensor_bytes(got)) == 0;
    ed_tensor_free(want);
    ed_tensor_free(got);
    return same;
}

/* The U-Net ddpm keeps an EMA of its weights by default (ema_decay 0.999 in the checkpoint)
 * and sample draws from it: the samples are the library's draw with the EMA in place of
 * the weights, and --raw-weights those of the weights themselves; with --ema_decay 0 there
 * is none and both flags give the same samples. */
static void test_sample_uses_ema(void **state)
{
    (void)state;
    static result r;
    cli(&r, "train ddpm --data digits --steps 3 --timesteps 10 " CONV_SMALL " --out ema.safetensors");
    assert_ok(&r);
    cli(&r, "sample ddpm --ckpt ema.safetensors --n 6 --backend interp --out ema.npy");
    assert_ok(&r);
    assert_non_null(strstr(r.err, "the EMA of the weights (decay 0.999"));
    cli(&r, "sample ddpm --ckpt ema.safetensors --n 6 --backend interp --raw-weights --out raw.npy");
    assert_ok(&r);
    assert_null(strstr(r.err, "EMA"));
    ed_checkpoint ck;
    if (ed_checkpoint_load(TMP "/ema.safetensors", &ck) != ED_OK) fail_msg("%s", ed_last_error());
    assert_float_equal(ck.model.opts.diffusion.ema_decay, 0.999, 0);
    assert_true(drawn_as("raw.npy", &ck));
    assert_false(drawn_as("ema.npy", &ck));
    assert_true(ed_checkpoint_use_ema(&ck) > 0);
    assert_true(drawn_as("ema.npy", &ck));
    ed_checkpoint_free(&ck);

    cli(&r, "train ddpm --data digits --steps 3 --timesteps 10 --ema_decay 0 " CONV_SMALL " --out no_ema.safetensors");
    assert_ok(&r);
    cli(&r, "sample ddpm --ckpt no_ema.safetensors --n 6 --backend interp --out no_ema.npy");
    assert_ok(&r);
    assert_null(strstr(r.err, "EMA"));
    cli(&r, "sample ddpm --ckpt no_ema.safetensors --n 6 --backend interp --raw-weights --out no_ema_raw.npy");
    assert_ok(&r);
    expect_same_files("no_ema.npy", "no_ema_raw.npy");
    /* Same seed, same steps: the weights trained are the same with or without their EMA. */
    expect_same_files("raw.npy", "no_ema.npy");
    cli(&r, "train ddpm --data digits --steps 1 --ema_decay 1 " CONV_SMALL " --out x.safetensors");
    assert_one_error_line(&r, "ema_decay");
}

/* How many values of an .npy file lie outside [0, 1] (all must be finite). */
static int64_t outside_unit(const char *path)
{
    ed_tensor *s = ed_npy_read(path);
    if (!s) fail_msg("%s", ed_last_error());
    int64_t n = 0;
    for (int64_t i = 0; i < ed_tensor_numel(s); i++) {
        double v = ed_tensor_get(s, i);
        assert_true(isfinite(v));
        n += v < 0 || v > 1;
    }
    ed_tensor_free(s);
    return n;
}

/* The U-Net trains on [0, 1] images scaled to [-1, 1] (signed_range 1, the checkpoint says
 * so, and clip_x0 1 for ddpm) and its samples come back inside [0, 1]; a checkpoint written
 * before the option (no signed_range, no clip_x0 in its metadata) samples as one with both
 * at 0, the pixels as they are; the MLP keeps 0, and 1 on data outside [0, 1] is refused. */
static void test_conv_signed_range(void **state)
{
    (void)state;
    static result r;
    cli(&r, "train ddpm --data digits --steps 2 --timesteps 10 " CONV_SMALL " --out sr.safetensors");
    assert_ok(&r);
    cli(&r, "train ddpm --data digits --steps 2 --timesteps 10 " CONV_SMALL
            " --signed_range 0 --clip_x0 0 --out sr0.safetensors");
    assert_ok(&r);
    cli(&r, "train ddpm --data digits --steps 1 --timesteps 10 --hidden 8 --layers 0 --out srm.safetensors");
    assert_ok(&r);
    cli(&r, "train flow_matching --data digits --steps 1 --sample_steps 2 " CONV_SMALL " --out srf.safetensors");
    assert_ok(&r);
    const char *files[4] = {"sr", "sr0", "srm", "srf"}, *want[4][2] = {{"1", "1"}, {"0", "0"}, {"0", "0"}, {"1", NULL}};
    for (int k = 0; k < 4; k++) {
        char path[256];
        snprintf(path, sizeof path, TMP "/%s.safetensors", files[k]);
        ed_meta *meta = NULL;
        ed_store *st = ed_safetensors_load(path, &meta);
        if (!st) fail_msg("%s", ed_last_error());
        assert_string_equal(ed_meta_get(meta, "option.signed_range"), want[k][0]);
        if (want[k][1]) assert_string_equal(ed_meta_get(meta, "option.clip_x0"), want[k][1]);
        if (k == 1) { /* sr0 without the two options: a checkpoint from before them */
            ed_meta *old = ed_meta_new();
            for (int i = 0; i < ed_meta_count(meta); i++)
                if (strcmp(ed_meta_key(meta, i), "option.signed_range") &&
                    strcmp(ed_meta_key(meta, i), "option.clip_x0"))
                    assert_int_equal(ed_meta_set(old, ed_meta_key(meta, i), ed_meta_value(meta, i)), ED_OK);
            assert_int_equal(ed_safetensors_save(TMP "/sr_old.safetensors", st, old), ED_OK);
            ed_meta_free(old);
        }
        ed_store_free(st);
        ed_meta_free(meta);
    }
    cli(&r, "sample ddpm --ckpt sr.safetensors --n 16 --out sr.npy");
    assert_ok(&r);
    assert_int_equal(outside_unit(TMP "/sr.npy"), 0);
    cli(&r, "sample flow_matching --ckpt srf.safetensors --n 16 --out srf.npy");
    assert_ok(&r);
    assert_int_equal(outside_unit(TMP "/srf.npy"), 0);
    /* two steps of training leave the unscaled sampler's output far outside [0, 1] */
    cli(&r, "sample ddpm --ckpt sr0.safetensors --n 16 --out sr0.npy");
    assert_ok(&r);
    assert_true(outside_unit(TMP "/sr0.npy") > 100);
    cli(&r, "sample ddpm --ckpt sr_old.safetensors --n 16 --out sr_old.npy");
    assert_ok(&r);
    expect_same_files("sr0.npy", "sr_old.npy");
    cli(&r, "train ddpm --data moons --steps 1 --signed_range 1 --out x.safetensors");
    assert_one_error_line(&r, "ddpm: signed_range 1 needs data in [0, 1]");
}

static void test_help(void **state)
{
    (void)state;
    static result r;
    cli(&r, "train --help");
    assert_ok(&r);
    assert_non_null(strstr(r.out, "usage: edifice train MODEL"));
    assert_non_null(strstr(r.out, "--resume FILE"));
    assert_non_null(strstr(r.out, "--pass-stats"));
    cli(&r, "train ddpm --help");
    assert_ok(&r);
    cli(&r, "data --help");
    assert_ok(&r);
    assert_non_null(strstr(r.out, "usage: edifice data NAME"));
    cli(&r, "--help");
    assert_non_null(strstr(r.out, "train MODEL --data"));
    assert_non_null(strstr(r.out, "models [MODEL]"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_models_lists_defaults),
        cmocka_unit_test(test_data_writes_npy_and_png),
        cmocka_unit_test(test_train_and_resume),
        cmocka_unit_test(test_image_families),
        cmocka_unit_test(test_conv_denoisers),
        cmocka_unit_test(test_conv_signed_range),
        cmocka_unit_test(test_sample_uses_ema),
        cmocka_unit_test(test_score_sde),
        cmocka_unit_test(test_consistency),
        cmocka_unit_test(test_consistency_distill),
        cmocka_unit_test(test_gan_families),
        cmocka_unit_test(test_conv_arch),
        cmocka_unit_test(test_train_errors),
        cmocka_unit_test(test_outputs),
        cmocka_unit_test(test_refused_requests),
        cmocka_unit_test(test_mpi_flags_need_an_mpi_build),
        cmocka_unit_test(test_sigint_saves),
        cmocka_unit_test(test_kill9_during_saves),
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_sample_and_eval),
        cmocka_unit_test(test_pass_options),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
