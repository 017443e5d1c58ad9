/**
 * @file mproc.h
 * mproc: a portable multiprocessing runtime for C.
 *
 * The ideas of Python's multiprocessing module (Process, Pipe, Queue, Lock and
 * friends, introspection) as one C API over a POSIX backend (fork,
 * posix_spawn, socketpair, shared memory) and a Win32 backend
 * (CreateProcessW, named pipes, mutex handles).
 *
 * Conventions that hold for every function here:
 *
 * - A function returns 0 (or a non-negative count) on success and a negative
 *   MPROC_E* code on failure. The code for a condition is the same on every
 *   platform. No function prints, exits or aborts on a caller's mistake.
 * - Objects are opaque and allocated by the library: mproc_X_create() makes
 *   one, mproc_X_destroy() releases it and returns NULL, so that
 *   `x = mproc_X_destroy(x);` clears the caller's pointer. Destroying NULL is
 *   a no-op.
 * - Timeouts are in milliseconds: MPROC_FOREVER (-1) waits without limit, 0
 *   does not wait at all, a positive value waits that long for what the
 *   call waits for and then gives up (MPROC_ETIMEDOUT or the call's own
 *   code), never sooner: the time is measured on a monotonic clock with
 *   sub-millisecond resolution, so a timeout of 1 ms waits at least 1 ms
 *   (and a little more on a loaded machine). Any other negative value is
 *   MPROC_EINVAL (but MPROC_BARRIER_DEFAULT, -2, for mproc_barrier_wait).
 * - Strings are UTF-8 on every platform.
 * - Every object may be used from several threads of one process unless its
 *   section says otherwise.
 */
#ifndef MPROC_H
#define MPROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h> /* atexit, for the mproc_init macro */

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------- */
/** @defgroup version Export macro and version
 * @{
 */

/** @def MPROC_API
 * Marks the functions of the library: exported from it and imported by
 * programs. A program linked to the static library defines MPROC_STATIC
 * before it includes this header (required on Windows, where the archive is
 * libmproc_static.a; the CMake target mproc::mproc_static and pkg-config's
 * mproc-static do it). */
#if defined(MPROC_STATIC)
#define MPROC_API
#elif defined(_WIN32)
#if defined(MPROC_BUILDING)
#define MPROC_API __declspec(dllexport)
#else
#define MPROC_API __declspec(dllimport)
#endif
#elif defined(__GNUC__)
#define MPROC_API __attribute__((visibility("default")))
#else
#define MPROC_API
#endif

/** The version of this header: major (the ABI changes with it from 1.0 on). */
#define MPROC_VERSION_MAJOR 0
/** Minor version (before 1.0, the ABI changes with it: SONAME .so.0.MINOR). */
#define MPROC_VERSION_MINOR 1
/** Patch version: same ABI, fixes only. */
#define MPROC_VERSION_PATCH 0
/** The header's version as one number, 0xMMmmpp (mproc_version() gives the
 * library's). */
#define MPROC_VERSION_HEX                                                      \
    ((MPROC_VERSION_MAJOR << 16) | (MPROC_VERSION_MINOR << 8) |                \
     MPROC_VERSION_PATCH)

/** @{ */
/** The version of the library actually linked, as MPROC_VERSION_HEX and as
 * "MAJOR.MINOR.PATCH". */
MPROC_API unsigned mproc_version(void);
MPROC_API const char *mproc_version_string(void);
/** @} */

/* ------------------------------------------------------------------------- */
/** @} @defgroup errors Errors
 *
 * One table: X(NAME, value, message). The values are stable across releases
 * and platforms.
 * @{
 */

/** The error table: X(NAME, value, message) for each code, in order. */
#define MPROC_ERRNO_MAP(X)                                                     \
    X(EINVAL, -1, "invalid argument")                                          \
    X(ENOMEM, -2, "out of memory")                                             \
    X(ESTATE, -3, "operation not valid in the object's current state")         \
    X(ECLOSED, -4, "object is closed")                                         \
    X(ETIMEDOUT, -5, "timed out")                                              \
    X(EBUSY, -6, "resource is busy (non-blocking attempt failed)")             \
    X(EFULL, -7, "queue is full")                                              \
    X(EEMPTY, -8, "queue is empty")                                            \
    X(EEOF, -9, "end of file: the peer closed and no data is left")            \
    X(EPIPE, -10, "the peer has closed its end")                               \
    X(EMSGSIZE, -11, "message larger than the documented maximum")             \
    X(ETOOSMALL, -12, "buffer too small for the message (message kept)")       \
    X(EBADMSG, -13, "malformed message")                                       \
    X(EDIRECTION, -14, "pipe end not open in that direction")                  \
    X(ENOTOWNER, -15, "lock is not held by the caller")                        \
    X(EOWNERDEAD, -16, "acquired; the previous owner died holding it")         \
    X(ERANGE, -17, "value out of range (released too many times?)")            \
    X(EBROKEN, -18, "barrier is broken")                                       \
    X(ENOTEXITED, -19, "process has not exited (or not started) yet")          \
    X(EDAEMON, -20, "a daemon process cannot start children")                  \
    X(ERESOLVE, -21, "target function cannot be found in the child")           \
    X(EEXEC, -22, "child executable could not be started")                     \
    X(ENOSYS, -23, "not supported on this platform")                           \
    X(EMFILE, -24, "too many open files or handles")                           \
    X(EAGAIN, -25, "resource temporarily unavailable (process limit?)")        \
    X(EPERM, -26, "operation not permitted")                                   \
    X(ENOENT, -27, "no such process or object")                                \
    X(EIO, -28, "input/output error")                                          \
    X(ECHILD, -29, "the child process failed during start-up")                 \
    X(EUNKNOWN, -30, "unknown system error")                                   \
    X(ECORRUPT, -31, "shared state is corrupt (written by a faulty peer?)")    \
    X(EBOOTSTRAP, -32, "process not started: the bootstrap is not finished")   \
    X(EFRAMING, -33, "message framing broken: the pipe end was closed")        \
    X(ENOTCHILD, -34, "the process is not a child of the calling process")     \
    X(EWORKER, -35, "a pool worker died running the task")                     \
    X(EEXIST, -36, "an object of that name exists")                            \
    X(ESHUTDOWN, -37, "the queue was shut down")

/** The error codes: MPROC_<NAME> = value, one for each row of
 * MPROC_ERRNO_MAP. Functions return them as int. */
enum mproc_error {
#define MPROC_ERRNO_ENUM_(name, value, msg) MPROC_##name = (value),
    MPROC_ERRNO_MAP(MPROC_ERRNO_ENUM_)
#undef MPROC_ERRNO_ENUM_
};

/** A sentence for an error code; "unknown error" for anything else. Never
 * NULL; the string is static. */
MPROC_API const char *mproc_strerror(int err);
/** The code's name without prefix ("EINVAL"); "UNKNOWN" for anything else. */
MPROC_API const char *mproc_err_name(int err);

/** A lock acquire that returned either of these holds the lock. */
#define MPROC_ACQUIRED(rc) ((rc) == 0 || (rc) == MPROC_EOWNERDEAD)

/** A timeout that waits without limit (every `timeout_ms` argument). */
#define MPROC_FOREVER (-1)

/* ------------------------------------------------------------------------- */
/** @} @defgroup types Opaque types
 * @{
 */

/** A typed value: none, bool, int, float, string, bytes, list or a handle. */
typedef struct mproc_value mproc_value;
/** A process object: a target run in a child process (Process). */
typedef struct mproc_process mproc_process;
/** One end of a Pipe (Python's Connection). */
typedef struct mproc_conn mproc_conn;
/** A Queue or JoinableQueue shared between processes. */
typedef struct mproc_queue mproc_queue;
/** A Lock shared between processes. */
typedef struct mproc_lock mproc_lock;
/** A recursive lock (RLock) shared between processes. */
typedef struct mproc_rlock mproc_rlock;
/** A Semaphore or BoundedSemaphore shared between processes. */
typedef struct mproc_sem mproc_sem;
/** An Event shared between processes. */
typedef struct mproc_event mproc_event;
/** A Condition (with its own recursive lock) shared between processes. */
typedef struct mproc_cond mproc_cond;
/** A Barrier shared between processes. */
typedef struct mproc_barrier mproc_barrier;
/** A block of shared memory. */
typedef struct mproc_shm mproc_shm;
/** A process Pool (multiprocessing.Pool, ProcessPoolExecutor). */
typedef struct mproc_pool mproc_pool;
/** The outcome of a task submitted with mproc_pool_apply_async(). */
typedef struct mproc_future mproc_future;
/** An iterator over a Pool's results (imap, imap_unordered). */
typedef struct mproc_imap mproc_imap;

/* ------------------------------------------------------------------------- */
/** @} @defgroup init Initialisation
 *
 * mproc_init(argc, argv) must be the first statement of main() in every
 * program that may start processes with the spawn method (the default on
 * Windows). In the parent it records the program and returns 0. In a child
 * started by spawn it recognises the bootstrap argument, receives the target
 * and its arguments from the parent, runs the target and exits with its code:
 * it never returns there. It is Python's `if __name__ == '__main__':`.
 *
 * In the parent it also finds the file spawn starts: argv[0] as an absolute
 * path (searched in PATH when it has no slash) if that is this program's
 * own file, else the system's name for it (/proc/self/exe,
 * _NSGetExecutablePath, sysctl KERN_PROC_PATHNAME, GetModuleFileNameW).
 * So a program run under a loader such as valgrind spawns itself, not the
 * loader. Where the system has no name for it, argv[0] is the only one: a
 * program there that never called mproc_init cannot spawn (MPROC_EEXEC
 * from start). It returns MPROC_EINVAL when the
 * environment variable MPROC_START_METHOD holds anything but "fork" or
 * "spawn" (unset or empty: the default), and MPROC_ENOSYS for "fork" where
 * there is no fork (Windows); the rest of its work is done all the same.
 *
 * A spawned child whose main starts a process before mproc_init has run
 * (the missing `if __name__ == '__main__':` of Python) would start a copy of
 * itself doing the same, until the system's process limit. Such a start
 * fails with MPROC_EBOOTSTRAP instead; the parent's start fails with
 * MPROC_EBOOTSTRAP too, and the child is ended (SIGKILL) without running its
 * target. A spawned child knows that it is one before mproc_init through the
 * environment entry MPROC_BOOTSTRAP, which its parent set for it alone and
 * mproc_init removes.
 *
 * mproc_init is a macro: it hands the library the atexit of the calling
 * module, so that the exit-time join of children (Process) runs from the
 * program's own exit(), never from a DLL's detach code (which Windows runs
 * after it stopped the program's other threads, and after _exit).
 * mproc_init_ex is what it expands to; the function mproc_init also exists,
 * for callers that do not use this header (then a program using the DLL on
 * Windows does not join its children at exit).
 *
 * Trust (docs/security.md): as in Python, the process that started the
 * child is trusted and nobody else. The child reads its bootstrap only from
 * a channel that its parent made, running as its user; it refuses to run
 * in a setuid, setgid or otherwise secure-exec program; it calls only a
 * function entry of a module it has already mapped (it never loads one).
 * A refusal ends the child before anything runs, with exit code 71 (the
 * channel or the program refused) or 70 (a bad frame or target; the parent
 * learns why).
 * @{
 */

