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

#define MAX_FEEDS 256

typedef struct {
    ed_feed feeds[MAX_FEEDS];
    ed_tensor *tensors[MAX_FEEDS];
    char *names[MAX_FEEDS];
    int n;
} feed_set;

static void feeds_free(feed_set *f)
{
    for (int i = 0; i < f->n; i++) {
        ed_tensor_free(f->tensors[i]);
        free(f->names[i]);
    }
}

/* NAME=FILE.npy */
static int add_feed(feed_set *f, const char *spec)
{
    const char *eq = spec ? strchr(spec, '=') : NULL;
    if (!eq || eq == spec || !eq[1])
        return cli_error(CLI_USAGE, "run: --input wants NAME=FILE.npy, got '%s'", spec ? spec : "");
    if (f->n == MAX_FEEDS) return cli_error(CLI_USAGE, "run: more than %d inputs", MAX_FEEDS);
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

static int write_outputs(const ed_program *p, const char *dir)
{
    if (cli_make_dirs(dir) != 0) return cli_error(CLI_FAIL, "run: cannot create directory '%s'", dir);
    for (int i = 0; i < ed_program_num_outputs(p); i++) {
        const char *name = ed_program_output_name(p, i);
        const ed_tensor *t = ed_program_output_at(p, i);
        char path[4096], type[96];
        if (strchr(name, '/'))
            return cli_error(CLI_FAIL, "run: output name '%s' cannot be a file name", name);
        snprintf(path, sizeof path, "%s/%s.npy", dir, name);
        if (ed_npy_write(path, t) != ED_OK) return cli_error(CLI_FAIL, "%s", ed_last_error());
        printf("%s: %s -> %s\n", name, ed_type_str(t->dtype, t->shape, type, sizeof type), path);
    }
    return CLI_OK;
}

int cmd_run(int argc, char **argv)
{
    const char *path = NULL, *out = NULL, *v;
    unsigned long long seed = 0;
    feed_set feeds = {.n = 0};
    int rc = CLI_OK;
    for (int i = 1; i < argc && rc == CLI_OK; i++) {
        if (cli_is_help(argv[i])) {
            fputs(usage, stdout);
            feeds_free(&feeds);
            return CLI_OK;
        }
        if (cli_option(argc, argv, &i, "--input", &v)) rc = add_feed(&feeds, v);
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
        feeds_free(&feeds);
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
        rc = write_outputs(p, out);
    ed_program_free(p);
    ed_store_free(st);
    ed_graph_free(g);
    feeds_free(&feeds);
    return rc;
}
