/* The numeric guard (`--check-numerics`, EDIFICE_CHECK_NUMERICS=1): a program compiled
 * with it checks every floating-point kernel output as it is written and keeps the first
 * one holding a NaN or an infinity, so the call can fail naming the node that made it
 * (backend/compile.c) instead of handing the value on. Debug speed: one pass over every
 * value the program computes. */
#ifndef ED_RUNTIME_NUMERICS_H
#define ED_RUNTIME_NUMERICS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    const void *node; /* the first node (an ed_node) that wrote a non-finite value; NULL: none */
    int64_t index;    /* the element */
    double value;     /* the value there (NaN, +inf or -inf) */
} ed_numerics_fault;

/* Record the first non-finite element of n f32 (is_f64 0) or f64 values at data, unless
 * f already holds a fault (the first one is the cause; later ones follow from it).
 * Compiled code calls it after each kernel; the interpreter after each node. */
void ed_numerics_check(ed_numerics_fault *f, const void *data, int64_t n, int32_t is_f64, const void *node);

/* Whether EDIFICE_CHECK_NUMERICS is set to something other than "" or "0". */
bool ed_numerics_env(void);

#endif
