/* The error table's strings, and the version query. */
#include "mproc.h"

#include <stdio.h>

const char *mproc_strerror(int err)
{
    switch (err) {
#define MPROC_STRERROR_CASE_(name, value, msg)                                 \
    case MPROC_##name:                                                         \
        return msg;
        MPROC_ERRNO_MAP(MPROC_STRERROR_CASE_)
#undef MPROC_STRERROR_CASE_
    case 0:
        return "success";
    default:
        return "unknown error";
    }
}

const char *mproc_err_name(int err)
{
    switch (err) {
#define MPROC_ERRNAME_CASE_(name, value, msg)                                  \
    case MPROC_##name:                                                         \
        return #name;
        MPROC_ERRNO_MAP(MPROC_ERRNAME_CASE_)
#undef MPROC_ERRNAME_CASE_
    case 0:
        return "OK";
    default:
        return "UNKNOWN";
    }
}

unsigned mproc_version(void)
{
    return (unsigned)MPROC_VERSION_HEX;
}

#define MPROC_STR2_(x) #x
#define MPROC_STR_(x) MPROC_STR2_(x)

const char *mproc_version_string(void)
{
    return MPROC_STR_(MPROC_VERSION_MAJOR) "." MPROC_STR_(
        MPROC_VERSION_MINOR) "." MPROC_STR_(MPROC_VERSION_PATCH);
}
