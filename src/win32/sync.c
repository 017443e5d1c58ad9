/*
 * Win32 backend: mutexes, semaphores and condition variables between
 * processes, as unnamed kernel objects passed by handle.
 *
 * Map: thread ids; the mutex (a mutex handle plus its owner in shared
 * memory); the semaphore (a semaphore handle, its count from ntdll); the
 * condition variable (two semaphores and counts kept under the mutex).
 */
#include "win32.h"

#include <limits.h>
#include <string.h>

int64_t mproc__os_thread_id(void)
{
    /* Thread and process ids share one namespace on Windows: unique among
     * the live threads of the machine, never 0. */
    return (int64_t)GetCurrentThreadId();
}

static bool bad(mproc__handle h)
{
    return h == MPROC__BADHANDLE || h == 0;
}

/* ---------------------------------------------------------------------------
 * Mutex. A Windows mutex is recursive and owned by a thread; abandoned when
 * that thread or its process ends, which the next waiter sees as
 * WAIT_ABANDONED (MPROC_EOWNERDEAD). Python's Lock is not recursive, so the
 * owner's thread id is kept in the shared memory block: the owner that
 * locks again waits as anyone else would, and an unlock by a thread that is
 * not the owner is refused before it reaches ReleaseMutex.
 */

typedef struct win_mutex {
    volatile LONG owner; /* thread id of the holder, 0 when free */
} win_mutex;

_Static_assert(sizeof(win_mutex) <= MPROC__OS_MUTEX_SIZE, "mutex block");

int mproc__os_mutex_init(void *mem, mproc__handle *h)
{
    HANDLE m;

    if (mem == NULL || h == NULL)
        return MPROC_EINVAL;
    m = CreateMutexW(NULL, FALSE, NULL);
    if (m == NULL)
        return mproc__win_last_error();
    ((win_mutex *)mem)->owner = 0;
    *h = mproc__win_mh(m);
    return 0;
}

int mproc__os_mutex_open(void *mem, mproc__handle h)
{
    if (mem == NULL || bad(h))
        return MPROC_EINVAL;
    return 0;
}

static LONG self_tid(void)
{
    return (LONG)GetCurrentThreadId();
}

/* Waits out a timeout on a lock this thread holds itself (it can never be
 * released while we wait). */
static int wait_on_self(int timeout_ms)
{
    if (timeout_ms == 0)
        return MPROC_EBUSY;
    if (timeout_ms < 0) {
        for (;;)
            Sleep(INFINITE);
    }
    mproc__os_sleep_ms(timeout_ms);
    return MPROC_ETIMEDOUT;
}

int mproc__os_mutex_lock(void *mem, mproc__handle h, int timeout_ms)
{
    win_mutex *m = mem;
    DWORD w;

    if (mem == NULL || bad(h))
        return MPROC_EINVAL;
    if (m->owner == self_tid()) {
        /* Thread ids are reused soon on Windows: the id may be that of a
         * dead thread that held the mutex. The mutex itself knows. */
        w = WaitForSingleObject(mproc__win_h(h), 0);
        if (w == WAIT_OBJECT_0) {
            /* Ours indeed (a recursive acquire): undo it, and wait as
             * anyone else would on a held lock. */
            ReleaseMutex(mproc__win_h(h));
            return wait_on_self(timeout_ms);
        }
        if (w == WAIT_ABANDONED) {
            m->owner = self_tid();
            return MPROC_EOWNERDEAD;
        }
        /* Held by another thread: the id was stale. */
    }
    w = mproc__win_wait(mproc__win_h(h), timeout_ms);
    switch (w) {
    case WAIT_OBJECT_0:
        m->owner = self_tid();
        return 0;
    case WAIT_ABANDONED:
        m->owner = self_tid();
        return MPROC_EOWNERDEAD;
    case WAIT_TIMEOUT:
        return timeout_ms == 0 ? MPROC_EBUSY : MPROC_ETIMEDOUT;
    default:
        return mproc__win_last_error();
    }
}

int mproc__os_mutex_unlock(void *mem, mproc__handle h)
{
    win_mutex *m = mem;

    if (mem == NULL || bad(h))
        return MPROC_EINVAL;
    if (m->owner != self_tid())
        return MPROC_ENOTOWNER;
    m->owner = 0;
    if (!ReleaseMutex(mproc__win_h(h))) {
        m->owner = self_tid();
        return GetLastError() == ERROR_NOT_OWNER ? MPROC_ENOTOWNER
                                                 : mproc__win_last_error();
    }
    return 0;
}

void mproc__os_mutex_destroy(void *mem, mproc__handle h)
{
    (void)mem;
    mproc__os_handle_close(h);
}

