/*
 * Which module a function is in, and what that module is, in a form that
 * holds on another machine: the local pool checks a module by its path,
 * device and inode (the same file on the same machine); an MPI rank on
 * another node may have the same program installed under another path on
 * another file system. So a module is named by its ELF build-id (the
 * linker's hash of its contents, in a PT_NOTE segment that is mapped with
 * the code: read from memory, no file is opened), and, for a module linked
 * without one, by a 64-bit FNV-1a hash of its file's contents (computed
 * once per module; it detects an accidental difference, not a forgery: the
 * ranks of a job trust each other, docs/mpi.md).
 *
 * A function is (module identity, offset from the module's load base);
 * the worker rank finds the loaded module with that identity and checks
 * that the address falls in one of its executable segments before it
 * calls it.
 *
 * Map: hashing; ELF modules (dl_iterate_phdr); other systems (dladdr);
 * descriptions.
 */
#include "mpi-internal.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#if defined(__ELF__)
#include <link.h>
#endif

/* ---------------------------------------------------------------------------
 * Hashing
 */

static int hash_file(const char *path, mproc__mpi_id *id)
{
    uint64_t h = 14695981039346656037ull;
    unsigned char buf[65536];
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int i;
    if (fd < 0)
        return MPROC_ERESOLVE;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        ssize_t k;
        for (k = 0; k < n; k++) {
            h ^= buf[k];
            h *= 1099511628211ull;
        }
    }
    close(fd);
    if (n < 0)
        return MPROC_ERESOLVE;
    id->kind = MPROC__MPI_ID_HASH;
    id->len = 8;
    for (i = 0; i < 8; i++)
        id->id[i] = (uint8_t)(h >> (8 * i));
    return 0;
}

/* Hashes are cached by path: a module's file is read once per process. */
typedef struct cached {
    char *path;
    mproc__mpi_id id;
} cached;

static pthread_mutex_t g_cache_mu = PTHREAD_MUTEX_INITIALIZER;
static cached *g_cache;
static size_t g_ncache;

static int hash_cached(const char *path, mproc__mpi_id *id)
{
    size_t i;
    int rc;
    cached *nc;
    pthread_mutex_lock(&g_cache_mu);
    for (i = 0; i < g_ncache; i++)
        if (strcmp(g_cache[i].path, path) == 0) {
            *id = g_cache[i].id;
            pthread_mutex_unlock(&g_cache_mu);
            return 0;
        }
    rc = hash_file(path, id);
    if (rc == 0 && (nc = realloc(g_cache, (g_ncache + 1) * sizeof *nc))) {
        g_cache = nc;
        g_cache[g_ncache].path = strdup(path);
        g_cache[g_ncache].id = *id;
        if (g_cache[g_ncache].path != NULL)
            g_ncache++;
    }
    pthread_mutex_unlock(&g_cache_mu);
    return rc;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s != NULL ? s + 1 : path;
}

static void copy_name(char *name, size_t cap, const char *path)
{
    if (name != NULL && cap > 0)
        snprintf(name, cap, "%s", path[0] ? base_name(path) : "(program)");
}

void mproc__mpi_id_hex(const mproc__mpi_id *id, char *buf, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    size_t i, n = id->len < 16 ? id->len : 16;
    if (cap == 0)
        return;
    buf[0] = '\0';
    for (i = 0; i < n && 2 * i + 2 < cap; i++) {
        buf[2 * i] = hex[id->id[i] >> 4];
        buf[2 * i + 1] = hex[id->id[i] & 15];
        buf[2 * i + 2] = '\0';
    }
}

#if defined(__ELF__)
/* ---------------------------------------------------------------------------
 * ELF modules: dl_iterate_phdr gives every loaded module with its program
 * headers (the main program first, with an empty name).
 */

