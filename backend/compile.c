/* ed_compile and ed_run: checks, store binding, feeds, dispatch to the backend,
 * updates, and the output accessors. The program layout is in backend/program.h. */
#include "backend/backend.h"
#include "backend/arena.h"
#include "backend/compile_cache.h"
#include "interp/interp.h"
#include "backend/llvm/jit.h"
#include "backend/program.h"
#include "ir/text.h"
#include "runtime/numerics.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* ---- compile ------------------------------------------------------------------ */

static void arena_free(void *arena, size_t bytes);

void ed_program_free(ed_program *p)
{
    if (!p) return;
    for (int i = 0; p->owned && i < p->nnodes; i++) ed_tensor_free(p->owned[i]);
    for (int i = 0; p->stage && i < p->ninputs; i++) ed_tensor_free(p->stage[i]);
    for (int i = 0; p->out_copy && i < p->noutputs; i++) ed_tensor_free(p->out_copy[i]);
    for (int i = 0; p->upd_stage && i < p->nupdates; i++) ed_tensor_free(p->upd_stage[i]);
    free(p->order);
    free(p->owned);
    free(p->value);
    free(p->bound);
    free(p->args);
    free(p->inputs);
    free(p->fed);
    free(p->stage);
    free(p->stored);
    free(p->outputs);
    free(p->out_copy);
    free(p->updates);
    free(p->upd_target);
    free(p->upd_stage);
    free(p->upd_direct);
    ed_jit_free(p->jit);
    arena_free(p->arena, p->arena_bytes); /* after the views in owned are gone */
    free(p->ptrs);
    ed_graph_free(p->copy);
    free(p);
}

/* calloc of n items that never returns NULL for n == 0, so NULL always means failure. */
static void *zalloc(int n, size_t size) { return calloc(n > 0 ? (size_t)n : 1, size); }

static bool is_stored(ed_op op) { return op == ED_OP_PARAM || op == ED_OP_STATE; }

/* NULL options and zero fields mean the defaults: the JIT at O2. */
static int resolve_opts(const ed_compile_opts *opts, ed_compile_opts *o)
{
    *o = opts ? *opts : (ed_compile_opts){0};
    if (o->backend == ED_BACKEND_DEFAULT) o->backend = ED_BACKEND_JIT;
    if (o->opt_level == ED_OPT_DEFAULT) o->opt_level = ED_OPT_O2;
    if (o->backend != ED_BACKEND_INTERP && o->backend != ED_BACKEND_JIT)
        return ed_fail("compile: unknown backend %d", (int)o->backend);
    if (o->arena == ED_ARENA_DEFAULT) o->arena = ED_ARENA_INPLACE;
    if (ed_numerics_env()) o->check_numerics = true;
    if (o->arena < ED_ARENA_INPLACE || o->arena > ED_ARENA_SEPARATE)
        return ed_fail("compile: unknown arena mode %d", (int)o->arena);
    if (o->conv < ED_CONV_AUTO || o->conv > ED_CONV_GEMM)
        return ed_fail("compile: unknown convolution lowering %d", (int)o->conv);
    if (o->opt_level < ED_OPT_O0 || o->opt_level > ED_OPT_O3)
        return ed_fail("compile: unknown opt level %d (ED_OPT_O0..ED_OPT_O3, or 0 for the default)", (int)o->opt_level);
    return ED_OK;
}

/* The checks that decide whether a graph can be compiled at all. */
static int check_graph(const ed_graph *g, const ed_store *st, ed_backend backend)
{
    if (!g) return ed_fail("compile: no graph (NULL)");
    if (ed_graph_error(g)) return ed_fail("compile: graph @%s has an error: %s", g->name, ed_graph_error(g));
    if (ed_graph_verify(g) != ED_OK) return ED_ERR; /* the verifier's message stands */
    if (backend == ED_BACKEND_JIT && ed_jit_check(g) != ED_OK) return ED_ERR;
    for (int i = 0; i < g->nnodes; i++) {
        const ed_node *n = g->nodes[i];
        if (!ed_interp_has_kernel(n->op))
            return ed_fail("compile: the interpreter has no kernel for op %s (%%%d)", ed_op_name(n->op), n->id);
        if (is_stored(n->op) && !st)
            return ed_fail("compile: %s \"%s\" needs a store, but none was given", ed_op_name(n->op), n->attr.name);
    }
    return ED_OK;
}

