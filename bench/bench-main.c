/*
 * mproc-bench: the driver.
 *
 *   mproc-bench [--quick] [--rounds N] [--list] [BENCH...|all]
 *
 * Prints one JSON object per line on stdout for every (metric,
 * implementation): {"bench":..., "impl":..., "value":..., "unit":...} with
 * the median of the rounds as value, plus "min", "max", "rounds" and
 * "samples" (every round's value, in round order); or
 * "value":null and a "note" when the case could not run. Progress goes to
 * stderr. bench/run.sh turns these lines into the table.
 *
 * Rounds of the implementations are interleaved (round 1 of each, then round
 * 2 of each, ...) so that a slow spell of a shared machine hits every
 * implementation alike; each round runs in a sandbox (see bench.h).
 *
 * The program is also the child that the spawn cases start: main calls
 * mproc_init first, and "child-noop" / "child-idle" are the children of the
 * raw baselines.
 */
#include "bench.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

bool bench_quick = false;
char bench_exe[4096];
int bench_cpu[2] = {0, 0};
int bench_ncpu_usable = 1;

/* The sandbox's end of the result pipe (-1 outside a sandbox). */
static int result_fd = -1;
static bench_result *current_result;

long bench_n(long full, long quick)
{
    return bench_quick ? quick : full;
}

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void bench_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

int bench_set_affinity(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET((size_t)cpu, &set);
    return sched_setaffinity(0, sizeof set, &set);
}

void bench_pin(int cpu)
{
    BENCH_SYS(bench_set_affinity(cpu));
}

static void send_result(void)
{
    if (result_fd >= 0) {
        (void)bench_write_all(result_fd, current_result,
                              sizeof *current_result);
        close(result_fd);
        result_fd = -1;
    }
}

void bench_fail(int status, const char *fmt, ...)
{
    va_list ap;
    current_result->status = status;
    va_start(ap, fmt);
    vsnprintf(current_result->note, sizeof current_result->note, fmt, ap);
    va_end(ap);
    send_result();
    /* exit, not _exit: the library's exit handlers clean up what it made. */
    exit(0);
}

void bench_fail_errno(const char *what)
{
    bench_fail(BENCH_ERROR, "%s: %s", what, strerror(errno));
}

void bench_fail_mproc(const char *call, int rc)
{
    char name[64];
    size_t n = strcspn(call, "(");
    if (n >= sizeof name)
        n = sizeof name - 1;
    memcpy(name, call, n);
    name[n] = '\0';
    if (rc == MPROC_ENOSYS)
        bench_fail(BENCH_NOTIMPL, "not implemented (%s)", name);
    bench_fail(BENCH_ERROR, "%s: %s", name, mproc_err_name(rc));
}

mproc_process *bench_mproc_start(mproc_target target, mproc_value *args,
                                 mproc_start_method method)
{
    mproc_process *p = NULL;
    BENCH_MPROC(mproc_process_create(&p, target, args));
    BENCH_MPROC(mproc_process_set_start_method(p, method));
    BENCH_MPROC(mproc_process_start(p));
    return p;
}

void bench_mproc_finish(mproc_process *p)
{
    int code = -1;
    BENCH_MPROC(mproc_process_join(p, 60000));
    BENCH_MPROC(mproc_process_exitcode(p, &code));
    if (code != 0)
        bench_fail(BENCH_ERROR, "mproc child exit code %d", code);
    mproc_process_destroy(p);
}

void bench_waitpid_ok(pid_t pid)
{
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            bench_fail_errno("waitpid");
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        bench_fail(BENCH_ERROR, "raw child status 0x%x", (unsigned)st);
}

