/*
 * Message benchmarks: Pipe round trip and one-way throughput against a raw
 * socketpair with the same framing, and Queue throughput.
 *
 * The raw baseline frames a message as a 4-byte length and the payload,
 * sent with one write; its reader buffers (one read can deliver many small
 * messages) and reads a large payload straight into the caller's buffer.
 * That is what a careful hand-written message pipe does, so the ratio shows
 * what the library's own layers cost.
 */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define BIG ((size_t)64 * 1024)
/* The raw reader's buffer: many small messages per read, and a large
 * payload mostly read straight into the caller's buffer. */
#define FRAMER_BUF ((size_t)16 * 1024)
/* Timed loops block without a timeout, as the raw and Python baselines do
 * (the sandbox's deadline guards against a hang); the "mproc-timeout" case
 * shows what a finite timeout adds. */
#define WAIT MPROC_FOREVER
#define FINITE_TIMEOUT_MS 30000

typedef struct rtt_arg {
    bool same_cpu;
    int timeout_ms; /* of every receive */
} rtt_arg;

typedef struct tput_arg {
    uint32_t size;
} tput_arg;

typedef struct queue_arg {
    int producers, consumers;
    int timeout_ms; /* of every put and get */
} queue_arg;

static const rtt_arg rtt_2cpu = {false, WAIT};
static const rtt_arg rtt_1cpu = {true, WAIT};
static const rtt_arg rtt_1cpu_timeout = {true, FINITE_TIMEOUT_MS};
static const tput_arg tput_small = {64};
static const tput_arg tput_big = {BIG};
static const queue_arg queue_1_1 = {1, 1, WAIT};
static const queue_arg queue_2_2 = {2, 2, WAIT};
static const queue_arg queue_1_1_timeout = {1, 1, FINITE_TIMEOUT_MS};

/* Pins a raw child; it cannot report through the round's result. */
static void child_pin(int cpu)
{
    if (bench_set_affinity(cpu) < 0)
        _exit(3);
}

static void *xmalloc(size_t n)
{
    void *p = calloc(1, n);
    if (!p)
        bench_fail(BENCH_ERROR, "out of memory");
    return p;
}

static void need_two_cpus(const rtt_arg *a)
{
    if (!a->same_cpu && bench_ncpu_usable < 2)
        bench_fail(BENCH_ERROR, "needs 2 usable CPUs");
}

