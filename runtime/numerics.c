/* The numeric guard's check (numerics.h). */
#include "runtime/numerics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void ed_numerics_check(ed_numerics_fault *f, const void *data, int64_t n, int32_t is_f64, const void *node)
{
    if (f->node) return;
    for (int64_t i = 0; i < n; i++) {
        double v = is_f64 ? ((const double *)data)[i] : ((const float *)data)[i];
        if (!isfinite(v)) {
            *f = (ed_numerics_fault){node, i, v};
            return;
        }
    }
}

bool ed_numerics_env(void)
{
    const char *v = getenv("EDIFICE_CHECK_NUMERICS");
    return v && *v && strcmp(v, "0") != 0;
}
