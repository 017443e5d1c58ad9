/* STUB: generated placeholder, every function returns MPROC_ENOSYS. */
#include "internal.h"

#include <stddef.h>

int mproc_wait(mproc_wait_item *items, size_t n, int timeout_ms)
{
    (void)items;
    (void)n;
    (void)timeout_ms;
    return MPROC_ENOSYS;
}
