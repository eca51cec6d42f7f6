/* The JIT engine: LLVM initialization, the host TargetMachine (one recipe for the
 * optimizer, the JIT and the assembly dump), one ORC LLJIT per program with the
 * runtime's symbols defined explicitly (so linker flags such as --as-needed cannot
 * hide them), default<On>, lookup, per-phase timing and teardown.
 * Ownership follows the LLVM C API: the TSM takes the module, the JIT takes the TSM,
 * the builder and the JTMB; we dispose the context handle, the TM and messages. */
#include "backend/llvm/jit.h"

#include "backend/arena.h"
#include "backend/llvm/conv_gemm.h"
#include "backend/llvm/lower.h"
#include "runtime/comm.h"
#include "runtime/error.h"
#include "runtime/philox.h"
#include "runtime/pool.h"

#include <cblas.h>
#include <llvm-c/Analysis.h>
#include <llvm-c/BitReader.h>
#include <llvm-c/BitWriter.h>
#include <llvm-c/Error.h>
#include <llvm-c/ExecutionEngine.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/OrcEE.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct ed_jit {
    LLVMOrcLLJITRef jit;
    ed_jit_entry entry;
    ed_jit_stats stats;
    int nobj; /* the objects the JIT runs, kept when they were emitted here */
    void *obj[ED_JIT_MAX_OBJECTS];
    size_t obj_len[ED_JIT_MAX_OBJECTS];
};

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static char *copy_text(const char *s, size_t n);

