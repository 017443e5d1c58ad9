/*
 * Tests of the queue area (rows Q01-Q19 of CONFORMANCE.md).
 *
 * Map: helpers; Q01-Q12; Q13 non-blocking calls under contention; Q14 lock
 * ownership (a live owner whose main thread exited, pid reuse,
 * cancellation, the process lock); Q15 hostile peers; Q16 positions after 2^32
 * items; Q17 the doorbell's latency; Q18 join after a death mid-item; stress
 * (label `stress`): Q19 kill storm, mixed sizes 4x4, pid reuse, hostile peers.
 *
 * Q15 and Q16 play a hostile or faulty peer through the test hooks of
 * src/common/internal.h (the runner links the static library); they know
 * the record format of src/common/queue.c: an 8-byte header (u32 length,
 * u32 flags: 1 first, 2 last), the payload padded to 8 bytes, and a
 * chain's first payload starting with its u64 total length and u64 id.
 */
#include "harness.h"

#include "../src/common/internal.h"

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>

/* --- helpers ------------------------------------------------------------ */

static mproc_queue *arg_queue(const mproc_value *args, size_t i)
{
    mproc_queue *q = NULL;
    ASSERT_OK(mproc_value_get_queue(mproc_list_get(args, i), &q));
    ASSERT_NOT_NULL(q);
    return q;
}

static void put_int(mproc_queue *q, int64_t i)
{
    mproc_value *v = mproc_int(i);
    ASSERT_OK(mproc_queue_put(q, v, MPROC_FOREVER));
    mproc_value_free(v);
}

static int64_t get_int(mproc_queue *q, int timeout_ms)
{
    mproc_value *v = NULL;
    int64_t i = -1;
    ASSERT_OK(mproc_queue_get(q, &v, timeout_ms));
    ASSERT_OK(mproc_value_get_int(v, &i));
    mproc_value_free(v);
    return i;
}

/* Waits until mproc_wait says the queue has something (a record). */
static void wait_ready(mproc_queue *q, int ms)
{
    mproc_wait_item w;
    memset(&w, 0, sizeof w);
    w.kind = MPROC_WAIT_QUEUE;
    w.queue = q;
    ASSERT_EQ(mproc_wait(&w, 1, ms), 1);
    ASSERT(w.ready);
}

static void qfill(uint8_t *p, size_t n, unsigned seed)
{
    size_t i;
    for (i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 13u + (size_t)seed * 101u + (i >> 16));
}

static bool qcheck(const uint8_t *p, size_t n, unsigned seed)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (p[i] != (uint8_t)(i * 13u + (size_t)seed * 101u + (i >> 16)))
            return false;
    return true;
}

/* --- Q01 ---------------------------------------------------------------- */

static int put_range_child(const mproc_value *args)
{
    mproc_queue *q = arg_queue(args, 0);
    int64_t i, n = th_arg_int_ok(args, 1);
    for (i = 0; i < n; i++)
        put_int(q, i);
    return 0;
}

TEST(Q01_fifo_order)
{
    mproc_queue *q;
    mproc_process *p;
    int64_t i;
    ASSERT_OK(mproc_queue_create(&q, 0));
    p = th_start(put_range_child,
                 MPROC_LIST(mproc_value_queue(q), mproc_int(20000)));
    for (i = 0; i < 20000; i++)
        ASSERT_EQ(get_int(q, th_ms(20000)), i);
    th_join_ok(p, 60000);
    ASSERT_EQ(mproc_queue_empty(q), 1);
    mproc_queue_destroy(q);
    return 0;
}

TEST(Q01_fifo_in_process)
{
    mproc_queue *q;
    int64_t i;
    ASSERT_OK(mproc_queue_create(&q, 0));
    for (i = 0; i < 1000; i++)
        put_int(q, i);
    for (i = 0; i < 1000; i++)
        ASSERT_EQ(get_int(q, 0), i);
    mproc_queue_destroy(q);
    return 0;
}

TEST(Q01_bad_arguments)
{
    mproc_queue *q;
    mproc_value *v = mproc_int(1), *out = NULL;
    void *buf = NULL;
    size_t len = 0;
    ASSERT_ERR(mproc_queue_create(NULL, 0), MPROC_EINVAL);
    ASSERT_ERR(mproc_queue_create_joinable(NULL, 0), MPROC_EINVAL);
    ASSERT_OK(mproc_queue_create(&q, 0));
    ASSERT_ERR(mproc_queue_put(NULL, v, 0), MPROC_EINVAL);
    ASSERT_ERR(mproc_queue_put(q, NULL, 0), MPROC_EINVAL);
    ASSERT_ERR(mproc_queue_put(q, v, -2), MPROC_EINVAL);
    ASSERT_ERR(mproc_queue_put_bytes(q, NULL, 4, 0), MPROC_EINVAL);
    ASSERT_ERR(mproc_queue_put_bytes(q, "x", MPROC_MESSAGE_MAX + 1, 0),
               MPROC_EMSGSIZE);
    ASSERT_ERR(mproc_queue_get(NULL, &out, 0), MPROC_EINVAL);
    ASSERT_ERR(mproc_queue_get(q, NULL, 0), MPROC_EINVAL);
    ASSERT_ERR(mproc_queue_get(q, &out, -7), MPROC_EINVAL);
    ASSERT_ERR(mproc_queue_get_bytes(q, NULL, &len, 0), MPROC_EINVAL);
    ASSERT_ERR(mproc_queue_get_bytes(q, &buf, NULL, 0), MPROC_EINVAL);
    ASSERT_ERR(mproc_queue_qsize(NULL), MPROC_EINVAL);
    ASSERT_ERR(mproc_queue_empty(NULL), MPROC_EINVAL);
    ASSERT_ERR(mproc_queue_full(NULL), MPROC_EINVAL);
    ASSERT_ERR(mproc_queue_close(NULL), MPROC_EINVAL);
    ASSERT_ERR(mproc_queue_task_done(NULL), MPROC_EINVAL);
    ASSERT_ERR(mproc_queue_join(NULL, 0), MPROC_EINVAL);
    /* Joinable calls on a plain queue. */
    ASSERT_ERR(mproc_queue_task_done(q), MPROC_ESTATE);
    ASSERT_ERR(mproc_queue_join(q, 0), MPROC_ESTATE);
    /* A handle value is no queue item. */
    {
        mproc_value *h = MPROC_LIST(mproc_value_queue(q));
        ASSERT_ERR(mproc_queue_put(q, h, 0), MPROC_EINVAL);
        mproc_value_free(h);
    }
    /* Empty bytes are an item. */
    ASSERT_OK(mproc_queue_put_bytes(q, NULL, 0, 0));
    ASSERT_EQ(mproc_queue_qsize(q), 1);
    ASSERT_OK(mproc_queue_get_bytes(q, &buf, &len, 0));
    ASSERT_EQ(len, 0);
    mproc_free(buf);
    mproc_value_free(v);
    ASSERT_NULL(mproc_queue_destroy(q));
    ASSERT_NULL(mproc_queue_destroy(NULL));
    return 0;
}

/* --- Q02 ---------------------------------------------------------------- */

static int q02_child(const mproc_value *args)
{
    mproc_queue *q = arg_queue(args, 0);
    mproc_value *v =
        MPROC_LIST(mproc_int(42), mproc_none(), mproc_str("hello"));
    ASSERT_OK(mproc_queue_put(q, v, MPROC_FOREVER));
    mproc_value_free(v);
    return 0;
}

TEST(Q02_seed_example)
{
    mproc_queue *q;
    mproc_process *p;
    mproc_value *v = NULL, *want;
    char text[64];
    ASSERT_OK(mproc_queue_create(&q, 0));
    p = th_start(q02_child, MPROC_LIST(mproc_value_queue(q)));
    ASSERT_OK(mproc_queue_get(q, &v, th_ms(20000)));
    want = MPROC_LIST(mproc_int(42), mproc_none(), mproc_str("hello"));
    ASSERT(mproc_value_equal(v, want));
    ASSERT_OK(mproc_value_repr(v, text, sizeof text));
    ASSERT_STR_EQ(text, "[42, None, 'hello']");
    mproc_value_free(v);
    mproc_value_free(want);
    th_join_ok(p, 60000);
    mproc_queue_destroy(q);
    return 0;
}

/* --- Q03 ---------------------------------------------------------------- */

static int get_later_child(const mproc_value *args)
{
    mproc_queue *q = arg_queue(args, 0);
    th_sleep_ms((int)th_arg_int_ok(args, 1));
    ASSERT_EQ(get_int(q, th_ms(20000)), 0);
    return 0;
}

TEST(Q03_maxsize_put_blocks)
{
    mproc_queue *q;
    mproc_process *p;
    mproc_value *v = mproc_int(2);
    int64_t t0, dt;
    ASSERT_OK(mproc_queue_create(&q, 2));
    put_int(q, 0);
    put_int(q, 1);
    ASSERT_EQ(mproc_queue_full(q), 1);
    ASSERT_ERR(mproc_queue_put(q, v, 0), MPROC_EFULL);
    ASSERT_ERR(mproc_queue_put_bytes(q, "b", 1, 0), MPROC_EFULL);
    t0 = th_now_ms();
    ASSERT_ERR(mproc_queue_put(q, v, 250), MPROC_ETIMEDOUT);
    dt = th_now_ms() - t0;
    ASSERT_GE(dt, 250 - 16); /* a 15.6 ms clock tick */
    ASSERT_LE(dt, th_ms(1500));
    ASSERT_EQ(mproc_queue_qsize(q), 2);
    /* A blocking put returns once a child takes an item. */
    p = th_start(get_later_child,
                 MPROC_LIST(mproc_value_queue(q), mproc_int(400)));
    t0 = th_now_ms();
    ASSERT_OK(mproc_queue_put(q, v, th_ms(20000)));
    dt = th_now_ms() - t0;
    ASSERT_GE(dt, 300);
    th_join_ok(p, 60000);
    ASSERT_EQ(get_int(q, 0), 1);
    ASSERT_EQ(get_int(q, 0), 2);
    mproc_value_free(v);
    mproc_queue_destroy(q);
    return 0;
}

/* The non-blocking put of a large item never blocks: it goes in whole when
 * the ring has room for all of it, else it is "full". */
TEST(Q03_nonblocking_put_large)
{
    mproc_queue *q;
    /* The ring holds 4 MiB (mproc.h). */
    size_t n = (size_t)3 << 20, big = (size_t)8 << 20;
    uint8_t *buf = malloc(big);
    void *out = NULL;
    size_t len = 0;
    int64_t t0;
    ASSERT_NOT_NULL(buf);
    qfill(buf, big, 4);
    ASSERT_OK(mproc_queue_create(&q, 0));
    ASSERT_OK(mproc_queue_put_bytes(q, buf, n, 0));
    t0 = th_now_ms();
    ASSERT_ERR(mproc_queue_put_bytes(q, buf, n, 0), MPROC_EFULL);
    ASSERT_ERR(mproc_queue_put_bytes(q, buf, big, 0), MPROC_EFULL);
    ASSERT_LE(th_now_ms() - t0, th_ms(1000));
    ASSERT_EQ(mproc_queue_qsize(q), 1);
    ASSERT_OK(mproc_queue_get_bytes(q, &out, &len, 0));
    ASSERT_EQ(len, n);
    ASSERT(qcheck(out, len, 4));
    mproc_free(out);
    /* Larger than the ring: never at once. */
    ASSERT_ERR(mproc_queue_put_bytes(q, buf, big, 0), MPROC_EFULL);
    ASSERT_EQ(mproc_queue_qsize(q), 0);
    free(buf);
    mproc_queue_destroy(q);
    return 0;
}

/* --- Q04 ---------------------------------------------------------------- */

TEST(Q04_get_timeout_and_empty)
{
    mproc_queue *q;
    mproc_value *v = NULL;
    void *buf = NULL;
    size_t len;
    int64_t t0, dt;
    ASSERT_OK(mproc_queue_create(&q, 0));
    ASSERT_ERR(mproc_queue_get(q, &v, 0), MPROC_EEMPTY);
    ASSERT_ERR(mproc_queue_get_bytes(q, &buf, &len, 0), MPROC_EEMPTY);
    t0 = th_now_ms();
    ASSERT_ERR(mproc_queue_get(q, &v, 300), MPROC_ETIMEDOUT);
    dt = th_now_ms() - t0;
    ASSERT_GE(dt, 300 - 16); /* a 15.6 ms clock tick */
    ASSERT_LE(dt, th_ms(1500));
    ASSERT_NULL(v);
    ASSERT_ERR(mproc_queue_get_bytes(q, &buf, &len, 50), MPROC_ETIMEDOUT);
    ASSERT_NULL(buf);
    mproc_queue_destroy(q);
    return 0;
}

/* --- Q05 ---------------------------------------------------------------- */

#define Q05_PRODUCERS 4
#define Q05_CONSUMERS 3
#define Q05_ITEMS 10000

