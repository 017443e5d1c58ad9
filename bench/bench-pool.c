/*
 * Pool benchmarks: mproc_pool against a raw C floor (fork + socketpair per
 * worker, a buffered length-prefixed reader, one message in flight per
 * worker, each task one message) and Python's Pool / ProcessPoolExecutor
 * (bench_py.py). Two workers, an empty task, unless said otherwise.
 *
 * The raw floor keeps one task in flight per worker, as a hand-written
 * master/worker loop over socketpairs does; the pool sends a few tasks
 * ahead to a worker when tasks are quick, which is why it can beat it.
 */
#include "bench.h"

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))
#define WORKERS 2
#define RAW_BATCH 100 /* items per message of the raw map floor */
#define MAP_ITEMS 1000000

/* ------------------------------------------------------------------------
 * Task functions
 */

static int t_empty(const mproc_value *arg, mproc_value **result)
{
    (void)arg;
    (void)result;
    return 0;
}

static int t_inc(const mproc_value *arg, mproc_value **result)
{
    int64_t x = 0;
    (void)mproc_value_get_int(arg, &x);
    *result = mproc_int(x + 1);
    return 0;
}

static int t_nap(const mproc_value *arg, mproc_value **result)
{
    (void)arg;
    (void)result;
    bench_sleep_ms(10000);
    return 0;
}

/* ------------------------------------------------------------------------
 * The raw floor: WORKERS forked workers, a socketpair each. A worker reads
 * a frame of int64s and answers with a frame of the same count (each + 1).
 */

typedef struct raw_pool {
    int fd[WORKERS];
    pid_t pid[WORKERS];
    bench_framer fr[WORKERS];
} raw_pool;

static void raw_worker(int fd)
{
    bench_framer f;
    int64_t buf[RAW_BATCH];
    long n;
    bench_framer_init(&f, fd, 16 * 1024);
    while ((n = bench_frame_recv(&f, buf, sizeof buf)) > 0) {
        long i;
        for (i = 0; i < n / 8; i++)
            buf[i]++;
        if (bench_frame_send(fd, buf, (uint32_t)n) < 0)
            _exit(3);
    }
    _exit(0);
}

