/* edifice export (backend/export.h): the JIT's module of a compiled program, plus the
 * runtime helpers from the bitcode embedded at build time (CMakeLists.txt), plus the
 * params and the arena's consts as data and the NAME_* wrappers, internalized but for
 * NAME_* and written as an object by the target machine the JIT uses.
 *
 * The program's own code goes through exactly the JIT's steps (lower, default<On> with
 * the same target machine) before the helpers are linked in, so its optimized IR and
 * machine code are the JIT's; only unused code is dropped afterwards (globaldce). */
#include "backend/export.h"

#include "backend/llvm/lower.h"
#include "backend/program.h"
#include "runtime/error.h"

#include <llvm-c/Analysis.h>
#include <llvm-c/BitReader.h>
#include <llvm-c/Linker.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const unsigned char ed_runtime_bc[];
extern const size_t ed_runtime_bc_size;

/* What one export builds: the module and what the wrappers need. */
typedef struct {
    const ed_program *p;
    const char *name;
    ed_cg cg;
    int64_t *offsets;   /* by node id: arena offset, -1 for a bound leaf */
    LLVMValueRef entry; /* ed_entry */
    LLVMValueRef *leaf; /* by node id: the constant global of a param or state */
} exporter;

static char *fmt_name(const char *name, const char *suffix)
{
    size_t n = strlen(name) + strlen(suffix) + 1;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s%s", name, suffix);
    return s;
}

/* A private constant global holding bytes, 64-byte aligned. */
static LLVMValueRef const_bytes(exporter *e, const void *data, size_t bytes, const char *gname)
{
    LLVMValueRef init = LLVMConstStringInContext2(e->cg.ctx, data, bytes, 1);
    LLVMValueRef g = LLVMAddGlobal(e->cg.mod, LLVMTypeOf(init), gname);
    LLVMSetInitializer(g, init);
    LLVMSetGlobalConstant(g, 1);
    LLVMSetLinkage(g, LLVMPrivateLinkage);
    LLVMSetAlignment(g, 64);
    return g;
}

/* Params and state as constants; the same store tensor twice is one global. */
static int bake_leaves(exporter *e)
{
    const ed_program *p = e->p;
    for (int i = 0; i < p->nstored; i++) {
        const ed_node *n = p->stored[i];
        const ed_tensor *t = ed_store_get(p->store, n->attr.name);
        if (!t) return ed_fail("export: %s \"%s\" is not in the store", ed_op_name(n->op), n->attr.name);
        for (int j = 0; j < i && !e->leaf[n->id]; j++)
            if (ed_store_get(p->store, p->stored[j]->attr.name) == t) e->leaf[n->id] = e->leaf[p->stored[j]->id];
        if (!e->leaf[n->id]) e->leaf[n->id] = const_bytes(e, t->data, ed_tensor_bytes(t), "param");
    }
    return ED_OK;
}

static LLVMValueRef add_fn(exporter *e, const char *suffix, LLVMTypeRef ft)
{
    char *n = fmt_name(e->name, suffix);
    if (!n) return NULL;
    LLVMValueRef f = LLVMAddFunction(e->cg.mod, n, ft);
    free(n);
    LLVMPositionBuilderAtEnd(e->cg.b, LLVMAppendBasicBlockInContext(e->cg.ctx, f, "entry"));
    e->cg.fn = f;
    return f;
}

/* NAME_init(ws): zeros, then the nonzero runs of the compiled arena (its consts; runs
 * closer than 64 bytes merged). The JIT's arena starts the same way: zero-filled, consts
 * written once at compile time. */
static LLVMValueRef build_init(exporter *e)
{
    ed_cg *cg = &e->cg;
    LLVMTypeRef pt[1] = {cg->ptr};
    LLVMValueRef f = add_fn(e, "_init", LLVMFunctionType(cg->vd, pt, 1, 0));
    if (!f) return NULL;
    LLVMValueRef ws = LLVMGetParam(f, 0);
    size_t bytes = e->p->arena_bytes;
    const unsigned char *a = e->p->arena;
    LLVMBuildMemSet(cg->b, ws, LLVMConstInt(LLVMInt8TypeInContext(cg->ctx), 0, 0), ed_cg_i64(cg, (int64_t)bytes), 64);
    for (size_t i = 0; i < bytes;) {
        if (!a[i]) {
            i++;
            continue;
        }
        size_t end = i + 1, zeros = 0;
        for (size_t k = end; k < bytes && zeros < 64; k++) {
            zeros = a[k] ? 0 : zeros + 1;
            if (a[k]) end = k + 1;
        }
        LLVMValueRef seg = const_bytes(e, a + i, end - i, "consts");
        LLVMBuildMemCpy(cg->b, ed_cg_byte_gep(cg, ws, (int64_t)i), 1, seg, 64, ed_cg_i64(cg, (int64_t)(end - i)));
        i = end;
    }
    LLVMBuildRetVoid(cg->b);
    return f;
}

