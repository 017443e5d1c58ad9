/*
 * The seed's Worker, a subclass of Process that overrides run() and keeps
 * per-process state (here the queue it puts into):
 *
 *   class Worker(Process):
 *       def __init__(self, q):
 *           self.q = q
 *           super(Worker, self).__init__()
 *       def run(self):
 *           self.q.put('local hello')
 *
 * In C the run function receives the process object itself, and the state
 * travels with it: mproc_process_state(self) in the child.
 */
#include <mproc.h>

#include <stdio.h>

static int worker_run(mproc_process *self)
{
    mproc_queue *q = NULL;
    mproc_value *msg;
    int rc;

    /* self.q */
    rc = mproc_value_get_queue(mproc_process_state(self), &q);
    if (rc < 0)
        return 1;
    msg = mproc_str("local hello");
    rc = mproc_queue_put(q, msg, MPROC_FOREVER);
    mproc_value_free(msg);
    return rc < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
    mproc_queue *q = NULL;
    mproc_process *w = NULL;
    mproc_value *got = NULL;
    char text[64];
    int rc;

    rc = mproc_init(argc, argv);
    if (rc == 0)
        rc = mproc_queue_create(&q, 0);
    /* Worker(q): the state is the queue handle. */
    if (rc == 0)
        rc = mproc_process_create_run(&w, worker_run, mproc_value_queue(q));
    if (rc == 0)
        rc = mproc_process_start(w);
    if (rc == 0)
        rc = mproc_queue_get(q, &got, MPROC_FOREVER);
    if (rc == 0) {
        mproc_value_repr(got, text, sizeof text);
        printf("%s\n", text); /* 'local hello' */
        rc = mproc_process_join(w, MPROC_FOREVER);
    }
    if (rc < 0)
        fprintf(stderr, "worker_run: %s\n", mproc_strerror(rc));
    mproc_value_free(got);
    mproc_process_destroy(w);
    mproc_queue_destroy(q);
    return rc < 0 ? 1 : 0;
}
