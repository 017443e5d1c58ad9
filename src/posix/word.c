/*
 * Wait words, process identity and liveness on POSIX (backend.h, "Wait
 * words" and "Process identity and liveness").
 *
 * Wait words: the system's own compare-and-wait on an address, in its
 * process-shared form, so that waiters in different processes that map the
 * same memory meet on the same kernel queue (the kernels key shared waits
 * by the backing object, not the address): Linux futex(2) without
 * FUTEX_PRIVATE_FLAG, FreeBSD _umtx_op(UMTX_OP_WAIT_UINT / UMTX_OP_WAKE)
 * (not the _PRIVATE ops), macOS os_sync_wait_on_address with
 * OS_SYNC_WAIT_ON_ADDRESS_SHARED (14.4 and later, checked at run time)
 * else __ulock_wait(UL_COMPARE_AND_WAIT_SHARED), OpenBSD futex(2).
 * Without any (src/posix/platform.h) a wait polls the word with naps that
 * grow from 20 us to 1 ms, and returns MPROC_ETIMEDOUT once its timeout
 * has passed: correct, slower to wake. None is a pthread cancellation
 * point: callers may hold a lock while they wait (the queue does), and a
 * thread canceled there would leave it held by a live process.
 *
 * Identity: a pid plus the start time the OS keeps for it (platform.h
 * chooses the mechanism). Readers of /proc and sysctl run with cancellation
 * disabled for the same reason as the waits.
 *
 * Map: cancellation; wait words (native waits, the polled fallback);
 * process identity (this process, another process, liveness).
 */
#include "../common/backend.h"
#include "platform.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#if defined(MPROC_HAVE_FUTEX)
#include <linux/futex.h>
#include <sys/syscall.h>
#endif
#if defined(MPROC_HAVE_UMTX)
#include <sys/umtx.h>
#endif
#if defined(MPROC_HAVE_OPENBSD_FUTEX)
#include <sys/futex.h>
#include <sys/time.h>
#endif
#if defined(MPROC_HAVE_OS_SYNC_WAIT)
#include <os/os_sync_wait_on_address.h>
#endif
#if defined(MPROC_HAVE_ULOCK)
/* libSystem's compare-and-wait since macOS 10.12 (the one libc++ and
 * libdispatch use), declared in no public header: its xnu
 * bsd/sys/ulock.h. UL_COMPARE_AND_WAIT_SHARED keys the wait by the
 * memory object, so processes that map the word meet. */
extern int __ulock_wait(uint32_t operation, void *addr, uint64_t value,
                        uint32_t timeout_us);
extern int __ulock_wake(uint32_t operation, void *addr, uint64_t wake_value);
#define MPROC_UL_COMPARE_AND_WAIT_SHARED 3u
#define MPROC_ULF_WAKE_ALL 0x00000100u
#endif
#if defined(MPROC_PROC_DARWIN)
#include <libproc.h>
#include <sys/proc.h>
#include <sys/proc_info.h>
#endif
#if defined(MPROC_PROC_FREEBSD)
#include <sys/proc.h>
#include <sys/sysctl.h>
#include <sys/user.h>
#endif
#if defined(MPROC_PROC_OPENBSD)
#include <sys/proc.h>
#include <sys/sysctl.h>
#endif

/* ---------------------------------------------------------------------------
 * Cancellation
 *
 * pthread_setcancelstate is cheap (a flag of the thread) and itself no
 * cancellation point; a cancel that arrives meanwhile stays pending for the
 * caller's next cancellation point.
 */

static int nocancel_begin(void)
{
    int old = PTHREAD_CANCEL_ENABLE;
    (void)pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
    return old;
}

static void nocancel_end(int old)
{
    (void)pthread_setcancelstate(old, &old);
}

/* ---------------------------------------------------------------------------
 * Wait words
 */

int mproc__os_word_init(void *word, mproc__handle *h)
{
    if (word == NULL || h == NULL)
        return MPROC_EINVAL;
    *h = MPROC__BADHANDLE;
    return 0;
}

int mproc__os_word_open(void *word, mproc__handle h)
{
    (void)h;
    return word == NULL ? MPROC_EINVAL : 0;
}

