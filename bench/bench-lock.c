/*
 * Lock benchmarks: acquire+release without contention, and two processes
 * taking turns on one lock.
 *
 * Raw baselines: a robust, process-shared pthread mutex and a process-shared
 * sem_t, both in anonymous shared memory (what an mproc lock can be built
 * on).
 */
#include "bench.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct shared_locks {
    pthread_mutex_t mutex;
    sem_t sem;
    volatile long counter;
    bench_race race;
} shared_locks;

static shared_locks *make_shared(void)
{
    pthread_mutexattr_t ma;
    shared_locks *s = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE,
                           MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    int rc;
    if (s == MAP_FAILED)
        bench_fail_errno("mmap");
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
    rc = pthread_mutex_init(&s->mutex, &ma);
    pthread_mutexattr_destroy(&ma);
    if (rc != 0)
        bench_fail(BENCH_ERROR, "pthread_mutex_init: %s", strerror(rc));
    BENCH_SYS(sem_init(&s->sem, 1, 1));
    return s;
}

static long uncontended_n(void)
{
    return bench_n(3000000, 500000);
}

static long contended_n(void)
{
    /* per process */
    return bench_n(2000000, 500000);
}

static void mutex_lock(shared_locks *s)
{
    int rc = pthread_mutex_lock(&s->mutex);
    if (rc == EOWNERDEAD)
        pthread_mutex_consistent(&s->mutex);
}

static void sem_lock(shared_locks *s)
{
    while (sem_wait(&s->sem) < 0 && errno == EINTR)
        ;
}

/* ------------------------------------------------------------------------
 * Uncontended
 */

static void raw_mutex(bench_result *r, const void *arg)
{
    shared_locks *s = make_shared();
    long n = uncontended_n();
    (void)arg;
    for (long i = 0; i < 1000; i++) {
        mutex_lock(s);
        pthread_mutex_unlock(&s->mutex);
    }
    BENCH_BEST_NS(r->value[0], n, {
        mutex_lock(s);
        pthread_mutex_unlock(&s->mutex);
    });
}

static void raw_sem(bench_result *r, const void *arg)
{
    shared_locks *s = make_shared();
    long n = uncontended_n();
    (void)arg;
    for (long i = 0; i < 1000; i++) {
        sem_lock(s);
        sem_post(&s->sem);
    }
    BENCH_BEST_NS(r->value[0], n, {
        sem_lock(s);
        sem_post(&s->sem);
    });
}

static void mproc_uncontended(bench_result *r, const void *arg)
{
    mproc_lock *l = NULL;
    long n = uncontended_n();
    (void)arg;
    BENCH_MPROC(mproc_lock_create(&l));
    for (long i = 0; i < 1000; i++) {
        BENCH_MPROC(mproc_lock_acquire(l, MPROC_FOREVER));
        BENCH_MPROC(mproc_lock_release(l));
    }
    BENCH_BEST_NS(r->value[0], n, {
        if (mproc_lock_acquire(l, MPROC_FOREVER) != 0 ||
            mproc_lock_release(l) != 0)
            bench_fail(BENCH_ERROR, "mproc lock failed in the loop");
    });
    mproc_lock_destroy(l);
}

/* ------------------------------------------------------------------------
 * Contended: the parent and one child each take the lock `n` times around
 * a tiny critical section, starting together (a start barrier in a shared
 * page inherited through fork, outside the timed loops); the result is
 * 2n over the longer of the two loop times.
 */

/* The mproc child (a fork) finds the race page here. */
static bench_race *mproc_race;

typedef enum { RAW_MUTEX, RAW_SEM } raw_kind;
static const raw_kind kind_mutex = RAW_MUTEX;
static const raw_kind kind_sem = RAW_SEM;

static void raw_loop(shared_locks *s, raw_kind k, long n)
{
    for (long i = 0; i < n; i++) {
        if (k == RAW_MUTEX)
            mutex_lock(s);
        else
            sem_lock(s);
        s->counter++;
        if (k == RAW_MUTEX)
            pthread_mutex_unlock(&s->mutex);
        else
            sem_post(&s->sem);
    }
}

