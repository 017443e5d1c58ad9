/*
 * mproc-bench: shared declarations of the benchmark program.
 *
 * Every measurement ("a round of one implementation") runs in a sandbox: a
 * fresh fork of the benchmark program in its own process group, with a
 * deadline. A case that crashes, hangs or gets an error from mproc is
 * reported as "n/a" with a note instead of ending the whole run, so the
 * harness works while the library is still being written.
 */
#ifndef MPROC_BENCH_H
#define MPROC_BENCH_H

#include <mproc.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BENCH_MAX_METRICS 2

/* What a round reports back to the driver. */
enum bench_status { BENCH_OK = 0, BENCH_NOTIMPL = 1, BENCH_ERROR = 2 };

typedef struct bench_result {
    int status; /* enum bench_status */
    double value[BENCH_MAX_METRICS];
    char note[200];
} bench_result;

typedef void (*bench_fn)(bench_result *r, const void *arg);

typedef struct bench_impl {
    const char *impl; /* "raw", "mproc", "apr", ... */
    bench_fn fn;
    const void *arg;
} bench_impl;

typedef struct bench_def {
    const char *cmd; /* sub-command name */
    int nmetric;
    const char *metric[BENCH_MAX_METRICS]; /* JSON "bench" */
    const char *unit[BENCH_MAX_METRICS];
    const bench_impl *impls;
    size_t nimpls;
    int rounds;       /* full run */
    int rounds_quick; /* --quick */
    int timeout_s;    /* per round */
} bench_def;

/* Global settings, set by main. */
extern bool bench_quick;
extern char bench_exe[4096];  /* absolute path of this program */
extern int bench_cpu[2];      /* two CPUs this process may use */
extern int bench_ncpu_usable; /* how many CPUs this process may use */

/* Picks the full or the --quick count. */
long bench_n(long full, long quick);
/* Monotonic time in seconds. */
double bench_now(void);
/* Pins the calling process to one CPU: -1 with errno on error. */
int bench_set_affinity(int cpu);
/* The same, failing the round on error. */
void bench_pin(int cpu);
/* Sleeps for ms milliseconds. */
void bench_sleep_ms(int ms);

/* End the round without a value: NOTIMPL or ERROR with a note. Used only in
 * the sandbox; never returns. */
_Noreturn void bench_fail(int status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* An errno failure of a system call: ends the round as ERROR. */
_Noreturn void bench_fail_errno(const char *what);
/* An mproc call that returned rc < 0: MPROC_ENOSYS is "not implemented",
 * anything else an error naming the call. */
_Noreturn void bench_fail_mproc(const char *call, int rc);

#define BENCH_MPROC(call)                                                      \
    do {                                                                       \
        int64_t rc_ = (int64_t)(call);                                         \
        if (rc_ < 0)                                                           \
            bench_fail_mproc(#call, (int)rc_);                                 \
    } while (0)

#define BENCH_SYS(call)                                                        \
    do {                                                                       \
        if ((call) < 0)                                                        \
            bench_fail_errno(#call);                                           \
    } while (0)

/* Pure CPU loops (uncontended locks): runs `body` n times as BENCH_BATCHES
 * batches and stores the best batch's time per iteration, in ns, in `out`.
 * The best batch is the one no other process preempted; the rounds' median
 * is taken over these. A macro, not a callback, so that the loop costs no
 * indirect call. */
#define BENCH_BATCHES 10
#define BENCH_BEST_NS(out, n, body)                                            \
    do {                                                                       \
        long bn_ = (n) / BENCH_BATCHES;                                        \
        double best_ = 1e300;                                                  \
        for (int b_ = 0; b_ < BENCH_BATCHES; b_++) {                           \
            double t_ = bench_now();                                           \
            for (long i_ = 0; i_ < bn_; i_++) {                                \
                body;                                                          \
            }                                                                  \
            t_ = bench_now() - t_;                                             \
            if (t_ < best_)                                                    \
                best_ = t_;                                                    \
        }                                                                      \
        (out) = best_ / (double)bn_ * 1e9;                                     \
    } while (0)

/* Starts an mproc child running `target` with `args` under the given start
 * method; fails the round on error. */
mproc_process *bench_mproc_start(mproc_target target, mproc_value *args,
                                 mproc_start_method method);
/* Joins it, checks exit code 0, destroys it. */
void bench_mproc_finish(mproc_process *p);
/* Reaps a raw child and checks exit status 0. */
void bench_waitpid_ok(pid_t pid);

/* Two processes starting a timed loop together: a page shared through
 * fork. bench_race_start waits for both and returns the start time;
 * bench_race_end records loop `who` (0 or 1); bench_race_time is the time
 * from the first start to the last end. */
typedef struct bench_race {
    volatile int ready;
    double start[2], end[2];
} bench_race;
bench_race *bench_race_new(void);
double bench_race_start(bench_race *race);
void bench_race_end(bench_race *race, int who, double t0);
double bench_race_time(const bench_race *race);

/* Bytes I/O over a file descriptor, retrying short transfers and EINTR.
 * 0 on success, -1 on error or end of file. */
int bench_write_all(int fd, const void *buf, size_t len);
int bench_read_all(int fd, void *buf, size_t len);

/* Length-prefixed framing over a stream socket, the raw baseline of a
 * message pipe: one writev per message (4-byte length + payload), a buffered
 * reader that delivers each payload into the caller's buffer. */
typedef struct bench_framer {
    int fd;
    unsigned char *buf;
    size_t cap, start, end;
} bench_framer;
int bench_frame_send(int fd, const void *msg, uint32_t len);
void bench_framer_init(bench_framer *f, int fd, size_t cap);
void bench_framer_free(bench_framer *f);
/* Returns the payload length, or -1 on error, end of file or overflow. */
long bench_frame_recv(bench_framer *f, void *out, size_t cap);

/* The benchmarks of each area. */
extern const bench_def bench_defs_process[];
extern const size_t bench_ndefs_process;
extern const bench_def bench_defs_pipe[];
extern const size_t bench_ndefs_pipe;
extern const bench_def bench_defs_lock[];
extern const size_t bench_ndefs_lock;
extern const bench_def bench_defs_pool[];
extern const size_t bench_ndefs_pool;

/* APR (loaded with dlopen in the sandbox only, so the other cases and
 * spawned children never map it). */
void bench_apr_fork(bench_result *r, const void *arg);
void bench_apr_spawn(bench_result *r, const void *arg);
void bench_apr_lock(bench_result *r, const void *arg);
void bench_apr_lock_contended(bench_result *r, const void *arg);

#endif
