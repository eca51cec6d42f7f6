/* edifice opt: run graph passes on a graph file and print the result as text. */
#include "ir/text.h"
#include "passes/pass.h"
#include "tools/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] = "usage: edifice opt FILE.edir [--passes LIST] [--print-after-all] [--print-after=NAME]\n"
                            "                   [--pass-stats]\n"
                            "\n"
                            "Parses FILE.edir, runs the passes (the IR verifier checks the graph after each\n"
                            "one) and prints the resulting graph as text on stdout.\n"
                            "\n";

static void print_pass_list(FILE *f)
{
    fputs("\npasses:\n", f);
    for (int i = 0; i < ed_pass_count(); i++)
        fprintf(f, "  %-10s %s\n", ed_pass_at(i)->name, ed_pass_at(i)->description);
}

int cmd_opt(int argc, char **argv)
{
    const char *path = NULL;
    cli_pass_args pa = {0};
    int rc = CLI_OK;
    for (int i = 1; i < argc && rc == CLI_OK; i++) {
        if (cli_is_help(argv[i])) {
            fputs(usage, stdout);
            fputs(cli_pass_usage, stdout);
            print_pass_list(stdout);
            return CLI_OK;
        }
        if (cli_pass_arg("opt", &pa, argc, argv, &i, &rc)) continue;
        if (argv[i][0] == '-' && argv[i][1])
            rc = cli_error(CLI_USAGE, "opt: unknown option '%s' (try edifice opt --help)", argv[i]);
        else if (path) rc = cli_error(CLI_USAGE, "opt: one graph file at a time ('%s' and '%s')", path, argv[i]);
        else path = argv[i];
    }
    if (rc != CLI_OK) return rc;
    if (!path) return cli_error(CLI_USAGE, "opt: no graph file given (try edifice opt --help)");
    ed_graph *g = ed_graph_read_file(path);
    if (!g) return cli_error(CLI_FAIL, "%s", ed_last_error());
    ed_pass_opts po = cli_pass_opts(&pa);
    po.verify = ED_VERIFY_ON;
    if (ed_pass_run(g, pa.pipeline, &po) != ED_OK) rc = cli_error(CLI_FAIL, "opt: %s: %s", path, ed_last_error());
    else if (ed_graph_write(g, stdout) != ED_OK) rc = cli_error(CLI_FAIL, "opt: %s", ed_last_error());
    ed_graph_free(g);
    return rc;
}