/* The arena comes straight from mmap: fresh anonymous pages read as zero, so nothing
 * is written here and each page is faulted in by the first call that touches it (a
 * memset here was most of a warm compile: W9's arena is 124 MB). A large arena is 2 MB
 * aligned and asks for transparent huge pages. */
enum { ARENA_HUGE = 2 << 20, ARENA_PAGE = 4096 };

static bool arena_is_huge(size_t bytes) { return bytes >= 2 * (size_t)ARENA_HUGE; }

/* The mapped length for bytes (at least a page), or 0 when that overflows. */
static size_t arena_mapped_bytes(size_t bytes)
{
    size_t unit = arena_is_huge(bytes) ? ARENA_HUGE : ARENA_PAGE;
    if (bytes > SIZE_MAX - 2 * unit) return 0;
    return bytes ? (bytes + unit - 1) / unit * unit : unit;
}

static void *arena_alloc(size_t bytes)
{
    size_t len = arena_mapped_bytes(bytes), slack = arena_is_huge(bytes) ? ARENA_HUGE : 0;
    char *map = len ? mmap(NULL, len + slack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) : MAP_FAILED;
    if (map == MAP_FAILED) {
        ed_fail("out of memory: cannot allocate %zu bytes", bytes);
        return NULL;
    }
    /* keep the aligned len bytes inside the mapping, unmap the slack on both sides */
    char *p = slack ? (char *)(((uintptr_t)map + slack - 1) / slack * slack) : map;
    if (p > map) munmap(map, (size_t)(p - map));
    if (map + len + slack > p + len) munmap(p + len, (size_t)(map + len + slack - (p + len)));
    if (slack) madvise(p, len, MADV_HUGEPAGE); /* advice: without it, 4 KB pages */
    return p;
}

static void arena_free(void *arena, size_t bytes)
{
    if (arena) munmap(arena, arena_mapped_bytes(bytes));
}

/* The memory plan along the program's order (a cache hit: the plan stored with it, which
 * planning again would reproduce). The JIT allocates its one arena by it; the interpreter
 * (one allocation per node) only reports its figures. */
static int plan_memory(ed_program *p, int64_t *offsets, bool jit, const ed_compile_cache *cc)
{
    int64_t bytes;
    if (!ed_compile_cache_plan(cc, p->nnodes, offsets, &p->stats.memory, &bytes)) /* a hit: the stored plan */
        bytes = ed_arena_plan_program(p->graph, p->order, p->opts.arena, jit && !p->opts.check_numerics, offsets,
                                      &p->stats.memory);
    if (bytes < 0) return ED_ERR;
    if (!jit) return ED_OK;
    if (!(p->arena = arena_alloc((size_t)bytes))) return ED_ERR; /* zero-filled */
    p->arena_bytes = (size_t)bytes;
    return ED_OK;
}

/* Bind params and state to the store (creating missing ones with their initializer)
 * and give every computed node its value tensor: a view into the arena when there is
 * one (offsets from alloc_arena), else a tensor of its own. */
static int bind_nodes(ed_program *p, const int64_t *offsets)
{
    const ed_graph *g = p->graph;
    for (int i = 0; i < p->nnodes; i++) {
        const ed_node *n = g->nodes[i];
        if (n->nin > p->maxin) p->maxin = n->nin;
        if (n->op == ED_OP_INPUT) {
            p->inputs[p->ninputs++] = n;
        } else if (is_stored(n->op)) {
            ed_tensor *t = ed_store_ensure(p->store, n->attr.name, n->dtype, n->shape, n->attr.init,
                                           n->op == ED_OP_PARAM);
            if (!t) return ED_ERR; /* the store names both types */
            p->bound[n->id] = t;
            p->stored[p->nstored++] = n;
        } else if (offsets[n->id] == ED_ARENA_IN_STORE) { /* its value is bound at each call */
            p->stats.kernels++;
        } else {
            p->owned[n->id] = p->arena ? ed_tensor_wrap(n->dtype, n->shape, (char *)p->arena + offsets[n->id])
                                       : ed_tensor_new(n->dtype, n->shape);
            if (!p->owned[n->id]) return ED_ERR;
            if (ed_ops[n->op].kind != ED_KIND_LEAF) p->stats.kernels++; /* counted as the JIT does: consts aside */
            p->value[n->id] = p->owned[n->id];
        }
    }
    return ED_OK;
}

