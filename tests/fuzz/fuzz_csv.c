/* The CSV readers: the training log (`plot-log`) and the digits file (read plain as well
 * as gzipped). The first byte picks the reader; the rest is the file. An accepted log's
 * every column has its rows; accepted digits are 8x8 pixels in [0, 1] with labels 0..9. */
#include "fuzz.h"
#include "io/csv_log.h"
#include "models/image_data.h"
#include "runtime/error.h"

#include <math.h>

static void check_digits(const ed_images *im)
{
    const ed_tensor *x = im->x;
    int64_t n = x->shape.dim[0];
    if (im->labels->shape.dim[0] != n) fuzz_fail("digits", "labels and images differ in count");
    const float *p = x->data;
    for (int64_t i = 0; i < ed_shape_numel(x->shape); i++)
        if (!(p[i] >= 0 && p[i] <= 1)) fuzz_fail("digits", "a pixel outside [0, 1]");
    const int32_t *l = im->labels->data;
    for (int64_t i = 0; i < n; i++)
        if (l[i] < 0 || l[i] >= im->classes) fuzz_fail("digits", "a label outside 0..classes-1");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    const char *path = fuzz_file(data + 1, size - 1);
    if (data[0] & 1) {
        ed_images im = {0};
        if (ed_digits_read(path, &im) == ED_OK) check_digits(&im);
        ed_images_free(&im);
        return 0;
    }
    ed_csv_log l;
    if (ed_csv_log_read(path, &l) == ED_OK) {
        if (l.ncol < 2 || l.rows < 1) fuzz_fail("log", "accepted without two columns and a row");
        volatile double last = 0;
        for (int k = 0; k < l.ncol; k++) last += isnan(l.v[k][l.rows - 1]); /* every column holds rows values */
        (void)last;
    }
    ed_csv_log_free(&l);
    return 0;
}
