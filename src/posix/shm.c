/*
 * Anonymous shared memory for the POSIX backend.
 *
 * A segment is a file descriptor plus a MAP_SHARED mapping of it. The
 * descriptor is what travels to children (inherited across fork, listed in
 * the inherit set of a spawn), and the segment has no name in any namespace,
 * so nothing is left behind when the last process holding it ends, whether
 * it exits or is killed:
 *
 * - Linux: memfd_create(MFD_CLOEXEC). The memory belongs to the descriptor
 *   and the mappings; no name ever exists (the "name" argument only shows
 *   up in /proc/PID/fd as "/memfd:mproc (deleted)").
 * - Elsewhere (macOS, the BSDs, Linux kernels without memfd): shm_open with
 *   an unpredictable name, O_CREAT | O_EXCL and mode 0600, unlinked at once.
 *   The name exists for the few instructions between shm_open and
 *   shm_unlink; only an exclusive creator with our random name could meet
 *   it, and a kill inside that window is the one way a name could be left.
 *
 * The descriptor is never 0, 1 or 2 (posix.h): a child's stdout there
 * would write printf text into the segment.
 */
#include "../common/backend.h"
#include "posix.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#if defined(__APPLE__) || defined(__FreeBSD__) || defined(__NetBSD__) ||       \
    defined(__OpenBSD__) || defined(__DragonFly__)
#include <stdlib.h> /* arc4random_buf */
#define MPROC_HAVE_ARC4RANDOM 1
#endif

/* The prefix of every shm_open name this library makes, so that a test
 * (or an administrator) can look for leftovers of ours and only ours. */
#define SHM_NAME_PREFIX "/mproc-"

static void random_bytes(unsigned char *p, size_t n)
{
#if defined(MPROC_HAVE_ARC4RANDOM)
    arc4random_buf(p, n);
#else
    /* /dev/urandom where it exists; the clock and pid are only a fallback
     * mixed in so that a missing device still gives distinct names
     * (O_EXCL keeps a guessed name from ever being shared). */
    static unsigned long long counter;
    struct timespec ts;
    unsigned long long mix;
    size_t got = 0;
    int fd;
    /* The bytes the device did not fill must still be defined: the mix
     * below only XORs into them. */
    memset(p, 0, n);
    /* Short-lived, but another thread may fork or print meanwhile. */
    fd = mproc__posix_fd_high(open("/dev/urandom", O_RDONLY | O_CLOEXEC));
    if (fd >= 0) {
        while (got < n) {
            ssize_t r = read(fd, p + got, n - got);
            if (r <= 0) {
                if (r < 0 && errno == EINTR)
                    continue;
                break;
            }
            got += (size_t)r;
        }
        (void)close(fd);
    }
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    mix = (unsigned long long)ts.tv_nsec ^
          ((unsigned long long)ts.tv_sec << 30) ^
          ((unsigned long long)getpid() << 16) ^ ++counter;
    for (size_t i = 0; i < n; i++) {
        mix = mix * 6364136223846793005ULL + 1442695040888963407ULL;
        p[i] ^= (unsigned char)(mix >> 56);
    }
#endif
}

/* shm_open, exclusive, owner-only, unlinked before returning. */
static int shm_anon(void)
{
    for (int attempt = 0; attempt < 16; attempt++) {
        unsigned char rnd[12];
        char name[64];
        int len;
        int fd;
        random_bytes(rnd, sizeof rnd);
        len = snprintf(name, sizeof name, SHM_NAME_PREFIX "%lld-",
                       (long long)getpid());
        for (size_t i = 0; i < sizeof rnd && len + 3 < (int)sizeof name; i++)
            len +=
                snprintf(name + len, sizeof name - (size_t)len, "%02x", rnd[i]);
        fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0) {
            if (errno == EEXIST || errno == EINTR)
                continue;
            return -1;
        }
        (void)shm_unlink(name);
        /* O_CLOEXEC is not honoured by every shm_open; make sure. */
        (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
        return mproc__posix_fd_high(fd);
    }
    errno = EEXIST;
    return -1;
}

static int anon_fd(void)
{
#if defined(__linux__) && defined(MFD_CLOEXEC)
    int fd = memfd_create("mproc", MFD_CLOEXEC);
    if (fd >= 0)
        return mproc__posix_fd_high(fd);
    /* Kernels before 3.17 (ENOSYS) or seccomp filters (EPERM): fall back. */
    if (errno != ENOSYS && errno != EPERM && errno != EINVAL)
        return -1;
#endif
    return shm_anon();
}

int mproc__os_shm_create(size_t size, mproc__handle *h, void **addr)
{
    int fd;
    void *p;
    if (h == NULL || addr == NULL || size == 0)
        return MPROC_EINVAL;
    if ((uint64_t)size > (uint64_t)INT64_MAX)
        return MPROC_ENOMEM;
    fd = anon_fd();
    if (fd < 0)
        return mproc__os_error(errno);
    while (ftruncate(fd, (off_t)size) != 0) {
        if (errno != EINTR) {
            int err = errno;
            (void)close(fd);
            /* A size the file system refuses is a lack of memory to us. */
            return err == EINVAL || err == EFBIG ? MPROC_ENOMEM
                                                 : mproc__os_error(err);
        }
    }
    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        int err = errno;
        (void)close(fd);
        return mproc__os_error(err);
    }
    *h = (mproc__handle)fd;
    *addr = p;
    return 0;
}

int mproc__os_shm_map(mproc__handle h, size_t size, void **addr)
{
    struct stat st;
    void *p;
    if (addr == NULL || size == 0 || h < 0 || h > INT32_MAX)
        return MPROC_EINVAL;
    /* A mapping longer than the file would turn a bad size in an export
     * into SIGBUS on first touch; refuse it here instead. */
    if (fstat((int)h, &st) != 0)
        return mproc__os_error(errno);
    if (st.st_size < 0 || (uint64_t)st.st_size < (uint64_t)size)
        return MPROC_EINVAL;
    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, (int)h, 0);
    if (p == MAP_FAILED)
        return mproc__os_error(errno);
    *addr = p;
    return 0;
}

void mproc__os_shm_unmap(void *addr, size_t size)
{
    if (addr != NULL && size > 0)
        (void)munmap(addr, size);
}
