/* Shape and dtype rules: one per rule class of ops.def, and one per op of class OWN.
 * Each rule checks its inputs and attributes and writes the output type, or writes a
 * message and fails.
 * Constructors, the text parser and the verifier all go through ed_infer. */
#include "ir/conv.h"
#include "ir/ir.h"
#include "ir/rule.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>

bool ed_rule_fail(char *msg, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, size, fmt, ap);
    va_end(ap);
    return false;
}

const char *ed_rule_type(const ed_node *n)
{
    static _Thread_local char bufs[4][96];
    static _Thread_local int next;
    char *b = bufs[next++ & 3];
    return ed_node_type_str(n, b, sizeof bufs[0]);
}

typedef bool (*rule_fn)(ed_op op, ed_node *const *in, int nin, const ed_attrs *a, ed_dtype *dt, ed_shape *out,
                        char *msg, size_t size);

static const char *shape_ty(ed_dtype dt, ed_shape s)
{
    static _Thread_local char bufs[2][96];
    static _Thread_local int next;
    char *b = bufs[next++ & 1];
    return ed_type_str(dt, s, b, sizeof bufs[0]);
}

static bool valid_shape(ed_shape s)
{
    if (s.rank < 0 || s.rank > ED_MAX_RANK) return false;
    for (int i = 0; i < s.rank; i++)
        if (s.dim[i] < 0) return false;
    return true;
}

static bool valid_dtype(ed_dtype t) { return (unsigned)t < ED_DTYPE_COUNT; }

static bool check_float(ed_op op, const ed_node *x, char *msg, size_t size)
{
    if ((ed_ops[op].flags & F_FLOAT) && !ed_dtype_is_float(x->dtype))
        return ed_rule_fail(msg, size, "needs a float dtype, got %s (use cast)", ed_rule_type(x));
    return true;
}

bool ed_broadcast_shapes(ed_shape a, ed_shape b, ed_shape *out)
{
    ed_shape r = {.rank = a.rank > b.rank ? a.rank : b.rank};
    for (int i = 0; i < r.rank; i++) {
        int ia = a.rank - r.rank + i, ib = b.rank - r.rank + i;
        int64_t da = ia >= 0 ? a.dim[ia] : 1, db = ib >= 0 ? b.dim[ib] : 1;
        if (da != db && da != 1 && db != 1) return false;
        r.dim[i] = da == 1 ? db : da;
    }
    *out = r;
    return true;
}

/* ---- leaves and random ops: the type comes from the attributes ------------ */

static bool rule_typed_leaf(ed_op op, ed_node *const *in, int nin, const ed_attrs *a, ed_dtype *dt, ed_shape *out,
                            char *msg, size_t size)
{
    (void)in, (void)nin;
    if (!valid_dtype(a->dtype)) return ed_rule_fail(msg, size, "bad dtype %d", (int)a->dtype);
    if (!valid_shape(a->shape))
        return ed_rule_fail(msg, size, "bad shape (rank %d; rank must be 0..%d and dims >= 0)", a->shape.rank,
                            ED_MAX_RANK);
    if ((ed_ops[op].flags & F_FLOAT) && !ed_dtype_is_float(a->dtype))
        return ed_rule_fail(msg, size, "needs a float dtype, got %s", ed_dtype_name(a->dtype));
    if (op == ED_OP_CONST) {
        int64_t n = ed_shape_numel(a->shape);
        if (a->ndata != 1 && a->ndata != n)
            return ed_rule_fail(msg, size, "has %lld values for %s (give 1 value or %lld)", (long long)a->ndata,
                                shape_ty(a->dtype, a->shape), (long long)n);
        if (!a->data) return ed_rule_fail(msg, size, "has no values");
    }
    if ((op == ED_OP_PARAM || op == ED_OP_STATE) && (unsigned)a->init.kind >= ED_INIT_COUNT)
        return ed_rule_fail(msg, size, "bad initializer %d", (int)a->init.kind);
    if (op == ED_OP_PARAM && !ed_dtype_is_float(a->dtype) && !ed_dtype_is_16bit(a->dtype))
        return ed_rule_fail(msg, size, "trainable params must be float, got %s", ed_dtype_name(a->dtype));
    if (op == ED_OP_RAND && !(a->lo <= a->hi))
        return ed_rule_fail(msg, size, "needs lo <= hi, got lo=%g hi=%g", a->lo, a->hi);
    if (op == ED_OP_RANDINT) {
        if (a->dtype != ED_I32) return ed_rule_fail(msg, size, "gives i32, not %s", ed_dtype_name(a->dtype));
        if (!(a->lo < a->hi) || a->lo != floor(a->lo) || a->hi != floor(a->hi) || a->lo < INT32_MIN ||
            a->hi > (double)INT32_MAX + 1)
            return ed_rule_fail(msg, size, "needs integers lo < hi within i32, got lo=%g hi=%g", a->lo, a->hi);
    }
    if (op == ED_OP_BERNOULLI && !(a->p >= 0 && a->p <= 1))
        return ed_rule_fail(msg, size, "needs 0 <= p <= 1, got p=%g", a->p);
    *dt = a->dtype;
    *out = a->shape;
    return true;
}

