/*
 * Tests of the synchronisation area: rows L01-L14 of CONFORMANCE.md, and
 * backend tests of the area's part of src/common/backend.h (process
 * identity and liveness, wait words, the mutex and condition variable
 * under forced interleavings, cancellation).
 *
 * Children get the objects as process arguments and report through their
 * exit code (0: every check held; another number names the failed check).
 * Shared counters live in an mproc_shm. Every target is a function of this
 * executable, so spawn finds it too.
 *
 * Map: helpers; L01-L12; L13 barrier party death; L14 condition wake-ups;
 * owner identity and liveness; owner death by thread cancellation; wait
 * words; the mutex's unlock race; the RLock token of a fork child.
 */
#include "harness.h"

#include "../src/common/backend.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#if defined(__has_include)
#if __has_include(<dirent.h>)
#include <dirent.h>
#define TH_HAVE_DIRENT 1
#endif
#if __has_include(<unistd.h>)
#include <unistd.h>
/* mingw-w64 has a unistd.h without readlink and without _POSIX_VERSION. */
#if defined(_POSIX_VERSION)
#define TH_HAVE_UNISTD 1
#endif
#endif
#endif

#define ARG_GETTER(fn, type, getter)                                           \
    static type *fn(const mproc_value *args, size_t i)                         \
    {                                                                          \
        type *x = NULL;                                                        \
        if (getter(mproc_list_get(args, i), &x) != 0)                          \
            return NULL;                                                       \
        return x;                                                              \
    }
ARG_GETTER(arg_lock, mproc_lock, mproc_value_get_lock)
ARG_GETTER(arg_rlock, mproc_rlock, mproc_value_get_rlock)
ARG_GETTER(arg_sem, mproc_sem, mproc_value_get_sem)
ARG_GETTER(arg_event, mproc_event, mproc_value_get_event)
ARG_GETTER(arg_cond, mproc_cond, mproc_value_get_cond)
ARG_GETTER(arg_barrier, mproc_barrier, mproc_value_get_barrier)
ARG_GETTER(arg_shm, mproc_shm, mproc_value_get_shm)

static mproc_shm *make_shm(size_t n)
{
    mproc_shm *m = NULL;
    ASSERT_OK(mproc_shm_create(&m, n));
    ASSERT_NOT_NULL(m);
    ASSERT_NOT_NULL(mproc_shm_ptr(m));
    ASSERT_EQ(mproc_shm_size(m), n);
    return m;
}

static mproc_lock *make_lock(void)
{
    mproc_lock *l = NULL;
    ASSERT_OK(mproc_lock_create(&l));
    ASSERT_NOT_NULL(l);
    return l;
}

static mproc_sem *make_sem(unsigned initial, unsigned max)
{
    mproc_sem *s = NULL;
    ASSERT_OK(mproc_sem_create(&s, initial, max));
    ASSERT_NOT_NULL(s);
    return s;
}

static mproc_event *make_event(void)
{
    mproc_event *e = NULL;
    ASSERT_OK(mproc_event_create(&e));
    ASSERT_NOT_NULL(e);
    return e;
}

/* Waits (polling) until the int64 at p reaches `want`, at most ms. */
static bool wait_count(volatile int64_t *p, int64_t want, int ms)
{
    int64_t end = th_now_ms() + ms;
    while (*p < want) {
        if (th_now_ms() > end)
            return false;
        th_sleep_ms(2);
    }
    return true;
}

/* ---------------------------------------------------------------------------
 * L01: 4 processes x 10,000 increments under a lock
 */

#define L01_PROCS 4
#define L01_ITERS 10000

static int t_l01(const mproc_value *args)
{
    mproc_lock *l = arg_lock(args, 0);
    mproc_shm *m = arg_shm(args, 1);
    volatile int64_t *counter;
    CHILD_CHECK(l != NULL && m != NULL, 2);
    counter = (volatile int64_t *)mproc_shm_ptr(m);
    for (int i = 0; i < L01_ITERS; i++) {
        int64_t v;
        CHILD_CHECK(mproc_lock_acquire(l, MPROC_FOREVER) == 0, 3);
        /* A read, a pause and a write: without the lock, increments of
         * the other processes would be lost in between. */
        v = *counter;
        if (i % 1000 == 0)
            th_sleep_ms(0);
        *counter = v + 1;
        CHILD_CHECK(mproc_lock_release(l) == 0, 4);
    }
    return 0;
}

TEST(L01_counter_under_lock)
{
    mproc_lock *l = make_lock();
    mproc_shm *m = make_shm(sizeof(int64_t));
    mproc_process *p[L01_PROCS];
    volatile int64_t *counter = (volatile int64_t *)mproc_shm_ptr(m);
    ASSERT_EQ(*counter, 0); /* zero-filled */
    for (int i = 0; i < L01_PROCS; i++)
        p[i] = th_start(t_l01,
                        MPROC_LIST(mproc_value_lock(l), mproc_value_shm(m)));
    for (int i = 0; i < L01_PROCS; i++)
        ASSERT_EQ(th_join_code(p[i], 30000), 0);
    ASSERT_EQ(*counter, (int64_t)L01_PROCS * L01_ITERS);
    mproc_lock_destroy(l);
    mproc_shm_destroy(m);
    return 0;
}

/* ---------------------------------------------------------------------------
 * L02: the seed's example, 10 processes print under one lock
 *
 * Each child prints "hello world i" to stdout, and also appends the same
 * line to a shared buffer one character at a time, pausing between
 * characters: without the lock the lines would interleave there.
 */

#define L02_PROCS 10
#define L02_BUF 4096

typedef struct l02_buf {
    int64_t len;
    char text[L02_BUF];
} l02_buf;

static int t_l02(const mproc_value *args)
{
    mproc_lock *l = arg_lock(args, 0);
    mproc_shm *m = arg_shm(args, 1);
    int64_t i = th_arg_int(args, 2);
    l02_buf *b;
    char line[64];
    int n;
    CHILD_CHECK(l != NULL && m != NULL && i >= 0, 2);
    b = (l02_buf *)mproc_shm_ptr(m);
    n = snprintf(line, sizeof line, "hello world %d\n", (int)i);
    CHILD_CHECK(mproc_lock_acquire(l, MPROC_FOREVER) == 0, 3);
    printf("%s", line);
    fflush(stdout);
    for (int k = 0; k < n; k++) {
        CHILD_CHECK(b->len < L02_BUF, 4);
        b->text[b->len] = line[k];
        /* Written one by one, with a pause: a preempted writer would let
         * another one in here if the lock did not hold. */
        __atomic_store_n(&b->len, b->len + 1, __ATOMIC_RELEASE);
        if (k % 4 == 0)
            th_sleep_ms(1);
    }
    CHILD_CHECK(mproc_lock_release(l) == 0, 5);
    return 0;
}

TEST(L02_seed_lock_print)
{
    mproc_lock *l = make_lock();
    mproc_shm *m = make_shm(sizeof(l02_buf));
    mproc_process *p[L02_PROCS];
    l02_buf *b = (l02_buf *)mproc_shm_ptr(m);
    bool seen[L02_PROCS] = {false};
    char *line;
    int lines = 0;
    for (int i = 0; i < L02_PROCS; i++)
        p[i] = th_start(t_l02, MPROC_LIST(mproc_value_lock(l),
                                          mproc_value_shm(m), mproc_int(i)));
    for (int i = 0; i < L02_PROCS; i++)
        ASSERT_EQ(th_join_code(p[i], 30000), 0);
    ASSERT_LT(b->len, L02_BUF);
    b->text[b->len] = '\0';
    line = b->text;
    while (*line != '\0') {
        char *nl = strchr(line, '\n');
        int idx = -1;
        char tail = 'x';
        ASSERT_NOT_NULL(nl);
        *nl = '\0';
        /* Exactly "hello world N", nothing mixed in. */
        /* The count of conversions is the check: exactly one number,
         * nothing after it (cert-err34-c wants strtol). */
        ASSERT_EQ(sscanf(line, "hello world %d%c", &idx, &tail), // NOLINT
                  1);
        ASSERT(idx >= 0 && idx < L02_PROCS);
        ASSERT(!seen[idx]);
        seen[idx] = true;
        lines++;
        line = nl + 1;
    }
    ASSERT_EQ(lines, L02_PROCS);
    mproc_lock_destroy(l);
    mproc_shm_destroy(m);
    return 0;
}

/* ---------------------------------------------------------------------------
 * L03: timeouts and the non-blocking acquire
 */

/* Holds the lock until `release` is set. */
static int t_hold_lock(const mproc_value *args)
{
    mproc_lock *l = arg_lock(args, 0);
    mproc_event *held = arg_event(args, 1);
    mproc_event *release = arg_event(args, 2);
    CHILD_CHECK(l != NULL && held != NULL && release != NULL, 2);
    CHILD_CHECK(mproc_lock_acquire(l, MPROC_FOREVER) == 0, 3);
    CHILD_CHECK(mproc_event_set(held) == 0, 4);
    CHILD_CHECK(mproc_event_wait(release, 30000) == 0, 5);
    CHILD_CHECK(mproc_lock_release(l) == 0, 6);
    return 0;
}

static void check_timeout_in_time(mproc_lock *l, int ms)
{
    int64_t t0 = th_now_ms();
    int64_t dt;
    ASSERT_ERR(mproc_lock_acquire(l, ms), MPROC_ETIMEDOUT);
    dt = th_now_ms() - t0;
    ASSERT_GE(dt, ms - 16); /* clock granularity (a 15.6 ms tick) */
    ASSERT_LE(dt, ms + th_ms(150));
}

TEST(L03_timeout_and_nonblocking)
{
    mproc_lock *l = make_lock();
    mproc_event *held = make_event();
    mproc_event *release = make_event();
    mproc_process *p;
    int64_t t0;
    /* Bad timeouts, whatever the lock's state. */
    ASSERT_ERR(mproc_lock_acquire(l, -2), MPROC_EINVAL);
    ASSERT_ERR(mproc_lock_acquire(l, INT_MIN), MPROC_EINVAL);
    ASSERT_ERR(mproc_lock_acquire(NULL, 0), MPROC_EINVAL);
    ASSERT_ERR(mproc_lock_release(NULL), MPROC_EINVAL);
    ASSERT_ERR(mproc_lock_create(NULL), MPROC_EINVAL);
    ASSERT_NULL(mproc_lock_destroy(NULL));

    /* Held by another process. */
    p = th_start(t_hold_lock,
                 MPROC_LIST(mproc_value_lock(l), mproc_value_event(held),
                            mproc_value_event(release)));
    ASSERT_OK(mproc_event_wait(held, th_ms(10000)));
    t0 = th_now_ms();
    ASSERT_ERR(mproc_lock_acquire(l, 0), MPROC_EBUSY);
    ASSERT_LE(th_now_ms() - t0, th_ms(50));
    check_timeout_in_time(l, 200);
    ASSERT_OK(mproc_event_set(release));
    /* Released by the child: a generous timeout now succeeds. */
    ASSERT_OK(mproc_lock_acquire(l, th_ms(10000)));
    ASSERT_EQ(th_join_code(p, 30000), 0);

    /* Held by this thread: a Lock is not recursive, the owner waits like
     * anyone else (Python's Lock.acquire(timeout=...) returns False). */
    ASSERT_ERR(mproc_lock_acquire(l, 0), MPROC_EBUSY);
    check_timeout_in_time(l, 100);
    ASSERT_OK(mproc_lock_release(l));
    ASSERT_OK(mproc_lock_acquire(l, 0));
    ASSERT_OK(mproc_lock_release(l));
    mproc_lock_destroy(l);
    mproc_event_destroy(held);
    mproc_event_destroy(release);
    return 0;
}

/* The largest timeout is a valid one: it must not overflow a deadline
 * computation into the past (an immediate MPROC_ETIMEDOUT) or an error. */
TEST(L03_largest_timeouts)
{
    mproc_lock *l = make_lock();
    mproc_rlock *r = NULL;
    mproc_sem *s = make_sem(1, 0);
    mproc_event *e = make_event();
    mproc_cond *c = NULL;
    mproc_barrier *b = NULL;
    ASSERT_OK(mproc_rlock_create(&r));
    ASSERT_OK(mproc_cond_create(&c));
    ASSERT_OK(mproc_barrier_create(&b, 1));
    ASSERT_OK(mproc_lock_acquire(l, INT_MAX));
    ASSERT_OK(mproc_lock_release(l));
    ASSERT_OK(mproc_rlock_acquire(r, INT_MAX));
    ASSERT_OK(mproc_rlock_acquire(r, INT_MAX));
    ASSERT_OK(mproc_rlock_release(r));
    ASSERT_OK(mproc_rlock_release(r));
    ASSERT_OK(mproc_sem_acquire(s, INT_MAX));
    ASSERT_OK(mproc_event_set(e));
    ASSERT_OK(mproc_event_wait(e, INT_MAX));
    ASSERT_OK(mproc_cond_acquire(c, INT_MAX));
    ASSERT_OK(mproc_cond_release(c));
    ASSERT_EQ(mproc_barrier_wait(b, INT_MAX), 0);
    /* And every timeout below MPROC_FOREVER is refused before anything
     * happens. */
    ASSERT_ERR(mproc_lock_acquire(l, INT_MIN), MPROC_EINVAL);
    ASSERT_ERR(mproc_rlock_acquire(r, -2), MPROC_EINVAL);
    ASSERT_ERR(mproc_sem_acquire(s, INT_MIN), MPROC_EINVAL);
    ASSERT_ERR(mproc_event_wait(e, INT_MIN), MPROC_EINVAL);
    ASSERT_ERR(mproc_cond_acquire(c, INT_MIN), MPROC_EINVAL);
    ASSERT_ERR(mproc_barrier_wait(b, INT_MIN), MPROC_EINVAL);
    ASSERT_EQ(mproc_sem_value(s), 0);
    ASSERT_OK(mproc_lock_acquire(l, 0));
    ASSERT_OK(mproc_lock_release(l));
    mproc_lock_destroy(l);
    mproc_rlock_destroy(r);
    mproc_sem_destroy(s);
    mproc_event_destroy(e);
    mproc_cond_destroy(c);
    mproc_barrier_destroy(b);
    return 0;
}

