/*
 * POSIX processes: fork, spawn (posix_spawn of this executable), waiting and
 * reaping, signals, pids, CPU counts, and finding a function in another
 * process by (module, offset).
 *
 * Map of this file: reaping; daemon lifelines; fork; spawn; signals and
 * pids; CPU counts; locate and resolve; the bootstrap's checks; exit.
 *
 * Reaping. A child is waited for without being reaped first (waitid with
 * WNOWAIT, or poll on a pidfd), then reaped with a non-blocking waitpid under
 * the child's own lock. So several threads may join, poll or signal the same
 * child at once: exactly one reaps it, the others read the result, and no
 * thread blocks while holding the lock. Signals are sent under the same lock,
 * so a pid is never signalled after it was reaped (and possibly reused).
 *
 * Daemon children die with their parent, whichever thread started them,
 * through a lifeline pipe per daemon child whose end-of-file the kernel
 * turns into a SIGKILL of the child (see "Daemon lifelines" below).
 */
#include "../common/backend.h"
#include "platform.h"
#include "posix.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#if defined(MPROC_HAVE_DL_ITERATE_PHDR)
#include <link.h>
#endif
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#if defined(MPROC_HAVE_PIDFD) || defined(MPROC_SYS_SYS_CLOSE_RANGE)
#include <sys/syscall.h>
#endif
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#if defined(MPROC_HAVE_GETAUXVAL)
#include <sys/auxv.h>
#endif
#if defined(MPROC_HAVE_PR_PDEATHSIG)
#include <sys/prctl.h>
#endif
#if defined(MPROC_HAVE_PROCCTL_PDEATHSIG)
#include <sys/procctl.h>
#endif
#if defined(MPROC_SYS_LOCAL_PEERPID) || defined(MPROC_SYS_LOCAL_PEERCRED)
#include <sys/un.h>
#endif
#if defined(MPROC_SYS_LOCAL_PEERCRED)
#include <sys/ucred.h>
#endif
#if defined(MPROC_HAVE_CPUSET_AFFINITY)
#include <sys/cpuset.h>
#include <sys/param.h>
#endif
#if defined(MPROC_HAVE_SYSCTLBYNAME) || defined(MPROC_HAVE_KERN_PROC_PATHNAME)
#include <sys/sysctl.h>
#endif
#if defined(MPROC_HAVE_NSGETEXECUTABLEPATH) ||                                 \
    !defined(MPROC_HAVE_DL_ITERATE_PHDR)
#include <mach-o/dyld.h>
#include <mach-o/loader.h>
#endif

/* Declared by unistd.h only with _GNU_SOURCE on glibc, never on macOS. */
extern char **environ; /* NOLINT(readability-redundant-declaration) */

/* ---------------------------------------------------------------------------
 * Reaping
 */

/* The per-child lock (mproc__child.lock): held only around a non-blocking
 * waitpid or a kill, so a spin with yields is enough. Being per child, it
 * needs no care at fork, and a fork child writes no global of ours for it
 * (each page written after fork is a copy-on-write fault). */
static void child_lock(mproc__child *c)
{
    while (atomic_exchange_explicit(&c->lock, 1, memory_order_acquire) != 0)
        (void)sched_yield();
}

static void child_unlock(mproc__child *c)
{
    atomic_store_explicit(&c->lock, 0, memory_order_release);
}

/* _exit through a pointer bound when the library loads: a fork child calls
 * it first, and a lazily bound call would make every child run the dynamic
 * linker and write the GOT (more copy-on-write faults per start). */
static void (*const volatile exit_now)(int) = _exit;

static int exit_code_of(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return -WTERMSIG(status);
    return MPROC_EUNKNOWN;
}

static int open_pidfd(pid_t pid)
{
#if defined(MPROC_HAVE_PIDFD)
    long fd = syscall(SYS_pidfd_open, pid, 0);
    if (fd >= 0) {
        /* pidfds are close-on-exec from birth; never on 0-2 (posix.h). */
        return mproc__posix_fd_high((int)fd);
    }
#else
    (void)pid;
#endif
    return -1;
}

/* With the child's lock held: 1 reaped now (or before), 0 still running, or a
 * negative code. */
static int try_reap_locked(mproc__child *c)
{
    int status = 0;
    pid_t r;
    if (c->reaped)
        return 1;
    do
        r = waitpid((pid_t)c->pid, &status, WNOHANG);
    while (r < 0 && errno == EINTR);
    if (r == 0)
        return 0;
    if (r < 0)
        return mproc__os_error(errno);
    c->exitcode = exit_code_of(status);
    c->reaped = true;
    return 1;
}

/* Waits until the child has exited, without reaping it: 0, or
 * MPROC_ETIMEDOUT. */
static int wait_exited(mproc__child *c, int timeout_ms)
{
    int64_t deadline = mproc__os_now_ms() + timeout_ms + 1; /* never early */
    int nap = 1;

    if (timeout_ms < 0) {
        siginfo_t si;
        int r;
        do
            r = waitid(P_PID, (id_t)c->pid, &si, WEXITED | WNOWAIT);
        while (r < 0 && errno == EINTR);
        /* ECHILD: reaped behind our back; the reap below reports it. */
        return 0;
    }
    if (c->handle != MPROC__BADHANDLE) {
        for (;;) {
            struct pollfd pfd;
            int left = (int)(deadline - mproc__os_now_ms());
            int r;
            if (left < 0)
                left = 0;
            pfd.fd = (int)c->handle;
            pfd.events = POLLIN;
            pfd.revents = 0;
            r = poll(&pfd, 1, left);
            if (r > 0)
                return 0;
            if (r == 0)
                return MPROC_ETIMEDOUT;
            if (errno != EINTR)
                break; /* fall back to polling below */
        }
    }
    /* No pidfd (old kernel): poll with a short, growing nap. */
    for (;;) {
        siginfo_t si;
        int r;
        memset(&si, 0, sizeof si);
        r = waitid(P_PID, (id_t)c->pid, &si, WEXITED | WNOWAIT | WNOHANG);
        if (r < 0 && errno != EINTR)
            return 0;
        if (r == 0 && si.si_pid != 0)
            return 0;
        if (mproc__os_now_ms() >= deadline)
            return MPROC_ETIMEDOUT;
        mproc__os_sleep_ms(nap);
        if (nap < 10)
            nap *= 2;
    }
}

/* try_reap_locked under the lock; a child that a signal ended may have
 * been killed inside shm_open's window: its names are swept (shm.c). */
static int try_reap(mproc__child *c)
{
    bool before;
    int rc;
    child_lock(c);
    before = c->reaped;
    rc = try_reap_locked(c);
    child_unlock(c);
    if (rc == 1 && !before && c->exitcode < 0 && c->exitcode != MPROC_EUNKNOWN)
        mproc__posix_shm_sweep();
    return rc;
}

int mproc__os_wait(mproc__child *c, int timeout_ms)
{
    int rc;

    rc = try_reap(c);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    if (timeout_ms == 0)
        return MPROC_ETIMEDOUT;
    rc = wait_exited(c, timeout_ms);
    if (rc < 0)
        return rc;
    rc = try_reap(c);
    if (rc == 0) /* cannot happen once waitid saw the exit */
        return MPROC_ETIMEDOUT;
    return rc < 0 ? rc : 0;
}

void mproc__os_child_release(mproc__child *c)
{
    if (c == NULL)
        return;
    mproc__os_handle_close(c->handle);
    c->handle = MPROC__BADHANDLE;
    /* Released only once the child has ended (or when the caller gives up a
     * child it discards): closing it kills a daemon child that still runs. */
    mproc__os_handle_close(c->lifeline);
    c->lifeline = MPROC__BADHANDLE;
}

