/*
 * Thread cancellation on Windows (backend.h, "Thread cancellation"): there
 * is none that can act inside the library. Windows threads cannot be
 * cancelled at a point of their choosing, and a POSIX-threads emulation
 * (winpthreads) acts only inside its own functions, which the library does
 * not call. TerminateThread ends a thread anywhere; a queue side lock is a
 * mutex handle then, which the next owner finds abandoned.
 */
#include "win32.h"

int mproc__os_cancel_block(void)
{
    return 0;
}

void mproc__os_cancel_unblock(int prev)
{
    (void)prev;
}

void mproc__os_cancel_point(void (*cleanup)(void *), void *arg)
{
    (void)cleanup;
    (void)arg;
}
