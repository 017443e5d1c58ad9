/*
 * Backend-level tests: the contract of src/common/backend.h, called
 * directly (the runner links the static library, where the mproc__os_*
 * functions are visible). Every test here must pass on both backends; they
 * pin down what src/common relies on, so that a backend bug shows up here
 * rather than as a puzzling conformance failure.
 *
 * Map: time; byte channels; wait_many; shared memory; mutex, semaphore,
 * condition variable, wait words; processes (spawn, wait, signal,
 * inheritance, locate/resolve, pids, CPUs).
 */
#include "harness.h"

#include "../src/common/backend.h"

#include <pthread.h>
#include <stdatomic.h>
#if defined(_WIN32)
#include <windows.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------
 * Time
 */

TEST(backend_time_monotonic)
{
    int64_t t0 = mproc__os_now_ms();
    int64_t t1;

    ASSERT_GE(t0, 0);
    mproc__os_sleep_ms(50);
    t1 = mproc__os_now_ms();
    ASSERT_GE(t1 - t0, 50);
    ASSERT_LT(t1 - t0, th_ms(1000));
    return 0;
}

/* ---------------------------------------------------------------------------
 * Byte channels
 */

static void read_exact(mproc__handle h, void *buf, size_t n)
{
    unsigned char *p = buf;
    while (n > 0) {
        int64_t r = mproc__os_chan_read(h, p, n);
        ASSERT_GT(r, 0);
        p += r;
        n -= (size_t)r;
    }
}

TEST(backend_chan_duplex)
{
    mproc__handle h[2];
    char buf[16];

    ASSERT_OK(mproc__os_chan_pair(h, true));
    ASSERT_EQ(mproc__os_chan_poll(h[0], 0), 0);
    ASSERT_EQ(mproc__os_chan_poll(h[1], 0), 0);
    ASSERT_OK(mproc__os_chan_write(h[0], "ping", 4));
    ASSERT_OK(mproc__os_chan_write(h[1], "pong!", 5));
    ASSERT_EQ(mproc__os_chan_poll(h[1], 0), 1);
    ASSERT_EQ(mproc__os_chan_poll(h[0], th_ms(1000)), 1);
    read_exact(h[1], buf, 4);
    ASSERT_MEM_EQ(buf, "ping", 4);
    read_exact(h[0], buf, 5);
    ASSERT_MEM_EQ(buf, "pong!", 5);
    ASSERT_EQ(mproc__os_chan_poll(h[0], 0), 0);
    /* A write of nothing sends nothing (and is no end-of-file). */
    ASSERT_OK(mproc__os_chan_write(h[1], "", 0));
    ASSERT_EQ(mproc__os_chan_poll(h[0], 0), 0);
    mproc__os_handle_close(h[0]);
    mproc__os_handle_close(h[1]);
    return 0;
}

TEST(backend_chan_eof_and_epipe)
{
    mproc__handle h[2];
    char buf[8];

    ASSERT_OK(mproc__os_chan_pair(h, false));
    ASSERT_OK(mproc__os_chan_write(h[1], "abc", 3));
    mproc__os_handle_close(h[1]);
    /* Data left after the peer closed comes first, then end-of-file. */
    ASSERT_EQ(mproc__os_chan_poll(h[0], 0), 1);
    read_exact(h[0], buf, 3);
    ASSERT_MEM_EQ(buf, "abc", 3);
    ASSERT_EQ(mproc__os_chan_poll(h[0], 0), 1);
    ASSERT_EQ(mproc__os_chan_read(h[0], buf, sizeof buf), 0);
    ASSERT_EQ(mproc__os_chan_read(h[0], buf, sizeof buf), 0);
    mproc__os_handle_close(h[0]);

    ASSERT_OK(mproc__os_chan_pair(h, true));
    mproc__os_handle_close(h[0]);
    ASSERT_ERR(mproc__os_chan_write(h[1], "x", 1), MPROC_EPIPE);
    mproc__os_handle_close(h[1]);
    return 0;
}

TEST(backend_chan_poll_timeout)
{
    mproc__handle h[2];
    int64_t t0, took;

    ASSERT_OK(mproc__os_chan_pair(h, true));
    t0 = mproc__os_now_ms();
    ASSERT_EQ(mproc__os_chan_poll(h[0], 100), 0);
    took = mproc__os_now_ms() - t0;
    ASSERT_GE(took, 95);
    ASSERT_LT(took, th_ms(1000));
    mproc__os_handle_close(h[0]);
    mproc__os_handle_close(h[1]);
    return 0;
}

typedef struct writer_arg {
    mproc__handle h;
    const unsigned char *p;
    size_t n;
    int delay_ms;
    int rc;
} writer_arg;

static void *writer(void *arg)
{
    writer_arg *w = arg;
    if (w->delay_ms > 0)
        mproc__os_sleep_ms(w->delay_ms);
    w->rc = mproc__os_chan_write(w->h, w->p, w->n);
    return NULL;
}

TEST(backend_chan_large_and_poll_wakes)
{
    enum { N = 3 * 1024 * 1024 + 17 };
    mproc__handle h[2];
    unsigned char *src = malloc(N);
    unsigned char *dst = malloc(N);
    writer_arg w;
    pthread_t t;
    int64_t t0;
    size_t i;

    ASSERT_NOT_NULL(src);
    ASSERT_NOT_NULL(dst);
    for (i = 0; i < N; i++)
        src[i] = (unsigned char)(i * 7 + i / 251);
    ASSERT_OK(mproc__os_chan_pair(h, false));
    w.h = h[1];
    w.p = src;
    w.n = N;
    w.delay_ms = 100;
    w.rc = -999;
    ASSERT_EQ(pthread_create(&t, NULL, writer, &w), 0);
    /* The poll returns when the data arrives, well before its timeout. */
    t0 = mproc__os_now_ms();
    ASSERT_EQ(mproc__os_chan_poll(h[0], th_ms(5000)), 1);
    ASSERT_LT(mproc__os_now_ms() - t0, th_ms(2000));
    read_exact(h[0], dst, N);
    ASSERT_EQ(pthread_join(t, NULL), 0);
    ASSERT_OK(w.rc);
    ASSERT_MEM_EQ(src, dst, N);
    mproc__os_handle_close(h[0]);
    mproc__os_handle_close(h[1]);
    free(src);
    free(dst);
    return 0;
}

