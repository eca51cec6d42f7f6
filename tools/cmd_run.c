/* edifice run: bind .npy inputs, run a graph on a backend, write outputs as .npy. */
#include "backend/backend.h"
#include "ir/text.h"
#include "tools/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: edifice run FILE.edir --input NAME=FILE.npy ... --out DIR [--seed N]\n"
    "                   [--backend jit|interp] [-O0|-O1|-O2|-O3] [--stats]\n"
    "                   [--arena inplace|reuse|separate]\n"
    "                   [--passes LIST] [--print-after-all] [--print-after=NAME] [--pass-stats]\n"
    "\n"
    "Runs the graph once. Every `input` of the graph must be bound with --input;\n"
    "params and state start from their initializers, drawn from --seed (default 0),\n"
    "which also seeds the random ops. Each `out NAME` is written as DIR/NAME.npy (DIR\n"
    "is created if missing).\n"
    "\n"
    "  --backend jit|interp  the LLVM JIT (default) or the reference interpreter\n"
    "  -O0 .. -O3            LLVM optimization level (default -O2; also --opt-level N)\n"
    "  --stats               print the compile times, kernel count and memory plan on stderr\n"
    "  --arena MODE          the JIT's memory plan: inplace (default: buffers reused, elementwise\n"
    "                        ops overwrite dying inputs), reuse (no in-place), separate (no reuse)\n";

int cmd_run(int argc, char **argv)
{
    cli_run_args a = {.cmd = "run"};
    int rc = CLI_OK;
    for (int i = 1; i < argc && rc == CLI_OK; i++) {
        if (cli_is_help(argv[i])) {
            fputs(usage, stdout);
            fputs(cli_pass_usage, stdout);
            cli_feeds_free(&a.feeds);
            return CLI_OK;
        }
        if (!cli_run_arg(&a, argc, argv, &i, &rc))
            rc = cli_error(CLI_USAGE, "run: unknown option '%s' (try edifice run --help)", argv[i]);
    }
    if (rc == CLI_OK && !a.path) rc = cli_error(CLI_USAGE, "run: no graph file given (try edifice run --help)");
    if (rc == CLI_OK && !a.out) rc = cli_error(CLI_USAGE, "run: --out DIR is required");
    if (rc == CLI_OK) {
        ed_graph *g = ed_graph_read_file(a.path);
        rc = g ? cli_run_and_write(g, &a, stdout) : cli_error(CLI_FAIL, "%s", ed_last_error());
        ed_graph_free(g);
    }
    cli_feeds_free(&a.feeds);
    return rc;
}