/* ---- elementwise ------------------------------------------------------------ */

static bool rule_binary(ed_op op, ed_node *const *in, int nin, const ed_attrs *a, ed_dtype *dt, ed_shape *out,
                        char *msg, size_t size)
{
    (void)nin, (void)a;
    const ed_node *x = in[0], *y = in[1];
    if (x->dtype != y->dtype)
        return ed_rule_fail(msg, size, "dtypes differ: %s vs %s (use cast)", ed_rule_type(x), ed_rule_type(y));
    if (!ed_broadcast_shapes(x->shape, y->shape, out))
        return ed_rule_fail(msg, size, "shapes do not broadcast: %s vs %s", ed_rule_type(x), ed_rule_type(y));
    if (!check_float(op, x, msg, size)) return false;
    *dt = ed_ops[op].rule == ED_RULE_COMPARE ? ED_I32 : x->dtype;
    return true;
}

static bool rule_where(ed_op op, ed_node *const *in, int nin, const ed_attrs *a, ed_dtype *dt, ed_shape *out, char *msg,
                       size_t size)
{
    (void)op, (void)nin, (void)a;
    const ed_node *c = in[0], *x = in[1], *y = in[2];
    if (c->dtype != ED_I32)
        return ed_rule_fail(msg, size, "condition must be i32 (a comparison), got %s", ed_rule_type(c));
    if (x->dtype != y->dtype)
        return ed_rule_fail(msg, size, "dtypes differ: %s vs %s", ed_rule_type(x), ed_rule_type(y));
    ed_shape s;
    if (!ed_broadcast_shapes(c->shape, x->shape, &s) || !ed_broadcast_shapes(s, y->shape, out))
        return ed_rule_fail(msg, size, "shapes do not broadcast: %s, %s, %s", ed_rule_type(c), ed_rule_type(x),
                            ed_rule_type(y));
    *dt = x->dtype;
    return true;
}

static bool rule_unary(ed_op op, ed_node *const *in, int nin, const ed_attrs *a, ed_dtype *dt, ed_shape *out, char *msg,
                       size_t size)
{
    (void)nin;
    if (!check_float(op, in[0], msg, size)) return false;
    if (op == ED_OP_CLAMP && !(a->lo <= a->hi))
        return ed_rule_fail(msg, size, "needs lo <= hi, got lo=%g hi=%g", a->lo, a->hi);
    if (op == ED_OP_GELU && a->approx != 0 && a->approx != 1)
        return ed_rule_fail(msg, size, "approx must be 0 (erf) or 1 (tanh), got %d", a->approx);
    *dt = in[0]->dtype;
    *out = in[0]->shape;
    return true;
}

static bool rule_cast(ed_op op, ed_node *const *in, int nin, const ed_attrs *a, ed_dtype *dt, ed_shape *out, char *msg,
                      size_t size)
{
    (void)op, (void)nin;
    if (!valid_dtype(a->dtype)) return ed_rule_fail(msg, size, "bad target dtype %d", (int)a->dtype);
    *dt = a->dtype;
    *out = in[0]->shape;
    return true;
}

/* ---- reductions ------------------------------------------------------------- */