/* NAME_call(ws, in..., out..., seed, call): the values table, ed_entry, the outputs copied out. */
static LLVMValueRef build_call(exporter *e)
{
    const ed_program *p = e->p;
    ed_cg *cg = &e->cg;
    int np = 1 + p->ninputs + p->noutputs + 2;
    LLVMTypeRef *pt = malloc((size_t)np * sizeof *pt);
    if (!pt) return NULL;
    for (int i = 0; i < np; i++) pt[i] = i < np - 2 ? cg->ptr : cg->i64;
    LLVMValueRef f = add_fn(e, "_call", LLVMFunctionType(cg->i32, pt, (unsigned)np, 0));
    free(pt);
    if (!f) return NULL;
    LLVMValueRef ws = LLVMGetParam(f, 0);
    LLVMTypeRef table_ty = LLVMArrayType2(cg->ptr, (uint64_t)p->nnodes + 1);
    LLVMValueRef table = ed_cg_alloca(cg, table_ty);
    LLVMValueRef *slot = calloc((size_t)p->nnodes + 1, sizeof *slot);
    if (!slot) return NULL;
    for (int id = 0; id < p->nnodes; id++) {
        LLVMValueRef idx = ed_cg_i64(cg, id);
        slot[id] = LLVMBuildInBoundsGEP2(cg->b, cg->ptr, table, &idx, 1, "");
    }
    for (int i = 0; i < p->ninputs; i++)
        LLVMBuildStore(cg->b, LLVMGetParam(f, 1 + (unsigned)i), slot[p->inputs[i]->id]);
    for (int i = 0; i < p->nstored; i++) LLVMBuildStore(cg->b, e->leaf[p->stored[i]->id], slot[p->stored[i]->id]);
    LLVMValueRef args[4] = {ws, table, LLVMGetParam(f, (unsigned)np - 2), LLVMGetParam(f, (unsigned)np - 1)};
    LLVMBuildCall2(cg->b, LLVMGlobalGetValueType(e->entry), e->entry, args, 4, "");
    for (int i = 0; i < p->noutputs; i++) {
        const ed_node *n = p->outputs[i].node;
        LLVMValueRef src = e->offsets[n->id] >= 0 ? ed_cg_byte_gep(cg, ws, e->offsets[n->id])
                                                  : LLVMBuildLoad2(cg->b, cg->ptr, slot[n->id], "");
        size_t bytes = (size_t)ed_shape_numel(n->shape) * ed_dtype_size(n->dtype);
        LLVMBuildMemCpy(cg->b, LLVMGetParam(f, 1 + (unsigned)(p->ninputs + i)), 1, src, 1,
                        ed_cg_i64(cg, (int64_t)bytes));
    }
    free(slot);
    LLVMBuildRet(cg->b, LLVMConstInt(cg->i32, 0, 0));
    return f;
}

/* NAME_run(in..., out..., seed, call): NAME_call in the object's static workspace,
 * NAME_init'ed on the first call. */
