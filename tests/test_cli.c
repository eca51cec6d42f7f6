/* The edifice CLI, run as a user would: dump (text, DOT) round-trips the example graph,
 * dump shows the JIT's LLVM IR and assembly, run writes outputs on either backend at
 * any opt level, and every user error is one clear line with a non-zero exit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "io/npy.h"
#include "runtime/error.h"
#include "support/cli_run.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define EXAMPLE ED_SOURCE_DIR "/examples/mlp.edir"
#define TMP ED_BINARY_DIR "/test_cli_tmp"

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    char *s = malloc(n + 1);
    memcpy(s, buf, n + 1);
    return s;
}

static void cli(cli_result *r, const char *args) { cli_run(ED_CLI, TMP, r, args); }
static void write_file(const char *name, const char *text) { write_file_in(TMP, name, text); }

/* One line on stderr, starting "edifice: ", containing want. */
static void assert_one_error_line(const cli_result *r, const char *want)
{
    if (r->status == 0) fail_msg("expected failure, got exit 0; stderr: %s", r->err);
    if (strncmp(r->err, "edifice: ", 9) != 0 || !strstr(r->err, want))
        fail_msg("stderr should contain '%s', got: %s", want, r->err);
    const char *nl = strchr(r->err, '\n');
    assert_non_null(nl);
    assert_int_equal(nl[1], '\0');
}

static int setup(void **state)
{
    (void)state;
    return system("mkdir -p '" TMP "'") == 0 ? 0 : -1;
}

static void test_dump_round_trips_the_example(void **state)
{
    (void)state;
    static cli_result r;
    cli(&r, "dump '" EXAMPLE "'");
    assert_int_equal(r.status, 0);
    char *file = slurp(EXAMPLE);
    assert_non_null(file);
    assert_string_equal(r.out, file); /* the committed example is in printed form */
    free(file);
    assert_non_null(strstr(r.out, "graph @mlp {"));
}

static void test_dump_dot(void **state)
{
    (void)state;
    static cli_result r;
    cli(&r, "dump '" EXAMPLE "' --format dot");
    assert_int_equal(r.status, 0);
    assert_true(strncmp(r.out, "digraph", 7) == 0);
    assert_non_null(strstr(r.out, "->"));
    assert_non_null(strstr(r.out, "matmul"));
    cli(&r, "dump '" EXAMPLE "' --format=dot");
    assert_int_equal(r.status, 0);
}

static void test_run_writes_outputs(void **state)
{
    (void)state;
    float xs[8] = {0, 0, 0, 1, 1, 0, 1, 1};
    ed_tensor *x = ed_tensor_wrap(ED_F32, ed_shape2(4, 2), xs);
    assert_int_equal(ed_npy_write(TMP "/x.npy", x), ED_OK);
    ed_tensor_free(x);
    static cli_result r;
    cli(&r, "run '" EXAMPLE "' --input x='" TMP "/x.npy' --out '" TMP "/out' --seed 42");
    if (r.status != 0) fail_msg("run failed: %s", r.err);
    assert_non_null(strstr(r.out, "y: f32[4,1] -> "));
    ed_tensor *y = ed_npy_read(TMP "/out/y.npy");
    assert_non_null(y);
    assert_int_equal(y->dtype, ED_F32);
    assert_true(ed_shape_eq(y->shape, ed_shape2(4, 1)));
    ed_tensor *m = ed_npy_read(TMP "/out/mean.npy");
    assert_non_null(m);
    double mean = 0;
    for (int i = 0; i < 4; i++) mean += ed_tensor_get(y, i) / 4;
    assert_float_equal(ed_tensor_get(m, 0), mean, 1e-6);
    /* The same seed gives the same parameters and the same outputs. */
    cli(&r, "run '" EXAMPLE "' --input=x='" TMP "/x.npy' --out='" TMP "/out2' --seed=42");
    assert_int_equal(r.status, 0);
    ed_tensor *y2 = ed_npy_read(TMP "/out2/y.npy");
    assert_non_null(y2);
    assert_memory_equal(y->data, y2->data, 16);
    ed_tensor_free(y);
    ed_tensor_free(y2);
    ed_tensor_free(m);
}

