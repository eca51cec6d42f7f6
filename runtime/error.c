#include "runtime/error.h"

#include <stdio.h>

static _Thread_local char last_error[ED_ERROR_MAX];

const char *ed_last_error(void) { return last_error; }

void ed_clear_error(void) { last_error[0] = '\0'; }

int ed_vfail(const char *fmt, va_list ap)
{
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    return ED_ERR;
}

int ed_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ed_vfail(fmt, ap);
    va_end(ap);
    return ED_ERR;
}
