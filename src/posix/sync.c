/*
 * Mutexes, semaphores and condition variables between processes, for the
 * POSIX backend. Everything lives in the caller's shared memory block; no
 * handle, no name. src/posix/platform.h chooses the primitives:
 *
 * - Mutex, with robust mutexes (Linux, FreeBSD, ...): a process-shared
 *   robust pthread mutex (PTHREAD_MUTEX_NORMAL). A process or thread that
 *   dies holding it must not deadlock the others: the kernel walks the dead
 *   thread's robust list and the next locker gets EOWNERDEAD, which we make
 *   consistent at once and report as MPROC_EOWNERDEAD. The robust unlock
 *   checks the owner's thread id in the futex word, so "release by a thread
 *   that does not hold it" is EPERM for free.
 * - Mutex, without them (macOS, OpenBSD, or forced): the word mutex, a wait
 *   word whose owner is the holder's process identity (pid and start time,
 *   backend.h) with its thread id beside it. A waiter that finds the word
 *   unchanged for a slice asks the OS whether the owner process still runs;
 *   a thread that ends holding one marks it on its way out (a thread-exit
 *   destructor walks the list of word mutexes the thread holds, as the
 *   kernel walks a robust list). See "Word mutex".
 * - Semaphore: an unnamed process-shared sem_t where it exists (a bounded
 *   one serialises its posts with a robust guard mutex, so the check against
 *   the maximum is exact); else a count on a wait word, changed by
 *   compare-and-swap, which needs no lock that a dead process could hold.
 * - Condition variable: a wait word of our own and two counts under the
 *   caller's mutex, on every system (see its section for why not the
 *   process-shared pthread_cond_t).
 *
 * No function here is a pthread cancellation point: pthread mutex calls are
 * not, waits on words are not (word.c), and sem_t waits, which are, hold no
 * lock of ours.
 *
 * Map: thread ids; deadlines; mutex (robust pthread, word mutex);
 * semaphore (sem_t, word semaphore); condition variable.
 */
#include "../common/backend.h"
#include "platform.h"
#include "posix.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(MPROC_THREAD_ID_GETTID)
#include <sys/syscall.h>
#endif
#if defined(MPROC_THREAD_ID_GETTHREADID_NP)
#include <pthread_np.h>
#endif

#if !defined(MPROC_HAVE_ROBUST_MUTEX)
#define WORD_MUTEX 1
#endif
/* sem_t needs a robust guard for the bounded case. */
#if !defined(MPROC_HAVE_UNNAMED_SEM) || !defined(MPROC_HAVE_ROBUST_MUTEX)
#define WORD_SEM 1
#endif
/* Timed pthread locks poll without pthread_mutex_timedlock, and under TSan
 * (platform.h). */
#if defined(MPROC_TSAN) || !defined(MPROC_HAVE_TIMEDLOCK)
#define POLL_TIMED 1
#endif

/* ---------------------------------------------------------------------------
 * Thread ids
 *
 * The OS's thread id, cached per thread: gettid() is a system call and the
 * common code asks on every RLock operation. fork() gives the child's only
 * thread a new id while its thread-local copy still holds the parent's, so
 * an atfork handler clears the cache in the child.
 */

static _Thread_local int64_t tid_cache;
static pthread_once_t tid_once = PTHREAD_ONCE_INIT;

static void tid_atfork_child(void)
{
    tid_cache = 0;
}

static void tid_register(void)
{
    (void)pthread_atfork(NULL, NULL, tid_atfork_child);
}

static int64_t tid_fetch(void)
{
#if defined(MPROC_THREAD_ID_GETTID)
    return (int64_t)syscall(SYS_gettid);
#elif defined(MPROC_THREAD_ID_THREADID_NP)
    uint64_t id = 0;
    (void)pthread_threadid_np(NULL, &id);
    return (int64_t)id;
#elif defined(MPROC_THREAD_ID_GETTHREADID_NP)
    return (int64_t)pthread_getthreadid_np();
#else
    /* No system-wide thread id: the pid in the high half and a per-process
     * sequence number in the low half are unique all the same (a fork
     * child has another pid). */
    static _Atomic uint32_t seq;
    uint32_t n = atomic_fetch_add_explicit(&seq, 1, memory_order_relaxed) + 1;
    return (int64_t)(((uint64_t)(uint32_t)getpid() << 32) | n);
#endif
}

int64_t mproc__os_thread_id(void)
{
    int64_t id = tid_cache;
    if (id == 0) {
        (void)pthread_once(&tid_once, tid_register);
        id = tid_fetch();
        tid_cache = id;
    }
    return id;
}

/* ---------------------------------------------------------------------------
 * Deadlines
 */

/* mproc__deadline_ns and mproc__left_ms (backend.h): nanosecond
 * deadlines, so that no timeout ends early (row C14). */

