/* Tests of the pool (rows T01-T16 of CONFORMANCE.md). */
#include "harness.h"

#include "../src/common/backend.h"
#include "mproc_transport.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>

/* --- task functions (found in workers as process targets are) ----------- */

static int64_t int_of(const mproc_value *v)
{
    int64_t x = -1;
    (void)mproc_value_get_int(v, &x);
    return x;
}

static int t_square(const mproc_value *arg, mproc_value **result)
{
    int64_t x;
    if (mproc_value_get_int(arg, &x) != 0)
        return 22;
    *result = mproc_int(x * x);
    return 0;
}

static int t_add(const mproc_value *args, mproc_value **result)
{
    *result = mproc_int(int_of(mproc_list_get(args, 0)) +
                        int_of(mproc_list_get(args, 1)));
    return 0;
}

/* Sleeps arg milliseconds, returns arg. */
static int t_sleep(const mproc_value *arg, mproc_value **result)
{
    int64_t ms = int_of(arg);
    if (ms > 0)
        th_sleep_ms((int)ms);
    *result = mproc_int(ms);
    return 0;
}

/* Odd numbers fail with code 7 and a message. */
static int t_fail_odd(const mproc_value *arg, mproc_value **result)
{
    char msg[64];
    int64_t x = int_of(arg);
    if (x % 2 != 0) {
        snprintf(msg, sizeof msg, "odd input %lld", (long long)x);
        (void)mproc_task_set_message(msg);
        return 7;
    }
    *result = mproc_int(x);
    return 0;
}

/* The worker's pid. */
static int t_pid(const mproc_value *arg, mproc_value **result)
{
    int64_t ms = int_of(arg);
    if (ms > 0)
        th_sleep_ms((int)ms);
    *result = mproc_int(mproc_process_pid(mproc_current_process()));
    return 0;
}

/* [x, how, ms]: x after ms milliseconds, unless how says to die: 1
 * segfault, 2 abort, 3 exit(3). */
static int t_die(const mproc_value *args, mproc_value **result)
{
    int64_t x = int_of(mproc_list_get(args, 0));
    int64_t how = int_of(mproc_list_get(args, 1));
    int64_t ms = int_of(mproc_list_get(args, 2));
    if (ms > 0)
        th_sleep_ms((int)ms);
    if (how == 1) {
        volatile int *volatile nowhere = NULL;
        /* The crash itself. */
        // NOLINTNEXTLINE(clang-analyzer-core.NullDereference)
        *nowhere = 1; // cppcheck-suppress nullPointer
    } else if (how == 2) {
        abort();
    } else if (how == 3) {
        mproc_exit(3);
    }
    *result = mproc_int(x);
    return 0;
}

/* A result that cannot be sent (a handle). */
static int t_bad_result(const mproc_value *arg, mproc_value **result)
{
    static mproc_queue *q;
    (void)arg;
    if (q == NULL && mproc_queue_create(&q, 0) != 0)
        return 1;
    *result = mproc_value_queue(q);
    return 0;
}

/* --- helpers ------------------------------------------------------------ */

static mproc_value *range(int64_t n)
{
    mproc_value *l = mproc_list_new();
    int64_t i;
    ASSERT_NOT_NULL(l);
    for (i = 0; i < n; i++)
        ASSERT_OK(mproc_list_append(l, mproc_int(i)));
    return l;
}

static mproc_pool *make_pool(int workers)
{
    mproc_pool_options o;
    mproc_pool *p = NULL;
    memset(&o, 0, sizeof o);
    o.workers = workers;
    ASSERT_OK(th_pool_create(&p, &o));
    ASSERT_NOT_NULL(p);
    return p;
}

static void close_join(mproc_pool *p)
{
    ASSERT_OK(mproc_pool_close(p));
    ASSERT_OK(mproc_pool_join(p, th_ms(20000)));
    ASSERT_NULL(mproc_pool_destroy(p));
}

static void check_squares(const mproc_value *res, int64_t n)
{
    int64_t i;
    ASSERT_EQ(mproc_list_size(res), n);
    for (i = 0; i < n; i++)
        ASSERT_EQ(int_of(mproc_list_get(res, (size_t)i)), i * i);
}

static mproc_pool_stats stats_of(mproc_pool *p)
{
    mproc_pool_stats s;
    ASSERT_OK(mproc_pool_stats_get(p, &s));
    return s;
}

/* Waits until the pool says `running` tasks have started. */
static void wait_running(mproc_pool *p, uint64_t running)
{
    int64_t end = th_now_ms() + th_ms(10000);
    while (stats_of(p).running < running) {
        ASSERT_LT(th_now_ms(), end);
        th_sleep_ms(1);
    }
}

/* The one live child of this process (a 1-worker pool's worker). */
static mproc_process *only_child(void)
{
    mproc_process *c = NULL;
    ASSERT_EQ(mproc_active_children(&c, 1), 1);
    return c;
}

/* --- T01 ---------------------------------------------------------------- */

TEST(T01_map_in_order)
{
    static const size_t chunks[] = {1, 0, 7};
    mproc_pool *p = make_pool(3);
    mproc_value *in = range(200), *out = NULL;
    mproc_task_status *fails = NULL;
    size_t k;
    for (k = 0; k < 3; k++) {
        ASSERT_EQ(mproc_pool_map(p, t_square, in, chunks[k], &out, &fails), 0);
        ASSERT_NULL(fails);
        check_squares(out, 200);
        mproc_value_free(out);
    }
    mproc_value_free(in);
    /* An empty input gives an empty list. */
    in = mproc_list_new();
    ASSERT_EQ(mproc_pool_map(p, t_square, in, 0, &out, NULL), 0);
    ASSERT_EQ(mproc_list_size(out), 0);
    mproc_value_free(out);
    mproc_value_free(in);
    close_join(p);
    return 0;
}

/* A transport whose workers never start: create_transport's own checks. */
static int g_dummy_destroyed;
static int d_start(void *c, int w)
{
    (void)c;
    (void)w;
    return MPROC_EAGAIN;
}
static int d_send(void *c, int w, const void *m, size_t n)
{
    (void)c, (void)w, (void)m, (void)n;
    return MPROC_EPIPE;
}
static int d_wait(void *c, const bool *l, bool *r, int n, int ms)
{
    (void)c, (void)l, (void)r, (void)n, (void)ms;
    return 0;
}
static int d_recv(void *c, int w, const void **m, size_t *n)
{
    (void)c, (void)w, (void)m, (void)n;
    return MPROC_EEOF;
}
static int d_started(void *c, int w, uint64_t *s, uint32_t *i)
{
    (void)c, (void)w, (void)s, (void)i;
    return MPROC_ENOSYS;
}
static int d_stop(void *c, int w, int how)
{
    (void)c, (void)w, (void)how;
    return 0;
}
static int d_reap(void *c, int w, int ms, int64_t *pid, int *code)
{
    (void)c, (void)w, (void)ms;
    *pid = 0;
    *code = 0;
    return 0;
}
static int64_t d_pid(void *c, int w)
{
    (void)c;
    return w + 1;
}
static void d_wake(void *c)
{
    (void)c;
}
static int d_describe(void *c, mproc_task_fn fn, void *b, size_t cap, size_t *n)
{
    (void)c, (void)fn, (void)b, (void)cap, (void)n;
    return MPROC_ERESOLVE;
}
static void d_destroy(void *c)
{
    (void)c;
    g_dummy_destroyed++;
}