/* ---------------------------------------------------------------------------
 * wait_many
 */

/* Record channels (backend.h): one write is one record, one read takes at
 * most one (the rest of a longer one lost), scatter reads and gather
 * writes included; peek and poll take nothing. Linux: SOCK_SEQPACKET;
 * Windows: message-mode named pipes. Elsewhere rec_pair may say
 * MPROC_ENOSYS (macOS, the portable presets), and then the Pipe uses byte
 * streams. */
TEST(backend_rec_pair_records)
{
    mproc__handle h[2], s[2];
    unsigned char buf[100], hdr[8];
    int rc = mproc__os_rec_pair(h, true);
    size_t i;

#if !defined(_WIN32)
    /* macOS, and builds that take its choices (the portable presets). */
    if (rc == MPROC_ENOSYS)
        return 0;
#endif
    ASSERT_OK(rc);
    ASSERT_EQ(mproc__os_chan_records(h[0]), 1);
    ASSERT_EQ(mproc__os_chan_records(h[1]), 1);
    ASSERT_OK(mproc__os_chan_pair(s, true));
    ASSERT_EQ(mproc__os_chan_records(s[0]), 0);
    mproc__os_handle_close(s[0]);
    mproc__os_handle_close(s[1]);

    /* Two records queued: each read takes one, and a peek or poll in
     * between leaves the next one whole in the channel. */
    ASSERT_OK(mproc__os_chan_write(h[1], "hello", 5));
    ASSERT_OK(mproc__os_chan_write(h[1], "abc", 3));
    ASSERT_EQ(mproc__os_chan_poll(h[0], 0), 1);
    ASSERT_EQ(mproc__os_chan_peek(h[0], buf, sizeof buf, 0), 5);
    ASSERT_EQ(mproc__os_chan_read(h[0], buf, sizeof buf), 5);
    ASSERT_MEM_EQ(buf, "hello", 5);
    ASSERT_EQ(mproc__os_chan_poll(h[0], 0), 1);
    ASSERT_EQ(mproc__os_chan_peek(h[0], buf, sizeof buf, 0), 3);
    ASSERT_MEM_EQ(buf, "abc", 3);
    ASSERT_EQ(mproc__os_chan_read(h[0], buf, sizeof buf), 3);
    ASSERT_MEM_EQ(buf, "abc", 3);
    ASSERT_EQ(mproc__os_chan_poll(h[0], 0), 0);

    /* A record longer than the buffer: the rest is lost, the next read
     * takes the next record. */
    ASSERT_OK(mproc__os_chan_write(h[1], "0123456789", 10));
    ASSERT_OK(mproc__os_chan_write(h[1], "xy", 2));
    ASSERT_EQ(mproc__os_chan_read(h[0], buf, 4), 4);
    ASSERT_MEM_EQ(buf, "0123", 4);
    ASSERT_EQ(mproc__os_chan_read(h[0], buf, sizeof buf), 2);
    ASSERT_MEM_EQ(buf, "xy", 2);

    /* A gather write is one record, and a scatter read takes one, whole
     * when the two buffers hold it: the Pipe's header and payload. */
    for (i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)i;
    ASSERT_OK(mproc__os_chan_writev(h[1], "HEADER!!", 8, buf, 90));
    ASSERT_OK(mproc__os_chan_write(h[1], "next", 4));
    memset(buf, 0, sizeof buf);
    ASSERT_EQ(mproc__os_chan_readv(h[0], hdr, 8, buf, sizeof buf), 98);
    ASSERT_MEM_EQ(hdr, "HEADER!!", 8);
    for (i = 0; i < 90; i++)
        ASSERT_EQ(buf[i], (unsigned char)i);
    /* A record that fills the first buffer exactly leaves the second
     * empty (the Pipe's one byte more). */
    ASSERT_EQ(mproc__os_chan_readv(h[0], buf, 4, hdr, 1), 4);
    ASSERT_MEM_EQ(buf, "next", 4);
    /* One byte more than the first buffer: the second buffer tells. */
    ASSERT_OK(mproc__os_chan_write(h[1], "12345", 5));
    ASSERT_EQ(mproc__os_chan_readv(h[0], buf, 4, hdr, 1), 5);
    ASSERT_EQ(hdr[0], '5');
    ASSERT_EQ(mproc__os_chan_poll(h[0], 0), 0);

    /* The largest record the Pipe writes, and one byte more read. */
    {
        size_t big = (size_t)64 * 1024;
        unsigned char *w = malloc(big), *r = malloc(big + 1);
        ASSERT_NOT_NULL(w);
        ASSERT_NOT_NULL(r);
        for (i = 0; i < big; i++)
            w[i] = (unsigned char)(i * 7);
        ASSERT_OK(mproc__os_chan_writev(h[1], w, 8, w + 8, big - 8));
        ASSERT_OK(mproc__os_chan_write(h[1], "z", 1));
        ASSERT_EQ(mproc__os_chan_readv(h[0], hdr, 8, r, big - 7), (int64_t)big);
        ASSERT_MEM_EQ(hdr, w, 8);
        ASSERT_MEM_EQ(r, w + 8, big - 8);
        ASSERT_EQ(mproc__os_chan_read(h[0], r, big + 1), 1);
        ASSERT_EQ(r[0], 'z');
        free(w);
        free(r);
    }

    /* End-of-file once the peer has gone. */
    mproc__os_handle_close(h[1]);
    ASSERT_EQ(mproc__os_chan_poll(h[0], th_ms(1000)), 1);
    ASSERT_EQ(mproc__os_chan_read(h[0], buf, sizeof buf), 0);
    mproc__os_handle_close(h[0]);

    /* One-way: the write end says records too. */
    ASSERT_OK(mproc__os_rec_pair(h, false));
    ASSERT_EQ(mproc__os_chan_records(h[0]), 1);
    ASSERT_EQ(mproc__os_chan_records(h[1]), 1);
    ASSERT_OK(mproc__os_chan_write(h[1], "one", 3));
    ASSERT_OK(mproc__os_chan_write(h[1], "two", 3));
    ASSERT_EQ(mproc__os_chan_read(h[0], buf, sizeof buf), 3);
    ASSERT_EQ(mproc__os_chan_read(h[0], buf, sizeof buf), 3);
    ASSERT_MEM_EQ(buf, "two", 3);
    mproc__os_handle_close(h[0]);
    mproc__os_handle_close(h[1]);
    return 0;
}

