/* Tests of the pipe area (rows C01-C14 of CONFORMANCE.md, broken framing
 * under C10) and of waiting on
 * many objects (row W01). */
#include "harness.h"

/* The framing test writes a hostile frame straight into a channel: it
 * needs an end's OS handle (mproc__conn_export) and the backend's write. */
#include "../src/common/internal.h"

/* --- helpers ------------------------------------------------------------ */

static mproc_conn *arg_conn(const mproc_value *args, size_t i)
{
    mproc_conn *c = NULL;
    ASSERT_OK(mproc_value_get_conn(mproc_list_get(args, i), &c));
    ASSERT_NOT_NULL(c);
    return c;
}

static mproc_value *seed_list(void)
{
    return MPROC_LIST(mproc_int(42), mproc_none(), mproc_str("hello"),
                      mproc_bool(true));
}

/* A byte pattern that differs per message and per offset. */
static void fill_pattern(uint8_t *p, size_t n, unsigned seed)
{
    size_t i;
    for (i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 31u + (size_t)seed * 7u + (i >> 12));
}

static bool check_pattern(const uint8_t *p, size_t n, unsigned seed)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (p[i] != (uint8_t)(i * 31u + (size_t)seed * 7u + (i >> 12)))
            return false;
    return true;
}

/* --- C01 ---------------------------------------------------------------- */

/* Echo server: replies n + 1 to every int until it gets None. */
static int echo_child(const mproc_value *args)
{
    mproc_conn *c = arg_conn(args, 0);
    for (;;) {
        mproc_value *v = NULL;
        int64_t n;
        ASSERT_OK(mproc_conn_recv(c, &v, MPROC_FOREVER));
        if (mproc_value_type(v) == MPROC_TYPE_NONE) {
            mproc_value_free(v);
            break;
        }
        ASSERT_OK(mproc_value_get_int(v, &n));
        mproc_value_free(v);
        v = mproc_int(n + 1);
        ASSERT_OK(mproc_conn_send(c, v));
        mproc_value_free(v);
    }
    return 0;
}

TEST(C01_duplex_both_ways)
{
    mproc_conn *a, *b;
    mproc_process *p;
    int64_t i;
    ASSERT_OK(mproc_pipe(&a, &b, true));
    p = th_start(echo_child, MPROC_LIST(mproc_value_conn(b)));
    ASSERT_OK(mproc_conn_close(b));
    for (i = 0; i < 100; i++) {
        mproc_value *v = mproc_int(i);
        int64_t got = -1;
        ASSERT_OK(mproc_conn_send(a, v));
        mproc_value_free(v);
        ASSERT_OK(mproc_conn_recv(a, &v, th_ms(10000)));
        ASSERT_OK(mproc_value_get_int(v, &got));
        ASSERT_EQ(got, i + 1);
        mproc_value_free(v);
    }
    {
        mproc_value *none = mproc_none();
        ASSERT_OK(mproc_conn_send(a, none));
        mproc_value_free(none);
    }
    th_join_ok(p, 30000);
    a = mproc_conn_destroy(a);
    b = mproc_conn_destroy(b);
    ASSERT_NULL(a);
    return 0;
}

TEST(C01_duplex_in_process)
{
    mproc_conn *a, *b;
    char buf[16];
    size_t len = 0;
    ASSERT_OK(mproc_pipe(&a, &b, true));
    ASSERT_OK(mproc_conn_send_bytes(a, "ping", 4));
    ASSERT_OK(mproc_conn_send_bytes(b, "pong", 4));
    ASSERT_OK(mproc_conn_recv_bytes(b, buf, sizeof buf, &len, 0));
    ASSERT_EQ(len, 4);
    ASSERT_MEM_EQ(buf, "ping", 4);
    ASSERT_OK(mproc_conn_recv_bytes(a, buf, sizeof buf, &len, 0));
    ASSERT_EQ(len, 4);
    ASSERT_MEM_EQ(buf, "pong", 4);
    mproc_conn_destroy(a);
    mproc_conn_destroy(b);
    return 0;
}

/* Bad input and use after close: specific codes. */
TEST(C01_bad_arguments)
{
    mproc_conn *a = NULL, *b = NULL;
    mproc_value *v = NULL;
    void *p = NULL;
    size_t len = 0;
    char buf[4];
    ASSERT_ERR(mproc_pipe(NULL, &b, true), MPROC_EINVAL);
    ASSERT_ERR(mproc_pipe(&a, NULL, true), MPROC_EINVAL);
    ASSERT_OK(mproc_pipe(&a, &b, true));
    ASSERT_ERR(mproc_conn_send(NULL, NULL), MPROC_EINVAL);
    ASSERT_ERR(mproc_conn_send(a, NULL), MPROC_EINVAL);
    ASSERT_ERR(mproc_conn_send_bytes(a, NULL, 5), MPROC_EINVAL);
    ASSERT_ERR(mproc_conn_recv(a, NULL, 0), MPROC_EINVAL);
    ASSERT_ERR(mproc_conn_recv(a, &v, -2), MPROC_EINVAL);
    ASSERT_ERR(mproc_conn_recv_bytes(a, NULL, 4, &len, 0), MPROC_EINVAL);
    ASSERT_ERR(mproc_conn_recv_bytes(a, buf, sizeof buf, NULL, 0),
               MPROC_EINVAL);
    ASSERT_ERR(mproc_conn_recv_bytes_alloc(a, NULL, &len, 0), MPROC_EINVAL);
    ASSERT_ERR(mproc_conn_recv_bytes_alloc(a, &p, NULL, 0), MPROC_EINVAL);
    ASSERT_ERR(mproc_conn_poll(NULL, 0), MPROC_EINVAL);
    ASSERT_ERR(mproc_conn_poll(a, -5), MPROC_EINVAL);
    ASSERT_ERR(mproc_conn_close(NULL), MPROC_EINVAL);
    /* A handle value goes through a pipe (C16, tests/test-parity.c). */
    v = MPROC_LIST(mproc_value_conn(b));
    ASSERT_NOT_NULL(v);
    ASSERT_OK(mproc_conn_send(a, v));
    mproc_value_free(v);
    ASSERT_OK(mproc_conn_recv(b, &v, th_ms(5000)));
    mproc_value_free(v);
    v = NULL;
    /* Empty message: fine. */
    ASSERT_OK(mproc_conn_send_bytes(a, NULL, 0));
    ASSERT_OK(mproc_conn_recv_bytes(b, NULL, 0, &len, th_ms(1000)));
    ASSERT_EQ(len, 0);
    /* After close. */
    ASSERT_OK(mproc_conn_close(a));
    ASSERT_ERR(mproc_conn_close(a), MPROC_ECLOSED);
    ASSERT_ERR(mproc_conn_send_bytes(a, "x", 1), MPROC_ECLOSED);
    ASSERT_ERR(mproc_conn_recv(a, &v, 0), MPROC_ECLOSED);
    ASSERT_ERR(mproc_conn_recv_bytes(a, buf, sizeof buf, &len, 0),
               MPROC_ECLOSED);
    ASSERT_ERR(mproc_conn_recv_bytes_alloc(a, &p, &len, 0), MPROC_ECLOSED);
    ASSERT_ERR(mproc_conn_poll(a, 0), MPROC_ECLOSED);
    ASSERT_NULL(mproc_conn_destroy(a));
    ASSERT_NULL(mproc_conn_destroy(b));
    ASSERT_NULL(mproc_conn_destroy(NULL));
    return 0;
}

/* --- C02 ---------------------------------------------------------------- */