/* A copy tensor for a value that is a bound leaf (whose memory is not the program's). */
static int copy_if_bound_leaf(const ed_node *n, ed_tensor **copy)
{
    if (!ed_interp_is_bound_leaf(n->op)) return ED_OK;
    *copy = ed_tensor_new(n->dtype, n->shape);
    return *copy ? ED_OK : ED_ERR;
}

static int bind_outputs_and_updates(ed_program *p, const int64_t *offsets)
{
    const ed_graph *g = p->graph;
    p->stats.memory.in_store = 0; /* counted here, for a plan from the cache too */
    for (int i = 0; i < p->noutputs; i++) {
        p->outputs[i] = (ed_program_binding){g->outputs[i].name, g->outputs[i].node};
        if (copy_if_bound_leaf(g->outputs[i].node, &p->out_copy[i]) != ED_OK) return ED_ERR;
    }
    for (int i = 0; i < p->nupdates; i++) {
        const ed_binding *b = &g->updates[i];
        p->updates[i] = (ed_program_binding){b->name, b->node};
        /* Same lookup as ed_update: a param of that name, else a state (verified). */
        const ed_node *t = ed_graph_leaf(g, ED_OP_PARAM, b->name);
        p->upd_target[i] = t ? t : ed_graph_leaf(g, ED_OP_STATE, b->name);
        p->upd_direct[i] = offsets[b->node->id] == ED_ARENA_IN_STORE;
        p->stats.memory.in_store += p->upd_direct[i];
        if (copy_if_bound_leaf(b->node, &p->upd_stage[i]) != ED_OK) return ED_ERR;
    }
    return ED_OK;
}

/* Fill the consts of g whose arena is at base (offsets from ed_arena_plan), and those
 * of loop bodies inside g, which live in their loop's slot (ed_loop_layout). */
static int fill_consts(const ed_graph *g, char *base, const int64_t *offsets)
{
    ed_interp_ctx ctx = {0};
    for (int i = 0; i < g->nnodes; i++) {
        const ed_node *n = g->nodes[i];
        if (n->op == ED_OP_CONST) {
            ed_tensor *t = ed_tensor_wrap(n->dtype, n->shape, base + offsets[i]);
            if (!t) return ED_ERR;
            ed_interp_eval(n, NULL, t, &ctx);
            ed_tensor_free(t);
        } else if (n->op == ED_OP_LOOP) {
            ed_loop_layout l;
            int st = ed_loop_layout_make(n, &l);
            if (st == ED_OK) st = fill_consts(n->attr.body, base + offsets[i] + l.body, l.body_off);
            ed_loop_layout_free(&l);
            if (st != ED_OK) return ED_ERR;
        }
    }
    return ED_OK;
}

static const char *const cache_names[] = {"off", "hit", "stored", "not stored"};

/* Consts never change and their buffers are the program's: fill them once here, then
 * load the cached objects (a hit), or let LLVM compile the rest with the arena offsets
 * baked in and store its objects (a miss with the cache on). */
