/* edir_check EDIFICE FILE.edir: run `EDIFICE opt FILE --passes LIST` (LIST from the file's
 * first line, `# RUN: passes=LIST`) and match the file's CHECK, CHECK-NEXT and CHECK-NOT
 * lines against what it prints, as LLVM's FileCheck does (tests/ir/README.md). Exits 0
 * when every check holds; otherwise prints the check that failed and the whole output. */
#include <regex.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

typedef enum { CHECK_PLAIN, CHECK_NEXT, CHECK_NOT } check_kind;

static const char *const kind_names[] = {"CHECK", "CHECK-NEXT", "CHECK-NOT"};

typedef struct {
    check_kind kind;
    int file_line; /* 1-based line in the .edir file */
    char *text;    /* the pattern as written */
    regex_t re;
} check;

/* The output of opt, split into NUL-terminated lines (no trailing empty line). */
typedef struct {
    char *buf;
    char **line;
    int nlines;
} text_lines;

static const char *path; /* the .edir file, for messages */

static void *grow(void *p, size_t size)
{
    p = realloc(p, size);
    if (!p) {
        fputs("edir_check: out of memory\n", stderr);
        exit(2);
    }
    return p;
}

static char *read_all(FILE *f)
{
    size_t len = 0, cap = 4096;
    char *buf = grow(NULL, cap);
    for (size_t n; (n = fread(buf + len, 1, cap - len - 1, f)) > 0;) {
        len += n;
        if (len + 1 == cap) buf = grow(buf, cap *= 2);
    }
    buf[len] = '\0';
    return buf;
}

static void split_lines(char *buf, text_lines *t)
{
    t->buf = buf;
    t->nlines = 0;
    size_t n = 1;
    for (const char *c = buf; *c; c++) n += *c == '\n';
    t->line = grow(NULL, n * sizeof *t->line);
    for (char *c = buf; *c;) {
        t->line[t->nlines++] = c;
        char *nl = strchr(c, '\n');
        if (!nl) break;
        *nl = '\0';
        c = nl + 1;
    }
}

/* ---- reading the checks --------------------------------------------------------- */

static bool file_error(int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s:%d: error: ", path, line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return false;
}

/* The pattern as a POSIX extended regex: literal text escaped, {{...}} taken as is; a
 * CHECK or CHECK-NEXT must match a whole line, blanks around it aside. */
static bool compile_pattern(check *c)
{
    static const char line_start[] = "^[ \t]*(", line_end[] = ")[ \t]*$";
    const char *p = c->text;
    char *re = grow(NULL, 2 * strlen(p) + sizeof line_start + sizeof line_end), *o = re;
    if (c->kind != CHECK_NOT) o = stpcpy(o, line_start);
    while (*p) {
        if (p[0] == '{' && p[1] == '{') {
            const char *end = strstr(p + 2, "}}");
            if (!end) {
                free(re);
                return file_error(c->file_line, "'{{' without '}}' in %s: %s", kind_names[c->kind], c->text);
            }
            *o++ = '(';
            memcpy(o, p + 2, (size_t)(end - p - 2));
            o += end - p - 2;
            *o++ = ')';
            p = end + 2;
            continue;
        }
        if (strchr(".[]{}()\\*+?|^$", *p)) *o++ = '\\';
        *o++ = *p++;
    }
    strcpy(o, c->kind != CHECK_NOT ? line_end : "");
    int rc = regcomp(&c->re, re, REG_EXTENDED);
    free(re);
    if (rc == 0) return true;
    char msg[256];
    regerror(rc, &c->re, msg, sizeof msg);
    return file_error(c->file_line, "bad regex in %s: %s: %s", kind_names[c->kind], c->text, msg);
}

static bool has_positive(const check *checks, int n)
{
    for (int i = 0; i < n; i++)
        if (checks[i].kind != CHECK_NOT) return true;
    return false;
}

/* If line is a check (`# CHECK...: pattern`), add it to checks. */
static bool read_check(char *line, int file_line, check *checks, int *n)
{
    char *p = line + strspn(line, " \t");
    if (*p != '#') return true;
    p += 1 + strspn(p + 1, " \t");
    size_t word = strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZ-0123456789");
    if (p[word] != ':') return true; /* prose */
    if (strncmp(p, "RUN:", 4) == 0) return file_error(file_line, "RUN: belongs on the first line only");
    if (strncmp(p, "CHECK", 5) != 0) return true;
    int kind = CHECK_PLAIN;
    while (kind <= CHECK_NOT && !(strlen(kind_names[kind]) == word && strncmp(p, kind_names[kind], word) == 0)) kind++;
    if (kind > CHECK_NOT)
        return file_error(file_line, "unknown directive '%.*s' (known: CHECK, CHECK-NEXT, CHECK-NOT)", (int)word, p);
    char *text = p + word + 1;
    text += strspn(text, " \t");
    size_t len = strlen(text);
    while (len && strchr(" \t\r", text[len - 1])) len--;
    text[len] = '\0';
    if (!len) return file_error(file_line, "empty %s pattern", kind_names[kind]);
    if (kind == CHECK_NEXT && !has_positive(checks, *n))
        return file_error(file_line, "CHECK-NEXT needs a CHECK before it");
    check *c = &checks[*n];
    *c = (check){.kind = (check_kind)kind, .file_line = file_line, .text = text};
    if (!compile_pattern(c)) return false;
    (*n)++;
    return true;
}

