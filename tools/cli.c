#include "tools/cli.h"
#include "io/atomic_file.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An error is one line on stderr: control bytes in it (from a graph's names, a file
 * name) are shown escaped, so no name can forge a second line or move the cursor. */
int cli_error(int code, const char *fmt, ...)
{
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fputs("edifice: ", stderr);
    for (const unsigned char *c = (const unsigned char *)msg; *c; c++) {
        if (*c < 0x20 || *c == 0x7f) fprintf(stderr, "\\x%02x", *c);
        else fputc(*c, stderr);
    }
    fputc('\n', stderr);
    return code;
}

int cli_finish_stdout(int rc)
{
    errno = 0;
    if ((fflush(stdout) != 0 || ferror(stdout)) && rc == CLI_OK)
        return cli_error(CLI_FAIL, "writing to standard output failed%s%s", errno ? ": " : "",
                         errno ? strerror(errno) : "");
    return rc;
}

bool cli_ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

bool cli_option(int argc, char **argv, int *i, const char *name, const char **value)
{
    const char *arg = argv[*i];
    size_t n = strlen(name);
    if (strncmp(arg, name, n) != 0) return false;
    if (arg[n] == '=') {
        *value = arg + n + 1;
        return true;
    }
    if (arg[n] != '\0') return false;
    *value = *i + 1 < argc ? argv[++*i] : NULL;
    return true;
}

bool cli_is_help(const char *arg) { return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0; }

bool cli_parse_u64(const char *s, unsigned long long *out)
{
    if (!s || !*s || *s == '-' || *s == '+') return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) return false;
    *out = v;
    return true;
}

int cli_make_dirs(const char *path) { return ed_make_dirs(path) == ED_OK ? 0 : -1; }

bool cli_opt_level_arg(const char *cmd, int argc, char **argv, int *i, ed_opt_level *level, int *rc)
{
    const char *arg = argv[*i], *v = NULL;
    unsigned long long n = 4;
    if (strncmp(arg, "-O", 2) == 0) {
        v = arg;
        if (arg[2] >= '0' && arg[2] <= '3' && !arg[3]) n = (unsigned long long)(arg[2] - '0');
    } else if (cli_option(argc, argv, i, "--opt-level", &v)) {
        if (!cli_parse_u64(v, &n)) n = 4;
    } else {
        return false;
    }
    if (n > 3)
        *rc = cli_error(
            CLI_USAGE,
            "%s: the opt level is 0, 1, 2 or 3 (-O0..-O3 or --opt-level N), got '%s' (try edifice %s --help)", cmd,
            v ? v : "", cmd);
    else *level = (ed_opt_level)(ED_OPT_O0 + (int)n);
    return true;
}

const char cli_pass_usage[] = "  --passes LIST         graph passes to run, e.g. simplify,fold,cse,dce (default\n"
                              "                        " ED_DEFAULT_PIPELINE "; --passes '' runs none)\n"
                              "  --print-after-all     print the graph as text after every pass, on stderr\n"
                              "  --print-after=NAME    ... after the named passes only (NAME[,NAME...])\n"
                              "  --pass-stats          time and node counts of every pass, on stderr\n";

bool cli_pass_arg(const char *cmd, cli_pass_args *a, int argc, char **argv, int *i, int *rc)
{
    const char *v;
    if (strcmp(argv[*i], "--print-after-all") == 0) {
        a->print_after_all = true;
    } else if (strcmp(argv[*i], "--pass-stats") == 0) {
        a->stats = true;
    } else if (cli_option(argc, argv, i, "--passes", &v)) {
        if (!v) *rc = cli_error(CLI_USAGE, "%s: --passes needs a list of passes (try edifice %s --help)", cmd, cmd);
        else if (ed_pipeline_check(v) != ED_OK) *rc = cli_error(CLI_USAGE, "%s: %s", cmd, ed_last_error());
        a->pipeline = v;
    } else if (cli_option(argc, argv, i, "--print-after", &v)) {
        if (!v || !v[0]) *rc = cli_error(CLI_USAGE, "%s: --print-after needs a pass name", cmd);
        else if (ed_pipeline_check(v) != ED_OK) *rc = cli_error(CLI_USAGE, "%s: %s", cmd, ed_last_error());
        a->print_after = v;
    } else {
        return false;
    }
    return true;
}

ed_pass_opts cli_pass_opts(const cli_pass_args *a)
{
    return (ed_pass_opts){.print_after_all = a->print_after_all,
                          .print_after = a->print_after,
                          .print_to = stderr,
                          .stats_to = a->stats ? stderr : NULL};
}
