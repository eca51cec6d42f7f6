/* Leaves: constants are filled from their attribute data; bound leaves compute
 * nothing; random ops draw from the Philox streams keyed by (seed, call, stream), so
 * any backend following runtime/philox.h gets the same bits. */
#include "interp/iter.h"
#include "interp/kernels.h"
#include "runtime/philox.h"

/* One value splats; otherwise one value per element (already rounded to the dtype). */
ED_KERNEL(ed_k_const)
{
    (void)in, (void)ctx;
    int64_t total = ed_shape_numel(out->shape);
    for (int64_t i = 0; i < total; i++) interp_set(out, i, n->attr.data[n->attr.ndata == 1 ? 0 : i]);
}

/* input, param, state: the caller binds the value tensor itself. */
ED_KERNEL(ed_k_bound_leaf) { (void)n, (void)in, (void)out, (void)ctx; }

ED_KERNEL(ed_k_rand)
{
    (void)in;
    ed_rng_uniform(out->data, out->dtype, ed_tensor_numel(out), ctx->seed, ctx->call, n->attr.stream, n->attr.lo,
                   n->attr.hi);
}

ED_KERNEL(ed_k_randn)
{
    (void)in;
    ed_rng_normal(out->data, out->dtype, ed_tensor_numel(out), ctx->seed, ctx->call, n->attr.stream);
}

ED_KERNEL(ed_k_randint)
{
    (void)in;
    ed_rng_randint(out->data, ed_tensor_numel(out), ctx->seed, ctx->call, n->attr.stream, (int64_t)n->attr.lo,
                   (int64_t)n->attr.hi);
}

ED_KERNEL(ed_k_bernoulli)
{
    (void)in;
    ed_rng_bernoulli(out->data, out->dtype, ed_tensor_numel(out), ctx->seed, ctx->call, n->attr.stream, n->attr.p);
}
