/* The POSIX part of the runner: run a test in a child process group with a
 * timeout. Independent of mproc, so that the harness does not rely on the
 * code under test. */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#if defined(__linux__)
#include <sys/mount.h>
#endif
#include <time.h>
#include <unistd.h>

#if defined(__APPLE__)
#include <mach-o/dyld.h>
#endif

extern char **environ; /* NOLINT(readability-redundant-declaration) */

static int self_exe(char *buf, size_t cap)
{
#if defined(__APPLE__)
    uint32_t n = (uint32_t)cap;
    return _NSGetExecutablePath(buf, &n) == 0 ? 0 : -1;
#else
    ssize_t n = readlink("/proc/self/exe", buf, cap - 1);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    return 0;
#endif
}

int th_platform_run(const char *const *args, int timeout_ms, bool *timed_out,
                    bool *crashed, int *status)
{
    return th_platform_run_exe(NULL, args, timeout_ms, timed_out, crashed,
                               status);
}

int th_platform_run_exe(const char *name, const char *const *args,
                        int timeout_ms, bool *timed_out, bool *crashed,
                        int *status)
{
    char exe[4096];
    char *argv[16];
    size_t i, n = 0;
    posix_spawnattr_t attr;
    pid_t pid;
    int st = 0, rc;
    int64_t deadline, now;
    int nap = 1;

    if (self_exe(exe, sizeof exe) != 0)
        return -1;
    if (name != NULL) {
        char *slash = strrchr(exe, '/');
        size_t dir = slash ? (size_t)(slash - exe) + 1 : 0;
        if (dir + strlen(name) + 1 > sizeof exe)
            return -1;
        memcpy(exe + dir, name, strlen(name) + 1);
    }
    argv[n++] = exe;
    for (i = 0; args[i] != NULL && n < 15; i++)
        argv[n++] = (char *)(uintptr_t)args[i];
    argv[n] = NULL;

    /* A process group of its own, so that whatever the test starts can be
     * killed with it and cannot keep CTest's output pipe open. */
    posix_spawnattr_init(&attr);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    rc = posix_spawn(&pid, exe, NULL, &attr, argv, environ);
    posix_spawnattr_destroy(&attr);
    if (rc != 0)
        return -1;

    deadline = th_platform_now_ms() + timeout_ms;
    *timed_out = false;
    for (;;) {
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid)
            break;
        if (w < 0 && errno != EINTR)
            return -1;
        now = th_platform_now_ms();
        if (now >= deadline) {
            *timed_out = true;
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
                ;
            break;
        }
        th_platform_sleep_ms(nap);
        if (nap < 20)
            nap *= 2;
    }
    /* Whatever the test left behind in its group goes too. */
    kill(-pid, SIGKILL);
    if (WIFSIGNALED(st)) {
        *crashed = !*timed_out;
        *status = WTERMSIG(st);
    } else {
        *crashed = false;
        *status = WEXITSTATUS(st);
    }
    return 0;
}

int64_t th_platform_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t th_platform_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t th_platform_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void th_platform_sleep_ms(int ms)
{
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int th_platform_open_handles(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;
    if (d == NULL)
        d = opendir("/dev/fd");
    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

const char *th_platform_name(void)
{
    return "posix";
}

int th_platform_setenv(const char *name, const char *value)
{
    return value != NULL ? setenv(name, value, 1) : unsetenv(name);
}

/* Copies of 0-2 while the test has them closed; -1: was not open. */
static int saved_std[3] = {-1, -1, -1};

int th_platform_std_close(void)
{
    int fd;
    for (fd = 0; fd < 3; fd++) {
        saved_std[fd] = fcntl(fd, F_DUPFD_CLOEXEC, 100);
        (void)close(fd);
    }
    return 0;
}

void th_platform_std_restore(void)
{
    int fd;
    for (fd = 0; fd < 3; fd++) {
        if (saved_std[fd] < 0)
            continue;
        (void)dup2(saved_std[fd], fd);
        (void)close(saved_std[fd]);
        saved_std[fd] = -1;
    }
}

int th_platform_std_open(void)
{
    int fd, n = 0;
    for (fd = 0; fd < 3; fd++)
        if (fcntl(fd, F_GETFD) >= 0)
            n++;
    return n;
}

bool th_platform_is_wine(void)
{
    return false;
}

bool th_platform_is_root(void)
{
    return geteuid() == 0;
}

int th_platform_pin_to_one_cpu(void)
{
#if defined(CPU_SET) && defined(CPU_ZERO) && defined(CPU_ISSET)
    cpu_set_t set;
    size_t i;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return -1;
    for (i = 0; i < (size_t)CPU_SETSIZE; i++)
        if (CPU_ISSET(i, &set)) {
            CPU_ZERO(&set);
            CPU_SET(i, &set);
            return sched_setaffinity(0, sizeof set, &set) == 0 ? 0 : -1;
        }
    return -1;
#else
    return -1;
#endif
}

/* The namespace's first process: a /proc of the namespace's own, in a mount
 * namespace of its own, so that pids read there are the namespace's. */
static int pid_ns_init(int (*fn)(void *), void *arg)
{
    if (unshare(CLONE_NEWNS) == 0 &&
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0)
        (void)mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                    NULL);
    return fn(arg);
}

/* waitpid for one child, as an exit status (128 + signal when killed). */
static int wait_status(pid_t pid)
{
    int st = 0;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    return 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

int th_platform_pid_namespace(int (*fn)(void *), void *arg, const char **why)
{
#if defined(__linux__) && defined(CLONE_NEWPID) && defined(CLONE_NEWNS)
    pid_t mid;
    int rc;
    if (geteuid() != 0) {
        *why = "a pid namespace with chosen pids needs root";
        return -1;
    }
    /* unshare(CLONE_NEWPID) puts the caller's later children in the new
     * namespace, where none can start once its first process has ended:
     * an intermediate child does it, so that the test process (and its
     * sanitizers' helper threads) stay out. It and the first process end
     * with _exit (no sanitizer work at exit in a dying namespace). */
    fflush(stdout);
    fflush(stderr);
    mid = fork();
    if (mid < 0) {
        *why = "fork failed";
        return -1;
    }
    if (mid == 0) {
        pid_t init;
        if (unshare(CLONE_NEWPID) != 0)
            _exit(125);
        init = fork();
        if (init < 0)
            _exit(126);
        if (init == 0) {
            rc = pid_ns_init(fn, arg);
            fflush(stdout);
            fflush(stderr);
            _exit(rc);
        }
        rc = wait_status(init);
        _exit(rc < 0 ? 127 : rc);
    }
    rc = wait_status(mid);
    if (rc == 125) {
        *why = "unshare(CLONE_NEWPID) was refused (no CAP_SYS_ADMIN here)";
        return -1;
    }
    if (rc < 0 || rc == 126 || rc == 127) {
        *why = "could not start the namespace's first process";
        return -1;
    }
    return rc;
#else
    (void)fn;
    (void)arg;
    *why = "this platform has no pid namespaces";
    return -1;
#endif
}

int th_platform_next_pid(int64_t pid)
{
#if defined(__linux__)
    FILE *f = fopen("/proc/sys/kernel/ns_last_pid", "w");
    int ok;
    if (f == NULL)
        return -1;
    ok = fprintf(f, "%lld", (long long)(pid - 1)) > 0;
    ok = fclose(f) == 0 && ok;
    return ok ? 0 : -1;
#else
    (void)pid;
    return -1;
#endif
}
