/* Image data sets: each reader turns its file format into f32 [N, C, H, W] in [0, 1]
 * plus i32 labels; the checks name the file and what was expected. */
#include "models/image_data.h"
#include "io/idx.h"
#include "io/npy.h"
#include "runtime/error.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#ifndef ED_DATA_DIR
#define ED_DATA_DIR "data"
#endif
#define FASHION_DIR "/usr/share/datasets/fashion-mnist"
#define FASHION_PACKAGE                                                               \
    "Debian's dataset-fashion-mnist package (apt-get install dataset-fashion-mnist, " \
    "or scripts/install-deps.sh)"

void ed_images_free(ed_images *im)
{
    if (!im) return;
    ed_tensor_free(im->x);
    ed_tensor_free(im->labels);
    *im = (ed_images){0};
}

static int out_of_memory(ed_images *im, const char *what)
{
    ed_images_free(im);
    return ed_fail("%s: out of memory", what);
}

/* Rows [from, to) of all, as a new set. */
static int take_rows(const ed_images *all, int64_t from, int64_t to, ed_images *out)
{
    ed_shape s = all->x->shape;
    int64_t row = ed_tensor_numel(all->x) / s.dim[0];
    s.dim[0] = to - from;
    out->x = ed_tensor_new(ED_F32, s);
    out->labels = all->labels ? ed_tensor_new(ED_I32, ed_shape1(to - from)) : NULL;
    out->classes = all->classes;
    out->levels = all->levels;
    if (!out->x || (all->labels && !out->labels)) return out_of_memory(out, "data");
    memcpy(out->x->data, (const float *)all->x->data + from * row, sizeof(float) * (size_t)((to - from) * row));
    if (all->labels)
        memcpy(out->labels->data, (const int32_t *)all->labels->data + from, sizeof(int32_t) * (size_t)(to - from));
    return ED_OK;
}

/* ---- digits ------------------------------------------------------------------------- */

const char *ed_digits_path(void)
{
    const char *p = getenv("EDIFICE_DIGITS");
    return p && *p ? p : ED_DATA_DIR "/digits.csv.gz";
}

static bool blank(const char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n') s++;
    return !*s;
}

/* One line of 65 integers into pixels (scaled) and *label. */
static int parse_digits_line(char *line, const char *path, int64_t lineno, float *px, int32_t *label)
{
    char *p = line;
    for (int c = 0; c < 65; c++) {
        char *end;
        long v = strtol(p, &end, 10);
        bool sep_ok = c < 64 ? *end == ',' : blank(end);
        if (end == p || v < 0 || v > (c < 64 ? 16 : 9) || !sep_ok)
            return ed_fail("digits: %s line %lld column %d is not a valid value (expected 64 pixels 0..16 and a "
                           "label 0..9)",
                           path, (long long)lineno, c + 1);
        if (c < 64) px[c] = (float)v / 16.0f;
        else *label = (int32_t)v;
        p = end + 1;
    }
    return ED_OK;
}

/* Appends rows until the file ends; grows the buffers by doubling. */
static int read_digits_rows(gzFile f, const char *path, float **px, int32_t **lab, int64_t *rows)
{
    char line[1024];
    int64_t cap = 0, lineno = 0;
    while (gzgets(f, line, sizeof line)) {
        lineno++;
        if (blank(line)) continue;
        if (*rows == cap) {
            cap = cap ? 2 * cap : 64; /* small first: a 512 KB buffer per read made the fuzzer mmap */
            float *p = realloc(*px, sizeof(float) * 64 * (size_t)cap);
            if (p) *px = p;
            int32_t *l = realloc(*lab, sizeof(int32_t) * (size_t)cap);
            if (l) *lab = l;
            if (!p || !l) return ed_fail("digits: %s: out of memory", path);
        }
        if (parse_digits_line(line, path, lineno, *px + 64 * *rows, *lab + *rows) != ED_OK) return ED_ERR;
        (*rows)++;
    }
    int code;
    const char *msg = gzerror(f, &code);
    if (code != Z_OK && code != Z_BUF_ERROR) return ed_fail("digits: %s: cannot read: %s", path, msg);
    if (*rows == 0) return ed_fail("digits: %s holds no rows", path);
    return ED_OK;
}

