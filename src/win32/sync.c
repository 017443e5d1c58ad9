/*
 * Win32 backend: mutexes, semaphores and condition variables between
 * processes, as unnamed kernel objects passed by handle.
 *
 * Map: thread ids; the mutex (a mutex handle plus a hint of its owner in
 * shared memory); the semaphore (a semaphore handle, its count from ntdll);
 * the condition variable (three semaphores as wake-up queues, and counts
 * and the identities of waiting processes kept under the mutex).
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
 * owner's thread id is kept in the shared memory block, as a hint: the
 * owner that locks again waits as anyone else would, and an unlock by a
 * thread the hint does not name is refused before it reaches ReleaseMutex.
 *
 * Thread ids are reused soon on Windows, so the hint may name a dead thread
 * whose id a new thread now has: the kernel object decides. Lock asks it
 * (NtQueryMutant's OwnedByCaller) before it takes a hint naming the caller
 * for a recursive acquire; unlock calls ReleaseMutex, which refuses a thread
 * that does not own the mutex, and clears the hint only after the release
 * and only if it still names the caller (compare-and-swap): an unlock by a
 * thread that does not hold the mutex writes nothing, so it cannot
 * overwrite the hint of an owner that acquired in the meantime.
 */

typedef struct win_mutex {
    volatile LONG owner; /* thread id of the holder, 0 when free (a hint) */
} win_mutex;

_Static_assert(sizeof(win_mutex) <= MPROC__OS_MUTEX_SIZE, "mutex block");

/* MUTANT_BASIC_INFORMATION, as ntdll fills it. */
typedef struct mutant_info {
    LONG count;
    BOOLEAN owned_by_caller;
    BOOLEAN abandoned;
} mutant_info;

static INIT_ONCE mutant_once = INIT_ONCE_STATIC_INIT;
static mproc__nt_query_info_fn query_mutant;

static BOOL CALLBACK mutant_init(INIT_ONCE *once, void *param, void **ctx)
{
    HMODULE nt = GetModuleHandleW(L"ntdll.dll");
    (void)once;
    (void)param;
    (void)ctx;
    if (nt != NULL)
        query_mutant = (mproc__nt_query_info_fn)(void (*)(void))GetProcAddress(
            nt, "NtQueryMutant");
    return TRUE;
}

/* 1 if the calling thread owns mutex h, 0 if not, -1 if ntdll cannot say. */
static int owned_by_caller(HANDLE h)
{
    mutant_info mi;
    ULONG len = 0;
    InitOnceExecuteOnce(&mutant_once, mutant_init, NULL, NULL);
    if (query_mutant == NULL)
        return -1;
    memset(&mi, 0, sizeof mi);
    if (query_mutant(h, 0 /* MutantBasicInformation */, &mi, (ULONG)sizeof mi,
                     &len) < 0)
        return -1;
    return mi.owned_by_caller ? 1 : 0;
}

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
        /* Ours, or a dead thread's whose id we got. The mutex knows. */
        int own = owned_by_caller(mproc__win_h(h));
        if (own == 1)
            return wait_on_self(timeout_ms);
        if (own < 0) {
            /* No ntdll answer: ask by a zero wait, which a recursive
             * mutex grants its owner. */
            w = WaitForSingleObject(mproc__win_h(h), 0);
            if (w == WAIT_OBJECT_0) {
                ReleaseMutex(mproc__win_h(h));
                return wait_on_self(timeout_ms);
            }
            if (w == WAIT_ABANDONED) {
                InterlockedExchange(&m->owner, self_tid());
                return MPROC_EOWNERDEAD;
            }
        }
        /* Held by another thread, or free: the hint was stale. */
    }
    w = mproc__win_wait(mproc__win_h(h), timeout_ms);
    switch (w) {
    case WAIT_OBJECT_0:
        InterlockedExchange(&m->owner, self_tid());
        return 0;
    case WAIT_ABANDONED:
        InterlockedExchange(&m->owner, self_tid());
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
    LONG me = self_tid();

    if (mem == NULL || bad(h))
        return MPROC_EINVAL;
    if (m->owner != me)
        return MPROC_ENOTOWNER;
    MPROC__HOOK(MPROC__HOOK_MUTEX_RELEASE);
    if (!ReleaseMutex(mproc__win_h(h)))
        return GetLastError() == ERROR_NOT_OWNER ? MPROC_ENOTOWNER
                                                 : mproc__win_last_error();
    /* Released: a new owner may have written its id already. */
    (void)InterlockedCompareExchange(&m->owner, 0, me);
    return 0;
}

