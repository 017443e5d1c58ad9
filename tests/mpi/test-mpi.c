/* Tests of the MPI pool (rows M01-M08 of CONFORMANCE.md; M05 is
 * tests/mpi/m05prog.c, launched with two different binaries). Every rank
 * runs the test; worker ranks stay in mproc_mpi_pool_create. */
#include "harness.h"
#include "mproc_mpi.h"

#include <mpi.h>
#include <signal.h>

/* --- task functions ------------------------------------------------------ */

static int64_t int_of(const mproc_value *v)
{
    int64_t x = -1;
    (void)mproc_value_get_int(v, &x);
    return x;
}

static int my_rank(void)
{
    int r = -1;
    (void)mproc_mpi_world(&r, NULL);
    return r;
}

static int m_square(const mproc_value *arg, mproc_value **result)
{
    int64_t x;
    if (mproc_value_get_int(arg, &x) != 0)
        return 22;
    *result = mproc_int(x * x);
    return 0;
}

/* [rank, x] after arg ms. */
static int m_where(const mproc_value *arg, mproc_value **result)
{
    int64_t ms = int_of(arg);
    if (ms > 0)
        th_sleep_ms((int)ms);
    *result = MPROC_LIST(mproc_int(my_rank()), mproc_int(ms));
    return 0;
}

static int m_fail_odd(const mproc_value *arg, mproc_value **result)
{
    char msg[64];
    int64_t x = int_of(arg);
    if (x % 2 != 0) {
        snprintf(msg, sizeof msg, "odd input %lld on rank %d", (long long)x,
                 my_rank());
        (void)mproc_task_set_message(msg);
        return 7;
    }
    *result = mproc_int(x);
    return 0;
}

/* Item 13 dies as arg[1] says (1 segfault, 2 exit(3), 3 SIGKILL), the
 * others sleep 10 ms. */
static int m_die_13(const mproc_value *args, mproc_value **result)
{
    int64_t x = int_of(mproc_list_get(args, 0));
    int64_t how = int_of(mproc_list_get(args, 1));
    th_sleep_ms(10);
    if (x == 13) {
        if (how == 1) {
            volatile int *volatile nowhere = NULL;
            *nowhere = 1;
        } else if (how == 2) {
            exit(3);
        } else if (how == 3) {
            (void)raise(SIGKILL);
        }
    }
    *result = mproc_int(x);
    return 0;
}

static int g_init_runs;
static int g_init_rank = -1;
static int64_t g_init_arg = -1;

static int m_init(const mproc_value *arg)
{
    g_init_runs++;
    g_init_rank = my_rank();
    g_init_arg = int_of(arg);
    return 0;
}

/* [runs, rank the initializer ran on, its argument, rank now] */
static int m_init_seen(const mproc_value *arg, mproc_value **result)
{
    int64_t ms = int_of(arg);
    if (ms > 0)
        th_sleep_ms((int)ms);
    *result = MPROC_LIST(mproc_int(g_init_runs), mproc_int(g_init_rank),
                         mproc_int(g_init_arg), mproc_int(my_rank()));
    return 0;
}

/* What the master-only calls give on a worker rank, from a task. */
static int m_master_calls(const mproc_value *arg, mproc_value **result)
{
    mproc_pool *p = (mproc_pool *)1;
    int create_rc = mproc_mpi_pool_create(&p, NULL, NULL);
    int shutdown_rc = mproc_mpi_shutdown();
    (void)arg;
    *result = MPROC_LIST(mproc_int(create_rc), mproc_int(shutdown_rc),
                         mproc_bool(p == NULL));
    return 0;
}

/* --- helpers ------------------------------------------------------------- */

static mproc_value *range(int64_t n)
{
    mproc_value *l = mproc_list_new();
    int64_t i;
    ASSERT_NOT_NULL(l);
    for (i = 0; i < n; i++)
        ASSERT_OK(mproc_list_append(l, mproc_int(i)));
    return l;
}

static mproc_value *repeat(int64_t v, int64_t n)
{
    mproc_value *l = mproc_list_new();
    int64_t i;
    for (i = 0; i < n; i++)
        ASSERT_OK(mproc_list_append(l, mproc_int(v)));
    return l;
}

