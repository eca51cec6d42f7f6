/* Shared by the commands that run graphs: --input NAME=FILE.npy bindings, the
 * compile options, compiling and running once, and writing every output as
 * DIR/NAME.npy. */
#include "tools/cli.h"
#include "io/npy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cli_feeds_free(cli_feeds *f)
{
    for (int i = 0; i < f->n; i++) {
        ed_tensor_free(f->tensors[i]);
        free(f->names[i]);
    }
}

/* NAME=FILE.npy */
int cli_feeds_add(cli_feeds *f, const char *spec, const char *cmd)
{
    const char *eq = spec ? strchr(spec, '=') : NULL;
    if (!eq || eq == spec || !eq[1])
        return cli_error(CLI_USAGE, "%s: --input wants NAME=FILE.npy, got '%s'", cmd, spec ? spec : "");
    if (f->n == CLI_MAX_FEEDS) return cli_error(CLI_USAGE, "%s: more than %d inputs", cmd, CLI_MAX_FEEDS);
    ed_tensor *t = ed_npy_read(eq + 1);
    if (!t) return cli_error(CLI_FAIL, "%s", ed_last_error());
    size_t len = (size_t)(eq - spec);
    char *name = malloc(len + 1);
    if (!name) {
        ed_tensor_free(t);
        return cli_error(CLI_FAIL, "out of memory");
    }
    memcpy(name, spec, len);
    name[len] = '\0';
    f->names[f->n] = name;
    f->tensors[f->n] = t;
    f->feeds[f->n] = (ed_feed){name, t};
    f->n++;
    return CLI_OK;
}

int cli_write_outputs(const ed_program *p, const char *dir, const char *cmd, FILE *report)
{
    if (cli_make_dirs(dir) != 0) return cli_error(CLI_FAIL, "%s: cannot create directory '%s'", cmd, dir);
    for (int i = 0; i < ed_program_num_outputs(p); i++) {
        const char *name = ed_program_output_name(p, i);
        const ed_tensor *t = ed_program_output_at(p, i);
        char path[4096], type[96];
        if (strchr(name, '/')) return cli_error(CLI_FAIL, "%s: output name '%s' cannot be a file name", cmd, name);
        snprintf(path, sizeof path, "%s/%s.npy", dir, name);
        if (ed_npy_write(path, t) != ED_OK) return cli_error(CLI_FAIL, "%s", ed_last_error());
        fprintf(report, "%s: %s -> %s\n", name, ed_type_str(t->dtype, t->shape, type, sizeof type), path);
    }
    return CLI_OK;
}

/* --backend jit|interp */
static int parse_backend(const char *cmd, const char *v, ed_backend *out)
{
    if (v && strcmp(v, "jit") == 0) *out = ED_BACKEND_JIT;
    else if (v && strcmp(v, "interp") == 0) *out = ED_BACKEND_INTERP;
    else
        return cli_error(CLI_USAGE, "%s: --backend wants jit or interp, got '%s' (try edifice %s --help)", cmd,
                         v ? v : "", cmd);
    return CLI_OK;
}

/* --arena inplace|reuse|separate */
static int parse_arena(const char *cmd, const char *v, ed_arena_mode *out)
{
    if (v && strcmp(v, "inplace") == 0) *out = ED_ARENA_INPLACE;
    else if (v && strcmp(v, "reuse") == 0) *out = ED_ARENA_REUSE;
    else if (v && strcmp(v, "separate") == 0) *out = ED_ARENA_SEPARATE;
    else return cli_error(CLI_USAGE, "%s: --arena wants inplace, reuse or separate, got '%s'", cmd, v ? v : "");
    return CLI_OK;
}

bool cli_run_arg(cli_run_args *a, int argc, char **argv, int *i, int *rc)
{
    const char *v;
    if (cli_pass_arg(a->cmd, &a->passes, argc, argv, i, rc)) {
        /* taken */
    } else if (cli_opt_level_arg(a->cmd, argc, argv, i, &a->opt_level, rc)) {
        /* taken */
    } else if (cli_option(argc, argv, i, "--backend", &v)) {
        *rc = parse_backend(a->cmd, v, &a->backend);
    } else if (cli_option(argc, argv, i, "--arena", &v)) {
        *rc = parse_arena(a->cmd, v, &a->arena);
    } else if (strcmp(argv[*i], "--stats") == 0) {
        a->stats = true;
    } else if (cli_option(argc, argv, i, "--input", &v)) {
        *rc = cli_feeds_add(&a->feeds, v, a->cmd);
    } else if (cli_option(argc, argv, i, "--out", &v)) {
        if (!v) *rc = cli_error(CLI_USAGE, "%s: --out needs a directory", a->cmd);
        a->out = v;
    } else if (cli_option(argc, argv, i, "--seed", &v)) {
        if (!cli_parse_u64(v, &a->seed))
            *rc = cli_error(CLI_USAGE, "%s: --seed wants a whole number >= 0, got '%s'", a->cmd, v ? v : "");
    } else if (argv[*i][0] == '-' && argv[*i][1]) {
        return false;
    } else if (a->path) {
        *rc = cli_error(CLI_USAGE, "%s: one graph file at a time ('%s' and '%s')", a->cmd, a->path, argv[*i]);
    } else {
        a->path = argv[*i];
    }
    return true;
}

int cli_run_and_write(ed_graph *g, const cli_run_args *a, FILE *report)
{
    ed_store *st = ed_store_new(a->seed);
    if (!st) return cli_error(CLI_FAIL, "out of memory");
    int rc;
    ed_pass_opts po = cli_pass_opts(&a->passes);
    ed_compile_opts o = {.backend = a->backend,
                         .seed = a->seed,
                         .opt_level = a->opt_level,
                         .arena = a->arena,
                         .passes = a->passes.pipeline,
                         .pass_opts = &po};
    ed_program *p = ed_compile(g, st, &o);
    if (p && a->stats) cli_print_stats(p, stderr);
    if (!p) rc = cli_error(CLI_FAIL, "%s: %s", a->path, ed_last_error());
    else if (ed_run(p, a->feeds.feeds, a->feeds.n) != ED_OK)
        rc = cli_error(CLI_FAIL, "%s: %s", a->path, ed_last_error());
    else rc = cli_write_outputs(p, a->out, a->cmd, report);
    ed_program_free(p);
    ed_store_free(st);
    return rc;
}

void cli_print_stats(const ed_program *p, FILE *f)
{
    ed_compile_stats s = ed_program_compile_stats(p);
    if (ed_program_backend(p) == ED_BACKEND_INTERP)
        fprintf(f, "compile: interp, nothing to compile, %d kernels\n", s.kernels);
    else
        fprintf(f, "compile: lower %.2f ms, optimize %.2f ms, codegen %.2f ms, %d kernels, cache %s\n%s", s.lower_ms,
                s.optimize_ms, s.codegen_ms, s.kernels, s.cache,
                s.passes_skipped ? "compile: graph passes, lowering and LLVM skipped (the cache entry holds them)\n"
                                 : "");
    const ed_arena_stats *m = &s.memory;
    fprintf(f, "memory: arena %lld bytes%s, buffers %lld bytes (%d), peak live %lld bytes, %d in place\n",
            (long long)m->arena_bytes,
            ed_program_backend(p) == ED_BACKEND_INTERP ? " (planned; interp allocates per node)" : "",
            (long long)m->buffer_bytes, m->buffers, (long long)m->peak_bytes, m->inplace);
}
