/* The object cache's files. An entry: "edobjc\n\0", u32 format, u32 key bytes, u64 object
 * bytes (little-endian), the SHA-256 of the first 24 bytes and of everything after the
 * checksum, then the key text and the object. A reader accepts only an entry of exactly
 * that size whose checksum and key both match. */
#include "backend/llvm/obj_cache.h"

#include "backend/llvm/sha256.h"
#include "io/atomic_file.h"
#include "runtime/error.h"

#include <dirent.h>
#include <errno.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char magic[8] = {'e', 'd', 'o', 'b', 'j', 'c', '\n', '\0'};
enum { HEAD = 24, SUM = 32, PREFIX = HEAD + SUM };
#define ENTRY_SUFFIX ".edobj"

bool ed_obj_cache_env_off(void)
{
    const char *v = getenv("EDIFICE_NO_CACHE");
    return v && *v && strcmp(v, "0") != 0;
}

static char *join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 1;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s%s", a, b);
    return s;
}

char *ed_obj_cache_dir(void)
{
    const char *v;
    if ((v = getenv("EDIFICE_CACHE_DIR")) && *v) return join(v, "");
    if ((v = getenv("EDIFICE_CACHE")) && *v) return join(v, "/jit");
    if ((v = getenv("XDG_CACHE_HOME")) && *v) return join(v, "/edifice/jit");
    if ((v = getenv("HOME")) && *v) return join(v, "/.cache/edifice/jit");
    return NULL;
}

static char build_id[128];
static pthread_once_t build_once = PTHREAD_ONCE_INIT;

/* The GNU build ID note of the loaded object that holds this function. */
static int find_build_id(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    uintptr_t self = (uintptr_t)data;
    bool mine = false;
    for (int i = 0; i < info->dlpi_phnum && !mine; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t at = info->dlpi_addr + ph->p_vaddr;
        mine = ph->p_type == PT_LOAD && self >= at && self < at + ph->p_memsz;
    }
    if (!mine) return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE) continue;
        const uint8_t *p = (const uint8_t *)(info->dlpi_addr + ph->p_vaddr), *end = p + ph->p_memsz;
        while (p + 12 <= end) {
            uint32_t namesz, descsz, type;
            memcpy(&namesz, p, 4), memcpy(&descsz, p + 4, 4), memcpy(&type, p + 8, 4);
            const uint8_t *name = p + 12, *desc = name + ((namesz + 3) & ~3u);
            if (desc + descsz > end) break;
            if (type == NT_GNU_BUILD_ID && namesz == 4 && memcmp(name, "GNU", 4) == 0 && descsz > 0 &&
                descsz * 2 < sizeof build_id) {
                for (uint32_t k = 0; k < descsz; k++) snprintf(build_id + 2 * k, 3, "%02x", desc[k]);
                return 1;
            }
            p = desc + ((descsz + 3) & ~3u);
        }
    }
    return 1;
}

