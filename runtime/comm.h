/* The ranks of a data-parallel run and the one collective compiled programs call.
 * Built with EDIFICE_MPI it is Open MPI (comm_mpi.c); otherwise (comm.c) there is one
 * rank and an allreduce is a copy. Every rank must make the same calls in the same order.
 *
 * A watchdog guards every collective: if one takes longer than the timeout (a rank died
 * or hangs), this rank prints one line naming the timeout and exits with status 1, and
 * mpirun ends the others. */
#ifndef ED_RUNTIME_COMM_H
#define ED_RUNTIME_COMM_H

#include <stdbool.h>
#include <stdint.h>

#define ED_COMM_DEFAULT_TIMEOUT 300.0 /* seconds; 0: wait forever */

/* Whether this build has MPI (EDIFICE_MPI). */
bool ed_comm_built_with_mpi(void);
/* Whether this process was started by mpirun (its environment says so). */
bool ed_comm_launched(void);
/* Start MPI (no-op without MPI or when already started). ED_ERR with a message. */
int ed_comm_init(void);
/* Stop MPI if ed_comm_init started it. */
void ed_comm_finalize(void);
int ed_comm_rank(void); /* 0 when MPI is not started */
int ed_comm_size(void); /* 1 when MPI is not started */
/* Seconds a collective may take before this rank gives up (0: forever). */
void ed_comm_set_timeout(double seconds);
double ed_comm_timeout(void);

/* out[i] = sum (mean 0) or mean (mean 1) over ranks of in[i], n values of dtype f32
 * (is_f64 0) or f64; out may equal in (then in place). Compiled code and the interpreter
 * both call it. */
void ed_comm_allreduce(void *out, const void *in, int64_t n, int32_t is_f64, int32_t mean);
/* Every rank waits for the others (under the watchdog). */
void ed_comm_barrier(void);
/* Seconds spent inside collectives since the last reset (the communication share). */
double ed_comm_seconds(void);
void ed_comm_reset_seconds(void);

#endif
