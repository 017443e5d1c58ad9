/*
 * The test harness: test definitions, assertions and helpers shared by every
 * test file. One runner binary holds every test (tests/list.h); the runner
 * runs each test in a fresh child process with its own timeout
 * (tests/runner.c), and doubles as the child that mproc's spawn method
 * starts (it calls mproc_init first).
 *
 * A test is `TEST(ID_name) { ...; return 0; }`. A failed assertion prints
 * both operands (and mproc_strerror for codes) and ends the test's process
 * with status 1; the runner reports it. Tests name no platform: skips live in
 * the one table, tests/skip.h.
 */
#ifndef MPROC_TEST_HARNESS_H
#define MPROC_TEST_HARNESS_H

#include "mproc.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEST(name)                                                             \
    int th_test_##name(void);                                                  \
    int th_test_##name(void)
#define TH_DECLARE(name) int th_test_##name(void);

/* Results a test process reports through its exit status. */
#define TH_PASS 0
#define TH_FAIL 1
#define TH_SKIP 77

/* Prints "file:line: message" to stderr and ends the test process with
 * TH_FAIL at once (no atexit handlers: a failed test must not hang). */
#if defined(__MINGW32__) && !defined(__clang__)
/* mingw gcc: the C99 printf of __USE_MINGW_ANSI_STDIO (tests/CMakeLists.txt),
 * not msvcrt's, which knows no %zu (clang has no gnu_printf and checks
 * printf as C99 anyway). */
__attribute__((noreturn, format(gnu_printf, 3, 4)))
#elif defined(__GNUC__)
__attribute__((noreturn, format(printf, 3, 4)))
#endif
void th_fail(const char *file, int line, const char *fmt, ...);

