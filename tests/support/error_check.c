/* Test helper of error_check.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "runtime/error.h"
#include "support/error_check.h"

#include <string.h>

void check_error_has_at(const char *part, const char *file, int line)
{
    const char *msg = ed_last_error();
    if (!strstr(msg, part)) {
        print_error("last error \"%s\" does not contain \"%s\"\n", msg, part);
        _fail(file, line); /* cmocka's _fail longjmps out of the test */
    }
}
