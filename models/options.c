#include "models/options.h"
#include "runtime/error.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int64_t *int_field(void *opts, const ed_option *o) { return (int64_t *)((char *)opts + o->offset); }
static double *real_field(void *opts, const ed_option *o) { return (double *)((char *)opts + o->offset); }
static int *enum_field(void *opts, const ed_option *o) { return (int *)((char *)opts + o->offset); }
static ed_sizes *sizes_field(void *opts, const ed_option *o) { return (ed_sizes *)((char *)opts + o->offset); }
static ed_path *path_field(void *opts, const ed_option *o) { return (ed_path *)((char *)opts + o->offset); }

/* Any text shorter than ED_PATH_MAX; whether the file exists is checked where it is read. */
static int set_path(const ed_option *o, const char *value, ed_path *out)
{
    if (strlen(value) >= sizeof out->s)
        return ed_fail("option %s: the path is longer than %d characters", o->name, ED_PATH_MAX - 1);
    snprintf(out->s, sizeof out->s, "%s", value);
    return ED_OK;
}

/* "256,128" into *out; ED_ERR naming the option for a malformed list or a width out of range. */
static int parse_sizes(const ed_option *o, const char *value, ed_sizes *out)
{
    ed_sizes s = {0};
    const char *p = value;
    while (*p) {
        if (s.n == ED_SIZES_MAX) return ed_fail("option %s: at most %d sizes, got '%s'", o->name, ED_SIZES_MAX, value);
        char *end;
        errno = 0;
        long long k = strtoll(p, &end, 10);
        if (errno || end == p || (*end && *end != ','))
            return ed_fail("option %s: '%s' is not a list of integers like 256,128", o->name, value);
        if (k < o->lo || k > o->hi) return ed_fail("option %s: %lld is outside [%.0f, %.0f]", o->name, k, o->lo, o->hi);
        s.v[s.n++] = k;
        p = *end ? end + 1 : end;
        if (*end && !*p) return ed_fail("option %s: '%s' ends with a comma", o->name, value);
    }
    *out = s;
    return ED_OK;
}

static const char *format_sizes(const ed_sizes *s, char *buf, size_t size)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < s->n; i++) {
        int k = snprintf(buf + len, size - len, "%s%lld", i ? "," : "", (long long)s->v[i]);
        if (k < 0 || (size_t)k >= size - len) break;
        len += (size_t)k;
    }
    return buf;
}

void ed_options_defaults(const ed_option *t, int n, void *opts)
{
    for (int i = 0; i < n; i++) {
        const ed_option *o = &t[i];
        if (o->kind == ED_OPTION_INT) *int_field(opts, o) = (int64_t)o->def;
        else if (o->kind == ED_OPTION_REAL) *real_field(opts, o) = o->def;
        else if (o->kind == ED_OPTION_SIZES) {
            int rc = parse_sizes(o, o->def_text ? o->def_text : "", sizes_field(opts, o));
            assert(rc == ED_OK && "a SIZES option's default must parse");
            (void)rc;
        } else if (o->kind == ED_OPTION_PATH) {
            int rc = set_path(o, o->def_text ? o->def_text : "", path_field(opts, o));
            assert(rc == ED_OK && "a PATH option's default must fit");
            (void)rc;
        } else *enum_field(opts, o) = (int)o->def;
    }
}

const char *ed_options_list(const ed_option *t, int n, char *buf, size_t size)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < n; i++) {
        int k = snprintf(buf + len, size - len, "%s%s", i ? ", " : "", t[i].name);
        if (k < 0 || (size_t)k >= size - len) break;
        len += (size_t)k;
    }
    return buf;
}

const ed_option *ed_option_find(const ed_option *t, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(t[i].name, name) == 0) return &t[i];
    return NULL;
}

static const char *format_value(const ed_option *o, double v, char *buf, size_t size)
{
    if (o->kind == ED_OPTION_INT) {
        snprintf(buf, size, "%lld", (long long)v);
    } else if (o->kind == ED_OPTION_ENUM) {
        snprintf(buf, size, "%s", o->choices[(int)v]);
    } else {
        /* The shortest of %.15g..%.17g that reads back exactly: "0.02", not 0.0200...04. */
        for (int p = 15; p <= 17; p++) {
            snprintf(buf, size, "%.*g", p, v);
            if (strtod(buf, NULL) == v) break;
        }
    }
    return buf;
}