static LLVMValueRef build_run(exporter *e, LLVMValueRef init, LLVMValueRef call)
{
    const ed_program *p = e->p;
    ed_cg *cg = &e->cg;
    int np = p->ninputs + p->noutputs + 2;
    LLVMTypeRef *pt = malloc((size_t)np * sizeof *pt);
    LLVMValueRef *args = malloc((size_t)(np + 1) * sizeof *args);
    if (!pt || !args) {
        free(pt), free(args);
        return NULL;
    }
    for (int i = 0; i < np; i++) pt[i] = i < np - 2 ? cg->ptr : cg->i64;
    LLVMValueRef f = add_fn(e, "_run", LLVMFunctionType(cg->i32, pt, (unsigned)np, 0));
    free(pt);
    if (!f) {
        free(args);
        return NULL;
    }
    size_t bytes = e->p->arena_bytes ? e->p->arena_bytes : 64;
    LLVMTypeRef ws_ty = LLVMArrayType2(LLVMInt8TypeInContext(cg->ctx), bytes);
    LLVMValueRef ws = LLVMAddGlobal(cg->mod, ws_ty, "workspace");
    LLVMSetInitializer(ws, LLVMConstNull(ws_ty));
    LLVMSetLinkage(ws, LLVMInternalLinkage);
    LLVMSetAlignment(ws, 64);
    LLVMValueRef ready = LLVMAddGlobal(cg->mod, cg->i32, "ready");
    LLVMSetInitializer(ready, LLVMConstInt(cg->i32, 0, 0));
    LLVMSetLinkage(ready, LLVMInternalLinkage);
    LLVMBasicBlockRef first = LLVMAppendBasicBlockInContext(cg->ctx, f, "first");
    LLVMBasicBlockRef go = LLVMAppendBasicBlockInContext(cg->ctx, f, "go");
    LLVMValueRef r = LLVMBuildLoad2(cg->b, cg->i32, ready, "");
    LLVMBuildCondBr(cg->b, LLVMBuildICmp(cg->b, LLVMIntEQ, r, LLVMConstInt(cg->i32, 0, 0), ""), first, go);
    LLVMPositionBuilderAtEnd(cg->b, first);
    LLVMBuildCall2(cg->b, LLVMGlobalGetValueType(init), init, &ws, 1, "");
    LLVMBuildStore(cg->b, LLVMConstInt(cg->i32, 1, 0), ready);
    LLVMBuildBr(cg->b, go);
    LLVMPositionBuilderAtEnd(cg->b, go);
    args[0] = ws;
    for (int i = 0; i < np; i++) args[i + 1] = LLVMGetParam(f, (unsigned)i);
    LLVMValueRef res = LLVMBuildCall2(cg->b, LLVMGlobalGetValueType(call), call, args, (unsigned)np + 1, "");
    free(args);
    LLVMBuildRet(cg->b, res);
    return f;
}

/* NAME_sample(in..., seed, out...): NAME_run at call 0, the argument order of a sampler. */
static int build_sample(exporter *e, LLVMValueRef run)
{
    const ed_program *p = e->p;
    ed_cg *cg = &e->cg;
    int np = p->ninputs + 1 + p->noutputs;
    LLVMTypeRef *pt = malloc((size_t)np * sizeof *pt);
    LLVMValueRef *args = malloc((size_t)(np + 1) * sizeof *args);
    LLVMValueRef f = NULL;
    if (pt && args) {
        for (int i = 0; i < np; i++) pt[i] = i == p->ninputs ? cg->i64 : cg->ptr;
        f = add_fn(e, "_sample", LLVMFunctionType(cg->i32, pt, (unsigned)np, 0));
    }
    if (f) {
        int k = 0;
        for (int i = 0; i < p->ninputs; i++) args[k++] = LLVMGetParam(f, (unsigned)i);
        for (int i = 0; i < p->noutputs; i++) args[k++] = LLVMGetParam(f, (unsigned)(p->ninputs + 1 + i));
        args[k++] = LLVMGetParam(f, (unsigned)p->ninputs);
        args[k++] = ed_cg_i64(cg, 0);
        LLVMBuildRet(cg->b, LLVMBuildCall2(cg->b, LLVMGlobalGetValueType(run), run, args, (unsigned)k, ""));
    }
    free(pt);
    free(args);
    return f ? ED_OK : ed_fail("export: out of memory");
}

/* Link the embedded runtime bitcode into the module. */
static int link_runtime(exporter *e)
{
    LLVMMemoryBufferRef buf = LLVMCreateMemoryBufferWithMemoryRange((const char *)ed_runtime_bc, ed_runtime_bc_size,
                                                                    "runtime.bc", 0);
    LLVMModuleRef rt = NULL;
    int bad = LLVMParseBitcodeInContext2(e->cg.ctx, buf, &rt);
    LLVMDisposeMemoryBuffer(buf);
    if (bad) return ed_fail("export: internal error, the embedded runtime bitcode does not parse");
    LLVMSetTarget(rt, LLVMGetTarget(e->cg.mod));
    LLVMSetDataLayout(rt, LLVMGetDataLayoutStr(e->cg.mod));
    if (LLVMLinkModules2(e->cg.mod, rt)) /* takes rt */
        return ed_fail("export: internal error, linking the runtime bitcode failed");
    return ED_OK;
}

/* --no-blas: every call of cblas_sgemm/dgemm (matmul kernels, conv_gemm.c) goes to
 * runtime/gemm_ref.c's function of the same signature. */
