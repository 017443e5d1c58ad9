/*
 * Byte channels on POSIX: AF_UNIX stream socketpairs; the Pipe's record
 * channels: AF_UNIX SOCK_SEQPACKET socketpairs where the system has them.
 *
 * Why sockets and not pipe(2): a write to a pipe whose reader has gone
 * raises SIGPIPE, and the only ways around that are to change the program's
 * signal disposition (not ours to change) or to block the signal and eat it
 * with sigtimedwait around every write. send() takes MSG_NOSIGNAL (Linux,
 * the BSDs) or the socket takes SO_NOSIGPIPE (macOS), so a vanished reader
 * is a plain EPIPE. A one-way pair is the same socketpair with the unused
 * directions shut down, so that a stray write on the reading end fails
 * instead of queueing bytes nobody reads.
 *
 * Every descriptor is close-on-exec: a spawned child receives only those its
 * spawn request lists (the backend's process code clears the flag on them).
 * None is 0, 1 or 2 (posix.h).
 *
 * Map: helpers (poll with a deadline); chan_pair; read, scatter read and
 * peek; write; gather write; poll; wait_many.
 */
#include "../common/backend.h"
#include "posix.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#ifdef MSG_NOSIGNAL
#define SEND_FLAGS MSG_NOSIGNAL
#else
#define SEND_FLAGS 0
#endif

/* poll(2) that honours the whole timeout: across EINTR, and never ending
 * before the deadline (the millisecond count left is rounded up). */
static int poll_deadline(struct pollfd *fds, nfds_t n, int timeout_ms)
{
    int64_t deadline = mproc__deadline_ns(timeout_ms);
    int wait = timeout_ms;
    for (;;) {
        int rc = poll(fds, n, wait);
        if (rc > 0 || (rc == 0 && wait == 0))
            return rc;
        if (rc < 0 && errno != EINTR)
            return mproc__os_error(errno);
        /* Interrupted, or a timeout the kernel ended a little early. */
        wait = mproc__left_ms(deadline);
        if (wait == 0 && rc == 0)
            return 0;
    }
}

#if !defined(MPROC_HAVE_SOCK_CLOEXEC)
static int set_cloexec(int fd)
{
    int flags = fcntl(fd, F_GETFD);
    if (flags < 0 || fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0)
        return mproc__os_error(errno);
    return 0;
}
#endif

/* A socket pair of `type` (SOCK_STREAM, SOCK_SEQPACKET). */
static int make_pair(mproc__handle h[2], bool duplex, int type)
{
    int sv[2];
    int rc;
    if (h == NULL)
        return MPROC_EINVAL;
#if defined(MPROC_HAVE_SOCK_CLOEXEC)
    if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv) != 0)
        return mproc__os_error(errno);
    /* Never on 0, 1 or 2 (posix.h). */
    if (mproc__posix_pair_high(sv) != 0)
        return mproc__os_error(errno);
#else
    /* No atomic close-on-exec (macOS): a spawn racing on another thread
     * could inherit these; the spawn path closes unlisted descriptors. */
    if (socketpair(AF_UNIX, type, 0, sv) != 0)
        return mproc__os_error(errno);
    if (mproc__posix_pair_high(sv) != 0)
        return mproc__os_error(errno);
    if ((rc = set_cloexec(sv[0])) < 0 || (rc = set_cloexec(sv[1])) < 0)
        goto fail;
#endif
#if defined(SO_NOSIGPIPE) && !defined(MSG_NOSIGNAL)
    {
        int one = 1;
        if (setsockopt(sv[0], SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one) ||
            setsockopt(sv[1], SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one)) {
            rc = mproc__os_error(errno);
            goto fail;
        }
    }
#endif
    if (type != SOCK_STREAM) {
        /* A record must fit in the send buffer whole (FreeBSD's default
         * for SEQPACKET is 8 KiB): room for a few of the largest. */
        int want = 4 * (64 * 1024 + 1), have = 0;
        socklen_t len = sizeof have;
        if (getsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &have, &len) == 0 &&
            have < want &&
            (setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &want, sizeof want) ||
             setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &want, sizeof want))) {
            rc = mproc__os_error(errno);
            goto fail;
        }
    }
    if (!duplex) {
        /* sv[0] reads, sv[1] writes. */
        if (shutdown(sv[0], SHUT_WR) != 0 || shutdown(sv[1], SHUT_RD) != 0) {
            rc = mproc__os_error(errno);
            goto fail;
        }
    }
    h[0] = sv[0];
    h[1] = sv[1];
    return 0;