#if !defined(WORD_MUTEX) || !defined(WORD_SEM)
static struct timespec abstime(clockid_t clk, int timeout_ms)
{
    struct timespec ts;
    (void)clock_gettime(clk, &ts);
    ts.tv_sec += (time_t)(timeout_ms / 1000);
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec += 1;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

#if defined(MPROC_HAVE_CLOCKWAIT)
#define WAIT_CLOCK CLOCK_MONOTONIC
#else
#define WAIT_CLOCK CLOCK_REALTIME
#endif

/* A robust process-shared pthread mutex (the mutex itself, or the guard of
 * a bounded sem_t). */
static int mutex_init_raw(pthread_mutex_t *m)
{
    pthread_mutexattr_t a;
    int rc = pthread_mutexattr_init(&a);
    if (rc != 0)
        return mproc__os_error(rc);
    rc = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    if (rc == 0)
        rc = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    if (rc == 0)
        rc = pthread_mutex_init(m, &a);
    (void)pthread_mutexattr_destroy(&a);
    return rc == 0 ? 0 : mproc__os_error(rc);
}
#endif

#if !defined(WORD_MUTEX)

/* ---------------------------------------------------------------------------
 * Mutex: a robust process-shared pthread mutex
 */

/* Where the C library's mutex layout is not known (not glibc), the
 * holder is recorded beside the mutex for mproc__os_mutex_peek: written
 * after each lock, cleared before each unlock, by the holder only. */
#if !defined(__GLIBC__)
#define MUTEX_RECORD 1
#endif

typedef struct pmutex {
    pthread_mutex_t m;
#if defined(MUTEX_RECORD)
    _Atomic int64_t tid; /* 0: no holder recorded */
    _Atomic int64_t pid;
    _Atomic uint64_t start;
#endif
} pmutex;

_Static_assert(sizeof(pmutex) <= MPROC__OS_MUTEX_SIZE,
               "MPROC__OS_MUTEX_SIZE too small for pthread_mutex_t");

/* The result of a pthread lock call as a code of ours. */
static int mutex_result(pthread_mutex_t *m, int rc)
{
    switch (rc) {
    case 0:
        return 0;
    case EOWNERDEAD:
        /* We hold it; whatever the dead owner left half-done is the
         * caller's to judge (MPROC_EOWNERDEAD says so). Making it
         * consistent keeps it usable for everyone after us. */
        (void)pthread_mutex_consistent(m);
        return MPROC_EOWNERDEAD;
    case EBUSY:
        return MPROC_EBUSY;
    case ETIMEDOUT:
        return MPROC_ETIMEDOUT;
    default:
        return mproc__os_error(rc);
    }
}

int mproc__os_mutex_init(void *mem, mproc__handle *h)
{
    if (mem == NULL || h == NULL)
        return MPROC_EINVAL;
    *h = MPROC__BADHANDLE;
    return mutex_init_raw(&((pmutex *)mem)->m);
}

int mproc__os_mutex_open(void *mem, mproc__handle h)
{
    (void)h;
    return mem == NULL ? MPROC_EINVAL : 0;
}

/* Everything but the blocking lock that succeeds: kept out of line so that
 * the hot path below needs no stack frame. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static int
mutex_lock_slow(pthread_mutex_t *m, int rc, int timeout_ms)
{
    if (timeout_ms == 0) {
        rc = pthread_mutex_trylock(m);
    } else if (timeout_ms > 0) {
#if defined(POLL_TIMED)
        int64_t end = mproc__deadline_ns(timeout_ms);
        while ((rc = pthread_mutex_trylock(m)) == EBUSY &&
               mproc__os_now_ns() < end) {
            /* nanosleep would be a cancellation point */
            struct timespec ts = {0, 1000000L};
            int old = PTHREAD_CANCEL_ENABLE;
            (void)pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
            (void)nanosleep(&ts, NULL);
            (void)pthread_setcancelstate(old, &old);
        }
        if (rc == EBUSY)
            rc = ETIMEDOUT;
#else
        struct timespec ts = abstime(WAIT_CLOCK, timeout_ms);
#if defined(MPROC_HAVE_CLOCKWAIT)
        rc = pthread_mutex_clocklock(m, CLOCK_MONOTONIC, &ts);
#else
        rc = pthread_mutex_timedlock(m, &ts);
#endif
#endif
    }
    if (rc == 0)
        return 0;
    return mutex_result(m, rc);
}

#if defined(MUTEX_RECORD)
static int record_holder(pmutex *pm, int rc)
{
    if (rc == 0 || rc == MPROC_EOWNERDEAD) {
        mproc__proc_id me = mproc__os_proc_self();
        /* The thread last: a reader that sees it sees the process. */
        atomic_store_explicit(&pm->pid, me.pid, memory_order_relaxed);
        atomic_store_explicit(&pm->start, me.start, memory_order_relaxed);
        atomic_store_explicit(&pm->tid, mproc__os_thread_id(),
                              memory_order_release);
    }
    return rc;
}
#else
#define record_holder(pm, rc) (rc)
#endif

int mproc__os_mutex_lock(void *mem, mproc__handle h, int timeout_ms)
{
    pthread_mutex_t *m = &((pmutex *)mem)->m;
    (void)h;
    if (timeout_ms < 0) {
        int rc = pthread_mutex_lock(m);
        if (rc == 0)
            return record_holder((pmutex *)mem, 0);
        /* rc is the blocking lock's error: EOWNERDEAD and friends. */
        return record_holder((pmutex *)mem,
                             mutex_lock_slow(m, rc, MPROC_FOREVER));
    }
    return record_holder((pmutex *)mem, mutex_lock_slow(m, 0, timeout_ms));
}

int mproc__os_mutex_unlock(void *mem, mproc__handle h)
{
    int rc;
    (void)h;
#if defined(MPROC_TSAN) && defined(__GLIBC__)
    /* glibc keeps the owner's kernel thread id in __data.__owner. */
    if ((int64_t)((pmutex *)mem)->m.__data.__owner != mproc__os_thread_id())
        return MPROC_ENOTOWNER;
#endif
    MPROC__HOOK(MPROC__HOOK_MUTEX_RELEASE);
#if defined(MUTEX_RECORD)
    {
        /* Only the holder's own record goes (a thread that does not hold
         * the mutex gets EPERM below and leaves it alone). */
        pmutex *pm = (pmutex *)mem;
        int64_t me = mproc__os_thread_id();
        if (atomic_load_explicit(&pm->tid, memory_order_relaxed) == me &&
            atomic_load_explicit(&pm->pid, memory_order_relaxed) ==
                mproc__os_proc_self().pid)
            atomic_store_explicit(&pm->tid, 0, memory_order_release);
    }
#endif
    rc = pthread_mutex_unlock(&((pmutex *)mem)->m);
    if (rc == 0)
        return 0;
    /* A robust mutex says EPERM for a thread that does not hold it. */
    return rc == EPERM ? MPROC_ENOTOWNER : mproc__os_error(rc);
}