static int q05_producer(const mproc_value *args)
{
    mproc_queue *q = arg_queue(args, 0);
    int64_t id = th_arg_int_ok(args, 1);
    int64_t i;
    for (i = 0; i < Q05_ITEMS; i++) {
        mproc_value *v = MPROC_LIST(mproc_int(id), mproc_int(i));
        ASSERT_OK(mproc_queue_put(q, v, MPROC_FOREVER));
        mproc_value_free(v);
    }
    return 0;
}

/* Gets until None; checks each producer's items come in order; reports a
 * bitmap of what it got through the result queue. */
static int q05_consumer(const mproc_value *args)
{
    mproc_queue *q = arg_queue(args, 0);
    mproc_queue *res = arg_queue(args, 1);
    size_t nbits = (size_t)Q05_PRODUCERS * Q05_ITEMS;
    uint8_t *seen = calloc(1, nbits / 8 + 1);
    int64_t last[Q05_PRODUCERS];
    int i;
    ASSERT_NOT_NULL(seen);
    for (i = 0; i < Q05_PRODUCERS; i++)
        last[i] = -1;
    for (;;) {
        mproc_value *v = NULL;
        int64_t id, seq;
        size_t bit;
        ASSERT_OK(mproc_queue_get(q, &v, th_ms(60000)));
        if (mproc_value_type(v) == MPROC_TYPE_NONE) {
            mproc_value_free(v);
            break;
        }
        ASSERT_OK(mproc_value_get_int(mproc_list_get(v, 0), &id));
        ASSERT_OK(mproc_value_get_int(mproc_list_get(v, 1), &seq));
        mproc_value_free(v);
        ASSERT(id >= 0 && id < Q05_PRODUCERS);
        ASSERT(seq >= 0 && seq < Q05_ITEMS);
        ASSERT_GT(seq, last[id]); /* each producer's items in order */
        last[id] = seq;
        bit = (size_t)(id * Q05_ITEMS + seq);
        ASSERT((seen[bit / 8] & (1u << (bit % 8))) == 0);
        seen[bit / 8] = (uint8_t)(seen[bit / 8] | (1u << (bit % 8)));
    }
    ASSERT_OK(mproc_queue_put_bytes(res, seen, nbits / 8 + 1, MPROC_FOREVER));
    free(seen);
    return 0;
}

TEST(Q05_many_producers_many_consumers)
{
    mproc_queue *q, *res;
    mproc_process *prod[Q05_PRODUCERS], *cons[Q05_CONSUMERS];
    size_t nbits = (size_t)Q05_PRODUCERS * Q05_ITEMS, i, k;
    uint8_t *all = calloc(1, nbits / 8 + 1);
    ASSERT_NOT_NULL(all);
    ASSERT_OK(mproc_queue_create(&q, 0));
    ASSERT_OK(mproc_queue_create(&res, 0));
    for (i = 0; i < Q05_CONSUMERS; i++)
        cons[i] = th_start(q05_consumer, MPROC_LIST(mproc_value_queue(q),
                                                    mproc_value_queue(res)));
    for (i = 0; i < Q05_PRODUCERS; i++)
        prod[i] = th_start(q05_producer, MPROC_LIST(mproc_value_queue(q),
                                                    mproc_int((int64_t)i)));
    for (i = 0; i < Q05_PRODUCERS; i++)
        th_join_ok(prod[i], 60000);
    for (i = 0; i < Q05_CONSUMERS; i++) {
        mproc_value *none = mproc_none();
        ASSERT_OK(mproc_queue_put(q, none, MPROC_FOREVER));
        mproc_value_free(none);
    }
    for (i = 0; i < Q05_CONSUMERS; i++) {
        void *buf = NULL;
        size_t len = 0;
        const uint8_t *b;
        ASSERT_OK(mproc_queue_get_bytes(res, &buf, &len, th_ms(60000)));
        ASSERT_EQ(len, nbits / 8 + 1);
        b = buf;
        for (k = 0; k < len; k++) {
            ASSERT_EQ(all[k] & b[k], 0); /* nobody got an item twice */
            all[k] = (uint8_t)(all[k] | b[k]);
        }
        mproc_free(buf);
    }
    for (i = 0; i < Q05_CONSUMERS; i++)
        th_join_ok(cons[i], 60000);
    for (k = 0; k < nbits; k++)
        ASSERT((all[k / 8] & (1u << (k % 8))) != 0); /* every item arrived */
    ASSERT_EQ(mproc_queue_qsize(q), 0);
    free(all);
    mproc_queue_destroy(q);
    mproc_queue_destroy(res);
    return 0;
}

/* --- Q06 ---------------------------------------------------------------- */

TEST(Q06_sizes)
{
    mproc_queue *q;
    int64_t i;
    ASSERT_OK(mproc_queue_create(&q, 3));
    ASSERT_EQ(mproc_queue_qsize(q), 0);
    ASSERT_EQ(mproc_queue_empty(q), 1);
    ASSERT_EQ(mproc_queue_full(q), 0);
    for (i = 1; i <= 3; i++) {
        put_int(q, i);
        ASSERT_EQ(mproc_queue_qsize(q), i);
        ASSERT_EQ(mproc_queue_empty(q), 0);
        ASSERT_EQ(mproc_queue_full(q), i == 3);
    }
    for (i = 2; i >= 0; i--) {
        (void)get_int(q, 0);
        ASSERT_EQ(mproc_queue_qsize(q), i);
        ASSERT_EQ(mproc_queue_empty(q), i == 0);
        ASSERT_EQ(mproc_queue_full(q), 0);
    }
    mproc_queue_destroy(q);
    /* Unbounded: never full. */
    ASSERT_OK(mproc_queue_create(&q, 0));
    for (i = 0; i < 100; i++)
        put_int(q, i);
    ASSERT_EQ(mproc_queue_qsize(q), 100);
    ASSERT_EQ(mproc_queue_full(q), 0);
    mproc_queue_destroy(q);
    return 0;
}

static int q06_child(const mproc_value *args)
{
    mproc_queue *q = arg_queue(args, 0);
    /* The parent put 5; the child sees them, takes 2 and puts 1. */
    ASSERT_EQ(mproc_queue_qsize(q), 5);
    ASSERT_EQ(mproc_queue_full(q), 0);
    (void)get_int(q, 0);
    (void)get_int(q, 0);
    put_int(q, 99);
    ASSERT_EQ(mproc_queue_qsize(q), 4);
    return 0;
}

TEST(Q06_sizes_across_processes)
{
    mproc_queue *q;
    mproc_process *p;
    int64_t i;
    ASSERT_OK(mproc_queue_create(&q, 6));
    for (i = 0; i < 5; i++)
        put_int(q, i);
    p = th_start(q06_child, MPROC_LIST(mproc_value_queue(q)));
    th_join_ok(p, 60000);
    ASSERT_EQ(mproc_queue_qsize(q), 4);
    ASSERT_EQ(mproc_queue_empty(q), 0);
    put_int(q, 5);
    put_int(q, 6);
    ASSERT_EQ(mproc_queue_full(q), 1);
    mproc_queue_destroy(q);
    return 0;
}

/* --- Q07 ---------------------------------------------------------------- */

static int put_and_exit(const mproc_value *args)
{
    mproc_queue *q = arg_queue(args, 0);
    put_int(q, 7);
    return 0;
}

static int put_and_hang(const mproc_value *args)
{
    mproc_queue *q = arg_queue(args, 0);
    int i;
    put_int(q, 8);
    for (i = 0; i < 600; i++)
        th_sleep_ms(100); /* killed long before */
    return 0;
}

TEST(Q07_item_survives_producer)
{
    mproc_queue *q;
    mproc_process *p;
    int64_t t0;
    ASSERT_OK(mproc_queue_create(&q, 0));
    /* The producer exits right after put returned. */
    p = th_start(put_and_exit, MPROC_LIST(mproc_value_queue(q)));
    th_join_ok(p, 60000);
    ASSERT_EQ(mproc_queue_qsize(q), 1);
    ASSERT_EQ(get_int(q, 0), 7);
    /* The producer is SIGKILLed right after put returned. */
    p = th_start(put_and_hang, MPROC_LIST(mproc_value_queue(q)));
    t0 = th_now_ms();
    while (mproc_queue_qsize(q) < 1) {
        ASSERT_LT(th_now_ms() - t0, th_ms(20000));
        th_sleep_ms(1);
    }
    ASSERT_OK(mproc_process_kill(p));
    ASSERT_EQ(th_join_code(p, 20000), -9);
    ASSERT_EQ(get_int(q, 0), 8);
    /* And the queue still works. */
    put_int(q, 9);
    ASSERT_EQ(get_int(q, 0), 9);
    mproc_queue_destroy(q);
    return 0;
}

/* A producer killed in the middle of a large item (it holds the producer
 * lock while it streams the chunks) neither wedges the queue nor leaves a
 * torn item: the partial item is dropped, other producers take the lock
 * over, and their items arrive intact. */
static int big_put_forever(const mproc_value *args)
{
    mproc_queue *q = arg_queue(args, 0);
    size_t n = (size_t)16 << 20;
    uint8_t *buf = malloc(n);
    ASSERT_NOT_NULL(buf);
    qfill(buf, n, 3);
    /* Nobody reads: this blocks with part of the item in the queue. */
    (void)mproc_queue_put_bytes(q, buf, n, MPROC_FOREVER);
    free(buf);
    return 0;
}

TEST(Q07_producer_killed_mid_large_item)
{
    mproc_queue *q;
    mproc_process *p;
    void *buf = NULL;
    size_t len = 0;
    ASSERT_OK(mproc_queue_create(&q, 0));
    p = th_start(big_put_forever, MPROC_LIST(mproc_value_queue(q)));
    /* Wait until the first chunk is in: the queue is ready for mproc_wait,
     * though no whole item counts yet. */
    wait_ready(q, th_ms(20000));
    ASSERT_EQ(mproc_queue_qsize(q), 0);
    th_sleep_ms(100);
    ASSERT_OK(mproc_process_kill(p));
    ASSERT_EQ(th_join_code(p, 20000), -9);
    /* The torn item is never returned. */
    ASSERT_ERR(mproc_queue_get_bytes(q, &buf, &len, 500), MPROC_ETIMEDOUT);
    ASSERT_NULL(buf);
    /* The queue works: the dead producer's lock is taken over. */
    ASSERT_OK(mproc_queue_put_bytes(q, "after", 5, th_ms(5000)));
    ASSERT_OK(mproc_queue_get_bytes(q, &buf, &len, th_ms(5000)));
    ASSERT_EQ(len, 5);
    ASSERT_MEM_EQ(buf, "after", 5);
    mproc_free(buf);
    ASSERT_EQ(mproc_queue_qsize(q), 0);
    mproc_queue_destroy(q);
    return 0;
}

/* --- Q08 ---------------------------------------------------------------- */

TEST(Q08_join_producer_before_consuming)
{
    mproc_queue *q;
    mproc_process *p;
    int64_t i;
    ASSERT_OK(mproc_queue_create(&q, 0));
    p = th_start(put_range_child,
                 MPROC_LIST(mproc_value_queue(q), mproc_int(5000)));
    th_join_ok(p, 60000); /* before a single get */
    ASSERT_EQ(mproc_queue_qsize(q), 5000);
    for (i = 0; i < 5000; i++)
        ASSERT_EQ(get_int(q, 0), i);
    mproc_queue_destroy(q);
    return 0;
}

/* --- Q09 ---------------------------------------------------------------- */

TEST(Q09_close)
{
    mproc_queue *q;
    mproc_value *v = mproc_int(3);
    ASSERT_OK(mproc_queue_create(&q, 0));
    put_int(q, 1);
    put_int(q, 2);
    ASSERT_OK(mproc_queue_close(q));
    ASSERT_ERR(mproc_queue_close(q), MPROC_ECLOSED);
    ASSERT_ERR(mproc_queue_put(q, v, 0), MPROC_ECLOSED);
    ASSERT_ERR(mproc_queue_put_bytes(q, "x", 1, MPROC_FOREVER), MPROC_ECLOSED);
    ASSERT_EQ(mproc_queue_qsize(q), 2);
    ASSERT_EQ(get_int(q, 0), 1);
    ASSERT_EQ(get_int(q, 0), 2);
    {
        mproc_value *out = NULL;
        ASSERT_ERR(mproc_queue_get(q, &out, 0), MPROC_EEMPTY);
    }
    mproc_value_free(v);
    mproc_queue_destroy(q);
    return 0;
}

static int close_then_put_child(const mproc_value *args)
{
    mproc_queue *q = arg_queue(args, 0);
    mproc_value *v = mproc_int(5);
    put_int(q, 4);
    ASSERT_OK(mproc_queue_close(q));
    ASSERT_ERR(mproc_queue_put(q, v, 0), MPROC_ECLOSED);
    mproc_value_free(v);
    return 0;
}

TEST(Q09_close_in_child)
{
    mproc_queue *q;
    mproc_process *p;
    ASSERT_OK(mproc_queue_create(&q, 0));
    p = th_start(close_then_put_child, MPROC_LIST(mproc_value_queue(q)));
    th_join_ok(p, 60000);
    /* The child's close is its own: the item it put is there, and this
     * process can still put. */
    ASSERT_EQ(get_int(q, 0), 4);
    put_int(q, 6);
    ASSERT_EQ(get_int(q, 0), 6);
    mproc_queue_destroy(q);
    return 0;
}

