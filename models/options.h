/* Model options as data: each model describes its options struct with a table of
 * (name, kind, offset, default, range), so the CLI can list, set and check them and a
 * checkpoint can store and restore them without per-model code.
 *
 * Kinds: INT (int64_t field), REAL (double field), ENUM (int field holding an index
 * into choices[]), SIZES (ed_sizes field: a list of layer widths, "256,128", each in
 * [lo, hi], default in def_text), PATH (ed_path field: a file name, default "" = not
 * given; another model's checkpoint a family reads, see ed_frozen_def). Values print in a form that parses back to the same bits (reals with
 * %.17g), so options written to a checkpoint rebuild exactly the same graph. */
#ifndef ED_MODEL_OPTIONS_H
#define ED_MODEL_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { ED_OPTION_INT, ED_OPTION_REAL, ED_OPTION_ENUM, ED_OPTION_SIZES, ED_OPTION_PATH } ed_option_kind;

#define ED_SIZES_MAX 8
typedef struct {
    int n;
    int64_t v[ED_SIZES_MAX];
} ed_sizes;

/* A PATH option's value: "" when not given. */
#define ED_PATH_MAX 1024
typedef struct {
    char s[ED_PATH_MAX];
} ed_path;

/* A buffer that holds any option's value as text (a PATH's included). */
#define ED_OPTION_TEXT_MAX (ED_PATH_MAX + 64)

typedef struct {
    const char *name;
    ed_option_kind kind;
    size_t offset;              /* of the field in the model's options struct */
    double def;                 /* default (ENUM: the index) */
    double lo, hi;              /* accepted range, inclusive (INT and REAL) */
    const char *const *choices; /* ENUM: NULL-terminated names */
    const char *help;
    const char *def_text; /* SIZES: the default list */
} ed_option;

/* Write every default into opts. */
void ed_options_defaults(const ed_option *t, int n, void *opts);
/* Set one option from text. ED_ERR with a message naming the option and what it
 * accepts for an unknown name, a malformed value or a value out of range. */
int ed_options_set(const ed_option *t, int n, void *opts, const char *name, const char *value);
/* The option's current value as text (buf of at least 32 bytes, ED_OPTION_TEXT_MAX for a
 * PATH not to be cut short); NULL for an unknown name. */
const char *ed_options_get(const ed_option *t, int n, const void *opts, const char *name, char *buf, size_t size);
/* The default as text. */
const char *ed_option_default_str(const ed_option *o, char *buf, size_t size);
/* The accepted values as text: "[1, 4096]", "euler|midpoint|rk4". */
const char *ed_option_range_str(const ed_option *o, char *buf, size_t size);
/* "hidden, layers, ..." into buf; returns buf. */
const char *ed_options_list(const ed_option *t, int n, char *buf, size_t size);
/* NULL if no option has that name. */
const ed_option *ed_option_find(const ed_option *t, int n, const char *name);

#endif
