/* safetensors and checkpoints: an accepted file saves and loads back to the same store
 * and metadata; the same bytes read as a checkpoint (model name, options, the run's
 * settings in the metadata) are accepted or refused with a message, never a crash. */
#include "fuzz.h"
#include "io/safetensors.h"
#include "models/trainer.h"
#include "runtime/error.h"
#include "runtime/store.h"

#include <string.h>

static void check_same(const ed_store *a, const ed_store *b)
{
    if (ed_store_count(a) != ed_store_count(b)) fuzz_fail("save -> load", "entry count differs");
    for (int i = 0; i < ed_store_count(a); i++) {
        const char *name = ed_store_name(a, i);
        const ed_tensor *x = ed_store_tensor(a, i), *y = ed_store_get(b, name);
        if (!y || y->dtype != x->dtype || !ed_shape_eq(y->shape, x->shape) ||
            memcmp(y->data, x->data, ed_tensor_bytes(x)) != 0)
            fuzz_fail("save -> load differs at", name);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size);
    ed_meta *meta = NULL;
    ed_store *st = ed_safetensors_load(path, &meta);
    if (st) {
        const char *back = fuzz_scratch("back.safetensors");
        if (ed_safetensors_save(back, st, meta) != ED_OK) fuzz_fail("save of a loaded file", ed_last_error());
        ed_meta *meta2 = NULL;
        ed_store *st2 = ed_safetensors_load(back, &meta2);
        if (!st2) fuzz_fail("load of a saved file", ed_last_error());
        check_same(st, st2);
        if (ed_meta_count(meta) != ed_meta_count(meta2)) fuzz_fail("save -> load", "metadata count differs");
        ed_meta_free(meta2);
        ed_store_free(st2);
    }
    ed_meta_free(meta);
    ed_store_free(st);
    ed_checkpoint ck;
    if (ed_checkpoint_load(path, &ck) == ED_OK) ed_checkpoint_free(&ck);
    return 0;
}
