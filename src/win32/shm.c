/* STUB: generated placeholder, every function returns MPROC_ENOSYS. */
#include "../common/backend.h"

#include <stddef.h>

int mproc__os_shm_create(size_t size, mproc__handle *h, void **addr)
{
    (void)size;
    (void)h;
    (void)addr;
    return MPROC_ENOSYS;
}

int mproc__os_shm_map(mproc__handle h, size_t size, void **addr)
{
    (void)h;
    (void)size;
    (void)addr;
    return MPROC_ENOSYS;
}

void mproc__os_shm_unmap(void *addr, size_t size)
{
    (void)addr;
    (void)size;
}