TEST(backend_wait_many)
{
    mproc__handle a[2], b[2];
    mproc__handle hs[3];
    bool isp[3] = {false, false, false};
    bool ready[3];
    writer_arg w;
    pthread_t t;
    int64_t t0, took;

    ASSERT_OK(mproc__os_chan_pair(a, false));
    ASSERT_OK(mproc__os_chan_pair(b, false));
    hs[0] = a[0];
    hs[1] = MPROC__BADHANDLE; /* skipped */
    hs[2] = b[0];
    t0 = mproc__os_now_ms();
    ASSERT_EQ(mproc__os_wait_many(hs, isp, 3, 100, ready), 0);
    took = mproc__os_now_ms() - t0;
    ASSERT_GE(took, 95);
    ASSERT_LT(took, th_ms(1000));
    ASSERT(!ready[0] && !ready[1] && !ready[2]);

    w.h = b[1];
    w.p = (const unsigned char *)"z";
    w.n = 1;
    w.delay_ms = 100;
    w.rc = -999;
    ASSERT_EQ(pthread_create(&t, NULL, writer, &w), 0);
    ASSERT_EQ(mproc__os_wait_many(hs, isp, 3, th_ms(5000), ready), 1);
    ASSERT(!ready[0] && !ready[1] && ready[2]);
    ASSERT_EQ(pthread_join(t, NULL), 0);
    ASSERT_OK(w.rc);
    /* Readiness consumed nothing. */
    ASSERT_EQ(mproc__os_chan_poll(b[0], 0), 1);
    /* End-of-file is ready too. */
    mproc__os_handle_close(a[1]);
    ASSERT_EQ(mproc__os_wait_many(hs, isp, 3, 0, ready), 2);
    ASSERT(ready[0] && !ready[1] && ready[2]);
    mproc__os_handle_close(a[0]);
    mproc__os_handle_close(b[0]);
    mproc__os_handle_close(b[1]);
    return 0;
}

/* More handles than one WaitForMultipleObjects takes (64). */
TEST(backend_wait_many_over_64)
{
    enum { N = 70 };
    mproc__handle pairs[N][2];
    mproc__handle hs[N];
    bool ready[N];
    writer_arg w;
    pthread_t t;
    int i;

    for (i = 0; i < N; i++) {
        ASSERT_OK(mproc__os_chan_pair(pairs[i], false));
        hs[i] = pairs[i][0];
    }
    ASSERT_EQ(mproc__os_wait_many(hs, NULL, N, 50, ready), 0);
    w.h = pairs[N - 2][1];
    w.p = (const unsigned char *)"z";
    w.n = 1;
    w.delay_ms = 50;
    w.rc = -999;
    ASSERT_EQ(pthread_create(&t, NULL, writer, &w), 0);
    ASSERT_EQ(mproc__os_wait_many(hs, NULL, N, th_ms(5000), ready), 1);
    ASSERT(ready[N - 2]);
    ASSERT(!ready[0] && !ready[N - 1]);
    ASSERT_EQ(pthread_join(t, NULL), 0);
    ASSERT_OK(w.rc);
    for (i = 0; i < N; i++) {
        mproc__os_handle_close(pairs[i][0]);
        mproc__os_handle_close(pairs[i][1]);
    }
    return 0;
}

/* Waiting, polling and reading leave no handle behind. */
static void leak_round(void)
{
    mproc__handle a[2], b[2], hs[2];
    bool ready[2];
    char c;

    ASSERT_OK(mproc__os_chan_pair(a, true));
    ASSERT_OK(mproc__os_chan_pair(b, false));
    hs[0] = a[0];
    hs[1] = b[0];
    ASSERT_EQ(mproc__os_chan_poll(a[0], 1), 0);
    ASSERT_EQ(mproc__os_wait_many(hs, NULL, 2, 1, ready), 0);
    ASSERT_OK(mproc__os_chan_write(b[1], "q", 1));
    ASSERT_EQ(mproc__os_wait_many(hs, NULL, 2, 1000, ready), 1);
    ASSERT_EQ(mproc__os_chan_poll(b[0], 1000), 1);
    ASSERT_EQ(mproc__os_chan_read(b[0], &c, 1), 1);
    mproc__os_handle_close(a[0]);
    mproc__os_handle_close(a[1]);
    mproc__os_handle_close(b[0]);
    mproc__os_handle_close(b[1]);
}

TEST(backend_chan_no_handle_leak)
{
    int before, i;

    leak_round(); /* first-use allocations (per-thread event) */
    before = th_open_handles();
    for (i = 0; i < 100; i++)
        leak_round();
    if (before >= 0)
        ASSERT_EQ(th_open_handles(), before);
    return 0;
}

/* ---------------------------------------------------------------------------
 * Shared memory
 */

TEST(backend_shm_two_views)
{
    mproc__handle h;
    unsigned char *a = NULL;
    void *b = NULL;
    size_t i;

    ASSERT_OK(mproc__os_shm_create(100000, &h, (void **)&a));
    for (i = 0; i < 100000; i++)
        ASSERT_EQ(a[i], 0);
    a[0] = 42;
    a[99999] = 7;
    ASSERT_OK(mproc__os_shm_map(h, 100000, &b));
    ASSERT(b != (void *)a);
    ASSERT_EQ(((unsigned char *)b)[0], 42);
    ASSERT_EQ(((unsigned char *)b)[99999], 7);
    mproc__os_shm_unmap(a, 100000);
    mproc__os_shm_unmap(b, 100000);
    mproc__os_handle_close(h);
    return 0;
}

/* ---------------------------------------------------------------------------
 * Mutex, semaphore, condition variable, wait words
 */

static _Alignas(8) unsigned char mutex_mem[MPROC__OS_MUTEX_SIZE];

