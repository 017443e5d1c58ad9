/*
 * Tests of the process area: rows P01-P33 of CONFORMANCE.md.
 *
 * Children report what they saw through their exit code (0: every check in
 * the child held; another number names the check that failed), or through a
 * pipe when a value must come back. Every target here is a function of this
 * executable, static or not, so spawn finds it too.
 */
#include "harness.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#if defined(__has_include)
#if __has_include(<sched.h>)
#include <sched.h>
#endif
#if __has_include(<unistd.h>)
#include <unistd.h>
#endif
#endif
#if !defined(_WIN32)
#include <sys/stat.h>
#endif

/* Defined in p18lib.c, a shared library linked into the runner. */
int p18_lib_target(const mproc_value *args);

static mproc_process *make(mproc_target t, mproc_value *args)
{
    mproc_process *p = NULL;
    ASSERT_OK(mproc_process_create(&p, t, args));
    ASSERT_NOT_NULL(p);
    return p;
}

/* Starts p, joins it, and returns its exit code. */
static int run_and_code(mproc_process *p)
{
    int code = -1000;
    ASSERT_OK(mproc_process_start(p));
    ASSERT_OK(mproc_process_join(p, th_ms(20000)));
    ASSERT_OK(mproc_process_exitcode(p, &code));
    return code;
}

/* Runs t(args) in a child to its end; returns its exit code. */
static int run_code(mproc_target t, mproc_value *args)
{
    mproc_process *p = make(t, args);
    int code = run_and_code(p);
    mproc_process_destroy(p);
    return code;
}

static int t_noop(const mproc_value *args)
{
    (void)args;
    return 0;
}

static int t_return_arg0(const mproc_value *args)
{
    return (int)th_arg_int(args, 0);
}

/* Sleeps until killed (at most 60 s, then fails). */
static int t_sleep_forever(const mproc_value *args)
{
    int i;
    (void)args;
    for (i = 0; i < 6000; i++)
        th_sleep_ms(10);
    return 99;
}

static int t_sleep_ms(const mproc_value *args)
{
    th_sleep_ms((int)th_arg_int(args, 0));
    return 0;
}

/* ---------------------------------------------------------------------------
 * P01-P03: running the target, exit codes
 */

static int t_p01(const mproc_value *args)
{
    const char *s = NULL;
    size_t n = 0;
    CHILD_CHECK(mproc_list_size(args) == 2, 2);
    CHILD_CHECK(th_arg_int(args, 0) == 7, 3);
    CHILD_CHECK(mproc_value_get_str(mproc_list_get(args, 1), &s, &n) == 0, 4);
    CHILD_CHECK(n == 5 && strcmp(s, "seven") == 0, 5);
    return 0;
}

TEST(P01_start_join)
{
    mproc_process *p =
        make(t_p01, MPROC_LIST(mproc_int(7), mproc_str("seven")));
    ASSERT_EQ(run_and_code(p), 0);
    p = mproc_process_destroy(p);
    ASSERT_NULL(p);
    /* No arguments: the target gets an empty list. */
    ASSERT_EQ(run_code(t_noop, NULL), 0);
    return 0;
}

TEST(P02_return_value_is_exit_code)
{
    static const int codes[] = {0, 1, 42, 200, 255};
    size_t i;
    for (i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        ASSERT_EQ(run_code(t_return_arg0, MPROC_LIST(mproc_int(codes[i]))),
                  codes[i]);
    }
    return 0;
}

static int t_exit_n(const mproc_value *args)
{
    mproc_exit((int)th_arg_int(args, 0));
    return 99; /* not reached */
}

TEST(P03_mproc_exit)
{
    ASSERT_EQ(run_code(t_exit_n, MPROC_LIST(mproc_int(7))), 7);
    ASSERT_EQ(run_code(t_exit_n, MPROC_LIST(mproc_int(0))), 0);
    return 0;
}

/* ---------------------------------------------------------------------------
 * P04-P06: terminate, kill, crashes
 */

static int signal_code(int (*sig)(mproc_process *))
{
    mproc_process *p = make(t_sleep_forever, NULL);
    int code = 0;
    ASSERT_OK(mproc_process_start(p));
    th_sleep_ms(50);
    ASSERT_OK(sig(p));
    ASSERT_OK(mproc_process_join(p, th_ms(10000)));
    ASSERT_OK(mproc_process_exitcode(p, &code));
    /* Signalling an exited child is not an error. */
    ASSERT_OK(sig(p));
    mproc_process_destroy(p);
    return code;
}

TEST(P04_terminate)
{
    ASSERT_EQ(signal_code(mproc_process_terminate), -15);
    return 0;
}

TEST(P05_kill)
{
    ASSERT_EQ(signal_code(mproc_process_kill), -9);
    return 0;
}

static int t_segfault(const mproc_value *args)
{
    volatile int *volatile bad = NULL;
    (void)args;
    // cppcheck-suppress nullPointer
    *bad = 1; /* NOLINT(clang-analyzer-core.NullDereference): the crash */
    return 0;
}

static int t_abort(const mproc_value *args)
{
    (void)args;
    abort();
}

TEST(P06_crash_does_not_hang)
{
    /* Exit codes per platform are in docs/platforms.md: -11 and -6 on
     * POSIX (a sanitizer's own handler may turn a crash into exit code 1),
     * the exception code on Windows. */
    mproc_process *p = make(t_segfault, NULL);
    int code = run_and_code(p);
    printf("segfault: exit code %d\n", code);
    ASSERT_NE(code, 0);
    mproc_process_destroy(p);
    p = make(t_abort, NULL);
    code = run_and_code(p);
    printf("abort: exit code %d\n", code);
    ASSERT_NE(code, 0);
    mproc_process_destroy(p);
    return 0;
}

/* ---------------------------------------------------------------------------
 * P07-P10: join with timeout, is_alive, misuse, pid and exit code
 */

TEST(P07_join_timeout)
{
    mproc_process *p = make(t_sleep_forever, NULL);
    int64_t t0;
    int64_t took;
    ASSERT_OK(mproc_process_start(p));
    t0 = th_now_ms();
    ASSERT_ERR(mproc_process_join(p, 200), MPROC_ETIMEDOUT);
    took = th_now_ms() - t0;
    ASSERT_GE(took, 190);
    ASSERT_LE(took, th_ms(1500));
    ASSERT_ERR(mproc_process_join(p, 0), MPROC_ETIMEDOUT);
    ASSERT_EQ(mproc_process_is_alive(p), 1);
    ASSERT_OK(mproc_process_kill(p));
    ASSERT_OK(mproc_process_join(p, th_ms(10000)));
    mproc_process_destroy(p);
    return 0;
}

TEST(P08_is_alive)
{
    mproc_process *p = make(t_sleep_ms, MPROC_LIST(mproc_int(200)));
    int64_t deadline;
    ASSERT_EQ(mproc_process_is_alive(p), 0);
    ASSERT_OK(mproc_process_start(p));
    ASSERT_EQ(mproc_process_is_alive(p), 1);
    /* Without join: is_alive itself notices the exit. */
    deadline = th_now_ms() + th_ms(10000);
    while (mproc_process_is_alive(p) == 1 && th_now_ms() < deadline)
        th_sleep_ms(5);
    ASSERT_EQ(mproc_process_is_alive(p), 0);
    ASSERT_OK(mproc_process_join(p, 0));
    ASSERT_EQ(mproc_process_is_alive(p), 0);
    mproc_process_destroy(p);
    return 0;
}

TEST(P09_lifecycle_misuse)
{
    mproc_process *p = NULL;
    int code;

    /* Bad arguments. */
    ASSERT_ERR(mproc_process_create(NULL, t_noop, NULL), MPROC_EINVAL);
    ASSERT_ERR(mproc_process_create(&p, NULL, NULL), MPROC_EINVAL);
    ASSERT_NULL(p);
    ASSERT_ERR(mproc_process_create(&p, t_noop, mproc_int(3)), MPROC_EINVAL);
    ASSERT_NULL(p);
    ASSERT_ERR(mproc_process_create_run(&p, NULL, NULL), MPROC_EINVAL);
    ASSERT_ERR(mproc_process_start(NULL), MPROC_EINVAL);
    ASSERT_ERR(mproc_process_join(NULL, 0), MPROC_EINVAL);
    ASSERT_ERR(mproc_process_is_alive(NULL), MPROC_EINVAL);
    ASSERT_ERR(mproc_process_terminate(NULL), MPROC_EINVAL);
    ASSERT_ERR(mproc_process_kill(NULL), MPROC_EINVAL);
    ASSERT_ERR(mproc_process_close(NULL), MPROC_EINVAL);
    ASSERT_ERR(mproc_process_pid(NULL), MPROC_EINVAL);
    ASSERT_ERR(mproc_process_exitcode(NULL, &code), MPROC_EINVAL);
    ASSERT_ERR(mproc_process_daemon(NULL), MPROC_EINVAL);
    ASSERT_ERR(mproc_process_set_name(NULL, "x"), MPROC_EINVAL);
    ASSERT_ERR(mproc_process_set_daemon(NULL, true), MPROC_EINVAL);
    ASSERT_ERR(mproc_process_set_start_method(NULL, MPROC_START_SPAWN),
               MPROC_EINVAL);
    ASSERT_NULL(mproc_process_name(NULL));
    ASSERT_NULL(mproc_process_state(NULL));
    ASSERT_NULL(mproc_process_destroy(NULL));
    ASSERT_ERR(mproc_active_children(NULL, 3), MPROC_EINVAL);
    ASSERT_ERR(mproc_set_start_method((mproc_start_method)7), MPROC_EINVAL);

    p = make(t_sleep_forever, NULL);
    ASSERT_ERR(mproc_process_set_name(p, NULL), MPROC_EINVAL);
    ASSERT_ERR(mproc_process_set_start_method(p, (mproc_start_method)9),
               MPROC_EINVAL);
    ASSERT_ERR(mproc_process_exitcode(p, NULL), MPROC_EINVAL);
    /* Before start. */
    ASSERT_ERR(mproc_process_join(p, 0), MPROC_ESTATE);
    ASSERT_ERR(mproc_process_join(p, -2), MPROC_EINVAL);
    ASSERT_ERR(mproc_process_terminate(p), MPROC_ESTATE);
    ASSERT_ERR(mproc_process_kill(p), MPROC_ESTATE);
    ASSERT_ERR(mproc_process_exitcode(p, &code), MPROC_ENOTEXITED);
    /* Running. */
    ASSERT_OK(mproc_process_start(p));
    ASSERT_ERR(mproc_process_start(p), MPROC_ESTATE);
    ASSERT_ERR(mproc_process_join(p, -5), MPROC_EINVAL);
    ASSERT_ERR(mproc_process_close(p), MPROC_ESTATE);
    ASSERT_ERR(mproc_process_set_name(p, "late"), MPROC_ESTATE);
    ASSERT_ERR(mproc_process_set_daemon(p, true), MPROC_ESTATE);
    ASSERT_ERR(mproc_process_set_start_method(p, MPROC_START_SPAWN),
               MPROC_ESTATE);
    ASSERT_OK(mproc_process_kill(p));
    ASSERT_OK(mproc_process_join(p, th_ms(10000)));
    ASSERT_ERR(mproc_process_start(p), MPROC_ESTATE);
    /* Closed. */
    ASSERT_OK(mproc_process_close(p));
    ASSERT_ERR(mproc_process_close(p), MPROC_ECLOSED);
    ASSERT_ERR(mproc_process_start(p), MPROC_ECLOSED);
    ASSERT_ERR(mproc_process_join(p, 0), MPROC_ECLOSED);
    ASSERT_ERR(mproc_process_is_alive(p), MPROC_ECLOSED);
    ASSERT_ERR(mproc_process_terminate(p), MPROC_ECLOSED);
    ASSERT_ERR(mproc_process_kill(p), MPROC_ECLOSED);
    ASSERT_ERR(mproc_process_exitcode(p, &code), MPROC_ECLOSED);
    ASSERT_ERR(mproc_process_pid(p), MPROC_ECLOSED);
    ASSERT_ERR(mproc_process_set_name(p, "x"), MPROC_ECLOSED);
    ASSERT_ERR(mproc_process_daemon(p), MPROC_ECLOSED);
    p = mproc_process_destroy(p);

    /* Close of a process that never started is fine. */
    p = make(t_noop, NULL);
    ASSERT_OK(mproc_process_close(p));
    ASSERT_ERR(mproc_process_start(p), MPROC_ECLOSED);
    mproc_process_destroy(p);

    /* The current process cannot be started, joined or signalled. */
    ASSERT_ERR(mproc_process_start(mproc_current_process()), MPROC_ESTATE);
    ASSERT_ERR(mproc_process_join(mproc_current_process(), 0), MPROC_ESTATE);
    ASSERT_ERR(mproc_process_kill(mproc_current_process()), MPROC_ESTATE);
    ASSERT_NULL(mproc_process_destroy(mproc_current_process()));
    ASSERT_STR_EQ(mproc_process_name(mproc_current_process()), "MainProcess");
    return 0;
}