/* The job's pool: on a worker rank this does not return (the default
 * mode), so whatever follows runs on rank 0 alone. */
static mproc_pool *job_pool(const mproc_pool_options *opt, int depth)
{
    mproc_mpi_options m;
    mproc_pool *p = NULL;
    memset(&m, 0, sizeof m);
    m.depth = depth;
    ASSERT_OK(mproc_mpi_pool_create(&p, opt, &m));
    ASSERT_EQ(my_rank(), 0);
    ASSERT_NOT_NULL(p);
    return p;
}

static void close_join(mproc_pool *p)
{
    ASSERT_OK(mproc_pool_close(p));
    ASSERT_OK(mproc_pool_join(p, th_ms(20000)));
    ASSERT_NULL(mproc_pool_destroy(p));
}

static mproc_pool_stats stats_of(mproc_pool *p)
{
    mproc_pool_stats s;
    ASSERT_OK(mproc_pool_stats_get(p, &s));
    return s;
}

/* --- M01 ----------------------------------------------------------------- */

TEST(M01_map_10000_items_in_order)
{
    static const size_t chunks[] = {0, 1, 7, 10000};
    mproc_pool *p = job_pool(NULL, 0);
    mproc_value *in = range(10000), *out = NULL;
    mproc_task_status *fails = NULL;
    bool seen[4] = {false, false, false, false};
    size_t k;
    int64_t i;
    int size = 0;
    ASSERT_OK(mproc_mpi_world(NULL, &size));
    ASSERT_EQ(size, 4);
    ASSERT_EQ(mproc_pool_workers(p), 3);
    ASSERT_EQ(stats_of(p).workers_alive, 3);
    for (k = 0; k < sizeof chunks / sizeof chunks[0]; k++) {
        ASSERT_EQ(mproc_pool_map(p, m_square, in, chunks[k], &out, &fails), 0);
        ASSERT_NULL(fails);
        ASSERT_EQ(mproc_list_size(out), 10000);
        for (i = 0; i < 10000; i++)
            ASSERT_EQ(int_of(mproc_list_get(out, (size_t)i)), i * i);
        mproc_value_free(out);
    }
    mproc_value_free(in);
    /* The work went to the worker ranks, every one of them, never rank 0. */
    in = repeat(3, 90);
    ASSERT_EQ(mproc_pool_map(p, m_where, in, 1, &out, NULL), 0);
    for (i = 0; i < 90; i++) {
        int64_t r = int_of(mproc_list_get(mproc_list_get(out, (size_t)i), 0));
        ASSERT_GE(r, 1);
        ASSERT_LE(r, 3);
        seen[r] = true;
    }
    ASSERT(seen[1] && seen[2] && seen[3]);
    mproc_value_free(out);
    mproc_value_free(in);
    close_join(p);
    /* A second pool, two chunks in flight per rank. */
    p = job_pool(NULL, 2);
    in = range(10000);
    ASSERT_EQ(mproc_pool_map(p, m_square, in, 0, &out, NULL), 0);
    for (i = 0; i < 10000; i++)
        ASSERT_EQ(int_of(mproc_list_get(out, (size_t)i)), i * i);
    mproc_value_free(out);
    mproc_value_free(in);
    close_join(p);
    return 0;
}

/* --- M02 ----------------------------------------------------------------- */

static void check_inits(const mproc_value *out, int64_t n, int runs,
                        int64_t arg)
{
    bool seen[4] = {false, false, false, false};
    int64_t i;
    for (i = 0; i < n; i++) {
        const mproc_value *r = mproc_list_get(out, (size_t)i);
        int64_t now = int_of(mproc_list_get(r, 3));
        ASSERT_EQ(int_of(mproc_list_get(r, 0)), runs);
        ASSERT_EQ(int_of(mproc_list_get(r, 1)), now);
        ASSERT_EQ(int_of(mproc_list_get(r, 2)), arg);
        ASSERT_GE(now, 1);
        ASSERT_LE(now, 3);
        seen[now] = true;
    }
    ASSERT(seen[1] && seen[2] && seen[3]);
}