static int compile_jit(ed_program *p, const int64_t *offsets, ed_compile_cache *cc)
{
    if (fill_consts(p->graph, p->arena, offsets) != ED_OK) return ED_ERR;
    if (!(p->ptrs = zalloc(p->nnodes, sizeof *p->ptrs))) return ed_fail("compile: out of memory");
    int level = (int)p->opts.opt_level - ED_OPT_O0;
    int kernels = 0;
    if (cc->hit) {
        p->jit = ed_jit_load(cc->rec.obj, cc->rec.obj_len, cc->rec.nobj, level);
        kernels = cc->rec.kernels;
        if (!p->jit) cc->hit = false; /* the graph is the canonical one: compile it as a miss would */
    }
    if (!p->jit) {
        int threads = p->opts.compile_threads > 0 ? p->opts.compile_threads : ed_jit_default_threads();
        p->jit = ed_jit_compile(p->graph, p->order, offsets, level, p->opts.check_numerics ? &p->fault : NULL,
                                p->opts.conv, threads, cc->key != NULL);
        if (!p->jit) return ED_ERR;
        kernels = ed_jit_get_stats(p->jit).kernels;
        if (cc->key) {
            if (!cc->text) cc->text = ed_graph_print(p->graph); /* a failed load of a hit */
            ed_jit_set_cache(p->jit, ed_compile_cache_store(cc, p->jit, kernels, p->nnodes, offsets, &p->stats.memory,
                                                            (int64_t)p->arena_bytes));
        }
    }
    ed_jit_stats js = ed_jit_get_stats(p->jit);
    p->stats = (ed_compile_stats){.lower_ms = js.lower_ms,
                                  .optimize_ms = js.optimize_ms,
                                  .codegen_ms = js.codegen_ms,
                                  .kernels = kernels,
                                  .cache = cache_names[js.cache],
                                  .passes_skipped = cc->hit,
                                  .parts = js.parts,
                                  .arena_bytes = p->arena_bytes,
                                  .memory = p->stats.memory};
    return ED_OK;
}

/* pipeline without its "fuse" entries into buf: under check_numerics every op is its own
 * kernel, so the node a fault names is one op of the graph the user wrote. */
static const char *without_fuse(const char *pipeline, char *buf, size_t size)
{
    const char *s = pipeline ? pipeline : ED_DEFAULT_PIPELINE;
    size_t len = 0;
    buf[0] = '\0';
    while (*s) {
        size_t n = strcspn(s, ","), a = 0, b = n;
        while (a < b && s[a] == ' ') a++;
        while (b > a && s[b - 1] == ' ') b--;
        if (!(b - a == 4 && strncmp(s + a, "fuse", 4) == 0) && len + (b - a) + 2 <= size) {
            if (len) buf[len++] = ',';
            memcpy(buf + len, s + a, b - a);
            buf[len += b - a] = '\0';
        }
        s += n + (s[n] == ',');
    }
    return buf;
}

/* The caller's graph stays as it is: the passes rewrite a copy, which is compiled. */
static ed_graph *copy_and_run_passes(const ed_graph *src, const ed_compile_opts *o)
{
    if (ed_pipeline_check(o->passes) != ED_OK) return NULL;
    char buf[1024];
    const char *pipeline = o->check_numerics ? without_fuse(o->passes, buf, sizeof buf) : o->passes;
    ed_graph *g = ed_graph_clone(src);
    if (g && ed_pass_run(g, pipeline, o->pass_opts) != ED_OK) {
        ed_graph_free(g);
        return NULL;
    }
    return g;
}

