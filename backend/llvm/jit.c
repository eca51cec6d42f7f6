/* The JIT engine: LLVM initialization, the host TargetMachine for the optimizer,
 * one ORC LLJIT per program with the runtime's symbols defined explicitly (so linker
 * flags such as --as-needed cannot hide them), default<O2>, lookup and teardown.
 * Ownership follows the LLVM C API: the TSM takes the module, the JIT takes the TSM,
 * the builder and the JTMB; we dispose the context handle, the TM and messages. */
#include "backend/llvm/jit.h"

#include "backend/llvm/lower.h"
#include "runtime/error.h"
#include "runtime/philox.h"

#include <cblas.h>
#include <llvm-c/Analysis.h>
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct ed_jit {
    LLVMOrcLLJITRef jit;
    ed_jit_entry entry;
    double ms;
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

/* The optimizer needs the host CPU and features, or nothing vectorizes past SSE. */
static LLVMTargetMachineRef host_tm(void)
{
    char *triple = LLVMGetDefaultTargetTriple(), *cpu = LLVMGetHostCPUName(), *feat = LLVMGetHostCPUFeatures();
    char *err = NULL;
    LLVMTargetRef target;
    LLVMTargetMachineRef tm = NULL;
    if (LLVMGetTargetFromTriple(triple, &target, &err)) {
        ed_fail("backend jit: no target for %s: %s", triple, err);
        LLVMDisposeMessage(err);
    } else {
        tm = LLVMCreateTargetMachine(target, triple, cpu, feat, LLVMCodeGenLevelAggressive, LLVMRelocPIC,
                                     LLVMCodeModelSmall);
        if (!tm) ed_fail("backend jit: cannot create a target machine for %s", cpu);
    }
    LLVMDisposeMessage(triple);
    LLVMDisposeMessage(cpu);
    LLVMDisposeMessage(feat);
    return tm;
}

static void cg_init(ed_cg *cg, LLVMContextRef ctx, const char *name)
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

/* Lower g into cg->mod, verify it and run default<O2> with the host TM. */
static int build_and_optimize(ed_cg *cg, const ed_graph *g, ed_node *const *order, const char *triple,
                              const char *layout)
{
    LLVMSetTarget(cg->mod, triple);
    LLVMSetDataLayout(cg->mod, layout);
    if (ed_lower_program(cg, g, order) != ED_OK) return ED_ERR;
    char *msg = NULL;
    if (LLVMVerifyModule(cg->mod, LLVMReturnStatusAction, &msg)) {
        ed_fail("backend jit: internal error, invalid IR: %.900s", msg);
        LLVMDisposeMessage(msg);
        return ED_ERR;
    }
    LLVMDisposeMessage(msg);
    LLVMTargetMachineRef tm = host_tm();
    if (!tm) return ED_ERR;
    LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
    LLVMErrorRef err = LLVMRunPasses(cg->mod, "default<O2>", tm, po);
    LLVMDisposePassBuilderOptions(po);
    LLVMDisposeTargetMachine(tm);
    return err ? fail_llvm("optimizing", err) : ED_OK;
}

/* Everything JIT code calls, by address. */
static int define_symbols(LLVMOrcLLJITRef jit)
{
    struct {
        const char *name;
        void *addr;
    } syms[] = {
        {"exp", (void *)(double (*)(double))exp},     {"log", (void *)(double (*)(double))log},
        {"log1p", (void *)(double (*)(double))log1p}, {"tanh", (void *)(double (*)(double))tanh},
        {"erf", (void *)(double (*)(double))erf},     {"sin", (void *)(double (*)(double))sin},
        {"cos", (void *)(double (*)(double))cos},     {"pow", (void *)(double (*)(double, double))pow},
        {"sqrt", (void *)(double (*)(double))sqrt},   {"memset", (void *)memset},
        {"memcpy", (void *)memcpy},                   {"cblas_sgemm", (void *)cblas_sgemm},
        {"cblas_dgemm", (void *)cblas_dgemm},         {"ed_to_i32", (void *)ed_to_i32},
        {"ed_rng_uniform", (void *)ed_rng_uniform},   {"ed_rng_normal", (void *)ed_rng_normal},
        {"ed_rng_randint", (void *)ed_rng_randint},   {"ed_rng_bernoulli", (void *)ed_rng_bernoulli},
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

static LLVMOrcLLJITRef new_lljit(void)
{
    LLVMOrcJITTargetMachineBuilderRef jtmb;
    LLVMErrorRef err = LLVMOrcJITTargetMachineBuilderDetectHost(&jtmb);
    if (err) {
        fail_llvm("detecting the host", err);
        return NULL;
    }
    LLVMOrcLLJITBuilderRef builder = LLVMOrcCreateLLJITBuilder();
    LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(builder, jtmb); /* takes jtmb */
    LLVMOrcLLJITRef jit;
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

ed_jit *ed_jit_compile(const ed_graph *g, ed_node *const *order)
{
    pthread_once(&init_once, init_llvm);
    double t0 = now_ms();
    ed_jit *j = calloc(1, sizeof *j);
    if (!j) {
        ed_fail("backend jit: out of memory");
        return NULL;
    }
    if (!(j->jit = new_lljit())) goto fail;

    LLVMOrcThreadSafeContextRef tsctx = LLVMOrcCreateNewThreadSafeContext();
    ed_cg cg;
    cg_init(&cg, LLVMOrcThreadSafeContextGetContext(tsctx), g->name);
    int st = build_and_optimize(&cg, g, order, LLVMOrcLLJITGetTripleString(j->jit),
                                LLVMOrcLLJITGetDataLayoutStr(j->jit));
    LLVMDisposeBuilder(cg.b);
    if (st != ED_OK) {
        LLVMDisposeModule(cg.mod);
        LLVMOrcDisposeThreadSafeContext(tsctx);
        goto fail;
    }
    LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(cg.mod, tsctx); /* takes mod */
    LLVMOrcDisposeThreadSafeContext(tsctx); /* the TSM keeps it alive */
    LLVMErrorRef err = LLVMOrcLLJITAddLLVMIRModule(j->jit, LLVMOrcLLJITGetMainJITDylib(j->jit), tsm);
    if (err) {
        LLVMOrcDisposeThreadSafeModule(tsm);
        fail_llvm("adding the module", err);
        goto fail;
    }
    LLVMOrcExecutorAddress addr = 0;
    if ((err = LLVMOrcLLJITLookup(j->jit, &addr, "ed_entry"))) { /* compiles the module */
        fail_llvm("code generation", err);
        goto fail;
    }
    j->entry = (ed_jit_entry)(uintptr_t)addr;
    j->ms = now_ms() - t0;
    return j;
fail:
    ed_jit_free(j);
    return NULL;
}

ed_jit_entry ed_jit_entry_fn(const ed_jit *j) { return j ? j->entry : NULL; }

double ed_jit_compile_ms(const ed_jit *j) { return j ? j->ms : 0; }

char *ed_jit_dump_ir(const ed_graph *g)
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
    ed_node **order = ed_graph_topo(g);
    LLVMTargetMachineRef tm = host_tm();
    if (!order || !tm) {
        free(order);
        if (tm) LLVMDisposeTargetMachine(tm);
        return NULL;
    }
    /* The same triple and layout the LLJIT would use: the host TM's. */
    char *triple = LLVMGetTargetMachineTriple(tm);
    LLVMTargetDataRef td = LLVMCreateTargetDataLayout(tm);
    char *layout = LLVMCopyStringRepOfTargetData(td);
    LLVMContextRef ctx = LLVMContextCreate();
    ed_cg cg;
    cg_init(&cg, ctx, g->name);
    char *text = NULL;
    if (build_and_optimize(&cg, g, order, triple, layout) == ED_OK) {
        char *s = LLVMPrintModuleToString(cg.mod);
        text = strdup(s);
        LLVMDisposeMessage(s);
    }
    LLVMDisposeBuilder(cg.b);
    LLVMDisposeModule(cg.mod);
    LLVMContextDispose(ctx);
    LLVMDisposeMessage(layout);
    LLVMDisposeTargetData(td);
    LLVMDisposeMessage(triple);
    LLVMDisposeTargetMachine(tm);
    free(order);
    return text;
}