TEST(P10_pid_and_exitcode)
{
    mproc_process *p = make(t_sleep_forever, NULL);
    int code = 12345;
    ASSERT_ERR(mproc_process_pid(p), MPROC_ESTATE);
    ASSERT_OK(mproc_process_start(p));
    ASSERT_GT(mproc_process_pid(p), 0);
    ASSERT_NE(mproc_process_pid(p), mproc_process_pid(mproc_current_process()));
    ASSERT_ERR(mproc_process_exitcode(p, &code), MPROC_ENOTEXITED);
    ASSERT_EQ(code, 12345);
    ASSERT_OK(mproc_process_kill(p));
    ASSERT_OK(mproc_process_join(p, th_ms(10000)));
    ASSERT_GT(mproc_process_pid(p), 0);
    ASSERT_OK(mproc_process_exitcode(p, &code));
    ASSERT_EQ(code, -9);
    mproc_process_destroy(p);
    return 0;
}

/* ---------------------------------------------------------------------------
 * P11-P13: names, parent, active children
 */

/* Sends [name, pid, daemon] of the current process through args[0]. */
static int t_report_self(const mproc_value *args)
{
    mproc_conn *c = NULL;
    mproc_process *me = mproc_current_process();
    mproc_value *v;
    int rc;
    CHILD_CHECK(mproc_value_get_conn(mproc_list_get(args, 0), &c) == 0, 2);
    v = MPROC_LIST(mproc_str(mproc_process_name(me)),
                   mproc_int(mproc_process_pid(me)),
                   mproc_bool(mproc_process_daemon(me) == 1),
                   mproc_int(mproc_process_is_alive(me)));
    rc = mproc_conn_send(c, v);
    mproc_value_free(v);
    return rc == 0 ? 0 : 3;
}

/* A child's children: named after the child's identity, counter from 1. */
static int t_nested_names(const mproc_value *args)
{
    mproc_process *a = NULL, *b = NULL;
    (void)args;
    CHILD_CHECK(mproc_process_create(&a, t_noop, NULL) == 0, 2);
    CHILD_CHECK(mproc_process_create(&b, t_noop, NULL) == 0, 3);
    CHILD_CHECK(strcmp(mproc_process_name(a), "Process-1:1") == 0, 4);
    CHILD_CHECK(strcmp(mproc_process_name(b), "Process-1:2") == 0, 5);
    CHILD_CHECK(mproc_process_start(a) == 0, 6);
    CHILD_CHECK(mproc_process_join(a, MPROC_FOREVER) == 0, 7);
    mproc_process_destroy(a);
    mproc_process_destroy(b);
    return 0;
}

TEST(P11_names)
{
    mproc_process *p1 = make(t_nested_names, NULL);
    mproc_process *p2 = make(t_report_self, NULL);
    mproc_process *p3;
    mproc_conn *r = NULL, *w = NULL;
    mproc_value *v = NULL;
    const char *s = NULL;
    size_t n;
    bool daemon = true;

    ASSERT_STR_EQ(mproc_process_name(p1), "Process-1");
    ASSERT_STR_EQ(mproc_process_name(p2), "Process-2");
    ASSERT_EQ(run_and_code(p1), 0);
    mproc_process_destroy(p2);

    /* A custom name is kept, and the child sees it and its pid. */
    ASSERT_OK(mproc_pipe(&r, &w, false));
    ASSERT_OK(mproc_process_create(&p3, t_report_self,
                                   MPROC_LIST(mproc_value_conn(w))));
    ASSERT_STR_EQ(mproc_process_name(p3), "Process-3");
    ASSERT_OK(mproc_process_set_name(p3, "worker \xc3\xa9"));
    ASSERT_STR_EQ(mproc_process_name(p3), "worker \xc3\xa9");
    ASSERT_OK(mproc_process_start(p3));
    ASSERT_OK(mproc_conn_recv(r, &v, th_ms(10000)));
    ASSERT_OK(mproc_value_get_str(mproc_list_get(v, 0), &s, &n));
    ASSERT_STR_EQ(s, "worker \xc3\xa9");
    ASSERT_EQ(th_arg_int(v, 1), mproc_process_pid(p3));
    ASSERT_OK(mproc_value_get_bool(mproc_list_get(v, 2), &daemon));
    ASSERT(!daemon);
    ASSERT_EQ(th_arg_int(v, 3), 1);
    mproc_value_free(v);
    ASSERT_OK(mproc_process_join(p3, th_ms(10000)));
    ASSERT_STR_EQ(mproc_process_name(p3), "worker \xc3\xa9");
    mproc_process_destroy(p3);
    mproc_process_destroy(p1);
    mproc_conn_destroy(r);
    mproc_conn_destroy(w);
    return 0;
}

static int t_check_parent(const mproc_value *args)
{
    mproc_process *pp = mproc_parent_process();
    CHILD_CHECK(pp != NULL, 2);
    CHILD_CHECK(mproc_process_pid(pp) == th_arg_int(args, 0), 3);
    CHILD_CHECK(mproc_process_is_alive(pp) == 1, 4);
    CHILD_CHECK(mproc_process_join(pp, 0) == MPROC_ETIMEDOUT, 5);
    CHILD_CHECK(strcmp(mproc_process_name(pp), "MainProcess") == 0, 6);
    return 0;
}

/* Grandchild: says "alive", waits for its parent to die, says "dead". */
static int t_watch_parent(const mproc_value *args)
{
    mproc_conn *w = NULL;
    mproc_process *pp = mproc_parent_process();
    int64_t deadline = th_now_ms() + th_ms(20000);
    CHILD_CHECK(mproc_value_get_conn(mproc_list_get(args, 0), &w) == 0, 2);
    CHILD_CHECK(pp != NULL && mproc_process_is_alive(pp) == 1, 3);
    CHILD_CHECK(mproc_conn_send_bytes(w, "alive", 5) == 0, 4);
    while (mproc_process_is_alive(pp) == 1 && th_now_ms() < deadline)
        th_sleep_ms(5);
    CHILD_CHECK(mproc_process_is_alive(pp) == 0, 5);
    CHILD_CHECK(mproc_process_join(pp, 0) == 0, 6);
    CHILD_CHECK(mproc_conn_send_bytes(w, "dead", 4) == 0, 7);
    return 0;
}

/* Starts the watcher with args[0], then sleeps until killed. */
static int t_start_then_sleep(const mproc_value *args)
{
    mproc_process *g = NULL;
    mproc_conn *w = NULL;
    CHILD_CHECK(mproc_value_get_conn(mproc_list_get(args, 0), &w) == 0, 2);
    CHILD_CHECK(mproc_process_create(&g, t_watch_parent,
                                     MPROC_LIST(mproc_value_conn(w))) == 0,
                3);
    CHILD_CHECK(mproc_process_start(g) == 0, 4);
    mproc_conn_close(w);
    return t_sleep_forever(NULL);
}

TEST(P12_parent_process)
{
    mproc_process *mid;
    mproc_conn *r = NULL, *w = NULL;
    char buf[16];
    size_t n = 0;
    int64_t me;

    ASSERT_NULL(mproc_parent_process());
    me = mproc_process_pid(mproc_current_process());
    ASSERT_EQ(run_code(t_check_parent, MPROC_LIST(mproc_int(me))), 0);

    /* The parent of a grandchild is killed: the grandchild notices. */
    ASSERT_OK(mproc_pipe(&r, &w, false));
    mid = make(t_start_then_sleep, MPROC_LIST(mproc_value_conn(w)));
    ASSERT_OK(mproc_process_start(mid));
    mproc_conn_close(w);
    ASSERT_OK(mproc_conn_recv_bytes(r, buf, sizeof buf, &n, th_ms(10000)));
    ASSERT_EQ(n, 5);
    ASSERT_MEM_EQ(buf, "alive", 5);
    ASSERT_OK(mproc_process_kill(mid));
    ASSERT_OK(mproc_process_join(mid, th_ms(10000)));
    ASSERT_OK(mproc_conn_recv_bytes(r, buf, sizeof buf, &n, th_ms(10000)));
    ASSERT_EQ(n, 4);
    ASSERT_MEM_EQ(buf, "dead", 4);
    mproc_process_destroy(mid);
    mproc_conn_destroy(r);
    mproc_conn_destroy(w);
    return 0;
}

