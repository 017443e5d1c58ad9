/*
 * Win32 backend: byte channels over named pipes.
 *
 * Why named pipes: anonymous pipes (CreatePipe) cannot do overlapped I/O, so
 * a read could not be given up after a timeout, and polling them needs a
 * thread per wait. A named pipe with one instance, connected at once to a
 * client opened by this process, is a private pipe with overlapped I/O.
 *
 * Names are \\.\pipe\mproc-<pid>-<counter>-<128 random bits>. Pipe names
 * can be listed by anyone, so the name is not what keeps others out: the
 * pipe has one instance, which our own client takes at once; if anyone else
 * got there first our CreateFileW fails and the pipe is thrown away.
 * FILE_FLAG_FIRST_PIPE_INSTANCE and PIPE_REJECT_REMOTE_CLIENTS are set for
 * Windows (Wine accepts and ignores both, WINE-NOTES).
 *
 * Readiness: a zero-byte overlapped ReadFile completes when data arrives or
 * the peer closes, without consuming anything. chan_poll and wait_many wait
 * on it and cancel it (CancelIoEx) on timeout; PeekNamedPipe gives the
 * answer without waiting. Both hold under Wine 8 as on Windows.
 *
 * Map: per-thread I/O event; one overlapped operation; pair; read, scatter
 * read and peek; write; gather write; readiness (peek, zero-byte read);
 * poll; wait_many.
 */
#include "win32.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What a writer may queue before a reader takes it: like a POSIX socket
 * pair's (about 200 KiB on Linux), so that a process may send itself a few
 * messages before reading them on both backends. */
#define PIPE_BUFFER ((size_t)256 * 1024)
/* The largest single ReadFile / WriteFile (a DWORD count). */
#define IO_CHUNK ((size_t)1 << 30)

/* ---------------------------------------------------------------------------
 * A manual-reset event per thread for blocking overlapped I/O, made on first
 * use and closed when the thread ends (fiber-local storage has a destructor;
 * thread-local storage has none).
 */

static INIT_ONCE fls_once = INIT_ONCE_STATIC_INIT;
static DWORD fls_index = FLS_OUT_OF_INDEXES;

static void WINAPI event_free(void *ev)
{
    if (ev != NULL)
        CloseHandle(ev);
}

static BOOL CALLBACK fls_init(INIT_ONCE *once, void *param, void **ctx)
{
    (void)once;
    (void)param;
    (void)ctx;
    fls_index = FlsAlloc(event_free);
    return TRUE;
}

#if !defined(MPROC_STATIC)
/* The DLL build: a FreeLibrary of this DLL (not the process's end) frees
 * the slot, which runs its destructor for every thread now, while the code
 * is still there, instead of at each thread's end after the unload. */
BOOL WINAPI DllMain(HINSTANCE inst, DWORD reason, void *reserved);
BOOL WINAPI DllMain(HINSTANCE inst, DWORD reason, void *reserved)
{
    (void)inst;
    if (reason == DLL_PROCESS_DETACH && reserved == NULL &&
        fls_index != FLS_OUT_OF_INDEXES)
        FlsFree(fls_index);
    return TRUE;
}
#endif

/* The calling thread's event, or NULL (then the caller makes its own). */
static HANDLE thread_event(void)
{
    HANDLE ev;

    InitOnceExecuteOnce(&fls_once, fls_init, NULL, NULL);
    if (fls_index == FLS_OUT_OF_INDEXES)
        return NULL;
    ev = FlsGetValue(fls_index);
    if (ev == NULL) {
        ev = CreateEventW(NULL, TRUE, FALSE, NULL);
        if (ev != NULL && !FlsSetValue(fls_index, ev)) {
            CloseHandle(ev);
            ev = NULL;
        }
    }
    return ev;
}

/* ---------------------------------------------------------------------------
 * One overlapped ReadFile / WriteFile, waited for in full. Returns TRUE with
 * the count, or FALSE with GetLastError() set.
 */

static BOOL io_wait(HANDLE h, bool write, void *buf, DWORD n, DWORD *done)
{
    OVERLAPPED ov;
    HANDLE own = NULL;
    BOOL ok;
    DWORD err;

    memset(&ov, 0, sizeof ov);
    ov.hEvent = thread_event();
    if (ov.hEvent == NULL) {
        own = CreateEventW(NULL, TRUE, FALSE, NULL);
        if (own == NULL)
            return FALSE;
        ov.hEvent = own;
    }
    if (write)
        ok = WriteFile(h, buf, n, NULL, &ov);
    else
        ok = ReadFile(h, buf, n, NULL, &ov);
    if (ok || GetLastError() == ERROR_IO_PENDING)
        ok = GetOverlappedResult(h, &ov, done, TRUE);
    if (own != NULL) {
        err = GetLastError();
        CloseHandle(own);
        SetLastError(err);
    }
    return ok;
}

