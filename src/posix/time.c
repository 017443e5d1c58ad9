/* STUB: generated placeholder, every function returns MPROC_ENOSYS. */
#include "../common/backend.h"

#include <stddef.h>

int64_t mproc__os_now_ms(void)
{
    return MPROC_ENOSYS;
}

void mproc__os_sleep_ms(int ms)
{
    (void)ms;
}
