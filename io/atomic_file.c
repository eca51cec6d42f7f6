/* Atomic file replacement: temporary file, fsync, rename, fsync of the directory. */
#include "io/atomic_file.h"
#include "runtime/error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int ed_atomic_open(ed_atomic_file *af, const char *path)
{
    static atomic_uint counter;
    af->f = NULL;
    af->tmp = NULL;
    af->path = path;
    if (!path || !*path) return ed_fail("cannot write a file with an empty path");
    size_t cap = strlen(path) + 64;
    af->tmp = malloc(cap);
    if (!af->tmp) return ed_fail("%s: out of memory", path);
    int status = ED_OK;
    for (int attempt = 0; attempt < 100; attempt++) {
        unsigned n = atomic_fetch_add(&counter, 1);
        snprintf(af->tmp, cap, "%s.tmp%ld.%u", path, (long)getpid(), n);
        int fd = open(af->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno == EEXIST) continue;
        if (fd < 0) {
            status = ed_fail("%s: cannot create temporary file '%s': %s", path, af->tmp, strerror(errno));
            break;
        }
        af->f = fdopen(fd, "wb");
        if (af->f) return ED_OK;
        status = ed_fail("%s: cannot open a temporary file: %s", path, strerror(errno));
        close(fd);
        unlink(af->tmp);
        break;
    }
    if (status == ED_OK) status = ed_fail("%s: cannot find a free temporary file name", path);
    free(af->tmp);
    af->tmp = NULL;
    return status;
}

/* Makes the rename itself durable; best effort, as some file systems refuse. */
static void sync_parent_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t len = !slash ? 1 : slash == path ? 1 : (size_t)(slash - path);
    char *dir = malloc(len + 1);
    if (!dir) return;
    if (!slash) memcpy(dir, ".", 1);
    else memcpy(dir, path, len);
    dir[len] = '\0';
    int fd = open(dir, O_RDONLY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(dir);
}

int ed_atomic_finish(ed_atomic_file *af, int status)
{
    if (!af->f) {
        free(af->tmp);
        af->tmp = NULL;
        return ED_ERR;
    }
    if (status == ED_OK && (fflush(af->f) != 0 || fsync(fileno(af->f)) != 0))
        status = ed_fail("%s: write failed: %s", af->path, strerror(errno));
    if (fclose(af->f) != 0 && status == ED_OK) status = ed_fail("%s: write failed: %s", af->path, strerror(errno));
    af->f = NULL;
    if (status == ED_OK && rename(af->tmp, af->path) != 0)
        status = ed_fail("%s: cannot rename the temporary file into place: %s", af->path, strerror(errno));
    if (status == ED_OK) sync_parent_dir(af->path);
    else unlink(af->tmp);
    free(af->tmp);
    af->tmp = NULL;
    return status;
}

int ed_make_dirs(const char *path)
{
    char buf[4096];
    size_t n = path ? strlen(path) : 0;
    if (n == 0 || n >= sizeof buf) return ed_fail("cannot create a directory with an empty or too long path");
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return ed_fail("%s: cannot create directory: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
        return ed_fail("%s: cannot create directory: %s", buf, strerror(errno));
    struct stat st;
    if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode)) return ed_fail("%s: not a directory", buf);
    return ED_OK;
}