#if defined(__GLIBC__) /* mproc__os_mutex_peek's only user */
/* The process of live thread `tid` of the machine, or 0. */
static int64_t tid_process(int64_t tid)
{
#if defined(__linux__)
    char path[64], buf[512];
    const char *p;
    ssize_t n;
    int fd;
    if (tid <= 0 || tid > INT32_MAX)
        return 0;
    snprintf(path, sizeof path, "/proc/self/task/%lld", (long long)tid);
    if (access(path, F_OK) == 0)
        return (int64_t)getpid();
    /* Any thread of the machine is /proc/TID, hidden from listings. */
    snprintf(path, sizeof path, "/proc/%lld/status", (long long)tid);
    fd = mproc__posix_fd_high(open(path, O_RDONLY | O_CLOEXEC));
    if (fd < 0)
        return 0;
    n = read(fd, buf, sizeof buf - 1);
    (void)close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    p = strstr(buf, "\nTgid:");
    return p != NULL ? (int64_t)strtoll(p + 6, NULL, 10) : 0;
#else
    (void)tid;
    return 0;
#endif
}
#endif

int mproc__os_mutex_peek(void *mem, mproc__handle h, int64_t *pid, int64_t *tid)
{
    int64_t owner;
    (void)h;
    if (mem == NULL || pid == NULL || tid == NULL)
        return MPROC_EINVAL;
    *pid = *tid = 0;
#if defined(__GLIBC__)
    /* A robust mutex's futex word: the owner's kernel thread id, or 0 (the
     * kernel clears it, setting OWNER_DIED, when the owner dies). */
    owner = (int64_t)((unsigned)__atomic_load_n(
                          &((pmutex *)mem)->m.__data.__lock, __ATOMIC_ACQUIRE) &
                      0x3fffffffu);
    if (owner == 0)
        return 0;
    *tid = owner;
    *pid = tid_process(owner);
    return 1;
#else
    {
        /* The holder's record: a holder that died (or a recorded process
         * that has ended, whoever has its pid now) reads as free, as the
         * robust mutex's next lock will say MPROC_EOWNERDEAD. A holder
         * between its lock and its record reads as free for those few
         * instructions (its lock call has not returned). */
        pmutex *pm = (pmutex *)mem;
        mproc__proc_id id;
        owner = atomic_load_explicit(&pm->tid, memory_order_acquire);
        if (owner == 0)
            return 0;
        id.pid = atomic_load_explicit(&pm->pid, memory_order_relaxed);
        id.start = atomic_load_explicit(&pm->start, memory_order_relaxed);
        if (atomic_load_explicit(&pm->tid, memory_order_acquire) != owner)
            return 0; /* changing hands: a snapshot says free */
        if (id.pid != mproc__os_proc_self().pid &&
            mproc__os_proc_alive(&id) != 1)
            return 0;
        *tid = owner;
        *pid = id.pid;
        return 1;
    }
#endif
}

void mproc__os_mutex_destroy(void *mem, mproc__handle h)
{
    /* Other processes may still use the mutex; the memory it lives in goes
     * away with the last mapping of the segment. pthread_mutex_destroy on a
     * mutex others use would be undefined, so there is nothing to do. */
    (void)mem;
    (void)h;
}

#else /* WORD_MUTEX */

/* ---------------------------------------------------------------------------
 * Word mutex
 *
 * One 64-bit word, changed only by compare-and-swap and exchange:
 *
 *   low half   bit 31 WAITERS (someone may sleep: unlock must wake),
 *              bit 30 DIED (free, and its last owner died holding it),
 *              bits 0-29 the owner's pid (0: free);
 *   high half  a 32-bit stamp of the owner's start time.
 *
 * So the owner's identity is taken with the lock in one atomic step: no
 * window in which the word is held but its owner unknown. Sleepers wait on
 * the low half (a wait word). Beside it, the owner thread's id (written by
 * the owner after taking the word; it decides only "is it my thread?", so
 * a stale value of a dead thread is harmless) and a serial number that
 * tells mutexes apart in a thread's list.
 *
 * Owner death:
 * - a process: a waiter whose sleep ran a whole slice (WM_CHECK_MS) without
 *   the word changing looks the owner up (mproc__os_proc_lookup): no such
 *   process, a zombie, or another start time means it ended, and the
 *   waiter takes the word over by compare-and-swap, with MPROC_EOWNERDEAD.
 *   A timeout-0 attempt looks once. A locker that finds its own process as
 *   the owner never asks: see the next point.
 * - a thread of a live process: every thread keeps the list of word
 *   mutexes it holds; a thread-exit destructor (pthread_key_create) walks
 *   it and marks each one still held by this thread DIED, waking all
 *   sleepers. That covers pthread_exit, a return from the thread function
 *   and cancellation; the end of a process is the case above.
 *
 * A process's view of a segment may be unmapped (destroy) while a thread of
 * it holds the mutex: the destructor touches only views still registered
 * (mutex_init/open register, destroy unregisters, under a private lock).
 */

