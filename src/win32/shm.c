/*
 * Win32 backend: shared memory as pagefile-backed file mappings. An
 * anonymous block is an unnamed mapping: having no name, it cannot be left
 * behind; it goes when the last handle and view of it are gone, however
 * the processes end.
 *
 * Named blocks. Windows keeps a section's name while any handle of it is
 * open, and has no unlink: a name outlives mproc_shm_unlink while some
 * process still has the block. So a name is served by generations: the
 * sections "Local\mproc-shm.NAME.G" for G = 0..SHM_GENERATIONS-1, each
 * ending in the trailer of backend.h. Unlink marks the block's trailer
 * MPROC__SHM_UNLINKED (an atomic exchange on the block itself, so it
 * marks exactly that block); attach takes the one generation that is
 * live; create refuses when one is live and otherwise makes a fresh
 * section under a generation no section has (fresh sections are zeroed).
 * Create and attach of a name are serialised by a mutex of the name
 * ("Local\mproc-shm.NAME.lock"), so that two creators cannot both find
 * no live block, and no attacher sees a section before its trailer is
 * written. Every named object has the owner-only DACL.
 *
 * Map: anonymous blocks; names and the lock; named blocks.
 */
#include "win32.h"

#include <stdio.h>
#include <string.h>

/* A size the system cannot give: Windows refuses a section larger than it
 * can commit with ERROR_INVALID_PARAMETER (or ERROR_COMMITMENT_LIMIT,
 * ERROR_DISK_FULL ...), and a view larger than the address space with
 * ERROR_NOT_ENOUGH_MEMORY. The arguments themselves were checked, so each
 * is a lack of memory, as mmap's ENOMEM is on POSIX: one code for one
 * condition (L16). */
static int create_error(void)
{
    DWORD err = GetLastError();

    switch (err) {
    case ERROR_INVALID_PARAMETER:
    case ERROR_NOT_ENOUGH_MEMORY:
    case ERROR_OUTOFMEMORY:
    case ERROR_COMMITMENT_LIMIT:
    case ERROR_DISK_FULL:
    case ERROR_FILE_TOO_LARGE:
    case ERROR_NO_SYSTEM_RESOURCES:
    case ERROR_PAGEFILE_QUOTA:
        return MPROC_ENOMEM;
    default:
        return mproc__os_error((long)err);
    }
}

int mproc__os_shm_create(size_t size, mproc__handle *h, void **addr)
{
    HANDLE m;
    void *p;
    uint64_t sz = (uint64_t)size;

    if (size == 0 || h == NULL || addr == NULL)
        return MPROC_EINVAL;
    /* Not inheritable: the handle reaches a child only through a spawn
     * request's handle list. The pages are committed and zeroed. */
    m = CreateFileMappingW(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE,
                           (DWORD)(sz >> 32), (DWORD)(sz & 0xFFFFFFFFu), NULL);
    if (m == NULL)
        return create_error();
    p = MapViewOfFile(m, FILE_MAP_ALL_ACCESS, 0, 0, size);
    if (p == NULL) {
        int rc = create_error();
        CloseHandle(m);
        return rc;
    }
    *h = mproc__win_mh(m);
    *addr = p;
    return 0;
}

int mproc__os_shm_map(mproc__handle h, size_t size, void **addr)
{
    void *p;

    if (h == MPROC__BADHANDLE || h == 0 || size == 0 || addr == NULL)
        return MPROC_EINVAL;
    p = MapViewOfFile(mproc__win_h(h), FILE_MAP_ALL_ACCESS, 0, 0, size);
    if (p == NULL)
        return mproc__win_last_error();
    *addr = p;
    return 0;
}

void mproc__os_shm_unmap(void *addr, size_t size)
{
    (void)size; /* a view is unmapped whole */
    if (addr != NULL)
        UnmapViewOfFile(addr);
}

/* ---------------------------------------------------------------------------
 * Names and the lock
 */

/* Unlinked blocks of one name still in use at once, at most. */
#define SHM_GENERATIONS 64
/* "Local\mproc-shm." + name + ".lock" fits. */
#define SHM_KNAME_MAX (MPROC_SHM_NAME_MAX + 32)

