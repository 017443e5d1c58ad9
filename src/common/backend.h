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
 * Map of this file: handles and errors; processes; process identity and
 * liveness; byte channels; shared memory; mutexes and semaphores; wait
 * words; thread cancellation; time; test hooks.
 */
#ifndef MPROC_BACKEND_H
#define MPROC_BACKEND_H

#include "atomics.h"
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
    /* Set by mproc__os_fork in the child: its standard input is the null
     * device now (false with inherit_stdin, or where there is none). */
    bool stdin_null;
    /* Backend-private, set by mproc__os_spawn / mproc__os_fork: POSIX
     * serialises reaping and signalling of this child with it (a spin lock
     * per child, so a fork child inherits no global lock state); Windows
     * may ignore it. */
    atomic_int lock;
    /* Backend-private; callers initialise it to MPROC__BADHANDLE along
     * with `handle`. POSIX (Linux): mproc__os_spawn / mproc__os_fork set it
     * for a daemon child to its lifeline, the write end of a pipe that only
     * this process holds and whose end-of-file kills the child (so the
     * child dies with this process, whichever thread started it);
     * mproc__os_child_release closes it. Windows leaves it alone (a job
     * object does that job). */
    mproc__handle lifeline;
    /* Backend-private; callers initialise it to MPROC__BADHANDLE along
     * with `handle`. Windows: mproc__os_spawn sets it to the child's
     * interrupt event (mproc__os_signal with MPROC__SIGINT sets it);
     * mproc__os_child_release closes it. POSIX leaves it alone. */
    mproc__handle intr;
} mproc__child;

/* What a spawned child gets. Every spawned child starts alike, daemon or
 * not: an empty signal mask and default dispositions for SIGPIPE, SIGTERM,
 * SIGINT and SIGCHLD (POSIX), exactly the handles listed, the null device
 * as its standard input unless inherit_stdin, and this process's
 * environment plus `env`. */
typedef struct mproc__spawn_req {
    const char *exe;         /* UTF-8 path; NULL: this program's executable */
    const char *const *argv; /* argv[0..], NULL-terminated */
    const mproc__handle *inherit; /* exactly these reach the child (plus the
                                     three standard handles) */
    size_t n_inherit;
    bool daemon;        /* the child dies with this process, however it ends */
    bool inherit_stdin; /* false: the child's stdin is the null device */
    /* One "NAME=value" entry added to the child's environment (replacing
     * any entry of that name there), or NULL. This process's own
     * environment is not changed. */
    const char *env;
} mproc__spawn_req;

/* Starts a child; an executable that cannot start is MPROC_EEXEC (the
 * backend learns it before returning: a close-on-exec pipe on POSIX,
 * CreateProcessW's result on Windows). */
int mproc__os_spawn(const mproc__spawn_req *req, mproc__child *out);

/* POSIX: fork. In the parent returns 0 with out->pid > 0; in the child
 * returns 0 with out->pid == 0, after closing every descriptor other than
 * the standard three and `keep`, giving it the null device as its
 * standard input unless `inherit_stdin` (out->stdin_null says whether it
 * did; the stdio buffer of stdin is the caller's to discard), and
 * arranging to die with the parent if `daemon`.
 * Windows: MPROC_ENOSYS. */
int mproc__os_fork(mproc__child *out, const mproc__handle *keep, size_t nkeep,
                   bool daemon, bool inherit_stdin);

/* Waits for the child to exit and reaps it: 0 with c->reaped and
 * c->exitcode set, or MPROC_ETIMEDOUT. Exit codes read as on POSIX: a
 * child terminated by mproc__os_signal(MPROC__SIGTERM) reads -15 on every
 * platform, SIGKILL -9. */
int mproc__os_wait(mproc__child *c, int timeout_ms);

#define MPROC__SIGTERM 15
#define MPROC__SIGKILL 9
#define MPROC__SIGINT 2
/* Sends SIGTERM, SIGKILL or SIGINT (Windows: TerminateProcess with a code
 * that mproc__os_wait reads back as -15 / -9; for SIGINT, sets the child's
 * interrupt event, see mproc__os_interrupt_listen). A reaped or exited
 * child is 0. */
