/* RealNVP (Dinh et al. 2017) as Edifice.Generative.NormalizingFlow builds it: a stack of
 * affine coupling layers with tanh-bounded log-scales and alternating masks, an MLP
 * conditioner (4 couplings, hidden [256], relu), a standard normal base.
 *
 * Spaces and the density model. Data x is f32/f64 [B, D].
 *   levels = 0 (continuous data): v = x.
 *   levels = K >= 2 (pixels k in 0..K-1 given as x = k / (K-1)): v = (k + u) / K with
 *     u ~ U(0, 1)^D drawn in the graph (uniform dequantisation), v in [0, 1)^D.
 *   pre-transform (only when levels > 0 and logit_alpha = a > 0):
 *     y = logit(a + (1 - 2a) v), log|dy/dv| = log(1 - 2a) - log p - log(1 - p), p = a + (1 - 2a) v;
 *     otherwise y = v.
 *   coupling i (0-based) with its constant 0/1 mask m_i (1 = conditioning coordinates):
 *     h = net_i(y * m_i); s = (1 - m_i) * scale_bound * c_i * tanh(S_i(h)); t = (1 - m_i) * T_i(h);
 *     y <- y * exp(s) + t, log-det += sum(s).
 *     c_i = 1 (scale "fixed") or a learned per-coordinate factor starting at 1 ("learned").
 *   z = the last y; log p(z) = -|z|^2 / 2 - (D / 2) log(2 pi).
 * ed_realnvp_forward maps v to z (pre-transform included) with log|det dz/dv|;
 * ed_realnvp_inverse maps z back to v exactly (y = (y' - t) exp(-s), couplings in reverse,
 * then v = (sigmoid(y) - a) / (1 - 2a)). Dequantisation is not part of either.
 *
 * Masks: "halves" (Edifice's): even couplings condition on coordinates j < D/2, odd ones
 * on the rest; "parity": j even, then j odd; "checkerboard" (1-channel images): pixel
 * (r, c) of the height x width grid, j = r * width + c, conditions when r + c is even,
 * then its complement. There is no channel mask and no squeezing (one channel, an MLP
 * conditioner), so the stack alternates checkerboard and complement only.
 *
 * Params, one scope per coupling: "flow.c<i>.net.<j>.{w,b}" (the hidden MLP, glorot),
 * "flow.c<i>.s.{w,b}" and "flow.c<i>.t.{w,b}" (the heads, zero: the flow starts as the
 * identity, where Edifice's glorot heads start at a random flow), "flow.c<i>.scale" [D]
 * (only when learned). */
#ifndef ED_REALNVP_H
#define ED_REALNVP_H

#include "frontend/nn.h"
#include "models/options.h"

typedef enum { ED_RNVP_MASK_HALVES, ED_RNVP_MASK_PARITY, ED_RNVP_MASK_CHECKERBOARD, ED_RNVP_MASK_COUNT } ed_realnvp_mask;
typedef enum { ED_RNVP_SCALE_FIXED, ED_RNVP_SCALE_LEARNED, ED_RNVP_SCALE_COUNT } ed_realnvp_scale;

typedef struct {
    int64_t couplings;  /* affine coupling layers [4] */
    ed_sizes hidden;    /* conditioner hidden widths ["256"]; empty: the heads read y * m directly */
    int activation;     /* ed_activation of the hidden layers [relu] */
    int mask;           /* ed_realnvp_mask [halves] */
    double scale_bound; /* s = scale_bound * tanh(raw) [1, Edifice's plain tanh] */
    int scale;          /* ed_realnvp_scale: the bound fixed, or times a learned factor [fixed] */
    double logit_alpha; /* logit pre-transform for levels > 0; 0 = none [0.05] */
    /* Facts about the data, set by the caller (not options). */
    int64_t data_dim;      /* D */
    int64_t levels;        /* 0: continuous data; K >= 2: integer pixels k / (K-1), dequantised */
    int64_t height, width; /* the checkerboard's grid (height * width = D); 0, 0: square */
} ed_realnvp_opts;

#define ED_REALNVP_NOPTIONS 7
extern const ed_option ed_realnvp_options[ED_REALNVP_NOPTIONS];

/* Every option at its default; data_dim, levels, height and width 0. */
void ed_realnvp_defaults(ed_realnvp_opts *o);

/* v [B, D] -> z [B, D]; *logdet (may be NULL) gets log|det dz/dv| [B]. NULL with the
 * reason on the graph for bad options or a v that is not float [B, data_dim]. */
ed_node *ed_realnvp_forward(ed_node *v, const ed_realnvp_opts *o, ed_node **logdet);
/* z [B, D] -> v [B, D], the exact inverse of ed_realnvp_forward with the same params. */
ed_node *ed_realnvp_inverse(ed_node *z, const ed_realnvp_opts *o);

/* The exact continuous log density of v [B, D] in nats: log N(z; 0, I) + log-det, [B]. */
ed_node *ed_realnvp_log_density(ed_node *v, const ed_realnvp_opts *o);

/* Per sample [B], in nats. levels = 0: the exact log density of x. levels = K: one draw
 * of the dequantisation bound on the discrete log-likelihood,
 *   log P(k) >= E_u log p_v((k + u) / K) - D log K,
 * i.e. log_density(v) - D log K for one u ~ U(0, 1)^D per call (average over calls or
 * rows for the expectation). Bits per dimension = -log_prob / (D ln 2). */
ed_node *ed_realnvp_log_prob(ed_graph *g, ed_node *x, const ed_realnvp_opts *o);
/* The training loss: the mean over the batch of -log_prob, a scalar. */
ed_node *ed_realnvp_loss(ed_graph *g, ed_node *x, const ed_realnvp_opts *o);

/* n samples f32 [n, D]: v = inverse(z), z ~ N(0, I) drawn in the graph. levels = K maps v
 * back to the data's scale, x = clamp((K v - 1/2) / (K - 1), 0, 1) (cell centres land
 * on the levels k / (K-1)); continuous data is returned as v. */
ed_node *ed_realnvp_sample(ed_graph *g, int64_t n, const ed_realnvp_opts *o);

#endif