/* ---------------------------------------------------------------------------
 * Pair
 */

/* Owner-only access: a DACL with one entry, the user of this process's
 * token. Made once. Without it (token unreadable) no pipe is made: the
 * default DACL of a named pipe lets everyone read (docs/security.md). */
static INIT_ONCE sd_once = INIT_ONCE_STATIC_INIT;
static SECURITY_ATTRIBUTES *pipe_sa;
static DWORD pipe_sa_error;

static BOOL CALLBACK sd_init(INIT_ONCE *once, void *param, void **ctx)
{
    static SECURITY_ATTRIBUTES sa;
    static SECURITY_DESCRIPTOR sd;
    static union {
        TOKEN_USER user;
        unsigned char space[sizeof(TOKEN_USER) + SECURITY_MAX_SID_SIZE];
    } tu;
    static union {
        ACL acl;
        unsigned char space[sizeof(ACL) + sizeof(ACCESS_ALLOWED_ACE) +
                            SECURITY_MAX_SID_SIZE];
    } acl;
    HANDLE token;
    DWORD len = 0;
    BOOL ok;

    (void)once;
    (void)param;
    (void)ctx;
    if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token)) {
        pipe_sa_error = GetLastError();
        return TRUE;
    }
    ok = GetTokenInformation(token, TokenUser, &tu, sizeof tu, &len);
    CloseHandle(token);
    if (!ok || !InitializeAcl(&acl.acl, sizeof acl, ACL_REVISION) ||
        !AddAccessAllowedAce(&acl.acl, ACL_REVISION, GENERIC_ALL,
                             tu.user.User.Sid) ||
        !InitializeSecurityDescriptor(&sd, SECURITY_DESCRIPTOR_REVISION) ||
        !SetSecurityDescriptorDacl(&sd, TRUE, &acl.acl, FALSE)) {
        pipe_sa_error = GetLastError();
        return TRUE;
    }
    sa.nLength = sizeof sa;
    sa.lpSecurityDescriptor = &sd;
    sa.bInheritHandle = FALSE;
    pipe_sa = &sa;
    return TRUE;
}

static volatile LONG pipe_counter;

static int make_name(wchar_t *name, size_t cap)
{
    uint64_t r[2];
    int rc = mproc__win_random(r, sizeof r);

    if (rc != 0)
        return rc;
    swprintf(name, cap, L"\\\\.\\pipe\\mproc-%lu-%ld-%016llx%016llx",
             (unsigned long)GetCurrentProcessId(),
             (long)InterlockedIncrement(&pipe_counter),
             (unsigned long long)r[0], (unsigned long long)r[1]);
    return 0;
}