size_t mproc__os_page_size(void)
{
    SYSTEM_INFO si;
    GetSystemInfo(&si);
    return si.dwPageSize > 0 && (si.dwPageSize & (si.dwPageSize - 1)) == 0
               ? (size_t)si.dwPageSize
               : 4096;
}

int mproc__os_random(void *buf, size_t n)
{
    if (buf == NULL && n > 0)
        return MPROC_EINVAL;
    return mproc__win_random(buf, n);
}

/* The kernel name of generation g (g < 0: the lock). The name is ASCII
 * (common code checked it). */
static void kname(const char *name, int g, wchar_t *out)
{
    int n = swprintf(out, SHM_KNAME_MAX, L"Local\\mproc-shm.%hs.", name);
    if (g < 0)
        swprintf(out + n, SHM_KNAME_MAX - (size_t)n, L"lock");
    else
        swprintf(out + n, SHM_KNAME_MAX - (size_t)n, L"%02x", (unsigned)g);
}

static int name_lock(const char *name, HANDLE *out)
{
    SECURITY_ATTRIBUTES *sa;
    wchar_t k[SHM_KNAME_MAX];
    HANDLE m;
    DWORD w;
    int rc = mproc__win_owner_sa(&sa);

    *out = NULL;
    if (rc != 0)
        return rc;
    kname(name, -1, k);
    m = CreateMutexW(sa, FALSE, k);
    if (m == NULL)
        return mproc__win_last_error(); /* another user's: MPROC_EPERM */
    /* Held for a few system calls; a holder that died abandons it, and
     * what it left is checked like anything else. */
    w = WaitForSingleObject(m, INFINITE);
    if (w != WAIT_OBJECT_0 && w != WAIT_ABANDONED) {
        rc = mproc__win_last_error();
        CloseHandle(m);
        return rc;
    }
    *out = m;
    return 0;
}

static void name_unlock(HANDLE m)
{
    ReleaseMutex(m);
    CloseHandle(m);
}

/* ---------------------------------------------------------------------------
 * Named blocks
 */

typedef struct gen_view {
    HANDLE h;
    void *p;
    size_t map;
} gen_view;

enum { GEN_ABSENT = 1, GEN_DEAD = 2 };

/* Opens generation g: 0 with *v for a live block, GEN_ABSENT when no
 * section has that name, GEN_DEAD for an unlinked one (or one a creator
 * left unfinished), or a negative code. */
static int gen_open(const char *name, int g, gen_view *v)
{
    MEMORY_BASIC_INFORMATION mbi;
    wchar_t k[SHM_KNAME_MAX];
    size_t page = mproc__os_page_size(), size;
    mproc__shm_trailer *t;
    DWORD err;
    int rc;

    v->p = NULL;
    v->map = 0;
    kname(name, g, k);
    v->h = OpenFileMappingW(FILE_MAP_ALL_ACCESS, FALSE, k);
    if (v->h == NULL) {
        err = GetLastError();
        if (err == ERROR_FILE_NOT_FOUND || err == ERROR_PATH_NOT_FOUND)
            return GEN_ABSENT;
        return mproc__os_error((long)err);
    }
    v->p = MapViewOfFile(v->h, FILE_MAP_ALL_ACCESS, 0, 0, 0);
    if (v->p == NULL) {
        rc = mproc__win_last_error();
        CloseHandle(v->h);
        return rc;
    }
    /* The view's length, from the system: whole pages of the section. */
    if (VirtualQuery(v->p, &mbi, sizeof mbi) != sizeof mbi ||
        mbi.RegionSize < sizeof(mproc__shm_trailer)) {
        rc = MPROC_ECORRUPT;
        goto drop;
    }
    v->map = (size_t)mbi.RegionSize;
    t = mproc__shm_trailer_of(v->p, v->map);
    if (InterlockedCompareExchange((volatile LONG *)&t->state, 0, 0) !=
        (LONG)MPROC__SHM_LIVE) {
        rc = GEN_DEAD;
        goto drop;
    }
    rc = mproc__shm_trailer_size(t, v->map, page, &size);
    if (rc == 0)
        return 0;
drop:
    UnmapViewOfFile(v->p);
    CloseHandle(v->h);
    return rc;
}