TEST(C02_one_way_direction)
{
    mproc_conn *r, *w;
    mproc_value *v = mproc_int(7), *got = NULL;
    char buf[8];
    size_t len;
    void *p;
    ASSERT_OK(mproc_pipe(&r, &w, false));
    ASSERT_ERR(mproc_conn_send(r, v), MPROC_EDIRECTION);
    ASSERT_ERR(mproc_conn_send_bytes(r, "x", 1), MPROC_EDIRECTION);
    ASSERT_ERR(mproc_conn_recv(w, &got, 0), MPROC_EDIRECTION);
    ASSERT_ERR(mproc_conn_recv_bytes(w, buf, sizeof buf, &len, 0),
               MPROC_EDIRECTION);
    ASSERT_ERR(mproc_conn_recv_bytes_alloc(w, &p, &len, 0), MPROC_EDIRECTION);
    ASSERT_ERR(mproc_conn_poll(w, 0), MPROC_EDIRECTION);
    /* The right direction works. */
    ASSERT_OK(mproc_conn_send(w, v));
    ASSERT_OK(mproc_conn_recv(r, &got, th_ms(1000)));
    ASSERT(mproc_value_equal(v, got));
    mproc_value_free(got);
    mproc_value_free(v);
    mproc_conn_destroy(r);
    mproc_conn_destroy(w);
    return 0;
}

/* A child given the write end of a one-way pipe cannot read from it, and
 * its sends arrive. */
static int one_way_child(const mproc_value *args)
{
    mproc_conn *w = arg_conn(args, 0);
    mproc_value *v = NULL;
    ASSERT_ERR(mproc_conn_recv(w, &v, 0), MPROC_EDIRECTION);
    ASSERT_OK(mproc_conn_send_bytes(w, "one-way", 7));
    return 0;
}

TEST(C02_one_way_in_child)
{
    mproc_conn *r, *w;
    mproc_process *p;
    char buf[16];
    size_t len = 0;
    ASSERT_OK(mproc_pipe(&r, &w, false));
    p = th_start(one_way_child, MPROC_LIST(mproc_value_conn(w)));
    ASSERT_OK(mproc_conn_close(w));
    ASSERT_OK(mproc_conn_recv_bytes(r, buf, sizeof buf, &len, th_ms(10000)));
    ASSERT_EQ(len, 7);
    ASSERT_MEM_EQ(buf, "one-way", 7);
    th_join_ok(p, 30000);
    mproc_conn_destroy(r);
    mproc_conn_destroy(w);
    return 0;
}

/* --- C03 ---------------------------------------------------------------- */

static mproc_value *c03_value(int i)
{
    switch (i) {
    case 0:
        return seed_list();
    case 1:
        return MPROC_LIST(
            mproc_int(-1), mproc_float(2.5),
            MPROC_LIST(mproc_str("nested"),
                       MPROC_LIST(mproc_bytes("\0\1\2", 3), mproc_list_new())),
            mproc_strn("nul\0inside", 10), mproc_bool(false));
    case 2:
        return mproc_int(INT64_MIN);
    case 3:
        return mproc_str("");
    default:
        return mproc_none();
    }
}

static int c03_child(const mproc_value *args)
{
    mproc_conn *c = arg_conn(args, 0);
    int i;
    for (i = 0; i < 5; i++) {
        mproc_value *v = c03_value(i);
        ASSERT_OK(mproc_conn_send(c, v));
        mproc_value_free(v);
    }
    return 0;
}

TEST(C03_typed_values_roundtrip)
{
    mproc_conn *a, *b;
    mproc_process *p;
    int i;
    ASSERT_OK(mproc_pipe(&a, &b, false));
    p = th_start(c03_child, MPROC_LIST(mproc_value_conn(b)));
    ASSERT_OK(mproc_conn_close(b));
    for (i = 0; i < 5; i++) {
        mproc_value *want = c03_value(i), *got = NULL;
        ASSERT_OK(mproc_conn_recv(a, &got, th_ms(10000)));
        ASSERT(mproc_value_equal(want, got));
        if (i == 0) {
            char text[64];
            ASSERT_OK(mproc_value_repr(got, text, sizeof text));
            ASSERT_STR_EQ(text, "[42, None, 'hello', True]");
        }
        mproc_value_free(want);
        mproc_value_free(got);
    }
    th_join_ok(p, 30000);
    mproc_conn_destroy(a);
    mproc_conn_destroy(b);
    return 0;
}

/* --- C04 ---------------------------------------------------------------- */

static const size_t c04_sizes[] = {0, 1,     4095,  65536, 3, (size_t)16 << 20,
                                   0, 65531, 65532, 7};
#define C04_N (sizeof c04_sizes / sizeof c04_sizes[0])

static int c04_child(const mproc_value *args)
{
    mproc_conn *c = arg_conn(args, 0);
    uint8_t *buf = malloc(c04_sizes[5] + 1);
    size_t i;
    ASSERT_NOT_NULL(buf);
    for (i = 0; i < C04_N; i++) {
        fill_pattern(buf, c04_sizes[i], (unsigned)i);
        ASSERT_OK(mproc_conn_send_bytes(c, buf, c04_sizes[i]));
    }
    free(buf);
    return 0;
}

TEST(C04_bytes_sizes_and_boundaries)
{
    mproc_conn *a, *b;
    mproc_process *p;
    size_t i;
    ASSERT_OK(mproc_pipe(&a, &b, true));
    p = th_start(c04_child, MPROC_LIST(mproc_value_conn(b)));
    ASSERT_OK(mproc_conn_close(b));
    for (i = 0; i < C04_N; i++) {
        void *buf = NULL;
        size_t len = 12345;
        ASSERT_OK(mproc_conn_recv_bytes_alloc(a, &buf, &len, th_ms(20000)));
        ASSERT_EQ(len, c04_sizes[i]);
        ASSERT(check_pattern(buf, len, (unsigned)i));
        mproc_free(buf);
    }
    th_join_ok(p, 30000);
    /* Nothing more: the child's end is closed everywhere. */
    {
        void *buf = NULL;
        size_t len;
        ASSERT_ERR(mproc_conn_recv_bytes_alloc(a, &buf, &len, th_ms(5000)),
                   MPROC_EEOF);
    }
    mproc_conn_destroy(a);
    mproc_conn_destroy(b);
    return 0;
}

/* The same sizes in one process, through recv_bytes into a fixed buffer. */
TEST(C04_bytes_sizes_in_process)
{
    mproc_conn *a, *b;
    uint8_t *buf = malloc(70000);
    size_t i, len;
    ASSERT_NOT_NULL(buf);
    ASSERT_OK(mproc_pipe(&a, &b, true));
    /* Several messages queued before any is read: boundaries kept. */
    for (i = 0; i < 5; i++) {
        fill_pattern(buf, c04_sizes[i], (unsigned)i);
        ASSERT_OK(mproc_conn_send_bytes(b, buf, c04_sizes[i]));
    }
    for (i = 0; i < 5; i++) {
        memset(buf, 0xee, 70000);
        ASSERT_OK(mproc_conn_recv_bytes(a, buf, 70000, &len, th_ms(1000)));
        ASSERT_EQ(len, c04_sizes[i]);
        ASSERT(check_pattern(buf, len, (unsigned)i));
    }
    ASSERT_EQ(mproc_conn_poll(a, 0), 0);
    free(buf);
    mproc_conn_destroy(a);
    mproc_conn_destroy(b);
    return 0;
}

/* --- C05 ---------------------------------------------------------------- */

static int delayed_send_child(const mproc_value *args)
{
    mproc_conn *c = arg_conn(args, 0);
    th_sleep_ms((int)th_arg_int_ok(args, 1));
    ASSERT_OK(mproc_conn_send_bytes(c, "late", 4));
    return 0;
}