static void test_grad_prints_and_writes(void **state)
{
    (void)state;
    static cli_result r;
    cli(&r, "grad '" EXAMPLE "' --loss mean --wrt x,mlp.0.w");
    if (r.status != 0) fail_msg("grad failed: %s", r.err);
    assert_non_null(strstr(r.out, "out grad.x = %"));
    assert_non_null(strstr(r.out, "out grad.mlp.0.w = %"));
    assert_non_null(strstr(r.out, "{ta=true}")); /* the weight gradient is x^T @ dy */
    cli(&r, "grad '" EXAMPLE "' --loss mean --wrt x --input x='" TMP "/x.npy' --out '" TMP "/gout'");
    if (r.status != 0) fail_msg("grad run failed: %s", r.err);
    assert_non_null(strstr(r.err, "grad.x: f32[4,2] -> "));
    ed_tensor *gx = ed_npy_read(TMP "/gout/grad.x.npy");
    assert_non_null(gx);
    assert_true(ed_shape_eq(gx->shape, ed_shape2(4, 2)));
    /* finite and not all zero (the values themselves are checked in test_grad) */
    double total = 0;
    for (int i = 0; i < 8; i++) total += fabs(ed_tensor_get(gx, i));
    assert_true(total > 0 && total < 1e6);
    ed_tensor_free(gx);

    cli(&r, "grad '" EXAMPLE "' --loss y --wrt x");
    assert_one_error_line(&r, "grad: the loss must be a float scalar, got f32[4,1]");
    cli(&r, "grad '" EXAMPLE "' --loss mean --wrt q");
    assert_one_error_line(&r, "grad: no input, param or state named \"q\"");
    cli(&r, "grad '" EXAMPLE "' --loss nope --wrt x");
    assert_one_error_line(&r, "grad: @mlp has no output named \"nope\"");
    cli(&r, "grad '" EXAMPLE "' --wrt x");
    assert_one_error_line(&r, "--loss NAME and --wrt NAME[,NAME...] are required");
    cli(&r, "grad '" EXAMPLE "' --loss mean --wrt x --input x='" TMP "/x.npy'");
    assert_one_error_line(&r, "--input needs --out DIR");
}

/* The example's outputs from one run command, as read back from DIR. */
static void run_example(const char *flags, const char *dir, ed_tensor **y, ed_tensor **mean)
{
    static cli_result r;
    char args[4096], path[4096];
    snprintf(args, sizeof args, "run '" EXAMPLE "' --input x='" TMP "/x.npy' --out '" TMP "/%s' --seed 7 %s", dir,
             flags);
    cli(&r, args);
    if (r.status != 0) fail_msg("run %s failed: %s", flags, r.err);
    snprintf(path, sizeof path, TMP "/%s/y.npy", dir);
    assert_non_null(*y = ed_npy_read(path));
    snprintf(path, sizeof path, TMP "/%s/mean.npy", dir);
    assert_non_null(*mean = ed_npy_read(path));
}

static void assert_close(const ed_tensor *a, const ed_tensor *b, const char *what)
{
    assert_true(a->dtype == b->dtype && ed_shape_eq(a->shape, b->shape));
    for (int64_t i = 0; i < ed_tensor_numel(a); i++) {
        double u = ed_tensor_get(a, i), v = ed_tensor_get(b, i);
        if (!(fabs(u - v) <= 1e-5 * fmax(1, fabs(v))))
            fail_msg("%s: element %lld: %.9g vs interp %.9g", what, (long long)i, u, v);
    }
}

static void test_backends_agree(void **state)
{
    (void)state;
    float xs[8] = {0.5f, -1, 2, 1, 1, 0, -3, 1};
    ed_tensor *x = ed_tensor_wrap(ED_F32, ed_shape2(4, 2), xs);
    assert_int_equal(ed_npy_write(TMP "/x.npy", x), ED_OK);
    ed_tensor_free(x);
    ed_tensor *yi, *mi;
    run_example("--backend interp", "b_interp", &yi, &mi);
    const char *flags[] = {"--backend jit", "", "-O0", "-O3 --backend=jit", "--opt-level 1"};
    for (size_t k = 0; k < sizeof flags / sizeof flags[0]; k++) {
        ed_tensor *y, *m;
        run_example(flags[k], "b_jit", &y, &m);
        assert_close(y, yi, flags[k]);
        assert_close(m, mi, flags[k]);
        ed_tensor_free(y);
        ed_tensor_free(m);
    }
    ed_tensor_free(yi);
    ed_tensor_free(mi);
}