static void init_build_id(void)
{
    void *self = (void *)(uintptr_t)init_build_id;
    dl_iterate_phdr(find_build_id, self);
    if (build_id[0]) return;
    Dl_info info;
    struct stat st;
    if (dladdr(self, &info) && info.dli_fname && stat(info.dli_fname, &st) == 0)
        snprintf(build_id, sizeof build_id, "file %lld %lld.%09ld %llu", (long long)st.st_size,
                 (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec, (unsigned long long)st.st_ino);
    else snprintf(build_id, sizeof build_id, "unknown %s %s", __DATE__, __TIME__);
}

const char *ed_obj_cache_build_id(void)
{
    pthread_once(&build_once, init_build_id);
    return build_id;
}

char *ed_obj_cache_key(const char *src, size_t src_len, int level)
{
    unsigned major, minor, patch;
    LLVMGetVersion(&major, &minor, &patch);
    char *cpu = LLVMGetHostCPUName(), *feat = LLVMGetHostCPUFeatures(), src_hash[65];
    ed_sha256_hex(src, src_len, src_hash);
    const char *build = ed_obj_cache_build_id();
    const char *fmt = "edifice object cache %d\nbuild %s\nllvm %u.%u.%u\ncpu %s\nfeatures %s\nopt %d\nsource %s %zu\n";
    int n = snprintf(NULL, 0, fmt, ED_OBJ_CACHE_FORMAT, build, major, minor, patch, cpu, feat, level, src_hash,
                     src_len);
    char *key = n > 0 ? malloc((size_t)n + 1) : NULL;
    if (key)
        snprintf(key, (size_t)n + 1, fmt, ED_OBJ_CACHE_FORMAT, build, major, minor, patch, cpu, feat, level, src_hash,
                 src_len);
    LLVMDisposeMessage(cpu);
    LLVMDisposeMessage(feat);
    return key;
}

static uint64_t get_le(const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static void put_le(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++, v >>= 8) p[i] = (uint8_t)v;
}

/* The checksum: the header's fields and everything after the checksum. */
static void entry_sum(const uint8_t *head, const uint8_t *key, size_t key_len, const uint8_t *obj, size_t obj_len,
                      uint8_t sum[SUM])
{
    ed_sha256 s;
    ed_sha256_init(&s);
    ed_sha256_add(&s, head, HEAD);
    ed_sha256_add(&s, key, key_len);
    ed_sha256_add(&s, obj, obj_len);
    ed_sha256_done(&s, sum);
}

bool ed_obj_cache_parse(const uint8_t *data, size_t size, const char *key, const uint8_t **obj, size_t *obj_len)
{
    if (size < PREFIX || memcmp(data, magic, sizeof magic) != 0) return false;
    if (get_le(data + 8, 4) != ED_OBJ_CACHE_FORMAT) return false;
    uint64_t klen = get_le(data + 12, 4), olen = get_le(data + 16, 8);
    size_t want = strlen(key);
    /* klen first: size - PREFIX - klen must not wrap (a huge olen could then match it). */
    if (klen != want || klen > size - PREFIX || olen == 0 || size - PREFIX - klen != olen) return false;
    if (memcmp(data + PREFIX, key, want) != 0) return false;
    uint8_t sum[SUM];
    entry_sum(data, data + PREFIX, want, data + PREFIX + want, (size_t)olen, sum);
    if (memcmp(sum, data + HEAD, SUM) != 0) return false;
    *obj = data + PREFIX + want;
    *obj_len = (size_t)olen;
    return true;
}

/* dir/<first 40 hex digits of the key's SHA-256>.edobj */
static char *entry_path(const char *dir, const char *key)
{
    char hex[65];
    ed_sha256_hex(key, strlen(key), hex);
    hex[40] = '\0';
    size_t n = strlen(dir) + 64;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s%s", dir, hex, ENTRY_SUFFIX);
    return p;
}

/* The whole file, or NULL (missing, unreadable, or above 1 GiB: no entry is that big). */
static uint8_t *read_all(const char *path, size_t *size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    struct stat st;
    uint8_t *buf = NULL;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 && st.st_size <= (1ll << 30) &&
        (buf = malloc((size_t)st.st_size))) {
        size_t got = 0;
        while (got < (size_t)st.st_size) {
            ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) break;
            got += (size_t)r;
        }
        if (got != (size_t)st.st_size) free(buf), buf = NULL;
        *size = got;
    }
    close(fd);
    return buf;
}

bool ed_obj_cache_load(const char *dir, const char *key, void **obj, size_t *obj_len)
{
    char *path = entry_path(dir, key);
    size_t size = 0;
    uint8_t *data = path ? read_all(path, &size) : NULL;
    const uint8_t *o;
    bool hit = data && ed_obj_cache_parse(data, size, key, &o, obj_len) && (*obj = malloc(*obj_len));
    if (hit) {
        memcpy(*obj, o, *obj_len);
        utimensat(AT_FDCWD, path, NULL, 0); /* used now: the last to be evicted */
    }
    free(data);
    free(path);
    return hit;
}

typedef struct {
    char *path;
    int64_t bytes;
    struct timespec used;
} cache_file;

static int older_first(const void *a, const void *b)
{
    const struct timespec *x = &((const cache_file *)a)->used, *y = &((const cache_file *)b)->used;
    if (x->tv_sec != y->tv_sec) return x->tv_sec < y->tv_sec ? -1 : 1;
    return x->tv_nsec < y->tv_nsec ? -1 : x->tv_nsec > y->tv_nsec;
}

/* Remove the least recently used entries until the rest fit in max_bytes. Another
 * process may evict at the same time: a file already gone is not an error. */
static void evict(const char *dir, int64_t max_bytes)
{
    DIR *d = opendir(dir);
    if (!d) return;
    cache_file *files = NULL;
    size_t n = 0, cap = 0;
    int64_t total = 0;
    size_t slen = strlen(ENTRY_SUFFIX);
    for (struct dirent *e; (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len <= slen || strcmp(e->d_name + len - slen, ENTRY_SUFFIX) != 0) continue;
        char *path = malloc(strlen(dir) + len + 2);
        if (!path) break;
        sprintf(path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
            free(path);
            continue;
        }
        if (n == cap) {
            cache_file *grown = realloc(files, (cap = cap ? 2 * cap : 64) * sizeof *files);
            if (!grown) {
                free(path);
                break;
            }
            files = grown;
        }
        files[n++] = (cache_file){path, st.st_size, st.st_mtim};
        total += st.st_size;
    }
    closedir(d);
    qsort(files, n, sizeof *files, older_first);
    for (size_t i = 0; i < n && total > max_bytes; i++)
        if (unlink(files[i].path) == 0 || errno == ENOENT) total -= files[i].bytes;
    for (size_t i = 0; i < n; i++) free(files[i].path);
    free(files);
}