static int64_t mono_us(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Naps until the word changes or the timeout passes: the fallback, and
 * the path of a macOS older than both native waits. nanosleep is a
 * cancellation point, hence the disabled state. */
static int poll_wait(_Atomic uint32_t *w, uint32_t expected, int timeout_ms)
{
    int64_t deadline =
        timeout_ms > 0 ? mono_us() + (int64_t)timeout_ms * 1000 : INT64_MAX;
    long nap = 20;
    int rc = 0;
    int old = nocancel_begin();
    for (;;) {
        struct timespec ts;
        int64_t left;
        if (atomic_load(w) != expected)
            break;
        left = deadline - mono_us();
        if (left <= 0) {
            rc = MPROC_ETIMEDOUT;
            break;
        }
        if (left < nap)
            nap = (long)left;
        ts.tv_sec = 0;
        ts.tv_nsec = nap * 1000L;
        /* A signal ends the nap early: an early return, which callers
         * allow, so EINTR needs nothing special. */
        (void)nanosleep(&ts, NULL);
        if (nap < 1000)
            nap *= 2;
    }
    nocancel_end(old);
    return rc;
}

#if defined(MPROC_HAVE_FUTEX) || defined(MPROC_HAVE_UMTX) ||                   \
    defined(MPROC_HAVE_OPENBSD_FUTEX)
static struct timespec rel_timespec(int timeout_ms)
{
    struct timespec ts;
    ts.tv_sec = (time_t)(timeout_ms / 1000);
    ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000L;
    return ts;
}
#endif

/* The result of a native wait that returned -1 with errno `err`: a
 * timeout, an early return for the caller to re-check (the value changed,
 * a signal), or an error. */
#if defined(MPROC_HAVE_FUTEX) || defined(MPROC_HAVE_UMTX) ||                   \
    defined(MPROC_HAVE_OPENBSD_FUTEX) || defined(MPROC_HAVE_OS_SYNC_WAIT) ||   \
    defined(MPROC_HAVE_ULOCK)
static int wait_result(int err)
{
    if (err == ETIMEDOUT)
        return MPROC_ETIMEDOUT;
    if (err == EAGAIN || err == EINTR)
        return 0;
    return mproc__os_error(err);
}
#endif

/* One native wait; MPROC_ENOSYS when this system has none (the caller
 * polls). timeout_ms > 0 or MPROC_FOREVER. */
static int native_wait(void *word, uint32_t expected, int timeout_ms)
{
#if defined(MPROC_HAVE_FUTEX)
    /* syscall() is not a cancellation point, unlike the libc wrappers of
     * blocking calls. */
    struct timespec ts = rel_timespec(timeout_ms);
    long r = syscall(SYS_futex, word, FUTEX_WAIT, expected,
                     timeout_ms > 0 ? &ts : NULL, NULL, 0);
    return r == 0 ? 0 : wait_result(errno);
#elif defined(MPROC_HAVE_UMTX)
    /* UMTX_OP_WAIT_UINT compares an unsigned int and is process-shared
     * (the _PRIVATE variant is not); the timeout is a struct _umtx_time
     * whose size travels in uaddr (umtx(2)), relative on CLOCK_MONOTONIC. */
    struct _umtx_time ut;
    int r;
    memset(&ut, 0, sizeof ut);
    ut._timeout = rel_timespec(timeout_ms);
    ut._flags = 0;
    ut._clockid = CLOCK_MONOTONIC;
    r = _umtx_op(word, UMTX_OP_WAIT_UINT, (u_long)expected,
                 timeout_ms > 0 ? (void *)(uintptr_t)sizeof ut : NULL,
                 timeout_ms > 0 ? &ut : NULL);
    return r == 0 ? 0 : wait_result(errno);
#elif defined(MPROC_HAVE_OPENBSD_FUTEX)
    /* OpenBSD futexes are shared unless FUTEX_PRIVATE_FLAG; the timeout
     * is relative. */
    struct timespec ts = rel_timespec(timeout_ms);
    int r = futex((volatile uint32_t *)word, FUTEX_WAIT, (int)expected,
                  timeout_ms > 0 ? &ts : NULL, NULL);
    return r == 0 ? 0 : wait_result(errno);
#else
#if defined(MPROC_HAVE_OS_SYNC_WAIT)
    if (__builtin_available(macOS 14.4, *)) {
        int r;
        if (timeout_ms > 0)
            /* The timeout is relative, in nanoseconds of the clock. */
            r = os_sync_wait_on_address_with_timeout(
                word, (uint64_t)expected, sizeof(uint32_t),
                OS_SYNC_WAIT_ON_ADDRESS_SHARED, OS_CLOCK_MACH_ABSOLUTE_TIME,
                (uint64_t)timeout_ms * 1000000u);
        else
            r = os_sync_wait_on_address(word, (uint64_t)expected,
                                        sizeof(uint32_t),
                                        OS_SYNC_WAIT_ON_ADDRESS_SHARED);
        return r >= 0 ? 0 : wait_result(errno);
    }
#endif
#if defined(MPROC_HAVE_ULOCK)
    {
        /* Microseconds, 0 meaning forever: a longer timeout is cut to the
         * largest one, an early return the caller re-checks. */
        uint32_t us = 0;
        int r;
        if (timeout_ms > 0)
            us = timeout_ms > (int)(UINT32_MAX / 1000u)
                     ? UINT32_MAX
                     : (uint32_t)timeout_ms * 1000u;
        r = __ulock_wait(MPROC_UL_COMPARE_AND_WAIT_SHARED, word,
                         (uint64_t)expected, us);
        return r >= 0 ? 0 : wait_result(errno);
    }
#endif
    (void)word;
    (void)expected;
    (void)timeout_ms;
    return MPROC_ENOSYS;
#endif
}

/* Wakes up to n sleepers (n > 0); 0, or MPROC_ENOSYS when nobody sleeps in
 * the kernel (the polled fallback). */
static int native_wake(void *word, uint32_t n)
{
#if defined(MPROC_HAVE_FUTEX)
    int cnt = n > (uint32_t)INT_MAX ? INT_MAX : (int)n;
    if (syscall(SYS_futex, word, FUTEX_WAKE, cnt, NULL, NULL, 0) < 0)
        return mproc__os_error(errno);
    return 0;
#elif defined(MPROC_HAVE_UMTX)
    u_long cnt = n > (uint32_t)INT_MAX ? (u_long)INT_MAX : (u_long)n;
    if (_umtx_op(word, UMTX_OP_WAKE, cnt, NULL, NULL) != 0)
        return mproc__os_error(errno);
    return 0;
#elif defined(MPROC_HAVE_OPENBSD_FUTEX)
    int cnt = n > (uint32_t)INT_MAX ? INT_MAX : (int)n;
    if (futex((volatile uint32_t *)word, FUTEX_WAKE, cnt, NULL, NULL) < 0)
        return mproc__os_error(errno);
    return 0;
#else
    /* macOS wakes one or all: "all" for n > 1 (a waiter woken for nothing
     * re-checks and sleeps again). ENOENT: nobody was waiting. */
#if defined(MPROC_HAVE_OS_SYNC_WAIT)
    if (__builtin_available(macOS 14.4, *)) {
        int r =
            n > 1 ? os_sync_wake_by_address_all(word, sizeof(uint32_t),
                                                OS_SYNC_WAKE_BY_ADDRESS_SHARED)
                  : os_sync_wake_by_address_any(word, sizeof(uint32_t),
                                                OS_SYNC_WAKE_BY_ADDRESS_SHARED);
        if (r != 0 && errno != ENOENT)
            return mproc__os_error(errno);
        return 0;
    }
#endif
#if defined(MPROC_HAVE_ULOCK)
    {
        uint32_t op = MPROC_UL_COMPARE_AND_WAIT_SHARED;
        int r;
        if (n > 1)
            op |= MPROC_ULF_WAKE_ALL;
        do
            r = __ulock_wake(op, word, 0);
        while (r < 0 && errno == EINTR);
        if (r < 0 && errno != ENOENT)
            return mproc__os_error(errno);
        return 0;
    }
#endif
    (void)word;
    (void)n;
    return MPROC_ENOSYS;
#endif
}

int mproc__os_word_wait(void *word, uint32_t expected, mproc__handle h,
                        int timeout_ms)
{
    _Atomic uint32_t *w = word;
    int rc;
    (void)h;
    if (word == NULL)
        return MPROC_EINVAL;
    if (atomic_load(w) != expected)
        return 0;
    if (timeout_ms == 0)
        return MPROC_ETIMEDOUT;
    rc = native_wait(word, expected, timeout_ms);
    if (rc == MPROC_ENOSYS)
        rc = poll_wait(w, expected, timeout_ms);
    return rc;
}

int mproc__os_word_wake(void *word, mproc__handle h, uint32_t n)
{
    int rc;
    (void)h;
    if (word == NULL)
        return MPROC_EINVAL;
    if (n == 0)
        return 0;
    rc = native_wake(word, n);
    /* Pollers see the new value by themselves. */
    return rc == MPROC_ENOSYS ? 0 : rc;
}

void mproc__os_word_destroy(void *word, mproc__handle h)
{
    (void)word;
    (void)h;
}

void mproc__os_yield(void)
{
    (void)sched_yield();
}

/* ---------------------------------------------------------------------------
 * Process identity: what the OS says about one pid
 *
 * proc_read fills *start and returns 0 (running), MPROC_ENOENT (no such
 * process, or it has ended and is a zombie) or MPROC_EPERM (it exists and
 * the OS will not say more). Called with cancellation disabled.
 */

#if defined(MPROC_PROC_LINUX)

/* /proc/PID/stat is "pid (comm) S ppid ... num_threads(20) itrealvalue
 * starttime(22) ...". comm may hold spaces and parentheses, so the fields
 * are counted from the last ')'. */
static int proc_read(int64_t pid, uint64_t *start)
{
    char path[64];
    char buf[1024];
    const char *p;
    char state;
    long long threads = 0;
    unsigned long long st = 0;
    ssize_t n;
    int fd, field;
    snprintf(path, sizeof path, "/proc/%lld/stat", (long long)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ESRCH) {
            /* Invisible (hidepid) or gone: kill() tells them apart. */
            if (kill((pid_t)pid, 0) != 0 && errno == EPERM)
                return MPROC_EPERM;
            return MPROC_ENOENT;
        }
        return MPROC_EPERM;
    }
    n = read(fd, buf, sizeof buf - 1);
    (void)close(fd);
    if (n <= 0)
        return n == 0 ? MPROC_ENOENT : MPROC_EPERM;
    buf[n] = '\0';
    p = strrchr(buf, ')');
    if (p == NULL || p[1] != ' ')
        return MPROC_EPERM;
    p += 2;
    state = *p;
    /* Field 3 is the state; walk to 20 (threads) and 22 (start). */
    for (field = 3; field < 22 && *p != '\0'; field++) {
        p = strchr(p, ' ');
        if (p == NULL)
            return MPROC_EPERM;
        p++;
        if (field + 1 == 20)
            threads = strtoll(p, NULL, 10);
    }
    if (field != 22)
        return MPROC_EPERM;
    st = strtoull(p, NULL, 10);
    *start = (uint64_t)st;
    /* A zombie thread group leader whose other threads still run is a
     * running process (its main thread called pthread_exit); the leader
     * stays counted until the group ends, so a true zombie counts 1. */
    if (state == 'X' || (state == 'Z' && threads <= 1))
        return MPROC_ENOENT;
    /* A start time of 0 (a process started in the boot's first tick) would
     * read as "unknown": shift it. */
    if (*start == 0)
        *start = 1;
    return 0;
}

