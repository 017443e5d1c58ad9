/* STUB: generated placeholder, every function returns MPROC_ENOSYS. */
#include "internal.h"

#include <stddef.h>

int mproc_value_encode(const mproc_value *v, void **buf, size_t *len)
{
    (void)v;
    (void)buf;
    (void)len;
    return MPROC_ENOSYS;
}

int mproc_value_decode(const void *buf, size_t len, mproc_value **out)
{
    (void)buf;
    (void)len;
    (void)out;
    return MPROC_ENOSYS;
}