TEST(P13_active_children)
{
    mproc_process *quick1 = make(t_noop, NULL);
    mproc_process *quick2 = make(t_noop, NULL);
    mproc_process *slow = make(t_sleep_forever, NULL);
    mproc_process *detached = make(t_sleep_forever, NULL);
    mproc_process *list[8];
    int64_t deadline;
    int n, code = -1, i;

    ASSERT_EQ(mproc_active_children(NULL, 0), 0);
    ASSERT_OK(mproc_process_start(quick1));
    ASSERT_OK(mproc_process_start(quick2));
    ASSERT_OK(mproc_process_start(slow));
    ASSERT_GE(mproc_active_children(NULL, 0), 1);
    /* The quick ones end by themselves; nobody joins them. */
    deadline = th_now_ms() + th_ms(10000);
    while ((n = mproc_active_children(NULL, 0)) > 1 && th_now_ms() < deadline)
        th_sleep_ms(5);
    ASSERT_EQ(n, 1);
    n = mproc_active_children(list, 8);
    ASSERT_EQ(n, 1);
    ASSERT(list[0] == slow);
    mproc_process_destroy(list[0]);
    /* They were reaped: their exit codes are known without a join. */
    ASSERT_OK(mproc_process_exitcode(quick1, &code));
    ASSERT_EQ(code, 0);
    ASSERT_EQ(mproc_process_is_alive(quick2), 0);

    /* A destroyed running process stays listed, and can be ended. */
    ASSERT_OK(mproc_process_start(detached));
    mproc_process_destroy(detached);
    n = mproc_active_children(list, 1);
    ASSERT_EQ(n, 2);
    mproc_process_destroy(list[0]);
    n = mproc_active_children(list, 8);
    ASSERT_EQ(n, 2);
    for (i = 0; i < n; i++) {
        ASSERT_OK(mproc_process_kill(list[i]));
        ASSERT_OK(mproc_process_join(list[i], th_ms(10000)));
        mproc_process_destroy(list[i]);
    }
    ASSERT_EQ(mproc_active_children(NULL, 0), 0);
    ASSERT_EQ(mproc_process_is_alive(slow), 0);
    mproc_process_destroy(quick1);
    mproc_process_destroy(quick2);
    mproc_process_destroy(slow);
    return 0;
}

/* ---------------------------------------------------------------------------
 * P14: CPU counts
 */

static int t_usable(const mproc_value *args)
{
    (void)args;
    return mproc_cpu_count_usable();
}

TEST(P14_cpu_count)
{
    int n = mproc_cpu_count();
    int u = mproc_cpu_count_usable();
    ASSERT_GE(n, 1);
    ASSERT_GE(u, 1);
    ASSERT_LE(u, n);
#if defined(_SC_NPROCESSORS_ONLN)
    ASSERT_EQ(n, sysconf(_SC_NPROCESSORS_ONLN));
#endif
    /* Both platforms have an affinity call (tests/runner-*.c). */
    ASSERT_EQ(th_platform_pin_to_one_cpu(), 0);
    ASSERT_EQ(mproc_cpu_count_usable(), 1);
    ASSERT_EQ(mproc_cpu_count(), n);
    /* A child inherits the pinning. */
    ASSERT_EQ(run_code(t_usable, NULL), 1);
    return 0;
}

/* ---------------------------------------------------------------------------
 * P15-P16: daemons
 */

/* Daemon grandchild: says "up", then waits to be killed with its parent. */
static int t_daemon_wait(const mproc_value *args)
{
    mproc_conn *w = NULL;
    CHILD_CHECK(mproc_value_get_conn(mproc_list_get(args, 0), &w) == 0, 2);
    CHILD_CHECK(mproc_process_daemon(mproc_current_process()) == 1, 3);
    CHILD_CHECK(mproc_conn_send_bytes(w, "up", 2) == 0, 4);
    return t_sleep_forever(NULL);
}

/* Starts a daemon with args[0], then waits for a word on args[1] (the
 * pipe end of the test's top process) and returns. */
static int t_start_daemon(const mproc_value *args)
{
    mproc_process *d = NULL;
    mproc_conn *w = NULL, *ctl = NULL;
    char word[8];
    size_t n = 0;
    CHILD_CHECK(mproc_value_get_conn(mproc_list_get(args, 0), &w) == 0, 2);
    CHILD_CHECK(mproc_value_get_conn(mproc_list_get(args, 1), &ctl) == 0, 3);
    CHILD_CHECK(mproc_process_create(&d, t_daemon_wait,
                                     MPROC_LIST(mproc_value_conn(w))) == 0,
                4);
    CHILD_CHECK(mproc_process_set_daemon(d, true) == 0, 5);
    CHILD_CHECK(mproc_process_start(d) == 0, 6);
    mproc_conn_close(w);
    CHILD_CHECK(
        mproc_conn_recv_bytes(ctl, word, sizeof word, &n, th_ms(20000)) == 0,
        7);
    /* Returning: the exit hook terminates the daemon. */
    return 0;
}

/* A P15 run: `mid` runs a target that gets (w, ctl_there) and starts a
 * daemon holding w, the last writer of r. */
typedef struct daemon_rig {
    mproc_process *mid;
    mproc_conn *r, *w, *ctl_here, *ctl_there;
} daemon_rig;

/* Starts mid with `target` and waits until the daemon runs (it says so on
 * r). */
static void daemon_rig_start(daemon_rig *d, mproc_target target)
{
    char buf[8];
    size_t n = 0;

    memset(d, 0, sizeof *d);
    ASSERT_OK(mproc_pipe(&d->r, &d->w, false));
    ASSERT_OK(mproc_pipe(&d->ctl_here, &d->ctl_there, true));
    d->mid = make(target, MPROC_LIST(mproc_value_conn(d->w),
                                     mproc_value_conn(d->ctl_there)));
    ASSERT_OK(mproc_process_start(d->mid));
    mproc_conn_close(d->w);
    mproc_conn_close(d->ctl_there);
    /* The daemon runs. */
    ASSERT_OK(mproc_conn_recv_bytes(d->r, buf, sizeof buf, &n, th_ms(10000)));
    ASSERT_EQ(n, 2);
}

/* Joins mid (exit code `code`), checks the daemon died with it within 5 s
 * of t0, and frees the rig. */
static void daemon_rig_finish(daemon_rig *d, int code, int64_t t0)
{
    char buf[8];
    size_t n = 0;
    int got = -1;

    ASSERT_OK(mproc_process_join(d->mid, th_ms(10000)));
    ASSERT_OK(mproc_process_exitcode(d->mid, &got));
    ASSERT_EQ(got, code);
    /* The daemon held the last writer: its death is end-of-file here. */
    ASSERT_ERR(mproc_conn_recv_bytes(d->r, buf, sizeof buf, &n, th_ms(10000)),
               MPROC_EEOF);
    ASSERT_LE(th_now_ms() - t0, th_ms(5000));
    mproc_process_destroy(d->mid);
    mproc_conn_destroy(d->r);
    mproc_conn_destroy(d->w);
    mproc_conn_destroy(d->ctl_here);
    mproc_conn_destroy(d->ctl_there);
}

static void daemon_case(bool kill_parent)
{
    daemon_rig d;
    int64_t t0;

    daemon_rig_start(&d, t_start_daemon);
    t0 = th_now_ms();
    if (kill_parent)
        ASSERT_OK(mproc_process_kill(d.mid));
    else
        ASSERT_OK(mproc_conn_send_bytes(d.ctl_here, "go", 2));
    daemon_rig_finish(&d, kill_parent ? -9 : 0, t0);
}

TEST(P15_daemon_dies_with_parent)
{
    daemon_case(false); /* the parent returns normally */
    daemon_case(true);  /* the parent is SIGKILLed */
    return 0;
}

/* A thread of the daemon's parent starts the daemon and ends at once: the
 * daemon must live on, since its parent still runs. */
static void *p15_thread(void *arg)
{
    mproc_conn *w = arg;
    mproc_process *d = NULL;
    if (mproc_process_create(&d, t_daemon_wait,
                             MPROC_LIST(mproc_value_conn(w))) != 0 ||
        mproc_process_set_daemon(d, true) != 0 || mproc_process_start(d) != 0)
        return (void *)(intptr_t)1;
    mproc_process_destroy(d); /* still running: the registry keeps it */
    return NULL;
}

/* Starts a daemon from a short-lived thread with args[0], says "gone" on
 * args[1] once that thread has ended, then waits to be killed. */
static int t_start_daemon_thread(const mproc_value *args)
{
    mproc_conn *w = NULL, *ctl = NULL;
    pthread_t t;
    void *res = (void *)(intptr_t)7;
    CHILD_CHECK(mproc_value_get_conn(mproc_list_get(args, 0), &w) == 0, 2);
    CHILD_CHECK(mproc_value_get_conn(mproc_list_get(args, 1), &ctl) == 0, 3);
    CHILD_CHECK(pthread_create(&t, NULL, p15_thread, w) == 0, 4);
    CHILD_CHECK(pthread_join(t, &res) == 0 && res == NULL, 5);
    mproc_conn_close(w);
    CHILD_CHECK(mproc_conn_send_bytes(ctl, "gone", 4) == 0, 6);
    return t_sleep_forever(NULL);
}

TEST(P15_daemon_started_from_thread)
{
    daemon_rig d;
    char buf[8];
    size_t n = 0;
    int64_t t0;

    daemon_rig_start(&d, t_start_daemon_thread);
    ASSERT_OK(
        mproc_conn_recv_bytes(d.ctl_here, buf, sizeof buf, &n, th_ms(10000)));
    ASSERT_EQ(n, 4);
    /* The starting thread has ended; the daemon holds the last writer of
     * r, so its death would read as end-of-file here. */
    ASSERT_EQ(mproc_conn_poll(d.r, th_ms(300)), 0);
    ASSERT_EQ(mproc_process_is_alive(d.mid), 1);
    /* Now its parent is SIGKILLed: the daemon follows. */
    t0 = th_now_ms();
    ASSERT_OK(mproc_process_kill(d.mid));
    daemon_rig_finish(&d, -9, t0);
    return 0;
}

static int t_daemon_starts(const mproc_value *args)
{
    mproc_process *c = NULL;
    (void)args;
    CHILD_CHECK(mproc_process_daemon(mproc_current_process()) == 1, 2);
    CHILD_CHECK(mproc_process_create(&c, t_noop, NULL) == 0, 3);
    CHILD_CHECK(mproc_process_start(c) == MPROC_EDAEMON, 4);
    CHILD_CHECK(mproc_process_is_alive(c) == 0, 5);
    mproc_process_destroy(c);
    return 0;
}

TEST(P16_daemon_cannot_start_children)
{
    mproc_process *p = make(t_daemon_starts, NULL);
    ASSERT_EQ(mproc_process_daemon(p), 0);
    ASSERT_OK(mproc_process_set_daemon(p, true));
    ASSERT_EQ(mproc_process_daemon(p), 1);
    ASSERT_EQ(run_and_code(p), 0);
    mproc_process_destroy(p);
    return 0;
}

/* ---------------------------------------------------------------------------
 * P17: arguments and handles
 */

#define P17_SHM_MAGIC 0x5a17u