/* The pipeline of the first line, `# RUN: passes=LIST` (LIST may be empty). */
static const char *read_run_line(char *first)
{
    static const char prefix[] = "# RUN: passes=";
    if (strncmp(first, prefix, sizeof prefix - 1) != 0) {
        file_error(1, "the first line must be '%sLIST' (the passes to run, comma-separated)", prefix);
        return NULL;
    }
    char *list = first + sizeof prefix - 1, *end = list + strcspn(list, " \t\r");
    if (end[strspn(end, " \t\r")]) {
        file_error(1, "text after the list of passes: '%s'", end + strspn(end, " \t\r"));
        return NULL;
    }
    *end = '\0';
    return list;
}

/* ---- running opt ------------------------------------------------------------------ */

/* `cli opt file --passes list`'s stdout, or NULL (with a message) if it fails. */
static char *run_opt(const char *cli, const char *list)
{
    int fd[2];
    if (pipe(fd) != 0) {
        perror("edir_check: pipe");
        return NULL;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addclose(&fa, fd[0]);
    posix_spawn_file_actions_adddup2(&fa, fd[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&fa, fd[1]);
    char *argv[] = {(char *)cli, "opt", (char *)path, "--passes", (char *)list, NULL};
    pid_t pid;
    int rc = posix_spawn(&pid, cli, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fd[1]);
    if (rc != 0) {
        fprintf(stderr, "edir_check: cannot run %s: %s\n", cli, strerror(rc));
        close(fd[0]);
        return NULL;
    }
    FILE *f = fdopen(fd[0], "r");
    char *out = f ? read_all(f) : NULL;
    if (f) fclose(f);
    int status;
    waitpid(pid, &status, 0);
    if (out && WIFEXITED(status) && WEXITSTATUS(status) == 0) return out;
    fprintf(stderr, "%s:1: error: %s opt %s --passes '%s' failed (its message is above)\n", path, cli, path, list);
    free(out);
    return NULL;
}

/* ---- matching ---------------------------------------------------------------------- */

/* The first line in [from, to) that re matches, or -1. */
static int find(const text_lines *t, const regex_t *re, int from, int to)
{
    for (int l = from; l < to; l++)
        if (regexec(re, t->line[l], 0, NULL, 0) == 0) return l;
    return -1;
}

static bool check_failed(const check *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s:%d: error: %s: %s\n  ", path, c->file_line, kind_names[c->kind], c->text);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return false;
}

/* No CHECK-NOT of nots[0..n) matches in lines [from, to). */
static bool check_nots(const text_lines *t, const check *const *nots, int n, int from, int to)
{
    for (int i = 0; i < n; i++) {
        int l = find(t, &nots[i]->re, from, to);
        if (l >= 0) return check_failed(nots[i], "found on output line %d, between the matches around it", l + 1);
    }
    return true;
}

/* FileCheck's rules: each CHECK matches a line after the previous match, a CHECK-NEXT
 * the line right after it, and a CHECK-NOT nowhere between the matches before and after
 * it (or the ends of the output). */
static bool match_all(const text_lines *t, const check *checks, int n)
{
    int prev = -1, nnots = 0; /* the line of the previous match */
    const check **nots = grow(NULL, (size_t)n * sizeof *nots);
    bool ok = true;
    for (int i = 0; i < n && ok; i++) {
        const check *c = &checks[i];
        if (c->kind == CHECK_NOT) {
            nots[nnots++] = c;
            continue;
        }
        int l = find(t, &c->re, prev + 1, t->nlines);
        if (l < 0)
            ok = prev < 0 ? check_failed(c, "no output line matches")
                          : check_failed(c, "no output line after line %d (the previous match) matches", prev + 1);
        else if (c->kind == CHECK_NEXT && l != prev + 1)
            ok = check_failed(c, "matched output line %d, not line %d right after the previous match", l + 1, prev + 2);
        else ok = check_nots(t, nots, nnots, prev + 1, l);
        nnots = 0;
        prev = l;
    }
    if (ok) ok = check_nots(t, nots, nnots, prev + 1, t->nlines);
    free(nots);
    return ok;
}

static void print_output(const text_lines *t, const char *list)
{
    fprintf(stderr, "edifice opt --passes '%s' printed:\n", list);
    for (int i = 0; i < t->nlines; i++) fprintf(stderr, "%4d | %s\n", i + 1, t->line[i]);
}

/* Read the file's RUN line and checks, run opt, match. */
static bool check_file(const char *cli, const text_lines *file, check *checks, int *n)
{
    if (file->nlines == 0) return file_error(1, "empty file");
    const char *list = read_run_line(file->line[0]);
    if (!list) return false;
    for (int i = 1; i < file->nlines; i++)
        if (!read_check(file->line[i], i + 1, checks, n)) return false;
    if (*n == 0) return file_error(file->nlines, "no CHECK lines");
    char *out = run_opt(cli, list);
    if (!out) return false;
    text_lines printed;
    split_lines(out, &printed);
    bool ok = match_all(&printed, checks, *n);
    if (!ok) print_output(&printed, list);
    free(printed.line);
    free(out);
    return ok;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fputs("usage: edir_check EDIFICE FILE.edir\n", stderr);
        return 2;
    }
    path = argv[2];
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        return 2;
    }
    text_lines file;
    split_lines(read_all(f), &file);
    fclose(f);
    check *checks = grow(NULL, ((size_t)file.nlines + 1) * sizeof *checks);
    int n = 0;
    bool ok = check_file(argv[1], &file, checks, &n);
    for (int i = 0; i < n; i++) regfree(&checks[i].re);
    free(checks);
    free(file.line);
    free(file.buf);
    return ok ? 0 : 1;
}