/* ---------------------------------------------------------------------------
 * L04: release of a lock not held
 */

static int t_release_not_mine(const mproc_value *args)
{
    mproc_lock *l = arg_lock(args, 0);
    mproc_rlock *r = arg_rlock(args, 1);
    CHILD_CHECK(l != NULL && r != NULL, 2);
    /* The parent holds both. */
    CHILD_CHECK(mproc_lock_release(l) == MPROC_ENOTOWNER, 3);
    CHILD_CHECK(mproc_rlock_release(r) == MPROC_ENOTOWNER, 4);
    CHILD_CHECK(mproc_lock_acquire(l, 0) == MPROC_EBUSY, 5);
    return 0;
}

TEST(L04_release_not_held)
{
    mproc_lock *l = make_lock();
    mproc_rlock *r = NULL;
    mproc_process *p;
    ASSERT_OK(mproc_rlock_create(&r));
    ASSERT_ERR(mproc_lock_release(l), MPROC_ENOTOWNER);
    ASSERT_ERR(mproc_rlock_release(r), MPROC_ENOTOWNER);
    ASSERT_OK(mproc_lock_acquire(l, 0));
    ASSERT_OK(mproc_rlock_acquire(r, 0));
    p = th_start(t_release_not_mine,
                 MPROC_LIST(mproc_value_lock(l), mproc_value_rlock(r)));
    ASSERT_EQ(th_join_code(p, 30000), 0);
    /* Still ours after the child's attempts. */
    ASSERT_OK(mproc_lock_release(l));
    ASSERT_OK(mproc_rlock_release(r));
    ASSERT_ERR(mproc_lock_release(l), MPROC_ENOTOWNER);
    ASSERT_ERR(mproc_rlock_release(r), MPROC_ENOTOWNER);
    mproc_lock_destroy(l);
    mproc_rlock_destroy(r);
    return 0;
}

typedef struct l04_objs {
    mproc_lock *l;
    mproc_rlock *r;
    mproc_cond *c;
    int failed; /* the first check that failed in the thread, or 0 */
} l04_objs;

static void *l04_thread(void *arg)
{
    l04_objs *o = (l04_objs *)arg;
    /* The main thread holds all three. */
    if (mproc_lock_release(o->l) != MPROC_ENOTOWNER)
        o->failed = 1;
    else if (mproc_rlock_release(o->r) != MPROC_ENOTOWNER)
        o->failed = 2;
    else if (mproc_cond_release(o->c) != MPROC_ENOTOWNER)
        o->failed = 3;
    else if (mproc_cond_notify(o->c, 1) != MPROC_ENOTOWNER)
        o->failed = 4;
    else if (mproc_cond_wait(o->c, 10) != MPROC_ENOTOWNER)
        o->failed = 5;
    else if (mproc_lock_acquire(o->l, 0) != MPROC_EBUSY)
        o->failed = 6;
    else if (mproc_rlock_acquire(o->r, 0) != MPROC_EBUSY)
        o->failed = 7;
    else if (mproc_cond_acquire(o->c, 20) != MPROC_ETIMEDOUT)
        o->failed = 8;
    return NULL;
}

TEST(L04_release_by_other_thread)
{
    l04_objs o = {NULL, NULL, NULL, 0};
    pthread_t t;
    o.l = make_lock();
    ASSERT_OK(mproc_rlock_create(&o.r));
    ASSERT_OK(mproc_cond_create(&o.c));
    ASSERT_OK(mproc_lock_acquire(o.l, 0));
    ASSERT_OK(mproc_rlock_acquire(o.r, 0));
    ASSERT_OK(mproc_cond_acquire(o.c, 0));
    ASSERT_EQ(pthread_create(&t, NULL, l04_thread, &o), 0);
    ASSERT_EQ(pthread_join(t, NULL), 0);
    ASSERT_EQ(o.failed, 0);
    ASSERT_OK(mproc_lock_release(o.l));
    ASSERT_OK(mproc_rlock_release(o.r));
    ASSERT_OK(mproc_cond_release(o.c));
    mproc_lock_destroy(o.l);
    mproc_rlock_destroy(o.r);
    mproc_cond_destroy(o.c);
    return 0;
}

/* ---------------------------------------------------------------------------
 * L05: the owner dies holding the lock
 */

/* Acquires and returns (the process exits holding the locks), or with
 * arg 2 == 1 signals and sleeps until killed. */
static int t_die_holding(const mproc_value *args)
{
    mproc_lock *l = arg_lock(args, 0);
    mproc_rlock *r = arg_rlock(args, 1);
    mproc_event *held = arg_event(args, 2);
    int64_t wait_kill = th_arg_int(args, 3);
    CHILD_CHECK(l != NULL && r != NULL && held != NULL, 2);
    CHILD_CHECK(mproc_lock_acquire(l, MPROC_FOREVER) == 0, 3);
    CHILD_CHECK(mproc_rlock_acquire(r, MPROC_FOREVER) == 0, 4);
    CHILD_CHECK(mproc_rlock_acquire(r, MPROC_FOREVER) == 0, 5);
    CHILD_CHECK(mproc_event_set(held) == 0, 6);
    if (wait_kill == 1) {
        for (int i = 0; i < 3000; i++)
            th_sleep_ms(10);
        return 7;
    }
    return 0;
}

static void check_owner_dead(mproc_lock *l, mproc_rlock *r)
{
    int64_t t0 = th_now_ms();
    ASSERT_ERR(mproc_lock_acquire(l, th_ms(5000)), MPROC_EOWNERDEAD);
    ASSERT_LE(th_now_ms() - t0, th_ms(100));
    t0 = th_now_ms();
    ASSERT_ERR(mproc_rlock_acquire(r, th_ms(5000)), MPROC_EOWNERDEAD);
    ASSERT_LE(th_now_ms() - t0, th_ms(100));
    /* Held now, and usable as before: the recursion restarts at 1. */
    ASSERT_ERR(mproc_lock_acquire(l, 0), MPROC_EBUSY);
    ASSERT_OK(mproc_lock_release(l));
    ASSERT_OK(mproc_rlock_release(r));
    ASSERT_ERR(mproc_rlock_release(r), MPROC_ENOTOWNER);
    ASSERT_OK(mproc_lock_acquire(l, 0));
    ASSERT_OK(mproc_lock_release(l));
    ASSERT_OK(mproc_rlock_acquire(r, 0));
    ASSERT_OK(mproc_rlock_release(r));
}

TEST(L05_owner_dies_exit)
{
    mproc_lock *l = make_lock();
    mproc_rlock *r = NULL;
    mproc_event *held = make_event();
    mproc_process *p;
    ASSERT_OK(mproc_rlock_create(&r));
    p = th_start(t_die_holding,
                 MPROC_LIST(mproc_value_lock(l), mproc_value_rlock(r),
                            mproc_value_event(held), mproc_int(0)));
    ASSERT_EQ(th_join_code(p, 30000), 0);
    check_owner_dead(l, r);
    mproc_lock_destroy(l);
    mproc_rlock_destroy(r);
    mproc_event_destroy(held);
    return 0;
}

/* A child takes l and r and is killed holding them; then the owner's
 * death must be found at once (check_owner_dead). */
static void kill_owner_and_check(mproc_lock *l, mproc_rlock *r, int ms)
{
    mproc_event *held = make_event();
    mproc_process *p;
    int code = 0;
    ASSERT_OK(mproc_process_create(
        &p, t_die_holding,
        MPROC_LIST(mproc_value_lock(l), mproc_value_rlock(r),
                   mproc_value_event(held), mproc_int(1))));
    ASSERT_OK(mproc_process_start(p));
    ASSERT_OK(mproc_event_wait(held, th_ms(ms)));
    ASSERT_OK(mproc_process_kill(p));
    ASSERT_OK(mproc_process_join(p, th_ms(ms)));
    ASSERT_OK(mproc_process_exitcode(p, &code));
    ASSERT_EQ(code, -9);
    mproc_process_destroy(p);
    mproc_event_destroy(held);
    check_owner_dead(l, r);
}

TEST(L05_owner_dies_killed)
{
    mproc_lock *l = make_lock();
    mproc_rlock *r = NULL;
    ASSERT_OK(mproc_rlock_create(&r));
    kill_owner_and_check(l, r, 10000);
    mproc_lock_destroy(l);
    mproc_rlock_destroy(r);
    return 0;
}

static void *l05_thread(void *arg)
{
    mproc_lock *l = (mproc_lock *)arg;
    /* Ends holding it. */
    if (mproc_lock_acquire(l, 0) != 0)
        return arg;
    return NULL;
}

/* A thread that ends holding a lock counts as a dead owner too. */
TEST(L05_owner_thread_exits)
{
    mproc_lock *l = make_lock();
    pthread_t t;
    void *res = &t;
    int64_t t0;
    ASSERT_EQ(pthread_create(&t, NULL, l05_thread, l), 0);
    ASSERT_EQ(pthread_join(t, &res), 0);
    ASSERT_NULL(res);
    t0 = th_now_ms();
    ASSERT_ERR(mproc_lock_acquire(l, th_ms(5000)), MPROC_EOWNERDEAD);
    ASSERT_LE(th_now_ms() - t0, th_ms(100));
    ASSERT_OK(mproc_lock_release(l));
    ASSERT_OK(mproc_lock_acquire(l, 0));
    ASSERT_OK(mproc_lock_release(l));
    mproc_lock_destroy(l);
    return 0;
}

/* Blocks on the lock the other child holds; records when it got it. */
static int t_wait_for_dead(const mproc_value *args)
{
    mproc_lock *l = arg_lock(args, 0);
    mproc_shm *m = arg_shm(args, 1);
    mproc_sem *waiting = arg_sem(args, 2);
    volatile int64_t *when;
    int rc;
    CHILD_CHECK(l != NULL && m != NULL && waiting != NULL, 2);
    when = (volatile int64_t *)mproc_shm_ptr(m);
    CHILD_CHECK(mproc_sem_release(waiting) == 0, 3);
    rc = mproc_lock_acquire(l, 30000);
    *when = th_now_ms();
    CHILD_CHECK(rc == MPROC_EOWNERDEAD, 4);
    CHILD_CHECK(mproc_lock_release(l) == 0, 5);
    return 0;
}

/* A CPU burner for L05_owner_dies_under_load: spins until stop is set,
 * for 20 s at most (a failed test that never sets it burns no longer). */
static int t_burn(const mproc_value *args)
{
    mproc_event *stop = arg_event(args, 0);
    int64_t end = th_now_ms() + 20000;
    CHILD_CHECK(stop != NULL, 2);
    while (mproc_event_is_set(stop) == 0 && th_now_ms() < end) {
        for (volatile int i = 0; i < 100000; i = i + 1) {
        }
    }
    return 0;
}

/* Owner death is found as fast on a machine whose CPUs are all busy: a
 * waiter's spin before it sleeps is bounded in time, not only in yields
 * (64 yields, each giving the CPU away for a time slice, once took
 * 200 ms on the word mutex of macOS and the forced fallbacks). */
TEST(L05_owner_dies_under_load)
{
    enum { MAX_BURNERS = 16 };
    mproc_lock *l = make_lock();
    mproc_rlock *r = NULL;
    mproc_event *stop = make_event();
    mproc_process *burner[MAX_BURNERS];
    int n = 3 * mproc_cpu_count();
    if (n > MAX_BURNERS)
        n = MAX_BURNERS;
    if (n < 4)
        n = 4;
    ASSERT_OK(mproc_rlock_create(&r));
    for (int i = 0; i < n; i++) {
        ASSERT_OK(mproc_process_create(&burner[i], t_burn,
                                       MPROC_LIST(mproc_value_event(stop))));
        /* Daemons: a failed check below exits the test without joining. */
        ASSERT_OK(mproc_process_set_daemon(burner[i], true));
        ASSERT_OK(mproc_process_start(burner[i]));
    }
    kill_owner_and_check(l, r, 20000);
    ASSERT_OK(mproc_event_set(stop));
    for (int i = 0; i < n; i++) {
        ASSERT_EQ(th_join_code(burner[i], 30000), 0);
    }
    mproc_lock_destroy(l);
    mproc_rlock_destroy(r);
    mproc_event_destroy(stop);
    return 0;
}

TEST(L05_owner_dies_while_waiting)
{
    mproc_lock *l = make_lock();
    mproc_rlock *r = NULL;
    mproc_event *held = make_event();
    mproc_sem *waiting = make_sem(0, 0);
    mproc_shm *m = make_shm(sizeof(int64_t));
    volatile int64_t *when = (volatile int64_t *)mproc_shm_ptr(m);
    mproc_process *holder;
    mproc_process *waiter;
    int64_t killed_at;
    ASSERT_OK(mproc_rlock_create(&r));
    holder = th_start(t_die_holding,
                      MPROC_LIST(mproc_value_lock(l), mproc_value_rlock(r),
                                 mproc_value_event(held), mproc_int(1)));
    ASSERT_OK(mproc_event_wait(held, th_ms(10000)));
    waiter = th_start(t_wait_for_dead,
                      MPROC_LIST(mproc_value_lock(l), mproc_value_shm(m),
                                 mproc_value_sem(waiting)));
    ASSERT_OK(mproc_sem_acquire(waiting, th_ms(10000)));
    th_sleep_ms(th_ms(50)); /* in the acquire by now */
    ASSERT_EQ(*when, 0);
    killed_at = th_now_ms();
    ASSERT_OK(mproc_process_kill(holder));
    ASSERT_EQ(th_join_code(waiter, 30000), 0);
    /* The blocked acquirer had it within 100 ms of the kill. */
    ASSERT_GE(*when, killed_at);
    ASSERT_LE(*when - killed_at, th_ms(100));
    ASSERT_EQ(th_join_code(holder, 30000), -9);
    mproc_lock_destroy(l);
    mproc_rlock_destroy(r);
    mproc_event_destroy(held);
    mproc_sem_destroy(waiting);
    mproc_shm_destroy(m);
    return 0;
}

/* ---------------------------------------------------------------------------
 * L06: RLock
 */

