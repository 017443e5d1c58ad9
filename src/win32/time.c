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

int64_t mproc__os_now_ms(void)
{
    LARGE_INTEGER c;

    /* QueryPerformanceCounter, not GetTickCount64: the tick count moves in
     * steps of 10-16 ms, too coarse for timeouts of a few milliseconds. */
    InitOnceExecuteOnce(&freq_once, freq_init, NULL, NULL);
    if (freq <= 0)
        return (int64_t)GetTickCount64();
    QueryPerformanceCounter(&c);
    /* Split to keep counter * 1000 from overflowing. */
    return (int64_t)(c.QuadPart / freq * 1000 +
                     c.QuadPart % freq * 1000 / freq);
}

void mproc__os_sleep_ms(int ms)
{
    int64_t end;
    int64_t now;

    if (ms <= 0)
        return;
    /* Sleep() counts in scheduler ticks and may wake a little before the
     * time asked for; the contract is "at least ms". */
    end = mproc__os_now_ms() + ms;
    for (;;) {
        now = mproc__os_now_ms();
        if (now >= end)
            return;
        Sleep((DWORD)(end - now));
    }
}

DWORD mproc__win_wait(HANDLE h, int timeout_ms)
{
    int64_t deadline;
    int64_t left;
    DWORD w;

    if (timeout_ms <= 0)
        return WaitForSingleObject(h, timeout_ms < 0 ? INFINITE : 0);
    deadline = mproc__os_now_ms() + timeout_ms;
    left = timeout_ms;
    for (;;) {
        w = WaitForSingleObject(h, (DWORD)left);
        if (w != WAIT_TIMEOUT)
            return w;
        left = deadline - mproc__os_now_ms();
        if (left <= 0)
            return WAIT_TIMEOUT;
    }
}
