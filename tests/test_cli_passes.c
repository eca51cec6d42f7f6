/* The CLI's pass options, run as a user would: `edifice opt` prints the graph after
 * the passes, run and grad take --passes, --print-after-all, --print-after=NAME and
 * --pass-stats, and a bad pass name is one clear line with exit code 2. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "runtime/error.h"
#include "io/npy.h"
#include "support/cli_run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXAMPLE ED_SOURCE_DIR "/examples/mlp.edir"
#define TMP ED_BINARY_DIR "/test_cli_passes_tmp"

static void cli(cli_result *r, const char *args) { cli_run(ED_CLI, TMP, r, args); }
static void write_file(const char *name, const char *text) { write_file_in(TMP, name, text); }

static int count(const char *s, const char *part)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, part)); p++) n++;
    return n;
}

static int setup(void **state)
{
    (void)state;
    if (system("mkdir -p '" TMP "'") != 0) return -1;
    write_file("s.edir", "graph @s {\n"
                         "  %x = input \"x\" : f32[2,3]\n"
                         "  %one = const 1 : f32[]\n"
                         "  %a = mul %x, %one : f32[2,3]\n"
                         "  %b = neg %a : f32[2,3]\n"
                         "  %c = neg %b : f32[2,3]\n"
                         "  %d = tanh %c : f32[2,3]\n"
                         "  %e = tanh %c : f32[2,3]\n"
                         "  %f = add %d, %e : f32[2,3] \"sum\"\n"
                         "  %dead = exp %x : f32[2,3]\n"
                         "  out y = %f\n"
                         "}\n");
    ed_tensor *x = ed_tensor_new(ED_F32, ed_shape2(2, 3));
    for (int i = 0; i < 6; i++) ed_tensor_set(x, i, 0.25 * i - 0.5);
    int rc = ed_npy_write(TMP "/x.npy", x);
    ed_tensor_free(x);
    ed_tensor *x4 = ed_tensor_new(ED_F32, ed_shape2(4, 2)); /* the example graph's input */
    for (int i = 0; i < 8; i++) ed_tensor_set(x4, i, 0.125 * i);
    if (rc == ED_OK) rc = ed_npy_write(TMP "/x4.npy", x4);
    ed_tensor_free(x4);
    return rc == ED_OK ? 0 : -1;
}

static void test_opt_default_pipeline(void **state)
{
    (void)state;
    cli_result r;
    cli(&r, "opt '" TMP "/s.edir'");
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "graph @s {\n"
                               "  %0 = input \"x\" : f32[2,3]\n"
                               "  %1 = fused %0 graph @f2 {\n"
                               "    %0 = input \"x0\" : f32[2,3]\n"
                               "    %1 = tanh %0 : f32[2,3]\n"
                               "    %2 = add %1, %1 : f32[2,3] \"sum\"\n"
                               "    out y = %2\n"
                               "  } : f32[2,3] \"sum\"\n"
                               "  out y = %1\n"
                               "}\n");
    assert_string_equal(r.err, "");
}