TEST(C05_poll)
{
    mproc_conn *a, *b;
    mproc_process *p;
    int64_t t0, dt;
    ASSERT_OK(mproc_pipe(&a, &b, true));
    ASSERT_EQ(mproc_conn_poll(a, 0), 0);
    /* Times out: false, in time. */
    t0 = th_now_ms();
    ASSERT_EQ(mproc_conn_poll(a, 200), 0);
    dt = th_now_ms() - t0;
    ASSERT_GE(dt, 200 - 16); /* a 15.6 ms clock tick */
    ASSERT_LE(dt, th_ms(1500));
    /* Turns true when a message arrives. */
    p = th_start(delayed_send_child,
                 MPROC_LIST(mproc_value_conn(b), mproc_int(300)));
    ASSERT_OK(mproc_conn_close(b));
    t0 = th_now_ms();
    ASSERT_EQ(mproc_conn_poll(a, th_ms(20000)), 1);
    dt = th_now_ms() - t0;
    ASSERT_LE(dt, th_ms(15000));
    /* poll does not consume. */
    ASSERT_EQ(mproc_conn_poll(a, 0), 1);
    {
        char buf[8];
        size_t len;
        ASSERT_OK(mproc_conn_recv_bytes(a, buf, sizeof buf, &len, 0));
        ASSERT_EQ(len, 4);
    }
    th_join_ok(p, 30000);
    /* End-of-file counts as ready. */
    ASSERT_EQ(mproc_conn_poll(a, th_ms(5000)), 1);
    mproc_conn_destroy(a);
    mproc_conn_destroy(b);
    return 0;
}

/* --- C06 ---------------------------------------------------------------- */

TEST(C06_recv_timeout)
{
    mproc_conn *a, *b;
    mproc_value *v = NULL;
    char buf[8];
    size_t len;
    void *p;
    int64_t t0, dt;
    ASSERT_OK(mproc_pipe(&a, &b, true));
    t0 = th_now_ms();
    ASSERT_ERR(mproc_conn_recv(a, &v, 300), MPROC_ETIMEDOUT);
    dt = th_now_ms() - t0;
    ASSERT_GE(dt, 300 - 16); /* a 15.6 ms clock tick */
    ASSERT_LE(dt, th_ms(1500));
    ASSERT_NULL(v);
    ASSERT_ERR(mproc_conn_recv(a, &v, 0), MPROC_ETIMEDOUT);
    ASSERT_ERR(mproc_conn_recv_bytes(a, buf, sizeof buf, &len, 50),
               MPROC_ETIMEDOUT);
    ASSERT_ERR(mproc_conn_recv_bytes_alloc(a, &p, &len, 50), MPROC_ETIMEDOUT);
    /* Nothing was lost by the timeouts: a later message arrives whole. */
    ASSERT_OK(mproc_conn_send_bytes(b, "after", 5));
    ASSERT_OK(mproc_conn_recv_bytes(a, buf, sizeof buf, &len, th_ms(1000)));
    ASSERT_EQ(len, 5);
    ASSERT_MEM_EQ(buf, "after", 5);
    mproc_conn_destroy(a);
    mproc_conn_destroy(b);
    return 0;
}

/* A large message that is still arriving when the timeout expires stays
 * buffered, and the next receive gets it whole. */
static int slow_big_child(const mproc_value *args)
{
    mproc_conn *c = arg_conn(args, 0);
    size_t n = (size_t)8 << 20;
    uint8_t *buf = malloc(n);
    ASSERT_NOT_NULL(buf);
    fill_pattern(buf, n, 5);
    ASSERT_OK(mproc_conn_send_bytes(c, buf, n));
    free(buf);
    return 0;
}

TEST(C06_timeout_keeps_partial_message)
{
    mproc_conn *a, *b;
    mproc_process *p;
    void *buf = NULL;
    size_t len = 0;
    int rc, tries = 0;
    ASSERT_OK(mproc_pipe(&a, &b, true));
    p = th_start(slow_big_child, MPROC_LIST(mproc_value_conn(b)));
    ASSERT_OK(mproc_conn_close(b));
    /* Very short timeouts: most expire with part of the message read. */
    do {
        rc = mproc_conn_recv_bytes_alloc(a, &buf, &len, 1);
        tries++;
    } while (rc == MPROC_ETIMEDOUT && tries < 1000000);
    ASSERT_OK(rc);
    ASSERT_EQ(len, (size_t)8 << 20);
    ASSERT(check_pattern(buf, len, 5));
    mproc_free(buf);
    th_join_ok(p, 30000);
    mproc_conn_destroy(a);
    mproc_conn_destroy(b);
    return 0;
}

/* Sizes around the thresholds (16 KiB; 64 KiB with the header, the largest
 * frame taken whole) and far above them, small ones in between. */
static const size_t c06_mix_sizes[] = {
    (size_t)8 << 20, 100,   20000, 16384,           70000, 0,       65532,
    65536,           65528, 5,     (size_t)1 << 20, 16383, 3 << 20, 40000};
#define C06_MIX_N (sizeof c06_mix_sizes / sizeof c06_mix_sizes[0])

static int slow_mix_child(const mproc_value *args)
{
    mproc_conn *c = arg_conn(args, 0);
    uint8_t *buf = malloc((size_t)8 << 20);
    size_t i;
    ASSERT_NOT_NULL(buf);
    for (i = 0; i < C06_MIX_N; i++) {
        fill_pattern(buf, c06_mix_sizes[i], (unsigned)i);
        ASSERT_OK(mproc_conn_send_bytes(c, buf, c06_mix_sizes[i]));
    }
    free(buf);
    return 0;
}

/* Every way to receive, in turn, with timeouts short enough that most
 * expire part-way through a message: into a buffer large enough, into an
 * allocation, into a buffer too small for some, and polls. Each message
 * arrives whole and in order. */
TEST(C06_timeout_keeps_partial_message_mixed)
{
    mproc_conn *a, *b;
    mproc_process *p;
    size_t cap = (size_t)8 << 20;
    uint8_t *big = malloc(cap);
    size_t i = 0, len = 0;
    unsigned long tries = 0;
    ASSERT_NOT_NULL(big);
    ASSERT_OK(mproc_pipe(&a, &b, false));
    p = th_start(slow_mix_child, MPROC_LIST(mproc_value_conn(b)));
    ASSERT_OK(mproc_conn_close(b));
    while (i < C06_MIX_N && tries < 10000000) {
        void *got = NULL;
        int rc;
        switch (tries++ % 4) {
        case 0:
            rc = mproc_conn_recv_bytes(a, big, cap, &len, 1);
            got = big;
            break;
        case 1:
            rc = mproc_conn_recv_bytes_alloc(a, &got, &len, 1);
            break;
        case 2:
            rc = mproc_conn_poll(a, 0);
            ASSERT(rc == 0 || rc == 1);
            continue;
        default:
            rc = mproc_conn_recv_bytes(a, big, 17000, &len, 1);
            if (rc == MPROC_ETOOSMALL) {
                ASSERT_EQ(len, c06_mix_sizes[i]);
                continue;
            }
            got = big;
            break;
        }
        if (rc == MPROC_ETIMEDOUT)
            continue;
        ASSERT_OK(rc);
        ASSERT_EQ(len, c06_mix_sizes[i]);
        ASSERT(check_pattern(got, len, (unsigned)i));
        if (got != big)
            mproc_free(got);
        i++;
    }
    ASSERT_EQ(i, C06_MIX_N);
    ASSERT_ERR(mproc_conn_recv_bytes(a, big, cap, &len, th_ms(5000)),
               MPROC_EEOF);
    th_join_ok(p, 30000);
    free(big);
    mproc_conn_destroy(a);
    mproc_conn_destroy(b);
    return 0;
}