TEST(M02_worker_ranks_serve_until_master_ends)
{
    mproc_pool_options o;
    mproc_pool *p = NULL;
    mproc_value *initarg = mproc_int(41), *in = repeat(4, 60), *out = NULL;
    int rc;
    memset(&o, 0, sizeof o);
    o.initializer = m_init;
    o.initarg = initarg;
    rc = mproc_mpi_pool_create(&p, &o, NULL);
    /* A worker rank comes back only by exiting, after rank 0 ended. */
    if (my_rank() != 0)
        th_fail(__FILE__, __LINE__, "worker rank returned %d from create", rc);
    ASSERT_OK(rc);
    mproc_value_free(initarg);
    ASSERT_EQ(mproc_pool_map(p, m_init_seen, in, 1, &out, NULL), 0);
    check_inits(out, 60, 1, 41);
    mproc_value_free(out);
    close_join(p);
    /* The same ranks serve the next pool: its initializer runs again. */
    initarg = mproc_int(42);
    o.initarg = initarg;
    ASSERT_OK(mproc_mpi_pool_create(&p, &o, NULL));
    mproc_value_free(initarg);
    ASSERT_EQ(mproc_pool_map(p, m_init_seen, in, 1, &out, NULL), 0);
    check_inits(out, 60, 2, 42);
    mproc_value_free(out);
    close_join(p);
    mproc_value_free(in);
    /* They leave when told; then no pool can be made. */
    ASSERT_OK(mproc_mpi_shutdown());
    ASSERT_OK(mproc_mpi_shutdown());
    ASSERT_ERR(mproc_mpi_pool_create(&p, NULL, NULL), MPROC_ECLOSED);
    ASSERT_NULL(p);
    return 0;
}

TEST(M02_return_mode_returns_when_master_closes)
{
    mproc_mpi_options m;
    mproc_pool_options o;
    mproc_pool *p = (mproc_pool *)1;
    mproc_value *initarg = mproc_int(7), *in = repeat(5, 30), *out = NULL;
    int round, rc, r, size = 0;
    memset(&m, 0, sizeof m);
    memset(&o, 0, sizeof o);
    m.flags = MPROC_MPI_RETURN;
    o.initializer = m_init;
    o.initarg = initarg;
    ASSERT_OK(mproc_mpi_world(NULL, &size));
    for (round = 1; round <= 2; round++) {
        rc = mproc_mpi_pool_create(&p, &o, &m);
        if (my_rank() != 0) {
            /* Back only once rank 0 has closed (and joined) its pool: its
             * clock reading, sent after the close, is older than ours. */
            int64_t now = th_now_us(), closed = 0;
            ASSERT_EQ(rc, MPROC_MPI_WORKER);
            ASSERT_NULL(p);
            ASSERT_EQ(MPI_Recv(&closed, 1, MPI_INT64_T, 0, 99, MPI_COMM_WORLD,
                               MPI_STATUS_IGNORE),
                      MPI_SUCCESS);
            ASSERT_GT(closed, 0);
            ASSERT_GE(now, closed);
            ASSERT_EQ(g_init_runs, round);
            continue;
        }
        ASSERT_OK(rc);
        ASSERT_EQ(mproc_pool_map(p, m_init_seen, in, 1, &out, NULL), 0);
        check_inits(out, 30, round, 7);
        mproc_value_free(out);
        /* The workers are still in create while rank 0 works on. */
        th_sleep_ms(200);
        {
            int64_t closed = th_now_us();
            ASSERT_OK(mproc_pool_close(p));
            for (r = 1; r < size; r++)
                ASSERT_EQ(
                    MPI_Send(&closed, 1, MPI_INT64_T, r, 99, MPI_COMM_WORLD),
                    MPI_SUCCESS);
        }
        ASSERT_OK(mproc_pool_join(p, th_ms(10000)));
        ASSERT_NULL(mproc_pool_destroy(p));
    }
    /* M08 too: a worker rank may not end the job's pools. */
    if (my_rank() != 0) {
        ASSERT_ERR(mproc_mpi_shutdown(), MPROC_EPERM);
        ASSERT_ERR(mproc_mpi_pool_create(&p, &o, &m), MPROC_ECLOSED);
        ASSERT_NULL(p);
    } else {
        ASSERT_OK(mproc_mpi_shutdown());
    }
    mproc_value_free(initarg);
    mproc_value_free(in);
    return 0;
}

