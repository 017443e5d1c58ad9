/*
 * Thread cancellation on POSIX (backend.h, "Thread cancellation").
 *
 * pthread_setcancelstate and pthread_testcancel are plain library calls (no
 * system call), so the queue can afford them on its slow paths. A cleanup
 * handler is pushed only around the explicit cancellation point, where the
 * caller may own memory that a cancellation would otherwise leak.
 */
#include "../common/backend.h"

#include <pthread.h>

int mproc__os_cancel_block(void)
{
    int prev = PTHREAD_CANCEL_ENABLE;
    (void)pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &prev);
    return prev;
}

void mproc__os_cancel_unblock(int prev)
{
    (void)pthread_setcancelstate(prev, NULL);
}

void mproc__os_cancel_point(void (*cleanup)(void *), void *arg)
{
    if (cleanup == NULL) {
        pthread_testcancel();
        return;
    }
    pthread_cleanup_push(cleanup, arg);
    pthread_testcancel();
    pthread_cleanup_pop(0);
}