#elif defined(MPROC_PROC_DARWIN)

static int proc_read(int64_t pid, uint64_t *start)
{
    struct proc_bsdinfo bi;
    int n;
    memset(&bi, 0, sizeof bi);
    n = proc_pidinfo((int)pid, PROC_PIDTBSDINFO, 0, &bi, PROC_PIDTBSDINFO_SIZE);
    if (n != PROC_PIDTBSDINFO_SIZE) {
        if (errno == ESRCH || (n == 0 && errno == 0))
            return MPROC_ENOENT;
        return kill((pid_t)pid, 0) != 0 && errno == ESRCH ? MPROC_ENOENT
                                                          : MPROC_EPERM;
    }
    *start = (uint64_t)bi.pbi_start_tvsec * 1000000u +
             (uint64_t)bi.pbi_start_tvusec + 1u;
    return bi.pbi_status == SZOMB ? MPROC_ENOENT : 0;
}

#elif defined(MPROC_PROC_FREEBSD)

static int proc_read(int64_t pid, uint64_t *start)
{
    struct kinfo_proc kp;
    size_t len = sizeof kp;
    int mib[4] = {CTL_KERN, KERN_PROC, KERN_PROC_PID, (int)pid};
    memset(&kp, 0, sizeof kp);
    if (sysctl(mib, 4, &kp, &len, NULL, 0) != 0)
        return errno == ESRCH ? MPROC_ENOENT : MPROC_EPERM;
    if (len < sizeof kp || kp.ki_structsize != (int)sizeof kp)
        return len == 0 ? MPROC_ENOENT : MPROC_EPERM;
    *start = (uint64_t)kp.ki_start.tv_sec * 1000000u +
             (uint64_t)kp.ki_start.tv_usec + 1u;
    return kp.ki_stat == SZOMB ? MPROC_ENOENT : 0;
}