static mproc_pool_transport dummy_transport(int depth)
{
    mproc_pool_transport t;
    memset(&t, 0, sizeof t);
    t.start = d_start;
    t.send = d_send;
    t.wait = d_wait;
    t.recv = d_recv;
    t.started = d_started;
    t.stop = d_stop;
    t.reap = d_reap;
    t.pid = d_pid;
    t.wake = d_wake;
    t.describe = d_describe;
    t.destroy = d_destroy;
    t.depth = depth;
    return t;
}

TEST(T01_bad_arguments)
{
    mproc_pool *p = make_pool(1);
    mproc_value *in = range(3), *out = (mproc_value *)1,
                *notlist = mproc_int(1);
    mproc_value *withhandle;
    mproc_queue *q;
    mproc_pool_options o;
    mproc_pool *none = (mproc_pool *)1;
    ASSERT_ERR(mproc_pool_map(NULL, t_square, in, 0, &out, NULL), MPROC_EINVAL);
    ASSERT_NULL(out);
    ASSERT_ERR(mproc_pool_map(p, NULL, in, 0, &out, NULL), MPROC_EINVAL);
    ASSERT_ERR(mproc_pool_map(p, t_square, NULL, 0, &out, NULL), MPROC_EINVAL);
    ASSERT_ERR(mproc_pool_map(p, t_square, in, 0, NULL, NULL), MPROC_EINVAL);
    ASSERT_ERR(mproc_pool_map(p, t_square, notlist, 0, &out, NULL),
               MPROC_EINVAL);
    ASSERT_ERR(
        mproc_pool_map(p, t_square, in, MPROC_POOL_MAX_CHUNK + 1, &out, NULL),
        MPROC_EINVAL);
    ASSERT_OK(mproc_queue_create(&q, 0));
    withhandle = MPROC_LIST(mproc_int(1), mproc_value_queue(q));
    ASSERT_ERR(mproc_pool_map(p, t_square, withhandle, 0, &out, NULL),
               MPROC_EINVAL);
    ASSERT_ERR(mproc_pool_apply(p, t_square, withhandle, &out, NULL),
               MPROC_EINVAL);
    mproc_value_free(withhandle);
    mproc_queue_destroy(q);
    ASSERT_ERR(mproc_pool_apply(p, t_square, in, NULL, NULL), MPROC_EINVAL);
    ASSERT_ERR(mproc_pool_stats_get(NULL, NULL), MPROC_EINVAL);
    ASSERT_ERR(mproc_pool_close(NULL), MPROC_EINVAL);
    ASSERT_ERR(mproc_pool_join(NULL, 0), MPROC_EINVAL);
    ASSERT_ERR(mproc_pool_join(p, -2), MPROC_EINVAL);
    ASSERT_ERR(mproc_pool_terminate(NULL), MPROC_EINVAL);
    ASSERT_NULL(mproc_pool_destroy(NULL));
    ASSERT_ERR(mproc_pool_workers(NULL), MPROC_EINVAL);
    ASSERT_ERR(mproc_future_wait(NULL, 0), MPROC_EINVAL);
    ASSERT_ERR(mproc_future_done(NULL), MPROC_EINVAL);
    ASSERT_ERR(mproc_future_cancel(NULL), MPROC_EINVAL);
    ASSERT_ERR(mproc_imap_next(NULL, &out, NULL, 0), MPROC_EINVAL);
    ASSERT_ERR(mproc_task_set_message("not in a task"), MPROC_ESTATE);
    ASSERT_ERR(mproc_task_set_message(NULL), MPROC_EINVAL);
    /* Worker counts and options. */
    memset(&o, 0, sizeof o);
    o.workers = -1;
    ASSERT_ERR(mproc_pool_create(&none, &o), MPROC_EINVAL);
    ASSERT_NULL(none);
    o.workers = MPROC_POOL_MAX_WORKERS + 1;
    ASSERT_ERR(mproc_pool_create(&none, &o), MPROC_EINVAL);
    o.workers = 1;
    o.on_death = 5;
    ASSERT_ERR(mproc_pool_create(&none, &o), MPROC_EINVAL);
    o.on_death = 0;
    o.method = (mproc_start_method)9;
    ASSERT_ERR(mproc_pool_create(&none, &o), MPROC_EINVAL);
    ASSERT_ERR(mproc_pool_create(NULL, NULL), MPROC_EINVAL);
    /* A transport's depth: 0 (the default) to 4 chunks per worker. The
     * engine owns the transport: destroyed once, also on failure. */
    {
        static const int bad[] = {-1, 5, 1000};
        mproc_pool_transport t;
        size_t k;
        memset(&o, 0, sizeof o);
        o.workers = 2;
        for (k = 0; k < sizeof bad / sizeof bad[0]; k++) {
            t = dummy_transport(bad[k]);
            g_dummy_destroyed = 0;
            ASSERT_ERR(mproc_pool_create_transport(&none, &o, &t),
                       MPROC_EINVAL);
            ASSERT_NULL(none);
            ASSERT_EQ(g_dummy_destroyed, 1);
        }
        for (k = 0; k <= 4; k++) {
            t = dummy_transport((int)k);
            g_dummy_destroyed = 0;
            ASSERT_ERR(mproc_pool_create_transport(&none, &o, &t),
                       MPROC_EAGAIN);
            ASSERT_EQ(g_dummy_destroyed, 1);
        }
    }
    mproc_value_free(in);
    mproc_value_free(notlist);
    close_join(p);
    return 0;
}

/* --- T02 ---------------------------------------------------------------- */

TEST(T02_imap_ordered_with_timeout)
{
    mproc_pool *p = make_pool(2);
    mproc_value *in =
        MPROC_LIST(mproc_int(400), mproc_int(1), mproc_int(2), mproc_int(3));
    mproc_imap *it = NULL;
    mproc_value *v = NULL;
    int64_t t0, i;
    ASSERT_OK(mproc_pool_imap(p, t_sleep, in, 1, &it));
    t0 = th_now_ms();
    ASSERT_ERR(mproc_imap_next(it, &v, NULL, th_ms(50)), MPROC_ETIMEDOUT);
    ASSERT_GE(th_now_ms() - t0, 45);
    ASSERT_NULL(v);
    ASSERT_EQ(mproc_imap_next(it, &v, NULL, th_ms(10000)), 0);
    ASSERT_EQ(int_of(v), 400);
    mproc_value_free(v);
    for (i = 1; i <= 3; i++) {
        ASSERT_EQ(mproc_imap_next(it, &v, NULL, th_ms(10000)), 0);
        ASSERT_EQ(int_of(v), i);
        mproc_value_free(v);
    }
    ASSERT_ERR(mproc_imap_next(it, &v, NULL, 0), MPROC_EEOF);
    ASSERT_NULL(mproc_imap_destroy(it));
    close_join(p);
    return 0;
}