TEST(backend_mutex_not_recursive)
{
    mproc__handle h = MPROC__BADHANDLE;
    int64_t t0;

    ASSERT_OK(mproc__os_mutex_init(mutex_mem, &h));
    ASSERT_ERR(mproc__os_mutex_unlock(mutex_mem, h), MPROC_ENOTOWNER);
    ASSERT_OK(mproc__os_mutex_lock(mutex_mem, h, MPROC_FOREVER));
    ASSERT_ERR(mproc__os_mutex_lock(mutex_mem, h, 0), MPROC_EBUSY);
    t0 = mproc__os_now_ms();
    ASSERT_ERR(mproc__os_mutex_lock(mutex_mem, h, 100), MPROC_ETIMEDOUT);
    ASSERT_GE(mproc__os_now_ms() - t0, 95);
    ASSERT_OK(mproc__os_mutex_unlock(mutex_mem, h));
    ASSERT_ERR(mproc__os_mutex_unlock(mutex_mem, h), MPROC_ENOTOWNER);
    ASSERT_OK(mproc__os_mutex_lock(mutex_mem, h, 0));
    ASSERT_OK(mproc__os_mutex_unlock(mutex_mem, h));
    mproc__os_mutex_destroy(mutex_mem, h);
    return 0;
}

typedef struct locker_arg {
    mproc__handle h;
    int rc_lock;
    int rc_unlock;
    bool die_holding;
} locker_arg;

static void *locker(void *arg)
{
    locker_arg *l = arg;
    l->rc_lock = mproc__os_mutex_lock(mutex_mem, l->h, 0);
    if (!l->die_holding)
        l->rc_unlock = mproc__os_mutex_unlock(mutex_mem, l->h);
    return NULL;
}

TEST(backend_mutex_other_thread)
{
    mproc__handle h = MPROC__BADHANDLE;
    locker_arg l = {0, 0, 0, false};
    pthread_t t;

    ASSERT_OK(mproc__os_mutex_init(mutex_mem, &h));
    ASSERT_OK(mproc__os_mutex_lock(mutex_mem, h, MPROC_FOREVER));
    l.h = h;
    ASSERT_EQ(pthread_create(&t, NULL, locker, &l), 0);
    ASSERT_EQ(pthread_join(t, NULL), 0);
    ASSERT_ERR(l.rc_lock, MPROC_EBUSY);
    ASSERT_ERR(l.rc_unlock, MPROC_ENOTOWNER);
    ASSERT_OK(mproc__os_mutex_unlock(mutex_mem, h));
    /* A thread that ends holding it: the next owner is told. */
    l.die_holding = true;
    ASSERT_EQ(pthread_create(&t, NULL, locker, &l), 0);
    ASSERT_EQ(pthread_join(t, NULL), 0);
    ASSERT_OK(l.rc_lock);
    ASSERT_ERR(mproc__os_mutex_lock(mutex_mem, h, th_ms(1000)),
               MPROC_EOWNERDEAD);
    ASSERT_OK(mproc__os_mutex_unlock(mutex_mem, h));
    ASSERT_OK(mproc__os_mutex_lock(mutex_mem, h, 0));
    ASSERT_OK(mproc__os_mutex_unlock(mutex_mem, h));
    mproc__os_mutex_destroy(mutex_mem, h);
    return 0;
}

/* A thread that gets the id of a dead owner (Windows reuses thread ids
 * soon) is told that the owner died, not taken for the owner. */
static volatile int64_t reuse_dead_tid;
static volatile int reuse_rc;
static volatile int reuse_hit;

static void *reuse_die_holding(void *arg)
{
    mproc__handle h = *(mproc__handle *)arg;
    reuse_dead_tid = mproc__os_thread_id();
    reuse_rc = mproc__os_mutex_lock(mutex_mem, h, 0);
    return NULL;
}

static void *reuse_try(void *arg)
{
    mproc__handle h = *(mproc__handle *)arg;
    if (mproc__os_thread_id() != reuse_dead_tid)
        return NULL;
    reuse_hit = 1;
    reuse_rc = mproc__os_mutex_lock(mutex_mem, h, 0);
    if (reuse_rc == MPROC_EOWNERDEAD || reuse_rc == 0)
        mproc__os_mutex_unlock(mutex_mem, h);
    return NULL;
}

TEST(backend_mutex_reused_thread_id)
{
    mproc__handle h = MPROC__BADHANDLE;
    pthread_t t;
    int i;

    ASSERT_OK(mproc__os_mutex_init(mutex_mem, &h));
    ASSERT_EQ(pthread_create(&t, NULL, reuse_die_holding, &h), 0);
    ASSERT_EQ(pthread_join(t, NULL), 0);
    ASSERT_OK(reuse_rc);
    for (i = 0; i < 200 && !reuse_hit; i++) {
        ASSERT_EQ(pthread_create(&t, NULL, reuse_try, &h), 0);
        ASSERT_EQ(pthread_join(t, NULL), 0);
    }
    if (!reuse_hit) {
        printf("no thread id reused in 200 threads: not checked\n");
    } else {
        ASSERT_ERR(reuse_rc, MPROC_EOWNERDEAD);
    }
    /* Usable afterwards either way. */
    i = mproc__os_mutex_lock(mutex_mem, h, th_ms(1000));
    if (i != 0)
        ASSERT_ERR(i, MPROC_EOWNERDEAD);
    ASSERT_OK(mproc__os_mutex_unlock(mutex_mem, h));
    mproc__os_mutex_destroy(mutex_mem, h);
    return 0;
}

