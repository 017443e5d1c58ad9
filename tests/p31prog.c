/*
 * The program of row P31 (tests/test-process.c): it links the shared
 * library (the DLL on Windows), where the runner links the static one.
 *
 *   mproc-p31 exit MARKER MS    starts a child that creates the file MARKER
 *                               after MS ms, then returns from main while
 *                               another thread keeps calling into the
 *                               library: the exit-time join must run (MARKER
 *                               exists once this program has ended) and
 *                               must not hang
 *   mproc-p31 _exit MARKER MS   the same, but ends with _Exit at once: no
 *                               join (MARKER appears only later)
 *
 * Exit status 0, or the number of the step that failed.
 */
#include "mproc.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Waits ms milliseconds through the library (no platform call here): a
 * poll on a pipe nobody writes to. */
static void nap(int ms)
{
    mproc_conn *a = NULL, *b = NULL;
    if (mproc_pipe(&a, &b, false) == 0)
        (void)mproc_conn_poll(a, ms);
    mproc_conn_destroy(a);
    mproc_conn_destroy(b);
}

static int child(const mproc_value *args)
{
    const char *path = NULL;
    size_t n = 0;
    int64_t ms = 0;
    FILE *f;
    if (mproc_value_get_str(mproc_list_get(args, 0), &path, &n) != 0 ||
        mproc_value_get_int(mproc_list_get(args, 1), &ms) != 0)
        return 2;
    nap((int)ms);
    f = fopen(path, "w");
    if (f == NULL)
        return 3;
    return fclose(f) == 0 ? 0 : 4;
}

/* Never leaves the library for long: each of these takes its locks. */
static void *busy(void *arg)
{
    mproc_process *p = arg;
    for (;;) {
        (void)mproc_active_children(NULL, 0);
        (void)mproc_current_process();
        (void)mproc_process_is_alive(p);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    mproc_process *p = NULL;
    pthread_t t;
    int rc = mproc_init(argc, argv);

    if (rc < 0 || argc < 4)
        return 2;
    if (mproc_process_create(
            &p, child,
            MPROC_LIST(mproc_str(argv[2]),
                       mproc_int(strtol(argv[3], NULL, 10)))) != 0 ||
        mproc_process_start(p) != 0)
        return 3;
    if (pthread_create(&t, NULL, busy, p) != 0)
        return 4;
    nap(50); /* the thread is busy in the library by now */
    fflush(stdout);
    if (strcmp(argv[1], "_exit") == 0)
        _Exit(0);
    return 0; /* the child is joined at exit; the thread never ends */
}