static bool rule_reduce(ed_op op, ed_node *const *in, int nin, const ed_attrs *a, ed_dtype *dt, ed_shape *out,
                        char *msg, size_t size)
{
    (void)nin;
    const ed_node *x = in[0];
    if (!check_float(op, x, msg, size)) return false;
    if (a->axes >> x->shape.rank)
        return ed_rule_fail(msg, size, "axes mask 0x%x names an axis beyond rank %d of %s", a->axes, x->shape.rank,
                            ed_rule_type(x));
    bool picks = op == ED_OP_MAX || op == ED_OP_MIN || op == ED_OP_ARGMAX || op == ED_OP_ARGMIN;
    ed_shape s = {0};
    for (int i = 0; i < x->shape.rank; i++) {
        bool reduced = a->axes >> i & 1;
        if (reduced && picks && x->shape.dim[i] == 0)
            return ed_rule_fail(msg, size, "reduces axis %d of size 0 in %s (no element to pick)", i, ed_rule_type(x));
        if (!reduced) s.dim[s.rank++] = x->shape.dim[i];
        else if (a->keepdims) s.dim[s.rank++] = 1;
    }
    *out = s;
    *dt = (op == ED_OP_ARGMAX || op == ED_OP_ARGMIN) ? ED_I32 : x->dtype;
    return true;
}

/* ---- movement --------------------------------------------------------------- */

static bool rule_reshape(ed_op op, ed_node *const *in, int nin, const ed_attrs *a, ed_dtype *dt, ed_shape *out,
                         char *msg, size_t size)
{
    (void)op, (void)nin;
    if (!valid_shape(a->shape)) return ed_rule_fail(msg, size, "bad target shape");
    if (ed_shape_numel(a->shape) != ed_shape_numel(in[0]->shape))
        return ed_rule_fail(msg, size, "element counts differ: %s to %s", ed_rule_type(in[0]),
                            shape_ty(in[0]->dtype, a->shape));
    *dt = in[0]->dtype;
    *out = a->shape;
    return true;
}

static bool rule_broadcast_to(ed_op op, ed_node *const *in, int nin, const ed_attrs *a, ed_dtype *dt, ed_shape *out,
                              char *msg, size_t size)
{
    (void)op, (void)nin;
    const ed_node *x = in[0];
    ed_shape t = a->shape, r;
    if (!valid_shape(t) || x->shape.rank > t.rank || !ed_broadcast_shapes(x->shape, t, &r) || !ed_shape_eq(r, t))
        return ed_rule_fail(msg, size, "cannot broadcast %s to %s", ed_rule_type(x), shape_ty(x->dtype, t));
    *dt = x->dtype;
    *out = t;
    return true;
}

static bool rule_transpose(ed_op op, ed_node *const *in, int nin, const ed_attrs *a, ed_dtype *dt, ed_shape *out,
                           char *msg, size_t size)
{
    (void)op, (void)nin;
    const ed_node *x = in[0];
    bool seen[ED_MAX_RANK] = {0};
    ed_shape s = {.rank = x->shape.rank};
    for (int i = 0; i < s.rank; i++) {
        int p = a->perm[i];
        if (p < 0 || p >= s.rank || seen[p])
            return ed_rule_fail(msg, size, "perm is not a permutation of 0..%d for %s", s.rank - 1, ed_rule_type(x));
        seen[p] = true;
        s.dim[i] = x->shape.dim[p];
    }
    *dt = x->dtype;
    *out = s;
    return true;
}

static bool rule_slice(ed_op op, ed_node *const *in, int nin, const ed_attrs *a, ed_dtype *dt, ed_shape *out, char *msg,
                       size_t size)
{
    (void)op, (void)nin;
    const ed_node *x = in[0];
    ed_shape s = {.rank = x->shape.rank};
    for (int i = 0; i < s.rank; i++) {
        int64_t d = x->shape.dim[i], b = a->start[i], e = a->stop[i], st = a->step[i];
        if (st < 1) return ed_rule_fail(msg, size, "axis %d: step must be >= 1, got %lld", i, (long long)st);
        if (b < 0 || b > d || e < b || e > d)
            return ed_rule_fail(msg, size, "axis %d: need 0 <= start <= stop <= %lld, got start=%lld stop=%lld in %s",
                                i, (long long)d, (long long)b, (long long)e, ed_rule_type(x));
        s.dim[i] = e == b ? 0 : (e - b - 1) / st + 1; /* no st - 1 to overflow */
    }
    *dt = x->dtype;
    *out = s;
    return true;
}