/* --- Q10 ---------------------------------------------------------------- */

static int task_worker(const mproc_value *args)
{
    mproc_queue *q = arg_queue(args, 0);
    int64_t i, n = th_arg_int_ok(args, 1);
    for (i = 0; i < n; i++) {
        ASSERT_EQ(get_int(q, th_ms(20000)), i);
        th_sleep_ms(1);
        ASSERT_OK(mproc_queue_task_done(q));
    }
    return 0;
}

TEST(Q10_joinable)
{
    mproc_queue *q;
    mproc_process *p;
    int64_t i, t0, dt;
    ASSERT_OK(mproc_queue_create_joinable(&q, 0));
    ASSERT_OK(mproc_queue_join(q, 0)); /* nothing unfinished */
    ASSERT_ERR(mproc_queue_task_done(q), MPROC_ERANGE);
    for (i = 0; i < 50; i++)
        put_int(q, i);
    t0 = th_now_ms();
    ASSERT_ERR(mproc_queue_join(q, 200), MPROC_ETIMEDOUT);
    dt = th_now_ms() - t0;
    ASSERT_GE(dt, 200 - 16); /* a 15.6 ms clock tick */
    ASSERT_LE(dt, th_ms(1500));
    ASSERT_ERR(mproc_queue_join(q, 0), MPROC_ETIMEDOUT);
    p = th_start(task_worker, MPROC_LIST(mproc_value_queue(q), mproc_int(50)));
    ASSERT_OK(mproc_queue_join(q, th_ms(30000)));
    /* join returned: every item was got and marked done. */
    ASSERT_EQ(mproc_queue_qsize(q), 0);
    th_join_ok(p, 60000);
    ASSERT_ERR(mproc_queue_task_done(q), MPROC_ERANGE);
    ASSERT_OK(mproc_queue_join(q, 0));
    mproc_queue_destroy(q);
    return 0;
}

/* --- Q11 ---------------------------------------------------------------- */

/* 1 MiB - 8 is the largest item that is one record in the 4 MiB ring. */
static const size_t q11_sizes[] = {
    (size_t)1 << 20,       (size_t)16 << 20,      5,
    ((size_t)1 << 20) - 3, ((size_t)1 << 20) - 8, ((size_t)1 << 20) - 7};
#define Q11_N (sizeof q11_sizes / sizeof q11_sizes[0])

static int q11_child(const mproc_value *args)
{
    mproc_queue *q = arg_queue(args, 0);
    uint8_t *buf = malloc(q11_sizes[1]);
    mproc_value *v;
    size_t i;
    ASSERT_NOT_NULL(buf);
    for (i = 0; i < Q11_N; i++) {
        qfill(buf, q11_sizes[i], (unsigned)i);
        ASSERT_OK(mproc_queue_put_bytes(q, buf, q11_sizes[i], MPROC_FOREVER));
    }
    /* A typed value of 1 MiB too. */
    qfill(buf, (size_t)1 << 20, 77);
    v = MPROC_LIST(mproc_str("big"), mproc_bytes(buf, (size_t)1 << 20));
    ASSERT_OK(mproc_queue_put(q, v, MPROC_FOREVER));
    mproc_value_free(v);
    free(buf);
    return 0;
}

TEST(Q11_large_items)
{
    mproc_queue *q;
    mproc_process *p;
    mproc_value *v = NULL;
    const void *bp;
    size_t i, blen;
    ASSERT_OK(mproc_queue_create(&q, 0));
    p = th_start(q11_child, MPROC_LIST(mproc_value_queue(q)));
    for (i = 0; i < Q11_N; i++) {
        void *buf = NULL;
        size_t len = 0;
        ASSERT_OK(mproc_queue_get_bytes(q, &buf, &len, th_ms(30000)));
        ASSERT_EQ(len, q11_sizes[i]);
        ASSERT(qcheck(buf, len, (unsigned)i));
        mproc_free(buf);
    }
    ASSERT_OK(mproc_queue_get(q, &v, th_ms(30000)));
    ASSERT_OK(mproc_value_get_bytes(mproc_list_get(v, 1), &bp, &blen));
    ASSERT_EQ(blen, (size_t)1 << 20);
    ASSERT(qcheck(bp, blen, 77));
    mproc_value_free(v);
    th_join_ok(p, 60000);
    ASSERT_EQ(mproc_queue_qsize(q), 0);
    mproc_queue_destroy(q);
    return 0;
}

/* --- Q12 ---------------------------------------------------------------- */

/* Gets items and forwards them to `res` until None. */
static int forward_consumer(const mproc_value *args)
{
    mproc_queue *q = arg_queue(args, 0);
    mproc_queue *res = arg_queue(args, 1);
    for (;;) {
        mproc_value *v = NULL;
        ASSERT_OK(mproc_queue_get(q, &v, MPROC_FOREVER));
        ASSERT_OK(mproc_queue_put(res, v, MPROC_FOREVER));
        if (mproc_value_type(v) == MPROC_TYPE_NONE) {
            mproc_value_free(v);
            return 0;
        }
        mproc_value_free(v);
    }
}

TEST(Q12_consumer_killed_while_waiting)
{
    mproc_queue *q, *res;
    mproc_process *victim, *other;
    int round;
    int64_t i;
    ASSERT_OK(mproc_queue_create(&q, 0));
    ASSERT_OK(mproc_queue_create(&res, 0));
    victim = th_start(forward_consumer,
                      MPROC_LIST(mproc_value_queue(q), mproc_value_queue(res)));
    other = th_start(forward_consumer,
                     MPROC_LIST(mproc_value_queue(q), mproc_value_queue(res)));
    /* Both are blocked in get on the empty queue by now. */
    th_sleep_ms(300);
    ASSERT_OK(mproc_process_kill(victim));
    ASSERT_EQ(th_join_code(victim, 20000), -9);
    /* Every item still reaches the surviving consumer, in order. */
    for (round = 0; round < 2; round++) {
        for (i = 0; i < 200; i++)
            put_int(q, i);
        for (i = 0; i < 200; i++)
            ASSERT_EQ(get_int(res, th_ms(20000)), i);
    }
    {
        mproc_value *none = mproc_none(), *back = NULL;
        ASSERT_OK(mproc_queue_put(q, none, MPROC_FOREVER));
        ASSERT_OK(mproc_queue_get(res, &back, th_ms(20000)));
        ASSERT_EQ(mproc_value_type(back), MPROC_TYPE_NONE);
        mproc_value_free(back);
        mproc_value_free(none);
    }
    th_join_ok(other, 60000);
    ASSERT_EQ(mproc_queue_qsize(q), 0);
    mproc_queue_destroy(q);
    mproc_queue_destroy(res);
    return 0;
}

/* A consumer killed at a random moment of a busy stream loses nothing that
 * it had not returned: whatever it forwarded plus what the survivor
 * forwarded is everything, once each. */
TEST(Q12_consumer_killed_in_stream)
{
    mproc_queue *q, *res;
    mproc_process *victim, *other;
    const int n = 20000;
    uint8_t *seen = calloc(1, (size_t)n);
    int64_t i;
    int got = 0;
    ASSERT_NOT_NULL(seen);
    ASSERT_OK(mproc_queue_create(&q, 0));
    ASSERT_OK(mproc_queue_create(&res, 0));
    victim = th_start(forward_consumer,
                      MPROC_LIST(mproc_value_queue(q), mproc_value_queue(res)));
    other = th_start(forward_consumer,
                     MPROC_LIST(mproc_value_queue(q), mproc_value_queue(res)));
    for (i = 0; i < n; i++) {
        put_int(q, i);
        if (i == n / 2)
            ASSERT_OK(mproc_process_kill(victim));
    }
    ASSERT_OK(mproc_process_join(victim, th_ms(20000)));
    mproc_process_destroy(victim);
    {
        mproc_value *none = mproc_none();
        ASSERT_OK(mproc_queue_put(q, none, MPROC_FOREVER));
        mproc_value_free(none);
    }
    th_join_ok(other, 60000);
    /* The victim may have taken one item and died before forwarding it:
     * that item was returned to nobody, which is not a loss the queue can
     * prevent; everything else must be there exactly once. */
    for (;;) {
        mproc_value *v = NULL;
        int64_t k;
        int rc = mproc_queue_get(res, &v, 0);
        if (rc == MPROC_EEMPTY)
            break;
        ASSERT_OK(rc);
        if (mproc_value_type(v) == MPROC_TYPE_NONE) {
            mproc_value_free(v);
            continue;
        }
        ASSERT_OK(mproc_value_get_int(v, &k));
        mproc_value_free(v);
        ASSERT(k >= 0 && k < n);
        ASSERT_EQ(seen[k], 0);
        seen[k] = 1;
        got++;
    }
    ASSERT_GE(got, n - 1);
    free(seen);
    mproc_queue_destroy(q);
    mproc_queue_destroy(res);
    return 0;
}

/* --- shared helpers of Q13-Q19 ------------------------------------------ */

#define QT_RING ((uint64_t)4 << 20) /* the ring: 4 MiB (mproc.h) */
#define QT_MAX_PAYLOAD ((uint32_t)(QT_RING / 4 - 8))
#define QT_FIRST 1u
#define QT_LAST 2u
#define QT_POS(items, bytes) (((uint64_t)(items) << 32) | (uint32_t)(bytes))
#define QT_ITEMS(pos) ((uint32_t)((pos) >> 32))
#define QT_BYTES(pos) ((uint32_t)(pos))

static mproc_shm *arg_shm(const mproc_value *args, size_t i)
{
    mproc_shm *m = NULL;
    ASSERT_OK(mproc_value_get_shm(mproc_list_get(args, i), &m));
    ASSERT_NOT_NULL(m);
    return m;
}

static void put_blob(mproc_queue *q, size_t n, unsigned seed, int timeout_ms)
{
    uint8_t *b = malloc(n > 0 ? n : 1);
    ASSERT_NOT_NULL(b);
    qfill(b, n, seed);
    ASSERT_OK(mproc_queue_put_bytes(q, b, n, timeout_ms));
    free(b);
}

static void get_blob(mproc_queue *q, size_t n, unsigned seed, int timeout_ms)
{
    void *b = NULL;
    size_t len = 0;
    ASSERT_OK(mproc_queue_get_bytes(q, &b, &len, timeout_ms));
    ASSERT_EQ(len, n);
    ASSERT(qcheck(b, len, seed));
    mproc_free(b);
}

/* Appends a forged record at *pos: a header saying (len, flags), then the
 * `n` payload bytes actually written; *pos moves past what was written. */
static void forge(mproc_queue *q, uint64_t *pos, uint32_t len, uint32_t flags,
                  const void *payload, size_t n)
{
    uint32_t hd[2];
    hd[0] = len;
    hd[1] = flags;
    mproc__queue_test_ring(q, *pos, hd, sizeof hd);
    if (n > 0)
        mproc__queue_test_ring(q, *pos + 8, payload, n);
    *pos += (8 + n + 7) & ~(size_t)7;
}

/* Publishes forged records: the tail moves to byte position `end`, with
 * `items` more whole items. */
static void forge_publish(mproc_queue *q, uint64_t end, uint32_t items)
{
    uint64_t t = mproc__queue_test_get(q, MPROC__QT_TAIL);
    mproc__queue_test_set(q, MPROC__QT_TAIL,
                          QT_POS(QT_ITEMS(t) + items, (uint32_t)end));
}

/* Makes the queue empty again after a forgery: the tail back to the head. */
static void forge_reset(mproc_queue *q)
{
    mproc__queue_test_set(q, MPROC__QT_TAIL,
                          mproc__queue_test_get(q, MPROC__QT_HEAD));
}

/* The queue works: an item goes in and comes out whole. */
static void round_trip(mproc_queue *q, size_t n, unsigned seed)
{
    put_blob(q, n, seed, th_ms(5000));
    get_blob(q, n, seed, th_ms(5000));
}

/* --- Q13 ---------------------------------------------------------------- */

/* Puts and gets 64-byte items as fast as it can until the flag is set. */
static int churn_child(const mproc_value *args)
{
    mproc_queue *q = arg_queue(args, 0);
    _Atomic int *stop = mproc_shm_ptr(arg_shm(args, 1));
    uint8_t item[64];
    memset(item, 0x5a, sizeof item);
    while (!atomic_load(stop)) {
        void *b = NULL;
        size_t len = 0;
        ASSERT_OK(mproc_queue_put_bytes(q, item, sizeof item, th_ms(30000)));
        ASSERT_OK(mproc_queue_get_bytes(q, &b, &len, th_ms(30000)));
        mproc_free(b);
    }
    return 0;
}

/* Timeout 0 means "do not wait for room or items", not "fail when another
 * process holds the side's lock for a copy": with three busy processes
 * contending for both locks, every non-blocking put (the queue has room)
 * and every non-blocking get (it has items) succeeds. */