int ed_digits_read(const char *path, ed_images *out)
{
    if (!out) return ed_fail("digits: NULL output");
    *out = (ed_images){0};
    if (!path) return ed_fail("digits: NULL path");
    gzFile f = gzopen(path, "rb");
    if (!f)
        return ed_fail("digits: cannot open %s: %s (set EDIFICE_DIGITS to the path of data/digits.csv.gz)", path,
                       errno ? strerror(errno) : "out of memory");
    float *px = NULL;
    int32_t *lab = NULL;
    int64_t rows = 0;
    int status = read_digits_rows(f, path, &px, &lab, &rows);
    gzclose(f);
    if (status == ED_OK) {
        out->x = ed_tensor_new(ED_F32, ed_shape4(rows, 1, ED_DIGITS_SIDE, ED_DIGITS_SIDE));
        out->labels = ed_tensor_new(ED_I32, ed_shape1(rows));
        out->classes = 10;
        out->levels = 17;
        if (!out->x || !out->labels) status = out_of_memory(out, "digits");
    }
    if (status == ED_OK) {
        memcpy(out->x->data, px, sizeof(float) * 64 * (size_t)rows);
        memcpy(out->labels->data, lab, sizeof(int32_t) * (size_t)rows);
    }
    free(px);
    free(lab);
    return status;
}

int ed_digits_load(ed_split split, ed_images *out)
{
    ed_images all;
    if (ed_digits_read(ed_digits_path(), &all) != ED_OK) return ED_ERR;
    int64_t rows = all.x->shape.dim[0];
    int status = ED_OK;
    if (rows <= ED_DIGITS_TRAIN)
        status = ed_fail("digits: %s has %lld rows; the split needs more than %d (train: the first %d)",
                         ed_digits_path(), (long long)rows, ED_DIGITS_TRAIN, ED_DIGITS_TRAIN);
    else if (split == ED_SPLIT_TRAIN) status = take_rows(&all, 0, ED_DIGITS_TRAIN, out);
    else status = take_rows(&all, ED_DIGITS_TRAIN, rows, out);
    ed_images_free(&all);
    return status;
}

/* ---- Fashion-MNIST -------------------------------------------------------------------- */

const char *ed_fashion_mnist_dir(void)
{
    const char *p = getenv("EDIFICE_FASHION_MNIST");
    return p && *p ? p : FASHION_DIR;
}

/* An IDX file of the set, checked for the expected type and rank. */
static int read_fashion_file(const char *name, int rank, ed_idx *out)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", ed_fashion_mnist_dir(), name);
    if (access(path, R_OK) != 0)
        return ed_fail("fashion_mnist: %s: %s; it comes with %s, or set EDIFICE_FASHION_MNIST to a folder "
                       "holding the four IDX files",
                       path, strerror(errno), FASHION_PACKAGE);
    if (ed_idx_read(path, out) != ED_OK) return ED_ERR;
    if (out->type == ED_IDX_U8 && out->shape.rank == rank) return ED_OK;
    ed_fail("%s: expected %s u8 data, found %s of rank %d", path, rank == 3 ? "images [N, H, W]" : "labels [N]",
            ed_idx_type_name(out->type), out->shape.rank);
    ed_idx_free(out);
    return ED_ERR;
}

static int fashion_to_images(const ed_idx *img, const ed_idx *lab, const char *labels_name, ed_images *out)
{
    int64_t n = img->shape.dim[0], h = img->shape.dim[1], w = img->shape.dim[2];
    if (lab->shape.dim[0] != n)
        return ed_fail("fashion_mnist: %s/%s has %lld labels for %lld images", ed_fashion_mnist_dir(), labels_name,
                       (long long)lab->shape.dim[0], (long long)n);
    out->x = ed_tensor_new(ED_F32, ed_shape4(n, 1, h, w));
    out->labels = ed_tensor_new(ED_I32, ed_shape1(n));
    out->classes = 10;
    out->levels = 256;
    if (!out->x || !out->labels) return out_of_memory(out, "fashion_mnist");
    const uint8_t *p = img->data, *l = lab->data;
    float *x = out->x->data;
    int32_t *y = out->labels->data;
    for (int64_t i = 0; i < n * h * w; i++) x[i] = (float)p[i] / 255.0f;
    for (int64_t i = 0; i < n; i++) {
        if (l[i] > 9) {
            ed_images_free(out);
            return ed_fail("fashion_mnist: %s/%s: label %d at row %lld is outside 0..9", ed_fashion_mnist_dir(),
                           labels_name, l[i], (long long)i);
        }
        y[i] = l[i];
    }
    return ED_OK;
}

int ed_fashion_mnist_load(ed_split split, ed_images *out)
{
    if (!out) return ed_fail("fashion_mnist: NULL output");
    *out = (ed_images){0};
    const char *images = split == ED_SPLIT_TRAIN ? "train-images-idx3-ubyte.gz" : "t10k-images-idx3-ubyte.gz";
    const char *labels = split == ED_SPLIT_TRAIN ? "train-labels-idx1-ubyte.gz" : "t10k-labels-idx1-ubyte.gz";
    ed_idx img = {0}, lab = {0};
    int status = read_fashion_file(images, 3, &img);
    if (status == ED_OK) status = read_fashion_file(labels, 1, &lab);
    if (status == ED_OK) status = fashion_to_images(&img, &lab, labels, out);
    ed_idx_free(&img);
    ed_idx_free(&lab);
    return status;
}

