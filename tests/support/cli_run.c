/* Test helpers of cli_run.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "support/cli_run.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

/* The file's first size - 1 bytes into buf, NUL-terminated; empty if it cannot be read. */
static void slurp_into(const char *path, char *buf, size_t size)
{
    buf[0] = '\0';
    FILE *f = fopen(path, "rb");
    if (!f) return;
    size_t n = fread(buf, 1, size - 1, f);
    buf[n] = '\0';
    fclose(f);
}

void cli_run(const char *cli, const char *dir, cli_result *r, const char *args)
{
    char cmd[8192], path[4096];
    snprintf(cmd, sizeof cmd, "'%s' %s >'%s/stdout' 2>'%s/stderr'", cli, args, dir, dir);
    int rc = system(cmd);
    r->status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    snprintf(path, sizeof path, "%s/stdout", dir);
    slurp_into(path, r->out, sizeof r->out);
    snprintf(path, sizeof path, "%s/stderr", dir);
    slurp_into(path, r->err, sizeof r->err);
}

void write_file_in(const char *dir, const char *name, const char *text)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}
