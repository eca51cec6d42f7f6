/* .npy: the in-memory parser and the file reader (which also widens integer types) must
 * agree on what they accept, and an accepted tensor must write and read back the same. */
#include "fuzz.h"
#include "io/npy.h"
#include "runtime/error.h"
#include "runtime/tensor.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ed_tensor *t = ed_npy_parse(data, size, "fuzz.npy");
    ed_tensor *any = ed_npy_read_any(fuzz_file(data, size));
    if (t && !any) fuzz_fail("parse accepts what read_any refuses", ed_last_error());
    if (t) {
        const char *path = fuzz_scratch("back.npy");
        if (ed_npy_write(path, t) != ED_OK) fuzz_fail("write", ed_last_error());
        ed_tensor *back = ed_npy_read(path);
        if (!back || back->dtype != t->dtype || !ed_shape_eq(back->shape, t->shape) ||
            memcmp(back->data, t->data, ed_tensor_bytes(t)) != 0)
            fuzz_fail("write -> read differs", back ? "" : ed_last_error());
        ed_tensor_free(back);
    }
    ed_tensor_free(any);
    ed_tensor_free(t);
    return 0;
}
