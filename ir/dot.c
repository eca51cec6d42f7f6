/* Graphviz output: one box per node (numbered as in the text form), an edge per input
 * use, ellipses for outputs and dashed edges into ellipses for state updates. */
#include "ir/text.h"
#include "runtime/error.h"

#include <stdlib.h>

static const char *fill_color(const ed_node *n)
{
    switch (n->op) {
    case ED_OP_INPUT: return "lightblue";
    case ED_OP_PARAM: return "gold";
    case ED_OP_STATE: return "orange";
    case ED_OP_CONST: return "lightgray";
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
    if (n->op == ED_OP_CONST && n->attr.ndata == 1 && n->attr.data)
        ed_sb_printf(label, " %s", ed_text_number(n->attr.data[0], n->dtype, text));
    ed_sb_printf(label, "\n%s", ed_node_type_str(n, text, sizeof text));
    if (ed_text_has_debug_name(n->op) && n->name) {
        ed_sb_putc(label, '\n');
        ed_text_quote(label, n->name);
    }
}

static void dot_node(ed_strbuf *b, const ed_graph *g, const ed_node *n, const int *num)
{
    ed_strbuf label = {0};
    node_label(&label, n, num[n->id]);
    ed_sb_printf(b, "  n%d [label=", num[n->id]);
    dot_string(b, label.s ? label.s : "", label.len);
    ed_sb_printf(b, ", fillcolor=%s];\n", fill_color(n));
    b->failed |= label.failed;
    ed_sb_free(&label);
    for (int k = 0; k < n->nin; k++) {
        const ed_node *x = n->in[k];
        if (x && x->graph == g && x->id >= 0 && x->id < g->nnodes)
            ed_sb_printf(b, "  n%d -> n%d;\n", num[x->id], num[n->id]);
    }
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
    for (int i = 0; i < g->nnodes; i++) dot_node(&b, g, order[i], num);
    for (int i = 0; i < g->noutputs; i++) dot_binding(&b, g, &g->outputs[i], "out", i, num);
    for (int i = 0; i < g->nupdates; i++) dot_binding(&b, g, &g->updates[i], "update", i, num);
    ed_sb_puts(&b, "}\n");
    free(order);
    free(num);
    if (b.failed) {
        ed_sb_free(&b);
        ed_fail("dot: out of memory writing graph @%s", g->name);
        return NULL;
    }
    return b.s;
}
