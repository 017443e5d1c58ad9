/*
 * Anonymous shared memory for the POSIX backend.
 *
 * A segment is a file descriptor plus a MAP_SHARED mapping of it. The
 * descriptor is what travels to children (inherited across fork, listed in
 * the inherit set of a spawn), and the segment should have no name in any
 * namespace, so that nothing is left behind when the last process holding
 * it ends, whether it exits or is killed (src/posix/platform.h chooses):
 *
 * - MEMFD (Linux): memfd_create(MFD_CLOEXEC). No name ever exists (the
 *   "name" argument only shows up in /proc/PID/fd as "/memfd:mproc
 *   (deleted)").
 * - SHM_ANON (FreeBSD): shm_open(SHM_ANON), an object without a name.
 * - Otherwise (macOS, OpenBSD, or forced): shm_open with a name, O_CREAT |
 *   O_EXCL and mode 0600, unlinked at once. The name is at most
 *   MPROC_SHM_OSNAME_MAX characters (31 on macOS): "/mproc", the creator's
 *   pid and a 32-bit stamp of its start time (base 32), then random
 *   characters up to the limit (45 random bits at 31 characters, more
 *   elsewhere). A creator killed between shm_open and shm_unlink leaves the
 *   name behind; where the names can be listed (MPROC_SHM_DIR, /dev/shm),
 *   they are swept: each process's first segment and every reap of a child
 *   that a signal ended unlink the names whose creator has ended (no such
 *   pid, or a pid with another start time). macOS cannot list its names:
 *   there such a kill leaves one name per killed creator (docs/platforms.md).
 *
 * Named segments (mproc_shm_create_named) are shm_open objects under
 * "/name", mode 0600, with a trailer at their end (backend.h).
 *
 * The descriptor is never 0, 1 or 2 (posix.h): a child's stdout there
 * would write printf text into the segment.
 *
 * Map: random bytes; names (make, parse, sweep); the anonymous descriptor;
 * create, map, unmap; named segments.
 */
#include "../common/backend.h"
#include "posix.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#if defined(MPROC_SHM_DIR)
#include <dirent.h>
#endif

/* The prefix of every shm_open name this library makes, so that a test
 * (or an administrator) can look for leftovers of ours and only ours. */
#define SHM_NAME_PREFIX "/mproc"

/* Named segments: the fallback, and where memfd may fail at run time. */
#if defined(MPROC_HAVE_MEMFD) || !defined(MPROC_HAVE_SHM_ANON)