int mproc__os_signal(mproc__child *c, int sig);

/* In a spawned child, once its bootstrap channel has been verified: makes
 * mproc__os_signal(c, MPROC__SIGINT) of the parent reach this process as
 * SIGINT would. POSIX: nothing to do (the kernel delivers SIGINT).
 * Windows: mproc__os_spawn gave the child an event (listed in its handles)
 * and its value in the environment entry MPROC_INTERRUPT; this removes the
 * entry and waits for the event in a thread-pool wait, whose callback
 * applies the C runtime's disposition of SIGINT: SIG_DFL ends the process
 * with the code that reads as -2, SIG_IGN does nothing, a handler is
 * called (after the disposition is reset to SIG_DFL, as the C runtime
 * does for a Ctrl+C). 0, or a negative code (the child then runs without
 * interrupts). */
int mproc__os_interrupt_listen(void);

/* Releases the child's handle (not the process). */
void mproc__os_child_release(mproc__child *c);

int64_t mproc__os_getpid(void);
/* The pid of the parent of this process (0 when unknown). */
int64_t mproc__os_getppid(void);
/* 1 if the process `pid` (this process's parent) still runs, else 0. */
int mproc__os_parent_alive(int64_t pid);

/* This program's executable, malloc'ed UTF-8 path. */
int mproc__os_self_exe(char **path);
/* The file spawn should start as this program, malloc'ed UTF-8 path, found
 * once at mproc_init, or NULL for the backend's default (/proc/self/exe,
 * GetModuleFileNameW). POSIX makes argv0 (the path the program was run by,
 * searched in PATH when it has no slash) absolute and gives it when it
 * names this very program's file (same device and inode), so that a
 * program run under a loader such as valgrind, where /proc/self/exe names
 * the loader, starts itself. Windows: always NULL. */
int mproc__os_spawn_path(const char *argv0, char **path);

/* Removes NAME from this process's environment (the C library's copy and,
 * on Windows, the process's own block that children inherit). Not
 * thread-safe against getenv in other threads, as setenv is not. */
void mproc__os_unsetenv(const char *name);

/* 1 when an atexit handler that the library registers itself runs at
 * exit(), like the program's own, while the program's other threads still
 * run (static builds; ELF shared libraries); 0 in a Windows DLL, where the
 * C runtime runs a DLL's atexit handlers at DLL_PROCESS_DETACH, after
 * ExitProcess stopped every other thread (perhaps inside the library,
 * holding a lock), and also after _exit(). There the exit hook is
 * registered by the program's own module (mproc_init, a macro). */
#if defined(_WIN32) && !defined(MPROC_STATIC)
#define MPROC__OS_LIBRARY_ATEXIT 0
#else
#define MPROC__OS_LIBRARY_ATEXIT 1
#endif

int mproc__os_cpu_count(void);
int mproc__os_cpu_count_usable(void);

/* A function as (module, offset from the module's base): the module string
 * is malloc'ed and opaque to common code (it names the file and, where the
 * platform can, its identity). MPROC_ERESOLVE when the address is in no
 * module. */
int mproc__os_locate(const void *fn, char **module, uint64_t *offset);
/* The inverse in a spawned child, for a frame from the trusted parent
 * (docs/security.md): finds the module among those this process has
 * already mapped (it never loads one: no code of a new file may run),
 * checks that it is the same file, and that module + offset is the entry
 * of a function this process can verify on its own (POSIX: the start of a
 * function symbol of the module's dynamic or full symbol table; Windows:
 * the start of a primary unwind entry or of an export). The address, or
 * MPROC_ERESOLVE. */
int mproc__os_resolve(const char *module, uint64_t offset, void **fn);

/* The spawn bootstrap's checks in the child (docs/security.md). */

/* 1 when this program runs with privileges its invoker may lack, so that a
 * frame must not make it call anything: POSIX: setuid, setgid, file
 * capabilities or any other secure-exec (AT_SECURE, issetugid(), or real
 * and effective ids that differ); Windows: a token of a higher integrity
 * level than the parent's (an elevated child of a process that is not),
 * or one that cannot be compared. Else 0. */