static int t_rlock_other(const mproc_value *args)
{
    mproc_rlock *r = arg_rlock(args, 0);
    mproc_event *go = arg_event(args, 1);
    mproc_event *checked = arg_event(args, 2);
    CHILD_CHECK(r != NULL && go != NULL && checked != NULL, 2);
    /* The parent holds it once more (it acquired three times and released
     * twice). */
    CHILD_CHECK(mproc_rlock_acquire(r, 0) == MPROC_EBUSY, 3);
    CHILD_CHECK(mproc_rlock_acquire(r, 50) == MPROC_ETIMEDOUT, 4);
    CHILD_CHECK(mproc_rlock_release(r) == MPROC_ENOTOWNER, 5);
    CHILD_CHECK(mproc_event_set(checked) == 0, 12);
    /* Once the parent released all three, it is ours, recursively too. */
    CHILD_CHECK(mproc_event_wait(go, 30000) == 0, 6);
    CHILD_CHECK(mproc_rlock_acquire(r, 30000) == 0, 7);
    CHILD_CHECK(mproc_rlock_acquire(r, 0) == 0, 8);
    CHILD_CHECK(mproc_rlock_release(r) == 0, 9);
    CHILD_CHECK(mproc_rlock_release(r) == 0, 10);
    CHILD_CHECK(mproc_rlock_release(r) == MPROC_ENOTOWNER, 11);
    return 0;
}

TEST(L06_rlock_counts)
{
    mproc_rlock *r = NULL;
    mproc_event *go = make_event();
    mproc_event *checked = make_event();
    mproc_process *p;
    ASSERT_ERR(mproc_rlock_create(NULL), MPROC_EINVAL);
    ASSERT_ERR(mproc_rlock_acquire(NULL, 0), MPROC_EINVAL);
    ASSERT_ERR(mproc_rlock_release(NULL), MPROC_EINVAL);
    ASSERT_NULL(mproc_rlock_destroy(NULL));
    ASSERT_OK(mproc_rlock_create(&r));
    ASSERT_ERR(mproc_rlock_acquire(r, -5), MPROC_EINVAL);
    for (int i = 0; i < 3; i++)
        ASSERT_OK(mproc_rlock_acquire(r, 0));
    /* Two releases leave it held. */
    ASSERT_OK(mproc_rlock_release(r));
    ASSERT_OK(mproc_rlock_release(r));
    p = th_start(t_rlock_other,
                 MPROC_LIST(mproc_value_rlock(r), mproc_value_event(go),
                            mproc_value_event(checked)));
    /* The child's checks run while it is held. */
    ASSERT_OK(mproc_event_wait(checked, th_ms(20000)));
    ASSERT_OK(mproc_rlock_release(r));
    ASSERT_ERR(mproc_rlock_release(r), MPROC_ENOTOWNER);
    ASSERT_OK(mproc_event_set(go));
    ASSERT_EQ(th_join_code(p, 30000), 0);
    mproc_rlock_destroy(r);
    mproc_event_destroy(go);
    mproc_event_destroy(checked);
    return 0;
}

/* ---------------------------------------------------------------------------
 * L07: Semaphore and BoundedSemaphore
 */

static int t_sem_child(const mproc_value *args)
{
    mproc_sem *s = arg_sem(args, 0);
    mproc_sem *t = arg_sem(args, 1);
    mproc_sem *b = arg_sem(args, 2);
    CHILD_CHECK(s != NULL && t != NULL && b != NULL, 2);
    /* The parent left t at 2 and b (max 2) at 1, and waits on s (0). */
    CHILD_CHECK(mproc_sem_value(t) == 2, 3);
    CHILD_CHECK(mproc_sem_acquire(t, 0) == 0, 4);
    CHILD_CHECK(mproc_sem_acquire(t, 0) == 0, 5);
    CHILD_CHECK(mproc_sem_acquire(t, 0) == MPROC_EBUSY, 6);
    CHILD_CHECK(mproc_sem_value(t) == 0, 7);
    CHILD_CHECK(mproc_sem_release(b) == 0, 8);
    CHILD_CHECK(mproc_sem_release(b) == MPROC_ERANGE, 9);
    CHILD_CHECK(mproc_sem_value(b) == 2, 10);
    /* Wake the parent blocked on s. */
    th_sleep_ms(50);
    CHILD_CHECK(mproc_sem_release(s) == 0, 11);
    return 0;
}

TEST(L07_semaphore)
{
    mproc_sem *s = NULL;
    mproc_sem *t = NULL;
    mproc_sem *b = NULL;
    mproc_process *p;
    int64_t t0;
    ASSERT_ERR(mproc_sem_create(NULL, 0, 0), MPROC_EINVAL);
    ASSERT_ERR(mproc_sem_create(&s, 3, 2), MPROC_EINVAL); /* initial > max */
    ASSERT_NULL(s);
    ASSERT_ERR(mproc_sem_create(&s, UINT_MAX, 0), MPROC_EINVAL);
    ASSERT_ERR(mproc_sem_acquire(NULL, 0), MPROC_EINVAL);
    ASSERT_ERR(mproc_sem_release(NULL), MPROC_EINVAL);
    ASSERT_ERR(mproc_sem_value(NULL), MPROC_EINVAL);
    ASSERT_NULL(mproc_sem_destroy(NULL));

    s = make_sem(0, 0);
    ASSERT_EQ(mproc_sem_value(s), 0);
    ASSERT_ERR(mproc_sem_acquire(s, -2), MPROC_EINVAL);
    ASSERT_ERR(mproc_sem_acquire(s, 0), MPROC_EBUSY);
    t0 = th_now_ms();
    ASSERT_ERR(mproc_sem_acquire(s, 100), MPROC_ETIMEDOUT);
    ASSERT_GE(th_now_ms() - t0, 100 - 16);
    ASSERT_LE(th_now_ms() - t0, 100 + th_ms(150));
    for (int i = 0; i < 5; i++)
        ASSERT_OK(mproc_sem_release(s));
    ASSERT_EQ(mproc_sem_value(s), 5);
    for (int i = 0; i < 3; i++)
        ASSERT_OK(mproc_sem_acquire(s, 0));
    ASSERT_EQ(mproc_sem_value(s), 2);

    b = make_sem(1, 2);
    ASSERT_EQ(mproc_sem_value(b), 1);
    t = s;
    s = make_sem(0, 0);
    p = th_start(t_sem_child, MPROC_LIST(mproc_value_sem(s), mproc_value_sem(t),
                                         mproc_value_sem(b)));
    /* Blocks until the child releases s. */
    ASSERT_OK(mproc_sem_acquire(s, th_ms(20000)));
    ASSERT_EQ(th_join_code(p, 30000), 0);
    ASSERT_EQ(mproc_sem_value(s), 0);
    ASSERT_EQ(mproc_sem_value(t), 0);
    mproc_sem_destroy(t);
    ASSERT_EQ(mproc_sem_value(b), 2);
    ASSERT_ERR(mproc_sem_release(b), MPROC_ERANGE);
    ASSERT_OK(mproc_sem_acquire(b, 0));
    ASSERT_OK(mproc_sem_release(b));
    ASSERT_EQ(mproc_sem_value(b), 2);
    mproc_sem_destroy(s);
    mproc_sem_destroy(b);
    return 0;
}

/* Releases b once when `go` is set: exit 0 on success, 1 on MPROC_ERANGE. */
static int t_racing_release(const mproc_value *args)
{
    mproc_sem *b = arg_sem(args, 0);
    mproc_event *go = arg_event(args, 1);
    int rc;
    CHILD_CHECK(b != NULL && go != NULL, 2);
    CHILD_CHECK(mproc_event_wait(go, 30000) == 0, 3);
    rc = mproc_sem_release(b);
    return rc == 0 ? 0 : rc == MPROC_ERANGE ? 1 : 4;
}

/* Two releases racing at max - 1: exactly one fits, every time. */
TEST(L07_bounded_release_race)
{
    for (int round = 0; round < 10; round++) {
        mproc_sem *b = make_sem(0, 1);
        mproc_event *go = make_event();
        mproc_process *p[2];
        int ok = 0;
        for (int i = 0; i < 2; i++)
            p[i] =
                th_start(t_racing_release,
                         MPROC_LIST(mproc_value_sem(b), mproc_value_event(go)));
        th_sleep_ms(th_ms(20));
        ASSERT_OK(mproc_event_set(go));
        for (int i = 0; i < 2; i++) {
            int code = th_join_code(p[i], 30000);
            ASSERT(code == 0 || code == 1);
            ok += code == 0;
        }
        ASSERT_EQ(ok, 1);
        ASSERT_EQ(mproc_sem_value(b), 1);
        mproc_sem_destroy(b);
        mproc_event_destroy(go);
    }
    return 0;
}

/* ---------------------------------------------------------------------------
 * L08: Event
 */

#define L08_WAITERS 3

static int t_event_waiter(const mproc_value *args)
{
    mproc_event *e = arg_event(args, 0);
    mproc_sem *ready = arg_sem(args, 1);
    CHILD_CHECK(e != NULL && ready != NULL, 2);
    CHILD_CHECK(mproc_event_is_set(e) == 0, 3);
    CHILD_CHECK(mproc_sem_release(ready) == 0, 4);
    CHILD_CHECK(mproc_event_wait(e, 30000) == 0, 5);
    CHILD_CHECK(mproc_event_is_set(e) == 1, 6);
    return 0;
}

TEST(L08_event)
{
    mproc_event *e = make_event();
    mproc_sem *ready = make_sem(0, 0);
    mproc_process *p[L08_WAITERS];
    int64_t t0;
    ASSERT_ERR(mproc_event_create(NULL), MPROC_EINVAL);
    ASSERT_ERR(mproc_event_set(NULL), MPROC_EINVAL);
    ASSERT_ERR(mproc_event_clear(NULL), MPROC_EINVAL);
    ASSERT_ERR(mproc_event_is_set(NULL), MPROC_EINVAL);
    ASSERT_ERR(mproc_event_wait(NULL, 0), MPROC_EINVAL);
    ASSERT_ERR(mproc_event_wait(e, -3), MPROC_EINVAL);
    ASSERT_NULL(mproc_event_destroy(NULL));

    ASSERT_EQ(mproc_event_is_set(e), 0);
    ASSERT_ERR(mproc_event_wait(e, 0), MPROC_ETIMEDOUT);
    t0 = th_now_ms();
    ASSERT_ERR(mproc_event_wait(e, 100), MPROC_ETIMEDOUT);
    ASSERT_GE(th_now_ms() - t0, 100 - 16);
    ASSERT_LE(th_now_ms() - t0, 100 + th_ms(150));

    for (int i = 0; i < L08_WAITERS; i++)
        p[i] = th_start(t_event_waiter, MPROC_LIST(mproc_value_event(e),
                                                   mproc_value_sem(ready)));
    for (int i = 0; i < L08_WAITERS; i++)
        ASSERT_OK(mproc_sem_acquire(ready, th_ms(20000)));
    th_sleep_ms(th_ms(50)); /* let them block in wait */
    ASSERT_OK(mproc_event_set(e));
    /* One set wakes every waiter. */
    for (int i = 0; i < L08_WAITERS; i++)
        ASSERT_EQ(th_join_code(p[i], 30000), 0);
    ASSERT_EQ(mproc_event_is_set(e), 1);
    ASSERT_OK(mproc_event_wait(e, 0));
    ASSERT_OK(mproc_event_set(e)); /* setting twice is fine */
    ASSERT_OK(mproc_event_clear(e));
    ASSERT_EQ(mproc_event_is_set(e), 0);
    ASSERT_ERR(mproc_event_wait(e, 20), MPROC_ETIMEDOUT);
    mproc_event_destroy(e);
    mproc_sem_destroy(ready);
    return 0;
}

/* ---------------------------------------------------------------------------
 * L09: Condition
 */

#define L09_WAITERS 3

typedef struct l09_state {
    int64_t waiting;
    int64_t woken;
} l09_state;

static int t_cond_waiter(const mproc_value *args)
{
    mproc_cond *c = arg_cond(args, 0);
    mproc_shm *m = arg_shm(args, 1);
    volatile l09_state *st;
    int rc;
    CHILD_CHECK(c != NULL && m != NULL, 2);
    st = (volatile l09_state *)mproc_shm_ptr(m);
    CHILD_CHECK(mproc_cond_wait(c, 10) == MPROC_ENOTOWNER, 3);
    CHILD_CHECK(mproc_cond_acquire(c, 30000) == 0, 4);
    st->waiting++;
    /* Spurious wake-ups are allowed: wait until notified for real, i.e.
     * until the parent's count of notifications covers us. */
    rc = mproc_cond_wait(c, 30000);
    CHILD_CHECK(rc == 0, 5);
    st->woken++;
    CHILD_CHECK(mproc_cond_release(c) == 0, 6);
    return 0;
}

