/* The text form of a graph (print and parse) and its Graphviz form.
 *
 *   graph @mlp {
 *     %0 = input "x" : f32[4,3]
 *     %1 = param "fc1.w" {init=glorot_uniform, scale=0} : f32[3,8]
 *     %2 = matmul %0, %1 : f32[4,8]
 *     %3 = const 1.5 : f32[]
 *     %4 = sum %2 {axes=[1], keepdims=false} : f32[4] "row.sums"
 *     out y = %4
 *     update "fc1.w" = %1
 *   }
 *
 * A node is `%V = OP ["BINDING NAME"] [VALUES] [%A, %B, ...] [{KEY=VALUE, ...}] : TYPE
 * ["DEBUG NAME"]`. The binding name belongs to input, param and state; VALUES to const
 * (one value fills the shape, or a flat [list] in C order); the debug name to every
 * other node. Attributes follow the op's row in ops.def, in A_* bit order; every one is
 * required except ta and tb (false when absent). The printer numbers nodes %0..%N-1
 * in topological order; the parser takes any %name made of [A-Za-z0-9_.], defined
 * before use. '#' starts a comment; whitespace is free. Integers in the text are
 * limited to 2^53 in magnitude.
 *
 * A loop prints its body graph inside, one indentation step deeper, and has no type
 * (read its results with get):
 *
 *   %2 = loop %0, %1 {stream=1, trips=10, ncarried=1} graph @body {
 *     %0 = input "index" : i32[]
 *     ...
 *     out next0 = %3
 *   }
 *   %3 = get %2 {index=0} : f32[4]
 *
 * The body has its own value names; it sees outer values only as its inputs.
 *
 * print(parse(print(g))) is byte-identical to print(g). */
#ifndef ED_TEXT_H
#define ED_TEXT_H

#include "ir/ir.h"

#include <stdbool.h>
#include <stdio.h>

/* The graph as text (malloc'd; free it). NULL and ed_last_error() on failure (out of
 * memory, a cycle). A graph with a sticky error still prints, after a `# error:` line. */
char *ed_graph_print(const ed_graph *g);
/* What node n computes as text, malloc'd: its statement with every value numbered %0 and
 * no debug names (its body's included), then its inputs' types. Two nodes with the same
 * key compute the same function of their inputs (the JIT shares one kernel between
 * them). NULL and ed_last_error() when out of memory. */
char *ed_node_key(const ed_node *n);
/* The same with every type of n's own shape written `f32[*]` (its body's and inputs'
 * included): what a kernel taking its length at run time computes (the JIT's flat
 * elementwise kernels); other shapes print in full. */
char *ed_node_key_flat(const ed_node *n);
/* Print to f. ED_OK or ED_ERR with a message. */
int ed_graph_write(const ed_graph *g, FILE *f);

/* Parse and verify a graph. On failure returns NULL and ed_last_error() is
 * "FILENAME:LINE:COL: message" (filename NULL reads as "<input>"). */
ed_graph *ed_graph_parse(const char *text, const char *filename);
/* Read and parse a file; an unreadable file is an error naming the path. */
ed_graph *ed_graph_read_file(const char *path);

/* Graphviz source (malloc'd): one box per node, edges from inputs to users, ellipses for
 * outputs and (dashed) updates. NULL and ed_last_error() on failure. */
char *ed_graph_dot(const ed_graph *g);

/* ---- shared by print.c, parse.c and dot.c; not a stable API ------------------ */

/* A growable string. After a failed allocation `failed` is set and appends do nothing. */
typedef struct {
    char *s;
    size_t len, cap;
    bool failed;
} ed_strbuf;

void ed_sb_put(ed_strbuf *b, const char *s, size_t n);
void ed_sb_puts(ed_strbuf *b, const char *s);
void ed_sb_putc(ed_strbuf *b, char c);
void ed_sb_printf(ed_strbuf *b, const char *fmt, ...);
void ed_sb_free(ed_strbuf *b);

#define ED_NUM_BUF 48
/* v as the dtype holds it, in the shortest text that reads back (strtod, then rounding
 * to dt) to the same value: an integer for i32, %.6g..%.9g for f32, %.15g..%.17g for f64;
 * nan, inf, -inf. Attribute numbers use ED_F64. Returns buf. */
char *ed_text_number(double v, ed_dtype dt, char buf[ED_NUM_BUF]);
/* Appends s double-quoted, escaping \" \\ \n \t and other bytes < 0x20 or >= 0x7f as \xHH. */
void ed_text_quote(ed_strbuf *b, const char *s);
/* s matches [A-Za-z_][A-Za-z0-9_.]*, so it prints without quotes. */
bool ed_text_is_bare(const char *s);
/* Whether nodes of op carry a debug name in the text (all but the named leaves). */
bool ed_text_has_debug_name(ed_op op);
/* Nodes in print order and, in *num (indexed by node id), each node's print number.
 * Both malloc'd. NULL and ed_last_error() on failure. */
ed_node **ed_text_order(const ed_graph *g, int **num);

/* Attribute keys in print order: the A_* groups in bit order, then within a group. */
typedef enum {
    ED_KEY_INIT,
    ED_KEY_SCALE,
    ED_KEY_AXES,
    ED_KEY_KEEPDIMS,
    ED_KEY_AXIS,
    ED_KEY_PERM,
    ED_KEY_START,
    ED_KEY_STOP,
    ED_KEY_STEP,
    ED_KEY_PAD_LO,
    ED_KEY_PAD_HI,
    ED_KEY_PAD_VALUE,
    ED_KEY_ALPHA,
    ED_KEY_APPROX,
    ED_KEY_LO,
    ED_KEY_HI,
    ED_KEY_P,
    ED_KEY_STREAM,
    ED_KEY_TA,
    ED_KEY_TB,
    ED_KEY_TRIPS,
    ED_KEY_NCARRIED,
    ED_KEY_INDEX,
    ED_KEY_STRIDE,
    ED_KEY_PADDING,
    ED_KEY_DILATION,
    ED_KEY_GROUPS,
    ED_KEY_OUT_PAD,
    ED_KEY_KERNEL,
    ED_KEY_COUNT
} ed_text_key;

typedef struct {
    const char *name;
    unsigned group; /* the A_* bit the key belongs to */
    bool optional;  /* printed only when true; absent means false */
} ed_text_key_info;

extern const ed_text_key_info ed_text_keys[ED_KEY_COUNT];

#endif
