/* Loops in the IR: the shape rules of loop and get, and the helpers every layer uses
 * to read a loop's body (its inputs in order, its results and their layout). The body
 * layout is documented in ir.h. */
#include "ir/ir.h"
#include "runtime/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Write a checker's message into msg and return false (shared by the loop and fused
 * body checks). */
bool ed_body_fail(char *msg, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, size, fmt, ap);
    va_end(ap);
    return false;
}

int ed_loop_body_ninputs(const ed_graph *body)
{
    int n = 0;
    for (int i = 0; body && i < body->nnodes; i++) n += body->nodes[i]->op == ED_OP_INPUT;
    return n;
}

ed_node *ed_loop_body_input(const ed_graph *body, int k)
{
    for (int i = 0; body && i < body->nnodes; i++)
        if (body->nodes[i]->op == ED_OP_INPUT && k-- == 0) return body->nodes[i];
    return NULL;
}

int ed_loop_nresults(const ed_node *loop)
{
    return loop && loop->op == ED_OP_LOOP && loop->attr.body ? loop->attr.body->noutputs : 0;
}

/* Result k's type from the body's outputs: carried as is, stacked with [trips] in front. */
static bool result_type(const ed_graph *body, int ncarried, int64_t trips, int k, ed_dtype *dt, ed_shape *s)
{
    if (!body || k < 0 || k >= body->noutputs || !body->outputs[k].node) return false;
    const ed_node *v = body->outputs[k].node;
    *dt = v->dtype;
    *s = v->shape;
    if (k >= ncarried) {
        if (s->rank >= ED_MAX_RANK) return false;
        memmove(&s->dim[1], &s->dim[0], (size_t)s->rank * sizeof s->dim[0]);
        s->dim[0] = trips;
        s->rank++;
    }
    return true;
}

bool ed_loop_result_type(const ed_node *loop, int k, ed_dtype *dt, ed_shape *shape)
{
    if (!loop || loop->op != ED_OP_LOOP) return false;
    return result_type(loop->attr.body, loop->attr.ncarried, loop->attr.trips, k, dt, shape);
}

static int64_t aligned(int64_t bytes) { return (bytes + ED_ALIGN - 1) / ED_ALIGN * ED_ALIGN; }

int64_t ed_loop_result_offset(const ed_node *loop, int k)
{
    int64_t off = 0;
    for (int j = 0; j < k; j++) {
        ed_dtype dt;
        ed_shape s;
        if (!ed_loop_result_type(loop, j, &dt, &s)) return -1;
        off += aligned(ed_shape_numel(s) * (int64_t)ed_dtype_size(dt));
    }
    return off;
}

bool ed_graph_has_random(const ed_graph *g)
{
    for (int i = 0; g && i < g->nnodes; i++) {
        const ed_node *n = g->nodes[i];
        if (ed_ops[n->op].kind == ED_KIND_RANDOM) return true;
        if (n->op == ED_OP_LOOP && ed_graph_has_random(n->attr.body)) return true;
    }
    return false;
}

/* ---- shape rules -------------------------------------------------------------- */

static const char *ty(const ed_node *n, char *buf, size_t size) { return ed_node_type_str(n, buf, size); }

/* The body's inputs match the loop's: index, then each loop input in order. */
static bool check_inputs(const ed_graph *body, ed_node *const *in, int nin, int nc, char *msg, size_t size)
{
    int have = ed_loop_body_ninputs(body);
    if (have != 1 + nin)
        return ed_body_fail(msg, size,
                            "body @%s has %d inputs, but the loop needs %d: the index, %d carried and %d captured",
                            body->name, have, 1 + nin, nc, nin - nc);
    char t1[96], t2[96];
    const ed_node *index = ed_loop_body_input(body, 0);
    if (index->dtype != ED_I32 || index->shape.rank != 0)
        return ed_body_fail(msg, size, "the body's first input (the index, \"%s\") must be i32[], got %s",
                            index->attr.name, ty(index, t1, sizeof t1));
    for (int k = 0; k < nin; k++) {
        const ed_node *b = ed_loop_body_input(body, k + 1);
        if (b->dtype != in[k]->dtype || !ed_shape_eq(b->shape, in[k]->shape))
            return ed_body_fail(msg, size, "%s value %d is %s but the body's input \"%s\" is %s",
                                k < nc ? "carried" : "captured", k < nc ? k : k - nc, ty(in[k], t1, sizeof t1),
                                b->attr.name, ty(b, t2, sizeof t2));
    }
    return true;
}

