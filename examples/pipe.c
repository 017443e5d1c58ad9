/*
 * The seed's Pipe example: one child sends a list through one end of a pipe
 * and closes it; another child receives it from the other end and prints
 * it.
 *
 *   def sender(conn):
 *       conn.send([42, None, 'hello', True])
 *       conn.close()
 *
 *   def receiver(conn):
 *       print(conn.recv())    # prints "[42, None, 'hello', True]"
 *
 *   a, b = Pipe()
 *   p1 = Process(target=sender, args=(a,))
 *   p2 = Process(target=receiver, args=(b,))
 *   p1.start(); p2.start(); p1.join(); p2.join()
 *
 * Each end travels to its child as a process argument. The parent closes
 * its own copies after starting the children, so that the receiver would
 * see end-of-file rather than wait forever if the sender died.
 */
#include <mproc.h>

#include <stdio.h>

static int sender(const mproc_value *args)
{
    mproc_conn *conn = NULL;
    mproc_value *msg;
    int rc;
    if (mproc_value_get_conn(mproc_list_get(args, 0), &conn) != 0)
        return 2;
    msg = MPROC_LIST(mproc_int(42), mproc_none(), mproc_str("hello"),
                     mproc_bool(true));
    if (msg == NULL)
        return 3;
    rc = mproc_conn_send(conn, msg);
    mproc_value_free(msg);
    if (rc == 0)
        rc = mproc_conn_close(conn);
    return rc == 0 ? 0 : 4;
}

static int receiver(const mproc_value *args)
{
    mproc_conn *conn = NULL;
    mproc_value *msg = NULL;
    char text[128];
    int rc;
    if (mproc_value_get_conn(mproc_list_get(args, 0), &conn) != 0)
        return 2;
    rc = mproc_conn_recv(conn, &msg, MPROC_FOREVER);
    if (rc < 0) {
        fprintf(stderr, "receiver: %s\n", mproc_strerror(rc));
        return 3;
    }
    if (mproc_value_repr(msg, text, sizeof text) >= 0)
        printf("%s\n", text);
    mproc_value_free(msg);
    return 0;
}

int main(int argc, char **argv)
{
    mproc_conn *a = NULL, *b = NULL;
    mproc_process *p1 = NULL, *p2 = NULL;
    int code1 = -1, code2 = -1;

    /* First: in a spawned child this runs its target and never returns. */
    int rc = mproc_init(argc, argv);
    if (rc == 0)
        rc = mproc_pipe(&a, &b, true);
    if (rc == 0)
        rc = mproc_process_create(&p1, sender, MPROC_LIST(mproc_value_conn(a)));
    if (rc == 0)
        rc = mproc_process_create(&p2, receiver,
                                  MPROC_LIST(mproc_value_conn(b)));
    if (rc == 0)
        rc = mproc_process_start(p1);
    if (rc == 0)
        rc = mproc_process_start(p2);
    if (rc == 0) {
        (void)mproc_conn_close(a);
        (void)mproc_conn_close(b);
    }
    if (p1 != NULL && mproc_process_join(p1, MPROC_FOREVER) == 0)
        (void)mproc_process_exitcode(p1, &code1);
    if (p2 != NULL && mproc_process_join(p2, MPROC_FOREVER) == 0)
        (void)mproc_process_exitcode(p2, &code2);
    if (rc < 0)
        fprintf(stderr, "pipe: %s\n", mproc_strerror(rc));
    mproc_process_destroy(p1);
    mproc_process_destroy(p2);
    mproc_conn_destroy(a);
    mproc_conn_destroy(b);
    return rc == 0 && code1 == 0 && code2 == 0 ? 0 : 1;
}
