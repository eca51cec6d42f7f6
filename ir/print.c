/* The text printer, plus the helpers the parser and the DOT writer share with it:
 * string buffers, number formatting, quoting and the attribute key table. */
#include "ir/text.h"
#include "runtime/error.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

const ed_text_key_info ed_text_keys[ED_KEY_COUNT] = {
    [ED_KEY_INIT] = {"init", A_INIT, false},
    [ED_KEY_SCALE] = {"scale", A_INIT, false},
    [ED_KEY_AXES] = {"axes", A_AXES, false},
    [ED_KEY_KEEPDIMS] = {"keepdims", A_AXES, false},
    [ED_KEY_AXIS] = {"axis", A_AXIS, false},
    [ED_KEY_PERM] = {"perm", A_PERM, false},
    [ED_KEY_START] = {"start", A_SLICE, false},
    [ED_KEY_STOP] = {"stop", A_SLICE, false},
    [ED_KEY_STEP] = {"step", A_SLICE, false},
    [ED_KEY_PAD_LO] = {"lo", A_PAD, false},
    [ED_KEY_PAD_HI] = {"hi", A_PAD, false},
    [ED_KEY_PAD_VALUE] = {"value", A_PAD, false},
    [ED_KEY_ALPHA] = {"alpha", A_ALPHA, false},
    [ED_KEY_APPROX] = {"approx", A_APPROX, false},
    [ED_KEY_LO] = {"lo", A_RANGE, false},
    [ED_KEY_HI] = {"hi", A_RANGE, false},
    [ED_KEY_P] = {"p", A_PROB, false},
    [ED_KEY_STREAM] = {"stream", A_STREAM, false},
    [ED_KEY_TA] = {"ta", A_TRANS, true},
    [ED_KEY_TB] = {"tb", A_TRANS, true},
    [ED_KEY_TRIPS] = {"trips", A_BODY, false},
    [ED_KEY_NCARRIED] = {"ncarried", A_BODY, false},
    [ED_KEY_INDEX] = {"index", A_INDEX, false},
    [ED_KEY_STRIDE] = {"stride", A_CONV, false},
    [ED_KEY_PADDING] = {"padding", A_CONV, false},
    [ED_KEY_DILATION] = {"dilation", A_CONV, false},
    [ED_KEY_GROUPS] = {"groups", A_CONV, false},
    [ED_KEY_OUT_PAD] = {"output_padding", A_OUTPAD, false},
    [ED_KEY_KERNEL] = {"kernel", A_KERNEL, false},
};

/* ---- string buffers ------------------------------------------------------------ */

static bool sb_reserve(ed_strbuf *b, size_t extra)
{
    if (b->failed) return false;
    if (extra < b->cap - b->len) return true; /* room for extra bytes and the NUL */
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len <= extra) {
        if (cap > SIZE_MAX / 2) {
            b->failed = true;
            return false;
        }
        cap *= 2;
    }
    char *s = realloc(b->s, cap);
    if (!s) {
        b->failed = true;
        return false;
    }
    b->s = s;
    b->cap = cap;
    return true;
}