fail:
    close(sv[0]);
    close(sv[1]);
    return rc;
}

int mproc__os_chan_pair(mproc__handle h[2], bool duplex)
{
    return make_pair(h, duplex, SOCK_STREAM);
}

int mproc__os_rec_pair(mproc__handle h[2], bool duplex)
{
#if defined(MPROC_HAVE_SEQPACKET)
    int rc = make_pair(h, duplex, SOCK_SEQPACKET);
    /* Declared but not offered for AF_UNIX (macOS): a byte stream then. */
    if (rc < 0 && (errno == EPROTONOSUPPORT || errno == EOPNOTSUPP ||
                   errno == ESOCKTNOSUPPORT || errno == EPROTOTYPE))
        return MPROC_ENOSYS;
    return rc;
#else
    (void)h;
    (void)duplex;
    return MPROC_ENOSYS;
#endif
}

int mproc__os_chan_records(mproc__handle h)
{
    int type = 0;
    socklen_t len = sizeof type;
    if (h < 0 || h > INT32_MAX)
        return MPROC_EINVAL;
    if (getsockopt((int)h, SOL_SOCKET, SO_TYPE, &type, &len) != 0)
        return mproc__os_error(errno);
    return type == SOCK_SEQPACKET;
}

int mproc__os_chan_adopt(mproc__handle handle, mproc__handle *h)
{
    struct sockaddr_storage peer;
    socklen_t len = sizeof peer;
    int type = 0, fd, flags;
    socklen_t tlen = sizeof type;
    if (h == NULL || handle < 0 || handle > INT32_MAX)
        return MPROC_EINVAL;
    fd = (int)handle;
    /* Open, a stream socket (peek is MSG_PEEK) or a record one, and
     * connected. */
    if ((flags = fcntl(fd, F_GETFD)) < 0 ||
        getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) != 0 ||
        (type != SOCK_STREAM && type != SOCK_SEQPACKET) ||
        getpeername(fd, (struct sockaddr *)&peer, &len) != 0)
        return MPROC_EINVAL;
    if (fcntl(fd, F_SETFD, flags | FD_CLOEXEC) != 0)
        return mproc__os_error(errno);
#ifdef SO_NOSIGPIPE
    {
        int one = 1;
        (void)setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
    }
#endif
    /* Never on 0, 1 or 2 (posix.h); on failure the caller's descriptor
     * stays where it is. */
    if (fd <= 2) {
        int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (moved < 0)
            return mproc__os_error(errno);
        (void)close(fd);
        fd = moved;
    }
    *h = (mproc__handle)fd;
    return 0;
}

/* CMSG_NXTHDR: musl's macro converts a negative long to size_t inside
 * itself (-Wsign-conversion), which no cast outside can reach. */
static struct cmsghdr *next_cmsg(struct msghdr *m, struct cmsghdr *c)
{
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-conversion"
#endif
    return CMSG_NXTHDR(m, c);
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
}

/* ---------------------------------------------------------------------------
 * Handles to a running process: SCM_RIGHTS
 */

int mproc__os_pass_prepare(mproc__handle chan, const mproc__handle *hs,
                           size_t n, int64_t *sender, int64_t *values)
{
    uid_t peer = 0;
    int fd = (int)chan;
    size_t i;
    if (chan < 0 || chan > INT32_MAX || (hs == NULL && n > 0) ||
        sender == NULL || (values == NULL && n > 0) || n > MPROC__PASS_MAX)
        return MPROC_EINVAL;
#if defined(SO_PEERCRED)
    {
        struct ucred cr;
        socklen_t len = sizeof cr;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0)
            return mproc__os_error(errno);
        peer = cr.uid;
    }
#else
    {
        gid_t g;
        if (getpeereid(fd, &peer, &g) != 0)
            return mproc__os_error(errno);
    }
#endif
    if (peer != geteuid())
        return MPROC_EPERM;
    *sender = (int64_t)getpid();
    for (i = 0; i < n; i++)
        values[i] = 0;
    return 0;
}