TEST(L09_condition)
{
    mproc_cond *c = NULL;
    mproc_shm *m = make_shm(sizeof(l09_state));
    volatile l09_state *st = (volatile l09_state *)mproc_shm_ptr(m);
    mproc_process *p[L09_WAITERS];
    int64_t t0;
    ASSERT_ERR(mproc_cond_create(NULL), MPROC_EINVAL);
    ASSERT_ERR(mproc_cond_acquire(NULL, 0), MPROC_EINVAL);
    ASSERT_ERR(mproc_cond_release(NULL), MPROC_EINVAL);
    ASSERT_ERR(mproc_cond_wait(NULL, 0), MPROC_EINVAL);
    ASSERT_ERR(mproc_cond_notify(NULL, 1), MPROC_EINVAL);
    ASSERT_ERR(mproc_cond_notify_all(NULL), MPROC_EINVAL);
    ASSERT_NULL(mproc_cond_destroy(NULL));
    ASSERT_OK(mproc_cond_create(&c));

    /* Without the lock. */
    ASSERT_ERR(mproc_cond_wait(c, 10), MPROC_ENOTOWNER);
    ASSERT_ERR(mproc_cond_notify(c, 1), MPROC_ENOTOWNER);
    ASSERT_ERR(mproc_cond_notify_all(c), MPROC_ENOTOWNER);
    ASSERT_ERR(mproc_cond_release(c), MPROC_ENOTOWNER);

    /* Wait with timeout, with the lock held recursively: returns with it
     * held as deep as before. */
    ASSERT_OK(mproc_cond_acquire(c, 0));
    ASSERT_OK(mproc_cond_acquire(c, 0));
    ASSERT_ERR(mproc_cond_wait(c, -2), MPROC_EINVAL);
    t0 = th_now_ms();
    ASSERT_ERR(mproc_cond_wait(c, 100), MPROC_ETIMEDOUT);
    ASSERT_GE(th_now_ms() - t0, 100 - 16);
    ASSERT_LE(th_now_ms() - t0, 100 + th_ms(150));
    ASSERT_OK(mproc_cond_notify(c, 1)); /* nobody waits: fine */
    ASSERT_OK(mproc_cond_release(c));
    ASSERT_OK(mproc_cond_release(c));
    ASSERT_ERR(mproc_cond_release(c), MPROC_ENOTOWNER);

    for (int i = 0; i < L09_WAITERS; i++)
        p[i] = th_start(t_cond_waiter,
                        MPROC_LIST(mproc_value_cond(c), mproc_value_shm(m)));
    /* All three inside wait: they increment `waiting` with the lock held
     * and only release it by waiting. */
    t0 = th_now_ms();
    for (;;) {
        int64_t n;
        ASSERT_OK(mproc_cond_acquire(c, th_ms(10000)));
        n = st->waiting;
        ASSERT_OK(mproc_cond_release(c));
        if (n == L09_WAITERS)
            break;
        ASSERT_LE(th_now_ms() - t0, th_ms(20000));
        th_sleep_ms(5);
    }
    /* notify(1) wakes one. */
    ASSERT_OK(mproc_cond_acquire(c, th_ms(10000)));
    ASSERT_OK(mproc_cond_notify(c, 1));
    ASSERT_OK(mproc_cond_release(c));
    ASSERT(wait_count(&st->woken, 1, th_ms(10000)));
    th_sleep_ms(th_ms(100));
    ASSERT_EQ(st->woken, 1);
    /* notify_all wakes the rest. */
    ASSERT_OK(mproc_cond_acquire(c, th_ms(10000)));
    ASSERT_OK(mproc_cond_notify_all(c));
    ASSERT_OK(mproc_cond_release(c));
    for (int i = 0; i < L09_WAITERS; i++)
        ASSERT_EQ(th_join_code(p[i], 30000), 0);
    ASSERT_EQ(st->woken, L09_WAITERS);
    mproc_cond_destroy(c);
    mproc_shm_destroy(m);
    return 0;
}

/* Waits forever on the event (arg 2 == 0) or the condition (1), after
 * telling the parent through `ready`; it is killed there. */
static int t_wait_to_be_killed(const mproc_value *args)
{
    mproc_event *e = arg_event(args, 0);
    mproc_cond *c = arg_cond(args, 1);
    int64_t which = th_arg_int(args, 2);
    mproc_sem *ready = arg_sem(args, 3);
    CHILD_CHECK(e != NULL && c != NULL && ready != NULL, 2);
    if (which == 0) {
        CHILD_CHECK(mproc_sem_release(ready) == 0, 3);
        (void)mproc_event_wait(e, MPROC_FOREVER);
    } else {
        CHILD_CHECK(mproc_cond_acquire(c, MPROC_FOREVER) == 0, 4);
        CHILD_CHECK(mproc_sem_release(ready) == 0, 5);
        /* A wake-up meant for an earlier waiter that died may reach us
         * (spurious wake-ups are allowed): keep waiting, as a predicate
         * loop would, rather than exit holding the lock. */
        for (;;)
            (void)mproc_cond_wait(c, MPROC_FOREVER);
    }
    return 6;
}

/* Waits (bounded) on the event or the condition: 0 when woken. */
static int t_wait_to_wake(const mproc_value *args)
{
    mproc_event *e = arg_event(args, 0);
    mproc_cond *c = arg_cond(args, 1);
    int64_t which = th_arg_int(args, 2);
    mproc_sem *ready = arg_sem(args, 3);
    int rc;
    CHILD_CHECK(e != NULL && c != NULL && ready != NULL, 2);
    if (which == 0) {
        CHILD_CHECK(mproc_sem_release(ready) == 0, 3);
        rc = mproc_event_wait(e, 20000);
    } else {
        CHILD_CHECK(mproc_cond_acquire(c, MPROC_FOREVER) == 0, 4);
        CHILD_CHECK(mproc_sem_release(ready) == 0, 5);
        rc = mproc_cond_wait(c, 20000);
        CHILD_CHECK(mproc_cond_release(c) == 0, 6);
    }
    return rc == 0 ? 0 : 7;
}

/* A waiter killed inside wait must not block the ones who set or notify
 * later, nor the waiters after it: round after round. */
TEST(L09_killed_waiter_blocks_nobody)
{
    mproc_event *e = make_event();
    mproc_cond *c = NULL;
    mproc_sem *ready = make_sem(0, 0);
    ASSERT_OK(mproc_cond_create(&c));
    for (int round = 0; round < 3; round++) {
        mproc_process *dead[2];
        mproc_process *live[2];
        for (int w = 0; w < 2; w++) {
            dead[w] =
                th_start(t_wait_to_be_killed,
                         MPROC_LIST(mproc_value_event(e), mproc_value_cond(c),
                                    mproc_int(w), mproc_value_sem(ready)));
            ASSERT_OK(mproc_sem_acquire(ready, th_ms(20000)));
        }
        /* In the wait by now (the condition's waiter released the lock). */
        ASSERT_OK(mproc_cond_acquire(c, th_ms(20000)));
        ASSERT_OK(mproc_cond_release(c));
        th_sleep_ms(th_ms(30));
        for (int w = 0; w < 2; w++) {
            ASSERT_OK(mproc_process_kill(dead[w]));
            ASSERT_EQ(th_join_code(dead[w], 30000), -9);
        }
        for (int w = 0; w < 2; w++) {
            live[w] =
                th_start(t_wait_to_wake,
                         MPROC_LIST(mproc_value_event(e), mproc_value_cond(c),
                                    mproc_int(w), mproc_value_sem(ready)));
            ASSERT_OK(mproc_sem_acquire(ready, th_ms(20000)));
        }
        ASSERT_OK(mproc_cond_acquire(c, th_ms(20000)));
        th_sleep_ms(th_ms(30));
        ASSERT_OK(mproc_event_set(e));
        ASSERT_OK(mproc_cond_notify_all(c));
        ASSERT_OK(mproc_cond_release(c));
        for (int w = 0; w < 2; w++)
            ASSERT_EQ(th_join_code(live[w], 30000), 0);
        ASSERT_OK(mproc_event_clear(e));
    }
    mproc_event_destroy(e);
    mproc_cond_destroy(c);
    mproc_sem_destroy(ready);
    return 0;
}

/* ---------------------------------------------------------------------------
 * L10: Barrier
 */

/* Waits on the barrier with timeout arg 1; exit code 10 + index, or 50
 * for MPROC_EBROKEN. */
static int t_barrier_wait(const mproc_value *args)
{
    mproc_barrier *b = arg_barrier(args, 0);
    int64_t timeout = th_arg_int(args, 1);
    int rc;
    CHILD_CHECK(b != NULL, 2);
    rc = mproc_barrier_wait(b, (int)timeout);
    if (rc >= 0)
        return 10 + rc;
    return rc == MPROC_EBROKEN ? 50 : 3;
}

static void wait_n_waiting(mproc_barrier *b, int n)
{
    int64_t end = th_now_ms() + th_ms(20000);
    while (mproc_barrier_n_waiting(b) < n) {
        ASSERT_LE(th_now_ms(), end);
        th_sleep_ms(2);
    }
    ASSERT_EQ(mproc_barrier_n_waiting(b), n);
}

TEST(L10_barrier)
{
    mproc_barrier *b = NULL;
    mproc_process *p[2];
    bool seen[3] = {false};
    int idx;
    ASSERT_ERR(mproc_barrier_create(NULL, 1), MPROC_EINVAL);
    ASSERT_ERR(mproc_barrier_create(&b, 0), MPROC_EINVAL);
    ASSERT_NULL(b);
    ASSERT_ERR(mproc_barrier_wait(NULL, 0), MPROC_EINVAL);
    ASSERT_ERR(mproc_barrier_abort(NULL), MPROC_EINVAL);
    ASSERT_ERR(mproc_barrier_reset(NULL), MPROC_EINVAL);
    ASSERT_ERR(mproc_barrier_parties(NULL), MPROC_EINVAL);
    ASSERT_ERR(mproc_barrier_n_waiting(NULL), MPROC_EINVAL);
    ASSERT_ERR(mproc_barrier_broken(NULL), MPROC_EINVAL);
    ASSERT_NULL(mproc_barrier_destroy(NULL));

    /* One party: wait returns at once. */
    ASSERT_OK(mproc_barrier_create(&b, 1));
    ASSERT_EQ(mproc_barrier_wait(b, 0), 0);
    mproc_barrier_destroy(b);

    ASSERT_OK(mproc_barrier_create(&b, 3));
    ASSERT_EQ(mproc_barrier_parties(b), 3);
    ASSERT_EQ(mproc_barrier_n_waiting(b), 0);
    ASSERT_EQ(mproc_barrier_broken(b), 0);
    /* -2 is MPROC_BARRIER_DEFAULT (L20); below it, an error. */
    ASSERT_ERR(mproc_barrier_wait(b, -3), MPROC_EINVAL);

    /* Parties meet, twice (the barrier refills itself); indices distinct. */
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 3; i++)
            seen[i] = false;
        for (int i = 0; i < 2; i++)
            p[i] = th_start(t_barrier_wait, MPROC_LIST(mproc_value_barrier(b),
                                                       mproc_int(30000)));
        wait_n_waiting(b, 2);
        idx = mproc_barrier_wait(b, th_ms(20000));
        ASSERT(idx >= 0 && idx < 3);
        seen[idx] = true;
        for (int i = 0; i < 2; i++) {
            int code = th_join_code(p[i], 30000);
            ASSERT(code >= 10 && code < 13);
            ASSERT(!seen[code - 10]);
            seen[code - 10] = true;
        }
    }

    /* A timeout breaks it for every waiter. */
    p[0] = th_start(t_barrier_wait,
                    MPROC_LIST(mproc_value_barrier(b), mproc_int(30000)));
    wait_n_waiting(b, 1);
    ASSERT_ERR(mproc_barrier_wait(b, 100), MPROC_EBROKEN);
    ASSERT_EQ(th_join_code(p[0], 30000), 50);
    ASSERT_EQ(mproc_barrier_broken(b), 1);
    ASSERT_ERR(mproc_barrier_wait(b, 0), MPROC_EBROKEN);
    ASSERT_ERR(mproc_barrier_wait(b, 1000), MPROC_EBROKEN);

    /* reset mends it. */
    ASSERT_OK(mproc_barrier_reset(b));
    ASSERT_EQ(mproc_barrier_broken(b), 0);
    ASSERT_EQ(mproc_barrier_n_waiting(b), 0);

    /* abort breaks it for the waiters. */
    p[0] = th_start(t_barrier_wait,
                    MPROC_LIST(mproc_value_barrier(b), mproc_int(30000)));
    p[1] = th_start(t_barrier_wait,
                    MPROC_LIST(mproc_value_barrier(b), mproc_int(-1)));
    wait_n_waiting(b, 2);
    ASSERT_OK(mproc_barrier_abort(b));
    ASSERT_EQ(th_join_code(p[0], 30000), 50);
    ASSERT_EQ(th_join_code(p[1], 30000), 50);
    ASSERT_EQ(mproc_barrier_broken(b), 1);

    /* reset while parties wait: they leave broken, the barrier refills. */
    ASSERT_OK(mproc_barrier_reset(b));
    p[0] = th_start(t_barrier_wait,
                    MPROC_LIST(mproc_value_barrier(b), mproc_int(30000)));
    wait_n_waiting(b, 1);
    ASSERT_OK(mproc_barrier_reset(b));
    ASSERT_EQ(th_join_code(p[0], 30000), 50);
    ASSERT_EQ(mproc_barrier_broken(b), 0);
    for (int i = 0; i < 2; i++)
        p[i] = th_start(t_barrier_wait,
                        MPROC_LIST(mproc_value_barrier(b), mproc_int(30000)));
    wait_n_waiting(b, 2);
    ASSERT_OK(mproc_barrier_wait(b, th_ms(20000)));
    for (int i = 0; i < 2; i++) {
        int code = th_join_code(p[i], 30000);
        ASSERT(code >= 10 && code < 13);
    }
    mproc_barrier_destroy(b);
    return 0;
}

/* ---------------------------------------------------------------------------
 * L11: every object created in the parent works in a child
 */

static int t_all_objects(const mproc_value *args)
{
    mproc_lock *l = arg_lock(args, 0);
    mproc_rlock *r = arg_rlock(args, 1);
    mproc_sem *s = arg_sem(args, 2);
    mproc_event *e = arg_event(args, 3);
    mproc_cond *c = arg_cond(args, 4);
    mproc_barrier *b = arg_barrier(args, 5);
    mproc_shm *m = arg_shm(args, 6);
    unsigned char *mem;
    CHILD_CHECK(l && r && s && e && c && b && m, 2);
    CHILD_CHECK(mproc_shm_size(m) == 100, 3);
    mem = (unsigned char *)mproc_shm_ptr(m);
    CHILD_CHECK(mem != NULL && mem[0] == 42 && mem[99] == 43, 4);
    mem[1] = 44;
    CHILD_CHECK(mproc_lock_acquire(l, 0) == 0, 5);
    CHILD_CHECK(mproc_lock_release(l) == 0, 6);
    CHILD_CHECK(mproc_rlock_acquire(r, 0) == 0, 7);
    CHILD_CHECK(mproc_rlock_acquire(r, 0) == 0, 8);
    CHILD_CHECK(mproc_rlock_release(r) == 0, 9);
    CHILD_CHECK(mproc_rlock_release(r) == 0, 10);
    CHILD_CHECK(mproc_sem_value(s) == 1, 11);
    CHILD_CHECK(mproc_sem_acquire(s, 0) == 0, 12);
    CHILD_CHECK(mproc_cond_acquire(c, 0) == 0, 13);
    CHILD_CHECK(mproc_cond_notify_all(c) == 0, 14);
    CHILD_CHECK(mproc_cond_release(c) == 0, 15);
    CHILD_CHECK(mproc_barrier_parties(b) == 2, 16);
    CHILD_CHECK(mproc_event_set(e) == 0, 17);
    /* Meet the parent, which waits on the barrier after the event. */
    CHILD_CHECK(mproc_barrier_wait(b, 30000) >= 0, 18);
    /* The parent holds the lock now, until we release the semaphore. */
    CHILD_CHECK(mproc_lock_acquire(l, 0) == MPROC_EBUSY, 19);
    CHILD_CHECK(mproc_sem_release(s) == 0, 20);
    return 0;
}

