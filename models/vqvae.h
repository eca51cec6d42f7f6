/* VQ-VAE (van den Oord et al. 2017) on flat data x [B, D]: Edifice.Generative.VQVAE's
 * MLP encoder and decoder, with a codebook that learns and an autoregressive prior
 * over the codes so that the model can sample.
 *
 * The encoder maps x to a grid of G = `codes` vectors of E = embedding_dim each,
 * z_e [B, G, E]; each is replaced by its nearest codebook row (squared L2, first
 * index on ties), z_q [B, G, E]; the decoder maps the straight-through
 * z_e + sg(z_q - z_e), flattened to [B, G E], to Bernoulli logits [B, D] (pixels in
 * [0, 1]; decoded images are sigmoid(logits), the Bernoulli mean).
 *
 * Step "train" (groups {"vq.enc.", "vq.dec.", "vq.codebook", NULL}), per sample:
 *   BCE(x, logits) summed over D + ||sg(z_e) - z_q||^2 + commitment ||z_e - sg(z_q)||^2
 * (squared norms summed over G and E), averaged over the batch. The codebook term is
 * built from the gathered codebook rows, so the codebook gets a gradient.
 * With codebook_update = ema the codebook is state, not a param, and is not in the
 * loss: the same graph binds its EMA update (and the restarts of dead codes) instead.
 * Step "prior" (groups {"vq.prior.", NULL}): the mean of ed_vqvae_prior_nll, a causal
 * transformer's cross-entropy on the frozen encoder's codes.
 *
 * Choices against Edifice, on purpose:
 * - A grid of G codes per sample (default 4) rather than one latent vector: with one
 *   code per sample a prior is just a histogram and the decoder can make only K images.
 * - num_embeddings sizes the codebook (Edifice ignores it); default 64, not 512: on 8x8
 *   digits (loss mode, 2000 steps) all 64 codes end up in use, but of 512 only ~65
 *   (E 16) or ~160 (E 64), and a smaller K leaves the prior fewer classes to learn.
 * - embedding_dim 16, not 64: the same reconstruction error on digits there, at a
 *   quarter of the distance and codebook cost.
 * - Bernoulli likelihood (Edifice: MSE over all elements): the recon term is then in
 *   nats per image and comparable to the VQ terms; eval still reports per-image MSE.
 * - EMA updates (decay 0.99) are an option, with dead-code restarts; restarts exist
 *   only in the EMA mode (in the loss mode the optimizer owns the codebook).
 *
 * Names: params "vq.enc.*", "vq.dec.*", "vq.codebook" [K, E] (state in the EMA mode),
 * "vq.prior.*"; EMA state "vq.ema.count" [K]. */
#ifndef ED_VQVAE_H
#define ED_VQVAE_H

#include "frontend/frontend.h"
#include "models/options.h"
#include "runtime/error.h"

#include <stdint.h>

typedef enum { ED_VQ_UPDATE_LOSS, ED_VQ_UPDATE_EMA, ED_VQ_UPDATE_COUNT } ed_vq_update;

typedef struct {
    int64_t data_dim;       /* D, set by the caller (not an option); 0 after defaults */
    int64_t codes;          /* G, code vectors per sample [4] */
    int64_t num_embeddings; /* K, codebook rows [64] */
    int64_t embedding_dim;  /* E [16] */
    ed_sizes encoder_sizes; /* hidden widths [256,128] */
    ed_sizes decoder_sizes; /* hidden widths [128,256] */
    int activation;         /* an ed_activation, after every hidden layer [relu] */
    double commitment;      /* beta [0.25] */
    int codebook_update;    /* ed_vq_update [loss] */
    double ema_decay;       /* [0.99] */
    double restart_below;   /* EMA: restart codes whose EMA count falls below this; 0: never [1] */
    int64_t prior_width;    /* transformer width [64] */
    int64_t prior_layers;   /* transformer blocks [2] */
    int64_t prior_heads;    /* attention heads, dividing prior_width [4] */
} ed_vqvae_opts;

#define ED_VQVAE_NOPTIONS 13
extern const ed_option ed_vqvae_options[ED_VQVAE_NOPTIONS];

/* Every option at its default; data_dim 0. */
void ed_vqvae_defaults(ed_vqvae_opts *o);

/* The codebook [K, E]: param "vq.codebook" (loss mode) or state of that name (EMA),
 * both initialized U(-1/K, 1/K). */
ed_node *ed_vqvae_codebook(ed_graph *g, const ed_vqvae_opts *o);

/* z_e [B, G, E] of x [B, D]. Params "vq.enc.*". */
ed_node *ed_vqvae_encode(ed_node *x, const ed_vqvae_opts *o);
/* The nearest codebook row of each vector: z [..., E], codebook [K, E] -> i32 [...]. */
ed_node *ed_vqvae_nearest(ed_node *z, ed_node *codebook);
/* Bernoulli logits [B, D] of z [B, G, E]. Params "vq.dec.*". */
ed_node *ed_vqvae_decode(ed_node *z, const ed_vqvae_opts *o);