/* --- C07 ---------------------------------------------------------------- */

static int send_three_and_close(const mproc_value *args)
{
    mproc_conn *c = arg_conn(args, 0);
    int i;
    for (i = 0; i < 3; i++) {
        mproc_value *v = mproc_int(i);
        ASSERT_OK(mproc_conn_send(c, v));
        mproc_value_free(v);
    }
    ASSERT_OK(mproc_conn_close(c));
    return 0;
}

TEST(C07_eof_after_peer_close)
{
    mproc_conn *a, *b;
    mproc_process *p;
    mproc_value *v = NULL;
    int64_t i;
    char buf[4];
    size_t len;
    ASSERT_OK(mproc_pipe(&a, &b, true));
    p = th_start(send_three_and_close, MPROC_LIST(mproc_value_conn(b)));
    ASSERT_OK(mproc_conn_close(b));
    th_join_ok(p, 30000); /* all three are sent and the child is gone */
    for (i = 0; i < 3; i++) {
        int64_t got = -1;
        ASSERT_OK(mproc_conn_recv(a, &v, th_ms(5000)));
        ASSERT_OK(mproc_value_get_int(v, &got));
        ASSERT_EQ(got, i);
        mproc_value_free(v);
    }
    ASSERT_ERR(mproc_conn_recv(a, &v, th_ms(5000)), MPROC_EEOF);
    ASSERT_ERR(mproc_conn_recv(a, &v, MPROC_FOREVER), MPROC_EEOF);
    ASSERT_ERR(mproc_conn_recv_bytes(a, buf, sizeof buf, &len, 0), MPROC_EEOF);
    mproc_conn_destroy(a);
    mproc_conn_destroy(b);
    return 0;
}

/* --- C08 ---------------------------------------------------------------- */

TEST(C08_send_after_peer_closed)
{
    mproc_conn *a, *b;
    mproc_value *v = mproc_int(1);
    uint8_t *big = calloc(1, (size_t)1 << 20);
    ASSERT_NOT_NULL(big);
    ASSERT_OK(mproc_pipe(&a, &b, true));
    ASSERT_OK(mproc_conn_close(a));
    ASSERT_ERR(mproc_conn_send(b, v), MPROC_EPIPE);
    ASSERT_ERR(mproc_conn_send_bytes(b, "x", 1), MPROC_EPIPE);
    ASSERT_ERR(mproc_conn_send_bytes(b, big, (size_t)1 << 20), MPROC_EPIPE);
    /* Still alive (no SIGPIPE death), and still an error. */
    ASSERT_ERR(mproc_conn_send(b, v), MPROC_EPIPE);
    free(big);
    mproc_value_free(v);
    mproc_conn_destroy(a);
    mproc_conn_destroy(b);
    return 0;
}

static int exit_at_once(const mproc_value *args)
{
    (void)args;
    return 0;
}

TEST(C08_send_after_child_exited)
{
    mproc_conn *a, *b;
    mproc_process *p;
    ASSERT_OK(mproc_pipe(&a, &b, true));
    p = th_start(exit_at_once, MPROC_LIST(mproc_value_conn(b)));
    ASSERT_OK(mproc_conn_close(b));
    th_join_ok(p, 30000);
    ASSERT_ERR(mproc_conn_send_bytes(a, "x", 1), MPROC_EPIPE);
    ASSERT_ERR(mproc_conn_send_bytes(a, "y", 1), MPROC_EPIPE);
    mproc_conn_destroy(a);
    mproc_conn_destroy(b);
    return 0;
}

/* --- C09 ---------------------------------------------------------------- */

static void c09_case(size_t n)
{
    mproc_conn *a, *b;
    uint8_t *msg = malloc(n), *buf = malloc(n);
    uint8_t small[16];
    size_t len = 0;
    ASSERT_NOT_NULL(msg);
    ASSERT_NOT_NULL(buf);
    fill_pattern(msg, n, 9);
    ASSERT_OK(mproc_pipe(&a, &b, true));
    ASSERT_OK(mproc_conn_send_bytes(b, msg, n));
    ASSERT_OK(mproc_conn_send_bytes(b, "next", 4));
    ASSERT_ERR(mproc_conn_recv_bytes(a, small, sizeof small, &len, th_ms(5000)),
               MPROC_ETOOSMALL);
    ASSERT_EQ(len, n);
    len = 0;
    ASSERT_ERR(mproc_conn_recv_bytes(a, NULL, 0, &len, th_ms(5000)),
               MPROC_ETOOSMALL);
    ASSERT_EQ(len, n);
    ASSERT_ERR(mproc_conn_recv_bytes(a, buf, n - 1, &len, th_ms(5000)),
               MPROC_ETOOSMALL);
    ASSERT_EQ(len, n);
    /* Not lost: the next receive gets it whole, then the next message. */
    ASSERT_OK(mproc_conn_recv_bytes(a, buf, n, &len, th_ms(5000)));
    ASSERT_EQ(len, n);
    ASSERT_MEM_EQ(buf, msg, n);
    ASSERT_OK(mproc_conn_recv_bytes(a, small, sizeof small, &len, 0));
    ASSERT_EQ(len, 4);
    ASSERT_MEM_EQ(small, "next", 4);
    free(msg);
    free(buf);
    mproc_conn_destroy(a);
    mproc_conn_destroy(b);
}

TEST(C09_buffer_too_small)
{
    c09_case(100);
    c09_case((size_t)100 << 10); /* larger than the peek cache */
    return 0;
}

/* --- C10 ---------------------------------------------------------------- */

TEST(C10_malformed_message)
{
    mproc_conn *a, *b;
    mproc_value *v = NULL, *good = seed_list();
    static const uint8_t junk[] = {0xff, 0xfe, 0x00, 0x13, 0x37, 0x42, 0x99};
    ASSERT_OK(mproc_pipe(&a, &b, true));
    ASSERT_OK(mproc_conn_send_bytes(b, junk, sizeof junk));
    ASSERT_OK(mproc_conn_send_bytes(b, NULL, 0));
    ASSERT_OK(mproc_conn_send(b, good));
    ASSERT_ERR(mproc_conn_recv(a, &v, th_ms(1000)), MPROC_EBADMSG);
    ASSERT_NULL(v);
    ASSERT_ERR(mproc_conn_recv(a, &v, th_ms(1000)), MPROC_EBADMSG);
    /* Still usable: the valid message behind them arrives. */
    ASSERT_OK(mproc_conn_recv(a, &v, th_ms(1000)));
    ASSERT(mproc_value_equal(v, good));
    mproc_value_free(v);
    mproc_value_free(good);
    mproc_conn_destroy(a);
    mproc_conn_destroy(b);
    return 0;
}

/* --- C11 ---------------------------------------------------------------- */

TEST(C11_message_over_maximum)
{
    mproc_conn *a, *b;
    static const uint8_t some[64];
    size_t len = 0;
    char buf[8];
    ASSERT_OK(mproc_pipe(&a, &b, true));
    /* Refused from the length alone: the buffer is not even read. */
    ASSERT_ERR(mproc_conn_send_bytes(b, some, MPROC_MESSAGE_MAX + 1),
               MPROC_EMSGSIZE);
    ASSERT_ERR(mproc_conn_send_bytes(b, some, SIZE_MAX), MPROC_EMSGSIZE);
    /* Nothing was sent. */
    ASSERT_EQ(mproc_conn_poll(a, 50), 0);
    ASSERT_OK(mproc_conn_send_bytes(b, "ok", 2));
    ASSERT_OK(mproc_conn_recv_bytes(a, buf, sizeof buf, &len, th_ms(1000)));
    ASSERT_EQ(len, 2);
    ASSERT_EQ(mproc_conn_poll(a, 0), 0);
    mproc_conn_destroy(a);
    mproc_conn_destroy(b);
    return 0;
}

