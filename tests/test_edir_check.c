/* The checker of tests/ir (tests/support/edir_check.c) run on small files written here:
 * CHECK, CHECK-NEXT and CHECK-NOT each pass when they hold and fail when they do not,
 * naming the file, the line and the check and printing the graph; a malformed file is
 * an error, not a pass. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "support/cli_run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TMP ED_BINARY_DIR "/test_edir_check_tmp"

/* After simplify the graph prints as
 *   1 graph @s {
 *   2   %0 = input "x" : f32[2,3]
 *   3   %1 = tanh %0 : f32[2,3]
 *   4   %2 = exp %1 : f32[2,3]
 *   5   out y = %2
 *   6 }
 * and in a file below, the first check is on line 10. */
static const char run_and_graph[] = "# RUN: passes=simplify\n"
                                    "graph @s {\n"
                                    "  %x = input \"x\" : f32[2,3]\n"
                                    "  %one = const 1 : f32[]\n"
                                    "  %a = mul %x, %one : f32[2,3]\n"
                                    "  %t = tanh %a : f32[2,3]\n"
                                    "  %e = exp %t : f32[2,3]\n"
                                    "  out y = %e\n"
                                    "}\n";

/* Check the file run_and_graph + checks; fail unless the exit status is want_status and
 * stderr holds every string of want_err. */
static void expect(const char *checks, int want_status, const char *const *want_err)
{
    size_t len = strlen(run_and_graph) + strlen(checks) + 1;
    char *text = malloc(len);
    assert_non_null(text);
    snprintf(text, len, "%s%s", run_and_graph, checks);
    write_file_in(TMP, "t.edir", text);
    free(text);
    cli_result r;
    cli_run(ED_EDIR_CHECK, TMP, &r, "'" ED_CLI "' '" TMP "/t.edir'");
    if (r.status != want_status) fail_msg("exit status %d, %d expected; stderr:\n%s", r.status, want_status, r.err);
    for (int i = 0; want_err && want_err[i]; i++)
        if (!strstr(r.err, want_err[i])) fail_msg("stderr lacks \"%s\":\n%s", want_err[i], r.err);
}

#define ERR(...) ((const char *const[]){__VA_ARGS__, NULL})
#define FILE_LINE(n) TMP "/t.edir:" #n ": error: "
#define PRINTED "edifice opt --passes 'simplify' printed:\n", "   3 |   %1 = tanh %0 : f32[2,3]\n"

static int setup(void **state)
{
    (void)state;
    return system("mkdir -p '" TMP "'") == 0 ? 0 : -1;
}

static void test_checks_that_hold(void **state)
{
    (void)state;
    expect("# CHECK:      graph @s {\n"
           "# CHECK-NEXT: %0 = input \"x\" : f32[2,3]\n"
           "# CHECK-NOT:  mul\n"
           "# CHECK:      %2 = exp %1 : f32[2,3]\n"
           "# CHECK-NEXT: out y = %2\n"
           "# CHECK-NEXT: }\n"
           "# CHECK-NOT:  tanh\n",
           0, NULL);
    /* a CHECK-NOT looks only between the matches around it: the input is before */
    expect("# CHECK: %1 = tanh %0 : f32[2,3]\n# CHECK-NOT: input\n# CHECK: out y = %2\n", 0, NULL);
    /* patterns match whole lines; {{regex}} is a POSIX extended regex */
    expect("# CHECK: %1 = tanh {{%[0-9]+}} : f32[2,3]\n# CHECK: {{.*}}exp{{.*}}\n", 0, NULL);
    /* no passes: the graph as parsed */
    write_file_in(TMP, "t.edir",
                  "# RUN: passes=\ngraph @s {\n  %x = input \"x\" : f32[2]\n  %n = neg %x : f32[2]\n"
                  "  out y = %n\n}\n# CHECK: %1 = neg %0 : f32[2]\n");
    cli_result r;
    cli_run(ED_EDIR_CHECK, TMP, &r, "'" ED_CLI "' '" TMP "/t.edir'");
    if (r.status != 0) fail_msg("exit status %d; stderr:\n%s", r.status, r.err);
}