int mproc__os_secure_exec(void);
/* 0 when `h` is the child's end of a byte channel whose other end belongs
 * to the process that started this one and runs as this process's real
 * user: POSIX: an AF_UNIX stream socket whose peer credentials (taken when
 * the pair was created) name getppid() and getuid(); Windows: the client
 * end of a named pipe whose server process is the parent, whose user SID
 * is this process's. Sets *parent to the parent's pid. MPROC_EPERM
 * otherwise (also for a value that is no handle at all). Nothing is read
 * from or written to h. */
int mproc__os_boot_channel(mproc__handle h, int64_t *parent);

/* Ends the process now with `code`, without atexit handlers (stdio is
 * flushed by the caller). */
void mproc__os_exit(int code);

/* ---------------------------------------------------------------------------
 * Process identity and liveness
 *
 * Liveness is never guessed from a pid alone (DESIGN.md section 7): pids are
 * reused, and on Linux a process whose main thread called pthread_exit shows
 * as a zombie while its other threads run. An identity is a pid plus the
 * start time the OS keeps for that process, so it names one process for
 * ever, in every process of the machine (identities are plain values that
 * live in shared memory: lock owners, barrier parties, condition waiters):
 *
 * - Linux: /proc/PID/stat, the start time (clock ticks since boot) and the
 *   state with the thread count (a zombie leader with live threads runs);
 * - Windows: the creation time (GetProcessTimes) and a zero wait on the
 *   process handle;
 * - macOS: proc_pidinfo(PROC_PIDTBSDINFO), start time and status;
 * - FreeBSD, OpenBSD: sysctl(KERN_PROC_PID), ki_start / p_ustart and the
 *   state.
 *
 * None of these functions is a pthread cancellation point (they may be
 * called with a lock held).
 */

typedef struct mproc__proc_id {
    int64_t pid; /* > 0 */
    /* The OS's start time of that process, in the OS's own units (compared,
     * never converted). 0 only where the OS does not tell at all (Linux
     * without /proc): then the identity is the pid alone and reuse goes
     * undetected. */
    uint64_t start;
} mproc__proc_id;

/* This process's identity. Cheap: computed once, and again in a fork
 * child (no system call on later calls). */
mproc__proc_id mproc__os_proc_self(void);
/* The identity of the process that has `pid` now: 0; MPROC_ENOENT when no
 * running process has it (none, or a zombie); MPROC_EPERM when one exists
 * that the OS will not describe to us (another user's, hidden). */
int mproc__os_proc_lookup(int64_t pid, mproc__proc_id *id);
/* 1 while the process `id` runs, also when its main thread has ended and
 * other threads still run; 0 once it has ended: no process has the pid, it
 * is a zombie, or the pid belongs to a later process now. Never 0 for a
 * running process: when the OS does not tell (MPROC_EPERM above), 1. */
int mproc__os_proc_alive(const mproc__proc_id *id);

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
/* Reads up to na + nb > 0 bytes into a, then b, as chan_read does: a frame
 * header and its payload into two places with one system call where the
 * platform has a scatter read. */
int64_t mproc__os_chan_readv(mproc__handle h, void *a, size_t na, void *b,
                             size_t nb);
/* Copies up to n > 0 bytes from the head of the channel into buf WITHOUT
 * consuming them: the next read returns the same bytes. A peek that finds
 * the channel empty waits up to timeout_ms for data (MPROC_FOREVER: without
 * limit, 0: not at all). Returns the count copied, 0 when nothing arrived
 * in time, MPROC_EEOF once the peer has closed and nothing is left, or a
 * negative code. (POSIX: poll, then recv with MSG_PEEK; Windows:
 * PeekNamedPipe.) */