TEST(Q13_nonblocking_calls_under_contention)
{
    mproc_queue *q;
    mproc_shm *m;
    mproc_process *p[3];
    _Atomic int *stop;
    uint8_t item[64];
    int i, full = 0, empty = 0;
    memset(item, 0x33, sizeof item);
    ASSERT_OK(mproc_queue_create(&q, 0));
    ASSERT_OK(mproc_shm_create(&m, sizeof(_Atomic int)));
    stop = mproc_shm_ptr(m);
    atomic_store(stop, 0);
    for (i = 0; i < 64; i++)
        ASSERT_OK(mproc_queue_put_bytes(q, item, sizeof item, 0));
    for (i = 0; i < 3; i++)
        p[i] = th_start(churn_child,
                        MPROC_LIST(mproc_value_queue(q), mproc_value_shm(m)));
    th_sleep_ms(300); /* all three busy by now */
    /* Over about two seconds, so that lock holders get preempted (more
     * busy processes than cores): a pause of 1 ms every 4th round. */
    for (i = 0; i < 2000; i++) {
        void *b = NULL;
        size_t len = 0;
        int rc = mproc_queue_put_bytes(q, item, sizeof item, 0);
        if (rc == MPROC_EFULL)
            full++;
        else
            ASSERT_OK(rc);
        rc = mproc_queue_get_bytes(q, &b, &len, 0);
        if (rc == MPROC_EEMPTY)
            empty++;
        else
            ASSERT_OK(rc);
        mproc_free(b);
        if (i % 4 == 0)
            th_sleep_ms(1);
    }
    atomic_store(stop, 1);
    for (i = 0; i < 3; i++)
        th_join_ok(p[i], 60000);
    ASSERT_EQ(full, 0);
    ASSERT_EQ(empty, 0);
    ASSERT_EQ(mproc_queue_qsize(q), 64);
    mproc_shm_destroy(m);
    mproc_queue_destroy(q);
    return 0;
}

/* --- Q14: a live owner whose main thread has exited --------------------- */

#define Q14_BIG ((size_t)16 << 20)

/* The child's arguments, kept reachable once its main thread has gone (for
 * LeakSanitizer, which scans live threads only). */
static const mproc_value *q14_args;

static void *q14_big_put_thread(void *arg)
{
    const mproc_value *args = arg;
    mproc_queue *q = arg_queue(args, 0);
    mproc_queue *res = arg_queue(args, 1);
    uint8_t *buf = malloc(Q14_BIG);
    int rc;
    ASSERT_NOT_NULL(buf);
    qfill(buf, Q14_BIG, 14);
    /* Nobody gets yet: this holds the producer lock mid-chain. */
    rc = mproc_queue_put_bytes(q, buf, Q14_BIG, MPROC_FOREVER);
    free(buf);
    put_int(res, rc);
    /* The last thread ends the process (returning would too, but not
     * under ThreadSanitizer, whose own thread lives on). */
    fflush(NULL);
    _Exit(0);
}

static int q14_exit_main_child(const mproc_value *args)
{
    mproc_queue *q = arg_queue(args, 0);
    mproc_queue *res = arg_queue(args, 1);
    pthread_t t;
    q14_args = args;
    ASSERT_EQ(
        pthread_create(&t, NULL, q14_big_put_thread, (void *)(uintptr_t)args),
        0);
    wait_ready(q, th_ms(20000)); /* the chain streams: the lock is held */
    put_int(res, 1);
    pthread_exit(NULL); /* the process lives on in the other thread */
    return 0;
}

/* A process whose main thread has exited (a zombie thread leader, state Z
 * in /proc) is alive: the lock its other thread holds in the middle of a
 * chain is not taken from it, and the item arrives whole. */
static void *q14_put_x_thread(void *arg)
{
    int rc = mproc_queue_put_bytes(arg, "x", 1, th_ms(20000));
    return (void *)(intptr_t)rc;
}

TEST(Q14_live_owner_main_thread_exited)
{
    mproc_queue *q, *res;
    mproc_process *p;
    pthread_t other;
    void *rc = NULL;
    void *buf = NULL;
    size_t len = 0;
    int64_t t0;
    ASSERT_OK(mproc_queue_create(&q, 0));
    ASSERT_OK(mproc_queue_create(&res, 0));
    p = th_start(q14_exit_main_child,
                 MPROC_LIST(mproc_value_queue(q), mproc_value_queue(res)));
    ASSERT_EQ(get_int(res, th_ms(20000)), 1);
    /* Its main thread is gone; give a pid-based liveness check (every
     * 20 ms) every chance to misread that. */
    th_sleep_ms(300);
    t0 = th_now_ms();
    ASSERT_ERR(mproc_queue_put_bytes(q, "x", 1, 500), MPROC_ETIMEDOUT);
    ASSERT_GE(th_now_ms() - t0, 500 - 16);
    /* Non-blocking: the holder waits for room, so no waiting for it. */
    ASSERT_ERR(mproc_queue_put_bytes(q, "x", 1, 0), MPROC_EFULL);
    /* Another producer waits (a lock taken from the live owner would let it
     * write into the middle of the chain as soon as there is room). */
    ASSERT_EQ(pthread_create(&other, NULL, q14_put_x_thread, q), 0);
    th_sleep_ms(300);
    /* Nothing was stolen: the item arrives whole, then the other's. */
    ASSERT_OK(mproc_queue_get_bytes(q, &buf, &len, th_ms(20000)));
    ASSERT_EQ(len, Q14_BIG);
    ASSERT(qcheck(buf, len, 14));
    mproc_free(buf);
    ASSERT_EQ(pthread_join(other, &rc), 0);
    ASSERT_EQ((intptr_t)rc, 0);
    ASSERT_OK(mproc_queue_get_bytes(q, &buf, &len, th_ms(20000)));
    ASSERT_EQ(len, 1);
    mproc_free(buf);
    /* Its own put returned 0. */
    ASSERT_EQ(get_int(res, th_ms(20000)), 0);
    ASSERT_EQ(th_join_code(p, 20000), 0);
    ASSERT_EQ(mproc_queue_qsize(q), 0);
    round_trip(q, 100, 1);
    mproc_queue_destroy(q);
    mproc_queue_destroy(res);
    return 0;
}

/* --- Q14: pid reuse ------------------------------------------------------ */

/* In the process that got the dead owner's pid (so its main thread has the
 * dead owner's thread id too): its main thread puts, which needs the
 * producer lock the dead one held, while a second thread gets (dropping
 * the dead chain, which frees the room the put waits for). */
static void *q14_reuse_getter(void *arg)
{
    mproc_queue *q = arg;
    void *buf = NULL;
    size_t len = 0;
    int rc;
    th_sleep_ms(200);
    rc = mproc_queue_get_bytes(q, &buf, &len, th_ms(10000));
    if (rc == 0 && (len != 4 || memcmp(buf, "mine", 4) != 0))
        rc = -1000;
    mproc_free(buf);
    return (void *)(intptr_t)rc;
}

static int q14_reuser(const mproc_value *args)
{
    mproc_queue *q = arg_queue(args, 0);
    int64_t pid = th_arg_int(args, 1);
    pthread_t t;
    void *got = NULL;
    CHILD_CHECK(mproc_process_pid(mproc_current_process()) == pid, 10);
    CHILD_CHECK(pthread_create(&t, NULL, q14_reuse_getter, q) == 0, 11);
    CHILD_CHECK(mproc_queue_put_bytes(q, "mine", 4, th_ms(10000)) == 0, 12);
    CHILD_CHECK(pthread_join(t, &got) == 0, 13);
    CHILD_CHECK((intptr_t)got == 0, 14);
    CHILD_CHECK(mproc_queue_qsize(q) == 0, 15);
    return 0;
}

/* Kills `owner` (in a pid namespace, holding a lock) and reaps it, then
 * starts fn(args) so that it gets the dead owner's pid: the new process,
 * or NULL with *why 90 (the pid cannot be chosen) or 91 (not reused). */
static mproc_process *q14_kill_and_reuse(mproc_process *owner, mproc_target fn,
                                         mproc_value *args, int *why)
{
    int64_t pid = mproc_process_pid(owner);
    mproc_process *r;
    *why = 1; /* a failure, should a path below ever forget to say */
    /* Start times count clock ticks (Linux: 10 ms): the next process must
     * start in a later one, as it always does when pids wrap for real. */
    th_sleep_ms(50);
    ASSERT_OK(mproc_process_kill(owner));
    ASSERT_EQ(th_join_code(owner, 20000), -9); /* reaped: its pid is free */
    if (th_platform_next_pid(pid) != 0) {
        mproc_value_free(args);
        *why = 90;
        return NULL;
    }
    r = th_start(fn, args);
    if (mproc_process_pid(r) != pid) {
        printf("pid %lld was not reused (got %lld)\n", (long long)pid,
               (long long)mproc_process_pid(r));
        (void)mproc_process_kill(r);
        (void)th_join_code(r, 20000);
        *why = 91;
        return NULL;
    }
    return r;
}

/* One round in a pid namespace: an owner is killed holding the producer
 * lock mid-chain, the next process started gets its pid, and takes the
 * lock over. */
static int q14_reuse_round(mproc_queue *q)
{
    mproc_process *owner, *r;
    int64_t pid;
    int code;
    owner = th_start(big_put_forever, MPROC_LIST(mproc_value_queue(q)));
    wait_ready(q, th_ms(20000));
    pid = mproc_process_pid(owner);
    r = q14_kill_and_reuse(owner, q14_reuser,
                           MPROC_LIST(mproc_value_queue(q), mproc_int(pid)),
                           &code);
    if (r == NULL)
        return code;
    code = th_join_code(r, 60000);
    if (code != 0)
        printf("the process that got pid %lld failed check %d\n",
               (long long)pid, code);
    return code;
}

static int q14_reuse_body(void *arg)
{
    int rounds = *(int *)arg;
    mproc_queue *q;
    int i, rc = 0;
    ASSERT_OK(mproc_queue_create(&q, 0));
    for (i = 0; i < rounds && rc == 0; i++)
        rc = q14_reuse_round(q);
    mproc_queue_destroy(q);
    return rc;
}

static int q14_pid_reuse(int rounds)
{
    const char *why = "";
    int rc = th_platform_pid_namespace(q14_reuse_body, &rounds, &why);
    if (rc == -1) {
        printf("SKIP: %s\n", why);
        return TH_SKIP;
    }
    ASSERT_EQ(rc, 0);
    return 0;
}

/* A dead owner whose pid went to a new process is still dead: the new
 * process takes its lock over (it does not wait on "itself"). */
TEST(Q14_pid_reuse)
{
    return q14_pid_reuse(1);
}

/* --- Q14: thread cancellation -------------------------------------------- */

typedef struct q14_cancel {
    mproc_queue *q;
    _Atomic int stop;
    _Atomic int cleaned;
} q14_cancel;

static void q14_free_value(void *v)
{
    mproc_value_free(v);
}

static void *q14_cancel_putter(void *arg)
{
    q14_cancel *c = arg;
    uint8_t item[64];
    mproc_value *v;
    memset(item, 7, sizeof item);
    v = MPROC_LIST(mproc_bytes(item, sizeof item));
    pthread_cleanup_push(q14_free_value, v);
    for (;;) {
        /* Typed and raw puts: no cancellation point outside them. */
        (void)mproc_queue_put_bytes(c->q, item, sizeof item, MPROC_FOREVER);
        (void)mproc_queue_put(c->q, v, MPROC_FOREVER);
    }
    pthread_cleanup_pop(1);
    return NULL;
}

/* Keeps a waiter registered on the queue's doorbell (so that puts ring it)
 * and drains it. */
static void *q14_bell_waiter(void *arg)
{
    q14_cancel *c = arg;
    while (!atomic_load(&c->stop)) {
        mproc_wait_item w;
        void *b = NULL;
        size_t len = 0;
        memset(&w, 0, sizeof w);
        w.kind = MPROC_WAIT_QUEUE;
        w.queue = c->q;
        ASSERT_OK(mproc_wait(&w, 1, 20));
        while (mproc_queue_get_bytes(c->q, &b, &len, 0) == 0)
            mproc_free(b);
    }
    return NULL;
}

static void q14_mark_cleaned(void *arg)
{
    atomic_store(&((q14_cancel *)arg)->cleaned, 1);
}

static void *q14_blocked_call(void *arg)
{
    q14_cancel *c = arg;
    void *b = NULL;
    size_t len = 0;
    mproc_value *v = mproc_int(5);
    pthread_cleanup_push(q14_mark_cleaned, c);
    pthread_cleanup_push(q14_free_value, v);
    if (mproc_queue_qsize(c->q) == 0)
        (void)mproc_queue_get_bytes(c->q, &b, &len, MPROC_FOREVER);
    else
        (void)mproc_queue_put(c->q, v, MPROC_FOREVER); /* full: sleeps */
    pthread_cleanup_pop(1);
    pthread_cleanup_pop(0);
    return NULL;
}

