/* STUB: generated placeholder, every function returns MPROC_ENOSYS. */
#include "internal.h"

#include <stddef.h>

int mproc_queue_create(mproc_queue **q, size_t maxsize)
{
    (void)q;
    (void)maxsize;
    return MPROC_ENOSYS;
}

int mproc_queue_create_joinable(mproc_queue **q, size_t maxsize)
{
    (void)q;
    (void)maxsize;
    return MPROC_ENOSYS;
}

int mproc_queue_put(mproc_queue *q, const mproc_value *v, int timeout_ms)
{
    (void)q;
    (void)v;
    (void)timeout_ms;
    return MPROC_ENOSYS;
}

int mproc_queue_get(mproc_queue *q, mproc_value **out, int timeout_ms)
{
    (void)q;
    (void)out;
    (void)timeout_ms;
    return MPROC_ENOSYS;
}

int mproc_queue_put_bytes(mproc_queue *q, const void *buf, size_t len, int timeout_ms)
{
    (void)q;
    (void)buf;
    (void)len;
    (void)timeout_ms;
    return MPROC_ENOSYS;
}

int mproc_queue_get_bytes(mproc_queue *q, void **buf, size_t *len, int timeout_ms)
{
    (void)q;
    (void)buf;
    (void)len;
    (void)timeout_ms;
    return MPROC_ENOSYS;
}

int64_t mproc_queue_qsize(mproc_queue *q)
{
    (void)q;
    return MPROC_ENOSYS;
}

int mproc_queue_empty(mproc_queue *q)
{
    (void)q;
    return MPROC_ENOSYS;
}

int mproc_queue_full(mproc_queue *q)
{
    (void)q;
    return MPROC_ENOSYS;
}

int mproc_queue_close(mproc_queue *q)
{
    (void)q;
    return MPROC_ENOSYS;
}

int mproc_queue_task_done(mproc_queue *q)
{
    (void)q;
    return MPROC_ENOSYS;
}

int mproc_queue_join(mproc_queue *q, int timeout_ms)
{
    (void)q;
    (void)timeout_ms;
    return MPROC_ENOSYS;
}

mproc_queue * mproc_queue_destroy(mproc_queue *q)
{
    (void)q;
    return NULL;
}

int mproc__queue_export(mproc_queue *q, mproc__export *ex)
{
    (void)q;
    (void)ex;
    return MPROC_ENOSYS;
}

int mproc__queue_import(const mproc__export *ex, mproc_queue **out)
{
    (void)ex;
    (void)out;
    return MPROC_ENOSYS;
}

int mproc__queue_wait_handle(mproc_queue *q, mproc__handle *h, bool *ready_now)
{
    (void)q;
    (void)h;
    (void)ready_now;
    return MPROC_ENOSYS;
}