#elif defined(MPROC_PROC_OPENBSD)

static int proc_read(int64_t pid, uint64_t *start)
{
    struct kinfo_proc kp;
    size_t len = sizeof kp;
    int mib[6] = {CTL_KERN, KERN_PROC, KERN_PROC_PID, (int)pid, sizeof kp, 1};
    memset(&kp, 0, sizeof kp);
    if (sysctl(mib, 6, &kp, &len, NULL, 0) != 0)
        return errno == ESRCH ? MPROC_ENOENT : MPROC_EPERM;
    if (len == 0)
        return MPROC_ENOENT;
    *start =
        (uint64_t)kp.p_ustart_sec * 1000000u + (uint64_t)kp.p_ustart_usec + 1u;
    return kp.p_stat == SZOMB || kp.p_stat == SDEAD ? MPROC_ENOENT : 0;
}

#else

/* No documented start time: the pid alone (docs/sync.md). */
static int proc_read(int64_t pid, uint64_t *start)
{
    *start = 0;
    if (kill((pid_t)pid, 0) == 0 || errno == EPERM)
        return 0;
    return MPROC_ENOENT;
}

#endif

/* ---------------------------------------------------------------------------
 * This process
 *
 * Cached: the fallback mutex asks on every lock. The start is stored before
 * the pid, so a reader that sees the pid sees the start. A fork child gets a
 * new identity: an atfork handler clears the cache, and the next call reads
 * it again.
 */

