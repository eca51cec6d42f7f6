/* edifice export / export-graph: a trained sampler or any graph as NAME.o + NAME.h
 * (backend/export.h), for a C program linked with `cc prog.c NAME.o -lopenblas -lm`. */
#include "backend/export.h"
#include "io/safetensors.h"
#include "ir/text.h"
#include "tools/cli.h"
#include "tools/gen_args.h"

#include <stdio.h>
#include <string.h>

static const char usage[] =
    "usage: edifice export MODEL --ckpt FILE --out PATH [--batch B] [--sampler NAME] [--steps K]\n"
    "                      [--guidance S] [--eta X] [--weights f32|bf16|f16] [--target-cpu CPU] [--target TRIPLE]\n"
    "                      [--name ID]\n"
    "\n"
    "Writes PATH.o and PATH.h: MODEL's whole sampler for the checkpoint as one C function,\n"
    "  int NAME_sample(const float *obs, uint64_t seed, float *out)   (conditional models;\n"
    "  unconditional ones take no obs), with the weights baked in as constant data. Link it\n"
    "with `cc prog.c PATH.o -lopenblas -lm`: it needs nothing from LLVM or edifice, and on the\n"
    "exporting CPU its samples are bit for bit those of `edifice sample MODEL --ckpt FILE\n"
    "--n B --batch B --seed S` with the same sampler options. PATH.h documents the shapes.\n"
    "\n"
    "  --out PATH        the files PATH.o and PATH.h; NAME is PATH's file name (or --name)\n"
    "  --batch B         samples per call (default 1: one observation, one chunk)\n"
    "  --weights W       the dense layers' weights in the object: f32 (default), or bf16 / f16\n"
    "                    (half the bytes; the same samples as `edifice sample --weights W`)\n"
    "  --target-cpu CPU  code for another CPU of this architecture, e.g. x86-64-v3 (default:\n"
    "                    this machine's CPU; bit-identity with the CLI holds on the default)\n"
    "  --target TRIPLE   only this machine's architecture is supported (an error otherwise)\n"
    "  --name ID         the C prefix of the functions (default: PATH's file name)\n"
    "  --no-blas         matrix products by plain loops inside the object: link without\n"
    "                    -lopenblas (slower on large layers; no longer the CLI's bits)\n"
    "  --seed            not taken: the seed is an argument of NAME_sample\n";

static const char graph_usage[] =
    "usage: edifice export-graph FILE.edir --out PATH [--params FILE.safetensors] [--init-seed N]\n"
    "                            [-O0|-O1|-O2|-O3] [--target-cpu CPU] [--target TRIPLE] [--name ID]\n"
    "                            [--no-blas]\n"
    "\n"
    "Writes PATH.o and PATH.h: the graph as one C function\n"
    "  int NAME_run(inputs..., outputs..., uint64_t seed, uint64_t call)\n"
    "(inputs and outputs in the graph's order, typed and sized in PATH.h), plus NAME_call for a\n"
    "workspace of the caller's. Params and state come from --params, else from their\n"
    "initializers drawn from --init-seed (default 0, as `edifice run --seed`), and are baked in.\n"
    "Link with `cc prog.c PATH.o -lopenblas -lm`. A graph with updates is refused.\n";

/* Options both commands take; false when argv[*i] is none of them. */
typedef struct {
    ed_export_opts eo;
    const char *weights;
} export_args;

static bool export_arg(const char *cmd, export_args *x, int argc, char **argv, int *i, int *rc)
{
    const char *v;
    if (cli_option(argc, argv, i, "--out", &v)) x->eo.out = v;
    else if (cli_option(argc, argv, i, "--target-cpu", &v)) x->eo.target_cpu = v;
    else if (cli_option(argc, argv, i, "--target", &v)) x->eo.triple = v;
    else if (cli_option(argc, argv, i, "--name", &v)) x->eo.name = v;
    else if (cli_option(argc, argv, i, "--weights", &v)) x->weights = v;
    else if (strcmp(argv[*i], "--no-blas") == 0) return x->eo.no_blas = true;
    else return false;
    if (!v || !*v) *rc = cli_error(CLI_USAGE, "%s: %s needs a value", cmd, argv[*i]);
    return true;
}

/* weights: where --weights goes (export: the sampler's options), NULL for export-graph,
 * which exports a graph's own dtypes. */
static int check_args(const char *cmd, const export_args *x, ed_dtype *weights)
{
    if (!x->eo.out) return cli_error(CLI_USAGE, "%s: --out PATH is required (writes PATH.o and PATH.h)", cmd);
    if (!x->weights) return CLI_OK;
    ed_dtype dt = ED_F32;
    int rc = gen_parse_weights(cmd, x->weights, &dt);
    if (rc == CLI_OK && dt != ED_F32 && !weights)
        return cli_error(CLI_USAGE,
                         "%s: --weights %s is not implemented for a graph file (its params keep their own dtypes); "
                         "export MODEL takes it",
                         cmd, x->weights);
    if (rc == CLI_OK && weights) *weights = dt;
    return rc;
}

static int finish(const ed_program *p, const export_args *x)
{
    if (ed_export_program(p, &x->eo) != ED_OK) return cli_error(CLI_FAIL, "%s", ed_last_error());
    printf("wrote %s.o and %s.h\n", x->eo.out, x->eo.out);
    return CLI_OK;
}