#define ASSERT(cond)                                                           \
    do {                                                                       \
        if (!(cond))                                                           \
            th_fail(__FILE__, __LINE__, "assertion failed: %s", #cond);        \
    } while (0)

#define TH_CMP_(a, op, b)                                                      \
    do {                                                                       \
        int64_t th_a_ = (int64_t)(a);                                          \
        int64_t th_b_ = (int64_t)(b);                                          \
        if (!(th_a_ op th_b_))                                                 \
            th_fail(__FILE__, __LINE__, "expected %s %s %s: %lld vs %lld", #a, \
                    #op, #b, (long long)th_a_, (long long)th_b_);              \
    } while (0)

#define ASSERT_EQ(a, b) TH_CMP_(a, ==, b)
#define ASSERT_NE(a, b) TH_CMP_(a, !=, b)
#define ASSERT_LT(a, b) TH_CMP_(a, <, b)
#define ASSERT_LE(a, b) TH_CMP_(a, <=, b)
#define ASSERT_GT(a, b) TH_CMP_(a, >, b)
#define ASSERT_GE(a, b) TH_CMP_(a, >=, b)

/* `expr` returns a non-negative count or 0. */
#define ASSERT_OK(expr)                                                        \
    do {                                                                       \
        int64_t th_rc_ = (int64_t)(expr);                                      \
        if (th_rc_ < 0)                                                        \
            th_fail(__FILE__, __LINE__, "%s failed: %lld %s (%s)", #expr,      \
                    (long long)th_rc_, mproc_err_name((int)th_rc_),            \
                    mproc_strerror((int)th_rc_));                              \
    } while (0)

/* `expr` returns exactly the code `err`. */
#define ASSERT_ERR(expr, err)                                                  \
    do {                                                                       \
        int64_t th_rc_ = (int64_t)(expr);                                      \
        int th_want_ = (err);                                                  \
        if (th_rc_ != th_want_)                                                \
            th_fail(__FILE__, __LINE__,                                        \
                    "%s: expected %d %s (%s), got %lld %s (%s)", #expr,        \
                    th_want_, mproc_err_name(th_want_),                        \
                    mproc_strerror(th_want_), (long long)th_rc_,               \
                    mproc_err_name((int)th_rc_), mproc_strerror((int)th_rc_)); \
    } while (0)

#define ASSERT_NULL(p) ASSERT((p) == NULL)
#define ASSERT_NOT_NULL(p) ASSERT((p) != NULL)

#define ASSERT_STR_EQ(a, b)                                                    \
    do {                                                                       \
        const char *th_sa_ = (a);                                              \
        const char *th_sb_ = (b);                                              \
        if (th_sa_ == NULL || th_sb_ == NULL || strcmp(th_sa_, th_sb_) != 0)   \
            th_fail(__FILE__, __LINE__, "expected %s == %s: \"%s\" vs \"%s\"", \
                    #a, #b, th_sa_ ? th_sa_ : "(null)",                        \
                    th_sb_ ? th_sb_ : "(null)");                               \
    } while (0)

#define ASSERT_MEM_EQ(a, b, n)                                                 \
    do {                                                                       \
        if (memcmp((a), (b), (n)) != 0)                                        \
            th_fail(__FILE__, __LINE__,                                        \
                    "memory differs: %s vs %s (%zu bytes)", #a, #b,            \
                    (size_t)(n));                                              \
    } while (0)

/* --- helpers ------------------------------------------------------------ */

/* `ms` scaled by the suite's timeout multiplier (MPROC_TEST_TIMEOUT_MULTIPLIER
 * in the environment, set by CTest): use it for every timing bound. */
int th_ms(int ms);
/* A monotonic clock in milliseconds. */
int64_t th_now_ms(void);
/* The same clock in nanoseconds, at the platform's full resolution (for
 * bounds finer than a millisecond: a timeout measured from th_now_ms can
 * look up to 1 ms shorter than it was). */
int64_t th_now_ns(void);
/* The same clock in microseconds. One clock for the whole machine: a
 * child's reading compares with its parent's (latency across processes). */
int64_t th_now_us(void);
void th_sleep_ms(int ms);
/* The start method this run of the test uses (fork or spawn for tests
 * registered per start method, else the default). */
mproc_start_method th_method(void);
/* Number of descriptors or handles this process has open (for leak checks),
 * or -1 where the platform cannot tell. */
int th_open_handles(void);

/* --- shared by the test files (tests/helpers.c) -------------------------- */

/* In a child: the check that failed becomes the exit code (0: every check
 * held). */
#define CHILD_CHECK(cond, code)                                                \
    do {                                                                       \
        if (!(cond))                                                           \
            return (code);                                                     \
    } while (0)

/* Creates and starts a child running fn(args). */
mproc_process *th_start(mproc_target fn, mproc_value *args);
/* Joins p within th_ms(ms), destroys it and returns its exit code. */
int th_join_code(mproc_process *p, int ms);
/* Joins p within th_ms(ms), checks it exited with 0, destroys it. */
void th_join_ok(mproc_process *p, int ms);
/* The Pool's create for the tests that also run over another transport:
 * mproc_pool_create in this suite; in the MPI suite (tests/mpi), a pool
 * of min(opt->workers, ranks - 1) worker ranks made by
 * mproc_mpi_pool_create. */
int th_pool_create(mproc_pool **out, const mproc_pool_options *opt);
#if defined(_WIN32)
/* Windows: every allowed entry of the DACL of kernel object h names this
 * process's user, and there is one at least (S04, N04: objects of no other
 * user). */
void th_dacl_is_owner_only(intptr_t h);
#endif

/* Integer argument i of a child: th_arg_int gives -1 when it is missing
 * (for children that report through CHILD_CHECK), th_arg_int_ok fails the
 * test. */
int64_t th_arg_int(const mproc_value *args, size_t i);
int64_t th_arg_int_ok(const mproc_value *args, size_t i);

/* Runs test `name` of the list in a supervised child with the given start
 * method and timeout, as the runner does; returns the outcome. The
 * harness's meta-tests use it on the hidden `_meta_*` tests. */
enum th_outcome {
    TH_OUT_PASS = 0,
    TH_OUT_FAIL = 1,
    TH_OUT_SKIP = 2,
    TH_OUT_TIMEOUT = 3,
    TH_OUT_CRASH = 4,
    TH_OUT_ERROR = 5 /* could not run it */
};
enum th_outcome th_supervise(const char *name, const char *method,
                             int timeout_ms, int *status);

/* The runner's own argc and argv (backend tests check what a spawned child
 * received). */
extern int th_argc;
extern char **th_argv;

/* P25 (tests/test-process.c): the runner's main calls this instead of its
 * own when the environment holds TH_P25_ENV, before mproc_init, so that a
 * spawned copy of the runner behaves as a program whose main starts a
 * process before mproc_init. */
#define TH_P25_ENV "MPROC_TEST_P25_LOG"
int th_p25_main(int argc, char **argv);

/* --- platform part of the runner (runner-posix.c, runner-win32.c) ------ */

/* Starts this executable with `args` (NULL-terminated, after argv[0]) in a
 * child, waits at most timeout_ms, kills it (and whatever it started) on
 * timeout. Sets *timed_out, *crashed (killed by a signal or an exception)
 * and *status (exit status, or the signal / exception code). 0 or -1 when
 * the child could not be started. */
int th_platform_run(const char *const *args, int timeout_ms, bool *timed_out,
                    bool *crashed, int *status);
/* The same for another program of the build: `name` is a file beside this
 * executable (the build puts every program in one directory). */
int th_platform_run_exe(const char *name, const char *const *args,
                        int timeout_ms, bool *timed_out, bool *crashed,
                        int *status);
/* Sets (value not NULL) or removes an environment variable of this
 * process, where its children inherit it: 0 or -1. */
int th_platform_setenv(const char *name, const char *value);
/* Closes the standard descriptors 0-2 as a program may (Windows: the C
 * runtime's, which also clears the standard handles), keeping copies
 * elsewhere; restore puts those back. 0 or -1. */
int th_platform_std_close(void);
void th_platform_std_restore(void);
/* How many of the standard descriptors 0-2 are open (Windows: valid
 * standard handles). */
int th_platform_std_open(void);
int64_t th_platform_now_ms(void);
int64_t th_platform_now_ns(void);
int64_t th_platform_now_us(void);
void th_platform_sleep_ms(int ms);
int th_platform_open_handles(void);
const char *th_platform_name(void); /* "posix" or "win32" */
bool th_platform_is_wine(void);
/* POSIX: the runner's effective uid is 0 (tests that switch users need
 * it); Windows: false. */
bool th_platform_is_root(void);
/* Pins this process (and so the children it starts from now on) to one CPU
 * it may use: 0, or -1 where the platform has no affinity call. */
int th_platform_pin_to_one_cpu(void);
/* Runs fn(arg) in a child that is the first process of a new pid namespace
 * (with a /proc of its own), so that it may choose the pids of the
 * processes it starts (th_platform_next_pid); returns fn's result (the
 * child's exit status), or -1 with the reason in *why when the platform or
 * the privileges do not allow it (Linux as root only). */
int th_platform_pid_namespace(int (*fn)(void *), void *arg, const char **why);
/* In such a namespace: the next process started gets pid `pid` (unless
 * another starts first). 0, or -1. */
int th_platform_next_pid(int64_t pid);

#endif /* MPROC_TEST_HARNESS_H */
