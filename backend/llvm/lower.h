/* Internal to backend/llvm: the code generator's state and the lowering of each
 * kind of op. lower.c builds the module; lower_*.c emit one kernel body each. */
#ifndef ED_LLVM_LOWER_H
#define ED_LLVM_LOWER_H

#include "backend/backend.h"
#include "ir/ir.h"

#include "backend/llvm/jit.h"

#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>

/* Operands of one walk: a fused node's output and its inputs, twice for a fused
 * reduction's epilogue (read at the group and at the result). */
#define ED_WALK_MAX_OPS 32

/* A kernel being emitted over a range [begin, end) of its first walk's first axis
 * (lower_split.c): the walk counts the walks it opens and records that axis's extent. */
typedef struct {
    LLVMValueRef begin, end; /* the kernel's last two parameters */
    bool blocks;             /* a one-axis walk splits in blocks of elements (not groups) */
    int depth;               /* walks open */
    int walks;               /* walks opened at depth 0: a split kernel has exactly one */
    int64_t extent;          /* the first axis of the first walk (after collapsing) */
    bool every_walk;         /* every walk at depth 0 covers [begin, end) (concat's inputs) */
    bool mismatch;           /* every_walk, but some walk's first axis differs from extent */
    int64_t grain;           /* a matmul's: blocks per chunk at least */
} ed_split;

/* A flat kernel's walk (lower_flat.c): elements [begin, end) of a contiguous result, walk
 * operand k read at the element's index (full[k]) or at 0 (one element, broadcast). */
typedef struct {
    LLVMValueRef begin, end; /* the kernel's last two parameters */
    bool full[ED_WALK_MAX_OPS];
} ed_flat;

typedef struct {
    LLVMContextRef ctx;
    LLVMModuleRef mod;
    LLVMBuilderRef b;
    LLVMValueRef fn; /* the kernel being emitted */
    LLVMTypeRef i1, i32, i64, f32, f64, ptr, vd;
    void *numerics;            /* an ed_numerics_fault every float kernel output is checked into; NULL: off */
    ed_conv_lowering conv;     /* the convolutions' form (lower_conv.c) */
    LLVMValueRef conv_scratch; /* the im2col buffer all gemm convolutions share, or NULL */
    int64_t conv_scratch_bytes;
    ed_split *split; /* NULL: kernels cover their whole output */
    ed_flat *flat;   /* NULL: walks have constant extents */
} ed_cg;

/* One operand of a strided walk: element type, base pointer, offsets in elements. */
typedef struct {
    LLVMTypeRef ty;
    LLVMValueRef ptr;
    int64_t base;
    int64_t stride[ED_MAX_RANK];
} ed_lop;

/* Called once per element with each operand's element pointer (operand 0 is written). */
typedef void (*ed_walk_body)(ed_cg *cg, LLVMValueRef *elem_ptrs, void *ud);

/* Loop over shape in C order (size-1 axes dropped, contiguous axes merged so dense
 * operands get one flat, vectorizable loop). */
void ed_lower_walk(ed_cg *cg, ed_shape shape, ed_lop *ops, int nops, ed_walk_body body, void *ud);

/* Counted loop i = 0..n-1, n > 0 (do-while form): open gives the index phi, close
 * with the same n jumps back and leaves the builder after the loop. */
typedef struct {
    LLVMBasicBlockRef body, pre;
    LLVMValueRef i, start;
} ed_loop;
ed_loop ed_loop_open(ed_cg *cg);
void ed_loop_close(ed_cg *cg, ed_loop *l, int64_t n);
/* i = start..end-1 with run-time bounds, start < end. */
ed_loop ed_loop_open_at(ed_cg *cg, LLVMValueRef start);
void ed_loop_close_at(ed_cg *cg, ed_loop *l, LLVMValueRef end);

LLVMTypeRef ed_cg_type(ed_cg *cg, ed_dtype dt);
LLVMValueRef ed_cg_i64(ed_cg *cg, int64_t v);
/* Declare (once) and call an external function. */
LLVMValueRef ed_cg_call(ed_cg *cg, const char *name, LLVMTypeRef ret, LLVMTypeRef *params, int np, LLVMValueRef *args);
LLVMValueRef ed_cg_alloca(ed_cg *cg, LLVMTypeRef ty); /* in the entry block */

/* Kernel bodies. args: output pointer, then one pointer per input. */
void ed_lower_elem(ed_cg *cg, const ed_node *n, LLVMValueRef *args);
/* The value of elementwise node n on one element, from its inputs' loaded values x
 * (each of its input's type): what ed_lower_elem stores. */