TEST(T02_imap_unordered_each_once)
{
    mproc_pool *p = make_pool(3);
    mproc_imap *it = NULL;
    mproc_value *v;
    bool seen[500];
    int rc, n = 0;
    memset(seen, 0, sizeof seen);
    ASSERT_OK(mproc_pool_imap_unordered(p, t_square, range(500), 3, &it));
    while ((rc = mproc_imap_next(it, &v, NULL, th_ms(10000))) == 0) {
        int64_t x = int_of(v), r = 0;
        while (r * r < x)
            r++;
        ASSERT_EQ(r * r, x);
        ASSERT_LT(r, 500);
        ASSERT(!seen[r]);
        seen[r] = true;
        n++;
        mproc_value_free(v);
    }
    ASSERT_ERR(rc, MPROC_EEOF);
    ASSERT_EQ(n, 500);
    mproc_imap_destroy(it);
    /* Ownership: a bad input list is freed too. */
    ASSERT_ERR(mproc_pool_imap(p, NULL, range(3), 1, &it), MPROC_EINVAL);
    ASSERT_NULL(it);
    close_join(p);
    return 0;
}

/* --- T03 ---------------------------------------------------------------- */

TEST(T03_starmap_unpacks)
{
    mproc_pool *p = make_pool(2);
    mproc_value *in = mproc_list_new(), *out = NULL, *bad;
    int64_t i;
    for (i = 0; i < 50; i++)
        ASSERT_OK(mproc_list_append(
            in, MPROC_LIST(mproc_int(i), mproc_int(1000 * i))));
    ASSERT_EQ(mproc_pool_starmap(p, t_add, in, 0, &out, NULL), 0);
    ASSERT_EQ(mproc_list_size(out), 50);
    for (i = 0; i < 50; i++)
        ASSERT_EQ(int_of(mproc_list_get(out, (size_t)i)), 1001 * i);
    mproc_value_free(out);
    /* An item that is not an argument list. */
    bad = MPROC_LIST(MPROC_LIST(mproc_int(1), mproc_int(2)), mproc_int(3));
    ASSERT_ERR(mproc_pool_starmap(p, t_add, bad, 0, &out, NULL), MPROC_EINVAL);
    ASSERT_NULL(out);
    mproc_value_free(bad);
    mproc_value_free(in);
    close_join(p);
    return 0;
}

/* --- T04 ---------------------------------------------------------------- */

typedef struct cb_rec {
    int calls;
    int64_t pid;
    int rc;
    int64_t value;
    mproc_pool *pool;
    int reentry_rc;
    int submit_rc;
    mproc_future *inner;
} cb_rec;

static void on_done(mproc_future *f, void *arg)
{
    cb_rec *r = arg;
    const mproc_value *v = NULL;
    r->calls++;
    r->pid = mproc_process_pid(mproc_current_process());
    r->rc = mproc_future_result(f, &v, NULL, 0);
    r->value = int_of(v);
    if (r->pool != NULL) {
        mproc_value *out = NULL;
        mproc_value *in = MPROC_LIST(mproc_int(1));
        /* Blocking calls refuse, submitting works. */
        r->reentry_rc = mproc_pool_map(r->pool, t_square, in, 0, &out, NULL);
        ASSERT_ERR(mproc_pool_apply(r->pool, t_square, in, &out, NULL),
                   MPROC_ESTATE);
        ASSERT_ERR(mproc_pool_join(r->pool, 0), MPROC_ESTATE);
        ASSERT_ERR(mproc_pool_terminate(r->pool), MPROC_ESTATE);
        ASSERT(mproc_pool_destroy(r->pool) == r->pool);
        mproc_value_free(in);
        in = mproc_int(1);
        r->submit_rc = mproc_pool_apply_async(r->pool, t_square, in, NULL, NULL,
                                              &r->inner);
        mproc_value_free(in);
    }
}

TEST(T04_apply_and_futures)
{
    mproc_pool *p = make_pool(2);
    mproc_value *arg = mproc_int(12), *res = NULL, *slow = mproc_int(300);
    mproc_future *f = NULL;
    const mproc_value *fv = NULL;
    cb_rec rec;
    ASSERT_EQ(mproc_pool_apply(p, t_square, arg, &res, NULL), 0);
    ASSERT_EQ(int_of(res), 144);
    mproc_value_free(res);

    memset(&rec, 0, sizeof rec);
    ASSERT_OK(mproc_pool_apply_async(p, t_sleep, slow, on_done, &rec, &f));
    ASSERT_EQ(mproc_future_done(f), 0);
    ASSERT_ERR(mproc_future_wait(f, th_ms(50) > 100 ? 100 : 50),
               MPROC_ETIMEDOUT);
    ASSERT_ERR(mproc_future_result(f, &fv, NULL, 0), MPROC_ETIMEDOUT);
    ASSERT_EQ(mproc_future_wait(f, th_ms(10000)), 0);
    ASSERT_EQ(mproc_future_done(f), 1);
    ASSERT_EQ(mproc_future_result(f, &fv, NULL, 0), 0);
    ASSERT_EQ(int_of(fv), 300);
    /* The callback ran once, in this process, and saw the result. */
    ASSERT_EQ(rec.calls, 1);
    ASSERT_EQ(rec.pid, mproc_process_pid(mproc_current_process()));
    ASSERT_EQ(rec.rc, 0);
    ASSERT_EQ(rec.value, 300);
    ASSERT_EQ(mproc_future_wait(f, 0), 0);
    ASSERT_EQ(rec.calls, 1);
    ASSERT_ERR(mproc_future_cancel(f), MPROC_ESTATE);
    mproc_future_destroy(f);
    mproc_value_free(slow);
    mproc_value_free(arg);
    close_join(p);
    return 0;
}

