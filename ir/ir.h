/* The graph IR: op table, nodes, graphs, shape rules, verifier, traversal.
 *
 * A graph owns its nodes. Node ids are dense and follow creation order, and every
 * analysis is an array indexed by id. Nodes are immutable after creation except that
 * ed_replace_all_uses redirects inputs. Errors on user input are sticky: the first
 * one is recorded on the graph, the constructor returns NULL, and NULL propagates. */
#ifndef ED_IR_H
#define ED_IR_H

#include "runtime/store.h"
#include "runtime/tensor.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- the op table ---------------------------------------------------------- */

typedef enum {
#define OP(id, name, min_in, max_in, kind, rule, flags, attrs) ED_OP_##id,
#include "ir/ops.def"
#undef OP
    ED_OP_COUNT
} ed_op;

typedef enum {
    ED_KIND_LEAF,
    ED_KIND_ELEM,
    ED_KIND_REDUCE,
    ED_KIND_MOVE,
    ED_KIND_INDEX,
    ED_KIND_MATMUL,
    ED_KIND_CONV,
    ED_KIND_RANDOM,
    ED_KIND_CONTROL,
    ED_KIND_FUSED,
    ED_KIND_COLLECTIVE,
} ed_op_kind;

/* The class of an op's shape rule (ops.def); OWN: a rule of its own. */
typedef enum {
    ED_RULE_LEAF,
    ED_RULE_UNARY,
    ED_RULE_BINARY,
    ED_RULE_COMPARE,
    ED_RULE_REDUCE,
    ED_RULE_OWN,
} ed_rule_class;

enum {
    F_COMM = 1 << 0,
    F_DIFF = 1 << 1,
    F_INPLACE = 1 << 2,
    F_FLOAT = 1 << 3,
    F_TYPED = 1 << 4,
    F_TUPLE = 1 << 5,
    F_CHEAP = 1 << 6,
    F_NONNEG = 1 << 7,
    F_FUSABLE_RED = 1 << 8,
};

/* Attribute groups an op uses (the attribute schema of its row). */
enum {
    A_NAME = 1 << 0,    /* name: binding name of a leaf */
    A_INIT = 1 << 1,    /* init: initializer of a param or state */
    A_DATA = 1 << 2,    /* data, ndata: const values */
    A_AXES = 1 << 3,    /* axes, keepdims */
    A_AXIS = 1 << 4,    /* axis */
    A_PERM = 1 << 5,    /* perm */
    A_SLICE = 1 << 6,   /* start, stop, step */
    A_PAD = 1 << 7,     /* pad_lo, pad_hi, pad_value */
    A_ALPHA = 1 << 8,   /* alpha */
    A_APPROX = 1 << 9,  /* approx: 0 erf, 1 tanh */
    A_RANGE = 1 << 10,  /* lo, hi */
    A_PROB = 1 << 11,   /* p */
    A_STREAM = 1 << 12, /* stream */
    A_TRANS = 1 << 13,  /* ta, tb */
    A_BODY = 1 << 14,   /* body, trips, ncarried: loop */
    A_INDEX = 1 << 15,  /* index: get */
    A_EXPR = 1 << 16,   /* body: fused (the expression, a graph printed after the inputs) */
    A_CONV = 1 << 17,   /* stride, padding, dilation, groups: convolutions */
    A_OUTPAD = 1 << 18, /* out_pad: conv_transpose2d's output_padding */
    A_KERNEL = 1 << 19, /* kernel: conv2d_weight_grad's kernel size */
};

/* A fused node reads at most this many inputs (kernels walk them all at once). */
#define ED_FUSED_MAX_INPUTS 15
/* ... and its body has at most this many nodes, in topological creation order, so
 * kernels keep one value per body node on the stack. */
#define ED_FUSED_MAX_NODES 64
/* A matmul of at most this many result rows (one matrix, W not transposed) is a small
 * one: the JIT streams W once as a GEMV (backend/llvm/lower_gemv.c), and the fuse pass
 * makes it the producer of the fused chain that reads it (ir.h, fused expressions). */
#define ED_GEMV_MAX_ROWS 8