/** What the mproc_init macro expands to (see above): 0 in the parent; in a
 * spawned child it runs the target and never returns. MPROC_EINVAL for a
 * NULL argv or a bad MPROC_START_METHOD, MPROC_ENOSYS for fork where there
 * is none. */
MPROC_API int mproc_init_ex(int argc, char **argv,
                            int (*register_atexit)(void (*)(void)));
/** The plain function behind the macro, for callers that do not use this
 * header (see above). */
MPROC_API int mproc_init(int argc, char **argv);
/** The first statement of main() (see above): mproc_init_ex with the
 * calling module's atexit. */
#define mproc_init(argc, argv) mproc_init_ex((argc), (argv), atexit)

/** End the calling process with exit code `code` (0..255) after flushing
 * stdio, like Python's sys.exit(n) inside a target. In a child it ends the
 * child as a returning target does: its own daemon children are
 * terminated and the others joined, stdio is flushed, and no atexit
 * handler runs (a fork child would otherwise run its parent's). In the main
 * process it is exit(code). */
MPROC_API void mproc_exit(int code);

/** How a child is started (Python's start methods). */
typedef enum mproc_start_method {
    MPROC_START_DEFAULT = 0, /**< the program-wide default */
    MPROC_START_FORK = 1,    /**< POSIX only: the child copies the parent */
    MPROC_START_SPAWN = 2    /**< a fresh copy of the executable; mproc_init */
} mproc_start_method;

/** @{ */
/** The program-wide default: fork on POSIX, spawn on Windows, unless set
 * here or by the environment variable MPROC_START_METHOD=fork|spawn.
 * MPROC_ENOSYS for fork on Windows. While MPROC_START_METHOD names no
 * method (see mproc_init) and none was set here, a start that uses the
 * default fails with mproc_init's error. A spawned child's default is its
 * parent's. */
MPROC_API int mproc_set_start_method(mproc_start_method method);
MPROC_API mproc_start_method mproc_get_start_method(void);
/** @} */

/** The executable that spawn starts (UTF-8 path, copied), like Python's
 * set_executable(); NULL restores the default, this program's own file. It
 * must be a program that calls mproc_init() and holds the same targets (in
 * practice: this program). One that cannot start makes start fail with
 * MPROC_EEXEC; fork ignores it. */
MPROC_API int mproc_set_executable(const char *path);

/* ------------------------------------------------------------------------- */
/** @} @defgroup values Values
 *
 * One typed value serves as process arguments, Pipe messages and Queue
 * items: none, bool, int (int64), float (double), string (UTF-8, may hold
 * NUL bytes), bytes and lists (nested). In process arguments and pipe
 * messages a value can also be a handle of an mproc object (queue, pipe end,
 * lock, ...), which the child or the receiver gets as a working object of
 * its own (queue items cannot hold handles).
 *
 * Constructors return a new value owned by the caller, or NULL when out of
 * memory (or, for the handle constructors, when the object is NULL). Free a
 * value with mproc_value_free(); a list frees its items.
 * @{
 */

/** The type of a value (mproc_value_type()). */
typedef enum mproc_type {
    MPROC_TYPE_NONE = 0,   /**< None */
    MPROC_TYPE_BOOL = 1,   /**< bool */
    MPROC_TYPE_INT = 2,    /**< int: int64_t */
    MPROC_TYPE_FLOAT = 3,  /**< float: double */
    MPROC_TYPE_STRING = 4, /**< str: UTF-8, may hold NUL bytes */
    MPROC_TYPE_BYTES = 5,  /**< bytes */
    MPROC_TYPE_LIST = 6,   /**< list of values */
    /* handles: in process arguments and pipe messages */
    MPROC_TYPE_CONN = 16,    /**< a pipe end (mproc_conn) */
    MPROC_TYPE_QUEUE = 17,   /**< a queue (mproc_queue) */
    MPROC_TYPE_LOCK = 18,    /**< a lock (mproc_lock) */
    MPROC_TYPE_RLOCK = 19,   /**< a recursive lock (mproc_rlock) */
    MPROC_TYPE_SEM = 20,     /**< a semaphore (mproc_sem) */
    MPROC_TYPE_EVENT = 21,   /**< an event (mproc_event) */
    MPROC_TYPE_COND = 22,    /**< a condition (mproc_cond) */
    MPROC_TYPE_BARRIER = 23, /**< a barrier (mproc_barrier) */
    MPROC_TYPE_SHM = 24      /**< shared memory (mproc_shm) */
} mproc_type;

/** @{ */
/** Limits of the encoding (docs/wire-format.md). The depth limit holds for
 * every value in memory too: mproc_list_append and mproc_list_from refuse
 * to build a tree deeper than it (below), so every value can be sent. */
#define MPROC_VALUE_MAX_DEPTH 64
#define MPROC_MESSAGE_MAX ((size_t)1 << 30) /**< 1 GiB, encoded or raw */
/** @} */

/** A new None value. */
MPROC_API mproc_value *mproc_none(void);
/** A new bool value (True, False). */
MPROC_API mproc_value *mproc_bool(bool b);
/** A new int value. */
MPROC_API mproc_value *mproc_int(int64_t i);
/** A new float value. */
MPROC_API mproc_value *mproc_float(double d);
/** A new str value of `s`, NUL-terminated, copied. */
MPROC_API mproc_value *mproc_str(const char *s);
/** A new str value of `n` bytes of `s` (NUL bytes too), copied. */
MPROC_API mproc_value *mproc_strn(const char *s, size_t n);
/** A new bytes value of `n` bytes at `p`, copied. */
MPROC_API mproc_value *mproc_bytes(const void *p, size_t n);
/** An empty list; items are added with mproc_list_append(). */
MPROC_API mproc_value *mproc_list_new(void);
/** A list that takes ownership of `n` items. If any item is NULL (a
 * constructor ran out of memory), an item is a list MPROC_VALUE_MAX_DEPTH
 * deep already, or memory runs out, every item is freed and NULL
 * returned. */
MPROC_API mproc_value *mproc_list_from(mproc_value *const *items, size_t n);
/** MPROC_LIST(a, b, c): mproc_list_from() over its arguments (at least one).
 * The same in C and C++ (C++11 and later): C builds a compound literal, C++,
 * which has none, an std::initializer_list whose array lives until the end
 * of the full expression, that is, past the call. */
#if defined(__cplusplus)
#define MPROC_LIST(...) mproc__list_cxx({__VA_ARGS__})
#else
#define MPROC_LIST(...)                                                        \
    mproc_list_from((mproc_value *const[]){__VA_ARGS__},                       \
                    sizeof((mproc_value *const[]){__VA_ARGS__}) /              \
                        sizeof(mproc_value *))
#endif
/** Appends `item` and takes ownership of it, also on failure (it is freed),
 * with two exceptions, MPROC_EINVAL with nothing freed: an item that
 * contains `list` itself (a cycle), and an item already inside a list.
 *
 * Nesting: no tree of values is ever deeper than MPROC_VALUE_MAX_DEPTH
 * lists one inside the other (the wire format's limit, so that every value
 * can be sent). An append that would make the tree holding `list` deeper,
 * counting the lists around `list` as well as those inside `item`, is
 * MPROC_EINVAL (the item is freed). The limit is kept as trees are built,
 * so that freeing, copying, comparing, printing or encoding a value never
 * recurses deeper than it. */
MPROC_API int mproc_list_append(mproc_value *list, mproc_value *item);

/** @{ */
/** Handle values: they borrow the object, which must stay alive until the
 * process that receives it has been started (or the message that holds it
 * has been sent). */
MPROC_API mproc_value *mproc_value_conn(mproc_conn *c);
MPROC_API mproc_value *mproc_value_queue(mproc_queue *q);
MPROC_API mproc_value *mproc_value_lock(mproc_lock *l);
MPROC_API mproc_value *mproc_value_rlock(mproc_rlock *l);
MPROC_API mproc_value *mproc_value_sem(mproc_sem *s);
MPROC_API mproc_value *mproc_value_event(mproc_event *e);
MPROC_API mproc_value *mproc_value_cond(mproc_cond *c);
MPROC_API mproc_value *mproc_value_barrier(mproc_barrier *b);
MPROC_API mproc_value *mproc_value_shm(mproc_shm *m);
/** @} */

/** Frees a value and, for a list, its items; NULL is a no-op. Handle values
 * free only themselves, never the object they borrow. */
MPROC_API void mproc_value_free(mproc_value *v);
/** A deep copy (handles are copied as borrowed references), or NULL. */
MPROC_API mproc_value *mproc_value_copy(const mproc_value *v);
/** Deep equality; handles compare by object. NULL equals only NULL. Types
 * must match (true is not 1); floats compare by value (0.0 equals -0.0),
 * except that NaN equals NaN, so that a decoded copy equals its original. */
MPROC_API bool mproc_value_equal(const mproc_value *a, const mproc_value *b);

/** The value's type (an mproc_type), or MPROC_EINVAL for NULL. */
MPROC_API int mproc_value_type(const mproc_value *v);

/** @{ */
/** Accessors: 0 and the content, or MPROC_EINVAL for NULL arguments or a value
 * of another type. Strings and bytes are borrowed from the value; a string
 * is always NUL-terminated after its `len` bytes. */
MPROC_API int mproc_value_get_bool(const mproc_value *v, bool *out);
MPROC_API int mproc_value_get_int(const mproc_value *v, int64_t *out);
MPROC_API int mproc_value_get_float(const mproc_value *v, double *out);
MPROC_API int mproc_value_get_str(const mproc_value *v, const char **s,
                                  size_t *len);
MPROC_API int mproc_value_get_bytes(const mproc_value *v, const void **p,
                                    size_t *len);
/** @} */
/** Number of items of a list, or a negative code. */
MPROC_API int64_t mproc_list_size(const mproc_value *list);
/** Item `i` of a list, borrowed; NULL when out of range or not a list. */
MPROC_API mproc_value *mproc_list_get(const mproc_value *list, size_t i);
/** @{ */
/** Objects of handle values, borrowed from the value: in a child they are
 * open and usable while the value lives (the target's arguments live until
 * the target returns). */
