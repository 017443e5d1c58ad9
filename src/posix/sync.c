/*
 * Mutexes, semaphores and condition variables between processes, for the
 * POSIX backend.
 *
 * Everything lives in the caller's shared memory block; no handle, no name.
 *
 * - Mutex: a process-shared robust pthread mutex (PTHREAD_MUTEX_NORMAL).
 *   Robust, because a process that dies holding it must not deadlock the
 *   others: the kernel walks the dead thread's robust list and the next
 *   locker gets EOWNERDEAD, which we make consistent at once and report as
 *   MPROC_EOWNERDEAD. The robust unlock path checks the owner's thread id
 *   in the futex word, so "release by a thread that does not hold it" is
 *   EPERM for free (no owner field of our own on the hot path).
 * - Semaphore: an unnamed process-shared sem_t. sem_post cannot refuse to
 *   go past a maximum, so a bounded semaphore serialises its posts with a
 *   robust guard mutex: with posts serialised, the count can only fall
 *   between our sem_getvalue and sem_post, so the check is exact.
 * - Condition variable: on Linux, a futex of our own (see its section for
 *   why not glibc's process-shared pthread_cond_t); elsewhere a
 *   process-shared pthread_cond_t.
 *
 * Timeouts use CLOCK_MONOTONIC where the C library can (glibc >= 2.30:
 * pthread_mutex_clocklock, sem_clockwait), so that a change of the wall
 * clock neither shortens nor stretches a wait; elsewhere CLOCK_REALTIME.
 *
 * Map: thread ids; deadlines; mutex; semaphore; condition variable.
 */
#include "../common/backend.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#define HAVE_FUTEX 1
#endif
#if defined(__FreeBSD__)
#include <pthread_np.h>
#endif

#if defined(__GLIBC__) && defined(__GLIBC_PREREQ)
#if __GLIBC_PREREQ(2, 30)
#define HAVE_CLOCKWAIT 1
#endif
#endif

/* ThreadSanitizer (clang 14) does not intercept pthread_mutex_clocklock and
 * ignores EOWNERDEAD from pthread_mutex_timedlock, so it would believe a
 * mutex taken that way unlocked; it also reports an unlock by a non-owner
 * before the robust mutex can refuse it with EPERM. Under TSan only, timed
 * locks poll pthread_mutex_trylock (which it models fully) and the owner is
 * checked before unlocking; the results are the same. */
#if defined(__SANITIZE_THREAD__)
#define MPROC_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MPROC_TSAN 1
#endif
#endif

/* macOS has neither pthread_mutex_timedlock nor sem_timedwait: timed waits
 * poll there, as under TSan. Its sem_init fails (ENOSYS) too, so there the
 * semaphore is a count under a mutex with a condition variable
 * (SEM_PORTABLE; define MPROC_PORTABLE_SEM to build it elsewhere, which is
 * how it is tested on Linux). Not run on macOS itself yet. */
#if defined(MPROC_TSAN) || defined(__APPLE__)
#define POLL_TIMED 1
#endif
#if defined(__APPLE__) || defined(MPROC_PORTABLE_SEM)
#define SEM_PORTABLE 1
#endif

/* PTHREAD_MUTEX_ROBUST is an enumerator, not a macro, so it cannot be
 * tested for; the systems without robust mutexes are listed instead. */
#if !defined(__APPLE__) && !defined(__OpenBSD__)
#define HAVE_ROBUST 1
#endif

/* ---------------------------------------------------------------------------
 * Thread ids
 *
 * The kernel's thread id, cached per thread: gettid() is a system call and
 * the common code asks on every RLock operation. fork() gives the child's
 * only thread a new id while its thread-local copy still holds the parent's,
 * so an atfork handler clears the cache in the child.
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
#if defined(__linux__)
    return (int64_t)syscall(SYS_gettid);
#elif defined(__APPLE__)
    uint64_t id = 0;
    (void)pthread_threadid_np(NULL, &id);
    return (int64_t)id;
#elif defined(__FreeBSD__)
    return (int64_t)pthread_getthreadid_np();
#else
    /* No system-wide thread id: the pid in the high half and a per-process
     * sequence number in the low half are unique all the same. */
    static int64_t seq;
    int64_t n = __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED);
    return ((int64_t)getpid() << 32) | (n & 0xffffffff);
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