TEST(T04_callback_calls_back_into_pool)
{
    mproc_pool *p = make_pool(1);
    mproc_value *arg = mproc_int(5);
    mproc_future *f = NULL;
    const mproc_value *v = NULL;
    cb_rec rec;
    memset(&rec, 0, sizeof rec);
    rec.pool = p;
    ASSERT_OK(mproc_pool_apply_async(p, t_square, arg, on_done, &rec, &f));
    ASSERT_EQ(mproc_future_wait(f, th_ms(10000)), 0);
    ASSERT_EQ(rec.calls, 1);
    ASSERT_ERR(rec.reentry_rc, MPROC_ESTATE);
    ASSERT_OK(rec.submit_rc);
    ASSERT_NOT_NULL(rec.inner);
    ASSERT_EQ(mproc_future_result(rec.inner, &v, NULL, th_ms(10000)), 0);
    ASSERT_EQ(int_of(v), 1);
    mproc_future_destroy(rec.inner);
    mproc_future_destroy(f);
    mproc_value_free(arg);
    close_join(p);
    return 0;
}

/* --- T05 ---------------------------------------------------------------- */

TEST(T05_task_error_reaches_caller)
{
    mproc_pool *p = make_pool(2);
    mproc_value *in = range(20), *out = NULL, *arg, *res = NULL;
    mproc_task_status *fails = NULL, st;
    mproc_pool_stats s;
    int64_t i;
    ASSERT_EQ(mproc_pool_map(p, t_fail_odd, in, 3, &out, &fails), 10);
    ASSERT_NOT_NULL(fails);
    for (i = 0; i < 10; i++) {
        char want[64];
        snprintf(want, sizeof want, "odd input %lld", 2 * (long long)i + 1);
        ASSERT_EQ(fails[i].code, 7);
        ASSERT_EQ(fails[i].index, 2 * i + 1);
        ASSERT_GT(fails[i].pid, 0);
        ASSERT_STR_EQ(fails[i].message, want);
        ASSERT_EQ(mproc_value_type(mproc_list_get(out, (size_t)(2 * i + 1))),
                  MPROC_TYPE_NONE);
        ASSERT_EQ(int_of(mproc_list_get(out, (size_t)(2 * i))), 2 * i);
    }
    mproc_free(fails);
    mproc_value_free(out);
    /* apply: the failure in the status; a result that cannot be sent. */
    arg = mproc_int(3);
    ASSERT_EQ(mproc_pool_apply(p, t_fail_odd, arg, &res, &st),
              MPROC_TASK_FAILED);
    ASSERT_NULL(res);
    ASSERT_EQ(st.code, 7);
    ASSERT_STR_EQ(st.message, "odd input 3");
    ASSERT_EQ(mproc_pool_apply(p, t_bad_result, arg, &res, &st),
              MPROC_TASK_FAILED);
    ASSERT_EQ(st.code, MPROC_EINVAL);
    mproc_value_free(arg);
    /* The workers stayed: nothing was replaced, and the pool goes on. */
    ASSERT_EQ(mproc_pool_map(p, t_square, in, 0, &out, NULL), 0);
    check_squares(out, 20);
    mproc_value_free(out);
    s = stats_of(p);
    ASSERT_EQ(s.workers_replaced, 0);
    ASSERT_EQ(s.workers_alive, 2);
    mproc_value_free(in);
    close_join(p);
    return 0;
}

/* --- T06 ---------------------------------------------------------------- */

#if !defined(MPROC_TESTS_NO_HOOKS) /* the MPI suite links no test hook */
/* Pauses the engine once, before its seventh send of a chunk
 * (MPROC__HOOK_POOL_SEND). */
static _Atomic int t06_sends;

static void t06_hook(int point)
{
    if (point == MPROC__HOOK_POOL_SEND &&
        atomic_fetch_add(&t06_sends, 1) + 1 == 7)
        th_sleep_ms(300);
}

/* A worker that sent a result and then died, while the engine was about to
 * send it more: the result still waits in the channel when the send finds
 * the worker gone. It is delivered, and only the task the worker died
 * running fails. Items 0-2 are quick (so chunks go four ahead), item 3
 * takes 100 ms, item 4 dies: the seventh send (item 6) comes right after
 * item 2's result, and the pause before it lets item 3 finish and item 4
 * die. */
TEST(T06_result_sent_before_death_kept)
{
    mproc_pool *p = make_pool(1);
    mproc_value *in = mproc_list_new(), *out = NULL;
    mproc_task_status *fails = NULL;
    int64_t i;
    for (i = 0; i < 10; i++)
        ASSERT_OK(mproc_list_append(
            in, MPROC_LIST(mproc_int(i), mproc_int(i == 4 ? 1 : 0),
                           mproc_int(i == 3 ? 100 : 0))));
    atomic_store(&t06_sends, 0);
    mproc__test_hook = t06_hook;
    ASSERT_EQ(mproc_pool_starmap(p, t_die, in, 1, &out, &fails), 1);
    mproc__test_hook = NULL;
    ASSERT_GE(atomic_load(&t06_sends), 7); /* the pause happened */
    ASSERT_EQ(fails[0].index, 4);
    ASSERT_ERR(fails[0].code, MPROC_EWORKER);
    for (i = 0; i < 10; i++)
        if (i != 4)
            ASSERT_EQ(int_of(mproc_list_get(out, (size_t)i)), i);
    mproc_free(fails);
    mproc_value_free(out);
    mproc_value_free(in);
    close_join(p);
    return 0;
}
#endif

/* A map over 40 items in chunks of 4 where item 13 dies `how`: the chunk
 * [12..15] had run 12 (its result is lost with the worker) and was running
 * 13; 14 and 15 had not started and run elsewhere. */
static void death_in_chunk(int how)
{
    mproc_pool *p = make_pool(2);
    mproc_value *in = mproc_list_new(), *out = NULL;
    mproc_task_status *fails = NULL;
    mproc_pool_stats s;
    int64_t i, end;
    for (i = 0; i < 40; i++)
        ASSERT_OK(mproc_list_append(
            in, MPROC_LIST(mproc_int(i), mproc_int(i == 13 ? how : 0))));
    ASSERT_EQ(mproc_pool_starmap(p, t_die, in, 4, &out, &fails), 2);
    ASSERT_EQ(fails[0].index, 12);
    ASSERT_EQ(fails[1].index, 13);
    for (i = 0; i < 2; i++) {
        ASSERT_ERR(fails[i].code, MPROC_EWORKER);
        ASSERT_GT(fails[i].pid, 0);
        if (how == 3)
            ASSERT_EQ(fails[i].exitcode, 3);
        else
            ASSERT_NE(fails[i].exitcode, 0);
    }
    for (i = 0; i < 40; i++)
        if (i != 12 && i != 13)
            ASSERT_EQ(int_of(mproc_list_get(out, (size_t)i)), i);
    mproc_free(fails);
    mproc_value_free(out);
    mproc_value_free(in);
    /* Full strength again, with a new worker. */
    end = th_now_ms() + th_ms(2000);
    for (;;) {
        s = stats_of(p);
        if (s.workers_alive == 2 || th_now_ms() > end)
            break;
        th_sleep_ms(1);
    }
    ASSERT_EQ(s.workers_alive, 2);
    ASSERT_EQ(s.workers_replaced, 1);
    close_join(p);
}

