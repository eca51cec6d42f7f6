#include "models/conv_image.h"

bool ed_conv_image_check(ed_graph *g, const char *what, const int64_t image[3], int64_t data_dim, int nlayers,
                         int max_layers)
{
    const int64_t *im = image;
    if (nlayers < 1 || nlayers > max_layers || im[0] < 1 || im[1] < 1 || im[2] < 1 ||
        im[0] * im[1] * im[2] != data_dim) {
        ed_graph_fail(g, "%s: needs 1 to %d channels and an image [C, H, W] of data_dim %lld numbers", what, max_layers,
                      (long long)data_dim);
        return false;
    }
    if (im[1] % (1 << nlayers) || im[2] % (1 << nlayers)) {
        ed_graph_fail(g, "%s: %d stride-2 layers need H and W divisible by %d; the image is %lldx%lld", what, nlayers,
                      1 << nlayers, (long long)im[1], (long long)im[2]);
        return false;
    }
    return true;
}
