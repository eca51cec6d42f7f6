/* Internal to ir/: what the shape rules (shape.c, conv.c) share to word their errors. */
#ifndef ED_IR_RULE_H
#define ED_IR_RULE_H

#include "ir/ir.h"

#include <stdbool.h>
#include <stddef.h>

/* Write the message into msg (size bytes) and return false: a rule's failure. */
bool ed_rule_fail(char *msg, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* "f32[2,3]" of an input, in a rotating set of 4 thread-local buffers so one message can
 * show several. */
const char *ed_rule_type(const ed_node *n);

#endif