/* ---------------------------------------------------------------------------
 * Daemon lifelines
 *
 * A daemon child must die with this process however it ends, and not
 * before. Linux's parent-death signal (PR_SET_PDEATHSIG) fires when the
 * *thread* that forked the child ends, so a daemon started by a short-lived
 * thread would die early. What the kernel does exactly once, when the last
 * thread of a process is gone (exit, crash, SIGKILL alike), is close its
 * descriptors. So each daemon child gets a pipe: this process keeps the
 * write end (its lifeline, closed by mproc__os_child_release once the child
 * has been reaped, or by the kernel when this process ends), and the child
 * keeps the read end, armed for signal-driven I/O: itself as owner
 * (F_SETOWN), SIGKILL as the signal (F_SETSIG), O_ASYNC. When the last write
 * end closes, the pipe signals its readers' owners, and the child dies by
 * SIGKILL as it did with the parent-death signal. No thread runs in the
 * child, and since the arming belongs to the open file description, it
 * survives exec: a daemon spawn arms it between fork and exec, and the
 * spawned program needs to know nothing about it.
 *
 * Why one pipe per child and not one per parent: the owner is a property of
 * the open file description, which every holder of a shared read end would
 * share, so the last child to arm it would be the only one signalled.
 *
 * The write end must reach no other process, or a daemon would live as long
 * as that process: it is close-on-exec, a fork child closes every
 * descriptor it was not given, and a spawned child receives only its list.
 * (A child that other code starts with a bare fork() and no exec holds it
 * until it exits, and delays the daemons' death as much.)
 *
 * Without F_SETSIG (src/posix/platform.h) the child asks the kernel for a
 * signal when its parent process ends where it can (FreeBSD's
 * procctl(PROC_PDEATHSIG_CTL), which follows the process, not a thread),
 * and otherwise (macOS, OpenBSD) forks a watcher: a small process, child
 * of the daemon, that holds the lifeline's read end and nothing else,
 * sleeps in poll() on it, SIGKILLs the daemon at end-of-file and ends by
 * itself once the daemon has ended (it is re-parented then). The daemon
 * itself then keeps no lifeline descriptor. The watcher costs a process
 * per daemon; it is what a kqueue EVFILT_PROC watch would cost too (a
 * thread, and a kqueue is not inherited across fork), without any
 * thread in the daemon.
 */

/* One past the highest descriptor number worth closing by brute force.
 * Read only where a close is done by brute force (no close_range): a
 * fork child that read it would pay a system call and the pages of
 * sysconf, and bind sysconf lazily (see exit_now), at every start. */
static int fd_limit(void)
{
    long max = sysconf(_SC_OPEN_MAX);
    return (max < 0 || max > 65536) ? 65536 : (int)max;
}

static void close_except(const mproc__handle *keep, size_t nkeep,
                         const int also[2], int limit, bool async_safe);

#if !defined(MPROC_HAVE_SETSIG) && !defined(MPROC_HAVE_PROCCTL_PDEATHSIG)
/* The watcher (see above). Only async-signal-safe calls: a daemon spawn
 * runs this between fork and exec. Returns in the daemon. */
static void lifeline_watch(int rfd, int limit)
{
    pid_t daemon = getpid();
    pid_t w = fork();
    int nullfd;
    if (w != 0) /* the daemon; or no watcher could be made (-1) */
        return;
    {
        const int also[2] = {rfd, -1};
        close_except(NULL, 0, also, limit, true);
    }
    /* Nothing of the daemon's standard streams either: a test harness or
     * a shell waits for their end-of-file. */
    nullfd = open("/dev/null", O_RDWR);
    if (nullfd >= 0) {
        (void)dup2(nullfd, 0);
        (void)dup2(nullfd, 1);
        (void)dup2(nullfd, 2);
        if (nullfd > 2)
            (void)close(nullfd);
    }
    for (;;) {
        struct pollfd pfd;
        int r;
        pfd.fd = rfd;
        pfd.events = POLLIN;
        pfd.revents = 0;
        /* The timeout only bounds how long the watcher outlives a daemon
         * that ended by itself. */
        r = poll(&pfd, 1, 250);
        /* Re-parented: the daemon has ended (its pid may be reused). */
        if (getppid() != daemon)
            _exit(0);
        if (r > 0) {
            /* End-of-file (nobody ever writes): the parent is gone. */
            (void)kill(daemon, SIGKILL);
            _exit(0);
        }
    }
}
#endif

/* In a new daemon child, before it runs anything of its own; `rfd` is the
 * read end of its lifeline, and the child holds no write end of it any
 * more; every descriptor it must not keep is closed already. Returns true
 * when the child must keep `rfd` (the signal-driven arming belongs to the
 * open file), false when it is to close it. Async-signal-safe: a daemon
 * spawn calls it between fork and exec. */
static bool lifeline_arm(int rfd, pid_t parent, int limit)
{
#if defined(MPROC_HAVE_SETSIG)
    /* Kept across exec, as the parent-death signal is; O_ASYNC last, once
     * owner and signal are set. */
    (void)limit;
    if (fcntl(rfd, F_SETFD, 0) == 0 && fcntl(rfd, F_SETOWN, getpid()) == 0 &&
        fcntl(rfd, F_SETSIG, SIGKILL) == 0 &&
        fcntl(rfd, F_SETFL, O_ASYNC) == 0) {
        /* The parent may have ended before O_ASYNC took effect; then the
         * pipe already reads as end-of-file (nobody ever writes to it, so
         * readable means exactly that). */
        struct pollfd pfd;
        pfd.fd = rfd;
        pfd.events = POLLIN;
        pfd.revents = 0;
        if (poll(&pfd, 1, 0) > 0)
            (void)kill(getpid(), SIGKILL);
        return true;
    }
#if defined(MPROC_HAVE_PR_PDEATHSIG)
    /* The old way, with its caveat: it fires when the *thread* that forked
     * this child ends. Only if the lifeline cannot be armed. */
    (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
#elif defined(MPROC_HAVE_PROCCTL_PDEATHSIG)
    {
        /* FreeBSD: delivered when the parent process exits, kept across
         * exec (procctl(2)). */
        int sig = SIGKILL;
        (void)limit;
        (void)procctl(P_PID, 0, PROC_PDEATHSIG_CTL, &sig);
    }
#else
    lifeline_watch(rfd, limit);
#endif
    /* The parent may have died before the arming took effect. */
    if (getppid() != parent)
        (void)kill(getpid(), SIGKILL);
    return false;
}

/* ---------------------------------------------------------------------------
 * Fork
 */

/* Closes lo..hi without close_range. `limit` is fd_limit(), or -1 to read
 * it here if it is needed; with async_safe (between fork and exec: no
 * opendir, which allocates) it closes every number up to it, else it
 * reads /proc/self/fd where there is one. */
static void close_range_fallback(int lo, int hi, int limit, bool async_safe)
{
#if defined(MPROC_HAVE_PROC_FD)
    DIR *d = async_safe ? NULL : opendir("/proc/self/fd");
    struct dirent *e;
#else
    (void)async_safe;
#endif
#if defined(MPROC_HAVE_PROC_FD)
    if (d == NULL)
#endif
    {
        int fd, top = limit >= 0 ? limit : fd_limit();
        if (hi < top)
            top = hi + 1;
        for (fd = lo; fd < top; fd++)
            (void)close(fd);
        return;
    }
#if defined(MPROC_HAVE_PROC_FD)
    while ((e = readdir(d)) != NULL) {
        char *end;
        long fd = strtol(e->d_name, &end, 10);
        if (*end != '\0' || e->d_name[0] == '.' || fd == dirfd(d))
            continue;
        if (fd >= lo && fd <= hi)
            (void)close((int)fd);
    }
    closedir(d);
#endif
}

static void close_fds(int lo, int hi, int limit, bool async_safe)
{
    if (lo > hi)
        return;
#if defined(MPROC_HAVE_CLOSE_RANGE) && defined(MPROC_SYS_SYS_CLOSE_RANGE)
    /* The system call itself: glibc's close_range wrapper is 2.34. */
    if (syscall(SYS_close_range, (unsigned)lo, (unsigned)hi, 0u) == 0)
        return;
#elif defined(MPROC_HAVE_CLOSE_RANGE)
    if (close_range((unsigned)lo, (unsigned)hi, 0) == 0)
        return;
#endif
#if defined(MPROC_HAVE_CLOSEFROM)
    if (hi == INT_MAX) {
        closefrom(lo);
        return;
    }
#endif
    close_range_fallback(lo, hi, limit, async_safe);
}

/* In a new child: closes every descriptor but 0-2, `keep` and the two of
 * `also` (-1: none). `limit` and `async_safe` as for
 * close_range_fallback. */
static void close_except(const mproc__handle *keep, size_t nkeep,
                         const int also[2], int limit, bool async_safe)
{
    int lo = 3;
    for (;;) {
        /* The smallest kept descriptor >= lo; no sorting, no allocation
         * (the keep list is short and this runs after fork). */
        int next = INT_MAX;
        size_t i;
        for (i = 0; i < 2; i++)
            if (also[i] >= lo && also[i] < next)
                next = also[i];
        for (i = 0; i < nkeep; i++)
            if (keep[i] >= lo && keep[i] < next)
                next = (int)keep[i];
        if (next == INT_MAX) {
            close_fds(lo, INT_MAX, limit, async_safe);
            return;
        }
        close_fds(lo, next - 1, limit, async_safe);
        lo = next + 1;
    }
}

/* The null device, close-on-exec and above 2, or -1. */
static int open_null(void)
{
    return mproc__posix_fd_high(open("/dev/null", O_RDONLY | O_CLOEXEC));
}

/* The null device for fork children's stdin, opened once (P30): a fork
 * child then only dup2s it, instead of opening and closing the device at
 * every start. It is this library's descriptor (above 2, close-on-exec),
 * but the program may have closed it or put another file on its number
 * since (a close loop, a dup2), so it is checked before each use against
 * what was opened: the same character device, the same file. A stale one
 * is not closed (its number is not ours any more) but replaced. No lock:
 * a fork child may reach here holding nothing of its parent's threads;
 * two threads that replace it at once keep one, the other closes its
 * own. The identity is the same for every open of the device, so which
 * thread stored it does not matter. */
static atomic_int null_cached = -1;
static _Atomic uint64_t null_dev, null_ino, null_rdev;

static bool null_is(int fd, bool record)
{
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISCHR(st.st_mode))
        return false;
    if (record) {
        atomic_store_explicit(&null_dev, (uint64_t)st.st_dev,
                              memory_order_relaxed);
        atomic_store_explicit(&null_ino, (uint64_t)st.st_ino,
                              memory_order_relaxed);
        atomic_store_explicit(&null_rdev, (uint64_t)st.st_rdev,
                              memory_order_relaxed);
        return true;
    }
    return (uint64_t)st.st_dev ==
               atomic_load_explicit(&null_dev, memory_order_relaxed) &&
           (uint64_t)st.st_ino ==
               atomic_load_explicit(&null_ino, memory_order_relaxed) &&
           (uint64_t)st.st_rdev ==
               atomic_load_explicit(&null_rdev, memory_order_relaxed);
}

