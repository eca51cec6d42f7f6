/* VQ-VAE's builders: options, the quantizer against a hand-built codebook, the
 * codebook's size, gradient and movement (loss mode) and its EMA update with a dead
 * code restarted (checked against the formula), the straight-through gradient, a
 * short training run, the prior's NLL falling on codes with structure, frozen groups,
 * samples, and the perplexity helper. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "backend/backend.h"
#include "models/train_step.h"
#include "frontend/nn.h"
#include "models/vqvae.h"
#include "passes/autodiff.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define D 16 /* 4x4 images */

static ed_vqvae_opts small_opts(void)
{
    ed_vqvae_opts o;
    ed_vqvae_defaults(&o);
    o.data_dim = D;
    o.codes = 2;
    o.num_embeddings = 8;
    o.embedding_dim = 4;
    o.encoder_sizes = (ed_sizes){1, {32}};
    o.decoder_sizes = (ed_sizes){1, {32}};
    o.prior_width = 16;
    o.prior_layers = 1;
    o.prior_heads = 2;
    return o;
}

static ed_program *compile(ed_graph *g, ed_store *st, ed_backend be)
{
    if (ed_graph_error(g)) fail_msg("%s", ed_graph_error(g));
    ed_program *p = ed_compile(g, st, &(ed_compile_opts){.backend = be});
    if (!p) fail_msg("%s", ed_last_error());
    return p;
}

static void run(ed_program *p, const char *name, const ed_tensor *t)
{
    int rc = t ? ed_run(p, (ed_feed[]){{name, t}}, 1) : ed_run(p, NULL, 0);
    if (rc != ED_OK) fail_msg("%s", ed_last_error());
}

static const float *out_f32(ed_program *p, const char *name)
{
    const ed_tensor *t = ed_program_output(p, name);
    if (!t) fail_msg("no output %s", name);
    return t->data;
}

/* Four 4x4 patterns (rows, columns, diagonal, border) with pixels 0.05 / 0.95 and
 * +-0.05 of deterministic jitter: row r is pattern r % 4. */
static ed_tensor *patterns(int64_t rows)
{
    ed_tensor *t = ed_tensor_new(ED_F32, ed_shape2(rows, D));
    float *x = t->data;
    uint32_t h = 12345;
    for (int64_t r = 0; r < rows; r++)
        for (int i = 0; i < D; i++) {
            int y = i / 4, c = i % 4;
            bool on[4] = {y % 2 == 0, c % 2 == 0, y == c, y == 0 || y == 3 || c == 0 || c == 3};
            h = h * 1664525u + 1013904223u;
            float jitter = ((float)(h >> 8) / 16777216.0f - 0.5f) * 0.1f;
            x[r * D + i] = (on[r % 4] ? 0.95f : 0.05f) + jitter;
        }
    return t;
}

static ed_tensor *copy_of(const ed_store *st, const char *name)
{
    const ed_tensor *t = ed_store_get(st, name);
    if (!t) fail_msg("store has no %s", name);
    return ed_tensor_copy(t);
}

static double max_abs_diff(const ed_tensor *a, const ed_tensor *b)
{
    double m = 0;
    for (int64_t i = 0; i < ed_tensor_numel(a); i++) m = fmax(m, fabs(ed_tensor_get(a, i) - ed_tensor_get(b, i)));
    return m;
}

static bool store_trainable(const ed_store *st, const char *name)
{
    for (int i = 0; i < ed_store_count(st); i++)
        if (strcmp(ed_store_name(st, i), name) == 0) return ed_store_trainable(st, i);
    fail_msg("store has no %s", name);
    return false;
}

/* ---- options ------------------------------------------------------------------------ */