static bool check_outputs(const ed_graph *body, ed_node *const *in, int nc, int64_t trips, char *msg, size_t size)
{
    if (body->noutputs < nc)
        return ed_body_fail(msg, size, "body @%s has %d outputs, fewer than the %d carried values", body->name,
                            body->noutputs, nc);
    char t1[96], t2[96];
    for (int k = 0; k < body->noutputs; k++) {
        const ed_node *v = body->outputs[k].node;
        if (k < nc && (v->dtype != in[k]->dtype || !ed_shape_eq(v->shape, in[k]->shape)))
            return ed_body_fail(msg, size, "carried value %d is %s but its next value (out %s) is %s", k,
                                ty(in[k], t1, sizeof t1), body->outputs[k].name, ty(v, t2, sizeof t2));
        if (k >= nc && v->shape.rank >= ED_MAX_RANK)
            return ed_body_fail(msg, size, "stacked output %s is %s: stacking adds an axis beyond rank %d",
                                body->outputs[k].name, ty(v, t1, sizeof t1), ED_MAX_RANK);
        (void)trips;
    }
    return true;
}

/* Bodies read outer values only through their inputs. */
static bool check_leaves(const ed_graph *body, char *msg, size_t size)
{
    for (int i = 0; i < body->nnodes; i++) {
        const ed_node *n = body->nodes[i];
        if (n->op == ED_OP_PARAM || n->op == ED_OP_STATE)
            return ed_body_fail(msg, size,
                                "body @%s has %s \"%s\": build it in the outer graph and capture it "
                                "(ed_loop_capture)",
                                body->name, ed_op_name(n->op), n->attr.name);
    }
    if (body->nupdates)
        return ed_body_fail(msg, size, "body @%s has update bindings (\"%s\"); a loop body has none", body->name,
                            body->updates[0].name);
    return true;
}

bool ed_loop_rule(ed_op op, ed_node *const *in, int nin, const ed_attrs *a, ed_dtype *dt, ed_shape *out, char *msg,
                  size_t size)
{
    (void)op;
    const ed_graph *body = a->body;
    if (!body) return ed_body_fail(msg, size, "has no body graph");
    if (body->failed) return ed_body_fail(msg, size, "body @%s has an error: %s", body->name, body->error);
    if (a->trips < 0 || a->trips > INT32_MAX)
        return ed_body_fail(msg, size, "trips must be 0..%d (the index is i32), got %lld", INT32_MAX,
                            (long long)a->trips);
    if (a->ncarried < 0 || a->ncarried > nin)
        return ed_body_fail(msg, size, "ncarried must be 0..%d (the number of inputs), got %d", nin, a->ncarried);
    if (!check_leaves(body, msg, size) || !check_inputs(body, in, nin, a->ncarried, msg, size) ||
        !check_outputs(body, in, a->ncarried, a->trips, msg, size))
        return false;
    if (ed_graph_verify(body) != ED_OK) return ed_body_fail(msg, size, "body: %s", ed_last_error());
    /* The node's own type is its storage: every result, ED_ALIGN aligned, as f32 words. */
    int64_t total = 0;
    for (int k = 0; k < body->noutputs; k++) {
        ed_dtype rdt;
        ed_shape s;
        if (!result_type(body, a->ncarried, a->trips, k, &rdt, &s)) return ed_body_fail(msg, size, "bad result %d", k);
        int64_t numel = ed_shape_numel(s), es = (int64_t)ed_dtype_size(rdt);
        if (numel < 0 || numel > ((INT64_C(1) << 60) - total) / es)
            return ed_body_fail(msg, size, "results are too large (%d stacked over %lld trips)", k,
                                (long long)a->trips);
        total += aligned(numel * es);
    }
    *dt = ED_F32;
    *out = (ed_shape){.rank = 1, .dim = {total / 4}};
    return true;
}

bool ed_get_rule(ed_op op, ed_node *const *in, int nin, const ed_attrs *a, ed_dtype *dt, ed_shape *out, char *msg,
                 size_t size)
{
    (void)op, (void)nin;
    const ed_node *t = in[0];
    char buf[96];
    if (t->op != ED_OP_LOOP)
        return ed_body_fail(msg, size, "reads a result of a loop, got %s %s", ed_op_name(t->op),
                            ty(t, buf, sizeof buf));
    int n = ed_loop_nresults(t);
    if (a->index < 0 || a->index >= n)
        return ed_body_fail(msg, size, "index %d is out of range: the loop (%%%d) has %d results", a->index, t->id, n);
    if (!ed_loop_result_type(t, a->index, dt, out)) return ed_body_fail(msg, size, "bad loop result %d", a->index);
    return true;
}
