/*
 * The backend contract: every function an OS backend (src/posix, src/win32)
 * must provide. Both backends implement every declaration here, so that the
 * compiler checks the contract on both; a function a platform cannot honour
 * returns MPROC_ENOSYS (fork on Windows is the only planned one).
 *
 * Rules for backends:
 * - They only talk to the OS. Argument and lifecycle checks, Python
 *   semantics and the value encoding live in src/common.
 * - Every OS error goes through the backend's one translation function,
 *   mproc__os_error(), so that a condition has one MPROC_E* code everywhere.
 * - Every handle they create is close-on-exec / non-inheritable; a child
 *   receives exactly the handles listed in its spawn request.
 * - Timeouts follow the public convention: MPROC_FOREVER (-1), 0, or
 *   positive milliseconds; callers have validated them.
 *
 * Map of this file: handles and errors; processes; byte channels; shared
 * memory; mutexes and semaphores; wait words; thread cancellation; time.
 */
#ifndef MPROC_BACKEND_H
#define MPROC_BACKEND_H

#include "mproc.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------------------
 * Handles and errors
 */

/* A file descriptor on POSIX, a HANDLE on Windows. Inherited handles keep
 * their value in the child on both, so a handle travels as its value. */
typedef intptr_t mproc__handle;
#define MPROC__BADHANDLE ((mproc__handle)-1)

/* Translates a native error (errno on POSIX, GetLastError() on Windows) to
 * an MPROC_E* code. The one place each backend does so. */
int mproc__os_error(long native);

/* Closes a handle; closing MPROC__BADHANDLE is a no-op. */
void mproc__os_handle_close(mproc__handle h);

/* ---------------------------------------------------------------------------
 * Processes
 */

typedef struct mproc__child {
    int64_t pid;
    /* Windows: the process handle; POSIX: a pidfd where the kernel has
     * them, else MPROC__BADHANDLE. */
    mproc__handle handle;
    bool reaped;
    int exitcode; /* Python-style once reaped: code, or -signal */
    /* Backend-private, set by mproc__os_spawn / mproc__os_fork: POSIX
     * serialises reaping and signalling of this child with it (a spin lock
     * per child, so a fork child inherits no global lock state); Windows
     * may ignore it. */
    int lock;
    /* Backend-private; callers initialise it to MPROC__BADHANDLE along
     * with `handle`. POSIX (Linux): mproc__os_spawn / mproc__os_fork set it
     * for a daemon child to its lifeline, the write end of a pipe that only
     * this process holds and whose end-of-file kills the child (so the
     * child dies with this process, whichever thread started it);
     * mproc__os_child_release closes it. Windows leaves it alone (a job
     * object does that job). */
    mproc__handle lifeline;
} mproc__child;

/* What a spawned child gets. */
typedef struct mproc__spawn_req {
    const char *exe;         /* UTF-8 path; NULL: this program's executable */
    const char *const *argv; /* argv[0..], NULL-terminated */
    const mproc__handle *inherit; /* exactly these reach the child (plus the
                                     three standard handles) */
    size_t n_inherit;
    bool daemon; /* the child dies with this process, however it ends */
} mproc__spawn_req;

/* Starts a child; an executable that cannot start is MPROC_EEXEC (the
 * backend learns it before returning: a close-on-exec pipe on POSIX,
 * CreateProcessW's result on Windows). */
int mproc__os_spawn(const mproc__spawn_req *req, mproc__child *out);

/* POSIX: fork. In the parent returns 0 with out->pid > 0; in the child
 * returns 0 with out->pid == 0, after closing every descriptor other than
 * the standard three and `keep`, and arranging to die with the parent if
 * `daemon`. Windows: MPROC_ENOSYS. */
int mproc__os_fork(mproc__child *out, const mproc__handle *keep, size_t nkeep,
                   bool daemon);

/* Waits for the child to exit and reaps it: 0 with c->reaped and
 * c->exitcode set, or MPROC_ETIMEDOUT. Exit codes read as on POSIX: a
 * child terminated by mproc__os_signal(MPROC__SIGTERM) reads -15 on every
 * platform, SIGKILL -9. */
int mproc__os_wait(mproc__child *c, int timeout_ms);

