/* NumPy .npy files: read format versions 1.0, 2.0 and 3.0, write 1.0.
 *
 * dtypes: '<f4' (f32), '<i4' (i32), '<f8' (f64); '|' and '=' byte orders are accepted
 * for the same types because this code runs on little-endian hosts only (on a
 * big-endian host every call fails with a message). C order only, rank <= 6, scalars
 * (shape ()) and empty arrays included. Every failure returns NULL / ED_ERR with one
 * line in ed_last_error() that starts with the file name. */
#ifndef ED_NPY_H
#define ED_NPY_H

#include "runtime/tensor.h"

#include <stddef.h>

/* Reads a whole .npy file into a new tensor. */
ed_tensor *ed_npy_read(const char *path);

/* Like ed_npy_read, and also reads integer files of other widths ('|u1', '|i1', '<u2',
 * '<i2', '<u4', '<i8', '<u8') into i32; a value outside i32's range is an error naming
 * the file and the element. For data loaders (uint8 images, int64 labels). */
ed_tensor *ed_npy_read_any(const char *path);

/* The type code without byte order ("f4", "u1", ...; any type ed_npy_read_any takes)
 * and the shape of a .npy file, from its header alone. */
int ed_npy_peek(const char *path, char descr[4], ed_shape *shape);

/* Parses an in-memory .npy image of n bytes; what names it in messages (NULL: "npy"). */
ed_tensor *ed_npy_parse(const void *bytes, size_t n, const char *what);

/* Writes t as a version 1.0 file, atomically: a temporary file in the same directory
 * is written, flushed, fsynced and renamed over path, so a crash leaves either the old
 * file or the complete new one. The data starts at a multiple of 64 bytes. */
int ed_npy_write(const char *path, const ed_tensor *t);

#endif