static void test_defaults(void **state)
{
    (void)state;
    ed_vqvae_opts o;
    ed_vqvae_defaults(&o);
    assert_int_equal(o.data_dim, 0);
    assert_int_equal(o.codes, 4);
    assert_int_equal(o.num_embeddings, 64);
    assert_int_equal(o.embedding_dim, 16);
    assert_int_equal(o.encoder_sizes.n, 2);
    assert_int_equal(o.encoder_sizes.v[0], 256);
    assert_int_equal(o.encoder_sizes.v[1], 128);
    assert_int_equal(o.decoder_sizes.v[0], 128);
    assert_int_equal(o.decoder_sizes.v[1], 256);
    assert_int_equal(o.activation, ED_ACT_RELU);
    assert_float_equal(o.commitment, 0.25, 0);
    assert_int_equal(o.codebook_update, ED_VQ_UPDATE_LOSS);
    assert_float_equal(o.ema_decay, 0.99, 0);
    assert_int_equal(ed_options_set(ed_vqvae_options, ED_VQVAE_NOPTIONS, &o, "codebook_update", "ema"), ED_OK);
    assert_int_equal(o.codebook_update, ED_VQ_UPDATE_EMA);
    assert_int_equal(ed_options_set(ed_vqvae_options, ED_VQVAE_NOPTIONS, &o, "num_embeddings", "1"), ED_ERR);
    assert_non_null(strstr(ed_last_error(), "num_embeddings"));
    assert_int_equal(ed_options_set(ed_vqvae_options, ED_VQVAE_NOPTIONS, &o, "activation", "swish"), ED_ERR);
}

/* ---- quantizer ---------------------------------------------------------------------- */

static void quantize_case(ed_backend be)
{
    ed_graph *g = ed_graph_new("quantize");
    ed_node *z = ed_input(g, "z", ED_F32, ed_shape3(2, 3, 2));
    ed_node *cb = ed_input(g, "codebook", ED_F32, ed_shape2(4, 2));
    ed_node *idx = ed_vqvae_nearest(z, cb);
    ed_output(g, "idx", idx);
    ed_output(g, "z_q", ed_gather(cb, idx, 0));
    ed_store *st = ed_store_new(0);
    ed_program *p = compile(g, st, be);

    const float code[4][2] = {{0, 0}, {1, 0}, {0, 1}, {-1, -1}};
    /* The last vector is as far from codes 0, 1 and 2: the first index wins. */
    const float vec[6][2] = {{0.1f, -0.1f}, {0.9f, 0.2f}, {-0.2f, 1.4f}, {-2, -0.5f}, {5, 0.1f}, {0.5f, 0.5f}};
    const int want[6] = {0, 1, 2, 3, 1, 0};
    ed_tensor *zv = ed_tensor_new(ED_F32, ed_shape3(2, 3, 2)), *cv = ed_tensor_new(ED_F32, ed_shape2(4, 2));
    memcpy(zv->data, vec, sizeof vec);
    memcpy(cv->data, code, sizeof code);
    assert_int_equal(ed_run(p, (ed_feed[]){{"z", zv}, {"codebook", cv}}, 2), ED_OK);
    const int32_t *got = ed_program_output(p, "idx")->data;
    const float *zq = out_f32(p, "z_q");
    for (int i = 0; i < 6; i++) {
        if (got[i] != want[i]) fail_msg("vector %d: code %d, want %d", i, got[i], want[i]);
        assert_float_equal(zq[2 * i], code[want[i]][0], 0);
        assert_float_equal(zq[2 * i + 1], code[want[i]][1], 0);
    }
    assert_int_equal(ed_program_output(p, "idx")->shape.rank, 2);
    ed_tensor_free(zv), ed_tensor_free(cv);
    ed_program_free(p), ed_store_free(st), ed_graph_free(g);
}

static void test_quantize_picks_nearest(void **state)
{
    (void)state;
    quantize_case(ED_BACKEND_INTERP);
    quantize_case(ED_BACKEND_JIT);
}

/* num_embeddings really sizes the codebook (Edifice ignores it), as a param in the
 * loss mode and as state (with its EMA counts) in the EMA mode. */
