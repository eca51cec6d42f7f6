/* Errors from the runtime and backends: a thread-local "last error" message.
 * Functions that can fail on user input return NULL or a non-zero status and leave
 * one clear line here. Graph construction uses the graph's own sticky error instead. */
#ifndef ED_ERROR_H
#define ED_ERROR_H

#include <stdarg.h>

#define ED_ERROR_MAX 1024

typedef enum { ED_OK = 0, ED_ERR = -1 } ed_status;

/* The message of the most recent failure on this thread ("" if none). */
const char *ed_last_error(void);
void ed_clear_error(void);
/* printf-style; always returns ED_ERR so callers can `return ed_fail(...)`. */
int ed_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int ed_vfail(const char *fmt, va_list ap);

#endif