void ed_sb_put(ed_strbuf *b, const char *s, size_t n)
{
    if (!sb_reserve(b, n)) return;
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void ed_sb_puts(ed_strbuf *b, const char *s) { ed_sb_put(b, s, strlen(s)); }

void ed_sb_putc(ed_strbuf *b, char c) { ed_sb_put(b, &c, 1); }

/* Formats straight into the spare room; only what does not fit is formatted twice (the
 * printer calls this for every node, so a measuring pass each time doubled its cost). */
void ed_sb_printf(ed_strbuf *b, const char *fmt, ...)
{
    if (!sb_reserve(b, 64)) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->s[b->len] = '\0';
        return;
    }
    if ((size_t)n >= b->cap - b->len) {
        if (!sb_reserve(b, (size_t)n)) {
            b->s[b->len] = '\0';
            return;
        }
        va_start(ap, fmt);
        vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

void ed_sb_free(ed_strbuf *b)
{
    free(b->s);
    *b = (ed_strbuf){0};
}

/* ---- numbers, names, quoting ------------------------------------------------------ */

/* Doubles at least this large round to infinity as f32 (FLT_MAX plus half an ulp). */
static const double F32_OVERFLOW = 0x1.ffffffp127;

static float to_f32(double v)
{
    if (isfinite(v) && fabs(v) >= F32_OVERFLOW) return v > 0 ? INFINITY : -INFINITY;
    return (float)v;
}

/* The fewest digits in lo..hi that read back (the parser's way: strtod, then rounding
 * to the dtype) to the same value. */
static void shortest(double v, bool f32, char *buf)
{
    int lo = f32 ? 6 : 15, hi = f32 ? 9 : 17;
    for (int prec = lo; prec <= hi; prec++) {
        snprintf(buf, ED_NUM_BUF, "%.*g", prec, v);
        double back = strtod(buf, NULL);
        if (f32 ? to_f32(back) == (float)v : back == v) return;
    }
}

char *ed_text_number(double v, ed_dtype dt, char buf[ED_NUM_BUF])
{
    if (dt == ED_F32) v = to_f32(v);
    if (isnan(v)) snprintf(buf, ED_NUM_BUF, "nan");
    else if (isinf(v)) snprintf(buf, ED_NUM_BUF, v > 0 ? "inf" : "-inf");
    else if (dt == ED_I32) snprintf(buf, ED_NUM_BUF, "%ld", (long)ed_to_i32(v));
    else shortest(v, dt == ED_F32, buf);
    return buf;
}

void ed_text_quote(ed_strbuf *b, const char *s)
{
    ed_sb_putc(b, '"');
    for (const unsigned char *c = (const unsigned char *)(s ? s : ""); *c; c++) {
        if (*c == '"') ed_sb_puts(b, "\\\"");
        else if (*c == '\\') ed_sb_puts(b, "\\\\");
        else if (*c == '\n') ed_sb_puts(b, "\\n");
        else if (*c == '\t') ed_sb_puts(b, "\\t");
        else if (*c < 0x20 || *c >= 0x7f) ed_sb_printf(b, "\\x%02x", *c);
        else ed_sb_putc(b, (char)*c);
    }
    ed_sb_putc(b, '"');
}

static bool is_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }

bool ed_text_is_bare(const char *s)
{
    if (!s || !is_alpha((unsigned char)s[0])) return false;
    for (const char *c = s + 1; *c; c++)
        if (!is_alpha((unsigned char)*c) && !(*c >= '0' && *c <= '9') && *c != '.') return false;
    return true;
}

bool ed_text_has_debug_name(ed_op op) { return !(ed_ops[op].attrs & A_NAME); }

ed_node **ed_text_order(const ed_graph *g, int **num)
{
    *num = NULL;
    if (!g) {
        ed_fail("no graph (NULL)");
        return NULL;
    }
    /* ed_graph_topo reports a cycle but not a failed allocation: clear the message to
     * tell them apart, and put the caller's back on success. */
    char saved[ED_ERROR_MAX];
    snprintf(saved, sizeof saved, "%s", ed_last_error());
    ed_clear_error();
    ed_node **order = ed_graph_topo(g);
    int *nums = malloc((size_t)(g->nnodes ? g->nnodes : 1) * sizeof *nums);
    if (!order || !nums) {
        if (order || !ed_last_error()[0]) ed_fail("out of memory");
        free(order);
        free(nums);
        return NULL;
    }
    if (saved[0]) ed_fail("%s", saved);
    for (int i = 0; i < g->nnodes; i++) nums[order[i]->id] = i;
    *num = nums;
    return order;
}

/* ---- nodes ------------------------------------------------------------------------ */

static void print_values(ed_strbuf *b, const ed_node *n)
{
    char num[ED_NUM_BUF];
    const double *d = n->attr.data;
    if (n->attr.ndata == 1 && d) {
        ed_sb_printf(b, " %s", ed_text_number(d[0], n->dtype, num));
        return;
    }
    ed_sb_puts(b, " [");
    for (int64_t i = 0; d && i < n->attr.ndata; i++)
        ed_sb_printf(b, i ? ", %s" : "%s", ed_text_number(d[i], n->dtype, num));
    ed_sb_putc(b, ']');
}

static void print_ints(ed_strbuf *b, const int64_t *v, int n)
{
    ed_sb_putc(b, '[');
    for (int i = 0; i < n; i++) ed_sb_printf(b, i ? ", %lld" : "%lld", (long long)v[i]);
    ed_sb_putc(b, ']');
}

static void print_axes(ed_strbuf *b, uint32_t mask)
{
    int64_t axes[32];
    int n = 0;
    for (int i = 0; i < 32; i++)
        if (mask >> i & 1) axes[n++] = i;
    print_ints(b, axes, n);
}

static void print_perm(ed_strbuf *b, const int *perm, int rank)
{
    int64_t v[ED_MAX_RANK];
    for (int i = 0; i < rank; i++) v[i] = perm[i];
    print_ints(b, v, rank);
}

static void print_key_value(ed_strbuf *b, ed_text_key key, const ed_node *n)
{
    const ed_attrs *a = &n->attr;
    int rank = n->shape.rank < 0 || n->shape.rank > ED_MAX_RANK ? 0 : n->shape.rank;
    char num[ED_NUM_BUF];
    switch (key) {
    case ED_KEY_INIT: ed_sb_puts(b, ed_init_name(a->init.kind)); break;
    case ED_KEY_SCALE: ed_sb_puts(b, ed_text_number(a->init.scale, ED_F64, num)); break;
    case ED_KEY_AXES: print_axes(b, a->axes); break;
    case ED_KEY_KEEPDIMS: ed_sb_puts(b, a->keepdims ? "true" : "false"); break;
    case ED_KEY_AXIS: ed_sb_printf(b, "%d", a->axis); break;
    case ED_KEY_PERM: print_perm(b, a->perm, rank); break;
    case ED_KEY_START: print_ints(b, a->start, rank); break;
    case ED_KEY_STOP: print_ints(b, a->stop, rank); break;
    case ED_KEY_STEP: print_ints(b, a->step, rank); break;
    case ED_KEY_PAD_LO: print_ints(b, a->pad_lo, rank); break;
    case ED_KEY_PAD_HI: print_ints(b, a->pad_hi, rank); break;
    case ED_KEY_PAD_VALUE: ed_sb_puts(b, ed_text_number(a->pad_value, ED_F64, num)); break;
    case ED_KEY_ALPHA: ed_sb_puts(b, ed_text_number(a->alpha, ED_F64, num)); break;
    case ED_KEY_APPROX: ed_sb_puts(b, a->approx ? "tanh" : "erf"); break;
    case ED_KEY_LO: ed_sb_puts(b, ed_text_number(a->lo, ED_F64, num)); break;
    case ED_KEY_HI: ed_sb_puts(b, ed_text_number(a->hi, ED_F64, num)); break;
    case ED_KEY_P: ed_sb_puts(b, ed_text_number(a->p, ED_F64, num)); break;
    case ED_KEY_STREAM: ed_sb_printf(b, "%lu", (unsigned long)a->stream); break;
    case ED_KEY_TA: ed_sb_puts(b, "true"); break;
    case ED_KEY_TB: ed_sb_puts(b, "true"); break;
    case ED_KEY_TRIPS: ed_sb_printf(b, "%lld", (long long)a->trips); break;
    case ED_KEY_NCARRIED: ed_sb_printf(b, "%d", a->ncarried); break;
    case ED_KEY_INDEX: ed_sb_printf(b, "%d", a->index); break;
    case ED_KEY_STRIDE: print_ints(b, a->stride, 2); break;
    case ED_KEY_PADDING: print_ints(b, a->padding, 2); break;
    case ED_KEY_DILATION: print_ints(b, a->dilation, 2); break;
    case ED_KEY_GROUPS: ed_sb_printf(b, "%lld", (long long)a->groups); break;
    case ED_KEY_OUT_PAD: print_ints(b, a->out_pad, 2); break;
    case ED_KEY_KERNEL: print_ints(b, a->kernel, 2); break;
    case ED_KEY_COUNT: break;
    }
}

/* Optional keys are booleans that print only when set. */
static bool key_is_set(ed_text_key key, const ed_node *n)
{
    if (key == ED_KEY_TA) return n->attr.ta;
    if (key == ED_KEY_TB) return n->attr.tb;
    return true;
}

static void print_attrs(ed_strbuf *b, const ed_node *n)
{
    unsigned groups = ed_ops[n->op].attrs;
    bool any = false;
    for (int k = 0; k < ED_KEY_COUNT; k++) {
        if (!(groups & ed_text_keys[k].group) || !key_is_set((ed_text_key)k, n)) continue;
        ed_sb_printf(b, "%s%s=", any ? ", " : " {", ed_text_keys[k].name);
        print_key_value(b, (ed_text_key)k, n);
        any = true;
    }
    if (any) ed_sb_putc(b, '}');
}

/* The print number of an input; -1 marks a node that is not in the graph. */
static int ref(const ed_graph *g, const int *num, const ed_node *x)
{
    if (!x || x->graph != g || x->id < 0 || x->id >= g->nnodes) return -1;
    return num[x->id];
}

/* How statements print: with debug names (the graph's text) or without (a key); flat:
 * NULL, or a shape whose types print as `f32[*]` (ed_node_key_flat). */
typedef struct {
    bool names;
    const ed_shape *flat;
} print_mode;

static bool print_nodes(ed_strbuf *b, const ed_graph *g, int indent, const print_mode *m);

/* n's type, `f32[*]` when its shape is the flat one. */
static const char *type_str(const ed_node *n, const print_mode *m, char *buf, size_t size)
{
    if (m->flat && ed_shape_eq(n->shape, *m->flat)) {
        snprintf(buf, size, "%s[*]", ed_dtype_name(n->dtype));
        return buf;
    }
    return ed_node_type_str(n, buf, size);
}

/* A loop's or fused node's body: `graph @NAME {`, its statements indented one step more, `}`.
 * Without names (ed_node_key): `@_` and no debug names, which do not change what it computes. */
static bool print_body(ed_strbuf *b, const ed_graph *body, int indent, const print_mode *m)
{
    ed_sb_puts(b, " graph @");
    if (!m->names) ed_sb_putc(b, '_');
    else if (ed_text_is_bare(body->name)) ed_sb_puts(b, body->name);
    else ed_text_quote(b, body->name);
    ed_sb_puts(b, " {\n");
    if (!print_nodes(b, body, indent + 2, m)) return false;
    ed_sb_printf(b, "%*s}", indent, "");
    return true;
}

static bool print_node(ed_strbuf *b, const ed_graph *g, const ed_node *n, const int *num, int indent,
                       const print_mode *m)
{
    const ed_op_info *info = &ed_ops[n->op];
    ed_sb_printf(b, "%*s%%%d = %s", indent, "", num[n->id], info->name);
    if (info->attrs & A_NAME) {
        ed_sb_putc(b, ' ');
        ed_text_quote(b, n->attr.name);
    }
    if (info->attrs & A_DATA) print_values(b, n);
    for (int k = 0; k < n->nin; k++) ed_sb_printf(b, k ? ", %%%d" : " %%%d", ref(g, num, n->in[k]));
    print_attrs(b, n);
    if (info->attrs & (A_BODY | A_EXPR)) {
        if (!n->attr.body) ed_sb_puts(b, " graph @missing {\n}"); /* the verifier refuses it */
        else if (!print_body(b, n->attr.body, indent, m)) return false;
    }
    if (!(info->flags & F_TUPLE)) { /* a tuple's own type is storage, not a value */
        char type[160];
        ed_sb_printf(b, " : %s", type_str(n, m, type, sizeof type));
    }
    if (m->names && ed_text_has_debug_name(n->op) && n->name) {
        ed_sb_putc(b, ' ');
        ed_text_quote(b, n->name);
    }
    ed_sb_putc(b, '\n');
    return true;
}

/* ---- graphs ------------------------------------------------------------------------ */

static void print_header(ed_strbuf *b, const ed_graph *g)
{
    if (g->failed) {
        /* Keep the comment on one line whatever the message holds. */
        ed_sb_puts(b, "# error: ");
        for (const char *c = g->error; *c; c++) ed_sb_putc(b, (unsigned char)*c < 0x20 ? ' ' : *c);
        ed_sb_putc(b, '\n');
    }
    ed_sb_puts(b, "graph @");
    if (ed_text_is_bare(g->name)) ed_sb_puts(b, g->name);
    else ed_text_quote(b, g->name);
    ed_sb_puts(b, " {\n");
}

static void print_bindings(ed_strbuf *b, const ed_graph *g, const int *num, int indent)
{
    for (int i = 0; i < g->noutputs; i++) {
        const ed_binding *o = &g->outputs[i];
        ed_sb_printf(b, "%*sout ", indent, "");
        if (ed_text_is_bare(o->name)) ed_sb_puts(b, o->name);
        else ed_text_quote(b, o->name);
        ed_sb_printf(b, " = %%%d\n", ref(g, num, o->node));
    }
    for (int i = 0; i < g->nupdates; i++) {
        ed_sb_printf(b, "%*supdate ", indent, "");
        ed_text_quote(b, g->updates[i].name);
        ed_sb_printf(b, " = %%%d\n", ref(g, num, g->updates[i].node));
    }
}

/* The statements of g (nodes, then bindings), each line indented by indent spaces. */
static bool print_nodes(ed_strbuf *b, const ed_graph *g, int indent, const print_mode *m)
{
    int *num;
    ed_node **order = ed_text_order(g, &num);
    if (!order) return false;
    bool ok = true;
    for (int i = 0; i < g->nnodes && ok; i++) ok = print_node(b, g, order[i], num, indent, m);
    print_bindings(b, g, num, indent);
    free(order);
    free(num);
    return ok;
}

char *ed_graph_print(const ed_graph *g)
{
    if (!g) {
        ed_fail("no graph (NULL)");
        return NULL;
    }
    ed_strbuf b = {0};
    print_header(&b, g);
    if (!print_nodes(&b, g, 2, &(print_mode){.names = true})) {
        ed_sb_free(&b);
        return NULL;
    }
    ed_sb_puts(&b, "}\n");
    if (b.failed) {
        ed_sb_free(&b);
        ed_fail("print: out of memory printing graph @%s", g->name);
        return NULL;
    }
    return b.s;
}

static char *node_key(const ed_node *n, const print_mode *m)
{
    ed_strbuf b = {0};
    int *num = calloc((size_t)n->graph->nnodes, sizeof *num); /* every value prints as %0 */
    bool ok = num && print_node(&b, n->graph, n, num, 0, m);
    free(num);
    for (int k = 0; ok && k < n->nin; k++) {
        char type[160];
        ed_sb_printf(&b, "in%d : %s\n", k, type_str(n->in[k], m, type, sizeof type));
    }
    if (!ok || b.failed) {
        ed_sb_free(&b);
        ed_fail("print: out of memory");
        return NULL;
    }
    return b.s;
}

char *ed_node_key(const ed_node *n) { return node_key(n, &(print_mode){0}); }

char *ed_node_key_flat(const ed_node *n) { return node_key(n, &(print_mode){.flat = &n->shape}); }

int ed_graph_write(const ed_graph *g, FILE *f)
{
    if (!f) return ed_fail("write: no file (NULL)");
    char *text = ed_graph_print(g);
    if (!text) return ED_ERR;
    size_t len = strlen(text);
    bool ok = fwrite(text, 1, len, f) == len && fflush(f) == 0;
    free(text);
    return ok ? ED_OK : ed_fail("write: cannot write graph @%s", g->name);
}
