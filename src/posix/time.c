/* POSIX time: the monotonic clock in nanoseconds (and milliseconds), and a
 * sleep that survives signals. */
#include "../common/backend.h"

#include <errno.h>
#include <sched.h>
#include <time.h>

int64_t mproc__os_now_ns(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + (int64_t)ts.tv_nsec;
}

int64_t mproc__os_now_ms(void)
{
    return mproc__os_now_ns() / 1000000;
}

void mproc__os_sleep_ms(int ms)
{
    struct timespec ts;
    if (ms <= 0) {
        /* Sleep(0) on Windows gives up the time slice; do the same. */
        (void)sched_yield();
        return;
    }
    /* nanosleep(2) on CLOCK_MONOTONIC never ends early; after a signal it
     * gives the time still left. */
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}
