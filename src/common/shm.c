/* STUB: generated placeholder, every function returns MPROC_ENOSYS. */
#include "internal.h"

#include <stddef.h>

int mproc_shm_create(mproc_shm **m, size_t size)
{
    (void)m;
    (void)size;
    return MPROC_ENOSYS;
}

void * mproc_shm_ptr(const mproc_shm *m)
{
    (void)m;
    return NULL;
}

size_t mproc_shm_size(const mproc_shm *m)
{
    (void)m;
    return 0;
}

mproc_shm * mproc_shm_destroy(mproc_shm *m)
{
    (void)m;
    return NULL;
}

int mproc__shm_export(mproc_shm *m, mproc__export *ex)
{
    (void)m;
    (void)ex;
    return MPROC_ENOSYS;
}

int mproc__shm_import(const mproc__export *ex, mproc_shm **out)
{
    (void)ex;
    (void)out;
    return MPROC_ENOSYS;
}