#define MPROC__SIGTERM 15
#define MPROC__SIGKILL 9
/* Sends SIGTERM or SIGKILL (Windows: TerminateProcess with a code that
 * mproc__os_wait reads back as -15 / -9). A reaped or exited child is 0. */
int mproc__os_signal(mproc__child *c, int sig);

/* Releases the child's handle (not the process). */
void mproc__os_child_release(mproc__child *c);

int64_t mproc__os_getpid(void);
/* The pid of the parent of this process (0 when unknown). */
int64_t mproc__os_getppid(void);
/* 1 if the process `pid` (this process's parent) still runs, else 0. */
int mproc__os_parent_alive(int64_t pid);

/* This program's executable, malloc'ed UTF-8 path. */
int mproc__os_self_exe(char **path);

int mproc__os_cpu_count(void);
int mproc__os_cpu_count_usable(void);

/* A function as (module path, offset from the module's base): the path is
 * malloc'ed. MPROC_ERESOLVE when the address is in no module. */
int mproc__os_locate(const void *fn, char **module, uint64_t *offset);
/* The inverse in another process: loads the module if needed, checks that
 * it is the same file, and returns the address. MPROC_ERESOLVE on failure. */
int mproc__os_resolve(const char *module, uint64_t offset, void **fn);

/* Ends the process now with `code`, without atexit handlers (stdio is
 * flushed by the caller). */
void mproc__os_exit(int code);

/* ---------------------------------------------------------------------------
 * Byte channels: reliable byte streams between processes (socketpair on
 * POSIX, named pipes on Windows). Framing lives in src/common.
 */

/* duplex: both ends read and write. Else h[0] only reads, h[1] only
 * writes. */
int mproc__os_chan_pair(mproc__handle h[2], bool duplex);
/* Reads up to n > 0 bytes, blocking: the count, 0 at end-of-file, or a
 * negative code. */
int64_t mproc__os_chan_read(mproc__handle h, void *buf, size_t n);
/* Writes all n bytes, blocking: 0, MPROC_EPIPE when the reader has gone
 * (never a SIGPIPE death), or a negative code. */
int mproc__os_chan_write(mproc__handle h, const void *buf, size_t n);
/* Writes all na bytes of a, then all nb bytes of b, as chan_write does
 * (same errors, never a SIGPIPE death): a frame header and its payload
 * without copying them together. The two parts may reach the channel in
 * more than one operation, so the bytes of two writers using one handle at
 * once may interleave (an end has one user at a time). */
int mproc__os_chan_writev(mproc__handle h, const void *a, size_t na,
                          const void *b, size_t nb);
/* 1 when a read would not block (data or end-of-file), 0 after the timeout,
 * or a negative code. */
int mproc__os_chan_poll(mproc__handle h, int timeout_ms);

/* Non-blocking forms, for a channel that several processes read or write at
 * once (a queue's doorbell), where a poll that said "readable" may be
 * stale by the time the read runs. read_nowait: the count read, 0 when
 * nothing is there right now (or at end-of-file), never blocking.
 * write_nowait: the count written (0 when the channel is full right now),
 * MPROC_EPIPE when the reader has gone, never blocking. */
int64_t mproc__os_chan_read_nowait(mproc__handle h, void *buf, size_t n);
int64_t mproc__os_chan_write_nowait(mproc__handle h, const void *buf, size_t n);

/* Waits until one of `n` handles is ready: channels are ready when
 * readable, process handles (mproc__child.handle) when the process has
 * exited. Sets ready[i]; returns how many are ready (0 on timeout). */
int mproc__os_wait_many(const mproc__handle *h, const bool *is_process,
                        size_t n, int timeout_ms, bool *ready);

/* ---------------------------------------------------------------------------
 * Shared memory: anonymous, passed to children by handle, gone when the last
 * process that maps it has ended (no name left behind).
 */

int mproc__os_shm_create(size_t size, mproc__handle *h, void **addr);
int mproc__os_shm_map(mproc__handle h, size_t size, void **addr);
void mproc__os_shm_unmap(void *addr, size_t size);

