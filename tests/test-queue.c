/* Tests of the queue area (rows Q01-Q12 of CONFORMANCE.md). */
#include "harness.h"

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
    /* Wait until the first chunk is in (the item counts from then on). */
    {
        int64_t t0 = th_now_ms();
        while (mproc_queue_qsize(q) < 1) {
            ASSERT_LT(th_now_ms() - t0, th_ms(20000));
            th_sleep_ms(5);
        }
    }
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
