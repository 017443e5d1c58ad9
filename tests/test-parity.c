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
 * Map: raw handles of the platform; C15 (an end's state); C16 (handles to
 * a running process); C17 (adopting a
 * connection); C18 (mproc_wait on raw handles); Q20 (queue shutdown); L17
 * (lock inspection); L18 (wait_for); L19-L20 (barrier action, default
 * timeout).
 */
#include "harness.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(_WIN32)
#include <windows.h>
#else
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
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

/* A connected pair of the platform's own (C17). records false: POSIX a
 * stream socket pair, Windows a byte-mode named pipe and its client;
 * records true: POSIX an AF_UNIX SOCK_SEQPACKET pair (none where the
 * system has none for AF_UNIX: macOS), Windows a message-mode pipe, both
 * ends reading messages. Both overlapped on Windows. 1 when made. */
static int raw_pair_of(intptr_t h[2], bool records)
{
#if defined(_WIN32)
    static LONG n;
    wchar_t name[96];
    OVERLAPPED ov;
    HANDLE s, c;
    DWORD mode = PIPE_READMODE_MESSAGE;
    swprintf(name, 96, L"\\\\.\\pipe\\mproc-test-%lu-%ld",
             (unsigned long)GetCurrentProcessId(),
             (long)InterlockedIncrement(&n));
    s = CreateNamedPipeW(name, PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED,
                         (records ? PIPE_TYPE_MESSAGE | PIPE_READMODE_MESSAGE
                                  : PIPE_TYPE_BYTE | PIPE_READMODE_BYTE) |
                             PIPE_WAIT,
                         1, 65536, 65536, 0, NULL);
    ASSERT(s != INVALID_HANDLE_VALUE);
    c = CreateFileW(name, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                    FILE_FLAG_OVERLAPPED, NULL);
    ASSERT(c != INVALID_HANDLE_VALUE);
    if (records)
        ASSERT(SetNamedPipeHandleState(c, &mode, NULL, NULL));
    memset(&ov, 0, sizeof ov);
    ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
    ASSERT(ConnectNamedPipe(s, &ov) || GetLastError() == ERROR_PIPE_CONNECTED);
    CloseHandle(ov.hEvent);
    h[0] = (intptr_t)s;
    h[1] = (intptr_t)c;
    return 1;
#else
    int fds[2];
    int made = socketpair(AF_UNIX, records ? SOCK_SEQPACKET : SOCK_STREAM, 0,
                          fds) == 0;
#if defined(__linux__)
    ASSERT(made); /* Linux has both */
#endif
    if (!records)
        ASSERT(made);
    if (!made)
        return 0;
    h[0] = fds[0];
    h[1] = fds[1];
    return 1;
#endif
}

static void raw_pair(intptr_t h[2])
{
    (void)raw_pair_of(h, false);
}

/* 1 while the handle is open. */
static int raw_open(intptr_t h)
{
#if defined(_WIN32)
    DWORD flags;
    return GetHandleInformation((HANDLE)h, &flags) ? 1 : 0;
#else
    return fcntl((int)h, F_GETFD) >= 0;
#endif
}

/* Handles that are no connection an end can be made of: a closed number,
 * and (POSIX) a pipe(2), a datagram socket pair, a device; (Windows) an
 * anonymous pipe (synchronous), an event. Closed by the caller. */
static size_t raw_not_connections(intptr_t *out)
{
    size_t n = 0;
#if defined(_WIN32)
    HANDLE r, w, e;
    ASSERT(CreatePipe(&r, &w, NULL, 0));
    out[n++] = (intptr_t)r;
    out[n++] = (intptr_t)w;
    e = CreateEventW(NULL, TRUE, FALSE, NULL);
    ASSERT_NOT_NULL(e);
    out[n++] = (intptr_t)e;
#else
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    out[n++] = fds[0];
    out[n++] = fds[1];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_DGRAM, 0, fds), 0);
    out[n++] = fds[0];
    out[n++] = fds[1];
    out[n] = open("/dev/null", O_RDWR);
    ASSERT(out[n] >= 0);
    n++;
#endif
    return n;
}

static void raw_close_one(intptr_t h)
{
#if defined(_WIN32)
    CloseHandle((HANDLE)h);
#else
    close((int)h);
#endif
}

/* ---------------------------------------------------------------------------
 * C15: readable, writable, closed
 */

TEST(C15_readable_writable_closed)
{
    mproc_conn *a, *b;
    ASSERT_ERR(mproc_conn_readable(NULL), MPROC_EINVAL);
    ASSERT_ERR(mproc_conn_writable(NULL), MPROC_EINVAL);
    ASSERT_ERR(mproc_conn_closed(NULL), MPROC_EINVAL);
    /* Duplex: both ways. */
    ASSERT_OK(mproc_pipe(&a, &b, true));
    ASSERT_EQ(mproc_conn_readable(a), 1);
    ASSERT_EQ(mproc_conn_writable(a), 1);
    ASSERT_EQ(mproc_conn_readable(b), 1);
    ASSERT_EQ(mproc_conn_writable(b), 1);
    ASSERT_EQ(mproc_conn_closed(a), 0);
    /* The peer's close does not close this end. */
    ASSERT_OK(mproc_conn_close(b));
    ASSERT_EQ(mproc_conn_closed(b), 1);
    ASSERT_EQ(mproc_conn_closed(a), 0);
    /* Closing keeps the direction (as Python's properties do). */
    ASSERT_EQ(mproc_conn_readable(b), 1);
    ASSERT_EQ(mproc_conn_writable(b), 1);
    mproc_conn_destroy(a);
    mproc_conn_destroy(b);
    /* One-way: a reads, b writes. */
    ASSERT_OK(mproc_pipe(&a, &b, false));
    ASSERT_EQ(mproc_conn_readable(a), 1);
    ASSERT_EQ(mproc_conn_writable(a), 0);
    ASSERT_EQ(mproc_conn_readable(b), 0);
    ASSERT_EQ(mproc_conn_writable(b), 1);
    ASSERT_OK(mproc_conn_close(a));
    ASSERT_EQ(mproc_conn_closed(a), 1);
    ASSERT_EQ(mproc_conn_readable(a), 1);
    ASSERT_EQ(mproc_conn_writable(a), 0);
    ASSERT_EQ(mproc_conn_closed(b), 0);
    mproc_conn_destroy(a);
    mproc_conn_destroy(b);
    /* A frame that is no value leaves the end open; a header that no
     * sender writes (below, through an adopted end) closes it. */
    ASSERT_OK(mproc_pipe(&a, &b, true));
    {
        static const unsigned char junk[16] = {0xff, 0xff, 0xff, 0xff, 1, 2};
        mproc_value *v = NULL;
        ASSERT_OK(mproc_conn_send_bytes(b, junk, sizeof junk));
        ASSERT_ERR(mproc_conn_recv(a, &v, th_ms(5000)), MPROC_EBADMSG);
        ASSERT_EQ(mproc_conn_closed(a), 0);
    }
    mproc_conn_destroy(a);
    mproc_conn_destroy(b);
    {
        intptr_t raw[2];
        mproc_conn *x;
        mproc_value *v = NULL;
        static const unsigned char bad_hdr[8] = {0xff, 0xff, 0xff, 0x7f,
                                                 0,    0,    0,    0};
        raw_pair(raw);
        ASSERT_OK(mproc_conn_adopt(&x, raw[0], true, true));
#if defined(_WIN32)
        {
            DWORD done = 0;
            OVERLAPPED ov;
            memset(&ov, 0, sizeof ov);
            ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
            if (!WriteFile((HANDLE)raw[1], bad_hdr, 8, NULL, &ov))
                ASSERT(GetOverlappedResult((HANDLE)raw[1], &ov, &done, TRUE));
            CloseHandle(ov.hEvent);
        }
#else
        ASSERT_EQ(write((int)raw[1], bad_hdr, 8), 8);
#endif
        ASSERT_ERR(mproc_conn_recv(x, &v, th_ms(5000)), MPROC_EFRAMING);
        ASSERT_EQ(mproc_conn_closed(x), 1);
        mproc_conn_destroy(x);
        raw_close_one(raw[1]);
    }
    return 0;
}