#define WM_WAITERS 0x80000000u
#define WM_DIED 0x40000000u
#define WM_PID 0x3fffffffu
/* The spin before a sleep: at most WM_SPIN yields and WM_SPIN_NS. The time
 * bound matters on a loaded machine, where each yield may hand the CPU to
 * another process for a whole time slice: 64 of them once took 200 ms. */
#define WM_SPIN 64
#define WM_SPIN_NS 100000
#define WM_CHECK_MS 20

typedef struct wmutex {
    _Atomic uint64_t word;
    _Atomic int64_t tid;
    uint64_t serial;
} wmutex;

_Static_assert(sizeof(wmutex) <= MPROC__OS_MUTEX_SIZE, "word mutex block");

/* The low half of the word, the part sleepers wait on. */
static void *wm_low(wmutex *m)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return (unsigned char *)&m->word + 4;
#else
    return &m->word;
#endif
}

static uint64_t mix64(uint64_t x)
{
    /* splitmix64's finaliser: a bijection that moves every bit. */
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static uint32_t wm_stamp(uint64_t start)
{
    uint32_t s = (uint32_t)(mix64(start) >> 32);
    return s == 0 ? 1u : s;
}

/* The word of a lock held by this process. */
static uint64_t wm_me(void)
{
    mproc__proc_id id = mproc__os_proc_self();
    return ((uint64_t)wm_stamp(id.start) << 32) | ((uint64_t)id.pid & WM_PID);
}

/* False once the owner recorded in v has ended. */
static bool wm_owner_alive(uint64_t v, uint64_t me)
{
    mproc__proc_id id;
    uint32_t pid = (uint32_t)v & WM_PID;
    int rc;
    if ((v & ~(uint64_t)(WM_WAITERS | WM_DIED)) == me)
        return true; /* ours: a thread of ours that ends marks its locks */
    rc = mproc__os_proc_lookup((int64_t)pid, &id);
    if (rc == MPROC_ENOENT)
        return false;
    if (rc != 0)
        return true;
    return wm_stamp(id.start) == (uint32_t)(v >> 32);
}

/* Views of word mutexes this process has, for the thread-exit destructor. */
static pthread_mutex_t views_lock = PTHREAD_MUTEX_INITIALIZER;
static wmutex **views;
static size_t nviews, capviews;
static pthread_once_t views_once = PTHREAD_ONCE_INIT;

static void views_prepare(void)
{
    (void)pthread_mutex_lock(&views_lock);
}

static void views_release(void)
{
    (void)pthread_mutex_unlock(&views_lock);
}

static void views_setup(void)
{
    (void)pthread_atfork(views_prepare, views_release, views_release);
}

static int views_add(wmutex *m)
{
    int rc = 0;
    (void)pthread_once(&views_once, views_setup);
    (void)pthread_mutex_lock(&views_lock);
    if (nviews == capviews) {
        size_t cap = capviews ? capviews * 2 : 16;
        /* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers */
        wmutex **p = (wmutex **)realloc(views, cap * sizeof *p);
        if (p == NULL) {
            rc = MPROC_ENOMEM;
        } else {
            views = p;
            capviews = cap;
        }
    }
    if (rc == 0)
        views[nviews++] = m;
    (void)pthread_mutex_unlock(&views_lock);
    return rc;
}

static void views_remove(wmutex *m)
{
    (void)pthread_once(&views_once, views_setup);
    (void)pthread_mutex_lock(&views_lock);
    for (size_t i = 0; i < nviews; i++) {
        if (views[i] == m) {
            views[i] = views[--nviews];
            break;
        }
    }
    (void)pthread_mutex_unlock(&views_lock);
}

/* Called with views_lock held. */
static bool views_has(const wmutex *m)
{
    for (size_t i = 0; i < nviews; i++)
        if (views[i] == m)
            return true;
    return false;
}

/* The word mutexes this thread holds: malloc'ed, found through a
 * thread-local pointer, handed to the key's destructor at thread exit. */
typedef struct held_ent {
    wmutex *m;
    uint64_t serial;
} held_ent;

typedef struct held_list {
    held_ent *e;
    size_t n;
    size_t cap;
} held_list;

static _Thread_local held_list *held_tls;
static pthread_key_t held_key;
static pthread_once_t held_once = PTHREAD_ONCE_INIT;

/* Marks m DIED if this thread (of this process) holds it. */
static void wm_mark_dead(wmutex *m, uint64_t me, int64_t tid)
{
    uint64_t v = atomic_load(&m->word);
    if ((v & ~(uint64_t)WM_WAITERS) != me ||
        atomic_load_explicit(&m->tid, memory_order_relaxed) != tid)
        return;
    atomic_store_explicit(&m->tid, 0, memory_order_relaxed);
    /* Only the owner changes a held word, but for the WAITERS bit: the
     * exchange keeps whatever a sleeper added meanwhile. */
    v = atomic_exchange(&m->word, (uint64_t)WM_DIED);
    if (v & WM_WAITERS)
        (void)mproc__os_word_wake(wm_low(m), MPROC__BADHANDLE, UINT32_MAX);
}

static void held_exit(void *p)
{
    held_list *l = (held_list *)p;
    uint64_t me = wm_me();
    int64_t tid = mproc__os_thread_id();
    (void)pthread_mutex_lock(&views_lock);
    for (size_t i = 0; i < l->n; i++) {
        wmutex *m = l->e[i].m;
        if (views_has(m) && m->serial == l->e[i].serial)
            wm_mark_dead(m, me, tid);
    }
    (void)pthread_mutex_unlock(&views_lock);
    held_tls = NULL;
    free(l->e);
    free(l);
}

static void held_setup(void)
{
    (void)pthread_key_create(&held_key, held_exit);
}

static int held_track(wmutex *m)
{
    held_list *l = held_tls;
    if (l == NULL) {
        (void)pthread_once(&held_once, held_setup);
        l = (held_list *)calloc(1, sizeof *l);
        if (l == NULL)
            return MPROC_ENOMEM;
        if (pthread_setspecific(held_key, l) != 0) {
            free(l);
            return MPROC_ENOMEM;
        }
        held_tls = l;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        held_ent *e = (held_ent *)realloc(l->e, cap * sizeof *e);
        if (e == NULL)
            return MPROC_ENOMEM;
        l->e = e;
        l->cap = cap;
    }
    l->e[l->n].m = m;
    l->e[l->n].serial = m->serial;
    l->n++;
    return 0;
}

/* Drops m from this thread's list: by address, else (the lock was taken
 * through another view of the same segment) by serial. */
static void held_untrack(wmutex *m)
{
    held_list *l = held_tls;
    size_t i;
    if (l == NULL)
        return;
    for (i = l->n; i-- > 0;) {
        if (l->e[i].m == m)
            goto found;
    }
    for (i = l->n; i-- > 0;) {
        if (l->e[i].serial == m->serial)
            goto found;
    }
    return;
found:
    l->e[i] = l->e[--l->n];
}

static void wm_release_word(wmutex *m, uint64_t to)
{
    uint64_t v;
    atomic_store_explicit(&m->tid, 0, memory_order_relaxed);
    v = atomic_exchange_explicit(&m->word, to, memory_order_release);
    if (v & WM_WAITERS)
        (void)mproc__os_word_wake(wm_low(m), MPROC__BADHANDLE, 1);
}

/* The word is ours: record the thread, and the thread's list. */
static int wm_got(wmutex *m, int rc)
{
    atomic_store_explicit(&m->tid, mproc__os_thread_id(), memory_order_relaxed);
    if (held_track(m) != 0) {
        /* Without the list a thread's death would go unseen: give it
         * back, as it was. */
        wm_release_word(m, rc == MPROC_EOWNERDEAD ? (uint64_t)WM_DIED : 0);
        return MPROC_ENOMEM;
    }
    return rc;
}

int mproc__os_mutex_init(void *mem, mproc__handle *h)
{
    static _Atomic uint64_t serials;
    wmutex *m = (wmutex *)mem;
    mproc__proc_id id;
    if (mem == NULL || h == NULL)
        return MPROC_EINVAL;
    *h = MPROC__BADHANDLE;
    id = mproc__os_proc_self();
    atomic_store(&m->word, 0);
    atomic_store(&m->tid, 0);
    m->serial = mix64((uint64_t)id.pid ^ mix64(id.start) ^
                      mix64(atomic_fetch_add(&serials, 1) + 1) ^
                      (uint64_t)(uintptr_t)mem ^ (uint64_t)mproc__os_now_ns());
    return views_add(m);
}

int mproc__os_mutex_open(void *mem, mproc__handle h)
{
    (void)h;
    if (mem == NULL)
        return MPROC_EINVAL;
    return views_add((wmutex *)mem);
}

/* Takes the word from a dead owner (v as last seen). */
static bool wm_take_over(wmutex *m, uint64_t v, uint64_t me)
{
    return atomic_compare_exchange_strong(&m->word, &v, me | WM_WAITERS);
}

#if defined(__GNUC__)
__attribute__((noinline))
#endif
static int
wm_lock_slow(wmutex *m, uint64_t me, int timeout_ms)
{
    int64_t deadline = timeout_ms > 0 ? mproc__deadline_ns(timeout_ms) : -1;
    int64_t spin_end = 0;
    bool contended = false, looked = false;
    int spins = 0;
    for (;;) {
        uint64_t v = atomic_load_explicit(&m->word, memory_order_relaxed);
        uint32_t low = (uint32_t)v;
        int left, slice, rc;
        if ((low & WM_PID) == 0) {
            /* Free (maybe DIED). Taken from the slow path, it keeps the
             * WAITERS bit: others may sleep, so the unlock must wake. */
            uint64_t want =
                me |
                ((low & WM_WAITERS) || contended ? (uint64_t)WM_WAITERS : 0);
            if (atomic_compare_exchange_weak_explicit(&m->word, &v, want,
                                                      memory_order_acquire,
                                                      memory_order_relaxed))
                return wm_got(m, (low & WM_DIED) ? MPROC_EOWNERDEAD : 0);
            continue;
        }
        if (timeout_ms == 0) {
            if (!wm_owner_alive(v, me) && wm_take_over(m, v, me))
                return wm_got(m, MPROC_EOWNERDEAD);
            return MPROC_EBUSY;
        }
        if (spins < WM_SPIN) {
            /* A short critical section ends soon: a few yields first. */
            if (spins == 0)
                spin_end = mproc__os_now_ns() + WM_SPIN_NS;
            else if (mproc__os_now_ns() > spin_end)
                spins = WM_SPIN;
            if (spins < WM_SPIN) {
                spins++;
                sched_yield();
                continue;
            }
        }
        if (!looked) {
            /* About to sleep: an owner that ended before we came is taken
             * over now, not a slice later. */
            looked = true;
            if (!wm_owner_alive(v, me) && wm_take_over(m, v, me))
                return wm_got(m, MPROC_EOWNERDEAD);
        }
        if (!(low & WM_WAITERS)) {
            if (!atomic_compare_exchange_weak(&m->word, &v, v | WM_WAITERS))
                continue;
            low |= WM_WAITERS;
        }
        contended = true;
        left = mproc__left_ms(deadline);
        if (left == 0) {
            if (!wm_owner_alive(v, me) && wm_take_over(m, v | WM_WAITERS, me))
                return wm_got(m, MPROC_EOWNERDEAD);
            /* An unlock may have woken us alone: pass it on. */
            if ((atomic_load(&m->word) & WM_PID) == 0)
                (void)mproc__os_word_wake(wm_low(m), MPROC__BADHANDLE, 1);
            return MPROC_ETIMEDOUT;
        }
        slice = (left < 0 || left > WM_CHECK_MS) ? WM_CHECK_MS : left;
        rc = mproc__os_word_wait(wm_low(m), low, MPROC__BADHANDLE, slice);
        if (rc == MPROC_ETIMEDOUT) {
            /* Unchanged for a whole slice: does its owner still run? */
            uint64_t now = atomic_load(&m->word);
            if (now == (v | WM_WAITERS) && !wm_owner_alive(now, me) &&
                wm_take_over(m, now, me))
                return wm_got(m, MPROC_EOWNERDEAD);
        } else if (rc < 0) {
            return rc;
        }
    }
}

int mproc__os_mutex_lock(void *mem, mproc__handle h, int timeout_ms)
{
    wmutex *m = (wmutex *)mem;
    uint64_t me = wm_me();
    uint64_t v = 0;
    (void)h;
    if (atomic_compare_exchange_strong_explicit(
            &m->word, &v, me, memory_order_acquire, memory_order_relaxed))
        return wm_got(m, 0);
    return wm_lock_slow(m, me, timeout_ms);
}

int mproc__os_mutex_unlock(void *mem, mproc__handle h)
{
    wmutex *m = (wmutex *)mem;
    uint64_t v;
    (void)h;
    v = atomic_load_explicit(&m->word, memory_order_relaxed);
    if ((v & ~(uint64_t)WM_WAITERS) != wm_me() ||
        atomic_load_explicit(&m->tid, memory_order_relaxed) !=
            mproc__os_thread_id())
        return MPROC_ENOTOWNER;
    MPROC__HOOK(MPROC__HOOK_MUTEX_RELEASE);
    held_untrack(m);
    wm_release_word(m, 0);
    return 0;
}

int mproc__os_mutex_peek(void *mem, mproc__handle h, int64_t *pid, int64_t *tid)
{
    wmutex *m = (wmutex *)mem;
    uint64_t v;
    (void)h;
    if (mem == NULL || pid == NULL || tid == NULL)
        return MPROC_EINVAL;
    *pid = *tid = 0;
    v = atomic_load_explicit(&m->word, memory_order_acquire);
    if ((v & WM_PID) == 0 || !wm_owner_alive(v, wm_me()))
        return 0;
    *pid = (int64_t)(v & WM_PID);
    *tid = atomic_load_explicit(&m->tid, memory_order_relaxed);
    return 1;
}

void mproc__os_mutex_destroy(void *mem, mproc__handle h)
{
    /* The memory goes away with this view: the thread's list and the
     * destructor must not touch it after that. */
    (void)h;
    if (mem == NULL)
        return;
    held_untrack((wmutex *)mem);
    views_remove((wmutex *)mem);
}

#endif /* WORD_MUTEX */

/* ---------------------------------------------------------------------------
 * Semaphore
 */

#if defined(WORD_SEM)

/* A count on a wait word: wait takes one by compare-and-swap or sleeps on
 * the word while it reads 0; post adds by compare-and-swap, refusing to
 * pass the maximum, and wakes only when someone may sleep. No lock, so a
 * process that dies anywhere in here leaves the count valid. A waiter
 * killed while asleep leaves `waiters` one too high: posts then make a
 * needless wake call, nothing worse. */
typedef struct wsem {
    _Atomic uint32_t value;
    _Atomic uint32_t waiters;
    uint32_t max; /* 0: unbounded */
} wsem;

_Static_assert(sizeof(wsem) <= MPROC__OS_SEM_SIZE, "word semaphore block");

int mproc__os_sem_init(void *mem, mproc__handle *h, unsigned initial,
                       unsigned max)
{
    wsem *s = (wsem *)mem;
    if (mem == NULL || h == NULL)
        return MPROC_EINVAL;
    if ((max > 0 && initial > max) || initial > INT32_MAX || max > INT32_MAX)
        return MPROC_EINVAL;
    *h = MPROC__BADHANDLE;
    atomic_store(&s->value, (uint32_t)initial);
    atomic_store(&s->waiters, 0);
    s->max = max;
    return 0;
}

int mproc__os_sem_open(void *mem, mproc__handle h)
{
    (void)h;
    return mem == NULL ? MPROC_EINVAL : 0;
}

int mproc__os_sem_wait(void *mem, mproc__handle h, int timeout_ms)
{
    wsem *s = (wsem *)mem;
    int64_t deadline = timeout_ms > 0 ? mproc__deadline_ns(timeout_ms) : -1;
    (void)h;
    for (;;) {
        uint32_t v = atomic_load_explicit(&s->value, memory_order_relaxed);
        int left, rc;
        while (v > 0) {
            if (atomic_compare_exchange_weak_explicit(&s->value, &v, v - 1,
                                                      memory_order_acquire,
                                                      memory_order_relaxed))
                return 0;
        }
        if (timeout_ms == 0)
            return MPROC_EBUSY;
        left = mproc__left_ms(deadline);
        if (left == 0)
            return MPROC_ETIMEDOUT;
        atomic_fetch_add(&s->waiters, 1);
        rc = mproc__os_word_wait(&s->value, 0, MPROC__BADHANDLE, left);
        atomic_fetch_sub(&s->waiters, 1);
        if (rc < 0 && rc != MPROC_ETIMEDOUT)
            return rc;
    }
}

int mproc__os_sem_post(void *mem, mproc__handle h, unsigned n)
{
    wsem *s = (wsem *)mem;
    uint32_t limit = s->max > 0 && s->max <= INT32_MAX ? s->max : INT32_MAX;
    uint32_t v;
    (void)h;
    if (n == 0)
        return MPROC_EINVAL;
    v = atomic_load_explicit(&s->value, memory_order_relaxed);
    do {
        if (n > limit || v > limit - n)
            return MPROC_ERANGE;
    } while (!atomic_compare_exchange_weak_explicit(
        &s->value, &v, v + n, memory_order_release, memory_order_relaxed));
    if (atomic_load(&s->waiters) > 0)
        (void)mproc__os_word_wake(&s->value, MPROC__BADHANDLE, n);
    return 0;
}

int64_t mproc__os_sem_value(void *mem, mproc__handle h)
{
    (void)h;
    return (int64_t)atomic_load(&((wsem *)mem)->value);
}

void mproc__os_sem_destroy(void *mem, mproc__handle h)
{
    (void)mem;
    (void)h;
}

#else /* !WORD_SEM: an unnamed process-shared sem_t */

typedef struct psem {
    sem_t s;
    unsigned max;          /* 0: unbounded */
    pthread_mutex_t guard; /* serialises the posts of a bounded semaphore */
} psem;

_Static_assert(sizeof(psem) <= MPROC__OS_SEM_SIZE,
               "MPROC__OS_SEM_SIZE too small for sem_t and its guard");

int mproc__os_sem_init(void *mem, mproc__handle *h, unsigned initial,
                       unsigned max)
{
    psem *s = (psem *)mem;
    int rc;
    if (mem == NULL || h == NULL)
        return MPROC_EINVAL;
    if ((max > 0 && initial > max) || initial > (unsigned)SEM_VALUE_MAX ||
        max > (unsigned)SEM_VALUE_MAX)
        return MPROC_EINVAL;
    *h = MPROC__BADHANDLE;
    s->max = max;
    if (max > 0) {
        rc = mutex_init_raw(&s->guard);
        if (rc != 0)
            return rc;
    }
    if (sem_init(&s->s, 1, initial) != 0)
        return mproc__os_error(errno);
    return 0;
}

int mproc__os_sem_open(void *mem, mproc__handle h)
{
    (void)h;
    return mem == NULL ? MPROC_EINVAL : 0;
}

int mproc__os_sem_wait(void *mem, mproc__handle h, int timeout_ms)
{
    sem_t *s = &((psem *)mem)->s;
    (void)h;
    if (timeout_ms == 0) {
        while (sem_trywait(s) != 0) {
            if (errno == EAGAIN)
                return MPROC_EBUSY;
            if (errno != EINTR)
                return mproc__os_error(errno);
        }
        return 0;
    }
    if (timeout_ms < 0) {
        while (sem_wait(s) != 0) {
            if (errno != EINTR)
                return mproc__os_error(errno);
        }
        return 0;
    } else {
        /* One absolute deadline: a signal that interrupts the wait does
         * not restart the clock. */
        struct timespec ts = abstime(WAIT_CLOCK, timeout_ms);
        for (;;) {
#if defined(MPROC_HAVE_CLOCKWAIT)
            int rc = sem_clockwait(s, CLOCK_MONOTONIC, &ts);
#else
            int rc = sem_timedwait(s, &ts);
#endif
            if (rc == 0)
                return 0;
            if (errno == ETIMEDOUT)
                return MPROC_ETIMEDOUT;
            if (errno != EINTR)
                return mproc__os_error(errno);
        }
    }
}

static int sem_post_n(sem_t *s, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        if (sem_post(s) != 0)
            return errno == EOVERFLOW ? MPROC_ERANGE : mproc__os_error(errno);
    }
    return 0;
}