void mproc__os_pass_abort(const int64_t *values, size_t n)
{
    (void)values;
    (void)n;
}

int mproc__os_chan_write_pass(mproc__handle chan, const void *buf, size_t len,
                              const mproc__handle *hs, size_t n)
{
    union {
        struct cmsghdr c;
        char space[CMSG_SPACE(sizeof(int) * MPROC__PASS_MAX)];
    } u;
    struct msghdr m;
    struct iovec iov;
    struct cmsghdr *c;
    int fds[MPROC__PASS_MAX];
    ssize_t r;
    size_t i;
    if (n == 0 || n > MPROC__PASS_MAX || len == 0 || buf == NULL)
        return MPROC_EINVAL;
    for (i = 0; i < n; i++) {
        if (hs[i] < 0 || hs[i] > INT32_MAX)
            return MPROC_EINVAL;
        fds[i] = (int)hs[i];
    }
    memset(&u, 0, sizeof u);
    memset(&m, 0, sizeof m);
    iov.iov_base = (void *)(uintptr_t)buf;
    iov.iov_len = len;
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = u.space;
    /* socklen_t on musl, size_t on glibc: n is at most MPROC__PASS_MAX. */
    m.msg_controllen = (socklen_t)CMSG_SPACE(sizeof(int) * n);
    c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = (socklen_t)CMSG_LEN(sizeof(int) * n);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
    /* The descriptors go with the first bytes; the rest is a plain
     * write. */
    do
        r = sendmsg((int)chan, &m, SEND_FLAGS);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return errno == EPIPE ? MPROC_EPIPE : mproc__os_error(errno);
    if ((size_t)r == len)
        return 0;
    return mproc__os_chan_write(chan, (const uint8_t *)buf + r,
                                len - (size_t)r);
}

int64_t mproc__os_chan_read_fds(mproc__handle chan, void *a, size_t na, void *b,
                                size_t nb, mproc__handle *fds, size_t cap,
                                size_t *nfds)
{
    union {
        struct cmsghdr c;
        char space[CMSG_SPACE(sizeof(int) * MPROC__PASS_MAX)];
    } u;
    struct msghdr m;
    struct iovec iov[2];
    struct cmsghdr *c;
    ssize_t r;
    int flags = 0;
    if (nfds == NULL || (fds == NULL && cap > 0) || na + nb == 0)
        return MPROC_EINVAL;
    *nfds = 0;
    memset(&m, 0, sizeof m);
    iov[0].iov_base = a;
    iov[0].iov_len = na;
    iov[1].iov_base = b;
    iov[1].iov_len = nb;
    m.msg_iov = na > 0 ? iov : iov + 1;
    m.msg_iovlen = na > 0 && nb > 0 ? 2 : 1;
    m.msg_control = u.space;
    m.msg_controllen = sizeof u.space;
#ifdef MSG_CMSG_CLOEXEC
    flags |= MSG_CMSG_CLOEXEC;
#endif
    do
        r = recvmsg((int)chan, &m, flags);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return errno == ECONNRESET ? 0 : mproc__os_error(errno);
    for (c = CMSG_FIRSTHDR(&m); c != NULL; c = next_cmsg(&m, c)) {
        size_t k, cnt;
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
            c->cmsg_len < CMSG_LEN(0))
            continue;
        cnt = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (k = 0; k < cnt; k++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + k * sizeof(int), sizeof fd);
            (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
            fd = mproc__posix_fd_high(fd);
            if (fd < 0)
                continue;
            if (*nfds < cap)
                fds[(*nfds)++] = (mproc__handle)fd;
            else
                (void)close(fd);
        }
    }
    return (int64_t)r;
}

int mproc__os_pass_take(int64_t sender, const int64_t *values, size_t n,
                        const mproc__handle *rx, size_t nrx, mproc__handle *out)
{
    size_t i;
    (void)sender;
    (void)values;
    if (n == 0 || n > MPROC__PASS_MAX || out == NULL)
        return MPROC_EINVAL;
    if (nrx != n)
        return MPROC_EBADMSG; /* the descriptors did not come */
    for (i = 0; i < n; i++)
        out[i] = rx[i];
    return 0;
}