/* The cached null device (above), checked or reopened; -1 when there is
 * none (a bare chroot): the child then opens it itself, or keeps stdin. */
static int null_shared(void)
{
    int tries;
    for (tries = 0; tries < 3; tries++) {
        int fd = atomic_load_explicit(&null_cached, memory_order_acquire);
        int mine;
        if (fd >= 0 && null_is(fd, false))
            return fd;
        mine = open_null();
        if (mine < 0)
            return -1;
        if (!null_is(mine, true)) { /* not a device: no null device here */
            (void)close(mine);
            return -1;
        }
        if (atomic_compare_exchange_strong_explicit(&null_cached, &fd, mine,
                                                    memory_order_acq_rel,
                                                    memory_order_acquire))
            return mine;
        (void)close(mine); /* another thread replaced it first: check it */
    }
    return -1;
}

/* dup2 through a pointer bound when the library loads, as exit_now: the
 * parent never calls dup2 itself, so a lazily bound call would run the
 * dynamic linker in every fork child. */
static int (*const volatile dup2_now)(int, int) = dup2;

/* In a new child: `nullfd` (open_null or null_shared, or -1 to open it
 * here) becomes its standard input, so that it does not compete with its
 * parent for the terminal (as in Python). Without a null device stdin
 * stays as it was. Only system calls: safe between fork and exec. */
static bool stdin_to_null(int nullfd)
{
    int fd = nullfd;
    bool ok;
    if (fd >= 0 && dup2_now(fd, 0) == 0) /* clears close-on-exec on 0 */
        return true;
    /* No descriptor given, or it was closed meanwhile by another thread
     * of the parent (a program that closes what it does not own). */
    fd = open("/dev/null", O_RDONLY | O_CLOEXEC); /* may be 0 */
    if (fd < 0)
        return false;
    if (fd == 0)
        return fcntl(0, F_SETFD, 0) == 0;
    ok = dup2_now(fd, 0) == 0;
    (void)close(fd);
    return ok;
}

int mproc__os_fork(mproc__child *out, const mproc__handle *keep, size_t nkeep,
                   bool daemon, bool inherit_stdin)
{
    /* Everything daemon-only stays off the path of other children. */
    int lp[2] = {-1, -1};
    pid_t parent = 0;
    pid_t pid;

    int nullfd = inherit_stdin ? -1 : null_shared();

    if (daemon) {
        parent = getpid();
        if (mproc__posix_pipe(lp) != 0)
            return mproc__os_error(errno);
    }
    pid = fork();
    if (pid < 0) {
        int err = errno;
        if (daemon) {
            close(lp[0]);
            close(lp[1]);
        }
        return mproc__os_error(err);
    }
    out->reaped = false;
    out->exitcode = 0;
    out->handle = MPROC__BADHANDLE;
    out->lifeline = MPROC__BADHANDLE;
    out->lock = 0;
    out->stdin_null = false;
    if (pid == 0) {
        const int also[2] = {lp[0], -1};
        /* First, while the shared null device is still open here. */
        if (!inherit_stdin)
            out->stdin_null = stdin_to_null(nullfd);
        /* Closes the lifeline's write end too (and every other daemon's),
         * and the shared null device. */
        close_except(keep, nkeep, also, -1, false);
        if (daemon && !lifeline_arm(lp[0], parent, -1))
            (void)close(lp[0]);
        out->pid = 0;
        return 0;
    }
    if (daemon) {
        close(lp[0]);
        out->lifeline = lp[1];
    }
    out->pid = pid;
    out->handle = open_pidfd(pid);
    return 0;
}

/* ---------------------------------------------------------------------------
 * This program's file
 *
 * What spawn starts, and the module file of the main program in locate and
 * resolve. Linux names it /proc/self/exe, which stays right even if the
 * file is renamed or replaced on disk since the program started. Elsewhere
 * it is found once: macOS _NSGetExecutablePath, FreeBSD
 * sysctl(KERN_PROC_PATHNAME), each made canonical with realpath; and where
 * the system has neither (platform.h), argv[0] as mproc_init got it, made
 * absolute (PATH searched) and canonical. A program that never called
 * mproc_init there has no file to spawn: MPROC_EEXEC.
 */

#if !defined(MPROC_HAVE_PROC_EXE)
static char exe_native[PATH_MAX + 1];
static pthread_once_t exe_once = PTHREAD_ONCE_INIT;
static char *exe_argv0; /* set by mproc__os_spawn_path, at mproc_init */

static void exe_find(void)
{
#if defined(MPROC_HAVE_NSGETEXECUTABLEPATH)
    char raw[PATH_MAX + 1];
    uint32_t cap = (uint32_t)sizeof raw;
    if (_NSGetExecutablePath(raw, &cap) == 0 &&
        realpath(raw, exe_native) == NULL)
        exe_native[0] = '\0';
#elif defined(MPROC_HAVE_KERN_PROC_PATHNAME)
    char raw[PATH_MAX + 1];
    size_t len = sizeof raw;
    int mib[4] = {CTL_KERN, KERN_PROC, KERN_PROC_PATHNAME, -1};
    if (sysctl(mib, 4, raw, &len, NULL, 0) == 0 && len > 0 &&
        len < sizeof raw) {
        raw[len] = '\0';
        if (realpath(raw, exe_native) == NULL)
            exe_native[0] = '\0';
    }
#else
    exe_native[0] = '\0';
#endif
}
#endif

/* The path that names this program's file, or NULL when none is known. */
static const char *self_exe_path(void)
{
#if defined(MPROC_HAVE_PROC_EXE)
    return "/proc/self/exe";
#else
    (void)pthread_once(&exe_once, exe_find);
    if (exe_native[0] != '\0')
        return exe_native;
    return exe_argv0;
#endif
}

