/* The image check the convolutional models share (vae, gan --arch conv): their data rows
 * are images [C, H, W] that a stack of stride-2 layers halves exactly. */
#ifndef ED_MODEL_CONV_IMAGE_H
#define ED_MODEL_CONV_IMAGE_H

#include "ir/ir.h"

#include <stdbool.h>

/* true when image [C, H, W] holds data_dim numbers and nlayers (1..max_layers) stride-2
 * layers divide H and W; else false with a graph error on g that starts with what
 * ("vae --arch conv"). */
bool ed_conv_image_check(ed_graph *g, const char *what, const int64_t image[3], int64_t data_dim, int nlayers,
                         int max_layers);

#endif