TEST(T06_worker_segfault_fails_its_task)
{
    death_in_chunk(1);
    return 0;
}

TEST(T06_worker_abort_fails_its_task)
{
    death_in_chunk(2);
    return 0;
}

TEST(T06_worker_exit_fails_its_task)
{
    death_in_chunk(3);
    return 0;
}

TEST(T06_worker_killed_reported_in_time)
{
    mproc_pool *p = make_pool(1);
    mproc_value *slow = mproc_int(60000), *quick = mproc_int(3), *res = NULL;
    mproc_future *f = NULL, *g = NULL;
    mproc_process *w;
    mproc_task_status st;
    mproc_pool_stats s;
    int64_t pid, t_kill, t_seen, t_full;
    ASSERT_OK(mproc_pool_apply_async(p, t_sleep, slow, NULL, NULL, &f));
    ASSERT_OK(mproc_pool_apply_async(p, t_square, quick, NULL, NULL, &g));
    wait_running(p, 1);
    w = only_child();
    pid = mproc_process_pid(w);
    t_kill = th_now_ms();
    ASSERT_OK(mproc_process_kill(w));
    ASSERT_EQ(mproc_future_result(f, NULL, &st, th_ms(10000)),
              MPROC_TASK_FAILED);
    t_seen = th_now_ms();
    mproc_process_destroy(w);
    ASSERT_ERR(st.code, MPROC_EWORKER);
    ASSERT_EQ(st.pid, pid);
    ASSERT_EQ(st.exitcode, -9);
    ASSERT_EQ(st.index, 0);
    ASSERT_LE(t_seen - t_kill, th_ms(100));
    /* The task queued behind it runs on the replacement. */
    ASSERT_EQ(mproc_future_result(g, NULL, NULL, th_ms(10000)), 0);
    for (;;) {
        s = stats_of(p);
        if (s.workers_alive == 1 && s.workers_replaced == 1)
            break;
        th_sleep_ms(1);
    }
    t_full = th_now_ms();
    ASSERT_LE(t_full - t_kill,
              th_ms(200) + (th_method() == MPROC_START_SPAWN ? th_ms(300) : 0));
    ASSERT_EQ(mproc_pool_apply(p, t_pid, quick, &res, NULL), 0);
    ASSERT_NE(int_of(res), pid);
    mproc_value_free(res);
    mproc_future_destroy(f);
    mproc_future_destroy(g);
    mproc_value_free(slow);
    mproc_value_free(quick);
    close_join(p);
    return 0;
}

/* --- T07 ---------------------------------------------------------------- */

TEST(T07_fail_all_policy)
{
    mproc_pool_options o;
    mproc_pool *p = NULL;
    mproc_value *in = mproc_list_new(), *out = NULL, *arg = mproc_int(1);
    mproc_task_status *fails = NULL;
    int64_t i;
    int rc;
    memset(&o, 0, sizeof o);
    o.workers = 2;
    o.on_death = MPROC_POOL_FAIL_ALL;
    ASSERT_OK(mproc_pool_create(&p, &o));
    for (i = 0; i < 40; i++)
        ASSERT_OK(mproc_list_append(
            in, MPROC_LIST(mproc_int(i), mproc_int(i == 5 ? 2 : 0),
                           mproc_int(i == 5 ? 0 : 30))));
    rc = mproc_pool_starmap(p, t_die, in, 1, &out, &fails);
    /* Most of the tasks were not done when item 5 died: they failed. */
    ASSERT_GE(rc, 20);
    for (i = 0; i < rc; i++)
        ASSERT_ERR(fails[i].code, MPROC_EWORKER);
    /* Everything after the death failed; what finished before stands. */
    ASSERT_EQ(fails[rc - 1].index, 39);
    mproc_free(fails);
    mproc_value_free(out);
    ASSERT_ERR(mproc_pool_apply(p, t_square, arg, &out, NULL), MPROC_ECLOSED);
    ASSERT_OK(mproc_pool_join(p, th_ms(10000)));
    ASSERT_EQ(mproc_active_children(NULL, 0), 0);
    mproc_pool_destroy(p);
    mproc_value_free(arg);
    mproc_value_free(in);
    return 0;
}

/* --- T08 ---------------------------------------------------------------- */

static int64_t g_init_value = -1;
static int g_init_runs;
static int64_t g_init_pid;

static int init_ok(const mproc_value *arg)
{
    g_init_value = int_of(arg);
    g_init_runs++;
    g_init_pid = mproc_process_pid(mproc_current_process());
    return 0;
}

static int t_init_seen(const mproc_value *arg, mproc_value **result)
{
    (void)arg;
    *result = MPROC_LIST(
        mproc_int(g_init_value), mproc_int(g_init_runs),
        mproc_bool(g_init_pid == mproc_process_pid(mproc_current_process())));
    return 0;
}

static int init_fails(const mproc_value *arg)
{
    (void)arg;
    (void)mproc_task_set_message("no database");
    return 9;
}

static int init_crashes(const mproc_value *arg)
{
    (void)arg;
    abort();
}

TEST(T08_initializer_runs_once_per_worker)
{
    mproc_pool_options o;
    mproc_pool *p = NULL;
    mproc_value *initarg = mproc_int(77), *in = range(60), *out = NULL;
    int64_t i;
    memset(&o, 0, sizeof o);
    o.workers = 3;
    o.initializer = init_ok;
    o.initarg = initarg;
    ASSERT_OK(th_pool_create(&p, &o));
    mproc_value_free(initarg); /* copied at create */
    ASSERT_EQ(mproc_pool_map(p, t_init_seen, in, 1, &out, NULL), 0);
    for (i = 0; i < 60; i++) {
        mproc_value *r = mproc_list_get(out, (size_t)i);
        bool same = false;
        ASSERT_EQ(int_of(mproc_list_get(r, 0)), 77);
        ASSERT_EQ(int_of(mproc_list_get(r, 1)), 1);
        ASSERT_OK(mproc_value_get_bool(mproc_list_get(r, 2), &same));
        ASSERT(same);
    }
    mproc_value_free(out);
    mproc_value_free(in);
    close_join(p);
    return 0;
}

TEST(T08_failing_initializer_reported)
{
    mproc_pool_options o;
    mproc_pool *p = (mproc_pool *)1;
    mproc_task_status st;
    int64_t t0 = th_now_ms();
    memset(&o, 0, sizeof o);
    memset(&st, 0, sizeof st);
    o.workers = 4;
    o.initializer = init_fails;
    o.init_status = &st;
    ASSERT_ERR(th_pool_create(&p, &o), MPROC_ECHILD);
    ASSERT_NULL(p);
    ASSERT_EQ(st.code, 9);
    ASSERT_STR_EQ(st.message, "no database");
    ASSERT_GT(st.pid, 0);
    /* Nothing spins or is left behind, and the next pool works. */
    ASSERT_LT(th_now_ms() - t0, th_ms(5000));
    ASSERT_EQ(mproc_active_children(NULL, 0), 0);
    o.initializer = NULL;
    ASSERT_OK(th_pool_create(&p, &o));
    close_join(p);
    return 0;
}