static void raw_contended(bench_result *r, const void *arg)
{
    raw_kind k = *(const raw_kind *)arg;
    shared_locks *s = make_shared();
    long n = contended_n();
    pid_t pid = fork();
    double t0;
    if (pid < 0)
        bench_fail_errno("fork");
    if (pid == 0) {
        t0 = bench_race_start(&s->race);
        raw_loop(s, k, n);
        bench_race_end(&s->race, 1, t0);
        _exit(0);
    }
    t0 = bench_race_start(&s->race);
    raw_loop(s, k, n);
    bench_race_end(&s->race, 0, t0);
    bench_waitpid_ok(pid);
    r->value[0] = 2.0 * (double)n / bench_race_time(&s->race);
    if (s->counter != 2 * n)
        bench_fail(BENCH_ERROR, "lost updates: %ld of %ld", s->counter, 2 * n);
}

/* args: [lock, count] */
static int lock_target(const mproc_value *args)
{
    mproc_lock *l;
    int64_t n;
    volatile long local = 0;
    double t0;
    if (mproc_value_get_lock(mproc_list_get(args, 0), &l) < 0 ||
        mproc_value_get_int(mproc_list_get(args, 1), &n) < 0)
        return 2;
    t0 = bench_race_start(mproc_race);
    for (int64_t i = 0; i < n; i++) {
        if (mproc_lock_acquire(l, MPROC_FOREVER) != 0)
            return 1;
        local++;
        if (mproc_lock_release(l) != 0)
            return 1;
    }
    bench_race_end(mproc_race, 1, t0);
    return 0;
}

static void mproc_contended(bench_result *r, const void *arg)
{
    mproc_lock *l = NULL;
    long n = contended_n();
    volatile long local = 0;
    mproc_process *p;
    mproc_value *args;
    double t0;
    (void)arg;
    mproc_race = bench_race_new();
    BENCH_MPROC(mproc_lock_create(&l));
    args = MPROC_LIST(mproc_value_lock(l), mproc_int(n));
    if (!args)
        bench_fail(BENCH_ERROR, "mproc_list_from: NULL");
    p = bench_mproc_start(lock_target, args, MPROC_START_FORK);
    t0 = bench_race_start(mproc_race);
    for (long i = 0; i < n; i++) {
        if (mproc_lock_acquire(l, MPROC_FOREVER) != 0)
            bench_fail(BENCH_ERROR, "mproc_lock_acquire failed in the loop");
        local++;
        if (mproc_lock_release(l) != 0)
            bench_fail(BENCH_ERROR, "mproc_lock_release failed in the loop");
    }
    bench_race_end(mproc_race, 0, t0);
    bench_mproc_finish(p);
    r->value[0] = 2.0 * (double)n / bench_race_time(mproc_race);
    mproc_lock_destroy(l);
}

/* ------------------------------------------------------------------------ */

static const bench_impl uncontended_impls[] = {
    {"raw-mutex", raw_mutex, NULL},
    {"raw-sem", raw_sem, NULL},
    {"apr", bench_apr_lock, NULL},
    {"mproc", mproc_uncontended, NULL},
};

static const bench_impl contended_impls[] = {
    {"raw-mutex", raw_contended, &kind_mutex},
    {"raw-sem", raw_contended, &kind_sem},
    {"apr", bench_apr_lock_contended, NULL},
    {"mproc", mproc_contended, NULL},
};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

const bench_def bench_defs_lock[] = {
    {"lock-uncontended",
     1,
     {"lock-uncontended"},
     {"ns"},
     uncontended_impls,
     N_OF(uncontended_impls),
     9,
     3,
     120},
    {"lock-contended",
     1,
     {"lock-contended"},
     {"ops/s"},
     contended_impls,
     N_OF(contended_impls),
     9,
     3,
     120},
};
const size_t bench_ndefs_lock = N_OF(bench_defs_lock);
