/* Training runs opened from a request (ed_trainer_open, models/trainer.h): a fresh run's
 * defaults, the resume rules with their messages (and whether the request is at fault),
 * and a run stopped, saved and resumed through the API equal to an uninterrupted one
 * bit for bit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "io/npy.h"
#include "models/trainer.h"
#include "support/error_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TMP ED_BINARY_DIR "/test_train_open_tmp"

static const ed_option_arg small[] = {{"hidden", "16"}, {"layers", "1"}};

static int setup(void **state)
{
    (void)state;
    return system("rm -rf '" TMP "' && mkdir -p '" TMP "'") == 0 ? 0 : -1;
}

/* A small flow-matching run on 500 rows of moons: batch 32, 8 planned steps. */
static ed_train_request small_run(const char *out)
{
    return (ed_train_request){.def = ed_model_find("flow_matching"),
                              .options = small,
                              .noptions = 2,
                              .data = "moons",
                              .n = 500,
                              .steps = 8,
                              .batch = 32,
                              .lr = 1e-2,
                              .out = out};
}

static ed_trainer *open_ok(const ed_train_request *r, ed_train_open_result *res)
{
    if (ed_trainer_open(r, res) != ED_OK) fail_msg("%s", ed_last_error());
    assert_non_null(res->trainer);
    return res->trainer;
}

/* Trains to step k and saves to out. */
static void checkpoint_at(const char *out, int64_t k)
{
    ed_train_request r = small_run(out);
    ed_train_open_result res;
    ed_trainer *t = open_ok(&r, &res);
    for (int64_t i = 0; i < k; i++) assert_int_equal(ed_trainer_step(t, NULL), ED_OK);
    assert_int_equal(ed_trainer_save(t, res.out), ED_OK);
    ed_trainer_free(t);
}

/* The request fails with a message containing want; bad says whose fault it is. */
static void expect_refused(const ed_train_request *r, const char *want, bool bad)
{
    ed_train_open_result res;
    ed_clear_error();
    assert_int_equal(ed_trainer_open(r, &res), ED_ERR);
    assert_null(res.trainer);
    CHECK_ERROR_HAS(want);
    if (res.bad_request != bad) fail_msg("bad_request is %d for: %s", res.bad_request, ed_last_error());
}

static void test_fresh_defaults(void **state)
{
    (void)state;
    ed_train_request r = {.def = ed_model_find("flow_matching"),
                          .options = small,
                          .noptions = 2,
                          .data = "moons",
                          .backend = ED_BACKEND_INTERP};
    ed_train_open_result res;
    ed_trainer *t = open_ok(&r, &res);
    const ed_trainer_opts *o = ed_trainer_options(t);
    assert_int_equal(o->batch, 256);
    assert_true(o->lr == 1e-3);
    assert_int_equal(o->lr_schedule, ED_LR_COSINE);
    assert_int_equal(o->steps, 1000);
    assert_int_equal(o->seed, 0);
    assert_int_equal(ed_dataset_rows(ed_trainer_data(t)), 10000);
    assert_string_equal(ed_trainer_data(t)->spec, "moons");
    assert_string_equal(res.out, "flow_matching.safetensors");
    assert_false(res.resumed);
    assert_false(res.diverges);
    assert_int_equal(ed_trainer_steps_done(t), 0);
    ed_trainer_free(t);
}

/* A family with its own budget (the GANs, models/gan.c): a fresh run without steps
 * plans that many; given steps win. */
static void test_fresh_family_steps(void **state)
{
    (void)state;
    const ed_option_arg tiny[] = {{"latent", "4"}, {"generator_sizes", "8"}, {"discriminator_sizes", "8"}};
    const char *names[] = {"gan", "wgan_gp", "vae"};
    const int64_t want[] = {3000, 4000, 1000};
    for (int i = 0; i < 3; i++) {
        ed_train_request r = {.def = ed_model_find(names[i]),
                              .options = tiny,
                              .noptions = i < 2 ? 3 : 0,
                              .data = i < 2 ? "8gaussians" : "digits",
                              .n = 300,
                              .backend = ED_BACKEND_INTERP,
                              .out = TMP "/family.safetensors"};
        assert_int_equal(ed_model_default_steps(r.def), want[i]);
        ed_train_open_result res;
        ed_trainer *t = open_ok(&r, &res);
        assert_int_equal(ed_trainer_options(t)->steps, want[i]);
        ed_trainer_free(t);
        r.steps = 7;
        t = open_ok(&r, &res);
        assert_int_equal(ed_trainer_options(t)->steps, 7);
        ed_trainer_free(t);
    }
}