/* Everything one pass through the autoencoder makes. */
typedef struct {
    ed_node *codebook; /* [K, E] */
    ed_node *z_e;      /* [B, G, E] */
    ed_node *indices;  /* i32 [B, G] */
    ed_node *z_q;      /* codebook rows [B, G, E]: the codebook's gradient flows here */
    ed_node *z_q_st;   /* z_e + sg(z_q - z_e): the decoder's input, the encoder's gradient */
    ed_node *logits;   /* [B, D] */
} ed_vqvae_pass;

/* ED_OK, or ED_ERR with the reason on g (bad options, x not f32 [B, data_dim]). */
int ed_vqvae_forward(ed_graph *g, ed_node *x, const ed_vqvae_opts *o, ed_vqvae_pass *out);

/* Step "train"'s loss (a scalar) on x [B, D]. In the EMA mode it also calls
 * ed_vqvae_ema_update, so g then binds the codebook's updates too. */
ed_node *ed_vqvae_loss(ed_graph *g, ed_node *x, const ed_vqvae_opts *o);

/* Bind the EMA updates of the codebook state from a forward pass p: with the batch's
 * counts n_k and sums s_k of the vectors z_e assigned to code k (one_hot and matmul),
 *   N_k' = d N_k + (1 - d) n_k,  e_k' = (d N_k e_k + (1 - d) s_k) / N_k'
 * (the usual EMA of sums, kept as N e so the sum needs no state of its own; N is
 * floored at 1e-6 so a long-unused code keeps its value). Then every code with
 * N_k' < restart_below is replaced by a random row of this batch's z_e and its count
 * set to restart_below. Updates "vq.codebook" and "vq.ema.count" (starts at 1). */
int ed_vqvae_ema_update(ed_graph *g, const ed_vqvae_pass *p, const ed_vqvae_opts *o);

/* The codes of x [B, D]: i32 [B, G]. */
ed_node *ed_vqvae_encode_indices(ed_node *x, const ed_vqvae_opts *o);
/* Images [B, D] in [0, 1] of codes idx i32 [B, G]. */
ed_node *ed_vqvae_decode_indices(ed_node *idx, const ed_vqvae_opts *o);
/* How often each code occurs in the codes of x [B, D]: f32 [K], summing to B G. */
ed_node *ed_vqvae_code_counts(ed_node *x, const ed_vqvae_opts *o);
/* Per-image reconstruction error [B]: mean over D of (x - decoded)^2, through the codes. */
ed_node *ed_vqvae_recon_mse(ed_graph *g, ed_node *x, const ed_vqvae_opts *o);

/* ---- the prior (models/vqvae_prior.c) ---------------------------------------------- */

/* Next-code logits [B, T, K] for tokens i32 [B, T], T <= G: token K is the start token,
 * position t sees tokens 0..t. A pre-LayerNorm causal transformer: token and learned
 * position embeddings, prior_layers blocks of self-attention and a GELU MLP (4x).
 * Params "vq.prior.*". */
ed_node *ed_vqvae_prior_logits(ed_node *tokens, const ed_vqvae_opts *o);
/* -log p(idx) in nats [B] of codes idx i32 [B, G] (cross-entropy summed over G). */
ed_node *ed_vqvae_prior_nll_indices(ed_node *idx, const ed_vqvae_opts *o);
/* The prior's NLL [B] of the encoder's codes of x [B, D]. */
ed_node *ed_vqvae_prior_nll(ed_graph *g, ed_node *x, const ed_vqvae_opts *o);
/* Step "prior"'s loss: the mean of ed_vqvae_prior_nll. */
ed_node *ed_vqvae_prior_loss(ed_graph *g, ed_node *x, const ed_vqvae_opts *o);

/* n code grids i32 [n, G] drawn from the prior, one position after another (G
 * transformer passes unrolled in the graph, Gumbel-max draws from ed_rand). */
ed_node *ed_vqvae_sample_indices(ed_graph *g, int64_t n, const ed_vqvae_opts *o);
/* n images [n, D] in [0, 1]: decoded prior samples. */
ed_node *ed_vqvae_sample(ed_graph *g, int64_t n, const ed_vqvae_opts *o);

/* Codebook perplexity exp(H) of n code indices in [0, k), H the entropy of their
 * histogram; *used (may be NULL) gets the number of distinct codes. NAN with
 * ed_last_error() set for n < 1, k < 1 or an index out of range. */
double ed_vqvae_perplexity(const int32_t *idx, int64_t n, int64_t k, int64_t *used);

#endif