static void test_codebook_sized_by_option(void **state)
{
    (void)state;
    for (int mode = 0; mode < ED_VQ_UPDATE_COUNT; mode++) {
        ed_vqvae_opts o = small_opts();
        o.num_embeddings = 37;
        o.embedding_dim = 3;
        o.codebook_update = mode;
        ed_graph *g = ed_graph_new("size");
        ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(5, D));
        ed_output(g, "loss", ed_vqvae_loss(g, x, &o));
        ed_store *st = ed_store_new(0);
        ed_program *p = compile(g, st, ED_BACKEND_INTERP);
        const ed_tensor *cb = ed_store_get(st, "vq.codebook");
        assert_non_null(cb);
        assert_int_equal(cb->shape.dim[0], 37);
        assert_int_equal(cb->shape.dim[1], 3);
        assert_int_equal(store_trainable(st, "vq.codebook"), mode == ED_VQ_UPDATE_LOSS);
        const ed_tensor *count = ed_store_get(st, "vq.ema.count");
        if (mode == ED_VQ_UPDATE_EMA) assert_int_equal(count->shape.dim[0], 37);
        else assert_null(count);
        ed_program_free(p), ed_store_free(st), ed_graph_free(g);
    }
}

/* ---- gradients ------------------------------------------------------------------------ */

/* Loss mode: the codebook's gradient is nonzero exactly on the rows some vector picked,
 * and a few optimizer steps of step "train" move the codebook. */
static void test_codebook_gradient_and_moves(void **state)
{
    (void)state;
    ed_vqvae_opts o = small_opts();
    ed_graph *g = ed_graph_new("codebook_grad");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(16, D));
    ed_vqvae_pass pass;
    assert_int_equal(ed_vqvae_forward(g, x, &o, &pass), ED_OK);
    ed_node *loss = ed_vqvae_loss(g, x, &o);
    ed_output(g, "grad", ed_grad1(loss, ed_graph_leaf(g, ED_OP_PARAM, "vq.codebook")));
    ed_output(g, "idx", pass.indices);
    ed_store *st = ed_store_new(0);
    ed_program *p = compile(g, st, ED_BACKEND_INTERP);
    ed_tensor *xv = patterns(16);
    run(p, "x", xv);
    const float *grad = out_f32(p, "grad");
    const int32_t *idx = ed_program_output(p, "idx")->data;
    bool used[8] = {0};
    for (int i = 0; i < 16 * 2; i++) used[idx[i]] = true;
    int nonzero_rows = 0;
    for (int k = 0; k < 8; k++) {
        double norm = 0;
        for (int e = 0; e < 4; e++) norm += fabs(grad[k * 4 + e]);
        if (used[k] && norm == 0) fail_msg("code %d is used but has no gradient", k);
        if (!used[k] && norm != 0) fail_msg("code %d is unused but has gradient %g", k, norm);
        nonzero_rows += norm > 0;
    }
    assert_true(nonzero_rows >= 1);
    ed_program_free(p), ed_graph_free(g);

    /* Step "train" over the registry's groups moves it. */
    ed_graph *t = ed_graph_new("train");
    x = ed_input(t, "x", ED_F32, ed_shape2(16, D));
    const char *const groups[] = {"vq.enc.", "vq.dec.", "vq.codebook", NULL};
    assert_int_equal(ed_train_step(t, ed_vqvae_loss(t, x, &o),
                                   &(ed_train_opts){.optim = {.kind = ED_OPT_ADAM, .lr = 1e-2}, .groups = groups}),
                     ED_OK);
    ed_tensor *before = copy_of(st, "vq.codebook");
    p = compile(t, st, ED_BACKEND_INTERP);
    for (int s = 0; s < 5; s++) run(p, "x", xv);
    double moved = max_abs_diff(before, ed_store_get(st, "vq.codebook"));
    if (!(moved > 1e-3)) fail_msg("the codebook moved by %g in 5 steps", moved);
    ed_tensor_free(before), ed_tensor_free(xv);
    ed_program_free(p), ed_store_free(st), ed_graph_free(t);
}

/* The reconstruction's gradient reaches the encoder through the straight-through
 * estimator (it equals the gradient at the decoder's input) and leaves the codebook
 * alone. */