static void test_fresh_errors(void **state)
{
    (void)state;
    ed_train_request r = small_run(TMP "/x.safetensors");
    r.data = NULL;
    expect_refused(&r, "--data is required", true);
    r = small_run(TMP "/x.safetensors");
    r.data = "spirals";
    expect_refused(&r, "unknown data 'spirals'", false);
    /* A value out of the option's range is the request's fault; one the network
     * refuses when it is built is found by the compiler. */
    const ed_option_arg out_of_range[] = {{"sigma_min", "1.5"}}, odd[] = {{"hidden", "15"}};
    r = small_run(TMP "/x.safetensors");
    r.options = out_of_range;
    r.noptions = 1;
    expect_refused(&r, "sigma_min", true);
    r.options = odd;
    expect_refused(&r, "hidden must be even", false);
    r = small_run(TMP "/no/such/dir/x.safetensors");
    expect_refused(&r,
                   "cannot write the checkpoint: " TMP "/no/such/dir/x.safetensors: cannot write in directory '" TMP
                   "/no/such/dir/': No such file or directory",
                   false);
}

/* Every field the checkpoint fixes, given otherwise, is refused and named. */
static void test_resume_rules(void **state)
{
    (void)state;
    const char *ck = TMP "/rules.safetensors";
    checkpoint_at(ck, 2);
    const ed_model_def *fm = ed_model_find("flow_matching");
    ed_train_request r = {.def = fm, .resume = ck};

    const ed_option_arg wider[] = {{"hidden", "32"}};
    r.options = wider, r.noptions = 1;
    expect_refused(&r, TMP "/rules.safetensors was trained with hidden = 16; a resumed run keeps its model options",
                   true);
    r.options = NULL, r.noptions = 0;
    r.data = "circles";
    expect_refused(&r, "was trained with --data moons; a resumed run keeps it (leave --data out)", true);
    r.data = NULL, r.n = 400;
    expect_refused(&r, "was trained with --n 500", true);
    r.n = 0, r.has_seed = true, r.seed = 9;
    expect_refused(&r, "was trained with --seed 0", true);
    r.has_seed = false;
    r.def = ed_model_find("ddpm");
    expect_refused(&r, "rules.safetensors is a checkpoint of model flow_matching, not ddpm", false);
    r.def = fm;
    r.resume = TMP "/missing.safetensors";
    expect_refused(&r, "missing.safetensors", false);

    /* The same values given again are no change; the output defaults to the resumed file. */
    const ed_option_arg same[] = {{"hidden", "16"}, {"layers", "1"}};
    r = (ed_train_request){.def = fm,
                           .resume = ck,
                           .options = same,
                           .noptions = 2,
                           .data = "moons",
                           .n = 500,
                           .has_seed = true,
                           .seed = 0};
    ed_train_open_result res;
    ed_trainer *t = open_ok(&r, &res);
    assert_true(res.resumed);
    assert_false(res.diverges);
    assert_string_equal(res.out, ck);
    assert_int_equal(ed_trainer_steps_done(t), 2);
    assert_int_equal(ed_trainer_options(t)->steps, 8);
    assert_int_equal(ed_trainer_options(t)->batch, 32);
    ed_trainer_free(t);

    /* Another batch is allowed, with a note; so is another length (which moves the end
     * of the cosine schedule). */
    r = (ed_train_request){.def = fm, .resume = ck, .batch = 64};
    t = open_ok(&r, &res);
    assert_true(res.diverges);
    assert_int_equal(res.was.batch, 32);
    assert_int_equal(ed_trainer_options(t)->batch, 64);
    ed_trainer_free(t);
    r = (ed_train_request){.def = fm, .resume = ck, .steps = 12};
    t = open_ok(&r, &res);
    assert_true(res.diverges); /* the run's cosine schedule ends at its planned step 8 */
    ed_trainer_free(t);
}