/* --- M03 ----------------------------------------------------------------- */

typedef struct cb_rec {
    int calls;
    int64_t value;
    int rank;
} cb_rec;

static void on_done(mproc_future *f, void *arg)
{
    cb_rec *r = arg;
    const mproc_value *v = NULL;
    r->calls++;
    r->rank = my_rank();
    if (mproc_future_result(f, &v, NULL, 0) == 0)
        r->value = int_of(mproc_list_get(v, 1));
}

TEST(M03_imap_unordered_apply_async_futures)
{
    mproc_pool *p = job_pool(NULL, 0);
    mproc_imap *it = NULL;
    mproc_value *v, *arg;
    mproc_future *f[8];
    const mproc_value *fv;
    cb_rec rec[8];
    bool seen[300];
    int rc, n = 0, i, cancelled = 0;
    memset(seen, 0, sizeof seen);
    ASSERT_OK(mproc_pool_imap_unordered(p, m_square, range(300), 4, &it));
    while ((rc = mproc_imap_next(it, &v, NULL, th_ms(10000))) == 0) {
        int64_t x = int_of(v), r = 0;
        while (r * r < x)
            r++;
        ASSERT_EQ(r * r, x);
        ASSERT(!seen[r]);
        seen[r] = true;
        n++;
        mproc_value_free(v);
    }
    ASSERT_ERR(rc, MPROC_EEOF);
    ASSERT_EQ(n, 300);
    ASSERT_NULL(mproc_imap_destroy(it));
    /* imap in order, with a timeout on next. */
    ASSERT_OK(mproc_pool_imap(
        p, m_where, MPROC_LIST(mproc_int(300), mproc_int(1)), 1, &it));
    ASSERT_ERR(mproc_imap_next(it, &v, NULL, 20), MPROC_ETIMEDOUT);
    ASSERT_EQ(mproc_imap_next(it, &v, NULL, th_ms(10000)), 0);
    ASSERT_EQ(int_of(mproc_list_get(v, 1)), 300);
    mproc_value_free(v);
    ASSERT_EQ(mproc_imap_next(it, &v, NULL, th_ms(10000)), 0);
    ASSERT_EQ(int_of(mproc_list_get(v, 1)), 1);
    mproc_value_free(v);
    ASSERT_NULL(mproc_imap_destroy(it));
    /* apply_async: 8 slow tasks on 3 ranks, one chunk each in flight: the
     * last ones wait in the pool and can be cancelled. */
    memset(rec, 0, sizeof rec);
    arg = mproc_int(150);
    for (i = 0; i < 8; i++)
        ASSERT_OK(
            mproc_pool_apply_async(p, m_where, arg, on_done, &rec[i], &f[i]));
    ASSERT_EQ(mproc_future_done(f[0]), 0);
    ASSERT_ERR(mproc_future_wait(f[0], 20), MPROC_ETIMEDOUT);
    for (i = 7; i >= 5; i--)
        if (mproc_future_cancel(f[i]) == 0)
            cancelled++;
    ASSERT_GE(cancelled, 1);
    for (i = 0; i < 8; i++) {
        ASSERT_OK(mproc_future_wait(f[i], th_ms(10000)));
        ASSERT_EQ(mproc_future_done(f[i]), 1);
        rc = mproc_future_result(f[i], &fv, NULL, 0);
        if (rc == MPROC_ESTATE) { /* cancelled */
            ASSERT_GE(i, 5);
        } else {
            ASSERT_EQ(rc, 0);
            ASSERT_EQ(int_of(mproc_list_get(fv, 1)), 150);
            ASSERT_EQ(rec[i].value, 150);
        }
        /* Callbacks run once, on rank 0. */
        ASSERT_EQ(rec[i].calls, 1);
        ASSERT_EQ(rec[i].rank, 0);
        mproc_future_destroy(f[i]);
    }
    mproc_value_free(arg);
    close_join(p);
    return 0;
}