/* ---------------------------------------------------------------------------
 * Mutexes and semaphores between processes.
 *
 * Each object is a block of shared memory the backend may use
 * (MPROC__OS_MUTEX_SIZE / MPROC__OS_SEM_SIZE bytes, 8-byte aligned, zeroed,
 * in a segment the caller shares with every process that uses the object)
 * plus one handle (POSIX: unused, MPROC__BADHANDLE; Windows: a mutex or
 * semaphore handle, inheritable only through a spawn request). `open` makes
 * the object usable in a child that received the memory and the handle.
 * `destroy` releases this process's part (Windows: closes the handle; POSIX:
 * nothing, the memory goes with the segment); other processes may still use
 * the object.
 *
 * Everything else (recursion, Condition, Event, Barrier) is built in
 * src/common from the mutex, the semaphore and the condition variable
 * below, so a backend provides exactly these three.
 */

#define MPROC__OS_MUTEX_SIZE 64
#define MPROC__OS_SEM_SIZE 128

/* An id of the calling thread, unique among the live threads of every
 * process of the machine, never 0 (Linux: the kernel thread id; Windows:
 * GetCurrentThreadId()). Cheap: the common code calls it on every RLock and
 * Condition operation to track the owner. */
int64_t mproc__os_thread_id(void);

/* A mutex owned by one thread. It is not recursive: the owner thread that
 * locks it again waits like anyone else (MPROC_EBUSY at timeout 0,
 * MPROC_ETIMEDOUT, or forever), as Python's Lock does; a Windows mutex
 * handle is recursive by nature, so that backend keeps the owner in `mem`
 * to refuse it. When the owner dies (process or thread) holding it, the next
 * lock returns MPROC_EOWNERDEAD with the mutex held and usable (POSIX: robust
 * mutex made consistent; Windows: WAIT_ABANDONED). */
int mproc__os_mutex_init(void *mem, mproc__handle *h);
int mproc__os_mutex_open(void *mem, mproc__handle h);
/* 0, MPROC_EOWNERDEAD (acquired), MPROC_EBUSY (timeout 0), ETIMEDOUT. */
int mproc__os_mutex_lock(void *mem, mproc__handle h, int timeout_ms);
/* 0, or MPROC_ENOTOWNER when the calling thread does not hold it. */
int mproc__os_mutex_unlock(void *mem, mproc__handle h);
void mproc__os_mutex_destroy(void *mem, mproc__handle h);

/* A counting semaphore. max 0: unbounded (up to the platform's limit,
 * at least INT32_MAX); max > 0: a post that would take the count past max
 * posts nothing and returns MPROC_ERANGE, decided atomically (Windows:
 * ReleaseSemaphore's maximum; POSIX: posts serialised by a guard). MPROC_EINVAL
 * when initial > max > 0. */
int mproc__os_sem_init(void *mem, mproc__handle *h, unsigned initial,
                       unsigned max);
int mproc__os_sem_open(void *mem, mproc__handle h);
/* 0, MPROC_EBUSY (timeout 0), ETIMEDOUT. */
int mproc__os_sem_wait(void *mem, mproc__handle h, int timeout_ms);
/* Adds n >= 1 at once (all or nothing). */
int mproc__os_sem_post(void *mem, mproc__handle h, unsigned n);
/* The current count, or a negative code (Windows: NtQuerySemaphore). */
int64_t mproc__os_sem_value(void *mem, mproc__handle h);
void mproc__os_sem_destroy(void *mem, mproc__handle h);

/* A condition variable used with one mutex of this section. A backend may
 * need several handles for it (Windows: semaphores), so it takes an array
 * of MPROC__OS_COND_HANDLES; unused ones are MPROC__BADHANDLE (POSIX uses
 * none: a futex word and counts on Linux, a process-shared pthread_cond_t
 * elsewhere, live in `mem`).
 *
 * wait: called with the mutex held by the calling thread; releases it while
 * waiting and returns with it held again: 0 when woken (spurious wake-ups
 * are allowed: callers re-check their predicate), MPROC_ETIMEDOUT, or
 * MPROC_EOWNERDEAD (woken; the mutex was re-acquired after its owner died).
 * Timeout 0 returns MPROC_ETIMEDOUT at once without releasing the mutex.
 * signal (wake up to n waiters) and broadcast are called with the same
 * mutex held, so a backend may keep its waiter counts in `mem` under it. A
 * waiter that dies while waiting may swallow one wake-up; it must not block
 * the signaller forever. */
