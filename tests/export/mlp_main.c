/* Test program of test_export, linked with examples/mlp.edir exported as mlp.o: one
 * call on X (raw f32 [4, 2]), outputs y then mean written to OUT (raw f32).
 * usage: mlp_main X.raw OUT.raw */
#include "mlp.h"

#include <stdio.h>

int main(int argc, char **argv)
{
    float x[MLP_X_COUNT], y[MLP_Y_COUNT], mean[MLP_MEAN_COUNT];
    FILE *in = argc == 3 ? fopen(argv[1], "rb") : NULL, *out = argc == 3 ? fopen(argv[2], "wb") : NULL;
    if (!in || !out || fread(x, sizeof x, 1, in) != 1) return 3;
    if (mlp_run(x, y, mean, 0, 0) != 0) return 4;
    fwrite(y, sizeof y, 1, out);
    fwrite(mean, sizeof mean, 1, out);
    fclose(in);
    return fclose(out) == 0 ? 0 : 3;
}
