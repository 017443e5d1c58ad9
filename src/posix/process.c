/* STUB: generated placeholder, every function returns MPROC_ENOSYS. */
#include "../common/backend.h"

#include <stddef.h>

int mproc__os_spawn(const mproc__spawn_req *req, mproc__child *out)
{
    (void)req;
    (void)out;
    return MPROC_ENOSYS;
}

int mproc__os_fork(mproc__child *out, const mproc__handle *keep, size_t nkeep, bool daemon)
{
    (void)out;
    (void)keep;
    (void)nkeep;
    (void)daemon;
    return MPROC_ENOSYS;
}

int mproc__os_wait(mproc__child *c, int timeout_ms)
{
    (void)c;
    (void)timeout_ms;
    return MPROC_ENOSYS;
}

int mproc__os_signal(mproc__child *c, int sig)
{
    (void)c;
    (void)sig;
    return MPROC_ENOSYS;
}

void mproc__os_child_release(mproc__child *c)
{
    (void)c;
}

int64_t mproc__os_getpid(void)
{
    return MPROC_ENOSYS;
}

int64_t mproc__os_getppid(void)
{
    return MPROC_ENOSYS;
}

int mproc__os_parent_alive(int64_t pid)
{
    (void)pid;
    return MPROC_ENOSYS;
}

int mproc__os_self_exe(char **path)
{
    (void)path;
    return MPROC_ENOSYS;
}

int mproc__os_cpu_count(void)
{
    return MPROC_ENOSYS;
}

int mproc__os_cpu_count_usable(void)
{
    return MPROC_ENOSYS;
}

int mproc__os_locate(const void *fn, char **module, uint64_t *offset)
{
    (void)fn;
    (void)module;
    (void)offset;
    return MPROC_ENOSYS;
}

int mproc__os_resolve(const char *module, uint64_t offset, void **fn)
{
    (void)module;
    (void)offset;
    (void)fn;
    return MPROC_ENOSYS;
}

void mproc__os_exit(int code)
{
    (void)code;
}
