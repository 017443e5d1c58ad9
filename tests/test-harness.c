/* The harness proves itself: a failing assertion fails, a hang times out, a
 * crash fails, a pass passes and a listed skip skips (H01-H05). The hidden
 * _meta_* tests are what the meta-tests run under supervision. */
#include "harness.h"

#include <signal.h>

/* A sanitizer turns a fault into its own report and a failing exit status
 * (it handles SIGSEGV itself); the test still fails, which is what H03
 * proves. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TH_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) ||     \
    __has_feature(undefined_behavior_sanitizer)
#define TH_SANITIZED 1
#endif
#endif
#ifndef TH_SANITIZED
#define TH_SANITIZED 0
#endif

TEST(_meta_fail_assert)
{
    ASSERT_EQ(1 + 1, 3);
    return 0;
}

TEST(_meta_hang)
{
    for (;;)
        th_sleep_ms(1000);
}

TEST(_meta_crash)
{
    volatile int *volatile p = NULL;
    /* A real fault, not a call to abort(). */
    // cppcheck-suppress nullPointer
    *p = 42; /* NOLINT(clang-analyzer-core.NullDereference): the crash */
    return 0;
}

TEST(_meta_pass)
{
    return 0;
}

TEST(_meta_skip)
{
    /* Listed in tests/skip.h on every platform: never reaches here. */
    return TH_FAIL;
}

TEST(H01_meta_assert_fails)
{
    int st = -1;
    ASSERT_EQ(th_supervise("_meta_fail_assert", NULL, th_ms(10000), &st),
              TH_OUT_FAIL);
    ASSERT_EQ(st, TH_FAIL);
    return 0;
}

TEST(H02_meta_hang_times_out)
{
    int64_t t0 = th_now_ms();
    int64_t took;
    ASSERT_EQ(th_supervise("_meta_hang", NULL, 500, NULL), TH_OUT_TIMEOUT);
    took = th_now_ms() - t0;
    ASSERT_GE(took, 450);
    ASSERT_LT(took, th_ms(10000));
    return 0;
}

TEST(H03_meta_crash_fails)
{
    int st = 0;
    enum th_outcome out = th_supervise("_meta_crash", NULL, th_ms(20000), &st);
    if (TH_SANITIZED && out == TH_OUT_FAIL)
        out = TH_OUT_CRASH;
    ASSERT_EQ(out, TH_OUT_CRASH);
    ASSERT_NE(st, 0);
    return 0;
}

TEST(H04_meta_pass_and_skip)
{
    ASSERT_EQ(th_supervise("_meta_pass", NULL, th_ms(10000), NULL),
              TH_OUT_PASS);
    ASSERT_EQ(th_supervise("_meta_skip", NULL, th_ms(10000), NULL),
              TH_OUT_SKIP);
    /* A test the list does not know is not a pass. */
    ASSERT_NE(th_supervise("no_such_test", NULL, th_ms(10000), NULL),
              TH_OUT_PASS);
    return 0;
}

TEST(H05_error_table)
{
    static const int codes[] = {
#define TH_CODE_(name, value, msg) MPROC_##name,
        MPROC_ERRNO_MAP(TH_CODE_)
#undef TH_CODE_
    };
    size_t n = sizeof codes / sizeof codes[0], i, j;

    for (i = 0; i < n; i++) {
        ASSERT_LT(codes[i], 0);
        ASSERT(strcmp(mproc_err_name(codes[i]), "UNKNOWN") != 0);
        ASSERT(strcmp(mproc_strerror(codes[i]), "unknown error") != 0);
        for (j = i + 1; j < n; j++)
            ASSERT_NE(codes[i], codes[j]);
    }
    ASSERT_STR_EQ(mproc_err_name(MPROC_EINVAL), "EINVAL");
    ASSERT_STR_EQ(mproc_err_name(-12345), "UNKNOWN");
    ASSERT_STR_EQ(mproc_strerror(12345), "unknown error");
    ASSERT_STR_EQ(mproc_strerror(0), "success");
    ASSERT_EQ(mproc_version(), MPROC_VERSION_HEX);
    ASSERT_STR_EQ(mproc_version_string(), "0.1.0");
    return 0;
}