static void test_dump_llvm_and_asm(void **state)
{
    (void)state;
    static cli_result r;
    cli(&r, "dump '" EXAMPLE "' --format llvm");
    if (r.status != 0) fail_msg("dump llvm failed: %s", r.err);
    assert_non_null(strstr(r.out, "define"));
    assert_non_null(strstr(r.out, "@ed_entry("));
    assert_non_null(strstr(r.out, "llvm.fmuladd.v8f32")); /* the batch-4 matmuls: GEMV kernels */
    cli(&r, "dump '" EXAMPLE "' --format=llvm -O0");
    assert_int_equal(r.status, 0);
    /* What the JIT runs: the graph after the default passes (each batch-4 matmul the
     * producer of its bias add and tanh, one fused kernel), or as written with --passes ''. */
    assert_non_null(strstr(r.out, "_fused("));
    assert_null(strstr(r.out, "_matmul("));
    cli(&r, "dump '" EXAMPLE "' --format=llvm -O0 --passes '' --pass-stats");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "define internal void @k2_matmul(")); /* O0 inlines nothing */
    assert_null(strstr(r.out, "_fused("));
    cli(&r, "dump '" EXAMPLE "' --format=llvm -O0 --pass-stats");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.err, "pass fuse: "));
    cli(&r, "dump '" EXAMPLE "' --passes ''");
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "pass options apply to --format llvm|asm"));
    cli(&r, "dump '" EXAMPLE "' --format asm");
    if (r.status != 0) fail_msg("dump asm failed: %s", r.err);
    assert_non_null(strstr(r.out, "ed_entry:"));
    assert_non_null(strstr(r.out, "\tret"));
    assert_non_null(strstr(r.out, "vmov")); /* AVX: the host CPU's, not generic x86-64 */
    cli(&r, "dump '" EXAMPLE "' --format asm --opt-level 3");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "ed_entry:"));
}

static void test_stats(void **state)
{
    (void)state;
    static cli_result r;
    /* --no-cache: the optimizer runs (a cached object skips it) */
    cli(&r, "run '" EXAMPLE "' --input x='" TMP "/x.npy' --out '" TMP "/s' --stats --no-cache");
    if (r.status != 0) fail_msg("run --stats failed: %s", r.err);
    double lower, opt, cg;
    int kernels, end = 0;
    int got = sscanf(r.err, "compile: lower %lf ms, optimize %lf ms, codegen %lf ms, %d kernels, cache off\n%n", &lower,
                     &opt, &cg, &kernels, &end);
    if (got != 4 || end == 0) fail_msg("no stats line on stderr: %s", r.err);
    /* 3 matmuls, each fused with what reads it (2 bias add + tanh, the last bias add), 1 mean */
    assert_int_equal(kernels, 4);
    assert_true(lower >= 0 && opt > 0 && cg > 0);
    assert_null(strstr(r.out, "compile:")); /* stdout keeps the output list only */
    long long arena, bufs, peak;
    int nbufs, inplace;
    got = sscanf(r.err + end, "memory: arena %lld bytes, buffers %lld bytes (%d), peak live %lld bytes, %d in place",
                 &arena, &bufs, &nbufs, &peak, &inplace);
    if (got != 5) fail_msg("no memory line on stderr: %s", r.err);
    assert_true(peak <= arena && arena < bufs); /* buffers are reused */
    assert_int_equal(inplace, 0); /* the matmuls are inside their fused kernels: no product buffer to write over */
    cli(&r, "run '" EXAMPLE "' --input x='" TMP "/x.npy' --out '" TMP "/s' --stats --arena separate");
    assert_int_equal(r.status, 0);
    long long arena2, bufs2;
    const char *mem = strstr(r.err, "memory: ");
    assert_non_null(mem);
    assert_int_equal(sscanf(mem, "memory: arena %lld bytes, buffers %lld", &arena2, &bufs2), 2);
    assert_true(arena2 == bufs2 && bufs2 == bufs);
    cli(&r, "run '" EXAMPLE "' --input x='" TMP "/x.npy' --out '" TMP "/s' --arena everywhere");
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "--arena wants inplace, reuse or separate"));
    cli(&r, "run '" EXAMPLE "' --input x='" TMP "/x.npy' --out '" TMP "/s' --backend interp --stats");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.err, "compile: interp, nothing to compile, 4 kernels\n"));
    cli(&r, "grad '" EXAMPLE "' --loss mean --wrt x --input x='" TMP "/x.npy' --out '" TMP "/s' --stats -O1");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.err, "compile: lower "));
}

