/* Graphviz output: one box per node (numbered as in the text form), an edge per input
 * use, ellipses for outputs and dashed edges into ellipses for state updates. */
#include "ir/text.h"
#include "runtime/error.h"

#include <stdio.h>
#include <stdlib.h>

static const char *fill_color(const ed_node *n)
{
    switch (n->op) {
    case ED_OP_INPUT: return "lightblue";
    case ED_OP_PARAM: return "gold";
    case ED_OP_STATE: return "orange";
    case ED_OP_CONST: return "lightgray";
    case ED_OP_LOOP: return "palegreen";
    case ED_OP_FUSED: return "khaki";
    default: return ed_ops[n->op].kind == ED_KIND_RANDOM ? "pink" : "white";
    }
}

/* Writes raw label text as a DOT string: quotes and backslashes escaped, newlines as
 * DOT's \n line breaks. Names inside were already quoted in the text form's escapes,
 * so no control byte reaches here except the line breaks we put in. */
static void dot_string(ed_strbuf *b, const char *s, size_t n)
{
    ed_sb_putc(b, '"');
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\n') ed_sb_puts(b, "\\n");
        else {
            if (s[i] == '"' || s[i] == '\\') ed_sb_putc(b, '\\');
            ed_sb_putc(b, s[i]);
        }
    }
    ed_sb_putc(b, '"');
}

/* "%3 matmul\nf32[4,8]", with the binding name of a leaf, the value of a one-value
 * const and, on a third line, a debug name. */
static void node_label(ed_strbuf *label, const ed_node *n, int num)
{
    char text[160];
    ed_sb_printf(label, "%%%d %s", num, ed_op_name(n->op));
    if (ed_ops[n->op].attrs & A_NAME) {
        ed_sb_putc(label, ' ');
        ed_text_quote(label, n->attr.name);
    }
    if (n->op == ED_OP_LOOP) ed_sb_printf(label, " x%lld", (long long)n->attr.trips);
    if (n->op == ED_OP_GET) ed_sb_printf(label, " %d", n->attr.index);
    if (ed_ops[n->op].attrs & A_CONV) {
        const ed_attrs *a = &n->attr;
        ed_sb_printf(label, " s%lldx%lld p%lldx%lld d%lldx%lld g%lld", (long long)a->stride[0], (long long)a->stride[1],
                     (long long)a->padding[0], (long long)a->padding[1], (long long)a->dilation[0],
                     (long long)a->dilation[1], (long long)a->groups);
    }
    if (n->op == ED_OP_CONST && n->attr.ndata == 1 && n->attr.data)
        ed_sb_printf(label, " %s", ed_text_number(n->attr.data[0], n->dtype, text));
    if (!(ed_ops[n->op].flags & F_TUPLE)) ed_sb_printf(label, "\n%s", ed_node_type_str(n, text, sizeof text));
    if (ed_text_has_debug_name(n->op) && n->name) {
        ed_sb_putc(label, '\n');
        ed_text_quote(label, n->name);
    }
}

static bool dot_nodes(ed_strbuf *b, const ed_graph *g, const char *prefix);

/* The body of loop or fused node n (named prefix + "n<num>") as a cluster. */
static bool dot_body(ed_strbuf *b, const ed_node *n, const char *loop_name)
{
    const ed_graph *body = n->attr.body;
    if (!body) return true;
    char prefix[300]; /* loop_name is at most 255 bytes */
    snprintf(prefix, sizeof prefix, "%.255s_b_", loop_name);
    ed_sb_printf(b, "  subgraph cluster_%s {\n  label=", loop_name);
    ed_strbuf label = {0};
    ed_sb_puts(&label, "body @");
    ed_sb_puts(&label, body->name);
    dot_string(b, label.s ? label.s : "", label.len);
    b->failed |= label.failed;
    ed_sb_free(&label);
    ed_sb_puts(b, ";\n  style=rounded;\n");
    if (!dot_nodes(b, body, prefix)) return false;
    ed_sb_puts(b, "  }\n");
    return true;
}

