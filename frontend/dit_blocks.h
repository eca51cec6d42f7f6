/* The blocks of a Diffusion Transformer (Peebles and Xie 2023), made of nn.h's blocks:
 * patches of an image as tokens and back, 2-D (and 1-D) position embeddings, a class-label table
 * with a null class for classifier-free guidance, the adaLN-Zero transformer block and
 * the adaptive final layer. Parameters are named by scope as in nn.h; errors are sticky.
 *
 * adaLN-Zero: every modulation layer (and the final projection) starts at zero, so at
 * initialisation each block returns its input unchanged and the network outputs zero. */
#ifndef ED_DIT_BLOCKS_H
#define ED_DIT_BLOCKS_H

#include "frontend/nn.h"

/* ---- images as tokens ---------------------------------------------------------- */

/* x [B, C, H, W] -> [B, N, C p p] with N = (H / p)(W / p): token n = r (W / p) + c holds
 * the p x p patch at rows r p.., columns c p.., its features ordered (channel, dy, dx).
 * H and W must be multiples of p. */
ed_node *ed_patchify(ed_node *x, int64_t patch);
/* The inverse: tokens [B, N, C p p] -> [B, C, H, W]. */
ed_node *ed_unpatchify(ed_node *tokens, int64_t patch, int64_t channels, int64_t height, int64_t width);

/* ---- embeddings ------------------------------------------------------------------- */

/* Position embeddings [grid_h * grid_w, dim] for the tokens of ed_patchify, row-major.
 * Fixed (learned false): a const of 2-D sin-cos features, the first dim / 2 columns
 * encoding the token's row and the last dim / 2 its column, each half sin(pos w_i) for
 * i < dim / 4 then cos(pos w_i), w_i = 10000^(-i / (dim / 4)) (dim a multiple of 4).
 * Learned: the param "<scope>.<name>" drawn from N(0, 0.02^2). */
ed_node *ed_pos_embed_2d(ed_graph *g, ed_dtype dt, int64_t grid_h, int64_t grid_w, int64_t dim, bool learned,
                         const char *name);
/* Position embeddings [n, dim] for a sequence of n tokens (a latent vector's pieces):
 * fixed, row k is sin(k w_i) for i < dim / 2 then cos(k w_i), w_i = 10000^(-i / (dim / 2))
 * (dim even); learned as ed_pos_embed_2d's. */
ed_node *ed_pos_embed_1d(ed_graph *g, ed_dtype dt, int64_t n, int64_t dim, bool learned, const char *name);

/* Class labels i32 [B] in 0..classes -> [B, dim] rows of the table "<scope>.<name>.table"
 * [classes + 1, dim] (N(0, 0.02^2)); label `classes` is the null class, the condition
 * "no label" that classifier-free guidance trains and samples with. dt: the table's. */
ed_node *ed_label_embedding(ed_node *labels, int64_t classes, int64_t dim, ed_dtype dt, const char *name);
/* Each label replaced by the null class `classes` with probability p (drawn in the graph):
 * the label dropout that trains the null class. p = 0 returns labels itself. */
ed_node *ed_label_dropout(ed_node *labels, int64_t classes, double p);

/* The timestep embedder: dense(silu(dense(ed_timestep_embedding(t, freq_dim, 10000),
 * dim)), dim) with params "<name>.0", "<name>.1". t [B] -> [B, dim]. */
ed_node *ed_dit_time_embedding(ed_node *t, int64_t freq_dim, int64_t dim, const char *name);

/* ---- the transformer ------------------------------------------------------------------ */

/* One adaLN-Zero block on tokens h [B, N, D] under the condition c [B, E], given as
 * silu_c = ed_silu(c) (built once and shared by every block: one SiLU and one gradient
 * of it for the whole network):
 *   shift_a, scale_a, gate_a, shift_m, scale_m, gate_m = dense(silu_c, 6 D) ("ada", zeros)
 *   h += gate_a * attn(LN(h) (1 + scale_a) + shift_a)      (heads, "attn.{q,k,v,o}")
 *   h += gate_m * mlp(LN(h) (1 + scale_m) + shift_m)       ("fc1" D -> mlp_hidden, GELU
 *                                                            tanh, "fc2" -> D)
 * LN without affine, eps 1e-6; each modulation broadcasts over the tokens. */
ed_node *ed_dit_block(ed_node *h, ed_node *silu_c, int heads, int64_t mlp_hidden, const char *name);

/* The final layer: dense(LN(h) (1 + scale) + shift, out_dim) with shift, scale =
 * dense(silu_c, 2 D) ("ada") and the projection "linear", both zeros at init.
 * h [B, N, D] -> [B, N, out_dim]. */
ed_node *ed_dit_final_layer(ed_node *h, ed_node *silu_c, int64_t out_dim, const char *name);

#endif
