/* Compiled against ir's include view: ir may include runtime and itself. The control
 * for layers_upward_include (the view works, so that failure is the layer rule's). */
#include "ir/ir.h"
#include "runtime/tensor.h"
