/*
 * Win32 backend: the monotonic clock and sleeping.
 */
#include "win32.h"

static INIT_ONCE freq_once = INIT_ONCE_STATIC_INIT;
static LONGLONG freq;

static BOOL CALLBACK freq_init(INIT_ONCE *once, void *param, void **ctx)
{
    LARGE_INTEGER f;
    (void)once;
    (void)param;
    (void)ctx;
    /* Never fails on Windows XP and later. */
    QueryPerformanceFrequency(&f);
    freq = f.QuadPart;
    return TRUE;
}

int64_t mproc__os_now_ns(void)
{
    LARGE_INTEGER c;

    /* QueryPerformanceCounter, not GetTickCount64: the tick count moves in
     * steps of 10-16 ms, too coarse for timeouts of a few milliseconds. */
    InitOnceExecuteOnce(&freq_once, freq_init, NULL, NULL);
    if (freq <= 0)
        return (int64_t)GetTickCount64() * 1000000;
    QueryPerformanceCounter(&c);
    /* Split to keep counter * 10^9 from overflowing (the remainder is below
     * the frequency, itself far below 2^63 / 10^9). */
    return (int64_t)(c.QuadPart / freq * 1000000000 +
                     c.QuadPart % freq * 1000000000 / freq);
}

int64_t mproc__os_now_ms(void)
{
    return mproc__os_now_ns() / 1000000;
}

void mproc__os_sleep_ms(int ms)
{
    int64_t end;
    int left;

    if (ms <= 0) {
        Sleep(0);
        return;
    }
    /* Sleep() counts in scheduler ticks and may wake a little before the
     * time asked for; the contract is "at least ms" on the clock above. */
    end = mproc__os_now_ns() + (int64_t)ms * 1000000;
    while ((left = mproc__left_ms(end)) > 0)
        Sleep((DWORD)left);
}

/* A wait on one handle that never times out early: Windows rounds waits to
 * the timer tick and may end one a little before the time asked for, so a
 * timeout is waited again until the clock above has passed the deadline. */
DWORD mproc__win_wait(HANDLE h, int timeout_ms)
{
    int64_t deadline;
    int left;
    DWORD w;

    if (timeout_ms <= 0)
        return WaitForSingleObject(h, timeout_ms < 0 ? INFINITE : 0);
    deadline = mproc__deadline_ns(timeout_ms);
    left = timeout_ms;
    for (;;) {
        w = WaitForSingleObject(h, (DWORD)left);
        if (w != WAIT_TIMEOUT)
            return w;
        left = mproc__left_ms(deadline);
        if (left == 0)
            return WAIT_TIMEOUT;
    }
}