MPROC_API int mproc_value_get_conn(const mproc_value *v, mproc_conn **out);
MPROC_API int mproc_value_get_queue(const mproc_value *v, mproc_queue **out);
MPROC_API int mproc_value_get_lock(const mproc_value *v, mproc_lock **out);
MPROC_API int mproc_value_get_rlock(const mproc_value *v, mproc_rlock **out);
MPROC_API int mproc_value_get_sem(const mproc_value *v, mproc_sem **out);
MPROC_API int mproc_value_get_event(const mproc_value *v, mproc_event **out);
MPROC_API int mproc_value_get_cond(const mproc_value *v, mproc_cond **out);
MPROC_API int mproc_value_get_barrier(const mproc_value *v,
                                      mproc_barrier **out);
MPROC_API int mproc_value_get_shm(const mproc_value *v, mproc_shm **out);
/** @} */

/** Python-like text ("[42, None, 'hello', True]") into buf, NUL-terminated
 * and truncated to cap (buf may be NULL when cap is 0). Returns the length
 * the full text needs (without the NUL) or a negative code. */
MPROC_API int64_t mproc_value_repr(const mproc_value *v, char *buf, size_t cap);

/** @{ */
/** The wire encoding (docs/wire-format.md), for values without handles.
 * mproc_value_encode: a malloc'ed buffer the caller frees with
 * mproc_free(); MPROC_EINVAL for a handle or nesting deeper than
 * MPROC_VALUE_MAX_DEPTH, MPROC_EMSGSIZE past MPROC_MESSAGE_MAX.
 * mproc_value_decode treats its input as hostile: MPROC_EBADMSG for anything
 * malformed (handles included), never an over-read; *out is NULL on
 * failure. */
MPROC_API int mproc_value_encode(const mproc_value *v, void **buf, size_t *len);
MPROC_API int mproc_value_decode(const void *buf, size_t len,
                                 mproc_value **out);
/** @} */
/** Frees a buffer the library allocated for the caller (encode, the
 * receive calls that allocate); NULL is a no-op. */
MPROC_API void mproc_free(void *p);

/* ------------------------------------------------------------------------- */
/** @} @defgroup process Process
 *
 * A process object runs a target in a child process:
 *
 * @code
 *   static int worker(const mproc_value *args) { ... return 0; }
 *   mproc_process *p;
 *   mproc_process_create(&p, worker, MPROC_LIST(mproc_int(i)));
 *   mproc_process_start(p);
 *   mproc_process_join(p, MPROC_FOREVER);
 *   p = mproc_process_destroy(p);
 * @endcode
 *
 * The target's return value (0..255; other values are taken modulo 256, as
 * by exit()) is the child's exit code. A child
 * killed by signal N reads as exit code -N; terminate() reads as -15 and
 * kill() as -9 on every platform, Windows included. The child's arguments
 * are the list given at create (an empty list when NULL was given).
 *
 * The run-function form is the seed's `class Worker(Process): def run()`:
 * mproc_process_create_run() takes a function of the process object itself,
 * and a state value that the child reads with mproc_process_state(self).
 *
 * Lifecycle: created -> started -> exited (join or is_alive saw it) ->
 * closed. Misuse is an error: start twice (MPROC_ESTATE), join before start
 * (MPROC_ESTATE), close while running (MPROC_ESTATE), anything but destroy
 * after close (MPROC_ECLOSED). Only the process that started a child may
 * join, poll, signal, close it or read its exit code: a fork child's copy
 * of an object its parent started gives MPROC_ENOTCHILD for those (as
 * Python's "can only join a child process"); the parent process object
 * (mproc_parent_process) is the one exception, see below.
 *
 * Defaults, as in Python: a new process is a daemon when the process that
 * creates it is one (which cannot start it, though: MPROC_EDAEMON), and
 * its standard input is the null device, so that children do not compete
 * with their parent for the terminal (mproc_process_set_inherit_stdin to
 * share the parent's). Its standard output and error are the parent's.
 *
 * Destroying a process that is still running does not stop it: the library
 * keeps what it needs to reap it (active_children() lists it and reaps it).
 *
 * At the normal exit of the program (return from main, exit()), as in
 * Python, daemon children are terminated and the other children joined: a
 * child that never ends keeps the program from exiting. A daemon child also
 * dies when its parent is killed, whichever of the parent's threads started
 * it (Linux: a pipe whose write end only the parent holds; its end-of-file
 * makes the kernel SIGKILL the child; Windows: a job object).
 * @{
 */

/** A target: runs in the child with the argument list given at create;
 * its return value is the child's exit code. */
typedef int (*mproc_target)(const mproc_value *args);
/** A run function: runs in the child with the child's own process object
 * (its state: mproc_process_state()); its return value is the exit code. */
typedef int (*mproc_run)(mproc_process *self);

/** Takes ownership of `args` (a list, or NULL for no arguments), also on
 * failure. MPROC_EINVAL for a NULL target or out, or args not a list. */
MPROC_API int mproc_process_create(mproc_process **out, mproc_target target,
                                   mproc_value *args);
/** Takes ownership of `state` (any value or NULL), also on failure. */
MPROC_API int mproc_process_create_run(mproc_process **out, mproc_run run,
                                       mproc_value *state);

/** @{ */
/** Settings, before start only (MPROC_ESTATE after). The name is copied. */
MPROC_API int mproc_process_set_name(mproc_process *p, const char *name);
MPROC_API int mproc_process_set_daemon(mproc_process *p, bool daemon);
MPROC_API int mproc_process_set_start_method(mproc_process *p,
                                             mproc_start_method method);
/** @} */
/** true: the child reads the parent's standard input (the same file or
 * terminal, sharing its position) instead of the null device. */
MPROC_API int mproc_process_set_inherit_stdin(mproc_process *p, bool inherit);

/** Starts the child. Returns once the child exists and (under spawn) has
 * found its target: MPROC_ERESOLVE when it cannot find or verify it (a
 * function of a library loaded at run time, which a spawned child does not
 * load; a static function of a stripped program; an address where no
 * function begins), MPROC_EPERM when the child refused its bootstrap (the
 * executable is setuid, setgid or otherwise secure-exec; docs/security.md),
 * MPROC_EEXEC when the executable cannot start, MPROC_ECHILD when it ended
 * before it could run the target (it is not an mproc program, or crashed
 * while starting), MPROC_EDAEMON when called in a daemon child,
 * MPROC_EBOOTSTRAP when called in a spawned child before its bootstrap
 * finished (mproc_init) or when the spawned child started a process itself
 * before its mproc_init (see mproc_init), MPROC_EINVAL or MPROC_ENOSYS when
 * the default start method is used and MPROC_START_METHOD names none, and
 * under spawn MPROC_EINVAL for a name longer than 16 KiB. After a failed
 * start no child is left behind (it has been reaped) and the object can be
 * started again. */
MPROC_API int mproc_process_start(mproc_process *p);
/** 0 once the child has exited, MPROC_ETIMEDOUT if it is still running after
 * timeout_ms. */
MPROC_API int mproc_process_join(mproc_process *p, int timeout_ms);
/** 1 running, 0 not started or exited, or a negative code. */
MPROC_API int mproc_process_is_alive(mproc_process *p);
/** @{ */
/** SIGTERM / SIGKILL (TerminateProcess on Windows). A child that has already
 * exited is not an error. */
MPROC_API int mproc_process_terminate(mproc_process *p);
MPROC_API int mproc_process_kill(mproc_process *p);
/** @} */
/** Interrupts the child, as Ctrl+C would (Python 3.14's interrupt()): it
 * receives SIGINT. A child that does not handle it ends with exit code -2;
 * one that ignores SIGINT (SIG_IGN) goes on; one that installed a handler
 * (signal(), or sigaction on POSIX) runs it and goes on, and a POSIX child
 * that blocked SIGINT gets it once it unblocks it. A child that has
 * already exited is not an error. Errors as for terminate.
 *
 * Windows has no signals between processes; there every child listens for
 * its interrupt (an event its parent holds) in a thread-pool wait, and
 * does what the C runtime's disposition of SIGINT says: SIG_DFL ends the
 * child at once with exit code -2 (no atexit handler runs, stdio is not
 * flushed, as a POSIX signal death); SIG_IGN does nothing; a handler is
 * called with SIGINT in that thread, after the disposition is reset to
 * SIG_DFL, as the C runtime does for a Ctrl+C (docs/platforms.md). */
MPROC_API int mproc_process_interrupt(mproc_process *p);
/** Releases the OS resources of an exited process. */
MPROC_API int mproc_process_close(mproc_process *p);
/** Releases the object and returns NULL; a child still running goes on
 * (see above). The objects of mproc_current_process() and
 * mproc_parent_process() are borrowed: destroying them does nothing. */
MPROC_API mproc_process *mproc_process_destroy(mproc_process *p);

/** The child's pid (> 0) once started, else a negative code. */
MPROC_API int64_t mproc_process_pid(const mproc_process *p);
/** 0 and the exit code once the child has exited (reaping it if needed);
 * MPROC_ENOTEXITED before that, as Python's None. */
MPROC_API int mproc_process_exitcode(mproc_process *p, int *code);
/** Borrowed; valid until the name is changed or the object destroyed. NULL
 * only for a NULL process. */
MPROC_API const char *mproc_process_name(const mproc_process *p);
/** 1 daemon, 0 not, or a negative code (MPROC_ECLOSED after close). */
MPROC_API int mproc_process_daemon(const mproc_process *p);
/** The start method a child was started with (MPROC_START_FORK or
 * MPROC_START_SPAWN); before start, the one it would be started with now.
 * For mproc_current_process() in a child: the method it was really
 * started with (which may differ from mproc_get_start_method(), the
 * program-wide default it inherited from its parent). MPROC_START_DEFAULT
 * for the main process and the parent object; a negative code for NULL or
 * after close. */
MPROC_API int mproc_process_start_method(const mproc_process *p);
/** The state of the run-function form (borrowed), NULL otherwise. */
MPROC_API mproc_value *mproc_process_state(const mproc_process *p);

/* ------------------------------------------------------------------------- */
/** @} @defgroup introspection Introspection
 * @{
 */

/** The calling process: "MainProcess" in the main program, or the child's
 * own object (name, pid, daemon flag, state). Borrowed, never NULL. */
MPROC_API mproc_process *mproc_current_process(void);
/** The parent of a child (pid, name, is_alive tells whether the parent still
 * runs; join waits for it to end); NULL in the main process. Borrowed. */
MPROC_API mproc_process *mproc_parent_process(void);
/** Reaps the children that have ended and stores up to `cap` of the live
 * ones in `out` as new references (release each with
 * mproc_process_destroy). Returns the number of live children, which may be
 * larger than cap. out may be NULL when cap is 0. */
