/*
 * APR 1.x baselines: apr_proc_fork, apr_proc_create, apr_proc_mutex.
 *
 * libapr is loaded with dlopen inside the round's sandbox only: linking it
 * into mproc-bench would make every spawned copy of the program (the raw
 * and mproc spawn cases) load it too and blur what those cases measure.
 * The headers give the types; the build defines MPROC_BENCH_HAVE_APR when
 * it finds them.
 */
#include "bench.h"

#ifndef MPROC_BENCH_HAVE_APR

void bench_apr_fork(bench_result *r, const void *arg)
{
    (void)r;
    (void)arg;
    bench_fail(BENCH_ERROR, "APR headers not found at build time");
}

void bench_apr_spawn(bench_result *r, const void *arg)
{
    bench_apr_fork(r, arg);
}

void bench_apr_lock(bench_result *r, const void *arg)
{
    bench_apr_fork(r, arg);
}

void bench_apr_lock_contended(bench_result *r, const void *arg)
{
    bench_apr_fork(r, arg);
}

#else

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_proc_mutex.h>
#include <apr_thread_proc.h>

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static struct {
    apr_status_t (*initialize)(void);
    apr_status_t (*pool_create_ex)(apr_pool_t **, apr_pool_t *, apr_abortfunc_t,
                                   apr_allocator_t *);
    void (*pool_clear)(apr_pool_t *);
    apr_status_t (*proc_fork)(apr_proc_t *, apr_pool_t *);
    apr_status_t (*proc_wait)(apr_proc_t *, int *, apr_exit_why_e *,
                              apr_wait_how_e);
    apr_status_t (*procattr_create)(apr_procattr_t **, apr_pool_t *);
    apr_status_t (*procattr_cmdtype_set)(apr_procattr_t *, apr_cmdtype_e);
    apr_status_t (*proc_create)(apr_proc_t *, const char *, const char *const *,
                                const char *const *, apr_procattr_t *,
                                apr_pool_t *);
    apr_status_t (*mutex_create)(apr_proc_mutex_t **, const char *,
                                 apr_lockmech_e, apr_pool_t *);
    apr_status_t (*mutex_child_init)(apr_proc_mutex_t **, const char *,
                                     apr_pool_t *);
    apr_status_t (*mutex_lock)(apr_proc_mutex_t *);
    apr_status_t (*mutex_unlock)(apr_proc_mutex_t *);
    const char *(*mutex_name)(apr_proc_mutex_t *);
    const char *(*mutex_lockfile)(apr_proc_mutex_t *);
} apr;

static apr_pool_t *pool;

static void sym(void *lib, const char *name, void *fnptr, size_t size)
{
    void *p = dlsym(lib, name);
    if (!p)
        bench_fail(BENCH_ERROR, "APR: no symbol %s", name);
    /* ISO C has no object-to-function pointer conversion; POSIX guarantees
     * the representation is the same. */
    memcpy(fnptr, &p, size);
}

#define SYM(field, name) sym(lib, name, &apr.field, sizeof apr.field)

static void load_apr(void)
{
    void *lib = dlopen("libapr-1.so.0", RTLD_NOW | RTLD_LOCAL);
    if (!lib)
        lib = dlopen("libapr-1.so", RTLD_NOW | RTLD_LOCAL);
    if (!lib)
        bench_fail(BENCH_ERROR, "APR: %s", dlerror());
    SYM(initialize, "apr_initialize");
    SYM(pool_create_ex, "apr_pool_create_ex");
    SYM(pool_clear, "apr_pool_clear");
    SYM(proc_fork, "apr_proc_fork");
    SYM(proc_wait, "apr_proc_wait");
    SYM(procattr_create, "apr_procattr_create");
    SYM(procattr_cmdtype_set, "apr_procattr_cmdtype_set");
    SYM(proc_create, "apr_proc_create");
    SYM(mutex_create, "apr_proc_mutex_create");
    SYM(mutex_child_init, "apr_proc_mutex_child_init");
    SYM(mutex_lock, "apr_proc_mutex_lock");
    SYM(mutex_unlock, "apr_proc_mutex_unlock");
    SYM(mutex_name, "apr_proc_mutex_name");
    SYM(mutex_lockfile, "apr_proc_mutex_lockfile");
    if (apr.initialize() != APR_SUCCESS)
        bench_fail(BENCH_ERROR, "apr_initialize failed");
    if (apr.pool_create_ex(&pool, NULL, NULL, NULL) != APR_SUCCESS)
        bench_fail(BENCH_ERROR, "apr_pool_create failed");
}

