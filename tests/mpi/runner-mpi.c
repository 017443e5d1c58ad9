/*
 * The MPI suite's runner: every rank of `mpirun -n N mproc-mpi-tests --run
 * NAME` runs test NAME (mpirun and CTest supervise: a failed assertion
 * ends its rank with status 1, and the launcher then the job). Worker
 * ranks enter mproc_mpi_pool_create at the test's first pool and serve
 * until rank 0's test has finished.
 *
 *   mproc-mpi-tests --list
 *   mproc-mpi-tests --run NAME
 */
#include "harness.h"
#include "mproc_mpi.h"

#include <stdarg.h>

#define MPI_ENTRY(name, launch, timeout) TH_DECLARE(name)
#include "list-mpi.h"
#undef MPI_ENTRY

typedef struct entry {
    const char *name;
    int (*fn)(void);
} entry;

static const entry tests[] = {
#define MPI_ENTRY(name, launch, timeout) {#name, th_test_##name},
#include "list-mpi.h"
#undef MPI_ENTRY
};

int th_argc;
char **th_argv;

void th_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    int rank = -1;
    fflush(stdout);
    (void)mproc_mpi_world(&rank, NULL);
    fprintf(stderr, "rank %d: %s:%d: ", rank, file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    _Exit(TH_FAIL);
}

mproc_start_method th_method(void)
{
    return MPROC_START_DEFAULT;
}

/* A pool of min(opt->workers, ranks - 1) worker ranks: the pool rows ask
 * for up to 4 workers, the job has 3 (mpirun -n 4). */
int th_pool_create(mproc_pool **out, const mproc_pool_options *opt)
{
    mproc_pool_options o;
    int size = 1;
    memset(&o, 0, sizeof o);
    if (opt != NULL)
        o = *opt;
    (void)mproc_mpi_world(NULL, &size);
    if (size > 1 && o.workers > size - 1)
        o.workers = size - 1;
    return mproc_mpi_pool_create(out, &o, NULL);
}

int main(int argc, char **argv)
{
    size_t i;
    int rc, rank = 0;
    th_argc = argc;
    th_argv = argv;
    rc = mproc_init(argc, argv);
    if (rc < 0) {
        fprintf(stderr, "mproc_init: %s\n", mproc_strerror(rc));
        return 2;
    }
    if (argc >= 2 && strcmp(argv[1], "--list") == 0) {
        for (i = 0; i < sizeof tests / sizeof tests[0]; i++)
            printf("%s\n", tests[i].name);
        return 0;
    }
    if (argc < 3 || strcmp(argv[1], "--run") != 0) {
        fprintf(stderr, "usage: %s --list | --run NAME\n", argv[0]);
        return 2;
    }
    for (i = 0; i < sizeof tests / sizeof tests[0]; i++)
        if (strcmp(tests[i].name, argv[2]) == 0)
            break;
    if (i == sizeof tests / sizeof tests[0]) {
        fprintf(stderr, "no test named %s\n", argv[2]);
        return 2;
    }
    rc = tests[i].fn();
    (void)mproc_mpi_world(&rank, NULL);
    if (rc == 0 && rank == 0)
        printf("ok - %s (rank 0)\n", argv[2]);
    fflush(stdout);
    return rc;
}
