/*
 * The seed's first example: five workers, each printing its number.
 *
 *   def worker(i):
 *       print(i)
 *
 *   for i in range(5):
 *       p = multiprocessing.Process(target=worker, args=(i,))
 *       p.start()
 *       p.join()
 *
 * Run with MPROC_START_METHOD=spawn to start each worker as a fresh copy of
 * this program instead of a fork.
 */
#include <mproc.h>

#include <stdio.h>

static int worker(const mproc_value *args)
{
    int64_t i = 0;
    mproc_value_get_int(mproc_list_get(args, 0), &i);
    printf("%lld\n", (long long)i);
    return 0;
}

int main(int argc, char **argv)
{
    int i, rc;

    /* First: in a spawned worker this runs the worker and never returns. */
    rc = mproc_init(argc, argv);
    if (rc < 0) {
        fprintf(stderr, "mproc_init: %s\n", mproc_strerror(rc));
        return 1;
    }
    for (i = 0; i < 5; i++) {
        mproc_process *p = NULL;
        rc = mproc_process_create(&p, worker, MPROC_LIST(mproc_int(i)));
        if (rc == 0)
            rc = mproc_process_start(p);
        if (rc == 0)
            rc = mproc_process_join(p, MPROC_FOREVER);
        mproc_process_destroy(p);
        if (rc < 0) {
            fprintf(stderr, "worker %d: %s\n", i, mproc_strerror(rc));
            return 1;
        }
    }
    return 0;
}
