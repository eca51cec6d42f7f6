/* edifice export / export-graph: the object file, linked with plain `cc` into a C
 * program with only -lopenblas -lm, gives the CLI's bits (sample, run) at the same
 * seed; and the flags that are not supported fail with one clear line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "io/npy.h"
#include "runtime/error.h"
#include "support/cli_run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define TMP ED_BINARY_DIR "/test_export_tmp"

static cli_result r;

static void cli_ok(const char *args)
{
    cli_run(ED_CLI, TMP, &r, args);
    if (r.status != 0) fail_msg("edifice %s: exit %d; stderr: %s", args, r.status, r.err);
}

/* A shell command in TMP; its exit status. */
static int sh(const char *fmt, ...)
{
    char cmd[4096], line[4200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    snprintf(line, sizeof line, "cd '%s' && %s", TMP, cmd);
    int rc = system(line);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* cc builds this project, so its absence is a broken machine, not a reason to skip. */
static void need_cc(void)
{
    if (system("command -v cc >/dev/null 2>&1") != 0)
        fail_msg("cc not found: the export tests link the object with cc");
}

/* The bytes of file TMP/name into buf; the count read. */
static size_t read_raw(const char *name, void *buf, size_t size)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", TMP, name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t n = fread(buf, 1, size, f);
    fclose(f);
    return n;
}

static void write_raw(const char *name, const ed_tensor *t)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", TMP, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(t->data, 1, ed_tensor_bytes(t), f), ed_tensor_bytes(t));
    fclose(f);
}

static ed_tensor *npy(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", TMP, name);
    ed_tensor *t = ed_npy_read(path);
    if (!t) fail_msg("%s", ed_last_error());
    return t;
}

static int setup(void **state)
{
    (void)state;
    /* every relative path of the suite (the CLI's too) is in TMP */
    if (system("rm -rf '" TMP "' && mkdir -p '" TMP "'") != 0 || chdir(TMP) != 0) return -1;
    /* a small policy, trained briefly: the bits are what is checked, not its quality */
    cli_run(ED_CLI, TMP, &r,
            "train ddpm --data demo --steps 20 --hidden 32 --batch 64 --out ck.safetensors >/dev/null 2>&1");
    return r.status == 0 ? 0 : -1;
}

/* Three calls of the exported sampler (static and caller workspace) equal the CLI's
 * three batches of one, bit for bit; so does the README's 20-line example. */
static void test_policy_bits(void **state)
{
    (void)state;
    need_cc();
    cli_ok("export ddpm --ckpt ck.safetensors --out policy");
    cli_ok("data demo --n 3 --seed 5 --out d.npy");
    cli_ok("sample ddpm --ckpt ck.safetensors --obs d.obs.npy --n 3 --batch 1 --seed 7 --out s.npy");
    assert_int_equal(sh("cc -std=c17 -I. -o calls '%s/tests/export/calls.c' policy.o -lopenblas -lm", ED_SOURCE_DIR),
                     0);
    /* nothing from edifice or LLVM: only libc, libm and OpenBLAS symbols are undefined */
    assert_int_equal(sh("nm -u policy.o | grep -v -E ' (cblas_[sd]gemm|memcpy|memset|memmove|exp|expf|log|logf|"
                        "log1p|sin|cos|sinf|cosf|sqrt|sqrtf|tanh|erf|pow|fmod|trunc)$' >undefined.txt; "
                        "test ! -s undefined.txt"),
                     0);
    ed_tensor *obs = npy("d.obs.npy"), *s = npy("s.npy");
    write_raw("obs.raw", obs);
    assert_int_equal(sh("./calls 7 3 obs.raw out.raw"), 0);
    float got[3 * 16];
    assert_int_equal(ed_tensor_bytes(s), sizeof got);
    assert_int_equal(read_raw("out.raw", got, sizeof got), sizeof got);
    assert_memory_equal(got, s->data, sizeof got);

    /* the example: row 0 as exact hex floats on its command line */
    assert_int_equal(
        sh("cc -std=c17 -I. -o policy_demo '%s/examples/policy_demo.c' policy.o -lopenblas -lm", ED_SOURCE_DIR), 0);
    char cmd[1024] = "./policy_demo 7";
    for (int i = 0; i < 6; i++)
        snprintf(cmd + strlen(cmd), sizeof cmd - strlen(cmd), " %a", (double)((float *)obs->data)[i]);
    strncat(cmd, " >demo.txt", sizeof cmd - strlen(cmd) - 1);
    assert_int_equal(sh("%s", cmd), 0);
    char text[4096] = {0};
    read_raw("demo.txt", text, sizeof text - 1);
    char *p = text;
    for (int i = 0; i < 16; i++) {
        float v = strtof(p, &p);
        assert_memory_equal(&v, (float *)s->data + i, sizeof v);
    }
    ed_tensor_free(obs);
    ed_tensor_free(s);
}