TEST(backend_sem_counts)
{
    static _Alignas(8) unsigned char mem[MPROC__OS_SEM_SIZE];
    mproc__handle h = MPROC__BADHANDLE;
    int64_t t0;

    ASSERT_ERR(mproc__os_sem_init(mem, &h, 4, 3), MPROC_EINVAL);
    ASSERT_OK(mproc__os_sem_init(mem, &h, 2, 3));
    ASSERT_OK(mproc__os_sem_open(mem, h));
    ASSERT_EQ(mproc__os_sem_value(mem, h), 2);
    ASSERT_OK(mproc__os_sem_wait(mem, h, 0));
    ASSERT_OK(mproc__os_sem_wait(mem, h, MPROC_FOREVER));
    ASSERT_EQ(mproc__os_sem_value(mem, h), 0);
    ASSERT_ERR(mproc__os_sem_wait(mem, h, 0), MPROC_EBUSY);
    t0 = mproc__os_now_ms();
    ASSERT_ERR(mproc__os_sem_wait(mem, h, 100), MPROC_ETIMEDOUT);
    ASSERT_GE(mproc__os_now_ms() - t0, 95);
    ASSERT_OK(mproc__os_sem_post(mem, h, 2));
    ASSERT_EQ(mproc__os_sem_value(mem, h), 2);
    /* Past the maximum: nothing is posted. */
    ASSERT_ERR(mproc__os_sem_post(mem, h, 2), MPROC_ERANGE);
    ASSERT_EQ(mproc__os_sem_value(mem, h), 2);
    ASSERT_OK(mproc__os_sem_post(mem, h, 1));
    ASSERT_EQ(mproc__os_sem_value(mem, h), 3);
    mproc__os_sem_destroy(mem, h);

    ASSERT_OK(mproc__os_sem_init(mem, &h, 0, 0));
    ASSERT_OK(mproc__os_sem_post(mem, h, 100000));
    ASSERT_EQ(mproc__os_sem_value(mem, h), 100000);
    mproc__os_sem_destroy(mem, h);
    return 0;
}

static _Alignas(8) unsigned char cond_mem[MPROC__OS_COND_SIZE];
static mproc__handle cond_h[MPROC__OS_COND_HANDLES];
static mproc__handle cond_mutex_h;
static volatile int cond_flag;
static volatile int cond_woken;

static void *cond_waiter(void *arg)
{
    int rc = 0;
    (void)arg;
    if (mproc__os_mutex_lock(mutex_mem, cond_mutex_h, MPROC_FOREVER) != 0)
        return (void *)1;
    while (!cond_flag && rc == 0)
        rc = mproc__os_cond_wait(cond_mem, cond_h, mutex_mem, cond_mutex_h,
                                 MPROC_FOREVER);
    if (rc == 0)
        cond_woken++;
    mproc__os_mutex_unlock(mutex_mem, cond_mutex_h);
    return rc == 0 ? NULL : (void *)2;
}

TEST(backend_cond_signal_broadcast)
{
    pthread_t t[3];
    void *res;
    int64_t t0;
    int i;

    ASSERT_OK(mproc__os_mutex_init(mutex_mem, &cond_mutex_h));
    ASSERT_OK(mproc__os_cond_init(cond_mem, cond_h));
    ASSERT_OK(mproc__os_cond_open(cond_mem, cond_h));

    /* Timeouts, with the mutex held again afterwards. */
    ASSERT_OK(mproc__os_mutex_lock(mutex_mem, cond_mutex_h, MPROC_FOREVER));
    ASSERT_ERR(
        mproc__os_cond_wait(cond_mem, cond_h, mutex_mem, cond_mutex_h, 0),
        MPROC_ETIMEDOUT);
    t0 = mproc__os_now_ms();
    ASSERT_ERR(
        mproc__os_cond_wait(cond_mem, cond_h, mutex_mem, cond_mutex_h, 100),
        MPROC_ETIMEDOUT);
    ASSERT_GE(mproc__os_now_ms() - t0, 95);
    ASSERT_ERR(mproc__os_mutex_lock(mutex_mem, cond_mutex_h, 0), MPROC_EBUSY);
    ASSERT_OK(mproc__os_mutex_unlock(mutex_mem, cond_mutex_h));

    for (i = 0; i < 3; i++)
        ASSERT_EQ(pthread_create(&t[i], NULL, cond_waiter, NULL), 0);
    mproc__os_sleep_ms(100);
    /* A signal without a predicate change wakes at most one, which waits
     * again; then the broadcast after setting the flag wakes all. */
    ASSERT_OK(mproc__os_mutex_lock(mutex_mem, cond_mutex_h, MPROC_FOREVER));
    ASSERT_OK(mproc__os_cond_signal(cond_mem, cond_h, 1));
    ASSERT_OK(mproc__os_mutex_unlock(mutex_mem, cond_mutex_h));
    mproc__os_sleep_ms(50);
    ASSERT_OK(mproc__os_mutex_lock(mutex_mem, cond_mutex_h, MPROC_FOREVER));
    ASSERT_EQ(cond_woken, 0);
    cond_flag = 1;
    ASSERT_OK(mproc__os_cond_broadcast(cond_mem, cond_h));
    ASSERT_OK(mproc__os_mutex_unlock(mutex_mem, cond_mutex_h));
    for (i = 0; i < 3; i++) {
        ASSERT_EQ(pthread_join(t[i], &res), 0);
        ASSERT_NULL(res);
    }
    ASSERT_EQ(cond_woken, 3);
    mproc__os_cond_destroy(cond_mem, cond_h);
    mproc__os_mutex_destroy(mutex_mem, cond_mutex_h);
    return 0;
}

/* Broadcasts as an Event uses them: each wakes every thread that waited
 * before it, and the woken ones wait again at once for the next one. A
 * thread that starts waiting after a broadcast must not take the wake-up of
 * one that waited before it: that one would sleep on, its predicate true,
 * and never acknowledge the round. */
static volatile int storm_gen;
static volatile long storm_acks;

enum { STORM_WAITERS = 4, STORM_ROUNDS = 400 };

static void *storm_waiter(void *arg)
{
    int seen = 0;
    (void)arg;
    while (seen < STORM_ROUNDS) {
        if (mproc__os_mutex_lock(mutex_mem, cond_mutex_h, MPROC_FOREVER) != 0)
            return (void *)1;
        while (storm_gen == seen)
            if (mproc__os_cond_wait(cond_mem, cond_h, mutex_mem, cond_mutex_h,
                                    MPROC_FOREVER) != 0) {
                mproc__os_mutex_unlock(mutex_mem, cond_mutex_h);
                return (void *)2;
            }
        seen = storm_gen;
        storm_acks++;
        mproc__os_mutex_unlock(mutex_mem, cond_mutex_h);
    }
    return NULL;
}

