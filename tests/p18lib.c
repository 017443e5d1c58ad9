/* P18: a target that lives in a shared library the runner links, so that
 * spawn must find it as (library, offset) in the child. */
#include "mproc.h"

#if defined(_WIN32)
#define P18_EXPORT __declspec(dllexport)
#else
#define P18_EXPORT __attribute__((visibility("default")))
#endif

P18_EXPORT int p18_lib_target(const mproc_value *args);

/* It calls nothing of mproc: the runner links mproc statically, with
 * hidden symbols a library could not bind to. */
int p18_lib_target(const mproc_value *args)
{
    return args != NULL ? 23 : 99;
}
