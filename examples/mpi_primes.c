/*
 * examples/pool_primes.c over the ranks of an MPI job: the same program
 * with two lines changed, the include and the create call. Run it with
 *
 *   mpirun -n 4 ./mpi_primes        (scripts/mpi-demo.sh does it all)
 *
 * Every rank runs main; mproc_mpi_pool_create makes rank 0 the pool's
 * master and ranks 1..3 its workers, which serve the pool and end with
 * rank 0, so only rank 0 gets past the call and prints. Without mpirun
 * the same binary uses a local pool (docs/mpi.md).
 */
#include <mproc_mpi.h>

#include <stdio.h>
#include <string.h>
#if defined(_WIN32)
#include <windows.h>
#else
#include <time.h>
#endif

#define N 3000000
#define PIECES 64

static int64_t now_us(void)
{
#if defined(_WIN32)
    LARGE_INTEGER f, c;
    QueryPerformanceFrequency(&f);
    QueryPerformanceCounter(&c);
    return (int64_t)(c.QuadPart / f.QuadPart * 1000000 +
                     c.QuadPart % f.QuadPart * 1000000 / f.QuadPart);
#else
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
#endif
}

static int64_t count_range(int64_t lo, int64_t hi)
{
    int64_t n, d, count = 0;
    for (n = lo < 2 ? 2 : lo; n < hi; n++) {
        int prime = n == 2 || n % 2 != 0;
        for (d = 3; prime && d * d <= n; d += 2)
            if (n % d == 0)
                prime = 0;
        count += prime;
    }
    return count;
}

/* [lo, hi] -> the number of primes in [lo, hi) */
static int count_primes(const mproc_value *args, mproc_value **result)
{
    int64_t lo = 0, hi = 0;
    if (mproc_value_get_int(mproc_list_get(args, 0), &lo) != 0 ||
        mproc_value_get_int(mproc_list_get(args, 1), &hi) != 0)
        return 1;
    *result = mproc_int(count_range(lo, hi));
    return 0;
}

int main(int argc, char **argv)
{
    mproc_pool *pool = NULL;
    mproc_value *ranges, *counts = NULL;
    int64_t t0, serial_us, pool_us, serial, total = 0;
    int rc, i, workers;

    rc = mproc_init(argc, argv);
    if (rc < 0)
        return 1;

    t0 = now_us();
    serial = count_range(0, N);
    serial_us = now_us() - t0;

    /* Many more pieces than workers: the large numbers cost more. */
    ranges = mproc_list_new();
    for (i = 0; i < PIECES; i++)
        mproc_list_append(ranges,
                          MPROC_LIST(mproc_int((int64_t)N * i / PIECES),
                                     mproc_int((int64_t)N * (i + 1) / PIECES)));
    t0 = now_us();
    rc = mproc_mpi_pool_create(&pool, NULL, NULL); /* every other rank */
    if (rc == 0)
        rc = mproc_pool_starmap(pool, count_primes, ranges, 1, &counts, NULL);
    pool_us = now_us() - t0;
    if (rc != 0) {
        fprintf(stderr, "pool: %s\n", rc < 0 ? mproc_strerror(rc) : "failed");
        return 1;
    }
    workers = mproc_pool_workers(pool);
    for (i = 0; i < PIECES; i++) {
        int64_t c = 0;
        mproc_value_get_int(mproc_list_get(counts, (size_t)i), &c);
        total += c;
    }
    mproc_value_free(counts);
    mproc_value_free(ranges);
    mproc_pool_close(pool);
    mproc_pool_join(pool, MPROC_FOREVER);
    pool = mproc_pool_destroy(pool);

    printf("primes below %d: %lld (serial), %lld (pool)\n", N,
           (long long)serial, (long long)total);
    printf("serial: %.1f ms; pool of %d workers (start included): %.1f ms; "
           "speedup %.2fx\n",
           (double)serial_us / 1000, workers, (double)pool_us / 1000,
           (double)serial_us / (double)(pool_us > 0 ? pool_us : 1));
    return serial == total ? 0 : 1;
}