ed_program *ed_compile(const ed_graph *src, ed_store *st, const ed_compile_opts *opts)
{
    ed_compile_opts o;
    ed_compile_cache cc;
    ed_threads_default();
    if (resolve_opts(opts, &o) != ED_OK || check_graph(src, st, o.backend) != ED_OK ||
        ed_compile_cache_begin(&cc, src, &o) != ED_OK)
        return NULL;
    /* a hit: the graph the passes made, as the cache holds it; a miss: the passes, then
     * the same canonical form */
    ed_graph *g = ed_compile_cache_lookup(&cc, &o);
    if (!g) g = ed_compile_cache_canonical(&cc, copy_and_run_passes(src, &o));
    if (!g || check_graph(g, st, o.backend) != ED_OK) {
        ed_graph_free(g);
        ed_compile_cache_free(&cc);
        return NULL;
    }

    ed_program *p = calloc(1, sizeof *p);
    if (!p) {
        ed_graph_free(g);
        ed_compile_cache_free(&cc);
        ed_fail("compile: out of memory");
        return NULL;
    }
    *p = (ed_program){.graph = g,
                      .copy = g,
                      .store = st,
                      .opts = o,
                      .nnodes = g->nnodes,
                      .noutputs = g->noutputs,
                      .nupdates = g->nupdates};
    int n = g->nnodes;
    p->order = ed_graph_topo(g);
    p->owned = zalloc(n, sizeof *p->owned);
    p->value = zalloc(n, sizeof *p->value);
    p->bound = zalloc(n, sizeof *p->bound);
    p->inputs = zalloc(n, sizeof *p->inputs);
    p->fed = zalloc(n, sizeof *p->fed);
    p->stage = zalloc(n, sizeof *p->stage);
    p->stored = zalloc(n, sizeof *p->stored);
    p->outputs = zalloc(p->noutputs, sizeof *p->outputs);
    p->out_copy = zalloc(p->noutputs, sizeof *p->out_copy);
    p->updates = zalloc(p->nupdates, sizeof *p->updates);
    p->upd_target = zalloc(p->nupdates, sizeof *p->upd_target);
    p->upd_stage = zalloc(p->nupdates, sizeof *p->upd_stage);
    p->upd_direct = zalloc(p->nupdates, sizeof *p->upd_direct);
    int64_t *offsets = zalloc(n, sizeof *offsets); /* only needed while compiling */
    bool ok = p->order && p->owned && p->value && p->bound && p->inputs && p->fed && p->stage && p->stored &&
              p->outputs && p->out_copy && p->updates && p->upd_target && p->upd_stage && p->upd_direct && offsets;
    if (!ok) {
        ed_fail("compile: out of memory");
        goto fail;
    }
    bool jit = o.backend == ED_BACKEND_JIT;
    if (plan_memory(p, offsets, jit, &cc) != ED_OK) goto fail;
    if (bind_nodes(p, offsets) != ED_OK || bind_outputs_and_updates(p, offsets) != ED_OK) goto fail;
    if (!(p->args = zalloc(p->maxin, sizeof *p->args))) {
        ed_fail("compile: out of memory");
        goto fail;
    }
    if (jit && compile_jit(p, offsets, &cc) != ED_OK) goto fail;
    free(offsets);
    ed_compile_cache_free(&cc);
    return p;
fail:
    free(offsets);
    ed_compile_cache_free(&cc);
    ed_program_free(p);
    return NULL;
}

/* ---- feeds ---------------------------------------------------------------------- */

static int find_input(const ed_program *p, const char *name)
{
    for (int i = 0; i < p->ninputs; i++)
        if (strcmp(p->inputs[i]->attr.name, name) == 0) return i;
    return -1;
}

static int check_feed(const ed_program *p, const ed_feed *f, int k)
{
    if (!f->name) return ed_fail("feed %d has no name", k);
    int i = find_input(p, f->name);
    if (i < 0) return ed_fail("no input named \"%s\" in @%s", f->name, p->graph->name);
    const ed_node *x = p->inputs[i];
    const ed_tensor *t = f->tensor;
    if (p->fed[i]) return ed_fail("input \"%s\" is fed twice", f->name);
    if (!t) return ed_fail("input \"%s\" is fed a NULL tensor", f->name);
    if (t->dtype != x->dtype || !ed_shape_eq(t->shape, x->shape)) {
        char have[96], want[96];
        return ed_fail("input \"%s\": fed %s, graph wants %s", f->name,
                       ed_type_str(t->dtype, t->shape, have, sizeof have), ed_node_type_str(x, want, sizeof want));
    }
    if (!t->data && ed_tensor_bytes(t)) return ed_fail("input \"%s\": the fed tensor has no data", f->name);
    return i;
}

/* Does t's buffer share bytes with [data, data + bytes)? */
static bool overlap_range(const ed_tensor *t, const void *data, size_t bytes)
{
    size_t tb = ed_tensor_bytes(t);
    if (!tb || !bytes) return false;
    uintptr_t a = (uintptr_t)t->data, b = (uintptr_t)data;
    return a < b + bytes && b < a + tb;
}

static bool overlap(const ed_tensor *t, const ed_tensor *u)
{
    return u && overlap_range(t, u->data, ed_tensor_bytes(u));
}

/* Memory a call writes before it has read every input: the arena holds every
 * computed node's buffer (one check), else each has its own; and the store tensors of
 * the updates it writes during the call. */
