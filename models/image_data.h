/* Image data sets: the shipped 8x8 digits, Debian's Fashion-MNIST, and .npy images.
 *
 * Every set comes as f32 images [N, C, H, W] with pixels in [0, 1] (channels first) and
 * i32 labels [N] in 0..classes-1, or no labels. Failures return ED_ERR with one line in
 * ed_last_error() that names the file and what was expected; *out is left zeroed.
 *
 *   digits         data/digits.csv.gz (data/README.md): 1,797 grey 8x8 images, labels
 *                  0..9, pixels (0..16) / 16. Train: rows 0..1499 (1,500 images); test:
 *                  rows 1500..1796 (297), in file order.
 *   fashion_mnist  Debian's dataset-fashion-mnist in /usr/share/datasets/fashion-mnist:
 *                  the upstream train (60,000) and test (10,000) splits, grey 28x28,
 *                  labels 0..9, pixels (0..255) / 255.
 *   .npy images    [N, H, W] (one channel) or [N, C, H, W] with C in 1..4; uint8 pixels
 *                  are divided by 255, f32 / f64 pixels must already be in [0, 1]. Labels
 *                  from a second file [N] of any integer type, each >= 0; classes is the
 *                  largest label + 1. */
#ifndef ED_IMAGE_DATA_H
#define ED_IMAGE_DATA_H

#include "runtime/tensor.h"

#include <stdint.h>

typedef enum { ED_SPLIT_TRAIN, ED_SPLIT_TEST } ed_split;

typedef struct {
    ed_tensor *x;      /* f32 [N, C, H, W] in [0, 1] */
    ed_tensor *labels; /* i32 [N] or NULL */
    int32_t classes;   /* 0 without labels */
    int64_t levels;    /* grey levels of the source pixels (digits 17, uint8 256); 0: float */
} ed_images;

void ed_images_free(ed_images *im);

#define ED_DIGITS_ROWS 1797
#define ED_DIGITS_TRAIN 1500
#define ED_DIGITS_SIDE 8

/* The digits file: $EDIFICE_DIGITS if set, else data/digits.csv.gz of the source tree. */
const char *ed_digits_path(void);
/* Every row of a digits file (65 integers a line: 64 pixels 0..16, then the label 0..9). */
int ed_digits_read(const char *path, ed_images *out);
/* One split of ed_digits_path(): rows [0, ED_DIGITS_TRAIN) or the rows after them. */
int ed_digits_load(ed_split split, ed_images *out);

/* The folder of the four Fashion-MNIST IDX files: $EDIFICE_FASHION_MNIST if set, else
 * /usr/share/datasets/fashion-mnist. A missing folder or file is an error that names
 * the Debian package dataset-fashion-mnist. */
const char *ed_fashion_mnist_dir(void);
int ed_fashion_mnist_load(ed_split split, ed_images *out);

/* Images from a .npy file, labels (may be NULL) from another. */
int ed_images_load_npy(const char *x_path, const char *labels_path, ed_images *out);

/* Labels for n rows from a .npy file [n] of any integer type, each >= 0; *classes is
 * the largest label + 1. NULL with ed_last_error() on failure. */
ed_tensor *ed_labels_load_npy(const char *path, int64_t n, int32_t *classes);

#endif