typedef struct {
    const char *name;
    int min_inputs, max_inputs; /* max -1: any number */
    ed_op_kind kind;
    ed_rule_class rule;
    unsigned flags;
    unsigned attrs;
} ed_op_info;

extern const ed_op_info ed_ops[ED_OP_COUNT];
const char *ed_op_name(ed_op op);
/* Returns false if no op has this mnemonic. */
bool ed_op_lookup(const char *name, ed_op *out);

/* ---- nodes and attributes -------------------------------------------------- */

typedef struct ed_graph ed_graph;
typedef struct ed_node ed_node;

typedef struct ed_attrs {
    const char *name;   /* leaves: binding name */
    ed_init init;       /* param, state */
    const double *data; /* const: 1 value (splat) or one per element */
    int64_t ndata;
    uint32_t axes; /* reductions: bit i set = reduce axis i */
    bool keepdims;
    int axis;              /* concat, gather, scatter_add */
    int perm[ED_MAX_RANK]; /* transpose: output axis i is input axis perm[i] */
    int64_t start[ED_MAX_RANK], stop[ED_MAX_RANK], step[ED_MAX_RANK]; /* slice */
    int64_t pad_lo[ED_MAX_RANK], pad_hi[ED_MAX_RANK];                 /* pad */
    double pad_value;
    double alpha;          /* leaky_relu slope for x < 0 */
    int approx;            /* gelu: 0 exact (erf), 1 tanh approximation */
    double lo, hi;         /* clamp bounds; rand [lo, hi); randint [lo, hi) */
    double p;              /* bernoulli probability of 1 */
    uint32_t stream;       /* random ops: stream id, kept by every pass */
    bool ta, tb;           /* matmul: transpose the last two dims of a / b */
    ed_dtype dtype;        /* F_TYPED ops: output dtype */
    ed_shape shape;        /* F_TYPED ops: output shape */
    struct ed_graph *body; /* loop, fused: the body graph, owned by the node's graph */
    int64_t trips;         /* loop: iteration count (static, 0..INT32_MAX) */
    int ncarried;          /* loop: how many inputs are carried (the rest are captured) */
    int index;             /* get: which result of the tuple */
    /* convolutions, per spatial axis (h, w): */
    int64_t stride[2], padding[2], dilation[2];
    int64_t groups;
    int64_t out_pad[2]; /* conv_transpose2d: extra rows/columns at the end, < stride */
    int64_t kernel[2];  /* conv2d_weight_grad: KH, KW of the weight it gives */
} ed_attrs;

struct ed_node {
    ed_graph *graph;
    int id;
    ed_op op;
    ed_dtype dtype;
    ed_shape shape;
    int nin;
    ed_node **in;
    ed_attrs attr;    /* graph-owned copies of name and data */
    const char *name; /* optional debug name; leaves: the binding name */
};

typedef struct {
    const char *name;
    ed_node *node;
} ed_binding;

struct ed_graph {
    char *name;
    ed_node **nodes; /* nodes[id] */
    int nnodes, cap;
    ed_binding *outputs; /* `out NAME = %v` */
    int noutputs, outcap;
    ed_binding *updates; /* `update "param or state" = %v`: new value after a call */
    int nupdates, updcap;
    uint32_t next_stream;
    char *scope;          /* prefix for names of nodes built by nn blocks */
    size_t scope_len[64]; /* length of scope before each push */
    int scope_depth;
    bool eval_mode;          /* nn blocks build their evaluation form (ed_graph_set_training) */
    ed_dtype weight_dtype;   /* dense layers' weights on f32 inputs: f32, or bf16/f16 (ed_graph_set_weight_dtype) */
    struct ed_chunk *chunks; /* arena for nodes, names, data */
    bool failed;
    char error[1024];
    ed_graph *parent; /* the graph owning this one as a loop body, or NULL */
    ed_graph **subs;  /* loop bodies this graph owns (freed with it) */
    int nsubs, subcap;
};

/* ---- graphs ---------------------------------------------------------------- */

