/* edifice models: the registry's models and their options with defaults. */
#include "models/registry.h"
#include "tools/cli.h"

#include <stdio.h>
#include <string.h>

static const char usage[] = "usage: edifice models [MODEL]\n"
                            "\n"
                            "Lists the models `edifice train` builds, each with its options: name, default,\n"
                            "accepted values and meaning. Set an option with --NAME VALUE on the train command.\n"
                            "The data shape (sample size, observation size) comes from --data.\n";

static void print_model(const ed_model_def *def)
{
    if (def->pred) printf("%s: %s (the network predicts %s)\n", def->name, def->summary, def->pred);
    else printf("%s: %s\n", def->name, def->summary);
    if (def->default_steps > 0) printf("  (trains %lld iterations without --steps)\n", (long long)def->default_steps);
    for (int i = 0; i < def->noptions; i++) {
        const ed_option *o = &def->options[i];
        char dflt[64], range[128];
        printf("  --%-16s %-8s %-24s %s\n", o->name, ed_option_default_str(o, dflt, sizeof dflt),
               ed_option_range_str(o, range, sizeof range), o->help);
    }
}

int cmd_models(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (cli_is_help(argv[i])) {
            fputs(usage, stdout);
            return CLI_OK;
        }
    if (argc > 2) return cli_error(CLI_USAGE, "models: at most one model name (try edifice models --help)");
    if (argc == 2) {
        const ed_model_def *def = ed_model_find(argv[1]);
        if (!def) return cli_error(CLI_USAGE, "models: %s", ed_last_error());
        print_model(def);
        return CLI_OK;
    }
    for (int i = 0; i < ed_model_count(); i++) {
        if (i) putchar('\n');
        print_model(ed_model_at(i));
    }
    return CLI_OK;
}