static bool dot_node(ed_strbuf *b, const ed_graph *g, const ed_node *n, const int *num, const char *prefix)
{
    ed_strbuf label = {0};
    node_label(&label, n, num[n->id]);
    ed_sb_printf(b, "  %sn%d [label=", prefix, num[n->id]);
    dot_string(b, label.s ? label.s : "", label.len);
    ed_sb_printf(b, ", fillcolor=%s];\n", fill_color(n));
    b->failed |= label.failed;
    ed_sb_free(&label);
    for (int k = 0; k < n->nin; k++) {
        const ed_node *x = n->in[k];
        if (x && x->graph == g && x->id >= 0 && x->id < g->nnodes)
            ed_sb_printf(b, "  %sn%d -> %sn%d;\n", prefix, num[x->id], prefix, num[n->id]);
    }
    if (!(ed_ops[n->op].attrs & (A_BODY | A_EXPR)) || !n->attr.body) return true;
    char name[256];
    snprintf(name, sizeof name, "%sn%d", prefix, num[n->id]);
    if (!dot_body(b, n, name)) return false;
    /* The body's outputs feed the loop; the body's own numbering names them. */
    int *bnum;
    ed_node **border = ed_text_order(n->attr.body, &bnum);
    if (!border) return false;
    for (int i = 0; i < n->attr.body->noutputs; i++)
        ed_sb_printf(b, "  %s_b_n%d -> %s [style=dashed];\n", name, bnum[n->attr.body->outputs[i].node->id], name);
    free(border);
    free(bnum);
    return true;
}

/* An ellipse named id (out0, update0) fed by the binding's node. */
static void dot_binding(ed_strbuf *b, const ed_graph *g, const ed_binding *bind, const char *kind, int i,
                        const int *num)
{
    bool update = kind[0] == 'u';
    ed_strbuf label = {0};
    ed_sb_printf(&label, "%s ", kind);
    if (!update && ed_text_is_bare(bind->name)) ed_sb_puts(&label, bind->name);
    else ed_text_quote(&label, bind->name);
    ed_sb_printf(b, "  %s%d [shape=ellipse, label=", kind, i);
    dot_string(b, label.s ? label.s : "", label.len);
    ed_sb_puts(b, ", fillcolor=white];\n");
    b->failed |= label.failed;
    ed_sb_free(&label);
    const ed_node *x = bind->node;
    if (x && x->graph == g && x->id >= 0 && x->id < g->nnodes)
        ed_sb_printf(b, "  n%d -> %s%d%s;\n", num[x->id], kind, i, update ? " [style=dashed]" : "");
}

/* The nodes of a loop body, named with prefix. */
static bool dot_nodes(ed_strbuf *b, const ed_graph *g, const char *prefix)
{
    int *num;
    ed_node **order = ed_text_order(g, &num);
    if (!order) return false;
    bool ok = true;
    for (int i = 0; i < g->nnodes && ok; i++) ok = dot_node(b, g, order[i], num, prefix);
    free(order);
    free(num);
    return ok;
}

char *ed_graph_dot(const ed_graph *g)
{
    int *num;
    ed_node **order = ed_text_order(g, &num);
    if (!order) return NULL;
    ed_strbuf b = {0}, name = {0};
    ed_text_quote(&name, g->name); /* escapes as in the text form; drop its quotes */
    ed_sb_puts(&b, "digraph ");
    dot_string(&b, name.failed ? "" : name.s + 1, name.failed ? 0 : name.len - 2);
    b.failed |= name.failed;
    ed_sb_free(&name);
    ed_sb_puts(&b, " {\n  node [shape=box, style=filled, fontname=\"monospace\"];\n");
    bool ok = true;
    for (int i = 0; i < g->nnodes && ok; i++) ok = dot_node(&b, g, order[i], num, "");
    for (int i = 0; i < g->noutputs; i++) dot_binding(&b, g, &g->outputs[i], "out", i, num);
    for (int i = 0; i < g->nupdates; i++) dot_binding(&b, g, &g->updates[i], "update", i, num);
    ed_sb_puts(&b, "}\n");
    free(order);
    free(num);
    if (!ok) {
        ed_sb_free(&b);
        return NULL;
    }
    if (b.failed) {
        ed_sb_free(&b);
        ed_fail("dot: out of memory writing graph @%s", g->name);
        return NULL;
    }
    return b.s;
}