static void apr_check(apr_status_t st, const char *what)
{
    if (st != APR_SUCCESS)
        bench_fail(BENCH_ERROR, "%s: APR status %d", what, (int)st);
}

static void wait_ok(apr_proc_t *proc)
{
    int code = -1;
    apr_exit_why_e why;
    apr_status_t st = apr.proc_wait(proc, &code, &why, APR_WAIT);
    if (st != APR_CHILD_DONE || why != APR_PROC_EXIT || code != 0)
        bench_fail(BENCH_ERROR, "apr_proc_wait: status %d code %d", (int)st,
                   code);
}

void bench_apr_fork(bench_result *r, const void *arg)
{
    long warm = 20, n = bench_n(400, 100);
    double t0 = 0;
    (void)arg;
    load_apr();
    for (long i = 0; i < warm + n; i++) {
        apr_proc_t proc;
        apr_status_t st;
        if (i == warm)
            t0 = bench_now();
        st = apr.proc_fork(&proc, pool);
        if (st == APR_INCHILD)
            _exit(0);
        apr_check(st == APR_INPARENT ? APR_SUCCESS : st, "apr_proc_fork");
        wait_ok(&proc);
    }
    r->value[0] = (bench_now() - t0) / (double)n * 1e6;
}

void bench_apr_spawn(bench_result *r, const void *arg)
{
    long warm = 5, n = bench_n(150, 40);
    double t0 = 0;
    const char *const argv[] = {bench_exe, "child-noop", NULL};
    apr_procattr_t *attr;
    (void)arg;
    load_apr();
    apr_check(apr.procattr_create(&attr, pool), "apr_procattr_create");
    /* execv with the environment inherited, as posix_spawn(environ). */
    apr_check(apr.procattr_cmdtype_set(attr, APR_PROGRAM_ENV),
              "apr_procattr_cmdtype_set");
    for (long i = 0; i < warm + n; i++) {
        apr_proc_t proc;
        if (i == warm)
            t0 = bench_now();
        apr_check(apr.proc_create(&proc, bench_exe, argv, NULL, attr, pool),
                  "apr_proc_create");
        wait_ok(&proc);
    }
    r->value[0] = (bench_now() - t0) / (double)n * 1e6;
}

void bench_apr_lock(bench_result *r, const void *arg)
{
    apr_proc_mutex_t *m;
    long n = bench_n(3000000, 500000);
    (void)arg;
    load_apr();
    apr_check(apr.mutex_create(&m, NULL, APR_LOCK_DEFAULT, pool),
              "apr_proc_mutex_create");
    for (long i = 0; i < 1000; i++) {
        apr.mutex_lock(m);
        apr.mutex_unlock(m);
    }
    BENCH_BEST_NS(r->value[0], n, {
        apr.mutex_lock(m);
        apr.mutex_unlock(m);
    });
    snprintf(r->note, sizeof r->note, "APR_LOCK_DEFAULT is %s",
             apr.mutex_name(m));
}

static void apr_loop(apr_proc_mutex_t *m, long n)
{
    volatile long local = 0;
    for (long i = 0; i < n; i++) {
        if (apr.mutex_lock(m) != APR_SUCCESS)
            _exit(1);
        local++;
        apr.mutex_unlock(m);
    }
}

void bench_apr_lock_contended(bench_result *r, const void *arg)
{
    apr_proc_mutex_t *m;
    apr_proc_t proc;
    apr_status_t st;
    long n = bench_n(2000000, 500000);
    bench_race *race = bench_race_new();
    double t0;
    (void)arg;
    load_apr();
    apr_check(apr.mutex_create(&m, NULL, APR_LOCK_DEFAULT, pool),
              "apr_proc_mutex_create");
    st = apr.proc_fork(&proc, pool);
    if (st == APR_INCHILD) {
        if (apr.mutex_child_init(&m, apr.mutex_lockfile(m), pool) !=
            APR_SUCCESS)
            _exit(1);
        t0 = bench_race_start(race);
        apr_loop(m, n);
        bench_race_end(race, 1, t0);
        _exit(0);
    }
    apr_check(st == APR_INPARENT ? APR_SUCCESS : st, "apr_proc_fork");
    t0 = bench_race_start(race);
    apr_loop(m, n);
    bench_race_end(race, 0, t0);
    wait_ok(&proc);
    r->value[0] = 2.0 * (double)n / bench_race_time(race);
}

#endif