int64_t mproc__os_chan_peek(mproc__handle h, void *buf, size_t n,
                            int timeout_ms);
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
/* Handles sent over a channel to a running process (mproc_conn_send of a
 * value holding handles, mproc_conn_send_handle; docs/wire-format.md).
 *
 * POSIX: the descriptors travel as SCM_RIGHTS with the first byte of the
 * frame, and arrive with the read that takes it. Windows has nothing like
 * it, and the sender cannot know which process holds the other end of a
 * pipe now (ends move between processes), so the receiver pulls: the
 * sender duplicates each handle for the transfer, the frame names the
 * sender's pid and those values, and the receiver takes them with
 * DuplicateHandle(DUPLICATE_CLOSE_SOURCE) out of the sender, which must
 * still run then (else the message arrives without its handles).
 *
 * pass_prepare: refuses (MPROC_EPERM) a channel whose other end belongs to
 * another user, as the system recorded it when the connection was made
 * (POSIX: the socket's peer credentials; Windows: the user of the process
 * that opened the pipe's other end, when it still runs); then sets
 * *sender and values[0..n): POSIX: getpid() and zeros; Windows: the
 * duplicates. pass_abort undoes it after a failed write (Windows: closes
 * the duplicates). write_pass writes all `len` bytes as chan_write does,
 * with the n handles attached (POSIX; Windows: a plain write). read_fds is
 * chan_readv that also takes the descriptors that came with the bytes
 * (POSIX: up to `cap`, close-on-exec, above 2, any beyond `cap` closed;
 * Windows: none). pass_take turns what a frame names into handles of this
 * process: POSIX: the n descriptors received (rx, nrx: n must be nrx);
 * Windows: pulled from `sender` (nrx 0). MPROC_EBADMSG when they are not
 * there (nothing taken then), MPROC_EPERM for a sender of another user. */
#define MPROC__PASS_MAX MPROC_PASS_MAX
int mproc__os_pass_prepare(mproc__handle chan, const mproc__handle *hs,
                           size_t n, int64_t *sender, int64_t *values);
void mproc__os_pass_abort(const int64_t *values, size_t n);
int mproc__os_chan_write_pass(mproc__handle chan, const void *buf, size_t len,
                              const mproc__handle *hs, size_t n);
int64_t mproc__os_chan_read_fds(mproc__handle chan, void *a, size_t na, void *b,
                                size_t nb, mproc__handle *fds, size_t cap,
                                size_t *nfds);
int mproc__os_pass_take(int64_t sender, const int64_t *values, size_t n,
                        const mproc__handle *rx, size_t nrx,
                        mproc__handle *out);

/* Makes a connection of the program's own a channel (mproc_conn_adopt):
 * 0 with *h the handle to use, or MPROC_EINVAL when `handle` is not open
 * or is no connection the channel calls can drive (POSIX: a connected
 * SOCK_STREAM socket, which peek needs, or SOCK_SEQPACKET, a record
 * channel; Windows: a named pipe opened for
 * overlapped I/O), leaving it alone. POSIX makes it close-on-exec and
 * moves it above 2 (posix.h), so *h may differ from `handle`. */
int mproc__os_chan_adopt(mproc__handle handle, mproc__handle *h);
/* Record channels, for the Pipe (docs/wire-format.md): a pair as
 * chan_pair makes, but every write of up to 64 KiB + 1 bytes is one record
 * (chan_writev's two parts included) and every read takes at most one
 * record, whole when the buffers hold it (chan_readv's two included; the
 * rest of a longer one is lost: a caller gives one byte more than it
 * expects), so a read can never take bytes of the next message. POSIX:
 * AF_UNIX SOCK_SEQPACKET, where the system has it for socket pairs;
 * Windows: a message-mode named pipe whose ends read messages.
 * MPROC_ENOSYS where it has not (macOS): chan_pair then.
 * chan_records: 1 for a record channel, 0 for a byte stream (Windows: 1
 * for a pipe handle that reads in message mode). */
int mproc__os_rec_pair(mproc__handle h[2], bool duplex);
int mproc__os_chan_records(mproc__handle h);

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
 * exited. Sets ready[i]; returns how many are ready (0 on timeout).
 * mproc_wait passes a program's own handle (MPROC_WAIT_HANDLE) as a
 * channel on POSIX (any descriptor: poll) and as a process handle on
 * Windows (any waitable object: signalled), see
 * MPROC__OS_RAW_IS_OBJECT. */
