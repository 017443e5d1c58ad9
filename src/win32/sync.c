/* STUB: generated placeholder, every function returns MPROC_ENOSYS. */
#include "../common/backend.h"

#include <stddef.h>

int mproc__os_mutex_init(void *mem, mproc__handle *h)
{
    (void)mem;
    (void)h;
    return MPROC_ENOSYS;
}

int mproc__os_mutex_open(void *mem, mproc__handle h)
{
    (void)mem;
    (void)h;
    return MPROC_ENOSYS;
}

int mproc__os_mutex_lock(void *mem, mproc__handle h, int timeout_ms)
{
    (void)mem;
    (void)h;
    (void)timeout_ms;
    return MPROC_ENOSYS;
}

int mproc__os_mutex_unlock(void *mem, mproc__handle h)
{
    (void)mem;
    (void)h;
    return MPROC_ENOSYS;
}

void mproc__os_mutex_destroy(void *mem, mproc__handle h)
{
    (void)mem;
    (void)h;
}

int mproc__os_sem_init(void *mem, mproc__handle *h, unsigned initial)
{
    (void)mem;
    (void)h;
    (void)initial;
    return MPROC_ENOSYS;
}

int mproc__os_sem_open(void *mem, mproc__handle h)
{
    (void)mem;
    (void)h;
    return MPROC_ENOSYS;
}

int mproc__os_sem_wait(void *mem, mproc__handle h, int timeout_ms)
{
    (void)mem;
    (void)h;
    (void)timeout_ms;
    return MPROC_ENOSYS;
}

int mproc__os_sem_post(void *mem, mproc__handle h, unsigned n)
{
    (void)mem;
    (void)h;
    (void)n;
    return MPROC_ENOSYS;
}

int64_t mproc__os_sem_value(void *mem, mproc__handle h)
{
    (void)mem;
    (void)h;
    return MPROC_ENOSYS;
}

void mproc__os_sem_destroy(void *mem, mproc__handle h)
{
    (void)mem;
    (void)h;
}
