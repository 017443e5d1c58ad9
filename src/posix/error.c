/* POSIX error translation: the one place errno becomes an MPROC_E* code. */
#include "../common/backend.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

int mproc__os_error(long native)
{
    switch (native) {
    case 0:
        return 0;
    case EINVAL:
    case EBADF:
    case EFAULT:
        return MPROC_EINVAL;
    case ENOMEM:
    case ENOSPC:
    case ENOBUFS:
        return MPROC_ENOMEM;
    case ETIMEDOUT:
        return MPROC_ETIMEDOUT;
    case EPIPE:
    case ECONNRESET:
    case ENOTCONN:
        return MPROC_EPIPE;
    case EMSGSIZE:
    case E2BIG:
        return MPROC_EMSGSIZE;
    case EMFILE:
    case ENFILE:
        return MPROC_EMFILE;
    case EAGAIN:
#if defined(EWOULDBLOCK) && EWOULDBLOCK != EAGAIN
    case EWOULDBLOCK:
#endif
        return MPROC_EAGAIN;
    case EBUSY:
        return MPROC_EBUSY;
    case EPERM:
    case EACCES:
        return MPROC_EPERM;
    case ENOENT:
    case ESRCH:
        return MPROC_ENOENT;
    case EEXIST:
        return MPROC_EEXIST;
    case ECHILD:
        return MPROC_ECHILD;
    case EOWNERDEAD:
        return MPROC_EOWNERDEAD;
    case ENOSYS:
#if defined(ENOTSUP)
    case ENOTSUP:
#endif
#if defined(EOPNOTSUPP) && (!defined(ENOTSUP) || EOPNOTSUPP != ENOTSUP)
    case EOPNOTSUPP:
#endif
        return MPROC_ENOSYS;
    case EIO:
        return MPROC_EIO;
    case EOVERFLOW:
    case ERANGE:
        return MPROC_ERANGE;
    case ENOEXEC:
    case ELOOP:
    case ENAMETOOLONG:
    case ENOTDIR:
    case ETXTBSY:
        return MPROC_EEXEC;
    default:
        return MPROC_EUNKNOWN;
    }
}

int mproc__os_handle_check(mproc__handle h)
{
    if (h < 0 || h > INT32_MAX || fcntl((int)h, F_GETFD) < 0)
        return MPROC_EINVAL;
    return 0;
}

void mproc__os_handle_close(mproc__handle h)
{
    int fd = (int)h;
    if (h == MPROC__BADHANDLE || h < 0)
        return;
    /* Not retried on EINTR: on Linux the descriptor is gone either way, and
     * a retry could close a descriptor another thread just opened. */
    (void)close(fd);
}
