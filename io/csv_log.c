/* The training log's reader (csv_log.h). */
#include "io/csv_log.h"
#include "runtime/error.h"

#include <errno.h>
#include <stdbool.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ed_csv_log_free(ed_csv_log *l)
{
    if (!l) return;
    for (int k = 0; k < l->ncol; k++) free(l->v[k]);
    *l = (ed_csv_log){0};
}

static int parse_header(ed_csv_log *l, char *line, const char *path)
{
    line[strcspn(line, "\r\n")] = '\0';
    for (char *tok = strtok(line, ","); tok; tok = strtok(NULL, ",")) {
        if (l->ncol == ED_CSV_LOG_MAX_COLUMNS)
            return ed_fail("%s has more than %d columns", path, ED_CSV_LOG_MAX_COLUMNS);
        snprintf(l->names[l->ncol++], sizeof l->names[0], "%s", tok);
    }
    if (l->ncol < 2) return ed_fail("%s: the header must name at least two columns (e.g. step,loss)", path);
    return ED_OK;
}

static bool ends_field(char c) { return c == ',' || c == '\0' || c == '\n' || c == '\r'; }

static int parse_row(ed_csv_log *l, char *line, const char *path, long lineno)
{
    if (l->rows == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 1024;
        for (int k = 0; k < l->ncol; k++) {
            double *p = realloc(l->v[k], sizeof(double) * (size_t)l->cap);
            if (!p) return ed_fail("%s: out of memory", path);
            l->v[k] = p;
        }
    }
    char *p = line;
    for (int k = 0; k < l->ncol; k++) {
        char *end = p;
        double v = strtod(p, &end);
        if (end == p && ends_field(*p)) v = NAN; /* empty field */
        else if (end == p || !ends_field(*end))
            return ed_fail("%s line %ld column %d (%s): not a number", path, lineno, k + 1, l->names[k]);
        l->v[k][l->rows] = v;
        if (k + 1 < l->ncol && *end != ',')
            return ed_fail("%s line %ld has %d fields, the header names %d", path, lineno, k + 1, l->ncol);
        p = end + 1;
    }
    if (p[-1] == ',') return ed_fail("%s line %ld has more fields than the header names", path, lineno);
    l->rows++;
    return ED_OK;
}

int ed_csv_log_read(const char *path, ed_csv_log *l)
{
    *l = (ed_csv_log){0};
    FILE *f = fopen(path, "r");
    if (!f) return ed_fail("cannot open %s: %s", path, strerror(errno));
    char line[4096];
    long lineno = 0;
    int rc = ED_OK;
    while (rc == ED_OK && fgets(line, sizeof line, f)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) rc = ed_fail("%s line %ld is too long", path, lineno);
        else if (lineno == 1) rc = parse_header(l, line, path);
        else if (line[strspn(line, " \r\n")] != '\0') rc = parse_row(l, line, path, lineno);
    }
    if (rc == ED_OK && lineno == 0) rc = ed_fail("%s is empty", path);
    if (rc == ED_OK && l->rows == 0) rc = ed_fail("%s has a header but no rows", path);
    fclose(f);
    return rc;
}
