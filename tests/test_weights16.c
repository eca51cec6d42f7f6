/* 16-bit weights (runtime/half.h, docs/ARCHITECTURE.md): the conversions round to
 * nearest even and keep infinities, NaN and f16's subnormals; a matmul of a bf16/f16
 * weight agrees between the interpreter (widen, then double) and the JIT's GEMV; the
 * storage types are refused everywhere else, and by grad; samples drawn with 16-bit
 * weights stay within the stated tolerance of the f32 ones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "frontend/frontend.h"
#include "models/generate.h"
#include "passes/autodiff.h"
#include "runtime/half.h"
#include "support/small_checkpoint.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TMP ED_BINARY_DIR "/test_weights16_tmp"
/* Samples with 16-bit weights vs f32: max abs difference over (1 + max abs sample). */
#define BF16_TOL 3e-3
#define F16_TOL 5e-4

static float f(uint32_t bits)
{
    float v;
    memcpy(&v, &bits, 4);
    return v;
}

static void test_bf16_rounding(void **state)
{
    (void)state;
    assert_int_equal(ed_f32_to_bf16(1.0f), 0x3f80);
    assert_int_equal(ed_f32_to_bf16(f(0x3f808000)), 0x3f80); /* tie, even below */
    assert_int_equal(ed_f32_to_bf16(f(0x3f818000)), 0x3f82); /* tie, even above */
    assert_int_equal(ed_f32_to_bf16(f(0x3f808001)), 0x3f81); /* above the tie */
    assert_int_equal(ed_f32_to_bf16(-2.0f), 0xc000);
    assert_int_equal(ed_f32_to_bf16(INFINITY), 0x7f80);
    assert_int_equal(ed_f32_to_bf16(-INFINITY), 0xff80);
    assert_int_equal(ed_f32_to_bf16(f(0x7f7fffff)), 0x7f80); /* FLT_MAX rounds to infinity */
    assert_true(isnan(ed_bf16_to_f32(ed_f32_to_bf16(NAN))));
    assert_true(isnan(ed_bf16_to_f32(ed_f32_to_bf16(f(0x7f800001))))); /* a NaN whose payload is in the low bits */
    assert_int_equal(ed_f32_to_bf16(-0.0f), 0x8000);
    /* every bf16 value widens and narrows back to itself */
    for (uint32_t h = 0; h < 65536; h++) {
        float v = ed_bf16_to_f32((uint16_t)h);
        if (!isnan(v)) assert_int_equal(ed_f32_to_bf16(v), h);
    }
}

static void test_f16_rounding(void **state)
{
    (void)state;
    assert_int_equal(ed_f32_to_f16(1.0f), 0x3c00);
    assert_int_equal(ed_f32_to_f16(65504.0f), 0x7bff);
    assert_int_equal(ed_f32_to_f16(65519.0f), 0x7bff);
    assert_int_equal(ed_f32_to_f16(65520.0f), 0x7c00); /* the tie above the largest rounds to infinity */
    assert_int_equal(ed_f32_to_f16(-1e10f), 0xfc00);
    assert_int_equal(ed_f32_to_f16(1.0f + 0x1p-11f), 0x3c00);     /* tie, even below */
    assert_int_equal(ed_f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3c02); /* tie, even above */
    assert_int_equal(ed_f32_to_f16(0x1p-14f), 0x0400);            /* smallest normal */
    assert_int_equal(ed_f32_to_f16(0x1p-24f), 0x0001);            /* smallest subnormal */
    assert_int_equal(ed_f32_to_f16(0x1p-25f), 0x0000);            /* tie, to even zero */
    assert_int_equal(ed_f32_to_f16(0x1.8p-25f), 0x0001);          /* above the tie */
    assert_int_equal(ed_f32_to_f16(3 * 0x1p-25f), 0x0002);        /* 1.5 units: tie, up to even */
    assert_int_equal(ed_f32_to_f16(-0x1p-30f), 0x8000);           /* underflow keeps the sign */
    assert_int_equal(ed_f32_to_f16(0x1p-14f - 0x1p-25f), 0x0400); /* rounds up into the normals */
    assert_true(ed_f16_to_f32(0x0001) == 0x1p-24f);
    assert_true(ed_f16_to_f32(0x83ff) == -1023 * 0x1p-24f);
    assert_true(isinf(ed_f16_to_f32(0x7c00)));
    assert_true(isnan(ed_f16_to_f32(ed_f32_to_f16(NAN))));
    assert_true(isnan(ed_f16_to_f32(ed_f32_to_f16(f(0x7f800001)))));
    for (uint32_t h = 0; h < 65536; h++) {
        float v = ed_f16_to_f32((uint16_t)h);
        if (!isnan(v)) assert_int_equal(ed_f32_to_f16(v), h);
    }
}