static long storm_acks_now(void)
{
    long n;
    mproc__os_mutex_lock(mutex_mem, cond_mutex_h, MPROC_FOREVER);
    n = storm_acks;
    mproc__os_mutex_unlock(mutex_mem, cond_mutex_h);
    return n;
}

TEST(backend_cond_broadcast_storm)
{
    pthread_t t[STORM_WAITERS];
    void *res;
    int64_t t0;
    int i;

    storm_gen = 0;
    storm_acks = 0;
    ASSERT_OK(mproc__os_mutex_init(mutex_mem, &cond_mutex_h));
    ASSERT_OK(mproc__os_cond_init(cond_mem, cond_h));
    for (i = 0; i < STORM_WAITERS; i++)
        ASSERT_EQ(pthread_create(&t[i], NULL, storm_waiter, NULL), 0);
    for (i = 1; i <= STORM_ROUNDS; i++) {
        ASSERT_OK(mproc__os_mutex_lock(mutex_mem, cond_mutex_h, MPROC_FOREVER));
        storm_gen = i;
        ASSERT_OK(mproc__os_cond_broadcast(cond_mem, cond_h));
        ASSERT_OK(mproc__os_mutex_unlock(mutex_mem, cond_mutex_h));
        /* Every waiter sees this round, without another broadcast. */
        t0 = mproc__os_now_ms();
        while (storm_acks_now() < (long)STORM_WAITERS * i) {
            ASSERT_LT(mproc__os_now_ms() - t0, th_ms(5000));
            mproc__os_yield();
        }
    }
    for (i = 0; i < STORM_WAITERS; i++) {
        ASSERT_EQ(pthread_join(t[i], &res), 0);
        ASSERT_NULL(res);
    }
    mproc__os_cond_destroy(cond_mem, cond_h);
    mproc__os_mutex_destroy(mutex_mem, cond_mutex_h);
    return 0;
}

static _Alignas(8) unsigned char word_mem[MPROC__OS_WORD_SIZE];
static mproc__handle word_h;

static void *word_setter(void *arg)
{
    (void)arg;
    mproc__os_sleep_ms(100);
    __atomic_store_n((uint32_t *)(void *)word_mem, 1u, __ATOMIC_SEQ_CST);
    mproc__os_word_wake(word_mem, word_h, UINT32_MAX);
    return NULL;
}

TEST(backend_word_wait_wake)
{
    pthread_t t;
    int64_t t0;

    memset(word_mem, 0, sizeof word_mem);
    ASSERT_OK(mproc__os_word_init(word_mem, &word_h));
    ASSERT_OK(mproc__os_word_open(word_mem, word_h));
    /* Another value: at once. */
    ASSERT_OK(mproc__os_word_wait(word_mem, 5, word_h, MPROC_FOREVER));
    t0 = mproc__os_now_ms();
    ASSERT_ERR(mproc__os_word_wait(word_mem, 0, word_h, 100), MPROC_ETIMEDOUT);
    ASSERT_GE(mproc__os_now_ms() - t0, 95);
    ASSERT_EQ(pthread_create(&t, NULL, word_setter, NULL), 0);
    t0 = mproc__os_now_ms();
    while (__atomic_load_n((uint32_t *)(void *)word_mem, __ATOMIC_SEQ_CST) == 0)
        ASSERT_OK(mproc__os_word_wait(word_mem, 0, word_h, th_ms(5000)));
    ASSERT_LT(mproc__os_now_ms() - t0, th_ms(2000));
    ASSERT_EQ(pthread_join(t, NULL), 0);
    ASSERT_OK(mproc__os_word_wake(word_mem, word_h, 1)); /* no waiter */
    mproc__os_word_destroy(word_mem, word_h);
    return 0;
}

/* A wake-up meant for one waiter must reach it even when a waiter that
 * came later takes the token first. The Windows words share one semaphore
 * per word: with waiter A suspended after a wake granted it, a later
 * waiter B takes A's token, and A (no longer counted) slept through its
 * whole timeout (T14's pool hung so under Wine). Elsewhere the kernel
 * wakes A itself, and B just waits out its short timeout. */
static _Alignas(8) unsigned char steal_mem[MPROC__OS_WORD_SIZE];
static mproc__handle steal_h;
static _Atomic int steal_rc = 1;
static _Atomic int64_t steal_back_ms;

static void *steal_waiter(void *arg)
{
    int rc;
    (void)arg;
    rc = mproc__os_word_wait(steal_mem, 0, steal_h, th_ms(5000));
    atomic_store(&steal_back_ms, mproc__os_now_ms());
    atomic_store(&steal_rc, rc);
    return NULL;
}

TEST(backend_word_wake_not_stolen)
{
    pthread_t t;
    int64_t t0;
#if defined(_WIN32)
    HANDLE th;
#endif

    memset(steal_mem, 0, sizeof steal_mem);
    ASSERT_OK(mproc__os_word_init(steal_mem, &steal_h));
    ASSERT_EQ(pthread_create(&t, NULL, steal_waiter, NULL), 0);
#if defined(_WIN32)
    /* A is counted (the idle count after the value) and asleep. */
    t0 = mproc__os_now_ms();
    while (__atomic_load_n((int32_t *)(void *)(steal_mem + 4),
                           __ATOMIC_SEQ_CST) != 1) {
        ASSERT_LT(mproc__os_now_ms() - t0, th_ms(5000));
        mproc__os_sleep_ms(1);
    }
    mproc__os_sleep_ms(20);
    th = (HANDLE)pthread_gethandle(t);
    ASSERT(SuspendThread(th) != (DWORD)-1);
#else
    mproc__os_sleep_ms(50);
#endif
    __atomic_store_n((uint32_t *)(void *)steal_mem, 1u, __ATOMIC_SEQ_CST);
    ASSERT_OK(mproc__os_word_wake(steal_mem, steal_h, 1));
    /* B: a waiter of the new value, which on Windows takes A's token. */
    (void)mproc__os_word_wait(steal_mem, 1, steal_h, 100);
    t0 = mproc__os_now_ms();
#if defined(_WIN32)
    ASSERT(ResumeThread(th) != (DWORD)-1);
#endif
    ASSERT_EQ(pthread_join(t, NULL), 0);
    ASSERT_OK(atomic_load(&steal_rc));
    ASSERT_LE(atomic_load(&steal_back_ms) - t0, th_ms(1000));
    mproc__os_word_destroy(steal_mem, steal_h);
    return 0;
}