static void q14_cancel_and_join(pthread_t t, q14_cancel *c)
{
    int64_t t0 = th_now_ms();
    ASSERT_EQ(pthread_cancel(t), 0);
    while (!atomic_load(&c->cleaned)) {
        ASSERT_LT(th_now_ms() - t0, th_ms(3000));
        th_sleep_ms(5);
    }
    ASSERT_EQ(pthread_join(t, NULL), 0);
}

/* A thread cancelled while it puts never leaves a side lock held by its
 * (live) process: nothing under a lock is a cancellation point, not even
 * the doorbell's write. A thread blocked in get, or in put on a full
 * queue, can be cancelled while it sleeps. */
TEST(Q14_cancel_never_leaves_a_lock)
{
    q14_cancel c;
    pthread_t putter, waiter, blocked;
    void *b = NULL;
    size_t len = 0;
    int i;
    memset(&c, 0, sizeof c);
    ASSERT_OK(mproc_queue_create(&c.q, 0));
    ASSERT_EQ(pthread_create(&waiter, NULL, q14_bell_waiter, &c), 0);
    ASSERT_EQ(pthread_create(&putter, NULL, q14_cancel_putter, &c), 0);
    for (i = 0; i < 5; i++) {
        th_sleep_ms(100);
        if (i == 2) {
            ASSERT_EQ(pthread_cancel(putter), 0);
            ASSERT_EQ(pthread_join(putter, NULL), 0);
        }
    }
    atomic_store(&c.stop, 1);
    ASSERT_EQ(pthread_join(waiter, NULL), 0);
    /* Both locks are free. */
    ASSERT_OK(mproc_queue_put_bytes(c.q, "after", 5, 1000));
    while (mproc_queue_get_bytes(c.q, &b, &len, 0) == 0) {
        ASSERT(len == 5 || len == 64 || len > 64);
        mproc_free(b);
    }
    ASSERT_EQ(mproc_queue_qsize(c.q), 0);
    /* A get blocked on the empty queue is cancelled in its sleep. */
    ASSERT_EQ(pthread_create(&blocked, NULL, q14_blocked_call, &c), 0);
    th_sleep_ms(200);
    q14_cancel_and_join(blocked, &c);
    round_trip(c.q, 10, 2);
    mproc_queue_destroy(c.q);
    /* So is a put blocked on a full queue (its encoded item is freed). */
    ASSERT_OK(mproc_queue_create(&c.q, 1));
    put_int(c.q, 1);
    atomic_store(&c.cleaned, 0);
    ASSERT_EQ(pthread_create(&blocked, NULL, q14_blocked_call, &c), 0);
    th_sleep_ms(200);
    q14_cancel_and_join(blocked, &c);
    ASSERT_EQ(get_int(c.q, 1000), 1);
    put_int(c.q, 2);
    ASSERT_EQ(get_int(c.q, 1000), 2);
    mproc_queue_destroy(c.q);
    return 0;
}

/* --- Q14: the process lock ------------------------------------------------
 *
 * The side locks' kind where the backend's mutex is a kernel object
 * (src/common/plock.c): its owner is a process identity, so these check
 * that identity directly on every platform, whichever kind the queue uses
 * here. The children only take the lock without waiting for it (trylock, or
 * timeout 0), which needs no handle; the waits happen in this process. */

typedef struct plk_shared {
    alignas(64) unsigned char lock[MPROC__PLOCK_SIZE];
    _Atomic int held;    /* the child holds the lock */
    _Atomic int release; /* the child may end */
    _Atomic int result;  /* the child's lock result, +1000 */
} plk_shared;

static plk_shared *plk_new(mproc_shm **m, mproc__handle *h)
{
    plk_shared *s;
    ASSERT_OK(mproc_shm_create(m, sizeof *s));
    s = mproc_shm_ptr(*m);
    ASSERT_OK(mproc__plock_init(s->lock, h));
    return s;
}

static void plk_free(mproc_shm *m, plk_shared *s, mproc__handle h)
{
    mproc__plock_destroy(s->lock, h);
    mproc_shm_destroy(m);
}

static void plk_wait_held(plk_shared *s)
{
    int64_t t0 = th_now_ms();
    while (!atomic_load(&s->held)) {
        ASSERT_LT(th_now_ms() - t0, th_ms(20000));
        th_sleep_ms(2);
    }
}

/* Takes the lock and holds it until told to end (then ends holding it). */
static int plk_hold_child(const mproc_value *args)
{
    plk_shared *s = mproc_shm_ptr(arg_shm(args, 0));
    CHILD_CHECK(mproc__plock_trylock(s->lock) == 0, 10);
    atomic_store(&s->held, 1);
    while (!atomic_load(&s->release))
        th_sleep_ms(2);
    return 0;
}

typedef struct plk_waiter {
    plk_shared *s;
    mproc__handle h;
    int timeout_ms;
    int rc;
    int64_t at; /* when the lock call returned */
    _Atomic int done;
} plk_waiter;

static void *plk_wait_thread(void *arg)
{
    plk_waiter *w = arg;
    w->rc = mproc__plock_lock(w->s->lock, w->h, w->timeout_ms);
    w->at = th_now_ms();
    atomic_store(&w->done, 1);
    return NULL;
}

/* A live owner in another process keeps the lock; once it has died
 * (killed, or ended holding it) the lock is taken over with
 * MPROC_EOWNERDEAD: by a locker blocked without limit within 100 ms of the
 * death, at once by a timeout-0 attempt. */
TEST(Q14_process_lock_dead_owner_taken_over)
{
    mproc_shm *m;
    mproc__handle h;
    plk_shared *s = plk_new(&m, &h);
    mproc_process *p;
    plk_waiter w;
    pthread_t t;
    int64_t t0, dead_at;
    p = th_start(plk_hold_child, MPROC_LIST(mproc_value_shm(m)));
    plk_wait_held(s);
    ASSERT_ERR(mproc__plock_trylock(s->lock), MPROC_EBUSY);
    ASSERT_ERR(mproc__plock_lock(s->lock, h, 0), MPROC_EBUSY);
    t0 = th_now_ms();
    ASSERT_ERR(mproc__plock_lock(s->lock, h, 100), MPROC_ETIMEDOUT);
    ASSERT_GE(th_now_ms() - t0, 100 - 1);
    ASSERT_ERR(mproc__plock_unlock(s->lock, h), MPROC_ENOTOWNER);
    memset(&w, 0, sizeof w);
    w.s = s;
    w.h = h;
    w.timeout_ms = MPROC_FOREVER;
    ASSERT_EQ(pthread_create(&t, NULL, plk_wait_thread, &w), 0);
    th_sleep_ms(100); /* several checks of a live owner */
    ASSERT_EQ(atomic_load(&w.done), 0);
    ASSERT_OK(mproc_process_kill(p));
    ASSERT_EQ(th_join_code(p, 20000), -9);
    dead_at = th_now_ms();
    ASSERT_EQ(pthread_join(t, NULL), 0);
    ASSERT_ERR(w.rc, MPROC_EOWNERDEAD);
    printf("taken over %lld ms after the owner's death\n",
           (long long)(w.at - dead_at));
    ASSERT_LE(w.at - dead_at, th_ms(100));
    ASSERT_OK(mproc__plock_unlock(s->lock, h));
    ASSERT_OK(mproc__plock_lock(s->lock, h, 0));
    ASSERT_OK(mproc__plock_unlock(s->lock, h));
    /* An owner that exits holding it. */
    atomic_store(&s->held, 0);
    atomic_store(&s->release, 0);
    p = th_start(plk_hold_child, MPROC_LIST(mproc_value_shm(m)));
    plk_wait_held(s);
    atomic_store(&s->release, 1);
    ASSERT_EQ(th_join_code(p, 20000), 0);
    ASSERT_ERR(mproc__plock_lock(s->lock, h, 0), MPROC_EOWNERDEAD);
    ASSERT_OK(mproc__plock_unlock(s->lock, h));
    plk_free(m, s, h);
    return 0;
}

/* The child's shared block, kept reachable once its main thread has gone
 * (for LeakSanitizer, which scans live threads only). */
static plk_shared *plk_child_block;

static void *plk_hold_thread(void *arg)
{
    plk_shared *s = arg;
    if (mproc__plock_trylock(s->lock) == 0)
        atomic_store(&s->held, 1);
    else
        atomic_store(&s->result, 1000 + MPROC_EBUSY);
    while (!atomic_load(&s->release))
        th_sleep_ms(2);
    /* The last thread ends the process holding the lock. */
    fflush(NULL);
    _Exit(0);
}

static int plk_exit_main_child(const mproc_value *args)
{
    pthread_t t;
    plk_child_block = mproc_shm_ptr(arg_shm(args, 0));
    CHILD_CHECK(pthread_create(&t, NULL, plk_hold_thread, plk_child_block) == 0,
                10);
    while (!atomic_load(&plk_child_block->held))
        th_sleep_ms(2);
    pthread_exit(NULL); /* the process lives on in the other thread */
    return 0;
}

/* A process whose main thread has exited while another thread holds the
 * lock runs: the lock is never taken from it, however long others wait;
 * once the process has ended it is taken over. */
TEST(Q14_process_lock_live_owner_main_thread_exited)
{
    mproc_shm *m;
    mproc__handle h;
    plk_shared *s = plk_new(&m, &h);
    mproc_process *p;
    int64_t t0;
    p = th_start(plk_exit_main_child, MPROC_LIST(mproc_value_shm(m)));
    plk_wait_held(s);
    th_sleep_ms(300); /* its main thread is gone by now */
    t0 = th_now_ms();
    ASSERT_ERR(mproc__plock_lock(s->lock, h, 500), MPROC_ETIMEDOUT);
    ASSERT_GE(th_now_ms() - t0, 500 - 1);
    ASSERT_ERR(mproc__plock_lock(s->lock, h, 0), MPROC_EBUSY);
    ASSERT_EQ(atomic_load(&s->result), 0);
    atomic_store(&s->release, 1);
    ASSERT_EQ(th_join_code(p, 20000), 0);
    ASSERT_ERR(mproc__plock_lock(s->lock, h, th_ms(1000)), MPROC_EOWNERDEAD);
    ASSERT_OK(mproc__plock_unlock(s->lock, h));
    plk_free(m, s, h);
    return 0;
}

/* In the process that got the dead owner's pid: its lock is not its own. */
static int plk_reuser(const mproc_value *args)
{
    plk_shared *s = mproc_shm_ptr(arg_shm(args, 0));
    int64_t pid = th_arg_int(args, 1);
    CHILD_CHECK(mproc_process_pid(mproc_current_process()) == pid, 10);
    atomic_store(&s->result,
                 1000 + mproc__plock_lock(s->lock, MPROC__BADHANDLE, 0));
    return 0;
}

static int plk_reuse_body(void *arg)
{
    mproc_shm *m;
    mproc__handle h;
    plk_shared *s = plk_new(&m, &h);
    mproc_process *owner, *r;
    int64_t pid;
    int code;
    (void)arg;
    owner = th_start(plk_hold_child, MPROC_LIST(mproc_value_shm(m)));
    plk_wait_held(s);
    pid = mproc_process_pid(owner);
    r = q14_kill_and_reuse(owner, plk_reuser,
                           MPROC_LIST(mproc_value_shm(m), mproc_int(pid)),
                           &code);
    if (r == NULL)
        return code;
    code = th_join_code(r, 20000);
    if (code != 0)
        return code;
    /* Taken over at once (timeout 0), not refused as busy. */
    ASSERT_EQ(atomic_load(&s->result), 1000 + MPROC_EOWNERDEAD);
    plk_free(m, s, h);
    return 0;
}

/* A dead owner whose pid went to a new process is dead to that process
 * too: the identity is the pid with the start time. */
TEST(Q14_process_lock_pid_reuse)
{
    const char *why = "";
    int rc = th_platform_pid_namespace(plk_reuse_body, NULL, &why);
    if (rc == -1) {
        printf("SKIP: %s\n", why);
        return TH_SKIP;
    }
    ASSERT_EQ(rc, 0);
    return 0;
}

/* Threads of one process exclude each other (the owner is the process, so
 * nothing may read "held by us" as free), sleep while they wait, and are
 * woken by unlocks. */
#define PLK_THREADS 4
#define PLK_ROUNDS 20000

typedef struct plk_count {
    plk_shared *s;
    mproc__handle h;
    long counter; /* only under the lock */
    _Atomic int inside;
    _Atomic int overlaps;
    _Atomic int errors;
} plk_count;

static void *plk_count_thread(void *arg)
{
    plk_count *c = arg;
    int i;
    for (i = 0; i < PLK_ROUNDS; i++) {
        int rc = mproc__plock_lock(c->s->lock, c->h, th_ms(20000));
        if (rc != 0) {
            atomic_fetch_add(&c->errors, 1);
            continue;
        }
        if (atomic_fetch_add(&c->inside, 1) != 0)
            atomic_fetch_add(&c->overlaps, 1);
        c->counter++;
        if (i % 512 == 0)
            th_sleep_ms(1); /* long enough for the others to sleep */
        atomic_fetch_sub(&c->inside, 1);
        if (mproc__plock_unlock(c->s->lock, c->h) != 0)
            atomic_fetch_add(&c->errors, 1);
    }
    return NULL;
}

