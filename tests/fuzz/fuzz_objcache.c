/* The JIT object cache's entries (backend/llvm/obj_cache.c), read against one fixed key:
 * an accepted entry's object lies inside the input and fills it to the end, and it
 * stores and loads back to the same bytes. */
#include "fuzz.h"
#include "backend/llvm/obj_cache.h"
#include "runtime/error.h"

#include <stdlib.h>
#include <string.h>

/* The key the seed entries in tests/fuzz/corpus/objcache were written for. */
static const char key[] = "edifice object cache 1\nfuzz\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *obj;
    size_t len;
    if (!ed_obj_cache_parse(data, size, key, &obj, &len)) return 0;
    if (len == 0 || obj < data || obj + len != data + size) fuzz_fail("objcache", "object span outside the entry");
    const char *dir = fuzz_scratch("objcache");
    if (ed_obj_cache_store(dir, key, obj, len, 1 << 30) != ED_OK) fuzz_fail("objcache", ed_last_error());
    void *back;
    size_t back_len;
    if (!ed_obj_cache_load(dir, key, &back, &back_len)) fuzz_fail("objcache", "a stored entry does not load");
    if (back_len != len || memcmp(back, obj, len) != 0) fuzz_fail("objcache", "loaded bytes differ");
    free(back);
    return 0;
}