static void test_help_everywhere(void **state)
{
    (void)state;
    static cli_result r;
    const char *cmds[] = {"--help", "dump --help", "run --help", "grad --help", "help"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        cli(&r, cmds[i]);
        assert_int_equal(r.status, 0);
        assert_non_null(strstr(r.out, "usage: edifice"));
        if (i != 1) assert_non_null(strstr(r.out, "--backend jit|interp"));
    }
    cli(&r, "dump --help");
    assert_non_null(strstr(r.out, "text|dot|llvm|asm"));
    cli(&r, "version");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "LLVM 19."));
}

/* What a command prints on stdout is its result: a write that fails (a full disk)
 * fails the command. */
static void test_stdout_write_errors(void **state)
{
    (void)state;
    static const char *const cmds[] = {"models", "dump '" EXAMPLE "'", "dump '" EXAMPLE "' --format dot", "models vae"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        char cmd[1024];
        snprintf(cmd, sizeof cmd, "'%s' %s >/dev/full 2>'%s/stderr'", ED_CLI, cmds[i], TMP);
        int rc = system(cmd);
        assert_true(WIFEXITED(rc));
        assert_int_equal(WEXITSTATUS(rc), 1);
        char *err = slurp(TMP "/stderr");
        assert_non_null(strstr(err, "edifice: writing to standard output failed: No space left on device"));
        free(err);
    }
}

/* Names from a graph reach error messages escaped: a name with ESC and a newline cannot
 * colour the terminal or forge a second line. */
static void test_errors_escape_control_bytes(void **state)
{
    (void)state;
    static cli_result r;
    write_file("esc.edir", "graph @g {\n  %0 = input \"a\\x1b[31m\\nedifice: forged\" : f32[2]\n  out y = %0\n}\n");
    cli(&r, "run '" TMP "/esc.edir' --out '" TMP "/esc_out'");
    assert_one_error_line(&r, "input \"a\\x1b[31m\\x0aedifice: forged\" is not fed");
}