int mproc__os_wait_many(const mproc__handle *h, const bool *is_process,
                        size_t n, int timeout_ms, bool *ready);

/* 0 when h is an open descriptor (POSIX) or handle (Windows) of this
 * process, else MPROC_EINVAL (-1, a number no descriptor has, a closed
 * handle). Nothing is done with it. */
int mproc__os_handle_check(mproc__handle h);

/* How mproc__os_wait_many waits on a program's own handle: 1 as an object
 * (Windows: signalled), 0 as a channel (POSIX: readable). */
#if defined(_WIN32)
#define MPROC__OS_RAW_IS_OBJECT 1
#else
#define MPROC__OS_RAW_IS_OBJECT 0
#endif

/* ---------------------------------------------------------------------------
 * Shared memory: anonymous, passed to children by handle, gone when the last
 * process that maps it has ended (no name left behind).
 */

int mproc__os_shm_create(size_t size, mproc__handle *h, void **addr);
int mproc__os_shm_map(mproc__handle h, size_t size, void **addr);
void mproc__os_shm_unmap(void *addr, size_t size);

/* Named segments (mproc_shm_create_named, mproc_shm_attach,
 * mproc_shm_unlink). `name` has been checked by common code (1 to
 * MPROC_SHM_NAME_MAX characters of A-Z a-z 0-9 . _ -, not starting with
 * '.'); a backend maps it into its namespace (POSIX: shm_open's "/name";
 * Windows: a section in the session's namespace). A named segment is
 * `map` bytes long, a multiple of mproc__os_page_size(), and ends in an
 * mproc__shm_trailer that tells the size given at create, so that attach
 * reports it exactly where the system rounds sizes up to pages (macOS,
 * Windows). The segment is zero-filled and only this process's user may
 * open it. mproc__os_shm_map and mproc__os_shm_unmap work on it with
 * `map` as the size.
 *
 * create: exclusive, MPROC_EEXIST when the name exists (the existing
 * segment is not touched); the trailer is written before any other
 * process can attach. attach: MPROC_ENOENT for a name that does not exist
 * or was unlinked, MPROC_EPERM for a segment of another user (or one that
 * others may open), MPROC_ECORRUPT when the trailer does not fit the
 * segment. unlink: removes the name if it still names this very segment
 * (else MPROC_ENOENT: unlinked already, perhaps made anew since by
 * someone else, which is left alone); the segment stays mapped where it is.
 * A name lives until it is unlinked (POSIX: also after every process that
 * had it has ended; Windows: only while some process has it, as the system
 * keeps no object without a handle). */
int mproc__os_shm_create_named(const char *name, size_t size, mproc__handle *h,
                               void **addr, size_t *map);
int mproc__os_shm_attach_named(const char *name, mproc__handle *h, void **addr,
                               size_t *size, size_t *map);
int mproc__os_shm_unlink_named(const char *name, mproc__handle h, void *addr,
                               size_t map);

/* The system's page size (a power of two). */
size_t mproc__os_page_size(void);
/* Fills buf with n unpredictable bytes (the system's random source). */
int mproc__os_random(void *buf, size_t n);

/* The last bytes of a named segment. Any process that maps the segment can
 * write them, so a reader believes only what fits its mapping
 * (mproc__shm_trailer_size). `state` is MPROC__SHM_LIVE once the segment is
 * complete, MPROC__SHM_UNLINKED once unlinked (Windows, where the name
 * outlives unlink while any process has the segment). */
typedef struct mproc__shm_trailer {
    uint32_t magic;
    uint32_t state;
    uint64_t size;
    uint64_t reserved[2];
} mproc__shm_trailer;

#define MPROC__SHM_TRAILER_MAGIC 0x4e53504du /* "MPSN" */
#define MPROC__SHM_LIVE 1u
#define MPROC__SHM_UNLINKED 2u

/* The length of a named segment of `size` bytes: size plus the trailer,
 * rounded up to a page; 0 when that overflows. */
static inline size_t mproc__shm_map_len(size_t size, size_t page)
{
    size_t need = size + sizeof(mproc__shm_trailer);
    if (size == 0 || need < size || need > SIZE_MAX - page)
        return 0;
    return (need + page - 1) & ~(page - 1);
}