#if defined(HAVE_CLOCKWAIT)
#define WAIT_CLOCK CLOCK_MONOTONIC
#else
#define WAIT_CLOCK CLOCK_REALTIME
#endif

/* ---------------------------------------------------------------------------
 * Mutex
 */

typedef struct pmutex {
    pthread_mutex_t m;
} pmutex;

_Static_assert(sizeof(pmutex) <= MPROC__OS_MUTEX_SIZE,
               "MPROC__OS_MUTEX_SIZE too small for pthread_mutex_t");

static int mutex_init_raw(pthread_mutex_t *m)
{
    pthread_mutexattr_t a;
    int rc = pthread_mutexattr_init(&a);
    if (rc != 0)
        return mproc__os_error(rc);
    rc = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
#if defined(HAVE_ROBUST)
    if (rc == 0)
        rc = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
#else
    /* Without robust mutexes an error-checking one at least refuses an
     * unlock by a thread that does not own it. */
    if (rc == 0)
        rc = pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
#endif
    if (rc == 0)
        rc = pthread_mutex_init(m, &a);
    (void)pthread_mutexattr_destroy(&a);
    return rc == 0 ? 0 : mproc__os_error(rc);
}

#if defined(SEM_PORTABLE) || !defined(HAVE_FUTEX)
/* A process-shared condition variable on the monotonic clock (macOS has no
 * pthread_condattr_setclock; its timed waits poll instead). */
static int cond_init_raw(pthread_cond_t *c)
{
    pthread_condattr_t a;
    int rc = pthread_condattr_init(&a);
    if (rc != 0)
        return mproc__os_error(rc);
    rc = pthread_condattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
#if !defined(__APPLE__)
    if (rc == 0)
        rc = pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
#endif
    if (rc == 0)
        rc = pthread_cond_init(c, &a);
    (void)pthread_condattr_destroy(&a);
    return rc == 0 ? 0 : mproc__os_error(rc);
}
#endif

/* The result of a pthread lock call as a code of ours. */
static int mutex_result(pthread_mutex_t *m, int rc, int timeout_ms)
{
    switch (rc) {
    case 0:
        return 0;
#if defined(HAVE_ROBUST)
    case EOWNERDEAD:
        /* We hold it; whatever the dead owner left half-done is the
         * caller's to judge (MPROC_EOWNERDEAD says so). Making it
         * consistent keeps it usable for everyone after us. */
        (void)pthread_mutex_consistent(m);
        return MPROC_EOWNERDEAD;
#endif
    case EBUSY:
        return MPROC_EBUSY;
    case ETIMEDOUT:
        return MPROC_ETIMEDOUT;
    case EDEADLK:
        /* An error-checking mutex relocked by its owner: behave as the
         * robust NORMAL mutex does (and Python's Lock), i.e. as a wait that
         * cannot succeed. */
        if (timeout_ms == 0)
            return MPROC_EBUSY;
        if (timeout_ms > 0) {
            mproc__os_sleep_ms(timeout_ms);
            return MPROC_ETIMEDOUT;
        }
        for (;;)
            mproc__os_sleep_ms(INT_MAX);
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
        int64_t end = mproc__os_now_ms() + timeout_ms + 1;
        while ((rc = pthread_mutex_trylock(m)) == EBUSY &&
               mproc__os_now_ms() < end)
            mproc__os_sleep_ms(1);
        if (rc == EBUSY)
            rc = ETIMEDOUT;
#else
        struct timespec ts = abstime(WAIT_CLOCK, timeout_ms);
#if defined(HAVE_CLOCKWAIT)
        rc = pthread_mutex_clocklock(m, CLOCK_MONOTONIC, &ts);
#else
        rc = pthread_mutex_timedlock(m, &ts);
#endif
#endif
    }
    if (rc == 0)
        return 0;
    return mutex_result(m, rc, timeout_ms);
}

int mproc__os_mutex_lock(void *mem, mproc__handle h, int timeout_ms)
{
    pthread_mutex_t *m = &((pmutex *)mem)->m;
    (void)h;
    if (timeout_ms < 0) {
        int rc = pthread_mutex_lock(m);
        if (rc == 0)
            return 0;
        /* rc is the blocking lock's error: EOWNERDEAD and friends. */
        return mutex_lock_slow(m, rc, MPROC_FOREVER);
    }
    return mutex_lock_slow(m, 0, timeout_ms);
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
    rc = pthread_mutex_unlock(&((pmutex *)mem)->m);
    if (rc == 0)
        return 0;
    /* Robust and error-checking mutexes say EPERM for a thread that does
     * not hold them. */
    return rc == EPERM ? MPROC_ENOTOWNER : mproc__os_error(rc);
}