/* One attempt: 0, a negative code, or 1 to try another name. */
static int pair_once(mproc__handle h[2], bool duplex)
{
    wchar_t name[96];
    HANDLE server, client;
    OVERLAPPED ov;
    DWORD open_mode, access, err, dummy;
    BOOL ok;
    int rc;

    if ((rc = make_name(name, sizeof name / sizeof name[0])) != 0)
        return rc;
    InitOnceExecuteOnce(&sd_once, sd_init, NULL, NULL);
    if (pipe_sa == NULL)
        return pipe_sa_error != 0 ? mproc__os_error((long)pipe_sa_error)
                                  : MPROC_EUNKNOWN;
    open_mode = (duplex ? PIPE_ACCESS_DUPLEX : PIPE_ACCESS_INBOUND) |
                FILE_FLAG_OVERLAPPED | FILE_FLAG_FIRST_PIPE_INSTANCE;
    server =
        CreateNamedPipeW(name, open_mode,
                         PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT |
                             PIPE_REJECT_REMOTE_CLIENTS,
                         1, (DWORD)PIPE_BUFFER, (DWORD)PIPE_BUFFER, 0, pipe_sa);
    if (server == INVALID_HANDLE_VALUE) {
        err = GetLastError();
        /* The name exists already (Windows: access denied with
         * FILE_FLAG_FIRST_PIPE_INSTANCE): another name. */
        if (err == ERROR_ACCESS_DENIED || err == ERROR_PIPE_BUSY)
            return 1;
        return mproc__os_error((long)err);
    }
    /* The write end of a one-way pair may query the pipe (attributes) but
     * not read it. */
    access = duplex ? GENERIC_READ | GENERIC_WRITE
                    : GENERIC_WRITE | FILE_READ_ATTRIBUTES;
    client = CreateFileW(name, access, 0, NULL, OPEN_EXISTING,
                         FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT |
                             SECURITY_IDENTIFICATION,
                         NULL);
    if (client == INVALID_HANDLE_VALUE) {
        err = GetLastError();
        CloseHandle(server);
        /* Someone else took the only instance: not our pipe any more. */
        if (err == ERROR_PIPE_BUSY)
            return 1;
        return mproc__os_error((long)err);
    }
    /* The client is connected already; ConnectNamedPipe says so. */
    memset(&ov, 0, sizeof ov);
    ov.hEvent = thread_event();
    ok = ConnectNamedPipe(server, &ov);
    err = ok ? ERROR_SUCCESS : GetLastError();
    if (err == ERROR_IO_PENDING) {
        /* Not expected (the client is there); wait it out, on the pipe
         * handle itself when there is no event, since the OVERLAPPED
         * lives on this stack. */
        if (!GetOverlappedResult(server, &ov, &dummy, TRUE))
            err = GetLastError();
        else
            err = ERROR_SUCCESS;
    }
    if (err != ERROR_SUCCESS && err != ERROR_PIPE_CONNECTED) {
        CloseHandle(client);
        CloseHandle(server);
        return mproc__os_error((long)err);
    }
    h[0] = mproc__win_mh(server);
    h[1] = mproc__win_mh(client);
    return 0;
}

int mproc__os_chan_pair(mproc__handle h[2], bool duplex)
{
    int rc = 1;
    int tries;

    if (h == NULL)
        return MPROC_EINVAL;
    for (tries = 0; tries < 8 && rc == 1; tries++)
        rc = pair_once(h, duplex);
    return rc == 1 ? MPROC_EBUSY : rc;
}

/* ---------------------------------------------------------------------------
 * Read and write
 */

static bool is_eof_error(DWORD err)
{
    return err == ERROR_BROKEN_PIPE || err == ERROR_PIPE_NOT_CONNECTED ||
           err == ERROR_NO_DATA || err == ERROR_HANDLE_EOF;
}

int64_t mproc__os_chan_read(mproc__handle h, void *buf, size_t n)
{
    DWORD got = 0;
    DWORD err;

    if (h == MPROC__BADHANDLE || h == 0 || buf == NULL || n == 0)
        return MPROC_EINVAL;
    /* A read from a byte-mode pipe completes when its buffer is full or the
     * writer's whole WriteFile is done: asked for the rest of a large
     * message, it would wait for all of it, past the receive's timeout.
     * A pipe's worth at a time returns as soon as that much came. */
    if (n > PIPE_BUFFER)
        n = PIPE_BUFFER;
    for (;;) {
        if (io_wait(mproc__win_h(h), false, buf, (DWORD)n, &got)) {
            /* Zero bytes without an error is a zero-length write, which
             * our writers never make; keep reading rather than report a
             * false end-of-file. */
            if (got > 0)
                return (int64_t)got;
            continue;
        }
        err = GetLastError();
        /* Context override: a broken pipe on read is end-of-file. */
        if (is_eof_error(err))
            return 0;
        return mproc__os_error((long)err);
    }
}

/* Two reads: a pipe has no scatter read. The second takes only what is
 * there already, so that the call blocks no longer than one read would. */
int64_t mproc__os_chan_readv(mproc__handle h, void *a, size_t na, void *b,
                             size_t nb)
{
    int64_t r, r2;
    DWORD avail = 0;

    if ((a == NULL && na > 0) || (b == NULL && nb > 0) || na + nb == 0)
        return MPROC_EINVAL;
    if (na == 0)
        return mproc__os_chan_read(h, b, nb);
    r = mproc__os_chan_read(h, a, na);
    if (r <= 0 || (size_t)r < na || nb == 0)
        return r;
    if (!PeekNamedPipe(mproc__win_h(h), NULL, 0, NULL, &avail, NULL) ||
        avail == 0)
        return r; /* the rest, or end-of-file, for the next read */
    r2 = mproc__os_chan_read(h, b, avail < nb ? avail : nb);
    if (r2 <= 0)
        return r; /* reported by the next read */
    return r + r2;
}

