/*
 * mproc pool transports: how a component library (mproc_mpi, issue 13)
 * gives the same mproc_pool over another way of reaching workers, without
 * the core linking anything new. Applications do not need this header; it
 * is for libraries that build a pool on their own workers.
 *
 * The pool engine (src/common/pool.c) owns everything a pool means: tasks,
 * chunks, which worker holds which task, results, futures, iterators,
 * stats, callbacks, failure semantics. A transport only moves the engine's
 * messages (opaque bytes) between the engine and worker number w, starts
 * and ends workers, says which task a worker has started, and reports a
 * worker's end. The local transport (processes, pipes, a shared slot per
 * worker) is the core's own, built on these same operations.
 *
 * On the worker side, mproc_pool_worker_serve() is the worker loop: it runs
 * the initializer, then receives task messages, runs the functions and
 * sends results, through the io callbacks the transport gives it.
 *
 * Threads: the engine calls the operations of one transport from one
 * thread at a time (the thread driving the pool), except `wake` and
 * `started`, which any thread may call at any time, also while another is
 * in `wait` (`started` serves the stats snapshot).
 */
#ifndef MPROC_TRANSPORT_H
#define MPROC_TRANSPORT_H

#include "mproc.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mproc_pool_transport {
    void *ctx;
    /* Starts worker w (0 <= w < the pool's workers); also a replacement of
     * an ended worker w. The worker's first message is its hello (sent by
     * mproc_pool_worker_serve). */
    int (*start)(void *ctx, int w);
    /* Sends one message to worker w, blocking until it is handed over:
     * 0, or a negative code (the worker is then treated as ended). */
    int (*send)(void *ctx, int w, const void *msg, size_t len);
    /* Waits until a worker has a message or has ended, or wake was called,
     * at most timeout_ms. Only workers with live[w] are waited on; sets
     * ready[w] for those with something to receive. Returns the number
     * ready (0: timeout or woken). */
    int (*wait)(void *ctx, const bool *live, bool *ready, int n,
                int timeout_ms);
    /* One whole message from worker w without waiting: 1 with *msg (valid
     * until the next recv from w) and *len, 0 when none is complete yet,
     * MPROC_EEOF once the worker has ended (its channel closed), or another
     * negative code (treated as its end). */
    int (*recv)(void *ctx, int w, const void **msg, size_t *len);
    /* Which task worker w has started last: the message sequence number
     * and the item within it, as the worker reported through its io's
     * `started`. MPROC_ENOSYS when the transport cannot tell (the engine
     * then fails the oldest unfinished task of a dead worker, and its
     * stats count the oldest chunk each worker holds as running). */
    int (*started)(void *ctx, int w, uint64_t *seq, uint32_t *item);
    /* Ends worker w now: how 1 terminates it (SIGTERM), 2 kills it. (The
     * engine asks a worker to finish with a message of its own.) */
    int (*stop)(void *ctx, int w, int how);
    /* Reaps an ended worker: 0 with its pid and exit code (-N: signal N),
     * MPROC_ETIMEDOUT while it runs. Afterwards w can be started again. */
    int (*reap)(void *ctx, int w, int timeout_ms, int64_t *pid, int *exitcode);
    /* The pid (or rank, or other id) of worker w. */
    int64_t (*pid)(void *ctx, int w);
    /* Makes a wait in progress return (any thread). */
    void (*wake)(void *ctx);
    /* Appends to buf (*len bytes used of cap) a description of fn that the
     * worker side's `resolve` turns back into the function: 0, or
     * MPROC_ERESOLVE, MPROC_ETOOSMALL when cap is too small. */
    int (*describe)(void *ctx, mproc_task_fn fn, void *buf, size_t cap,
                    size_t *len);
    /* Releases the transport (every worker has been reaped). */
    void (*destroy)(void *ctx);
    /* The most chunks a worker may hold at once (the one it runs and those
     * sent ahead), 1..4; 0: the engine's default (4 while chunks are
     * quick). mproc_mpi asks for 1 or 2 per rank. Other values:
     * mproc_pool_create_transport returns MPROC_EINVAL. */
    int depth;
} mproc_pool_transport;

/* Makes a pool whose workers the transport provides (opt->workers of them,
 * 0 meaning 1; opt->method and opt->initializer are the transport's
 * business: the engine only waits for every worker's hello). The engine
 * owns the transport from here on (destroy is called once, also when create
 * fails). Errors as mproc_pool_create. */
MPROC_API int mproc_pool_create_transport(mproc_pool **out,
                                          const mproc_pool_options *opt,
                                          const mproc_pool_transport *t);

/* The worker side, given by the transport to the worker loop. */
typedef struct mproc_pool_worker_io {
    void *ctx;
    /* Blocks for the next message: 0 with *msg (valid until the next
     * recv) and *len, MPROC_EEOF when the engine has no more (the loop
     * returns 0), or a negative code. */
    int (*recv)(void *ctx, const void **msg, size_t *len);
    int (*send)(void *ctx, const void *msg, size_t len);
    /* Optional: told before each task starts (see the transport's
     * `started`). */
    void (*started)(void *ctx, uint64_t seq, uint32_t item);
    /* Turns a description made by the transport's describe back into the
     * function: 0 or MPROC_ERESOLVE. */
    int (*resolve)(void *ctx, const void *desc, size_t len, mproc_task_fn *fn);
    mproc_target initializer; /* may be NULL */
    const mproc_value *initarg;
    uint64_t maxtasks; /* after this many task messages the loop returns */
    /* Optional: told before each task starts (after `started`), with the
     * task's position in its call's input (mproc_task_status.index), so
     * that a transport whose worker cannot be watched from the engine's
     * side can name the task when its worker dies (mproc_mpi's crash
     * message). */
    void (*running)(void *ctx, int64_t index);
} mproc_pool_worker_io;

/* Runs the worker loop until the engine ends it: the initializer, the
 * hello, then tasks. Returns 0 when told to stop, at end of input or after
 * maxtasks, 1 when the initializer failed (reported in the hello), or a
 * negative code of io. */
MPROC_API int mproc_pool_worker_serve(const mproc_pool_worker_io *io);

#ifdef __cplusplus
}
#endif

#endif /* MPROC_TRANSPORT_H */