MPROC_API int mproc_active_children(mproc_process **out, size_t cap);
/** The number of CPUs of the system, like Python's os.cpu_count(). */
MPROC_API int mproc_cpu_count(void);
/** The number of CPUs this process may really use: the affinity mask and,
 * on Linux, a cgroup CPU quota (rounded up). */
MPROC_API int mproc_cpu_count_usable(void);

/* ------------------------------------------------------------------------- */
/** @} @defgroup pipe Pipe
 *
 * mproc_pipe() makes a connected pair of ends. Duplex: both ends send and
 * receive. One-way (duplex false): `a` only receives and `b` only sends, as
 * Python's Pipe(False) returns (reader, writer). Each message is a typed
 * value (send/recv) or raw bytes (send_bytes/recv_bytes); boundaries are
 * kept. An end is used by one process at a time (pass it to a child and
 * close it in the parent), and by one thread at a time within it (like
 * Python's Connection): two threads may use the two ends of a pair, not one
 * end together.
 *
 * An end can pass from process to process, one at a time (a child gets it,
 * its parent uses it again once the child is done), and whatever one
 * process did with it, the next finds every message it did not receive,
 * whole and in order: a receive takes out of the channel exactly the
 * message it returns and poll takes nothing (nothing is read ahead into a
 * process's memory). A message of up to 64 KiB (its 8-byte header
 * included) is taken whole or not at all, so this holds whether the process
 * before polled, received, timed out, exited or was killed. A larger
 * message cannot be all in the channel at once (its sender blocks until the
 * receiver reads it), so it is taken as it arrives: a receive that times
 * out part-way (its timeout holds while the message is still coming, too)
 * keeps what it took for the next call (a timeout never loses or tears a
 * message), and until that message is received the end cannot
 * be passed to a child (MPROC_ESTATE); a process that ends in the middle of
 * such a message leaves its rest to the next holder, which is told so at
 * once: the rest is no frame (MPROC_EFRAMING, below), never taken for
 * messages.
 *
 * Framing: a message that arrives well framed but is not a valid value is
 * MPROC_EBADMSG from recv, and the pipe stays usable. A frame header that
 * no mproc sender writes (a length past MPROC_MESSAGE_MAX or a wrong check
 * word, docs/wire-format.md: a hostile or broken peer, or a torn stream)
 * leaves nothing behind it that can be framed: the end is
 * closed at once, every later call on it but close and destroy is
 * MPROC_EFRAMING (poll included; mproc_wait reports it ready), and the
 * peer's sends fail with MPROC_EPIPE instead of blocking once the channel
 * is full.
 *
 * The sender of a message larger than the channel's buffer blocks until the
 * receiver reads it. Errors on an end after close: MPROC_ECLOSED; a receive
 * on a send-only end, or a send on a receive-only end: MPROC_EDIRECTION.
 * @{
 */

/** A connected pair of ends in *a and *b (Python's Pipe(duplex)); both
 * are NULL on failure. */
MPROC_API int mproc_pipe(mproc_conn **a, mproc_conn **b, bool duplex);
/** @{ */
/** MPROC_EPIPE when the peer has closed (never a SIGPIPE death),
 * MPROC_EMSGSIZE over MPROC_MESSAGE_MAX (nothing sent).
 *
 * A value may hold handles (pipe ends, queues, locks, semaphores, events,
 * conditions, barriers, shared memory; Python pickles Connections and the
 * like): the process that receives it, already running, gets working
 * objects of its own, as a child gets its arguments; the sender keeps its
 * own (send an end, then close it here, to hand it over). The handles
 * travel beside the bytes (POSIX: SCM_RIGHTS; Windows: duplicated for the
 * transfer and taken by the receiver out of the sender, which must still
 * run when the message is received: docs/platforms.md). At most
 * MPROC_PASS_MAX OS handles per message (an object has one to eight):
 * MPROC_EINVAL beyond; an end in the middle of a message it receives is
 * MPROC_ESTATE (as for a child). MPROC_EPERM, nothing sent, when the other
 * end of the connection belongs to another user, as the system recorded it
 * when the connection was made (POSIX: the socket's peer credentials,
 * which for a socket pair are its creator's; Windows: the user of the
 * process that opened the other end of the pipe). */
MPROC_API int mproc_conn_send(mproc_conn *c, const mproc_value *v);
MPROC_API int mproc_conn_send_bytes(mproc_conn *c, const void *buf, size_t len);
/** @} */
/** A new value owned by the caller. MPROC_EEOF once the peer closed and every
 * message was read; MPROC_ETIMEDOUT; MPROC_EBADMSG for malformed bytes (the
 * message is consumed, the pipe stays usable). A value with handles (see
 * mproc_conn_send) holds objects of this process, destroyed with it (the
 * value owns them: mproc_value_get_* borrows them). MPROC_EBADMSG, the
 * message consumed and nothing of it kept, for data that arrives without
 * the handles it names (bytes written to look like such a message, a
 * Windows sender that ended before the receive), MPROC_EPERM for handles
 * of a sender of another user, MPROC_ERESOLVE for a barrier whose action
 * this program does not have. Descriptors that arrive with a message that
 * does not name them are closed. */
MPROC_API int mproc_conn_recv(mproc_conn *c, mproc_value **out, int timeout_ms);
/** Into the caller's buffer: MPROC_ETOOSMALL with *len set to the size needed
 * when it does not fit; the message stays for the next receive (on a
 * record channel, docs/pipe-queue.md, a message over 64 KiB that does not
 * fit a buffer of 64 KiB or more is kept in the end, which then cannot be
 * passed to a child, MPROC_ESTATE, until that message is received). */
MPROC_API int mproc_conn_recv_bytes(mproc_conn *c, void *buf, size_t cap,
                                    size_t *len, int timeout_ms);
/** Into a buffer the caller frees with mproc_free(). */
MPROC_API int mproc_conn_recv_bytes_alloc(mproc_conn *c, void **buf,
                                          size_t *len, int timeout_ms);
/** The most OS handles one message carries (mproc_conn_send). */
#define MPROC_PASS_MAX 64
/** @{ */
/** A raw descriptor (POSIX; any, numbered above 255 too) or HANDLE
 * (Windows) of this process sent to the process that receives it, which
 * gets a descriptor or handle of its own for the same open file or object
 * (Python's send_handle and recv_handle). The sender keeps its own.
 * mproc_conn_send_handle: MPROC_EINVAL for -1 or a closed number, and the
 * errors of mproc_conn_send (MPROC_EPERM for another user). recv_handle:
 * *handle is the new handle, which the caller closes; a message that is
 * not one handle (a value, bytes, or data without its handle) is consumed
 * and MPROC_EBADMSG. A handle message received with mproc_conn_recv is
 * MPROC_EBADMSG too (its handle closed), and with the bytes calls gives
 * its bytes (its POSIX descriptor closed). */
MPROC_API int mproc_conn_send_handle(mproc_conn *c, intptr_t handle);
MPROC_API int mproc_conn_recv_handle(mproc_conn *c, intptr_t *handle,
                                     int timeout_ms);
/** @} */
/** 1 when a message (or end-of-file) is ready, 0 after the timeout; takes
 * nothing out of the channel. "Ready": a message of up to 64 KiB is all
 * there (or began to arrive and stopped: its sender is gone or stalled); of
 * a larger one the first bytes are (a receive then takes as long as its
 * sender needs to send the rest). MPROC_EFRAMING after broken framing. */
MPROC_API int mproc_conn_poll(mproc_conn *c, int timeout_ms);
/** Closes the end (the peer then reads end-of-file or gets MPROC_EPIPE);
 * closing it again is MPROC_ECLOSED. */
MPROC_API int mproc_conn_close(mproc_conn *c);
/** Closes the end if open, frees it and returns NULL. */
MPROC_API mproc_conn *mproc_conn_destroy(mproc_conn *c);

/** @{ */
/** The end's state (Python's Connection.readable, .writable, .closed): 1
 * or 0, or MPROC_EINVAL for NULL. readable and writable tell the end's
 * direction, which close does not change (as in Python); closed is 1 once
 * the end was closed by mproc_conn_close or by broken framing
 * (MPROC_EFRAMING). The peer's close does not close this end (a receive
 * then reads what is left, then MPROC_EEOF). */
MPROC_API int mproc_conn_readable(const mproc_conn *c);
MPROC_API int mproc_conn_writable(const mproc_conn *c);
MPROC_API int mproc_conn_closed(const mproc_conn *c);
/** @} */

/** Makes a pipe end of a connection the program already has (Python's
 * Connection(handle, readable, writable)): POSIX: a connected stream
 * socket descriptor (AF_UNIX or TCP), or an AF_UNIX SOCK_SEQPACKET one (a
 * record channel; the peer must speak mproc's framing,
 * docs/wire-format.md: in practice another mproc end); Windows: a named
 * pipe HANDLE opened for overlapped I/O (one that reads in message mode,
 * PIPE_READMODE_MESSAGE, is a record channel, like a SOCK_SEQPACKET
 * socket; one that reads bytes a stream). On success the end owns the
 * handle (destroy closes it; POSIX: it is made close-on-exec, and moved
 * above 2 if it was 0, 1 or 2, the original number closed). `readable` and
 * `writable` give the end's direction (one at least). MPROC_EINVAL for -1,
 * a number no descriptor or handle has (a closed one), or one that is no
 * such connection (a file, a pipe(2) or FIFO, a datagram socket, a
 * listening socket, a Windows pipe opened for synchronous I/O), and for a
 * NULL out or no direction; the handle is left alone then. */
MPROC_API int mproc_conn_adopt(mproc_conn **c, intptr_t handle, bool readable,
                               bool writable);

