/* P18 for a fully static program (tests/CMakeLists.txt links it -static):
 * spawn starts a static target of it. The module list comes from
 * dl_iterate_phdr, which a static program has (dladdr knows nothing there),
 * and the entry check reads the program's symbol table from its file; the
 * stripped copy has none, and its start is the documented MPROC_ERESOLVE
 * (docs/platforms.md). Prints "p18static: NAME exit N". */
#include <mproc.h>

#include <stdio.h>

static int target(const mproc_value *args)
{
    (void)args;
    return 7;
}

int main(int argc, char **argv)
{
    mproc_process *p = NULL;
    int code = -1;
    int rc = mproc_init(argc, argv);
    if (rc == 0)
        rc = mproc_process_create(&p, target, NULL);
    if (rc == 0)
        rc = mproc_process_set_start_method(p, MPROC_START_SPAWN);
    if (rc == 0)
        rc = mproc_process_start(p);
    if (rc == 0)
        rc = mproc_process_join(p, MPROC_FOREVER);
    if (rc == 0)
        rc = mproc_process_exitcode(p, &code);
    p = mproc_process_destroy(p);
    printf("p18static: %s exit %d\n", rc == 0 ? "OK" : mproc_err_name(rc),
           code);
    return 0;
}