TEST(Q14_process_lock_threads_of_one_process)
{
    mproc_shm *m;
    plk_count c;
    pthread_t t[PLK_THREADS];
    int i;
    memset(&c, 0, sizeof c);
    c.s = plk_new(&m, &c.h);
    for (i = 0; i < PLK_THREADS; i++)
        ASSERT_EQ(pthread_create(&t[i], NULL, plk_count_thread, &c), 0);
    for (i = 0; i < PLK_THREADS; i++)
        ASSERT_EQ(pthread_join(t[i], NULL), 0);
    ASSERT_EQ(atomic_load(&c.errors), 0);
    ASSERT_EQ(atomic_load(&c.overlaps), 0);
    ASSERT_EQ(c.counter, (long)PLK_THREADS * PLK_ROUNDS);
    /* Free again, and not ours. */
    ASSERT_ERR(mproc__plock_unlock(c.s->lock, c.h), MPROC_ENOTOWNER);
    ASSERT_OK(mproc__plock_lock(c.s->lock, c.h, 0));
    ASSERT_OK(mproc__plock_unlock(c.s->lock, c.h));
    plk_free(m, c.s, c.h);
    return 0;
}

/* --- Q15 ---------------------------------------------------------------- */

enum {
    Q15_CHUNK_LENGTH,   /* a chunk of 512 MiB: within its item, not the ring */
    Q15_RING_SIZE,      /* the segment claims a 1 GiB ring */
    Q15_UNALIGNED_TAIL, /* a tail in the middle of a record */
    Q15_FAR_TAIL,       /* a tail two rings ahead of the head */
    Q15_HEAD_AHEAD,     /* a head past the tail */
    Q15_ITEM_COUNT,     /* a million items in one record */
    Q15_BAD_FLAGS,      /* a record with flags no one writes */
    Q15_LONG_RECORD,    /* a record longer than a record can be */
    Q15_PAST_TAIL,      /* a record longer than what is published */
    Q15_CHAIN_TOTAL,    /* a chain longer than MPROC_MESSAGE_MAX */
    Q15_EMPTY_CHUNK,    /* a chain's chunk of 0 bytes */
    Q15_EARLY_LAST,     /* a chain's last chunk before its total */
    Q15_NCASES
};

/* A peer that writes into the segment what no mproc process would. */
static void q15_scribble(mproc_queue *q, int what)
{
    uint64_t t = mproc__queue_test_get(q, MPROC__QT_TAIL);
    uint64_t h = mproc__queue_test_get(q, MPROC__QT_HEAD);
    uint64_t pos = QT_BYTES(t);
    uint64_t first[3] = {0, 0, 0};
    static const char data[8] = "garbage";
    switch (what) {
    case Q15_CHUNK_LENGTH:
        first[0] = (uint64_t)1 << 30;
        forge(q, &pos, 24, QT_FIRST, first, 24);
        forge(q, &pos, (uint32_t)1 << 29, 0, NULL, 0);
        forge_publish(q, pos, 0);
        break;
    case Q15_RING_SIZE:
        mproc__queue_test_set(q, MPROC__QT_RING_CAP, (uint64_t)1 << 30);
        break;
    case Q15_UNALIGNED_TAIL:
        mproc__queue_test_set(q, MPROC__QT_TAIL,
                              QT_POS(QT_ITEMS(h), QT_BYTES(h) + 4));
        break;
    case Q15_FAR_TAIL:
        mproc__queue_test_set(
            q, MPROC__QT_TAIL,
            QT_POS(QT_ITEMS(h) + 1, QT_BYTES(h) + 2 * (uint32_t)QT_RING));
        break;
    case Q15_HEAD_AHEAD:
        mproc__queue_test_set(q, MPROC__QT_HEAD,
                              QT_POS(QT_ITEMS(t), QT_BYTES(t) + 64));
        break;
    case Q15_ITEM_COUNT:
        forge(q, &pos, 8, QT_FIRST | QT_LAST, data, 8);
        forge_publish(q, pos, 1000000);
        break;
    case Q15_BAD_FLAGS:
        forge(q, &pos, 8, 0x40 | QT_FIRST | QT_LAST, data, 8);
        forge_publish(q, pos, 1);
        break;
    case Q15_LONG_RECORD:
        forge(q, &pos, QT_MAX_PAYLOAD + 8, QT_FIRST | QT_LAST, data, 8);
        forge_publish(q, pos, 1);
        break;
    case Q15_PAST_TAIL:
        forge(q, &pos, 100, QT_FIRST | QT_LAST, data, 8);
        forge_publish(q, pos, 1);
        break;
    case Q15_CHAIN_TOTAL:
        first[0] = (uint64_t)MPROC_MESSAGE_MAX + 1;
        forge(q, &pos, 24, QT_FIRST, first, 24);
        forge(q, &pos, 8, QT_LAST, data, 8);
        forge_publish(q, pos, 1);
        break;
    case Q15_EMPTY_CHUNK:
        first[0] = 100;
        forge(q, &pos, 24, QT_FIRST, first, 24);
        forge(q, &pos, 0, 0, NULL, 0);
        forge_publish(q, pos, 0);
        break;
    case Q15_EARLY_LAST:
        first[0] = 100;
        forge(q, &pos, 24, QT_FIRST, first, 24);
        forge(q, &pos, 8, QT_LAST, data, 8);
        forge_publish(q, pos, 1);
        break;
    default:
        break;
    }
}

static int scribble_child(const mproc_value *args)
{
    q15_scribble(arg_queue(args, 0), (int)th_arg_int_ok(args, 1));
    return 0;
}

/* The corruption is made by another process that has the queue. */
static void q15_peer_scribbles(mproc_queue *q, int what)
{
    th_join_ok(th_start(scribble_child,
                        MPROC_LIST(mproc_value_queue(q), mproc_int(what))),
               60000);
}

/* A get on a corrupt queue says so within its timeout. */
static void q15_get_corrupt(mproc_queue *q, int timeout_ms)
{
    void *b = NULL;
    size_t len = 0;
    int64_t t0 = th_now_ms();
    ASSERT_ERR(mproc_queue_get_bytes(q, &b, &len, timeout_ms), MPROC_ECORRUPT);
    ASSERT_NULL(b);
    ASSERT_LE(th_now_ms() - t0, timeout_ms + th_ms(500));
}

/* A chunk length is checked against the ring and what is published, not
 * only against its item's total: no read past the mapping. */
TEST(Q15_hostile_peer_chunk_length)
{
    mproc_queue *q;
    ASSERT_OK(mproc_queue_create(&q, 0));
    round_trip(q, 40, 1);
    q15_peer_scribbles(q, Q15_CHUNK_LENGTH);
    q15_get_corrupt(q, th_ms(2000));
    forge_reset(q);
    round_trip(q, 3 << 20, 2);
    mproc_queue_destroy(q);
    return 0;
}

/* The ring's size is this process's constant, not the segment's word: no
 * write past the mapping. */
TEST(Q15_hostile_peer_ring_size)
{
    mproc_queue *q;
    unsigned i;
    ASSERT_OK(mproc_queue_create(&q, 0));
    q15_peer_scribbles(q, Q15_RING_SIZE);
    for (i = 0; i < 8; i++)
        round_trip(q, ((size_t)2 << 20) + i, i);
    mproc_queue_destroy(q);
    return 0;
}

/* A tail that is not record-aligned is corruption, reported at once: no
 * loop holding the consumer lock past the timeout. */
TEST(Q15_hostile_peer_unaligned_tail)
{
    mproc_queue *q;
    ASSERT_OK(mproc_queue_create(&q, 0));
    q15_peer_scribbles(q, Q15_UNALIGNED_TAIL);
    q15_get_corrupt(q, th_ms(1000));
    q15_get_corrupt(q, 0);
    ASSERT_ERR(mproc_queue_put_bytes(q, "x", 1, th_ms(1000)), MPROC_ECORRUPT);
    forge_reset(q);
    round_trip(q, 24, 2);
    mproc_queue_destroy(q);
    return 0;
}

/* Every other position and record header a peer can forge. */
TEST(Q15_hostile_peer_positions_and_headers)
{
    mproc_queue *q;
    int what;
    ASSERT_OK(mproc_queue_create(&q, 0));
    for (what = Q15_FAR_TAIL; what < Q15_NCASES; what++) {
        round_trip(q, (size_t)what * 40, (unsigned)what);
        q15_peer_scribbles(q, what);
        q15_get_corrupt(q, th_ms(1000));
        /* A producer reads its own side's position (it trusts what it
         * remembers of the head while its own side has not moved: that is
         * only ever too little room). */
        if (what == Q15_FAR_TAIL || what == Q15_ITEM_COUNT)
            ASSERT_ERR(mproc_queue_put_bytes(q, "x", 1, th_ms(1000)),
                       MPROC_ECORRUPT);
        if (what == Q15_ITEM_COUNT)
            ASSERT_ERR(mproc_queue_qsize(q), MPROC_ECORRUPT);
        forge_reset(q);
        round_trip(q, 1000, (unsigned)what);
    }
    mproc_queue_destroy(q);
    return 0;
}

/* --- Q16 ---------------------------------------------------------------- */

/* Drives the positions as 2^32 items of one size would: each half of a
 * position wraps to the same bits; the moves per side count on. */
TEST(Q16_positions_after_2_32_items)
{
    mproc_queue *q;
    uint64_t t;
    void *b = NULL;
    size_t len = 0;
    uint8_t item[64];
    memset(item, 1, sizeof item);
    /* Consumer side: this handle took A of A, B; then B and 2^32 - 1 more
     * items of its size went through other processes and the queue is
     * empty: the head is bit for bit where this handle left it. */
    ASSERT_OK(mproc_queue_create(&q, 0));
    ASSERT_OK(mproc_queue_put_bytes(q, "AAAAAAAA", 8, 0));
    ASSERT_OK(mproc_queue_put_bytes(q, "BBBBBBBB", 8, 0));
    ASSERT_OK(mproc_queue_get_bytes(q, &b, &len, 0));
    ASSERT_MEM_EQ(b, "AAAAAAAA", 8);
    mproc_free(b);
    forge_reset(q);
    mproc__queue_test_set(q, MPROC__QT_OPS, (uint64_t)1 << 32);
    ASSERT_ERR(mproc_queue_get_bytes(q, &b, &len, 0), MPROC_EEMPTY);
    ASSERT_EQ(mproc_queue_qsize(q), 0);
    ASSERT_EQ(mproc_queue_empty(q), 1);
    round_trip(q, 8, 16);
    mproc_queue_destroy(q);
    /* Producer side: this handle put X; then 2^32 items went through and
     * the ring is left all but full: the tail is bit for bit where this
     * handle left it. */
    ASSERT_OK(mproc_queue_create(&q, 0));
    ASSERT_OK(mproc_queue_put_bytes(q, item, sizeof item, 0));
    t = mproc__queue_test_get(q, MPROC__QT_TAIL);
    mproc__queue_test_set(
        q, MPROC__QT_HEAD,
        QT_POS(QT_ITEMS(t) - 1, QT_BYTES(t) - ((uint32_t)QT_RING - 8)));
    mproc__queue_test_set(q, MPROC__QT_OPS, (uint64_t)1 << 32);
    ASSERT_ERR(mproc_queue_put_bytes(q, item, sizeof item, 0), MPROC_EFULL);
    ASSERT_EQ(mproc_queue_qsize(q), 1);
    mproc_queue_destroy(q);
    return 0;
}

/* --- Q17 ---------------------------------------------------------------- */

enum { Q17_CHURN = 1, Q17_MEASURE = 2, Q17_STOP = 3 };

typedef struct q17_item {
    int64_t kind;
    int64_t seq;
    int64_t put_us;
} q17_item;

/* Waits on the queue with mproc_wait, then gets without blocking; reports
 * how long after its put each measured item woke it. */
static int q17_waiter(const mproc_value *args)
{
    mproc_queue *q = arg_queue(args, 0);
    mproc_queue *res = arg_queue(args, 1);
    for (;;) {
        mproc_wait_item w;
        q17_item it;
        void *b = NULL;
        size_t len = 0;
        int64_t woke;
        int rc;
        memset(&w, 0, sizeof w);
        w.kind = MPROC_WAIT_QUEUE;
        w.queue = q;
        rc = mproc_wait(&w, 1, th_ms(30000));
        ASSERT_OK(rc);
        woke = th_now_us();
        if (rc == 0)
            continue;
        while (mproc_queue_get_bytes(q, &b, &len, 0) == 0) {
            ASSERT_EQ(len, sizeof it);
            memcpy(&it, b, sizeof it);
            mproc_free(b);
            if (it.kind == Q17_STOP)
                return 0;
            if (it.kind == Q17_MEASURE) {
                int64_t lat = woke - it.put_us;
                ASSERT_OK(mproc_queue_put_bytes(res, &lat, sizeof lat,
                                                MPROC_FOREVER));
            }
        }
    }
}