ed_graph *ed_graph_new(const char *name);
void ed_graph_free(ed_graph *g);
/* The first error recorded on the graph, or NULL if none. */
const char *ed_graph_error(const ed_graph *g);
/* Record an error (only the first is kept). Returns NULL for `return ed_graph_fail(...)`. */
ed_node *ed_graph_fail(ed_graph *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Create a node: checks arity, dtypes and shapes with the op's rule, copies the
 * attributes. On bad input records the error on g and returns NULL. Random ops get
 * a fresh stream id unless attrs->stream is already set to a non-zero value. */
ed_node *ed_node_new(ed_graph *g, ed_op op, ed_node *const *in, int nin, const ed_attrs *a);

/* Give a node a debug name (copied). Returns the node; NULL passes through. */
ed_node *ed_set_name(ed_node *n, const char *name);

/* Name scopes: nn blocks name their params and results "scope.name". A push may add
 * several dotted parts at once; a pop undoes exactly one push. */
void ed_scope_push(ed_graph *g, const char *name);
void ed_scope_pop(ed_graph *g);
const char *ed_scope(const ed_graph *g); /* "" at top level */

/* Train/eval mode, a property of the program rather than a runtime branch: nn blocks
 * that differ (batch norm, dropout) read it while they build, so one graph builder
 * called once per mode gives two programs. New graphs are in training mode; loop
 * bodies take their outer graph's mode; clones keep it. */
void ed_graph_set_training(ed_graph *g, bool training);
bool ed_graph_training(const ed_graph *g);
/* The storage type of the weights ed_dense builds on f32 inputs, set like the mode: f32
 * (new graphs), or bf16 / f16 for sampling (the matmul widens them as it reads them;
 * training such a graph fails in grad). Loop bodies take their outer graph's; clones
 * keep it. False for any other dtype. */
bool ed_graph_set_weight_dtype(ed_graph *g, ed_dtype dt);
ed_dtype ed_graph_weight_dtype(const ed_graph *g);

/* Outputs and state updates. A NULL node is ignored (the graph has an error already). */
void ed_output(ed_graph *g, const char *name, ed_node *v);
void ed_update(ed_graph *g, const char *name, ed_node *v);
ed_node *ed_graph_output(const ed_graph *g, const char *name);
/* The new value bound to a param or state, or NULL. */
ed_node *ed_graph_update(const ed_graph *g, const char *name);

/* Find a leaf by binding name (input, param or state), or NULL. */
ed_node *ed_graph_leaf(const ed_graph *g, ed_op op, const char *name);

/* Make sub (a loop body) owned by g: freed with g, its parent is g. A sub that already
 * has a parent is an error. Returns ED_OK or ED_ERR (recorded on g). */
int ed_graph_adopt(ed_graph *g, ed_graph *sub);

/* Graph-owned memory (freed with the graph). */
void *ed_graph_alloc(ed_graph *g, size_t bytes);
char *ed_graph_strdup(ed_graph *g, const char *s);

/* ---- shape and dtype rules (ir/shape.c) ---------------------------------- */

/* Infer the output type of op applied to in[] with attributes a. On failure writes
 * a message without the op prefix into msg and returns false. */
bool ed_infer(ed_op op, ed_node *const *in, int nin, const ed_attrs *a, ed_dtype *dt, ed_shape *shape, char *msg,
              size_t msgsize);
/* True when the op has a shape rule (checked for every op by a test). */
bool ed_shape_rule_exists(ed_op op);
/* numpy broadcasting of two shapes; false if incompatible. */
bool ed_broadcast_shapes(ed_shape a, ed_shape b, ed_shape *out);
/* A shape viewed as [outer, dim, inner] around one axis (gather, scatter_add). */
typedef struct {
    int64_t outer, dim, inner;
} ed_axis_view;
ed_axis_view ed_axis_view_of(ed_shape s, int axis);

/* ---- traversal, uses, verification (ir/graph.c, ir/verify.c) -------------- */

/* A topological order of all nodes: creation order when it is one, otherwise the
 * order that always takes the lowest ready id. Returns a malloc'd array of nnodes. */
ed_node **ed_graph_topo(const ed_graph *g);

/* Use lists: users of node id are list[start[id] .. start[id+1]), one entry per use. */
typedef struct {
    int *start;
    ed_node **list;
} ed_uses;
ed_uses *ed_uses_build(const ed_graph *g);
void ed_uses_free(ed_uses *u);
int ed_use_count(const ed_uses *u, const ed_node *n);

/* Redirect every use of old (inputs, outputs, updates) to new. Types must match. */
int ed_replace_all_uses(ed_graph *g, ed_node *old, ed_node *new_node);

/* ---- copying and removing (ir/clone.c) -------------------------------------- */

/* A deep copy: same name, nodes (in topological order, ids renumbered), attributes,
 * debug names, stream ids, outputs and updates. A graph with a sticky error clones
 * with that error. NULL and ed_last_error() on failure. */
ed_graph *ed_graph_clone(const ed_graph *g);
/* Remove the nodes with dead[id] set and renumber the rest densely in topological
 * order (their memory stays in the graph arena until the graph is freed). Fails,
 * changing nothing, if a kept node, an output or an update uses a removed node. */
int ed_graph_remove_nodes(ed_graph *g, const bool *dead);
/* Make order (every node of g once, inputs before users) the creation order: g's
 * nodes are renumbered so that node order[i] gets id i. Fails, changing nothing, if
 * order is not such a permutation. */
int ed_graph_reorder(ed_graph *g, ed_node *const *order);

/* Check the whole graph; returns ED_OK or ED_ERR with the reason in ed_last_error(). */
int ed_graph_verify(const ed_graph *g);

/* Error text for a type: "f32[2,3]". */
char *ed_node_type_str(const ed_node *n, char *buf, size_t size);

/* ---- loops (ir/loop.c) ------------------------------------------------------
 *
 * A loop node's body is a graph whose INPUT leaves, in id order, are: the index (i32[]),
 * then one per carried value, then one per captured value (the loop's inputs in order).
 * Its `out` bindings, in order, are: the next value of each carried value (same type),
 * then the per-iteration outputs the loop stacks into [trips, ...]. The body has no
 * params, state or updates: outer params are captured like any other value. */

/* Results of a tuple node (loop): carried finals, then stacked outputs. */
int ed_loop_nresults(const ed_node *loop);
/* Type of result k; false if k is out of range or the node is not a loop. */
bool ed_loop_result_type(const ed_node *loop, int k, ed_dtype *dt, ed_shape *shape);
/* Byte offset of result k in the loop's own storage (each result ED_ALIGN aligned). */
int64_t ed_loop_result_offset(const ed_node *loop, int k);
/* The k-th INPUT leaf of body in id order (0: index, then carried, then captured). */
ed_node *ed_loop_body_input(const ed_graph *body, int k);
int ed_loop_body_ninputs(const ed_graph *body);
/* Format a body checker's message into msg[size]; always returns false. */
bool ed_body_fail(char *msg, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Does g (or a loop body inside it) contain a random op? */
bool ed_graph_has_random(const ed_graph *g);
/* The shape rules of loop and get (used by ir/shape.c's table). */
bool ed_loop_rule(ed_op op, ed_node *const *in, int nin, const ed_attrs *a, ed_dtype *dt, ed_shape *out, char *msg,
                  size_t size);
bool ed_get_rule(ed_op op, ed_node *const *in, int nin, const ed_attrs *a, ed_dtype *dt, ed_shape *out, char *msg,
                 size_t size);

/* ---- fused expressions (ir/fused.c) ------------------------------------------
 *
 * A fused node's body is a graph whose INPUT leaves, in id order, have the types of the
 * node's inputs; its other nodes are elementwise ops, broadcast_to and splat consts,
 * each of a shape that broadcasts to the result's; its one `out` is the result. Every
 * body value is read at the result's index through numpy broadcasting (elementwise ops
 * commute with broadcasting), so the body runs once per result element.
 *
 * A body may also hold one reduction r (sum, mean, max, min) over an operand of shape
 * D. Then what r reads is evaluated per element of D (broadcasting to D) and
 * accumulated per group, in the reduction's order; the result has r's shape (an
 * epilogue: the rest runs once per group, e.g. log(sum(exp(x - m))) + m) or D's (a row
 * kernel: the rest runs per element of the group after its reduction, reading r
 * broadcast, e.g. exp(x - m) / sum(exp(x - m))). A row kernel's phase 2 may hold values
 * smaller than D computed from r, e.g. log(s) in (x - m) - log(s): like any body value
 * they are read per element of D through broadcasting, and r, read back, is each
 * element's own group's (ed_reduction_reads_back). Those computed from r and splat
 * consts alone are the same for every element of a group, so a backend may evaluate
 * them once per group (same inputs, same rounding: the same bits).
 *
 * Or a body may hold one producer of two body inputs, of the result's shape, and no
 * reduction: a matmul (one matrix) or a conv2d / conv_transpose2d. The product is
 * computed whole (a backend may apply the rest per image of a convolution as soon as
 * that image is written), then the rest per result element reading the product at that
 * element (a bias and an activation after a small matmul or a conv, in its kernel). */
bool ed_fused_rule(ed_op op, ed_node *const *in, int nin, const ed_attrs *a, ed_dtype *dt, ed_shape *out, char *msg,
                   size_t size);
/* May node n be a body node of a fused expression (besides its inputs)? */
bool ed_fused_body_op(const ed_node *n);
/* The body's matmul (its producer), or NULL. */
const ed_node *ed_fused_matmul(const ed_graph *body);
/* The body's producer (a matmul, conv2d or conv_transpose2d), or NULL. */
const ed_node *ed_fused_producer(const ed_graph *body);
bool ed_fused_producer_op(ed_op op);
/* By body id: evaluated per result element (all but the operands only the matmul reads). */
void ed_fused_per_element(const ed_graph *body, bool *each);
/* The body's reduction, or NULL (an elementwise expression). */
const ed_node *ed_fused_reduction(const ed_graph *body);
/* What each phase evaluates, by body id: phase1 = the reduction's operand and the values
 * it reads (per element of the operand's shape D), phase2 = the result and what it
 * reads other than through the reduction (per result element). Without a reduction
 * phase1 is empty. Nodes in both are evaluated in both. */
void ed_fused_phases(const ed_graph *body, bool *phase1, bool *phase2);
/* Does reduction r, broadcast back to its operand's shape, give every element the value
 * of its own group (keepdims, a scalar, or leading reduced axes without keepdims)? A
 * row kernel computes exactly that, so only such a reduction may feed one. */
bool ed_reduction_reads_back(const ed_node *r);
/* Does fused node n write D-shaped results after its reduction (a row kernel, as
 * softmax's division) rather than one per reduced group (an epilogue)? */
bool ed_fused_row_kernel(const ed_node *n);
/* By body id: splat consts, inputs holding one value per group of the reduction
 * (broadcast along its reduced axes), and the values computed from nothing but the
 * reduction's result and those (log(s) in log-softmax, rsqrt(var + eps) in layer
 * norm): the same for every element of a group, so a row kernel may evaluate them
 * once per group, reading such inputs at the group's first element. */
void ed_fused_group_values(const ed_graph *body, bool *per_group);
/* May n's result take the bytes of an input of its type (the arena's in-place rule)? */
bool ed_fused_inplace_ok(const ed_node *n);

/* ---- scalar semantics of elementwise ops (ir/scalar.c) -------------------- */

/* The reference value of an elementwise op on scalars, in double, for result dtype
 * dt (i32 division truncates, etc.). Shared by the interpreter, constant folding
 * and fused kernels so they agree. x has the op's inputs in order. */
double ed_scalar_eval(ed_op op, const double *x, const ed_attrs *a, ed_dtype dt);
/* The same for an op without attributes, inputs as arguments (unused ones 0): what
 * JIT code calls for an elementwise op it has no lowering of its own for. */
double ed_scalar_eval3(ed_op op, ed_dtype dt, double x0, double x1, double x2);
/* Round v to what a dt element holds (float rounding, i32 conversion). */
double ed_scalar_round(double v, ed_dtype dt);

#endif