TEST(L11_objects_in_children)
{
    mproc_lock *l = make_lock();
    mproc_rlock *r = NULL;
    mproc_sem *s = make_sem(1, 1);
    mproc_event *e = make_event();
    mproc_cond *c = NULL;
    mproc_barrier *b = NULL;
    mproc_shm *m = make_shm(100);
    unsigned char *mem = (unsigned char *)mproc_shm_ptr(m);
    mproc_process *p;
    ASSERT_OK(mproc_rlock_create(&r));
    ASSERT_OK(mproc_cond_create(&c));
    ASSERT_OK(mproc_barrier_create(&b, 2));
    mem[0] = 42;
    mem[99] = 43;
    p = th_start(t_all_objects,
                 MPROC_LIST(mproc_value_lock(l), mproc_value_rlock(r),
                            mproc_value_sem(s), mproc_value_event(e),
                            mproc_value_cond(c), mproc_value_barrier(b),
                            mproc_value_shm(m)));
    ASSERT_OK(mproc_event_wait(e, th_ms(20000)));
    ASSERT_OK(mproc_lock_acquire(l, th_ms(20000)));
    ASSERT(mproc_barrier_wait(b, th_ms(20000)) >= 0);
    ASSERT_OK(mproc_sem_acquire(s, th_ms(20000)));
    ASSERT_OK(mproc_lock_release(l));
    ASSERT_EQ(th_join_code(p, 30000), 0);
    ASSERT_EQ(mem[1], 44);
    mproc_lock_destroy(l);
    mproc_rlock_destroy(r);
    mproc_sem_destroy(s);
    mproc_event_destroy(e);
    mproc_cond_destroy(c);
    mproc_barrier_destroy(b);
    mproc_shm_destroy(m);
    return 0;
}

/* The same objects twice in one argument list: two working views. */
static int t_twice(const mproc_value *args)
{
    mproc_lock *a = arg_lock(args, 0);
    mproc_lock *b = arg_lock(args, 1);
    mproc_shm *m1 = arg_shm(args, 2);
    mproc_shm *m2 = arg_shm(args, 3);
    CHILD_CHECK(a != NULL && b != NULL && m1 != NULL && m2 != NULL, 2);
    CHILD_CHECK(mproc_lock_acquire(a, 0) == 0, 3);
    CHILD_CHECK(mproc_lock_acquire(b, 0) == MPROC_EBUSY, 4);
    /* Released through the view it was taken with (a sanitizer tracks a
     * mutex by address, and the two views are two mappings). */
    CHILD_CHECK(mproc_lock_release(a) == 0, 5);
    CHILD_CHECK(mproc_lock_acquire(b, 0) == 0, 7);
    CHILD_CHECK(mproc_lock_acquire(a, 0) == MPROC_EBUSY, 8);
    CHILD_CHECK(mproc_lock_release(b) == 0, 9);
    ((volatile char *)mproc_shm_ptr(m1))[0] = 7;
    CHILD_CHECK(((volatile char *)mproc_shm_ptr(m2))[0] == 7, 6);
    return 0;
}

TEST(L11_same_object_twice)
{
    mproc_lock *l = make_lock();
    mproc_shm *m = make_shm(64);
    ASSERT_EQ(th_join_code(
                  th_start(t_twice,
                           MPROC_LIST(mproc_value_lock(l), mproc_value_lock(l),
                                      mproc_value_shm(m), mproc_value_shm(m))),
                  30000),
              0);
    ASSERT_EQ(((volatile char *)mproc_shm_ptr(m))[0], 7);
    ASSERT_OK(mproc_lock_acquire(l, 0));
    ASSERT_OK(mproc_lock_release(l));
    mproc_lock_destroy(l);
    mproc_shm_destroy(m);
    return 0;
}

/* ---------------------------------------------------------------------------
 * L12: nothing named is left behind
 *
 * Where the system shows its POSIX shared memory and named semaphores as
 * files (/dev/shm on Linux), every entry whose name the library would make
 * ("mproc-<pid>-..." for shm_open, "sem.mproc-..." for sem_open) is listed
 * before and after a program's processes ran and exited, one of them by
 * SIGKILL while holding everything. Where descriptors show up in
 * /proc/self/fd, the segments of this process must have no name at all
 * (a memfd, or a file already unlinked). Elsewhere (Windows) the objects
 * are unnamed kernel objects and the listing is empty.
 */

#define L12_MAX_NAMES 256

static int list_names(char names[][128], int cap)
{
    int n = 0;
#if defined(TH_HAVE_DIRENT)
    DIR *d = opendir("/dev/shm");
    struct dirent *de;
    if (d == NULL)
        return 0;
    while ((de = readdir(d)) != NULL && n < cap) {
        if (strncmp(de->d_name, "mproc", 5) == 0 ||
            strncmp(de->d_name, "sem.mproc", 9) == 0) {
            snprintf(names[n], 128, "%.100s", de->d_name);
            n++;
        }
    }
    closedir(d);
#else
    (void)names;
    (void)cap;
#endif
    return n;
}

static bool name_in(char names[][128], int n, const char *s)
{
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], s) == 0)
            return true;
    return false;
}

/* A program of its own: creates every object, passes them to a grandchild
 * that holds them, and is killed (arg 0 == 1) or returns. */
static int t_l12_holder(const mproc_value *args)
{
    mproc_lock *l = arg_lock(args, 0);
    mproc_sem *ready = arg_sem(args, 1);
    CHILD_CHECK(l != NULL && ready != NULL, 2);
    CHILD_CHECK(mproc_lock_acquire(l, 0) == 0, 3);
    CHILD_CHECK(mproc_sem_release(ready) == 0, 4);
    /* Until killed, or until the program is gone (a daemon dies with it
     * anyway; this is the belt to those braces). */
    for (int i = 0; i < 3000; i++) {
        mproc_process *parent = mproc_parent_process();
        if (parent != NULL && mproc_process_is_alive(parent) == 0)
            return 0;
        th_sleep_ms(10);
    }
    return 5;
}

static int t_l12_program(const mproc_value *args)
{
    int64_t killed = th_arg_int(args, 0);
    mproc_sem *ready = arg_sem(args, 1);
    mproc_lock *l = NULL;
    mproc_rlock *r = NULL;
    mproc_sem *s = NULL;
    mproc_event *e = NULL;
    mproc_cond *c = NULL;
    mproc_barrier *b = NULL;
    mproc_shm *m = NULL;
    mproc_conn *ca = NULL;
    mproc_conn *cb = NULL;
    mproc_queue *q = NULL;
    mproc_process *p = NULL;
    CHILD_CHECK(ready != NULL, 16);
    /* Pipes and queues too: the row is about every name of the program. */
    CHILD_CHECK(mproc_pipe(&ca, &cb, true) == 0, 18);
    CHILD_CHECK(mproc_queue_create(&q, 0) == 0, 19);
    CHILD_CHECK(mproc_conn_send_bytes(ca, "x", 1) == 0, 20);
    CHILD_CHECK(mproc_queue_put_bytes(q, "y", 1, 1000) == 0, 21);
    CHILD_CHECK(mproc_lock_create(&l) == 0, 2);
    CHILD_CHECK(mproc_rlock_create(&r) == 0, 3);
    CHILD_CHECK(mproc_sem_create(&s, 0, 0) == 0, 4);
    CHILD_CHECK(mproc_event_create(&e) == 0, 5);
    CHILD_CHECK(mproc_cond_create(&c) == 0, 6);
    CHILD_CHECK(mproc_barrier_create(&b, 2) == 0, 7);
    CHILD_CHECK(mproc_shm_create(&m, 1 << 16) == 0, 8);
    CHILD_CHECK(mproc_process_create(
                    &p, t_l12_holder,
                    MPROC_LIST(mproc_value_lock(l), mproc_value_sem(s),
                               mproc_value_rlock(r), mproc_value_event(e),
                               mproc_value_cond(c), mproc_value_barrier(b),
                               mproc_value_shm(m), mproc_value_conn(cb),
                               mproc_value_queue(q))) == 0,
                9);
    CHILD_CHECK(mproc_process_set_daemon(p, true) == 0, 17);
    CHILD_CHECK(mproc_process_start(p) == 0, 10);
    CHILD_CHECK(mproc_sem_acquire(s, 30000) == 0, 11);
    if (killed == 1) {
        /* The grandchild holds the lock and every object; we die now, by
         * SIGKILL from the test, and so will it. */
        CHILD_CHECK(mproc_sem_release(ready) == 0, 12);
        for (int i = 0; i < 3000; i++)
            th_sleep_ms(10);
        return 13;
    }
    CHILD_CHECK(mproc_process_kill(p) == 0, 14);
    CHILD_CHECK(mproc_process_join(p, 30000) == 0, 15);
    mproc_process_destroy(p);
    mproc_conn_destroy(ca);
    mproc_conn_destroy(cb);
    mproc_queue_destroy(q);
    mproc_lock_destroy(l);
    mproc_rlock_destroy(r);
    mproc_sem_destroy(s);
    mproc_event_destroy(e);
    mproc_cond_destroy(c);
    mproc_barrier_destroy(b);
    mproc_shm_destroy(m);
    return 0;
}

/* Every descriptor of this process that is a shared memory segment of the
 * library has no name left: "/memfd:..." or "... (deleted)". */
static void check_own_segments_unnamed(mproc_shm *m)
{
#if defined(TH_HAVE_UNISTD) && defined(TH_HAVE_DIRENT) &&                      \
    defined(_POSIX_VERSION)
    DIR *d = opendir("/proc/self/fd");
    struct dirent *de;
    int checked = 0;
    if (d == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        char path[300];
        char target[512];
        ssize_t n;
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "/proc/self/fd/%.200s", de->d_name);
        n = readlink(path, target, sizeof target - 1);
        if (n <= 0)
            continue;
        target[n] = '\0';
        /* Ours: a memfd named "mproc", or an shm_open file of the
         * library's prefix, which must have been unlinked at birth. Other
         * descriptors (the checkout's own directory may be called mproc)
         * are none of the test's business. */
        if (strncmp(target, "/memfd:mproc", 12) == 0) {
            checked++;
            continue;
        }
        if (strstr(target, "/dev/shm/mproc") == NULL)
            continue;
        ASSERT(strstr(target, "(deleted)") != NULL);
        checked++;
    }
    closedir(d);
    ASSERT_GE(checked, 1); /* at least m's own segment was seen */
    (void)m;
#else
    (void)m;
#endif
}

TEST(L12_no_names_left)
{
    static char before[L12_MAX_NAMES][128];
    static char after[L12_MAX_NAMES][128];
    int nb;
    int na;
    mproc_process *p;
    mproc_sem *ready = make_sem(0, 0);
    mproc_shm *m = make_shm(4096);
    int code = 0;
    check_own_segments_unnamed(m);
    nb = list_names(before, L12_MAX_NAMES);

    /* A program that ends normally after its child was killed. */
    p = th_start(t_l12_program,
                 MPROC_LIST(mproc_int(0), mproc_value_sem(ready)));
    ASSERT_EQ(th_join_code(p, 30000), 0);

    /* A program killed while its child holds everything; then the child. */
    ASSERT_OK(mproc_process_create(
        &p, t_l12_program, MPROC_LIST(mproc_int(1), mproc_value_sem(ready))));
    ASSERT_OK(mproc_process_start(p));
    ASSERT_OK(mproc_sem_acquire(ready, th_ms(20000)));
    ASSERT_OK(mproc_process_kill(p));
    ASSERT_OK(mproc_process_join(p, th_ms(10000)));
    ASSERT_OK(mproc_process_exitcode(p, &code));
    ASSERT_EQ(code, -9);
    mproc_process_destroy(p);
    /* The grandchild, a daemon, dies with the program. Every name of the
     * library that was not there before is a leak. */
    th_sleep_ms(th_ms(100));
    na = list_names(after, L12_MAX_NAMES);
    for (int i = 0; i < na; i++) {
        if (!name_in(before, nb, after[i]))
            th_fail(__FILE__, __LINE__, "left behind: /dev/shm/%s", after[i]);
    }
    mproc_sem_destroy(ready);
    mproc_shm_destroy(m);
    return 0;
}

/* Creates and destroys segments until it is killed: where segments are
 * shm_open names (the portable fallback), many kills land between
 * shm_open and shm_unlink. */
static int t_l12_creator(const mproc_value *args)
{
    mproc_sem *ready = arg_sem(args, 0);
    CHILD_CHECK(ready != NULL, 2);
    CHILD_CHECK(mproc_sem_release(ready) == 0, 3);
    for (;;) {
        mproc_shm *m = NULL;
        if (mproc_shm_create(&m, 4096) == 0)
            mproc_shm_destroy(m);
    }
}

/* The name prefix of segments that process `pid` made (src/posix/shm.c:
 * "mproc" and the pid in base 32, then '.'). */
static void l12_pid_prefix(int64_t pid, char *buf, size_t cap)
{
    static const char digits[] = "0123456789abcdefghijklmnopqrstuv";
    char tmp[16];
    size_t n = 0, len;
    uint64_t v = (uint64_t)pid;
    do {
        tmp[n++] = digits[v & 31u];
        v >>= 5;
    } while (v != 0 && n < sizeof tmp);
    len = (size_t)snprintf(buf, cap, "mproc");
    while (n > 0 && len + 2 < cap)
        buf[len++] = tmp[--n];
    buf[len++] = '.';
    buf[len] = '\0';
}