int mproc__os_self_exe(char **path)
{
    char buf[PATH_MAX + 1];
    const char *p = self_exe_path();
#if defined(MPROC_HAVE_PROC_EXE)
    ssize_t n = readlink(p, buf, sizeof buf - 1);
    if (n <= 0)
        return mproc__os_error(errno);
    buf[n] = '\0';
    p = buf;
#else
    (void)buf;
    if (p == NULL)
        return MPROC_ENOENT;
#endif
    *path = strdup(p);
    return *path ? 0 : MPROC_ENOMEM;
}

/* ---------------------------------------------------------------------------
 * Spawn
 *
 * Every spawned child starts alike, daemon or not (backend.h): no blocked
 * signal, default dispositions for the signals in spawn_sigdefault, only
 * its handles, the null device as stdin unless asked otherwise, and the
 * environment plus the request's entry. A child that is not a daemon goes
 * through posix_spawn (vfork-like on glibc, so cheap); a daemon child goes
 * through fork + exec, since its lifeline must be armed in between, and
 * does by hand what the posix_spawn attributes do.
 */

/* The signals a spawned child gets at their default disposition, whatever
 * the parent did with them: those a parent commonly ignores or catches
 * for itself. Not every signal: a program run under nohup ignores SIGHUP
 * on purpose, and its children should too. */
static void spawn_sigdefault(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGPIPE);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGCHLD);
}

/* exec takes char *const[] for historical reasons and never writes to
 * the strings. */
static char *const *argv_of(const mproc__spawn_req *req)
{
    char *const *av;
    memcpy(&av, &req->argv, sizeof av);
    return av;
}

/* The child's environment: this process's, with `add` ("NAME=value") in
 * place of any entry of that name. A malloc'ed array of borrowed strings
 * (free the array only), or environ itself when add is NULL; NULL when out
 * of memory. */
static char **env_with(const char *add)
{
    const char *eq;
    size_t n = 0, k = 0, i, namelen;
    char **env;
    if (add == NULL)
        return environ;
    eq = strchr(add, '=');
    namelen = eq ? (size_t)(eq - add) + 1 : strlen(add);
    while (environ != NULL && environ[n] != NULL)
        n++;
    env = malloc((n + 2) * sizeof *env);
    if (env == NULL)
        return NULL;
    for (i = 0; i < n; i++)
        if (strncmp(environ[i], add, namelen) != 0)
            env[k++] = environ[i];
    memcpy(&env[k++], &add, sizeof add); /* exec does not write to it */
    env[k] = NULL;
    return env;
}

static int exec_error(int err)
{
    switch (err) {
    case ENOMEM:
        return MPROC_ENOMEM;
    case EAGAIN:
        return MPROC_EAGAIN;
    case EMFILE:
    case ENFILE:
        return MPROC_EMFILE;
    default:
        /* ENOENT, EACCES, ENOEXEC, ...: the executable cannot start. */
        return MPROC_EEXEC;
    }
}

/* posix_spawn closes what the child must not inherit only where the C
 * library can be told to: glibc 2.34's addclosefrom_np, macOS's
 * POSIX_SPAWN_CLOEXEC_DEFAULT. Elsewhere (musl, older glibc, the BSDs)
 * every spawn goes through fork + exec, which closes them by hand: a
 * descriptor that the program opened without close-on-exec must not reach
 * the child (P20). */
#if defined(MPROC_HAVE_SPAWN_CLOSEFROM) ||                                     \
    defined(MPROC_HAVE_SPAWN_CLOEXEC_DEFAULT)
#define SPAWN_POSIX 1
#endif

#if defined(SPAWN_POSIX)
static bool is_kept(int fd, const mproc__handle *keep, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (keep[i] == fd)
            return true;
    return false;
}

/* posix_spawn: fast (vfork-like on glibc), reports exec failures itself.
 * nullfd: the child's stdin, or -1 to keep this process's. */
static int spawn_posix(const mproc__spawn_req *req, const char *exe,
                       char *const *envp, int nullfd, pid_t *pid)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, deflt;
    size_t i;
    int top = 2, fd, rc;
    short flags = (short)(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

    if (posix_spawn_file_actions_init(&fa) != 0)
        return MPROC_ENOMEM;
    if (posix_spawnattr_init(&attr) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        return MPROC_ENOMEM;
    }
    rc = 0;
#if defined(MPROC_HAVE_SPAWN_CLOSEFROM)
    /* dup2(fd, fd) clears close-on-exec on the listed descriptors (glibc
     * 2.29, musl, POSIX 2024); every other library descriptor is
     * close-on-exec. None of them is 0-2 (posix.h), so the stdin action
     * below cannot clobber one. */
    for (i = 0; i < req->n_inherit && rc == 0; i++) {
        fd = (int)req->inherit[i];
        if (fd > top)
            top = fd;
        rc = posix_spawn_file_actions_adddup2(&fa, fd, fd);
    }
    if (rc == 0 && nullfd >= 0)
        rc = posix_spawn_file_actions_adddup2(&fa, nullfd, 0);
    /* Descriptors the program opened without close-on-exec must not reach
     * the child either: close the gaps below the highest kept one (glibc
     * ignores closing a descriptor that is not open) and all above it. */
    for (fd = 3; fd < top && rc == 0; fd++)
        if (!is_kept(fd, req->inherit, req->n_inherit))
            rc = posix_spawn_file_actions_addclose(&fa, fd);
    if (rc == 0)
        rc = posix_spawn_file_actions_addclosefrom_np(&fa, top + 1);
#else
    /* macOS: with POSIX_SPAWN_CLOEXEC_DEFAULT only the descriptors named
     * by a file action reach the child (posix_spawnattr_setflags(3)), the
     * standard ones included. Not run here: written against Apple's
     * documentation. */
    (void)top;
    (void)is_kept;
    flags = (short)(flags | POSIX_SPAWN_CLOEXEC_DEFAULT);
    for (i = 0; i < req->n_inherit && rc == 0; i++)
        rc = posix_spawn_file_actions_addinherit_np(&fa, (int)req->inherit[i]);
    for (fd = nullfd >= 0 ? 1 : 0; fd < 3 && rc == 0; fd++)
        if (fcntl(fd, F_GETFD) >= 0)
            rc = posix_spawn_file_actions_addinherit_np(&fa, fd);
    if (rc == 0 && nullfd >= 0)
        rc = posix_spawn_file_actions_adddup2(&fa, nullfd, 0);
#endif
    sigemptyset(&none);
    spawn_sigdefault(&deflt);
    if (rc == 0)
        rc = posix_spawnattr_setsigmask(&attr, &none);
    if (rc == 0)
        rc = posix_spawnattr_setsigdefault(&attr, &deflt);
    if (rc == 0)
        rc = posix_spawnattr_setflags(&attr, flags);
    if (rc != 0) {
        rc = mproc__os_error(rc);
    } else {
        rc = posix_spawn(pid, exe, &fa, &attr, argv_of(req), envp);
        if (rc != 0)
            rc = exec_error(rc);
    }
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    return rc;
}
#endif

/* fork + exec: for daemon children, whose lifeline must be armed between
 * the two (posix_spawn cannot), and for every child where posix_spawn
 * cannot close the other descriptors (see SPAWN_POSIX). Between the two it
 * does what spawn_posix asks of posix_spawn, with system calls only. An
 * exec failure comes back over a close-on-exec pipe. `lifeline` NULL: no
 * daemon; else on success *lifeline is the write end to keep. */