/* ------------------------------------------------------------------------- */
/** @} @defgroup queue Queue
 *
 * Any number of producer and consumer processes. When put returns, the item
 * is in the shared channel: it survives the producer exiting or being killed.
 * A consumer killed while it waits in get loses no item. maxsize 0 is
 * unbounded in items. A positive timeout that expires is MPROC_ETIMEDOUT.
 * Timeout 0 never waits for room or for an item (MPROC_EFULL / MPROC_EEMPTY
 * at once when there is none), but does wait the moment another process
 * needs to finish copying an item under the queue's lock (not for one that
 * itself waits, as a producer streaming a large item into a full ring does;
 * at most about a second).
 *
 * Producers share one lock and consumers another, each owned by what the
 * OS vouches for: on POSIX a thread (a robust mutex; where there is none,
 * a process identity and a thread), on Windows a process known by its pid
 * and creation time (the locks are held only inside put, get and join,
 * where no thread ends but with its process; uncontended they make no
 * system call). A process whose main thread has exited keeps what its
 * other threads hold, and a process that died loses what it held (at once
 * where the OS reports the death, within about 20 ms where it is asked)
 * even when its pid has gone to another process; the next taker repairs
 * what the dead one left. With POSIX threads, put, get and join are
 * cancellation points on entry and while they sleep (for room, an item or
 * the lock), never while they hold a lock: a cancelled put has put its
 * item whole or not at all (the copy of a typed item is freed).
 *
 * qsize, empty, full, maxsize and join count whole items a consumer can
 * receive: an item streamed in chunks (below) counts once its last chunk is
 * in; one whose producer died mid-stream never counts; what is left of one
 * whose consumer died mid-stream counts until the next get or join drops
 * it. The counts are exact when no put or get is in flight. mproc_wait
 * reports a queue ready when it holds anything, which a get may find to be
 * such leftovers (or another consumer may take first): readiness is a hint.
 *
 * The queue's shared memory is writable by every process that has the
 * queue; what a faulty or hostile one writes there is checked before use:
 * put, get, qsize, empty and full give MPROC_ECORRUPT (within the call's
 * timeout) rather than read or write outside the queue or loop. Such a
 * process can still hold a lock for ever (calls time out) or forge items.
 *
 * Items live in a shared ring of 4 MiB per queue; besides maxsize, the ring
 * bounds the bytes in flight: a put waits (timeout 0: MPROC_EFULL) while
 * the ring has no room for the item, even below maxsize, so a producer that
 * puts more than 4 MiB that nobody gets blocks, and cannot be joined until
 * someone gets. Items larger than 1 MiB (up to MPROC_MESSAGE_MAX) are
 * streamed through the ring in chunks: such a put returns once the last
 * chunk is in, and, once its first chunk is in, completes regardless of its
 * timeout (as long as consumers get); with timeout 0 it goes in only when
 * the ring has room for all of it at once, else MPROC_EFULL. Likewise a get
 * that has begun receiving such an item waits for the rest of it, whatever
 * its timeout. A process killed in the middle of streaming such an item
 * (producer or consumer) loses that item; the queue recovers.
 * @{
 */

/** A new queue of at most `maxsize` items (0: unbounded), Python's
 * Queue(maxsize). */
MPROC_API int mproc_queue_create(mproc_queue **q, size_t maxsize);
/** A joinable queue (Python's JoinableQueue): task_done and join. */
MPROC_API int mproc_queue_create_joinable(mproc_queue **q, size_t maxsize);
/** @{ */
/** Put a value (a copy is queued) or raw bytes; get a new value owned by
 * the caller, or raw bytes in a buffer the caller frees with mproc_free().
 * Timeouts as above: MPROC_EFULL / MPROC_EEMPTY at timeout 0,
 * MPROC_ETIMEDOUT after a positive one. A put after close is MPROC_ECLOSED;
 * a value holding handles is MPROC_EINVAL. After mproc_queue_shutdown, puts
 * and gets of an empty queue are MPROC_ESHUTDOWN. */
MPROC_API int mproc_queue_put(mproc_queue *q, const mproc_value *v,
                              int timeout_ms);
MPROC_API int mproc_queue_get(mproc_queue *q, mproc_value **out,
                              int timeout_ms);
MPROC_API int mproc_queue_put_bytes(mproc_queue *q, const void *buf, size_t len,
                                    int timeout_ms);
MPROC_API int mproc_queue_get_bytes(mproc_queue *q, void **buf, size_t *len,
                                    int timeout_ms);
/** @} */
/** Number of items, or a negative code. */
MPROC_API int64_t mproc_queue_qsize(mproc_queue *q);
/** @{ */
/** 1 or 0, or a negative code. */
MPROC_API int mproc_queue_empty(mproc_queue *q);
MPROC_API int mproc_queue_full(mproc_queue *q);
/** @} */
/** No more puts from this process (MPROC_ECLOSED); items already in the queue
 * can still be got, and other processes can still put. */
MPROC_API int mproc_queue_close(mproc_queue *q);
/** Shuts the queue down for every process that has it (Python 3.13's
 * Queue.shutdown(immediate)). From then on every put, in any process, is
 * MPROC_ESHUTDOWN, also one that was waiting for room. immediate false:
 * gets return the items that are left, then MPROC_ESHUTDOWN (at once, not
 * after their timeout; a get that was waiting is woken), and a join
 * returns once those items were taken and task_done, as usual. immediate
 * true: the items are dropped (qsize reads 0), a large item being
 * streamed is cut off, every get is MPROC_ESHUTDOWN at once, and each
 * dropped item counts as task_done, so that a join waits only for items
 * that consumers have already taken. A second shutdown may turn one that
 * kept the items into one that drops them; otherwise it does nothing. A
 * shut-down queue reads as ready in mproc_wait. MPROC_EINVAL for NULL.
 * Python's get_nowait after a shutdown also raises ShutDown, not Empty:
 * so does a get with timeout 0 here (MPROC_ESHUTDOWN, not MPROC_EEMPTY). */
MPROC_API int mproc_queue_shutdown(mproc_queue *q, bool immediate);
/** @{ */
/** Joinable queues only (MPROC_ESTATE otherwise). One task_done too many is
 * MPROC_ERANGE. */
MPROC_API int mproc_queue_task_done(mproc_queue *q);
MPROC_API int mproc_queue_join(mproc_queue *q, int timeout_ms);
/** @} */
/** Releases this process's view of the queue and returns NULL; other
 * processes that have it keep using it. */
MPROC_API mproc_queue *mproc_queue_destroy(mproc_queue *q);

/* ------------------------------------------------------------------------- */
/** @} @defgroup sync Synchronisation
 *
 * Every object here is shared with the children it is passed to. An acquire
 * returns 0, or MPROC_EOWNERDEAD when the previous owner died holding the
 * lock (the caller holds it then too: see MPROC_ACQUIRED). With timeout 0 a
 * held lock is MPROC_EBUSY at once; a positive timeout that expires is
 * MPROC_ETIMEDOUT. MPROC_EINVAL for a NULL object or a timeout below
 * MPROC_FOREVER.
 *
 * Each object's state lives in anonymous shared memory (no name anywhere):
 * destroy releases this process's view only; other processes that have the
 * object keep using it, and the state goes with the last of them, however
 * it ends. Locks are owned by a thread: the owner thread releases them.
 *
 * Owner death is learned from the OS, never guessed from a pid (a pid may
 * be reused; a process whose main thread has exited still runs): a thread
 * or process that ends holding a Lock, an RLock or a Condition's lock, by
 * any means (return, exit, crash, kill, thread cancellation), gives the
 * next acquirer MPROC_EOWNERDEAD within 100 ms, on every platform. No
 * acquire, release or wait here is a pthread cancellation point, except
 * mproc_sem_acquire where the system semaphore's wait is one (no lock of
 * the library is held there).
 *
 * A process that dies while waiting (not holding) may cost the others: on a
 * Condition it may swallow one notify. On a Barrier its death breaks the
 * barrier for the parties waiting with it within 100 ms (also for waits
 * without a timeout), as a timeout would; a later wait in that cycle is
 * MPROC_EBROKEN, and reset always leaves a usable barrier.
 * @{
 */

/** Lock: not recursive. The owner thread acquiring it again waits like
 * anyone else (MPROC_EBUSY at timeout 0, MPROC_ETIMEDOUT, or forever with
 * MPROC_FOREVER), as Python's Lock does. */
MPROC_API int mproc_lock_create(mproc_lock **l);
/** Acquires the Lock: 0 or MPROC_EOWNERDEAD (both hold it), MPROC_EBUSY at
 * timeout 0, MPROC_ETIMEDOUT. */
MPROC_API int mproc_lock_acquire(mproc_lock *l, int timeout_ms);
/** MPROC_ENOTOWNER when not held, or held by another process or thread
 * (stricter than Python's Lock, which any thread may release). */
MPROC_API int mproc_lock_release(mproc_lock *l);
/** Releases this process's view (see above) and returns NULL. */
MPROC_API mproc_lock *mproc_lock_destroy(mproc_lock *l);

/** Who holds a Lock or RLock (mproc_lock_owner, mproc_rlock_owner). */
typedef enum mproc_owner {
    MPROC_OWNER_NONE = 0,   /**< free */
    MPROC_OWNER_CALLER = 1, /**< the calling thread */
    MPROC_OWNER_THREAD = 2, /**< another thread of this process */
    MPROC_OWNER_PROCESS = 3 /**< a thread of another process */
} mproc_owner;

/** 1 while any thread of any process holds the Lock, else 0 (Python's
 * locked()), or a negative code. A snapshot: it may change hands at once.
 * It never takes the lock: a lock whose owner died reads as free, and the
 * next acquire still gets MPROC_EOWNERDEAD. MPROC_ENOSYS on a POSIX system
 * whose C library keeps a mutex's owner out of reach (not glibc, no word
 * mutex). */
MPROC_API int mproc_lock_locked(mproc_lock *l);
/** Who holds the Lock: an mproc_owner (0..3), or a negative code as for
 * mproc_lock_locked. When `pid` is not NULL it receives the owner's
 * process id (this process's for MPROC_OWNER_CALLER and
 * MPROC_OWNER_THREAD; 0 when free, and, rarely, 0 for an owner of another
 * process that the system cannot name at that instant). Python has no
 * such call (its RLock's repr tells the owner thread). */
MPROC_API int mproc_lock_owner(mproc_lock *l, int64_t *pid);

/** @{ */
/** RLock: the owner thread may acquire it again; it is free after as many
 * releases as acquires. Release by anyone else: MPROC_ENOTOWNER. After
 * MPROC_EOWNERDEAD the count restarts at 1. */
MPROC_API int mproc_rlock_create(mproc_rlock **l);
MPROC_API int mproc_rlock_acquire(mproc_rlock *l, int timeout_ms);
MPROC_API int mproc_rlock_release(mproc_rlock *l);
MPROC_API mproc_rlock *mproc_rlock_destroy(mproc_rlock *l);
/** @} */
/** @{ */
/** As mproc_lock_locked and mproc_lock_owner, for an RLock. */
MPROC_API int mproc_rlock_locked(mproc_rlock *l);
MPROC_API int mproc_rlock_owner(mproc_rlock *l, int64_t *pid);
/** @} */
/** The RLock's recursion count: how many acquires its owner has not yet
 * released (0 when free), or a negative code. Read by anyone; only the
 * owner's own count is exact, another's is a snapshot. */
MPROC_API int64_t mproc_rlock_count(mproc_rlock *l);