/* --- M04 ----------------------------------------------------------------- */

TEST(M04_task_error_fails_only_its_task)
{
    mproc_pool *p = job_pool(NULL, 0);
    mproc_value *in = range(1000), *out = NULL;
    mproc_task_status *fails = NULL;
    mproc_pool_stats s;
    int64_t i;
    ASSERT_EQ(mproc_pool_map(p, m_fail_odd, in, 5, &out, &fails), 500);
    for (i = 0; i < 500; i++) {
        char want[64];
        snprintf(want, sizeof want, "odd input %lld on rank %lld",
                 (long long)(2 * i + 1), (long long)fails[i].pid);
        ASSERT_EQ(fails[i].code, 7);
        ASSERT_EQ(fails[i].index, 2 * i + 1);
        /* pid is the rank that ran it */
        ASSERT_GE(fails[i].pid, 1);
        ASSERT_LE(fails[i].pid, 3);
        ASSERT_STR_EQ(fails[i].message, want);
        ASSERT_EQ(int_of(mproc_list_get(out, (size_t)(2 * i))), 2 * i);
    }
    mproc_free(fails);
    mproc_value_free(out);
    /* Every rank stayed: the next map runs on all three. */
    ASSERT_EQ(mproc_pool_map(p, m_square, in, 0, &out, NULL), 0);
    for (i = 0; i < 1000; i++)
        ASSERT_EQ(int_of(mproc_list_get(out, (size_t)i)), i * i);
    mproc_value_free(out);
    s = stats_of(p);
    ASSERT_EQ(s.workers_alive, 3);
    ASSERT_EQ(s.workers_replaced, 0);
    ASSERT_EQ(s.submitted, 2000);
    ASSERT_EQ(s.failed, 500);
    mproc_value_free(in);
    close_join(p);
    return 0;
}

/* --- M06 (CMakeLists.txt checks the job's end and its output) ------------ */

static void die_at_13(int how)
{
    mproc_pool *p = job_pool(NULL, 0);
    mproc_value *in = mproc_list_new(), *out = NULL;
    int64_t i;
    for (i = 0; i < 40; i++)
        ASSERT_OK(
            mproc_list_append(in, MPROC_LIST(mproc_int(i), mproc_int(how))));
    (void)mproc_pool_starmap(p, m_die_13, in, 1, &out, NULL);
    th_fail(__FILE__, __LINE__, "the map returned: the job should have ended");
}

TEST(M06_crashed_rank_ends_job)
{
    die_at_13(1);
    return 0;
}

TEST(M06_exit_in_task_ends_job)
{
    die_at_13(2);
    return 0;
}

TEST(M06_killed_rank_ends_job)
{
    die_at_13(3);
    return 0;
}

/* Rank 0 itself: the worker ranks, waiting for work, end with the job. */
TEST(M06_crashed_master_ends_job)
{
    mproc_pool *p = job_pool(NULL, 0);
    mproc_value *arg = mproc_int(1000), *out = NULL;
    mproc_future *f = NULL;
    volatile int *volatile nowhere = NULL;
    ASSERT_OK(mproc_pool_apply_async(p, m_where, arg, NULL, NULL, &f));
    ASSERT_OK(mproc_pool_apply(p, m_square, arg, &out, NULL));
    *nowhere = 1;
    return 0;
}

/* --- M07 ----------------------------------------------------------------- */

/* Outside a job, or in a world of one: a local pool, or MPROC_ENOSYS on
 * request; never a hang. */
