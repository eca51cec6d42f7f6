/* Reconstructing given data through a trained autoencoder (vae: the decoder's mean at
 * the encoder's mean; vqvae: the decoded nearest codes): `edifice sample MODEL --ckpt F
 * --reconstruct X.npy`. */
#ifndef ED_RECONSTRUCT_H
#define ED_RECONSTRUCT_H

#include "backend/backend.h"
#include "models/registry.h"

/* Whether m's family can reconstruct (ed_model_def.reconstruct). */
bool ed_gen_can_reconstruct(const ed_gen_model *m);

/* The reconstructions f32 [N, sample...] of x f32 [N, sample...] into *out (the caller
 * frees it), `batch` rows per compiled call (0: 500; the last call smaller), with the
 * params in st. ED_ERR with the reason in ed_last_error() for a family that cannot
 * reconstruct or x of another shape. */
int ed_gen_reconstruct(const ed_gen_model *m, ed_store *st, const ed_tensor *x, int64_t batch, ed_backend backend,
                       ed_tensor **out);

#endif