/** max 0: unbounded (Semaphore); max > 0: BoundedSemaphore, a release past
 * max is MPROC_ERANGE (decided atomically: of two racing releases at max-1,
 * exactly one succeeds). MPROC_EINVAL when initial > max > 0, or initial or
 * max above INT32_MAX. */
MPROC_API int mproc_sem_create(mproc_sem **s, unsigned initial, unsigned max);
/** Takes one unit, waiting while the value is 0 (MPROC_EBUSY at timeout 0,
 * MPROC_ETIMEDOUT). */
MPROC_API int mproc_sem_acquire(mproc_sem *s, int timeout_ms);
/** Gives one unit back; past a BoundedSemaphore's max: MPROC_ERANGE. */
MPROC_API int mproc_sem_release(mproc_sem *s);
/** The current value, or a negative code. */
MPROC_API int64_t mproc_sem_value(mproc_sem *s);
/** Releases this process's view (see above) and returns NULL. */
MPROC_API mproc_sem *mproc_sem_destroy(mproc_sem *s);

/** A new Event, not set. */
MPROC_API int mproc_event_create(mproc_event **e);
/** Sets the flag and wakes every waiter. */
MPROC_API int mproc_event_set(mproc_event *e);
/** Clears the flag. */
MPROC_API int mproc_event_clear(mproc_event *e);
/** 1 or 0, or a negative code. */
MPROC_API int mproc_event_is_set(mproc_event *e);
/** 0 once set, MPROC_ETIMEDOUT. A set during the wait wakes every waiter
 * with 0, even if a clear follows before a waiter runs. */
MPROC_API int mproc_event_wait(mproc_event *e, int timeout_ms);
/** Releases this process's view (see above) and returns NULL. */
MPROC_API mproc_event *mproc_event_destroy(mproc_event *e);

/** @{ */
/** A condition over its own recursive lock. */
MPROC_API int mproc_cond_create(mproc_cond **c);
MPROC_API int mproc_cond_acquire(mproc_cond *c, int timeout_ms);
MPROC_API int mproc_cond_release(mproc_cond *c);
/** @} */
/** Called with the lock held (MPROC_ENOTOWNER otherwise); returns with it
 * held. 0 when notified, MPROC_ETIMEDOUT. The wait releases the lock
 * completely however deep the caller's recursion, and restores the depth.
 * Like POSIX and Python conditions it may return 0 without a notify (a
 * spurious wake-up): wait in a loop on your predicate.
 * MPROC_EOWNERDEAD: woken, holding the lock, whose previous owner died
 * holding it. Timeout 0 is MPROC_ETIMEDOUT at once (the lock is kept). */
MPROC_API int mproc_cond_wait(mproc_cond *c, int timeout_ms);
/** A predicate for mproc_cond_wait_for: true once the awaited condition
 * holds. Called with the condition's lock held. */
typedef bool (*mproc_predicate)(void *ctx);
/** Python's Condition.wait_for: called with the lock held
 * (MPROC_ENOTOWNER otherwise), returns with it held. Evaluates pred(ctx)
 * and, while it is false, waits (as mproc_cond_wait) and evaluates it
 * again after every wake-up, notified or spurious, until it is true or the
 * timeout passes. The timeout counts from the call: notifies that find the
 * predicate still false do not restart it. Returns the predicate's last
 * value: 1 (true) or 0 (false when the timeout passed; timeout 0 evaluates
 * it once), or a negative code: MPROC_EINVAL for a NULL condition or
 * predicate or a bad timeout, MPROC_EOWNERDEAD when a wait re-acquired the
 * lock from an owner that died holding it (the lock is held; the predicate
 * was not evaluated again: the state it reads may be half-done). */
MPROC_API int mproc_cond_wait_for(mproc_cond *c, mproc_predicate pred,
                                  void *ctx, int timeout_ms);
/** @{ */
/** Wakes up to n waiters (n 0: none); notify_all wakes every one. Both need
 * the lock held (MPROC_ENOTOWNER otherwise). */
MPROC_API int mproc_cond_notify(mproc_cond *c, unsigned n);
MPROC_API int mproc_cond_notify_all(mproc_cond *c);
/** @} */
/** Releases this process's view (see above) and returns NULL. */
MPROC_API mproc_cond *mproc_cond_destroy(mproc_cond *c);

/** The most parties a barrier may have. */
#define MPROC_BARRIER_MAX_PARTIES 65536

/** @{ */
/** parties 1..MPROC_BARRIER_MAX_PARTIES (MPROC_EINVAL otherwise). wait
 * (timeout_ms may be MPROC_BARRIER_DEFAULT, see mproc_barrier_create_ex)
 * returns this waiter's index (0..parties-1), or MPROC_EBROKEN for every
 * waiter once a wait times out, a waiting party dies or abort is called,
 * until reset. The semantics of Python's threading.Barrier: reset while
 * parties wait makes them leave with MPROC_EBROKEN and leaves the barrier
 * usable; a wait that finds the previous cycle still draining waits for it
 * within its timeout (MPROC_ETIMEDOUT then, nothing broken). n_waiting is
 * the number of parties waiting in the current cycle. */
MPROC_API int mproc_barrier_create(mproc_barrier **b, unsigned parties);
MPROC_API int mproc_barrier_wait(mproc_barrier *b, int timeout_ms);
MPROC_API int mproc_barrier_abort(mproc_barrier *b);
MPROC_API int mproc_barrier_reset(mproc_barrier *b);
MPROC_API int mproc_barrier_parties(mproc_barrier *b);
MPROC_API int mproc_barrier_n_waiting(mproc_barrier *b);
/** @} */
/** 1 broken, 0 not, or a negative code. */
MPROC_API int mproc_barrier_broken(mproc_barrier *b);

/** A barrier's action (Python's Barrier(parties, action)): 0 on success;
 * any other value breaks the barrier. */
typedef int (*mproc_barrier_action)(void);
/** The timeout of mproc_barrier_wait that means "the barrier's default"
 * (Python's wait(timeout=None)): the timeout given at
 * mproc_barrier_create_ex, MPROC_FOREVER for a barrier made without one. */
#define MPROC_BARRIER_DEFAULT (-2)
/** A barrier as mproc_barrier_create, with an action and a default
 * timeout (Python's Barrier(parties, action, timeout)). `action` (or NULL
 * for none) runs once per cycle, in the party that completes it (the last
 * to arrive), before any party of the cycle returns from wait; it runs
 * with the barrier's lock held, so it should be short, and it may not use
 * the barrier. A non-zero return breaks the barrier: every party of the
 * cycle, that one included, gets MPROC_EBROKEN (Python raises the action's
 * exception in that party, BrokenBarrierError in the others). The action
 * is a function of this program, found in a spawned child as a target is
 * (module and offset, checked: docs/security.md), so that it runs in
 * whichever process completes a cycle; a barrier whose action cannot be
 * found there fails that child's start (MPROC_ERESOLVE). `timeout_ms` (as
 * every timeout, or MPROC_FOREVER) is what a wait with
 * MPROC_BARRIER_DEFAULT uses; it breaks the barrier when it expires, as
 * any wait's timeout does. */
MPROC_API int mproc_barrier_create_ex(mproc_barrier **b, unsigned parties,
                                      mproc_barrier_action action,
                                      int timeout_ms);
/** Releases this process's view (see above) and returns NULL. */
MPROC_API mproc_barrier *mproc_barrier_destroy(mproc_barrier *b);

/* ------------------------------------------------------------------------- */
/** @} @defgroup shm Shared memory
 * Shared memory: `size` bytes, zero-filled, mapped in every process it is
 * passed to. Anonymous by default: nothing is left behind when the last
 * process that has it ends (Linux: a memfd; other POSIX: shm_open unlinked
 * at once; Windows: an unnamed file mapping). MPROC_EINVAL for size 0,
 * MPROC_ENOMEM when the system cannot provide it, on every platform: any
 * size too large for memory, the address space or an off_t (up to
 * SIZE_MAX). mproc_shm_ptr and mproc_shm_size give NULL and 0 for a NULL
 * object.
 *
 * Named blocks (Python's SharedMemory(name=...)) are for programs that do
 * not share a parent: one creates the block under a name, others attach to
 * it by that name. A name is 1 to MPROC_SHM_NAME_MAX characters of A-Z,
 * a-z, 0-9, '.', '_' and '-', not starting with '.' nor with "mproc",
 * which the library keeps for its own (MPROC_EINVAL otherwise: the same
 * names work on every platform). Only the user who
 * created a block can attach to it (POSIX: mode 0600, and attach refuses a
 * block of another user or one that others may open, MPROC_EPERM;
 * Windows: a DACL of that user alone). Nothing unlinks a block by itself:
 * not destroy, not the exit or death of any process, creator or attacher
 * (Python's resource tracker unlinks at the creator's exit, and wrongly at
 * an attacher's too); a block stays until mproc_shm_unlink. On POSIX it
 * stays even after every process that had it has ended; on Windows, which
 * keeps no object that no process has, it goes with the last process that
 * has it (docs/platforms.md). A named block travels to children as any
 * block does, and keeps its name there.
 * @{
 */

/** The longest name of a named block, in bytes: macOS allows 31 for a
 * POSIX shared memory name, its leading '/' included. */
#define MPROC_SHM_NAME_MAX 30

/** A new block of `size` bytes, zero-filled. */
MPROC_API int mproc_shm_create(mproc_shm **m, size_t size);
/** The block's address in this process. */
MPROC_API void *mproc_shm_ptr(const mproc_shm *m);
/** The block's size in bytes. */
MPROC_API size_t mproc_shm_size(const mproc_shm *m);
/** Unmaps the block in this process and returns NULL; other processes
 * that have it keep it. A named block keeps its name. */
MPROC_API mproc_shm *mproc_shm_destroy(mproc_shm *m);

/** A new named block of `size` bytes, zero-filled, under `name` (see
 * above), or under a generated name when `name` is NULL: unpredictable
 * (random) and unique, "mp-" and 24 characters (mproc_shm_name tells it).
 * Exclusive: MPROC_EEXIST when a block of that name exists, which is left
 * untouched. MPROC_EINVAL for a NULL out, size 0 or a bad name; Windows:
 * MPROC_EAGAIN when 64 blocks of that name that were unlinked are still
 * in use (see docs/platforms.md). */
MPROC_API int mproc_shm_create_named(mproc_shm **m, const char *name,
                                     size_t size);
/** Attaches the block called `name`; mproc_shm_size is the size it was
 * created with, exactly. MPROC_ENOENT when no block has that name (never
 * created, or unlinked), MPROC_EPERM for a block of another user,
 * MPROC_ECORRUPT for a block whose end was overwritten (mproc keeps the
 * size there) or that is not an mproc block, MPROC_EINVAL for a NULL out or
 * a bad name. */