/* The GNU build-id note of a module, read from its mapped PT_NOTEs. */
static bool build_id(const struct dl_phdr_info *info, mproc__mpi_id *id)
{
    int i;
    for (i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        const uint8_t *p, *end;
        size_t align;
        if (ph->p_type != PT_NOTE)
            continue;
        p = (const uint8_t *)(info->dlpi_addr + ph->p_vaddr);
        end = p + ph->p_memsz;
        align = ph->p_align == 8 ? 8 : 4;
        while (end - p >= 12) {
            uint32_t namesz, descsz, type;
            size_t nlen, dlen;
            memcpy(&namesz, p, 4);
            memcpy(&descsz, p + 4, 4);
            memcpy(&type, p + 8, 4);
            nlen = ((size_t)namesz + align - 1) & ~(align - 1);
            dlen = ((size_t)descsz + align - 1) & ~(align - 1);
            if ((size_t)(end - p - 12) < nlen ||
                (size_t)(end - p - 12) - nlen < dlen)
                break;
            if (type == 3 /* NT_GNU_BUILD_ID */ && namesz == 4 &&
                memcmp(p + 12, "GNU", 4) == 0 && descsz > 0) {
                id->kind = MPROC__MPI_ID_BUILD;
                id->len =
                    (uint8_t)(descsz < MPROC__MPI_ID_MAX ? descsz
                                                         : MPROC__MPI_ID_MAX);
                memcpy(id->id, p + 12 + nlen, id->len);
                return true;
            }
            p += 12 + nlen + dlen;
        }
    }
    return false;
}

static int identify(const struct dl_phdr_info *info, bool main_program,
                    mproc__mpi_id *id)
{
    memset(id, 0, sizeof *id);
    if (build_id(info, id))
        return 0;
    if (main_program || info->dlpi_name == NULL || info->dlpi_name[0] == '\0')
        return hash_cached("/proc/self/exe", id);
    return hash_cached(info->dlpi_name, id);
}

/* Is [base + off] inside an executable segment of the module? */
static bool in_code(const struct dl_phdr_info *info, uintptr_t addr)
{
    int i;
    for (i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = (uintptr_t)info->dlpi_addr + (uintptr_t)ph->p_vaddr;
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X) && addr >= lo &&
            addr - lo < (uintptr_t)ph->p_memsz)
            return true;
    }
    return false;
}

typedef struct find_addr {
    uintptr_t addr;
    int index;
    bool found;
    int rc;
    uintptr_t base;
    mproc__mpi_id *id;
    char *name;
    size_t cap;
} find_addr;

static int find_addr_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    find_addr *f = arg;
    (void)size;
    if (in_code(info, f->addr)) {
        f->found = true;
        f->base = (uintptr_t)info->dlpi_addr;
        f->rc = identify(info, f->index == 0, f->id);
        copy_name(f->name, f->cap, info->dlpi_name ? info->dlpi_name : "");
        return 1;
    }
    f->index++;
    return 0;
}

int mproc__mpi_module_of(const void *addr, uintptr_t *base, mproc__mpi_id *id,
                         char *name, size_t cap)
{
    find_addr f;
    memset(&f, 0, sizeof f);
    f.addr = (uintptr_t)addr;
    f.id = id;
    f.name = name;
    f.cap = cap;
    (void)dl_iterate_phdr(find_addr_cb, &f);
    if (!f.found)
        return MPROC_ERESOLVE;
    *base = f.base;
    return f.rc;
}

static int first_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    mproc__mpi_id *id = arg;
    (void)size;
    return identify(info, true, id) == 0 ? 1 : -1;
}

int mproc__mpi_program_id(mproc__mpi_id *id)
{
    memset(id, 0, sizeof *id);
    return dl_iterate_phdr(first_cb, id) == 1 ? 0 : MPROC_ERESOLVE;
}

typedef struct find_id {
    const mproc__mpi_id *want;
    uint64_t offset;
    int index;
    void *fn;
} find_id;

static int find_id_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    find_id *f = arg;
    mproc__mpi_id id;
    uintptr_t addr;
    bool main_program = f->index++ == 0;
    (void)size;
    /* The cheap test first: a module whose code cannot hold the offset. */
    addr = (uintptr_t)info->dlpi_addr + (uintptr_t)f->offset;
    if (!in_code(info, addr))
        return 0;
    if (identify(info, main_program, &id) != 0 || id.kind != f->want->kind ||
        id.len != f->want->len || memcmp(id.id, f->want->id, id.len) != 0)
        return 0;
    f->fn = (void *)addr;
    return 1;
}

