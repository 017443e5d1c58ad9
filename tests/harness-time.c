/*
 * The harness's clock, sleep, timeout multiplier and handle count, shared
 * by the suite's runner (tests/runner.c) and the MPI suite's
 * (tests/mpi/runner-mpi.c): thin layers over the platform part of the
 * runner (runner-posix.c, runner-win32.c).
 */
#include "harness.h"

static double multiplier(void)
{
    const char *s = getenv("MPROC_TEST_TIMEOUT_MULTIPLIER");
    double m = s ? strtod(s, NULL) : 1.0;
    return m >= 1.0 ? m : 1.0;
}

int th_ms(int ms)
{
    return (int)((double)ms * multiplier());
}

int64_t th_now_ms(void)
{
    return th_platform_now_ms();
}

int64_t th_now_ns(void)
{
    return th_platform_now_ns();
}

int64_t th_now_us(void)
{
    return th_platform_now_us();
}

void th_sleep_ms(int ms)
{
    th_platform_sleep_ms(ms);
}

int th_open_handles(void)
{
    return th_platform_open_handles();
}
