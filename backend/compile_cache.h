/* The JIT's program cache, as ed_compile uses it: the key is taken before any work (the
 * graph as built, printed; the pass pipeline; the compile options that change code), and
 * an entry (backend/llvm/obj_cache.h) holds the graph the passes made, as text, with the
 * objects of its code. On a hit ed_compile parses that graph and loads the objects: no
 * passes, no lowering, no LLVM. On a miss the passes' graph goes through the same print
 * and parse before it is compiled, so a cold and a warm compile build the program from
 * identical graphs (same node ids, order, memory plan) and run the same object bytes. */
#ifndef ED_COMPILE_CACHE_H
#define ED_COMPILE_CACHE_H

#include "backend/backend.h"
#include "backend/llvm/jit.h"
#include "backend/llvm/obj_cache.h"

typedef struct {
    char *dir, *key; /* NULL: the cache is off for this compile */
    void *payload;   /* a hit's entry payload; rec points into it */
    size_t payload_len;
    ed_obj_record rec;
    bool hit;   /* rec is a whole record whose graph parsed */
    char *text; /* a miss: the canonical text of the passes' graph, for the store */
} ed_compile_cache;

/* Decide whether o's compile uses the cache (the JIT, no_cache unset, EDIFICE_NO_CACHE
 * unset, no numerics checks, a cache folder) and take the key of src under o. ED_OK (the
 * cache may still be off), or ED_ERR with ed_last_error(). */
int ed_compile_cache_begin(ed_compile_cache *c, const ed_graph *src, const ed_compile_opts *o);
/* On a hit, the cached graph (owned by the caller), else NULL. Skipped (NULL) when the
 * pass options ask for printing or statistics: those need the passes to run. */
ed_graph *ed_compile_cache_lookup(ed_compile_cache *c, const ed_compile_opts *o);
/* g printed and parsed back (g is freed and the copy returned), its text kept for the
 * store. A graph the text cannot carry is returned as it is and the cache turned off. */
ed_graph *ed_compile_cache_canonical(ed_compile_cache *c, ed_graph *g);
/* On a hit, the stored memory plan of the cached graph (nnodes offsets, its figures and
 * the arena's size, as ed_arena_plan_mode made them on the miss): true, or false when the
 * record holds no plan of that many nodes (then plan again: the result is the same). */
bool ed_compile_cache_plan(const ed_compile_cache *c, int nnodes, int64_t *offsets, ed_arena_stats *stats,
                           int64_t *arena_bytes);
/* Store j's objects with the canonical text and the memory plan: ED_JIT_CACHE_STORED, or
 * _NOT_STORED (ed_last_error() says why; the program works). */
ed_jit_cache ed_compile_cache_store(ed_compile_cache *c, const ed_jit *j, int kernels, int nnodes,
                                    const int64_t *offsets, const ed_arena_stats *stats, int64_t arena_bytes);
void ed_compile_cache_free(ed_compile_cache *c);

#endif