/* ---------------------------------------------------------------------------
 * Processes. The child is this runner again, running a hidden helper
 * (`--run _backend_...`); what it needs comes through the environment.
 */

static void set_env(const char *name, const char *value)
{
#ifdef _WIN32
    _putenv_s(name, value);
#else
    setenv(name, value, 1);
#endif
}

static int64_t env_int(const char *name)
{
    const char *s = getenv(name);
    return s ? strtoll(s, NULL, 10) : -1;
}

static int spawn_helper(const char *helper, const mproc__handle *inherit,
                        size_t n, bool daemon, mproc__child *c)
{
    char *exe = NULL;
    const char *argv[5];
    mproc__spawn_req req;
    int rc;

    rc = mproc__os_self_exe(&exe);
    if (rc != 0)
        return rc;
    argv[0] = exe;
    argv[1] = "--run";
    argv[2] = helper;
    argv[3] = "default";
    argv[4] = NULL;
    memset(&req, 0, sizeof req);
    memset(c, 0, sizeof *c); /* the contract: zero before the start */
    req.exe = NULL;
    req.argv = argv;
    req.inherit = inherit;
    req.n_inherit = n;
    req.daemon = daemon;
    rc = mproc__os_spawn(&req, c);
    free(exe);
    return rc;
}

TEST(_backend_exit7)
{
    fflush(stdout);
    mproc__os_exit(7);
    return 1;
}

TEST(_backend_sleep)
{
    th_sleep_ms(60000);
    return 1;
}

TEST(backend_spawn_exit_codes)
{
    mproc__child c;
    int64_t t0;

    memset(&c, 0, sizeof c);
    ASSERT_OK(spawn_helper("_backend_exit7", NULL, 0, false, &c));
    ASSERT_GT(c.pid, 0);
    ASSERT_OK(mproc__os_wait(&c, th_ms(10000)));
    ASSERT(c.reaped);
    ASSERT_EQ(c.exitcode, 7);
    ASSERT_OK(mproc__os_wait(&c, 0)); /* reaped: still 0 */
    ASSERT_OK(mproc__os_signal(&c, MPROC__SIGTERM));
    mproc__os_child_release(&c);

    ASSERT_OK(spawn_helper("_backend_sleep", NULL, 0, false, &c));
    t0 = mproc__os_now_ms();
    ASSERT_ERR(mproc__os_wait(&c, 100), MPROC_ETIMEDOUT);
    ASSERT_GE(mproc__os_now_ms() - t0, 95);
    ASSERT_OK(mproc__os_signal(&c, MPROC__SIGTERM));
    ASSERT_OK(mproc__os_wait(&c, th_ms(10000)));
    ASSERT_EQ(c.exitcode, -15);
    mproc__os_child_release(&c);

    ASSERT_OK(spawn_helper("_backend_sleep", NULL, 0, true, &c));
    ASSERT_OK(mproc__os_signal(&c, MPROC__SIGKILL));
    ASSERT_OK(mproc__os_wait(&c, th_ms(10000)));
    ASSERT_EQ(c.exitcode, -9);
    mproc__os_child_release(&c);
    return 0;
}

/* Arguments that need quoting on Windows reach the child as they were. */
static const char *const tricky_args[] = {"plain",
                                          "",
                                          "two words",
                                          "quo\"te",
                                          "back\\\\slash\\",
                                          "tr\\\"icky\\\\\"",
                                          "tab\there",
                                          "end\\\\",
                                          " lead",
                                          "trail ",
                                          "\"",
                                          "\\",
                                          NULL};

TEST(_backend_argv_child)
{
    int i;
    /* argv: exe --run _backend_argv_child default tricky... */
    for (i = 0; tricky_args[i] != NULL; i++) {
        if (th_argc <= 4 + i)
            return 2;
        if (strcmp(th_argv[4 + i], tricky_args[i]) != 0)
            return 10 + i;
    }
    return th_argc == 4 + i ? 0 : 3;
}

TEST(backend_spawn_argv_quoting)
{
    const char *argv[32];
    char *exe = NULL;
    mproc__spawn_req req;
    mproc__child c;
    int i, n = 0;

    ASSERT_OK(mproc__os_self_exe(&exe));
    argv[n++] = exe;
    argv[n++] = "--run";
    argv[n++] = "_backend_argv_child";
    argv[n++] = "default";
    for (i = 0; tricky_args[i] != NULL; i++)
        argv[n++] = tricky_args[i];
    argv[n] = NULL;
    memset(&req, 0, sizeof req);
    memset(&c, 0, sizeof c);
    req.argv = argv;
    ASSERT_OK(mproc__os_spawn(&req, &c));
    ASSERT_OK(mproc__os_wait(&c, th_ms(10000)));
    ASSERT_EQ(c.exitcode, 0);
    mproc__os_child_release(&c);
    free(exe);
    return 0;
}

TEST(backend_spawn_bad_exe)
{
    const char *argv[] = {"mproc-no-such-program", NULL};
    mproc__spawn_req req;
    mproc__child c;

    memset(&req, 0, sizeof req);
    memset(&c, 0, sizeof c);
    req.exe = "mproc-no-such-directory/mproc-no-such-program";
    req.argv = argv;
    ASSERT_ERR(mproc__os_spawn(&req, &c), MPROC_EEXEC);
    return 0;
}

/* Writes "up" to the handle in MPROC_BT_OUT, then waits for end-of-file
 * on MPROC_BT_IN, so that the parent can look at what it inherited. */
TEST(_backend_inherit_child)
{
    mproc__handle out = (mproc__handle)env_int("MPROC_BT_OUT");
    mproc__handle in = (mproc__handle)env_int("MPROC_BT_IN");
    char buf[4];

    if (mproc__os_chan_write(out, "up", 2) != 0)
        return 2;
    if (mproc__os_chan_read(in, buf, sizeof buf) != 0)
        return 3;
    return 0;
}