static bool rule_concat(ed_op op, ed_node *const *in, int nin, const ed_attrs *a, ed_dtype *dt, ed_shape *out,
                        char *msg, size_t size)
{
    (void)op;
    const ed_node *x = in[0];
    int ax = a->axis;
    if (ax < 0 || ax >= x->shape.rank)
        return ed_rule_fail(msg, size, "axis %d out of range for %s", ax, ed_rule_type(x));
    ed_shape s = x->shape;
    for (int k = 1; k < nin; k++) {
        const ed_node *y = in[k];
        if (y->dtype != x->dtype)
            return ed_rule_fail(msg, size, "dtypes differ: %s vs %s", ed_rule_type(x), ed_rule_type(y));
        bool ok = y->shape.rank == x->shape.rank;
        for (int i = 0; ok && i < s.rank; i++) ok = i == ax || y->shape.dim[i] == x->shape.dim[i];
        if (!ok)
            return ed_rule_fail(msg, size, "shapes differ off axis %d: %s vs %s (input %d)", ax, ed_rule_type(x),
                                ed_rule_type(y), k + 1);
        s.dim[ax] += y->shape.dim[ax];
    }
    *dt = x->dtype;
    *out = s;
    return true;
}

static bool rule_pad(ed_op op, ed_node *const *in, int nin, const ed_attrs *a, ed_dtype *dt, ed_shape *out, char *msg,
                     size_t size)
{
    (void)op, (void)nin;
    const ed_node *x = in[0];
    ed_shape s = x->shape;
    for (int i = 0; i < s.rank; i++) {
        if (a->pad_lo[i] < 0 || a->pad_hi[i] < 0)
            return ed_rule_fail(msg, size, "axis %d: padding must be >= 0 (use slice to crop), got %lld, %lld", i,
                                (long long)a->pad_lo[i], (long long)a->pad_hi[i]);
        if (a->pad_lo[i] > ED_MAX_NUMEL || a->pad_hi[i] > ED_MAX_NUMEL)
            return ed_rule_fail(msg, size, "axis %d: padding %lld, %lld is over the limit of 2^40", i,
                                (long long)a->pad_lo[i], (long long)a->pad_hi[i]);
        s.dim[i] += a->pad_lo[i] + a->pad_hi[i];
    }
    *dt = x->dtype;
    *out = s;
    return true;
}

/* ---- indexing --------------------------------------------------------------- */

/* x.shape[:axis] + idx.shape + x.shape[axis+1:] */
static bool take_shape(const ed_node *x, const ed_node *idx, int axis, ed_shape *s, char *msg, size_t size)
{
    if (axis < 0 || axis >= x->shape.rank)
        return ed_rule_fail(msg, size, "axis %d out of range for %s", axis, ed_rule_type(x));
    if (idx->dtype != ED_I32) return ed_rule_fail(msg, size, "indices must be i32, got %s", ed_rule_type(idx));
    int rank = x->shape.rank - 1 + idx->shape.rank;
    if (rank > ED_MAX_RANK)
        return ed_rule_fail(msg, size, "result rank %d exceeds %d: %s indexed by %s", rank, ED_MAX_RANK,
                            ed_rule_type(x), ed_rule_type(idx));
    s->rank = 0;
    for (int i = 0; i < axis; i++) s->dim[s->rank++] = x->shape.dim[i];
    for (int i = 0; i < idx->shape.rank; i++) s->dim[s->rank++] = idx->shape.dim[i];
    for (int i = axis + 1; i < x->shape.rank; i++) s->dim[s->rank++] = x->shape.dim[i];
    return true;
}

static bool rule_gather(ed_op op, ed_node *const *in, int nin, const ed_attrs *a, ed_dtype *dt, ed_shape *out,
                        char *msg, size_t size)
{
    (void)op, (void)nin;
    if (!take_shape(in[0], in[1], a->axis, out, msg, size)) return false;
    if (in[0]->shape.dim[a->axis] == 0 && ed_shape_numel(*out) > 0)
        return ed_rule_fail(msg, size, "gathers from axis %d of size 0 in %s", a->axis, ed_rule_type(in[0]));
    *dt = in[0]->dtype;
    return true;
}

