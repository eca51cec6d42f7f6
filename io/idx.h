/* IDX files, the MNIST format: plain or gzip-compressed (told apart by content).
 *
 *   0x00 0x00 TYPE RANK   then RANK big-endian u32 dims, then the elements in C order,
 *   big-endian; TYPE 0x08 u8, 0x09 i8, 0x0B i16, 0x0C i32, 0x0D f32, 0x0E f64.
 *
 * A bad magic, an unknown type, a rank outside 1..ED_MAX_RANK, dims whose byte count
 * overflows or cannot fit in the file, truncated data and bytes after the data are all
 * errors: ED_ERR with one line in ed_last_error() that starts with the file name. */
#ifndef ED_IDX_H
#define ED_IDX_H

#include "runtime/tensor.h"

#include <stddef.h>
#include <stdint.h>

enum { ED_IDX_U8 = 0x08, ED_IDX_I8 = 0x09, ED_IDX_I16 = 0x0B, ED_IDX_I32 = 0x0C,
       ED_IDX_F32 = 0x0D, ED_IDX_F64 = 0x0E };

typedef struct {
    int type;   /* ED_IDX_* */
    ed_shape shape;
    void *data; /* numel elements of the type, converted to host byte order */
} ed_idx;

/* Reads a whole file into *out (zeroed on failure). */
int ed_idx_read(const char *path, ed_idx *out);
void ed_idx_free(ed_idx *a);

/* Element i as a double, whatever the type. */
double ed_idx_get(const ed_idx *a, int64_t i);
/* "u8", "i8", "i16", "i32", "f32", "f64"; "?" for anything else. */
const char *ed_idx_type_name(int type);

#endif