static void test_straight_through(void **state)
{
    (void)state;
    ed_vqvae_opts o = small_opts();
    ed_graph *g = ed_graph_new("straight_through");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(8, D));
    ed_vqvae_pass p;
    assert_int_equal(ed_vqvae_forward(g, x, &o, &p), ED_OK);
    ed_node *recon = ed_mean(ed_square(ed_sub(ed_sigmoid(p.logits), x)), ED_ALL_AXES, false);
    ed_node *wrt[4] = {p.z_e, p.z_q_st, ed_graph_leaf(g, ED_OP_PARAM, "vq.enc.0.w"),
                       ed_graph_leaf(g, ED_OP_PARAM, "vq.codebook")};
    ed_node *grads[4];
    assert_non_null(wrt[2]);
    assert_int_equal(ed_grad(recon, wrt, 4, grads), ED_OK);
    ed_output(g, "g_ze", grads[0]);
    ed_output(g, "g_st", grads[1]);
    ed_output(g, "g_enc", ed_sum(ed_abs(grads[2]), ED_ALL_AXES, false));
    ed_output(g, "g_cb", ed_sum(ed_abs(grads[3]), ED_ALL_AXES, false));
    ed_store *st = ed_store_new(0);
    ed_program *prog = compile(g, st, ED_BACKEND_INTERP);
    ed_tensor *xv = patterns(8);
    run(prog, "x", xv);
    const float *gze = out_f32(prog, "g_ze"), *gst = out_f32(prog, "g_st");
    double size = 0;
    for (int i = 0; i < 8 * 2 * 4; i++) {
        assert_float_equal(gze[i], gst[i], 1e-9);
        size += fabs(gst[i]);
    }
    assert_true(size > 0);
    assert_true(out_f32(prog, "g_enc")[0] > 0);
    assert_float_equal(out_f32(prog, "g_cb")[0], 0, 0);
    ed_tensor_free(xv);
    ed_program_free(prog), ed_store_free(st), ed_graph_free(g);
}

/* ---- EMA ------------------------------------------------------------------------------ */

/* One EMA step against the formula: codes 0..2 start at encoder outputs of the batch
 * (so they are used) with count 5, code 3 far away with count 0.5 (dead below 1).
 * Live codes move to (d N e + (1 - d) s) / (d N + (1 - d) n); code 3 becomes one of
 * the batch's z_e rows with count 1. */
static void test_ema_update_and_restart(void **state)
{
    (void)state;
    enum { B = 8, G = 2, K = 4, E = 4 };
    ed_vqvae_opts o = small_opts();
    o.num_embeddings = K;
    o.codebook_update = ED_VQ_UPDATE_EMA;
    o.ema_decay = 0.5;
    o.restart_below = 1;
    ed_store *st = ed_store_new(0);
    ed_tensor *xv = patterns(B);

    /* The batch's encoder outputs, to seed the codebook. */
    ed_graph *f = ed_graph_new("encode");
    ed_output(f, "z_e", ed_vqvae_encode(ed_input(f, "x", ED_F32, ed_shape2(B, D)), &o));
    ed_program *p = compile(f, st, ED_BACKEND_INTERP);
    run(p, "x", xv);
    ed_tensor *cb = ed_tensor_new(ED_F32, ed_shape2(K, E)), *count = ed_tensor_new(ED_F32, ed_shape1(K));
    float *c = cb->data, *n = count->data;
    const float *z0 = out_f32(p, "z_e");
    for (int k = 0; k < 3; k++) memcpy(c + k * E, z0 + (5 * k) * E, E * sizeof *c); /* rows 0, 5, 10 */
    for (int e = 0; e < E; e++) c[3 * E + e] = 1000;
    n[0] = n[1] = n[2] = 5, n[3] = 0.5f;
    ed_program_free(p), ed_graph_free(f);
    ed_store_put(st, "vq.codebook", ed_tensor_copy(cb), false);
    ed_store_put(st, "vq.ema.count", ed_tensor_copy(count), false);

    ed_graph *g = ed_graph_new("ema");
    ed_vqvae_pass pass;
    assert_int_equal(ed_vqvae_forward(g, ed_input(g, "x", ED_F32, ed_shape2(B, D)), &o, &pass), ED_OK);
    assert_int_equal(ed_vqvae_ema_update(g, &pass, &o), ED_OK);
    ed_output(g, "z_e", pass.z_e);
    ed_output(g, "idx", pass.indices);
    p = compile(g, st, ED_BACKEND_INTERP);
    run(p, "x", xv);
    const float *z = out_f32(p, "z_e");
    const int32_t *idx = ed_program_output(p, "idx")->data;
    const float *c1 = ed_store_get(st, "vq.codebook")->data, *n1 = ed_store_get(st, "vq.ema.count")->data;

    double d = o.ema_decay;
    for (int k = 0; k < 3; k++) {
        double cnt = 0, sum[E] = {0};
        for (int i = 0; i < B * G; i++)
            if (idx[i] == k) {
                cnt++;
                for (int e = 0; e < E; e++) sum[e] += z[i * E + e];
            }
        assert_true(cnt >= 1); /* its own row picks it */
        double want_n = d * n[k] + (1 - d) * cnt;
        assert_float_equal(n1[k], want_n, 1e-5);
        for (int e = 0; e < E; e++)
            assert_float_equal(c1[k * E + e], (d * n[k] * c[k * E + e] + (1 - d) * sum[e]) / want_n, 1e-5);
    }
    assert_float_equal(n1[3], 1, 0);
    bool is_row = false;
    for (int i = 0; i < B * G && !is_row; i++) is_row = memcmp(c1 + 3 * E, z + i * E, E * sizeof *z) == 0;
    if (!is_row) fail_msg("code 3 was not restarted at a z_e row: [%g %g %g %g]", c1[12], c1[13], c1[14], c1[15]);
    assert_true(max_abs_diff(cb, ed_store_get(st, "vq.codebook")) > 1e-3);
    ed_tensor_free(cb), ed_tensor_free(count), ed_tensor_free(xv);
    ed_program_free(p), ed_graph_free(g);

    /* The update refuses a codebook param (loss mode). */
    o.codebook_update = ED_VQ_UPDATE_LOSS;
    g = ed_graph_new("ema_on_param");
    assert_int_equal(ed_vqvae_forward(g, ed_input(g, "x", ED_F32, ed_shape2(B, D)), &o, &pass), ED_OK);
    assert_int_equal(ed_vqvae_ema_update(g, &pass, &o), ED_ERR);
    assert_non_null(strstr(ed_graph_error(g), "codebook_update = ema"));
    ed_graph_free(g), ed_store_free(st);
}