const char *ed_option_default_str(const ed_option *o, char *buf, size_t size)
{
    if (o->kind == ED_OPTION_SIZES || o->kind == ED_OPTION_PATH) {
        snprintf(buf, size, "%s", o->def_text ? o->def_text : "");
        return buf;
    }
    return format_value(o, o->def, buf, size);
}

const char *ed_option_range_str(const ed_option *o, char *buf, size_t size)
{
    if (o->kind == ED_OPTION_ENUM) {
        size_t len = 0;
        buf[0] = '\0';
        for (int i = 0; o->choices[i]; i++) {
            int k = snprintf(buf + len, size - len, "%s%s", i ? "|" : "", o->choices[i]);
            if (k < 0 || (size_t)k >= size - len) break;
            len += (size_t)k;
        }
        return buf;
    }
    if (o->kind == ED_OPTION_PATH) {
        snprintf(buf, size, "a file");
        return buf;
    }
    char a[40], b[40];
    if (o->kind == ED_OPTION_SIZES) {
        format_value(&(ed_option){.kind = ED_OPTION_INT}, o->lo, a, sizeof a);
        format_value(&(ed_option){.kind = ED_OPTION_INT}, o->hi, b, sizeof b);
        snprintf(buf, size, "list in [%s, %s]", a, b);
        return buf;
    }
    format_value(o, o->lo, a, sizeof a);
    format_value(o, o->hi, b, sizeof b);
    snprintf(buf, size, "[%s, %s]", a, b);
    return buf;
}

const char *ed_options_get(const ed_option *t, int n, const void *opts, const char *name, char *buf, size_t size)
{
    const ed_option *o = ed_option_find(t, n, name);
    if (!o) return NULL;
    void *p = (void *)opts;
    if (o->kind == ED_OPTION_SIZES) return format_sizes(sizes_field(p, o), buf, size);
    if (o->kind == ED_OPTION_PATH) {
        snprintf(buf, size, "%s", path_field(p, o)->s);
        return buf;
    }
    double v = o->kind == ED_OPTION_INT    ? (double)*int_field(p, o)
               : o->kind == ED_OPTION_REAL ? *real_field(p, o)
                                           : (double)*enum_field(p, o);
    return format_value(o, v, buf, size);
}

int ed_options_set(const ed_option *t, int n, void *opts, const char *name, const char *value)
{
    const ed_option *o = ed_option_find(t, n, name);
    if (!o) {
        char list[1024];
        return ed_fail("unknown option '%s' (options: %s)", name, ed_options_list(t, n, list, sizeof list));
    }
    char range[256];
    ed_option_range_str(o, range, sizeof range);
    /* A PATH's "" is its default, "not given", so an optional file reads back from a checkpoint. */
    if (!value || (!*value && o->kind != ED_OPTION_PATH)) return ed_fail("option %s needs a value in %s", name, range);
    if (o->kind == ED_OPTION_ENUM) {
        for (int i = 0; o->choices[i]; i++)
            if (strcmp(o->choices[i], value) == 0) {
                *enum_field(opts, o) = i;
                return ED_OK;
            }
        return ed_fail("option %s: '%s' is not one of %s", name, value, range);
    }
    if (o->kind == ED_OPTION_SIZES) return parse_sizes(o, value, sizes_field(opts, o));
    if (o->kind == ED_OPTION_PATH) return set_path(o, value, path_field(opts, o));
    char *end;
    errno = 0;
    double v;
    if (o->kind == ED_OPTION_INT) {
        long long k = strtoll(value, &end, 10);
        v = (double)k;
        if (errno || *end || end == value) return ed_fail("option %s: '%s' is not an integer", name, value);
        if (v < o->lo || v > o->hi) return ed_fail("option %s: %s is outside %s", name, value, range);
        *int_field(opts, o) = (int64_t)k;
        return ED_OK;
    }
    v = strtod(value, &end);
    if (errno || *end || end == value || !isfinite(v))
        return ed_fail("option %s: '%s' is not a finite number", name, value);
    if (v < o->lo || v > o->hi) return ed_fail("option %s: %s is outside %s", name, value, range);
    *real_field(opts, o) = v;
    return ED_OK;
}