static int t_p17(const mproc_value *args)
{
    bool b = false;
    double f = 0;
    const char *s = NULL;
    const void *bytes = NULL;
    size_t n = 0;
    const mproc_value *nested;
    mproc_conn *c = NULL;
    mproc_queue *q = NULL;
    mproc_lock *l = NULL;
    mproc_shm *m = NULL;
    mproc_value *v;
    int rc;

    CHILD_CHECK(mproc_list_size(args) == 11, 2);
    CHILD_CHECK(th_arg_int(args, 0) == INT64_MIN, 3);
    CHILD_CHECK(
        mproc_value_get_float(mproc_list_get(args, 1), &f) == 0 && f == 2.5, 4);
    CHILD_CHECK(mproc_value_get_bool(mproc_list_get(args, 2), &b) == 0 && b, 5);
    CHILD_CHECK(mproc_value_type(mproc_list_get(args, 3)) == MPROC_TYPE_NONE,
                6);
    CHILD_CHECK(mproc_value_get_str(mproc_list_get(args, 4), &s, &n) == 0 &&
                    n == 6 && memcmp(s, "h\0llo!", 6) == 0,
                7);
    CHILD_CHECK(mproc_value_get_bytes(mproc_list_get(args, 5), &bytes, &n) ==
                        0 &&
                    n == 3 && memcmp(bytes, "\x00\xff\x01", 3) == 0,
                8);
    nested = mproc_list_get(args, 6);
    CHILD_CHECK(mproc_list_size(nested) == 2 &&
                    mproc_list_size(mproc_list_get(nested, 1)) == 1 &&
                    th_arg_int(mproc_list_get(nested, 1), 0) == 42,
                9);
    CHILD_CHECK(mproc_value_get_conn(mproc_list_get(args, 7), &c) == 0, 10);
    CHILD_CHECK(mproc_value_get_queue(mproc_list_get(args, 8), &q) == 0, 11);
    CHILD_CHECK(mproc_value_get_lock(mproc_list_get(args, 9), &l) == 0, 12);
    CHILD_CHECK(mproc_value_get_shm(mproc_list_get(args, 10), &m) == 0, 13);

    v = mproc_str("via pipe");
    rc = mproc_conn_send(c, v);
    mproc_value_free(v);
    CHILD_CHECK(rc == 0, 14);
    v = MPROC_LIST(mproc_int(42), mproc_none(), mproc_str("hello"));
    rc = mproc_queue_put(q, v, th_ms(10000));
    mproc_value_free(v);
    CHILD_CHECK(rc == 0, 15);
    CHILD_CHECK(mproc_lock_acquire(l, th_ms(10000)) == 0, 16);
    CHILD_CHECK(mproc_shm_size(m) >= sizeof(uint32_t), 17);
    *(volatile uint32_t *)mproc_shm_ptr(m) = P17_SHM_MAGIC;
    CHILD_CHECK(mproc_lock_release(l) == 0, 18);
    return 0;
}

TEST(P17_arguments_and_handles)
{
    mproc_conn *r = NULL, *w = NULL;
    mproc_queue *q = NULL;
    mproc_lock *l = NULL;
    mproc_shm *m = NULL;
    mproc_value *args, *v = NULL, *want;
    mproc_process *p;
    const char *s = NULL;
    size_t n = 0;

    ASSERT_OK(mproc_pipe(&r, &w, false));
    ASSERT_OK(mproc_queue_create(&q, 0));
    ASSERT_OK(mproc_lock_create(&l));
    ASSERT_OK(mproc_shm_create(&m, 4096));
    args = MPROC_LIST(mproc_int(INT64_MIN), mproc_float(2.5), mproc_bool(true),
                      mproc_none(), mproc_strn("h\0llo!", 6),
                      mproc_bytes("\x00\xff\x01", 3),
                      MPROC_LIST(mproc_str("a"), MPROC_LIST(mproc_int(42))),
                      mproc_value_conn(w), mproc_value_queue(q),
                      mproc_value_lock(l), mproc_value_shm(m));
    ASSERT_NOT_NULL(args);
    p = make(t_p17, args);
    ASSERT_OK(mproc_process_start(p));
    ASSERT_OK(mproc_conn_recv(r, &v, th_ms(10000)));
    ASSERT_OK(mproc_value_get_str(v, &s, &n));
    ASSERT_STR_EQ(s, "via pipe");
    mproc_value_free(v);
    ASSERT_OK(mproc_queue_get(q, &v, th_ms(10000)));
    want = MPROC_LIST(mproc_int(42), mproc_none(), mproc_str("hello"));
    ASSERT(mproc_value_equal(v, want));
    mproc_value_free(v);
    mproc_value_free(want);
    ASSERT_OK(mproc_process_join(p, th_ms(10000)));
    {
        int code = -1;
        ASSERT_OK(mproc_process_exitcode(p, &code));
        ASSERT_EQ(code, 0);
    }
    ASSERT_OK(mproc_lock_acquire(l, 0));
    ASSERT_EQ(*(volatile uint32_t *)mproc_shm_ptr(m), P17_SHM_MAGIC);
    ASSERT_OK(mproc_lock_release(l));
    mproc_process_destroy(p);
    mproc_conn_destroy(r);
    mproc_conn_destroy(w);
    mproc_queue_destroy(q);
    mproc_lock_destroy(l);
    mproc_shm_destroy(m);
    return 0;
}

/* ---------------------------------------------------------------------------
 * P18-P19: where targets live; start failures
 */

static int t_static_target(const mproc_value *args)
{
    return 40 + (int)th_arg_int(args, 0);
}

TEST(P18_targets_in_library_and_static)
{
    ASSERT_EQ(run_code(p18_lib_target, MPROC_LIST(mproc_int(5))), 23);
    ASSERT_EQ(run_code(t_static_target, MPROC_LIST(mproc_int(2))), 42);
    return 0;
}

static mproc_target bogus_target(void)
{
    /* An address in no module: heap memory. */
    static char *heap;
    mproc_target t;
    uintptr_t a;
    if (heap == NULL)
        heap = malloc(64);
    a = (uintptr_t)heap;
    memcpy(&t, &a, sizeof t);
    return t;
}

TEST(P19_start_failures)
{
    mproc_process *p;
    int code;
    int before;

    /* A first start warms up what the library keeps for the process (fork
     * children's null device). */
    ASSERT_EQ(run_code(t_noop, NULL), 0);
    before = th_open_handles();
    if (th_method() == MPROC_START_SPAWN) {
        /* A target no child can find. */
        p = make(bogus_target(), NULL);
        ASSERT_ERR(mproc_process_start(p), MPROC_ERESOLVE);
        ASSERT_EQ(mproc_process_is_alive(p), 0);
        ASSERT_ERR(mproc_process_exitcode(p, &code), MPROC_ENOTEXITED);
        mproc_process_destroy(p);
        /* An executable that cannot start. */
        ASSERT_OK(mproc_set_executable("no-such-dir/no-such-program"));
        p = make(t_noop, NULL);
        ASSERT_ERR(mproc_process_start(p), MPROC_EEXEC);
        ASSERT_EQ(mproc_process_is_alive(p), 0);
        ASSERT_OK(mproc_set_executable(NULL));
        /* The same object can start once the cause is gone. */
        ASSERT_EQ(run_and_code(p), 0);
        mproc_process_destroy(p);
    } else {
        /* The fork analogue: fork runs no executable, so the setting is
         * ignored and the child runs. */
        ASSERT_OK(mproc_set_executable("no-such-dir/no-such-program"));
        ASSERT_EQ(run_code(t_noop, NULL), 0);
        ASSERT_OK(mproc_set_executable(NULL));
    }
    ASSERT_EQ(mproc_active_children(NULL, 0), 0);
    ASSERT_EQ(th_open_handles(), before);
    return 0;
}

/* ---------------------------------------------------------------------------
 * P20-P23: descriptors, many children, stdio, threads
 */

/* Returns how many handles it holds beyond the standard three and the
 * pipe end it was given (0 is right). */
static int t_count_handles(const mproc_value *args)
{
    mproc_conn *c = NULL;
    int n = th_open_handles();
    CHILD_CHECK(mproc_value_get_conn(mproc_list_get(args, 0), &c) == 0, 100);
    CHILD_CHECK(mproc_conn_send_bytes(c, "x", 1) == 0, 101);
    if (n < 0)
        return 0; /* the platform cannot count them */
    return n > 4 ? n - 4 : 0;
}

TEST(P20_no_inherited_handles)
{
    mproc_conn *ends[16];
    mproc_queue *q = NULL;
    mproc_process *p;
    char c;
    size_t n;
    int i;

    /* Plenty of the parent's own handles that must not reach the child. */
    for (i = 0; i < 16; i += 2)
        ASSERT_OK(mproc_pipe(&ends[i], &ends[i + 1], true));
    ASSERT_OK(mproc_queue_create(&q, 0));
    p = make(t_count_handles, MPROC_LIST(mproc_value_conn(ends[1])));
    ASSERT_EQ(run_and_code(p), 0);
    ASSERT_OK(mproc_conn_recv_bytes(ends[0], &c, 1, &n, th_ms(1000)));
    mproc_process_destroy(p);
    for (i = 0; i < 16; i++)
        mproc_conn_destroy(ends[i]);
    mproc_queue_destroy(q);
    return 0;
}

TEST(P21_many_children)
{
    mproc_process *ps[64];
    int before, i, code;

    for (i = 0; i < 64; i++) {
        ps[i] = make(t_return_arg0, MPROC_LIST(mproc_int(i)));
        ASSERT_OK(mproc_process_start(ps[i]));
    }
    ASSERT_EQ(mproc_active_children(NULL, 0) <= 64, 1);
    for (i = 0; i < 64; i++) {
        ASSERT_OK(mproc_process_join(ps[i], th_ms(30000)));
        ASSERT_OK(mproc_process_exitcode(ps[i], &code));
        ASSERT_EQ(code, i);
        ps[i] = mproc_process_destroy(ps[i]);
    }
    ASSERT_EQ(mproc_active_children(NULL, 0), 0);

    /* Warm up once, then nothing may grow over 1000 more. */
    ps[0] = make(t_noop, NULL);
    ASSERT_EQ(run_and_code(ps[0]), 0);
    mproc_process_destroy(ps[0]);
    before = th_open_handles();
    for (i = 0; i < 1000; i++) {
        mproc_process *p = make(t_noop, NULL);
        int rc = mproc_process_start(p);
        if (rc < 0)
            printf("start %d of 1000 failed (%d open handles, %d before)\n", i,
                   th_open_handles(), before);
        ASSERT_OK(rc);
        ASSERT_OK(mproc_process_join(p, th_ms(30000)));
        ASSERT_OK(mproc_process_exitcode(p, &code));
        ASSERT_EQ(code, 0);
        ASSERT_OK(mproc_process_close(p));
        mproc_process_destroy(p);
    }
    ASSERT_EQ(th_open_handles(), before);
    ASSERT_EQ(mproc_active_children(NULL, 0), 0);
    return 0;
}