static void init_llvm(void)
{
    LLVMInitializeNativeTarget();
    LLVMInitializeNativeAsmPrinter();
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Consume an LLVMErrorRef into ed_last_error. */
static int fail_llvm(const char *what, LLVMErrorRef err)
{
    char *msg = LLVMGetErrorMessage(err);
    ed_fail("backend jit: %s: %s", what, msg);
    LLVMDisposeErrorMessage(msg);
    return ED_ERR;
}

/* The optimizer needs the host CPU and features, or nothing vectorizes past SSE.
 * level 0..3 picks the code generator's effort. */
static LLVMTargetMachineRef host_tm(int level) { return ed_llvm_target_machine(level, NULL, NULL); }

LLVMTargetMachineRef ed_llvm_target_machine(int level, const char *triple_in, const char *cpu_in)
{
    static const LLVMCodeGenOptLevel cg_level[4] = {LLVMCodeGenLevelNone, LLVMCodeGenLevelLess, LLVMCodeGenLevelDefault,
                                                    LLVMCodeGenLevelAggressive};
    pthread_once(&init_once, init_llvm);
    char *triple = triple_in ? NULL : LLVMGetDefaultTargetTriple();
    char *cpu = cpu_in ? NULL : LLVMGetHostCPUName(), *feat = cpu_in ? NULL : LLVMGetHostCPUFeatures();
    const char *tr = triple_in ? triple_in : triple;
    char *err = NULL;
    LLVMTargetRef target;
    LLVMTargetMachineRef tm = NULL;
    if (LLVMGetTargetFromTriple(tr, &target, &err)) {
        ed_fail("backend jit: no target for %s: %s", tr, err);
        LLVMDisposeMessage(err);
    } else {
        /* another CPU: its own default features (the host's may not exist there) */
        tm = LLVMCreateTargetMachine(target, tr, cpu_in ? cpu_in : cpu, cpu_in ? "" : feat, cg_level[level],
                                     LLVMRelocPIC, LLVMCodeModelSmall);
        if (!tm) ed_fail("backend jit: cannot create a target machine for %s", cpu_in ? cpu_in : cpu);
    }
    if (triple) LLVMDisposeMessage(triple);
    if (cpu) LLVMDisposeMessage(cpu);
    if (feat) LLVMDisposeMessage(feat);
    return tm;
}

void ed_cg_init(ed_cg *cg, LLVMContextRef ctx, const char *name)
{
    *cg = (ed_cg){.ctx = ctx};
    cg->mod = LLVMModuleCreateWithNameInContext(name, ctx);
    cg->b = LLVMCreateBuilderInContext(ctx);
    cg->i1 = LLVMInt1TypeInContext(ctx);
    cg->i32 = LLVMInt32TypeInContext(ctx);
    cg->i64 = LLVMInt64TypeInContext(ctx);
    cg->f32 = LLVMFloatTypeInContext(ctx);
    cg->f64 = LLVMDoubleTypeInContext(ctx);
    cg->ptr = LLVMPointerTypeInContext(ctx, 0);
    cg->vd = LLVMVoidTypeInContext(ctx);
}

/* Kernel functions defined in m (everything but ed_entry). */
static int count_kernels(LLVMModuleRef m)
{
    int n = 0;
    for (LLVMValueRef f = LLVMGetFirstFunction(m); f; f = LLVMGetNextFunction(f))
        if (!LLVMIsDeclaration(f) && strcmp(LLVMGetValueName2(f, &(size_t){0}), "ed_entry") != 0) n++;
    return n;
}

/* Lower g into cg->mod and verify it; times the work into st. */
int ed_llvm_lower_module(ed_cg *cg, const ed_graph *g, ed_node *const *order, const int64_t *offsets,
                         const char *triple, const char *layout, ed_jit_stats *st)
{
    double t0 = now_ms();
    LLVMSetTarget(cg->mod, triple);
    LLVMSetDataLayout(cg->mod, layout);
    if (ed_lower_program(cg, g, order, offsets) != ED_OK) return ED_ERR;
    char *msg = NULL;
    if (LLVMVerifyModule(cg->mod, LLVMReturnStatusAction, &msg)) {
        ed_fail("backend jit: internal error, invalid IR: %.900s", msg);
        LLVMDisposeMessage(msg);
        return ED_ERR;
    }
    LLVMDisposeMessage(msg);
    st->kernels = count_kernels(cg->mod);
    st->lower_ms = now_ms() - t0;
    return ED_OK;
}

/* default<O{level}> with tm, the host TM at the same level. */
int ed_llvm_optimize(LLVMModuleRef m, LLVMTargetMachineRef tm, int level, ed_jit_stats *st)
{
    double t0 = now_ms();
    char pipeline[16];
    snprintf(pipeline, sizeof pipeline, "default<O%d>", level);
    LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
    LLVMErrorRef err = LLVMRunPasses(m, pipeline, tm, po);
    LLVMDisposePassBuilderOptions(po);
    st->optimize_ms = now_ms() - t0;
    return err ? fail_llvm("optimizing", err) : ED_OK;
}

/* Everything JIT code calls, by address. */
static int define_symbols(LLVMOrcLLJITRef jit)
{
    struct {
        const char *name;
        void *addr;
    } syms[] = {
        {"exp", (void *)(double (*)(double))exp},
        {"log", (void *)(double (*)(double))log},
        {"log1p", (void *)(double (*)(double))log1p},
        {"tanh", (void *)(double (*)(double))tanh},
        {"erf", (void *)(double (*)(double))erf},
        {"sin", (void *)(double (*)(double))sin},
        {"cos", (void *)(double (*)(double))cos},
        {"pow", (void *)(double (*)(double, double))pow},
        {"sqrt", (void *)(double (*)(double))sqrt},
        {"memset", (void *)memset},
        {"memcpy", (void *)memcpy},
        {"cblas_sgemm", (void *)cblas_sgemm},
        {"cblas_dgemm", (void *)cblas_dgemm},
        {"ed_conv2d_gemm_f32", (void *)ed_conv2d_gemm_f32},
        {"ed_conv_transpose2d_gemm_f32", (void *)ed_conv_transpose2d_gemm_f32},
        {"ed_conv2d_weight_grad_gemm_f32", (void *)ed_conv2d_weight_grad_gemm_f32},
        {"ed_to_i32", (void *)ed_to_i32},
        {"ed_rng_uniform", (void *)ed_rng_uniform},
        {"ed_rng_normal", (void *)ed_rng_normal},
        {"ed_rng_randint", (void *)ed_rng_randint},
        {"ed_rng_bernoulli", (void *)ed_rng_bernoulli},
        {"ed_rng_pool", (void *)ed_rng_pool},
        {"ed_rng_loop_seed", (void *)ed_rng_loop_seed},
        {"ed_scalar_eval3", (void *)ed_scalar_eval3},
        {"ed_comm_allreduce", (void *)ed_comm_allreduce},
        {"ed_pool_run", (void *)ed_pool_run},
        {"ed_pool_threads", (void *)ed_pool_threads},
    };
    enum { N = sizeof syms / sizeof syms[0] };
    LLVMOrcCSymbolMapPair pairs[N];
    LLVMJITSymbolFlags flags = {LLVMJITSymbolGenericFlagsExported | LLVMJITSymbolGenericFlagsCallable, 0};
    for (int i = 0; i < N; i++) {
        pairs[i].Name = LLVMOrcLLJITMangleAndIntern(jit, syms[i].name);
        pairs[i].Sym = (LLVMJITEvaluatedSymbol){(LLVMOrcExecutorAddress)(uintptr_t)syms[i].addr, flags};
    }
    LLVMOrcMaterializationUnitRef mu = LLVMOrcAbsoluteSymbols(pairs, N);
    LLVMErrorRef err = LLVMOrcJITDylibDefine(LLVMOrcLLJITGetMainJITDylib(jit), mu);
    if (err) {
        LLVMOrcDisposeMaterializationUnit(mu);
        return fail_llvm("defining runtime symbols", err);
    }
    return ED_OK;
}

/* EDIFICE_PERF=1: objects are linked by RuntimeDyld with LLVM's perf listener, which
 * writes a jitdump file ($JITDUMPDIR or ~/.debug/jit) that `perf inject --jit` turns
 * into kernel names in a profile (bench/README.md, "Profiling JIT code"). */
static LLVMOrcObjectLayerRef perf_layer(void *ctx, LLVMOrcExecutionSessionRef es, const char *triple)
{
    (void)ctx, (void)triple;
    LLVMOrcObjectLayerRef layer = LLVMOrcCreateRTDyldObjectLinkingLayerWithSectionMemoryManager(es);
    LLVMJITEventListenerRef perf = LLVMCreatePerfJITEventListener(); /* LLVM's, never freed */
    if (perf) LLVMOrcRTDyldObjectLinkingLayerRegisterJITEventListener(layer, perf);
    return layer;
}

static bool perf_wanted(void)
{
    const char *v = getenv("EDIFICE_PERF");
    return v && *v && strcmp(v, "0");
}

/* The JIT's target machine is built from host_tm(level), so the JIT generates code
 * for exactly what the optimizer tuned for and the assembly dump shows. */
static LLVMOrcLLJITRef new_lljit(int level)
{
    LLVMTargetMachineRef tm = host_tm(level);
    if (!tm) return NULL;
    LLVMOrcJITTargetMachineBuilderRef jtmb = LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(tm); /* takes tm */
    LLVMOrcLLJITBuilderRef builder = LLVMOrcCreateLLJITBuilder();
    LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(builder, jtmb); /* takes jtmb */
    if (perf_wanted()) LLVMOrcLLJITBuilderSetObjectLinkingLayerCreator(builder, perf_layer, NULL);
    LLVMOrcLLJITRef jit;
    LLVMErrorRef err;
    if ((err = LLVMOrcCreateLLJIT(&jit, builder))) { /* takes the builder */
        fail_llvm("creating the LLJIT", err);
        return NULL;
    }
    if (define_symbols(jit) != ED_OK) {
        LLVMErrorRef e2 = LLVMOrcDisposeLLJIT(jit);
        if (e2) LLVMConsumeError(e2);
        return NULL;
    }
    return jit;
}

void ed_jit_free(ed_jit *j)
{
    if (!j) return;
    if (j->jit) {
        LLVMErrorRef err = LLVMOrcDisposeLLJIT(j->jit);
        if (err) LLVMConsumeError(err);
    }
    for (int i = 0; i < j->nobj; i++) free(j->obj[i]);
    free(j);
}

/* The object code of the optimized module m, as the LLJIT would generate it (the same
 * host TargetMachine at level). NULL with ed_last_error(). */
static LLVMMemoryBufferRef emit_object(LLVMModuleRef m, int level)
{
    LLVMTargetMachineRef tm = host_tm(level);
    if (!tm) return NULL;
    char *msg = NULL;
    LLVMMemoryBufferRef buf = NULL;
    if (LLVMTargetMachineEmitToMemoryBuffer(tm, m, LLVMObjectFile, &msg, &buf)) {
        ed_fail("backend jit: emitting the object: %s", msg ? msg : "unknown error");
        LLVMDisposeMessage(msg);
        buf = NULL;
    }
    LLVMDisposeTargetMachine(tm);
    return buf;
}

/* Hand a copy of the object bytes to the JIT. */
static int add_object(ed_jit *j, const void *obj, size_t len)
{
    LLVMMemoryBufferRef buf = LLVMCreateMemoryBufferWithMemoryRangeCopy(obj, len, "ed_object");
    LLVMErrorRef err = LLVMOrcLLJITAddObjectFile(j->jit, LLVMOrcLLJITGetMainJITDylib(j->jit), buf); /* takes buf */
    return err ? fail_llvm("adding the object", err) : ED_OK;
}

/* Keep the object's bytes in j (for the cache) and add them to the JIT. */
static int keep_and_add(ed_jit *j, LLVMMemoryBufferRef buf)
{
    size_t len = LLVMGetBufferSize(buf);
    void *copy = j->nobj < ED_JIT_MAX_OBJECTS ? malloc(len ? len : 1) : NULL;
    if (!copy) {
        LLVMDisposeMemoryBuffer(buf);
        return ed_fail("backend jit: out of memory");
    }
    memcpy(copy, LLVMGetBufferStart(buf), len);
    LLVMDisposeMemoryBuffer(buf);
    j->obj[j->nobj] = copy;
    j->obj_len[j->nobj++] = len;
    return add_object(j, copy, len);
}

/* ---- one module on the calling thread --------------------------------------------- */

/* Optimize mod, then either hand it to the LLJIT as IR (codegen at the lookup) or, with
 * emit, generate its object here and add that: the bytes ed_jit_objects hands to the
 * cache are the bytes that run. Takes mod and tsctx. */
static int compile_module(ed_jit *j, LLVMModuleRef mod, LLVMOrcThreadSafeContextRef tsctx, int level, bool emit)
{
    LLVMTargetMachineRef tm = host_tm(level);
    int st = tm ? ed_llvm_optimize(mod, tm, level, &j->stats) : ED_ERR;
    if (tm) LLVMDisposeTargetMachine(tm);
    double t0 = now_ms();
    if (st == ED_OK && emit) {
        LLVMMemoryBufferRef obj = emit_object(mod, level);
        LLVMDisposeModule(mod);
        LLVMOrcDisposeThreadSafeContext(tsctx);
        st = obj ? keep_and_add(j, obj) : ED_ERR;
    } else if (st == ED_OK) {
        LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(mod, tsctx); /* takes mod */
        LLVMOrcDisposeThreadSafeContext(tsctx);                                        /* the TSM keeps it alive */
        LLVMErrorRef err = LLVMOrcLLJITAddLLVMIRModule(j->jit, LLVMOrcLLJITGetMainJITDylib(j->jit), tsm);
        if (err) {
            LLVMOrcDisposeThreadSafeModule(tsm);
            st = fail_llvm("adding the module", err);
        }
    } else {
        LLVMDisposeModule(mod);
        LLVMOrcDisposeThreadSafeContext(tsctx);
    }
    j->stats.codegen_ms += now_ms() - t0;
    return st;
}

/* ---- several modules on several threads ------------------------------------------- */

/* One part of a split program: which functions it defines, and what became of it. */
typedef struct {
    LLVMMemoryBufferRef bitcode; /* the whole lowered program, shared read-only */
    int level, part;
    int nfn;
    char *const *names;      /* the module's functions, in order */
    const int *owner;        /* by function index: the part that defines it */
    LLVMMemoryBufferRef obj; /* out */
    double optimize_ms, codegen_ms;
    char error[ED_ERROR_MAX];
} split_part;

/* f (defined in m) becomes a declaration of the same name and type. */
static void drop_body(LLVMModuleRef m, LLVMValueRef f)
{
    size_t len;
    const char *name = LLVMGetValueName2(f, &len);
    char *keep = copy_text(name, len);
    LLVMValueRef decl = LLVMAddFunction(m, "", LLVMGlobalGetValueType(f));
    LLVMReplaceAllUsesWith(f, decl);
    LLVMDeleteFunction(f);
    if (keep) LLVMSetValueName2(decl, keep, len);
    free(keep);
}

/* In a private context: parse the program, keep only this part's functions and mutable
 * globals (part 0 defines those), optimize, emit. */
static void *compile_part(void *arg)
{
    split_part *sp = arg;
    LLVMContextRef ctx = LLVMContextCreate();
    LLVMModuleRef m = NULL;
    LLVMTargetMachineRef tm = NULL;
    if (LLVMParseBitcodeInContext2(ctx, sp->bitcode, &m)) {
        snprintf(sp->error, sizeof sp->error, "backend jit: internal error, the split module does not read back");
        goto done;
    }
    int i = 0;
    for (LLVMValueRef f = LLVMGetFirstFunction(m), next; f; f = next, i++) {
        next = LLVMGetNextFunction(f);
        if (LLVMIsDeclaration(f)) continue;
        const char *name = LLVMGetValueName2(f, &(size_t){0});
        int k = i < sp->nfn && strcmp(sp->names[i], name) == 0 ? i : 0;
        while (k < sp->nfn && strcmp(sp->names[k], name) != 0) k++; /* the order did not survive: search */
        if (k == sp->nfn) {
            snprintf(sp->error, sizeof sp->error, "backend jit: internal error, function %s lost in the split", name);
            goto done;
        }
        if (sp->owner[k] != sp->part) drop_body(m, f);
    }
    for (LLVMValueRef g = LLVMGetFirstGlobal(m); g; g = LLVMGetNextGlobal(g))
        if (sp->part != 0 && !LLVMIsDeclaration(g) && !LLVMIsGlobalConstant(g)) LLVMSetInitializer(g, NULL);
    ed_jit_stats st = {0};
    double t0 = now_ms();
    if (!(tm = host_tm(sp->level)) || ed_llvm_optimize(m, tm, sp->level, &st) != ED_OK) {
        snprintf(sp->error, sizeof sp->error, "%s", ed_last_error());
        goto done;
    }
    sp->optimize_ms = now_ms() - t0;
    t0 = now_ms();
    if (!(sp->obj = emit_object(m, sp->level))) snprintf(sp->error, sizeof sp->error, "%s", ed_last_error());
    sp->codegen_ms = now_ms() - t0;
done:
    if (tm) LLVMDisposeTargetMachine(tm);
    if (m) LLVMDisposeModule(m);
    LLVMContextDispose(ctx);
    return NULL;
}

/* Instructions in f: the weight that balances the parts. */
static int64_t fn_size(LLVMValueRef f)
{
    int64_t n = 0;
    for (LLVMBasicBlockRef bb = LLVMGetFirstBasicBlock(f); bb; bb = LLVMGetNextBasicBlock(bb))
        for (LLVMValueRef in = LLVMGetFirstInstruction(bb); in; in = LLVMGetNextInstruction(in)) n++;
    return n;
}

/* Split mod into nparts modules (the entry and the mutable globals in part 0; kernels,
 * largest first, to the lightest part), optimize and emit them on nparts threads, and
 * add their objects. Kernels become external so the parts link to each other. Takes mod
 * and tsctx. */
static int compile_split(ed_jit *j, LLVMModuleRef mod, LLVMOrcThreadSafeContextRef tsctx, int level, int nparts)
{
    int nfn = 0;
    for (LLVMValueRef f = LLVMGetFirstFunction(mod); f; f = LLVMGetNextFunction(f)) nfn++;
    int *owner = calloc((size_t)nfn + 1, sizeof *owner), *by_size = calloc((size_t)nfn + 1, sizeof *by_size);
    char **names = calloc((size_t)nfn + 1, sizeof *names);
    int64_t *size = calloc((size_t)nfn + 1, sizeof *size), load[ED_JIT_MAX_OBJECTS] = {0};
    split_part parts[ED_JIT_MAX_OBJECTS];
    pthread_t tid[ED_JIT_MAX_OBJECTS];
    bool started[ED_JIT_MAX_OBJECTS] = {0};
    int st = ED_OK;
    double t0 = now_ms();
    if (!owner || !by_size || !size || !names) st = ed_fail("backend jit: out of memory");
    int i = 0;
    for (LLVMValueRef f = LLVMGetFirstFunction(mod); st == ED_OK && f; f = LLVMGetNextFunction(f), i++) {
        by_size[i] = i;
        size_t len;
        const char *name = LLVMGetValueName2(f, &len);
        if (!(names[i] = copy_text(name, len))) st = ED_ERR;
        if (LLVMIsDeclaration(f)) continue;
        size[i] = fn_size(f);
        if (strcmp(LLVMGetValueName2(f, &(size_t){0}), "ed_entry") == 0) load[0] += size[i], size[i] = -1;
        else LLVMSetLinkage(f, LLVMExternalLinkage);
    }
    for (LLVMValueRef g = LLVMGetFirstGlobal(mod); st == ED_OK && g; g = LLVMGetNextGlobal(g))
        if (!LLVMIsDeclaration(g) && !LLVMIsGlobalConstant(g)) LLVMSetLinkage(g, LLVMExternalLinkage);
    /* largest first onto the lightest part; the entry (size -1) stays in part 0 */
    for (int a = 1; a < nfn; a++)
        for (int b = a; b > 0 && size[by_size[b]] > size[by_size[b - 1]]; b--) {
            int t = by_size[b];
            by_size[b] = by_size[b - 1];
            by_size[b - 1] = t;
        }
    for (int k = 0; k < nfn; k++) {
        int f = by_size[k], best = 0;
        if (size[f] <= 0) continue;
        for (int p = 1; p < nparts; p++)
            if (load[p] < load[best]) best = p;
        owner[f] = best;
        load[best] += size[f];
    }
    LLVMMemoryBufferRef bc = st == ED_OK ? LLVMWriteBitcodeToMemoryBuffer(mod) : NULL;
    LLVMDisposeModule(mod);
    LLVMOrcDisposeThreadSafeContext(tsctx);
    if (st == ED_OK && !bc) st = ed_fail("backend jit: out of memory");
    j->stats.codegen_ms += now_ms() - t0; /* the split itself */
    t0 = now_ms();
    for (int p = 0; st == ED_OK && p < nparts; p++) {
        parts[p] = (split_part){.bitcode = bc, .level = level, .part = p, .nfn = nfn, .names = names, .owner = owner};
        if (p > 0) started[p] = pthread_create(&tid[p], NULL, compile_part, &parts[p]) == 0;
    }
    if (st == ED_OK) {
        for (int p = 1; p < nparts; p++)
            if (!started[p]) compile_part(&parts[p]); /* no thread: do it here */
        compile_part(&parts[0]);
    }
    double opt_max = 0;
    for (int p = 1; p < nparts; p++)
        if (started[p]) pthread_join(tid[p], NULL);
    for (int p = 0; st == ED_OK && p < nparts; p++) {
        if (parts[p].optimize_ms > opt_max) opt_max = parts[p].optimize_ms;
        if (parts[p].error[0]) st = ed_fail("%s", parts[p].error);
    }
    /* wall clock: the slowest part's optimizer, and the rest of the parallel time as codegen */
    j->stats.optimize_ms = opt_max;
    j->stats.codegen_ms += now_ms() - t0 - opt_max;
    for (int p = 0; st == ED_OK && p < nparts; p++) {
        st = keep_and_add(j, parts[p].obj);
        parts[p].obj = NULL;
    }
    for (int p = 0; p < nparts && bc; p++)
        if (parts[p].obj) LLVMDisposeMemoryBuffer(parts[p].obj);
    if (bc) LLVMDisposeMemoryBuffer(bc);
    for (int k = 0; names && k < nfn; k++) free(names[k]);
    free(names);
    free(owner);
    free(by_size);
    free(size);
    return st;
}

/* The entry's address (the lookup compiles or links what was added). */
static int find_entry(ed_jit *j)
{
    double t0 = now_ms();
    LLVMOrcExecutorAddress addr = 0;
    LLVMErrorRef err;
    if ((err = LLVMOrcLLJITLookup(j->jit, &addr, "ed_entry"))) return fail_llvm("code generation", err);
    j->entry = (ed_jit_entry)(uintptr_t)addr;
    j->stats.codegen_ms += now_ms() - t0;
    return ED_OK;
}

/* A new ed_jit with its LLJIT, or NULL. */
static ed_jit *new_jit(int level)
{
    pthread_once(&init_once, init_llvm);
    if (level < 0 || level > 3) {
        ed_fail("backend jit: opt level %d is outside 0..3", level);
        return NULL;
    }
    ed_jit *j = calloc(1, sizeof *j);
    if (!j) {
        ed_fail("backend jit: out of memory");
        return NULL;
    }
    double t0 = now_ms();
    if (!(j->jit = new_lljit(level))) {
        ed_jit_free(j);
        return NULL;
    }
    j->stats.codegen_ms = now_ms() - t0;
    return j;
}

int ed_jit_default_threads(void)
{
    const char *v = getenv("EDIFICE_COMPILE_THREADS");
    char *end;
    long n = v && *v ? strtol(v, &end, 10) : 0;
    if (v && *v && !*end && n >= 1) return n > ED_JIT_MAX_OBJECTS ? ED_JIT_MAX_OBJECTS : (int)n;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    return cpus < 1 ? 1 : cpus > 8 ? 8 : (int)cpus;
}

ed_jit *ed_jit_compile(const ed_graph *g, ed_node *const *order, const int64_t *offsets, int level,
                       ed_numerics_fault *numerics, ed_conv_lowering conv, int threads, bool keep_objects)
{
    ed_jit *j = new_jit(level);
    if (!j) return NULL;
    LLVMOrcThreadSafeContextRef tsctx = LLVMOrcCreateNewThreadSafeContext();
    ed_cg cg;
    ed_cg_init(&cg, LLVMOrcThreadSafeContextGetContext(tsctx), g->name);
    cg.numerics = numerics;
    cg.conv = conv;
    int st = ed_llvm_lower_module(&cg, g, order, offsets, LLVMOrcLLJITGetTripleString(j->jit),
                                  LLVMOrcLLJITGetDataLayoutStr(j->jit), &j->stats);
    LLVMDisposeBuilder(cg.b);
    /* no more parts than kernels (+ the entry's part) */
    int nparts = threads < 1 ? 1 : threads > ED_JIT_MAX_OBJECTS ? ED_JIT_MAX_OBJECTS : threads;
    if (nparts > j->stats.kernels) nparts = j->stats.kernels > 1 ? j->stats.kernels : 1;
    j->stats.parts = nparts;
    if (st != ED_OK) {
        LLVMDisposeModule(cg.mod);
        LLVMOrcDisposeThreadSafeContext(tsctx);
    } else if (nparts > 1) st = compile_split(j, cg.mod, tsctx, level, nparts);
    else st = compile_module(j, cg.mod, tsctx, level, keep_objects);
    if (st != ED_OK || find_entry(j) != ED_OK) {
        ed_jit_free(j);
        return NULL;
    }
    return j;
}

ed_jit *ed_jit_load(const void *const *obj, const size_t *len, int n, int level)
{
    ed_jit *j = new_jit(level);
    if (!j) return NULL;
    double t0 = now_ms();
    j->stats.cache = ED_JIT_CACHE_HIT;
    j->stats.parts = n;
    int st = ED_OK;
    for (int i = 0; i < n && st == ED_OK; i++) st = add_object(j, obj[i], len[i]);
    j->stats.codegen_ms += now_ms() - t0;
    if (st != ED_OK || find_entry(j) != ED_OK) {
        ed_jit_free(j);
        return NULL;
    }
    return j;
}

int ed_jit_objects(const ed_jit *j, const void *const **obj, const size_t **len)
{
    if (!j || !j->nobj) return 0;
    *obj = (const void *const *)j->obj;
    *len = j->obj_len;
    return j->nobj;
}

void ed_jit_set_cache(ed_jit *j, ed_jit_cache c)
{
    if (j) j->stats.cache = c;
}

ed_jit_entry ed_jit_entry_fn(const ed_jit *j) { return j ? j->entry : NULL; }

ed_jit_stats ed_jit_get_stats(const ed_jit *j) { return j ? j->stats : (ed_jit_stats){0}; }

double ed_jit_compile_ms(const ed_jit *j)
{
    return j ? j->stats.lower_ms + j->stats.optimize_ms + j->stats.codegen_ms : 0;
}

/* NUL-terminated malloc copy of n bytes. */
static char *copy_text(const char *s, size_t n)
{
    char *t = malloc(n + 1);
    if (!t) {
        ed_fail("backend jit: out of memory");
        return NULL;
    }
    memcpy(t, s, n);
    t[n] = '\0';
    return t;
}

/* The optimized module as IR text or host assembly. */
static char *module_text(LLVMModuleRef m, LLVMTargetMachineRef tm, ed_jit_dump_kind kind)
{
    if (kind == ED_JIT_DUMP_IR) {
        char *s = LLVMPrintModuleToString(m);
        char *t = copy_text(s, strlen(s));
        LLVMDisposeMessage(s);
        return t;
    }
    char *msg = NULL;
    LLVMMemoryBufferRef buf = NULL;
    if (LLVMTargetMachineEmitToMemoryBuffer(tm, m, LLVMAssemblyFile, &msg, &buf)) {
        ed_fail("backend jit: emitting assembly: %s", msg ? msg : "unknown error");
        LLVMDisposeMessage(msg);
        return NULL;
    }
    char *t = copy_text(LLVMGetBufferStart(buf), LLVMGetBufferSize(buf));
    LLVMDisposeMemoryBuffer(buf);
    return t;
}

/* Lower and optimize g at level in a private context, then print the module. */
static char *dump_graph(const ed_graph *g, ed_node *const *order, const int64_t *offsets, int level,
                        ed_jit_dump_kind kind)
{
    LLVMTargetMachineRef tm = host_tm(level);
    if (!tm) return NULL;
    /* The same triple and layout the LLJIT would use: the host TM's. */
    char *triple = LLVMGetTargetMachineTriple(tm);
    LLVMTargetDataRef td = LLVMCreateTargetDataLayout(tm);
    char *layout = LLVMCopyStringRepOfTargetData(td);
    LLVMContextRef ctx = LLVMContextCreate();
    ed_cg cg;
    ed_cg_init(&cg, ctx, g->name);
    ed_jit_stats st;
    char *text = NULL;
    if (ed_llvm_lower_module(&cg, g, order, offsets, triple, layout, &st) == ED_OK &&
        ed_llvm_optimize(cg.mod, tm, level, &st) == ED_OK)
        text = module_text(cg.mod, tm, kind);
    LLVMDisposeBuilder(cg.b);
    LLVMDisposeModule(cg.mod);
    LLVMContextDispose(ctx);
    LLVMDisposeMessage(layout);
    LLVMDisposeTargetData(td);
    LLVMDisposeMessage(triple);
    LLVMDisposeTargetMachine(tm);
    return text;
}

char *ed_jit_dump(const ed_graph *g, int level, ed_jit_dump_kind kind)
{
    pthread_once(&init_once, init_llvm);
    if (!g) {
        ed_fail("backend jit: no graph (NULL)");
        return NULL;
    }
    if (ed_graph_error(g)) {
        ed_fail("backend jit: graph @%s has an error: %s", g->name, ed_graph_error(g));
        return NULL;
    }
    if (level < 0 || level > 3) {
        ed_fail("backend jit: opt level %d is outside 0..3", level);
        return NULL;
    }
    ed_node **order = ed_graph_topo(g);
    int64_t *offsets = malloc(((size_t)g->nnodes + 1) * sizeof *offsets);
    char *text = NULL;
    if (!order || !offsets) ed_fail("backend jit: out of memory");
    else if (ed_arena_plan(g, order, offsets) >= 0) text = dump_graph(g, order, offsets, level, kind);
    free(offsets);
    free(order);
    return text;
}

char *ed_jit_dump_ir(const ed_graph *g) { return ed_jit_dump(g, 2, ED_JIT_DUMP_IR); }