static inline mproc__shm_trailer *mproc__shm_trailer_of(void *addr, size_t map)
{
    return (mproc__shm_trailer *)(void *)((unsigned char *)addr + map -
                                          sizeof(mproc__shm_trailer));
}

/* The size a trailer claims, if it fits a mapping of `map` bytes (the
 * segment's own length, from the system): 0, or MPROC_ECORRUPT. */
static inline int mproc__shm_trailer_size(const mproc__shm_trailer *t,
                                          size_t map, size_t page, size_t *size)
{
    uint64_t s = t->size;
    if (t->magic != MPROC__SHM_TRAILER_MAGIC || s == 0 ||
        s > (uint64_t)SIZE_MAX || mproc__shm_map_len((size_t)s, page) != map)
        return MPROC_ECORRUPT;
    *size = (size_t)s;
    return 0;
}

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
 * to refuse it. When the owner dies (process or thread, also by thread
 * cancellation) holding it, the next lock returns MPROC_EOWNERDEAD with the
 * mutex held and usable, within 100 ms also for a locker already blocked
 * (POSIX: a robust mutex made consistent, or where robust mutexes are
 * missing a wait word whose owner is a process identity and a thread, see
 * src/posix/platform.h; Windows: WAIT_ABANDONED). Neither lock nor unlock
 * is a pthread cancellation point. */
int mproc__os_mutex_init(void *mem, mproc__handle *h);
int mproc__os_mutex_open(void *mem, mproc__handle h);
/* 0, MPROC_EOWNERDEAD (acquired), MPROC_EBUSY (timeout 0), ETIMEDOUT. */
int mproc__os_mutex_lock(void *mem, mproc__handle h, int timeout_ms);
/* 0, or MPROC_ENOTOWNER when the calling thread does not hold it. */
int mproc__os_mutex_unlock(void *mem, mproc__handle h);
/* Who holds the mutex, for inspection (mproc_lock_owner): 1 held, 0 free,
 * or a negative code; when held, *pid is the owner's process and *tid its
 * thread (mproc__os_thread_id), either 0 when the backend cannot tell yet
 * (the owner is between taking the mutex and recording itself). A
 * snapshot: the mutex may change hands at once. It never takes the mutex
 * and never recovers one whose owner died: that reads as free, and the
 * next lock still gets MPROC_EOWNERDEAD. POSIX: the kernel's owner thread
 * id of the robust mutex (its process from /proc), or the word mutex's
 * owner identity (a dead one reads as free); Windows: NtQueryMutant (an
 * abandoned mutex is free) and the owner hint, whose thread's process
 * GetProcessIdOfThread tells. */
int mproc__os_mutex_peek(void *mem, mproc__handle h, int64_t *pid,
                         int64_t *tid);
void mproc__os_mutex_destroy(void *mem, mproc__handle h);

/* 1 where the mutex above is a kernel object, so that every lock and
 * unlock is a system call even without contention (Windows: a mutex
 * handle; under Wine each is a round trip to the wineserver); 0 where an
 * uncontended lock and unlock stay in user space (POSIX: a robust pthread
 * mutex or the word mutex). Common code whose locks are taken on every
 * operation (the queue's side locks) uses its process lock instead where
 * it is 1 (internal.h, mproc__plock_*). */
#if defined(_WIN32)
#define MPROC__OS_MUTEX_KERNEL 1
#else
#define MPROC__OS_MUTEX_KERNEL 0
#endif

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
 * none: a wait word and counts live in `mem`).
 *
 * wait: called with the mutex held by the calling thread; releases it while
 * waiting and returns with it held again: 0 when woken (spurious wake-ups
 * are allowed: callers re-check their predicate), MPROC_ETIMEDOUT, or
 * MPROC_EOWNERDEAD (woken; the mutex was re-acquired after its owner died).
 * Timeout 0 returns MPROC_ETIMEDOUT at once without releasing the mutex.
 * signal (wake up to n waiters) and broadcast are called with the same
 * mutex held, so a backend may keep its waiter counts in `mem` under it.
 * Wake-ups go to threads that were waiting when signal or broadcast was
 * called: a thread that starts waiting later never takes one of them, even
 * from a waiter that released the mutex and has not slept yet (row L14). A
 * waiter that dies while waiting may swallow one wake-up; it must not block
 * the signaller, nor cost anything for ever. wait is not a cancellation
 * point. */