static int resolve_id(const mproc__mpi_id *id, uint64_t offset, void **fn)
{
    find_id f;
    memset(&f, 0, sizeof f);
    f.want = id;
    f.offset = offset;
    (void)dl_iterate_phdr(find_id_cb, &f);
    *fn = f.fn;
    return f.fn != NULL ? 0 : MPROC_ERESOLVE;
}

#else
/* ---------------------------------------------------------------------------
 * Other systems (not ELF: Mach-O): dladdr names the module, whose file is
 * hashed; the lookup goes through dladdr of the module's own symbols.
 * Untested here (the CI machine is Linux); docs/platforms.md.
 */

int mproc__mpi_module_of(const void *addr, uintptr_t *base, mproc__mpi_id *id,
                         char *name, size_t cap)
{
    Dl_info info;
    if (dladdr(addr, &info) == 0 || info.dli_fname == NULL)
        return MPROC_ERESOLVE;
    *base = (uintptr_t)info.dli_fbase;
    copy_name(name, cap, info.dli_fname);
    memset(id, 0, sizeof *id);
    return hash_cached(info.dli_fname, id);
}

int mproc__mpi_program_id(mproc__mpi_id *id)
{
    Dl_info info;
    extern int main(int, char **);
    if (dladdr((void *)(uintptr_t)&main, &info) == 0 || info.dli_fname == NULL)
        return MPROC_ERESOLVE;
    memset(id, 0, sizeof *id);
    return hash_cached(info.dli_fname, id);
}

static int resolve_id(const mproc__mpi_id *id, uint64_t offset, void **fn)
{
    (void)id;
    (void)offset;
    *fn = NULL;
    return MPROC_ERESOLVE;
}
#endif

/* ---------------------------------------------------------------------------
 * Descriptions
 */

#define DESC_HDR 12

int mproc__mpi_describe(const void *fn, void *buf, size_t cap, size_t *len)
{
    uint8_t *b = buf;
    mproc__mpi_id id;
    uintptr_t base = 0;
    char name[200];
    uint64_t off;
    size_t n;
    int rc, i;
    rc = mproc__mpi_module_of(fn, &base, &id, name, sizeof name);
    if (rc < 0)
        return MPROC_ERESOLVE;
    n = strlen(name);
    if (cap < DESC_HDR + id.len + n)
        return MPROC_ETOOSMALL;
    off = (uint64_t)((uintptr_t)fn - base);
    b[0] = 'B';
    b[1] = id.kind;
    b[2] = id.len;
    b[3] = 0;
    for (i = 0; i < 8; i++)
        b[4 + i] = (uint8_t)(off >> (8 * i));
    memcpy(b + DESC_HDR, id.id, id.len);
    memcpy(b + DESC_HDR + id.len, name, n);
    *len = DESC_HDR + id.len + n;
    return 0;
}

int mproc__mpi_resolve(const void *desc, size_t len, void **fn)
{
    const uint8_t *d = desc;
    mproc__mpi_id id;
    uint64_t off = 0;
    int i;
    *fn = NULL;
    if (len < DESC_HDR || d[0] != 'B' ||
        (d[1] != MPROC__MPI_ID_BUILD && d[1] != MPROC__MPI_ID_HASH) ||
        d[2] == 0 || d[2] > MPROC__MPI_ID_MAX || len < (size_t)DESC_HDR + d[2])
        return MPROC_ERESOLVE;
    memset(&id, 0, sizeof id);
    id.kind = d[1];
    id.len = d[2];
    memcpy(id.id, d + DESC_HDR, id.len);
    for (i = 0; i < 8; i++)
        off |= (uint64_t)d[4 + i] << (8 * i);
    return resolve_id(&id, off, fn);
}
