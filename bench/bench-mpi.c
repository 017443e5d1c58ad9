/*
 * The MPI pool's benchmark (bench/mpi.sh runs it and prints the table;
 * docs/benchmarks.md has the figures):
 *
 *   mpirun -n 4 mproc-bench-mpi mpi   [rounds]   the MPI pool (3 worker ranks)
 *   mproc-bench-mpi local             [rounds]   the local pool, 4 workers
 *   mpirun -n 4 mproc-bench-mpi raw   [rounds]   the floor: a raw MPI
 *                                                master/worker loop
 *
 * Cases: "map": map of square over 100,000 ints, automatic chunksize;
 * "task": map over 20,000 ints at chunksize 1, the time per task. Each
 * prints one line per case: `case impl best_ms median_ms per_task_us`.
 * The raw loop does what the pool does at chunksize 1 with nothing in
 * between: rank 0 sends one int64 to each worker rank, and refills
 * whichever rank answers first (MPI_ANY_SOURCE) until every item is
 * back; the workers square and answer.
 */
#include <mproc_mpi.h>

#include <mpi.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAP_N 100000
#define TASK_N 20000

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int square(const mproc_value *arg, mproc_value **result)
{
    int64_t x;
    if (mproc_value_get_int(arg, &x) != 0)
        return 1;
    *result = mproc_int(x * x);
    return 0;
}

static mproc_value *range(int64_t n)
{
    mproc_value *l = mproc_list_new();
    int64_t i;
    for (i = 0; i < n; i++)
        mproc_list_append(l, mproc_int(i));
    return l;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void report(const char *what, const char *impl, double *t, int rounds,
                   int n)
{
    qsort(t, (size_t)rounds, sizeof *t, cmp);
    printf("%s %s %.2f %.2f %.2f\n", what, impl, t[0], t[rounds / 2],
           t[0] * 1000.0 / n);
    fflush(stdout);
}

/* Checks a map's result: squares in order. */
static int check(const mproc_value *out, int64_t n)
{
    int64_t i, v;
    if ((int64_t)mproc_list_size(out) != n)
        return 1;
    for (i = 0; i < n; i++)
        if (mproc_value_get_int(mproc_list_get(out, (size_t)i), &v) != 0 ||
            v != i * i)
            return 1;
    return 0;
}

static int run_pool(mproc_pool *p, const char *impl, int rounds)
{
    mproc_value *big = range(MAP_N), *small = range(TASK_N), *out = NULL;
    double t[64];
    int r, bad = 0;
    /* one warm-up of each */
    bad |=
        mproc_pool_map(p, square, big, 0, &out, NULL) != 0 || check(out, MAP_N);
    mproc_value_free(out);
    for (r = 0; r < rounds; r++) {
        double t0 = now_ms();
        bad |= mproc_pool_map(p, square, big, 0, &out, NULL) != 0;
        t[r] = now_ms() - t0;
        bad |= check(out, MAP_N);
        mproc_value_free(out);
    }
    report("map", impl, t, rounds, MAP_N);
    for (r = 0; r < rounds; r++) {
        double t0 = now_ms();
        bad |= mproc_pool_map(p, square, small, 1, &out, NULL) != 0;
        t[r] = now_ms() - t0;
        bad |= check(out, TASK_N);
        mproc_value_free(out);
    }
    report("task", impl, t, rounds, TASK_N);
    mproc_value_free(big);
    mproc_value_free(small);
    mproc_pool_close(p);
    mproc_pool_join(p, MPROC_FOREVER);
    mproc_pool_destroy(p);
    if (bad)
        fprintf(stderr, "bench-mpi: %s: wrong results\n", impl);
    return bad;
}

/* The floor. */
static int run_raw(int rounds)
{
    int rank, size, r;
    double t[64];
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    for (r = 0; r <= rounds; r++) {
        if (rank == 0) {
            int64_t next = 0, done = 0, x, *res = malloc(TASK_N * sizeof *res);
            double t0 = now_ms();
            int w;
            MPI_Status st;
            for (w = 1; w < size && next < TASK_N; w++, next++)
                MPI_Send(&next, 1, MPI_INT64_T, w, 1, MPI_COMM_WORLD);
            while (done < TASK_N) {
                int64_t ans[2];
                MPI_Recv(ans, 2, MPI_INT64_T, MPI_ANY_SOURCE, 2, MPI_COMM_WORLD,
                         &st);
                res[ans[0]] = ans[1];
                done++;
                if (next < TASK_N) {
                    MPI_Send(&next, 1, MPI_INT64_T, st.MPI_SOURCE, 1,
                             MPI_COMM_WORLD);
                    next++;
                }
            }
            x = -1;
            for (w = 1; w < size; w++)
                MPI_Send(&x, 1, MPI_INT64_T, w, 1, MPI_COMM_WORLD);
            if (r > 0)
                t[r - 1] = now_ms() - t0;
            for (x = 0; x < TASK_N; x++)
                if (res[x] != x * x) {
                    fprintf(stderr, "bench-mpi: raw: wrong results\n");
                    return 1;
                }
            free(res);
        } else {
            for (;;) {
                int64_t x, ans[2];
                MPI_Recv(&x, 1, MPI_INT64_T, 0, 1, MPI_COMM_WORLD,
                         MPI_STATUS_IGNORE);
                if (x < 0)
                    break;
                ans[0] = x;
                ans[1] = x * x;
                MPI_Send(ans, 2, MPI_INT64_T, 0, 2, MPI_COMM_WORLD);
            }
        }
    }
    if (rank == 0)
        report("task", "raw-mpi", t, rounds, TASK_N);
    return 0;
}

int main(int argc, char **argv)
{
    int rounds, rc;
    if (mproc_init(argc, argv) < 0 || argc < 2) {
        fprintf(stderr, "usage: mproc-bench-mpi mpi|local|raw [rounds]\n");
        return 2;
    }
    rounds = argc > 2 ? atoi(argv[2]) : 5;
    if (rounds < 1 || rounds > 64)
        rounds = 5;
    if (strcmp(argv[1], "mpi") == 0) {
        mproc_pool *p = NULL;
        mproc_mpi_options m;
        memset(&m, 0, sizeof m);
        if (argc > 3)
            m.depth = atoi(argv[3]);
        rc = mproc_mpi_pool_create(&p, NULL, &m);
        if (rc != 0)
            return 1;
        return run_pool(p, m.depth == 2 ? "mproc-mpi-depth2" : "mproc-mpi",
                        rounds);
    }
    if (strcmp(argv[1], "local") == 0) {
        mproc_pool_options o;
        mproc_pool *p = NULL;
        memset(&o, 0, sizeof o);
        o.workers = 4;
        if (mproc_pool_create(&p, &o) != 0)
            return 1;
        return run_pool(p, "mproc-local-4", rounds);
    }
    if (strcmp(argv[1], "raw") == 0) {
        MPI_Init(&argc, &argv);
        rc = run_raw(rounds);
        MPI_Finalize();
        return rc;
    }
    return 2;
}