int64_t mproc__os_chan_read(mproc__handle h, void *buf, size_t n)
{
    if (h < 0 || buf == NULL || n == 0)
        return MPROC_EINVAL;
    if (n > (size_t)SSIZE_MAX)
        n = (size_t)SSIZE_MAX;
    for (;;) {
        ssize_t r = read((int)h, buf, n);
        if (r >= 0)
            return (int64_t)r;
        if (errno == EINTR)
            continue;
        /* A peer that closed with unread data in its own receive queue
         * resets the connection: for the reader that is end-of-file. */
        if (errno == ECONNRESET)
            return 0;
        return mproc__os_error(errno);
    }
}

int64_t mproc__os_chan_readv(mproc__handle h, void *a, size_t na, void *b,
                             size_t nb)
{
    struct iovec iov[2];
    if (h < 0 || (a == NULL && na > 0) || (b == NULL && nb > 0) ||
        na + nb == 0 || na > (size_t)SSIZE_MAX || nb > (size_t)SSIZE_MAX - na)
        return MPROC_EINVAL;
    iov[0].iov_base = a;
    iov[0].iov_len = na;
    iov[1].iov_base = b;
    iov[1].iov_len = nb;
    for (;;) {
        ssize_t r = readv((int)h, iov, 2);
        if (r >= 0)
            return (int64_t)r;
        if (errno == EINTR)
            continue;
        if (errno == ECONNRESET)
            return 0; /* as in chan_read */
        return mproc__os_error(errno);
    }
}

int64_t mproc__os_chan_peek(mproc__handle h, void *buf, size_t n,
                            int timeout_ms)
{
    int64_t deadline = mproc__deadline_ns(timeout_ms);
    int left = timeout_ms;
    if (h < 0 || buf == NULL || n == 0)
        return MPROC_EINVAL;
    if (n > (size_t)SSIZE_MAX)
        n = (size_t)SSIZE_MAX;
    for (;;) {
        ssize_t r;
        /* A wait: poll first, then peek without blocking. (A blocking peek
         * would be one system call less, but on Linux a round trip through
         * it measured slower than through poll, as a blocking read does.) */
        if (left != 0) {
            struct pollfd pfd;
            int rc;
            pfd.fd = (int)h;
            pfd.events = POLLIN;
            pfd.revents = 0;
            rc = poll_deadline(&pfd, 1, left);
            if (rc <= 0)
                return rc;
            if (pfd.revents & POLLNVAL)
                return MPROC_EINVAL;
        }
        r = recv((int)h, buf, n, MSG_PEEK | MSG_DONTWAIT);
        if (r > 0)
            return (int64_t)r;
        if (r == 0)
            return MPROC_EEOF;
        if (errno == ECONNRESET)
            return MPROC_EEOF; /* as in chan_read */
        if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
            return mproc__os_error(errno);
        if (left == 0)
            return 0;
        left = mproc__left_ms(deadline);
        if (left == 0)
            return 0;
    }
}

int mproc__os_chan_write(mproc__handle h, const void *buf, size_t n)
{
    const char *p = buf;
    if (h < 0 || (buf == NULL && n > 0))
        return MPROC_EINVAL;
    while (n > 0) {
        size_t chunk = n > (size_t)SSIZE_MAX ? (size_t)SSIZE_MAX : n;
        ssize_t w = send((int)h, p, chunk, SEND_FLAGS);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            /* Context override (as libuv does): on a write, a reset
             * connection is the peer having gone, not an I/O error. */
            if (errno == EPIPE || errno == ECONNRESET)
                return MPROC_EPIPE;
            return mproc__os_error(errno);
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int mproc__os_chan_writev(mproc__handle h, const void *a, size_t na,
                          const void *b, size_t nb)
{
    struct iovec iov[2];
    struct msghdr m;
    size_t i = 0;
    if (h < 0 || (a == NULL && na > 0) || (b == NULL && nb > 0))
        return MPROC_EINVAL;
    /* sendmsg, not writev: writev takes no MSG_NOSIGNAL. */
    iov[0].iov_base = (void *)(uintptr_t)a;
    iov[0].iov_len = na;
    iov[1].iov_base = (void *)(uintptr_t)b;
    iov[1].iov_len = nb;
    while (i < 2) {
        ssize_t w;
        size_t left;
        if (iov[i].iov_len == 0) {
            i++;
            continue;
        }
        memset(&m, 0, sizeof m);
        m.msg_iov = iov + i;
        /* Two constants: msg_iovlen is size_t in glibc, int in musl and
         * the BSDs, and either takes them without a conversion. */
        m.msg_iovlen = i == 0 ? 2 : 1;
        w = sendmsg((int)h, &m, SEND_FLAGS);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EPIPE || errno == ECONNRESET)
                return MPROC_EPIPE;
            return mproc__os_error(errno);
        }
        /* A partial write (a signal arrived after some bytes went out):
         * skip what went out and send the rest. */
        left = (size_t)w;
        while (i < 2 && left >= iov[i].iov_len) {
            left -= iov[i].iov_len;
            iov[i].iov_len = 0;
            i++;
        }
        if (i < 2) {
            iov[i].iov_base = (char *)iov[i].iov_base + left;
            iov[i].iov_len -= left;
        }
    }
    return 0;
}