static int spawn_forkexec(const mproc__spawn_req *req, const char *exe,
                          char *const *envp, int nullfd, pid_t *pid_out,
                          int *lifeline)
{
    int ep[2], lp[2] = {-1, -1}, err = 0;
    int limit = fd_limit();
    pid_t parent = getpid(), pid;
    sigset_t none, deflt;
    struct sigaction dfl;
    ssize_t n;

    /* Everything the child needs is ready before fork. */
    sigemptyset(&none);
    spawn_sigdefault(&deflt);
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    if (lifeline != NULL && mproc__posix_pipe(lp) != 0)
        return mproc__os_error(errno);
    if (mproc__posix_pipe(ep) != 0) {
        err = errno;
        if (lifeline != NULL) {
            close(lp[0]);
            close(lp[1]);
        }
        return mproc__os_error(err);
    }
    pid = fork();
    if (pid < 0) {
        err = errno;
        close(ep[0]);
        close(ep[1]);
        if (lifeline != NULL) {
            close(lp[0]);
            close(lp[1]);
        }
        return mproc__os_error(err);
    }
    if (pid == 0) {
        /* Only async-signal-safe calls from here to exec. */
        const int also[2] = {lp[0], ep[1]};
        size_t i;
        int sig;
        if (nullfd >= 0)
            (void)stdin_to_null(nullfd);
        /* Every descriptor but the handles, the lifeline's read end and
         * the error pipe: its own lifeline write end too, which would keep
         * it alive, and those the program opened without close-on-exec. */
        close_except(req->inherit, req->n_inherit, also, limit, true);
        if (lifeline != NULL && !lifeline_arm(lp[0], parent, limit))
            (void)close(lp[0]);
        for (i = 0; i < req->n_inherit; i++)
            (void)fcntl((int)req->inherit[i], F_SETFD, 0);
        for (sig = 1; sig < NSIG; sig++)
            if (sigismember(&deflt, sig) == 1)
                (void)sigaction(sig, &dfl, NULL);
        (void)sigprocmask(SIG_SETMASK, &none, NULL);
        execve(exe, argv_of(req), envp);
        err = errno;
        (void)!write(ep[1], &err, sizeof err);
        _exit(127);
    }
    close(ep[1]);
    if (lifeline != NULL)
        close(lp[0]);
    do
        n = read(ep[0], &err, sizeof err);
    while (n < 0 && errno == EINTR);
    close(ep[0]);
    if (n == (ssize_t)sizeof err) {
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
            ;
        if (lifeline != NULL)
            close(lp[1]);
        return exec_error(err);
    }
    *pid_out = pid;
    if (lifeline != NULL)
        *lifeline = lp[1];
    return 0;
}

int mproc__os_spawn(const mproc__spawn_req *req, mproc__child *out)
{
    const char *exe = req->exe ? req->exe : self_exe_path();
    char **envp;
    pid_t pid = 0;
    int lifeline = -1;
    int nullfd = -1;
    int rc;

    if (req->argv == NULL || req->argv[0] == NULL)
        return MPROC_EINVAL;
    /* No way to name this program's file (see self_exe_path): a static
     * program on a system without /proc, started without mproc_init. */
    if (exe == NULL)
        return MPROC_EEXEC;
    envp = env_with(req->env);
    if (envp == NULL)
        return MPROC_ENOMEM;
    /* Without a null device (a bare chroot) the child keeps this stdin. */
    if (!req->inherit_stdin)
        nullfd = open_null();
    if (req->daemon)
        rc = spawn_forkexec(req, exe, envp, nullfd, &pid, &lifeline);
    else
#if defined(SPAWN_POSIX)
        rc = spawn_posix(req, exe, envp, nullfd, &pid);
#else
        rc = spawn_forkexec(req, exe, envp, nullfd, &pid, NULL);
#endif
    if (nullfd >= 0)
        close(nullfd);
    if (envp != environ)
        free(envp);
    if (rc != 0)
        return rc;
    out->pid = pid;
    out->reaped = false;
    out->exitcode = 0;
    out->lock = 0;
    out->lifeline = lifeline;
    out->handle = open_pidfd(pid);
    return 0;
}

/* ---------------------------------------------------------------------------
 * Signals and pids
 */

int mproc__os_signal(mproc__child *c, int sig)
{
    int rc = 0, os;
    if (c == NULL)
        return MPROC_EINVAL;
    if (sig == MPROC__SIGTERM)
        os = SIGTERM;
    else if (sig == MPROC__SIGKILL)
        os = SIGKILL;
    else if (sig == MPROC__SIGINT)
        os = SIGINT;
    else
        return MPROC_EINVAL;
    child_lock(c);
    /* Under the child's lock: a pid not yet reaped cannot have been reused. */
    if (!c->reaped && kill((pid_t)c->pid, os) != 0 && errno != ESRCH)
        rc = mproc__os_error(errno);
    child_unlock(c);
    return rc;
}

int mproc__os_interrupt_listen(void)
{
    return 0; /* the kernel delivers SIGINT */
}

int64_t mproc__os_getpid(void)
{
    return (int64_t)getpid();
}

int64_t mproc__os_getppid(void)
{
    return (int64_t)getppid();
}

int mproc__os_parent_alive(int64_t pid)
{
    /* A child whose parent died is re-parented at once (to init or a
     * subreaper), so getppid() changes even while the dead parent is still
     * a zombie that kill(pid, 0) would find. */
    return (int64_t)getppid() == pid ? 1 : 0;
}

/* The identity of the file at `path`, through open + fstat: a loader such
 * as valgrind intercepts the open of /proc/self/exe (and its readlink),
 * not a stat of it, so only this form names the program's own file there
 * too. A file that cannot be read (mode 0711) is stat'ed. */
static int file_stat(const char *path, struct stat *st)
{
    int fd = mproc__posix_fd_high(open(path, O_RDONLY | O_CLOEXEC));
    int rc;
    if (fd < 0)
        return stat(path, st);
    rc = fstat(fd, st);
    (void)close(fd);
    return rc;
}

/* `path` made absolute into buf (PATH_MAX + 1 bytes): prefixed with the
 * working directory when relative. Symbolic links stay: exec follows them,
 * and a program may look at the name it was run by. */
static bool absolute(const char *path, char *buf)
{
    char cwd[PATH_MAX + 1];
    int n;
    if (path[0] == '/')
        n = snprintf(buf, PATH_MAX + 1, "%s", path);
    else if (getcwd(cwd, sizeof cwd) != NULL)
        n = snprintf(buf, PATH_MAX + 1, "%s/%s", cwd, path);
    else
        return false;
    return n > 0 && n <= PATH_MAX;
}

/* argv0 as an absolute path into buf (PATH_MAX + 1 bytes): as given when
 * it holds a slash, else found in PATH as execvp would. */
static bool resolve_argv0(const char *argv0, char *buf)
{
    const char *dirs, *next;
    char cand[PATH_MAX + 1];
    if (strchr(argv0, '/') != NULL)
        return absolute(argv0, buf);
    dirs = getenv("PATH");
    for (; dirs != NULL && *dirs != '\0'; dirs = next) {
        size_t len;
        next = strchr(dirs, ':');
        len = next ? (size_t)(next - dirs) : strlen(dirs);
        next = next ? next + 1 : dirs + len;
        /* An empty entry is the working directory. */
        if (snprintf(cand, sizeof cand, "%.*s/%s", len ? (int)len : 1,
                     len ? dirs : ".", argv0) >= (int)sizeof cand)
            continue;
        if (access(cand, X_OK) == 0 && absolute(cand, buf))
            return true;
    }
    return false;
}

int mproc__os_spawn_path(const char *argv0, char **path)
{
    char buf[PATH_MAX + 1];
    struct stat self, st;
    const char *exe;
    *path = NULL;
    /* The path the program was run by, if it still names this very file
     * (the program may have been given a false argv[0], or replaced on
     * disk since); else NULL: the system's own name of the file. */
    if (argv0 == NULL || argv0[0] == '\0' || !resolve_argv0(argv0, buf))
        return 0;
#if !defined(MPROC_HAVE_PROC_EXE)
    /* Where argv[0] is the only name of the file, keep its canonical form
     * for locate and resolve (a fork or spawn child calls this too). */
    {
        char canon[PATH_MAX + 1];
        if (exe_argv0 == NULL && realpath(buf, canon) != NULL)
            exe_argv0 = strdup(canon);
    }
#endif
    exe = self_exe_path();
    if (exe == NULL || file_stat(exe, &self) != 0 || file_stat(buf, &st) != 0 ||
        self.st_dev != st.st_dev || self.st_ino != st.st_ino)
        return 0;
    *path = strdup(buf);
    return *path ? 0 : MPROC_ENOMEM;
}

void mproc__os_unsetenv(const char *name)
{
    (void)unsetenv(name);
}