/* ---- training --------------------------------------------------------------------------- */

/* Mean per-image reconstruction MSE of x under the store's weights. */
static double recon_mse(ed_store *st, const ed_vqvae_opts *o, const ed_tensor *x)
{
    ed_graph *g = ed_graph_new("eval");
    ed_output(g, "mse", ed_vqvae_recon_mse(g, ed_input(g, "x", ED_F32, x->shape), o));
    ed_program *p = compile(g, st, ED_BACKEND_INTERP);
    run(p, "x", x);
    const ed_tensor *m = ed_program_output(p, "mse");
    assert_int_equal(m->shape.rank, 1);
    assert_int_equal(m->shape.dim[0], x->shape.dim[0]);
    double s = 0;
    for (int64_t i = 0; i < x->shape.dim[0]; i++) s += ed_tensor_get(m, i);
    ed_program_free(p), ed_graph_free(g);
    return s / (double)x->shape.dim[0];
}

/* Step "train" for steps on batches of 32 cut from data (cycling). */
static void train(ed_store *st, const ed_vqvae_opts *o, const ed_tensor *data, int steps, ed_backend be)
{
    ed_graph *g = ed_graph_new("train");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(32, D));
    const char *const groups[] = {"vq.enc.", "vq.dec.", "vq.codebook", NULL};
    assert_int_equal(ed_train_step(g, ed_vqvae_loss(g, x, o),
                                   &(ed_train_opts){.optim = {.kind = ED_OPT_ADAM, .lr = 3e-3}, .groups = groups}),
                     ED_OK);
    ed_program *p = compile(g, st, be);
    ed_tensor *xb = ed_tensor_new(ED_F32, ed_shape2(32, D));
    int64_t rows = data->shape.dim[0];
    for (int s = 0; s < steps; s++) {
        int64_t start = (s * 32) % rows;
        memcpy(xb->data, (const float *)data->data + start * D, 32 * D * sizeof(float));
        run(p, "x", xb);
        double loss = ed_tensor_get(ed_program_output(p, "loss"), 0);
        if (!isfinite(loss)) fail_msg("step %d: loss %g", s, loss);
    }
    ed_tensor_free(xb);
    ed_program_free(p), ed_graph_free(g);
}

