/*
 * Tests of the Python-parity calls of pipes, waiting, queues and
 * synchronisation: rows C15-C18, Q20 and L17-L20 of CONFORMANCE.md (the
 * process rows P32-P33 are in test-process.c, named shared memory N01-N06
 * in test-shm.c).
 *
 * Where a row needs a descriptor or handle of the program's own (C17,
 * C18), the test makes one the platform's way: a socket pair or pipe on
 * POSIX, a named pipe or an event on Windows; everything else is the same
 * code on every platform.
 *
 * Map: raw handles of the platform; C18 (mproc_wait on raw handles).
 */
#include "harness.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(_WIN32)
#include <windows.h>
#else
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>
#endif

/* ---------------------------------------------------------------------------
 * Raw handles of the platform
 */

/* Something mproc_wait can wait on (C18): POSIX: a socket of a pair,
 * ready once a byte is written to the other; Windows: a manual-reset
 * event, ready once set. */
typedef struct raw_ready {
    intptr_t wait;  /* what goes into mproc_wait_item.handle */
    intptr_t other; /* POSIX: the write end */
} raw_ready;

static void raw_make(raw_ready *r)
{
#if defined(_WIN32)
    HANDLE e = CreateEventW(NULL, TRUE, FALSE, NULL);
    ASSERT_NOT_NULL(e);
    r->wait = (intptr_t)e;
    r->other = -1;
#else
    int fds[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    r->wait = fds[0];
    r->other = fds[1];
#endif
}

static void raw_fire(raw_ready *r)
{
#if defined(_WIN32)
    ASSERT(SetEvent((HANDLE)r->wait));
#else
    ASSERT_EQ(write((int)r->other, "x", 1), 1);
#endif
}

static void raw_close(raw_ready *r)
{
#if defined(_WIN32)
    CloseHandle((HANDLE)r->wait);
#else
    close((int)r->wait);
    close((int)r->other);
#endif
}

/* ---------------------------------------------------------------------------
 * C18: mproc_wait on raw descriptors, sockets and handles
 */

static void *c18_fire_later(void *arg)
{
    th_sleep_ms(th_ms(150));
    raw_fire((raw_ready *)arg);
    return NULL;
}

static int t_c18_exit_later(const mproc_value *args)
{
    th_sleep_ms((int)th_arg_int(args, 0));
    return 0;
}

TEST(C18_wait_accepts_raw_handles)
{
    raw_ready r, closed;
    mproc_wait_item it[3];
    mproc_conn *a, *b;
    mproc_process *p;
    pthread_t t;
    int64_t t0;

    raw_make(&r);
    memset(it, 0, sizeof it);
    it[0].kind = MPROC_WAIT_HANDLE;
    it[0].handle = r.wait;
    /* Not ready: the timeout passes. */
    t0 = th_now_ms();
    ASSERT_EQ(mproc_wait(it, 1, th_ms(100)), 0);
    ASSERT_GE(th_now_ms() - t0, 100);
    ASSERT(!it[0].ready);
    ASSERT_EQ(mproc_wait(it, 1, 0), 0);

    /* Woken by the handle while waiting without a timeout, beside a pipe
     * end and a process that stay quiet. */
    ASSERT_OK(mproc_pipe(&a, &b, true));
    p = th_start(t_c18_exit_later, MPROC_LIST(mproc_int(th_ms(20000))));
    it[1].kind = MPROC_WAIT_CONN;
    it[1].conn = a;
    it[2].kind = MPROC_WAIT_PROCESS;
    it[2].process = p;
    ASSERT_EQ(pthread_create(&t, NULL, c18_fire_later, &r), 0);
    ASSERT_EQ(mproc_wait(it, 3, MPROC_FOREVER), 1);
    ASSERT_EQ(pthread_join(t, NULL), 0);
    ASSERT(it[0].ready);
    ASSERT(!it[1].ready);
    ASSERT(!it[2].ready);
    /* It stays ready (mproc_wait reads nothing from it). */
    ASSERT_EQ(mproc_wait(it, 3, 0), 1);
    ASSERT(it[0].ready);
    ASSERT_OK(mproc_process_kill(p));
    ASSERT_OK(mproc_process_join(p, th_ms(20000)));
    mproc_process_destroy(p);
    mproc_conn_destroy(a);
    mproc_conn_destroy(b);

    /* -1, and a number whose handle was closed, are errors: never a
     * "ready" nor a crash. */
    it[0].handle = -1;
    ASSERT_ERR(mproc_wait(it, 1, 0), MPROC_EINVAL);
    raw_make(&closed);
    raw_close(&closed);
    it[0].handle = closed.wait;
    ASSERT_ERR(mproc_wait(it, 1, 0), MPROC_EINVAL);
    ASSERT_ERR(mproc_wait(it, 1, th_ms(50)), MPROC_EINVAL);
    raw_close(&r);
    return 0;
}