int mproc__os_shm_create_named(const char *name, size_t size, mproc__handle *h,
                               void **addr, size_t *map)
{
    SECURITY_ATTRIBUTES *sa;
    wchar_t k[SHM_KNAME_MAX];
    size_t len = mproc__shm_map_len(size, mproc__os_page_size());
    uint64_t sz = (uint64_t)len;
    mproc__shm_trailer *t;
    HANDLE lk, m;
    gen_view v;
    void *p;
    int g, free_g = -1, rc;

    if (name == NULL || h == NULL || addr == NULL || map == NULL || size == 0)
        return MPROC_EINVAL;
    if (len == 0)
        return MPROC_ENOMEM;
    if ((rc = mproc__win_owner_sa(&sa)) != 0 || (rc = name_lock(name, &lk)))
        return rc;
    for (g = 0; g < SHM_GENERATIONS; g++) {
        rc = gen_open(name, g, &v);
        if (rc == 0) {
            UnmapViewOfFile(v.p);
            CloseHandle(v.h);
            rc = MPROC_EEXIST;
            goto out;
        }
        if (rc < 0 && rc != MPROC_ECORRUPT)
            goto out;
        if (rc == GEN_ABSENT && free_g < 0)
            free_g = g;
    }
    rc = MPROC_EAGAIN; /* every generation is an unlinked block in use */
    if (free_g < 0)
        goto out;
    kname(name, free_g, k);
    m = CreateFileMappingW(INVALID_HANDLE_VALUE, sa, PAGE_READWRITE,
                           (DWORD)(sz >> 32), (DWORD)(sz & 0xFFFFFFFFu), k);
    if (m == NULL) {
        rc = create_error();
        goto out;
    }
    if (GetLastError() == ERROR_ALREADY_EXISTS) {
        /* Made by something that does not take the lock. */
        CloseHandle(m);
        rc = MPROC_EEXIST;
        goto out;
    }
    p = MapViewOfFile(m, FILE_MAP_ALL_ACCESS, 0, 0, len);
    if (p == NULL) {
        rc = create_error();
        CloseHandle(m);
        goto out;
    }
    t = mproc__shm_trailer_of(p, len);
    t->magic = MPROC__SHM_TRAILER_MAGIC;
    t->size = (uint64_t)size;
    InterlockedExchange((volatile LONG *)&t->state, (LONG)MPROC__SHM_LIVE);
    *h = mproc__win_mh(m);
    *addr = p;
    *map = len;
    rc = 0;
out:
    name_unlock(lk);
    return rc;
}

int mproc__os_shm_attach_named(const char *name, mproc__handle *h, void **addr,
                               size_t *size, size_t *map)
{
    HANDLE lk;
    gen_view v;
    int g, rc, bad = 0;

    if (name == NULL || h == NULL || addr == NULL || size == NULL ||
        map == NULL)
        return MPROC_EINVAL;
    if ((rc = name_lock(name, &lk)) != 0)
        return rc;
    for (g = 0; g < SHM_GENERATIONS; g++) {
        rc = gen_open(name, g, &v);
        if (rc == 0)
            break;
        if (rc == MPROC_ECORRUPT)
            bad = rc;
        else if (rc < 0)
            break;
    }
    name_unlock(lk);
    if (rc != 0)
        return rc < 0 ? rc : bad != 0 ? bad : MPROC_ENOENT;
    (void)mproc__shm_trailer_size(mproc__shm_trailer_of(v.p, v.map), v.map,
                                  mproc__os_page_size(), size);
    *h = mproc__win_mh(v.h);
    *addr = v.p;
    *map = v.map;
    return 0;
}

int mproc__os_shm_unlink_named(const char *name, mproc__handle h, void *addr,
                               size_t map)
{
    mproc__shm_trailer *t;

    (void)h;
    if (name == NULL || addr == NULL || map < sizeof *t)
        return MPROC_EINVAL;
    t = mproc__shm_trailer_of(addr, map);
    /* Of two unlinks, one finds the block live. */
    if (InterlockedCompareExchange(
            (volatile LONG *)&t->state, (LONG)MPROC__SHM_UNLINKED,
            (LONG)MPROC__SHM_LIVE) != (LONG)MPROC__SHM_LIVE)
        return MPROC_ENOENT;
    return 0;
}
