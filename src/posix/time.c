/* POSIX time: a monotonic millisecond clock and a sleep that survives
 * signals. */
#include "../common/backend.h"

#include <errno.h>
#include <sched.h>
#include <time.h>

int64_t mproc__os_now_ms(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + (int64_t)(ts.tv_nsec / 1000000);
}

void mproc__os_sleep_ms(int ms)
{
    struct timespec ts;
    if (ms <= 0) {
        /* Sleep(0) on Windows gives up the time slice; do the same. */
        (void)sched_yield();
        return;
    }
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}