/* ---------------------------------------------------------------------------
 * C16: handles sent to a running process
 */

/* Makes the handle ready as raw_fire does, from another process that got
 * it (POSIX: a byte into the socket; Windows: SetEvent). */
static int raw_fire_handle(intptr_t h)
{
#if defined(_WIN32)
    return SetEvent((HANDLE)h) ? 0 : -1;
#else
    return write((int)h, "x", 1) == 1 ? 0 : -1;
#endif
}

/* Running already, receives on its end (argument 0) a list of one object
 * of each kind, made after it started, and uses each; then a raw handle,
 * which it fires. 0 when all worked, else the step that failed. */
static int t_c16_receiver(const mproc_value *args)
{
    mproc_conn *ctl = NULL, *c = NULL;
    mproc_queue *q = NULL;
    mproc_lock *l = NULL;
    mproc_sem *sm = NULL;
    mproc_event *e = NULL;
    mproc_cond *cv = NULL;
    mproc_barrier *b = NULL;
    mproc_shm *m = NULL;
    mproc_value *v = NULL, *x;
    intptr_t raw = -1;
    CHILD_CHECK(mproc_value_get_conn(mproc_list_get(args, 0), &ctl) == 0, 2);
    CHILD_CHECK(mproc_conn_recv(ctl, &v, th_ms(20000)) == 0, 3);
    CHILD_CHECK(mproc_list_size(v) == 8, 4);
    CHILD_CHECK(mproc_value_get_conn(mproc_list_get(v, 0), &c) == 0 &&
                    mproc_value_get_queue(mproc_list_get(v, 1), &q) == 0 &&
                    mproc_value_get_lock(mproc_list_get(v, 2), &l) == 0 &&
                    mproc_value_get_sem(mproc_list_get(v, 3), &sm) == 0 &&
                    mproc_value_get_event(mproc_list_get(v, 4), &e) == 0 &&
                    mproc_value_get_cond(mproc_list_get(v, 5), &cv) == 0 &&
                    mproc_value_get_barrier(mproc_list_get(v, 6), &b) == 0 &&
                    mproc_value_get_shm(mproc_list_get(v, 7), &m) == 0,
                5);
    x = mproc_str("pong");
    CHILD_CHECK(mproc_conn_send(c, x) == 0, 6);
    mproc_value_free(x);
    x = mproc_int(7);
    CHILD_CHECK(mproc_queue_put(q, x, th_ms(5000)) == 0, 7);
    mproc_value_free(x);
    /* The parent holds the lock: the same lock. */
    CHILD_CHECK(mproc_lock_acquire(l, 0) == MPROC_EBUSY, 8);
    CHILD_CHECK(mproc_sem_release(sm) == 0, 9);
    CHILD_CHECK(mproc_shm_size(m) == 4096, 10);
    ((volatile unsigned char *)mproc_shm_ptr(m))[0] = 0x5a;
    CHILD_CHECK(MPROC_ACQUIRED(mproc_cond_acquire(cv, th_ms(5000))), 11);
    CHILD_CHECK(mproc_cond_notify_all(cv) == 0, 12);
    CHILD_CHECK(mproc_cond_release(cv) == 0, 13);
    CHILD_CHECK(mproc_event_set(e) == 0, 14);
    CHILD_CHECK(mproc_barrier_wait(b, th_ms(20000)) >= 0, 15);
    mproc_value_free(v); /* the objects go with the value */
    /* A raw descriptor, numbered above 255 in the sender. */
    CHILD_CHECK(mproc_conn_recv_handle(ctl, &raw, th_ms(20000)) == 0, 16);
    CHILD_CHECK(raw_fire_handle(raw) == 0, 17);
    raw_close_one(raw);
    return 0;
}

TEST(C16_handles_to_running_process)
{
    mproc_conn *ctl, *ctl_child, *c1, *c2;
    mproc_queue *q;
    mproc_lock *l;
    mproc_sem *sm;
    mproc_event *e;
    mproc_cond *cv;
    mproc_barrier *b;
    mproc_shm *m;
    mproc_process *p;
    mproc_value *v = NULL;
    mproc_wait_item it;
    raw_ready r;
    intptr_t high;
    const char *txt;
    size_t n;
    int64_t i = 0;

    ASSERT_OK(mproc_pipe(&ctl, &ctl_child, true));
    p = th_start(t_c16_receiver, MPROC_LIST(mproc_value_conn(ctl_child)));
    /* Made after the child started: they can only reach it now. */
    ASSERT_OK(mproc_pipe(&c1, &c2, true));
    ASSERT_OK(mproc_queue_create(&q, 0));
    ASSERT_OK(mproc_lock_create(&l));
    ASSERT_OK(mproc_sem_create(&sm, 0, 0));
    ASSERT_OK(mproc_event_create(&e));
    ASSERT_OK(mproc_cond_create(&cv));
    ASSERT_OK(mproc_barrier_create(&b, 2));
    ASSERT_OK(mproc_shm_create(&m, 4096));
    ASSERT_OK(mproc_lock_acquire(l, 0));
    v = mproc_list_from(
        (mproc_value *const[]){mproc_value_conn(c2), mproc_value_queue(q),
                               mproc_value_lock(l), mproc_value_sem(sm),
                               mproc_value_event(e), mproc_value_cond(cv),
                               mproc_value_barrier(b), mproc_value_shm(m)},
        8);
    ASSERT_OK(mproc_conn_send(ctl, v));
    mproc_value_free(v);
    /* The sender's objects stay its own; the end given away is closed
     * here, as one hands an end over. */
    ASSERT_OK(mproc_conn_close(c2));
    ASSERT_OK(mproc_conn_recv(c1, &v, th_ms(20000)));
    ASSERT_OK(mproc_value_get_str(v, &txt, &n));
    ASSERT_STR_EQ(txt, "pong");
    mproc_value_free(v);
    ASSERT_OK(mproc_queue_get(q, &v, th_ms(20000)));
    ASSERT_OK(mproc_value_get_int(v, &i));
    ASSERT_EQ(i, 7);
    mproc_value_free(v);
    ASSERT_OK(mproc_sem_acquire(sm, th_ms(20000)));
    ASSERT_OK(mproc_event_wait(e, th_ms(20000)));
    ASSERT_GE(mproc_barrier_wait(b, th_ms(20000)), 0);
    ASSERT_EQ(((volatile unsigned char *)mproc_shm_ptr(m))[0], 0x5a);
    ASSERT_OK(mproc_lock_release(l));

    /* A raw descriptor numbered above 255 (POSIX; Windows: an event). */
    raw_make(&r);
#if defined(_WIN32)
    high = r.wait;
#else
    high = fcntl((int)r.other, F_DUPFD_CLOEXEC, 300);
    ASSERT_GE(high, 300);
#endif
    ASSERT_OK(mproc_conn_send_handle(ctl, high));
    memset(&it, 0, sizeof it);
    it.kind = MPROC_WAIT_HANDLE;
    it.handle = r.wait;
    ASSERT_EQ(mproc_wait(&it, 1, th_ms(20000)), 1);
    th_join_ok(p, 20000);
#if !defined(_WIN32)
    close((int)high);
#endif
    raw_close(&r);

    mproc_conn_destroy(ctl);
    mproc_conn_destroy(ctl_child);
    mproc_conn_destroy(c1);
    mproc_conn_destroy(c2);
    mproc_queue_destroy(q);
    mproc_lock_destroy(l);
    mproc_sem_destroy(sm);
    mproc_event_destroy(e);
    mproc_cond_destroy(cv);
    mproc_barrier_destroy(b);
    mproc_shm_destroy(m);
    return 0;
}

