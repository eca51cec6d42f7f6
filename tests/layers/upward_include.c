/* Compiled against ir's include view by the layers_upward_include test, which expects
 * it to fail: ir may not include the backend. */
#include "backend/backend.h"
