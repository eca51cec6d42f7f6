/* DiT (Peebles and Xie 2023): a class-conditional Diffusion Transformer on images
 * [C, H, W], built from frontend/dit_blocks.h.
 *
 *   tokens = dense(patchify(x, patch), hidden) + pos       (sin-cos, or learned)
 *   c      = time_embedder(t) + label_table[y]              (y = classes: the null class)
 *   depth adaLN-Zero blocks on tokens under silu(c), the adaptive final layer, unpatchify
 *
 * Objectives (option `objective`): diffusion trains epsilon prediction on the DDPM
 * process (T = 1000 linear betas; t the integer timestep), sampled with ddpm or ddim;
 * flow_matching trains velocity prediction on the linear path (t in [0, 1], 1 = data,
 * scaled by 1000 before the embedding), sampled with euler, midpoint, heun or rk4. The
 * time embedding's sinusoid has 256 frequencies, as DiT's. The default is flow matching:
 * at the default budget on the digits it draws the asked class far more often than the
 * diffusion objective does (figures: bench/HISTORY.md).
 *
 * Defaults: Edifice's (hidden 256, depth 6, heads 4, MLP ratio 4, patch 4), except the
 * small preset for images of at most 8x8 pixels (the digits): patch 2 (16 tokens),
 * hidden 128, depth 4, so the default run trains in minutes on two cores. Labelled
 * data train classifier-free guidance: each label is replaced by the null class with
 * probability cond_dropout (default 0.1 with labels, 0 without). Params "dit.*". */
#ifndef ED_DIT_H
#define ED_DIT_H

#include "models/diffusion.h"
#include "models/flow_matching.h"

typedef enum { ED_DIT_DIFFUSION, ED_DIT_FLOW, ED_DIT_OBJECTIVE_COUNT } ed_dit_objective;

typedef struct {
    int64_t hidden;        /* token width [256; 8x8 images: 128] */
    int64_t depth;         /* blocks [6; 8x8 images: 4] */
    int64_t heads;         /* [4] */
    int64_t mlp_ratio;     /* MLP width / hidden [4] */
    int64_t patch;         /* patch side [4; 8x8 images: 2] */
    int pos_learned;       /* 0: fixed 2-D sin-cos, 1: learned [0] */
    int objective;         /* ed_dit_objective [flow_matching] */
    double cond_dropout;   /* [0.1 with labels, 0 without] */
    double guidance_scale; /* default guidance when sampling [1: none] */
    /* The objective's process and sampler settings: diffusion's timesteps, schedule,
     * ddim_steps, eta, clip_x0 (its net is unused); flow matching's sigma_min, solver
     * and sample_steps. */
    ed_diffusion_opts diffusion;
    ed_fm_opts fm;
} ed_dit_opts;

#define ED_DIT_NOPTIONS 19
extern const ed_option ed_dit_options[ED_DIT_NOPTIONS];

/* Defaults for images [C, H, W] with `classes` labels (0: unconditional). */
void ed_dit_defaults(ed_dit_opts *o, int64_t height, int64_t width, int64_t classes);

/* ED_ERR with a message unless images [C, H, W] fit the options (patch divides H and W,
 * heads divide hidden, ...). */
int ed_dit_check(const ed_dit_opts *o, int rank, const int64_t *sample);

/* The network at (x, t): x [B, C, H, W] (patch x patch patches, 2-D positions) or
 * [B, L] (L / patch tokens of patch consecutive values, 1-D positions: latent_diffusion's
 * latents), t [B] or [] (the timestep, or t in [0, 1]),
 * labels i32 [B] in 0..classes (classes: the null class) or NULL (every row the null
 * class; classes 0: unconditional, labels must be NULL). Returns x's shape. */
ed_node *ed_dit_net(ed_node *x, ed_node *t, ed_node *labels, int64_t classes, const ed_dit_opts *o);

/* The training loss: x [B, C, H, W] (in the network's range, [-1, 1] for pixels) or
 * [B, L], labels i32 [B] or NULL. Draws t, the noise and the label dropout in the graph.
 * The mean squared error per sample [B], and its mean. */
ed_node *ed_dit_image_loss(ed_graph *g, ed_node *x, ed_node *labels, int64_t classes, const ed_dit_opts *o);
ed_node *ed_dit_loss(ed_graph *g, ed_node *x, ed_node *labels, int64_t classes, const ed_dit_opts *o);

#endif