/* Apart from the failing one: a crash is not a failure everywhere (an MPI
 * rank that crashes ends its job, docs/mpi.md). */
TEST(T08_crashing_initializer_reported)
{
    mproc_pool_options o;
    mproc_pool *p = (mproc_pool *)1;
    mproc_task_status st;
    int64_t t0 = th_now_ms();
    memset(&o, 0, sizeof o);
    memset(&st, 0, sizeof st);
    o.workers = 4;
    o.initializer = init_crashes;
    o.init_status = &st;
    ASSERT_ERR(mproc_pool_create(&p, &o), MPROC_ECHILD);
    ASSERT_NULL(p);
    ASSERT_ERR(st.code, MPROC_EWORKER);
    ASSERT_NE(st.exitcode, 0);
    ASSERT_LT(th_now_ms() - t0, th_ms(5000));
    ASSERT_EQ(mproc_active_children(NULL, 0), 0);
    return 0;
}

/* --- T09 ---------------------------------------------------------------- */

TEST(T09_maxtasksperchild_replaces_workers)
{
    mproc_pool_options o;
    mproc_pool *p = NULL;
    mproc_value *in = range(30), *out = NULL;
    int64_t pids[30];
    int distinct = 0, i, k;
    mproc_pool_stats s;
    memset(&o, 0, sizeof o);
    o.workers = 2;
    o.maxtasksperchild = 3;
    ASSERT_OK(mproc_pool_create(&p, &o));
    ASSERT_EQ(mproc_pool_map(p, t_pid, in, 1, &out, NULL), 0);
    for (i = 0; i < 30; i++) {
        pids[i] = int_of(mproc_list_get(out, (size_t)i));
        ASSERT_GT(pids[i], 0);
        for (k = 0; k < i; k++)
            if (pids[k] == pids[i])
                break;
        if (k == i)
            distinct++;
    }
    /* 30 tasks, at most 3 per worker: at least 10 workers ran them. */
    ASSERT_GE(distinct, 10);
    s = stats_of(p);
    ASSERT_GE(s.workers_replaced, 8);
    ASSERT_EQ(s.done, 30);
    ASSERT_EQ(s.failed, 0);
    mproc_value_free(out);
    mproc_value_free(in);
    close_join(p);
    return 0;
}

/* --- T10 ---------------------------------------------------------------- */

TEST(T10_close_join_runs_everything)
{
    mproc_pool *p = make_pool(2);
    mproc_future *f[10];
    mproc_value *arg = mproc_int(30), *out = NULL;
    const mproc_value *v;
    int i;
    ASSERT_ERR(mproc_pool_join(p, 0), MPROC_ESTATE);
    for (i = 0; i < 10; i++)
        ASSERT_OK(mproc_pool_apply_async(p, t_sleep, arg, NULL, NULL, &f[i]));
    ASSERT_OK(mproc_pool_close(p));
    ASSERT_OK(mproc_pool_close(p));
    ASSERT_ERR(mproc_pool_apply(p, t_sleep, arg, &out, NULL), MPROC_ECLOSED);
    ASSERT_ERR(mproc_pool_map(p, t_sleep, arg, 0, &out, NULL), MPROC_EINVAL);
    ASSERT_OK(mproc_pool_join(p, th_ms(20000)));
    ASSERT_EQ(mproc_active_children(NULL, 0), 0);
    for (i = 0; i < 10; i++) {
        ASSERT_EQ(mproc_future_result(f[i], &v, NULL, 0), 0);
        ASSERT_EQ(int_of(v), 30);
        mproc_future_destroy(f[i]);
    }
    ASSERT_OK(mproc_pool_join(p, 0));
    mproc_pool_destroy(p);
    mproc_value_free(arg);
    return 0;
}

TEST(T10_terminate_stops_at_once)
{
    mproc_pool *p = make_pool(2);
    mproc_future *f[6];
    mproc_value *arg = mproc_int(30000), *out = NULL;
    mproc_task_status st;
    int64_t t0;
    int i;
    for (i = 0; i < 6; i++)
        ASSERT_OK(mproc_pool_apply_async(p, t_sleep, arg, NULL, NULL, &f[i]));
    wait_running(p, 2);
    t0 = th_now_ms();
    ASSERT_OK(mproc_pool_terminate(p));
    ASSERT_LT(th_now_ms() - t0, th_ms(2000));
    ASSERT_EQ(mproc_active_children(NULL, 0), 0);
    for (i = 0; i < 6; i++) {
        ASSERT_EQ(mproc_future_result(f[i], NULL, &st, 0), MPROC_TASK_FAILED);
        ASSERT_ERR(st.code, MPROC_ECLOSED);
        mproc_future_destroy(f[i]);
    }
    ASSERT_ERR(mproc_pool_apply(p, t_sleep, arg, &out, NULL), MPROC_ECLOSED);
    ASSERT_OK(mproc_pool_terminate(p));
    ASSERT_OK(mproc_pool_join(p, th_ms(1000)));
    mproc_pool_destroy(p);
    mproc_value_free(arg);
    return 0;
}

/* --- T11 ---------------------------------------------------------------- */

TEST(T11_cancel_not_started_only)
{
    mproc_pool *p = make_pool(1);
    mproc_value *slow = mproc_int(400), *quick = mproc_int(1);
    mproc_future *running = NULL, *waiting = NULL;
    const mproc_value *v = NULL;
    cb_rec rec;
    mproc_pool_stats s;
    memset(&rec, 0, sizeof rec);
    ASSERT_OK(mproc_pool_apply_async(p, t_sleep, slow, NULL, NULL, &running));
    ASSERT_OK(
        mproc_pool_apply_async(p, t_sleep, quick, on_done, &rec, &waiting));
    wait_running(p, 1);
    ASSERT_ERR(mproc_future_cancel(running), MPROC_EBUSY);
    ASSERT_OK(mproc_future_cancel(waiting));
    ASSERT_EQ(rec.calls, 1);
    ASSERT_EQ(mproc_future_done(waiting), 1);
    ASSERT_ERR(mproc_future_result(waiting, &v, NULL, 0), MPROC_ESTATE);
    ASSERT_ERR(mproc_future_cancel(waiting), MPROC_ESTATE);
    ASSERT_EQ(mproc_future_result(running, &v, NULL, th_ms(10000)), 0);
    ASSERT_EQ(int_of(v), 400);
    ASSERT_ERR(mproc_future_cancel(running), MPROC_ESTATE);
    s = stats_of(p);
    ASSERT_EQ(s.cancelled, 1);
    ASSERT_EQ(s.submitted, s.done + s.failed);
    mproc_future_destroy(running);
    mproc_future_destroy(waiting);
    mproc_value_free(slow);
    mproc_value_free(quick);
    close_join(p);
    return 0;
}

