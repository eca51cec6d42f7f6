/* The benchmark driver: `bench WORKLOAD [--backend jit|interp] [--threads N]
 * [--repeats R] [--steps S] [-O0..-O3] [--passes PIPELINE] [--arena MODE] [--no-warmup]`. Workloads are defined in bench/README.md; record what
 * it prints, with the command, in bench/RESULTS.md. */
#include "bench/bench.h"
#include "bench/workloads.h"
#include "runtime/comm.h"

#include <cblas.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Every compile starts cold: the JIT's object cache is a fresh folder of this run (unless
 * EDIFICE_CACHE_DIR names one), removed at the end; bench_train then times a warm one. */
static char cache_dir[64];

static void cache_open(void)
{
    const char *set = getenv("EDIFICE_CACHE_DIR");
    if ((set && *set) || getenv("EDIFICE_NO_CACHE")) return;
    snprintf(cache_dir, sizeof cache_dir, "/tmp/edifice-bench-cache-XXXXXX");
    if (!mkdtemp(cache_dir) || setenv("EDIFICE_CACHE_DIR", cache_dir, 1) != 0) cache_dir[0] = '\0';
}

static void cache_close(void)
{
    DIR *d = cache_dir[0] ? opendir(cache_dir) : NULL;
    if (!d) return;
    char path[512];
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.' && snprintf(path, sizeof path, "%s/%s", cache_dir, e->d_name) < (int)sizeof path)
            unlink(path);
    closedir(d);
    rmdir(cache_dir);
}

static const struct {
    const char *name;
    int (*run)(const bench_opts *o);
} workloads[] = {
    {"w1", NULL}, /* NULL: a training workload, run by bench_train */
    {"w2", NULL},        {"w3", NULL},         {"w3d", NULL},      {"w4", bench_w4},     {"w4net", bench_w4net},
    {"w5", NULL},        {"w6", bench_w6},     {"w7", bench_w7},   {"w8", NULL},         {"w9_unet", NULL},
    {"w10_dcgan", NULL}, {"loop", bench_loop}, {"rng", bench_rng}, {"gemv", bench_gemv},
};

static int usage(void)
{
    fprintf(
        stderr,
        "usage: bench WORKLOAD [--backend jit|interp] [--threads N] [--repeats R] [--steps S] [-O0..-O3] [--passes P] [--no-warmup] [--dump-ir FILE]\n"
        "  --passes '' compiles without graph passes; --arena inplace|reuse|separate picks the JIT memory plan\n"
        "workloads:");
    for (size_t i = 0; i < sizeof workloads / sizeof workloads[0]; i++) fprintf(stderr, " %s", workloads[i].name);
    fprintf(stderr, "\n");
    return 2;
}

static bool int_arg(const char *s, int lo, int hi, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == 0 || *end != 0 || v < lo || v > hi) return false;
    *out = (int)v;
    return true;
}

int main(int argc, char **argv)
{
    if (argc < 2) return usage();
    bench_opts o = {.backend = ED_BACKEND_JIT, .threads = 1, .repeats = 5, .steps = 3};
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strlen(a) == 3 && a[0] == '-' && a[1] == 'O' && a[2] >= '0' && a[2] <= '3') {
            o.opt = (ed_opt_level)(ED_OPT_O0 + (a[2] - '0'));
            continue;
        }
        if (!strcmp(a, "--no-warmup")) { /* for calls of a minute (w4net's DDPM 1000) */
            o.no_warmup = true;
            continue;
        }
        bool ok = v != NULL;
        if (!strcmp(a, "--backend") && v) {
            ok = !strcmp(v, "jit") || !strcmp(v, "interp");
            o.backend = !strcmp(v, "interp") ? ED_BACKEND_INTERP : ED_BACKEND_JIT;
        } else if (!strcmp(a, "--threads") && v) ok = int_arg(v, 1, 64, &o.threads);
        else if (!strcmp(a, "--repeats") && v) ok = int_arg(v, 1, 100, &o.repeats);
        else if (!strcmp(a, "--steps") && v) ok = int_arg(v, 1, 1000000, &o.steps);
        else if (!strcmp(a, "--passes") && v) o.passes = v;
        else if (!strcmp(a, "--dump-ir") && v) o.dump_ir = v;
        else if (!strcmp(a, "--arena") && v) {
            ok = !strcmp(v, "inplace") || !strcmp(v, "reuse") || !strcmp(v, "separate");
            o.arena = !strcmp(v, "separate") ? ED_ARENA_SEPARATE
                      : !strcmp(v, "reuse")  ? ED_ARENA_REUSE
                                             : ED_ARENA_INPLACE;
        } else ok = false;
        if (!ok) {
            fprintf(stderr, "bench: bad argument %s%s%s\n", a, v ? " " : "", v ? v : "");
            return usage();
        }
        i++;
    }
    ed_set_threads(o.threads); /* the pool and OpenBLAS */
    /* Under mpirun (an EDIFICE_MPI build) W1 and W3 run data parallel; rank 0 reports. */
    if (ed_comm_launched() && ed_comm_init() != ED_OK) {
        fprintf(stderr, "bench: %s\n", ed_last_error());
        return 1;
    }
    if (ed_comm_rank() != 0 && !freopen("/dev/null", "w", stdout)) return 1;
    cache_open();
    int rc = -1;
    for (size_t i = 0; i < sizeof workloads / sizeof workloads[0] && rc < 0; i++)
        if (!strcmp(argv[1], workloads[i].name))
            rc = workloads[i].run ? workloads[i].run(&o) : bench_train(&o, workloads[i].name);
    ed_comm_finalize();
    cache_close();
    if (rc >= 0) return rc;
    fprintf(stderr, "bench: unknown workload %s\n", argv[1]);
    return usage();
}