/* --- C13 ---------------------------------------------------------------- */

/* Message i of the C13 tests: a 4-byte index, then a pattern; sizes of a
 * few bytes to a few KiB, so that a burst of them fills a read-ahead. */
static size_t c13_size(unsigned i)
{
    return 4 + (i * 977u) % 3000u;
}

static void c13_send(mproc_conn *c, unsigned i)
{
    uint8_t buf[3100];
    size_t n = c13_size(i);
    fill_pattern(buf, n, i);
    buf[0] = (uint8_t)i;
    buf[1] = (uint8_t)(i >> 8);
    buf[2] = (uint8_t)(i >> 16);
    buf[3] = (uint8_t)(i >> 24);
    ASSERT_OK(mproc_conn_send_bytes(c, buf, n));
}

/* Receives message i, whole: its index and every byte. A message that is
 * missing or torn is told apart in the failure. */
static int c13_check(mproc_conn *c, unsigned i, int timeout_ms)
{
    uint8_t buf[3100], want[3100];
    size_t len = 0;
    unsigned got;
    int rc = mproc_conn_recv_bytes(c, buf, sizeof buf, &len, timeout_ms);
    if (rc < 0)
        return rc;
    got = (unsigned)buf[0] | (unsigned)buf[1] << 8 | (unsigned)buf[2] << 16 |
          (unsigned)buf[3] << 24;
    if (len < 4 || got != i)
        return -1000 - (int)(len < 4 ? 0 : got); /* a message lost */
    fill_pattern(want, len, i);
    if (len != c13_size(i) || memcmp(buf + 4, want + 4, len - 4) != 0)
        return -999; /* torn */
    return 0;
}

#define C13_N 200u

/* In a child: argument 1 says what it does with the end before it exits:
 * 0 poll, 1 poll then receive message 0, 2 receive into a buffer too small
 * then poll, 3 wait on it with mproc_wait. */
static int c13_user(const mproc_value *args)
{
    mproc_conn *c = arg_conn(args, 0);
    int64_t mode = th_arg_int(args, 1);
    mproc_wait_item it;
    uint8_t small[2];
    size_t len;
    switch (mode) {
    case 0:
        CHILD_CHECK(mproc_conn_poll(c, th_ms(10000)) == 1, 10);
        break;
    case 1:
        CHILD_CHECK(mproc_conn_poll(c, th_ms(10000)) == 1, 11);
        CHILD_CHECK(c13_check(c, 0, th_ms(10000)) == 0, 12);
        break;
    case 2:
        CHILD_CHECK(mproc_conn_recv_bytes(c, small, sizeof small, &len, 0) ==
                        MPROC_ETOOSMALL,
                    13);
        CHILD_CHECK(mproc_conn_poll(c, 0) == 1, 14);
        break;
    default:
        memset(&it, 0, sizeof it);
        it.kind = MPROC_WAIT_CONN;
        it.conn = c;
        CHILD_CHECK(mproc_wait(&it, 1, th_ms(10000)) == 1 && it.ready, 15);
        break;
    }
    return 0;
}

/* A process that polled an end (or received one message, or was told its
 * buffer is too small, or waited on it) and exited leaves every other
 * message in the channel, whole, for the next holder: here the parent,
 * which kept its copy of the end. Polling used to read up to 64 KiB into
 * the child's own memory, which died with it. */
TEST(C13_poll_then_exit_leaves_every_message)
{
    int64_t mode;
    for (mode = 0; mode < 4; mode++) {
        mproc_conn *a, *b;
        mproc_process *p;
        unsigned i, first = mode == 1 ? 1u : 0u;
        ASSERT_OK(mproc_pipe(&a, &b, true));
        for (i = 0; i < 60; i++) /* about 90 KiB: more than 64 KiB */
            c13_send(b, i);
        p = th_start(c13_user,
                     MPROC_LIST(mproc_value_conn(a), mproc_int(mode)));
        th_join_ok(p, 30000);
        for (i = first; i < 60; i++)
            ASSERT_EQ(c13_check(a, i, th_ms(2000)), 0);
        for (i = 60; i < C13_N; i++) {
            c13_send(b, i);
            ASSERT_EQ(c13_check(a, i, th_ms(2000)), 0);
        }
        ASSERT_EQ(mproc_conn_poll(a, 0), 0);
        mproc_conn_destroy(a);
        mproc_conn_destroy(b);
    }
    return 0;
}

/* Receives messages from..C13_N-1 and checks each; says "ok" back. */
static int c13_rest(const mproc_value *args)
{
    mproc_conn *c = arg_conn(args, 0);
    unsigned i, from = (unsigned)th_arg_int(args, 1);
    for (i = from; i < C13_N; i++)
        CHILD_CHECK(c13_check(c, i, th_ms(10000)) == 0, 20);
    CHILD_CHECK(mproc_conn_poll(c, 0) == 0, 21);
    CHILD_CHECK(mproc_conn_send_bytes(c, "ok", 2) == 0, 22);
    return 0;
}

/* An end that was polled and received from can be handed to a child, which
 * gets every message after the ones received here (the old read-ahead was
 * refused past 255 bytes with MPROC_ESTATE, or, under fork, stayed behind
 * as a stale copy); when the child is done the parent's end reads on
 * exactly where the child stopped. */
TEST(C13_end_handed_on_after_poll)
{
    mproc_conn *a, *b;
    mproc_process *p;
    char buf[4];
    size_t len;
    unsigned i;
    ASSERT_OK(mproc_pipe(&a, &b, true));
    for (i = 0; i < 40; i++)
        c13_send(b, i);
    ASSERT_EQ(mproc_conn_poll(a, th_ms(2000)), 1);
    ASSERT_EQ(c13_check(a, 0, th_ms(2000)), 0);
    ASSERT_EQ(c13_check(a, 1, th_ms(2000)), 0);
    ASSERT_EQ(mproc_conn_poll(a, 0), 1);
    p = th_start(c13_rest, MPROC_LIST(mproc_value_conn(a), mproc_int(2)));
    for (i = 40; i < C13_N; i++)
        c13_send(b, i);
    ASSERT_OK(mproc_conn_recv_bytes(b, buf, sizeof buf, &len, th_ms(20000)));
    ASSERT_EQ(len, 2);
    th_join_ok(p, 30000);
    /* Back in the parent: only what comes now. */
    ASSERT_EQ(mproc_conn_poll(a, 0), 0);
    ASSERT_OK(mproc_conn_send_bytes(b, "after", 5));
    {
        char after[8];
        ASSERT_OK(
            mproc_conn_recv_bytes(a, after, sizeof after, &len, th_ms(2000)));
        ASSERT_EQ(len, 5);
        ASSERT_MEM_EQ(after, "after", 5);
    }
    ASSERT_EQ(mproc_conn_poll(a, 0), 0);
    mproc_conn_destroy(a);
    mproc_conn_destroy(b);
    return 0;
}

/* Receives and checks messages until killed. */
static int c13_receiver(const mproc_value *args)
{
    mproc_conn *c = arg_conn(args, 0);
    unsigned i;
    for (i = 0;; i++) {
        int rc = c13_check(c, i, th_ms(20000));
        CHILD_CHECK(rc == 0, 30);
        (void)mproc_conn_poll(c, 0);
    }
}

/* A receiver killed at any moment takes with it only the messages it had
 * received: whatever is left is whole, in order, and continues right after
 * them. */