int mproc__os_sem_post(void *mem, mproc__handle h, unsigned n)
{
    psem *s = (psem *)mem;
    int value = 0;
    int rc;
    (void)h;
    if (n == 0)
        return MPROC_EINVAL;
    if (s->max == 0) {
        if (n > 1 && sem_getvalue(&s->s, &value) == 0 &&
            (unsigned)value > (unsigned)SEM_VALUE_MAX - n)
            return MPROC_ERANGE;
        return sem_post_n(&s->s, n);
    }
    rc = pthread_mutex_lock(&s->guard);
    if (rc != 0 && rc != EOWNERDEAD)
        return mproc__os_error(rc);
    if (rc == EOWNERDEAD)
        (void)pthread_mutex_consistent(&s->guard);
    if (sem_getvalue(&s->s, &value) != 0) {
        rc = mproc__os_error(errno);
    } else if (value < 0 || n > s->max || (unsigned)value > s->max - n) {
        /* Some systems report minus the number of waiters; a waiter means
         * the count is 0. */
        rc = value < 0 && n <= s->max ? sem_post_n(&s->s, n) : MPROC_ERANGE;
    } else {
        rc = sem_post_n(&s->s, n);
    }
    (void)pthread_mutex_unlock(&s->guard);
    return rc;
}

