/*
 * Win32 backend: shared memory as unnamed, pagefile-backed file mappings.
 * Having no name, a mapping cannot be left behind: it goes when the last
 * handle and view of it are gone, however the processes end.
 */
#include "win32.h"

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