#define MPROC__OS_COND_SIZE 2048
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
 * POSIX: futex(2) where the platform has it (src/posix/platform.h), else a
 * polled wait that still honours the timeout. Windows (WaitOnAddress does
 * not work across processes): the rest of the word holds the number of
 * waiters not yet granted a wake-up; word_wake grants min(n, that) and
 * releases as many tokens of the semaphore, so a wake with no waiter costs
 * nothing, and a waiter killed while waiting costs one stale token, which
 * the next waiter absorbs (one early return) before the count is exact
 * again. A wait is never a pthread cancellation point (callers may hold a
 * lock).
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

/* Gives the rest of this thread's time slice to another runnable thread
 * (sched_yield, SwitchToThread): a short wait for a lock holder or a peer
 * that may be preempted on a machine with fewer cores than processes. */
void mproc__os_yield(void);

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

/* A monotonic clock in nanoseconds with sub-millisecond resolution (POSIX:
 * CLOCK_MONOTONIC; Windows: QueryPerformanceCounter). Every deadline is
 * kept in it, so that a positive timeout never expires early: a deadline
 * taken from a millisecond clock that truncates can lie up to 1 ms before
 * the caller's start plus its timeout. */
int64_t mproc__os_now_ns(void);
/* The same clock in whole milliseconds, rounded down. A deadline taken
 * from it must be now_ms() + timeout + 1 to never expire early; prefer
 * mproc__os_now_ns. */
int64_t mproc__os_now_ms(void);
/* Sleeps at least ms milliseconds, measured on the clock above (0: gives
 * up the time slice). */
void mproc__os_sleep_ms(int ms);

/* Deadlines on that clock, for both backends and common code:
 * mproc__deadline_ns(timeout) is -1 for MPROC_FOREVER, else the instant the
 * timeout ends; mproc__left_ms(deadline) is the time left as a timeout for
 * a wait that counts in milliseconds, rounded up (a wait of that many
 * milliseconds never ends before the deadline), MPROC_FOREVER for -1 and 0
 * only once the deadline has passed. */
static inline int64_t mproc__deadline_ns(int timeout_ms)
{
    if (timeout_ms < 0)
        return -1;
    return mproc__os_now_ns() + (int64_t)timeout_ms * 1000000;
}

static inline int mproc__left_ms(int64_t deadline_ns)
{
    int64_t left;
    if (deadline_ns < 0)
        return MPROC_FOREVER;
    left = deadline_ns - mproc__os_now_ns();
    if (left <= 0)
        return 0;
    left = (left + 999999) / 1000000;
    return left > INT32_MAX ? INT32_MAX : (int)left;
}

/* ---------------------------------------------------------------------------
 * Test hooks
 *
 * A test sets mproc__test_hook to be called at the points below, to force
 * an interleaving that the scheduler would give only rarely (row L14: a
 * waiter paused between releasing the mutex and sleeping). NULL in
 * production: one load and a predicted branch, on slow paths only. Set it
 * before the threads that may call it exist.
 */
typedef void (*mproc__hook_fn)(int point);
extern mproc__hook_fn mproc__test_hook;

/* cond_wait: the mutex is released, the waiter has not slept yet. */
#define MPROC__HOOK_COND_UNLOCKED 1
/* mutex_unlock: the caller passed the owner check, the mutex is not yet
 * released (Windows: before ReleaseMutex). */
#define MPROC__HOOK_MUTEX_RELEASE 2
/* pool: the engine is about to send a chunk to a worker (with the pool's
 * lock held). */
#define MPROC__HOOK_POOL_SEND 3

#define MPROC__HOOK(point)                                                     \
    do {                                                                       \
        if (mproc__test_hook != NULL)                                          \
            mproc__test_hook(point);                                           \
    } while (0)

#endif /* MPROC_BACKEND_H */
