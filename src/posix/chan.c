/* STUB: generated placeholder, every function returns MPROC_ENOSYS. */
#include "../common/backend.h"

#include <stddef.h>

int mproc__os_chan_pair(mproc__handle h[2], bool duplex)
{
    (void)h;
    (void)duplex;
    return MPROC_ENOSYS;
}

int64_t mproc__os_chan_read(mproc__handle h, void *buf, size_t n)
{
    (void)h;
    (void)buf;
    (void)n;
    return MPROC_ENOSYS;
}

int mproc__os_chan_write(mproc__handle h, const void *buf, size_t n)
{
    (void)h;
    (void)buf;
    (void)n;
    return MPROC_ENOSYS;
}

int mproc__os_chan_poll(mproc__handle h, int timeout_ms)
{
    (void)h;
    (void)timeout_ms;
    return MPROC_ENOSYS;
}

int mproc__os_wait_many(const mproc__handle *h, const bool *is_process, size_t n, int timeout_ms, bool *ready)
{
    (void)h;
    (void)is_process;
    (void)n;
    (void)timeout_ms;
    (void)ready;
    return MPROC_ENOSYS;
}
