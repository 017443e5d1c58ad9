/*
 * The seed's Lock example: ten processes print under one lock, so their
 * lines never mix.
 *
 *   def f(l, i):
 *       l.acquire()
 *       try:
 *           print('hello world', i)
 *       finally:
 *           l.release()
 *
 *   lock = Lock()
 *   for num in range(10):
 *       Process(target=f, args=(lock, num)).start()
 *
 * The lock travels to each child as a process argument; under spawn the
 * child receives a working lock of its own over the same shared state.
 */
#include <mproc.h>

#include <stdio.h>

static int f(const mproc_value *args)
{
    mproc_lock *l = NULL;
    int64_t i = 0;
    int rc;
    if (mproc_value_get_lock(mproc_list_get(args, 0), &l) != 0 ||
        mproc_value_get_int(mproc_list_get(args, 1), &i) != 0)
        return 2;
    rc = mproc_lock_acquire(l, MPROC_FOREVER);
    if (!MPROC_ACQUIRED(rc))
        return 3;
    printf("hello world %lld\n", (long long)i);
    fflush(stdout);
    return mproc_lock_release(l) == 0 ? 0 : 4;
}

int main(int argc, char **argv)
{
    mproc_process *procs[10] = {NULL};
    mproc_lock *lock = NULL;
    int rc, num, failed = 0;

    /* First: in a spawned child this runs f and never returns. */
    rc = mproc_init(argc, argv);
    if (rc == 0)
        rc = mproc_lock_create(&lock);
    if (rc < 0) {
        fprintf(stderr, "lock: %s\n", mproc_strerror(rc));
        return 1;
    }
    for (num = 0; num < 10; num++) {
        rc = mproc_process_create(
            &procs[num], f, MPROC_LIST(mproc_value_lock(lock), mproc_int(num)));
        if (rc == 0)
            rc = mproc_process_start(procs[num]);
        if (rc < 0) {
            fprintf(stderr, "process %d: %s\n", num, mproc_strerror(rc));
            failed = 1;
        }
    }
    for (num = 0; num < 10; num++) {
        int code = 0;
        if (procs[num] != NULL &&
            mproc_process_join(procs[num], MPROC_FOREVER) == 0 &&
            mproc_process_exitcode(procs[num], &code) == 0 && code != 0)
            failed = 1;
        procs[num] = mproc_process_destroy(procs[num]);
    }
    lock = mproc_lock_destroy(lock);
    return failed;
}