static void q17_put(mproc_queue *q, int64_t kind, int64_t seq)
{
    q17_item it;
    it.kind = kind;
    it.seq = seq;
    it.put_us = th_now_us();
    ASSERT_OK(mproc_queue_put_bytes(q, &it, sizeof it, MPROC_FOREVER));
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Puts `n` measured items, one at a time with the waiters asleep; returns
 * the median wake-up latency in microseconds (and the 90th percentile). */
static int64_t q17_measure(mproc_queue *q, mproc_queue *res, int n,
                           int64_t *p90)
{
    int64_t lat[64];
    int i;
    ASSERT_LE(n, 64);
    for (i = 0; i < n; i++) {
        void *b = NULL;
        size_t len = 0;
        th_sleep_ms(4 + i % 5);
        q17_put(q, Q17_MEASURE, i);
        ASSERT_OK(mproc_queue_get_bytes(res, &b, &len, th_ms(20000)));
        ASSERT_EQ(len, sizeof lat[i]);
        memcpy(&lat[i], b, sizeof lat[i]);
        mproc_free(b);
    }
    qsort(lat, (size_t)n, sizeof lat[0], cmp_i64);
    *p90 = lat[n * 9 / 10];
    return lat[n / 2];
}

/* A getter of the long churn: blocking gets, racing the waiters for the
 * items, until it takes a STOP. */
static int q17_getter(const mproc_value *args)
{
    mproc_queue *q = arg_queue(args, 0);
    for (;;) {
        void *b = NULL;
        size_t len = 0;
        q17_item it;
        ASSERT_OK(mproc_queue_get_bytes(q, &b, &len, th_ms(30000)));
        ASSERT_EQ(len, sizeof it);
        memcpy(&it, b, sizeof it);
        mproc_free(b);
        if (it.kind == Q17_STOP)
            return 0;
    }
}

/* The churn's length in seconds from MPROC_TEST_Q17_CHURN_S (the hour-long
 * run of docs/benchmarks.md: `MPROC_TEST_Q17_CHURN_S=3600 mproc-tests --run
 * Q17_wait_wakes_within_1ms`), or 0: the default 400 bursts. */
static int64_t q17_churn_s(void)
{
    const char *s = getenv("MPROC_TEST_Q17_CHURN_S");
    long v = s != NULL ? strtol(s, NULL, 10) : 0;
    return v > 0 ? (int64_t)v : 0;
}

/* After many cycles of waiting and getting by several processes at once,
 * mproc_wait on the queue still wakes within 1 ms of a put, not on its
 * 50 ms re-check; also after the doorbell was left marked rung with
 * nothing in it (as a producer that died between the two leaves it). */
TEST(Q17_wait_wakes_within_1ms)
{
    mproc_queue *q, *res;
    mproc_process *w[3], *g[2];
    int64_t med, p90, bound = (int64_t)th_ms(1) * 1000;
    int64_t churn_s = q17_churn_s(), end_ms = 0, items = 0;
    int i, k;
    ASSERT_OK(mproc_queue_create(&q, 0));
    ASSERT_OK(mproc_queue_create(&res, 0));
    for (i = 0; i < 3; i++)
        w[i] = th_start(q17_waiter, MPROC_LIST(mproc_value_queue(q),
                                               mproc_value_queue(res)));
    /* The long run also has getters racing the waiters. */
    for (i = 0; churn_s > 0 && i < 2; i++)
        g[i] = th_start(q17_getter, MPROC_LIST(mproc_value_queue(q)));
    th_sleep_ms(200);
    if (churn_s > 0)
        end_ms = th_now_ms() + churn_s * 1000;
    /* Churn: bursts of puts, each woken and taken by whichever waiter. */
    for (k = 0; churn_s > 0 ? th_now_ms() < end_ms : k < 400; k++) {
        for (i = 0; i < 1 + k % 7; i++, items++)
            q17_put(q, Q17_CHURN, k);
        if (k % 3 == 0)
            th_sleep_ms(1);
    }
    if (churn_s > 0) {
        for (i = 0; i < 2; i++)
            q17_put(q, Q17_STOP, 0);
        /* A waiter may take a getter's STOP: top them up until both end. */
        for (i = 0; i < 2; i++) {
            while (mproc_process_join(g[i], 200) == MPROC_ETIMEDOUT)
                q17_put(q, Q17_STOP, 0);
            th_join_ok(g[i], 1000);
        }
        /* Leftover STOPs must not end a waiter during the measurement. */
        for (k = 0; k < 2; k++) {
            void *b = NULL;
            size_t len = 0;
            while (mproc_queue_get_bytes(q, &b, &len, 0) == 0)
                mproc_free(b);
            th_sleep_ms(50);
        }
        /* Waiters that took a STOP meant for a getter have ended: start
         * them again, so three wait for the measurement. */
        for (i = 0; i < 3; i++) {
            if (mproc_process_is_alive(w[i]) == 0) {
                th_join_ok(w[i], 1000);
                w[i] = th_start(q17_waiter, MPROC_LIST(mproc_value_queue(q),
                                                       mproc_value_queue(res)));
            }
        }
        printf("Q17 churn: %lld s, %lld items, 3 waiters, 2 getters\n",
               (long long)churn_s, (long long)items);
    }
    th_sleep_ms(100);
    med = q17_measure(q, res, 40, &p90);
    printf("Q17 after churn: median %lld us, 90th percentile %lld us\n",
           (long long)med, (long long)p90);
    ASSERT_LE(med, bound);
    /* A bell marked rung over an empty channel. */
    th_sleep_ms(100);
    mproc__queue_test_set(q, MPROC__QT_BELL_ARMED, 1);
    th_sleep_ms(100);
    med = q17_measure(q, res, 40, &p90);
    printf("Q17 after a stale mark: median %lld us, 90th percentile %lld us\n",
           (long long)med, (long long)p90);
    ASSERT_LE(med, bound);
    for (i = 0; i < 3; i++)
        q17_put(q, Q17_STOP, 0);
    for (i = 0; i < 3; i++)
        th_join_ok(w[i], 60000);
    mproc_queue_destroy(q);
    mproc_queue_destroy(res);
    return 0;
}

/* --- Q18 ---------------------------------------------------------------- */

static int q18_producer(const mproc_value *args)
{
    mproc_queue *q = arg_queue(args, 0);
    int64_t i;
    for (i = 0; i < 3; i++)
        put_int(q, i);
    return big_put_forever(args); /* blocks in the middle of the chain */
}

/* join waits for what consumers can receive: an item whose producer died in
 * the middle of streaming it never counted; nor does the rest of one whose
 * consumer died in the middle of receiving it. */
TEST(Q18_join_after_a_death_mid_item)
{
    mproc_queue *q;
    mproc_process *p;
    void *b = NULL;
    size_t len = 0;
    int64_t i, t0;
    uint64_t pos;
    static const char rest[8] = "the rest";
    ASSERT_OK(mproc_queue_create_joinable(&q, 0));
    p = th_start(q18_producer, MPROC_LIST(mproc_value_queue(q)));
    /* The three small items, then chunks of the big one. */
    t0 = th_now_ms();
    while (QT_BYTES(mproc__queue_test_get(q, MPROC__QT_TAIL)) < (2u << 20)) {
        ASSERT_LT(th_now_ms() - t0, th_ms(20000));
        th_sleep_ms(5);
    }
    ASSERT_OK(mproc_process_kill(p));
    ASSERT_EQ(th_join_code(p, 20000), -9);
    for (i = 0; i < 3; i++) {
        ASSERT_EQ(get_int(q, th_ms(5000)), i);
        ASSERT_OK(mproc_queue_task_done(q));
    }
    ASSERT_OK(mproc_queue_join(q, th_ms(5000)));
    ASSERT_ERR(mproc_queue_task_done(q), MPROC_ERANGE);
    ASSERT_EQ(mproc_queue_qsize(q), 0); /* the torn item never counted */
    /* The dead chain is dropped by the next get. */
    ASSERT_ERR(mproc_queue_get_bytes(q, &b, &len, 300), MPROC_ETIMEDOUT);
    ASSERT_EQ(mproc_queue_qsize(q), 0);
    /* A consumer died after taking the first chunks of a whole item: what
     * is left of it (its last chunk) can be received by nobody. */
    pos = QT_BYTES(mproc__queue_test_get(q, MPROC__QT_TAIL));
    forge(q, &pos, 8, QT_LAST, rest, 8);
    forge_publish(q, pos, 1);
    ASSERT_EQ(mproc_queue_qsize(q), 1);
    ASSERT_OK(mproc_queue_join(q, th_ms(5000)));
    ASSERT_EQ(mproc_queue_qsize(q), 0);
    round_trip(q, 10, 18);
    ASSERT_OK(mproc_queue_task_done(q));
    ASSERT_OK(mproc_queue_join(q, 0));
    mproc_queue_destroy(q);
    return 0;
}

/* --- stress (label `stress`, tests/CMakeLists.txt) ----------------------- */

/* The stress tests' items: (slot, sequence, bytes), whose size and content
 * follow from (rule, slot, sequence). Books of what was put and got live in
 * shared memory: a producer claims a sequence number of its slot before its
 * put and marks it put after; a consumer counts what it got. */
#define ST_SLOTS 4
#define ST_PER 25000
#define ST_BIG ((size_t)1536 << 10) /* the storm's every 500th item */
#define ST_MAX ((size_t)6 << 20)

enum { ST_STORM, ST_MIXED };

/* From empty to 5 MiB, on both sides of the streaming threshold
 * (1 MiB - 8). */
static const size_t st_mixed_sizes[] = {
    0,       1,       7,       8,       100,
    4096,    65536,   1048568, 1048569, 1048577,
    3145733, 5242883, 200,     3,       ((size_t)2 << 20) + 11};
#define ST_NMIXED (sizeof st_mixed_sizes / sizeof st_mixed_sizes[0])

typedef struct st_books {
    int64_t rule;
    int64_t per; /* sequences per slot */
    _Atomic int64_t next[ST_SLOTS];
    _Atomic uint8_t put[ST_SLOTS][ST_PER];
    _Atomic uint8_t got[ST_SLOTS][ST_PER];
    _Atomic int64_t bad; /* items whose size or content was wrong */
} st_books;

static size_t st_size(int64_t rule, int64_t slot, int64_t seq)
{
    if (rule == ST_MIXED)
        return st_mixed_sizes[(size_t)(slot * 5 + seq) % ST_NMIXED];
    if (seq % 500 == 499)
        return ST_BIG + (size_t)slot;
    return (size_t)((seq * 7 + slot * 13) % 200);
}

static unsigned st_seed(int64_t slot, int64_t seq)
{
    return (unsigned)(slot * ST_PER + seq);
}

static st_books *st_books_new(mproc_shm **m, int64_t rule, int64_t per)
{
    st_books *bk;
    ASSERT_OK(mproc_shm_create(m, sizeof *bk));
    bk = mproc_shm_ptr(*m);
    memset((void *)bk, 0, sizeof *bk);
    bk->rule = rule;
    bk->per = per;
    return bk;
}

/* args: queue, books, slot. */
static int st_producer(const mproc_value *args)
{
    mproc_queue *q = arg_queue(args, 0);
    st_books *bk = mproc_shm_ptr(arg_shm(args, 1));
    int64_t slot = th_arg_int_ok(args, 2);
    uint8_t *buf = malloc(ST_MAX);
    ASSERT_NOT_NULL(buf);
    for (;;) {
        int64_t seq = atomic_fetch_add(&bk->next[slot], 1);
        size_t n;
        mproc_value *v;
        if (seq >= bk->per)
            break;
        n = st_size(bk->rule, slot, seq);
        qfill(buf, n, st_seed(slot, seq));
        v = MPROC_LIST(mproc_int(slot), mproc_int(seq), mproc_bytes(buf, n));
        ASSERT_OK(mproc_queue_put(q, v, MPROC_FOREVER));
        mproc_value_free(v);
        atomic_store(&bk->put[slot][seq], 1);
    }
    free(buf);
    return 0;
}

/* args: queue, books. Gets until an item of slot -1. */
static int st_consumer(const mproc_value *args)
{
    mproc_queue *q = arg_queue(args, 0);
    st_books *bk = mproc_shm_ptr(arg_shm(args, 1));
    for (;;) {
        mproc_value *v = NULL;
        int64_t slot, seq;
        const void *p;
        size_t n;
        ASSERT_OK(mproc_queue_get(q, &v, th_ms(120000)));
        ASSERT_OK(mproc_value_get_int(mproc_list_get(v, 0), &slot));
        if (slot < 0) {
            mproc_value_free(v);
            return 0;
        }
        ASSERT_OK(mproc_value_get_int(mproc_list_get(v, 1), &seq));
        ASSERT(slot < ST_SLOTS && seq >= 0 && seq < bk->per);
        ASSERT_OK(mproc_value_get_bytes(mproc_list_get(v, 2), &p, &n));
        if (n != st_size(bk->rule, slot, seq) ||
            !qcheck(p, n, st_seed(slot, seq)))
            atomic_fetch_add(&bk->bad, 1);
        atomic_fetch_add(&bk->got[slot][seq], 1);
        mproc_value_free(v);
    }
}

static mproc_process *st_start_producer(mproc_queue *q, mproc_shm *m,
                                        int64_t slot)
{
    return th_start(
        st_producer,
        MPROC_LIST(mproc_value_queue(q), mproc_value_shm(m), mproc_int(slot)));
}

static mproc_process *st_start_consumer(mproc_queue *q, mproc_shm *m)
{
    return th_start(st_consumer,
                    MPROC_LIST(mproc_value_queue(q), mproc_value_shm(m)));
}

/* Ends n consumers: one item of slot -1 each. */
static void st_stop_consumers(mproc_queue *q, int n)
{
    int i;
    for (i = 0; i < n; i++) {
        mproc_value *stop = MPROC_LIST(mproc_int(-1));
        ASSERT_OK(mproc_queue_put(q, stop, MPROC_FOREVER));
        mproc_value_free(stop);
    }
}

/* Q19: 4 producers and 3 consumers, a killer restarting random ones, 100,000
 * items (every 500th a chain). Lost: put, never got (at most one per killed
 * consumer: taken, and killed before counting it). Duplicated: got twice
 * (never). */
#define Q19_PRODUCERS ST_SLOTS
#define Q19_CONSUMERS 3
#define Q19_MIN_KILLS 20

static bool q19_producers_done(st_books *bk)
{
    int s;
    for (s = 0; s < Q19_PRODUCERS; s++)
        if (atomic_load(&bk->next[s]) < ST_PER)
            return false;
    return true;
}

TEST(Q19_kill_storm_stress)
{
    mproc_queue *q;
    mproc_shm *m;
    st_books *bk;
    mproc_process *prod[Q19_PRODUCERS], *cons[Q19_CONSUMERS];
    int kills = 0, ckills = 0, lost = 0, dup = 0, inflight = 0, items = 0;
    unsigned rnd = 12345u;
    int64_t t0 = th_now_ms();
    int i, s;
    ASSERT_OK(mproc_queue_create(&q, 0));
    bk = st_books_new(&m, ST_STORM, ST_PER);
    for (s = 0; s < Q19_PRODUCERS; s++)
        prod[s] = st_start_producer(q, m, s);
    for (i = 0; i < Q19_CONSUMERS; i++)
        cons[i] = st_start_consumer(q, m);
    /* The killer: a random victim every 2-17 ms until the producers are
     * through, each restarted at once in its role; and on (consumers only,
     * then) until Q19_MIN_KILLS have died, so that a queue faster than the
     * restarts (Wine, where a start takes about 100 ms) still gets its
     * storm. */
    while (!q19_producers_done(bk) || kills < Q19_MIN_KILLS) {
        int who, code;
        ASSERT_LT(th_now_ms() - t0, th_ms(150000));
        rnd = rnd * 1103515245u + 12345u;
        th_sleep_ms(2 + (int)((rnd >> 16) % 16));
        rnd = rnd * 1103515245u + 12345u;
        who = (int)((rnd >> 16) % (Q19_PRODUCERS + Q19_CONSUMERS));
        if (who < Q19_PRODUCERS) {
            if (prod[who] == NULL)
                continue; /* through with its slot */
            ASSERT_OK(mproc_process_kill(prod[who]));
            code = th_join_code(prod[who], 20000);
            ASSERT(code == -9 || code == 0); /* 0: it was just through */
            kills += code == -9;
            prod[who] = atomic_load(&bk->next[who]) < ST_PER
                            ? st_start_producer(q, m, who)
                            : NULL;
        } else {
            who -= Q19_PRODUCERS;
            ASSERT_OK(mproc_process_kill(cons[who]));
            ASSERT_EQ(th_join_code(cons[who], 20000), -9);
            kills++;
            ckills++;
            cons[who] = st_start_consumer(q, m);
        }
    }
    for (s = 0; s < Q19_PRODUCERS; s++)
        if (prod[s] != NULL)
            th_join_ok(prod[s], 60000);
    st_stop_consumers(q, Q19_CONSUMERS);
    for (i = 0; i < Q19_CONSUMERS; i++)
        th_join_ok(cons[i], 60000);
    for (s = 0; s < Q19_PRODUCERS; s++)
        for (i = 0; i < ST_PER; i++) {
            int put = atomic_load(&bk->put[s][i]);
            int got = atomic_load(&bk->got[s][i]);
            items += got > 0;
            if (put && got == 0)
                lost++;
            if (!put && got == 1)
                inflight++;
            if (got > 1)
                dup++;
        }
    printf("Q19: %d items sent, %d received, %d kills (%d consumers), "
           "%d lost, %d duplicated, %d received from a killed producer's "
           "last put, %lld corrupt, %lld ms\n",
           Q19_PRODUCERS * ST_PER, items, kills, ckills, lost, dup, inflight,
           (long long)atomic_load(&bk->bad), (long long)(th_now_ms() - t0));
    ASSERT_EQ(atomic_load(&bk->bad), 0);
    ASSERT_EQ(dup, 0);
    ASSERT_LE(lost, ckills);
    ASSERT_GT(kills, 10);
    ASSERT_EQ(mproc_queue_qsize(q), 0);
    mproc_shm_destroy(m);
    mproc_queue_destroy(q);
    return 0;
}

/* Mixed sizes, 4 producers x 4 consumers: 40 items each from empty to
 * 5 MiB (st_mixed_sizes), each checked byte for byte and counted once. */
#define Q11M_PER 40

TEST(Q11_mixed_sizes_4x4_stress)
{
    mproc_queue *q;
    mproc_shm *m;
    st_books *bk;
    mproc_process *prod[ST_SLOTS], *cons[ST_SLOTS];
    int i, k;
    ASSERT_OK(mproc_queue_create(&q, 0));
    bk = st_books_new(&m, ST_MIXED, Q11M_PER);
    for (i = 0; i < ST_SLOTS; i++)
        cons[i] = st_start_consumer(q, m);
    for (i = 0; i < ST_SLOTS; i++)
        prod[i] = st_start_producer(q, m, i);
    for (i = 0; i < ST_SLOTS; i++)
        th_join_ok(prod[i], 120000);
    st_stop_consumers(q, ST_SLOTS);
    for (i = 0; i < ST_SLOTS; i++)
        th_join_ok(cons[i], 120000);
    ASSERT_EQ(atomic_load(&bk->bad), 0);
    for (i = 0; i < ST_SLOTS; i++)
        for (k = 0; k < Q11M_PER; k++)
            ASSERT_EQ(atomic_load(&bk->got[i][k]), 1);
    ASSERT_EQ(mproc_queue_qsize(q), 0);
    mproc_shm_destroy(m);
    mproc_queue_destroy(q);
    return 0;
}

/* Q14 again and again: ten owners killed holding the producer lock, each
 * pid given to the next process, which takes the lock over. */
TEST(Q14_pid_reuse_stress)
{
    return q14_pid_reuse(10);
}

/* Q15 at random: a peer scribbles on the segment (all of it but the OS's
 * mutexes: see mproc__queue_test_block) while two victims put, get, wait
 * and ask sizes. Every call returns within its timeout with a code it may
 * give, and nothing reads or writes outside the mapping (ASan). */
static unsigned q15_rand(unsigned *r)
{
    *r = *r * 1103515245u + 12345u;
    return *r >> 8;
}

static int q15_scribbler(const mproc_value *args)
{
    mproc_queue *q = arg_queue(args, 0);
    int64_t ms = th_arg_int_ok(args, 1);
    unsigned r = (unsigned)th_arg_int_ok(args, 2);
    size_t size, lock[2], lock_len;
    uint8_t *blk = mproc__queue_test_block(q, &size, lock, &lock_len);
    int64_t t0 = th_now_ms();
    static const uint32_t lens[] = {0, 8, 16, 24, 100, 4000, 1048568, 1u << 29};
    while (th_now_ms() - t0 < ms) {
        unsigned what = q15_rand(&r) % 10;
        uint64_t h = mproc__queue_test_get(q, MPROC__QT_HEAD);
        uint64_t t = mproc__queue_test_get(q, MPROC__QT_TAIL);
        if (what < 4) {
            size_t off = q15_rand(&r) % size;
            if ((off >= lock[0] && off < lock[0] + lock_len) ||
                (off >= lock[1] && off < lock[1] + lock_len))
                continue;
            ((volatile uint8_t *)blk)[off] = (uint8_t)q15_rand(&r);
        } else if (what < 6) {
            uint32_t hd[2];
            uint64_t first[2];
            hd[0] = lens[q15_rand(&r) % 8];
            hd[1] = q15_rand(&r) % 5;
            first[0] = lens[q15_rand(&r) % 8] + q15_rand(&r) % 3;
            first[1] = q15_rand(&r) % 3;
            mproc__queue_test_ring(q, QT_BYTES(h), hd, sizeof hd);
            mproc__queue_test_ring(q, QT_BYTES(h) + 8, first, sizeof first);
        } else if (what < 8) {
            mproc__queue_test_set(q, MPROC__QT_TAIL,
                                  QT_POS(QT_ITEMS(h) + q15_rand(&r) % 3,
                                         QT_BYTES(h) + 8 * (q15_rand(&r) % 9)));
        } else if (what < 9) {
            mproc__queue_test_set(
                q, q15_rand(&r) % 2 ? MPROC__QT_TAIL : MPROC__QT_HEAD,
                ((uint64_t)q15_rand(&r) << 32) ^ q15_rand(&r));
        } else {
            mproc__queue_test_set(q, MPROC__QT_TAIL, h);
            (void)t;
        }
        if (q15_rand(&r) % 4 == 0)
            th_sleep_ms(1);
    }
    return 0;
}

/* One victim's part: random calls with short timeouts for `ms`. */
static void q15_victim(mproc_queue *q, int64_t ms, unsigned r)
{
    uint8_t *buf = malloc((size_t)1 << 20);
    int64_t t0 = th_now_ms();
    int64_t slack = th_ms(1000);
    ASSERT_NOT_NULL(buf);
    memset(buf, 0xa5, (size_t)1 << 20);
    while (th_now_ms() - t0 < ms) {
        unsigned what = q15_rand(&r) % 5;
        int timeout = (int)(q15_rand(&r) % 3) * 20;
        int64_t c0 = th_now_ms();
        int64_t rc;
        if (what == 0) {
            size_t n = q15_rand(&r) % 3 == 0 ? q15_rand(&r) % ((size_t)1 << 20)
                                             : q15_rand(&r) % 300;
            rc = mproc_queue_put_bytes(q, buf, n, timeout);
            ASSERT(rc == 0 || rc == MPROC_ETIMEDOUT || rc == MPROC_EFULL ||
                   rc == MPROC_ECORRUPT);
        } else if (what <= 2) {
            void *b = NULL;
            size_t len = 0;
            rc = mproc_queue_get_bytes(q, &b, &len, timeout);
            ASSERT(rc == 0 || rc == MPROC_ETIMEDOUT || rc == MPROC_EEMPTY ||
                   rc == MPROC_ECORRUPT || rc == MPROC_ENOMEM);
            mproc_free(b);
        } else if (what == 3) {
            mproc_wait_item w;
            memset(&w, 0, sizeof w);
            w.kind = MPROC_WAIT_QUEUE;
            w.queue = q;
            rc = mproc_wait(&w, 1, timeout);
            ASSERT(rc == 0 || rc == 1);
        } else {
            rc = mproc_queue_qsize(q);
            ASSERT((rc >= 0 && rc <= (int64_t)(QT_RING / 8)) ||
                   rc == MPROC_ECORRUPT);
            rc = mproc_queue_empty(q);
            ASSERT(rc == 0 || rc == 1 || rc == MPROC_ECORRUPT);
        }
        ASSERT_LE(th_now_ms() - c0, timeout + slack);
    }
    free(buf);
}

static int q15_victim_child(const mproc_value *args)
{
    q15_victim(arg_queue(args, 0), th_arg_int_ok(args, 1),
               (unsigned)th_arg_int_ok(args, 2));
    return 0;
}

TEST(Q15_hostile_peer_stress)
{
    mproc_queue *q;
    mproc_process *peer, *victim;
    int64_t ms = 8000;
    ASSERT_OK(mproc_queue_create(&q, 0));
    peer = th_start(q15_scribbler, MPROC_LIST(mproc_value_queue(q),
                                              mproc_int(ms), mproc_int(7)));
    victim =
        th_start(q15_victim_child, MPROC_LIST(mproc_value_queue(q),
                                              mproc_int(ms), mproc_int(11)));
    q15_victim(q, ms, 13);
    th_join_ok(peer, 60000);
    th_join_ok(victim, 60000);
    /* Sane again (an empty ring, no chain, no rung bell), the queue works
     * for the same handle. */
    mproc__queue_test_set(q, MPROC__QT_OPEN_CHAIN, 0);
    mproc__queue_test_set(q, MPROC__QT_BELL_ARMED, 0);
    mproc__queue_test_set(q, MPROC__QT_HEAD, 0);
    mproc__queue_test_set(q, MPROC__QT_TAIL, 0);
    round_trip(q, 1000, 15);
    round_trip(q, 3 << 20, 16);
    mproc_queue_destroy(q);
    return 0;
}
