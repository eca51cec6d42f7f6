/* Drawing samples from a checkpoint in batches (ed_gen_draw, models/generate.h) and the
 * evaluation protocol on top (models/evaluate.h): a batch that does not divide n gives
 * the first n rows of a longer draw, each call is the sampler program run with its call
 * counter (as `edifice sample` always drew), observations wrap in a short last batch,
 * and bad requests fail with a message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "io/npy.h"
#include "models/evaluate.h"
#include "models/generate.h"
#include "support/error_check.h"
#include "support/small_checkpoint.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TMP ED_BINARY_DIR "/test_gen_draw_tmp"

static int setup(void **state)
{
    (void)state;
    return system("rm -rf '" TMP "' && mkdir -p '" TMP "'") == 0 ? 0 : -1;
}

/* A small untrained model of def on data (tests/support/small_checkpoint.h). */
static void small_ckpt(const char *def, const char *data, ed_checkpoint *ck)
{
    static const ed_option_arg small[] = {{"hidden", "16"}, {"layers", "1"}};
    char path[512];
    snprintf(path, sizeof path, TMP "/%s_%s.safetensors", def, data);
    small_checkpoint(def, data, small, 2, path, ck);
}

/* Four sampler steps: flow matching's euler, or ddim for the diffusion models. */
static ed_tensor *draw(ed_checkpoint *ck, int64_t n, int64_t batch, const ed_tensor *obs)
{
    ed_tensor *s = NULL;
    ed_gen_draw_opts o = {.seed = 7, .batch = batch, .sampler = {.steps = 4}};
    if (strcmp(ck->model.def->name, "flow_matching") != 0) o.sampler.sampler = "ddim";
    if (ed_gen_draw(&ck->model, ck->store, n, obs, NULL, &o, &s) != ED_OK) fail_msg("%s", ed_last_error());
    assert_int_equal(s->shape.dim[0], n);
    return s;
}

/* a's rows equal b's first rows, bit for bit. */
static void expect_leading_rows(const ed_tensor *a, const ed_tensor *b)
{
    size_t row = ed_tensor_bytes(a) / (size_t)a->shape.dim[0];
    assert_int_equal(row, ed_tensor_bytes(b) / (size_t)b->shape.dim[0]);
    assert_true(a->shape.dim[0] <= b->shape.dim[0]);
    for (int64_t i = 0; i < a->shape.dim[0]; i++)
        if (memcmp((const char *)a->data + i * row, (const char *)b->data + i * row, row) != 0)
            fail_msg("row %lld differs", (long long)i);
}

/* The program `edifice sample` built before the draw moved into the library: one
 * sampler for b samples, called ceil(n / b) times, the rows concatenated. */
static ed_tensor *draw_by_hand(ed_checkpoint *ck, int64_t n, int64_t b)
{
    ed_graph *g = ed_graph_new("sample");
    ed_gen_sample_opts so = {.steps = 4};
    ed_node *s = ed_gen_model_sample(g, &ck->model, b, NULL, NULL, &so);
    if (!s) fail_msg("%s", ed_graph_error(g));
    ed_output(g, "samples", s);
    ed_program *p = ed_compile(g, ck->store, &(ed_compile_opts){.seed = 7});
    if (!p) fail_msg("%s", ed_last_error());
    ed_shape full = s->shape;
    full.dim[0] = n;
    ed_tensor *r = ed_tensor_new(ED_F32, full);
    size_t row = ed_tensor_bytes(r) / (size_t)n;
    for (int64_t done = 0; done < n; done += b) {
        assert_int_equal(ed_run(p, NULL, 0), ED_OK);
        int64_t rows = n - done < b ? n - done : b;
        memcpy((char *)r->data + (size_t)done * row, ed_program_output(p, "samples")->data, (size_t)rows * row);
    }
    ed_program_free(p);
    ed_graph_free(g);
    return r;
}

static void count_calls(void *ctx, const ed_gen_progress *p)
{
    int64_t *seen = ctx;
    seen[seen[0]++ + 1] = p->done;
    assert_int_equal(p->n, 300);
    assert_int_equal(p->batch, 128);
    assert_int_equal(p->calls, 3);
}