static bool overlaps_program(const ed_program *p, const ed_tensor *t)
{
    if (p->arena && overlap_range(t, p->arena, p->arena_bytes)) return true;
    for (int i = 0; !p->arena && i < p->nnodes; i++)
        if (overlap(t, p->owned[i])) return true;
    for (int i = 0; i < p->noutputs; i++)
        if (overlap(t, p->out_copy[i])) return true;
    for (int i = 0; i < p->nupdates; i++)
        if (p->upd_direct[i] && overlap(t, p->bound[p->upd_target[i]->id])) return true;
    return false;
}

static int bind_inputs(ed_program *p, const ed_feed *feeds, int nfeeds)
{
    if (nfeeds < 0 || (nfeeds > 0 && !feeds))
        return ed_fail("run: bad feed list (%d feeds%s)", nfeeds, feeds ? "" : ", NULL array");
    for (int i = 0; i < p->ninputs; i++) p->fed[i] = NULL;
    for (int k = 0; k < nfeeds; k++) {
        int i = check_feed(p, &feeds[k], k);
        if (i < 0) return ED_ERR;
        p->fed[i] = feeds[k].tensor;
    }
    for (int i = 0; i < p->ninputs; i++) {
        const ed_node *x = p->inputs[i];
        const ed_tensor *t = p->fed[i];
        if (!t) return ed_fail("input \"%s\" is not fed", x->attr.name);
        /* Last call's output fed back would be overwritten while still being read. */
        if (overlaps_program(p, t)) {
            if (!p->stage[i] && !(p->stage[i] = ed_tensor_new(x->dtype, x->shape))) return ED_ERR;
            memcpy(p->stage[i]->data, t->data, ed_tensor_bytes(t));
            t = p->stage[i];
        }
        p->value[x->id] = t;
    }
    return ED_OK;
}

/* The store entries may have been replaced since compile: look them up again. */
static int bind_store(ed_program *p)
{
    for (int i = 0; i < p->nstored; i++) {
        const ed_node *n = p->stored[i];
        ed_tensor *t = ed_store_get(p->store, n->attr.name);
        if (!t) return ed_fail("%s \"%s\" is no longer in the store", ed_op_name(n->op), n->attr.name);
        if (t->dtype != n->dtype || !ed_shape_eq(t->shape, n->shape)) {
            char have[96], want[96];
            return ed_fail("%s \"%s\": the store holds %s, graph wants %s", ed_op_name(n->op), n->attr.name,
                           ed_type_str(t->dtype, t->shape, have, sizeof have), ed_node_type_str(n, want, sizeof want));
        }
        p->bound[n->id] = t;
        p->value[n->id] = t;
    }
    for (int i = 0; i < p->nupdates; i++)
        if (p->upd_direct[i]) p->value[p->updates[i].node->id] = p->bound[p->upd_target[i]->id];
    return ED_OK;
}

/* ---- run ------------------------------------------------------------------------ */

static int run_interp(ed_program *p)
{
    int status = ED_OK;
    ed_interp_ctx ctx = {.seed = p->opts.seed, .call = p->calls, .status = &status};
    for (int i = 0; i < p->nnodes && status == ED_OK; i++) {
        const ed_node *n = p->order[i];
        ed_tensor *out = p->owned[n->id];
        if (!out) continue; /* a bound leaf: its value is already in place */
        for (int k = 0; k < n->nin; k++) p->args[k] = p->value[n->in[k]->id];
        ed_interp_eval(n, p->args, out, &ctx);
        if (p->opts.check_numerics && n->op != ED_OP_LOOP && (out->dtype == ED_F32 || out->dtype == ED_F64))
            ed_numerics_check(&p->fault, out->data, ed_tensor_numel(out), out->dtype == ED_F64, n);
    }
    return status;
}

/* Computed nodes are at fixed places in the arena; only bound leaves, and the updates
 * written into their store tensors, move per call. */
static void run_jit(ed_program *p)
{
    for (int i = 0; i < p->ninputs; i++) p->ptrs[p->inputs[i]->id] = p->value[p->inputs[i]->id]->data;
    for (int i = 0; i < p->nstored; i++) p->ptrs[p->stored[i]->id] = p->value[p->stored[i]->id]->data;
    for (int i = 0; i < p->nupdates; i++)
        if (p->upd_direct[i]) p->ptrs[p->updates[i].node->id] = p->value[p->updates[i].node->id]->data;
    ed_jit_entry_fn(p->jit)(p->arena, p->ptrs, p->opts.seed, p->calls);
}

