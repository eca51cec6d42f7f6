/* Atomic file replacement: temporary file, fsync, rename, fsync of the directory. */
#include "io/atomic_file.h"
#include "runtime/error.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *kind_of(mode_t m)
{
    return S_ISDIR(m)                 ? "a directory"
           : S_ISCHR(m) || S_ISBLK(m) ? "a device"
           : S_ISFIFO(m)              ? "a pipe"
                                      : "not a regular file";
}

/* What may be replaced: nothing yet, or a regular file. A symlink is followed: the
 * file it names is replaced and the link stays. Anything else (a directory, a device
 * such as /dev/null, a pipe) is refused, so a rename never swaps it for a file. */
static int resolve_target(const char *path, char **target)
{
    *target = NULL;
    if (!path || !*path) return ed_fail("cannot write a file with an empty path");
    size_t n = strlen(path);
    if (path[n - 1] == '/') return ed_fail("%s: names a directory; give a file name", path);
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (errno != ENOENT) return ed_fail("%s: %s", path, strerror(errno));
        *target = strdup(path);
        return *target ? ED_OK : ed_fail("%s: out of memory", path);
    }
    if (S_ISLNK(st.st_mode)) {
        char *real = realpath(path, NULL);
        if (!real) return ed_fail("%s: a symlink to nothing that exists (%s); give a file name", path, strerror(errno));
        if (stat(real, &st) != 0 || !S_ISREG(st.st_mode)) {
            int e = ed_fail("%s: a symlink to %s, which is %s; give a file name", path, real, kind_of(st.st_mode));
            free(real);
            return e;
        }
        *target = real;
        return ED_OK;
    }
    if (!S_ISREG(st.st_mode)) return ed_fail("%s: is %s; give a file name", path, kind_of(st.st_mode));
    *target = strdup(path);
    return *target ? ED_OK : ed_fail("%s: out of memory", path);
}

/* Temporary files "NAME.tmp<pid>.<n>" of processes that no longer run are what a kill
 * during a save leaves behind: removed on the next save of the same NAME. */
static void remove_stale_temps(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    char dir[PATH_MAX];
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == path) snprintf(dir, sizeof dir, "/");
    else if ((size_t)(slash - path) < sizeof dir) snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    else return;
    DIR *d = opendir(dir);
    if (!d) return;
    size_t blen = strlen(base);
    for (struct dirent *e; (e = readdir(d));) {
        const char *name = e->d_name;
        if (strncmp(name, base, blen) != 0 || strncmp(name + blen, ".tmp", 4) != 0) continue;
        char *end;
        long pid = strtol(name + blen + 4, &end, 10);
        if (end == name + blen + 4 || *end != '.' || pid <= 0 || pid == (long)getpid()) continue;
        strtoul(end + 1, &end, 10);
        if (*end) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue; /* alive, or not ours to judge */
        char full[PATH_MAX];
        if (snprintf(full, sizeof full, "%s/%s", dir, name) < (int)sizeof full) unlink(full);
    }
    closedir(d);
}

int ed_atomic_open(ed_atomic_file *af, const char *path)
{
    static atomic_uint counter;
    af->f = NULL;
    af->tmp = NULL;
    af->path = NULL;
    char *target;
    if (resolve_target(path, &target) != ED_OK) return ED_ERR;
    af->path = target;
    path = target;
    remove_stale_temps(path);
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
            const char *slash = strrchr(path, '/');
            status = ed_fail("%s: cannot write in directory '%.*s': %s", path, slash ? (int)(slash - path) + 1 : 1,
                             slash ? path : ".", strerror(errno));
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
    free(target);
    af->path = NULL;
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
        free(af->path);
        af->path = NULL;
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
    free(af->path);
    af->path = NULL;
    return status;
}

bool ed_same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int ed_atomic_check(const char *path)
{
    ed_atomic_file af;
    if (ed_atomic_open(&af, path) != ED_OK) return ED_ERR;
    ed_atomic_finish(&af, ED_ERR);
    return ED_OK;
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