/* --weights bf16: the object holds the dense weights 16-bit (smaller than the f32
 * one) and gives `edifice sample --weights bf16`'s samples bit for bit. */
static void test_policy_bf16_bits(void **state)
{
    (void)state;
    need_cc();
    assert_int_equal(sh("mkdir -p h"), 0);
    cli_ok("export ddpm --ckpt ck.safetensors --out h/policy --weights bf16");
    cli_ok("export ddpm --ckpt ck.safetensors --out h/policy32");
    cli_ok("data demo --n 3 --seed 5 --out h/d.npy");
    cli_ok("sample ddpm --ckpt ck.safetensors --obs h/d.obs.npy --n 3 --batch 1 --seed 7 --weights bf16 "
           "--out h/s.npy");
    cli_ok("sample ddpm --ckpt ck.safetensors --obs h/d.obs.npy --n 3 --batch 1 --seed 7 --out h/s32.npy");
    assert_int_equal(sh("test $(stat -c %%s h/policy.o) -lt $(stat -c %%s h/policy32.o)"), 0);
    ed_tensor *obs = npy("h/d.obs.npy"), *s = npy("h/s.npy"), *s32 = npy("h/s32.npy");
    write_raw("h/obs.raw", obs);
    assert_int_equal(sh("cc -std=c17 -Ih -o h/calls '%s/tests/export/calls.c' h/policy.o -lopenblas -lm && "
                        "./h/calls 7 3 h/obs.raw h/out.raw",
                        ED_SOURCE_DIR),
                     0);
    float got[3 * 16];
    assert_int_equal(ed_tensor_bytes(s), sizeof got);
    assert_int_equal(read_raw("h/out.raw", got, sizeof got), sizeof got);
    assert_memory_equal(got, s->data, sizeof got);
    assert_true(memcmp(got, s32->data, sizeof got) != 0); /* the weights did change */
    ed_tensor_free(obs);
    ed_tensor_free(s);
    ed_tensor_free(s32);
}

/* --no-blas: linked without OpenBLAS (-lm only), within float rounding of the CLI. */
static void test_no_blas(void **state)
{
    (void)state;
    need_cc();
    assert_int_equal(sh("mkdir -p nb"), 0);
    cli_ok("export ddpm --ckpt ck.safetensors --out nb/policy --no-blas");
    cli_ok("data demo --n 2 --seed 6 --out nb/d.npy");
    cli_ok("sample ddpm --ckpt ck.safetensors --obs nb/d.obs.npy --n 2 --batch 1 --seed 3 --out nb/s.npy");
    assert_int_equal(sh("nm -u nb/policy.o | grep -c cblas >nb/cblas.txt; test \"$(cat nb/cblas.txt)\" = 0"), 0);
    ed_tensor *obs = npy("nb/d.obs.npy"), *s = npy("nb/s.npy");
    write_raw("nb/obs.raw", obs);
    assert_int_equal(sh("cc -std=c17 -Inb -o nb/calls '%s/tests/export/calls.c' nb/policy.o -lm && "
                        "./nb/calls 3 2 nb/obs.raw nb/out.raw",
                        ED_SOURCE_DIR),
                     0);
    float got[2 * 16];
    assert_int_equal(read_raw("nb/out.raw", got, sizeof got), sizeof got);
    for (int i = 0; i < 2 * 16; i++) assert_float_equal(got[i], ((float *)s->data)[i], 1e-4);
    ed_tensor_free(obs);
    ed_tensor_free(s);
}