static int t_print(const mproc_value *args)
{
    (void)args;
    /* No newline, no flush: the library flushes when the target returns. */
    fputs("child-output", stdout);
    return 0;
}

TEST(P22_stdio_flush)
{
    char path[64], buf[256];
    FILE *f;
    size_t n;
    snprintf(path, sizeof path, "mproc-p22-%lld.txt",
             (long long)mproc_process_pid(mproc_current_process()));
    ASSERT_NOT_NULL(freopen(path, "w", stdout));
    /* A file is fully buffered: this stays in the buffer until start. */
    fputs("before\n", stdout);
    ASSERT_EQ(run_code(t_print, NULL), 0);
    fputs("after\n", stdout);
    fflush(stdout);
    /* Text mode: the child's and our "\n" are "\r\n" in the file on
     * Windows. */
    f = fopen(path, "r");
    ASSERT_NOT_NULL(f);
    n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    remove(path);
    ASSERT_STR_EQ(buf, "before\nchild-outputafter\n");
    return 0;
}

#define P23_THREADS 4
#define P23_EACH 8

static void *p23_thread(void *arg)
{
    intptr_t base = (intptr_t)arg;
    int i;
    for (i = 0; i < P23_EACH; i++) {
        mproc_process *p = NULL;
        int code = -1;
        int want = (int)(base * P23_EACH + i);
        if (mproc_process_create(&p, t_return_arg0,
                                 MPROC_LIST(mproc_int(want))) != 0 ||
            mproc_process_start(p) != 0 ||
            mproc_process_join(p, MPROC_FOREVER) != 0 ||
            mproc_process_exitcode(p, &code) != 0 || code != want)
            return (void *)(intptr_t)1;
        mproc_process_destroy(p);
    }
    return NULL;
}

TEST(P23_start_from_threads)
{
    pthread_t t[P23_THREADS];
    intptr_t i;
    for (i = 0; i < P23_THREADS; i++)
        ASSERT_EQ(pthread_create(&t[i], NULL, p23_thread, (void *)i), 0);
    for (i = 0; i < P23_THREADS; i++) {
        void *res = (void *)(intptr_t)7;
        ASSERT_EQ(pthread_join(t[i], &res), 0);
        ASSERT_NULL(res);
    }
    ASSERT_EQ(mproc_active_children(NULL, 0), 0);
    return 0;
}

/* ---------------------------------------------------------------------------
 * P24: the run-function form (the seed's Worker subclass)
 */

static int worker_run(mproc_process *self)
{
    mproc_value *state = mproc_process_state(self);
    const char *s = NULL;
    size_t n = 0;
    CHILD_CHECK(self == mproc_current_process(), 2);
    CHILD_CHECK(state != NULL, 3);
    CHILD_CHECK(mproc_value_get_str(mproc_list_get(state, 0), &s, &n) == 0, 4);
    CHILD_CHECK(strcmp(s, "local hello") == 0, 5);
    CHILD_CHECK(strcmp(mproc_process_name(self), "Worker") == 0, 6);
    return (int)th_arg_int(state, 1);
}

static int worker_no_state(mproc_process *self)
{
    return mproc_process_state(self) == NULL ? 0 : 2;
}

TEST(P24_run_form)
{
    mproc_process *p = NULL;
    ASSERT_OK(mproc_process_create_run(
        &p, worker_run, MPROC_LIST(mproc_str("local hello"), mproc_int(24))));
    ASSERT_NOT_NULL(mproc_process_state(p));
    ASSERT_OK(mproc_process_set_name(p, "Worker"));
    ASSERT_EQ(run_and_code(p), 24);
    mproc_process_destroy(p);
    ASSERT_OK(mproc_process_create_run(&p, worker_no_state, NULL));
    ASSERT_NULL(mproc_process_state(p));
    ASSERT_EQ(run_and_code(p), 0);
    mproc_process_destroy(p);
    /* The state may be any value, not only a list. */
    ASSERT_OK(mproc_process_create_run(&p, worker_no_state, mproc_int(3)));
    ASSERT_EQ(run_and_code(p), 2);
    mproc_process_destroy(p);
    return 0;
}

/* ---------------------------------------------------------------------------
 * P25-P31 (the second round): the bootstrap guard, descriptors, how
 * children start, defaults, exit through a shared library
 */

/* P25: a copy of the runner whose main starts a process before mproc_init
 * (th_p25_main) logs what it does to the file named by TH_P25_ENV: "main
 * D" when its main runs at depth D, "start D RC" with its start's result,
 * "target" when a target runs. A regression would start a chain of such
 * copies; it ends at P25_MAX_DEPTH, so the test cannot fork-bomb the
 * machine. */
#define P25_MAX_DEPTH 4
#define P25_DEPTH_ENV "MPROC_TEST_P25_DEPTH"
#define P25_METHOD_ENV "MPROC_TEST_P25_METHOD"

static void p25_log(const char *what, int depth, int rc)
{
    const char *path = getenv(TH_P25_ENV);
    FILE *f = path ? fopen(path, "a") : NULL;
    if (f == NULL)
        return;
    fprintf(f, "%s %d %d\n", what, depth, rc);
    fclose(f);
}

static int t_p25_target(const mproc_value *args)
{
    (void)args;
    p25_log("target", 0, 0);
    return 0;
}

int th_p25_main(int argc, char **argv)
{
    const char *d = getenv(P25_DEPTH_ENV);
    const char *m = getenv(P25_METHOD_ENV);
    int depth = (d ? (int)strtol(d, NULL, 10) : 0) + 1;
    mproc_process *p = NULL;
    char buf[16];
    int rc;

    p25_log("main", depth, 0);
    if (depth > P25_MAX_DEPTH)
        return 99; /* a regression's chain ends here */
    snprintf(buf, sizeof buf, "%d", depth);
    (void)th_platform_setenv(P25_DEPTH_ENV, buf);
    rc = mproc_process_create(&p, t_p25_target, NULL);
    if (rc == 0)
        rc = mproc_process_set_start_method(
            p, m != NULL && strcmp(m, "fork") == 0 ? MPROC_START_FORK
                                                   : MPROC_START_SPAWN);
    if (rc == 0)
        rc = mproc_process_start(p);
    p25_log("start", depth, rc);
    if (rc == 0)
        (void)mproc_process_join(p, MPROC_FOREVER);
    mproc_process_destroy(p);
    /* Only now: where this program's bootstrap would happen. */
    rc = mproc_init(argc, argv);
    return rc == 0 ? 0 : 3;
}

TEST(P25_start_before_bootstrap_is_refused)
{
    char path[64], what[16], line[64];
    FILE *f;
    mproc_process *p;
    int depth, rc, code, mains = 0, deeper = 0, targets = 0;

    snprintf(path, sizeof path, "mproc-p25-%lld.log",
             (long long)mproc_process_pid(mproc_current_process()));
    remove(path);
    ASSERT_OK(th_platform_setenv(TH_P25_ENV, path));
    ASSERT_OK(th_platform_setenv(P25_DEPTH_ENV, "0"));
    ASSERT_OK(th_platform_setenv(
        P25_METHOD_ENV, th_method() == MPROC_START_FORK ? "fork" : "spawn"));
    /* The case needs main to run again in the child: spawn. The child
     * tries to start its own with this run's method. */
    p = make(t_p25_target, NULL);
    ASSERT_OK(mproc_process_set_start_method(p, MPROC_START_SPAWN));
    rc = mproc_process_start(p);
    ASSERT_OK(th_platform_setenv(TH_P25_ENV, NULL));
    ASSERT_OK(th_platform_setenv(P25_DEPTH_ENV, NULL));
    ASSERT_OK(th_platform_setenv(P25_METHOD_ENV, NULL));
    ASSERT_ERR(rc, MPROC_EBOOTSTRAP);
    ASSERT_EQ(mproc_process_is_alive(p), 0);
    ASSERT_ERR(mproc_process_exitcode(p, &code), MPROC_ENOTEXITED);
    ASSERT_EQ(mproc_active_children(NULL, 0), 0);

    f = fopen(path, "r");
    ASSERT_NOT_NULL(f);
    /* Lines "what depth rc" (p25_log). */
    while (fgets(line, sizeof line, f) != NULL) {
        char *sp = strchr(line, ' ');
        char *end = NULL;
        if (sp == NULL || (size_t)(sp - line) >= sizeof what)
            continue;
        memcpy(what, line, (size_t)(sp - line));
        what[sp - line] = '\0';
        depth = (int)strtol(sp + 1, &end, 10);
        code = (int)strtol(end, NULL, 10);
        if (strcmp(what, "main") == 0 && depth == 1)
            mains++;
        else if (strcmp(what, "main") == 0)
            deeper++;
        else if (strcmp(what, "target") == 0)
            targets++;
        else if (strcmp(what, "start") == 0)
            /* If the child logged its start before it was ended: */
            ASSERT_ERR(code, MPROC_EBOOTSTRAP);
    }
    fclose(f);
    remove(path);
    ASSERT_EQ(mains, 1);   /* the child's main ran */
    ASSERT_EQ(deeper, 0);  /* and started no copy of itself */
    ASSERT_EQ(targets, 0); /* no target ran anywhere */

    /* The object can be started once the program is guarded. */
    ASSERT_EQ(run_and_code(p), 0);
    mproc_process_destroy(p);
    return 0;
}

/* P26: the standard descriptors closed, every kind of object created and
 * handed to children that print to stdout and stderr. */
#define P26_TEXT "P26: text that must reach no object's shared state\n"

static int t_p26_print(const mproc_value *args)
{
    int i;
    (void)args; /* held, so that a spawned child has their descriptors */
    for (i = 0; i < 64; i++) {
        fputs(P26_TEXT, stdout);
        fputs(P26_TEXT, stderr);
    }
    /* No flush: the child's exit does it, as in the report. */
    return 0;
}

/* The first failure while the standard streams are closed (an assertion
 * could not print it). */
static int p26_line, p26_rc;

static void p26_note(int line, int64_t rc)
{
    if (rc < 0 && p26_line == 0) {
        p26_line = line;
        p26_rc = (int)rc;
    }
}
#define P26_OK(expr) p26_note(__LINE__, (int64_t)(expr))