TEST(C16_missing_handles_are_an_error)
{
    mproc_conn *a, *b, *c, *d;
    mproc_lock *l, *many[70];
    mproc_value *v = NULL, *lst;
    intptr_t got = -1;
    void *bytes = NULL;
    size_t len = 0, i;
    int64_t k = 0;

    ASSERT_OK(mproc_pipe(&a, &b, true));
    ASSERT_OK(mproc_pipe(&c, &d, true));
    ASSERT_OK(mproc_lock_create(&l));
    ASSERT_ERR(mproc_conn_send_handle(NULL, 3), MPROC_EINVAL);
    ASSERT_ERR(mproc_conn_send_handle(a, -1), MPROC_EINVAL);
    ASSERT_ERR(mproc_conn_recv_handle(b, NULL, 0), MPROC_EINVAL);
    ASSERT_ERR(mproc_conn_recv_handle(NULL, &got, 0), MPROC_EINVAL);

    /* The bytes of a message with a handle, as the receiver got them
     * (recv_bytes: its descriptor is not kept), written again by someone
     * else: they name a handle that does not come. The table's values are
     * spoiled too, so that no platform finds one (docs/wire-format.md). */
    lst = MPROC_LIST(mproc_value_lock(l));
    ASSERT_OK(mproc_conn_send(a, lst));
    mproc_value_free(lst);
    ASSERT_OK(mproc_conn_recv_bytes_alloc(b, &bytes, &len, th_ms(5000)));
    ASSERT_GT(len, 32);
    ASSERT_EQ(memcmp(bytes, "MPH1", 4), 0);
    memset((unsigned char *)bytes + 24, 0x7f, 8);
    ASSERT_OK(mproc_conn_send_bytes(c, bytes, len));
    ASSERT_ERR(mproc_conn_recv(d, &v, th_ms(5000)), MPROC_EBADMSG);
    ASSERT_NULL(v);
    /* The pipe goes on. */
    lst = mproc_int(5);
    ASSERT_OK(mproc_conn_send(c, lst));
    mproc_value_free(lst);
    ASSERT_OK(mproc_conn_recv(d, &v, th_ms(5000)));
    ASSERT_OK(mproc_value_get_int(v, &k));
    ASSERT_EQ(k, 5);
    mproc_value_free(v);
    v = NULL;
    /* A value is no handle, and a handle no value: consumed, an error. */
    ASSERT_OK(mproc_conn_send_bytes(c, bytes, len));
    ASSERT_ERR(mproc_conn_recv_handle(d, &got, th_ms(5000)), MPROC_EBADMSG);
    mproc_free(bytes);
    lst = mproc_int(6);
    ASSERT_OK(mproc_conn_send(c, lst));
    mproc_value_free(lst);
    ASSERT_ERR(mproc_conn_recv_handle(d, &got, th_ms(5000)), MPROC_EBADMSG);
    {
        raw_ready r;
        raw_make(&r);
        ASSERT_OK(mproc_conn_send_handle(c, r.wait));
        ASSERT_ERR(mproc_conn_recv(d, &v, th_ms(5000)), MPROC_EBADMSG);
        ASSERT_NULL(v);
        raw_close(&r);
    }
    /* More OS handles than one message carries. */
    for (i = 0; i < 70; i++)
        ASSERT_OK(mproc_lock_create(&many[i]));
    lst = mproc_list_new();
    for (i = 0; i < 70; i++)
        ASSERT_OK(mproc_list_append(lst, mproc_value_lock(many[i])));
    ASSERT_ERR(mproc_conn_send(a, lst), MPROC_EINVAL);
    mproc_value_free(lst);
    ASSERT_EQ(mproc_conn_poll(b, 0), 0); /* nothing was sent */
    for (i = 0; i < 70; i++)
        mproc_lock_destroy(many[i]);
    mproc_lock_destroy(l);
    mproc_conn_destroy(a);
    mproc_conn_destroy(b);
    mproc_conn_destroy(c);
    mproc_conn_destroy(d);
    return 0;
}

/* A value with handles, or a raw handle, for a process of another user is
 * refused (POSIX, as root: a probe running as user 65534 connects to a
 * socket of this process, which adopts the connection). */
TEST(C16_handles_to_another_user_refused)
{
#if defined(_WIN32)
    /* tests/skip.h: no second user to run a probe as. */
    return 0;
#else
    struct sockaddr_un sa;
    socklen_t salen;
    mproc_conn *c, *x, *y;
    mproc_value *v;
    mproc_lock *l;
    pid_t pid;
    int srv, fd, status = 0;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    /* An abstract name (Linux), unique to this test process. */
    snprintf(sa.sun_path + 1, sizeof sa.sun_path - 1, "mproc-c16-%d",
             (int)getpid());
    salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
                        strlen(sa.sun_path + 1));
    srv = socket(AF_UNIX, SOCK_STREAM, 0);
    ASSERT(srv >= 0);
    ASSERT_EQ(bind(srv, (struct sockaddr *)&sa, salen), 0);
    ASSERT_EQ(listen(srv, 1), 0);
    pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        char byte;
        int s;
        if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
            _exit(2);
        s = socket(AF_UNIX, SOCK_STREAM, 0);
        if (s < 0 || connect(s, (struct sockaddr *)&sa, salen) != 0)
            _exit(3);
        /* Hold the connection until the test is done with it. */
        (void)read(s, &byte, 1);
        _exit(0);
    }
    fd = accept(srv, NULL, NULL);
    ASSERT(fd >= 0);
    ASSERT_OK(mproc_conn_adopt(&c, fd, true, true));
    ASSERT_OK(mproc_lock_create(&l));
    ASSERT_OK(mproc_pipe(&x, &y, true));
    v = MPROC_LIST(mproc_value_lock(l), mproc_value_conn(y));
    ASSERT_ERR(mproc_conn_send(c, v), MPROC_EPERM);
    mproc_value_free(v);
    ASSERT_ERR(mproc_conn_send_handle(c, srv), MPROC_EPERM);
    /* What has no handles still goes. */
    v = mproc_int(1);
    ASSERT_OK(mproc_conn_send(c, v));
    mproc_value_free(v);
    mproc_conn_destroy(c); /* the probe reads end-of-file and ends */
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT(WIFEXITED(status));
    ASSERT_EQ(WEXITSTATUS(status), 0);
    close(srv);
    mproc_lock_destroy(l);
    mproc_conn_destroy(x);
    mproc_conn_destroy(y);
    return 0;
#endif
}

/* ---------------------------------------------------------------------------
 * C17: adopting a connection of the program's own
 */

