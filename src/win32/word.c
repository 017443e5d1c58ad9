/*
 * Win32 backend: wait words, process identity and liveness (backend.h).
 *
 * Wait words. WaitOnAddress only works inside one process, so each word has
 * an unnamed semaphore its processes share, and a waiter count in the
 * word's memory after the value:
 *
 *   word_wait: waiters++, re-read the value (return at once if it is not
 *   `expected`), wait on the semaphore, waiters--.
 *   word_wake: release the semaphore min(n, waiters) times.
 *
 * The increment is a full barrier, so a waker that changed the value and
 * then reads waiters == 0 is sure the waiter will see the new value. A
 * token released for a waiter that timed out meanwhile makes a later wait
 * return early, which callers tolerate.
 *
 * Identity: the pid and the process creation time (GetProcessTimes); a
 * process handle is signalled once the process has ended, and Windows never
 * gives its pid to another process while any handle to it is open.
 *
 * Map: wait words; process identity; the deprecated owner tags.
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

/* ---------------------------------------------------------------------------
 * Process identity
 */

static uint64_t filetime_u64(FILETIME ft)
{
    return ((uint64_t)ft.dwHighDateTime << 32) | ft.dwLowDateTime;
}

/* The creation time of process p, never 0 (0: unknown). */
static uint64_t creation_time(HANDLE p)
{
    FILETIME c, x1, x2, x3;
    uint64_t t;
    if (!GetProcessTimes(p, &c, &x1, &x2, &x3))
        return 0;
    t = filetime_u64(c);
    return t == 0 ? 1 : t;
}

/* Windows has no fork: computed once. Racing first callers compute the
 * same values; the start is published before the pid. */
static volatile LONG64 self_pid;
static volatile LONG64 self_start;

mproc__proc_id mproc__os_proc_self(void)
{
    mproc__proc_id id;
    id.pid = (int64_t)InterlockedCompareExchange64(&self_pid, 0, 0);
    if (id.pid != 0) {
        id.start = (uint64_t)InterlockedCompareExchange64(&self_start, 0, 0);
        return id;
    }
    id.pid = (int64_t)GetCurrentProcessId();
    id.start = creation_time(GetCurrentProcess());
    InterlockedExchange64(&self_start, (LONG64)id.start);
    InterlockedExchange64(&self_pid, (LONG64)id.pid);
    return id;
}

int mproc__os_proc_lookup(int64_t pid, mproc__proc_id *id)
{
    HANDLE p;
    DWORD w;

    if (id == NULL)
        return MPROC_EINVAL;
    id->pid = pid;
    id->start = 0;
    if (pid <= 0 || pid > 0xFFFFFFFFll)
        return MPROC_ENOENT;
    p = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION | SYNCHRONIZE, FALSE,
                    (DWORD)pid);
    if (p == NULL)
        /* No such process; any other refusal means it exists. */
        return GetLastError() == ERROR_INVALID_PARAMETER ? MPROC_ENOENT
                                                         : MPROC_EPERM;
    id->start = creation_time(p);
    w = WaitForSingleObject(p, 0);
    CloseHandle(p);
    if (w == WAIT_OBJECT_0)
        return MPROC_ENOENT; /* ended; someone still holds a handle */
    return id->start == 0 ? MPROC_EPERM : 0;
}

int mproc__os_proc_alive(const mproc__proc_id *id)
{
    mproc__proc_id now;
    int rc;

    if (id == NULL || id->pid <= 0)
        return 0;
    rc = mproc__os_proc_lookup(id->pid, &now);
    if (rc == MPROC_ENOENT)
        return 0;
    if (rc != 0)
        return 1; /* it exists and we may not look: never a false "dead" */
    if (id->start != 0 && now.start != id->start)
        return 0; /* a later process with the same pid */
    return 1;
}

/* ---------------------------------------------------------------------------
 * Owner tags (deprecated, see backend.h)
 */

uint32_t mproc__os_self_tag(void)
{
    /* Read from the thread environment block: no system call. */
    return (uint32_t)GetCurrentProcessId();
}

int mproc__os_tag_alive(uint32_t tag)
{
    mproc__proc_id id;

    if (tag == 0)
        return 0;
    if (tag == GetCurrentProcessId())
        return 1;
    return mproc__os_proc_lookup((int64_t)tag, &id) == MPROC_ENOENT ? 0 : 1;
}
