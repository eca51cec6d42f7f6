/* Checkpoints: an ed_store saved as a safetensors file (the format of Hugging Face's
 * safetensors library, readable by PyTorch/JAX/numpy tools).
 *
 *   8 bytes   N, the header length, unsigned little-endian
 *   N bytes   a JSON object, UTF-8, padded with spaces to a multiple of 8:
 *               {"__metadata__": {"key": "value", ...},
 *                "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}, ...}
 *   the data  each tensor's bytes, little-endian, C order, at data_offsets (begin, end)
 *             relative to the end of the header; the tensors tile the buffer exactly
 *
 * Writing: the header lists the tensors in store order (loading keeps that order); in
 * the data the F64 tensors come first, so with the header padded to 8 bytes every
 * tensor is aligned to its element size in the file. Dtypes F32, I32, F64. Besides the
 * caller's metadata
 * (a string map: model name, step count, options...) edifice writes four reserved keys,
 * which load consumes and does not return:
 *   "edifice.format"    "1"
 *   "edifice.seed"      the store's seed, decimal
 *   "edifice.trainable" a JSON array (as a string) of the trainable tensors' names
 *   "edifice.crc32"     8 lower-case hex digits: CRC-32 (the zlib/PNG polynomial) of the
 *                       whole file with these 8 digits read as "00000000"; any flipped
 *                       bit anywhere in the file is caught.
 * The file is written to a temporary file, fsynced and renamed over the target
 * (io/atomic_file.h), so a crash never loses or tears the previous checkpoint.
 *
 * Loading validates everything before anything is handed out: the length field against
 * the file size (truncation), that the header is UTF-8 JSON of the shape above (read
 * by io/json.h; the message gives the byte offset), each tensor's dtype (F32, I32, F64; others are
 * named and refused), rank <= 6, that data_offsets hold exactly the bytes dtype and shape
 * need, lie inside the data and tile it (no gaps, overlaps or trailing bytes), unique
 * non-empty names, and the CRC when the file is edifice's (any "edifice." key present:
 * then the checksum must be there and match, and the format must be "1"). Files from
 * other tools have no CRC: their tensors load as trainable with seed 0. The checksum is
 * verified after the tensors are read, before anything is handed to the caller.
 * Every failure returns NULL / ED_ERR with one line in ed_last_error() starting with the
 * file name. Little-endian hosts only. */
#ifndef ED_SAFETENSORS_H
#define ED_SAFETENSORS_H

#include "runtime/store.h"

#include <stdbool.h>

/* A string map in insertion order (the __metadata__ object). */
typedef struct ed_meta ed_meta;

ed_meta *ed_meta_new(void); /* NULL with a message if out of memory */
void ed_meta_free(ed_meta *m);
/* Copies key and value; replaces the value of an existing key. Keys must be non-empty;
 * both must be valid UTF-8 (checked when saving). */
int ed_meta_set(ed_meta *m, const char *key, const char *value);
/* NULL if absent (no error set). */
const char *ed_meta_get(const ed_meta *m, const char *key);
int ed_meta_count(const ed_meta *m);
const char *ed_meta_key(const ed_meta *m, int i);
const char *ed_meta_value(const ed_meta *m, int i);

/* Saves every entry of st with meta (may be NULL). Keys starting with "edifice." are
 * reserved (an error). Names and metadata must be valid UTF-8. */
int ed_safetensors_save(const char *path, const ed_store *st, const ed_meta *meta);

/* Loads a file into a new store (seed and trainable flags from the reserved keys).
 * meta (may be NULL) receives a new map of the caller's metadata; free it with
 * ed_meta_free. */
ed_store *ed_safetensors_load(const char *path, ed_meta **meta);

/* Loads a file into an existing store, all or nothing: every tensor of the file that
 * the store already has must match its dtype and shape, and its bytes are copied into
 * the store's tensor in place (pointers held by compiled programs stay valid; the
 * trainable flag stays as it was); tensors the store lacks are added. With exact, the
 * file must hold exactly the store's names (a missing or an extra name is an error).
 * Every check (file and store) runs before the store is touched, so on a bad file or a
 * mismatch the store is unchanged (only running out of memory while adding new
 * entries can leave part of them added). The store's seed is not changed. */
int ed_safetensors_load_into(const char *path, ed_store *st, bool exact, ed_meta **meta);

#endif
