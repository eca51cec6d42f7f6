/* edifice run: bind .npy inputs, run a graph on a backend, write outputs as .npy. */
#include "backend/backend.h"
#include "ir/text.h"
#include "runtime/npy.h"
#include "tools/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: edifice run FILE.edir --input NAME=FILE.npy ... --out DIR [--seed N]\n"
    "\n"
    "Runs the graph once on the reference interpreter. Every `input` of the graph must\n"
    "be bound with --input; params and state start from their initializers, drawn\n"
    "from --seed (default 0), which also seeds the random ops. Each `out NAME` is\n"
    "written as DIR/NAME.npy (DIR is created if missing).\n";

int cmd_run(int argc, char **argv)
{
    const char *path = NULL, *out = NULL, *v;
    unsigned long long seed = 0;
    cli_feeds feeds = {.n = 0};
    int rc = CLI_OK;
    for (int i = 1; i < argc && rc == CLI_OK; i++) {
        if (cli_is_help(argv[i])) {
            fputs(usage, stdout);
            cli_feeds_free(&feeds);
            return CLI_OK;
        }
        if (cli_option(argc, argv, &i, "--input", &v)) rc = cli_feeds_add(&feeds, v, "run");
        else if (cli_option(argc, argv, &i, "--out", &v)) {
            if (!v) rc = cli_error(CLI_USAGE, "run: --out needs a directory");
            out = v;
        } else if (cli_option(argc, argv, &i, "--seed", &v)) {
            if (!cli_parse_u64(v, &seed)) rc = cli_error(CLI_USAGE, "run: --seed wants a whole number >= 0, got '%s'", v ? v : "");
        } else if (argv[i][0] == '-' && argv[i][1]) {
            rc = cli_error(CLI_USAGE, "run: unknown option '%s' (try edifice run --help)", argv[i]);
        } else if (path) {
            rc = cli_error(CLI_USAGE, "run: one graph file at a time ('%s' and '%s')", path, argv[i]);
        } else {
            path = argv[i];
        }
    }
    if (rc == CLI_OK && !path) rc = cli_error(CLI_USAGE, "run: no graph file given (try edifice run --help)");
    if (rc == CLI_OK && !out) rc = cli_error(CLI_USAGE, "run: --out DIR is required");
    if (rc != CLI_OK) {
        cli_feeds_free(&feeds);
        return rc;
    }

    ed_graph *g = ed_graph_read_file(path);
    ed_store *st = ed_store_new(seed);
    ed_program *p = NULL;
    if (!g) rc = cli_error(CLI_FAIL, "%s", ed_last_error());
    else if (!st) rc = cli_error(CLI_FAIL, "out of memory");
    else if (!(p = ed_compile(g, st, &(ed_compile_opts){.backend = ED_BACKEND_INTERP, .seed = seed})))
        rc = cli_error(CLI_FAIL, "%s: %s", path, ed_last_error());
    else if (ed_run(p, feeds.feeds, feeds.n) != ED_OK)
        rc = cli_error(CLI_FAIL, "%s: %s", path, ed_last_error());
    else
        rc = cli_write_outputs(p, out, "run", stdout);
    ed_program_free(p);
    ed_store_free(st);
    ed_graph_free(g);
    cli_feeds_free(&feeds);
    return rc;
}