#define L12_KILLS 48

/* Creators SIGKILLed at random moments while they make segments: once
 * every killed creator has been reaped, none of their names remains
 * (before the sweep, a fallback build left about one name per five
 * kills). Where segments have no name (memfd) there is nothing to see. */
TEST(L12_killed_creators_leave_no_name)
{
    static char names[L12_MAX_NAMES][128];
    static char prefixes[L12_KILLS][32];
    mproc_sem *ready = make_sem(0, 0);
    unsigned seed = (unsigned)th_now_ms();
    int n, i, k;

    for (k = 0; k < L12_KILLS; k++) {
        mproc_process *p =
            th_start(t_l12_creator, MPROC_LIST(mproc_value_sem(ready)));
        int64_t pid = mproc_process_pid(p);
        int code = 0;
        ASSERT_OK(mproc_sem_acquire(ready, th_ms(20000)));
        l12_pid_prefix(pid, prefixes[k], sizeof prefixes[k]);
        seed = seed * 1103515245u + 12345u;
        th_sleep_ms((int)((seed >> 16) % 20u));
        ASSERT_OK(mproc_process_kill(p));
        ASSERT_OK(mproc_process_join(p, th_ms(10000)));
        ASSERT_OK(mproc_process_exitcode(p, &code));
        ASSERT_EQ(code, -9);
        mproc_process_destroy(p);
    }
    n = list_names(names, L12_MAX_NAMES);
    for (i = 0; i < n; i++)
        for (k = 0; k < L12_KILLS; k++)
            if (strncmp(names[i], prefixes[k], strlen(prefixes[k])) == 0)
                th_fail(__FILE__, __LINE__,
                        "left behind by a killed creator: /dev/shm/%s",
                        names[i]);
    mproc_sem_destroy(ready);
    return 0;
}

/* ---------------------------------------------------------------------------
 * Shared memory (used by L01, L02, L09, L11; its own checks here)
 */

static int t_shm_write(const mproc_value *args)
{
    mproc_shm *m = arg_shm(args, 0);
    unsigned char *p;
    CHILD_CHECK(m != NULL, 2);
    CHILD_CHECK(mproc_shm_size(m) == 1 << 20, 3);
    p = (unsigned char *)mproc_shm_ptr(m);
    for (size_t i = 0; i < (size_t)1 << 20; i += 4096)
        CHILD_CHECK(p[i] == (unsigned char)(i >> 12), 4);
    p[(1 << 20) - 1] = 0x5a;
    return 0;
}

TEST(L11_shm_in_children)
{
    mproc_shm *m = NULL;
    unsigned char *p;
    ASSERT_ERR(mproc_shm_create(NULL, 10), MPROC_EINVAL);
    ASSERT_ERR(mproc_shm_create(&m, 0), MPROC_EINVAL);
    ASSERT_NULL(m);
    ASSERT_NULL(mproc_shm_ptr(NULL));
    ASSERT_EQ(mproc_shm_size(NULL), 0);
    ASSERT_NULL(mproc_shm_destroy(NULL));
    ASSERT(mproc_shm_create(&m, SIZE_MAX) < 0);
    ASSERT_NULL(m);
    m = make_shm((size_t)1 << 20);
    p = (unsigned char *)mproc_shm_ptr(m);
    for (size_t i = 0; i < (size_t)1 << 20; i++)
        ASSERT_EQ(p[i], 0);
    for (size_t i = 0; i < (size_t)1 << 20; i += 4096)
        p[i] = (unsigned char)(i >> 12);
    ASSERT_EQ(th_join_code(
                  th_start(t_shm_write, MPROC_LIST(mproc_value_shm(m))), 30000),
              0);
    ASSERT_EQ(p[(1 << 20) - 1], 0x5a);
    mproc_shm_destroy(m);
    return 0;
}

/* ---------------------------------------------------------------------------
 * L13: a barrier party killed while it waits
 */

/* Waits on the barrier with timeout arg 1, then writes when it returned
 * into slot arg 3 of the shm (arg 2); exit code as t_barrier_wait. */
static int t_barrier_wait_at(const mproc_value *args)
{
    mproc_barrier *b = arg_barrier(args, 0);
    int64_t timeout = th_arg_int(args, 1);
    mproc_shm *m = arg_shm(args, 2);
    int64_t slot = th_arg_int(args, 3);
    int rc;
    CHILD_CHECK(b != NULL && m != NULL && slot >= 0 && slot < 8, 2);
    rc = mproc_barrier_wait(b, (int)timeout);
    ((volatile int64_t *)mproc_shm_ptr(m))[slot] = th_now_ms();
    if (rc >= 0)
        return 10 + rc;
    return rc == MPROC_EBROKEN ? 50 : 3;
}

/* Kills the party at arrival position `victim` (0..3) of a 5-party barrier
 * whose four waiters wait forever or with a long timeout: the three others
 * leave broken within 100 ms of the kill. */
static void l13_kill_one(mproc_barrier *b, mproc_shm *m, int victim)
{
    volatile int64_t *when = (volatile int64_t *)mproc_shm_ptr(m);
    mproc_process *p[4];
    int64_t killed_at;
    for (int i = 0; i < 4; i++) {
        when[i] = 0;
        p[i] = th_start(t_barrier_wait_at,
                        MPROC_LIST(mproc_value_barrier(b),
                                   mproc_int(i % 2 == 0 ? -1 : 30000),
                                   mproc_value_shm(m), mproc_int(i)));
        wait_n_waiting(b, i + 1);
    }
    /* Asleep by now, past any check a waiter makes on its way in. */
    th_sleep_ms(th_ms(100));
    killed_at = th_now_ms();
    ASSERT_OK(mproc_process_kill(p[victim]));
    for (int i = 0; i < 4; i++) {
        if (i == victim)
            continue;
        ASSERT_EQ(th_join_code(p[i], 30000), 50);
        ASSERT_GE(when[i], killed_at);
        ASSERT_LE(when[i] - killed_at, th_ms(100));
    }
    ASSERT_EQ(th_join_code(p[victim], 30000), -9);
    ASSERT_EQ(mproc_barrier_broken(b), 1);
    ASSERT_ERR(mproc_barrier_wait(b, 0), MPROC_EBROKEN);
}

/* A full cycle of a barrier of `parties`: parties-1 children and us. */
static void l13_full_cycle(mproc_barrier *b, int parties)
{
    mproc_process *p[8];
    bool seen[8] = {false};
    int idx;
    ASSERT_LE(parties, 8);
    for (int i = 0; i < parties - 1; i++) {
        p[i] = th_start(t_barrier_wait,
                        MPROC_LIST(mproc_value_barrier(b), mproc_int(30000)));
        wait_n_waiting(b, i + 1);
    }
    idx = mproc_barrier_wait(b, th_ms(20000));
    ASSERT(idx >= 0 && idx < parties);
    seen[idx] = true;
    for (int i = 0; i < parties - 1; i++) {
        int code = th_join_code(p[i], 30000);
        ASSERT(code >= 10 && code < 10 + parties);
        ASSERT(!seen[code - 10]);
        seen[code - 10] = true;
    }
}

TEST(L13_barrier_party_killed)
{
    mproc_barrier *b = NULL;
    mproc_shm *m = make_shm(8 * sizeof(int64_t));
    ASSERT_OK(mproc_barrier_create(&b, 5));
    /* The first one in, then the last one in (each is watched by another
     * waiter), then one in the middle. */
    l13_kill_one(b, m, 0);
    ASSERT_OK(mproc_barrier_reset(b));
    ASSERT_EQ(mproc_barrier_broken(b), 0);
    ASSERT_EQ(mproc_barrier_n_waiting(b), 0);
    l13_kill_one(b, m, 3);
    ASSERT_OK(mproc_barrier_reset(b));
    l13_kill_one(b, m, 2);
    /* reset mends it: a whole cycle meets. */
    ASSERT_OK(mproc_barrier_reset(b));
    ASSERT_EQ(mproc_barrier_broken(b), 0);
    l13_full_cycle(b, 5);
    mproc_barrier_destroy(b);
    mproc_shm_destroy(m);
    return 0;
}

/* A party that dies while it is the only one waiting has nobody to notice:
 * it stays counted until someone looks. reset always mends the barrier;
 * without reset, the next party to wait finds out within a slice. */
TEST(L13_barrier_reset_mends)
{
    mproc_barrier *b = NULL;
    mproc_process *p;
    int64_t t0;
    ASSERT_OK(mproc_barrier_create(&b, 3));
    for (int round = 0; round < 2; round++) {
        p = th_start(t_barrier_wait,
                     MPROC_LIST(mproc_value_barrier(b), mproc_int(-1)));
        wait_n_waiting(b, 1);
        ASSERT_OK(mproc_process_kill(p));
        ASSERT_EQ(th_join_code(p, 30000), -9);
        if (round == 0) {
            /* reset with a dead party counted leaves a usable barrier. */
            ASSERT_OK(mproc_barrier_reset(b));
            ASSERT_EQ(mproc_barrier_n_waiting(b), 0);
            ASSERT_EQ(mproc_barrier_broken(b), 0);
        } else {
            /* The next party in watches the dead one. */
            t0 = th_now_ms();
            ASSERT_ERR(mproc_barrier_wait(b, th_ms(20000)), MPROC_EBROKEN);
            ASSERT_LE(th_now_ms() - t0, th_ms(1000));
            ASSERT_EQ(mproc_barrier_broken(b), 1);
            ASSERT_OK(mproc_barrier_reset(b));
            ASSERT_EQ(mproc_barrier_broken(b), 0);
        }
        l13_full_cycle(b, 3);
    }
    /* And a reset while a live party waits still sends it away broken. */
    p = th_start(t_barrier_wait,
                 MPROC_LIST(mproc_value_barrier(b), mproc_int(30000)));
    wait_n_waiting(b, 1);
    ASSERT_OK(mproc_barrier_reset(b));
    ASSERT_EQ(th_join_code(p, 30000), 50);
    l13_full_cycle(b, 3);
    mproc_barrier_destroy(b);
    ASSERT_ERR(mproc_barrier_create(&b, MPROC_BARRIER_MAX_PARTIES + 1u),
               MPROC_EINVAL);
    ASSERT_NULL(b);
    ASSERT_OK(mproc_barrier_create(&b, MPROC_BARRIER_MAX_PARTIES));
    ASSERT_EQ(mproc_barrier_parties(b), MPROC_BARRIER_MAX_PARTIES);
    mproc_barrier_destroy(b);
    return 0;
}

/* ---------------------------------------------------------------------------
 * L14: a condition's wake-ups go to the threads waiting when they were
 * given, also to one that released the lock and has not slept yet.
 *
 * A test hook of the backends (backend.h) pauses chosen waiters between
 * releasing the lock and sleeping; notifies come then, and waiter B starts
 * waiting after them. The paused waiters must wake; B must not take one of
 * their wake-ups (it times out).
 */

typedef struct l14_waiter {
    mproc_cond *c; /* public API, or NULL: the backend objects below */
    int timeout_ms;
    int pause; /* pause at the hook */
    _Atomic int paused;
    _Atomic int resume;
    int rc;
} l14_waiter;

static _Thread_local l14_waiter *l14_self;

static void l14_hook(int point)
{
    l14_waiter *w = l14_self;
    if (point != MPROC__HOOK_COND_UNLOCKED || w == NULL || !w->pause)
        return;
    w->pause = 0;
    atomic_store(&w->paused, 1);
    while (!atomic_load(&w->resume))
        th_sleep_ms(1);
}

static _Alignas(64) unsigned char l14_mutex[MPROC__OS_MUTEX_SIZE];
static _Alignas(64) unsigned char l14_cond[MPROC__OS_COND_SIZE];
static mproc__handle l14_mh = MPROC__BADHANDLE;
static mproc__handle l14_ch[MPROC__OS_COND_HANDLES];

static int l14_lock(mproc_cond *c, int timeout_ms)
{
    return c != NULL ? mproc_cond_acquire(c, timeout_ms)
                     : mproc__os_mutex_lock(l14_mutex, l14_mh, timeout_ms);
}

static int l14_unlock(mproc_cond *c)
{
    return c != NULL ? mproc_cond_release(c)
                     : mproc__os_mutex_unlock(l14_mutex, l14_mh);
}

static void *l14_wait(void *arg)
{
    l14_waiter *w = (l14_waiter *)arg;
    w->rc = 1000;
    if (l14_lock(w->c, MPROC_FOREVER) != 0)
        return NULL;
    l14_self = w;
    w->rc = w->c != NULL ? mproc_cond_wait(w->c, w->timeout_ms)
                         : mproc__os_cond_wait(l14_cond, l14_ch, l14_mutex,
                                               l14_mh, w->timeout_ms);
    l14_self = NULL;
    if (l14_unlock(w->c) != 0)
        w->rc = 2000;
    return NULL;
}

/* Starts a waiter; a pausing one is between unlock and sleep on return. */
static void l14_start(l14_waiter *w, pthread_t *t, mproc_cond *c, int pause,
                      int timeout_ms)
{
    int64_t t0 = th_now_ms();
    w->c = c;
    w->timeout_ms = timeout_ms;
    w->pause = pause;
    atomic_store(&w->paused, 0);
    atomic_store(&w->resume, 0);
    w->rc = 0;
    ASSERT_EQ(pthread_create(t, NULL, l14_wait, w), 0);
    while (pause && !atomic_load(&w->paused)) {
        ASSERT_LE(th_now_ms() - t0, th_ms(10000));
        th_sleep_ms(1);
    }
}

/* what: 'a' notify_all, '1' notify(1) (the backend's signal), 's' signal
 * then broadcast. */
static void l14_notify(mproc_cond *c, char what)
{
    ASSERT_OK(l14_lock(c, th_ms(5000)));
    if (c != NULL) {
        if (what == 'a') {
            ASSERT_OK(mproc_cond_notify_all(c));
        } else {
            ASSERT_OK(mproc_cond_notify(c, 1));
            if (what == 's')
                ASSERT_OK(mproc_cond_notify_all(c));
        }
    } else {
        if (what == 'a') {
            ASSERT_OK(mproc__os_cond_broadcast(l14_cond, l14_ch));
        } else {
            ASSERT_OK(mproc__os_cond_signal(l14_cond, l14_ch, 1));
            if (what == 's')
                ASSERT_OK(mproc__os_cond_broadcast(l14_cond, l14_ch));
        }
    }
    ASSERT_OK(l14_unlock(c));
}