/* Receives a value on the end (argument 0) and sends it back doubled. */
static int t_c17_echo(const mproc_value *args)
{
    mproc_conn *c = NULL;
    mproc_value *v = NULL, *back;
    int64_t i = 0;
    int rc;
    CHILD_CHECK(mproc_value_get_conn(mproc_list_get(args, 0), &c) == 0, 2);
    CHILD_CHECK(mproc_conn_recv(c, &v, th_ms(20000)) == 0, 3);
    CHILD_CHECK(mproc_value_get_int(v, &i) == 0, 4);
    mproc_value_free(v);
    back = mproc_int(2 * i);
    rc = mproc_conn_send(c, back);
    mproc_value_free(back);
    return rc == 0 ? 0 : 5;
}

TEST(C17_adopt_descriptor)
{
    intptr_t raw[2], bad[8];
    mproc_conn *a = NULL, *b = NULL;
    mproc_value *v = NULL, *one;
    mproc_process *p;
    size_t i, nbad;
    int64_t got = 0;

    /* Bad input: nothing is adopted, nothing is closed. */
    ASSERT_ERR(mproc_conn_adopt(NULL, 3, true, true), MPROC_EINVAL);
    ASSERT_ERR(mproc_conn_adopt(&a, -1, true, true), MPROC_EINVAL);
    ASSERT_NULL(a);
    raw_pair(raw);
    ASSERT_ERR(mproc_conn_adopt(&a, raw[0], false, false), MPROC_EINVAL);
    ASSERT_EQ(raw_open(raw[0]), 1);
    nbad = raw_not_connections(bad);
    for (i = 0; i < nbad; i++) {
        ASSERT_ERR(mproc_conn_adopt(&a, bad[i], true, true), MPROC_EINVAL);
        ASSERT_EQ(raw_open(bad[i]), 1);
        raw_close_one(bad[i]);
        /* Closed now: still an error, never a crash. */
        ASSERT_ERR(mproc_conn_adopt(&a, bad[i], true, true), MPROC_EINVAL);
    }
    ASSERT_NULL(a);

    /* The pair becomes two working ends, which own the handles. */
    ASSERT_OK(mproc_conn_adopt(&a, raw[0], true, true));
    ASSERT_OK(mproc_conn_adopt(&b, raw[1], true, true));
    ASSERT_EQ(mproc_conn_readable(a), 1);
    ASSERT_EQ(mproc_conn_writable(a), 1);
    one = mproc_list_from(
        (mproc_value *const[]){mproc_int(42), mproc_none(), mproc_str("hello")},
        3);
    ASSERT_OK(mproc_conn_send(a, one));
    ASSERT_OK(mproc_conn_recv(b, &v, th_ms(5000)));
    ASSERT(mproc_value_equal(v, one));
    mproc_value_free(v);
    mproc_value_free(one);
    /* An adopted end travels to a child like any other. */
    p = th_start(t_c17_echo, MPROC_LIST(mproc_value_conn(b)));
    one = mproc_int(21);
    ASSERT_OK(mproc_conn_send(a, one));
    mproc_value_free(one);
    ASSERT_OK(mproc_conn_recv(a, &v, th_ms(20000)));
    ASSERT_OK(mproc_value_get_int(v, &got));
    ASSERT_EQ(got, 42);
    mproc_value_free(v);
    th_join_ok(p, 20000);
    /* A one-way adoption refuses the other direction. */
    {
        intptr_t r2[2];
        mproc_conn *ro;
        raw_pair(r2);
        ASSERT_OK(mproc_conn_adopt(&ro, r2[0], true, false));
        ASSERT_EQ(mproc_conn_writable(ro), 0);
        one = mproc_none();
        ASSERT_ERR(mproc_conn_send(ro, one), MPROC_EDIRECTION);
        mproc_value_free(one);
        mproc_conn_destroy(ro);
        raw_close_one(r2[1]);
    }
    mproc_conn_destroy(a);
    mproc_conn_destroy(b);
    return 0;
}

/* A record pair of the platform's own (raw_pair_of): 1 when made. */
static int raw_rec_pair(intptr_t h[2])
{
    return raw_pair_of(h, true);
}

/* One write of n bytes on a raw handle: one record of a record pair. */
static void raw_write(intptr_t h, const void *buf, size_t n)
{
#if defined(_WIN32)
    OVERLAPPED ov;
    DWORD done = 0;
    BOOL ok;
    memset(&ov, 0, sizeof ov);
    ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
    ok = WriteFile((HANDLE)h, buf, (DWORD)n, NULL, &ov);
    if (!ok && GetLastError() == ERROR_IO_PENDING)
        ok = GetOverlappedResult((HANDLE)h, &ov, &done, TRUE);
    else
        done = (DWORD)n;
    CloseHandle(ov.hEvent);
    ASSERT(ok);
    ASSERT_EQ(done, n);
#else
    ASSERT_EQ(send((int)h, buf, n, 0), (ssize_t)n);
#endif
}

/* The bytes in the channel now, not consumed (at most cap), or -1. */
static long raw_peek(intptr_t h, void *buf, size_t cap)
{
#if defined(_WIN32)
    DWORD got = 0;
    if (!PeekNamedPipe((HANDLE)h, buf, (DWORD)cap, &got, NULL, NULL))
        return -1;
    return (long)got;
#else
    ssize_t r = recv((int)h, buf, cap, MSG_PEEK | MSG_DONTWAIT);
    return r < 0 ? (errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1) : (long)r;
#endif
}

/* A Pipe frame of `len` payload bytes' header (docs/wire-format.md). */
static void frame_header(unsigned char *p, uint32_t len)
{
    uint32_t check = (len * 0x9E3779B1u) ^ 0x6D70726Fu;
    int i;
    for (i = 0; i < 4; i++) {
        p[i] = (unsigned char)(len >> (8 * i));
        p[4 + i] = (unsigned char)(check >> (8 * i));
    }
}

/* An adopted record channel (POSIX SOCK_SEQPACKET, a Windows message-mode
 * pipe) is one for the end: a frame is one record, taken whole, nothing of
 * the next message read (C13); a frame cut into two records is no frame of
 * a record channel (docs/wire-format.md): broken framing. A byte stream
 * would take the two parts as one message. */