int64_t mproc__os_chan_peek(mproc__handle h, void *buf, size_t n,
                            int timeout_ms)
{
    int64_t deadline = mproc__deadline_ns(timeout_ms);
    DWORD got, err;
    int rc, left = timeout_ms;

    if (h == MPROC__BADHANDLE || h == 0 || buf == NULL || n == 0)
        return MPROC_EINVAL;
    if (n > IO_CHUNK)
        n = IO_CHUNK;
    for (;;) {
        got = 0;
        if (!PeekNamedPipe(mproc__win_h(h), buf, (DWORD)n, &got, NULL, NULL)) {
            err = GetLastError();
            /* Data written before the peer closed is still peeked; this
             * error comes once nothing is left. */
            if (is_eof_error(err))
                return MPROC_EEOF;
            return mproc__os_error((long)err);
        }
        if (got > 0)
            return (int64_t)got;
        if (left == 0)
            return 0;
        /* Empty: wait until data or end-of-file arrives, then peek it. */
        rc = mproc__os_chan_poll(h, left);
        if (rc <= 0)
            return rc;
        left = mproc__left_ms(deadline);
    }
}

int mproc__os_chan_write(mproc__handle h, const void *buf, size_t n)
{
    const unsigned char *p = buf;
    DWORD done = 0;
    DWORD err;
    size_t chunk;

    if (h == MPROC__BADHANDLE || h == 0 || (buf == NULL && n > 0))
        return MPROC_EINVAL;
    while (n > 0) {
        chunk = n > IO_CHUNK ? IO_CHUNK : n;
        /* WriteFile takes a non-const buffer it does not write to. */
        if (!io_wait(mproc__win_h(h), true, (void *)(uintptr_t)p, (DWORD)chunk,
                     &done)) {
            err = GetLastError();
            /* Context override: on write, the reader having gone is
             * EPIPE (ERROR_NO_DATA: the pipe is being closed). */
            if (is_eof_error(err))
                return MPROC_EPIPE;
            return mproc__os_error((long)err);
        }
        p += done;
        n -= done;
    }
    return 0;
}

/* Two writes: a pipe has no gather write (WriteFileGather needs page-sized,
 * page-aligned buffers on a file). An end has one user at a time, so no
 * other writer of ours comes between the two; a copy into one buffer would
 * cost more than the second call for the large frames this is used for. */
int mproc__os_chan_writev(mproc__handle h, const void *a, size_t na,
                          const void *b, size_t nb)
{
    int rc;

    if ((a == NULL && na > 0) || (b == NULL && nb > 0))
        return MPROC_EINVAL;
    rc = mproc__os_chan_write(h, a, na);
    if (rc == 0)
        rc = mproc__os_chan_write(h, b, nb);
    return rc;
}

/* ---------------------------------------------------------------------------
 * Readiness
 */

/* 1 when a read would not block (data, or end-of-file), 0 if not, or a
 * negative code. */
static int peek(HANDLE h)
{
    DWORD avail = 0;
    DWORD err;

    if (PeekNamedPipe(h, NULL, 0, NULL, &avail, NULL))
        return avail > 0;
    err = GetLastError();
    if (is_eof_error(err))
        return 1;
    return mproc__os_error((long)err);
}

/* A pending zero-byte read on h, completed when h becomes readable. */
typedef struct zero_read {
    OVERLAPPED ov;
    HANDLE h;
    bool pending;
} zero_read;

static char zero_buf[1];

/* Starts the read: 0 (pending), 1 (readable already), or a negative
 * code. */
static int zero_start(zero_read *z, HANDLE h, HANDLE ev)
{
    DWORD err;

    memset(&z->ov, 0, sizeof z->ov);
    z->ov.hEvent = ev;
    z->h = h;
    z->pending = false;
    if (ReadFile(h, zero_buf, 0, NULL, &z->ov))
        return 1;
    err = GetLastError();
    if (err == ERROR_IO_PENDING) {
        z->pending = true;
        return 0;
    }
    if (is_eof_error(err) || err == ERROR_MORE_DATA)
        return 1;
    return mproc__os_error((long)err);
}

/* Cancels the read if it is still pending and waits until the system is
 * done with the OVERLAPPED (it lives on the caller's stack). */
static void zero_finish(zero_read *z)
{
    DWORD got;

    if (!z->pending)
        return;
    CancelIoEx(z->h, &z->ov);
    GetOverlappedResult(z->h, &z->ov, &got, TRUE);
    z->pending = false;
}