static void test_batch_not_dividing_n(void **state)
{
    (void)state;
    ed_checkpoint ck;
    small_ckpt("flow_matching", "moons", &ck);
    ed_tensor *a = draw(&ck, 300, 128, NULL);
    ed_tensor *longer = draw(&ck, 384, 128, NULL), *one = draw(&ck, 128, 128, NULL);
    expect_leading_rows(a, longer);
    expect_leading_rows(one, a);
    ed_tensor *by_hand = draw_by_hand(&ck, 300, 128);
    expect_leading_rows(a, by_hand);
    /* Another batch size is another draw (the noise of each call is its own). */
    ed_tensor *other = draw(&ck, 300, 100, NULL);
    assert_true(memcmp(a->data, other->data, ed_tensor_bytes(a)) != 0);
    for (int64_t i = 0; i < ed_tensor_numel(a); i++) assert_true(isfinite(((float *)a->data)[i]));

    int64_t seen[8] = {0};
    ed_tensor *s = NULL;
    ed_gen_draw_opts o = {
        .seed = 7, .batch = 128, .sampler = {.steps = 4}, .progress = count_calls, .progress_ctx = seen};
    assert_int_equal(ed_gen_draw(&ck.model, ck.store, 300, NULL, NULL, &o, &s), ED_OK);
    assert_int_equal(seen[0], 4);
    assert_int_equal(seen[1], 0);
    assert_int_equal(seen[2], 128);
    assert_int_equal(seen[3], 256);
    assert_int_equal(seen[4], 300);
    expect_leading_rows(s, a);
    ed_tensor_free(s);
    ed_tensor_free(a), ed_tensor_free(longer), ed_tensor_free(one), ed_tensor_free(by_hand), ed_tensor_free(other);
    ed_checkpoint_free(&ck);
}

/* A conditional model: the short last batch repeats observation rows from the start,
 * and each sample depends on its own observation row only. */
static void test_conditional_batches(void **state)
{
    (void)state;
    ed_checkpoint ck;
    small_ckpt("ddpm", "demo", &ck);
    ed_dataset d;
    assert_int_equal(ed_gen_fresh_data(&ck, "demo", 64, 0, 0, &d), ED_OK);
    ed_tensor *obs50 = ed_tensor_copy(d.obs);
    obs50->shape.dim[0] = 50; /* the first 50 rows: row-major */
    ed_tensor *a = draw(&ck, 50, 16, obs50);
    ed_tensor *b = draw(&ck, 64, 16, d.obs);
    expect_leading_rows(a, b);
    assert_int_equal(a->shape.rank, 3);
    ed_tensor *c = draw(&ck, 50, 50, obs50); /* one call: other noise */
    assert_true(memcmp(a->data, c->data, ed_tensor_bytes(a)) != 0);

    ed_tensor *s = NULL;
    ed_gen_draw_opts o = {.batch = 16};
    assert_int_equal(ed_gen_draw(&ck.model, ck.store, 50, NULL, NULL, &o, &s), ED_ERR);
    CHECK_ERROR_HAS("model ddpm needs f32 observations [50, 6]");
    assert_int_equal(ed_gen_draw(&ck.model, ck.store, 64, obs50, NULL, &o, &s), ED_ERR);
    CHECK_ERROR_HAS("needs f32 observations [64, 6]");
    assert_null(s);
    ed_tensor_free(a), ed_tensor_free(b), ed_tensor_free(c), ed_tensor_free(obs50);
    ed_dataset_free(&d);
    ed_checkpoint_free(&ck);
}

static void test_draw_errors(void **state)
{
    (void)state;
    ed_checkpoint ck;
    small_ckpt("flow_matching", "moons", &ck);
    ed_tensor *s = NULL, *obs = ed_tensor_new(ED_F32, ed_shape2(10, 6));
    assert_int_equal(ed_gen_draw(&ck.model, ck.store, 10, obs, NULL, NULL, &s), ED_ERR);
    CHECK_ERROR_HAS("model flow_matching is unconditional; it takes no observations");
    assert_int_equal(ed_gen_draw(&ck.model, ck.store, 0, NULL, NULL, NULL, &s), ED_ERR);
    CHECK_ERROR_HAS("the sample count must be in 1..");
    ed_gen_draw_opts o = {.sampler = {.sampler = "ddim"}};
    assert_int_equal(ed_gen_draw(&ck.model, ck.store, 10, NULL, NULL, &o, &s), ED_ERR);
    CHECK_ERROR_HAS("unknown sampler 'ddim' (samplers: euler|midpoint|heun|rk4)");
    assert_null(s);
    char name[32];
    assert_string_equal(ed_gen_sampler_name(&ck.model, NULL, name, sizeof name), "euler");
    assert_string_equal(ed_gen_sampler_name(&ck.model, &o.sampler, name, sizeof name), "ddim");
    ed_tensor_free(obs);
    ed_checkpoint_free(&ck);
}

