/*
 * The test runner.
 *
 *   mproc-tests --list                 every test, with mode and timeout
 *   mproc-tests NAME [fork|spawn]      run NAME supervised: in a child
 *                                      process with its own timeout
 *   mproc-tests --run NAME [METHOD]    run NAME in this process (what the
 *                                      supervised child does)
 *
 * The runner is also the program mproc's spawn method re-executes: main
 * calls mproc_init first, which never returns in such a child.
 */
#include "harness.h"

#include <stdarg.h>

#define TEST_ENTRY(name, mode, timeout) TH_DECLARE(name)
#include "list.h"
#undef TEST_ENTRY

typedef struct th_entry {
    const char *name;
    int (*fn)(void);
    bool each; /* per start method */
    int timeout_s;
} th_entry;

#define ONCE false
#define EACH true
static const th_entry tests[] = {
#define TEST_ENTRY(name, mode, timeout) {#name, th_test_##name, mode, timeout},
#include "list.h"
#undef TEST_ENTRY
};
#undef ONCE
#undef EACH

typedef struct th_skip {
    const char *name;
    const char *platform;
    const char *reason;
} th_skip;

static const th_skip skips[] = {
#define TH_SKIP_ENTRY(name, platform, reason) {name, platform, reason},
#include "skip.h"
#undef TH_SKIP_ENTRY
};

static mproc_start_method current_method = MPROC_START_DEFAULT;

void th_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fprintf(stderr, "%s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    _Exit(TH_FAIL);
}

mproc_start_method th_method(void)
{
    return current_method;
}

