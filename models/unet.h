/* The convolutional denoiser (arch conv): a small U-Net in the manner of Ho et al.'s DDPM
 * network, for image samples x [B, C_in, H, W] with H and W divisible by 2^(levels-1).
 *
 *   temb = dense(silu(dense(sinusoidal(t * time_scale, C), 4C)), 4C)   "<name>.time.{fc1,fc2}"
 *          (+ dense(concat(obs * keep, keep), 4C) when conditional     "<name>.cond")
 *   h    = conv3x3(x, C)                                               "<name>.in"
 *   down: level i = 0..L-1 at width C * mults[i]: `blocks` residual blocks, each output kept
 *         as a skip; then (not at the last level) a 3x3 stride-2 conv    "<name>.down<i>.*"
 *   mid:  one residual block, then (attention on) h += attn(GN(h)) over the H W positions,
 *         one head                                                      "<name>.mid.*"
 *   up:   level i = L-1..0: `blocks` residual blocks on concat(h, skip) (channels), then
 *         (not at level 0) nearest 2x upsampling and a 3x3 conv to level i-1's width
 *                                                                        "<name>.up<i>.*"
 *   out  = conv3x3(silu(GN(h)), C_in), weight and bias starting at zero  "<name>.out"
 *
 * A residual block from c_in to c_out channels ("block<j>"):
 *   u = conv3x3(silu(GN(h)), c_out) + dense(silu(temb), c_out) per channel
 *   u = conv3x3(silu(GN(u)), c_out)
 *   h = (c_in == c_out ? h : conv1x1(h, c_out)) + u                     gn1 conv1 temb gn2 conv2 skip
 *
 * Convolutions use PyTorch's weight layout and glorot-uniform init with PyTorch's fans
 * (ed_conv2d_layer); group norm has eps 1e-5 and `groups` groups, which must divide every
 * width it meets. The zero output layer makes the first prediction 0, as in the MLP. */
#ifndef ED_UNET_H
#define ED_UNET_H

#include "models/denoiser.h"

#define ED_UNET_MAX_BLOCKS 8 /* per level */

/* x [B, C, H, W] float; t, cond, keep as ed_denoiser (o->time_features must be sinusoidal;
 * o->unet the shape of the network, o->time_scale and o->max_period its time embedding,
 * o->obs_size its condition). Returns x's shape, or NULL with the reason on the graph. */
ed_node *ed_unet(ed_node *x, ed_node *t, ed_node *cond, ed_node *keep, const ed_denoiser_opts *o, const char *name);

/* ED_OK when a sample of this shape (no batch axis) fits the U-Net of o: [C, H, W] with H
 * and W divisible by 2^(levels-1), the groups dividing every width; else ED_ERR with a
 * message naming the model. */
int ed_unet_check(const ed_unet_opts *o, ed_shape sample, const char *model);

#endif