/* Round 0: A paused, notify_all, then B. Round 1: A2 paused, notify_all
 * (A2's wake-up; new waiters move to another queue), A paused, notify(1)
 * and notify_all (A's wake-up, and a broadcast that finds every waiter of
 * its queue served already), then B. */
static void l14_rounds(mproc_cond *c, const char *what)
{
    for (int round = 0; round < 2; round++) {
        static l14_waiter a, a2, b;
        pthread_t ta, ta2, tb;
        if (round == 1) {
            l14_start(&a2, &ta2, c, 1, th_ms(5000));
            l14_notify(c, 'a');
        }
        l14_start(&a, &ta, c, 1, th_ms(5000));
        l14_notify(c, what[round]);
        /* B waits after the notifies, while the others are paused. */
        l14_start(&b, &tb, c, 0, th_ms(300));
        th_sleep_ms(th_ms(100));
        atomic_store(&a.resume, 1);
        if (round == 1)
            atomic_store(&a2.resume, 1);
        ASSERT_EQ(pthread_join(ta, NULL), 0);
        ASSERT_EQ(pthread_join(tb, NULL), 0);
        ASSERT_ERR(a.rc, 0);
        ASSERT_ERR(b.rc, MPROC_ETIMEDOUT);
        if (round == 1) {
            ASSERT_EQ(pthread_join(ta2, NULL), 0);
            ASSERT_ERR(a2.rc, 0);
        }
    }
}

TEST(L14_cond_wakeup_not_stolen)
{
    mproc_cond *c = NULL;
    ASSERT_OK(mproc_cond_create(&c));
    mproc__test_hook = l14_hook;
    l14_rounds(c, "as");
    mproc__test_hook = NULL;
    mproc_cond_destroy(c);
    return 0;
}

/* The same at the backend, also for a plain signal(1) (mproc_cond_notify(1)
 * with one waiter is a broadcast there). */
TEST(backend_cond_signal_not_stolen)
{
    ASSERT_OK(mproc__os_mutex_init(l14_mutex, &l14_mh));
    ASSERT_OK(mproc__os_cond_init(l14_cond, l14_ch));
    mproc__test_hook = l14_hook;
    l14_rounds(NULL, "1s");
    l14_rounds(NULL, "a1");
    mproc__test_hook = NULL;
    mproc__os_cond_destroy(l14_cond, l14_ch);
    mproc__os_mutex_destroy(l14_mutex, l14_mh);
    return 0;
}

/* ---------------------------------------------------------------------------
 * Owner identity and liveness (DESIGN.md section 7)
 *
 * A child whose main thread ends while another thread runs (and holds a
 * lock) is a live process: not "dead" to the identity check, and its lock
 * is not taken from it.
 */

/* Atomics: threads of one process share it too. */
typedef struct le_state {
    _Atomic int64_t pid;
    _Atomic uint64_t start;
    _Atomic int64_t held;
    _Atomic int64_t main_exiting;
    _Atomic int64_t release;
    _Atomic int64_t done;
    _Atomic int64_t err;
} le_state;

typedef struct le_args {
    mproc_lock *l;
    volatile le_state *st;
} le_args;

static void *le_holder(void *arg)
{
    le_args *a = (le_args *)arg;
    int64_t t0 = th_now_ms();
    if (mproc_lock_acquire(a->l, MPROC_FOREVER) != 0) {
        a->st->err = 1;
        return NULL;
    }
    a->st->held = 1;
    while (!a->st->release && th_now_ms() - t0 < 30000)
        th_sleep_ms(2);
    if (mproc_lock_release(a->l) != 0)
        a->st->err = 2;
    a->st->done = 1;
    /* The process would end with its last thread; ThreadSanitizer has a
     * thread of its own, so end it here. */
    fflush(stdout);
    exit(0);
}

/* Publishes its identity, leaves a thread holding the lock, and ends its
 * main thread with pthread_exit: the process lives on in that thread. */
static int t_leader_exits(const mproc_value *args)
{
    static le_args a;
    mproc__proc_id self = mproc__os_proc_self();
    mproc_shm *m = arg_shm(args, 1);
    pthread_t t;
    int64_t t0 = th_now_ms();
    a.l = arg_lock(args, 0);
    CHILD_CHECK(a.l != NULL && m != NULL, 2);
    a.st = (volatile le_state *)mproc_shm_ptr(m);
    a.st->start = self.start;
    a.st->pid = self.pid;
    CHILD_CHECK(pthread_create(&t, NULL, le_holder, &a) == 0, 3);
    while (!a.st->held && !a.st->err && th_now_ms() - t0 < 20000)
        th_sleep_ms(2);
    CHILD_CHECK(a.st->held, 4);
    fflush(stdout);
    a.st->main_exiting = 1;
    pthread_exit(NULL);
    return 0; /* not reached (not every pthread_exit is noreturn) */
}

static volatile le_state *le_start(mproc_lock *l, mproc_shm *m,
                                   mproc_process **p)
{
    volatile le_state *st = (volatile le_state *)mproc_shm_ptr(m);
    int64_t t0 = th_now_ms();
    *p = th_start(t_leader_exits,
                  MPROC_LIST(mproc_value_lock(l), mproc_value_shm(m)));
    while (!st->main_exiting) {
        ASSERT_LE(th_now_ms() - t0, th_ms(20000));
        th_sleep_ms(2);
    }
    /* Let the main thread finish ending. */
    th_sleep_ms(th_ms(100));
    ASSERT_EQ(st->err, 0);
    return st;
}

static void le_finish(volatile le_state *st, mproc_process *p)
{
    st->release = 1;
    ASSERT_EQ(th_join_code(p, 30000), 0);
    ASSERT_EQ(st->done, 1);
    ASSERT_EQ(st->err, 0);
}

TEST(L05_live_owner_main_thread_exited)
{
    mproc_lock *l = make_lock();
    mproc_shm *m = make_shm(sizeof(le_state));
    mproc_process *p = NULL;
    volatile le_state *st = le_start(l, m, &p);
    /* The owner thread lives: a timeout, not an owner death. */
    ASSERT_ERR(mproc_lock_acquire(l, 0), MPROC_EBUSY);
    ASSERT_ERR(mproc_lock_acquire(l, th_ms(300)), MPROC_ETIMEDOUT);
    le_finish(st, p);
    /* Released properly by its owner. */
    ASSERT_OK(mproc_lock_acquire(l, th_ms(5000)));
    ASSERT_OK(mproc_lock_release(l));
    mproc_lock_destroy(l);
    mproc_shm_destroy(m);
    return 0;
}

TEST(backend_proc_alive_main_thread_exited)
{
    mproc_lock *l = make_lock();
    mproc_shm *m = make_shm(sizeof(le_state));
    mproc_process *p = NULL;
    volatile le_state *st = le_start(l, m, &p);
    mproc__proc_id id, now;
    id.pid = st->pid;
    id.start = st->start;
    ASSERT_EQ(id.pid, mproc_process_pid(p));
    ASSERT_EQ(mproc__os_proc_alive(&id), 1);
    ASSERT_OK(mproc__os_proc_lookup(id.pid, &now));
    ASSERT_EQ(now.pid, id.pid);
    ASSERT_EQ(now.start, id.start);
    le_finish(st, p);
    /* Ended and reaped: gone, whoever gets the pid next. */
    ASSERT_EQ(mproc__os_proc_alive(&id), 0);
    mproc_lock_destroy(l);
    mproc_shm_destroy(m);
    return 0;
}

/* Exits at once without being joined for a while: a zombie. */
static int t_exit_now(const mproc_value *args)
{
    mproc_shm *m = arg_shm(args, 0);
    volatile le_state *st;
    mproc__proc_id self = mproc__os_proc_self();
    CHILD_CHECK(m != NULL, 2);
    st = (volatile le_state *)mproc_shm_ptr(m);
    st->start = self.start;
    st->pid = self.pid;
    return 0;
}

TEST(backend_proc_identity)
{
    mproc__proc_id self = mproc__os_proc_self();
    mproc__proc_id again = {0, 0};
    mproc__proc_id other;
    mproc_shm *m = make_shm(sizeof(le_state));
    volatile le_state *st = (volatile le_state *)mproc_shm_ptr(m);
    mproc_process *p;
    int64_t t0;
    ASSERT_EQ(self.pid, mproc__os_getpid());
    ASSERT_NE(self.start, 0);
    ASSERT_OK(mproc__os_proc_lookup(self.pid, &again));
    ASSERT_EQ(again.pid, self.pid);
    ASSERT_EQ(again.start, self.start);
    ASSERT_EQ(mproc__os_proc_alive(&self), 1);
    /* Our pid with another start time: a process that had our pid before
     * us, or will have it after us. */
    other = self;
    other.start ^= 1;
    ASSERT_EQ(mproc__os_proc_alive(&other), 0);
    ASSERT_ERR(mproc__os_proc_lookup(0, &other), MPROC_ENOENT);
    ASSERT_ERR(mproc__os_proc_lookup(-5, &other), MPROC_ENOENT);
    ASSERT_EQ(mproc__os_proc_alive(NULL), 0);
    other.pid = 0;
    ASSERT_EQ(mproc__os_proc_alive(&other), 0);

    /* A child that has exited is dead before it is reaped (a zombie has
     * ended) and after. */
    p = th_start(t_exit_now, MPROC_LIST(mproc_value_shm(m)));
    t0 = th_now_ms();
    while (st->pid == 0) {
        ASSERT_LE(th_now_ms() - t0, th_ms(20000));
        th_sleep_ms(2);
    }
    other.pid = st->pid;
    other.start = st->start;
    ASSERT_NE(other.start, 0);
    t0 = th_now_ms();
    while (mproc__os_proc_alive(&other) != 0) {
        ASSERT_LE(th_now_ms() - t0, th_ms(20000));
        th_sleep_ms(2);
    }
    ASSERT_EQ(th_join_code(p, 30000), 0);
    ASSERT_EQ(mproc__os_proc_alive(&other), 0);
    mproc_shm_destroy(m);
    return 0;
}

/* ---------------------------------------------------------------------------
 * Cancellation: a thread canceled while it holds locks is a dead owner, and
 * no function of the area is a cancellation point (a thread canceled there
 * could leave a lock it holds to a live process for ever).
 */

typedef struct cancel_objs {
    mproc_lock *l;
    mproc_rlock *r;
    mproc_cond *c;
    mproc_event *e;
    mproc_barrier *b;
    _Atomic int held;
    _Atomic int reached;
    int failed;
} cancel_objs;

static void *cancel_holder(void *arg)
{
    cancel_objs *o = (cancel_objs *)arg;
    if (mproc_lock_acquire(o->l, 0) != 0 || mproc_rlock_acquire(o->r, 0) != 0 ||
        mproc_rlock_acquire(o->r, 0) != 0 || mproc_cond_acquire(o->c, 0) != 0)
        return NULL;
    atomic_store(&o->held, 1);
    for (;;) {
        pthread_testcancel();
        th_sleep_ms(2);
    }
    return NULL;
}

TEST(L05_owner_thread_canceled)
{
    cancel_objs o;
    pthread_t t;
    void *res = NULL;
    int64_t t0;
    memset(&o, 0, sizeof o);
    o.l = make_lock();
    ASSERT_OK(mproc_rlock_create(&o.r));
    ASSERT_OK(mproc_cond_create(&o.c));
    ASSERT_EQ(pthread_create(&t, NULL, cancel_holder, &o), 0);
    t0 = th_now_ms();
    while (!atomic_load(&o.held)) {
        ASSERT_LE(th_now_ms() - t0, th_ms(10000));
        th_sleep_ms(2);
    }
    ASSERT_EQ(pthread_cancel(t), 0);
    ASSERT_EQ(pthread_join(t, &res), 0);
    ASSERT(res == PTHREAD_CANCELED);
    t0 = th_now_ms();
    ASSERT_ERR(mproc_lock_acquire(o.l, th_ms(5000)), MPROC_EOWNERDEAD);
    ASSERT_ERR(mproc_rlock_acquire(o.r, th_ms(5000)), MPROC_EOWNERDEAD);
    ASSERT_ERR(mproc_cond_acquire(o.c, th_ms(5000)), MPROC_EOWNERDEAD);
    ASSERT_LE(th_now_ms() - t0, th_ms(100));
    ASSERT_OK(mproc_lock_release(o.l));
    ASSERT_OK(mproc_rlock_release(o.r));
    ASSERT_ERR(mproc_rlock_release(o.r), MPROC_ENOTOWNER);
    ASSERT_OK(mproc_cond_release(o.c));
    mproc_lock_destroy(o.l);
    mproc_rlock_destroy(o.r);
    mproc_cond_destroy(o.c);
    return 0;
}

static _Alignas(64) unsigned char nc_word[MPROC__OS_WORD_SIZE];
static mproc__handle nc_word_h = MPROC__BADHANDLE;

/* With a cancel pending, calls the area's blocking and liveness functions;
 * every one returns (none is a cancellation point), then the thread is
 * canceled at pthread_testcancel. */
static void *no_cancel_point(void *arg)
{
    cancel_objs *o = (cancel_objs *)arg;
    mproc__proc_id self = mproc__os_proc_self();
    mproc__proc_id id;
    (void)pthread_cancel(pthread_self());
    if (mproc__os_proc_alive(&self) != 1)
        o->failed = 1;
    else if (mproc__os_proc_lookup(self.pid, &id) != 0)
        o->failed = 2;
    else if (mproc__os_word_wait(nc_word, 0, nc_word_h, 20) != MPROC_ETIMEDOUT)
        o->failed = 4;
    else if (mproc_lock_acquire(o->l, 30) != MPROC_ETIMEDOUT)
        o->failed = 5;
    else if (mproc_rlock_acquire(o->r, 30) != MPROC_ETIMEDOUT)
        o->failed = 6;
    else if (mproc_event_wait(o->e, 30) != MPROC_ETIMEDOUT)
        o->failed = 7;
    else if (mproc_barrier_wait(o->b, 60) != MPROC_EBROKEN)
        o->failed = 8;
    else if (mproc_cond_acquire(o->c, 0) != 0)
        o->failed = 9;
    else if (mproc_cond_wait(o->c, 30) != MPROC_ETIMEDOUT)
        o->failed = 10;
    else if (mproc_cond_release(o->c) != 0)
        o->failed = 11;
    atomic_store(&o->reached, 1);
    pthread_testcancel();
    return NULL;
}