TEST(C13_receiver_killed_leaves_stream_whole)
{
    int round;
    for (round = 0; round < 6; round++) {
        mproc_conn *a, *b;
        mproc_process *p;
        uint8_t buf[3100];
        size_t len;
        unsigned i, first;
        int rc;
        ASSERT_OK(mproc_pipe(&a, &b, true));
        /* About 100 KiB: fits in the channel, so sending never waits. */
        for (i = 0; i < 70; i++)
            c13_send(b, i);
        p = th_start(c13_receiver, MPROC_LIST(mproc_value_conn(a)));
        th_sleep_ms(round % 3);
        ASSERT_OK(mproc_process_kill(p));
        ASSERT_OK(mproc_process_join(p, th_ms(30000)));
        mproc_process_destroy(p);
        /* The first message left, whichever it is, then every one after. */
        rc = mproc_conn_poll(a, 0);
        ASSERT(rc == 0 || rc == 1);
        if (rc == 0)
            first = 70;
        else {
            ASSERT_OK(mproc_conn_recv_bytes(a, buf, sizeof buf, &len, 0));
            ASSERT_GE(len, 4);
            first = (unsigned)buf[0] | (unsigned)buf[1] << 8;
            ASSERT_LT(first, 70);
            ASSERT_EQ(len, c13_size(first));
            first++;
        }
        for (i = first; i < 70; i++)
            ASSERT_EQ(c13_check(a, i, th_ms(2000)), 0);
        ASSERT_EQ(mproc_conn_poll(a, 0), 0);
        mproc_conn_destroy(a);
        mproc_conn_destroy(b);
    }
    return 0;
}

#define C13_BIG ((size_t)64 << 20)

/* Sends one C13_BIG message; its reader goes away in the middle of it. */
static int c13_big_sender(const mproc_value *args)
{
    mproc_conn *c = arg_conn(args, 0);
    uint8_t *buf = malloc(C13_BIG);
    int rc;
    CHILD_CHECK(buf != NULL, 40);
    fill_pattern(buf, C13_BIG, 9);
    rc = mproc_conn_send_bytes(c, buf, C13_BIG);
    free(buf);
    /* The reader's end is gone: broken framing closed it. */
    CHILD_CHECK(rc == MPROC_EPIPE, 41);
    return 0;
}

/* Begins to receive the large message, times out part-way, and exits. */
static int c13_big_quitter(const mproc_value *args)
{
    mproc_conn *c = arg_conn(args, 0);
    void *buf = NULL;
    size_t len = 0;
    int rc;
    CHILD_CHECK(mproc_conn_poll(c, th_ms(20000)) == 1, 42);
    rc = mproc_conn_recv_bytes_alloc(c, &buf, &len, 1);
    CHILD_CHECK(rc == MPROC_ETIMEDOUT, 100 - rc);
    return 0;
}

/* The one way an end's next holder can find the stream torn: a process
 * that ends in the middle of receiving a message larger than 64 KiB (here:
 * its receive timed out part-way). The rest of that message is no frame,
 * and the next holder is told so at once (MPROC_EFRAMING: the check word
 * of a header tells), never handed pieces of the payload as messages; the
 * sender's send then fails. */
TEST(C13_torn_large_message_is_eframing)
{
    mproc_conn *a, *b;
    mproc_process *s, *r;
    void *buf = NULL;
    size_t len = 0;
    ASSERT_OK(mproc_pipe(&a, &b, true));
    s = th_start(c13_big_sender, MPROC_LIST(mproc_value_conn(b)));
    r = th_start(c13_big_quitter, MPROC_LIST(mproc_value_conn(a)));
    th_join_ok(r, 30000);
    ASSERT_ERR(mproc_conn_recv_bytes_alloc(a, &buf, &len, th_ms(5000)),
               MPROC_EFRAMING);
    ASSERT_NULL(buf);
    th_join_ok(s, 30000);
    mproc_conn_destroy(a);
    mproc_conn_destroy(b);
    return 0;
}

/* --- C10, continued: broken framing ------------------------------------- */

/* A frame header announcing more than MPROC_MESSAGE_MAX, or whose check
 * word is wrong, is no frame of ours: what follows cannot be framed. The end is
 * closed at once: every later call on it is MPROC_EFRAMING, and the peer's
 * sends fail with MPROC_EPIPE instead of filling the channel and blocking.
 * Messages before the bad header arrive. */
TEST(C10_broken_framing_closes_end)
{
    /* Past the maximum, and a length that would do with a check word that
     * is wrong (bytes that only stand where a header should). */
    static const uint32_t bad_lengths[] = {0x40000001u, 0xFFFFFFFFu, 4};
    size_t k;
    for (k = 0; k < 3; k++) {
        mproc_conn *a, *b;
        mproc__export ex;
        uint8_t frame[8] = {0, 0, 0, 0, 1, 2, 3, 4};
        uint8_t *big = calloc(1, (size_t)4 << 20);
        mproc_value *v = NULL;
        mproc_wait_item it;
        char buf[8];
        size_t len = 0;
        void *p = NULL;
        ASSERT_NOT_NULL(big);
        ASSERT_OK(mproc_pipe(&a, &b, true));
        ASSERT_OK(mproc_conn_send_bytes(b, "good", 4));
        ASSERT_OK(mproc__conn_export(b, &ex));
        frame[0] = (uint8_t)bad_lengths[k];
        frame[1] = (uint8_t)(bad_lengths[k] >> 8);
        frame[2] = (uint8_t)(bad_lengths[k] >> 16);
        frame[3] = (uint8_t)(bad_lengths[k] >> 24);
        ASSERT_OK(mproc__os_chan_write(ex.h[0], frame, sizeof frame));
        ASSERT_OK(mproc_conn_recv_bytes(a, buf, sizeof buf, &len, th_ms(2000)));
        ASSERT_EQ(len, 4);
        ASSERT_ERR(mproc_conn_recv(a, &v, th_ms(2000)), MPROC_EFRAMING);
        ASSERT_NULL(v);
        ASSERT_ERR(mproc_conn_recv(a, &v, 0), MPROC_EFRAMING);
        ASSERT_ERR(mproc_conn_recv_bytes(a, buf, sizeof buf, &len, 0),
                   MPROC_EFRAMING);
        ASSERT_ERR(mproc_conn_recv_bytes_alloc(a, &p, &len, 0), MPROC_EFRAMING);
        ASSERT_ERR(mproc_conn_poll(a, 0), MPROC_EFRAMING);
        ASSERT_ERR(mproc_conn_send_bytes(a, "x", 1), MPROC_EFRAMING);
        memset(&it, 0, sizeof it);
        it.kind = MPROC_WAIT_CONN;
        it.conn = a;
        ASSERT_EQ(mproc_wait(&it, 1, th_ms(1000)), 1);
        ASSERT(it.ready);
        /* The peer: its sends fail instead of blocking once the channel is
         * full, and it reads end-of-file. */
        ASSERT_ERR(mproc_conn_send_bytes(b, big, (size_t)4 << 20), MPROC_EPIPE);
        ASSERT_ERR(mproc_conn_send_bytes(b, "y", 1), MPROC_EPIPE);
        ASSERT_ERR(mproc_conn_recv_bytes(b, buf, sizeof buf, &len, th_ms(2000)),
                   MPROC_EEOF);
        ASSERT_OK(mproc_conn_close(a));
        ASSERT_ERR(mproc_conn_close(a), MPROC_ECLOSED);
        free(big);
        mproc_conn_destroy(a);
        mproc_conn_destroy(b);
    }
    return 0;
}

/* --- C14 ---------------------------------------------------------------- */