static void test_training_lowers_recon(void **state)
{
    (void)state;
    ed_tensor *data = patterns(256), *test = patterns(64);
    for (int mode = 0; mode < ED_VQ_UPDATE_COUNT; mode++) {
        ed_vqvae_opts o = small_opts();
        o.codebook_update = mode;
        ed_store *st = ed_store_new(1);
        double before = recon_mse(st, &o, test);
        train(st, &o, data, 300, mode == ED_VQ_UPDATE_LOSS ? ED_BACKEND_JIT : ED_BACKEND_INTERP);
        double after = recon_mse(st, &o, test);
        if (!(after < 0.25 * before && after < 0.02))
            fail_msg("%s mode: recon MSE %g before, %g after 300 steps", mode ? "ema" : "loss", before, after);
        ed_store_free(st);
    }
    ed_tensor_free(data), ed_tensor_free(test);
}

/* ---- prior ------------------------------------------------------------------------------- */

/* Codes with structure: c, c + 1, ... (mod K) from a uniform c, so -log p = log K
 * (2.08 nats for K = 8) under the true law against G log K (8.3 for G = 4) uniformly. */
static ed_tensor *runs_of_codes(int64_t rows, int g, int k)
{
    ed_tensor *t = ed_tensor_new(ED_I32, ed_shape2(rows, g));
    int32_t *v = t->data;
    for (int64_t r = 0; r < rows; r++)
        for (int i = 0; i < g; i++) v[r * g + i] = (int32_t)((r * 5 + r / 8 + i) % k);
    return t;
}

static void test_prior_learns_structure(void **state)
{
    (void)state;
    ed_vqvae_opts o = small_opts();
    o.codes = 4;
    ed_store *st = ed_store_new(2);
    ed_graph *g = ed_graph_new("prior");
    ed_node *nll = ed_vqvae_prior_nll_indices(ed_input(g, "idx", ED_I32, ed_shape2(64, 4)), &o);
    ed_output(g, "nll", nll);
    const char *const groups[] = {"vq.prior.", NULL};
    assert_int_equal(ed_train_step(g, ed_mean(nll, ED_ALL_AXES, false),
                                   &(ed_train_opts){.optim = {.kind = ED_OPT_ADAM, .lr = 1e-2}, .groups = groups}),
                     ED_OK);
    ed_program *p = compile(g, st, ED_BACKEND_JIT);
    ed_tensor *codes = runs_of_codes(64, 4, 8);
    run(p, "idx", codes);
    double first = ed_tensor_get(ed_program_output(p, "loss"), 0);
    for (int s = 0; s < 150; s++) run(p, "idx", codes);
    double last = ed_tensor_get(ed_program_output(p, "loss"), 0);
    if (!(first > 7 && last < 2.6))
        fail_msg("prior NLL %g nats at the start, %g after 150 steps (log 8 = 2.08)", first, last);
    ed_program_free(p), ed_graph_free(g), ed_tensor_free(codes);

    /* Its samples follow the rule: each code is the one before plus 1 (mod 8). */
    g = ed_graph_new("sample_codes");
    ed_output(g, "codes", ed_vqvae_sample_indices(g, 200, &o));
    p = compile(g, st, ED_BACKEND_INTERP);
    run(p, NULL, NULL);
    const ed_tensor *s = ed_program_output(p, "codes");
    assert_int_equal(s->dtype, ED_I32);
    assert_int_equal(s->shape.dim[0], 200);
    assert_int_equal(s->shape.dim[1], 4);
    const int32_t *c = s->data;
    int follow = 0;
    int64_t used;
    for (int r = 0; r < 200; r++) {
        bool ok = true;
        for (int i = 1; i < 4; i++) ok &= c[r * 4 + i] == (c[r * 4 + i - 1] + 1) % 8;
        follow += ok;
    }
    double ppl = ed_vqvae_perplexity(c, 200 * 4, 8, &used);
    if (follow < 180) fail_msg("%d of 200 sampled grids follow the rule", follow);
    assert_int_equal(used, 8); /* and the first code is not stuck */
    assert_true(ppl > 6);
    ed_program_free(p), ed_graph_free(g), ed_store_free(st);
}

