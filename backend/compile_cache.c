/* The program cache around ed_compile (compile_cache.h): key, lookup, canonical graph,
 * store. */
#include "backend/compile_cache.h"

#include "backend/llvm/lower.h"
#include "ir/text.h"
#include "runtime/error.h"
#include "runtime/numerics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the program compiles from, as text: the options that change code, the pipeline,
 * then the graph as built. The opt level and the host are in ed_obj_cache_key. */
static char *source_text(const ed_graph *src, const ed_compile_opts *o, size_t *len)
{
    char *graph = ed_graph_print(src);
    if (!graph) return NULL;
    const char *pipeline = o->passes ? o->passes : ED_DEFAULT_PIPELINE;
    /* EDIFICE_GEMV_ROWS changes which kernel a small matmul lowers to, EDIFICE_SPLIT_WORK
       and EDIFICE_SPLIT_GEMM which kernels call the thread pool */
    const char *fmt = "arena %d\nconv %d\ngemv %d\nsplit %d %d\npasses \"%s\"\n%s";
    int gemv = ed_gemv_max_rows(), split = ed_split_min_work(), split_gemm = ed_split_gemm_on();
    int n = snprintf(NULL, 0, fmt, (int)o->arena, (int)o->conv, gemv, split, split_gemm, pipeline, graph);
    char *s = n > 0 ? malloc((size_t)n + 1) : NULL;
    if (s) snprintf(s, (size_t)n + 1, fmt, (int)o->arena, (int)o->conv, gemv, split, split_gemm, pipeline, graph);
    else ed_fail("compile: out of memory");
    free(graph);
    *len = s ? (size_t)n : 0;
    return s;
}

int ed_compile_cache_begin(ed_compile_cache *c, const ed_graph *src, const ed_compile_opts *o)
{
    *c = (ed_compile_cache){0};
    if (o->backend != ED_BACKEND_JIT || o->no_cache || o->check_numerics || ed_obj_cache_env_off()) return ED_OK;
    if (!(c->dir = ed_obj_cache_dir())) return ED_OK;
    size_t len;
    char *text = source_text(src, o, &len);
    if (text) c->key = ed_obj_cache_key(text, len, (int)o->opt_level - ED_OPT_O0);
    free(text);
    if (!c->key) {
        ed_compile_cache_free(c);
        return text ? ed_fail("compile: out of memory") : ED_ERR;
    }
    return ED_OK;
}

static bool wants_pass_output(const ed_pass_opts *po)
{
    return po && (po->print_after_all || po->print_after || po->stats_to || po->stats);
}

ed_graph *ed_compile_cache_lookup(ed_compile_cache *c, const ed_compile_opts *o)
{
    if (!c->key || wants_pass_output(o->pass_opts)) return NULL;
    if (!ed_obj_cache_load(c->dir, c->key, &c->payload, &c->payload_len)) return NULL;
    ed_graph *g = NULL;
    char *text = NULL;
    if (ed_obj_record_unpack(c->payload, c->payload_len, &c->rec) && (text = malloc(c->rec.text_len + 1))) {
        memcpy(text, c->rec.text, c->rec.text_len);
        text[c->rec.text_len] = '\0';
        g = ed_graph_parse(text, "<object cache>");
    }
    free(text);
    if (!g) { /* not a record of this build (cannot happen with an intact checksum): a miss */
        free(c->payload);
        c->payload = NULL;
        c->rec = (ed_obj_record){0};
        ed_clear_error();
        return NULL;
    }
    c->hit = true;
    return g;
}

ed_graph *ed_compile_cache_canonical(ed_compile_cache *c, ed_graph *g)
{
    if (!c->key || !g) return g;
    char *text = ed_graph_print(g);
    ed_graph *back = text ? ed_graph_parse(text, "<canonical>") : NULL;
    if (!back) { /* compile g as it is, uncached */
        free(text);
        free(c->key);
        c->key = NULL;
        ed_clear_error();
        return g;
    }
    ed_graph_free(g);
    c->text = text;
    return back;
}

/* The plan's bytes: arena bytes, the five figures, the node count, then the offsets, as
 * host int64s (the key names the host). */
enum { PLAN_HEAD = 7 };

bool ed_compile_cache_plan(const ed_compile_cache *c, int nnodes, int64_t *offsets, ed_arena_stats *stats,
                           int64_t *arena_bytes)
{
    int64_t head[PLAN_HEAD];
    if (!c->hit || c->rec.plan_len != (PLAN_HEAD + (size_t)nnodes) * sizeof(int64_t)) return false;
    memcpy(head, c->rec.plan, sizeof head);
    if (head[6] != nnodes || head[0] < 0) return false;
    memcpy(offsets, (const char *)c->rec.plan + sizeof head, (size_t)nnodes * sizeof *offsets);
    *arena_bytes = head[0];
    *stats = (ed_arena_stats){.arena_bytes = head[1],
                              .buffer_bytes = head[2],
                              .peak_bytes = head[3],
                              .buffers = (int)head[4],
                              .inplace = (int)head[5]};
    return true;
}

ed_jit_cache ed_compile_cache_store(ed_compile_cache *c, const ed_jit *j, int kernels, int nnodes,
                                    const int64_t *offsets, const ed_arena_stats *stats, int64_t arena_bytes)
{
    if (!c->key || !c->text) return ED_JIT_CACHE_OFF;
    const void *const *obj;
    const size_t *len;
    int n = ed_jit_objects(j, &obj, &len);
    if (n < 1 || n > ED_OBJ_CACHE_MAX_OBJECTS) {
        ed_fail("compile: internal error, %d objects to cache", n);
        return ED_JIT_CACHE_NOT_STORED;
    }
    size_t plan_len = (PLAN_HEAD + (size_t)nnodes) * sizeof(int64_t);
    int64_t *plan = malloc(plan_len);
    if (!plan) {
        ed_fail("compile: out of memory");
        return ED_JIT_CACHE_NOT_STORED;
    }
    int64_t head[PLAN_HEAD] = {
        arena_bytes, stats->arena_bytes, stats->buffer_bytes, stats->peak_bytes, stats->buffers, stats->inplace,
        nnodes};
    memcpy(plan, head, sizeof head);
    memcpy(plan + PLAN_HEAD, offsets, (size_t)nnodes * sizeof *offsets);
    ed_obj_record r = {.text = c->text,
                       .text_len = strlen(c->text),
                       .plan = plan,
                       .plan_len = plan_len,
                       .kernels = kernels,
                       .nobj = n};
    for (int i = 0; i < n; i++) r.obj[i] = obj[i], r.obj_len[i] = len[i];
    void *payload;
    size_t plen;
    int packed = ed_obj_record_pack(&r, &payload, &plen);
    free(plan);
    if (packed != ED_OK) return ED_JIT_CACHE_NOT_STORED;
    int st = ed_obj_cache_store(c->dir, c->key, payload, plen, ed_obj_cache_max_bytes());
    free(payload);
    return st == ED_OK ? ED_JIT_CACHE_STORED : ED_JIT_CACHE_NOT_STORED;
}

void ed_compile_cache_free(ed_compile_cache *c)
{
    free(c->dir);
    free(c->key);
    free(c->payload);
    free(c->text);
    *c = (ed_compile_cache){0};
}