/* Holds the lock (argument 0) and waits on the pipe end (argument 1): it
 * says "held", then waits for any message before it lets go and exits. */
static int c14_holder(const mproc_value *args)
{
    mproc_lock *l = NULL;
    mproc_conn *c = arg_conn(args, 1);
    char buf[8];
    size_t len;
    CHILD_CHECK(mproc_value_get_lock(mproc_list_get(args, 0), &l) == 0, 10);
    CHILD_CHECK(mproc_lock_acquire(l, MPROC_FOREVER) == 0, 11);
    CHILD_CHECK(mproc_conn_send_bytes(c, "held", 4) == 0, 12);
    CHILD_CHECK(
        mproc_conn_recv_bytes(c, buf, sizeof buf, &len, MPROC_FOREVER) == 0,
        13);
    CHILD_CHECK(mproc_lock_release(l) == 0, 14);
    return 0;
}

enum { C14_RECV, C14_POLL, C14_WAIT, C14_GET, C14_ACQUIRE, C14_JOIN, C14_N };

static const char *const c14_names[C14_N] = {"recv", "poll",    "wait",
                                             "get",  "acquire", "join"};

struct c14_objs {
    mproc_conn *idle; /* an end nothing is ever sent to */
    mproc_queue *q;   /* always empty */
    mproc_lock *l;    /* held by p */
    mproc_process *p; /* running until told to stop */
};

/* One call of kind k with the timeout t; checks its result. */
static void c14_call(struct c14_objs *o, int k, int t)
{
    mproc_value *v = NULL;
    mproc_wait_item it;
    switch (k) {
    case C14_RECV:
        ASSERT_ERR(mproc_conn_recv(o->idle, &v, t), MPROC_ETIMEDOUT);
        break;
    case C14_POLL:
        ASSERT_EQ(mproc_conn_poll(o->idle, t), 0);
        break;
    case C14_WAIT:
        memset(&it, 0, sizeof it);
        it.kind = MPROC_WAIT_CONN;
        it.conn = o->idle;
        ASSERT_EQ(mproc_wait(&it, 1, t), 0);
        break;
    case C14_GET:
        ASSERT_ERR(mproc_queue_get(o->q, &v, t),
                   t == 0 ? MPROC_EEMPTY : MPROC_ETIMEDOUT);
        break;
    case C14_ACQUIRE:
        ASSERT_ERR(mproc_lock_acquire(o->l, t),
                   t == 0 ? MPROC_EBUSY : MPROC_ETIMEDOUT);
        break;
    default:
        ASSERT_ERR(mproc_process_join(o->p, t), MPROC_ETIMEDOUT);
        break;
    }
}

/* Waits until the clock is `before` ns short of a whole millisecond (a
 * library that keeps deadlines in truncated milliseconds then crosses the
 * boundary between taking its deadline and waiting, and its wait ends up
 * to 1 ms early). Gives up after 3 ms (preempted). */
static void c14_align(int64_t before)
{
    int64_t start = th_now_ns(), now;
    do {
        int64_t phase;
        now = th_now_ns();
        phase = 1000000 - now % 1000000;
        if (phase <= before && phase > before - 250)
            return;
    } while (now - start < 3000000);
}

/* Every blocking call with a short positive timeout, many times over,
 * measured on a nanosecond clock: none may come back before its timeout
 * (a deadline kept in truncated milliseconds ends up to 1 ms early, so
 * get(1) used to return after microseconds). Half the calls start at any
 * fraction of a millisecond, half a few microseconds before a whole one.
 * Timeout 0 still returns at once. */
TEST(C14_timeout_never_early)
{
    static const int timeouts[] = {1, 2, 3, 1, 5, 1, 7, 2};
    const int reps = 6;
    struct c14_objs o;
    mproc_conn *other, *ctl, *child_end;
    int64_t early[C14_N] = {0}, worst[C14_N], fastest0[C14_N];
    int64_t total_early = 0;
    char buf[8];
    size_t len;
    int k, r, i;
    ASSERT_OK(mproc_pipe(&o.idle, &other, true));
    ASSERT_OK(mproc_queue_create(&o.q, 0));
    ASSERT_OK(mproc_lock_create(&o.l));
    ASSERT_OK(mproc_pipe(&ctl, &child_end, true));
    o.p = th_start(c14_holder, MPROC_LIST(mproc_value_lock(o.l),
                                          mproc_value_conn(child_end)));
    ASSERT_OK(mproc_conn_close(child_end));
    ASSERT_OK(mproc_conn_recv_bytes(ctl, buf, sizeof buf, &len, th_ms(20000)));
    for (k = 0; k < C14_N; k++) {
        worst[k] = INT64_MAX;
        fastest0[k] = INT64_MAX;
        for (r = 0; r < reps; r++) {
            for (i = 0; i < (int)(sizeof timeouts / sizeof timeouts[0]); i++) {
                int t = timeouts[i];
                int64_t t0, dt;
                if (i % 2 == 1)
                    c14_align(250 * (int64_t)(1 + (r * 4 + i / 2) % 20));
                t0 = th_now_ns();
                c14_call(&o, k, t);
                dt = th_now_ns() - t0;
                if (dt < (int64_t)t * 1000000)
                    early[k]++;
                if (dt - (int64_t)t * 1000000 < worst[k])
                    worst[k] = dt - (int64_t)t * 1000000;
                t0 = th_now_ns();
                c14_call(&o, k, 0);
                dt = th_now_ns() - t0;
                if (dt < fastest0[k])
                    fastest0[k] = dt;
            }
        }
        printf("# C14 %-7s %lld early of %d, closest %+lld us, timeout 0 "
               "in %lld us\n",
               c14_names[k], (long long)early[k],
               reps * (int)(sizeof timeouts / sizeof timeouts[0]),
               (long long)(worst[k] / 1000), (long long)(fastest0[k] / 1000));
        total_early += early[k];
    }
    fflush(stdout);
    ASSERT_EQ(total_early, 0);
    /* Timeout 0 does not wait: the fastest of its calls took well under a
     * millisecond (the slowest may have been preempted). */
    for (k = 0; k < C14_N; k++)
        ASSERT_LT(fastest0[k], 1000000);
    ASSERT_OK(mproc_conn_send_bytes(ctl, "quit", 4));
    th_join_ok(o.p, 30000);
    mproc_conn_destroy(ctl);
    mproc_conn_destroy(child_end);
    mproc_conn_destroy(o.idle);
    mproc_conn_destroy(other);
    mproc_queue_destroy(o.q);
    mproc_lock_destroy(o.l);
    return 0;
}

/* --- C12 ---------------------------------------------------------------- */

static int c12_sender(const mproc_value *args)
{
    mproc_conn *c = arg_conn(args, 0);
    mproc_value *v = seed_list();
    ASSERT_OK(mproc_conn_send(c, v));
    mproc_value_free(v);
    ASSERT_OK(mproc_conn_close(c));
    return 0;
}

static int c12_receiver(const mproc_value *args)
{
    mproc_conn *c = arg_conn(args, 0);
    mproc_value *v = NULL, *want = seed_list();
    char text[64];
    ASSERT_OK(mproc_conn_recv(c, &v, th_ms(20000)));
    ASSERT_OK(mproc_value_repr(v, text, sizeof text));
    printf("%s\n", text);
    ASSERT(mproc_value_equal(v, want));
    ASSERT_STR_EQ(text, "[42, None, 'hello', True]");
    mproc_value_free(v);
    mproc_value_free(want);
    ASSERT_ERR(mproc_conn_recv(c, &v, th_ms(20000)), MPROC_EEOF);
    return 0;
}