/* Step "prior" on data x trains only "vq.prior.*": the encoder and codebook stay
 * bit for bit, and ed_vqvae_prior_nll is the NLL of the encoder's codes. */
static void test_prior_step_freezes_autoencoder(void **state)
{
    (void)state;
    ed_vqvae_opts o = small_opts();
    ed_store *st = ed_store_new(3);
    ed_graph *g = ed_graph_new("prior_step");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(16, D));
    ed_output(g, "nll", ed_vqvae_prior_nll(g, x, &o));
    ed_output(g, "nll_of_codes", ed_vqvae_prior_nll_indices(ed_vqvae_encode_indices(x, &o), &o));
    const char *const groups[] = {"vq.prior.", NULL};
    assert_int_equal(ed_train_step(g, ed_vqvae_prior_loss(g, x, &o),
                                   &(ed_train_opts){.optim = {.kind = ED_OPT_ADAM, .lr = 1e-2}, .groups = groups}),
                     ED_OK);
    ed_program *p = compile(g, st, ED_BACKEND_INTERP);
    ed_tensor *enc = copy_of(st, "vq.enc.0.w"), *cb = copy_of(st, "vq.codebook"), *out = copy_of(st, "vq.prior.out.w");
    ed_tensor *xv = patterns(16);
    for (int s = 0; s < 3; s++) run(p, "x", xv);
    const float *a = out_f32(p, "nll"), *b = out_f32(p, "nll_of_codes");
    for (int i = 0; i < 16; i++) {
        assert_true(isfinite(a[i]) && a[i] > 0);
        assert_float_equal(a[i], b[i], 0);
    }
    assert_float_equal(max_abs_diff(enc, ed_store_get(st, "vq.enc.0.w")), 0, 0);
    assert_float_equal(max_abs_diff(cb, ed_store_get(st, "vq.codebook")), 0, 0);
    assert_true(max_abs_diff(out, ed_store_get(st, "vq.prior.out.w")) > 1e-4);
    assert_null(ed_store_get(st, "opt.m.vq.enc.0.w"));
    ed_tensor_free(enc), ed_tensor_free(cb), ed_tensor_free(out), ed_tensor_free(xv);
    ed_program_free(p), ed_graph_free(g), ed_store_free(st);
}

/* ---- sampling and decoding ------------------------------------------------------------- */

static void sample_case(ed_backend be)
{
    ed_vqvae_opts o = small_opts();
    ed_store *st = ed_store_new(4);
    ed_graph *g = ed_graph_new("sample");
    ed_output(g, "x", ed_vqvae_sample(g, 10, &o));
    ed_tensor *codes = ed_tensor_new(ED_I32, ed_shape2(3, 2));
    int32_t *c = codes->data;
    for (int i = 0; i < 6; i++) c[i] = i % 8;
    ed_output(g, "decoded", ed_vqvae_decode_indices(ed_input(g, "codes", ED_I32, ed_shape2(3, 2)), &o));
    ed_program *p = compile(g, st, be);
    run(p, "codes", codes);
    const ed_tensor *x = ed_program_output(p, "x");
    assert_int_equal(x->dtype, ED_F32);
    assert_int_equal(x->shape.rank, 2);
    assert_int_equal(x->shape.dim[0], 10);
    assert_int_equal(x->shape.dim[1], D);
    ed_tensor *first = ed_tensor_copy(x);
    for (int64_t i = 0; i < 10 * D; i++) {
        double v = ed_tensor_get(x, i);
        if (!(v >= 0 && v <= 1)) fail_msg("sample value %lld is %g", (long long)i, v);
    }
    const ed_tensor *dec = ed_program_output(p, "decoded");
    assert_int_equal(dec->shape.dim[0], 3);
    for (int64_t i = 0; i < 3 * D; i++) assert_true(ed_tensor_get(dec, i) >= 0 && ed_tensor_get(dec, i) <= 1);
    run(p, "codes", codes);
    assert_true(max_abs_diff(first, ed_program_output(p, "x")) > 0); /* a new call draws anew */
    ed_tensor_free(first), ed_tensor_free(codes);
    ed_program_free(p), ed_graph_free(g), ed_store_free(st);
}