static _Atomic int64_t self_pid;
static _Atomic uint64_t self_start;
static pthread_once_t self_once = PTHREAD_ONCE_INIT;

static void self_atfork_child(void)
{
    atomic_store(&self_pid, 0);
}

static void self_register(void)
{
    (void)pthread_atfork(NULL, NULL, self_atfork_child);
}

mproc__proc_id mproc__os_proc_self(void)
{
    mproc__proc_id id;
    id.pid = atomic_load_explicit(&self_pid, memory_order_acquire);
    if (id.pid != 0) {
        id.start = atomic_load_explicit(&self_start, memory_order_relaxed);
        return id;
    }
    (void)pthread_once(&self_once, self_register);
    id.pid = (int64_t)getpid();
    {
        int old = nocancel_begin();
        if (proc_read(id.pid, &id.start) != 0)
            id.start = 0;
        nocancel_end(old);
    }
    atomic_store_explicit(&self_start, id.start, memory_order_relaxed);
    atomic_store_explicit(&self_pid, id.pid, memory_order_release);
    return id;
}

/* ---------------------------------------------------------------------------
 * Another process
 */

int mproc__os_proc_lookup(int64_t pid, mproc__proc_id *id)
{
    int rc, old;
    if (id == NULL)
        return MPROC_EINVAL;
    id->pid = pid;
    id->start = 0;
    if (pid <= 0 || pid > INT_MAX)
        return MPROC_ENOENT;
    old = nocancel_begin();
    rc = proc_read(pid, &id->start);
    nocancel_end(old);
    return rc;
}

int mproc__os_proc_alive(const mproc__proc_id *id)
{
    mproc__proc_id now;
    int rc;
    if (id == NULL || id->pid <= 0 || id->pid > INT_MAX)
        return 0;
    rc = mproc__os_proc_lookup(id->pid, &now);
    if (rc == MPROC_ENOENT)
        return 0;
    if (rc != 0)
        return 1; /* it exists and we may not look: never a false "dead" */
    /* A later process with the same pid is not the one we knew. */
    if (id->start != 0 && now.start != 0 && now.start != id->start)
        return 0;
    return 1;
}