static void test_check_fails(void **state)
{
    (void)state;
    expect("# CHECK: graph @s {\n# CHECK: %1 = neg %0 : f32[2,3]\n", 1,
           ERR(FILE_LINE(11) "CHECK: %1 = neg %0 : f32[2,3]\n", "no output line after line 1", PRINTED));
    /* in order: the tanh comes before the exp */
    expect("# CHECK: %2 = exp %1 : f32[2,3]\n# CHECK: %1 = tanh %0 : f32[2,3]\n", 1,
           ERR(FILE_LINE(11) "CHECK: %1 = tanh", "no output line after line 4 (the previous match) matches", PRINTED));
    /* part of a line is no match */
    expect("# CHECK: tanh\n", 1, ERR(FILE_LINE(10) "CHECK: tanh\n", "no output line matches", PRINTED));
    expect("# CHECK: out y = %\n", 1, ERR(FILE_LINE(10) "CHECK: out y = %\n"));
}

static void test_check_next_fails(void **state)
{
    (void)state;
    expect("# CHECK: graph @s {\n# CHECK-NEXT: %1 = tanh %0 : f32[2,3]\n", 1,
           ERR(FILE_LINE(11) "CHECK-NEXT: %1 = tanh %0 : f32[2,3]\n",
               "matched output line 3, not line 2 right after the previous match", PRINTED));
    expect("# CHECK: %2 = exp %1 : f32[2,3]\n# CHECK-NEXT: }\n", 1,
           ERR(FILE_LINE(11) "CHECK-NEXT: }\n", "matched output line 6, not line 5"));
}

static void test_check_not_fails(void **state)
{
    (void)state;
    /* between two matches */
    expect("# CHECK: %0 = input \"x\" : f32[2,3]\n# CHECK-NOT: tanh\n# CHECK: out y = %2\n", 1,
           ERR(FILE_LINE(11) "CHECK-NOT: tanh\n", "found on output line 3", PRINTED));
    /* before the first match, and after the last */
    expect("# CHECK-NOT: input\n# CHECK: out y = %2\n", 1, ERR(FILE_LINE(10) "CHECK-NOT: input\n", "output line 2"));
    expect("# CHECK: %1 = tanh %0 : f32[2,3]\n# CHECK-NOT: exp\n", 1,
           ERR(FILE_LINE(11) "CHECK-NOT: exp\n", "found on output line 4"));
    /* a regex */
    expect("# CHECK-NOT: {{(neg|exp) }}\n", 1, ERR(FILE_LINE(10) "CHECK-NOT: {{(neg|exp) }}\n", "output line 4"));
}

/* A file that checks nothing, or cannot be read as intended, fails. */
static void test_bad_files(void **state)
{
    (void)state;
    expect("# no checks here\n", 1, ERR(FILE_LINE(10) "no CHECK lines"));
    expect("# CHECK-SAME: tanh\n", 1, ERR(FILE_LINE(10) "unknown directive 'CHECK-SAME'"));
    expect("# CHECK-NEXT: graph @s {\n", 1, ERR(FILE_LINE(10) "CHECK-NEXT needs a CHECK before it"));
    expect("# CHECK:\n", 1, ERR(FILE_LINE(10) "empty CHECK pattern"));
    expect("# CHECK: {{tanh\n", 1, ERR(FILE_LINE(10) "'{{' without '}}'"));
    expect("# CHECK: {{(}}\n", 1, ERR(FILE_LINE(10) "bad regex in CHECK"));
    expect("# RUN: passes=cse\n# CHECK: }\n", 1, ERR(FILE_LINE(10) "RUN: belongs on the first line only"));

    /* the RUN line, and a pass opt does not know */
    write_file_in(TMP, "t.edir", "graph @s {\n}\n# CHECK: }\n");
    cli_result r;
    cli_run(ED_EDIR_CHECK, TMP, &r, "'" ED_CLI "' '" TMP "/t.edir'");
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, FILE_LINE(1) "the first line must be '# RUN: passes=LIST'"));
    write_file_in(TMP, "t.edir", "# RUN: passes=simplify cse\ngraph @s {\n}\n# CHECK: }\n");
    cli_run(ED_EDIR_CHECK, TMP, &r, "'" ED_CLI "' '" TMP "/t.edir'");
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, FILE_LINE(1) "text after the list of passes: 'cse'"));
    write_file_in(TMP, "t.edir", "# RUN: passes=simplify,bogus\ngraph @s {\n}\n# CHECK: }\n");
    cli_run(ED_EDIR_CHECK, TMP, &r, "'" ED_CLI "' '" TMP "/t.edir'");
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "unknown pass 'bogus'"));
    assert_non_null(strstr(r.err, "opt " TMP "/t.edir --passes 'simplify,bogus' failed"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checks_that_hold), cmocka_unit_test(test_check_fails),
        cmocka_unit_test(test_check_next_fails), cmocka_unit_test(test_check_not_fails),
        cmocka_unit_test(test_bad_files),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