LLVMValueRef ed_lower_elem_value(ed_cg *cg, const ed_node *n, LLVMValueRef *x);
/* A fused node: one walk over the result evaluating the body per element (lower_fused.c). */
int ed_lower_fused(ed_cg *cg, const ed_node *n, LLVMValueRef *args);
void ed_lower_move(ed_cg *cg, const ed_node *n, LLVMValueRef *args);
void ed_lower_reduce(ed_cg *cg, const ed_node *n, LLVMValueRef *args);
/* The accumulator of reduction n (lower_reduce.c), for a walk over its groups: init
 * once (allocas), start per group, add each element (a value of n's input type) in
 * the group's order, result after the group (count: its elements, for mean). */
typedef struct {
    const ed_node *n;
    LLVMValueRef acc, best, at, j; /* allocas */
} ed_red_acc;
void ed_red_acc_init(ed_cg *cg, ed_red_acc *a, const ed_node *n);
void ed_red_acc_start(ed_cg *cg, ed_red_acc *a);
void ed_red_acc_add(ed_cg *cg, ed_red_acc *a, LLVMValueRef v);
LLVMValueRef ed_red_acc_result(ed_cg *cg, ed_red_acc *a, int64_t count);
/* Is reduction n a sum or mean whose reduced axes all come before its kept ones (size-1
 * axes aside), with 8 to 16384 kept elements? Then its input is [rows, cols] in memory
 * and output c adds element c of each row in row order: one accumulator per output in
 * an array (ed_red_acc_array), rows outer, outputs inner, vectorizes with the same bits. */
bool ed_red_leading(const ed_node *n, int64_t *rows, int64_t *cols);
LLVMTypeRef ed_red_acc_type(ed_cg *cg, const ed_node *n); /* an accumulator: double, i64 for i32 */
/* cols zeroed accumulators of a's reduction on the stack (the kernel becomes noinline);
 * point a->acc at one before each ed_red_acc_add / ed_red_acc_result. */
LLVMValueRef ed_red_acc_array(ed_cg *cg, ed_red_acc *a, int64_t cols);
/* gather, one_hot, scatter_add (lower_index.c). */
void ed_lower_index(ed_cg *cg, const ed_node *n, LLVMValueRef *args);
int ed_lower_matmul(ed_cg *cg, const ed_node *n, LLVMValueRef *args);
/* The GEMV form of a small-batch f32 matmul (lower_gemv.c): W = the right operand, not
 * transposed, one matrix (batch dims all 1), at most ed_gemv_max_rows() result rows. */
int ed_gemv_max_rows(void);                /* ED_GEMV_MAX_ROWS (ir.h), or EDIFICE_GEMV_ROWS (0: never) */
bool ed_gemv_applies(const ed_node *n);    /* also every matmul of a 16-bit weight */
bool ed_gemv_one_matrix(const ed_node *n); /* the result's batch dims are all 1 */
void ed_lower_gemv(ed_cg *cg, const ed_node *n, LLVMValueRef *args);
/* The convolution ops (lower_conv.c): direct loops (the interpreter's bits) or calls to
 * the im2col + sgemm kernels of conv_gemm.c, by cg->conv and size. */
void ed_lower_conv(ed_cg *cg, const ed_node *n, LLVMValueRef *args);
/* Does conv n lower to the gemm form (a call to conv_gemm.c)? Then ed_lower_conv_then
 * passes epi(epi_ctx, b0, b1) to the forward ops' call (conv_gemm.h's epilogue). */
bool ed_conv_lowers_to_gemm(const ed_cg *cg, const ed_node *n);
void ed_lower_conv_then(ed_cg *cg, const ed_node *n, LLVMValueRef *args, LLVMValueRef epi, LLVMValueRef epi_ctx);
/* allreduce_sum, allreduce_mean (lower_collective.c): runtime/comm.h's allreduce. */
void ed_lower_collective(ed_cg *cg, const ed_node *n, LLVMValueRef *args);
/* Random ops: args[0] output; seed and call are the kernel's extra i64 parameters. */
void ed_lower_random(ed_cg *cg, const ed_node *n, LLVMValueRef out, LLVMValueRef seed, LLVMValueRef call);

/* The inline f32 form of n's op (lower_math.c): straight-line IR on one f32 value,
 * no calls and no branches, so elementwise loops vectorize; special values as libm.
 * NULL when the op has none, or n is not f32. */
LLVMValueRef ed_math_f32(ed_cg *cg, const ed_node *n, LLVMValueRef x);

/* get: copy result k out of the loop's storage. */
void ed_lower_get(ed_cg *cg, const ed_node *n, LLVMValueRef *args);
/* The kernel function of loop n named name (lower_loop.c): its body's kernels, then a
 * native loop calling them. NULL with ed_last_error() on failure. */
LLVMValueRef ed_lower_loop(ed_cg *cg, const ed_node *n, const char *name);

/* Shared by lower.c and lower_loop.c. */
/* offsets: the memory plan of n's graph (in-place inputs lose noalias), or NULL. */
LLVMValueRef ed_lower_declare_kernel(ed_cg *cg, const ed_node *n, const char *name, const int64_t *offsets);
/* The same with `extra` i64 parameters after call (a range kernel's begin and end). */
LLVMValueRef ed_lower_declare_kernel_n(ed_cg *cg, const ed_node *n, const char *name, const int64_t *offsets,
                                       int extra);
