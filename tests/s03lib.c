/* S03: a library the runner does not link. A test loads it at run time in
 * the parent and asks a spawned child to run a function of it: the child
 * must refuse without loading it, since its constructor would run before
 * any check could. Should the constructor run while MPROC_S03_MARK names a
 * file, it leaves that file behind and ends the process with code 55. */
#include <stdio.h>
#include <stdlib.h>

#if defined(_WIN32)
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#define S03_EXPORT __declspec(dllexport)
#else
#include <unistd.h>
#define S03_EXPORT __attribute__((visibility("default")))
#endif

S03_EXPORT int s03_lib_target(const void *args);

int s03_lib_target(const void *args)
{
    return args != NULL ? 24 : 98;
}

static void leave_mark(void)
{
    const char *path = getenv("MPROC_S03_MARK");
    FILE *f;
    if (path == NULL || path[0] == '\0')
        return;
    f = fopen(path, "w");
    if (f != NULL)
        fclose(f);
#if defined(_WIN32)
    TerminateProcess(GetCurrentProcess(), 55);
#else
    _exit(55);
#endif
}

#if defined(_WIN32)
BOOL WINAPI DllMain(HINSTANCE inst, DWORD reason, void *reserved);
BOOL WINAPI DllMain(HINSTANCE inst, DWORD reason, void *reserved)
{
    (void)inst;
    (void)reserved;
    if (reason == DLL_PROCESS_ATTACH)
        leave_mark();
    return TRUE;
}
#else
__attribute__((constructor)) static void s03_constructor(void)
{
    leave_mark();
}
#endif