/* export-graph: examples/mlp.edir's outputs equal `edifice run` with the same init seed. */
static void test_graph_bits(void **state)
{
    (void)state;
    need_cc();
    cli_ok("export-graph '" ED_SOURCE_DIR "/examples/mlp.edir' --out mlp");
    ed_tensor *x = ed_tensor_new(ED_F32, ed_shape2(4, 2));
    for (int i = 0; i < 8; i++) ((float *)x->data)[i] = 0.37f * (float)i - 1.1f;
    assert_int_equal(ed_npy_write(TMP "/x.npy", x), ED_OK);
    write_raw("x.raw", x);
    cli_ok("run '" ED_SOURCE_DIR "/examples/mlp.edir' --input x=x.npy --out runout");
    assert_int_equal(sh("cc -std=c17 -I. -o mlp_main '%s/tests/export/mlp_main.c' mlp.o -lopenblas -lm && "
                        "./mlp_main x.raw mlp.raw",
                        ED_SOURCE_DIR),
                     0);
    float got[5];
    assert_int_equal(read_raw("mlp.raw", got, sizeof got), sizeof got);
    ed_tensor *y = npy("runout/y.npy"), *mean = npy("runout/mean.npy");
    assert_memory_equal(got, y->data, 4 * sizeof(float));
    assert_memory_equal(got + 4, mean->data, sizeof(float));
    ed_tensor_free(x);
    ed_tensor_free(y);
    ed_tensor_free(mean);
}

static void expect_error(const char *args, int status, const char *want)
{
    cli_run(ED_CLI, TMP, &r, args);
    assert_int_equal(r.status, status);
    if (!strstr(r.err, want)) fail_msg("edifice %s: stderr should contain '%s', got: %s", args, want, r.err);
}

static void test_unsupported_fail_clearly(void **state)
{
    (void)state;
    expect_error("export-graph '" ED_SOURCE_DIR "/examples/mlp.edir' --out g16 --weights f16", 2,
                 "--weights f16 is not implemented for a graph file");
    expect_error("export ddpm --ckpt ck.safetensors --out p8 --weights f8", 2, "--weights wants f32, bf16 or f16");
    expect_error("export ddpm --ckpt ck.safetensors --out pa --target aarch64-unknown-linux-gnu", 1,
                 "target triple 'aarch64-unknown-linux-gnu' is not supported");
    expect_error("export ddpm --ckpt ck.safetensors --out ps --seed 3", 2, "the seed is an argument");
    expect_error("export ddpm --out px", 2, "--ckpt FILE is required");
    /* another CPU of this architecture (this one runs x86-64-v3 code too): it links and runs */
    need_cc();
    assert_int_equal(sh("mkdir -p v3"), 0);
    cli_ok("export ddpm --ckpt ck.safetensors --out v3/policy --target-cpu x86-64-v3");
    assert_int_equal(sh("cc -std=c17 -Iv3 -o calls_v3 '%s/tests/export/calls.c' v3/policy.o -lopenblas -lm && "
                        "./calls_v3 7 1 obs.raw v3.raw",
                        ED_SOURCE_DIR),
                     0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy_bits),
        cmocka_unit_test(test_policy_bf16_bits),
        cmocka_unit_test(test_no_blas),
        cmocka_unit_test(test_graph_bits),
        cmocka_unit_test(test_unsupported_fail_clearly),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
