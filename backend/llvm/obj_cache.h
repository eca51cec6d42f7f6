/* The JIT's on-disk object cache: one file per compiled program, named by the SHA-256 of
 * its key (the hash of what the program compiles from - backend/compile.c hashes the graph
 * as built, the pass pipeline and the compile options -, this build of edifice, the LLVM
 * version, the host CPU and features, the opt level, the format version). An entry holds
 * its whole key and a checksum; anything that does not match exactly is a miss
 * (recompiled and replaced), never loaded. Its payload is a program record: the graph the
 * passes made, as text, and the object files of its code. */
#ifndef ED_OBJ_CACHE_H
#define ED_OBJ_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ED_OBJ_CACHE_FORMAT 2
/* Past this many bytes of entries, the least recently used go (EDIFICE_CACHE_MAX_MB). */
#define ED_OBJ_CACHE_MAX_BYTES (512ll << 20)

/* Off when EDIFICE_NO_CACHE is set to anything but "" or "0" (the CLI's --no-cache). */
bool ed_obj_cache_env_off(void);

/* The cache folder (malloc'd): $EDIFICE_CACHE_DIR, else $EDIFICE_CACHE/jit,
 * $XDG_CACHE_HOME/edifice/jit, $HOME/.cache/edifice/jit; NULL when none is set. */
char *ed_obj_cache_dir(void);

/* The key text of a program described by src (malloc'd; NULL: out of memory). level:
 * the opt level 0..3. The key names this build (ed_obj_cache_build_id), so a rebuilt
 * edifice, whose passes or lowering may differ, never reads an older build's entries. */
char *ed_obj_cache_key(const char *src, size_t src_len, int level);

/* This build's identity: the GNU build ID of the file holding edifice's code (a hash of
 * its contents, hex), else that file's size, modification time and inode. Computed once. */
const char *ed_obj_cache_build_id(void);

/* A program record: the optimized graph's text, its memory plan (opaque bytes, written
 * and read by backend/compile_cache.c) and n object files. */
#define ED_OBJ_CACHE_MAX_OBJECTS 64
typedef struct {
    const char *text; /* not NUL-terminated in a parsed record: use text_len */
    size_t text_len;
    const void *plan; /* may be unaligned in a parsed record */
    size_t plan_len;
    int kernels; /* the JIT's kernel count, for the stats */
    int nobj;
    const void *obj[ED_OBJ_CACHE_MAX_OBJECTS];
    size_t obj_len[ED_OBJ_CACHE_MAX_OBJECTS];
} ed_obj_record;

/* The payload bytes of r (malloc'd into *out), or ED_ERR with ed_last_error(). */
int ed_obj_record_pack(const ed_obj_record *r, void **out, size_t *out_len);
/* r's spans inside data, or false when data is not exactly one record (1..MAX objects,
 * none empty). Reads nothing outside data. */
bool ed_obj_record_unpack(const void *data, size_t size, ed_obj_record *r);

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