/* ---------------------------------------------------------------------------
 * CPU counts
 */

static FILE *fopen_high(const char *path);

#if defined(MPROC_HAVE_SYSFS_CPU)
/* The CPUs the kernel has online, from its list "0-3,5,7-8". glibc's
 * sysconf(_SC_NPROCESSORS_ONLN) reads this file too; musl's counts the
 * affinity mask instead, so a pinned process would see 1 CPU of 2. */
static int sysfs_online(void)
{
    char buf[4096];
    const char *p = buf;
    long total = 0;
    FILE *f = fopen_high("/sys/devices/system/cpu/online");
    if (f == NULL)
        return 0;
    if (fgets(buf, sizeof buf, f) == NULL) {
        fclose(f);
        return 0;
    }
    fclose(f);
    while (*p >= '0' && *p <= '9') {
        char *end;
        long lo = strtol(p, &end, 10), hi = lo;
        if (*end == '-')
            hi = strtol(end + 1, &end, 10);
        if (hi < lo || hi - lo > 1L << 20)
            return 0;
        total += hi - lo + 1;
        if (*end != ',')
            break;
        p = end + 1;
    }
    return total > INT_MAX ? INT_MAX : (int)total;
}
#endif

int mproc__os_cpu_count(void)
{
    long n = 0;
#if defined(MPROC_HAVE_SYSFS_CPU)
    n = sysfs_online();
#elif defined(MPROC_HAVE_SYSCTLBYNAME)
    {
        /* macOS: the active CPUs; the BSDs: hw.ncpu. */
        int v = 0;
        size_t len = sizeof v;
        if (sysctlbyname("hw.activecpu", &v, &len, NULL, 0) == 0 ||
            (len = sizeof v, sysctlbyname("hw.ncpu", &v, &len, NULL, 0) == 0))
            n = v;
    }
#endif
    if (n < 1)
        n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (n > INT_MAX ? INT_MAX : (int)n);
}

/* CPUs allowed by a quota "quota period" (cgroup v2 cpu.max, or the v1
 * pair), rounded up; 0 when unlimited or unknown. */
static int quota_cpus(long long quota, long long period)
{
    long long n;
    if (quota <= 0 || period <= 0)
        return 0;
    n = (quota + period - 1) / period;
    return n < 1 ? 1 : (n > INT_MAX ? INT_MAX : (int)n);
}

/* fopen(path, "re"), but never on 0-2 (posix.h): another thread may fork
 * while the file is open. */
static FILE *fopen_high(const char *path)
{
    int fd = mproc__posix_fd_high(open(path, O_RDONLY | O_CLOEXEC));
    FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
    if (f == NULL && fd >= 0)
        (void)close(fd);
    return f;
}

static int read_line(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen_high(path);
    if (f == NULL)
        return -1;
    if (fgets(buf, (int)cap, f) == NULL) {
        fclose(f);
        return -1;
    }
    fclose(f);
    return 0;
}

/* The smallest cgroup CPU limit on the way from this process's cgroup up to
 * the root; 0 when there is none. */
static int cgroup_cpus(void)
{
#if !defined(MPROC_HAVE_CGROUP)
    return 0;
#else
    char line[4096], path[4200], val[128];
    char v1[4096] = "";
    char v2[4096] = "";
    int best = 0;
    FILE *f = fopen_high("/proc/self/cgroup");
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof line, f) != NULL) {
        char *nl = strchr(line, '\n');
        char *c1, *c2;
        if (nl)
            *nl = '\0';
        c1 = strchr(line, ':');
        c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (c2 == NULL)
            continue;
        if (strncmp(line, "0::", 3) == 0) {
            snprintf(v2, sizeof v2, "%s", c2 + 1);
        } else {
            /* v1: a hierarchy whose controller list holds "cpu". */
            char ctl[512];
            char *tok, *save = NULL;
            size_t len = (size_t)(c2 - c1 - 1);
            if (len >= sizeof ctl)
                continue;
            memcpy(ctl, c1 + 1, len);
            ctl[len] = '\0';
            for (tok = strtok_r(ctl, ",", &save); tok;
                 tok = strtok_r(NULL, ",", &save))
                if (strcmp(tok, "cpu") == 0)
                    snprintf(v1, sizeof v1, "%s", c2 + 1);
        }
    }
    fclose(f);

    if (v2[0] != '\0') {
        for (;;) {
            char *slash;
            snprintf(path, sizeof path, "/sys/fs/cgroup%s/cpu.max",
                     strcmp(v2, "/") == 0 ? "" : v2);
            /* "max 100000" (no limit) or "<quota> <period>". */
            if (read_line(path, val, sizeof val) == 0 &&
                strncmp(val, "max", 3) != 0) {
                char *end = NULL;
                long long quota = strtoll(val, &end, 10);
                long long period = end ? strtoll(end, NULL, 10) : 0;
                int n = quota_cpus(quota, period);
                if (n > 0 && (best == 0 || n < best))
                    best = n;
            }
            slash = strrchr(v2, '/');
            if (slash == NULL || slash == v2)
                break;
            *slash = '\0';
        }
    }
    if (v1[0] != '\0') {
        static const char *const dirs[] = {"/sys/fs/cgroup/cpu,cpuacct",
                                           "/sys/fs/cgroup/cpu"};
        size_t i;
        for (i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
            long long quota = 0, period = 0;
            const char *rel = strcmp(v1, "/") == 0 ? "" : v1;
            snprintf(path, sizeof path, "%s%s/cpu.cfs_quota_us", dirs[i], rel);
            if (read_line(path, val, sizeof val) != 0)
                continue;
            quota = strtoll(val, NULL, 10);
            snprintf(path, sizeof path, "%s%s/cpu.cfs_period_us", dirs[i], rel);
            if (read_line(path, val, sizeof val) != 0)
                continue;
            period = strtoll(val, NULL, 10);
            {
                int n = quota_cpus(quota, period);
                if (n > 0 && (best == 0 || n < best))
                    best = n;
            }
            break;
        }
    }
    return best;
#endif
}

int mproc__os_cpu_count_usable(void)
{
    int n = 0, q;
#if defined(MPROC_HAVE_SCHED_AFFINITY)
    /* The mask may be larger than cpu_set_t on big machines: grow it. */
    size_t ncpu = 1024;
    for (;;) {
        cpu_set_t *set = CPU_ALLOC(ncpu);
        size_t sz = CPU_ALLOC_SIZE(ncpu);
        if (set == NULL)
            break;
        if (sched_getaffinity(0, sz, set) == 0) {
            n = CPU_COUNT_S(sz, set);
            CPU_FREE(set);
            break;
        }
        CPU_FREE(set);
        if (errno != EINVAL || ncpu > (1u << 20))
            break;
        ncpu *= 2;
    }
#elif defined(MPROC_HAVE_CPUSET_AFFINITY)
    {
        /* FreeBSD: this process's cpuset (cpuset_getaffinity(2)). */
        cpuset_t set;
        CPU_ZERO(&set);
        if (cpuset_getaffinity(CPU_LEVEL_WHICH, CPU_WHICH_PID, -1, sizeof set,
                               &set) == 0)
            n = CPU_COUNT(&set);
    }
#endif
    /* No affinity (macOS has none to read): every online CPU. */
    if (n <= 0)
        n = mproc__os_cpu_count();
    q = cgroup_cpus();
    if (q > 0 && q < n)
        n = q;
    return n;
}

