/*
 * The process lock (internal.h, mproc__plock_*): a lock between processes
 * whose owner is a process, not a thread, built on backend primitives only
 * (a wait word, the process identity of backend.h). It exists for locks
 * that are taken on every operation of an object (the queue's side locks)
 * where the backend's owned mutex is a kernel object (backend.h,
 * MPROC__OS_MUTEX_KERNEL: on Windows every lock and unlock of a mutex
 * handle is a system call, under Wine a round trip to the wineserver).
 * Uncontended, a lock is one compare-and-swap and an unlock one exchange.
 *
 * Why a process may own it. Owner death must be seen (DESIGN.md section 7),
 * and the OS tells of a process's end, not of a thread's, without a
 * kernel object per lock. A process lock is therefore only for a lock that
 * a thread holds inside the library alone, never while user code runs,
 * with no cancellation point under it (the queue's rule on every
 * platform): then no thread ends holding it but with its whole process.
 * On Windows that is all there is (no thread cancellation can act inside
 * the library; TerminateThread is documented as unsafe for anything).
 *
 * The word. One 64-bit word, changed only by compare-and-swap and
 * exchange, so that the lock and its owner's identity are taken in one
 * atomic step:
 *
 *   bits 63-32  the owner's pid (0: free)
 *   bit 31      WAITERS: someone may sleep, so the unlock must wake
 *   bits 30-0   a stamp of the owner's start time (never 0 when held)
 *
 * An identity (pid, stamp) names one process for ever but for a 2^-31
 * chance that a later process with the same pid has the same stamp.
 *
 * Sleeping. The backend's wait words are 32-bit and may keep counts of
 * their own beside the value (Windows), so the lock word cannot be slept
 * on directly: sleepers wait on an event count beside it. A sleeper sets
 * WAITERS, reads the count, checks that the lock word still holds what it
 * set, and sleeps while the count is unchanged; an unlock that finds
 * WAITERS clears the word, then bumps the count and wakes one sleeper. With
 * sequentially consistent operations a sleeper either sees the word change
 * or sleeps on a count the unlock has already moved, so no wake-up is lost.
 * A woken locker takes the lock with WAITERS set (others may still sleep),
 * so that its own unlock wakes the next.
 *
 * Owner death. A sleeper sleeps at most a slice (CHECK_MS). When a whole
 * slice passed with neither the word nor the count changing, it asks the
 * OS whether the owner still runs (mproc__os_proc_lookup: no such process,
 * a zombie, or another start time under that pid mean it has ended; a
 * process the OS will not describe counts as running); a dead owner's word
 * is taken over by compare-and-swap, and the lock call returns
 * MPROC_EOWNERDEAD. A timeout-0 lock asks once; the trylock never asks
 * (it is for spinning). An owner that is this very process is never asked
 * about: another thread of ours holds the lock, and it cannot end without
 * us. A process whose main thread has ended while others run is running
 * (backend.h), so its locks are never taken from it; one whose pid went
 * to a later process is dead (the stamp differs).
 *
 * Compared with the POSIX word mutex (src/posix/sync.c) this is the same
 * scheme minus the owner thread: no thread id, no per-thread list of held
 * locks, no thread-exit destructor, and so no DIED state; and it sleeps on
 * an event count instead of the word's low half (a backend's wait word may
 * keep counts of its own). The backend's word mutex cannot use this file:
 * backends never call src/common.
 *
 * Map: layout and identities; init, open, destroy; lock; unlock.
 */
#include "internal.h"

#include <stdalign.h>
#include <stdatomic.h>

#define WAITERS 0x80000000u
#define STAMP 0x7fffffffu
/* How long the word must stay unchanged before the owner is looked up:
 * the bound on taking over a dead owner's lock, and the rate at which a
 * waiter asks the OS about a live one (a lookup is a few system calls). */
#define CHECK_MS 20

/* ---------------------------------------------------------------------------
 * Layout and identities
 */

typedef struct plock {
    _Atomic uint64_t word;
    uint64_t reserved;
    /* The event count: a wait word of the backend (its first 4 bytes are
     * the count; the backend may use the rest). */
    struct {
        alignas(8) _Atomic uint32_t v;
        uint32_t backend[3];
    } ev;
} plock;

_Static_assert(sizeof(plock) <= MPROC__PLOCK_SIZE, "process lock block");
_Static_assert(sizeof(((plock *)0)->ev) == MPROC__OS_WORD_SIZE, "wait word");