static void test_opt_passes_and_hooks(void **state)
{
    (void)state;
    cli_result r;
    cli(&r, "opt '" TMP "/s.edir' --passes cse");
    assert_int_equal(r.status, 0);
    assert_int_equal(count(r.out, "neg "), 2);
    assert_int_equal(count(r.out, "tanh "), 1);
    assert_int_equal(count(r.out, "exp "), 1); /* dead code is dce's */

    cli(&r, "opt '" TMP "/s.edir' --passes '' ");
    assert_int_equal(r.status, 0);
    assert_int_equal(count(r.out, "tanh "), 2);

    cli(&r, "opt '" TMP "/s.edir' --print-after-all --pass-stats");
    assert_int_equal(r.status, 0);
    assert_int_equal(count(r.err, "# after "), 7);
    assert_non_null(strstr(r.err, "# after simplify\ngraph @s {"));
    assert_non_null(strstr(r.err, "pass simplify: "));
    assert_non_null(strstr(r.err, "pass dce: "));
    assert_non_null(strstr(r.err, "9 -> 5 nodes, 2 rewrites"));

    /* a loop's body counts, and the line says how many nodes are in bodies */
    write_file("loop.edir", "graph @l {\n"
                            "  %x = input \"x\" : f32[2]\n"
                            "  %z = const 0 : f32[2]\n"
                            "  %l = loop %z, %x {stream=1, trips=3, ncarried=1} graph @body {\n"
                            "    %i = input \"index\" : i32[]\n"
                            "    %c = input \"carried0\" : f32[2]\n"
                            "    %k = input \"captured0\" : f32[2]\n"
                            "    %one = const 1 : f32[]\n"
                            "    %m = mul %k, %one : f32[2]\n"
                            "    %n = add %c, %m : f32[2]\n"
                            "    out next0 = %n\n"
                            "  }\n"
                            "  %y = get %l {index=0} : f32[2]\n"
                            "  out y = %y\n"
                            "}\n");
    cli(&r, "opt '" TMP "/loop.edir' --passes simplify --pass-stats");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.err, "10 -> 8 nodes (6 -> 4 of them in loop bodies), 1 rewrites"));

    cli(&r, "opt '" TMP "/s.edir' --print-after=cse");
    assert_int_equal(r.status, 0);
    assert_int_equal(count(r.err, "# after "), 1);
    assert_non_null(strstr(r.err, "# after cse\n"));

    cli(&r, "opt --help");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "--print-after=NAME"));
    assert_non_null(strstr(r.out, "  simplify "));
    assert_non_null(strstr(r.out, "  dce "));
}

static void test_bad_pass_names(void **state)
{
    (void)state;
    cli_result r;
    cli(&r, "opt '" TMP "/s.edir' --passes simplify,fuze");
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "edifice: opt: passes: unknown pass 'fuze'"));
    assert_int_equal(count(r.err, "\n"), 1);
    assert_string_equal(r.out, "");
    cli(&r, "opt '" TMP "/s.edir' --print-after=nope");
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "unknown pass 'nope'"));
    cli(&r, "run '" EXAMPLE "' --input x='" TMP "/x4.npy' --out '" TMP "/o' --passes cse,,dce");
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "edifice: run: passes: empty pass name"));
    cli(&r, "grad '" EXAMPLE "' --loss mean --wrt x --passes bogus");
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "edifice: grad: passes: unknown pass 'bogus'"));
    cli(&r, "opt");
    assert_int_equal(r.status, 2);
    cli(&r, "opt '" TMP "/missing.edir'");
    assert_int_equal(r.status, 1);
}

static void test_run_and_grad_flags(void **state)
{
    (void)state;
    cli_result r;
    cli(&r, "run '" TMP "/s.edir' --input x='" TMP "/x.npy' --out '" TMP "/o1' --pass-stats --print-after=dce");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "y: f32[2,3] -> "));
    assert_int_equal(count(r.err, "pass "), 7);
    assert_non_null(strstr(r.err, "# after dce\ngraph @s {"));
    ed_tensor *a = ed_npy_read(TMP "/o1/y.npy");
    cli(&r, "run '" TMP "/s.edir' --input x='" TMP "/x.npy' --out '" TMP "/o2' --passes '' --backend interp");
    assert_int_equal(r.status, 0);
    assert_string_equal(r.err, "");
    ed_tensor *b = ed_npy_read(TMP "/o2/y.npy");
    assert_non_null(a);
    assert_non_null(b);
    for (int i = 0; i < 6; i++) assert_float_equal(ed_tensor_get(a, i), ed_tensor_get(b, i), 2e-6);
    ed_tensor_free(a);
    ed_tensor_free(b);

    cli(&r, "grad '" EXAMPLE "' --loss mean --wrt x --input x='" TMP "/x4.npy' --out '" TMP "/g' --print-after-all");
    assert_int_equal(r.status, 0);
    assert_int_equal(count(r.err, "# after "), 7);
    assert_non_null(strstr(r.out, "out grad.x = ")); /* the printed graph is the one before the passes */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_opt_default_pipeline),
        cmocka_unit_test(test_opt_passes_and_hooks),
        cmocka_unit_test(test_bad_pass_names),
        cmocka_unit_test(test_run_and_grad_flags),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