TEST(P26_no_library_descriptor_on_0_1_2)
{
    mproc_event *e = NULL;
    mproc_shm *m = NULL;
    mproc_lock *l = NULL;
    mproc_conn *a = NULL, *b = NULL, *r = NULL, *w = NULL;
    mproc_queue *q = NULL;
    mproc_rlock *rl = NULL;
    mproc_sem *s = NULL;
    mproc_cond *c = NULL;
    mproc_barrier *bar = NULL;
    mproc_process *p[2] = {NULL, NULL};
    mproc_value *v = NULL;
    int open_after_create, open_after_start, i, code[2] = {-1, -1};
    const unsigned char *bytes;
    size_t k, nonzero = 0;

    ASSERT_EQ(th_platform_std_open(), 3);
    ASSERT_OK(th_platform_std_close());
    /* Objects whose memory a stray write would show first. */
    P26_OK(mproc_event_create(&e));
    P26_OK(mproc_shm_create(&m, 4096));
    P26_OK(mproc_lock_create(&l));
    P26_OK(mproc_pipe(&a, &b, true));
    P26_OK(mproc_pipe(&r, &w, false));
    P26_OK(mproc_queue_create(&q, 0));
    P26_OK(mproc_rlock_create(&rl));
    P26_OK(mproc_sem_create(&s, 3, 0));
    P26_OK(mproc_cond_create(&c));
    P26_OK(mproc_barrier_create(&bar, 2));
    open_after_create = th_platform_std_open();
    /* Children add their own descriptors: pidfds, a daemon's lifeline,
     * the bootstrap channel. */
    for (i = 0; i < 2 && p26_line == 0; i++) {
        P26_OK(mproc_process_create(
            &p[i], t_p26_print,
            MPROC_LIST(mproc_value_event(e), mproc_value_shm(m),
                       mproc_value_lock(l), mproc_value_conn(b),
                       mproc_value_conn(w), mproc_value_queue(q),
                       mproc_value_rlock(rl), mproc_value_sem(s),
                       mproc_value_cond(c), mproc_value_barrier(bar))));
        P26_OK(mproc_process_set_daemon(p[i], i == 1));
        P26_OK(mproc_process_start(p[i]));
    }
    open_after_start = th_platform_std_open();
    for (i = 0; i < 2 && p26_line == 0; i++) {
        P26_OK(mproc_process_join(p[i], th_ms(20000)));
        P26_OK(mproc_process_exitcode(p[i], &code[i]));
    }
    th_platform_std_restore();
    ASSERT_EQ(p26_rc, 0);
    ASSERT_EQ(p26_line, 0);
    ASSERT_EQ(open_after_create, 0);
    ASSERT_EQ(open_after_start, 0);
    ASSERT_EQ(code[0], 0);
    ASSERT_EQ(code[1], 0);

    /* Nothing of the children's output reached any object. */
    ASSERT_EQ(mproc_event_is_set(e), 0);
    bytes = mproc_shm_ptr(m);
    for (k = 0; k < 4096; k++)
        nonzero += bytes[k] != 0;
    ASSERT_EQ(nonzero, 0);
    ASSERT_ERR(mproc_lock_acquire(l, 0), 0);
    ASSERT_OK(mproc_lock_release(l));
    ASSERT_EQ(mproc_conn_poll(a, 0), 0);
    ASSERT_EQ(mproc_conn_poll(r, 0), 0);
    ASSERT_EQ(mproc_queue_qsize(q), 0);
    ASSERT_ERR(mproc_queue_get(q, &v, 0), MPROC_EEMPTY);
    ASSERT_ERR(mproc_rlock_acquire(rl, 0), 0);
    ASSERT_OK(mproc_rlock_release(rl));
    ASSERT_EQ(mproc_sem_value(s), 3);
    ASSERT_ERR(mproc_cond_acquire(c, 0), 0);
    ASSERT_OK(mproc_cond_release(c));
    ASSERT_EQ(mproc_barrier_n_waiting(bar), 0);
    ASSERT_EQ(mproc_barrier_broken(bar), 0);
    ASSERT_EQ(mproc_barrier_parties(bar), 2);
    /* And the objects still work. */
    ASSERT_OK(mproc_conn_send_bytes(b, "ok", 2));
    ASSERT_EQ(mproc_conn_poll(a, th_ms(1000)), 1);
    ASSERT_OK(mproc_event_set(e));
    ASSERT_EQ(mproc_event_is_set(e), 1);

    for (i = 0; i < 2; i++)
        mproc_process_destroy(p[i]);
    mproc_event_destroy(e);
    mproc_shm_destroy(m);
    mproc_lock_destroy(l);
    mproc_conn_destroy(a);
    mproc_conn_destroy(b);
    mproc_conn_destroy(r);
    mproc_conn_destroy(w);
    mproc_queue_destroy(q);
    mproc_rlock_destroy(rl);
    mproc_sem_destroy(s);
    mproc_cond_destroy(c);
    mproc_barrier_destroy(bar);
    return 0;
}

/* P27: daemon and other spawn children start alike. Signal dispositions
 * and masks are POSIX; tests/skip.h skips the row where there are none. */
#if defined(SIGCHLD) && defined(F_GETFD) && defined(SIG_SETMASK)
static int t_p27_check(const mproc_value *args)
{
    static const int sigs[] = {SIGINT, SIGCHLD, SIGPIPE, SIGTERM};
    int fd = (int)th_arg_int(args, 0);
    mproc_conn *go = NULL;
    struct sigaction sa;
    sigset_t mask;
    char buf[4];
    size_t i, n = 0;
    int code = 0;

    for (i = 0; i < sizeof sigs / sizeof sigs[0] && code == 0; i++)
        if (sigaction(sigs[i], NULL, &sa) != 0 || sa.sa_handler != SIG_DFL)
            code = 10 + (int)i;
    if (code == 0 && (sigprocmask(SIG_SETMASK, NULL, &mask) != 0 ||
                      sigismember(&mask, SIGUSR1) != 0))
        code = 20;
    /* The parent's pipe end, open without close-on-exec. */
    if (code == 0 && fcntl(fd, F_GETFD) >= 0)
        code = 30;
    /* Exits only when told: the parent ignores SIGCHLD meanwhile, and a
     * child ending then would be reaped by the kernel, not by join. */
    if (mproc_value_get_conn(mproc_list_get(args, 1), &go) != 0 ||
        mproc_conn_recv_bytes(go, buf, sizeof buf, &n, th_ms(20000)) != 0)
        return code ? code : 40;
    return code;
}
#endif

TEST(P27_daemon_spawn_starts_like_others)
{
#if defined(SIGCHLD) && defined(F_GETFD) && defined(SIG_SETMASK)
    mproc_process *p[2];
    mproc_conn *here[2], *there[2];
    void (*old_int)(int), (*old_chld)(int);
    sigset_t usr1, old_mask;
    int fds[2], i;

    ASSERT_EQ(pipe(fds), 0); /* without close-on-exec, as programs do */
    for (i = 0; i < 2; i++) {
        ASSERT_OK(mproc_pipe(&here[i], &there[i], true));
        p[i] = make(t_p27_check,
                    MPROC_LIST(mproc_int(fds[1]), mproc_value_conn(there[i])));
        ASSERT_OK(mproc_process_set_start_method(p[i], MPROC_START_SPAWN));
        ASSERT_OK(mproc_process_set_daemon(p[i], i == 1));
    }
    /* What a program may do before it starts children. */
    old_int = signal(SIGINT, SIG_IGN);
    old_chld = signal(SIGCHLD, SIG_IGN);
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    ASSERT_EQ(sigprocmask(SIG_BLOCK, &usr1, &old_mask), 0);
    for (i = 0; i < 2; i++)
        ASSERT_OK(mproc_process_start(p[i]));
    ASSERT_EQ(sigprocmask(SIG_SETMASK, &old_mask, NULL), 0);
    (void)signal(SIGCHLD, old_chld);
    (void)signal(SIGINT, old_int);
    close(fds[1]);
    for (i = 0; i < 2; i++)
        ASSERT_OK(mproc_conn_send_bytes(here[i], "go", 2));
    /* The daemon is checked like the other (exit code 0: all held). */
    for (i = 0; i < 2; i++) {
        int code = th_join_code(p[i], 20000);
        if (code != 0)
            printf("%s child: check %d failed\n", i ? "daemon" : "other", code);
        ASSERT_EQ(code, 0);
        mproc_conn_destroy(here[i]);
        mproc_conn_destroy(there[i]);
    }
    close(fds[0]);
#endif
    return 0;
}

/* P28: defaults from the creator; the start method a child reports. */
static int t_p28_daemon_child(const mproc_value *args)
{
    mproc_process *c = NULL;
    (void)args;
    CHILD_CHECK(mproc_process_daemon(mproc_current_process()) == 1, 2);
    CHILD_CHECK(mproc_process_create(&c, t_noop, NULL) == 0, 3);
    CHILD_CHECK(mproc_process_daemon(c) == 1, 4); /* its creator's */
    CHILD_CHECK(mproc_process_start(c) == MPROC_EDAEMON, 5);
    mproc_process_destroy(c);
    return 0;
}

/* 10 x the method this child was started with + the program-wide
 * default it sees. */
static int t_p28_report_method(const mproc_value *args)
{
    (void)args;
    return 10 * mproc_process_start_method(mproc_current_process()) +
           (int)mproc_get_start_method();
}

TEST(P28_daemon_default_and_start_method)
{
    mproc_start_method mine = mproc_get_start_method();
    mproc_start_method other =
        mine == MPROC_START_FORK ? MPROC_START_SPAWN : MPROC_START_FORK;
    mproc_process *p = make(t_noop, NULL);
    int rc;

    ASSERT_EQ(mproc_process_daemon(p), 0);
    mproc_process_destroy(p);
    p = make(t_p28_daemon_child, NULL);
    ASSERT_OK(mproc_process_set_daemon(p, true));
    ASSERT_EQ(run_and_code(p), 0);
    mproc_process_destroy(p);

    /* The main process was not started by mproc. */
    ASSERT_EQ(mproc_process_start_method(mproc_current_process()),
              MPROC_START_DEFAULT);
    ASSERT_ERR(mproc_process_start_method(NULL), MPROC_EINVAL);
    p = make(t_p28_report_method, NULL);
    ASSERT_EQ(mproc_process_start_method(p), mine);
    ASSERT_EQ(run_and_code(p), 11 * (int)mine);
    ASSERT_EQ(mproc_process_start_method(p), mine);
    mproc_process_destroy(p);
    /* Started with the other method (where there is one): the child says
     * so, and still sees its parent's program-wide default. */
    p = make(t_p28_report_method, NULL);
    rc = mproc_process_set_start_method(p, other);
    if (rc != MPROC_ENOSYS) {
        ASSERT_OK(rc);
        ASSERT_EQ(mproc_process_start_method(p), other);
        ASSERT_EQ(run_and_code(p), 10 * (int)other + (int)mine);
        ASSERT_EQ(mproc_process_start_method(p), other);
    }
    ASSERT_OK(mproc_process_close(p));
    ASSERT_ERR(mproc_process_start_method(p), MPROC_ECLOSED);
    mproc_process_destroy(p);
    return 0;
}

/* P29: an unknown MPROC_START_METHOD is mproc_init's error. */
TEST(_p29_pass)
{
    return 0;
}