MPROC_API int mproc_shm_attach(mproc_shm **m, const char *name);
/** Removes the name of a named block: from then on attach and unlink are
 * MPROC_ENOENT, and create makes a new block under the name. The block
 * itself stays mapped wherever it is, until each process destroys it. Any
 * process that has the block may unlink it (creator, attacher, or a child
 * it was passed to), as in Python. MPROC_ENOENT when the name no longer
 * names this block (it was unlinked, perhaps by another process; a new
 * block made under the name since is left alone), MPROC_ESTATE for an
 * anonymous block, MPROC_EINVAL for NULL. */
MPROC_API int mproc_shm_unlink(mproc_shm *m);
/** The name of a named block (borrowed, valid until destroy), NULL for an
 * anonymous one or NULL. */
MPROC_API const char *mproc_shm_name(const mproc_shm *m);

/* ------------------------------------------------------------------------- */
/** @} @defgroup wait Waiting on many (Python's multiprocessing.connection.wait)
 *
 * Fill `kind` and the matching pointer (or `handle`); on return `ready`
 * tells which are ready: a pipe end with a message or end-of-file, a queue
 * with an item, a process that has exited, a handle of the program's own
 * (MPROC_WAIT_HANDLE) that is ready. Returns the number ready (0 on
 * timeout). MPROC_EINVAL for no items (n == 0), an unknown kind, a NULL
 * object, or a handle that is not open (-1, a closed number); MPROC_ECLOSED
 * for a closed pipe end. Readiness is a hint, as in Python: a queue's item
 * may be taken by another consumer before this one gets it.
 *
 * A handle (MPROC_WAIT_HANDLE), as Python's wait() takes sockets and file
 * descriptors (on Windows, waitable handles): POSIX: any descriptor
 * (socket, pipe, FIFO, terminal, eventfd, pidfd...), ready when a read
 * would not block (data, end-of-file, hang-up or an error). Windows: a
 * HANDLE of a waitable object (process, thread, event, semaphore, mutex,
 * waitable timer...), ready once it is signalled; as with
 * WaitForMultipleObjects, the wait takes what it finds (an auto-reset event
 * is reset, a semaphore decremented, a mutex acquired), so prefer
 * manual-reset events; a pipe or socket handle is no waitable object
 * there. mproc_wait neither reads from a handle nor closes it.
 * @{
 */

/** What an mproc_wait_item waits on. */
enum mproc_wait_kind {
    MPROC_WAIT_CONN = 1,    /**< a pipe end: a message or end-of-file */
    MPROC_WAIT_QUEUE = 2,   /**< a queue: an item */
    MPROC_WAIT_PROCESS = 3, /**< a process: it has exited */
    MPROC_WAIT_HANDLE = 4   /**< a descriptor, socket or HANDLE (above) */
};

/** One object for mproc_wait(). */
typedef struct mproc_wait_item {
    int kind;               /**< enum mproc_wait_kind */
    mproc_conn *conn;       /**< the pipe end, for MPROC_WAIT_CONN */
    mproc_queue *queue;     /**< the queue, for MPROC_WAIT_QUEUE */
    mproc_process *process; /**< the process, for MPROC_WAIT_PROCESS */
    intptr_t handle; /**< the descriptor or HANDLE, for MPROC_WAIT_HANDLE */
    bool ready;      /**< set by mproc_wait(): ready or not */
} mproc_wait_item;

/** Waits until one of the `n` items is ready or the timeout passes (see
 * above). */
MPROC_API int mproc_wait(mproc_wait_item *items, size_t n, int timeout_ms);

/* ------------------------------------------------------------------------- */
/** @} @defgroup pool Pool
 * Python's multiprocessing.Pool and concurrent.futures' ProcessPoolExecutor;
 * design and failure semantics: docs/pool.md.
 *
 *   static int square(const mproc_value *arg, mproc_value **result) {
 *       int64_t x;
 *       if (mproc_value_get_int(arg, &x) != 0) return 1;
 *       *result = mproc_int(x * x);
 *       return 0;
 *   }
 *   mproc_pool *pool;
 *   mproc_value *out;
 *   mproc_pool_create(&pool, NULL);           (workers: usable CPUs)
 *   mproc_pool_map(pool, square, inputs, 0, &out, NULL);
 *   mproc_pool_close(pool);
 *   mproc_pool_join(pool, MPROC_FOREVER);
 *   pool = mproc_pool_destroy(pool);
 *
 * Workers are ordinary mproc children (fork or spawn), started from the
 * thread that calls create, or from a thread inside a pool call when a
 * worker has to be replaced; the pool has no thread of its own. Every call
 * that waits (map, apply, a future's wait or result, an iterator's next,
 * join) drives the pool while it waits: it hands tasks to workers, reads
 * results, notices a worker's death, replaces the worker and runs the
 * callbacks. One thread drives at a time; the others wait for their own
 * results, and one of them takes over when the driver returns. Any thread
 * may submit and collect. Results that nobody waits for stay with the
 * workers until a call drives again.
 *
 * A task function takes one argument value and gives one result value:
 * `int fn(const mproc_value *arg, mproc_value **result)`. It returns 0 and
 * sets *result to a new value (NULL reads as none), or a non-zero code that
 * fails the task; mproc_task_set_message() adds a sentence to the failure.
 * The function runs in a worker: under fork it is the same pointer; under
 * spawn it is found as (module, offset from the module's base) and checked
 * (the module must be the same file), as process targets are; a function
 * that is in no module is MPROC_ERESOLVE at submission, one the worker
 * cannot find fails its tasks with MPROC_ERESOLVE.
 *
 * A task fails alone, and the pool goes on, when its function fails, when
 * its result cannot be encoded (a handle value, too deep or too large:
 * MPROC_EINVAL or MPROC_EMSGSIZE), or when its worker dies while running it
 * (crash, kill, exit: MPROC_EWORKER with the worker's pid and exit code,
 * -N for signal N). The pool knows which task each worker has started:
 * tasks given to a dying worker that it had not started go to other
 * workers, and a new worker takes the dead one's place. With chunks (map's
 * chunksize), the task that was running and the tasks of its chunk that
 * had finished before it (their results were lost with the worker) fail;
 * the rest of the chunk goes to other workers. With the policy
 * MPROC_POOL_FAIL_ALL, a death instead fails every task not yet finished
 * (MPROC_EWORKER) and closes the pool.
 *
 * Outcomes. A call that delivers one task's outcome returns 0 for a result,
 * MPROC_TASK_FAILED (1) for a failed task (its status says why), and a
 * negative code when the call itself fails (bad argument, timeout, closed
 * pool). The status of a failed task: `code` is the function's non-zero
 * return, or MPROC_EWORKER (worker died), MPROC_ERESOLVE, MPROC_EINVAL /
 * MPROC_EMSGSIZE (result not encodable), MPROC_EBADMSG (a malformed message
 * from the worker), MPROC_ECLOSED (the pool was terminated or destroyed
 * before the task finished), MPROC_ECHILD (no worker could start: the
 * initializer failed); `message` a NUL-terminated sentence.
 *
 * Callbacks (a future's completion callback, the progress callback) run in
 * the calling process, in the thread that drives the pool at that moment,
 * one at a time, with no lock of the pool held. Inside a callback, calls
 * that would wait (map, apply, join, terminate, a wait, result or next with
 * a timeout other than 0 on a task not finished) return MPROC_ESTATE at
 * once instead of deadlocking; submitting (apply_async), stats, cancel and
 * calls with timeout 0 work. mproc_pool_destroy inside a callback destroys
 * nothing and returns the pool.
 *
 * Lifecycle: running -> closed (close: no new work, MPROC_ECLOSED; what
 * was submitted still runs) -> joined (join: every task finished and every
 * worker ended), or -> terminated (terminate: workers stopped at once,
 * unfinished tasks fail with MPROC_ECLOSED). destroy terminates a pool that
 * is not joined yet, fails its unfinished futures and iterators, and ends
 * and reaps every worker: nothing is left running and no zombie. Futures
 * and iterators stay valid after their pool is destroyed, and must each be
 * destroyed.
 * @{
 */

/** The most workers one pool may have. */
#define MPROC_POOL_MAX_WORKERS 1024
/** The most items one chunk may have. */
#define MPROC_POOL_MAX_CHUNK ((size_t)1 << 24)
/** The room for a status message, with its NUL (longer ones are cut). */
#define MPROC_TASK_MESSAGE_MAX 128
/** A delivered outcome that is a failed task. */
#define MPROC_TASK_FAILED 1

/** A task function (see above): 0 and *result, or a non-zero code. */
typedef int (*mproc_task_fn)(const mproc_value *arg, mproc_value **result);

/** What a worker's death fails (mproc_pool_options.on_death). */
typedef enum mproc_pool_on_death {
    MPROC_POOL_FAIL_TASK = 0, /**< the task of the dead worker fails alone */
    MPROC_POOL_FAIL_ALL = 1   /**< every unfinished task fails; pool closes */
} mproc_pool_on_death;

/** Why a task failed (see Outcomes above). */
typedef struct mproc_task_status {
    int code;      /**< 0: succeeded; else why it failed (see above) */
    int exitcode;  /**< MPROC_EWORKER: the worker's exit code (-N: signal N) */
    int64_t pid;   /**< the worker that ran the task (0: none) */
    int64_t index; /**< the task's position in its call's input (apply: 0) */
    char message[MPROC_TASK_MESSAGE_MAX]; /**< a sentence, NUL-terminated */
} mproc_task_status;

/** The settings of mproc_pool_create(); zero-filled means the defaults. */
typedef struct mproc_pool_options {
    /** 0: mproc_cpu_count_usable(); else 1..MPROC_POOL_MAX_WORKERS. */
    int workers;
    /** MPROC_START_DEFAULT: the program's default start method. */
    mproc_start_method method;
    /** Run once in every worker before its first task, with `initarg` (a
     * value without handles, copied at create; NULL: none). A non-zero
     * return fails the worker: see mproc_pool_create. */
    mproc_target initializer;
    /** The initializer's argument (borrowed during create). */
    const mproc_value *initarg;
    /** A worker is replaced by a fresh one after this many tasks (a chunk
     * counts as one, as in Python); 0: never. */
    uint64_t maxtasksperchild;
    /** mproc_pool_on_death; 0 is MPROC_POOL_FAIL_TASK. */
    int on_death;
    /** Optional: where create reports a failing initializer (below). */
    mproc_task_status *init_status;
} mproc_pool_options;