static void random_bytes(unsigned char *p, size_t n)
{
#if defined(MPROC_SYS_ARC4RANDOM)
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

int mproc__os_random(void *buf, size_t n)
{
    if (n == 0)
        return 0;
    if (buf == NULL)
        return MPROC_EINVAL;
    random_bytes((unsigned char *)buf, n);
    return 0;
}

/* ---------------------------------------------------------------------------
 * Names: "/mproc" PID "." STAMP "." RANDOM, the numbers in base 32
 */

static const char b32[] = "0123456789abcdefghijklmnopqrstuv";

static uint32_t start_stamp(uint64_t start)
{
    return (uint32_t)(start ^ (start >> 32));
}

/* Appends v in base 32 at name[len]; the new length. */
static size_t put_b32(char *name, size_t len, uint64_t v)
{
    char tmp[16];
    size_t n = 0;
    do {
        tmp[n++] = b32[v & 31u];
        v >>= 5;
    } while (v != 0 && n < sizeof tmp);
    while (n > 0)
        name[len++] = tmp[--n];
    return len;
}

/* A fresh name for this process, NUL-terminated, at most
 * MPROC_SHM_OSNAME_MAX characters. */
static void make_name(char name[MPROC_SHM_OSNAME_MAX + 1])
{
    mproc__proc_id self = mproc__os_proc_self();
    unsigned char rnd[MPROC_SHM_OSNAME_MAX];
    size_t len = sizeof SHM_NAME_PREFIX - 1, i = 0, room;
    memcpy(name, SHM_NAME_PREFIX, len);
    len = put_b32(name, len, (uint64_t)self.pid);
    name[len++] = '.';
    len = put_b32(name, len, start_stamp(self.start));
    name[len++] = '.';
    room = MPROC_SHM_OSNAME_MAX - len;
    if (room > 24)
        room = 24; /* 120 random bits are plenty */
    random_bytes(rnd, room);
    for (i = 0; i < room; i++)
        name[len++] = b32[rnd[i] & 31u];
    name[len] = '\0';
}

#if defined(MPROC_SHM_DIR)
/* Parses the base-32 number at *p up to `stop`; false when malformed. */
static bool get_b32(const char **p, char stop, uint64_t *v)
{
    const char *s = *p;
    uint64_t n = 0;
    size_t digits = 0;
    for (; *s != stop; s++, digits++) {
        const char *d = *s != '\0' ? strchr(b32, *s) : NULL;
        if (d == NULL || digits >= 13)
            return false;
        n = n << 5 | (uint64_t)(d - b32);
    }
    if (digits == 0)
        return false;
    *p = s + 1;
    *v = n;
    return true;
}

/* Unlinks the names of ours (in MPROC_SHM_DIR, without the leading '/')
 * whose creator has ended: no process has its pid, or the process with
 * that pid started at another time. A name of a live creator is in its
 * few instructions between shm_open and shm_unlink: left alone. */
static void sweep(void)
{
    DIR *d;
    struct dirent *e;
    int64_t me = (int64_t)getpid();
    int fd = mproc__posix_fd_high(
        open(MPROC_SHM_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd < 0)
        return;
    d = fdopendir(fd);
    if (d == NULL) {
        (void)close(fd);
        return;
    }
    while ((e = readdir(d)) != NULL) {
        const char *p = e->d_name;
        uint64_t pid, stamp;
        mproc__proc_id id;
        char name[NAME_MAX + 2];
        int rc;
        if (strncmp(p, &SHM_NAME_PREFIX[1], sizeof SHM_NAME_PREFIX - 2) != 0)
            continue;
        p += sizeof SHM_NAME_PREFIX - 2;
        if (!get_b32(&p, '.', &pid) || !get_b32(&p, '.', &stamp) || pid == 0 ||
            pid > INT_MAX || (int64_t)pid == me)
            continue;
        rc = mproc__os_proc_lookup((int64_t)pid, &id);
        if (rc == 0 && start_stamp(id.start) == (uint32_t)stamp)
            continue; /* its creator runs */
        if (rc != 0 && rc != MPROC_ENOENT)
            continue; /* not ours to judge */
        if (snprintf(name, sizeof name, "/%s", e->d_name) < (int)sizeof name)
            (void)shm_unlink(name);
    }
    closedir(d);
}
#endif

/* Whether this process (or its parent before a fork) made named segments:
 * with memfd, only when memfd failed at run time, and only then are there
 * names to sweep. */
static atomic_bool names_used;

void mproc__posix_shm_sweep(void)
{
#if defined(MPROC_SHM_DIR)
    int err = errno;
#if defined(MPROC_HAVE_MEMFD)
    if (!atomic_load_explicit(&names_used, memory_order_relaxed))
        return;
#endif
    sweep();
    errno = err;
#endif
}

#if defined(MPROC_SHM_DIR)
static pthread_once_t sweep_once = PTHREAD_ONCE_INIT;
#endif

/* shm_open, exclusive, owner-only, unlinked before returning. */
static int shm_named(void)
{
    atomic_store_explicit(&names_used, true, memory_order_relaxed);
#if defined(MPROC_SHM_DIR)
    (void)pthread_once(&sweep_once, sweep);
#endif
    for (int attempt = 0; attempt < 16; attempt++) {
        char name[MPROC_SHM_OSNAME_MAX + 1];
        int fd;
        make_name(name);
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

#else

void mproc__posix_shm_sweep(void)
{
}

#endif

/* ---------------------------------------------------------------------------
 * The anonymous descriptor
 */

static int anon_fd(void)
{
#if defined(MPROC_HAVE_MEMFD)
    int fd = memfd_create("mproc", MFD_CLOEXEC);
    if (fd >= 0)
        return mproc__posix_fd_high(fd);
    /* Kernels before 3.17 (ENOSYS) or seccomp filters (EPERM): fall back. */
    if (errno != ENOSYS && errno != EPERM && errno != EINVAL)
        return -1;
    return shm_named();
#elif defined(MPROC_HAVE_SHM_ANON)
    /* FreeBSD: an object no name ever reaches (shm_open(2)). Not run
     * here. */
    int fd = shm_open(SHM_ANON, O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    return mproc__posix_fd_high(fd);
#else
    return shm_named();
#endif
}

int mproc__os_shm_create(size_t size, mproc__handle *h, void **addr)
{
    int fd;
    void *p;
    if (h == NULL || addr == NULL || size == 0)
        return MPROC_EINVAL;
#if SIZE_MAX > INT64_MAX
    /* ftruncate takes an off_t. */
    if (size > (size_t)INT64_MAX)
        return MPROC_ENOMEM;
#endif
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

/* ---------------------------------------------------------------------------
 * Named segments
 */

size_t mproc__os_page_size(void)
{
    long p = sysconf(_SC_PAGESIZE);
    /* A power of two on every system; 4096 if it cannot say. */
    return p > 0 && ((unsigned long)p & ((unsigned long)p - 1)) == 0 ? (size_t)p
                                                                     : 4096;
}

/* "/" + name: common code checked the name (at most MPROC_SHM_NAME_MAX
 * characters, no slash). */
static void os_name(const char *name, char *out)
{
    out[0] = '/';
    memcpy(out + 1, name, strlen(name) + 1);
}

int mproc__os_shm_create_named(const char *name, size_t size, mproc__handle *h,
                               void **addr, size_t *map)
{
    char path[MPROC_SHM_NAME_MAX + 2];
    size_t len = mproc__shm_map_len(size, mproc__os_page_size());
    mproc__shm_trailer *t;
    void *p;
    int fd, err;

    if (name == NULL || h == NULL || addr == NULL || map == NULL || size == 0)
        return MPROC_EINVAL;
    if (len == 0)
        return MPROC_ENOMEM;
#if SIZE_MAX > INT64_MAX
    if ((uint64_t)len > (uint64_t)INT64_MAX)
        return MPROC_ENOMEM;
#endif
    os_name(name, path);
    /* O_EXCL: an existing segment is never opened, let alone resized. */
    fd = mproc__posix_fd_high(
        shm_open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (fd < 0)
        return errno == EEXIST ? MPROC_EEXIST : mproc__os_error(errno);
    /* The umask may only take bits away from 0600; make sure of the rest,
     * and of close-on-exec (not every shm_open honours O_CLOEXEC). */
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    if (fchmod(fd, 0600) != 0)
        goto fail;
    while (ftruncate(fd, (off_t)len) != 0) {
        if (errno != EINTR)
            goto fail;
    }
    p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        goto fail;
    t = mproc__shm_trailer_of(p, len);
    t->size = (uint64_t)size;
    t->state = MPROC__SHM_LIVE;
    /* The magic last: an attacher that sees it sees the rest. */
    __atomic_store_n(&t->magic, MPROC__SHM_TRAILER_MAGIC, __ATOMIC_RELEASE);
    *h = (mproc__handle)fd;
    *addr = p;
    *map = len;
    return 0;
fail:
    err = errno;
    (void)shm_unlink(path);
    (void)close(fd);
    return err == EINVAL || err == EFBIG || err == ENOMEM
               ? MPROC_ENOMEM
               : mproc__os_error(err);
}

int mproc__os_shm_attach_named(const char *name, mproc__handle *h, void **addr,
                               size_t *size, size_t *map)
{
    char path[MPROC_SHM_NAME_MAX + 2];
    size_t page = mproc__os_page_size(), len = 0, sz = 0;
    struct stat st;
    void *p = MAP_FAILED;
    int fd, rc, tries;

    if (name == NULL || h == NULL || addr == NULL || size == NULL ||
        map == NULL)
        return MPROC_EINVAL;
    os_name(name, path);
    fd = mproc__posix_fd_high(shm_open(path, O_RDWR | O_CLOEXEC, 0));
    if (fd < 0)
        return mproc__os_error(errno); /* ENOENT; EACCES is EPERM */
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    /* A creator is a few system calls from its trailer at most (size 0,
     * then no magic yet); one that died there leaves a segment that never
     * completes: MPROC_ECORRUPT after a while. */
    for (tries = 0;; tries++) {
        if (fstat(fd, &st) != 0) {
            rc = mproc__os_error(errno);
            goto fail;
        }
        /* Only the user's own, and only if nobody else may open it: a
         * segment another user made under the name could be read or
         * written by them. */
        if (st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
            rc = MPROC_EPERM;
            goto fail;
        }
        if (st.st_size < 0 || (uint64_t)st.st_size > (uint64_t)SIZE_MAX ||
            (size_t)st.st_size % page != 0) {
            rc = MPROC_ECORRUPT;
            goto fail;
        }
        len = (size_t)st.st_size;
        if (len > 0) {
            p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
            if (p == MAP_FAILED) {
                rc = mproc__os_error(errno);
                goto fail;
            }
            if (__atomic_load_n(&mproc__shm_trailer_of(p, len)->magic,
                                __ATOMIC_ACQUIRE) != 0)
                break;
            (void)munmap(p, len);
        }
        if (tries >= 200) {
            rc = MPROC_ECORRUPT;
            goto fail;
        }
        mproc__os_sleep_ms(1);
    }
    rc = mproc__shm_trailer_size(mproc__shm_trailer_of(p, len), len, page, &sz);
    if (rc < 0) {
        (void)munmap(p, len);
        goto fail;
    }
    *h = (mproc__handle)fd;
    *addr = p;
    *size = sz;
    *map = len;
    return 0;
fail:
    (void)close(fd);
    return rc;
}

int mproc__os_shm_unlink_named(const char *name, mproc__handle h, void *addr,
                               size_t map)
{
    char path[MPROC_SHM_NAME_MAX + 2];
    struct stat mine, named;
    int fd;

    (void)addr;
    (void)map;
    if (name == NULL || h < 0 || h > INT32_MAX)
        return MPROC_EINVAL;
    os_name(name, path);
    if (fstat((int)h, &mine) != 0)
        return mproc__os_error(errno);
    /* The name may have been unlinked and given to a new segment since:
     * that one is not ours to remove. */
    fd = mproc__posix_fd_high(shm_open(path, O_RDONLY | O_CLOEXEC, 0));
    if (fd < 0)
        return errno == EACCES ? MPROC_ENOENT : mproc__os_error(errno);
    if (fstat(fd, &named) != 0 || named.st_dev != mine.st_dev ||
        named.st_ino != mine.st_ino) {
        (void)close(fd);
        return MPROC_ENOENT;
    }
    (void)close(fd);
    if (shm_unlink(path) != 0)
        return mproc__os_error(errno);
    return 0;
}
