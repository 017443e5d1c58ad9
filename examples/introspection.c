/*
 * The seed's "some interesting functions": active_children(),
 * cpu_count(), current_process() and parent_process(), plus the number of
 * CPUs this process may really use.
 */
#include <mproc.h>

#include <stdio.h>

static void show(const char *who)
{
    mproc_process *me = mproc_current_process();
    mproc_process *parent = mproc_parent_process();
    printf("%s: current_process() = %s (pid %lld)", who, mproc_process_name(me),
           (long long)mproc_process_pid(me));
    if (parent != NULL)
        printf(", parent_process() = %s (pid %lld, alive %d)\n",
               mproc_process_name(parent), (long long)mproc_process_pid(parent),
               mproc_process_is_alive(parent));
    else
        printf(", parent_process() = None\n");
}

static int child(const mproc_value *args)
{
    (void)args;
    show("  child");
    return 0;
}

/* Waits until the event is set, so it stays alive meanwhile. */
static int sleeper(const mproc_value *args)
{
    mproc_event *e = NULL;
    if (mproc_value_get_event(mproc_list_get(args, 0), &e) < 0)
        return 1;
    return mproc_event_wait(e, MPROC_FOREVER) < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
    mproc_process *p = NULL, *s[3] = {NULL, NULL, NULL}, *live[8];
    mproc_event *go = NULL;
    int i, n, rc;

    rc = mproc_init(argc, argv);
    if (rc < 0)
        return 1;
    printf("cpu_count() = %d, usable = %d\n", mproc_cpu_count(),
           mproc_cpu_count_usable());
    show("main");

    rc = mproc_process_create(&p, child, NULL);
    if (rc == 0)
        rc = mproc_process_start(p);
    if (rc == 0)
        rc = mproc_process_join(p, MPROC_FOREVER);
    mproc_process_destroy(p);

    /* Three sleepers; they wait for one event. */
    if (rc == 0)
        rc = mproc_event_create(&go);
    for (i = 0; i < 3 && rc == 0; i++) {
        rc = mproc_process_create(&s[i], sleeper,
                                  MPROC_LIST(mproc_value_event(go)));
        if (rc == 0)
            rc = mproc_process_start(s[i]);
    }
    if (rc == 0) {
        n = mproc_active_children(live, 8);
        printf("active_children() = %d:", n);
        for (i = 0; i < n && i < 8; i++) {
            printf(" %s", mproc_process_name(live[i]));
            mproc_process_destroy(live[i]);
        }
        printf("\n");
        mproc_event_set(go);
        for (i = 0; i < 3; i++)
            mproc_process_join(s[i], MPROC_FOREVER);
        printf("after join: active_children() = %d\n",
               mproc_active_children(NULL, 0));
    }
    for (i = 0; i < 3; i++)
        mproc_process_destroy(s[i]);
    mproc_event_destroy(go);
    if (rc < 0)
        fprintf(stderr, "introspection: %s\n", mproc_strerror(rc));
    return rc < 0 ? 1 : 0;
}