typedef struct waiter_arg {
    mproc_future *f;
    int rc;
    int64_t done_ms;
} waiter_arg;

static void *wait_future(void *arg)
{
    waiter_arg *a = arg;
    a->rc = mproc_future_wait(a->f, MPROC_FOREVER);
    a->done_ms = th_now_ms();
    return NULL;
}

/* A thread that drives the pool while it waits for a future learns of its
 * cancellation at once, not when the busy worker next answers. */
TEST(T11_cancel_wakes_the_waiting_thread)
{
    mproc_pool *p = make_pool(1);
    mproc_value *slow = mproc_int(3000), *quick = mproc_int(1);
    mproc_future *running = NULL, *waiting = NULL;
    waiter_arg a;
    pthread_t t;
    int64_t t_cancel;
    ASSERT_OK(mproc_pool_apply_async(p, t_sleep, slow, NULL, NULL, &running));
    ASSERT_OK(mproc_pool_apply_async(p, t_sleep, quick, NULL, NULL, &waiting));
    wait_running(p, 1);
    a.f = waiting;
    a.rc = -1000;
    a.done_ms = 0;
    ASSERT_EQ(pthread_create(&t, NULL, wait_future, &a), 0);
    th_sleep_ms(th_ms(100)); /* it is in its wait */
    t_cancel = th_now_ms();
    ASSERT_OK(mproc_future_cancel(waiting));
    ASSERT_EQ(pthread_join(t, NULL), 0);
    ASSERT_EQ(a.rc, 0);
    ASSERT_LT(a.done_ms - t_cancel, th_ms(1000));
    ASSERT_OK(mproc_pool_terminate(p));
    mproc_future_destroy(running);
    mproc_future_destroy(waiting);
    mproc_value_free(slow);
    mproc_value_free(quick);
    mproc_pool_destroy(p);
    return 0;
}

/* --- T12 ---------------------------------------------------------------- */

typedef struct counter_gen {
    int64_t next, end;
} counter_gen;

static int gen_count(void *arg, mproc_value **item)
{
    counter_gen *g = arg;
    if (g->next >= g->end)
        return 0;
    *item = mproc_int(g->next++);
    return *item != NULL ? 1 : MPROC_ENOMEM;
}

TEST(T12_lazy_input_bounded)
{
    mproc_pool *p = make_pool(2);
    mproc_imap_options o;
    mproc_imap *it = NULL;
    counter_gen g = {0, 1000000};
    mproc_value *v;
    int64_t got = 0, max_ahead = 0;
    uint64_t max_out = 0;
    int rc;
    memset(&o, 0, sizeof o);
    o.chunksize = 500;
    o.max_in_flight = 4000;
    ASSERT_OK(mproc_pool_imap_gen(p, t_square, gen_count, &g, &o, &it));
    while ((rc = mproc_imap_next(it, &v, NULL, th_ms(20000))) == 0) {
        mproc_pool_stats s;
        ASSERT_EQ(int_of(v), got * got);
        mproc_value_free(v);
        got++;
        if (g.next - got > max_ahead)
            max_ahead = g.next - got;
        if (got % 997 == 0) {
            s = stats_of(p);
            if (s.submitted - s.done - s.failed > max_out)
                max_out = s.submitted - s.done - s.failed;
        }
    }
    ASSERT_ERR(rc, MPROC_EEOF);
    ASSERT_EQ(got, 1000000);
    ASSERT_LE(max_ahead, 4000);
    ASSERT_LE(max_out, 4000);
    mproc_imap_destroy(it);
    close_join(p);
    return 0;
}

/* --- T13 ---------------------------------------------------------------- */

typedef struct prog_rec {
    int calls;
    uint64_t last_finished;
    uint64_t min_gap;
    bool monotonic;
    bool consistent;
} prog_rec;

static void on_progress(const mproc_pool_stats *s, void *arg)
{
    prog_rec *r = arg;
    uint64_t fin = s->done + s->failed;
    r->calls++;
    if (fin < r->last_finished)
        r->monotonic = false;
    if (fin < s->submitted && fin - r->last_finished < r->min_gap)
        r->min_gap = fin - r->last_finished;
    if (s->submitted != s->queued + s->running + s->done + s->failed)
        r->consistent = false;
    r->last_finished = fin;
}

TEST(T13_stats_and_progress_count_exactly)
{
    mproc_pool *p = make_pool(2);
    mproc_value *in = range(1000), *out = NULL;
    mproc_pool_stats s;
    prog_rec r = {0, 0, UINT64_MAX, true, true};
    s = stats_of(p);
    ASSERT_EQ(s.submitted, 0);
    ASSERT_EQ(s.workers_alive, 2);
    ASSERT_ERR(mproc_pool_set_progress(p, on_progress, &r, 0, 0), MPROC_EINVAL);
    ASSERT_ERR(mproc_pool_set_progress(p, on_progress, &r, 1, -1),
               MPROC_EINVAL);
    ASSERT_OK(mproc_pool_set_progress(p, on_progress, &r, 100, 0));
    ASSERT_EQ(mproc_pool_map(p, t_fail_odd, in, 10, &out, NULL), 500);
    mproc_value_free(out);
    s = stats_of(p);
    ASSERT_EQ(s.submitted, 1000);
    ASSERT_EQ(s.done, 500);
    ASSERT_EQ(s.failed, 500);
    ASSERT_EQ(s.queued, 0);
    ASSERT_EQ(s.running, 0);
    ASSERT_EQ(s.submitted, s.done + s.failed);
    ASSERT(r.monotonic);
    ASSERT(r.consistent);
    /* At least every 100 finished tasks (results come a chunk at a time,
     * so a call may see more), and once at the end. */
    ASSERT_GE(r.calls, 2);
    ASSERT_LE(r.calls, 11);
    ASSERT_GE(r.min_gap, 100);
    ASSERT_EQ(r.last_finished, 1000);
    /* A time trigger. */
    ASSERT_OK(mproc_pool_set_progress(p, on_progress, &r, 0, 20));
    r.calls = 0;
    r.last_finished = 0;
    mproc_value_free(in);
    in = mproc_list_new();
    {
        int i;
        for (i = 0; i < 20; i++)
            ASSERT_OK(mproc_list_append(in, mproc_int(20)));
    }
    ASSERT_EQ(mproc_pool_map(p, t_sleep, in, 1, &out, NULL), 0);
    ASSERT_GE(r.calls, 3);
    mproc_value_free(out);
    mproc_value_free(in);
    ASSERT_OK(mproc_pool_set_progress(p, NULL, NULL, 0, 0));
    close_join(p);
    return 0;
}