/* ---------------------------------------------------------------------------
 * Semaphore. ReleaseSemaphore refuses a post past the maximum as a whole
 * (ERROR_TOO_MANY_POSTS), which is the bounded semaphore's rule.
 */

int mproc__os_sem_init(void *mem, mproc__handle *h, unsigned initial,
                       unsigned max)
{
    HANDLE s;
    LONG lmax;

    if (h == NULL)
        return MPROC_EINVAL;
    (void)mem;
    if (max > (unsigned)LONG_MAX || initial > (unsigned)LONG_MAX)
        return MPROC_ERANGE;
    if (max > 0 && initial > max)
        return MPROC_EINVAL;
    lmax = max > 0 ? (LONG)max : LONG_MAX;
    s = CreateSemaphoreW(NULL, (LONG)initial, lmax, NULL);
    if (s == NULL)
        return mproc__win_last_error();
    *h = mproc__win_mh(s);
    return 0;
}

int mproc__os_sem_open(void *mem, mproc__handle h)
{
    (void)mem;
    return bad(h) ? MPROC_EINVAL : 0;
}

int mproc__os_sem_wait(void *mem, mproc__handle h, int timeout_ms)
{
    (void)mem;
    if (bad(h))
        return MPROC_EINVAL;
    switch (mproc__win_wait(mproc__win_h(h), timeout_ms)) {
    case WAIT_OBJECT_0:
        return 0;
    case WAIT_TIMEOUT:
        return timeout_ms == 0 ? MPROC_EBUSY : MPROC_ETIMEDOUT;
    default:
        return mproc__win_last_error();
    }
}

int mproc__os_sem_post(void *mem, mproc__handle h, unsigned n)
{
    (void)mem;
    if (bad(h) || n == 0)
        return MPROC_EINVAL;
    if (n > (unsigned)LONG_MAX)
        return MPROC_ERANGE;
    if (!ReleaseSemaphore(mproc__win_h(h), (LONG)n, NULL))
        return mproc__win_last_error(); /* TOO_MANY_POSTS: ERANGE */
    return 0;
}

/* SEMAPHORE_BASIC_INFORMATION, as ntdll fills it. */
typedef struct sem_info {
    LONG current;
    LONG maximum;
} sem_info;

int64_t mproc__os_sem_value(void *mem, mproc__handle h)
{
    mproc__nt_query_info_fn query = mproc__win_nt_query_semaphore();
    sem_info si;
    ULONG len = 0;

    (void)mem;
    if (bad(h))
        return MPROC_EINVAL;
    if (query == NULL)
        return MPROC_ENOSYS;
    memset(&si, 0, sizeof si);
    if (query(mproc__win_h(h), 0 /* SemaphoreBasicInformation */, &si,
              (ULONG)sizeof si, &len) < 0)
        return MPROC_EUNKNOWN;
    return (int64_t)si.current;
}

void mproc__os_sem_destroy(void *mem, mproc__handle h)
{
    (void)mem;
    mproc__os_handle_close(h);
}

/* ---------------------------------------------------------------------------
 * Condition variable: three semaphores (h[0..2]) used as wake-up queues, and
 * counts in `mem` that only change under the caller's mutex.
 *
 * A waiter joins the current queue (waiters[q]++), releases the mutex,
 * waits on the queue's semaphore, re-locks the mutex and leaves
 * (waiters[q]--, and pending[q]-- if it took a token). A signal releases
 * min(n, waiters - pending) tokens into the current queue. A broadcast
 * releases a token for every waiter of the current queue and moves new
 * waiters to another queue whose tokens have all been taken, so that a
 * thread that starts waiting after the broadcast cannot take the token of
 * one that was waiting before it (which would then miss the broadcast).
 * Three queues leave a free one even when the waiters of two broadcasts in
 * a row are slow to wake.
 *
 * A waiter that leaves with more tokens pending in its queue than waiters
 * left there (it timed out just as its token came) takes the surplus back,
 * so that it does not wake a later waiter early. A dead waiter stays
 * counted: that costs spurious wake-ups (allowed by the contract), never a
 * blocked signaller, since no step waits for another waiter.
 */

#define COND_QUEUES 3

typedef struct win_cond {
    LONG cur;                  /* the queue new waiters join */
    LONG waiters[COND_QUEUES]; /* threads inside wait, per queue */
    LONG pending[COND_QUEUES]; /* tokens released, not yet taken */
} win_cond;

_Static_assert(sizeof(win_cond) <= MPROC__OS_COND_SIZE, "cond block");
_Static_assert(COND_QUEUES <= MPROC__OS_COND_HANDLES, "cond handles");

