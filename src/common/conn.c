/* STUB: generated placeholder, every function returns MPROC_ENOSYS. */
#include "internal.h"

#include <stddef.h>

int mproc_pipe(mproc_conn **a, mproc_conn **b, bool duplex)
{
    (void)a;
    (void)b;
    (void)duplex;
    return MPROC_ENOSYS;
}

int mproc_conn_send(mproc_conn *c, const mproc_value *v)
{
    (void)c;
    (void)v;
    return MPROC_ENOSYS;
}

int mproc_conn_send_bytes(mproc_conn *c, const void *buf, size_t len)
{
    (void)c;
    (void)buf;
    (void)len;
    return MPROC_ENOSYS;
}

int mproc_conn_recv(mproc_conn *c, mproc_value **out, int timeout_ms)
{
    (void)c;
    (void)out;
    (void)timeout_ms;
    return MPROC_ENOSYS;
}

int mproc_conn_recv_bytes(mproc_conn *c, void *buf, size_t cap, size_t *len, int timeout_ms)
{
    (void)c;
    (void)buf;
    (void)cap;
    (void)len;
    (void)timeout_ms;
    return MPROC_ENOSYS;
}

int mproc_conn_recv_bytes_alloc(mproc_conn *c, void **buf, size_t *len, int timeout_ms)
{
    (void)c;
    (void)buf;
    (void)len;
    (void)timeout_ms;
    return MPROC_ENOSYS;
}

int mproc_conn_poll(mproc_conn *c, int timeout_ms)
{
    (void)c;
    (void)timeout_ms;
    return MPROC_ENOSYS;
}

int mproc_conn_close(mproc_conn *c)
{
    (void)c;
    return MPROC_ENOSYS;
}

mproc_conn * mproc_conn_destroy(mproc_conn *c)
{
    (void)c;
    return NULL;
}

int mproc__conn_export(mproc_conn *c, mproc__export *ex)
{
    (void)c;
    (void)ex;
    return MPROC_ENOSYS;
}

int mproc__conn_import(const mproc__export *ex, mproc_conn **out)
{
    (void)ex;
    (void)out;
    return MPROC_ENOSYS;
}

int mproc__conn_wait_handle(mproc_conn *c, mproc__handle *h, bool *ready_now)
{
    (void)c;
    (void)h;
    (void)ready_now;
    return MPROC_ENOSYS;
}