TEST(C12_seed_example)
{
    mproc_conn *a, *b;
    mproc_process *s, *r;
    ASSERT_OK(mproc_pipe(&a, &b, true));
    r = th_start(c12_receiver, MPROC_LIST(mproc_value_conn(a)));
    s = th_start(c12_sender, MPROC_LIST(mproc_value_conn(b)));
    ASSERT_OK(mproc_conn_close(a));
    ASSERT_OK(mproc_conn_close(b));
    th_join_ok(s, 30000);
    th_join_ok(r, 30000);
    mproc_conn_destroy(a);
    mproc_conn_destroy(b);
    return 0;
}

/* --- W01 ---------------------------------------------------------------- */

static int sleep_child(const mproc_value *args)
{
    th_sleep_ms((int)th_arg_int_ok(args, 0));
    return 0;
}

TEST(W01_wait_many)
{
    mproc_conn *a1, *b1, *a2, *b2;
    mproc_queue *q;
    mproc_process *p;
    mproc_wait_item it[4];
    int64_t t0, dt;
    void *buf;
    size_t len;
    int i;
    ASSERT_OK(mproc_pipe(&a1, &b1, true));
    ASSERT_OK(mproc_pipe(&a2, &b2, false));
    ASSERT_OK(mproc_queue_create(&q, 0));
    p = th_start(sleep_child, MPROC_LIST(mproc_int(th_ms(1500))));
    memset(it, 0, sizeof it);
    it[0].kind = MPROC_WAIT_CONN;
    it[0].conn = a1;
    it[1].kind = MPROC_WAIT_CONN;
    it[1].conn = a2;
    it[2].kind = MPROC_WAIT_QUEUE;
    it[2].queue = q;
    it[3].kind = MPROC_WAIT_PROCESS;
    it[3].process = p;

    /* Nothing ready: none at timeout, in time. */
    t0 = th_now_ms();
    ASSERT_EQ(mproc_wait(it, 4, 200), 0);
    dt = th_now_ms() - t0;
    ASSERT_GE(dt, 200 - 16); /* a 15.6 ms clock tick */
    ASSERT_LE(dt, th_ms(1000));
    for (i = 0; i < 4; i++)
        ASSERT(!it[i].ready);

    /* One pipe end. */
    ASSERT_OK(mproc_conn_send_bytes(b2, "x", 1));
    ASSERT_EQ(mproc_wait(it, 4, th_ms(5000)), 1);
    ASSERT(!it[0].ready && it[1].ready && !it[2].ready && !it[3].ready);
    ASSERT_OK(mproc_conn_recv_bytes_alloc(a2, &buf, &len, 0));
    mproc_free(buf);

    /* The queue, and then a pipe end as well. */
    ASSERT_OK(mproc_queue_put_bytes(q, "q", 1, 0));
    ASSERT_EQ(mproc_wait(it, 4, th_ms(5000)), 1);
    ASSERT(!it[0].ready && !it[1].ready && it[2].ready && !it[3].ready);
    ASSERT_OK(mproc_conn_send_bytes(b1, "y", 1));
    ASSERT_EQ(mproc_wait(it, 4, th_ms(5000)), 2);
    ASSERT(it[0].ready && !it[1].ready && it[2].ready && !it[3].ready);
    ASSERT_OK(mproc_queue_get_bytes(q, &buf, &len, 0));
    mproc_free(buf);
    ASSERT_OK(mproc_conn_recv_bytes_alloc(a1, &buf, &len, 0));
    mproc_free(buf);

    /* The process, once it exits (it sleeps 1.5 s). */
    t0 = th_now_ms();
    ASSERT_EQ(mproc_wait(it, 4, th_ms(20000)), 1);
    ASSERT(!it[0].ready && !it[1].ready && !it[2].ready && it[3].ready);
    dt = th_now_ms() - t0;
    ASSERT_LE(dt, th_ms(15000));
    th_join_ok(p, 30000);
    mproc_queue_destroy(q);
    mproc_conn_destroy(a1);
    mproc_conn_destroy(b1);
    mproc_conn_destroy(a2);
    mproc_conn_destroy(b2);
    return 0;
}

/* A wait blocked on a queue and a pipe wakes when another process puts. */
static int put_later_child(const mproc_value *args)
{
    mproc_queue *q = NULL;
    ASSERT_OK(mproc_value_get_queue(mproc_list_get(args, 0), &q));
    th_sleep_ms(300);
    ASSERT_OK(mproc_queue_put_bytes(q, "wake", 4, MPROC_FOREVER));
    return 0;
}

TEST(W01_wait_wakes_on_queue_put)
{
    mproc_conn *a, *b;
    mproc_queue *q;
    mproc_process *p;
    mproc_wait_item it[2];
    int64_t t0, dt;
    ASSERT_OK(mproc_pipe(&a, &b, true));
    ASSERT_OK(mproc_queue_create(&q, 0));
    memset(it, 0, sizeof it);
    it[0].kind = MPROC_WAIT_CONN;
    it[0].conn = a;
    it[1].kind = MPROC_WAIT_QUEUE;
    it[1].queue = q;
    p = th_start(put_later_child, MPROC_LIST(mproc_value_queue(q)));
    t0 = th_now_ms();
    ASSERT_EQ(mproc_wait(it, 2, th_ms(20000)), 1);
    dt = th_now_ms() - t0;
    ASSERT(it[1].ready && !it[0].ready);
    ASSERT_LE(dt, th_ms(15000));
    th_join_ok(p, 30000);
    mproc_queue_destroy(q);
    mproc_conn_destroy(a);
    mproc_conn_destroy(b);
    return 0;
}

/* More objects than the wait keeps on its stack. */
TEST(W01_wait_many_objects)
{
    enum { N = 40 };
    mproc_conn *a[N], *b[N];
    mproc_wait_item it[N];
    int i;
    memset(it, 0, sizeof it);
    for (i = 0; i < N; i++) {
        ASSERT_OK(mproc_pipe(&a[i], &b[i], false));
        it[i].kind = MPROC_WAIT_CONN;
        it[i].conn = a[i];
    }
    ASSERT_EQ(mproc_wait(it, N, 0), 0);
    ASSERT_OK(mproc_conn_send_bytes(b[33], "x", 1));
    ASSERT_OK(mproc_conn_send_bytes(b[3], "y", 1));
    ASSERT_EQ(mproc_wait(it, N, th_ms(5000)), 2);
    for (i = 0; i < N; i++)
        ASSERT_EQ(it[i].ready, i == 3 || i == 33);
    for (i = 0; i < N; i++) {
        mproc_conn_destroy(a[i]);
        mproc_conn_destroy(b[i]);
    }
    return 0;
}

TEST(W01_bad_arguments)
{
    mproc_wait_item it[1];
    memset(it, 0, sizeof it);
    ASSERT_ERR(mproc_wait(NULL, 1, 0), MPROC_EINVAL);
    ASSERT_ERR(mproc_wait(it, 0, 0), MPROC_EINVAL);
    it[0].kind = 99;
    ASSERT_ERR(mproc_wait(it, 1, 0), MPROC_EINVAL);
    it[0].kind = MPROC_WAIT_CONN;
    ASSERT_ERR(mproc_wait(it, 1, 0), MPROC_EINVAL); /* NULL conn */
    {
        mproc_conn *a, *b;
        ASSERT_OK(mproc_pipe(&a, &b, true));
        it[0].conn = a;
        ASSERT_ERR(mproc_wait(it, 1, -3), MPROC_EINVAL);
        ASSERT_OK(mproc_conn_close(a));
        ASSERT_ERR(mproc_wait(it, 1, 0), MPROC_ECLOSED);
        mproc_conn_destroy(a);
        mproc_conn_destroy(b);
    }
    return 0;
}
