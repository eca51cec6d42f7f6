/* Flat JIT kernels (backend/llvm/lower_flat.c): elementwise and fused elementwise nodes
 * that differ only in length share one kernel taking its length at run time; every
 * length agrees with the interpreter, on 1 and 2 pool threads, the same bits on both. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "backend/llvm/jit.h"
#include "frontend/nn.h"
#include "runtime/pool.h"
#include "support/run_check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const int64_t lengths[] = {1, 7, 33, 1000003};
enum { NLEN = sizeof lengths / sizeof lengths[0] };

static int compiled_kernels(const ed_graph *g, const char *passes)
{
    ed_program *p = ed_compile(g, NULL, &(ed_compile_opts){.backend = ED_BACKEND_JIT, .passes = passes});
    if (!p) fail_msg("compile: %s", ed_last_error());
    int k = ed_program_compile_stats(p).kernels;
    ed_program_free(p);
    return k;
}

/* tanh of four lengths is one function; an add with an input of one element (read at
   index 0) is another than an add of two full inputs; lengths of other shapes still count. */
static void test_lengths_share_one_kernel(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("g");
    for (int i = 0; i < 3; i++) {
        char name[8];
        snprintf(name, sizeof name, "x%d", i);
        ed_output(g, name, ed_tanh(ed_input(g, name, ED_F32, ed_shape1(lengths[i]))));
    }
    ed_output(g, "m", ed_tanh(ed_input(g, "m", ED_F32, ed_shape2(5, 9)))); /* rank does not matter */
    assert_int_equal(compiled_kernels(g, ""), 1);
    ed_node *a = ed_input(g, "a", ED_F32, ed_shape1(7)), *b = ed_input(g, "b", ED_F32, ed_shape1(7));
    ed_node *s = ed_input(g, "s", ED_F32, ed_shape1(1));
    ed_output(g, "ab", ed_add(a, b));
    ed_output(g, "as", ed_add(a, s));
    ed_output(g, "sa", ed_add(s, a));
    assert_int_equal(compiled_kernels(g, ""), 4);
    ed_node *c = ed_input(g, "c", ED_F32, ed_shape1(33));
    ed_output(g, "cc", ed_add(c, ed_input(g, "d", ED_F32, ed_shape1(33))));
    ed_output(g, "cs", ed_add(c, s));
    assert_int_equal(compiled_kernels(g, ""), 4);
    ed_graph_free(g);
}

/* An elementwise chain the default passes fuse into one node. */
static ed_node *chain(ed_node *x, ed_node *s) { return ed_mul(ed_tanh(ed_exp(x)), ed_add(x, s)); }

/* A fused chain over lengths 7 and 33 (default passes) is one kernel too. */
static void test_fused_lengths_share(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("g");
    for (int i = 1; i < 3; i++) {
        char name[8];
        snprintf(name, sizeof name, "x%d", i);
        ed_node *x = ed_input(g, name, ED_F32, ed_shape1(lengths[i]));
        ed_output(g, name, chain(x, ed_scalar(g, ED_F32, 0.5)));
    }
    assert_int_equal(compiled_kernels(g, NULL), 1);
    ed_graph_free(g);
}

/* Each length through the shared kernels (tanh, add with broadcast, a fused chain) equals
   the interpreter within the inline polynomials' bound, at 1 and 2 threads with the same
   bits; the 1000003-element ones run on the pool. */