/* The time left until a deadline of mproc__deadline_ns, rounded up. */
static DWORD remaining(int64_t deadline)
{
    int left = mproc__left_ms(deadline);
    return left < 0 ? INFINITE : (DWORD)left;
}

int mproc__os_chan_poll(mproc__handle h, int timeout_ms)
{
    zero_read z;
    int64_t deadline;
    HANDLE ev, own = NULL;
    DWORD wait, got, err;
    int rc;

    if (h == MPROC__BADHANDLE || h == 0)
        return MPROC_EINVAL;
    rc = peek(mproc__win_h(h));
    if (rc != 0 || timeout_ms == 0)
        return rc;
    /* The thread's I/O event is free: no read or write of this thread is
     * in progress while it polls. */
    ev = thread_event();
    if (ev == NULL) {
        own = ev = CreateEventW(NULL, TRUE, FALSE, NULL);
        if (ev == NULL)
            return mproc__win_last_error();
    }
    deadline = mproc__deadline_ns(timeout_ms);
    for (;;) {
        rc = zero_start(&z, mproc__win_h(h), ev);
        if (rc == 0) {
            wait = WaitForSingleObject(ev, remaining(deadline));
            if (wait == WAIT_OBJECT_0) {
                /* Completed: data or end-of-file arrived. */
                z.pending = false;
                err = GetOverlappedResult(z.h, &z.ov, &got, FALSE)
                          ? ERROR_SUCCESS
                          : GetLastError();
                if (err == ERROR_SUCCESS || is_eof_error(err))
                    rc = 1;
                else if (err != ERROR_OPERATION_ABORTED)
                    rc = mproc__os_error((long)err);
                if (rc != 0)
                    break;
            } else {
                zero_finish(&z);
                if (wait == WAIT_FAILED) {
                    rc = mproc__win_last_error();
                    break;
                }
            }
        } else if (rc < 0) {
            break;
        }
        /* Readable now, unless another reader took the data first. */
        rc = peek(mproc__win_h(h));
        if (rc != 0 || remaining(deadline) == 0)
            break;
        /* A read that completes at once on an empty pipe would spin. */
        Sleep(1);
    }
    if (own != NULL)
        CloseHandle(own);
    return rc;
}

/* Whether handle i is ready now: 1, 0 or a negative code. */
static int ready_now(HANDLE h, bool is_process)
{
    DWORD w;

    if (is_process) {
        w = WaitForSingleObject(h, 0);
        if (w == WAIT_FAILED)
            return mproc__win_last_error();
        return w == WAIT_OBJECT_0;
    }
    return peek(h);
}

static int scan(const mproc__handle *h, const bool *is_process, size_t n,
                bool *ready)
{
    int count = 0;
    int rc;
    size_t i;

    for (i = 0; i < n; i++) {
        ready[i] = false;
        /* A handle the caller cannot wait on is skipped, as on POSIX. */
        if (h[i] == MPROC__BADHANDLE || h[i] == 0)
            continue;
        rc = ready_now(mproc__win_h(h[i]), is_process != NULL && is_process[i]);
        if (rc < 0)
            return rc;
        ready[i] = rc > 0;
        count += rc;
    }
    return count;
}

/* More handles than one WaitForMultipleObjects takes: poll with a backoff
 * of up to 10 ms. */
static int wait_many_slow(const mproc__handle *h, const bool *is_process,
                          size_t n, int64_t deadline, bool *ready)
{
    DWORD nap = 1;
    DWORD left;
    int rc;

    for (;;) {
        rc = scan(h, is_process, n, ready);
        if (rc != 0)
            return rc;
        left = remaining(deadline);
        if (left == 0)
            return 0;
        Sleep(nap < left ? nap : left);
        if (nap < 10)
            nap++;
    }
}