/* ---------------------------------------------------------------------------
 * Locate and resolve
 *
 * The module string is opaque to common code: "dev:ino:size:mtime_ns:path",
 * where path is the module's name in the dynamic linker's list (empty for
 * the main program). The identity fields let the child check that it would
 * jump into the same file, not merely one with the same name. Offsets are
 * from the module's load bias (dlpi_addr, link_map l_addr), which both
 * processes compute the same way, and so equal the link-time address of
 * the function: the value of its symbol.
 *
 * The child trusts the frame only because its parent sent it (see "The
 * bootstrap's checks" below), and still takes nothing on faith: it never
 * loads a module (a library's constructors would run before any check),
 * and it jumps only to an address that it can see is where a function
 * begins. The module is the one whose loaded segments hold the address
 * (dl_iterate_phdr; the first module it lists is the main program, whose
 * name the C libraries give differently, so it is named "" here); the entry
 * check reads the module's symbol tables (.symtab and .dynsym) from its
 * file as data, every offset checked against the file: a function symbol
 * must begin at the offset, and a fragment that the compiler split off a
 * function ("name.cold") is not an entry. glibc's dladdr1 answers for
 * exported functions first, without reading the file. What no table knows
 * (a static function of a stripped program) is refused. Unwind tables
 * (.eh_frame_hdr) were the other candidate, present even when stripped,
 * but they list split fragments as if they were functions, with no name
 * to tell them apart.
 *
 * A fully static program works the same way (dl_iterate_phdr lists it;
 * dladdr knows nothing there, which is why the module is not found with
 * it), provided its symbol table was not stripped: a stripped static
 * program's targets are refused with MPROC_ERESOLVE.
 *
 * macOS has no dl_iterate_phdr: the dyld image list (image 0 is the main
 * program) and the Mach-O segments give the module and the slide, and
 * dladdr, which reads the image's symbol table, the entry check. That
 * branch has not run (no macOS here).
 */

static int file_identity_fd(int fd, char *buf, size_t cap, struct stat *st)
{
    long long mtime_ns;
    if (fstat(fd, st) != 0)
        return MPROC_ERESOLVE;
#if defined(MPROC_SYS_ST_MTIM)
    mtime_ns = (long long)st->st_mtim.tv_sec * 1000000000LL +
               (long long)st->st_mtim.tv_nsec;
#elif defined(MPROC_SYS_ST_MTIMESPEC)
    mtime_ns = (long long)st->st_mtimespec.tv_sec * 1000000000LL +
               (long long)st->st_mtimespec.tv_nsec;
#else
    mtime_ns = (long long)st->st_mtime * 1000000000LL;
#endif
    snprintf(buf, cap, "%llu:%llu:%lld:%lld", (unsigned long long)st->st_dev,
             (unsigned long long)st->st_ino, (long long)st->st_size, mtime_ns);
    return 0;
}

static int file_identity(const char *path, char *buf, size_t cap)
{
    struct stat st;
    int rc;
    int fd = mproc__posix_fd_high(open(path, O_RDONLY | O_CLOEXEC));
    if (fd < 0)
        return MPROC_ERESOLVE;
    rc = file_identity_fd(fd, buf, cap, &st);
    close(fd);
    return rc;
}

/* A mapped module: by address (locate) or by name (resolve). `name` ""
 * is the main program. */
typedef struct module_find {
    uintptr_t addr;   /* locate: the address to find */
    const char *name; /* resolve: the name to find; locate: the result */
    uint64_t offset;  /* resolve: the offset to check for code */
    uintptr_t base;   /* the load bias */
    bool found;
    bool in_code;
    bool first;
} module_find;

#if defined(MPROC_HAVE_DL_ITERATE_PHDR)

/* dl_iterate_phdr callback: the module whose loaded segments hold
 * m->addr (locate) or the one named m->name (resolve), and whether the
 * offset lies in one of its executable segments. */
static int find_module(struct dl_phdr_info *info, size_t size, void *data)
{
    module_find *m = data;
    const char *name = info->dlpi_name != NULL ? info->dlpi_name : "";
    bool main_program = m->first;
    ElfW(Half) i;
    uint64_t off;

    (void)size;
    m->first = false;
    if (main_program)
        name = "";
    if (m->addr != 0) {
        bool hit = false;
        off = (uint64_t)(m->addr - (uintptr_t)info->dlpi_addr);
        for (i = 0; i < info->dlpi_phnum && !hit; i++) {
            const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
            hit = ph->p_type == PT_LOAD && m->addr >= info->dlpi_addr &&
                  off >= ph->p_vaddr && off - ph->p_vaddr < ph->p_memsz;
        }
        if (!hit)
            return 0;
        m->name = name;
    } else {
        if (strcmp(name, m->name) != 0)
            return 0;
        off = m->offset;
    }
    m->found = true;
    m->base = (uintptr_t)info->dlpi_addr;
    for (i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X) != 0 &&
            off >= ph->p_vaddr && off - ph->p_vaddr < ph->p_memsz)
            m->in_code = true;
    }
    return 1; /* the first match is the one */
}

static void modules_search(module_find *m)
{
    m->first = true;
    (void)dl_iterate_phdr(find_module, m);
}

#if defined(MPROC_HAVE_DLADDR1)
/* `addr` is where an exported function begins (glibc). */
static bool dynamic_entry(void *addr)
{
    Dl_info info;
    void *extra = NULL;
    const ElfW(Sym) * sym;
    if (dladdr1(addr, &info, &extra, RTLD_DL_SYMENT) == 0 || extra == NULL)
        return false;
    sym = extra;
    return info.dli_saddr == addr && ELF64_ST_TYPE(sym->st_info) == STT_FUNC;
}
#else
static bool dynamic_entry(void *addr)
{
    (void)addr;
    return false; /* the file's .dynsym answers */
}
#endif

/* `n` bytes at `off` lie inside a file of `size` bytes. */
static bool in_file(uint64_t off, uint64_t n, uint64_t size)
{
    return off <= size && n <= size - off;
}

/* A function symbol of value `value` in the symbol tables (.symtab,
 * .dynsym) of the ELF image `f` (`size` bytes, the file read as data:
 * every offset and count is checked against the file before use). */
static bool symtab_entry(const unsigned char *f, uint64_t size, uint64_t value)
{
    const ElfW(Ehdr) *eh = (const ElfW(Ehdr) *)(const void *)f;
    const ElfW(Shdr) * sh;
    ElfW(Half) i;

    if (size < sizeof *eh || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 ||
        eh->e_ident[EI_CLASS] !=
            (sizeof(void *) == 8 ? ELFCLASS64 : ELFCLASS32) ||
        eh->e_shentsize != sizeof *sh ||
        !in_file(eh->e_shoff, (uint64_t)eh->e_shnum * sizeof *sh, size) ||
        eh->e_shoff % sizeof(void *) != 0)
        return false;
    sh = (const ElfW(Shdr) *)(const void *)(f + eh->e_shoff);
    for (i = 0; i < eh->e_shnum; i++) {
        const ElfW(Shdr) *st = &sh[i], *ss;
        const ElfW(Sym) * sym;
        const char *names;
        uint64_t k, count;

        if ((st->sh_type != SHT_SYMTAB && st->sh_type != SHT_DYNSYM) ||
            st->sh_entsize != sizeof *sym || st->sh_link >= eh->e_shnum ||
            !in_file(st->sh_offset, st->sh_size, size) ||
            st->sh_offset % sizeof(void *) != 0)
            continue;
        ss = &sh[st->sh_link];
        if (ss->sh_type != SHT_STRTAB || ss->sh_size == 0 ||
            !in_file(ss->sh_offset, ss->sh_size, size))
            continue;
        sym = (const ElfW(Sym) *)(const void *)(f + st->sh_offset);
        names = (const char *)f + ss->sh_offset;
        count = st->sh_size / sizeof *sym;
        for (k = 0; k < count; k++) {
            const char *name;
            size_t left;
            /* ELF32_ST_TYPE and ELF64_ST_TYPE are the same low nibble. */
            if (sym[k].st_value != value ||
                ELF64_ST_TYPE(sym[k].st_info) != STT_FUNC ||
                sym[k].st_shndx == SHN_UNDEF || sym[k].st_name >= ss->sh_size)
                continue;
            name = names + sym[k].st_name;
            left = (size_t)(ss->sh_size - sym[k].st_name);
            /* The table's last string must end inside it. */
            if (memchr(name, '\0', left) == NULL)
                continue;
            if (strstr(name, ".cold") == NULL)
                return true;
        }
    }
    return false;
}

/* The file behind `fd` (already checked to be the module) has a function
 * symbol at `value`. */
static bool file_entry(int fd, const struct stat *st, uint64_t value,
                       void *addr)
{
    void *map;
    bool ok;
    (void)addr;
    if (st->st_size <= 0 || (uint64_t)st->st_size > (uint64_t)SIZE_MAX)
        return false;
    map = mmap(NULL, (size_t)st->st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED)
        return false;
    ok = symtab_entry(map, (uint64_t)st->st_size, value);
    munmap(map, (size_t)st->st_size);
    return ok;
}

