/* The JIT's on-disk object cache: one file per compiled program, named by the SHA-256 of
 * its key (the lowered LLVM IR's hash, the LLVM version, the host CPU and features, the
 * opt level, the format version). An entry holds its whole key and a checksum; anything
 * that does not match exactly is a miss (recompiled and replaced), never loaded. */
#ifndef ED_OBJ_CACHE_H
#define ED_OBJ_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ED_OBJ_CACHE_FORMAT 1
/* Past this many bytes of entries, the least recently used go (EDIFICE_CACHE_MAX_MB). */
#define ED_OBJ_CACHE_MAX_BYTES (512ll << 20)

/* Off when EDIFICE_NO_CACHE is set to anything but "" or "0" (the CLI's --no-cache). */
bool ed_obj_cache_env_off(void);

/* The cache folder (malloc'd): $EDIFICE_CACHE_DIR, else $EDIFICE_CACHE/jit,
 * $XDG_CACHE_HOME/edifice/jit, $HOME/.cache/edifice/jit; NULL when none is set. */
char *ed_obj_cache_dir(void);

/* The key text of a program whose lowered module prints as ir (malloc'd; NULL: out of
 * memory). level: the opt level 0..3. */
char *ed_obj_cache_key(const char *ir, size_t ir_len, int level);

/* An entry's bytes checked against key: the object's span inside data, or false when
 * data is not a whole, intact entry for exactly this key. Reads nothing outside data. */
bool ed_obj_cache_parse(const uint8_t *data, size_t size, const char *key, const uint8_t **obj, size_t *obj_len);

/* The object stored under key in dir (malloc'd into *obj), or false: no entry, or one
 * that does not parse (left for the store that follows to replace). A hit marks the
 * entry used (its mtime), so eviction drops the least recently used. */
bool ed_obj_cache_load(const char *dir, const char *key, void **obj, size_t *obj_len);

/* Writes the entry atomically (io/atomic_file.h; concurrent writers of one key leave
 * one whole entry), then evicts the least recently used entries past max_bytes.
 * ED_OK, or ED_ERR with ed_last_error(). */
int ed_obj_cache_store(const char *dir, const char *key, const void *obj, size_t obj_len, int64_t max_bytes);

/* The size bound: EDIFICE_CACHE_MAX_MB if set to a positive integer, else
 * ED_OBJ_CACHE_MAX_BYTES. */
int64_t ed_obj_cache_max_bytes(void);

#endif
