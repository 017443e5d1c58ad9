/*
 * The Pool example of Python's multiprocessing documentation, in C:
 *
 *   def f(x):
 *       return x*x
 *
 *   with Pool(processes=4) as pool:
 *       print(pool.map(f, range(10)))       # [0, 1, 4, ..., 81]
 *       for i in pool.imap_unordered(f, range(10)):
 *           print(i)                         # the same, in any order
 *       res = pool.apply_async(f, (20,))
 *       print(res.get(timeout=1))            # 400
 *       res = pool.apply_async(time.sleep, (10,))
 *       try:
 *           print(res.get(timeout=1))
 *       except TimeoutError:
 *           print("We lacked patience and got a multiprocessing.TimeoutError")
 *       print("For the moment, the pool remains available for more work")
 *   print("Now the pool is closed and no longer available")
 *
 * Run with MPROC_START_METHOD=spawn to start the workers as fresh copies of
 * this program instead of forks.
 */
#include <mproc.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int f(const mproc_value *arg, mproc_value **result)
{
    int64_t x;
    if (mproc_value_get_int(arg, &x) != 0)
        return 1;
    *result = mproc_int(x * x);
    return 0;
}

/* time.sleep: sleeps arg seconds. */
static int nap(const mproc_value *arg, mproc_value **result)
{
    int64_t s = 0;
    mproc_event *never = NULL;
    (void)result;
    mproc_value_get_int(arg, &s);
    /* A wait nobody ends is a portable sleep. */
    if (mproc_event_create(&never) == 0) {
        mproc_event_wait(never, (int)(s * 1000));
        mproc_event_destroy(never);
    }
    return 0;
}

static void print_value(const mproc_value *v)
{
    char buf[256];
    mproc_value_repr(v, buf, sizeof buf);
    printf("%s\n", buf);
}

static int die(const char *what, int rc)
{
    fprintf(stderr, "%s: %s\n", what, mproc_strerror(rc));
    return 1;
}

int main(int argc, char **argv)
{
    mproc_pool_options opt;
    mproc_pool *pool = NULL;
    mproc_value *range, *squares = NULL, *x, *ten;
    mproc_imap *it = NULL;
    mproc_future *res = NULL;
    const mproc_value *v = NULL;
    int rc, i;

    rc = mproc_init(argc, argv); /* in a spawned worker: never returns */
    if (rc < 0)
        return die("mproc_init", rc);
    memset(&opt, 0, sizeof opt);
    opt.workers = 4;
    rc = mproc_pool_create(&pool, &opt);
    if (rc < 0)
        return die("mproc_pool_create", rc);

    range = mproc_list_new();
    for (i = 0; i < 10; i++)
        mproc_list_append(range, mproc_int(i));

    /* print "[0, 1, 4, ..., 81]" */
    rc = mproc_pool_map(pool, f, range, 0, &squares, NULL);
    if (rc != 0)
        return die("mproc_pool_map", rc < 0 ? rc : MPROC_EINVAL);
    print_value(squares);
    mproc_value_free(squares);

    /* print the same numbers in arbitrary order */
    rc = mproc_pool_imap_unordered(pool, f, mproc_value_copy(range), 1, &it);
    if (rc < 0)
        return die("mproc_pool_imap_unordered", rc);
    for (;;) {
        mproc_value *sq = NULL;
        rc = mproc_imap_next(it, &sq, NULL, MPROC_FOREVER);
        if (rc != 0)
            break;
        print_value(sq);
        mproc_value_free(sq);
    }
    mproc_imap_destroy(it);
    if (rc != MPROC_EEOF)
        return die("mproc_imap_next", rc < 0 ? rc : MPROC_EINVAL);

    /* evaluate "f(20)" asynchronously */
    x = mproc_int(20);
    rc = mproc_pool_apply_async(pool, f, x, NULL, NULL, &res);
    if (rc == 0)
        rc = mproc_future_result(res, &v, NULL, 1000);
    if (rc != 0)
        return die("f(20)", rc < 0 ? rc : MPROC_EINVAL);
    print_value(v); /* prints "400" */
    mproc_future_destroy(res);
    mproc_value_free(x);

    /* make a single worker sleep for 10 seconds */
    ten = mproc_int(10);
    rc = mproc_pool_apply_async(pool, nap, ten, NULL, NULL, &res);
    if (rc == 0)
        rc = mproc_future_result(res, &v, NULL, 1000);
    if (rc == MPROC_ETIMEDOUT)
        printf("We lacked patience and got a timeout (MPROC_%s)\n",
               mproc_err_name(rc));
    mproc_future_destroy(res);
    mproc_value_free(ten);
    mproc_value_free(range);

    printf("For the moment, the pool remains available for more work\n");

    /* exiting the with-block has stopped the pool (terminate) */
    mproc_pool_terminate(pool);
    pool = mproc_pool_destroy(pool);
    printf("Now the pool is closed and no longer available\n");
    return 0;
}