static int replace_blas(exporter *e)
{
    const char *blas[2] = {"cblas_sgemm", "cblas_dgemm"}, *ref[2] = {"ed_ref_sgemm", "ed_ref_dgemm"};
    for (int i = 0; i < 2; i++) {
        LLVMValueRef decl = LLVMGetNamedFunction(e->cg.mod, blas[i]), def = LLVMGetNamedFunction(e->cg.mod, ref[i]);
        if (!decl) continue;
        if (!def || LLVMIsDeclaration(def) || !LLVMIsDeclaration(decl))
            return ed_fail("export: internal error, no %s in the runtime bitcode", ref[i]);
        LLVMReplaceAllUsesWith(decl, def);
        LLVMDeleteFunction(decl);
    }
    return ED_OK;
}

/* Everything but NAME_* becomes internal, then unused code goes. */
static int internalize(exporter *e, LLVMTargetMachineRef tm)
{
    size_t plen = strlen(e->name), len;
    for (LLVMValueRef f = LLVMGetFirstFunction(e->cg.mod); f; f = LLVMGetNextFunction(f)) {
        const char *n = LLVMGetValueName2(f, &len);
        if (!LLVMIsDeclaration(f) && !(strncmp(n, e->name, plen) == 0 && n[plen] == '_'))
            LLVMSetLinkage(f, LLVMInternalLinkage);
    }
    for (LLVMValueRef g = LLVMGetFirstGlobal(e->cg.mod); g; g = LLVMGetNextGlobal(g))
        if (!LLVMIsDeclaration(g) && LLVMGetLinkage(g) != LLVMPrivateLinkage) LLVMSetLinkage(g, LLVMInternalLinkage);
    LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
    LLVMErrorRef err = LLVMRunPasses(e->cg.mod, "globaldce", tm, po);
    LLVMDisposePassBuilderOptions(po);
    if (err) {
        char *msg = LLVMGetErrorMessage(err);
        ed_fail("export: removing unused code: %s", msg);
        LLVMDisposeErrorMessage(msg);
        return ED_ERR;
    }
    return ED_OK;
}

/* The symbols the object needs from outside, "a b c" into buf; an edifice one is an error. */
static int external_symbols(exporter *e, char *buf, size_t size)
{
    size_t used = 0, len;
    buf[0] = '\0';
    for (LLVMValueRef f = LLVMGetFirstFunction(e->cg.mod); f; f = LLVMGetNextFunction(f)) {
        if (!LLVMIsDeclaration(f) || LLVMGetIntrinsicID(f) || !LLVMGetFirstUse(f)) continue;
        const char *n = LLVMGetValueName2(f, &len);
        if (strncmp(n, "ed_", 3) == 0)
            return ed_fail("export: internal error, the object would call edifice's %s (not in the runtime bitcode)",
                           n);
        if (used + len + 2 < size) used += (size_t)snprintf(buf + used, size - used, "%s%s", used ? " " : "", n);
    }
    for (LLVMValueRef g = LLVMGetFirstGlobal(e->cg.mod); g; g = LLVMGetNextGlobal(g))
        if (LLVMIsDeclaration(g) && LLVMGetFirstUse(g))
            return ed_fail("export: internal error, the object would need the variable %s", LLVMGetValueName2(g, &len));
    return ED_OK;
}

/* "x86_64" from "x86_64-pc-linux-gnu". */
static size_t arch_len(const char *triple) { return strcspn(triple, "-"); }

static int check_target(const ed_export_opts *o)
{
    if (!o->triple) return ED_OK;
    char *host = LLVMGetDefaultTargetTriple();
    bool same = arch_len(host) == arch_len(o->triple) && strncmp(host, o->triple, arch_len(host)) == 0;
    int st = same ? ED_OK
                  : ed_fail("export: target triple '%s' is not supported: only the host architecture (%.*s, "
                            "e.g. %s) can be exported to; --target-cpu picks another CPU of it",
                            o->triple, (int)arch_len(host), host, host);
    LLVMDisposeMessage(host);
    return st;
}

/* The C prefix: o->name, or the file name of o->out with non-identifier bytes as '_'. */
static int prefix_of(const ed_export_opts *o, char *buf, size_t size)
{
    const char *s = o->name;
    if (!s) {
        s = strrchr(o->out, '/');
        s = s ? s + 1 : o->out;
    }
    size_t n = strlen(s);
    if (n == 0 || n + 1 > size) return ed_fail("export: the name '%s' is empty or too long", s);
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (i > 0 && c >= '0' && c <= '9');
        if (o->name && !ok) return ed_fail("export: --name '%s' is not a C identifier", s);
        buf[i] = ok ? c : '_';
    }
    buf[n] = '\0';
    return ED_OK;
}

