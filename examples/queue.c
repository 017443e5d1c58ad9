/*
 * The seed's Queue example: a child puts a list on a queue, the parent gets
 * it and prints it.
 *
 *   def f(q):
 *       q.put([42, None, 'hello'])
 *
 *   q = Queue()
 *   p = Process(target=f, args=(q,))
 *   p.start()
 *   print(q.get())    # prints "[42, None, 'hello']"
 *   p.join()
 *
 * The queue travels to the child as a process argument. No feeder thread:
 * when the child's put returns, the item is in the queue's shared memory.
 */
#include <mproc.h>

#include <stdio.h>

static int f(const mproc_value *args)
{
    mproc_queue *q = NULL;
    mproc_value *item;
    int rc;
    if (mproc_value_get_queue(mproc_list_get(args, 0), &q) != 0)
        return 2;
    item = MPROC_LIST(mproc_int(42), mproc_none(), mproc_str("hello"));
    if (item == NULL)
        return 3;
    rc = mproc_queue_put(q, item, MPROC_FOREVER);
    mproc_value_free(item);
    return rc == 0 ? 0 : 4;
}

int main(int argc, char **argv)
{
    mproc_queue *q = NULL;
    mproc_process *p = NULL;
    mproc_value *got = NULL;
    char text[128];
    int code = -1;

    /* First: in a spawned child this runs f and never returns. */
    int rc = mproc_init(argc, argv);
    if (rc == 0)
        rc = mproc_queue_create(&q, 0);
    if (rc == 0)
        rc = mproc_process_create(&p, f, MPROC_LIST(mproc_value_queue(q)));
    if (rc == 0)
        rc = mproc_process_start(p);
    if (rc == 0)
        rc = mproc_queue_get(q, &got, MPROC_FOREVER);
    if (rc == 0 && mproc_value_repr(got, text, sizeof text) >= 0)
        printf("%s\n", text);
    if (p != NULL && mproc_process_join(p, MPROC_FOREVER) == 0)
        (void)mproc_process_exitcode(p, &code);
    if (rc < 0)
        fprintf(stderr, "queue: %s\n", mproc_strerror(rc));
    mproc_value_free(got);
    mproc_process_destroy(p);
    mproc_queue_destroy(q);
    return rc == 0 && code == 0 ? 0 : 1;
}
