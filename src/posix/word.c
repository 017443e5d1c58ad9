/*
 * Wait words on POSIX (backend.h, "Wait words").
 *
 * Linux: futex(2) without FUTEX_PRIVATE_FLAG, so that waiters in different
 * processes that map the same memory meet on the same kernel queue (the
 * kernel keys shared futexes by the backing page, not the address).
 *
 * Elsewhere: no portable cross-process futex exists (macOS has
 * os_sync_wait_on_address with OS_SYNC_WAIT_ON_ADDRESS_SHARED from 14.4,
 * FreeBSD has _umtx_op UMTX_OP_WAIT_UINT); until those are wired in, a wait
 * sleeps a short, growing interval and returns early, which the contract
 * allows (callers re-check and loop). Correct, slower to wake.
 */
#include "../common/backend.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#endif

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

int mproc__os_word_wait(void *word, uint32_t expected, mproc__handle h,
                        int timeout_ms)
{
    _Atomic uint32_t *w = word;
    (void)h;
    if (word == NULL)
        return MPROC_EINVAL;
    if (atomic_load(w) != expected)
        return 0;
    if (timeout_ms == 0)
        return MPROC_ETIMEDOUT;
#if defined(__linux__)
    {
        struct timespec ts;
        struct timespec *tsp = NULL;
        long r;
        if (timeout_ms > 0) {
            ts.tv_sec = timeout_ms / 1000;
            ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000L;
            tsp = &ts;
        }
        r = syscall(SYS_futex, word, FUTEX_WAIT, expected, tsp, NULL, 0);
        if (r == 0)
            return 0;
        if (errno == ETIMEDOUT)
            return MPROC_ETIMEDOUT;
        /* EAGAIN: the value changed; EINTR: a signal. Both are an early
         * return for the caller to re-check. */
        if (errno == EAGAIN || errno == EINTR)
            return 0;
        return mproc__os_error(errno);
    }
#else
    {
        /* Sleep-polling fallback: 0.2 ms per call, below any timeout. */
        struct timespec ts = {0, 200000L};
        nanosleep(&ts, NULL);
        return 0;
    }
#endif
}

int mproc__os_word_wake(void *word, mproc__handle h, uint32_t n)
{
    (void)h;
    if (word == NULL)
        return MPROC_EINVAL;
#if defined(__linux__)
    {
        int cnt = n > (uint32_t)INT_MAX ? INT_MAX : (int)n;
        if (syscall(SYS_futex, word, FUTEX_WAKE, cnt, NULL, NULL, 0) < 0)
            return mproc__os_error(errno);
    }
#else
    (void)n;
#endif
    return 0;
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

/* getpid() is a system call on current glibc; the tag is read on every
 * queue operation, so it is cached and refreshed in a fork child. */
static _Atomic uint32_t self_tag;
static pthread_once_t tag_once = PTHREAD_ONCE_INIT;

static void tag_refresh(void)
{
    atomic_store(&self_tag, (uint32_t)getpid());
}

static void tag_setup(void)
{
    tag_refresh();
    (void)pthread_atfork(NULL, NULL, tag_refresh);
}

uint32_t mproc__os_self_tag(void)
{
    uint32_t t = atomic_load_explicit(&self_tag, memory_order_relaxed);
    if (t != 0)
        return t;
    pthread_once(&tag_once, tag_setup);
    return atomic_load(&self_tag);
}

int mproc__os_tag_alive(uint32_t tag)
{
    pid_t pid = (pid_t)tag;
    if (tag == 0 || pid <= 0)
        return 0;
    if (kill(pid, 0) != 0 && errno == ESRCH)
        return 0;
#if defined(__linux__)
    {
        /* kill() succeeds on a zombie, which has ended: its robust state
         * must be recovered now, not once its parent reaps it. */
        char path[64];
        char buf[256];
        FILE *f;
        size_t n;
        snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
        f = fopen(path, "re");
        if (f == NULL)
            return errno == ENOENT ? 0 : 1;
        n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        /* "pid (comm) S ...": the state follows the last ')'. */
        {
            char *p = strrchr(buf, ')');
            if (p != NULL && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X'))
                return 0;
        }
    }
#endif
    return 1;
}