static int emit(exporter *e, LLVMTargetMachineRef tm, const char *out)
{
    char *path = fmt_name(out, ".o"), *msg = NULL;
    if (!path) return ed_fail("export: out of memory");
    int st = ED_OK;
    if (LLVMTargetMachineEmitToFile(tm, e->cg.mod, path, LLVMObjectFile, &msg)) {
        st = ed_fail("export: writing %s: %s", path, msg ? msg : "unknown error");
        LLVMDisposeMessage(msg);
    }
    free(path);
    return st;
}

static int build(exporter *e, const ed_export_opts *o, LLVMTargetMachineRef tm, int level)
{
    char *triple = LLVMGetTargetMachineTriple(tm), *cpu = LLVMGetTargetMachineCPU(tm);
    LLVMTargetDataRef td = LLVMCreateTargetDataLayout(tm);
    char *layout = LLVMCopyStringRepOfTargetData(td);
    ed_jit_stats js;
    const ed_program *p = e->p;
    char needs[2048];
    int st = ed_llvm_lower_module(&e->cg, p->graph, p->order, e->offsets, triple, layout, &js);
    if (st == ED_OK) st = ed_llvm_optimize(e->cg.mod, tm, level, &js);
    if (st == ED_OK) {
        e->entry = LLVMGetNamedFunction(e->cg.mod, "ed_entry");
        st = e->entry ? bake_leaves(e) : ed_fail("export: internal error, no ed_entry");
    }
    LLVMValueRef init = NULL, call = NULL, run = NULL;
    if (st == ED_OK && (!(init = build_init(e)) || !(call = build_call(e)) || !(run = build_run(e, init, call))))
        st = ed_fail("export: out of memory");
    if (st == ED_OK && o->sample_fn) st = build_sample(e, run);
    if (st == ED_OK) st = link_runtime(e);
    if (st == ED_OK && o->no_blas) st = replace_blas(e);
    if (st == ED_OK) st = internalize(e, tm);
    if (st == ED_OK) st = external_symbols(e, needs, sizeof needs);
    char *vmsg = NULL;
    if (st == ED_OK && LLVMVerifyModule(e->cg.mod, LLVMReturnStatusAction, &vmsg))
        st = ed_fail("export: internal error, invalid module: %.900s", vmsg);
    LLVMDisposeMessage(vmsg);
    if (st == ED_OK) st = emit(e, tm, o->out);
    if (st == ED_OK) st = ed_export_write_header(p, o, e->name, triple, cpu, needs);
    LLVMDisposeMessage(layout);
    LLVMDisposeTargetData(td);
    LLVMDisposeMessage(triple);
    LLVMDisposeMessage(cpu);
    return st;
}

int ed_export_program(const ed_program *p, const ed_export_opts *o)
{
    if (!p || !o || !o->out) return ed_fail("export: no program or no output path");
    if (!p->jit || !p->arena) return ed_fail("export: the program must be compiled with the JIT backend");
    if (p->nupdates > 0)
        return ed_fail("export: the graph writes %d update(s) (a training step?); exporting a graph with updates is "
                       "not implemented",
                       p->nupdates);
    char name[128];
    if (prefix_of(o, name, sizeof name) != ED_OK || check_target(o) != ED_OK) return ED_ERR;
    int level = (int)p->opts.opt_level - ED_OPT_O0;
    LLVMTargetMachineRef tm = ed_llvm_target_machine(level, o->triple, o->target_cpu);
    if (!tm) return ED_ERR;
    exporter e = {.p = p, .name = name};
    e.offsets = malloc(((size_t)p->nnodes + 1) * sizeof *e.offsets);
    e.leaf = calloc((size_t)p->nnodes + 1, sizeof *e.leaf);
    int st = e.offsets && e.leaf ? ED_OK : ed_fail("export: out of memory");
    for (int i = 0; st == ED_OK && i < p->nnodes; i++)
        e.offsets[i] = p->owned[i] ? (int64_t)((char *)p->owned[i]->data - (char *)p->arena) : -1;
    LLVMContextRef ctx = LLVMContextCreate();
    ed_cg_init(&e.cg, ctx, name);
    e.cg.conv = p->opts.conv;
    if (st == ED_OK) st = build(&e, o, tm, level);
    LLVMDisposeBuilder(e.cg.b);
    LLVMDisposeModule(e.cg.mod);
    LLVMContextDispose(ctx);
    LLVMDisposeTargetMachine(tm);
    free(e.offsets);
    free(e.leaf);
    return st;
}
