/* IDX (Fashion-MNIST's format, plain or gzip): accepted or refused with a message; an
 * accepted array's element count is what its dimensions say. */
#include "fuzz.h"
#include "io/idx.h"
#include "runtime/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ed_idx a;
    if (ed_idx_read(fuzz_file(data, size), &a) != ED_OK) return 0;
    int64_t n = ed_shape_numel(a.shape);
    if (n < 0) fuzz_fail("idx", "accepted a negative element count");
    if (n > 0) (void)ed_idx_get(&a, n - 1); /* the last element is readable (ASan checks) */
    ed_idx_free(&a);
    return 0;
}