static void test_user_errors(void **state)
{
    (void)state;
    static cli_result r;
    cli(&r, "");
    assert_int_equal(r.status, 2);
    cli(&r, "frobnicate");
    assert_one_error_line(&r, "unknown command 'frobnicate'");
    cli(&r, "dump");
    assert_one_error_line(&r, "dump: no graph file given");
    cli(&r, "dump '" TMP "/missing.edir'");
    assert_one_error_line(&r, "missing.edir");
    cli(&r, "dump '" EXAMPLE "' --format svg");
    assert_one_error_line(&r, "unknown format 'svg'");
    cli(&r, "dump '" EXAMPLE "' --bogus");
    assert_one_error_line(&r, "unknown option '--bogus'");
    cli(&r, "dump '" EXAMPLE "' --format llvm -O9");
    assert_int_equal(r.status, 2);
    assert_one_error_line(&r, "dump: the opt level is 0, 1, 2 or 3 (-O0..-O3 or --opt-level N), got '-O9'");

    write_file("bad_op.edir", "graph @g {\n  %0 = input \"x\" : f32[2]\n  %1 = frob %0 : f32[2]\n}\n");
    cli(&r, "dump '" TMP "/bad_op.edir'");
    assert_one_error_line(&r, "bad_op.edir:3:");
    assert_non_null(strstr(r.err, "frob"));
    write_file("truncated.edir", "graph @g {\n  %0 = input \"x\" : f32[2]\n  %1 = relu %0");
    cli(&r, "dump '" TMP "/truncated.edir'");
    assert_one_error_line(&r, "truncated.edir:3:");

    cli(&r, "run '" EXAMPLE "' --out '" TMP "/o'");
    assert_one_error_line(&r, "input \"x\" is not fed");
    cli(&r, "run '" EXAMPLE "' --input x");
    assert_one_error_line(&r, "--input wants NAME=FILE.npy");
    cli(&r, "run '" EXAMPLE "' --input x='" TMP "/x.npy'");
    assert_one_error_line(&r, "--out DIR is required");
    cli(&r, "run '" EXAMPLE "' --input x='" TMP "/x.npy' --out '" TMP "/o' --seed -3");
    assert_one_error_line(&r, "--seed wants a whole number");
    const char *bad[][2] = {
        {"--backend llvm", "run: --backend wants jit or interp, got 'llvm' (try edifice run --help)"},
        {"--backend", "run: --backend wants jit or interp, got ''"},
        {"-O4", "run: the opt level is 0, 1, 2 or 3 (-O0..-O3 or --opt-level N), got '-O4'"},
        {"-Os", "got '-Os'"},
        {"-O", "got '-O'"},
        {"--opt-level=x", "got 'x'"},
        {"--opt-level 12", "got '12'"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        char args[4096];
        snprintf(args, sizeof args, "run '" EXAMPLE "' --input x='" TMP "/x.npy' --out '" TMP "/o' %s", bad[k][0]);
        cli(&r, args);
        assert_int_equal(r.status, 2);
        assert_one_error_line(&r, bad[k][1]);
    }
    cli(&r, "grad '" EXAMPLE "' --loss mean --wrt x --backend=fast");
    assert_int_equal(r.status, 2);
    assert_one_error_line(&r, "grad: --backend wants jit or interp, got 'fast'");
    write_file("garbage.npy", "this is not an npy file at all");
    cli(&r, "run '" EXAMPLE "' --input x='" TMP "/garbage.npy' --out '" TMP "/o'");
    assert_one_error_line(&r, "garbage.npy");

    /* A well-formed .npy of the wrong dtype or shape. */
    int32_t iv[8] = {0};
    ed_tensor *xi = ed_tensor_wrap(ED_I32, ed_shape2(4, 2), iv);
    assert_int_equal(ed_npy_write(TMP "/xi.npy", xi), ED_OK);
    ed_tensor_free(xi);
    cli(&r, "run '" EXAMPLE "' --input x='" TMP "/xi.npy' --out '" TMP "/o'");
    assert_one_error_line(&r, "input \"x\": fed i32[4,2], graph wants f32[4,2]");
    float fv[3] = {0};
    ed_tensor *x3 = ed_tensor_wrap(ED_F32, ed_shape1(3), fv);
    assert_int_equal(ed_npy_write(TMP "/x3.npy", x3), ED_OK);
    ed_tensor_free(x3);
    cli(&r, "run '" EXAMPLE "' --input x='" TMP "/x3.npy' --out '" TMP "/o'");
    assert_one_error_line(&r, "input \"x\": fed f32[3], graph wants f32[4,2]");
    cli(&r, "run '" EXAMPLE "' --input x='" TMP "/x.npy' --input q='" TMP "/x.npy' --out '" TMP "/o'");
    assert_one_error_line(&r, "no input named \"q\"");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dump_round_trips_the_example),
        cmocka_unit_test(test_dump_dot),
        cmocka_unit_test(test_run_writes_outputs),
        cmocka_unit_test(test_grad_prints_and_writes),
        cmocka_unit_test(test_backends_agree),
        cmocka_unit_test(test_dump_llvm_and_asm),
        cmocka_unit_test(test_stats),
        cmocka_unit_test(test_help_everywhere),
        cmocka_unit_test(test_user_errors),
        cmocka_unit_test(test_stdout_write_errors),
        cmocka_unit_test(test_errors_escape_control_bytes),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