/** Starts the workers and waits until each has run its initializer, so that
 * a failing initializer is reported here: MPROC_ECHILD (the pool is not
 * made, every worker ended), with the first failure in opt->init_status
 * (code: the initializer's return, or MPROC_EWORKER if it crashed;
 * message: what it set with mproc_task_set_message). A worker started
 * later to replace one whose initializer then fails is not started again:
 * the pool goes on with fewer workers, and once none is left, the
 * unfinished tasks fail with MPROC_ECHILD. opt may be NULL (defaults).
 * MPROC_EINVAL for a NULL out, workers < 0 or > MPROC_POOL_MAX_WORKERS, an
 * unknown on_death, or an initarg with handles; MPROC_ENOSYS for fork on
 * Windows; MPROC_ERESOLVE for an initializer in no module (spawn); what
 * process start returns when a worker cannot start. */
MPROC_API int mproc_pool_create(mproc_pool **out,
                                const mproc_pool_options *opt);
/** No new work (later submissions: MPROC_ECLOSED); submitted tasks still
 * run. Closing twice is not an error. */
MPROC_API int mproc_pool_close(mproc_pool *pool);
/** After close or terminate (MPROC_ESTATE before): drives the pool until
 * every submitted task has finished, then ends the workers and reaps them.
 * 0, or MPROC_ETIMEDOUT (call again to go on waiting). */
MPROC_API int mproc_pool_join(mproc_pool *pool, int timeout_ms);
/** Stops the workers now (SIGTERM, TerminateProcess) and fails every
 * unfinished task with MPROC_ECLOSED; returns once they are reaped. The
 * pool is closed. Terminating twice is not an error. */
MPROC_API int mproc_pool_terminate(mproc_pool *pool);
/** See the lifecycle above. Returns NULL, or the pool itself when called in
 * one of its callbacks (nothing is destroyed then). */
MPROC_API mproc_pool *mproc_pool_destroy(mproc_pool *pool);
/** The number of workers the pool keeps, or a negative code. */
MPROC_API int mproc_pool_workers(mproc_pool *pool);

/** In a task function or an initializer: the message of its failure (copied,
 * cut to MPROC_TASK_MESSAGE_MAX - 1 bytes), used when it returns non-zero.
 * MPROC_ESTATE outside of one, MPROC_EINVAL for NULL. */
MPROC_API int mproc_task_set_message(const char *message);

/** map: fn over every item of the list `items` (borrowed), in input order.
 * chunksize 0 is automatic: about len / (4 x workers), as Python's map, but
 * no more than 32 KiB of encoded items per chunk (so that a worker's next
 * chunk can be on its way while it runs one); else 1..MPROC_POOL_MAX_CHUNK
 * items go to a worker at once. *results is a new
 * list with one item per input (none for a failed task). Returns the number
 * of failed tasks (0: all succeeded), or a negative code with *results
 * NULL: MPROC_EINVAL for a NULL argument or items not a list,
 * MPROC_ECLOSED after close or terminate, MPROC_ERESOLVE, MPROC_ENOMEM.
 * `failures` may be NULL; else *failures is NULL when nothing failed, or
 * an array (free it with mproc_free) of one status per failed task, in
 * input order. An item that cannot be encoded (a handle) fails the call
 * with MPROC_EINVAL before any task runs. */
MPROC_API int mproc_pool_map(mproc_pool *pool, mproc_task_fn fn,
                             const mproc_value *items, size_t chunksize,
                             mproc_value **results,
                             mproc_task_status **failures);
/** starmap: the same, but every item must be a list, the function's
 * argument list (C has no *args: the function receives the list, as a
 * process target does). An item that is not a list is MPROC_EINVAL for
 * the call, before any task runs. */
MPROC_API int mproc_pool_starmap(mproc_pool *pool, mproc_task_fn fn,
                                 const mproc_value *items, size_t chunksize,
                                 mproc_value **results,
                                 mproc_task_status **failures);

/** apply: runs fn(arg) in a worker and waits. arg (borrowed; NULL: none) is
 * encoded before the call returns. 0 with *result (new, owned by the
 * caller), MPROC_TASK_FAILED with *status filled (status may be NULL), or
 * a negative code. */
MPROC_API int mproc_pool_apply(mproc_pool *pool, mproc_task_fn fn,
                               const mproc_value *arg, mproc_value **result,
                               mproc_task_status *status);

/** A future's completion callback: called once, when the task has finished,
 * failed or been cancelled (see Callbacks above). */
typedef void (*mproc_future_cb)(mproc_future *f, void *arg);

/** apply_async: submits fn(arg) (arg borrowed, encoded before the call
 * returns; NULL: none) and gives a future (destroy it with
 * mproc_future_destroy). cb may be NULL. */
MPROC_API int mproc_pool_apply_async(mproc_pool *pool, mproc_task_fn fn,
                                     const mproc_value *arg, mproc_future_cb cb,
                                     void *cb_arg, mproc_future **out);
/** 0 once finished (or cancelled), MPROC_ETIMEDOUT. Drives the pool. */
MPROC_API int mproc_future_wait(mproc_future *f, int timeout_ms);
/** 1 finished or cancelled, 0 not yet, or a negative code. Drives the pool
 * once without waiting when no other thread drives it. */
MPROC_API int mproc_future_done(mproc_future *f);
/** Waits as mproc_future_wait, then: 0 with *result borrowed from the
 * future (valid until it is destroyed; result may be NULL), or
 * MPROC_TASK_FAILED with *status filled (may be NULL). MPROC_ESTATE for a
 * cancelled future, MPROC_ETIMEDOUT. */
MPROC_API int mproc_future_result(mproc_future *f, const mproc_value **result,
                                  mproc_task_status *status, int timeout_ms);
/** Cancels a task the pool still holds: 0 (the future is done, its result
 * MPROC_ESTATE, its callback runs). MPROC_EBUSY once a worker has it: it
 * has started it, or has been sent it ahead (the pool sends quick tasks,
 * under 2 ms, a few ahead; a slower task waits in the pool until a worker
 * is free). MPROC_ESTATE when it has finished already. */
MPROC_API int mproc_future_cancel(mproc_future *f);
/** Releases the future (the task goes on if it runs; its outcome is
 * dropped). NULL. */
MPROC_API mproc_future *mproc_future_destroy(mproc_future *f);

/** Iterators: imap yields results in input order, imap_unordered as they
 * finish (each exactly once). They take ownership of the list `items`,
 * also on failure. chunksize 0 is 1 (Python's default for imap). Every item
 * is submitted at once, as in Python (the list is in memory already); for
 * a bounded number of tasks in flight, use mproc_pool_imap_gen. An
 * iterator is used by one thread at a time. */
MPROC_API int mproc_pool_imap(mproc_pool *pool, mproc_task_fn fn,
                              mproc_value *items, size_t chunksize,
                              mproc_imap **out);
/** The same, results as they finish (see above). */
MPROC_API int mproc_pool_imap_unordered(mproc_pool *pool, mproc_task_fn fn,
                                        mproc_value *items, size_t chunksize,
                                        mproc_imap **out);

/** A lazily produced input: 1 with *item set (a new value, the pool frees
 * it), 0 at the end, or a negative code that ends the input (next returns
 * it once every task produced before has been delivered). Called in the
 * thread that calls mproc_imap_next, with no lock of the pool held. */
typedef int (*mproc_pool_gen)(void *arg, mproc_value **item);

/** The settings of mproc_pool_imap_gen(); zero-filled means the
 * defaults. */
typedef struct mproc_imap_options {
    size_t chunksize;     /**< 0: 1 */
    bool unordered;       /**< results as they finish */
    bool star;            /**< items are argument lists (a non-list item
                             fails its task with MPROC_EINVAL) */
    size_t max_in_flight; /**< tasks produced and not yet taken by next;
                             0: 4 x workers x chunksize */
} mproc_imap_options;

/** imap over a generator: the input is produced as the iterator advances,
 * never more than max_in_flight tasks ahead, so an endless input runs in
 * bounded memory. opt may be NULL. */
MPROC_API int mproc_pool_imap_gen(mproc_pool *pool, mproc_task_fn fn,
                                  mproc_pool_gen gen, void *gen_arg,
                                  const mproc_imap_options *opt,
                                  mproc_imap **out);
/** The next outcome: 0 with *result (new, owned by the caller),
 * MPROC_TASK_FAILED with *status filled (status may be NULL; index tells
 * which input), MPROC_EEOF once every result has been delivered,
 * MPROC_ETIMEDOUT. Drives the pool. */
MPROC_API int mproc_imap_next(mproc_imap *it, mproc_value **result,
                              mproc_task_status *status, int timeout_ms);
/** Tasks not started are dropped (counted as cancelled), results still to
 * come are discarded. */
MPROC_API mproc_imap *mproc_imap_destroy(mproc_imap *it);

/** Observability. Counts are of tasks (items), since the pool was made:
 * submitted = queued + running + done + failed at every instant, so at
 * the end submitted = done + failed. queued: not yet started by a worker;
 * running: started, result not yet back; failed includes cancelled and
 * terminated tasks (cancelled counts those alone). */
typedef struct mproc_pool_stats {
    uint64_t submitted;        /**< tasks accepted */
    uint64_t queued;           /**< not yet started by a worker */
    uint64_t running;          /**< started, result not yet back */
    uint64_t done;             /**< succeeded */
    uint64_t failed;           /**< failed, cancelled or terminated */
    uint64_t cancelled;        /**< cancelled (counted in failed too) */
    uint64_t workers_alive;    /**< workers started and not ended */
    uint64_t workers_replaced; /**< workers started in place of others */
} mproc_pool_stats;

/** A consistent snapshot, from any thread (it does not drive the pool). */
MPROC_API int mproc_pool_stats_get(mproc_pool *pool, mproc_pool_stats *out);

/** A progress callback: a snapshot of the stats (see Callbacks above). */
typedef void (*mproc_pool_progress_fn)(const mproc_pool_stats *stats,
                                       void *arg);
/** Calls fn with a snapshot after every `every` finished tasks (0: no count
 * trigger), at least every `every_ms` milliseconds while tasks finish (0:
 * no time trigger), and once the pool has nothing left to do. fn NULL
 * removes it. MPROC_EINVAL for a negative every_ms or both triggers 0. */
MPROC_API int mproc_pool_set_progress(mproc_pool *pool,
                                      mproc_pool_progress_fn fn, void *arg,
                                      uint64_t every, int every_ms);

/** @} */

#ifdef __cplusplus
}

#include <initializer_list>

/** @cond INTERNAL */
/* What MPROC_LIST expands to in C++: not part of the API, no symbol of the
 * library (an inline function of the header). */
inline mproc_value *mproc__list_cxx(std::initializer_list<mproc_value *> items)
{
    return mproc_list_from(items.begin(), items.size());
}
/** @endcond */
#endif

#endif /* MPROC_H */