static bool rule_scatter_add(ed_op op, ed_node *const *in, int nin, const ed_attrs *a, ed_dtype *dt, ed_shape *out,
                             char *msg, size_t size)
{
    (void)op, (void)nin;
    const ed_node *base = in[0], *idx = in[1], *upd = in[2];
    ed_shape want;
    if (!take_shape(base, idx, a->axis, &want, msg, size)) return false;
    if (upd->dtype != base->dtype)
        return ed_rule_fail(msg, size, "dtypes differ: %s vs %s", ed_rule_type(base), ed_rule_type(upd));
    if (!ed_shape_eq(want, upd->shape))
        return ed_rule_fail(msg, size, "updates are %s but %s indexed by %s on axis %d needs %s", ed_rule_type(upd),
                            ed_rule_type(base), ed_rule_type(idx), a->axis, shape_ty(base->dtype, want));
    *dt = base->dtype;
    *out = base->shape;
    return true;
}

static bool rule_one_hot(ed_op op, ed_node *const *in, int nin, const ed_attrs *a, ed_dtype *dt, ed_shape *out,
                         char *msg, size_t size)
{
    (void)op, (void)nin;
    const ed_node *idx = in[0];
    if (idx->dtype != ED_I32) return ed_rule_fail(msg, size, "indices must be i32, got %s", ed_rule_type(idx));
    if (!valid_dtype(a->dtype)) return ed_rule_fail(msg, size, "bad dtype");
    ed_shape t = a->shape;
    bool ok = valid_shape(t) && t.rank == idx->shape.rank + 1;
    for (int i = 0; ok && i < idx->shape.rank; i++) ok = t.dim[i] == idx->shape.dim[i];
    if (!ok)
        return ed_rule_fail(msg, size, "result %s must be the indices' shape %s plus one depth axis",
                            shape_ty(a->dtype, t), ed_rule_type(idx));
    *dt = a->dtype;
    *out = t;
    return true;
}

/* ---- matmul ------------------------------------------------------------------- */

static bool rule_matmul(ed_op op, ed_node *const *in, int nin, const ed_attrs *a, ed_dtype *dt, ed_shape *out,
                        char *msg, size_t size)
{
    (void)nin;
    const ed_node *x = in[0], *y = in[1];
    if (x->shape.rank < 2 || y->shape.rank < 2)
        return ed_rule_fail(msg, size, "operands need rank >= 2 (reshape vectors to [1,k] or [k,1]): %s x %s",
                            ed_rule_type(x), ed_rule_type(y));
    /* A 16-bit right operand (a weight kept bf16/f16) is widened to f32 as it is read. */
    bool widened = ed_dtype_is_16bit(y->dtype) && x->dtype == ED_F32;
    if (widened && a->tb)
        return ed_rule_fail(msg, size, "a 16-bit right operand transposed (tb) is not implemented: %s x %s^T",
                            ed_rule_type(x), ed_rule_type(y));
    if (x->dtype != y->dtype && !widened)
        return ed_rule_fail(msg, size, "dtypes differ: %s x %s", ed_rule_type(x), ed_rule_type(y));
    if (!check_float(op, x, msg, size)) return false;
    int rx = x->shape.rank, ry = y->shape.rank;
    int64_t m = x->shape.dim[rx - (a->ta ? 1 : 2)], kx = x->shape.dim[rx - (a->ta ? 2 : 1)];
    int64_t ky = y->shape.dim[ry - (a->tb ? 1 : 2)], n = y->shape.dim[ry - (a->tb ? 2 : 1)];
    if (kx != ky)
        return ed_rule_fail(msg, size, "inner dimensions differ: %s%s x %s%s", ed_rule_type(x), a->ta ? "^T" : "",
                            ed_rule_type(y), a->tb ? "^T" : "");
    ed_shape bx = {.rank = rx - 2}, by = {.rank = ry - 2}, b;
    for (int i = 0; i < rx - 2; i++) bx.dim[i] = x->shape.dim[i];
    for (int i = 0; i < ry - 2; i++) by.dim[i] = y->shape.dim[i];
    if (!ed_broadcast_shapes(bx, by, &b))
        return ed_rule_fail(msg, size, "batch dimensions do not broadcast: %s x %s", ed_rule_type(x), ed_rule_type(y));
    b.dim[b.rank++] = m;
    b.dim[b.rank++] = n;
    *dt = x->dtype;
    *out = b;
    return true;
}