static void test_sample_shape_and_range(void **state)
{
    (void)state;
    sample_case(ED_BACKEND_INTERP);
    sample_case(ED_BACKEND_JIT);
}

/* ---- perplexity and errors ------------------------------------------------------------- */

static void test_perplexity(void **state)
{
    (void)state;
    int64_t used;
    assert_float_equal(ed_vqvae_perplexity((int32_t[]){2, 2, 2, 2}, 4, 4, &used), 1, 1e-12);
    assert_int_equal(used, 1);
    assert_float_equal(ed_vqvae_perplexity((int32_t[]){0, 1, 2, 3}, 4, 4, &used), 4, 1e-12);
    assert_int_equal(used, 4);
    assert_float_equal(ed_vqvae_perplexity((int32_t[]){0, 3, 0, 3}, 4, 8, &used), 2, 1e-12);
    assert_int_equal(used, 2);
    /* p = (3/4, 1/4): exp(-(0.75 log 0.75 + 0.25 log 0.25)) = 1.7547654... */
    assert_float_equal(ed_vqvae_perplexity((int32_t[]){1, 1, 1, 0}, 4, 2, NULL), 1.7547653760398644, 1e-12);
    assert_true(isnan(ed_vqvae_perplexity((int32_t[]){0, 4}, 2, 4, &used)));
    assert_non_null(strstr(ed_last_error(), "index 1 is 4, outside [0, 4)"));
    assert_int_equal(used, 0);
    assert_true(isnan(ed_vqvae_perplexity((int32_t[]){0}, 0, 4, NULL)));
    assert_true(isnan(ed_vqvae_perplexity((int32_t[]){-1}, 1, 4, NULL)));
}

static void expect_graph_error(ed_graph *g, const char *part)
{
    const char *e = ed_graph_error(g);
    if (!e || !strstr(e, part)) fail_msg("graph error '%s', want it to contain '%s'", e ? e : "(none)", part);
    ed_graph_free(g);
}

static void test_errors(void **state)
{
    (void)state;
    ed_vqvae_opts o = small_opts();
    ed_graph *g = ed_graph_new("e");
    assert_null(ed_vqvae_loss(g, ed_input(g, "x", ED_F32, ed_shape2(4, D + 1)), &o));
    expect_graph_error(g, "x is f32[4,17], needs f32[B, 16]");

    o.prior_heads = 3;
    g = ed_graph_new("e");
    assert_null(ed_vqvae_sample(g, 2, &o));
    expect_graph_error(g, "prior_heads dividing prior_width");

    o = small_opts();
    g = ed_graph_new("e");
    assert_null(ed_vqvae_decode_indices(ed_input(g, "c", ED_F32, ed_shape2(4, 2)), &o));
    expect_graph_error(g, "need i32[B, 2]");

    g = ed_graph_new("e");
    assert_null(ed_vqvae_prior_nll_indices(ed_input(g, "c", ED_I32, ed_shape2(4, 3)), &o));
    expect_graph_error(g, "need i32[B, 2]");

    o.data_dim = 0;
    g = ed_graph_new("e");
    assert_null(ed_vqvae_encode(ed_input(g, "x", ED_F32, ed_shape2(4, D)), &o));
    expect_graph_error(g, "must be >= 1");

    o = small_opts();
    g = ed_graph_new("e");
    assert_null(ed_vqvae_sample(g, 0, &o));
    expect_graph_error(g, "n = 0");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_quantize_picks_nearest),
        cmocka_unit_test(test_codebook_sized_by_option),
        cmocka_unit_test(test_codebook_gradient_and_moves),
        cmocka_unit_test(test_straight_through),
        cmocka_unit_test(test_ema_update_and_restart),
        cmocka_unit_test(test_training_lowers_recon),
        cmocka_unit_test(test_prior_learns_structure),
        cmocka_unit_test(test_prior_step_freezes_autoencoder),
        cmocka_unit_test(test_sample_shape_and_range),
        cmocka_unit_test(test_perplexity),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