int mproc__os_wait_many(const mproc__handle *h, const bool *is_process,
                        size_t n, int timeout_ms, bool *ready)
{
    HANDLE objs[MAXIMUM_WAIT_OBJECTS];
    HANDLE evs[MAXIMUM_WAIT_OBJECTS];
    zero_read z[MAXIMUM_WAIT_OBJECTS];
    size_t nobj, nev, i;
    int64_t deadline;
    DWORD wait;
    int rc;

    if ((h == NULL || ready == NULL) && n > 0)
        return MPROC_EINVAL;
    rc = scan(h, is_process, n, ready);
    if (rc != 0 || timeout_ms == 0)
        return rc;
    deadline = mproc__deadline_ns(timeout_ms);
    if (n > MAXIMUM_WAIT_OBJECTS)
        return wait_many_slow(h, is_process, n, deadline, ready);

    for (;;) {
        nobj = nev = 0;
        rc = 0;
        for (i = 0; i < n && rc == 0; i++) {
            if (h[i] == MPROC__BADHANDLE || h[i] == 0)
                continue;
            if (is_process != NULL && is_process[i]) {
                objs[nobj++] = mproc__win_h(h[i]);
                continue;
            }
            evs[nev] = CreateEventW(NULL, TRUE, FALSE, NULL);
            if (evs[nev] == NULL) {
                rc = mproc__win_last_error();
                break;
            }
            rc = zero_start(&z[nev], mproc__win_h(h[i]), evs[nev]);
            objs[nobj++] = evs[nev];
            nev++;
        }
        /* rc: 1 when a channel is readable already, < 0 on error. */
        if (rc == 0 && nobj > 0) {
            wait = WaitForMultipleObjects((DWORD)nobj, objs, FALSE,
                                          remaining(deadline));
            if (wait == WAIT_FAILED)
                rc = mproc__win_last_error();
        } else if (rc == 0) {
            /* Nothing to wait on: sleep out the timeout. */
            if (deadline < 0)
                rc = MPROC_EINVAL;
            else
                Sleep(remaining(deadline));
        }
        for (i = 0; i < nev; i++) {
            zero_finish(&z[i]);
            CloseHandle(evs[i]);
        }
        if (rc < 0)
            return rc;
        rc = scan(h, is_process, n, ready);
        if (rc != 0 || remaining(deadline) == 0)
            return rc;
    }
}

/* ---------------------------------------------------------------------------
 * Non-blocking read and write (backend.h): an overlapped operation that is
 * cancelled at once if it cannot complete now. A cancelled ReadFile on a
 * pipe loses no data (WINE-NOTES), and what a cancelled operation did
 * transfer is in its count.
 */

static int64_t io_nowait(HANDLE h, bool write, void *buf, DWORD n)
{
    OVERLAPPED ov;
    HANDLE own = NULL;
    DWORD got = 0;
    DWORD err = ERROR_SUCCESS;
    BOOL ok;

    memset(&ov, 0, sizeof ov);
    ov.hEvent = thread_event();
    if (ov.hEvent == NULL) {
        own = CreateEventW(NULL, TRUE, FALSE, NULL);
        if (own == NULL)
            return mproc__win_last_error();
        ov.hEvent = own;
    }
    ok = write ? WriteFile(h, buf, n, NULL, &ov)
               : ReadFile(h, buf, n, NULL, &ov);
    if (!ok && GetLastError() == ERROR_IO_PENDING) {
        CancelIoEx(h, &ov);
        ok = TRUE;
    } else if (!ok) {
        err = GetLastError();
    }
    if (ok && !GetOverlappedResult(h, &ov, &got, TRUE)) {
        err = GetLastError();
        if (err == ERROR_OPERATION_ABORTED)
            err = ERROR_SUCCESS;
    }
    if (own != NULL)
        CloseHandle(own);
    if (err == ERROR_SUCCESS)
        return (int64_t)got;
    if (is_eof_error(err))
        return write ? MPROC_EPIPE : 0;
    return mproc__os_error((long)err);
}

int64_t mproc__os_chan_read_nowait(mproc__handle h, void *buf, size_t n)
{
    DWORD avail = 0;

    if (h == MPROC__BADHANDLE || h == 0 || buf == NULL || n == 0)
        return MPROC_EINVAL;
    if (!PeekNamedPipe(mproc__win_h(h), NULL, 0, NULL, &avail, NULL)) {
        DWORD err = GetLastError();
        return is_eof_error(err) ? 0 : mproc__os_error((long)err);
    }
    if (avail == 0)
        return 0;
    if (n > avail)
        n = avail;
    return io_nowait(mproc__win_h(h), false, buf, (DWORD)n);
}

int64_t mproc__os_chan_write_nowait(mproc__handle h, const void *buf, size_t n)
{
    if (h == MPROC__BADHANDLE || h == 0 || (buf == NULL && n > 0))
        return MPROC_EINVAL;
    if (n == 0)
        return 0;
    if (n > IO_CHUNK)
        n = IO_CHUNK;
    /* WriteFile takes a non-const buffer it does not write to. */
    return io_nowait(mproc__win_h(h), true, (void *)(uintptr_t)buf, (DWORD)n);
}