#define MPROC__OS_COND_SIZE 64
#define MPROC__OS_COND_HANDLES 3

int mproc__os_cond_init(void *mem, mproc__handle *h);
int mproc__os_cond_open(void *mem, const mproc__handle *h);
int mproc__os_cond_wait(void *mem, const mproc__handle *h, void *mutex_mem,
                        mproc__handle mutex_h, int timeout_ms);
int mproc__os_cond_signal(void *mem, const mproc__handle *h, unsigned n);
int mproc__os_cond_broadcast(void *mem, const mproc__handle *h);
void mproc__os_cond_destroy(void *mem, const mproc__handle *h);

/* ---------------------------------------------------------------------------
 * Wait words (queue.c): futex-like waiting on a 32-bit word in shared memory.
 *
 * A word is MPROC__OS_WORD_SIZE bytes of shared memory, 8-byte aligned,
 * whose first 4 bytes are a uint32_t that common code changes with C11
 * atomics (the backend may use the rest), plus one handle (POSIX: unused,
 * MPROC__BADHANDLE; Windows: a semaphore handle the processes share,
 * exported with the object that holds the word). Callers always loop and
 * re-check their condition: a wait may return early.
 *
 * Windows mapping (WaitOnAddress does not work across processes): the rest
 * of the word holds a waiter count; word_wait increments it, re-reads the
 * value (returns 0 at once if it differs from `expected`), waits on the
 * semaphore, and decrements it; word_wake releases the semaphore
 * min(n, waiters) times. A stale release only makes a later wait return
 * early, which callers tolerate.
 */

#define MPROC__OS_WORD_SIZE 16

int mproc__os_word_init(void *word, mproc__handle *h);
/* Makes the word usable in a process that received its memory and handle
 * (POSIX: nothing to do). */
int mproc__os_word_open(void *word, mproc__handle h);
/* Sleeps while the word holds `expected`, at most timeout_ms: 0 when woken,
 * when the value differs, or early; MPROC_ETIMEDOUT after the timeout. */
int mproc__os_word_wait(void *word, uint32_t expected, mproc__handle h,
                        int timeout_ms);
/* Wakes up to n waiters of the word (UINT32_MAX: all of them). */
int mproc__os_word_wake(void *word, mproc__handle h, uint32_t n);
void mproc__os_word_destroy(void *word, mproc__handle h);

/* This process's id as a non-zero 32-bit owner tag: cheap (no system call
 * on the hot path; POSIX caches getpid() and refreshes it in a fork child).
 */
uint32_t mproc__os_self_tag(void);
/* Gives the rest of this thread's time slice to another runnable thread
 * (sched_yield, SwitchToThread): a short wait for a lock holder or a peer
 * that may be preempted on a machine with fewer cores than processes. */
void mproc__os_yield(void);
/* 1 while the process with that tag (pid) runs; 0 once it has ended (a
 * zombie has ended); never a false 0 for a running process. */
int mproc__os_tag_alive(uint32_t tag);

/* ---------------------------------------------------------------------------
 * Thread cancellation (POSIX threads; Windows has no cancellation that can
 * act inside the library, so these are no-ops there).
 *
 * Code that holds a lock across work that must not stop half-way (the
 * queue's side locks) calls no cancellation point while it holds it: its
 * slow paths run between mproc__os_cancel_block and mproc__os_cancel_unblock,
 * and it offers cancellation explicitly, with mproc__os_cancel_point, only
 * where it holds nothing.
 */

/* Disables cancellation of the calling thread; returns the previous state
 * for mproc__os_cancel_unblock. Cheap (no system call). */
int mproc__os_cancel_block(void);
void mproc__os_cancel_unblock(int prev);
/* A cancellation point under the thread's current state: when a
 * cancellation is pending and enabled, cleanup(arg) runs (if cleanup is not
 * NULL) and the thread is cancelled; otherwise returns at once. */
void mproc__os_cancel_point(void (*cleanup)(void *), void *arg);

/* ---------------------------------------------------------------------------
 * Time
 */

/* A monotonic clock in milliseconds. */
int64_t mproc__os_now_ms(void);
/* Sleeps at least ms milliseconds. */
void mproc__os_sleep_ms(int ms);

#endif /* MPROC_BACKEND_H */