TEST(P29_unknown_start_method_is_error)
{
    mproc_process *p = make(t_noop, NULL);
    int fork_rc = mproc_process_set_start_method(p, MPROC_START_FORK);
    enum th_outcome out;
    int status = -1;

    mproc_process_destroy(p);
    ASSERT(fork_rc == 0 || fork_rc == MPROC_ENOSYS);
    ASSERT_OK(th_platform_setenv("MPROC_START_METHOD", "bogus"));
    ASSERT_ERR(mproc_init(th_argc, th_argv), MPROC_EINVAL);
    ASSERT_OK(th_platform_setenv("MPROC_START_METHOD", "Spawn"));
    ASSERT_ERR(mproc_init(th_argc, th_argv), MPROC_EINVAL);
    ASSERT_OK(th_platform_setenv("MPROC_START_METHOD", "fork"));
    ASSERT_ERR(mproc_init(th_argc, th_argv), fork_rc);
    ASSERT_OK(th_platform_setenv("MPROC_START_METHOD", "spawn"));
    ASSERT_OK(mproc_init(th_argc, th_argv));
    /* A fresh program: the runner ends with 2 when mproc_init fails. */
    ASSERT_OK(th_platform_setenv("MPROC_START_METHOD", "bogus"));
    out = th_supervise("_p29_pass", NULL, th_ms(20000), &status);
    ASSERT_EQ(out, TH_OUT_FAIL);
    ASSERT_EQ(status, 2);
    ASSERT_OK(th_platform_setenv("MPROC_START_METHOD", "fork"));
    out = th_supervise("_p29_pass", NULL, th_ms(20000), &status);
    ASSERT_EQ(out, fork_rc == 0 ? TH_OUT_PASS : TH_OUT_FAIL);
    ASSERT_OK(th_platform_setenv("MPROC_START_METHOD", NULL));
    ASSERT_OK(mproc_init(th_argc, th_argv));
    return 0;
}

/* P09, continued: a fork child's copy of a process its parent started is
 * not its child. tests/skip.h skips it where there is no fork. */
static mproc_process *p09_sibling;

static int t_p09_touch_sibling(const mproc_value *args)
{
    int code = 0;
    (void)args;
    CHILD_CHECK(mproc_process_join(p09_sibling, 0) == MPROC_ENOTCHILD, 2);
    CHILD_CHECK(mproc_process_is_alive(p09_sibling) == MPROC_ENOTCHILD, 3);
    CHILD_CHECK(mproc_process_kill(p09_sibling) == MPROC_ENOTCHILD, 4);
    CHILD_CHECK(mproc_process_terminate(p09_sibling) == MPROC_ENOTCHILD, 5);
    CHILD_CHECK(mproc_process_exitcode(p09_sibling, &code) == MPROC_ENOTCHILD,
                6);
    CHILD_CHECK(mproc_process_close(p09_sibling) == MPROC_ENOTCHILD, 7);
    CHILD_CHECK(mproc_process_interrupt(p09_sibling) == MPROC_ENOTCHILD, 11);
    CHILD_CHECK(mproc_process_pid(p09_sibling) > 0, 8);
    CHILD_CHECK(strcmp(mproc_strerror(MPROC_ENOTCHILD),
                       mproc_strerror(MPROC_ECHILD)) != 0,
                9);
    /* The parent object is the exception (Python's parent_process()):
     * joining it waits for the parent to end. */
    CHILD_CHECK(
        mproc_process_join(mproc_parent_process(), 0) == MPROC_ETIMEDOUT, 10);
    return 0;
}

TEST(P09_not_a_child_is_enotchild)
{
    mproc_process *p;
    p09_sibling = make(t_sleep_forever, NULL);
    ASSERT_OK(mproc_process_set_start_method(p09_sibling, MPROC_START_FORK));
    ASSERT_OK(mproc_process_start(p09_sibling));
    p = make(t_p09_touch_sibling, NULL);
    ASSERT_OK(mproc_process_set_start_method(p, MPROC_START_FORK));
    ASSERT_EQ(run_and_code(p), 0);
    mproc_process_destroy(p);
    /* The child could not signal it. */
    ASSERT_EQ(mproc_process_is_alive(p09_sibling), 1);
    ASSERT_OK(mproc_process_kill(p09_sibling));
    ASSERT_OK(mproc_process_join(p09_sibling, th_ms(10000)));
    p09_sibling = mproc_process_destroy(p09_sibling);
    return 0;
}

/* P30: the child's stdin. 10: end-of-file at once (the null device), 20:
 * the parent's text, 30: anything else. */
#define P30_TEXT "parent stdin"

static int t_p30_read_stdin(const mproc_value *args)
{
    char buf[64];
    size_t n = fread(buf, 1, sizeof buf - 1, stdin);
    (void)args;
    if (n == 0)
        return feof(stdin) ? 10 : 31;
    buf[n] = '\0';
    return strcmp(buf, P30_TEXT) == 0 ? 20 : 30;
}

/* A file of this process (path, named with `tag`) holding P30_TEXT,
 * reopened as stdin. */
static void p30_stdin_from_text(char *path, size_t cap, const char *tag)
{
    FILE *f;
    snprintf(path, cap, "mproc-p30%s-%lld.txt", tag,
             (long long)mproc_process_pid(mproc_current_process()));
    f = fopen(path, "w");
    ASSERT_NOT_NULL(f);
    fputs(P30_TEXT, f);
    ASSERT_EQ(fclose(f), 0);
    ASSERT_NOT_NULL(freopen(path, "r", stdin));
}

TEST(P30_stdin_is_null_device)
{
    char path[64];
    mproc_process *p;

    p30_stdin_from_text(path, sizeof path, "a");

    ASSERT_EQ(run_code(t_p30_read_stdin, NULL), 10);
    p = make(t_p30_read_stdin, NULL);
    ASSERT_OK(mproc_process_set_inherit_stdin(p, true));
    ASSERT_EQ(run_and_code(p), 20);
    ASSERT_ERR(mproc_process_set_inherit_stdin(p, false), MPROC_ESTATE);
    mproc_process_destroy(p);
    ASSERT_ERR(mproc_process_set_inherit_stdin(NULL, true), MPROC_EINVAL);
    ASSERT_NOT_NULL(freopen(path, "r", stdin)); /* let go of the file */
    remove(path);
    return 0;
}

#if !defined(_WIN32)
/* Puts fd on every descriptor >= 3 that is open on the null device (the
 * one the library keeps for fork children's stdin among them); returns
 * how many. */
static int p30_cover_null(int fd)
{
    struct stat null_st, st;
    int n = 0, i;
    if (stat("/dev/null", &null_st) != 0)
        return -1;
    for (i = 3; i < 1024; i++) {
        if (i == fd || fstat(i, &st) != 0 || !S_ISCHR(st.st_mode) ||
            st.st_rdev != null_st.st_rdev)
            continue;
        if (dup2(fd, i) != i)
            return -1;
        n++;
    }
    return n;
}
#endif

/* P30 when stdin's stdio buffer holds input the parent read ahead, and
 * when the program reused the descriptor the library keeps open on the
 * null device (fork: opened once, checked before each start): put
 * another file on it with dup2, closed it, or closed its own stdin. The
 * child still reads end-of-file at once. */
TEST(P30_stdin_null_after_buffered_input_and_reused_descriptor)
{
    char path[64];

    p30_stdin_from_text(path, sizeof path, "b");
    /* The rest of the text is in stdin's buffer now. */
    ASSERT_EQ(fgetc(stdin), 'p');
    ASSERT_EQ(run_code(t_p30_read_stdin, NULL), 10);
    ASSERT_EQ(ungetc('p', stdin), 'p');
    ASSERT_EQ(run_code(t_p30_read_stdin, NULL), 10);
#if !defined(_WIN32)
    {
        int text = open(path, O_RDONLY | O_CLOEXEC);
        int saved, n, i;
        ASSERT(text >= 0);
        /* The text file on the null device's number (dup2 clears its
         * close-on-exec, as a program's own dup2 would). */
        n = p30_cover_null(text);
        ASSERT(n >= 0);
        ASSERT_EQ(run_code(t_p30_read_stdin, NULL), 10);
        ASSERT(lseek(text, 0, SEEK_SET) == 0);
        n = p30_cover_null(text);
        ASSERT(n >= 0);
        ASSERT_EQ(run_code(t_p30_read_stdin, NULL), 10);
        /* Closed, and another file opened on the same number. */
        ASSERT(lseek(text, 0, SEEK_SET) == 0);
        for (i = 3; i < 1024; i++) {
            struct stat st, null_st;
            if (i != text && fstat(i, &st) == 0 && S_ISCHR(st.st_mode) &&
                stat("/dev/null", &null_st) == 0 &&
                st.st_rdev == null_st.st_rdev) {
                /* Close-on-exec again, unlike after a dup2. */
                ASSERT_EQ(close(i), 0);
                ASSERT_EQ(fcntl(text, F_DUPFD_CLOEXEC, i), i);
            }
        }
        ASSERT_EQ(run_code(t_p30_read_stdin, NULL), 10);
        /* The program's own stdin closed: the child still gets one. */
        saved = fcntl(0, F_DUPFD_CLOEXEC, 3);
        ASSERT(saved >= 0);
        ASSERT_EQ(close(0), 0);
        ASSERT_EQ(run_code(t_p30_read_stdin, NULL), 10);
        ASSERT_EQ(dup2(saved, 0), 0);
        ASSERT_EQ(close(saved), 0);
        ASSERT_EQ(close(text), 0);
    }
#endif
    ASSERT_NOT_NULL(freopen(path, "r", stdin)); /* let go of the file */
    remove(path);
    return 0;
}

/* ---------------------------------------------------------------------------
 * P32-P33 (Python parity): interrupt
 */

static volatile sig_atomic_t p33_got;

static void p33_on_int(int sig)
{
    (void)sig;
    p33_got = 1;
}

/* Sets the event given as argument 0 and waits (at most 60 s) until
 * `flag` turns non-zero: `code` then, else 98. */
static int ready_then_wait(const mproc_value *args, volatile sig_atomic_t *flag,
                           int code)
{
    mproc_event *ready = NULL;
    int i;
    if (mproc_value_get_event(mproc_list_get(args, 0), &ready) != 0 ||
        mproc_event_set(ready) != 0)
        return 97;
    for (i = 0; i < 6000; i++) {
        if (flag != NULL && *flag)
            return code;
        th_sleep_ms(10);
    }
    return 98;
}

/* Does not handle SIGINT (whatever the parent's disposition was). */
static int t_p32_default(const mproc_value *args)
{
    (void)signal(SIGINT, SIG_DFL);
    return ready_then_wait(args, NULL, 0);
}

