/* STUB: generated placeholder, every function returns MPROC_ENOSYS. */
#include "../common/backend.h"

#include <stddef.h>

int mproc__os_error(long native)
{
    (void)native;
    return MPROC_ENOSYS;
}

void mproc__os_handle_close(mproc__handle h)
{
    (void)h;
}