void mproc__os_mutex_destroy(void *mem, mproc__handle h)
{
    /* Other processes may still use the mutex; the memory it lives in goes
     * away with the last mapping of the segment. pthread_mutex_destroy on a
     * mutex others use would be undefined, so there is nothing to do. */
    (void)mem;
    (void)h;
}

/* ---------------------------------------------------------------------------
 * Semaphore
 */

#if defined(SEM_PORTABLE)

typedef struct psem {
    pthread_mutex_t m;
    pthread_cond_t c;
    unsigned value;
    unsigned max; /* 0: unbounded */
} psem;

_Static_assert(sizeof(psem) <= MPROC__OS_SEM_SIZE,
               "MPROC__OS_SEM_SIZE too small for a mutex and a condition");

/* The semaphore's own mutex: EOWNERDEAD (a process died inside one of the
 * short sections below) leaves the count valid, so it counts as taken. */
static int psem_lock(psem *s)
{
    int rc = pthread_mutex_lock(&s->m);
#if defined(HAVE_ROBUST)
    if (rc == EOWNERDEAD) {
        (void)pthread_mutex_consistent(&s->m);
        rc = 0;
    }
#endif
    return rc == 0 ? 0 : mproc__os_error(rc);
}

int mproc__os_sem_init(void *mem, mproc__handle *h, unsigned initial,
                       unsigned max)
{
    psem *s = (psem *)mem;
    int rc;
    if (mem == NULL || h == NULL)
        return MPROC_EINVAL;
    if ((max > 0 && initial > max) || initial > INT32_MAX || max > INT32_MAX)
        return MPROC_EINVAL;
    *h = MPROC__BADHANDLE;
    rc = mutex_init_raw(&s->m);
    if (rc != 0)
        return rc;
    rc = cond_init_raw(&s->c);
    if (rc != 0)
        return rc;
    s->value = initial;
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
    psem *s = (psem *)mem;
#if defined(__APPLE__)
    struct timespec ts = abstime(CLOCK_REALTIME, timeout_ms);
#else
    struct timespec ts = abstime(CLOCK_MONOTONIC, timeout_ms);
#endif
    int rc = psem_lock(s);
    (void)h;
    if (rc != 0)
        return rc;
    while (s->value == 0) {
        if (timeout_ms == 0) {
            rc = MPROC_EBUSY;
            break;
        }
        rc = timeout_ms < 0 ? pthread_cond_wait(&s->c, &s->m)
                            : pthread_cond_timedwait(&s->c, &s->m, &ts);
#if defined(HAVE_ROBUST)
        if (rc == EOWNERDEAD) {
            (void)pthread_mutex_consistent(&s->m);
            rc = 0;
        }
#endif
        if (rc == ETIMEDOUT) {
            rc = s->value > 0 ? 0 : MPROC_ETIMEDOUT;
            if (rc != 0)
                break;
        } else if (rc != 0) {
            rc = mproc__os_error(rc);
            break;
        }
    }
    if (rc == 0)
        s->value--;
    (void)pthread_mutex_unlock(&s->m);
    return rc;
}

int mproc__os_sem_post(void *mem, mproc__handle h, unsigned n)
{
    psem *s = (psem *)mem;
    unsigned limit;
    int rc;
    (void)h;
    if (n == 0)
        return MPROC_EINVAL;
    rc = psem_lock(s);
    if (rc != 0)
        return rc;
    limit = s->max > 0 ? s->max : (unsigned)INT32_MAX;
    if (n > limit || s->value > limit - n) {
        rc = MPROC_ERANGE;
    } else {
        s->value += n;
        rc =
            n == 1 ? pthread_cond_signal(&s->c) : pthread_cond_broadcast(&s->c);
        rc = rc == 0 ? 0 : mproc__os_error(rc);
    }
    (void)pthread_mutex_unlock(&s->m);
    return rc;
}