/* Stopped at step 4, saved, resumed by path alone: the same losses and tensors as a run
 * of 8 straight steps. */
static void test_resumed_equals_uninterrupted(void **state)
{
    (void)state;
    enum { N = 8 };
    double straight[N], resumed[N];
    ed_train_request r = small_run(TMP "/straight.safetensors");
    ed_train_open_result res;
    ed_trainer *a = open_ok(&r, &res);
    for (int i = 0; i < N; i++) assert_int_equal(ed_trainer_step(a, &straight[i]), ED_OK);

    const char *half = TMP "/half.safetensors";
    r = small_run(half);
    ed_trainer *b = open_ok(&r, &res);
    for (int i = 0; i < N / 2; i++) assert_int_equal(ed_trainer_step(b, &resumed[i]), ED_OK);
    assert_int_equal(ed_trainer_save(b, res.out), ED_OK);
    ed_trainer_free(b);

    r = (ed_train_request){.def = ed_model_find("flow_matching"), .resume = half};
    ed_trainer *c = open_ok(&r, &res);
    assert_int_equal(ed_trainer_steps_done(c), N / 2);
    while (ed_trainer_steps_done(c) < ed_trainer_options(c)->steps)
        assert_int_equal(ed_trainer_step(c, &resumed[ed_trainer_steps_done(c)]), ED_OK);
    assert_int_equal(ed_trainer_steps_done(c), N);
    for (int i = 0; i < N; i++)
        if (memcmp(&straight[i], &resumed[i], sizeof(double)) != 0)
            fail_msg("step %d: straight %.9g, resumed %.9g", i + 1, straight[i], resumed[i]);
    const ed_store *sa = ed_trainer_store(a), *sc = ed_trainer_store(c);
    assert_int_equal(ed_store_count(sa), ed_store_count(sc));
    for (int i = 0; i < ed_store_count(sa); i++) {
        const ed_tensor *x = ed_store_tensor(sa, i), *y = ed_store_get(sc, ed_store_name(sa, i));
        assert_non_null(y);
        assert_int_equal(ed_tensor_bytes(x), ed_tensor_bytes(y));
        if (memcmp(x->data, y->data, ed_tensor_bytes(x)) != 0) fail_msg("'%s' differs", ed_store_name(sa, i));
    }
    /* Saved again, it is at its planned end: opening it says so. */
    assert_int_equal(ed_trainer_save(c, half), ED_OK);
    ed_trainer_free(c);
    ed_trainer *d = open_ok(&r, &res);
    assert_true(ed_trainer_steps_done(d) >= ed_trainer_options(d)->steps);
    ed_trainer_free(d);
    ed_trainer_free(a);
}

/* A resumed run whose data changed under the same spec is refused, naming the file. */
static void test_resume_changed_data(void **state)
{
    (void)state;
    ed_dataset d;
    assert_int_equal(ed_dataset_open(&d, "moons", 100, 0), ED_OK);
    const char *npy = TMP "/d.npy";
    assert_int_equal(ed_npy_write(npy, d.x), ED_OK);
    ed_train_request r = small_run(TMP "/d.safetensors");
    r.data = npy;
    ed_train_open_result res;
    ed_trainer *t = open_ok(&r, &res);
    assert_int_equal(ed_trainer_save(t, res.out), ED_OK);
    ed_trainer_free(t);
    ((float *)d.x->data)[0] += 1;
    assert_int_equal(ed_npy_write(npy, d.x), ED_OK);
    ed_dataset_free(&d);
    r = (ed_train_request){.def = ed_model_find("flow_matching"), .resume = TMP "/d.safetensors"};
    expect_refused(&r, TMP "/d.safetensors: the data '" TMP "/d.npy' is not what the checkpoint was trained on", false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fresh_defaults),
        cmocka_unit_test(test_fresh_family_steps),
        cmocka_unit_test(test_fresh_errors),
        cmocka_unit_test(test_resume_rules),
        cmocka_unit_test(test_resumed_equals_uninterrupted),
        cmocka_unit_test(test_resume_changed_data),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