int mproc__os_chan_poll(mproc__handle h, int timeout_ms)
{
    struct pollfd pfd;
    int rc;
    if (h < 0)
        return MPROC_EINVAL;
    pfd.fd = (int)h;
    pfd.events = POLLIN;
    pfd.revents = 0;
    rc = poll_deadline(&pfd, 1, timeout_ms);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return 0;
    if (pfd.revents & POLLNVAL)
        return MPROC_EINVAL;
    /* POLLHUP / POLLERR: a read would not block (it sees end-of-file). */
    return 1;
}

int mproc__os_wait_many(const mproc__handle *h, const bool *is_process,
                        size_t n, int timeout_ms, bool *ready)
{
    struct pollfd small[16];
    struct pollfd *pfd = small;
    int rc;
    size_t i;
    int count = 0;
    (void)is_process; /* pidfds become readable when the process exits */
    if ((h == NULL || ready == NULL) && n > 0)
        return MPROC_EINVAL;
    if (n > (size_t)INT_MAX)
        return MPROC_EINVAL;
    if (n > sizeof small / sizeof small[0]) {
        pfd = malloc(n * sizeof *pfd);
        if (pfd == NULL)
            return MPROC_ENOMEM;
    }
    for (i = 0; i < n; i++) {
        /* A negative fd is ignored by poll(): a handle the caller cannot
         * wait on (a process without a pidfd) is checked by the caller. */
        pfd[i].fd = h[i] < 0 ? -1 : (int)h[i];
        pfd[i].events = POLLIN;
        pfd[i].revents = 0;
    }
    rc = poll_deadline(pfd, (nfds_t)n, timeout_ms);
    if (rc >= 0) {
        for (i = 0; i < n; i++) {
            ready[i] = pfd[i].fd >= 0 && pfd[i].revents != 0;
            count += ready[i];
        }
        rc = count;
    }
    if (pfd != small)
        free(pfd);
    return rc;
}

/* ---------------------------------------------------------------------------
 * Non-blocking read and write (backend.h): MSG_DONTWAIT on this call only,
 * so the descriptor itself stays blocking for every other user.
 */

int64_t mproc__os_chan_read_nowait(mproc__handle h, void *buf, size_t n)
{
    if (h < 0 || buf == NULL || n == 0)
        return MPROC_EINVAL;
    if (n > (size_t)SSIZE_MAX)
        n = (size_t)SSIZE_MAX;
    for (;;) {
        ssize_t r = recv((int)h, buf, n, MSG_DONTWAIT);
        if (r >= 0)
            return (int64_t)r;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNRESET)
            return 0;
        return mproc__os_error(errno);
    }
}

int64_t mproc__os_chan_write_nowait(mproc__handle h, const void *buf, size_t n)
{
    if (h < 0 || (buf == NULL && n > 0))
        return MPROC_EINVAL;
    if (n == 0)
        return 0;
    if (n > (size_t)SSIZE_MAX)
        n = (size_t)SSIZE_MAX;
    for (;;) {
        ssize_t w = send((int)h, buf, n, SEND_FLAGS | MSG_DONTWAIT);
        if (w >= 0)
            return (int64_t)w;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        if (errno == EPIPE || errno == ECONNRESET)
            return MPROC_EPIPE;
        return mproc__os_error(errno);
    }
}
