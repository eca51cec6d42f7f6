/* edifice grad: append the backward graph of an output with respect to named leaves,
 * print the result, and optionally run it to write the gradients as .npy. */
#include "ir/text.h"
#include "passes/autodiff.h"
#include "tools/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: edifice grad FILE.edir --loss NAME --wrt NAME[,NAME...]\n"
    "                    [--input NAME=FILE.npy ... --out DIR] [--seed N]\n"
    "                    [--backend jit|interp] [-O0|-O1|-O2|-O3] [--stats]\n"
    "                    [--arena inplace|reuse|separate]\n"
    "                    [--passes LIST] [--print-after-all] [--print-after=NAME] [--pass-stats]\n"
    "\n"
    "Differentiates the output `out NAME` (a float scalar) with respect to the named\n"
    "leaves (inputs, params or state), binds each gradient as `out grad.LEAF` and\n"
    "prints the whole graph. With --out, also runs it once with the --input bindings\n"
    "(params from their initializers, seeded by --seed, default 0) and writes every\n"
    "output, gradients included, as DIR/NAME.npy.\n"
    "\n"
    "  --backend jit|interp  run on the LLVM JIT (default) or the reference interpreter\n"
    "  -O0 .. -O3            LLVM optimization level (default -O2; also --opt-level N)\n"
    "  --stats               print the compile times, kernel count and memory plan on stderr\n"
    "  --arena MODE          the JIT's memory plan: inplace (default: buffers reused, elementwise\n"
    "                        ops overwrite dying inputs), reuse (no in-place), separate (no reuse)\n";

#define MAX_WRT 64

static ed_node *find_leaf(const ed_graph *g, const char *name)
{
    const ed_op kinds[3] = {ED_OP_PARAM, ED_OP_INPUT, ED_OP_STATE};
    for (int i = 0; i < 3; i++) {
        ed_node *n = ed_graph_leaf(g, kinds[i], name);
        if (n) return n;
    }
    return NULL;
}

/* Split "a,b,c" into leaf nodes. */
static int resolve_wrt(ed_graph *g, const char *list, ed_node **wrt, int *n)
{
    char buf[4096];
    if (strlen(list) >= sizeof buf) return cli_error(CLI_USAGE, "grad: --wrt list too long");
    strcpy(buf, list);
    *n = 0;
    for (char *name = strtok(buf, ","); name; name = strtok(NULL, ",")) {
        if (*n == MAX_WRT) return cli_error(CLI_USAGE, "grad: more than %d --wrt names", MAX_WRT);
        ed_node *leaf = find_leaf(g, name);
        if (!leaf) return cli_error(CLI_FAIL, "grad: no input, param or state named \"%s\" in @%s", name, g->name);
        wrt[(*n)++] = leaf;
    }
    if (*n == 0) return cli_error(CLI_USAGE, "grad: --wrt needs at least one name");
    return CLI_OK;
}

static int differentiate(ed_graph *g, const char *loss_name, const char *wrt_list)
{
    ed_node *loss = ed_graph_output(g, loss_name);
    if (!loss) return cli_error(CLI_FAIL, "grad: @%s has no output named \"%s\"", g->name, loss_name);
    ed_node *wrt[MAX_WRT], *grads[MAX_WRT];
    int n = 0, rc = resolve_wrt(g, wrt_list, wrt, &n);
    if (rc != CLI_OK) return rc;
    if (ed_grad(loss, wrt, n, grads) != ED_OK) return cli_error(CLI_FAIL, "%s", ed_graph_error(g));
    for (int i = 0; i < n; i++) {
        char name[512];
        snprintf(name, sizeof name, "grad.%s", wrt[i]->attr.name);
        ed_output(g, name, grads[i]);
    }
    return ed_graph_error(g) ? cli_error(CLI_FAIL, "%s", ed_graph_error(g)) : CLI_OK;
}

int cmd_grad(int argc, char **argv)
{
    const char *loss = NULL, *wrt = NULL, *v;
    cli_run_args a = {.cmd = "grad"};
    int rc = CLI_OK;
    for (int i = 1; i < argc && rc == CLI_OK; i++) {
        if (cli_is_help(argv[i])) {
            fputs(usage, stdout);
            fputs(cli_pass_usage, stdout);
            cli_feeds_free(&a.feeds);
            return CLI_OK;
        }
        if (cli_option(argc, argv, &i, "--loss", &v)) loss = v;
        else if (cli_option(argc, argv, &i, "--wrt", &v)) wrt = v;
        else if (!cli_run_arg(&a, argc, argv, &i, &rc))
            rc = cli_error(CLI_USAGE, "grad: unknown option '%s' (try edifice grad --help)", argv[i]);
    }
    if (rc == CLI_OK && !a.path) rc = cli_error(CLI_USAGE, "grad: no graph file given (try edifice grad --help)");
    if (rc == CLI_OK && (!loss || !wrt))
        rc = cli_error(CLI_USAGE, "grad: --loss NAME and --wrt NAME[,NAME...] are required");
    if (rc == CLI_OK && a.feeds.n > 0 && !a.out)
        rc = cli_error(CLI_USAGE, "grad: --input needs --out DIR to write the gradients");
    if (rc == CLI_OK) {
        ed_graph *g = ed_graph_read_file(a.path);
        if (!g) rc = cli_error(CLI_FAIL, "%s", ed_last_error());
        else rc = differentiate(g, loss, wrt);
        if (rc == CLI_OK && ed_graph_write(g, stdout) != ED_OK) rc = cli_error(CLI_FAIL, "grad: %s", ed_last_error());
        if (rc == CLI_OK && a.out) rc = cli_run_and_write(g, &a, stderr);
        ed_graph_free(g);
    }
    cli_feeds_free(&a.feeds);
    return rc;
}
