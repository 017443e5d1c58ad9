/*
 * Win32 backend: wait words, process identity and liveness (backend.h).
 *
 * Wait words. WaitOnAddress only works inside one process, so each word has
 * an unnamed semaphore its processes share, and two counters in the word's
 * memory after the value:
 *
 *   idle   waiters that have not been granted a wake-up yet;
 *   grants a generation, bumped by every wake that grants some.
 *
 *   word_wait: read grants, idle++, re-read the value (return at once if it
 *   is not `expected`, giving the place back), wait on the semaphore; on a
 *   timeout give the place back (or, if a grant came meanwhile, take its
 *   token so that it wakes nobody else early).
 *   word_wake: grant min(n, idle) (idle -= k by compare-and-swap), bump
 *   grants, release k tokens.
 *
 * A wake with nobody waiting costs no system call. The waker, not the
 * waiter, takes a waiter off the count, so a waiter killed while it sleeps
 * costs one grant, once: its token stays in the semaphore, and the next
 * waiter that takes it sees that no grant came since it started waiting (a
 * stale token), gives its own place back and returns early (callers
 * tolerate that). The count is exact again after it. (Had the waiter taken
 * itself off after its wait, a killed waiter would stay counted for ever
 * and every later wake would release a token for it.)
 *
 * A token is nobody's in particular, though: a waiter B that joins after a
 * wake granted waiter A may take A's token before A does, and then sees
 * no grant since it joined, as if the token were stale. A is then asleep
 * and no longer counted, and no later wake releases a token for it (a
 * lost wake-up: T14's pool hung so under Wine on a loaded machine). So a
 * waiter never sleeps on the semaphore longer than WORD_SLICE_MS: after
 * each slice it gives its place back, re-reads the value and returns if
 * it changed, or joins again. A waiter robbed of its token finds the
 * change within a slice.
 *
 * Identity: the pid and the process creation time (GetProcessTimes); a
 * process handle is signalled once the process has ended, and Windows never
 * gives its pid to another process while any handle to it is open.
 *
 * Map: wait words; process identity.
 */
#include "win32.h"

#include <limits.h>

_Static_assert(MPROC__OS_WORD_SIZE >= 12, "word block");

/* The longest one sleep on a word's semaphore (the top of this file). */
#define WORD_SLICE_MS 50

static volatile LONG *word_value(void *word)
{
    return (volatile LONG *)word;
}

static volatile LONG *word_idle(void *word)
{
    return (volatile LONG *)((unsigned char *)word + 4);
}

static volatile LONG *word_grants(void *word)
{
    return (volatile LONG *)((unsigned char *)word + 8);
}

static LONG load(volatile LONG *p)
{
    return InterlockedCompareExchange(p, 0, 0);
}

int mproc__os_word_init(void *word, mproc__handle *h)
{
    HANDLE s;

    if (word == NULL || h == NULL)
        return MPROC_EINVAL;
    s = CreateSemaphoreW(NULL, 0, LONG_MAX, NULL);
    if (s == NULL)
        return mproc__win_last_error();
    *word_idle(word) = 0;
    *word_grants(word) = 0;
    *h = mproc__win_mh(s);
    return 0;
}

int mproc__os_word_open(void *word, mproc__handle h)
{
    if (word == NULL || h == MPROC__BADHANDLE || h == 0)
        return MPROC_EINVAL;
    return 0;
}

/* Takes one waiter off the idle count if there is one: true if it did. */
static bool idle_take(void *word)
{
    LONG n = load(word_idle(word));
    while (n > 0) {
        LONG seen = InterlockedCompareExchange(word_idle(word), n - 1, n);
        if (seen == n)
            return true;
        n = seen;
    }
    return false;
}

/* A waiter that leaves without a token: its place back, or, when a waker
 * counted it already, the token that waker released for it. */
static void word_leave(void *word, HANDLE s)
{
    if (!idle_take(word))
        (void)WaitForSingleObject(s, 0);
}

int mproc__os_word_wait(void *word, uint32_t expected, mproc__handle h,
                        int timeout_ms)
{
    HANDLE s = mproc__win_h(h);
    int64_t deadline;
    LONG gen;
    DWORD w;

    if (word == NULL || h == MPROC__BADHANDLE || h == 0)
        return MPROC_EINVAL;
    if ((uint32_t)load(word_value(word)) != expected)
        return 0;
    if (timeout_ms == 0)
        return MPROC_ETIMEDOUT;
    deadline = timeout_ms > 0 ? mproc__deadline_ns(timeout_ms) : -1;
    for (;;) {
        int left = deadline < 0 ? -1 : mproc__left_ms(deadline);
        int slice = (left < 0 || left > WORD_SLICE_MS) ? WORD_SLICE_MS : left;
        if (left == 0)
            return MPROC_ETIMEDOUT;
        /* Read before joining: a grant that counted us bumps it after. */
        gen = load(word_grants(word));
        InterlockedIncrement(word_idle(word));
        if ((uint32_t)load(word_value(word)) != expected) {
            word_leave(word, s);
            return 0;
        }
        w = mproc__win_wait(s, slice);
        switch (w) {
        case WAIT_OBJECT_0:
            /* No grant since we joined: the token was older than our wait
             * (its waiter was killed, or left) or another waiter's (the
             * top of this file); we are still counted. */
            if (load(word_grants(word)) == gen)
                (void)idle_take(word);
            return 0;
        case WAIT_TIMEOUT:
            word_leave(word, s);
            if ((uint32_t)load(word_value(word)) != expected)
                return 0;
            break; /* unchanged: the next slice, or the timeout */
        default:
            word_leave(word, s);
            return mproc__win_last_error();
        }
    }
}

int mproc__os_word_wake(void *word, mproc__handle h, uint32_t n)
{
    LONG idle;
    LONG k;

    if (word == NULL || h == MPROC__BADHANDLE || h == 0)
        return MPROC_EINVAL;
    if (n == 0)
        return 0;
    idle = load(word_idle(word));
    for (;;) {
        LONG seen;
        if (idle <= 0)
            return 0;
        k = n < (uint32_t)idle ? (LONG)n : idle;
        seen = InterlockedCompareExchange(word_idle(word), idle - k, idle);
        if (seen == idle)
            break;
        idle = seen;
    }
    InterlockedIncrement(word_grants(word));
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
    if (pid <= 0 || pid > 0xFFFFFFFFLL)
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