TEST(backend_no_cancellation_point)
{
    cancel_objs o;
    pthread_t t;
    void *res = NULL;
    int reached;
    memset(&o, 0, sizeof o);
    o.l = make_lock();
    o.e = make_event();
    ASSERT_OK(mproc_rlock_create(&o.r));
    ASSERT_OK(mproc_cond_create(&o.c));
    ASSERT_OK(mproc_barrier_create(&o.b, 2));
    ASSERT_OK(mproc__os_word_init(nc_word, &nc_word_h));
    /* Held here, so that the thread's acquires wait. */
    ASSERT_OK(mproc_lock_acquire(o.l, 0));
    ASSERT_OK(mproc_rlock_acquire(o.r, 0));
    ASSERT_EQ(pthread_create(&t, NULL, no_cancel_point, &o), 0);
    ASSERT_EQ(pthread_join(t, &res), 0);
    reached = atomic_load(&o.reached);
    ASSERT_EQ(o.failed, 0);
    ASSERT_EQ(reached, 1); /* 0: canceled inside one of the calls */
    ASSERT(res == PTHREAD_CANCELED);
    ASSERT_OK(mproc_lock_release(o.l));
    ASSERT_OK(mproc_rlock_release(o.r));
    mproc__os_word_destroy(nc_word, nc_word_h);
    mproc_lock_destroy(o.l);
    mproc_rlock_destroy(o.r);
    mproc_cond_destroy(o.c);
    mproc_event_destroy(o.e);
    mproc_barrier_destroy(o.b);
    return 0;
}

/* ---------------------------------------------------------------------------
 * Wait words: timeouts, and a waiter killed inside word_wait
 */

TEST(backend_word_wait_timeout)
{
    static _Alignas(64) unsigned char w[MPROC__OS_WORD_SIZE];
    mproc__handle h = MPROC__BADHANDLE;
    int64_t t0, dt;
    ASSERT_OK(mproc__os_word_init(w, &h));
    ASSERT_ERR(mproc__os_word_wait(w, 0, h, 0), MPROC_ETIMEDOUT);
    ASSERT_OK(mproc__os_word_wait(w, 1, h, 1000)); /* differs: at once */
    for (int i = 0; i < 3; i++) {
        t0 = th_now_ms();
        ASSERT_ERR(mproc__os_word_wait(w, 0, h, 100), MPROC_ETIMEDOUT);
        dt = th_now_ms() - t0;
        ASSERT_GE(dt, 99);
        ASSERT_LE(dt, 100 + th_ms(200));
    }
    mproc__os_word_destroy(w, h);
    return 0;
}

#define KW_SIZE 64

static void kw_set_env(const char *name, long long v)
{
    char num[32];
    snprintf(num, sizeof num, "%lld", v);
#ifdef _WIN32
    _putenv_s(name, num);
#else
    setenv(name, num, 1);
#endif
}

static long long kw_env(const char *name)
{
    const char *s = getenv(name);
    return s ? strtoll(s, NULL, 10) : -1;
}

/* Maps the segment and waits on its word until killed. */
TEST(_sync_word_waiter)
{
    mproc__handle seg = (mproc__handle)kw_env("MPROC_TS_SEG");
    mproc__handle wh = (mproc__handle)kw_env("MPROC_TS_WORD");
    void *p = NULL;
    if (mproc__os_shm_map(seg, KW_SIZE, &p) != 0)
        return 2;
    if (mproc__os_word_open(p, wh) != 0)
        return 3;
    __atomic_store_n((int32_t *)((unsigned char *)p + 32), 1, __ATOMIC_SEQ_CST);
    for (;;)
        (void)mproc__os_word_wait(p, 0, wh, 30000);
}

/* A waiter killed in word_wait costs at most one early return of a later
 * wait, however many wakes come after it; then waiting is exact again. */
TEST(backend_word_killed_waiter)
{
    mproc__handle seg = MPROC__BADHANDLE;
    mproc__handle wh = MPROC__BADHANDLE;
    mproc__handle pass[2];
    void *p = NULL;
    char *exe = NULL;
    const char *argv[5];
    mproc__spawn_req req;
    mproc__child c;
    int early = 0;
    int64_t t0;
    ASSERT_OK(mproc__os_shm_create(KW_SIZE, &seg, &p));
    ASSERT_OK(mproc__os_word_init(p, &wh));
    kw_set_env("MPROC_TS_SEG", (long long)seg);
    kw_set_env("MPROC_TS_WORD", (long long)wh);
    pass[0] = seg;
    pass[1] = wh;
    ASSERT_OK(mproc__os_self_exe(&exe));
    argv[0] = exe;
    argv[1] = "--run";
    argv[2] = "_sync_word_waiter";
    argv[3] = "default";
    argv[4] = NULL;
    memset(&req, 0, sizeof req);
    memset(&c, 0, sizeof c);
    req.argv = argv;
    req.inherit = pass;
    req.n_inherit = wh == MPROC__BADHANDLE ? 1 : 2;
    ASSERT_OK(mproc__os_spawn(&req, &c));
    free(exe);
    t0 = th_now_ms();
    while (__atomic_load_n((int32_t *)((unsigned char *)p + 32),
                           __ATOMIC_SEQ_CST) == 0) {
        ASSERT_LE(th_now_ms() - t0, th_ms(20000));
        th_sleep_ms(2);
    }
    th_sleep_ms(th_ms(100)); /* asleep in word_wait by now */
    ASSERT_OK(mproc__os_signal(&c, MPROC__SIGKILL));
    ASSERT_OK(mproc__os_wait(&c, th_ms(10000)));
    mproc__os_child_release(&c);
    /* Wakes with nobody waiting any more. */
    for (int i = 0; i < 50; i++)
        ASSERT_OK(mproc__os_word_wake(p, wh, 1));
    for (int i = 0; i < 5; i++) {
        int rc = mproc__os_word_wait(p, 0, wh, 20);
        if (rc == 0)
            early++;
        else
            ASSERT_ERR(rc, MPROC_ETIMEDOUT);
    }
    ASSERT_LE(early, 1);
    /* And exact again: wakes without waiters leave nothing behind. */
    for (int round = 0; round < 5; round++) {
        ASSERT_OK(mproc__os_word_wake(p, wh, 1));
        ASSERT_ERR(mproc__os_word_wait(p, 0, wh, 20), MPROC_ETIMEDOUT);
    }
    mproc__os_word_destroy(p, wh);
    mproc__os_shm_unmap(p, KW_SIZE);
    mproc__os_handle_close(seg);
    return 0;
}

/* ---------------------------------------------------------------------------
 * The mutex: an unlock by a thread that does not hold it, racing with the
 * acquire of a new owner, never disturbs that owner.
 *
 * Thread D dies holding the mutex. Thread X, whose thread id the mutex
 * block names as its owner (on Windows thread ids are reused soon, so a new
 * thread can find a dead owner's id there; the test writes X's id to get
 * that state at once), tries to unlock it; the test hook runs thread T3's
 * acquire in the middle of X's unlock. X gets MPROC_ENOTOWNER, T3 owns the
 * mutex and can release it.
 */

static _Alignas(64) unsigned char ur_mutex[MPROC__OS_MUTEX_SIZE];
static mproc__handle ur_h = MPROC__BADHANDLE;
static _Thread_local int ur_in_unlock;
static _Atomic int ur_t3_state; /* 1: acquired, 2: may release, 3: done */
static int ur_t3_lock_rc;
static int ur_t3_unlock_rc;
static int ur_hook_ran;

static void *ur_die_holding(void *arg)
{
    (void)arg;
    ur_t3_lock_rc = mproc__os_mutex_lock(ur_mutex, ur_h, 0);
    return NULL;
}

static void *ur_t3(void *arg)
{
    (void)arg;
    ur_t3_lock_rc = mproc__os_mutex_lock(ur_mutex, ur_h, th_ms(5000));
    atomic_store(&ur_t3_state, 1);
    while (atomic_load(&ur_t3_state) != 2)
        th_sleep_ms(1);
    ur_t3_unlock_rc = mproc__os_mutex_unlock(ur_mutex, ur_h);
    atomic_store(&ur_t3_state, 3);
    return NULL;
}

static pthread_t ur_t3_thread;

static void ur_hook(int point)
{
    int64_t t0 = th_now_ms();
    if (point != MPROC__HOOK_MUTEX_RELEASE || !ur_in_unlock)
        return;
    ur_in_unlock = 0;
    ur_hook_ran = 1;
    if (pthread_create(&ur_t3_thread, NULL, ur_t3, NULL) != 0)
        return;
    while (atomic_load(&ur_t3_state) == 0 && th_now_ms() - t0 < 10000)
        th_sleep_ms(1);
}

TEST(backend_mutex_unlock_race_new_owner)
{
    pthread_t d;
    int rc;
    ASSERT_OK(mproc__os_mutex_init(ur_mutex, &ur_h));
    ASSERT_EQ(pthread_create(&d, NULL, ur_die_holding, NULL), 0);
    ASSERT_EQ(pthread_join(d, NULL), 0);
    ASSERT_OK(ur_t3_lock_rc);
#ifdef _WIN32
    /* The Win32 block's first field is the owner's thread id: make it
     * ours, as a recycled id would. */
    *(volatile long *)(void *)ur_mutex = (long)mproc__os_thread_id();
#endif
    mproc__test_hook = ur_hook;
    ur_in_unlock = 1;
    rc = mproc__os_mutex_unlock(ur_mutex, ur_h);
    ur_in_unlock = 0;
    mproc__test_hook = NULL;
    ASSERT_ERR(rc, MPROC_ENOTOWNER);
    if (!ur_hook_ran) {
        /* Refused before the release point: T3 takes it now. */
        ASSERT_EQ(pthread_create(&ur_t3_thread, NULL, ur_t3, NULL), 0);
        while (atomic_load(&ur_t3_state) == 0)
            th_sleep_ms(1);
    }
    ASSERT_ERR(ur_t3_lock_rc, MPROC_EOWNERDEAD);
    atomic_store(&ur_t3_state, 2);
    ASSERT_EQ(pthread_join(ur_t3_thread, NULL), 0);
    ASSERT_OK(ur_t3_unlock_rc);
    /* Free and usable. */
    ASSERT_OK(mproc__os_mutex_lock(ur_mutex, ur_h, 0));
    ASSERT_OK(mproc__os_mutex_unlock(ur_mutex, ur_h));
    mproc__os_mutex_destroy(ur_mutex, ur_h);
    return 0;
}

/* ---------------------------------------------------------------------------
 * L06: the RLock owner of a fork child's thread is not its parent's
 *
 * Right after a fork, parent and child each start one thread; both threads
 * are the same in everything a process-local token can see (thread-local
 * address, per-process counters, the clock's millisecond), and differ only
 * in their process. The parent's thread holds the RLock; the child's must
 * find it held by someone else.
 */

typedef struct tk_state {
    _Atomic int64_t held;
    _Atomic int64_t checked;
    _Atomic int64_t rc;
} tk_state;

typedef struct tk_args {
    mproc_rlock *r;
    volatile tk_state *st;
    int rc;
} tk_args;

static void *tk_child_thread(void *arg)
{
    tk_args *a = (tk_args *)arg;
    int64_t t0 = th_now_ms();
    while (!a->st->held && th_now_ms() - t0 < 20000)
        ; /* spin: the two tokens are made within one millisecond */
    a->rc = mproc_rlock_acquire(a->r, 0);
    if (a->rc == 0)
        (void)mproc_rlock_release(a->r);
    return NULL;
}

static int t_token_child(const mproc_value *args)
{
    tk_args a;
    pthread_t t;
    mproc_shm *m = arg_shm(args, 1);
    a.r = arg_rlock(args, 0);
    CHILD_CHECK(a.r != NULL && m != NULL, 2);
    a.st = (volatile tk_state *)mproc_shm_ptr(m);
    a.rc = 1000;
    CHILD_CHECK(pthread_create(&t, NULL, tk_child_thread, &a) == 0, 3);
    CHILD_CHECK(pthread_join(t, NULL) == 0, 4);
    a.st->rc = a.rc;
    a.st->checked = 1;
    return 0;
}

static void *tk_parent_thread(void *arg)
{
    tk_args *a = (tk_args *)arg;
    int64_t t0;
    a->rc = mproc_rlock_acquire(a->r, MPROC_FOREVER);
    a->st->held = 1;
    t0 = th_now_ms();
    while (!a->st->checked && th_now_ms() - t0 < 20000)
        th_sleep_ms(1);
    if (a->rc == 0)
        a->rc = mproc_rlock_release(a->r);
    return NULL;
}

TEST(L06_rlock_fork_child_token)
{
    for (int round = 0; round < 5; round++) {
        mproc_rlock *r = NULL;
        mproc_shm *m = make_shm(sizeof(tk_state));
        tk_args a;
        pthread_t t;
        mproc_process *p;
        ASSERT_OK(mproc_rlock_create(&r));
        a.r = r;
        a.st = (volatile tk_state *)mproc_shm_ptr(m);
        a.rc = 1000;
        p = th_start(t_token_child,
                     MPROC_LIST(mproc_value_rlock(r), mproc_value_shm(m)));
        ASSERT_EQ(pthread_create(&t, NULL, tk_parent_thread, &a), 0);
        ASSERT_EQ(pthread_join(t, NULL), 0);
        ASSERT_EQ(th_join_code(p, 30000), 0);
        ASSERT_OK(a.rc);
        ASSERT_EQ(a.st->checked, 1);
        ASSERT_ERR(a.st->rc, MPROC_EBUSY);
        mproc_rlock_destroy(r);
        mproc_shm_destroy(m);
    }
    return 0;
}