int mproc__os_cond_init(void *mem, mproc__handle *h)
{
    HANDLE s;
    int i, rc;

    if (mem == NULL || h == NULL)
        return MPROC_EINVAL;
    for (i = 0; i < MPROC__OS_COND_HANDLES; i++)
        h[i] = MPROC__BADHANDLE;
    for (i = 0; i < COND_QUEUES; i++) {
        s = CreateSemaphoreW(NULL, 0, LONG_MAX, NULL);
        if (s == NULL) {
            rc = mproc__win_last_error();
            while (i-- > 0) {
                mproc__os_handle_close(h[i]);
                h[i] = MPROC__BADHANDLE;
            }
            return rc;
        }
        h[i] = mproc__win_mh(s);
    }
    memset(mem, 0, sizeof(win_cond));
    return 0;
}

int mproc__os_cond_open(void *mem, const mproc__handle *h)
{
    int i;

    if (mem == NULL || h == NULL)
        return MPROC_EINVAL;
    for (i = 0; i < COND_QUEUES; i++)
        if (bad(h[i]))
            return MPROC_EINVAL;
    return 0;
}

static LONG cond_queue(LONG q)
{
    return q >= 0 && q < COND_QUEUES ? q : 0;
}

int mproc__os_cond_wait(void *mem, const mproc__handle *h, void *mutex_mem,
                        mproc__handle mutex_h, int timeout_ms)
{
    win_cond *c = mem;
    DWORD w;
    LONG q;
    int rc, lk;

    if (mem == NULL || h == NULL || mutex_mem == NULL)
        return MPROC_EINVAL;
    if (((win_mutex *)mutex_mem)->owner != self_tid())
        return MPROC_ENOTOWNER;
    if (timeout_ms == 0)
        return MPROC_ETIMEDOUT;
    q = cond_queue(c->cur);
    c->waiters[q]++;
    rc = mproc__os_mutex_unlock(mutex_mem, mutex_h);
    if (rc != 0) {
        c->waiters[q]--;
        return rc;
    }
    w = mproc__win_wait(mproc__win_h(h[q]), timeout_ms);
    lk = mproc__os_mutex_lock(mutex_mem, mutex_h, MPROC_FOREVER);
    c->waiters[q]--;
    if (w == WAIT_OBJECT_0) {
        c->pending[q]--;
        rc = 0;
    } else if (w == WAIT_TIMEOUT) {
        rc = MPROC_ETIMEDOUT;
    } else {
        rc = mproc__win_last_error();
    }
    /* A surplus token (ours came too late): take it back. It may be in the
     * hands of a woken waiter not yet back under the mutex, which then
     * counts it itself. */
    if (c->pending[q] > c->waiters[q] &&
        WaitForSingleObject(mproc__win_h(h[q]), 0) == WAIT_OBJECT_0)
        c->pending[q]--;
    if (lk == MPROC_EOWNERDEAD)
        return MPROC_EOWNERDEAD;
    return lk != 0 ? lk : rc;
}

static int cond_release(win_cond *c, const mproc__handle *h, LONG q, LONG k)
{
    if (k <= 0)
        return 0;
    if (!ReleaseSemaphore(mproc__win_h(h[q]), k, NULL))
        return mproc__win_last_error();
    c->pending[q] += k;
    return 0;
}

int mproc__os_cond_signal(void *mem, const mproc__handle *h, unsigned n)
{
    win_cond *c = mem;
    LONG q, idle;

    if (mem == NULL || h == NULL)
        return MPROC_EINVAL;
    q = cond_queue(c->cur);
    idle = c->waiters[q] - c->pending[q];
    /* Waiters of the other queues (before a broadcast) all have their
     * tokens already. */
    if (idle <= 0 || n == 0)
        return 0;
    return cond_release(c, h, q, n < (unsigned)idle ? (LONG)n : idle);
}

int mproc__os_cond_broadcast(void *mem, const mproc__handle *h)
{
    win_cond *c = mem;
    LONG q, next;
    int rc, d;

    if (mem == NULL || h == NULL)
        return MPROC_EINVAL;
    q = cond_queue(c->cur);
    if (c->waiters[q] - c->pending[q] <= 0)
        return 0;
    rc = cond_release(c, h, q, c->waiters[q] - c->pending[q]);
    if (rc != 0)
        return rc;
    for (d = 1; d < COND_QUEUES; d++) {
        next = (q + d) % COND_QUEUES;
        if (c->pending[next] <= 0) {
            c->cur = next;
            break;
        }
    }
    return 0;
}

void mproc__os_cond_destroy(void *mem, const mproc__handle *h)
{
    int i;

    (void)mem;
    if (h == NULL)
        return;
    for (i = 0; i < MPROC__OS_COND_HANDLES; i++)
        mproc__os_handle_close(h[i]);
}