/* The rule of each class of ops.def's rule column. */
static const rule_fn class_rules[ED_RULE_OWN] = {
    [ED_RULE_LEAF] = rule_typed_leaf, [ED_RULE_UNARY] = rule_unary,   [ED_RULE_BINARY] = rule_binary,
    [ED_RULE_COMPARE] = rule_binary,  [ED_RULE_REDUCE] = rule_reduce,
};

/* The rules of the ops of class OWN. */
static const rule_fn own_rules[ED_OP_COUNT] = {
    [ED_OP_WHERE] = rule_where,
    [ED_OP_CAST] = rule_cast,
    [ED_OP_RESHAPE] = rule_reshape,
    [ED_OP_TRANSPOSE] = rule_transpose,
    [ED_OP_BROADCAST_TO] = rule_broadcast_to,
    [ED_OP_SLICE] = rule_slice,
    [ED_OP_CONCAT] = rule_concat,
    [ED_OP_PAD] = rule_pad,
    [ED_OP_GATHER] = rule_gather,
    [ED_OP_ONE_HOT] = rule_one_hot,
    [ED_OP_SCATTER_ADD] = rule_scatter_add,
    [ED_OP_MATMUL] = rule_matmul,
    [ED_OP_CONV2D] = ed_conv_rule,
    [ED_OP_CONV_TRANSPOSE2D] = ed_conv_rule,
    [ED_OP_CONV2D_WEIGHT_GRAD] = ed_conv_rule,
    [ED_OP_LOOP] = ed_loop_rule,
    [ED_OP_GET] = ed_get_rule,
    [ED_OP_FUSED] = ed_fused_rule,
};

static rule_fn rule_of(ed_op op)
{
    if ((unsigned)op >= ED_OP_COUNT) return NULL;
    ed_rule_class c = ed_ops[op].rule;
    return c == ED_RULE_OWN ? own_rules[op] : class_rules[c];
}

bool ed_shape_rule_exists(ed_op op) { return rule_of(op) != NULL; }

bool ed_infer(ed_op op, ed_node *const *in, int nin, const ed_attrs *a, ed_dtype *dt, ed_shape *shape, char *msg,
              size_t msgsize)
{
    rule_fn rule = rule_of(op);
    if (!rule) return ed_rule_fail(msg, msgsize, "no shape rule");
    /* bf16 and f16 are storage: a param or input holds them, a loop captures them, and
     * only matmul's right operand reads them (widening to f32; in a fused body too,
     * whose own nodes are checked so). */
    for (int i = 0; i < nin; i++)
        if (in[i] && ed_dtype_is_16bit(in[i]->dtype) && op != ED_OP_LOOP && op != ED_OP_FUSED &&
            !(op == ED_OP_MATMUL && i == 1))
            return ed_rule_fail(msg, msgsize,
                                "input %d is %s, a storage-only type (only matmul's right operand reads it)", i + 1,
                                ed_rule_type(in[i]));
    if ((ed_ops[op].flags & F_TYPED) && ed_dtype_is_16bit(a->dtype) && op != ED_OP_PARAM && op != ED_OP_INPUT)
        return ed_rule_fail(msg, msgsize, "%s is a storage-only type: only a param or an input holds it",
                            ed_dtype_name(a->dtype));
    if (!rule(op, in, nin, a, dt, shape, msg, msgsize)) return false;
    for (int i = 0; i < shape->rank; i++)
        if (shape->dim[i] > ED_MAX_NUMEL)
            return ed_rule_fail(msg, msgsize, "gives %s: dimension %d is over the limit of 2^40", shape_ty(*dt, *shape),
                                i);
    int64_t n = ed_shape_numel(*shape);
    if (n < 0 || n > ED_MAX_NUMEL)
        return ed_rule_fail(msg, msgsize, "gives %s: over the limit of 2^40 elements", shape_ty(*dt, *shape));
    return true;
}

ed_axis_view ed_axis_view_of(ed_shape s, int axis)
{
    ed_axis_view v = {1, s.dim[axis], 1};
    for (int a = 0; a < axis; a++) v.outer *= s.dim[a];
    for (int a = axis + 1; a < s.rank; a++) v.inner *= s.dim[a];
    return v;
}
