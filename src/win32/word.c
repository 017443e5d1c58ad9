/*
 * Win32 backend: wait words (backend.h). WaitOnAddress only works inside one
 * process, so each word has an unnamed semaphore its processes share, and a
 * waiter count in the word's memory after the value:
 *
 *   word_wait: waiters++, re-read the value (return at once if it is not
 *   `expected`), wait on the semaphore, waiters--.
 *   word_wake: release the semaphore min(n, waiters) times.
 *
 * The increment is a full barrier, so a waker that changed the value and
 * then reads waiters == 0 is sure the waiter will see the new value. A
 * token released for a waiter that timed out meanwhile makes a later wait
 * return early, which callers tolerate.
 */
#include "win32.h"

#include <limits.h>

_Static_assert(MPROC__OS_WORD_SIZE >= 8, "word block");

static volatile LONG *word_value(void *word)
{
    return (volatile LONG *)word;
}

static volatile LONG *word_waiters(void *word)
{
    return (volatile LONG *)((unsigned char *)word + 4);
}

int mproc__os_word_init(void *word, mproc__handle *h)
{
    HANDLE s;

    if (word == NULL || h == NULL)
        return MPROC_EINVAL;
    s = CreateSemaphoreW(NULL, 0, LONG_MAX, NULL);
    if (s == NULL)
        return mproc__win_last_error();
    *word_waiters(word) = 0;
    *h = mproc__win_mh(s);
    return 0;
}

int mproc__os_word_open(void *word, mproc__handle h)
{
    if (word == NULL || h == MPROC__BADHANDLE || h == 0)
        return MPROC_EINVAL;
    return 0;
}

int mproc__os_word_wait(void *word, uint32_t expected, mproc__handle h,
                        int timeout_ms)
{
    DWORD w;
    LONG now;

    if (word == NULL || h == MPROC__BADHANDLE || h == 0)
        return MPROC_EINVAL;
    InterlockedIncrement(word_waiters(word));
    now = InterlockedCompareExchange(word_value(word), 0, 0);
    if ((uint32_t)now != expected) {
        InterlockedDecrement(word_waiters(word));
        return 0;
    }
    w = mproc__win_wait(mproc__win_h(h), timeout_ms);
    InterlockedDecrement(word_waiters(word));
    switch (w) {
    case WAIT_OBJECT_0:
        return 0;
    case WAIT_TIMEOUT:
        return MPROC_ETIMEDOUT;
    default:
        return mproc__win_last_error();
    }
}

int mproc__os_word_wake(void *word, mproc__handle h, uint32_t n)
{
    LONG waiters;
    LONG k;

    if (word == NULL || h == MPROC__BADHANDLE || h == 0)
        return MPROC_EINVAL;
    waiters = InterlockedCompareExchange(word_waiters(word), 0, 0);
    if (waiters <= 0 || n == 0)
        return 0;
    k = n < (uint32_t)waiters ? (LONG)n : waiters;
    /* Past LONG_MAX pending tokens every waiter wakes anyway. */
    if (!ReleaseSemaphore(mproc__win_h(h), k, NULL) &&
        GetLastError() != ERROR_TOO_MANY_POSTS)
        return mproc__win_last_error();
    return 0;
}

void mproc__os_word_destroy(void *word, mproc__handle h)
{
    (void)word;
    mproc__os_handle_close(h);
}

void mproc__os_yield(void)
{
    /* Gives the rest of the time slice to any ready thread of this
     * processor; Sleep(0) would only yield to threads of equal priority. */
    SwitchToThread();
}

uint32_t mproc__os_self_tag(void)
{
    /* Read from the thread environment block: no system call. */
    return (uint32_t)GetCurrentProcessId();
}

int mproc__os_tag_alive(uint32_t tag)
{
    HANDLE p;
    DWORD w;

    if (tag == 0)
        return 0;
    if (tag == GetCurrentProcessId())
        return 1;
    p = OpenProcess(SYNCHRONIZE, FALSE, (DWORD)tag);
    if (p == NULL)
        /* No such process; any other refusal means it exists. */
        return GetLastError() == ERROR_INVALID_PARAMETER ? 0 : 1;
    w = WaitForSingleObject(p, 0);
    CloseHandle(p);
    return w == WAIT_TIMEOUT || w == WAIT_FAILED;
}
