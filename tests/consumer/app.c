#include <mproc.h>
#include <stdio.h>

/* Runs in the child: put one list on the queue it was given. */
static int worker(const mproc_value *args)
{
    mproc_queue *q;
    if (mproc_value_get_queue(mproc_list_get(args, 0), &q) != 0)
        return 1;
    mproc_value *item =
        MPROC_LIST(mproc_int(42), mproc_none(), mproc_str("hello"));
    int rc = mproc_queue_put(q, item, MPROC_FOREVER);
    mproc_value_free(item);
    return rc == 0 ? 0 : 1; /* the child's exit code */
}

int main(int argc, char **argv)
{
    /* First statement: in a child started by spawn, this runs worker() and
     * never returns (Python's `if __name__ == '__main__':`). */
    if (mproc_init(argc, argv) != 0)
        return 1;

    mproc_queue *q;
    mproc_process *p;
    mproc_value *got;
    char text[64];

    int rc = mproc_queue_create(&q, 0);
    if (rc == 0)
        rc = mproc_process_create(&p, worker, MPROC_LIST(mproc_value_queue(q)));
    if (rc == 0)
        rc = mproc_process_start(p);
    if (rc == 0)
        rc = mproc_queue_get(q, &got, MPROC_FOREVER);
    if (rc != 0) {
        fprintf(stderr, "mproc: %s\n", mproc_strerror(rc));
        return 1;
    }
    mproc_value_repr(got, text, sizeof text);
    printf("%s\n", text); /* [42, None, 'hello'] */
    mproc_value_free(got);

    mproc_process_join(p, MPROC_FOREVER);
    p = mproc_process_destroy(p);
    q = mproc_queue_destroy(q);
    return 0;
}
