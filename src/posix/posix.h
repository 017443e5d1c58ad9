/*
 * Internal helpers of the POSIX backend, shared by its files. Nothing in
 * src/common sees this header.
 *
 * Map: descriptors; shared memory names.
 */
#ifndef MPROC_POSIX_H
#define MPROC_POSIX_H

#include "platform.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

/* ---------------------------------------------------------------------------
 * Descriptors
 *
 * Every descriptor the library creates goes through mproc__posix_fd_high
 * as soon as it exists. A program that closed its standard streams leaves
 * 0, 1 or 2 free, and open(), socket(), pipe() and memfd_create() all take
 * the lowest free number: an object's socket or memfd would become the
 * program's stdin, stdout or stderr, a child would keep it as such (a fork
 * child keeps 0-2 whatever they are; a spawned child gets its handles
 * under the same numbers), and the exit-time flush of printf text would
 * write into the object's shared state. So no descriptor of ours ever sits
 * on 0, 1 or 2.
 */

/* fd itself when it is above 2 (or negative: the caller's error stays in
 * errno); otherwise a close-on-exec copy at the lowest free number >= 3,
 * with fd closed: -1 with errno set when no copy can be made (fd is closed
 * then too). Only system calls: safe between fork and exec. */
static inline int mproc__posix_fd_high(int fd)
{
    int moved, err;
    if (fd < 0 || fd > 2)
        return fd;
    moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    err = errno;
    (void)close(fd);
    errno = err;
    return moved;
}

/* Both ends of a pair from pipe2() or socketpair(); -1 with errno and both
 * closed on failure. */
static inline int mproc__posix_pair_high(int fds[2])
{
    int err;
    fds[0] = mproc__posix_fd_high(fds[0]);
    if (fds[0] < 0) {
        err = errno;
        (void)close(fds[1]);
        errno = err;
        return -1;
    }
    fds[1] = mproc__posix_fd_high(fds[1]);
    if (fds[1] < 0) {
        err = errno;
        (void)close(fds[0]);
        errno = err;
        return -1;
    }
    return 0;
}

/* A pipe, both ends close-on-exec and above 2; -1 with errno on failure.
 * Without pipe2 (macOS) the flag is set after pipe(): a spawn racing on
 * another thread could inherit the ends meanwhile, which only matters to
 * a daemon's lifeline (it would live as long as that other child); the
 * spawn paths close every descriptor they were not given. */
static inline int mproc__posix_pipe(int fds[2])
{
#if defined(MPROC_HAVE_PIPE2)
    if (pipe2(fds, O_CLOEXEC) != 0)
        return -1;
#else
    int err;
    if (pipe(fds) != 0)
        return -1;
    if (fcntl(fds[0], F_SETFD, FD_CLOEXEC) != 0 ||
        fcntl(fds[1], F_SETFD, FD_CLOEXEC) != 0) {
        err = errno;
        (void)close(fds[0]);
        (void)close(fds[1]);
        errno = err;
        return -1;
    }
#endif
    return mproc__posix_pair_high(fds);
}

/* ---------------------------------------------------------------------------
 * Shared memory names (shm.c)
 *
 * Unlinks the shm_open names left by creators that were killed between
 * shm_open and shm_unlink, where the names can be listed; a no-op
 * elsewhere and where segments have no name. The reaper of a child that a
 * signal ended calls it. Keeps errno. */
void mproc__posix_shm_sweep(void);

#endif /* MPROC_POSIX_H */