bench_race *bench_race_new(void)
{
    bench_race *race = mmap(NULL, sizeof *race, PROT_READ | PROT_WRITE,
                            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (race == MAP_FAILED)
        bench_fail_errno("mmap");
    return race;
}

double bench_race_start(bench_race *race)
{
    __atomic_add_fetch(&race->ready, 1, __ATOMIC_SEQ_CST);
    while (__atomic_load_n(&race->ready, __ATOMIC_SEQ_CST) < 2)
        sched_yield();
    return bench_now();
}

void bench_race_end(bench_race *race, int who, double t0)
{
    race->start[who] = t0;
    race->end[who] = bench_now();
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

double bench_race_time(const bench_race *race)
{
    /* From the first start to the last end (one clock for all processes):
     * a loop that ran while the other waited for a CPU does not count as
     * parallel work. */
    double s =
        race->start[0] < race->start[1] ? race->start[0] : race->start[1];
    double e = race->end[0] > race->end[1] ? race->end[0] : race->end[1];
    return e - s;
}

int bench_write_all(int fd, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int bench_read_all(int fd, void *buf, size_t len)
{
    unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int bench_frame_send(int fd, const void *msg, uint32_t len)
{
    /* One system call for header and payload, without copying either. */
    struct iovec iov[2] = {{&len, 4}, {(void *)(uintptr_t)msg, len}};
    size_t total = (size_t)len + 4, done = 0;
    while (done < total) {
        ssize_t n = writev(fd, iov, 2);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        done += (size_t)n;
        if (done < total) {
            /* A short write: send what is left of the payload plainly. */
            size_t off = done - 4;
            if (done < 4)
                return -1; /* cannot happen on a stream socket */
            return bench_write_all(fd, (const unsigned char *)msg + off,
                                   len - off);
        }
    }
    return 0;
}

void bench_framer_init(bench_framer *f, int fd, size_t cap)
{
    f->fd = fd;
    f->cap = cap;
    f->start = f->end = 0;
    f->buf = malloc(cap);
    if (!f->buf)
        bench_fail(BENCH_ERROR, "out of memory");
}

void bench_framer_free(bench_framer *f)
{
    free(f->buf);
    f->buf = NULL;
}

/* Reads more into the buffer; -1 on error or end of file. */
static int framer_fill(bench_framer *f)
{
    ssize_t n;
    if (f->start > 0 && f->start == f->end)
        f->start = f->end = 0;
    if (f->end == f->cap) {
        memmove(f->buf, f->buf + f->start, f->end - f->start);
        f->end -= f->start;
        f->start = 0;
    }
    do
        n = read(f->fd, f->buf + f->end, f->cap - f->end);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        return -1;
    f->end += (size_t)n;
    return 0;
}

long bench_frame_recv(bench_framer *f, void *out, size_t cap)
{
    uint32_t len;
    size_t have;
    while (f->end - f->start < 4)
        if (framer_fill(f) < 0)
            return -1;
    memcpy(&len, f->buf + f->start, 4);
    if (len > cap)
        return -1;
    f->start += 4;
    have = f->end - f->start;
    if (have >= len) {
        memcpy(out, f->buf + f->start, len);
        f->start += len;
        return (long)len;
    }
    /* A large payload goes straight into the caller's buffer. */
    memcpy(out, f->buf + f->start, have);
    f->start = f->end = 0;
    if (bench_read_all(f->fd, (unsigned char *)out + have, len - have) < 0)
        return -1;
    return (long)len;
}

/* ------------------------------------------------------------------------
 * Sandboxed rounds
 */

static void run_round(const bench_impl *im, int timeout_s, bench_result *out)
{
    int fds[2];
    pid_t pid;
    struct pollfd pfd;
    int st = 0;
    ssize_t got = 0;

    memset(out, 0, sizeof *out);
    if (pipe(fds) < 0) {
        out->status = BENCH_ERROR;
        snprintf(out->note, sizeof out->note, "pipe: %s", strerror(errno));
        return;
    }
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid < 0) {
        out->status = BENCH_ERROR;
        snprintf(out->note, sizeof out->note, "fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return;
    }
    if (pid == 0) {
        bench_result r;
        close(fds[0]);
        /* Its own process group: whatever it leaves behind dies with it. */
        setpgid(0, 0);
        memset(&r, 0, sizeof r);
        current_result = &r;
        result_fd = fds[1];
        im->fn(&r, im->arg);
        r.status = BENCH_OK;
        send_result();
        exit(0);
    }
    setpgid(pid, pid); /* also here: no race with the first kill */
    close(fds[1]);
    pfd.fd = fds[0];
    pfd.events = POLLIN;
    {
        double deadline = bench_now() + timeout_s;
        int prc = 0;
        while (prc <= 0) {
            double left = deadline - bench_now();
            if (left <= 0)
                break;
            prc = poll(&pfd, 1, (int)(left * 1000) + 1);
            if (prc < 0 && errno != EINTR)
                break;
        }
        if (prc > 0) {
            size_t need = sizeof *out;
            unsigned char *p = (unsigned char *)out;
            while (need > 0) {
                ssize_t n = read(fds[0], p, need);
                if (n < 0 && errno == EINTR)
                    continue;
                if (n <= 0)
                    break;
                p += n;
                need -= (size_t)n;
                got += n;
            }
        }
    }
    close(fds[0]);
    /* Give a finished sandbox a moment to exit on its own (seen without
     * reaping it, so its process group id cannot be reused), then clean up
     * its process group (children of a failed case) and reap it. */
    {
        double until = bench_now() + 5.0;
        siginfo_t info;
        for (;;) {
            memset(&info, 0, sizeof info);
            if (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) <
                    0 &&
                errno != EINTR)
                break;
            if (info.si_pid == pid || got != (ssize_t)sizeof *out ||
                bench_now() >= until)
                break;
            bench_sleep_ms(1);
        }
        kill(-pid, SIGKILL);
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
            ;
    }
    if (got != (ssize_t)sizeof *out) {
        memset(out, 0, sizeof *out);
        out->status = BENCH_ERROR;
        if (WIFSIGNALED(st) && WTERMSIG(st) != SIGKILL)
            snprintf(out->note, sizeof out->note, "crashed (signal %d)",
                     WTERMSIG(st));
        else
            snprintf(out->note, sizeof out->note, "timed out after %d s",
                     timeout_s);
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static void run_def(const bench_def *d, int rounds_override)
{
    int rounds = rounds_override > 0
                     ? rounds_override
                     : (bench_quick ? d->rounds_quick : d->rounds);
    size_t ni = d->nimpls;
    double *samples =
        calloc(ni * (size_t)rounds * BENCH_MAX_METRICS, sizeof(double));
    int *nsamples = calloc(ni, sizeof(int));
    bench_result *failed = calloc(ni, sizeof(bench_result));
    bench_result *last = calloc(ni, sizeof(bench_result));
    if (!samples || !nsamples || !failed || !last) {
        fprintf(stderr, "mproc-bench: out of memory\n");
        exit(2);
    }
    for (int r = 0; r < rounds; r++) {
        for (size_t i = 0; i < ni; i++) {
            bench_result res;
            if (failed[i].status != BENCH_OK)
                continue; /* one failure is enough */
            fprintf(stderr, "  %s %s round %d/%d\n", d->cmd, d->impls[i].impl,
                    r + 1, rounds);
            run_round(&d->impls[i], d->timeout_s, &res);
            if (res.status != BENCH_OK) {
                failed[i] = res;
                fprintf(stderr, "  %s %s: n/a: %s\n", d->cmd, d->impls[i].impl,
                        res.note);
                continue;
            }
            for (int m = 0; m < d->nmetric; m++)
                samples[(i * (size_t)rounds + (size_t)nsamples[i]) *
                            BENCH_MAX_METRICS +
                        (size_t)m] = res.value[m];
            nsamples[i]++;
            last[i] = res;
        }
    }
    for (int m = 0; m < d->nmetric; m++) {
        for (size_t i = 0; i < ni; i++) {
            int n = nsamples[i];
            printf("{\"bench\":");
            json_str(d->metric[m]);
            printf(",\"impl\":");
            json_str(d->impls[i].impl);
            if (failed[i].status != BENCH_OK) {
                printf(",\"value\":null,\"unit\":");
                json_str(d->unit[m]);
                printf(",\"note\":");
                json_str(failed[i].note);
                printf("}\n");
                continue;
            }
            {
                double *v = malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
                double med;
                if (!v)
                    exit(2);
                for (int k = 0; k < n; k++)
                    v[k] = samples[(i * (size_t)rounds + (size_t)k) *
                                       BENCH_MAX_METRICS +
                                   (size_t)m];
                qsort(v, (size_t)n, sizeof(double), cmp_double);
                med = (n % 2) ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
                printf(",\"value\":%.6g,\"unit\":", med);
                json_str(d->unit[m]);
                printf(",\"min\":%.6g,\"max\":%.6g,\"rounds\":%d", v[0],
                       v[n - 1], n);
                /* Every round in round order (the rounds of the cases ran
                 * interleaved): the spread behind the median. */
                printf(",\"samples\":[");
                for (int k = 0; k < n; k++)
                    printf("%s%.6g", k ? "," : "",
                           samples[(i * (size_t)rounds + (size_t)k) *
                                       BENCH_MAX_METRICS +
                                   (size_t)m]);
                printf("]");
                if (last[i].note[0]) {
                    printf(",\"note\":");
                    json_str(last[i].note);
                }
                printf("}\n");
                free(v);
            }
        }
    }
    fflush(stdout);
    free(samples);
    free(nsamples);
    free(failed);
    free(last);
}

typedef struct def_set {
    const bench_def *defs;
    const size_t *n;
} def_set;

static const def_set all_sets[] = {
    {bench_defs_process, &bench_ndefs_process},
    {bench_defs_pipe, &bench_ndefs_pipe},
    {bench_defs_lock, &bench_ndefs_lock},
    {bench_defs_pool, &bench_ndefs_pool},
};
#define NSETS (sizeof all_sets / sizeof all_sets[0])

static void find_cpus(void)
{
    cpu_set_t set;
    int k = 0;
    if (sched_getaffinity(0, sizeof set, &set) < 0)
        return;
    bench_ncpu_usable = CPU_COUNT(&set);
    for (int c = 0; c < CPU_SETSIZE && k < 2; c++)
        if (CPU_ISSET((size_t)c, &set))
            bench_cpu[k++] = c;
    if (k < 2)
        bench_cpu[1] = bench_cpu[0];
}

static void usage(FILE *f)
{
    fprintf(f, "usage: mproc-bench [--quick] [--rounds N] [--list] "
               "[BENCH...|all]\n");
}

int main(int argc, char **argv)
{
    int init_rc = mproc_init(argc, argv);
    int rounds = 0;
    int nsel = 0;
    const char *sel[64];
    ssize_t n;

    /* The children of the raw spawn baselines: the same executable. */
    if (argc == 2 && strcmp(argv[1], "child-noop") == 0)
        return 0;
    if (argc == 2 && strcmp(argv[1], "child-idle") == 0) {
        for (;;)
            pause();
    }
    if (init_rc < 0)
        fprintf(stderr, "mproc-bench: mproc_init: %s\n",
                mproc_err_name(init_rc));

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            bench_quick = true;
        } else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
            rounds = (int)strtol(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--list") == 0) {
            for (size_t s = 0; s < NSETS; s++)
                for (size_t k = 0; k < *all_sets[s].n; k++)
                    printf("%s\n", all_sets[s].defs[k].cmd);
            return 0;
        } else if (strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (argv[i][0] == '-') {
            usage(stderr);
            return 2;
        } else if (nsel < 64) {
            sel[nsel++] = argv[i];
        }
    }

    n = readlink("/proc/self/exe", bench_exe, sizeof bench_exe - 1);
    if (n <= 0) {
        fprintf(stderr, "mproc-bench: cannot find its executable\n");
        return 2;
    }
    bench_exe[n] = '\0';
    find_cpus();
    /* A reader that went away must not kill a raw baseline silently. */
    signal(SIGPIPE, SIG_IGN);

    for (size_t s = 0; s < NSETS; s++) {
        for (size_t k = 0; k < *all_sets[s].n; k++) {
            const bench_def *d = &all_sets[s].defs[k];
            bool want = nsel == 0;
            for (int j = 0; j < nsel; j++)
                if (strcmp(sel[j], "all") == 0 || strcmp(sel[j], d->cmd) == 0)
                    want = true;
            if (!want)
                continue;
            fprintf(stderr, "mproc-bench: %s\n", d->cmd);
            run_def(d, rounds);
        }
    }
    return 0;
}
