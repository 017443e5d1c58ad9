/*
 * A counter in shared memory, incremented by several processes under a
 * lock: Python's Value('i', 0) with its get_lock(), in C.
 *
 *   def work(counter, lock, n):
 *       for _ in range(n):
 *           with lock:
 *               counter.value += 1
 *
 * Usage: counter [processes [increments]]   (default 4 x 10000)
 * Prints the total, which is always processes x increments.
 */
#include <mproc.h>

#include <stdio.h>
#include <stdlib.h>

static int work(const mproc_value *args)
{
    mproc_shm *shm = NULL;
    mproc_lock *lock = NULL;
    int64_t n = 0;
    volatile int64_t *counter;
    if (mproc_value_get_shm(mproc_list_get(args, 0), &shm) != 0 ||
        mproc_value_get_lock(mproc_list_get(args, 1), &lock) != 0 ||
        mproc_value_get_int(mproc_list_get(args, 2), &n) != 0)
        return 2;
    counter = (volatile int64_t *)mproc_shm_ptr(shm);
    for (int64_t i = 0; i < n; i++) {
        if (!MPROC_ACQUIRED(mproc_lock_acquire(lock, MPROC_FOREVER)))
            return 3;
        *counter += 1;
        if (mproc_lock_release(lock) != 0)
            return 4;
    }
    return 0;
}

int main(int argc, char **argv)
{
    mproc_process **procs;
    mproc_shm *shm = NULL;
    mproc_lock *lock = NULL;
    long nprocs = 4, n = 10000;
    int rc, failed = 0;

    rc = mproc_init(argc, argv);
    if (rc < 0) {
        fprintf(stderr, "mproc_init: %s\n", mproc_strerror(rc));
        return 1;
    }
    if (argc > 1)
        nprocs = strtol(argv[1], NULL, 10);
    if (argc > 2)
        n = strtol(argv[2], NULL, 10);
    if (nprocs < 1 || nprocs > 256 || n < 0) {
        fprintf(stderr, "usage: counter [processes (1-256) [increments]]\n");
        return 2;
    }
    /* Zero-filled: the counter starts at 0. */
    rc = mproc_shm_create(&shm, sizeof(int64_t));
    if (rc == 0)
        rc = mproc_lock_create(&lock);
    /* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers */
    procs = (mproc_process **)calloc((size_t)nprocs, sizeof *procs);
    if (rc < 0 || procs == NULL) {
        fprintf(stderr, "setup: %s\n",
                mproc_strerror(rc < 0 ? rc : MPROC_ENOMEM));
        free(procs);
        return 1;
    }
    for (long i = 0; i < nprocs; i++) {
        rc = mproc_process_create(&procs[i], work,
                                  MPROC_LIST(mproc_value_shm(shm),
                                             mproc_value_lock(lock),
                                             mproc_int(n)));
        if (rc == 0)
            rc = mproc_process_start(procs[i]);
        if (rc < 0) {
            fprintf(stderr, "process %ld: %s\n", i, mproc_strerror(rc));
            failed = 1;
        }
    }
    for (long i = 0; i < nprocs; i++) {
        int code = 0;
        if (procs[i] != NULL &&
            mproc_process_join(procs[i], MPROC_FOREVER) == 0 &&
            mproc_process_exitcode(procs[i], &code) == 0 && code != 0)
            failed = 1;
        procs[i] = mproc_process_destroy(procs[i]);
    }
    free(procs);
    printf("%lld\n", (long long)*(volatile int64_t *)mproc_shm_ptr(shm));
    lock = mproc_lock_destroy(lock);
    shm = mproc_shm_destroy(shm);
    return failed;
}