static void test_odd_lengths_against_interp(void **state)
{
    (void)state;
    ed_graph *g = ed_graph_new("g");
    ed_node *s = ed_input(g, "s", ED_F32, ed_shape1(1));
    for (int i = 0; i < NLEN; i++) {
        char name[16];
        snprintf(name, sizeof name, "x%d", i);
        ed_node *x = ed_input(g, name, ED_F32, ed_shape1(lengths[i]));
        snprintf(name, sizeof name, "t%d", i);
        ed_output(g, name, ed_tanh(x));
        snprintf(name, sizeof name, "a%d", i);
        ed_output(g, name, ed_sub(s, x));
        snprintf(name, sizeof name, "f%d", i);
        ed_output(g, name, chain(x, s));
    }
    random_feeds fd;
    random_feeds_make(g, -3, 3, &fd);
    ed_program *pi = ed_compile(g, NULL, &(ed_compile_opts){.backend = ED_BACKEND_INTERP, .passes = ""});
    ed_program *pj = ed_compile(g, NULL, &(ed_compile_opts){.backend = ED_BACKEND_JIT});
    if (!pi || !pj) fail_msg("compile: %s", ed_last_error());
    run_ok(pi, fd.f, fd.n);
    ed_tensor *one[3 * NLEN] = {0};
    for (int t = 1; t <= 2; t++) {
        ed_set_threads(t);
        int64_t before = ed_pool_parallel_runs();
        run_ok(pj, fd.f, fd.n);
        if (t == 2) assert_true(ed_pool_parallel_runs() >= before + 3);
        for (int o = 0; o < ed_program_num_outputs(pi); o++) {
            const char *name = ed_program_output_name(pi, o);
            check_tensors_close(out(pi, name), out(pj, name), 2e-6, "jit against interp", name);
            if (t == 1) one[o] = ed_tensor_copy(out(pj, name));
            else check_tensors_agree(one[o], out(pj, name), 0, "2 threads against 1", name);
        }
    }
    ed_set_threads(1);
    for (int o = 0; o < 3 * NLEN; o++) ed_tensor_free(one[o]);
    random_feeds_free(&fd);
    ed_program_free(pi);
    ed_program_free(pj);
    ed_graph_free(g);
}

/* tanh of length n through the object cache: its cache result ("hit", "stored"), and the
   values checked against tanhf. */
static const char *cached_tanh(int64_t n)
{
    ed_graph *g = ed_graph_new("g");
    ed_output(g, "y", ed_tanh(ed_input(g, "x", ED_F32, ed_shape1(n))));
    ed_program *p = ed_compile(g, NULL, &(ed_compile_opts){.backend = ED_BACKEND_JIT, .passes = ""});
    if (!p) fail_msg("compile: %s", ed_last_error());
    ed_tensor *x = ed_tensor_new(ED_F32, ed_shape1(n));
    for (int64_t i = 0; i < n; i++) ((float *)x->data)[i] = (float)i / 4 - 1;
    run_ok(p, (ed_feed[]){{"x", x}}, 1);
    for (int64_t i = 0; i < n; i++) assert_true(values_close(tanh((float)i / 4 - 1), f32_at(out(p, "y"), i), 2e-6));
    const char *c = ed_program_compile_stats(p).cache;
    ed_tensor_free(x);
    ed_program_free(p);
    ed_graph_free(g);
    return c;
}

/* The lengths live in the entry's calls, so a program's cache key must still hold them: the
   graph as built does. */
static void test_cache_key_keeps_length(void **state)
{
    (void)state;
    assert_int_equal(
        system("rm -rf '" ED_BINARY_DIR "/test_jit_flat_tmp' && mkdir -p '" ED_BINARY_DIR "/test_jit_flat_tmp'"), 0);
    setenv("EDIFICE_CACHE_DIR", ED_BINARY_DIR "/test_jit_flat_tmp", 1);
    unsetenv("EDIFICE_NO_CACHE");
    assert_string_equal(cached_tanh(7), "stored");
    assert_string_equal(cached_tanh(9), "stored");
    assert_string_equal(cached_tanh(7), "hit");
    assert_string_equal(cached_tanh(9), "hit");
}

int main(void)
{
    rng_seed(1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lengths_share_one_kernel),
        cmocka_unit_test(test_fused_lengths_share),
        cmocka_unit_test(test_odd_lengths_against_interp),
        cmocka_unit_test(test_cache_key_keeps_length),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
