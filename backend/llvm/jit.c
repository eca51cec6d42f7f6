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
#include "backend/llvm/obj_cache.h"
#include "runtime/comm.h"
#include "runtime/error.h"
#include "runtime/philox.h"

#include <cblas.h>
#include <llvm-c/Analysis.h>
#include <llvm-c/BitWriter.h>
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct ed_jit {
    LLVMOrcLLJITRef jit;
    ed_jit_entry entry;
    ed_jit_stats stats;
};

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

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
        {"ed_rng_loop_seed", (void *)ed_rng_loop_seed},
        {"ed_scalar_eval3", (void *)ed_scalar_eval3},
        {"ed_comm_allreduce", (void *)ed_comm_allreduce},
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

/* The JIT's target machine is built from host_tm(level), so the JIT generates code
 * for exactly what the optimizer tuned for and the assembly dump shows. */
static LLVMOrcLLJITRef new_lljit(int level)
{
    LLVMTargetMachineRef tm = host_tm(level);
    if (!tm) return NULL;
    LLVMOrcJITTargetMachineBuilderRef jtmb = LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(tm); /* takes tm */
    LLVMOrcLLJITBuilderRef builder = LLVMOrcCreateLLJITBuilder();
    LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(builder, jtmb); /* takes jtmb */
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

/* The cache key of the lowered module m: its bitcode is what the program compiles from. */
static char *module_key(LLVMModuleRef m, int level)
{
    LLVMMemoryBufferRef bc = LLVMWriteBitcodeToMemoryBuffer(m);
    char *key = bc ? ed_obj_cache_key(LLVMGetBufferStart(bc), LLVMGetBufferSize(bc), level) : NULL;
    if (bc) LLVMDisposeMemoryBuffer(bc);
    if (!key) ed_fail("backend jit: out of memory");
    return key;
}

/* Hand the object in buf (taken) to the JIT. */
static int add_object(ed_jit *j, LLVMMemoryBufferRef buf)
{
    LLVMErrorRef err = LLVMOrcLLJITAddObjectFile(j->jit, LLVMOrcLLJITGetMainJITDylib(j->jit), buf);
    return err ? fail_llvm("adding the object", err) : ED_OK;
}

/* Optimize mod, then either hand it to the LLJIT as IR (no cache) or emit its object,
 * store it under key and add that: a cold and a warm run load the same bytes. Takes mod
 * and tsctx. */
static int compile_module(ed_jit *j, LLVMModuleRef mod, LLVMOrcThreadSafeContextRef tsctx, int level, const char *dir,
                          const char *key)
{
    LLVMTargetMachineRef tm = host_tm(level);
    int st = tm ? ed_llvm_optimize(mod, tm, level, &j->stats) : ED_ERR;
    if (tm) LLVMDisposeTargetMachine(tm);
    double t0 = now_ms();
    if (st == ED_OK && key) {
        LLVMMemoryBufferRef obj = emit_object(mod, level);
        LLVMDisposeModule(mod);
        LLVMOrcDisposeThreadSafeContext(tsctx);
        if (!obj) return ED_ERR;
        j->stats.cache = ed_obj_cache_store(dir, key, LLVMGetBufferStart(obj), LLVMGetBufferSize(obj),
                                            ed_obj_cache_max_bytes()) == ED_OK
                             ? ED_JIT_CACHE_STORED
                             : ED_JIT_CACHE_NOT_STORED;
        st = add_object(j, obj);
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

ed_jit *ed_jit_compile(const ed_graph *g, ed_node *const *order, const int64_t *offsets, int level,
                       ed_numerics_fault *numerics, ed_conv_lowering conv, bool cache)
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
    if (!(j->jit = new_lljit(level))) goto fail;
    j->stats.codegen_ms = now_ms() - t0;

    LLVMOrcThreadSafeContextRef tsctx = LLVMOrcCreateNewThreadSafeContext();
    ed_cg cg;
    ed_cg_init(&cg, LLVMOrcThreadSafeContextGetContext(tsctx), g->name);
    cg.numerics = numerics;
    cg.conv = conv;
    int st = ed_llvm_lower_module(&cg, g, order, offsets, LLVMOrcLLJITGetTripleString(j->jit),
                                  LLVMOrcLLJITGetDataLayoutStr(j->jit), &j->stats);
    LLVMDisposeBuilder(cg.b);
    /* Numerics checks bake this process's addresses into the code: never cached. */
    char *dir = st == ED_OK && cache && !numerics && !ed_obj_cache_env_off() ? ed_obj_cache_dir() : NULL;
    char *key = NULL;
    if (dir && !(key = module_key(cg.mod, level))) st = ED_ERR;
    void *obj = NULL;
    size_t obj_len = 0;
    t0 = now_ms();
    if (key && ed_obj_cache_load(dir, key, &obj, &obj_len)) {
        LLVMDisposeModule(cg.mod);
        LLVMOrcDisposeThreadSafeContext(tsctx);
        j->stats.cache = ED_JIT_CACHE_HIT;
        st = add_object(j, LLVMCreateMemoryBufferWithMemoryRangeCopy(obj, obj_len, "ed_cached_object"));
        free(obj);
        j->stats.codegen_ms += now_ms() - t0;
    } else if (st == ED_OK) {
        st = compile_module(j, cg.mod, tsctx, level, dir, key);
    } else {
        LLVMDisposeModule(cg.mod);
        LLVMOrcDisposeThreadSafeContext(tsctx);
    }
    free(dir);
    free(key);
    if (st != ED_OK) goto fail;
    t0 = now_ms();
    LLVMOrcExecutorAddress addr = 0;
    LLVMErrorRef err;
    if ((err = LLVMOrcLLJITLookup(j->jit, &addr, "ed_entry"))) { /* compiles or links the module */
        fail_llvm("code generation", err);
        goto fail;
    }
    j->entry = (ed_jit_entry)(uintptr_t)addr;
    j->stats.codegen_ms += now_ms() - t0;
    return j;
fail:
    ed_jit_free(j);
    return NULL;
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