/* fn's body (fn from ed_lower_declare_kernel_n): node n over fn's parameters, an input
 * written over in place read through the output pointer (one base pointer for both, so
 * LLVM sees element i read before it is written and vectorizes without overlap checks),
 * then ret. cg->split or cg->flat, when set, shape the walks. */
int ed_lower_define_kernel(ed_cg *cg, const ed_node *n, LLVMValueRef fn, const int64_t *offsets);
/* kern[id] = the kernel of each computed node of g (names start with prefix); offsets
 * is g's memory plan (ed_arena_plan), which says which inputs are written in place. */
int ed_lower_kernels(ed_cg *cg, const ed_graph *g, const char *prefix, const int64_t *offsets, LLVMValueRef *kern);
/* At the builder: call every kernel in order, with vals[id] the pointer to node id's value. */
int ed_lower_calls(ed_cg *cg, const ed_graph *g, ed_node *const *order, const LLVMValueRef *kern,
                   const LLVMValueRef *vals, LLVMValueRef seed, LLVMValueRef call);
/* base + off bytes. */
LLVMValueRef ed_cg_byte_gep(ed_cg *cg, LLVMValueRef base, int64_t off);

bool ed_lower_elem_ok(ed_op op);
bool ed_lower_move_ok(ed_op op);
bool ed_lower_index_ok(ed_op op);

/* The body of computed node n's kernel at the builder (emit_kernel's switch). */
int ed_lower_body(ed_cg *cg, const ed_node *n, LLVMValueRef *args);
/* Node n's kernel as a call of the thread pool (lower_split.c) over a range kernel, when n
 * is large and its outputs split into independent ranges; else NULL with *split false
 * (emit it whole). NULL with *split true: failed, ed_last_error() says why. */
int ed_split_min_work(void); /* SPLIT_MIN_WORK, or EDIFICE_SPLIT_WORK (0: never) */
/* Is matmul n split over the pool: sgemm/dgemm calls on row or column blocks, or on
   batch ranges, each with OpenBLAS at one thread (lower_matmul.c)? */
bool ed_split_gemm_applies(const ed_node *n);
bool ed_split_gemm_on(void); /* EDIFICE_SPLIT_GEMM=0: OpenBLAS's own threads instead */
LLVMValueRef ed_lower_split_kernel(ed_cg *cg, const ed_node *n, const char *name, const int64_t *offsets, bool *split);

/* Flat kernels (lower_flat.c). Does node n get one: elementwise or fused elementwise (no
 * matmul, no reduction), every input of n's shape or of one element? */
bool ed_flat_applies(const ed_node *n);
/* Is flat node n large enough to run on the pool (lower_split.c's rule)? */
bool ed_flat_pooled(const ed_node *n);
/* NAME(out, in..., seed, call, begin, end): elements [begin, end) of n's kind of node, for
 * any length (ed_node_key_flat). Callers pass begin 0 and end the element count. */
LLVMValueRef ed_lower_flat_kernel(ed_cg *cg, const ed_node *n, const char *name, const int64_t *offsets);
/* NAME with the same parameters, calling the flat kernel on the pool in blocks. */
LLVMValueRef ed_lower_flat_pool(ed_cg *cg, const ed_node *n, const char *name, const int64_t *offsets,
                                LLVMValueRef flat);
/* ed_lower_walk under cg->flat: one loop over [begin, end), no constant extent. */
void ed_lower_flat_walk(ed_cg *cg, const ed_lop *ops, int nops, ed_walk_body body, void *ud);

/* Build the whole module (kernels + ed_entry) into cg->mod. offsets[id] is node id's
 * byte offset in the arena, or -1 for a leaf bound through the values table. */
int ed_lower_program(ed_cg *cg, const ed_graph *g, ed_node *const *order, const int64_t *offsets);

/* ---- shared by jit.c and export.c ---- */
/* The target machine at code-generation level 0..3: triple NULL for the host's, cpu NULL
 * for the host CPU with its features (what the JIT uses), else that CPU with its default
 * features. NULL with ed_last_error(). Initializes LLVM's native target. */
LLVMTargetMachineRef ed_llvm_target_machine(int level, const char *triple, const char *cpu);
/* A fresh code generator in ctx building module name. */
void ed_cg_init(ed_cg *cg, LLVMContextRef ctx, const char *name);
/* Lower g into cg->mod for triple and layout, and verify it (times into st). */
int ed_llvm_lower_module(ed_cg *cg, const ed_graph *g, ed_node *const *order, const int64_t *offsets,
                         const char *triple, const char *layout, ed_jit_stats *st);
/* default<O{level}> with tm (times into st). */
int ed_llvm_optimize(LLVMModuleRef m, LLVMTargetMachineRef tm, int level, ed_jit_stats *st);

#endif