/* No draw hands out NaN: non-finite params (a diverged run), observations or samples
 * (finite params too large to sample with) are refused with a message. */
static void test_draw_refuses_nonfinite(void **state)
{
    (void)state;
    ed_checkpoint ck;
    small_ckpt("ddpm", "demo", &ck);
    int64_t no = ck.model.obs_size;
    ed_tensor *s = NULL, *obs = ed_tensor_new(ED_F32, ed_shape2(4, no));
    ((float *)obs->data)[no + 2] = NAN;
    assert_int_equal(ed_gen_draw(&ck.model, ck.store, 4, obs, NULL, NULL, &s), ED_ERR);
    CHECK_ERROR_HAS("observation " /* row 1, column 2 */);
    CHECK_ERROR_HAS("(row 1, column 2) is nan; observations must be finite");
    ((float *)obs->data)[no + 2] = 0;

    ed_tensor *w = NULL;
    for (int i = 0; i < ed_store_count(ck.store) && !w; i++)
        if (ed_store_trainable(ck.store, i)) w = (ed_tensor *)ed_store_tensor(ck.store, i);
    float keep = ((float *)w->data)[0];
    ((float *)w->data)[0] = INFINITY;
    assert_int_equal(ed_gen_draw(&ck.model, ck.store, 4, obs, NULL, NULL, &s), ED_ERR);
    CHECK_ERROR_HAS("holds a non-finite value at element 0; these params cannot sample");
    ((float *)w->data)[0] = keep;

    for (int i = 0; i < ed_store_count(ck.store); i++) { /* finite, but far too large */
        ed_tensor *t = (ed_tensor *)ed_store_tensor(ck.store, i);
        if (!ed_store_trainable(ck.store, i)) continue;
        for (int64_t k = 0; k < ed_tensor_numel(t); k++) ((float *)t->data)[k] = 1e30f;
    }
    assert_int_equal(ed_gen_draw(&ck.model, ck.store, 4, obs, NULL, NULL, &s), ED_ERR);
    CHECK_ERROR_HAS("the samples hold non-finite values (the first at sample 0)");
    assert_null(s);
    ed_tensor_free(obs);
    ed_checkpoint_free(&ck);
}

/* A class-conditional stand-in whose sample of class k is (k, k): shows which label
 * reached each sample. */
static ed_node *label_echo(ed_graph *g, const ed_gen_model *m, int64_t n, ed_node *obs, ed_node *labels,
                           const ed_gen_sample_opts *o)
{
    (void)g, (void)m, (void)obs, (void)o;
    return ed_broadcast_to(ed_reshape(ed_cast(labels, ED_F32), ed_shape2(n, 1)), ed_shape2(n, 2));
}

static const ed_model_def label_echo_def = {.name = "label_echo", .uses_labels = true, .sample = label_echo};