static void local_fallback(int want_world_rc)
{
    mproc_mpi_options m;
    mproc_pool *p = (mproc_pool *)1;
    mproc_value *in = range(100), *out = NULL;
    int64_t t0 = th_now_ms(), i;
    int rank = -1, size = -1;
    ASSERT_ERR(mproc_mpi_world(&rank, &size), want_world_rc);
    ASSERT_EQ(rank, 0);
    ASSERT_EQ(size, 1);
    memset(&m, 0, sizeof m);
    m.flags = MPROC_MPI_NO_FALLBACK;
    ASSERT_ERR(mproc_mpi_pool_create(&p, NULL, &m), MPROC_ENOSYS);
    ASSERT_NULL(p);
    ASSERT_OK(mproc_mpi_pool_create(&p, NULL, NULL));
    ASSERT_EQ(mproc_pool_workers(p), mproc_cpu_count_usable());
    ASSERT_EQ(mproc_pool_map(p, m_square, in, 0, &out, NULL), 0);
    for (i = 0; i < 100; i++)
        ASSERT_EQ(int_of(mproc_list_get(out, (size_t)i)), i * i);
    mproc_value_free(out);
    /* A local worker never joins MPI: create there is a local pool's, which
     * a daemonic worker may not start (even a fork of a rank). */
    ASSERT_EQ(mproc_pool_map(p, m_master_calls, in, 0, &out, NULL), 0);
    ASSERT_ERR(int_of(mproc_list_get(mproc_list_get(out, 0), 0)),
               MPROC_EDAEMON);
    ASSERT_OK(int_of(mproc_list_get(mproc_list_get(out, 0), 1)));
    mproc_value_free(out);
    close_join(p);
    ASSERT_OK(mproc_mpi_shutdown());
    ASSERT_LT(th_now_ms() - t0, th_ms(10000));
    mproc_value_free(in);
}

TEST(M07_outside_job_local_fallback)
{
    local_fallback(MPROC_ENOSYS);
    return 0;
}

TEST(M07_world_of_one_rank)
{
    local_fallback(0);
    return 0;
}

/* --- M08 ----------------------------------------------------------------- */

TEST(M08_worker_rank_calls_refused)
{
    mproc_pool_options o;
    mproc_mpi_options m;
    mproc_pool *p = job_pool(NULL, 0), *q = (mproc_pool *)1;
    mproc_value *in = range(9), *out = NULL;
    int64_t i;
    /* From a task on a worker rank: create and shutdown are the master's. */
    ASSERT_EQ(mproc_pool_map(p, m_master_calls, in, 1, &out, NULL), 0);
    for (i = 0; i < 9; i++) {
        const mproc_value *r = mproc_list_get(out, (size_t)i);
        bool cleared = false;
        ASSERT_ERR(int_of(mproc_list_get(r, 0)), MPROC_EPERM);
        ASSERT_ERR(int_of(mproc_list_get(r, 1)), MPROC_EPERM);
        ASSERT_OK(mproc_value_get_bool(mproc_list_get(r, 2), &cleared));
        ASSERT(cleared);
    }
    mproc_value_free(out);
    /* On rank 0: one pool at a time; bad options. */
    ASSERT_ERR(mproc_mpi_pool_create(&q, NULL, NULL), MPROC_EBUSY);
    ASSERT_NULL(q);
    ASSERT_ERR(mproc_mpi_shutdown(), MPROC_EBUSY);
    close_join(p);
    memset(&o, 0, sizeof o);
    memset(&m, 0, sizeof m);
    o.workers = 4;
    ASSERT_ERR(mproc_mpi_pool_create(&q, &o, NULL), MPROC_EINVAL);
    o.workers = -1;
    ASSERT_ERR(mproc_mpi_pool_create(&q, &o, NULL), MPROC_EINVAL);
    o.workers = 0;
    o.maxtasksperchild = 5;
    ASSERT_ERR(mproc_mpi_pool_create(&q, &o, NULL), MPROC_ENOSYS);
    o.maxtasksperchild = 0;
    m.depth = 3;
    ASSERT_ERR(mproc_mpi_pool_create(&q, &o, &m), MPROC_EINVAL);
    m.depth = 0;
    m.flags = 0x80;
    ASSERT_ERR(mproc_mpi_pool_create(&q, &o, &m), MPROC_EINVAL);
    ASSERT_ERR(mproc_mpi_pool_create(NULL, &o, NULL), MPROC_EINVAL);
    ASSERT_NULL(q);
    /* After all that the ranks still serve. */
    p = job_pool(NULL, 0);
    ASSERT_EQ(mproc_pool_map(p, m_square, in, 0, &out, NULL), 0);
    ASSERT_EQ(int_of(mproc_list_get(out, 8)), 64);
    mproc_value_free(out);
    close_join(p);
    mproc_value_free(in);
    return 0;
}