static void raw_start(raw_pool *rp)
{
    int i;
    for (i = 0; i < WORKERS; i++) {
        int sv[2];
        pid_t pid;
        BENCH_SYS(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
        pid = fork();
        BENCH_SYS(pid);
        if (pid == 0) {
            int k;
            close(sv[0]);
            for (k = 0; k < i; k++)
                close(rp->fd[k]);
            raw_worker(sv[1]);
        }
        close(sv[1]);
        rp->fd[i] = sv[0];
        rp->pid[i] = pid;
        bench_framer_init(&rp->fr[i], sv[0], 16 * 1024);
    }
}

static void raw_stop(raw_pool *rp)
{
    int i;
    for (i = 0; i < WORKERS; i++) {
        close(rp->fd[i]);
        bench_waitpid_ok(rp->pid[i]);
        bench_framer_free(&rp->fr[i]);
    }
}

/* n tasks of `batch` items each, one message in flight per worker. */
static double raw_run(raw_pool *rp, long tasks, int batch)
{
    int64_t buf[RAW_BATCH];
    long sent = 0, got = 0;
    struct pollfd pf[WORKERS];
    double t0 = bench_now();
    int i;
    memset(buf, 0, sizeof buf);
    for (i = 0; i < WORKERS && sent < tasks; i++, sent++)
        BENCH_SYS(bench_frame_send(rp->fd[i], buf, (uint32_t)(8 * batch)));
    while (got < tasks) {
        for (i = 0; i < WORKERS; i++) {
            pf[i].fd = rp->fd[i];
            pf[i].events = POLLIN;
            pf[i].revents = 0;
        }
        /* Read whatever is buffered first: poll cannot see it. */
        for (i = 0; i < WORKERS; i++)
            if (rp->fr[i].end > rp->fr[i].start)
                pf[i].revents = POLLIN;
        if (pf[0].revents == 0 && pf[1].revents == 0)
            BENCH_SYS(poll(pf, WORKERS, -1));
        for (i = 0; i < WORKERS; i++) {
            if (!(pf[i].revents & (POLLIN | POLLHUP)))
                continue;
            if (bench_frame_recv(&rp->fr[i], buf, sizeof buf) < 0)
                bench_fail(BENCH_ERROR, "raw worker died");
            got++;
            if (sent < tasks) {
                BENCH_SYS(
                    bench_frame_send(rp->fd[i], buf, (uint32_t)(8 * batch)));
                sent++;
            }
        }
    }
    return bench_now() - t0;
}

static mproc_pool *pool_new(int workers, mproc_start_method m)
{
    mproc_pool_options o;
    mproc_pool *p = NULL;
    memset(&o, 0, sizeof o);
    o.workers = workers;
    o.method = m;
    BENCH_MPROC(mproc_pool_create(&p, &o));
    return p;
}

static void pool_end(mproc_pool *p)
{
    BENCH_MPROC(mproc_pool_close(p));
    BENCH_MPROC(mproc_pool_join(p, MPROC_FOREVER));
    mproc_pool_destroy(p);
}

static mproc_value *range(long n)
{
    mproc_value *l = mproc_list_new();
    long i;
    if (l == NULL)
        bench_fail(BENCH_ERROR, "out of memory");
    for (i = 0; i < n; i++)
        BENCH_MPROC(mproc_list_append(l, mproc_int(i)));
    return l;
}

/* CPU seconds used so far by this process and its reaped children: on a
 * shared machine the wall time of a map swings with the others' load, its
 * CPU time much less. */
static double cpu_self(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double cpu_children(void)
{
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

/* ------------------------------------------------------------------------
 * imap_unordered, chunksize 1: tasks per second
 */

static long imap_n(void)
{
    return bench_n(100000, 20000);
}

static void imap_raw(bench_result *r, const void *arg)
{
    raw_pool rp;
    long n = imap_n();
    (void)arg;
    raw_start(&rp);
    (void)raw_run(&rp, 200, 1); /* warm */
    r->value[0] = (double)n / raw_run(&rp, n, 1);
    raw_stop(&rp);
}

static void imap_mproc(bench_result *r, const void *arg)
{
    mproc_pool *p = pool_new(WORKERS, MPROC_START_FORK);
    long n = imap_n(), got = 0;
    mproc_imap *it = NULL;
    mproc_value *v;
    double t0;
    int rc;
    mproc_value *in = range(n);
    (void)arg;
    t0 = bench_now();
    BENCH_MPROC(mproc_pool_imap_unordered(p, t_empty, in, 1, &it));
    while ((rc = mproc_imap_next(it, &v, NULL, MPROC_FOREVER)) == 0) {
        mproc_value_free(v);
        got++;
    }
    r->value[0] = (double)n / (bench_now() - t0);
    if (rc != MPROC_EEOF || got != n)
        bench_fail(BENCH_ERROR, "imap_unordered: %d after %ld", rc, got);
    mproc_imap_destroy(it);
    pool_end(p);
}

/* ------------------------------------------------------------------------
 * apply round trip: microseconds per apply
 */

static long apply_n(void)
{
    return bench_n(20000, 3000);
}

static void apply_raw(bench_result *r, const void *arg)
{
    raw_pool rp;
    int64_t x = 0;
    long i, n = apply_n();
    double t0;
    (void)arg;
    raw_start(&rp);
    t0 = bench_now();
    for (i = 0; i < n; i++) {
        BENCH_SYS(bench_frame_send(rp.fd[0], &x, 8));
        if (bench_frame_recv(&rp.fr[0], &x, 8) != 8)
            bench_fail(BENCH_ERROR, "raw worker died");
    }
    r->value[0] = (bench_now() - t0) / (double)n * 1e6;
    raw_stop(&rp);
}

static void apply_mproc(bench_result *r, const void *arg)
{
    mproc_pool *p = pool_new(WORKERS, MPROC_START_FORK);
    mproc_value *x = mproc_int(1), *res = NULL;
    long i, n = apply_n();
    double t0;
    (void)arg;
    for (i = 0; i < 100; i++) {
        BENCH_MPROC(mproc_pool_apply(p, t_inc, x, &res, NULL));
        mproc_value_free(res);
    }
    t0 = bench_now();
    for (i = 0; i < n; i++) {
        int rc = mproc_pool_apply(p, t_inc, x, &res, NULL);
        if (rc != 0)
            bench_fail(BENCH_ERROR, "apply: %d", rc);
        mproc_value_free(res);
    }
    r->value[0] = (bench_now() - t0) / (double)n * 1e6;
    mproc_value_free(x);
    pool_end(p);
}

/* ------------------------------------------------------------------------
 * map over 1,000,000 ints (x + 1), automatic chunksize: seconds. The raw
 * floor sends 100 items per message.
 */

static void map_raw(bench_result *r, const void *arg)
{
    raw_pool rp;
    long n = bench_n(MAP_ITEMS, MAP_ITEMS / 10);
    double c0 = cpu_children(), s0;
    (void)arg;
    raw_start(&rp);
    s0 = cpu_self();
    r->value[0] = raw_run(&rp, n / RAW_BATCH, RAW_BATCH);
    r->value[1] = cpu_self() - s0;
    raw_stop(&rp);
    r->value[1] += cpu_children() - c0;
}

static void map_mproc(bench_result *r, const void *arg)
{
    long n = bench_n(MAP_ITEMS, MAP_ITEMS / 10);
    double t0, s0, c0 = cpu_children();
    /* The pool first, as a program does: the workers are forked before
     * the input exists, so they do not copy its pages. */
    mproc_pool *p = pool_new(WORKERS, MPROC_START_FORK);
    mproc_value *in = range(n), *out = NULL;
    int rc;
    (void)arg;
    s0 = cpu_self();
    t0 = bench_now();
    rc = mproc_pool_map(p, t_inc, in, 0, &out, NULL);
    r->value[0] = bench_now() - t0;
    r->value[1] = cpu_self() - s0;
    if (rc != 0 || mproc_list_size(out) != n)
        bench_fail(BENCH_ERROR, "map: %d", rc);
    pool_end(p);
    r->value[1] += cpu_children() - c0;
    mproc_value_free(out);
    mproc_value_free(in);
}

/* ------------------------------------------------------------------------
 * create + first result + close + join: milliseconds
 */

static void create_mproc(bench_result *r, const void *arg)
{
    mproc_start_method m = *(const mproc_start_method *)arg;
    long i, n = m == MPROC_START_FORK ? bench_n(100, 20) : bench_n(20, 5);
    double t0 = bench_now();
    for (i = 0; i < n; i++) {
        mproc_pool *p = pool_new(WORKERS, m);
        mproc_value *res = NULL;
        BENCH_MPROC(mproc_pool_apply(p, t_empty, NULL, &res, NULL));
        mproc_value_free(res);
        pool_end(p);
    }
    r->value[0] = (bench_now() - t0) / (double)n * 1e3;
}

/* ------------------------------------------------------------------------
 * A worker SIGKILLed mid-task (two workers, each in a 10 s task): how long
 * until its task is reported failed, and until the replacement has run a
 * task (the other worker is still busy, so only the replacement can).
 */

static void kill_mproc(bench_result *r, const void *arg)
{
    mproc_pool *p = pool_new(WORKERS, MPROC_START_FORK);
    mproc_future *f[WORKERS];
    mproc_process *kids[WORKERS + 1];
    mproc_pool_stats s;
    mproc_task_status st;
    mproc_value *res = NULL;
    double t_kill, t_report = 0, t_full;
    int i, nk, victim = -1;
    (void)arg;
    for (i = 0; i < WORKERS; i++)
        BENCH_MPROC(mproc_pool_apply_async(p, t_nap, NULL, NULL, NULL, &f[i]));
    do {
        BENCH_MPROC(mproc_pool_stats_get(p, &s));
        bench_sleep_ms(1);
    } while (s.running < WORKERS);
    nk = mproc_active_children(kids, WORKERS + 1);
    if (nk != WORKERS)
        bench_fail(BENCH_ERROR, "%d children", nk);
    t_kill = bench_now();
    BENCH_MPROC(mproc_process_kill(kids[0]));
    while (victim < 0) {
        for (i = 0; i < WORKERS && victim < 0; i++)
            if (mproc_future_result(f[i], NULL, &st, 0) == MPROC_TASK_FAILED)
                victim = i;
        if (victim < 0)
            (void)mproc_future_wait(f[0], 1);
    }
    t_report = bench_now();
    if (st.code != MPROC_EWORKER)
        bench_fail(BENCH_ERROR, "failed with %d", st.code);
    BENCH_MPROC(mproc_pool_apply(p, t_empty, NULL, &res, NULL));
    t_full = bench_now();
    r->value[0] = (t_report - t_kill) * 1e3;
    r->value[1] = (t_full - t_kill) * 1e3;
    for (i = 0; i < nk; i++)
        mproc_process_destroy(kids[i]);
    BENCH_MPROC(mproc_pool_terminate(p));
    for (i = 0; i < WORKERS; i++)
        mproc_future_destroy(f[i]);
    mproc_pool_destroy(p);
}

static const mproc_start_method m_fork = MPROC_START_FORK;
static const mproc_start_method m_spawn = MPROC_START_SPAWN;

static const bench_impl imap_impls[] = {
    {"raw", imap_raw, NULL},
    {"mproc", imap_mproc, NULL},
};
static const bench_impl apply_impls[] = {
    {"raw", apply_raw, NULL},
    {"mproc", apply_mproc, NULL},
};
static const bench_impl map_impls[] = {
    {"raw", map_raw, NULL},
    {"mproc", map_mproc, NULL},
};
static const bench_impl create_impls[] = {
    {"mproc-fork", create_mproc, &m_fork},
    {"mproc-spawn", create_mproc, &m_spawn},
};
static const bench_impl kill_impls[] = {
    {"mproc", kill_mproc, NULL},
};

const bench_def bench_defs_pool[] = {
    {"pool-imap-unordered",
     1,
     {"pool-imap-unordered"},
     {"tasks/s"},
     imap_impls,
     N_OF(imap_impls),
     7,
     3,
     120},
    {"pool-apply",
     1,
     {"pool-apply"},
     {"us"},
     apply_impls,
     N_OF(apply_impls),
     7,
     3,
     120},
    {"pool-map-1m",
     2,
     {"pool-map-1m", "pool-map-1m-cpu"},
     {"s", "s"},
     map_impls,
     N_OF(map_impls),
     5,
     3,
     120},
    {"pool-create",
     1,
     {"pool-create"},
     {"ms"},
     create_impls,
     N_OF(create_impls),
     5,
     3,
     120},
    {"pool-kill",
     2,
     {"pool-kill-report", "pool-kill-full"},
     {"ms", "ms"},
     kill_impls,
     N_OF(kill_impls),
     7,
     3,
     60},
};
const size_t bench_ndefs_pool = N_OF(bench_defs_pool);
