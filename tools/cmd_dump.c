/* edifice dump: parse a graph and print it as text (round trip) or Graphviz, or print
 * what the JIT compiles it to: optimized LLVM IR or host assembly. */
#include "backend/llvm/jit.h"
#include "ir/text.h"
#include "runtime/error.h"
#include "tools/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: edifice dump FILE.edir [--format text|dot|llvm|asm] [-O0|-O1|-O2|-O3] [pass options]\n"
    "\n"
    "Parses FILE.edir, verifies it and prints it:\n"
    "  text  edifice text (the default; the printed form parses back to the same graph)\n"
    "  dot   a Graphviz digraph (edifice dump g.edir --format dot | dot -Tpng -o g.png)\n"
    "  llvm  the LLVM IR the JIT runs, after the graph passes (as `run` compiles it) and\n"
    "        LLVM's optimization at -On (default -O2)\n"
    "  asm   the host assembly the JIT generates for it at -On\n"
    "text and dot print the graph as written (`edifice opt` prints it after passes); llvm\n"
    "and asm take the pass options:\n";

typedef enum { FMT_TEXT, FMT_DOT, FMT_LLVM, FMT_ASM } dump_format;

static bool parse_format(const char *s, dump_format *f)
{
    static const char *names[] = {"text", "dot", "llvm", "asm"};
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0) {
            *f = (dump_format)i;
            return true;
        }
    return false;
}

static char *render(const ed_graph *g, dump_format f, ed_opt_level level)
{
    int n = level == ED_OPT_DEFAULT ? 2 : (int)level - ED_OPT_O0;
    switch (f) {
    case FMT_DOT: return ed_graph_dot(g);
    case FMT_LLVM: return ed_jit_dump(g, n, ED_JIT_DUMP_IR);
    case FMT_ASM: return ed_jit_dump(g, n, ED_JIT_DUMP_ASM);
    default: return ed_graph_print(g);
    }
}

int cmd_dump(int argc, char **argv)
{
    const char *path = NULL, *format = "text", *v;
    ed_opt_level level = ED_OPT_DEFAULT;
    cli_pass_args passes = {0};
    bool pass_given = false;
    int rc = CLI_OK;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(usage, stdout);
            fputs(cli_pass_usage, stdout);
            return CLI_OK;
        }
        if (cli_opt_level_arg("dump", argc, argv, &i, &level, &rc)) {
            if (rc != CLI_OK) return rc;
        } else if (cli_pass_arg("dump", &passes, argc, argv, &i, &rc)) {
            if (rc != CLI_OK) return rc;
            pass_given = true;
        } else if (cli_option(argc, argv, &i, "--format", &v)) {
            if (!v) return cli_error(CLI_USAGE, "dump: --format needs a value (text, dot, llvm or asm)");
            format = v;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return cli_error(CLI_USAGE, "dump: unknown option '%s' (try edifice dump --help)", argv[i]);
        } else if (path) {
            return cli_error(CLI_USAGE, "dump: one graph file at a time ('%s' and '%s')", path, argv[i]);
        } else {
            path = argv[i];
        }
    }
    if (!path) return cli_error(CLI_USAGE, "dump: no graph file given (try edifice dump --help)");
    dump_format f;
    if (!parse_format(format, &f))
        return cli_error(CLI_USAGE, "dump: unknown format '%s' (text, dot, llvm or asm)", format);

    if (pass_given && (f == FMT_TEXT || f == FMT_DOT))
        return cli_error(CLI_USAGE,
                         "dump: pass options apply to --format llvm|asm (for text after passes: edifice opt)");
    ed_graph *g = ed_graph_read_file(path);
    if (!g) return cli_error(CLI_FAIL, "%s", ed_last_error());
    /* What the JIT runs is the graph after the passes, as ed_compile does it. */
    ed_pass_opts po = cli_pass_opts(&passes);
    if ((f == FMT_LLVM || f == FMT_ASM) && ed_pass_run(g, passes.pipeline, &po) != ED_OK) {
        ed_graph_free(g);
        return cli_error(CLI_FAIL, "dump: %s", ed_last_error());
    }
    char *text = render(g, f, level);
    ed_graph_free(g);
    if (!text) return cli_error(CLI_FAIL, "dump: %s", ed_last_error());
    fputs(text, stdout);
    free(text);
    return CLI_OK;
}
