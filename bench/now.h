/*
 * The monotonic clock of the standalone bench programs (queue-tput.c,
 * pipe-rtt.c), in seconds. The includer has <windows.h> or <time.h>.
 */
#ifndef MPROC_BENCH_NOW_H
#define MPROC_BENCH_NOW_H

static double now_s(void)
{
#if defined(_WIN32)
    LARGE_INTEGER f, c;
    QueryPerformanceFrequency(&f);
    QueryPerformanceCounter(&c);
    return (double)c.QuadPart / (double)f.QuadPart;
#else
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
#endif
}

#endif
