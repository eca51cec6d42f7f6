/* Atomic file replacement, the one way io/ writes a file (safetensors, npy, PNG): write
 * a fresh temporary file next to the target ("PATH.tmp<pid>.<n>", created with O_EXCL),
 * flush and fsync it, then rename it over PATH and fsync the directory. A crash at any
 * point leaves either the old file or the complete new one (plus, at worst, a stray
 * temporary file, removed by the next save of PATH once its process is gone), never a
 * torn PATH. Only a regular file is replaced: a symlink's target is, the link stays;
 * a directory, a device or a pipe at PATH is an error. */
#ifndef ED_ATOMIC_FILE_H
#define ED_ATOMIC_FILE_H

#include <stdbool.h>
#include <stdio.h>

typedef struct {
    FILE *f;    /* write here */
    char *tmp;  /* the temporary file's name */
    char *path; /* the file replaced: the target of a symlink */
} ed_atomic_file;

/* Creates the temporary file. ED_OK, or ED_ERR with a message naming path. */
int ed_atomic_open(ed_atomic_file *af, const char *path);

/* Whether path could be written now (its kind, and a temporary file next to it),
 * leaving nothing behind: for long jobs to fail before the work, not after it. */
int ed_atomic_check(const char *path);

/* a and b name one existing file (through links or other spellings). */
bool ed_same_file(const char *a, const char *b);

/* Finishes: if status is ED_OK, flushes, fsyncs, closes and renames into place
 * (returning ED_ERR with a message if any step fails); otherwise (or on failure)
 * closes and removes the temporary file, leaving path untouched. Always releases af.
 * Returns ED_OK only if the new file is in place. A failing status keeps the caller's
 * message. */
int ed_atomic_finish(ed_atomic_file *af, int status);

/* mkdir -p: path and every missing parent (mode 0777 less the umask). ED_OK if path is
 * a directory afterwards, else ED_ERR with a message naming it. */
int ed_make_dirs(const char *path);

#endif