static int t_p33_handler(const mproc_value *args)
{
    (void)signal(SIGINT, p33_on_int);
#if !defined(_WIN32)
    {
        /* The idiom for waiting for a signal: blocked until sigsuspend
         * lets it in, so that the handler runs inside a call and never
         * between two (ThreadSanitizer defers a handler to the thread's
         * next intercepted call, and under load it was seen never to run
         * one that came while the child slept in a nanosleep loop). */
        sigset_t block, old;
        mproc_event *ready = NULL;
        sigemptyset(&block);
        sigaddset(&block, SIGINT);
        if (pthread_sigmask(SIG_BLOCK, &block, &old) != 0)
            return 96;
        sigdelset(&old, SIGINT);
        if (mproc_value_get_event(mproc_list_get(args, 0), &ready) != 0 ||
            mproc_event_set(ready) != 0)
            return 97;
        while (!p33_got)
            (void)sigsuspend(&old);
        return 33;
    }
#else
    return ready_then_wait(args, &p33_got, 33);
#endif
}

static int t_p33_ignore(const mproc_value *args)
{
    (void)signal(SIGINT, SIG_IGN);
    return ready_then_wait(args, NULL, 0);
}

/* Starts t with a fresh event, waits until the child set it, and returns
 * the child; the event goes to *ev when ev is not NULL. */
static mproc_process *start_ready(mproc_target t)
{
    mproc_event *ready = NULL;
    mproc_process *p;
    ASSERT_OK(mproc_event_create(&ready));
    p = make(t, MPROC_LIST(mproc_value_event(ready)));
    ASSERT_OK(mproc_process_start(p));
    ASSERT_OK(mproc_event_wait(ready, th_ms(20000)));
    mproc_event_destroy(ready);
    return p;
}

static int join_code(mproc_process *p)
{
    int code = -1000;
    ASSERT_OK(mproc_process_join(p, th_ms(10000)));
    ASSERT_OK(mproc_process_exitcode(p, &code));
    return code;
}

TEST(P32_interrupt_unhandled_is_minus_2)
{
    mproc_process *p;
    int code;

    ASSERT_ERR(mproc_process_interrupt(NULL), MPROC_EINVAL);
    ASSERT_ERR(mproc_process_interrupt(mproc_current_process()), MPROC_ESTATE);
    p = make(t_noop, NULL);
    ASSERT_ERR(mproc_process_interrupt(p), MPROC_ESTATE); /* not started */
    mproc_process_destroy(p);

    /* A child that does not handle SIGINT. */
    p = start_ready(t_p32_default);
    ASSERT_OK(mproc_process_interrupt(p));
    ASSERT_EQ(join_code(p), -2);
    /* Interrupting an exited child is not an error; a closed one is. */
    ASSERT_OK(mproc_process_interrupt(p));
    ASSERT_OK(mproc_process_close(p));
    ASSERT_ERR(mproc_process_interrupt(p), MPROC_ECLOSED);
    mproc_process_destroy(p);

    /* At once after start, before the target could do anything: the child
     * still gets it (under fork it has this process's disposition). */
    (void)signal(SIGINT, SIG_DFL);
    p = make(t_sleep_forever, NULL);
    ASSERT_OK(mproc_process_start(p));
    ASSERT_OK(mproc_process_interrupt(p));
    code = join_code(p);
    ASSERT_EQ(code, -2);
    mproc_process_destroy(p);
    return 0;
}

#if !defined(_WIN32)
/* Blocks SIGINT, tells the parent, waits until SIGINT is pending, then
 * handles it by unblocking: 33 when the handler ran. */
static int t_p33_blocked(const mproc_value *args)
{
    sigset_t set, pend;
    int i;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    (void)signal(SIGINT, p33_on_int);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
        return 96;
    {
        mproc_event *ready = NULL;
        if (mproc_value_get_event(mproc_list_get(args, 0), &ready) != 0 ||
            mproc_event_set(ready) != 0)
            return 97;
    }
    for (i = 0; i < 6000; i++) {
        sigemptyset(&pend);
        if (sigpending(&pend) == 0 && sigismember(&pend, SIGINT))
            break;
        th_sleep_ms(10);
    }
    if (p33_got)
        return 95; /* delivered while blocked */
    if (pthread_sigmask(SIG_UNBLOCK, &set, NULL) != 0)
        return 94;
    return p33_got ? 33 : 93;
}
#endif

TEST(P33_handled_interrupt_is_a_signal_not_a_kill)
{
    mproc_process *p;

    /* A handler runs, and the child goes on to return normally. */
    p = start_ready(t_p33_handler);
    ASSERT_OK(mproc_process_interrupt(p));
    ASSERT_EQ(join_code(p), 33);
    mproc_process_destroy(p);

    /* Ignored: nothing happens; the child still runs. */
    p = start_ready(t_p33_ignore);
    ASSERT_OK(mproc_process_interrupt(p));
    th_sleep_ms(th_ms(300));
    ASSERT_EQ(mproc_process_is_alive(p), 1);
    ASSERT_OK(mproc_process_terminate(p));
    ASSERT_EQ(join_code(p), -15);
    mproc_process_destroy(p);

#if !defined(_WIN32)
    /* Blocked (POSIX; Windows has no signal masks): pending until
     * unblocked, then handled. */
    p = start_ready(t_p33_blocked);
    ASSERT_OK(mproc_process_interrupt(p));
    ASSERT_EQ(join_code(p), 33);
    mproc_process_destroy(p);
#endif
    return 0;
}

/* P31: tests/p31prog.c, linked against the shared library (the DLL on
 * Windows), ends while its other thread is inside the library: with exit
 * (its child is joined, and nothing hangs) and with _Exit (no join). */
static bool p31_marker_exists(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    fclose(f);
    return true;
}

static void p31_run(const char *mode, const char *marker, int child_ms,
                    int64_t *took)
{
    const char *args[4];
    char ms[16];
    bool timed_out = false, crashed = false;
    int status = -1;
    int64_t t0 = th_now_ms();

    snprintf(ms, sizeof ms, "%d", child_ms);
    args[0] = mode;
    args[1] = marker;
    args[2] = ms;
    args[3] = NULL;
    ASSERT_EQ(th_platform_run_exe(MPROC_TEST_P31_EXE, args, th_ms(20000),
                                  &timed_out, &crashed, &status),
              0);
    *took = th_now_ms() - t0;
    ASSERT(!timed_out);
    ASSERT(!crashed);
    ASSERT_EQ(status, 0);
}

TEST(P31_exit_while_thread_in_library)
{
    char marker[64];
    int64_t took;
    int i;

    snprintf(marker, sizeof marker, "mproc-p31-%lld.done",
             (long long)mproc_process_pid(mproc_current_process()));
    /* exit(): the child is joined first, whatever the other thread was
     * doing. A hang would come from a stopped thread holding a lock, so
     * try a few times. */
    for (i = 0; i < 4; i++) {
        remove(marker);
        p31_run("exit", marker, 200, &took);
        ASSERT(p31_marker_exists(marker));
    }
    remove(marker);
    /* _Exit(): no join, so the program ends before its child creates the
     * marker (the runner then ends the child with the program's process
     * group or job). */
    p31_run("_exit", marker, th_ms(3000), &took);
    ASSERT(!p31_marker_exists(marker));
    ASSERT_LT(took, th_ms(3000));
    remove(marker);
    return 0;
}

/* ---------------------------------------------------------------------------
 * Backend-level checks of the spawn bootstrap (not conformance rows)
 */

#include "../src/common/backend.h"

#if !defined(_WIN32)
#include <sys/stat.h>
#endif

/* A copy of this executable beside it: same contents, another file. */
static int copy_self(char *out, size_t cap)
{
    char *exe = NULL;
    FILE *in, *to;
    char buf[65536];
    size_t n;
    const char *dot;
    int rc = mproc__os_self_exe(&exe);
    if (rc != 0)
        return rc;
    dot = strrchr(exe, '.');
    if (dot != NULL && strchr(dot, '/') == NULL && strchr(dot, '\\') == NULL)
        snprintf(out, cap, "%.*s-copy%lld%s", (int)(dot - exe), exe,
                 (long long)mproc__os_getpid(), dot);
    else
        snprintf(out, cap, "%s-copy%lld", exe, (long long)mproc__os_getpid());
    in = fopen(exe, "rb");
    to = fopen(out, "wb");
    free(exe);
    if (in == NULL || to == NULL) {
        if (in)
            fclose(in);
        if (to)
            fclose(to);
        return -1;
    }
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, to) != n)
            rc = -1;
    fclose(in);
    if (fclose(to) != 0)
        rc = -1;
#if !defined(_WIN32)
    if (rc == 0 && chmod(out, 0700) != 0)
        rc = -1;
#endif
    return rc;
}

/* The child is another file than the parent: it must refuse to jump into
 * it (MPROC_ERESOLVE from start), and be reaped. */
TEST(process_spawn_other_file_is_eresolve)
{
    char copy[4096];
    mproc_process *p;
    int before = th_open_handles();
    ASSERT_EQ(copy_self(copy, sizeof copy), 0);
    ASSERT_OK(mproc_set_executable(copy));
    p = make(t_noop, NULL);
    ASSERT_OK(mproc_process_set_start_method(p, MPROC_START_SPAWN));
    ASSERT_ERR(mproc_process_start(p), MPROC_ERESOLVE);
    ASSERT_OK(mproc_set_executable(NULL));
    remove(copy);
    ASSERT_EQ(mproc_process_is_alive(p), 0);
    ASSERT_EQ(mproc_active_children(NULL, 0), 0);
    ASSERT_EQ(th_open_handles(), before);
    /* The real executable finds it. */
    ASSERT_EQ(run_and_code(p), 0);
    mproc_process_destroy(p);
    return 0;
}

/* A program that is not an mproc program ends before it answers: the
 * start is MPROC_ECHILD and the child is reaped. */
TEST(process_spawn_child_ends_early_is_echild)
{
    char path[64];
    FILE *f;
    mproc_process *p;
    int before;
    snprintf(path, sizeof path, "mproc-echild-%lld.sh",
             (long long)mproc__os_getpid());
    f = fopen(path, "w");
    ASSERT_NOT_NULL(f);
    fputs("#!/bin/sh\nexit 3\n", f);
    ASSERT_EQ(fclose(f), 0);
#if !defined(_WIN32)
    ASSERT_EQ(chmod(path, 0700), 0);
#endif
    before = th_open_handles();
    ASSERT_OK(mproc_set_executable(path));
    p = make(t_noop, NULL);
    ASSERT_OK(mproc_process_set_start_method(p, MPROC_START_SPAWN));
    ASSERT_ERR(mproc_process_start(p), MPROC_ECHILD);
    ASSERT_OK(mproc_set_executable(NULL));
    remove(path);
    ASSERT_EQ(mproc_process_is_alive(p), 0);
    ASSERT_EQ(mproc_active_children(NULL, 0), 0);
    ASSERT_EQ(th_open_handles(), before);
    mproc_process_destroy(p);
    return 0;
}
