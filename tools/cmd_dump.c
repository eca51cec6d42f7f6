/* edifice dump: parse a graph and print it as text (round trip) or Graphviz. */
#include "ir/text.h"
#include "runtime/error.h"
#include "tools/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: edifice dump FILE.edir [--format text|dot]\n"
    "\n"
    "Parses FILE.edir, verifies it and prints it: as edifice text (the default; the\n"
    "printed form parses back to the same graph) or as a Graphviz digraph\n"
    "(render with: edifice dump g.edir --format dot | dot -Tpng -o g.png).\n";

int cmd_dump(int argc, char **argv)
{
    const char *path = NULL, *format = "text", *v;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(usage, stdout);
            return CLI_OK;
        }
        if (cli_option(argc, argv, &i, "--format", &v)) {
            if (!v) return cli_error(CLI_USAGE, "dump: --format needs a value (text or dot)");
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
    bool dot = strcmp(format, "dot") == 0;
    if (!dot && strcmp(format, "text") != 0)
        return cli_error(CLI_USAGE, "dump: unknown format '%s' (text or dot)", format);

    ed_graph *g = ed_graph_read_file(path);
    if (!g) return cli_error(CLI_FAIL, "%s", ed_last_error());
    char *text = dot ? ed_graph_dot(g) : ed_graph_print(g);
    ed_graph_free(g);
    if (!text) return cli_error(CLI_FAIL, "dump: %s", ed_last_error());
    fputs(text, stdout);
    free(text);
    return CLI_OK;
}