TEST(backend_spawn_inherits_listed_only)
{
    mproc__handle up[2], go[2], other[2];
    mproc__handle pass[2];
    mproc__child c;
    char buf[8];
    char num[32];

    ASSERT_OK(mproc__os_chan_pair(up, false));
    ASSERT_OK(mproc__os_chan_pair(go, false));
    ASSERT_OK(mproc__os_chan_pair(other, false));
    snprintf(num, sizeof num, "%lld", (long long)up[1]);
    set_env("MPROC_BT_OUT", num);
    snprintf(num, sizeof num, "%lld", (long long)go[0]);
    set_env("MPROC_BT_IN", num);
    pass[0] = up[1];
    pass[1] = go[0];
    ASSERT_OK(spawn_helper("_backend_inherit_child", pass, 2, false, &c));
    read_exact(up[0], buf, 2);
    ASSERT_MEM_EQ(buf, "up", 2);
    /* The child holds its copy of up[1]: no end-of-file when ours goes. */
    mproc__os_handle_close(up[1]);
    ASSERT_EQ(mproc__os_chan_poll(up[0], 100), 0);
    /* It did not get other[1]: ours was the only write end. */
    mproc__os_handle_close(other[1]);
    ASSERT_EQ(mproc__os_chan_poll(other[0], th_ms(1000)), 1);
    ASSERT_EQ(mproc__os_chan_read(other[0], buf, sizeof buf), 0);
    /* Let it go: it sees end-of-file on go[0] and exits 0. */
    mproc__os_handle_close(go[1]);
    ASSERT_OK(mproc__os_wait(&c, th_ms(10000)));
    ASSERT_EQ(c.exitcode, 0);
    mproc__os_child_release(&c);
    ASSERT_EQ(mproc__os_chan_poll(up[0], th_ms(1000)), 1);
    ASSERT_EQ(mproc__os_chan_read(up[0], buf, sizeof buf), 0);
    mproc__os_handle_close(up[0]);
    mproc__os_handle_close(go[0]);
    mproc__os_handle_close(other[0]);
    return 0;
}

TEST(backend_wait_many_process)
{
    mproc__child c;
    mproc__handle a[2];
    mproc__handle hs[2];
    bool isp[2] = {false, true};
    bool ready[2];

    memset(&c, 0, sizeof c);
    ASSERT_OK(mproc__os_chan_pair(a, true));
    ASSERT_OK(spawn_helper("_backend_exit7", NULL, 0, false, &c));
    hs[0] = a[0];
    hs[1] = c.handle;
    if (hs[1] == MPROC__BADHANDLE) {
        /* No pidfd on this kernel: the caller polls such a process. */
        ASSERT_OK(mproc__os_wait(&c, th_ms(10000)));
    } else {
        ASSERT_EQ(mproc__os_wait_many(hs, isp, 2, th_ms(10000), ready), 1);
        ASSERT(!ready[0] && ready[1]);
        ASSERT_OK(mproc__os_wait(&c, 0));
    }
    ASSERT_EQ(c.exitcode, 7);
    mproc__os_child_release(&c);
    mproc__os_handle_close(a[0]);
    mproc__os_handle_close(a[1]);
    return 0;
}

/* The parent's pid, as the child sees it. */
TEST(_backend_ppid_child)
{
    int64_t want = env_int("MPROC_BT_PPID");
    if (mproc__os_getppid() != want)
        return 2;
    if (mproc__os_parent_alive(want) != 1)
        return 3;
    return 0;
}

TEST(backend_pids_and_cpus)
{
    mproc__child c;
    char num[32];
    char *exe = NULL;

    ASSERT_GT(mproc__os_getpid(), 0);
    ASSERT_EQ(mproc__os_parent_alive(mproc__os_getppid()), 1);
    snprintf(num, sizeof num, "%lld", (long long)mproc__os_getpid());
    set_env("MPROC_BT_PPID", num);
    ASSERT_OK(spawn_helper("_backend_ppid_child", NULL, 0, false, &c));
    ASSERT_OK(mproc__os_wait(&c, th_ms(10000)));
    ASSERT_EQ(c.exitcode, 0);
    mproc__os_child_release(&c);

    ASSERT_GE(mproc__os_cpu_count(), 1);
    ASSERT_GE(mproc__os_cpu_count_usable(), 1);
    ASSERT_LE(mproc__os_cpu_count_usable(), mproc__os_cpu_count());
    ASSERT_OK(mproc__os_self_exe(&exe));
    ASSERT(strlen(exe) > 0);
    free(exe);
    return 0;
}

TEST(_backend_usable_child)
{
    return mproc__os_cpu_count_usable();
}

TEST(backend_cpu_usable_pinned)
{
    mproc__child c;
    int n = mproc__os_cpu_count();

    if (th_platform_pin_to_one_cpu() != 0) {
        printf("no affinity call: not checked\n");
        return 0;
    }
    ASSERT_EQ(mproc__os_cpu_count_usable(), 1);
    ASSERT_EQ(mproc__os_cpu_count(), n);
    /* A spawned child inherits the pinning. */
    memset(&c, 0, sizeof c);
    ASSERT_OK(spawn_helper("_backend_usable_child", NULL, 0, false, &c));
    ASSERT_OK(mproc__os_wait(&c, th_ms(10000)));
    ASSERT_EQ(c.exitcode, 1);
    mproc__os_child_release(&c);
    return 0;
}

static int locate_me(int x)
{
    return x * 3 + 1;
}

TEST(backend_locate_resolve)
{
    char *module = NULL;
    uint64_t offset = 0;
    void *fn = NULL;
    int (*f)(int);
    int local;

    ASSERT_OK(
        mproc__os_locate((const void *)(uintptr_t)locate_me, &module, &offset));
    ASSERT_NOT_NULL(module);
    ASSERT_OK(mproc__os_resolve(module, offset, &fn));
    f = (int (*)(int))(uintptr_t)fn;
    ASSERT_EQ(f(4), 13);
    /* Not a function's address: refused, not jumped to. */
    ASSERT_ERR(mproc__os_resolve("mproc-no-such-module", offset, &fn),
               MPROC_ERESOLVE);
    ASSERT_ERR(mproc__os_locate(&local, &module, &offset), MPROC_ERESOLVE);
    free(module);
    return 0;
}