int64_t mproc__os_sem_value(void *mem, mproc__handle h)
{
    int value;
    (void)h;
    if (sem_getvalue(&((psem *)mem)->s, &value) != 0)
        return mproc__os_error(errno);
    return value < 0 ? 0 : value;
}

void mproc__os_sem_destroy(void *mem, mproc__handle h)
{
    /* As for the mutex: others may still use it; the memory goes with the
     * segment. Linux's sem_destroy does nothing anyway. */
    (void)mem;
    (void)h;
}

#endif /* WORD_SEM */

/* ---------------------------------------------------------------------------
 * Condition variable
 *
 * Not glibc's process-shared pthread_cond_t: a waiter killed inside it
 * holds a reference on its wait group, and a later signal or broadcast
 * that closes the group waits for that reference to drop, forever (seen on
 * glibc 2.36: the second broadcast after a waiter was SIGKILLed hangs); and
 * it cannot wait with the word mutex. So the condition is a wait word of
 * our own, whose sleepers the kernel forgets when they die (a futex; the
 * polled fallback has no sleepers to forget), plus two counts kept under
 * the caller's mutex (the contract has signal and broadcast called with it
 * held):
 *
 * - seq, the wait word: bumped by every grant, so a waiter that released
 *   the mutex but has not slept yet does not miss the wake-up, and so a
 *   waiter can tell whether a grant came after it started waiting (only
 *   then may it take one: a later waiter cannot steal a wake-up, row L14);
 * - waiters: waiting and not yet granted a wake-up; signals: wake-ups
 *   granted and not yet taken. notify(n) grants min(n, waiters).
 *
 * A waiter that times out takes a granted wake-up if one is left for it,
 * else it gives back its place in `waiters`; waiters are interchangeable,
 * so the counts stay exact without knowing who was meant. A waiter killed
 * while waiting stays counted and may absorb one grant: at worst a later
 * waiter wakes spuriously, which the contract allows; nobody blocks.
 */