int cmd_export(int argc, char **argv)
{
    gen_args a = {.cmd = "export", .batch = 1};
    export_args x = {.eo.sample_fn = true};
    int rc;
    if (!gen_start(&a, usage, "edifice export ddpm --ckpt F --out policy", argc, argv, &rc)) return rc;
    for (int i = 2; i < argc && rc == CLI_OK; i++) {
        if (strcmp(argv[i], "--seed") == 0 || strncmp(argv[i], "--seed=", 7) == 0)
            rc = cli_error(CLI_USAGE, "export: --seed is not taken; the seed is an argument of NAME_sample");
        else if (strcmp(argv[i], "--backend") == 0 || strncmp(argv[i], "--backend=", 10) == 0)
            rc = cli_error(CLI_USAGE, "export: --backend is not taken; export compiles with the JIT's code generator");
        else if (!export_arg("export", &x, argc, argv, &i, &rc) && !gen_arg(&a, argc, argv, &i, &rc))
            rc = cli_error(CLI_USAGE, "export: unexpected argument '%s' (try edifice export --help)", argv[i]);
    }
    if (rc == CLI_OK) rc = check_args("export", &x, &a.so.weights);
    ed_checkpoint ck = {0};
    if (rc == CLI_OK) rc = gen_load(&a, &ck);
    if (rc != CLI_OK) return rc;
    ed_pass_opts po = cli_pass_opts(&a.passes);
    ed_gen_draw_opts o = {.sampler = a.so, .backend = ED_BACKEND_JIT, .passes = a.passes.pipeline, .pass_opts = &po};
    ed_graph *g = NULL;
    ed_program *p = ed_gen_compile(&ck.model, ck.store, a.batch, &o, &g);
    char about[1024], sampler[64];
    snprintf(about, sizeof about,
             " * edifice export %s --ckpt %s --batch %lld: the %s sampler of %s (step %lld), %lld sample(s) per\n"
             " * call. The _sample function with seed S gives the samples of `edifice sample %s --ckpt %s --n %lld\n"
             " * --batch %lld --seed S` with the same sampler options (--obs: these observations).\n",
             a.def->name, a.ckpt, (long long)a.batch, ed_gen_sampler_name(&ck.model, &a.so, sampler, sizeof sampler),
             a.def->name, (long long)ck.step, (long long)a.batch, a.def->name, a.ckpt, (long long)a.batch,
             (long long)a.batch);
    x.eo.about = about;
    rc = p ? finish(p, &x) : cli_error(CLI_FAIL, "export: %s", ed_last_error());
    ed_program_free(p);
    ed_graph_free(g);
    ed_checkpoint_free(&ck);
    return rc;
}

int cmd_export_graph(int argc, char **argv)
{
    export_args x = {0};
    const char *path = NULL, *params = NULL, *v;
    unsigned long long seed = 0;
    int level = 2, rc = CLI_OK;
    for (int i = 1; i < argc && rc == CLI_OK; i++) {
        if (cli_is_help(argv[i])) {
            fputs(graph_usage, stdout);
            return CLI_OK;
        }
        if (export_arg("export-graph", &x, argc, argv, &i, &rc)) continue;
        if (cli_option(argc, argv, &i, "--params", &v)) {
            if (!v) rc = cli_error(CLI_USAGE, "export-graph: --params needs a file");
            params = v;
        } else if (cli_option(argc, argv, &i, "--init-seed", &v)) {
            if (!v || !cli_parse_u64(v, &seed))
                rc = cli_error(CLI_USAGE, "export-graph: --init-seed wants a whole number, got '%s'", v ? v : "");
        } else if (strlen(argv[i]) == 3 && strncmp(argv[i], "-O", 2) == 0 && argv[i][2] >= '0' && argv[i][2] <= '3') {
            level = argv[i][2] - '0';
        } else if (argv[i][0] != '-' && !path) {
            path = argv[i];
        } else {
            rc = cli_error(CLI_USAGE, "export-graph: unexpected argument '%s' (try edifice export-graph --help)",
                           argv[i]);
        }
    }
    if (rc == CLI_OK && !path) rc = cli_error(CLI_USAGE, "export-graph: no graph file given");
    if (rc == CLI_OK) rc = check_args("export-graph", &x, NULL);
    if (rc != CLI_OK) return rc;
    ed_graph *g = ed_graph_read_file(path);
    ed_store *st = g ? ed_store_new(seed) : NULL;
    if (st && params && ed_safetensors_load_into(params, st, false, NULL) != ED_OK) {
        ed_store_free(st);
        st = NULL;
    }
    ed_compile_opts co = {.backend = ED_BACKEND_JIT, .opt_level = ED_OPT_O0 + level};
    ed_program *p = st ? ed_compile(g, st, &co) : NULL;
    char about[512];
    snprintf(about, sizeof about, " * edifice export-graph %s: graph @%s, -O%d, params %s.\n", path, g ? g->name : "?",
             level, params ? params : "from their initializers");
    x.eo.about = about;
    rc = p ? finish(p, &x) : cli_error(CLI_FAIL, "export-graph: %s", ed_last_error());
    ed_program_free(p);
    ed_store_free(st);
    ed_graph_free(g);
    return rc;
}