int64_t mproc__os_sem_value(void *mem, mproc__handle h)
{
    psem *s = (psem *)mem;
    int64_t v;
    int rc = psem_lock(s);
    (void)h;
    if (rc != 0)
        return rc;
    v = s->value;
    (void)pthread_mutex_unlock(&s->m);
    return v;
}

void mproc__os_sem_destroy(void *mem, mproc__handle h)
{
    (void)mem;
    (void)h;
}

#else /* !SEM_PORTABLE: an unnamed process-shared sem_t */

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
#if defined(POLL_TIMED) && defined(__APPLE__)
        int64_t end = mproc__os_now_ms() + timeout_ms + 1;
        for (;;) {
            if (sem_trywait(s) == 0)
                return 0;
            if (errno != EAGAIN && errno != EINTR)
                return mproc__os_error(errno);
            if (mproc__os_now_ms() >= end)
                return MPROC_ETIMEDOUT;
            mproc__os_sleep_ms(1);
        }
#else
        /* One absolute deadline: a signal that interrupts the wait does
         * not restart the clock. */
        struct timespec ts = abstime(WAIT_CLOCK, timeout_ms);
        for (;;) {
#if defined(HAVE_CLOCKWAIT)
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
#endif
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
#if defined(HAVE_ROBUST)
    if (rc == EOWNERDEAD)
        (void)pthread_mutex_consistent(&s->guard);
#endif
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

#endif /* SEM_PORTABLE */

/* ---------------------------------------------------------------------------
 * Condition variable
 *
 * glibc's process-shared pthread_cond_t is not safe against a waiter that
 * is killed: the waiter holds a reference on its wait group, and a later
 * signal or broadcast that closes the group waits for that reference to
 * drop, forever (seen on glibc 2.36: the second broadcast after a waiter was
 * SIGKILLed hangs). So on Linux the condition is a futex word of our own,
 * whose waiters the kernel forgets when they die, plus two counts kept
 * under the caller's mutex (the contract has signal and broadcast called
 * with it held):
 *
 * - seq, the futex word: bumped by every signal, so a waiter that released
 *   the mutex but has not slept yet does not miss the wake-up, and so a
 *   waiter can tell whether a signal came after it started waiting (only
 *   then may it take a wake-up: a later waiter cannot steal one);
 * - waiters: waiting and not yet granted a wake-up; signals: wake-ups
 *   granted and not yet taken. notify(n) grants min(n, waiters).
 *
 * A waiter that times out takes a granted wake-up if one is left for it,
 * else it gives back its place in `waiters`; waiters are interchangeable,
 * so the counts stay exact without knowing who was meant. A waiter killed
 * while waiting stays counted and may absorb one grant: at worst a later
 * waiter wakes spuriously, which the contract allows; nobody blocks.
 */

#if defined(HAVE_FUTEX)

typedef struct pcond {
    uint32_t seq;
    uint32_t waiters;
    uint32_t signals;
} pcond;

_Static_assert(sizeof(pcond) <= MPROC__OS_COND_SIZE, "pcond too large");

/* FUTEX_WAIT without FUTEX_PRIVATE_FLAG: the word is in shared memory and
 * the waiters are in several processes. */
static int futex_wait(uint32_t *word, uint32_t expected, int timeout_ms)
{
    struct timespec ts;
    if (timeout_ms >= 0) {
        ts.tv_sec = (time_t)(timeout_ms / 1000);
        ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000L;
    }
    if (syscall(SYS_futex, word, FUTEX_WAIT, expected,
                timeout_ms >= 0 ? &ts : NULL, NULL, 0) == 0)
        return 0;
    return errno;
}

static void futex_wake(uint32_t *word, int n)
{
    (void)syscall(SYS_futex, word, FUTEX_WAKE, n, NULL, NULL, 0);
}

int mproc__os_cond_init(void *mem, mproc__handle *h)
{
    if (mem == NULL || h == NULL)
        return MPROC_EINVAL;
    for (int i = 0; i < MPROC__OS_COND_HANDLES; i++)
        h[i] = MPROC__BADHANDLE;
    memset(mem, 0, sizeof(pcond));
    return 0;
}

int mproc__os_cond_open(void *mem, const mproc__handle *h)
{
    (void)h;
    return mem == NULL ? MPROC_EINVAL : 0;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int mproc__os_cond_wait(void *mem, const mproc__handle *h, void *mutex_mem,
                        mproc__handle mutex_h, int timeout_ms)
{
    pcond *c = (pcond *)mem;
    int64_t deadline = timeout_ms > 0 ? mono_ms() + timeout_ms + 1 : -1;
    uint32_t start;
    bool owner_died = false;
    (void)h;
    if (timeout_ms == 0)
        return MPROC_ETIMEDOUT;
    start = __atomic_load_n(&c->seq, __ATOMIC_RELAXED);
    c->waiters++;
    for (;;) {
        uint32_t seen = __atomic_load_n(&c->seq, __ATOMIC_RELAXED);
        int left = MPROC_FOREVER;
        int rc;
        bool timed_out = false;
        if (deadline >= 0) {
            int64_t d = deadline - mono_ms();
            left = d <= 0 ? 0 : (d > INT_MAX ? INT_MAX : (int)d);
        }
        rc = mproc__os_mutex_unlock(mutex_mem, mutex_h);
        if (rc < 0)
            return rc; /* not held: nothing was waited for */
        if (left != 0)
            rc = futex_wait(&c->seq, seen, left);
        if (left == 0 || rc == ETIMEDOUT)
            timed_out = true;
        rc = mproc__os_mutex_lock(mutex_mem, mutex_h, MPROC_FOREVER);
        if (rc == MPROC_EOWNERDEAD)
            owner_died = true;
        else if (rc < 0)
            return rc;
        /* A wake-up granted after we started is ours to take. */
        if (c->signals > 0 &&
            __atomic_load_n(&c->seq, __ATOMIC_RELAXED) != start) {
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
    __atomic_add_fetch(&c->seq, 1, __ATOMIC_RELEASE);
    futex_wake(&c->seq, k > INT_MAX ? INT_MAX : (int)k);
    return 0;
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

#else /* !HAVE_FUTEX */

typedef struct pcond {
    pthread_cond_t c;
} pcond;

_Static_assert(sizeof(pcond) <= MPROC__OS_COND_SIZE,
               "MPROC__OS_COND_SIZE too small for pthread_cond_t");

int mproc__os_cond_init(void *mem, mproc__handle *h)
{
    if (mem == NULL || h == NULL)
        return MPROC_EINVAL;
    for (int i = 0; i < MPROC__OS_COND_HANDLES; i++)
        h[i] = MPROC__BADHANDLE;
    return cond_init_raw(&((pcond *)mem)->c);
}

int mproc__os_cond_open(void *mem, const mproc__handle *h)
{
    (void)h;
    return mem == NULL ? MPROC_EINVAL : 0;
}

int mproc__os_cond_wait(void *mem, const mproc__handle *h, void *mutex_mem,
                        mproc__handle mutex_h, int timeout_ms)
{
    pthread_cond_t *c = &((pcond *)mem)->c;
    pthread_mutex_t *m = &((pmutex *)mutex_mem)->m;
    int rc;
    (void)h;
    (void)mutex_h;
    if (timeout_ms == 0)
        return MPROC_ETIMEDOUT;
    if (timeout_ms < 0) {
        rc = pthread_cond_wait(c, m);
    } else {
#if defined(__APPLE__)
        struct timespec ts = abstime(CLOCK_REALTIME, timeout_ms);
#else
        struct timespec ts = abstime(CLOCK_MONOTONIC, timeout_ms);
#endif
        rc = pthread_cond_timedwait(c, m, &ts);
    }
    if (rc == 0)
        return 0;
    return mutex_result(m, rc, timeout_ms);
}

int mproc__os_cond_signal(void *mem, const mproc__handle *h, unsigned n)
{
    pthread_cond_t *c = &((pcond *)mem)->c;
    (void)h;
    for (unsigned i = 0; i < n; i++) {
        int rc = pthread_cond_signal(c);
        if (rc != 0)
            return mproc__os_error(rc);
    }
    return 0;
}

int mproc__os_cond_broadcast(void *mem, const mproc__handle *h)
{
    int rc;
    (void)h;
    rc = pthread_cond_broadcast(&((pcond *)mem)->c);
    return rc == 0 ? 0 : mproc__os_error(rc);
}

void mproc__os_cond_destroy(void *mem, const mproc__handle *h)
{
    /* A process-shared condition variable others may still wait on: see
     * mproc__os_mutex_destroy. */
    (void)mem;
    (void)h;
}

#endif /* HAVE_FUTEX */
