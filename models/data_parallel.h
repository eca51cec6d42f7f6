/* Data parallelism over the ranks of runtime/comm.h: each rank trains on its own rows of
 * the global batch, and the union of the ranks' rows and random draws is exactly the
 * batch and the draws of one process training on the whole batch. */
#ifndef ED_DATA_PARALLEL_H
#define ED_DATA_PARALLEL_H

#include "ir/ir.h"

/* Makes g's per-row random draws (the random ops whose leading axis is the batch: noise,
 * diffusion times, dropout masks) this rank's rows of the whole batch's draws: each
 * becomes the same op and stream over the global batch, sliced to rows
 * [rank * local, (rank + 1) * local). A random op is per-row when `probe`, the same step
 * built for twice the local batch, has it (same op and stream) with a leading axis that
 * doubled; the others (one draw for the whole batch) stay as they are. Random ops inside
 * loop bodies are left alone. ED_ERR with the reason on g. */
int ed_dp_split_draws(ed_graph *g, const ed_graph *probe, int64_t local, int rank, int world);

#endif