static uint64_t mix64(uint64_t x)
{
    /* splitmix64's finaliser: a bijection that moves every bit. */
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static uint32_t stamp_of(uint64_t start)
{
    uint32_t s = (uint32_t)(mix64(start) >> 33) & STAMP;
    return s == 0 ? 1u : s;
}

/* The word of a lock held by this process (computed on each call: a fork
 * child has another identity, and mproc__os_proc_self is cheap). */
static uint64_t me_word(void)
{
    mproc__proc_id id = mproc__os_proc_self();
    return ((uint64_t)(uint32_t)id.pid << 32) | stamp_of(id.start);
}

static bool is_free(uint64_t v)
{
    return (v & ~(uint64_t)WAITERS) == 0;
}

/* False once the owner recorded in v (held) has ended. */
static bool owner_alive(uint64_t v, uint64_t me)
{
    mproc__proc_id id;
    int rc;
    if ((v & ~(uint64_t)WAITERS) == me)
        return true;
    rc = mproc__os_proc_lookup((int64_t)(v >> 32), &id);
    if (rc == MPROC_ENOENT)
        return false;
    if (rc != 0)
        return true; /* it exists and we may not look: never robbed */
    return stamp_of(id.start) == ((uint32_t)v & STAMP);
}

/* ---------------------------------------------------------------------------
 * Init, open, destroy
 */

/* An identity must fit the word's 32 bits of pid (Windows: a DWORD; POSIX:
 * a pid_t), else two processes could look alike. */
static int self_fits(void)
{
    mproc__proc_id id = mproc__os_proc_self();
    return id.pid > 0 && id.pid <= (int64_t)UINT32_MAX ? 0 : MPROC_ENOSYS;
}

int mproc__plock_init(void *mem, mproc__handle *h)
{
    plock *l = mem;
    int rc;
    if (mem == NULL || h == NULL)
        return MPROC_EINVAL;
    *h = MPROC__BADHANDLE;
    rc = self_fits();
    if (rc < 0)
        return rc;
    atomic_store(&l->word, 0);
    atomic_store(&l->ev.v, 0);
    return mproc__os_word_init(&l->ev, h);
}

int mproc__plock_open(void *mem, mproc__handle h)
{
    plock *l = mem;
    int rc;
    if (mem == NULL)
        return MPROC_EINVAL;
    rc = self_fits();
    if (rc < 0)
        return rc;
    return mproc__os_word_open(&l->ev, h);
}

void mproc__plock_destroy(void *mem, mproc__handle h)
{
    if (mem != NULL)
        mproc__os_word_destroy(&((plock *)mem)->ev, h);
}

/* ---------------------------------------------------------------------------
 * Lock
 */

int mproc__plock_trylock(void *mem)
{
    plock *l = mem;
    uint64_t v = 0;
    return atomic_compare_exchange_strong_explicit(&l->word, &v, me_word(),
                                                   memory_order_acquire,
                                                   memory_order_relaxed)
               ? 0
               : MPROC_EBUSY;
}

/* Wakes one sleeper, for an unlock that found WAITERS or a locker that
 * gives up after a wake-up may have gone to it alone. */
static void wake_one(plock *l, mproc__handle h)
{
    atomic_fetch_add(&l->ev.v, 1);
    (void)mproc__os_word_wake(&l->ev, h, 1);
}

/* Takes a dead owner's word v (as last seen) over. */
static bool take_over(plock *l, uint64_t v, uint64_t me)
{
    return atomic_compare_exchange_strong(&l->word, &v, me | WAITERS);
}

#if defined(__GNUC__)
__attribute__((noinline))
#endif
static int
lock_slow(plock *l, mproc__handle h, uint64_t me, int timeout_ms)
{
    int64_t deadline = mproc__deadline_ns(timeout_ms);
    bool contended = false;
    uint64_t checked = 0; /* the last word whose owner was found running */
    for (;;) {
        uint64_t v = atomic_load_explicit(&l->word, memory_order_relaxed);
        uint32_t seq;
        int left, rc;
        if (is_free(v)) {
            /* Taken after sleeping, it keeps WAITERS: others may sleep. */
            uint64_t want =
                me | ((v & WAITERS) || contended ? (uint64_t)WAITERS : 0);
            if (atomic_compare_exchange_weak_explicit(&l->word, &v, want,
                                                      memory_order_acquire,
                                                      memory_order_relaxed))
                return 0;
            continue;
        }
        if (timeout_ms == 0) {
            if (!owner_alive(v, me) && take_over(l, v, me))
                return MPROC_EOWNERDEAD;
            return MPROC_EBUSY;
        }
        if (!(v & WAITERS)) {
            if (!atomic_compare_exchange_weak(&l->word, &v, v | WAITERS))
                continue;
            v |= WAITERS;
        }
        contended = true;
        seq = atomic_load(&l->ev.v);
        if (atomic_load(&l->word) != v)
            continue;
        left = mproc__left_ms(deadline);
        if (left == 0) {
            if (v != checked && !owner_alive(v, me) && take_over(l, v, me))
                return MPROC_EOWNERDEAD;
            /* An unlock may have woken us alone: pass it on. */
            if (is_free(atomic_load(&l->word)))
                wake_one(l, h);
            return MPROC_ETIMEDOUT;
        }
        if (left < 0 || left > CHECK_MS)
            left = CHECK_MS;
        rc = mproc__os_word_wait(&l->ev, seq, h, left);
        if (rc == MPROC_ETIMEDOUT) {
            /* Unchanged for a whole sleep: does its owner still run? */
            if (atomic_load(&l->word) == v && atomic_load(&l->ev.v) == seq) {
                if (!owner_alive(v, me)) {
                    if (take_over(l, v, me))
                        return MPROC_EOWNERDEAD;
                } else {
                    checked = v;
                }
            }
        } else if (rc < 0) {
            return rc;
        }
    }
}

int mproc__plock_lock(void *mem, mproc__handle h, int timeout_ms)
{
    plock *l = mem;
    uint64_t me = me_word();
    uint64_t v = 0;
    if (atomic_compare_exchange_strong_explicit(
            &l->word, &v, me, memory_order_acquire, memory_order_relaxed))
        return 0;
    return lock_slow(l, h, me, timeout_ms);
}

/* ---------------------------------------------------------------------------
 * Unlock
 */

int mproc__plock_unlock(void *mem, mproc__handle h)
{
    plock *l = mem;
    uint64_t v = atomic_load_explicit(&l->word, memory_order_relaxed);
    if ((v & ~(uint64_t)WAITERS) != me_word())
        return MPROC_ENOTOWNER;
    /* Held by us, only WAITERS can change meanwhile: the exchange keeps
     * what a sleeper set. */
    v = atomic_exchange(&l->word, 0);
    if (v & WAITERS)
        wake_one(l, h);
    return 0;
}