/* y = x @ w16 on both backends, w16 a param of the given 16-bit dtype (the store's
 * initializer, then rounded): the JIT's widening GEMV against the interpreter. */
static void compare_matmul(ed_dtype wdt, int64_t m, int64_t k, int64_t n, bool ta)
{
    ed_graph *g = ed_graph_new("mm16");
    ed_node *x = ed_input(g, "x", ED_F32, ta ? ed_shape2(k, m) : ed_shape2(m, k));
    ed_node *w = ed_param(g, "w", wdt, ed_shape2(k, n), (ed_init){ED_INIT_NORMAL, 1.0});
    ed_output(g, "y", ed_matmul_t(x, w, ta, false));
    assert_null(ed_graph_error(g));
    ed_tensor *xt = ed_tensor_new(ED_F32, x->shape);
    for (int64_t i = 0; i < ed_tensor_numel(xt); i++) ((float *)xt->data)[i] = (float)((i * 37 % 23) - 11) / 7.0f;
    ed_store *si = ed_store_new(3), *sj = ed_store_new(3);
    ed_program *pi = ed_compile(g, si, &(ed_compile_opts){.backend = ED_BACKEND_INTERP});
    ed_program *pj = ed_compile(g, sj, &(ed_compile_opts){.backend = ED_BACKEND_JIT});
    if (!pi || !pj) fail_msg("compile: %s", ed_last_error());
    ed_feed feed = {"x", xt};
    assert_int_equal(ed_run(pi, &feed, 1), ED_OK);
    assert_int_equal(ed_run(pj, &feed, 1), ED_OK);
    const ed_tensor *a = ed_program_output(pi, "y"), *b = ed_program_output(pj, "y");
    for (int64_t i = 0; i < ed_tensor_numel(a); i++) {
        double want = ed_tensor_get(a, i), have = ed_tensor_get(b, i);
        if (fabs(want - have) > 1e-5 * (1 + fabs(want)))
            fail_msg("%s m=%lld k=%lld n=%lld: element %lld: interp %.9g, jit %.9g", ed_dtype_name(wdt), (long long)m,
                     (long long)k, (long long)n, (long long)i, want, have);
    }
    ed_program_free(pi);
    ed_program_free(pj);
    ed_store_free(si);
    ed_store_free(sj);
    ed_tensor_free(xt);
    ed_graph_free(g);
}

static void test_matmul_16bit_weight_jit_matches_interp(void **state)
{
    (void)state;
    static const int64_t ms[] = {1, 3, 8, 13}, ns[] = {1, 9, 70}, ks[] = {5, 33};
    for (int d = 0; d < 2; d++)
        for (size_t a = 0; a < 4; a++)
            for (size_t b = 0; b < 3; b++)
                for (size_t c = 0; c < 2; c++) compare_matmul(d ? ED_F16 : ED_BF16, ms[a], ks[c], ns[b], (a + b) % 2);
}