int mproc__os_mutex_peek(void *mem, mproc__handle h, int64_t *pid, int64_t *tid)
{
    win_mutex *m = mem;
    mutant_info mi;
    ULONG len = 0;
    LONG owner;
    HANDLE t;

    if (mem == NULL || bad(h) || pid == NULL || tid == NULL)
        return MPROC_EINVAL;
    *pid = *tid = 0;
    InitOnceExecuteOnce(&mutant_once, mutant_init, NULL, NULL);
    if (query_mutant == NULL)
        return MPROC_ENOSYS;
    memset(&mi, 0, sizeof mi);
    if (query_mutant(mproc__win_h(h), 0 /* MutantBasicInformation */, &mi,
                     (ULONG)sizeof mi, &len) < 0)
        return MPROC_EUNKNOWN;
    /* Free: a count of 1; abandoned: its owner is gone. */
    if (mi.count > 0 || mi.abandoned)
        return 0;
    owner = m->owner;
    if (mi.owned_by_caller) {
        *tid = (int64_t)GetCurrentThreadId();
        *pid = (int64_t)GetCurrentProcessId();
        return 1;
    }
    /* The hint, if it names a live thread other than us. */
    if (owner != 0 && owner != self_tid()) {
        t = OpenThread(THREAD_QUERY_LIMITED_INFORMATION, FALSE, (DWORD)owner);
        if (t != NULL) {
            *pid = (int64_t)GetProcessIdOfThread(t);
            *tid = *pid != 0 ? (int64_t)owner : 0;
            CloseHandle(t);
        }
    }
    return 1;
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
 * Condition variable: three semaphores (h[0..2]) used as wake-up queues,
 * and state in `mem` that only changes under the caller's mutex.
 *
 * A Windows semaphore cannot compare-and-wait: a token released into a
 * queue goes to whichever thread waits on it first, also one that started
 * waiting after the release, while a waiter that released the mutex has
 * not slept yet. So a thread may join a queue only while no token released
 * into it is still pending (pending[q] == 0): then every token of the queue
 * was released after each of its waiters joined, and any of them may take
 * it. Signal and broadcast release tokens for idle waiters (waiters -
 * pending) of every queue, and when they release into the queue that new
 * waiters join (cur), they move cur to a queue without pending tokens
 * (row L14). Three queues give one free queue even when the waiters of two
 * releases in a row are slow to wake; if none is free, a new waiter does
 * not sleep on a queue at all: it returns after a short nap, a spurious
 * wake-up, which the contract allows.
 *
 * A waiter that leaves with more tokens pending in its queue than waiters
 * left there (it timed out just as its token came) takes the surplus back,
 * so that it does not wake a later waiter early.
 *
 * A waiter killed while waiting stays counted, and the token released for
 * it would stay pending for ever, closing its queue to new waiters. So each
 * process that waits is listed with its identity (backend.h) and its
 * waiters per queue; when no queue is free, the ones whose process has
 * ended are taken off the counts and their tokens taken back. A dead waiter
 * thus costs at most one swallowed wake-up, once. Past COND_PROCS waiting
 * processes at once, the others are counted but not listed: their death
 * costs naps until they are gone.
 */

#define COND_QUEUES 3
#define COND_PROCS 64

typedef struct cond_proc {
    LONG pid;            /* 0: a free entry */
    LONG n[COND_QUEUES]; /* its threads waiting in each queue */
    uint64_t start;      /* its creation time */
} cond_proc;

typedef struct win_cond {
    LONG cur;                  /* the queue new waiters join */
    LONG waiters[COND_QUEUES]; /* threads inside wait, per queue */
    LONG pending[COND_QUEUES]; /* tokens released, not yet taken */
    LONG pad;
    cond_proc procs[COND_PROCS];
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

/* This process's entry, or a new one (create), or -1. */
static int cond_proc_find(win_cond *c, const mproc__proc_id *me, bool create)
{
    int i, free_at = -1;
    for (i = 0; i < COND_PROCS; i++) {
        if (c->procs[i].pid == (LONG)me->pid && c->procs[i].start == me->start)
            return i;
        if (c->procs[i].pid == 0 && free_at < 0)
            free_at = i;
    }
    if (!create || free_at < 0)
        return -1;
    memset(&c->procs[free_at], 0, sizeof c->procs[free_at]);
    c->procs[free_at].pid = (LONG)me->pid;
    c->procs[free_at].start = me->start;
    return free_at;
}

/* Takes tokens nobody left in queue q will account for back. */
static void cond_take_surplus(win_cond *c, const mproc__handle *h, LONG q)
{
    while (c->pending[q] > 0 && c->pending[q] > c->waiters[q] &&
           WaitForSingleObject(mproc__win_h(h[q]), 0) == WAIT_OBJECT_0)
        c->pending[q]--;
}

/* Takes the waiters of ended processes off the counts, and their tokens. */
static void cond_reclaim(win_cond *c, const mproc__handle *h)
{
    int i, q;
    for (i = 0; i < COND_PROCS; i++) {
        mproc__proc_id id;
        if (c->procs[i].pid == 0)
            continue;
        id.pid = (int64_t)(DWORD)c->procs[i].pid;
        id.start = c->procs[i].start;
        if (mproc__os_proc_alive(&id))
            continue;
        for (q = 0; q < COND_QUEUES; q++) {
            LONG n = c->procs[i].n[q];
            if (n > 0)
                c->waiters[q] = c->waiters[q] > n ? c->waiters[q] - n : 0;
        }
        c->procs[i].pid = 0;
    }
    for (q = 0; q < COND_QUEUES; q++)
        cond_take_surplus(c, h, q);
}

/* A queue without pending tokens, cur first; after a reclaim if needed.
 * -1 when every queue has tokens still pending. */
static LONG cond_free_queue(win_cond *c, const mproc__handle *h)
{
    LONG cur = cond_queue(c->cur);
    for (int pass = 0; pass < 2; pass++) {
        for (LONG d = 0; d < COND_QUEUES; d++) {
            LONG q = (cur + d) % COND_QUEUES;
            if (c->pending[q] <= 0)
                return q;
        }
        if (pass == 0)
            cond_reclaim(c, h);
    }
    return -1;
}

int mproc__os_cond_wait(void *mem, const mproc__handle *h, void *mutex_mem,
                        mproc__handle mutex_h, int timeout_ms)
{
    win_cond *c = mem;
    mproc__proc_id me;
    DWORD w;
    LONG q;
    int rc, lk, slot;

    if (mem == NULL || h == NULL || mutex_mem == NULL)
        return MPROC_EINVAL;
    if (((win_mutex *)mutex_mem)->owner != self_tid())
        return MPROC_ENOTOWNER;
    if (timeout_ms == 0)
        return MPROC_ETIMEDOUT;
    q = cond_free_queue(c, h);
    if (q < 0) {
        /* No queue where a later waiter could not take an earlier one's
         * token: a spurious wake-up after a nap instead. */
        rc = mproc__os_mutex_unlock(mutex_mem, mutex_h);
        if (rc != 0)
            return rc;
        Sleep(1);
        return mproc__os_mutex_lock(mutex_mem, mutex_h, MPROC_FOREVER);
    }
    c->cur = q;
    me = mproc__os_proc_self();
    slot = cond_proc_find(c, &me, true);
    c->waiters[q]++;
    if (slot >= 0)
        c->procs[slot].n[q]++;
    rc = mproc__os_mutex_unlock(mutex_mem, mutex_h);
    if (rc != 0) {
        c->waiters[q]--;
        if (slot >= 0)
            c->procs[slot].n[q]--;
        return rc;
    }
    MPROC__HOOK(MPROC__HOOK_COND_UNLOCKED);
    w = mproc__win_wait(mproc__win_h(h[q]), timeout_ms);
    lk = mproc__os_mutex_lock(mutex_mem, mutex_h, MPROC_FOREVER);
    if (c->waiters[q] > 0)
        c->waiters[q]--;
    slot = cond_proc_find(c, &me, false);
    if (slot >= 0) {
        cond_proc *p = &c->procs[slot];
        if (p->n[q] > 0)
            p->n[q]--;
        if (p->n[0] <= 0 && p->n[1] <= 0 && p->n[2] <= 0)
            p->pid = 0;
    }
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

/* Releases up to n tokens for idle waiters, the other queues' first (they
 * were joined before cur); moves cur on if it got some. */
static int cond_grant(win_cond *c, const mproc__handle *h, uint32_t n)
{
    LONG cur = cond_queue(c->cur);
    bool into_cur = false;
    int rc = 0;
    for (LONG d = 1; d <= COND_QUEUES && n > 0; d++) {
        LONG q = (cur + d) % COND_QUEUES;
        LONG idle = c->waiters[q] - c->pending[q];
        LONG k;
        if (idle <= 0)
            continue;
        k = n < (uint32_t)idle ? (LONG)n : idle;
        rc = cond_release(c, h, q, k);
        if (rc != 0)
            return rc;
        n -= (uint32_t)k;
        if (q == cur)
            into_cur = true;
    }
    if (into_cur) {
        /* cur has pending tokens now: new waiters go elsewhere. */
        LONG q = cond_free_queue(c, h);
        if (q >= 0)
            c->cur = q;
    }
    return 0;
}

int mproc__os_cond_signal(void *mem, const mproc__handle *h, unsigned n)
{
    if (mem == NULL || h == NULL)
        return MPROC_EINVAL;
    if (n == 0)
        return 0;
    return cond_grant((win_cond *)mem, h, n);
}

int mproc__os_cond_broadcast(void *mem, const mproc__handle *h)
{
    if (mem == NULL || h == NULL)
        return MPROC_EINVAL;
    return cond_grant((win_cond *)mem, h, UINT32_MAX);
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