int ed_obj_cache_store(const char *dir, const char *key, const void *obj, size_t obj_len, int64_t max_bytes)
{
    if (ed_make_dirs(dir) != ED_OK) return ED_ERR;
    char *path = entry_path(dir, key);
    if (!path) return ed_fail("object cache: out of memory");
    size_t key_len = strlen(key);
    uint8_t prefix[PREFIX];
    memcpy(prefix, magic, sizeof magic);
    put_le(prefix + 8, ED_OBJ_CACHE_FORMAT, 4);
    put_le(prefix + 12, key_len, 4);
    put_le(prefix + 16, obj_len, 8);
    entry_sum(prefix, (const uint8_t *)key, key_len, obj, obj_len, prefix + HEAD);
    ed_atomic_file af;
    int st = ed_atomic_open(&af, path);
    if (st == ED_OK) {
        bool ok = fwrite(prefix, 1, PREFIX, af.f) == PREFIX && fwrite(key, 1, key_len, af.f) == key_len &&
                  fwrite(obj, 1, obj_len, af.f) == obj_len;
        st = ed_atomic_finish(&af, ok ? ED_OK : ed_fail("object cache: writing %s failed", path));
    }
    free(path);
    if (st == ED_OK) evict(dir, max_bytes);
    return st;
}

int64_t ed_obj_cache_max_bytes(void)
{
    const char *v = getenv("EDIFICE_CACHE_MAX_MB");
    char *end;
    long long mb = v ? strtoll(v, &end, 10) : 0;
    return v && *v && !*end && mb > 0 && mb < (1ll << 40) ? mb << 20 : ED_OBJ_CACHE_MAX_BYTES;
}

/* A record: u64 text bytes, the text, u64 plan bytes, the plan, u32 kernels, u32 objects, then per object u64 bytes and the bytes. */
int ed_obj_record_pack(const ed_obj_record *r, void **out, size_t *out_len)
{
    if (r->nobj < 1 || r->nobj > ED_OBJ_CACHE_MAX_OBJECTS)
        return ed_fail("object cache: %d objects in a record", r->nobj);
    size_t n = 8 + r->text_len + 8 + r->plan_len + 8;
    for (int i = 0; i < r->nobj; i++) n += 8 + r->obj_len[i];
    uint8_t *p = malloc(n);
    if (!p) return ed_fail("object cache: out of memory");
    size_t at = 0;
    put_le(p, r->text_len, 8);
    memcpy(p + 8, r->text, r->text_len);
    at = 8 + r->text_len;
    put_le(p + at, r->plan_len, 8);
    if (r->plan_len) memcpy(p + at + 8, r->plan, r->plan_len);
    at += 8 + r->plan_len;
    put_le(p + at, (uint64_t)(uint32_t)r->kernels, 4);
    put_le(p + at + 4, (uint64_t)r->nobj, 4);
    at += 8;
    for (int i = 0; i < r->nobj; i++) {
        put_le(p + at, r->obj_len[i], 8);
        memcpy(p + at + 8, r->obj[i], r->obj_len[i]);
        at += 8 + r->obj_len[i];
    }
    *out = p;
    *out_len = n;
    return ED_OK;
}

bool ed_obj_record_unpack(const void *data, size_t size, ed_obj_record *r)
{
    const uint8_t *p = data;
    *r = (ed_obj_record){0};
    if (size < 24) return false;
    uint64_t tl = get_le(p, 8);
    if (tl > size - 24) return false;
    r->text = (const char *)p + 8;
    r->text_len = (size_t)tl;
    size_t at = 8 + (size_t)tl;
    uint64_t pl = get_le(p + at, 8);
    if (pl > size - at - 16) return false;
    r->plan = p + at + 8;
    r->plan_len = (size_t)pl;
    at += 8 + (size_t)pl;
    r->kernels = (int)(get_le(p + at, 4) & 0x7fffffff);
    uint64_t nobj = get_le(p + at + 4, 4);
    at += 8;
    if (nobj < 1 || nobj > ED_OBJ_CACHE_MAX_OBJECTS) return false;
    for (uint64_t i = 0; i < nobj; i++) {
        if (size - at < 8) return false;
        uint64_t len = get_le(p + at, 8);
        at += 8;
        if (len == 0 || len > size - at) return false;
        r->obj[i] = p + at;
        r->obj_len[i] = (size_t)len;
        at += (size_t)len;
    }
    r->nobj = (int)nobj;
    return at == size;
}