static void test_storage_types_are_refused(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("refuse");
    ed_node *w = ed_param(g, "w", ED_BF16, ed_shape2(4, 4), (ed_init){ED_INIT_ZEROS, 0});
    assert_null(ed_add(w, w));
    assert_non_null(strstr(ed_graph_error(g), "storage-only"));
    ed_graph_free(g);

    g = ed_graph_new("refuse_tb");
    ed_node *x = ed_input(g, "x", ED_F32, ed_shape2(2, 4));
    w = ed_param(g, "w", ED_F16, ed_shape2(3, 4), (ed_init){ED_INIT_ZEROS, 0});
    assert_null(ed_matmul_t(x, w, false, true));
    assert_non_null(strstr(ed_graph_error(g), "not implemented"));
    ed_graph_free(g);

    /* training with 16-bit weights */
    g = ed_graph_new("refuse_grad");
    x = ed_input(g, "x", ED_F32, ed_shape2(2, 4));
    w = ed_param(g, "w", ED_BF16, ed_shape2(4, 3), (ed_init){ED_INIT_ZEROS, 0});
    ed_node *loss = ed_mean(ed_matmul(x, w), 0x3, false), *gw;
    assert_int_equal(ed_grad(loss, &w, 1, &gw), ED_ERR);
    assert_non_null(strstr(ed_graph_error(g), "training with 16-bit weights is not implemented"));
    ed_graph_free(g);
}

/* A small trained-shape ddpm checkpoint, every param moved off its start (the output
 * layer starts at zero), and ddim samples with f32, bf16 and f16 weights. */
static void test_samples_with_16bit_weights_within_tolerance(void **state)
{
    (void)state;
    assert_int_equal(system("rm -rf '" TMP "' && mkdir -p '" TMP "'"), 0);
    static const ed_option_arg opts[] = {{"hidden", "64"}, {"layers", "2"}};
    ed_checkpoint ck;
    small_checkpoint("ddpm", "moons", opts, 2, TMP "/ddpm.safetensors", &ck);
    for (int i = 0; i < ed_store_count(ck.store); i++) { /* a second, finer pattern on top */
        ed_tensor *t = ed_store_tensor(ck.store, i);
        if (t->dtype != ED_F32) continue;
        for (int64_t k = 0; k < ed_tensor_numel(t); k++) ((float *)t->data)[k] += 0.01f * (float)(k % 3);
    }
    for (uint64_t seed = 5; seed <= 35; seed += 15) {
        ed_tensor *s[3] = {0};
        static const ed_dtype dts[3] = {ED_F32, ED_BF16, ED_F16};
        for (int d = 0; d < 3; d++) {
            ed_gen_draw_opts o = {
                .seed = seed, .batch = 64, .sampler = {.sampler = "ddim", .steps = 10, .weights = dts[d]}};
            if (ed_gen_draw(&ck.model, ck.store, 64, NULL, NULL, &o, &s[d]) != ED_OK) fail_msg("%s", ed_last_error());
        }
        /* the f32 weights are still there, unchanged, beside their 16-bit copies */
        assert_int_equal(ed_store_get(ck.store, "ddpm.block0.fc1.w")->dtype, ED_F32);
        assert_int_equal(ed_store_get(ck.store, "ddpm.block0.fc1.w.bf16")->dtype, ED_BF16);
        double scale = 0, diff[3] = {0};
        for (int64_t i = 0; i < ed_tensor_numel(s[0]); i++) {
            double v = ((float *)s[0]->data)[i];
            scale = fmax(scale, fabs(v));
            for (int d = 1; d < 3; d++) diff[d] = fmax(diff[d], fabs(((float *)s[d]->data)[i] - v));
        }
        printf("seed %llu ddim-10 samples: max |x| %.3g, max |bf16 - f32| %.3g (%.2g of 1 + max |x|), "
               "max |f16 - f32| %.3g (%.2g)\n",
               (unsigned long long)seed, scale, diff[1], diff[1] / (1 + scale), diff[2], diff[2] / (1 + scale));
        assert_true(diff[1] > 0 && diff[2] > 0);        /* the weights did change */
        assert_true(diff[1] <= BF16_TOL * (1 + scale)); /* the tolerance docs/ARCHITECTURE.md states */
        assert_true(diff[2] <= F16_TOL * (1 + scale));
        for (int d = 0; d < 3; d++) ed_tensor_free(s[d]);
    }
    ed_checkpoint_free(&ck);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bf16_rounding),
        cmocka_unit_test(test_f16_rounding),
        cmocka_unit_test(test_matmul_16bit_weight_jit_matches_interp),
        cmocka_unit_test(test_storage_types_are_refused),
        cmocka_unit_test(test_samples_with_16bit_weights_within_tolerance),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