/* ---- .npy images ---------------------------------------------------------------------- */

/* t (i32 from uint8, or f32 / f64) as f32 in [0, 1]. */
static ed_tensor *pixels_to_unit(const ed_tensor *t, const char *descr, const char *path)
{
    ed_tensor *x = ed_tensor_new(ED_F32, t->shape);
    if (!x) {
        ed_fail("%s: out of memory", path);
        return NULL;
    }
    float *out = x->data;
    int64_t n = ed_tensor_numel(t);
    bool bytes = strcmp(descr, "u1") == 0;
    for (int64_t i = 0; i < n; i++) {
        double v = ed_tensor_get(t, i);
        if (!bytes && !(v >= 0 && v <= 1)) {
            ed_fail("%s: float pixels must be in [0, 1], element %lld is %g (scale them, or save uint8 0..255)", path,
                    (long long)i, v);
            ed_tensor_free(x);
            return NULL;
        }
        out[i] = bytes ? (float)(v / 255.0) : (float)v;
    }
    return x;
}

static char *shape_text(ed_shape s, char *buf, size_t cap)
{
    size_t len = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < s.rank && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, i ? ", %lld" : "%lld", (long long)s.dim[i]);
    if (len < cap) snprintf(buf + len, cap - len, "]");
    return buf;
}

static ed_tensor *read_pixels(const char *path)
{
    char descr[4] = "", type[96];
    ed_shape s;
    if (ed_npy_peek(path, descr, &s) != ED_OK) return NULL;
    bool ok = strcmp(descr, "u1") == 0 || strcmp(descr, "f4") == 0 || strcmp(descr, "f8") == 0;
    if (!ok || (s.rank != 3 && s.rank != 4) || ed_shape_numel(s) < 1) {
        ed_fail("%s: expected non-empty images [N, H, W] or [N, C, H, W] of uint8 or float, found '%s' %s", path, descr,
                shape_text(s, type, sizeof type));
        return NULL;
    }
    if (s.rank == 4 && s.dim[1] > 4) {
        ed_fail("%s: images are channels first [N, C, H, W] with C <= 4, found C = %lld (channels last? transpose "
                "to [N, C, H, W])",
                path, (long long)s.dim[1]);
        return NULL;
    }
    ed_tensor *raw = ed_npy_read_any(path);
    if (!raw) return NULL;
    ed_tensor *x = pixels_to_unit(raw, descr, path);
    ed_tensor_free(raw);
    if (x && s.rank == 3) x->shape = ed_shape4(s.dim[0], 1, s.dim[1], s.dim[2]);
    return x;
}

ed_tensor *ed_labels_load_npy(const char *path, int64_t n, int32_t *classes)
{
    ed_tensor *t = ed_npy_read_any(path);
    if (!t) return NULL;
    char type[96];
    if (t->dtype != ED_I32 || t->shape.rank != 1 || t->shape.dim[0] != n) {
        ed_fail("%s: expected integer labels [%lld], found %s", path, (long long)n,
                ed_type_str(t->dtype, t->shape, type, sizeof type));
        ed_tensor_free(t);
        return NULL;
    }
    const int32_t *y = t->data;
    int32_t most = -1;
    for (int64_t i = 0; i < n; i++) {
        if (y[i] < 0) {
            ed_fail("%s: label %d at row %lld is negative (labels are class indices 0..K-1)", path, y[i], (long long)i);
            ed_tensor_free(t);
            return NULL;
        }
        most = y[i] > most ? y[i] : most;
    }
    *classes = most + 1;
    return t;
}

int ed_images_load_npy(const char *x_path, const char *labels_path, ed_images *out)
{
    if (!out) return ed_fail("data: NULL output");
    *out = (ed_images){0};
    if (!x_path) return ed_fail("data: NULL path");
    char descr[4] = "";
    ed_shape s;
    if (ed_npy_peek(x_path, descr, &s) == ED_OK && strcmp(descr, "u1") == 0) out->levels = 256;
    out->x = read_pixels(x_path);
    if (!out->x) return ED_ERR;
    if (labels_path && !(out->labels = ed_labels_load_npy(labels_path, out->x->shape.dim[0], &out->classes))) {
        ed_images_free(out);
        return ED_ERR;
    }
    return ED_OK;
}