TEST(C17_adopt_record_channel)
{
    intptr_t raw[2];
    mproc_conn *a = NULL;
    unsigned char f[16], back[16];
    size_t len = 0;

    if (!raw_rec_pair(raw))
        return 0; /* no record pairs here: the stream rows cover it */
    ASSERT_OK(mproc_conn_adopt(&a, raw[0], true, true));
    /* Two frames, one record each, queued; a receive takes the first and
     * leaves the second whole in the channel. */
    frame_header(f, 3);
    memcpy(f + 8, "abc", 3);
    raw_write(raw[1], f, 11);
    frame_header(f, 5);
    memcpy(f + 8, "defgh", 5);
    raw_write(raw[1], f, 13);
    ASSERT_OK(mproc_conn_recv_bytes(a, back, sizeof back, &len, th_ms(5000)));
    ASSERT_EQ(len, 3);
    ASSERT_MEM_EQ(back, "abc", 3);
    ASSERT_EQ(raw_peek(raw[0], back, sizeof back), 13);
    ASSERT_MEM_EQ(back, f, 13);
    ASSERT_OK(mproc_conn_recv_bytes(a, back, sizeof back, &len, th_ms(5000)));
    ASSERT_EQ(len, 5);
    ASSERT_MEM_EQ(back, "defgh", 5);
    /* The end's sends are one record per frame. */
    ASSERT_OK(mproc_conn_send_bytes(a, "xyz", 3));
    ASSERT_OK(mproc_conn_send_bytes(a, "uv", 2));
    ASSERT_EQ(raw_peek(raw[1], back, sizeof back), 11);
    /* A frame in two records: the end closes (MPROC_EFRAMING). */
    frame_header(f, 3);
    memcpy(f + 8, "abc", 3);
    raw_write(raw[1], f, 8);
    raw_write(raw[1], f + 8, 3);
    ASSERT_ERR(mproc_conn_recv_bytes(a, back, sizeof back, &len, th_ms(5000)),
               MPROC_EFRAMING);
    ASSERT_EQ(mproc_conn_closed(a), 1);
    mproc_conn_destroy(a);
    raw_close_one(raw[1]);
    return 0;
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

/* ---------------------------------------------------------------------------
 * Q20: queue shutdown
 */

/* On the queue (argument 0), blocks in 0 get, 1 put (of a full queue), 2
 * join, or 3 shuts it down (keeping the items); exit code 0 when the call
 * returned argument 2 (an MPROC code). */
static int t_q20_blocked(const mproc_value *args)
{
    mproc_queue *q = NULL;
    mproc_value *v = NULL, *one;
    int64_t what = th_arg_int(args, 1), want = th_arg_int(args, 2);
    int rc;
    CHILD_CHECK(mproc_value_get_queue(mproc_list_get(args, 0), &q) == 0, 2);
    if (what == 0) {
        rc = mproc_queue_get(q, &v, MPROC_FOREVER);
        mproc_value_free(v);
    } else if (what == 1) {
        one = mproc_int(1);
        rc = mproc_queue_put(q, one, MPROC_FOREVER);
        mproc_value_free(one);
    } else if (what == 2) {
        rc = mproc_queue_join(q, MPROC_FOREVER);
    } else {
        rc = mproc_queue_shutdown(q, false);
    }
    return rc == want ? 0 : 3;
}

static mproc_process *q20_start(mproc_queue *q, int what, int want)
{
    return th_start(
        t_q20_blocked,
        MPROC_LIST(mproc_value_queue(q), mproc_int(what), mproc_int(want)));
}

static void q20_put(mproc_queue *q, int64_t i)
{
    mproc_value *v = mproc_int(i);
    ASSERT_OK(mproc_queue_put(q, v, 0));
    mproc_value_free(v);
}

static int64_t q20_get(mproc_queue *q)
{
    mproc_value *v = NULL;
    int64_t i = -1;
    ASSERT_OK(mproc_queue_get(q, &v, th_ms(5000)));
    ASSERT_OK(mproc_value_get_int(v, &i));
    mproc_value_free(v);
    return i;
}

TEST(Q20_queue_shutdown)
{
    mproc_queue *q, *full, *j;
    mproc_process *pg, *pp, *pj;
    mproc_value *v = NULL, *one = mproc_int(9);
    mproc_wait_item it;
    void *buf = NULL;
    size_t len = 0;
    int64_t t0;

    ASSERT_ERR(mproc_queue_shutdown(NULL, false), MPROC_EINVAL);

    /* Not immediate. Waiters are released: a get on an empty queue, a put
     * on a full one (both MPROC_ESHUTDOWN). */
    ASSERT_OK(mproc_queue_create(&q, 0));
    ASSERT_OK(mproc_queue_create(&full, 1));
    q20_put(full, 0);
    pg = q20_start(q, 0, MPROC_ESHUTDOWN);
    pp = q20_start(full, 1, MPROC_ESHUTDOWN);
    th_sleep_ms(th_ms(300));
    ASSERT_EQ(mproc_process_is_alive(pg), 1);
    ASSERT_EQ(mproc_process_is_alive(pp), 1);
    t0 = th_now_ms();
    ASSERT_OK(mproc_queue_shutdown(q, false));
    ASSERT_OK(mproc_queue_shutdown(full, false));
    th_join_ok(pg, 10000);
    th_join_ok(pp, 10000);
    ASSERT_LT(th_now_ms() - t0, th_ms(5000));
    /* The full queue keeps its item for the gets, then fails at once. */
    ASSERT_EQ(q20_get(full), 0);
    ASSERT_ERR(mproc_queue_get(full, &v, MPROC_FOREVER), MPROC_ESHUTDOWN);
    ASSERT_ERR(mproc_queue_get(full, &v, 0), MPROC_ESHUTDOWN);
    ASSERT_ERR(mproc_queue_get_bytes(full, &buf, &len, 0), MPROC_ESHUTDOWN);
    ASSERT_ERR(mproc_queue_put(full, one, 0), MPROC_ESHUTDOWN);
    ASSERT_ERR(mproc_queue_put_bytes(full, "x", 1, MPROC_FOREVER),
               MPROC_ESHUTDOWN);
    /* Shutting down again changes nothing; a shut-down queue is ready for
     * mproc_wait (a get would not wait). */
    ASSERT_OK(mproc_queue_shutdown(q, false));
    memset(&it, 0, sizeof it);
    it.kind = MPROC_WAIT_QUEUE;
    it.queue = q;
    ASSERT_EQ(mproc_wait(&it, 1, 0), 1);
    mproc_queue_destroy(q);
    mproc_queue_destroy(full);

    /* A shutdown by another process: the items drain in order, then gets
     * fail; puts fail at once. */
    ASSERT_OK(mproc_queue_create(&q, 0));
    q20_put(q, 1);
    q20_put(q, 2);
    q20_put(q, 3);
    th_join_ok(q20_start(q, 3, 0), 20000);
    ASSERT_ERR(mproc_queue_put(q, one, MPROC_FOREVER), MPROC_ESHUTDOWN);
    ASSERT_EQ(mproc_queue_qsize(q), 3);
    ASSERT_EQ(q20_get(q), 1);
    ASSERT_EQ(q20_get(q), 2);
    ASSERT_EQ(q20_get(q), 3);
    ASSERT_ERR(mproc_queue_get(q, &v, th_ms(5000)), MPROC_ESHUTDOWN);
    mproc_queue_destroy(q);

    /* Joinable, not immediate: a join waits for the items left until they
     * are taken and done, then is released. */
    ASSERT_OK(mproc_queue_create_joinable(&j, 0));
    q20_put(j, 1);
    q20_put(j, 2);
    pj = q20_start(j, 2, 0);
    ASSERT_OK(mproc_queue_shutdown(j, false));
    ASSERT_ERR(mproc_queue_join(j, 100), MPROC_ETIMEDOUT);
    th_sleep_ms(th_ms(200));
    ASSERT_EQ(mproc_process_is_alive(pj), 1);
    ASSERT_EQ(q20_get(j), 1);
    ASSERT_EQ(q20_get(j), 2);
    ASSERT_OK(mproc_queue_task_done(j));
    ASSERT_OK(mproc_queue_task_done(j));
    th_join_ok(pj, 10000);
    ASSERT_OK(mproc_queue_join(j, 0));
    mproc_queue_destroy(j);

    /* Immediate: the items go, qsize 0, gets fail at once, a blocked join
     * is released (dropped items count as done), puts fail. */
    ASSERT_OK(mproc_queue_create_joinable(&j, 0));
    q20_put(j, 1);
    q20_put(j, 2);
    q20_put(j, 3);
    ASSERT_EQ(q20_get(j), 1); /* taken: join waits for its task_done */
    pj = q20_start(j, 2, 0);
    th_sleep_ms(th_ms(200));
    ASSERT_OK(mproc_queue_shutdown(j, true));
    ASSERT_EQ(mproc_queue_qsize(j), 0);
    ASSERT_EQ(mproc_queue_empty(j), 1);
    ASSERT_ERR(mproc_queue_get(j, &v, MPROC_FOREVER), MPROC_ESHUTDOWN);
    ASSERT_ERR(mproc_queue_put(j, one, 0), MPROC_ESHUTDOWN);
    ASSERT_EQ(mproc_process_is_alive(pj), 1);
    ASSERT_OK(mproc_queue_task_done(j));
    th_join_ok(pj, 10000);
    ASSERT_ERR(mproc_queue_task_done(j), MPROC_ERANGE);
    mproc_queue_destroy(j);

    /* Not immediate, then immediate: the second drops what the first
     * kept. */
    ASSERT_OK(mproc_queue_create(&q, 0));
    q20_put(q, 1);
    q20_put(q, 2);
    ASSERT_OK(mproc_queue_shutdown(q, false));
    ASSERT_EQ(mproc_queue_qsize(q), 2);
    ASSERT_OK(mproc_queue_shutdown(q, true));
    ASSERT_EQ(mproc_queue_qsize(q), 0);
    ASSERT_ERR(mproc_queue_get(q, &v, 0), MPROC_ESHUTDOWN);
    mproc_queue_destroy(q);
    mproc_value_free(one);
    return 0;
}

/* ---------------------------------------------------------------------------
 * L17: locked() and owner inspection of Lock and RLock
 */

typedef struct l17_probe {
    mproc_lock *l;
    mproc_rlock *rl;
    int kind;
    int64_t pid;
    int64_t count;
} l17_probe;

static void *l17_from_thread(void *arg)
{
    l17_probe *p = arg;
    if (p->l != NULL) {
        p->kind = mproc_lock_owner(p->l, &p->pid);
    } else {
        p->kind = mproc_rlock_owner(p->rl, &p->pid);
        p->count = mproc_rlock_count(p->rl);
    }
    return NULL;
}

/* Takes the Lock (argument 0) or the RLock (argument 1) `n` times
 * (argument 2), sets the event (argument 3), and waits for the event
 * (argument 4) before releasing; with argument 5 true it returns holding
 * them (its death then releases them). */
static int t_l17_holder(const mproc_value *args)
{
    mproc_lock *l = NULL;
    mproc_rlock *rl = NULL;
    mproc_event *held = NULL, *go = NULL;
    int64_t i, n = th_arg_int(args, 2);
    bool keep = false;
    (void)mproc_value_get_lock(mproc_list_get(args, 0), &l);
    (void)mproc_value_get_rlock(mproc_list_get(args, 1), &rl);
    CHILD_CHECK(mproc_value_get_event(mproc_list_get(args, 3), &held) == 0, 2);
    CHILD_CHECK(mproc_value_get_event(mproc_list_get(args, 4), &go) == 0, 3);
    CHILD_CHECK(mproc_value_get_bool(mproc_list_get(args, 5), &keep) == 0, 4);
    for (i = 0; i < n; i++) {
        if (l != NULL)
            CHILD_CHECK(mproc_lock_acquire(l, th_ms(10000)) == 0, 5);
        else
            CHILD_CHECK(mproc_rlock_acquire(rl, th_ms(10000)) == 0, 6);
    }
    CHILD_CHECK(mproc_event_set(held) == 0, 7);
    CHILD_CHECK(mproc_event_wait(go, th_ms(20000)) == 0, 8);
    if (keep)
        return 0;
    for (i = 0; i < n; i++) {
        if (l != NULL)
            CHILD_CHECK(mproc_lock_release(l) == 0, 9);
        else
            CHILD_CHECK(mproc_rlock_release(rl) == 0, 10);
    }
    return 0;
}

/* A child holds l (or rl, n times) until told; returns it, with the
 * events in *held and *go. */
static mproc_process *l17_hold_in_child(mproc_lock *l, mproc_rlock *rl, int n,
                                        bool keep, mproc_event **go)
{
    mproc_event *held = NULL;
    mproc_process *p;
    ASSERT_OK(mproc_event_create(&held));
    ASSERT_OK(mproc_event_create(go));
    p = th_start(t_l17_holder,
                 MPROC_LIST(l != NULL ? mproc_value_lock(l) : mproc_none(),
                            rl != NULL ? mproc_value_rlock(rl) : mproc_none(),
                            mproc_int(n), mproc_value_event(held),
                            mproc_value_event(*go), mproc_bool(keep)));
    ASSERT_OK(mproc_event_wait(held, th_ms(20000)));
    mproc_event_destroy(held);
    return p;
}

TEST(L17_locked_and_owner)
{
    mproc_lock *l;
    mproc_rlock *rl;
    mproc_event *go;
    mproc_process *p;
    l17_probe probe;
    pthread_t t;
    int64_t pid = -1, me = mproc_process_pid(mproc_current_process());

    ASSERT_ERR(mproc_lock_locked(NULL), MPROC_EINVAL);
    ASSERT_ERR(mproc_lock_owner(NULL, &pid), MPROC_EINVAL);
    ASSERT_ERR(mproc_rlock_locked(NULL), MPROC_EINVAL);
    ASSERT_ERR(mproc_rlock_owner(NULL, &pid), MPROC_EINVAL);
    ASSERT_ERR(mproc_rlock_count(NULL), MPROC_EINVAL);

    /* Lock: free, the caller's, another thread's view of the caller. */
    ASSERT_OK(mproc_lock_create(&l));
    ASSERT_EQ(mproc_lock_locked(l), 0);
    ASSERT_EQ(mproc_lock_owner(l, &pid), MPROC_OWNER_NONE);
    ASSERT_EQ(pid, 0);
    ASSERT_OK(mproc_lock_acquire(l, 0));
    ASSERT_EQ(mproc_lock_locked(l), 1);
    ASSERT_EQ(mproc_lock_owner(l, &pid), MPROC_OWNER_CALLER);
    ASSERT_EQ(pid, me);
    ASSERT_EQ(mproc_lock_owner(l, NULL), MPROC_OWNER_CALLER);
    memset(&probe, 0, sizeof probe);
    probe.l = l;
    ASSERT_EQ(pthread_create(&t, NULL, l17_from_thread, &probe), 0);
    ASSERT_EQ(pthread_join(t, NULL), 0);
    ASSERT_EQ(probe.kind, MPROC_OWNER_THREAD);
    ASSERT_EQ(probe.pid, me);
    /* Inspection took nothing: the lock is still held, and still ours. */
    ASSERT_ERR(mproc_lock_acquire(l, 0), MPROC_EBUSY);
    ASSERT_OK(mproc_lock_release(l));
    ASSERT_EQ(mproc_lock_locked(l), 0);

    /* Held by another process, with its pid. */
    p = l17_hold_in_child(l, NULL, 1, false, &go);
    ASSERT_EQ(mproc_lock_locked(l), 1);
    ASSERT_EQ(mproc_lock_owner(l, &pid), MPROC_OWNER_PROCESS);
    ASSERT_EQ(pid, mproc_process_pid(p));
    ASSERT_OK(mproc_event_set(go));
    th_join_ok(p, 20000);
    mproc_event_destroy(go);
    ASSERT_EQ(mproc_lock_locked(l), 0);

    /* An owner that ended holding it: free to look at, and the next
     * acquire still learns of the death. */
    p = l17_hold_in_child(l, NULL, 1, true, &go);
    ASSERT_OK(mproc_event_set(go));
    th_join_ok(p, 20000);
    mproc_event_destroy(go);
    ASSERT_EQ(mproc_lock_locked(l), 0);
    ASSERT_EQ(mproc_lock_owner(l, &pid), MPROC_OWNER_NONE);
    ASSERT_ERR(mproc_lock_acquire(l, th_ms(5000)), MPROC_EOWNERDEAD);
    ASSERT_OK(mproc_lock_release(l));
    mproc_lock_destroy(l);

    /* RLock: the count, in this thread, another, another process. */
    ASSERT_OK(mproc_rlock_create(&rl));
    ASSERT_EQ(mproc_rlock_count(rl), 0);
    ASSERT_EQ(mproc_rlock_owner(rl, &pid), MPROC_OWNER_NONE);
    ASSERT_OK(mproc_rlock_acquire(rl, 0));
    ASSERT_OK(mproc_rlock_acquire(rl, 0));
    ASSERT_OK(mproc_rlock_acquire(rl, 0));
    ASSERT_EQ(mproc_rlock_count(rl), 3);
    ASSERT_EQ(mproc_rlock_locked(rl), 1);
    ASSERT_EQ(mproc_rlock_owner(rl, &pid), MPROC_OWNER_CALLER);
    ASSERT_EQ(pid, me);
    memset(&probe, 0, sizeof probe);
    probe.rl = rl;
    ASSERT_EQ(pthread_create(&t, NULL, l17_from_thread, &probe), 0);
    ASSERT_EQ(pthread_join(t, NULL), 0);
    ASSERT_EQ(probe.kind, MPROC_OWNER_THREAD);
    ASSERT_EQ(probe.pid, me);
    ASSERT_EQ(probe.count, 3);
    ASSERT_OK(mproc_rlock_release(rl));
    ASSERT_EQ(mproc_rlock_count(rl), 2);
    ASSERT_OK(mproc_rlock_release(rl));
    ASSERT_OK(mproc_rlock_release(rl));
    ASSERT_EQ(mproc_rlock_count(rl), 0);
    ASSERT_EQ(mproc_rlock_locked(rl), 0);
    p = l17_hold_in_child(NULL, rl, 2, false, &go);
    ASSERT_EQ(mproc_rlock_locked(rl), 1);
    ASSERT_EQ(mproc_rlock_owner(rl, &pid), MPROC_OWNER_PROCESS);
    ASSERT_EQ(pid, mproc_process_pid(p));
    ASSERT_EQ(mproc_rlock_count(rl), 2);
    ASSERT_OK(mproc_event_set(go));
    th_join_ok(p, 20000);
    mproc_event_destroy(go);
    ASSERT_EQ(mproc_rlock_owner(rl, &pid), MPROC_OWNER_NONE);
    ASSERT_EQ(mproc_rlock_count(rl), 0);
    mproc_rlock_destroy(rl);
    return 0;
}

/* ---------------------------------------------------------------------------
 * L18: Condition.wait_for
 */

typedef struct l18_state {
    volatile int64_t *counter; /* in shared memory */
    int64_t want;
    int calls;
} l18_state;

static bool l18_reached(void *ctx)
{
    l18_state *s = ctx;
    s->calls++;
    return *s->counter >= s->want;
}

static bool l18_true(void *ctx)
{
    (void)ctx;
    return true;
}

/* Under the condition (argument 0), sets the counter in the shared memory
 * (argument 1) to 1, 2, ... up to argument 2, notifying all each time,
 * every argument 3 ms; with argument 4 true it only notifies, never
 * changing the counter, for as long. */
static int t_l18_notifier(const mproc_value *args)
{
    mproc_cond *c = NULL;
    mproc_shm *m = NULL;
    int64_t i, n = th_arg_int(args, 2), gap = th_arg_int(args, 3);
    bool only = false;
    volatile int64_t *counter;
    CHILD_CHECK(mproc_value_get_cond(mproc_list_get(args, 0), &c) == 0, 2);
    CHILD_CHECK(mproc_value_get_shm(mproc_list_get(args, 1), &m) == 0, 3);
    CHILD_CHECK(mproc_value_get_bool(mproc_list_get(args, 4), &only) == 0, 4);
    counter = mproc_shm_ptr(m);
    for (i = 1; i <= n; i++) {
        th_sleep_ms((int)gap);
        CHILD_CHECK(MPROC_ACQUIRED(mproc_cond_acquire(c, th_ms(10000))), 5);
        if (!only)
            *counter = i;
        CHILD_CHECK(mproc_cond_notify_all(c) == 0, 6);
        CHILD_CHECK(mproc_cond_release(c) == 0, 7);
    }
    return 0;
}

TEST(L18_cond_wait_for)
{
    mproc_cond *c;
    mproc_shm *m;
    mproc_process *p;
    l18_state st;
    int64_t t0, dt;

    ASSERT_OK(mproc_cond_create(&c));
    ASSERT_OK(mproc_shm_create(&m, sizeof(int64_t)));
    st.counter = mproc_shm_ptr(m);
    st.want = 5;
    st.calls = 0;
    /* Bad input and state. */
    ASSERT_ERR(mproc_cond_wait_for(NULL, l18_true, NULL, 0), MPROC_EINVAL);
    ASSERT_OK(mproc_cond_acquire(c, 0));
    ASSERT_ERR(mproc_cond_wait_for(c, NULL, NULL, 0), MPROC_EINVAL);
    ASSERT_ERR(mproc_cond_wait_for(c, l18_true, NULL, -7), MPROC_EINVAL);
    ASSERT_OK(mproc_cond_release(c));
    ASSERT_ERR(mproc_cond_wait_for(c, l18_true, NULL, 0), MPROC_ENOTOWNER);

    ASSERT_OK(mproc_cond_acquire(c, 0));
    /* True at once: no wait, even forever. */
    ASSERT_EQ(mproc_cond_wait_for(c, l18_true, NULL, MPROC_FOREVER), 1);
    /* False with timeout 0: evaluated, no wait. */
    ASSERT_EQ(mproc_cond_wait_for(c, l18_reached, &st, 0), 0);
    ASSERT_EQ(st.calls, 1);

    /* True once a child has counted to 5, re-checked after each of its
     * notifies; the lock is held on return. */
    st.calls = 0;
    p = th_start(t_l18_notifier,
                 MPROC_LIST(mproc_value_cond(c), mproc_value_shm(m),
                            mproc_int(5), mproc_int(20), mproc_bool(false)));
    ASSERT_EQ(mproc_cond_wait_for(c, l18_reached, &st, th_ms(20000)), 1);
    ASSERT_EQ(*st.counter, 5);
    ASSERT_GE(st.calls, 2);
    ASSERT_EQ(mproc_cond_notify(c, 0), 0); /* still held */
    ASSERT_OK(mproc_cond_release(c));
    th_join_ok(p, 20000);

    /* Notifies that leave the predicate false do not restart the
     * timeout: 400 ms from the call while a child notifies every 20 ms for
     * much longer. */
    *st.counter = 0;
    st.calls = 0;
    ASSERT_OK(mproc_cond_acquire(c, 0));
    p = th_start(t_l18_notifier,
                 MPROC_LIST(mproc_value_cond(c), mproc_value_shm(m),
                            mproc_int(th_ms(6000) / 20), mproc_int(20),
                            mproc_bool(true)));
    t0 = th_now_ms();
    ASSERT_EQ(mproc_cond_wait_for(c, l18_reached, &st, 400), 0);
    dt = th_now_ms() - t0;
    ASSERT_GE(dt, 400);
    ASSERT_LT(dt, 400 + th_ms(1500));
    ASSERT_GE(st.calls, 3); /* re-checked after the notifies */
    ASSERT_OK(mproc_cond_release(c));
    ASSERT_OK(mproc_process_kill(p));
    ASSERT_OK(mproc_process_join(p, th_ms(20000)));
    mproc_process_destroy(p);
    mproc_cond_destroy(c);
    mproc_shm_destroy(m);
    return 0;
}

/* ---------------------------------------------------------------------------
 * L19-L20: barrier action and default timeout
 */

/* Counters of L19 in shared memory; every process points at them. */
typedef struct l19_counts {
    volatile int64_t actions;
    volatile int64_t returned;
    volatile int64_t early; /* an action that saw a party already out */
} l19_counts;

static l19_counts *l19;
static volatile int l19_parties;

static int l19_action(void)
{
    if (l19 == NULL)
        return 1;
    /* No party of this cycle has left yet. */
    if (l19->returned != l19->actions * l19_parties)
        l19->early++;
    l19->actions++;
    return 0;
}

static int l19_fail(void)
{
    return 7;
}

/* A party of L19: `cycles` (argument 2) waits on the barrier (argument 0)
 * with the counters in the shared memory (argument 1); 0 when each wait
 * gave an index, else 10 + the cycle. */
static int t_l19_party(const mproc_value *args)
{
    mproc_barrier *b = NULL;
    mproc_shm *m = NULL;
    int64_t i, cycles = th_arg_int(args, 2);
    CHILD_CHECK(mproc_value_get_barrier(mproc_list_get(args, 0), &b) == 0, 2);
    CHILD_CHECK(mproc_value_get_shm(mproc_list_get(args, 1), &m) == 0, 3);
    l19 = mproc_shm_ptr(m);
    l19_parties = 3;
    for (i = 0; i < cycles; i++) {
        int rc = mproc_barrier_wait(b, th_ms(20000));
        CHILD_CHECK(rc >= 0 && rc < 3, (int)(10 + i));
        __atomic_fetch_add(&l19->returned, 1, __ATOMIC_SEQ_CST);
    }
    return 0;
}

/* Waits once on the barrier (argument 0); returns 0 for MPROC_EBROKEN. */
static int t_l19_broken(const mproc_value *args)
{
    mproc_barrier *b = NULL;
    CHILD_CHECK(mproc_value_get_barrier(mproc_list_get(args, 0), &b) == 0, 2);
    CHILD_CHECK(mproc_barrier_wait(b, th_ms(20000)) == MPROC_EBROKEN, 3);
    return 0;
}

TEST(L19_barrier_action)
{
    mproc_barrier *b = NULL;
    mproc_shm *m;
    mproc_process *p[2];
    int64_t i;
    int k;

    ASSERT_ERR(mproc_barrier_create_ex(NULL, 2, l19_action, MPROC_FOREVER),
               MPROC_EINVAL);
    ASSERT_ERR(mproc_barrier_create_ex(&b, 0, l19_action, MPROC_FOREVER),
               MPROC_EINVAL);
    ASSERT_ERR(mproc_barrier_create_ex(&b, 2, l19_action, -5), MPROC_EINVAL);
    ASSERT_NULL(b);

    /* Three parties, two of them children, five cycles: the action runs
     * once per cycle, before any party of the cycle returns, in whichever
     * process completes the cycle (a spawned child finds it as a target). */
    ASSERT_OK(mproc_shm_create(&m, sizeof(l19_counts)));
    l19 = mproc_shm_ptr(m);
    l19_parties = 3;
    ASSERT_OK(mproc_barrier_create_ex(&b, 3, l19_action, MPROC_FOREVER));
    for (k = 0; k < 2; k++)
        p[k] =
            th_start(t_l19_party, MPROC_LIST(mproc_value_barrier(b),
                                             mproc_value_shm(m), mproc_int(5)));
    for (i = 0; i < 5; i++) {
        int rc = mproc_barrier_wait(b, th_ms(20000));
        ASSERT(rc >= 0 && rc < 3);
        __atomic_fetch_add(&l19->returned, 1, __ATOMIC_SEQ_CST);
    }
    for (k = 0; k < 2; k++)
        th_join_ok(p[k], 20000);
    ASSERT_EQ(l19->actions, 5);
    ASSERT_EQ(l19->early, 0);
    ASSERT_EQ(l19->returned, 15);
    mproc_barrier_destroy(b);

    /* A failing action breaks the barrier for every party, the one that
     * ran it too; reset mends it. */
    ASSERT_OK(mproc_barrier_create_ex(&b, 2, l19_fail, MPROC_FOREVER));
    p[0] = th_start(t_l19_broken, MPROC_LIST(mproc_value_barrier(b)));
    ASSERT_ERR(mproc_barrier_wait(b, th_ms(20000)), MPROC_EBROKEN);
    th_join_ok(p[0], 20000);
    ASSERT_EQ(mproc_barrier_broken(b), 1);
    ASSERT_OK(mproc_barrier_reset(b));
    ASSERT_EQ(mproc_barrier_broken(b), 0);
    mproc_barrier_destroy(b);
    mproc_shm_destroy(m);
    l19 = NULL;
    return 0;
}

/* Waits alone with the default timeout on the barrier (argument 0): 0
 * when it broke after at least argument 1 ms. */
static int t_l20_alone(const mproc_value *args)
{
    mproc_barrier *b = NULL;
    int64_t t0;
    CHILD_CHECK(mproc_value_get_barrier(mproc_list_get(args, 0), &b) == 0, 2);
    t0 = th_now_ms();
    CHILD_CHECK(mproc_barrier_wait(b, MPROC_BARRIER_DEFAULT) == MPROC_EBROKEN,
                3);
    CHILD_CHECK(th_now_ms() - t0 >= th_arg_int(args, 1), 4);
    return 0;
}

static void *l20_wait_default(void *arg)
{
    static int rc;
    rc = mproc_barrier_wait((mproc_barrier *)arg, MPROC_BARRIER_DEFAULT);
    return &rc;
}

TEST(L20_barrier_default_timeout)
{
    mproc_barrier *b;
    pthread_t t;
    void *res;
    int64_t t0, dt;

    /* A wait without a timeout of its own uses the barrier's: it breaks
     * after 300 ms. */
    ASSERT_OK(mproc_barrier_create_ex(&b, 2, NULL, 300));
    t0 = th_now_ms();
    ASSERT_ERR(mproc_barrier_wait(b, MPROC_BARRIER_DEFAULT), MPROC_EBROKEN);
    dt = th_now_ms() - t0;
    ASSERT_GE(dt, 300);
    ASSERT_LT(dt, 300 + th_ms(3000));
    ASSERT_OK(mproc_barrier_reset(b));
    /* A wait's own timeout wins over the default. */
    t0 = th_now_ms();
    ASSERT_ERR(mproc_barrier_wait(b, 50), MPROC_EBROKEN);
    ASSERT_LT(th_now_ms() - t0, 300);
    ASSERT_OK(mproc_barrier_reset(b));
    /* The default travels with the barrier to a child. */
    th_join_ok(th_start(t_l20_alone,
                        MPROC_LIST(mproc_value_barrier(b), mproc_int(300))),
               20000);
    mproc_barrier_destroy(b);
    ASSERT_ERR(mproc_barrier_wait(NULL, MPROC_BARRIER_DEFAULT), MPROC_EINVAL);

    /* Without a default, MPROC_BARRIER_DEFAULT waits without limit. */
    ASSERT_OK(mproc_barrier_create(&b, 2));
    ASSERT_ERR(mproc_barrier_wait(b, -3), MPROC_EINVAL);
    ASSERT_EQ(pthread_create(&t, NULL, l20_wait_default, b), 0);
    th_sleep_ms(th_ms(400));
    ASSERT_EQ(mproc_barrier_n_waiting(b), 1);
    ASSERT_GE(mproc_barrier_wait(b, th_ms(20000)), 0);
    ASSERT_EQ(pthread_join(t, &res), 0);
    ASSERT_GE(*(int *)res, 0);
    mproc_barrier_destroy(b);
    return 0;
}