typedef struct pcond {
    _Atomic uint32_t seq;
    uint32_t waiters;
    uint32_t signals;
} pcond;

_Static_assert(sizeof(pcond) <= MPROC__OS_COND_SIZE, "pcond too large");

int mproc__os_cond_init(void *mem, mproc__handle *h)
{
    pcond *c = (pcond *)mem;
    if (mem == NULL || h == NULL)
        return MPROC_EINVAL;
    for (int i = 0; i < MPROC__OS_COND_HANDLES; i++)
        h[i] = MPROC__BADHANDLE;
    atomic_store(&c->seq, 0);
    c->waiters = 0;
    c->signals = 0;
    return 0;
}

int mproc__os_cond_open(void *mem, const mproc__handle *h)
{
    (void)h;
    return mem == NULL ? MPROC_EINVAL : 0;
}

int mproc__os_cond_wait(void *mem, const mproc__handle *h, void *mutex_mem,
                        mproc__handle mutex_h, int timeout_ms)
{
    pcond *c = (pcond *)mem;
    int64_t deadline = timeout_ms > 0 ? mproc__deadline_ns(timeout_ms) : -1;
    uint32_t start;
    bool owner_died = false;
    (void)h;
    if (timeout_ms == 0)
        return MPROC_ETIMEDOUT;
    start = atomic_load_explicit(&c->seq, memory_order_relaxed);
    c->waiters++;
    for (;;) {
        uint32_t seen = atomic_load_explicit(&c->seq, memory_order_relaxed);
        int left = mproc__left_ms(deadline);
        int rc;
        bool timed_out = false;
        rc = mproc__os_mutex_unlock(mutex_mem, mutex_h);
        if (rc < 0) {
            /* Not held: the caller broke the contract; nothing was waited
             * for. */
            c->waiters--;
            return rc;
        }
        MPROC__HOOK(MPROC__HOOK_COND_UNLOCKED);
        if (left != 0)
            rc = mproc__os_word_wait(&c->seq, seen, MPROC__BADHANDLE, left);
        if (left == 0 || rc == MPROC_ETIMEDOUT)
            timed_out = true;
        rc = mproc__os_mutex_lock(mutex_mem, mutex_h, MPROC_FOREVER);
        if (rc == MPROC_EOWNERDEAD)
            owner_died = true;
        else if (rc < 0)
            return rc;
        /* A wake-up granted after we started is ours to take. */
        if (c->signals > 0 &&
            atomic_load_explicit(&c->seq, memory_order_relaxed) != start) {
            c->signals--;
            return owner_died ? MPROC_EOWNERDEAD : 0;
        }
        if (timed_out) {
            if (c->waiters > 0)
                c->waiters--;
            return owner_died ? MPROC_EOWNERDEAD : MPROC_ETIMEDOUT;
        }
        /* Woken for someone else, or spuriously (a signal handler): the
         * deadline still holds, wait again. */
    }
}

static int cond_grant(pcond *c, uint32_t n)
{
    uint32_t k = n < c->waiters ? n : c->waiters;
    if (k == 0)
        return 0;
    c->waiters -= k;
    c->signals += k;
    atomic_fetch_add_explicit(&c->seq, 1, memory_order_release);
    return mproc__os_word_wake(&c->seq, MPROC__BADHANDLE, k);
}

int mproc__os_cond_signal(void *mem, const mproc__handle *h, unsigned n)
{
    (void)h;
    return cond_grant((pcond *)mem, n);
}

int mproc__os_cond_broadcast(void *mem, const mproc__handle *h)
{
    (void)h;
    return cond_grant((pcond *)mem, UINT32_MAX);
}

void mproc__os_cond_destroy(void *mem, const mproc__handle *h)
{
    (void)mem;
    (void)h;
}