static const th_entry *find_test(const char *name)
{
    size_t i;
    for (i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
        if (strcmp(tests[i].name, name) == 0)
            return &tests[i];
    return NULL;
}

static const th_skip *find_skip(const char *name)
{
    size_t i;
    const char *plat = th_platform_name();
    for (i = 0; i < sizeof(skips) / sizeof(skips[0]); i++) {
        if (strcmp(skips[i].name, name) != 0)
            continue;
        if (strcmp(skips[i].platform, plat) == 0 ||
            (strcmp(skips[i].platform, "wine") == 0 && th_platform_is_wine()) ||
            (strcmp(skips[i].platform, "posix-nonroot") == 0 &&
             strcmp(plat, "posix") == 0 && !th_platform_is_root()))
            return &skips[i];
    }
    return NULL;
}

static int parse_method(const char *s, mproc_start_method *m)
{
    if (s == NULL || strcmp(s, "default") == 0)
        *m = MPROC_START_DEFAULT;
    else if (strcmp(s, "fork") == 0)
        *m = MPROC_START_FORK;
    else if (strcmp(s, "spawn") == 0)
        *m = MPROC_START_SPAWN;
    else
        return -1;
    return 0;
}

/* The TAP-like result line. tests/CMakeLists.txt passes a test only when
 * the runner printed "ok - NAME[ METHOD] (N ms)" for it, whatever the exit
 * status: a runner that never started (a binary the emulator cannot load
 * exits 0 without output) is a failure, not a pass. */
#if defined(__MINGW32__) && !defined(__clang__)
__attribute__((format(gnu_printf, 4, 5))) /* as th_fail, harness.h */
#elif defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static void
result_line(bool ok, const char *name, const char *method, const char *fmt, ...)
{
    va_list ap;
    printf("%s - %s%s%s ", ok ? "ok" : "not ok", name, method ? " " : "",
           method ? method : "");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

/* In the supervised child: run the test here. */
static int run_here(const char *name, const char *method)
{
    const th_entry *t = find_test(name);
    const th_skip *skip;
    int rc;

    if (t == NULL) {
        fprintf(stderr, "no test named %s\n", name);
        return 2;
    }
    if (parse_method(method, &current_method) != 0) {
        fprintf(stderr, "unknown start method %s\n", method);
        return 2;
    }
    skip = find_skip(name);
    if (skip != NULL) {
        printf("SKIP %s on %s: %s\n", name, th_platform_name(), skip->reason);
        return TH_SKIP;
    }
    if (current_method != MPROC_START_DEFAULT) {
        rc = mproc_set_start_method(current_method);
        if (rc < 0) {
            fprintf(stderr, "mproc_set_start_method: %s\n", mproc_strerror(rc));
            return TH_FAIL;
        }
    }
    rc = t->fn();
    fflush(stdout);
    fflush(stderr);
    /* Run by hand or under a tool (valgrind): the same proof that the test
     * ran to its end, in a form the supervised line never takes. */
    if (rc == TH_PASS && getenv("MPROC_TEST_SUPERVISED") == NULL)
        result_line(true, name, method, "(in this process)");
    return rc;
}

enum th_outcome th_supervise(const char *name, const char *method,
                             int timeout_ms, int *status)
{
    const char *args[5];
    bool timed_out = false, crashed = false;
    int st = 0;

    args[0] = "--run";
    args[1] = name;
    args[2] = method ? method : "default";
    args[3] = NULL;
    if (th_platform_run(args, timeout_ms, &timed_out, &crashed, &st) != 0)
        return TH_OUT_ERROR;
    if (status)
        *status = st;
    if (timed_out)
        return TH_OUT_TIMEOUT;
    if (crashed)
        return TH_OUT_CRASH;
    if (st == TH_PASS)
        return TH_OUT_PASS;
    if (st == TH_SKIP)
        return TH_OUT_SKIP;
    return TH_OUT_FAIL;
}

static int run_supervised(const char *name, const char *method)
{
    const th_entry *t = find_test(name);
    enum th_outcome out;
    int status = 0;
    int timeout_ms;
    int64_t t0;

    if (t == NULL) {
        fprintf(stderr, "no test named %s\n", name);
        return 2;
    }
    timeout_ms = th_ms(t->timeout_s * 1000);
    t0 = th_now_ms();
    /* The test process prints no result line of its own (run_here). */
    (void)th_platform_setenv("MPROC_TEST_SUPERVISED", "1");
    out = th_supervise(name, method, timeout_ms, &status);
    fflush(stdout);
    switch (out) {
    case TH_OUT_PASS:
        result_line(true, name, method, "(%lld ms)",
                    (long long)(th_now_ms() - t0));
        return 0;
    case TH_OUT_SKIP:
        result_line(true, name, method, "# SKIP");
        return TH_SKIP;
    case TH_OUT_TIMEOUT:
        result_line(false, name, method, "# timed out after %d ms", timeout_ms);
        return 1;
    case TH_OUT_CRASH:
        result_line(false, name, method, "# crashed (signal or exception %d)",
                    status);
        return 1;
    case TH_OUT_FAIL:
        result_line(false, name, method, "# failed with status %d", status);
        return 1;
    default:
        result_line(false, name, method, "# could not start the test process");
        return 1;
    }
}

int th_argc;
char **th_argv;

int main(int argc, char **argv)
{
    int rc;
    size_t i;

    th_argc = argc;
    th_argv = argv;
    /* Before mproc_init, on purpose (P25). */
    if (getenv(TH_P25_ENV) != NULL)
        return th_p25_main(argc, argv);
    rc = mproc_init(argc, argv);

    if (rc < 0) {
        fprintf(stderr, "mproc_init: %s\n", mproc_strerror(rc));
        return 2;
    }
    if (argc >= 2 && strcmp(argv[1], "--list") == 0) {
        for (i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
            printf("%s %s %d\n", tests[i].name, tests[i].each ? "EACH" : "ONCE",
                   tests[i].timeout_s);
        return 0;
    }
    if (argc >= 3 && strcmp(argv[1], "--run") == 0)
        return run_here(argv[2], argc >= 4 ? argv[3] : NULL);
    if (argc >= 2 && argv[1][0] != '-')
        return run_supervised(argv[1], argc >= 3 ? argv[2] : NULL);
    fprintf(stderr,
            "usage: %s --list | NAME [fork|spawn] | --run NAME [METHOD]\n",
            argv[0]);
    return 2;
}