/* Labels reach the sampler per batch, wrapping as observations do; bad labels fail. */
static void test_draw_labels(void **state)
{
    (void)state;
    ed_gen_model m = {.def = &label_echo_def, .sample = ed_shape1(2), .classes = 6};
    ed_store *st = ed_store_new(0);
    ed_tensor *labels = ed_tensor_new(ED_I32, ed_shape1(5)), *s = NULL;
    static const int32_t want[5] = {3, 1, 4, 1, 5};
    memcpy(labels->data, want, sizeof want);
    ed_gen_draw_opts o = {.batch = 2, .backend = ED_BACKEND_INTERP}; /* 3 calls, the last one short */
    assert_int_equal(ed_gen_draw(&m, st, 5, NULL, labels, &o, &s), ED_OK);
    assert_int_equal(s->shape.dim[0], 5);
    for (int i = 0; i < 10; i++) assert_float_equal(((float *)s->data)[i], want[i / 2], 0);
    ed_tensor_free(s);
    s = NULL;

    assert_int_equal(ed_gen_draw(&m, st, 5, NULL, NULL, &o, &s), ED_ERR);
    CHECK_ERROR_HAS("model label_echo is class-conditional: it needs labels i32 [5]");
    assert_int_equal(ed_gen_draw(&m, st, 4, NULL, labels, &o, &s), ED_ERR);
    CHECK_ERROR_HAS("needs labels i32 [4]");
    ((int32_t *)labels->data)[2] = 6;
    assert_int_equal(ed_gen_draw(&m, st, 5, NULL, labels, &o, &s), ED_ERR);
    CHECK_ERROR_HAS("model label_echo: label 6 (sample 2) is outside 0..5");
    ((int32_t *)labels->data)[2] = -1;
    assert_int_equal(ed_gen_draw(&m, st, 5, NULL, labels, &o, &s), ED_ERR);
    CHECK_ERROR_HAS("label -1 (sample 2) is outside 0..5");
    assert_null(s);

    ed_checkpoint ck;
    small_ckpt("flow_matching", "moons", &ck);
    assert_int_equal(ed_gen_draw(&ck.model, ck.store, 5, NULL, labels, &o, &s), ED_ERR);
    CHECK_ERROR_HAS("model flow_matching is not class-conditional; it takes no labels");
    ed_checkpoint_free(&ck);
    ed_tensor_free(labels);
    ed_store_free(st);
}

/* The grid layout: row r of a grid `cols` wide is class r % classes. */
static void test_class_rows(void **state)
{
    (void)state;
    ed_tensor *t = ed_gen_class_rows(23, 3, 4);
    assert_non_null(t);
    assert_int_equal(t->shape.dim[0], 23);
    const int32_t *l = t->data;
    static const int32_t want[23] = {0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2};
    for (int i = 0; i < 23; i++) assert_int_equal(l[i], want[i]);
    ed_tensor_free(t);
    assert_null(ed_gen_class_rows(10, 0, 4));
    CHECK_ERROR_HAS("class rows: n 10, classes 0 and cols 4 must be >= 1");
}

/* The evaluation data: fresh draws for a generated set, halves of a file, a fit check. */
static void test_eval_data(void **state)
{
    (void)state;
    ed_checkpoint ck;
    small_ckpt("flow_matching", "moons", &ck);
    ed_eval_data e;
    assert_int_equal(ed_eval_data_open(&e, &ck, NULL, 200, 0), ED_OK);
    assert_int_equal(e.nfloor, ED_EVAL_FLOOR_DRAWS);
    assert_int_equal(e.n, 200);
    assert_int_equal(ed_dataset_rows(&e.ref), 200);
    assert_true(memcmp(e.ref.x->data, e.floor[0].x->data, ed_tensor_bytes(e.ref.x)) != 0);
    ed_tensor *s = draw(&ck, e.n, 64, NULL);
    ed_eval_figures f;
    assert_int_equal(ed_eval_compare(&e, s, &f), ED_OK);
    assert_true(f.swd > 0 && f.swd_floor > 0 && f.bandwidth > 0 && isfinite(f.mmd2) && isfinite(f.mmd2_floor));
    /* The floor is the data against itself: an untrained model is further away. */
    assert_true(f.swd > f.swd_floor);
    ed_tensor_free(s);
    ed_eval_data_free(&e);

    /* A file: two halves (n capped at half the rows), one floor draw. */
    ed_dataset d;
    assert_int_equal(ed_dataset_open(&d, "moons", 30, 1), ED_OK);
    const char *npy = TMP "/m.npy";
    assert_int_equal(ed_npy_write(npy, d.x), ED_OK);
    ed_dataset_free(&d);
    assert_int_equal(ed_eval_data_open(&e, &ck, npy, 100, 0), ED_OK);
    assert_int_equal(e.n, 15);
    assert_int_equal(e.nfloor, 1);
    ed_eval_data_free(&e);

    assert_int_equal(ed_eval_data_open(&e, &ck, "demo", 50, 0), ED_ERR);
    CHECK_ERROR_HAS("data demo does not fit model flow_matching of moons");
    ed_checkpoint_free(&ck);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_not_dividing_n),
        cmocka_unit_test(test_conditional_batches),
        cmocka_unit_test(test_draw_errors),
        cmocka_unit_test(test_draw_refuses_nonfinite),
        cmocka_unit_test(test_draw_labels),
        cmocka_unit_test(test_class_rows),
        cmocka_unit_test(test_eval_data),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