#else /* macOS: the dyld image list */

/* The image that holds m->addr (locate) or is named m->name (resolve):
 * its slide, and whether the offset (an address before the slide) lies
 * in an executable segment. */
static void modules_search(module_find *m)
{
    uint32_t n = _dyld_image_count(), i;
    for (i = 0; i < n; i++) {
        const struct mach_header_64 *h =
            (const struct mach_header_64 *)(const void *)_dyld_get_image_header(
                i);
        intptr_t slide = _dyld_get_image_vmaddr_slide(i);
        const char *name = i == 0 ? "" : _dyld_get_image_name(i);
        const unsigned char *lc;
        uint32_t k;
        bool hit = false, code = false;
        uint64_t off;
        if (h == NULL || h->magic != MH_MAGIC_64 || name == NULL)
            continue;
        if (m->addr == 0 && strcmp(name, m->name) != 0)
            continue;
        off = m->addr != 0 ? (uint64_t)(m->addr - (uintptr_t)slide) : m->offset;
        lc = (const unsigned char *)(h + 1);
        for (k = 0; k < h->ncmds; k++) {
            const struct load_command *c =
                (const struct load_command *)(const void *)lc;
            if (c->cmd == LC_SEGMENT_64) {
                const struct segment_command_64 *sg =
                    (const struct segment_command_64 *)(const void *)c;
                if (off >= sg->vmaddr && off - sg->vmaddr < sg->vmsize) {
                    hit = true;
                    code = (sg->initprot & VM_PROT_EXECUTE) != 0;
                }
            }
            lc += c->cmdsize;
        }
        if (m->addr != 0 && !hit)
            continue;
        m->name = name;
        m->found = true;
        m->in_code = code;
        m->base = (uintptr_t)slide;
        return;
    }
}

static bool dynamic_entry(void *addr)
{
    Dl_info info;
    return dladdr(addr, &info) != 0 && info.dli_saddr == addr;
}

static bool file_entry(int fd, const struct stat *st, uint64_t value,
                       void *addr)
{
    (void)fd;
    (void)st;
    (void)value;
    (void)addr;
    return false; /* dladdr has read the symbol table already */
}

#endif

/* The path to open for module `name` ("" is the main program). */
static const char *module_path(const char *name)
{
    return name[0] != '\0' ? name : self_exe_path();
}

int mproc__os_locate(const void *fn, char **module, uint64_t *offset)
{
    char id[128];
    const char *path;
    module_find m;
    size_t need;
    int rc;

    if (fn == NULL || module == NULL || offset == NULL)
        return MPROC_EINVAL;
    memset(&m, 0, sizeof m);
    m.addr = (uintptr_t)fn;
    modules_search(&m);
    if (!m.found || m.name == NULL)
        return MPROC_ERESOLVE;
    path = module_path(m.name);
    if (path == NULL)
        return MPROC_ERESOLVE;
    rc = file_identity(path, id, sizeof id);
    if (rc != 0)
        return rc;
    need = strlen(id) + 1 + strlen(m.name) + 1;
    *module = malloc(need);
    if (*module == NULL)
        return MPROC_ENOMEM;
    snprintf(*module, need, "%s:%s", id, m.name);
    *offset = (uint64_t)(m.addr - m.base);
    return 0;
}

int mproc__os_resolve(const char *module, uint64_t offset, void **fn)
{
    char id[128];
    const char *path = module, *file;
    module_find m;
    struct stat st;
    void *addr;
    int colons = 0;
    size_t idlen;
    int fd, rc = MPROC_ERESOLVE;

    if (module == NULL || fn == NULL)
        return MPROC_ERESOLVE;
    while (*path && colons < 4)
        if (*path++ == ':')
            colons++;
    if (colons < 4)
        return MPROC_ERESOLVE;
    idlen = (size_t)(path - module - 1);
    /* Only a module this process has mapped already. */
    memset(&m, 0, sizeof m);
    m.name = path;
    m.offset = offset;
    modules_search(&m);
    if (!m.found || !m.in_code)
        return MPROC_ERESOLVE;
    /* The same file the parent meant. */
    file = module_path(path);
    if (file == NULL)
        return MPROC_ERESOLVE;
    fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return MPROC_ERESOLVE;
    if (file_identity_fd(fd, id, sizeof id, &st) != 0 || strlen(id) != idlen ||
        memcmp(id, module, idlen) != 0)
        goto out; /* another file under that name */
    addr = (void *)(m.base + (uintptr_t)offset);
    if (!dynamic_entry(addr) && !file_entry(fd, &st, offset, addr))
        goto out;
    *fn = addr;
    rc = 0;
out:
    close(fd);
    return rc;
}

/* ---------------------------------------------------------------------------
 * The bootstrap's checks (docs/security.md)
 *
 * The bootstrap channel is one end of a socketpair that the parent made
 * for this child (mproc__os_chan_pair): the kernel stamps both ends with
 * the credentials of the process that called socketpair(), and nobody can
 * change them later. So "the peer is my parent, as my user" proves that
 * the frame comes from the process that started this one, and not from a
 * grandparent's inherited descriptor, a pipe on standard input or a socket
 * of any other process.
 */

int mproc__os_secure_exec(void)
{
#if defined(MPROC_HAVE_GETAUXVAL)
    unsigned long secure;
    errno = 0;
    secure = getauxval(AT_SECURE);
    if (secure != 0 || errno != 0) /* unknown is refused too */
        return 1;
#elif defined(MPROC_HAVE_ISSETUGID)
    if (issetugid())
        return 1;
#endif
    /* Any system: ids that differ mean a set-id program, or one that
     * changed its ids before mproc_init. */
    return getuid() != geteuid() || getgid() != getegid() ? 1 : 0;
}

int mproc__os_boot_channel(mproc__handle h, int64_t *parent)
{
    struct sockaddr_storage sa;
    socklen_t len = sizeof sa;
    int type = 0, fd;
    pid_t ppid = getppid();
    pid_t peer_pid = -1;
    uid_t peer_uid = (uid_t)-1;

    if (parent == NULL || h < 0 || h > INT_MAX)
        return MPROC_EPERM;
    fd = (int)h;
    memset(&sa, 0, sizeof sa);
    if (getsockname(fd, (struct sockaddr *)&sa, &len) != 0 ||
        sa.ss_family != AF_UNIX)
        return MPROC_EPERM;
    len = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 ||
        type != SOCK_STREAM)
        return MPROC_EPERM;
#if defined(MPROC_SYS_SO_PEERCRED)
    {
        struct ucred cr;
        len = sizeof cr;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0 ||
            len != sizeof cr)
            return MPROC_EPERM;
        peer_pid = cr.pid;
        peer_uid = cr.uid;
    }
#elif defined(MPROC_SYS_LOCAL_PEERPID)
    {
        /* Untested here: macOS has the pid and getpeereid the ids. */
        gid_t g;
        len = sizeof peer_pid;
        if (getsockopt(fd, SOL_LOCAL, LOCAL_PEERPID, &peer_pid, &len) != 0 ||
            getpeereid(fd, &peer_uid, &g) != 0)
            return MPROC_EPERM;
    }
#elif defined(MPROC_SYS_LOCAL_PEERCRED)
    {
        /* Untested here: FreeBSD 13 fills cr_pid. */
        struct xucred xc;
        len = sizeof xc;
        if (getsockopt(fd, SOL_LOCAL, LOCAL_PEERCRED, &xc, &len) != 0 ||
            xc.cr_version != XUCRED_VERSION)
            return MPROC_EPERM;
        peer_pid = xc.cr_pid;
        peer_uid = xc.cr_uid;
    }
#endif
    /* A system without peer credentials refuses every channel. */
    if (peer_pid <= 0 || peer_pid != ppid || peer_uid != getuid())
        return MPROC_EPERM;
    *parent = (int64_t)ppid;
    return 0;
}

/* ---------------------------------------------------------------------------
 * Exit
 */

void mproc__os_exit(int code)
{
    exit_now(code & 0xff);
    _exit(code & 0xff); /* not reached; tells the compiler so */
}