static void copy_value(ed_tensor *dst, const ed_tensor *src)
{
    size_t bytes = ed_tensor_bytes(dst);
    if (bytes && dst->data != src->data) memcpy(dst->data, src->data, bytes);
}

/* Outputs that are bound leaves are copied, then updates are written: every read of an
 * old value (staging, output copies) happens before the first store write. */
static void finish(ed_program *p)
{
    for (int i = 0; i < p->nupdates; i++)
        if (p->upd_stage[i]) copy_value(p->upd_stage[i], p->value[p->updates[i].node->id]);
    for (int i = 0; i < p->noutputs; i++)
        if (p->out_copy[i]) copy_value(p->out_copy[i], p->value[p->outputs[i].node->id]);
    for (int i = 0; i < p->nupdates; i++) {
        const ed_tensor *src = p->upd_stage[i] ? p->upd_stage[i] : p->value[p->updates[i].node->id];
        copy_value(p->bound[p->upd_target[i]->id], src);
    }
}

/* The node that made the call's first non-finite value, as the program's graph prints it. */
static int numerics_fail(const ed_program *p)
{
    const ed_node *n = p->fault.node;
    int *num = NULL; /* %N as `edifice dump` prints the graph */
    ed_node **order = ed_text_order(n->graph, &num);
    int id = order && num ? num[n->id] : n->id;
    free(order);
    free(num);
    char type[96];
    const char *what = isnan(p->fault.value) ? "nan" : p->fault.value > 0 ? "inf" : "-inf";
    return ed_fail("check-numerics: %s at element %lld of %%%d = %s%s%s%s : %s in graph @%s (the first non-finite "
                   "value of the call; no update was written)",
                   what, (long long)p->fault.index, id, ed_op_name(n->op), n->name ? " \"" : "", n->name ? n->name : "",
                   n->name ? "\"" : "", ed_node_type_str(n, type, sizeof type), n->graph->name);
}

int ed_run(ed_program *p, const ed_feed *feeds, int nfeeds)
{
    if (!p) return ed_fail("run: no program (NULL)");
    /* the store first: a feed that overlaps a tensor the call writes is staged */
    if (bind_store(p) != ED_OK || bind_inputs(p, feeds, nfeeds) != ED_OK) return ED_ERR;
    p->fault = (ed_numerics_fault){0};
    if (p->jit) run_jit(p);
    else if (run_interp(p) != ED_OK) return ED_ERR; /* no update written, the call does not count */
    if (p->fault.node) return numerics_fail(p);     /* likewise */
    finish(p);
    p->calls++;
    return ED_OK;
}

/* ---- accessors ------------------------------------------------------------------ */

int ed_program_num_outputs(const ed_program *p) { return p ? p->noutputs : 0; }

const char *ed_program_output_name(const ed_program *p, int i)
{
    return p && i >= 0 && i < p->noutputs ? p->outputs[i].name : NULL;
}

const ed_tensor *ed_program_output_at(const ed_program *p, int i)
{
    if (!p || i < 0 || i >= p->noutputs) return NULL;
    return p->out_copy[i] ? p->out_copy[i] : p->owned[p->outputs[i].node->id];
}

const ed_tensor *ed_program_output(const ed_program *p, const char *name)
{
    for (int i = 0; p && name && i < p->noutputs; i++)
        if (strcmp(p->outputs[i].name, name) == 0) return ed_program_output_at(p, i);
    return NULL;
}

uint64_t ed_program_calls(const ed_program *p) { return p ? p->calls : 0; }

ed_backend ed_program_backend(const ed_program *p) { return p ? p->opts.backend : ED_BACKEND_DEFAULT; }

ed_compile_stats ed_program_compile_stats(const ed_program *p) { return p ? p->stats : (ed_compile_stats){0}; }

void ed_program_set_calls(ed_program *p, uint64_t calls)
{
    if (p) p->calls = calls;
}
