/*
 * Process benchmarks: start+join of a no-op child (fork, spawn) and the
 * memory a started child costs.
 */
#include "bench.h"

#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int noop_target(const mproc_value *args)
{
    (void)args;
    return 0;
}

/* ------------------------------------------------------------------------
 * fork: start+join of a no-op child
 */

static void raw_fork(bench_result *r, const void *arg)
{
    long warm = 20, n = bench_n(400, 100);
    double t0 = 0;
    (void)arg;
    for (long i = 0; i < warm + n; i++) {
        pid_t pid;
        if (i == warm)
            t0 = bench_now();
        pid = fork();
        if (pid < 0)
            bench_fail_errno("fork");
        if (pid == 0)
            _exit(0);
        bench_waitpid_ok(pid);
    }
    r->value[0] = (bench_now() - t0) / (double)n * 1e6;
}

static void mproc_start_join(bench_result *r, mproc_start_method method, long n)
{
    long warm = method == MPROC_START_SPAWN ? 5 : 20;
    double t0 = 0;
    for (long i = 0; i < warm + n; i++) {
        mproc_process *p;
        if (i == warm)
            t0 = bench_now();
        p = bench_mproc_start(noop_target, NULL, method);
        bench_mproc_finish(p);
    }
    r->value[0] = (bench_now() - t0) / (double)n * 1e6;
}

static void mproc_fork(bench_result *r, const void *arg)
{
    (void)arg;
    mproc_start_join(r, MPROC_START_FORK, bench_n(400, 100));
}

/* ------------------------------------------------------------------------
 * spawn: a fresh copy of this executable
 */

static void raw_spawn(bench_result *r, const void *arg)
{
    long warm = 5, n = bench_n(150, 40);
    double t0 = 0;
    char *argv[] = {bench_exe, (char *)"child-noop", NULL};
    (void)arg;
    for (long i = 0; i < warm + n; i++) {
        pid_t pid;
        int rc;
        if (i == warm)
            t0 = bench_now();
        rc = posix_spawn(&pid, bench_exe, NULL, NULL, argv, environ);
        if (rc != 0)
            bench_fail(BENCH_ERROR, "posix_spawn: %s", strerror(rc));
        bench_waitpid_ok(pid);
    }
    r->value[0] = (bench_now() - t0) / (double)n * 1e6;
}

static void mproc_spawn(bench_result *r, const void *arg)
{
    (void)arg;
    mproc_start_join(r, MPROC_START_SPAWN, bench_n(150, 40));
}

/* ------------------------------------------------------------------------
 * memory: RSS and USS (private pages) of an idle started child
 */

static int idle_target(const mproc_value *args)
{
    (void)args;
    /* The parent kills it once measured; the bound only limits a leak. */
    bench_sleep_ms(30000);
    return 0;
}

/* The number of kB on a "Name:   123 kB" line, or -1. */
static double kb_of(const char *line, const char *name)
{
    size_t n = strlen(name);
    char *end;
    long v;
    if (strncmp(line, name, n) != 0)
        return -1;
    v = strtol(line + n, &end, 10);
    return end == line + n || v < 0 ? -1 : (double)v;
}

/* Reads Rss and Private_* of a process from smaps_rollup, in KiB. */
static void read_mem(pid_t pid, bench_result *r)
{
    char path[64], line[256];
    FILE *f;
    double rss = -1, priv = 0;
    snprintf(path, sizeof path, "/proc/%ld/smaps_rollup", (long)pid);
    f = fopen(path, "r");
    if (!f)
        bench_fail_errno(path);
    while (fgets(line, sizeof line, f)) {
        double kb;
        if ((kb = kb_of(line, "Rss:")) >= 0)
            rss = kb;
        else if ((kb = kb_of(line, "Private_Clean:")) >= 0 ||
                 (kb = kb_of(line, "Private_Dirty:")) >= 0)
            priv += kb;
    }
    fclose(f);
    if (rss < 0)
        bench_fail(BENCH_ERROR, "no Rss in %s", path);
    r->value[0] = rss;
    r->value[1] = priv;
}

static int settle_ms(void)
{
    return (int)bench_n(300, 150);
}

static void raw_fork_mem(bench_result *r, const void *arg)
{
    pid_t pid;
    (void)arg;
    pid = fork();
    if (pid < 0)
        bench_fail_errno("fork");
    if (pid == 0) {
        for (;;)
            pause();
    }
    bench_sleep_ms(settle_ms());
    read_mem(pid, r);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static void raw_spawn_mem(bench_result *r, const void *arg)
{
    pid_t pid;
    int rc;
    char *argv[] = {bench_exe, (char *)"child-idle", NULL};
    (void)arg;
    rc = posix_spawn(&pid, bench_exe, NULL, NULL, argv, environ);
    if (rc != 0)
        bench_fail(BENCH_ERROR, "posix_spawn: %s", strerror(rc));
    bench_sleep_ms(settle_ms());
    read_mem(pid, r);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static void mproc_mem(bench_result *r, mproc_start_method method)
{
    mproc_process *p = bench_mproc_start(idle_target, NULL, method);
    int64_t pid = mproc_process_pid(p);
    BENCH_MPROC(pid);
    bench_sleep_ms(settle_ms());
    read_mem((pid_t)pid, r);
    BENCH_MPROC(mproc_process_kill(p));
    BENCH_MPROC(mproc_process_join(p, 10000));
    mproc_process_destroy(p);
}

static void mproc_fork_mem(bench_result *r, const void *arg)
{
    (void)arg;
    mproc_mem(r, MPROC_START_FORK);
}

static void mproc_spawn_mem(bench_result *r, const void *arg)
{
    (void)arg;
    mproc_mem(r, MPROC_START_SPAWN);
}

/* ------------------------------------------------------------------------ */

static const bench_impl fork_impls[] = {
    {"raw", raw_fork, NULL},
    {"apr", bench_apr_fork, NULL},
    {"mproc", mproc_fork, NULL},
};

static const bench_impl spawn_impls[] = {
    {"raw", raw_spawn, NULL},
    {"apr", bench_apr_spawn, NULL},
    {"mproc", mproc_spawn, NULL},
};

static const bench_impl mem_impls[] = {
    {"raw-fork", raw_fork_mem, NULL},
    {"mproc-fork", mproc_fork_mem, NULL},
    {"raw-spawn", raw_spawn_mem, NULL},
    {"mproc-spawn", mproc_spawn_mem, NULL},
};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

const bench_def bench_defs_process[] = {
    {"process-fork",
     1,
     {"process-fork"},
     {"us"},
     fork_impls,
     N_OF(fork_impls),
     9,
     3,
     120},
    {"process-spawn",
     1,
     {"process-spawn"},
     {"us"},
     spawn_impls,
     N_OF(spawn_impls),
     9,
     3,
     120},
    {"memory",
     2,
     {"memory-child-rss", "memory-child-uss"},
     {"KiB", "KiB"},
     mem_impls,
     N_OF(mem_impls),
     3,
     1,
     60},
};
const size_t bench_ndefs_process = N_OF(bench_defs_process);