static void make_socketpair(int sv[2])
{
    BENCH_SYS(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
}

/* ------------------------------------------------------------------------
 * Round trip of a 64-byte message: the parent sends, the child echoes.
 */

#define RTT_SIZE 64

static long rtt_warm(void)
{
    return 1000;
}

/* A round trip across CPUs costs two cross-CPU wake-ups (tens of us on a
 * virtual machine), on one CPU two context switches (a few us). */
static long rtt_n(const rtt_arg *a)
{
    return a->same_cpu ? bench_n(40000, 10000) : bench_n(10000, 3000);
}

static void raw_rtt(bench_result *r, const void *arg)
{
    const rtt_arg *a = arg;
    long warm = rtt_warm(), n = rtt_n(a);
    unsigned char msg[RTT_SIZE], back[RTT_SIZE];
    bench_framer f;
    int sv[2];
    pid_t pid;
    double t0 = 0;

    need_two_cpus(a);
    memset(msg, 'x', sizeof msg);
    make_socketpair(sv);
    bench_pin(bench_cpu[0]);
    pid = fork();
    if (pid < 0)
        bench_fail_errno("fork");
    if (pid == 0) {
        unsigned char buf[RTT_SIZE];
        bench_framer cf;
        close(sv[0]);
        if (!a->same_cpu)
            child_pin(bench_cpu[1]);
        bench_framer_init(&cf, sv[1], 4096);
        for (long i = 0; i < warm + n; i++) {
            long len = bench_frame_recv(&cf, buf, sizeof buf);
            if (len < 0 || bench_frame_send(sv[1], buf, (uint32_t)len) < 0)
                _exit(1);
        }
        _exit(0);
    }
    close(sv[1]);
    bench_framer_init(&f, sv[0], 4096);
    for (long i = 0; i < warm + n; i++) {
        if (i == warm)
            t0 = bench_now();
        if (bench_frame_send(sv[0], msg, RTT_SIZE) < 0 ||
            bench_frame_recv(&f, back, sizeof back) != RTT_SIZE)
            bench_fail(BENCH_ERROR, "raw echo failed");
    }
    r->value[0] = (bench_now() - t0) / (double)n * 1e6;
    bench_framer_free(&f);
    close(sv[0]);
    bench_waitpid_ok(pid);
}

static int pin_self(int64_t cpu)
{
    return cpu < 0 ? 0 : bench_set_affinity((int)cpu);
}

/* args: [conn, count, cpu or -1, receive timeout] */
static int echo_target(const mproc_value *args)
{
    mproc_conn *c;
    int64_t n, cpu, timeout;
    unsigned char buf[BIG];
    if (mproc_value_get_conn(mproc_list_get(args, 0), &c) < 0 ||
        mproc_value_get_int(mproc_list_get(args, 1), &n) < 0 ||
        mproc_value_get_int(mproc_list_get(args, 2), &cpu) < 0 ||
        mproc_value_get_int(mproc_list_get(args, 3), &timeout) < 0)
        return 2;
    if (pin_self(cpu) < 0)
        return 3;
    for (int64_t i = 0; i < n; i++) {
        size_t len;
        if (mproc_conn_recv_bytes(c, buf, sizeof buf, &len, (int)timeout) < 0 ||
            mproc_conn_send_bytes(c, buf, len) < 0)
            return 1;
    }
    return 0;
}

/* The same with typed values (the codec on both sides): args as above. */
static int echo_value_target(const mproc_value *args)
{
    mproc_conn *c;
    int64_t n, cpu, timeout;
    if (mproc_value_get_conn(mproc_list_get(args, 0), &c) < 0 ||
        mproc_value_get_int(mproc_list_get(args, 1), &n) < 0 ||
        mproc_value_get_int(mproc_list_get(args, 2), &cpu) < 0 ||
        mproc_value_get_int(mproc_list_get(args, 3), &timeout) < 0)
        return 2;
    if (pin_self(cpu) < 0)
        return 3;
    for (int64_t i = 0; i < n; i++) {
        mproc_value *v = NULL;
        int rc = mproc_conn_recv(c, &v, (int)timeout);
        if (rc < 0)
            return 1;
        rc = mproc_conn_send(c, v);
        mproc_value_free(v);
        if (rc < 0)
            return 1;
    }
    return 0;
}

/* Starts `target` with [child end, count, extra, timeout] over a new duplex
 * pipe and returns the parent's end. */
static mproc_process *start_with_pipe(mproc_target target, mproc_conn **mine,
                                      int64_t count, int64_t extra,
                                      int timeout_ms)
{
    mproc_conn *theirs = NULL;
    mproc_process *p;
    mproc_value *args;
    BENCH_MPROC(mproc_pipe(mine, &theirs, true));
    args = MPROC_LIST(mproc_value_conn(theirs), mproc_int(count),
                      mproc_int(extra), mproc_int(timeout_ms));
    if (!args)
        bench_fail(BENCH_ERROR, "mproc_list_from: NULL");
    p = bench_mproc_start(target, args, MPROC_START_FORK);
    /* The child has its own copy now; ours would keep the pipe open. */
    mproc_conn_destroy(theirs);
    return p;
}

static void mproc_rtt(bench_result *r, const void *arg)
{
    const rtt_arg *a = arg;
    long warm = rtt_warm(), n = rtt_n(a);
    unsigned char msg[RTT_SIZE], back[BIG];
    mproc_conn *c = NULL;
    mproc_process *p;
    double t0 = 0;

    need_two_cpus(a);
    memset(msg, 'x', sizeof msg);
    bench_pin(bench_cpu[0]);
    p = start_with_pipe(echo_target, &c, warm + n,
                        a->same_cpu ? -1 : bench_cpu[1], a->timeout_ms);
    for (long i = 0; i < warm + n; i++) {
        size_t len = 0;
        if (i == warm)
            t0 = bench_now();
        BENCH_MPROC(mproc_conn_send_bytes(c, msg, RTT_SIZE));
        BENCH_MPROC(
            mproc_conn_recv_bytes(c, back, sizeof back, &len, a->timeout_ms));
        if (len != RTT_SIZE)
            bench_fail(BENCH_ERROR, "echo of %zu bytes", len);
    }
    r->value[0] = (bench_now() - t0) / (double)n * 1e6;
    mproc_conn_destroy(c);
    bench_mproc_finish(p);
}

/* Round trip of a 64-byte bytes value with send/recv (encode and decode on
 * both sides): what the typed API adds to mproc's own byte messages. */
static void mproc_rtt_value(bench_result *r, const void *arg)
{
    const rtt_arg *a = arg;
    long warm = rtt_warm(), n = rtt_n(a);
    unsigned char msg[RTT_SIZE];
    mproc_value *v;
    mproc_conn *c = NULL;
    mproc_process *p;
    double t0 = 0;

    need_two_cpus(a);
    memset(msg, 'x', sizeof msg);
    v = mproc_bytes(msg, sizeof msg);
    if (!v)
        bench_fail(BENCH_ERROR, "mproc_bytes: NULL");
    bench_pin(bench_cpu[0]);
    p = start_with_pipe(echo_value_target, &c, warm + n,
                        a->same_cpu ? -1 : bench_cpu[1], a->timeout_ms);
    for (long i = 0; i < warm + n; i++) {
        mproc_value *back = NULL;
        if (i == warm)
            t0 = bench_now();
        BENCH_MPROC(mproc_conn_send(c, v));
        BENCH_MPROC(mproc_conn_recv(c, &back, a->timeout_ms));
        mproc_value_free(back);
    }
    r->value[0] = (bench_now() - t0) / (double)n * 1e6;
    mproc_value_free(v);
    mproc_conn_destroy(c);
    bench_mproc_finish(p);
}

/* ------------------------------------------------------------------------
 * One-way throughput: the child says "ready", the parent sends `count`
 * messages, the child answers "done" after the last one.
 */

static long tput_n(uint32_t size)
{
    return size <= 64 ? bench_n(400000, 100000) : bench_n(8000, 2000);
}

static double tput_value(uint32_t size, long n, double secs)
{
    /* 64-byte messages in messages/s, 64 KiB ones in MB/s of payload. */
    return size <= 64 ? (double)n / secs : (double)n * size / secs / 1e6;
}

static void raw_tput(bench_result *r, const void *arg)
{
    const tput_arg *a = arg;
    long n = tput_n(a->size);
    unsigned char *msg = xmalloc(a->size);
    unsigned char tiny[8];
    bench_framer f;
    int sv[2];
    pid_t pid;
    double t0;

    memset(msg, 'x', a->size);
    make_socketpair(sv);
    pid = fork();
    if (pid < 0)
        bench_fail_errno("fork");
    if (pid == 0) {
        unsigned char *buf = malloc(BIG);
        bench_framer cf;
        close(sv[0]);
        if (!buf)
            _exit(1);
        bench_framer_init(&cf, sv[1], FRAMER_BUF);
        if (bench_frame_send(sv[1], "r", 1) < 0)
            _exit(1);
        for (long i = 0; i < n; i++)
            if (bench_frame_recv(&cf, buf, BIG) != (long)a->size)
                _exit(1);
        if (bench_frame_send(sv[1], "d", 1) < 0)
            _exit(1);
        _exit(0);
    }
    close(sv[1]);
    bench_framer_init(&f, sv[0], 4096);
    if (bench_frame_recv(&f, tiny, sizeof tiny) != 1)
        bench_fail(BENCH_ERROR, "raw child not ready");
    t0 = bench_now();
    for (long i = 0; i < n; i++)
        if (bench_frame_send(sv[0], msg, a->size) < 0)
            bench_fail_errno("write");
    if (bench_frame_recv(&f, tiny, sizeof tiny) != 1)
        bench_fail(BENCH_ERROR, "raw child did not finish");
    r->value[0] = tput_value(a->size, n, bench_now() - t0);
    bench_framer_free(&f);
    close(sv[0]);
    bench_waitpid_ok(pid);
    free(msg);
}

/* args: [conn, count, size, timeout (unused)] */
static int sink_loop(mproc_conn *c, int64_t n, int64_t size, unsigned char *buf)
{
    if (mproc_conn_send_bytes(c, "r", 1) < 0)
        return 1;
    for (int64_t i = 0; i < n; i++) {
        size_t len;
        if (mproc_conn_recv_bytes(c, buf, BIG, &len, WAIT) < 0 ||
            (int64_t)len != size)
            return 1;
    }
    return mproc_conn_send_bytes(c, "d", 1) < 0 ? 1 : 0;
}

static int sink_target(const mproc_value *args)
{
    mproc_conn *c;
    int64_t n, size;
    unsigned char *buf;
    int rc;
    if (mproc_value_get_conn(mproc_list_get(args, 0), &c) < 0 ||
        mproc_value_get_int(mproc_list_get(args, 1), &n) < 0 ||
        mproc_value_get_int(mproc_list_get(args, 2), &size) < 0)
        return 2;
    buf = malloc(BIG);
    if (!buf)
        return 2;
    rc = sink_loop(c, n, size, buf);
    free(buf);
    return rc;
}

static void mproc_tput(bench_result *r, const void *arg)
{
    const tput_arg *a = arg;
    long n = tput_n(a->size);
    unsigned char *msg = xmalloc(a->size), tiny[8];
    mproc_conn *c = NULL;
    mproc_process *p;
    size_t len;
    double t0;

    memset(msg, 'x', a->size);
    p = start_with_pipe(sink_target, &c, n, a->size, WAIT);
    BENCH_MPROC(mproc_conn_recv_bytes(c, tiny, sizeof tiny, &len, WAIT));
    t0 = bench_now();
    for (long i = 0; i < n; i++)
        BENCH_MPROC(mproc_conn_send_bytes(c, msg, a->size));
    BENCH_MPROC(mproc_conn_recv_bytes(c, tiny, sizeof tiny, &len, WAIT));
    r->value[0] = tput_value(a->size, n, bench_now() - t0);
    mproc_conn_destroy(c);
    bench_mproc_finish(p);
    free(msg);
}

/* ------------------------------------------------------------------------
 * Queue: P producer and C consumer children move N 64-byte items; the
 * parent times from the first start to the last join.
 */

#define ITEM_SIZE 64

/* args: [queue, count, timeout] */
static int producer_target(const mproc_value *args)
{
    mproc_queue *q;
    int64_t n, timeout;
    unsigned char item[ITEM_SIZE];
    memset(item, 'q', sizeof item);
    if (mproc_value_get_queue(mproc_list_get(args, 0), &q) < 0 ||
        mproc_value_get_int(mproc_list_get(args, 1), &n) < 0 ||
        mproc_value_get_int(mproc_list_get(args, 2), &timeout) < 0)
        return 2;
    for (int64_t i = 0; i < n; i++)
        if (mproc_queue_put_bytes(q, item, sizeof item, (int)timeout) < 0)
            return 1;
    return 0;
}

static int consumer_target(const mproc_value *args)
{
    mproc_queue *q;
    int64_t n, timeout;
    if (mproc_value_get_queue(mproc_list_get(args, 0), &q) < 0 ||
        mproc_value_get_int(mproc_list_get(args, 1), &n) < 0 ||
        mproc_value_get_int(mproc_list_get(args, 2), &timeout) < 0)
        return 2;
    for (int64_t i = 0; i < n; i++) {
        void *buf = NULL;
        size_t len = 0;
        if (mproc_queue_get_bytes(q, &buf, &len, (int)timeout) < 0 ||
            len != ITEM_SIZE)
            return 1;
        mproc_free(buf);
    }
    return 0;
}

static void mproc_queue_bench(bench_result *r, const void *arg)
{
    const queue_arg *a = arg;
    long n = bench_n(600000, 120000);
    int np = a->producers + a->consumers;
    mproc_process **ps = xmalloc((size_t)np * sizeof(mproc_process *));
    mproc_queue *q = NULL;
    double t0;

    BENCH_MPROC(mproc_queue_create(&q, 0));
    for (int i = 0; i < np; i++) {
        bool prod = i < a->producers;
        int share = prod ? a->producers : a->consumers;
        mproc_value *args =
            MPROC_LIST(mproc_value_queue(q), mproc_int(n / share),
                       mproc_int(a->timeout_ms));
        if (!args)
            bench_fail(BENCH_ERROR, "mproc_list_from: NULL");
        BENCH_MPROC(mproc_process_create(
            &ps[i], prod ? producer_target : consumer_target, args));
        BENCH_MPROC(mproc_process_set_start_method(ps[i], MPROC_START_FORK));
    }
    t0 = bench_now();
    for (int i = 0; i < np; i++)
        BENCH_MPROC(mproc_process_start(ps[i]));
    for (int i = 0; i < np; i++)
        bench_mproc_finish(ps[i]);
    r->value[0] = (double)n / (bench_now() - t0);
    mproc_queue_destroy(q);
    free(ps);
}

/* ------------------------------------------------------------------------ */

static const bench_impl rtt2_impls[] = {
    {"raw", raw_rtt, &rtt_2cpu},
    {"mproc", mproc_rtt, &rtt_2cpu},
};
static const bench_impl rtt1_impls[] = {
    {"raw", raw_rtt, &rtt_1cpu},
    {"mproc", mproc_rtt, &rtt_1cpu},
    {"mproc-value", mproc_rtt_value, &rtt_1cpu},
    {"mproc-timeout", mproc_rtt, &rtt_1cpu_timeout},
};
static const bench_impl tput64_impls[] = {
    {"raw", raw_tput, &tput_small},
    {"mproc", mproc_tput, &tput_small},
};
static const bench_impl tput64k_impls[] = {
    {"raw", raw_tput, &tput_big},
    {"mproc", mproc_tput, &tput_big},
};
static const bench_impl queue11_impls[] = {
    {"mproc", mproc_queue_bench, &queue_1_1},
    {"mproc-timeout", mproc_queue_bench, &queue_1_1_timeout},
};
static const bench_impl queue22_impls[] = {
    {"mproc", mproc_queue_bench, &queue_2_2},
};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

const bench_def bench_defs_pipe[] = {
    {"pipe-rtt-2cpu",
     1,
     {"pipe-rtt-2cpu"},
     {"us"},
     rtt2_impls,
     N_OF(rtt2_impls),
     9,
     3,
     120},
    {"pipe-rtt-1cpu",
     1,
     {"pipe-rtt-1cpu"},
     {"us"},
     rtt1_impls,
     N_OF(rtt1_impls),
     9,
     3,
     120},
    {"pipe-tput-64",
     1,
     {"pipe-tput-64"},
     {"msg/s"},
     tput64_impls,
     N_OF(tput64_impls),
     9,
     3,
     120},
    {"pipe-tput-64k",
     1,
     {"pipe-tput-64k"},
     {"MB/s"},
     tput64k_impls,
     N_OF(tput64k_impls),
     9,
     3,
     120},
    {"queue-1p1c",
     1,
     {"queue-1p1c"},
     {"items/s"},
     queue11_impls,
     N_OF(queue11_impls),
     7,
     3,
     120},
    {"queue-2p2c",
     1,
     {"queue-2p2c"},
     {"items/s"},
     queue22_impls,
     N_OF(queue22_impls),
     7,
     3,
     120},
};
const size_t bench_ndefs_pipe = N_OF(bench_defs_pipe);
