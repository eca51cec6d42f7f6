/* edifice: dump and run graphs, and train generative models, from the command line. */
#include "backend/backend.h"
#include "backend/llvm/llvm_info.h"
#include "tools/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: edifice COMMAND [ARGS]\n"
    "\n"
    "commands:\n"
    "  dump FILE.edir [--format text|dot|llvm|asm] [-O0..-O3]\n"
    "                                       print a graph as text or Graphviz, or what the\n"
    "                                       JIT compiles it to (LLVM IR, host assembly)\n"
    "  run FILE.edir --input NAME=FILE.npy ... --out DIR [--seed N]\n"
    "                                       run a graph, write each output as DIR/NAME.npy\n"
    "  grad FILE.edir --loss NAME --wrt NAME[,NAME...] [--input NAME=FILE.npy ... --out DIR]\n"
    "                                       append the backward graph, print it, optionally run it\n"
    "  opt FILE.edir [--passes LIST]        run graph passes, print the resulting graph\n"
    "  train MODEL --data NAME|FILE.npy [--steps N --batch B --lr X --seed S --out FILE\n"
    "        --resume FILE]                 train a model, write a checkpoint (Ctrl-C saves)\n"
    "  sample MODEL --ckpt FILE --n N --out FILE.npy|FILE.png [--sampler NAME --steps K]\n"
    "                                       draw samples from a checkpoint (one compiled call)\n"
    "  export MODEL --ckpt FILE --out PATH [--batch B --sampler NAME --steps K --target-cpu CPU]\n"
    "                                       the sampler as PATH.o + PATH.h for a C program\n"
    "                                       (cc prog.c PATH.o -lopenblas -lm; no LLVM needed)\n"
    "  export-graph FILE.edir --out PATH [--params FILE]\n"
    "                                       any graph as PATH.o + PATH.h\n"
    "  eval MODEL --ckpt FILE [--data NAME] sliced Wasserstein and MMD against fresh data,\n"
    "                                       beside the data-against-data floor\n"
    "  models [MODEL]                       list the models and their options with defaults\n"
    "  data NAME --n N [--seed S] --out FILE.npy|FILE.png\n"
    "                                       write samples of a built-in data set\n"
    "  version                              print the version and the LLVM it links\n"
    "\n"
    "run, grad, train, sample and eval also take --backend jit|interp (default jit); run and grad\n"
    "take -O0..-O3 (default -O2), --stats, and the pass options --passes LIST,\n"
    "--print-after-all, --print-after=NAME and --pass-stats (opt takes those too).\n"
    "--check-numerics (any command, anywhere on the line) checks every value as it is computed and\n"
    "fails naming the first op that made a NaN or an infinity (slow; the passes do not fuse).\n"
    "--no-cache (any command, anywhere on the line; or EDIFICE_NO_CACHE=1) compiles without the JIT's\n"
    "object cache ($EDIFICE_CACHE_DIR, else ~/.cache/edifice/jit; README.md).\n"
    "EDIFICE_COMPILE_THREADS=N: threads of a cold JIT compile (default: the online CPUs, at most 8).\n"
    "EDIFICE_THREADS=N: threads programs run on, OpenBLAS's included (default: the online CPUs, at most 64).\n"
    "`edifice COMMAND --help` describes one command.\n";

static int dispatch(int argc, char **argv)
{
    if (argc < 2 || cli_is_help(argv[1]) || strcmp(argv[1], "help") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "dump") == 0) return cmd_dump(argc - 1, argv + 1);
    if (strcmp(cmd, "run") == 0) return cmd_run(argc - 1, argv + 1);
    if (strcmp(cmd, "grad") == 0) return cmd_grad(argc - 1, argv + 1);
    if (strcmp(cmd, "opt") == 0) return cmd_opt(argc - 1, argv + 1);
    if (strcmp(cmd, "train") == 0) return cmd_train(argc - 1, argv + 1);
    if (strcmp(cmd, "sample") == 0) return cmd_sample(argc - 1, argv + 1);
    if (strcmp(cmd, "export") == 0) return cmd_export(argc - 1, argv + 1);
    if (strcmp(cmd, "export-graph") == 0) return cmd_export_graph(argc - 1, argv + 1);
    if (strcmp(cmd, "eval") == 0) return cmd_eval(argc - 1, argv + 1);
    if (strcmp(cmd, "models") == 0) return cmd_models(argc - 1, argv + 1);
    if (strcmp(cmd, "data") == 0) return cmd_data(argc - 1, argv + 1);
    if (strcmp(cmd, "plot-log") == 0) return cmd_plot_log(argc - 1, argv + 1);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        char llvm[256];
        ed_llvm_describe(llvm, sizeof llvm);
        printf("edifice 0.1.0, LLVM %s\n", llvm);
        return CLI_OK;
    }
    return cli_error(CLI_USAGE, "unknown command '%s' (try edifice --help)", cmd);
}

/* A flag taken anywhere on the line, for every command that compiles, before the command
 * parses its own: the library reads it as the environment variable env = "1".
 * --check-numerics: the programs check each value as it is computed (backend/backend.h);
 * --no-cache: the JIT neither reads nor writes its object cache. */
static int take_global_flag(int argc, char **argv, const char *flag, const char *env)
{
    int n = 0;
    for (int i = 0; i < argc; i++)
        if (i == 0 || strcmp(argv[i], flag) != 0) argv[n++] = argv[i];
    if (n < argc && setenv(env, "1", 1) != 0) return -1;
    argv[n] = NULL;
    return n;
}

int main(int argc, char **argv)
{
    argc = take_global_flag(argc, argv, "--check-numerics", "EDIFICE_CHECK_NUMERICS");
    if (argc < 0) return cli_finish_stdout(cli_error(CLI_FAIL, "--check-numerics: cannot set the environment"));
    argc = take_global_flag(argc, argv, "--no-cache", "EDIFICE_NO_CACHE");
    if (argc < 0) return cli_finish_stdout(cli_error(CLI_FAIL, "--no-cache: cannot set the environment"));
    ed_set_threads(0); /* EDIFICE_THREADS, else the online CPUs */
    return cli_finish_stdout(dispatch(argc, argv));
}