/* --- T14 ---------------------------------------------------------------- */

typedef struct thr_arg {
    mproc_pool *p;
    int id;
    int errors;
} thr_arg;

static void *submitter(void *arg)
{
    thr_arg *a = arg;
    mproc_value *in = range(100), *out = NULL, *x = mproc_int(a->id);
    mproc_future *f[20];
    int round, i;
    for (round = 0; round < 5; round++) {
        if (mproc_pool_map(a->p, t_square, in, (size_t)a->id + 1, &out, NULL) !=
            0) {
            a->errors++;
            continue;
        }
        for (i = 0; i < 100; i++)
            if (int_of(mproc_list_get(out, (size_t)i)) != (int64_t)i * i)
                a->errors++;
        mproc_value_free(out);
        for (i = 0; i < 20; i++)
            if (mproc_pool_apply_async(a->p, t_square, x, NULL, NULL, &f[i]) !=
                0)
                f[i] = NULL;
        for (i = 0; i < 20; i++) {
            const mproc_value *v = NULL;
            if (f[i] == NULL ||
                mproc_future_result(f[i], &v, NULL, MPROC_FOREVER) != 0 ||
                int_of(v) != (int64_t)a->id * a->id)
                a->errors++;
            mproc_future_destroy(f[i]);
        }
    }
    mproc_value_free(in);
    mproc_value_free(x);
    return NULL;
}

TEST(T14_threads_submit_and_collect)
{
    mproc_pool *p = make_pool(3);
    pthread_t t[4];
    thr_arg a[4];
    mproc_pool_stats s;
    int i;
    for (i = 0; i < 4; i++) {
        a[i].p = p;
        a[i].id = i;
        a[i].errors = 0;
        ASSERT_EQ(pthread_create(&t[i], NULL, submitter, &a[i]), 0);
    }
    for (i = 0; i < 4; i++) {
        ASSERT_EQ(pthread_join(t[i], NULL), 0);
        ASSERT_EQ(a[i].errors, 0);
    }
    s = stats_of(p);
    ASSERT_EQ(s.submitted, 4 * 5 * 120);
    ASSERT_EQ(s.done, 4 * 5 * 120);
    close_join(p);
    return 0;
}

/* --- T15 ---------------------------------------------------------------- */

TEST(T15_destroy_in_flight_leaves_nothing)
{
    int before, after;
    mproc_pool *p;
    mproc_future *f[8];
    mproc_imap *it = NULL;
    mproc_task_status st;
    mproc_value *arg = mproc_int(30000), *v = NULL;
    int i, rc;
    /* A first pool warms up what the library keeps for the process. */
    p = make_pool(2);
    close_join(p);
    before = th_open_handles();
    p = make_pool(3);
    for (i = 0; i < 8; i++)
        ASSERT_OK(mproc_pool_apply_async(p, t_sleep, arg, NULL, NULL, &f[i]));
    ASSERT_OK(mproc_pool_imap(
        p, t_sleep, MPROC_LIST(mproc_int(30000), mproc_int(1)), 1, &it));
    wait_running(p, 3);
    ASSERT_NULL(mproc_pool_destroy(p));
    ASSERT_EQ(mproc_active_children(NULL, 0), 0);
    for (i = 0; i < 8; i++) {
        ASSERT_EQ(mproc_future_result(f[i], NULL, &st, 0), MPROC_TASK_FAILED);
        ASSERT_ERR(st.code, MPROC_ECLOSED);
        mproc_future_destroy(f[i]);
    }
    while ((rc = mproc_imap_next(it, &v, &st, 0)) == MPROC_TASK_FAILED)
        ASSERT_ERR(st.code, MPROC_ECLOSED);
    ASSERT_ERR(rc, MPROC_EEOF);
    mproc_imap_destroy(it);
    after = th_open_handles();
    if (before >= 0)
        ASSERT_EQ(after, before);
    mproc_value_free(arg);
    return 0;
}

/* A future or iterator destroyed while its tasks are with workers: the
 * pool still settles them (into nothing) and ends cleanly. */
TEST(T15_handles_destroyed_while_tasks_run)
{
    mproc_pool *p = make_pool(2);
    mproc_value *slow = mproc_int(200), *quick = mproc_int(1), *out = NULL;
    mproc_future *f = NULL;
    mproc_imap *it = NULL;
    mproc_pool_stats s;
    ASSERT_OK(mproc_pool_apply_async(p, t_sleep, slow, NULL, NULL, &f));
    ASSERT_OK(mproc_pool_imap(
        p, t_sleep, MPROC_LIST(mproc_int(200), mproc_int(200)), 1, &it));
    wait_running(p, 2);
    mproc_future_destroy(f);
    mproc_imap_destroy(it);
    ASSERT_EQ(mproc_pool_apply(p, t_sleep, quick, &out, NULL), 0);
    mproc_value_free(out);
    ASSERT_OK(mproc_pool_close(p));
    ASSERT_OK(mproc_pool_join(p, th_ms(10000)));
    s = stats_of(p);
    ASSERT_EQ(s.submitted, s.done + s.failed);
    mproc_pool_destroy(p);
    /* The same, ended by terminate. */
    p = make_pool(1);
    ASSERT_OK(mproc_pool_apply_async(p, t_sleep, slow, NULL, NULL, &f));
    wait_running(p, 1);
    mproc_future_destroy(f);
    ASSERT_OK(mproc_pool_terminate(p));
    mproc_pool_destroy(p);
    mproc_value_free(slow);
    mproc_value_free(quick);
    return 0;
}

/* --- T16 ---------------------------------------------------------------- */

TEST(T16_default_workers_and_64)
{
    mproc_pool *p = NULL;
    mproc_value *in, *out = NULL;
    int64_t pids[640];
    int distinct = 0, i, k;
    ASSERT_OK(mproc_pool_create(&p, NULL));
    ASSERT_EQ(mproc_pool_workers(p), mproc_cpu_count_usable());
    close_join(p);
    p = make_pool(64);
    ASSERT_EQ(mproc_pool_workers(p), 64);
    in = mproc_list_new();
    for (i = 0; i < 640; i++)
        ASSERT_OK(mproc_list_append(in, mproc_int(5)));
    ASSERT_EQ(mproc_pool_map(p, t_pid, in, 1, &out, NULL), 0);
    for (i = 0; i < 640; i++) {
        pids[i] = int_of(mproc_list_get(out, (size_t)i));
        for (k = 0; k < i; k++)
            if (pids[k] == pids[i])
                break;
        if (k == i)
            distinct++;
    }
    ASSERT_EQ(distinct, 64);
    ASSERT_EQ(stats_of(p).workers_alive, 64);
    mproc_value_free(out);
    mproc_value_free(in);
    close_join(p);
    ASSERT_EQ(mproc_active_children(NULL, 0), 0);
    return 0;
}
